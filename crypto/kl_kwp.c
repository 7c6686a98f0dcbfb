/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AES key wrap with padding (RFC 5649 over RFC 3394's W): AES-NI and OpenSSL implementations.
 * See kl_kwp.h. The AES-NI path needs no AES of its own: IPsec-MB expands the key, the CPU runs
 * the rounds; only the wrap framing (about 40 lines) is written here, and the tests hold it
 * byte for byte against OpenSSL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "kl_kwp.h"

#if defined(__x86_64__)
#define KWP_HAVE_NI 1
#include <intel-ipsec-mb.h>
#include <wmmintrin.h>
#define KWP_NI __attribute__((target("aes,sse4.1")))
#else
#define KWP_HAVE_NI 0
#endif

/* RFC 5649 section 3: the alternative initial value's constant half. */
static const uint8_t aiv_magic[4] = {0xa6, 0x59, 0x59, 0xa6};

int kl_kwp_aesni_available(void)
{
#if KWP_HAVE_NI
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
#else
	return 0;
#endif
}

static int args_ok(const struct kl_kwp_key *k, int enc, const uint8_t *in, size_t inlen,
		   const uint8_t *out, size_t cap)
{
	if (!k || !in || !out || !inlen || inlen > KL_KWP_MAX_IN)
		return 0;
	if (enc)
		return cap >= KL_KWP_WRAP_LEN(inlen);
	return inlen >= 16 && inlen % 8 == 0 && cap >= inlen - 8;
}

/* ---- AES-NI ------------------------------------------------------------------------------------- */

#if KWP_HAVE_NI

KWP_NI static void ni_expand(struct kl_kwp_key *k, const uint8_t *kek, size_t len)
{
	/* IPsec-MB's expansion writes with aligned stores: aligned scratch, then copied. */
	uint8_t enc[15][16] __attribute__((aligned(16)));
	uint8_t dec[15][16] __attribute__((aligned(16)));
	unsigned nr = k->rounds;

	if (len == 16)
		aes_keyexp_128_sse(kek, enc, dec);
	else if (len == 24)
		aes_keyexp_192_sse(kek, enc, dec);
	else
		aes_keyexp_256_sse(kek, enc, dec);
	memcpy(k->enc, enc, sizeof(k->enc));
	/* The equivalent inverse cipher's schedule in the order it is used (FIPS 197 5.3.5). */
	memcpy(k->dec[0], enc[nr], 16);
	for (unsigned i = 1; i < nr; i++)
		_mm_storeu_si128((__m128i *)k->dec[i],
				 _mm_aesimc_si128(_mm_load_si128((const __m128i *)enc[nr - i])));
	memcpy(k->dec[nr], enc[0], 16);
	OPENSSL_cleanse(enc, sizeof(enc));
	OPENSSL_cleanse(dec, sizeof(dec));
}

/* The round keys go to registers once per call; nr is a constant in each instance below, so the
 * round loops unroll. */
#define NI_LOAD_KEYS(rk, sched, nr)                                                              \
	__m128i rk[15];                                                                          \
	for (unsigned r_ = 0; r_ <= (nr); r_++)                                                  \
		rk[r_] = _mm_loadu_si128((const __m128i *)(sched)[r_])

KWP_NI static inline __attribute__((always_inline)) __m128i
ni_encrypt(const __m128i *rk, unsigned nr, __m128i b)
{
	b = _mm_xor_si128(b, rk[0]);
	for (unsigned r = 1; r < nr; r++)
		b = _mm_aesenc_si128(b, rk[r]);
	return _mm_aesenclast_si128(b, rk[nr]);
}

KWP_NI static inline __attribute__((always_inline)) __m128i
ni_decrypt(const __m128i *rk, unsigned nr, __m128i b)
{
	b = _mm_xor_si128(b, rk[0]);
	for (unsigned r = 1; r < nr; r++)
		b = _mm_aesdec_si128(b, rk[r]);
	return _mm_aesdeclast_si128(b, rk[nr]);
}

/* t of RFC 3394 as the 64-bit big-endian value XORed into A (the low half of an XMM register). */
KWP_NI static inline __attribute__((always_inline)) __m128i ni_t(uint64_t t)
{
	return _mm_cvtsi64_si128((long long)__builtin_bswap64(t));
}

/* RFC 3394 W over n >= 2 semiblocks at r, initial value a (low half); 1 semiblock: one block. */
KWP_NI static inline __attribute__((always_inline)) void
ni_wrap_core(const struct kl_kwp_key *k, unsigned nr, __m128i a, uint8_t *r, size_t n,
	     uint8_t *out)
{
	NI_LOAD_KEYS(rk, k->enc, nr);
	__m128i b;

	if (n == 1) {
		b = _mm_unpacklo_epi64(a, _mm_loadl_epi64((const __m128i *)r));
		_mm_storeu_si128((__m128i *)out, ni_encrypt(rk, nr, b));
		return;
	}
	for (uint64_t j = 0, t = 1; j < 6; j++) {
		for (size_t i = 0; i < n; i++, t++) {
			b = _mm_unpacklo_epi64(a, _mm_loadl_epi64((const __m128i *)(r + 8 * i)));
			b = ni_encrypt(rk, nr, b);
			a = _mm_xor_si128(b, ni_t(t));
			_mm_storel_epi64((__m128i *)(r + 8 * i), _mm_unpackhi_epi64(b, b));
		}
	}
	_mm_storel_epi64((__m128i *)out, a);
}

/* RFC 3394 W^-1: in is A || R, R already copied to r. @return A (low half). */
KWP_NI static inline __attribute__((always_inline)) __m128i
ni_unwrap_core(const struct kl_kwp_key *k, unsigned nr, const uint8_t *in, uint8_t *r, size_t n)
{
	NI_LOAD_KEYS(rk, k->dec, nr);
	__m128i a = _mm_loadl_epi64((const __m128i *)in), b;

	if (n == 1) {
		b = ni_decrypt(rk, nr, _mm_unpacklo_epi64(a, _mm_loadl_epi64((const __m128i *)r)));
		_mm_storel_epi64((__m128i *)r, _mm_unpackhi_epi64(b, b));
		return b;
	}
	for (uint64_t t = 6 * (uint64_t)n; t > 0;) {
		for (size_t i = n; i-- > 0; t--) {
			b = _mm_unpacklo_epi64(_mm_xor_si128(a, ni_t(t)),
					       _mm_loadl_epi64((const __m128i *)(r + 8 * i)));
			b = ni_decrypt(rk, nr, b);
			a = b;
			_mm_storel_epi64((__m128i *)(r + 8 * i), _mm_unpackhi_epi64(b, b));
		}
	}
	return a;
}

KWP_NI static void ni_wrap(const struct kl_kwp_key *k, __m128i a, uint8_t *r, size_t n,
			   uint8_t *out)
{
	switch (k->rounds) {
	case 14:
		ni_wrap_core(k, 14, a, r, n, out);
		break;
	case 12:
		ni_wrap_core(k, 12, a, r, n, out);
		break;
	default:
		ni_wrap_core(k, 10, a, r, n, out);
		break;
	}
}

KWP_NI static void ni_unwrap(const struct kl_kwp_key *k, const uint8_t *in, uint8_t *r,
			     size_t n, uint8_t a_out[8])
{
	__m128i a;

	switch (k->rounds) {
	case 14:
		a = ni_unwrap_core(k, 14, in, r, n);
		break;
	case 12:
		a = ni_unwrap_core(k, 12, in, r, n);
		break;
	default:
		a = ni_unwrap_core(k, 10, in, r, n);
		break;
	}
	_mm_storel_epi64((__m128i *)a_out, a);
}

KWP_NI static long ni_kwp_wrap(const struct kl_kwp_key *k, const uint8_t *in, size_t inlen,
			       uint8_t *out)
{
	size_t plen = KL_KWP_WRAP_LEN(inlen) - 8;
	uint8_t aiv[8];

	memcpy(aiv, aiv_magic, 4);
	aiv[4] = (uint8_t)(inlen >> 24);
	aiv[5] = (uint8_t)(inlen >> 16);
	aiv[6] = (uint8_t)(inlen >> 8);
	aiv[7] = (uint8_t)inlen;
	memmove(out + 8, in, inlen);
	memset(out + 8 + inlen, 0, plen - inlen);
	ni_wrap(k, _mm_loadl_epi64((const __m128i *)aiv), out + 8, plen / 8, out);
	return (long)plen + 8;
}

static long ni_kwp_unwrap(const struct kl_kwp_key *k, const uint8_t *in, size_t inlen,
			  uint8_t *out)
{
	size_t plen = inlen - 8;
	uint8_t a[8], first[16];
	uint64_t mli, bad, pad = 0;

	/* A before R moves: in and out may overlap. With one semiblock the block is in itself. */
	memcpy(first, in, 16);
	memmove(out, in + 8, plen);
	ni_unwrap(k, first, out, plen / 8, a);
	OPENSSL_cleanse(first, sizeof(first));
	/* RFC 5649 section 3 checks, without a branch on the secret-dependent values. */
	bad = (uint64_t)(a[0] ^ aiv_magic[0]) | (a[1] ^ aiv_magic[1]) | (a[2] ^ aiv_magic[2]) |
	      (a[3] ^ aiv_magic[3]);
	mli = (uint64_t)a[4] << 24 | (uint64_t)a[5] << 16 | (uint64_t)a[6] << 8 | a[7];
	bad |= 1 ^ (((plen - 8) - mli) >> 63); /* needs plen - 8 < mli */
	bad |= (plen - mli) >> 63;	       /* needs mli <= plen */
	for (size_t i = plen - 8; i < plen; i++) {
		uint64_t in_pad = (mli - 1 - i) >> 63; /* 1 when i >= mli */

		pad |= out[i] & (0 - in_pad);
	}
	bad |= pad;
	OPENSSL_cleanse(a, sizeof(a));
	if (bad) {
		OPENSSL_cleanse(out, plen);
		return -EBADMSG;
	}
	return (long)mli;
}

#endif /* KWP_HAVE_NI */

/* ---- OpenSSL (the reference) --------------------------------------------------------------------- */

static long ossl_run(const struct kl_kwp_key *k, int enc, const uint8_t *in, size_t inlen,
		     uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0;
	long rc;

	if (!c)
		return enc ? -EIO : -ENOMEM;
	/* Needed by the legacy EVP wrap ciphers; OpenSSL 3's provider ignores it. */
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_CipherInit_ex2(c, k->cipher, k->kek, NULL, enc, NULL) != 1) {
		rc = enc ? -EIO : -ENOMEM;
	} else if (EVP_CipherUpdate(c, out, &n, in, (int)inlen) != 1 || n <= 0 ||
		   EVP_CipherFinal_ex(c, out + n, &f) != 1) {
		rc = enc ? -EIO : -EBADMSG;
	} else {
		rc = (long)n + f;
	}
	if (rc < 0)
		ERR_clear_error();
	/* EVP_CIPHER_CTX_free wipes the schedule. */
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* ---- API ---------------------------------------------------------------------------------------- */

static enum kl_kwp_impl auto_impl(void)
{
	const char *e = secure_getenv("KL_KWP");

	if (e && !strcmp(e, "openssl"))
		return KL_KWP_OPENSSL;
	return kl_kwp_aesni_available() ? KL_KWP_AESNI : KL_KWP_OPENSSL;
}

int kl_kwp_init_impl(struct kl_kwp_key *k, const uint8_t *kek, size_t len,
		     enum kl_kwp_impl impl)
{
	static const char *const names[3] = {"AES-128-WRAP-PAD", "AES-192-WRAP-PAD",
					     "AES-256-WRAP-PAD"};

	if (!k)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	if (!kek || (len != 16 && len != 24 && len != 32))
		return -EINVAL;
	if (impl == KL_KWP_AUTO)
		impl = auto_impl();
	k->kek_len = (uint8_t)len;
	k->rounds = (uint8_t)(len / 4 + 6);
	switch (impl) {
	case KL_KWP_AESNI:
#if KWP_HAVE_NI
		if (!kl_kwp_aesni_available())
			return -ENOTSUP;
		ni_expand(k, kek, len);
		break;
#else
		return -ENOTSUP;
#endif
	case KL_KWP_OPENSSL:
		k->cipher = EVP_CIPHER_fetch(NULL, names[(len - 16) / 8], NULL);
		if (!k->cipher) {
			ERR_clear_error();
			memset(k, 0, sizeof(*k));
			return -ENOMEM;
		}
		memcpy(k->kek, kek, len);
		break;
	default:
		return -EINVAL;
	}
	k->impl = (uint8_t)impl;
	return 0;
}

int kl_kwp_init(struct kl_kwp_key *k, const uint8_t *kek, size_t len)
{
	return kl_kwp_init_impl(k, kek, len, KL_KWP_AUTO);
}

void kl_kwp_free(struct kl_kwp_key *k)
{
	if (!k)
		return;
	EVP_CIPHER_free(k->cipher);
	OPENSSL_cleanse(k, sizeof(*k));
}

const char *kl_kwp_impl_name(const struct kl_kwp_key *k)
{
	if (!k)
		return "none";
	return k->impl == KL_KWP_AESNI ? "aes-ni" : k->impl == KL_KWP_OPENSSL ? "openssl" : "none";
}

long kl_kwp_wrap(const struct kl_kwp_key *k, const uint8_t *in, size_t inlen, uint8_t *out,
		 size_t cap)
{
	if (!args_ok(k, 1, in, inlen, out, cap))
		return -EINVAL;
	switch (k->impl) {
#if KWP_HAVE_NI
	case KL_KWP_AESNI:
		return ni_kwp_wrap(k, in, inlen, out);
#endif
	case KL_KWP_OPENSSL:
		return ossl_run(k, 1, in, inlen, out);
	default:
		return -EINVAL; /* not set up, or freed */
	}
}

long kl_kwp_unwrap(const struct kl_kwp_key *k, const uint8_t *in, size_t inlen, uint8_t *out,
		   size_t cap)
{
	if (!args_ok(k, 0, in, inlen, out, cap))
		return -EINVAL;
	switch (k->impl) {
#if KWP_HAVE_NI
	case KL_KWP_AESNI:
		return ni_kwp_unwrap(k, in, inlen, out);
#endif
	case KL_KWP_OPENSSL:
		return ossl_run(k, 0, in, inlen, out);
	default:
		return -EINVAL;
	}
}
