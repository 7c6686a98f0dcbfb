/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: kind 7's KEMAC as the receiving server opens it (PROTOCOL.md section 10):
 * kl_mikey_parse_req, the server-to-server transport keys (PSK = KDF(K(VLRa,VLRb), FF09, "s2s"),
 * keys of section 3), the KEMAC's MAC over every byte before it, AES-CM decryption of its encr
 * data with the request's T and CSB ID, then kl_mikey_parse_keydata on a buffer of exactly the
 * encr data's size. What comes out is the pushed p2 / p4: one key data sub-payload holding a
 * 32-byte key with SPI 0, nothing else. The first byte picks the mode:
 *  - even: the rest is a datagram, opened as it came (random bytes rarely carry a good MAC:
 *    no key may come out of one that does not);
 *  - odd: byte 1 holds flags (bit 0 PRF, bit 1 role, bit 2 one MAC bit flipped), the rest is the
 *    KEMAC's plaintext: the harness lays a kind 7 request around it (encr data length = its
 *    length), encrypts and MACs it as a peer would, so every plaintext reaches the key data
 *    parser behind the MAC. A reference reading of the plaintext (exactly 0x00 0x21 0x0020,
 *    32 bytes, 0x04, SPI 0) says what the opener must answer.
 * abort() only on a violated invariant, i.e. a real bug.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_mikey.h"
#include "fuzz_common.h"

