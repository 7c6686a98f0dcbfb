/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The UE side of the DH VLR scheme (kind 4) and of ProSe (kind 5), PROTOCOL.md sections 7 and 9:
 * kl_client_verify(_burst) on answers a server would send (built here with the codec's builders
 * and the client's own transport keys: a kind-4 answer ending in V with TLV 9, a kind-5 answer with
 * a KEMAC holding p2 or p4, ERR 12/5 with a retry-after), and the UE-side derivations
 * (kl_client_dh_ks(_burst), kl_client_dh_public, kl_client_prose_p/kd/burst) on both backends,
 * checked against HMAC-SHA-256 and X25519 computed here through OpenSSL directly.
 *
 *   test_client_peer                  the cmocka tests
 *   test_client_peer --example FILE   writes a worked example (test keys only) as JSON for the
 *                                     reference check outside C (tests/client_peer_reference.py)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kl_engine.h"

#define SEC(s) ((uint64_t)(s) << 32)

static const char *UEA = "ue-a@ims.mnc001.mcc001.3gppnetwork.org";
static const char *UEB = "ue-b@ims.mnc002.mcc001.3gppnetwork.org";
static const char *SRV = "vlr-a.example", *PEER = "vlr-b.example";
static uint8_t KA[32], KB[32];
static struct kl_crypto *cc[2];
static const char *example_path;

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 7 * i);
}

static int setup(void **state)
{
	(void)state;
	fill(KA, sizeof(KA), 0x11);
	fill(KB, sizeof(KB), 0x5A);
	cc[0] = kl_crypto_create(KL_CRYPTO_IPSECMB);
	cc[1] = kl_crypto_create(KL_CRYPTO_OPENSSL);
	return cc[0] && cc[1] ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kl_crypto_destroy(cc[0]);
	kl_crypto_destroy(cc[1]);
	return 0;
}

/* ---- independent derivations (OpenSSL directly, not the project's KDF code) ------------------ */

static void ref_kdf(const uint8_t *key, size_t klen, uint16_t fc, const uint8_t *p0, size_t l0,
		    const uint8_t *p1, size_t l1, uint8_t out[32])
{
	uint8_t s[2 + 2 * (2 + 256)];
	size_t n = 0;
	unsigned olen = 32;

	s[n++] = (uint8_t)(fc >> 8);
	s[n++] = (uint8_t)fc;
	memcpy(s + n, p0, l0);
	n += l0;
	s[n++] = (uint8_t)(l0 >> 8);
	s[n++] = (uint8_t)l0;
	if (p1) {
		memcpy(s + n, p1, l1);
		n += l1;
		s[n++] = (uint8_t)(l1 >> 8);
		s[n++] = (uint8_t)l1;
	}
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, s, n, out, &olen));
}

static void ref_x25519(const uint8_t s[32], const uint8_t *peer, uint8_t out[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, s, 32), *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = 32;

	assert_non_null(k);
	if (peer) {
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
		ctx = EVP_PKEY_CTX_new(k, NULL);
		assert_non_null(pk);
		assert_non_null(ctx);
		assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
		assert_int_equal(EVP_PKEY_derive_set_peer(ctx, pk), 1);
		assert_int_equal(EVP_PKEY_derive(ctx, out, &n), 1);
	} else {
		assert_int_equal(EVP_PKEY_get_raw_public_key(k, out, &n), 1);
	}
	assert_int_equal(n, 32);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(k);
}

/* s_x = KDF(Kx, FF07, "dh-x25519") */
static void ref_scalar(const uint8_t *k, uint8_t s[32])
{
	ref_kdf(k, 32, 0xFF07, (const uint8_t *)"dh-x25519", 9, NULL, 0, s);
}

/* Ks = KDF(X25519(s_own, P_peer), FF08, ID_lo, ID_hi) */
static void ref_ks(const uint8_t *own, const uint8_t *peer_pub, const char *x, const char *y,
		   uint8_t ks[32])
{
	uint8_t s[32], z[32];
	const char *lo = strcmp(x, y) < 0 ? x : y, *hi = lo == x ? y : x;

	ref_scalar(own, s);
	ref_x25519(s, peer_pub, z);
	ref_kdf(z, 32, 0xFF08, (const uint8_t *)lo, strlen(lo), (const uint8_t *)hi, strlen(hi),
		ks);
}

