/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Request engine end to end in memory: client-signed requests served against a real key table,
 * answers verified by the client side. Both PRFs and both crypto backends; every error of
 * PROTOCOL.md section 6; every silent drop (its counter moves, no bytes come out); replay;
 * truncation of requests and responses at every byte offset.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/rand.h>

#include <rte_eal.h>

#include "kl_eal_rundir.h"
#include "kl_engine.h"

#define SEC(s) ((uint64_t)(s) << 32)

static struct kl_table *tab;
static struct kl_worker *wk[2];
static struct kl_crypto *cli;
static uint64_t now;

static const uint8_t MUK[32] = { 0x4d, 0x55, 0x4b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
				 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29 };
static const uint8_t EMSE_PSK[16] = { 0xE5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static uint8_t e2m_int[6][32];
static const char *UE_ID = "ue1@ims.mnc001.mcc001.3gppnetwork.org";
static const char *UE2_ID = "ue2@ims.mnc001.mcc001.3gppnetwork.org";
static const char *EMSE_ID = "emse-7.corp.example";
static const uint8_t DOMAIN[3] = { 0x00, 0xF1, 0x10 };
static struct kl_group grp;
static uint32_t rand_ctr;

static void fresh_rand(uint8_t r[16])
{
	memset(r, 0x5A, 16);
	r[0] = (uint8_t)(rand_ctr >> 24);
	r[1] = (uint8_t)(rand_ctr >> 16);
	r[2] = (uint8_t)(rand_ctr >> 8);
	r[3] = (uint8_t)rand_ctr++;
}

struct creq {
	struct kl_client_req r;
	uint8_t rand[16];
	uint8_t buf[600];
};

static void mbms(struct creq *q, const char *id, uint16_t group, uint16_t number, uint8_t prf)
{
	memset(q, 0, sizeof(*q));
	fresh_rand(q->rand);
	q->r.spec = (struct kl_mikey_req_spec){ .rand = q->rand, .id = (const uint8_t *)id,
						.id_len = (uint16_t)strlen(id), .ts = now, .csb_id = 0x1000 + rand_ctr,
						.group = group, .number = number, .prf = prf,
						.kind = KL_KIND_MBMS };
	memcpy(q->r.spec.domain, DOMAIN, 3);
	q->r.psk = MUK;
	q->r.psk_len = sizeof(MUK);
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(cli, &q->r, 1), 1);
}

static void e2m(struct creq *q, const char *ue, int has_key_id, uint32_t key_id, uint8_t prf)
{
	memset(q, 0, sizeof(*q));
	fresh_rand(q->rand);
	q->r.spec = (struct kl_mikey_req_spec){ .rand = q->rand, .id = (const uint8_t *)EMSE_ID,
						.id_len = (uint16_t)strlen(EMSE_ID), .ue = (const uint8_t *)ue,
						.ue_len = (uint16_t)strlen(ue), .ts = now, .csb_id = 77,
						.key_id = key_id, .has_key_id = (uint8_t)has_key_id,
						.prf = prf, .id_type = 1, .kind = KL_KIND_E2M };
	q->r.psk = EMSE_PSK;
	q->r.psk_len = sizeof(EMSE_PSK);
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(cli, &q->r, 1), 1);
}

static uint8_t outbuf[64][1600];

/* Serve one request on worker b; returns the answer length. */
static uint16_t serve1(int b, const uint8_t *in, uint16_t len, uint8_t *drop)
{
	struct kl_pkt p = { .in = in, .out = outbuf[0], .in_len = len, .out_cap = sizeof(outbuf[0]) };

	kl_engine_serve(wk[b], now, &p, 1);
	kl_table_quiescent(tab, (unsigned)b);
	if (drop)
		*drop = p.drop;
	return p.out_len;
}

static void expect_keys(int b, struct creq *q, struct kl_client_result *res)
{
	uint16_t n = serve1(b, q->buf, q->r.len, NULL);

	assert_true(n > 0);
	assert_true(n <= 3 * q->r.len);
	assert_int_equal(kl_client_verify(cli, &q->r, outbuf[0], n, now, 60, res), 0);
	assert_false(res->is_error);
}

static void expect_error(int b, struct creq *q, uint8_t err_no, uint16_t detail)
{
	struct kl_client_result res;
	uint16_t n = serve1(b, q->buf, q->r.len, NULL);

	assert_true(n > 0);
	assert_true(n <= q->r.len);
	assert_int_equal(kl_client_verify(cli, &q->r, outbuf[0], n, now, 1u << 30, &res), 0);
	assert_true(res.is_error);
	assert_int_equal(res.err_no, err_no);
	assert_int_equal(res.detail, detail);
}

