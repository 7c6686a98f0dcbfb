/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst core: what the load generator does besides packet I/O, shared by the DPDK and
 * the kernel-socket front ends. The simulated population (UEs asking for their group's MSK, or
 * EMSEs fetching e2m keys) comes from a kl_population parameter file, so the expected key of
 * every request is known without the server's help. The core schedules each UE's first try
 * (rekey burst, constant rate, Poisson, as fast as possible), signs requests in batches,
 * retransmits on timeout with exponential back-off (new RAND, every try stays verifiable),
 * verifies every answer, and keeps the statistics (interval lines and the final summary).
 *
 * To measure a server faster than one client core can sign and verify, the crypto can leave the
 * timed loop: presign signs every UE's first try before t0 (retransmissions are still signed when
 * due), and verify_after only matches each answer to its try in the loop and keeps a copy, which
 * kl_burst_verify_stored checks after the run with exactly the inline checks and verdicts.
 *
 * Time is a monotonic nanosecond count chosen by the front end (TSC or CLOCK_MONOTONIC).
 * No key is ever printed: failures name UE indices and identities only.
 */
#ifndef KL_BURST_H
#define KL_BURST_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "kl_crypto.h"
#include "kl_mikey.h"
#include "kl_population.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- latency histogram: log-linear buckets, exact count, sum, min and max ------------------ */

/* 32 sub-buckets per power of two: a bucket is at most 1/32 (3.1 %) of its lower bound wide. */
#define KL_HIST_SUB_BITS 5
#define KL_HIST_SUB (1u << KL_HIST_SUB_BITS)
#define KL_HIST_BUCKETS (KL_HIST_SUB + (64 - KL_HIST_SUB_BITS) * KL_HIST_SUB)

struct kl_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min; /* UINT64_MAX while empty */
	uint64_t max;
	uint64_t b[KL_HIST_BUCKETS];
};

/** Empty the histogram. */
void kl_hist_reset(struct kl_hist *h);
/** Count one value (ns for latencies). */
void kl_hist_add(struct kl_hist *h, uint64_t v);
/** Bucket of a value. */
unsigned kl_hist_index(uint64_t v);
/** Bounds [lo, hi) of bucket i (hi saturates at UINT64_MAX for the last one). */
void kl_hist_bounds(unsigned i, uint64_t *lo, uint64_t *hi);
/**
 * Value at quantile q (0..1): the sample of rank ceil(q * count) (at least 1) lies in the bucket
 * this reports from; the result is that bucket's largest value clamped to [min, max], so it is
 * within one bucket width above the exact sample, and exact for q = 1 (max). 0 when empty.
 */
uint64_t kl_hist_quantile(const struct kl_hist *h, double q);

/* ---- schedule ------------------------------------------------------------------------------- */

enum kl_burst_mode {
	KL_BURST_MODE_BURST,   /* every UE starts at a uniform random offset in [0, window) */
	KL_BURST_MODE_RATE,    /* UE i starts at i / rate */
	KL_BURST_MODE_POISSON, /* exponential gaps of mean 1 / rate */
	KL_BURST_MODE_MAX,     /* all at once, bounded by the in-flight limit */
};

/** "burst", "rate", "poisson", "max". */
const char *kl_burst_mode_name(enum kl_burst_mode m);

/**
 * Start times (ns after t0, non-decreasing) of n UEs and the UE index starting at each: order is
 * a permutation of 0..n-1 (identity except for burst mode). Deterministic in seed.
 * @return 0, or -EINVAL (window <= 0 in burst mode, rate <= 0 in rate/poisson mode).
 */
int kl_burst_schedule(enum kl_burst_mode m, uint32_t n, double window_s, double rate,
		      uint64_t seed, uint64_t *start_ns, uint32_t *order);

/** Timeout of try t (0 = first): timeout_ms * 2^t, capped at KL_BURST_BACKOFF_CAP_MS. */
#define KL_BURST_BACKOFF_CAP_MS 3600000ull
uint64_t kl_burst_backoff_ns(uint32_t timeout_ms, unsigned t);
/**
 * A random back-off, uniform in [0, max_ns), from a splitmix64 stream (deterministic in *state,
 * which it advances). 0 when max_ns is 0.
 */
uint64_t kl_burst_jitter_ns(uint64_t *state, uint64_t max_ns);

/* ---- the core ------------------------------------------------------------------------------- */

