/* SPDX-License-Identifier: BSD-3-Clause */
/* Milenage f1..f5* (TS 35.206 section 4) and key check values; both use AES-128-ECB from OpenSSL.
 * Neither is on the packet path. */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kl_crypto.h"

static int aes_ecb(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int ol = 0, ok;

	if (!x)
		return -EIO;
	ok = EVP_EncryptInit_ex(x, EVP_aes_128_ecb(), NULL, key, NULL) == 1 &&
	     EVP_CIPHER_CTX_set_padding(x, 0) == 1 && EVP_EncryptUpdate(x, out, &ol, in, 16) == 1 &&
	     ol == 16;
	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -EIO;
}

int kl_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16])
{
	uint8_t e[16];

	if (!k || !op || !opc || aes_ecb(k, op, e) < 0)
		return -EIO;
	for (unsigned i = 0; i < 16; i++)
		opc[i] = op[i] ^ e[i];
	return 0;
}

/* OUT = E_K(rot(x XOR OPc, r) XOR c) XOR OPc, rotations being whole bytes in Milenage. */
static int milenage_out(const uint8_t k[16], const uint8_t opc[16], const uint8_t x[16],
			unsigned r_bytes, uint8_t cbyte, uint8_t out[16])
{
	uint8_t t[16], in[16];

	for (unsigned i = 0; i < 16; i++)
		t[i] = x[i] ^ opc[i];
	for (unsigned i = 0; i < 16; i++)
		in[i] = t[(i + r_bytes) % 16];
	in[15] ^= cbyte;
	if (aes_ecb(k, in, out) < 0)
		return -EIO;
	for (unsigned i = 0; i < 16; i++)
		out[i] ^= opc[i];
	return 0;
}

int kl_milenage(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
		const uint8_t sqn[6], const uint8_t amf[2], struct kl_milenage_out *out)
{
	uint8_t temp[16], x[16], in1[16], o[16];
	int rc = -EIO;

	if (!k || !opc || !rand || !sqn || !amf || !out)
		return -EINVAL;
	for (unsigned i = 0; i < 16; i++)
		x[i] = rand[i] ^ opc[i];
	if (aes_ecb(k, x, temp) < 0)
		goto out;
	memcpy(in1, sqn, 6);
	memcpy(in1 + 6, amf, 2);
	memcpy(in1 + 8, sqn, 6);
	memcpy(in1 + 14, amf, 2);
	/* f1: E_K(TEMP XOR rot(IN1 XOR OPc, r1) XOR c1) XOR OPc, r1 = 64 bits, c1 = 0 */
	{
		uint8_t t[16], in[16];

		for (unsigned i = 0; i < 16; i++)
			t[i] = in1[i] ^ opc[i];
		for (unsigned i = 0; i < 16; i++)
			in[i] = temp[i] ^ t[(i + 8) % 16];
		if (aes_ecb(k, in, o) < 0)
			goto out;
		for (unsigned i = 0; i < 16; i++)
			o[i] ^= opc[i];
		memcpy(out->mac_a, o, 8);
		memcpy(out->mac_s, o + 8, 8);
	}
	/* f2/f5: OUT2 = E_K(rot(TEMP XOR OPc, r2) XOR c2) XOR OPc, r2 = 0, c2 = 1 */
	for (unsigned i = 0; i < 16; i++)
		x[i] = temp[i];
	if (milenage_out(k, opc, x, 0, 1, o) < 0)
		goto out;
	memcpy(out->res, o + 8, 8);
	memcpy(out->ak, o, 6);
	if (milenage_out(k, opc, x, 4, 2, o) < 0) /* f3: r3 = 32, c3 = 2 */
		goto out;
	memcpy(out->ck, o, 16);
	if (milenage_out(k, opc, x, 8, 4, o) < 0) /* f4: r4 = 64, c4 = 4 */
		goto out;
	memcpy(out->ik, o, 16);
	if (milenage_out(k, opc, x, 12, 8, o) < 0) /* f5*: r5 = 96, c5 = 8 */
		goto out;
	memcpy(out->ak_star, o, 6);
	rc = 0;
out:
	kl_memzero(temp, sizeof(temp));
	kl_memzero(x, sizeof(x));
	kl_memzero(o, sizeof(o));
	return rc;
}

int kl_kcv(const uint8_t *key, size_t len, uint8_t kcv[KL_KCV_LEN])
{
	static const uint8_t zero[16];
	uint8_t b[32];
	unsigned int bl = 0;

	if (!key || !len || !kcv)
		return -EINVAL;
	if (len == 16) {
		if (aes_ecb(key, zero, b) < 0)
			return -EIO;
	} else if (!HMAC(EVP_sha256(), key, (int)len, zero, sizeof(zero), b, &bl)) {
		return -EIO;
	}
	memcpy(kcv, b, KL_KCV_LEN);
	kl_memzero(b, sizeof(b));
	return 0;
}