/* ---- the DH derivations ------------------------------------------------------------------------ */

static void test_dh_both_ends(void **state)
{
	(void)state;
	for (int b = 0; b < 2; b++) {
		uint8_t pa[32], pb[32], s[32], want[32], ksa[32], ksb[32];
		const uint8_t *ia = (const uint8_t *)UEA, *ib = (const uint8_t *)UEB;
		uint16_t la = (uint16_t)strlen(UEA), lb = (uint16_t)strlen(UEB);

		assert_int_equal(kl_client_dh_public(cc[b], KA, 32, pa), 0);
		assert_int_equal(kl_client_dh_public(cc[b], KB, 32, pb), 0);
		ref_scalar(KA, s);
		ref_x25519(s, NULL, want);
		assert_memory_equal(pa, want, 32);
		ref_scalar(KB, s);
		ref_x25519(s, NULL, want);
		assert_memory_equal(pb, want, 32);
		/* UEa from P_b, UEb from P_a; the identities in either order */
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, pb, ia, la, ib, lb, ksa), 0);
		assert_int_equal(kl_client_dh_ks(cc[b], KB, 32, pa, ib, lb, ia, la, ksb), 0);
		assert_memory_equal(ksa, ksb, 32);
		ref_ks(KA, pb, UEA, UEB, want);
		assert_memory_equal(ksa, want, 32);
		/* another peer value, another key */
		pb[3] ^= 1;
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, pb, ia, la, ib, lb, ksb), 0);
		assert_memory_not_equal(ksa, ksb, 32);
	}
}

static void test_dh_prefix_order(void **state)
{
	/* "ue-a" < "ue-a1": a prefix first, whichever UE computes */
	uint8_t pa[32], pb[32], k1[32], k2[32], want[32];

	(void)state;
	assert_int_equal(kl_client_dh_public(cc[0], KA, 32, pa), 0);
	assert_int_equal(kl_client_dh_public(cc[0], KB, 32, pb), 0);
	assert_int_equal(kl_client_dh_ks(cc[0], KA, 32, pb, (const uint8_t *)"ue-a1", 5,
					 (const uint8_t *)"ue-a", 4, k1), 0);
	assert_int_equal(kl_client_dh_ks(cc[1], KB, 32, pa, (const uint8_t *)"ue-a", 4,
					 (const uint8_t *)"ue-a1", 5, k2), 0);
	assert_memory_equal(k1, k2, 32);
	ref_ks(KA, pb, "ue-a", "ue-a1", want);
	assert_memory_equal(k1, want, 32);
}

static void test_dh_errors(void **state)
{
	static const uint8_t zero[32], one[32] = { 1 };
	uint8_t pb[32], ks[32];
	const uint8_t *ia = (const uint8_t *)UEA, *ib = (const uint8_t *)UEB;
	uint16_t la = (uint16_t)strlen(UEA), lb = (uint16_t)strlen(UEB);

	(void)state;
	assert_int_equal(kl_client_dh_public(cc[0], KB, 32, pb), 0);
	for (int b = 0; b < 2; b++) {
		/* low-order peer values: an all-zero shared secret is an error, ks stays zero */
		memset(ks, 0xEE, sizeof(ks));
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, zero, ia, la, ib, lb, ks), -EPERM);
		assert_memory_equal(ks, zero, 32);
		memset(ks, 0xEE, sizeof(ks));
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, one, ia, la, ib, lb, ks), -EPERM);
		assert_memory_equal(ks, zero, 32);
		/* equal identities, missing arguments */
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, pb, ia, la, ia, la, ks), -EINVAL);
		assert_memory_equal(ks, zero, 32);
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 0, pb, ia, la, ib, lb, ks), -EINVAL);
		assert_int_equal(kl_client_dh_ks(cc[b], NULL, 32, pb, ia, la, ib, lb, ks), -EINVAL);
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, NULL, ia, la, ib, lb, ks), -EINVAL);
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, pb, ia, 0, ib, lb, ks), -EINVAL);
		assert_int_equal(kl_client_dh_ks(cc[b], KA, 32, pb, ia, la, ib, lb, NULL), -EINVAL);
		assert_int_equal(kl_client_dh_ks(NULL, KA, 32, pb, ia, la, ib, lb, ks), -EINVAL);
		assert_int_equal(kl_client_dh_public(cc[b], KA, 0, pb), -EINVAL);
	}
	assert_int_equal(kl_client_dh_ks_burst(cc[0], NULL, 1), -EINVAL);
	assert_int_equal(kl_client_dh_ks_burst(cc[0], NULL, 0), 0);
}

