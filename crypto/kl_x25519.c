/* SPDX-License-Identifier: BSD-3-Clause */
/* X25519 (RFC 7748) through OpenSSL's EVP interface: kl_crypto.h. */
#include <errno.h>

#include <openssl/evp.h>

#include "kl_crypto.h"

int kl_x25519_public(const uint8_t s[KL_X25519_LEN], uint8_t p[KL_X25519_LEN])
{
	EVP_PKEY *k;
	size_t n = KL_X25519_LEN;
	int rc = -EIO;

	if (!s || !p)
		return -EIO;
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, s, KL_X25519_LEN);
	if (k && EVP_PKEY_get_raw_public_key(k, p, &n) == 1 && n == KL_X25519_LEN)
		rc = 0;
	EVP_PKEY_free(k);
	return rc;
}

int kl_x25519_shared(const uint8_t s[KL_X25519_LEN], const uint8_t peer[KL_X25519_LEN],
		     uint8_t out[KL_X25519_LEN])
{
	EVP_PKEY *k = NULL, *pk = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = KL_X25519_LEN;
	uint8_t z = 0;
	int rc = -EIO;

	if (!s || !peer || !out)
		return -EIO;
	kl_memzero(out, KL_X25519_LEN);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, s, KL_X25519_LEN);
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, KL_X25519_LEN);
	if (!k || !pk)
		goto out;
	ctx = EVP_PKEY_CTX_new(k, NULL);
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, pk) != 1)
		goto out;
	/* OpenSSL refuses an all-zero result itself (RFC 7748 section 6.1); checked here too */
	if (EVP_PKEY_derive(ctx, out, &n) != 1 || n != KL_X25519_LEN) {
		kl_memzero(out, KL_X25519_LEN);
		rc = -EPERM;
		goto out;
	}
	for (unsigned i = 0; i < KL_X25519_LEN; i++)
		z |= out[i];
	rc = z ? 0 : -EPERM;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(k);
	return rc;
}
