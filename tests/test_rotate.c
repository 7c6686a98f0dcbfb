/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MSK rotation tests: a real key table (EAL without hugepages) and a real durable store (LMDB in
 * a fresh temporary directory, 0600 KEK file), kl_rotate driven with chosen NTP times: creation,
 * pre-delivery, promotion, key number wrap, catch-up, forced rotation, store and table failures
 * retried at the next tick. Every log line is checked for the hex of every MSK seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_eal_rundir.h"
#include "kl_rotate.h"
#include "kl_store.h"
#include "kl_test_store.h"
#include "kl_table.h"

#define SEC(s) ((uint64_t)(s) << 32)
#define T0 SEC(3900000000u) /* 2023-08-02T21:20:00Z */
#define P1 3600u
#define D1 600u
#define P2 100u /* group 2: no pre-delivery window */
#define CAP 8

static char base[256], kek[PATH_MAX];
static unsigned seq;

static char logbuf[1 << 18];
static size_t loglen;
static unsigned nerrors;
static char seen[256][33]; /* hex of every MSK the tests saw */
static unsigned nseen;

static const struct kl_group_ref G1 = { .domain = { 0x00, 0xF1, 0x10 }, .group = 1 };
static const struct kl_group_ref G2 = { .domain = { 0x00, 0xF1, 0x10 }, .group = 2 };
static const struct kl_group_ref GX = { .domain = { 0x00, 0xF1, 0x10 }, .group = 9 };

struct fx {
	char dir[PATH_MAX];
	struct kl_table *t;
	struct kl_store *s;
	struct kl_rotate *r;
	struct kl_rotate_group groups[2];
	unsigned ngroups; /* groups[0..ngroups-1] are configured */
};

static void log_cb(void *arg, int level, const char *msg)
{
	int n;

	(void)arg;
	if (level == 0)
		nerrors++;
	n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%d %s\n", level, msg);
	if (n > 0 && (size_t)n < sizeof(logbuf) - loglen)
		loglen += (size_t)n;
}

static void remember(const struct kl_msk *m)
{
	if (nseen >= RTE_DIM(seen))
		return;
	for (unsigned i = 0; i < 16; i++)
		snprintf(seen[nseen] + 2 * i, 3, "%02x", m->key[i]);
	nseen++;
}

static void assert_no_key_in_log(void)
{
	for (unsigned i = 0; i < nseen; i++) {
		char head[17], *p;

		memcpy(head, seen[i], 16);
		head[16] = 0;
		for (p = logbuf; *p; p++)
			if (!strncasecmp(p, head, 16))
				fail_msg("MSK hex %s in the log", head);
	}
}

static struct kl_table *mk_table(uint32_t groups)
{
	struct kl_table_params p = {
		.max_ues = CAP, .max_groups = groups, .max_emses = CAP, .max_imsis = CAP,
		.max_appids = CAP, .e2m_ring = 4, .max_readers = 1, .socket_id = -1,
	};

	return kl_test_table(&p, "rot", &seq);
}

static struct kl_store *open_store(const char *dir, uint64_t map_size)
{
	return kl_test_store(dir, kek, map_size);
}

static struct kl_rotate *mk_rotate(struct fx *f, unsigned n)
{
	struct kl_rotate_params p = { .table = f->t, .store = f->s, .groups = f->groups, .n = n,
				      .log = log_cb };
	char err[256];
	struct kl_rotate *r = kl_rotate_create(&p, err, sizeof(err));

	if (!r)
		fail_msg("kl_rotate_create: %s", err);
	return r;
}

static void fx_init(struct fx *f, uint32_t table_groups, uint64_t map_size, bool store)
{
	memset(f, 0, sizeof(*f));
	loglen = 0;
	logbuf[0] = 0;
	nerrors = 0;
	f->t = mk_table(table_groups);
	snprintf(f->dir, sizeof(f->dir), "%s/store%u", base, seq++);
	if (store)
		f->s = open_store(f->dir, map_size);
	f->groups[0] = (struct kl_rotate_group){ .ref = G1, .period_s = P1, .predelivery_s = D1 };
	f->groups[1] = (struct kl_rotate_group){ .ref = G2, .period_s = P2, .predelivery_s = 0 };
	f->ngroups = 2;
	f->r = mk_rotate(f, 2);
}

