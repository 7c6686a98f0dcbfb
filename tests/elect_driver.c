/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test driver of kl_elect and kl_msk_guard against real etcd members (tests/test_elect.py).
 *
 *   elect_driver elect ENDPOINTS PREFIX NODE TTL_S SECONDS
 *       Campaign as NODE and run the election's poll loop for SECONDS (or until SIGTERM, which
 *       resigns). Every 20 ms a sample "s REALTIME_MS LEADER TERM" (LEADER: kl_elect_is_leader,
 *       the value a leader action would check); on every change of role, leader or term a line
 *       "c REALTIME_MS role=.. leader=.. term=.. elected=N lost=N keepalives=N failures=N".
 *   elect_driver claim ENDPOINTS PREFIX GROUP N START_REALTIME_MS KEK_HEX
 *       At START + 10 ms x i, claim MSK ID i (1..N) of GROUP with a fresh random MSK wrapped
 *       under the 32-byte KEK (kl_store_kwp); unwrap what etcd kept and print
 *       "id=I created=C ours=O mine=KCV got=KCV" (key check values only, never a key).
 */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "kl_crypto.h"
#include "kl_elect.h"
#include "kl_msk_guard.h"
#include "kl_store.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct kl_etcd *client(char *eps, const char **list, size_t *n)
{
	char err[256], *save = NULL;
	struct kl_etcd_opts o = { .connect_timeout_ms = 300, .request_timeout_ms = 1000 };
	struct kl_etcd *c;

	for (char *t = strtok_r(eps, ",", &save); t && *n < KL_ETCD_MAX_ENDPOINTS;
	     t = strtok_r(NULL, ",", &save))
		list[(*n)++] = t;
	o.endpoints = list;
	o.n_endpoints = *n;
	c = kl_etcd_new(&o, err, sizeof(err));
	if (!c) {
		printf("FAIL: kl_etcd_new: %s\n", err);
		exit(1);
	}
	return c;
}

static int run_elect(char **argv)
{
	const char *eps[KL_ETCD_MAX_ENDPOINTS];
	size_t neps = 0;
	struct kl_etcd *c = client(argv[2], eps, &neps);
	struct kl_elect_opts o = { .prefix = argv[3], .election = "rotation", .node = argv[4],
				   .ttl_s = atoll(argv[5]) };
	double secs = atof(argv[6]);
	struct kl_elect_status st, last = { .role = KL_ELECT_IDLE };
	char err[256];
	struct kl_elect *e = kl_elect_new(c, &o, err, sizeof(err));
	uint64_t end = real_ms() + (uint64_t)(secs * 1000), next_sample = 0;

	if (!e) {
		printf("FAIL: kl_elect_new: %s\n", err);
		return 1;
	}
	signal(SIGTERM, on_term);
	kl_elect_campaign(e);
	while (!stop && real_ms() < end) {
		struct pollfd pf[8];
		int n = kl_elect_pollfds(e, pf, 8), t = kl_elect_timeout_ms(e);
		uint64_t now;

		poll(pf, (nfds_t)n, t < 20 ? t : 20);
		/* sampled before kl_elect_run, as a leader action would check before anything else:
		 * after a pause the clock alone must end leadership */
		now = real_ms();
		if (now >= next_sample) {
			int lead = kl_elect_is_leader(e);

			kl_elect_status(e, &st);
			printf("s %" PRIu64 " %d %" PRId64 "\n", now, lead, st.term);
			next_sample = now + 20;
			if (st.role != last.role || strcmp(st.leader, last.leader) || st.term != last.term ||
			    st.lost != last.lost)
				printf("c %" PRIu64 " role=%s leader=%s term=%" PRId64
				       " elected=%" PRIu64 " lost=%" PRIu64 " keepalives=%" PRIu64
				       " failures=%" PRIu64 " since=%" PRId64 " error=%s\n",
				       now, kl_elect_role_name(st.role), st.leader[0] ? st.leader : "-",
				       st.term, st.elected, st.lost, st.keepalives,
				       st.keepalive_failures, st.elected_revision,
				       st.error[0] ? st.error : "-");
			last = st;
		}
		kl_elect_run(e);
	}
	if (stop) {
		int rc = kl_elect_resign(e);

		printf("resigned %" PRIu64 " %s leader=%d\n", real_ms(), rc ? kl_etcd_strerror(rc) : "ok",
		       kl_elect_is_leader(e));
	}
	kl_elect_free(e);
	kl_etcd_free(c);
	printf("PASS\n");
	return 0;
}

