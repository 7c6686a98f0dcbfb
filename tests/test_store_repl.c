/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The store's cluster hooks (control/store/kl_store_repl.h) with a real store and key table, and
 * a replicator of the test's own: an in-memory catalogue with revisions and compares, as etcd
 * keeps one (kl_cluster_repl.c, tested against real etcd in test_cluster_repl, is the one
 * keylined uses). Every write kind reaches the replicator before LMDB commits, with the exact
 * LMDB record and the compares kl_store_repl.h asks for; a batch is one commit whose repeated key
 * is one change; a refused commit leaves LMDB (and, through kl_write, the key table) untouched
 * and says "cluster: ..."; the replica side: apply with stamps and tombstones, records from
 * another store under the same KEK, damaged records refused, the key table synchronised,
 * revision, each_record, purge, kek_check; the store's views: the NAF Key Center on a follower's
 * store follows the issued keys, invalidations and blocklist entries applied to it (deletions
 * included) through kl_store_sync_table, and is no longer called once closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_crypto.h"
#include "kl_eal_rundir.h"
#include "kl_naf_keys.h"
#include "kl_store_repl.h"
#include "kl_test_store.h"
#include "kl_write.h"

static char base[256], kek[300], kek2[300];
static unsigned seq;

/* ---- an in-memory catalogue ------------------------------------------------------------------ */

#define CAT_MAX 4096

struct cat_ent {
	char db[16];
	uint8_t key[KL_TABLE_ID_MAX];
	size_t klen;
	uint8_t val[1024];
	size_t vlen;
	int64_t mod;
	int live;
};

struct cat {
	struct cat_ent e[CAT_MAX];
	size_t n;
	int64_t rev;
	int fail; /* commit returns it (-ENOTCONN, ...) */
	unsigned commits;
	size_t last_n;
	int lmdb_had_it; /* set when a commit saw the entry already in LMDB (must never) */
	struct kl_store *watch_store;
	const char *watch_db;
	const uint8_t *watch_key;
	size_t watch_klen;
};

static struct cat_ent *cat_find(struct cat *c, const char *db, const uint8_t *key, size_t klen)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->e[i].db, db) && c->e[i].klen == klen && !memcmp(c->e[i].key, key, klen))
			return &c->e[i];
	return NULL;
}

static int cat_commit(void *arg, const struct kl_store_change *ch, size_t n, int64_t *revision,
		      char *err, size_t errlen)
{
	struct cat *c = arg;

	c->commits++;
	c->last_n = n;
	if (c->watch_store) /* the store calls us before mdb_txn_commit: not there yet */
		c->lmdb_had_it |= kl_store_has(c->watch_store, (enum kl_table_kind)kl_store_db_kind(
						       c->watch_db), c->watch_key,
					       (uint16_t)c->watch_klen) == 1;
	if (c->fail) {
		snprintf(err, errlen, "etcd unreachable (test)");
		return c->fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct cat_ent *e = cat_find(c, ch[i].db, ch[i].key, ch[i].key_len);
		int live = e && e->live;

		if (!ch[i].cmp_old)
			continue;
		if (ch[i].old ? !live || e->vlen != ch[i].old_len ||
					memcmp(e->val, ch[i].old, ch[i].old_len)
			      : live) {
			snprintf(err, errlen, "%s record #%zu changed meanwhile", ch[i].db, i + 1);
			return -EAGAIN;
		}
	}
	c->rev++;
	for (size_t i = 0; i < n; i++) {
		struct cat_ent *e = cat_find(c, ch[i].db, ch[i].key, ch[i].key_len);

		if (!e) {
			assert_true(c->n < CAT_MAX);
			e = &c->e[c->n++];
			snprintf(e->db, sizeof(e->db), "%s", ch[i].db);
			memcpy(e->key, ch[i].key, ch[i].key_len);
			e->klen = ch[i].key_len;
		}
		e->live = ch[i].value != NULL;
		assert_true(ch[i].value_len <= sizeof(e->val));
		if (ch[i].value)
			memcpy(e->val, ch[i].value, ch[i].value_len);
		e->vlen = ch[i].value_len;
		e->mod = c->rev;
		assert_non_null(ch[i].mod_revision);
		*ch[i].mod_revision = c->rev;
	}
	*revision = c->rev;
	return 0;
}