/* A burst of 150 (three batches) with bad ops among good ones: each op as if alone. */
static void test_dh_burst(void **state)
{
	enum { N = 150 };
	static struct kl_dh_op op[N];
	static uint8_t key[N][32], pub[N][32], id[N][24];
	static const uint8_t zero[32];

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		fill(key[i], 32, (uint8_t)i);
		assert_int_equal(kl_client_dh_public(cc[1], key[i], 32, pub[i]), 0);
		snprintf((char *)id[i], sizeof(id[i]), "ue%03u@x", i);
	}
	for (int b = 0; b < 2; b++) {
		for (unsigned i = 0; i < N; i++) {
			unsigned j = (i + 1) % N;

			op[i] = (struct kl_dh_op){ .own_key = key[i], .own_key_len = 32,
						   .peer_pub = pub[j], .id_a = id[i], .la = 7,
						   .id_b = id[j], .lb = 7 };
			if (i % 17 == 5)
				op[i].peer_pub = zero; /* -EPERM */
			if (i % 23 == 9)
				op[i].id_b = id[i]; /* equal: -EINVAL */
		}
		assert_int_equal(kl_client_dh_ks_burst(cc[b], op, N), N);
		for (unsigned i = 0; i < N; i++) {
			unsigned j = (i + 1) % N;
			uint8_t one[32], back[32];
			int rc = kl_client_dh_ks(cc[b], key[i], 32, op[i].peer_pub, id[i], 7,
						 op[i].id_b, 7, one);

			assert_int_equal(op[i].rc, rc);
			assert_int_equal(rc, i % 23 == 9 ? -EINVAL : i % 17 == 5 ? -EPERM : 0);
			assert_memory_equal(op[i].ks, one, 32);
			if (rc)
				continue;
			/* the other end agrees */
			assert_int_equal(kl_client_dh_ks(cc[!b], key[j], 32, pub[i], id[j], 7, id[i], 7,
							 back), 0);
			assert_memory_equal(op[i].ks, back, 32);
		}
	}
}

/* ---- ProSe ------------------------------------------------------------------------------------- */

static void test_prose(void **state)
{
	uint8_t p1[16], p3[16], p2[32], p4[32], kd1[32], kd2[32], want[32];

	(void)state;
	fill(p1, 16, 0xA0);
	fill(p3, 16, 0x0B);
	for (int b = 0; b < 2; b++) {
		/* UE1 derives p2 itself and gets p4 from the server; UE2 the other way round */
		assert_int_equal(kl_client_prose_p(cc[b], KA, 32, p1, p2), 0);
		ref_kdf(KA, 32, 0xFF04, p1, 16, NULL, 0, want);
		assert_memory_equal(p2, want, 32);
		assert_int_equal(kl_client_prose_p(cc[b], KB, 32, p3, p4), 0);
		ref_kdf(KB, 32, 0xFF04, p3, 16, NULL, 0, want);
		assert_memory_equal(p4, want, 32);
		assert_int_equal(kl_client_prose_kd(cc[b], p2, p4, kd1), 0);
		assert_int_equal(kl_client_prose_kd(cc[!b], p2, p4, kd2), 0);
		assert_memory_equal(kd1, kd2, 32);
		ref_kdf(p2, 32, 0xFF05, p4, 32, NULL, 0, want);
		assert_memory_equal(kd1, want, 32);
		/* KD is not symmetric in p2 and p4 */
		assert_int_equal(kl_client_prose_kd(cc[b], p4, p2, kd2), 0);
		assert_memory_not_equal(kd1, kd2, 32);
		assert_int_equal(kl_client_prose_p(cc[b], KA, 0, p1, p2), -EINVAL);
		assert_int_equal(kl_client_prose_p(cc[b], KA, 32, NULL, p2), -EINVAL);
		assert_int_equal(kl_client_prose_kd(cc[b], NULL, p4, kd1), -EINVAL);
		assert_int_equal(kl_client_prose_kd(NULL, p2, p4, kd1), -EINVAL);
	}
}

