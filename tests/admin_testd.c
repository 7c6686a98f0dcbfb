/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test-only admin server for the keylinectl tests: EAL (no hugepages), a real key table, a counter
 * view over two workers' stats filled with fixed numbers, and kl_admin polled by the main thread,
 * as keylined's control loop does.
 *
 *   admin_testd SOCKET [CAPACITY] [--store DIR --kek FILE] [--rotate DDDDDD:G:PERIOD:PREDELIVERY]...
 *               [--diameter] [--peers]
 *
 * --store: a real durable store (created when missing) loaded into the table at start, as
 * keylined does; --rotate: MSK rotation of that group (kl_rotate, ticked before "ready" and about
 * every second, as keylined's control loop does); --diameter: the "status" command gets a fixed
 * Diameter status (the values of diameter_status below: admin_testd runs no Diameter server);
 * --peers: the view gets three peer servers with fixed counters (fill_peers below) and a real
 * server-to-server state of fixed sizes (peers, status).
 *
 * Prints "ready" on stdout once listening; log lines go to stderr; exits 0 on SIGTERM/SIGINT,
 * 1 when the admin socket, the store or the rotation cannot be set up (e.g. "in use").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_admin.h"
#include "kl_eal_rundir.h"
#include "kl_rotate.h"
#include "kl_store.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define MAX_ROT 8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t ntp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec + NTP_UNIX_OFFSET) << 32 |
	       (((uint64_t)ts.tv_nsec << 32) / 1000000000u);
}

static void rot_log(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "rotate [%d]: %s\n", level, msg);
}

/* Fixed Diameter status (the test checks these values). */
static int diameter_status(void *arg, struct kl_admin_diameter_status *st)
{
	(void)arg;
	memset(st, 0, sizeof(*st));
	st->enabled = 1;
	snprintf(st->identity, sizeof(st->identity), "keyline.test.example");
	st->port = 3868;
	st->vendor_id = 10415;
	st->app_id = 16777999;
	st->answered_ok = 41;
	st->rejected = 2;
	st->failed = 1;
	st->busy = 0;
	st->commits = 17;
	st->queued = 3;
	st->peers_refused = 5;
	st->npeers = 2;
	snprintf(st->peers[0].identity, sizeof(st->peers[0].identity), "hss1.test.example");
	snprintf(st->peers[0].state, sizeof(st->peers[0].state), "STATE_OPEN");
	snprintf(st->peers[1].identity, sizeof(st->peers[1].identity), "hss2.test.example");
	snprintf(st->peers[1].state, sizeof(st->peers[1].state), "STATE_CLOSED");
	return 0;
}

/* DDDDDD:G:PERIOD:PREDELIVERY */
static int parse_rot(const char *s, struct kl_rotate_group *g)
{
	unsigned d[3], grp, per, pre;
	char tail;

	if (sscanf(s, "%2x%2x%2x:%u:%u:%u%c", &d[0], &d[1], &d[2], &grp, &per, &pre, &tail) != 6 ||
	    grp > 65535)
		return -1;
	memset(g, 0, sizeof(*g));
	for (unsigned i = 0; i < 3; i++)
		g->ref.domain[i] = (uint8_t)d[i];
	g->ref.group = (uint16_t)grp;
	g->period_s = per;
	g->predelivery_s = pre;
	return 0;
}

/* The peers --peers gives the view: fixed addresses and counters the keylinectl test checks. */
static void fill_peers(struct kl_peers *ps)
{
	static const struct {
		const char *id;
		uint8_t family;
		const char *ip;
		uint16_t port;
	} pp[] = {
		{ "vlr-2.pop.keyline.test", 4, "192.0.2.20", 2269 },
		{ "mme-b.example", 6, "2001:db8::b", 2270 },
		{ "vlr-ü.example", 4, "198.51.100.7", 40000 },
	};

	memset(ps, 0, sizeof(*ps));
	for (unsigned i = 0; i < RTE_DIM(pp); i++) {
		struct kl_peer *p = &ps->p[i];

		p->id_len = (uint16_t)strlen(pp[i].id);
		memcpy(p->id, pp[i].id, p->id_len);
		p->family = pp[i].family;
		inet_pton(p->family == 4 ? AF_INET : AF_INET6, pp[i].ip, p->ip);
		p->port = pp[i].port;
		/* peer i, counter c: 100 * (i + 1) + c */
		for (unsigned c = 0; c < KL_PEER_CNT__COUNT; c++)
			ps->cnt[i][c] = 100u * (i + 1) + c;
	}
	ps->n = RTE_DIM(pp);
	ps->cnt[KL_PEER_UNCONFIGURED][KL_PEER_CNT_REFUSED] = 42;
}

