/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * OpenSSL 3 backend. HMAC resumes the SHA contexts from the precomputed midstates (the SHA block
 * functions use SHA-NI where the CPU has it); AES-CTR and AES-256-GCM re-key one EVP context (per
 * cipher and direction, made when the context is) per operation.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/sha.h>

#include "kl_crypto_priv.h"

struct ossl_state {
	EVP_CIPHER_CTX *ctr;
	EVP_CIPHER_CTX *gcm[2]; /* [0 seal, 1 open] */
};

static void hmac_sha1(const struct kl_hmac_key *k, const uint8_t *m, size_t n, uint8_t *mac)
{
	SHA_CTX x;
	uint8_t in[KL_SHA1_LEN];

	memset(&x, 0, sizeof(x));
	x.h0 = k->istate[0];
	x.h1 = k->istate[1];
	x.h2 = k->istate[2];
	x.h3 = k->istate[3];
	x.h4 = k->istate[4];
	x.Nl = 512;
	SHA1_Update(&x, m, n);
	SHA1_Final(in, &x);
	memset(&x, 0, sizeof(x));
	x.h0 = k->ostate[0];
	x.h1 = k->ostate[1];
	x.h2 = k->ostate[2];
	x.h3 = k->ostate[3];
	x.h4 = k->ostate[4];
	x.Nl = 512;
	SHA1_Update(&x, in, sizeof(in));
	SHA1_Final(mac, &x);
}

static void hmac_sha256(const struct kl_hmac_key *k, const uint8_t *m, size_t n, uint8_t *mac)
{
	SHA256_CTX x;
	uint8_t in[KL_SHA256_LEN];

	memset(&x, 0, sizeof(x));
	memcpy(x.h, k->istate, 32);
	x.Nl = 512;
	x.md_len = SHA256_DIGEST_LENGTH;
	SHA256_Update(&x, m, n);
	SHA256_Final(in, &x);
	memset(&x, 0, sizeof(x));
	memcpy(x.h, k->ostate, 32);
	x.Nl = 512;
	x.md_len = SHA256_DIGEST_LENGTH;
	SHA256_Update(&x, in, sizeof(in));
	SHA256_Final(mac, &x);
}

void kl_ossl_hmac_one(const struct kl_hmac_key *k, const uint8_t *m, size_t n, uint8_t *mac)
{
	if (k->alg == KL_HASH_SHA1)
		hmac_sha1(k, m, n, mac);
	else
		hmac_sha256(k, m, n, mac);
}

static int ossl_hmac(struct kl_crypto *c, enum kl_hash_alg alg, const struct kl_hmac_op *ops,
		     unsigned n)
{
	(void)c;
	if (alg == KL_HASH_SHA1)
		for (unsigned i = 0; i < n; i++)
			hmac_sha1(ops[i].key, ops[i].msg, ops[i].len, ops[i].mac);
	else
		for (unsigned i = 0; i < n; i++)
			hmac_sha256(ops[i].key, ops[i].msg, ops[i].len, ops[i].mac);
	return 0;
}

static int ossl_aes_ctr(struct kl_crypto *c, const struct kl_aes_ctr_op *ops, unsigned n)
{
	struct ossl_state *s = c->be;

	for (unsigned i = 0; i < n; i++) {
		int outl = 0;

		if (EVP_EncryptInit_ex(s->ctr, NULL, NULL, ops[i].key, ops[i].iv) != 1 ||
		    EVP_EncryptUpdate(s->ctr, ops[i].out, &outl, ops[i].in, (int)ops[i].len) != 1 ||
		    (uint32_t)outl != ops[i].len)
			return -EIO;
	}
	return 0;
}

/* One op on a context whose cipher is set: re-keying with the IV resets it, nothing is allocated.
 * @return 0, -EBADMSG (open: wrong tag) or -EIO. */
static int gcm_one(EVP_CIPHER_CTX *x, struct kl_gcm_op *op, int open)
{
	static const uint8_t none[1];
	int outl = 0, fl = 0;

	if (EVP_CipherInit_ex(x, NULL, NULL, op->key, op->iv, !open) != 1 ||
	    (op->aad_len && EVP_CipherUpdate(x, NULL, &outl, op->aad, op->aad_len) != 1) ||
	    (op->len && (EVP_CipherUpdate(x, op->out, &outl, op->in, op->len) != 1 || outl != op->len)))
		return -EIO;
	if (!open)
		return EVP_CipherFinal_ex(x, op->out ? op->out : (uint8_t *)none, &fl) == 1 &&
			       EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, KL_GCM_TAG_LEN, op->tag) == 1
		       ? 0
		       : -EIO;
	if (EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, KL_GCM_TAG_LEN, op->tag) != 1)
		return -EIO;
	/* OpenSSL compares the tag with CRYPTO_memcmp; a mismatch is the only way Final fails here. */
	return EVP_CipherFinal_ex(x, op->out ? op->out : (uint8_t *)none, &fl) == 1 ? 0 : -EBADMSG;
}

static int ossl_gcm(struct kl_crypto *c, struct kl_gcm_op *ops, unsigned n, int open)
{
	static const uint8_t zero_key[KL_GCM_KEY_LEN];
	struct ossl_state *s = c->be;
	EVP_CIPHER_CTX *x = s->gcm[open != 0];
	int rc = 0;

	for (unsigned i = 0; i < n; i++) {
		ops[i].rc = gcm_one(x, &ops[i], open);
		if (ops[i].rc == -EIO)
			rc = -EIO;
	}
	/* The last op's key schedule and GHASH key must not outlive the burst: key it with zeros. */
	if (EVP_CipherInit_ex(x, NULL, NULL, zero_key, NULL, -1) != 1)
		rc = -EIO;
	return rc;
}

static void ossl_destroy(struct kl_crypto *c)
{
	struct ossl_state *s = c->be;

	if (!s)
		return;
	EVP_CIPHER_CTX_free(s->ctr);
	EVP_CIPHER_CTX_free(s->gcm[0]);
	EVP_CIPHER_CTX_free(s->gcm[1]);
	free(s);
	c->be = NULL;
}

static const struct kl_backend_ops ossl_ops = {
	.hmac = ossl_hmac,
	.aes_ctr = ossl_aes_ctr,
	.gcm = ossl_gcm,
	.destroy = ossl_destroy,
};

int kl_backend_openssl_init(struct kl_crypto *c)
{
	struct ossl_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ctr = EVP_CIPHER_CTX_new();
	s->gcm[0] = EVP_CIPHER_CTX_new();
	s->gcm[1] = EVP_CIPHER_CTX_new();
	c->be = s;
	if (!s->ctr || !s->gcm[0] || !s->gcm[1] ||
	    EVP_EncryptInit_ex(s->ctr, EVP_aes_128_ctr(), NULL, NULL, NULL) != 1 ||
	    EVP_EncryptInit_ex(s->gcm[0], EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex(s->gcm[1], EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) {
		ossl_destroy(c);
		return -ENOMEM;
	}
	c->ops = &ossl_ops;
	snprintf(c->arch, sizeof(c->arch), "%s", OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
