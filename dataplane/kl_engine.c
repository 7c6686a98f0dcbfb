/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Request engine. A burst goes through the stages of DESIGN.md in lock-step: parse all, bulk
 * lookups, one PRF batch, one key-state batch, one verify batch, key selection, one KDF batch,
 * one AES-CM batch, one MAC batch. A request that fails a stage leaves the burst with a drop
 * reason (silent) or an error message (only once its MAC verified).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kl_engine.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define SEC(s) ((uint64_t)(s) << 32)
/* Replay cache buckets: one cache line of 4 slots, 3 entries and the bucket's floor. */
#define REPLAY_STRIDE 4
#define REPLAY_WAYS 3
#define REPLAY_FLOOR 3 /* slot index: its expires field holds the bucket's floor */
#define REPLAY_HUGE (2u << 20)
#define E2M_LABEL "e2m_CIoT"

static const char *const cnt_names[] = {
#define KL_X(e, n, d) n,
	KL_COUNTER_LIST(KL_X)
#undef KL_X
};
static const char *const cnt_descs[] = {
#define KL_X(e, n, d) d,
	KL_COUNTER_LIST(KL_X)
#undef KL_X
};

const char *kl_counter_name(unsigned c)
{
	return c < KL_CNT__COUNT ? cnt_names[c] : "unknown";
}

const char *kl_counter_desc(unsigned c)
{
	return c < KL_CNT__COUNT ? cnt_descs[c] : "unknown";
}

/* 16 bytes; a bucket (REPLAY_STRIDE slots) is one cache line. The tag is 64 bits (the bucket
 * index adds more); expires is an NTP timestamp in units of 2^-16 s (the 64-bit NTP format
 * >> 16). 0 = empty. */
struct replay_slot {
	uint64_t tag;
	uint64_t expires;
};

/* What a request needs between stages. */
struct job {
	struct kl_hmac_key psk[KL_TABLE_PSK_CHUNKS];
	struct kl_hmac_key auth;
	struct kl_hmac_key e2m_int;
	uint8_t auth_key[KL_MIKEY_AUTH_KEY_LEN];
	uint8_t encr_key[KL_MIKEY_ENCR_KEY_LEN];
	uint8_t salt_key[KL_MIKEY_SALT_KEY_LEN];
	uint8_t mac[KL_SHA1_LEN];
	uint8_t e2m_key[32];
	struct kl_mikey_key keys[KL_MIKEY_MAX_KEYS];
	struct kl_mikey_layout lay;
	struct kl_kdf_param kdfp[2];
	const void *requester; /* struct kl_ue or struct kl_emse */
	struct replay_slot *bucket[2]; /* this request's two replay-cache buckets, prefetched */
	uint64_t tag;
	const struct kl_e2m_key *e2m;
	const char *imsi;
	uint8_t imsi_len;
	uint8_t nkeys;
	uint8_t err_no;
	uint16_t detail;
	uint8_t gkey[5];
};

struct kl_worker {
	struct kl_worker_stats st;
	struct kl_crypto *c;
	struct kl_table *t;
	struct replay_slot *replay;
	uint64_t replay_mask;
	uint64_t skew;
	uint64_t predelivery;
	uint64_t now;		     /* of the burst being served */
	enum kl_table_kind req_kind; /* requester lookup in progress */
	unsigned reader;
	uint16_t idr_len;
	uint8_t idr[64];
	/* burst scratch */
	struct kl_mikey_req req[KL_ENGINE_BURST];
	struct job job[KL_ENGINE_BURST];
	uint8_t live[KL_ENGINE_BURST];
	struct kl_table_key tkey[KL_ENGINE_BURST];
	const void *tout[KL_ENGINE_BURST];
	uint8_t tidx[KL_ENGINE_BURST];
	struct kl_mikey_tk_op tk[KL_ENGINE_BURST];
	struct kl_hmac_op hop[KL_ENGINE_BURST];
	struct kl_aescm_op cop[KL_ENGINE_BURST];
	struct kl_kdf_op kop[KL_ENGINE_BURST];
	const uint8_t *akeys[KL_ENGINE_BURST];
	uint16_t alens[KL_ENGINE_BURST];
	struct kl_hmac_key astates[KL_ENGINE_BURST];
} __attribute__((aligned(64)));