int main(int argc, char **argv)
{
	char prefix[64], err[256], *eal[] = {
		argv[0], "--no-huge", "--no-shconf", "-m", "128", "--no-pci", "--no-telemetry",
		"-l", "0", "--log-level=error", "--file-prefix", prefix,
	};
	static struct kl_worker_stats ws[2];
	static struct kl_io_stats io[2];
	struct kl_table_params tp = { .name = "testd", .e2m_ring = 4, .max_readers = 1,
				      .socket_id = -1 };
	struct kl_stats_view view;
	struct sigaction sa;
	struct kl_admin_params ap;
	struct kl_admin *a;
	struct kl_table *t;
	struct timespec ts;
	unsigned long cap = 64;
	int rc = 0, npos = 0, diam = 0, with_peers = 0;
	static struct kl_peers peers;
	struct kl_s2s *s2s = NULL;
	const char *pos[2] = { NULL, NULL }, *store_dir = NULL, *kek = NULL;
	struct kl_rotate_group rg[MAX_ROT];
	unsigned nrot = 0;
	struct kl_store *store = NULL;
	struct kl_rotate *rot = NULL;
	uint64_t last_tick = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			store_dir = argv[++i];
		} else if (!strcmp(argv[i], "--kek") && i + 1 < argc) {
			kek = argv[++i];
		} else if (!strcmp(argv[i], "--rotate") && i + 1 < argc && nrot < MAX_ROT) {
			if (parse_rot(argv[++i], &rg[nrot++])) {
				fprintf(stderr, "admin_testd: --rotate DDDDDD:G:PERIOD:PREDELIVERY\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--diameter")) {
			diam = 1;
		} else if (!strcmp(argv[i], "--peers")) {
			with_peers = 1;
		} else if (argv[i][0] != '-' && npos < 2) {
			pos[npos++] = argv[i];
		} else {
			npos = -1;
			break;
		}
	}
	if (npos < 1 || !!store_dir != !!kek) {
		fprintf(stderr, "usage: admin_testd SOCKET [CAPACITY] [--store DIR --kek FILE] "
				"[--rotate DDDDDD:G:PERIOD:PREDELIVERY]... [--diameter] [--peers]\n");
		return 2;
	}
	if (pos[1])
		cap = strtoul(pos[1], NULL, 10);
	if (cap < 1 || cap > 100000) {
		fprintf(stderr, "admin_testd: capacity 1..100000\n");
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "kl_admin_testd_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "admin_testd: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	tp.max_ues = tp.max_groups = tp.max_emses = tp.max_imsis = tp.max_appids = tp.max_pairs =
		(uint32_t)cap;
	t = kl_table_create(&tp);
	if (!t) {
		fprintf(stderr, "admin_testd: table: %s\n", rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
	}
	if (store_dir) {
		struct kl_store_params sp = { .path = store_dir, .kek_file = kek,
					      .create_if_missing = 1 };
		struct kl_store_load_stats ls;

		store = kl_store_open(&sp, err, sizeof(err));
		if (!store || kl_store_load(store, t, &ls, err, sizeof(err))) {
			fprintf(stderr, "admin_testd: %s\n", err);
			kl_store_close(store);
			kl_table_free(t);
			rte_eal_cleanup();
			return 1;
		}
	}
	if (nrot) {
		struct kl_rotate_params rp = { .table = t, .store = store, .groups = rg, .n = nrot,
					       .log = rot_log };

		rot = kl_rotate_create(&rp, err, sizeof(err));
		if (!rot || kl_rotate_tick(rot, ntp_now()) < 0) {
			fprintf(stderr, "admin_testd: rotation: %s\n", rot ? "first tick failed" : err);
			kl_rotate_free(rot);
			kl_store_close(store);
			kl_table_free(t);
			rte_eal_cleanup();
			return 1;
		}
		last_tick = ntp_now();
	}
	/* fixed counters the test checks: worker 0 and 1 */
	ws[0].counter[KL_CNT_RX] = 100;
	ws[1].counter[KL_CNT_RX] = 23;
	ws[0].counter[KL_CNT_ANSWERED_MBMS] = 90;
	ws[1].drop[KL_DROP_BAD_MAC] = 3;
	io[0].counter[KL_IO_CNT_RX_FRAMES] = 130;
	io[1].net_drop[KL_NET_DROP_NOT_FOR_US] = 4;
	io[0].svc_hist[2] = 90;
	io[0].svc_sum_ns = 90 * 2500;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&view, 0, sizeof(view));
	view.n_workers = 2;
	view.engine[0] = &ws[0];
	view.engine[1] = &ws[1];
	view.io[0] = &io[0];
	view.io[1] = &io[1];
	view.table = t;
	view.start_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	view.io_name = "socket";
	view.crypto_name = "openssl";
	view.version = "admin-testd";
	if (with_peers) {
		fill_peers(&peers);
		s2s = kl_s2s_create(1024, 256, 64, 30, 300);
		if (!s2s) {
			fprintf(stderr, "admin_testd: s2s: %s\n", strerror(errno));
			kl_table_free(t);
			rte_eal_cleanup();
			return 1;
		}
		view.peers = &peers;
		view.s2s = s2s;
	}

	memset(&ap, 0, sizeof(ap));
	ap.path = pos[0];
	ap.table = t;
	ap.stats = &view;
	ap.server_identity = "vlr-1.pop.keyline.test"; /* its pair keys of a population */
	ap.store = store;
	ap.rotate = rot;
	if (diam)
		ap.diameter_status = diameter_status;
	a = kl_admin_create(&ap, err, sizeof(err));
	if (!a) {
		fprintf(stderr, "admin_testd: %s\n", err);
		kl_rotate_free(rot);
		kl_store_close(store);
		kl_table_free(t);
		rte_eal_cleanup();
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		int n = kl_admin_poll(a, 100);

		if (n < 0) {
			fprintf(stderr, "admin_testd: poll: %s\n", strerror(-n));
			rc = 1;
			break;
		}
		if (rot && ntp_now() - last_tick >= (1ull << 32)) {
			last_tick = ntp_now();
			kl_rotate_tick(rot, last_tick); /* failures are logged and retried */
		}
	}
	kl_admin_destroy(a);
	kl_stats_s2s_forget(s2s);
	kl_s2s_destroy(s2s);
	kl_rotate_free(rot);
	kl_store_close(store);
	kl_table_free(t);
	rte_eal_cleanup();
	return rc;
}
