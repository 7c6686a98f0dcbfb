/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test driver of kl_etcd against real etcd members started by tests/test_etcd.py:
 *
 *   etcd_driver SCENARIO ENDPOINT[,ENDPOINT...] [ARG]
 *
 * Each scenario checks its own results and prints "FAIL: ..." and exits 1 on the first wrong one,
 * or prints its figures as "name=value" lines and "PASS" and exits 0. Scenarios: basic, binary,
 * race, cas, lease, watch, compact, failover (talks with the harness on stdin/stdout), bogus,
 * bench.
 */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_etcd.h"
#include "kl_test_driver.h"

#define OK(c, expr)                                                                                \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_)                                                                           \
			fail("%s:%d: %s: %s (%s)", __FILE__, __LINE__, #expr,                      \
			     kl_etcd_strerror(rc_), kl_etcd_errmsg(c));                            \
	} while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *g_eps[KL_ETCD_MAX_ENDPOINTS];
static size_t g_n_eps;

static struct kl_etcd *client(long request_ms)
{
	char err[256];
	/* TLS from the environment (the harness's tls group). */
	struct kl_etcd_opts o = { .endpoints = (const char *const *)g_eps, .n_endpoints = g_n_eps,
				  .connect_timeout_ms = 500, .request_timeout_ms = request_ms,
				  .ca_file = getenv("KL_ETCD_CA"), .cert_file = getenv("KL_ETCD_CERT"),
				  .key_file = getenv("KL_ETCD_KEY") };
	struct kl_etcd *c = kl_etcd_new(&o, err, sizeof(err));

	CHECK(c, "kl_etcd_new: %s", err);
	return c;
}

static int64_t current_revision(struct kl_etcd *c)
{
	struct kl_etcd_status st;

	OK(c, kl_etcd_status(c, &st));
	return st.hdr.revision;
}

/* Put keys "PREFIX%06d" = "v%06d" with n_per_txn puts per transaction. */
static void fill(struct kl_etcd *c, const char *prefix, int n, int n_per_txn)
{
	struct kl_etcd_op ops[KL_ETCD_MAX_TXN_OPS];
	static char keys[KL_ETCD_MAX_TXN_OPS][64], vals[KL_ETCD_MAX_TXN_OPS][32];

	for (int i = 0; i < n;) {
		int k = 0;
		struct kl_etcd_txn_result t;

		for (; k < n_per_txn && i < n; k++, i++) {
			snprintf(keys[k], sizeof(keys[k]), "%s%06d", prefix, i);
			snprintf(vals[k], sizeof(vals[k]), "v%06d", i);
			ops[k] = (struct kl_etcd_op){ .kind = KL_ETCD_OP_PUT,
						      .key = (uint8_t *)keys[k],
						      .key_len = strlen(keys[k]),
						      .value = (uint8_t *)vals[k],
						      .value_len = strlen(vals[k]) };
		}
		OK(c, kl_etcd_txn(c, NULL, 0, ops, (size_t)k, NULL, 0, &t));
		CHECK(t.succeeded && t.n == (size_t)k, "txn of %d puts: succeeded %d, %zu results", k,
		      t.succeeded, t.n);
		kl_etcd_txn_result_free(&t);
	}
}

/* ---- basic: put/get, 10,000 keys paged ---------------------------------------------------- */

