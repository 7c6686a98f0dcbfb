/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test driver of the store replicator on etcd (control/store/kl_cluster_repl.h) against real
 * etcd members started by tests/test_cluster_repl.py:
 *
 *   cluster_repl_driver SCENARIO ENDPOINT[,ENDPOINT...] PREFIX DIR KEK [ARG...]
 *
 * writes: a store with the replicator, writes of every kind through kl_write and the store (put
 *   UE, groups, services, group twice, e2m pushes and key deletes, emse, appid, pair, delete, NAF
 *   key and blocklist, a batch of 1,000 puts = 8 transactions over 3 connections): etcd holds under PREFIX/kv/
 *   exactly the LMDB records, each at the mod_revision the entry is stamped with, and nothing
 *   for the deleted ones; every db name of the store is a catalogue key.
 * conflict: two stores (same KEK, one catalogue) doing read-modify-write of one entry: the one
 *   that read an old record gets -EAGAIN ("changed meanwhile"), its LMDB unchanged; after it
 *   applied the catalogue's record it succeeds. Same for a group created on both, an e2m ring.
 * down PID: a write succeeds; etcd (PID) stopped (SIGSTOP): a write is -ETIMEDOUT (outcome
 *   unknown); etcd killed: a write through kl_write is -ENOTCONN with "cluster: ..." in the
 *   message; LMDB and the key table untouched in both; a batch the same.
 * quorum: two of three members killed by the harness: writes refused (-ENOTCONN or -ETIMEDOUT,
 *   "cluster: etcd ...") in bounded time, LMDB and the key table untouched.
 * bench N BATCH PARALLEL: N UEs through kl_write in store batches of BATCH (the Diameter feed's
 *   way: stage, commit, apply), PARALLEL connections: durable pushes/s, the commit latency.
 * Each prints "name=value" figures and "PASS" (exit 0), or "FAIL: ..." (exit 1).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_cluster_repl.h"
#include "kl_eal_rundir.h"
#include "kl_write.h"
#include "kl_test_driver.h"

#define EQ(expr, want, s)                                                                          \
	do {                                                                                       \
		long got_ = (long)(expr);                                                          \
		if (got_ != (long)(want))                                                          \
			fail("%s:%d: %s = %ld, want %ld (%s)", __FILE__, __LINE__, #expr, got_,    \
			     (long)(want), kl_store_last_error(s));                                \
	} while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *prefix, *dir, *kek;
static char *eps[KL_ETCD_MAX_ENDPOINTS];
static size_t n_eps;
static unsigned seq;

static struct kl_etcd_opts opts;

static struct kl_etcd *client(void)
{
	char err[256];
	struct kl_etcd *c = kl_etcd_new(&opts, err, sizeof(err));

	CHECK(c, "etcd client: %s", err);
	return c;
}

static struct kl_table *table(uint32_t max)
{
	char name[16];
	struct kl_table_params p = {
		.name = name, .max_ues = max, .max_groups = 64, .max_emses = 64, .max_imsis = 64,
		.max_appids = 64, .max_pairs = 64, .e2m_ring = 4, .max_readers = 1, .socket_id = -1,
	};
	struct kl_table *t;

	snprintf(name, sizeof(name), "crd%u", seq++);
	t = kl_table_create(&p);
	CHECK(t, "table");
	return t;
}

struct node {
	struct kl_etcd *c;
	struct kl_cluster_repl *r;
	struct kl_store *s;
	struct kl_table *t;
	struct kl_writer wr;
};

static void node_open(struct node *n, uint32_t max, unsigned parallel)
{
	struct kl_store_params p = { .kek_file = kek, .create_if_missing = 1 };
	char path[512], err[512];

	snprintf(path, sizeof(path), "%s/node-%d-%u", dir, (int)getpid(), seq++);
	p.path = path;
	n->s = kl_store_open(&p, err, sizeof(err));
	CHECK(n->s, "store: %s", err);
	n->c = client();
	n->r = kl_cluster_repl_new(n->c, prefix, err, sizeof(err));
	CHECK(n->r, "replicator: %s", err);
	CHECK(!kl_cluster_repl_set_parallel(n->r, &opts, parallel, err, sizeof(err)), "parallel: %s",
	      err);
	kl_store_set_repl(n->s, &kl_cluster_repl_ops, n->r);
	n->t = table(max);
	n->wr = (struct kl_writer){ .table = n->t, .store = n->s, .e2m_ring = 4 };
}

