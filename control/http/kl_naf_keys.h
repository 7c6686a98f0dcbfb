/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center's issued keys (Ks_local_MT, PROTOCOL.md section 11) and its blocklists:
 * stored wrapped in the store (LMDB) with B-TID, NAF_ID, Device_ID and expiry, through the one
 * durable write path (control/store/kl_write.h); an in-memory index answers the HTTPS threads.
 *
 * Threads: kl_naf_keys_issue / _check may be called from any thread (the HTTPS pool): a write
 * is handed to the control thread (which owns the store and kl_write), committed there in
 * batches (one store transaction for all writes queued at one wake-up: group commit), and the
 * caller waits for the commit (bounded). The rest runs on the control thread.
 *
 * Semantics: a key is identified by (B-TID, NAF_ID, Device_ID). Issuing one that exists and is
 * valid refreshes nothing and succeeds (the derivation is deterministic: it is the same key).
 * An invalidated key stays listed as invalidated until its expiry and is never issued again
 * (the same inputs would give the same key): the device needs a new B-TID (the MT bootstraps
 * again). Expired entries are purged (store and index) by the tick.
 */
#ifndef KL_NAF_KEYS_H
#define KL_NAF_KEYS_H

#include <stddef.h>
#include <stdint.h>

struct kl_store;
struct kl_table;

#define KL_NAF_BTID_MAX 255
#define KL_NAF_ID_MAX 255
#define KL_NAF_DEVICE_ID_MAX 64
#define KL_NAF_SERIAL_MAX 40 /* certificate serial as lowercase hex, no leading zeros */
#define KL_NAF_KEY_LEN 32

struct kl_naf_keys_params {
	struct kl_store *store;	   /* NULL: memory only (no store: section): lost at restart */
	unsigned max_keys;	   /* 0: 1,000,000; full: issue refused (-ENOSPC) */
	unsigned wait_ms;	   /* how long issue waits for the control thread, 0: 2000 */
};

enum kl_naf_issue_rc {
	KL_NAF_ISSUED = 0,	/* stored (durable when there is a store) */
	KL_NAF_INVALIDATED,	/* this key was invalidated: refuse (403) */
	KL_NAF_BLOCKED,		/* the Device_ID or certificate serial is blocklisted (403) */
	KL_NAF_FULL,		/* max_keys reached (503) */
	KL_NAF_STORE_FAILED,	/* the store refused or the control thread did not answer (503) */
};

struct kl_naf_key_info {	/* what listings show: never the key */
	char btid[KL_NAF_BTID_MAX + 1];
	uint8_t naf_id[KL_NAF_ID_MAX];
	uint16_t naf_len;
	char device_id[KL_NAF_DEVICE_ID_MAX + 1];
	uint8_t kcv[3];		/* key check value (kl_crypto's) */
	uint64_t issued, expiry; /* Unix seconds */
	int invalidated;
};

struct kl_naf_keys;

/** Open (control thread): load issued keys and blocklists from the store. NULL + err on failure. */
struct kl_naf_keys *kl_naf_keys_open(const struct kl_naf_keys_params *p, char *err, size_t errlen);

/** An eventfd the control thread polls (POLLIN: queued writes wait for kl_naf_keys_poll). */
int kl_naf_keys_fd(const struct kl_naf_keys *k);

/** Control thread: commit the queued writes (one store batch) and wake their callers. */
void kl_naf_keys_poll(struct kl_naf_keys *k);

/** Control thread, about once a second: purge expired entries. */
void kl_naf_keys_tick(struct kl_naf_keys *k, uint64_t now);

/** Any thread: is the Device_ID or the certificate serial (hex) blocklisted? */
int kl_naf_keys_blocked(struct kl_naf_keys *k, const char *device_id, const char *serial_hex);

/**
 * Any thread: record the issue of key (Ks_local_MT) for (btid, naf_id, device_id) with its expiry
 * (Unix s), after checking the blocklists (device_id, serial_hex) and invalidation. Waits for the
 * commit. The key is copied wrapped; the caller wipes its copy.
 */
enum kl_naf_issue_rc kl_naf_keys_issue(struct kl_naf_keys *k, const char *btid,
				       const uint8_t *naf_id, size_t naf_len,
				       const char *device_id, const char *serial_hex,
				       const uint8_t key[KL_NAF_KEY_LEN], uint64_t expiry,
				       uint64_t now);

/** Control thread (admin, the operator's DELETE through the queue): invalidate. 0 / -ENOENT / -EIO. */
int kl_naf_keys_invalidate(struct kl_naf_keys *k, const char *btid, const char *device_id);

/** Any thread (the HTTPS DELETE route): the same, through the control thread, waited for. */
int kl_naf_keys_invalidate_wait(struct kl_naf_keys *k, const char *btid, const char *device_id);

enum kl_naf_block_kind { KL_NAF_BLOCK_DEVICE, KL_NAF_BLOCK_SERIAL };

