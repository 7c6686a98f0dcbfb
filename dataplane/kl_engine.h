/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline request engine: serves a burst of MIKEY requests against the key table with all crypto
 * of the burst in batches, and the client side (request signing, response verification) that the
 * load generator, the tests and operators use. No packet I/O here.
 *
 * One struct kl_worker per worker thread: crypto context, replay cache, counters and scratch,
 * written by that thread only. kl_engine_serve never allocates, locks, logs or makes a syscall.
 */
#ifndef KL_ENGINE_H
#define KL_ENGINE_H

#include <stdint.h>

#include "kl_crypto.h"
#include "kl_mikey.h"
#include "kl_peer.h"
#include "kl_replay.h"
#include "kl_table.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_ENGINE_BURST 64

/* Per kind (KL_KIND_LIST): requests_<kind>, answered_<kind>, in kind order. */
#define KL_KIND_REQ_COUNTER(X, e, n, d) X(REQ_##e, "requests_" n, "well-formed " d)
#define KL_KIND_ANS_COUNTER(X, e, n, d) X(ANSWERED_##e, "answered_" n, "responses sent to " d)

/* Counters besides the drop reasons, defined once. */
#define KL_COUNTER_LIST(X)                                                                     \
	X(RX, "requests_received", "datagrams handed to the engine")                            \
	KL_KIND_LIST(KL_KIND_REQ_COUNTER, X)                                                    \
	KL_KIND_LIST(KL_KIND_ANS_COUNTER, X)                                                    \
	X(ERR_INVALID_TS, "error_invalid_ts", "error 1 sent: T outside the skew")               \
	X(ERR_NOT_AUTHORISED, "error_not_authorised", "error 7 sent: requester not authorised") \
	X(ERR_NO_SUCH_KEY, "error_no_such_key", "error 12/2 sent: no such group, UE or key id") \
	X(ERR_KEY_NOT_VALID, "error_key_not_valid", "error 12/3 sent: key not valid now")       \
	X(REPLAY_EVICTIONS, "replay_cache_evictions", "live replay entries pushed out when full")   \
	X(ERR_NOT_READY, "error_not_ready", "error 12/5 sent: waiting on a peer server or peer UE")   \
	X(S2S_ANSWERS, "s2s_answers", "answers from peer servers to our kind 6/7 requests, verified") \
	X(S2S_STALE, "s2s_stale", "answers from peer servers to requests no longer in flight")       \
	X(REPLAY_WINDOW, "replay_window_refused",                                                 \
	  "error 1 sent: T older than the replay cache still reaches (it could be a replay)")

enum kl_counter {
#define KL_X(e, n, d) KL_CNT_##e,
	KL_COUNTER_LIST(KL_X)
#undef KL_X
	KL_CNT__COUNT
};

const char *kl_counter_name(unsigned c);
const char *kl_counter_desc(unsigned c);

struct kl_engine_config {
	const uint8_t *idr; /* keyline's identity, 1..64 bytes (copied) */
	uint16_t idr_len;
	uint32_t skew_s;	     /* allowed |T - now|, default 60 */
	uint32_t predelivery_s;	     /* next MSK sent this long before it becomes valid, default 60 */
	uint32_t session_s;	     /* HM session lifetime (kind 2 valid-to), default 3600 */
	struct kl_replay *replay;    /* the replay cache shared by all workers of the server (not
				      * owned; kl_replay.h). NULL: the worker makes one of its own of
				      * replay_entries slots, which only sees what reaches this worker */
	uint32_t replay_entries;     /* slots of that own cache (power of two >= 4), default 2^22;
				      * 3 of every 4 hold entries (a 4th is the bucket's floor). A
				      * cache should hold rate x 2 x skew_s entries: a smaller one
				      * refuses old-but-valid T (replay_window_refused), it never lets
				      * a replay in */
	enum kl_crypto_backend backend;
	/* server-to-server (PROTOCOL.md sections 9, 10): the configured peers (not owned; counters
	 * move) and the state all workers of the server share (kl_s2s.h: rendezvous, peers'
	 * answers, requests in flight). NULL: kinds 4..7 only serve local UEs / are refused */
	struct kl_peers *peers;
	struct kl_s2s *s2s;
	uint16_t retry_after_ms; /* of ERR 12/5 answers (TLV 10), default 200 */
};

