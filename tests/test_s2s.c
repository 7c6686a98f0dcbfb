/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The schemes where two servers exchange values (PROTOCOL.md sections 9 and 10) in memory: two
 * servers, A ("mme-a.example", two workers, one per crypto backend, sharing one server-to-server
 * state) and B ("mme-b.example", one worker), each with its own key table holding the same pair
 * key under the other's identity, each the other's configured peer. Server-to-server messages go
 * from one engine's outbox into the other engine by hand, so a test can lose, replay or misroute
 * them. Kind 4 (DH public value) local and remote, kind 5 (ProSe) local and remote, kinds 6 and 7
 * from peers; retransmission and giving up; rendezvous expiry, a full rendezvous, and a UE that
 * tries to read another pair's value.
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
#include "kl_s2s.h"

#define SEC(s) ((uint64_t)(s) << 32)
#define MS(ms) (((uint64_t)(ms) << 32) / 1000)

static const char *SA = "mme-a.example", *SB = "mme-b.example";
static const char *U1 = "ue-1@a.example", *U2 = "ue-2@a.example", *U3 = "ue-3@b.example",
		  *U4 = "ue-4@b.example", *UN = "ue-nodh@a.example";
static uint8_t K1[32], K2[32], K3[32], K4[32], KN[32], PAIR[32];

static struct kl_table *ta, *tb;
static struct kl_s2s *sa, *sb;
static struct kl_replay *ra;
static struct kl_peers pa, pb; /* A's peers (B), B's peers (A) */
static struct kl_worker *wa[2], *wb;
static struct kl_crypto *cli;
static uint64_t now;
static uint32_t seq;

struct creq {
	struct kl_client_req r;
	uint8_t rand[16];
	uint8_t contrib[16];
	uint8_t buf[600];
};

static void sign(struct creq *q, uint8_t kind, const char *id, const uint8_t *key,
		 const char *peer_ue, const char *peer_server, const uint8_t *contrib, uint8_t role)
{
	memset(q, 0, sizeof(*q));
	seq++;
	memset(q->rand, 0x5A, 16);
	memcpy(q->rand, &seq, sizeof(seq));
	if (contrib)
		memcpy(q->contrib, contrib, 16);
	q->r.spec = (struct kl_mikey_req_spec){
		.rand = q->rand, .id = (const uint8_t *)id, .id_len = (uint16_t)strlen(id),
		.ts = now, .csb_id = seq, .prf = (uint8_t)(seq & 1), .kind = kind,
		.peer_ue = (const uint8_t *)peer_ue,
		.peer_ue_len = peer_ue ? (uint16_t)strlen(peer_ue) : 0,
		.peer_server = (const uint8_t *)peer_server,
		.peer_server_len = peer_server ? (uint16_t)strlen(peer_server) : 0,
		.contrib = contrib ? q->contrib : NULL, .role = role,
	};
	q->r.psk = key;
	q->r.psk_len = 32;
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(cli, &q->r, 1), 1);
}

static uint8_t ans[1600];

static uint16_t serve_raw(struct kl_worker *w, struct kl_table *t, const uint8_t *in, uint16_t len,
			  uint8_t peer, uint8_t *drop)
{
	struct kl_pkt p = { .in = in, .in_len = len, .out = ans, .out_cap = sizeof(ans),
			    .peer = peer };

	kl_engine_serve(w, now, &p, 1);
	kl_table_quiescent(t, 0);
	if (drop)
		*drop = p.drop;
	return p.out_len;
}

/* An answer as the UE checks it: MAC with its auth_key, RAND and CSB echoed; KEMAC decrypted. */
struct answer {
	struct kl_mikey_resp r;
	uint8_t plain[64];
	struct kl_mikey_key key;
	int nkeys;
};

static void check(const struct creq *q, uint16_t n, struct answer *a)
{
	struct kl_hmac_key k;
	struct kl_hmac_op op;
	uint8_t mac[20];

	assert_true(n > 0 && n <= 3 * q->r.len);
	memset(a, 0, sizeof(*a));
	assert_int_equal(kl_mikey_parse_resp(ans, n, &a->r), KL_DROP_NONE);
	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA1, q->r.auth_key, 20, &k), 0);
	op = (struct kl_hmac_op){ .key = &k, .msg = ans, .len = a->r.mac_off, .mac = mac };
	assert_int_equal(kl_hmac_burst(cli, &op, 1), 1);
	assert_memory_equal(mac, a->r.mac, 20);
	assert_memory_equal(a->r.rand, q->rand, 16);
	assert_int_equal(a->r.csb_id, q->r.spec.csb_id);
	if (a->r.encr) {
		struct kl_aescm_op c = { .key = q->r.encr_key, .salt = q->r.salt_key,
					 .in = a->r.encr, .out = a->plain, .ntp_ts = a->r.ts,
					 .csb_id = a->r.csb_id, .len = a->r.encr_len };

		assert_true(a->r.encr_len <= sizeof(a->plain));
		assert_int_equal(kl_aescm_burst(cli, &c, 1), 1);
		a->nkeys = kl_mikey_parse_keydata(a->plain, a->r.encr_len, &a->key, 1);
		assert_int_equal(a->nkeys, 1);
	}
}

