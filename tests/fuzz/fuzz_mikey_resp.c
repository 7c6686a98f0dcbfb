/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the client side of the MIKEY codec (kl_mikey_parse_resp and
 * kl_mikey_parse_keydata).
 *
 * Any input: kl_mikey_parse_resp returns a defined reason without reading outside the message;
 * kl_mikey_parse_keydata over the raw input agrees with an independent reference parser of the
 * PROTOCOL.md section 5 key data layout.
 * Accepted response or error: the view must match the bytes; the KEMAC encr data, copied into
 * its own exactly-sized buffer as a decryption would leave it, goes through kl_mikey_parse_keydata
 * (checked against the reference, every key inside the buffer). An answer without a secret
 * (kinds 4, 6, 7: PROTOCOL.md sections 9, 10) ends with V and carries TLV 9 (kinds 4, 6) or
 * nothing (kind 7). When the message is in the one form the builders write (IDr type 0, key data
 * matching the TLV 3 entries; error with no EXT or with a non-zero detail, then retry-after),
 * rebuilding it with kl_mikey_build_resp / _resp_v / kl_mikey_build_err(_retry) must give the
 * same bytes except the MAC.
 *
 * abort() only on a violated invariant, i.e. a real bug.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kl_mikey.h"
#include "fuzz_common.h"

enum { OFF_RAND = 22, OFF_PL = 38 /* first payload after RAND */ };
#define KD_MAX 4 /* more than KL_MIKEY_MAX_KEYS, so the key count limit is exercised too */

/* Reference key data parser: count of keys, or -1. */
static int ref_keydata(const uint8_t *p, size_t len, unsigned max)
{
	size_t o = 0;
	unsigned n = 0;

	for (;;) {
		size_t kl;
		uint8_t next;

		if (n >= max || len - o < 4)
			return -1;
		next = p[o];
		kl = fz_be16(p + o + 2);
		if (p[o + 1] != 0x21 || kl < 1 || kl > KL_MIKEY_KEY_MAX || len - o < 4 + kl + 5)
			return -1;
		if (p[o + 4 + kl] != 4)
			return -1;
		n++;
		o += 4 + kl + 5;
		if (next == KL_PT_LAST)
			break;
		if (next != KL_PT_KEYDATA)
			return -1;
	}
	return o == len ? (int)n : -1;
}

/* kl_mikey_parse_keydata against the reference; returns its result. */
static int check_keydata(const uint8_t *p, size_t len, unsigned max, struct kl_mikey_key *keys)
{
	int ref = ref_keydata(p, len, max);
	int nk = kl_mikey_parse_keydata(p, len, keys, max);
	size_t o = 0;

	FZ_CHECK(nk == -EBADMSG || (nk >= 1 && (unsigned)nk <= max));
	FZ_CHECK((nk < 0 && ref < 0) || nk == ref);
	if (nk < 0)
		return nk;
	for (int i = 0; i < nk; i++) {
		const struct kl_mikey_key *k = &keys[i];

		FZ_CHECK(p[o] == (i + 1 < nk ? KL_PT_KEYDATA : KL_PT_LAST) && p[o + 1] == 0x21);
		FZ_CHECK(k->key_len >= 1 && k->key_len <= KL_MIKEY_KEY_MAX);
		FZ_CHECK(fz_be16(p + o + 2) == k->key_len);
		FZ_CHECK(k->key == p + o + 4 && fz_inside(k->key, k->key_len + 5u, p, len));
		FZ_CHECK(k->key[k->key_len] == 4 && k->key_id == fz_be32(k->key + k->key_len + 1));
		FZ_CHECK(k->valid_from == 0 && k->valid_to == 0);
		o += 4 + k->key_len + 5;
	}
	FZ_CHECK(o == len);
	return nk;
}

