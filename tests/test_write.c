/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The durable write library (control/store/kl_write.h) with a real store and a real key table: store
 * first, then the table, for every kind; a store failure leaves the table untouched; a table
 * refusal undoes the store write (a new entry deleted, a UE's groups/services put back) or says
 * that it could not (a replaced key); batches (staged, committed, aborted); changes and deletes
 * of entries the store does not hold; the table alone without a store; error texts name the
 * kind by kl_table_kind_name.
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

#include "kl_eal_rundir.h"
#include "kl_test_store.h"
#include "kl_write.h"

static char base[256], kek[300];
static unsigned seq;

static struct kl_table *mk_table(uint32_t max, uint32_t max_2chunk)
{
	struct kl_table_params p = {
		.max_ues = max, .max_groups = max, .max_emses = max, .max_imsis = max,
		.max_appids = max, .max_pairs = max, .e2m_ring = 4, .max_readers = 1,
		.socket_id = -1, .max_ues_2chunk = max_2chunk,
	};

	return kl_test_table(&p, "wr", &seq);
}

struct fx {
	char dir[300];
	struct kl_table *t;
	struct kl_store *s;
	struct kl_writer wr;
};

static void fx_init(struct fx *f, uint32_t max, uint32_t max_2chunk, uint64_t map_size)
{
	snprintf(f->dir, sizeof(f->dir), "%s/s%u", base, seq++);
	f->t = mk_table(max, max_2chunk);
	f->s = kl_test_store(f->dir, kek, map_size);
	f->wr = (struct kl_writer){ .table = f->t, .store = f->s, .e2m_ring = 4 };
}

static void fx_done(struct fx *f)
{
	kl_store_close(f->s);
	kl_table_free(f->t);
}

static const void *get1(struct kl_table *t, enum kl_table_kind kind, const void *id, size_t len)
{
	struct kl_table_key k = { .id = id, .len = (uint16_t)len };
	const void *out = NULL;

	kl_table_lookup_bulk(t, kind, &k, 1, &out);
	return out;
}

/* What the store holds: loaded into a fresh table. */
static struct kl_table *reload(struct fx *f)
{
	struct kl_table *t = mk_table(64, 0);
	struct kl_store_load_stats st;
	char err[256];

	if (kl_store_load(f->s, t, &st, err, sizeof(err)))
		fail_msg("load: %s", err);
	return t;
}

static const uint8_t K32[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t K64[64] = { 7 };
static const struct kl_group_ref G1 = { .domain = { 0x00, 0xf1, 0x10 }, .group = 1 },
				  G2 = { .domain = { 0x00, 0xf1, 0x10 }, .group = 2 };

#define ID(s) (const uint8_t *)(s), (uint16_t)strlen(s)

static int put_ue(struct fx *f, const char *id, const uint8_t *muk, unsigned len, uint8_t svc,
		  struct kl_write_result *res)
{
	struct kl_write w;

	assert_int_equal(kl_write_ue(&w, ID(id), muk, len, &G1, 1, 0, svc), 0);
	return kl_write_do(&f->wr, &w, res);
}

/* Every kind through one call: in the table at once, in the store (a fresh load) too. */
static void test_every_kind(void **state)
{
	struct kl_write_result res;
	struct kl_write w;
	struct kl_group g;
	struct kl_table *t2;
	struct fx f;
	uint8_t svc = 0;
	uint64_t exp = 0;

	(void)state;
	fx_init(&f, 64, 0, 0);
	assert_int_equal(put_ue(&f, "ue@a", K32, 32, KL_SVC(MBMS) | KL_SVC(HM), &res), 0);
	assert_int_equal(res.where, KL_WR_OK);
	assert_string_equal(res.msg, "");
	assert_int_equal(put_ue(&f, "ue@a", K32, 32, KL_SVC(MBMS) | KL_SVC(HM), &res), 1);
	memset(&g, 0, sizeof(g));
	memcpy(g.current.key, K32, 16);
	g.current.msk_id = 1u << 16 | 1;
	g.current.valid_to = 1ull << 40;
	assert_int_equal(kl_write_group(&w, &G1, &g), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_emse(&w, ID("emse-1"), K64, 64), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_e2m(&w, "001010000000001", K32, 7, 0), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_e2m(&w, "001010000000001", K32, 8, 0), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_appid(&w, ID("app-1"), "001010000000001"), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_pair(&w, ID("vlr-1.example"), K32, 32, 5ull << 32), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_ue_groups(&w, ID("ue@a"), (struct kl_group_ref[]){ G1, G2 }, 2),
			 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 1);
	assert_int_equal(kl_write_ue_services(&w, ID("ue@a"), KL_SVC_ALL), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 1);
	assert_int_equal(kl_write_e2m_del_key(&w, "001010000000001", 7), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	kl_write_wipe(&w);
	for (size_t i = 0; i < sizeof(w); i++)
		assert_int_equal(((const uint8_t *)&w)[i], 0);
	t2 = reload(&f);
	for (unsigned k = 0; k < KL_TK__COUNT; k++)
		assert_int_equal(kl_table_count(t2, (enum kl_table_kind)k),
				 kl_table_count(f.t, (enum kl_table_kind)k));
	assert_int_equal(kl_table_count(t2, KL_TK_PAIR), 1);
	assert_int_equal(kl_table_get_ue_services(t2, ID("ue@a"), &svc), 0);
	assert_int_equal(svc, KL_SVC_ALL);
	{
		struct kl_group_ref gr[KL_TABLE_UE_GROUPS];
		unsigned n = 0;

		assert_int_equal(kl_table_get_ue(t2, ID("ue@a"), gr, &n, NULL), 0);
		assert_int_equal(n, 2);
	}
	assert_int_equal(kl_table_get_pair(t2, ID("vlr-1.example"), &exp, NULL), 0);
	assert_true(exp == 5ull << 32);
	assert_int_equal(((const struct kl_e2m *)get1(t2, KL_TK_E2M, "001010000000001", 15))->n,
			 1);
	kl_table_free(t2);
	/* deletes of every kind, store first */
	assert_int_equal(kl_write_del(&w, KL_TK_PAIR, ID("vlr-1.example")), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_del(&w, KL_TK_EMSE, ID("emse-1")), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_del(&w, KL_TK_PAIR, ID("vlr-1.example")), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -ENOENT);
	assert_string_equal(res.msg, "no such pair entry");
	t2 = reload(&f);
	assert_int_equal(kl_table_count(t2, KL_TK_PAIR), 0);
	assert_int_equal(kl_table_count(t2, KL_TK_EMSE), 0);
	assert_int_equal(kl_table_count(f.t, KL_TK_PAIR), 0);
	kl_table_free(t2);
	fx_done(&f);
}

/* The store refuses (a batch spoiled by a full map): the table is untouched. */
static void test_store_failure(void **state)
{
	struct kl_write_result res;
	struct kl_write w;
	struct fx f;
	char id[32];
	int rc = 0;

	(void)state;
	fx_init(&f, 4096, 0, 256u << 10);
	assert_int_equal(kl_store_txn_begin(f.s), 0);
	for (unsigned i = 0; i < 4000 && rc == 0; i++) {
		snprintf(id, sizeof(id), "filler-%u", i);
		rc = kl_store_put_emse(f.s, ID(id), K64, 64);
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(put_ue(&f, "ue@b", K32, 32, 0, &res), -ECANCELED);
	assert_int_equal(res.where, KL_WR_STORE);
	assert_non_null(strstr(res.msg, "store: ue entry not stored"));
	assert_null(get1(f.t, KL_TK_UE, "ue@b", 4));
	assert_int_equal(kl_write_pair(&w, ID("vlr-2"), K32, 32, 0), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -ECANCELED);
	assert_non_null(strstr(res.msg, "store: pair entry not stored"));
	assert_int_equal(kl_table_count(f.t, KL_TK_PAIR), 0);
	kl_store_txn_abort(f.s);
	/* a full map outside a batch: the same */
	rc = 0;
	for (unsigned i = 0; i < 4000 && rc != -ENOSPC; i++) {
		snprintf(id, sizeof(id), "filler-%u", i);
		assert_int_equal(kl_write_emse(&w, ID(id), K64, 64), 0);
		rc = kl_write_do(&f.wr, &w, &res);
	}
	assert_int_equal(rc, -ENOSPC);
	if (!strstr(res.msg, "store: full for emse (map_size reached"))
		fail_msg("%s", res.msg);
	assert_null(get1(f.t, KL_TK_EMSE, id, strlen(id)));
	fx_done(&f);
}

/* The table refuses: a new entry leaves the store again; a UE's replaced key cannot be taken
 * back and the note says so. */
static void test_table_refusal(void **state)
{
	struct kl_write_result res;
	struct kl_write w;
	struct kl_table *t2;
	struct fx f;

	(void)state;
	fx_init(&f, 2, 1, 0); /* 2 of each kind; one UE with a 2-chunk MUK */
	for (unsigned i = 0; i < 2; i++) {
		char peer[16];

		snprintf(peer, sizeof(peer), "vlr-%u", i);
		assert_int_equal(kl_write_pair(&w, ID(peer), K32, 32, 0), 0);
		assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	}
	assert_int_equal(kl_write_pair(&w, ID("vlr-2"), K32, 32, 0), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -ENOSPC);
	assert_int_equal(res.where, KL_WR_TABLE);
	assert_string_equal(res.msg, "table full for pairs");
	assert_int_equal(res.undone, 1);
	assert_non_null(strstr(res.note, "undone in the store"));
	/* the store no longer holds it */
	assert_int_equal(kl_store_del(f.s, KL_TK_PAIR, ID("vlr-2")), -ENOENT);
	/* a replacement needing the scarcer 2-chunk slot: the stored MUK stays, said so */
	assert_int_equal(put_ue(&f, "ue@long", K64, 64, 0, &res), 0);
	assert_int_equal(put_ue(&f, "ue@short", K32, 32, 0, &res), 0);
	assert_int_equal(put_ue(&f, "ue@short", K64, 64, 0, &res), -ENOSPC);
	assert_int_equal(res.undone, 0);
	assert_non_null(strstr(res.note, "takes effect at the next start"));
	assert_non_null(strstr(res.note, "the ue change"));
	/* a new UE refused by the table is taken out again */
	assert_int_equal(put_ue(&f, "ue@third", K32, 32, 0, &res), -ENOSPC);
	assert_string_equal(res.msg, "table full for ues");
	assert_int_equal(res.undone, 1);
	t2 = reload(&f);
	assert_null(get1(t2, KL_TK_UE, "ue@third", 8));
	assert_int_equal(kl_table_count(t2, KL_TK_PAIR), 2);
	kl_table_free(t2);
	/* an entry the store held before (the table did not): a refused put leaves it stored */
	assert_int_equal(kl_store_put_pair(f.s, ID("vlr-9"), K32, 32, 0), 0);
	assert_int_equal(kl_write_pair(&w, ID("vlr-9"), K64, 32, 0), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -ENOSPC);
	assert_int_equal(res.undone, 0);
	assert_int_equal(kl_store_del(f.s, KL_TK_PAIR, ID("vlr-9")), 0);
	fx_done(&f);
}

/* Inside a batch: staged, the table untouched until apply; abort leaves nothing stored. */
static void test_batch(void **state)
{
	struct kl_write_result res;
	struct kl_write w, w2;
	struct kl_table *t2;
	struct fx f;

	(void)state;
	fx_init(&f, 16, 0, 0);
	assert_int_equal(kl_store_txn_begin(f.s), 0);
	assert_int_equal(kl_write_pair(&w, ID("vlr-a"), K32, 32, 0), 0);
	assert_int_equal(kl_write_stage(&f.wr, &w, &res), 0);
	assert_int_equal(w.stored, 1);
	assert_int_equal(w.existed, 0);
	assert_int_equal(kl_table_count(f.t, KL_TK_PAIR), 0); /* not applied yet */
	assert_int_equal(kl_write_emse(&w2, ID("emse-a"), K32, 32), 0);
	assert_int_equal(kl_write_stage(&f.wr, &w2, &res), 0);
	assert_int_equal(kl_store_txn_commit(f.s), 0);
	assert_int_equal(kl_write_apply(&f.wr, &w, &res), 0);
	assert_int_equal(kl_write_apply(&f.wr, &w2, &res), 0);
	kl_write_wipe(&w);
	kl_write_wipe(&w2);
	assert_int_equal(kl_table_count(f.t, KL_TK_PAIR), 1);
	/* aborted: nothing stored */
	assert_int_equal(kl_store_txn_begin(f.s), 0);
	assert_int_equal(kl_write_pair(&w, ID("vlr-b"), K32, 32, 0), 0);
	assert_int_equal(kl_write_stage(&f.wr, &w, &res), 0);
	kl_store_txn_abort(f.s);
	kl_write_wipe(&w);
	t2 = reload(&f);
	assert_int_equal(kl_table_count(t2, KL_TK_PAIR), 1);
	assert_int_equal(kl_table_count(t2, KL_TK_EMSE), 1);
	assert_non_null(get1(t2, KL_TK_PAIR, "vlr-a", 5));
	kl_table_free(t2);
	fx_done(&f);
}

/* Entries the store does not hold (a test population's): changed and deleted in the table;
 * without a store, the table alone. */
static void test_table_only(void **state)
{
	struct kl_write_result res;
	struct kl_writer nostore;
	struct kl_write w;
	struct fx f;
	uint8_t svc = 0;

	(void)state;
	fx_init(&f, 16, 0, 0);
	assert_int_equal(kl_table_put_ue(f.t, ID("pop@x"), K32, 32, &G1, 1), 0);
	assert_int_equal(kl_write_ue_services(&w, ID("pop@x"), KL_SVC(HM)), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 1);
	assert_int_equal(kl_table_get_ue_services(f.t, ID("pop@x"), &svc), 0);
	assert_int_equal(svc, KL_SVC(HM));
	assert_int_equal(kl_write_ue_groups(&w, ID("pop@x"), NULL, 0), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 1);
	assert_int_equal(kl_write_del(&w, KL_TK_UE, ID("pop@x")), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	assert_null(get1(f.t, KL_TK_UE, "pop@x", 5));
	/* a change of a UE nobody holds */
	assert_int_equal(kl_write_ue_services(&w, ID("nobody"), KL_SVC(HM)), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -ENOENT);
	assert_string_equal(res.msg, "no such ue entry");
	/* a UE in the store only (the table lost it): the change is refused by the table and the
	 * stored UE is not emptied by an undo from nothing */
	assert_int_equal(kl_store_put_ue(f.s, ID("store@only"), K32, 32, &G1, 1), 0);
	assert_int_equal(kl_write_ue_groups(&w, ID("store@only"), (struct kl_group_ref[]){ G2 }, 1),
			 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -ENOENT);
	assert_int_equal(res.undone, 0);
	{
		struct kl_group_ref gr[KL_TABLE_UE_GROUPS];
		unsigned n = 0;

		assert_int_equal(kl_store_get_ue_groups(f.s, ID("store@only"), gr, &n), 0);
		assert_int_equal(n, 1);
	}
	/* bad arguments are refused by the constructors */
	assert_int_equal(kl_write_ue_services(&w, ID("x"), 0), -EINVAL);
	assert_int_equal(kl_write_pair(&w, ID("x"), K64, 65, 0), -EINVAL);
	assert_int_equal(kl_write_e2m(&w, "", K32, 1, 0), -EINVAL);
	/* no store */
	nostore = (struct kl_writer){ .table = f.t };
	assert_int_equal(kl_write_pair(&w, ID("vlr-n"), K32, 32, 0), 0);
	assert_int_equal(kl_write_do(&nostore, &w, &res), 0);
	assert_int_equal(kl_store_del(f.s, KL_TK_PAIR, ID("vlr-n")), -ENOENT);
	assert_non_null(get1(f.t, KL_TK_PAIR, "vlr-n", 5));
	fx_done(&f);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* P of a dh UE (kl_ue_dh_pub) is what kl_dh_public gives for its MUK, whichever write made it: a
 * put, a services change (a 64-byte MUK: the table alone cannot, the store's copy does it), the
 * load at start-up; a table-only UE with a long MUK is refused with a message; losing dh loses
 * P. */
static void want_pub(struct kl_table *t, const char *id, const uint8_t *muk, unsigned len)
{
	struct kl_hmac_key kx;
	uint8_t p[KL_X25519_LEN];
	const struct kl_ue *u = get1(t, KL_TK_UE, id, strlen(id));

	assert_non_null(u);
	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, muk, len, &kx), 0);
	assert_int_equal(kl_dh_public(NULL, &kx, p), 0);
	assert_non_null(kl_ue_dh_pub(u));
	assert_memory_equal(kl_ue_dh_pub(u), p, sizeof(p));
}

static void test_dh_pub(void **state)
{
	struct kl_writer tonly;
	struct kl_write_result res;
	struct kl_write w;
	struct kl_table *t2;
	struct fx f;

	(void)state;
	fx_init(&f, 64, 0, 0);
	assert_int_equal(put_ue(&f, "dh@a", K32, 32, KL_SVC(DH) | KL_SVC(PROSE), &res), 0);
	want_pub(f.t, "dh@a", K32, 32);
	assert_int_equal(put_ue(&f, "long@a", K64, 64, KL_SVC(MBMS), &res), 0);
	assert_null(kl_ue_dh_pub(get1(f.t, KL_TK_UE, "long@a", 6)));
	assert_int_equal(kl_write_ue_services(&w, ID("long@a"), KL_SVC(DH) | KL_SVC(MBMS)), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 1);
	assert_string_equal(res.msg, "");
	want_pub(f.t, "long@a", K64, 64);
	t2 = reload(&f);
	want_pub(t2, "dh@a", K32, 32);
	want_pub(t2, "long@a", K64, 64);
	kl_table_free(t2);
	/* losing dh */
	assert_int_equal(kl_write_ue_services(&w, ID("dh@a"), KL_SVC(MBMS)), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 1);
	assert_null(kl_ue_dh_pub(get1(f.t, KL_TK_UE, "dh@a", 4)));
	/* a UE the store does not hold (the table only), MUK over 32 bytes: refused, said why */
	tonly = (struct kl_writer){ .table = f.t, .e2m_ring = 4 };
	assert_int_equal(kl_table_put_ue(f.t, ID("pop@a"), K64, 64, NULL, 0), 0);
	assert_int_equal(kl_write_ue_services(&w, ID("pop@a"), KL_SVC(DH)), 0);
	assert_int_equal(kl_write_do(&tonly, &w, &res), -EOPNOTSUPP);
	assert_int_equal(res.where, KL_WR_TABLE);
	assert_non_null(strstr(res.msg, "over 32 bytes"));
	assert_null(kl_ue_dh_pub(get1(f.t, KL_TK_UE, "pop@a", 5)));
	/* the same through a writer with the store, which does not hold it */
	assert_int_equal(kl_write_ue_services(&w, ID("pop@a"), KL_SVC(DH)), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), -EOPNOTSUPP);
	fx_done(&f);
}

/* The NAF Key Center's ops: a store side only (the key table untouched; a writer without a
 * table), in and out of a batch, a store failure named as a NAF write. */
static void test_naf_ops(void **state)
{
	struct kl_store_naf n = { .btid = "B1@bsf", .device_id = "dev", .naf_len = 3,
				  .issued = 10, .expiry = 20 }, got;
	struct kl_writer wr;
	struct kl_write_result res;
	struct kl_write w;
	struct fx f;
	uint8_t key[32];
	uint64_t nk, nb;
	int rc = 0;

	(void)state;
	memcpy(n.naf_id, "naf", 3);
	fx_init(&f, 64, 0, 0);
	wr = (struct kl_writer){ .store = f.s }; /* no table */
	assert_int_equal(kl_write_naf_key(&w, &n, K32), 0);
	assert_true(kl_write_is_naf(&w));
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	assert_true(w.stored);
	/* through the writer that has the table: the table is left alone */
	assert_int_equal(kl_write_naf_key(&w, &n, K32), 0);
	assert_int_equal(kl_write_do(&f.wr, &w, &res), 0);
	for (unsigned k = 0; k < KL_TK__COUNT; k++)
		assert_int_equal(kl_table_count(f.t, (enum kl_table_kind)k), 0);
	got = n;
	assert_int_equal(kl_store_naf_get(f.s, &got, key), 0);
	assert_memory_equal(key, K32, 32);
	/* invalidate: the record without its key, its KCV kept */
	memcpy(n.kcv, got.kcv, 3);
	assert_int_equal(kl_write_naf_invalidate(&w, &n), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	got = n;
	assert_int_equal(kl_store_naf_get(f.s, &got, key), 0);
	assert_true(got.invalidated);
	assert_memory_equal(got.kcv, n.kcv, 3);
	/* blocklist, in a batch: aborted leaves nothing, committed stays */
	assert_int_equal(kl_store_txn_begin(f.s), 0);
	assert_int_equal(kl_write_naf_block(&w, KL_STORE_NAF_DEVICE, "dev", 1, 5), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	kl_store_txn_abort(f.s);
	assert_int_equal(kl_store_naf_count(f.s, &nk, &nb), 0);
	assert_int_equal(nb, 0);
	assert_int_equal(kl_store_txn_begin(f.s), 0);
	assert_int_equal(kl_write_naf_block(&w, KL_STORE_NAF_SERIAL, "ab", 1, 5), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	assert_int_equal(kl_write_naf_del(&w, &n), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	assert_int_equal(kl_store_txn_commit(f.s), 0);
	assert_int_equal(kl_store_naf_count(f.s, &nk, &nb), 0);
	assert_int_equal(nk, 0);
	assert_int_equal(nb, 1);
	assert_int_equal(kl_write_naf_block(&w, KL_STORE_NAF_SERIAL, "ab", 0, 0), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	assert_int_equal(kl_write_naf_block(&w, KL_STORE_NAF_SERIAL, "ab", 0, 0), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), -ENOENT);
	assert_int_equal(res.where, KL_WR_STORE);
	assert_non_null(strstr(res.msg, "store: NAF blocklist"));
	/* bad arguments */
	assert_int_equal(kl_write_naf_block(&w, KL_STORE_NAF_SERIAL, "0ab", 1, 0), -EINVAL);
	assert_int_equal(kl_write_naf_block(&w, (enum kl_store_naf_block_kind)'x', "ab", 1, 0),
			 -EINVAL);
	got = n;
	got.device_id[0] = '\0';
	assert_int_equal(kl_write_naf_key(&w, &got, K32), -EINVAL);
	assert_int_equal(kl_write_naf_key(&w, &n, NULL), -EINVAL);
	assert_int_equal(kl_write_naf_del(&w, &got), -EINVAL);
	/* without a store: nothing to do, nothing refused */
	wr.store = NULL;
	assert_int_equal(kl_write_naf_key(&w, &n, K32), 0);
	assert_int_equal(kl_write_do(&wr, &w, &res), 0);
	assert_false(w.stored);
	kl_write_wipe(&w);
	fx_done(&f);

	/* a full store: refused, the message names the NAF key */
	fx_init(&f, 64, 0, 128u << 10);
	wr = (struct kl_writer){ .store = f.s };
	for (unsigned i = 0; i < 5000 && !rc; i++) {
		snprintf(n.btid, sizeof(n.btid), "B%u-%0200u@bsf", i, i);
		assert_int_equal(kl_write_naf_key(&w, &n, K32), 0);
		rc = kl_write_do(&wr, &w, &res);
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(res.where, KL_WR_STORE);
	assert_non_null(strstr(res.msg, "store: NAF key"));
	assert_non_null(strstr(res.msg, "full"));
	got = n;
	assert_int_equal(kl_store_naf_get(f.s, &got, key), -ENOENT);
	fx_done(&f);
}

int main(void)
{
	char prefix[64], *eal[] = {
		"test_write", "--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--no-telemetry",
		"--file-prefix", prefix, "-l", "0", "--log-level=error",
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),   cmocka_unit_test(test_store_failure),
		cmocka_unit_test(test_table_refusal), cmocka_unit_test(test_batch),
		cmocka_unit_test(test_table_only),   cmocka_unit_test(test_dh_pub),
		cmocka_unit_test(test_naf_ops),
	};
	const char *tmp = getenv("TMPDIR");
	uint8_t k[32];
	int rc, fd;

	snprintf(prefix, sizeof(prefix), "kl_write_test_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit();
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (!tmp || !tmp[0] || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/kl_write_test.XXXXXX", tmp);
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(kek, sizeof(kek), "%s/kek", base);
	for (unsigned i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(0x5a ^ i);
	fd = open(kek, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k)) {
		perror("KEK file");
		return 1;
	}
	close(fd);
	rc = cmocka_run_group_tests_name("write", tests, NULL, NULL);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rte_eal_cleanup();
	return rc;
}
