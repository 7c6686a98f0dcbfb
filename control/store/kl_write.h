/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline durable key writes: the one place that writes a key into the store and the key table
 * (DESIGN.md, "Shape of the code"). The admin socket, the Diameter feed and MSK rotation all go
 * through it.
 *
 * A write is described by a struct kl_write (filled by one of the kl_write_* constructors) and
 * done in two steps, both on the control thread (the key table's writer):
 *   kl_write_stage: the store write (when there is a store). Outside a store batch it is
 *     committed (durable) when it returns 0; inside one (kl_store_txn_begin) it is staged in
 *     that batch and the caller commits the batch before applying. A store failure leaves the
 *     key table untouched.
 *   kl_write_apply: the key table write. When the table refuses it, the store write is undone:
 *     a new entry is deleted from the store again, a UE's groups or services are put back as
 *     the table still holds them; the replacement of an existing entry's key cannot be undone
 *     (the store does not keep the old key): the stored value then takes effect at the next
 *     start, which the result's note says.
 * kl_write_do does both (no batch open, or the caller accepts the staged state being applied
 * before the commit). Deletes and UE groups/services changes of an entry the store does not hold
 * (a test population's, in the table only) change the table only.
 *
 * Every step fills a struct kl_write_result: the rc, which side refused, and an error text for
 * the operator naming the kind by kl_table_kind_name (never key bytes). Key copies in a struct
 * kl_write are wiped by kl_write_wipe.
 */
#ifndef KL_WRITE_H
#define KL_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "kl_store.h"
#include "kl_table.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_WRITE_SECRET_MAX (KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN)

enum kl_write_op {
	KL_WOP_PUT_UE,	     /* MUK, groups, expiry, services */
	KL_WOP_SET_GROUPS,   /* a UE's groups (MUK, expiry, services kept) */
	KL_WOP_SET_SERVICES, /* a UE's services (the rest kept) */
	KL_WOP_PUT_GROUP,    /* a key group's MSKs */
	KL_WOP_PUT_EMSE,
	KL_WOP_PUSH_E2M,     /* one e2m_int_key of an IMSI */
	KL_WOP_DEL_E2M_KEY,  /* one e2m_int_key of an IMSI by key id */
	KL_WOP_PUT_APPID,
	KL_WOP_PUT_PAIR,     /* the pair key with a peer server, its expiry */
	KL_WOP_DEL,	     /* a whole entry of any kind */
	/* The NAF Key Center's (control/http/kl_naf_keys.h): a store side only. The Key Center's own
	 * index, not the key table, is their other side: it updates it after the commit. */
	KL_WOP_NAF_PUT,	       /* an issued Ks_local_MT */
	KL_WOP_NAF_INVALIDATE, /* the issued key replaced by its invalidated record (KCV, no key) */
	KL_WOP_NAF_DEL,	       /* an issued key (expired) */
	KL_WOP_NAF_BLOCK,      /* a blocklist entry added */
	KL_WOP_NAF_UNBLOCK,    /* a blocklist entry removed */
};

/* One write. Fill it with a constructor; the fields after "set by kl_write_stage" are the
 * library's. */
struct kl_write {
	uint8_t op;   /* enum kl_write_op */
	uint8_t kind; /* enum kl_table_kind */
	uint16_t key_len;
	uint8_t key[KL_TABLE_ID_MAX + 1]; /* identity bytes, group key (5) or IMSI digits + NUL */
	uint8_t secret_len;
	uint8_t secret[KL_WRITE_SECRET_MAX]; /* MUK, PSK, e2m_int_key, pair key */
	uint8_t ngroups;
	uint8_t services; /* KL_SVC() bits; put-ue: 0 = KL_SVC_DEFAULT */
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
	uint32_t key_id;
	uint64_t expires; /* NTP timestamp, 0 = never */
	char imsi[KL_TABLE_IMSI_MAX + 1]; /* put-appid */
	struct kl_group group;		  /* put-group */
	/* set by kl_write_stage */
	uint8_t existed; /* the entry was in the key table (the feed may set it from its queue) */
	uint8_t stored;	 /* the store took the write (0: no store, or a table-only entry) */
	uint8_t in_store; /* the store held the entry before this write (never deleted by an undo) */
	/* the NAF ops': the issued key's fields (naf_put: its key in secret), or the blocklist
	 * entry (naf_block_kind: enum kl_store_naf_block_kind, the value in naf.device_id) */
	struct kl_store_naf naf;
	uint8_t naf_block_kind;
	uint64_t naf_now; /* naf_block: the entry's time */
};

struct kl_writer {
	struct kl_table *table;
	struct kl_store *store; /* NULL: the table only */
	unsigned e2m_ring;	/* the table's ring size (kl_store_push_e2m keeps as many) */
	int keep_stored;	/* 1: a table refusal is not undone in the store (MSK rotation:
				   the stored state is announced and retried at the next tick) */
};

enum kl_write_where { KL_WR_OK, KL_WR_STORE, KL_WR_TABLE };

struct kl_write_result {
	int rc;		/* >= 0: the table's (0 added, 1 replaced); < 0: -errno */
	uint8_t where;	/* enum kl_write_where: who refused */
	uint8_t undone; /* the table refused: 1 the store write was undone */
	char msg[256];	/* the error for the operator (empty when rc >= 0) */
	char note[256]; /* the table refused a stored write: what became of it (for the log) */
};

/* Constructors: 0 or -EINVAL (a length over what the table takes, a NULL argument). */
int kl_write_ue(struct kl_write *w, const uint8_t *id, uint16_t len, const uint8_t *muk,
		unsigned muk_len, const struct kl_group_ref *groups, unsigned ngroups,
		uint64_t expires, uint8_t services);
int kl_write_ue_groups(struct kl_write *w, const uint8_t *id, uint16_t len,
		       const struct kl_group_ref *groups, unsigned ngroups);
int kl_write_ue_services(struct kl_write *w, const uint8_t *id, uint16_t len, uint8_t services);
int kl_write_group(struct kl_write *w, const struct kl_group_ref *ref, const struct kl_group *g);
int kl_write_emse(struct kl_write *w, const uint8_t *id, uint16_t len, const uint8_t *psk,
		  unsigned psk_len);
int kl_write_e2m(struct kl_write *w, const char *imsi, const uint8_t key[32], uint32_t key_id,
		 uint64_t expires);
int kl_write_e2m_del_key(struct kl_write *w, const char *imsi, uint32_t key_id);
int kl_write_appid(struct kl_write *w, const uint8_t *appid, uint16_t len, const char *imsi);
int kl_write_pair(struct kl_write *w, const uint8_t *peer, uint16_t len, const uint8_t *key,
		  unsigned key_len, uint64_t expires);
int kl_write_del(struct kl_write *w, enum kl_table_kind kind, const uint8_t *key, uint16_t len);
/* The NAF Key Center's writes (no table side: kl_write_apply leaves the key table alone; the
 * writer's table may be NULL). n: its identity, issued, expiry (and kcv for an invalidate). */
int kl_write_naf_key(struct kl_write *w, const struct kl_store_naf *n, const uint8_t key[32]);
int kl_write_naf_invalidate(struct kl_write *w, const struct kl_store_naf *n);
int kl_write_naf_del(struct kl_write *w, const struct kl_store_naf *n);
int kl_write_naf_block(struct kl_write *w, enum kl_store_naf_block_kind kind, const char *value,
		       int on, uint64_t now);
/** Whether op is one of the NAF Key Center's (store only). */
int kl_write_is_naf(const struct kl_write *w);
/** Wipe the write (its key copy). */
void kl_write_wipe(struct kl_write *w);

/** The store half. @return 0 (stored or staged, or nothing to store) or -errno (res says). */
int kl_write_stage(const struct kl_writer *wr, struct kl_write *w, struct kl_write_result *res);
/** The table half, the store write undone when the table refuses. @return res->rc. */
int kl_write_apply(const struct kl_writer *wr, const struct kl_write *w,
		   struct kl_write_result *res);
/** Stage, then apply. @return res->rc. */
int kl_write_do(const struct kl_writer *wr, struct kl_write *w, struct kl_write_result *res);

/** The text of a key table error rc for an entry of kind ("table full for ues", "no such ue
 * entry", ...) in out. @return out. */
char *kl_write_table_error(int rc, enum kl_table_kind kind, char *out, size_t cap);
/** The key group's table key (domain || group, big-endian). */
void kl_write_group_key(const struct kl_group_ref *ref, uint8_t key[5]);
/** The key group as the operator reads and writes it everywhere (answers, errors, logs,
 * keylinectl): "DDDDDD:G", the Key Domain ID in lower-case hex, the group in decimal.
 * @return out. */
char *kl_write_group_name(const struct kl_group_ref *ref, char out[16]);

#ifdef __cplusplus
}
#endif
#endif
