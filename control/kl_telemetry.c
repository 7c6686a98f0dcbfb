/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <rte_telemetry.h>

#include "kl_telemetry.h"

/* DPDK 22.11 callbacks carry no user pointer: the view is process-wide, and the lock keeps a
 * command from reading a view that kl_telemetry_detach has given back. */
static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct kl_stats_view *tel_view;
static bool tel_registered[5];

/* Any failure to add (a name DPDK refuses, a full container) fails the whole command, so a bad
 * name in a list shows up as a null reply in the tests instead of a silently missing key. */
#define TRY(x)                                                                                 \
	do {                                                                                   \
		int rc_ = (x);                                                                 \
		if (rc_ != 0)                                                                  \
			return rc_ < 0 ? rc_ : -rc_;                                           \
	} while (0)

static int add_dict(struct rte_tel_data *d, const char *name, struct rte_tel_data *c)
{
	int rc = rte_tel_data_add_dict_container(d, name, c, 0);

	if (rc != 0)
		rte_tel_data_free(c);
	return rc;
}

/* A dict of counters named by fn, skipping index skip (the "none" drop reason; -1: none). */
static int counters(struct rte_tel_data *d, const char *name, const uint64_t *v, unsigned n,
		    const char *(*fn)(unsigned), int skip)
{
	struct rte_tel_data *c = rte_tel_data_alloc();

	if (!c)
		return -ENOMEM;
	rte_tel_data_start_dict(c);
	for (unsigned i = 0; i < n; i++) {
		int rc;

		if ((int)i == skip)
			continue;
		rc = rte_tel_data_add_dict_u64(c, fn(i), v[i]);
		if (rc != 0) {
			rte_tel_data_free(c);
			return rc < 0 ? rc : -rc;
		}
	}
	return add_dict(d, name, c);
}

static int u64_array(struct rte_tel_data *d, const char *name, const uint64_t *v, unsigned n)
{
	struct rte_tel_data *c = rte_tel_data_alloc();

	if (!c)
		return -ENOMEM;
	rte_tel_data_start_array(c, RTE_TEL_U64_VAL);
	for (unsigned i = 0; i < n; i++)
		if (rte_tel_data_add_array_u64(c, v[i]) != 0) {
			rte_tel_data_free(c);
			return -ENOSPC;
		}
	return add_dict(d, name, c);
}

/* "0".."999" below n_workers; anything else (sign, space, hex, trailing bytes) is refused. */
static int parse_worker(const char *p, unsigned n_workers)
{
	unsigned w = 0;
	size_t len = strlen(p);

	if (len == 0 || len > 3)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		w = w * 10 + (unsigned)(p[i] - '0');
	}
	return w < n_workers ? (int)w : -EINVAL;
}

static int stats(const struct kl_stats_view *v, const char *params, struct rte_tel_data *d)
{
	struct kl_stats_total t;
	uint64_t bounds[KL_IO_HIST_N], count = 0;
	int worker = -1;

	if (params && *params) {
		worker = parse_worker(params, v->n_workers);
		if (worker < 0)
			return worker;
	}
	TRY(kl_stats_sum(v, worker, &t));
	rte_tel_data_start_dict(d);
	if (worker < 0)
		TRY(rte_tel_data_add_dict_u64(d, "workers", v->n_workers));
	else
		TRY(rte_tel_data_add_dict_u64(d, "worker", (uint64_t)worker));
	TRY(counters(d, "counters", t.engine.counter, KL_CNT__COUNT, kl_counter_name, -1));
	TRY(counters(d, "drops", t.engine.drop, KL_DROP__COUNT, kl_drop_name, KL_DROP_NONE));
	TRY(counters(d, "net_drops", t.io.net_drop, KL_NET_DROP__COUNT, kl_net_drop_name,
		     KL_NET_DROP_NONE));
	TRY(counters(d, "io", t.io.counter, KL_IO_CNT__COUNT, kl_io_counter_name, -1));
	for (unsigned b = 0; b < KL_IO_HIST_N; b++)
		bounds[b] = kl_io_hist_bound_ns[b];
	for (unsigned b = 0; b <= KL_IO_HIST_N; b++)
		count += t.io.svc_hist[b];
	TRY(u64_array(d, "service_bounds_ns", bounds, KL_IO_HIST_N));
	TRY(u64_array(d, "service_hist", t.io.svc_hist, KL_IO_HIST_N + 1));
	TRY(rte_tel_data_add_dict_u64(d, "service_sum_ns", t.io.svc_sum_ns));
	TRY(rte_tel_data_add_dict_u64(d, "service_count", count));
	return 0;
}

