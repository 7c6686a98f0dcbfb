/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Key table. Layout of one kind: an rte_hash keyed by the 16-byte SipHash-128 digest of the
 * identity (a 128-bit keyed digest is collision-free in practice, so entries need not store the
 * identity), whose data pointer is an entry in a preallocated arena of fixed-size slots.
 *
 * Writer protocol (control thread only): fill a fresh slot, publish it with rte_hash_add_key_data
 * (an atomic pointer store for an existing key), then retire the old slot into a FIFO. Retired
 * slots are grouped into batches sharing one RCU token; once every reader has reported
 * quiescence past a batch's token its slots are zeroed and go back to the free stacks, and the
 * hash key positions of deleted keys are freed (lock-free rte_hash defers that to us).
 */
#include "kl_table.h"

_Static_assert(sizeof(struct kl_ue) == 40, "struct kl_ue grew: the per-UE memory target");

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_rcu_qsbr.h>

#include "kl_siphash.h"

#define KL_DIGEST_LEN 16
#define KL_GROUP_KEY_LEN 5
#define KL_BULK_MAX 64
#define KL_NAME_MAX 16	   /* rte_ring names "HT_EXT_<name>_<kind>" must fit 29 bytes */
#define KL_BATCHES 256	   /* RCU tokens outstanding at once; the newest batch grows past that */
#define KL_WAIT_US 500000u /* a writer out of spare slots waits this long for readers */
#define KL_REF_SHIFT 28	   /* retired-slot reference: arena id above, slot index below */
#define KL_REF_MASK ((1u << KL_REF_SHIFT) - 1)
#define KL_HASH_MIN_ENTRIES 8u /* rte_hash refuses less than one bucket (private constant) */

_Static_assert(KL_BULK_MAX <= RTE_HASH_LOOKUP_BULK_MAX, "bulk size beyond rte_hash's");

/* UEs take one of four arenas by the size of their entry: a MUK of one or two chunks, with or
 * without the X25519 public value that only dh UEs carry (kl_ue_dh_pub). */
enum kl_arena_id {
	KL_A_UE1,
	KL_A_UE2,
	KL_A_UE1D,
	KL_A_UE2D,
	KL_A_GROUP,
	KL_A_EMSE,
	KL_A_E2M,
	KL_A_APPID,
	KL_A_PAIR,
	KL_A__COUNT
};

_Static_assert(KL_A__COUNT <= 1u << (32 - KL_REF_SHIFT), "arena ids beyond the retired ref");

static const enum kl_table_kind arena_kind[KL_A__COUNT] = {
	KL_TK_UE,   KL_TK_UE,  KL_TK_UE,    KL_TK_UE, KL_TK_GROUP,
	KL_TK_EMSE, KL_TK_E2M, KL_TK_APPID, KL_TK_PAIR,
};

static const char *const kind_names[KL_TK__COUNT] = {
#define KL_X(e, n, pl, d) n,
	KL_TABLE_KIND_LIST(KL_X)
#undef KL_X
};
static const char *const kind_plurals[KL_TK__COUNT] = {
#define KL_X(e, n, pl, d) pl,
	KL_TABLE_KIND_LIST(KL_X)
#undef KL_X
};

const char *kl_table_kind_name(unsigned kind)
{
	return kind < KL_TK__COUNT ? kind_names[kind] : NULL;
}

const char *kl_table_kind_plural(unsigned kind)
{
	return kind < KL_TK__COUNT ? kind_plurals[kind] : "unknown";
}

int kl_table_kind_parse(const char *name, enum kl_table_kind *kind)
{
	for (unsigned k = 0; name && k < KL_TK__COUNT; k++)
		if (!strcmp(name, kind_names[k])) {
			*kind = (enum kl_table_kind)k;
			return 0;
		}
	return -EINVAL;
}

struct kl_arena {
	uint8_t *base;
	uint32_t *free; /* stack of recycled slot indices */
	uint32_t slot_size;
	uint32_t nslots;
	uint32_t bump; /* [bump, nslots) never handed out: still zero from creation */
	uint32_t nfree;
};

struct kl_retired {
	uint32_t ref; /* arena id << KL_REF_SHIFT | slot index */
	int32_t pos;  /* hash key position to free after a delete; -1 after a replacement */
};

struct kl_batch {
	uint64_t token;
	uint64_t end; /* retire FIFO counter one past the batch's last slot */
};

struct kl_table {
	struct rte_hash *h[KL_TK__COUNT];
	struct kl_arena arena[KL_A__COUNT];
	struct rte_rcu_qsbr *qsv;
	struct kl_retired *retired; /* FIFO; holds every slot of every arena in the worst case */
	uint64_t r_head, r_tail;
	uint32_t r_cap;
	unsigned b_head, b_count;
	struct kl_batch batch[KL_BATCHES];
	struct kl_sipkey sip;
	uint32_t max[KL_TK__COUNT];
	uint32_t count[KL_TK__COUNT];
	uint32_t budget[KL_A__COUNT]; /* UE arenas: entries each may hold (the rest is spare) */
	uint32_t max_dh;	      /* dh UEs in both dh arenas together */
	uint32_t used[KL_A__COUNT];
	uint8_t e2m_ring;
	uint8_t max_readers;
	uint64_t memory;
};

/* ---- PSK states ------------------------------------------------------------------------------ */

int kl_psk_init(const uint8_t *psk, unsigned len, struct kl_psk_chunk *chunks)
{
	struct kl_hmac_key k;
	unsigned n;

	if (!psk || !chunks || len < 1 || len > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN)
		return -EINVAL;
	n = (len + KL_PRF_CHUNK_LEN - 1) / KL_PRF_CHUNK_LEN;
	for (unsigned i = 0; i < n; i++) {
		unsigned off = i * KL_PRF_CHUNK_LEN;
		unsigned cl = RTE_MIN(len - off, (unsigned)KL_PRF_CHUNK_LEN);

		kl_hmac_key_init(KL_HASH_SHA1, psk + off, cl, &k);
		memcpy(chunks[i].sha1_i, k.istate, sizeof(chunks[i].sha1_i));
		memcpy(chunks[i].sha1_o, k.ostate, sizeof(chunks[i].sha1_o));
		kl_hmac_key_init(KL_HASH_SHA256, psk + off, cl, &k);
		memcpy(chunks[i].sha256_i, k.istate, sizeof(chunks[i].sha256_i));
		memcpy(chunks[i].sha256_o, k.ostate, sizeof(chunks[i].sha256_o));
	}
	kl_hmac_key_wipe(&k);
	return (int)n;
}