static void scen_basic(void)
{
	struct kl_etcd *c = client(5000);
	struct kl_etcd_range r;
	int64_t rev, rev2, deleted;
	const int n = 10000;
	double t0;
	char after[64];
	size_t after_len = 0;
	int seen = 0, pages = 0;

	OK(c, kl_etcd_put(c, "basic/one", 9, "1", 1, 0, &rev));
	CHECK(rev > 0, "put revision %" PRId64, rev);
	OK(c, kl_etcd_get(c, "basic/one", 9, &r));
	CHECK(r.n == 1 && r.kvs[0].value_len == 1 && r.kvs[0].value[0] == '1' &&
		      r.kvs[0].mod_revision == rev && r.kvs[0].version == 1 && r.hdr.revision >= rev,
	      "get after put: n %zu", r.n);
	kl_etcd_range_free(&r);
	OK(c, kl_etcd_get(c, "basic/none", 10, &r));
	CHECK(r.n == 0 && r.count == 0 && r.hdr.revision >= rev, "missing key: n %zu", r.n);
	kl_etcd_range_free(&r);
	/* An empty value is a value ("value" omitted by the gateway). */
	OK(c, kl_etcd_put(c, "basic/empty", 11, "", 0, 0, NULL));
	OK(c, kl_etcd_get(c, "basic/empty", 11, &r));
	CHECK(r.n == 1 && r.kvs[0].value_len == 0, "empty value");
	kl_etcd_range_free(&r);

	t0 = now_s();
	fill(c, "page/", n, 128);
	printf("fill_10000_keys_s=%.3f\n", now_s() - t0);

	OK(c, kl_etcd_range_page(c, "page/", 5, NULL, 0, 1, 0, &r));
	rev = r.hdr.revision;
	CHECK(r.count == n && r.more && r.n == 1, "first page: count %" PRId64, r.count);
	kl_etcd_range_free(&r);
	/* A write after the snapshot must not show in the pages read at its revision. */
	OK(c, kl_etcd_put(c, "page/zzz-later", 14, "x", 1, 0, &rev2));
	CHECK(rev2 > rev, "later put");
	t0 = now_s();
	for (;;) {
		OK(c, kl_etcd_range_page(c, "page/", 5, pages ? after : NULL, after_len, 777, rev, &r));
		pages++;
		for (size_t i = 0; i < r.n; i++, seen++) {
			char want[32];

			snprintf(want, sizeof(want), "page/%06d", seen);
			CHECK(r.kvs[i].key_len == strlen(want) && !memcmp(r.kvs[i].key, want, 11),
			      "page %d key %zu: not %s", pages, i, want);
			CHECK(r.kvs[i].value_len == 7 && !memcmp(r.kvs[i].value + 1, want + 5, 6),
			      "value of %s", want);
		}
		if (r.n) {
			memcpy(after, r.kvs[r.n - 1].key, r.kvs[r.n - 1].key_len);
			after_len = r.kvs[r.n - 1].key_len;
		}
		if (!r.more) {
			kl_etcd_range_free(&r);
			break;
		}
		CHECK(r.n == 777, "page %d has %zu keys with more", pages, r.n);
		kl_etcd_range_free(&r);
	}
	CHECK(seen == n && pages == (n + 776) / 777, "paged %d keys in %d pages", seen, pages);
	printf("paged_keys_per_s=%.0f\n", n / (now_s() - t0));
	/* count_only / keys_only */
	{
		uint8_t end[8];
		struct kl_etcd_range_req q = { .key = (const uint8_t *)"page/", .key_len = 5,
					       .range_end = end, .count_only = 1 };

		q.range_end_len = kl_etcd_prefix_end(q.key, 5, end);
		OK(c, kl_etcd_range(c, &q, &r));
		CHECK(r.count == n + 1 && r.n == 0, "count_only: %" PRId64, r.count);
		kl_etcd_range_free(&r);
	}
	OK(c, kl_etcd_delete(c, "page/", 5, 1, &deleted, &rev));
	CHECK(deleted == n + 1, "prefix delete removed %" PRId64, deleted);
	OK(c, kl_etcd_delete(c, "basic/one", 9, 0, &deleted, NULL));
	CHECK(deleted == 1, "delete one");
	OK(c, kl_etcd_delete(c, "basic/one", 9, 0, &deleted, NULL));
	CHECK(deleted == 0, "delete absent");
	CHECK(kl_etcd_put(c, "", 0, "x", 1, 0, NULL) == KL_ETCD_EINVAL, "empty key accepted");
	kl_etcd_free(c);
}

/* ---- binary: every byte value in keys and values ------------------------------------------- */

static void scen_binary(void)
{
	struct kl_etcd *c = client(5000);
	uint8_t all[256], key[260];
	struct kl_etcd_range r;

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	memcpy(key, "bin/", 4);
	memcpy(key + 4, all, 256);
	OK(c, kl_etcd_put(c, key, sizeof(key), all, sizeof(all), 0, NULL));
	OK(c, kl_etcd_get(c, key, sizeof(key), &r));
	CHECK(r.n == 1 && r.kvs[0].key_len == sizeof(key) && !memcmp(r.kvs[0].key, key, sizeof(key)) &&
		      r.kvs[0].value_len == 256 && !memcmp(r.kvs[0].value, all, 256),
	      "256 byte values do not round-trip");
	kl_etcd_range_free(&r);
	/* Every length 0..64 of every rotation (base64's three padding cases). */
	for (int len = 0; len <= 64; len++) {
		uint8_t k[8] = { 'b', 'l', '/', (uint8_t)len, 0xff, 0x00 };
		uint8_t v[64];

		for (int i = 0; i < len; i++)
			v[i] = (uint8_t)(255 - i * 7 - len);
		OK(c, kl_etcd_put(c, k, 6, v, (size_t)len, 0, NULL));
		OK(c, kl_etcd_get(c, k, 6, &r));
		CHECK(r.n == 1 && r.kvs[0].value_len == (size_t)len && !memcmp(r.kvs[0].value, v,
									       (size_t)len),
		      "value of length %d", len);
		kl_etcd_range_free(&r);
	}
	/* A prefix ending in 0xff: the range end carries over. */
	{
		int64_t d;
		uint8_t p[4] = { 'b', 'l', '/' };

		OK(c, kl_etcd_range_page(c, p, 3, NULL, 0, 0, 0, &r));
		CHECK(r.n == 65, "bl/ range has %zu keys", r.n);
		kl_etcd_range_free(&r);
		OK(c, kl_etcd_delete(c, p, 3, 1, &d, NULL));
		CHECK(d == 65, "deleted %" PRId64, d);
	}
	kl_etcd_free(c);
}

/* ---- race: create-only-if-absent from two clients ------------------------------------------- */

#define RACE_KEYS 300
static pthread_barrier_t race_bar;
static int race_won[2][RACE_KEYS];

struct racer {
	int id;
	const char *err;
	char msg[512];
};

