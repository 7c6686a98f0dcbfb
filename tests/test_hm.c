/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The VLR token scheme (PROTOCOL.md section 9, kinds 2 and 3) end to end in memory: two servers,
 * VLRa ("vlr-a.example") serving UEa and VLRb ("vlr-b.example") serving UEb, each with its own key
 * table holding the same pair key under the other's identity. UEa gets a session from VLRa (K*a,
 * token_a, token_b), opens token_a; UEb fetches K*b from VLRb (kind 3) and opens token_b: both
 * must hold the same Ks. Both crypto backends; every error of the scheme; a token altered in any
 * byte; the 3x rule and padding; the UE-side checks (identities, servers, valid-to).
 *
 *   test_hm                  the cmocka tests
 *   test_hm --example FILE   writes a worked example (test keys only) as JSON for the reference
 *                            check outside C (tests/hm_reference.py)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <rte_eal.h>

#include "kl_eal_rundir.h"
#include "kl_engine.h"

#define SEC(s) ((uint64_t)(s) << 32)

static const char *VLRA = "vlr-a.example", *VLRB = "vlr-b.example";
static const char *UEA = "ue-a@ims.mnc001.mcc001.3gppnetwork.org";
static const char *UEB = "ue-b@ims.mnc002.mcc001.3gppnetwork.org";
static const char *UEC = "ue-c@ims.mnc001.mcc001.3gppnetwork.org"; /* no hm service */
static uint8_t MUK_A[32], MUK_B[32], MUK_C[32], PAIR[32];

static struct kl_table *ta, *tb;
static struct kl_worker *wa[2], *wb;
static struct kl_crypto *cli;
static uint64_t now;
static uint32_t seq;

struct creq {
	struct kl_client_req r;
	uint8_t rand[16];
	uint8_t buf[600];
};

static void sign(struct creq *q, uint8_t kind, const char *id, const uint8_t *muk,
		 const char *peer_ue, const char *peer_server, int pad)
{
	memset(q, 0, sizeof(*q));
	memset(q->rand, 0x33, 16);
	memcpy(q->rand, &seq, sizeof(seq));
	q->r.spec = (struct kl_mikey_req_spec){
		.rand = q->rand, .id = (const uint8_t *)id, .id_len = (uint16_t)strlen(id),
		.ts = now, .csb_id = ++seq, .kind = kind,
		.peer_ue = (const uint8_t *)peer_ue,
		.peer_ue_len = peer_ue ? (uint16_t)strlen(peer_ue) : 0,
		.peer_server = (const uint8_t *)peer_server,
		.peer_server_len = peer_server ? (uint16_t)strlen(peer_server) : 0,
		.has_pad = (uint8_t)(pad >= 0), .pad_len = (uint16_t)(pad >= 0 ? pad : 0),
	};
	q->r.psk = muk;
	q->r.psk_len = 32;
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(cli, &q->r, 1), 1);
}

static uint8_t ans[1600];

/* Serve one request; @return the answer length (0: dropped, *drop says why). */
static uint16_t serve(struct kl_worker *w, struct kl_table *t, struct creq *q, uint8_t *drop)
{
	struct kl_pkt p = { .in = q->buf, .in_len = q->r.len, .out = ans, .out_cap = sizeof(ans) };

	kl_engine_serve(w, now, &p, 1);
	kl_table_quiescent(t, 0);
	if (drop)
		*drop = p.drop;
	return p.out_len;
}

static void expect_error(struct kl_worker *w, struct kl_table *t, struct creq *q, uint8_t err_no,
			 uint16_t detail)
{
	struct kl_client_result res;
	uint16_t n = serve(w, t, q, NULL);

	assert_true(n > 0);
	assert_int_equal(kl_client_verify(cli, &q->r, ans, n, now, 60, &res), 0);
	assert_true(res.is_error);
	assert_int_equal(res.err_no, err_no);
	assert_int_equal(res.detail, detail);
}

static void kstar_of(const char *ue, uint8_t out[32])
{
	struct kl_hmac_key k;
	struct kl_kdf_param p = { .data = (const uint8_t *)ue, .len = (uint16_t)strlen(ue) };

	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, PAIR, 32, &k), 0);
	assert_int_equal(kl_kdf(cli, &k, 0xFF06, &p, 1, out), 0);
}