static void test_prose_burst(void **state)
{
	enum { N = 130 };
	static struct kl_prose_op op[N];
	static uint8_t key[N][32], in[N][32];

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		fill(key[i], 32, (uint8_t)(3 * i));
		fill(in[i], 32, (uint8_t)(5 * i + 1));
		op[i] = (struct kl_prose_op){ .key = key[i], .in = in[i], .key_len = 32,
					      .kd = (uint8_t)(i & 1) };
		if (i % 19 == 4)
			op[i].key_len = 0; /* -EINVAL */
	}
	assert_int_equal(kl_client_prose_burst(cc[0], op, N), N);
	for (unsigned i = 0; i < N; i++) {
		uint8_t want[32];

		if (i % 19 == 4) {
			assert_int_equal(op[i].rc, -EINVAL);
			continue;
		}
		assert_int_equal(op[i].rc, 0);
		ref_kdf(key[i], 32, (i & 1) ? 0xFF05 : 0xFF04, in[i], (i & 1) ? 32 : 16, NULL, 0, want);
		assert_memory_equal(op[i].out, want, 32);
	}
}

/* ---- answers --------------------------------------------------------------------------------- */

struct creq {
	struct kl_client_req r;
	uint8_t rand[16];
	uint8_t p[16];
	uint8_t buf[600];
};

static uint32_t seq;

static void sign(struct kl_crypto *c, struct creq *q, uint8_t kind, uint64_t now)
{
	memset(q, 0, sizeof(*q));
	fill(q->rand, 16, (uint8_t)(0x40 + seq));
	fill(q->p, 16, 0x99);
	q->r.spec = (struct kl_mikey_req_spec){
		.rand = q->rand, .id = (const uint8_t *)UEB, .id_len = (uint16_t)strlen(UEB),
		.ts = now, .csb_id = ++seq, .kind = kind, .prf = (uint8_t)(seq & 1),
		.peer_ue = (const uint8_t *)UEA, .peer_ue_len = (uint16_t)strlen(UEA),
		.peer_server = (const uint8_t *)SRV, .peer_server_len = (uint16_t)strlen(SRV),
	};
	if (kind == KL_KIND_PROSE) {
		q->r.spec.contrib = q->p;
		q->r.spec.role = 2;
	}
	q->r.psk = KB;
	q->r.psk_len = 32;
	q->r.buf = q->buf;
	q->r.cap = sizeof(q->buf);
	assert_int_equal(kl_client_sign(c, &q->r, 1), 1);
}

static void mac(struct kl_crypto *c, const struct creq *q, uint8_t *ans,
		const struct kl_mikey_layout *lay)
{
	struct kl_hmac_key k;

	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA1, q->r.auth_key, KL_MIKEY_AUTH_KEY_LEN, &k), 0);
	assert_int_equal(kl_hmac(c, &k, ans, lay->mac_off, ans + lay->mac_off), 0);
}

/* A kind-4 answer: EXT 250 (kind 4; TLV 9 = pub), V. @return its length. */
static uint16_t answer_dh(struct kl_crypto *c, const struct creq *q, uint64_t now,
			  const uint8_t *pub, uint8_t *ans, size_t cap)
{
	struct kl_mikey_req rq;
	struct kl_mikey_tlv t = { .val = pub, .len = 32, .type = KL_TLV_X25519 };
	struct kl_mikey_layout lay;

	assert_int_equal(kl_mikey_parse_req(q->r.buf, q->r.len, &rq), KL_DROP_NONE);
	assert_int_equal(kl_mikey_build_resp_v(ans, cap, &rq, now, (const uint8_t *)PEER,
					       (uint16_t)strlen(PEER), &t, 1, &lay), 0);
	mac(c, q, ans, &lay);
	return lay.len;
}

