/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst core (see kl_burst.h): population, tries, timers, verification, statistics.
 *
 * Every try of a UE gets a slot holding its RAND and transport keys; the slot index is the
 * request's CSB ID, so an answer finds its try in O(1) and is checked with that try's keys even
 * after a retransmission went out. A UE's tries stay in their slots until the UE finishes; freed
 * slots keep their RAND and return to a FIFO, so a late or duplicate answer is recognised as such
 * for as long as possible before the slot is reused.
 *
 * Only the newest try of a UE is timed. Tries of the same number share one timeout (the back-off
 * is a function of the try number), so each try number has one deadline-ordered list and timers
 * cost O(1) to add, cancel and expire.
 *
 * Presigned first tries are signed before any slot is assigned, so their CSB ID is nslots + the
 * UE's index instead of a slot index; the slot that carries such a try is marked as presigned and
 * found through the UE. With verify_after, an answer that matches a live try (CSB ID and RAND)
 * ends its UE at once (pending: its slots are free for new tries) and is copied with the try's
 * keys into a store that kl_burst_verify_stored works through after the run.
 *
 * HM (kind hm): an entity is a UE pair in phases: 0, UEa's kind-2 request; 1, UEb's kind-3 K*b
 * fetch (the pair's tries count again from 0, to the peer server); 2, waiting for a K*b that
 * another pair of the same UEb is fetching. The pair holds a session record (Ks from token_a,
 * token_b to hand over) from its start to its verdict. Tokens are opened in GCM batches of up to
 * VERIFY_BATCH (kl_client_hm_open_burst).
 *
 * DH and ProSe (kinds dh, prose): entities 2k and 2k + 1 are the two sides of pair k, each with
 * its own tries to its own server. ERR 12/5 (the peer's value is not there yet) ends the side's
 * tries for now: it waits in a time-ordered heap for the answer's retry-after and starts a new
 * round of tries (the try count starts again; ProSe repeats its p). A side that derived its key
 * (Ks or KD, in batches: kl_client_dh_ks_burst, kl_client_prose_burst) is done and waits for
 * its verdict (ENT_PENDING) until the other side has derived its own; then both keys are
 * compared and both sides get the pair's verdict. A side that fails fails its pair.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kl_burst.h"
#include "kl_engine.h"

#define NIL UINT32_MAX
#define MAX_TRIES (KL_BURST_MAX_RETRIES + 1)
#define DEFAULT_INFLIGHT 65536u
#define DEFAULT_INFLIGHT_MAX_MODE 1024u
#ifndef VERIFY_BATCH
#define VERIFY_BATCH 64 /* answers per kl_client_verify_burst (1: one at a time, to compare) */
#endif
/* verify_after keeps this much answer space per UE (answers are 100 to 200 bytes); an answer that
 * does not fit any more is verified in the loop instead */
#define STORE_PER_UE 256u
#define PRESIGN_PER_UE 192u /* first guess of the request size; the buffer grows when needed */

static const char *const counter_names[] = {
#define KL_X(e, n, d) n,
	KL_BURST_COUNTER_LIST(KL_X)
#undef KL_X
};

static const char *const fail_names[] = {
#define KL_X(e, n, d) n,
	KL_BURST_FAIL_LIST(KL_X)
#undef KL_X
};

const char *kl_burst_counter_name(unsigned c)
{
	return c < KL_BC__COUNT ? counter_names[c] : "unknown";
}

const char *kl_burst_fail_name(unsigned f)
{
	return f < KL_BF__COUNT ? fail_names[f] : "unknown";
}

const char *kl_burst_kind_name(enum kl_burst_kind k)
{
	static const char *const names[] = { [KL_BURST_KIND_MBMS] = "mbms",
					     [KL_BURST_KIND_E2M] = "e2m", [KL_BURST_KIND_HM] = "hm",
					     [KL_BURST_KIND_DH] = "dh",
					     [KL_BURST_KIND_PROSE] = "prose",
					     [KL_BURST_KIND_NAF] = "naf" };

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}

int kl_burst_kind_pairs(enum kl_burst_kind k)
{
	return k == KL_BURST_KIND_DH || k == KL_BURST_KIND_PROSE;
}

/* PENDING: verify_after matched an answer, the verdict comes in kl_burst_verify_stored */
enum { ENT_IDLE, ENT_ACTIVE, ENT_OK, ENT_FAILED, ENT_PENDING };
enum { SLOT_UNUSED, SLOT_LIVE, SLOT_DONE };

struct ent {
	uint64_t sched_ns; /* scheduled start, after t0 */
	uint64_t start_ns; /* first try built (absolute) */
	uint32_t slots;	   /* this UE's tries, newest first */
	uint32_t hs;	   /* hm: the pair's session record, NIL */
	uint32_t wait_next; /* hm phase 2: the next pair waiting for the same K*b */
	uint8_t phase;	   /* hm: 0 kind 2, 1 kind 3, 2 waiting for another pair's kind 3 */
	uint16_t group;	   /* MBMS key group */
	uint8_t state;
	uint8_t tries;
	uint8_t prf;
	uint8_t retx_queued;
	uint8_t id_len;
	uint8_t srv;	   /* several servers: where the UE's next try goes */
};

/* What an E2M fetch asks for and must get back. */
struct e2m_want {
	uint8_t key[32]; /* e2m_key */
	uint8_t key_alt[32]; /* cfg.has_alt_seed: the e2m_key under the alternate seed's int key */
	uint32_t key_id;
	uint8_t has_key_id;
	uint8_t ue_len;
	char ue[KL_POP_ID_MAX];
};

struct slot {
	uint8_t rand[KL_MIKEY_RAND_LEN];
	uint8_t auth_key[KL_MIKEY_AUTH_KEY_LEN];
	uint8_t encr_key[KL_MIKEY_ENCR_KEY_LEN];
	uint8_t salt_key[KL_MIKEY_SALT_KEY_LEN];
	uint8_t state;
	uint8_t try;
	uint8_t timed;
	uint8_t presigned; /* CSB ID nslots + UE index, not the slot's index */
	uint8_t srv;	   /* the server the try went to */
	uint64_t ts; /* the request's T */
	uint64_t sent_ns;
	uint64_t deadline_ns;
	uint32_t ent;
	uint32_t ent_next;
	uint32_t tprev, tnext;
};

/* A UE's presigned first try. */
struct presigned {
	uint64_t off; /* datagram in pre_buf */
	uint64_t ts;
	uint16_t len;
	uint8_t used;
	uint8_t rand[KL_MIKEY_RAND_LEN];
	uint8_t auth_key[KL_MIKEY_AUTH_KEY_LEN];
	uint8_t encr_key[KL_MIKEY_ENCR_KEY_LEN];
	uint8_t salt_key[KL_MIKEY_SALT_KEY_LEN];
};

/* An answer kept for verification after the run, with what verifying it needs. */
struct stored {
	uint64_t off; /* answer in st_buf */
	uint64_t ntp; /* the clock (NTP) when it came, for the server T check */
	uint64_t at_ns, rtt_ns, ue_ns;
	uint32_t ent;
	uint32_t csb_id;
	uint16_t len;
	uint8_t srv;
	uint8_t rand[KL_MIKEY_RAND_LEN];
	uint8_t auth_key[KL_MIKEY_AUTH_KEY_LEN];
	uint8_t encr_key[KL_MIKEY_ENCR_KEY_LEN];
	uint8_t salt_key[KL_MIKEY_SALT_KEY_LEN];
};

struct failure {
	uint32_t ent;
	uint8_t reason;
	uint8_t phase; /* hm */
	uint8_t err_no;
	uint16_t detail;
};

/* HM: a UEb, and its K*b once fetched (PEER_HAVE). */
enum { PEER_NONE, PEER_FETCHING, PEER_HAVE };
struct hm_peer {
	char id[KL_POP_ID_MAX];
	uint8_t muk[32];
	uint8_t kstar[32];
	uint8_t kstar_want[32]; /* kstar_a set: K*b from the population's pair key */
	uint32_t fetcher; /* the pair whose kind 3 is out, NIL */
	uint32_t waiters; /* pairs in phase 2, through ent.wait_next */
	uint8_t id_len;
	uint8_t state;
};

/* 0x01 || nonce || Ks || valid-to || len || IDUEa || len || IDUEb || tag */
#define HM_TOKEN_MAX (1 + 12 + 16 + 8 + 1 + KL_POP_ID_MAX + 1 + KL_POP_ID_MAX + 16)
struct hm_sess {
	uint8_t ks[16]; /* from token_a */
	uint8_t tok_b[HM_TOKEN_MAX];
	uint16_t tok_b_len;
};

/* DH / ProSe: what a side sends and must get (the population knows both UEs' keys). */
struct pair_side {
	uint8_t want[32]; /* dh: this UE's public value P; prose: its own p2 (side A) or p4 (B) */
	uint8_t p[16];	  /* prose: this UE's contribution p1 or p3, the same in every try */
};

/* DH / ProSe: a pair, from its first request to its verdict. */
struct pair {
	uint8_t key[32];   /* Ks or KD of the side that derived it first */
	uint8_t want[32];  /* Ks or KD derived before the run from the population's keys */
	uint64_t first_ns; /* the pair's first request */
	uint32_t waits;	   /* ERR 12/5 answers of both sides */
	uint8_t have;	   /* key holds the first side's */
	uint8_t deferred;  /* ks_after: sides (bit 0 A, bit 1 B) whose derivation waits for the end */
	uint64_t done_ns;  /* ks_after: the pair's last answer */
};

/* Entities waiting for a retry-after, earliest first. */
struct wait {
	uint64_t at;
	uint32_t ent;
};

/* FIFO of 32-bit indices. */
struct ring {
	uint32_t *v;
	uint64_t head, tail;
	uint32_t cap;
};

static int ring_init(struct ring *r, uint32_t cap)
{
	r->v = malloc((cap ? cap : 1) * sizeof(*r->v));
	r->head = r->tail = 0;
	r->cap = cap ? cap : 1;
	return r->v ? 0 : -ENOMEM;
}

static int ring_push(struct ring *r, uint32_t x)
{
	if (r->tail - r->head >= r->cap)
		return -ENOSPC;
	r->v[r->tail++ % r->cap] = x;
	return 0;
}

static int ring_pop(struct ring *r, uint32_t *x)
{
	if (r->head == r->tail)
		return -ENOENT;
	*x = r->v[r->head++ % r->cap];
	return 0;
}

struct kl_burst {
	struct kl_burst_config cfg;
	struct kl_pop_params pop;
	struct kl_crypto *c;
	uint32_t n;
	uint32_t max_tries;
	uint32_t inflight;
	uint32_t active;
	struct ent *ent;
	char (*id)[KL_POP_ID_MAX];
	uint8_t (*psk)[32];
	struct e2m_want *e2m;
	struct kl_group *groups; /* index = key group (1..groups) */
	uint64_t *start_ns;
	uint32_t *order;
	uint32_t offer_cur, start_cur;
	struct slot *slot;
	uint32_t nslots;
	struct ring freeq, retxq;
	uint32_t thead[MAX_TRIES], ttail[MAX_TRIES];
	struct failure *fails;
	uint32_t nfails;
	/* statistics */
	struct kl_burst_totals tot;
	struct kl_burst_totals prev; /* at the last interval line */
	struct kl_hist lat, ue_lat, ilat;
	uint64_t t0, next_report, last_ok_ns, last_done_ns, first_sent_ns, last_sent_ns;
	uint64_t ntp;		     /* the realtime clock (NTP format) as of the last tick */
	uint64_t ntp_base, ntp_sync; /* kl_ntp_now() read at front-end time ntp_sync */
	int started, interrupted;
	/* signing */
	struct kl_client_req req[KL_BURST_TX_MAX];
	uint8_t txbuf[KL_BURST_TX_MAX][KL_BURST_DGRAM_MAX];
	uint8_t rnd[KL_BURST_TX_MAX * KL_MIKEY_RAND_LEN];
	/* presigned first tries */
	struct presigned *pre;
	uint8_t *pre_buf;
	uint64_t pre_used, pre_stale;
	double prepare_s;
	/* verify_after */
	struct stored *st;
	uint8_t *st_buf;
	uint64_t st_cap, st_bytes;
	uint32_t nst;
	int st_done;
	double verify_s;
	/* the progress line */
	FILE *progress;
	uint64_t progress_every_ns, next_progress;
	int progress_len, progress_ended;
	/* verifying a burst of answers */
	struct kl_client_req vreq[VERIFY_BATCH];
	struct kl_client_check vchk[VERIFY_BATCH];
	struct kl_client_result vres[VERIFY_BATCH];
	uint32_t vslot[VERIFY_BATCH];
	uint64_t vat[VERIFY_BATCH];
	/* hm: UEbs, session records, tokens to open */
	struct hm_peer *peer;
	uint32_t npeer;
	struct hm_sess *sess;
	struct ring sessq;
	uint8_t (*kstar_a)[32]; /* each pair's K*a when the population holds the pair key */
	const char *peer_server_id; /* cfg's, or the server's when empty */
	uint16_t server_id_len, peer_server_id_len;
	struct kl_hm_open hop[VERIFY_BATCH];
	uint32_t hent[VERIFY_BATCH];
	uint8_t hwhich[VERIFY_BATCH];
	unsigned nh;
	/* dh / prose: sides, pairs, the retry-after heap, derivations to batch */
	struct pair_side *side;
	struct pair *pair;
	uint32_t npairs;
	struct wait *wheap;
	uint32_t nwait;
	uint64_t pair_timeout_ns;
	int pair_deciding; /* both sides get the pair's verdict: no peer_failed */
	struct kl_hist pair_lat; /* a pair's first request to both keys */
	/* several servers; the random back-off between a timeout and the next try */
	uint32_t nservers;
	struct kl_burst_server_totals srv[KL_BURST_SERVERS_MAX];
	uint64_t rng;
	struct kl_dh_op dop[VERIFY_BATCH];
	struct kl_prose_op pop_[VERIFY_BATCH];
	uint32_t dent[VERIFY_BATCH];
	unsigned nd;
};

void kl_burst_config_defaults(struct kl_burst_config *c)
{
	memset(c, 0, sizeof(*c));
	c->kind = KL_BURST_KIND_MBMS;
	c->mode = KL_BURST_MODE_BURST;
	c->window_s = 1.0;
	c->rate = 10000;
	c->timeout_ms = 200;
	c->retries = 3;
	c->interval_ms = 100;
	c->seed = 1;
	c->skew_s = 60;
	c->sources = 1;
	c->msk = KL_BURST_MSK_CURRENT;
	c->prf = KL_BURST_MIX_A;
	c->e2m_target = KL_BURST_MIX_A;
	c->e2m_key = KL_BURST_MIX_A;
	c->fail_list_max = 20;
	c->backend = KL_CRYPTO_IPSECMB;
}

static int mix_pick(enum kl_burst_mix m, uint32_t p, unsigned bit)
{
	if (m == KL_BURST_MIX_BOTH)
		return (int)((p >> bit) & 1);
	return m == KL_BURST_MIX_B;
}

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
						       ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The EMSE, target and expected e2m_key of fetch p: KDF(e2m_int_key, 0xFF02, EMSE_Id, "e2m_CIoT"),
 * the same derivation as the server's, through the project's KDF table. */
static int prep_e2m(struct kl_burst *b, uint32_t j, uint32_t p)
{
	const struct kl_pop_params *pop = &b->pop;
	struct kl_pop_emse em;
	struct kl_pop_e2m ek;
	struct kl_pop_appid ap;
	struct e2m_want *w = &b->e2m[j];
	uint32_t imsi_idx;
	unsigned k = 0;
	int rc;

	rc = kl_pop_emse(pop, p % pop->emses, &em);
	if (rc)
		goto out;
	memcpy(b->id[j], em.id, em.id_len);
	b->ent[j].id_len = (uint8_t)em.id_len;
	memcpy(b->psk[j], em.psk, 32);
	if (mix_pick(b->cfg.e2m_target, p, 1)) {
		rc = kl_pop_appid(pop, p % pop->appids, &ap);
		if (rc)
			goto out;
		memcpy(w->ue, ap.id, ap.id_len);
		w->ue_len = (uint8_t)ap.id_len;
		imsi_idx = (p % pop->appids) % pop->imsis;
	} else {
		imsi_idx = p % pop->imsis;
	}
	if (mix_pick(b->cfg.e2m_key, p, 2)) {
		k = p % pop->e2m_keys_per_imsi;
		w->has_key_id = 1;
	}
	rc = kl_pop_e2m(pop, imsi_idx, k, &ek);
	if (rc)
		goto out;
	if (!w->ue_len) {
		w->ue_len = (uint8_t)strlen(ek.imsi);
		memcpy(w->ue, ek.imsi, w->ue_len);
	}
	w->key_id = ek.key_id;
	{
		struct kl_kdf_param emse_id = { (const uint8_t *)em.id, em.id_len };

		rc = kl_derive(b->c, KL_KDF_E2M, ek.key, sizeof(ek.key), &emse_id, 1, w->key);
		if (!rc && b->cfg.has_alt_seed) {
			struct kl_pop_params alt = *pop;

			alt.seed = b->cfg.alt_seed;
			kl_memzero(&ek, sizeof(ek));
			rc = kl_pop_e2m(&alt, imsi_idx, k, &ek);
			if (!rc)
				rc = kl_derive(b->c, KL_KDF_E2M, ek.key, sizeof(ek.key), &emse_id, 1,
					       w->key_alt);
		}
	}
out:
	kl_memzero(&em, sizeof(em));
	kl_memzero(&ek, sizeof(ek));
	return rc;
}

/* Identity and MUK of population UE p. */
static int pop_ue(const struct kl_pop_params *pop, uint32_t p, char *id, uint8_t *id_len,
		  uint8_t *muk, uint16_t *group)
{
	struct kl_pop_ue ue;
	int rc = kl_pop_ue(pop, p, &ue);

	if (!rc) {
		memcpy(id, ue.impi, ue.impi_len);
		*id_len = (uint8_t)ue.impi_len;
		memcpy(muk, ue.muk, 32);
		if (group)
			*group = ue.groups[0].group;
	}
	kl_memzero(&ue, sizeof(ue));
	return rc;
}

/* K* = KDF(pair key, FF06, a UE's identity), as the servers derive it. */
static int kstar_of(struct kl_burst *b, const uint8_t *pair, const char *id, uint8_t id_len,
		    uint8_t out[32])
{
	struct kl_kdf_param p = { (const uint8_t *)id, id_len };

	return kl_derive(b->c, KL_KDF_VLR_TOKEN, pair, 32, &p, 1, out);
}

/* HM: when the server and the peer server are servers of the population (vlr-<i>.pop.
 * keyline.test, keylined -p imports their pair keys), the expected K*a of every pair and K*b of
 * every UEb, so that a key derived from another pair key fails even when both servers agree. */
static int hm_expect(struct kl_burst *b, char *err, size_t errlen)
{
	struct kl_pop_pair pp;
	uint32_t i;
	int rc = 0;

	for (i = 0; i < b->pop.pairs; i++)
		if (!kl_pop_pair(&b->pop, i, b->cfg.server_id, b->server_id_len, &pp) &&
		    pp.peer_len == b->peer_server_id_len &&
		    !memcmp(pp.peer, b->peer_server_id, pp.peer_len) &&
		    strcmp(b->cfg.server_id, b->peer_server_id))
			break;
	if (i >= b->pop.pairs)
		return 0;
	b->kstar_a = calloc(b->n, sizeof(*b->kstar_a));
	if (!b->kstar_a)
		rc = -ENOMEM;
	for (uint32_t j = 0; !rc && j < b->n; j++)
		rc = kstar_of(b, pp.key, b->id[j], b->ent[j].id_len, b->kstar_a[j]);
	for (uint32_t q = 0; !rc && q < b->npeer; q++)
		rc = kstar_of(b, pp.key, b->peer[q].id, b->peer[q].id_len, b->peer[q].kstar_want);
	kl_memzero(&pp, sizeof(pp));
	if (rc)
		errf(err, errlen, "hm: the expected K* cannot be derived (%s)", strerror(-rc));
	return rc;
}

/* HM: the UEbs and their identities (pair j's is peer[j % npeer]). */
static int prep_peers(struct kl_burst *b, char *err, size_t errlen)
{
	uint32_t base = b->cfg.has_peer_first ? b->cfg.peer_first : b->cfg.first + 1;

	for (uint32_t q = 0; q < b->npeer; q++) {
		struct hm_peer *pe = &b->peer[q];
		uint32_t p = (uint32_t)(((uint64_t)base + q) % b->pop.ues);
		int rc = pop_ue(&b->pop, p, pe->id, &pe->id_len, pe->muk, NULL);

		if (rc) {
			errf(err, errlen, "population: index %u cannot be derived (%s)", p, strerror(-rc));
			return rc;
		}
		pe->fetcher = pe->waiters = NIL;
	}
	for (uint32_t x = 0; x < b->inflight; x++)
		ring_push(&b->sessq, x);
	return hm_expect(b, err, errlen);
}

/* DH / ProSe: every pair's key derived directly from the population's keys (side A's key and
 * side B's value; KD from A's p2 and B's p4), in batches: the key both sides derive in the run
 * must be this one. */
static int pair_expect(struct kl_burst *b, char *err, size_t errlen)
{
	int dh = b->cfg.kind == KL_BURST_KIND_DH;

	for (uint32_t base = 0; base < b->npairs; base += VERIFY_BATCH) {
		unsigned m = b->npairs - base < VERIFY_BATCH ? b->npairs - base : VERIFY_BATCH, bad = 0;

		for (unsigned k = 0; k < m; k++) {
			uint32_t a = 2 * (base + k);

			if (dh)
				b->dop[k] = (struct kl_dh_op){ .own_key = b->psk[a], .own_key_len = 32,
							       .peer_pub = b->side[a + 1].want,
							       .id_a = (const uint8_t *)b->id[a],
							       .la = b->ent[a].id_len,
							       .id_b = (const uint8_t *)b->id[a + 1],
							       .lb = b->ent[a + 1].id_len };
			else
				b->pop_[k] = (struct kl_prose_op){ .key = b->side[a].want,
								   .in = b->side[a + 1].want,
								   .key_len = 32, .kd = 1 };
		}
		if ((dh ? kl_client_dh_ks_burst(b->c, b->dop, m) : kl_client_prose_burst(b->c, b->pop_, m)) !=
		    (int)m)
			bad = 1;
		for (unsigned k = 0; k < m; k++) {
			bad |= dh ? b->dop[k].rc != 0 : b->pop_[k].rc != 0;
			memcpy(b->pair[base + k].want, dh ? b->dop[k].ks : b->pop_[k].out, 32);
		}
		kl_memzero(b->dop, sizeof(b->dop));
		kl_memzero(b->pop_, sizeof(b->pop_));
		if (bad) {
			errf(err, errlen, "%s: the expected key of a pair cannot be derived",
			     kl_burst_kind_name(b->cfg.kind));
			return -EIO;
		}
	}
	return 0;
}

/* DH / ProSe: each side's contribution (ProSe: fresh random p, kept for the whole run) and what
 * the other side must receive for it: its public value (DH) or its own p2 / p4 (ProSe), both
 * from the population's keys, in batches where the crypto allows. */
static int prep_pairs(struct kl_burst *b, char *err, size_t errlen)
{
	struct kl_prose_op op[KL_BURST_TX_MAX];

	if (b->cfg.kind == KL_BURST_KIND_DH) {
		for (uint32_t j = 0; j < b->n; j++)
			if (kl_client_dh_public(b->c, b->psk[j], 32, b->side[j].want)) {
				errf(err, errlen, "dh: the public value of UE %u cannot be derived",
				     b->cfg.first + j);
				return -EIO;
			}
		return pair_expect(b, err, errlen);
	}
	for (uint32_t base = 0; base < b->n; base += KL_BURST_TX_MAX) {
		unsigned m = b->n - base < KL_BURST_TX_MAX ? b->n - base : KL_BURST_TX_MAX;

		for (unsigned k = 0; k < m; k++) {
			struct pair_side *sd = &b->side[base + k];

			if (RAND_bytes(sd->p, sizeof(sd->p)) != 1) {
				errf(err, errlen, "prose: no random bytes");
				return -EIO;
			}
			op[k] = (struct kl_prose_op){ .key = b->psk[base + k], .key_len = 32, .in = sd->p };
		}
		if (kl_client_prose_burst(b->c, op, m) != (int)m)
			return -EIO;
		for (unsigned k = 0; k < m; k++) {
			if (op[k].rc) {
				kl_memzero(op, sizeof(op));
				errf(err, errlen, "prose: p of UE %u cannot be derived",
				     b->cfg.first + base + k);
				return -EIO;
			}
			memcpy(b->side[base + k].want, op[k].out, 32);
		}
	}
	kl_memzero(op, sizeof(op));
	return pair_expect(b, err, errlen);
}

static int prep_population(struct kl_burst *b, char *err, size_t errlen)
{
	const struct kl_pop_params *pop = &b->pop;

	if (b->cfg.kind == KL_BURST_KIND_MBMS) {
		b->groups = calloc((size_t)pop->groups + 1, sizeof(*b->groups));
		if (!b->groups)
			return -ENOMEM;
		for (uint32_t g = 1; g <= pop->groups; g++)
			if (kl_pop_group(pop, g, NULL, &b->groups[g])) {
				errf(err, errlen, "population: key group %u cannot be derived", g);
				return -EIO;
			}
	}
	for (uint32_t j = 0; j < b->n; j++) {
		uint32_t p = b->cfg.first + j;
		int rc;

		b->ent[j].slots = NIL;
		b->ent[j].hs = b->ent[j].wait_next = NIL;
		b->ent[j].prf = (uint8_t)mix_pick(b->cfg.prf, p, 0);
		if (b->cfg.kind != KL_BURST_KIND_E2M)
			rc = pop_ue(pop, p, b->id[j], &b->ent[j].id_len, b->psk[j], &b->ent[j].group);
		else
			rc = prep_e2m(b, j, p);
		if (rc) {
			errf(err, errlen, "population: index %u cannot be derived (%s)", p, strerror(-rc));
			return rc;
		}
	}
	if (b->side)
		return prep_pairs(b, err, errlen);
	return b->peer ? prep_peers(b, err, errlen) : 0;
}

static int check_config(const struct kl_burst_config *c, const struct kl_pop_params *pop,
			uint32_t *n, char *err, size_t errlen)
{
	if (kl_pop_params_check(pop, err, errlen))
		return -EINVAL;
	if ((unsigned)c->kind >= KL_BURST_KIND_NAF) {
		errf(err, errlen, "kind %s does not run on the MIKEY core", kl_burst_kind_name(c->kind));
		return -EINVAL;
	}
	if (c->retries > KL_BURST_MAX_RETRIES) {
		errf(err, errlen, "retries out of range (0..%u)", KL_BURST_MAX_RETRIES);
		return -EINVAL;
	}
	if (c->timeout_ms < 1 || c->timeout_ms > 600000) {
		errf(err, errlen, "timeout-ms out of range (1..600000)");
		return -EINVAL;
	}
	if (c->sources < 1) {
		errf(err, errlen, "sources must be at least 1");
		return -EINVAL;
	}
	if (c->has_alt_seed && c->kind != KL_BURST_KIND_E2M) {
		errf(err, errlen, "alt-seed: E2M fetches only");
		return -EINVAL;
	}
	if (c->servers > KL_BURST_SERVERS_MAX) {
		errf(err, errlen, "servers out of range (1..%u)", KL_BURST_SERVERS_MAX);
		return -EINVAL;
	}
	/* hm, dh and prose name their server and peer server: one node each */
	if (c->servers > 1 && c->kind != KL_BURST_KIND_MBMS && c->kind != KL_BURST_KIND_E2M) {
		errf(err, errlen, "several servers: mbms and e2m only");
		return -EINVAL;
	}
	if (c->backoff_ms > 600000) {
		errf(err, errlen, "backoff-ms out of range (0..600000)");
		return -EINVAL;
	}
	if (c->kind == KL_BURST_KIND_HM) {
		if (!c->server_id[0] || strlen(c->server_id) > KL_MIKEY_ID_MAX ||
		    strlen(c->peer_server_id) > KL_MIKEY_ID_MAX) {
			errf(err, errlen, "hm: the server's identity (1..%d bytes) is required",
			     KL_MIKEY_ID_MAX);
			return -EINVAL;
		}
		if (c->verify_after) {
			errf(err, errlen, "hm: verify-after is not supported (a pair's answers depend on each other)");
			return -EINVAL;
		}
		if (c->has_peer_first && c->peer_first >= pop->ues) {
			errf(err, errlen, "peer first UE %u: the population has %u UEs", c->peer_first,
			     pop->ues);
			return -EINVAL;
		}
	}
	if (c->ks_after && !kl_burst_kind_pairs(c->kind)) {
		errf(err, errlen, "ks-after is for dh and prose");
		return -EINVAL;
	}
	if (kl_burst_kind_pairs(c->kind)) {
		uint32_t pairs;

		if (!c->server_id[0] || strlen(c->server_id) > KL_MIKEY_ID_MAX ||
		    strlen(c->peer_server_id) > KL_MIKEY_ID_MAX) {
			errf(err, errlen, "%s: the server's identity (1..%d bytes) is required",
			     kl_burst_kind_name(c->kind), KL_MIKEY_ID_MAX);
			return -EINVAL;
		}
		if (c->verify_after || c->has_peer_first || c->peer_ues || c->hm_no_pad) {
			errf(err, errlen, "%s: verify-after, peer-first, peer-ues and hm-pad are not for UE pairs of this kind",
			     kl_burst_kind_name(c->kind));
			return -EINVAL;
		}
		if (c->first >= pop->ues) {
			errf(err, errlen, "first UE %u: the population has %u UEs", c->first, pop->ues);
			return -EINVAL;
		}
		pairs = c->ues ? c->ues : (pop->ues - c->first) / 2;
		if ((uint64_t)c->first + 2 * (uint64_t)pairs > pop->ues) {
			errf(err, errlen, "%u UE pairs from UE %u need %" PRIu64 " UEs: the population has %u",
			     pairs, c->first, (uint64_t)c->first + 2 * (uint64_t)pairs, pop->ues);
			return -EINVAL;
		}
		*n = 2 * pairs;
	} else if (c->kind != KL_BURST_KIND_E2M) {
		if (c->kind == KL_BURST_KIND_MBMS && !pop->groups) {
			errf(err, errlen, "the population has no key groups: no MBMS requests to make");
			return -EINVAL;
		}
		if (c->first >= pop->ues) {
			errf(err, errlen, "first UE %u: the population has %u UEs", c->first, pop->ues);
			return -EINVAL;
		}
		*n = c->ues ? c->ues : pop->ues - c->first;
		if ((uint64_t)c->first + *n > pop->ues) {
			errf(err, errlen, "UEs %u..%" PRIu64 ": the population has %u", c->first,
			     (uint64_t)c->first + *n - 1, pop->ues);
			return -EINVAL;
		}
	} else {
		int want_app = c->e2m_target != KL_BURST_MIX_A;

		if (!pop->emses || !pop->imsis) {
			errf(err, errlen, "the population has no EMSEs or no IMSIs: no E2M fetches to make");
			return -EINVAL;
		}
		if (want_app && !pop->appids) {
			errf(err, errlen, "the population has no application identities (e2m target)");
			return -EINVAL;
		}
		*n = c->ues;
		if (!*n)
			*n = c->e2m_target == KL_BURST_MIX_A ? pop->imsis
			     : c->e2m_target == KL_BURST_MIX_B ? pop->appids
			     : (pop->imsis > pop->appids ? pop->imsis : pop->appids);
		if ((uint64_t)c->first + *n > UINT32_MAX) {
			errf(err, errlen, "first + ues out of range");
			return -EINVAL;
		}
	}
	if (!*n) {
		errf(err, errlen, "no UEs to simulate");
		return -EINVAL;
	}
	return 0;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct hm_peer *peer_of(const struct kl_burst *b, uint32_t j)
{
	return &b->peer[j % b->npeer];
}

/* HM: pair j's kind-2 request as UEa (padded when the answer would exceed 3x), or its kind-3
 * K*b fetch as UEb at the peer server. */
static void fill_hm(const struct kl_burst *b, uint32_t j, struct kl_client_req *r)
{
	const struct hm_peer *pe = peer_of(b, j);
	int pad;

	r->spec.id_type = 0; /* NAI */
	if (b->ent[j].phase) {
		r->spec.kind = KL_KIND_KSTAR;
		r->spec.id = (const uint8_t *)pe->id;
		r->spec.id_len = pe->id_len;
		r->spec.peer_server = (const uint8_t *)b->cfg.server_id;
		r->spec.peer_server_len = b->server_id_len;
		r->psk = pe->muk;
		r->psk_len = 32;
		return;
	}
	r->spec.kind = KL_KIND_HM;
	r->spec.peer_ue = (const uint8_t *)pe->id;
	r->spec.peer_ue_len = pe->id_len;
	r->spec.peer_server = (const uint8_t *)b->peer_server_id;
	r->spec.peer_server_len = b->peer_server_id_len;
	pad = b->cfg.hm_no_pad ? -1 : kl_client_hm_pad(&r->spec, b->server_id_len);
	if (pad >= 0) {
		r->spec.has_pad = 1;
		r->spec.pad_len = (uint16_t)pad;
	}
}

/* The identity of the server of side (0: A, the server; 1: B, the peer server). */
static const char *side_server(const struct kl_burst *b, unsigned side, uint16_t *len)
{
	*len = side ? b->peer_server_id_len : b->server_id_len;
	return side ? b->peer_server_id : b->cfg.server_id;
}

/* DH / ProSe: side j's request to its own server about the other side's UE (TLV 5) and that
 * UE's server (TLV 6); ProSe adds its p (TLV 11) and role (TLV 12: A initiates). */
static void fill_pair(const struct kl_burst *b, uint32_t j, struct kl_client_req *r)
{
	uint32_t o = j ^ 1;

	r->spec.id_type = 0; /* NAI */
	r->spec.kind = b->cfg.kind == KL_BURST_KIND_DH ? KL_KIND_DH : KL_KIND_PROSE;
	r->spec.peer_ue = (const uint8_t *)b->id[o];
	r->spec.peer_ue_len = b->ent[o].id_len;
	r->spec.peer_server = (const uint8_t *)side_server(b, o & 1, &r->spec.peer_server_len);
	if (b->cfg.kind == KL_BURST_KIND_PROSE) {
		r->spec.contrib = b->side[j].p;
		r->spec.role = (uint8_t)(1 + (j & 1));
	}
}

/* The request of UE j's try with this RAND, CSB ID and T (buf and cap are the caller's). */
static void fill_req(const struct kl_burst *b, uint32_t j, struct kl_client_req *r,
		     const uint8_t *rand, uint32_t csb_id, uint64_t ts)
{
	const struct ent *e = &b->ent[j];

	memset(r, 0, sizeof(*r));
	r->spec = (struct kl_mikey_req_spec){ .rand = rand, .id = (const uint8_t *)b->id[j],
					      .id_len = e->id_len, .ts = ts, .csb_id = csb_id,
					      .prf = e->prf };
	r->psk = b->psk[j];
	r->psk_len = 32;
	if (b->cfg.kind == KL_BURST_KIND_HM) {
		fill_hm(b, j, r);
		return;
	}
	if (b->side) {
		fill_pair(b, j, r);
		return;
	}
	if (b->cfg.kind == KL_BURST_KIND_MBMS) {
		r->spec.kind = KL_KIND_MBMS;
		r->spec.group = e->group;
		r->spec.number = b->cfg.msk == KL_BURST_MSK_NEXT
					 ? (uint16_t)(b->groups[e->group].next.msk_id & 0xFFFF)
					 : 0;
		memcpy(r->spec.domain, kl_pop_domain, 3);
		r->spec.id_type = 0; /* NAI */
	} else {
		const struct e2m_want *w = &b->e2m[j];

		r->spec.kind = KL_KIND_E2M;
		r->spec.id_type = 1; /* URI */
		r->spec.ue = (const uint8_t *)w->ue;
		r->spec.ue_len = w->ue_len;
		r->spec.has_key_id = w->has_key_id;
		r->spec.key_id = w->key_id;
	}
}

/* Sign every UE's first try now, in batches, into one buffer. */
static int presign(struct kl_burst *b, char *err, size_t errlen)
{
	uint64_t cap = (uint64_t)b->n * PRESIGN_PER_UE, used = 0;

	if ((uint64_t)b->nslots + b->n > UINT32_MAX) {
		errf(err, errlen, "presign: %u UEs and %u try slots do not fit the CSB ID", b->n,
		     b->nslots);
		return -EINVAL;
	}
	b->pre = calloc(b->n, sizeof(*b->pre));
	b->pre_buf = malloc(cap);
	if (!b->pre || !b->pre_buf) {
		errf(err, errlen, "presign: out of memory for %u requests", b->n);
		return -ENOMEM;
	}
	for (uint32_t base = 0; base < b->n; base += KL_BURST_TX_MAX) {
		unsigned m = b->n - base < KL_BURST_TX_MAX ? b->n - base : KL_BURST_TX_MAX;
		uint64_t ts = kl_ntp_now();

		if (RAND_bytes(b->rnd, (int)(m * KL_MIKEY_RAND_LEN)) != 1) {
			errf(err, errlen, "presign: no random bytes");
			return -EIO;
		}
		for (unsigned k = 0; k < m; k++) {
			struct presigned *q = &b->pre[base + k];

			memcpy(q->rand, b->rnd + k * KL_MIKEY_RAND_LEN, KL_MIKEY_RAND_LEN);
			q->ts = ts;
			fill_req(b, base + k, &b->req[k], q->rand, b->nslots + base + k, ts);
			b->req[k].buf = b->txbuf[k];
			b->req[k].cap = KL_BURST_DGRAM_MAX;
		}
		if (kl_client_sign(b->c, b->req, m) != (int)m) {
			kl_memzero(b->req, sizeof(b->req));
			errf(err, errlen, "presign: signing failed");
			return -EIO;
		}
		for (unsigned k = 0; k < m; k++) {
			struct presigned *q = &b->pre[base + k];
			const struct kl_client_req *r = &b->req[k];

			if (used + r->len > cap) {
				uint8_t *nb;

				cap = cap + cap / 2 + KL_BURST_DGRAM_MAX;
				nb = realloc(b->pre_buf, cap);
				if (!nb) {
					kl_memzero(b->req, sizeof(b->req));
					errf(err, errlen, "presign: out of memory for %u requests", b->n);
					return -ENOMEM;
				}
				b->pre_buf = nb;
			}
			memcpy(b->pre_buf + used, r->buf, r->len);
			q->off = used;
			q->len = r->len;
			used += r->len;
			memcpy(q->auth_key, r->auth_key, sizeof(q->auth_key));
			memcpy(q->encr_key, r->encr_key, sizeof(q->encr_key));
			memcpy(q->salt_key, r->salt_key, sizeof(q->salt_key));
		}
		kl_memzero(b->req, sizeof(b->req));
	}
	return 0;
}

/* Room for every UE's answer, touched now so the loop takes no page faults for it. */
static int store_init(struct kl_burst *b, char *err, size_t errlen)
{
	b->st_cap = (uint64_t)b->n * STORE_PER_UE;
	b->st = calloc(b->n, sizeof(*b->st));
	b->st_buf = malloc(b->st_cap);
	if (!b->st || !b->st_buf) {
		errf(err, errlen, "verify-after: out of memory for %u answers", b->n);
		return -ENOMEM;
	}
	/* written page by page (a memset of fresh memory may become a calloc, which touches nothing) */
	for (uint64_t o = 0; o < b->st_cap; o += 4096)
		((volatile uint8_t *)b->st_buf)[o] = 0;
	for (uint64_t o = 0; o < (uint64_t)b->n * sizeof(*b->st); o += 4096)
		((volatile uint8_t *)b->st)[o] = 0;
	return 0;
}

struct kl_burst *kl_burst_create(const struct kl_burst_config *cfg, const struct kl_pop_params *pop,
				 char *err, size_t errlen)
{
	struct kl_burst *b;
	uint32_t n = 0;
	uint64_t nslots;
	int rc;

	if (!cfg || !pop) {
		errf(err, errlen, "no configuration");
		return NULL;
	}
	if (check_config(cfg, pop, &n, err, errlen))
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	b->cfg = *cfg;
	b->pop = *pop;
	b->n = n;
	b->max_tries = cfg->retries + 1;
	b->inflight = cfg->inflight ? cfg->inflight
		      : cfg->mode == KL_BURST_MODE_MAX ? DEFAULT_INFLIGHT_MAX_MODE
						       : DEFAULT_INFLIGHT;
	if (b->inflight > n)
		b->inflight = n;
	nslots = (uint64_t)b->inflight * b->max_tries;
	if (nslots >= NIL) {
		errf(err, errlen, "inflight * (retries + 1) out of range");
		free(b);
		return NULL;
	}
	b->nslots = (uint32_t)nslots;
	b->nservers = cfg->servers ? cfg->servers : 1;
	b->rng = cfg->seed ^ 0x6261636b6f6666ull; /* not the schedule's stream */
	for (unsigned t = 0; t < MAX_TRIES; t++)
		b->thead[t] = b->ttail[t] = NIL;
	kl_hist_reset(&b->lat);
	kl_hist_reset(&b->ue_lat);
	kl_hist_reset(&b->ilat);
	b->c = kl_crypto_create(cfg->backend);
	b->ent = calloc(n, sizeof(*b->ent));
	b->id = calloc(n, sizeof(*b->id));
	b->psk = calloc(n, sizeof(*b->psk));
	b->start_ns = calloc(n, sizeof(*b->start_ns));
	b->order = calloc(n, sizeof(*b->order));
	b->slot = calloc(b->nslots, sizeof(*b->slot));
	b->fails = calloc(cfg->fail_list_max ? cfg->fail_list_max : 1, sizeof(*b->fails));
	if (cfg->kind == KL_BURST_KIND_E2M)
		b->e2m = calloc(n, sizeof(*b->e2m));
	if (cfg->kind == KL_BURST_KIND_HM) {
		b->npeer = cfg->peer_ues && cfg->peer_ues < n ? cfg->peer_ues : n;
		b->peer = calloc(b->npeer, sizeof(*b->peer));
		b->sess = calloc(b->inflight, sizeof(*b->sess));
		b->server_id_len = (uint16_t)strlen(b->cfg.server_id);
		b->peer_server_id = b->cfg.peer_server_id[0] ? b->cfg.peer_server_id : b->cfg.server_id;
		b->peer_server_id_len = (uint16_t)strlen(b->peer_server_id);
		if (!b->peer || !b->sess || ring_init(&b->sessq, b->inflight)) {
			errf(err, errlen, "out of memory for %u UE pairs", n);
			goto fail;
		}
	}
	if (kl_burst_kind_pairs(cfg->kind)) {
		b->npairs = n / 2;
		b->side = calloc(n, sizeof(*b->side));
		b->pair = calloc(b->npairs, sizeof(*b->pair));
		b->wheap = calloc(n, sizeof(*b->wheap));
		b->server_id_len = (uint16_t)strlen(b->cfg.server_id);
		b->peer_server_id = b->cfg.peer_server_id[0] ? b->cfg.peer_server_id : b->cfg.server_id;
		b->peer_server_id_len = (uint16_t)strlen(b->peer_server_id);
		b->pair_timeout_ns = (uint64_t)(cfg->pair_timeout_ms ? cfg->pair_timeout_ms
								       : KL_BURST_PAIR_TIMEOUT_MS) *
				     1000000ull;
		kl_hist_reset(&b->pair_lat);
		if (!b->side || !b->pair || !b->wheap) {
			errf(err, errlen, "out of memory for %u UE pairs", b->npairs);
			goto fail;
		}
	}
	/* a UE waits in the heap at most once at a time: after its newest try timed out */
	if (cfg->backoff_ms && !b->wheap && !(b->wheap = calloc(n, sizeof(*b->wheap)))) {
		errf(err, errlen, "out of memory for %u UEs", n);
		goto fail;
	}
	if (!b->c) {
		errf(err, errlen, "crypto context: %s", strerror(errno));
		goto fail;
	}
	if (!b->ent || !b->id || !b->psk || !b->start_ns || !b->order || !b->slot || !b->fails ||
	    (cfg->kind == KL_BURST_KIND_E2M && !b->e2m) || ring_init(&b->freeq, b->nslots) ||
	    ring_init(&b->retxq, n)) {
		errf(err, errlen, "out of memory for %u UEs", n);
		goto fail;
	}
	for (uint32_t s = 0; s < b->nslots; s++)
		ring_push(&b->freeq, s);
	/* UE pairs: a schedule of pairs, both sides of a pair starting together, side A first */
	rc = kl_burst_schedule(cfg->mode, b->side ? b->npairs : n, cfg->window_s, cfg->rate, cfg->seed,
			       b->start_ns, b->order);
	if (rc) {
		errf(err, errlen, rc == -ENOMEM ? "out of memory" : "window/rate out of range");
		goto fail;
	}
	for (uint32_t i = b->side ? b->npairs : 0; i-- > 0;) {
		b->start_ns[2 * i] = b->start_ns[2 * i + 1] = b->start_ns[i];
		b->order[2 * i + 1] = 2 * b->order[i] + 1;
		b->order[2 * i] = 2 * b->order[i];
	}
	for (uint32_t i = 0; i < n; i++) {
		b->ent[b->order[i]].sched_ns = b->start_ns[i];
		b->ent[i].srv = (uint8_t)(i % b->nservers);
	}
	if (prep_population(b, err, errlen))
		goto fail;
	{
		double t = mono_s();

		if (cfg->presign && presign(b, err, errlen))
			goto fail;
		if (cfg->verify_after && store_init(b, err, errlen))
			goto fail;
		b->prepare_s = mono_s() - t;
	}
	b->tot.ues = n;
	return b;
fail:
	kl_burst_destroy(b);
	return NULL;
}

void kl_burst_destroy(struct kl_burst *b)
{
	if (!b)
		return;
	if (b->psk)
		kl_memzero(b->psk, (size_t)b->n * sizeof(*b->psk));
	if (b->e2m)
		kl_memzero(b->e2m, (size_t)b->n * sizeof(*b->e2m));
	if (b->groups)
		kl_memzero(b->groups, ((size_t)b->pop.groups + 1) * sizeof(*b->groups));
	if (b->slot)
		kl_memzero(b->slot, (size_t)b->nslots * sizeof(*b->slot));
	kl_memzero(b->req, sizeof(b->req));
	kl_memzero(b->vreq, sizeof(b->vreq));
	kl_memzero(b->vres, sizeof(b->vres));
	if (b->pre)
		kl_memzero(b->pre, (size_t)b->n * sizeof(*b->pre));
	if (b->st)
		kl_memzero(b->st, (size_t)b->n * sizeof(*b->st));
	if (b->peer)
		kl_memzero(b->peer, (size_t)b->npeer * sizeof(*b->peer));
	if (b->sess)
		kl_memzero(b->sess, (size_t)b->inflight * sizeof(*b->sess));
	if (b->kstar_a)
		kl_memzero(b->kstar_a, (size_t)b->n * sizeof(*b->kstar_a));
	free(b->kstar_a);
	if (b->side)
		kl_memzero(b->side, (size_t)b->n * sizeof(*b->side));
	if (b->pair)
		kl_memzero(b->pair, (size_t)b->npairs * sizeof(*b->pair));
	kl_memzero(b->dop, sizeof(b->dop));
	kl_memzero(b->pop_, sizeof(b->pop_));
	free(b->side);
	free(b->pair);
	free(b->wheap);
	kl_memzero(b->hop, sizeof(b->hop));
	free(b->peer);
	free(b->sess);
	free(b->sessq.v);
	free(b->pre);
	free(b->pre_buf);
	free(b->st);
	free(b->st_buf);
	kl_crypto_destroy(b->c);
	free(b->ent);
	free(b->id);
	free(b->psk);
	free(b->e2m);
	free(b->groups);
	free(b->start_ns);
	free(b->order);
	free(b->slot);
	free(b->fails);
	free(b->freeq.v);
	free(b->retxq.v);
	free(b);
}

uint32_t kl_burst_ues(const struct kl_burst *b)
{
	return b->n;
}

const struct kl_burst_totals *kl_burst_totals(const struct kl_burst *b)
{
	return &b->tot;
}

const struct kl_burst_server_totals *kl_burst_server_totals(const struct kl_burst *b, unsigned i)
{
	return i < b->nservers ? &b->srv[i] : NULL;
}

unsigned kl_burst_servers(const struct kl_burst *b)
{
	return b->nservers;
}

const struct kl_hist *kl_burst_latency(const struct kl_burst *b)
{
	return &b->lat;
}

void kl_burst_count(struct kl_burst *b, enum kl_burst_counter c, uint64_t n)
{
	if ((unsigned)c < KL_BC__COUNT)
		b->tot.c[c] += n;
}

void kl_burst_start(struct kl_burst *b, uint64_t now_ns)
{
	b->t0 = now_ns;
	b->next_report = now_ns + (uint64_t)b->cfg.interval_ms * 1000000ull;
	b->started = 1;
	b->ntp = b->ntp_base = kl_ntp_now();
	b->ntp_sync = now_ns;
}

/* The realtime clock at now_ns, extrapolated from a reading at most NTP_RESYNC_NS old: a vDSO
 * call on every loop was the largest single cost in the client's profile. */
#define NTP_RESYNC_NS 50000000ull
static uint64_t ntp_at(struct kl_burst *b, uint64_t now_ns)
{
	uint64_t d = now_ns - b->ntp_sync;

	if (now_ns < b->ntp_sync || d >= NTP_RESYNC_NS) {
		b->ntp_base = kl_ntp_now();
		b->ntp_sync = now_ns;
		return b->ntp_base;
	}
	return b->ntp_base + (d << 32) / 1000000000ull;
}

/* ---- timers --------------------------------------------------------------------------------- */

static void timer_unlink(struct kl_burst *b, uint32_t s)
{
	struct slot *x = &b->slot[s];

	if (!x->timed)
		return;
	if (x->tprev != NIL)
		b->slot[x->tprev].tnext = x->tnext;
	else
		b->thead[x->try] = x->tnext;
	if (x->tnext != NIL)
		b->slot[x->tnext].tprev = x->tprev;
	else
		b->ttail[x->try] = x->tprev;
	x->timed = 0;
	x->tprev = x->tnext = NIL;
}

static void timer_append(struct kl_burst *b, uint32_t s, uint64_t deadline)
{
	struct slot *x = &b->slot[s];
	unsigned t = x->try;

	x->deadline_ns = deadline;
	x->timed = 1;
	x->tnext = NIL;
	x->tprev = b->ttail[t];
	if (b->ttail[t] != NIL)
		b->slot[b->ttail[t]].tnext = s;
	else
		b->thead[t] = s;
	b->ttail[t] = s;
}

/* ---- finishing a UE ------------------------------------------------------------------------- */

/* The UE's tries are over: slots back to the free list. */
static void release_slots(struct kl_burst *b, uint32_t j)
{
	struct ent *e = &b->ent[j];

	for (uint32_t s = e->slots, nx; s != NIL; s = nx) {
		struct slot *x = &b->slot[s];

		nx = x->ent_next;
		timer_unlink(b, s);
		/* the RAND stays, so a late answer is told from an unknown one; keys go */
		kl_memzero(x->auth_key, sizeof(x->auth_key) + sizeof(x->encr_key) + sizeof(x->salt_key));
		x->state = SLOT_DONE;
		x->ent_next = NIL;
		ring_push(&b->freeq, s);
	}
	e->slots = NIL;
}

/* The UE is done: its tries and session record go back, counted as done. */
static void release(struct kl_burst *b, uint32_t j, uint64_t now)
{
	struct ent *e = &b->ent[j];

	release_slots(b, j);
	if (e->hs != NIL) {
		kl_memzero(&b->sess[e->hs], sizeof(b->sess[e->hs]));
		ring_push(&b->sessq, e->hs);
		e->hs = NIL;
	}
	if (e->state == ENT_ACTIVE)
		b->active--;
	b->tot.done++;
	b->last_done_ns = now;
}

static void finish(struct kl_burst *b, uint32_t j, enum kl_burst_fail why, uint8_t err_no,
		   uint16_t detail, uint64_t now);

/* HM: pair j, which was fetching K*b for its UEb, failed: so do the pairs waiting for that K*b
 * (a later pair of the same UEb fetches again). */
static void hm_fetch_failed(struct kl_burst *b, uint32_t j, enum kl_burst_fail why,
			    uint8_t err_no, uint16_t detail, uint64_t now)
{
	struct hm_peer *pe = peer_of(b, j);
	uint32_t w = pe->waiters;

	if (pe->state != PEER_FETCHING || pe->fetcher != j)
		return;
	pe->state = PEER_NONE;
	pe->fetcher = pe->waiters = NIL;
	while (w != NIL) {
		uint32_t nx = b->ent[w].wait_next;

		b->ent[w].wait_next = NIL;
		if (b->ent[w].phase == 2)
			finish(b, w, why, err_no, detail, now);
		w = nx;
	}
}

/* The UE's outcome: verified (at now) or failed for why. */
static void verdict(struct kl_burst *b, uint32_t j, enum kl_burst_fail why, uint8_t err_no,
		    uint16_t detail, uint64_t now)
{
	struct ent *e = &b->ent[j];

	if (why == KL_BF_NONE) {
		e->state = ENT_OK;
		b->tot.c[KL_BC_VERIFIED]++;
		b->last_ok_ns = now;
		return;
	}
	e->state = ENT_FAILED;
	b->tot.c[KL_BC_FAILED]++;
	b->tot.fail[why]++;
	if (b->nfails < b->cfg.fail_list_max)
		b->fails[b->nfails++] = (struct failure){ .ent = j, .reason = (uint8_t)why,
							  .phase = e->phase, .err_no = err_no,
							  .detail = detail };
	if (b->peer && e->phase == 1)
		hm_fetch_failed(b, j, why, err_no, detail, now);
	/* a pair fails as a whole (a pair's own verdict and an interruption are given to both
	 * sides by their callers) */
	if (b->side && !b->pair_deciding && why != KL_BF_INTERRUPTED) {
		uint32_t o = j ^ 1;

		if (b->ent[o].state == ENT_PENDING)
			verdict(b, o, KL_BF_PEER_FAILED, 0, 0, now);
		else
			finish(b, o, KL_BF_PEER_FAILED, 0, 0, now);
	}
}

static void finish(struct kl_burst *b, uint32_t j, enum kl_burst_fail why, uint8_t err_no,
		   uint16_t detail, uint64_t now)
{
	struct ent *e = &b->ent[j];

	if (e->state != ENT_ACTIVE && e->state != ENT_IDLE)
		return;
	release(b, j, now);
	verdict(b, j, why, err_no, detail, now);
}

/* ---- sending -------------------------------------------------------------------------------- */

/* Can UE j's presigned first try still go out? The server takes T within its skew of its clock:
 * past half of ours, the try is signed anew. */
static int presigned_fresh(const struct kl_burst *b, uint32_t j)
{
	const struct presigned *q = &b->pre[j];
	uint64_t age = b->ntp > q->ts ? b->ntp - q->ts : q->ts - b->ntp;

	return !q->used && age <= (uint64_t)b->cfg.skew_s << 31;
}

/* A free slot, set up as try e->tries of UE j (linked to the UE, not timed yet). */
static uint32_t slot_take(struct kl_burst *b, uint32_t j)
{
	struct ent *e = &b->ent[j];
	struct slot *x;
	uint32_t s;

	/* cannot fail: active UEs never hold more than max_tries slots each */
	if (ring_pop(&b->freeq, &s))
		return NIL;
	x = &b->slot[s];
	memset(x, 0, sizeof(*x));
	x->state = SLOT_LIVE;
	x->try = e->tries;
	x->srv = e->srv;
	x->ent = j;
	x->ent_next = e->slots;
	x->tprev = x->tnext = NIL;
	e->slots = s;
	return s;
}

unsigned kl_burst_next(struct kl_burst *b, uint64_t now_ns, struct kl_burst_dgram *out,
		       unsigned max)
{
	uint32_t pick[KL_BURST_TX_MAX], spick[KL_BURST_TX_MAX];
	struct kl_burst_dgram pout[KL_BURST_TX_MAX];
	uint8_t use_pre[KL_BURST_TX_MAX];
	unsigned m = 0, nsign = 0, k = 0, np = 0;
	int rc, rnd_ok = 1;

	if (!b->started || b->interrupted)
		return 0;
	if (max > KL_BURST_TX_MAX)
		max = KL_BURST_TX_MAX;
	/* retransmissions first: those UEs have waited longest */
	while (m < max) {
		uint32_t j;

		if (ring_pop(&b->retxq, &j))
			break;
		b->ent[j].retx_queued = 0;
		if (b->ent[j].state == ENT_ACTIVE)
			pick[m++] = j;
	}
	while (m < max && b->start_cur < b->n && b->active < b->inflight &&
	       b->t0 + b->start_ns[b->start_cur] <= now_ns) {
		uint32_t j = b->order[b->start_cur++];

		if (b->ent[j].state != ENT_IDLE) /* a pair's side that failed with the other side */
			continue;
		b->ent[j].state = ENT_ACTIVE;
		b->ent[j].start_ns = now_ns;
		if (b->pair && !b->pair[j / 2].first_ns)
			b->pair[j / 2].first_ns = now_ns;
		/* cannot fail: the records are as many as the UEs in progress */
		if (b->sess && ring_pop(&b->sessq, &b->ent[j].hs))
			b->ent[j].hs = NIL;
		b->active++;
		b->tot.c[KL_BC_STARTED]++;
		pick[m++] = j;
	}
	if (!m)
		return 0;
	b->ntp = ntp_at(b, now_ns);
	for (unsigned i = 0; i < m; i++) {
		uint32_t j = pick[i];

		use_pre[i] = 0;
		if (b->pre && !b->ent[j].tries && !b->ent[j].phase && !b->pre[j].used) {
			use_pre[i] = (uint8_t)presigned_fresh(b, j);
			if (!use_pre[i])
				b->pre_stale++;
		}
		nsign += !use_pre[i];
	}
	if (nsign && RAND_bytes(b->rnd, (int)(nsign * KL_MIKEY_RAND_LEN)) != 1)
		rnd_ok = 0;
	for (unsigned i = 0; i < m; i++) {
		uint32_t j = pick[i], s, p = b->cfg.first + j;
		struct ent *e = &b->ent[j];
		struct slot *x;

		if ((!use_pre[i] && !rnd_ok) || (s = slot_take(b, j)) == NIL) {
			finish(b, j, KL_BF_INTERNAL, 0, 0, now_ns);
			continue;
		}
		x = &b->slot[s];
		if (use_pre[i]) {
			struct presigned *q = &b->pre[j];

			memcpy(x->rand, q->rand, sizeof(x->rand));
			memcpy(x->auth_key, q->auth_key, sizeof(x->auth_key));
			memcpy(x->encr_key, q->encr_key, sizeof(x->encr_key));
			memcpy(x->salt_key, q->salt_key, sizeof(x->salt_key));
			/* the slot holds the keys from here; the RAND stays to recognise answers */
			kl_memzero(q->auth_key, sizeof(q->auth_key) + sizeof(q->encr_key) +
							sizeof(q->salt_key));
			x->ts = q->ts;
			x->presigned = 1;
			q->used = 1;
			e->tries++;
			b->pre_used++;
			pout[np++] = (struct kl_burst_dgram){ .data = b->pre_buf + q->off, .len = q->len,
							      .slot = s, .source = p % b->cfg.sources,
							      .server = b->nservers > 1 ? e->srv
							      : (uint8_t)(b->side ? j & 1 : 0) };
			continue;
		}
		memcpy(x->rand, b->rnd + k * KL_MIKEY_RAND_LEN, KL_MIKEY_RAND_LEN);
		x->ts = b->ntp;
		fill_req(b, j, &b->req[k], x->rand, s, x->ts);
		b->req[k].buf = b->txbuf[k];
		b->req[k].cap = KL_BURST_DGRAM_MAX;
		if (e->tries++)
			b->tot.c[KL_BC_RETRANSMISSIONS]++;
		if (x->ent_next != NIL && b->slot[x->ent_next].srv != x->srv) {
			/* this try goes to another server than the UE's previous one */
			b->tot.c[KL_BC_MOVED]++;
			b->srv[x->srv].moved_in++;
		}
		out[k] = (struct kl_burst_dgram){ .data = b->txbuf[k], .slot = s,
						  .source = p % b->cfg.sources,
						  .server = b->nservers > 1 ? e->srv
						  : (uint8_t)(b->side ? j & 1 : e->phase == 1) };
		spick[k++] = j;
	}
	/* one crypto batch for the rest */
	if (k) {
		rc = kl_client_sign(b->c, b->req, k);
		if (rc != (int)k) {
			for (unsigned i = 0; i < k; i++)
				finish(b, spick[i], KL_BF_INTERNAL, 0, 0, now_ns);
			k = 0;
		}
		for (unsigned i = 0; i < k; i++) {
			struct slot *x = &b->slot[out[i].slot];

			memcpy(x->auth_key, b->req[i].auth_key, sizeof(x->auth_key));
			memcpy(x->encr_key, b->req[i].encr_key, sizeof(x->encr_key));
			memcpy(x->salt_key, b->req[i].salt_key, sizeof(x->salt_key));
			out[i].len = b->req[i].len;
			out[i].sent = 0;
		}
		kl_memzero(b->req, sizeof(b->req));
	}
	memcpy(out + k, pout, np * sizeof(*pout));
	return k + np;
}

void kl_burst_sent(struct kl_burst *b, const struct kl_burst_dgram *d, unsigned n, uint64_t now_ns)
{
	for (unsigned i = 0; i < n; i++) {
		struct slot *x;

		if (d[i].slot >= b->nslots)
			continue;
		x = &b->slot[d[i].slot];
		if (x->state != SLOT_LIVE || x->timed)
			continue;
		if (d[i].sent) {
			b->tot.c[KL_BC_SENT]++;
			b->srv[x->srv].sent++;
			if (!b->first_sent_ns)
				b->first_sent_ns = now_ns;
			b->last_sent_ns = now_ns;
		} else {
			b->tot.c[KL_BC_TX_DROPPED]++; /* lost like on the wire: it times out */
		}
		x->sent_ns = now_ns;
		timer_append(b, d[i].slot, now_ns + kl_burst_backoff_ns(b->cfg.timeout_ms, x->try));
	}
}

/* ---- answers -------------------------------------------------------------------------------- */

static int msk_equal(const struct kl_mikey_key *k, const struct kl_msk *m)
{
	return k->key_len == sizeof(m->key) && k->key_id == m->msk_id &&
	       k->valid_from == m->valid_from && k->valid_to == m->valid_to &&
	       !memcmp(k->key, m->key, sizeof(m->key));
}

static int in_validity(const struct kl_msk *m, uint64_t t)
{
	return m->valid_from <= t && t < m->valid_to;
}

/* Is this the key set the server should have handed out at its time T? */
static int keys_ok(const struct kl_burst *b, uint32_t j, const struct kl_client_result *res)
{
	if (b->cfg.kind == KL_BURST_KIND_MBMS) {
		const struct kl_group *g = &b->groups[b->ent[j].group];
		const struct kl_msk *pick;

		if (b->cfg.msk == KL_BURST_MSK_NEXT)
			return res->nkeys == 1 && msk_equal(&res->keys[0], &g->next);
		pick = in_validity(&g->current, res->server_ts) ? &g->current
		       : g->has_next && in_validity(&g->next, res->server_ts) ? &g->next
									      : NULL;
		if (!pick || res->nkeys < 1 || !msk_equal(&res->keys[0], pick))
			return 0;
		/* the next MSK rides along only inside the pre-delivery window, which is the
		 * server's setting: accept it when it is exactly the next key and not yet valid */
		if (res->nkeys == 2)
			return pick == &g->current && g->has_next && msk_equal(&res->keys[1], &g->next) &&
			       g->next.valid_from > res->server_ts;
		return res->nkeys == 1;
	}
	{
		const struct e2m_want *w = &b->e2m[j];
		const struct kl_mikey_key *k = &res->keys[0];

		/* the population's e2m_int_keys never expire: validity 0 .. 0 */
		if (res->nkeys != 1 || k->key_len != 32 || k->key_id != w->key_id ||
		    k->valid_from != 0 || k->valid_to != 0)
			return 0;
		if (!memcmp(k->key, w->key, 32))
			return 1;
		return b->cfg.has_alt_seed && !memcmp(k->key, w->key_alt, 32) ? 2 : 0;
	}
}

/* The slot of the live try an answer is for, or NIL after counting what else it is. */
static uint32_t match(struct kl_burst *b, const uint8_t *p, uint16_t len)
{
	struct kl_mikey_resp r;
	struct slot *x;
	uint32_t s;

	if (!p || kl_mikey_parse_resp(p, len, &r) != KL_DROP_NONE) {
		b->tot.c[KL_BC_MALFORMED]++;
		return NIL;
	}
	if (r.csb_id < b->nslots) {
		s = r.csb_id;
		x = &b->slot[s];
		if (x->state == SLOT_UNUSED || x->presigned ||
		    memcmp(x->rand, r.rand, KL_MIKEY_RAND_LEN)) {
			b->tot.c[KL_BC_UNKNOWN]++;
			return NIL;
		}
	} else {
		/* a presigned first try: CSB ID nslots + UE */
		uint32_t j = r.csb_id - b->nslots;
		const struct ent *e;

		if (!b->pre || j >= b->n || !b->pre[j].used ||
		    memcmp(b->pre[j].rand, r.rand, KL_MIKEY_RAND_LEN)) {
			b->tot.c[KL_BC_UNKNOWN]++;
			return NIL;
		}
		e = &b->ent[j];
		if (e->state != ENT_ACTIVE) {
			b->tot.c[e->state == ENT_FAILED ? KL_BC_LATE : KL_BC_DUPLICATE]++;
			return NIL;
		}
		for (s = e->slots; s != NIL && !b->slot[s].presigned; s = b->slot[s].ent_next)
			;
		if (s == NIL) { /* cannot happen: the UE holds its tries until it finishes */
			b->tot.c[KL_BC_UNKNOWN]++;
			return NIL;
		}
		x = &b->slot[s];
	}
	if (x->state != SLOT_LIVE) {
		b->tot.c[b->ent[x->ent].state == ENT_FAILED ? KL_BC_LATE : KL_BC_DUPLICATE]++;
		return NIL;
	}
	return s;
}

/* The CSB ID that slot s's try was sent with. */
static uint32_t slot_csb(const struct kl_burst *b, uint32_t s)
{
	return b->slot[s].presigned ? b->nslots + b->slot[s].ent : s;
}

/* The request kind on the wire of UE j's current try. */
static uint8_t wire_kind(const struct kl_burst *b, uint32_t j)
{
	static const uint8_t kind[] = { [KL_BURST_KIND_MBMS] = KL_KIND_MBMS,
					[KL_BURST_KIND_E2M] = KL_KIND_E2M,
					[KL_BURST_KIND_HM] = KL_KIND_HM,
					[KL_BURST_KIND_DH] = KL_KIND_DH,
					[KL_BURST_KIND_PROSE] = KL_KIND_PROSE };

	return b->peer && b->ent[j].phase ? KL_KIND_KSTAR : kind[b->cfg.kind];
}

static void set_check(struct kl_burst *b, unsigned k, uint32_t j, const uint8_t *rand,
		      uint32_t csb_id, const uint8_t *auth_key, const uint8_t *encr_key,
		      const uint8_t *salt_key, const uint8_t *ans, uint16_t len, uint64_t ntp)
{
	struct kl_client_req *q = &b->vreq[k];

	memset(&q->spec, 0, sizeof(q->spec));
	q->spec.rand = rand;
	q->spec.csb_id = csb_id;
	q->spec.prf = b->ent[j].prf;
	q->spec.kind = wire_kind(b, j);
	memcpy(q->auth_key, auth_key, sizeof(q->auth_key));
	memcpy(q->encr_key, encr_key, sizeof(q->encr_key));
	memcpy(q->salt_key, salt_key, sizeof(q->salt_key));
	b->vchk[k] = (struct kl_client_check){ .req = q, .ans = ans, .len = len, .now = ntp,
					       .res = &b->vres[k] };
}

/*
 * What a checked answer to UE j means (kl_client_verify's rc and result). MAC failures: inline,
 * the try stays open (0 returned, nothing decided); after the run, the UE fails. Otherwise the
 * UE's verdict. @return 1 when the UE got its key.
 */
static int judge(struct kl_burst *b, uint32_t j, int rc, const struct kl_client_result *res,
		 uint64_t now_ns, int after)
{
	if (rc == -EPERM) {
		/* not from the server (or corrupted) */
		b->tot.c[KL_BC_BAD_MAC]++;
		if (after)
			verdict(b, j, KL_BF_BAD_MAC, 0, 0, now_ns);
		return 0;
	}
	if (rc == -EIO || rc == -EINVAL) {
		verdict(b, j, KL_BF_INTERNAL, 0, 0, now_ns);
		return 0;
	}
	/* from here the MAC verified: the server said this */
	b->tot.c[KL_BC_ANSWERED]++;
	if (rc == -ETIME) {
		verdict(b, j, KL_BF_SERVER_TIME, 0, 0, now_ns);
		return 0;
	}
	if (rc) {
		verdict(b, j, KL_BF_BAD_ANSWER, 0, 0, now_ns);
		return 0;
	}
	if (res->is_error) {
		b->tot.c[KL_BC_ERROR_ANSWERS]++;
		b->tot.err[res->err_no]++;
		verdict(b, j, KL_BF_ERROR_ANSWER, res->err_no, res->detail, now_ns);
		return 0;
	}
	switch (keys_ok(b, j, res)) {
	case 0:
		verdict(b, j, KL_BF_WRONG_KEY, 0, 0, now_ns);
		return 0;
	case 2:
		b->tot.c[KL_BC_ALT_KEY]++;
		break;
	}
	verdict(b, j, KL_BF_NONE, 0, 0, now_ns);
	return 1;
}

/* Latency of UE j's try sent at sent_ns and answered at now_ns. */
static uint64_t ue_latency(const struct kl_burst *b, uint32_t j, uint64_t now_ns)
{
	const struct ent *e = &b->ent[j];
	uint64_t from = b->cfg.mode == KL_BURST_MODE_MAX ? e->start_ns : b->t0 + e->sched_ns;

	return now_ns > from ? now_ns - from : 0;
}

/* ---- HM pairs ------------------------------------------------------------------------------- */

static void hm_flush(struct kl_burst *b, uint64_t now_ns);

/* Open token (which 0: token_a as UEa, 1: token_b as UEb) of pair j with kstar, in a batch. */
static void hm_queue(struct kl_burst *b, uint32_t j, unsigned which, const uint8_t *kstar,
		     const uint8_t *token, uint16_t len, uint64_t now_ns)
{
	const struct hm_peer *pe = peer_of(b, j);

	b->hop[b->nh] = (struct kl_hm_open){
		.kstar = kstar, .token = token, .token_len = len,
		.vlra = (const uint8_t *)b->cfg.server_id, .vlra_len = b->server_id_len,
		.vlrb = (const uint8_t *)b->peer_server_id, .vlrb_len = b->peer_server_id_len,
		.ue_a = (const uint8_t *)b->id[j], .ue_a_len = b->ent[j].id_len,
		.ue_b = (const uint8_t *)pe->id, .ue_b_len = pe->id_len, .now = b->ntp
	};
	b->hent[b->nh] = j;
	b->hwhich[b->nh] = (uint8_t)which;
	if (++b->nh == VERIFY_BATCH)
		hm_flush(b, now_ns);
}

/* Pair j holds Ks from token_a: UEb opens token_b with its K*b, fetches it, or waits for it. */
static void hm_to_ueb(struct kl_burst *b, uint32_t j, uint64_t now_ns)
{
	struct ent *e = &b->ent[j];
	struct hm_peer *pe = peer_of(b, j);
	struct hm_sess *h = &b->sess[e->hs];

	switch (pe->state) {
	case PEER_HAVE:
		b->tot.c[KL_BC_KSTAR_CACHED]++;
		e->phase = 2;
		hm_queue(b, j, 1, pe->kstar, h->tok_b, h->tok_b_len, now_ns);
		break;
	case PEER_FETCHING:
		e->phase = 2;
		e->wait_next = pe->waiters;
		pe->waiters = j;
		break;
	default:
		pe->state = PEER_FETCHING;
		pe->fetcher = j;
		e->phase = 1;
		e->tries = 0;
		if (!e->retx_queued && !ring_push(&b->retxq, j))
			e->retx_queued = 1;
		break;
	}
}

/* A token of pair j opened (or not). */
static void hm_opened(struct kl_burst *b, uint32_t j, unsigned which, const struct kl_hm_open *o,
		      uint64_t now_ns)
{
	struct ent *e = &b->ent[j];
	int same;

	if (e->state != ENT_ACTIVE)
		return;
	if (o->rc) {
		finish(b, j, o->rc == -EIO ? KL_BF_INTERNAL : KL_BF_BAD_TOKEN, 0, 0, now_ns);
		return;
	}
	if (!which) {
		memcpy(b->sess[e->hs].ks, o->ks, sizeof(o->ks));
		hm_to_ueb(b, j, now_ns);
		return;
	}
	same = !CRYPTO_memcmp(o->ks, b->sess[e->hs].ks, sizeof(o->ks));
	if (same)
		kl_hist_add(&b->ue_lat, ue_latency(b, j, now_ns));
	finish(b, j, same ? KL_BF_NONE : KL_BF_KS_MISMATCH, 0, 0, now_ns);
}

static void hm_flush(struct kl_burst *b, uint64_t now_ns)
{
	while (b->nh) {
		struct kl_hm_open op[VERIFY_BATCH];
		uint32_t ent[VERIFY_BATCH];
		uint8_t which[VERIFY_BATCH];
		unsigned n = b->nh;

		/* a copy: deciding may queue more opens (token_b of a pair whose UEb holds K*b) */
		memcpy(op, b->hop, n * sizeof(op[0]));
		memcpy(ent, b->hent, n * sizeof(ent[0]));
		memcpy(which, b->hwhich, n);
		b->nh = 0;
		if (kl_client_hm_open_burst(b->c, op, n) != (int)n)
			for (unsigned i = 0; i < n; i++)
				op[i].rc = -EIO;
		for (unsigned i = 0; i < n; i++)
			hm_opened(b, ent[i], which[i], &op[i], now_ns);
		kl_memzero(op, sizeof(op));
	}
}

/*
 * A verified answer (no error) to pair j's live try in slot s: the kind-2 answer (K*a and the
 * tokens: token_a is opened, token_b kept for UEb) or the kind-3 answer (K*b, for this pair and
 * every pair waiting for it, and kept for later ones).
 */
static void hm_answer(struct kl_burst *b, uint32_t s, uint32_t j,
		      const struct kl_client_result *res, uint64_t now_ns)
{
	struct ent *e = &b->ent[j];
	uint64_t rtt = now_ns - b->slot[s].sent_ns;
	struct hm_peer *pe = peer_of(b, j);
	struct hm_sess *h;

	b->tot.c[KL_BC_ANSWERED]++;
	kl_hist_add(&b->lat, rtt);
	kl_hist_add(&b->ilat, rtt);
	if (e->hs == NIL) {
		finish(b, j, KL_BF_INTERNAL, 0, 0, now_ns);
		return;
	}
	h = &b->sess[e->hs];
	if (res->nkeys != 1 || res->keys[0].key_len != 32) {
		finish(b, j, KL_BF_WRONG_KEY, 0, 0, now_ns);
		return;
	}
	if (b->kstar_a &&
	    CRYPTO_memcmp(res->keys[0].key, e->phase ? pe->kstar_want : b->kstar_a[j], 32)) {
		finish(b, j, KL_BF_WRONG_KEY, 0, 0, now_ns);
		return;
	}
	release_slots(b, j); /* this step's tries are over */
	if (!e->phase) {
		if (!res->token[0] || !res->token[1] || res->token_len[1] > sizeof(h->tok_b) ||
		    res->keys[0].valid_to <= res->server_ts) {
			finish(b, j, KL_BF_BAD_ANSWER, 0, 0, now_ns);
			return;
		}
		memcpy(h->tok_b, res->token[1], res->token_len[1]);
		h->tok_b_len = res->token_len[1];
		/* K*a and token_a point into this answer: opened before the batch ends */
		hm_queue(b, j, 0, res->keys[0].key, res->token[0], res->token_len[0], now_ns);
		return;
	}
	if (res->keys[0].key_id != 0 || res->token[0] || res->token[1]) {
		finish(b, j, KL_BF_BAD_ANSWER, 0, 0, now_ns);
		return;
	}
	b->tot.c[KL_BC_KSTAR_FETCHED]++;
	memcpy(pe->kstar, res->keys[0].key, 32);
	pe->state = PEER_HAVE;
	pe->fetcher = NIL;
	hm_queue(b, j, 1, pe->kstar, h->tok_b, h->tok_b_len, now_ns);
	for (uint32_t w = pe->waiters, nx; w != NIL; w = nx) {
		nx = b->ent[w].wait_next;
		b->ent[w].wait_next = NIL;
		if (b->ent[w].state == ENT_ACTIVE && b->ent[w].phase == 2) {
			b->tot.c[KL_BC_KSTAR_CACHED]++;
			hm_queue(b, w, 1, pe->kstar, b->sess[b->ent[w].hs].tok_b,
				 b->sess[b->ent[w].hs].tok_b_len, now_ns);
		}
	}
	pe->waiters = NIL;
}

/* ---- DH and ProSe pairs ------------------------------------------------------------------- */

static void wait_push(struct kl_burst *b, uint64_t at, uint32_t j)
{
	uint32_t i = b->nwait++;

	while (i && b->wheap[(i - 1) / 2].at > at) {
		b->wheap[i] = b->wheap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	b->wheap[i] = (struct wait){ .at = at, .ent = j };
}

static uint32_t wait_pop(struct kl_burst *b)
{
	uint32_t j = b->wheap[0].ent, i = 0;
	struct wait last = b->wheap[--b->nwait];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= b->nwait)
			break;
		if (c + 1 < b->nwait && b->wheap[c + 1].at < b->wheap[c].at)
			c++;
		if (last.at <= b->wheap[c].at)
			break;
		b->wheap[i] = b->wheap[c];
		i = c;
	}
	if (b->nwait)
		b->wheap[i] = last;
	return j;
}

/* Side j derived its key: the first side of its pair waits for the other; the second decides
 * both. */
static void pair_key(struct kl_burst *b, uint32_t j, const uint8_t key[32], uint64_t now_ns)
{
	struct pair *pr = &b->pair[j / 2];
	enum kl_burst_fail why;

	if (b->ent[j].state == ENT_PENDING && (pr->deferred >> (j & 1) & 1)) {
		now_ns = pr->done_ns; /* ks_after: decided as of the pair's last answer */
	} else {
		if (b->ent[j].state != ENT_ACTIVE)
			return;
		kl_hist_add(&b->ue_lat, ue_latency(b, j, now_ns));
		release(b, j, now_ns);
		b->ent[j].state = ENT_PENDING;
	}
	if (!pr->have) {
		memcpy(pr->key, key, 32);
		pr->have = 1;
		return;
	}
	why = CRYPTO_memcmp(pr->key, key, 32)	   ? KL_BF_KS_MISMATCH
	      : CRYPTO_memcmp(pr->want, key, 32) ? KL_BF_WRONG_KEY
						   : KL_BF_NONE;
	kl_memzero(pr->key, sizeof(pr->key));
	if (why == KL_BF_NONE)
		kl_hist_add(&b->pair_lat, now_ns - pr->first_ns);
	b->pair_deciding = 1;
	verdict(b, j ^ 1, why, 0, 0, now_ns);
	verdict(b, j, why, 0, 0, now_ns);
	b->pair_deciding = 0;
}

/* The queued Ks / KD derivations, one batch. */
static void pair_flush(struct kl_burst *b, uint64_t now_ns)
{
	unsigned n = b->nd;
	int dh = b->cfg.kind == KL_BURST_KIND_DH, rc;

	if (!n)
		return;
	b->nd = 0;
	rc = dh ? kl_client_dh_ks_burst(b->c, b->dop, n) : kl_client_prose_burst(b->c, b->pop_, n);
	for (unsigned i = 0; i < n; i++) {
		int r = rc != (int)n ? -EIO : dh ? b->dop[i].rc : b->pop_[i].rc;

		if (r && b->ent[b->dent[i]].state == ENT_PENDING) /* ks_after */
			verdict(b, b->dent[i], r == -EPERM ? KL_BF_BAD_ANSWER : KL_BF_INTERNAL, 0, 0,
				b->pair[b->dent[i] / 2].done_ns);
		else if (r)
			/* an all-zero X25519 result is the answer's fault; the rest is ours */
			finish(b, b->dent[i], r == -EPERM ? KL_BF_BAD_ANSWER : KL_BF_INTERNAL, 0, 0,
			       now_ns);
		else
			pair_key(b, b->dent[i], dh ? b->dop[i].ks : b->pop_[i].out, now_ns);
	}
	kl_memzero(dh ? (void *)b->dop : (void *)b->pop_, dh ? n * sizeof(b->dop[0])
							    : n * sizeof(b->pop_[0]));
}

/* ERR 12/5 to side j's try: a new round of tries after the retry-after, unless that is past
 * the pair's timeout. */
static void pair_wait(struct kl_burst *b, uint32_t j, const struct kl_client_result *res,
		      uint64_t now_ns)
{
	struct pair *pr = &b->pair[j / 2];
	uint64_t ms = res->has_retry_after ? res->retry_after_ms : KL_BURST_RETRY_AFTER_DEFAULT_MS;
	uint64_t at = now_ns + ms * 1000000ull;

	b->tot.c[KL_BC_WAITS]++;
	if (at - pr->first_ns > b->pair_timeout_ns) {
		finish(b, j, KL_BF_PAIR_TIMEOUT, res->err_no, res->detail, now_ns);
		return;
	}
	release_slots(b, j);
	b->ent[j].tries = 0;
	pr->waits++;
	wait_push(b, at, j);
}

/* Side j's Ks / KD from got (the other UE's value) into the batch of derivations. */
static void pair_queue(struct kl_burst *b, uint32_t j, const uint8_t *got, uint64_t now_ns)
{
	const uint8_t *mine = b->side[j].want;

	if (b->cfg.kind == KL_BURST_KIND_DH)
		b->dop[b->nd] = (struct kl_dh_op){ .own_key = b->psk[j], .own_key_len = 32,
						   .peer_pub = got, .id_a = (const uint8_t *)b->id[j],
						   .la = b->ent[j].id_len,
						   .id_b = (const uint8_t *)b->id[j ^ 1],
						   .lb = b->ent[j ^ 1].id_len };
	else /* KD = KDF(p2, FF05, p4): side A holds p2, side B p4 */
		b->pop_[b->nd] = (struct kl_prose_op){ .key = (j & 1) ? got : mine,
						       .in = (j & 1) ? mine : got, .key_len = 32,
						       .kd = 1 };
	b->dent[b->nd] = j;
	if (++b->nd == VERIFY_BATCH)
		pair_flush(b, now_ns);
}

/* A verified answer (no error) to side j: the other UE's value, checked against what the
 * population says it is, goes into the batch that derives Ks / KD. */
static void pair_answer(struct kl_burst *b, uint32_t j, const struct kl_client_result *res,
			uint64_t now_ns)
{
	const struct pair_side *other = &b->side[j ^ 1];
	const uint8_t *got;

	if (b->cfg.kind == KL_BURST_KIND_DH) {
		got = res->x25519;
		if (!got || res->nkeys) {
			finish(b, j, KL_BF_BAD_ANSWER, 0, 0, now_ns);
			return;
		}
	} else {
		if (res->nkeys != 1 || res->keys[0].key_len != 32 || res->keys[0].key_id != 0 ||
		    res->keys[0].valid_to <= res->server_ts || res->x25519) {
			finish(b, j, KL_BF_BAD_ANSWER, 0, 0, now_ns);
			return;
		}
		got = res->keys[0].key;
	}
	if (CRYPTO_memcmp(got, other->want, 32)) {
		finish(b, j, KL_BF_WRONG_KEY, 0, 0, now_ns);
		return;
	}
	release_slots(b, j); /* this side's tries are over */
	if (b->cfg.ks_after) {
		struct pair *pr = &b->pair[j / 2];

		if (b->ent[j].state != ENT_ACTIVE)
			return;
		kl_hist_add(&b->ue_lat, ue_latency(b, j, now_ns));
		release(b, j, now_ns);
		b->ent[j].state = ENT_PENDING;
		pr->deferred |= (uint8_t)(1u << (j & 1));
		pr->done_ns = now_ns > pr->done_ns ? now_ns : pr->done_ns;
		return;
	}
	pair_queue(b, j, got, now_ns);
}

/* Verify the k answers gathered in vchk (to live tries in vslot) and decide. */
static void verify_live(struct kl_burst *b, unsigned k)
{
	if (kl_client_verify_burst(b->c, b->vchk, k, b->cfg.skew_s) != (int)k)
		for (unsigned i = 0; i < k; i++)
			b->vchk[i].rc = -EIO;
	for (unsigned i = 0; i < k; i++) {
		uint32_t s = b->vslot[i], j = b->slot[s].ent;
		struct slot *x = &b->slot[s];
		uint64_t now_ns = b->vat[i];
		int rc = b->vchk[i].rc;

		/* an earlier answer of this burst may have finished the UE */
		if (x->state != SLOT_LIVE) {
			b->tot.c[b->ent[j].state == ENT_FAILED ? KL_BC_LATE : KL_BC_DUPLICATE]++;
			continue;
		}
		if (rc == -EPERM) {
			judge(b, j, rc, &b->vres[i], now_ns, 0);
			continue;
		}
		if (!rc && b->vres[i].is_error && b->vres[i].err_no == KL_ERR_INVALID_TS &&
		    b->ent[j].tries < b->max_tries) {
			/* the server's T lets the UE resync (PROTOCOL.md section 6): a fresh try at
			 * once, signed with the current time, instead of a failure */
			b->tot.c[KL_BC_ANSWERED]++;
			b->tot.c[KL_BC_ERROR_ANSWERS]++;
			b->tot.err[KL_ERR_INVALID_TS]++;
			b->tot.c[KL_BC_RESYNCS]++;
			timer_unlink(b, s);
			x->state = SLOT_DONE;
			if (!b->ent[j].retx_queued && !ring_push(&b->retxq, j))
				b->ent[j].retx_queued = 1;
			continue;
		}
		if (b->peer && !rc && !b->vres[i].is_error) {
			hm_answer(b, s, j, &b->vres[i], now_ns);
			continue;
		}
		if (b->side && !rc) {
			const struct kl_client_result *res = &b->vres[i];
			uint64_t rtt = now_ns - x->sent_ns;
			int wait = res->is_error && res->err_no == KL_ERR_UNSPECIFIED && res->detail == 5;

			if (!res->is_error || wait) {
				b->tot.c[KL_BC_ANSWERED]++;
				kl_hist_add(&b->lat, rtt);
				kl_hist_add(&b->ilat, rtt);
				if (wait)
					pair_wait(b, j, res, now_ns);
				else
					pair_answer(b, j, res, now_ns);
				continue;
			}
		}
		{
			uint64_t rtt = now_ns - x->sent_ns, ue = ue_latency(b, j, now_ns);
			uint8_t srv = x->srv;

			release(b, j, now_ns);
			if (judge(b, j, rc, &b->vres[i], now_ns, 0)) {
				b->srv[srv].keys++;
				kl_hist_add(&b->lat, rtt);
				kl_hist_add(&b->ilat, rtt);
				kl_hist_add(&b->ue_lat, ue);
			}
		}
	}
	if (b->nh) /* the keys and tokens of this batch's answers are in vres and the answers */
		hm_flush(b, b->vat[k - 1]);
	pair_flush(b, b->vat[k - 1]); /* the same for the peers' values */
	kl_memzero(b->vreq, sizeof(b->vreq));
	kl_memzero(b->vres, sizeof(b->vres));
}

/* verify_after: keep a matched answer and end its UE for now. @return 0, or -ENOSPC (full). */
static int store(struct kl_burst *b, uint32_t s, const uint8_t *p, uint16_t len, uint64_t now_ns)
{
	struct slot *x = &b->slot[s];
	uint32_t j = x->ent;
	struct stored *q;

	if (b->nst >= b->n || b->st_bytes + len > b->st_cap)
		return -ENOSPC;
	q = &b->st[b->nst++];
	q->off = b->st_bytes;
	q->len = len;
	memcpy(b->st_buf + b->st_bytes, p, len);
	b->st_bytes += len;
	q->ntp = b->ntp;
	q->at_ns = now_ns;
	q->rtt_ns = now_ns - x->sent_ns;
	q->ue_ns = ue_latency(b, j, now_ns);
	q->ent = j;
	q->csb_id = slot_csb(b, s);
	q->srv = x->srv;
	memcpy(q->rand, x->rand, sizeof(q->rand));
	memcpy(q->auth_key, x->auth_key, sizeof(q->auth_key));
	memcpy(q->encr_key, x->encr_key, sizeof(q->encr_key));
	memcpy(q->salt_key, x->salt_key, sizeof(q->salt_key));
	b->tot.c[KL_BC_MATCHED]++;
	kl_hist_add(&b->ilat, q->rtt_ns);
	release(b, j, now_ns);
	b->ent[j].state = ENT_PENDING;
	return 0;
}

void kl_burst_answers(struct kl_burst *b, const uint8_t *const p[], const uint16_t len[],
		      unsigned n, uint64_t now_ns)
{
	unsigned k = 0;

	if (!p || !len)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint32_t s = match(b, p[i], len[i]);
		struct slot *x;

		if (s == NIL)
			continue;
		b->srv[b->slot[s].srv].answers++;
		if (b->st && !store(b, s, p[i], len[i], now_ns))
			continue;
		x = &b->slot[s];
		set_check(b, k, x->ent, x->rand, slot_csb(b, s), x->auth_key, x->encr_key, x->salt_key,
			  p[i], len[i], b->ntp);
		b->vslot[k] = s;
		b->vat[k] = now_ns;
		if (++k == VERIFY_BATCH) {
			verify_live(b, k);
			k = 0;
		}
	}
	if (k)
		verify_live(b, k);
}

void kl_burst_answer(struct kl_burst *b, const uint8_t *p, uint16_t len, uint64_t now_ns)
{
	kl_burst_answers(b, &p, &len, 1, now_ns);
}

/* ks_after: the deferred sides' Ks / KD from what their answers carried (checked equal to the
 * population's values: b->side[j ^ 1].want), in batches, then the pairs' verdicts. */
static void pair_ks_after(struct kl_burst *b)
{
	for (uint32_t j = 0; j < b->n; j++)
		if (b->ent[j].state == ENT_PENDING && (b->pair[j / 2].deferred >> (j & 1) & 1))
			pair_queue(b, j, b->side[j ^ 1].want, b->pair[j / 2].done_ns);
	pair_flush(b, 0);
}

uint32_t kl_burst_verify_stored(struct kl_burst *b)
{
	double t = mono_s();
	uint32_t done = 0;

	if (b->side && b->cfg.ks_after && !b->st) {
		pair_ks_after(b);
		b->verify_s = mono_s() - t;
		return 0;
	}
	if (!b->st || b->st_done)
		return 0;
	b->st_done = 1;
	while (done < b->nst) {
		unsigned k = b->nst - done < VERIFY_BATCH ? b->nst - done : VERIFY_BATCH;

		for (unsigned i = 0; i < k; i++) {
			const struct stored *q = &b->st[done + i];

			set_check(b, i, q->ent, q->rand, q->csb_id, q->auth_key, q->encr_key, q->salt_key,
				  b->st_buf + q->off, q->len, q->ntp);
		}
		if (kl_client_verify_burst(b->c, b->vchk, k, b->cfg.skew_s) != (int)k)
			for (unsigned i = 0; i < k; i++)
				b->vchk[i].rc = -EIO;
		for (unsigned i = 0; i < k; i++) {
			struct stored *q = &b->st[done + i];

			if (judge(b, q->ent, b->vchk[i].rc, &b->vres[i], q->at_ns, 1)) {
				b->srv[q->srv].keys++;
				kl_hist_add(&b->lat, q->rtt_ns);
				kl_hist_add(&b->ue_lat, q->ue_ns);
			}
			kl_memzero(q->auth_key, sizeof(q->auth_key) + sizeof(q->encr_key) +
							sizeof(q->salt_key));
		}
		kl_memzero(b->vreq, sizeof(b->vreq));
		kl_memzero(b->vres, sizeof(b->vres));
		done += k;
	}
	b->verify_s = mono_s() - t;
	return done;
}

/* ---- ticks and interval lines ---------------------------------------------------------------- */

static json_t *errors_json(const uint64_t *now, const uint64_t *before)
{
	json_t *o = json_object();

	for (unsigned i = 0; o && i < 256; i++) {
		uint64_t d = now[i] - (before ? before[i] : 0);
		char k[4];

		if (!d)
			continue;
		snprintf(k, sizeof(k), "%u", i);
		json_object_set_new(o, k, json_integer((json_int_t)d));
	}
	return o;
}

static void interval_line(struct kl_burst *b, uint64_t t_ns, FILE *out)
{
	json_t *o = json_object();

	if (o) {
		json_object_set_new(o, "type", json_string("interval"));
		json_object_set_new(o, "t", json_real((double)(t_ns - b->t0) / 1e9));
		for (unsigned c = 0; c < KL_BC__COUNT; c++)
			json_object_set_new(o, counter_names[c],
					    json_integer((json_int_t)(b->tot.c[c] - b->prev.c[c])));
		json_object_set_new(o, "errors", errors_json(b->tot.err, b->prev.err));
		json_object_set_new(o, "in_progress", json_integer(b->active));
		json_object_set_new(o, "done", json_integer(b->tot.done));
		json_object_set_new(o, "lat_us", kl_hist_json(&b->ilat, 0));
		if (out) {
			json_dumpf(o, out, JSON_COMPACT | JSON_REAL_PRECISION(7));
			fputc('\n', out);
			fflush(out);
		}
		json_decref(o);
	}
	b->prev = b->tot;
	kl_hist_reset(&b->ilat);
}

static void sync_totals(struct kl_burst *b)
{
	b->tot.in_progress = b->active;
	b->tot.c[KL_BC_OFFERED] = b->offer_cur;
}

void kl_burst_set_progress(struct kl_burst *b, FILE *f, uint32_t period_ms)
{
	b->progress = f;
	b->progress_every_ns = (uint64_t)(period_ms ? period_ms : 1) * 1000000ull;
	b->next_progress = 0;
	b->progress_len = 0;
	b->progress_ended = 0;
}

int kl_burst_progress_format(const struct kl_burst *b, uint64_t now_ns, char *buf, size_t len)
{
	double el = b->started && now_ns > b->t0 ? (double)(now_ns - b->t0) / 1e9 : 0;
	double rate = el > 0 ? b->tot.done / el : 0;
	uint32_t left = b->n - b->tot.done;
	char eta[32];

	if (!left)
		snprintf(eta, sizeof(eta), "done in %.1f s", el);
	else if (rate > 0)
		snprintf(eta, sizeof(eta), "ETA %.1f s", left / rate);
	else
		snprintf(eta, sizeof(eta), "ETA -");
	return snprintf(buf, len,
			"keyline-burst: %" PRIu32 "/%" PRIu32 " UEs done (%.1f%%), %.1f k/s, %" PRIu64
			" failed, %" PRIu32 " in progress, %s",
			b->tot.done, b->n, b->n ? 100.0 * b->tot.done / b->n : 100.0, rate / 1e3,
			b->tot.c[KL_BC_FAILED], b->active, eta);
}

static void progress_line(struct kl_burst *b, uint64_t now_ns, int last)
{
	char line[256];
	int n = kl_burst_progress_format(b, now_ns, line, sizeof(line));

	/* padded over a longer line before it; stderr is unbuffered, one write per line */
	fprintf(b->progress, "\r%-*s%s", b->progress_len, line, last ? "\n" : "");
	fflush(b->progress);
	b->progress_len = n < (int)sizeof(line) ? n : (int)sizeof(line) - 1;
}

void kl_burst_progress_end(struct kl_burst *b, uint64_t now_ns)
{
	if (!b->progress || b->progress_ended || !b->progress_len) /* none written yet */
		return;
	b->progress_ended = 1;
	progress_line(b, now_ns, 1);
}

/* UE j's try t timed out and another is allowed: the next server (several servers), then the
 * next try at once or after a random back-off. */
static void timed_out(struct kl_burst *b, uint32_t j, unsigned t, uint64_t now_ns)
{
	struct ent *e = &b->ent[j];

	if (b->nservers > 1) /* counted as moved when the next try goes out */
		e->srv = (uint8_t)((e->srv + 1u) % b->nservers);
	if (b->cfg.backoff_ms) {
		b->tot.c[KL_BC_BACKOFFS]++;
		wait_push(b, now_ns + kl_burst_jitter_ns(&b->rng, kl_burst_backoff_ns(b->cfg.backoff_ms, t)),
			  j);
		return;
	}
	if (!e->retx_queued && !ring_push(&b->retxq, j))
		e->retx_queued = 1;
}

int kl_burst_tick(struct kl_burst *b, uint64_t now_ns, FILE *out)
{
	if (!b->started)
		return 1;
	b->ntp = ntp_at(b, now_ns);
	for (unsigned t = 0; t < b->max_tries; t++) {
		while (b->thead[t] != NIL && b->slot[b->thead[t]].deadline_ns <= now_ns) {
			uint32_t s = b->thead[t], j = b->slot[s].ent;
			struct ent *e = &b->ent[j];

			timer_unlink(b, s);
			b->tot.c[KL_BC_TIMEOUTS]++;
			b->srv[b->slot[s].srv].timeouts++;
			if (e->state != ENT_ACTIVE)
				continue;
			if (e->tries < b->max_tries) {
				timed_out(b, j, b->slot[s].try, now_ns);
			} else {
				finish(b, j, KL_BF_TIMEOUT, 0, 0, now_ns);
			}
		}
	}
	while (b->nwait && b->wheap[0].at <= now_ns) {
		uint32_t j = wait_pop(b);

		if (b->ent[j].state == ENT_ACTIVE && !b->ent[j].retx_queued &&
		    !ring_push(&b->retxq, j))
			b->ent[j].retx_queued = 1;
	}
	while (b->offer_cur < b->n && b->t0 + b->start_ns[b->offer_cur] <= now_ns)
		b->offer_cur++;
	sync_totals(b);
	if (b->progress && now_ns >= b->next_progress && !b->progress_ended) {
		progress_line(b, now_ns, 0);
		b->next_progress = now_ns + b->progress_every_ns;
	}
	if (b->cfg.interval_ms) {
		uint64_t iv = (uint64_t)b->cfg.interval_ms * 1000000ull;

		while (now_ns >= b->next_report) {
			interval_line(b, b->next_report, out);
			b->next_report += iv;
		}
	}
	if (b->tot.done < b->n)
		return 1;
	kl_burst_progress_end(b, now_ns);
	/* the last, partial interval */
	if (b->cfg.interval_ms && (b->tot.c[KL_BC_SENT] != b->prev.c[KL_BC_SENT] ||
				   b->tot.done != b->prev.done || b->ilat.count))
		interval_line(b, now_ns, out);
	return 0;
}

uint64_t kl_burst_next_event(const struct kl_burst *b)
{
	uint64_t t = UINT64_MAX;

	if (!b->started)
		return 0;
	if (b->retxq.head != b->retxq.tail)
		return 0;
	if (b->cfg.interval_ms)
		t = b->next_report;
	if (b->nwait && b->wheap[0].at < t)
		t = b->wheap[0].at;
	for (unsigned k = 0; k < b->max_tries; k++)
		if (b->thead[k] != NIL && b->slot[b->thead[k]].deadline_ns < t)
			t = b->slot[b->thead[k]].deadline_ns;
	if (b->start_cur < b->n && b->active < b->inflight && b->t0 + b->start_ns[b->start_cur] < t)
		t = b->t0 + b->start_ns[b->start_cur];
	if (b->offer_cur < b->n && b->t0 + b->start_ns[b->offer_cur] < t)
		t = b->t0 + b->start_ns[b->offer_cur];
	return t;
}

void kl_burst_interrupt(struct kl_burst *b, uint64_t now_ns)
{
	b->interrupted = 1;
	for (uint32_t j = 0; j < b->n; j++)
		if (b->ent[j].state == ENT_ACTIVE || b->ent[j].state == ENT_IDLE)
			finish(b, j, KL_BF_INTERRUPTED, 0, 0, now_ns);
		else if (b->side && b->ent[j].state == ENT_PENDING) /* waiting for the other side */
			verdict(b, j, KL_BF_INTERRUPTED, 0, 0, now_ns);
	sync_totals(b);
}

/* ---- summary -------------------------------------------------------------------------------- */

static const char *mix_name(enum kl_burst_mix m, const char *a, const char *bname)
{
	return m == KL_BURST_MIX_BOTH ? "mix" : m == KL_BURST_MIX_B ? bname : a;
}

static int slo_p99_ok(const struct kl_burst *b)
{
	return !(b->cfg.slo_p99_us > 0) ||
	       (double)kl_hist_quantile(&b->lat, 0.99) / 1000.0 <= b->cfg.slo_p99_us;
}

static int all_ok(const struct kl_burst *b)
{
	return b->tot.c[KL_BC_VERIFIED] == b->n;
}

static int slo_complete_ok(const struct kl_burst *b)
{
	return !(b->cfg.slo_complete_s > 0) ||
	       (all_ok(b) && (double)(b->last_ok_ns - b->t0) / 1e9 <= b->cfg.slo_complete_s);
}

int kl_burst_exit_code(const struct kl_burst *b)
{
	return all_ok(b) && !b->interrupted && slo_p99_ok(b) && slo_complete_ok(b) ? 0 : 1;
}

static json_t *failures_json(const struct kl_burst *b)
{
	json_t *o = json_object(), *reasons = json_object(), *list = json_array();

	for (unsigned f = 1; reasons && f < KL_BF__COUNT; f++)
		if (b->tot.fail[f])
			json_object_set_new(reasons, fail_names[f], json_integer((json_int_t)b->tot.fail[f]));
	for (uint32_t i = 0; list && i < b->nfails; i++) {
		const struct failure *f = &b->fails[i];
		uint32_t j = f->ent;
		char id[2 * KL_POP_ID_MAX + 2];
		json_t *x;

		if (b->cfg.kind == KL_BURST_KIND_E2M)
			snprintf(id, sizeof(id), "%.*s/%.*s", b->ent[j].id_len, b->id[j],
				 b->e2m[j].ue_len, b->e2m[j].ue);
		else if (b->peer) /* UEa/UEb */
			snprintf(id, sizeof(id), "%.*s/%.*s", b->ent[j].id_len, b->id[j],
				 peer_of(b, j)->id_len, peer_of(b, j)->id);
		else if (b->side) /* this side's UE / the other's */
			snprintf(id, sizeof(id), "%.*s/%.*s", b->ent[j].id_len, b->id[j],
				 b->ent[j ^ 1].id_len, b->id[j ^ 1]);
		else
			snprintf(id, sizeof(id), "%.*s", b->ent[j].id_len, b->id[j]);
		x = json_pack("{s:I,s:s,s:s}", "ue", (json_int_t)b->cfg.first + j, "id", id, "reason",
			      fail_names[f->reason]);
		if (x && b->peer) /* the step that failed: UEa's kind 2 or UEb's kind 3 */
			json_object_set_new(x, "step", json_string(f->phase == 0 ? "session" : "kstar"));
		if (x && b->side) { /* the pair and the side (A: UEa / UE1, B: UEb / UE2) */
			json_object_set_new(x, "pair", json_integer(j / 2));
			json_object_set_new(x, "side", json_string(j & 1 ? "b" : "a"));
		}
		if (x && f->reason == KL_BF_ERROR_ANSWER) {
			json_object_set_new(x, "err", json_integer(f->err_no));
			json_object_set_new(x, "detail", json_integer(f->detail));
		}
		json_array_append_new(list, x);
	}
	if (!o)
		return NULL;
	json_object_set_new(o, "count", json_integer((json_int_t)b->tot.c[KL_BC_FAILED]));
	json_object_set_new(o, "by_reason", reasons ? reasons : json_null());
	json_object_set_new(o, "list", list ? list : json_null());
	json_object_set_new(o, "list_truncated", json_boolean(b->tot.c[KL_BC_FAILED] > b->nfails));
	return o;
}

static json_t *slo_json(double limit, double value, int ok)
{
	if (!(limit > 0))
		return json_null();
	return json_pack("{s:f,s:f,s:b}", "limit", limit, "value", value, "ok", ok);
}

/* DH / ProSe: pairs with both keys equal, the ERR 12/5 rounds a pair needed (both sides), the
 * time from a pair's first request to its second key; null for other kinds. */
static json_t *pairs_json(const struct kl_burst *b, double span)
{
	uint64_t ok = 0, waits = 0, wmax = 0;
	json_t *o;

	if (!b->side)
		return json_null();
	for (uint32_t k = 0; k < b->npairs; k++) {
		ok += b->ent[2 * k].state == ENT_OK && b->ent[2 * k + 1].state == ENT_OK;
		waits += b->pair[k].waits;
		if (b->pair[k].waits > wmax)
			wmax = b->pair[k].waits;
	}
	o = json_pack("{s:s,s:I,s:I,s:I,s:f}", "kind", kl_burst_kind_name(b->cfg.kind), "pairs",
		      (json_int_t)b->npairs, "ok", (json_int_t)ok, "failed",
		      (json_int_t)(b->npairs - ok), "pairs_per_s", span > 0 ? (double)ok / span : 0.0);
	if (!o)
		return json_null();
	json_object_set_new(o, "retries", json_pack("{s:I,s:f,s:I}", "total", (json_int_t)waits,
						    "mean", b->npairs ? (double)waits / b->npairs : 0.0,
						    "max", (json_int_t)wmax));
	json_object_set_new(o, "time_to_key_us", kl_hist_json(&b->pair_lat, 1));
	return o;
}

/* One row per server, in the order given (the I/O adds the addresses). */
static json_t *servers_json(const struct kl_burst *b)
{
	json_t *a = json_array();

	for (unsigned i = 0; a && i < b->nservers; i++) {
		const struct kl_burst_server_totals *t = &b->srv[i];

		json_array_append_new(a, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "index", (json_int_t)i,
						   "sent", (json_int_t)t->sent, "timeouts",
						   (json_int_t)t->timeouts, "answers",
						   (json_int_t)t->answers, "keys", (json_int_t)t->keys,
						   "moved_in", (json_int_t)t->moved_in));
	}
	return a ? a : json_null();
}

