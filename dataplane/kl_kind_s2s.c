/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The schemes where two servers exchange values (PROTOCOL.md sections 9 and 10):
 *  kind 4, DH public value: UEb asks its server for P_a. A local UEa's P_a is in its table entry
 *    (computed by the control plane); a remote one is asked of UEa's server with kind 6, the UE
 *    getting ERR 12/5 with a retry-after until the answer is in the shared cache.
 *  kind 5, ProSe assist: a UE's p2 (or p4) = KDF(KASME, FF04, p1 (p3)) meets the other side's in
 *    the shared rendezvous; a remote side's value arrives from its server in a kind 7 push.
 *  kind 6, public value query from a peer server: answered from the table.
 *  kind 7, ProSe push from a peer server: its KEMAC's value goes into the rendezvous.
 * And this server's own kind 6/7 requests: built here into the worker's outbox, their answers
 * verified here (whichever worker they reach), retransmitted by the worker that sent them.
 */
#include <string.h>

#include "kl_engine_priv.h"

#define MS(ms) (((uint64_t)(ms) << 32) / 1000)
#define S2S_FIRST_MS 100
#define TICK_MS 10

/* ---- this server's requests to peers --------------------------------------------------------- */

static int ct_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return !d;
}

/* Build try (tries + 1) of the request in slot csb into the outbox. @return 0, or -1 (no room,
 * no randomness or a build error: the next tick tries again). */
static int s2s_send(struct kl_worker *w, uint32_t csb, const struct kl_s2s_req *rq,
		    struct kl_s2s_try *t, uint64_t now)
{
	struct kl_s2s_msg *m;
	struct kl_mikey_req_spec sp = { 0 };
	struct kl_mikey_layout lay = { 0 };
	struct kl_hmac_key chunk, auth;
	uint8_t encr[KL_MIKEY_ENCR_KEY_LEN], salt[KL_MIKEY_SALT_KEY_LEN];
	uint8_t *trand, *tauth;
	const uint8_t *rnd, *ak;
	uint16_t alen = KL_MIKEY_AUTH_KEY_LEN;
	struct kl_mikey_tk_op tk;
	struct kl_hmac_op hop;
	int len;

	if (w->nout == KL_ENGINE_OUTBOX || t->tries >= KL_S2S_TRIES)
		return -1;
	trand = t->rand[t->tries]; /* this try's, kept beside the earlier ones' */
	tauth = t->auth_key[t->tries];
	ak = tauth;
	rnd = kl_worker_random(w, KL_MIKEY_RAND_LEN);
	if (!rnd)
		return -1;
	m = &w->outbox[w->nout];
	memcpy(trand, rnd, KL_MIKEY_RAND_LEN);
	t->prf = KL_PRF_HMAC_SHA256;
	sp = (struct kl_mikey_req_spec){ .rand = trand, .id = w->idr, .id_len = w->idr_len,
					 .ts = now, .csb_id = csb, .prf = t->prf, .kind = rq->kind,
					 .peer_ue = rq->id[rq->kind == KL_KIND_PUSH],
					 .peer_ue_len = rq->id_len[rq->kind == KL_KIND_PUSH] };
	kl_psk_expand(&rq->psk, 1, KL_PRF_HMAC_SHA256, &chunk);
	tk = (struct kl_mikey_tk_op){ .chunks = &chunk, .rand = trand, .auth_key = tauth,
				      .encr_key = encr, .salt_key = salt, .csb_id = csb,
				      .nchunks = 1, .rand_len = KL_MIKEY_RAND_LEN, .cs_id = 0xFF };
	kl_mikey_transport_keys_burst(w->c, &tk, 1);
	if (rq->kind == KL_KIND_PUSH) {
		sp.source_ue = rq->id[0];
		sp.source_ue_len = rq->id_len[0];
		sp.role = rq->role;
		sp.push_key = rq->val;
		sp.push_key_len = KL_S2S_VAL_LEN;
		len = kl_mikey_build_req_kemac(m->buf, sizeof(m->buf), &sp, &lay);
		if (len > 0) {
			struct kl_aescm_op op = { .key = encr, .salt = salt,
						  .in = m->buf + lay.encr_off,
						  .out = m->buf + lay.encr_off, .ntp_ts = now,
						  .csb_id = csb, .len = lay.encr_len };

			kl_aescm_burst(w->c, &op, 1);
		}
	} else {
		len = kl_mikey_build_req(m->buf, sizeof(m->buf), &sp, &lay.mac_off);
	}
	kl_memzero(encr, sizeof(encr));
	kl_memzero(salt, sizeof(salt));
	kl_hmac_key_wipe(&chunk);
	if (len <= 0)
		return -1;
	kl_hmac_key_init_burst(KL_HASH_SHA1, &ak, &alen, &auth, 1);
	hop = (struct kl_hmac_op){ .key = &auth, .msg = m->buf, .len = lay.mac_off,
				   .mac = m->buf + lay.mac_off };
	kl_hmac_burst(w->c, &hop, 1);
	kl_hmac_key_wipe(&auth);
	m->len = (uint16_t)len;
	m->peer = rq->peer;
	w->nout++;
	kl_peer_count(w->peers, rq->peer, t->tries ? KL_PEER_CNT_RETRIED : KL_PEER_CNT_SENT);
	t->deadline = now + (MS(S2S_FIRST_MS) << t->tries);
	t->tries++;
	return 0;
}

