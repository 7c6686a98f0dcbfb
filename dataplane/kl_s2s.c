/* SPDX-License-Identifier: BSD-3-Clause */
/* State the workers share for the server-to-server schemes: kl_s2s.h says how. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_engine.h"
#include "kl_s2s.h"
#include "kl_siphash.h"

#define RV_WAYS 8
#define PC_WAYS 8
#define SEC(s) ((uint64_t)(s) << 32)
#define PC_WAIT_S 2 /* an unanswered question is asked again after this */

enum { FREE = 0, LIVE = 1, BUSY = 2 };

struct rv_entry {
	uint64_t k[2];
	uint64_t expires; /* 0 = free */
	uint8_t has[2];
	uint8_t remote[2]; /* the side's value came from a peer server (no p known) */
	uint8_t p[2][KL_S2S_P_LEN];
	uint8_t val[2][KL_S2S_VAL_LEN];
};

struct rv_bucket {
	uint32_t lock;
	struct rv_entry e[RV_WAYS];
} __attribute__((aligned(64)));

struct pc_entry {
	uint64_t k[2];
	uint64_t expires; /* 0 = free */
	uint8_t status;	  /* enum kl_s2s_pc: OK, NO_UE, NO_DH or WAIT */
	uint8_t pub[32];
};

struct pc_bucket {
	uint32_t lock;
	struct pc_entry e[PC_WAYS];
} __attribute__((aligned(64)));

struct pd_slot {
	uint32_t state; /* FREE, LIVE, BUSY */
	uint32_t gen;
	uint32_t owner;
	struct kl_s2s_req req;
	struct kl_s2s_try try_;
} __attribute__((aligned(64)));

struct kl_s2s {
	struct kl_sipkey hk;
	uint64_t rv_life, pc_life;
	uint32_t rv_mask, pc_mask; /* bucket index masks */
	uint32_t npd;
	struct rv_bucket *rv;
	struct pc_bucket *pc;
	struct pd_slot *pd;
	uint32_t pd_hint;
	uint64_t rv_full, pc_full, pd_full, contended;
};