struct kl_worker *kl_worker_create(const struct kl_engine_config *cfg, struct kl_table *table,
				   unsigned reader)
{
	struct kl_worker *w;
	uint64_t slots;

	if (!cfg || !table || !cfg->idr || !cfg->idr_len || cfg->idr_len > sizeof(w->idr)) {
		errno = EINVAL;
		return NULL;
	}
	slots = cfg->replay_entries ? cfg->replay_entries : 4194304;
	if (slots < REPLAY_STRIDE || (slots & (slots - 1))) {
		errno = EINVAL;
		return NULL;
	}
	if (posix_memalign((void **)&w, 64, sizeof(*w))) {
		errno = ENOMEM;
		return NULL;
	}
	memset(w, 0, sizeof(*w));
	/* Aligned to 2 MiB and marked for transparent huge pages: two random cache lines per
	 * request in a cache of tens of MiB would otherwise cost two TLB misses as well (advice
	 * only: without THP it still works). */
	{
		size_t bytes = slots * sizeof(*w->replay);
		size_t align = bytes >= REPLAY_HUGE ? REPLAY_HUGE : 64;

		if (posix_memalign((void **)&w->replay, align, bytes) == 0) {
			if (align == REPLAY_HUGE)
				(void)madvise(w->replay, bytes, MADV_HUGEPAGE);
			memset(w->replay, 0, bytes);
		} else {
			w->replay = NULL;
		}
	}
	w->c = kl_crypto_create(cfg->backend);
	if (!w->replay || !w->c) {
		kl_worker_destroy(w);
		errno = ENOMEM;
		return NULL;
	}
	w->replay_mask = slots - 1;
	w->t = table;
	w->reader = reader;
	w->skew = SEC(cfg->skew_s ? cfg->skew_s : 60);
	w->predelivery = SEC(cfg->predelivery_s ? cfg->predelivery_s : 60);
	w->idr_len = cfg->idr_len;
	memcpy(w->idr, cfg->idr, cfg->idr_len);
	return w;
}

void kl_worker_destroy(struct kl_worker *w)
{
	if (!w)
		return;
	kl_crypto_destroy(w->c);
	free(w->replay);
	kl_memzero(w, sizeof(*w));
	free(w);
}

const struct kl_worker_stats *kl_worker_stats(const struct kl_worker *w)
{
	return &w->st;
}

struct kl_crypto *kl_worker_crypto(struct kl_worker *w)
{
	return w->c;
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

/*
 * ---- replay cache -----------------------------------------------------------------------------
 * 64-bit tags of (IDi, CSB ID, RAND) in 3-way buckets; each tag has two candidate buckets and goes
 * where there is room (two choices: buckets do not overflow by chance until the cache is nearly
 * full). An entry lives until its T plus the skew has passed (from then on the skew check refuses
 * its replay). When both buckets are full the entry that expires first makes room; if it was still
 * live, its bucket's floor rises to the T it stood for, and later requests of either bucket with a
 * T not after the floor are refused "invalid timestamp" (replay_window_refused). The floor is per
 * bucket, so a UE with a fast clock cannot raise it for everybody, and an overflowing cache shows
 * as a counter, never as an accepted replay.
 */

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* The tag of (IDi, CSB ID, RAND). The RAND carries the entropy (a client's CSPRNG, and nobody can
 * get a request with a chosen RAND past the MAC check), so a fast word-wise mix of IDi suffices. */
static void replay_tag(struct kl_worker *w, struct job *j, const struct kl_mikey_req *r)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ r->id_len, x;
	unsigned i = 0;