/* A new request to a peer: a slot in the shared table, this worker retransmits it, the first try
 * goes out with this burst (or with the next tick when the outbox is full). @return 0 or -1. */
static int s2s_start(struct kl_worker *w, const struct kl_s2s_req *rq)
{
	struct kl_s2s_req *r;
	struct kl_s2s_try *t;
	uint32_t csb;
	int idx;

	if (w->nown == KL_WORKER_OWN)
		return -1;
	idx = kl_s2s_pd_add(w->s2s, w->reader, rq);
	if (idx < 0)
		return -1;
	csb = kl_s2s_pd_csb(w->s2s, (unsigned)idx);
	if (kl_s2s_pd_take(w->s2s, csb, &r, &t) != 1)
		return -1; /* not reachable: the slot is new and this worker's */
	w->own[w->nown++] = csb;
	if (s2s_send(w, csb, r, t, w->now))
		t->deadline = w->now; /* the next tick sends it */
	kl_s2s_pd_put(w->s2s, csb, 1);
	return 0;
}

unsigned kl_engine_outbox(struct kl_worker *w, const struct kl_s2s_msg **msgs)
{
	*msgs = w->outbox;
	return w->nout;
}

void kl_engine_tick(struct kl_worker *w, uint64_t now)
{
	w->nout = 0;
	if (!w->s2s || !w->nown || now < w->next_tick)
		return;
	w->next_tick = now + MS(TICK_MS);
	for (unsigned k = 0; k < w->nown;) {
		struct kl_s2s_req *r;
		struct kl_s2s_try *t;
		uint32_t csb = w->own[k];
		int rc = kl_s2s_pd_take(w->s2s, csb, &r, &t);

		if (rc < 0) { /* answered (and freed) by whichever worker got the answer */
			w->own[k] = w->own[--w->nown];
			continue;
		}
		k++;
		if (!rc || t->deadline > now) {
			if (rc)
				kl_s2s_pd_put(w->s2s, csb, 1);
			continue;
		}
		if (t->tries >= KL_S2S_TRIES) {
			/* given up: kind 4's UEs keep getting 12/5 until the cache entry expires and
			 * a later request asks again; a kind 5 UE's value is forgotten so that its
			 * next retry pushes it again (the peer may be back) */
			kl_peer_count(w->peers, r->peer, KL_PEER_CNT_FAILED);
			if (r->kind == KL_KIND_PUSH) {
				unsigned side = r->role - 1u;

				kl_s2s_rv_unpushed(w->s2s, now, r->id[side], r->id_len[side],
						   r->id[!side], r->id_len[!side], side, r->val);
			}
			kl_s2s_pd_put(w->s2s, csb, 0);
			w->own[--k] = w->own[--w->nown];
			continue;
		}
		s2s_send(w, csb, r, t, now);
		kl_s2s_pd_put(w->s2s, csb, 1);
	}
}