static const struct kl_store_repl_ops cat_ops = { .commit = cat_commit };

/* ---- fixtures ------------------------------------------------------------------------------- */

static struct kl_table *mk_table(void)
{
	struct kl_table_params p = {
		.max_ues = 2048, .max_groups = 64, .max_emses = 64, .max_imsis = 64,
		.max_appids = 64, .max_pairs = 64, .e2m_ring = 4, .max_readers = 1, .socket_id = -1,
	};

	return kl_test_table(&p, "rp", &seq);
}

static struct kl_store *mk_store(const char *k)
{
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/s%u", base, seq++);
	return kl_test_store(dir, k, 64u << 20);
}

static const uint8_t K32[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const struct kl_group_ref G1 = { .domain = { 0x00, 0xf1, 0x10 }, .group = 1 },
				  G2 = { .domain = { 0x00, 0xf1, 0x10 }, .group = 2 };

#define ID(s) (const uint8_t *)(s), (uint16_t)strlen(s)

/* What each_record gives: one entry's record and stamp. */
struct rec_find {
	const char *db;
	const uint8_t *key;
	size_t klen;
	uint8_t val[1024];
	size_t vlen;
	int64_t rev;
	int found, tomb;
	unsigned count, tombs;
};

static int find_cb(void *arg, const char *db, const uint8_t *key, size_t klen,
		   const uint8_t *value, size_t vlen, int64_t rev)
{
	struct rec_find *f = arg;

	if (value)
		f->count++;
	else
		f->tombs++;
	if (f->db && !strcmp(db, f->db) && klen == f->klen && !memcmp(key, f->key, klen)) {
		f->found = 1;
		f->tomb = !value;
		f->rev = rev;
		f->vlen = vlen;
		if (value)
			memcpy(f->val, value, vlen);
	}
	return 0;
}

static struct rec_find lookup(struct kl_store *s, const char *db, const void *key, size_t klen)
{
	struct rec_find f = { .db = db, .key = key, .klen = klen };

	assert_int_equal(kl_store_each_record(s, find_cb, &f), 0);
	return f;
}

/* The LMDB record equals the catalogue's, and its stamp is the catalogue's revision. */
static void same(struct cat *c, struct kl_store *s, const char *db, const void *key, size_t klen)
{
	struct cat_ent *e = cat_find(c, db, key, klen);
	struct rec_find f = lookup(s, db, key, klen);

	assert_non_null(e);
	assert_true(f.found);
	assert_int_equal(f.tomb, !e->live);
	assert_int_equal(f.rev, e->mod);
	if (e->live) {
		assert_int_equal(f.vlen, e->vlen);
		assert_memory_equal(f.val, e->val, e->vlen);
	}
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(kl_store_db_name(KL_TK_UE), "ue");
	assert_string_equal(kl_store_db_name(KL_TK_E2M), "e2m");
	assert_string_equal(kl_store_db_name(KL_TK_GROUP), "group");
	assert_null(kl_store_db_name(KL_TK__COUNT));
	assert_int_equal(kl_store_db_kind("e2m"), KL_TK_E2M);
	assert_int_equal(kl_store_db_kind("pair"), KL_TK_PAIR);
	assert_int_equal(kl_store_db_kind("naf"), -1);
	assert_int_equal(kl_store_db_kind("meta"), -1);
	assert_int_equal(kl_store_db_kind(NULL), -1);
}

/* Every write kind: one commit each, before LMDB commits, the exact record, the compares. */
static void test_every_write(void **state)
{
	static struct cat c;
	struct kl_store *s = mk_store(kek);
	struct kl_group g = { .has_next = 1, .current = { .msk_id = 7 }, .next = { .msk_id = 8 } };
	struct kl_store_naf n = { .btid = "btid@x", .naf_id = { 'n' }, .naf_len = 1,
				  .device_id = "dev1", .issued = 1, .expiry = 2 };
	uint8_t gk[5] = { 0x00, 0xf1, 0x10, 0x00, 0x01 };
	struct rec_find f;

	(void)state;
	memset(&c, 0, sizeof(c));
	kl_store_set_repl(s, &cat_ops, &c);
	c.watch_store = s;
	c.watch_db = "ue";
	c.watch_key = (const uint8_t *)"ue1";
	c.watch_klen = 3;
	assert_int_equal(kl_store_put_ue(s, ID("ue1"), K32, 32, &G1, 1), 0);
	assert_int_equal(c.lmdb_had_it, 0);
	c.watch_store = NULL;
	assert_int_equal(c.commits, 1);
	same(&c, s, "ue", "ue1", 3);
	/* groups: computed from the record: compared (a second store changed it: -EAGAIN) */
	assert_int_equal(kl_store_set_ue_groups(s, ID("ue1"), &G2, 1), 0);
	same(&c, s, "ue", "ue1", 3);
	assert_int_equal(kl_store_set_ue_services(s, ID("ue1"), KL_SVC(MBMS) | KL_SVC(DH)), 0);
	same(&c, s, "ue", "ue1", 3);
	memset(cat_find(&c, "ue", (const uint8_t *)"ue1", 3)->val + 10, 0xee, 4);
	assert_int_equal(kl_store_set_ue_groups(s, ID("ue1"), &G1, 1), -EAGAIN);
	assert_non_null(strstr(kl_store_last_error(s), "cluster: ue record #1 changed meanwhile"));
	f = lookup(s, "ue", "ue1", 3);
	{ /* LMDB untouched: still the groups G2 */
		struct kl_group_ref gg[KL_TABLE_UE_GROUPS];
		unsigned ng;

		assert_int_equal(kl_store_get_ue_groups(s, ID("ue1"), gg, &ng), 0);
		assert_int_equal(ng, 1);
		assert_int_equal(gg[0].group, 2);
	}
	/* a plain put is last writer wins: no compare */
	assert_int_equal(kl_store_put_ue(s, ID("ue1"), K32, 16, &G1, 1), 0);
	same(&c, s, "ue", "ue1", 3);
	/* group: a rotation's write is compared, absent first */
	assert_int_equal(kl_store_put_group(s, &G1, &g), 0);
	same(&c, s, "group", gk, 5);
	g.current.msk_id = 8;
	g.next.msk_id = 9;
	assert_int_equal(kl_store_put_group(s, &G1, &g), 0);
	same(&c, s, "group", gk, 5);
	c.e[c.n - 1].live = 0; /* someone deleted it in the catalogue */
	assert_int_equal(kl_store_put_group(s, &G1, &g), -EAGAIN);
	c.e[c.n - 1].live = 1;
	/* e2m ring: compared, deletion of the last key compared too */
	assert_int_equal(kl_store_push_e2m(s, "001010000000001", K32, 1, 0, 4), 0);
	same(&c, s, "e2m", "001010000000001", 15);
	assert_int_equal(kl_store_push_e2m(s, "001010000000001", K32, 2, 0, 4), 0);
	same(&c, s, "e2m", "001010000000001", 15);
	assert_int_equal(kl_store_del_e2m_key(s, "001010000000001", 1), 0);
	same(&c, s, "e2m", "001010000000001", 15);
	assert_int_equal(kl_store_del_e2m_key(s, "001010000000001", 2), 0);
	same(&c, s, "e2m", "001010000000001", 15);
	assert_int_equal(kl_store_has(s, KL_TK_E2M, ID("001010000000001")), 0);
	/* emse, appid, pair, delete */
	assert_int_equal(kl_store_put_emse(s, ID("emse1"), K32, 32), 0);
	same(&c, s, "emse", "emse1", 5);
	assert_int_equal(kl_store_put_appid(s, ID("app1"), "001010000000002"), 0);
	same(&c, s, "appid", "app1", 4);
	assert_int_equal(kl_store_put_pair(s, ID("vlr1"), K32, 32, 5), 0);
	same(&c, s, "pair", "vlr1", 4);
	assert_int_equal(kl_store_del(s, KL_TK_EMSE, ID("emse1")), 0);
	same(&c, s, "emse", "emse1", 5);
	f = lookup(s, "emse", "emse1", 5);
	assert_true(f.tomb);
	/* NAF keys and blocklist */
	assert_int_equal(kl_store_naf_put(s, &n, K32), 0);
	assert_int_equal(cat_find(&c, "naf", c.e[c.n - 1].key, 32) != NULL, 1);
	assert_string_equal(c.e[c.n - 1].db, "naf");
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_DEVICE, "dev9", 1, 100), 0);
	same(&c, s, "nafblock", "ddev9", 5);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_DEVICE, "dev9", 0, 100), 0);
	same(&c, s, "nafblock", "ddev9", 5);
	kl_store_set_repl(s, NULL, NULL);
	kl_store_close(s);
}

