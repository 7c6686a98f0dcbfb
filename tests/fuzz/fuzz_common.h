/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared helpers of the MIKEY fuzz targets: invariant checks that abort() on a real bug only,
 * and an independent RFC 3629 UTF-8 validator used differentially against the codec's. */
#ifndef KL_FUZZ_COMMON_H
#define KL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report which invariant broke, then abort so libFuzzer records the input as a crash. */
#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__,     \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* p .. p+n lies inside [base, base+len). */
static inline int fz_inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
	return p && p >= base && (size_t)(p - base) <= len && n <= len - (size_t)(p - base);
}

/* Independent UTF-8 check (RFC 3629 table 3.7 "well-formed byte sequences"), written from the
 * byte-range table rather than by decoding code points, so it disagrees with the codec's
 * decoder if either is wrong. */
static inline int fz_utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint8_t lo = 0x80, hi = 0xBF;
		size_t k;

		if (c <= 0x7F) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			k = 1;
		else if (c == 0xE0)
			k = 2, lo = 0xA0;
		else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
			k = 2;
		else if (c == 0xED)
			k = 2, hi = 0x9F;
		else if (c == 0xF0)
			k = 3, lo = 0x90;
		else if (c >= 0xF1 && c <= 0xF3)
			k = 3;
		else if (c == 0xF4)
			k = 3, hi = 0x8F;
		else
			return 0;
		if (i + k >= n) /* truncated sequence */
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if (s[i + j] < 0x80 || s[i + j] > 0xBF)
				return 0;
		i += k + 1;
	}
	return 1;
}

static inline uint16_t fz_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t fz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t fz_be64(const uint8_t *p)
{
	return (uint64_t)fz_be32(p) << 32 | fz_be32(p + 4);
}

#endif