void kl_s2s_answer(struct kl_worker *w, struct kl_pkt *p)
{
	struct kl_mikey_resp a;
	struct kl_s2s_req *r;
	struct kl_s2s_try *t;
	struct kl_hmac_key auth;
	struct kl_hmac_op hop;
	const uint8_t *ak;
	uint16_t alen = KL_MIKEY_AUTH_KEY_LEN;
	uint8_t mac[20];
	uint64_t d;
	unsigned k = 0;
	int done = 1;

	p->out_len = 0;
	if (kl_mikey_parse_resp(p->in, p->in_len, &a) != KL_DROP_NONE) {
		p->drop = KL_DROP_MALFORMED;
		w->st.drop[KL_DROP_MALFORMED]++;
		return;
	}
	if (kl_s2s_pd_take(w->s2s, a.csb_id, &r, &t) != 1) {
		/* not (or no longer) in flight, or its slot busy this instant: the owner's next
		 * try gets a new answer */
		w->st.counter[KL_CNT_S2S_STALE]++;
		return;
	}
	/* the try it answers (by its RAND, echoed): any try sent; none, the newest's key */
	while (k + 1u < t->tries && memcmp(a.rand, t->rand[k], KL_MIKEY_RAND_LEN))
		k++;
	ak = t->auth_key[k];
	kl_hmac_key_init_burst(KL_HASH_SHA1, &ak, &alen, &auth, 1);
	hop = (struct kl_hmac_op){ .key = &auth, .msg = a.msg, .len = a.mac_off, .mac = mac };
	kl_hmac_burst(w->c, &hop, 1);
	kl_hmac_key_wipe(&auth);
	d = a.ts > w->now ? a.ts - w->now : w->now - a.ts;
	if (r->peer + 1u != p->peer || !ct_eq(mac, a.mac, KL_MIKEY_MAC_LEN) || k >= t->tries ||
	    memcmp(a.rand, t->rand[k], KL_MIKEY_RAND_LEN) || a.prf != t->prf ||
	    (a.data_type == KL_DT_PSK_RESP &&
	     (a.kind != r->kind || a.idr_len != w->peers->p[r->peer].id_len ||
	      memcmp(a.idr, w->peers->p[r->peer].id, a.idr_len)))) {
		/* not an answer to a try of ours, or not from the peer: the slot stays in flight */
		kl_s2s_pd_put(w->s2s, a.csb_id, 1);
		p->drop = KL_DROP_BAD_MAC;
		w->st.drop[KL_DROP_BAD_MAC]++;
		return;
	}
	if (d > w->skew || (a.data_type == KL_DT_ERROR &&
			    (a.err_no == KL_ERR_INVALID_TS ||
			     (a.err_no == KL_ERR_UNSPECIFIED && a.detail == 5)))) {
		/* clocks apart, or the peer is busy: the next try (fresh T) is the answer */
		kl_s2s_pd_put(w->s2s, a.csb_id, 1);
		w->st.counter[KL_CNT_S2S_ANSWERS]++;
		return;
	}
	kl_peer_count(w->peers, r->peer, KL_PEER_CNT_ANSWERED);
	w->st.counter[KL_CNT_S2S_ANSWERS]++;
	if (r->kind == KL_KIND_PEERPV) {
		enum kl_s2s_pc st = KL_S2S_PC_WAIT;

		if (a.data_type == KL_DT_PSK_RESP && (a.tlv_seen & KL_TLV_BIT(X25519)))
			st = KL_S2S_PC_OK;
		else if (a.data_type == KL_DT_ERROR && a.err_no == KL_ERR_UNSPECIFIED && a.detail == 2)
			st = KL_S2S_PC_NO_UE;
		else if (a.data_type == KL_DT_ERROR && a.err_no == KL_ERR_INVALID_ID && a.detail == 4)
			st = KL_S2S_PC_NO_DH;
		else
			kl_peer_count(w->peers, r->peer, KL_PEER_CNT_FAILED);
		/* a bucket held by another worker: keep the request, its next try stores it */
		done = !kl_s2s_pc_set(w->s2s, w->now, r->peer, r->id[0], r->id_len[0], st,
				      a.tlv[KL_TLVI_X25519]);
	} else if (a.data_type == KL_DT_ERROR) {
		kl_peer_count(w->peers, r->peer, KL_PEER_CNT_FAILED);
	}
	kl_s2s_pd_put(w->s2s, a.csb_id, !done);
}

/* ---- shared checks ---------------------------------------------------------------------------- */

