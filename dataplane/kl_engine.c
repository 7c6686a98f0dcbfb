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

#include "kl_engine_priv.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define SEC(s) ((uint64_t)(s) << 32)

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

/* The kinds table: a row per kind of KL_KIND_LIST, each in its own file. */
static const struct kl_kind_ops *const kinds[KL_KIND__COUNT] = {
	[KL_KIND_MBMS] = &kl_kind_mbms,
	[KL_KIND_E2M] = &kl_kind_e2m,
	[KL_KIND_HM] = &kl_kind_hm,
	[KL_KIND_KSTAR] = &kl_kind_kstar,
	[KL_KIND_DH] = &kl_kind_dh,
	[KL_KIND_PROSE] = &kl_kind_prose,
	[KL_KIND_PEERPV] = &kl_kind_peerpv,
	[KL_KIND_PUSH] = &kl_kind_push,
};

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
	/* the requester tables of the kinds, each once: one bulk lookup per table and burst */
	for (unsigned k = 0; k < KL_KIND__COUNT; k++) {
		unsigned t = 0;

		if (!kinds[k])
			continue;
		while (t < w->n_req_tables && w->req_tables[t] != kinds[k]->requester)
			t++;
		if (t == w->n_req_tables)
			w->req_tables[w->n_req_tables++] = kinds[k]->requester;
	}
	w->skew = SEC(cfg->skew_s ? cfg->skew_s : 60);
	w->predelivery = SEC(cfg->predelivery_s ? cfg->predelivery_s : 60);
	w->session = SEC(cfg->session_s ? cfg->session_s : 3600);
	w->rnd_pos = KL_RND_BUF; /* empty: the first use fills it */
	w->peers = cfg->peers;
	w->s2s = cfg->s2s;
	w->retry_ms = cfg->retry_after_ms ? cfg->retry_after_ms : 200;
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

