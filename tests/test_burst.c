/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst core without I/O: histogram percentiles against a sorted-array reference, start
 * schedules and back-off, and the whole request/verify cycle against a real request engine
 * (kl_worker) over a real key table filled by kl_pop_import: correct keys verify, a wrong MSK or
 * e2m_key and error answers fail their UEs, retransmitted UEs still verify answers to older
 * tries, garbage never counts as an answer. The frame code is checked against the server's own
 * L2-L4 code (kl_net) both ways.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <rte_eal.h>

#include "kl_burst.h"
#include "kl_burst_io.h"
#include "kl_eal_rundir.h"
#include "kl_engine.h"
#include "kl_net.h"
#include "kl_population.h"

#define MS 1000000ull

/* ---- histogram ------------------------------------------------------------------------------ */

static uint64_t rng_state = 42;

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void check_quantiles(const uint64_t *v, size_t n)
{
	static const double qs[] = { 0.0001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0 };
	struct kl_hist *h = malloc(sizeof(*h));
	uint64_t *s = malloc(n * sizeof(*s)), sum = 0;

	assert_non_null(h);
	assert_non_null(s);
	kl_hist_reset(h);
	for (size_t i = 0; i < n; i++) {
		kl_hist_add(h, v[i]);
		sum += v[i];
	}
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	assert_int_equal(h->count, n);
	assert_int_equal(h->sum, sum);
	assert_int_equal(h->min, s[0]);
	assert_int_equal(h->max, s[n - 1]);
	for (unsigned k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		size_t rank = (size_t)ceil(qs[k] * (double)n);
		uint64_t ref, got, lo, hi;

		if (rank < 1)
			rank = 1;
		ref = s[rank - 1];
		got = kl_hist_quantile(h, qs[k]);
		/* the reported value is in the reference sample's bucket, never below it, and off by at
		 * most the bucket's width: exact below 32, else at most 1/32 of the value */
		kl_hist_bounds(kl_hist_index(ref), &lo, &hi);
		assert_true(got >= ref);
		assert_true(got >= lo && (got < hi || hi == UINT64_MAX));
		assert_true(got - ref <= (ref < KL_HIST_SUB ? 0 : ref / KL_HIST_SUB));
		if (qs[k] == 1.0)
			assert_int_equal(got, s[n - 1]);
	}
	free(s);
	free(h);
}

static void test_hist_buckets(void **state)
{
	uint64_t lo, hi, plo = 0, phi = 0;

	(void)state;
	/* buckets tile [0, 2^64) without gaps or overlaps */
	for (unsigned i = 0; i < KL_HIST_BUCKETS; i++) {
		kl_hist_bounds(i, &lo, &hi);
		assert_true(lo < hi);
		if (i) {
			assert_int_equal(lo, phi);
			assert_true(lo > plo);
		}
		assert_int_equal(kl_hist_index(lo), i);
		assert_int_equal(kl_hist_index(hi - 1), i);
		/* log-linear: width at most 1/32 of the lower bound past the exact range */
		if (lo >= KL_HIST_SUB)
			assert_true(hi - lo <= lo / KL_HIST_SUB || hi == UINT64_MAX);
		plo = lo;
		phi = hi;
	}
	assert_int_equal(kl_hist_index(UINT64_MAX), KL_HIST_BUCKETS - 1);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rnd64() >> (rnd64() % 64);

		kl_hist_bounds(kl_hist_index(v), &lo, &hi);
		assert_true(v >= lo && (v < hi || hi == UINT64_MAX));
	}
}

static void test_hist_quantiles(void **state)
{
	enum { N = 20011 };
	uint64_t *v = malloc(N * sizeof(*v));
	struct kl_hist h;

	(void)state;
	assert_non_null(v);
	/* small integers (the exact range), log-uniform latencies, a constant, two clusters */
	for (size_t i = 0; i < N; i++)
		v[i] = rnd64() % 40;
	check_quantiles(v, N);
	for (size_t i = 0; i < N; i++)
		v[i] = (uint64_t)exp((double)(rnd64() % 1000000) / 1000000.0 * log(1e10));
	check_quantiles(v, N);
	for (size_t i = 0; i < N; i++)
		v[i] = 123457;
	check_quantiles(v, N);
	for (size_t i = 0; i < N; i++)
		v[i] = i % 100 ? 2000 + rnd64() % 100 : 5000000 + rnd64() % 1000000;
	check_quantiles(v, N);
	check_quantiles(v, 1);
	v[0] = UINT64_MAX;
	v[1] = 0;
	check_quantiles(v, 2);
	free(v);
	/* empty */
	kl_hist_reset(&h);
	assert_int_equal(kl_hist_quantile(&h, 0.99), 0);
}

/* ---- schedules and back-off ------------------------------------------------------------------ */

static void test_schedule(void **state)
{
	enum { N = 10000 };
	uint64_t *t = calloc(N, sizeof(*t)), *t2 = calloc(N, sizeof(*t2));
	uint32_t *o = calloc(N, sizeof(*o)), *o2 = calloc(N, sizeof(*o2));
	uint8_t *seen = calloc(N, 1);
	unsigned dec[10] = { 0 };
	double sum = 0;

	(void)state;
	assert_non_null(t);
	assert_non_null(t2);
	assert_non_null(o);
	assert_non_null(o2);
	assert_non_null(seen);
	/* burst: uniform in [0, window), sorted, a permutation, deterministic in the seed */
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_BURST, N, 2.0, 0, 7, t, o), 0);
	for (unsigned i = 0; i < N; i++) {
		assert_true(t[i] < 2000 * MS);
		if (i)
			assert_true(t[i] >= t[i - 1]);
		assert_true(o[i] < N);
		assert_false(seen[o[i]]);
		seen[o[i]] = 1;
		dec[t[i] / (200 * MS)]++;
	}
	for (unsigned d = 0; d < 10; d++) /* 1000 expected per tenth of the window */
		assert_true(dec[d] > 850 && dec[d] < 1150);
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_BURST, N, 2.0, 0, 7, t2, o2), 0);
	assert_memory_equal(t, t2, N * sizeof(*t));
	assert_memory_equal(o, o2, N * sizeof(*o));
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_BURST, N, 2.0, 0, 8, t2, o2), 0);
	assert_memory_not_equal(o, o2, N * sizeof(*o));
	/* rate: UE i at i / rate */
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_RATE, N, 0, 4000, 1, t, o), 0);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(o[i], i);
		assert_int_equal(t[i], (uint64_t)i * 250000u);
	}
	/* poisson: mean gap 1 / rate, gaps spread like an exponential (a tenth above 2.3 / rate) */
	{
		unsigned long_gaps = 0;

		assert_int_equal(kl_burst_schedule(KL_BURST_MODE_POISSON, N, 0, 1000, 3, t, o), 0);
		for (unsigned i = 1; i < N; i++) {
			uint64_t g = t[i] - t[i - 1];

			assert_true(t[i] >= t[i - 1]);
			sum += (double)g;
			long_gaps += g > (uint64_t)(2.302585 * MS);
		}
		assert_true(fabs(sum / (N - 1) - 1e6) < 0.05e6);
		assert_true(long_gaps > 850 && long_gaps < 1150);
	}
	/* max: everyone at t0 */
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_MAX, N, 0, 0, 1, t, o), 0);
	for (unsigned i = 0; i < N; i++)
		assert_true(t[i] == 0 && o[i] == i);
	/* bad arguments */
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_BURST, N, 0, 0, 1, t, o), -EINVAL);
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_RATE, N, 1, 0, 1, t, o), -EINVAL);
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_POISSON, N, 1, -5, 1, t, o), -EINVAL);
	assert_int_equal(kl_burst_schedule(KL_BURST_MODE_BURST, N, NAN, 0, 1, t, o), -EINVAL);
	free(t);
	free(t2);
	free(o);
	free(o2);
	free(seen);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(kl_burst_backoff_ns(100, 0), 100 * MS);
	assert_int_equal(kl_burst_backoff_ns(100, 1), 200 * MS);
	assert_int_equal(kl_burst_backoff_ns(100, 2), 400 * MS);
	assert_int_equal(kl_burst_backoff_ns(100, 10), 102400 * MS);
	assert_int_equal(kl_burst_backoff_ns(600000, 10), KL_BURST_BACKOFF_CAP_MS * MS);
	assert_int_equal(kl_burst_backoff_ns(1, 63), KL_BURST_BACKOFF_CAP_MS * MS);
	for (unsigned t = 1; t < 20; t++)
		assert_true(kl_burst_backoff_ns(7, t) >= kl_burst_backoff_ns(7, t - 1));
}

/* ---- the core against a real engine ------------------------------------------------------------ */

static struct kl_table *tab;
static struct kl_worker *wk;
static struct kl_pop_params pop;

/* What the fake network does with each answer. */
enum net_fate { DELIVER, HOLD, DROP };

struct held {
	uint8_t buf[1600];
	uint16_t len;
};

static uint8_t outbuf[KL_BURST_TX_MAX][1600];
static uint64_t engine_ahead; /* NTP units the engine's clock is ahead of ours */
static uint8_t inbuf[KL_BURST_TX_MAX][KL_BURST_DGRAM_MAX];