/* Configure only the first n groups. */
static void fx_groups(struct fx *f, unsigned n)
{
	kl_rotate_free(f->r);
	f->ngroups = n;
	f->r = mk_rotate(f, n);
}

static void fx_done(struct fx *f)
{
	assert_no_key_in_log();
	kl_rotate_free(f->r);
	kl_store_close(f->s);
	kl_table_free(f->t);
}

/* The table's copy of a group (must exist). */
static struct kl_group tget(struct fx *f, const struct kl_group_ref *ref)
{
	struct kl_group g;

	assert_int_equal(kl_table_get_group(f->t, ref, &g), 0);
	remember(&g.current);
	if (g.has_next)
		remember(&g.next);
	return g;
}

static bool msk_eq(const struct kl_msk *a, const struct kl_msk *b)
{
	return !memcmp(a->key, b->key, 16) && a->msk_id == b->msk_id &&
	       a->valid_from == b->valid_from && a->valid_to == b->valid_to;
}

#define assert_group_eq(a, b) group_eq_at(a, b, __LINE__)
static void group_eq_at(const struct kl_group *a, const struct kl_group *b, int line)
{
	if (!msk_eq(&a->current, &b->current) || a->has_next != b->has_next)
		fprintf(stderr, "line %d: current %08x/%08x has_next %d/%d\n", line,
			a->current.msk_id, b->current.msk_id, a->has_next, b->has_next);
	assert_true(msk_eq(&a->current, &b->current));
	assert_int_equal(a->has_next, b->has_next);
	if (a->has_next)
		assert_true(msk_eq(&a->next, &b->next));
}

/* The store holds exactly what the table holds, also after closing and reopening it. */
static void assert_stored(struct fx *f, const struct kl_group_ref *ref)
{
	struct kl_group t = tget(f, ref), s;

	assert_int_equal(kl_store_get_group(f->s, ref, &s), 0);
	assert_group_eq(&t, &s);
	kl_store_close(f->s);
	f->s = NULL;
	{
		struct kl_store *s2 = open_store(f->dir, 0);

		memset(&s, 0, sizeof(s));
		assert_int_equal(kl_store_get_group(s2, ref, &s), 0);
		assert_group_eq(&t, &s);
		/* the rotation keeps its store pointer: give it back the same one */
		kl_rotate_free(f->r);
		f->s = s2;
		f->r = NULL;
	}
}

/* Re-create the rotation on the (reopened) store: counters restart, state does not. */
static void reattach(struct fx *f)
{
	if (!f->r)
		f->r = mk_rotate(f, f->ngroups);
}

static void assert_msk(const struct kl_msk *m, const struct kl_group_ref *ref, unsigned kn,
		       uint64_t from, uint32_t period)
{
	assert_int_equal(m->msk_id, (uint32_t)ref->group << 16 | kn);
	assert_true(m->valid_from == from);
	assert_true(m->valid_to == from + SEC(period));
}

static bool log_has(const char *s)
{
	return strstr(logbuf, s) != NULL;
}

