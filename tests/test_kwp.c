/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AES key wrap with padding (kl_kwp): RFC 5649's published vectors through both implementations,
 * a differential run (random KEKs of every size and lengths 1..4096: byte-identical wraps, each
 * unwrapped by the other, tampering and wrong KEKs refused by both), the RFC 5649 checks on
 * crafted inputs (a valid RFC 3394 wrap, made with OpenSSL's AES-*-WRAP and a chosen IV, whose
 * length indicator or padding is wrong), argument errors, and a throughput line.
 *   KL_KWP_CASES (default 3000) and KL_KWP_SEED (default: time) steer the differential run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "kl_kwp.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void fill(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

static const enum kl_kwp_impl impls[2] = {KL_KWP_AESNI, KL_KWP_OPENSSL};

/* Set up k with impl; 0 when the CPU cannot run it (aes-ni on a CPU without AES). */
static int key_init(struct kl_kwp_key *k, const uint8_t *kek, size_t len, enum kl_kwp_impl impl)
{
	int rc = kl_kwp_init_impl(k, kek, len, impl);

	if (rc == -ENOTSUP && impl == KL_KWP_AESNI && !kl_kwp_aesni_available())
		return 0;
	assert_int_equal(rc, 0);
	assert_int_equal(k->impl, impl);
	return 1;
}

/* ---- RFC 5649 section 6 ---------------------------------------------------------------------- */

static const uint8_t v_kek[24] = {0x58, 0x40, 0xdf, 0x6e, 0x29, 0xb0, 0x2a, 0xf1,
				  0xab, 0x49, 0x3b, 0x70, 0x5b, 0xf1, 0x6e, 0xa1,
				  0xae, 0x83, 0x38, 0xf4, 0xdc, 0xc1, 0x76, 0xa8};
static const uint8_t v_key20[20] = {0xc3, 0x7b, 0x7e, 0x64, 0x92, 0x58, 0x43,
				    0x40, 0xbe, 0xd1, 0x22, 0x07, 0x80, 0x89,
				    0x41, 0x15, 0x50, 0x68, 0xf7, 0x38};
static const uint8_t v_wrap20[32] = {0x13, 0x8b, 0xde, 0xaa, 0x9b, 0x8f, 0xa7, 0xfc,
				     0x61, 0xf9, 0x77, 0x42, 0xe7, 0x22, 0x48, 0xee,
				     0x5a, 0xe6, 0xae, 0x53, 0x60, 0xd1, 0xae, 0x6a,
				     0x5f, 0x54, 0xf3, 0x73, 0xfa, 0x54, 0x3b, 0x6a};
static const uint8_t v_key7[7] = {0x46, 0x6f, 0x72, 0x50, 0x61, 0x73, 0x69};
static const uint8_t v_wrap7[16] = {0xaf, 0xbe, 0xb0, 0xf0, 0x7d, 0xfb, 0xf5, 0x41,
				    0x92, 0x00, 0xf2, 0xcc, 0xb5, 0x0b, 0xb2, 0x4f};

