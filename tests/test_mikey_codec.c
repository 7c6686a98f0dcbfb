/* SPDX-License-Identifier: BSD-3-Clause */
/* MIKEY codec: layouts of PROTOCOL.md byte for byte, every drop reason of the parser, truncation
 * at every offset, and builder bounds. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kl_mikey.h"

static const uint8_t RAND[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static int mbms_req(uint8_t *buf, size_t cap, uint16_t *mac_off)
{
	struct kl_mikey_req_spec s = { .rand = RAND, .id = (const uint8_t *)"user1@ims.mnc001.mcc001.3gppnetwork.org",
				       .ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0xCAFEBABE, .id_len = 39,
				       .group = 0x0102, .number = 0, .domain = { 0x00, 0xF1, 0x10 },
				       .prf = 0, .id_type = 0, .kind = KL_KIND_MBMS };

	return kl_mikey_build_req(buf, cap, &s, mac_off);
}

static int e2m_req(uint8_t *buf, size_t cap, uint16_t *mac_off, int with_key_id)
{
	struct kl_mikey_req_spec s = { .rand = RAND, .id = (const uint8_t *)"emse-7.corp.example", .id_len = 19,
				       .ue = (const uint8_t *)"001010123456789", .ue_len = 15, .ts = 5,
				       .csb_id = 7, .key_id = 0x11223344, .has_key_id = (uint8_t)with_key_id,
				       .prf = 1, .id_type = 1, .kind = KL_KIND_E2M };

	return kl_mikey_build_req(buf, cap, &s, mac_off);
}

static void test_request_layout(void **state)
{
	uint8_t b[600];
	uint16_t mo;
	int n = mbms_req(b, sizeof(b), &mo);
	struct kl_mikey_req r;

	(void)state;
	assert_int_equal(n, 10 + 10 + 18 + 4 + 39 + 14 + 22);
	/* HDR: version 1, data type 0, next 5 (T), V 0 / PRF 0, CSB ID, #CS 0, map type 1 */
	assert_memory_equal(b, "\x01\x00\x05\x00\xca\xfe\xba\xbe\x00\x01", 10);
	/* T: next 11 (RAND), TS type 0 */
	assert_memory_equal(b + 10, "\x0b\x00\xe7\xa1\xb2\xc3\xd4\xe5\xf6\x07", 10);
	/* RAND: next 6 (ID), length 16 */
	assert_memory_equal(b + 20, "\x06\x10", 2);
	/* IDi: next 21 (EXT), type 0 NAI, length 39 */
	assert_memory_equal(b + 38, "\x15\x00\x00\x27", 4);
	/* EXT: next 9 (V), type 2 Key ID, length 10, Key ID type 1, length 7, domain, MSK ID */
	assert_memory_equal(b + 81, "\x09\x02\x00\x0a\x01\x00\x07\x00\xf1\x10\x01\x02\x00\x00", 14);
	/* V: next 0, auth alg 1 */
	assert_memory_equal(b + 95, "\x00\x01", 2);
	assert_int_equal(mo, 97);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(r.csb_id, 0xCAFEBABE);
	assert_int_equal(r.ts, 0xE7A1B2C3D4E5F607ull);
	assert_memory_equal(r.rand, RAND, 16);
	assert_int_equal(r.id_len, 39);
	assert_int_equal(r.kind, KL_KIND_MBMS);
	assert_int_equal(r.group, 0x0102);
	assert_int_equal(r.number, 0);
	assert_int_equal(r.mac_off, 97);
	assert_ptr_equal(r.mac, b + 97);

	n = e2m_req(b, sizeof(b), &mo, 1);
	assert_true(n > 0);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(r.kind, KL_KIND_E2M);
	assert_int_equal(r.prf, 1);
	assert_int_equal(r.id_type, 1);
	assert_int_equal(r.ue_len, 15);
	assert_memory_equal(r.ue, "001010123456789", 15);
	assert_true(r.has_key_id);
	assert_int_equal(r.key_id, 0x11223344);
	n = e2m_req(b, sizeof(b), &mo, 0);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_false(r.has_key_id);
}

static void test_truncation(void **state)
{
	uint8_t b[600], c[600];
	uint16_t mo;
	struct kl_mikey_req r;

	(void)state;
	for (int k = 0; k < 3; k++) {
		int n = k == 0 ? mbms_req(b, sizeof(b), &mo) : e2m_req(b, sizeof(b), &mo, k == 1);

		for (int cut = 0; cut < n; cut++) {
			memcpy(c, b, (size_t)cut);
			assert_int_not_equal(kl_mikey_parse_req(c, (size_t)cut, &r), KL_DROP_NONE);
		}
		/* one byte too many is as bad as one too few */
		b[n] = 0;
		assert_int_equal(kl_mikey_parse_req(b, (size_t)n + 1, &r), KL_DROP_MALFORMED);
	}
}

static enum kl_drop mutate(int off, uint8_t val)
{
	uint8_t b[600];
	uint16_t mo;
	int n = mbms_req(b, sizeof(b), &mo);
	struct kl_mikey_req r;

	b[off] = val;
	return kl_mikey_parse_req(b, (size_t)n, &r);
}

static void test_drop_reasons(void **state)
{
	uint8_t b[600];
	uint16_t mo;
	struct kl_mikey_req r;
	int n;

	(void)state;
	assert_int_equal(mutate(0, 2), KL_DROP_UNSUPPORTED_VERSION);
	assert_int_equal(mutate(1, 1), KL_DROP_UNSUPPORTED_TYPE);
	assert_int_equal(mutate(2, 11), KL_DROP_MALFORMED);   /* HDR next not T */
	assert_int_equal(mutate(3, 0x80), KL_DROP_MALFORMED); /* V bit */
	assert_int_equal(mutate(3, 2), KL_DROP_UNSUPPORTED_PRF);
	assert_int_equal(mutate(8, 1), KL_DROP_MALFORMED); /* #CS */
	assert_int_equal(mutate(9, 0), KL_DROP_MALFORMED); /* map type */
	assert_int_equal(mutate(11, 1), KL_DROP_UNSUPPORTED_TYPE); /* TS type */
	assert_int_equal(mutate(21, 15), KL_DROP_MALFORMED);	     /* RAND length */
	assert_int_equal(mutate(39, 2), KL_DROP_UNSUPPORTED_TYPE); /* ID type */
	assert_int_equal(mutate(41, 0), KL_DROP_MALFORMED);	     /* ID length 0 */
	assert_int_equal(mutate(42, 0xFF), KL_DROP_MALFORMED);     /* invalid UTF-8 in IDi */
	assert_int_equal(mutate(82, 3), KL_DROP_UNSUPPORTED_TYPE); /* EXT type */
	assert_int_equal(mutate(85, 2), KL_DROP_UNSUPPORTED_TYPE); /* Key ID type not MSK */
	assert_int_equal(mutate(87, 6), KL_DROP_MALFORMED);	     /* Key ID length */
	assert_int_equal(mutate(81, 1), KL_DROP_MALFORMED);	     /* EXT next not V */
	assert_int_equal(mutate(95, 1), KL_DROP_MALFORMED);	     /* V next not last */
	assert_int_equal(mutate(96, 2), KL_DROP_UNSUPPORTED_ALG);
	/* oversized */
	memset(b, 0, sizeof(b));
	assert_int_equal(kl_mikey_parse_req(b, 513, &r), KL_DROP_OVERSIZED);
	assert_int_equal(kl_mikey_parse_req(NULL, 10, &r), KL_DROP_MALFORMED);
	/* E2M: unknown TLV, duplicate key id, missing UE identity, unknown kind */
	n = e2m_req(b, sizeof(b), &mo, 1);
	{
		size_t ext = 10 + 10 + 18 + 4 + 19; /* EXT payload offset */

		b[ext + 5 + 3 + 15] = 9; /* key id TLV type -> unknown */
		assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_MALFORMED);
		b[ext + 5 + 3 + 15] = KL_TLV_UE_ID; /* a second UE identity */
		assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_MALFORMED);
		b[ext + 5 + 3 + 15] = KL_TLV_KEY_ID;
		b[ext + 4] = KL_KIND_HM; /* a kind that takes neither TLV */
		assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_MALFORMED);
		b[ext + 4] = KL_KIND__COUNT;
		assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_UNSUPPORTED_TYPE);
	}
	for (unsigned i = 0; i <= KL_DROP__COUNT; i++)
		assert_non_null(kl_drop_name(i));
	assert_string_equal(kl_drop_name(KL_DROP_BAD_MAC), "bad_mac");
}