static void *racer_main(void *arg)
{
	struct racer *me = arg;
	struct kl_etcd *c = client(5000);
	char key[32], val[8];

	snprintf(val, sizeof(val), "c%d", me->id);
	for (int i = 0; i < RACE_KEYS; i++) {
		struct kl_etcd_cmp cmp = { .target = KL_ETCD_CREATE, .op = KL_ETCD_EQUAL,
					   .number = 0 };
		struct kl_etcd_op put = { .kind = KL_ETCD_OP_PUT, .value = (uint8_t *)val,
					  .value_len = 2 };
		struct kl_etcd_op get = { .kind = KL_ETCD_OP_RANGE };
		struct kl_etcd_txn_result t;
		int rc;

		snprintf(key, sizeof(key), "race/%04d", i);
		cmp.key = put.key = get.key = (uint8_t *)key;
		cmp.key_len = put.key_len = get.key_len = strlen(key);
		pthread_barrier_wait(&race_bar);
		rc = kl_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t);
		if (rc) {
			snprintf(me->msg, sizeof(me->msg), "%s", kl_etcd_errmsg(c));
			me->err = me->msg;
			race_won[me->id][i] = -1;
			continue;
		}
		race_won[me->id][i] = t.succeeded;
		if (!t.succeeded) {
			/* The loser sees the winner's value in its failure branch. */
			if (t.n != 1 || t.res[0].kind != KL_ETCD_OP_RANGE || t.res[0].range.n != 1 ||
			    memcmp(t.res[0].range.kvs[0].value, me->id ? "c0" : "c1", 2)) {
				me->err = "the failure branch does not show the other's value";
			}
		}
		kl_etcd_txn_result_free(&t);
	}
	kl_etcd_free(c);
	return NULL;
}

static void scen_race(void)
{
	pthread_t th[2];
	struct racer r[2] = { { .id = 0 }, { .id = 1 } };
	struct kl_etcd *c = client(5000);
	int wins[2] = { 0, 0 };

	pthread_barrier_init(&race_bar, NULL, 2);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, racer_main, &r[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(!r[0].err && !r[1].err, "racer: %s", r[0].err ? r[0].err : r[1].err);
	for (int i = 0; i < RACE_KEYS; i++) {
		struct kl_etcd_range g;
		char key[32];

		CHECK(race_won[0][i] + race_won[1][i] == 1, "key %d: %d winners", i,
		      race_won[0][i] + race_won[1][i]);
		wins[race_won[1][i]]++;
		snprintf(key, sizeof(key), "race/%04d", i);
		OK(c, kl_etcd_get(c, key, strlen(key), &g));
		CHECK(g.n == 1 && g.kvs[0].version == 1 &&
			      g.kvs[0].value[1] == (race_won[1][i] ? '1' : '0'),
		      "key %d: stored value is not the winner's", i);
		kl_etcd_range_free(&g);
	}
	printf("race_keys=%d\nwins_client0=%d\nwins_client1=%d\n", RACE_KEYS, wins[0], wins[1]);
	OK(c, kl_etcd_delete(c, "race/", 5, 1, NULL, NULL));
	kl_etcd_free(c);
}

/* ---- cas: compare-and-swap on mod_revision, version, value ---------------------------------- */

static void scen_cas(void)
{
	struct kl_etcd *c = client(5000);
	struct kl_etcd_range r;
	struct kl_etcd_txn_result t;
	int64_t rev1, rev2;
	const uint8_t *k = (const uint8_t *)"cas/k";
	struct kl_etcd_cmp cmp = { .key = k, .key_len = 5, .target = KL_ETCD_MOD, .op = KL_ETCD_EQUAL };
	struct kl_etcd_op put = { .kind = KL_ETCD_OP_PUT, .key = k, .key_len = 5 };
	struct kl_etcd_op get = { .kind = KL_ETCD_OP_RANGE, .key = k, .key_len = 5 };

	OK(c, kl_etcd_put(c, k, 5, "a", 1, 0, &rev1));
	cmp.number = rev1;
	put.value = (const uint8_t *)"b";
	put.value_len = 1;
	OK(c, kl_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t));
	CHECK(t.succeeded && t.n == 1 && t.res[0].kind == KL_ETCD_OP_PUT, "CAS at the read revision");
	rev2 = t.hdr.revision;
	kl_etcd_txn_result_free(&t);
	/* The same swap again, from the stale revision: refused, the failure branch reads. */
	put.value = (const uint8_t *)"c";
	OK(c, kl_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t));
	CHECK(!t.succeeded && t.n == 1 && t.res[0].kind == KL_ETCD_OP_RANGE &&
		      t.res[0].range.n == 1 && t.res[0].range.kvs[0].value[0] == 'b' &&
		      t.res[0].range.kvs[0].mod_revision == rev2,
	      "stale CAS not refused");
	kl_etcd_txn_result_free(&t);
	/* version == 2, value == "b", create_revision == rev1 together; LESS / GREATER / NOT_EQUAL. */
	{
		struct kl_etcd_cmp all[] = {
			{ .key = k, .key_len = 5, .target = KL_ETCD_VERSION, .op = KL_ETCD_EQUAL,
			  .number = 2 },
			{ .key = k, .key_len = 5, .target = KL_ETCD_VALUE, .op = KL_ETCD_EQUAL,
			  .value = (const uint8_t *)"b", .value_len = 1 },
			{ .key = k, .key_len = 5, .target = KL_ETCD_CREATE, .op = KL_ETCD_EQUAL,
			  .number = rev1 },
			{ .key = k, .key_len = 5, .target = KL_ETCD_MOD, .op = KL_ETCD_GREATER,
			  .number = rev1 },
			{ .key = k, .key_len = 5, .target = KL_ETCD_MOD, .op = KL_ETCD_LESS,
			  .number = rev2 + 1 },
			{ .key = k, .key_len = 5, .target = KL_ETCD_VALUE, .op = KL_ETCD_NOT_EQUAL,
			  .value = (const uint8_t *)"a", .value_len = 1 },
		};
		struct kl_etcd_op del = { .kind = KL_ETCD_OP_DELETE, .key = k, .key_len = 5 };

		OK(c, kl_etcd_txn(c, all, 6, &del, 1, NULL, 0, &t));
		CHECK(t.succeeded && t.n == 1 && t.res[0].deleted == 1, "six compares");
		kl_etcd_txn_result_free(&t);
		OK(c, kl_etcd_get(c, k, 5, &r));
		CHECK(r.n == 0, "deleted by txn");
		kl_etcd_range_free(&r);
		/* On the absent key, the value compare fails (the failure branch is empty). */
		OK(c, kl_etcd_txn(c, all + 1, 1, &del, 1, NULL, 0, &t));
		CHECK(!t.succeeded && t.n == 0, "compare on an absent key");
		kl_etcd_txn_result_free(&t);
	}
	/* Too many ops: refused before sending. */
	{
		static struct kl_etcd_op many[KL_ETCD_MAX_TXN_OPS + 1];

		CHECK(kl_etcd_txn(c, NULL, 0, many, KL_ETCD_MAX_TXN_OPS + 1, NULL, 0, &t) ==
			      KL_ETCD_EINVAL, "129 ops accepted");
	}
	kl_etcd_free(c);
}