static int try_lock(uint32_t *w)
{
	uint32_t v = FREE;

	return __atomic_compare_exchange_n(w, &v, BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static void unlock(uint32_t *w)
{
	__atomic_store_n(w, FREE, __ATOMIC_RELEASE);
}

static void count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* Take the lock words of a key's two buckets (one when both choices are the same bucket), or
 * neither. Never waits: two workers cannot deadlock on try-locks. @return 1 taken, 0 busy. */
static int lock2(uint32_t *a, uint32_t *b)
{
	if (!try_lock(a))
		return 0;
	if (b != a && !try_lock(b)) {
		unlock(a);
		return 0;
	}
	return 1;
}

static void unlock2(uint32_t *a, uint32_t *b)
{
	if (b != a)
		unlock(b);
	unlock(a);
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

struct kl_s2s *kl_s2s_create(uint32_t rendezvous_entries, uint32_t cache_entries,
			     uint32_t pending_entries, uint32_t rendezvous_s, uint32_t cache_s)
{
	struct kl_s2s *s;
	uint8_t key[16];

	if (!is_pow2(rendezvous_entries) || rendezvous_entries < 64 || !is_pow2(cache_entries) ||
	    cache_entries < 64 || pending_entries < 16 || pending_entries > KL_S2S_PENDING_MAX ||
	    !rendezvous_s || !cache_s) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->rv_mask = rendezvous_entries / RV_WAYS - 1;
	s->pc_mask = cache_entries / PC_WAYS - 1;
	s->npd = pending_entries;
	s->rv_life = SEC(rendezvous_s);
	s->pc_life = SEC(cache_s);
	s->rv = aligned_alloc(64, sizeof(*s->rv) * (s->rv_mask + 1));
	s->pc = aligned_alloc(64, sizeof(*s->pc) * (s->pc_mask + 1));
	s->pd = aligned_alloc(64, sizeof(*s->pd) * s->npd);
	if (!s->rv || !s->pc || !s->pd || kl_random(key, sizeof(key))) {
		kl_s2s_destroy(s);
		errno = ENOMEM;
		return NULL;
	}
	memset(s->rv, 0, sizeof(*s->rv) * (s->rv_mask + 1));
	memset(s->pc, 0, sizeof(*s->pc) * (s->pc_mask + 1));
	memset(s->pd, 0, sizeof(*s->pd) * s->npd);
	kl_siphash_key(&s->hk, key);
	kl_memzero(key, sizeof(key));
	return s;
}

void kl_s2s_destroy(struct kl_s2s *s)
{
	if (!s)
		return;
	if (s->rv)
		kl_memzero(s->rv, sizeof(*s->rv) * (s->rv_mask + 1));
	if (s->pd)
		kl_memzero(s->pd, sizeof(*s->pd) * s->npd);
	free(s->rv);
	free(s->pc);
	free(s->pd);
	kl_memzero(s, sizeof(*s));
	free(s);
}

void kl_s2s_stats(const struct kl_s2s *s, struct kl_s2s_stats *st)
{
	uint64_t now = kl_ntp_now();

	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	st->rendezvous_cap = (uint64_t)(s->rv_mask + 1) * RV_WAYS;
	st->cache_cap = (uint64_t)(s->pc_mask + 1) * PC_WAYS;
	st->pending_cap = s->npd;
	/* racy reads of 64-bit words: an estimate, which is what occupancy is */
	for (uint32_t b = 0; b <= s->rv_mask; b++)
		for (unsigned i = 0; i < RV_WAYS; i++)
			st->rendezvous_used += __atomic_load_n(&s->rv[b].e[i].expires, __ATOMIC_RELAXED) > now;
	for (uint32_t b = 0; b <= s->pc_mask; b++)
		for (unsigned i = 0; i < PC_WAYS; i++)
			st->cache_used += __atomic_load_n(&s->pc[b].e[i].expires, __ATOMIC_RELAXED) > now;
	for (uint32_t i = 0; i < s->npd; i++)
		st->pending_used += __atomic_load_n(&s->pd[i].state, __ATOMIC_RELAXED) != FREE;
	st->rendezvous_full = __atomic_load_n(&s->rv_full, __ATOMIC_RELAXED);
	st->cache_full = __atomic_load_n(&s->pc_full, __ATOMIC_RELAXED);
	st->pending_full = __atomic_load_n(&s->pd_full, __ATOMIC_RELAXED);
	st->contended = __atomic_load_n(&s->contended, __ATOMIC_RELAXED);
}

/* 128-bit keyed hash of tag || len || a || len || b. */
static void key2(const struct kl_s2s *s, uint8_t tag, const uint8_t *a, uint16_t la,
		 const uint8_t *b, uint16_t lb, uint64_t k[2])
{
	uint8_t buf[3 + 2 * KL_MIKEY_ID_MAX];
	size_t n = 0;

	buf[n++] = tag;
	buf[n++] = (uint8_t)la;
	memcpy(buf + n, a, la);
	n += la;
	buf[n++] = (uint8_t)lb;
	memcpy(buf + n, b, lb);
	n += lb;
	kl_siphash128(&s->hk, buf, n, (uint8_t *)k);
}

/* ---- rendezvous --------------------------------------------------------------------------------- */

/* A key's two buckets (two-choice hashing: a pair lives in either, so one crowded bucket does not
 * refuse pairs while the table has room). */
struct rv_lk {
	struct rv_bucket *b[2];
};

/* The pair's entry in its locked buckets, or a new one (NULL: full). */
static struct rv_entry *rv_slot(struct kl_s2s *s, const struct rv_lk *lk, const uint64_t k[2],
				uint64_t now, int *fresh)
{
	struct rv_entry *free_e[2] = { NULL, NULL }, *free_one;
	unsigned nfree[2] = { 0, 0 };

	*fresh = 0;
	for (unsigned x = 0; x < 2; x++)
		for (unsigned i = 0; i < RV_WAYS; i++) {
			struct rv_entry *e = &lk->b[x]->e[i];

			if (e->expires > now && e->k[0] == k[0] && e->k[1] == k[1])
				return e;
			if (e->expires <= now && !nfree[x]++)
				free_e[x] = e;
		}
	/* a new pair goes to the emptier bucket of its two */
	free_one = nfree[1] > nfree[0] ? free_e[1] : free_e[0];
	if (!free_one) {
		count(&s->rv_full);
		return NULL;
	}
	kl_memzero(free_one, sizeof(*free_one));
	free_one->k[0] = k[0];
	free_one->k[1] = k[1];
	__atomic_store_n(&free_one->expires, now + s->rv_life, __ATOMIC_RELAXED);
	*fresh = 1;
	return free_one;
}

/* The pair's buckets, taken, and its entry (KL_S2S_RV_WAIT), or why not (BUSY, FULL). */
static enum kl_s2s_rv rv_open(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
			      const uint8_t *id2, uint16_t l2, struct rv_lk *lk,
			      struct rv_entry **ep, int *fresh)
{
	uint64_t k[2];

	key2(s, 'R', id1, l1, id2, l2, k);
	lk->b[0] = &s->rv[k[0] & s->rv_mask];
	lk->b[1] = &s->rv[k[1] & s->rv_mask];
	if (!lock2(&lk->b[0]->lock, &lk->b[1]->lock)) {
		count(&s->contended);
		return KL_S2S_RV_BUSY;
	}
	*ep = rv_slot(s, lk, k, now, fresh);
	if (!*ep) {
		unlock2(&lk->b[0]->lock, &lk->b[1]->lock);
		return KL_S2S_RV_FULL;
	}
	return KL_S2S_RV_WAIT;
}

/* A side's value changes: a new establishment (the other side's old value goes with it). */
static void rv_replace(struct kl_s2s *s, struct rv_entry *e, unsigned side, uint64_t now)
{
	e->has[!side] = 0;
	e->remote[!side] = 0;
	kl_memzero(e->val[!side], KL_S2S_VAL_LEN);
	__atomic_store_n(&e->expires, now + s->rv_life, __ATOMIC_RELAXED);
}

enum kl_s2s_rv kl_s2s_rv_local(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
			       const uint8_t *id2, uint16_t l2, unsigned side,
			       const uint8_t p[KL_S2S_P_LEN], const uint8_t val[KL_S2S_VAL_LEN],
			       uint8_t other[KL_S2S_VAL_LEN], uint64_t *expires, int *push)
{
	struct rv_lk lk;
	struct rv_entry *e;
	enum kl_s2s_rv rc = KL_S2S_RV_WAIT;
	int fresh;

	*push = 0;
	side &= 1;
	rc = rv_open(s, now, id1, l1, id2, l2, &lk, &e, &fresh);
	if (rc != KL_S2S_RV_WAIT)
		return rc;
	if (!e->has[side] || e->remote[side] || memcmp(e->p[side], p, KL_S2S_P_LEN)) {
		if (e->has[side] && !fresh)
			rv_replace(s, e, side, now);
		e->has[side] = 1;
		e->remote[side] = 0;
		memcpy(e->p[side], p, KL_S2S_P_LEN);
		memcpy(e->val[side], val, KL_S2S_VAL_LEN);
		*push = 1;
	}
	if (e->has[!side]) {
		memcpy(other, e->val[!side], KL_S2S_VAL_LEN);
		rc = KL_S2S_RV_READY;
	}
	*expires = e->expires;
	unlock2(&lk.b[0]->lock, &lk.b[1]->lock);
	return rc;
}

enum kl_s2s_rv kl_s2s_rv_remote(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
				const uint8_t *id2, uint16_t l2, unsigned side,
				const uint8_t val[KL_S2S_VAL_LEN])
{
	struct rv_lk lk;
	struct rv_entry *e;
	enum kl_s2s_rv rc;
	int fresh;

	side &= 1;
	rc = rv_open(s, now, id1, l1, id2, l2, &lk, &e, &fresh);
	if (rc != KL_S2S_RV_WAIT)
		return rc;
	if (!e->has[side] || memcmp(e->val[side], val, KL_S2S_VAL_LEN)) {
		if (e->has[side] && !fresh)
			rv_replace(s, e, side, now);
		e->has[side] = 1;
		e->remote[side] = 1;
		memset(e->p[side], 0, KL_S2S_P_LEN);
		memcpy(e->val[side], val, KL_S2S_VAL_LEN);
	}
	unlock2(&lk.b[0]->lock, &lk.b[1]->lock);
	return KL_S2S_RV_WAIT;
}

void kl_s2s_rv_unpushed(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
			const uint8_t *id2, uint16_t l2, unsigned side,
			const uint8_t val[KL_S2S_VAL_LEN])
{
	uint64_t k[2];
	struct rv_lk lk;

	side &= 1;
	key2(s, 'R', id1, l1, id2, l2, k);
	lk.b[0] = &s->rv[k[0] & s->rv_mask];
	lk.b[1] = &s->rv[k[1] & s->rv_mask];
	if (!lock2(&lk.b[0]->lock, &lk.b[1]->lock))
		return;
	for (unsigned x = 0; x < 2; x++)
		for (unsigned i = 0; i < RV_WAYS; i++) {
			struct rv_entry *e = &lk.b[x]->e[i];

			if (e->expires > now && e->k[0] == k[0] && e->k[1] == k[1] && e->has[side] &&
			    !e->remote[side] && !memcmp(e->val[side], val, KL_S2S_VAL_LEN)) {
				e->has[side] = 0;
				kl_memzero(e->val[side], KL_S2S_VAL_LEN);
			}
		}
	unlock2(&lk.b[0]->lock, &lk.b[1]->lock);
}

/* ---- peers' answers ---------------------------------------------------------------------------- */

/* The (peer, UE) entry in its two locked buckets, else the first free one (*found 0), else NULL. */
static struct pc_entry *pc_find(struct pc_bucket *const b[2], const uint64_t k[2], uint64_t now,
				int *found)
{
	struct pc_entry *free_e[2] = { NULL, NULL };
	unsigned nfree[2] = { 0, 0 };

	*found = 0;
	for (unsigned x = 0; x < 2; x++)
		for (unsigned i = 0; i < PC_WAYS; i++) {
			struct pc_entry *e = &b[x]->e[i];

			if (e->expires > now && e->k[0] == k[0] && e->k[1] == k[1]) {
				*found = 1;
				return e;
			}
			if (e->expires <= now && !nfree[x]++)
				free_e[x] = e;
		}
	return nfree[1] > nfree[0] ? free_e[1] : free_e[0]; /* the emptier bucket */
}

/* Key and buckets of (peer, UE), the buckets taken. @return 1, or 0 busy (counted). */
static int pc_open(struct kl_s2s *s, unsigned peer, const uint8_t *ue, uint16_t len, uint64_t k[2],
		   struct pc_bucket *b[2])
{
	uint8_t pi = (uint8_t)peer;

	key2(s, 'P', &pi, 1, ue, len, k);
	b[0] = &s->pc[k[0] & s->pc_mask];
	b[1] = &s->pc[k[1] & s->pc_mask];
	if (lock2(&b[0]->lock, &b[1]->lock))
		return 1;
	count(&s->contended);
	return 0;
}

enum kl_s2s_pc kl_s2s_pc_get(struct kl_s2s *s, uint64_t now, unsigned peer, const uint8_t *ue,
			     uint16_t len, uint8_t pub[32])
{
	uint64_t k[2];
	struct pc_bucket *b[2];
	struct pc_entry *e;
	enum kl_s2s_pc rc;
	int found;

	if (!pc_open(s, peer, ue, len, k, b))
		return KL_S2S_PC_BUSY;
	e = pc_find(b, k, now, &found);
	if (found) {
		rc = (enum kl_s2s_pc)e->status;
		if (rc == KL_S2S_PC_OK)
			memcpy(pub, e->pub, 32);
	} else if (!e) {
		count(&s->pc_full);
		rc = KL_S2S_PC_FULL;
	} else {
		/* reserved: the caller asks; the other workers' requests for it now wait */
		e->k[0] = k[0];
		e->k[1] = k[1];
		e->status = KL_S2S_PC_WAIT;
		__atomic_store_n(&e->expires, now + SEC(PC_WAIT_S), __ATOMIC_RELAXED);
		rc = KL_S2S_PC_MISS;
	}
	unlock2(&b[0]->lock, &b[1]->lock);
	return rc;
}

int kl_s2s_pc_set(struct kl_s2s *s, uint64_t now, unsigned peer, const uint8_t *ue, uint16_t len,
		  enum kl_s2s_pc status, const uint8_t pub[32])
{
	uint64_t k[2];
	struct pc_bucket *b[2];
	struct pc_entry *e;
	int found;

	if (!pc_open(s, peer, ue, len, k, b))
		return -1;
	e = pc_find(b, k, now, &found);
	if (e) {
		e->k[0] = k[0];
		e->k[1] = k[1];
		e->status = (uint8_t)status;
		if (status == KL_S2S_PC_OK)
			memcpy(e->pub, pub, 32);
		__atomic_store_n(&e->expires,
				 now + (status == KL_S2S_PC_WAIT ? SEC(PC_WAIT_S) : s->pc_life),
				 __ATOMIC_RELAXED);
	} else {
		count(&s->pc_full);
	}
	unlock2(&b[0]->lock, &b[1]->lock);
	return 0;
}

/* ---- requests in flight ------------------------------------------------------------------------ */

uint32_t kl_s2s_pd_csb(const struct kl_s2s *s, unsigned idx)
{
	return (__atomic_load_n(&s->pd[idx].gen, __ATOMIC_RELAXED) & 0xFFFFu) << 16 | idx;
}

int kl_s2s_pd_add(struct kl_s2s *s, unsigned owner, const struct kl_s2s_req *req)
{
	uint32_t start = __atomic_fetch_add(&s->pd_hint, 1, __ATOMIC_RELAXED);

	for (uint32_t n = 0; n < s->npd; n++) {
		struct pd_slot *sl = &s->pd[(start + n) % s->npd];
		uint32_t v = FREE;

		if (!__atomic_compare_exchange_n(&sl->state, &v, BUSY, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		sl->gen++;
		sl->owner = owner;
		sl->req = *req;
		memset(&sl->try_, 0, sizeof(sl->try_));
		__atomic_store_n(&sl->state, LIVE, __ATOMIC_RELEASE);
		return (int)((start + n) % s->npd);
	}
	count(&s->pd_full);
	return -1;
}

int kl_s2s_pd_take(struct kl_s2s *s, uint32_t csb, struct kl_s2s_req **req,
		   struct kl_s2s_try **try_)
{
	uint32_t idx = csb & 0xFFFFu, v = LIVE;
	struct pd_slot *sl;

	if (idx >= s->npd)
		return -1;
	sl = &s->pd[idx];
	if (!__atomic_compare_exchange_n(&sl->state, &v, BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return v == BUSY ? 0 : -1;
	if ((sl->gen & 0xFFFFu) != csb >> 16) {
		__atomic_store_n(&sl->state, LIVE, __ATOMIC_RELEASE);
		return -1;
	}
	*req = &sl->req;
	*try_ = &sl->try_;
	return 1;
}

void kl_s2s_pd_put(struct kl_s2s *s, uint32_t csb, int keep)
{
	struct pd_slot *sl = &s->pd[csb & 0xFFFFu];

	if (!keep) {
		kl_memzero(&sl->req, sizeof(sl->req));
		kl_memzero(&sl->try_, sizeof(sl->try_));
		sl->gen++; /* later answers to it name an old generation */
	}
	__atomic_store_n(&sl->state, keep ? LIVE : FREE, __ATOMIC_RELEASE);
}
