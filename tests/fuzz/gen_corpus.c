/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Seed corpus generator for the MIKEY fuzz targets. Deterministic: the same files every run.
 *
 *   fuzz_gen_corpus tests/fuzz/corpus      (writes corpus/req/, corpus/resp/ and corpus/push/)
 *
 * Requests (corpus/req): MBMS, E2M and kinds 2-7 (kind 7 with its KEMAC), both PRFs, with and without key id, NAI and URI
 * identities of 1..128 bytes (ASCII and multi-byte UTF-8), then truncated and mutated copies,
 * one per drop reason of the parser. Responses (corpus/resp): 1 and 2 keys of 16 and 32 bytes
 * for both kinds, error messages with and without detail, raw key data, truncated and mutated
 * copies. Every message is laid out by the codec's own builders; the MAC fields hold filler
 * bytes (the codec never checks them). Every file is < 600 bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kl_mikey.h"

static const char *out_root;
static unsigned n_req, n_resp, n_push;
static uint32_t lcg = 0x4B4C4E45; /* "KLNE" */

static uint8_t rnd8(void)
{
	lcg = lcg * 1103515245u + 12345u;
	return (uint8_t)(lcg >> 16);
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd8();
}

static void put(const char *sub, const char *name, const uint8_t *b, size_t len)
{
	char path[512];
	FILE *f;

	if (len >= 600) {
		fprintf(stderr, "%s/%s: %zu bytes, the corpus keeps files < 600\n", sub, name, len);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_root, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!strcmp(sub, "req"))
		n_req++;
	else if (!strcmp(sub, "push"))
		n_push++;
	else
		n_resp++;
}

static void mkdir_p(const char *sub)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", out_root, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* A request with a filler MAC; exits on a builder error (the generator's own bug). */
static size_t req(uint8_t *b, const struct kl_mikey_req_spec *s)
{
	uint16_t mo;
	int n = kl_mikey_build_req(b, 600, s, &mo);

	if (n < 0) {
		fprintf(stderr, "kl_mikey_build_req: %d\n", n);
		exit(1);
	}
	fill(b + mo, KL_MIKEY_MAC_LEN);
	return (size_t)n;
}

static void parsed(const uint8_t *b, size_t n, struct kl_mikey_req *r)
{
	if (kl_mikey_parse_req(b, n, r) != KL_DROP_NONE) {
		fprintf(stderr, "generated request does not parse\n");
		exit(1);
	}
}

/* Identities: ASCII of several lengths, and UTF-8 with 2-, 3- and 4-byte sequences. */
static char id128[KL_MIKEY_ID_MAX + 1], ue128[KL_MIKEY_ID_MAX + 1];
static const char *const IMPI = "user1@ims.mnc001.mcc001.3gppnetwork.org";
static const char *const BTID = "dGhpc2lzYXJhbmQ=@bsf.mnc001.mcc001.pub.3gppnetwork.org";
static const char *const URI = "sip:+447700900123@ims.example.net";
static const char *const EMSE = "emse-7.corp.example";
static const char *const EMSE_URI = "urn:keyline:emse:7";
static const char *const UTF8_ID = "j\xc3\xbcrgen@\xe6\x9d\xb1\xe4\xba\xac.example/\xf0\x9f\x94\x91";
static const char *const IMSI = "001010123456789";
static const char *const APP_ID = "meter-42@\xc3\xa9nergie.example";

struct req_case {
	const char *name;
	const char *id;
	const char *ue;
	uint8_t prf, id_type, kind, has_key_id;
	uint16_t group, number;
};

static const struct req_case REQS[] = {
	{ "mbms-prf0-nai39", NULL, NULL, 0, 0, KL_KIND_MBMS, 0, 0x0102, 0 },
	{ "mbms-prf1-nai39", NULL, NULL, 1, 0, KL_KIND_MBMS, 0, 0x0102, 0 },
	{ "mbms-prf0-btid", "BTID", NULL, 0, 0, KL_KIND_MBMS, 0, 0x0001, 7 },
	{ "mbms-prf1-uri", "URI", NULL, 1, 1, KL_KIND_MBMS, 0, 0xFFFF, 0xFFFF },
	{ "mbms-prf0-id1", "x", NULL, 0, 0, KL_KIND_MBMS, 0, 0, 0 },
	{ "mbms-prf1-id128", "ID128", NULL, 1, 1, KL_KIND_MBMS, 0, 0x8000, 1 },
	{ "mbms-prf0-utf8", "UTF8", NULL, 0, 0, KL_KIND_MBMS, 0, 0x0203, 0x0004 },
	{ "e2m-prf1-uri-keyid", "EMSE_URI", "IMSI", 1, 1, KL_KIND_E2M, 1, 0, 0 },
	{ "e2m-prf1-nai-nokeyid", "EMSE", "IMSI", 1, 0, KL_KIND_E2M, 0, 0, 0 },
	{ "e2m-prf0-nai-keyid", "EMSE", "IMSI", 0, 0, KL_KIND_E2M, 1, 0, 0 },
	{ "e2m-prf0-uri-nokeyid", "EMSE_URI", "IMSI", 0, 1, KL_KIND_E2M, 0, 0, 0 },
	{ "e2m-prf1-appid-keyid", "EMSE", "APP", 1, 0, KL_KIND_E2M, 1, 0, 0 },
	{ "e2m-prf0-ue1-id1", "e", "9", 0, 0, KL_KIND_E2M, 0, 0, 0 },
	{ "e2m-prf1-ue128-id128", "ID128", "UE128", 1, 1, KL_KIND_E2M, 1, 0, 0 },
	{ "e2m-prf0-utf8", "UTF8", "APP", 0, 1, KL_KIND_E2M, 1, 0, 0 },
};