void kl_psk_expand(const struct kl_psk_chunk *chunks, unsigned nchunks, enum kl_prf prf,
		   struct kl_hmac_key *out)
{
	if (unlikely(!chunks || !out))
		return;
	nchunks = RTE_MIN(nchunks, (unsigned)KL_TABLE_PSK_CHUNKS);
	for (unsigned i = 0; i < nchunks; i++) {
		const struct kl_psk_chunk *c = &chunks[i];
		struct kl_hmac_key *k = &out[i];

		if (prf == KL_PRF_MIKEY1) {
			memcpy(k->istate, c->sha1_i, sizeof(c->sha1_i));
			memcpy(k->ostate, c->sha1_o, sizeof(c->sha1_o));
			/* same words as kl_hmac_key_init leaves, so states compare equal */
			k->istate[5] = k->istate[6] = k->istate[7] = 0;
			k->ostate[5] = k->ostate[6] = k->ostate[7] = 0;
			k->alg = KL_HASH_SHA1;
		} else {
			memcpy(k->istate, c->sha256_i, sizeof(c->sha256_i));
			memcpy(k->ostate, c->sha256_o, sizeof(c->sha256_o));
			k->alg = KL_HASH_SHA256;
		}
	}
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* The keys are already uniform keyed digests: any 32 bits of them are a good bucket hash. */
static uint32_t digest_hash(const void *key, uint32_t len, uint32_t init)
{
	uint32_t h;

	RTE_SET_USED(len);
	RTE_SET_USED(init);
	memcpy(&h, key, sizeof(h));
	return h;
}

static inline bool id_ok(enum kl_table_kind kind, const uint8_t *id, uint16_t len)
{
	if (!id)
		return false;
	if (kind == KL_TK_GROUP)
		return len == KL_GROUP_KEY_LEN;
	return len >= 1 && len <= KL_TABLE_ID_MAX;
}

/* @return 1..15 for a string of decimal digits, 0 otherwise. */
static unsigned imsi_len(const char *imsi)
{
	unsigned n = 0;

	if (!imsi)
		return 0;
	while (n < KL_TABLE_IMSI_MAX && imsi[n]) {
		if (imsi[n] < '0' || imsi[n] > '9')
			return 0;
		n++;
	}
	return n < KL_TABLE_IMSI_MAX ? n : 0;
}

static void group_key(const struct kl_group_ref *ref, uint8_t key[KL_GROUP_KEY_LEN])
{
	memcpy(key, ref->domain, 3);
	key[3] = (uint8_t)(ref->group >> 8);
	key[4] = (uint8_t)ref->group;
}

static inline void *slot_ptr(const struct kl_arena *a, uint32_t idx)
{
	return a->base + (size_t)idx * a->slot_size;
}

/* The reclaim path keeps recycled slots zero, and never-used ones are zero from creation. */
static void *arena_take(struct kl_arena *a)
{
	if (a->nfree)
		return slot_ptr(a, a->free[--a->nfree]);
	if (a->bump < a->nslots)
		return slot_ptr(a, a->bump++);
	return NULL;
}

static void arena_put(struct kl_arena *a, void *e)
{
	uint32_t idx = (uint32_t)(((uint8_t *)e - a->base) / a->slot_size);

	kl_memzero(e, a->slot_size);
	a->free[a->nfree++] = idx;
}

static int arena_of(const struct kl_table *t, enum kl_table_kind kind, const void *e)
{
	for (int i = 0; i < KL_A__COUNT; i++) {
		const struct kl_arena *a = &t->arena[i];

		if (arena_kind[i] == kind && a->base && (const uint8_t *)e >= a->base &&
		    (const uint8_t *)e < a->base + (size_t)a->nslots * a->slot_size)
			return i;
	}
	return -1;
}

static void recycle(struct kl_table *t, const struct kl_retired *r)
{
	struct kl_arena *a = &t->arena[r->ref >> KL_REF_SHIFT];

	arena_put(a, slot_ptr(a, r->ref & KL_REF_MASK));
	if (r->pos >= 0)
		rte_hash_free_key_with_position(t->h[arena_kind[r->ref >> KL_REF_SHIFT]], r->pos);
}

static void retire(struct kl_table *t, enum kl_table_kind kind, const void *e, int32_t pos)
{
	int ai = arena_of(t, kind, e);
	const struct kl_arena *a = &t->arena[ai];
	uint32_t idx = (uint32_t)(((const uint8_t *)e - a->base) / a->slot_size);

	t->retired[t->r_tail % t->r_cap] = (struct kl_retired){
		.ref = (uint32_t)ai << KL_REF_SHIFT | idx,
		.pos = pos,
	};
	t->r_tail++;
}

/* One token per write; when too many batches are outstanding the newest absorbs the new slots
 * and takes the new token, which is later than all of theirs and so safe for them too. */
static void commit(struct kl_table *t)
{
	uint64_t tok = rte_rcu_qsbr_start(t->qsv);
	unsigned last;

	if (t->b_count < KL_BATCHES) {
		last = (t->b_head + t->b_count) % KL_BATCHES;
		t->b_count++;
	} else {
		last = (t->b_head + t->b_count - 1) % KL_BATCHES;
	}
	t->batch[last] = (struct kl_batch){.token = tok, .end = t->r_tail};
}

void kl_table_reclaim(struct kl_table *t)
{
	if (!t)
		return;
	while (t->b_count) {
		const struct kl_batch *b = &t->batch[t->b_head];

		if (!rte_rcu_qsbr_check(t->qsv, b->token, false))
			break;
		for (; t->r_head < b->end; t->r_head++)
			recycle(t, &t->retired[t->r_head % t->r_cap]);
		t->b_head = (t->b_head + 1) % KL_BATCHES;
		t->b_count--;
	}
}

/* Out of spare slots (or hash key slots): readers are behind. Sleep rather than spin so that a
 * reader sharing our core can run; give up after KL_WAIT_US so a stuck reader cannot hang the
 * control thread. @return true when something was reclaimed. */
static bool wait_readers(struct kl_table *t, uint64_t *deadline)
{
	unsigned before = t->b_count;
	uint64_t now = rte_get_timer_cycles();

	if (!before)
		return false;
	if (!*deadline)
		*deadline = now + rte_get_timer_hz() / 1000000 * KL_WAIT_US;
	for (;;) {
		kl_table_reclaim(t);
		if (t->b_count < before)
			return true;
		if (rte_get_timer_cycles() > *deadline)
			return false;
		rte_delay_us_sleep(20);
	}
}

static void *entry_get(struct kl_table *t, enum kl_arena_id ai)
{
	uint64_t deadline = 0;
	void *e;

	while (!(e = arena_take(&t->arena[ai])) && wait_readers(t, &deadline))
		;
	return e;
}

static void *find(struct kl_table *t, enum kl_table_kind kind, const uint8_t dig[KL_DIGEST_LEN])
{
	void *d;

	return rte_hash_lookup_data(t->h[kind], dig, &d) < 0 ? NULL : d;
}

/* The digest of an identity (or group key) of len bytes and the entry it maps to, NULL if none. */
static void *find_id(struct kl_table *t, enum kl_table_kind kind, const uint8_t *id, size_t len,
		     uint8_t dig[KL_DIGEST_LEN])
{
	kl_siphash128(&t->sip, id, len, dig);
	return find(t, kind, dig);
}

/* The same for a write: first recycle what readers have passed, so the write finds spare slots. */
static void *write_find(struct kl_table *t, enum kl_table_kind kind, const uint8_t *id, size_t len,
			uint8_t dig[KL_DIGEST_LEN])
{
	kl_table_reclaim(t);
	return find_id(t, kind, id, len, dig);
}

/* A slot for the new version of an entry (old: the current one, NULL for a new key); NULL when a
 * new key would pass the kind's maximum or no slot is free (-ENOSPC). */
static void *entry_for(struct kl_table *t, enum kl_table_kind kind, enum kl_arena_id ai,
		       const void *old)
{
	if (!old && t->count[kind] >= t->max[kind])
		return NULL;
	return entry_get(t, ai);
}

/* @return 0 (added), 1 (replaced) or -errno; on error e is returned to its arena. */
static int publish(struct kl_table *t, enum kl_table_kind kind, enum kl_arena_id ai,
		   const uint8_t dig[KL_DIGEST_LEN], void *e, const void *old)
{
	uint64_t deadline = 0;
	int rc;

	/* Deleted keys keep their hash key slot until readers pass; wait for them if needed. */
	while ((rc = rte_hash_add_key_data(t->h[kind], dig, e)) == -ENOSPC &&
	       wait_readers(t, &deadline))
		;
	if (rc < 0) {
		arena_put(&t->arena[ai], e);
		return rc;
	}
	if (old) {
		retire(t, kind, old, -1);
		commit(t);
		return 1;
	}
	__atomic_store_n(&t->count[kind], t->count[kind] + 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- create / free ---------------------------------------------------------------------------- */

static uint64_t heap_alloc_bytes(void)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < rte_socket_count(); i++) {
		struct rte_malloc_socket_stats st;

		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0)
			sum += st.heap_allocsz_bytes;
	}
	return sum;
}