/* A kind-5 answer: TLV 3 = 0 || valid-from || valid-to, KEMAC (key, SPI 0). */
static uint16_t answer_prose(struct kl_crypto *c, const struct creq *q, uint64_t now,
			     const uint8_t *key, uint64_t vf, uint64_t vt, uint8_t *ans, size_t cap)
{
	struct kl_mikey_req rq;
	struct kl_mikey_key k = { .key = key, .key_len = 32, .key_id = 0, .valid_from = vf,
				  .valid_to = vt };
	struct kl_mikey_layout lay;
	struct kl_aescm_op op;

	assert_int_equal(kl_mikey_parse_req(q->r.buf, q->r.len, &rq), KL_DROP_NONE);
	assert_int_equal(kl_mikey_build_resp_tlv(ans, cap, &rq, now, (const uint8_t *)PEER,
						 (uint16_t)strlen(PEER), &k, 1, NULL, 0, &lay), 0);
	op = (struct kl_aescm_op){ .key = q->r.encr_key, .salt = q->r.salt_key, .in = ans + lay.encr_off,
				   .out = ans + lay.encr_off, .ntp_ts = kl_be64(ans + 12),
				   .csb_id = q->r.spec.csb_id, .len = lay.encr_len };
	assert_int_equal(kl_aescm_burst(c, &op, 1), 1);
	mac(c, q, ans, &lay);
	return lay.len;
}

/* ERR 12/5 with a retry-after. */
static uint16_t answer_wait(struct kl_crypto *c, const struct creq *q, uint64_t now, uint16_t ms,
			    uint8_t *ans, size_t cap)
{
	struct kl_mikey_req rq;
	struct kl_mikey_layout lay;

	assert_int_equal(kl_mikey_parse_req(q->r.buf, q->r.len, &rq), KL_DROP_NONE);
	assert_int_equal(kl_mikey_build_err_retry(ans, cap, &rq, now, KL_ERR_UNSPECIFIED, 5, ms, &lay),
			 0);
	mac(c, q, ans, &lay);
	return lay.len;
}

static void test_verify_dh(void **state)
{
	uint64_t now = kl_ntp_now();
	uint8_t pub[32], ans[600];
	struct kl_client_result res;
	struct creq q;
	uint16_t len;

	(void)state;
	fill(pub, 32, 0x77);
	for (int b = 0; b < 2; b++) {
		sign(cc[b], &q, KL_KIND_DH, now);
		len = answer_dh(cc[b], &q, now, pub, ans, sizeof(ans));
		memset(&res, 0xAB, sizeof(res));
		assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now, 60, &res), 0);
		assert_false(res.is_error);
		assert_int_equal(res.nkeys, 0);
		assert_non_null(res.x25519);
		assert_memory_equal(res.x25519, pub, 32);
		assert_true(res.x25519 >= ans && res.x25519 + 32 <= ans + len);
		assert_false(res.has_retry_after);
		assert_null(res.token[0]);
		/* every byte matters: a flipped one is refused (MAC, or malformed) */
		for (uint16_t i = 0; i < len; i++) {
			ans[i] ^= 0x01;
			assert_int_not_equal(kl_client_verify(cc[b], &q.r, ans, len, now, 60, &res), 0);
			ans[i] ^= 0x01;
		}
		/* an answer to a kind-5 request is not a kind-4 answer */
		q.r.spec.kind = KL_KIND_PROSE;
		assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now, 60, &res), -EPROTO);
		q.r.spec.kind = KL_KIND_DH;
		/* the server's T outside the skew */
		assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now + SEC(120), 60, &res),
				 -ETIME);
	}
}

static void test_verify_prose(void **state)
{
	uint64_t now = kl_ntp_now();
	uint8_t p2[32], ans[600];
	struct kl_client_result res;
	struct creq q;
	uint16_t len;

	(void)state;
	fill(p2, 32, 0x3C);
	for (int b = 0; b < 2; b++) {
		sign(cc[b], &q, KL_KIND_PROSE, now);
		len = answer_prose(cc[b], &q, now, p2, now - SEC(1), now + SEC(29), ans, sizeof(ans));
		assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now, 60, &res), 0);
		assert_false(res.is_error);
		assert_int_equal(res.nkeys, 1);
		assert_int_equal(res.keys[0].key_len, 32);
		assert_memory_equal(res.keys[0].key, p2, 32);
		assert_int_equal(res.keys[0].key_id, 0);
		assert_true(res.keys[0].valid_from == now - SEC(1));
		assert_true(res.keys[0].valid_to == now + SEC(29));
		assert_null(res.x25519);
		/* a flipped byte of the encrypted key is refused by the MAC */
		ans[len - 30] ^= 0x80;
		assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now, 60, &res), -EPERM);
		ans[len - 30] ^= 0x80;
		/* another request's keys do not open it */
		{
			struct creq q2;

			sign(cc[b], &q2, KL_KIND_PROSE, now);
			assert_int_not_equal(kl_client_verify(cc[b], &q2.r, ans, len, now, 60, &res), 0);
		}
	}
}