static void expect_drop(int b, const uint8_t *in, uint16_t len, enum kl_drop why)
{
	uint64_t before = kl_worker_stats(wk[b])->drop[why];
	uint8_t d;

	assert_int_equal(serve1(b, in, len, &d), 0);
	assert_int_equal(d, why);
	assert_int_equal(kl_worker_stats(wk[b])->drop[why], before + 1);
}

static void test_mbms_round_trip(void **state)
{
	(void)state;
	for (int b = 0; b < 2; b++)
		for (uint8_t prf = 0; prf < 2; prf++) {
			struct creq q;
			struct kl_client_result res;

			mbms(&q, UE_ID, 7, 0, prf);
			expect_keys(b, &q, &res);
			/* current MSK, plus the next one: it becomes valid within the window */
			assert_int_equal(res.nkeys, 2);
			assert_int_equal(res.keys[0].key_len, 16);
			assert_memory_equal(res.keys[0].key, grp.current.key, 16);
			assert_int_equal(res.keys[0].key_id, grp.current.msk_id);
			assert_int_equal(res.keys[0].valid_from, grp.current.valid_from);
			assert_int_equal(res.keys[0].valid_to, grp.current.valid_to);
			assert_memory_equal(res.keys[1].key, grp.next.key, 16);
			assert_int_equal(res.keys[1].key_id, grp.next.msk_id);
			/* by key number */
			mbms(&q, UE_ID, 7, (uint16_t)(grp.next.msk_id & 0xFFFF), prf);
			expect_keys(b, &q, &res);
			assert_int_equal(res.nkeys, 1);
			assert_memory_equal(res.keys[0].key, grp.next.key, 16);
		}
}

static void test_e2m_round_trip(void **state)
{
	uint8_t want[32];
	struct kl_kdf_param emse = { (const uint8_t *)EMSE_ID, 19 };

	(void)state;
	for (int b = 0; b < 2; b++)
		for (uint8_t prf = 0; prf < 2; prf++) {
			struct creq q;
			struct kl_client_result res;

			/* newest by IMSI */
			e2m(&q, "001010000000001", 0, 0, prf);
			expect_keys(b, &q, &res);
			assert_int_equal(res.nkeys, 1);
			assert_int_equal(res.keys[0].key_len, 32);
			assert_int_equal(res.keys[0].key_id, 0xA0000005);
			assert_int_equal(kl_derive(cli, KL_KDF_E2M, e2m_int[5], 32, &emse, 1, want), 0);
			assert_memory_equal(res.keys[0].key, want, 32);
			/* an older one by key id, through the application identity; no IMSI in the answer */
			e2m(&q, "alice@factory.example", 1, 0xA0000003, prf);
			{
				uint16_t n = serve1(b, q.buf, q.r.len, NULL);

				assert_true(n > 0);
				assert_null(memmem(outbuf[0], n, "001010000000001", 15));
				assert_int_equal(kl_client_verify(cli, &q.r, outbuf[0], n, now, 60, &res), 0);
			}
			assert_false(res.is_error);
			assert_int_equal(res.keys[0].key_id, 0xA0000003);
			assert_int_equal(kl_derive(cli, KL_KDF_E2M, e2m_int[3], 32, &emse, 1, want), 0);
			assert_memory_equal(res.keys[0].key, want, 32);
		}
}

static void test_errors(void **state)
{
	struct creq q;

	(void)state;
	for (int b = 0; b < 2; b++) {
		/* T outside the skew */
		mbms(&q, UE_ID, 7, 0, 0);
		q.r.spec.ts = now - SEC(120);
		assert_int_equal(kl_client_sign(cli, &q.r, 1), 1);
		expect_error(b, &q, KL_ERR_INVALID_TS, 0);
		/* not authorised for the group */
		mbms(&q, UE_ID, 9, 0, 0);
		expect_error(b, &q, KL_ERR_INVALID_ID, 1);
		/* authorised, but no such group */
		mbms(&q, UE2_ID, 8, 0, 0);
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 2);
		/* no such key number */
		mbms(&q, UE_ID, 7, 0x7777, 0);
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 2);
		/* key exists but not valid now: group 6 holds only an expired MSK */
		mbms(&q, UE2_ID, 6, 0, 1);
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 3);
		/* E2M: unknown IMSI, unknown application id, unknown key id, expired key */
		e2m(&q, "001010000000099", 0, 0, 0);
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 2);
		e2m(&q, "nobody@factory.example", 0, 0, 0);
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 2);
		e2m(&q, "001010000000001", 1, 0xA0000001, 0); /* evicted from the ring of 4 */
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 2);
		e2m(&q, "001010000000002", 0, 0, 0);
		expect_error(b, &q, KL_ERR_UNSPECIFIED, 3);
	}
}