static void node_close(struct node *n)
{
	kl_store_close(n->s);
	kl_cluster_repl_free(n->r);
	kl_etcd_free(n->c);
	kl_table_free(n->t);
}

static const uint8_t K32[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const struct kl_group_ref G1 = { .domain = { 0x00, 0xf1, 0x10 }, .group = 1 },
				  G2 = { .domain = { 0x00, 0xf1, 0x10 }, .group = 2 };
#define ID(x) (const uint8_t *)(x), (uint16_t)strlen(x)

static void wdo(struct node *n, struct kl_write *w, int want)
{
	struct kl_write_result res;
	int rc = kl_write_do(&n->wr, w, &res);

	CHECK(want < 0 ? rc == want : rc >= 0, "kl_write_do = %d, want %s: %s", rc,
	      want < 0 ? strerror(-want) : "success", res.msg);
	kl_write_wipe(w);
}

/* ---- the store against the catalogue -------------------------------------------------------- */

struct rec {
	char db[16];
	uint8_t key[KL_TABLE_ID_MAX];
	size_t klen;
	uint8_t *val;
	size_t vlen;
	int64_t rev;
	int seen;
};

struct recs {
	struct rec *r;
	size_t n, cap, tombs;
};

static int collect(void *arg, const char *db, const uint8_t *key, size_t klen,
		   const uint8_t *value, size_t vlen, int64_t rev)
{
	struct recs *rs = arg;
	struct rec *r;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 1024;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		CHECK(rs->r, "no memory");
	}
	r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->db, sizeof(r->db), "%s", db);
	memcpy(r->key, key, klen);
	r->klen = klen;
	r->rev = rev;
	if (value) {
		r->val = malloc(vlen);
		CHECK(r->val, "no memory");
		memcpy(r->val, value, vlen);
		r->vlen = vlen;
	} else {
		rs->tombs++;
	}
	return 0;
}

static void recs_free(struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->r[i].val);
	free(rs->r);
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = strcmp(x->db, y->db);

	if (!c)
		c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* etcd under PREFIX/kv/ holds exactly the store's live records at their stamps. @return how
 * many keys it holds. */
static size_t compare_catalogue(struct kl_etcd *c, struct kl_store *s)
{
	struct recs rs = { 0 };
	char pfx[256];
	uint8_t *after = NULL;
	size_t after_len = 0, keys = 0, live = 0;
	int64_t rev = 0;
	int more = 1;

	EQ(kl_store_each_record(s, collect, &rs), 0, s);
	qsort(rs.r, rs.n, sizeof(*rs.r), rec_cmp);
	snprintf(pfx, sizeof(pfx), "%s/kv/", prefix);
	while (more) {
		struct kl_etcd_range g;
		int rc = kl_etcd_range_page(c, pfx, strlen(pfx), after, after_len, 500, rev, &g);

		CHECK(!rc, "range: %s", kl_etcd_errmsg(c));
		rev = g.hdr.revision;
		for (size_t i = 0; i < g.n; i++) {
			struct kl_etcd_kv *kv = &g.kvs[i];
			struct rec want, *got;
			size_t j;

			CHECK(!kl_cluster_key_parse(prefix, kv->key, kv->key_len, want.db, want.key,
						    sizeof(want.key), &want.klen),
			      "etcd key #%zu is not a catalogue key", keys + 1);
			got = bsearch(&want, rs.r, rs.n, sizeof(*rs.r), rec_cmp);
			CHECK(got, "etcd holds a %s entry the store does not", want.db);
			j = (size_t)(got - rs.r);
			CHECK(rs.r[j].val, "etcd holds a %s entry the store deleted", want.db);
			CHECK(rs.r[j].vlen == kv->value_len &&
				      !memcmp(rs.r[j].val, kv->value, kv->value_len),
			      "a %s record differs between etcd and LMDB", want.db);
			CHECK(rs.r[j].rev == kv->mod_revision,
			      "a %s entry is stamped %" PRId64 ", etcd's mod_revision is %" PRId64,
			      want.db, rs.r[j].rev, kv->mod_revision);
			rs.r[j].seen = 1;
			keys++;
		}
		more = g.more;
		if (g.n) {
			free(after);
			after_len = g.kvs[g.n - 1].key_len;
			after = malloc(after_len);
			CHECK(after, "no memory");
			memcpy(after, g.kvs[g.n - 1].key, after_len);
		}
		kl_etcd_range_free(&g);
	}
	for (size_t j = 0; j < rs.n; j++) {
		if (rs.r[j].val)
			live++;
		CHECK(!rs.r[j].val || rs.r[j].seen, "a stored %s entry is missing in etcd",
		      rs.r[j].db);
	}
	CHECK(live == keys, "etcd holds %zu keys, the store %zu entries", keys, live);
	printf("catalogue_keys=%zu tombstones=%zu\n", keys, rs.tombs);
	free(after);
	recs_free(&rs);
	return keys;
}