static void open1(struct kl_hm_open *o, const uint8_t *kstar, const uint8_t *tok, uint16_t len)
{
	*o = (struct kl_hm_open){ .kstar = kstar, .token = tok, .token_len = len,
				  .vlra = (const uint8_t *)VLRA, .vlra_len = (uint16_t)strlen(VLRA),
				  .vlrb = (const uint8_t *)VLRB, .vlrb_len = (uint16_t)strlen(VLRB),
				  .ue_a = (const uint8_t *)UEA, .ue_a_len = (uint16_t)strlen(UEA),
				  .ue_b = (const uint8_t *)UEB, .ue_b_len = (uint16_t)strlen(UEB),
				  .now = now };
	assert_int_equal(kl_client_hm_open_burst(cli, o, 1), 1);
}

struct session {
	uint8_t kstar_a[32], kstar_b[32], ks_a[16], ks_b[16];
	uint8_t tok_a[400], tok_b[400], answer[1600];
	uint16_t tok_a_len, tok_b_len, answer_len;
	uint32_t sid;
	uint64_t valid_from, valid_to;
};

/* UEa's session through VLRa's worker w, UEb's K* fetch through VLRb, both tokens opened. */
static void session(struct kl_worker *w, struct session *s)
{
	struct creq q;
	struct kl_client_result res;
	struct kl_hm_open o;
	uint8_t want[32];
	uint16_t n;

	sign(&q, KL_KIND_HM, UEA, MUK_A, UEB, VLRB, -1);
	n = serve(w, ta, &q, NULL);
	assert_true(n > 0 && n <= 3 * q.r.len);
	memcpy(s->answer, ans, n);
	s->answer_len = n;
	assert_int_equal(kl_client_verify(cli, &q.r, ans, n, now, 60, &res), 0);
	assert_false(res.is_error);
	assert_int_equal(res.nkeys, 1);
	assert_int_equal(res.keys[0].key_len, 32);
	kstar_of(UEA, want);
	assert_memory_equal(res.keys[0].key, want, 32);
	memcpy(s->kstar_a, res.keys[0].key, 32);
	s->sid = res.keys[0].key_id;
	s->valid_from = res.keys[0].valid_from;
	s->valid_to = res.keys[0].valid_to;
	assert_true(s->valid_from == now);
	assert_true(s->valid_to == now + SEC(3600));
	assert_non_null(res.token[0]);
	assert_non_null(res.token[1]);
	s->tok_a_len = res.token_len[0];
	s->tok_b_len = res.token_len[1];
	memcpy(s->tok_a, res.token[0], s->tok_a_len);
	memcpy(s->tok_b, res.token[1], s->tok_b_len);
	assert_int_equal(s->tok_a_len, 1 + 12 + 16 + 8 + 1 + strlen(UEA) + 1 + strlen(UEB) + 16);
	open1(&o, s->kstar_a, s->tok_a, s->tok_a_len);
	assert_int_equal(o.rc, 0);
	assert_true(o.valid_to == s->valid_to);
	memcpy(s->ks_a, o.ks, 16);
	/* UEb: kind 3 at VLRb names VLRa */
	sign(&q, KL_KIND_KSTAR, UEB, MUK_B, NULL, VLRA, -1);
	n = serve(wb, tb, &q, NULL);
	assert_true(n > 0);
	assert_int_equal(kl_client_verify(cli, &q.r, ans, n, now, 60, &res), 0);
	assert_false(res.is_error);
	assert_int_equal(res.nkeys, 1);
	assert_int_equal(res.keys[0].key_id, 0);
	assert_true(res.keys[0].valid_from == now);
	assert_true(res.keys[0].valid_to == now + SEC(86400)); /* the pair key's expiry at VLRb */
	kstar_of(UEB, want);
	assert_memory_equal(res.keys[0].key, want, 32);
	memcpy(s->kstar_b, res.keys[0].key, 32);
	open1(&o, s->kstar_b, s->tok_b, s->tok_b_len);
	assert_int_equal(o.rc, 0);
	memcpy(s->ks_b, o.ks, 16);
	assert_memory_equal(s->ks_a, s->ks_b, 16);
}

