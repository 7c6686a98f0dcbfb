/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zn_client: keylined's Diameter stack as keylined starts it (kl_diameter_start, generated
 * configuration, Diameter/TLS server) with the Zn client (kl_zn) on it, driven by commands on
 * stdin, one JSON line per answer on stdout (keys as KCVs only). For tests/test_zn.py.
 *
 *   zn_client --identity ID --cert PEM --key PEM --ca PEM --port P
 *             --bsf ID --bsf-address ADDR --bsf-port P [--timeout-ms MS] [--cache N]
 * commands:
 *   wait-open MS            until the BSF connection is open: {"open":0|1,"ms":...}
 *   get BTID NAFHEX         kl_zn_get: {"status","result_code","kcv","expiry","created",
 *                           "gba_type","impi","cached","us"}
 *   forget BTID
 *   stats                   kl_zn_get_stats as JSON
 *   bench BTID N            N cold requests (NAF_Ids "naf-I.bench.test" || 01 00 00 00 02),
 *                           then the same N again from the cache: p50/p99 of each in us
 *   parse FILE NOW          kl_zn_parse_bia over the file's bytes at Unix time NOW (no stack
 *                           involved): {"status","result_code","kcv","impi"}
 *   stop-pending BTID       a thread asks for BTID while kl_zn_stop runs (the BSF silent): both
 *                           return: {"status","stop_ms","get_ms"}; the last command
 *   par BTID T N            T threads, each N cold then N cached requests for its own NAF_Ids
 *                           (from 100000 * (t + 1)): {"ok","cached","seconds","per_s"}
 *   same BTID NAFHEX T      T threads released at once (a barrier), each one kl_zn_get of the
 *                           same pair: {"threads","ok","cached","same_kcv"} (concurrent misses
 *                           coalesce into one BIR: see stats' sent and coalesced)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_crypto.h"
#include "kl_diameter.h"
#include "kl_util.h"
#include "kl_zn.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static const char *need(int argc, char **argv, const char *name)
{
	const char *v = opt(argc, argv, name);

	if (!v) {
		fprintf(stderr, "zn_client: missing %s\n", name);
		exit(2);
	}
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_answer(const struct kl_zn_answer *a, uint64_t us)
{
	uint8_t c[KL_KCV_LEN] = { 0 };

	if (a->status == KL_ZN_OK)
		kl_kcv(a->ks_naf, KL_ZN_KEY_LEN, c);
	printf("{\"status\":\"%s\",\"result_code\":%u,\"kcv\":\"%02x%02x%02x\",\"expiry\":%llu,"
	       "\"created\":%llu,\"gba_type\":%u,\"impi\":\"%s\",\"cached\":%d,\"us\":%llu}\n",
	       kl_zn_status_name(a->status), a->result_code, c[0], c[1], c[2],
	       (unsigned long long)a->expiry, (unsigned long long)a->created, a->gba_type,
	       strpbrk(a->impi, "\"\\") ? "?" : a->impi, a->cached, (unsigned long long)us);
}

static void print_stats(struct kl_zn *z)
{
	struct kl_zn_stats s;

	kl_zn_get_stats(z, &s);
	printf("{\"requests\":%llu,\"cache_hits\":%llu,\"coalesced\":%llu,\"sent\":%llu,"
	       "\"answered\":%llu,\"cache_size\":%llu,\"bsf_open\":%d,\"latency_sum_us\":%llu,\"by_status\":{",
	       (unsigned long long)s.requests, (unsigned long long)s.cache_hits,
	       (unsigned long long)s.coalesced,
	       (unsigned long long)s.sent, (unsigned long long)s.answered,
	       (unsigned long long)s.cache_size, s.bsf_open, (unsigned long long)s.latency_sum_us);
	for (int i = 0; i < KL_ZN__COUNT; i++)
		printf("%s\"%s\":%llu", i ? "," : "", kl_zn_status_name((enum kl_zn_status)i),
		       (unsigned long long)s.by_status[i]);
	printf("},\"latency\":[");
	for (int i = 0; i < KL_ZN_LAT_BUCKETS; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)s.latency[i]);
	printf("]}\n");
}

static size_t naf_bench(unsigned i, uint8_t *naf)
{
	int n = snprintf((char *)naf, 64, "naf-%u.bench.test", i);

	memcpy(naf + n, "\x01\x00\x00\x00\x02", 5);
	return (size_t)n + 5;
}

static void bench(struct kl_zn *z, const char *btid, unsigned n)
{
	uint64_t *cold = calloc(n, sizeof(uint64_t)), *hot = calloc(n, sizeof(uint64_t));
	unsigned ok = 0, hits = 0;
	struct kl_zn_answer a;
	uint8_t naf[80];

	if (!cold || !hot)
		exit(3);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < n; i++) {
			size_t nl = naf_bench(i, naf);
			uint64_t t0 = now_us();

			kl_zn_get(z, btid, naf, nl, &a);
			(pass ? hot : cold)[i] = now_us() - t0;
			ok += a.status == KL_ZN_OK;
			hits += a.cached;
			kl_memzero(a.ks_naf, sizeof(a.ks_naf));
		}
	qsort(cold, n, sizeof(uint64_t), cmp_u64);
	qsort(hot, n, sizeof(uint64_t), cmp_u64);
	printf("{\"n\":%u,\"ok\":%u,\"cache_hits\":%u,\"cold_p50_us\":%llu,\"cold_p99_us\":%llu,"
	       "\"cold_max_us\":%llu,\"hit_p50_us\":%llu,\"hit_p99_us\":%llu}\n",
	       n, ok, hits, (unsigned long long)cold[n / 2], (unsigned long long)cold[n * 99 / 100],
	       (unsigned long long)cold[n - 1], (unsigned long long)hot[n / 2],
	       (unsigned long long)hot[n * 99 / 100]);
	free(cold);
	free(hot);
}

