/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kl_ratelimit.h"

#define WAYS 4
#define FP 20 /* tokens are fixed point with 20 fractional bits */

struct rl_slot {
	uint8_t key[16];
	uint64_t tokens; /* << FP */
	uint64_t last;	 /* ticks; 0 = empty */
};

struct kl_ratelimit {
	struct kl_rl_stats st;
	struct rl_slot *slot;
	uint64_t mask;
	uint64_t hz;
	uint64_t full; /* burst << FP */
	uint64_t refill_ticks; /* ticks for an empty bucket to refill completely */
	uint32_t pps;
	uint64_t salt;
};

struct kl_ratelimit *kl_rl_create(const struct kl_rl_params *p)
{
	struct kl_ratelimit *rl;

	if (!p || !p->hz || !p->burst || p->slots < WAYS || (p->slots & (p->slots - 1))) {
		errno = EINVAL;
		return NULL;
	}
	rl = calloc(1, sizeof(*rl));
	if (!rl || posix_memalign((void **)&rl->slot, 64, (size_t)p->slots * sizeof(*rl->slot))) {
		free(rl);
		errno = ENOMEM;
		return NULL;
	}
	memset(rl->slot, 0, (size_t)p->slots * sizeof(*rl->slot));
	rl->mask = p->slots - 1;
	rl->hz = p->hz;
	rl->pps = p->pps;
	rl->full = (uint64_t)p->burst << FP;
	rl->refill_ticks = p->pps ? (uint64_t)(((unsigned __int128)p->burst * p->hz) / p->pps) + 1 : 0;
	rl->salt = (uint64_t)(uintptr_t)rl * 0x9E3779B97F4A7C15ull; /* bucket choice not guessable from outside */
	return rl;
}

void kl_rl_free(struct kl_ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->slot);
	free(rl);
}

const struct kl_rl_stats *kl_rl_stats(const struct kl_ratelimit *rl)
{
	return &rl->st;
}

void kl_rl_key_v4(const uint8_t addr[4], uint8_t key[16])
{
	memset(key, 0, 16);
	key[0] = 4;
	memcpy(key + 12, addr, 4);
}

void kl_rl_key_v6(const uint8_t addr[16], uint8_t key[16])
{
	memset(key, 0, 16);
	key[0] = 6;
	memcpy(key + 8, addr, 8);
}

static uint64_t fmix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* Both halves through a full finaliser: every key bit must reach the low (index) bits, or
 * sources differing only in their last octets share one bucket. */
static uint64_t key_hash(const struct kl_ratelimit *rl, const uint8_t k[16])
{
	uint64_t a, b;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	return fmix64(fmix64(a ^ rl->salt) ^ b);
}

/* Tokens of a slot brought up to now. */
static uint64_t refilled(const struct kl_ratelimit *rl, const struct rl_slot *s, uint64_t now)
{
	uint64_t dt = now > s->last ? now - s->last : 0, add;

	if (dt >= rl->refill_ticks)
		return rl->full;
	add = (uint64_t)(((unsigned __int128)dt * rl->pps << FP) / rl->hz);
	return s->tokens + add > rl->full ? rl->full : s->tokens + add;
}

static int take_one(struct kl_ratelimit *rl, const uint8_t key[16], uint64_t now)
{
	struct rl_slot *b = &rl->slot[key_hash(rl, key) & rl->mask & ~(uint64_t)(WAYS - 1)], *free_s = NULL;
	const uint64_t one = 1ull << FP;

	if (!now)
		now = 1; /* 0 marks an empty slot */
	for (unsigned i = 0; i < WAYS; i++) {
		struct rl_slot *s = &b[i];

		if (s->last && !memcmp(s->key, key, 16)) {
			s->tokens = refilled(rl, s, now);
			s->last = now;
			if (s->tokens < one) {
				rl->st.limited++;
				return 0;
			}
			s->tokens -= one;
			rl->st.allowed++;
			return 1;
		}
		/* empty, or a source whose bucket is full again: as good as never seen */
		if (!free_s && (!s->last || refilled(rl, s, now) == rl->full))
			free_s = s;
	}
	if (!free_s) {
		rl->st.refused++;
		return 0;
	}
	memcpy(free_s->key, key, 16);
	free_s->tokens = rl->full - one;
	free_s->last = now;
	rl->st.allowed++;
	return 1;
}

unsigned kl_rl_take_bulk(struct kl_ratelimit *rl, const uint8_t (*keys)[16], unsigned n,
			 uint64_t now, uint8_t *allow)
{
	unsigned ok = 0;

	if (!rl->pps) {
		for (unsigned i = 0; i < n; i++)
			allow[i] = 1;
		rl->st.allowed += n;
		return n;
	}
	for (unsigned i = 0; i < n; i++) {
		allow[i] = (uint8_t)take_one(rl, keys[i], now);
		ok += allow[i];
	}
	return ok;
}