const uint8_t *kl_worker_random(struct kl_worker *w, unsigned n)
{
	const uint8_t *p;

	if (n > KL_RND_BUF)
		return NULL;
	if (KL_RND_BUF - w->rnd_pos < n) {
		/* one CSPRNG call per 4 KiB (about 90 HM sessions), never one per request */
		if (kl_random(w->rnd, KL_RND_BUF))
			return NULL;
		w->rnd_pos = 0;
	}
	p = w->rnd + w->rnd_pos;
	w->rnd_pos += n;
	return p;
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

/* Bulk lookup in one table for the live requests key_of selects; results to take. */
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

/* The requests whose kind reads its requester from the table being looked up. */
static int key_requester(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	if (kinds[r->kind]->requester != w->req_kind)
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

/* Step lookup_step of the key selection of kind lookup_kind: its live requests without an error. */
static int key_selection(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_kind_ops *kd = kinds[w->lookup_kind];

	if (w->req[i].kind != w->lookup_kind || w->job[i].err_no)
		return 0;
	return kd->lookup[w->lookup_step].key_of(w, i, k);
}

static void take_selection(struct kl_worker *w, unsigned i, const void *e)
{
	kinds[w->lookup_kind]->lookup[w->lookup_step].take(w, i, e);
}

unsigned kl_engine_serve(struct kl_worker *w, uint64_t now, struct kl_pkt *pkts, unsigned n)
{
	uint8_t *live = w->live;
	unsigned m, answers = 0, steps = 0;

	if (n > KL_ENGINE_BURST)
		n = KL_ENGINE_BURST;
	w->now = now;
	w->nout = 0;
	/* 1. parse; the next two datagrams are fetched while this one is read */
	for (unsigned i = 0; i < n && i < 2; i++) {
		__builtin_prefetch(pkts[i].in, 0, 3);
		if (pkts[i].in_len > 64)
			__builtin_prefetch(pkts[i].in + 64, 0, 3);
	}
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];
		const struct kl_kind_ops *kd;
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
		j->err_no = 0;
		j->detail = 0;
		j->requester = NULL;
		j->nkeys = 0;
		w->req[i].kind = KL_KIND_MBMS; /* a datagram that leaves before parsing holds no keys */
		if (pkts[i].peer && w->s2s && pkts[i].in_len >= 2 && pkts[i].in[0] == 1 &&
		    (pkts[i].in[1] == KL_DT_PSK_RESP || pkts[i].in[1] == KL_DT_ERROR)) {
			/* a peer server's answer to one of our requests: recorded, never answered */
			kl_s2s_answer(w, &pkts[i]);
			live[i] = 0;
			continue;
		}
		d = kl_mikey_parse_req(pkts[i].in, pkts[i].in_len, &w->req[i]);
		if (d != KL_DROP_NONE) {
			drop(w, &pkts[i], &live[i], d);
			continue;
		}
		kd = kinds[w->req[i].kind];
		if (!kd) { /* a kind of the profile this server does not serve */
			drop(w, &pkts[i], &live[i], KL_DROP_UNSUPPORTED_TYPE);
			continue;
		}
		if (kd->start)
			kd->start(j);
		if (w->req[i].kind == KL_KIND_PEERPV || w->req[i].kind == KL_KIND_PUSH) {
			/* from a peer server: only from the address and port of the peer IDi names */
			int peer = kl_peers_find_id(w->peers, w->req[i].id, w->req[i].id_len);

			if (peer < 0 || pkts[i].peer != peer + 1) {
				kl_peer_count(w->peers, peer < 0 ? KL_PEER_UNCONFIGURED : (unsigned)peer,
					      KL_PEER_CNT_REFUSED);
				drop(w, &pkts[i], &live[i], KL_DROP_NOT_PEER);
				continue;
			}
			j->k.s2s.peer = peer;
		}
		if (kd->nlookups > steps)
			steps = kd->nlookups;
		w->st.counter[KL_CNT_REQ_MBMS + w->req[i].kind]++;
		if (!pkts[i].out || pkts[i].out_cap < 3 * pkts[i].in_len)
			drop(w, &pkts[i], &live[i], KL_DROP_NO_BUFFER);
		else
			kl_replay_ref(w->replay, &j->rref, w->req[i].id, w->req[i].id_len,
				      w->req[i].csb_id, w->req[i].rand); /* fetched while the table is read */
	}
	/* 2. requesters, one bulk lookup per table the kinds read them from */
	for (unsigned t = 0; t < w->n_req_tables; t++) {
		w->req_kind = w->req_tables[t];
		lookup_stage(w, w->req_kind, live, n, key_requester, take_requester);
	}
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
		kinds[r->kind]->psk(j->requester, &ch, &nch);
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
			kl_job_error(j, KL_ERR_INVALID_TS, 0);
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
			kl_job_error(j, KL_ERR_INVALID_TS, 0);
			continue;
		}
		if (kinds[r->kind]->authorise)
			kinds[r->kind]->authorise(w, i);
	}
	/* 6. key selection: step by step, one bulk lookup per kind and step */
	for (w->lookup_step = 0; w->lookup_step < steps; w->lookup_step++)
		for (w->lookup_kind = 0; w->lookup_kind < KL_KIND__COUNT; w->lookup_kind++) {
			const struct kl_kind_ops *kd = kinds[w->lookup_kind];

			if (kd && w->lookup_step < kd->nlookups)
				lookup_stage(w, kd->lookup[w->lookup_step].table, live, n, key_selection,
					     take_selection);
		}
	/* 7. derivations of the selected keys, one KDF batch for all kinds */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct kl_kind_ops *kd = kinds[w->req[i].kind];

		if (live[i] && !w->job[i].err_no && kd->kdf)
			m += kd->kdf(w, i, &w->kop[m]);
	}
	if (m)
		kl_kdf_burst(w->c, w->kop, m);
	/* 7b. exchanges with the state the workers share (rendezvous, requests to peers) */
	for (unsigned i = 0; i < n; i++) {
		const struct kl_kind_ops *kd = kinds[w->req[i].kind];

		if (live[i] && !w->job[i].err_no && kd->settle)
			kd->settle(w, i);
	}
	/* 8. build answers (a kind's own builder where it has one); its GCM seals, one batch */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];
		const struct kl_mikey_req *r = &w->req[i];
		const struct kl_kind_ops *kd = kinds[r->kind];
		int rc;

		if (!live[i])
			continue;
		if (j->err_no) {
			rc = kl_mikey_build_err_retry(pkts[i].out, pkts[i].out_cap, r, now, j->err_no,
						      j->detail, j->detail == 5 ? w->retry_ms : 0,
						      &j->lay);
			/* an error is never larger than its request: a very short request gets its
			 * 12/5 without the retry-after (the UE's own back-off applies) */
			if (rc == -ENOSPC && j->detail == 5)
				rc = kl_mikey_build_err(pkts[i].out, pkts[i].out_cap, r, now, j->err_no,
							j->detail, &j->lay);
		}
		else if (kd->build)
			rc = kd->build(w, i, &pkts[i]);
		else
			rc = kl_mikey_build_resp(pkts[i].out, pkts[i].out_cap, r, now, w->idr, w->idr_len,
						 j->keys, j->nkeys, &j->lay);
		if (rc < 0) {
			drop(w, &pkts[i], &live[i], KL_DROP_NO_BUFFER);
			continue;
		}
		/* the 3x rule of PROTOCOL.md section 9: a client with short identities pads */
		if (j->lay.len > 3u * r->len) {
			drop(w, &pkts[i], &live[i], KL_DROP_AMPLIFICATION);
			continue;
		}
		if (!j->err_no && kd->seal)
			m += kd->seal(w, i, pkts[i].out, &w->gop[m]);
	}
	if (m && kl_gcm_seal_burst(w->c, w->gop, m) != (int)m) {
		for (unsigned i = 0; i < n; i++) /* no half-sealed token leaves */
			if (live[i] && !w->job[i].err_no && kinds[w->req[i].kind]->seal)
				drop(w, &pkts[i], &live[i], KL_DROP_NO_BUFFER);
	}
	/* 9. AES-CM the key data of responses, one batch */
	m = 0;
	for (unsigned i = 0; i < n; i++) {
		struct job *j = &w->job[i];
		const struct kl_mikey_req *r = &w->req[i];

		if (!live[i])
			continue;
		if (!j->err_no && j->lay.encr_len)
			w->cop[m++] = (struct kl_aescm_op){ .key = j->encr_key, .salt = j->salt_key,
							    .in = pkts[i].out + j->lay.encr_off,
							    .out = pkts[i].out + j->lay.encr_off,
							    .ntp_ts = now, .csb_id = r->csb_id,
							    .len = j->lay.encr_len };
	}
	if (m)
		kl_aescm_burst(w->c, w->cop, m);
	/* 10. MAC of every answer with the request's auth_key, one batch */
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
			w->st.counter[KL_CNT_ANSWERED_MBMS + w->req[i].kind]++;
		else if (j->err_no == KL_ERR_INVALID_TS)
			w->st.counter[KL_CNT_ERR_INVALID_TS]++;
		else if (j->err_no == KL_ERR_INVALID_ID)
			w->st.counter[KL_CNT_ERR_NOT_AUTHORISED]++;
		else if (j->detail == 3)
			w->st.counter[KL_CNT_ERR_KEY_NOT_VALID]++;
		else if (j->detail == 5)
			w->st.counter[KL_CNT_ERR_NOT_READY]++;
		else
			w->st.counter[KL_CNT_ERR_NO_SUCH_KEY]++;
	}
	if (m)
		kl_hmac_burst(w->c, w->hop, m);
	/* Per-request keys do not outlive the burst. */
	for (unsigned i = 0; i < n; i++) {
		kl_memzero(w->job[i].auth_key, sizeof(w->job[i].auth_key) + sizeof(w->job[i].encr_key) +
							sizeof(w->job[i].salt_key));
		/* a kind that derives keys (E2M, HM) held them in its part of the job; MBMS's holds
		 * a table key only (the MSKs stay in the table) */
		const struct kl_kind_ops *kd = kinds[w->req[i].kind < KL_KIND__COUNT ? w->req[i].kind : 0];

		if (!kd || kd->kdf || kd->settle)
			kl_memzero(&w->job[i].k, sizeof(w->job[i].k));
	}
	return answers;
}