/* The requester's MUK lifetime, then the service. */
static void authorise_svc(struct kl_worker *w, unsigned i, uint8_t svc)
{
	const struct kl_ue *ue = w->job[i].requester;

	if (ue->expires && w->now >= ue->expires)
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 3);
	else if (!(ue->services & svc))
		kl_job_error(&w->job[i], KL_ERR_INVALID_ID, 4);
}

static int is_local(const struct kl_worker *w, const struct kl_mikey_req *r)
{
	return r->tlv_len[KL_TLVI_PEER_SERVER] == w->idr_len &&
	       !memcmp(r->tlv[KL_TLVI_PEER_SERVER], w->idr, w->idr_len);
}

/* Step 0 of kinds 4 and 5: the pair key with a remote peer server (local: no lookup). */
static int key_pair(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	w->job[i].k.s2s.peer = -1;
	if (is_local(w, r))
		return 0;
	k->id = r->tlv[KL_TLVI_PEER_SERVER];
	k->len = r->tlv_len[KL_TLVI_PEER_SERVER];
	return 1;
}

/* The peer server must be configured and share a live pair key with us (12/6, 12/3). */
static int take_pair(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_mikey_req *r = &w->req[i];
	const struct kl_pair *pr = e;
	struct job *j = &w->job[i];
	int peer = kl_peers_find_id(w->peers, r->tlv[KL_TLVI_PEER_SERVER],
				    r->tlv_len[KL_TLVI_PEER_SERVER]);

	if (!pr || peer < 0 || !w->s2s) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 6);
		return 0;
	}
	if (pr->expires && w->now >= pr->expires) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 3);
		return 0;
	}
	j->k.s2s.pair = pr;
	j->k.s2s.peer = peer;
	return 1;
}

/* A UE's public value from its entry: 12/2 no such UE, 7/4 no dh service. */
static void take_pub(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_ue *ue = e;
	const uint8_t *pub = ue ? kl_ue_dh_pub(ue) : NULL;

	if (!ue)
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 2);
	else if (!pub)
		kl_job_error(&w->job[i], KL_ERR_INVALID_ID, 4);
	else
		memcpy(w->job[i].k.s2s.pub, pub, 32);
}

static void not_ready(struct job *j)
{
	kl_job_error(j, KL_ERR_UNSPECIFIED, 5);
}

/* An answer without a secret: EXT 250 with TLV 9 = the public value (kinds 4, 6), or nothing
 * (kind 7), then V. */
static int build_v(struct kl_worker *w, unsigned i, struct kl_pkt *p)
{
	struct job *j = &w->job[i];
	struct kl_mikey_tlv pv = { .type = KL_TLV_X25519, .val = j->k.s2s.pub, .len = 32 };
	unsigned n = w->req[i].kind == KL_KIND_PUSH ? 0 : 1;

	return kl_mikey_build_resp_v(p->out, p->out_cap, &w->req[i], w->now, w->idr, w->idr_len,
				     &pv, n, &j->lay);
}

/* ---- kind 4 ----------------------------------------------------------------------------------- */

static void dh_authorise(struct kl_worker *w, unsigned i)
{
	authorise_svc(w, i, KL_SVC(DH));
}

/* A remote UEa: the cached answer of its server, or ask it (kind 6). */
static void dh_take_pair(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	struct kl_s2s_req q;

	if (!take_pair(w, i, e))
		return;
	switch (kl_s2s_pc_get(w->s2s, w->now, (unsigned)j->k.s2s.peer, r->tlv[KL_TLVI_PEER_UE],
			      r->tlv_len[KL_TLVI_PEER_UE], j->k.s2s.pub)) {
	case KL_S2S_PC_OK:
		return;
	case KL_S2S_PC_NO_UE:
		kl_job_error(j, KL_ERR_UNSPECIFIED, 2);
		return;
	case KL_S2S_PC_NO_DH:
		kl_job_error(j, KL_ERR_INVALID_ID, 4);
		return;
	case KL_S2S_PC_MISS:
		memset(&q, 0, sizeof(q));
		q.kind = KL_KIND_PEERPV;
		q.peer = (uint8_t)j->k.s2s.peer;
		q.id_len[0] = (uint8_t)r->tlv_len[KL_TLVI_PEER_UE];
		memcpy(q.id[0], r->tlv[KL_TLVI_PEER_UE], q.id_len[0]);
		q.psk = j->k.s2s.pair->s2s;
		s2s_start(w, &q); /* not sent: the cache entry expires and a retry asks again */
		kl_memzero(&q.psk, sizeof(q.psk));
		break;
	default:
		break;
	}
	not_ready(j);
}