/* An E2M request (EXT 250, kind) with TLVs given raw: what the builder cannot make. */
static size_t raw_ext_req(uint8_t *b, uint8_t kind, const uint8_t *tlvs, size_t tlen)
{
	uint16_t mo;
	int n = e2m_req(b, 600, &mo, 0);
	size_t ext = 10 + 10 + 18 + 4 + 19, o;

	assert_true(n > 0);
	b[ext + 4] = kind;
	memcpy(b + ext + 5, tlvs, tlen);
	b[ext + 2] = (uint8_t)((1 + tlen) >> 8);
	b[ext + 3] = (uint8_t)(1 + tlen);
	o = ext + 5 + tlen;
	b[o] = KL_PT_LAST;
	b[o + 1] = 1;
	memset(b + o + 2, 0, KL_MIKEY_MAC_LEN);
	return o + 2 + KL_MIKEY_MAC_LEN;
}

/* The TLV registry of PROTOCOL.md section 4: an unknown type, a repeated TLV, one the kind does
 * not take, or one outside its length bounds is malformed; padding is taken by every kind. */
static void test_tlv_registry(void **state)
{
	static const uint8_t ue[] = { KL_TLV_UE_ID, 0, 3, '0', '0', '1' };
	uint8_t b[600], t[200];
	struct kl_mikey_req r;
	size_t n;

	(void)state;
	/* padding after the UE identity, and before it: taken, its bytes covered but unused */
	memcpy(t, ue, sizeof(ue));
	memcpy(t + sizeof(ue), "\xff\x00\x0a", 3);
	memset(t + sizeof(ue) + 3, 0, 10);
	n = raw_ext_req(b, KL_KIND_E2M, t, sizeof(ue) + 13);
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
	assert_int_equal(r.tlv_seen, KL_TLV_BIT(UE_ID) | KL_TLV_BIT(PADDING));
	assert_int_equal(r.tlv_len[KL_TLVI_PADDING], 10);
	assert_int_equal(r.ue_len, 3);
	assert_memory_equal(r.ue, "001", 3);
	memcpy(t, "\xff\x00\x00", 3); /* empty padding first */
	memcpy(t + 3, ue, sizeof(ue));
	n = raw_ext_req(b, KL_KIND_E2M, t, 3 + sizeof(ue));
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
	assert_int_equal(r.tlv_len[KL_TLVI_PADDING], 0);
	/* padding twice */
	memcpy(t + 3 + sizeof(ue), "\xff\x00\x00", 3);
	n = raw_ext_req(b, KL_KIND_E2M, t, 6 + sizeof(ue));
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	/* a type no registry entry has (14), and one the registry has but E2M does not take: every
	 * registry TLV other than 1, 2 and 255 */
	for (unsigned type = 3; type < 256; type++) {
		memcpy(t, ue, sizeof(ue));
		t[sizeof(ue)] = (uint8_t)type;
		t[sizeof(ue) + 1] = 0;
		t[sizeof(ue) + 2] = 1;
		t[sizeof(ue) + 3] = 1;
		n = raw_ext_req(b, KL_KIND_E2M, t, sizeof(ue) + 4);
		if (type != KL_TLV_PADDING)
			assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
		else
			assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
	}
	/* length bounds: a key identifier of 3 or 5 bytes, an empty UE identity */
	for (unsigned l = 3; l <= 5; l += 2) {
		memcpy(t, ue, sizeof(ue));
		t[sizeof(ue)] = KL_TLV_KEY_ID;
		t[sizeof(ue) + 1] = 0;
		t[sizeof(ue) + 2] = (uint8_t)l;
		memset(t + sizeof(ue) + 3, 7, l);
		n = raw_ext_req(b, KL_KIND_E2M, t, sizeof(ue) + 3 + l);
		assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	}
	n = raw_ext_req(b, KL_KIND_E2M, (const uint8_t *)"\x01\x00\x00", 3);
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	/* the UE identity is required; kinds this server does not serve are unsupported */
	n = raw_ext_req(b, KL_KIND_E2M, (const uint8_t *)"\xff\x00\x00", 3);
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	for (unsigned k = KL_KIND__COUNT; k < 256; k++) {
		n = raw_ext_req(b, (uint8_t)k, ue, sizeof(ue));
		assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_UNSUPPORTED_TYPE);
	}
	n = raw_ext_req(b, KL_KIND_MBMS, ue, sizeof(ue)); /* MBMS is EXT type 2, never 250 */
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_UNSUPPORTED_TYPE);
	for (unsigned k = 0; k <= KL_KIND__COUNT; k++)
		assert_non_null(kl_kind_name(k));
	assert_string_equal(kl_kind_name(KL_KIND_E2M), "e2m");
}

