/* SPDX-License-Identifier: BSD-3-Clause */
#include "kl_io.h"

static const char *const io_names[] = {
#define KL_X(e, n, d) n,
	KL_IO_COUNTER_LIST(KL_X)
#undef KL_X
};

static const char *const io_descs[] = {
#define KL_X(e, n, d) d,
	KL_IO_COUNTER_LIST(KL_X)
#undef KL_X
};

const uint32_t kl_io_hist_bound_ns[KL_IO_HIST_N] = {
	1000,  2000,  3000,   5000,   7500,   10000,  15000,  20000,
	30000, 50000, 75000, 100000, 200000, 500000, 1000000, 5000000,
};

const char *kl_io_counter_name(unsigned c)
{
	return c < KL_IO_CNT__COUNT ? io_names[c] : "unknown";
}

const char *kl_io_counter_desc(unsigned c)
{
	return c < KL_IO_CNT__COUNT ? io_descs[c] : "unknown";
}

/* TSC ticks -> NTP units (2^-32 s); 128-bit so that days of uptime cannot overflow. */
static uint64_t tsc_to_ntp(uint64_t tsc, uint64_t hz)
{
	return (uint64_t)(((unsigned __int128)tsc << 32) / hz);
}

static inline uint64_t rdtsc(void)
{
	return __builtin_ia32_rdtsc();
}

void kl_io_clock_sync(struct kl_io_clock *c)
{
	uint64_t ntp = kl_ntp_now();

	__atomic_store_n(&c->offset, ntp - tsc_to_ntp(rdtsc(), c->hz), __ATOMIC_RELEASE);
}

void kl_io_clock_init(struct kl_io_clock *c, uint64_t hz)
{
	c->hz = hz ? hz : 1;
	kl_io_clock_sync(c);
}

uint64_t kl_io_clock_ntp(const struct kl_io_clock *c, uint64_t tsc)
{
	return __atomic_load_n(&c->offset, __ATOMIC_ACQUIRE) + tsc_to_ntp(tsc, c->hz);
}