/* Slots for replacements and deletes whose old entry readers may still hold. */
static uint32_t spare(uint32_t max)
{
	return max / 16 + 1024;
}

/* rte_hash sizes buckets and its free-slot ring to powers of two, so key slots up to the next
 * power cost only 32 bytes each; crossing it doubles the buckets. Use the free headroom when it
 * is a useful fraction of the spare, else pay for the spare. */
static uint32_t hash_entries(uint32_t max)
{
	uint64_t want = (uint64_t)max + spare(max);
	uint64_t p2 = rte_align64pow2((uint64_t)max + 1);

	if (p2 - 1 - max >= spare(max) / 8)
		want = RTE_MIN(want, p2 - 1);
	return (uint32_t)RTE_MAX(want, (uint64_t)KL_HASH_MIN_ENTRIES);
}

static int arena_init(struct kl_arena *a, const char *name, uint32_t slot_size, uint32_t nslots,
		      int socket)
{
	a->slot_size = slot_size;
	a->nslots = nslots;
	a->base = rte_zmalloc_socket(name, (size_t)slot_size * nslots, RTE_CACHE_LINE_SIZE, socket);
	a->free = rte_malloc_socket(name, sizeof(uint32_t) * nslots, 0, socket);
	return a->base && a->free ? 0 : -ENOMEM;
}

struct kl_table *kl_table_create(const struct kl_table_params *p)
{
	uint32_t slot_size[KL_A__COUNT], nslots[KL_A__COUNT];
	uint64_t before = heap_alloc_bytes(), total_slots = 0;
	uint32_t max_ue2, max_dh;
	struct kl_table *t;
	uint8_t rnd[16];
	size_t qsz;
	int err;