/* A batch is one commit; a key written twice is one change (last value, first compare); a
 * refused commit rolls LMDB back. */
static void test_batch(void **state)
{
	static struct cat c;
	struct kl_store *s = mk_store(kek);
	char id[32];

	(void)state;
	memset(&c, 0, sizeof(c));
	kl_store_set_repl(s, &cat_ops, &c);
	assert_int_equal(kl_store_txn_begin(s), 0);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "bulk-%u", i);
		assert_int_equal(kl_store_put_ue(s, ID(id), K32, 32, &G1, 1), 0);
	}
	assert_int_equal(kl_store_push_e2m(s, "001010000000003", K32, 1, 0, 4), 0);
	assert_int_equal(kl_store_push_e2m(s, "001010000000003", K32, 2, 0, 4), 0);
	assert_int_equal(kl_store_put_ue(s, ID("bulk-7"), K32, 20, &G2, 1), 0);
	assert_int_equal(c.commits, 0);
	assert_int_equal(kl_store_txn_commit(s), 0);
	assert_int_equal(c.commits, 1);
	assert_int_equal(c.last_n, 1001);
	assert_int_equal(c.n, 1001);
	same(&c, s, "ue", "bulk-7", 6);
	same(&c, s, "e2m", "001010000000003", 15);
	same(&c, s, "ue", "bulk-999", 8);
	/* refused: nothing of the batch stays */
	c.fail = -ENOTCONN;
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_put_ue(s, ID("lost-1"), K32, 32, &G1, 1), 0);
	assert_int_equal(kl_store_del(s, KL_TK_UE, ID("bulk-1")), 0);
	assert_int_equal(kl_store_txn_commit(s), -ENOTCONN);
	assert_non_null(strstr(kl_store_last_error(s), "cluster: etcd unreachable"));
	assert_int_equal(kl_store_has(s, KL_TK_UE, ID("lost-1")), 0);
	assert_int_equal(kl_store_has(s, KL_TK_UE, ID("bulk-1")), 1);
	/* and a single write */
	assert_int_equal(kl_store_put_emse(s, ID("lost-2"), K32, 32), -ENOTCONN);
	assert_int_equal(kl_store_has(s, KL_TK_EMSE, ID("lost-2")), 0);
	c.fail = 0;
	/* an aborted batch leaves nothing for the next commit */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_put_ue(s, ID("aborted"), K32, 32, &G1, 1), 0);
	kl_store_txn_abort(s);
	assert_int_equal(kl_store_put_emse(s, ID("after"), K32, 32), 0);
	assert_int_equal(c.last_n, 1);
	assert_null(cat_find(&c, "ue", (const uint8_t *)"aborted", 7));
	/* setting the replicator inside a batch spoils the batch (its log would miss writes) */
	kl_store_set_repl(s, NULL, NULL);
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_put_emse(s, ID("unlogged"), K32, 32), 0);
	kl_store_set_repl(s, &cat_ops, &c);
	assert_int_equal(kl_store_txn_commit(s), -ECANCELED);
	assert_int_equal(kl_store_has(s, KL_TK_EMSE, ID("unlogged")), 0);
	kl_store_close(s);
}