static void test_session_both_backends(void **state)
{
	struct session s[3];

	(void)state;
	session(wa[0], &s[0]);
	session(wa[1], &s[1]);
	session(wa[0], &s[2]);
	/* every session its own Ks, nonces and id */
	assert_memory_not_equal(s[0].ks_a, s[1].ks_a, 16);
	assert_memory_not_equal(s[0].ks_a, s[2].ks_a, 16);
	assert_memory_not_equal(s[0].tok_a + 1, s[2].tok_a + 1, 12);
	assert_memory_not_equal(s[0].tok_a + 1, s[0].tok_b + 1, 12);
	assert_true(s[0].sid != s[2].sid || s[0].sid != s[1].sid);
	assert_int_equal(kl_worker_stats(wa[0])->counter[KL_CNT_ANSWERED_HM], 2);
	assert_int_equal(kl_worker_stats(wa[1])->counter[KL_CNT_ANSWERED_HM], 1);
	assert_true(kl_worker_stats(wb)->counter[KL_CNT_ANSWERED_KSTAR] >= 3);
}

/* The UE side refuses: any altered byte, another key, other servers, other UEs, an old token. */
static void test_token_checks(void **state)
{
	struct session s;
	struct kl_hm_open o;
	uint8_t t[400], other[32];

	(void)state;
	session(wa[0], &s);
	for (unsigned b = 0; b < s.tok_a_len; b++) {
		memcpy(t, s.tok_a, s.tok_a_len);
		t[b] ^= 0x40;
		open1(&o, s.kstar_a, t, s.tok_a_len);
		assert_true(o.rc == -EPERM || o.rc == -EBADMSG);
		assert_memory_equal(o.ks, (uint8_t[16]){ 0 }, 16);
	}
	open1(&o, s.kstar_a, s.tok_a, (uint16_t)(s.tok_a_len - 1));
	assert_int_not_equal(o.rc, 0);
	open1(&o, s.kstar_b, s.tok_a, s.tok_a_len); /* the other UE's key */
	assert_int_equal(o.rc, -EPERM);
	kstar_of(UEC, other);
	open1(&o, other, s.tok_b, s.tok_b_len);
	assert_int_equal(o.rc, -EPERM);
	o = (struct kl_hm_open){ .kstar = s.kstar_a, .token = s.tok_a, .token_len = s.tok_a_len,
				 .vlra = (const uint8_t *)VLRB, .vlra_len = (uint16_t)strlen(VLRB),
				 .vlrb = (const uint8_t *)VLRA, .vlrb_len = (uint16_t)strlen(VLRA),
				 .ue_a = (const uint8_t *)UEA, .ue_a_len = (uint16_t)strlen(UEA),
				 .ue_b = (const uint8_t *)UEB, .ue_b_len = (uint16_t)strlen(UEB),
				 .now = now };
	assert_int_equal(kl_client_hm_open_burst(cli, &o, 1), 1);
	assert_int_equal(o.rc, -EPERM); /* servers swapped: the aad differs */
	o.vlra = (const uint8_t *)VLRA;
	o.vlra_len = (uint16_t)strlen(VLRA);
	o.vlrb = (const uint8_t *)VLRB;
	o.vlrb_len = (uint16_t)strlen(VLRB);
	o.ue_b = (const uint8_t *)UEC;
	o.ue_b_len = (uint16_t)strlen(UEC);
	assert_int_equal(kl_client_hm_open_burst(cli, &o, 1), 1);
	assert_int_equal(o.rc, -EPROTO);
	o.ue_b = (const uint8_t *)UEB;
	o.ue_b_len = (uint16_t)strlen(UEB);
	o.now = s.valid_to;
	assert_int_equal(kl_client_hm_open_burst(cli, &o, 1), 1);
	assert_int_equal(o.rc, -ETIME);
	o.now = s.valid_to - 1;
	assert_int_equal(kl_client_hm_open_burst(cli, &o, 1), 1);
	assert_int_equal(o.rc, 0);
}

