/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst's UE pairs (--kind dh, --kind prose; PROTOCOL.md section 9, kinds 4 and 5)
 * through the core without I/O, against a small in-test server written from the protocol text
 * with the codec's builders: kind 4 answers with the peer UE's public value (P = X25519(KDF(K,
 * FF07, "dh-x25519"), 9), the population's key), after a configurable number of ERR 12/5 with a
 * retry-after; kind 5 keeps a rendezvous per pair (p2 from UE1's p1, p4 from UE2's p3) and answers
 * 12/5 until the other side's value is there. Faults: a wrong value for one pair, a UE the server
 * refuses (7/4), a pair that never gets ready (pair timeout), a responder that changes its p.
 * Checks: every pair agrees, the retry-after is honoured (no early retry), the same p is repeated,
 * the counters, the pairs summary (retries per pair, time to key), failures fail both sides.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kl_burst.h"
#include "kl_engine.h"
#include "kl_population.h"

#define MS 1000000ull
#define SEC(s) ((uint64_t)(s) << 32)
#define UES 400

static struct kl_pop_params pop;
static struct kl_crypto *sc; /* the server's crypto */
static uint8_t pub[UES][32];

/* ---- the in-test server ---------------------------------------------------------------------- */

static struct {
	unsigned waits;	     /* kind 4: 12/5 answers before the value, per UE */
	uint16_t retry_ms;   /* TLV 10 of 12/5 (0: none) */
	uint32_t wrong_pair; /* this pair (by side A's index) gets a wrong value; UINT32_MAX none */
	uint32_t refuse_ue;  /* 7/4 to this UE */
	uint32_t never_pair; /* always 12/5 for this pair */
	int check_p;	     /* kind 5: a side's p must not change between tries */
	int vary;	     /* retry-after 5 + 10 * (UE % 7) ms instead of retry_ms */
	uint64_t now_ns;     /* the simulated clock of the current round */
} srv;

static unsigned asked[UES];	     /* requests per UE */
static uint64_t last_wait_ns[UES];   /* when the UE last got 12/5 */
static uint16_t last_retry_ms[UES];  /* and the retry-after it said */
static uint64_t early[1];	     /* tries that came before their retry-after */
static unsigned p_changed;	     /* kind 5 requests whose p differs from the UE's first */
static uint8_t first_p[UES][16];
static uint8_t have_p[UES];
/* the rendezvous: a side's p2 / p4 as the server derived it, by UE index */
static uint8_t rv[UES][32];
static uint8_t rv_have[UES];

static uint32_t ue_index(const uint8_t *id, uint16_t len)
{
	char buf[16];

	assert_true(len > 10 && id[0] == 'u' && id[1] == 'e');
	memcpy(buf, id + 2, 8);
	buf[8] = 0;
	return (uint32_t)strtoul(buf, NULL, 10);
}

static void ue_key(uint32_t i, uint8_t k[32])
{
	struct kl_pop_ue ue;

	assert_int_equal(kl_pop_ue(&pop, i, &ue), 0);
	memcpy(k, ue.muk, 32);
	kl_memzero(&ue, sizeof(ue));
}

/* The transport keys of a request (PROTOCOL.md section 3). */
static void tkeys(const struct kl_mikey_req *r, const uint8_t psk[32], uint8_t ak[20], uint8_t ek[16],
		  uint8_t sk[14])
{
	struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
	int nch = kl_prf_key_init((enum kl_prf)r->prf, psk, 32, ch, KL_PRF_MAX_CHUNKS);
	struct kl_mikey_tk_op op;

	assert_true(nch > 0);
	op = (struct kl_mikey_tk_op){ .chunks = ch, .rand = r->rand, .auth_key = ak, .encr_key = ek,
				      .salt_key = sk, .csb_id = r->csb_id, .nchunks = (uint8_t)nch,
				      .rand_len = KL_MIKEY_RAND_LEN, .cs_id = 0xFF };
	assert_int_equal(kl_mikey_transport_keys_burst(sc, &op, 1), 1);
}

static void mac(const uint8_t ak[20], uint8_t *m, const struct kl_mikey_layout *lay)
{
	struct kl_hmac_key k;

	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA1, ak, 20, &k), 0);
	assert_int_equal(kl_hmac(sc, &k, m, lay->mac_off, m + lay->mac_off), 0);
}

