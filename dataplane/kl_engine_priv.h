/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inside the request engine: a worker's state, what a request carries between the burst's
 * stages, and the kinds table. A request kind is one row (struct kl_kind_ops), written in its own
 * file (kl_kind_<name>.c); the burst loop in kl_engine.c runs the rows' steps for all kinds of a
 * burst together and knows no kind by name. Private to dataplane/.
 */
#ifndef KL_ENGINE_PRIV_H
#define KL_ENGINE_PRIV_H

#include "kl_engine.h"
#include "kl_replay.h"
#include "kl_s2s.h"

#define KL_KIND_MAX_LOOKUPS 2
#define KL_KIND_MAX_KDF 2  /* KDF ops one request may add to the burst's batch */
#define KL_KIND_MAX_SEAL 2 /* GCM seals one request may add */
#define KL_RND_BUF 4096	   /* per-worker CSPRNG bytes, refilled in bulk */
/* Server-to-server requests in flight one worker retransmits: all of the pending table may be
 * one worker's (a smaller list refused requests the table had room for, and counted nothing). */
#define KL_WORKER_OWN KL_S2S_PENDING_MAX

/* What a request needs between stages. The kind-specific part is a union: one kind's fields. */
struct job {
	struct kl_hmac_key psk[KL_TABLE_PSK_CHUNKS];
	struct kl_hmac_key auth;
	uint8_t auth_key[KL_MIKEY_AUTH_KEY_LEN];
	uint8_t encr_key[KL_MIKEY_ENCR_KEY_LEN];
	uint8_t salt_key[KL_MIKEY_SALT_KEY_LEN];
	uint8_t mac[KL_SHA1_LEN];
	struct kl_mikey_key keys[KL_MIKEY_MAX_KEYS];
	struct kl_mikey_layout lay;
	const void *requester;	   /* the entry of the kind's requester table */
	struct kl_replay_ref rref; /* its place in the replay cache, prefetched */
	uint8_t nkeys;
	uint8_t err_no;
	uint16_t detail;
	union {
		struct {
			uint8_t gkey[5];
		} mbms;
		struct {
			struct kl_hmac_key pair;	  /* K(own identity, peer server) */
			struct kl_kdf_param kdfp[2];	  /* IDUEa, IDUEb */
			uint8_t kstar[2][32];		  /* K*a, K*b (kind 3: K*b in [0]) */
			uint8_t ks[16];			  /* kind 2: the session key */
			uint8_t nonce[2][KL_GCM_IV_LEN];  /* of token_a, token_b */
			uint8_t aad[3 + 2 * KL_MIKEY_ID_MAX];
			uint16_t aad_len;
			uint16_t pt_len;		  /* of each token's plaintext */
			uint16_t tok_off[2];		  /* token values in the answer */
			uint32_t sid;			  /* session id */
			uint64_t pair_expires;
		} hm;
		struct {
			struct kl_hmac_key kasme;   /* kind 5: the UE's PSK as KDF key */
			struct kl_kdf_param kdfp;
			const struct kl_pair *pair; /* the peer server's pair entry (remote) */
			int peer;		    /* index in the peers; -1: the peer UE is local */
			uint64_t expires;	    /* kind 5: the rendezvous entry's end */
			uint8_t pub[32];	    /* kinds 4, 6: the public value answered */
			uint8_t own[32];	    /* kind 5: this UE's p2/p4; kind 7: the value pushed */
			uint8_t other[32];	    /* kind 5: the other side's */
		} s2s;
		struct {
			struct kl_hmac_key e2m_int;
			struct kl_kdf_param kdfp[2];
			const struct kl_e2m_key *e2m;
			const char *imsi;
			uint8_t imsi_len;
			uint8_t e2m_key[32];
		} e2m;
	} k;
};