static void test_silent_drops(void **state)
{
	struct creq q;
	uint8_t raw[600];

	(void)state;
	for (int b = 0; b < 2; b++) {
		/* bad MAC */
		mbms(&q, UE_ID, 7, 0, 0);
		q.buf[q.r.len - 1] ^= 1;
		expect_drop(b, q.buf, q.r.len, KL_DROP_BAD_MAC);
		/* wrong PSK is a bad MAC too */
		mbms(&q, UE_ID, 7, 0, 0);
		q.r.psk = EMSE_PSK;
		q.r.psk_len = 16;
		assert_int_equal(kl_client_sign(cli, &q.r, 1), 1);
		expect_drop(b, q.buf, q.r.len, KL_DROP_BAD_MAC);
		/* unknown identity */
		mbms(&q, "stranger@ims.example", 7, 0, 0);
		expect_drop(b, q.buf, q.r.len, KL_DROP_UNKNOWN_IDENTITY);
		/* replay: the same request again */
		mbms(&q, UE_ID, 7, 0, 0);
		assert_true(serve1(b, q.buf, q.r.len, NULL) > 0);
		expect_drop(b, q.buf, q.r.len, KL_DROP_REPLAY);
		/* malformed, oversized, unsupported */
		mbms(&q, UE_ID, 7, 0, 0);
		memcpy(raw, q.buf, q.r.len);
		expect_drop(b, raw, (uint16_t)(q.r.len - 1), KL_DROP_MALFORMED);
		memset(raw + q.r.len, 0, sizeof(raw) - q.r.len);
		expect_drop(b, raw, 513, KL_DROP_OVERSIZED);
		raw[0] = 2;
		expect_drop(b, raw, q.r.len, KL_DROP_UNSUPPORTED_VERSION);
		raw[0] = 1;
		raw[3] = 5;
		expect_drop(b, raw, q.r.len, KL_DROP_UNSUPPORTED_PRF);
		raw[3] = 0;
		raw[q.r.len - 21] = 2;
		expect_drop(b, raw, q.r.len, KL_DROP_UNSUPPORTED_ALG);
		raw[q.r.len - 21] = 1;
		raw[1] = KL_DT_PSK_RESP; /* a response sent to the server */
		expect_drop(b, raw, q.r.len, KL_DROP_UNSUPPORTED_TYPE);
		raw[1] = KL_DT_PSK_INIT;
		/* no room for an answer up to 3x the request: dropped before any crypto */
		{
			uint64_t before = kl_worker_stats(wk[b])->drop[KL_DROP_NO_BUFFER];
			struct kl_pkt p = { .in = raw, .out = outbuf[0], .in_len = q.r.len,
					    .out_cap = (uint16_t)(3 * q.r.len - 1) };

			assert_int_equal(kl_engine_serve(wk[b], now, &p, 1), 0);
			kl_table_quiescent(tab, (unsigned)b);
			assert_int_equal(p.drop, KL_DROP_NO_BUFFER);
			assert_int_equal(p.out_len, 0);
			assert_int_equal(kl_worker_stats(wk[b])->drop[KL_DROP_NO_BUFFER], before + 1);
		}
	}
}

static void test_replay_in_one_burst(void **state)
{
	struct creq q;
	struct kl_pkt p[3];

	(void)state;
	mbms(&q, UE_ID, 7, 0, 0);
	for (int i = 0; i < 3; i++)
		p[i] = (struct kl_pkt){ .in = q.buf, .out = outbuf[i], .in_len = q.r.len, .out_cap = sizeof(outbuf[i]) };
	assert_int_equal(kl_engine_serve(wk[0], now, p, 3), 1);
	kl_table_quiescent(tab, 0);
	assert_true(p[0].out_len > 0);
	assert_int_equal(p[1].drop, KL_DROP_REPLAY);
	assert_int_equal(p[2].drop, KL_DROP_REPLAY);
}

/* A replay cache far too small for the traffic (16 slots: 4 buckets of 3 entries) evicts live
 * entries, yet no replay ever gets a key: each is dropped (still cached) or, once its bucket
 * evicted it, answered "invalid timestamp" (its T is not after the bucket's floor). Requests
 * with a later T are served again. */