struct kl_worker_stats {
	uint64_t counter[KL_CNT__COUNT];
	uint64_t drop[KL_DROP__COUNT];
};

struct kl_worker;

/** Create a worker's state (reader id is its RCU reader slot in the table). NULL + errno on error. */
struct kl_worker *kl_worker_create(const struct kl_engine_config *cfg, struct kl_table *table,
				   unsigned reader);
void kl_worker_destroy(struct kl_worker *w);
/** The worker's counters (read by the control thread; 64-bit words, torn reads impossible). */
const struct kl_worker_stats *kl_worker_stats(const struct kl_worker *w);
/** The worker's crypto context (e.g. to log its architecture). */
struct kl_crypto *kl_worker_crypto(struct kl_worker *w);

struct kl_pkt {
	const uint8_t *in; /* request datagram (UDP payload) */
	uint8_t *out;	   /* answer buffer; may not overlap in */
	uint16_t in_len;
	uint16_t out_cap;
	uint16_t out_len; /* set: 0 = no answer (dropped) */
	uint8_t drop;	  /* set: enum kl_drop */
	uint8_t peer;	  /* set by the I/O before serving: 1 + index in the configured peers of the
			   * one whose address and port sent the datagram; 0 = no configured peer */
};

/**
 * Serve n (<= KL_ENGINE_BURST) requests at time now (NTP timestamp format). Each pkt gets an
 * answer (response or error message) or a drop reason; counters move accordingly.
 * @return the number of answers.
 */
unsigned kl_engine_serve(struct kl_worker *w, uint64_t now, struct kl_pkt *pkts, unsigned n);

/** A server-to-server message (kind 6 or 7 request) for the I/O to send to a configured peer. */
struct kl_s2s_msg {
	uint16_t peer; /* index in the configured peers: send to its address and port, from the
			* server's own UDP port */
	uint16_t len;
	uint8_t buf[KL_MIKEY_REQ_MAX];
};
#define KL_ENGINE_OUTBOX KL_ENGINE_BURST

/**
 * The server-to-server messages the worker's last kl_engine_serve or kl_engine_tick made (at most
 * KL_ENGINE_OUTBOX). Valid until the worker's next call of either; the I/O sends them all (a
 * message it cannot send is retried by the engine like a lost one).
 * @return how many, with *msgs pointing at them.
 */
unsigned kl_engine_outbox(struct kl_worker *w, const struct kl_s2s_msg **msgs);

/**
 * Retransmissions due at now (PROTOCOL.md section 10: 100 ms, doubling, 3 tries) into the
 * outbox. Call every loop turn after sending the outbox; cheap when nothing is due.
 */
void kl_engine_tick(struct kl_worker *w, uint64_t now);

/* ---- client side ------------------------------------------------------------------------------- */

/** A client's request, with what it needs to check the answer. */
struct kl_client_req {
	struct kl_mikey_req_spec spec; /* rand, id, ts, csb_id, prf, kind, ... */
	const uint8_t *psk;
	uint16_t psk_len;
	/* filled by kl_client_sign */
	uint8_t auth_key[KL_MIKEY_AUTH_KEY_LEN];
	uint8_t encr_key[KL_MIKEY_ENCR_KEY_LEN];
	uint8_t salt_key[KL_MIKEY_SALT_KEY_LEN];
	uint8_t *buf; /* datagram out */
	uint16_t cap;
	uint16_t len; /* set */
};

/** Build and MAC n requests in one crypto batch. @return n, or -errno (nothing usable). */
int kl_client_sign(struct kl_crypto *c, struct kl_client_req *reqs, unsigned n);

