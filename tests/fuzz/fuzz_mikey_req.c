/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the server side of the MIKEY codec (kl_mikey_parse_req).
 *
 * Any input: the parser must return a defined drop reason, never read outside the datagram
 * (ASan: libFuzzer hands over an exactly-sized heap copy) and never hit UB (UBSan).
 * Accepted input: the zero-copy view must be consistent with the bytes (checked against the
 * PROTOCOL.md section 2 layout re-derived here, not against the parser's own helpers), the
 * request must round-trip through kl_mikey_build_req byte for byte except the MAC, and the
 * response / error builders fed with the view must produce messages that kl_mikey_parse_resp
 * accepts and that agree with the request (RAND echo, CSB ID, PRF, kind, keys, detail).
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
	FZ_CHECK(d[r->mac_off - 2] == KL_PT_LAST && d[r->mac_off - 1] == 1);
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
	FZ_CHECK(d[ext] == KL_PT_V && d[ext + 1] == r->ext_type);
	el = fz_be16(d + ext + 2);
	FZ_CHECK(ext + 4 + el + KL_MIKEY_V_LEN == n);
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

		size_t tlv_bytes = 0;

		/* PROTOCOL.md sections 4 and 9: what each kind of EXT 250 takes and needs */
		FZ_CHECK(r->ext_type == KL_EXT_KEYLINE && x[0] == r->kind);
		FZ_CHECK(el >= 1);
		switch (r->kind) {
		case KL_KIND_E2M:
			FZ_CHECK(!(r->tlv_seen & ~(uint32_t)(KL_TLV_BIT(UE_ID) | KL_TLV_BIT(KEY_ID) |
							   KL_TLV_BIT(PADDING))));
			FZ_CHECK(r->tlv_seen & KL_TLV_BIT(UE_ID));
			break;
		case KL_KIND_HM:
			FZ_CHECK(!(r->tlv_seen & ~(uint32_t)(KL_TLV_BIT(PEER_UE) |
							   KL_TLV_BIT(PEER_SERVER) |
							   KL_TLV_BIT(PADDING))));
			FZ_CHECK((r->tlv_seen & KL_TLV_BIT(PEER_UE)) &&
				 (r->tlv_seen & KL_TLV_BIT(PEER_SERVER)));
			/* IDUEa == IDUEb is malformed */
			FZ_CHECK(r->tlv_len[KL_TLVI_PEER_UE] != r->id_len ||
				 memcmp(r->tlv[KL_TLVI_PEER_UE], r->id, r->id_len) != 0);
			break;
		case KL_KIND_KSTAR:
			FZ_CHECK(!(r->tlv_seen & ~(uint32_t)(KL_TLV_BIT(PEER_SERVER) |
							   KL_TLV_BIT(PADDING))));
			FZ_CHECK(r->tlv_seen & KL_TLV_BIT(PEER_SERVER));
			break;
		default:
			FZ_CHECK(0); /* no other kind is served */
		}
		for (unsigned i = 0; i < KL_TLVI__COUNT; i++) {
			if (!(r->tlv_seen & (1u << i)))
				continue;
			FZ_CHECK(fz_inside(r->tlv[i], r->tlv_len[i], x + 1, el - 1));
			FZ_CHECK(fz_be16(r->tlv[i] - 2) == r->tlv_len[i]);
			if (i == KL_TLVI_UE_ID || i == KL_TLVI_PEER_UE || i == KL_TLVI_PEER_SERVER)
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
	uint16_t mo = 0;
	int bn;

	FZ_CHECK(out && want);
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
		/* the TLVs in the builder's order (1, 2, 5, 6, 255), padding as zeros: PROTOCOL.md
		 * fixes no order, and padding's bytes are the client's */
		static const unsigned order[] = { KL_TLVI_UE_ID, KL_TLVI_KEY_ID, KL_TLVI_PEER_UE,
						  KL_TLVI_PEER_SERVER, KL_TLVI_PADDING };
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
	FZ_CHECK(kl_mikey_build_req(out, n - 1, &s, &mo) == -ENOSPC);
	bn = kl_mikey_build_req(out, n, &s, &mo);
	FZ_CHECK(bn == (int)n);
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
		 r2.kind == r->kind && r2.has_key_id == r->has_key_id);
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
	int session = r->kind == KL_KIND_HM; /* PROTOCOL.md section 9: TLV 3 = session, SPI 0 */
	unsigned nkeys = session ? 1 : 1 + (r->rand[0] & 1);
	uint8_t tok[2][48];
	struct kl_mikey_tlv extra[2] = { { .type = KL_TLV_TOKEN_REQ, .val = tok[0], .len = 48 },
					 { .type = KL_TLV_TOKEN_PEER, .val = tok[1], .len = 48 } };
	unsigned nextra = session ? 2 : 0;
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
	if (session) /* a session's response without its tokens is refused */
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
	check_resp(&r);
	check_err(&r, data[size - 1]);
	return 0;
}