/* Errors of PROTOCOL.md sections 6 and 9. */
static void test_errors(void **state)
{
	struct creq q;
	uint8_t d = 0;

	(void)state;
	sign(&q, KL_KIND_HM, UEA, MUK_A, UEB, "vlr-x.example", -1);
	expect_error(wa[0], ta, &q, KL_ERR_UNSPECIFIED, 6); /* no pair key with that server */
	sign(&q, KL_KIND_KSTAR, UEA, MUK_A, NULL, "vlr-x.example", -1);
	expect_error(wa[0], ta, &q, KL_ERR_UNSPECIFIED, 6);
	sign(&q, KL_KIND_HM, UEC, MUK_C, UEB, VLRB, -1);
	expect_error(wa[0], ta, &q, KL_ERR_INVALID_ID, 4); /* no hm service */
	sign(&q, KL_KIND_KSTAR, UEC, MUK_C, NULL, VLRB, -1);
	expect_error(wa[0], ta, &q, KL_ERR_INVALID_ID, 4);
	sign(&q, KL_KIND_HM, UEA, MUK_A, UEB, "vlr-old.example", -1);
	expect_error(wa[0], ta, &q, KL_ERR_UNSPECIFIED, 3); /* the pair key expired */
	sign(&q, KL_KIND_KSTAR, UEA, MUK_A, NULL, "vlr-old.example", -1);
	expect_error(wa[0], ta, &q, KL_ERR_UNSPECIFIED, 3);
	/* IDUEa == IDUEb: malformed, silently dropped */
	sign(&q, KL_KIND_HM, UEA, MUK_A, UEA, VLRB, -1);
	assert_int_equal(serve(wa[0], ta, &q, &d), 0);
	assert_int_equal(d, KL_DROP_MALFORMED);
	/* a kind 2 request without the peer server, or with a TLV kind 2 does not take */
	sign(&q, KL_KIND_HM, UEA, MUK_A, UEB, NULL, -1);
	assert_int_equal(serve(wa[0], ta, &q, &d), 0);
	assert_int_equal(d, KL_DROP_MALFORMED);
	sign(&q, KL_KIND_KSTAR, UEA, MUK_A, UEB, VLRB, -1);
	assert_int_equal(serve(wa[0], ta, &q, &d), 0);
	assert_int_equal(d, KL_DROP_MALFORMED);
	/* the MBMS service is a service too: UEb has hm only */
	{
		struct kl_mikey_req_spec sp;

		sign(&q, KL_KIND_MBMS, UEB, MUK_B, NULL, NULL, -1);
		sp = q.r.spec;
		sp.domain[0] = 0;
		sp.domain[1] = 0xF1;
		sp.domain[2] = 0x10;
		sp.group = 1;
		q.r.spec = sp;
		assert_int_equal(kl_client_sign(cli, &q.r, 1), 1);
		expect_error(wb, tb, &q, KL_ERR_INVALID_ID, 4);
	}
}

/* An answer more than 3x its request is dropped (counted); padding brings it back. Needs short
 * identities: a server with a 64-byte identity and a pair key with server "v". */
static void test_amplification(void **state)
{
	static const char longid[] =
		"keyline-with-a-long-identity-0123456789.vlr.mnc001.mcc001.3gppnet";
	struct kl_engine_config ec = { .idr = (const uint8_t *)longid, .idr_len = 64, .skew_s = 60,
				       .predelivery_s = 60, .replay_entries = 1024 };
	struct kl_worker *w = kl_worker_create(&ec, ta, 1);
	struct creq q;
	struct kl_pkt p;
	uint8_t out[1600];
	struct kl_client_result res;
	int pad;

	(void)state;
	assert_non_null(w);
	assert_int_equal(kl_table_reader_register(ta, 1), 0);
	sign(&q, KL_KIND_HM, UEA, MUK_A, "b", "v", -1);
	p = (struct kl_pkt){ .in = q.buf, .in_len = q.r.len, .out = out, .out_cap = sizeof(out) };
	kl_engine_serve(w, now, &p, 1);
	assert_int_equal(p.out_len, 0);
	assert_int_equal(p.drop, KL_DROP_AMPLIFICATION);
	assert_int_equal(kl_worker_stats(w)->drop[KL_DROP_AMPLIFICATION], 1);
	/* the client's own padding is exactly enough: one byte less is dropped */
	pad = kl_client_hm_pad(&q.r.spec, 64);
	assert_true(pad >= 1);
	assert_int_equal(kl_client_hm_pad(&q.r.spec, 13), -1); /* VLRa's identity: none needed */
	sign(&q, KL_KIND_HM, UEA, MUK_A, "b", "v", pad - 1);
	p = (struct kl_pkt){ .in = q.buf, .in_len = q.r.len, .out = out, .out_cap = sizeof(out) };
	kl_engine_serve(w, now, &p, 1);
	assert_int_equal(p.drop, KL_DROP_AMPLIFICATION);
	sign(&q, KL_KIND_HM, UEA, MUK_A, "b", "v", pad);
	p = (struct kl_pkt){ .in = q.buf, .in_len = q.r.len, .out = out, .out_cap = sizeof(out) };
	kl_engine_serve(w, now, &p, 1);
	assert_true(p.out_len > 0 && p.out_len <= 3 * q.r.len && p.out_len > 3 * (q.r.len - 3));
	assert_int_equal(kl_client_verify(cli, &q.r, out, p.out_len, now, 60, &res), 0);
	assert_false(res.is_error);
	kl_table_quiescent(ta, 1);
	kl_table_reader_unregister(ta, 1);
	kl_worker_destroy(w);
}

