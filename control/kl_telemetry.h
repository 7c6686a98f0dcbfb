/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined's DPDK telemetry commands (lib/telemetry, socket <runtime dir>/dpdk_telemetry.v2,
 * e.g. /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2 for root; EAL must run without
 * --no-telemetry; --no-shconf is fine). Names come from the X-macro lists, like /metrics.
 *
 *   /keyline/stats        totals: {"workers": n, "counters": {<kl_counter_name>: v, ...},
 *                         "drops": {<kl_drop_name>: v, ...} (all but "none"),
 *                         "net_drops": {<kl_net_drop_name>: v, ...} (all but "none"),
 *                         "io": {<kl_io_counter_name>: v, ...},
 *                         "service_bounds_ns": [kl_io_hist_bound_ns...],
 *                         "service_hist": [per-bucket counts..., +Inf bucket] (not cumulative),
 *                         "service_sum_ns": v, "service_count": v}
 *   /keyline/stats,<w>    the same for worker w (0..workers-1), with "worker": w instead of
 *                         "workers"; any other parameter is refused (-EINVAL: the reply is null)
 *   /keyline/table        {"ues": n, "groups": n, "emses": n, "imsis": n, "appids": n,
 *                         "memory_bytes": n}
 *   /keyline/info         {"version": s, "io": s, "crypto": s, "workers": n, "start_time_ns": n}
 *   /keyline/control      {<kl_ctl_counter_name>: v, ...}: every entry of KL_CTL_COUNTER_LIST
 *                         (the values /metrics shows); null when the view has no ctl
 *   /keyline/peers        {"peers": {"<index>": {"identity": s, <kl_peer_counter_name>: v, ...}},
 *                         "unconfigured_refused": v, "s2s": {"rendezvous_used": v,
 *                         "rendezvous_cap", "rendezvous_full", "cache_used", "cache_cap",
 *                         "cache_full", "pending_used", "pending_cap", "pending_full",
 *                         "contended"}}; null when the view has no peers
 */
#ifndef KL_TELEMETRY_H
#define KL_TELEMETRY_H

#include "kl_stats.h"

/**
 * Register the /keyline/ commands (once per process; DPDK cannot unregister) and make them
 * serve view. Call after rte_eal_init. Calling again only replaces the view.
 * @param view  read by the telemetry thread on every command until kl_telemetry_detach
 * @return 0, -EINVAL (no view, or more than KL_STATS_MAX_WORKERS workers), or the -errno of
 *         rte_telemetry_register_cmd (-ENOENT: DPDK's command table is full).
 */
int kl_telemetry_register(const struct kl_stats_view *view);

/**
 * Stop using the view (before it or its table is freed): afterwards, and once this returns no
 * command is still reading it, the commands answer null.
 */
void kl_telemetry_detach(void);

#endif