struct kl_client_result {
	struct kl_mikey_key keys[KL_MIKEY_MAX_KEYS]; /* point into plain */
	uint8_t plain[2 * (4 + KL_MIKEY_KEY_MAX + 5)];
	uint8_t nkeys;
	uint8_t is_error;
	uint8_t err_no;
	uint16_t detail;
	uint64_t server_ts;
	/* kind 2: token_a (TLV 7) and token_b (TLV 8), pointing into the answer; keys[0] is K*a and
	 * its key_id the session id */
	const uint8_t *token[2];
	uint16_t token_len[2];
	/* kind 4 (an answer without KEMAC, nkeys 0): TLV 9, the peer UE's X25519 public value (32
	 * bytes), pointing into the answer; NULL otherwise. Kind 5: keys[0] is p2 or p4 (32 bytes,
	 * SPI 0), its validity the rendezvous' (TLV 3: 0 || valid-from || valid-to). */
	const uint8_t *x25519;
	/* a verified error (ERR 12 detail 5: the answer is not ready) with TLV 10: when to retry */
	uint16_t retry_after_ms;
	uint8_t has_retry_after;
};

/**
 * Verify an answer to req: parses, checks the MAC with the request's auth_key, RAND echo, CSB ID,
 * PRF and server T within skew_s of now; decrypts KEMAC and returns the keys with ids and validity.
 * @return 0 (a response or a verified error: see res->is_error), or -EBADMSG (malformed),
 *         -EPERM (MAC), -EPROTO (RAND, CSB ID or PRF mismatch), -ETIME (server T outside skew).
 */
int kl_client_verify(struct kl_crypto *c, const struct kl_client_req *req, const uint8_t *ans,
		     uint16_t len, uint64_t now, uint32_t skew_s, struct kl_client_result *res);

/** One answer for kl_client_verify_burst. */
struct kl_client_check {
	const struct kl_client_req *req; /* the try it answers (spec and the three keys) */
	const uint8_t *ans;
	uint16_t len;
	uint64_t now;			/* NTP time to check the server's T against */
	struct kl_client_result *res;	/* out */
	int rc;				/* out: what kl_client_verify would return */
};

/**
 * kl_client_verify for n answers with the HMACs and the decryptions in crypto batches (what a
 * load generator needs at a million answers per second). Each check gets exactly the result and
 * rc that kl_client_verify(c, req, ans, len, now, skew_s, res) gives.
 * @return n, or -EINVAL (NULL arguments: nothing checked).
 */
int kl_client_verify_burst(struct kl_crypto *c, struct kl_client_check *chk, unsigned n,
			   uint32_t skew_s);

/** Opening an HM token (PROTOCOL.md section 9, kind 2) on the UE side. */
struct kl_hm_open {
	const uint8_t *kstar; /* 32 bytes: K*a (from kind 2's answer) or K*b (from kind 3's) */
	const uint8_t *token;
	uint16_t token_len;
	const uint8_t *vlra; /* the two servers, as the UE knows them: VLRa made the token */
	const uint8_t *vlrb;
	uint16_t vlra_len;
	uint16_t vlrb_len;
	const uint8_t *ue_a; /* the two UEs the session must be between */
	const uint8_t *ue_b;
	uint16_t ue_a_len;
	uint16_t ue_b_len;
	uint64_t now; /* NTP: the token's valid-to must be later */
	/* out */
	uint8_t ks[16]; /* the session key when rc is 0, else zero */
	uint64_t valid_to;
	int rc; /* 0; -EBADMSG (format); -EPERM (GCM tag: another key, other servers, altered);
		 * -EPROTO (the UEs are not ue_a and ue_b); -ETIME (valid-to has passed) */
};

/** Open n tokens with the GCM decryptions in one batch. @return n, or -EINVAL. */
int kl_client_hm_open_burst(struct kl_crypto *c, struct kl_hm_open *ops, unsigned n);

/**
 * Padding of a kind-2 request (PROTOCOL.md section 9): the answer carries two tokens, so with
 * short identities it would be more than 3x the request, and the server drops it. From the
 * identity lengths in s (id, peer_ue, peer_server; s's own padding is ignored) and the length of
 * the answering server's identity: the TLV 255 value length that keeps the answer within 3x.
 * @return the pad length (0..), -1 when no padding is needed, -EINVAL (not kind 2, no
 *         identities) or -ENOSPC (the padded request would exceed KL_MIKEY_REQ_MAX).
 */