	if (!p || !p->name || !p->name[0] || strlen(p->name) > KL_NAME_MAX ||
	    p->e2m_ring > KL_TABLE_E2M_RING_MAX) {
		rte_errno = EINVAL;
		return NULL;
	}
	t = rte_zmalloc_socket("kl_table", sizeof(*t), RTE_CACHE_LINE_SIZE, p->socket_id);
	if (!t) {
		rte_errno = ENOMEM;
		return NULL;
	}
	t->max[KL_TK_UE] = p->max_ues;
	t->max[KL_TK_GROUP] = p->max_groups;
	t->max[KL_TK_EMSE] = p->max_emses;
	t->max[KL_TK_E2M] = p->max_imsis;
	t->max[KL_TK_APPID] = p->max_appids;
	t->max[KL_TK_PAIR] = p->max_pairs;
	t->e2m_ring = p->e2m_ring ? p->e2m_ring : 4;
	t->max_readers = p->max_readers;
	max_ue2 = RTE_MIN(p->max_ues_2chunk ? p->max_ues_2chunk : p->max_ues / 32 + 64, p->max_ues);
	/* by default room for 1 in 16 UEs, and for all of a table of up to 64 Ki UEs (a test
	 * population where every UE has dh costs at most 11.5 MB) */
	max_dh = p->max_ues_dh ? p->max_ues_dh
			       : RTE_MAX(p->max_ues / 16 + 1024, RTE_MIN(p->max_ues, 65536u));
	max_dh = RTE_MIN(max_dh, p->max_ues);
	t->budget[KL_A_UE1] = p->max_ues;
	t->budget[KL_A_UE2] = max_ue2;
	t->budget[KL_A_UE1D] = max_dh;
	t->max_dh = max_dh;
	/* dh with a MUK over 32 bytes: rarer than either (slots of 280 bytes) */
	t->budget[KL_A_UE2D] = RTE_MIN(max_ue2, max_dh) / 8 + 64;
	t->budget[KL_A_UE2D] = RTE_MIN(t->budget[KL_A_UE2D], RTE_MIN(max_ue2, max_dh));

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		err = errno ? errno : EIO;
		goto fail;
	}
	kl_siphash_key(&t->sip, rnd);
	kl_memzero(rnd, sizeof(rnd));

	qsz = rte_rcu_qsbr_get_memsize(RTE_MAX(p->max_readers, (uint8_t)1));
	t->qsv = rte_zmalloc_socket("kl_table_rcu", qsz, RTE_CACHE_LINE_SIZE, p->socket_id);
	if (!t->qsv) {
		err = ENOMEM;
		goto fail;
	}
	if (rte_rcu_qsbr_init(t->qsv, RTE_MAX(p->max_readers, (uint8_t)1))) {
		err = rte_errno;
		goto fail;
	}

	slot_size[KL_A_UE1] = sizeof(struct kl_ue) + sizeof(struct kl_psk_chunk);
	slot_size[KL_A_UE2] = sizeof(struct kl_ue) + 2 * sizeof(struct kl_psk_chunk);
	slot_size[KL_A_UE1D] = slot_size[KL_A_UE1] + KL_X25519_LEN;
	slot_size[KL_A_UE2D] = slot_size[KL_A_UE2] + KL_X25519_LEN;
	slot_size[KL_A_GROUP] = sizeof(struct kl_group);
	slot_size[KL_A_EMSE] = sizeof(struct kl_emse);
	slot_size[KL_A_E2M] = sizeof(struct kl_e2m) + t->e2m_ring * sizeof(struct kl_e2m_key);
	slot_size[KL_A_APPID] = sizeof(struct kl_appid);
	slot_size[KL_A_PAIR] = sizeof(struct kl_pair);
	for (int i = 0; i < KL_A__COUNT; i++) {
		uint32_t max = arena_kind[i] == KL_TK_UE ? t->budget[i] : t->max[arena_kind[i]];

		nslots[i] = max ? max + spare(max) : 0;
		if (nslots[i] > KL_REF_MASK) {
			err = EINVAL;
			goto fail;
		}
		total_slots += nslots[i];
	}

	for (int k = 0; k < KL_TK__COUNT; k++) {
		char name[RTE_HASH_NAMESIZE];
		struct rte_hash_parameters hp = {
			.name = name,
			.entries = hash_entries(t->max[k]),
			.key_len = KL_DIGEST_LEN,
			.hash_func = digest_hash,
			.socket_id = p->socket_id,
			/* LF: lock-free readers with one writer; EXT_TABLE: inserts never fail
			 * on cuckoo path exhaustion (22.11 supports both together) */
			.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
				      RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
		};

		if (!t->max[k])
			continue;
		snprintf(name, sizeof(name), "%s_%s", p->name, kind_names[k]);
		t->h[k] = rte_hash_create(&hp);
		if (!t->h[k]) {
			err = rte_errno ? rte_errno : ENOMEM;
			goto fail;
		}
	}

	for (int i = 0; i < KL_A__COUNT; i++) {
		if (nslots[i] && arena_init(&t->arena[i], "kl_table_arena", slot_size[i], nslots[i],
					    p->socket_id)) {
			err = ENOMEM;
			goto fail;
		}
	}
	t->r_cap = (uint32_t)RTE_MAX(total_slots, (uint64_t)1);
	t->retired = rte_malloc_socket("kl_table_retired", sizeof(*t->retired) * t->r_cap, 0,
				       p->socket_id);
	if (!t->retired) {
		err = ENOMEM;
		goto fail;
	}
	/* Measured, not estimated: everything above comes from the DPDK heap, rte_hash's rings
	 * (memzones) included, so the heap's delta is the table's footprint with allocator
	 * overhead. Assumes no other thread allocates from the heap meanwhile. */
	t->memory = heap_alloc_bytes() - before;
	return t;

fail:
	kl_memzero(rnd, sizeof(rnd));
	kl_table_free(t);
	rte_errno = err;
	return NULL;
}

void kl_table_free(struct kl_table *t)
{
	if (!t)
		return;
	for (int k = 0; k < KL_TK__COUNT; k++)
		rte_hash_free(t->h[k]);
	for (int i = 0; i < KL_A__COUNT; i++) {
		struct kl_arena *a = &t->arena[i];

		/* slots past bump were never written */
		if (a->base)
			kl_memzero(a->base, (size_t)a->bump * a->slot_size);
		rte_free(a->base);
		rte_free(a->free);
	}
	rte_free(t->retired);
	rte_free(t->qsv);
	kl_memzero(t, sizeof(*t));
	rte_free(t);
}

/* ---- read side -------------------------------------------------------------------------------- */

int kl_table_reader_register(struct kl_table *t, unsigned reader)
{
	if (!t || reader >= t->max_readers)
		return -EINVAL;
	if (rte_rcu_qsbr_thread_register(t->qsv, reader))
		return -rte_errno;
	rte_rcu_qsbr_thread_online(t->qsv, reader);
	return 0;
}

