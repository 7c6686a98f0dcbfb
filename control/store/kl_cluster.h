/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined's cluster service (issue 14; README "Clusters on etcd"): the node's LMDB store becomes
 * a replica of one key catalogue in etcd (layout: kl_store_repl.h), written through etcd first
 * and following the other nodes' writes. The catalogue work runs on the control thread (the key
 * table's only writer), driven by the service registry; the periodic etcd calls (lease
 * keep-alive, registration, etcd's status, join retries) run on a cluster thread of the
 * service's own, so an etcd member that accepts connections and never answers does not stall
 * the control loop (kl_cluster.c explains the choice).
 *
 * Start: connect, join (P/meta/kek_check created when absent, else compared with the store's: a
 * node with another KEK refuses to start), set the replicator (kl_cluster_repl: every durable
 * write goes to etcd first), register the node (P/nodes/<node>, JSON, on a lease kept alive).
 * The node serves from its replica at once. When etcd cannot be reached at start the node starts
 * all the same, stale, joins as soon as it can, and refuses writes until then.
 *
 * Follow: a watch on P/kv/ from kl_store_revision() + 1; the events one kl_etcd_watch_run
 * delivers are applied in one store batch (kl_store_apply, then kl_store_set_revision to the
 * revision the watch has delivered completely, then the commit), then written into the key table
 * and the store's other views (kl_store_sync_table; kl_store_set_view: the NAF Key Center's
 * index of issued keys and blocklists). A replica that never applied anything, or one etcd has
 * compacted past, resynchronises fully: the whole P/kv/ is read at one revision in pages (one
 * page per control loop pass, one store batch each, so the node keeps serving), entries the
 * snapshot does not hold are deleted, the revision is set and the watch restarts after it.
 *
 * Seed: a node that creates P/meta/kek_check (the first node of a new cluster) and whose store
 * holds entries while P/kv/ is empty uploads its store into the catalogue, and its replica goes
 * on from the seed's last revision when nothing else was written to etcd meanwhile (no full
 * resynchronisation reading back what it has just written); `keylinectl cluster-seed` does the
 * same on demand (any node, catalogue empty or not: last writer wins; the watch brings the
 * upload back as events).
 *
 * Stale: no contact with etcd (watch down, keep-alive or status failing) for stale_after_ms: the
 * node says so once in the log, in status and /metrics, and keeps serving its last state; when
 * the link returns the watch resumes from the replica's revision (or resynchronises), so every
 * write and deletion made meanwhile arrives.
 */
#ifndef KL_CLUSTER_H
#define KL_CLUSTER_H

#include <poll.h>
#include <stdint.h>

#include "kl_config.h"

/* X(ENUM, name, kind, help): the node's cluster figures, defined once: the admin "status"
 * (cluster.counters), /metrics (keyline_cluster_<name>[_total]) and the README table come from
 * here. kind: COUNTER (only grows) or GAUGE. */