static const char *pick(const char *key)
{
	if (!key)
		return IMPI;
	if (!strcmp(key, "BTID"))
		return BTID;
	if (!strcmp(key, "URI"))
		return URI;
	if (!strcmp(key, "ID128"))
		return id128;
	if (!strcmp(key, "UE128"))
		return ue128;
	if (!strcmp(key, "UTF8"))
		return UTF8_ID;
	if (!strcmp(key, "EMSE"))
		return EMSE;
	if (!strcmp(key, "EMSE_URI"))
		return EMSE_URI;
	if (!strcmp(key, "IMSI"))
		return IMSI;
	if (!strcmp(key, "APP"))
		return APP_ID;
	return key;
}

static size_t build_case(uint8_t *b, const struct req_case *c, uint8_t *rand)
{
	const char *id = pick(c->id), *ue = c->ue ? pick(c->ue) : NULL;
	/* one draw per statement: the order must not depend on the compiler */
	uint64_t ts = 0xE7A1B2C3D4E5F607ull + rnd8();
	uint32_t csb_id = (uint32_t)rnd8() << 24;
	uint32_t key_id;
	struct kl_mikey_req_spec s;

	csb_id |= rnd8();
	key_id = 0x11223344u ^ rnd8();
	s = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)id, .id_len = (uint16_t)strlen(id),
		.ue = (const uint8_t *)ue, .ue_len = ue ? (uint16_t)strlen(ue) : 0,
		.ts = ts, .csb_id = csb_id,
		.key_id = key_id, .group = c->group, .number = c->number,
		.domain = { 0x00, 0xF1, 0x10 }, .prf = c->prf, .id_type = c->id_type,
		.kind = c->kind, .has_key_id = c->has_key_id,
	};

	fill(rand, KL_MIKEY_RAND_LEN);
	return req(b, &s);
}

/* name-mutation: one byte of a valid request changed, for every drop reason of the parser. */
static void mutant(const uint8_t *b, size_t n, const char *name, size_t off, uint8_t val)
{
	uint8_t m[600];
	char full[128];

	memcpy(m, b, n);
	m[off] = val;
	snprintf(full, sizeof(full), "mut-%s", name);
	put("req", full, m, n);
}