	for (; i + 8 <= r->id_len; i += 8) {
		h = (h ^ load64(r->id + i)) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (i < r->id_len) {
		uint8_t t[8] = { 0 };

		memcpy(t, r->id + i, r->id_len - i);
		h = (h ^ load64(t)) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	h ^= load64(r->rand);
	x = load64(r->rand + 8) ^ ((uint64_t)r->csb_id << 32);
	/* Fold the high halves down before masking: a multiply only carries upward, so RANDs that
	 * differ in their upper bytes alone would otherwise share a bucket. */
	x = h ^ (x * 0xc4ceb9fe1a85ec53ull);
	x ^= x >> 32;
	j->tag = x ? x : 1;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 29;
	j->bucket[0] = &w->replay[x & w->replay_mask & ~(uint64_t)(REPLAY_STRIDE - 1)];
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	j->bucket[1] = &w->replay[x & w->replay_mask & ~(uint64_t)(REPLAY_STRIDE - 1)];
	__builtin_prefetch(j->bucket[0], 1, 3);
	__builtin_prefetch(j->bucket[1], 1, 3);
}

static uint64_t ntp16(uint64_t ts)
{
	return ts >> 16;
}

static int replay_seen(const struct job *j, uint64_t now)
{
	for (unsigned b = 0; b < 2; b++) {
		const struct replay_slot *s = j->bucket[b];

		for (unsigned i = 0; i < REPLAY_WAYS; i++)
			if (s[i].expires > ntp16(now) && s[i].tag == j->tag)
				return 1;
	}
	return 0;
}

/* The higher floor of the request's two buckets (NTP >> 16). */
static uint64_t replay_floor(const struct job *j)
{
	uint64_t a = j->bucket[0][REPLAY_FLOOR].expires, b = j->bucket[1][REPLAY_FLOOR].expires;

	return a > b ? a : b;
}

/* Insert; returns 1 when the tag was already there (a replay inside this burst). */
static int replay_insert(struct kl_worker *w, const struct job *j, const struct kl_mikey_req *r,
			 uint64_t now)
{
	struct replay_slot *victim = NULL, *vb = NULL;
	unsigned live[2] = { 0, 0 }, first, nb;
	uint64_t until;

	if (replay_seen(j, now))
		return 1;
	/* Two choices: the entry goes to the bucket with fewer live entries (so buckets do not
	 * overflow by chance until the cache is nearly full), into the slot that expires first (a
	 * free or expired one when there is one). Only when both buckets are full of live entries
	 * is one evicted: the one of either bucket that expires first. Ties (same T, a burst)
	 * start at a tag-chosen way so one slot is not evicted over and over. */
	for (unsigned b = 0; b < 2; b++)
		for (unsigned i = 0; i < REPLAY_WAYS; i++)
			live[b] += j->bucket[b][i].expires > ntp16(now);
	if (live[0] == REPLAY_WAYS && live[1] == REPLAY_WAYS) {
		first = 0;
		nb = 2;
	} else {
		first = live[0] < live[1] ? 0 : live[1] < live[0] ? 1 : (unsigned)(j->tag >> 63);
		nb = 1;
	}
	for (unsigned k = 0, i = (unsigned)(j->tag >> 58) % (nb * REPLAY_WAYS); k < nb * REPLAY_WAYS;
	     k++, i = (i + 1) % (nb * REPLAY_WAYS)) {
		struct replay_slot *b = j->bucket[(first + i / REPLAY_WAYS) % 2];
		struct replay_slot *s = &b[i % REPLAY_WAYS];

		if (!victim || s->expires < victim->expires) {
			victim = s;
			vb = b;
		}
	}
	if (victim->expires > ntp16(now)) {
		/* Still live: it stood for a T up to expires - skew (its T, rounded up). A request of
		 * this bucket with a T not after that could be its replay: the floor rises to it. */
		uint64_t covered = victim->expires - ntp16(w->skew);

		w->st.counter[KL_CNT_REPLAY_EVICTIONS]++;
		if (covered > vb[REPLAY_FLOOR].expires)
			vb[REPLAY_FLOOR].expires = covered;
	}
	victim->tag = j->tag;
	/* A request is acceptable while |T - now| <= skew, so its replay is refused by the skew
	 * check from T + skew on: it must be remembered until then (rounded up to the next unit). */
	until = r->ts + w->skew;
	victim->expires = ntp16(until) + 1;
	return 0;
}

/* ---- stages ------------------------------------------------------------------------------- */

static void drop(struct kl_worker *w, struct kl_pkt *p, uint8_t *live, enum kl_drop d)
{
	p->drop = (uint8_t)d;
	p->out_len = 0;
	*live = 0;
	w->st.drop[d]++;
}

static void set_error(struct job *j, uint8_t err_no, uint16_t detail)
{
	j->err_no = err_no;
	j->detail = detail;
}

static int imsi_digits(const uint8_t *s, uint16_t n)
{
	if (n < 1 || n > 15)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int in_validity(const struct kl_msk *m, uint64_t now)
{
	return m->valid_from <= now && now < m->valid_to;
}

/* MBMS key selection of PROTOCOL.md section 5: the current MSK (or the asked-for key number),
 * plus the next one when it becomes valid within the pre-delivery window. */
static void select_msk(struct kl_worker *w, struct job *j, const struct kl_mikey_req *r,
		       const struct kl_group *g, uint64_t now)
{
	const struct kl_msk *cand[2] = { &g->current, g->has_next ? &g->next : NULL };
	const struct kl_msk *pick = NULL, *extra = NULL;

	if (r->number == 0) {
		for (unsigned i = 0; i < 2 && !pick; i++)
			if (cand[i] && in_validity(cand[i], now))
				pick = cand[i];
		if (!pick) {
			set_error(j, KL_ERR_UNSPECIFIED, 3);
			return;
		}
		if (pick == &g->current && cand[1] && cand[1]->valid_from > now &&
		    cand[1]->valid_from - now <= w->predelivery)
			extra = cand[1];
	} else {
		for (unsigned i = 0; i < 2 && !pick; i++)
			if (cand[i] && (cand[i]->msk_id & 0xFFFF) == r->number)
				pick = cand[i];
		if (!pick) {
			set_error(j, KL_ERR_UNSPECIFIED, 2);
			return;
		}
		if (!in_validity(pick, now) &&
		    !(pick->valid_from > now && pick->valid_from - now <= w->predelivery &&
		      now < pick->valid_to)) {
			set_error(j, KL_ERR_UNSPECIFIED, 3);
			return;
		}
	}
	j->nkeys = 0;
	for (const struct kl_msk *m = pick; m; m = (m == pick ? extra : NULL)) {
		struct kl_mikey_key *k = &j->keys[j->nkeys++];

		k->key = m->key;
		k->key_len = sizeof(m->key);
		k->key_id = m->msk_id;
		k->valid_from = m->valid_from;
		k->valid_to = m->valid_to;
	}
}

static int ue_authorised(const struct kl_ue *ue, const struct kl_mikey_req *r)
{
	for (unsigned i = 0; i < ue->ngroups && i < KL_TABLE_UE_GROUPS; i++)
		if (ue->groups[i].group == r->group && !memcmp(ue->groups[i].domain, r->domain, 3))
			return 1;
	return 0;
}

/* The MUK's lifetime (GBA Ks_NAF) is over: the key exists but is not valid now. */
static inline int ue_expired(const struct kl_ue *ue, uint64_t now)
{
	return ue->expires && now >= ue->expires;
}

/* Bulk lookup of one kind for the live requests selected by want(); results into job. */
static unsigned lookup_stage(struct kl_worker *w, enum kl_table_kind kind, const uint8_t *live,
			     unsigned n, int (*key_of)(struct kl_worker *, unsigned, struct kl_table_key *),
			     void (*take)(struct kl_worker *, unsigned, const void *))
{
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++)
		if (live[i] && key_of(w, i, &w->tkey[m]))
			w->tidx[m++] = (uint8_t)i;
	if (!m)
		return 0;
	kl_table_lookup_bulk(w->t, kind, w->tkey, m, w->tout);
	for (unsigned k = 0; k < m; k++)
		take(w, w->tidx[k], w->tout[k]);
	return m;
}

static int key_requester(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	if ((w->req_kind == KL_TK_UE) != (r->kind == KL_KIND_MBMS))
		return 0;
	k->id = r->id;
	k->len = r->id_len;
	return 1;
}

static void take_requester(struct kl_worker *w, unsigned i, const void *e)
{
	w->job[i].requester = e;
	if (e) { /* its PSK states are read two stages later */
		__builtin_prefetch(e, 0, 3);
		__builtin_prefetch((const uint8_t *)e + 64, 0, 3);
		__builtin_prefetch((const uint8_t *)e + 128, 0, 3);
	}
}

static int key_group(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];

	if (r->kind != KL_KIND_MBMS || j->err_no)
		return 0;
	memcpy(j->gkey, r->domain, 3);
	j->gkey[3] = (uint8_t)(r->group >> 8);
	j->gkey[4] = (uint8_t)r->group;
	k->id = j->gkey;
	k->len = 5;
	return 1;
}

static void take_group(struct kl_worker *w, unsigned i, const void *e)
{
	struct job *j = &w->job[i];

	if (!e)
		set_error(j, KL_ERR_UNSPECIFIED, 2);
	else
		select_msk(w, j, &w->req[i], e, w->now);
}

static int key_appid(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	if (r->kind != KL_KIND_E2M || w->job[i].err_no || imsi_digits(r->ue, r->ue_len))
		return 0;
	k->id = r->ue;
	k->len = r->ue_len;
	return 1;
}

static void take_appid(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_appid *a = e;

	if (!a) {
		set_error(&w->job[i], KL_ERR_UNSPECIFIED, 2);
		return;
	}
	w->job[i].imsi = a->imsi;
	w->job[i].imsi_len = a->imsi_len;
}

static int key_e2m(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];