static unsigned log_count(const char *s)
{
	unsigned n = 0;

	for (const char *p = logbuf; (p = strstr(p, s)) != NULL; p++)
		n++;
	return n;
}

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_create(void **state)
{
	struct kl_rotate_status st;
	struct kl_group g1, g2;
	uint8_t kcv[KL_KCV_LEN];
	char want[96];
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, true);
	/* nothing before the first tick */
	assert_int_equal(kl_table_count(f.t, KL_TK_GROUP), 0);
	assert_int_equal(kl_rotate_count(f.r), 2);
	assert_int_equal(kl_rotate_status(f.r, 0, &st), 0);
	assert_int_equal(st.current_id, 0);
	assert_int_equal(kl_rotate_status(f.r, 2, &st), -ENOENT);

	assert_int_equal(kl_rotate_tick(f.r, T0 + 0x80000000u), 2); /* half a second in */
	g1 = tget(&f, &G1);
	g2 = tget(&f, &G2);
	assert_msk(&g1.current, &G1, 1, T0, P1); /* whole seconds */
	assert_msk(&g2.current, &G2, 1, T0, P2);
	assert_int_equal(g1.has_next, 0);
	assert_int_equal(g2.has_next, 0);
	assert_false(!memcmp(g1.current.key, g2.current.key, 16));
	/* one INFO line per MSK, with its KCV */
	assert_int_equal(kl_kcv(g1.current.key, 16, kcv), 0);
	snprintf(want, sizeof(want), "2 group 00f110:1: new MSK 0x00010001 (key 1) kcv %02X%02X%02X",
		 kcv[0], kcv[1], kcv[2]);
	assert_true(log_has(want));
	assert_true(log_has("valid 2023-08-02T21:20:00Z .. 2023-08-02T22:20:00Z, current"));
	assert_int_equal(log_count("new MSK"), 2);
	/* status */
	assert_int_equal(kl_rotate_status(f.r, 0, &st), 0);
	assert_int_equal(st.current_id, 0x00010001);
	assert_true(st.current_from == T0 && st.current_to == T0 + SEC(P1));
	assert_memory_equal(st.current_kcv, kcv, KL_KCV_LEN);
	assert_int_equal(st.has_next, 0);
	assert_int_equal(st.rotations, 1);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.period_s, P1);
	assert_int_equal(st.predelivery_s, D1);
	/* same time again: nothing to do */
	assert_int_equal(kl_rotate_tick(f.r, T0 + 0x80000000u), 0);
	assert_int_equal(log_count("new MSK"), 2);
	assert_stored(&f, &G1);
	assert_stored(&f, &G2);
	reattach(&f);
	/* a restarted rotation finds the stored groups: no new key */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(1)), 0);
	g2 = tget(&f, &G1);
	assert_group_eq(&g2, &g1);
	assert_int_equal(nerrors, 0);
	fx_done(&f);
}

static void test_predeliver_promote(void **state)
{
	struct kl_group g, g0;
	struct kl_rotate_status st;
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, true);
	fx_groups(&f, 1);
	assert_int_equal(kl_rotate_tick(f.r, T0), 1);
	g0 = tget(&f, &G1);
	/* no change before from + P - D */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1) - 1), 0);
	g = tget(&f, &G1);
	assert_group_eq(&g, &g0);
	assert_int_equal(g.has_next, 0);
	/* next at from + P - D: key number + 1, valid [from + P, from + 2P) */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1)), 1);
	g = tget(&f, &G1);
	assert_true(msk_eq(&g.current, &g0.current));
	assert_int_equal(g.has_next, 1);
	assert_msk(&g.next, &G1, 2, T0 + SEC(P1), P1);
	assert_false(!memcmp(g.next.key, g.current.key, 16));
	assert_true(log_has("new MSK 0x00010002 (key 2)"));
	assert_true(log_has(", next"));
	assert_stored(&f, &G1); /* durable: a reopened store holds the next MSK */
	reattach(&f);
	/* still nothing to do until from + P */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1) - 1), 0);
	g0 = tget(&f, &G1);
	assert_group_eq(&g0, &g);
	/* promotion at from + P: the same key becomes current */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1)), 1);
	g0 = g;
	g = tget(&f, &G1);
	assert_true(msk_eq(&g.current, &g0.next));
	assert_int_equal(g.has_next, 0);
	assert_stored(&f, &G1);
	reattach(&f);
	/* and the next one on schedule */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(2 * P1 - D1)), 1);
	g = tget(&f, &G1);
	assert_msk(&g.next, &G1, 3, T0 + SEC(2 * P1), P1);
	assert_int_equal(kl_rotate_status(f.r, 0, &st), 0);
	assert_int_equal(st.has_next, 1);
	assert_int_equal(st.next_id, 0x00010003);
	assert_int_equal(st.rotations, 1);
	assert_int_equal(nerrors, 0);
	fx_done(&f);
}

/* Pre-delivery window 0: the successor is made and promoted at from + P in one step, with its
 * scheduled validity even when the tick comes late. */
static void test_no_predelivery(void **state)
{
	struct kl_group g;
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, false); /* table only */
	assert_int_equal(kl_rotate_tick(f.r, T0), 2);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P2) - 1), 0);
	assert_int_equal(tget(&f, &G2).has_next, 0);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P2) + SEC(3)), 1);
	g = tget(&f, &G2);
	assert_msk(&g.current, &G2, 2, T0 + SEC(P2), P2);
	assert_int_equal(g.has_next, 0);
	assert_int_equal(nerrors, 0);
	fx_done(&f);
}