static int table(const struct kl_stats_view *v, const char *params, struct rte_tel_data *d)
{
	struct kl_table *tab = __atomic_load_n(&v->table, __ATOMIC_ACQUIRE);

	if ((params && *params) || !tab)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	for (unsigned k = 0; k < KL_TK__COUNT; k++)
		TRY(rte_tel_data_add_dict_u64(d, kl_stats_table_kind_name(k),
					      kl_table_count(tab, (enum kl_table_kind)k)));
	TRY(rte_tel_data_add_dict_u64(d, "memory_bytes", kl_table_memory(tab)));
	return 0;
}

static int info(const struct kl_stats_view *v, const char *params, struct rte_tel_data *d)
{
	if (params && *params)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	TRY(rte_tel_data_add_dict_string(d, "version", v->version ? v->version : "unknown"));
	TRY(rte_tel_data_add_dict_string(d, "io", v->io_name ? v->io_name : "unknown"));
	TRY(rte_tel_data_add_dict_string(d, "crypto", v->crypto_name ? v->crypto_name : "unknown"));
	TRY(rte_tel_data_add_dict_u64(d, "workers", v->n_workers));
	TRY(rte_tel_data_add_dict_u64(d, "start_time_ns", v->start_ns));
	return 0;
}

static int control(const struct kl_stats_view *v, const char *params, struct rte_tel_data *d)
{
	if ((params && *params) || !v->ctl)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	for (unsigned c = 0; c < KL_CTL__COUNT; c++)
		TRY(rte_tel_data_add_dict_u64(d, kl_ctl_counter_name(c), kl_ctl_get(v->ctl, c)));
	return 0;
}

/* The peers (by index: identities need not be valid telemetry names) with their counters, the
 * unconfigured sources' refusals and the server-to-server state's sizes. */
