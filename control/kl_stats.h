/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where the control side (admin socket, DPDK telemetry, Prometheus /metrics) finds keylined's
 * counters: one view filled by keylined at start-up, read by any thread. Sums are taken with
 * relaxed atomic loads of words each worker writes alone.
 */
#ifndef KL_STATS_H
#define KL_STATS_H

#include <stdint.h>

#include "kl_ctl_stats.h"
#include "kl_engine.h"
#include "kl_s2s.h"
#include "kl_io.h"
#include "kl_table.h"

#define KL_STATS_MAX_WORKERS 64

struct kl_naf_stats;
struct kl_cluster_stats;

struct kl_stats_view {
	unsigned n_workers;
	const struct kl_worker_stats *engine[KL_STATS_MAX_WORKERS];
	const struct kl_io_stats *io[KL_STATS_MAX_WORKERS];
	struct kl_table *table;	/* counts and memory: safe from any thread */
	uint64_t start_ns;	/* CLOCK_REALTIME at start-up */
	const char *io_name;	/* "dpdk" | "socket" */
	const char *crypto_name; /* "ipsec-mb" | "openssl" */
	const char *version;
	struct kl_ctl_stats *ctl; /* control-plane counters (kl_ctl_stats.h); NULL: none */
	/* server-to-server (PROTOCOL.md section 10): the configured peers with their counters
	 * (kl_peer.h, atomic) and the state all workers share (sizes by kl_s2s_stats); NULL: none */
	const struct kl_peers *peers;
	const struct kl_s2s *s2s;
	/* the NAF Key Center's counters (kl_naf_stats.h); NULL: none */
	struct kl_naf_stats *naf;
	/* the cluster node's figures (control/store/kl_cluster.h); NULL: no cluster */
	const struct kl_cluster_stats *cluster;
};

struct kl_stats_total {
	struct kl_worker_stats engine;
	struct kl_io_stats io;
};

/**
 * Sum the counters of one worker (0..n_workers-1) or of all (worker < 0) into out.
 * @return 0, or -EINVAL (no view, worker out of range).
 */
int kl_stats_sum(const struct kl_stats_view *v, int worker, struct kl_stats_total *out);

/**
 * The server-to-server state's sizes (kl_s2s_stats: rendezvous, peers' answers, requests in
 * flight; used, capacity, refusals when full), any thread. The scan of the tables is done at
 * most once a second (callers share its result: they may see values up to a second old).
 * @return 0, or -ENOENT (the view has none).
 */
int kl_stats_s2s(const struct kl_stats_view *v, struct kl_s2s_stats *out);

/** Drop what kl_stats_s2s keeps of s2s (before kl_s2s_destroy: a new state may get its address). */
void kl_stats_s2s_forget(const struct kl_s2s *s2s);

/** Names of the table kinds as shown everywhere: "ues", "groups", "emses", "imsis", "appids". */
const char *kl_stats_table_kind_name(unsigned kind);

#endif
