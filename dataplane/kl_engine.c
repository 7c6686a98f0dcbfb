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

#include "kl_engine.h"
#include "kl_replay.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define SEC(s) ((uint64_t)(s) << 32)
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
	struct kl_replay_ref rref; /* its place in the replay cache, prefetched */
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
	struct kl_replay *replay;
	int own_replay; /* created for this worker alone (no shared cache configured) */
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
	if (!cfg->replay && (slots < 4 || (slots & (slots - 1)))) {
		errno = EINVAL;
		return NULL;
	}
	if (posix_memalign((void **)&w, 64, sizeof(*w))) {
		errno = ENOMEM;
		return NULL;
	}
	memset(w, 0, sizeof(*w));
	if (cfg->replay) {
		w->replay = cfg->replay;
	} else {
		w->replay = kl_replay_create(slots);
		w->own_replay = 1;
	}
	w->c = kl_crypto_create(cfg->backend);
	if (!w->replay || !w->c) {
		kl_worker_destroy(w);
		errno = ENOMEM;
		return NULL;
	}
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
	if (w->own_replay)
		kl_replay_destroy(w->replay);
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
			kl_replay_ref(w->replay, &w->job[i].rref, w->req[i].id, w->req[i].id_len,
				      w->req[i].csb_id, w->req[i].rand); /* fetched while the table is read */
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
		else if (kl_replay_seen(&w->job[i].rref, now))
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
		enum kl_replay_verdict v;
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
		v = kl_replay_check(&j->rref, r->ts, now, w->skew,
				    &w->st.counter[KL_CNT_REPLAY_EVICTIONS]);
		if (v == KL_REPLAY_DUP) {
			drop(w, &pkts[i], &live[i], KL_DROP_REPLAY);
			continue;
		}
		if (v == KL_REPLAY_WINDOW) {
			/* Not after its bucket's floor: it may replay an entry this bucket evicted.
			 * Answered "invalid timestamp" (RFC 3830 section 5.4: a full replay cache
			 * narrows the accepted window); the UE retries with a fresh RAND, which lands in
			 * another bucket. So no replay ever gets a key. */
			w->st.counter[KL_CNT_REPLAY_WINDOW]++;
			set_error(j, KL_ERR_INVALID_TS, 0);
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
