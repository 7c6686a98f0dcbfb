/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The store replicator on etcd (kl_cluster_repl.h): a store commit's changes as etcd
 * transactions of at most KL_ETCD_MAX_TXN_OPS puts/deletes, each with the compares its changes ask
 * for (the record they were computed from: VALUE == old, or CREATE == 0 when it was absent). A
 * transaction whose compares failed runs its failure branch instead: a range of each compared
 * key, so the error names the entry that changed (db and its number in the commit, never key
 * bytes). Records are the store's LMDB records, byte for byte (key material wrapped under the
 * KEK); nothing here unwraps or logs them.
 *
 * The transactions of one commit touch distinct keys (the store logs a key once per commit), so
 * they are independent: with kl_cluster_repl_set_parallel they go out over several connections
 * at once (a thread per extra connection for the duration of the commit, each taking the next
 * transaction when its last is answered; the caller waits for all), and etcd commits the
 * concurrent proposals with one fsync of its log.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_cluster_repl.h"

/* prefix | "/kv/" | db (at most 15) | "/" | hex of a key (at most KL_TABLE_ID_MAX bytes) */
#define DB_MAX 15 /* as kl_cluster_key.c */
#define EKEY_MAX (KL_CLUSTER_PREFIX_MAX + 4 + DB_MAX + 1 + 2 * KL_TABLE_ID_MAX + 1)

struct job;

/* One connection and the scratch of the transaction it sends. */
struct wk {
	struct kl_etcd *c;
	int own; /* c made by set_parallel */
	const char *prefix;
	const struct kl_store_change *ch; /* this transaction's changes */
	size_t m, base;			  /* how many; index of the first in the commit */
	int rc;
	int64_t rev;
	struct job *job; /* the commit it works on */
	char err[512];
	char keys[KL_ETCD_MAX_TXN_OPS][EKEY_MAX];
	size_t klen[KL_ETCD_MAX_TXN_OPS];
	struct kl_etcd_op ops[KL_ETCD_MAX_TXN_OPS], fail[KL_ETCD_MAX_TXN_OPS];
	struct kl_etcd_cmp cmp[KL_ETCD_MAX_TXN_OPS];
	size_t cmp_at[KL_ETCD_MAX_TXN_OPS]; /* the change (index in the transaction) of a compare */
};

struct kl_cluster_repl {
	char prefix[KL_CLUSTER_PREFIX_MAX + 1];
	struct kl_cluster_repl_stats st;
	unsigned nw;
	struct wk *w[KL_CLUSTER_REPL_PARALLEL_MAX];
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
	if (r)
		r->w[0] = calloc(1, sizeof(*r->w[0]));
	if (!r || !r->w[0]) {
		free(r);
		snprintf(err, errlen, "cluster: no memory for the replicator");
		return NULL;
	}
	snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
	r->w[0]->c = c;
	r->w[0]->prefix = r->prefix;
	r->nw = 1;
	return r;
}

static void drop_extra(struct kl_cluster_repl *r)
{
	for (unsigned i = 1; i < r->nw; i++) {
		kl_etcd_free(r->w[i]->c);
		free(r->w[i]);
		r->w[i] = NULL;
	}
	r->nw = 1;
}

void kl_cluster_repl_free(struct kl_cluster_repl *r)
{
	if (!r)
		return;
	drop_extra(r);
	free(r->w[0]);
	free(r);
}

int kl_cluster_repl_set_parallel(struct kl_cluster_repl *r, const struct kl_etcd_opts *opts,
				 unsigned n, char *err, size_t errlen)
{
	if (!r || n < 1 || n > KL_CLUSTER_REPL_PARALLEL_MAX || (n > 1 && !opts)) {
		snprintf(err, errlen, "cluster: parallel transactions: 1..%d connections",
			 KL_CLUSTER_REPL_PARALLEL_MAX);
		return -EINVAL;
	}
	drop_extra(r);
	for (unsigned i = 1; i < n; i++) {
		struct wk *w = calloc(1, sizeof(*w));

		if (w)
			w->c = kl_etcd_new(opts, err, errlen);
		if (!w || !w->c) {
			free(w);
			drop_extra(r);
			if (!w)
				snprintf(err, errlen, "cluster: no memory for a connection");
			return w ? -EINVAL : -ENOMEM;
		}
		w->own = 1;
		w->prefix = r->prefix;
		r->w[r->nw++] = w;
	}
	return 0;
}

void kl_cluster_repl_stats(const struct kl_cluster_repl *r, struct kl_cluster_repl_stats *out)
{
	if (r && out)
		*out = r->st;
	else if (out)
		memset(out, 0, sizeof(*out));
}

