/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Key store tests: the RFC 5649 primitive, round trips of every kind into a real key table, every
 * refusal (KEK file, wrong KEK, schema, garbage, truncation, altered and moved records), and a
 * crash test (store_crashd killed with SIGKILL; every acknowledged entry must load).
 *
 * usage: test_store STORE_CRASHD [--stress]
 *   --stress (or KL_STORE_STRESS=1): 1 M UEs: batched put rate, load time, bytes per UE on disk.
 * Stores live in a fresh directory under $TMPDIR (or /tmp), removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_eal_rundir.h"
#include "kl_store.h"
#include "kl_table.h"

static char base[256]; /* short, so every path built from it fits PATH_MAX */
static char kek_a[PATH_MAX], kek_b[PATH_MAX];
static const char *crashd_path;
static unsigned seq;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* A fresh store directory path (not created). */
static void new_dir(char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/store%u", base, seq++);
}

static struct kl_store *open_store(const char *dir, const char *kek, int create)
{
	struct kl_store_params p = {.path = dir, .kek_file = kek, .create_if_missing = create};
	char err[512];
	struct kl_store *s = kl_store_open(&p, err, sizeof(err));

	if (!s)
		fail_msg("open %s: %s", dir, err);
	return s;
}

/* Expect kl_store_open to fail with errno e and a message containing want. */
static void open_fails(const char *dir, const char *kek, int create, int e, const char *want)
{
	struct kl_store_params p = {.path = dir, .kek_file = kek, .create_if_missing = create};
	char err[512];
	struct kl_store *s;

	errno = 0;
	s = kl_store_open(&p, err, sizeof(err));
	if (s) {
		kl_store_close(s);
		fail_msg("open %s succeeded; expected \"%s\"", dir, want);
	}
	printf("  refused as expected: %s\n", err);
	if (errno != e)
		fail_msg("errno %d (%s), expected %d; message: %s", errno, strerror(errno), e, err);
	if (!strstr(err, want))
		fail_msg("message \"%s\" lacks \"%s\"", err, want);
}

static struct kl_table *mk_table(uint32_t max, uint8_t ring)
{
	char name[16];
	struct kl_table_params p = {
		.max_ues = max, .max_groups = max, .max_emses = max, .max_imsis = max,
		.max_appids = max, .max_pairs = max, .e2m_ring = ring, .max_readers = 1,
		.socket_id = -1,
	};
	struct kl_table *t;

	snprintf(name, sizeof(name), "st%u", seq++);
	p.name = name;
	t = kl_table_create(&p);
	assert_non_null(t);
	return t;
}

static const void *get1(struct kl_table *t, enum kl_table_kind kind, const void *id, uint16_t len)
{
	struct kl_table_key k = {.id = id, .len = len};
	const void *out = NULL;

	kl_table_lookup_bulk(t, kind, &k, 1, &out);
	return out;
}

/* Load a store into a fresh table. @return the table (and the load result in *rc). */
static struct kl_table *load_fresh(struct kl_store *s, uint32_t max, uint8_t ring,
				   struct kl_store_load_stats *st, int *rc, char *err, size_t errlen)
{
	struct kl_table *t = mk_table(max, ring);

	*rc = kl_store_load(s, t, st, err, errlen);
	return t;
}

static void kcv_of(const uint8_t *key, size_t len, uint8_t kcv[KL_KCV_LEN])
{
	assert_int_equal(kl_kcv(key, len, kcv), 0);
}

/* ---- LMDB opened directly: what an attacker or a disk fault could do ---------------------------- */

struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
};

static void raw_open(struct raw *r, const char *dir, const char *db)
{
	assert_int_equal(mdb_env_create(&r->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(r->env, 8), 0);
	assert_int_equal(mdb_env_open(r->env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	assert_int_equal(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static void raw_close(struct raw *r)
{
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

/* Flip one byte of a stored value (offset from the start, or from the end when negative). */
static void raw_flip(const char *dir, const char *db, const void *key, size_t klen, long off)
{
	struct raw r;
	MDB_val k = {klen, (void *)key}, v;
	uint8_t buf[1024];

	raw_open(&r, dir, db);
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &v), 0);
	assert_true(v.mv_size <= sizeof(buf));
	memcpy(buf, v.mv_data, v.mv_size);
	buf[off < 0 ? (long)v.mv_size + off : off] ^= 0x01;
	v.mv_data = buf;
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_close(&r);
}

/* Copy the value of one key onto another. */
static void raw_copy(const char *dir, const char *db, const void *from, size_t flen,
		     const void *to, size_t tlen)
{
	struct raw r;
	MDB_val k = {flen, (void *)from}, v;
	uint8_t buf[1024];

	raw_open(&r, dir, db);
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &v), 0);
	memcpy(buf, v.mv_data, v.mv_size);
	v.mv_data = buf;
	k = (MDB_val){tlen, (void *)to};
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_close(&r);
}

/* ---- 1. the primitive: RFC 5649 section 6 -------------------------------------------------------- */

static void test_kwp_vectors(void **state)
{
	static const uint8_t kek[24] = {0x58, 0x40, 0xdf, 0x6e, 0x29, 0xb0, 0x2a, 0xf1,
					0xab, 0x49, 0x3b, 0x70, 0x5b, 0xf1, 0x6e, 0xa1,
					0xae, 0x83, 0x38, 0xf4, 0xdc, 0xc1, 0x76, 0xa8};
	static const uint8_t key20[20] = {0xc3, 0x7b, 0x7e, 0x64, 0x92, 0x58, 0x43,
					  0x40, 0xbe, 0xd1, 0x22, 0x07, 0x80, 0x89,
					  0x41, 0x15, 0x50, 0x68, 0xf7, 0x38};
	static const uint8_t wrap20[32] = {
		0x13, 0x8b, 0xde, 0xaa, 0x9b, 0x8f, 0xa7, 0xfc, 0x61, 0xf9, 0x77,
		0x42, 0xe7, 0x22, 0x48, 0xee, 0x5a, 0xe6, 0xae, 0x53, 0x60, 0xd1,
		0xae, 0x6a, 0x5f, 0x54, 0xf3, 0x73, 0xfa, 0x54, 0x3b, 0x6a};
	static const uint8_t key7[7] = {0x46, 0x6f, 0x72, 0x50, 0x61, 0x73, 0x69};
	static const uint8_t wrap7[16] = {0xaf, 0xbe, 0xb0, 0xf0, 0x7d, 0xfb, 0xf5, 0x41,
					  0x92, 0x00, 0xf2, 0xcc, 0xb5, 0x0b, 0xb2, 0x4f};
	uint8_t out[64], back[64], other[24];

	(void)state;
	assert_int_equal(kl_store_kwp(kek, 24, 1, key20, 20, out, sizeof(out)), 32);
	assert_memory_equal(out, wrap20, 32);
	assert_int_equal(kl_store_kwp(kek, 24, 0, wrap20, 32, back, sizeof(back)), 20);
	assert_memory_equal(back, key20, 20);
	assert_int_equal(kl_store_kwp(kek, 24, 1, key7, 7, out, sizeof(out)), 16);
	assert_memory_equal(out, wrap7, 16);
	assert_int_equal(kl_store_kwp(kek, 24, 0, wrap7, 16, back, sizeof(back)), 7);
	assert_memory_equal(back, key7, 7);

	/* tampered: every bit position of the 20-octet wrap fails the integrity check */
	for (unsigned bit = 0; bit < 32 * 8; bit += 7) {
		memcpy(out, wrap20, 32);
		out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(kl_store_kwp(kek, 24, 0, out, 32, back, sizeof(back)), -EBADMSG);
	}
	memcpy(other, kek, 24);
	other[23] ^= 0x80;
	assert_int_equal(kl_store_kwp(other, 24, 0, wrap7, 16, back, sizeof(back)), -EBADMSG);
	/* bad arguments */
	assert_int_equal(kl_store_kwp(kek, 20, 1, key7, 7, out, sizeof(out)), -EINVAL);
	assert_int_equal(kl_store_kwp(kek, 24, 0, wrap20, 31, back, sizeof(back)), -EINVAL);
	assert_int_equal(kl_store_kwp(kek, 24, 0, wrap20, 8, back, sizeof(back)), -EINVAL);
	assert_int_equal(kl_store_kwp(kek, 24, 1, key20, 20, out, 31), -EINVAL);
	assert_int_equal(kl_store_kwp(kek, 24, 1, key20, 0, out, sizeof(out)), -EINVAL);
}

/* ---- 2. round trips ---------------------------------------------------------------------------- */

static const struct kl_group_ref G4[KL_TABLE_UE_GROUPS] = {
	{{0x00, 0xf1, 0x10}, 1}, {{0x00, 0xf1, 0x10}, 2}, {{0x21, 0x43, 0x65}, 0xbeef},
	{{0x21, 0x43, 0x65}, 4}};

static void fill(uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v + i * 3);
}

static void mk_group(struct kl_group *g, uint8_t seed, int has_next)
{
	memset(g, 0, sizeof(*g));
	fill(g->current.key, 16, seed);
	g->current.valid_from = (uint64_t)seed << 32;
	g->current.valid_to = ((uint64_t)seed + 100) << 32;
	g->current.msk_id = 0x12340000u | seed;
	if (has_next) {
		fill(g->next.key, 16, (uint8_t)(seed + 1));
		g->next.valid_from = ((uint64_t)seed + 100) << 32;
		g->next.valid_to = ((uint64_t)seed + 200) << 32;
		g->next.msk_id = 0x12340000u | (seed + 1u);
		g->has_next = 1;
	}
}

static void check_ue(struct kl_table *t, const char *id, const uint8_t *muk, unsigned muk_len,
		     const struct kl_group_ref *g, unsigned ng)
{
	const struct kl_ue *u = get1(t, KL_TK_UE, id, (uint16_t)strlen(id));
	struct kl_psk_chunk c[KL_TABLE_PSK_CHUNKS];
	uint8_t kcv[KL_KCV_LEN];
	int nc;

	if (!u)
		fail_msg("UE %s not loaded", id);
	kcv_of(muk, muk_len, kcv);
	assert_memory_equal(u->kcv, kcv, KL_KCV_LEN);
	nc = kl_psk_init(muk, muk_len, c);
	assert_int_equal(u->nchunks, nc);
	assert_memory_equal(u->chunk, c, (size_t)nc * sizeof(c[0]));
	assert_int_equal(u->ngroups, ng);
	for (unsigned i = 0; i < ng; i++) {
		assert_memory_equal(u->groups[i].domain, g[i].domain, 3);
		assert_int_equal(u->groups[i].group, g[i].group);
	}
}

static void check_group(struct kl_table *t, const struct kl_group_ref *ref,
			const struct kl_group *want)
{
	uint8_t key[5] = {ref->domain[0], ref->domain[1], ref->domain[2], (uint8_t)(ref->group >> 8),
			  (uint8_t)ref->group};
	const struct kl_group *g = get1(t, KL_TK_GROUP, key, 5);
	uint8_t a[KL_KCV_LEN], b[KL_KCV_LEN];

	assert_non_null(g);
	kcv_of(g->current.key, 16, a);
	kcv_of(want->current.key, 16, b);
	assert_memory_equal(a, b, KL_KCV_LEN);
	assert_memory_equal(g->current.key, want->current.key, 16);
	assert_int_equal(g->current.msk_id, want->current.msk_id);
	assert_int_equal(g->current.valid_from, want->current.valid_from);
	assert_int_equal(g->current.valid_to, want->current.valid_to);
	assert_int_equal(g->has_next, want->has_next);
	assert_memory_equal(g->next.key, want->next.key, 16);
	assert_int_equal(g->next.msk_id, want->next.msk_id);
	assert_int_equal(g->next.valid_from, want->next.valid_from);
	assert_int_equal(g->next.valid_to, want->next.valid_to);
}

static void check_emse(struct kl_table *t, const char *id, const uint8_t *psk, unsigned len)
{
	const struct kl_emse *e = get1(t, KL_TK_EMSE, id, (uint16_t)strlen(id));
	uint8_t kcv[KL_KCV_LEN];

	assert_non_null(e);
	kcv_of(psk, len, kcv);
	assert_memory_equal(e->kcv, kcv, KL_KCV_LEN);
	assert_int_equal(e->nchunks, len > 32 ? 2 : 1);
}

/* e2m key i of the ring of imsi: 32 bytes from (fill, id) */
static void e2m_key(uint8_t key[32], uint32_t id)
{
	fill(key, 32, (uint8_t)(id * 17u + 1u));
}

static void check_e2m(struct kl_table *t, const char *imsi, const uint32_t *ids,
		      const uint64_t *exp, unsigned n, const uint8_t (*keys)[32])
{
	const struct kl_e2m *e = get1(t, KL_TK_E2M, imsi, (uint16_t)strlen(imsi));
	uint8_t kcv[KL_KCV_LEN];

	assert_non_null(e);
	assert_int_equal(e->n, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(e->keys[i].key_id, ids[i]);
		assert_int_equal(e->keys[i].expires, exp[i]);
		kcv_of(keys[i], 32, kcv);
		assert_memory_equal(e->keys[i].kcv, kcv, KL_KCV_LEN);
	}
}

static void check_appid(struct kl_table *t, const char *appid, const char *imsi)
{
	const struct kl_appid *a = get1(t, KL_TK_APPID, appid, (uint16_t)strlen(appid));

	assert_non_null(a);
	assert_int_equal(a->imsi_len, strlen(imsi));
	assert_memory_equal(a->imsi, imsi, strlen(imsi));
}

#define PUT_UE(s, id, muk, len, g, ng)                                                           \
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)(id), (uint16_t)strlen(id), muk, len, \
					 g, ng),                                                 \
			 0)