/* Through kl_write: a refused commit leaves the key table untouched, the message names the
 * cluster. */
static void test_write_refused(void **state)
{
	static struct cat c;
	struct kl_store *s = mk_store(kek);
	struct kl_table *t = mk_table();
	struct kl_writer wr = { .table = t, .store = s, .e2m_ring = 4 };
	struct kl_write_result res;
	struct kl_write w;

	(void)state;
	memset(&c, 0, sizeof(c));
	kl_store_set_repl(s, &cat_ops, &c);
	c.fail = -ENOTCONN;
	assert_int_equal(kl_write_ue(&w, ID("w1"), K32, 32, &G1, 1, 0, 0), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), -ENOTCONN);
	assert_int_equal(res.where, KL_WR_STORE);
	if (!strstr(res.msg, "cluster: etcd unreachable"))
		fail_msg("%s", res.msg);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 0);
	c.fail = 0;
	assert_int_equal(kl_write_ue(&w, ID("w1"), K32, 32, &G1, 1, 0, 0), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	same(&c, s, "ue", "w1", 2);
	kl_write_wipe(&w);
	kl_store_close(s);
	kl_table_free(t);
}

/* The replica side: records of one store applied to another (same KEK), stamps, tombstones. */
static void test_apply(void **state)
{
	static struct cat c;
	struct kl_store *a = mk_store(kek), *b = mk_store(kek), *x = mk_store(kek2);
	struct kl_table *t = mk_table();
	struct kl_group grp = { .current = { .msk_id = 3, .key = { 3 } } }, got;
	struct cat_ent *e;
	struct rec_find f;
	uint8_t kc_a[512], kc_b[512], bad[1024];
	long la, lb;
	int64_t st;

	(void)state;
	memset(&c, 0, sizeof(c));
	kl_store_set_repl(a, &cat_ops, &c);
	assert_int_equal(kl_store_put_ue(a, ID("r1"), K32, 32, &G1, 1), 0);
	assert_int_equal(kl_store_push_e2m(a, "001010000000004", K32, 5, 0, 4), 0);
	assert_int_equal(kl_store_push_e2m(a, "001010000000004", K32, 6, 0, 4), 0);
	assert_int_equal(kl_store_put_pair(a, ID("vlr2"), K32, 16, 0), 0);
	assert_int_equal(kl_store_put_group(a, &G2, &grp), 0);
	assert_int_equal(kl_store_put_emse(a, ID("emse2"), K32, 20), 0);
	assert_int_equal(kl_store_put_appid(a, ID("app2"), "001010000000004"), 0);
	assert_int_equal(kl_store_naf_block(a, KL_STORE_NAF_SERIAL, "1f", 1, 7), 0);
	/* b follows the catalogue: every live entry applied at its revision */
	for (size_t i = 0; i < c.n; i++) {
		e = &c.e[i];
		assert_int_equal(kl_store_apply(b, e->db, e->key, e->klen, e->val, e->vlen, e->mod),
				 1);
		if (kl_store_sync_table(b, t, e->db, e->key, e->klen))
			fail_msg("sync %s: %s", e->db, kl_store_last_error(b));
	}
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	assert_int_equal(kl_table_count(t, KL_TK_PAIR), 1);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 1);
	assert_int_equal(kl_table_count(t, KL_TK_GROUP), 1);
	assert_int_equal(kl_table_count(t, KL_TK_EMSE), 1);
	assert_int_equal(kl_table_count(t, KL_TK_APPID), 1);
	assert_int_equal(kl_store_get_group(b, &G2, &got), 0);
	assert_int_equal(got.current.msk_id, 3);
	kl_memzero(&got, sizeof(got));
	for (size_t i = 0; i < c.n; i++)
		same(&c, b, c.e[i].db, c.e[i].key, c.e[i].klen);
	/* the same or an older event again: skipped */
	e = cat_find(&c, "ue", (const uint8_t *)"r1", 2);
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, e->val, e->vlen, e->mod), 0);
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, NULL, 0, e->mod), 0);
	assert_int_equal(kl_store_has(b, KL_TK_UE, ID("r1")), 1);
	/* a deletion: a tombstone, and an older put after it is skipped */
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, NULL, 0, 100), 1);
	assert_int_equal(kl_store_stamp(b, "ue", e->key, e->klen, &st), 0);
	assert_int_equal(st, -100);
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, e->val, e->vlen, 99), 0);
	assert_int_equal(kl_store_has(b, KL_TK_UE, ID("r1")), 0);
	assert_int_equal(kl_store_sync_table(b, t, "ue", e->key, e->klen), 0);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 0);
	f = lookup(b, "ue", "r1", 2);
	assert_true(f.found && f.tomb);
	assert_int_equal(f.rev, 100);
	/* a newer put revives it */
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, e->val, e->vlen, 101), 1);
	assert_int_equal(kl_store_sync_table(b, t, "ue", e->key, e->klen), 0);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	/* a damaged record, a record under another key, another KEK's record: refused */
	memcpy(bad, e->val, e->vlen);
	bad[e->vlen - 3] ^= 1;
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, bad, e->vlen, 200), -EBADMSG);
	assert_non_null(strstr(kl_store_last_error(b), "refused"));
	assert_int_equal(kl_store_apply(b, "ue", ID("r2"), e->val, e->vlen, 200), -EBADMSG);
	assert_int_equal(kl_store_apply(x, "ue", e->key, e->klen, e->val, e->vlen, 200), -EBADMSG);
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, bad, 3, 200), -EBADMSG);
	assert_int_equal(kl_store_apply(b, "meta", ID("schema"), bad, 4, 200), -EINVAL);
	assert_int_equal(kl_store_apply(b, "ue", e->key, e->klen, e->val, e->vlen, 0), -EINVAL);
	assert_int_equal(kl_store_has(b, KL_TK_UE, ID("r1")), 1);
	/* the e2m ring is rebuilt whole in the table */
	assert_int_equal(kl_store_apply(b, "e2m", ID("001010000000004"), NULL, 0, 300), 1);
	assert_int_equal(kl_store_sync_table(b, t, "e2m", ID("001010000000004")), 0);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 0);
	/* batches: applies, revision, commit */
	assert_int_equal(kl_store_revision(b), 0);
	assert_int_equal(kl_store_txn_begin(b), 0);
	assert_int_equal(kl_store_apply(b, "pair", ID("vlr2"), NULL, 0, 400), 1);
	assert_int_equal(kl_store_set_revision(b, 400), 0);
	assert_int_equal(kl_store_revision(b), 400);
	kl_store_txn_abort(b);
	assert_int_equal(kl_store_revision(b), 0);
	assert_int_equal(kl_store_has(b, KL_TK_PAIR, ID("vlr2")), 1);
	assert_int_equal(kl_store_txn_begin(b), 0);
	assert_int_equal(kl_store_apply(b, "pair", ID("vlr2"), NULL, 0, 400), 1);
	assert_int_equal(kl_store_set_revision(b, 400), 0);
	assert_int_equal(kl_store_txn_commit(b), 0);
	assert_int_equal(kl_store_revision(b), 400);
	/* tombstones: ue r1 is live again; e2m@300 and pair@400 are tombstones */
	f = lookup(b, NULL, NULL, 0);
	assert_int_equal(f.tombs, 2);
	assert_int_equal(kl_store_purge_tombstones(b, 350), 0);
	f = lookup(b, NULL, NULL, 0);
	assert_int_equal(f.tombs, 1);
	assert_int_equal(kl_store_purge_tombstones(b, 401), 0);
	f = lookup(b, NULL, NULL, 0);
	assert_int_equal(f.tombs, 0);
	assert_int_equal(f.count, 5); /* ue r1, group, emse, appid, nafblock */
	/* kek_check: the same under the same KEK, another under another */
	la = kl_store_kek_check(a, kc_a, sizeof(kc_a));
	lb = kl_store_kek_check(b, kc_b, sizeof(kc_b));
	assert_true(la > 0 && la == lb);
	assert_memory_equal(kc_a, kc_b, (size_t)la);
	lb = kl_store_kek_check(x, kc_b, sizeof(kc_b));
	assert_true(lb == la && memcmp(kc_a, kc_b, (size_t)la));
	assert_int_equal(kl_store_kek_check(a, kc_b, 4), la);
	kl_store_close(a);
	kl_store_close(b);
	kl_store_close(x);
	kl_table_free(t);
}