static void gen_requests(void)
{
	uint8_t b[600], c[600], rand[KL_MIKEY_RAND_LEN];
	char name[128];
	size_t n, mbms_n = 0, e2m_n = 0, ext;
	uint8_t mbms[600], e2m[600];

	for (size_t i = 0; i < sizeof(REQS) / sizeof(REQS[0]); i++) {
		n = build_case(b, &REQS[i], rand);
		snprintf(name, sizeof(name), "valid-%s", REQS[i].name);
		put("req", name, b, n);
		if (i == 0)
			memcpy(mbms, b, mbms_n = n);
		if (i == 9)
			memcpy(e2m, b, e2m_n = n);
	}
	/* E2M with TLV 2 (key id) before TLV 1 (UE identity): valid, not the builder's order */
	memcpy(c, e2m, e2m_n);
	ext = 42 + strlen(EMSE) + 4; /* EXT data */
	c[ext + 1] = KL_TLV_KEY_ID;
	memcpy(c + ext + 2, e2m + ext + 1 + 3 + strlen(IMSI) + 1, 6);
	c[ext + 8] = KL_TLV_UE_ID;
	c[ext + 9] = 0;
	c[ext + 10] = (uint8_t)strlen(IMSI);
	memcpy(c + ext + 11, IMSI, strlen(IMSI));
	put("req", "valid-e2m-tlv-order-21", c, e2m_n);

	/* truncated: inside HDR, T, RAND, IDi, EXT, V, and one byte short */
	{
		static const size_t cuts[] = { 0, 9, 19, 37, 41, 60, 85, 96 };

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			snprintf(name, sizeof(name), "trunc-mbms-%zu", cuts[i]);
			put("req", name, mbms, cuts[i]);
		}
		put("req", "trunc-mbms-last", mbms, mbms_n - 1);
		put("req", "trunc-e2m-last", e2m, e2m_n - 1);
		put("req", "trunc-e2m-ext", e2m, 42 + strlen(EMSE) + 10);
	}
	/* one byte changed (offsets of the MBMS request: IDi at 42, EXT at 81, V at 95) */
	mutant(mbms, mbms_n, "version2", 0, 2);
	mutant(mbms, mbms_n, "datatype1", 1, 1);
	mutant(mbms, mbms_n, "hdr-next", 2, 11);
	mutant(mbms, mbms_n, "vbit", 3, 0x80);
	mutant(mbms, mbms_n, "prf2", 3, 2);
	mutant(mbms, mbms_n, "ncs1", 8, 1);
	mutant(mbms, mbms_n, "maptype0", 9, 0);
	mutant(mbms, mbms_n, "tstype1", 11, 1);
	mutant(mbms, mbms_n, "randlen15", 21, 15);
	mutant(mbms, mbms_n, "idtype2", 39, 2);
	mutant(mbms, mbms_n, "idlen0", 41, 0);
	mutant(mbms, mbms_n, "idlen-long", 41, 0xF0);
	mutant(mbms, mbms_n, "utf8-ff", 42, 0xFF);
	mutant(mbms, mbms_n, "utf8-c0", 42, 0xC0);
	mutant(mbms, mbms_n, "utf8-lead-end", 80, 0xE2);
	mutant(mbms, mbms_n, "exttype3", 82, 3);
	mutant(mbms, mbms_n, "exttype250-kind1", 82, 250);
	mutant(mbms, mbms_n, "keyidtype2", 85, 2);
	mutant(mbms, mbms_n, "keyidlen6", 87, 6);
	mutant(mbms, mbms_n, "ext-next", 81, 1);
	mutant(mbms, mbms_n, "v-next", 95, 1);
	mutant(mbms, mbms_n, "valg2", 96, 2);
	/* E2M: EMSE id 19 bytes, EXT at 61, kind at 65, TLV 1 at 66, TLV 2 at 84 */
	memcpy(c, e2m, e2m_n);
	mutant(c, e2m_n, "e2m-kind2", 65, 2);
	mutant(c, e2m_n, "e2m-kind0", 65, 0);
	mutant(c, e2m_n, "e2m-tlv-unknown", 84, 9);
	mutant(c, e2m_n, "e2m-tlv-dup-ue", 84, KL_TLV_UE_ID);
	mutant(c, e2m_n, "e2m-keyid-len5", 86, 5);
	mutant(c, e2m_n, "e2m-ue-len0", 68, 0);
	mutant(c, e2m_n, "e2m-ue-utf8-surrogate", 69, 0xED);
	/* trailing byte, and oversized (513 bytes) */
	memcpy(c, mbms, mbms_n);
	c[mbms_n] = 0;
	put("req", "mut-trailing-byte", c, mbms_n + 1);
	memset(c, 0, sizeof(c));
	memcpy(c, mbms, mbms_n);
	put("req", "mut-oversized-513", c, KL_MIKEY_REQ_MAX + 1);
}

static void put_resp(const char *name, const uint8_t *b, size_t n)
{
	put("resp", name, b, n);
}