static void test_verify_wait(void **state)
{
	uint64_t now = kl_ntp_now();
	uint8_t ans[600];
	struct kl_client_result res;
	struct creq q;
	uint16_t len;

	(void)state;
	for (int b = 0; b < 2; b++) {
		for (int kind = KL_KIND_DH; kind <= KL_KIND_PROSE; kind++) {
			sign(cc[b], &q, (uint8_t)kind, now);
			len = answer_wait(cc[b], &q, now, 250, ans, sizeof(ans));
			memset(&res, 0xAB, sizeof(res));
			/* an error is returned whatever its T */
			assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now + SEC(600), 60, &res),
					 0);
			assert_true(res.is_error);
			assert_int_equal(res.err_no, KL_ERR_UNSPECIFIED);
			assert_int_equal(res.detail, 5);
			assert_true(res.has_retry_after);
			assert_int_equal(res.retry_after_ms, 250);
			assert_null(res.x25519);
			ans[len - 1] ^= 1;
			assert_int_equal(kl_client_verify(cc[b], &q.r, ans, len, now, 60, &res), -EPERM);
		}
	}
	/* an error without TLV 10 has no retry-after */
	{
		struct kl_mikey_req rq;
		struct kl_mikey_layout lay;

		sign(cc[0], &q, KL_KIND_DH, now);
		assert_int_equal(kl_mikey_parse_req(q.r.buf, q.r.len, &rq), KL_DROP_NONE);
		assert_int_equal(kl_mikey_build_err(ans, sizeof(ans), &rq, now, KL_ERR_UNSPECIFIED, 2,
						    &lay), 0);
		mac(cc[0], &q, ans, &lay);
		assert_int_equal(kl_client_verify(cc[0], &q.r, ans, lay.len, now, 60, &res), 0);
		assert_true(res.is_error);
		assert_int_equal(res.detail, 2);
		assert_false(res.has_retry_after);
		assert_int_equal(res.retry_after_ms, 0);
	}
}

/* A burst mixing kinds 4 and 5, answers and waits: each check as kl_client_verify alone. */
static void test_verify_burst_mixed(void **state)
{
	enum { N = 100 };
	static struct creq q[N];
	static uint8_t ans[N][600];
	static struct kl_client_result res[N], one;
	static struct kl_client_check chk[N];
	uint64_t now = kl_ntp_now();
	uint8_t key[32];

	(void)state;
	fill(key, 32, 0x21);
	for (unsigned i = 0; i < N; i++) {
		uint8_t kind = (i & 1) ? KL_KIND_PROSE : KL_KIND_DH;
		uint16_t len;

		sign(cc[0], &q[i], kind, now);
		key[0] = (uint8_t)i;
		if (i % 3 == 0)
			len = answer_wait(cc[0], &q[i], now, (uint16_t)(10 * i), ans[i], sizeof(ans[i]));
		else if (kind == KL_KIND_DH)
			len = answer_dh(cc[0], &q[i], now, key, ans[i], sizeof(ans[i]));
		else
			len = answer_prose(cc[0], &q[i], now, key, now, now + SEC(30), ans[i],
					   sizeof(ans[i]));
		if (i % 7 == 3)
			ans[i][len - 2] ^= 4; /* bad MAC */
		chk[i] = (struct kl_client_check){ .req = &q[i].r, .ans = ans[i], .len = len,
						   .now = now, .res = &res[i] };
	}
	for (int b = 0; b < 2; b++) {
		assert_int_equal(kl_client_verify_burst(cc[b], chk, N, 60), N);
		for (unsigned i = 0; i < N; i++) {
			int rc = kl_client_verify(cc[!b], &q[i].r, ans[i], chk[i].len, now, 60, &one);

			assert_int_equal(chk[i].rc, rc);
			assert_int_equal(rc, i % 7 == 3 ? -EPERM : 0);
			if (rc)
				continue;
			assert_int_equal(res[i].is_error, i % 3 == 0);
			assert_int_equal(res[i].is_error, one.is_error);
			assert_int_equal(res[i].retry_after_ms, one.retry_after_ms);
			assert_int_equal(res[i].nkeys, one.nkeys);
			assert_int_equal(!!res[i].x25519, !!one.x25519);
			if (res[i].x25519)
				assert_memory_equal(res[i].x25519, one.x25519, 32);
			if (res[i].nkeys)
				assert_memory_equal(res[i].keys[0].key, one.keys[0].key, 32);
			if (!res[i].is_error) {
				key[0] = (uint8_t)i;
				assert_memory_equal(res[i].nkeys ? res[i].keys[0].key : res[i].x25519, key, 32);
			}
		}
	}
}