struct kl_worker {
	struct kl_worker_stats st;
	struct kl_crypto *c;
	struct kl_table *t;
	struct kl_replay *replay;
	int own_replay; /* created for this worker alone (no shared cache configured) */
	uint64_t skew;
	uint64_t predelivery;
	uint64_t session;	     /* HM session lifetime (NTP units) */
	uint64_t now;		     /* of the burst being served */
	enum kl_table_kind req_kind; /* requester lookup in progress */
	unsigned lookup_kind;	     /* kind whose key-selection lookup is in progress */
	unsigned lookup_step;
	enum kl_table_kind req_tables[KL_KIND__COUNT]; /* the kinds' requester tables, each once */
	unsigned n_req_tables;
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
	struct kl_kdf_op kop[KL_ENGINE_BURST * KL_KIND_MAX_KDF];
	struct kl_gcm_op gop[KL_ENGINE_BURST * KL_KIND_MAX_SEAL];
	unsigned rnd_pos;
	uint8_t rnd[KL_RND_BUF];
	/* server-to-server */
	struct kl_peers *peers;
	struct kl_s2s *s2s;
	uint16_t retry_ms;	 /* retry-after of ERR 12/5 */
	uint64_t next_tick;	 /* NTP: the next look at own requests in flight */
	unsigned nout;
	unsigned nown;
	uint32_t own[KL_WORKER_OWN]; /* CSB IDs of requests this worker sent and retransmits */
	struct kl_s2s_msg outbox[KL_ENGINE_OUTBOX];
	const uint8_t *akeys[KL_ENGINE_BURST];
	uint16_t alens[KL_ENGINE_BURST];
	struct kl_hmac_key astates[KL_ENGINE_BURST];
} __attribute__((aligned(64)));

/* One table lookup of a kind's key selection: key_of gives the key of request i (0: this request
 * needs none), take gets the entry found (NULL: none). Both see only live requests of the kind
 * without an error so far. */
struct kl_kind_lookup {
	enum kl_table_kind table;
	int (*key_of)(struct kl_worker *w, unsigned i, struct kl_table_key *k);
	void (*take)(struct kl_worker *w, unsigned i, const void *entry);
};

/* A request kind: one row of the kinds table. */
struct kl_kind_ops {
	/* a parsed request of the kind enters the burst: reset the kind's part of the job; NULL =
	 * nothing to reset */
	void (*start)(struct job *j);
	/* the requester (IDi) is an entry of this table; its PSK chunks */
	enum kl_table_kind requester;
	void (*psk)(const void *entry, const struct kl_psk_chunk **chunk, unsigned *nchunks);
	/* after the MAC, skew and replay checks: may the requester ask this (sets the job's error)?
	 * NULL = yes */
	void (*authorise)(struct kl_worker *w, unsigned i);
	/* key selection, in order (each one bulk lookup over the burst) */
	struct kl_kind_lookup lookup[KL_KIND_MAX_LOOKUPS];
	unsigned nlookups;
	/* derivations of the selected keys: puts up to KL_KIND_MAX_KDF KDF ops for request i into
	 * op, @return how many. NULL = none; the burst's KDF ops of all kinds are one batch */
	unsigned (*kdf)(struct kl_worker *w, unsigned i, struct kl_kdf_op *op);
	/* after the KDF batch, before answers are built: exchanges with the shared server-to-server
	 * state (may set the job's error). NULL = none */
	void (*settle)(struct kl_worker *w, unsigned i);
	/* the answer to request i (no error) into p->out: NULL = the plain response of its keys.
	 * @return as kl_mikey_build_resp; the job's lay is set */
	int (*build)(struct kl_worker *w, unsigned i, struct kl_pkt *p);
	/* after the answer is built: up to KL_KIND_MAX_SEAL GCM seals into the answer out, @return
	 * how many. NULL = none; one batch for the burst */
	unsigned (*seal)(struct kl_worker *w, unsigned i, uint8_t *out, struct kl_gcm_op *op);
};

extern const struct kl_kind_ops kl_kind_mbms;
extern const struct kl_kind_ops kl_kind_e2m;
extern const struct kl_kind_ops kl_kind_hm;
extern const struct kl_kind_ops kl_kind_kstar;
extern const struct kl_kind_ops kl_kind_dh;
extern const struct kl_kind_ops kl_kind_prose;
extern const struct kl_kind_ops kl_kind_peerpv;
extern const struct kl_kind_ops kl_kind_push;

/* Server-to-server messages (kl_kind_s2s.c): an answer from a peer server to one of ours (data
 * type 1 or 6, from a configured peer's address): verified and recorded; never answered. */
void kl_s2s_answer(struct kl_worker *w, struct kl_pkt *p);

/* A UE's PSK (its MUK): the requester of kinds 0, 2 and 3. */
static inline void kl_ue_psk(const void *e, const struct kl_psk_chunk **chunk, unsigned *n)
{
	const struct kl_ue *ue = e;

	*chunk = ue->chunk;
	*n = ue->nchunks;
}

/** n bytes of the worker's CSPRNG buffer (refilled in bulk). @return NULL when the CSPRNG failed. */
const uint8_t *kl_worker_random(struct kl_worker *w, unsigned n);

/* Shared by the kinds' files. */
static inline void kl_job_error(struct job *j, uint8_t err_no, uint16_t detail)
{
	j->err_no = err_no;
	j->detail = detail;
}

#endif