static void gen_responses(void)
{
	static const char *const IDR = "keyline.mnc001.mcc001.example";
	uint8_t q[600], b[600], c[600], rand[KL_MIKEY_RAND_LEN], k1[32], k2[32];
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	char name[128];
	size_t qn;
	static const struct {
		unsigned req; /* index into REQS */
		unsigned nkeys;
		uint8_t len1, len2;
		const char *idr;
	} RS[] = {
		{ 0, 1, 16, 0, NULL }, { 1, 2, 16, 16, NULL }, { 3, 2, 32, 16, "k" },
		{ 7, 1, 32, 0, NULL }, { 8, 1, 32, 0, "ID128" }, { 9, 2, 32, 32, NULL },
		{ 6, 1, 16, 0, "UTF8" },
	};
	uint8_t first[600];
	size_t first_n = 0;

	fill(k1, sizeof(k1));
	fill(k2, sizeof(k2));
	for (size_t i = 0; i < sizeof(RS) / sizeof(RS[0]); i++) {
		struct kl_mikey_key keys[2] = {
			{ .key = k1, .valid_from = 0xE7A1B000ull << 32, .valid_to = 0xE7A1C000ull << 32,
			  .key_id = 0x01020001, .key_len = RS[i].len1 },
			{ .key = k2, .valid_from = 0xE7A1C000ull << 32, .valid_to = 0xE7A1D000ull << 32,
			  .key_id = 0x01020002, .key_len = RS[i].len2 },
		};
		const char *idr = RS[i].idr ? pick(RS[i].idr) : IDR;

		qn = build_case(q, &REQS[RS[i].req], rand);
		parsed(q, qn, &r);
		if (kl_mikey_build_resp(b, sizeof(b), &r, 0xE7A1B2C3D4E5F700ull, (const uint8_t *)idr,
					(uint16_t)strlen(idr), keys, RS[i].nkeys, &lay) != 0) {
			fprintf(stderr, "kl_mikey_build_resp failed\n");
			exit(1);
		}
		fill(b + lay.mac_off, KL_MIKEY_MAC_LEN);
		snprintf(name, sizeof(name), "valid-resp-%s-%uk-%u-%u", REQS[RS[i].req].name,
			 RS[i].nkeys, RS[i].len1, RS[i].len2);
		put_resp(name, b, lay.len);
		if (i == 1) {
			memcpy(first, b, first_n = lay.len);
			/* the same with its key data encrypted (random bytes, as on the wire) */
			memcpy(c, b, lay.len);
			fill(c + lay.encr_off, lay.encr_len);
			put_resp("valid-resp-encrypted", c, lay.len);
			/* raw key data as the target also parses it: 2 keys, then 1, then corrupt */
			put_resp("keydata-2", b + lay.encr_off, lay.encr_len);
			put_resp("keydata-1", b + lay.encr_off + 25, 25);
			memcpy(c, b + lay.encr_off, lay.encr_len);
			c[0] = 7;
			put_resp("keydata-bad-next", c, lay.encr_len);
		}
	}
	/* errors from an MBMS and an E2M request: with and without detail */
	for (unsigned e = 0; e < 5; e++) {
		static const uint8_t ERRNO[] = { KL_ERR_INVALID_TS, KL_ERR_INVALID_ID,
						 KL_ERR_UNSPECIFIED, KL_ERR_UNSPECIFIED,
						 KL_ERR_INVALID_TS };
		static const uint16_t DETAIL[] = { 0, 1, 2, 3, 0 };

		qn = build_case(q, &REQS[e < 3 ? 0 : 9], rand);
		parsed(q, qn, &r);
		if (kl_mikey_build_err(b, sizeof(b), &r, 0xE7A1B2C3D4E5F800ull, ERRNO[e], DETAIL[e],
				       &lay) != 0) {
			fprintf(stderr, "kl_mikey_build_err failed\n");
			exit(1);
		}
		fill(b + lay.mac_off, KL_MIKEY_MAC_LEN);
		snprintf(name, sizeof(name), "valid-err-%s-%u-detail%u", e < 3 ? "mbms" : "e2m",
			 ERRNO[e], DETAIL[e]);
		put_resp(name, b, lay.len);
		if (e == 1) {
			/* EXT with the kind only (no TLV): accepted, not the builder's form */
			memcpy(c, b, 42);
			c[42] = KL_PT_V;
			c[43] = KL_EXT_KEYLINE;
			c[44] = 0;
			c[45] = 1;
			c[46] = KL_KIND_MBMS;
			memcpy(c + 47, b + 52, KL_MIKEY_V_LEN);
			put_resp("valid-err-ext-kind-only", c, 47 + KL_MIKEY_V_LEN);
			put_resp("trunc-err-detail", b, lay.len - 1);
			memcpy(c, b, lay.len);
			c[40] = 1;
			put_resp("mut-err-reserved", c, lay.len);
			memcpy(c, b, lay.len);
			c[47] = KL_TLV_KEY_INFO;
			put_resp("mut-err-tlv3", c, lay.len);
			memcpy(c, b, lay.len);
			c[50] = 0;
			c[51] = 0;
			put_resp("mut-err-detail0", c, lay.len);
			/* the detail TLV twice (EXT length 6 -> 11) */
			memcpy(c, b, 52);
			c[45] = 11;
			memcpy(c + 52, b + 47, 5);
			memcpy(c + 57, b + 52, KL_MIKEY_V_LEN);
			put_resp("mut-err-detail-twice", c, 57 + KL_MIKEY_V_LEN);
		}
	}
	/* truncated and mutated responses (first: 2 keys of 16, IDr 29 bytes: EXT at 71,
	 * KEMAC at 122, encr data at 126 (50 bytes), MAC alg at 176) */
	put_resp("trunc-resp-0", first, 0);
	put_resp("trunc-resp-hdr", first, 10);
	put_resp("trunc-resp-idr", first, 50);
	put_resp("trunc-resp-ext", first, 100);
	put_resp("trunc-resp-encr", first, 140);
	put_resp("trunc-resp-last", first, first_n - 1);
	{
		static const struct {
			const char *name;
			size_t off;
			uint8_t val;
		} M[] = {
			{ "datatype2", 1, 2 },	     { "datatype0", 1, 0 },	{ "prf2", 3, 2 },
			{ "idrtype1", 39, 1 },	     { "idrtype2", 39, 2 },	{ "ext-type2", 72, 2 },
			{ "tlv3-len19", 78, 19 },     { "tlv3-type4", 76, 4 }, { "encralg2", 123, 2 },
			{ "encrlen-big", 125, 0xFF }, { "macalg2", 176, 2 },	{ "kd-type", 127, 0x22 },
			{ "kd-keylen0", 129, 0 },     { "kd-spilen3", 146, 3 }, { "kd-next-last", 126, 0 },
		};

		for (size_t i = 0; i < sizeof(M) / sizeof(M[0]); i++) {
			memcpy(c, first, first_n);
			c[M[i].off] = M[i].val;
			snprintf(name, sizeof(name), "mut-resp-%s", M[i].name);
			put_resp(name, c, first_n);
		}
	}
	/* a third TLV 3 entry: the ext grows by 23 bytes */
	memcpy(c, first, 71 + 4 + 1 + 46);
	c[73] = 0;
	c[74] = 1 + 3 * 23;
	memcpy(c + 122, first + 99, 23);
	memcpy(c + 145, first + 122, first_n - 122);
	put_resp("mut-resp-3-tlv3", c, first_n + 23);
	/* trailing byte */
	memcpy(c, first, first_n);
	c[first_n] = 0;
	put_resp("mut-resp-trailing", c, first_n + 1);
}