/* One loop round: requests due at now go through the engine; answers are delivered, held back
 * (appended to hold) or dropped. Returns the number of requests. */
static unsigned round_trip(struct kl_burst *b, uint64_t now, enum net_fate fate, struct held *hold,
			   unsigned *nhold, unsigned hold_cap)
{
	struct kl_burst_dgram dg[KL_BURST_TX_MAX];
	struct kl_pkt p[KL_BURST_TX_MAX];
	unsigned n = kl_burst_next(b, now, dg, KL_BURST_TX_MAX);

	for (unsigned i = 0; i < n; i++) {
		assert_true(dg[i].len > 0 && dg[i].len <= KL_BURST_DGRAM_MAX);
		memcpy(inbuf[i], dg[i].data, dg[i].len);
		p[i] = (struct kl_pkt){ .in = inbuf[i], .out = outbuf[i], .in_len = dg[i].len,
					.out_cap = sizeof(outbuf[i]) };
		dg[i].sent = 1;
	}
	kl_burst_sent(b, dg, n, now);
	if (n) {
		kl_engine_serve(wk, kl_ntp_now() + engine_ahead, p, n);
		kl_table_quiescent(tab, 0);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!p[i].out_len)
			continue;
		if (fate == DELIVER) {
			kl_burst_answer(b, outbuf[i], p[i].out_len, now + 50000);
		} else if (fate == HOLD && *nhold < hold_cap) {
			memcpy(hold[*nhold].buf, outbuf[i], p[i].out_len);
			hold[(*nhold)++].len = p[i].out_len;
		}
	}
	return n;
}

/* Run until every UE finished, delivering everything; returns the simulated end time. */
static uint64_t run_all(struct kl_burst *b, uint64_t now)
{
	for (int guard = 0; guard < 100000 && kl_burst_tick(b, now, NULL); guard++) {
		round_trip(b, now, DELIVER, NULL, NULL, 0);
		now += MS;
	}
	assert_int_equal(kl_burst_tick(b, now, NULL), 0);
	return now;
}

/* Defaults, then kind, ues, maximum rate and no pause between a UE's requests. */
static void max_config(struct kl_burst_config *c, enum kl_burst_kind kind, uint32_t ues)
{
	kl_burst_config_defaults(c);
	c->kind = kind;
	c->mode = KL_BURST_MODE_MAX;
	c->ues = ues;
	c->interval_ms = 0;
}

/* kl_burst_create on the test population; the test fails (with the reason) when it refuses. */
static struct kl_burst *create(const struct kl_burst_config *c)
{
	char err[256];
	struct kl_burst *b = kl_burst_create(c, &pop, err, sizeof(err));

	if (!b)
		fprintf(stderr, "kl_burst_create: %s\n", err);
	assert_non_null(b);
	return b;
}

static struct kl_burst *make(enum kl_burst_kind kind, uint32_t ues, enum kl_burst_mix prf)
{
	struct kl_burst_config c;

	max_config(&c, kind, ues);
	c.prf = prf;
	c.timeout_ms = 100;
	c.retries = 2;
	c.backend = KL_CRYPTO_OPENSSL;
	return create(&c);
}

static void test_mbms_all_verified(void **state)
{
	struct kl_burst *b = make(KL_BURST_KIND_MBMS, 300, KL_BURST_MIX_BOTH);
	const struct kl_burst_totals *t = kl_burst_totals(b);
	json_t *s;

	(void)state;
	kl_burst_start(b, 1000 * MS);
	run_all(b, 1000 * MS);
	assert_int_equal(t->c[KL_BC_VERIFIED], 300);
	assert_int_equal(t->c[KL_BC_FAILED], 0);
	assert_int_equal(t->c[KL_BC_SENT], 300);
	assert_int_equal(t->c[KL_BC_ANSWERED], 300);
	assert_int_equal(t->c[KL_BC_RETRANSMISSIONS], 0);
	assert_int_equal(kl_burst_latency(b)->count, 300);
	assert_int_equal(kl_burst_exit_code(b), 0);
	s = kl_burst_summary(b, 2000 * MS);
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "ok")), 300);
	assert_int_equal(json_integer_value(json_object_get(s, "exit")), 0);
	assert_true(json_is_real(json_object_get(s, "complete_s")));
	json_decref(s);
	kl_burst_destroy(b);
}

static void test_e2m_all_verified(void **state)
{
	(void)state;
	/* every combination of target (IMSI / application identity) and key choice, both PRFs */
	for (int tgt = 0; tgt < 3; tgt++)
		for (int key = 0; key < 3; key++) {
			struct kl_burst_config c;
			struct kl_burst *b;

			max_config(&c, KL_BURST_KIND_E2M, 40);
			c.first = 5;
			c.prf = KL_BURST_MIX_BOTH;
			c.e2m_target = (enum kl_burst_mix)tgt;
			c.e2m_key = (enum kl_burst_mix)key;
			c.backend = KL_CRYPTO_IPSECMB;
			b = create(&c);
			kl_burst_start(b, 0);
			run_all(b, 0);
			assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 40);
			assert_int_equal(kl_burst_exit_code(b), 0);
			kl_burst_destroy(b);
		}
}

/* Group 2 gets a wrong current MSK (same id and validity): its UEs must fail, the rest pass. */
static void test_wrong_key_and_errors(void **state)
{
	struct kl_group_ref ref;
	struct kl_group g, bad;
	struct kl_burst *b;
	const struct kl_burst_totals *t;
	json_t *s, *list;

	(void)state;
	assert_int_equal(kl_pop_group(&pop, 2, &ref, &g), 0);
	bad = g;
	bad.current.key[5] ^= 0x40;
	bad.next.key[0] ^= 0x01;
	assert_true(kl_table_put_group(tab, &ref, &bad) >= 0);
	b = make(KL_BURST_KIND_MBMS, 40, KL_BURST_MIX_A);
	t = kl_burst_totals(b);
	kl_burst_start(b, 0);
	run_all(b, 0);
	/* UE i is in group 1 + i % 4: ten of forty in group 2 */
	assert_int_equal(t->c[KL_BC_FAILED], 10);
	assert_int_equal(t->fail[KL_BF_WRONG_KEY], 10);
	assert_int_equal(t->c[KL_BC_VERIFIED], 30);
	assert_int_equal(kl_burst_exit_code(b), 1);
	s = kl_burst_summary(b, 1);
	list = json_object_get(json_object_get(s, "failures"), "list");
	assert_int_equal(json_array_size(list), 10);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "reason")),
			    "wrong_key");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "ue")) % 4, 1);
	/* identities only, never key bytes */
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(list, 0), "id")),
			       "@ims.mnc001.mcc001.3gppnetwork.org"));
	json_decref(s);
	kl_burst_destroy(b);

	/* no such group: verified error 12 (detail 2) for group 2's UEs */
	assert_int_equal(kl_table_del(tab, KL_TK_GROUP, (const uint8_t[]){ 0x00, 0xF1, 0x10, 0, 2 }, 5),
			 0);
	b = make(KL_BURST_KIND_MBMS, 40, KL_BURST_MIX_B);
	t = kl_burst_totals(b);
	kl_burst_start(b, 0);
	run_all(b, 0);
	assert_int_equal(t->c[KL_BC_ERROR_ANSWERS], 10);
	assert_int_equal(t->err[KL_ERR_UNSPECIFIED], 10);
	assert_int_equal(t->fail[KL_BF_ERROR_ANSWER], 10);
	assert_int_equal(t->c[KL_BC_VERIFIED], 30);
	assert_int_equal(kl_burst_exit_code(b), 1);
	s = kl_burst_summary(b, 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "errors"), "12")), 10);
	list = json_object_get(json_object_get(s, "failures"), "list");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "err")), 12);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "detail")), 2);
	json_decref(s);
	kl_burst_destroy(b);
	assert_true(kl_table_put_group(tab, &ref, &g) >= 0);
	kl_memzero(&g, sizeof(g));
	kl_memzero(&bad, sizeof(bad));

	/* a wrong e2m_int_key under the right key id: IMSI 3's fetches fail */
	{
		struct kl_pop_e2m e;
		uint8_t k[32];
		struct kl_burst_config c;

		assert_int_equal(kl_pop_e2m(&pop, 3, 0, &e), 0);
		memcpy(k, e.key, 32);
		k[31] ^= 0x80;
		assert_int_equal(kl_table_push_e2m(tab, e.imsi, k, e.key_id, 0), 1);
		max_config(&c, KL_BURST_KIND_E2M, 16); /* IMSI index p % 8: fetches 3 and 11 */
		b = create(&c);
		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(kl_burst_totals(b)->fail[KL_BF_WRONG_KEY], 2);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 14);
		kl_burst_destroy(b);
		assert_int_equal(kl_table_push_e2m(tab, e.imsi, e.key, e.key_id, 0), 1);
		kl_memzero(&e, sizeof(e));
		kl_memzero(k, sizeof(k));
	}
}

