/* SPDX-License-Identifier: BSD-3-Clause */
#include "kl_siphash.h"

#include <string.h>

static inline uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

/* The reference defines the byte order of words as little-endian on every host. */
static inline uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = rotl(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = rotl(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = rotl(v2, 32);                                                                 \
	} while (0)

void kl_siphash_key(struct kl_sipkey *k, const uint8_t key[16])
{
	k->k0 = le64(key);
	k->k1 = le64(key + 8);
}

/* C compression rounds per word, D finalization rounds: constants in the callers below. */
static inline __attribute__((always_inline)) void sip128(const struct kl_sipkey *k, const void *in,
							   size_t len, uint8_t out[16], unsigned C,
							   unsigned D)
{
	const uint8_t *p = in;
	uint64_t v0 = k->k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k->k1 ^ UINT64_C(0x646f72616e646f6d) ^ 0xee; /* 0xee: 128-bit output */
	uint64_t v2 = k->k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k->k1 ^ UINT64_C(0x7465646279746573);
	uint64_t b = (uint64_t)len << 56, m;
	size_t full = len & ~(size_t)7;

	for (size_t i = 0; i < full; i += 8) {
		m = le64(p + i);
		v3 ^= m;
		for (unsigned r = 0; r < C; r++)
			SIPROUND;
		v0 ^= m;
	}
	for (size_t i = full; i < len; i++)
		b |= (uint64_t)p[i] << (8 * (i - full));
	v3 ^= b;
	for (unsigned r = 0; r < C; r++)
		SIPROUND;
	v0 ^= b;

	v2 ^= 0xee;
	for (unsigned r = 0; r < D; r++)
		SIPROUND;
	put_le64(out, v0 ^ v1 ^ v2 ^ v3);
	v1 ^= 0xdd;
	for (unsigned r = 0; r < D; r++)
		SIPROUND;
	put_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

void kl_siphash128(const struct kl_sipkey *k, const void *in, size_t len, uint8_t out[16])
{
	sip128(k, in, len, out, 1, 3);
}

void kl_siphash128_cd(const struct kl_sipkey *k, unsigned c, unsigned d, const void *in, size_t len,
		      uint8_t out[16])
{
	sip128(k, in, len, out, c < 1 ? 1 : c > 8 ? 8 : c, d < 1 ? 1 : d > 8 ? 8 : d);
}
