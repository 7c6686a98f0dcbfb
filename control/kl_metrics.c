/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "kl_metrics.h"
#include "kl_cluster.h"
#include "kl_naf_stats.h"

#define P "keyline_"

/* One HTTP connection, for its deadline. All of these are touched by the server thread only. */
struct conn {
	int fd;		  /* -1: free slot */
	bool closing;	  /* shut down by us, waiting for MHD to close it */
	uint64_t since_ms; /* start of the request in progress (connection start, last answer) */
};

struct kl_metrics {
	struct MHD_Daemon *d;
	const struct kl_stats_view *view;
	pthread_mutex_t lock; /* guards body, should handlers ever run on more than one thread */
	pthread_t thread;     /* runs MHD (external polling) and the deadlines */
	bool running;
	int stop;
	uint16_t port;
	unsigned max_open;   /* connections served before the longest-running one makes room */
	uint64_t timeout_ms; /* of a request */
	unsigned nslots;     /* max_open + KL_METRICS_SPARE_CONNECTIONS */
	char body[KL_METRICS_BODY_MAX];
	struct conn conn[];
};

/* ---- exposition text ----------------------------------------------------------------------- */

struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

/* Label values and HELP texts are escaped as the format requires: \\ and \n, plus \" in values. */
static void put_escaped(struct out *o, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(o, "\\\\");
		else if (*s == '\n')
			put(o, "\\n");
		else if (*s == '"' && quote)
			put(o, "\\\"");
		else
			put(o, "%c", *s);
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s ", name);
	put_escaped(o, help, false);
	put(o, "\n# TYPE %s %s\n", name, type);
}