/* A local write stamps the entry: its own watch event later is skipped; the stamps survive a
 * reopen; the store still loads (the stamp database is not a kind). */
static void test_stamp_local(void **state)
{
	static struct cat c;
	struct kl_store *s = mk_store(kek);
	struct kl_store_load_stats ls;
	struct kl_table *t = mk_table();
	struct cat_ent *e;
	char err[256];
	int64_t st;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.rev = 41;
	kl_store_set_repl(s, &cat_ops, &c);
	assert_int_equal(kl_store_put_emse(s, ID("e1"), K32, 32), 0);
	e = cat_find(&c, "emse", (const uint8_t *)"e1", 2);
	assert_int_equal(e->mod, 42);
	assert_int_equal(kl_store_stamp(s, "emse", ID("e1"), &st), 0);
	assert_int_equal(st, 42);
	assert_int_equal(kl_store_apply(s, "emse", ID("e1"), NULL, 0, 42), 0);
	assert_int_equal(kl_store_has(s, KL_TK_EMSE, ID("e1")), 1);
	assert_int_equal(kl_store_load(s, t, &ls, err, sizeof(err)), 0);
	assert_int_equal(ls.loaded[KL_TK_EMSE], 1);
	/* without a replicator: no stamp, nothing logged */
	kl_store_set_repl(s, NULL, NULL);
	assert_int_equal(kl_store_put_emse(s, ID("e2"), K32, 32), 0);
	assert_int_equal(kl_store_stamp(s, "emse", ID("e2"), &st), 0);
	assert_int_equal(st, 0);
	assert_int_equal(kl_store_stamp(s, "nosuch", ID("e2"), &st), -EINVAL);
	kl_store_close(s);
	kl_table_free(t);
}