static void test_roundtrip(void **state)
{
	char dir[PATH_MAX], err[512];
	uint8_t muk_a[32], muk_b[64], muk_c[20], psk1[16], psk2[64], k[32], keys[4][32];
	const struct kl_group_ref r1 = {{0x00, 0xf1, 0x10}, 7}, r2 = {{0x99, 0x88, 0x77}, 0xfffe};
	const char *imsi1 = "001010000000001", *imsi2 = "0010100000002";
	struct kl_store_load_stats ls;
	struct kl_store_stats ss;
	struct kl_group g1, g2;
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	fill(muk_a, sizeof(muk_a), 0x11);
	fill(muk_b, sizeof(muk_b), 0x22);
	fill(muk_c, sizeof(muk_c), 0x33);
	fill(psk1, sizeof(psk1), 0x44);
	fill(psk2, sizeof(psk2), 0x55);
	mk_group(&g1, 1, 0);
	mk_group(&g2, 9, 1);
	PUT_UE(s, "alice@ims.example", muk_a, 32, G4, 2);
	PUT_UE(s, "bob@ims.example", muk_b, 64, G4, 4);
	PUT_UE(s, "carol@ims.example", muk_c, 20, NULL, 0);
	assert_int_equal(kl_store_put_group(s, &r1, &g1), 0);
	assert_int_equal(kl_store_put_group(s, &r2, &g2), 0);
	assert_int_equal(kl_store_put_emse(s, (const uint8_t *)"emse-1", 6, psk1, 16), 0);
	assert_int_equal(kl_store_put_emse(s, (const uint8_t *)"emse-2", 6, psk2, 64), 0);
	for (uint32_t id = 1; id <= 6; id++) {
		e2m_key(k, id);
		assert_int_equal(kl_store_push_e2m(s, imsi1, k, id, 1000 + id, 4), 0);
	}
	/* a known key id is replaced where it stands */
	e2m_key(k, 44);
	assert_int_equal(kl_store_push_e2m(s, imsi1, k, 4, 7777, 4), 0);
	e2m_key(k, 9);
	assert_int_equal(kl_store_push_e2m(s, imsi2, k, 9, 0, 4), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"app@x", 5, imsi1), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"app@y", 5, "00101"), 0);
	/* argument checks match the table's */
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)"x", 1, muk_b, 65, NULL, 0), -EINVAL);
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)"x", 0, muk_b, 16, NULL, 0), -EINVAL);
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)"x", 1, muk_b, 16, G4, 5), -EINVAL);
	assert_int_equal(kl_store_put_emse(s, (const uint8_t *)"x", 1, psk2, 0), -EINVAL);
	assert_int_equal(kl_store_push_e2m(s, "00101x", k, 1, 0, 4), -EINVAL);
	assert_int_equal(kl_store_push_e2m(s, "0010100000000001", k, 1, 0, 4), -EINVAL);
	assert_int_equal(kl_store_push_e2m(s, imsi2, k, 1, 0, 0), -EINVAL);
	assert_int_equal(kl_store_push_e2m(s, imsi2, k, 1, 0, 9), -EINVAL);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"a", 1, ""), -EINVAL);
	assert_int_equal(kl_store_del(s, KL_TK_GROUP, (const uint8_t *)"abcd", 4), -EINVAL);
	assert_int_equal(kl_store_del(s, KL_TK__COUNT, (const uint8_t *)"abcd", 4), -EINVAL);
	assert_int_equal(kl_store_stats(s, &ss), 0);
	assert_int_equal(ss.entries[KL_TK_UE], 3);
	assert_int_equal(ss.entries[KL_TK_E2M], 2);
	assert_int_equal(ss.schema, KL_STORE_SCHEMA);
	assert_true(ss.file_bytes > 0 && ss.used_bytes <= ss.file_bytes);
	assert_true(ss.created > 1600000000u);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 64, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], 3);
	assert_int_equal(ls.loaded[KL_TK_GROUP], 2);
	assert_int_equal(ls.loaded[KL_TK_EMSE], 2);
	assert_int_equal(ls.loaded[KL_TK_E2M], 2);
	assert_int_equal(ls.loaded[KL_TK_APPID], 2);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 3);
	check_ue(t, "alice@ims.example", muk_a, 32, G4, 2);
	check_ue(t, "bob@ims.example", muk_b, 64, G4, 4);
	check_ue(t, "carol@ims.example", muk_c, 20, NULL, 0);
	check_group(t, &r1, &g1);
	check_group(t, &r2, &g2);
	check_emse(t, "emse-1", psk1, 16);
	check_emse(t, "emse-2", psk2, 64);
	{
		const uint32_t ids[4] = {6, 5, 4, 3};
		const uint64_t exp[4] = {1006, 1005, 7777, 1003};
		const uint32_t id2[1] = {9};
		const uint64_t exp2[1] = {0};

		e2m_key(keys[0], 6);
		e2m_key(keys[1], 5);
		e2m_key(keys[2], 44);
		e2m_key(keys[3], 3);
		check_e2m(t, imsi1, ids, exp, 4, (const uint8_t(*)[32])keys);
		e2m_key(keys[0], 9);
		check_e2m(t, imsi2, id2, exp2, 1, (const uint8_t(*)[32])keys);
	}
	check_appid(t, "app@x", imsi1);
	check_appid(t, "app@y", "00101");
	kl_table_free(t);

	/* a table with a smaller ring keeps the newest keys of the stored ring */
	t = load_fresh(s, 64, 2, &ls, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	{
		const uint32_t ids[2] = {6, 5};
		const uint64_t exp[2] = {1006, 1005};

		e2m_key(keys[0], 6);
		e2m_key(keys[1], 5);
		check_e2m(t, imsi1, ids, exp, 2, (const uint8_t(*)[32])keys);
	}
	kl_table_free(t);
	/* a table too small for the store: a clear error, not a partial success */
	t = load_fresh(s, 2, 4, &ls, &rc, err, sizeof(err));
	assert_int_equal(rc, -ENOSPC);
	printf("  too small a table: %s\n", err);
	assert_non_null(strstr(err, "no room for ue record #3 of 3"));
	kl_table_free(t);
	kl_store_close(s);
}

/* The two kl_kwp implementations read and write the same store: written with the default one
 * (AES-NI on this CPU), reopened, loaded and written with KL_KWP=openssl (the reference), then
 * loaded again with the default; the RFC vectors and a wrong KEK under the reference too. */
static void test_kwp_impls(void **state)
{
	char dir[PATH_MAX], err[512];
	uint8_t m1[32], m2[48];
	struct kl_store_load_stats ls;
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	fill(m1, sizeof(m1), 11);
	fill(m2, sizeof(m2), 12);
	s = open_store(dir, kek_a, 1);
	PUT_UE(s, "native@ims", m1, 32, G4, 2);
	kl_store_close(s);

	assert_int_equal(setenv("KL_KWP", "openssl", 1), 0);
	test_kwp_vectors(state);
	open_fails(dir, kek_b, 0, EKEYREJECTED, "wrong KEK");
	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load with KL_KWP=openssl: %s", err);
	check_ue(t, "native@ims", m1, 32, G4, 2);
	kl_table_free(t);
	PUT_UE(s, "reference@ims", m2, 48, G4 + 1, 3);
	kl_store_close(s);
	assert_int_equal(unsetenv("KL_KWP"), 0);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], 2);
	check_ue(t, "native@ims", m1, 32, G4, 2);
	check_ue(t, "reference@ims", m2, 48, G4 + 1, 3);
	kl_table_free(t);
	kl_store_close(s);
}