static void check_common(const uint8_t *d, size_t n, const struct kl_mikey_resp *r)
{
	FZ_CHECK(r->msg == d && r->len == n && n <= 3 * KL_MIKEY_REQ_MAX);
	FZ_CHECK(r->mac_off >= OFF_PL && (size_t)r->mac_off + KL_MIKEY_MAC_LEN == n);
	FZ_CHECK(r->mac == d + r->mac_off);
	FZ_CHECK(d[0] == 1 && d[1] == r->data_type && d[2] == KL_PT_T);
	FZ_CHECK(r->data_type == KL_DT_PSK_RESP || r->data_type == KL_DT_ERROR);
	FZ_CHECK(r->prf <= 1 && d[3] == r->prf);
	FZ_CHECK(r->csb_id == fz_be32(d + 4) && d[8] == 0 && d[9] == 1);
	FZ_CHECK(d[10] == KL_PT_RAND && d[11] == 0 && r->ts == fz_be64(d + 12));
	FZ_CHECK(d[21] == KL_MIKEY_RAND_LEN && r->rand == d + OFF_RAND);
}

/* Data type 1. */
static void check_resp_view(const uint8_t *d, size_t n, const struct kl_mikey_resp *r)
{
	size_t ext, el, k;

	FZ_CHECK(d[20] == KL_PT_ID);
	FZ_CHECK(d[OFF_PL] == KL_PT_GENEXT && d[OFF_PL + 1] <= 1);
	FZ_CHECK(r->idr_len >= 1 && r->idr_len <= KL_MIKEY_ID_MAX);
	FZ_CHECK(fz_be16(d + OFF_PL + 2) == r->idr_len && r->idr == d + OFF_PL + 4);
	FZ_CHECK(fz_inside(r->idr, r->idr_len, d, r->mac_off));
	FZ_CHECK(fz_utf8_ok(r->idr, r->idr_len));
	ext = OFF_PL + 4 + r->idr_len;
	el = fz_be16(d + ext + 2);
	FZ_CHECK(r->kind == d[ext + 4]);
	FZ_CHECK(!r->err_no && !r->has_detail && !r->detail && !r->has_retry_after);
	if (d[ext] == KL_PT_V) {
		/* no secret: kinds 4 and 6 carry exactly TLV 9 (32 bytes), kind 7 nothing */
		int pv = r->kind == KL_KIND_DH || r->kind == KL_KIND_PEERPV;

		FZ_CHECK(pv || r->kind == KL_KIND_PUSH);
		FZ_CHECK(d[ext + 1] == KL_EXT_KEYLINE && el == (pv ? 1u + 35u : 1u));
		FZ_CHECK(!r->nkeys && !r->encr && !r->encr_len && !r->tlv3[0]);
		FZ_CHECK(r->tlv_seen == (pv ? KL_TLV_BIT(X25519) : 0u));
		if (pv)
			FZ_CHECK(d[ext + 5] == KL_TLV_X25519 && fz_be16(d + ext + 6) == 32 &&
				 r->tlv[KL_TLVI_X25519] == d + ext + 8 &&
				 r->tlv_len[KL_TLVI_X25519] == 32);
		k = ext + 4 + el;
		FZ_CHECK(d[k] == KL_PT_LAST && d[k + 1] == 1 && k + KL_MIKEY_V_LEN == n);
		FZ_CHECK(r->mac_off == k + 2);
		return;
	}
	FZ_CHECK(d[ext] == KL_PT_KEMAC && d[ext + 1] == KL_EXT_KEYLINE);
	FZ_CHECK(r->kind != KL_KIND_DH && r->kind != KL_KIND_PEERPV && r->kind != KL_KIND_PUSH);
	FZ_CHECK(r->nkeys >= 1 && r->nkeys <= KL_MIKEY_MAX_KEYS);
	/* the EXT is TLV 3s (key info, 20 bytes) and, for kind 2 only, token_a (7) and token_b (8)
	 * once each, in any order (PROTOCOL.md sections 5 and 9) */
	{
		unsigned n3 = 0, ntok = 0;
		size_t o = 1;

		while (o < el) {
			const uint8_t *t = d + ext + 4 + o;
			size_t l = fz_be16(t + 1);

			if (t[0] == KL_TLV_KEY_INFO) {
				FZ_CHECK(l == 20 && n3 < r->nkeys && r->tlv3[n3] == t + 3);
				n3++;
			} else {
				unsigned ti = t[0] == KL_TLV_TOKEN_REQ ? KL_TLVI_TOKEN_REQ : KL_TLVI_TOKEN_PEER;

				FZ_CHECK(r->kind == KL_KIND_HM);
				FZ_CHECK(t[0] == KL_TLV_TOKEN_REQ || t[0] == KL_TLV_TOKEN_PEER);
				FZ_CHECK(r->tlv[ti] == t + 3 && r->tlv_len[ti] == l && l >= 1);
				ntok++;
			}
			o += 3 + l;
		}
		FZ_CHECK(o == el && n3 == r->nkeys);
		FZ_CHECK(ntok == (r->kind == KL_KIND_HM ? 2u : 0u));
		FZ_CHECK(r->tlv_seen == (r->kind == KL_KIND_HM ? (uint32_t)(KL_TLV_BIT(TOKEN_REQ) |
									  KL_TLV_BIT(TOKEN_PEER))
							       : 0u));
	}
	for (unsigned i = r->nkeys; i < KL_MIKEY_MAX_KEYS; i++)
		FZ_CHECK(!r->tlv3[i]);
	k = ext + 4 + el;
	FZ_CHECK(d[k] == KL_PT_LAST && d[k + 1] == 1);
	FZ_CHECK(r->encr_len == fz_be16(d + k + 2) && r->encr == d + k + 4);
	FZ_CHECK(fz_inside(r->encr, r->encr_len, d, r->mac_off));
	FZ_CHECK(k + 4 + r->encr_len + 1 == r->mac_off && d[r->mac_off - 1] == 1);
	FZ_CHECK(k + 4 + r->encr_len + 1 + KL_MIKEY_MAC_LEN == n);
}