static void test_replay_cache_overflow(void **state)
{
	static struct creq q[48];
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 16 };
	struct kl_worker *keep = wk[1], *small = kl_worker_create(&ec, tab, 1);
	const struct kl_worker_stats *st;
	struct kl_client_result res;
	unsigned keys = 0, refused = 0, dropped = 0, errors = 0;

	(void)state;
	assert_non_null(small);
	wk[1] = small;
	st = kl_worker_stats(small);
	for (unsigned i = 0; i < 48; i++) {
		uint8_t d = 0;
		uint16_t n;

		mbms(&q[i], UE_ID, 7, 0, 0);
		n = serve1(1, q[i].buf, q[i].r.len, &d);
		assert_true(n > 0);
		assert_int_equal(kl_client_verify(cli, &q[i].r, outbuf[0], n, now, 1u << 30, &res), 0);
		if (res.is_error) {
			assert_int_equal(res.err_no, KL_ERR_INVALID_TS);
			refused++;
		} else {
			keys++;
		}
	}
	assert_true(st->counter[KL_CNT_REPLAY_EVICTIONS] > 0);
	assert_int_equal(st->counter[KL_CNT_REPLAY_WINDOW], refused);
	assert_true(keys >= 12);
	/* every request again: none may get a key */
	for (unsigned i = 0; i < 48; i++) {
		uint8_t d = 0;
		uint16_t n = serve1(1, q[i].buf, q[i].r.len, &d);

		if (!n) {
			assert_int_equal(d, KL_DROP_REPLAY);
			dropped++;
			continue;
		}
		assert_int_equal(kl_client_verify(cli, &q[i].r, outbuf[0], n, now, 1u << 30, &res), 0);
		assert_true(res.is_error);
		assert_int_equal(res.err_no, KL_ERR_INVALID_TS);
		errors++;
	}
	assert_int_equal(dropped + errors, 48);
	assert_true(errors >= 48 - 12);
	/* later T: above every floor, served */
	{
		uint64_t saved = now;

		now += (uint64_t)2 << 32;
		for (unsigned i = 0; i < 4; i++) {
			struct creq f;

			mbms(&f, UE_ID, 7, 0, 0);
			expect_keys(1, &f, &res);
		}
		now = saved;
	}
	wk[1] = keep;
	kl_worker_destroy(small);
}

/* Two choices: 2000 requests with T spread over the last 2 s, in random order, into a cache of
 * 16384 slots (4096 buckets of 3: 16% full) evict nothing, so none is refused. With one bucket
 * per request, some buckets would overflow by chance and refuse requests with older T. */
static void test_replay_cache_two_choices(void **state)
{
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 16384 };
	struct kl_worker *keep = wk[1], *w = kl_worker_create(&ec, tab, 1);
	const struct kl_worker_stats *st;
	struct kl_client_result res;
	uint64_t saved = now;

	(void)state;
	assert_non_null(w);
	wk[1] = w;
	st = kl_worker_stats(w);
	for (unsigned i = 0; i < 2000; i++) {
		struct creq q;
		uint8_t jitter[4];

		RAND_bytes(jitter, sizeof(jitter));
		now = saved - (((uint64_t)(jitter[0] | jitter[1] << 8 | (jitter[2] & 1) << 16)) << 16);
		mbms(&q, UE_ID, 7, 0, 0);
		now = saved;
		expect_keys(1, &q, &res);
	}
	assert_int_equal(st->counter[KL_CNT_REPLAY_EVICTIONS], 0);
	assert_int_equal(st->counter[KL_CNT_REPLAY_WINDOW], 0);
	wk[1] = keep;
	kl_worker_destroy(w);
}

/* Requests with T beyond the skew are refused and not cached: 64 of them with T a day ahead
 * (more than a 64-slot cache holds) leave no entry and no floor behind, so requests with a
 * current T are all served afterwards. Cached, each would pin its slot for a day, and evicting
 * them would raise bucket floors a day ahead, refusing everybody in those buckets. */
static void test_replay_cache_future_ts(void **state)
{
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 64 };
	struct kl_worker *keep = wk[1], *w = kl_worker_create(&ec, tab, 1);
	const struct kl_worker_stats *st;
	struct kl_client_result res;

	(void)state;
	assert_non_null(w);
	wk[1] = w;
	st = kl_worker_stats(w);
	for (unsigned i = 0; i < 64; i++) {
		struct creq q;

		mbms(&q, UE_ID, 7, 0, 0);
		q.r.spec.ts = now + SEC(86400);
		assert_int_equal(kl_client_sign(cli, &q.r, 1), 1);
		expect_error(1, &q, KL_ERR_INVALID_TS, 0);
	}
	assert_int_equal(st->counter[KL_CNT_REPLAY_EVICTIONS], 0);
	for (unsigned i = 0; i < 8; i++) {
		struct creq q;

		mbms(&q, UE_ID, 7, 0, 0);
		expect_keys(1, &q, &res);
	}
	assert_int_equal(st->counter[KL_CNT_REPLAY_WINDOW], 0);
	wk[1] = keep;
	kl_worker_destroy(w);
}

/* ---- one replay cache for all workers ---------------------------------------------------- */

#define RACE_N 8192
#define RACE_BURST 32