static void test_vectors(void **state)
{
	(void)state;
	for (unsigned m = 0; m < 2; m++) {
		struct kl_kwp_key k, other;
		uint8_t out[64], back[64], kek2[24];

		if (!key_init(&k, v_kek, 24, impls[m])) {
			print_message("kwp: no AES-NI on this CPU: aes-ni vectors skipped\n");
			continue;
		}
		assert_int_equal(kl_kwp_wrap(&k, v_key20, 20, out, sizeof(out)), 32);
		assert_memory_equal(out, v_wrap20, 32);
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap20, 32, back, sizeof(back)), 20);
		assert_memory_equal(back, v_key20, 20);
		assert_int_equal(kl_kwp_wrap(&k, v_key7, 7, out, sizeof(out)), 16);
		assert_memory_equal(out, v_wrap7, 16);
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap7, 16, back, sizeof(back)), 7);
		assert_memory_equal(back, v_key7, 7);
		/* exactly the room the contract names */
		assert_int_equal(kl_kwp_wrap(&k, v_key20, 20, out, 32), 32);
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap20, 32, back, 24), 20);
		/* in place */
		memcpy(out, v_key20, 20);
		assert_int_equal(kl_kwp_wrap(&k, out, 20, out, sizeof(out)), 32);
		assert_memory_equal(out, v_wrap20, 32);
		assert_int_equal(kl_kwp_unwrap(&k, out, 32, out, sizeof(out)), 20);
		assert_memory_equal(out, v_key20, 20);

		/* every bit of the wrap matters (a failed unwrap leaves no plaintext behind) */
		for (unsigned bit = 0; bit < 32 * 8; bit++) {
			memcpy(out, v_wrap20, 32);
			out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			memset(back, 0x55, sizeof(back));
			assert_int_equal(kl_kwp_unwrap(&k, out, 32, back, sizeof(back)), -EBADMSG);
			for (unsigned i = 0; i < 24; i++)
				assert_int_equal(back[i], 0);
		}
		for (unsigned bit = 0; bit < 16 * 8; bit++) {
			memcpy(out, v_wrap7, 16);
			out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(kl_kwp_unwrap(&k, out, 16, back, sizeof(back)), -EBADMSG);
		}
		memcpy(kek2, v_kek, 24);
		kek2[23] ^= 0x80;
		assert_true(key_init(&other, kek2, 24, impls[m]));
		assert_int_equal(kl_kwp_unwrap(&other, v_wrap7, 16, back, sizeof(back)), -EBADMSG);
		assert_int_equal(kl_kwp_unwrap(&other, v_wrap20, 32, back, sizeof(back)), -EBADMSG);
		kl_kwp_free(&other);

		/* bad arguments */
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap20, 31, back, sizeof(back)), -EINVAL);
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap20, 8, back, sizeof(back)), -EINVAL);
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap20, 32, back, 23), -EINVAL);
		assert_int_equal(kl_kwp_wrap(&k, v_key20, 20, out, 31), -EINVAL);
		assert_int_equal(kl_kwp_wrap(&k, v_key20, 0, out, sizeof(out)), -EINVAL);
		assert_int_equal(kl_kwp_wrap(&k, NULL, 20, out, sizeof(out)), -EINVAL);
		assert_int_equal(kl_kwp_wrap(&k, v_key20, 20, NULL, sizeof(out)), -EINVAL);
		assert_int_equal(kl_kwp_wrap(NULL, v_key20, 20, out, sizeof(out)), -EINVAL);
		assert_int_equal(kl_kwp_unwrap(&k, NULL, 32, back, sizeof(back)), -EINVAL);

		/* kl_kwp_free wipes the key object; a freed key refuses to work */
		kl_kwp_free(&k);
		for (size_t i = 0; i < sizeof(k); i++)
			assert_int_equal(((const uint8_t *)&k)[i], 0);
		assert_int_equal(kl_kwp_wrap(&k, v_key20, 20, out, sizeof(out)), -EINVAL);
		assert_int_equal(kl_kwp_unwrap(&k, v_wrap20, 32, back, sizeof(back)), -EINVAL);
		kl_kwp_free(&k);
	}
}

static void test_init_args(void **state)
{
	struct kl_kwp_key k;
	uint8_t kek[32] = {1};

	(void)state;
	assert_int_equal(kl_kwp_init(&k, kek, 20), -EINVAL);
	assert_int_equal(kl_kwp_init(&k, kek, 0), -EINVAL);
	assert_int_equal(kl_kwp_init(&k, NULL, 32), -EINVAL);
	assert_int_equal(kl_kwp_init(NULL, kek, 32), -EINVAL);
	assert_int_equal(kl_kwp_init_impl(&k, kek, 32, (enum kl_kwp_impl)7), -EINVAL);
	if (!kl_kwp_aesni_available())
		assert_int_equal(kl_kwp_init_impl(&k, kek, 32, KL_KWP_AESNI), -ENOTSUP);

	/* AUTO: aes-ni when the CPU has it; KL_KWP=openssl forces the reference */
	assert_int_equal(kl_kwp_init(&k, kek, 32), 0);
	assert_string_equal(kl_kwp_impl_name(&k), kl_kwp_aesni_available() ? "aes-ni" : "openssl");
	kl_kwp_free(&k);
	assert_int_equal(setenv("KL_KWP", "openssl", 1), 0);
	assert_int_equal(kl_kwp_init(&k, kek, 32), 0);
	assert_string_equal(kl_kwp_impl_name(&k), "openssl");
	kl_kwp_free(&k);
	assert_int_equal(unsetenv("KL_KWP"), 0);
}

/* ---- RFC 5649 section 3's checks on crafted inputs --------------------------------------------- */

/* A raw RFC 3394 wrap of p (plen, a multiple of 8, >= 16) with a chosen IV through OpenSSL's
 * AES-*-WRAP, or for plen 8 one AES-ECB block of IV || p (RFC 5649's one-semiblock case). */