/* Kinds 2 and 3 (PROTOCOL.md section 9), written after the others so that their seeds keep
 * their bytes: requests (with and without padding, TLVs in another order, IDUEa == IDUEb, a TLV
 * the kind does not take) and a kind 2 response carrying its two tokens. */
static void gen_peer_kinds(void)
{
	static const char *const PEER = "vlr-b.mnc002.mcc001.example";
	static const char *const IDR = "vlr-a.mnc001.mcc001.example";
	uint8_t b[600], c[600], o[900], rand[KL_MIKEY_RAND_LEN], k[32], tok[2][90];
	struct kl_mikey_req_spec sp;
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	size_t n, ext;

	fill(rand, sizeof(rand));
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)IMPI, .id_len = (uint16_t)strlen(IMPI),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x0A0B0C0D, .kind = KL_KIND_HM,
		.peer_ue = (const uint8_t *)URI, .peer_ue_len = (uint16_t)strlen(URI),
		.peer_server = (const uint8_t *)PEER, .peer_server_len = (uint16_t)strlen(PEER),
	};
	n = req(b, &sp);
	put("req", "valid-hm", b, n);
	sp.has_pad = 1;
	sp.pad_len = 40;
	put("req", "valid-hm-padded", c, req(c, &sp));
	sp.has_pad = 0;
	sp.prf = 1;
	sp.peer_ue = (const uint8_t *)UTF8_ID;
	sp.peer_ue_len = (uint16_t)strlen(UTF8_ID);
	put("req", "valid-hm-prf1-utf8", c, req(c, &sp));
	/* TLV 6 before TLV 5: valid */
	ext = 42 + strlen(IMPI) + 4;
	memcpy(c, b, n);
	{
		size_t l5 = 3 + strlen(URI), l6 = 3 + strlen(PEER);

		memcpy(c + ext + 1, b + ext + 1 + l5, l6);
		memcpy(c + ext + 1 + l6, b + ext + 1, l5);
	}
	put("req", "valid-hm-tlv-order-65", c, n);
	sp.peer_ue = (const uint8_t *)IMPI; /* IDUEa == IDUEb */
	sp.peer_ue_len = (uint16_t)strlen(IMPI);
	sp.prf = 0;
	put("req", "mut-hm-same-ue", c, req(c, &sp));
	memcpy(c, b, n);
	c[ext + 1] = KL_TLV_UE_ID; /* TLV 1 in a kind 2 request */
	put("req", "mut-hm-tlv1", c, n);
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)BTID, .id_len = (uint16_t)strlen(BTID),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 7, .kind = KL_KIND_KSTAR,
		.peer_server = (const uint8_t *)PEER, .peer_server_len = (uint16_t)strlen(PEER),
	};
	put("req", "valid-kstar", c, req(c, &sp));
	sp.has_pad = 1;
	put("req", "valid-kstar-pad0", c, req(c, &sp));
	/* the kind 2 response, with tokens (their bytes as they go on the wire: opaque here) */
	fill(k, sizeof(k));
	fill(tok[0], sizeof(tok[0]));
	fill(tok[1], sizeof(tok[1]));
	tok[0][0] = tok[1][0] = 0x01;
	if (kl_mikey_parse_req(b, n, &r) == KL_DROP_NONE) {
		struct kl_mikey_key key = { .key = k, .key_len = 32, .key_id = 0x51D51D00,
					    .valid_from = 0xE7A1B000ull << 32,
					    .valid_to = 0xE7A1C000ull << 32 };
		struct kl_mikey_tlv t[2] = { { .type = KL_TLV_TOKEN_REQ, .val = tok[0], .len = 90 },
					     { .type = KL_TLV_TOKEN_PEER, .val = tok[1], .len = 90 } };

		if (!kl_mikey_build_resp_tlv(o, sizeof(o), &r, 0xE7A1B2C3D4E5F700ull,
					     (const uint8_t *)IDR, (uint16_t)strlen(IDR), &key, 1, t,
					     2, &lay)) {
			fill(o + lay.mac_off, KL_MIKEY_MAC_LEN);
			put_resp("valid-hm-tokens", o, lay.len);
		}
	}
}

/* A kind 7 request with its KEMAC's key data replaced by filler, as encryption leaves it. */
static size_t push_req(uint8_t *b, const struct kl_mikey_req_spec *s, int encrypt)
{
	struct kl_mikey_layout lay;
	int n = kl_mikey_build_req_kemac(b, 600, s, &lay);

	if (n < 0) {
		fprintf(stderr, "kl_mikey_build_req_kemac: %d\n", n);
		exit(1);
	}
	if (encrypt)
		fill(b + lay.encr_off, lay.encr_len);
	fill(b + lay.mac_off, KL_MIKEY_MAC_LEN);
	return (size_t)n;
}

/* An answer without a secret (HDR, T, RAND, IDr, EXT 250, V) to r, filler MAC. @return its length. */
static size_t resp_v(uint8_t *o, const struct kl_mikey_req *r, const char *idr,
		     struct kl_mikey_tlv *x, unsigned nx)
{
	struct kl_mikey_layout lay;