/* One request in, one answer out (0: dropped). */
static uint16_t serve(const uint8_t *in, uint16_t len, uint8_t *out, size_t cap)
{
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	uint8_t psk[32], ak[20], ek[16], sk[14], val[32];
	uint64_t now = kl_ntp_now();
	uint32_t me, peer, a;
	int have;

	assert_int_equal(kl_mikey_parse_req(in, len, &r), KL_DROP_NONE);
	assert_true(r.kind == KL_KIND_DH || r.kind == KL_KIND_PROSE);
	me = ue_index(r.id, r.id_len);
	peer = ue_index(r.tlv[KL_TLVI_PEER_UE], r.tlv_len[KL_TLVI_PEER_UE]);
	assert_true(me < UES && peer < UES && (me ^ 1) == peer);
	a = me & ~1u;
	/* TLV 6 names the other UE's server: "srv-a" for side A (even), "srv-b" for side B */
	assert_int_equal(r.tlv_len[KL_TLVI_PEER_SERVER], 5);
	assert_memory_equal(r.tlv[KL_TLVI_PEER_SERVER], (peer & 1) ? "srv-b" : "srv-a", 5);
	if (last_wait_ns[me] && srv.now_ns < last_wait_ns[me] + (uint64_t)last_retry_ms[me] * MS)
		early[0]++;
	asked[me]++;
	ue_key(me, psk);
	tkeys(&r, psk, ak, ek, sk);
	if (me == srv.refuse_ue) {
		assert_int_equal(kl_mikey_build_err(out, cap, &r, now, KL_ERR_INVALID_ID, 4, &lay), 0);
		mac(ak, out, &lay);
		return lay.len;
	}
	if (r.kind == KL_KIND_DH) {
		have = asked[me] > srv.waits && a != srv.never_pair;
		memcpy(val, pub[peer], 32);
	} else {
		const uint8_t *p = r.tlv[KL_TLVI_CONTRIB];
		struct kl_kdf_param pp = { p, 16 };

		assert_int_equal(r.tlv[KL_TLVI_ROLE][0], 1 + (me & 1));
		if (!have_p[me]) {
			memcpy(first_p[me], p, 16);
			have_p[me] = 1;
		} else if (memcmp(first_p[me], p, 16)) {
			p_changed++;
		}
		assert_int_equal(kl_derive(sc, KL_KDF_PROSE_P2, psk, 32, &pp, 1, rv[me]), 0);
		rv_have[me] = 1;
		have = rv_have[peer] && a != srv.never_pair;
		memcpy(val, rv[peer], 32);
	}
	if (!have) {
		uint16_t ms = srv.vary ? (uint16_t)(5 + 10 * (me % 7)) : srv.retry_ms;

		last_wait_ns[me] = srv.now_ns;
		last_retry_ms[me] = ms;
		assert_int_equal(kl_mikey_build_err_retry(out, cap, &r, now, KL_ERR_UNSPECIFIED, 5,
							  ms, &lay), 0);
		if (!srv.retry_ms) /* the same message without TLV 10 */
			assert_int_equal(kl_mikey_build_err(out, cap, &r, now, KL_ERR_UNSPECIFIED, 5,
							    &lay), 0);
		mac(ak, out, &lay);
		return lay.len;
	}
	if (a == srv.wrong_pair)
		val[7] ^= 0x10;
	if (r.kind == KL_KIND_DH) {
		struct kl_mikey_tlv t = { .val = val, .len = 32, .type = KL_TLV_X25519 };

		assert_int_equal(kl_mikey_build_resp_v(out, cap, &r, now, (const uint8_t *)"srv", 3, &t,
						       1, &lay), 0);
	} else {
		struct kl_mikey_key k = { .key = val, .key_len = 32, .valid_from = now,
					  .valid_to = now + SEC(30) };
		struct kl_aescm_op op;

		assert_int_equal(kl_mikey_build_resp_tlv(out, cap, &r, now, (const uint8_t *)"srv", 3,
							 &k, 1, NULL, 0, &lay), 0);
		op = (struct kl_aescm_op){ .key = ek, .salt = sk, .in = out + lay.encr_off,
					   .out = out + lay.encr_off, .ntp_ts = now,
					   .csb_id = r.csb_id, .len = lay.encr_len };
		assert_int_equal(kl_aescm_burst(sc, &op, 1), 1);
	}
	mac(ak, out, &lay);
	kl_memzero(psk, sizeof(psk));
	return lay.len;
}

