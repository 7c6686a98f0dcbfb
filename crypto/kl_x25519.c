/* SPDX-License-Identifier: BSD-3-Clause */
/* X25519 (RFC 7748) through OpenSSL's EVP interface: kl_crypto.h. */
#include <errno.h>
#include <string.h>

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

int kl_dh_public(struct kl_crypto *c, const struct kl_hmac_key *kx, uint8_t p[KL_X25519_LEN])
{
	uint8_t s[KL_KDF_OUT_LEN];
	int rc;

	if (!p)
		return -EINVAL;
	rc = kl_derive_hk(c, KL_KDF_DH_SCALAR, kx, NULL, 0, s);
	if (!rc)
		rc = kl_x25519_public(s, p);
	kl_memzero(s, sizeof(s));
	return rc;
}

int kl_dh_ks(struct kl_crypto *c, const struct kl_hmac_key *kx, const uint8_t peer[KL_X25519_LEN],
	     const uint8_t *id, size_t id_len, const uint8_t *peer_id, size_t peer_id_len,
	     uint8_t ks[KL_KDF_OUT_LEN])
{
	size_t m = id_len < peer_id_len ? id_len : peer_id_len;
	uint8_t s[KL_KDF_OUT_LEN], x[KL_X25519_LEN];
	struct kl_kdf_param ids[2];
	struct kl_hmac_key hx;
	int cmp, rc;

	if (!ks)
		return -EINVAL;
	kl_memzero(ks, KL_KDF_OUT_LEN);
	if (!peer || !id || !peer_id || !id_len || !peer_id_len || id_len > KL_KDF_PARAM_MAX ||
	    peer_id_len > KL_KDF_PARAM_MAX)
		return -EINVAL;
	cmp = memcmp(id, peer_id, m);
	if (!cmp && id_len == peer_id_len)
		return -EINVAL;
	if (!cmp)
		cmp = id_len < peer_id_len ? -1 : 1;
	ids[cmp < 0 ? 0 : 1] = (struct kl_kdf_param){ .data = id, .len = id_len };
	ids[cmp < 0 ? 1 : 0] = (struct kl_kdf_param){ .data = peer_id, .len = peer_id_len };
	rc = kl_derive_hk(c, KL_KDF_DH_SCALAR, kx, NULL, 0, s);
	if (!rc)
		rc = kl_x25519_shared(s, peer, x);
	kl_memzero(s, sizeof(s));
	if (!rc && kl_hmac_key_init(KL_HASH_SHA256, x, sizeof(x), &hx))
		rc = -EIO;
	kl_memzero(x, sizeof(x));
	if (!rc) {
		rc = kl_derive_hk(c, KL_KDF_DH_KS, &hx, ids, 2, ks);
		kl_hmac_key_wipe(&hx);
	}
	if (rc)
		kl_memzero(ks, KL_KDF_OUT_LEN);
	return rc;
}

void kl_dh_pub_fp(const uint8_t p[KL_X25519_LEN], uint8_t fp[KL_DH_FP_LEN])
{
	uint8_t d[32];
	unsigned n = 0;

	if (!p || !fp)
		return;
	if (EVP_Digest(p, KL_X25519_LEN, d, &n, EVP_sha256(), NULL) != 1 || n != sizeof(d))
		memset(d, 0, sizeof(d));
	memcpy(fp, d, KL_DH_FP_LEN);
}