static void expect_error(const struct creq *q, uint16_t n, uint8_t err_no, uint16_t detail)
{
	struct answer a;

	check(q, n, &a);
	assert_int_equal(a.r.data_type, KL_DT_ERROR);
	assert_int_equal(a.r.err_no, err_no);
	assert_int_equal(a.r.detail, detail);
	if (detail == 5) { /* not ready: with the retry-after */
		assert_true(a.r.has_retry_after);
		assert_int_equal(a.r.retry_after_ms, 200);
	} else {
		assert_false(a.r.has_retry_after);
	}
}

/* ---- the UEs' derivations, from their own keys ------------------------------------------------ */

static void kdf(const uint8_t *key, uint16_t fc, const struct kl_kdf_param *p, unsigned np,
		uint8_t out[32])
{
	struct kl_hmac_key k;

	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, key, 32, &k), 0);
	assert_int_equal(kl_kdf(cli, &k, fc, p, np, out), 0);
}

static void dh_scalar(const uint8_t *key, uint8_t s[32])
{
	struct kl_kdf_param p = { .data = (const uint8_t *)"dh-x25519", .len = 9 };

	kdf(key, 0xFF07, &p, 1, s);
}

static void dh_pub(const uint8_t *key, uint8_t pub[32])
{
	uint8_t s[32];

	dh_scalar(key, s);
	assert_int_equal(kl_x25519_public(s, pub), 0);
}

/* Ks = KDF(X25519(s_own, P_peer), FF08, ID_lo, ID_hi) */
static void dh_ks(const uint8_t *own_key, const uint8_t *peer_pub, const char *ida, const char *idb,
		  uint8_t ks[32])
{
	uint8_t s[32], z[32];
	const char *lo = strcmp(ida, idb) < 0 ? ida : idb, *hi = lo == ida ? idb : ida;
	struct kl_kdf_param p[2] = { { .data = (const uint8_t *)lo, .len = (uint16_t)strlen(lo) },
				     { .data = (const uint8_t *)hi, .len = (uint16_t)strlen(hi) } };

	dh_scalar(own_key, s);
	assert_int_equal(kl_x25519_shared(s, peer_pub, z), 0);
	kdf(z, 0xFF08, p, 2, ks);
}

static void prose_p(const uint8_t *kasme, const uint8_t p_in[16], uint8_t out[32])
{
	struct kl_kdf_param p = { .data = p_in, .len = 16 };

	kdf(kasme, 0xFF04, &p, 1, out);
}

/* ---- moving server-to-server messages --------------------------------------------------------- */

struct msg {
	uint8_t buf[KL_MIKEY_REQ_MAX];
	uint16_t len;
	uint16_t peer;
};

/* Take a worker's outbox (a copy: serving again reuses it). */
static unsigned outbox(struct kl_worker *w, struct msg *m, unsigned max)
{
	const struct kl_s2s_msg *o;
	unsigned n = kl_engine_outbox(w, &o);

	assert_true(n <= max);
	for (unsigned i = 0; i < n; i++) {
		memcpy(m[i].buf, o[i].buf, o[i].len);
		m[i].len = o[i].len;
		m[i].peer = o[i].peer;
	}
	return n;
}

static struct kl_table *table_of(struct kl_worker *w)
{
	return w == wb ? tb : ta;
}

/* Deliver every outbox message of from to to (peer index 0 on both sides: each server has one
 * peer, the other), and the answers back. @return messages delivered. */
static unsigned pump(struct kl_worker *from, struct kl_worker *to)
{
	struct msg m[KL_ENGINE_OUTBOX];
	unsigned n = outbox(from, m, KL_ENGINE_OUTBOX);

	for (unsigned i = 0; i < n; i++) {
		uint8_t back[1600];
		uint16_t bl = serve_raw(to, table_of(to), m[i].buf, m[i].len, 1, NULL);

		assert_int_equal(m[i].peer, 0);
		assert_true(bl > 0);
		memcpy(back, ans, bl);
		assert_int_equal(serve_raw(from, table_of(from), back, bl, 1, NULL), 0);
	}
	return n;
}

/* ---- kind 4 ----------------------------------------------------------------------------------- */

