/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <dirent.h>
#include <sched.h>
#include <poll.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "kl_cluster.h"
#include "kl_daemon.h"
#include "kl_engine.h"
#include "kl_io.h"
#include "kl_naf_stats.h"
#include "kl_population.h"
#include "kl_port.h"
#include "kl_ratelimit.h"
#include "kl_s2s.h"
#include "kl_services.h"
#include "kl_stats.h"
#include "kl_store.h"
#include "kl_table.h"
#include "kl_telemetry.h"
#include "kl_util.h"

#ifndef KL_VERSION
#define KL_VERSION "unknown"
#endif

struct kl_daemon {
	struct kl_config cfg;
	struct kl_table *table;
	struct kl_io_clock clock;
	volatile int stop_workers;
	unsigned nw;
	struct kl_io_worker *wk[KL_CONFIG_MAX_WORKERS];
	unsigned lcore[KL_CONFIG_MAX_WORKERS];
	int launched[KL_CONFIG_MAX_WORKERS];
	unsigned nports;
	struct kl_port port[KL_CONFIG_MAX_PORTS];
	struct kl_net_addrs addrs[KL_CONFIG_MAX_PORTS];
	struct kl_net_addrs sock_addrs;
	struct kl_store *store; /* NULL: no store: section */
	struct kl_services_ctx svc_ctx;
	struct kl_services svc; /* admin, /metrics, Diameter feed, MSK rotation (kl_services.h) */
	struct kl_replay *replay; /* one replay cache for all workers */
	/* server-to-server: one peer list (counters shared), one state and, for dpdk io, one
	 * neighbour table for all workers */
	struct kl_peers *peers;
	struct kl_s2s *s2s;
	struct kl_io_neigh *neigh;
};

_Static_assert(KL_CONFIG_MAX_PEERS == KL_PEERS_MAX, "peers: differs from kl_peer.h");
_Static_assert(KL_CONFIG_PEER_ID_MAX <= KL_MIKEY_ID_MAX, "a peer identity must fit kl_peer.id");

static enum kl_config_log_level g_level = KL_CONFIG_LOG_INFO;

/* DPDK cannot unregister telemetry commands, so the view they read lives as long as the process
 * and is emptied (no workers, no table) before what it points at is freed. */
static struct kl_stats_view g_view;
/* The control plane's counters (kl_ctl_stats.h), in g_view.ctl; they outlive the services too. */
static struct kl_ctl_stats g_ctl;
/* The NAF Key Center's counters (kl_naf_stats.h), in g_view.naf; they outlive the service. */
static struct kl_naf_stats g_naf = KL_NAF_STATS_INIT;
/* The cluster node's figures (kl_cluster.h), in g_view.cluster; they outlive the service. */
static struct kl_cluster_stats g_cluster;