struct race {
	struct creq *q;	       /* RACE_N signed requests */
	unsigned *keys;	       /* per request: answers with keys, both threads together */
	struct kl_worker *w;   /* this thread's worker */
	unsigned reader;
	pthread_barrier_t *go;
	unsigned bad;	       /* answers that did not verify */
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	struct kl_crypto *c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	static __thread uint8_t out[RACE_BURST][1600];
	struct kl_pkt p[RACE_BURST];
	unsigned idx[RACE_BURST];

	pthread_barrier_wait(r->go);
	for (unsigned base = 0; base < RACE_N; base += RACE_BURST) {
		for (unsigned k = 0; k < RACE_BURST; k++) {
			unsigned i = base + k;

			idx[k] = i;
			p[k] = (struct kl_pkt){ .in = r->q[i].buf, .in_len = r->q[i].r.len,
						.out = out[k], .out_cap = sizeof(out[k]) };
		}
		kl_engine_serve(r->w, now, p, RACE_BURST);
		kl_table_quiescent(tab, r->reader);
		for (unsigned k = 0; k < RACE_BURST; k++) {
			struct kl_client_result res;

			if (!p[k].out_len)
				continue;
			if (!c || kl_client_verify(c, &r->q[idx[k]].r, out[k], p[k].out_len, now, 60, &res))
				r->bad++;
			else if (!res.is_error)
				__atomic_fetch_add(&r->keys[idx[k]], 1, __ATOMIC_RELAXED);
		}
	}
	kl_crypto_destroy(c);
	return NULL;
}

/* Two workers on two threads serve the same RACE_N requests at the same time (a captured
 * request replayed so that it reaches the other worker: another source port under
 * SO_REUSEPORT, another address under RSS). shared = a replay cache of slots entries shared by
 * both, else each has its own. @return the answers with keys (over both threads); *twice gets
 * the requests answered with keys by both. */
static unsigned race(struct creq *q, int shared, uint32_t slots, unsigned *twice)
{
	static unsigned keys[RACE_N];
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = slots,
				       .backend = KL_CRYPTO_IPSECMB };
	struct kl_replay *rc = shared ? kl_replay_create(slots) : NULL;
	struct kl_worker *keep0 = wk[0], *keep1 = wk[1];
	pthread_barrier_t go;
	pthread_t th[2];
	struct race r[2];
	unsigned total = 0;

	assert_true(!shared || rc);
	ec.replay = rc;
	memset(keys, 0, sizeof(keys));
	/* the suite's workers hold readers 0 and 1: these two borrow them */
	for (unsigned t = 0; t < 2; t++) {
		/* the same order: the copies meet inside the same bursts */
		r[t] = (struct race){ .q = q, .keys = keys, .reader = t, .go = &go };
		r[t].w = kl_worker_create(&ec, tab, t);
		assert_non_null(r[t].w);
	}
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	for (unsigned t = 0; t < 2; t++)
		assert_int_equal(pthread_create(&th[t], NULL, race_thread, &r[t]), 0);
	for (unsigned t = 0; t < 2; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	pthread_barrier_destroy(&go);
	*twice = 0;
	for (unsigned i = 0; i < RACE_N; i++) {
		total += keys[i];
		*twice += keys[i] > 1;
	}
	for (unsigned t = 0; t < 2; t++) {
		assert_int_equal(r[t].bad, 0);
		kl_worker_destroy(r[t].w);
	}
	kl_replay_destroy(rc);
	wk[0] = keep0;
	wk[1] = keep1;
	return total;
}

/* The cache's own race, without the engine around it: two threads check the same tags in
 * lock-step (both arrive at tag i before either checks it), so the copies' checks overlap by
 * nanoseconds, as two workers' can. Never both NEW. */
#define CHECK_N 200000

struct check_race {
	struct kl_replay *rc;
	struct kl_replay_ref *ref;
	unsigned *arrive;
	uint8_t *verdict; /* [2][CHECK_N] */
	unsigned t;
};

static void *check_thread(void *arg)
{
	struct check_race *c = arg;
	uint64_t ev = 0;

	for (unsigned i = 0; i < CHECK_N; i++) {
		unsigned spins = 0;

		if (__atomic_fetch_add(&c->arrive[i], 1, __ATOMIC_SEQ_CST) == 1) {
			/* second to arrive: the first learns it a cache-line transfer later, so wait
			 * a varying moment to let the two checks overlap at every offset */
			for (volatile unsigned k = 0; k < (i * 7u) % 96; k++)
				;
		}
		while (__atomic_load_n(&c->arrive[i], __ATOMIC_ACQUIRE) < 2)
			if (++spins > 1000)
				sched_yield(); /* the other thread is not running now */
		c->verdict[c->t * CHECK_N + i] =
			(uint8_t)kl_replay_check(&c->ref[i], now, now, SEC(60), &ev);
	}
	return NULL;
}