static void dh_local(void **state)
{
	struct creq q;
	struct answer a;
	uint8_t p1[32], p2[32], ks1[32], ks2[32];

	(void)state;
	for (unsigned x = 0; x < 2; x++) {
		/* UE2 asks for UE1's value, UE1 for UE2's: both on A */
		sign(&q, KL_KIND_DH, U2, K2, U1, SA, NULL, 0);
		check(&q, serve_raw(wa[x], ta, q.buf, q.r.len, 0, NULL), &a);
		assert_int_equal(a.r.data_type, KL_DT_PSK_RESP);
		assert_int_equal(a.r.kind, KL_KIND_DH);
		assert_null(a.r.encr);
		assert_true(a.r.tlv_seen & KL_TLV_BIT(X25519));
		dh_pub(K1, p1);
		assert_memory_equal(a.r.tlv[KL_TLVI_X25519], p1, 32);
		sign(&q, KL_KIND_DH, U1, K1, U2, SA, NULL, 0);
		check(&q, serve_raw(wa[x], ta, q.buf, q.r.len, 0, NULL), &a);
		memcpy(p2, a.r.tlv[KL_TLVI_X25519], 32);
		dh_ks(K1, p2, U1, U2, ks1);
		dh_ks(K2, p1, U2, U1, ks2);
		assert_memory_equal(ks1, ks2, 32);
		/* no dh service: the requester (7/4), the UE asked for (7/4); unknown UE (12/2),
		 * unknown server (12/6) */
		sign(&q, KL_KIND_DH, UN, KN, U1, SA, NULL, 0);
		expect_error(&q, serve_raw(wa[x], ta, q.buf, q.r.len, 0, NULL), 7, 4);
		sign(&q, KL_KIND_DH, U1, K1, UN, SA, NULL, 0);
		expect_error(&q, serve_raw(wa[x], ta, q.buf, q.r.len, 0, NULL), 7, 4);
		sign(&q, KL_KIND_DH, U1, K1, "nobody@a.example", SA, NULL, 0);
		expect_error(&q, serve_raw(wa[x], ta, q.buf, q.r.len, 0, NULL), 12, 2);
		sign(&q, KL_KIND_DH, U1, K1, U3, "mme-x.example", NULL, 0);
		expect_error(&q, serve_raw(wa[x], ta, q.buf, q.r.len, 0, NULL), 12, 6);
	}
}

static void dh_remote(void **state)
{
	struct creq q;
	struct answer a;
	uint8_t p1[32], p3[32], ks1[32], ks3[32];
	uint64_t sent = kl_peer_counter(&pb, 0, KL_PEER_CNT_SENT);
	uint64_t answered = kl_peer_counter(&pb, 0, KL_PEER_CNT_ANSWERED);

	(void)state;
	/* UE3 (on B) asks for UE1's value (on A): not ready, B asks A */
	sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	/* a second UE request meanwhile does not ask again */
	sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_SENT), sent + 1);
	sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
	serve_raw(wb, tb, q.buf, q.r.len, 0, NULL);
	kl_engine_tick(wb, now); /* nothing due: the outbox is empty after it */
	{
		const struct kl_s2s_msg *o;

		assert_int_equal(kl_engine_outbox(wb, &o), 0);
	}
	/* the first UE request's query, once more: deliver it this time */
	sign(&q, KL_KIND_DH, U4, K4, U1, SA, NULL, 0); /* another UE of B, same UE asked: cached */
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	now += MS(150);
	kl_engine_tick(wb, now); /* the first try was lost (never delivered): retried */
	assert_int_equal(pump(wb, wa[0]), 1);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_ANSWERED), answered + 1);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_RETRIED), 1);
	sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
	check(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), &a);
	assert_int_equal(a.r.data_type, KL_DT_PSK_RESP);
	memcpy(p1, a.r.tlv[KL_TLVI_X25519], 32);
	/* and UE1 (on A) asks for UE3's value (on B), the answer reaching A's other worker */
	sign(&q, KL_KIND_DH, U1, K1, U3, SB, NULL, 0);
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	{
		struct msg m[4];
		uint8_t back[1600];
		uint16_t bl;

		assert_int_equal(outbox(wa[0], m, 4), 1);
		bl = serve_raw(wb, tb, m[0].buf, m[0].len, 1, NULL);
		memcpy(back, ans, bl);
		assert_int_equal(serve_raw(wa[1], ta, back, bl, 1, NULL), 0);
	}
	sign(&q, KL_KIND_DH, U1, K1, U3, SB, NULL, 0);
	check(&q, serve_raw(wa[1], ta, q.buf, q.r.len, 0, NULL), &a);
	memcpy(p3, a.r.tlv[KL_TLVI_X25519], 32);
	dh_ks(K1, p3, U1, U3, ks1);
	dh_ks(K3, p1, U3, U1, ks3);
	assert_memory_equal(ks1, ks3, 32);
	/* key recovery (keyline-kdf dh-ks): from one UE's key and the other's public value as the
	 * servers handed them out, either way round, it is both UEs' Ks */
	{
		struct kl_hmac_key k;
		uint8_t rec[32];

		assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, K3, 32, &k), 0);
		assert_int_equal(kl_dh_ks(NULL, &k, p1, (const uint8_t *)U3, strlen(U3),
					  (const uint8_t *)U1, strlen(U1), rec), 0);
		assert_memory_equal(rec, ks1, 32);
		assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, K1, 32, &k), 0);
		assert_int_equal(kl_dh_ks(cli, &k, p3, (const uint8_t *)U1, strlen(U1),
					  (const uint8_t *)U3, strlen(U3), rec), 0);
		assert_memory_equal(rec, ks3, 32);
	}
	/* the peer's negative answers reach the UE: no such UE (12/2), no dh service (7/4) */
	sign(&q, KL_KIND_DH, U3, K3, "nobody@a.example", SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(pump(wb, wa[0]), 1);
	sign(&q, KL_KIND_DH, U3, K3, "nobody@a.example", SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 2);
	sign(&q, KL_KIND_DH, U3, K3, UN, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(pump(wb, wa[0]), 1);
	sign(&q, KL_KIND_DH, U3, K3, UN, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 7, 4);
}

/* A peer that never answers: 3 tries (0, +100 ms, +300 ms), given up at +700 ms, counted; the UE
 * keeps getting 12/5; after the wait entry expires a UE request asks again. */
static void dh_peer_gone(void **state)
{
	struct creq q;
	struct msg m[4];
	const struct kl_s2s_msg *o;
	uint64_t failed = kl_peer_counter(&pb, 0, KL_PEER_CNT_FAILED);
	uint64_t retried = kl_peer_counter(&pb, 0, KL_PEER_CNT_RETRIED);
	uint64_t t0;

	(void)state;
	now += SEC(10);
	t0 = now;
	sign(&q, KL_KIND_DH, U4, K4, U2, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(outbox(wb, m, 4), 1); /* lost */
	now = t0 + MS(50);
	kl_engine_tick(wb, now);
	assert_int_equal(kl_engine_outbox(wb, &o), 0);
	now = t0 + MS(120);
	kl_engine_tick(wb, now);
	assert_int_equal(kl_engine_outbox(wb, &o), 1);
	now = t0 + MS(320);
	kl_engine_tick(wb, now);
	assert_int_equal(kl_engine_outbox(wb, &o), 1);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_RETRIED), retried + 2);
	now = t0 + MS(720);
	kl_engine_tick(wb, now);
	assert_int_equal(kl_engine_outbox(wb, &o), 0);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_FAILED), failed + 1);
	sign(&q, KL_KIND_DH, U4, K4, U2, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(outbox(wb, m, 4), 0); /* still waiting out the failed question */
	now = t0 + SEC(3);
	sign(&q, KL_KIND_DH, U4, K4, U2, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(pump(wb, wa[0]), 1); /* asked again, and the peer is back */
	sign(&q, KL_KIND_DH, U4, K4, U2, SA, NULL, 0);
	{
		struct answer a;
		uint8_t p2[32];

		check(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), &a);
		dh_pub(K2, p2);
		assert_memory_equal(a.r.tlv[KL_TLVI_X25519], p2, 32);
	}
}

