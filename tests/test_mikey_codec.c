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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_layout),
		cmocka_unit_test(test_tlv_registry),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_drop_reasons),
		cmocka_unit_test(test_response_and_error),
	};

	return cmocka_run_group_tests_name("mikey-codec", tests, NULL, NULL);
}