/* The catalogue's entries newer than since into b, each synchronised (the follower's path). */
static void follow(struct cat *c, struct kl_store *b, struct kl_table *t, int64_t since)
{
	for (size_t i = 0; i < c->n; i++) {
		struct cat_ent *e = &c->e[i];

		if (e->mod <= since)
			continue;
		assert_int_equal(kl_store_apply(b, e->db, e->key, e->klen, e->live ? e->val : NULL,
						e->vlen, e->mod),
				 1);
		if (kl_store_sync_table(b, t, e->db, e->key, e->klen))
			fail_msg("sync %s: %s", e->db, kl_store_last_error(b));
	}
}

/* The NAF Key Center on store b (a follower) sees what another node (store a) wrote, as the
 * cluster applies it: issued, invalidated, deleted keys; blocklisted and unblocked Device_IDs and
 * serials; its own index refusals follow at once; nothing is called once it is closed. */
static void test_naf_view(void **state)
{
	static struct cat c;
	struct kl_store *a = mk_store(kek), *b = mk_store(kek);
	struct kl_table *t = mk_table();
	struct kl_naf_keys_params p = { .store = b };
	struct kl_store_naf n = { .btid = "B1@bsf", .naf_len = 3, .naf_id = { 'n', 'a', 'f' },
				  .device_id = "dev-1", .issued = 1000, .expiry = UINT64_MAX / 2 };
	struct kl_naf_keys_stats ks;
	struct kl_naf_key_info info;
	struct kl_naf_keys *kb;
	uint8_t kcv[KL_KCV_LEN];
	char err[256];
	int64_t seen;

	(void)state;
	memset(&c, 0, sizeof(c));
	kb = kl_naf_keys_open(&p, err, sizeof(err));
	if (!kb)
		fail_msg("naf keys: %s", err);
	kl_store_set_repl(a, &cat_ops, &c);
	assert_int_equal(kl_store_naf_put(a, &n, K32), 0);
	assert_int_equal(kl_store_naf_block(a, KL_STORE_NAF_DEVICE, "dev-2", 1, 7), 0);
	assert_int_equal(kl_store_naf_block(a, KL_STORE_NAF_SERIAL, "1a2b", 1, 7), 0);
	assert_int_equal(kl_naf_keys_lookup(kb, "B1@bsf", n.naf_id, 3, "dev-1", &info), -ENOENT);
	follow(&c, b, t, 0);
	seen = c.rev;
	assert_int_equal(kl_naf_keys_lookup(kb, "B1@bsf", n.naf_id, 3, "dev-1", &info), 0);
	assert_int_equal(kl_kcv(K32, 32, kcv), 0);
	assert_memory_equal(info.kcv, kcv, KL_KCV_LEN);
	assert_int_equal(info.invalidated, 0);
	assert_true(kl_naf_keys_blocked(kb, "dev-2", NULL));
	assert_true(kl_naf_keys_blocked(kb, "dev-9", "00:1A:2B"));
	assert_int_equal(kl_naf_keys_issue(kb, "B2@bsf", n.naf_id, 3, "dev-2", NULL, K32,
					   UINT64_MAX / 2, 1000),
			 KL_NAF_BLOCKED);
	/* invalidated on a: listed invalidated, refused */
	n.invalidated = 1;
	memcpy(n.kcv, kcv, KL_KCV_LEN);
	assert_int_equal(kl_store_naf_put(a, &n, NULL), 0);
	follow(&c, b, t, seen);
	seen = c.rev;
	assert_int_equal(kl_naf_keys_lookup(kb, "B1@bsf", n.naf_id, 3, "dev-1", &info), 0);
	assert_int_equal(info.invalidated, 1);
	assert_int_equal(kl_naf_keys_issue(kb, "B1@bsf", n.naf_id, 3, "dev-1", NULL, K32,
					   UINT64_MAX / 2, 1000),
			 KL_NAF_INVALIDATED);
	/* deleted (purged) and unblocked on a: gone from b's index */
	assert_int_equal(kl_store_naf_del(a, &n), 0);
	assert_int_equal(kl_store_naf_block(a, KL_STORE_NAF_DEVICE, "dev-2", 0, 7), 0);
	follow(&c, b, t, seen);
	seen = c.rev;
	assert_int_equal(kl_naf_keys_lookup(kb, "B1@bsf", n.naf_id, 3, "dev-1", &info), -ENOENT);
	assert_false(kl_naf_keys_blocked(kb, "dev-2", NULL));
	assert_true(kl_naf_keys_blocked(kb, NULL, "1a2b"));
	kl_naf_keys_get_stats(kb, &ks);
	assert_int_equal(ks.keys, 0);
	assert_int_equal(ks.blocked_devices, 0);
	assert_int_equal(ks.blocked_serials, 1);
	assert_int_equal(ks.applied, 6);
	assert_int_equal(ks.apply_failed, 0);
	/* closed: the store no longer calls it (ASan would see the freed index) */
	kl_naf_keys_close(kb);
	assert_int_equal(kl_store_naf_block(a, KL_STORE_NAF_DEVICE, "dev-3", 1, 7), 0);
	follow(&c, b, t, seen);
	assert_int_equal(kl_store_set_view(b, "nosuch", NULL, NULL), -EINVAL);
	kl_store_close(a);
	kl_store_close(b);
	kl_table_free(t);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int write_kek(const char *path, uint8_t x)
{
	uint8_t k[32];
	int fd;

	for (unsigned i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(x ^ i);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
		perror("KEK file");
		return -1;
	}
	close(fd);
	return 0;
}

int main(void)
{
	char prefix[64], *eal[] = {
		"test_store_repl", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
		"--no-telemetry", "--file-prefix", prefix, "-l", "0", "--log-level=error",
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	 cmocka_unit_test(test_every_write),
		cmocka_unit_test(test_batch),	 cmocka_unit_test(test_write_refused),
		cmocka_unit_test(test_apply),	 cmocka_unit_test(test_stamp_local),
		cmocka_unit_test(test_naf_view),
	};
	const char *tmp = getenv("TMPDIR");
	int rc;

	snprintf(prefix, sizeof(prefix), "kl_store_repl_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit();
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (!tmp || !tmp[0] || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/kl_store_repl.XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(kek, sizeof(kek), "%s/kek", base);
	snprintf(kek2, sizeof(kek2), "%s/kek2", base);
	if (write_kek(kek, 0x5a) || write_kek(kek2, 0x33))
		return 1;
	rc = cmocka_run_group_tests_name("store-repl", tests, NULL, NULL);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rte_eal_cleanup();
	return rc;
}
