/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the catalogue key parser (control/store/kl_cluster_key.c), which reads the keys of
 * a watch or a range from etcd (peer input). Input: one selector byte (bit 0: which prefix, bit 1:
 * the parser or the encoder), then the bytes. Invariants beyond "no crash, no over-read": a
 * parsed key encodes back to exactly the input, its db name is one of the catalogue's, its length
 * fits the capacity; any bytes as an LMDB key encode to a key that parses back to them.
 */
#include <errno.h>
#include <string.h>

#include "fuzz_common.h"
#include "kl_cluster_repl.h"

static const char *const prefixes[] = { "/keyline/c1", "/k" };
static const char *const dbs[] = { "ue", "group", "emse", "e2m", "appid", "pair", "naf",
				   "nafblock" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *prefix;
	uint8_t key[KL_TABLE_ID_MAX];
	char db[16], again[KL_CLUSTER_PREFIX_MAX + 32 + 2 * KL_TABLE_ID_MAX];
	size_t klen = 0, n;
	int rc, known = 0;

	if (size < 1)
		return 0;
	prefix = prefixes[data[0] & 1];
	if (data[0] & 2) { /* the encoder: data[1] picks the db, the rest is the LMDB key */
		if (size < 2 || size - 2 > KL_TABLE_ID_MAX)
			return 0;
		n = kl_cluster_key(prefix, dbs[data[1] % 8], data + 2, size - 2, again,
				   sizeof(again));
		FZ_CHECK(n == strlen(again));
		rc = kl_cluster_key_parse(prefix, (const uint8_t *)again, n, db, key, sizeof(key),
					  &klen);
		FZ_CHECK(size == 2 ? rc == -EINVAL : rc == 0);
		FZ_CHECK(rc || (klen == size - 2 && !memcmp(key, data + 2, klen) &&
				!strcmp(db, dbs[data[1] % 8])));
		return 0;
	}
	rc = kl_cluster_key_parse(prefix, data + 1, size - 1, db, key, sizeof(key), &klen);
	FZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc)
		return 0;
	FZ_CHECK(klen >= 1 && klen <= sizeof(key));
	for (size_t i = 0; i < 8; i++)
		known |= !strcmp(db, dbs[i]);
	FZ_CHECK(known);
	n = kl_cluster_key(prefix, db, key, klen, again, sizeof(again));
	FZ_CHECK(n == size - 1 && !memcmp(again, data + 1, n));
	return 0;
}