/* ---- lease ---------------------------------------------------------------------------------- */

static void scen_lease(void)
{
	struct kl_etcd *c = client(5000);
	struct kl_etcd_lease l1, l2, ka;
	struct kl_etcd_range r;
	double t0;
	int kept = 0;

	OK(c, kl_etcd_lease_grant(c, 2, 0, &l1));
	OK(c, kl_etcd_lease_grant(c, 2, 0, &l2));
	CHECK(l1.id > 0 && l2.id > 0 && l1.id != l2.id && l1.ttl >= 2, "lease ids/TTL");
	OK(c, kl_etcd_put(c, "lease/a", 7, "a", 1, l1.id, NULL));
	OK(c, kl_etcd_put(c, "lease/b", 7, "b", 1, l2.id, NULL));
	OK(c, kl_etcd_get(c, "lease/a", 7, &r));
	CHECK(r.n == 1 && r.kvs[0].lease == l1.id, "key carries its lease");
	kl_etcd_range_free(&r);
	t0 = now_s();
	while (now_s() - t0 < 4.5) {
		OK(c, kl_etcd_lease_keepalive(c, l2.id, &ka));
		CHECK(ka.id == l2.id && ka.ttl > 0, "keep-alive TTL");
		kept++;
		struct timespec ts = { 0, 400 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	OK(c, kl_etcd_get(c, "lease/a", 7, &r));
	CHECK(r.n == 0, "lease/a still there 4.5 s after its 2 s lease without keep-alive");
	kl_etcd_range_free(&r);
	OK(c, kl_etcd_get(c, "lease/b", 7, &r));
	CHECK(r.n == 1, "lease/b gone although kept alive");
	kl_etcd_range_free(&r);
	CHECK(kl_etcd_lease_keepalive(c, l1.id, &ka) == KL_ETCD_ENOTFOUND && ka.ttl == 0,
	      "keep-alive of an expired lease: %s", kl_etcd_errmsg(c));
	OK(c, kl_etcd_lease_revoke(c, l2.id));
	OK(c, kl_etcd_get(c, "lease/b", 7, &r));
	CHECK(r.n == 0, "lease/b after revoke");
	kl_etcd_range_free(&r);
	CHECK(kl_etcd_lease_revoke(c, l2.id) == KL_ETCD_ENOTFOUND, "revoke twice: %s",
	      kl_etcd_errmsg(c));
	CHECK(kl_etcd_put(c, "lease/c", 7, "c", 1, l2.id, NULL) == KL_ETCD_ENOTFOUND,
	      "put with a revoked lease: %s", kl_etcd_errmsg(c));
	printf("keepalives=%d\n", kept);
	kl_etcd_free(c);
}

/* ---- watch ---------------------------------------------------------------------------------- */

struct expect {
	int type;
	char key[24];
	int64_t rev;
};

struct wstate {
	struct expect *got;
	size_t n, cap;
	int created, disconnected, compacted, canceled;
	int64_t compact_rev;
	char reason[512];
};

static void on_watch(void *arg, const struct kl_etcd_watch_note *n)
{
	struct wstate *s = arg;

	switch (n->what) {
	case KL_ETCD_W_CREATED:
		s->created++;
		break;
	case KL_ETCD_W_EVENT:
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 1024;
			s->got = realloc(s->got, s->cap * sizeof(*s->got));
			CHECK(s->got, "oom");
		}
		s->got[s->n].type = n->ev->type;
		snprintf(s->got[s->n].key, sizeof(s->got[s->n].key), "%.*s",
			 (int)(n->ev->kv.key_len < 23 ? n->ev->kv.key_len : 23), n->ev->kv.key);
		s->got[s->n].rev = n->ev->kv.mod_revision;
		s->n++;
		break;
	case KL_ETCD_W_DISCONNECTED:
		s->disconnected++;
		snprintf(s->reason, sizeof(s->reason), "%s", n->reason);
		break;
	case KL_ETCD_W_COMPACTED:
		s->compacted++;
		s->compact_rev = n->compact_revision;
		break;
	case KL_ETCD_W_CANCELED:
		s->canceled++;
		snprintf(s->reason, sizeof(s->reason), "%s", n->reason);
		break;
	}
}

/* The control loop's shape: poll the watch's fds with its timeout, then run it. */
static int pump(struct kl_etcd_watch *w, int max_ms)
{
	struct pollfd pf[8];
	int n = kl_etcd_watch_pollfds(w, pf, 8);
	int t = kl_etcd_watch_timeout_ms(w);

	if (t < 0 || t > max_ms)
		t = max_ms;
	poll(pf, (nfds_t)n, t);
	return kl_etcd_watch_run(w);
}

struct writer {
	int n;
	int64_t start_rev;
	struct expect *want;
	const char *prefix;
	int nwant;
};

/* n operations: puts of new keys, every third one a delete of the key put two before. */
static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	struct kl_etcd *c = client(5000);

	wr->want = calloc((size_t)wr->n, sizeof(*wr->want));
	for (int i = 0; i < wr->n; i++) {
		struct expect *e = &wr->want[i];
		int64_t rev, d;

		if (i % 3 == 2) {
			snprintf(e->key, sizeof(e->key), "%s%06d", wr->prefix, i - 2);
			OK(c, kl_etcd_delete(c, e->key, strlen(e->key), 0, &d, &rev));
			CHECK(d == 1, "delete %s", e->key);
			e->type = KL_ETCD_EV_DELETE;
		} else {
			snprintf(e->key, sizeof(e->key), "%s%06d", wr->prefix, i);
			OK(c, kl_etcd_put(c, e->key, strlen(e->key), "v", 1, 0, &rev));
			e->type = KL_ETCD_EV_PUT;
		}
		e->rev = rev;
	}
	wr->nwant = wr->n;
	kl_etcd_free(c);
	return NULL;
}