void kl_table_quiescent(struct kl_table *t, unsigned reader)
{
	rte_rcu_qsbr_quiescent(t->qsv, reader);
}

void kl_table_reader_offline(struct kl_table *t, unsigned reader)
{
	rte_rcu_qsbr_thread_offline(t->qsv, reader);
}

void kl_table_reader_online(struct kl_table *t, unsigned reader)
{
	rte_rcu_qsbr_thread_online(t->qsv, reader);
}

void kl_table_reader_unregister(struct kl_table *t, unsigned reader)
{
	if (!t || reader >= t->max_readers)
		return;
	rte_rcu_qsbr_thread_offline(t->qsv, reader);
	rte_rcu_qsbr_thread_unregister(t->qsv, reader);
}

unsigned kl_table_lookup_bulk(struct kl_table *t, enum kl_table_kind kind,
			      const struct kl_table_key *keys, unsigned n, const void **out)
{
	uint8_t dig[KL_BULK_MAX][KL_DIGEST_LEN];
	const void *kp[KL_BULK_MAX];
	void *data[KL_BULK_MAX];
	uint8_t at[KL_BULK_MAX];
	uint64_t hits = 0;
	unsigned m = 0, found = 0;

	if (!out)
		return 0;
	for (unsigned i = 0; i < n; i++)
		out[i] = NULL;
	if (!t || !keys || n > KL_BULK_MAX || (unsigned)kind >= KL_TK__COUNT || !t->h[kind])
		return 0;
	for (unsigned i = 0; i < n; i++) {
		if (!id_ok(kind, keys[i].id, keys[i].len))
			continue;
		kl_siphash128(&t->sip, keys[i].id, keys[i].len, dig[m]);
		kp[m] = dig[m];
		at[m++] = (uint8_t)i;
	}
	if (!m || rte_hash_lookup_bulk_data(t->h[kind], kp, m, &hits, data) <= 0)
		return 0;
	for (unsigned j = 0; j < m; j++) {
		if (hits >> j & 1) {
			out[at[j]] = data[j];
			found++;
		}
	}
	return found;
}

/* ---- write side ------------------------------------------------------------------------------- */

int kl_table_put_ue(struct kl_table *t, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
		    unsigned muk_len, const struct kl_group_ref *groups, unsigned ngroups)
{
	return kl_table_put_ue_exp(t, id, id_len, muk, muk_len, groups, ngroups, 0);
}

static enum kl_arena_id ue_arena(unsigned nchunks, uint8_t services)
{
	bool dh = services & KL_SVC(DH);

	if (nchunks == 2)
		return dh ? KL_A_UE2D : KL_A_UE2;
	return dh ? KL_A_UE1D : KL_A_UE1;
}

/* Where a dh UE's public value sits: after its chunks (only dh arenas' slots have room). */
static uint8_t *ue_pub(struct kl_ue *e)
{
	return (uint8_t *)&e->chunk[e->nchunks];
}

/* The arena a UE's new version goes to has room for it (a version that stays in its old
 * arena takes no more of it), and a UE that becomes a dh UE stays within their maximum. */
static bool ue_room(const struct kl_table *t, enum kl_arena_id ai, const struct kl_ue *old)
{
	bool was_dh = old && (old->services & KL_SVC(DH));

	if (old && ue_arena(old->nchunks, old->services) == ai)
		return true;
	if (t->used[ai] >= t->budget[ai])
		return false;
	return was_dh || (ai != KL_A_UE1D && ai != KL_A_UE2D) ||
	       t->used[KL_A_UE1D] + t->used[KL_A_UE2D] < t->max_dh;
}

/* Publish a UE's new version e (from arena ai) over old, keeping the arenas' counts. */
static int ue_publish(struct kl_table *t, enum kl_arena_id ai, const uint8_t dig[KL_DIGEST_LEN],
		      struct kl_ue *e, const struct kl_ue *old)
{
	enum kl_arena_id oai = old ? ue_arena(old->nchunks, old->services) : ai;
	int rc = publish(t, KL_TK_UE, ai, dig, e, old);

	if (rc >= 0) {
		t->used[ai]++;
		if (old)
			t->used[oai]--;
	}
	return rc;
}

/* services 0: KL_SVC_DEFAULT. A put replaces the whole entry, as the store's put does. A dh UE's
 * public value is computed here, from the MUK, on the writer (never on the packet path). */
static int put_ue(struct kl_table *t, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
		  unsigned muk_len, const struct kl_group_ref *groups, unsigned ngroups,
		  uint64_t expires, uint8_t services)
{
	uint8_t dig[KL_DIGEST_LEN];
	const struct kl_ue *old;
	enum kl_arena_id ai;
	struct kl_ue *e;

	if (!t || !id_ok(KL_TK_UE, id, id_len) || !muk || muk_len < 1 ||
	    muk_len > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN || ngroups > KL_TABLE_UE_GROUPS ||
	    (ngroups && !groups))
		return -EINVAL;
	if (!t->h[KL_TK_UE])
		return -ENOSPC;
	services = services ? services : KL_SVC_DEFAULT;
	old = write_find(t, KL_TK_UE, id, id_len, dig);
	ai = ue_arena(muk_len > KL_PRF_CHUNK_LEN ? 2 : 1, services);
	if (!ue_room(t, ai, old))
		return -ENOSPC;
	e = entry_for(t, KL_TK_UE, ai, old);
	if (!e)
		return -ENOSPC;
	for (unsigned i = 0; i < ngroups; i++) {
		memcpy(e->groups[i].domain, groups[i].domain, sizeof(e->groups[i].domain));
		e->groups[i].group = groups[i].group;
	}
	e->ngroups = (uint8_t)ngroups & 0xF;
	e->nchunks = (uint8_t)kl_psk_init(muk, muk_len, e->chunk) & 0xF;
	if (kl_kcv(muk, muk_len, e->kcv))
		memset(e->kcv, 0, sizeof(e->kcv));
	e->expires = expires;
	e->services = services;
	if (services & KL_SVC(DH)) {
		struct kl_hmac_key kx;
		int rc = kl_hmac_key_init(KL_HASH_SHA256, muk, muk_len, &kx) ? -EIO
					 : kl_dh_public(NULL, &kx, ue_pub(e));

		kl_hmac_key_wipe(&kx);
		if (rc) {
			arena_put(&t->arena[ai], e);
			return -EIO;
		}
	}
	return ue_publish(t, ai, dig, e, old);
}