static size_t raw_wrap(const uint8_t *kek, size_t klen, const uint8_t iv[8], const uint8_t *p,
		       size_t plen, uint8_t *out)
{
	static const char *const wrap[3] = {"AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP"};
	static const char *const ecb[3] = {"AES-128-ECB", "AES-192-ECB", "AES-256-ECB"};
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, (plen == 8 ? ecb : wrap)[(klen - 16) / 8], NULL);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	uint8_t blk[16];
	int n = 0, f = 0;

	assert_non_null(c);
	assert_non_null(x);
	if (plen == 8) {
		memcpy(blk, iv, 8);
		memcpy(blk + 8, p, 8);
		assert_int_equal(EVP_EncryptInit_ex2(x, c, kek, NULL, NULL), 1);
		EVP_CIPHER_CTX_set_padding(x, 0);
		assert_int_equal(EVP_EncryptUpdate(x, out, &n, blk, 16), 1);
	} else {
		assert_int_equal(EVP_EncryptInit_ex2(x, c, kek, iv, NULL), 1);
		assert_int_equal(EVP_EncryptUpdate(x, out, &n, p, (int)plen), 1);
	}
	assert_int_equal(EVP_EncryptFinal_ex(x, out + n, &f), 1);
	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_free(c);
	assert_int_equal((size_t)n + (size_t)f, plen + 8);
	return plen + 8;
}

static void test_crafted(void **state)
{
	struct kl_kwp_key k[2];
	int have[2];
	uint8_t kek[32], p[64], w[72], back[64];

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	fill(kek, sizeof(kek));
	for (unsigned m = 0; m < 2; m++)
		have[m] = key_init(&k[m], kek, 32, impls[m]);
	for (size_t plen = 8; plen <= 64; plen += 8) {
		/* MLI from 0 to plen + 9, and a non-zero byte in each padding position */
		for (uint32_t mli = 0; mli <= plen + 9; mli++) {
			for (int badpad = -1; badpad < 8; badpad++) {
				uint8_t iv[8] = {0xa6, 0x59, 0x59, 0xa6, (uint8_t)(mli >> 24),
						 (uint8_t)(mli >> 16), (uint8_t)(mli >> 8), (uint8_t)mli};
				size_t at = plen - 8 + (size_t)(badpad < 0 ? 0 : badpad);
				int valid = mli > plen - 8 && mli <= plen;

				fill(p, plen);
				for (size_t i = mli; i < plen; i++)
					p[i] = 0;
				if (badpad >= 0) {
					if (at < mli)
						continue; /* not a padding byte for this MLI */
					p[at] = (uint8_t)(1u << (rnd() % 8));
					valid = 0;
				}
				raw_wrap(kek, 32, iv, p, plen, w);
				for (unsigned m = 0; m < 2; m++) {
					long n;

					if (!have[m])
						continue;
					n = kl_kwp_unwrap(&k[m], w, plen + 8, back, sizeof(back));
					if (!valid) {
						if (n != -EBADMSG)
							fail_msg("%s: plen %zu mli %u pad %d: got %ld",
								 kl_kwp_impl_name(&k[m]), plen,
								 mli, badpad, n);
						continue;
					}
					assert_int_equal(n, mli);
					assert_memory_equal(back, p, mli);
				}
			}
		}
	}
	/* another magic: the RFC 3394 default IV is not RFC 5649's */
	{
		static const uint8_t iv3394[8] = {0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6};

		fill(p, 16);
		raw_wrap(kek, 32, iv3394, p, 16, w);
		for (unsigned m = 0; m < 2; m++)
			if (have[m])
				assert_int_equal(kl_kwp_unwrap(&k[m], w, 24, back, sizeof(back)),
						 -EBADMSG);
	}
	for (unsigned m = 0; m < 2; m++)
		kl_kwp_free(&k[m]);
}

/* ---- differential ------------------------------------------------------------------------------ */

