/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CONTRACT (issue 14, helpers b and c). Goes to control/store/kl_store_repl.h verbatim; add at
 * the END only.
 *
 * The store's cluster hooks: how every durable write reaches etcd first, and how a node's LMDB
 * becomes a replica of the catalogue. Implemented in control/store/kl_store.c by helper c.
 *
 * Catalogue layout in etcd (prefix P from the config, e.g. "/keyline/c1", no trailing '/'):
 *   P/kv/<db>/<hex of the LMDB key, lower case>  -> the LMDB record of that key, byte for byte
 *        (kl_store.h "Record (value) format 1": key material wrapped under the KEK with the
 *        binding; etcd never sees a key in clear). <db> is the LMDB database name: ue, group,
 *        emse, e2m, appid, pair, naf, nafblock (every named database holding entries; not meta).
 *   P/meta/kek_check -> the store's meta "kek_check" value: created once (create_revision == 0)
 *        by the first node; a node whose KEK gives another value refuses to join (wrong KEK).
 *   P/nodes/<node>   -> JSON status of a node, attached to the node's lease (helper b).
 *   P/elect/...      -> elections (control/store/kl_elect.h, helper d).
 *   P/msk/<group>/<msk id> -> the MSK-ID guard (helper d).
 *
 * Writes (every kl_store write: admin, Diameter feed, rotation, NAF keys): with a replicator set,
 * each LMDB write transaction records its changes (db, key, new record or deletion, the old
 * record when the new one was computed from it) and, when it commits (kl_store_txn_commit or the
 * implicit commit of a write outside a batch), calls repl->commit BEFORE mdb_txn_commit:
 *   - commit returns 0 with the etcd revision: the changes are stamped (db "rev", below) in the
 *     same LMDB transaction, which then commits; the write is acknowledged.
 *   - commit fails: the LMDB transaction is aborted; the store call returns the error
 *     (-EAGAIN: a compare failed, someone changed the entry meanwhile; -ENOTCONN: etcd
 *     unreachable or no quorum, nothing applied; -ETIMEDOUT: outcome unknown, the watch will
 *     bring it if it was applied) and kl_store_last_error says "cluster: ...". The key table is
 *     untouched (kl_write applies the table only after the store succeeded).
 * A change whose new record was computed from the old one (push_e2m, set_ue_groups,
 * set_ue_services, del_e2m_key, put_group by rotation) carries old (NULL: the entry was absent)
 * and the replicator compares it (etcd VALUE == old, or CREATE == 0 when absent); plain puts and
 * deletes carry no compare (last writer wins).
 *
 * Replica: db "rev" maps (db name || 0x00 || key) -> i64 mod_revision (LE) of the catalogue
 * record the entry holds, or of its deletion (a tombstone, value with the high bit set: -rev).
 * kl_store_apply writes a record from the catalogue only when its revision is newer than the
 * stamp, so an old watch event never overwrites a newer local write. meta "etcd_revision" is the
 * catalogue revision the replica has applied completely (every event up to it).
 */
#ifndef KL_STORE_REPL_H
#define KL_STORE_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "kl_store.h"

struct kl_store_change {
	const char *db;	    /* LMDB database name */
	const uint8_t *key; /* LMDB key */
	size_t key_len;
	const uint8_t *value; /* new record; NULL: deleted */
	size_t value_len;
	const uint8_t *old; /* compare: the record it replaced (cmp_old set) */
	size_t old_len;
	uint8_t cmp_old; /* 1: the write is only valid if the catalogue still holds old (old NULL:
			    holds nothing) */
	/* Added (helper c): where the replicator may write the revision of the transaction that
	 * carried this change (its mod_revision; a commit of several transactions has several).
	 * The store stamps the entry with it (0 left there: *revision). Never NULL from the store. */
	int64_t *mod_revision;
};