static void check_err_view(const uint8_t *d, size_t n, const struct kl_mikey_resp *r)
{
	FZ_CHECK(d[20] == KL_PT_ERR);
	FZ_CHECK(r->err_no == d[OFF_PL + 1] && !d[OFF_PL + 2] && !d[OFF_PL + 3]);
	FZ_CHECK(!r->idr && !r->idr_len && !r->encr && !r->encr_len && !r->nkeys);
	FZ_CHECK(!r->tlv3[0] && !r->tlv3[1]);
	if (d[OFF_PL] == KL_PT_GENEXT) {
		const uint8_t *x = d + OFF_PL + 4;
		size_t el = fz_be16(x + 2);
		int det = 0, ra = 0;

		FZ_CHECK(x[0] == KL_PT_V && x[1] == KL_EXT_KEYLINE && r->kind == x[4]);
		FZ_CHECK(n == OFF_PL + 4 + 4 + el + KL_MIKEY_V_LEN);
		/* TLV 4 detail, and TLV 10 retry-after (only beside a detail), each once, 2 bytes,
		 * in either order (PROTOCOL.md section 6) */
		for (size_t o = 5; o < 4 + el; o += 5) {
			FZ_CHECK(fz_be16(x + o + 1) == 2);
			if (x[o] == KL_TLV_DETAIL) {
				FZ_CHECK(!det++ && r->detail == fz_be16(x + o + 3));
			} else {
				FZ_CHECK(x[o] == KL_TLV_RETRY_AFTER && !ra++);
				FZ_CHECK(r->retry_after_ms == fz_be16(x + o + 3));
			}
		}
		FZ_CHECK(el == 1 + 5u * (unsigned)(det + ra));
		FZ_CHECK(r->has_detail == det && r->has_retry_after == ra && (det || !ra));
		if (!det)
			FZ_CHECK(!r->detail);
		if (!ra)
			FZ_CHECK(!r->retry_after_ms);
	} else {
		FZ_CHECK(d[OFF_PL] == KL_PT_V && n == OFF_PL + 4 + KL_MIKEY_V_LEN);
		FZ_CHECK(!r->kind && !r->has_detail && !r->detail && !r->has_retry_after);
	}
	FZ_CHECK(d[r->mac_off - 2] == KL_PT_LAST && d[r->mac_off - 1] == 1);
}

