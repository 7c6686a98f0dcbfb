/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the workers of one keylined share for the schemes where two servers exchange values
 * (PROTOCOL.md sections 9 and 10): the ProSe rendezvous (a pair's p2 and p4 until both UEs have
 * the other's), the cache of peers' answers to kind 6 (UEs' public values), and the
 * server-to-server requests in flight. A UE pair's two requests, or a request and the peer
 * server's answer to it, usually reach different workers, so none of this can be per worker.
 *
 * How workers share it, without a lock held across a burst and without ever waiting:
 *  - the rendezvous and the cache are hash tables of small buckets (8 entries), keyed by a
 *    128-bit SipHash (random key per process) of the pair or (peer, UE), each key in either of
 *    two buckets (two-choice hashing: one crowded bucket does not refuse a pair while the table
 *    has room); each bucket has a lock word that a worker takes with one compare-and-swap for
 *    the few stores of one request (a few hundred nanoseconds) and never spins on: when a word
 *    is taken the request is answered "not ready yet" (ERR 12/5 with retry-after: the UE
 *    retries anyway) and counted (contended). Taking both buckets, not one entry, keeps one
 *    pair in one entry;
 *  - a request in flight is one slot of the pending table, named in the request's CSB ID (slot
 *    index and generation), so the worker that receives the answer finds it directly; its slot
 *    word is taken the same way by that worker or by the owner (the worker that sent it, which
 *    alone retransmits).
 * DPDK's rte_hash with lock-free reads still serialises writers (and needs an EAL); handing each
 * pair to an owner worker through rte_ring would add a ring hop and a second burst per request
 * to every request of these kinds, and tie the socket I/O to DPDK. The try-locks keep each
 * request in its own worker's burst.
 *
 * Bounded: full tables refuse new entries (counted), entries expire. Keys (p2, p4) are zeroed
 * when an entry is reused or the table destroyed.
 */
#ifndef KL_S2S_H
#define KL_S2S_H

#include <stdint.h>

#include "kl_mikey.h"
#include "kl_table.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kl_s2s;

struct kl_s2s_stats {
	uint64_t rendezvous_used; /* entries not expired */
	uint64_t rendezvous_cap;
	uint64_t rendezvous_full; /* new pairs refused: their bucket was full */
	uint64_t cache_used;
	uint64_t cache_cap;
	uint64_t cache_full;
	uint64_t pending_used; /* server-to-server requests in flight */
	uint64_t pending_cap;
	uint64_t pending_full;	/* requests not sent: no free slot */
	uint64_t contended;	/* requests answered "not ready" because another worker held the bucket */
};

/* Requests in flight at most: a request's CSB ID names its slot in 16 bits. */
#define KL_S2S_PENDING_MAX 65536

/**
 * Create the shared state. rendezvous_entries and cache_entries: powers of two >= 64;
 * pending_entries: 16..KL_S2S_PENDING_MAX; rendezvous_s: a pair's lifetime; cache_s: how long a
 * peer's answer is kept. NULL + errno on error.
 */
struct kl_s2s *kl_s2s_create(uint32_t rendezvous_entries, uint32_t cache_entries,
			     uint32_t pending_entries, uint32_t rendezvous_s, uint32_t cache_s);
void kl_s2s_destroy(struct kl_s2s *s);
/** Occupancy and counters (any thread; a scan of the tables, about once a second at most). */
void kl_s2s_stats(const struct kl_s2s *s, struct kl_s2s_stats *st);

/* ---- the engine's side (dataplane/kl_kind_*.c) ------------------------------------------------ */

#define KL_S2S_VAL_LEN 32 /* p2, p4 */
#define KL_S2S_P_LEN 16	  /* p1, p3 */

enum kl_s2s_rv {
	KL_S2S_RV_READY, /* the other side's value is there (copied out) */
	KL_S2S_RV_WAIT,	 /* not yet */
	KL_S2S_RV_FULL,	 /* a new pair and no room: refused (counted) */
	KL_S2S_RV_BUSY,	 /* another worker held the bucket: try again (counted) */
};

/**
 * A local UE's contribution to pair (id1 = initiator, id2 = responder): side 0 (initiator: p1,
 * p2) or 1 (responder: p3, p4). A retry with the same p changes nothing; a different p replaces
 * the side's value and drops the other side's (a new establishment). *push is set when the value
 * is new and a peer server must be told (kind 7). *expires = the pair's end of life (NTP).
 */
enum kl_s2s_rv kl_s2s_rv_local(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
			       const uint8_t *id2, uint16_t l2, unsigned side,
			       const uint8_t p[KL_S2S_P_LEN], const uint8_t val[KL_S2S_VAL_LEN],
			       uint8_t other[KL_S2S_VAL_LEN], uint64_t *expires, int *push);
/** A peer server's push (kind 7): side's value for pair (id1, id2). A different value than the one
 * held replaces it and drops the other side's. */
enum kl_s2s_rv kl_s2s_rv_remote(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
				const uint8_t *id2, uint16_t l2, unsigned side,
				const uint8_t val[KL_S2S_VAL_LEN]);

/** A push of side's value val for pair (id1, id2) was given up (the peer never answered): the
 * side's value is forgotten (when it is still val), so that the UE's next retry, with the same p,
 * stores and pushes it again instead of waiting out the pair's lifetime. The other side's value
 * stays. Nothing happens when another worker holds the buckets (the UE then waits as before). */
void kl_s2s_rv_unpushed(struct kl_s2s *s, uint64_t now, const uint8_t *id1, uint16_t l1,
			const uint8_t *id2, uint16_t l2, unsigned side,
			const uint8_t val[KL_S2S_VAL_LEN]);

enum kl_s2s_pc {
	KL_S2S_PC_OK,	   /* the peer's public value for the UE (copied out) */
	KL_S2S_PC_NO_UE,   /* the peer answered: no such UE (12/2) */
	KL_S2S_PC_NO_DH,   /* the peer answered: the UE has no dh service (7/4) */
	KL_S2S_PC_WAIT,	   /* asked, no answer yet (or the asking failed: until it expires) */
	KL_S2S_PC_MISS,	   /* not asked yet: an entry is now reserved (WAIT); the caller asks */
	KL_S2S_PC_FULL,	   /* no room to remember the question: refused (counted) */
	KL_S2S_PC_BUSY,	   /* another worker held the bucket (counted) */
};

/** The cached answer of peer (index) about ue. */
enum kl_s2s_pc kl_s2s_pc_get(struct kl_s2s *s, uint64_t now, unsigned peer, const uint8_t *ue,
			     uint16_t len, uint8_t pub[32]);
/** Record the peer's answer (status OK/NO_UE/NO_DH: kept cache_s) or that asking failed
 * (KL_S2S_PC_WAIT: kept about 2 s, then asked again). @return 0, or -1 when another worker held
 * the bucket (nothing stored: try again later). */
int kl_s2s_pc_set(struct kl_s2s *s, uint64_t now, unsigned peer, const uint8_t *ue, uint16_t len,
		   enum kl_s2s_pc status, const uint8_t pub[32]);

/* A server-to-server request in flight (kind 6 or 7), as kept between its tries. */
struct kl_s2s_req {
	uint8_t kind; /* KL_KIND_PEERPV or KL_KIND_PUSH */
	uint8_t peer; /* index in the configured peers */
	uint8_t role; /* kind 7: role of the UE whose value it is */
	uint8_t id_len[2];
	uint8_t id[2][KL_MIKEY_ID_MAX]; /* kind 6: [0] the UE asked for; kind 7: [0] source, [1] peer UE */
	uint8_t val[KL_S2S_VAL_LEN];	/* kind 7: p2 or p4 */
	struct kl_psk_chunk psk;	/* the pair's s2s PSK (re-signs each try) */
};

#define KL_S2S_TRIES 3 /* tries of a request (PROTOCOL.md section 10: 100 ms, doubling) */

/* A request's tries, between sending and the answer: the answer to any try sent is the answer
 * (a peer slower than the back-off answers an earlier try after the next went out). */
struct kl_s2s_try {
	uint8_t rand[KL_S2S_TRIES][KL_MIKEY_RAND_LEN];
	uint8_t auth_key[KL_S2S_TRIES][KL_MIKEY_AUTH_KEY_LEN];
	uint64_t deadline; /* NTP: no answer by then -> the next try */
	uint8_t tries;	   /* sent so far */
	uint8_t prf;
};

/** Reserve a slot for req owned by worker owner. @return slot index, or -1 (full, counted). */
int kl_s2s_pd_add(struct kl_s2s *s, unsigned owner, const struct kl_s2s_req *req);
/** CSB ID naming slot idx's current generation (what the request carries). */
uint32_t kl_s2s_pd_csb(const struct kl_s2s *s, unsigned idx);
/** Take the slot csb names (index and generation) for an update: its request and try. @return 1
 * taken (release with kl_s2s_pd_put), 0 held by another worker this instant, -1 gone (freed, or
 * another generation). */
int kl_s2s_pd_take(struct kl_s2s *s, uint32_t csb, struct kl_s2s_req **req,
		   struct kl_s2s_try **try_);
/** Release a taken slot: keep (in flight) or free it (answered / given up). */
void kl_s2s_pd_put(struct kl_s2s *s, uint32_t csb, int keep);

#ifdef __cplusplus
}
#endif
#endif