/* First tries' answers are held back until every UE retransmitted: they still verify (each try
 * keeps its keys), and the answers to the retransmissions are then duplicates. */
static void test_retransmit_keeps_tries(void **state)
{
	static struct held hold1[64], hold2[64];
	unsigned n1 = 0, n2 = 0;
	struct kl_burst *b = make(KL_BURST_KIND_MBMS, 50, KL_BURST_MIX_BOTH);
	const struct kl_burst_totals *t = kl_burst_totals(b);
	uint64_t now = 0;

	(void)state;
	kl_burst_start(b, now);
	kl_burst_tick(b, now, NULL);
	assert_int_equal(round_trip(b, now, HOLD, hold1, &n1, 64), 50);
	assert_int_equal(n1, 50);
	/* nothing is due before the timeout */
	now += 99 * MS;
	kl_burst_tick(b, now, NULL);
	assert_int_equal(round_trip(b, now, HOLD, hold2, &n2, 64), 0);
	assert_int_equal(t->c[KL_BC_TIMEOUTS], 0);
	now += 2 * MS;
	kl_burst_tick(b, now, NULL);
	assert_int_equal(t->c[KL_BC_TIMEOUTS], 50);
	assert_int_equal(round_trip(b, now, HOLD, hold2, &n2, 64), 50);
	assert_int_equal(t->c[KL_BC_RETRANSMISSIONS], 50);
	assert_int_equal(n2, 50);
	/* the answers to the first tries arrive late, but before the second tries time out */
	for (unsigned i = 0; i < n1; i++)
		kl_burst_answer(b, hold1[i].buf, hold1[i].len, now + MS);
	assert_int_equal(t->c[KL_BC_VERIFIED], 50);
	for (unsigned i = 0; i < n2; i++)
		kl_burst_answer(b, hold2[i].buf, hold2[i].len, now + 2 * MS);
	assert_int_equal(t->c[KL_BC_DUPLICATE], 50);
	assert_int_equal(t->c[KL_BC_FAILED], 0);
	assert_int_equal(kl_burst_tick(b, now + 3 * MS, NULL), 0);
	assert_int_equal(kl_burst_exit_code(b), 0);
	kl_burst_destroy(b);
}

/* No answers at all: every UE tries 1 + retries times on the back-off schedule and fails. */
static void test_timeouts_fail(void **state)
{
	struct kl_burst *b = make(KL_BURST_KIND_MBMS, 20, KL_BURST_MIX_A);
	const struct kl_burst_totals *t = kl_burst_totals(b);
	uint64_t now = 0, sends_at[3] = { 0 };
	unsigned k = 0;

	(void)state;
	kl_burst_start(b, now);
	while (kl_burst_tick(b, now, NULL)) {
		if (round_trip(b, now, DROP, NULL, NULL, 0)) {
			assert_true(k < 3);
			sends_at[k++] = now;
		}
		assert_true(now < 2000 * MS);
		now += MS;
	}
	/* tries at 0, +100 ms, +200 ms more; failure after the third try's 400 ms */
	assert_int_equal(k, 3);
	assert_int_equal(sends_at[1] - sends_at[0], 100 * MS);
	assert_int_equal(sends_at[2] - sends_at[1], 200 * MS);
	assert_int_equal(now - sends_at[2], 400 * MS);
	assert_int_equal(t->c[KL_BC_SENT], 60);
	assert_int_equal(t->c[KL_BC_TIMEOUTS], 60);
	assert_int_equal(t->fail[KL_BF_TIMEOUT], 20);
	assert_int_equal(kl_burst_exit_code(b), 1);
	kl_burst_destroy(b);
}

/* Three servers, server 0 dead (its requests vanish): UE i starts at server i % 3; those at
 * server 0 time out, wait a random back-off in [0, 50 ms) and move to server 1, where they get
 * their key. Every UE verified, each move counted once, per server. */
static void test_servers_failover(void **state)
{
	struct kl_burst_config c;
	struct kl_burst *b;
	const struct kl_burst_totals *t;
	const struct kl_burst_server_totals *s0, *s1, *s2;
	uint64_t now = 0, first_retx = 0, last_retx = 0;
	unsigned first_round = 0, retx_ms = 0, prev_retx_ms = ~0u;

	(void)state;
	max_config(&c, KL_BURST_KIND_MBMS, 60);
	c.timeout_ms = 100;
	c.retries = 2;
	c.servers = 3;
	c.backoff_ms = 50;
	c.backend = KL_CRYPTO_OPENSSL;
	b = create(&c);
	t = kl_burst_totals(b);
	assert_int_equal(kl_burst_servers(b), 3);
	assert_null(kl_burst_server_totals(b, 3));
	kl_burst_start(b, now);
	while (kl_burst_tick(b, now, NULL)) {
		struct kl_burst_dgram dg[KL_BURST_TX_MAX];
		struct kl_pkt p[KL_BURST_TX_MAX];
		unsigned n = kl_burst_next(b, now, dg, KL_BURST_TX_MAX), m = 0;

		for (unsigned i = 0; i < n; i++) {
			assert_true(dg[i].server < 3);
			dg[i].sent = 1;
			if (now && dg[i].server == 1) { /* a moved UE's retransmission */
				if (!first_retx)
					first_retx = now;
				last_retx = now;
				if (prev_retx_ms != now / MS)
					retx_ms++;
				prev_retx_ms = (unsigned)(now / MS);
			}
			if (dg[i].server == 0)
				continue; /* the dead node */
			memcpy(inbuf[m], dg[i].data, dg[i].len);
			p[m] = (struct kl_pkt){ .in = inbuf[m], .out = outbuf[m], .in_len = dg[i].len,
						.out_cap = sizeof(outbuf[m]) };
			m++;
		}
		if (!now)
			first_round += n;
		kl_burst_sent(b, dg, n, now);
		if (m) {
			kl_engine_serve(wk, kl_ntp_now(), p, m);
			kl_table_quiescent(tab, 0);
		}
		for (unsigned i = 0; i < m; i++)
			if (p[i].out_len)
				kl_burst_answer(b, outbuf[i], p[i].out_len, now + 50000);
		assert_true(now < 2000 * MS);
		now += MS;
	}
	s0 = kl_burst_server_totals(b, 0);
	s1 = kl_burst_server_totals(b, 1);
	s2 = kl_burst_server_totals(b, 2);
	assert_int_equal(first_round, 60);
	assert_int_equal(t->c[KL_BC_VERIFIED], 60);
	assert_int_equal(t->c[KL_BC_FAILED], 0);
	assert_int_equal(t->c[KL_BC_MOVED], 20);
	assert_int_equal(t->c[KL_BC_BACKOFFS], 20);
	assert_int_equal(t->c[KL_BC_RETRANSMISSIONS], 20);
	assert_int_equal(s0->sent, 20);
	assert_int_equal(s0->timeouts, 20);
	assert_int_equal(s0->answers + s0->keys + s0->moved_in, 0);
	assert_int_equal(s1->sent, 40);
	assert_int_equal(s1->moved_in, 20);
	assert_int_equal(s1->keys, 40);
	assert_int_equal(s2->sent, 20);
	assert_int_equal(s2->keys, 20);
	/* the back-off spreads the moved UEs over [100, 150) ms instead of one instant */
	assert_true(first_retx >= 100 * MS && last_retx < 151 * MS);
	assert_true(retx_ms >= 5);
	assert_int_equal(kl_burst_exit_code(b), 0);
	{
		json_t *sum = kl_burst_summary(b, now), *rows = json_object_get(sum, "servers");

		assert_int_equal(json_array_size(rows), 3);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "moved_in")),
				 20);
		assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "counters"),
								    "moved")),
				 20);
		json_decref(sum);
	}
	kl_burst_destroy(b);

	/* several servers are for mbms and e2m; at most KL_BURST_SERVERS_MAX */
	{
		char err[128];

		max_config(&c, KL_BURST_KIND_HM, 4);
		snprintf(c.server_id, sizeof(c.server_id), "vlr-a");
		c.servers = 2;
		assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
		max_config(&c, KL_BURST_KIND_MBMS, 4);
		c.servers = KL_BURST_SERVERS_MAX + 1;
		assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
	}
}