/* A request view carrying what the builders echo. */
static void fake_req(const struct kl_mikey_resp *r, size_t len, struct kl_mikey_req *q)
{
	memset(q, 0, sizeof(*q));
	q->rand = r->rand;
	q->csb_id = r->csb_id;
	q->prf = r->prf;
	q->kind = r->kind;
	q->len = (uint16_t)(len < KL_MIKEY_REQ_MAX ? len : KL_MIKEY_REQ_MAX);
}

/* Canonical response: kl_mikey_build_resp gives it back byte for byte except the MAC. */
static void rebuild_resp(const uint8_t *d, size_t n, const struct kl_mikey_resp *r,
			 struct kl_mikey_key *keys, int nk)
{
	struct kl_mikey_layout lay;
	struct kl_mikey_req q;
	struct kl_mikey_tlv tok[2];
	unsigned ntok = 0;
	/* kinds 2 and 5 (PROTOCOL.md section 9): one key, its SPI 0; kind 2's TLV 3 names the
	 * session and its tokens follow */
	int session = r->kind == KL_KIND_HM || r->kind == KL_KIND_PROSE;
	uint8_t *out;

	if (nk != r->nkeys || d[OFF_PL + 1] != 0 || (session && nk != 1))
		return;
	if (r->kind == KL_KIND_HM) {
		/* the builder's order: the TLV 3, then token_a, then token_b */
		if (nk != 1 || r->tlv3[0] + 20 + 3 != r->tlv[KL_TLVI_TOKEN_REQ] ||
		    r->tlv[KL_TLVI_TOKEN_REQ] + r->tlv_len[KL_TLVI_TOKEN_REQ] + 3 !=
			    r->tlv[KL_TLVI_TOKEN_PEER])
			return;
		for (unsigned t = 0; t < 2; t++) {
			unsigned ti = t ? KL_TLVI_TOKEN_PEER : KL_TLVI_TOKEN_REQ;

			tok[ntok++] = (struct kl_mikey_tlv){ .type = t ? KL_TLV_TOKEN_PEER : KL_TLV_TOKEN_REQ,
							     .val = r->tlv[ti], .len = r->tlv_len[ti] };
		}
	}
	for (int i = 0; i < nk; i++) {
		if (session ? keys[i].key_id != 0 : keys[i].key_id != fz_be32(r->tlv3[i]))
			return;
		keys[i].key_id = fz_be32(r->tlv3[i]);
		keys[i].valid_from = fz_be64(r->tlv3[i] + 4);
		keys[i].valid_to = fz_be64(r->tlv3[i] + 12);
	}
	fake_req(r, n, &q);
	out = malloc(n);
	FZ_CHECK(out);
	FZ_CHECK(kl_mikey_build_resp_tlv(out, n - 1, &q, r->ts, r->idr, r->idr_len, keys,
					 (unsigned)nk, tok, ntok, &lay) == -ENOSPC);
	FZ_CHECK(kl_mikey_build_resp_tlv(out, n, &q, r->ts, r->idr, r->idr_len, keys, (unsigned)nk,
					 tok, ntok, &lay) == 0);
	FZ_CHECK(lay.len == n && lay.mac_off == r->mac_off);
	FZ_CHECK(lay.encr_off == (size_t)(r->encr - d) && lay.encr_len == r->encr_len);
	FZ_CHECK(memcmp(out, d, r->mac_off) == 0);
	free(out);
}