int kl_table_put_ue_exp(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			const uint8_t *muk, unsigned muk_len, const struct kl_group_ref *groups,
			unsigned ngroups, uint64_t expires)
{
	return put_ue(t, id, id_len, muk, muk_len, groups, ngroups, expires, 0);
}

/* A copy of a UE's entry with other groups (groups NULL: the same ones) or other services (0: the
 * same ones), swapped in for the old one; its MUK states, KCV and expiry are kept. The new entry
 * comes from the arena of its size: the old one's unless the dh service comes or goes. A UE that
 * gets the dh service gets its public value here, from its one chunk's HMAC-SHA-256 state (the
 * state of the whole MUK when it is at most 32 bytes); a longer MUK's state is not kept
 * (-EOPNOTSUPP: the UE must be put again with its MUK). */
static int ue_replace(struct kl_table *t, const uint8_t *id, uint16_t id_len,
		      const struct kl_group_ref *groups, unsigned ngroups, uint8_t services)
{
	uint8_t dig[KL_DIGEST_LEN];
	const struct kl_ue *old;
	enum kl_arena_id ai;
	struct kl_ue *e;

	if (!t->h[KL_TK_UE])
		return -ENOENT;
	old = write_find(t, KL_TK_UE, id, id_len, dig);
	if (!old)
		return -ENOENT;
	services = services ? services : old->services;
	if ((services & ~old->services & KL_SVC(DH)) && old->nchunks != 1)
		return -EOPNOTSUPP;
	ai = ue_arena(old->nchunks, services);
	if (!ue_room(t, ai, old))
		return -ENOSPC;
	e = entry_get(t, ai);
	if (!e)
		return -ENOSPC;
	if (!groups) {
		groups = old->groups;
		ngroups = old->ngroups;
	}
	for (unsigned i = 0; i < ngroups; i++) {
		memcpy(e->groups[i].domain, groups[i].domain, sizeof(e->groups[i].domain));
		e->groups[i].group = groups[i].group;
	}
	e->ngroups = (uint8_t)ngroups & 0xF;
	e->nchunks = old->nchunks;
	memcpy(e->kcv, old->kcv, sizeof(e->kcv));
	e->expires = old->expires;
	e->services = services;
	memcpy(e->chunk, old->chunk, (size_t)old->nchunks * sizeof(e->chunk[0]));
	if ((services & KL_SVC(DH)) && kl_ue_dh_pub(old)) {
		memcpy(ue_pub(e), kl_ue_dh_pub(old), KL_X25519_LEN);
	} else if (services & KL_SVC(DH)) {
		struct kl_hmac_key kx;
		int rc;

		kl_psk_expand(old->chunk, 1, KL_PRF_HMAC_SHA256, &kx);
		rc = kl_dh_public(NULL, &kx, ue_pub(e));
		kl_hmac_key_wipe(&kx);
		if (rc) {
			arena_put(&t->arena[ai], e);
			return -EIO;
		}
	}
	return ue_publish(t, ai, dig, e, old);
}

int kl_table_set_ue_groups(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			   const struct kl_group_ref *groups, unsigned ngroups)
{
	static const struct kl_group_ref none[1];

	if (!t || !id_ok(KL_TK_UE, id, id_len) || ngroups > KL_TABLE_UE_GROUPS ||
	    (ngroups && !groups))
		return -EINVAL;
	return ue_replace(t, id, id_len, ngroups ? groups : none, ngroups, 0);
}

int kl_table_set_ue_services(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			     uint8_t services)
{
	if (!t || !id_ok(KL_TK_UE, id, id_len) || !services || (services & ~KL_SVC_ALL))
		return -EINVAL;
	return ue_replace(t, id, id_len, NULL, 0, services);
}

/* Writer-side find of a UE. @return 0 (*u set), -EINVAL or -ENOENT. */
static int ue_find(struct kl_table *t, const uint8_t *id, uint16_t id_len, const struct kl_ue **u)
{
	uint8_t dig[KL_DIGEST_LEN];

	if (!t || !id_ok(KL_TK_UE, id, id_len))
		return -EINVAL;
	if (!t->h[KL_TK_UE])
		return -ENOENT;
	*u = find_id(t, KL_TK_UE, id, id_len, dig);
	return *u ? 0 : -ENOENT;
}

int kl_table_get_ue_services(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			     uint8_t *services)
{
	const struct kl_ue *u;
	int rc = services ? ue_find(t, id, id_len, &u) : -EINVAL;

	if (!rc)
		*services = u->services;
	return rc;
}

int kl_table_get_ue(struct kl_table *t, const uint8_t *id, uint16_t id_len,
		    struct kl_group_ref *groups, unsigned *ngroups, uint8_t kcv[KL_KCV_LEN])
{
	const struct kl_ue *u;
	int rc = ue_find(t, id, id_len, &u);

	if (rc)
		return rc;
	for (unsigned i = 0; groups && i < u->ngroups; i++) {
		memset(&groups[i], 0, sizeof(groups[i]));
		memcpy(groups[i].domain, u->groups[i].domain, sizeof(groups[i].domain));
		groups[i].group = u->groups[i].group;
	}
	if (ngroups)
		*ngroups = u->ngroups;
	if (kcv)
		memcpy(kcv, u->kcv, KL_KCV_LEN);
	return 0;
}

int kl_table_get_ue_expiry(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			   uint64_t *expires)
{
	const struct kl_ue *u;
	int rc = expires ? ue_find(t, id, id_len, &u) : -EINVAL;

	if (!rc)
		*expires = u->expires;
	return rc;
}

int kl_table_get_ue_dh_pub(struct kl_table *t, const uint8_t *id, uint16_t id_len,
			   uint8_t pub[KL_X25519_LEN])
{
	const struct kl_ue *u;
	int rc = pub ? ue_find(t, id, id_len, &u) : -EINVAL;

	if (!rc && !kl_ue_dh_pub(u))
		rc = -ENODATA;
	if (!rc)
		memcpy(pub, kl_ue_dh_pub(u), KL_X25519_LEN);
	return rc;
}