	if (kl_mikey_build_resp_v(o, 900, r, 0xE7A1B2C3D4E5F700ull, (const uint8_t *)idr,
				  (uint16_t)strlen(idr), x, nx, &lay)) {
		fprintf(stderr, "kl_mikey_build_resp_v failed\n");
		exit(1);
	}
	fill(o + lay.mac_off, KL_MIKEY_MAC_LEN);
	return lay.len;
}

/* Kinds 4-7 (PROTOCOL.md sections 9 and 10), after the others so that their seeds keep their
 * bytes: each kind's request (padded, both roles, both PRFs), kind 7 with its KEMAC, the
 * malformed variants the sections name, and the answers: V with TLV 9, kind 7's bare V, kind
 * 5's KEMAC, ERR 12/5 with retry-after. */
static void gen_kinds_4_7(void)
{
	static const char *const UEA = "ue-a@ims.mnc001.mcc001.example";
	static const char *const UEB = "ue-b@ims.mnc002.mcc001.example";
	static const char *const VLRA = "vlr-a.mnc001.mcc001.example";
	static const char *const VLRB = "vlr-b.mnc002.mcc001.example";
	uint8_t b[600], c[700], o[900], rand[KL_MIKEY_RAND_LEN], p1[16], key[32], pv[32];
	struct kl_mikey_req_spec sp;
	struct kl_mikey_req r;
	struct kl_mikey_layout lay;
	size_t n;

	fill(rand, sizeof(rand));
	fill(p1, sizeof(p1));
	fill(key, sizeof(key));
	fill(pv, sizeof(pv));
	/* kind 4: UEb asks its server for UEa's public value */
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)UEB, .id_len = (uint16_t)strlen(UEB),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x0D0E0F10, .kind = KL_KIND_DH,
		.peer_ue = (const uint8_t *)UEA, .peer_ue_len = (uint16_t)strlen(UEA),
		.peer_server = (const uint8_t *)VLRA, .peer_server_len = (uint16_t)strlen(VLRA),
	};
	n = req(b, &sp);
	put("req", "valid-dh", b, n);
	sp.has_pad = 1;
	sp.pad_len = 24;
	sp.prf = 1;
	put("req", "valid-dh-prf1-padded", c, req(c, &sp));
	sp.has_pad = 0;
	sp.prf = 0;
	sp.peer_ue = (const uint8_t *)UEB; /* IDUEa == IDUEb */
	put("req", "mut-dh-same-ue", c, req(c, &sp));
	sp.peer_ue = (const uint8_t *)UEA;
	sp.contrib = p1; /* TLV 11 in a kind 4 request */
	put("req", "mut-dh-tlv11", c, req(c, &sp));
	sp.contrib = NULL;
	/* the answers: TLV 9 = P_a, V; ERR 12/5 with retry-after */
	parsed(b, n, &r);
	{
		struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = pv, .len = 32 };
		struct kl_mikey_tlv kx[2] = { { .type = KL_TLV_KEY_INFO, .val = NULL, .len = 20 }, x };

		n = resp_v(o, &r, VLRB, &x, 1);
		put_resp("valid-resp-dh-pv", o, n);
		put_resp("trunc-resp-dh-pv", o, n - 1);
		n = resp_v(o, &r, VLRB, NULL, 0);
		put_resp("mut-resp-dh-no-pv", o, n);
		n = resp_v(o, &r, VLRB, kx, 2);
		put_resp("mut-resp-dh-tlv3-v", o, n);
		x.len = 31;
		n = resp_v(o, &r, VLRB, &x, 1);
		put_resp("mut-resp-dh-pv31", o, n);
		if (kl_mikey_build_err_retry(o, sizeof(o), &r, 0xE7A1B2C3D4E5F800ull,
					     KL_ERR_UNSPECIFIED, 5, 200, &lay))
			exit(1);
		fill(o + lay.mac_off, KL_MIKEY_MAC_LEN);
		put_resp("valid-err-dh-12-5-retry", o, lay.len);
		/* retry-after first, then the detail: accepted, not the builder's order */
		memcpy(c, o, lay.len);
		memcpy(c + 47, o + 52, 5);
		memcpy(c + 52, o + 47, 5);
		put_resp("valid-err-retry-first", c, lay.len);
		/* retry-after without the detail (EXT = kind, TLV 10) */
		memcpy(c, o, 47);
		c[45] = 6;
		memcpy(c + 47, o + 52, 5 + KL_MIKEY_V_LEN);
		put_resp("mut-err-retry-no-detail", c, lay.len - 5);
		memcpy(c, o, lay.len);
		c[54] = 3;
		put_resp("mut-err-retry-len3", c, lay.len);
	}
	/* kind 5: both roles; role 3; a request without its role */
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)UEA, .id_len = (uint16_t)strlen(UEA),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x11121314, .kind = KL_KIND_PROSE,
		.peer_ue = (const uint8_t *)UEB, .peer_ue_len = (uint16_t)strlen(UEB),
		.peer_server = (const uint8_t *)VLRB, .peer_server_len = (uint16_t)strlen(VLRB),
		.contrib = p1, .role = 1,
	};
	n = req(b, &sp);
	put("req", "valid-prose-initiator", b, n);
	sp.role = 2;
	sp.prf = 1;
	sp.has_pad = 1;
	sp.pad_len = 3;
	put("req", "valid-prose-responder-prf1-padded", c, req(c, &sp));
	sp.has_pad = 0;
	sp.role = 0;
	put("req", "mut-prose-no-role", c, req(c, &sp));
	sp.role = 1;
	sp.prf = 0;
	memcpy(c, b, n);
	c[n - KL_MIKEY_V_LEN - 1] = 3; /* the role's value: last byte before V */
	put("req", "mut-prose-role3", c, n);
	/* the answer to the initiator: KEMAC with p4 (SPI 0); ERR 12/5 with retry-after */
	parsed(b, n, &r);
	{
		struct kl_mikey_key k = { .key = key, .key_len = 32, .key_id = 0x5E550001,
					  .valid_from = 0xE7A1B000ull << 32,
					  .valid_to = 0xE7A1B01Eull << 32 };

		if (kl_mikey_build_resp(o, sizeof(o), &r, 0xE7A1B2C3D4E5F700ull, (const uint8_t *)VLRA,
					(uint16_t)strlen(VLRA), &k, 1, &lay))
			exit(1);
		fill(o + lay.mac_off, KL_MIKEY_MAC_LEN);
		put_resp("valid-resp-prose-p4", o, lay.len);
		put_resp("keydata-prose-p4", o + lay.encr_off, lay.encr_len);
		n = resp_v(o, &r, VLRA, NULL, 0);
		put_resp("mut-resp-prose-v", o, n);
		if (kl_mikey_build_err_retry(o, sizeof(o), &r, 0xE7A1B2C3D4E5F800ull,
					     KL_ERR_UNSPECIFIED, 5, 1000, &lay))
			exit(1);
		fill(o + lay.mac_off, KL_MIKEY_MAC_LEN);
		put_resp("valid-err-prose-12-5-retry", o, lay.len);
	}
	/* kind 6: VLRb asks VLRa for UEa's public value; its answer */
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)VLRB, .id_len = (uint16_t)strlen(VLRB),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x21222324, .kind = KL_KIND_PEERPV, .prf = 1,
		.peer_ue = (const uint8_t *)UEA, .peer_ue_len = (uint16_t)strlen(UEA),
	};
	n = req(b, &sp);
	put("req", "valid-peerpv", b, n);
	sp.peer_server = (const uint8_t *)VLRA;
	sp.peer_server_len = (uint16_t)strlen(VLRA);
	put("req", "mut-peerpv-tlv6", c, req(c, &sp));
	parsed(b, n, &r);
	{
		struct kl_mikey_tlv x = { .type = KL_TLV_X25519, .val = pv, .len = 32 };

		n = resp_v(o, &r, VLRA, &x, 1);
		put_resp("valid-resp-peerpv", o, n);
	}
	/* kind 7: MME1 pushes UE1's p2 to MME2 (KEMAC, no V), both roles, a 16-byte key, padded */
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)VLRA, .id_len = (uint16_t)strlen(VLRA),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x31323334, .kind = KL_KIND_PUSH,
		.source_ue = (const uint8_t *)UEA, .source_ue_len = (uint16_t)strlen(UEA),
		.peer_ue = (const uint8_t *)UEB, .peer_ue_len = (uint16_t)strlen(UEB), .role = 1,
		.push_key = key, .push_key_len = 32,
	};
	n = push_req(b, &sp, 1);
	put("req", "valid-push", b, n);
	put("req", "valid-push-clear", c, push_req(c, &sp, 0));
	put("req", "trunc-push-last", b, n - 1);
	memcpy(c, b, n);
	c[n] = 0;
	put("req", "mut-push-trailing", c, n + 1);
	sp.role = 2;
	sp.prf = 1;
	sp.push_key_len = 16;
	sp.has_pad = 1;
	sp.pad_len = 9;
	put("req", "valid-push-responder-key16-padded", c, push_req(c, &sp, 1));
	sp.has_pad = 0;
	sp.push_key_len = 32;
	sp.role = 1;
	sp.prf = 0;
	sp.peer_ue = (const uint8_t *)UEA; /* the pushed UE is its own peer */
	put("req", "mut-push-same-ue", c, push_req(c, &sp, 1));
	sp.peer_ue = (const uint8_t *)UEB;
	{
		/* the KEMAC's fields: encr alg 2, encr length past the end, MAC alg 0 */
		size_t k = n - KL_MIKEY_MAC_LEN - 1 - 41 - 4;

		memcpy(c, b, n);
		c[k + 1] = 2;
		put("req", "mut-push-encralg2", c, n);
		memcpy(c, b, n);
		c[k + 3] = 42;
		put("req", "mut-push-encrlen42", c, n);
		memcpy(c, b, n);
		c[n - KL_MIKEY_MAC_LEN - 1] = 0;
		put("req", "mut-push-macalg0", c, n);
		/* kind 7 with V (EXT next 9, V after the EXT), and kind 4 with a KEMAC */
		memcpy(c, b, k);
		c[42 + strlen(VLRA)] = KL_PT_V; /* the EXT's next payload */
		c[k] = KL_PT_LAST;
		c[k + 1] = 1;
		memcpy(c + k + 2, b + n - KL_MIKEY_MAC_LEN, KL_MIKEY_MAC_LEN);
		put("req", "mut-push-v", c, k + KL_MIKEY_V_LEN);
	}
	{
		struct kl_mikey_req_spec d4 = sp;

		d4.source_ue_len = 0;
		d4.role = 0;
		d4.peer_server = (const uint8_t *)VLRB;
		d4.peer_server_len = (uint16_t)strlen(VLRB);
		n = push_req(c, &d4, 1);
		c[42 + strlen(VLRA) + 4] = KL_KIND_DH;
		put("req", "mut-dh-kemac", c, n);
	}
	/* kind 7's answer: EXT 250 (kind 7), V */
	n = push_req(b, &sp, 1);
	parsed(b, n, &r);
	put_resp("valid-resp-push", o, resp_v(o, &r, VLRB, NULL, 0));
}

