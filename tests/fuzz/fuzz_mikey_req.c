/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the server side of the MIKEY codec (kl_mikey_parse_req).
 *
 * Any input: the parser must return a defined drop reason, never read outside the datagram
 * (ASan: libFuzzer hands over an exactly-sized heap copy) and never hit UB (UBSan).
 * Accepted input: the zero-copy view must be consistent with the bytes (checked against the
 * PROTOCOL.md section 2 layout re-derived here, not against the parser's own helpers), the
 * request must round-trip through kl_mikey_build_req (kind 7: kl_mikey_build_req_kemac, its
 * encr data aside) byte for byte except the MAC, and the response / error builders fed with the
 * view must produce messages that kl_mikey_parse_resp accepts and that agree with the request
 * (RAND echo, CSB ID, PRF, kind, keys, public value, detail, retry-after).
 *
 * abort() only on a violated invariant, i.e. a real bug.
 *
 * E2M TLV order: PROTOCOL.md section 4 does not fix the order of TLV 1 (UE identity) and TLV 2
 * (key id); the parser accepts both and the builder writes 1 then 2. The round trip compares
 * against the input with its TLVs put in builder order. Build with -DKL_FUZZ_STRICT_ROUNDTRIP to
 * demand raw byte equality instead (it fails on a request carrying TLV 2 before TLV 1).
 */
#include <errno.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "kl_mikey.h"
#include "fuzz_common.h"

/* The fixed offsets of PROTOCOL.md section 2: HDR 10, T 10, RAND 2+16, IDi header 4. */
enum { OFF_T = 10, OFF_RAND_HDR = 20, OFF_RAND = 22, OFF_ID_HDR = 38, OFF_ID = 42 };
#define MIN_REQ (10 + 10 + 18 + 4 + 1 + 4 + 5 + KL_MIKEY_V_LEN) /* 1-byte IDi, E2M 1-byte UE */
/* Kind 7's KEMAC (PROTOCOL.md section 10): next, encr alg, encr length; MAC alg and MAC; its
 * encr data holds one key data sub-payload of at most a 32-byte key */
#define KEMAC_HDR 4
#define KEMAC_TAIL (1 + KL_MIKEY_MAC_LEN)
#define PUSH_ENCR_MAX (4 + KL_MIKEY_KEY_MAX + 5)

/* The TLVs each kind takes and needs (PROTOCOL.md sections 4, 9, 10), as bit sets. */
#define B(e) KL_TLV_BIT(e)
static void kind_tlvs(unsigned kind, uint32_t *takes, uint32_t *needs)
{
	switch (kind) {
	case KL_KIND_E2M:
		*needs = B(UE_ID);
		*takes = *needs | B(KEY_ID);
		break;
	case KL_KIND_HM:
	case KL_KIND_DH:
		*needs = B(PEER_UE) | B(PEER_SERVER);
		*takes = *needs;
		break;
	case KL_KIND_KSTAR:
		*needs = *takes = B(PEER_SERVER);
		break;
	case KL_KIND_PROSE:
		*needs = *takes = B(PEER_UE) | B(PEER_SERVER) | B(CONTRIB) | B(ROLE);
		break;
	case KL_KIND_PEERPV:
		*needs = *takes = B(PEER_UE);
		break;
	case KL_KIND_PUSH:
		*needs = *takes = B(SOURCE_UE) | B(PEER_UE) | B(ROLE);
		break;
	default:
		FZ_CHECK(0); /* no other kind is served */
	}
	*takes |= B(PADDING);
}

static int same_tlv(const struct kl_mikey_req *r, unsigned a, const uint8_t *b, size_t bl)
{
	return r->tlv_len[a] == bl && memcmp(r->tlv[a], b, bl) == 0;
}

static int drop_from_parser(enum kl_drop d)
{
	switch (d) {
	case KL_DROP_MALFORMED:
	case KL_DROP_OVERSIZED:
	case KL_DROP_UNSUPPORTED_VERSION:
	case KL_DROP_UNSUPPORTED_TYPE:
	case KL_DROP_UNSUPPORTED_PRF:
	case KL_DROP_UNSUPPORTED_ALG:
		return 1;
	default: /* identity, MAC, replay, rate and buffer drops belong to the engine */
		return 0;
	}
}

/* The view of an accepted request against the bytes. Returns the EXT payload offset. */
static size_t check_view(const uint8_t *d, size_t n, const struct kl_mikey_req *r)
{
	size_t ext, el;

	FZ_CHECK(r->msg == d && r->len == n);
	FZ_CHECK(n >= MIN_REQ && n <= KL_MIKEY_REQ_MAX);
	FZ_CHECK((size_t)r->mac_off + KL_MIKEY_MAC_LEN == n);
	FZ_CHECK(r->mac == d + r->mac_off);
	if (r->kind != KL_KIND_PUSH)
		FZ_CHECK(d[r->mac_off - 2] == KL_PT_LAST);
	FZ_CHECK(d[r->mac_off - 1] == 1); /* HMAC-SHA-1-160 */
	/* HDR */
	FZ_CHECK(d[0] == 1 && d[1] == KL_DT_PSK_INIT && d[2] == KL_PT_T);
	FZ_CHECK(r->prf <= 1 && d[3] == r->prf);
	FZ_CHECK(r->csb_id == fz_be32(d + 4));
	FZ_CHECK(d[8] == 0 && d[9] == 1);
	/* T, RAND */
	FZ_CHECK(d[OFF_T] == KL_PT_RAND && d[OFF_T + 1] == 0 && r->ts == fz_be64(d + OFF_T + 2));
	FZ_CHECK(d[OFF_RAND_HDR] == KL_PT_ID && d[OFF_RAND_HDR + 1] == KL_MIKEY_RAND_LEN);
	FZ_CHECK(r->rand == d + OFF_RAND);
	/* IDi */
	FZ_CHECK(d[OFF_ID_HDR] == KL_PT_GENEXT && d[OFF_ID_HDR + 1] == r->id_type && r->id_type <= 1);
	FZ_CHECK(r->id_len >= 1 && r->id_len <= KL_MIKEY_ID_MAX);
	FZ_CHECK(fz_be16(d + OFF_ID_HDR + 2) == r->id_len);
	FZ_CHECK(r->id == d + OFF_ID && fz_inside(r->id, r->id_len, d, r->mac_off));
	FZ_CHECK(fz_utf8_ok(r->id, r->id_len));
	/* EXT */
	ext = OFF_ID + r->id_len;
	FZ_CHECK(ext + 4 <= n);
	FZ_CHECK(d[ext] == (r->kind == KL_KIND_PUSH ? KL_PT_KEMAC : KL_PT_V) &&
		 d[ext + 1] == r->ext_type);
	el = fz_be16(d + ext + 2);
	if (r->kind == KL_KIND_PUSH) {
		const uint8_t *k = d + ext + 4 + el;

		/* KEMAC: next 0, AES-CM-128, encr data, HMAC-SHA-1-160, MAC; nothing after */
		FZ_CHECK(k[0] == KL_PT_LAST && k[1] == 1 && fz_be16(k + 2) == r->encr_len);
		FZ_CHECK(r->encr_off == ext + 4 + el + KEMAC_HDR);
		FZ_CHECK(r->encr_len >= 1 && r->encr_len <= PUSH_ENCR_MAX);
		FZ_CHECK(ext + 4 + el + KEMAC_HDR + r->encr_len + KEMAC_TAIL == n);
	} else {
		FZ_CHECK(ext + 4 + el + KL_MIKEY_V_LEN == n);
		FZ_CHECK(!r->encr_off && !r->encr_len);
	}
	if (r->ext_type == KL_EXT_KEYID) {
		const uint8_t *k = d + ext + 4;

		FZ_CHECK(r->kind == KL_KIND_MBMS && el == 10);
		FZ_CHECK(k[0] == 1 && fz_be16(k + 1) == 7);
		FZ_CHECK(memcmp(r->domain, k + 3, 3) == 0);
		FZ_CHECK(r->group == fz_be16(k + 6) && r->number == fz_be16(k + 8));
		FZ_CHECK(!r->ue && !r->ue_len && !r->has_key_id && !r->key_id);
	} else {
		const uint8_t *x = d + ext + 4, *kt;
		static const uint8_t zero3[3];
		uint32_t takes, needs;
		size_t tlv_bytes = 0;

		/* PROTOCOL.md sections 4, 9 and 10: what each kind of EXT 250 takes and needs */
		FZ_CHECK(r->ext_type == KL_EXT_KEYLINE && x[0] == r->kind);
		FZ_CHECK(el >= 1);
		kind_tlvs(r->kind, &takes, &needs);
		FZ_CHECK(!(r->tlv_seen & ~takes) && (r->tlv_seen & needs) == needs);
		/* IDUEa == IDUEb is malformed (kinds 2, 4, 5); kind 7 pushes one UE's value for
		 * another; p is 16 bytes, the role 1 (initiator) or 2 (responder) */
		if (r->kind == KL_KIND_HM || r->kind == KL_KIND_DH || r->kind == KL_KIND_PROSE)
			FZ_CHECK(!same_tlv(r, KL_TLVI_PEER_UE, r->id, r->id_len));
		if (r->kind == KL_KIND_PUSH)
			FZ_CHECK(!same_tlv(r, KL_TLVI_PEER_UE, r->tlv[KL_TLVI_SOURCE_UE],
					   r->tlv_len[KL_TLVI_SOURCE_UE]));
		if (r->tlv_seen & KL_TLV_BIT(CONTRIB))
			FZ_CHECK(r->tlv_len[KL_TLVI_CONTRIB] == 16);
		if (r->tlv_seen & KL_TLV_BIT(ROLE))
			FZ_CHECK(r->tlv_len[KL_TLVI_ROLE] == 1 &&
				 (r->tlv[KL_TLVI_ROLE][0] == 1 || r->tlv[KL_TLVI_ROLE][0] == 2));
		for (unsigned i = 0; i < KL_TLVI__COUNT; i++) {
			if (!(r->tlv_seen & (1u << i)))
				continue;
			FZ_CHECK(fz_inside(r->tlv[i], r->tlv_len[i], x + 1, el - 1));
			FZ_CHECK(fz_be16(r->tlv[i] - 2) == r->tlv_len[i]);
			if (i == KL_TLVI_UE_ID || i == KL_TLVI_PEER_UE || i == KL_TLVI_PEER_SERVER ||
			    i == KL_TLVI_SOURCE_UE)
				FZ_CHECK(r->tlv_len[i] >= 1 && r->tlv_len[i] <= KL_MIKEY_ID_MAX &&
					 fz_utf8_ok(r->tlv[i], r->tlv_len[i]));
			tlv_bytes += 3 + (size_t)r->tlv_len[i];
		}
		FZ_CHECK(el == 1 + tlv_bytes);
		FZ_CHECK(r->has_key_id == !!(r->tlv_seen & KL_TLV_BIT(KEY_ID)));
		if (r->kind == KL_KIND_E2M) {
			FZ_CHECK(r->ue == r->tlv[KL_TLVI_UE_ID] && r->ue_len == r->tlv_len[KL_TLVI_UE_ID]);
			FZ_CHECK(r->ue[-3] == KL_TLV_UE_ID);
		} else {
			FZ_CHECK(!r->ue && !r->ue_len);
		}
		if (r->has_key_id) {
			kt = r->tlv[KL_TLVI_KEY_ID] - 3;
			FZ_CHECK(kt[0] == KL_TLV_KEY_ID && fz_be16(kt + 1) == 4);
			FZ_CHECK(fz_be32(kt + 3) == r->key_id);
		} else {
			FZ_CHECK(r->key_id == 0);
		}
		if (r->tlv_seen & KL_TLV_BIT(PADDING))
			FZ_CHECK(r->tlv[KL_TLVI_PADDING][-3] == KL_TLV_PADDING);
		FZ_CHECK(!r->group && !r->number && memcmp(r->domain, zero3, 3) == 0);
	}
	return ext;
}

/* kl_mikey_build_req from the view must give the input back (MAC field zeroed). */
static void check_rebuild(const uint8_t *d, size_t n, size_t ext, const struct kl_mikey_req *r)
{
	struct kl_mikey_req_spec s = {
		.rand = r->rand, .id = r->id, .ue = r->ue, .ts = r->ts, .csb_id = r->csb_id,
		.key_id = r->key_id, .id_len = r->id_len, .ue_len = r->ue_len, .group = r->group,
		.number = r->number, .prf = r->prf, .id_type = r->id_type, .kind = r->kind,
		.has_key_id = r->has_key_id,
	};
	uint8_t *out = malloc(n), *want = malloc(n);
	struct kl_mikey_req r2;
	struct kl_mikey_layout lay = { 0 };
	uint16_t mo = 0;
	int bn, push = r->kind == KL_KIND_PUSH;

	FZ_CHECK(out && want);
	/* kind 7: the builder lays out one key data sub-payload (4 + key + 5 bytes) in clear; a
	 * KEMAC too short for a 1-byte key cannot be rebuilt */
	if (push && r->encr_len < 4 + 1 + 5) {
		free(out);
		free(want);
		return;
	}
	if (push) {
		s.push_key = d + r->encr_off + 4;
		s.push_key_len = (uint8_t)(r->encr_len - 9);
	}
	if (r->tlv_seen & KL_TLV_BIT(SOURCE_UE)) {
		s.source_ue = r->tlv[KL_TLVI_SOURCE_UE];
		s.source_ue_len = r->tlv_len[KL_TLVI_SOURCE_UE];
	}
	if (r->tlv_seen & KL_TLV_BIT(CONTRIB))
		s.contrib = r->tlv[KL_TLVI_CONTRIB];
	if (r->tlv_seen & KL_TLV_BIT(ROLE))
		s.role = r->tlv[KL_TLVI_ROLE][0];
	if (r->tlv_seen & KL_TLV_BIT(PEER_UE)) {
		s.peer_ue = r->tlv[KL_TLVI_PEER_UE];
		s.peer_ue_len = r->tlv_len[KL_TLVI_PEER_UE];
	}
	if (r->tlv_seen & KL_TLV_BIT(PEER_SERVER)) {
		s.peer_server = r->tlv[KL_TLVI_PEER_SERVER];
		s.peer_server_len = r->tlv_len[KL_TLVI_PEER_SERVER];
	}
	if (r->tlv_seen & KL_TLV_BIT(PADDING)) {
		s.has_pad = 1;
		s.pad_len = r->tlv_len[KL_TLVI_PADDING];
	}
	memcpy(s.domain, r->domain, 3);
	memcpy(want, d, n);
#ifndef KL_FUZZ_STRICT_ROUNDTRIP
	if (r->ext_type == KL_EXT_KEYLINE) {
		/* the TLVs in the builder's order (1, 2, 13, 5, 6, 11, 12, 255), padding as zeros:
		 * PROTOCOL.md fixes no order, and padding's bytes are the client's */
		static const unsigned order[] = { KL_TLVI_UE_ID,     KL_TLVI_KEY_ID,
						  KL_TLVI_SOURCE_UE, KL_TLVI_PEER_UE,
						  KL_TLVI_PEER_SERVER, KL_TLVI_CONTRIB,
						  KL_TLVI_ROLE,	     KL_TLVI_PADDING };
		uint8_t *x = want + ext + 5;

		for (unsigned k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
			unsigned i = order[k];

			if (!(r->tlv_seen & (1u << i)))
				continue;
			x[0] = d[r->tlv[i] - 3 - d];
			x[1] = (uint8_t)(r->tlv_len[i] >> 8);
			x[2] = (uint8_t)r->tlv_len[i];
			if (i == KL_TLVI_PADDING)
				memset(x + 3, 0, r->tlv_len[i]);
			else
				memcpy(x + 3, r->tlv[i], r->tlv_len[i]);
			x += 3 + r->tlv_len[i];
		}
	}
#else
	(void)ext;
#endif
	/* exactly the input's size is enough, one byte less is not */
	if (push) {
		static const uint8_t spi0[5] = { 4, 0, 0, 0, 0 };
		const uint8_t *kd;

		FZ_CHECK(kl_mikey_build_req(out, n, &s, &mo) == -EINVAL);
		FZ_CHECK(kl_mikey_build_req_kemac(out, n - 1, &s, &lay) == -ENOSPC);
		bn = kl_mikey_build_req_kemac(out, n, &s, &lay);
		mo = lay.mac_off;
		FZ_CHECK(bn == (int)n && lay.len == n);
		FZ_CHECK(lay.encr_off == r->encr_off && lay.encr_len == r->encr_len);
		/* the key data in clear: next 0, TEK / SPI, key length, the key, SPI 0 */
		kd = out + lay.encr_off;
		FZ_CHECK(kd[0] == KL_PT_LAST && kd[1] == 0x21 && fz_be16(kd + 2) == s.push_key_len);
		FZ_CHECK(memcmp(kd + 4, s.push_key, s.push_key_len) == 0);
		FZ_CHECK(memcmp(kd + 4 + s.push_key_len, spi0, 5) == 0);
		memcpy(want + r->encr_off, kd, r->encr_len);
	} else {
		FZ_CHECK(kl_mikey_build_req(out, n - 1, &s, &mo) == -ENOSPC);
		bn = kl_mikey_build_req(out, n, &s, &mo);
		FZ_CHECK(bn == (int)n);
	}
	FZ_CHECK(mo == r->mac_off);
	FZ_CHECK(memcmp(out, want, mo) == 0);
	for (size_t i = mo; i < n; i++)
		FZ_CHECK(out[i] == 0);
	/* and the rebuilt request parses to the same view */
	FZ_CHECK(kl_mikey_parse_req(out, n, &r2) == KL_DROP_NONE);
	FZ_CHECK(r2.len == r->len && r2.mac_off == r->mac_off && r2.ts == r->ts &&
		 r2.csb_id == r->csb_id && r2.key_id == r->key_id && r2.id_len == r->id_len &&
		 r2.ue_len == r->ue_len && r2.group == r->group && r2.number == r->number &&
		 r2.prf == r->prf && r2.id_type == r->id_type && r2.ext_type == r->ext_type &&
		 r2.kind == r->kind && r2.has_key_id == r->has_key_id &&
		 r2.encr_off == r->encr_off && r2.encr_len == r->encr_len);
	FZ_CHECK(memcmp(r2.domain, r->domain, 3) == 0);
	FZ_CHECK(memcmp(r2.rand, r->rand, KL_MIKEY_RAND_LEN) == 0);
	FZ_CHECK(memcmp(r2.id, r->id, r->id_len) == 0);
	FZ_CHECK(!r->ue_len || memcmp(r2.ue, r->ue, r->ue_len) == 0);
	FZ_CHECK(r2.tlv_seen == r->tlv_seen);
	free(out);
	free(want);
}

/* A response built from the view parses back and agrees with the request. */
static void check_resp(const struct kl_mikey_req *r)
{
	uint8_t km[KL_MIKEY_MAX_KEYS][KL_MIKEY_KEY_MAX];
	struct kl_mikey_key keys[KL_MIKEY_MAX_KEYS], got[KL_MIKEY_MAX_KEYS];
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;
	/* PROTOCOL.md section 9: kinds 2 and 5 answer one key, SPI 0 (kind 2: TLV 3 = session;
	 * kind 5: p2 or p4); kind 2 carries its two tokens */
	int session = r->kind == KL_KIND_HM || r->kind == KL_KIND_PROSE;
	unsigned nkeys = session ? 1 : 1 + (r->rand[0] & 1);
	uint8_t tok[2][48];
	struct kl_mikey_tlv extra[2] = { { .type = KL_TLV_TOKEN_REQ, .val = tok[0], .len = 48 },
					 { .type = KL_TLV_TOKEN_PEER, .val = tok[1], .len = 48 } };
	unsigned nextra = r->kind == KL_KIND_HM ? 2 : 0;
	uint64_t now = r->ts ^ 0x00000000DEADBEEFull;
	size_t need, encr = 0;
	uint8_t *buf, *plain;
	int nk;

	for (unsigned i = 0; i < nkeys; i++) {
		for (unsigned j = 0; j < KL_MIKEY_KEY_MAX; j++)
			km[i][j] = (uint8_t)(r->rand[(i * 7 + j) % KL_MIKEY_RAND_LEN] ^ (j * 29 + i));
		keys[i].key = km[i];
		keys[i].key_len = (r->rand[1] >> i) & 1 ? 32 : 16;
		keys[i].key_id = r->kind == KL_KIND_MBMS ? (uint32_t)r->group << 16 | (uint16_t)(r->number + i)
							 : r->key_id + i;
		keys[i].valid_from = r->ts + i * 3600u;
		keys[i].valid_to = keys[i].valid_from + 7200u;
		encr += 4 + keys[i].key_len + 5;
	}
	need = 10 + 10 + 18 + 4 + r->id_len + 4 + 1 + 23 * nkeys + nextra * (3 + 48) + 4 + encr + 1 +
	       KL_MIKEY_MAC_LEN;
	for (unsigned t = 0; t < 2; t++)
		memset(tok[t], 0x70 + t, sizeof(tok[t]));
	/* exactly the message's size is enough, one byte less is not (regression: the builder once
	 * demanded one byte more than it writes) */
	buf = malloc(need);
	FZ_CHECK(buf);
	FZ_CHECK(kl_mikey_build_resp_tlv(buf, need - 1, r, now, r->id, r->id_len, keys, nkeys, extra,
					 nextra, &lay) == -ENOSPC);
	FZ_CHECK(kl_mikey_build_resp_tlv(buf, need, r, now, r->id, r->id_len, keys, nkeys, extra,
					 nextra, &lay) == 0);
	if (nextra) /* a session's response without its tokens is refused */
		FZ_CHECK(kl_mikey_build_resp(buf, need, r, now, r->id, r->id_len, keys, nkeys, &lay) !=
				 0 ||
			 kl_mikey_parse_resp(buf, lay.len, &rs) == KL_DROP_MALFORMED);
	FZ_CHECK(kl_mikey_build_resp_tlv(buf, need, r, now, r->id, r->id_len, keys, nkeys, extra,
					 nextra, &lay) == 0);
	FZ_CHECK(lay.len == need && (size_t)lay.mac_off + KL_MIKEY_MAC_LEN == need);
	FZ_CHECK(lay.encr_len == encr && lay.encr_off + encr + 1 == lay.mac_off);

	FZ_CHECK(kl_mikey_parse_resp(buf, need, &rs) == KL_DROP_NONE);
	FZ_CHECK(rs.msg == buf && rs.len == need && rs.data_type == KL_DT_PSK_RESP);
	FZ_CHECK(rs.prf == r->prf && rs.csb_id == r->csb_id && rs.ts == now);
	FZ_CHECK(rs.rand == buf + OFF_RAND && memcmp(rs.rand, r->rand, KL_MIKEY_RAND_LEN) == 0);
	FZ_CHECK(rs.idr_len == r->id_len && memcmp(rs.idr, r->id, r->id_len) == 0);
	FZ_CHECK(rs.kind == r->kind && rs.nkeys == nkeys);
	FZ_CHECK(rs.encr == buf + lay.encr_off && rs.encr_len == lay.encr_len);
	FZ_CHECK(rs.mac_off == lay.mac_off && rs.mac == buf + lay.mac_off);
	FZ_CHECK(!rs.err_no && !rs.has_detail && !rs.detail);
	for (unsigned i = 0; i < nkeys; i++) {
		FZ_CHECK(fz_inside(rs.tlv3[i], 20, buf, lay.encr_off));
		FZ_CHECK(fz_be32(rs.tlv3[i]) == keys[i].key_id);
		FZ_CHECK(fz_be64(rs.tlv3[i] + 4) == keys[i].valid_from);
		FZ_CHECK(fz_be64(rs.tlv3[i] + 12) == keys[i].valid_to);
	}
	/* the key data as the client sees it after decryption: its own exactly-sized buffer */
	plain = malloc(rs.encr_len);
	FZ_CHECK(plain);
	memcpy(plain, rs.encr, rs.encr_len);
	nk = kl_mikey_parse_keydata(plain, rs.encr_len, got, KL_MIKEY_MAX_KEYS);
	FZ_CHECK(nk == (int)nkeys);
	for (unsigned t = 0; t < nextra; t++) {
		unsigned ti = t ? KL_TLVI_TOKEN_PEER : KL_TLVI_TOKEN_REQ;

		FZ_CHECK(rs.tlv_seen & (1u << ti));
		FZ_CHECK(rs.tlv_len[ti] == 48 && memcmp(rs.tlv[ti], tok[t], 48) == 0);
		FZ_CHECK(rs.tlv[ti] == buf + extra[t].off);
	}
	FZ_CHECK(nextra || !rs.tlv_seen);
	for (unsigned i = 0; i < nkeys; i++) {
		FZ_CHECK(got[i].key_len == keys[i].key_len &&
			 got[i].key_id == (session ? 0 : keys[i].key_id));
		FZ_CHECK(fz_inside(got[i].key, got[i].key_len, plain, rs.encr_len));
		FZ_CHECK(memcmp(got[i].key, keys[i].key, keys[i].key_len) == 0);
	}
	FZ_CHECK(kl_mikey_parse_keydata(plain, rs.encr_len, got, nkeys - 1) == -EBADMSG);
	free(plain);
	free(buf);
}

/* Kinds 4, 6 and 7 answer without a secret (PROTOCOL.md sections 9, 10): HDR, T, RAND, IDr,
 * EXT 250 (kind; kinds 4 and 6: TLV 9 = P, 32 bytes), V. Built from the view, parsed back; the
 * KEMAC form is refused for them. */
static void check_resp_v(const struct kl_mikey_req *r)
{
	uint8_t pv[32], k[32];
	struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = pv, .len = 32 };
	struct kl_mikey_key key = { .key = k, .key_len = 32 };
	unsigned nx = r->kind != KL_KIND_PUSH;
	size_t need = 10 + 10 + 18 + 4 + r->id_len + 4 + 1 + nx * 35 + KL_MIKEY_V_LEN;
	uint64_t now = r->ts + 1;
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;
	uint8_t *buf = malloc(need + 100);

	FZ_CHECK(buf);
	for (unsigned i = 0; i < 32; i++)
		pv[i] = k[i] = (uint8_t)(r->rand[i % KL_MIKEY_RAND_LEN] ^ i);
	FZ_CHECK(kl_mikey_build_resp_v(buf, need - 1, r, now, r->id, r->id_len, &x, nx, &lay) ==
		 -ENOSPC);
	FZ_CHECK(kl_mikey_build_resp_v(buf, need, r, now, r->id, r->id_len, &x, nx, &lay) == 0);
	FZ_CHECK(lay.len == need && (size_t)lay.mac_off + KL_MIKEY_MAC_LEN == need && !lay.encr_len);
	FZ_CHECK(kl_mikey_parse_resp(buf, need, &rs) == KL_DROP_NONE);
	FZ_CHECK(rs.data_type == KL_DT_PSK_RESP && rs.kind == r->kind && !rs.nkeys && !rs.encr);
	FZ_CHECK(rs.prf == r->prf && rs.csb_id == r->csb_id && rs.ts == now);
	FZ_CHECK(memcmp(rs.rand, r->rand, KL_MIKEY_RAND_LEN) == 0);
	FZ_CHECK(rs.idr_len == r->id_len && memcmp(rs.idr, r->id, r->id_len) == 0);
	FZ_CHECK(rs.mac_off == lay.mac_off && rs.mac == buf + lay.mac_off);
	FZ_CHECK(rs.tlv_seen == (nx ? KL_TLV_BIT(X25519) : 0u));
	if (nx)
		FZ_CHECK(rs.tlv[KL_TLVI_X25519] == buf + x.off && rs.tlv_len[KL_TLVI_X25519] == 32 &&
			 memcmp(rs.tlv[KL_TLVI_X25519], pv, 32) == 0);
	/* a public value where none goes (kind 7) or missing (kinds 4, 6) */
	FZ_CHECK(kl_mikey_build_resp_v(buf, need + 100, r, now, r->id, r->id_len, &x, 1 - nx,
				       &lay) == 0);
	FZ_CHECK(kl_mikey_parse_resp(buf, lay.len, &rs) == KL_DROP_MALFORMED);
	/* the KEMAC form, for a kind whose answer carries no secret */
	FZ_CHECK(kl_mikey_build_resp_tlv(buf, need + 100, r, now, r->id, r->id_len, &key, 1, &x, nx,
					 &lay) == 0);
	FZ_CHECK(kl_mikey_parse_resp(buf, lay.len, &rs) == KL_DROP_MALFORMED);
	free(buf);
}

