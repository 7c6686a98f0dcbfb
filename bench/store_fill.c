/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * store_fill: write a keyline-population TEST population's UEs and key groups into a durable
 * key store (control/store/kl_store.h), for the start-up benchmark (bench/run-store-bench.sh): how
 * fast batched durable writes go, and how many bytes a UE takes on disk.
 *
 *   store_fill --store DIR --kek FILE --population FILE [--batch N (1000)] [--map-mb M]
 *
 * THESE ARE TEST KEYS (anybody who knows the seed knows them): never fill a production store.
 * stdout: one JSON line {"ues", "groups", "seconds", "puts_per_s", "file_bytes", "bytes_per_ue"}.
 * Exit 0, 1 on a store error, 2 on bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_crypto.h"
#include "kl_population.h"
#include "kl_store.h"

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fputs("usage: store_fill --store DIR --kek FILE --population FILE [--batch N] [--map-mb M]\n",
	      stderr);
	exit(2);
}

static unsigned long long num(const char *opt, const char *s, unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max) {
		fprintf(stderr, "store_fill: %s: want 1..%llu\n", opt, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *kek = NULL, *popf = NULL;
	unsigned batch = 1000;
	uint64_t map_mb = 65536;
	struct kl_pop_params pop;
	struct kl_store_params sp;
	struct kl_store_stats st;
	struct kl_store *s;
	char err[512];
	double t0, dt;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--store"))
			dir = argv[++i];
		else if (!strcmp(argv[i], "--kek"))
			kek = argv[++i];
		else if (!strcmp(argv[i], "--population"))
			popf = argv[++i];
		else if (!strcmp(argv[i], "--batch"))
			batch = (unsigned)num("--batch", argv[++i], 1000000);
		else if (!strcmp(argv[i], "--map-mb"))
			map_mb = num("--map-mb", argv[++i], 1ull << 22);
		else
			usage();
	}
	if (!dir || !kek || !popf)
		usage();
	if (kl_pop_read_file(popf, &pop, err, sizeof(err))) {
		fprintf(stderr, "store_fill: %s: %s\n", popf, err);
		return 2;
	}
	memset(&sp, 0, sizeof(sp));
	sp.path = dir;
	sp.kek_file = kek;
	sp.map_size = map_mb << 20;
	sp.create_if_missing = 1;
	s = kl_store_open(&sp, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "store_fill: %s\n", err);
		return 1;
	}
	t0 = mono_s();
	for (uint32_t g = 1; g <= pop.groups && !rc; g++) {
		struct kl_group_ref ref;
		struct kl_group grp;

		rc = kl_pop_group(&pop, g, &ref, &grp);
		if (!rc)
			rc = kl_store_put_group(s, &ref, &grp);
		kl_memzero(&grp, sizeof(grp));
	}
	for (uint32_t i = 0; i < pop.ues && !rc; i += batch) {
		uint32_t end = pop.ues - i < batch ? pop.ues : i + batch;

		rc = kl_store_txn_begin(s);
		for (uint32_t u = i; u < end && !rc; u++) {
			struct kl_pop_ue ue;

			rc = kl_pop_ue(&pop, u, &ue);
			if (!rc)
				rc = kl_store_put_ue(s, (const uint8_t *)ue.impi, ue.impi_len, ue.muk, 32,
						     ue.groups, ue.ngroups);
			kl_memzero(&ue, sizeof(ue));
		}
		if (rc)
			kl_store_txn_abort(s);
		else
			rc = kl_store_txn_commit(s);
	}
	dt = mono_s() - t0;
	if (rc) {
		fprintf(stderr, "store_fill: %s (%s)\n", kl_store_last_error(s), strerror(-rc));
		kl_store_close(s);
		return 1;
	}
	rc = kl_store_stats(s, &st);
	kl_store_close(s);
	if (rc) {
		fprintf(stderr, "store_fill: stats: %s\n", strerror(-rc));
		return 1;
	}
	printf("{\"ues\":%u,\"groups\":%u,\"batch\":%u,\"seconds\":%.2f,\"puts_per_s\":%.0f,"
	       "\"file_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ",\"bytes_per_ue\":%.1f}\n",
	       pop.ues, pop.groups, batch, dt, dt > 0 ? (double)pop.ues / dt : 0.0, st.file_bytes,
	       st.used_bytes, st.bytes_per_ue);
	return 0;
}