static void test_replace_delete_persist(void **state)
{
	char dir[PATH_MAX], err[512];
	uint8_t m1[32], m2[48], k[32];
	const struct kl_group_ref r1 = {{0x00, 0xf1, 0x10}, 7};
	const uint8_t gkey[5] = {0x00, 0xf1, 0x10, 0x00, 0x07};
	struct kl_group g1, g2;
	struct kl_store_load_stats ls;
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	fill(m1, sizeof(m1), 1);
	fill(m2, sizeof(m2), 2);
	mk_group(&g1, 3, 0);
	mk_group(&g2, 4, 1);
	e2m_key(k, 1);
	s = open_store(dir, kek_a, 1);
	PUT_UE(s, "x@ims", m1, 32, G4, 1);
	PUT_UE(s, "y@ims", m1, 32, G4, 1);
	assert_int_equal(kl_store_put_group(s, &r1, &g1), 0);
	assert_int_equal(kl_store_put_emse(s, (const uint8_t *)"e1", 2, m1, 32), 0);
	assert_int_equal(kl_store_push_e2m(s, "00101", k, 1, 5, 4), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"a1", 2, "00101"), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"a2", 2, "00102"), 0);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	PUT_UE(s, "x@ims", m2, 48, G4 + 1, 3);			/* replace */
	assert_int_equal(kl_store_put_group(s, &r1, &g2), 0); /* rotate */
	assert_int_equal(kl_store_del(s, KL_TK_UE, (const uint8_t *)"y@ims", 5), 0);
	assert_int_equal(kl_store_del(s, KL_TK_UE, (const uint8_t *)"y@ims", 5), -ENOENT);
	assert_int_equal(kl_store_del(s, KL_TK_EMSE, (const uint8_t *)"e1", 2), 0);
	assert_int_equal(kl_store_del(s, KL_TK_E2M, (const uint8_t *)"00101", 5), 0);
	assert_int_equal(kl_store_del(s, KL_TK_APPID, (const uint8_t *)"a2", 2), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"a1", 2, "99999"), 0);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	check_ue(t, "x@ims", m2, 48, G4 + 1, 3);
	assert_null(get1(t, KL_TK_UE, "y@ims", 5));
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	check_group(t, &r1, &g2);
	assert_null(get1(t, KL_TK_EMSE, "e1", 2));
	assert_null(get1(t, KL_TK_E2M, "00101", 5));
	assert_null(get1(t, KL_TK_APPID, "a2", 2));
	check_appid(t, "a1", "99999");
	kl_table_free(t);
	assert_int_equal(kl_store_del(s, KL_TK_GROUP, gkey, 5), 0);
	kl_store_close(s);
	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_null(get1(t, KL_TK_GROUP, gkey, 5));
	assert_int_equal(ls.loaded[KL_TK_GROUP], 0);
	assert_int_equal(ls.loaded[KL_TK_UE], 1);
	kl_table_free(t);
	kl_store_close(s);
}

/* ---- writer-side updates: set_ue_groups, del_e2m_key, get_group, get_ue_groups ---------------- */

static void load_fails(const char *dir, const char *want);

static void expect_groups(struct kl_store *s, const char *id, const struct kl_group_ref *want,
			  unsigned n)
{
	struct kl_group_ref g[KL_TABLE_UE_GROUPS];
	unsigned ng = 99;

	memset(g, 0xee, sizeof(g));
	assert_int_equal(kl_store_get_ue_groups(s, (const uint8_t *)id, (uint16_t)strlen(id), g, &ng),
			 0);
	assert_int_equal(ng, n);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(g[i].domain, want[i].domain, 3);
		assert_int_equal(g[i].group, want[i].group);
	}
}

#define SET_G(s, id, g, ng) \
	kl_store_set_ue_groups(s, (const uint8_t *)(id), (uint16_t)strlen(id), g, ng)

static void test_set_ue_groups(void **state)
{
	struct kl_group_ref five[KL_TABLE_UE_GROUPS + 1];
	char dir[PATH_MAX], err[512];
	uint8_t m1[40], m2[32], m3[64];
	struct kl_store_load_stats ls;
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	memset(five, 0, sizeof(five));
	new_dir(dir, sizeof(dir));
	fill(m1, sizeof(m1), 0x31);
	fill(m2, sizeof(m2), 0x32);
	fill(m3, sizeof(m3), 0x33);
	s = open_store(dir, kek_a, 1);
	PUT_UE(s, "u1@ims", m1, 40, G4, 2);
	PUT_UE(s, "u2@ims", m2, 32, G4, 1);
	assert_int_equal(SET_G(s, "u1@ims", G4 + 2, 2), 0);
	expect_groups(s, "u1@ims", G4 + 2, 2);
	assert_int_equal(SET_G(s, "nobody@ims", G4, 1), -ENOENT);
	assert_int_equal(SET_G(s, "u1@ims", five, 5), -EINVAL);
	assert_int_equal(SET_G(s, "u1@ims", NULL, 1), -EINVAL);
	assert_int_equal(kl_store_set_ue_groups(s, (const uint8_t *)"u1@ims", 0, G4, 1), -EINVAL);
	assert_int_equal(kl_store_set_ue_groups(NULL, (const uint8_t *)"u1@ims", 6, G4, 1), -EINVAL);
	expect_groups(s, "u1@ims", G4 + 2, 2); /* the refused calls changed nothing */
	kl_store_close(s);

	/* durable: the MUK (states, KCV) is the one put, the groups are the new ones */
	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	check_ue(t, "u1@ims", m1, 40, G4 + 2, 2);
	check_ue(t, "u2@ims", m2, 32, G4, 1);
	kl_table_free(t);

	/* in a batch: a set after a put of the same batch sees the put; reads see the batch */
	assert_int_equal(kl_store_txn_begin(s), 0);
	PUT_UE(s, "u3@ims", m3, 64, G4, 4);
	assert_int_equal(SET_G(s, "u3@ims", G4 + 3, 1), 0);
	expect_groups(s, "u3@ims", G4 + 3, 1);
	assert_int_equal(SET_G(s, "u2@ims", G4 + 1, 3), 0);
	assert_int_equal(SET_G(s, "nobody@ims", G4, 1), -ENOENT); /* does not spoil the batch */
	assert_int_equal(SET_G(s, "u1@ims", NULL, 0), 0);
	assert_int_equal(kl_store_txn_commit(s), 0);
	expect_groups(s, "u1@ims", NULL, 0);
	expect_groups(s, "u2@ims", G4 + 1, 3);
	expect_groups(s, "u3@ims", G4 + 3, 1);

	/* abort leaves the old groups */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(SET_G(s, "u2@ims", G4, 4), 0);
	expect_groups(s, "u2@ims", G4, 4);
	kl_store_txn_abort(s);
	expect_groups(s, "u2@ims", G4 + 1, 3);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], 3);
	check_ue(t, "u1@ims", m1, 40, NULL, 0);
	check_ue(t, "u2@ims", m2, 32, G4 + 1, 3);
	check_ue(t, "u3@ims", m3, 64, G4 + 3, 1);
	kl_table_free(t);
	kl_store_close(s);

	/* a tampered record: the wrapped bytes, or a group byte (metadata bound in the wrap) */
	raw_flip(dir, "ue", "u2@ims", 6, -3);
	raw_flip(dir, "ue", "u3@ims", 6, 7);
	s = open_store(dir, kek_a, 0);
	assert_int_equal(SET_G(s, "u2@ims", G4, 1), -EBADMSG);
	assert_non_null(strstr(kl_store_last_error(s), "does not unwrap"));
	assert_int_equal(SET_G(s, "u3@ims", G4, 1), -EBADMSG);
	assert_non_null(strstr(kl_store_last_error(s), "does not belong to its key"));
	{
		struct kl_group_ref g[KL_TABLE_UE_GROUPS];
		unsigned ng;

		assert_int_equal(kl_store_get_ue_groups(s, (const uint8_t *)"u2@ims", 6, g, &ng),
				 -EBADMSG);
		assert_int_equal(kl_store_get_ue_groups(s, (const uint8_t *)"u3@ims", 6, g, &ng),
				 -EBADMSG);
		assert_int_equal(kl_store_get_ue_groups(s, (const uint8_t *)"nobody", 6, g, &ng),
				 -ENOENT);
		assert_int_equal(kl_store_get_ue_groups(s, (const uint8_t *)"u1@ims", 6, NULL, &ng),
				 -EINVAL);
	}
	/* in a batch the refusal does not spoil it either */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(SET_G(s, "u2@ims", G4, 1), -EBADMSG);
	assert_int_equal(SET_G(s, "u1@ims", G4, 1), 0);
	assert_int_equal(kl_store_txn_commit(s), 0);
	expect_groups(s, "u1@ims", G4, 1);
	kl_store_close(s);
	/* the damaged record was left as it was: the load still names it */
	load_fails(dir, "ue record #2 of 3: its wrapped key does not unwrap");
}