/** Control thread (admin): add (on=1) or remove a blocklist entry, durably. 0 / -ENOENT / -EIO. */
int kl_naf_keys_block(struct kl_naf_keys *k, enum kl_naf_block_kind kind, const char *value,
		      int on);

/** Control thread: each issued key (cb's return != 0 stops), then counts. */
void kl_naf_keys_list(struct kl_naf_keys *k, int (*cb)(void *arg, const struct kl_naf_key_info *),
		      void *arg);

/** Control thread: each blocklist entry. */
void kl_naf_keys_list_blocked(struct kl_naf_keys *k,
			      int (*cb)(void *arg, enum kl_naf_block_kind, const char *value),
			      void *arg);

struct kl_naf_keys_stats {
	uint64_t keys, invalidated, blocked_devices, blocked_serials;
	uint64_t issued, refused_invalidated, refused_blocked, refused_full, store_failed;
	uint64_t commits, batched_writes; /* group commits and the writes they carried */
	uint64_t waiting; /* (appended) callers waiting for the control thread now */
	/* (appended) a cluster: entries other nodes wrote or deleted (issued keys, invalidations,
	 * blocklist entries) that the index took from the store's replica, and those it could not
	 * (the store could not read one back, out of memory) */
	uint64_t applied, apply_failed;
};
void kl_naf_keys_get_stats(struct kl_naf_keys *k, struct kl_naf_keys_stats *s);

/** Close (control thread): waiting callers get KL_NAF_STORE_FAILED; keys wiped. */
void kl_naf_keys_close(struct kl_naf_keys *k);



/* ---- appended: admin commands (control thread), wired into kl_admin.c by the Key Center ------ */
struct json_t;

/**
 * One admin command of the Key Center's keys: "naf-keys" (list: b_tid, naf_id (hex), device_id,
 * kcv, issued, expiry, invalidated; never a key), "naf-invalidate" {"b_tid", "device_id"},
 * "naf-block" / "naf-unblock" {"device_id"} or {"serial": hex}, "naf-blocklist".
 * @return 0 with *answer a new object, 1 when cmd is not one of these (nothing set), or -EINVAL
 *         with *answer = {"error": "..."}.
 */
int kl_naf_keys_admin(struct kl_naf_keys *k, const char *cmd, const struct json_t *req,
		      struct json_t **answer);
/* ---- appended by the implementation (control/http/kl_naf_keys.c) ----------------------------------
 * Durability: with a store, every write (issue, invalidate, purge, blocklist) is a write op of
 * control/store/kl_write.h (KL_WOP_NAF_*: a store side only) staged into one store transaction per
 * control-thread wake-up (kl_naf_keys_poll: group commit; LMDB's commit is synced); the index is
 * updated after that commit, under its write lock, so HTTPS threads (readers, under the read
 * lock) never see an entry that is not durable, and a failed commit leaves the index as it was.
 * A caller whose wait (wait_ms) runs out while its write is still queued takes it out of the
 * queue: nothing of it is written (KL_NAF_STORE_FAILED). One already taken by the control thread
 * is committed whole or not at all (the caller has been told KL_NAF_STORE_FAILED; a later issue
 * of the same key finds it and succeeds).
 * commits / batched_writes count the batches committed (a failed one counts in store_failed).
 * Invalidation drops the key: the store keeps the invalidated record (its KCV, identity, times)
 * without the key, and it refuses that (B-TID, NAF_ID, Device_ID) forever unless
 * invalidated_keep_s is set (then it is purged that long after its expiry: a B-TID outlives the
 * key's expiry by at most its Ks lifetime). Bad arguments to kl_naf_keys_issue (lengths,
 * characters, NULL) give KL_NAF_STORE_FAILED without any write; blocklist values: Device_ID 1..64
 * printable ASCII, serial: hex (upper or lower case, ':' separators and leading zeros allowed:
 * they are normalised to lowercase hex without leading zeros).
 */

/** Like params but with the retention of invalidated entries (0: forever). */
struct kl_naf_keys_params_ext {
	struct kl_naf_keys_params base;
	uint64_t invalidated_keep_s;
	unsigned batch_max; /* writes in one commit, 0: 1024 (the rest wait for the next one) */
};
struct kl_naf_keys *kl_naf_keys_open_ext(const struct kl_naf_keys_params_ext *p, char *err,
					 size_t errlen);

/** Any thread: the listing fields of one issued key (never the key). 0 / -ENOENT / -EINVAL. */
int kl_naf_keys_lookup(struct kl_naf_keys *k, const char *btid, const uint8_t *naf_id,
		       size_t naf_len, const char *device_id, struct kl_naf_key_info *out);

/** A serial (hex, any case, ':' separators, leading zeros) in the blocklist's form (lowercase,
 * no leading zeros). 0 / -EINVAL. */
int kl_naf_serial_norm(const char *in, char out[KL_NAF_SERIAL_MAX + 1]);
#endif