/* Canonical answer without a secret: kl_mikey_build_resp_v gives it back. */
static void rebuild_resp_v(const uint8_t *d, size_t n, const struct kl_mikey_resp *r)
{
	struct kl_mikey_layout lay;
	struct kl_mikey_req q;
	struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = r->tlv[KL_TLVI_X25519], .len = 32 };
	unsigned nx = !!(r->tlv_seen & KL_TLV_BIT(X25519));
	uint8_t *out;

	if (d[OFF_PL + 1] != 0)
		return;
	fake_req(r, n, &q);
	out = malloc(n);
	FZ_CHECK(out);
	FZ_CHECK(kl_mikey_build_resp_v(out, n - 1, &q, r->ts, r->idr, r->idr_len, &x, nx, &lay) ==
		 -ENOSPC);
	FZ_CHECK(kl_mikey_build_resp_v(out, n, &q, r->ts, r->idr, r->idr_len, &x, nx, &lay) == 0);
	FZ_CHECK(lay.len == n && lay.mac_off == r->mac_off && !lay.encr_len);
	FZ_CHECK(memcmp(out, d, r->mac_off) == 0);
	free(out);
}

/* Canonical error: kl_mikey_build_err(_retry) gives it back byte for byte except the MAC. */
static void rebuild_err(const uint8_t *d, size_t n, const struct kl_mikey_resp *r)
{
	struct kl_mikey_layout lay;
	struct kl_mikey_req q;
	uint8_t *out;

	if (!(n == 64 || (n == 74 && r->has_detail && r->detail && !r->has_retry_after) ||
	      (n == 79 && r->detail && r->retry_after_ms && d[47] == KL_TLV_DETAIL)))
		return;
	fake_req(r, n, &q);
	out = malloc(n);
	FZ_CHECK(out);
	FZ_CHECK(kl_mikey_build_err_retry(out, n, &q, r->ts, r->err_no, r->detail,
					  r->retry_after_ms, &lay) == 0);
	FZ_CHECK(lay.len == n && lay.mac_off == r->mac_off);
	FZ_CHECK(memcmp(out, d, r->mac_off) == 0);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_mikey_key keys[KD_MAX];
	struct kl_mikey_resp r, again;
	enum kl_drop d;
	uint8_t *plain;
	int nk;

	/* the raw input as key data: the parser must agree with the reference */
	check_keydata(data, size, KD_MAX, keys);
	check_keydata(data, size, KL_MIKEY_MAX_KEYS, keys);

	d = kl_mikey_parse_resp(data, size, &r);
	FZ_CHECK(d == KL_DROP_NONE || d == KL_DROP_MALFORMED || d == KL_DROP_OVERSIZED ||
		 d == KL_DROP_UNSUPPORTED_VERSION || d == KL_DROP_UNSUPPORTED_TYPE ||
		 d == KL_DROP_UNSUPPORTED_PRF || d == KL_DROP_UNSUPPORTED_ALG);
	FZ_CHECK((d == KL_DROP_OVERSIZED) == (size > 3 * KL_MIKEY_REQ_MAX));
	if (d != KL_DROP_NONE)
		return 0;
	check_common(data, size, &r);
	FZ_CHECK(kl_mikey_parse_resp(data, size, &again) == KL_DROP_NONE);
	FZ_CHECK(memcmp(&again, &r, sizeof(r)) == 0);
	FZ_CHECK(kl_mikey_parse_resp(data, size - 1, &again) != KL_DROP_NONE);

	if (r.data_type == KL_DT_ERROR) {
		check_err_view(data, size, &r);
		rebuild_err(data, size, &r);
		return 0;
	}
	check_resp_view(data, size, &r);
	if (!r.encr) {
		rebuild_resp_v(data, size, &r);
		return 0;
	}
	/* as if decrypted: the plaintext sits in its own buffer of exactly encr_len bytes */
	plain = malloc(r.encr_len ? r.encr_len : 1);
	FZ_CHECK(plain);
	memcpy(plain, r.encr, r.encr_len);
	nk = check_keydata(plain, r.encr_len, KL_MIKEY_MAX_KEYS, keys);
	if (nk > 0) {
		FZ_CHECK(memcmp(plain, r.encr, r.encr_len) == 0); /* the parser does not write */
		rebuild_resp(data, size, &r, keys, nk);
	}
	free(plain);
	return 0;
}