static void test_replay_check_race(void **state)
{
	struct kl_replay *rc = kl_replay_create(1u << 20);
	struct kl_replay_ref *ref = calloc(CHECK_N, sizeof(*ref));
	unsigned *arrive = calloc(CHECK_N, sizeof(*arrive));
	uint8_t *verdict = calloc(2, CHECK_N);
	struct check_race c[2];
	pthread_t th[2];
	unsigned twice = 0, none = 0;

	(void)state;
	assert_true(rc && ref && arrive && verdict);
	for (unsigned i = 0; i < CHECK_N; i++) {
		uint8_t r[16];

		fresh_rand(r);
		kl_replay_ref(rc, &ref[i], (const uint8_t *)UE_ID, (uint16_t)strlen(UE_ID), i, r);
	}
	for (unsigned t = 0; t < 2; t++) {
		c[t] = (struct check_race){ .rc = rc, .ref = ref, .arrive = arrive, .verdict = verdict,
					    .t = t };
		assert_int_equal(pthread_create(&th[t], NULL, check_thread, &c[t]), 0);
	}
	for (unsigned t = 0; t < 2; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	for (unsigned i = 0; i < CHECK_N; i++) {
		unsigned n = (verdict[i] == KL_REPLAY_NEW) + (verdict[CHECK_N + i] == KL_REPLAY_NEW);

		twice += n == 2;
		none += n == 0;
	}
	print_message("lock-step checks: %u tags, %u accepted twice, %u refused on both\n", CHECK_N,
		      twice, none);
	assert_int_equal(twice, 0);
	assert_true(none < CHECK_N / 10);
	free(verdict);
	free(arrive);
	free(ref);
	kl_replay_destroy(rc);
}

static void test_replay_shared_across_workers(void **state)
{
	static struct creq q[RACE_N];
	unsigned twice, keys, neither_max = RACE_N / 4;

	(void)state;
	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = 0; i < RACE_N; i++)
			mbms(&q[i], UE_ID, 7, 0, 0);
		/* the check can fail: with a cache per worker, each copy gets keys on its worker */
		if (round == 0) {
			keys = race(q, 0, 1u << 16, &twice);
			print_message("own caches: %u answers with keys for %u requests, %u twice\n", keys,
				      RACE_N, twice);
			assert_true(twice > RACE_N / 2);
		}
		/* one cache: never twice, whatever the timing; a request whose two copies meet
		 * exactly may be refused on both workers, never accepted on both */
		keys = race(q, 1, 1u << 16, &twice);
		print_message("shared cache: %u answers with keys for %u requests\n", keys, RACE_N);
		assert_int_equal(twice, 0);
		assert_true(keys >= RACE_N - neither_max);
		/* a shared cache far too small (16 slots): evictions and floors under the race too */
		for (unsigned i = 0; i < RACE_N; i++)
			mbms(&q[i], UE_ID, 7, 0, 0);
		keys = race(q, 1, 16, &twice);
		assert_int_equal(twice, 0);
		assert_true(keys >= 12);
	}
}

static void test_truncation(void **state)
{
	struct creq q;
	struct kl_client_result res;
	uint8_t ans[1600];
	uint16_t n;

	(void)state;
	mbms(&q, UE_ID, 7, 0, 1);
	for (uint16_t cut = 0; cut < q.r.len; cut++) {
		uint8_t d;

		assert_int_equal(serve1(cut & 1, q.buf, cut, &d), 0);
		assert_int_not_equal(d, KL_DROP_NONE);
	}
	n = serve1(0, q.buf, q.r.len, NULL);
	assert_true(n > 0);
	memcpy(ans, outbuf[0], n);
	assert_int_equal(kl_client_verify(cli, &q.r, ans, n, now, 60, &res), 0);
	for (uint16_t cut = 0; cut < n; cut++)
		assert_int_not_equal(kl_client_verify(cli, &q.r, ans, cut, now, 60, &res), 0);
	/* every single-bit flip of the answer is caught */
	for (uint16_t i = 0; i < n; i++) {
		ans[i] ^= 0x10;
		assert_int_not_equal(kl_client_verify(cli, &q.r, ans, n, now, 60, &res), 0);
		ans[i] ^= 0x10;
	}
}