/* Step 1: a local UEa's entry. */
static int key_local_ue(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	if (w->job[i].k.s2s.peer >= 0)
		return 0;
	k->id = r->tlv[KL_TLVI_PEER_UE];
	k->len = r->tlv_len[KL_TLVI_PEER_UE];
	return 1;
}

const struct kl_kind_ops kl_kind_dh = {
	.requester = KL_TK_UE,
	.psk = kl_ue_psk,
	.authorise = dh_authorise,
	.lookup = { { KL_TK_PAIR, key_pair, dh_take_pair }, { KL_TK_UE, key_local_ue, take_pub } },
	.nlookups = 2,
	.build = build_v,
};

/* ---- kind 5 ----------------------------------------------------------------------------------- */

static void prose_authorise(struct kl_worker *w, unsigned i)
{
	const struct kl_ue *ue = w->job[i].requester;
	struct job *j = &w->job[i];

	authorise_svc(w, i, KL_SVC(PROSE));
	if (j->err_no)
		return;
	if (ue->nchunks != 1) { /* a KASME is 32 bytes: one chunk */
		kl_job_error(j, KL_ERR_INVALID_ID, 4);
		return;
	}
	memcpy(j->k.s2s.kasme.istate, ue->chunk[0].sha256_i, sizeof(j->k.s2s.kasme.istate));
	memcpy(j->k.s2s.kasme.ostate, ue->chunk[0].sha256_o, sizeof(j->k.s2s.kasme.ostate));
	j->k.s2s.kasme.alg = KL_HASH_SHA256;
}

static void prose_take_pair(struct kl_worker *w, unsigned i, const void *e)
{
	take_pair(w, i, e);
}

/* p2 = KDF(KASME1, FF04, p1), or p4 = KDF(KASME2, FF04, p3). */
static unsigned prose_kdf(struct kl_worker *w, unsigned i, struct kl_kdf_op *op)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];

	j->k.s2s.kdfp = (struct kl_kdf_param){ .data = r->tlv[KL_TLVI_CONTRIB], .len = 16 };
	*op = (struct kl_kdf_op){ .key = &j->k.s2s.kasme, .params = &j->k.s2s.kdfp, .fc = 0xFF04,
				  .nparams = 1, .out = j->k.s2s.own };
	return 1;
}

/* The rendezvous: store this side's value (and push it to the peer's server when new), answer
 * the other side's or "not ready". */
static void prose_settle(struct kl_worker *w, unsigned i)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	unsigned side = r->tlv[KL_TLVI_ROLE][0] - 1u;
	const uint8_t *id[2] = { r->id, r->tlv[KL_TLVI_PEER_UE] };
	uint16_t len[2] = { r->id_len, r->tlv_len[KL_TLVI_PEER_UE] };
	enum kl_s2s_rv rv;
	int push = 0;

	if (!w->s2s) {
		not_ready(j);
		return;
	}
	/* the pair is (initiator, responder) */
	rv = kl_s2s_rv_local(w->s2s, w->now, id[side], len[side], id[!side], len[!side], side,
			     r->tlv[KL_TLVI_CONTRIB], j->k.s2s.own, j->k.s2s.other, &j->k.s2s.expires,
			     &push);
	if (push && j->k.s2s.peer >= 0) {
		struct kl_s2s_req q;

		memset(&q, 0, sizeof(q));
		q.kind = KL_KIND_PUSH;
		q.peer = (uint8_t)j->k.s2s.peer;
		q.role = (uint8_t)(side + 1);
		q.id_len[0] = (uint8_t)r->id_len;
		memcpy(q.id[0], r->id, r->id_len);
		q.id_len[1] = (uint8_t)len[1];
		memcpy(q.id[1], id[1], len[1]);
		memcpy(q.val, j->k.s2s.own, KL_S2S_VAL_LEN);
		q.psk = j->k.s2s.pair->s2s;
		s2s_start(w, &q);
		kl_memzero(&q, sizeof(q));
	}
	if (rv != KL_S2S_RV_READY) {
		not_ready(j);
		return;
	}
	j->keys[0] = (struct kl_mikey_key){ .key = j->k.s2s.other, .key_len = 32, .key_id = 0,
					    .valid_from = w->now, .valid_to = j->k.s2s.expires };
	j->nkeys = 1;
}