/* ---- kind 5 ----------------------------------------------------------------------------------- */

static void prose_kd_of(const uint8_t p2[32], const uint8_t p4[32], uint8_t kd[32])
{
	struct kl_kdf_param p = { .data = p4, .len = 32 };

	kdf(p2, 0xFF05, &p, 1, kd);
}

static void take_key(const struct creq *q, uint16_t n, uint8_t out[32], uint64_t *valid_to)
{
	struct answer a;

	check(q, n, &a);
	assert_int_equal(a.r.data_type, KL_DT_PSK_RESP);
	assert_int_equal(a.r.kind, KL_KIND_PROSE);
	assert_int_equal(a.key.key_len, 32);
	assert_int_equal(a.key.key_id, 0); /* SPI 0 */
	memcpy(out, a.key.key, 32);
	if (valid_to)
		*valid_to = kl_be64(a.r.tlv3[0] + 12);
}

static void prose_local(void **state)
{
	struct creq q;
	uint8_t p1[16], p3[16], p1b[16], got2[32], got4[32], want2[32], want4[32], kd1[32], kd2[32];
	uint64_t vt;

	(void)state;
	memset(p1, 0x11, 16);
	memset(p3, 0x33, 16);
	memset(p1b, 0x12, 16);
	/* UE1 initiates: not ready */
	sign(&q, KL_KIND_PROSE, U1, K1, U2, SA, p1, 1);
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	/* UE2 responds, on the other worker: gets p2 */
	sign(&q, KL_KIND_PROSE, U2, K2, U1, SA, p3, 2);
	take_key(&q, serve_raw(wa[1], ta, q.buf, q.r.len, 0, NULL), got2, &vt);
	prose_p(K1, p1, want2);
	assert_memory_equal(got2, want2, 32);
	assert_true(vt > now && vt <= now + SEC(30));
	/* UE1 retries with the same p1: gets p4 */
	sign(&q, KL_KIND_PROSE, U1, K1, U2, SA, p1, 1);
	take_key(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), got4, NULL);
	prose_p(K2, p3, want4);
	assert_memory_equal(got4, want4, 32);
	prose_kd_of(got2, want4, kd1);
	prose_kd_of(want2, got4, kd2);
	assert_memory_equal(kd1, kd2, 32);
	/* UE1 starts over with another p1: UE2's old p4 is dropped, UE1 waits; UE2's retry
	 * (same p3) gets the new p2, then UE1 gets p4 again */
	sign(&q, KL_KIND_PROSE, U1, K1, U2, SA, p1b, 1);
	expect_error(&q, serve_raw(wa[1], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	sign(&q, KL_KIND_PROSE, U2, K2, U1, SA, p3, 2);
	take_key(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), got2, NULL);
	prose_p(K1, p1b, want2);
	assert_memory_equal(got2, want2, 32);
	sign(&q, KL_KIND_PROSE, U1, K1, U2, SA, p1b, 1);
	take_key(&q, serve_raw(wa[1], ta, q.buf, q.r.len, 0, NULL), got4, NULL);
	assert_memory_equal(got4, want4, 32);
	/* another UE cannot read the pair's values: its own pair (UE1's identity is not its) */
	sign(&q, KL_KIND_PROSE, UN, KN, U2, SA, p1, 1);
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 7, 4); /* no prose service */
	sign(&q, KL_KIND_PROSE, U1, K2, U2, SA, p1b, 1); /* UE1's identity, UE2's key */
	{
		uint8_t d;

		assert_int_equal(serve_raw(wa[0], ta, q.buf, q.r.len, 0, &d), 0);
		assert_int_equal(d, KL_DROP_BAD_MAC);
	}
	/* expiry: a responder after the lifetime gets 12/5, not the stale value */
	sign(&q, KL_KIND_PROSE, U1, K1, U3, SA, p1, 1); /* UE3 is B's: a pair unknown so far */
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	now += SEC(31);
	sign(&q, KL_KIND_PROSE, U2, K2, U1, SA, p3, 2);
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 12, 5);
}