/* fuzz_push_open (corpus/push): odd first byte + flags + a KEMAC plaintext that the target
 * encrypts and MACs itself (one 32-byte key with SPI 0, and what is not that), even first byte +
 * a kind 7 datagram as it came. */
static void gen_push_open(void)
{
	static const char *const VLRA = "vlr-a.mnc001.mcc001.example";
	uint8_t b[600], c[700], key[32], rand[KL_MIKEY_RAND_LEN];
	struct kl_mikey_req_spec sp;
	size_t n;
	static const struct {
		const char *name;
		uint8_t flags;
		size_t off; /* byte changed in the one-key plaintext, or SIZE_MAX */
		uint8_t val;
		int len; /* bytes of it kept: 41, fewer, or one more */
	} P[] = {
		{ "one-key", 0, SIZE_MAX, 0, 41 },	  { "one-key-prf1-resp", 3, SIZE_MAX, 0, 41 },
		{ "bad-mac", 4, SIZE_MAX, 0, 41 },	  { "spi1", 0, 40, 1, 41 },
		{ "spilen3", 0, 36, 3, 41 },		  { "next20", 0, 0, KL_PT_KEYDATA, 41 },
		{ "type-tgk", 0, 1, 0x01, 41 },		  { "keylen31", 0, 3, 31, 41 },
		{ "keylen0", 0, 3, 0, 41 },		  { "short10", 0, SIZE_MAX, 0, 10 },
		{ "short9", 0, SIZE_MAX, 0, 9 },	  { "long42", 0, SIZE_MAX, 0, 42 },
		{ "empty", 0, SIZE_MAX, 0, 0 },
	};

	fill(key, sizeof(key));
	for (size_t i = 0; i < sizeof(P) / sizeof(P[0]); i++) {
		char name[64];

		c[0] = 1;
		c[1] = P[i].flags;
		memcpy(c + 2, "\x00\x21\x00\x20", 4);
		memcpy(c + 6, key, 32);
		memcpy(c + 38, "\x04\x00\x00\x00\x00\x00", 6);
		if (P[i].off != SIZE_MAX)
			c[2 + P[i].off] = P[i].val;
		snprintf(name, sizeof(name), "pt-%s", P[i].name);
		put("push", name, c, 2 + (size_t)P[i].len);
	}
	/* a 16-byte key: key data of 25 bytes */
	memcpy(c + 2, "\x00\x21\x00\x10", 4);
	memcpy(c + 22, "\x04\x00\x00\x00\x00", 5);
	c[1] = 0;
	put("push", "pt-key16", c, 2 + 25);
	fill(rand, sizeof(rand));
	sp = (struct kl_mikey_req_spec){
		.rand = rand, .id = (const uint8_t *)VLRA, .id_len = (uint16_t)strlen(VLRA),
		.ts = 0xE7A1B2C3D4E5F607ull, .csb_id = 0x41424344, .kind = KL_KIND_PUSH,
		.source_ue = (const uint8_t *)"ue1@prose.example", .source_ue_len = 17,
		.peer_ue = (const uint8_t *)"ue2@prose.example", .peer_ue_len = 17, .role = 2,
		.push_key = key, .push_key_len = 32,
	};
	b[0] = 0;
	n = push_req(b + 1, &sp, 1);
	put("push", "raw-push", b, n + 1);
	put("push", "raw-push-trunc", b, n);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR (writes CORPUS_DIR/req and CORPUS_DIR/resp)\n",
			argv[0]);
		return 2;
	}
	out_root = argv[1];
	memset(id128, 'a', KL_MIKEY_ID_MAX);
	memcpy(id128, "sip:", 4);
	memset(ue128, '7', KL_MIKEY_ID_MAX);
	mkdir_p("");
	mkdir_p("req");
	mkdir_p("resp");
	gen_requests();
	gen_responses();
	gen_peer_kinds();
	gen_kinds_4_7();
	mkdir_p("push");
	gen_push_open();
	printf("wrote %u requests, %u responses and %u push seeds under %s\n", n_req, n_resp,
	       n_push, out_root);
	return 0;
}