/* An error message built from the view fits in the request's bytes and parses back. */
static void check_err(const struct kl_mikey_req *r, uint8_t err_no)
{
	uint16_t detail = (r->rand[2] & 3) ? fz_be16(r->rand + 3) : 0;
	size_t need = 10 + 10 + 18 + 4 + (detail ? 10 : 0) + KL_MIKEY_V_LEN;
	uint64_t now = ~r->ts;
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;
	struct kl_mikey_req small = *r;
	uint8_t *buf = malloc(r->len);

	FZ_CHECK(buf);
	/* the smallest request is as large as the largest error */
	FZ_CHECK(need <= r->len);
	FZ_CHECK(kl_mikey_build_err(buf, need - 1, r, now, err_no, detail, &lay) == -ENOSPC);
	small.len = (uint16_t)(need - 1);
	FZ_CHECK(kl_mikey_build_err(buf, r->len, &small, now, err_no, detail, &lay) == -ENOSPC);
	FZ_CHECK(kl_mikey_build_err(buf, r->len, r, now, err_no, detail, &lay) == 0);
	FZ_CHECK(lay.len == need && lay.len <= r->len);
	FZ_CHECK(lay.mac_off + KL_MIKEY_MAC_LEN == lay.len && !lay.encr_off && !lay.encr_len);

	FZ_CHECK(kl_mikey_parse_resp(buf, lay.len, &rs) == KL_DROP_NONE);
	FZ_CHECK(rs.msg == buf && rs.len == lay.len && rs.data_type == KL_DT_ERROR);
	FZ_CHECK(rs.prf == r->prf && rs.csb_id == r->csb_id && rs.ts == now);
	FZ_CHECK(rs.rand == buf + OFF_RAND && memcmp(rs.rand, r->rand, KL_MIKEY_RAND_LEN) == 0);
	FZ_CHECK(rs.err_no == err_no);
	FZ_CHECK(rs.has_detail == (detail != 0) && rs.detail == detail);
	FZ_CHECK(!detail || rs.kind == r->kind);
	FZ_CHECK(rs.mac_off == lay.mac_off && rs.mac == buf + lay.mac_off);
	FZ_CHECK(!rs.nkeys && !rs.idr && !rs.idr_len && !rs.encr && !rs.encr_len);
	FZ_CHECK(!rs.has_retry_after && !rs.retry_after_ms);
	/* ERR 12/5 with retry-after (section 6): 5 bytes more, still never larger than the request
	 * (a request of 78 bytes or less cannot have one) */
	{
		uint16_t ms = (uint16_t)(fz_be16(r->rand + 5) | 1);
		int rc = kl_mikey_build_err_retry(buf, r->len, r, now, KL_ERR_UNSPECIFIED, 5, ms, &lay);

		FZ_CHECK(kl_mikey_build_err_retry(buf, r->len, r, now, KL_ERR_UNSPECIFIED, 0, ms,
						  &lay) == -EINVAL);
		if (need + (detail ? 5 : 15) > r->len) {
			FZ_CHECK(rc == -ENOSPC);
		} else {
			FZ_CHECK(rc == 0 && lay.len == 10 + 10 + 18 + 4 + 15 + KL_MIKEY_V_LEN);
			FZ_CHECK(kl_mikey_parse_resp(buf, lay.len, &rs) == KL_DROP_NONE);
			FZ_CHECK(rs.data_type == KL_DT_ERROR && rs.err_no == KL_ERR_UNSPECIFIED);
			FZ_CHECK(rs.has_detail && rs.detail == 5 && rs.kind == r->kind);
			FZ_CHECK(rs.has_retry_after && rs.retry_after_ms == ms);
			FZ_CHECK(rs.mac_off == lay.mac_off && memcmp(rs.rand, r->rand, 16) == 0);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_mikey_req r, again;
	enum kl_drop d = kl_mikey_parse_req(data, size, &r);
	size_t ext;

	FZ_CHECK(drop_from_parser(d) || d == KL_DROP_NONE);
	FZ_CHECK((d == KL_DROP_OVERSIZED) == (size > KL_MIKEY_REQ_MAX));
	if (d != KL_DROP_NONE)
		return 0;
	ext = check_view(data, size, &r);
	/* deterministic, and the length is exact: one byte less is not a request */
	FZ_CHECK(kl_mikey_parse_req(data, size, &again) == KL_DROP_NONE);
	FZ_CHECK(memcmp(&again, &r, offsetof(struct kl_mikey_req, tlv)) == 0);
	for (unsigned i = 0; i < KL_TLVI__COUNT; i++)
		FZ_CHECK(!(r.tlv_seen & (1u << i)) ||
			 (again.tlv[i] == r.tlv[i] && again.tlv_len[i] == r.tlv_len[i]));
	FZ_CHECK(kl_mikey_parse_req(data, size - 1, &again) != KL_DROP_NONE);

	check_rebuild(data, size, ext, &r);
	if (r.kind == KL_KIND_DH || r.kind == KL_KIND_PEERPV || r.kind == KL_KIND_PUSH)
		check_resp_v(&r);
	else
		check_resp(&r);
	check_err(&r, data[size - 1]);
	return 0;
}