static void prose_remote(void **state)
{
	struct creq q;
	uint8_t p1[16], p3[16], got2[32], got4[32], want2[32], want4[32], kd1[32], kd3[32];
	uint64_t recv = kl_peer_counter(&pb, 0, KL_PEER_CNT_RECEIVED);

	(void)state;
	now += SEC(60);
	memset(p1, 0x71, 16);
	memset(p3, 0x73, 16);
	/* UE1 (on A) initiates with UE3 (on B): not ready; A pushes p2 to B */
	sign(&q, KL_KIND_PROSE, U1, K1, U3, SB, p1, 1);
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(pump(wa[0], wb), 1);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_RECEIVED), recv + 1);
	assert_int_equal(kl_peer_counter(&pa, 0, KL_PEER_CNT_ANSWERED) > 0, 1);
	/* a retry of UE1 with the same p1 does not push again */
	sign(&q, KL_KIND_PROSE, U1, K1, U3, SB, p1, 1);
	expect_error(&q, serve_raw(wa[1], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	{
		const struct kl_s2s_msg *o;

		assert_int_equal(kl_engine_outbox(wa[1], &o), 0);
	}
	/* UE3 responds at B: gets p2 at once; B pushes p4 to A */
	sign(&q, KL_KIND_PROSE, U3, K3, U1, SA, p3, 2);
	take_key(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), got2, NULL);
	prose_p(K1, p1, want2);
	assert_memory_equal(got2, want2, 32);
	assert_int_equal(pump(wb, wa[1]), 1);
	sign(&q, KL_KIND_PROSE, U1, K1, U3, SB, p1, 1);
	take_key(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), got4, NULL);
	prose_p(K3, p3, want4);
	assert_memory_equal(got4, want4, 32);
	prose_kd_of(want2, got4, kd1);
	prose_kd_of(got2, want4, kd3);
	assert_memory_equal(kd1, kd3, 32);
	/* key recovery (keyline-kdf prose-kd): from p2 and p4 as the servers exchanged them */
	{
		struct kl_hmac_key k;
		struct kl_kdf_param p = { .data = got4, .len = 32 };
		uint8_t rec[32];

		assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, got2, 32, &k), 0);
		assert_int_equal(kl_derive_hk(NULL, KL_KDF_PROSE_KD, &k, &p, 1, rec), 0);
		assert_memory_equal(rec, kd1, 32);
	}
	/* a push for a UE A does not serve: answered 12/2, counted failed at B */
	{
		uint64_t f = kl_peer_counter(&pb, 0, KL_PEER_CNT_FAILED);

		sign(&q, KL_KIND_PROSE, U3, K3, "ghost@a.example", SA, p3, 2);
		expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
		assert_int_equal(pump(wb, wa[0]), 1);
		assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_FAILED), f + 1);
	}
}

/* A push the peer never answers is given up after 3 tries; the UE's next retry with the same p
 * pushes it again (the peer may be back), and the pair completes. */