static void sc_writes(void)
{
	struct kl_group g = { .has_next = 1, .current = { .msk_id = 1, .key = { 1 } },
			      .next = { .msk_id = 2, .key = { 2 } } };
	struct kl_store_naf nk = { .btid = "btid@c1", .naf_id = { 'n', 'a', 'f' }, .naf_len = 3,
				   .device_id = "dev-1", .issued = 10, .expiry = 20 };
	struct kl_cluster_repl_stats st0, st1;
	struct kl_write w;
	struct node n;
	char id[32];
	double t0;

	node_open(&n, 2048, 3);
	/* every db name of the store is a catalogue key (the codec keeps its own list) */
	for (int k = 0; k < KL_TK__COUNT; k++) {
		char ek[512], db[16];
		uint8_t key[8];
		size_t kl;
		const char *name = kl_store_db_name((enum kl_table_kind)k);
		size_t l = kl_cluster_key(prefix, name, (const uint8_t *)"\x01\xff", 2, ek, sizeof(ek));

		CHECK(l && !kl_cluster_key_parse(prefix, (const uint8_t *)ek, l, db, key, sizeof(key),
						 &kl) && !strcmp(db, name) && kl == 2,
		      "db %s is not a catalogue key", name);
	}
	CHECK(kl_write_ue(&w, ID("ue-1@c"), K32, 32, &G1, 1, 0, 0) == 0, "kl_write_ue");
	wdo(&n, &w, 0);
	CHECK(kl_write_ue_groups(&w, ID("ue-1@c"), &G2, 1) == 0, "groups");
	wdo(&n, &w, 1);
	CHECK(kl_write_ue_services(&w, ID("ue-1@c"), KL_SVC(MBMS) | KL_SVC(DH)) == 0, "services");
	wdo(&n, &w, 1);
	CHECK(kl_write_group(&w, &G1, &g) == 0, "group");
	wdo(&n, &w, 0);
	g.current = g.next;
	g.next.msk_id = 3;
	CHECK(kl_write_group(&w, &G1, &g) == 0, "group");
	wdo(&n, &w, 1);
	CHECK(kl_write_e2m(&w, "001010000000001", K32, 1, 0) == 0, "e2m");
	wdo(&n, &w, 0);
	CHECK(kl_write_e2m(&w, "001010000000001", K32, 2, 0) == 0, "e2m");
	wdo(&n, &w, 1);
	CHECK(kl_write_e2m_del_key(&w, "001010000000001", 1) == 0, "e2m del");
	wdo(&n, &w, 1);
	CHECK(kl_write_emse(&w, ID("emse-1"), K32, 32) == 0, "emse");
	wdo(&n, &w, 0);
	CHECK(kl_write_appid(&w, ID("app-1"), "001010000000001") == 0, "appid");
	wdo(&n, &w, 0);
	CHECK(kl_write_pair(&w, ID("vlr-1"), K32, 32, 0) == 0, "pair");
	wdo(&n, &w, 0);
	CHECK(kl_write_ue(&w, ID("ue-2@c"), K32, 16, NULL, 0, 0, 0) == 0, "kl_write_ue");
	wdo(&n, &w, 0);
	CHECK(kl_write_del(&w, KL_TK_UE, ID("ue-2@c")) == 0, "del");
	wdo(&n, &w, 0);
	EQ(kl_store_naf_put(n.s, &nk, K32), 0, n.s);
	EQ(kl_store_naf_block(n.s, KL_STORE_NAF_DEVICE, "dev-9", 1, 100), 0, n.s);
	EQ(compare_catalogue(n.c, n.s), 8, n.s);
	/* the last e2m key deleted: the ring goes from etcd too */
	CHECK(kl_write_e2m_del_key(&w, "001010000000001", 2) == 0, "e2m del");
	wdo(&n, &w, 1);
	EQ(compare_catalogue(n.c, n.s), 7, n.s);
	/* a batch of 1,000 puts: 8 transactions of at most 128 */
	kl_cluster_repl_stats(n.r, &st0);
	t0 = now_s();
	EQ(kl_store_txn_begin(n.s), 0, n.s);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "bulk-%04u@c", i);
		EQ(kl_store_put_ue(n.s, ID(id), K32, 32, &G1, 1), 0, n.s);
	}
	EQ(kl_store_txn_commit(n.s), 0, n.s);
	kl_cluster_repl_stats(n.r, &st1);
	printf("batch_1000_ms=%.1f\n", (now_s() - t0) * 1e3);
	EQ(st1.txns - st0.txns, 8, n.s);
	EQ(st1.ops - st0.ops, 1000, n.s);
	EQ(st1.commits - st0.commits, 1, n.s);
	EQ(st1.conflicts + st1.unreachable + st1.unknown, 0, n.s);
	EQ(compare_catalogue(n.c, n.s), 1007, n.s);
	CHECK(kl_store_revision(n.s) == 0, "a writer does not set the applied revision");
	printf("commits=%" PRIu64 " txns=%" PRIu64 " ops=%" PRIu64 " lat_max_ms=%.1f\n", st1.commits,
	       st1.txns, st1.ops, st1.lat_us_max / 1e3);
	node_close(&n);
}