static void test_wrap(void **state)
{
	struct kl_group g;
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, true);
	memset(&g, 0, sizeof(g));
	memset(g.current.key, 0x5a, 16);
	g.current.msk_id = 1u << 16 | 65535u;
	g.current.valid_from = T0;
	g.current.valid_to = T0 + SEC(P1);
	remember(&g.current);
	assert_int_equal(kl_store_put_group(f.s, &G1, &g), 0);
	assert_int_equal(kl_table_put_group(f.t, &G1, &g), 0);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1)), 2); /* G2 created */
	g = tget(&f, &G1);
	assert_int_equal(g.current.msk_id, 0x0001FFFF);
	assert_msk(&g.next, &G1, 1, T0 + SEC(P1), P1); /* 65535 -> 1, never 0 */
	assert_stored(&f, &G1);
	reattach(&f);
	/* a forced rotation wraps too */
	memset(&g, 0, sizeof(g));
	memset(g.current.key, 0x5b, 16);
	g.current.msk_id = 2u << 16 | 65535u;
	g.current.valid_from = T0;
	g.current.valid_to = T0 + SEC(P2);
	assert_int_equal(kl_store_put_group(f.s, &G2, &g), 0);
	assert_int_equal(kl_table_put_group(f.t, &G2, &g), 1); /* replaced */
	{
		uint32_t id = 0;
		char err[256];

		assert_int_equal(kl_rotate_force(f.r, &G2, T0 + SEC(5), &id, err, sizeof(err)), 0);
		assert_int_equal(id, 0x00020001);
	}
	assert_int_equal(nerrors, 0);
	fx_done(&f);
}

static void test_catch_up(void **state)
{
	struct kl_group g;
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, true);
	assert_int_equal(kl_rotate_tick(f.r, T0), 2);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1)), 2); /* G1 next 2, G2 rolled */
	assert_int_equal(tget(&f, &G1).has_next, 1);
	/* keyline down for ten periods: current and next have ended: fresh current from now */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(10 * P1 + 7) + 123), 2);
	g = tget(&f, &G1);
	assert_msk(&g.current, &G1, 3, T0 + SEC(10 * P1 + 7), P1);
	assert_int_equal(g.has_next, 0);
	g = tget(&f, &G2);
	assert_msk(&g.current, &G2, 3, T0 + SEC(10 * P1 + 7), P2);
	assert_stored(&f, &G1);
	reattach(&f);
	/* down for less than a period after next began: the next (already stored) is promoted */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(11 * P1 + 7 - D1)), 2);
	g = tget(&f, &G1);
	assert_int_equal(g.next.msk_id, 0x00010004);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(11 * P1 + 7 + 100)), 2);
	g = tget(&f, &G1);
	/* key 4 is current, valid from its schedule (not from now) */
	assert_msk(&g.current, &G1, 4, T0 + SEC(11 * P1 + 7), P1);
	assert_int_equal(g.has_next, 0);
	assert_int_equal(nerrors, 0);
	fx_done(&f);
}

static void test_force(void **state)
{
	struct kl_rotate_status st;
	struct kl_group g, g0;
	uint32_t id = 0;
	char err[256];
	uint64_t now = T0 + SEC(P1 - D1 + 10) + 0x40000000u;
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, true);
	assert_int_equal(kl_rotate_tick(f.r, T0), 2);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1)), 2);
	g0 = tget(&f, &G1);
	assert_int_equal(g0.has_next, 1);
	/* new current valid from now for a period, next dropped, key number + 1 (after next) */
	assert_int_equal(kl_rotate_force(f.r, &G1, now, &id, err, sizeof(err)), 0);
	assert_int_equal(id, 0x00010003);
	g = tget(&f, &G1);
	assert_msk(&g.current, &G1, 3, T0 + SEC(P1 - D1 + 10), P1);
	assert_int_equal(g.has_next, 0);
	assert_false(!memcmp(g.current.key, g0.current.key, 16));
	assert_false(!memcmp(g.current.key, g0.next.key, 16));
	assert_true(log_has("new MSK 0x00010003 (key 3)"));
	assert_true(log_has("(forced rotation)"));
	assert_stored(&f, &G1);
	reattach(&f);
	/* the next one comes on the new schedule */
	assert_int_equal(kl_rotate_tick(f.r, now), 0);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1 + 10 + P1 - D1)), 2);
	g = tget(&f, &G1);
	assert_msk(&g.next, &G1, 4, T0 + SEC(P1 - D1 + 10 + P1), P1);
	/* a configured group not made yet: created by the force */
	kl_rotate_free(f.r);
	f.groups[1].ref = GX;
	f.r = mk_rotate(&f, 2);
	assert_int_equal(kl_rotate_force(f.r, &GX, now, &id, err, sizeof(err)), 0);
	assert_int_equal(id, 0x00090001);
	assert_int_equal(kl_rotate_status(f.r, 1, &st), 0);
	assert_int_equal(st.current_id, 0x00090001);
	assert_int_equal(st.rotations, 1);
	/* not a configured group */
	err[0] = 0;
	assert_int_equal(kl_rotate_force(f.r, &G2, now, &id, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "00f110:2"));
	assert_int_equal(nerrors, 0);
	fx_done(&f);
}