static void compare_events(const struct wstate *s, const struct expect *want, int n)
{
	CHECK(s->n == (size_t)n, "watch delivered %zu events of %d", s->n, n);
	for (int i = 0; i < n; i++) {
		CHECK(s->got[i].type == want[i].type && !strcmp(s->got[i].key, want[i].key) &&
			      s->got[i].rev == want[i].rev,
		      "event %d: got %d %s @%" PRId64 ", want %d %s @%" PRId64, i, s->got[i].type,
		      s->got[i].key, s->got[i].rev, want[i].type, want[i].key, want[i].rev);
		/* Other writers (the lease scenario) may take revisions in between. */
		CHECK(i == 0 || s->got[i].rev > s->got[i - 1].rev, "out of order at event %d", i);
	}
}

/* A watch of prefix from now on, once etcd confirmed it. */
static struct kl_etcd_watch *watch_from_now(struct kl_etcd *c, const char *prefix, struct wstate *s)
{
	struct kl_etcd_watch *w = kl_etcd_watch_new(c, prefix, strlen(prefix), 1, 0, on_watch, s);
	double t0 = now_s();

	CHECK(w, "watch_new");
	while (!s->created && now_s() - t0 < 5)
		pump(w, 100);
	CHECK(s->created, "watch of %s from now: not created", prefix);
	return w;
}