void kl_daemon_logf(enum kl_config_log_level l, const char *fmt, ...)
{
	va_list ap;

	if (l > g_level)
		return;
	fprintf(stderr, "keylined: %s: ", kl_config_log_level_name(l));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define logf_ kl_daemon_logf /* the short name used below */

static void crypto_log(const char *msg)
{
	logf_(KL_CONFIG_LOG_INFO, "%s", msg);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill_addrs(const struct kl_config *c, struct kl_net_addrs *a, const uint8_t *mac)
{
	memset(a, 0, sizeof(*a));
	if (mac)
		memcpy(a->mac, mac, 6);
	for (unsigned i = 0; i < c->n_ipv4 && i < KL_NET_MAX_ADDRS; i++)
		memcpy(a->ip4[a->n4++], &c->ipv4[i], 4);
	for (unsigned i = 0; i < c->n_ipv6 && i < KL_NET_MAX_ADDRS; i++)
		memcpy(a->ip6[a->n6++], &c->ipv6[i], 16);
	a->udp_port = c->udp_port;
}

static void daemon_free(struct kl_daemon *d)
{
	kl_telemetry_detach(); /* waits for a command in progress; later ones answer null */
	__atomic_store_n(&g_view.n_workers, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g_view.table, NULL, __ATOMIC_RELEASE);
	/* in reverse start order; the Diameter feed (the last) is stopped, its queued requests
	 * dropped unanswered, before the table and the store go */
	kl_services_stop(&d->svc);
	for (unsigned i = 0; i < d->nw; i++) {
		struct kl_io_worker *w = d->wk[i];

		if (!w)
			continue;
		if (d->cfg.io == KL_CONFIG_IO_SOCKET)
			kl_io_socket_close(w);
		kl_worker_destroy(w->engine);
		kl_rl_free(w->rl);
		rte_free(w);
	}
	kl_replay_destroy(d->replay); /* after the workers that share it */
	__atomic_store_n(&g_view.s2s, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&g_view.peers, NULL, __ATOMIC_RELEASE);
	kl_stats_s2s_forget(d->s2s);
	kl_s2s_destroy(d->s2s);
	free(d->peers);
	free(d->neigh);
	for (unsigned i = 0; i < d->nports; i++)
		kl_port_close(&d->port[i]);
	/* after the services (the admin socket, the feed and the rotation write) and the workers:
	 * nothing writes any more */
	kl_store_close(d->store);
	kl_table_free(d->table);
	free(d);
}

static int import_population(struct kl_daemon *d, const char *path, int *status)
{
	struct kl_pop_params pp;
	struct kl_pop_stats st;
	char err[256];
	int rc;

	rc = kl_pop_read_file(path, &pp, err, sizeof(err));
	if (rc) {
		logf_(KL_CONFIG_LOG_ERROR, "population %s: %s", kl_maybe_key(path) ? "(-p)" : path, err);
		*status = KL_EXIT_CONFIG;
		return -1;
	}
	if (pp.ues > d->cfg.table.ues || pp.groups > d->cfg.table.groups ||
	    pp.emses > d->cfg.table.emses || pp.imsis > d->cfg.table.imsis ||
	    pp.appids > d->cfg.table.appids || pp.e2m_keys_per_imsi > d->cfg.table.e2m_ring ||
	    pp.pairs > d->cfg.table.pairs) {
		logf_(KL_CONFIG_LOG_ERROR,
		      "population %s: %u UEs, %u groups, %u EMSEs, %u IMSIs (%u keys each), %u app ids, "
		      "%u pairs do not fit table capacities %u/%u/%u/%u (ring %u)/%u/%u (config key "
		      "table)",
		      path, pp.ues, pp.groups, pp.emses, pp.imsis, pp.e2m_keys_per_imsi, pp.appids,
		      pp.pairs, d->cfg.table.ues, d->cfg.table.groups, d->cfg.table.emses,
		      d->cfg.table.imsis, d->cfg.table.e2m_ring, d->cfg.table.appids,
		      d->cfg.table.pairs);
		*status = KL_EXIT_CONFIG;
		return -1;
	}
	{
		/* the table's default (kl_table_params.max_ues_dh) when the key is not set */
		uint32_t u = d->cfg.table.ues, dh_cap = d->cfg.table.dh_ues;

		if (!dh_cap)
			dh_cap = RTE_MAX(u / 16 + 1024, RTE_MIN(u, 65536u));

		if ((kl_pop_services(&pp) & KL_SVC(DH)) && pp.ues > dh_cap) {
			logf_(KL_CONFIG_LOG_ERROR,
			      "population %s: %u UEs with the dh service do not fit the table's %u "
			      "(config key table.dh_ues)",
			      path, pp.ues, dh_cap);
			*status = KL_EXIT_CONFIG;
			return -1;
		}
	}
	/* our pair keys with the population's peer servers */
	pp.server_id = d->cfg.server_identity;
	pp.server_id_len = d->cfg.server_identity_len;
	rc = kl_pop_import(d->table, &pp, &st);
	if (rc) {
		logf_(KL_CONFIG_LOG_ERROR, "population %s: import failed: %s", path, strerror(-rc));
		*status = KL_EXIT_FAIL;
		return -1;
	}
	logf_(KL_CONFIG_LOG_INFO,
	      "population %s imported (TEST KEYS): %u UEs, %u groups, %u EMSEs, %u IMSIs, %u E2M "
	      "keys, %u app ids, %u pair keys in %.2f s",
	      path, st.ues, st.groups, st.emses, st.imsis, st.e2m_keys, st.appids, st.pairs,
	      (double)st.elapsed_ns / 1e9);
	return 0;
}

/* Open the durable store (the KEK is checked here) before anything else is set up, so that a
 * wrong KEK, an unsafe KEK file or a damaged store stops keylined as a configuration error. */
static int open_store(struct kl_daemon *d, int *status)
{
	struct kl_store_params sp = {
		.path = d->cfg.store.path,
		.kek_file = d->cfg.store.kek_file,
		.ctl = &g_ctl,
		.map_size = (uint64_t)d->cfg.store.map_size_mb << 20,
		.create_if_missing = 1,
		.verify = 1, /* a damaged store must stop start-up with a message, not a signal */
	};
	char err[512];
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	d->store = kl_store_open(&sp, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!d->store) {
		int damaged = errno == EBADMSG;

		logf_(KL_CONFIG_LOG_ERROR, "store: %s%s%s", err, damaged ? ": " : "",
		      damaged ? KL_STORE_RESTORE_HINT : "");
		*status = KL_EXIT_CONFIG;
		return -1;
	}
	logf_(KL_CONFIG_LOG_INFO, "store %s opened, every database walked, in %.2f s",
	      d->cfg.store.path,
	      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

/* Every stored entry into the table before any worker runs: keys first, then service. */
static int load_store(struct kl_daemon *d, int *status)
{
	struct kl_store_load_stats st;
	char err[512];
	int rc;

	memset(&st, 0, sizeof(st));
	rc = kl_store_load(d->store, d->table, &st, err, sizeof(err));
	if (rc) {
		if (rc == -ENOSPC)
			logf_(KL_CONFIG_LOG_ERROR,
			      "store: %s (the key table is smaller than the store: raise table.*)",
			      err);
		else
			logf_(KL_CONFIG_LOG_ERROR, "store: %s%s%s", err, rc == -EBADMSG ? ": " : "",
			      rc == -EBADMSG ? KL_STORE_RESTORE_HINT : "");
		*status = KL_EXIT_CONFIG;
		return -1;
	}
	logf_(KL_CONFIG_LOG_INFO,
	      "store %s loaded: %" PRIu64 " UEs, %" PRIu64 " groups, %" PRIu64 " EMSEs, %" PRIu64
	      " IMSIs, %" PRIu64 " app ids in %.2f s",
	      d->cfg.store.path, st.loaded[KL_TK_UE], st.loaded[KL_TK_GROUP],
	      st.loaded[KL_TK_EMSE], st.loaded[KL_TK_E2M], st.loaded[KL_TK_APPID], st.seconds);
	return 0;
}

static int open_ports(struct kl_daemon *d, int *status)
{
	char err[256], tag[16];

	for (unsigned i = 0; i < d->cfg.n_ports; i++) {
		const struct kl_config_port *cp = &d->cfg.ports[i];
		int rc;

		snprintf(tag, sizeof(tag), "p%u", i);
		rc = kl_port_open(&d->port[i], tag, cp->devargs, cp->queues, err, sizeof(err));
		if (rc) {
			logf_(KL_CONFIG_LOG_ERROR, "ports[%u] (%s): %s", i, cp->name, err);
			/* the device named in the config cannot be used as configured */
			*status = KL_EXIT_CONFIG;
			return -1;
		}
		d->nports = i + 1;
		fill_addrs(&d->cfg, &d->addrs[i], d->port[i].mac);
		logf_(KL_CONFIG_LOG_INFO,
		      "port %s: %s (%s), %u queue pair%s%s, MAC %02x:%02x:%02x:%02x:%02x:%02x", cp->name,
		      d->port[i].name, d->port[i].driver, cp->queues, cp->queues > 1 ? "s" : "",
		      cp->queues > 1 ? (d->port[i].rss ? ", RSS on IP addresses"
						       : ", no RSS: the sender picks the queue")
				     : "",
		      d->port[i].mac[0], d->port[i].mac[1], d->port[i].mac[2], d->port[i].mac[3],
		      d->port[i].mac[4], d->port[i].mac[5]);
	}
	return 0;
}

/* The peer list, the server-to-server state and (dpdk io) the neighbour table all workers share. */
static int make_s2s(struct kl_daemon *d, int *status)
{
	const struct kl_config *c = &d->cfg;

	d->peers = aligned_alloc(64, (sizeof(*d->peers) + 63) & ~(size_t)63);
	if (!d->peers) {
		logf_(KL_CONFIG_LOG_ERROR, "peers: out of memory");
		*status = KL_EXIT_FAIL;
		return -1;
	}
	memset(d->peers, 0, sizeof(*d->peers));
	for (unsigned i = 0; i < c->n_peers; i++) {
		const struct kl_config_peer *cp = &c->peers[i];
		struct kl_peer *p = &d->peers->p[i];

		memcpy(p->id, cp->identity, cp->identity_len);
		p->id_len = cp->identity_len;
		p->family = cp->family == AF_INET ? 4 : 6;
		memcpy(p->ip, cp->family == AF_INET ? (const void *)&cp->v4 : (const void *)&cp->v6,
		       cp->family == AF_INET ? 4 : 16);
		p->port = cp->port;
		p->has_mac = cp->has_mac;
		memcpy(p->mac, cp->mac, 6);
	}
	d->peers->n = c->n_peers;
	if (c->io == KL_CONFIG_IO_DPDK && c->n_peers) {
		d->neigh = aligned_alloc(64, (sizeof(*d->neigh) + 63) & ~(size_t)63);
		if (!d->neigh) {
			logf_(KL_CONFIG_LOG_ERROR, "peers: out of memory");
			*status = KL_EXIT_FAIL;
			return -1;
		}
		memset(d->neigh, 0, sizeof(*d->neigh));
		for (unsigned i = 0; i < c->n_peers; i++)
			if (c->peers[i].has_mac)
				d->neigh->e[i] = kl_io_neigh_word(c->peers[i].mac, 0, 1);
	}
	d->s2s = kl_s2s_create(c->rendezvous_entries, c->dh_cache_entries, c->s2s_pending,
			       c->rendezvous_s, c->dh_cache_s);
	if (!d->s2s) {
		logf_(KL_CONFIG_LOG_ERROR,
		      "server-to-server state (rendezvous_entries %u, dh_cache_entries %u, "
		      "s2s_pending %u): %s (lower them)",
		      c->rendezvous_entries, c->dh_cache_entries, c->s2s_pending, strerror(errno));
		*status = KL_EXIT_FAIL;
		return -1;
	}
	g_view.peers = d->peers;
	g_view.s2s = d->s2s;
	for (unsigned i = 0; i < c->n_peers; i++) {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(c->peers[i].family,
			  c->peers[i].family == AF_INET ? (const void *)&c->peers[i].v4
							: (const void *)&c->peers[i].v6,
			  a, sizeof(a));
		logf_(KL_CONFIG_LOG_INFO, "peer %s at %s%s%s port %u%s", c->peers[i].identity,
		      c->peers[i].family == AF_INET6 ? "[" : "", a,
		      c->peers[i].family == AF_INET6 ? "]" : "", c->peers[i].port,
		      c->peers[i].has_mac ? ", MAC configured" : "");
	}
	return 0;
}

static int make_workers(struct kl_daemon *d, int *status)
{
	struct kl_engine_config ec = {
		.idr = (const uint8_t *)d->cfg.server_identity,
		.idr_len = d->cfg.server_identity_len,
		.skew_s = d->cfg.skew_s,
		.predelivery_s = d->cfg.predelivery_s,
		.session_s = d->cfg.hm_session_s,
		.retry_after_ms = (uint16_t)d->cfg.retry_after_ms,
		.backend = (enum kl_crypto_backend)d->cfg.crypto,
	};
	char err[256];
	uint64_t slots = 1;

	/* One cache for the whole server: a replay is refused whichever worker it reaches (SO_REUSEPORT
	 * and RSS send another source port or address to another worker). replay_cache slots per
	 * worker, rounded up to a power of two. */
	while (slots < (uint64_t)d->cfg.replay_cache * d->nw)
		slots <<= 1;
	d->replay = kl_replay_create(slots);
	if (!d->replay) {
		logf_(KL_CONFIG_LOG_ERROR, "replay cache (%llu slots): %s", (unsigned long long)slots,
		      strerror(errno));
		*status = KL_EXIT_FAIL;
		return -1;
	}
	ec.replay = d->replay;
	if (make_s2s(d, status))
		return -1;
	ec.peers = d->peers;
	ec.s2s = d->s2s;

	for (unsigned i = 0; i < d->nw; i++) {
		struct kl_io_worker *w = rte_zmalloc("kl_worker", sizeof(*w), 64);

		if (!w) {
			logf_(KL_CONFIG_LOG_ERROR, "worker %u: out of memory", i);
			*status = KL_EXIT_FAIL;
			return -1;
		}
		d->wk[i] = w;
		w->id = i;
		w->table = d->table;
		w->clock = &d->clock;
		w->stop = &d->stop_workers;
		w->peers = d->peers;
		w->neigh = d->neigh;
		w->engine = kl_worker_create(&ec, d->table, i);
		if (!w->engine) {
			logf_(KL_CONFIG_LOG_ERROR, "worker %u: engine (crypto %s): %s", i,
			      d->cfg.crypto == KL_CONFIG_CRYPTO_OPENSSL ? "openssl" : "ipsec-mb",
			      strerror(errno));
			*status = KL_EXIT_FAIL;
			return -1;
		}
		if (d->cfg.rate_limit.per_source_pps) {
			struct kl_rl_params rp = {
				.pps = d->cfg.rate_limit.per_source_pps,
				.burst = d->cfg.rate_limit.burst,
				.slots = d->cfg.rate_limit.table_size,
				.hz = rte_get_tsc_hz(),
			};

			w->rl = kl_rl_create(&rp);
			if (!w->rl) {
				logf_(KL_CONFIG_LOG_ERROR, "worker %u: rate limiter: %s", i,
				      strerror(errno));
				*status = KL_EXIT_FAIL;
				return -1;
			}
		}
		if (d->cfg.io == KL_CONFIG_IO_SOCKET) {
			if (kl_io_socket_open(w, &d->sock_addrs, err, sizeof(err))) {
				logf_(KL_CONFIG_LOG_ERROR, "worker %u: %s", i, err);
				*status = KL_EXIT_FAIL;
				return -1;
			}
		} else {
			for (unsigned p = 0; p < d->nports; p++) {
				w->q[p].port_id = d->port[p].port_id;
				w->q[p].queue_id = (uint16_t)i;
				w->q[p].addrs = &d->addrs[p];
				w->q[p].txb = d->port[p].txb[i];
				w->q[p].pool = d->port[p].pool;
			}
			w->nq = d->nports;
		}
		g_view.engine[i] = kl_worker_stats(w->engine);
		g_view.io[i] = &w->st;
	}
	return 0;
}

/*
 * The control thread's CPUs: EAL pinned it to the main lcore's; take the workers' CPUs out of
 * that set (an --lcores mapping can share them) before the services start, so that every thread
 * the control side creates and every thread those create (freeDiameter's, the Zn client's
 * peer, the metrics server, the store's backup; threads inherit their creator's affinity) stays
 * off the workers' cores. EAL's own threads started before (eal-intr-thread, which EAL gives the
 * main lcore's set) get the same set; the workers' threads (rte-worker-N) keep theirs. The NAF
 * Key Center's HTTPS pool gets its own set (kl_naf.h).
 */
static void eal_threads_affinity(const cpu_set_t *set)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[64], comm[32] = "";
		pid_t tid = (pid_t)atoi(de->d_name);
		FILE *f;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
		if ((f = fopen(path, "r"))) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = '\0';
			fclose(f);
		}
		if (strncmp(comm, "rte-worker-", 11) && sched_setaffinity(tid, sizeof(*set), set))
			logf_(KL_CONFIG_LOG_WARNING, "thread %d affinity: %s", (int)tid,
			      strerror(errno));
	}
	closedir(d);
}

static void control_affinity(const uint64_t *worker_cpus)
{
	cpu_set_t set;
	char list[128];
	size_t len = 0;

	if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set))
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE && cpu < KL_CONFIG_MAX_CPUS; cpu++)
		if (worker_cpus[cpu / 64] >> (cpu % 64) & 1)
			CPU_CLR(cpu, &set);
	if (CPU_COUNT(&set) == 0) {
		logf_(KL_CONFIG_LOG_WARNING, "the control thread's CPUs are all the workers': its "
					     "threads share the workers' cores (give EAL a main lcore of its own)");
		return;
	}
	for (int cpu = 0; cpu < CPU_SETSIZE && len + 8 < sizeof(list); cpu++)
		if (CPU_ISSET(cpu, &set))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", len ? "," : "",
						cpu);
	eal_threads_affinity(&set); /* this thread too */
	logf_(KL_CONFIG_LOG_INFO, "control threads on CPU %s (the workers' CPUs excluded)", list);
}