	if (r->kind != KL_KIND_E2M || j->err_no)
		return 0;
	if (j->imsi) {
		k->id = (const uint8_t *)j->imsi;
		k->len = j->imsi_len;
	} else {
		k->id = r->ue;
		k->len = r->ue_len;
	}
	return 1;
}

static void take_e2m(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_e2m *ring = e;
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	const struct kl_e2m_key *k = NULL;

	if (!ring || !ring->n) {
		set_error(j, KL_ERR_UNSPECIFIED, 2);
		return;
	}
	if (!r->has_key_id) {
		k = &ring->keys[0];
	} else {
		for (unsigned x = 0; x < ring->n && !k; x++)
			if (ring->keys[x].key_id == r->key_id)
				k = &ring->keys[x];
		if (!k) {
			set_error(j, KL_ERR_UNSPECIFIED, 2);
			return;
		}
	}
	if (k->expires && w->now >= k->expires) {
		set_error(j, KL_ERR_UNSPECIFIED, 3);
		return;
	}
	j->e2m = k;
}

unsigned kl_engine_serve(struct kl_worker *w, uint64_t now, struct kl_pkt *pkts, unsigned n)
{
	uint8_t *live = w->live;
	unsigned m, answers = 0;

	if (n > KL_ENGINE_BURST)
		n = KL_ENGINE_BURST;
	w->now = now;
	/* 1. parse; the next two datagrams are fetched while this one is read */
	for (unsigned i = 0; i < n && i < 2; i++) {
		__builtin_prefetch(pkts[i].in, 0, 3);
		if (pkts[i].in_len > 64)
			__builtin_prefetch(pkts[i].in + 64, 0, 3);
	}
	for (unsigned i = 0; i < n; i++) {
		enum kl_drop d;

		if (i + 2 < n) {
			__builtin_prefetch(pkts[i + 2].in, 0, 3);
			if (pkts[i + 2].in_len > 64)
				__builtin_prefetch(pkts[i + 2].in + 64, 0, 3);
		}

		w->st.counter[KL_CNT_RX]++;
		live[i] = 1;
		pkts[i].out_len = 0;
		pkts[i].drop = KL_DROP_NONE;
		w->job[i].err_no = 0;
		w->job[i].detail = 0;
		w->job[i].imsi = NULL;
		w->job[i].e2m = NULL;
		w->job[i].requester = NULL;
		w->job[i].nkeys = 0;
		d = kl_mikey_parse_req(pkts[i].in, pkts[i].in_len, &w->req[i]);
		if (d != KL_DROP_NONE) {
			drop(w, &pkts[i], &live[i], d);
			continue;
		}
		w->st.counter[w->req[i].kind == KL_KIND_MBMS ? KL_CNT_REQ_MBMS : KL_CNT_REQ_E2M]++;
		if (!pkts[i].out || pkts[i].out_cap < 3 * pkts[i].in_len)
			drop(w, &pkts[i], &live[i], KL_DROP_NO_BUFFER);
		else
			replay_tag(w, &w->job[i], &w->req[i]); /* prefetched while the table is read */
	}
	/* 2. requesters: UEs for MBMS, EMSEs for E2M */
	w->req_kind = KL_TK_UE;
	lookup_stage(w, KL_TK_UE, live, n, key_requester, take_requester);
	w->req_kind = KL_TK_EMSE;
	lookup_stage(w, KL_TK_EMSE, live, n, key_requester, take_requester);
	for (unsigned i = 0; i < n; i++) {
		if (!live[i])
			continue;
		if (!w->job[i].requester)
			drop(w, &pkts[i], &live[i], KL_DROP_UNKNOWN_IDENTITY);
		else if (replay_seen(&w->job[i], now))
			drop(w, &pkts[i], &live[i], KL_DROP_REPLAY);
	}
	/* 3. transport keys, one PRF batch */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];
		const struct kl_mikey_req *r = &w->req[i];
		const struct kl_psk_chunk *ch;
		unsigned nch;

		if (!live[i])
			continue;
		if (r->kind == KL_KIND_MBMS) {
			const struct kl_ue *ue = j->requester;

			ch = ue->chunk;
			nch = ue->nchunks;
		} else {
			const struct kl_emse *em = j->requester;

			ch = em->chunk;
			nch = em->nchunks;
		}
		kl_psk_expand(ch, nch, (enum kl_prf)r->prf, j->psk);
		w->tk[m++] = (struct kl_mikey_tk_op){ .chunks = j->psk, .rand = r->rand,
						      .auth_key = j->auth_key, .encr_key = j->encr_key,
						      .salt_key = j->salt_key, .csb_id = r->csb_id,
						      .nchunks = (uint8_t)nch, .rand_len = KL_MIKEY_RAND_LEN,
						      .cs_id = 0xFF };
	}
	if (!m)
		return 0;
	kl_mikey_transport_keys_burst(w->c, w->tk, m);
	/* 4. auth_key states, then verify V, one batch each */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!live[i])
			continue;
		w->akeys[m] = w->job[i].auth_key;
		w->alens[m] = KL_MIKEY_AUTH_KEY_LEN;
		w->tidx[m++] = (uint8_t)i;
	}
	kl_hmac_key_init_burst(KL_HASH_SHA1, w->akeys, w->alens, w->astates, m);
	for (unsigned k = 0; k < m; k++) {
		unsigned i = w->tidx[k];

		w->job[i].auth = w->astates[k];
		w->hop[k] = (struct kl_hmac_op){ .key = &w->job[i].auth, .msg = pkts[i].in,
						 .len = w->req[i].mac_off, .mac = w->job[i].mac };
	}
	kl_hmac_burst(w->c, w->hop, m);
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];
		const struct kl_mikey_req *r = &w->req[i];
		uint64_t d;

		if (!live[i])
			continue;
		if (!ct_equal(j->mac, r->mac, KL_MIKEY_MAC_LEN)) {
			drop(w, &pkts[i], &live[i], KL_DROP_BAD_MAC);
			continue;
		}
		/* 5. from here on the requester proved its key: problems are answered */
		d = r->ts > now ? r->ts - now : now - r->ts;
		if (d > w->skew) {
			/* Refused, so not cached: it gets no key now, and an entry for a far-future T
			 * would hold its slot (and, evicted, its bucket's floor) for as long. */
			set_error(j, KL_ERR_INVALID_TS, 0);
			continue;
		}
		if (ntp16(r->ts) <= replay_floor(j) && !replay_seen(j, now)) {
			/* Not after its bucket's floor: it may replay an entry this bucket evicted.
			 * Answered "invalid timestamp" (RFC 3830 section 5.4: a full replay cache
			 * narrows the accepted window); the UE retries with a fresh RAND, which lands in
			 * another bucket. So no replay ever gets a key. */
			w->st.counter[KL_CNT_REPLAY_WINDOW]++;
			set_error(j, KL_ERR_INVALID_TS, 0);
			continue;
		}
		if (replay_insert(w, j, r, now)) {
			drop(w, &pkts[i], &live[i], KL_DROP_REPLAY);
			continue;
		}
		if (r->kind == KL_KIND_MBMS && ue_expired(j->requester, now))
			set_error(j, KL_ERR_UNSPECIFIED, 3); /* MUK lifetime over: bootstrap again */
		else if (r->kind == KL_KIND_MBMS && !ue_authorised(j->requester, r))
			set_error(j, KL_ERR_INVALID_ID, 1);
	}
	/* 6. key selection: MBMS groups; E2M application identity -> IMSI -> e2m_int_keys */
	lookup_stage(w, KL_TK_GROUP, live, n, key_group, take_group);
	lookup_stage(w, KL_TK_APPID, live, n, key_appid, take_appid);
	lookup_stage(w, KL_TK_E2M, live, n, key_e2m, take_e2m);
	/* 7. e2m_key = KDF(e2m_int_key, FC 0xFF02, EMSE_Id, "e2m_CIoT"), one batch */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];

		if (!live[i] || j->err_no || w->req[i].kind != KL_KIND_E2M)
			continue;
		memcpy(j->e2m_int.istate, j->e2m->istate, sizeof(j->e2m_int.istate));
		memcpy(j->e2m_int.ostate, j->e2m->ostate, sizeof(j->e2m_int.ostate));
		j->e2m_int.alg = KL_HASH_SHA256;
		j->kdfp[0] = (struct kl_kdf_param){ .data = w->req[i].id, .len = w->req[i].id_len };
		j->kdfp[1] = (struct kl_kdf_param){ .data = (const uint8_t *)E2M_LABEL,
						    .len = sizeof(E2M_LABEL) - 1 };
		w->kop[m++] = (struct kl_kdf_op){ .key = &j->e2m_int, .params = j->kdfp, .fc = 0xFF02,
						  .nparams = 2, .out = j->e2m_key };
		j->keys[0] = (struct kl_mikey_key){ .key = j->e2m_key, .key_len = 32,
						    .key_id = j->e2m->key_id, .valid_from = 0,
						    .valid_to = j->e2m->expires };
		j->nkeys = 1;
	}
	if (m)
		kl_kdf_burst(w->c, w->kop, m);
	/* 8. build answers; AES-CM the key data of responses, one batch */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];
		const struct kl_mikey_req *r = &w->req[i];
		int rc;

		if (!live[i])
			continue;
		if (j->err_no)
			rc = kl_mikey_build_err(pkts[i].out, pkts[i].out_cap, r, now, j->err_no, j->detail,
						&j->lay);
		else
			rc = kl_mikey_build_resp(pkts[i].out, pkts[i].out_cap, r, now, w->idr, w->idr_len,
						 j->keys, j->nkeys, &j->lay);
		if (rc < 0 || j->lay.len > 3u * r->len) {
			drop(w, &pkts[i], &live[i], KL_DROP_NO_BUFFER);
			continue;
		}
		if (!j->err_no)
			w->cop[m++] = (struct kl_aescm_op){ .key = j->encr_key, .salt = j->salt_key,
							    .in = pkts[i].out + j->lay.encr_off,
							    .out = pkts[i].out + j->lay.encr_off,
							    .ntp_ts = now, .csb_id = r->csb_id,
							    .len = j->lay.encr_len };
	}
	if (m)
		kl_aescm_burst(w->c, w->cop, m);
	/* 9. MAC of every answer with the request's auth_key, one batch */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];

		if (!live[i])
			continue;
		w->hop[m++] = (struct kl_hmac_op){ .key = &j->auth, .msg = pkts[i].out,
						   .len = j->lay.mac_off, .mac = pkts[i].out + j->lay.mac_off };
		pkts[i].out_len = j->lay.len;
		answers++;
		if (!j->err_no)
			w->st.counter[w->req[i].kind == KL_KIND_MBMS ? KL_CNT_ANSWERED_MBMS
								     : KL_CNT_ANSWERED_E2M]++;
		else if (j->err_no == KL_ERR_INVALID_TS)
			w->st.counter[KL_CNT_ERR_INVALID_TS]++;
		else if (j->err_no == KL_ERR_INVALID_ID)
			w->st.counter[KL_CNT_ERR_NOT_AUTHORISED]++;
		else if (j->detail == 3)
			w->st.counter[KL_CNT_ERR_KEY_NOT_VALID]++;
		else
			w->st.counter[KL_CNT_ERR_NO_SUCH_KEY]++;
	}
	if (m)
		kl_hmac_burst(w->c, w->hop, m);
	/* Per-request keys do not outlive the burst. */
	for (unsigned i = 0; i < n; i++) {
		kl_memzero(w->job[i].auth_key, sizeof(w->job[i].auth_key) + sizeof(w->job[i].encr_key) +
							sizeof(w->job[i].salt_key));
		kl_memzero(w->job[i].e2m_key, sizeof(w->job[i].e2m_key));
	}
	return answers;
}