struct par {
	struct kl_zn *z;
	const char *btid;
	unsigned t, n, ok, cached;
};

static void *par_thread(void *arg)
{
	struct par *p = arg;
	struct kl_zn_answer a;
	uint8_t naf[80];

	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < p->n; i++) {
			size_t nl = naf_bench(100000 * (p->t + 1) + i, naf);

			kl_zn_get(p->z, p->btid, naf, nl, &a);
			p->ok += a.status == KL_ZN_OK;
			p->cached += a.cached;
			kl_memzero(a.ks_naf, sizeof(a.ks_naf));
		}
	return NULL;
}

static void par(struct kl_zn *z, const char *btid, unsigned t, unsigned n)
{
	struct par p[64];
	pthread_t th[64];
	unsigned ok = 0, cached = 0, started = 0;
	uint64_t t0 = now_us();
	double dt;

	if (t > 64)
		t = 64;
	for (unsigned i = 0; i < t; i++) {
		p[i] = (struct par){ z, btid, i, n, 0, 0 };
		if (!pthread_create(&th[i], NULL, par_thread, &p[i]))
			started++;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		ok += p[i].ok;
		cached += p[i].cached;
	}
	dt = (double)(now_us() - t0) / 1e6;
	printf("{\"threads\":%u,\"ok\":%u,\"cached\":%u,\"seconds\":%.3f,\"per_s\":%.0f}\n",
	       started, ok, cached, dt, dt > 0 ? ok / dt : 0.0);
}

struct same {
	struct kl_zn *z;
	const char *btid;
	const uint8_t *naf;
	size_t nl;
	pthread_barrier_t *go;
	struct kl_zn_answer a;
};

static void *same_thread(void *arg)
{
	struct same *s = arg;

	pthread_barrier_wait(s->go);
	kl_zn_get(s->z, s->btid, s->naf, s->nl, &s->a);
	return NULL;
}

static void same(struct kl_zn *z, const char *btid, const uint8_t *naf, size_t nl, unsigned t)
{
	static struct same s[64];
	pthread_t th[64];
	pthread_barrier_t go;
	unsigned ok = 0, cached = 0, same_kcv = 1;
	uint8_t c0[KL_KCV_LEN], c[KL_KCV_LEN];

	if (t < 1 || t > 64) {
		printf("{\"error\":\"1 to 64 threads\"}\n");
		return;
	}
	pthread_barrier_init(&go, NULL, t);
	for (unsigned i = 0; i < t; i++) {
		s[i] = (struct same){ .z = z, .btid = btid, .naf = naf, .nl = nl, .go = &go };
		if (pthread_create(&th[i], NULL, same_thread, &s[i]))
			exit(3); /* the barrier waits for all t */
	}
	for (unsigned i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		if (s[i].a.status != KL_ZN_OK)
			continue;
		ok++;
		cached += s[i].a.cached;
		kl_kcv(s[i].a.ks_naf, KL_ZN_KEY_LEN, ok == 1 ? c0 : c);
		if (ok > 1 && memcmp(c, c0, sizeof(c)))
			same_kcv = 0;
		kl_memzero(&s[i].a, sizeof(s[i].a));
	}
	pthread_barrier_destroy(&go);
	printf("{\"threads\":%u,\"ok\":%u,\"cached\":%u,\"same_kcv\":%u}\n", t, ok, cached,
	       same_kcv);
}

struct pend {
	struct kl_zn *z;
	const char *btid;
	enum kl_zn_status st;
	uint64_t us;
};

static void *pend_thread(void *arg)
{
	struct pend *p = arg;
	struct kl_zn_answer a;
	uint64_t t0 = now_us();

	p->st = kl_zn_get(p->z, p->btid, (const uint8_t *)"stop", 4, &a);
	p->us = now_us() - t0;
	kl_memzero(&a, sizeof(a));
	return NULL;
}

static void log_sink(void *arg, enum kl_diameter_log_level level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "zn_client: %d: %s\n", (int)level, msg);
}