/* Bring b up to the catalogue's record of (db, key). */
static void follow(struct node *b, const char *db, const uint8_t *key, size_t klen)
{
	struct kl_etcd_range g;
	char ek[512];
	size_t l = kl_cluster_key(prefix, db, key, klen, ek, sizeof(ek));

	CHECK(l && !kl_etcd_get(b->c, ek, l, &g) && g.n == 1, "get: %s", kl_etcd_errmsg(b->c));
	EQ(kl_store_apply(b->s, db, key, klen, g.kvs[0].value, g.kvs[0].value_len,
			  g.kvs[0].mod_revision),
	   1, b->s);
	EQ(kl_store_sync_table(b->s, b->t, db, key, klen), 0, b->s);
	kl_etcd_range_free(&g);
}

static void sc_conflict(void)
{
	struct kl_group grp = { .current = { .msk_id = 5, .key = { 5 } } };
	struct kl_group_ref gr[KL_TABLE_UE_GROUPS];
	struct kl_cluster_repl_stats st;
	struct kl_write_result res;
	struct kl_write w;
	struct node a, b;
	uint8_t gk[5];
	unsigned ng;

	node_open(&a, 64, 1);
	node_open(&b, 64, 1);
	CHECK(kl_write_ue(&w, ID("shared@c"), K32, 32, &G1, 1, 0, 0) == 0, "ue");
	wdo(&a, &w, 0);
	follow(&b, "ue", ID("shared@c"));
	/* both read the record; a writes first; b's change was computed from an old record */
	EQ(kl_store_set_ue_groups(a.s, ID("shared@c"), &G2, 1), 0, a.s);
	CHECK(kl_write_ue_groups(&w, ID("shared@c"), &G1, 1) == 0, "groups");
	CHECK(kl_write_do(&b.wr, &w, &res) == -EAGAIN, "b's stale write: %d %s", res.rc, res.msg);
	CHECK(strstr(res.msg, "cluster: ") && strstr(res.msg, "changed meanwhile"), "message: %s",
	      res.msg);
	printf("conflict_message=%s\n", res.msg);
	EQ(kl_store_get_ue_groups(b.s, ID("shared@c"), gr, &ng), 0, b.s);
	CHECK(ng == 1 && gr[0].group == 1, "b's LMDB changed by a refused write");
	/* b catches up and succeeds */
	follow(&b, "ue", ID("shared@c"));
	CHECK(kl_write_ue_groups(&w, ID("shared@c"), &G1, 1) == 0, "groups");
	wdo(&b, &w, 1);
	/* a group created on both: the second is refused */
	EQ(kl_store_put_group(a.s, &G1, &grp), 0, a.s);
	EQ(kl_store_put_group(b.s, &G1, &grp), -EAGAIN, b.s);
	kl_write_group_key(&G1, gk);
	follow(&b, "group", gk, 5);
	grp.current.msk_id = 6;
	EQ(kl_store_put_group(b.s, &G1, &grp), 0, b.s);
	/* an e2m ring */
	EQ(kl_store_push_e2m(a.s, "001010000000009", K32, 1, 0, 4), 0, a.s);
	EQ(kl_store_push_e2m(b.s, "001010000000009", K32, 2, 0, 4), -EAGAIN, b.s);
	EQ(kl_store_has(b.s, KL_TK_E2M, ID("001010000000009")), 0, b.s);
	kl_cluster_repl_stats(b.r, &st);
	EQ(st.conflicts, 3, b.s);
	/* a plain put is last writer wins */
	EQ(kl_store_put_ue(b.s, ID("shared@c"), K32, 16, &G2, 1), 0, b.s);
	kl_store_set_repl(b.s, NULL, NULL);
	kl_store_set_repl(a.s, NULL, NULL);
	node_close(&a);
	node_close(&b);
}

