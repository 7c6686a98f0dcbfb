/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * OpenSSL 3 backend. HMAC resumes the SHA contexts from the precomputed midstates (the SHA block
 * functions use SHA-NI where the CPU has it); AES-CTR re-keys one EVP context per operation.
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

static void ossl_destroy(struct kl_crypto *c)
{
	struct ossl_state *s = c->be;

	if (!s)
		return;
	EVP_CIPHER_CTX_free(s->ctr);
	free(s);
	c->be = NULL;
}

static const struct kl_backend_ops ossl_ops = {
	.hmac = ossl_hmac,
	.aes_ctr = ossl_aes_ctr,
	.destroy = ossl_destroy,
};

int kl_backend_openssl_init(struct kl_crypto *c)
{
	struct ossl_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ctr = EVP_CIPHER_CTX_new();
	if (!s->ctr || EVP_EncryptInit_ex(s->ctr, EVP_aes_128_ctr(), NULL, NULL, NULL) != 1) {
		EVP_CIPHER_CTX_free(s->ctr);
		free(s);
		return -ENOMEM;
	}
	c->be = s;
	c->ops = &ossl_ops;
	snprintf(c->arch, sizeof(c->arch), "%s", OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