static void scen_watch(int n)
{
	struct kl_etcd *c = client(5000);
	struct wstate s = { 0 };
	struct writer wr = { .n = n, .prefix = "w/" };
	int64_t rev0 = current_revision(c);
	struct kl_etcd_watch *w = kl_etcd_watch_new(c, "w/", 2, 1, rev0 + 1, on_watch, &s);
	pthread_t th;
	double t0, dt;

	CHECK(w, "watch_new");
	t0 = now_s();
	pthread_create(&th, NULL, writer_main, &wr);
	while (s.n < (size_t)n && now_s() - t0 < 20)
		CHECK(pump(w, 100) == 0, "watch stopped: %s", s.reason);
	pthread_join(th, NULL);
	dt = now_s() - t0;
	compare_events(&s, wr.want, n);
	CHECK(s.created == 1 && s.disconnected == 0, "created %d disconnected %d (%s)", s.created,
	      s.disconnected, s.reason);
	/* At least past the last event (progress notifications may move it further). */
	CHECK(kl_etcd_watch_next_revision(w) > wr.want[n - 1].rev, "next revision");
	printf("watch_live_events=%d\nwatch_live_s=%.3f\n", n, dt);
	kl_etcd_watch_free(w);
	free(wr.want);

	/* Throughput: a backlog of 20,000 puts (128 per txn) replayed from its first revision. */
	{
		const int m = 20000;
		struct wstate s2 = { 0 };
		int64_t r0 = current_revision(c);

		fill(c, "wb/", m, 128);
		w = kl_etcd_watch_new(c, "wb/", 3, 1, r0 + 1, on_watch, &s2);
		t0 = now_s();
		while (s2.n < (size_t)m && now_s() - t0 < 20)
			CHECK(pump(w, 100) == 0, "watch stopped: %s", s2.reason);
		dt = now_s() - t0;
		CHECK(s2.n == (size_t)m, "backlog: %zu of %d events", s2.n, m);
		for (int i = 0; i < m; i++) {
			char want[24];

			snprintf(want, sizeof(want), "wb/%06d", i);
			CHECK(!strcmp(s2.got[i].key, want) && s2.got[i].type == KL_ETCD_EV_PUT,
			      "backlog event %d", i);
		}
		printf("watch_backlog_events=%d\nwatch_events_per_s=%.0f\n", m, m / dt);
		kl_etcd_watch_free(w);
		free(s2.got);
		OK(c, kl_etcd_delete(c, "wb/", 3, 1, NULL, NULL));
	}
	/* From now on (start 0): only later events. */
	{
		struct wstate s3 = { 0 };
		int64_t rev;

		w = watch_from_now(c, "w/", &s3);
		t0 = now_s();
		OK(c, kl_etcd_put(c, "w/now", 5, "n", 1, 0, &rev));
		while (s3.n < 1 && now_s() - t0 < 5)
			pump(w, 100);
		CHECK(s3.n == 1 && s3.got[0].rev == rev && !strcmp(s3.got[0].key, "w/now"),
		      "watch from now: %zu events", s3.n);
		kl_etcd_watch_free(w);
		free(s3.got);
	}
	/* An idle watch moves on with etcd's progress notifications (the harness runs etcd with a
	 * 200 ms interval): other keys' puts, no event, yet the resume revision passes them. */
	{
		struct wstate s4 = { 0 };
		int64_t rev;

		w = watch_from_now(c, "idle/", &s4);
		t0 = now_s();
		for (int i = 0; i < 20; i++)
			OK(c, kl_etcd_put(c, "other/x", 7, "x", 1, 0, &rev));
		while (kl_etcd_watch_next_revision(w) <= rev && now_s() - t0 < 5)
			CHECK(pump(w, 100) == 0, "idle watch stopped");
		/* Others (the lease scenario) may write meanwhile: past rev, not exactly rev + 1. */
		CHECK(s4.n == 0 && kl_etcd_watch_next_revision(w) > rev,
		      "idle watch resumes from %" PRId64 ", want > %" PRId64,
		      kl_etcd_watch_next_revision(w), rev);
		printf("idle_watch_progress_s=%.3f\n", now_s() - t0);
		kl_etcd_watch_free(w);
		OK(c, kl_etcd_delete(c, "other/", 6, 1, NULL, NULL));
	}
	OK(c, kl_etcd_delete(c, "w/", 2, 1, NULL, NULL));
	free(s.got);
	kl_etcd_free(c);
}

/* ---- compaction ----------------------------------------------------------------------------- */

static void scen_compact(void)
{
	struct kl_etcd *c = client(5000);
	int64_t revs[10];
	struct wstate s = { 0 };
	struct kl_etcd_watch *w;
	struct kl_etcd_range r;
	struct kl_etcd_range_req q = { .key = (const uint8_t *)"cmp/k", .key_len = 5 };
	double t0;

	for (int i = 0; i < 10; i++)
		OK(c, kl_etcd_put(c, "cmp/k", 5, "x", 1, 0, &revs[i]));
	OK(c, kl_etcd_compact(c, revs[5], 1));
	q.revision = revs[2];
	CHECK(kl_etcd_range(c, &q, &r) == KL_ETCD_ECOMPACTED, "range at a compacted revision: %s",
	      kl_etcd_errmsg(c));
	printf("compacted_range_error=%s\n", kl_etcd_errmsg(c));
	q.revision = revs[7];
	OK(c, kl_etcd_range(c, &q, &r));
	CHECK(r.n == 1 && r.kvs[0].mod_revision == revs[7], "range at a kept revision");
	kl_etcd_range_free(&r);

	w = kl_etcd_watch_new(c, "cmp/", 4, 1, revs[1], on_watch, &s);
	t0 = now_s();
	int rc = 0;
	while (!rc && now_s() - t0 < 10)
		rc = pump(w, 100);
	CHECK(rc == KL_ETCD_ECOMPACTED && s.compacted == 1 && s.compact_rev == revs[5] && s.n == 0,
	      "watch from a compacted revision: rc %d compacted %d at %" PRId64, rc, s.compacted,
	      s.compact_rev);
	CHECK(kl_etcd_watch_run(w) == KL_ETCD_ECOMPACTED, "stays stopped");
	/* The resync: restart from the compaction revision. */
	kl_etcd_watch_restart(w, revs[5]);
	t0 = now_s();
	while (s.n < 5 && now_s() - t0 < 10)
		CHECK(pump(w, 100) == 0, "restarted watch stopped");
	CHECK(s.n == 5 && s.got[0].rev == revs[5] && s.got[4].rev == revs[9], "after restart: %zu",
	      s.n);
	printf("compact_revision=%" PRId64 "\n", s.compact_rev);
	kl_etcd_watch_free(w);
	free(s.got);
	kl_etcd_free(c);
}

/* ---- failover: talks with the harness ------------------------------------------------------- */

static void wait_line(const char *want)
{
	char line[64];

	CHECK(fgets(line, sizeof(line), stdin) && !strncmp(line, want, strlen(want)),
	      "harness did not say %s", want);
}