static void test_del_e2m_key(void **state)
{
	const char *imsi = "001010000000001";
	uint8_t keys[6][32], want_k[4][32];
	uint32_t want_id[4];
	uint64_t want_exp[4];
	char dir[PATH_MAX], err[512];
	struct kl_store_load_stats ls;
	struct kl_store_stats ss;
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	for (uint32_t i = 0; i < 6; i++)
		e2m_key(keys[i], i);
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	for (uint32_t id = 1; id <= 4; id++)
		assert_int_equal(kl_store_push_e2m(s, imsi, keys[id], id, 1000 + id, 4), 0);
	assert_int_equal(kl_store_push_e2m(s, "00102", keys[0], 77, 0, 4), 0);
	/* stored 4,3,2,1: the middle key goes */
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 3), 0);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 3), -ENOENT);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 99), -ENOENT);
	assert_int_equal(kl_store_del_e2m_key(s, "00199", 1), -ENOENT);
	assert_int_equal(kl_store_del_e2m_key(s, "12a4", 1), -EINVAL);
	assert_int_equal(kl_store_del_e2m_key(s, "", 1), -EINVAL);
	assert_int_equal(kl_store_del_e2m_key(s, NULL, 1), -EINVAL);
	assert_int_equal(kl_store_del_e2m_key(NULL, imsi, 1), -EINVAL);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	want_id[0] = 4, want_id[1] = 2, want_id[2] = 1;
	for (unsigned i = 0; i < 3; i++) {
		want_exp[i] = 1000 + want_id[i];
		memcpy(want_k[i], keys[want_id[i]], 32);
	}
	check_e2m(t, imsi, want_id, want_exp, 3, want_k);
	kl_table_free(t);

	/* in a batch: a delete of a key pushed in the same batch */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_push_e2m(s, imsi, keys[5], 5, 1005, 4), 0);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 5), 0);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 5), -ENOENT);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 4), 0);
	assert_int_equal(kl_store_txn_commit(s), 0);
	/* abort: the delete is dropped */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 2), 0);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 1), 0);
	kl_store_txn_abort(s);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	want_id[0] = 2, want_id[1] = 1;
	for (unsigned i = 0; i < 2; i++) {
		want_exp[i] = 1000 + want_id[i];
		memcpy(want_k[i], keys[want_id[i]], 32);
	}
	check_e2m(t, imsi, want_id, want_exp, 2, want_k);
	kl_table_free(t);
	/* the last key takes the record with it */
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 2), 0);
	assert_int_equal(kl_store_stats(s, &ss), 0);
	assert_int_equal(ss.entries[KL_TK_E2M], 2);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 1), 0);
	assert_int_equal(kl_store_stats(s, &ss), 0);
	assert_int_equal(ss.entries[KL_TK_E2M], 1);
	assert_int_equal(kl_store_del_e2m_key(s, imsi, 1), -ENOENT);
	kl_store_close(s);
	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_null(get1(t, KL_TK_E2M, imsi, 15));
	assert_int_equal(ls.loaded[KL_TK_E2M], 1);
	want_id[0] = 77;
	want_exp[0] = 0;
	memcpy(want_k[0], keys[0], 32);
	check_e2m(t, "00102", want_id, want_exp, 1, want_k);
	kl_table_free(t);
	kl_store_close(s);

	/* a damaged ring is refused and left as it was */
	raw_flip(dir, "e2m", "00102", 5, -3);
	s = open_store(dir, kek_a, 0);
	assert_int_equal(kl_store_del_e2m_key(s, "00102", 77), -EBADMSG);
	assert_non_null(strstr(kl_store_last_error(s), "corrupt"));
	kl_store_close(s);
	load_fails(dir, "e2m record #1 of 1: its wrapped key does not unwrap");
	kl_memzero(keys, sizeof(keys));
	kl_memzero(want_k, sizeof(want_k));
}

static void test_get_group(void **state)
{
	const struct kl_group_ref r1 = {{0x00, 0xf1, 0x10}, 7}, r2 = {{0x00, 0xf1, 0x10}, 8};
	struct kl_group g1, g2, out;
	char dir[PATH_MAX];
	struct kl_store *s;

	(void)state;
	mk_group(&g1, 9, 1);
	mk_group(&g2, 10, 0);
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	memset(&out, 0xee, sizeof(out));
	assert_int_equal(kl_store_get_group(s, &r1, &out), -ENOENT);
	assert_int_equal(kl_store_put_group(s, &r1, &g1), 0);
	assert_int_equal(kl_store_get_group(s, &r1, &out), 0);
	assert_memory_equal(&out, &g1, sizeof(g1)); /* every field, padding zeroed */
	assert_int_equal(kl_store_get_group(s, &r2, &out), -ENOENT);
	assert_int_equal(kl_store_get_group(s, NULL, &out), -EINVAL);
	assert_int_equal(kl_store_get_group(s, &r1, NULL), -EINVAL);
	assert_int_equal(kl_store_get_group(NULL, &r1, &out), -EINVAL);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	assert_int_equal(kl_store_get_group(s, &r1, &out), 0);
	assert_memory_equal(&out, &g1, sizeof(g1));
	/* a batch's reads see its staged writes; abort drops them */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_put_group(s, &r1, &g2), 0);
	assert_int_equal(kl_store_put_group(s, &r2, &g1), 0);
	assert_int_equal(kl_store_get_group(s, &r1, &out), 0);
	assert_memory_equal(&out, &g2, sizeof(g2));
	assert_int_equal(kl_store_get_group(s, &r2, &out), 0);
	assert_memory_equal(&out, &g1, sizeof(g1));
	kl_store_txn_abort(s);
	assert_int_equal(kl_store_get_group(s, &r1, &out), 0);
	assert_memory_equal(&out, &g1, sizeof(g1));
	assert_int_equal(kl_store_get_group(s, &r2, &out), -ENOENT);
	kl_store_close(s);

	/* tampered: refused, *out holds no key bytes */
	raw_flip(dir, "group", "\x00\xf1\x10\x00\x07", 5, 1 + 6);
	s = open_store(dir, kek_a, 0);
	memset(&out, 0xee, sizeof(out));
	assert_int_equal(kl_store_get_group(s, &r1, &out), -EBADMSG);
	assert_true(out.current.key[0] == 0 && out.next.key[15] == 0 && out.has_next == 0);
	kl_store_close(s);
	kl_memzero(&out, sizeof(out));
	kl_memzero(&g1, sizeof(g1));
	kl_memzero(&g2, sizeof(g2));
}

/* Batches: staged writes are durable only after commit; abort drops them. */
static void test_batch(void **state)
{
	char dir[PATH_MAX], id[32], err[512];
	uint8_t muk[32];
	struct kl_store_load_stats ls;
	struct kl_store_stats ss;
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	fill(muk, sizeof(muk), 7);
	s = open_store(dir, kek_a, 1);
	assert_int_equal(kl_store_txn_commit(s), -EINVAL);
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_txn_begin(s), -EBUSY);
	for (unsigned i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "b%04u@ims", i);
		PUT_UE(s, id, muk, 32, G4, 1);
	}
	/* a bad argument is refused and does not spoil the batch */
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)"z", 1, muk, 0, NULL, 0), -EINVAL);
	t = mk_table(1000, 4);
	assert_int_equal(kl_store_load(s, t, &ls, err, sizeof(err)), -EBUSY);
	assert_int_equal(kl_store_stats(s, &ss), 0); /* sees the committed state only */
	assert_int_equal(ss.entries[KL_TK_UE], 0);
	assert_int_equal(kl_store_txn_commit(s), 0);
	assert_int_equal(kl_store_stats(s, &ss), 0);
	assert_int_equal(ss.entries[KL_TK_UE], 500);

	assert_int_equal(kl_store_txn_begin(s), 0);
	PUT_UE(s, "dropped@ims", muk, 32, G4, 1);
	assert_int_equal(kl_store_del(s, KL_TK_UE, (const uint8_t *)"b0000@ims", 9), 0);
	kl_store_txn_abort(s);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	rc = kl_store_load(s, t, &ls, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], 500);
	assert_null(get1(t, KL_TK_UE, "dropped@ims", 11));
	check_ue(t, "b0000@ims", muk, 32, G4, 1);
	check_ue(t, "b0499@ims", muk, 32, G4, 1);
	kl_table_free(t);
	kl_store_close(s);
}

/* A full store (map_size reached): the failing put is not acknowledged, a batch with a failed
 * write commits nothing, and what was committed before still loads. */
static void test_full(void **state)
{
	struct kl_store_params p = {.kek_file = kek_a, .map_size = 1 << 20, .create_if_missing = 1};
	char dir[PATH_MAX], id[40], err[512];
	struct kl_store_load_stats ls;
	uint8_t muk[64];
	struct kl_store *s;
	struct kl_table *t;
	unsigned ok = 0, i;
	int rc = 0;

	(void)state;
	new_dir(dir, sizeof(dir));
	p.path = dir;
	fill(muk, sizeof(muk), 1);
	s = kl_store_open(&p, err, sizeof(err));
	if (!s)
		fail_msg("open: %s", err);
	/* batches of 500 until the map is full */
	assert_int_equal(kl_store_txn_begin(s), 0);
	for (i = 0; i < 100000 && !rc; i++) {
		snprintf(id, sizeof(id), "full%06u@ims.example", i);
		rc = kl_store_put_ue(s, (const uint8_t *)id, (uint16_t)strlen(id), muk, 32, G4, 4);
		if (!rc && i % 500 == 499) {
			assert_int_equal(kl_store_txn_commit(s), 0);
			ok = i + 1;
			assert_int_equal(kl_store_txn_begin(s), 0);
		}
	}
	assert_int_equal(rc, -ENOSPC);
	printf("  full after %u puts: %s\n", i, kl_store_last_error(s));
	assert_non_null(strstr(kl_store_last_error(s), "the store is full (map_size 1048576"));
	/* the rest of the batch is refused; commit rolls it back */
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)"late", 4, muk, 32, NULL, 0),
			 -ECANCELED);
	assert_int_equal(kl_store_txn_commit(s), -ECANCELED);
	/* a single put that does not fit is refused, not acknowledged */
	for (rc = 0, i = 0; i < 2000 && !rc; i++) {
		snprintf(id, sizeof(id), "more%06u@ims.example", i);
		rc = kl_store_put_ue(s, (const uint8_t *)id, (uint16_t)strlen(id), muk, 32, G4, 4);
		ok += !rc;
	}
	assert_int_equal(rc, -ENOSPC);
	kl_store_close(s);
	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, ok + 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], ok);
	kl_table_free(t);
	kl_store_close(s);
}

/* ---- 3. refusals ----------------------------------------------------------------------------- */