static void test_jitter(void **state)
{
	uint64_t s1 = 42, s2 = 42, sum = 0, lo = UINT64_MAX, hi = 0;

	(void)state;
	assert_int_equal(kl_burst_jitter_ns(&s1, 0), 0);
	for (int i = 0; i < 10000; i++) {
		uint64_t v = kl_burst_jitter_ns(&s1, 1000);

		assert_int_equal(v, kl_burst_jitter_ns(&s2, 1000)); /* deterministic in the state */
		assert_true(v < 1000);
		sum += v;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	/* uniform: mean near 500, both ends reached */
	assert_true(sum / 10000 > 470 && sum / 10000 < 530);
	assert_true(lo < 10 && hi > 990);
}

/* Garbage, corrupted and foreign answers are counted and never finish a UE. */
static void test_garbage(void **state)
{
	static struct held hold[64];
	unsigned n = 0;
	struct kl_burst *b = make(KL_BURST_KIND_MBMS, 8, KL_BURST_MIX_A);
	const struct kl_burst_totals *t = kl_burst_totals(b);
	uint8_t junk[600];

	(void)state;
	kl_burst_start(b, 0);
	kl_burst_tick(b, 0, NULL);
	assert_int_equal(round_trip(b, 0, HOLD, hold, &n, 64), 8);
	assert_int_equal(n, 8);
	for (int i = 0; i < 2000; i++) {
		uint16_t len = (uint16_t)(rnd64() % sizeof(junk));

		for (uint16_t k = 0; k < len; k++)
			junk[k] = (uint8_t)rnd64();
		if (i % 2) /* keep a plausible header so parsing goes deeper */
			memcpy(junk, hold[i % 8].buf, len < 40 ? len : 40);
		kl_burst_answer(b, junk, len, MS);
	}
	kl_burst_answer(b, NULL, 0, MS);
	kl_burst_answer(b, junk, 0, MS);
	/* every truncation of a real answer */
	for (uint16_t cut = 0; cut < hold[0].len; cut++)
		kl_burst_answer(b, hold[0].buf, cut, MS);
	/* every bit flip in the MAC: the try stays open */
	for (int bit = 0; bit < 160; bit++) {
		hold[1].buf[hold[1].len - 20 + bit / 8] ^= (uint8_t)(1 << (bit % 8));
		kl_burst_answer(b, hold[1].buf, hold[1].len, MS);
		hold[1].buf[hold[1].len - 20 + bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	assert_int_equal(t->c[KL_BC_BAD_MAC], 160);
	/* a RAND that belongs to no try of this run */
	{
		struct kl_mikey_resp r;

		assert_int_equal(kl_mikey_parse_resp(hold[2].buf, hold[2].len, &r), KL_DROP_NONE);
		memcpy(junk, hold[2].buf, hold[2].len);
		junk[r.rand - hold[2].buf] ^= 1;
		kl_burst_answer(b, junk, hold[2].len, MS);
	}
	assert_true(t->c[KL_BC_MALFORMED] > 1000);
	assert_true(t->c[KL_BC_UNKNOWN] >= 1);
	assert_int_equal(t->c[KL_BC_VERIFIED], 0);
	assert_int_equal(t->c[KL_BC_FAILED], 0);
	assert_int_equal(t->c[KL_BC_ANSWERED], 0);
	/* the real answers still verify, twice is a duplicate */
	for (unsigned i = 0; i < n; i++)
		kl_burst_answer(b, hold[i].buf, hold[i].len, 2 * MS);
	kl_burst_answer(b, hold[4].buf, hold[4].len, 2 * MS);
	assert_int_equal(t->c[KL_BC_VERIFIED], 8);
	assert_int_equal(t->c[KL_BC_DUPLICATE], 1);
	assert_int_equal(kl_burst_tick(b, 3 * MS, NULL), 0);
	assert_int_equal(kl_burst_exit_code(b), 0);
	kl_burst_destroy(b);
}

/* The schedule drives starts: burst mode over 1 s starts nobody before their time, interval
 * lines are JSON with the counters, and the in-flight limit holds. */
static void test_burst_schedule_and_lines(void **state)
{
	struct kl_burst_config c;
	char err[256], *buf = NULL;
	size_t blen = 0;
	FILE *out = open_memstream(&buf, &blen);
	struct kl_burst *b;
	uint64_t now = 0, max_inflight = 0;
	unsigned lines = 0;

	(void)state;
	assert_non_null(out);
	kl_burst_config_defaults(&c);
	c.mode = KL_BURST_MODE_BURST;
	c.window_s = 1.0;
	c.ues = 200;
	c.inflight = 7;
	c.interval_ms = 100;
	b = kl_burst_create(&c, &pop, err, sizeof(err));
	assert_non_null(b);
	kl_burst_start(b, now);
	while (kl_burst_tick(b, now, out)) {
		round_trip(b, now, DELIVER, NULL, NULL, 0);
		if (kl_burst_totals(b)->in_progress > max_inflight)
			max_inflight = kl_burst_totals(b)->in_progress;
		assert_true(kl_burst_totals(b)->c[KL_BC_STARTED] <= kl_burst_totals(b)->c[KL_BC_OFFERED] + 64);
		now += MS;
		assert_true(now < 5000 * MS);
	}
	fclose(out);
	assert_true(now >= 900 * MS && now <= 1010 * MS);
	assert_true(max_inflight <= 7);
	assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 200);
	/* one JSON object per line; verified counts add up */
	{
		json_int_t verified = 0;
		char *save = NULL;

		for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			json_error_t je;
			json_t *o = json_loads(line, 0, &je);

			assert_non_null(o);
			assert_string_equal(json_string_value(json_object_get(o, "type")), "interval");
			assert_non_null(json_object_get(json_object_get(o, "lat_us"), "p99.9"));
			verified += json_integer_value(json_object_get(o, "verified"));
			json_decref(o);
			lines++;
		}
		assert_int_equal(verified, 200);
		assert_true(lines >= 9 && lines <= 11);
	}
	free(buf);
	kl_burst_destroy(b);
}

static void test_bad_config(void **state)
{
	struct kl_burst_config c;
	struct kl_pop_params p = pop;
	char err[256];

	(void)state;
	kl_burst_config_defaults(&c);
	c.ues = pop.ues + 1;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
	assert_non_null(strstr(err, "population has"));
	c.ues = 0;
	c.first = pop.ues;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
	kl_burst_config_defaults(&c);
	p.groups = 0;
	assert_null(kl_burst_create(&c, &p, err, sizeof(err)));
	assert_non_null(strstr(err, "no key groups"));
	p = pop;
	p.appids = 0;
	c.kind = KL_BURST_KIND_E2M;
	c.e2m_target = KL_BURST_MIX_B;
	assert_null(kl_burst_create(&c, &p, err, sizeof(err)));
	kl_burst_config_defaults(&c);
	c.retries = KL_BURST_MAX_RETRIES + 1;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
	kl_burst_config_defaults(&c);
	c.mode = KL_BURST_MODE_RATE;
	c.rate = 0;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
}

/* ---- presigned first tries and verification after the run ------------------------------------ */

static struct kl_burst *make_opt(enum kl_burst_kind kind, uint32_t ues, int presign, int after,
				 uint32_t skew_s)
{
	struct kl_burst_config c;

	max_config(&c, kind, ues);
	c.prf = KL_BURST_MIX_BOTH;
	c.e2m_target = KL_BURST_MIX_BOTH;
	c.e2m_key = KL_BURST_MIX_BOTH;
	c.timeout_ms = 100;
	c.retries = 2;
	c.skew_s = skew_s;
	c.presign = presign;
	c.verify_after = after;
	return create(&c);
}

static json_int_t summary_int(json_t *s, const char *obj, const char *key)
{
	return json_integer_value(json_object_get(obj ? json_object_get(s, obj) : s, key));
}

/* Presigned first tries go out as signed before t0 and verify, MBMS and E2M alike. */
static void test_presign_all_verified(void **state)
{
	(void)state;
	for (int kind = 0; kind < 2; kind++) {
		uint32_t n = kind ? 60 : 300;
		struct kl_burst *b = make_opt((enum kl_burst_kind)kind, n, 1, 0, 60);
		const struct kl_burst_totals *t = kl_burst_totals(b);
		json_t *s;

		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(t->c[KL_BC_VERIFIED], n);
		assert_int_equal(t->c[KL_BC_SENT], n);
		assert_int_equal(t->c[KL_BC_RETRANSMISSIONS], 0);
		assert_int_equal(t->c[KL_BC_UNKNOWN], 0);
		assert_int_equal(kl_burst_exit_code(b), 0);
		s = kl_burst_summary(b, 1000 * MS);
		assert_non_null(s);
		assert_string_equal(json_string_value(json_object_get(s, "verify")), "inline");
		assert_true(json_is_real(json_object_get(s, "prepare_s")));
		assert_true(json_is_null(json_object_get(s, "verify_after_s")));
		assert_int_equal(summary_int(s, "presign", "signed"), n);
		assert_int_equal(summary_int(s, "presign", "used"), n);
		assert_int_equal(summary_int(s, "presign", "stale"), 0);
		json_decref(s);
		kl_burst_destroy(b);
	}
}

/* Presigned first tries are held back until every UE retransmitted (signed on demand): the late
 * answers to the presigned tries still verify; a RAND that was never sent is unknown. */
static void test_presign_retransmit(void **state)
{
	static struct held hold1[64], hold2[64];
	unsigned n1 = 0, n2 = 0;
	struct kl_burst *b = make_opt(KL_BURST_KIND_MBMS, 50, 1, 0, 60);
	const struct kl_burst_totals *t = kl_burst_totals(b);
	struct kl_mikey_resp r;
	uint8_t junk[1600];
	uint64_t now = 0;

	(void)state;
	kl_burst_start(b, now);
	kl_burst_tick(b, now, NULL);
	assert_int_equal(round_trip(b, now, HOLD, hold1, &n1, 64), 50);
	now += 101 * MS;
	kl_burst_tick(b, now, NULL);
	assert_int_equal(t->c[KL_BC_TIMEOUTS], 50);
	assert_int_equal(round_trip(b, now, HOLD, hold2, &n2, 64), 50);
	assert_int_equal(t->c[KL_BC_RETRANSMISSIONS], 50);
	/* the presigned tries' CSB IDs lie above the slots', the retransmissions' below */
	assert_int_equal(kl_mikey_parse_resp(hold1[0].buf, hold1[0].len, &r), KL_DROP_NONE);
	assert_true(r.csb_id >= 50 * 3);
	assert_int_equal(kl_mikey_parse_resp(hold2[0].buf, hold2[0].len, &r), KL_DROP_NONE);
	assert_true(r.csb_id < 50 * 3);
	/* a presigned try's CSB ID with a RAND that was never sent, and one past the population */
	assert_int_equal(kl_mikey_parse_resp(hold1[3].buf, hold1[3].len, &r), KL_DROP_NONE);
	memcpy(junk, hold1[3].buf, hold1[3].len);
	junk[r.rand - hold1[3].buf] ^= 1;
	kl_burst_answer(b, junk, hold1[3].len, now);
	assert_int_equal(t->c[KL_BC_UNKNOWN], 1);
	for (unsigned i = 0; i < n1; i++)
		kl_burst_answer(b, hold1[i].buf, hold1[i].len, now + MS);
	assert_int_equal(t->c[KL_BC_VERIFIED], 50);
	for (unsigned i = 0; i < n2; i++)
		kl_burst_answer(b, hold2[i].buf, hold2[i].len, now + 2 * MS);
	kl_burst_answer(b, hold1[7].buf, hold1[7].len, now + 2 * MS);
	assert_int_equal(t->c[KL_BC_DUPLICATE], 51);
	assert_int_equal(t->c[KL_BC_FAILED], 0);
	assert_int_equal(kl_burst_tick(b, now + 3 * MS, NULL), 0);
	assert_int_equal(kl_burst_exit_code(b), 0);
	kl_burst_destroy(b);
}

/* A presigned try older than half the skew is signed anew when its UE starts. */
static void test_presign_stale(void **state)
{
	struct kl_burst *b = make_opt(KL_BURST_KIND_MBMS, 30, 1, 0, 1);
	json_t *s;

	(void)state;
	usleep(600000);
	kl_burst_start(b, 0);
	run_all(b, 0);
	assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 30);
	s = kl_burst_summary(b, 1);
	assert_int_equal(summary_int(s, "presign", "used"), 0);
	assert_int_equal(summary_int(s, "presign", "stale"), 30);
	json_decref(s);
	kl_burst_destroy(b);
}