static void test_fresh_keys_differ(void **state)
{
	struct kl_msk keys[40];
	uint8_t zero[16] = { 0 };
	char err[256];
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, false);
	for (unsigned i = 0; i < RTE_DIM(keys); i++) {
		uint32_t id;

		assert_int_equal(kl_rotate_force(f.r, &G1, T0 + SEC(i), &id, err, sizeof(err)), 0);
		assert_int_equal(id & 0xFFFF, i + 1);
		keys[i] = tget(&f, &G1).current;
		assert_memory_not_equal(keys[i].key, zero, 16);
		for (unsigned k = 0; k < i; k++)
			assert_memory_not_equal(keys[i].key, keys[k].key, 16);
	}
	assert_int_equal(log_count("new MSK"), RTE_DIM(keys));
	fx_done(&f);
}

/* Flip one byte of the stored group record (LMDB opened directly, the store closed): a disk
 * fault. The wrapped part no longer unwraps: the store answers -EBADMSG. */
static void damage_group(const char *dir, const struct kl_group_ref *ref)
{
	uint8_t key[5] = { ref->domain[0], ref->domain[1], ref->domain[2],
			   (uint8_t)(ref->group >> 8), (uint8_t)ref->group };
	MDB_val k = { sizeof(key), key }, v;
	uint8_t buf[1024];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "group", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_true(v.mv_size <= sizeof(buf));
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size - 3] ^= 0x01;
	v.mv_data = buf;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A damaged stored group: every tick reports it and changes nothing (the table keeps serving its
 * keys, no fresh key replaces the stored one); once the record is good again (an operator's
 * put-group) the next tick goes on. */
static void test_store_failure(void **state)
{
	struct kl_rotate_status st;
	struct kl_group g0, g;
	char err[256];
	int rc;
	struct fx f;

	(void)state;
	fx_init(&f, CAP, 0, true);
	fx_groups(&f, 1);
	assert_int_equal(kl_rotate_tick(f.r, T0), 1);
	g0 = tget(&f, &G1);
	kl_rotate_free(f.r);
	f.r = NULL;
	kl_store_close(f.s);
	damage_group(f.dir, &G1);
	f.s = open_store(f.dir, 0);
	reattach(&f);
	nerrors = 0;
	rc = kl_rotate_tick(f.r, T0 + SEC(P1 - D1));
	if (rc != -EBADMSG)
		fail_msg("tick on a damaged record: %d, log:\n%s", rc, logbuf);
	assert_int_equal(nerrors, 1);
	assert_true(log_has("0 group 00f110:1: store read:"));
	assert_true(log_has("retried at the next tick"));
	g = tget(&f, &G1);
	assert_group_eq(&g, &g0); /* the table is unchanged: no next */
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1 + 1)), -EBADMSG);
	assert_int_equal(kl_rotate_status(f.r, 0, &st), 0);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.rotations, 0);
	assert_int_equal(st.current_id, 0x00010001); /* status shows what the table serves */
	assert_int_equal(log_count("new MSK 0x00010002"), 0);
	/* a forced rotation is refused the same way */
	assert_int_equal(kl_rotate_force(f.r, &G1, T0 + SEC(P1 - D1 + 2), NULL, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "store read"));
	g = tget(&f, &G1);
	assert_group_eq(&g, &g0);
	/* repaired: retried at the next tick */
	assert_int_equal(kl_store_put_group(f.s, &G1, &g0), 0);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(P1 - D1 + 3)), 1);
	g = tget(&f, &G1);
	assert_true(msk_eq(&g.current, &g0.current));
	assert_msk(&g.next, &G1, 2, T0 + SEC(P1), P1);
	assert_stored(&f, &G1);
	reattach(&f);
	fx_done(&f);
}

