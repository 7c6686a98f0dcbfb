/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline durable key store: the key table's entries in LMDB, each one's key material wrapped
 * with AES-256 key wrap with padding (RFC 5649: kl_kwp, AES-NI, byte for byte OpenSSL's wrap
 * cipher, which is the fallback) under a KEK read from a 0600 file.
 *
 * keylined opens the store and loads it into the key table before it answers any request; a
 * key push is written here first and acknowledged only after mdb_txn_commit returned (LMDB is
 * opened without MDB_NOSYNC/MDB_NOMETASYNC, so a commit is on disk when it returns). Then the
 * caller writes the same entry into the table. Every call belongs to the control thread.
 *
 * Layout: `path` is a directory (created 0700 when create_if_missing) holding LMDB's data.mdb
 * and lock.mdb (0600) and keyline.lock, an flock that keeps a second process (or a second open
 * in this one) out. Named databases: "ue", "group", "emse", "e2m", "appid", "pair" keyed as the
 * table is (identity bytes; group: domain(3) || group(2, big-endian); e2m: the IMSI's digits),
 * and "meta": "schema" (u32, KL_STORE_SCHEMA), "kek_check" (a fixed plaintext wrapped under the
 * KEK: RFC 5649's integrity check fails under any other KEK, so a wrong KEK is told apart from
 * a damaged record) and "created" (u64 Unix seconds); in a cluster also "etcd_revision" (i64, the
 * catalogue revision the replica applied) and the database "rev" of per-entry revision stamps
 * (kl_store_repl.h; a store from before it gets it, empty).
 *
 * Record (value) format 1, integers little-endian:
 *   u8 format (1) | u8 kind (enum kl_table_kind) | u16 meta_len | u16 wrap_len |
 *   meta[meta_len] (non-secret) | wrapped[wrap_len] = AES-256-KWP(KEK, secret || bind)
 *   bind = SHA-256("keyline-store-v1" || u8 kind || u16 key_len || key || the record's first
 *          6 + meta_len bytes), first 16 bytes.
 * The binding sits inside the wrap (RFC 5649 has no associated data): a value moved to another
 * key, or a record whose metadata (groups, validity, key ids, expiry) was changed, unwraps but
 * fails the binding check. One KEK schedule serves every record (no per-record KEK derivation),
 * so a load costs one unwrap per record.
 *   ue:    meta u8 ngroups, ngroups x (domain[3], group u16 big-endian) [, u64 expires
 *          [, u8 services]]; the services byte (KL_SVC() bits) is there only when they are not
 *          KL_SVC_DEFAULT (mbms), with the expiry field before it (0 = never);
 *          secret = MUK (1..64). expires: the MUK's expiry, an NTP timestamp (NTP seconds << 32),
 *          present only when the MUK expires: meta_len 1 + 5 x ngroups (never expires: how every
 *          UE was written before the expiry existed, so those stores load unchanged) or
 *          1 + 5 x ngroups + 8 (an expiry of 0 there also means never). A keyline older than
 *          the expiry refuses the second form (a malformed record), so a store holding an
 *          expiring UE does not load into an older keylined.
 *   group: meta u8 has_next, current and next (u32 msk_id, u64 valid_from, u64 valid_to each);
 *          secret = current key (16) || next key (16) (next is kept as given even when unused)
 *   emse:  no meta; secret = PSK (1..64)
 *   e2m:   meta u8 n (1..8), n x (u32 key_id, u64 expires), newest first; secret = n x 32 bytes
 *   appid: no meta; secret = the IMSI's digits (1..15; not key material, but personal data)
 *   pair:  meta u64 expires (NTP timestamp, 0 = never); secret = the pair key (1..64); keyed by
 *          the peer server's identity. A store from before pair keys gets the database, empty.
 *
 * What is detected: a missing/unsafe/malformed KEK file, a wrong KEK, another schema version, a
 * file that is not LMDB, a truncated or empty data file, a record that was altered, damaged or
 * moved. LMDB has no page checksums: damage inside its B-tree page structure (not inside our
 * records) is found by the verification walk (params.verify, below) where it breaks the
 * structure, never by a crash of the caller.
 *
 * Keys are never logged: messages name the kind and a record number, never key bytes. The KEK
 * sits in OpenSSL's secure heap (initialised here when nobody did) or else in a locked page, and
 * with it, in the same allocation, its kl_kwp key object (the expanded AES schedules, set up
 * once at open): both are wiped on close. With KL_KWP=openssl (or without AES-NI) the schedule
 * lives in an OpenSSL context for one wrap or unwrap only, wiped when that context is freed.
 */
#ifndef KL_STORE_H
#define KL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kl_table.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_STORE_SCHEMA 1u		/* meta "schema": bumped by any incompatible change */
#define KL_STORE_KEK_LEN 32		/* AES-256 KEK */
#define KL_STORE_MAP_SIZE_DEFAULT (32ull << 30) /* virtual only: the file grows as used */

struct kl_ctl_stats;

struct kl_store_params {
	const char *path;     /* directory of the LMDB environment */
	const char *kek_file; /* 32 raw bytes, or 64 hex digits (one trailing newline allowed) */
	uint64_t map_size;    /* bytes the store may grow to; 0 = KL_STORE_MAP_SIZE_DEFAULT */
	int create_if_missing; /* create the directory and an empty store when there is none */
	struct kl_ctl_stats *ctl; /* control-plane counters (store commits); NULL: none */
	int verify; /* walk every database of an existing store in a child process first */
};

/* What a message about a damaged store tells the operator to do. */
#define KL_STORE_RESTORE_HINT                                                                     \
	"restore it from a backup (keylinectl backup FILE makes one): see README.md, "           \
	"\"Restoring the store\""

struct kl_store;

/**
 * Open (or create) a store. Checks the KEK file first: a regular file owned by root or by this
 * process's user, mode exactly 0600, 32 raw bytes or 64 hex digits; then the data file (LMDB,
 * not truncated), the schema version and the KEK (kek_check). Each failure has its own message
 * in err (never key bytes).
 * @return the store, or NULL with errno set: ENOENT (no KEK file / no store), EPERM (KEK file
 *         mode or owner), EINVAL (KEK file not a regular file or not 32 bytes / 64 hex digits,
 *         bad params), ENOTDIR (path is not a directory), EPROTO (incompatible schema), EBADMSG
 *         (not a keyline store, truncated, empty, damaged), EKEYREJECTED (wrong KEK), EBUSY (in
 *         use by another process or already open), EIO and others from the system.
 * The secure heap is process-wide: kl_store_open initialises a 64 KiB one when nobody did.
 */
struct kl_store *kl_store_open(const struct kl_store_params *p, char *err, size_t errlen);
/*
 * Damage (LMDB has no page checksums). With p->verify, kl_store_open first walks the existing
 * store in a child process: every database (the free list, the main database and each named
 * one), every record's key and value inside the file, entry counts against the databases'
 * records, free page numbers in range and in order, and every page accounted for (in use,
 * free or meta). LMDB's assert hook turns its assertions into a report; a child that dies of
 * a signal (SIGSEGV, SIGBUS) or reports a failure makes kl_store_open fail with EBADMSG and
 * "store PATH is damaged (why)". The walk reads keys and values, never unwraps (the load
 * unwraps and checks every record afterwards): about 0.2 s per million records. Damage that
 * keeps the structure readable (a changed byte of a record, a page's own number) is not seen
 * by the walk; a changed record is refused by the load.
 * With p->verify, an LMDB assertion in this process later (damage found after the open)
 * prints "store PATH is damaged" with KL_STORE_RESTORE_HINT on stderr and ends the process with
 * _exit(2) instead of abort().
 */

/** Close; aborts an open batch. The KEK is wiped. NULL is accepted. */
void kl_store_close(struct kl_store *s);
/** Message of the last failed call (write, read, commit; empty when none). Each write or read
 * clears it first. */
const char *kl_store_last_error(const struct kl_store *s);

/*
 * Writes. Outside a batch each call is one transaction: 0 means it is committed (durable).
 * Inside a batch (kl_store_txn_begin) 0 means staged; nothing is durable before
 * kl_store_txn_commit returns 0. Arguments are checked exactly as the key table checks them,
 * so every stored entry loads. Errors: -EINVAL (bad argument), -ENOSPC (map_size reached),
 * -EBADMSG (push_e2m, set_ue_groups, del_e2m_key: the stored record they start from does not
 * unwrap), -EIO/-errno (LMDB, fsync), -ECANCELED (a batch whose earlier write failed: only abort
 * is left). A write that fails before LMDB was asked to write (-EINVAL, -ENOENT, -EBADMSG) does
 * not spoil a batch; a failed LMDB write does.
 */
int kl_store_put_ue(struct kl_store *s, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
		    unsigned muk_len, const struct kl_group_ref *groups, unsigned ngroups);
/** kl_store_put_ue with the MUK's expiry (NTP timestamp, NTP seconds << 32; 0 = never, which is
 * what kl_store_put_ue stores). A replacement takes the given expiry. */
int kl_store_put_ue_exp(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			const uint8_t *muk, unsigned muk_len, const struct kl_group_ref *groups,
			unsigned ngroups, uint64_t expires);
int kl_store_put_group(struct kl_store *s, const struct kl_group_ref *ref,
		       const struct kl_group *g);
int kl_store_put_emse(struct kl_store *s, const uint8_t *id, uint16_t id_len, const uint8_t *psk,
		      unsigned psk_len);
/** Add/replace a UE with its services (KL_SVC() bits, not 0): a UE with KL_SVC_DEFAULT is
 * written as kl_store_put_ue_exp writes it. @return as kl_store_put_ue_exp. */
int kl_store_put_ue_svc(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			const uint8_t *muk, unsigned muk_len, const struct kl_group_ref *groups,
			unsigned ngroups, uint64_t expires, uint8_t services);
/** Add/replace the pair key (1..64 bytes) shared with peer server peer, with its expiry (NTP
 * timestamp, 0 = never). @return as kl_store_put_ue. */
int kl_store_put_pair(struct kl_store *s, const uint8_t *peer, uint16_t peer_len,
		      const uint8_t *key, unsigned key_len, uint64_t expires);
/** Push one e2m_int_key like kl_table_push_e2m: newest first, a known key id is replaced in
 * place, at most ring_size (1..KL_TABLE_E2M_RING_MAX) kept. */
int kl_store_push_e2m(struct kl_store *s, const char *imsi, const uint8_t key[32],
		      uint32_t key_id, uint64_t expires, unsigned ring_size);
int kl_store_put_appid(struct kl_store *s, const uint8_t *appid, uint16_t len, const char *imsi);
/** Delete an entry (key as for kl_table_del). @return 0, -ENOENT, -EINVAL or -errno. */
int kl_store_del(struct kl_store *s, enum kl_table_kind kind, const uint8_t *key, uint16_t len);
/** Whether the store holds an entry (key as for kl_table_del; inside a batch: as the batch
 * left it). Nothing is unwrapped. @return 1, 0 or -errno. */
int kl_store_has(struct kl_store *s, enum kl_table_kind kind, const uint8_t *key, uint16_t len);

/**
 * Replace a stored UE's authorised groups, keeping its MUK and its expiry: the record is read
 * (inside a batch: as the batch left it), unwrapped and checked, and written again with the new
 * metadata, the same MUK wrapped afresh with the binding over the new groups (and the expiry). The MUK never leaves the store
 * call. ngroups may be 0 (groups may then be NULL). A -ENOENT/-EBADMSG inside a batch does not
 * spoil it (the batch's other writes still commit).
 * @return 0, -ENOENT (no such UE), -EINVAL (bad id, ngroups > KL_TABLE_UE_GROUPS, groups NULL
 *         with ngroups > 0), -EBADMSG (the stored record does not unwrap, is bound to other
 *         metadata or is malformed: kl_store_last_error says why; the record is left as it was),
 *         -ECANCELED (a failed batch), -ENOSPC, -ENOMEM (OpenSSL), -EIO/-errno.
 */
int kl_store_set_ue_groups(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			   const struct kl_group_ref *groups, unsigned ngroups);
/** Replace a stored UE's services (KL_SVC() bits, not 0), keeping its MUK, groups and expiry,
 * as kl_store_set_ue_groups does. @return as kl_store_set_ue_groups (-EINVAL: bad id, services
 * 0 or unknown bits). */
int kl_store_set_ue_services(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			     uint8_t services);
/**
 * Delete one e2m_int_key of a stored IMSI by key id, like kl_table_del_e2m_key: the others keep
 * their order (newest first) and are wrapped again; the record is deleted when its last key
 * goes.
 * @return 0, -ENOENT (no such IMSI, or no key with that id), -EINVAL (imsi not 1..15 decimal
 *         digits), -EBADMSG (the stored ring does not unwrap: left as it was), -ECANCELED,
 *         -ENOSPC, -ENOMEM, -EIO/-errno.
 */
int kl_store_del_e2m_key(struct kl_store *s, const char *imsi, uint32_t key_id);

/*
 * Reads (control thread, like every call). Outside a batch each runs in a read-only transaction
 * of its own and sees the committed state; inside a batch it runs in the batch's transaction
 * and so sees the batch's staged writes (a read in a batch whose write failed: -ECANCELED). A
 * record is unwrapped and its binding checked before anything of it is returned, so altered
 * metadata is -EBADMSG, never a wrong answer.
 */
/** Read a stored key group, unwrapped: current and next MSK with ids and validity, has_next
 * (*out zeroed first, and again on failure). The caller wipes *out (kl_memzero) when done.
 * @return 0, -ENOENT, -EINVAL (a NULL argument), -EBADMSG, -ECANCELED, -ENOMEM, -errno. */
int kl_store_get_group(struct kl_store *s, const struct kl_group_ref *ref, struct kl_group *out);
/** Read a stored UE's authorised groups (no key bytes are returned; the MUK is unwrapped only
 * to check the binding). groups: room for KL_TABLE_UE_GROUPS; the first *ngroups are written.
 * @return 0, -ENOENT, -EINVAL (bad id, NULL groups or ngroups), -EBADMSG, -ECANCELED, -ENOMEM,
 *         -errno. */
int kl_store_get_ue_groups(struct kl_store *s, const uint8_t *id, uint16_t id_len,
			   struct kl_group_ref *groups, unsigned *ngroups);
/** kl_store_get_ue_groups with the MUK's expiry too (*expires: NTP timestamp, 0 = never); any
 * of groups, ngroups and expires may be NULL when not wanted. Same returns, except that NULL
 * outputs are not -EINVAL. */
int kl_store_get_ue(struct kl_store *s, const uint8_t *id, uint16_t id_len,
		    struct kl_group_ref *groups, unsigned *ngroups, uint64_t *expires);

/** Write one stored UE into the key table as kl_store_load does (its MUK, groups, expiry and
 * services as stored; inside a batch: as the batch left them). For a change the table cannot
 * make from what it holds (the dh service for a MUK over 32 bytes). The MUK never leaves the
 * call. @return what kl_table_put_ue_bulk gave (0 added, 1 replaced, -errno), or -ENOENT,
 * -EINVAL, -EBADMSG, -ECANCELED, -ENOMEM, -errno as kl_store_get_ue. */
int kl_store_load_ue(struct kl_store *s, struct kl_table *t, const uint8_t *id, uint16_t id_len);

/** Start a batch: the following writes share one transaction (one fsync). @return 0, -EBUSY
 * (a batch is already open) or -errno. */
int kl_store_txn_begin(struct kl_store *s);
/** Commit the batch. @return 0 when durable, -ECANCELED (a write in it failed: it was rolled
 * back), -ENOSPC, -EIO/-errno. The batch is closed in every case. */
int kl_store_txn_commit(struct kl_store *s);
/** Drop the batch. */
void kl_store_txn_abort(struct kl_store *s);

struct kl_store_load_stats {
	uint64_t loaded[KL_TK__COUNT]; /* entries written into the table, per kind */
	double seconds;
};

/**
 * Unwrap every record and write it into the key table (the table's writer thread). Stops at the
 * first bad record: err names the kind and the record's number in that kind (1-based, key
 * order). @return 0, -EBADMSG (corrupt record), -ENOSPC (the table is too small), -EBUSY (a
 * batch is open) or -errno.
 */
int kl_store_load(struct kl_store *s, struct kl_table *t, struct kl_store_load_stats *st,
		  char *err, size_t errlen);

struct kl_store_stats {
	uint64_t entries[KL_TK__COUNT];
	uint64_t file_bytes;     /* size of data.mdb */
	uint64_t used_bytes;     /* pages in use (last page + 1) x page size */
	uint64_t ue_bytes;       /* pages of the "ue" database x page size */
	double bytes_per_ue;     /* ue_bytes / entries (0 when none) */
	uint64_t map_size;
	uint64_t created;        /* Unix seconds */
	uint32_t schema;
	uint8_t kek_kcv[KL_KCV_LEN]; /* KCV of the KEK, for operators */
	uint8_t kek_secure_heap;     /* 1: OpenSSL secure heap, 0: locked page */
};

/** Fill the statistics. @return 0 or -errno. */
int kl_store_stats(struct kl_store *s, struct kl_store_stats *out);

/*
 * Online backup: a consistent, compacted copy (mdb_env_copyfd2 with MDB_CP_COMPACT: the state of
 * one read transaction, free pages left out) written by a thread of its own, so the control
 * thread keeps serving while it runs. Writes go on meanwhile; the store's file cannot reuse the
 * pages the backup's read transaction still sees, so it may grow during a long backup.
 * The copy goes to a temporary file beside `file` (mode 0600), is fsynced and linked to `file`
 * (atomic; an existing file is never overwritten), then the directory is fsynced. The copy is
 * a data.mdb: restoring is copying it to data.mdb in the store's directory while keylined is
 * stopped (and removing lock.mdb).
 */
struct kl_store_backup_result {
	int rc;		/* 0 or -errno */
	uint64_t bytes; /* size of the copy */
	double seconds;
	char file[4096];
	char msg[320]; /* why it failed (empty on success) */
};

/**
 * Start a backup to file (an absolute path; its directory must exist; the file must not).
 * @return 0 (running: see kl_store_backup_poll), -EINVAL (not an absolute path, too long),
 *         -EEXIST (file exists), -ENOTDIR/-ENOENT (no such directory), -EBUSY (a backup runs),
 *         -ENOMEM, -errno; err says why.
 */
int kl_store_backup_start(struct kl_store *s, const char *file, char *err, size_t errlen);
/**
 * Collect a finished backup (never blocks). @return 1 (finished: *r filled, the next backup
 * may start), 0 (still running) or -ENOENT (none started). kl_store_close waits for a running
 * backup to finish.
 */
int kl_store_backup_poll(struct kl_store *s, struct kl_store_backup_result *r);

/** Name of a kind as used in messages and database names: "ue", "group", "emse", "e2m",
 * "appid" ("?" when out of range). */
const char *kl_store_kind_name(enum kl_table_kind kind);

/**
 * AES key wrap with padding (RFC 5649), the store's (kl_kwp with a key object set up for this
 * call: AES-NI, or OpenSSL's wrap cipher under KL_KWP=openssl; exported for the RFC's test
 * vectors and for tools). kek: 16, 24 or 32 bytes; enc 1 wraps, 0 unwraps. in: 1..4096 bytes.
 * out needs inlen + 15 bytes to wrap, inlen to unwrap.
 * @return the output length, -EINVAL (bad length or cap), -EBADMSG (integrity check failed),
 *         -ENOMEM (OpenSSL could not set up).
 */
long kl_store_kwp(const uint8_t *kek, size_t kek_len, int enc, const uint8_t *in, size_t inlen,
		  uint8_t *out, size_t cap);

/*
 * The NAF Key Center's issued keys (Ks_local_MT, control/http/kl_naf_keys.h) and its blocklists, in
 * databases "naf" and "nafblock" (a store from before them gets them, empty, at open). Nothing
 * here touches the key table: the Key Center keeps its own index.
 *   naf: key SHA-256("keyline-naf-id-v1" || u8 btid_len || btid || u16 naf_len || naf_id ||
 *        u8 device_len || device_id) (32 bytes: an identity can be longer than an LMDB key);
 *        value u8 format (1) | u8 type 'N' | u16 meta_len | u16 wrap_len | meta | wrapped, where
 *        meta = u64 issued | u64 expiry (Unix s) | u8 flags (1: invalidated) | kcv[3] |
 *        u8 btid_len | btid | u16 naf_len | naf_id | u8 device_len | device_id, and wrapped =
 *        AES-256-KWP(KEK, key[32] || bind), or AES-256-KWP(KEK, bind) for an invalidated key
 *        (its key is dropped: only the KCV is kept, to list it), bind = SHA-256(
 *        "keyline-store-naf-v1" || the LMDB key || the record's first 6 + meta_len bytes), first
 *        16 bytes: a record moved to another identity or with altered metadata fails the check.
 *   nafblock: key u8 kind ('d' Device_ID, 's' certificate serial) || value; value u8 format (1)
 *        | u64 added (Unix s). Nothing secret.
 * Writes follow the rules above (outside a batch committed, inside one staged).
 */
#define KL_STORE_NAF_BTID_MAX 255
#define KL_STORE_NAF_ID_MAX 255
#define KL_STORE_NAF_DEVICE_MAX 64
#define KL_STORE_NAF_SERIAL_MAX 40
#define KL_STORE_NAF_KEY_LEN 32

struct kl_store_naf {			 /* one issued key, without the key */
	char btid[KL_STORE_NAF_BTID_MAX + 1];	  /* 1..255 printable ASCII, no space */
	uint8_t naf_id[KL_STORE_NAF_ID_MAX];	  /* 1..255 bytes */
	uint16_t naf_len;
	char device_id[KL_STORE_NAF_DEVICE_MAX + 1]; /* 1..64 printable ASCII */
	uint64_t issued, expiry;		  /* Unix seconds */
	uint8_t invalidated;
	uint8_t kcv[KL_KCV_LEN]; /* the key's check value (kl_kcv; put computes it from the key) */
};

enum kl_store_naf_block_kind { KL_STORE_NAF_DEVICE = 'd', KL_STORE_NAF_SERIAL = 's' };

/** Whether n's identity is one the store takes (btid, naf_id, device_id as above). 0 / -EINVAL. */
int kl_store_naf_check(const struct kl_store_naf *n);
/** Whether value is a blocklist value of kind (a Device_ID as above; a serial: 1..40 lowercase
 * hex digits, no leading zero). 0 / -EINVAL. */
int kl_store_naf_block_check(enum kl_store_naf_block_kind kind, const char *value);
/** Add/replace an issued key: key (32 bytes) for a valid one; n->invalidated set and key NULL:
 * the invalidated record (n->kcv kept, no key). @return as kl_store_put_ue. */
int kl_store_naf_put(struct kl_store *s, const struct kl_store_naf *n, const uint8_t *key);
/** Delete the issued key of n's identity. @return 0, -ENOENT, -EINVAL, -errno. */
int kl_store_naf_del(struct kl_store *s, const struct kl_store_naf *n);
/** Read the issued key of n's identity (the rest of *n is filled), unwrapped and checked; key:
 * 32 bytes, zeroed for an invalidated one (the caller wipes it). @return 0, -ENOENT, -EINVAL,
 * -EBADMSG, -ECANCELED, -ENOMEM, -errno. */
int kl_store_naf_get(struct kl_store *s, struct kl_store_naf *n, uint8_t key[32]);
/** Every issued key, unwrapped and checked (the key never leaves the call: cb gets the KCV);
 * cb's nonzero return stops the walk and is returned. A bad record: -EBADMSG, err says which.
 * @return 0, cb's value, -EBADMSG, -EBUSY (a batch is open), -errno. */
int kl_store_naf_each(struct kl_store *s, int (*cb)(void *arg, const struct kl_store_naf *n),
		      void *arg, char *err, size_t errlen);
/** Add (on) or remove a blocklist entry. @return 0, -ENOENT (removing one not there), -EINVAL,
 * -ENOSPC, -ECANCELED, -errno. Adding one already there keeps its time and returns 0. */
int kl_store_naf_block(struct kl_store *s, enum kl_store_naf_block_kind kind, const char *value,
		       int on, uint64_t now);
/** Every blocklist entry; as kl_store_naf_each. */
int kl_store_naf_each_blocked(struct kl_store *s,
			      int (*cb)(void *arg, enum kl_store_naf_block_kind kind,
					const char *value, uint64_t added),
			      void *arg, char *err, size_t errlen);
/** Entries in "naf" and "nafblock". @return 0 or -errno. */
int kl_store_naf_count(struct kl_store *s, uint64_t *keys, uint64_t *blocked);
/*
 * The same entries by their LMDB keys, as a catalogue event names them (a cluster's follower
 * applied another node's write: kl_store_repl.h kl_store_set_view). kl_store_naf_key: the LMDB
 * key of n's identity (0 / -EINVAL / -EIO). kl_store_naf_get_at: the issued key held at lkey (32
 * bytes), checked as kl_store_naf_get, *n filled, the key itself never returned: 0, -ENOENT,
 * -EINVAL, -EBADMSG, -errno. kl_store_naf_block_get_at: *kind and value from the blocklist key
 * (-EINVAL: not one), then 0 when the store holds the entry, -ENOENT when not, -errno.
 */
int kl_store_naf_key(struct kl_store *s, const struct kl_store_naf *n, uint8_t out[32]);
int kl_store_naf_get_at(struct kl_store *s, const uint8_t *lkey, size_t len,
			struct kl_store_naf *n);
int kl_store_naf_block_get_at(struct kl_store *s, const uint8_t *key, size_t len,
			      enum kl_store_naf_block_kind *kind,
			      char value[KL_STORE_NAF_DEVICE_MAX + 1]);

/**
 * Wrap (enc 1) or unwrap (enc 0) in under this store's KEK (AES-256 key wrap with padding, as
 * kl_store_kwp), for records kept outside the store under the same KEK (the cluster's MSK-ID
 * guard, kl_msk_guard.h). Same lengths and returns as kl_store_kwp.
 */
long kl_store_kek_wrap(struct kl_store *s, int enc, const uint8_t *in, size_t inlen, uint8_t *out,
		       size_t cap);

#ifdef __cplusplus
}
#endif
#endif