struct kl_daemon *kl_daemon_start(const struct kl_config *cfg, const struct kl_daemon_opts *o,
				  int *status)
{
	struct kl_table_params tp;
	struct kl_daemon *d;
	unsigned lc, n = 0;

	*status = KL_EXIT_FAIL;
	g_level = cfg->log_level;
	kl_crypto_set_log(crypto_log);
	d = calloc(1, sizeof(*d));
	if (!d) {
		logf_(KL_CONFIG_LOG_ERROR, "out of memory");
		return NULL;
	}
	d->cfg = *cfg;
	d->nw = cfg->workers;
	RTE_LCORE_FOREACH_WORKER(lc) {
		if (n < d->nw)
			d->lcore[n] = lc;
		n++;
	}
	if (n < d->nw) {
		logf_(KL_CONFIG_LOG_ERROR,
		      "workers: %u workers need %u worker lcores besides the main one; EAL has %u "
		      "(give it more with -l)",
		      d->nw, d->nw, n);
		*status = KL_EXIT_CONFIG;
		free(d);
		return NULL;
	}
	kl_io_clock_init(&d->clock, rte_get_tsc_hz());
	if (cfg->store.enabled && open_store(d, status)) {
		free(d);
		return NULL;
	}

	memset(&tp, 0, sizeof(tp));
	tp.name = "kl";
	tp.max_ues = cfg->table.ues;
	tp.max_groups = cfg->table.groups;
	tp.max_emses = cfg->table.emses;
	tp.max_imsis = cfg->table.imsis;
	tp.max_appids = cfg->table.appids;
	tp.max_pairs = cfg->table.pairs;
	tp.max_ues_dh = cfg->table.dh_ues;
	tp.e2m_ring = (uint8_t)cfg->table.e2m_ring;
	tp.max_readers = (uint8_t)d->nw;
	tp.socket_id = (int)rte_socket_id();
	d->table = kl_table_create(&tp);
	if (!d->table) {
		logf_(KL_CONFIG_LOG_ERROR,
		      "key table for %u UEs: %s (give EAL more memory with -m, or lower table.ues)",
		      cfg->table.ues, rte_strerror(rte_errno));
		kl_store_close(d->store);
		free(d);
		return NULL;
	}
	g_view.n_workers = d->nw;
	g_view.table = d->table;
	g_view.start_ns = realtime_ns();
	g_view.io_name = cfg->io == KL_CONFIG_IO_SOCKET ? "socket" : "dpdk";
	g_view.crypto_name = cfg->crypto == KL_CONFIG_CRYPTO_OPENSSL ? "openssl" : "ipsec-mb";
	g_view.version = KL_VERSION;
	g_view.ctl = &g_ctl;
	if (cfg->naf.enabled)
		g_view.naf = &g_naf;
	if (cfg->cluster.enabled) {
		snprintf(g_cluster.node, sizeof(g_cluster.node), "%s", cfg->cluster.node);
		kl_cluster_role_set(&g_cluster, KL_CLUSTER_ROLE_FOLLOWER);
		g_view.cluster = &g_cluster;
	}

	if (cfg->io == KL_CONFIG_IO_SOCKET)
		fill_addrs(cfg, &d->sock_addrs, NULL);
	else if (open_ports(d, status))
		goto fail;
	if (make_workers(d, status))
		goto fail;
	/* Keys first: nothing is answered from a half-filled table. The store's keys go in before
	 * a test population, whose entries (table only, never stored) then take precedence. */
	if (d->store && load_store(d, status))
		goto fail;
	if (o && o->population) {
		if (d->store)
			logf_(KL_CONFIG_LOG_WARNING,
			      "population %s: its test keys go into the key table only, not into "
			      "the store",
			      o->population);
		if (import_population(d, o->population, status))
			goto fail;
	}
	/* the services in order (kl_services.h): rotation first, the Diameter feed last */
	d->svc_ctx.cfg = &d->cfg;
	d->svc_ctx.table = d->table;
	d->svc_ctx.store = d->store;
	d->svc_ctx.view = &g_view;
	d->svc_ctx.ctl = &g_ctl;
	d->svc_ctx.set = &d->svc;
	d->svc_ctx.naf_stats = &g_naf;
	d->svc_ctx.cluster_stats = &g_cluster;
	for (unsigned i = 0; i < d->nw; i++) {
		unsigned cpu = rte_lcore_to_cpu_id((int)d->lcore[i]);

		if (cpu < KL_CONFIG_MAX_CPUS)
			d->svc_ctx.worker_cpus[cpu / 64] |= 1ull << (cpu % 64);
	}
	control_affinity(d->svc_ctx.worker_cpus);
	if (kl_services_start(&d->svc, kl_keylined_services, kl_keylined_n_services, &d->svc_ctx,
			      status))
		goto fail;
	{
		int rc = kl_telemetry_register(&g_view);

		if (rc)
			logf_(KL_CONFIG_LOG_WARNING, "DPDK telemetry commands not registered: %s",
			      strerror(-rc));
	}

	for (unsigned i = 0; i < d->nw; i++) {
		int rc = rte_eal_remote_launch(cfg->io == KL_CONFIG_IO_SOCKET ? kl_io_socket_loop
									      : kl_io_dpdk_loop,
					       d->wk[i], d->lcore[i]);

		if (rc) {
			logf_(KL_CONFIG_LOG_ERROR, "worker %u: cannot launch on lcore %u: %s", i,
			      d->lcore[i], rte_strerror(-rc));
			d->stop_workers = 1;
			rte_eal_mp_wait_lcore();
			*status = KL_EXIT_FAIL;
			goto fail;
		}
		d->launched[i] = 1;
	}
	logf_(KL_CONFIG_LOG_INFO,
	      "serving %s on UDP %u: %u worker%s, io %s, crypto %s; admin %s%s%s; store %s%s",
	      cfg->server_identity, cfg->udp_port, d->nw, d->nw > 1 ? "s" : "", g_view.io_name,
	      g_view.crypto_name, cfg->admin_socket, cfg->metrics.enabled ? ", metrics " : "",
	      cfg->metrics.enabled ? cfg->metrics.text : "",
	      d->store ? cfg->store.path : "none (keys in memory only)",
	      cfg->diameter.enabled ? "; Diameter feed on" : "");
	printf("keylined: ready\n");
	fflush(stdout);
	*status = KL_EXIT_OK;
	return d;
fail:
	daemon_free(d);
	return NULL;
}