static void puts_pumping(struct kl_etcd *c, struct kl_etcd_watch *w, int from, int n,
			 struct expect *want)
{
	for (int i = from; i < from + n; i++) {
		snprintf(want[i].key, sizeof(want[i].key), "fo/%06d", i);
		want[i].type = KL_ETCD_EV_PUT;
		OK(c, kl_etcd_put(c, want[i].key, strlen(want[i].key), "v", 1, 0, &want[i].rev));
		kl_etcd_watch_run(w);
	}
}

/* Put key until etcd acknowledges it (each try bounded by the request timeout), pumping the
 * watch; fails after 20 s. Returns the seconds it took. */
static double put_until_ok(struct kl_etcd *c, struct kl_etcd_watch *w, const char *key)
{
	double t0 = now_s();
	int rc, tries = 0;

	while ((rc = kl_etcd_put(c, key, strlen(key), "x", 1, 0, NULL))) {
		tries++;
		printf("retry_%s_%d=%s: %s\n", key, tries, kl_etcd_strerror(rc), kl_etcd_errmsg(c));
		CHECK(now_s() - t0 < 20, "%s: no successful put in 20 s", key);
		pump(w, 200);
	}
	return now_s() - t0;
}

static size_t count_fo(const struct wstate *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += !strncmp(s->got[i].key, "fo/0", 4);
	return n;
}

static void scen_failover(void)
{
	struct kl_etcd *c = client(2000);
	struct wstate s = { 0 };
	static struct expect want[300];
	int64_t rev0 = current_revision(c);
	struct kl_etcd_watch *w = kl_etcd_watch_new(c, "fo/", 3, 1, rev0 + 1, on_watch, &s);
	double t0;
	int rc;

	puts_pumping(c, w, 0, 100, want);
	while (s.n < 100)
		CHECK(pump(w, 100) == 0, "watch");
	printf("endpoint=%s\n", kl_etcd_endpoint(c));
	fflush(stdout);
	wait_line("killed");
	t0 = now_s();
	OK(c, kl_etcd_put(c, "fo/after", 8, "x", 1, 0, NULL));
	printf("failover_put_s=%.3f\n", now_s() - t0);
	printf("endpoint=%s\n", kl_etcd_endpoint(c));
	OK(c, kl_etcd_delete(c, "fo/after", 8, 0, NULL, NULL));
	/* The watch reconnects elsewhere and resumes with no gap. */
	want[100].type = KL_ETCD_EV_PUT;
	puts_pumping(c, w, 100, 100, want);
	t0 = now_s();
	while (s.n < 202 && now_s() - t0 < 10)
		CHECK(pump(w, 100) == 0, "watch");
	{
		/* Drop fo/after's put and delete from the comparison. */
		struct expect *g = calloc(s.n, sizeof(*g));
		size_t k = 0;

		for (size_t i = 0; i < s.n; i++)
			if (strcmp(s.got[i].key, "fo/after"))
				g[k++] = s.got[i];
		CHECK(s.n == 202, "watch across the failover: %zu events", s.n);
		CHECK(k == 200, "events of fo/after");
		for (int i = 0; i < 200; i++)
			CHECK(!strcmp(g[i].key, want[i].key) && g[i].rev == want[i].rev,
			      "event %d after failover", i);
		free(g);
	}
	CHECK(s.disconnected >= 1 && s.created >= 2, "watch: %d disconnects, %d creations",
	      s.disconnected, s.created);
	printf("watch_disconnect_reason=%s\n", s.reason);
	printf("watch_resumed_events=%zu\n", s.n);
	fflush(stdout);
	/* Two of three members gone: the write is refused, in bounded time. */
	wait_line("killed2");
	t0 = now_s();
	rc = kl_etcd_put(c, "fo/noquorum", 11, "x", 1, 0, NULL);
	printf("noquorum_put_s=%.3f\n", now_s() - t0);
	CHECK(rc == KL_ETCD_EUNKNOWN || rc == KL_ETCD_EUNREACHABLE || rc == KL_ETCD_ESERVER,
	      "put without quorum: rc %d", rc);
	printf("noquorum_put_error=%s: %s\n", kl_etcd_strerror(rc), kl_etcd_errmsg(c));
	t0 = now_s();
	{
		struct kl_etcd_range r;

		rc = kl_etcd_get(c, "fo/000001", 9, &r);
		printf("noquorum_get_s=%.3f\n", now_s() - t0);
		CHECK(rc != 0, "linearizable read without quorum succeeded");
		printf("noquorum_get_error=%s: %s\n", kl_etcd_strerror(rc), kl_etcd_errmsg(c));
	}
	fflush(stdout);
	/* The two members restarted: writes succeed again, and the watch (dropped by members
	 * without a leader, reconnecting) delivers what follows. */
	wait_line("restarted");
	printf("recover_put_s=%.3f\n", put_until_ok(c, w, "fo/recover"));
	puts_pumping(c, w, 200, 50, want);
	/* The leader killed: a write in flight may end "outcome unknown" (etcd drops a proposal
	 * forwarded to a dead leader); the next ones succeed once another member leads. */
	printf("ready_leader_kill=1\n");
	fflush(stdout);
	wait_line("killed3");
	printf("leader_failover_put_s=%.3f\n", put_until_ok(c, w, "fo/newleader"));
	puts_pumping(c, w, 250, 50, want);
	t0 = now_s();
	while (now_s() - t0 < 15 && count_fo(&s) < 300)
		CHECK(pump(w, 100) == 0, "watch");
	/* Every acknowledged write, in order, once; fo/noquorum's outcome was unknown: it may be
	 * there (committed after the recovery) or not. */
	{
		size_t k = 0;

		for (size_t i = 0; i < s.n; i++) {
			if (strncmp(s.got[i].key, "fo/0", 4))
				continue;
			CHECK(k < 300 && !strcmp(s.got[i].key, want[k].key) &&
				      s.got[i].rev == want[k].rev,
			      "event %zu (%s) after the recovery and the leader kill", k, s.got[i].key);
			k++;
		}
		CHECK(k == 300, "watch delivered %zu of 300 acknowledged puts", k);
	}
	printf("watch_final_events=%zu\n", s.n);
	printf("watch_disconnects=%d\n", s.disconnected);
	kl_etcd_watch_free(w);
	free(s.got);
	kl_etcd_free(c);
}