/* Seconds as an exact decimal: nanosecond counts must not pick up binary rounding. */
static const char *seconds(uint64_t ns, char s[32])
{
	uint64_t whole = ns / 1000000000u, frac = ns % 1000000000u;
	int digits = 9;

	if (!frac) {
		snprintf(s, 32, "%" PRIu64, whole);
		return s;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(s, 32, "%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
	return s;
}

static void lower(const char *s, char *d, size_t cap)
{
	size_t i = 0;

	for (; s[i] && i + 1 < cap; i++)
		d[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	d[i] = '\0';
}

/* What an engine counter is, from its enum name: REQ_x, ANSWERED_x, ERR_x, RX, the rest. */
enum cnt_class { CC_REQ, CC_ANSWERED, CC_ERR, CC_RX, CC_OTHER };

static const char *const cnt_enum[KL_CNT__COUNT] = {
#define KL_X(e, n, d) #e,
	KL_COUNTER_LIST(KL_X)
#undef KL_X
};

static enum cnt_class cnt_class(unsigned c, char *kind, size_t kcap)
{
	static const struct {
		const char *prefix;
		enum cnt_class cls;
	} map[] = { { "REQ_", CC_REQ }, { "ANSWERED_", CC_ANSWERED }, { "ERR_", CC_ERR } };

	kind[0] = '\0';
	if (strcmp(cnt_enum[c], "RX") == 0)
		return CC_RX;
	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t l = strlen(map[i].prefix);

		if (strncmp(cnt_enum[c], map[i].prefix, l) == 0) {
			lower(cnt_enum[c] + l, kind, kcap);
			return map[i].cls;
		}
	}
	return CC_OTHER;
}

/* One sample of keyline_requests_total / keyline_answers_total (worker < 0: the totals). */
static void req_samples(struct out *o, const char *name, const struct kl_worker_stats *e,
			int worker, bool answers)
{
	char wl[24] = "";
	char kind[32];

	if (worker >= 0)
		snprintf(wl, sizeof(wl), "worker=\"%d\",", worker);
	for (unsigned c = 0; c < KL_CNT__COUNT; c++) {
		enum cnt_class cls = cnt_class(c, kind, sizeof(kind));

		if (!answers && cls == CC_REQ)
			put(o, "%s{%skind=\"%s\"} %" PRIu64 "\n", name, wl, kind, e->counter[c]);
		else if (answers && cls == CC_ANSWERED)
			put(o, "%s{%skind=\"%s\",result=\"key\"} %" PRIu64 "\n", name, wl, kind,
			    e->counter[c]);
	}
	if (!answers)
		return;
	for (unsigned c = 0; c < KL_CNT__COUNT; c++)
		if (cnt_class(c, kind, sizeof(kind)) == CC_ERR)
			put(o, "%s{%sresult=\"%s\"} %" PRIu64 "\n", name, wl, kl_counter_name(c),
			    e->counter[c]);
}

static void render_engine(struct out *o, const struct kl_stats_view *v,
			  const struct kl_stats_total *t)
{
	char kind[32];

	family(o, P "received_total", "counter", "Datagrams handed to the request engine.");
	for (unsigned c = 0; c < KL_CNT__COUNT; c++)
		if (cnt_class(c, kind, sizeof(kind)) == CC_RX)
			put(o, P "received_total %" PRIu64 "\n", t->engine.counter[c]);
	family(o, P "requests_total", "counter", "Well-formed key requests, by kind.");
	req_samples(o, P "requests_total", &t->engine, -1, false);
	family(o, P "answers_total", "counter",
	       "Answers sent: key responses by kind (result=\"key\"), error messages by error "
	       "(result=\"error_*\", all kinds).");
	req_samples(o, P "answers_total", &t->engine, -1, true);
	for (unsigned c = 0; c < KL_CNT__COUNT; c++) {
		char name[96];

		if (cnt_class(c, kind, sizeof(kind)) != CC_OTHER)
			continue;
		snprintf(name, sizeof(name), P "%s_total", kl_counter_name(c));
		family(o, name, "counter", kl_counter_desc(c));
		put(o, "%s %" PRIu64 "\n", name, t->engine.counter[c]);
	}

	family(o, P "drops_total", "counter",
	       "Requests (layer=\"mikey\") and frames (layer=\"net\") dropped without an answer, "
	       "by reason.");
	for (unsigned d = 0; d < KL_DROP__COUNT; d++)
		if (d != KL_DROP_NONE)
			put(o, P "drops_total{layer=\"mikey\",reason=\"%s\"} %" PRIu64 "\n",
			    kl_drop_name(d), t->engine.drop[d]);
	for (unsigned d = 0; d < KL_NET_DROP__COUNT; d++)
		if (d != KL_NET_DROP_NONE)
			put(o, P "drops_total{layer=\"net\",reason=\"%s\"} %" PRIu64 "\n",
			    kl_net_drop_name(d), t->io.net_drop[d]);

	for (unsigned c = 0; c < KL_IO_CNT__COUNT; c++) {
		char name[96];

		snprintf(name, sizeof(name), P "io_%s_total", kl_io_counter_name(c));
		family(o, name, "counter", kl_io_counter_desc(c));
		put(o, "%s %" PRIu64 "\n", name, t->io.counter[c]);
	}

	/* The per-worker families come only after the totals they break down. */
	if (!v->n_workers)
		return;
	family(o, P "worker_requests_total", "counter",
	       "Well-formed key requests, by worker and kind.");
	for (unsigned w = 0; w < v->n_workers; w++) {
		struct kl_stats_total wt;

		if (kl_stats_sum(v, (int)w, &wt) == 0)
			req_samples(o, P "worker_requests_total", &wt.engine, (int)w, false);
	}
	family(o, P "worker_answers_total", "counter",
	       "Answers sent by worker: key responses by kind, error messages by error.");
	for (unsigned w = 0; w < v->n_workers; w++) {
		struct kl_stats_total wt;

		if (kl_stats_sum(v, (int)w, &wt) == 0)
			req_samples(o, P "worker_answers_total", &wt.engine, (int)w, true);
	}
}

static void render_hist(struct out *o, const struct kl_stats_total *t)
{
	uint64_t cum = 0;
	char s[32];

	family(o, P "service_seconds", "histogram",
	       "Service time of answered requests, from their receive call to the send call "
	       "carrying the answer.");
	for (unsigned b = 0; b < KL_IO_HIST_N; b++) {
		cum += t->io.svc_hist[b];
		put(o, P "service_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		    seconds(kl_io_hist_bound_ns[b], s), cum);
	}
	cum += t->io.svc_hist[KL_IO_HIST_N];
	put(o, P "service_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	put(o, P "service_seconds_sum %s\n", seconds(t->io.svc_sum_ns, s));
	put(o, P "service_seconds_count %" PRIu64 "\n", cum);
}

static void render_info(struct out *o, const struct kl_stats_view *v)
{
	/* Loaded once: a stopping daemon may clear it (the table itself outlives the server). */
	struct kl_table *tab = __atomic_load_n(&v->table, __ATOMIC_ACQUIRE);
	char s[32];

	if (tab) {
		family(o, P "table_entries", "gauge", "Key table entries, by kind.");
		for (unsigned k = 0; k < KL_TK__COUNT; k++)
			put(o, P "table_entries{kind=\"%s\"} %" PRIu32 "\n",
			    kl_stats_table_kind_name(k), kl_table_count(tab, (enum kl_table_kind)k));
		family(o, P "table_memory_bytes", "gauge", "Key table memory (hashes and arenas).");
		put(o, P "table_memory_bytes %" PRIu64 "\n", kl_table_memory(tab));
	}
	family(o, P "workers", "gauge", "Worker threads serving requests.");
	put(o, P "workers %u\n", v->n_workers);
	family(o, P "start_time_seconds", "gauge",
	       "Start time of keylined, seconds since the epoch.");
	put(o, P "start_time_seconds %s\n", seconds(v->start_ns, s));
	family(o, P "build_info", "gauge",
	       "keylined version, packet I/O and crypto backend (value 1).");
	put(o, P "build_info{version=\"");
	put_escaped(o, v->version ? v->version : "unknown", true);
	put(o, "\",io=\"");
	put_escaped(o, v->io_name ? v->io_name : "unknown", true);
	put(o, "\",crypto=\"");
	put_escaped(o, v->crypto_name ? v->crypto_name : "unknown", true);
	put(o, "\"} 1\n");
}

/* The control plane's counters, one family each, from KL_CTL_COUNTER_LIST. */
static void render_ctl(struct out *o, const struct kl_stats_view *v)
{
	if (!v->ctl)
		return;
	for (unsigned c = 0; c < KL_CTL__COUNT; c++) {
		bool gauge = kl_ctl_counter_is_gauge(c);
		char name[96];

		snprintf(name, sizeof(name), P "%s%s", kl_ctl_counter_name(c),
			 gauge ? "" : "_total");
		family(o, name, gauge ? "gauge" : "counter", kl_ctl_counter_help(c));
		put(o, "%s %" PRIu64 "\n", name, kl_ctl_get(v->ctl, c));
	}
}

/* The cluster node's figures (KL_CLUSTER_STAT_LIST, kl_cluster.h) and its name and role. */
static void render_cluster(struct out *o, const struct kl_stats_view *v)
{
	const struct kl_cluster_stats *cs = v->cluster;

	if (!cs)
		return;
	family(o, P "cluster_info", "gauge", "The cluster node: its name and role.");
	put(o, P "cluster_info{node=\"");
	put_escaped(o, cs->node, true);
	put(o, "\",role=\"");
	put_escaped(o, kl_cluster_role_name(cs), true);
	put(o, "\"} 1\n");
	for (unsigned i = 0; i < KL_CLUSTER__COUNT; i++) {
		const struct kl_cluster_stat_info *si = kl_cluster_stat_info(i);
		char name[96];

		snprintf(name, sizeof(name), P "cluster_%s%s", si->name, si->gauge ? "" : "_total");
		family(o, name, si->gauge ? "gauge" : "counter", si->help);
		put(o, "%s %" PRIu64 "\n", name, kl_cluster_stat_get(cs, i));
	}
}

/* Server-to-server: each peer's counters (KL_PEER_COUNTER_LIST) labelled with its configured
 * identity, the refusals of unconfigured sources, and the shared state's sizes. */
static void render_s2s(struct out *o, const struct kl_stats_view *v)
{
	const struct kl_peers *ps = __atomic_load_n(&v->peers, __ATOMIC_ACQUIRE);
	struct kl_s2s_stats st;

	if (ps) {
		for (unsigned c = 0; c < KL_PEER_CNT__COUNT; c++) {
			char name[96];

			snprintf(name, sizeof(name), P "peer_%s_total", kl_peer_counter_name(c));
			family(o, name, "counter", kl_peer_counter_desc(c));
			for (unsigned i = 0; i < ps->n && i < KL_PEERS_MAX; i++) {
				char id[KL_MIKEY_ID_MAX + 1];
				size_t n = ps->p[i].id_len < KL_MIKEY_ID_MAX ? ps->p[i].id_len
									      : KL_MIKEY_ID_MAX;

				memcpy(id, ps->p[i].id, n);
				id[n] = '\0';
				put(o, "%s{peer=\"", name);
				put_escaped(o, id, true);
				put(o, "\"} %" PRIu64 "\n", kl_peer_counter(ps, i, c));
			}
		}
		family(o, P "peer_unconfigured_refused_total", "counter",
		       "Kind 6/7 messages refused from sources that are no configured peer.");
		put(o, P "peer_unconfigured_refused_total %" PRIu64 "\n",
		    kl_peer_counter(ps, KL_PEER_UNCONFIGURED, KL_PEER_CNT_REFUSED));
	}
	if (kl_stats_s2s(v, &st) == 0) {
		const struct {
			const char *name;
			uint64_t used, cap, full;
		} t[] = {
			{ "rendezvous", st.rendezvous_used, st.rendezvous_cap, st.rendezvous_full },
			{ "cache", st.cache_used, st.cache_cap, st.cache_full },
			{ "pending", st.pending_used, st.pending_cap, st.pending_full },
		};

		family(o, P "s2s_entries", "gauge",
		       "Server-to-server state in use: ProSe rendezvous pairs, peers' cached answers, "
		       "requests in flight.");
		for (unsigned i = 0; i < 3; i++)
			put(o, P "s2s_entries{table=\"%s\"} %" PRIu64 "\n", t[i].name, t[i].used);
		family(o, P "s2s_capacity", "gauge", "Entries each server-to-server table holds.");
		for (unsigned i = 0; i < 3; i++)
			put(o, P "s2s_capacity{table=\"%s\"} %" PRIu64 "\n", t[i].name, t[i].cap);
		family(o, P "s2s_full_total", "counter",
		       "New entries refused because the table (its bucket) was full.");
		for (unsigned i = 0; i < 3; i++)
			put(o, P "s2s_full_total{table=\"%s\"} %" PRIu64 "\n", t[i].name, t[i].full);
		family(o, P "s2s_contended_total", "counter",
		       "Requests answered not-ready because another worker held the bucket.");
		put(o, P "s2s_contended_total %" PRIu64 "\n", st.contended);
	}
}

/* The NAF Key Center: requests by route and code (KL_NAF_ROUTE_LIST x KL_NAF_CODE_LIST),
 * connections, and while it runs its Zn client's and issued keys' counters. */
static void render_naf(struct out *o, const struct kl_stats_view *v)
{
	struct kl_naf_stats *ns = v->naf;
	struct kl_naf_keys_stats ks;
	struct kl_zn_stats zs;
	uint64_t cum = 0;
	char s[32];

	if (!ns)
		return;
	family(o, P "naf_requests_total", "counter",
	       "NAF Key Center HTTPS requests answered, by route and HTTP status.");
	for (unsigned r = 0; r < KL_NAF_ROUTE__COUNT; r++)
		for (unsigned c = 0; c < KL_NAF_CODE__COUNT; c++)
			put(o, P "naf_requests_total{route=\"%s\",code=\"%u\"} %" PRIu64 "\n",
			    kl_naf_route_label(r), kl_naf_code_value(c),
			    __atomic_load_n(&ns->requests[r][c], __ATOMIC_RELAXED));
	family(o, P "naf_tls_handshakes_total", "counter",
	       "NAF Key Center TLS handshakes completed (connections that sent a request).");
	put(o, P "naf_tls_handshakes_total %" PRIu64 "\n",
	    __atomic_load_n(&ns->handshakes, __ATOMIC_RELAXED));
	family(o, P "naf_connections_without_request_total", "counter",
	       "NAF Key Center connections closed before a request: failed TLS handshakes (plain "
	       "HTTP, old TLS versions, no common cipher) and silent clients.");
	put(o, P "naf_connections_without_request_total %" PRIu64 "\n",
	    __atomic_load_n(&ns->conn_no_request, __ATOMIC_RELAXED));
	family(o, P "naf_tls_handshakes_failed_total", "counter",
	       "NAF Key Center TLS handshakes that failed (GnuTLS error: plain HTTP, old TLS "
	       "versions, no common cipher, aborted by the client).");
	put(o, P "naf_tls_handshakes_failed_total %" PRIu64 "\n",
	    __atomic_load_n(&ns->tls_failed, __ATOMIC_RELAXED));
	family(o, P "naf_client_cert_refused_total", "counter",
	       "NAF Key Center requests refused (403) for their client certificate: missing, or "
	       "not verified by the route's CA (another CA, revoked, expired).");
	put(o, P "naf_client_cert_refused_total{reason=\"missing\"} %" PRIu64 "\n",
	    __atomic_load_n(&ns->cert_missing, __ATOMIC_RELAXED));
	put(o, P "naf_client_cert_refused_total{reason=\"not_verified\"} %" PRIu64 "\n",
	    __atomic_load_n(&ns->cert_refused, __ATOMIC_RELAXED));
	family(o, P "naf_connections_timed_out_total", "counter",
	       "NAF Key Center connections closed for a request not complete in time.");
	put(o, P "naf_connections_timed_out_total %" PRIu64 "\n",
	    __atomic_load_n(&ns->conn_timed_out, __ATOMIC_RELAXED));
	family(o, P "naf_connections", "gauge", "NAF Key Center connections open now.");
	put(o, P "naf_connections %" PRIu64 "\n",
	    __atomic_load_n(&ns->connections, __ATOMIC_RELAXED));
	if (!kl_naf_stats_pull(ns, &zs, &ks))
		return;
	family(o, P "naf_zn_requests_total", "counter",
	       "Ks_(ext)_NAF lookups (answered from the cache or by the BSF).");
	put(o, P "naf_zn_requests_total %" PRIu64 "\n", zs.requests);
	family(o, P "naf_zn_cache_hits_total", "counter", "Ks_(ext)_NAF lookups answered from the cache.");
	put(o, P "naf_zn_cache_hits_total %" PRIu64 "\n", zs.cache_hits);
	family(o, P "naf_zn_sent_total", "counter", "Bootstrapping-Info-Requests sent to the BSF.");
	put(o, P "naf_zn_sent_total %" PRIu64 "\n", zs.sent);
	family(o, P "naf_zn_coalesced_total", "counter",
	       "Ks_(ext)_NAF cache misses that waited for a BIR in flight for the same B-TID and "
	       "NAF_Id instead of sending their own.");
	put(o, P "naf_zn_coalesced_total %" PRIu64 "\n", zs.coalesced);
	family(o, P "naf_zn_answered_total", "counter",
	       "Bootstrapping-Info-Answers received from the BSF.");
	put(o, P "naf_zn_answered_total %" PRIu64 "\n", zs.answered);
	family(o, P "naf_zn_results_total", "counter", "Ks_(ext)_NAF lookups by result.");
	for (unsigned st = 0; st < KL_ZN__COUNT; st++)
		put(o, P "naf_zn_results_total{result=\"%s\"} %" PRIu64 "\n",
		    kl_naf_zn_status_label(st), zs.by_status[st]);
	family(o, P "naf_zn_round_trip_seconds", "histogram",
	       "Zn round trips (Bootstrapping-Info-Request to its answer).");
	for (unsigned b = 0; b + 1 < KL_ZN_LAT_BUCKETS; b++) {
		cum += zs.latency[b];
		put(o, P "naf_zn_round_trip_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		    seconds(kl_naf_zn_lat_bound_us[b] * 1000u, s), cum);
	}
	cum += zs.latency[KL_ZN_LAT_BUCKETS - 1];
	put(o, P "naf_zn_round_trip_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	put(o, P "naf_zn_round_trip_seconds_sum %s\n", seconds(zs.latency_sum_us * 1000u, s));
	put(o, P "naf_zn_round_trip_seconds_count %" PRIu64 "\n", cum);
	family(o, P "naf_zn_cache_entries", "gauge", "Ks_(ext)_NAF answers cached.");
	put(o, P "naf_zn_cache_entries %" PRIu64 "\n", zs.cache_size);
	family(o, P "naf_zn_bsf_open", "gauge", "Whether the connection to the BSF is open (1) or not (0).");
	put(o, P "naf_zn_bsf_open %d\n", zs.bsf_open ? 1 : 0);
	family(o, P "naf_keys", "gauge", "Issued Ks_local_MT keys kept (invalidated included).");
	put(o, P "naf_keys %" PRIu64 "\n", ks.keys);
	family(o, P "naf_keys_invalidated", "gauge", "Issued keys invalidated and still listed.");
	put(o, P "naf_keys_invalidated %" PRIu64 "\n", ks.invalidated);
	family(o, P "naf_keys_issued_total", "counter", "Ks_local_MT keys issued.");
	put(o, P "naf_keys_issued_total %" PRIu64 "\n", ks.issued);
	family(o, P "naf_keys_refused_total", "counter", "Key issues refused, by reason.");
	put(o, P "naf_keys_refused_total{reason=\"invalidated\"} %" PRIu64 "\n",
	    ks.refused_invalidated);
	put(o, P "naf_keys_refused_total{reason=\"blocked\"} %" PRIu64 "\n", ks.refused_blocked);
	put(o, P "naf_keys_refused_total{reason=\"full\"} %" PRIu64 "\n", ks.refused_full);
	put(o, P "naf_keys_refused_total{reason=\"store_failed\"} %" PRIu64 "\n", ks.store_failed);
	family(o, P "naf_blocklist_entries", "gauge", "Blocklist entries, by kind.");
	put(o, P "naf_blocklist_entries{kind=\"device_id\"} %" PRIu64 "\n", ks.blocked_devices);
	put(o, P "naf_blocklist_entries{kind=\"serial\"} %" PRIu64 "\n", ks.blocked_serials);
}

ssize_t kl_metrics_render(const struct kl_stats_view *view, char *buf, size_t cap)
{
	struct out o = { .buf = buf, .cap = cap };
	struct kl_stats_total t;

	if (!view || !buf || !cap || kl_stats_sum(view, -1, &t) < 0)
		return -EINVAL;
	buf[0] = '\0';
	render_engine(&o, view, &t);
	render_hist(&o, &t);
	render_info(&o, view);
	render_ctl(&o, view);
	render_s2s(&o, view);
	render_naf(&o, view);
	render_cluster(&o, view);
	return o.full ? -ENOSPC : (ssize_t)o.len;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static enum MHD_Result reply_static(struct MHD_Connection *c, unsigned status, const char *text,
				    const char *allow)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct kl_metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	ssize_t len;

	(void)version;
	(void)upload_data;
	(void)req_cls;
	/* Every answer is queued on the first call, before any body: MHD then discards the upload
	 * and closes the connection, so a request body can never make us buffer anything. */
	*upload_data_size = 0;
	if (strcmp(url, "/metrics") != 0)
		return reply_static(c, MHD_HTTP_NOT_FOUND, "not found: only /metrics is served\n",
				    NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
				    "GET, HEAD");

	pthread_mutex_lock(&m->lock);
	len = kl_metrics_render(m->view, m->body, sizeof(m->body));
	/* The copy is bounded by KL_METRICS_BODY_MAX, connections by the connection limit. */
	r = len < 0 ? NULL
		    : MHD_create_response_from_buffer((size_t)len, m->body, MHD_RESPMEM_MUST_COPY);
	pthread_mutex_unlock(&m->lock);
	if (len < 0)
		return reply_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "metrics could not be rendered\n", NULL);
	if (!r)
		return MHD_NO;
	kl_ctl_add(m->view->ctl, KL_CTL_METRICS_SCRAPES, 1);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- slow clients -------------------------------------------------------------------------- */

/* MHD's own timeout only closes a connection that is silent: a client sending a header line now
 * and then keeps its slot for ever, and enough of them would keep every scrape out. So each
 * request gets the request timeout from its connection's start (or the end of the
 * previous answer) to its answer being sent, and at the connection limit the connection whose
 * request has been in progress the longest makes room for a new one. MHD keeps the sockets: we
 * only shut one down (from the server thread, before MHD can close it), and MHD then closes it
 * as a connection the peer ended. No per-IP limit: a scraper may share its address (loopback,
 * a NAT) with the slow clients, and eviction already bounds what any source can hold. */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void conn_close(struct kl_metrics *m, struct conn *k)
{
	shutdown(k->fd, SHUT_RDWR);
	k->closing = true;
	kl_ctl_add(m->view->ctl, KL_CTL_METRICS_CLOSED, 1);
}

/* The open (not closing) connection whose request began first, other than skip. */
static struct conn *conn_oldest(struct kl_metrics *m, const struct conn *skip)
{
	struct conn *old = NULL;

	for (unsigned i = 0; i < m->nslots; i++) {
		struct conn *k = &m->conn[i];

		if (k->fd >= 0 && !k->closing && k != skip &&
		    (!old || k->since_ms < old->since_ms))
			old = k;
	}
	return old;
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
			enum MHD_ConnectionNotificationCode toe)
{
	struct kl_metrics *m = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *k = *socket_ctx;
	unsigned open = 0;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (k)
			k->fd = -1;
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	for (unsigned i = 0; i < m->nslots && !k; i++)
		if (m->conn[i].fd < 0)
			k = &m->conn[i];
	if (!ci || !k) { /* cannot happen: MHD's limit is the table's size */
		if (ci)
			shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	*k = (struct conn){ .fd = ci->connect_fd, .since_ms = mono_ms() };
	*socket_ctx = k;
	for (unsigned i = 0; i < m->nslots; i++)
		open += m->conn[i].fd >= 0 && !m->conn[i].closing;
	if (open > m->max_open) {
		struct conn *old = conn_oldest(m, k);

		if (old)
			conn_close(m, old);
	}
}

/* An answer was sent (or the request failed): the next request's time starts now. */
static void notify_done(void *cls, struct MHD_Connection *c, void **req_cls,
			enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn *k = ci ? ci->socket_context : NULL;

	(void)cls;
	(void)req_cls;
	(void)toe;
	if (k)
		k->since_ms = mono_ms();
}

static void close_late(struct kl_metrics *m)
{
	uint64_t now = mono_ms();

	for (unsigned i = 0; i < m->nslots; i++) {
		struct conn *k = &m->conn[i];

		if (k->fd >= 0 && !k->closing &&
		    now - k->since_ms >= m->timeout_ms)
			conn_close(m, k);
	}
}

static void *serve(void *arg)
{
	struct kl_metrics *m = arg;

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		(void)MHD_run_wait(m->d, KL_METRICS_TICK_MS);
		close_late(m);
	}
	return NULL;
}

static void endpoint_text(const struct kl_config_endpoint *ep, char *s, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ep->family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->v6, a, sizeof(a));
		snprintf(s, cap, "[%s]:%u", a, (unsigned)ep->port);
	} else {
		inet_ntop(AF_INET, &ep->v4, a, sizeof(a));
		snprintf(s, cap, "%s:%u", a, (unsigned)ep->port);
	}
}

/* Our own listening socket, so that a failure says why (MHD_start_daemon only says NULL). */
static int listen_on(const struct kl_config_endpoint *ep, uint16_t *port, const char *where,
		     char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd, one = 1, e;

	if (ep->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = ep->v6;
		s6->sin6_port = htons(ep->port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = ep->v4;
		s4->sin_port = htons(ep->port);
		sl = sizeof(*s4);
	}
	fd = socket(ep->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot create a socket for %s: %s", where,
			 strerror(e));
		errno = e;
		return -1;
	}
	/* SO_REUSEADDR only skips TIME_WAIT after a restart; a live listener still gets EADDRINUSE.
	 * V6ONLY: "[::]" or "[::1]" must not quietly serve IPv4 too. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ep->family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		e = errno;
		snprintf(err, errlen, "cannot set socket options for %s: %s", where,
			 strerror(e));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot bind %s: %s", where, strerror(e));
		goto fail;
	}
	if (listen(fd, 64) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
		goto fail;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		e = errno;
		snprintf(err, errlen, "getsockname on %s: %s", where, strerror(e));
		goto fail;
	}
	*port = ntohs(ep->family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					     : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
fail:
	close(fd);
	errno = e;
	return -1;
}

struct kl_metrics *kl_metrics_start(const struct kl_config_endpoint *ep,
				    const struct kl_stats_view *view, char *err, size_t errlen)
{
	return kl_metrics_start_with(ep, view, NULL, err, errlen);
}

struct kl_metrics *kl_metrics_start_with(const struct kl_config_endpoint *ep,
					 const struct kl_stats_view *view,
					 const struct kl_metrics_limits *lim, char *err,
					 size_t errlen)
{
	unsigned max_open = lim && lim->max_connections ? lim->max_connections
							: KL_METRICS_MAX_CONNECTIONS;
	unsigned timeout_s = lim && lim->request_timeout_s ? lim->request_timeout_s
							   : KL_METRICS_REQUEST_TIMEOUT_S;
	struct kl_metrics *m;
	char where[96];
	unsigned flags = MHD_USE_EPOLL;
	int fd;

	if (!ep || !view || !ep->enabled || (ep->family != AF_INET && ep->family != AF_INET6)) {
		snprintf(err, errlen, "%s",
			 !ep || !ep->enabled ? "no endpoint configured"
			 : !view	     ? "no counters to serve"
					     : "address family not IPv4 or IPv6");
		errno = EINVAL;
		return NULL;
	}
	if (view->n_workers > KL_STATS_MAX_WORKERS) {
		snprintf(err, errlen, "%u workers, at most %d", view->n_workers,
			 KL_STATS_MAX_WORKERS);
		errno = EINVAL;
		return NULL;
	}
	if (max_open > KL_METRICS_MAX_CONNECTIONS_LIMIT || timeout_s > KL_METRICS_TIMEOUT_LIMIT_S) {
		snprintf(err, errlen, "%u connections (at most %u), %u s per request (at most %u)",
			 max_open, KL_METRICS_MAX_CONNECTIONS_LIMIT, timeout_s,
			 KL_METRICS_TIMEOUT_LIMIT_S);
		errno = EINVAL;
		return NULL;
	}
	endpoint_text(ep, where, sizeof(where));
	m = calloc(1, sizeof(*m) + (max_open + KL_METRICS_SPARE_CONNECTIONS) * sizeof(m->conn[0]));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	m->view = view;
	m->max_open = max_open;
	m->nslots = max_open + KL_METRICS_SPARE_CONNECTIONS;
	m->timeout_ms = (uint64_t)timeout_s * 1000u;
	for (unsigned i = 0; i < m->nslots; i++)
		m->conn[i].fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	fd = listen_on(ep, &m->port, where, err, errlen);
	if (fd < 0) {
		int e = errno;

		pthread_mutex_destroy(&m->lock);
		free(m);
		errno = e;
		return NULL;
	}
	if (ep->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* MHD owns fd from here: MHD_stop_daemon closes it. */
	m->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)(m->nslots),
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(m->timeout_ms / 1000u),
				MHD_OPTION_NOTIFY_CONNECTION, notify_conn, m,
				MHD_OPTION_NOTIFY_COMPLETED, notify_done, m, MHD_OPTION_END);
	if (m->d && pthread_create(&m->thread, NULL, serve, m) == 0) {
		m->running = true;
	} else if (m->d) {
		MHD_stop_daemon(m->d); /* closes fd */
		m->d = NULL;
		fd = -1;
	}
	if (!m->d) {
		snprintf(err, errlen, "cannot start the HTTP server on %s", where);
		if (fd >= 0)
			close(fd);
		pthread_mutex_destroy(&m->lock);
		free(m);
		errno = EIO;
		return NULL;
	}
	return m;
}

uint16_t kl_metrics_port(const struct kl_metrics *m)
{
	return m ? m->port : 0;
}

void kl_metrics_stop(struct kl_metrics *m)
{
	if (!m)
		return;
	__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
	if (m->running)
		pthread_join(m->thread, NULL);
	MHD_stop_daemon(m->d);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
