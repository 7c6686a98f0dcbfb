/* SPDX-License-Identifier: BSD-3-Clause */
/* Per-source token buckets: burst then limit, refill over time, /32 and /64 aggregation, a full
 * table refusing new sources but reusing idle ones, and "no limit". */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kl_ratelimit.h"

#define HZ 1000000000ull /* nanosecond ticks */

static unsigned take(struct kl_ratelimit *rl, const uint8_t key[16], unsigned n, uint64_t now)
{
	uint8_t k[64][16], allow[64];

	for (unsigned i = 0; i < n; i++)
		memcpy(k[i], key, 16);
	return kl_rl_take_bulk(rl, (const uint8_t(*)[16])k, n, now, allow);
}

static void test_burst_and_refill(void **state)
{
	struct kl_rl_params p = { .pps = 100, .burst = 10, .slots = 1024, .hz = HZ };
	struct kl_ratelimit *rl = kl_rl_create(&p);
	uint8_t key[16], a[4] = { 192, 0, 2, 7 };
	uint64_t t = 5 * HZ;

	(void)state;
	assert_non_null(rl);
	kl_rl_key_v4(a, key);
	assert_int_equal(take(rl, key, 10, t), 10); /* the burst */
	assert_int_equal(take(rl, key, 5, t), 0);   /* then nothing */
	assert_int_equal(kl_rl_stats(rl)->limited, 5);
	assert_int_equal(take(rl, key, 5, t + HZ / 100), 1); /* 10 ms at 100 pps: one token */
	assert_int_equal(take(rl, key, 5, t + HZ / 100 + HZ / 20), 5); /* 50 ms more: five */
	assert_int_equal(take(rl, key, 64, t + 100 * HZ), 10); /* never more than the burst */
	assert_int_equal(kl_rl_stats(rl)->allowed, 26);
	kl_rl_free(rl);
}

static void test_prefixes(void **state)
{
	struct kl_rl_params p = { .pps = 1, .burst = 1, .slots = 1024, .hz = HZ };
	struct kl_ratelimit *rl = kl_rl_create(&p);
	uint8_t k1[16], k2[16], k3[16], k4[16];
	uint8_t v6a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 };
	uint8_t v6b[16], v6c[16], v4a[4] = { 10, 0, 0, 1 }, v4b[4] = { 10, 0, 0, 2 };

	(void)state;
	memcpy(v6b, v6a, 16);
	v6b[15] = 2; /* same /64 */
	memcpy(v6c, v6a, 16);
	v6c[7] = 2; /* another /64 */
	kl_rl_key_v6(v6a, k1);
	kl_rl_key_v6(v6b, k2);
	kl_rl_key_v6(v6c, k3);
	assert_int_equal(take(rl, k1, 1, 1), 1);
	assert_int_equal(take(rl, k2, 1, 1), 0); /* shares the /64's bucket */
	assert_int_equal(take(rl, k3, 1, 1), 1);
	kl_rl_key_v4(v4a, k1);
	kl_rl_key_v4(v4b, k4);
	assert_int_equal(take(rl, k1, 1, 1), 1);
	assert_int_equal(take(rl, k4, 1, 1), 1); /* every IPv4 /32 is its own source */
	assert_int_equal(take(rl, k1, 1, 1), 0);
	kl_rl_free(rl);
}

static void test_full_table(void **state)
{
	struct kl_rl_params p = { .pps = 1, .burst = 2, .slots = 4, .hz = HZ }; /* one bucket of 4 */
	struct kl_ratelimit *rl = kl_rl_create(&p);
	uint8_t key[16];

	(void)state;
	for (uint8_t i = 0; i < 4; i++) {
		uint8_t a[4] = { 10, 0, 0, i };

		kl_rl_key_v4(a, key);
		assert_int_equal(take(rl, key, 1, HZ), 1); /* each still owes a token: active */
	}
	{
		uint8_t a[4] = { 10, 0, 0, 99 };

		kl_rl_key_v4(a, key);
		assert_int_equal(take(rl, key, 1, HZ), 0); /* refused: no slot */
		assert_int_equal(kl_rl_stats(rl)->refused, 1);
		/* two seconds later the others have refilled: their slots are free again */
		assert_int_equal(take(rl, key, 1, 3 * HZ), 1);
	}
	kl_rl_free(rl);
}

/* Neighbouring sources (last octets, last /64 bits) must spread over the buckets: 64 active
 * IPv4 and 64 IPv6 sources in 1024 buckets of 4 all get a slot. A hash that lets the low
 * address bytes miss the bucket index puts them in one bucket and refuses 60 of each. */
static void test_neighbours_spread(void **state)
{
	struct kl_rl_params p = { .pps = 1, .burst = 2, .slots = 4096, .hz = HZ };
	struct kl_ratelimit *rl = kl_rl_create(&p);
	uint8_t key[16];

	(void)state;
	assert_non_null(rl);
	for (unsigned i = 0; i < 64; i++) {
		uint8_t a4[4] = { 127, 0, (uint8_t)(i >> 8), (uint8_t)(i + 1) };
		uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, [6] = (uint8_t)(i >> 8), [7] = (uint8_t)i };

		kl_rl_key_v4(a4, key);
		assert_int_equal(take(rl, key, 1, HZ), 1);
		kl_rl_key_v6(a6, key);
		assert_int_equal(take(rl, key, 1, HZ), 1);
	}
	assert_int_equal(kl_rl_stats(rl)->refused, 0);
	kl_rl_free(rl);
}

static void test_args_and_off(void **state)
{
	struct kl_rl_params bad = { .pps = 1, .burst = 1, .slots = 1000, .hz = HZ };
	struct kl_rl_params off = { .pps = 0, .burst = 1, .slots = 4, .hz = HZ };
	struct kl_ratelimit *rl;
	uint8_t key[16] = { 4 };

	(void)state;
	errno = 0;
	assert_null(kl_rl_create(&bad));
	assert_int_equal(errno, EINVAL);
	bad.slots = 1024;
	bad.burst = 0;
	assert_null(kl_rl_create(&bad));
	bad.burst = 1;
	bad.hz = 0;
	assert_null(kl_rl_create(&bad));
	assert_null(kl_rl_create(NULL));
	rl = kl_rl_create(&off);
	assert_non_null(rl);
	assert_int_equal(take(rl, key, 64, 1), 64);
	kl_rl_free(rl);
	kl_rl_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_and_refill), cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_full_table), cmocka_unit_test(test_neighbours_spread),
		cmocka_unit_test(test_args_and_off),
	};

	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