static void test_full_burst(void **state)
{
	static struct creq q[64];
	struct kl_pkt p[64];
	struct kl_client_result res;

	(void)state;
	for (int i = 0; i < 64; i++) {
		if (i % 3 == 2)
			e2m(&q[i], "001010000000001", 0, 0, (uint8_t)(i & 1));
		else
			mbms(&q[i], i % 5 == 4 ? "stranger@x" : UE_ID, 7, 0, (uint8_t)(i & 1));
		p[i] = (struct kl_pkt){ .in = q[i].buf, .out = outbuf[i], .in_len = q[i].r.len, .out_cap = sizeof(outbuf[i]) };
	}
	for (int b = 0; b < 2; b++) {
		unsigned want = 0;

		for (int i = 0; i < 64; i++) /* fresh RANDs so the second pass is no replay */
			if (i % 5 != 4 || i % 3 == 2) {
				fresh_rand(q[i].rand);
				assert_int_equal(kl_client_sign(cli, &q[i].r, 1), 1);
				want++;
			}
		assert_int_equal(kl_engine_serve(wk[b], now, p, 64), want);
		kl_table_quiescent(tab, (unsigned)b);
		for (int i = 0; i < 64; i++) {
			if (i % 5 == 4 && i % 3 != 2) {
				assert_int_equal(p[i].out_len, 0);
				assert_int_equal(p[i].drop, KL_DROP_UNKNOWN_IDENTITY);
				continue;
			}
			assert_int_equal(kl_client_verify(cli, &q[i].r, outbuf[i], p[i].out_len, now, 60, &res), 0);
			assert_false(res.is_error);
		}
	}
}

/* A UE whose MUK has expired (GBA: it must bootstrap again): once its MAC verified it is
 * answered ERR 12 detail 3, whatever it asks for; before its expiry it gets keys. */