static void server_reset(void)
{
	memset(&srv, 0, sizeof(srv));
	srv.wrong_pair = srv.refuse_ue = srv.never_pair = UINT32_MAX;
	srv.retry_ms = 20;
	memset(asked, 0, sizeof(asked));
	memset(last_wait_ns, 0, sizeof(last_wait_ns));
	memset(last_retry_ms, 0, sizeof(last_retry_ms));
	memset(have_p, 0, sizeof(have_p));
	memset(rv_have, 0, sizeof(rv_have));
	early[0] = 0;
	p_changed = 0;
}

/* ---- driving the core -------------------------------------------------------------------------- */

static unsigned to_server[2]; /* requests by the dgram's server index */

static uint64_t run(struct kl_burst *b, uint64_t now)
{
	static uint8_t ans[KL_BURST_TX_MAX][1600];
	const uint8_t *ap[KL_BURST_TX_MAX];
	uint16_t al[KL_BURST_TX_MAX];

	for (int guard = 0; guard < 200000 && kl_burst_tick(b, now, NULL); guard++) {
		struct kl_burst_dgram dg[KL_BURST_TX_MAX];
		unsigned n = kl_burst_next(b, now, dg, KL_BURST_TX_MAX), na = 0;

		srv.now_ns = now;
		for (unsigned i = 0; i < n; i++) {
			dg[i].sent = 1;
			to_server[dg[i].server & 1]++;
		}
		kl_burst_sent(b, dg, n, now);
		for (unsigned i = 0; i < n; i++) {
			uint16_t l = serve(dg[i].data, dg[i].len, ans[na], sizeof(ans[na]));

			if (l) {
				ap[na] = ans[na];
				al[na++] = l;
			}
		}
		if (na)
			kl_burst_answers(b, ap, al, na, now + 100000);
		now += MS;
	}
	assert_int_equal(kl_burst_tick(b, now, NULL), 0);
	return now;
}

static int presign;	   /* the next make's */
static int make_ks_after; /* the next make's ks_after */

static struct kl_burst *make(enum kl_burst_kind kind, uint32_t pairs, uint32_t inflight,
			     uint32_t pair_timeout_ms)
{
	struct kl_burst_config c;
	struct kl_burst *b;
	char err[256];

	kl_burst_config_defaults(&c);
	c.kind = kind;
	c.mode = KL_BURST_MODE_MAX;
	c.ues = pairs;
	c.interval_ms = 0;
	c.timeout_ms = 50;
	c.retries = 1;
	c.inflight = inflight;
	c.backend = KL_CRYPTO_OPENSSL;
	c.pair_timeout_ms = pair_timeout_ms;
	c.presign = presign;
	c.ks_after = make_ks_after;
	strcpy(c.server_id, "srv-a");
	strcpy(c.peer_server_id, "srv-b");
	b = kl_burst_create(&c, &pop, err, sizeof(err));
	if (!b)
		fprintf(stderr, "kl_burst_create: %s\n", err);
	assert_non_null(b);
	memset(to_server, 0, sizeof(to_server));
	return b;
}

static json_t *pairs_of(json_t *s)
{
	json_t *p = json_object_get(s, "pairs");

	assert_true(json_is_object(p));
	return p;
}

