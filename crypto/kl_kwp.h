/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AES key wrap with padding (RFC 5649, over the RFC 3394 wrapping process W) with a keyed object
 * that is set up once per KEK: the durable store unwraps millions of records with one KEK.
 *
 * Two implementations give byte-identical results:
 *  - "aes-ni": RFC 5649/3394 framing here, each AES block with the CPU's AES instructions
 *    (AESENC/AESDEC intrinsics) on a key schedule expanded by IPsec-MB (aes_keyexp_*_sse);
 *  - "openssl": OpenSSL 3's EVP AES-*-WRAP-PAD, the reference (OpenSSL 3.0's wrap ciphers run
 *    its table AES, not AES-NI: about 10x slower). A context lives for one call only.
 * KL_KWP_AUTO picks aes-ni when the CPU has AES (__builtin_cpu_supports) unless the environment
 * variable KL_KWP=openssl forces the reference (for tests and for a suspected CPU problem).
 *
 * The key object holds the KEK and, for aes-ni, its expanded encryption and decryption schedules:
 * KEK-equivalent secrets. Place it in protected memory when the KEK lives there (the store puts
 * it in OpenSSL's secure heap or a locked page) and always release it with kl_kwp_free, which
 * wipes it. A key object is read-only after kl_kwp_init: threads may share it.
 */
#ifndef KL_KWP_H
#define KL_KWP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KL_KWP_MAX_IN 4096 /* longest plaintext (wrap) or wrapped text (unwrap), bytes */
/** Room needed to wrap len plaintext bytes: len rounded up to 8, plus the 8-byte AIV. */
#define KL_KWP_WRAP_LEN(len) ((((size_t)(len) + 7) & ~(size_t)7) + 8)

enum kl_kwp_impl {
	KL_KWP_AUTO = 0,    /* aes-ni when the CPU has it, else openssl; KL_KWP=openssl forces it */
	KL_KWP_AESNI = 1,   /* -ENOTSUP from kl_kwp_init when the CPU (or this build) lacks AES-NI */
	KL_KWP_OPENSSL = 2, /* the reference */
};

struct evp_cipher_st;

struct kl_kwp_key {
	uint8_t enc[15][16];	       /* aes-ni: round keys 0..rounds */
	uint8_t dec[15][16];	       /* aes-ni: AESDEC keys, dec[i] used at round i */
	uint8_t kek[32];	       /* openssl: the KEK itself */
	struct evp_cipher_st *cipher; /* openssl: AES-*-WRAP-PAD, fetched once */
	uint8_t kek_len;	       /* 16, 24 or 32 */
	uint8_t rounds;		       /* 10, 12 or 14 */
	uint8_t impl;		       /* enum kl_kwp_impl, never AUTO once set up */
} __attribute__((aligned(16)));

/** 1 when this build and CPU can run the aes-ni implementation. */
int kl_kwp_aesni_available(void);

/**
 * Set up a key object for a KEK (16, 24 or 32 bytes) with the given implementation.
 * @return 0, -EINVAL (NULL, bad length or impl), -ENOTSUP (KL_KWP_AESNI without AES-NI),
 *         -ENOMEM (OpenSSL could not fetch the wrap cipher). On failure k is wiped.
 */
int kl_kwp_init_impl(struct kl_kwp_key *k, const uint8_t *kek, size_t len,
		     enum kl_kwp_impl impl);
/** kl_kwp_init_impl(k, kek, len, KL_KWP_AUTO). */
int kl_kwp_init(struct kl_kwp_key *k, const uint8_t *kek, size_t len);
/** Release and wipe a key object (NULL, or one zeroed / already freed, is accepted). */
void kl_kwp_free(struct kl_kwp_key *k);
/** "aes-ni" or "openssl". */
const char *kl_kwp_impl_name(const struct kl_kwp_key *k);

/**
 * Wrap inlen (1..KL_KWP_MAX_IN) bytes. out needs KL_KWP_WRAP_LEN(inlen) bytes (cap). in and out
 * may be the same buffer.
 * @return the wrapped length (KL_KWP_WRAP_LEN(inlen)), -EINVAL (NULL, bad length or cap), -EIO
 *         (OpenSSL failed).
 */
long kl_kwp_wrap(const struct kl_kwp_key *k, const uint8_t *in, size_t inlen, uint8_t *out,
		 size_t cap);
/**
 * Unwrap inlen bytes (16..KL_KWP_MAX_IN, a multiple of 8). out needs inlen - 8 bytes (cap). The
 * integrity check value and the padding are checked in constant time with respect to their
 * contents; on failure out[0 .. inlen - 8) is wiped.
 * @return the plaintext length, -EINVAL (NULL, bad length or cap), -EBADMSG (integrity check
 *         failed: damaged, altered, or another KEK), -ENOMEM (openssl: no cipher context).
 */
long kl_kwp_unwrap(const struct kl_kwp_key *k, const uint8_t *in, size_t inlen, uint8_t *out,
		   size_t cap);

#ifdef __cplusplus
}
#endif
#endif