static void test_differential(void **state)
{
	static uint8_t p[KL_KWP_MAX_IN], w[2][KL_KWP_MAX_IN + 8], back[KL_KWP_MAX_IN + 8];
	const char *e = getenv("KL_KWP_CASES"), *se = getenv("KL_KWP_SEED");
	unsigned cases = e ? (unsigned)strtoul(e, NULL, 0) : 3000;
	uint64_t seed = se ? strtoull(se, NULL, 0) : (uint64_t)time(NULL);

	(void)state;
	if (!kl_kwp_aesni_available())
		skip();
	print_message("kwp differential: %u cases, KL_KWP_SEED=%" PRIu64 "\n", cases, seed);
	rng_state = seed * 2 + 1;
	for (unsigned c = 0; c < cases; c++) {
		static const size_t klens[4] = {16, 24, 32, 32};
		size_t klen = klens[rnd() % 4], len;
		struct kl_kwp_key k[2], wrong;
		uint8_t kek[32];
		long n[2];

		/* half short (the store's sizes), half anywhere up to the maximum */
		len = rnd() % 2 ? 1 + rnd() % 80 : 1 + rnd() % KL_KWP_MAX_IN;
		if (c < 64)
			len = c + 1;
		if (c == 64)
			len = KL_KWP_MAX_IN - 7; /* the longest whose wrap is <= KL_KWP_MAX_IN */
		fill(kek, klen);
		fill(p, len);
		for (unsigned m = 0; m < 2; m++) {
			assert_int_equal(kl_kwp_init_impl(&k[m], kek, klen, impls[m]), 0);
			n[m] = kl_kwp_wrap(&k[m], p, len, w[m], sizeof(w[m]));
			assert_int_equal(n[m], (long)KL_KWP_WRAP_LEN(len));
		}
		if (memcmp(w[0], w[1], (size_t)n[0]))
			fail_msg("case %u: kek %zu len %zu: wraps differ", c, klen, len);
		/* each unwraps the other's (identical, but both directions are the contract) */
		for (unsigned m = 0; m < 2; m++) {
			long r = n[m] <= KL_KWP_MAX_IN
					 ? kl_kwp_unwrap(&k[!m], w[m], (size_t)n[m], back, sizeof(back))
					 : -EINVAL;

			if (n[m] > KL_KWP_MAX_IN) {
				assert_int_equal(kl_kwp_unwrap(&k[!m], w[m], (size_t)n[m], back,
							       sizeof(back)), -EINVAL);
				continue;
			}
			assert_int_equal(r, (long)len);
			assert_memory_equal(back, p, len);
		}
		if (n[0] > KL_KWP_MAX_IN)
			goto next;
		/* one flipped bit, a wrong KEK, a semiblock dropped: refused by both */
		{
			size_t bit = rnd() % ((size_t)n[0] * 8);

			w[0][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			for (unsigned m = 0; m < 2; m++)
				if (kl_kwp_unwrap(&k[m], w[0], (size_t)n[0], back, sizeof(back)) !=
				    -EBADMSG)
					fail_msg("case %u: %s accepted a flipped bit %zu", c,
						 kl_kwp_impl_name(&k[m]), bit);
			w[0][bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		kek[rnd() % klen] ^= (uint8_t)(1u << (rnd() % 8));
		for (unsigned m = 0; m < 2; m++) {
			assert_int_equal(kl_kwp_init_impl(&wrong, kek, klen, impls[m]), 0);
			assert_int_equal(kl_kwp_unwrap(&wrong, w[1], (size_t)n[1], back, sizeof(back)),
					 -EBADMSG);
			kl_kwp_free(&wrong);
		}
		if (n[0] >= 24)
			for (unsigned m = 0; m < 2; m++)
				assert_int_equal(kl_kwp_unwrap(&k[m], w[0], (size_t)n[0] - 8, back,
							       sizeof(back)), -EBADMSG);
next:
		for (unsigned m = 0; m < 2; m++)
			kl_kwp_free(&k[m]);
	}
}

/* ---- throughput ---------------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Unwraps per second of a 48-byte secret (a store UE record: MUK 32 || binding 16), one KEK. */
static void test_throughput(void **state)
{
	uint8_t kek[32], secret[48], w[56], back[56];
	double rate[2] = {0, 0};

	(void)state;
	rng_state = 42;
	fill(kek, sizeof(kek));
	fill(secret, sizeof(secret));
	for (unsigned m = 0; m < 2; m++) {
		struct kl_kwp_key k;
		unsigned long ops = 0;
		double t0, t;

		if (!key_init(&k, kek, 32, impls[m]))
			continue;
		assert_int_equal(kl_kwp_wrap(&k, secret, 48, w, sizeof(w)), 56);
		t0 = now_s();
		do {
			for (unsigned i = 0; i < 1000; i++)
				if (kl_kwp_unwrap(&k, w, 56, back, sizeof(back)) != 48)
					fail_msg("unwrap failed");
			ops += 1000;
			t = now_s() - t0;
		} while (t < 0.3);
		assert_memory_equal(back, secret, 48);
		rate[m] = (double)ops / t;
		kl_kwp_free(&k);
	}
	print_message("kwp throughput: unwrap 48-byte secret (AES-256): aes-ni %.0f/s, openssl "
		      "%.0f/s (x%.1f)\n",
		      rate[0], rate[1], rate[1] > 0 ? rate[0] / rate[1] : 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),	     cmocka_unit_test(test_init_args),
		cmocka_unit_test(test_crafted),	     cmocka_unit_test(test_differential),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