static int peers(const struct kl_stats_view *v, const char *params, struct rte_tel_data *d)
{
	const struct kl_peers *ps = __atomic_load_n(&v->peers, __ATOMIC_ACQUIRE);
	struct kl_s2s_stats st;
	struct rte_tel_data *all;

	if ((params && *params) || !ps)
		return -EINVAL;
	rte_tel_data_start_dict(d);
	all = rte_tel_data_alloc();
	if (!all)
		return -ENOMEM;
	rte_tel_data_start_dict(all);
	for (unsigned i = 0; i < ps->n && i < KL_PEERS_MAX; i++) {
		struct rte_tel_data *p = rte_tel_data_alloc();
		char id[KL_MIKEY_ID_MAX + 1], idx[8];
		int rc = p ? 0 : -ENOMEM;

		if (p) {
			memcpy(id, ps->p[i].id, ps->p[i].id_len);
			id[ps->p[i].id_len] = '\0';
			rte_tel_data_start_dict(p);
			rc = rte_tel_data_add_dict_string(p, "identity", id);
			for (unsigned c = 0; c < KL_PEER_CNT__COUNT && rc == 0; c++)
				rc = rte_tel_data_add_dict_u64(p, kl_peer_counter_name(c),
							       kl_peer_counter(ps, i, c));
			snprintf(idx, sizeof(idx), "%u", i);
			if (rc == 0)
				rc = add_dict(all, idx, p);
			else
				rte_tel_data_free(p);
		}
		if (rc != 0) {
			rte_tel_data_free(all);
			return rc < 0 ? rc : -rc;
		}
	}
	TRY(add_dict(d, "peers", all));
	TRY(rte_tel_data_add_dict_u64(d, "unconfigured_refused",
				      kl_peer_counter(ps, KL_PEER_UNCONFIGURED,
						      KL_PEER_CNT_REFUSED)));
	if (kl_stats_s2s(v, &st) == 0) {
		const uint64_t sv[] = { st.rendezvous_used, st.rendezvous_cap, st.rendezvous_full,
					st.cache_used,	    st.cache_cap,     st.cache_full,
					st.pending_used,    st.pending_cap,   st.pending_full,
					st.contended };
		static const char *const sn[] = { "rendezvous_used", "rendezvous_cap",
						  "rendezvous_full", "cache_used",
						  "cache_cap",	     "cache_full",
						  "pending_used",    "pending_cap",
						  "pending_full",    "contended" };
		struct rte_tel_data *c = rte_tel_data_alloc();

		if (!c)
			return -ENOMEM;
		rte_tel_data_start_dict(c);
		for (unsigned i = 0; i < sizeof(sv) / sizeof(sv[0]); i++)
			if (rte_tel_data_add_dict_u64(c, sn[i], sv[i]) != 0) {
				rte_tel_data_free(c);
				return -ENOSPC;
			}
		TRY(add_dict(d, "s2s", c));
	}
	return 0;
}

static int locked(int (*fn)(const struct kl_stats_view *, const char *, struct rte_tel_data *),
		  const char *params, struct rte_tel_data *d)
{
	int rc;

	pthread_mutex_lock(&tel_lock);
	rc = tel_view ? fn(tel_view, params, d) : -ENODEV;
	pthread_mutex_unlock(&tel_lock);
	return rc;
}

static int cmd_stats(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	return locked(stats, params, d);
}

static int cmd_table(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	return locked(table, params, d);
}

static int cmd_info(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	return locked(info, params, d);
}

static int cmd_control(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	return locked(control, params, d);
}

static int cmd_peers(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	return locked(peers, params, d);
}

int kl_telemetry_register(const struct kl_stats_view *view)
{
	static const struct {
		const char *cmd;
		telemetry_cb fn;
		const char *help;
	} cmds[] = {
		{ "/keyline/stats", cmd_stats,
		  "keyline counters, drops and service times. Parameters: int worker (none: "
		  "totals)" },
		{ "/keyline/table", cmd_table, "keyline key table entries per kind and memory" },
		{ "/keyline/info", cmd_info, "keyline version, io, crypto, workers, start time" },
		{ "/keyline/control", cmd_control,
		  "keyline control-plane counters: admin, metrics, store, rotation, Diameter" },
		{ "/keyline/peers", cmd_peers,
		  "keyline peer servers' counters (by index), unconfigured sources refused, "
		  "server-to-server table sizes" },
	};
	int rc = 0;

	_Static_assert(sizeof(cmds) / sizeof(cmds[0]) ==
			       sizeof(tel_registered) / sizeof(tel_registered[0]),
		       "one registration flag per command");
	if (!view || view->n_workers > KL_STATS_MAX_WORKERS)
		return -EINVAL;
	pthread_mutex_lock(&tel_lock);
	tel_view = view;
	/* A retry after a failure registers only what is missing: DPDK would list a twice
	 * registered command twice. */
	for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && rc == 0; i++) {
		if (tel_registered[i])
			continue;
		rc = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);
		tel_registered[i] = rc == 0;
	}
	pthread_mutex_unlock(&tel_lock);
	return rc < 0 ? rc : -rc;
}

void kl_telemetry_detach(void)
{
	pthread_mutex_lock(&tel_lock);
	tel_view = NULL;
	pthread_mutex_unlock(&tel_lock);
}
