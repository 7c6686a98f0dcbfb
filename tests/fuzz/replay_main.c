/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Plain replay driver for the fuzz targets: no libFuzzer needed, so the corpus runs in every
 * test run (gcc, clang, ASan/UBSan builds).
 *
 *   fuzz_mikey_req_replay FILE|DIR...
 *
 * Every file named, and every file under every directory named (sorted, recursively, dot files
 * skipped), goes through LLVMFuzzerTestOneInput from its own exactly-sized heap buffer, as
 * libFuzzer would pass it, so an over-read is caught by ASan. A violated invariant aborts.
 * Prints "replayed N inputs" and exits 0; exits 1 when a path cannot be read or nothing was
 * replayed (a wrong corpus path must not pass silently).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static unsigned long replayed;
static int failed;

static void replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0, got;
	uint8_t chunk[4096];
	uint8_t *exact;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		failed = 1;
		return;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + got > cap) {
			uint8_t *nb;

			cap = (len + got) * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				fprintf(stderr, "%s: out of memory\n", path);
				exit(1);
			}
			buf = nb;
		}
		memcpy(buf + len, chunk, got);
		len += got;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		failed = 1;
		fclose(f);
		free(buf);
		return;
	}
	fclose(f);
	/* exactly len bytes, like libFuzzer's copy */
	exact = malloc(len ? len : 1);
	if (!exact) {
		fprintf(stderr, "%s: out of memory\n", path);
		exit(1);
	}
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	replayed++;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path);

static void replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		failed = 1;
		return;
	}
	while ((e = readdir(d)) != NULL) {
		size_t l;

		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				fprintf(stderr, "%s: out of memory\n", dir);
				exit(1);
			}
			names = nn;
		}
		l = strlen(dir) + 1 + strlen(e->d_name) + 1;
		names[n] = malloc(l);
		if (!names[n]) {
			fprintf(stderr, "%s: out of memory\n", dir);
			exit(1);
		}
		snprintf(names[n], l, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		replay_path(names[i]);
		free(names[i]);
	}
	free(names);
}

static void replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		failed = 1;
		return;
	}
	if (S_ISDIR(st.st_mode))
		replay_dir(path);
	else
		replay_file(path);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		replay_path(argv[i]);
	printf("replayed %lu inputs\n", replayed);
	if (failed || !replayed) {
		fprintf(stderr, "%s\n", failed ? "some paths could not be read" : "no inputs replayed");
		return 1;
	}
	return 0;
}
