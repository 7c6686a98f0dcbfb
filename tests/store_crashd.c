/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash-test writer for the key store (driven by test_store): puts UEs "crashNNNNNNN@ims.example"
 * in order and writes each acknowledged number to stdout only after the put (or the batch
 * holding it) has committed. The test kills it with SIGKILL mid-way and checks that every
 * number it read loads from the store.
 *
 * usage: store_crashd STORE_DIR KEK_FILE BATCH MAX
 *   BATCH 1 commits every put on its own; N > 1 commits N puts per transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_store.h"

/* The same derivation as test_store.c's crash_muk: the test recomputes the KCVs from it. */
static void crash_muk(uint32_t i, uint8_t muk[32])
{
	for (unsigned j = 0; j < 32; j++)
		muk[j] = (uint8_t)(i * 131u + j * 7u + (i >> 8) * 13u) ^ 0x5a;
}

static int ack(uint32_t from, uint32_t to)
{
	char line[4096];
	size_t n = 0;

	for (uint32_t i = from; i < to; i++) {
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%u\n", i);
		if (n > sizeof(line) - 16 || i + 1 == to) {
			size_t off = 0;

			while (off < n) {
				ssize_t w = write(1, line + off, n - off);

				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0)
					return -1;
				off += (size_t)w;
			}
			n = 0;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kl_store_params p = {0};
	struct kl_store *s;
	char err[512], id[64];
	unsigned long batch, max;
	uint32_t done = 0;
	uint8_t muk[32];

	if (argc != 5) {
		fprintf(stderr, "usage: store_crashd STORE_DIR KEK_FILE BATCH MAX\n");
		return 2;
	}
	batch = strtoul(argv[3], NULL, 10);
	max = strtoul(argv[4], NULL, 10);
	if (batch < 1 || batch > 100000 || max < 1 || max > 10000000) {
		fprintf(stderr, "store_crashd: bad BATCH or MAX\n");
		return 2;
	}
	p.path = argv[1];
	p.kek_file = argv[2];
	p.create_if_missing = 1;
	s = kl_store_open(&p, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "store_crashd: %s\n", err);
		return 1;
	}
	while (done < max) {
		uint32_t end = done + (uint32_t)batch > max ? (uint32_t)max : done + (uint32_t)batch;
		int rc = batch > 1 ? kl_store_txn_begin(s) : 0;

		for (uint32_t i = done; !rc && i < end; i++) {
			struct kl_group_ref g = {{0x00, 0xf1, 0x10}, (uint16_t)i};

			snprintf(id, sizeof(id), "crash%07u@ims.example", i);
			crash_muk(i, muk);
			rc = kl_store_put_ue(s, (const uint8_t *)id, (uint16_t)strlen(id), muk, 32, &g, 1);
		}
		if (batch > 1)
			rc = rc ? (kl_store_txn_abort(s), rc) : kl_store_txn_commit(s);
		if (rc) {
			fprintf(stderr, "store_crashd: put %u: %s (%d)\n", done,
				kl_store_last_error(s), rc);
			kl_store_close(s);
			return 1;
		}
		if (ack(done, end))
			break;
		done = end;
	}
	kl_store_close(s);
	return 0;
}