static json_int_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static double jnum(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_number(v));
	return json_number_value(v);
}

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_dh_pairs(void **state)
{
	struct kl_burst *b;
	const struct kl_burst_totals *t;
	json_t *s, *p;

	(void)state;
	server_reset();
	srv.waits = 2; /* two rounds of 12/5 per UE before its peer's value */
	b = make(KL_BURST_KIND_DH, 150, 0, 0);
	t = kl_burst_totals(b);
	assert_int_equal(kl_burst_ues(b), 300);
	kl_burst_start(b, 0);
	run(b, 0);
	assert_int_equal(t->c[KL_BC_VERIFIED], 300);
	assert_int_equal(t->c[KL_BC_FAILED], 0);
	assert_int_equal(t->c[KL_BC_WAITS], 600);
	assert_int_equal(t->c[KL_BC_SENT], 900);
	assert_int_equal(t->c[KL_BC_RETRANSMISSIONS], 0);
	assert_int_equal(early[0], 0);
	/* side A to the server, side B to the peer server */
	assert_int_equal(to_server[0], 450);
	assert_int_equal(to_server[1], 450);
	assert_int_equal(kl_burst_exit_code(b), 0);
	s = kl_burst_summary(b, 2000 * MS);
	assert_string_equal(json_string_value(json_object_get(s, "kind")), "dh");
	p = pairs_of(s);
	assert_int_equal(jint(p, "pairs"), 150);
	assert_int_equal(jint(p, "ok"), 150);
	assert_int_equal(jint(p, "failed"), 0);
	assert_int_equal(jint(json_object_get(p, "retries"), "max"), 4);
	assert_true(jnum(json_object_get(p, "retries"), "mean") == 4.0);
	assert_int_equal(jint(json_object_get(p, "time_to_key_us"), "n"), 150);
	/* two retry-afters of 20 ms at least */
	assert_true(jnum(json_object_get(p, "time_to_key_us"), "min") >= 40000.0);
	assert_true(jnum(p, "pairs_per_s") > 0);
	json_decref(s);
	kl_burst_destroy(b);
}

static void test_prose_pairs(void **state)
{
	struct kl_burst *b;
	const struct kl_burst_totals *t;
	json_t *s, *p;

	(void)state;
	server_reset();
	srv.check_p = 1;
	b = make(KL_BURST_KIND_PROSE, 199, 0, 0);
	t = kl_burst_totals(b);
	kl_burst_start(b, 0);
	run(b, 0);
	assert_int_equal(t->c[KL_BC_VERIFIED], 398);
	assert_int_equal(kl_burst_exit_code(b), 0);
	/* side A comes first (the server has nothing from B yet): one 12/5 per pair, then the
	 * retry after 20 ms gets p4; B gets p2 at once */
	assert_int_equal(t->c[KL_BC_WAITS], 199);
	assert_int_equal(p_changed, 0);
	assert_int_equal(early[0], 0);
	s = kl_burst_summary(b, 2000 * MS);
	p = pairs_of(s);
	assert_string_equal(json_string_value(json_object_get(p, "kind")), "prose");
	assert_int_equal(jint(p, "ok"), 199);
	assert_int_equal(jint(json_object_get(p, "retries"), "max"), 1);
	json_decref(s);
	kl_burst_destroy(b);
}

/* Retry-afters of different lengths: each side waits its own (the wait heap), never less. */
static void test_pairs_varied_retry_after(void **state)
{
	struct kl_burst *b;
	json_t *s;

	(void)state;
	server_reset();
	srv.waits = 3;
	srv.vary = 1;
	b = make(KL_BURST_KIND_DH, 120, 0, 0);
	kl_burst_start(b, 0);
	run(b, 0);
	assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 240);
	assert_int_equal(kl_burst_totals(b)->c[KL_BC_WAITS], 720);
	assert_int_equal(early[0], 0);
	s = kl_burst_summary(b, 5000 * MS);
	/* the slowest side waits 3 x 65 ms */
	assert_true(jnum(json_object_get(pairs_of(s), "time_to_key_us"), "max") >= 195000.0);
	assert_true(jnum(json_object_get(pairs_of(s), "time_to_key_us"), "min") >= 45000.0);
	json_decref(s);
	kl_burst_destroy(b);
}

/* Presigned first tries: the retries after 12/5 are signed when due (a first try is never sent
 * twice) and ProSe's presigned p is the one repeated. */
static void test_pairs_presign(void **state)
{
	(void)state;
	for (int kind = KL_BURST_KIND_DH; kind <= KL_BURST_KIND_PROSE; kind++) {
		struct kl_burst *b;
		json_t *s;

		server_reset();
		srv.waits = 1;
		presign = 1;
		b = make((enum kl_burst_kind)kind, 40, 0, 0);
		presign = 0;
		kl_burst_start(b, 0);
		run(b, 0);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 80);
		assert_int_equal(p_changed, 0);
		s = kl_burst_summary(b, 5000 * MS);
		assert_int_equal(jint(json_object_get(s, "presign"), "used"), 80);
		assert_int_equal(jint(json_object_get(s, "presign"), "stale"), 0);
		json_decref(s);
		kl_burst_destroy(b);
	}
}