#define KL_BURST_MAX_RETRIES 10
#define KL_BURST_TX_MAX 64 /* requests signed per kl_burst_next */
#define KL_BURST_DGRAM_MAX 512

enum kl_burst_kind {
	KL_BURST_KIND_MBMS, /* UEs ask for their key group's MSK */
	KL_BURST_KIND_E2M,  /* EMSEs fetch the e2m_key of an IMSI or application identity */
	KL_BURST_KIND_HM,   /* UE pairs set up HM sessions (PROTOCOL.md section 9, kinds 2 and 3) */
	KL_BURST_KIND_DH,   /* UE pairs get each other's X25519 public value (kind 4), derive Ks */
	KL_BURST_KIND_PROSE, /* UE pairs exchange p2/p4 through their servers (kind 5), derive KD */
	KL_BURST_KIND_NAF,   /* devices fetch Ks_local_MT over HTTPS (kl_burst_naf.h, not the core) */
};

enum kl_burst_msk {
	KL_BURST_MSK_CURRENT, /* key number 0: whatever MSK the server should hand out now */
	KL_BURST_MSK_NEXT,    /* the next MSK by its key number (pre-delivery) */
};

enum kl_burst_mix {
	KL_BURST_MIX_A,	  /* e2m target: IMSI; e2m key: the newest; prf: MIKEY-1 */
	KL_BURST_MIX_B,	  /* application identity; by key identifier; PRF-HMAC-SHA-256 */
	KL_BURST_MIX_BOTH, /* alternate by UE index */
};

struct kl_burst_config {
	enum kl_burst_kind kind;
	enum kl_burst_mode mode;
	uint32_t first;	    /* first population index */
	uint32_t ues;	    /* simulated UEs (fetches for e2m); 0 = the whole population */
	double window_s;    /* burst mode */
	double rate;	    /* rate and poisson modes: first tries per second */
	uint32_t inflight;  /* UEs in progress at once (0 = default) */
	uint32_t timeout_ms;
	uint32_t retries;   /* retransmissions after the first try, 0..KL_BURST_MAX_RETRIES */
	uint32_t interval_ms; /* interval lines; 0 = none */
	uint64_t seed;
	uint32_t skew_s;    /* accepted |server T - now| of responses */
	uint32_t sources;   /* UE i uses source address i % sources */
	enum kl_burst_msk msk;
	enum kl_burst_mix prf;
	enum kl_burst_mix e2m_target;
	enum kl_burst_mix e2m_key;
	double slo_p99_us;     /* 0 = none */
	double slo_complete_s; /* 0 = none */
	uint32_t fail_list_max;
	enum kl_crypto_backend backend;
	int presign;	  /* sign every first try in kl_burst_create; older than skew_s / 2: re-signed */
	int verify_after; /* match answers in the loop, verify them in kl_burst_verify_stored */
	/* dh, prose: a side whose answer carried the value the population says the other UE has
	 * ends its tries; its Ks / KD (X25519 for dh: ~40 us each) is derived and the pair decided
	 * in kl_burst_verify_stored, at the time of the pair's last answer. For measuring a server:
	 * the client's X25519 would otherwise bound a dh run at ~25 k answers/s per core */
	int ks_after;
	/* E2M: the population's e2m_int_keys may be replaced during the run (same IMSI and key id)
	 * by the keys the same population has under alt_seed (keyline-hss-sim bulk --kind
	 * replace): an e2m_key derived from either is correct; those from the alternate key are
	 * counted as alt_key. Any other key fails the UE (wrong_key). */
	int has_alt_seed;
	uint64_t alt_seed;
	/* HM: "UE" j of the run is a UE pair. UEa = population UE first + j asks the server (VLRa,
	 * identity server_id) for a session with UEb = population UE (peer_first + j % peer_ues) %
	 * the population's UEs, served by the peer server (VLRb, peer_server_id; the same server
	 * when peer_server_id is empty). UEb fetches K*b from VLRb (kind 3) once and keeps it for
	 * later tokens (a cache per UEb: a run has one peer server); pairs that need a K*b already
	 * being fetched wait for it. A pair is verified when token_a (opened by UEa with K*a) and
	 * token_b (opened by UEb with K*b) give the same Ks. */
	char server_id[KL_MIKEY_ID_MAX + 1];
	char peer_server_id[KL_MIKEY_ID_MAX + 1];
	uint32_t peer_first;  /* has_peer_first; otherwise first + 1: UEb of pair j is UEa of j + 1 */
	int has_peer_first;
	uint32_t peer_ues;    /* distinct UEbs; 0 = one per pair */
	int hm_no_pad;	      /* send kind-2 requests unpadded (to see the server's 3x rule drop them) */
	/* DH and ProSe: "UE" 2k and 2k + 1 of the run are the two sides of pair k: side A =
	 * population UE first + 2k (UEa; ProSe: UE1, the initiator) at the server (server_id),
	 * side B = first + 2k + 1 (UEb; UE2, the responder) at the peer server (peer_server_id; the
	 * same server when empty). ues counts pairs. Both sides start together; an ERR 12/5
	 * answer (the peer's value is not there yet) is followed by a new try (same p for ProSe,
	 * fresh RAND and T) after the answer's retry-after, until pair_timeout_ms after the pair's
	 * first request. A pair is verified when both sides derived the same Ks (KD), each from the
	 * value the population says the other UE has. */
	uint32_t pair_timeout_ms; /* 0 = KL_BURST_PAIR_TIMEOUT_MS */
	/* Several servers (mbms, e2m): one logical server on several nodes, any of which answers
	 * any UE. UE j's first try goes to server j % servers; after a timeout the UE moves on to
	 * the next server (its next try counted as moved), so a dead node costs retries, not UEs.
	 * Answers are taken from any of them (a late one to an earlier try too). 0 = 1. */
	uint32_t servers;
	/* The random back-off of a UE between a timeout and its next try: uniform in
	 * [0, backoff_ms * 2^t) after try t timed out (so that UEs whose tries were lost together,
	 * e.g. to a node that died, do not come back together). 0 = the next try at once. */
	uint32_t backoff_ms;
};