static void test_response_and_error(void **state)
{
	uint8_t b[600], q[600], k1[16], k2[16], plain[128];
	uint16_t mo;
	int n = mbms_req(q, sizeof(q), &mo), nk;
	struct kl_mikey_req r;
	struct kl_mikey_key keys[2] = { { .key = k1, .valid_from = 10, .valid_to = 20, .key_id = 0x01020001, .key_len = 16 },
					{ .key = k2, .valid_from = 20, .valid_to = 30, .key_id = 0x01020002, .key_len = 16 } };
	struct kl_mikey_key got[2];
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;

	(void)state;
	memset(k1, 0x11, 16);
	memset(k2, 0x22, 16);
	assert_int_equal(kl_mikey_parse_req(q, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(kl_mikey_build_resp(b, sizeof(b), &r, 99, (const uint8_t *)"keyline.example", 15, keys, 2, &lay), 0);
	assert_true(lay.len <= 3 * r.len);
	assert_int_equal(lay.encr_len, 2 * 25);
	/* HDR of a response: data type 1, same PRF and CSB ID */
	assert_memory_equal(b, "\x01\x01\x05\x00\xca\xfe\xba\xbe\x00\x01", 10);
	assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
	assert_int_equal(rs.data_type, KL_DT_PSK_RESP);
	assert_int_equal(rs.nkeys, 2);
	assert_int_equal(rs.ts, 99);
	assert_memory_equal(rs.rand, RAND, 16);
	assert_int_equal(rs.mac_off, lay.mac_off);
	assert_ptr_equal(rs.encr, b + lay.encr_off);
	assert_int_equal(kl_be32(rs.tlv3[1]), 0x01020002);
	assert_int_equal(kl_be64(rs.tlv3[1] + 12), 30);
	memcpy(plain, rs.encr, rs.encr_len);
	nk = kl_mikey_parse_keydata(plain, rs.encr_len, got, 2);
	assert_int_equal(nk, 2);
	assert_memory_equal(got[1].key, k2, 16);
	assert_int_equal(got[0].key_id, 0x01020001);
	assert_int_equal(kl_mikey_parse_keydata(plain, rs.encr_len - 1, got, 2), -EBADMSG);
	assert_int_equal(kl_mikey_parse_keydata(plain, rs.encr_len, got, 1), -EBADMSG);
	for (unsigned cut = 0; cut < lay.len; cut++)
		assert_int_not_equal(kl_mikey_parse_resp(b, cut, &rs), KL_DROP_NONE);
	assert_int_equal(kl_mikey_build_resp(b, lay.len - 1, &r, 99, (const uint8_t *)"k", 1, keys, 3, &lay), -EINVAL);
	assert_int_equal(kl_mikey_build_resp(b, 50, &r, 99, (const uint8_t *)"k", 1, keys, 2, &lay), -ENOSPC);
	/* an exact fit is enough, one byte less is not (found by fuzzing: the size was one over) */
	{
		struct kl_mikey_layout l2;
		uint16_t exact;

		assert_int_equal(kl_mikey_build_resp(b, sizeof(b), &r, 99, (const uint8_t *)"k", 1, keys, 2, &l2), 0);
		exact = l2.len;
		assert_int_equal(kl_mikey_build_resp(b, exact, &r, 99, (const uint8_t *)"k", 1, keys, 2, &l2), 0);
		assert_int_equal(kl_mikey_build_resp(b, exact - 1u, &r, 99, (const uint8_t *)"k", 1, keys, 2, &l2), -ENOSPC);
		assert_int_equal(kl_mikey_build_err(b, sizeof(b), &r, 77, 1, 2, &l2), 0);
		exact = l2.len;
		assert_int_equal(kl_mikey_build_err(b, exact, &r, 77, 1, 2, &l2), 0);
		assert_int_equal(kl_mikey_build_err(b, exact - 1u, &r, 77, 1, 2, &l2), -ENOSPC);
	}

	/* errors: with and without detail, never larger than the request */
	for (uint16_t detail = 0; detail < 4; detail++) {
		assert_int_equal(kl_mikey_build_err(b, sizeof(b), &r, 77, detail ? KL_ERR_UNSPECIFIED : KL_ERR_INVALID_TS, detail, &lay), 0);
		assert_true(lay.len <= r.len);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
		assert_int_equal(rs.data_type, KL_DT_ERROR);
		assert_int_equal(rs.err_no, detail ? KL_ERR_UNSPECIFIED : KL_ERR_INVALID_TS);
		assert_int_equal(rs.has_detail, detail != 0);
		assert_int_equal(rs.detail, detail);
		assert_int_equal(rs.mac_off, lay.len - 20);
		for (unsigned cut = 0; cut < lay.len; cut++)
			assert_int_not_equal(kl_mikey_parse_resp(b, cut, &rs), KL_DROP_NONE);
	}
	r.len = 60; /* an error must fit in the request's bytes */
	assert_int_equal(kl_mikey_build_err(b, sizeof(b), &r, 77, 1, 0, &lay), -ENOSPC);
}

/* ---- kinds 4-7 (PROTOCOL.md sections 9 and 10) ------------------------------------------------ */

/* What each kind's request takes and needs, written from PROTOCOL.md (not from the codec's
 * table): kind 4 TLV 5, 6; kind 5 TLV 5, 6, 11, 12; kind 6 TLV 5; kind 7 TLV 13, 5, 12; TLV 255
 * (padding) "any kind". */
struct kind_case {
	uint8_t kind;
	const char *requester;
	unsigned ntlv;
	struct {
		uint8_t type;
		const char *val;
		uint16_t len;
	} tlv[4];
};

static const uint8_t P1[16] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
				0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };

static const struct kind_case KINDS[] = {
	{ KL_KIND_DH, "ue-b@ims.example", 2,
	  { { 5, "ue-a@ims.example", 16 }, { 6, "vlr-a.example", 13 } } },
	{ KL_KIND_PROSE, "ue1@prose.example", 4,
	  { { 5, "ue2@prose.example", 17 }, { 6, "mme2.example", 12 }, { 11, (const char *)P1, 16 },
	    { 12, "\x01", 1 } } },
	{ KL_KIND_PEERPV, "vlr-b.example", 1, { { 5, "ue-a@ims.example", 16 } } },
	{ KL_KIND_PUSH, "mme1.example", 3,
	  { { 13, "ue1@prose.example", 17 }, { 5, "ue2@prose.example", 17 }, { 12, "\x02", 1 } } },
};

/* Kind 7's KEMAC as PROTOCOL.md section 10 lays it out: next 0, encr alg 1 (AES-CM-128), encr
 * data length 41, one Key data sub-payload (next 0, type/KV 0x21, key length 32, p2, SPI length
 * 4, SPI 0), MAC alg 1, MAC. Encryption does not change its length, so clear bytes do here. */
static size_t push_kemac(uint8_t *k)
{
	size_t o = 0;

	k[o++] = KL_PT_LAST;
	k[o++] = 1;
	k[o++] = 0;
	k[o++] = 41;
	k[o++] = KL_PT_LAST;
	k[o++] = 0x21;
	k[o++] = 0;
	k[o++] = 32;
	memset(k + o, 0x5a, 32);
	o += 32;
	k[o++] = 4;
	memset(k + o, 0, 4);
	o += 4;
	k[o++] = 1;
	memset(k + o, 0xcc, KL_MIKEY_MAC_LEN);
	return o + KL_MIKEY_MAC_LEN;
}

/* A request laid out by hand from PROTOCOL.md section 2: HDR, T, RAND, IDi, EXT 250 (kind ||
 * tlvs), then V, or the KEMAC given (EXT next 1). */
static size_t raw_req(uint8_t *b, const char *id, uint8_t kind, const uint8_t *tlvs, size_t tlen,
		      const uint8_t *kemac, size_t klen)
{
	size_t o = 0, il = strlen(id);

	memcpy(b, "\x01\x00\x05\x00\x0a\x0b\x0c\x0d\x00\x01", 10);
	memcpy(b + 10, "\x0b\x00\xe7\xa1\xb2\xc3\xd4\xe5\xf6\x07", 10);
	b[20] = KL_PT_ID;
	b[21] = 16;
	memcpy(b + 22, RAND, 16);
	o = 38;
	b[o++] = KL_PT_GENEXT;
	b[o++] = 0;
	b[o++] = (uint8_t)(il >> 8);
	b[o++] = (uint8_t)il;
	memcpy(b + o, id, il);
	o += il;
	b[o++] = kemac ? KL_PT_KEMAC : KL_PT_V;
	b[o++] = KL_EXT_KEYLINE;
	b[o++] = (uint8_t)((1 + tlen) >> 8);
	b[o++] = (uint8_t)(1 + tlen);
	b[o++] = kind;
	memcpy(b + o, tlvs, tlen);
	o += tlen;
	if (kemac) {
		memcpy(b + o, kemac, klen);
		return o + klen;
	}
	b[o++] = KL_PT_LAST;
	b[o++] = 1;
	memset(b + o, 0xcc, KL_MIKEY_MAC_LEN);
	return o + KL_MIKEY_MAC_LEN;
}

static size_t put_raw_tlv(uint8_t *t, uint8_t type, const void *v, uint16_t l)
{
	t[0] = type;
	t[1] = (uint8_t)(l >> 8);
	t[2] = (uint8_t)l;
	memcpy(t + 3, v, l);
	return 3 + (size_t)l;
}

/* The case's TLVs, leaving out the one at index skip (-1: none) and writing the one at index
 * dup twice (-1: none), then an extra TLV when extra_len >= 0. */
static size_t case_tlvs(uint8_t *t, const struct kind_case *c, int skip, int dup, int extra_type,
			const void *extra, int extra_len)
{
	size_t o = 0;

	for (unsigned i = 0; i < c->ntlv; i++) {
		if ((int)i == skip)
			continue;
		for (int k = 0; k < ((int)i == dup ? 2 : 1); k++)
			o += put_raw_tlv(t + o, c->tlv[i].type, c->tlv[i].val, c->tlv[i].len);
	}
	if (extra_len >= 0)
		o += put_raw_tlv(t + o, (uint8_t)extra_type, extra, (uint16_t)extra_len);
	return o;
}

static enum kl_drop parse_case(const struct kind_case *c, const uint8_t *tlvs, size_t tlen,
			       struct kl_mikey_req *r)
{
	static uint8_t b[1200];
	uint8_t k[100];
	size_t klen = push_kemac(k);
	size_t n = raw_req(b, c->requester, c->kind, tlvs, tlen, c->kind == KL_KIND_PUSH ? k : NULL,
			   klen);

	return kl_mikey_parse_req(b, n, r);
}

/* The case's request as it stands, parsed. */
static enum kl_drop case_drop(const struct kind_case *c, struct kl_mikey_req *r)
{
	uint8_t t[800];

	return parse_case(c, t, case_tlvs(t, c, -1, -1, 0, NULL, -1), r);
}

static int spec_takes(uint8_t kind, unsigned type)
{
	switch (kind) {
	case KL_KIND_DH:
		return type == 5 || type == 6 || type == 255;
	case KL_KIND_PROSE:
		return type == 5 || type == 6 || type == 11 || type == 12 || type == 255;
	case KL_KIND_PEERPV:
		return type == 5 || type == 255;
	case KL_KIND_PUSH:
		return type == 13 || type == 5 || type == 12 || type == 255;
	}
	return 0;
}

/* A value of the length the registry gives each TLV type (section 4), so that only "does the
 * kind take it" decides. */
static int registry_len(unsigned type)
{
	switch (type) {
	case 1: case 5: case 6: case 13: return 3; /* identities: "x.y" */
	case 2: return 4;
	case 3: return 20;
	case 4: case 10: return 2;
	case 7: case 8: return 10;
	case 9: return 32;
	case 11: return 16;
	case 12: return 1;
	case 255: return 0;
	}
	return 1; /* no such type: any length */
}

/* Every request of kinds 4-7 parses to its fields; each malformed variant section 4, 9 or 10
 * names is dropped as malformed, kinds past 7 as unsupported. */
static void test_kinds_4_7_tlvs(void **state)
{
	uint8_t t[800];
	static const uint8_t val[32] = "x.y\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
				       "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01";
	struct kl_mikey_req r;
	size_t n;

	(void)state;
	for (unsigned k = 0; k < sizeof(KINDS) / sizeof(KINDS[0]); k++) {
		const struct kind_case *c = &KINDS[k];

		/* as written: every TLV where the view says */
		n = case_tlvs(t, c, -1, -1, 0, NULL, -1);
		assert_int_equal(parse_case(c, t, n, &r), KL_DROP_NONE);
		assert_int_equal(r.kind, c->kind);
		assert_int_equal(r.id_len, strlen(c->requester));
		assert_memory_equal(r.id, c->requester, r.id_len);
		for (unsigned i = 0; i < c->ntlv; i++) {
			unsigned ti = c->tlv[i].type == 5 ? KL_TLVI_PEER_UE
				      : c->tlv[i].type == 6 ? KL_TLVI_PEER_SERVER
				      : c->tlv[i].type == 11 ? KL_TLVI_CONTRIB
				      : c->tlv[i].type == 12 ? KL_TLVI_ROLE
							     : KL_TLVI_SOURCE_UE;

			assert_true(r.tlv_seen & (1u << ti));
			assert_int_equal(r.tlv_len[ti], c->tlv[i].len);
			assert_memory_equal(r.tlv[ti], c->tlv[i].val, c->tlv[i].len);
		}
		/* padding: every kind takes it (section 4: "TLV 255 (any kind)") */
		n = case_tlvs(t, c, -1, -1, 255, val, 7);
		assert_int_equal(parse_case(c, t, n, &r), KL_DROP_NONE);
		assert_int_equal(r.tlv_len[KL_TLVI_PADDING], 7);
		/* a required TLV missing */
		for (unsigned i = 0; i < c->ntlv; i++) {
			n = case_tlvs(t, c, (int)i, -1, 0, NULL, -1);
			assert_int_equal(parse_case(c, t, n, &r), KL_DROP_MALFORMED);
		}
		/* a TLV repeated, padding too */
		for (unsigned i = 0; i < c->ntlv; i++) {
			n = case_tlvs(t, c, -1, (int)i, 0, NULL, -1);
			assert_int_equal(parse_case(c, t, n, &r), KL_DROP_MALFORMED);
		}
		n = case_tlvs(t, c, -1, -1, 255, val, 0);
		n += put_raw_tlv(t + n, 255, val, 0);
		assert_int_equal(parse_case(c, t, n, &r), KL_DROP_MALFORMED);
		/* every type the kind does not take, known to the registry or not, at a length the
		 * registry would accept */
		for (unsigned type = 0; type < 256; type++) {
			if (spec_takes(c->kind, type))
				continue;
			n = case_tlvs(t, c, -1, -1, (int)type, val, registry_len(type));
			assert_int_equal(parse_case(c, t, n, &r), KL_DROP_MALFORMED);
		}
		/* the kind byte out of the profile: unsupported, not malformed */
		n = case_tlvs(t, c, -1, -1, 0, NULL, -1);
		{
			struct kind_case other = *c;

			other.kind = KL_KIND__COUNT;
			assert_int_equal(parse_case(&other, t, n, &r), KL_DROP_UNSUPPORTED_TYPE);
		}
	}
}

/* Lengths and values of the new TLVs (section 4: p 16 bytes, role 1 byte of 1 or 2, identities
 * 1..128 bytes of UTF-8) and the rules between two identities (sections 9, 10). */
static void test_kinds_4_7_values(void **state)
{
	const struct kind_case *dh = &KINDS[0], *prose = &KINDS[1], *pv = &KINDS[2],
			       *push = &KINDS[3];
	uint8_t t[800], big[KL_MIKEY_ID_MAX + 1];
	struct kl_mikey_req r;
	struct kind_case c;

	(void)state;
	/* p of 15 and 17 bytes, role of 0 and 2 bytes, role 0 and 3 */
	for (int l = 15; l <= 17; l += 2) {
		c = *prose;
		c.tlv[2].len = (uint16_t)l;
		c.tlv[2].val = (const char *)t + 600; /* any bytes */
		memset(t + 600, 0x33, 32);
		assert_int_equal(case_drop(&c, &r), KL_DROP_MALFORMED);
	}
	for (int k = 0; k < 2; k++) {
		const struct kind_case *base = k ? push : prose;
		unsigned ri = k ? 2 : 3;

		for (int l = 0; l <= 2; l += 2) {
			c = *base;
			c.tlv[ri].val = "\x01\x01";
			c.tlv[ri].len = (uint16_t)l;
			assert_int_equal(case_drop(&c, &r), KL_DROP_MALFORMED);
		}
		for (unsigned role = 0; role < 256; role++) {
			char v[1] = { (char)role };

			c = *base;
			c.tlv[ri].val = v;
			assert_int_equal(case_drop(&c, &r),
					 role == 1 || role == 2 ? KL_DROP_NONE : KL_DROP_MALFORMED);
			if (role == 1 || role == 2)
				assert_int_equal(r.tlv[KL_TLVI_ROLE][0], role);
		}
	}
	/* the peer UE is the requester (kinds 4 and 5: IDUEa == IDUEb); the pushed UE is its
	 * peer (kind 7); a one-byte difference is another UE */
	for (int k = 0; k < 2; k++) {
		c = k ? *prose : *dh;
		c.tlv[0].val = c.requester;
		c.tlv[0].len = (uint16_t)strlen(c.requester);
		assert_int_equal(case_drop(&c, &r), KL_DROP_MALFORMED);
		c.tlv[0].len--;
		assert_int_equal(case_drop(&c, &r), KL_DROP_NONE);
	}
	c = *push;
	c.tlv[1].val = c.tlv[0].val;
	assert_int_equal(case_drop(&c, &r), KL_DROP_MALFORMED);
	c.tlv[1].len--;
	assert_int_equal(case_drop(&c, &r), KL_DROP_NONE);
	/* kind 6 names a UE, not the asking server: the same bytes are not a rule there */
	c = *pv;
	c.tlv[0].val = c.requester;
	c.tlv[0].len = (uint16_t)strlen(c.requester);
	assert_int_equal(case_drop(&c, &r), KL_DROP_NONE);
	/* identities: empty, 129 bytes, invalid UTF-8 (a surrogate) in TLV 5, 6 and 13 */
	memset(big, 'u', sizeof(big));
	for (unsigned k = 0; k < sizeof(KINDS) / sizeof(KINDS[0]); k++) {
		for (unsigned i = 0; i < KINDS[k].ntlv; i++) {
			uint8_t type = KINDS[k].tlv[i].type;

			if (type != 5 && type != 6 && type != 13)
				continue;
			for (int v = 0; v < 4; v++) {
				c = KINDS[k];
				c.tlv[i].val = v == 3 ? "a\xed\xa0\x80" : (const char *)big;
				c.tlv[i].len = v == 0 ? 0 : v == 1 ? KL_MIKEY_ID_MAX + 1
						 : v == 2 ? KL_MIKEY_ID_MAX : 4;
				assert_int_equal(case_drop(&c, &r),
						 v == 2 ? KL_DROP_NONE : KL_DROP_MALFORMED);
			}
		}
	}
}

/* Kind 7 ends with a KEMAC and no V; every other kind ends with V and never a KEMAC. */
static void test_push_kemac(void **state)
{
	const struct kind_case *push = &KINDS[3];
	uint8_t b[800], t[400], k[100], m[800];
	size_t n, tl, kl = push_kemac(k), ext;
	struct kl_mikey_req r;

	(void)state;
	tl = case_tlvs(t, push, -1, -1, 0, NULL, -1);
	n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, k, kl);
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
	ext = 42 + strlen(push->requester);
	assert_int_equal(r.encr_off, ext + 4 + 1 + tl + 4);
	assert_int_equal(r.encr_len, 41);
	assert_int_equal(r.mac_off, n - KL_MIKEY_MAC_LEN);
	assert_ptr_equal(r.mac, b + n - KL_MIKEY_MAC_LEN);
	assert_int_equal(b[r.mac_off - 1], 1);
	/* truncated anywhere, or a byte after the MAC */
	for (size_t cut = 0; cut < n; cut++)
		assert_int_not_equal(kl_mikey_parse_req(b, cut, &r), KL_DROP_NONE);
	memcpy(m, b, n);
	m[n] = 0;
	assert_int_equal(kl_mikey_parse_req(m, n + 1, &r), KL_DROP_MALFORMED);
	/* kind 7 with V instead of its KEMAC (EXT next 9, V after the EXT) */
	n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, NULL, 0);
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	/* a KEMAC where a V belongs, in every other kind (and E2M) */
	for (unsigned c = 0; c < 3; c++) {
		uint8_t t2[400];
		size_t l2 = case_tlvs(t2, &KINDS[c], -1, -1, 0, NULL, -1);

		n = raw_req(b, KINDS[c].requester, KINDS[c].kind, t2, l2, k, kl);
		assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	}
	n = raw_req(b, "emse-1.example", KL_KIND_E2M, (const uint8_t *)"\x01\x00\x03" "001", 6, k, kl);
	assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	/* the KEMAC's own fields: next not 0, encr alg (0 = NULL, 2 = AES-KW) unsupported, MAC alg
	 * (0 = NULL, 2) unsupported, encr data length 0, 8, 42, past the end; a byte between the
	 * key data and the MAC alg; the MAC short by one */
	{
		static const struct {
			size_t off; /* in the KEMAC */
			uint8_t val;
			enum kl_drop want;
		} M[] = {
			{ 0, KL_PT_V, KL_DROP_MALFORMED },	   { 0, KL_PT_KEYDATA, KL_DROP_MALFORMED },
			{ 1, 0, KL_DROP_UNSUPPORTED_ALG },   { 1, 2, KL_DROP_UNSUPPORTED_ALG },
			{ 45, 0, KL_DROP_UNSUPPORTED_ALG },  { 45, 2, KL_DROP_UNSUPPORTED_ALG },
			{ 3, 0, KL_DROP_MALFORMED },	   { 3, 8, KL_DROP_MALFORMED },
			{ 3, 42, KL_DROP_MALFORMED },	   { 2, 1, KL_DROP_MALFORMED },
		};

		tl = case_tlvs(t, push, -1, -1, 0, NULL, -1);
		for (size_t i = 0; i < sizeof(M) / sizeof(M[0]); i++) {
			uint8_t k2[100];

			memcpy(k2, k, kl);
			k2[M[i].off] = M[i].val;
			n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, k2, kl);
			assert_int_equal(kl_mikey_parse_req(b, n, &r), M[i].want);
		}
		/* a length one short of the key data: never accepted (which reason depends on what
		 * the byte read as the MAC alg happens to be) */
		{
			uint8_t k2[100];

			memcpy(k2, k, kl);
			k2[3] = 40;
			n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, k2, kl);
			assert_int_not_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
		}
		/* one byte between the encr data and the MAC alg */
		{
			uint8_t k2[100];

			memcpy(k2, k, 45);
			k2[45] = 0;
			memcpy(k2 + 46, k + 45, kl - 45);
			n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, k2, kl + 1);
			assert_int_not_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
		}
		n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, k, kl - 1);
		assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_MALFORMED);
	}
	/* key data of 10 bytes (a 1-byte key) is the smallest the KEMAC can hold */
	{
		uint8_t k2[100];

		memcpy(k2, "\x00\x01\x00\x0a\x00\x21\x00\x01\x77\x04\x00\x00\x00\x00\x01", 15);
		memset(k2 + 15, 0xcc, KL_MIKEY_MAC_LEN);
		n = raw_req(b, push->requester, KL_KIND_PUSH, t, tl, k2, 15 + KL_MIKEY_MAC_LEN);
		assert_int_equal(kl_mikey_parse_req(b, n, &r), KL_DROP_NONE);
		assert_int_equal(r.encr_len, 10);
	}
}