/* A small in-flight limit: pairs start whole and still meet. Without TLV 10 the default applies. */
static void test_pairs_small_inflight(void **state)
{
	struct kl_burst *b;

	(void)state;
	for (int kind = KL_BURST_KIND_DH; kind <= KL_BURST_KIND_PROSE; kind++) {
		server_reset();
		srv.waits = 1;
		srv.retry_ms = 0;
		b = make((enum kl_burst_kind)kind, 50, 3, 0);
		kl_burst_start(b, 0);
		run(b, 0);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 100);
		assert_int_equal(kl_burst_exit_code(b), 0);
		kl_burst_destroy(b);
	}
}

/* ks_after: the sides end with their answers (every value checked), the pairs are decided in
 * kl_burst_verify_stored: all agree, with a time to key per pair from the run. */
static void test_pairs_ks_after(void **state)
{
	struct kl_burst *b;
	json_t *s, *p;

	(void)state;
	make_ks_after = 1;
	for (int kind = KL_BURST_KIND_DH; kind <= KL_BURST_KIND_PROSE; kind++) {
		server_reset();
		srv.waits = 1;
		b = make((enum kl_burst_kind)kind, 40, 0, 0);
		kl_burst_start(b, 0);
		run(b, 0);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 0);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_FAILED], 0);
		assert_int_equal(kl_burst_verify_stored(b), 0);
		assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 80);
		assert_int_equal(kl_burst_exit_code(b), 0);
		s = kl_burst_summary(b, 2000 * MS);
		p = pairs_of(s);
		assert_int_equal(jint(p, "ok"), 40);
		assert_int_equal(jint(json_object_get(p, "time_to_key_us"), "n"), 40);
		assert_true(jnum(json_object_get(p, "time_to_key_us"), "max") < 1000000.0);
		json_decref(s);
		kl_burst_destroy(b);
	}
	make_ks_after = 0;
}

static json_t *failure_list(json_t *s)
{
	return json_object_get(json_object_get(s, "failures"), "list");
}

/* A wrong value for one pair, a refused UE, a pair that never gets ready: those pairs fail (both
 * sides), the others verify. */
static void test_pair_faults(void **state)
{
	(void)state;
	for (int kind = KL_BURST_KIND_DH; kind <= KL_BURST_KIND_PROSE; kind++) {
		struct kl_burst *b;
		const struct kl_burst_totals *t;
		json_t *s, *p;

		server_reset();
		srv.wrong_pair = 10; /* pair 5 */
		srv.refuse_ue = 21;  /* pair 10, side B */
		srv.never_pair = 40; /* pair 20 */
		b = make((enum kl_burst_kind)kind, 30, 0, 300);
		t = kl_burst_totals(b);
		kl_burst_start(b, 0);
		run(b, 0);
		assert_int_equal(t->c[KL_BC_VERIFIED], 54);
		assert_int_equal(t->c[KL_BC_FAILED], 6);
		/* one side of each failing pair fails for the reason, the other as peer_failed */
		assert_int_equal(t->fail[KL_BF_WRONG_KEY], 1);
		assert_int_equal(t->fail[KL_BF_ERROR_ANSWER], 1);
		assert_int_equal(t->fail[KL_BF_PAIR_TIMEOUT], 1);
		assert_int_equal(t->fail[KL_BF_PEER_FAILED], 3);
		assert_int_equal(kl_burst_exit_code(b), 1);
		s = kl_burst_summary(b, 5000 * MS);
		p = pairs_of(s);
		assert_int_equal(jint(p, "ok"), 27);
		assert_int_equal(jint(p, "failed"), 3);
		/* the never-ready pair kept retrying until the timeout: ~300 ms / 20 ms per side */
		assert_true(jint(json_object_get(p, "retries"), "max") >= 20);
		{
			json_t *l = failure_list(s), *x;
			size_t i;
			int saw_refused = 0;

			assert_int_equal(json_array_size(l), 6);
			json_array_foreach(l, i, x) {
				json_int_t pair = jint(x, "pair");

				assert_true(pair == 5 || pair == 10 || pair == 20);
				if (!strcmp(json_string_value(json_object_get(x, "reason")), "error_answer")) {
					assert_int_equal(pair, 10);
					assert_string_equal(json_string_value(json_object_get(x, "side")), "b");
					assert_int_equal(jint(x, "err"), 7);
					assert_int_equal(jint(x, "detail"), 4);
					saw_refused = 1;
				}
			}
			assert_true(saw_refused);
		}
		json_decref(s);
		kl_burst_destroy(b);
	}
}