static void prose_push_lost(void **state)
{
	struct creq q;
	struct msg m[4];
	const struct kl_s2s_msg *o;
	uint8_t p2u[16], p4u[16], got[32], want[32];
	uint64_t t0, failed = kl_peer_counter(&pa, 0, KL_PEER_CNT_FAILED);

	(void)state;
	now += SEC(60);
	t0 = now;
	memset(p2u, 0x42, 16);
	memset(p4u, 0x44, 16);
	sign(&q, KL_KIND_PROSE, U2, K2, U4, SB, p2u, 1);
	expect_error(&q, serve_raw(wa[0], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(outbox(wa[0], m, 4), 1); /* lost */
	for (unsigned ms = 120; ms <= 320; ms += 200) {
		now = t0 + MS(ms);
		kl_engine_tick(wa[0], now);
		assert_int_equal(kl_engine_outbox(wa[0], &o), 1); /* lost too */
	}
	now = t0 + MS(720);
	kl_engine_tick(wa[0], now);
	assert_int_equal(kl_engine_outbox(wa[0], &o), 0);
	assert_int_equal(kl_peer_counter(&pa, 0, KL_PEER_CNT_FAILED), failed + 1);
	/* the UE retries with the same p: pushed again, and this time it arrives */
	sign(&q, KL_KIND_PROSE, U2, K2, U4, SB, p2u, 1);
	expect_error(&q, serve_raw(wa[1], ta, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(pump(wa[1], wb), 1);
	sign(&q, KL_KIND_PROSE, U4, K4, U2, SA, p4u, 2);
	take_key(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), got, NULL);
	prose_p(K2, p2u, want);
	assert_memory_equal(got, want, 32);
}

/* Kinds 6 and 7 only from the peer's address and port, once each. */
static void from_peers_only(void **state)
{
	struct creq q;
	struct msg m[4];
	uint8_t d, p1[16];
	uint64_t refused = kl_peer_counter(&pa, 0, KL_PEER_CNT_REFUSED);
	uint64_t unconf = kl_peer_counter(&pa, KL_PEER_UNCONFIGURED, KL_PEER_CNT_REFUSED);

	(void)state;
	now += SEC(60);
	memset(p1, 0x21, 16);
	sign(&q, KL_KIND_PROSE, U3, K3, U2, SA, p1, 1);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(outbox(wb, m, 4), 1);
	/* B's push from another source than B's configured address: refused, counted */
	assert_int_equal(serve_raw(wa[0], ta, m[0].buf, m[0].len, 0, &d), 0);
	assert_int_equal(d, KL_DROP_NOT_PEER);
	assert_int_equal(kl_peer_counter(&pa, 0, KL_PEER_CNT_REFUSED), refused + 1);
	/* from the right source: answered; the same datagram again: a replay */
	assert_true(serve_raw(wa[0], ta, m[0].buf, m[0].len, 1, &d) > 0);
	assert_int_equal(serve_raw(wa[1], ta, m[0].buf, m[0].len, 1, &d), 0);
	assert_int_equal(d, KL_DROP_REPLAY);
	/* a UE's request that claims to come from a peer: a UE is no peer */
	sign(&q, KL_KIND_DH, U1, K1, U2, SA, NULL, 0);
	assert_true(serve_raw(wa[0], ta, q.buf, q.r.len, 1, &d) > 0); /* kinds 4/5: any source */
	/* a kind 6 signed by a server that is not configured (its pair key exists) */
	{
		struct kl_mikey_req_spec sp = { .rand = q.rand, .id = (const uint8_t *)"mme-x.example",
						.id_len = 13, .ts = now, .csb_id = 7, .prf = 1,
						.kind = KL_KIND_PEERPV, .peer_ue = (const uint8_t *)U1,
						.peer_ue_len = (uint16_t)strlen(U1) };
		uint8_t buf[600];
		uint16_t mo;
		int len = kl_mikey_build_req(buf, sizeof(buf), &sp, &mo);

		assert_true(len > 0);
		assert_int_equal(serve_raw(wa[0], ta, buf, (uint16_t)len, 1, &d), 0);
		assert_int_equal(d, KL_DROP_NOT_PEER);
		assert_int_equal(kl_peer_counter(&pa, KL_PEER_UNCONFIGURED, KL_PEER_CNT_REFUSED),
				 unconf + 1);
	}
	/* an answer from a peer to a request not in flight: counted, not answered */
	{
		uint64_t stale = kl_worker_stats(wa[0])->counter[KL_CNT_S2S_STALE];
		uint16_t bl = serve_raw(wb, tb, m[0].buf, m[0].len, 1, &d); /* B answers itself: replay */

		assert_int_equal(bl, 0);
		sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
		bl = serve_raw(wb, tb, q.buf, q.r.len, 0, NULL); /* an answer datagram to replay */
		assert_true(bl > 0);
		memcpy(m[1].buf, ans, bl);
		assert_int_equal(serve_raw(wa[0], ta, m[1].buf, bl, 1, &d), 0);
		assert_int_equal(kl_worker_stats(wa[0])->counter[KL_CNT_S2S_STALE], stale + 1);
	}
}

/* A full rendezvous refuses new pairs (counted) and keeps serving those it holds. */
static void rendezvous_full(void **state)
{
	struct kl_s2s *s = kl_s2s_create(64, 64, 16, 30, 300);
	struct kl_s2s_stats st;
	uint8_t p[16] = { 1 }, v[32] = { 2 }, other[32];
	char a[32], b[32];
	unsigned full = 0, ok = 0;
	uint64_t exp;
	int push;

	(void)state;
	assert_non_null(s);
	for (unsigned i = 0; i < 200; i++) {
		enum kl_s2s_rv rv;

		snprintf(a, sizeof(a), "ue-%u-a", i);
		snprintf(b, sizeof(b), "ue-%u-b", i);
		rv = kl_s2s_rv_local(s, now, (uint8_t *)a, (uint16_t)strlen(a), (uint8_t *)b,
				     (uint16_t)strlen(b), 0, p, v, other, &exp, &push);
		if (rv == KL_S2S_RV_FULL) {
			full++;
			continue;
		}
		assert_int_equal(rv, KL_S2S_RV_WAIT);
		assert_true(push);
		ok++;
		/* the responder of a held pair still gets the initiator's value */
		rv = kl_s2s_rv_local(s, now, (uint8_t *)a, (uint16_t)strlen(a), (uint8_t *)b,
				     (uint16_t)strlen(b), 1, p, v, other, &exp, &push);
		assert_int_equal(rv, KL_S2S_RV_READY);
		assert_memory_equal(other, v, 32);
	}
	assert_true(full > 0 && ok <= 64 && ok + full == 200);
	kl_s2s_stats(s, &st);
	assert_int_equal(st.rendezvous_full, full);
	assert_int_equal(st.rendezvous_used, ok);
	assert_int_equal(st.rendezvous_cap, 64);
	/* after the lifetime, room again */
	snprintf(a, sizeof(a), "late-a");
	assert_int_equal(kl_s2s_rv_local(s, now + SEC(31), (uint8_t *)a, 6, (uint8_t *)"late-b", 6, 0,
					 p, v, other, &exp, &push),
			 KL_S2S_RV_WAIT);
	kl_s2s_destroy(s);
	/* with two choices per pair, a table half full refuses no pair (with one bucket per pair,
	 * about 1 in 1,600 pairs found its bucket full at 15% load) */
	s = kl_s2s_create(8192, 64, 16, 30, 300);
	assert_non_null(s);
	for (unsigned i = 0; i < 4096; i++) {
		snprintf(a, sizeof(a), "ue-%u-a", i);
		assert_int_equal(kl_s2s_rv_local(s, now, (uint8_t *)a, (uint16_t)strlen(a),
						 (uint8_t *)"b", 1, 0, p, v, other, &exp, &push),
				 KL_S2S_RV_WAIT);
	}
	kl_s2s_stats(s, &st);
	assert_int_equal(st.rendezvous_full, 0);
	assert_int_equal(st.rendezvous_used, 4096);
	kl_s2s_destroy(s);
}

/* One worker may have every request of the pending table in flight: 1,100 ProSe pairs of UE1
 * with UEs of B, each a kind 7 push, none answered yet, all sent and in flight. (A worker kept
 * 1,024 at most and refused the rest silently, without a counter; the push of such a pair was
 * never sent, its UE's retries with the same p1 pushing nothing.) */
static void pushes_in_flight(void **state)
{
	struct kl_engine_config ec = { .idr = (const uint8_t *)SA, .idr_len = 13, .skew_s = 60,
				       .predelivery_s = 60, .replay_entries = 4096, .peers = &pa,
				       .backend = KL_CRYPTO_IPSECMB };
	uint64_t sent = kl_peer_counter(&pa, 0, KL_PEER_CNT_SENT);
	struct kl_s2s_stats st;
	struct kl_worker *w;
	uint8_t p1[16];
	struct creq q;
	char ue[32];

	(void)state;
	ec.s2s = kl_s2s_create(4096, 1024, 4096, 30, 300);
	assert_non_null(ec.s2s);
	w = kl_worker_create(&ec, ta, 0);
	assert_non_null(w);
	memset(p1, 0x5C, sizeof(p1));
	for (unsigned i = 0; i < 1100; i++) {
		snprintf(ue, sizeof(ue), "ue-%u@b.example", i);
		sign(&q, KL_KIND_PROSE, U1, K1, ue, SB, p1, 1);
		expect_error(&q, serve_raw(w, ta, q.buf, q.r.len, 0, NULL), 12, 5);
	}
	kl_s2s_stats(ec.s2s, &st);
	assert_int_equal(st.pending_full, 0);
	assert_int_equal(st.pending_used, 1100);
	assert_int_equal(kl_peer_counter(&pa, 0, KL_PEER_CNT_SENT), sent + 1100);
	kl_worker_destroy(w);
	kl_s2s_destroy(ec.s2s);
}

/* An answer that comes back after the next try went out is still the answer: B asks A, no
 * answer within 100 ms, B tries again; then A's answer to the first try arrives. (B took only
 * the answer to its newest try, so a peer slower than the back-off had every answer refused and
 * the request counted failed although the peer had answered each try.) */
static void late_answer(void **state)
{
	uint64_t answered, failed;
	struct msg m[2][4];
	uint8_t back[2][1600], p1[32];
	uint16_t bl[2];
	const struct kl_s2s_msg *o;
	struct answer a;
	struct creq q;
	uint64_t t0;

	(void)state;
	for (unsigned i = 0; i < 4; i++) { /* B's requests of the tests before: given up */
		now += SEC(1);
		kl_engine_tick(wb, now);
	}
	now += SEC(400); /* the public values B has from A are gone */
	answered = kl_peer_counter(&pb, 0, KL_PEER_CNT_ANSWERED);
	failed = kl_peer_counter(&pb, 0, KL_PEER_CNT_FAILED);
	t0 = now;
	sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
	expect_error(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), 12, 5);
	assert_int_equal(outbox(wb, m[0], 4), 1);
	now = t0 + MS(120);
	kl_engine_tick(wb, now);
	assert_int_equal(outbox(wb, m[1], 4), 1);
	for (unsigned i = 0; i < 2; i++) { /* A answers both tries */
		bl[i] = serve_raw(wa[0], ta, m[i][0].buf, m[i][0].len, 1, NULL);
		assert_true(bl[i] > 0);
		memcpy(back[i], ans, bl[i]);
	}
	assert_int_equal(serve_raw(wb, tb, back[0], bl[0], 1, NULL), 0); /* the first try's */
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_ANSWERED), answered + 1);
	assert_int_equal(serve_raw(wb, tb, back[1], bl[1], 1, NULL), 0); /* no longer in flight */
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_ANSWERED), answered + 1);
	now = t0 + SEC(1);
	kl_engine_tick(wb, now);
	assert_int_equal(kl_engine_outbox(wb, &o), 0);
	assert_int_equal(kl_peer_counter(&pb, 0, KL_PEER_CNT_FAILED), failed);
	sign(&q, KL_KIND_DH, U3, K3, U1, SA, NULL, 0);
	check(&q, serve_raw(wb, tb, q.buf, q.r.len, 0, NULL), &a);
	assert_int_equal(a.r.data_type, KL_DT_PSK_RESP);
	dh_pub(K1, p1);
	assert_memory_equal(a.r.tlv[KL_TLVI_X25519], p1, 32);
}