/* Builders of kinds 4-7 against the parser: every field back, kind 7's KEMAC byte for byte. */
static void test_kinds_4_7_builders(void **state)
{
	uint8_t b[600], key[32];
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	uint16_t mo;
	int n;
	struct kl_mikey_req_spec s = {
		.rand = RAND, .id = (const uint8_t *)"ue-b@ims.example", .id_len = 16,
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x01020304, .prf = 1, .kind = KL_KIND_DH,
		.peer_ue = (const uint8_t *)"ue-a@ims.example", .peer_ue_len = 16,
		.peer_server = (const uint8_t *)"vlr-a.example", .peer_server_len = 13,
	};

	(void)state;
	n = kl_mikey_build_req(b, sizeof(b), &s, &mo);
	assert_int_equal(n, 10 + 10 + 18 + 4 + 16 + 4 + 1 + 19 + 16 + 22);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(r.kind, KL_KIND_DH);
	assert_int_equal(r.prf, 1);
	assert_int_equal(r.tlv_seen, KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER));
	assert_memory_equal(r.tlv[KL_TLVI_PEER_UE], "ue-a@ims.example", 16);
	assert_memory_equal(r.tlv[KL_TLVI_PEER_SERVER], "vlr-a.example", 13);
	assert_int_equal(r.mac_off, mo);
	/* kind 5: TLV 11 and 12 too, and padding */
	s.kind = KL_KIND_PROSE;
	s.contrib = P1;
	s.role = 2;
	s.has_pad = 1;
	s.pad_len = 5;
	n = kl_mikey_build_req(b, sizeof(b), &s, &mo);
	assert_true(n > 0);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(r.kind, KL_KIND_PROSE);
	assert_int_equal(r.tlv_seen, KL_TLV_BIT(PEER_UE) | KL_TLV_BIT(PEER_SERVER) |
					     KL_TLV_BIT(CONTRIB) | KL_TLV_BIT(ROLE) |
					     KL_TLV_BIT(PADDING));
	assert_memory_equal(r.tlv[KL_TLVI_CONTRIB], P1, 16);
	assert_int_equal(r.tlv[KL_TLVI_ROLE][0], 2);
	s.role = 3;
	assert_int_equal(kl_mikey_build_req(b, sizeof(b), &s, &mo), -EINVAL);
	/* kind 6 */
	s = (struct kl_mikey_req_spec){ .rand = RAND, .id = (const uint8_t *)"vlr-b.example",
					.id_len = 13, .ts = 1, .csb_id = 9, .kind = KL_KIND_PEERPV,
					.peer_ue = (const uint8_t *)"ue-a@ims.example",
					.peer_ue_len = 16 };
	n = kl_mikey_build_req(b, sizeof(b), &s, &mo);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(r.kind, KL_KIND_PEERPV);
	assert_int_equal(r.tlv_seen, KL_TLV_BIT(PEER_UE));
	/* kind 7: only through kl_mikey_build_req_kemac, and that one only for kind 7 */
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	s = (struct kl_mikey_req_spec){ .rand = RAND, .id = (const uint8_t *)"mme1.example",
					.id_len = 12, .ts = 0x0102030405060708ull, .csb_id = 9,
					.kind = KL_KIND_PUSH,
					.source_ue = (const uint8_t *)"ue1@prose.example",
					.source_ue_len = 17,
					.peer_ue = (const uint8_t *)"ue2@prose.example",
					.peer_ue_len = 17, .role = 1, .push_key = key,
					.push_key_len = 32 };
	assert_int_equal(kl_mikey_build_req(b, sizeof(b), &s, &mo), -EINVAL);
	n = kl_mikey_build_req_kemac(b, sizeof(b), &s, &lay);
	/* HDR 10, T 10, RAND 18, IDi 4+12, EXT 4+1 + 20 + 20 + 4, KEMAC 4 + 41 + 1 + 20 */
	assert_int_equal(n, 10 + 10 + 18 + 16 + 4 + 1 + 20 + 20 + 4 + 4 + 41 + 1 + 20);
	assert_int_equal(lay.len, n);
	assert_int_equal(b[54], KL_PT_KEMAC); /* EXT next: KEMAC */
	assert_memory_equal(b + 54, "\x01\xfa\x00\x2d\x07", 5);
	assert_memory_equal(b + 59, "\x0d\x00\x11ue1@prose.example", 20);
	assert_memory_equal(b + 79, "\x05\x00\x11ue2@prose.example", 20);
	assert_memory_equal(b + 99, "\x0c\x00\x01\x01", 4);
	assert_memory_equal(b + 103, "\x00\x01\x00\x29", 4); /* KEMAC: next 0, AES-CM, 41 */
	assert_int_equal(lay.encr_off, 107);
	assert_int_equal(lay.encr_len, 41);
	assert_memory_equal(b + 107, "\x00\x21\x00\x20", 4);
	assert_memory_equal(b + 111, key, 32);
	assert_memory_equal(b + 143, "\x04\x00\x00\x00\x00\x01", 6); /* SPI 0, MAC alg 1 */
	assert_int_equal(lay.mac_off, 149);
	assert_int_equal(kl_mikey_parse_req(b, (size_t)n, &r), KL_DROP_NONE);
	assert_int_equal(r.kind, KL_KIND_PUSH);
	assert_int_equal(r.encr_off, lay.encr_off);
	assert_int_equal(r.encr_len, lay.encr_len);
	assert_int_equal(r.mac_off, lay.mac_off);
	assert_memory_equal(r.tlv[KL_TLVI_SOURCE_UE], "ue1@prose.example", 17);
	assert_int_equal(r.tlv[KL_TLVI_ROLE][0], 1);
	{
		struct kl_mikey_key got[2];

		assert_int_equal(kl_mikey_parse_keydata(b + r.encr_off, r.encr_len, got, 1), 1);
		assert_int_equal(got[0].key_len, 32);
		assert_int_equal(got[0].key_id, 0);
		assert_memory_equal(got[0].key, key, 32);
	}
	/* exact fit */
	assert_int_equal(kl_mikey_build_req_kemac(b, (size_t)n, &s, &lay), n);
	assert_int_equal(kl_mikey_build_req_kemac(b, (size_t)n - 1, &s, &lay), -ENOSPC);
	s.push_key_len = 0;
	assert_int_equal(kl_mikey_build_req_kemac(b, sizeof(b), &s, &lay), -EINVAL);
	s.push_key_len = KL_MIKEY_KEY_MAX + 1;
	assert_int_equal(kl_mikey_build_req_kemac(b, sizeof(b), &s, &lay), -EINVAL);
	s.push_key_len = 32;
	s.kind = KL_KIND_PROSE;
	assert_int_equal(kl_mikey_build_req_kemac(b, sizeof(b), &s, &lay), -EINVAL);
}

