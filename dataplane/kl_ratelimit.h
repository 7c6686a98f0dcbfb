/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-source token buckets for one worker: IPv4 sources by /32, IPv6 by /64. A bounded table
 * (4-way buckets) that refuses a new source when every way of its bucket holds a source that is
 * still rate-limited; a source whose bucket has refilled completely is as good as absent and its
 * slot is reused. Written by its worker only; no allocation after create.
 */
#ifndef KL_RATELIMIT_H
#define KL_RATELIMIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kl_rl_params {
	uint32_t pps;	/* tokens per second per source; 0 = no limit */
	uint32_t burst; /* bucket depth, >= 1 */
	uint32_t slots; /* sources tracked, power of two >= 4 */
	uint64_t hz;	/* clock ticks per second of the `now` values passed in */
};

struct kl_rl_stats {
	uint64_t allowed;
	uint64_t limited; /* bucket empty */
	uint64_t refused; /* table full: a new source had no slot */
};

struct kl_ratelimit;

/** @return the limiter, or NULL with errno (EINVAL, ENOMEM). */
struct kl_ratelimit *kl_rl_create(const struct kl_rl_params *p);
void kl_rl_free(struct kl_ratelimit *rl);
const struct kl_rl_stats *kl_rl_stats(const struct kl_ratelimit *rl);

/** Source keys: 16 bytes. IPv4: the address (network order) tagged as IPv4; IPv6: the /64. */
void kl_rl_key_v4(const uint8_t addr[4], uint8_t key[16]);
void kl_rl_key_v6(const uint8_t addr[16], uint8_t key[16]);

/**
 * Take one token for each of n sources at time now (ticks). allow[i] = 1 when it may be served.
 * @return the number allowed.
 */
unsigned kl_rl_take_bulk(struct kl_ratelimit *rl, const uint8_t (*keys)[16], unsigned n,
			 uint64_t now, uint8_t *allow);

#ifdef __cplusplus
}
#endif
#endif