int kl_daemon_run(struct kl_daemon *d, volatile sig_atomic_t *stop)
{
	uint64_t last_sync = rte_get_tsc_cycles(), hz = rte_get_tsc_hz();

	while (!*stop) {
		struct pollfd pf[KL_SERVICES_MAX_POLLFDS];
		unsigned npf = kl_services_pollfds(&d->svc, pf, KL_SERVICES_MAX_POLLFDS);
		uint64_t now;

		if (poll(pf, npf, kl_services_timeout(&d->svc, 100)) < 0 && errno != EINTR)
			logf_(KL_CONFIG_LOG_WARNING, "control loop poll failed: %s", strerror(errno));
		kl_services_poll(&d->svc, pf);
		now = rte_get_tsc_cycles();
		if (now - last_sync >= hz) {
			kl_io_clock_sync(&d->clock);
			kl_services_tick(&d->svc);
			last_sync = now;
		}
		for (unsigned i = 0; i < d->nw; i++) {
			if (d->launched[i] && rte_eal_get_lcore_state(d->lcore[i]) == WAIT) {
				logf_(KL_CONFIG_LOG_ERROR, "worker %u stopped unexpectedly", i);
				return KL_EXIT_FAIL;
			}
		}
	}
	return KL_EXIT_OK;
}

