/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined's services (kl_registry.h), in start order: the cluster (the store's replicator is
 * set before anything writes: every durable write goes to etcd first), MSK rotation (every configured group has its
 * current MSK before a worker answers), the admin socket (forces rotations), /metrics, the
 * Diameter feed (its handlers write a table that holds everything loaded before), the NAF Key
 * Center (its Zn client runs on the feed's Diameter stack). Stopped in
 * reverse order: the feed's queued requests are dropped unanswered before the table and the
 * store go; the rotation after the admin socket.
 */
#ifndef KL_SERVICES_H
#define KL_SERVICES_H

#include "kl_config.h"
#include "kl_registry.h"

struct kl_table;
struct kl_store;
struct kl_stats_view;
struct kl_ctl_stats;
struct kl_naf_stats;
struct kl_cluster_stats;

/* What the services are started with (kl_services_start's ctx); it outlives them. */
struct kl_services_ctx {
	const struct kl_config *cfg;
	struct kl_table *table;
	struct kl_store *store; /* NULL: no store: section */
	const struct kl_stats_view *view;
	struct kl_ctl_stats *ctl;
	const struct kl_services *set; /* where one service finds another (kl_services_get) */
	struct kl_naf_stats *naf_stats; /* the NAF Key Center's counters (/metrics); NULL: none */
	uint64_t worker_cpus[KL_CONFIG_MAX_CPUS / 64]; /* CPUs of the workers' lcores */
	struct kl_cluster_stats *cluster_stats; /* the cluster's figures (/metrics); NULL: none */
};

extern const struct kl_service_ops *const kl_keylined_services[];
extern const unsigned kl_keylined_n_services;

#endif