/* A parsed request of kind k for the answer builders. */
static void req_of_kind(uint8_t *b, uint8_t kind, struct kl_mikey_req *r)
{
	uint8_t t[400], k[100];
	const struct kind_case *c = &KINDS[kind - KL_KIND_DH];
	size_t kl = push_kemac(k), tl = case_tlvs(t, c, -1, -1, 0, NULL, -1);
	size_t n = raw_req(b, c->requester, kind, t, tl, kind == KL_KIND_PUSH ? k : NULL, kl);

	assert_int_equal(kl_mikey_parse_req(b, n, r), KL_DROP_NONE);
}

/* Answers of kinds 4-7 (section 9: answers without a secret end with V; kind 5's carries a
 * KEMAC) and errors with retry-after (section 6, ERR 12/5), as a client parses them. */
static void test_kinds_4_7_answers(void **state)
{
	uint8_t q[800], b[800], pv[33], p4[32];
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;
	const uint8_t *idr = (const uint8_t *)"vlr-a.example";

	(void)state;
	for (int i = 0; i < 33; i++)
		pv[i] = (uint8_t)(0xe0 ^ i);
	for (int i = 0; i < 32; i++)
		p4[i] = (uint8_t)(0x40 + i);
	/* kinds 4 and 6: TLV 9 (P, 32 bytes), V */
	for (uint8_t kind = KL_KIND_DH; kind <= KL_KIND_PEERPV; kind += 2) {
		struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = pv, .len = 32 };

		req_of_kind(q, kind, &r);
		assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, &x, 1, &lay), 0);
		assert_int_equal(lay.len, 10 + 10 + 18 + 4 + 13 + 4 + 1 + 35 + 22);
		assert_int_equal(lay.mac_off, lay.len - 20);
		assert_int_equal(x.off, 10 + 10 + 18 + 4 + 13 + 4 + 1 + 3);
		assert_int_equal(b[55], KL_PT_V); /* EXT next: V */
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
		assert_int_equal(rs.data_type, KL_DT_PSK_RESP);
		assert_int_equal(rs.kind, kind);
		assert_int_equal(rs.nkeys, 0);
		assert_null(rs.encr);
		assert_int_equal(rs.mac_off, lay.mac_off);
		assert_int_equal(rs.tlv_seen, KL_TLV_BIT(X25519));
		assert_int_equal(rs.tlv_len[KL_TLVI_X25519], 32);
		assert_memory_equal(rs.tlv[KL_TLVI_X25519], pv, 32);
		assert_memory_equal(rs.rand, RAND, 16);
		for (unsigned cut = 0; cut < lay.len; cut++)
			assert_int_not_equal(kl_mikey_parse_resp(b, cut, &rs), KL_DROP_NONE);
		/* P of 31 and 33 bytes; no P; P twice; TLV 3 (a key's info) with the V */
		for (uint16_t l = 31; l <= 33; l += 2) {
			x.len = l;
			assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, &x, 1, &lay), 0);
			assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
		}
		x.len = 32;
		assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, NULL, 0, &lay), 0);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
		{
			struct kl_mikey_tlv two[2] = { x, x };

			assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, two, 2, &lay), 0);
			assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
			two[0] = (struct kl_mikey_tlv){ .type = KL_TLV_KEY_INFO, .val = NULL, .len = 20 };
			assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, two, 2, &lay), 0);
			assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
			/* retry-after belongs to errors */
			two[0] = (struct kl_mikey_tlv){ .type = KL_TLV_RETRY_AFTER, .val = NULL, .len = 2 };
			assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, two, 2, &lay), 0);
			assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
		}
		/* a KEMAC answer (with P) to a kind whose answer carries no secret */
		{
			struct kl_mikey_key k = { .key = p4, .key_len = 32 };

			assert_int_equal(kl_mikey_build_resp_tlv(b, sizeof(b), &r, 77, idr, 13, &k, 1, &x,
								 1, &lay), 0);
			assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
		}
	}
	/* kind 7: EXT 250 (kind 7) and nothing else, V; a P in it is malformed */
	req_of_kind(q, KL_KIND_PUSH, &r);
	assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, NULL, 0, &lay), 0);
	assert_int_equal(lay.len, 10 + 10 + 18 + 4 + 13 + 4 + 1 + 22);
	assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
	assert_int_equal(rs.kind, KL_KIND_PUSH);
	assert_int_equal(rs.tlv_seen, 0);
	assert_int_equal(rs.nkeys, 0);
	{
		struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = pv, .len = 32 };

		assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, &x, 1, &lay), 0);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
	}
	/* kind 5: KEMAC with the other side's p (SPI 0); a V answer is malformed, as for every
	 * kind whose answer carries keys (1, 2, 3, 5; MBMS answers with keys too) */
	req_of_kind(q, KL_KIND_PROSE, &r);
	{
		struct kl_mikey_key k = { .key = p4, .key_len = 32, .key_id = 0x5e55, .valid_from = 5,
					  .valid_to = 35 };
		struct kl_mikey_key got[2];
		struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = pv, .len = 32 };

		assert_int_equal(kl_mikey_build_resp(b, sizeof(b), &r, 77, idr, 13, &k, 1, &lay), 0);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
		assert_int_equal(rs.kind, KL_KIND_PROSE);
		assert_int_equal(rs.nkeys, 1);
		assert_int_equal(kl_be32(rs.tlv3[0]), 0x5e55);
		assert_int_equal(kl_mikey_parse_keydata(rs.encr, rs.encr_len, got, 2), 1);
		assert_int_equal(got[0].key_id, 0); /* SPI 0 (section 9) */
		assert_memory_equal(got[0].key, p4, 32);
		assert_int_equal(kl_mikey_build_resp(b, sizeof(b), &r, 77, idr, 13, got, 2, &lay), -EINVAL);
		assert_int_equal(kl_mikey_build_resp_tlv(b, sizeof(b), &r, 77, idr, 13, &k, 1, &x, 1,
							 &lay), 0);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
	}
	for (uint8_t kind = 0; kind < KL_KIND__COUNT; kind++) {
		if (kind == KL_KIND_DH || kind == KL_KIND_PEERPV || kind == KL_KIND_PUSH)
			continue;
		r.kind = kind;
		assert_int_equal(kl_mikey_build_resp_v(b, sizeof(b), &r, 77, idr, 13, NULL, 0, &lay), 0);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_MALFORMED);
	}
}