/* ---- the worked example for the reference check outside C ---------------------------------- */

static void hex(FILE *f, const char *name, const uint8_t *p, size_t n, int last)
{
	fprintf(f, "  \"%s\": \"", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	fprintf(f, "\"%s\n", last ? "" : ",");
}

static void test_example(void **state)
{
	uint8_t pa[32], pb[32], ksa[32], ksb[32], p1[16], p3[16], p2[32], p4[32], kd[32];
	FILE *f;

	(void)state;
	if (!example_path)
		skip();
	fill(p1, 16, 0xA0);
	fill(p3, 16, 0x0B);
	assert_int_equal(kl_client_dh_public(cc[0], KA, 32, pa), 0);
	assert_int_equal(kl_client_dh_public(cc[0], KB, 32, pb), 0);
	assert_int_equal(kl_client_dh_ks(cc[0], KA, 32, pb, (const uint8_t *)UEA,
					 (uint16_t)strlen(UEA), (const uint8_t *)UEB,
					 (uint16_t)strlen(UEB), ksa), 0);
	assert_int_equal(kl_client_dh_ks(cc[1], KB, 32, pa, (const uint8_t *)UEB,
					 (uint16_t)strlen(UEB), (const uint8_t *)UEA,
					 (uint16_t)strlen(UEA), ksb), 0);
	assert_memory_equal(ksa, ksb, 32);
	assert_int_equal(kl_client_prose_p(cc[0], KA, 32, p1, p2), 0);
	assert_int_equal(kl_client_prose_p(cc[1], KB, 32, p3, p4), 0);
	assert_int_equal(kl_client_prose_kd(cc[0], p2, p4, kd), 0);
	f = fopen(example_path, "w");
	assert_non_null(f);
	fprintf(f, "{\n  \"note\": \"TEST KEYS ONLY: test_client_peer's worked example\",\n");
	fprintf(f, "  \"ue_a\": \"%s\",\n  \"ue_b\": \"%s\",\n", UEA, UEB);
	hex(f, "k_a", KA, 32, 0);
	hex(f, "k_b", KB, 32, 0);
	hex(f, "p_a", pa, 32, 0);
	hex(f, "p_b", pb, 32, 0);
	hex(f, "ks", ksa, 32, 0);
	hex(f, "kasme1", KA, 32, 0);
	hex(f, "kasme2", KB, 32, 0);
	hex(f, "p1", p1, 16, 0);
	hex(f, "p3", p3, 16, 0);
	hex(f, "p2", p2, 32, 0);
	hex(f, "p4", p4, 32, 0);
	hex(f, "kd", kd, 32, 1);
	fprintf(f, "}\n");
	assert_int_equal(fclose(f), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dh_both_ends),	  cmocka_unit_test(test_dh_prefix_order),
		cmocka_unit_test(test_dh_errors),	  cmocka_unit_test(test_dh_burst),
		cmocka_unit_test(test_prose),		  cmocka_unit_test(test_prose_burst),
		cmocka_unit_test(test_verify_dh),	  cmocka_unit_test(test_verify_prose),
		cmocka_unit_test(test_verify_wait),	  cmocka_unit_test(test_verify_burst_mixed),
		cmocka_unit_test(test_example),
	};

	if (argc == 3 && !strcmp(argv[1], "--example"))
		example_path = argv[2];
	else if (argc != 1) {
		fprintf(stderr, "usage: test_client_peer [--example FILE]\n");
		return 2;
	}
	kl_crypto_set_log(NULL);
	return cmocka_run_group_tests_name("client-peer", tests, setup, teardown);
}