static void test_kek_file(void **state)
{
	char dir[PATH_MAX], kf[PATH_MAX], hex[80];
	uint8_t raw[66];
	struct kl_store *s;

	(void)state;
	new_dir(dir, sizeof(dir));
	snprintf(kf, sizeof(kf), "%s/kek-test", base);
	fill(raw, sizeof(raw), 0x61);

	open_fails(dir, kf, 1, ENOENT, "does not exist");
	write_file(kf, raw, 32, 0644);
	open_fails(dir, kf, 1, EPERM, "has mode 0644: it must be exactly 0600");
	write_file(kf, raw, 32, 0640);
	open_fails(dir, kf, 1, EPERM, "has mode 0640");
	write_file(kf, raw, 32, 0400);
	open_fails(dir, kf, 1, EPERM, "has mode 0400");
	write_file(kf, raw, 31, 0600);
	open_fails(dir, kf, 1, EINVAL, "holds 31 bytes: it must hold 32 raw bytes or 64 hex digits");
	write_file(kf, raw, 33, 0600);
	open_fails(dir, kf, 1, EINVAL, "holds 33 bytes");
	write_file(kf, "", 0, 0600);
	open_fails(dir, kf, 1, EINVAL, "holds 0 bytes");
	write_file(kf, raw, 64, 0600); /* 64 bytes but not hex digits */
	open_fails(dir, kf, 1, EINVAL, "not 64 hex digits");
	memset(raw, 0, 32);
	write_file(kf, raw, 32, 0600);
	open_fails(dir, kf, 1, EINVAL, "all zeros");
	open_fails(dir, base, 1, EINVAL, "not a regular file");
	unlink(kf);
	assert_int_equal(mkfifo(kf, 0600), 0); /* refused at once, not waited on */
	open_fails(dir, kf, 1, EINVAL, "not a regular file");
	unlink(kf);
	if (geteuid() == 0) {
		fill(raw, sizeof(raw), 0x61);
		write_file(kf, raw, 32, 0600);
		assert_int_equal(chown(kf, 4242, 4242), 0);
		open_fails(dir, kf, 1, EPERM, "owned by uid 4242");
	}
	/* nothing was created by the refusals */
	assert_int_equal(access(dir, F_OK), -1);

	/* the hex form (with its newline) is the same KEK as the raw form */
	fill(raw, sizeof(raw), 0x61);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[64] = '\n';
	unlink(kf);
	write_file(kf, hex, 65, 0600);
	s = open_store(dir, kf, 1);
	kl_store_close(s);
	write_file(kf, raw, 32, 0600);
	s = open_store(dir, kf, 0);
	kl_store_close(s);
	unlink(kf);
}

static void test_wrong_kek(void **state)
{
	char dir[PATH_MAX];
	uint8_t muk[32];
	struct kl_store_stats a, b;
	struct kl_store *s;

	(void)state;
	new_dir(dir, sizeof(dir));
	fill(muk, sizeof(muk), 9);
	s = open_store(dir, kek_a, 1);
	PUT_UE(s, "u@ims", muk, 32, NULL, 0);
	assert_int_equal(kl_store_stats(s, &a), 0);
	assert_int_equal(a.kek_secure_heap, 1);
	kl_store_close(s);
	open_fails(dir, kek_b, 0, EKEYREJECTED, "wrong KEK");
	/* the refusal left the store as it was */
	s = open_store(dir, kek_a, 0);
	assert_int_equal(kl_store_stats(s, &b), 0);
	assert_memory_equal(a.kek_kcv, b.kek_kcv, KL_KCV_LEN);
	assert_int_equal(b.entries[KL_TK_UE], 1);
	kl_store_close(s);
	/* and the other KEK has another check value */
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_b, 1);
	assert_int_equal(kl_store_stats(s, &b), 0);
	assert_memory_not_equal(a.kek_kcv, b.kek_kcv, KL_KCV_LEN);
	kl_store_close(s);
}

static void test_schema(void **state)
{
	char dir[PATH_MAX];
	struct raw r;
	MDB_val k = {6, "schema"}, v;
	uint8_t v4[4] = {2, 0, 0, 0};
	struct kl_store *s;

	(void)state;
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	kl_store_close(s);
	raw_open(&r, dir, "meta");
	v = (MDB_val){4, v4};
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_close(&r);
	open_fails(dir, kek_a, 0, EPROTO, "has schema version 2; this keylined reads schema version 1");
	open_fails(dir, kek_a, 0, EPROTO, "incompatible");

	/* an LMDB environment that is not ours */
	new_dir(dir, sizeof(dir));
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mdb_env_create(&r.env), 0);
	assert_int_equal(mdb_env_open(r.env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(r.env, NULL, 0, &r.txn), 0);
	assert_int_equal(mdb_dbi_open(r.txn, NULL, 0, &r.dbi), 0);
	v = (MDB_val){5, "hello"};
	assert_int_equal(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_close(&r);
	open_fails(dir, kek_a, 1, EBADMSG, "is not a keyline store");
}

static void fill_store(const char *dir, unsigned n)
{
	struct kl_store *s = open_store(dir, kek_a, 1);
	char id[40];
	uint8_t muk[32];

	fill(muk, sizeof(muk), 3);
	assert_int_equal(kl_store_txn_begin(s), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "fill%05u@ims.example", i);
		PUT_UE(s, id, muk, 32, G4, 2);
	}
	assert_int_equal(kl_store_txn_commit(s), 0);
	kl_store_close(s);
}

static void test_damaged_file(void **state)
{
	char dir[PATH_MAX], file[PATH_MAX + 16];
	struct stat st;
	uint8_t *junk;

	(void)state;
	/* no store at all */
	new_dir(dir, sizeof(dir));
	open_fails(dir, kek_a, 0, ENOENT, "does not exist");
	assert_int_equal(mkdir(dir, 0700), 0);
	open_fails(dir, kek_a, 0, ENOENT, "has no data file");
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	write_file(file, "", 0, 0600);
	open_fails(dir, kek_a, 1, EBADMSG, "data.mdb is empty");
	open_fails(file, kek_a, 1, ENOTDIR, "is not a directory");

	/* overwritten with garbage */
	new_dir(dir, sizeof(dir));
	fill_store(dir, 2000);
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	assert_int_equal(stat(file, &st), 0);
	assert_true(st.st_size > 65536);
	junk = malloc((size_t)st.st_size);
	assert_non_null(junk);
	srand(7);
	for (off_t i = 0; i < st.st_size; i++)
		junk[i] = (uint8_t)rand();
	write_file(file, junk, (size_t)st.st_size, 0600);
	open_fails(dir, kek_a, 0, EBADMSG, "is not an LMDB file");
	open_fails(dir, kek_a, 1, EBADMSG, "is not an LMDB file");
	/* garbage in the two header pages only */
	new_dir(dir, sizeof(dir));
	fill_store(dir, 2000);
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	{
		int fd = open(file, O_WRONLY);

		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, junk, 8192, 0), 8192);
		close(fd);
	}
	open_fails(dir, kek_a, 0, EBADMSG, "is not an LMDB file");
	free(junk);

	/* truncated: half, and to a single page */
	new_dir(dir, sizeof(dir));
	fill_store(dir, 2000);
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(truncate(file, st.st_size / 2), 0);
	open_fails(dir, kek_a, 0, EBADMSG, "data.mdb is truncated");
	assert_int_equal(truncate(file, 4096), 0);
	open_fails(dir, kek_a, 0, EBADMSG, "store");
	assert_int_equal(truncate(file, 0), 0);
	open_fails(dir, kek_a, 1, EBADMSG, "data.mdb is empty");
}

static void test_in_use(void **state)
{
	char dir[PATH_MAX];
	struct kl_store *s;

	(void)state;
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	open_fails(dir, kek_a, 0, EBUSY, "in use");
	kl_store_close(s);
	s = open_store(dir, kek_a, 0);
	kl_store_close(s);
}

/* A load of a damaged store fails naming the kind and the record number. */
static void load_fails(const char *dir, const char *want)
{
	struct kl_store *s = open_store(dir, kek_a, 0);
	struct kl_store_load_stats ls;
	char err[512];
	struct kl_table *t;
	int rc;

	t = load_fresh(s, 64, 4, &ls, &rc, err, sizeof(err));
	printf("  load refused as expected: %s\n", err);
	assert_int_equal(rc, -EBADMSG);
	if (!strstr(err, want))
		fail_msg("message \"%s\" lacks \"%s\"", err, want);
	kl_table_free(t);
	kl_store_close(s);
}

/* A store with two entries of every kind (keys sort "a..." < "b..."). */
static void two_of_each(const char *dir)
{
	struct kl_store *s = open_store(dir, kek_a, 1);
	const struct kl_group_ref ra = {{1, 2, 3}, 1}, rb = {{1, 2, 3}, 2};
	struct kl_group g;
	uint8_t k[64];

	fill(k, sizeof(k), 0x70);
	mk_group(&g, 5, 1);
	PUT_UE(s, "a@ims", k, 32, G4, 2);
	PUT_UE(s, "b@ims", k + 1, 32, G4, 2);
	assert_int_equal(kl_store_put_group(s, &ra, &g), 0);
	assert_int_equal(kl_store_put_group(s, &rb, &g), 0);
	assert_int_equal(kl_store_put_emse(s, (const uint8_t *)"a-emse", 6, k, 40), 0);
	assert_int_equal(kl_store_put_emse(s, (const uint8_t *)"b-emse", 6, k + 2, 40), 0);
	assert_int_equal(kl_store_push_e2m(s, "001", k, 1, 0, 4), 0);
	assert_int_equal(kl_store_push_e2m(s, "001", k + 3, 2, 0, 4), 0);
	assert_int_equal(kl_store_push_e2m(s, "002", k + 4, 1, 0, 4), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"a-app", 5, "001"), 0);
	assert_int_equal(kl_store_put_appid(s, (const uint8_t *)"b-app", 5, "002"), 0);
	assert_int_equal(kl_store_put_pair(s, (const uint8_t *)"a-peer", 6, k + 5, 32, 0), 0);
	assert_int_equal(kl_store_put_pair(s, (const uint8_t *)"b-peer", 6, k + 6, 32, 7), 0);
	kl_store_close(s);
}