static void kcv_hex(const uint8_t *key, size_t len, char out[2 * KL_KCV_LEN + 1])
{
	uint8_t k[KL_KCV_LEN];

	if (kl_kcv(key, len, k)) {
		snprintf(out, 2 * KL_KCV_LEN + 1, "error");
		return;
	}
	for (int i = 0; i < KL_KCV_LEN; i++)
		snprintf(out + 2 * i, 3, "%02X", k[i]);
}

static int run_claim(char **argv)
{
	const char *eps[KL_ETCD_MAX_ENDPOINTS];
	size_t neps = 0;
	struct kl_etcd *c = client(argv[2], eps, &neps);
	const char *prefix = argv[3], *group = argv[4], *hex = argv[7];
	int n = atoi(argv[5]);
	uint64_t start = strtoull(argv[6], NULL, 10);
	uint8_t kek[32];

	if (strlen(hex) != 64) {
		printf("FAIL: KEK: 64 hex digits\n");
		return 1;
	}
	for (int i = 0; i < 32; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &kek[i]) != 1) {
			printf("FAIL: KEK: not hex\n");
			return 1;
		}
	for (int id = 1; id <= n; id++) {
		uint8_t msk[16], wrapped[64], got[64];
		struct kl_msk_claim cl;
		char mine[8], gotk[8];
		long wl, gl;
		int rc;

		while (real_ms() < start + 10u * (uint64_t)id) {
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
		}
		if (RAND_bytes(msk, sizeof(msk)) != 1) {
			printf("FAIL: RAND_bytes\n");
			return 1;
		}
		kcv_hex(msk, sizeof(msk), mine);
		wl = kl_store_kwp(kek, sizeof(kek), 1, msk, sizeof(msk), wrapped, sizeof(wrapped));
		if (wl <= 0) {
			printf("FAIL: wrap\n");
			return 1;
		}
		rc = kl_msk_claim(c, prefix, group, (uint32_t)id, wrapped, (size_t)wl, &cl);
		if (rc) {
			printf("FAIL: claim %d: %s (%s)\n", id, kl_etcd_strerror(rc), kl_etcd_errmsg(c));
			return 1;
		}
		gl = kl_store_kwp(kek, sizeof(kek), 0, cl.value, cl.value_len, got, sizeof(got));
		if (gl != (long)sizeof(msk)) {
			printf("FAIL: the value in etcd does not unwrap under the KEK\n");
			return 1;
		}
		kcv_hex(got, (size_t)gl, gotk);
		printf("id=%d created=%d ours=%d mine=%s got=%s rev=%" PRId64 "\n", id, cl.created,
		       cl.ours, mine, gotk, cl.create_revision);
		OPENSSL_cleanse(msk, sizeof(msk));
		OPENSSL_cleanse(got, sizeof(got));
		kl_msk_claim_free(&cl);
	}
	OPENSSL_cleanse(kek, sizeof(kek));
	kl_etcd_free(c);
	printf("PASS\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 7 && !strcmp(argv[1], "elect"))
		return run_elect(argv);
	if (argc == 8 && !strcmp(argv[1], "claim"))
		return run_claim(argv);
	fprintf(stderr, "usage: elect_driver elect ENDPOINTS PREFIX NODE TTL_S SECONDS\n"
			"       elect_driver claim ENDPOINTS PREFIX GROUP N START_REALTIME_MS KEK_HEX\n");
	return 2;
}
