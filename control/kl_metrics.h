/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Prometheus /metrics for keylined: libmicrohttpd on its own thread (external polling with epoll
 * run by that thread, which also enforces the request deadline and the connection limit below),
 * bound to exactly the configured address, answering GET (and HEAD) /metrics with the text
 * exposition format 0.0.4 rendered from a struct kl_stats_view. Every family is generated from
 * the X-macro lists (KL_COUNTER_LIST, KL_DROP_LIST, KL_IO_COUNTER_LIST, KL_NET_DROP_LIST,
 * KL_CTL_COUNTER_LIST), so a new counter shows
 * without touching this module. UE identities, IMSIs and keys never appear: labels are only fixed
 * names from those lists, worker numbers, build strings and the configured peer servers'
 * identities.
 *
 * Families (all prefixed keyline_):
 *   requests_total{kind="mbms"|"e2m"}              well-formed requests (REQ_*)
 *   answers_total{kind="mbms"|"e2m",result="key"}  key responses sent (ANSWERED_*)
 *   answers_total{result="error_invalid_ts"|...}   error messages sent (ERR_*, the counter name;
 *                                                  the engine does not split errors by kind, so
 *                                                  these series carry no kind label)
 *   received_total                                 datagrams handed to the engine (RX)
 *   <name>_total                                   any other engine counter
 *                                                  (replay_cache_evictions_total)
 *   drops_total{layer="mikey",reason=<kl_drop_name>}     every KL_DROP_* but NONE
 *   drops_total{layer="net",reason=<kl_net_drop_name>}   every KL_NET_DROP_* but NONE
 *   io_<name>_total                                one counter per KL_IO_COUNTER_LIST entry
 *   service_seconds (histogram)                    buckets kl_io_hist_bound_ns, _sum, _count
 *   worker_requests_total{worker="N",kind=...}     per worker (separate families, so that
 *   worker_answers_total{worker="N",...}           sum() over the totals never double counts)
 *   table_entries{kind="ues"|"groups"|"emses"|"imsis"|"appids"}, table_memory_bytes
 *   workers, start_time_seconds, build_info{version,io,crypto} 1
 *   peer_<name>_total{peer=<identity>}             per configured peer (KL_PEER_COUNTER_LIST:
 *                                                  sent, answered, retried, failed, refused,
 *                                                  received), when the view has peers
 *   peer_unconfigured_refused_total                kind 6/7 from sources that are no peer
 *   s2s_entries|s2s_capacity{table="rendezvous"|"cache"|"pending"}, s2s_full_total{table=..},
 *   s2s_contended_total                            the shared server-to-server state
 *                                                  (kl_stats_s2s), when the view has it
 *   <name>_total | <name>                          the control plane's counters and gauges
 *                                                  (KL_CTL_COUNTER_LIST, kl_ctl_stats.h: admin_*,
 *                                                  metrics_*, store_*, rotation*, diameter_*),
 *                                                  when the view has them
 *   cluster_info{node,role} 1, cluster_<name>[_total]    the cluster node's figures
 *                                                  (KL_CLUSTER_STAT_LIST, kl_cluster.h), when
 *                                                  the view has them
 */
#ifndef KL_METRICS_H
#define KL_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kl_config.h"
#include "kl_stats.h"

/* Upper bound of one /metrics body: a 64-worker view takes about 40 KiB. */
#define KL_METRICS_BODY_MAX (128u * 1024)
/* Concurrent HTTP connections served. A new connection beyond them closes the one whose request
 * has been in progress the longest (so slow clients cannot keep a scraper out); the spare slots
 * let MHD accept while such a connection is being closed. */
#define KL_METRICS_MAX_CONNECTIONS 32
#define KL_METRICS_SPARE_CONNECTIONS 4
/* Each request must be answered this many seconds after its connection opened or its previous
 * answer was sent (headers included: slow header lines do not extend it); idle connections are
 * closed after as long. */
#define KL_METRICS_REQUEST_TIMEOUT_S 5
/* How often the server thread checks those deadlines. */
#define KL_METRICS_TICK_MS 200
/* What kl_metrics_start_with accepts. */
#define KL_METRICS_MAX_CONNECTIONS_LIMIT 1024u
#define KL_METRICS_TIMEOUT_LIMIT_S 3600u

/* The slow-client limits (keylined.yaml metrics_max_connections, metrics_request_timeout_s);
 * 0 = the default above. */
struct kl_metrics_limits {
	unsigned max_connections;   /* KL_METRICS_MAX_CONNECTIONS; at most ..._LIMIT */
	unsigned request_timeout_s; /* KL_METRICS_REQUEST_TIMEOUT_S; at most KL_METRICS_TIMEOUT_LIMIT_S */
};

struct kl_metrics;

/**
 * Render the exposition text of a view into buf (NUL-terminated). Reentrant; reads the counters
 * with kl_stats_sum, so any thread may call it.
 * @return the length written (excluding the NUL), -EINVAL (no view or buffer, or a view
 *         kl_stats_sum refuses) or -ENOSPC (cap too small; buf then holds a truncated prefix).
 */
ssize_t kl_metrics_render(const struct kl_stats_view *view, char *buf, size_t cap);

/**
 * Start serving /metrics on ep's address and port (port 0: an ephemeral port, see
 * kl_metrics_port). The socket is bound and listening on return, IPv6 with IPV6_V6ONLY.
 * @param ep    an enabled endpoint (struct kl_config.metrics)
 * @param view  read on every request; it and its table must stay valid until kl_metrics_stop
 *              (view->table may be set to NULL before: the table families are then left out)
 * @param err   receives one line on failure, e.g. "cannot bind 127.0.0.1:9469: Address
 *              already in use" (the caller adds its "metrics: " context)
 * @return the server, or NULL with err set and errno set (EINVAL, EADDRINUSE, ENOMEM, ...).
 */
struct kl_metrics *kl_metrics_start(const struct kl_config_endpoint *ep,
				    const struct kl_stats_view *view, char *err, size_t errlen);

/** kl_metrics_start with other slow-client limits (lim NULL: the defaults); EINVAL beyond the
 * _LIMIT values. */
struct kl_metrics *kl_metrics_start_with(const struct kl_config_endpoint *ep,
					 const struct kl_stats_view *view,
					 const struct kl_metrics_limits *lim, char *err,
					 size_t errlen);

/** The TCP port the server listens on (host order). */
uint16_t kl_metrics_port(const struct kl_metrics *m);

/** Stop the server thread, close the socket and free m. NULL is a no-op. */
void kl_metrics_stop(struct kl_metrics *m);

#endif
