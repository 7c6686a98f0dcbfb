/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SipHash-1-3 with 128-bit output (Aumasson, Bernstein), private to dataplane/: the key table
 * stores a keyed digest of each identity instead of the identity, so table keys are fixed-size
 * and an attacker who picks identities cannot aim them at one bucket. 1-3 (one compression round
 * per word, three finalization rounds) is the variant hash tables use against hash flooding
 * (CPython, Rust's HashMap); the 128-bit output keeps collisions negligible, and the key is
 * random per process, so nothing persisted depends on the digests.
 */
#ifndef KL_SIPHASH_H
#define KL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct kl_sipkey {
	uint64_t k0, k1;
};

/** Load a 16-byte key (little-endian words, as in the reference). */
void kl_siphash_key(struct kl_sipkey *k, const uint8_t key[16]);
/** SipHash-1-3-128 of in[0..len): the table's digest. */
void kl_siphash128(const struct kl_sipkey *k, const void *in, size_t len, uint8_t out[16]);
/** SipHash-c-d-128 with any round counts (1..8 each; the tests check 2-4 against the reference
 * vectors with it). */
void kl_siphash128_cd(const struct kl_sipkey *k, unsigned c, unsigned d, const void *in, size_t len,
		      uint8_t out[16]);

#endif