/* ---- bogus endpoints ------------------------------------------------------------------------ */

static void scen_bogus(void)
{
	struct kl_etcd *c = client(1500);
	struct kl_etcd_range r;
	struct kl_etcd_status st;
	struct wstate s = { 0 };
	struct kl_etcd_watch *w;
	double t0 = now_s();
	int rc;

	rc = kl_etcd_put(c, "x", 1, "y", 1, 0, NULL);
	printf("put=%s|%s|%.3f\n", kl_etcd_strerror(rc), kl_etcd_errmsg(c), now_s() - t0);
	t0 = now_s();
	rc = kl_etcd_get(c, "x", 1, &r);
	kl_etcd_range_free(&r);
	printf("get=%s|%s|%.3f\n", kl_etcd_strerror(rc), kl_etcd_errmsg(c), now_s() - t0);
	t0 = now_s();
	rc = kl_etcd_status(c, &st);
	printf("status=%s|%s|%.3f\n", kl_etcd_strerror(rc), kl_etcd_errmsg(c), now_s() - t0);
	w = kl_etcd_watch_new(c, "x", 1, 0, 1, on_watch, &s);
	t0 = now_s();
	while (!s.disconnected && !s.canceled && now_s() - t0 < 5)
		CHECK(pump(w, 100) == 0, "watch stopped");
	printf("watch=%d|%s|%.3f\n", s.disconnected, s.reason, now_s() - t0);
	printf("watch_created=%d\n", s.created);
	CHECK(s.disconnected && s.n == 0, "watch on a bogus endpoint");
	kl_etcd_watch_free(w);
	kl_etcd_free(c);
}

/* ---- bench ---------------------------------------------------------------------------------- */

static void scen_bench(int n)
{
	struct kl_etcd *c = client(5000);
	double t0 = now_s(), dt;

	for (int i = 0; i < n; i++) {
		char k[32];

		snprintf(k, sizeof(k), "bench/%06d", i);
		OK(c, kl_etcd_put(c, k, strlen(k), "0123456789abcdef0123456789abcdef", 32, 0, NULL));
	}
	dt = now_s() - t0;
	printf("sync_puts=%d\nsync_puts_per_s=%.0f\n", n, n / dt);
	t0 = now_s();
	fill(c, "benchtxn/", 128 * 100, 128);
	dt = now_s() - t0;
	printf("txn128_keys=%d\ntxn128_keys_per_s=%.0f\n", 128 * 100, 128 * 100 / dt);
	OK(c, kl_etcd_delete(c, "bench", 5, 1, NULL, NULL));
	kl_etcd_free(c);
}

static void scen_watch_n(int n)
{
	scen_watch(n ? n : 5000);
}

static void scen_bench_n(int n)
{
	scen_bench(n ? n : 2000);
}

#define NOARG(f)                                                                                   \
	static void f##_n(int n)                                                           \
	{                                                                                          \
		(void)n;                                                                           \
		f();                                                                               \
	}
NOARG(scen_basic)
NOARG(scen_binary)
NOARG(scen_race)
NOARG(scen_cas)
NOARG(scen_lease)
NOARG(scen_compact)
NOARG(scen_failover)
NOARG(scen_bogus)

static const struct {
	const char *name;
	void (*run)(int n);
} scenarios[] = {
	{ "basic", scen_basic_n },     { "binary", scen_binary_n },   { "race", scen_race_n },
	{ "cas", scen_cas_n },         { "lease", scen_lease_n },     { "watch", scen_watch_n },
	{ "compact", scen_compact_n }, { "failover", scen_failover_n }, { "bogus", scen_bogus_n },
	{ "bench", scen_bench_n },
};

int main(int argc, char **argv)
{
	char *save = NULL, *tok;

	if (argc < 3) {
		fprintf(stderr, "usage: etcd_driver SCENARIO ENDPOINT[,ENDPOINT...] [N]\n");
		return 2;
	}
	for (tok = strtok_r(argv[2], ",", &save); tok && g_n_eps < KL_ETCD_MAX_ENDPOINTS;
	     tok = strtok_r(NULL, ",", &save))
		g_eps[g_n_eps++] = tok;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (!strcmp(argv[1], scenarios[i].name)) {
			scenarios[i].run(argc > 3 ? atoi(argv[3]) : 0);
			printf("PASS\n");
			return 0;
		}
	}
	fprintf(stderr, "etcd_driver: unknown scenario %s\n", argv[1]);
	return 2;
}
