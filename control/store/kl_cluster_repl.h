/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CONTRACT (issue 14, helpers b and c). Goes to control/store/kl_cluster_repl.h verbatim; add at
 * the END only. Implemented by helper c in control/store/kl_cluster_repl.c; used by helper b's
 * cluster service (control/store/kl_cluster.{h,c}), which sets it as the store's replicator.
 *
 * The store replicator on etcd (kl_store_repl.h): a store commit's changes become etcd
 * transactions (kl_etcd_txn), at most KL_ETCD_MAX_TXN_OPS operations each (a Diameter bulk push of
 * a few thousand keys is a few dozen round trips, not one per key), with the compares the changes
 * ask for. Failure mapping: KL_ETCD_EUNREACHABLE or a "no leader"/quorum error -> -ENOTCONN;
 * KL_ETCD_EUNKNOWN -> -ETIMEDOUT; a compare that failed -> -EAGAIN (which entry, by db and
 * record number, never key bytes). When a commit needs several transactions and a later one
 * fails, the earlier ones stay committed in etcd: the store aborts its LMDB transaction anyway
 * and the follower's watch brings those entries back (the caller was told the write failed and
 * retries; every put is idempotent).
 */
#ifndef KL_CLUSTER_REPL_H
#define KL_CLUSTER_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "kl_etcd.h"
#include "kl_store_repl.h"

#define KL_CLUSTER_PREFIX_MAX 128

struct kl_cluster_repl;

/* A replicator writing under prefix (copied; 1..KL_CLUSTER_PREFIX_MAX bytes, starts with '/',
 * no trailing '/') through c (not owned; must outlive it). NULL with err on a bad argument. */
struct kl_cluster_repl *kl_cluster_repl_new(struct kl_etcd *c, const char *prefix, char *err,
					    size_t errlen);
void kl_cluster_repl_free(struct kl_cluster_repl *r);

/* The ops to pass to kl_store_set_repl with the kl_cluster_repl as arg. */
extern const struct kl_store_repl_ops kl_cluster_repl_ops;

struct kl_cluster_repl_stats {
	uint64_t commits;     /* store commits replicated */
	uint64_t txns;	      /* etcd transactions sent */
	uint64_t ops;	      /* puts and deletes committed */
	uint64_t conflicts;   /* -EAGAIN */
	uint64_t unreachable; /* -ENOTCONN */
	uint64_t unknown;     /* -ETIMEDOUT */
	uint64_t lat_us_sum;  /* commit latency (whole commit), sum and count */
	uint64_t lat_us_max;
	int64_t last_revision; /* of the last successful commit */
};
void kl_cluster_repl_stats(const struct kl_cluster_repl *r, struct kl_cluster_repl_stats *out);

/* Catalogue keys: prefix "/kv/" db "/" hex(key). The encoder returns the length written to out
 * (NUL-terminated) or 0 when cap is too small. The parser takes an etcd key (bytes from a
 * watch or a range: peer input, checked completely) and gives the db name and the LMDB key:
 * 0, or -EINVAL when it is not a catalogue key of prefix (wrong prefix, unknown db, odd or
 * non-hex digits, key longer than key_cap). */
size_t kl_cluster_key(const char *prefix, const char *db, const uint8_t *key, size_t key_len,
		      char *out, size_t cap);
int kl_cluster_key_parse(const char *prefix, const uint8_t *ekey, size_t ekey_len, char db[16],
			 uint8_t *key, size_t key_cap, size_t *key_len);

/* Added (helper c). Send the transactions of one commit over up to n connections at once
 * (1..KL_CLUSTER_REPL_PARALLEL_MAX; 1, the default: one after the other over c): n - 1 more
 * clients are made from opts (give the options c was made with). The transactions of a commit
 * touch distinct keys; etcd commits concurrent proposals with one fsync, so a bulk push of a few
 * thousand keys costs about one round trip per n transactions. The caller still waits for all
 * (a thread per extra connection, for the duration of the commit only). 0, or -EINVAL / -ENOMEM
 * with err (the replicator is then back to one connection). */
#define KL_CLUSTER_REPL_PARALLEL_MAX 16
int kl_cluster_repl_set_parallel(struct kl_cluster_repl *r, const struct kl_etcd_opts *opts,
				 unsigned n, char *err, size_t errlen);

#endif