struct kl_store_repl_ops {
	/* Make changes[0..n) durable in the catalogue (several etcd transactions when n exceeds
	 * what one takes). 0 and *revision (the revision of the last transaction), or -errno as
	 * above with a message in err (never key bytes). */
	int (*commit)(void *arg, const struct kl_store_change *changes, size_t n,
		      int64_t *revision, char *err, size_t errlen);
};

/** Set (ops non-NULL) or clear the replicator. No batch may be open. */
void kl_store_set_repl(struct kl_store *s, const struct kl_store_repl_ops *ops, void *arg);

/** The LMDB database name of a table kind ("ue", "group", ...). NULL for an unknown kind. */
const char *kl_store_db_name(enum kl_table_kind kind);
/** The table kind of a database name, or -1 (naf, nafblock, unknown: no key table entry). */
int kl_store_db_kind(const char *db);

/*
 * Apply one catalogue record (value NULL: a deletion) at mod revision rev, bypassing the
 * replicator: written (and stamped) only when rev is newer than the entry's stamp; the record is
 * checked exactly as kl_store_load checks it (unwrap, binding) before it is written.
 * @return 1 applied, 0 skipped (not newer), -EBADMSG (damaged or foreign record: not written),
 *         other -errno. Inside a batch when one is open (the follower applies a watch message's
 *         events in one batch, then kl_store_set_revision, then commits).
 */
int kl_store_apply(struct kl_store *s, const char *db, const uint8_t *key, size_t key_len,
		   const uint8_t *value, size_t value_len, int64_t rev);

/** Load the entry the store holds for (db, key) into the key table, or delete it from the table
 * when the store holds none (after kl_store_apply). Table refusals are returned as -errno. */
int kl_store_sync_table(struct kl_store *s, struct kl_table *t, const char *db,
			const uint8_t *key, size_t key_len);

/** meta "etcd_revision": the catalogue revision applied completely (0: never). */
int64_t kl_store_revision(struct kl_store *s);
/** Set it (in the open batch, or its own transaction). */
int kl_store_set_revision(struct kl_store *s, int64_t rev);

/** Every entry of every replicated database with its stamp (tombstones included: value NULL),
 * for a full resynchronisation (entries the snapshot no longer has are deleted). Stop early by
 * returning non-zero from cb (returned). */
int kl_store_each_record(struct kl_store *s,
			 int (*cb)(void *arg, const char *db, const uint8_t *key, size_t key_len,
				   const uint8_t *value, size_t value_len, int64_t rev),
			 void *arg);

/** Drop tombstones older than rev (once the replica has applied everything up to rev). */
int kl_store_purge_tombstones(struct kl_store *s, int64_t rev);

/** meta "kek_check" (the record joining nodes compare): copies at most cap bytes. @return its
 * length or -errno. */
long kl_store_kek_check(struct kl_store *s, uint8_t *out, size_t cap);

/* Added (helper c). The stamp (db "rev") of (db, key): > 0 the revision of the record held, < 0
 * a tombstone (-revision of the deletion), 0 none. -errno as a negative value is told apart by
 * the return: 0 and *stamp, or -errno. */
int kl_store_stamp(struct kl_store *s, const char *db, const uint8_t *key, size_t key_len,
		   int64_t *stamp);

/* Added (helper na). A view: an in-memory copy of a replicated database other than the key
 * table (the NAF Key Center's index of "naf" and "nafblock", control/http/kl_naf_keys.c).
 * kl_store_sync_table, which the follower calls for every catalogue entry it applied once the
 * batch that applied it has committed (watch events, full resynchronisation pages and the
 * resynchronisation's deletions alike: one path), then calls view(arg, db, key, key_len) on the
 * calling (control) thread, whatever the key table said: the store holds the entry as applied,
 * or no longer holds it (a deletion), and the view reads it from there (no batch is open). One
 * view per database; view NULL clears it (before arg goes). 0, or -EINVAL (not a replicated
 * database). */
typedef void (*kl_store_view_fn)(void *arg, const char *db, const uint8_t *key, size_t key_len);
int kl_store_set_view(struct kl_store *s, const char *db, kl_store_view_fn view, void *arg);

#endif
