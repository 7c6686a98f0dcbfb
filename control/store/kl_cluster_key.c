/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The catalogue's etcd keys (kl_cluster_repl.h): prefix "/kv/" db "/" hex(LMDB key), lower case.
 * A pure codec (no store, no etcd), so the parser of keys read from etcd (a watch, a range: peer
 * input) is fuzzed alone (tests/fuzz/fuzz_cluster_key.c).
 */
#include <errno.h>
#include <string.h>

#include "kl_cluster_repl.h"

/* prefix | "/kv/" | db (at most 15) | "/" | hex of the key */
#define DB_MAX 15

/* The databases the catalogue holds (kl_store_repl.h): every named one with entries. */
static int db_known(const char *db, size_t len)
{
	/* kl_store_db_name's names and the NAF Key Center's (test_cluster_repl checks that every
	 * kl_store_db_name is here: this file stays pure, for the fuzz target) */
	static const char *const names[] = { "ue", "group", "emse", "e2m", "appid", "pair",
					     "naf", "nafblock" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && !memcmp(names[i], db, len))
			return 1;
	return 0;
}

size_t kl_cluster_key(const char *prefix, const char *db, const uint8_t *key, size_t key_len,
		      char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t pl, dl, need;

	if (!prefix || !db || !out || (!key && key_len))
		return 0;
	pl = strlen(prefix);
	dl = strlen(db);
	need = pl + 4 + dl + 1 + 2 * key_len + 1;
	if (need > cap)
		return 0;
	memcpy(out, prefix, pl);
	memcpy(out + pl, "/kv/", 4);
	memcpy(out + pl + 4, db, dl);
	out[pl + 4 + dl] = '/';
	for (size_t i = 0; i < key_len; i++) {
		out[pl + 5 + dl + 2 * i] = hex[key[i] >> 4];
		out[pl + 5 + dl + 2 * i + 1] = hex[key[i] & 15];
	}
	out[need - 1] = '\0';
	return need - 1;
}

static int unhex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case too: one etcd key per LMDB key */
}

int kl_cluster_key_parse(const char *prefix, const uint8_t *ekey, size_t ekey_len, char db[16],
			 uint8_t *key, size_t key_cap, size_t *key_len)
{
	size_t pl, i, dl, hl;
	const uint8_t *p, *slash;

	if (!prefix || !ekey || !db || !key_len || (!key && key_cap))
		return -EINVAL;
	pl = strlen(prefix);
	if (ekey_len < pl + 4 || memcmp(ekey, prefix, pl) || memcmp(ekey + pl, "/kv/", 4))
		return -EINVAL;
	p = ekey + pl + 4;
	slash = memchr(p, '/', ekey_len - pl - 4);
	if (!slash)
		return -EINVAL;
	dl = (size_t)(slash - p);
	if (dl < 1 || dl > DB_MAX || !db_known((const char *)p, dl))
		return -EINVAL;
	hl = ekey_len - pl - 4 - dl - 1;
	if (hl < 2 || hl % 2 || hl / 2 > key_cap)
		return -EINVAL;
	for (i = 0; i < hl / 2; i++) {
		int hi = unhex(slash[1 + 2 * i]), lo = unhex(slash[2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(db, p, dl);
	db[dl] = '\0';
	*key_len = hl / 2;
	return 0;
}