static void put_ue(struct kl_table *t, const char *id, const uint8_t *key, uint8_t services)
{
	struct kl_ue_put v = { .id = (const uint8_t *)id, .id_len = (uint16_t)strlen(id), .muk = key,
			       .muk_len = 32, .services = services };
	int rc;

	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_int_equal(rc, 0);
}

static void peer(struct kl_peers *ps, const char *id)
{
	memset(ps, 0, sizeof(*ps));
	ps->n = 1;
	ps->p[0].id_len = (uint16_t)strlen(id);
	memcpy(ps->p[0].id, id, ps->p[0].id_len);
	ps->p[0].family = 4;
	ps->p[0].ip[0] = 127;
	ps->p[0].ip[3] = 1;
	ps->p[0].port = 2269;
}

static int setup(void **state)
{
	struct kl_table_params tp = { .max_ues = 64, .max_groups = 8, .max_emses = 8,
				      .max_imsis = 8, .max_appids = 8, .max_pairs = 8, .e2m_ring = 4,
				      .max_readers = 2, .socket_id = -1 };
	struct kl_engine_config ec = { .idr = (const uint8_t *)SA, .idr_len = 13, .skew_s = 60,
				       .predelivery_s = 60, .replay_entries = 4096 };
	uint8_t all = KL_SVC(DH) | KL_SVC(PROSE);

	(void)state;
	now = kl_ntp_now();
	for (unsigned i = 0; i < 32; i++) {
		K1[i] = (uint8_t)(0x10 + i);
		K2[i] = (uint8_t)(0x20 + i);
		K3[i] = (uint8_t)(0x30 + i);
		K4[i] = (uint8_t)(0x40 + i);
		KN[i] = (uint8_t)(0x90 + i);
		PAIR[i] = (uint8_t)(0x61 ^ (i * 5));
	}
	tp.name = "s2s_a";
	ta = kl_table_create(&tp);
	tp.name = "s2s_b";
	tb = kl_table_create(&tp);
	assert_true(ta && tb);
	put_ue(ta, U1, K1, all);
	put_ue(ta, U2, K2, all);
	put_ue(ta, UN, KN, KL_SVC(MBMS));
	put_ue(tb, U3, K3, all);
	put_ue(tb, U4, K4, all);
	assert_int_equal(kl_table_put_pair(ta, (const uint8_t *)SB, 13, PAIR, 32, 0), 0);
	assert_int_equal(kl_table_put_pair(ta, (const uint8_t *)"mme-x.example", 13, PAIR, 32, 0), 0);
	assert_int_equal(kl_table_put_pair(tb, (const uint8_t *)SA, 13, PAIR, 32, 0), 0);
	assert_int_equal(kl_table_reader_register(ta, 0), 0);
	assert_int_equal(kl_table_reader_register(tb, 0), 0);
	peer(&pa, SB);
	peer(&pb, SA);
	ra = kl_replay_create(4096); /* A's workers share one replay cache, as keylined's do */
	assert_non_null(ra);
	ec.replay = ra;
	sa = kl_s2s_create(1024, 1024, 64, 30, 300);
	sb = kl_s2s_create(1024, 1024, 64, 30, 300);
	assert_true(sa && sb);
	ec.peers = &pa;
	ec.s2s = sa;
	ec.backend = KL_CRYPTO_IPSECMB;
	wa[0] = kl_worker_create(&ec, ta, 0);
	ec.backend = KL_CRYPTO_OPENSSL;
	wa[1] = kl_worker_create(&ec, ta, 0);
	ec.idr = (const uint8_t *)SB;
	ec.replay = NULL;
	ec.peers = &pb;
	ec.s2s = sb;
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
	kl_s2s_destroy(sa);
	kl_replay_destroy(ra);
	kl_s2s_destroy(sb);
	kl_table_reader_unregister(ta, 0);
	kl_table_reader_unregister(tb, 0);
	kl_table_free(ta);
	kl_table_free(tb);
	kl_crypto_destroy(cli);
	return 0;
}

int main(void)
{
	char prefix[64];
	char *eal[] = { "test_s2s", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dh_local),	   cmocka_unit_test(dh_remote),
		cmocka_unit_test(dh_peer_gone),	   cmocka_unit_test(prose_local),
		cmocka_unit_test(prose_remote),	   cmocka_unit_test(prose_push_lost),	   cmocka_unit_test(from_peers_only),
		cmocka_unit_test(rendezvous_full), cmocka_unit_test(pushes_in_flight),
		cmocka_unit_test(late_answer),
	};

	snprintf(prefix, sizeof(prefix), "kl_s2s_test_%d", (int)getpid());
	kl_crypto_set_log(NULL);
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	kl_eal_rundir_cleanup_at_exit();
	return cmocka_run_group_tests_name("s2s", tests, setup, teardown);
}