/* With verify_after the loop only matches; the verdicts come after the run and are the inline
 * ones: a wrong MSK (group 2) and error answers still fail their UEs. */
static void test_verify_after(void **state)
{
	struct kl_group_ref ref;
	struct kl_group g, bad;

	(void)state;
	assert_int_equal(kl_pop_group(&pop, 2, &ref, &g), 0);
	bad = g;
	bad.current.key[9] ^= 0x04;
	assert_true(kl_table_put_group(tab, &ref, &bad) >= 0);
	for (int presign = 0; presign < 2; presign++) {
		struct kl_burst *b = make_opt(KL_BURST_KIND_MBMS, 40, presign, 1, 60);
		const struct kl_burst_totals *t = kl_burst_totals(b);
		json_t *s, *list;

		kl_burst_start(b, 0);
		run_all(b, 0);
		/* the run ended with every UE matched, none judged yet */
		assert_int_equal(t->c[KL_BC_MATCHED], 40);
		assert_int_equal(t->done, 40);
		assert_int_equal(t->c[KL_BC_VERIFIED], 0);
		assert_int_equal(t->c[KL_BC_ANSWERED], 0);
		assert_int_equal(kl_burst_exit_code(b), 1);
		assert_int_equal(kl_burst_verify_stored(b), 40);
		assert_int_equal(kl_burst_verify_stored(b), 0); /* once */
		assert_int_equal(t->c[KL_BC_ANSWERED], 40);
		assert_int_equal(t->c[KL_BC_VERIFIED], 30);
		assert_int_equal(t->fail[KL_BF_WRONG_KEY], 10);
		assert_int_equal(kl_burst_latency(b)->count, 30);
		assert_int_equal(kl_burst_exit_code(b), 1);
		s = kl_burst_summary(b, 1000 * MS);
		assert_string_equal(json_string_value(json_object_get(s, "verify")), "after");
		assert_true(json_is_real(json_object_get(s, "verify_after_s")));
		assert_int_equal(summary_int(s, NULL, "ok"), 30);
		list = json_object_get(json_object_get(s, "failures"), "list");
		assert_int_equal(json_array_size(list), 10);
		assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "reason")),
				    "wrong_key");
		assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "ue")) % 4, 1);
		json_decref(s);
		kl_burst_destroy(b);
	}
	/* no such group: verified error answers */
	assert_int_equal(kl_table_del(tab, KL_TK_GROUP, (const uint8_t[]){ 0x00, 0xF1, 0x10, 0, 2 }, 5),
			 0);
	{
		struct kl_burst *b = make_opt(KL_BURST_KIND_MBMS, 40, 1, 1, 60);
		const struct kl_burst_totals *t = kl_burst_totals(b);

		kl_burst_start(b, 0);
		run_all(b, 0);
		kl_burst_verify_stored(b);
		assert_int_equal(t->c[KL_BC_ERROR_ANSWERS], 10);
		assert_int_equal(t->err[KL_ERR_UNSPECIFIED], 10);
		assert_int_equal(t->fail[KL_BF_ERROR_ANSWER], 10);
		assert_int_equal(t->c[KL_BC_VERIFIED], 30);
		kl_burst_destroy(b);
	}
	assert_true(kl_table_put_group(tab, &ref, &g) >= 0);
	kl_memzero(&g, sizeof(g));
	kl_memzero(&bad, sizeof(bad));
	/* everything right: every UE verified, E2M too */
	for (int kind = 0; kind < 2; kind++) {
		struct kl_burst *b = make_opt((enum kl_burst_kind)kind, 64, 1, 1, 60);

		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(kl_burst_verify_stored(b), 64);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 64);
		assert_int_equal(kl_burst_latency(b)->count, 64);
		assert_int_equal(kl_burst_exit_code(b), 0);
		kl_burst_destroy(b);
	}
}

/* verify_after: an answer that matches its try but fails the MAC check fails the UE afterwards
 * (inline it would leave the try open); a second answer to a matched UE is a duplicate. */
static void test_verify_after_bad_mac(void **state)
{
	static struct held hold[64];
	unsigned n = 0;
	struct kl_burst *b = make_opt(KL_BURST_KIND_MBMS, 8, 0, 1, 60);
	const struct kl_burst_totals *t = kl_burst_totals(b);

	(void)state;
	kl_burst_start(b, 0);
	kl_burst_tick(b, 0, NULL);
	assert_int_equal(round_trip(b, 0, HOLD, hold, &n, 64), 8);
	hold[1].buf[hold[1].len - 3] ^= 0x10;
	for (unsigned i = 0; i < n; i++)
		kl_burst_answer(b, hold[i].buf, hold[i].len, MS);
	kl_burst_answer(b, hold[2].buf, hold[2].len, MS);
	assert_int_equal(t->c[KL_BC_MATCHED], 8);
	assert_int_equal(t->c[KL_BC_DUPLICATE], 1);
	assert_int_equal(kl_burst_tick(b, 2 * MS, NULL), 0);
	assert_int_equal(kl_burst_verify_stored(b), 8);
	assert_int_equal(t->c[KL_BC_BAD_MAC], 1);
	assert_int_equal(t->fail[KL_BF_BAD_MAC], 1);
	assert_int_equal(t->c[KL_BC_VERIFIED], 7);
	assert_int_equal(kl_burst_exit_code(b), 1);
	kl_burst_destroy(b);
}

/* Replace every e2m_int_key of IMSI index i, in place, by the one the population has under seed. */
static void set_e2m(uint32_t i, uint64_t seed)
{
	struct kl_pop_params alt = pop;

	alt.seed = seed;
	for (unsigned k = 0; k < pop.e2m_keys_per_imsi; k++) {
		struct kl_pop_e2m orig, repl;

		assert_int_equal(kl_pop_e2m(&pop, i, k, &orig), 0);
		assert_int_equal(kl_pop_e2m(&alt, i, k, &repl), 0);
		assert_int_equal(kl_table_push_e2m(tab, orig.imsi, repl.key, orig.key_id, 0), 1);
		kl_memzero(&orig, sizeof(orig));
		kl_memzero(&repl, sizeof(repl));
	}
}

/* --alt-seed: IMSIs 0..3 hold the alternate seed's e2m_int_keys (correct, counted alt_key), IMSIs
 * 4..5 a third seed's (wrong_key either way), IMSIs 6..7 the population's. Fetches by IMSI,
 * newest key and by key id; inline and verify-after alike. */