int kl_client_hm_pad(const struct kl_mikey_req_spec *s, uint16_t idr_len);

/* ---- UE side of the DH VLR scheme (kind 4) and ProSe (kind 5), PROTOCOL.md sections 7, 9 ---- */

/** One UE's Ks of the DH scheme. */
struct kl_dh_op {
	const uint8_t *own_key; /* the UE's PSK Kx (its MUK), 1..KL_KDF_PARAM_MAX bytes */
	const uint8_t *peer_pub; /* P_peer, 32 bytes (TLV 9 of the kind-4 answer) */
	const uint8_t *id_a;	 /* the two UE identities, in either order */
	const uint8_t *id_b;
	uint16_t own_key_len;
	uint16_t la, lb;
	/* out */
	uint8_t ks[32]; /* zero unless rc is 0 */
	int rc;		/* 0; -EINVAL (arguments, equal identities); -EPERM (all-zero X25519
			 * result: a low-order peer value); -EIO */
};

/**
 * Ks = KDF(X25519(s_own, P_peer), FF08, ID_lo, ID_hi) for n UEs, with s_own = KDF(own key, FF07,
 * "dh-x25519") and the identities in bytewise ascending order (a prefix first). The KDFs run in
 * crypto batches; X25519 (OpenSSL) one at a time. Every op gets its rc.
 * @return n, or -EINVAL (NULL arguments: nothing computed).
 */
int kl_client_dh_ks_burst(struct kl_crypto *c, struct kl_dh_op *ops, unsigned n);

/** kl_client_dh_ks_burst for one UE. @return the op's rc. */
int kl_client_dh_ks(struct kl_crypto *c, const uint8_t *own_key, uint16_t own_key_len,
		    const uint8_t peer_pub[32], const uint8_t *id_a, uint16_t la,
		    const uint8_t *id_b, uint16_t lb, uint8_t ks[32]);

/** A UE's public value P = X25519(KDF(own key, FF07, "dh-x25519"), 9). @return 0, -EINVAL, -EIO. */
int kl_client_dh_public(struct kl_crypto *c, const uint8_t *own_key, uint16_t own_key_len,
			uint8_t pub[32]);

/** ProSe: p2 = KDF(KASME1, FF04, p1) (or p4 from KASME2 and p3). @return 0 or -EINVAL. */
int kl_client_prose_p(struct kl_crypto *c, const uint8_t *kasme, uint16_t kasme_len,
		      const uint8_t p_in[16], uint8_t p_out[32]);

/** ProSe: KD = KDF(p2, FF05, p4). @return 0 or -EINVAL. */
int kl_client_prose_kd(struct kl_crypto *c, const uint8_t p2[32], const uint8_t p4[32],
		       uint8_t kd[32]);

/** A ProSe derivation of kl_client_prose_burst: out = KDF(key, fc, in) with key and in as below. */
struct kl_prose_op {
	const uint8_t *key; /* KASME (p: key_len bytes, in 16 bytes) or p2 (kd: 32, in = p4, 32) */
	const uint8_t *in;
	uint16_t key_len;
	uint8_t kd;	   /* 0: p = KDF(KASME, FF04, p1 or p3); 1: KD = KDF(p2, FF05, p4) */
	uint8_t out[32];   /* out */
	int rc;		   /* out: 0 or -EINVAL */
};

/** n ProSe derivations (p and KD mixed) in crypto batches. @return n, or -EINVAL (NULL args). */
int kl_client_prose_burst(struct kl_crypto *c, struct kl_prose_op *ops, unsigned n);

/** NTP timestamp (seconds since 1900 << 32 | fraction) of the realtime clock. Not for the packet path's inner loop. */
uint64_t kl_ntp_now(void);

#ifdef __cplusplus
}
#endif
#endif