/* A burst of 64 kind-2 and kind-3 requests with MBMS ones mixed in: one pass, every answer right. */
static void test_mixed_burst(void **state)
{
	static struct creq q[64];
	static uint8_t out[64][1600];
	struct kl_pkt p[64];
	struct kl_client_result res;
	struct kl_hm_open o[64];
	unsigned no = 0;

	(void)state;
	for (unsigned i = 0; i < 64; i++) {
		if (i % 2)
			sign(&q[i], KL_KIND_HM, UEA, MUK_A, UEB, VLRB, -1);
		else
			sign(&q[i], KL_KIND_KSTAR, UEA, MUK_A, NULL, VLRB, -1);
		p[i] = (struct kl_pkt){ .in = q[i].buf, .in_len = q[i].r.len, .out = out[i],
					.out_cap = sizeof(out[i]) };
	}
	kl_engine_serve(wa[1], now, p, 64);
	kl_table_quiescent(ta, 0);
	for (unsigned i = 0; i < 64; i++) {
		uint8_t want[32];

		assert_true(p[i].out_len > 0);
		assert_int_equal(kl_client_verify(cli, &q[i].r, out[i], p[i].out_len, now, 60, &res), 0);
		assert_false(res.is_error);
		kstar_of(UEA, want);
		assert_memory_equal(res.keys[0].key, want, 32);
		if (i % 2) {
			open1(&o[no], res.keys[0].key, res.token[0], res.token_len[0]);
			assert_int_equal(o[no++].rc, 0);
		}
	}
	assert_int_equal(no, 32);
}

static const char *example_path;

