/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replay cache of the request engine (RFC 3830 section 5.4, PROTOCOL.md section 6), one per
 * keylined and shared by all its workers: a replay must never get keys, whichever worker the
 * original and the replay reach (another source port or address lands on another worker under
 * SO_REUSEPORT or RSS).
 *
 * 64-bit tags of (IDi, CSB ID, RAND) in 3-way buckets of one cache line; each tag has two
 * candidate buckets and goes where there is room (two choices: buckets do not overflow by chance
 * until the cache is nearly full). An entry lives until its T plus the skew has passed (from then
 * on the skew check refuses its replay). When both buckets are full the entry that expires first
 * makes room; its bucket's floor rises to the T it stood for, and later requests of either bucket
 * with a T not after the floor are refused "invalid timestamp" (replay_window_refused).
 *
 * Workers update slots with atomic operations, no lock (see kl_replay.c for the protocol): two
 * copies of one request racing on two workers never both get in; at worst both are refused.
 */
#ifndef KL_REPLAY_H
#define KL_REPLAY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kl_replay;
struct kl_replay_slot;

/** A request's place in the cache: computed once, then used by the checks below. */
struct kl_replay_ref {
	struct kl_replay_slot *bucket[2];
	uint64_t tag; /* never 0 */
};

enum kl_replay_verdict {
	KL_REPLAY_NEW = 0, /* inserted: the first time this request is seen */
	KL_REPLAY_DUP,	   /* already there (a replay, or a copy that raced this one) */
	KL_REPLAY_WINDOW,  /* T not after the bucket's floor: refuse "invalid timestamp" */
};

/**
 * A cache of slots slots (a power of two >= 4; 3 of every 4 hold entries, the 4th is a bucket's
 * floor), 16 bytes each, zeroed, 2 MiB-aligned and advised for transparent huge pages when it is
 * that large. @return NULL + errno (EINVAL, ENOMEM).
 */
struct kl_replay *kl_replay_create(uint64_t slots);
void kl_replay_destroy(struct kl_replay *r);
/** Slots of the cache. */
uint64_t kl_replay_slots(const struct kl_replay *r);

/** Fill ref for (IDi, CSB ID, RAND[16]) and prefetch its two buckets. */
void kl_replay_ref(const struct kl_replay *r, struct kl_replay_ref *ref, const uint8_t *id,
		   uint16_t id_len, uint32_t csb_id, const uint8_t *rand);

/** 1 when the tag is held by a live entry at now (NTP timestamp), else 0. */
int kl_replay_seen(const struct kl_replay_ref *ref, uint64_t now);

/**
 * The full check of a request with timestamp ts, at now, entries kept until ts + skew (all NTP
 * format): refuses it when T is not after its buckets' floor, reports a replay, or inserts it.
 * *evicted is incremented when a live entry had to make room.
 */
enum kl_replay_verdict kl_replay_check(const struct kl_replay_ref *ref, uint64_t ts, uint64_t now,
				       uint64_t skew, uint64_t *evicted);

#ifdef __cplusplus
}
#endif
#endif