unsigned kl_table_put_ue_bulk(struct kl_table *t, const struct kl_ue_put *v, unsigned n,
			      int *results)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++) {
		int rc = v && !(v[i].services & ~KL_SVC_ALL)
				 ? put_ue(t, v[i].id, v[i].id_len, v[i].muk, v[i].muk_len, v[i].groups,
					  v[i].ngroups, v[i].expires, v[i].services)
				 : -EINVAL;

		if (results)
			results[i] = rc;
		ok += rc >= 0;
	}
	return ok;
}

static void copy_msk(struct kl_msk *d, const struct kl_msk *s)
{
	memcpy(d->key, s->key, sizeof(d->key));
	d->valid_from = s->valid_from;
	d->valid_to = s->valid_to;
	d->msk_id = s->msk_id;
}

int kl_table_put_group(struct kl_table *t, const struct kl_group_ref *ref,
		       const struct kl_group *g)
{
	uint8_t key[KL_GROUP_KEY_LEN], dig[KL_DIGEST_LEN];
	const void *old;
	struct kl_group *e;

	if (!t || !ref || !g)
		return -EINVAL;
	if (!t->h[KL_TK_GROUP])
		return -ENOSPC;
	group_key(ref, key);
	old = write_find(t, KL_TK_GROUP, key, sizeof(key), dig);
	e = entry_for(t, KL_TK_GROUP, KL_A_GROUP, old);
	if (!e)
		return -ENOSPC;
	copy_msk(&e->current, &g->current);
	copy_msk(&e->next, &g->next);
	e->has_next = g->has_next ? 1 : 0;
	return publish(t, KL_TK_GROUP, KL_A_GROUP, dig, e, old);
}

int kl_table_get_group(struct kl_table *t, const struct kl_group_ref *ref, struct kl_group *out)
{
	uint8_t key[KL_GROUP_KEY_LEN], dig[KL_DIGEST_LEN];
	const struct kl_group *g;

	if (!t || !ref || !out)
		return -EINVAL;
	if (!t->h[KL_TK_GROUP])
		return -ENOENT;
	group_key(ref, key);
	g = find_id(t, KL_TK_GROUP, key, sizeof(key), dig);
	if (!g)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	copy_msk(&out->current, &g->current);
	copy_msk(&out->next, &g->next);
	out->has_next = g->has_next;
	return 0;
}

int kl_table_put_emse(struct kl_table *t, const uint8_t *id, uint16_t id_len, const uint8_t *psk,
		      unsigned psk_len)
{
	uint8_t dig[KL_DIGEST_LEN];
	const void *old;
	struct kl_emse *e;

	if (!t || !id_ok(KL_TK_EMSE, id, id_len) || !psk || psk_len < 1 ||
	    psk_len > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN)
		return -EINVAL;
	if (!t->h[KL_TK_EMSE])
		return -ENOSPC;
	old = write_find(t, KL_TK_EMSE, id, id_len, dig);
	e = entry_for(t, KL_TK_EMSE, KL_A_EMSE, old);
	if (!e)
		return -ENOSPC;
	e->nchunks = (uint8_t)kl_psk_init(psk, psk_len, e->chunk);
	if (kl_kcv(psk, psk_len, e->kcv))
		memset(e->kcv, 0, sizeof(e->kcv));
	return publish(t, KL_TK_EMSE, KL_A_EMSE, dig, e, old);
}

/* Returns 1 when key_id was already in the ring (replaced in place), 0 when the key was added
 * (the IMSI is created if new), or -errno. */
int kl_table_push_e2m(struct kl_table *t, const char *imsi, const uint8_t key[32], uint32_t key_id,
		      uint64_t expires)
{
	unsigned ilen = imsi_len(imsi), n;
	uint8_t dig[KL_DIGEST_LEN];
	const struct kl_e2m *old;
	struct kl_e2m_key nk;
	struct kl_hmac_key hk;
	struct kl_e2m *e;
	int at = -1, rc;

	if (!t || !ilen || !key)
		return -EINVAL;
	if (!t->h[KL_TK_E2M])
		return -ENOSPC;
	old = write_find(t, KL_TK_E2M, (const uint8_t *)imsi, ilen, dig);
	e = entry_for(t, KL_TK_E2M, KL_A_E2M, old);
	if (!e)
		return -ENOSPC;

	memset(&nk, 0, sizeof(nk)); /* padding included: it is copied into the entry */
	kl_hmac_key_init(KL_HASH_SHA256, key, 32, &hk);
	memcpy(nk.istate, hk.istate, sizeof(nk.istate));
	memcpy(nk.ostate, hk.ostate, sizeof(nk.ostate));
	kl_hmac_key_wipe(&hk);
	nk.expires = expires;
	if (kl_kcv(key, 32, nk.kcv))
		memset(nk.kcv, 0, sizeof(nk.kcv));
	nk.key_id = key_id;

	for (unsigned i = 0; old && i < old->n; i++)
		if (old->keys[i].key_id == key_id)
			at = (int)i;
	if (at >= 0) {
		memcpy(e->keys, old->keys, old->n * sizeof(e->keys[0]));
		memcpy(&e->keys[at], &nk, sizeof(nk));
		e->n = old->n;
	} else {
		n = old ? RTE_MIN((unsigned)old->n, t->e2m_ring - 1u) : 0;
		memcpy(&e->keys[0], &nk, sizeof(nk));
		if (n)
			memcpy(&e->keys[1], old->keys, n * sizeof(e->keys[0]));
		e->n = (uint8_t)(n + 1);
	}
	kl_memzero(&nk, sizeof(nk));
	rc = publish(t, KL_TK_E2M, KL_A_E2M, dig, e, old);
	return rc < 0 ? rc : at >= 0;
}