#define KL_BURST_SERVERS_MAX 16

/* the rendezvous lifetime of PROTOCOL.md section 9 (default 30 s) */
#define KL_BURST_PAIR_TIMEOUT_MS 30000u
/* when an ERR 12/5 carries no retry-after */
#define KL_BURST_RETRY_AFTER_DEFAULT_MS 100u

/** Whether the kind simulates UE pairs whose two sides each ask their own server (dh, prose). */
int kl_burst_kind_pairs(enum kl_burst_kind k);

/** Defaults: mbms, burst over 1 s, timeout 200 ms, 3 retries, 100 ms intervals, seed 1. */
void kl_burst_config_defaults(struct kl_burst_config *c);

/* Statistics, defined once: interval lines and the summary print them under these names. */
#define KL_BURST_COUNTER_LIST(X)                                                                    \
	X(OFFERED, "offered", "UEs whose scheduled start time came")                               \
	X(STARTED, "started", "UEs that sent their first try")                                     \
	X(SENT, "sent", "requests handed to the I/O (first tries and retransmissions)")            \
	X(TX_DROPPED, "tx_dropped", "requests the device or socket did not take (they time out)") \
	X(RETRANSMISSIONS, "retransmissions", "tries after the first")                             \
	X(TIMEOUTS, "timeouts", "tries whose answer did not come in time")                         \
	X(ANSWERED, "answered", "authentic answers (MAC verified) to a live try")                 \
	X(ALT_KEY, "alt_key", "correct answers carrying the e2m_key of the alternate seed")      \
	X(MATCHED, "matched", "answers to a live try kept for verification after the run")         \
	X(VERIFIED, "verified", "UEs that got a verified, correct key")                            \
	X(FAILED, "failed", "UEs that finished without a correct key")                            \
	X(ERROR_ANSWERS, "error_answers", "verified MIKEY error messages")                         \
	X(RESYNCS, "resyncs", "invalid-timestamp errors answered by a fresh try (clock resync)")  \
	X(MALFORMED, "malformed", "answers that do not parse as a MIKEY response or error")       \
	X(BAD_MAC, "bad_mac", "answers naming a live try whose MAC did not verify")                \
	X(UNKNOWN, "unknown", "answers for no request of this run")                               \
	X(DUPLICATE, "duplicate", "answers for a try of a UE that already holds its key")         \
	X(MOVED, "moved", "tries sent to another server than the UE's previous try (after a timeout)") \
	X(BACKOFFS, "backoffs", "timeouts followed by a random back-off before the next try")     \
	X(KSTAR_FETCHED, "kstar_fetched", "hm: K*b fetched from the peer server (kind 3)")         \
	X(KSTAR_CACHED, "kstar_cached", "hm: token_b opened with a K*b fetched before")           \
	X(WAITS, "waits", "dh/prose: ERR 12/5 answers, each followed by a new try after its retry-after") \
	X(LATE, "late", "answers for a try of a UE that already failed")                           \
	X(RX_OTHER, "rx_other", "frames or datagrams that were not UDP answers from the server")