#define KL_CLUSTER_STAT_LIST(X)                                                                \
	X(STALE, "stale", GAUGE,                                                               \
	  "1 while the node has had no contact with etcd for stale_after_ms (it serves its "   \
	  "last state).")                                                                      \
	X(JOINED, "joined", GAUGE, "1 once the node has joined the cluster (KEK checked).")     \
	X(APPLIED_REVISION, "applied_revision", GAUGE,                                         \
	  "Catalogue revision the replica has applied completely.")                           \
	X(ETCD_REVISION, "etcd_revision", GAUGE, "etcd's revision when last seen (status, watch).") \
	X(LAG_REVISIONS, "lag_revisions", GAUGE,                                               \
	  "Revisions the replica is behind what the watch's last message said etcd has.")     \
	X(LAG_MS, "lag_ms", GAUGE, "How long the replica has been behind (0: caught up).")     \
	X(SINCE_EVENT_MS, "since_last_event_ms", GAUGE,                                        \
	  "Milliseconds since the last catalogue event was applied.")                          \
	X(EVENTS_APPLIED, "events_applied", COUNTER, "Catalogue events written to the replica.") \
	X(EVENTS_SKIPPED, "events_skipped", COUNTER,                                           \
	  "Catalogue events skipped: the replica held that entry at a newer revision (its own " \
	  "writes come back this way).")                                                       \
	X(EVENTS_REFUSED, "events_refused", COUNTER,                                           \
	  "Catalogue events refused: not a catalogue key, a record that does not unwrap under " \
	  "this node's KEK, or one the key table refused.")                                    \
	X(RESYNCS, "resyncs", COUNTER, "Full resynchronisations from a catalogue snapshot.")   \
	X(RESYNC_ENTRIES, "resync_entries", COUNTER, "Entries read by full resynchronisations.") \
	X(RESYNC_DELETED, "resync_deleted", COUNTER,                                           \
	  "Replica entries deleted by resynchronisations (not in the snapshot).")              \
	X(SEEDED, "seeded", COUNTER, "Store entries uploaded into the catalogue by a seed.")   \
	X(APPLY_FAILURES, "apply_failures", COUNTER,                                           \
	  "Store batches of catalogue events that failed (the watch resumes from the replica's " \
	  "revision).")                                                                        \
	X(WATCH_CONNECTS, "watch_connects", COUNTER, "Watch streams opened.")                  \
	X(WATCH_DISCONNECTS, "watch_disconnects", COUNTER, "Watch streams lost.")              \
	X(KEEPALIVE_FAILURES, "keepalive_failures", COUNTER,                                   \
	  "Lease keep-alives (and re-registrations) that failed.")                             \
	X(REPL_COMMITS, "repl_commits", COUNTER, "Store commits replicated to etcd.")          \
	X(REPL_TXNS, "repl_txns", COUNTER, "etcd transactions sent by the replicator.")        \
	X(REPL_OPS, "repl_ops", COUNTER, "Puts and deletes committed to etcd.")                \
	X(REPL_CONFLICTS, "repl_conflicts", COUNTER,                                           \
	  "Replicated commits refused: an entry changed meanwhile (compare failed).")          \
	X(REPL_UNREACHABLE, "repl_unreachable", COUNTER,                                       \
	  "Replicated commits refused: etcd unreachable or without quorum (nothing applied).") \
	X(REPL_UNKNOWN, "repl_unknown", COUNTER,                                               \
	  "Replicated commits without an answer in time (outcome unknown).")                   \
	X(REPL_LATENCY_US_SUM, "repl_latency_us_sum", COUNTER,                                 \
	  "Replicated commits' latency, sum in microseconds (count: repl_commits).")           \
	X(REPL_LATENCY_US_MAX, "repl_latency_us_max", GAUGE,                                   \
	  "Longest replicated commit, microseconds.")

enum kl_cluster_stat {
#define KL_X(e, n, k, h) KL_CLUSTER_##e,
	KL_CLUSTER_STAT_LIST(KL_X)
#undef KL_X
	KL_CLUSTER__COUNT
};

/* The node's role in the MSK rotation's election (published by the rotation service). */
enum kl_cluster_role { KL_CLUSTER_ROLE_FOLLOWER = 0, KL_CLUSTER_ROLE_LEADER = 1 };

/* Written by the control thread, read by any (/metrics) with relaxed atomics: v[] and role
 * through the functions below only; node is written before the stats are shared, never after. */
struct kl_cluster_stats {
	uint64_t v[KL_CLUSTER__COUNT];
	char node[KL_CONFIG_CLUSTER_NODE_MAX + 1]; /* set before the stats are shared */
	int role;				   /* enum kl_cluster_role (kl_cluster_role_*) */
};