static void test_altered_record(void **state)
{
	static const struct {
		const char *db;
		const char *key;
		size_t klen;
	} second[KL_TK__COUNT] = {
		{"ue", "b@ims", 5}, {"group", "\x01\x02\x03\x00\x02", 5}, {"emse", "b-emse", 6},
		{"e2m", "002", 3},  {"appid", "b-app", 5}, {"pair", "b-peer", 6},
	};
	char dir[PATH_MAX], want[96];

	(void)state;
	for (unsigned kind = 0; kind < KL_TK__COUNT; kind++) {
		/* a flipped bit in the wrapped bytes */
		new_dir(dir, sizeof(dir));
		two_of_each(dir);
		raw_flip(dir, second[kind].db, second[kind].key, second[kind].klen, -3);
		snprintf(want, sizeof(want), "%s record #2 of 2: its wrapped key does not unwrap",
			 second[kind].db);
		load_fails(dir, want);
		/* a value copied from the first key onto the second */
		new_dir(dir, sizeof(dir));
		two_of_each(dir);
		raw_copy(dir, second[kind].db, kind == KL_TK_GROUP ? "\x01\x02\x03\x00\x01" :
					       kind == KL_TK_E2M   ? "001" :
					       kind == KL_TK_UE	   ? "a@ims" :
					       kind == KL_TK_EMSE  ? "a-emse" :
					       kind == KL_TK_PAIR  ? "a-peer" : "a-app",
			 second[kind].klen, second[kind].key, second[kind].klen);
		snprintf(want, sizeof(want), "%s record #2 of 2: it does not belong to its key",
			 second[kind].db);
		load_fails(dir, want);
		/* a damaged header byte */
		new_dir(dir, sizeof(dir));
		two_of_each(dir);
		raw_flip(dir, second[kind].db, second[kind].key, second[kind].klen, 0);
		snprintf(want, sizeof(want), "%s record #2 of 2: malformed record", second[kind].db);
		load_fails(dir, want);
	}
	/* non-secret metadata is bound too: a UE's group, an e2m key's expiry */
	new_dir(dir, sizeof(dir));
	two_of_each(dir);
	raw_flip(dir, "ue", "a@ims", 5, 7);
	load_fails(dir, "ue record #1 of 2: it does not belong to its key");
	new_dir(dir, sizeof(dir));
	two_of_each(dir);
	raw_flip(dir, "e2m", "001", 3, 6 + 1 + 4);
	load_fails(dir, "e2m record #1 of 2: it does not belong to its key");
	/* a push onto a damaged ring is refused, the ring is left as it was */
	{
		struct kl_store *s = open_store(dir, kek_a, 0);
		uint8_t k[32] = {1};

		assert_int_equal(kl_store_push_e2m(s, "001", k, 9, 0, 4), -EBADMSG);
		assert_non_null(strstr(kl_store_last_error(s), "corrupt"));
		assert_int_equal(kl_store_push_e2m(s, "003", k, 9, 0, 4), 0);
		kl_store_close(s);
	}
}

/* ---- 4. durability: SIGKILL mid-way, every acknowledged entry loads -------------------------- */

static void crash_muk(uint32_t i, uint8_t muk[32])
{
	for (unsigned j = 0; j < 32; j++)
		muk[j] = (uint8_t)(i * 131u + j * 7u + (i >> 8) * 13u) ^ 0x5a;
}

static void crash_run(unsigned batch, unsigned want_acks, double max_s)
{
	char dir[PATH_MAX], bs[16], buf[4096], err[512], line[32];
	int fds[2], status;
	size_t ll = 0;
	uint32_t acked = 0;
	double t0, t1 = 0;
	pid_t pid;
	struct kl_store_load_stats ls;
	struct kl_store *s;
	struct kl_table *t;
	int rc, killed = 0;

	new_dir(dir, sizeof(dir));
	snprintf(bs, sizeof(bs), "%u", batch);
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	t0 = now_s();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *const av[] = {(char *)crashd_path, dir, kek_a, bs, "10000000", NULL};

		dup2(fds[1], 1);
		execv(crashd_path, av);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n = read(fds[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			/* acknowledgements come in order: each must be the next number */
			if (strtoul(line, NULL, 10) != acked)
				fail_msg("ack %s out of order (expected %u)", line, acked);
			acked++;
		}
		if (!killed && (acked >= want_acks || now_s() - t0 > max_s)) {
			kill(pid, SIGKILL);
			t1 = now_s();
			killed = 1;
		}
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!killed)
		fail_msg("store_crashd ended by itself (status %d) after %u acks", status, acked);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	printf("  batch %u: %u acknowledged puts in %.2f s before SIGKILL: %.0f puts/s, "
	       "%.0f commits/s\n",
	       batch, acked, t1 - t0, acked / (t1 - t0), acked / batch / (t1 - t0));
	assert_true(acked >= 10);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, acked + batch + 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load after SIGKILL: %s", err);
	/* every acknowledged put is there; at most one unacknowledged commit more */
	if (ls.loaded[KL_TK_UE] < acked || ls.loaded[KL_TK_UE] > acked + batch)
		fail_msg("%" PRIu64 " UEs loaded, %u acknowledged (batch %u)", ls.loaded[KL_TK_UE],
			 acked, batch);
	for (uint32_t i = 0; i < acked; i++) {
		struct kl_group_ref g = {{0x00, 0xf1, 0x10}, (uint16_t)i};
		char id[40];
		uint8_t muk[32];

		snprintf(id, sizeof(id), "crash%07u@ims.example", i);
		crash_muk(i, muk);
		check_ue(t, id, muk, 32, &g, 1);
	}
	kl_table_free(t);
	kl_store_close(s);
}

static void test_crash(void **state)
{
	(void)state;
	if (!crashd_path)
		fail_msg("usage: test_store STORE_CRASHD [--stress]");
	crash_run(1, 2000, 2.0);
	crash_run(100, 20000, 2.0);
}

/* ---- 5. figures --------------------------------------------------------------------------------- */

static void put_rate(const char *dir, unsigned n, unsigned batch, double *rate, double *bpu)
{
	struct kl_store *s = open_store(dir, kek_a, 1);
	struct kl_store_stats ss;
	char id[64];
	uint8_t muk[32];
	double t0 = now_s();

	for (unsigned i = 0; i < n; i += batch) {
		if (batch > 1)
			assert_int_equal(kl_store_txn_begin(s), 0);
		for (unsigned j = i; j < i + batch && j < n; j++) {
			struct kl_group_ref g[2] = {{{0x00, 0xf1, 0x10}, (uint16_t)j},
						    {{0x00, 0xf1, 0x10}, (uint16_t)(j + 1)}};

			snprintf(id, sizeof(id), "ue%07u@ims.mnc001.mcc001.3gppnetwork.org", j);
			memcpy(muk, &j, sizeof(j));
			memset(muk + 4, 0x5c, sizeof(muk) - 4);
			if (kl_store_put_ue(s, (const uint8_t *)id, (uint16_t)strlen(id), muk, 32, g, 2))
				fail_msg("put %u: %s", j, kl_store_last_error(s));
		}
		if (batch > 1)
			assert_int_equal(kl_store_txn_commit(s), 0);
	}
	*rate = n / (now_s() - t0);
	assert_int_equal(kl_store_stats(s, &ss), 0);
	assert_int_equal(ss.entries[KL_TK_UE], n);
	*bpu = ss.bytes_per_ue;
	kl_store_close(s);
}

static void test_rates(void **state)
{
	char dir[PATH_MAX];
	double single, batched, bpu;

	(void)state;
	new_dir(dir, sizeof(dir));
	put_rate(dir, 300, 1, &single, &bpu);
	new_dir(dir, sizeof(dir));
	put_rate(dir, 20000, 1000, &batched, &bpu);
	printf("  puts/s: %.0f single-commit (fsync each), %.0f batched (1000 per commit); "
	       "%.1f bytes per UE in the ue database\n",
	       single, batched, bpu);
	assert_true(single > 0 && batched > single);
}

/* 1 M UEs: batched put rate, close, reopen, load time into a real table, bytes on disk. */
static uint32_t big_ues = 1000000u;

static void test_million(void **state)
{
	char dir[PATH_MAX], err[512];
	double rate, bpu, t0, t1;
	struct kl_store_load_stats ls;
	struct kl_store_stats ss;
	struct kl_table_params p = {
		.name = "big", .max_ues = big_ues, .max_groups = 64, .max_emses = 64,
		.max_imsis = 64, .max_appids = 64, .max_readers = 1, .socket_id = -1,
	};
	struct kl_store *s;
	struct kl_table *t;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	put_rate(dir, big_ues, 1000, &rate, &bpu);
	t0 = now_s();
	s = open_store(dir, kek_a, 0);
	t1 = now_s();
	t = kl_table_create(&p);
	assert_non_null(t);
	rc = kl_store_load(s, t, &ls, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], big_ues);
	assert_int_equal(kl_table_count(t, KL_TK_UE), big_ues);
	assert_int_equal(kl_store_stats(s, &ss), 0);
	printf("store: %u UEs: %.0f puts/s batched (1000 per commit); open %.3f s; load %.2f s "
	       "(%.0f UEs/s); data.mdb %" PRIu64 " bytes (%.1f per UE), ue database %.1f bytes "
	       "per UE\n",
	       big_ues, rate, t1 - t0, ls.seconds, big_ues / ls.seconds, ss.file_bytes,
	       (double)ss.file_bytes / big_ues, ss.bytes_per_ue);
	{
		uint8_t muk[32];
		char id[64];
		uint32_t i = big_ues / 3;
		struct kl_group_ref g[2] = {{{0x00, 0xf1, 0x10}, (uint16_t)i},
					    {{0x00, 0xf1, 0x10}, (uint16_t)(i + 1)}};

		snprintf(id, sizeof(id), "ue%07u@ims.mnc001.mcc001.3gppnetwork.org", i);
		memcpy(muk, &i, sizeof(i));
		memset(muk + 4, 0x5c, sizeof(muk) - 4);
		check_ue(t, id, muk, 32, g, 2);
	}
	kl_table_free(t);
	kl_store_close(s);
}

/* ---- main ---------------------------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- MUK expiry ------------------------------------------------------------------------------- */

/* meta_len of a stored UE record (bytes 2..3 of the value, little-endian). */
static unsigned raw_ue_meta_len(const char *dir, const char *id)
{
	struct raw r;
	MDB_val k = {strlen(id), (void *)id}, v;
	unsigned n;

	raw_open(&r, dir, "ue");
	assert_int_equal(mdb_get(r.txn, r.dbi, &k, &v), 0);
	assert_true(v.mv_size > 6);
	n = (unsigned)((const uint8_t *)v.mv_data)[2] | (unsigned)((const uint8_t *)v.mv_data)[3] << 8;
	raw_close(&r);
	return n;
}

static uint64_t store_expiry(struct kl_store *s, const char *id)
{
	uint64_t e = 77;

	assert_int_equal(kl_store_get_ue(s, (const uint8_t *)id, (uint16_t)strlen(id), NULL, NULL,
					 &e),
			 0);
	return e;
}

static uint64_t table_expiry(struct kl_table *t, const char *id)
{
	uint64_t e = 77;

	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)id, (uint16_t)strlen(id), &e), 0);
	return e;
}