int kl_table_del_e2m_key(struct kl_table *t, const char *imsi, uint32_t key_id)
{
	unsigned ilen = imsi_len(imsi), m = 0;
	uint8_t dig[KL_DIGEST_LEN];
	const struct kl_e2m *old;
	struct kl_e2m *e;
	int at = -1, rc;

	if (!t || !ilen)
		return -EINVAL;
	if (!t->h[KL_TK_E2M])
		return -ENOENT;
	old = write_find(t, KL_TK_E2M, (const uint8_t *)imsi, ilen, dig);
	for (unsigned i = 0; old && i < old->n; i++)
		if (old->keys[i].key_id == key_id)
			at = (int)i;
	if (at < 0)
		return -ENOENT;
	if (old->n == 1) /* its last key: the IMSI goes (same path as kl_table_del) */
		return kl_table_del(t, KL_TK_E2M, (const uint8_t *)imsi, (uint16_t)ilen);
	e = entry_get(t, KL_A_E2M);
	if (!e)
		return -ENOSPC;
	for (unsigned i = 0; i < old->n; i++)
		if ((int)i != at)
			memcpy(&e->keys[m++], &old->keys[i], sizeof(e->keys[0]));
	e->n = (uint8_t)m;
	rc = publish(t, KL_TK_E2M, KL_A_E2M, dig, e, old);
	return rc < 0 ? rc : 0;
}

int kl_table_put_pair(struct kl_table *t, const uint8_t *peer, uint16_t peer_len,
		      const uint8_t *key, unsigned key_len, uint64_t expires)
{
	uint8_t dig[KL_DIGEST_LEN];
	uint8_t s2s[KL_KDF_OUT_LEN];
	struct kl_hmac_key hk;
	const void *old;
	struct kl_pair *e;

	if (!t || !id_ok(KL_TK_PAIR, peer, peer_len) || !key || key_len < 1 || key_len > 64)
		return -EINVAL;
	if (!t->h[KL_TK_PAIR])
		return -ENOSPC;
	if (kl_hmac_key_init(KL_HASH_SHA256, key, key_len, &hk))
		return -EINVAL;
	old = write_find(t, KL_TK_PAIR, peer, peer_len, dig);
	e = entry_for(t, KL_TK_PAIR, KL_A_PAIR, old);
	if (!e) {
		kl_hmac_key_wipe(&hk);
		return -ENOSPC;
	}
	memcpy(e->istate, hk.istate, sizeof(e->istate));
	memcpy(e->ostate, hk.ostate, sizeof(e->ostate));
	/* the server-to-server PSK, KDF(K(VLRa,VLRb), FF09, "s2s"), kept as its chunk states only */
	if (kl_derive_hk(NULL, KL_KDF_S2S_PSK, &hk, NULL, 0, s2s) ||
	    kl_psk_init(s2s, sizeof(s2s), &e->s2s) != 1) {
		kl_memzero(s2s, sizeof(s2s));
		kl_hmac_key_wipe(&hk);
		arena_put(&t->arena[KL_A_PAIR], e);
		return -EIO;
	}
	kl_memzero(s2s, sizeof(s2s));
	kl_hmac_key_wipe(&hk);
	e->expires = expires;
	if (kl_kcv(key, key_len, e->kcv))
		memset(e->kcv, 0, sizeof(e->kcv));
	return publish(t, KL_TK_PAIR, KL_A_PAIR, dig, e, old);
}

int kl_table_get_pair(struct kl_table *t, const uint8_t *peer, uint16_t peer_len,
		      uint64_t *expires, uint8_t kcv[KL_KCV_LEN])
{
	uint8_t dig[KL_DIGEST_LEN];
	const struct kl_pair *e;

	if (!t || !id_ok(KL_TK_PAIR, peer, peer_len))
		return -EINVAL;
	if (!t->h[KL_TK_PAIR])
		return -ENOENT;
	e = find_id(t, KL_TK_PAIR, peer, peer_len, dig);
	if (!e)
		return -ENOENT;
	if (expires)
		*expires = e->expires;
	if (kcv)
		memcpy(kcv, e->kcv, KL_KCV_LEN);
	return 0;
}

int kl_table_put_appid(struct kl_table *t, const uint8_t *appid, uint16_t len, const char *imsi)
{
	unsigned ilen = imsi_len(imsi);
	uint8_t dig[KL_DIGEST_LEN];
	const void *old;
	struct kl_appid *e;

	if (!t || !id_ok(KL_TK_APPID, appid, len) || !ilen)
		return -EINVAL;
	if (!t->h[KL_TK_APPID])
		return -ENOSPC;
	old = write_find(t, KL_TK_APPID, appid, len, dig);
	e = entry_for(t, KL_TK_APPID, KL_A_APPID, old);
	if (!e)
		return -ENOSPC;
	e->imsi_len = (uint8_t)ilen;
	memcpy(e->imsi, imsi, ilen);
	return publish(t, KL_TK_APPID, KL_A_APPID, dig, e, old);
}

int kl_table_del(struct kl_table *t, enum kl_table_kind kind, const uint8_t *key, uint16_t len)
{
	uint8_t dig[KL_DIGEST_LEN];
	const void *old;
	int32_t pos;

	if (!t || (unsigned)kind >= KL_TK__COUNT || !id_ok(kind, key, len))
		return -EINVAL;
	if (!t->h[kind])
		return -ENOENT;
	old = write_find(t, kind, key, len, dig);
	if (!old)
		return -ENOENT;
	pos = rte_hash_del_key(t->h[kind], dig);
	if (pos < 0)
		return -ENOENT;
	if (kind == KL_TK_UE)
		t->used[ue_arena(((const struct kl_ue *)old)->nchunks,
				 ((const struct kl_ue *)old)->services)]--;
	retire(t, kind, old, pos);
	commit(t);
	__atomic_store_n(&t->count[kind], t->count[kind] - 1, __ATOMIC_RELAXED);
	return 0;
}

uint32_t kl_table_count(const struct kl_table *t, enum kl_table_kind kind)
{
	if (!t || (unsigned)kind >= KL_TK__COUNT)
		return 0;
	return __atomic_load_n(&t->count[kind], __ATOMIC_RELAXED);
}

uint64_t kl_table_memory(const struct kl_table *t)
{
	return t ? t->memory : 0;
}
