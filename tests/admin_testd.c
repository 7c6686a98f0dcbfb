/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test-only admin server for the keylinectl tests: EAL (no hugepages), a real key table, a counter
 * view over two workers' stats filled with fixed numbers, and kl_admin polled by the main thread,
 * as keylined's control loop does.
 *
 *   admin_testd SOCKET [CAPACITY]
 *
 * Prints "ready" on stdout once listening; log lines go to stderr; exits 0 on SIGTERM/SIGINT,
 * 1 when the admin socket cannot be created (e.g. "in use").
 */
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

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
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
	int rc = 0;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: admin_testd SOCKET [CAPACITY]\n");
		return 2;
	}
	if (argc == 3)
		cap = strtoul(argv[2], NULL, 10);
	if (cap < 1 || cap > 100000) {
		fprintf(stderr, "admin_testd: capacity 1..100000\n");
		return 2;
	}
	snprintf(prefix, sizeof(prefix), "kl_admin_testd_%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "admin_testd: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	tp.max_ues = tp.max_groups = tp.max_emses = tp.max_imsis = tp.max_appids = (uint32_t)cap;
	t = kl_table_create(&tp);
	if (!t) {
		fprintf(stderr, "admin_testd: table: %s\n", rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
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

	memset(&ap, 0, sizeof(ap));
	ap.path = argv[1];
	ap.table = t;
	ap.stats = &view;
	a = kl_admin_create(&ap, err, sizeof(err));
	if (!a) {
		fprintf(stderr, "admin_testd: %s\n", err);
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
	}
	kl_admin_destroy(a);
	kl_table_free(t);
	rte_eal_cleanup();
	return rc;
}