static void test_alt_seed(void **state)
{
	const uint64_t alt_seed = 77, other_seed = 78;

	(void)state;
	for (uint32_t i = 0; i < 6; i++)
		set_e2m(i, i < 4 ? alt_seed : other_seed);
	for (int after = 0; after < 2; after++) {
		for (int alt = 0; alt < 2; alt++) {
			struct kl_burst_config c;
			struct kl_burst *b;
			const struct kl_burst_totals *t;

			max_config(&c, KL_BURST_KIND_E2M, 64);
			c.e2m_target = KL_BURST_MIX_A;
			c.e2m_key = KL_BURST_MIX_BOTH;
			c.timeout_ms = 100;
			c.verify_after = after;
			c.has_alt_seed = alt;
			c.alt_seed = alt_seed;
			b = create(&c);
			t = kl_burst_totals(b);
			kl_burst_start(b, 0);
			run_all(b, 0);
			if (after)
				kl_burst_verify_stored(b);
			assert_int_equal(t->c[KL_BC_ANSWERED], 64);
			assert_int_equal(t->c[KL_BC_VERIFIED], alt ? 48 : 16);
			assert_int_equal(t->c[KL_BC_ALT_KEY], alt ? 32 : 0);
			assert_int_equal(t->fail[KL_BF_WRONG_KEY], alt ? 16 : 48);
			assert_int_equal(kl_burst_exit_code(b), 1);
			kl_burst_destroy(b);
		}
	}
	for (uint32_t i = 0; i < 6; i++)
		set_e2m(i, pop.seed);
	{
		/* MBMS has no alternate keys: refused */
		struct kl_burst_config c;
		char err[256];

		kl_burst_config_defaults(&c);
		c.has_alt_seed = 1;
		assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
		assert_non_null(strstr(err, "alt-seed"));
	}
}

/* A server whose clock is 120 s ahead (beyond the 60 s skew) answers "invalid timestamp": each UE
 * resyncs and tries again at once; once the clocks agree every UE gets its key. Without tries
 * left, the error fails the UE. */
static void test_resync_on_invalid_ts(void **state)
{
	for (int retries = 0; retries < 2; retries++) {
		struct kl_burst_config c;
		char err[256];
		struct kl_burst *b;
		const struct kl_burst_totals *t;
		uint64_t now = 0;

		(void)state;
		kl_burst_config_defaults(&c);
		c.mode = KL_BURST_MODE_MAX;
		c.ues = 50;
		c.retries = (uint32_t)retries;
		c.interval_ms = 0;
		b = kl_burst_create(&c, &pop, err, sizeof(err));
		assert_non_null(b);
		t = kl_burst_totals(b);
		kl_burst_start(b, 0);
		kl_burst_tick(b, now, NULL);
		engine_ahead = (uint64_t)120 << 32;
		assert_int_equal(round_trip(b, now, DELIVER, NULL, NULL, 0), 50);
		engine_ahead = 0;
		run_all(b, now + MS);
		assert_int_equal(t->c[KL_BC_ERROR_ANSWERS], 50);
		assert_int_equal(t->err[KL_ERR_INVALID_TS], 50);
		assert_int_equal(t->c[KL_BC_RESYNCS], retries ? 50 : 0);
		assert_int_equal(t->c[KL_BC_VERIFIED], retries ? 50 : 0);
		assert_int_equal(t->fail[KL_BF_ERROR_ANSWER], retries ? 0 : 50);
		assert_int_equal(t->c[KL_BC_TIMEOUTS], 0);
		kl_burst_destroy(b);
	}
}

/* A burst of answers (duplicates and garbage among them) counts like one answer at a time. */
static void test_answers_batch(void **state)
{
	static struct held hold[64];
	const uint8_t *p[80];
	uint16_t len[80];
	unsigned n = 0, k = 0;
	struct kl_burst *b = make(KL_BURST_KIND_MBMS, 64, KL_BURST_MIX_BOTH);
	const struct kl_burst_totals *t = kl_burst_totals(b);
	static const uint8_t junk[40] = { 1, 2, 3 };

	(void)state;
	kl_burst_start(b, 0);
	kl_burst_tick(b, 0, NULL);
	assert_int_equal(round_trip(b, 0, HOLD, hold, &n, 64), 64);
	for (unsigned i = 0; i < n; i++) {
		p[k] = hold[i].buf;
		len[k++] = hold[i].len;
		if (i % 8 == 0) { /* the same answer again, in the same crypto batch */
			p[k] = hold[i].buf;
			len[k++] = hold[i].len;
		}
	}
	p[k] = junk;
	len[k++] = sizeof(junk);
	kl_burst_answers(b, p, len, k, MS);
	assert_int_equal(t->c[KL_BC_VERIFIED], 64);
	assert_int_equal(t->c[KL_BC_ANSWERED], 64);
	assert_int_equal(t->c[KL_BC_DUPLICATE], 8);
	assert_int_equal(t->c[KL_BC_MALFORMED], 1);
	assert_int_equal(kl_burst_latency(b)->count, 64);
	kl_burst_destroy(b);
}

/* kl_client_verify_burst gives every answer kl_client_verify's result: good answers, error
 * messages, bad MACs, truncations, a foreign try's keys, mismatched CSB IDs, a server T out of
 * skew, a NULL answer; more than one crypto batch. */
static void test_client_verify_burst(void **state)
{
	enum { NREQ = 24, NCHK = 5 * NREQ };
	static struct kl_client_req req[NREQ], alt[NREQ];
	static uint8_t rq[NREQ][KL_BURST_DGRAM_MAX], rnd[NREQ][16], ans[NREQ][1600];
	static struct kl_client_check chk[NCHK];
	static struct kl_client_result res[NCHK], ref;
	struct kl_crypto *c = kl_crypto_create(KL_CRYPTO_IPSECMB);
	struct kl_pkt pk[NREQ];
	uint64_t now = kl_ntp_now();
	unsigned k = 0, ok = 0, errs = 0;

	(void)state;
	assert_non_null(c);
	for (unsigned i = 0; i < NREQ; i++) {
		struct kl_pop_ue ue;

		assert_int_equal(kl_pop_ue(&pop, 100 + i, &ue), 0);
		memset(rnd[i], (int)(0x30 + i), 16);
		req[i].spec = (struct kl_mikey_req_spec){ .rand = rnd[i], .id = (const uint8_t *)ue.impi,
							  .id_len = ue.impi_len, .ts = now, .csb_id = 9000 + i,
							  .group = i % 6 == 5 ? 99 : ue.groups[0].group,
							  .prf = (uint8_t)(i & 1), .kind = KL_KIND_MBMS };
		memcpy(req[i].spec.domain, kl_pop_domain, 3);
		req[i].psk = ue.muk;
		req[i].psk_len = 32;
		req[i].buf = rq[i];
		req[i].cap = sizeof(rq[i]);
		assert_int_equal(kl_client_sign(c, &req[i], 1), 1);
		req[i].spec.id = NULL; /* the identity was a stack copy; verification needs none */
		req[i].psk = NULL;
		kl_memzero(&ue, sizeof(ue));
		pk[i] = (struct kl_pkt){ .in = rq[i], .out = ans[i], .in_len = req[i].len,
					 .out_cap = sizeof(ans[i]) };
	}
	kl_engine_serve(wk, kl_ntp_now(), pk, NREQ);
	kl_table_quiescent(tab, 0);
	for (unsigned i = 0; i < NREQ; i++) {
		uint16_t n = pk[i].out_len;

		assert_true(n > 0);
		alt[i] = req[i];
		alt[i].spec.csb_id ^= 1;
		/* as answered; truncated; with a flipped MAC bit (in a copy: ans[i] stays intact for
		 * the others); under another try's keys; with a CSB ID the try did not have */
		chk[k++] = (struct kl_client_check){ .req = &req[i], .ans = ans[i], .len = n, .now = now };
		chk[k++] = (struct kl_client_check){ .req = &req[i], .ans = ans[i],
						     .len = (uint16_t)(n - 1 - i % 7), .now = now };
		chk[k++] = (struct kl_client_check){ .req = &req[(i + 1) % NREQ], .ans = ans[i], .len = n,
						     .now = now };
		chk[k++] = (struct kl_client_check){ .req = &alt[i], .ans = ans[i], .len = n, .now = now };
		chk[k++] = (struct kl_client_check){ .req = &req[i], .ans = i == 3 ? NULL : ans[i], .len = n,
						     .now = now + ((uint64_t)(i % 2 ? 61 : 59) << 32) };
	}
	for (unsigned i = 0; i < NCHK; i++)
		chk[i].res = &res[i];
	assert_int_equal(kl_client_verify_burst(c, chk, NCHK, 60), NCHK);
	assert_int_equal(kl_client_verify_burst(NULL, chk, 1, 60), -EINVAL);
	for (unsigned i = 0; i < NCHK; i++) {
		int rc = chk[i].ans ? kl_client_verify(c, chk[i].req, chk[i].ans, chk[i].len, chk[i].now,
						       60, &ref)
				    : -EINVAL;

		assert_int_equal(chk[i].rc, rc);
		if (rc)
			continue;
		assert_int_equal(res[i].is_error, ref.is_error);
		assert_int_equal(res[i].err_no, ref.err_no);
		assert_int_equal(res[i].detail, ref.detail);
		assert_int_equal(res[i].server_ts, ref.server_ts);
		assert_int_equal(res[i].nkeys, ref.nkeys);
		for (unsigned q = 0; q < ref.nkeys; q++) {
			assert_int_equal(res[i].keys[q].key_id, ref.keys[q].key_id);
			assert_int_equal(res[i].keys[q].key_len, ref.keys[q].key_len);
			assert_int_equal(res[i].keys[q].valid_from, ref.keys[q].valid_from);
			assert_int_equal(res[i].keys[q].valid_to, ref.keys[q].valid_to);
			assert_memory_equal(res[i].keys[q].key, ref.keys[q].key, ref.keys[q].key_len);
		}
		if (ref.is_error)
			errs++;
		else
			ok++;
	}
	/* the cases above really cover good answers, error messages and each failure */
	assert_true(ok >= NREQ / 2);
	assert_true(errs >= 4);
	{
		unsigned seen[5] = { 0 };

		for (unsigned i = 0; i < NCHK; i++) {
			int rc = chk[i].rc;

			seen[rc == 0 ? 0 : rc == -EBADMSG ? 1 : rc == -EPERM ? 2 : rc == -EPROTO ? 3 : 4]++;
		}
		for (unsigned q = 0; q < 5; q++)
			assert_true(seen[q] > 0); /* 4: -ETIME and -EINVAL */
	}
	kl_memzero(req, sizeof(req));
	kl_memzero(alt, sizeof(alt));
	kl_crypto_destroy(c);
}