/* SIGSTOP pid and wait until all its threads are stopped: kill() returns once the signal is
 * queued, and until one thread takes it the others run on (on a loaded machine etcd can answer a
 * request sent right after). */
static void stop_all_threads(pid_t pid)
{
	char path[64], line[512];
	double t0 = now_s();

	CHECK(kill(pid, SIGSTOP) == 0, "stop %d", (int)pid);
	while (now_s() - t0 < 5) {
		int running = 0, seen = 0;
		struct dirent *d;
		DIR *dir;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		dir = opendir(path);
		CHECK(dir, "%s: %s", path, strerror(errno));
		while ((d = readdir(dir))) {
			const char *st;
			FILE *f;

			if (d->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", (int)pid, d->d_name);
			f = fopen(path, "r");
			if (!f)
				continue; /* the thread ended */
			if (fgets(line, sizeof(line), f) && (st = strrchr(line, ')')) && st[1] == ' ') {
				seen++;
				running += st[2] != 'T' && st[2] != 't';
			}
			fclose(f);
		}
		closedir(dir);
		if (seen && !running)
			return;
		usleep(5000);
	}
	fail("etcd (%d) not stopped after 5 s", (int)pid);
}

static void sc_down(pid_t pid)
{
	struct kl_store_naf nk = { .btid = "btid@d", .naf_id = { 'n' }, .naf_len = 1,
				   .device_id = "dev-2", .issued = 10, .expiry = 20 };
	struct kl_cluster_repl_stats st;
	struct kl_write_result res;
	struct kl_etcd_status es;
	struct kl_write w;
	struct node n;
	double t0;
	int rc;

	opts.request_timeout_ms = 1000;
	node_open(&n, 64, 2);
	CHECK(kl_write_ue(&w, ID("before@d"), K32, 32, &G1, 1, 0, 0) == 0, "ue");
	wdo(&n, &w, 0);
	/* etcd stopped (not dead): the request is sent, no answer: outcome unknown */
	stop_all_threads(pid);
	CHECK(kl_write_ue(&w, ID("maybe@d"), K32, 32, &G1, 1, 0, 0) == 0, "ue");
	rc = kl_write_do(&n.wr, &w, &res);
	kl_write_wipe(&w);
	kill(pid, SIGCONT);
	printf("unknown_message=%s\n", res.msg);
	CHECK(rc == -ETIMEDOUT && strstr(res.msg, "cluster: ") && strstr(res.msg, "unknown"),
	      "write with etcd stopped: %d, want -ETIMEDOUT: %s", rc, res.msg);
	EQ(kl_store_has(n.s, KL_TK_UE, ID("maybe@d")), 0, n.s);
	EQ(kl_table_count(n.t, KL_TK_UE), 1, n.s);
	CHECK(kill(pid, SIGKILL) == 0, "kill %d", (int)pid);
	t0 = now_s();
	while (kl_etcd_status(n.c, &es) == 0 && now_s() - t0 < 10)
		usleep(50000);
	/* a single write through kl_write */
	t0 = now_s();
	CHECK(kl_write_ue(&w, ID("during@d"), K32, 32, &G1, 1, 0, 0) == 0, "ue");
	rc = kl_write_do(&n.wr, &w, &res);
	kl_write_wipe(&w);
	printf("refusal_ms=%.1f\n", (now_s() - t0) * 1e3);
	printf("down_message=%s\n", res.msg);
	CHECK(rc == -ENOTCONN, "write with etcd down: %d, want -ENOTCONN: %s", rc, res.msg);
	CHECK(res.where == KL_WR_STORE && strstr(res.msg, "cluster: etcd unreachable"),
	      "message: %s", res.msg);
	EQ(kl_store_has(n.s, KL_TK_UE, ID("during@d")), 0, n.s);
	EQ(kl_table_count(n.t, KL_TK_UE), 1, n.s);
	/* a change of an existing entry, a delete */
	CHECK(kl_write_ue_groups(&w, ID("before@d"), &G2, 1) == 0, "groups");
	wdo(&n, &w, -ENOTCONN);
	CHECK(kl_write_del(&w, KL_TK_UE, ID("before@d")) == 0, "del");
	wdo(&n, &w, -ENOTCONN);
	EQ(kl_store_has(n.s, KL_TK_UE, ID("before@d")), 1, n.s);
	EQ(kl_table_count(n.t, KL_TK_UE), 1, n.s);
	/* a batch as the Diameter feed makes it: nothing staged survives, the table untouched */
	EQ(kl_store_txn_begin(n.s), 0, n.s);
	for (unsigned i = 0; i < 10; i++) {
		char id[32];

		snprintf(id, sizeof(id), "batch-%u@d", i);
		CHECK(kl_write_ue(&w, ID(id), K32, 32, &G1, 1, 0, 0) == 0, "ue");
		CHECK(kl_write_stage(&n.wr, &w, &res) == 0, "stage: %s", res.msg);
		kl_write_wipe(&w);
	}
	EQ(kl_store_txn_commit(n.s), -ENOTCONN, n.s);
	CHECK(strstr(kl_store_last_error(n.s), "cluster: "), "%s", kl_store_last_error(n.s));
	EQ(kl_store_has(n.s, KL_TK_UE, ID("batch-0@d")), 0, n.s);
	EQ(kl_table_count(n.t, KL_TK_UE), 1, n.s);
	/* the NAF Key Center's write */
	EQ(kl_store_naf_put(n.s, &nk, K32), -ENOTCONN, n.s);
	kl_cluster_repl_stats(n.r, &st);
	EQ(st.unreachable, 5, n.s);
	EQ(st.unknown, 1, n.s);
	EQ(st.commits, 1, n.s);
	node_close(&n);
}

/* Two of three members gone (the harness killed them): refused with a clear error in bounded
 * time, LMDB and the key table untouched; the remaining member may say "no leader" (-ENOTCONN)
 * or time out before it knows (-ETIMEDOUT). */
static void sc_quorum(void)
{
	struct kl_write_result res;
	struct kl_write w;
	struct node n;
	double t0;
	int rc;

	opts.request_timeout_ms = 2000;
	node_open(&n, 64, 1);
	for (unsigned i = 0; i < 3; i++) {
		char id[32];

		snprintf(id, sizeof(id), "noquorum-%u@q", i);
		t0 = now_s();
		CHECK(kl_write_ue(&w, ID(id), K32, 32, &G1, 1, 0, 0) == 0, "ue");
		rc = kl_write_do(&n.wr, &w, &res);
		kl_write_wipe(&w);
		printf("quorum_refusal_%u_ms=%.0f\nquorum_message_%u=%s\n", i, (now_s() - t0) * 1e3, i,
		       res.msg);
		CHECK((rc == -ENOTCONN || rc == -ETIMEDOUT) && strstr(res.msg, "cluster: etcd") &&
			      (rc == -ENOTCONN || strstr(res.msg, "no leader")),
		      "write without quorum: %d: %s", rc, res.msg);
		CHECK(now_s() - t0 < 3 * 2.5 + 2.5, "refused in bounded time");
		EQ(kl_store_has(n.s, KL_TK_UE, ID(id)), 0, n.s);
	}
	EQ(kl_table_count(n.t, KL_TK_UE), 0, n.s);
	node_close(&n);
}

static void sc_bench(unsigned total, unsigned batch, unsigned parallel)
{
	struct kl_cluster_repl_stats st;
	struct kl_write_result res;
	struct kl_write *w = calloc(batch, sizeof(*w));
	struct node n;
	double t0, dt;

	CHECK(w, "no memory");
	node_open(&n, total + 16, parallel);
	t0 = now_s();
	for (unsigned done = 0; done < total;) {
		unsigned m = total - done < batch ? total - done : batch;

		EQ(kl_store_txn_begin(n.s), 0, n.s);
		for (unsigned i = 0; i < m; i++) {
			char id[32];
			uint8_t muk[32];

			snprintf(id, sizeof(id), "bench-%07u@c", done + i);
			memcpy(muk, K32, 32);
			memcpy(muk, &i, sizeof(i));
			CHECK(kl_write_ue(&w[i], ID(id), muk, 32, &G1, 1, 0, 0) == 0, "ue");
			CHECK(kl_write_stage(&n.wr, &w[i], &res) == 0, "stage: %s", res.msg);
		}
		EQ(kl_store_txn_commit(n.s), 0, n.s);
		for (unsigned i = 0; i < m; i++) {
			CHECK(kl_write_apply(&n.wr, &w[i], &res) >= 0, "apply: %s", res.msg);
			kl_write_wipe(&w[i]);
		}
		done += m;
	}
	dt = now_s() - t0;
	kl_cluster_repl_stats(n.r, &st);
	EQ(kl_table_count(n.t, KL_TK_UE), total, n.s);
	printf("run=parallel %u, %u pushes in batches of %u: %.2f s, %" PRIu64 " commits, %" PRIu64
	       " txns, commit mean %.1f ms, max %.1f ms\n",
	       parallel, total, batch, dt, st.commits, st.txns,
	       st.commits ? st.lat_us_sum / 1e3 / (double)st.commits : 0.0, st.lat_us_max / 1e3);
	printf("pushes_per_s=%.0f\n", total / dt);
	EQ(compare_catalogue(n.c, n.s), total, n.s);
	free(w);
	node_close(&n);
}

int main(int argc, char **argv)
{
	char fp[64], *eal[] = {
		argv[0], "--no-huge", "--no-shconf", "-m", "512", "--no-pci", "--no-telemetry",
		"--file-prefix", fp, "-l", "0", "--log-level=error",
	};
	char *list, *save = NULL;

	if (argc < 6) {
		fprintf(stderr, "usage: %s SCENARIO ENDPOINTS PREFIX DIR KEK [ARG...]\n", argv[0]);
		return 2;
	}
	list = strdup(argv[2]);
	for (char *e = strtok_r(list, ",", &save); e && n_eps < KL_ETCD_MAX_ENDPOINTS;
	     e = strtok_r(NULL, ",", &save))
		eps[n_eps++] = e;
	opts = (struct kl_etcd_opts){ .endpoints = (const char *const *)eps, .n_endpoints = n_eps,
				      .request_timeout_ms = 3000 };
	prefix = argv[3];
	dir = argv[4];
	kek = argv[5];
	snprintf(fp, sizeof(fp), "kl_crd_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit();
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "writes"))
		sc_writes();
	else if (!strcmp(argv[1], "conflict"))
		sc_conflict();
	else if (!strcmp(argv[1], "down") && argc > 6)
		sc_down((pid_t)atoi(argv[6]));
	else if (!strcmp(argv[1], "quorum"))
		sc_quorum();
	else if (!strcmp(argv[1], "bench") && argc > 8)
		sc_bench((unsigned)atoi(argv[6]), (unsigned)atoi(argv[7]), (unsigned)atoi(argv[8]));
	else
		fail("unknown scenario %s", argv[1]);
	printf("PASS\n");
	free(list);
	rte_eal_cleanup();
	return 0;
}
