/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline's etcd client: etcd's v3 JSON gateway (POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange,
 * /v3/kv/txn, /v3/kv/compaction, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke,
 * /v3/watch, /v3/maintenance/status; the /v3/ prefix answers on etcd 3.4 and later) over libcurl,
 * JSON by jansson. Every cluster part of keylined (the catalogue writes, the replica's watch, the
 * MSK election) goes through it.
 *
 * The gateway's JSON (protobuf's JSON mapping): bytes fields are base64, 64-bit integers are JSON
 * strings ("42"), fields at their zero value are omitted (no "kvs": an empty range; no "revision":
 * 0; no "succeeded": false). The parsers below accept exactly that (and a JSON integer where a
 * 64-bit string is expected) and refuse anything else with KL_ETCD_EPROTO and a message: an answer
 * from something that is not etcd, truncated or damaged, is a clear error, never a crash. They are
 * pure functions (text in, result out) so the libFuzzer target tests/fuzz/fuzz_etcd_json.c runs
 * them alone.
 *
 * Synchronous calls (kl_etcd_get .. kl_etcd_status) belong to the control thread: each is one HTTP
 * POST with bounded time (opts.connect_timeout_ms to connect, opts.request_timeout_ms for the
 * whole exchange with one endpoint). Endpoints are tried in turn starting at the one that answered
 * last:
 *   - the request certainly did not reach etcd (connection refused, connect timeout, TLS handshake
 *     failure or a TLS alert, a send that failed before the request was whole, an answer that is
 *     not HTTP, a member answering "no leader"): the next endpoint is tried, for every call;
 *   - the request may have reached etcd (timeout after it was sent, connection lost before the
 *     answer): reads (range, status) try the next endpoint; writes stop with KL_ETCD_EUNKNOWN,
 *     since the write may or may not have been applied (the caller re-reads, e.g. by mod_revision).
 * When no endpoint answered: KL_ETCD_EUNREACHABLE. A call takes at most n_endpoints x
 * (request_timeout_ms) in all.
 *
 * The watch (kl_etcd_watch_*) is a long POST /v3/watch whose answer is an HTTP/1.1 chunked stream
 * of newline-separated JSON messages. It runs on libcurl's multi interface driven by the control
 * thread's own poll loop, with no thread of its own: the control thread is the key table's only
 * writer, so events applied from its loop need no lock and no queue, and a slow consumer only slows
 * the TCP stream (etcd buffers). The caller adds kl_etcd_watch_pollfds() to its pollfd set, sleeps
 * at most kl_etcd_watch_timeout_ms(), then calls kl_etcd_watch_run(), which never blocks. A lost
 * stream is reopened (next endpoint, back-off 50 ms doubling to 2 s) from the revision after the
 * last event delivered, so no event is lost or doubled; a compaction past that revision stops the
 * watch with KL_ETCD_W_COMPACTED and the caller must resynchronise (range at a revision, then
 * kl_etcd_watch_restart from that revision + 1). A stream is dropped (and reopened) when etcd has
 * not confirmed it within connect + request timeout, when a message is malformed, and, through
 * etcd's "hasleader" metadata, when its member loses the leader; TCP keep-alive (5 s idle, 2 s
 * probes) finds a dead peer on an idle stream.
 *
 * Return convention: 0 or a negative enum kl_etcd_err; kl_etcd_errmsg() tells what happened
 * (endpoint, HTTP status, etcd's message). Results own their memory; free them with the matching
 * *_free. Keys and values are bytes (not strings); they are never logged by this module. Not
 * thread-safe: one client per thread (two clients in two threads are fine).
 */
#ifndef KL_ETCD_H
#define KL_ETCD_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

enum kl_etcd_err {
	KL_ETCD_OK = 0,
	KL_ETCD_EINVAL = -1,      /* bad argument (empty key, too many ops, ...) */
	KL_ETCD_ENOMEM = -2,
	KL_ETCD_EUNREACHABLE = -3, /* no endpoint took the request: nothing was applied */
	KL_ETCD_EUNKNOWN = -4,    /* a write was sent, no answer came in time: outcome unknown */
	KL_ETCD_ESERVER = -5,     /* etcd refused (message and gRPC code: kl_etcd_grpc_code) */
	KL_ETCD_EPROTO = -6,      /* the answer is not etcd's gateway JSON */
	KL_ETCD_ECOMPACTED = -7,  /* a range at a revision etcd has compacted */
	KL_ETCD_ENOTFOUND = -8,   /* lease not found (expired or revoked) */
};

/* Name of an error code ("unreachable", ...). */
const char *kl_etcd_strerror(int err);

struct kl_etcd_opts {
	const char *const *endpoints; /* "http://127.0.0.1:2379", "https://host:2379", ... */
	size_t n_endpoints;           /* 1 .. KL_ETCD_MAX_ENDPOINTS */
	const char *ca_file;          /* TLS: CA bundle verifying the members (NULL: system's) */
	const char *cert_file;        /* TLS client certificate (PEM), NULL: none */
	const char *key_file;         /* its private key (PEM) */
	long connect_timeout_ms;      /* 0: 1000 */
	long request_timeout_ms;      /* 0: 5000 (one endpoint, whole exchange) */
};
#define KL_ETCD_MAX_ENDPOINTS 16
/* Largest answer accepted (a larger one is KL_ETCD_EPROTO: page ranges with a limit). */
#define KL_ETCD_MAX_ANSWER (64u << 20)
/* Most operations in one transaction (etcd's default --max-txn-ops). */
#define KL_ETCD_MAX_TXN_OPS 128

struct kl_etcd;

/* A client over opts' endpoints (copied). NULL on a bad option or no memory, with the reason in
 * err. No connection is made here. Calls curl_global_init once per process. */
struct kl_etcd *kl_etcd_new(const struct kl_etcd_opts *opts, char *err, size_t errlen);
void kl_etcd_free(struct kl_etcd *c);
/* The last call's error message ("" after success). */
const char *kl_etcd_errmsg(const struct kl_etcd *c);
/* The gRPC status code etcd gave with the last KL_ETCD_ESERVER (0 otherwise). */
int kl_etcd_grpc_code(const struct kl_etcd *c);
/* The endpoint the next call tries first (the one that answered last). */
const char *kl_etcd_endpoint(const struct kl_etcd *c);

/* ---- results -------------------------------------------------------------------------------- */

struct kl_etcd_header {
	uint64_t cluster_id, member_id;
	int64_t revision; /* the store's revision when the request was served */
	uint64_t raft_term;
};

struct kl_etcd_kv {
	uint8_t *key;   /* key_len bytes, then a NUL (not part of the key) */
	uint8_t *value; /* value_len bytes, then a NUL; same allocation as key */
	size_t key_len, value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct kl_etcd_range {
	struct kl_etcd_header hdr;
	struct kl_etcd_kv *kvs;
	size_t n;
	int more;      /* more keys in the range than returned (limit) */
	int64_t count; /* keys in the whole range */
};
void kl_etcd_range_free(struct kl_etcd_range *r);

/* ---- key-value ------------------------------------------------------------------------------ */

struct kl_etcd_range_req {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *range_end; /* NULL: key alone; "\0" (len 1): every key >= key */
	size_t range_end_len;
	int64_t limit;    /* 0: no limit */
	int64_t revision; /* 0: the newest; else that revision (KL_ETCD_ECOMPACTED if compacted) */
	int keys_only;
	int count_only;
	int serializable; /* served by the member alone (may be stale), no quorum needed */
};

/* The end of the range of keys starting with prefix: prefix with its last byte below 0xff
 * incremented and the rest dropped, or "\0" (every key) when there is none. out has room for
 * len bytes (at least 1). Returns the end's length. */
size_t kl_etcd_prefix_end(const uint8_t *prefix, size_t len, uint8_t *out);

int kl_etcd_range(struct kl_etcd *c, const struct kl_etcd_range_req *req, struct kl_etcd_range *out);
/* One key: out->n is 0 or 1. */
int kl_etcd_get(struct kl_etcd *c, const void *key, size_t key_len, struct kl_etcd_range *out);
/* One page of the keys under prefix, in key order: the first `limit` keys after `after` (NULL:
 * from the start) at `revision` (0: the newest; pass the first page's hdr.revision to read all
 * pages from one snapshot). out->more tells whether another page follows; the next page starts
 * after the last key of this one. */
int kl_etcd_range_page(struct kl_etcd *c, const void *prefix, size_t prefix_len, const void *after,
		       size_t after_len, int64_t limit, int64_t revision, struct kl_etcd_range *out);

/* Put key = value, attached to lease (0: none). *revision (may be NULL): the put's revision. */
int kl_etcd_put(struct kl_etcd *c, const void *key, size_t key_len, const void *value,
		size_t value_len, int64_t lease, int64_t *revision);
/* Delete key, or every key under it when prefix. *deleted, *revision may be NULL. */
int kl_etcd_delete(struct kl_etcd *c, const void *key, size_t key_len, int prefix,
		   int64_t *deleted, int64_t *revision);
/* Compact the history up to revision (physical: wait until the space is reclaimed). */
int kl_etcd_compact(struct kl_etcd *c, int64_t revision, int physical);

/* ---- transactions --------------------------------------------------------------------------- */

enum kl_etcd_cmp_target { KL_ETCD_VERSION, KL_ETCD_CREATE, KL_ETCD_MOD, KL_ETCD_VALUE };
enum kl_etcd_cmp_op { KL_ETCD_EQUAL, KL_ETCD_GREATER, KL_ETCD_LESS, KL_ETCD_NOT_EQUAL };

/* key's target op number (or value). "Absent": KL_ETCD_CREATE == 0 (or KL_ETCD_VERSION == 0);
 * compare-and-swap: KL_ETCD_MOD == the mod_revision read. */
struct kl_etcd_cmp {
	const uint8_t *key;
	size_t key_len;
	enum kl_etcd_cmp_target target;
	enum kl_etcd_cmp_op op;
	int64_t number; /* version, create or mod revision */
	const uint8_t *value; /* KL_ETCD_VALUE */
	size_t value_len;
};

enum kl_etcd_op_kind { KL_ETCD_OP_PUT, KL_ETCD_OP_DELETE, KL_ETCD_OP_RANGE };

struct kl_etcd_op {
	enum kl_etcd_op_kind kind;
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value; /* put */
	size_t value_len;
	int64_t lease;            /* put: 0 none */
	const uint8_t *range_end; /* delete, range: NULL one key */
	size_t range_end_len;
	int64_t limit; /* range */
};

struct kl_etcd_op_result {
	enum kl_etcd_op_kind kind;
	struct kl_etcd_range range; /* KL_ETCD_OP_RANGE */
	int64_t deleted;            /* KL_ETCD_OP_DELETE */
};

struct kl_etcd_txn_result {
	struct kl_etcd_header hdr;
	int succeeded; /* every compare held: the success ops ran, else the failure ops */
	struct kl_etcd_op_result *res; /* one per op of the branch that ran */
	size_t n;
};
void kl_etcd_txn_result_free(struct kl_etcd_txn_result *t);

/* If every cmp holds, run success[], else failure[] (at most KL_ETCD_MAX_TXN_OPS each), as one
 * atomic revision. out (required) tells which branch ran and holds its ops' results. */
int kl_etcd_txn(struct kl_etcd *c, const struct kl_etcd_cmp *cmp, size_t n_cmp,
		const struct kl_etcd_op *success, size_t n_success, const struct kl_etcd_op *failure,
		size_t n_failure, struct kl_etcd_txn_result *out);

/* ---- leases --------------------------------------------------------------------------------- */

struct kl_etcd_lease {
	struct kl_etcd_header hdr;
	int64_t id;
	int64_t ttl; /* seconds granted / remaining after a keep-alive; 0: the lease is gone */
};
/* Grant a lease of ttl seconds (id 0: etcd picks one). etcd may raise a short TTL to its
 * minimum (1.5 x election timeout). */
int kl_etcd_lease_grant(struct kl_etcd *c, int64_t ttl, int64_t id, struct kl_etcd_lease *out);
/* Revoke: the keys attached to it are deleted. KL_ETCD_ENOTFOUND when it is already gone. */
int kl_etcd_lease_revoke(struct kl_etcd *c, int64_t id);
/* One keep-alive (a one-message /v3/lease/keepalive stream). KL_ETCD_ENOTFOUND (out->ttl 0)
 * when the lease has expired or was revoked. */
int kl_etcd_lease_keepalive(struct kl_etcd *c, int64_t id, struct kl_etcd_lease *out);

/* ---- status --------------------------------------------------------------------------------- */

struct kl_etcd_status {
	struct kl_etcd_header hdr; /* hdr.member_id: the member that answered */
	char version[32];
	int64_t db_size, db_size_in_use;
	uint64_t leader; /* member id of the leader, 0: none */
	uint64_t raft_index, raft_term, raft_applied_index;
};
/* The status of the member at the current endpoint (failing over as reads do). */
int kl_etcd_status(struct kl_etcd *c, struct kl_etcd_status *out);

/* ---- watch ---------------------------------------------------------------------------------- */

enum kl_etcd_event_type { KL_ETCD_EV_PUT, KL_ETCD_EV_DELETE };

struct kl_etcd_event {
	enum kl_etcd_event_type type;
	struct kl_etcd_kv kv; /* DELETE: key and mod_revision (the deletion's revision) only */
};

/* One parsed watch message. */
struct kl_etcd_watch_resp {
	struct kl_etcd_header hdr;
	int64_t watch_id;
	int created, canceled;
	int64_t compact_revision; /* > 0: the start revision was compacted (canceled) */
	char cancel_reason[128];
	struct kl_etcd_event *events;
	size_t n_events;
};
void kl_etcd_watch_resp_free(struct kl_etcd_watch_resp *r);

enum kl_etcd_watch_what {
	KL_ETCD_W_CREATED,      /* the stream is open (after each (re)connection) */
	KL_ETCD_W_EVENT,        /* ev: one event, in revision order */
	KL_ETCD_W_DISCONNECTED, /* reason: the stream was lost; reopens from next_revision */
	KL_ETCD_W_COMPACTED,    /* compact_revision: history gone, the watch stopped: resync */
	KL_ETCD_W_CANCELED,     /* reason: etcd ended the watch (not a compaction): stopped */
};

struct kl_etcd_watch_note {
	enum kl_etcd_watch_what what;
	const struct kl_etcd_event *ev; /* valid during the callback only */
	int64_t revision;               /* the message's header revision */
	int64_t compact_revision;
	const char *reason;
	const char *endpoint;
};

/* Called from kl_etcd_watch_run() only; it must not free or restart the watch. */
typedef void (*kl_etcd_watch_cb)(void *arg, const struct kl_etcd_watch_note *n);

struct kl_etcd_watch;

/* Watch key (prefix: every key under it) from start_revision (0: from now on) over c's endpoints
 * and TLS options (c must outlive the watch; its synchronous calls may go on meanwhile). The
 * first connection is made by the first kl_etcd_watch_run(). NULL on no memory / bad argument. */
struct kl_etcd_watch *kl_etcd_watch_new(struct kl_etcd *c, const void *key, size_t key_len,
					int prefix, int64_t start_revision, kl_etcd_watch_cb cb,
					void *arg);
void kl_etcd_watch_free(struct kl_etcd_watch *w);
/* The watch's sockets: up to max pollfds (fd, events). Returns how many were written. */
int kl_etcd_watch_pollfds(struct kl_etcd_watch *w, struct pollfd *fds, int max);
/* How long the caller's poll may sleep before kl_etcd_watch_run() is due (ms; -1: only on fd
 * activity; 0: now). */
int kl_etcd_watch_timeout_ms(struct kl_etcd_watch *w);
/* Do the I/O that is ready (never blocks), deliver the parsed messages through the callback,
 * reconnect when due. Returns 0 while watching, KL_ETCD_ECOMPACTED / KL_ETCD_ESERVER once stopped
 * (compacted / canceled by etcd). */
int kl_etcd_watch_run(struct kl_etcd_watch *w);
/* The revision the watch resumes from after a disconnect: last delivered event's + 1. */
int64_t kl_etcd_watch_next_revision(const struct kl_etcd_watch *w);
/* Restart a stopped (or running) watch from start_revision (after a resync). */
int kl_etcd_watch_restart(struct kl_etcd_watch *w, int64_t start_revision);
/* Counters: streams opened, disconnects, events delivered. */
struct kl_etcd_watch_stats {
	uint64_t connects, disconnects, events, messages;
};
void kl_etcd_watch_stats(const struct kl_etcd_watch *w, struct kl_etcd_watch_stats *out);

/* ---- pure codec (used by the calls above; fuzzed by tests/fuzz/fuzz_etcd_json.c) ------------- */

/* Standard base64 with padding (as the gateway writes bytes). out: room for
 * kl_etcd_b64_len(len) + 1 bytes (NUL-terminated). */
size_t kl_etcd_b64_len(size_t len);
void kl_etcd_b64_encode(const uint8_t *in, size_t len, char *out);
/* Decode s (len chars; padding optional; no whitespace). out: room for len / 4 * 3 + 3 bytes.
 * Returns the decoded length, or -1 on a character outside the alphabet or a bad length. */
long kl_etcd_b64_decode(const char *s, size_t len, uint8_t *out);

/* Parse one gateway answer body (len bytes, not NUL-terminated). 0, or KL_ETCD_EPROTO with a
 * message in err; an {"error":...} body is KL_ETCD_ESERVER (or ECOMPACTED / ENOTFOUND) with
 * etcd's message. On error the result is empty (nothing to free). */
int kl_etcd_parse_range(const char *body, size_t len, struct kl_etcd_range *out, char *err,
			size_t errlen);
int kl_etcd_parse_put(const char *body, size_t len, struct kl_etcd_header *out, char *err,
		      size_t errlen);
int kl_etcd_parse_delete(const char *body, size_t len, struct kl_etcd_header *out,
			 int64_t *deleted, char *err, size_t errlen);
int kl_etcd_parse_txn(const char *body, size_t len, struct kl_etcd_txn_result *out, char *err,
		      size_t errlen);
/* Grant answers and keep-alive answers ({"result":{...}}) alike. */
int kl_etcd_parse_lease(const char *body, size_t len, struct kl_etcd_lease *out, char *err,
			size_t errlen);
int kl_etcd_parse_status(const char *body, size_t len, struct kl_etcd_status *out, char *err,
			 size_t errlen);
/* One message of the watch stream ({"result":{...}} or {"error":{...}}). */
int kl_etcd_parse_watch(const char *body, size_t len, struct kl_etcd_watch_resp *out, char *err,
			size_t errlen);
/* An error body: {"error":"..","message":"..","code":N} (unary) or {"error":{"grpc_code":N,
 * "message":".."}} (stream). Returns the matching error code (KL_ETCD_ESERVER, ECOMPACTED,
 * ENOTFOUND) with *code and the message in msg, or KL_ETCD_EPROTO when body is not one. */
int kl_etcd_parse_error(const char *body, size_t len, int *code, char *msg, size_t msglen);

/* ---- added (helper st): clients for other threads ------------------------------------------- */

/* A new client over c's endpoints with c's TLS options and timeouts (for another thread: a
 * client is not thread-safe). NULL with err on no memory. */
struct kl_etcd *kl_etcd_new_like(const struct kl_etcd *c, char *err, size_t errlen);
/* While *flag (read atomically, owned by the caller; NULL: none) is non-zero, calls on c end at
 * once with KL_ETCD_EUNREACHABLE (one in progress within about a second: libcurl's progress
 * callback), so a thread stuck on a silent endpoint can be stopped without waiting for the
 * request timeout. Set before the client is used on another thread. */
void kl_etcd_set_abort(struct kl_etcd *c, const int *flag);

#endif