static void print_final(void)
{
	struct kl_stats_total t;
	const struct kl_peers *ps = g_view.peers;

	if (kl_stats_sum(&g_view, -1, &t))
		return;
	printf("keylined: final counters\n");
	for (unsigned i = 0; i < KL_CNT__COUNT; i++)
		printf("  %-26s %llu\n", kl_counter_name(i), (unsigned long long)t.engine.counter[i]);
	for (unsigned i = 0; i < KL_IO_CNT__COUNT; i++)
		printf("  %-26s %llu\n", kl_io_counter_name(i), (unsigned long long)t.io.counter[i]);
	for (unsigned i = 1; i < KL_DROP__COUNT; i++)
		printf("  drop_%-21s %llu\n", kl_drop_name(i), (unsigned long long)t.engine.drop[i]);
	for (unsigned i = 1; i < KL_NET_DROP__COUNT; i++)
		printf("  net_drop_%-17s %llu\n", kl_net_drop_name(i),
		       (unsigned long long)t.io.net_drop[i]);
	/* per peer by index (peers[N] of the config: identities may hold spaces) */
	for (unsigned i = 0; ps && i < ps->n; i++)
		for (unsigned c = 0; c < KL_PEER_CNT__COUNT; c++)
			printf("  peer%u_%-20s %llu\n", i, kl_peer_counter_name(c),
			       (unsigned long long)kl_peer_counter(ps, i, c));
	if (ps)
		printf("  unconfigured_refused       %llu\n",
		       (unsigned long long)kl_peer_counter(ps, KL_PEER_UNCONFIGURED,
							   KL_PEER_CNT_REFUSED));
	fflush(stdout);
}

void kl_daemon_stop(struct kl_daemon *d)
{
	if (!d)
		return;
	__atomic_store_n(&d->stop_workers, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < d->nw; i++)
		if (d->launched[i])
			(void)rte_eal_wait_lcore(d->lcore[i]);
	/* the workers have returned: the counters are final */
	print_final();
	daemon_free(d);
	logf_(KL_CONFIG_LOG_INFO, "stopped");
}