int main(int argc, char **argv)
{
	struct kl_diameter_params p = { 0 };
	struct kl_diameter_handlers h = { 0 };
	struct kl_zn_params zp = { 0 };
	struct kl_diameter *d;
	struct kl_zn *z;
	char err[512], line[1200];

	p.identity = need(argc, argv, "--identity");
	p.tls_cert = need(argc, argv, "--cert");
	p.tls_key = need(argc, argv, "--key");
	p.tls_ca = need(argc, argv, "--ca");
	p.listen = "127.0.0.1";
	p.port = (uint16_t)atoi(need(argc, argv, "--port"));
	p.log = log_sink;
	p.log_level = KL_DIAMETER_LOG_WARNING;
	if (getenv("ZN_CLIENT_LOG")) /* 0 error .. 3 debug */
		p.log_level = (enum kl_diameter_log_level)atoi(getenv("ZN_CLIENT_LOG"));
	zp.bsf_identity = need(argc, argv, "--bsf");
	zp.bsf_address = need(argc, argv, "--bsf-address");
	zp.bsf_port = (uint16_t)atoi(need(argc, argv, "--bsf-port"));
	if (opt(argc, argv, "--timeout-ms"))
		zp.timeout_ms = (unsigned)atoi(opt(argc, argv, "--timeout-ms"));
	if (opt(argc, argv, "--cache"))
		zp.cache_entries = (unsigned)atoi(opt(argc, argv, "--cache"));

	d = kl_diameter_start(&p, &h, err, sizeof(err));
	if (!d) {
		fprintf(stderr, "zn_client: %s\n", err);
		return 3;
	}
	z = kl_zn_start(d, &zp, err, sizeof(err));
	if (!z) {
		fprintf(stderr, "zn_client: %s\n", err);
		kl_diameter_stop(d);
		return 3;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		char a1[600] = "", a2[600] = "", cmd[32] = "";
		int nf = sscanf(line, "%31s %599s %599s", cmd, a1, a2);

		if (nf < 1)
			continue;
		if (!strcmp(cmd, "wait-open")) {
			uint64_t t0 = now_us(), lim = (uint64_t)atoi(a1) * 1000;
			struct kl_zn_stats s;

			do {
				kl_zn_get_stats(z, &s);
				if (!s.bsf_open)
					usleep(10000);
			} while (!s.bsf_open && now_us() - t0 < lim);
			printf("{\"open\":%d,\"ms\":%llu}\n", s.bsf_open,
			       (unsigned long long)((now_us() - t0) / 1000));
		} else if ((!strcmp(cmd, "get") && nf == 3) || (!strcmp(cmd, "same") && nf == 3)) {
			uint8_t naf[300];
			size_t nl = strlen(a2) / 2;
			struct kl_zn_answer a;
			uint64_t t0;
			unsigned t = 0;

			for (size_t i = 0; i < nl && i < sizeof(naf); i++)
				naf[i] = (uint8_t)(kl_hexval(a2[2 * i]) << 4 | kl_hexval(a2[2 * i + 1]));
			nl = nl < sizeof(naf) ? nl : sizeof(naf);
			if (cmd[0] == 's') {
				sscanf(line, "%*s %*s %*s %u", &t);
				same(z, a1, naf, nl, t);
				continue;
			}
			t0 = now_us();
			kl_zn_get(z, a1, naf, nl, &a);
			print_answer(&a, now_us() - t0);
			kl_memzero(&a, sizeof(a));
		} else if (!strcmp(cmd, "forget") && nf == 2) {
			kl_zn_forget(z, a1);
			printf("{\"forgot\":1}\n");
		} else if (!strcmp(cmd, "stats")) {
			print_stats(z);
		} else if (!strcmp(cmd, "parse") && nf == 3) {
			static uint8_t buf[1 << 16];
			struct kl_zn_answer a;
			FILE *f = fopen(a1, "rb");
			size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;

			if (f)
				fclose(f);
			kl_zn_parse_bia(buf, n, strtoull(a2, NULL, 10), &a);
			print_answer(&a, 0);
			kl_memzero(&a, sizeof(a));
		} else if (!strcmp(cmd, "stop-pending") && nf == 2) {
			struct pend pd = { z, a1, KL_ZN_OK, 0 };
			pthread_t th;
			uint64_t t0;

			if (pthread_create(&th, NULL, pend_thread, &pd))
				return 3;
			usleep(200000);
			t0 = now_us();
			kl_zn_stop(z);
			z = NULL;
			t0 = now_us() - t0;
			pthread_join(th, NULL);
			printf("{\"status\":\"%s\",\"stop_ms\":%llu,\"get_ms\":%llu}\n",
			       kl_zn_status_name(pd.st), (unsigned long long)(t0 / 1000),
			       (unsigned long long)(pd.us / 1000));
			break;
		} else if (!strcmp(cmd, "par") && nf == 3) {
			unsigned t = 0, n = 0;

			if (sscanf(line, "%*s %*s %u %u", &t, &n) == 2)
				par(z, a1, t, n);
			else
				printf("{\"error\":\"bad command\"}\n");
		} else if (!strcmp(cmd, "bench") && nf == 3) {
			bench(z, a1, (unsigned)atoi(a2));
		} else {
			printf("{\"error\":\"bad command\"}\n");
		}
	}
	kl_zn_stop(z); /* NULL after stop-pending */
	kl_diameter_stop(d);
	return 0;
}