json_t *kl_burst_summary(const struct kl_burst *b, uint64_t now_ns)
{
	json_t *o = json_object(), *cnt = json_object(), *cfg;
	double elapsed = b->started ? (double)(now_ns - b->t0) / 1e9 : 0;
	double span = b->last_done_ns > b->t0 ? (double)(b->last_done_ns - b->t0) / 1e9 : elapsed;
	int ok = all_ok(b) && !b->interrupted;

	if (!o || !cnt) {
		json_decref(o);
		json_decref(cnt);
		return NULL;
	}
	for (unsigned c = 0; c < KL_BC__COUNT; c++)
		json_object_set_new(cnt, counter_names[c], json_integer((json_int_t)b->tot.c[c]));
	json_object_set_new(o, "type", json_string("summary"));
	json_object_set_new(o, "kind", json_string(kl_burst_kind_name(b->cfg.kind)));
	json_object_set_new(o, "mode", json_string(kl_burst_mode_name(b->cfg.mode)));
	json_object_set_new(o, "ues", json_integer(b->n));
	json_object_set_new(o, "ok", json_integer((json_int_t)b->tot.c[KL_BC_VERIFIED]));
	json_object_set_new(o, "failed", json_integer((json_int_t)(b->n - b->tot.c[KL_BC_VERIFIED])));
	json_object_set_new(o, "elapsed_s", json_real(elapsed));
	/* until the last UE holds its key; null when some never did */
	json_object_set_new(o, "complete_s",
			    ok ? json_real((double)(b->last_ok_ns - b->t0) / 1e9) : json_null());
	json_object_set_new(o, "finished_s", json_real(span));
	json_object_set_new(o, "requests_per_s",
			    json_real(span > 0 ? (double)b->tot.c[KL_BC_SENT] / span : 0));
	json_object_set_new(o, "answered_per_s",
			    json_real(span > 0 ? (double)b->tot.c[KL_BC_ANSWERED] / span : 0));
	json_object_set_new(o, "verified_per_s",
			    json_real(span > 0 ? (double)b->tot.c[KL_BC_VERIFIED] / span : 0));
	json_object_set_new(o, "verify", json_string(b->st ? "after" : "inline"));
	/* the work moved out of the timed run: before t0 (presigning, the answer store's memory)
	 * and after it (verifying the stored answers) */
	json_object_set_new(o, "prepare_s", b->pre || b->st ? json_real(b->prepare_s) : json_null());
	json_object_set_new(o, "verify_after_s", b->st ? json_real(b->verify_s) : json_null());
	json_object_set_new(o, "presign",
			    b->pre ? json_pack("{s:I,s:I,s:I}", "signed", (json_int_t)b->n, "used",
					       (json_int_t)b->pre_used, "stale", (json_int_t)b->pre_stale)
				   : json_null());
	json_object_set_new(o, "counters", cnt);
	/* HM: a session is a UE pair; it counts when both UEs opened the same Ks */
	json_object_set_new(
		o, "hm",
		b->peer ? json_pack("{s:I,s:I,s:f,s:I,s:I,s:I}", "sessions", (json_int_t)b->n, "agreed",
				    (json_int_t)b->tot.c[KL_BC_VERIFIED], "sessions_per_s",
				    span > 0 ? (double)b->tot.c[KL_BC_VERIFIED] / span : 0.0,
				    "kstar_fetched", (json_int_t)b->tot.c[KL_BC_KSTAR_FETCHED],
				    "kstar_cached", (json_int_t)b->tot.c[KL_BC_KSTAR_CACHED], "peer_ues",
				    (json_int_t)b->npeer)
			: json_null());
	json_object_set_new(o, "pairs", pairs_json(b, span));
	json_object_set_new(o, "servers", servers_json(b));
	json_object_set_new(o, "errors", errors_json(b->tot.err, NULL));
	json_object_set_new(o, "latency_us", kl_hist_json(&b->lat, 1));
	json_object_set_new(o, "ue_latency_us", kl_hist_json(&b->ue_lat, 1));
	json_object_set_new(o, "failures", failures_json(b));
	json_object_set_new(o, "slo",
			    json_pack("{s:o,s:o}", "p99_us",
				      slo_json(b->cfg.slo_p99_us,
					       (double)kl_hist_quantile(&b->lat, 0.99) / 1000.0,
					       slo_p99_ok(b)),
				      "complete_s",
				      slo_json(b->cfg.slo_complete_s,
					       ok ? (double)(b->last_ok_ns - b->t0) / 1e9 : -1,
					       slo_complete_ok(b))));
	cfg = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:s}", "first", (json_int_t)b->cfg.first,
			"inflight", (json_int_t)b->inflight, "timeout_ms", (json_int_t)b->cfg.timeout_ms,
			"retries", (json_int_t)b->cfg.retries, "sources", (json_int_t)b->cfg.sources,
			"seed", (json_int_t)b->cfg.seed, "skew_s", (json_int_t)b->cfg.skew_s, "prf",
			mix_name(b->cfg.prf, "mikey1", "sha256"), "crypto",
			kl_crypto_backend_name(b->c), "crypto_arch", kl_crypto_arch(b->c));
	if (cfg) {
		json_object_set_new(cfg, "servers", json_integer(b->nservers));
		json_object_set_new(cfg, "backoff_ms", json_integer(b->cfg.backoff_ms));
		if (b->cfg.mode == KL_BURST_MODE_BURST)
			json_object_set_new(cfg, "window_s", json_real(b->cfg.window_s));
		if (b->cfg.mode == KL_BURST_MODE_RATE || b->cfg.mode == KL_BURST_MODE_POISSON)
			json_object_set_new(cfg, "rate", json_real(b->cfg.rate));
		if (b->side) {
			json_object_set_new(cfg, "server_id", json_string(b->cfg.server_id));
			json_object_set_new(cfg, "peer_server_id", json_string(b->peer_server_id));
			json_object_set_new(cfg, "pair_timeout_ms",
					    json_integer((json_int_t)(b->pair_timeout_ns / 1000000ull)));
		} else if (b->peer) {
			json_object_set_new(cfg, "server_id", json_string(b->cfg.server_id));
			json_object_set_new(cfg, "peer_server_id", json_string(b->peer_server_id));
			json_object_set_new(cfg, "peer_first",
					    json_integer(b->cfg.has_peer_first ? b->cfg.peer_first
									       : b->cfg.first + 1));
			json_object_set_new(cfg, "peer_ues", json_integer(b->npeer));
			json_object_set_new(cfg, "pad", json_boolean(!b->cfg.hm_no_pad));
			/* K*a and K*b checked against the population's pair key too */
			json_object_set_new(cfg, "kstar_checked", json_boolean(b->kstar_a != NULL));
		} else if (b->cfg.kind == KL_BURST_KIND_MBMS) {
			json_object_set_new(cfg, "msk", json_string(b->cfg.msk == KL_BURST_MSK_NEXT
									    ? "next"
									    : "current"));
		} else {
			json_object_set_new(cfg, "e2m_target",
					    json_string(mix_name(b->cfg.e2m_target, "imsi", "appid")));
			json_object_set_new(cfg, "e2m_key",
					    json_string(mix_name(b->cfg.e2m_key, "newest", "id")));
		}
	}
	json_object_set_new(o, "config", cfg ? cfg : json_null());
	json_object_set_new(o, "interrupted", json_boolean(b->interrupted));
	json_object_set_new(o, "exit", json_integer(kl_burst_exit_code(b)));
	return o;
}