/* The key table refuses the group (full): the new state is in the store; a later tick puts it
 * into the table once there is room, without making another key. */
static void test_table_failure(void **state)
{
	struct kl_group other, g, s;
	struct fx f;
	uint8_t gk[5] = { 0x00, 0xF1, 0x10, 0x00, 0x09 };

	(void)state;
	fx_init(&f, 1, 0, true); /* room for one group */
	fx_groups(&f, 1);
	memset(&other, 0, sizeof(other));
	memset(other.current.key, 0x77, 16);
	other.current.msk_id = 9u << 16 | 1;
	other.current.valid_from = T0;
	other.current.valid_to = T0 + SEC(60);
	remember(&other.current);
	assert_int_equal(kl_table_put_group(f.t, &GX, &other), 0);
	assert_int_equal(kl_rotate_tick(f.r, T0), -ENOSPC);
	assert_true(log_has("key table: full for groups"));
	assert_int_equal(kl_table_get_group(f.t, &G1, &g), -ENOENT);
	assert_int_equal(kl_store_get_group(f.s, &G1, &s), 0); /* stored first */
	remember(&s.current);
	assert_int_equal(kl_table_del(f.t, KL_TK_GROUP, gk, sizeof(gk)), 0);
	assert_int_equal(kl_rotate_tick(f.r, T0 + SEC(1)), 1);
	g = tget(&f, &G1);
	assert_group_eq(&g, &s); /* the stored key, not a new one */
	assert_int_equal(log_count("new MSK"), 1);
	fx_done(&f);
}

static void test_bad_params(void **state)
{
	struct kl_rotate_group gr[2] = { { .ref = G1, .period_s = P1, .predelivery_s = D1 },
					 { .ref = G1, .period_s = P1, .predelivery_s = D1 } };
	struct kl_rotate_params p = { .groups = gr, .n = 1 };
	struct kl_table *t = mk_table(CAP);
	char err[256];

	(void)state;
	assert_null(kl_rotate_create(&p, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	p.table = t;
	p.n = 2;
	assert_null(kl_rotate_create(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "listed twice"));
	p.n = 1;
	gr[0].period_s = KL_ROTATE_MIN_PERIOD_S - 1;
	assert_null(kl_rotate_create(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "period"));
	gr[0].period_s = KL_ROTATE_MAX_PERIOD_S + 1;
	assert_null(kl_rotate_create(&p, err, sizeof(err)));
	gr[0].period_s = 60;
	gr[0].predelivery_s = 60;
	assert_null(kl_rotate_create(&p, err, sizeof(err)));
	assert_non_null(strstr(err, "pre-delivery"));
	gr[0].predelivery_s = 59;
	{
		struct kl_rotate *r = kl_rotate_create(&p, err, sizeof(err));

		assert_non_null(r);
		kl_rotate_free(r);
	}
	kl_rotate_free(NULL);
	assert_int_equal(kl_rotate_tick(NULL, T0), -EINVAL);
	kl_table_free(t);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	char prefix[64], *eal[] = {
		argv[0], "--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--no-telemetry",
		"--file-prefix", prefix, "-l", "0", "--log-level=error",
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_predeliver_promote),
		cmocka_unit_test(test_no_predelivery),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_catch_up),
		cmocka_unit_test(test_force),
		cmocka_unit_test(test_fresh_keys_differ),
		cmocka_unit_test(test_store_failure),
		cmocka_unit_test(test_table_failure),
		cmocka_unit_test(test_bad_params),
	};
	const char *tmp = getenv("TMPDIR");
	char hex[65];
	int rc, fd;

	(void)argc;
	snprintf(prefix, sizeof(prefix), "kl_rotate_test_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (!tmp || !tmp[0] || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/kl_rotate_test.XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(kek, sizeof(kek), "%s/kek", base);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned)(0x10 + i * 3) & 0xFF);
	fd = open(kek, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, hex, 64) != 64) {
		perror("KEK file");
		return 1;
	}
	close(fd);
	rc = cmocka_run_group_tests_name("rotate", tests, NULL, NULL);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rte_eal_cleanup();
	return rc;
}
