/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The store replicator on etcd (kl_cluster_repl.h): a store commit's changes as etcd
 * transactions of at most KL_ETCD_MAX_TXN_OPS puts/deletes, each with the compares its changes ask
 * for (the record they were computed from: VALUE == old, or CREATE == 0 when it was absent). A
 * transaction whose compares failed runs its failure branch instead: a range of each compared
 * key, so the error names the entry that changed (db and its number in the commit, never key
 * bytes). Records are the store's LMDB records, byte for byte (key material wrapped under the
 * KEK); nothing here unwraps or logs them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_cluster_repl.h"

/* prefix | "/kv/" | db (at most 15) | "/" | hex of a key (at most KL_TABLE_ID_MAX bytes) */
#define DB_MAX 15 /* as kl_cluster_key.c */
#define EKEY_MAX (KL_CLUSTER_PREFIX_MAX + 4 + DB_MAX + 1 + 2 * KL_TABLE_ID_MAX + 1)

struct kl_cluster_repl {
	struct kl_etcd *c;
	char prefix[KL_CLUSTER_PREFIX_MAX + 1];
	struct kl_cluster_repl_stats st;
	char keys[KL_ETCD_MAX_TXN_OPS][EKEY_MAX]; /* one transaction's etcd keys */
	size_t klen[KL_ETCD_MAX_TXN_OPS];
	struct kl_etcd_op ops[KL_ETCD_MAX_TXN_OPS], fail[KL_ETCD_MAX_TXN_OPS];
	struct kl_etcd_cmp cmp[KL_ETCD_MAX_TXN_OPS];
	size_t cmp_at[KL_ETCD_MAX_TXN_OPS]; /* the change (index in the transaction) of a compare */
};

static int prefix_ok(const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;

	return n >= 1 && n <= KL_CLUSTER_PREFIX_MAX && prefix[0] == '/' && prefix[n - 1] != '/';
}

struct kl_cluster_repl *kl_cluster_repl_new(struct kl_etcd *c, const char *prefix, char *err,
					    size_t errlen)
{
	struct kl_cluster_repl *r;

	if (!c || !prefix_ok(prefix)) {
		snprintf(err, errlen, "cluster: the key prefix must be 1..%d bytes, start with '/' "
			 "and not end with '/'", KL_CLUSTER_PREFIX_MAX);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "cluster: no memory for the replicator");
		return NULL;
	}
	r->c = c;
	snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
	return r;
}

void kl_cluster_repl_free(struct kl_cluster_repl *r)
{
	free(r);
}

void kl_cluster_repl_stats(const struct kl_cluster_repl *r, struct kl_cluster_repl_stats *out)
{
	if (r && out)
		*out = r->st;
	else if (out)
		memset(out, 0, sizeof(*out));
}

/* An etcd failure as -errno (kl_cluster_repl.h), with the client's message in err. */
static int etcd_fail(struct kl_cluster_repl *r, int rc, size_t done, size_t n, char *err,
		     size_t errlen)
{
	const char *m = kl_etcd_errmsg(r->c);
	char part[96] = "";
	int e;

	if (done)
		snprintf(part, sizeof(part), " (%zu of the commit's %zu changes were committed before)",
			 done, n);
	switch (rc) {
	case KL_ETCD_EUNREACHABLE:
		e = -ENOTCONN;
		snprintf(err, errlen, "etcd unreachable, nothing written%s: %s", part, m);
		break;
	case KL_ETCD_EUNKNOWN:
		e = -ETIMEDOUT;
		snprintf(err, errlen, "etcd did not answer in time, the outcome is unknown%s: %s",
			 part, m);
		break;
	case KL_ETCD_ESERVER:
		if (strstr(m, "no leader") || strstr(m, "server stopped") ||
		    strstr(m, "not capable") || strstr(m, "too many requests")) {
			e = -ENOTCONN;
			snprintf(err, errlen, "etcd has no quorum, nothing written%s: %s", part, m);
		} else if (kl_etcd_grpc_code(r->c) == 14) { /* timed out, leader changed */
			e = -ETIMEDOUT;
			snprintf(err, errlen, "etcd could not confirm the write, the outcome is "
				 "unknown%s: %s", part, m);
		} else {
			e = -EIO;
			snprintf(err, errlen, "etcd refused the write%s: %s", part, m);
		}
		break;
	case KL_ETCD_EPROTO:
		e = -ETIMEDOUT; /* the answer is unreadable: applied or not */
		snprintf(err, errlen, "etcd's answer is malformed, the outcome is unknown%s: %s", part,
			 m);
		break;
	case KL_ETCD_ENOMEM:
		e = -ENOMEM;
		snprintf(err, errlen, "no memory for the etcd transaction");
		break;
	default:
		e = -EINVAL;
		snprintf(err, errlen, "etcd transaction refused by the client%s: %s", part, m);
		break;
	}
	if (e == -ENOTCONN)
		r->st.unreachable++;
	else if (e == -ETIMEDOUT)
		r->st.unknown++;
	return e;
}