enum kl_burst_counter {
#define KL_X(e, n, d) KL_BC_##e,
	KL_BURST_COUNTER_LIST(KL_X)
#undef KL_X
	KL_BC__COUNT
};

/** Name of a counter in the JSON output; "unknown" out of range. */
const char *kl_burst_counter_name(unsigned c);

/* Why a UE failed, defined once. */
#define KL_BURST_FAIL_LIST(X)                                                                  \
	X(NONE, "none", "not failed")                                                          \
	X(TIMEOUT, "timeout", "no authentic answer to any try")                                \
	X(ERROR_ANSWER, "error_answer", "the server answered with a verified error message") \
	X(WRONG_KEY, "wrong_key", "the key, its identifier or its validity is not the expected one") \
	X(BAD_ANSWER, "bad_answer", "an authentic answer that does not follow the profile")    \
	X(SERVER_TIME, "server_time", "the response's T is outside the allowed skew")          \
	X(INTERNAL, "internal", "the client could not build or check the request")            \
	X(BAD_MAC, "bad_mac", "verify-after: the answer that ended the UE failed its MAC check")  \
	X(BAD_TOKEN, "bad_token", "hm: a token did not open (tag, servers, UEs or valid-to)")      \
	X(KS_MISMATCH, "ks_mismatch", "hm, dh, prose: the two UEs of a pair derived different keys") \
	X(PAIR_TIMEOUT, "pair_timeout", "dh/prose: still ERR 12/5 when the pair timeout ran out")  \
	X(PEER_FAILED, "peer_failed", "dh/prose: the other UE of the pair failed")                 \
	X(INTERRUPTED, "interrupted", "the run was stopped before the UE finished")

enum kl_burst_fail {
#define KL_X(e, n, d) KL_BF_##e,
	KL_BURST_FAIL_LIST(KL_X)
#undef KL_X
	KL_BF__COUNT
};

/** "mbms", "e2m", "hm", "dh", "prose", "naf" (--kind and the summary's kind); "unknown" out of range. */
const char *kl_burst_kind_name(enum kl_burst_kind k);

/** Name of a failure reason in the JSON output; "unknown" out of range. */
const char *kl_burst_fail_name(unsigned f);

struct kl_burst_totals {
	uint64_t c[KL_BC__COUNT];
	uint64_t err[256]; /* verified error messages by ERR number */
	uint64_t fail[KL_BF__COUNT];
	uint32_t ues, done, in_progress;
};

/** A request to send: data stays valid until the next kl_burst_next. */
struct kl_burst_dgram {
	const uint8_t *data;
	uint32_t slot;	 /* the core's */
	uint32_t source; /* source address index, 0..sources-1 */
	uint16_t len;
	uint8_t server;	 /* 0: the server; 1: the peer server (hm: K* fetches of UEbs; dh/prose: side B);
			  * with several servers (cfg.servers > 1): the server's index */
	uint8_t sent;	 /* set by the I/O: 1 when the device or socket took it */
};

struct kl_burst;

/**
 * Build the simulated population: identities, PSKs and every expected key (precomputed here, so
 * the loop does no population HMACs).
 * @return the core, or NULL with err filled (bad configuration for this population, ENOMEM).
 */
struct kl_burst *kl_burst_create(const struct kl_burst_config *cfg, const struct kl_pop_params *pop,
				 char *err, size_t errlen);
/** Wipe every key and free. NULL is accepted. */
void kl_burst_destroy(struct kl_burst *b);
/** The UEs this run simulates. */
uint32_t kl_burst_ues(const struct kl_burst *b);

/** t0: scheduled start times count from here. */
void kl_burst_start(struct kl_burst *b, uint64_t now_ns);
/**
 * Sign up to max (<= KL_BURST_TX_MAX) requests that are due: retransmissions first, then UEs
 * whose start time came while fewer than the in-flight limit are in progress.
 * @return the number of datagrams in out.
 */
unsigned kl_burst_next(struct kl_burst *b, uint64_t now_ns, struct kl_burst_dgram *out,
		       unsigned max);
