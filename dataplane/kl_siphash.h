/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SipHash-2-4 with 128-bit output (Aumasson, Bernstein), private to dataplane/: the key table
 * stores a keyed digest of each identity instead of the identity, so table keys are fixed-size
 * and an attacker who picks identities cannot aim them at one bucket.
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
/** SipHash-2-4-128 of in[0..len). */
void kl_siphash128(const struct kl_sipkey *k, const void *in, size_t len, uint8_t out[16]);

#endif
