/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to crypto/: the backend interface and the context layout. */
#ifndef KL_CRYPTO_PRIV_H
#define KL_CRYPTO_PRIV_H

#include "kl_crypto.h"

/* The most operations handed to a backend in one call (IPsec-MB's IMB_MAX_BURST_SIZE). */
#define KL_SLICE 128u
#define KL_SCRATCH_LEN (2u * 1024u * 1024u) /* >= KL_KDF_S_MAX: any single S fits */

struct kl_backend_ops {
	/* All ops use alg; n <= KL_SLICE; arguments already validated. @return 0 or -EIO. */
	int (*hmac)(struct kl_crypto *c, enum kl_hash_alg alg, const struct kl_hmac_op *ops,
		    unsigned n);
	/* n <= KL_SLICE, every len > 0. @return 0 or -EIO. */
	int (*aes_ctr)(struct kl_crypto *c, const struct kl_aes_ctr_op *ops, unsigned n);
	/* AES-256-GCM seal (open = 0) or open; n <= KL_SLICE, arguments validated, NULL in/aad only
	 * with a zero length. Sets every rc (open: -EBADMSG on a wrong tag, out not yet zeroed).
	 * @return 0 or -EIO. */
	int (*gcm)(struct kl_crypto *c, struct kl_gcm_op *ops, unsigned n, int open);
	void (*destroy)(struct kl_crypto *c);
};

struct kl_prf_unit {
	uint8_t ab[KL_HMAC_MAX_LEN + KL_PRF_LABEL_MAX]; /* A_i || label */
	uint8_t anext[KL_HMAC_MAX_LEN];
	uint8_t blk[KL_HMAC_MAX_LEN];
	const struct kl_hmac_key *key;
	uint8_t *out;
	uint16_t label_len;
	uint8_t out_len;
	uint8_t hlen;
	uint8_t m; /* P-function blocks */
};

struct kl_crypto {
	enum kl_crypto_backend backend;
	const struct kl_backend_ops *ops;
	void *be;
	char arch[160];
	uint8_t *scratch; /* KDF S strings */
	struct kl_hmac_op split[KL_SLICE];
	struct kl_hmac_op hops[2 * KL_SLICE];
	struct kl_aes_ctr_op cops[KL_SLICE];
	uint8_t ivs[KL_SLICE][16];
	struct kl_prf_unit units[KL_SLICE];
};

int kl_backend_openssl_init(struct kl_crypto *c);
int kl_backend_ipsecmb_init(struct kl_crypto *c);

/* One HMAC on OpenSSL's SHA block functions: the OpenSSL backend, and the IPsec-MB backend for
 * message lengths IPsec-MB refuses. */
void kl_ossl_hmac_one(const struct kl_hmac_key *k, const uint8_t *m, size_t n, uint8_t *mac);

void kl_crypto_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline unsigned kl_hash_len(unsigned alg)
{
	return alg == KL_HASH_SHA1 ? KL_SHA1_LEN : KL_SHA256_LEN;
}

#endif