/* An etcd failure as -errno (kl_cluster_repl.h), with the client's message in w->err. */
static int etcd_fail(struct wk *w, int rc)
{
	const char *m = kl_etcd_errmsg(w->c);
	char *err = w->err;
	size_t errlen = sizeof(w->err);
	int e;

	switch (rc) {
	case KL_ETCD_EUNREACHABLE:
		e = -ENOTCONN;
		snprintf(err, errlen, "etcd unreachable, nothing written: %s", m);
		break;
	case KL_ETCD_EUNKNOWN: {
		struct kl_etcd_status st;
		char msg[200];

		e = -ETIMEDOUT;
		snprintf(msg, sizeof(msg), "%s", m);
		/* a member without a leader holds a proposal until the client gives up: say so
		 * first (status needs no quorum) */
		if (kl_etcd_status(w->c, &st) == 0 && !st.leader)
			snprintf(err, errlen, "etcd has no leader (quorum lost at %s): the outcome "
				 "is unknown: %s", kl_etcd_endpoint(w->c), msg);
		else
			snprintf(err, errlen, "etcd did not answer in time, the outcome is unknown: "
				 "%s", msg);
		break;
	}
	case KL_ETCD_ESERVER:
		if (strstr(m, "no leader") || strstr(m, "server stopped") ||
		    strstr(m, "not capable") || strstr(m, "too many requests")) {
			e = -ENOTCONN;
			snprintf(err, errlen, "etcd has no quorum, nothing written: %s", m);
		} else if (kl_etcd_grpc_code(w->c) == 14) { /* timed out, leader changed */
			e = -ETIMEDOUT;
			snprintf(err, errlen,
				 "etcd could not confirm the write, the outcome is unknown: %s", m);
		} else {
			e = -EIO;
			snprintf(err, errlen, "etcd refused the write: %s", m);
		}
		break;
	case KL_ETCD_EPROTO:
		e = -ETIMEDOUT; /* the answer is unreadable: applied or not */
		snprintf(err, errlen, "etcd's answer is malformed, the outcome is unknown: %s", m);
		break;
	case KL_ETCD_ENOMEM:
		e = -ENOMEM;
		snprintf(err, errlen, "no memory for the etcd transaction");
		break;
	default:
		e = -EINVAL;
		snprintf(err, errlen, "etcd transaction refused by the client: %s", m);
		break;
	}
	return e;
}

/* A failed compare: the failure branch's ranges tell which change's entry moved on. */
static void which_conflict(struct wk *w, size_t ncmp, const struct kl_etcd_txn_result *res)
{
	for (size_t j = 0; j < ncmp && j < res->n; j++) {
		const struct kl_store_change *c = &w->ch[w->cmp_at[j]];
		const struct kl_etcd_range *g = &res->res[j].range;
		int held = g->n == 1, same;

		same = c->old ? held && g->kvs[0].value_len == c->old_len &&
					!memcmp(g->kvs[0].value, c->old, c->old_len)
			      : !held;
		if (!same) {
			snprintf(w->err, sizeof(w->err),
				 "the %s entry of change #%zu of this commit was changed meanwhile "
				 "by another writer (%s): read it again and retry",
				 c->db, w->base + w->cmp_at[j] + 1,
				 c->old ? (held ? "another record" : "deleted") : "created");
			return;
		}
	}
	snprintf(w->err, sizeof(w->err), "an entry of this commit was changed meanwhile by "
		 "another writer: read it again and retry");
}

/* One transaction: w->ch[0..w->m). Sets w->rc (0 or -errno), w->rev, w->err; the changes'
 * mod_revision on success. */