/* ERR 12 detail 5 with TLV 10 retry-after (section 6): only beside a detail, each TLV once, 2
 * bytes, never larger than the request. */
static void test_error_retry_after(void **state)
{
	uint8_t q[800], b[800];
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	struct kl_mikey_resp rs;

	(void)state;
	for (uint8_t kind = KL_KIND_DH; kind <= KL_KIND_PROSE; kind++) {
		req_of_kind(q, kind, &r);
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 5,
							  250, &lay), 0);
		/* ERR, EXT (V, 250, length 11, kind, TLV 4 = 5, TLV 10 = 250), V */
		assert_int_equal(lay.len, 10 + 10 + 18 + 4 + 4 + 11 + 22);
		assert_true(lay.len <= r.len);
		assert_memory_equal(b + 38, "\x15\x0c\x00\x00", 4);
		assert_memory_equal(b + 42, "\x09\xfa\x00\x0b", 4);
		assert_int_equal(b[46], kind);
		assert_memory_equal(b + 47, "\x04\x00\x02\x00\x05\x0a\x00\x02\x00\xfa\x00\x01", 12);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
		assert_int_equal(rs.data_type, KL_DT_ERROR);
		assert_int_equal(rs.err_no, KL_ERR_UNSPECIFIED);
		assert_true(rs.has_detail);
		assert_int_equal(rs.detail, 5);
		assert_true(rs.has_retry_after);
		assert_int_equal(rs.retry_after_ms, 250);
		assert_int_equal(rs.kind, kind);
		assert_int_equal(rs.mac_off, lay.mac_off);
		for (unsigned cut = 0; cut < lay.len; cut++)
			assert_int_not_equal(kl_mikey_parse_resp(b, cut, &rs), KL_DROP_NONE);
		/* retry-after 1 and 3 bytes long (EXT length adjusted) */
		{
			uint8_t c[800];

			memcpy(c, b, 57);
			c[45] = 10;
			c[54] = 1;
			memcpy(c + 56, b + 57, 22);
			assert_int_equal(kl_mikey_parse_resp(c, lay.len - 1, &rs), KL_DROP_MALFORMED);
			memcpy(c, b, 59);
			c[45] = 12;
			c[54] = 3;
			c[59] = 0;
			memcpy(c + 60, b + 59, 22);
			assert_int_equal(kl_mikey_parse_resp(c, lay.len + 1, &rs), KL_DROP_MALFORMED);
			/* retry-after twice */
			memcpy(c, b, 57);
			c[45] = 16;
			memcpy(c + 57, b + 52, 5);
			memcpy(c + 62, b + 57, 22);
			assert_int_equal(kl_mikey_parse_resp(c, lay.len + 5, &rs), KL_DROP_MALFORMED);
			/* retry-after without the detail it goes with (EXT = kind, TLV 10) */
			memcpy(c, b, 47);
			c[45] = 6;
			memcpy(c + 47, b + 52, 5);
			memcpy(c + 52, b + 57, 22);
			assert_int_equal(kl_mikey_parse_resp(c, lay.len - 5, &rs), KL_DROP_MALFORMED);
			/* retry-after beside another detail (12/2), or another error (7/5): only
			 * "not ready yet" (12/5) has one */
			memcpy(c, b, lay.len);
			c[51] = 2;
			assert_int_equal(kl_mikey_parse_resp(c, lay.len, &rs), KL_DROP_MALFORMED);
			memcpy(c, b, lay.len);
			c[39] = KL_ERR_INVALID_ID;
			assert_int_equal(kl_mikey_parse_resp(c, lay.len, &rs), KL_DROP_MALFORMED);
			c[39] = KL_ERR_UNSPECIFIED;
			assert_int_equal(kl_mikey_parse_resp(c, lay.len, &rs), KL_DROP_NONE);
		}
		/* the builder: no retry-after without a detail, refused before it writes (the
		 * caller's buffer still holds what it held); 0 = none */
		memset(b, 0xee, sizeof(b));
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 0,
							  250, &lay), -EINVAL);
		for (size_t i = 0; i < sizeof(b); i++)
			assert_int_equal(b[i], 0xee);
		r.len = 10 + 10 + 18 + 4 + 5 + 22; /* room for what it would write: still -EINVAL */
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 0,
							  250, &lay), -EINVAL);
		req_of_kind(q, kind, &r);
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 5,
							  0, &lay), 0);
		assert_int_equal(kl_mikey_parse_resp(b, lay.len, &rs), KL_DROP_NONE);
		assert_false(rs.has_retry_after);
		/* never larger than the request: exactly its size fits, one byte less does not */
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 5,
							  250, &lay), 0);
		r.len = lay.len;
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 5,
							  250, &lay), 0);
		r.len = (uint16_t)(lay.len - 1);
		assert_int_equal(kl_mikey_build_err_retry(b, sizeof(b), &r, 88, KL_ERR_UNSPECIFIED, 5,
							  250, &lay), -ENOSPC);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_layout),
		cmocka_unit_test(test_tlv_registry),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_drop_reasons),
		cmocka_unit_test(test_response_and_error),
		cmocka_unit_test(test_kinds_4_7_tlvs),
		cmocka_unit_test(test_kinds_4_7_values),
		cmocka_unit_test(test_push_kemac),
		cmocka_unit_test(test_kinds_4_7_builders),
		cmocka_unit_test(test_kinds_4_7_answers),
		cmocka_unit_test(test_error_retry_after),
	};

	return cmocka_run_group_tests_name("mikey-codec", tests, NULL, NULL);
}
