/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replay cache shared by the workers of one keylined, without locks.
 *
 * A slot is (tag, expires). A writer claims a slot by compare-and-swap of the tag it saw to BUSY,
 * writes expires, then publishes its tag with an atomic exchange (release; on x86 both are full
 * barriers). Readers load the tag (acquire) and then expires, so a published tag is never seen
 * with an older slot's expiry. What makes "never a key to a replay" hold across workers:
 *
 *  - Two copies of one request inserted at once on two workers: each, after publishing, scans the
 *    request's buckets again. Both published before scanning (the exchange is a full barrier), so
 *    at least one sees the other's slot; whoever sees another live slot with its tag reports a
 *    replay. Both may: the original is then refused too (the UE retries with a fresh RAND), but
 *    never are both let in.
 *  - A copy that found the slot of the other copy while choosing a victim reports a replay; one
 *    that saw the slot before the other copy claimed it loses the compare-and-swap and starts again.
 *  - A live entry evicted by a third insert between the two copies' checks: the evicting writer
 *    raises the bucket's floor before it claims the slot, so a copy that no longer finds the entry
 *    finds the raised floor when it checks the floors again after publishing, and is refused
 *    "invalid timestamp".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kl_replay.h"

#define STRIDE 4 /* slots per bucket: one cache line */
#define WAYS 3
#define FLOOR 3	 /* slot index: its expires field holds the bucket's floor */
#define BUSY 1	 /* tag of a slot being written; real tags are >= 2 */
#define HUGE (2u << 20)
#define TRIES 8
/* Expiries are NTP >> 16 (units of 2^-16 s). An entry that expired less than this ago still
 * raises its bucket's floor when it is replaced: the workers' clocks may differ by that much, and
 * such a floor only refuses T older than now - skew, which the skew check refuses anyway. */
#define CLOCK_MARGIN 64

struct kl_replay_slot {
	uint64_t tag;
	uint64_t expires; /* NTP >> 16; 0 = empty */
};

struct kl_replay {
	struct kl_replay_slot *slot;
	uint64_t mask;
};

struct kl_replay *kl_replay_create(uint64_t slots)
{
	struct kl_replay *r;
	size_t bytes, align;

	if (slots < STRIDE || (slots & (slots - 1)) || slots > (1ull << 40)) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	/* Aligned to 2 MiB and marked for transparent huge pages: two random cache lines per
	 * request in a cache of tens of MiB would otherwise cost two TLB misses as well (advice
	 * only: without THP it still works). */
	bytes = slots * sizeof(*r->slot);
	align = bytes >= HUGE ? HUGE : 64;
	if (posix_memalign((void **)&r->slot, align, bytes)) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	if (align == HUGE)
		(void)madvise(r->slot, bytes, MADV_HUGEPAGE);
	memset(r->slot, 0, bytes);
	r->mask = slots - 1;
	return r;
}

void kl_replay_destroy(struct kl_replay *r)
{
	if (!r)
		return;
	free(r->slot);
	free(r);
}