static void test_ue_expiry(void **state)
{
	const uint64_t exp = (uint64_t)3900000000u << 32, exp2 = (uint64_t)3900001234u << 32;
	struct kl_group_ref g[KL_TABLE_UE_GROUPS];
	char dir[PATH_MAX], dir2[PATH_MAX], err[512];
	uint8_t m1[32], m2[64], m3[16];
	struct kl_store_load_stats ls;
	struct kl_store *s;
	struct kl_table *t;
	unsigned ng = 9;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	fill(m1, sizeof(m1), 0x41);
	fill(m2, sizeof(m2), 0x42);
	fill(m3, sizeof(m3), 0x43);
	s = open_store(dir, kek_a, 1);
	/* never expires: written in the layout every store had before the expiry (1 + 5n) */
	PUT_UE(s, "old@ims", m1, 32, G4, 2);
	assert_int_equal(kl_store_put_ue_exp(s, (const uint8_t *)"new@ims", 7, m2, 64, G4, 3, exp),
			 0);
	assert_int_equal(kl_store_put_ue_exp(s, (const uint8_t *)"zero@ims", 8, m3, 16, NULL, 0, 0),
			 0);
	assert_int_equal(kl_store_put_ue_exp(s, (const uint8_t *)"x", 1, m3, 0, NULL, 0, exp),
			 -EINVAL);
	assert_true(store_expiry(s, "old@ims") == 0);
	assert_true(store_expiry(s, "new@ims") == exp);
	assert_true(store_expiry(s, "zero@ims") == 0);
	assert_int_equal(kl_store_get_ue(s, (const uint8_t *)"nobody", 6, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(kl_store_get_ue(s, (const uint8_t *)"new@ims", 7, g, &ng, NULL), 0);
	assert_int_equal(ng, 3);
	assert_int_equal(g[2].group, G4[2].group);
	expect_groups(s, "new@ims", G4, 3);
	/* set_ue_groups keeps the expiry, in and outside a batch */
	assert_int_equal(SET_G(s, "new@ims", G4 + 1, 2), 0);
	assert_true(store_expiry(s, "new@ims") == exp);
	expect_groups(s, "new@ims", G4 + 1, 2);
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_put_ue_exp(s, (const uint8_t *)"b@ims", 5, m1, 32, G4, 1, exp2),
			 0);
	assert_int_equal(SET_G(s, "b@ims", G4 + 3, 1), 0);
	assert_int_equal(SET_G(s, "old@ims", G4 + 3, 1), 0);
	assert_int_equal(kl_store_txn_commit(s), 0);
	assert_true(store_expiry(s, "b@ims") == exp2);
	assert_true(store_expiry(s, "old@ims") == 0);
	kl_store_close(s);
	assert_int_equal(raw_ue_meta_len(dir, "old@ims"), 1 + 5 * 1);
	assert_int_equal(raw_ue_meta_len(dir, "zero@ims"), 1);
	assert_int_equal(raw_ue_meta_len(dir, "new@ims"), 1 + 5 * 2 + 8);
	assert_int_equal(raw_ue_meta_len(dir, "b@ims"), 1 + 5 * 1 + 8);

	/* reopen + load: both layouts load, the expiry reaches the table */
	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], 4);
	check_ue(t, "old@ims", m1, 32, G4 + 3, 1);
	check_ue(t, "new@ims", m2, 64, G4 + 1, 2);
	check_ue(t, "zero@ims", m3, 16, NULL, 0);
	check_ue(t, "b@ims", m1, 32, G4 + 3, 1);
	assert_true(table_expiry(t, "old@ims") == 0);
	assert_true(table_expiry(t, "new@ims") == exp);
	assert_true(table_expiry(t, "zero@ims") == 0);
	assert_true(table_expiry(t, "b@ims") == exp2);
	kl_table_free(t);
	/* a new MUK brings its own lifetime: put_ue replaces the expiry with never */
	PUT_UE(s, "new@ims", m2, 64, G4, 1);
	assert_true(store_expiry(s, "new@ims") == 0);
	kl_store_close(s);
	assert_int_equal(raw_ue_meta_len(dir, "new@ims"), 1 + 5 * 1);

	/* the binding covers the expiry: one bit of it changed and the record is refused */
	new_dir(dir2, sizeof(dir2));
	s = open_store(dir2, kek_a, 1);
	assert_int_equal(kl_store_put_ue_exp(s, (const uint8_t *)"e@ims", 5, m1, 32, G4, 1, exp), 0);
	kl_store_close(s);
	raw_flip(dir2, "ue", "e@ims", 5, 6 + 1 + 5 + 4); /* a byte of the NTP seconds */
	load_fails(dir2, "ue record #1");
}

/* Per-UE services and pair keys (PROTOCOL.md section 9): a UE with other services than the
 * default keeps them in its record (meta 1 + 5n + 8 + 1), through set_ue_groups and a load; a
 * default UE keeps the layout of older stores; pair keys load with their expiry and KCV. */
static void test_services_pairs(void **state)
{
	const uint8_t hm = KL_SVC(MBMS) | KL_SVC(HM), dh = KL_SVC(DH);
	const uint64_t exp = (uint64_t)3900000000u << 32;
	char dir[PATH_MAX], err[512];
	uint8_t m1[32], pk[32], pk2[32], kcv[KL_KCV_LEN], want[KL_KCV_LEN], svc = 0;
	struct kl_store_load_stats ls;
	struct kl_store *s;
	struct kl_table *t;
	uint64_t e = 1;
	int rc;

	(void)state;
	new_dir(dir, sizeof(dir));
	fill(m1, sizeof(m1), 0x51);
	fill(pk, sizeof(pk), 0x52);
	fill(pk2, sizeof(pk2), 0x53);
	s = open_store(dir, kek_a, 1);
	assert_int_equal(kl_store_put_ue_svc(s, (const uint8_t *)"hm@ims", 6, m1, 32, G4, 1, 0, hm), 0);
	assert_int_equal(kl_store_put_ue_svc(s, (const uint8_t *)"dh@ims", 6, m1, 32, NULL, 0, exp, dh),
			 0);
	assert_int_equal(kl_store_put_ue_svc(s, (const uint8_t *)"mb@ims", 6, m1, 32, G4, 2, 0,
					     KL_SVC_DEFAULT), 0);
	assert_int_equal(kl_store_put_ue_svc(s, (const uint8_t *)"x", 1, m1, 32, NULL, 0, 0, 0), -EINVAL);
	assert_int_equal(kl_store_put_ue_svc(s, (const uint8_t *)"x", 1, m1, 32, NULL, 0, 0, 0x80),
			 -EINVAL);
	assert_int_equal(SET_G(s, "hm@ims", G4 + 1, 2), 0);
	assert_int_equal(kl_store_put_pair(s, (const uint8_t *)"vlr-b.example", 13, pk, 32, exp), 0);
	assert_int_equal(kl_store_put_pair(s, (const uint8_t *)"vlr-c.example", 13, pk2, 32, 0), 0);
	assert_int_equal(kl_store_put_pair(s, (const uint8_t *)"vlr-c.example", 13, pk, 0, 0), -EINVAL);
	kl_store_close(s);
	assert_int_equal(raw_ue_meta_len(dir, "hm@ims"), 1 + 5 * 2 + 8 + 1);
	assert_int_equal(raw_ue_meta_len(dir, "dh@ims"), 1 + 8 + 1);
	assert_int_equal(raw_ue_meta_len(dir, "mb@ims"), 1 + 5 * 2);

	s = open_store(dir, kek_a, 0);
	t = load_fresh(s, 16, 4, &ls, &rc, err, sizeof(err));
	if (rc)
		fail_msg("load: %s", err);
	assert_int_equal(ls.loaded[KL_TK_UE], 3);
	assert_int_equal(ls.loaded[KL_TK_PAIR], 2);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"hm@ims", 6, &svc), 0);
	assert_int_equal(svc, hm);
	check_ue(t, "hm@ims", m1, 32, G4 + 1, 2);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"dh@ims", 6, &svc), 0);
	assert_int_equal(svc, dh);
	assert_true(table_expiry(t, "dh@ims") == exp);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"mb@ims", 6, &svc), 0);
	assert_int_equal(svc, KL_SVC_DEFAULT);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)"vlr-b.example", 13, &e, kcv), 0);
	assert_true(e == exp);
	kcv_of(pk, 32, want);
	assert_memory_equal(kcv, want, KL_KCV_LEN);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)"vlr-c.example", 13, &e, kcv), 0);
	assert_true(e == 0);
	kcv_of(pk2, 32, want);
	assert_memory_equal(kcv, want, KL_KCV_LEN);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)"vlr-d.example", 13, &e, kcv), -ENOENT);
	kl_table_free(t);
	kl_store_close(s);
	/* the services byte is bound like the rest of the metadata */
	raw_flip(dir, "ue", "hm@ims", 6, 6 + 1 + 10 + 8);
	load_fails(dir, "ue record #2 of 3: it does not belong to its key");
}

/* ---- the NAF Key Center's records (kl_store_naf_*) ------------------------------------------------ */

static void mk_naf(struct kl_store_naf *n, const char *btid, const char *dev)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->btid, sizeof(n->btid), "%s", btid);
	snprintf(n->device_id, sizeof(n->device_id), "%s", dev);
	memcpy(n->naf_id, "naf.example\x01\x00\x00\x01\x00", 16);
	n->naf_len = 16;
	n->issued = 1800000000;
	n->expiry = 1800003600;
}

static int count_naf(void *arg, const struct kl_store_naf *n)
{
	(void)n;
	++*(unsigned *)arg;
	return 0;
}

static int count_block(void *arg, enum kl_store_naf_block_kind kind, const char *v, uint64_t t)
{
	char *out = arg;

	assert_int_equal(t, 77);
	snprintf(out + strlen(out), 64, "%c:%s;", (char)kind, v);
	return 0;
}

/* The LMDB key of the first record of db. */
static size_t raw_first(const char *dir, const char *db, uint8_t *key)
{
	struct raw r;
	MDB_cursor *c;
	MDB_val k, v;

	raw_open(&r, dir, db);
	assert_int_equal(mdb_cursor_open(r.txn, r.dbi, &c), 0);
	assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
	memcpy(key, k.mv_data, k.mv_size);
	mdb_cursor_close(c);
	raw_close(&r);
	return k.mv_size;
}