static void *txn_one(void *arg)
{
	struct wk *w = arg;
	struct kl_etcd_txn_result res;
	size_t ncmp = 0;
	int rc;

	w->rev = 0;
	w->err[0] = '\0';
	for (size_t j = 0; j < w->m; j++) {
		const struct kl_store_change *c = &w->ch[j];

		if (!c->db || !c->key || !c->key_len ||
		    !(w->klen[j] = kl_cluster_key(w->prefix, c->db, c->key, c->key_len, w->keys[j],
						  EKEY_MAX))) {
			snprintf(w->err, sizeof(w->err), "change #%zu is not a catalogue entry",
				 w->base + j + 1);
			w->rc = -EINVAL;
			return NULL;
		}
		w->ops[j] = (struct kl_etcd_op){
			.kind = c->value ? KL_ETCD_OP_PUT : KL_ETCD_OP_DELETE,
			.key = (const uint8_t *)w->keys[j], .key_len = w->klen[j],
			.value = c->value, .value_len = c->value_len };
		if (!c->cmp_old)
			continue;
		w->cmp[ncmp] = (struct kl_etcd_cmp){ .key = w->ops[j].key, .key_len = w->klen[j],
						     .op = KL_ETCD_EQUAL };
		if (c->old) {
			w->cmp[ncmp].target = KL_ETCD_VALUE;
			w->cmp[ncmp].value = c->old;
			w->cmp[ncmp].value_len = c->old_len;
		} else {
			w->cmp[ncmp].target = KL_ETCD_CREATE;
			w->cmp[ncmp].number = 0;
		}
		w->fail[ncmp] = (struct kl_etcd_op){ .kind = KL_ETCD_OP_RANGE, .key = w->ops[j].key,
						     .key_len = w->klen[j] };
		w->cmp_at[ncmp++] = j;
	}
	rc = kl_etcd_txn(w->c, w->cmp, ncmp, w->ops, w->m, w->fail, ncmp, &res);
	if (rc) {
		w->rc = etcd_fail(w, rc);
		return NULL;
	}
	if (!res.succeeded) {
		which_conflict(w, ncmp, &res);
		kl_etcd_txn_result_free(&res);
		w->rc = -EAGAIN;
		return NULL;
	}
	w->rev = res.hdr.revision;
	kl_etcd_txn_result_free(&res);
	if (w->rev <= 0) {
		snprintf(w->err, sizeof(w->err), "etcd's answer to the transaction has no revision: "
			 "the outcome is unknown");
		w->rc = -ETIMEDOUT;
		return NULL;
	}
	for (size_t j = 0; j < w->m; j++)
		if (w->ch[j].mod_revision)
			*w->ch[j].mod_revision = w->rev;
	w->rc = 0;
	return NULL;
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One commit's transactions, shared by its connections: each takes the next one as soon as it
 * is done with its last (no waiting for the slowest of a wave). */
struct job {
	struct kl_cluster_repl *r;
	const struct kl_store_change *ch;
	size_t n, next, done;
	int64_t rev;
	int rc;
	char *err;
	size_t errlen;
	pthread_mutex_t m;
};

static void *worker(void *arg)
{
	struct wk *w = arg;
	struct job *j = w->job;

	pthread_mutex_lock(&j->m);
	while (!j->rc && j->next < j->n) {
		w->ch = j->ch + j->next;
		w->base = j->next;
		w->m = j->n - j->next < KL_ETCD_MAX_TXN_OPS ? j->n - j->next : KL_ETCD_MAX_TXN_OPS;
		j->next += w->m;
		pthread_mutex_unlock(&j->m);
		txn_one(w);
		pthread_mutex_lock(&j->m);
		j->r->st.txns++;
		if (w->rc) {
			/* the first failure stops the commit: no further transaction starts */
			if (!j->rc) {
				j->rc = w->rc;
				snprintf(j->err, j->errlen, "%s", w->err);
			}
			break;
		}
		j->r->st.ops += w->m;
		j->done += w->m;
		if (w->rev > j->rev)
			j->rev = w->rev;
	}
	pthread_mutex_unlock(&j->m);
	return NULL;
}

static int repl_commit(void *arg, const struct kl_store_change *ch, size_t n, int64_t *revision,
		       char *err, size_t errlen)
{
	struct kl_cluster_repl *r = arg;
	pthread_t th[KL_CLUSTER_REPL_PARALLEL_MAX];
	int started[KL_CLUSTER_REPL_PARALLEL_MAX];
	int64_t t0 = mono_us(), us;
	struct job j = { .r = r, .ch = ch, .n = n, .err = err, .errlen = errlen };
	size_t txns;
	unsigned k;
	int rc;

	if (!r || (!ch && n) || !revision)
		return -EINVAL;
	/* as many connections as the commit has transactions, the first on the caller's thread */
	txns = (n + KL_ETCD_MAX_TXN_OPS - 1) / KL_ETCD_MAX_TXN_OPS;
	k = txns < r->nw ? (unsigned)txns : r->nw;
	pthread_mutex_init(&j.m, NULL);
	for (unsigned i = 0; i < r->nw; i++)
		r->w[i]->job = &j;
	for (unsigned i = 1; i < k; i++)
		started[i] = pthread_create(&th[i], NULL, worker, r->w[i]) == 0;
	worker(r->w[0]);
	for (unsigned i = 1; i < k; i++)
		if (started[i])
			pthread_join(th[i], NULL);
	pthread_mutex_destroy(&j.m);
	rc = j.rc;
	if (rc) {
		size_t l = strlen(err);

		if (j.done && l < errlen)
			snprintf(err + l, errlen - l, " (%zu of the commit's %zu changes were "
				 "committed in other transactions)", j.done, n);
		if (rc == -EAGAIN)
			r->st.conflicts++;
		else if (rc == -ENOTCONN)
			r->st.unreachable++;
		else if (rc == -ETIMEDOUT)
			r->st.unknown++;
		return rc;
	}
	*revision = j.rev;
	us = mono_us() - t0;
	r->st.commits++;
	r->st.lat_us_sum += (uint64_t)us;
	if ((uint64_t)us > r->st.lat_us_max)
		r->st.lat_us_max = (uint64_t)us;
	r->st.last_revision = j.rev;
	return 0;
}

const struct kl_store_repl_ops kl_cluster_repl_ops = { .commit = repl_commit };