/* ---- frames against the server's L2-L4 code ---------------------------------------------------- */

static void frame_round_trip(int v6)
{
	struct kl_burst_l2 cl;
	struct kl_net_addrs srv;
	struct kl_net_info info;
	uint8_t f[256], ans[256], payload[100];
	uint16_t len, alen, poff = 0, plen = 0;

	memset(&cl, 0, sizeof(cl));
	memset(&srv, 0, sizeof(srv));
	memcpy(srv.mac, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(cl.mac, "\x02\x00\x00\x00\x00\x02", 6);
	srv.udp_port = 2269;
	cl.net.server_port = 2269;
	cl.net.sources = 16;
	cl.net.v6 = v6;
	if (v6) {
		srv.n6 = 1;
		memcpy(srv.ip6[0], "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
		memcpy(cl.net.server_ip, srv.ip6[0], 16);
		memcpy(cl.net.client_ip, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\xfe", 16);
	} else {
		srv.n4 = 1;
		memcpy(srv.ip4[0], "\xc0\x00\x02\x01", 4);
		memcpy(cl.net.server_ip, srv.ip4[0], 4);
		memcpy(cl.net.client_ip, "\xc0\x00\x02\xfe", 4); /* .254 + 16 sources crosses .255 */
	}
	/* resolve: the server answers our ARP / NS, we learn its MAC */
	len = kl_burst_frame_resolve(&cl, f, sizeof(f));
	assert_true(len > 0);
	assert_int_equal(kl_net_classify(f, &len, &srv, &info), KL_NET_VERDICT_REPLY);
	assert_int_equal(kl_burst_frame_rx(&cl, f, &len, sizeof(f), &poff, &plen), KL_BURST_RX_LEARNED);
	assert_true(cl.server_mac_known);
	assert_memory_equal(cl.net.server_mac, srv.mac, 6);
	/* a request from every source is a MIKEY datagram for the server, and its answer ours */
	for (uint32_t k = 0; k < 16; k++) {
		uint8_t src[16];

		for (unsigned i = 0; i < sizeof(payload); i++)
			payload[i] = (uint8_t)(i * 7 + k);
		len = kl_burst_frame_udp(&cl, k, payload, sizeof(payload), f, sizeof(f));
		assert_int_equal(len, (v6 ? KL_BURST_FRAME_HDR_V6 : KL_BURST_FRAME_HDR_V4) + sizeof(payload));
		assert_int_equal(kl_net_classify(f, &len, &srv, &info), KL_NET_VERDICT_MIKEY);
		assert_int_equal(info.payload_len, sizeof(payload));
		assert_memory_equal(f + info.payload_off, payload, sizeof(payload));
		kl_burst_source_ip(&cl.net, k, src);
		assert_int_equal(kl_burst_source_index(&cl.net, src), (int)k);
		memcpy(ans + kl_net_reply_headroom(&info), payload, 60);
		alen = kl_net_finish_udp_reply(f, &info, ans, sizeof(ans), 60);
		assert_true(alen > 0);
		assert_int_equal(kl_burst_frame_rx(&cl, ans, &alen, sizeof(ans), &poff, &plen),
				 KL_BURST_RX_ANSWER);
		assert_int_equal(plen, 60);
		assert_memory_equal(ans + poff, payload, 60);
		/* every truncation is refused, every header bit flip too (or it is not ours) */
		for (uint16_t cut = 0; cut < alen; cut++) {
			uint16_t l2 = cut;

			assert_int_not_equal(kl_burst_frame_rx(&cl, ans, &l2, sizeof(ans), &poff, &plen),
					     KL_BURST_RX_ANSWER);
		}
		for (unsigned bit = 14 * 8; bit < (unsigned)(alen - 60) * 8; bit++) {
			uint16_t l2 = alen;
			unsigned byte = bit / 8 - 14;

			/* IPv6 has no header checksum: traffic class, flow label and hop limit are
			 * covered by nothing (and mean nothing to us) */
			if (v6 && ((byte == 0 && bit % 8 < 4) || (byte >= 1 && byte <= 3) || byte == 7))
				continue;

			ans[bit / 8] ^= (uint8_t)(1 << (bit % 8));
			assert_int_not_equal(kl_burst_frame_rx(&cl, ans, &l2, sizeof(ans), &poff, &plen),
					     KL_BURST_RX_ANSWER);
			ans[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		}
	}
	/* someone resolves one of our addresses: we answer, and the asker learns our MAC */
	{
		struct kl_burst_l2 peer;

		memset(&peer, 0, sizeof(peer));
		memcpy(peer.mac, "\x02\x00\x00\x00\x00\x03", 6);
		peer.net = cl.net;
		peer.net.sources = 1;
		kl_burst_source_ip(&cl.net, 5, peer.net.server_ip);
		memcpy(peer.net.client_ip, cl.net.server_ip, 16);
		len = kl_burst_frame_resolve(&peer, f, sizeof(f));
		assert_int_equal(kl_burst_frame_rx(&cl, f, &len, sizeof(f), &poff, &plen),
				 KL_BURST_RX_REPLY);
		assert_int_equal(kl_burst_frame_rx(&peer, f, &len, sizeof(f), &poff, &plen),
				 KL_BURST_RX_LEARNED);
		assert_memory_equal(peer.net.server_mac, cl.mac, 6);
		/* not ours: ignored */
		kl_burst_source_ip(&cl.net, 16, peer.net.server_ip);
		len = kl_burst_frame_resolve(&peer, f, sizeof(f));
		assert_int_equal(kl_burst_frame_rx(&cl, f, &len, sizeof(f), &poff, &plen),
				 KL_BURST_RX_OTHER);
	}
	/* random frames never read out of bounds (ASan) and are never answers */
	for (int i = 0; i < 20000; i++) {
		uint16_t l2 = (uint16_t)(rnd64() % sizeof(f));

		for (uint16_t k = 0; k < l2; k++)
			f[k] = (uint8_t)rnd64();
		f[12] = v6 ? 0x86 : 0x08;
		f[13] = v6 ? 0xDD : (i & 1 ? 0x00 : 0x06); /* IPv6; IPv4 or ARP */
		kl_burst_frame_rx(&cl, f, &l2, l2, &poff, &plen);
	}
}

/* ---- HM pairs: the server plays both roles (a pair key with its own identity) ---------------- */

#define HM_UES 200 /* UEs 0..199 have the hm service */

static void hm_provision(void)
{
	static const uint8_t pair[32] = { 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static int done;

	if (done++)
		return;
	for (uint32_t i = 0; i < HM_UES; i++) {
		struct kl_pop_ue ue;

		assert_int_equal(kl_pop_ue(&pop, i, &ue), 0);
		assert_int_equal(kl_table_set_ue_services(tab, (const uint8_t *)ue.impi, ue.impi_len,
							  KL_SVC(MBMS) | KL_SVC(HM)), 1);
	}
	assert_int_equal(kl_table_put_pair(tab, (const uint8_t *)"keyline.test", 12, pair, 32, 0), 0);
	assert_int_equal(kl_table_put_pair(tab, (const uint8_t *)"old.test", 8, pair, 32,
					   kl_ntp_now() - (1ull << 32)), 0);
	kl_table_quiescent(tab, 0);
}

/* Pairs first.. with peer_ues UEbs from peer_first (-1: the default), no retransmission. */
static struct kl_burst *make_hm_peers(uint32_t first, uint32_t ues, const char *peer_server,
				      int64_t peer_first, uint32_t peer_ues)
{
	struct kl_burst_config c;

	max_config(&c, KL_BURST_KIND_HM, ues);
	c.first = first;
	c.timeout_ms = 10;
	c.retries = 0;
	c.backend = KL_CRYPTO_OPENSSL;
	strcpy(c.server_id, "keyline.test");
	if (peer_server)
		strcpy(c.peer_server_id, peer_server);
	c.has_peer_first = peer_first >= 0;
	c.peer_first = peer_first >= 0 ? (uint32_t)peer_first : 0;
	c.peer_ues = peer_ues;
	return create(&c);
}

static struct kl_burst *make_hm(uint32_t first, uint32_t ues, const char *peer_server)
{
	return make_hm_peers(first, ues, peer_server, -1, 7);
}

static void test_hm_pairs(void **state)
{
	struct kl_burst *b;
	const struct kl_burst_totals *t;
	json_t *s;

	(void)state;
	hm_provision();
	/* 60 pairs, 7 UEbs: each fetches K*b once, the other pairs open token_b with it */
	b = make_hm(10, 60, NULL);
	t = kl_burst_totals(b);
	kl_burst_start(b, 0);
	run_all(b, 0);
	assert_int_equal(t->c[KL_BC_VERIFIED], 60);
	assert_int_equal(t->c[KL_BC_KSTAR_FETCHED], 7);
	assert_int_equal(t->c[KL_BC_KSTAR_CACHED], 53);
	assert_int_equal(t->c[KL_BC_SENT], 67);
	assert_int_equal(t->c[KL_BC_ANSWERED], 67);
	assert_int_equal(kl_burst_exit_code(b), 0);
	s = kl_burst_summary(b, 1000 * MS);
	assert_string_equal(json_string_value(json_object_get(s, "kind")), "hm");
	json_decref(s);
	kl_burst_destroy(b);
}

/* The errors end to end through the core: every pair fails with the server's reason. */
static void test_hm_errors(void **state)
{
	static const struct {
		uint32_t first;
		const char *peer;
		uint8_t err_no;
		uint16_t detail;
		const char *step;
	} cases[] = {
		{ 10, "unknown.test", 12, 6, "session" }, /* no pair key with that server */
		{ 10, "old.test", 12, 3, "session" },	  /* the pair key expired */
		{ 500, NULL, 7, 4, "session" },		  /* UEa without the hm service */
	};

	(void)state;
	hm_provision();
	for (unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct kl_burst *b = make_hm(cases[k].first, 5, cases[k].peer);
		const struct kl_burst_totals *t = kl_burst_totals(b);
		json_t *s, *f;

		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(t->c[KL_BC_FAILED], 5);
		assert_int_equal(t->fail[KL_BF_ERROR_ANSWER], 5);
		assert_int_equal(t->err[cases[k].err_no], 5);
		s = kl_burst_summary(b, 1000 * MS);
		f = json_array_get(json_object_get(json_object_get(s, "failures"), "list"), 0);
		assert_int_equal(json_integer_value(json_object_get(f, "detail")), cases[k].detail);
		assert_string_equal(json_string_value(json_object_get(f, "step")), cases[k].step);
		json_decref(s);
		kl_burst_destroy(b);
	}
	/* UEb without the service: its K* fetch fails, and so do the pairs waiting for it */
	{
		/* UEbs 200, 201: no hm service */
		struct kl_burst *b = make_hm_peers(150, 6, NULL, HM_UES, 2);
		const struct kl_burst_totals *t = kl_burst_totals(b);

		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(t->fail[KL_BF_ERROR_ANSWER], 6);
		assert_int_equal(t->err[7], 2); /* two fetches; the waiting pairs fail with them */
		assert_int_equal(t->c[KL_BC_KSTAR_FETCHED], 0);
		kl_burst_destroy(b);
	}
	/* IDUEa == IDUEb: the server drops the request as malformed, the pair times out */
	{
		struct kl_burst *b = make_hm_peers(20, 3, NULL, 20, 1);
		const struct kl_burst_totals *t = kl_burst_totals(b);

		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(t->fail[KL_BF_TIMEOUT], 1);
		assert_int_equal(t->c[KL_BC_VERIFIED], 2);
		kl_burst_destroy(b);
	}
}

/* Servers of the population (vlr-<i>.pop.keyline.test): K*a and K*b are checked against its pair
 * key, so a pair key both sides agree on but the population does not hold fails the pairs. */
static void test_hm_population_pair_key(void **state)
{
	struct kl_pop_params pp = pop;
	struct kl_pop_pair key;
	struct kl_burst_config c;
	const char *peer = "vlr-1.pop.keyline.test";
	char err[256];

	(void)state;
	hm_provision();
	pp.pairs = 2;
	assert_int_equal(kl_pop_pair(&pp, 1, "keyline.test", 12, &key), 0);
	for (int bad = 0; bad < 2; bad++) {
		struct kl_burst *b;
		const struct kl_burst_totals *t;
		json_t *s;

		key.key[0] ^= (uint8_t)bad;
		/* VLRa's view (the peer) and VLRb's (this server, named by UEb's kind 3) */
		assert_true(kl_table_put_pair(tab, (const uint8_t *)peer, 22, key.key, 32, 0) >= 0);
		assert_true(kl_table_put_pair(tab, (const uint8_t *)"keyline.test", 12, key.key, 32,
					      0) >= 0);
		kl_table_quiescent(tab, 0);
		max_config(&c, KL_BURST_KIND_HM, 20);
		c.backend = KL_CRYPTO_OPENSSL;
		c.peer_ues = 5;
		strcpy(c.server_id, "keyline.test");
		strcpy(c.peer_server_id, peer);
		b = kl_burst_create(&c, &pp, err, sizeof(err));
		assert_non_null(b);
		t = kl_burst_totals(b);
		kl_burst_start(b, 0);
		run_all(b, 0);
		assert_int_equal(t->c[KL_BC_VERIFIED], bad ? 0 : 20);
		assert_int_equal(t->fail[KL_BF_WRONG_KEY], bad ? 20 : 0);
		s = kl_burst_summary(b, 1000 * MS);
		assert_true(json_is_true(json_object_get(json_object_get(s, "config"), "kstar_checked")));
		json_decref(s);
		kl_burst_destroy(b);
	}
	kl_memzero(&key, sizeof(key));
}

static void test_frames_v4(void **state)
{
	(void)state;
	frame_round_trip(0);
}

static void test_frames_v6(void **state)
{
	(void)state;
	frame_round_trip(1);
}

/* ---- setup ------------------------------------------------------------------------------------ */

static int setup(void **state)
{
	struct kl_table_params tp = { .name = "burst_test", .max_ues = 1024, .max_groups = 16,
				      .max_emses = 16, .max_imsis = 16, .max_appids = 16,
				      .max_pairs = 8, .e2m_ring = 4, .max_readers = 1,
				      .socket_id = -1 };
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 4096,
				       .backend = KL_CRYPTO_IPSECMB };
	struct kl_pop_stats st;

	(void)state;
	memset(&pop, 0, sizeof(pop));
	pop.seed = 20251124;
	pop.ues = 1000;
	pop.groups = 4;
	pop.emses = 8;
	pop.imsis = 8;
	pop.appids = 12;
	pop.e2m_keys_per_imsi = 4;
	pop.now_ntp = kl_ntp_now() & ~0xFFFFFFFFull;
	pop.msk_period_s = 3600;
	tab = kl_table_create(&tp);
	assert_non_null(tab);
	assert_int_equal(kl_pop_import(tab, &pop, &st), 0);
	assert_int_equal(st.ues, 1000);
	assert_int_equal(kl_table_reader_register(tab, 0), 0);
	wk = kl_worker_create(&ec, tab, 0);
	assert_non_null(wk);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kl_worker_destroy(wk);
	kl_table_reader_unregister(tab, 0);
	kl_table_free(tab);
	return 0;
}

int main(void)
{
	char prefix[64];
	char *eal[] = { "test_burst", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_hist_quantiles),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_mbms_all_verified),
		cmocka_unit_test(test_e2m_all_verified),
		cmocka_unit_test(test_wrong_key_and_errors),
		cmocka_unit_test(test_alt_seed),
		cmocka_unit_test(test_resync_on_invalid_ts),
		cmocka_unit_test(test_retransmit_keeps_tries),
		cmocka_unit_test(test_timeouts_fail),
		cmocka_unit_test(test_servers_failover),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_burst_schedule_and_lines),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_presign_all_verified),
		cmocka_unit_test(test_presign_retransmit),
		cmocka_unit_test(test_presign_stale),
		cmocka_unit_test(test_verify_after),
		cmocka_unit_test(test_verify_after_bad_mac),
		cmocka_unit_test(test_answers_batch),
		cmocka_unit_test(test_client_verify_burst),
		cmocka_unit_test(test_hm_pairs),
		cmocka_unit_test(test_hm_errors),
		cmocka_unit_test(test_hm_population_pair_key),
		cmocka_unit_test(test_frames_v4),
		cmocka_unit_test(test_frames_v6),
	};

	snprintf(prefix, sizeof(prefix), "kl_burst_test_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	return cmocka_run_group_tests_name("burst", tests, setup, teardown);
}