static void test_naf_records(void **state)
{
	struct kl_store_naf a, b, got;
	uint8_t key[32], out[32], kcv[KL_KCV_LEN], lk[64];
	char dir[PATH_MAX], err[256], bl[256] = "";
	struct kl_store *s;
	unsigned n = 0;
	uint64_t nk, nb;
	size_t lkl;

	(void)state;
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	fill(key, 32, 0x61);
	kcv_of(key, 32, kcv);
	mk_naf(&a, "AAAA@bsf.example", "device 1");
	mk_naf(&b, "BBBB@bsf.example", "device 1");
	memcpy(b.kcv, "\x01\x02\x03", 3);
	b.invalidated = 1;
	assert_int_equal(kl_store_naf_put(s, &a, key), 0);
	assert_int_equal(kl_store_naf_put(s, &b, NULL), 0);
	/* refusals: the identity checked as the index checks it; key and flag agree */
	got = a;
	got.btid[0] = '\0';
	assert_int_equal(kl_store_naf_put(s, &got, key), -EINVAL);
	got = a;
	got.btid[2] = ' ';
	assert_int_equal(kl_store_naf_put(s, &got, key), -EINVAL);
	got = a;
	got.naf_len = 0;
	assert_int_equal(kl_store_naf_put(s, &got, key), -EINVAL);
	assert_int_equal(kl_store_naf_put(s, &a, NULL), -EINVAL);
	assert_int_equal(kl_store_naf_put(s, &b, key), -EINVAL);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_DEVICE, "device 9", 1, 77), 0);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_SERIAL, "1f", 1, 77), 0);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_SERIAL, "1f", 1, 99), 0); /* kept */
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_SERIAL, "01f", 1, 77), -EINVAL);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_SERIAL, "1F", 1, 77), -EINVAL);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_DEVICE, "", 1, 77), -EINVAL);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_DEVICE, "device 8", 0, 77), -ENOENT);
	kl_store_close(s);

	s = open_store(dir, kek_a, 0);
	got = a;
	assert_int_equal(kl_store_naf_get(s, &got, out), 0);
	assert_memory_equal(out, key, 32);
	assert_memory_equal(got.kcv, kcv, KL_KCV_LEN);
	assert_int_equal(got.expiry, 1800003600);
	assert_int_equal(got.invalidated, 0);
	got = b;
	got.invalidated = 0;
	assert_int_equal(kl_store_naf_get(s, &got, out), 0);
	assert_int_equal(got.invalidated, 1);
	assert_memory_equal(got.kcv, "\x01\x02\x03", 3);
	for (unsigned i = 0; i < 32; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(kl_store_naf_each(s, count_naf, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(kl_store_naf_each_blocked(s, count_block, bl, err, sizeof(err)), 0);
	assert_string_equal(bl, "d:device 9;s:1f;");
	assert_int_equal(kl_store_naf_count(s, &nk, &nb), 0);
	assert_int_equal(nk, 2);
	assert_int_equal(nb, 2);
	/* a batch: staged, then committed together */
	assert_int_equal(kl_store_txn_begin(s), 0);
	assert_int_equal(kl_store_naf_del(s, &a), 0);
	assert_int_equal(kl_store_naf_del(s, &a), -ENOENT);
	assert_int_equal(kl_store_naf_block(s, KL_STORE_NAF_SERIAL, "1f", 0, 0), 0);
	got = a;
	assert_int_equal(kl_store_naf_get(s, &got, out), -ENOENT);
	kl_store_txn_abort(s);
	got = a;
	assert_int_equal(kl_store_naf_get(s, &got, out), 0);
	kl_store_close(s);

	/* an altered record: refused by get and by the walk, never a wrong answer */
	lkl = raw_first(dir, "naf", lk);
	assert_int_equal(lkl, 32);
	raw_flip(dir, "naf", lk, lkl, 6 + 10); /* its expiry */
	s = open_store(dir, kek_a, 0);
	n = 0;
	assert_int_equal(kl_store_naf_each(s, count_naf, &n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "NAF key record 1 is corrupt"));
	kl_store_close(s);
	raw_flip(dir, "naf", lk, lkl, 6 + 10);
	/* a record moved to another identity's key */
	s = open_store(dir, kek_a, 0);
	mk_naf(&got, "CCCC@bsf.example", "device 1");
	assert_int_equal(kl_store_naf_put(s, &got, key), 0);
	kl_store_close(s);
	{
		struct raw r;
		MDB_cursor *c;
		MDB_val k, v;
		uint8_t k1[32], k2[32];

		raw_open(&r, dir, "naf");
		assert_int_equal(mdb_cursor_open(r.txn, r.dbi, &c), 0);
		assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
		memcpy(k1, k.mv_data, 32);
		assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_NEXT), 0);
		memcpy(k2, k.mv_data, 32);
		mdb_cursor_close(c);
		raw_close(&r);
		raw_copy(dir, "naf", k1, 32, k2, 32);
	}
	s = open_store(dir, kek_a, 0);
	n = 0;
	assert_int_equal(kl_store_naf_each(s, count_naf, &n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "does not belong to its key"));
	kl_store_close(s);
}

/* A store written before the NAF databases existed opens, gets them empty, and keeps the rest;
 * a batch of many deletes (the expiry purge) leaves a store that opens again. */
static void test_naf_old_store(void **state)
{
	struct kl_store_params p = { .create_if_missing = 0, .verify = 1 };
	struct kl_store_naf n;
	struct kl_table *t;
	char dir[PATH_MAX], err[512];
	struct kl_store *s;
	uint8_t muk[32], key[32];
	uint64_t nk = 9;
	struct raw r;

	(void)state;
	new_dir(dir, sizeof(dir));
	s = open_store(dir, kek_a, 1);
	fill(muk, 32, 3);
	fill(key, 32, 4);
	assert_int_equal(kl_store_put_ue(s, (const uint8_t *)"old@ue", 6, muk, 32, NULL, 0), 0);
	kl_store_close(s);
	/* what the previous version wrote: no "naf", no "nafblock" */
	raw_open(&r, dir, "naf");
	assert_int_equal(mdb_drop(r.txn, r.dbi, 1), 0);
	assert_int_equal(mdb_dbi_open(r.txn, "nafblock", 0, &r.dbi), 0);
	assert_int_equal(mdb_drop(r.txn, r.dbi, 1), 0);
	raw_close(&r);
	p.path = dir;
	p.kek_file = kek_a;
	s = kl_store_open(&p, err, sizeof(err));
	if (!s)
		fail_msg("old store: %s", err);
	assert_int_equal(kl_store_naf_count(s, &nk, NULL), 0);
	assert_int_equal(nk, 0);
	{
		struct kl_store_load_stats ls;
		int lrc = -1;

		t = load_fresh(s, 16, 4, &ls, &lrc, err, sizeof(err));
		assert_int_equal(lrc, 0);
	}
	check_ue(t, "old@ue", muk, 32, NULL, 0);
	kl_table_free(t);
	/* many keys (batches of 500), then all deleted in one batch */
	for (unsigned i = 0; i < 3000; i++) {
		char btid[200];

		if (i % 500 == 0)
			assert_int_equal(kl_store_txn_begin(s), 0);
		snprintf(btid, sizeof(btid), "B%05u-%0120u@bsf", i, i);
		mk_naf(&n, btid, "d");
		assert_int_equal(kl_store_naf_put(s, &n, key), 0);
		if (i % 500 == 499)
			assert_int_equal(kl_store_txn_commit(s), 0);
	}
	assert_int_equal(kl_store_txn_begin(s), 0);
	for (unsigned i = 0; i < 3000; i++) {
		char btid[200];

		snprintf(btid, sizeof(btid), "B%05u-%0120u@bsf", i, i);
		mk_naf(&n, btid, "d");
		assert_int_equal(kl_store_naf_del(s, &n), 0);
	}
	assert_int_equal(kl_store_txn_commit(s), 0);
	kl_store_close(s);
	s = open_store(dir, kek_a, 0);
	assert_int_equal(kl_store_naf_count(s, &nk, NULL), 0);
	assert_int_equal(nk, 0);
	kl_store_close(s);
}

int main(int argc, char **argv)
{
	char prefix[64], mem[16], *eal[] = {
		argv[0], "--no-huge", "--no-shconf", "-m", mem, "--no-pci", "--no-telemetry",
		"--file-prefix", prefix, "-l", "0", "--log-level=error",
	};
	const char *env = getenv("KL_STORE_STRESS"), *tmp = getenv("TMPDIR"),
		   *ues = getenv("KL_STORE_UES");
	int stress = env && env[0] == '1', rc;
	uint8_t a[32], b[32];
	char hex[66];
	const struct CMUnitTest fast[] = {
		cmocka_unit_test(test_kwp_vectors),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_kwp_impls),
		cmocka_unit_test(test_replace_delete_persist),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_set_ue_groups),
		cmocka_unit_test(test_del_e2m_key),
		cmocka_unit_test(test_get_group),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_kek_file),
		cmocka_unit_test(test_wrong_kek),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_damaged_file),
		cmocka_unit_test(test_in_use),
		cmocka_unit_test(test_altered_record),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_ue_expiry),
		cmocka_unit_test(test_services_pairs),
		cmocka_unit_test(test_naf_records),
		cmocka_unit_test(test_naf_old_store),
	};
	const struct CMUnitTest big[] = {
		cmocka_unit_test(test_million),
	};

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--stress"))
			stress = 1;
		else
			crashd_path = argv[i];
	}
	if (ues && strtoul(ues, NULL, 10) >= 1000 && strtoul(ues, NULL, 10) <= 20000000)
		big_ues = (uint32_t)strtoul(ues, NULL, 10);
	snprintf(mem, sizeof(mem), "%u", stress ? big_ues / 1000000u * 400u + 600u : 256u);
	snprintf(prefix, sizeof(prefix), "kl_store_test_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!tmp || !tmp[0] || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/kl_store_test.XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	/* KEK A raw, KEK B as hex digits */
	for (unsigned i = 0; i < 32; i++) {
		a[i] = (uint8_t)(0xa0 + i * 5);
		b[i] = (uint8_t)(0x0b + i * 9);
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	}
	snprintf(kek_a, sizeof(kek_a), "%s/kek-a", base);
	snprintf(kek_b, sizeof(kek_b), "%s/kek-b", base);
	{
		int fa = open(kek_a, O_WRONLY | O_CREAT | O_EXCL, 0600),
		    fb = open(kek_b, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fa < 0 || fb < 0 || write(fa, a, 32) != 32 || write(fb, hex, 64) != 64) {
			perror("KEK files");
			return 1;
		}
		close(fa);
		close(fb);
	}
	rc = stress ? cmocka_run_group_tests_name("store-stress", big, NULL, NULL)
		    : cmocka_run_group_tests_name("store", fast, NULL, NULL);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rte_eal_cleanup();
	return rc;
}