uint64_t kl_replay_slots(const struct kl_replay *r)
{
	return r->mask + 1;
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* The RAND carries the entropy (a client's CSPRNG, and nobody can get a request with a chosen
 * RAND past the MAC check), so a fast word-wise mix of IDi suffices. */
void kl_replay_ref(const struct kl_replay *r, struct kl_replay_ref *ref, const uint8_t *id,
		   uint16_t id_len, uint32_t csb_id, const uint8_t *rand)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ id_len, x;
	unsigned i = 0;

	for (; i + 8 <= id_len; i += 8) {
		h = (h ^ load64(id + i)) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (i < id_len) {
		uint8_t t[8] = { 0 };

		memcpy(t, id + i, id_len - i);
		h = (h ^ load64(t)) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	h ^= load64(rand);
	x = load64(rand + 8) ^ ((uint64_t)csb_id << 32);
	/* Fold the high halves down before masking: a multiply only carries upward, so RANDs that
	 * differ in their upper bytes alone would otherwise share a bucket. */
	x = h ^ (x * 0xc4ceb9fe1a85ec53ull);
	x ^= x >> 32;
	ref->tag = x > BUSY ? x : BUSY + 1;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 29;
	ref->bucket[0] = &r->slot[x & r->mask & ~(uint64_t)(STRIDE - 1)];
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	ref->bucket[1] = &r->slot[x & r->mask & ~(uint64_t)(STRIDE - 1)];
	__builtin_prefetch(ref->bucket[0], 1, 3);
	__builtin_prefetch(ref->bucket[1], 1, 3);
}

static inline uint64_t tag_of(const struct kl_replay_slot *s)
{
	return __atomic_load_n(&s->tag, __ATOMIC_ACQUIRE);
}

static inline uint64_t expires_of(const struct kl_replay_slot *s)
{
	return __atomic_load_n(&s->expires, __ATOMIC_ACQUIRE);
}

/* A live slot other than mine holds tag. */
static int held(const struct kl_replay_ref *ref, const struct kl_replay_slot *mine, uint64_t now16)
{
	for (unsigned b = 0; b < 2; b++)
		for (unsigned i = 0; i < WAYS; i++) {
			const struct kl_replay_slot *s = &ref->bucket[b][i];

			if (s != mine && tag_of(s) == ref->tag && expires_of(s) > now16)
				return 1;
		}
	return 0;
}

int kl_replay_seen(const struct kl_replay_ref *ref, uint64_t now)
{
	return held(ref, NULL, now >> 16);
}

/* Raise *floor to at least v; @return v when this call raised it, else 0. */
static uint64_t raise_floor(uint64_t *floor, uint64_t v)
{
	uint64_t f = __atomic_load_n(floor, __ATOMIC_ACQUIRE);

	while (f < v)
		if (__atomic_compare_exchange_n(floor, &f, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE))
			return v;
	return 0;
}

enum kl_replay_verdict kl_replay_check(const struct kl_replay_ref *ref, uint64_t ts, uint64_t now,
				       uint64_t skew, uint64_t *evicted)
{
	const uint64_t now16 = now >> 16, ts16 = ts >> 16, skew16 = skew >> 16;
	uint64_t *floor[2] = { &ref->bucket[0][FLOOR].expires, &ref->bucket[1][FLOOR].expires };

	for (unsigned attempt = 0; attempt < TRIES; attempt++) {
		struct kl_replay_slot *victim = NULL, *vb = NULL;
		uint64_t vtag = 0, vexp = 0, f, own = 0;
		unsigned live[2] = { 0, 0 }, first, nb;
		uint64_t exp[2][WAYS];

		f = __atomic_load_n(floor[0], __ATOMIC_ACQUIRE);
		if (__atomic_load_n(floor[1], __ATOMIC_ACQUIRE) > f)
			f = __atomic_load_n(floor[1], __ATOMIC_ACQUIRE);
		for (unsigned b = 0; b < 2; b++)
			for (unsigned i = 0; i < WAYS; i++) {
				const struct kl_replay_slot *s = &ref->bucket[b][i];

				exp[b][i] = expires_of(s);
				if (tag_of(s) == ref->tag && exp[b][i] > now16)
					return KL_REPLAY_DUP;
				live[b] += exp[b][i] > now16;
			}
		/* Not after its bucket's floor: it may replay an entry this bucket evicted. */
		if (ts16 <= f)
			return KL_REPLAY_WINDOW;
		/* Two choices: the entry goes to the bucket with fewer live entries, into the slot
		 * that expires first (a free or expired one when there is one). Only when both
		 * buckets are full of live entries is one evicted: the one of either bucket that
		 * expires first. Ties (same T, a burst) start at a tag-chosen way so one slot is not
		 * evicted over and over. */
		if (live[0] == WAYS && live[1] == WAYS) {
			first = 0;
			nb = 2;
		} else {
			first = live[0] < live[1]   ? 0
				: live[1] < live[0] ? 1
						    : (unsigned)(ref->tag >> 63);
			nb = 1;
		}
		for (unsigned k = 0, i = (unsigned)(ref->tag >> 58) % (nb * WAYS); k < nb * WAYS;
		     k++, i = (i + 1) % (nb * WAYS)) {
			unsigned b = (first + i / WAYS) % 2;

			if (!victim || exp[b][i % WAYS] < vexp) {
				victim = &ref->bucket[b][i % WAYS];
				vb = ref->bucket[b];
				vexp = exp[b][i % WAYS];
			}
		}
		vtag = tag_of(victim);
		if (vtag == BUSY || vtag == ref->tag)
			continue; /* being written, or the copy of this request just arrived */
		if (expires_of(victim) != vexp)
			continue; /* replaced since the scan */
		/* A live entry stood for a T up to expires - skew: a request of this bucket with a T
		 * not after that could be its replay. The floor rises before the slot is taken, so a
		 * copy of that entry's request that no longer finds it finds the floor. */
		if (vexp && vexp + CLOCK_MARGIN > now16)
			own = raise_floor(&vb[FLOOR].expires, vexp - skew16);
		if (!__atomic_compare_exchange_n(&victim->tag, &vtag, BUSY, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_RELAXED))
			continue;
		/* A request is acceptable while |T - now| <= skew, so its replay is refused by the
		 * skew check from T + skew on: it is remembered until then (rounded up). */
		__atomic_store_n(&victim->expires, ((ts + skew) >> 16) + 1, __ATOMIC_RELAXED);
		(void)__atomic_exchange_n(&victim->tag, ref->tag, __ATOMIC_SEQ_CST);
		if (vexp > now16)
			(*evicted)++;
		/* Published: now look again (see the top of this file). */
		if (held(ref, victim, now16))
			return KL_REPLAY_DUP;
		for (unsigned b = 0; b < 2; b++) {
			uint64_t fb = __atomic_load_n(floor[b], __ATOMIC_SEQ_CST);

			if (fb >= ts16 && !(own && fb == own && floor[b] == &vb[FLOOR].expires))
				return KL_REPLAY_WINDOW;
		}
		return KL_REPLAY_NEW;
	}
	/* The slots kept changing under this request: refuse it (the UE retries). */
	return KL_REPLAY_WINDOW;
}