/* A failed compare: the failure branch's ranges tell which change's entry moved on. */
static void which_conflict(const struct kl_cluster_repl *r, const struct kl_store_change *ch,
			   size_t base, size_t ncmp, const struct kl_etcd_txn_result *res, char *err,
			   size_t errlen)
{
	for (size_t j = 0; j < ncmp && j < res->n; j++) {
		const struct kl_store_change *c = &ch[r->cmp_at[j]];
		const struct kl_etcd_range *g = &res->res[j].range;
		int held = g->n == 1, same;

		same = c->old ? held && g->kvs[0].value_len == c->old_len &&
					!memcmp(g->kvs[0].value, c->old, c->old_len)
			      : !held;
		if (!same) {
			snprintf(err, errlen,
				 "the %s entry of change #%zu of this commit was changed meanwhile "
				 "by another writer (%s): read it again and retry",
				 c->db, base + r->cmp_at[j] + 1,
				 c->old ? (held ? "another record" : "deleted") : "created");
			return;
		}
	}
	snprintf(err, errlen, "an entry of this commit was changed meanwhile by another writer: "
		 "read it again and retry");
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One transaction of changes ch[0..m). 0 and *rev, or -errno. */
static int txn_one(struct kl_cluster_repl *r, const struct kl_store_change *ch, size_t m,
		   size_t base, size_t n, int64_t *rev, char *err, size_t errlen)
{
	struct kl_etcd_txn_result res;
	size_t ncmp = 0;
	int rc;

	for (size_t j = 0; j < m; j++) {
		const struct kl_store_change *c = &ch[j];

		if (!c->db || !c->key || !c->key_len ||
		    !(r->klen[j] = kl_cluster_key(r->prefix, c->db, c->key, c->key_len, r->keys[j],
						  EKEY_MAX))) {
			snprintf(err, errlen, "change #%zu is not a catalogue entry", base + j + 1);
			return -EINVAL;
		}
		r->ops[j] = (struct kl_etcd_op){
			.kind = c->value ? KL_ETCD_OP_PUT : KL_ETCD_OP_DELETE,
			.key = (const uint8_t *)r->keys[j], .key_len = r->klen[j],
			.value = c->value, .value_len = c->value_len };
		if (!c->cmp_old)
			continue;
		r->cmp[ncmp] = (struct kl_etcd_cmp){ .key = r->ops[j].key, .key_len = r->klen[j],
						     .op = KL_ETCD_EQUAL };
		if (c->old) {
			r->cmp[ncmp].target = KL_ETCD_VALUE;
			r->cmp[ncmp].value = c->old;
			r->cmp[ncmp].value_len = c->old_len;
		} else {
			r->cmp[ncmp].target = KL_ETCD_CREATE;
			r->cmp[ncmp].number = 0;
		}
		r->fail[ncmp] = (struct kl_etcd_op){ .kind = KL_ETCD_OP_RANGE, .key = r->ops[j].key,
						     .key_len = r->klen[j] };
		r->cmp_at[ncmp++] = j;
	}
	rc = kl_etcd_txn(r->c, r->cmp, ncmp, r->ops, m, r->fail, ncmp, &res);
	if (rc)
		return etcd_fail(r, rc, base, n, err, errlen);
	r->st.txns++;
	if (!res.succeeded) {
		which_conflict(r, ch, base, ncmp, &res, err, errlen);
		kl_etcd_txn_result_free(&res);
		r->st.conflicts++;
		return -EAGAIN;
	}
	*rev = res.hdr.revision;
	kl_etcd_txn_result_free(&res);
	if (*rev <= 0) {
		snprintf(err, errlen, "etcd's answer to the transaction has no revision: the outcome "
			 "is unknown");
		r->st.unknown++;
		return -ETIMEDOUT;
	}
	r->st.ops += m;
	return 0;
}

static int repl_commit(void *arg, const struct kl_store_change *ch, size_t n, int64_t *revision,
		       char *err, size_t errlen)
{
	struct kl_cluster_repl *r = arg;
	int64_t t0 = mono_us(), rev = 0, us;
	int rc = 0;

	if (!r || (!ch && n) || !revision)
		return -EINVAL;
	for (size_t i = 0; i < n && !rc; i += KL_ETCD_MAX_TXN_OPS) {
		size_t m = n - i < KL_ETCD_MAX_TXN_OPS ? n - i : KL_ETCD_MAX_TXN_OPS;

		rc = txn_one(r, ch + i, m, i, n, &rev, err, errlen);
		for (size_t j = 0; !rc && j < m; j++)
			if (ch[i + j].mod_revision)
				*ch[i + j].mod_revision = rev;
	}
	if (rc)
		return rc;
	*revision = rev;
	us = mono_us() - t0;
	r->st.commits++;
	r->st.lat_us_sum += (uint64_t)us;
	if ((uint64_t)us > r->st.lat_us_max)
		r->st.lat_us_max = (uint64_t)us;
	r->st.last_revision = rev;
	return 0;
}

const struct kl_store_repl_ops kl_cluster_repl_ops = { .commit = repl_commit };