/** The I/O tried to send d[0..n) at now (d[i].sent says which went out); timers start here. */
void kl_burst_sent(struct kl_burst *b, const struct kl_burst_dgram *d, unsigned n, uint64_t now_ns);
/** One UDP payload that came from the server's address and port. Never fails on garbage. */
void kl_burst_answer(struct kl_burst *b, const uint8_t *p, uint16_t len, uint64_t now_ns);
/**
 * n payloads received together (p[i], len[i] bytes): the same as kl_burst_answer on each in
 * order, with the verifications in crypto batches.
 */
void kl_burst_answers(struct kl_burst *b, const uint8_t *const p[], const uint16_t len[],
		      unsigned n, uint64_t now_ns);
/**
 * verify_after: verify every answer kept during the run, as kl_burst_answer would have, and give
 * those UEs their verdicts (counters, failures, latencies). Call once after the run, before the
 * summary; until then those UEs count as not verified. With ks_after: the pairs' derivations
 * and verdicts. A no-op without either.
 * @return the number of answers verified.
 */
uint32_t kl_burst_verify_stored(struct kl_burst *b);
/** Count something the I/O saw (KL_BC_RX_OTHER). */
void kl_burst_count(struct kl_burst *b, enum kl_burst_counter c, uint64_t n);
/**
 * Timeouts, retransmission decisions and interval lines (written to out when given).
 * @return 1 while a UE is still to start or in progress, 0 when every UE finished.
 */
int kl_burst_tick(struct kl_burst *b, uint64_t now_ns, FILE *out);
/** When the core next has something to do (a start, a timeout, an interval line), in ns. */
uint64_t kl_burst_next_event(const struct kl_burst *b);
/** Stop: every UE not finished fails as interrupted. */
void kl_burst_interrupt(struct kl_burst *b, uint64_t now_ns);

/**
 * A live progress line on f (meant for a terminal: each one starts with "\r" and overwrites the
 * last): UEs done of all, done per second, failed, in progress and the time left at that rate.
 * kl_burst_tick writes it at most every period_ms (one comparison per tick otherwise, nothing
 * per packet) and ends it with a newline when every UE finished; kl_burst_progress_end ends it
 * after an interrupted run. f NULL: no progress line (the default).
 */
void kl_burst_set_progress(struct kl_burst *b, FILE *f, uint32_t period_ms);
/** Write the last progress line and its newline, once (nothing without a progress line). */
void kl_burst_progress_end(struct kl_burst *b, uint64_t now_ns);
/** The progress line's text at now, without "\r" or newline. @return its length (snprintf). */
int kl_burst_progress_format(const struct kl_burst *b, uint64_t now_ns, char *buf, size_t len);
/** Counters so far (in_progress and offered as of the last tick). */
const struct kl_burst_totals *kl_burst_totals(const struct kl_burst *b);
/** Latency (send of the try that got the key to its verification), whole run. */
const struct kl_hist *kl_burst_latency(const struct kl_burst *b);

/* What each server of a run did (cfg.servers > 1; with one server, its one row). */
struct kl_burst_server_totals {
	uint64_t sent;	   /* tries that went to it */
	uint64_t timeouts; /* of those, tries whose answer did not come in time */
	uint64_t answers;  /* answers matched to a live try sent to it (before the MAC check) */
	uint64_t keys;	   /* UEs that got their verified key from its answer */
	uint64_t moved_in; /* tries sent to it by UEs whose previous try went to another server */
};

/** Server i's counters (i < the run's servers), NULL otherwise. */
const struct kl_burst_server_totals *kl_burst_server_totals(const struct kl_burst *b, unsigned i);
/** The run's servers (cfg.servers, at least 1). */
unsigned kl_burst_servers(const struct kl_burst *b);

/**
 * The final summary: burst completion, rates, latency histograms, failures (capped list of UE
 * indices and identities), SLO verdicts. The caller may add members (the I/O's) and dumps it.
 * @return a new reference, NULL on ENOMEM.
 */
json_t *kl_burst_summary(const struct kl_burst *b, uint64_t now_ns);
/** 0 when every UE holds a verified correct key and every SLO held; 1 otherwise. */
int kl_burst_exit_code(const struct kl_burst *b);

/** Histogram as JSON (µs): n, min, max, mean, p50 .. p99.9, and with buckets the nonzero ones. */
json_t *kl_hist_json(const struct kl_hist *h, int buckets);

#ifdef __cplusplus
}
#endif
#endif