/* The worked example for hm_reference.py: inputs and what the C side produced. Test keys. */
static void hex(FILE *f, const char *name, const uint8_t *b, size_t n, int last)
{
	fprintf(f, "  \"%s\": \"", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
	fprintf(f, "\"%s\n", last ? "" : ",");
}

static void write_example(void)
{
	struct session s;
	FILE *f = fopen(example_path, "w");

	assert_non_null(f);
	session(wa[0], &s);
	fprintf(f, "{\n  \"vlr_a\": \"%s\",\n  \"vlr_b\": \"%s\",\n  \"ue_a\": \"%s\",\n"
		   "  \"ue_b\": \"%s\",\n  \"valid_to\": %llu,\n  \"session_id\": %u,\n",
		VLRA, VLRB, UEA, UEB, (unsigned long long)s.valid_to, s.sid);
	hex(f, "pair_key", PAIR, 32, 0);
	hex(f, "kstar_a", s.kstar_a, 32, 0);
	hex(f, "kstar_b", s.kstar_b, 32, 0);
	hex(f, "ks", s.ks_a, 16, 0);
	hex(f, "token_a", s.tok_a, s.tok_a_len, 0);
	hex(f, "token_b", s.tok_b, s.tok_b_len, 1);
	fprintf(f, "}\n");
	assert_int_equal(fclose(f), 0);
}

static void test_example(void **state)
{
	(void)state;
	if (example_path)
		write_example();
}

static int setup(void **state)
{
	struct kl_table_params tp = { .max_ues = 64, .max_groups = 8, .max_emses = 8,
				      .max_imsis = 8, .max_appids = 8, .max_pairs = 8, .e2m_ring = 4,
				      .max_readers = 2, .socket_id = -1 };
	struct kl_engine_config ec = { .idr = (const uint8_t *)VLRA, .idr_len = 13, .skew_s = 60,
				       .predelivery_s = 60, .replay_entries = 4096 };

	(void)state;
	now = kl_ntp_now();
	for (unsigned i = 0; i < 32; i++) {
		MUK_A[i] = (uint8_t)(0xA0 + i);
		MUK_B[i] = (uint8_t)(0xB0 + i);
		MUK_C[i] = (uint8_t)(0xC0 + i);
		PAIR[i] = (uint8_t)(0x50 ^ (i * 7));
	}
	tp.name = "hm_vlra";
	ta = kl_table_create(&tp);
	tp.name = "hm_vlrb";
	tb = kl_table_create(&tp);
	assert_true(ta && tb);
	/* VLRa: UEa (mbms, hm), UEc (mbms only); pair keys with VLRb, "v", and an expired one */
	assert_int_equal(kl_table_put_ue(ta, (const uint8_t *)UEA, (uint16_t)strlen(UEA), MUK_A, 32,
					 NULL, 0), 0);
	assert_int_equal(kl_table_set_ue_services(ta, (const uint8_t *)UEA, (uint16_t)strlen(UEA),
						  KL_SVC(MBMS) | KL_SVC(HM)), 1);
	assert_int_equal(kl_table_put_ue(ta, (const uint8_t *)UEC, (uint16_t)strlen(UEC), MUK_C, 32,
					 NULL, 0), 0);
	assert_int_equal(kl_table_put_pair(ta, (const uint8_t *)VLRB, 13, PAIR, 32, 0), 0);
	assert_int_equal(kl_table_put_pair(ta, (const uint8_t *)"v", 1, PAIR, 32, 0), 0);
	assert_int_equal(kl_table_put_pair(ta, (const uint8_t *)"vlr-old.example", 15, PAIR, 32,
					   now - SEC(1)), 0);
	/* VLRb: UEb (hm only); the same pair key under VLRa's identity, expiring in a day */
	{
		struct kl_ue_put v = { .id = (const uint8_t *)UEB, .id_len = (uint16_t)strlen(UEB),
				       .muk = MUK_B, .muk_len = 32, .services = KL_SVC(HM) };
		int rc;

		assert_int_equal(kl_table_put_ue_bulk(tb, &v, 1, &rc), 1);
	}
	assert_int_equal(kl_table_put_pair(tb, (const uint8_t *)VLRA, 13, PAIR, 32, now + SEC(86400)),
			 0);
	assert_int_equal(kl_table_reader_register(ta, 0), 0);
	assert_int_equal(kl_table_reader_register(tb, 0), 0);
	ec.backend = KL_CRYPTO_IPSECMB;
	wa[0] = kl_worker_create(&ec, ta, 0);
	ec.backend = KL_CRYPTO_OPENSSL;
	wa[1] = kl_worker_create(&ec, ta, 0);
	ec.idr = (const uint8_t *)VLRB;
	ec.backend = KL_CRYPTO_IPSECMB;
	wb = kl_worker_create(&ec, tb, 0);
	cli = kl_crypto_create(KL_CRYPTO_OPENSSL);
	assert_true(wa[0] && wa[1] && wb && cli);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kl_worker_destroy(wa[0]);
	kl_worker_destroy(wa[1]);
	kl_worker_destroy(wb);
	kl_crypto_destroy(cli);
	kl_table_reader_unregister(ta, 0);
	kl_table_reader_unregister(tb, 0);
	kl_table_free(ta);
	kl_table_free(tb);
	return 0;
}

int main(int argc, char **argv)
{
	char prefix[64];
	char *eal[] = { "test_hm", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_both_backends),
		cmocka_unit_test(test_token_checks),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_amplification),
		cmocka_unit_test(test_mixed_burst),
		cmocka_unit_test(test_example),
	};

	if (argc == 3 && !strcmp(argv[1], "--example"))
		example_path = argv[2];
	else if (argc != 1) {
		fprintf(stderr, "usage: test_hm [--example FILE]\n");
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "kl_hm_test_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	kl_eal_rundir_cleanup_at_exit();
	return cmocka_run_group_tests_name("hm", tests, setup, teardown);
}