static void test_muk_expiry(void **state)
{
	static const char *const ids[4] = { "exp-past@ims.example", "exp-now@ims.example",
					    "exp-soon@ims.example", "exp-never@ims.example" };
	const uint64_t exps[4] = { now - SEC(1), now, now + SEC(60), 0 };
	struct kl_group_ref g7 = { .group = 7 };
	uint8_t bad_muk[32];

	(void)state;
	memcpy(g7.domain, DOMAIN, 3);
	memset(bad_muk, 0x77, sizeof(bad_muk));
	for (int i = 0; i < 4; i++)
		assert_int_equal(kl_table_put_ue_exp(tab, (const uint8_t *)ids[i],
						     (uint16_t)strlen(ids[i]), MUK, 32, &g7, 1,
						     exps[i]),
				 0);
	for (int b = 0; b < 2; b++)
		for (uint8_t prf = 0; prf < 2; prf++) {
			uint64_t before = kl_worker_stats(wk[b])->counter[KL_CNT_ERR_KEY_NOT_VALID];
			struct kl_client_result res;
			struct creq q;

			mbms(&q, ids[0], 7, 0, prf);
			expect_error(b, &q, KL_ERR_UNSPECIFIED, 3);
			mbms(&q, ids[1], 7, 0, prf); /* expires == now: expired */
			expect_error(b, &q, KL_ERR_UNSPECIFIED, 3);
			/* expired and not authorised for the group: the expiry is told */
			mbms(&q, ids[0], 9, 0, prf);
			expect_error(b, &q, KL_ERR_UNSPECIFIED, 3);
			assert_int_equal(kl_worker_stats(wk[b])->counter[KL_CNT_ERR_KEY_NOT_VALID],
					 before + 3);
			/* not yet expired, never expires: keys */
			mbms(&q, ids[2], 7, 0, prf);
			expect_keys(b, &q, &res);
			assert_int_equal(res.nkeys, 2);
			assert_memory_equal(res.keys[0].key, grp.current.key, 16);
			mbms(&q, ids[3], 7, 0, prf);
			expect_keys(b, &q, &res);
			assert_int_equal(res.nkeys, 2);
			/* a MAC that does not verify gets nothing, expired or not */
			mbms(&q, ids[0], 7, 0, prf);
			q.r.psk = bad_muk;
			assert_int_equal(kl_client_sign(cli, &q.r, 1), 1);
			expect_drop(b, q.buf, q.r.len, KL_DROP_BAD_MAC);
			assert_int_equal(kl_worker_stats(wk[b])->counter[KL_CNT_ERR_KEY_NOT_VALID],
					 before + 3);
		}
	/* a groups update keeps the expiry; a new MUK without one revives the UE */
	assert_int_equal(kl_table_set_ue_groups(tab, (const uint8_t *)ids[0],
						(uint16_t)strlen(ids[0]), &g7, 1),
			 1);
	kl_table_quiescent(tab, 0);
	kl_table_quiescent(tab, 1);
	{
		struct kl_client_result res;
		struct creq q;

		mbms(&q, ids[0], 7, 0, 0);
		expect_error(0, &q, KL_ERR_UNSPECIFIED, 3);
		assert_int_equal(kl_table_put_ue(tab, (const uint8_t *)ids[0],
						 (uint16_t)strlen(ids[0]), MUK, 32, &g7, 1),
				 1);
		mbms(&q, ids[0], 7, 0, 0);
		expect_keys(0, &q, &res);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(kl_table_del(tab, KL_TK_UE, (const uint8_t *)ids[i],
					      (uint16_t)strlen(ids[i])),
				 0);
}

static int setup(void **state)
{
	struct kl_table_params tp = { .name = "engine_test", .max_ues = 1024, .max_groups = 64,
				      .max_emses = 64, .max_imsis = 64, .max_appids = 64,
				      .e2m_ring = 4, .max_readers = 2, .socket_id = -1 };
	struct kl_group_ref g7 = { .group = 7 }, g8 = { .group = 8 }, g6 = { .group = 6 };
	struct kl_group_ref ue2g[2];
	struct kl_group old = { 0 };
	struct kl_engine_config ec = { .idr = (const uint8_t *)"keyline.test", .idr_len = 12,
				       .skew_s = 60, .predelivery_s = 60, .replay_entries = 4096 };

	(void)state;
	now = kl_ntp_now();
	memcpy(g7.domain, DOMAIN, 3);
	memcpy(g8.domain, DOMAIN, 3);
	memcpy(g6.domain, DOMAIN, 3);
	ue2g[0] = g8;
	ue2g[1] = g6;
	tab = kl_table_create(&tp);
	assert_non_null(tab);
	assert_int_equal(kl_table_put_ue(tab, (const uint8_t *)UE_ID, (uint16_t)strlen(UE_ID), MUK, 32, &g7, 1), 0);
	assert_int_equal(kl_table_put_ue(tab, (const uint8_t *)UE2_ID, (uint16_t)strlen(UE2_ID), MUK, 32, ue2g, 2), 0);
	memset(grp.current.key, 0xC1, 16);
	grp.current.valid_from = now - SEC(100);
	grp.current.valid_to = now + SEC(30);
	grp.current.msk_id = 7u << 16 | 41;
	memset(grp.next.key, 0xC2, 16);
	grp.next.valid_from = now + SEC(30);
	grp.next.valid_to = now + SEC(3600);
	grp.next.msk_id = 7u << 16 | 42;
	grp.has_next = 1;
	assert_int_equal(kl_table_put_group(tab, &g7, &grp), 0);
	memset(old.current.key, 0xC3, 16);
	old.current.valid_from = now - SEC(1000);
	old.current.valid_to = now - SEC(10);
	old.current.msk_id = 6u << 16 | 1;
	assert_int_equal(kl_table_put_group(tab, &g6, &old), 0);
	assert_int_equal(kl_table_put_emse(tab, (const uint8_t *)EMSE_ID, 19, EMSE_PSK, 16), 0);
	for (int k = 0; k < 6; k++) {
		memset(e2m_int[k], 0xE0 + k, 32);
		assert_true(kl_table_push_e2m(tab, "001010000000001", e2m_int[k], 0xA0000000u + (uint32_t)k, 0) >= 0);
	}
	assert_true(kl_table_push_e2m(tab, "001010000000002", e2m_int[0], 1, now - SEC(5)) >= 0);
	assert_int_equal(kl_table_put_appid(tab, (const uint8_t *)"alice@factory.example", 21, "001010000000001"), 0);
	assert_int_equal(kl_table_reader_register(tab, 0), 0);
	assert_int_equal(kl_table_reader_register(tab, 1), 0);
	ec.backend = KL_CRYPTO_IPSECMB;
	wk[0] = kl_worker_create(&ec, tab, 0);
	ec.backend = KL_CRYPTO_OPENSSL;
	wk[1] = kl_worker_create(&ec, tab, 1);
	cli = kl_crypto_create(KL_CRYPTO_OPENSSL);
	assert_non_null(wk[0]);
	assert_non_null(wk[1]);
	assert_non_null(cli);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kl_worker_destroy(wk[0]);
	kl_worker_destroy(wk[1]);
	kl_crypto_destroy(cli);
	kl_table_reader_unregister(tab, 0);
	kl_table_reader_unregister(tab, 1);
	kl_table_free(tab);
	return 0;
}

int main(void)
{
	char prefix[64];
	char *eal[] = { "test_engine", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mbms_round_trip), cmocka_unit_test(test_e2m_round_trip),
		cmocka_unit_test(test_errors),		cmocka_unit_test(test_silent_drops),
		cmocka_unit_test(test_replay_in_one_burst),
		cmocka_unit_test(test_replay_cache_overflow),
		cmocka_unit_test(test_replay_cache_two_choices),
		cmocka_unit_test(test_replay_cache_future_ts),
		cmocka_unit_test(test_replay_shared_across_workers),
		cmocka_unit_test(test_replay_check_race), cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_full_burst),
		cmocka_unit_test(test_muk_expiry),
	};

	snprintf(prefix, sizeof(prefix), "kl_engine_test_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	return cmocka_run_group_tests_name("engine", tests, setup, teardown);
}
