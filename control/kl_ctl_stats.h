/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined's control-plane counters (admin socket, /metrics, durable store, MSK rotation,
 * Diameter feed): one X-macro list, like the data plane's KL_COUNTER_LIST, from which the enum,
 * the names, /metrics (keyline_<name>_total for a counter, keyline_<name> for a gauge, with the
 * help text) and DPDK telemetry (/keyline/control) are generated. Header only and without
 * dependencies, so that every control module can count.
 *
 * Each module adds to one shared struct kl_ctl_stats given in its params (NULL: not counted),
 * from any thread, with relaxed atomics; readers (metrics, telemetry, admin) load them the same
 * way. keylined owns the struct and puts it in its struct kl_stats_view (ctl).
 */
#ifndef KL_CTL_STATS_H
#define KL_CTL_STATS_H

#include <stdbool.h>
#include <stdint.h>

/* X(ENUM, name, kind, help): kind is COUNTER (only grows) or GAUGE (a current value). */
#define KL_CTL_COUNTER_LIST(X)                                                                 \
	X(ADMIN_REQUESTS, "admin_requests", COUNTER,                                          \
	  "Admin socket requests answered (ok or error).")                                     \
	X(ADMIN_ERRORS, "admin_errors", COUNTER, "Admin socket requests answered with an error.") \
	X(ADMIN_CLIENTS, "admin_clients", GAUGE, "Admin socket clients connected now.")        \
	X(ADMIN_REFUSED, "admin_refused", COUNTER,                                            \
	  "Admin socket connections refused (peer not root or our user, out of memory).")      \
	X(ADMIN_EVICTED, "admin_evicted", COUNTER,                                            \
	  "Admin socket clients closed to make room for a new one at the client limit (the "   \
	  "one idle or holding a partial line the longest).")                                  \
	X(ADMIN_TIMEOUTS, "admin_timeouts", COUNTER,                                          \
	  "Admin socket clients closed for idling or for a request line not completed in "     \
	  "time.")                                                                             \
	X(METRICS_SCRAPES, "metrics_scrapes", COUNTER, "/metrics requests answered.")          \
	X(METRICS_CLOSED, "metrics_connections_closed", COUNTER,                               \
	  "/metrics connections closed for a request not completed in time or to make room "   \
	  "at the connection limit.")                                                          \
	X(STORE_COMMITS, "store_commits", COUNTER, "Durable store transactions committed.")    \
	X(STORE_COMMIT_FAILURES, "store_commit_failures", COUNTER,                             \
	  "Durable store transactions that failed to commit or were rolled back.")             \
	X(ROTATIONS, "rotations", COUNTER, "MSKs made by the MSK rotation (scheduled or forced).") \
	X(ROTATION_FAILURES, "rotation_failures", COUNTER, "MSK rotations that failed.")       \
	X(DIAMETER_ANSWERED_OK, "diameter_answered_ok", COUNTER,                               \
	  "Diameter feed requests answered DIAMETER_SUCCESS (after their commit).")            \
	X(DIAMETER_REJECTED, "diameter_rejected", COUNTER,                                     \
	  "Diameter feed requests refused as invalid.")                                         \
	X(DIAMETER_FAILED, "diameter_failed", COUNTER,                                         \
	  "Diameter feed requests answered DIAMETER_UNABLE_TO_COMPLY (handler or commit failed).") \
	X(DIAMETER_BUSY, "diameter_busy", COUNTER,                                             \
	  "Diameter feed requests answered DIAMETER_TOO_BUSY (queue full or stopping).")       \
	X(DIAMETER_COMMITS, "diameter_commits", COUNTER, "Diameter feed batches committed.")   \
	X(DIAMETER_QUEUED, "diameter_queued", GAUGE,                                           \
	  "Diameter feed requests waiting for the control thread.")                             \
	X(DIAMETER_PEERS_REFUSED, "diameter_peers_refused", COUNTER,                           \
	  "Diameter connections refused by the allowed-peers check.")

enum kl_ctl_counter {
#define KL_X(e, n, k, h) KL_CTL_##e,
	KL_CTL_COUNTER_LIST(KL_X)
#undef KL_X
	KL_CTL__COUNT
};

struct kl_ctl_stats {
	uint64_t v[KL_CTL__COUNT];
};

static inline void kl_ctl_add(struct kl_ctl_stats *s, enum kl_ctl_counter c, uint64_t n)
{
	if (s)
		__atomic_fetch_add(&s->v[c], n, __ATOMIC_RELAXED);
}

/** For a gauge. */
static inline void kl_ctl_set(struct kl_ctl_stats *s, enum kl_ctl_counter c, uint64_t v)
{
	if (s)
		__atomic_store_n(&s->v[c], v, __ATOMIC_RELAXED);
}

static inline uint64_t kl_ctl_get(const struct kl_ctl_stats *s, unsigned c)
{
	return s && c < KL_CTL__COUNT ? __atomic_load_n(&s->v[c], __ATOMIC_RELAXED) : 0;
}

struct kl_ctl_counter_info {
	const char *name; /* "admin_requests", ... (without the _total of /metrics) */
	const char *help;
	bool gauge; /* a current value, not a count */
};

/** The list's entry c; out of range: name and help "?". */
static inline const struct kl_ctl_counter_info *kl_ctl_counter_info(unsigned c)
{
	enum { COUNTER = 0, GAUGE = 1 };
	static const struct kl_ctl_counter_info t[KL_CTL__COUNT + 1] = {
#define KL_X(e, nm, k, hp) { nm, hp, k },
		KL_CTL_COUNTER_LIST(KL_X)
#undef KL_X
		{ "?", "?", false },
	};
	return &t[c < KL_CTL__COUNT ? c : KL_CTL__COUNT];
}

static inline const char *kl_ctl_counter_name(unsigned c)
{
	return kl_ctl_counter_info(c)->name;
}

static inline const char *kl_ctl_counter_help(unsigned c)
{
	return kl_ctl_counter_info(c)->help;
}

static inline bool kl_ctl_counter_is_gauge(unsigned c)
{
	return kl_ctl_counter_info(c)->gauge;
}

#endif
