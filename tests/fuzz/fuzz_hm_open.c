/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the UE side's HM token opener (kl_client_hm_open_burst, PROTOCOL.md section
 * 9). The first byte picks the mode:
 *  - even: the rest is K*x (32 bytes) then a token, opened as it came (format and tag checks on
 *    arbitrary bytes);
 *  - odd: the rest is a token's plaintext, sealed here with a fixed key, nonce and servers, so
 *    that every plaintext reaches the parser behind the tag. An independent parse of the layout
 *    (Ks 16 || valid-to 8 || len || IDUEa || len || IDUEb, exactly; identities of 1..128 bytes)
 *    says what the opener must
 *    answer: the session key with valid-to after now, -ETIME when it has passed, -EBADMSG when
 *    the layout is wrong; -EPROTO when asked for other UEs.
 * Never a key released with a non-zero rc.
 */
#include <errno.h>
#include <string.h>

#include "kl_engine.h"
#include "fuzz_common.h"

static const uint8_t KEY[32] = { 0x4b, 0x2a, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa,
				 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
				 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e };
static const uint8_t NONCE[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const char VA[] = "vlr-a.example", VB[] = "vlr-b.example";
#define NOW ((uint64_t)3900000000u << 32)

static struct kl_crypto *crypto(void)
{
	static struct kl_crypto *c;

	if (!c) {
		kl_crypto_set_log(NULL);
		c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	}
	FZ_CHECK(c);
	return c;
}

static void open_with(const uint8_t *k, const uint8_t *tok, size_t len, const uint8_t *a,
		      size_t la, const uint8_t *b, size_t lb, struct kl_hm_open *o)
{
	static const uint8_t zero[16];

	*o = (struct kl_hm_open){ .kstar = k, .token = tok, .token_len = (uint16_t)len,
				  .vlra = (const uint8_t *)VA, .vlra_len = sizeof(VA) - 1,
				  .vlrb = (const uint8_t *)VB, .vlrb_len = sizeof(VB) - 1,
				  .ue_a = a, .ue_a_len = (uint16_t)la, .ue_b = b,
				  .ue_b_len = (uint16_t)lb, .now = NOW };
	FZ_CHECK(kl_client_hm_open_burst(crypto(), o, 1) == 1);
	FZ_CHECK(o->rc == 0 || o->rc == -EBADMSG || o->rc == -EPERM || o->rc == -EPROTO ||
		 o->rc == -ETIME);
	if (o->rc)
		FZ_CHECK(memcmp(o->ks, zero, 16) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t tok[1 + 12 + 1024 + 16];
	struct kl_hm_open o;
	const uint8_t *pt = data + 1;
	size_t n = size ? size - 1 : 0;

	if (!size)
		return 0;
	if (!(data[0] & 1)) {
		if (n >= 32)
			open_with(pt, pt + 32, n - 32 > 1024 ? 1024 : n - 32, (const uint8_t *)"a", 1,
				  (const uint8_t *)"b", 1, &o);
		return 0;
	}
	if (n > 1024)
		return 0;
	{
		uint8_t aad[3 + 26];
		struct kl_gcm_op g = { .key = KEY, .iv = NONCE, .aad = aad, .in = pt, .out = tok + 13,
				       .len = (uint16_t)n, .tag = tok + 13 + n };
		size_t la = n > 24 ? pt[24] : 0, lb = n > 25 + la ? pt[25 + la] : 0;
		int good = n >= 26 && la && lb && la <= KL_MIKEY_ID_MAX && lb <= KL_MIKEY_ID_MAX &&
			   26 + la + lb == n;
		uint64_t vt = 0;

		aad[0] = 1;
		aad[1] = sizeof(VA) - 1;
		memcpy(aad + 2, VA, sizeof(VA) - 1);
		aad[2 + sizeof(VA) - 1] = sizeof(VB) - 1;
		memcpy(aad + 3 + sizeof(VA) - 1, VB, sizeof(VB) - 1);
		g.aad_len = sizeof(aad);
		tok[0] = 1;
		memcpy(tok + 1, NONCE, 12);
		FZ_CHECK(kl_gcm_seal_burst(crypto(), &g, 1) == 1);
		for (unsigned i = 0; good && i < 8; i++)
			vt = vt << 8 | pt[16 + i];
		if (good) {
			open_with(KEY, tok, 13 + n + 16, pt + 25, la, pt + 26 + la, lb, &o);
			if (n + 13 + 16 < 1 + 12 + 28 + 16)
				FZ_CHECK(o.rc == -EBADMSG);
			else if (vt <= NOW)
				FZ_CHECK(o.rc == -ETIME);
			else
				FZ_CHECK(o.rc == 0 && o.valid_to == vt && !memcmp(o.ks, pt, 16));
			/* asked for another pair of UEs */
			open_with(KEY, tok, 13 + n + 16,
				  (const uint8_t *)(la == 1 && pt[25] == 'x' ? "y" : "x"), 1,
				  pt + 26 + la, lb, &o);
			FZ_CHECK(o.rc != 0);
		} else {
			open_with(KEY, tok, 13 + n + 16, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1,
				  &o);
			FZ_CHECK(o.rc == -EBADMSG);
		}
	}
	return 0;
}