static const uint8_t PAIR[32] = "fuzz-pair-key-mme1-mme2-32bytes!";
static const uint8_t RANDV[16] = { 0x70, 0x75, 0x73, 0x68, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const char MME1[] = "mme1.example", UE1[] = "ue1@prose.example", UE2[] = "ue2@prose.example";
#define PUSH_VALUE 32
#define ENCR_ONE (4 + PUSH_VALUE + 5) /* the one key data sub-payload of a push */

static struct kl_crypto *cc;
static uint8_t s2s_psk[KL_KDF_OUT_LEN];

static void init_once(void)
{
	struct kl_hmac_key k;
	struct kl_kdf_param p = { (const uint8_t *)"s2s", 3 };

	if (cc)
		return;
	kl_crypto_set_log(NULL);
	cc = kl_crypto_create(KL_CRYPTO_OPENSSL);
	FZ_CHECK(cc);
	FZ_CHECK(kl_hmac_key_init(KL_HASH_SHA256, PAIR, sizeof(PAIR), &k) == 0);
	FZ_CHECK(kl_kdf(cc, &k, 0xFF09, &p, 1, s2s_psk) == 0);
}

/* auth_key, encr_key, salt_key of a request under the s2s PSK. */
static void transport_keys(uint8_t prf, uint32_t csb_id, const uint8_t *rand, uint8_t *auth,
			   uint8_t *encr, uint8_t *salt)
{
	struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
	int nch = kl_prf_key_init((enum kl_prf)prf, s2s_psk, sizeof(s2s_psk), ch, KL_PRF_MAX_CHUNKS);
	struct kl_mikey_tk_op op = { .chunks = ch, .rand = rand, .auth_key = auth, .encr_key = encr,
				     .salt_key = salt, .csb_id = csb_id, .nchunks = (uint8_t)nch,
				     .rand_len = KL_MIKEY_RAND_LEN, .cs_id = 0xFF };

	FZ_CHECK(nch == 1 && kl_mikey_transport_keys_burst(cc, &op, 1) == 1);
}

static void aescm(const uint8_t *encr, const uint8_t *salt, const struct kl_mikey_req *r,
		  const uint8_t *in, uint8_t *out, size_t len)
{
	struct kl_aescm_op op = { .key = encr, .salt = salt, .in = in, .out = out, .ntp_ts = r->ts,
				  .csb_id = r->csb_id, .len = (uint32_t)len };

	FZ_CHECK(kl_aescm_burst(cc, &op, 1) == 1);
}

/*
 * Open a kind 7 request as the engine does. @return 0 with the pushed value in p; -EBADMSG (not
 * a well-formed kind 7 request), -EPERM (MAC), -EPROTO (the key data is not one 32-byte key with
 * SPI 0). p is untouched unless 0.
 */
static int push_open(const uint8_t *d, size_t n, uint8_t p[PUSH_VALUE])
{
	uint8_t auth[KL_MIKEY_AUTH_KEY_LEN], encr[KL_MIKEY_ENCR_KEY_LEN], salt[KL_MIKEY_SALT_KEY_LEN];
	uint8_t mac[KL_SHA1_LEN], *plain;
	struct kl_hmac_key ak;
	struct kl_mikey_req r;
	struct kl_mikey_key keys[KL_MIKEY_MAX_KEYS];
	int nk, rc = -EPROTO;

	if (kl_mikey_parse_req(d, n, &r) != KL_DROP_NONE || r.kind != KL_KIND_PUSH)
		return -EBADMSG;
	/* the view of the KEMAC inside the datagram: encr data, MAC alg, MAC, nothing after */
	FZ_CHECK(r.encr_len >= 1 && fz_inside(d + r.encr_off, r.encr_len, d, n));
	FZ_CHECK((size_t)r.encr_off + r.encr_len + 1 == r.mac_off && d[r.mac_off - 1] == 1);
	FZ_CHECK((size_t)r.mac_off + KL_MIKEY_MAC_LEN == n && r.mac == d + r.mac_off);
	FZ_CHECK(r.encr_len <= ENCR_ONE); /* the parser bounds what the engine decrypts */
	transport_keys(r.prf, r.csb_id, r.rand, auth, encr, salt);
	FZ_CHECK(kl_hmac_key_init(KL_HASH_SHA1, auth, sizeof(auth), &ak) == 0);
	FZ_CHECK(kl_hmac(cc, &ak, d, r.mac_off, mac) == 0);
	if (memcmp(mac, r.mac, KL_MIKEY_MAC_LEN) != 0)
		return -EPERM;
	plain = malloc(r.encr_len);
	FZ_CHECK(plain);
	aescm(encr, salt, &r, d + r.encr_off, plain, r.encr_len);
	nk = kl_mikey_parse_keydata(plain, r.encr_len, keys, 1);
	FZ_CHECK(nk == -EBADMSG || nk == 1);
	if (nk == 1) {
		FZ_CHECK(fz_inside(keys[0].key, keys[0].key_len, plain, r.encr_len));
		if (keys[0].key_len == PUSH_VALUE && keys[0].key_id == 0) {
			memcpy(p, keys[0].key, PUSH_VALUE);
			rc = 0;
		}
	}
	kl_memzero(plain, r.encr_len);
	free(plain);
	return rc;
}

/* A kind 7 request around plaintext key data pt (any length), encrypted and MACed. */
static size_t lay_push(uint8_t *b, size_t cap, const uint8_t *pt, size_t len, uint8_t flags)
{
	static const uint8_t dummy[1] = { 0 };
	uint8_t auth[KL_MIKEY_AUTH_KEY_LEN], encr[KL_MIKEY_ENCR_KEY_LEN], salt[KL_MIKEY_SALT_KEY_LEN];
	struct kl_mikey_req_spec s = {
		.rand = RANDV, .id = (const uint8_t *)MME1, .id_len = sizeof(MME1) - 1,
		.ts = 0xE7A1B2C3D4E5F607ull + flags, .csb_id = 0x07070707u ^ (uint32_t)len,
		.prf = flags & 1, .kind = KL_KIND_PUSH, .source_ue = (const uint8_t *)UE1,
		.source_ue_len = sizeof(UE1) - 1, .peer_ue = (const uint8_t *)UE2,
		.peer_ue_len = sizeof(UE2) - 1, .role = (uint8_t)(1 + ((flags >> 1) & 1)),
		.push_key = dummy, .push_key_len = 1,
	};
	struct kl_mikey_layout lay;
	struct kl_mikey_req view = { .ts = s.ts, .csb_id = s.csb_id };
	struct kl_hmac_key ak;
	size_t n, mo;

	FZ_CHECK(kl_mikey_build_req_kemac(b, cap, &s, &lay) > 0);
	/* the builder's KEMAC with its encr data replaced by pt: length field, data, MAC alg, MAC */
	n = (size_t)lay.encr_off + len + 1 + KL_MIKEY_MAC_LEN;
	FZ_CHECK(n <= cap);
	kl_put16(b + lay.encr_off - 2, (uint16_t)len);
	transport_keys(s.prf, s.csb_id, RANDV, auth, encr, salt);
	aescm(encr, salt, &view, pt, b + lay.encr_off, len);
	mo = lay.encr_off + len + 1;
	b[mo - 1] = 1;
	FZ_CHECK(kl_hmac_key_init(KL_HASH_SHA1, auth, sizeof(auth), &ak) == 0);
	FZ_CHECK(kl_hmac(cc, &ak, b, mo, b + mo) == 0);
	if (flags & 4)
		b[mo + (len % KL_MIKEY_MAC_LEN)] ^= 0x80;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t msg[KL_MIKEY_REQ_MAX + 64];
	static const uint8_t spi0[5] = { 4, 0, 0, 0, 0 };
	uint8_t p[PUSH_VALUE], flags;
	const uint8_t *pt;
	size_t len, n;
	int rc, one;

	init_once();
	if (!size)
		return 0;
	memset(p, 0, sizeof(p));
	if (!(data[0] & 1)) {
		rc = push_open(data + 1, size - 1, p);
		FZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPERM || rc == -EPROTO);
		if (rc) {
			static const uint8_t zero[PUSH_VALUE];

			FZ_CHECK(memcmp(p, zero, sizeof(p)) == 0);
		}
		return 0;
	}
	if (size < 2 || size - 2 > 200)
		return 0;
	flags = data[1];
	pt = data + 2;
	len = size - 2;
	n = lay_push(msg, sizeof(msg), pt, len, flags);
	rc = push_open(msg, n, p);
	/* the reference: exactly one sub-payload, last, TEK with SPI, a 32-byte key, SPI 0 */
	one = len == ENCR_ONE && pt[0] == KL_PT_LAST && pt[1] == 0x21 && pt[2] == 0 &&
	      pt[3] == PUSH_VALUE && memcmp(pt + 4 + PUSH_VALUE, spi0, 5) == 0;
	if (len < 1 || len > ENCR_ONE)
		FZ_CHECK(rc == -EBADMSG); /* no KEMAC holds that: the parser refuses it */
	else if (len < 4 + 1 + 5 && rc == -EBADMSG)
		; /* too short for any key data: the parser may refuse it before the MAC */
	else if (flags & 4)
		FZ_CHECK(rc == -EPERM);
	else if (one)
		FZ_CHECK(rc == 0 && memcmp(p, pt + 4, PUSH_VALUE) == 0);
	else
		FZ_CHECK(rc == -EPROTO);
	return 0;
}