/* An interrupted run: sides waiting for their verdict fail as interrupted too. */
static void test_pair_interrupt(void **state)
{
	struct kl_burst *b;
	struct kl_burst_dgram dg[KL_BURST_TX_MAX];
	uint8_t ans[1600];
	unsigned n;

	(void)state;
	server_reset();
	b = make(KL_BURST_KIND_DH, 4, 0, 0);
	kl_burst_start(b, 0);
	kl_burst_tick(b, 0, NULL);
	n = kl_burst_next(b, 0, dg, KL_BURST_TX_MAX);
	assert_int_equal(n, 8);
	for (unsigned i = 0; i < n; i++)
		dg[i].sent = 1;
	kl_burst_sent(b, dg, n, 0);
	/* only side A of each pair gets its answer */
	for (unsigned i = 0; i < n; i++) {
		uint16_t l;

		if (dg[i].server)
			continue;
		l = serve(dg[i].data, dg[i].len, ans, sizeof(ans));
		kl_burst_answer(b, ans, l, MS);
	}
	assert_int_equal(kl_burst_totals(b)->done, 4);
	kl_burst_interrupt(b, 2 * MS);
	assert_int_equal(kl_burst_totals(b)->fail[KL_BF_INTERRUPTED], 8);
	assert_int_equal(kl_burst_totals(b)->c[KL_BC_VERIFIED], 0);
	kl_burst_destroy(b);
}

static void test_pair_config(void **state)
{
	struct kl_burst_config c;
	char err[256];

	(void)state;
	kl_burst_config_defaults(&c);
	c.kind = KL_BURST_KIND_DH;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err))); /* no server identity */
	assert_non_null(strstr(err, "identity"));
	strcpy(c.server_id, "srv-a");
	c.ues = UES / 2 + 1; /* 2 UEs per pair */
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
	c.ues = 0;
	c.first = 1;
	{
		struct kl_burst *b = kl_burst_create(&c, &pop, err, sizeof(err));

		assert_non_null(b);
		assert_int_equal(kl_burst_ues(b), 2 * ((UES - 1) / 2));
		kl_burst_destroy(b);
	}
	c.first = 0;
	c.verify_after = 1;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
	c.verify_after = 0;
	c.peer_ues = 3;
	assert_null(kl_burst_create(&c, &pop, err, sizeof(err)));
}

static int setup(void **state)
{
	(void)state;
	memset(&pop, 0, sizeof(pop));
	pop.seed = 20261207;
	pop.ues = UES;
	pop.groups = 1;
	pop.now_ntp = kl_ntp_now() & ~0xFFFFFFFFull;
	pop.msk_period_s = 3600;
	pop.e2m_keys_per_imsi = 1;
	sc = kl_crypto_create(KL_CRYPTO_IPSECMB);
	assert_non_null(sc);
	/* the servers' public values, as the control plane would compute them */
	for (uint32_t i = 0; i < UES; i++) {
		uint8_t k[32];

		ue_key(i, k);
		assert_int_equal(kl_client_dh_public(sc, k, 32, pub[i]), 0);
		kl_memzero(k, sizeof(k));
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kl_crypto_destroy(sc);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dh_pairs),	 cmocka_unit_test(test_prose_pairs),
		cmocka_unit_test(test_pairs_small_inflight), cmocka_unit_test(test_pairs_ks_after),
		cmocka_unit_test(test_pair_faults), cmocka_unit_test(test_pairs_varied_retry_after),
		cmocka_unit_test(test_pairs_presign),
		cmocka_unit_test(test_pair_interrupt),	 cmocka_unit_test(test_pair_config),
	};

	kl_crypto_set_log(NULL);
	return cmocka_run_group_tests_name("burst-pair", tests, setup, teardown);
}