const struct kl_kind_ops kl_kind_prose = {
	.requester = KL_TK_UE,
	.psk = kl_ue_psk,
	.authorise = prose_authorise,
	.lookup = { { KL_TK_PAIR, key_pair, prose_take_pair } },
	.nlookups = 1,
	.kdf = prose_kdf,
	.settle = prose_settle,
};

/* ---- kinds 6 and 7: from a peer server -------------------------------------------------------- */

/* The pair key must be live (12/3); the peer is known to be configured and the source right
 * (checked when the datagram entered the burst). */
static void peer_authorise(struct kl_worker *w, unsigned i)
{
	const struct kl_pair *pr = w->job[i].requester;

	if (pr->expires && w->now >= pr->expires)
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 3);
	kl_peer_count(w->peers, w->job[i].k.s2s.peer < 0 ? KL_PEER_UNCONFIGURED
							 : (unsigned)w->job[i].k.s2s.peer,
		      KL_PEER_CNT_RECEIVED);
}

static int key_peer_ue(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	k->id = w->req[i].tlv[KL_TLVI_PEER_UE];
	k->len = w->req[i].tlv_len[KL_TLVI_PEER_UE];
	return 1;
}

const struct kl_kind_ops kl_kind_peerpv = {
	.requester = KL_TK_PAIR,
	.psk = kl_pair_s2s_psk,
	.authorise = peer_authorise,
	.lookup = { { KL_TK_UE, key_peer_ue, take_pub } },
	.nlookups = 1,
	.build = build_v,
};

/* Kind 7's KEMAC: AES-CM with the request's T under the s2s keys; one key of 32 bytes, SPI 0. */
static void push_authorise(struct kl_worker *w, unsigned i)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	uint8_t plain[4 + KL_MIKEY_KEY_MAX + 5];
	struct kl_mikey_key key;
	struct kl_aescm_op op = { .key = j->encr_key, .salt = j->salt_key, .in = r->msg + r->encr_off,
				  .out = plain, .ntp_ts = r->ts, .csb_id = r->csb_id,
				  .len = r->encr_len };

	peer_authorise(w, i);
	if (j->err_no)
		return;
	kl_aescm_burst(w->c, &op, 1);
	if (kl_mikey_parse_keydata(plain, r->encr_len, &key, 1) != 1 || key.key_len != 32 ||
	    key.key_id != 0)
		kl_job_error(j, KL_ERR_UNSPECIFIED, 0); /* authentic but not the profile's */
	else
		memcpy(j->k.s2s.own, key.key, 32);
	kl_memzero(plain, sizeof(plain));
}

/* The local UE the value is for must be ours and have the prose service. */
static void take_push_ue(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_ue *ue = e;

	if (!ue)
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 2);
	else if (!(ue->services & KL_SVC(PROSE)))
		kl_job_error(&w->job[i], KL_ERR_INVALID_ID, 4);
}

static void push_settle(struct kl_worker *w, unsigned i)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	unsigned side = r->tlv[KL_TLVI_ROLE][0] - 1u; /* the source UE's */
	const uint8_t *id[2] = { r->tlv[KL_TLVI_SOURCE_UE], r->tlv[KL_TLVI_PEER_UE] };
	uint16_t len[2] = { r->tlv_len[KL_TLVI_SOURCE_UE], r->tlv_len[KL_TLVI_PEER_UE] };
	enum kl_s2s_rv rv;

	if (!w->s2s) {
		not_ready(j);
		return;
	}
	rv = kl_s2s_rv_remote(w->s2s, w->now, id[side], len[side], id[!side], len[!side], side,
			      j->k.s2s.own);
	if (rv == KL_S2S_RV_FULL || rv == KL_S2S_RV_BUSY)
		not_ready(j); /* the peer tries again */
}

const struct kl_kind_ops kl_kind_push = {
	.requester = KL_TK_PAIR,
	.psk = kl_pair_s2s_psk,
	.authorise = push_authorise,
	.lookup = { { KL_TK_UE, key_peer_ue, take_push_ue } },
	.nlookups = 1,
	.settle = push_settle,
	.build = build_v,
};