static inline uint64_t kl_cluster_stat_get(const struct kl_cluster_stats *s, unsigned i)
{
	return s && i < KL_CLUSTER__COUNT ? __atomic_load_n(&s->v[i], __ATOMIC_RELAXED) : 0;
}

static inline void kl_cluster_role_set(struct kl_cluster_stats *s, enum kl_cluster_role r)
{
	if (s)
		__atomic_store_n(&s->role, (int)r, __ATOMIC_RELAXED);
}

/** "leader" or "follower" (NULL: "follower"): the string is made at read time, from one load. */
static inline const char *kl_cluster_role_name(const struct kl_cluster_stats *s)
{
	return s && __atomic_load_n(&s->role, __ATOMIC_RELAXED) == KL_CLUSTER_ROLE_LEADER
		       ? "leader"
		       : "follower";
}

struct kl_cluster_stat_info {
	const char *name; /* "stale", ... (/metrics: keyline_cluster_<name>[_total]) */
	const char *help;
	int gauge;
};

/** Entry i of the list; out of range: name and help "?". Header only: /metrics and the admin
 * status read the list without linking the service. */
static inline const struct kl_cluster_stat_info *kl_cluster_stat_info(unsigned i)
{
	enum { COUNTER = 0, GAUGE = 1 };
	static const struct kl_cluster_stat_info t[KL_CLUSTER__COUNT + 1] = {
#define KL_X(e, nm, k, hp) { nm, hp, k },
		KL_CLUSTER_STAT_LIST(KL_X)
#undef KL_X
		{ "?", "?", 0 },
	};
	return &t[i < KL_CLUSTER__COUNT ? i : KL_CLUSTER__COUNT];
}

struct kl_store;
struct kl_table;
struct json_t;

struct kl_cluster_params {
	const struct kl_config_cluster *cfg;
	struct kl_store *store; /* the replica (required) */
	struct kl_table *table;
	struct kl_cluster_stats *stats; /* filled here; NULL: kept inside */
	const char *version;		/* keyline's, in the node's registration */
	void (*log)(void *arg, int level, const char *msg); /* enum kl_config_log_level */
	void *log_arg;
};

struct kl_cluster;

/**
 * Connect, join, set the replicator, register, start following. Unreachable etcd is not an
 * error (the node starts stale and joins later).
 * @return the service, or NULL with err and *config_error (1: the configuration or the KEK is
 *         wrong: exit status 2; 0: a runtime failure).
 */
struct kl_cluster *kl_cluster_start(const struct kl_cluster_params *p, int *config_error,
				    char *err, size_t errlen);
/** Clear the replicator, revoke the registration, free. NULL is a no-op. */
void kl_cluster_stop(struct kl_cluster *c);

/* Control loop: the watch's sockets, how long the loop may sleep, the work (never blocks long:
 * one resync page or the events that came; what the cluster thread saw is taken in here and
 * in the tick), once a second. */
int kl_cluster_pollfds(struct kl_cluster *c, struct pollfd *pf, int max);
int kl_cluster_timeout_ms(struct kl_cluster *c);
void kl_cluster_poll(struct kl_cluster *c);
void kl_cluster_tick(struct kl_cluster *c);

/** The node's cluster part of the admin "status" (a new object). */
struct json_t *kl_cluster_status(struct kl_cluster *c);

/**
 * Admin commands: "cluster" (this node's status and every registered node under P/nodes/),
 * "cluster-seed" (upload the store into the catalogue). @return 0 with *answer, 1 not a cluster
 * command, < 0 with *answer {"error": ".."}.
 */
int kl_cluster_admin(struct kl_cluster *c, const char *cmd, const struct json_t *req,
		     struct json_t **answer);

struct kl_etcd;
/** The node's etcd client, for the other cluster parts of keylined on the control thread (the
 * MSK election and guard: kl_rotate); valid until kl_cluster_stop. NULL for c NULL. */
struct kl_etcd *kl_cluster_etcd(struct kl_cluster *c);

#endif
