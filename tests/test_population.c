/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test population: determinism of the generators, import into a real key table checked against
 * the generators, parameter file round trip and strict validation, and the tool's --show output
 * (no key bytes; bad arguments exit 2). argv[1] = path of keyline-population.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <rte_eal.h>

#include "kl_eal_rundir.h"
#include "kl_population.h"

static const char *tool_path;
static char tmpdir[64];

static struct kl_pop_params base(uint64_t seed)
{
	return (struct kl_pop_params){ .seed = seed, .ues = 10000, .groups = 16, .emses = 100,
				       .imsis = 100, .appids = 50, .e2m_keys_per_imsi = 3,
				       .now_ntp = (uint64_t)3900000000u << 32, .msk_period_s = 3600 };
}

static void test_determinism(void **state)
{
	struct kl_pop_params a = base(42), b = base(43);
	struct kl_pop_ue u1, u2, u3;
	struct kl_pop_emse e1, e2;
	struct kl_pop_e2m m1, m2;
	struct kl_group g1, g2;
	struct kl_group_ref r;

	(void)state;
	assert_int_equal(kl_pop_ue(&a, 7, &u1), 0);
	assert_int_equal(kl_pop_ue(&b, 7, &u3), 0); /* another seed in between */
	assert_int_equal(kl_pop_ue(&a, 9999, &u2), 0);
	assert_int_equal(kl_pop_ue(&a, 7, &u2), 0);
	assert_memory_equal(&u1, &u2, sizeof(u1));
	assert_string_equal(u1.impi, "ue00000007@ims.mnc001.mcc001.3gppnetwork.org");
	assert_int_equal(u1.impi_len, strlen(u1.impi));
	assert_int_equal(u1.ngroups, 1);
	assert_int_equal(u1.groups[0].group, 8);
	assert_memory_equal(u1.groups[0].domain, "\x00\xF1\x10", 3);
	assert_string_equal(u3.impi, u1.impi);
	assert_memory_not_equal(u1.muk, u3.muk, 32);
	assert_int_equal(kl_pop_ue(&a, 8, &u3), 0);
	assert_memory_not_equal(u1.muk, u3.muk, 32);
	assert_int_equal(kl_pop_ue(&a, 10000, &u3), -EINVAL);

	assert_int_equal(kl_pop_group(&a, 3, &r, &g1), 0);
	assert_int_equal(kl_pop_group(&b, 3, NULL, &g2), 0);
	assert_memory_not_equal(g1.current.key, g2.current.key, 16);
	assert_int_equal(kl_pop_group(&a, 3, NULL, &g2), 0);
	assert_memory_equal(&g1, &g2, sizeof(g1));
	assert_int_equal(r.group, 3);
	assert_int_equal(g1.current.msk_id >> 16, 3);
	assert_int_equal(g1.next.msk_id >> 16, 3);
	assert_int_not_equal(g1.current.msk_id & 0xFFFF, 0);
	assert_int_not_equal(g1.current.msk_id, g1.next.msk_id);
	assert_memory_not_equal(g1.current.key, g1.next.key, 16);
	assert_true(g1.current.valid_from == a.now_ntp - ((uint64_t)1800 << 32));
	assert_true(g1.current.valid_to == a.now_ntp + ((uint64_t)1800 << 32));
	assert_true(g1.next.valid_from == g1.current.valid_to);
	assert_true(g1.next.valid_to == g1.current.valid_to + ((uint64_t)3600 << 32));
	assert_int_equal(kl_pop_group(&a, 0, NULL, &g2), -EINVAL);
	assert_int_equal(kl_pop_group(&a, 17, NULL, &g2), -EINVAL);

	assert_int_equal(kl_pop_emse(&a, 5, &e1), 0);
	assert_int_equal(kl_pop_emse(&b, 5, &e2), 0);
	assert_string_equal(e1.id, "emse000005.corp.example");
	assert_memory_not_equal(e1.psk, e2.psk, 32);
	assert_int_equal(kl_pop_emse(&a, 5, &e2), 0);
	assert_memory_equal(&e1, &e2, sizeof(e1));

	assert_int_equal(kl_pop_e2m(&a, 12, 0, &m1), 0);
	assert_string_equal(m1.imsi, "001010000000012");
	assert_int_equal(kl_pop_e2m(&a, 12, 1, &m2), 0);
	assert_int_not_equal(m1.key_id, m2.key_id);
	assert_memory_not_equal(m1.key, m2.key, 32);
	assert_int_equal(kl_pop_e2m(&a, 12, 3, &m2), -EINVAL);
	assert_int_equal(kl_pop_e2m(&b, 12, 0, &m2), 0);
	assert_memory_not_equal(m1.key, m2.key, 32);
	assert_int_equal(kl_pop_e2m(&a, 12, 0, &m2), 0);
	assert_memory_equal(&m1, &m2, sizeof(m1));

	struct kl_pop_appid ap;
	assert_int_equal(kl_pop_appid(&a, 49, &ap), 0);
	assert_string_equal(ap.id, "app000049@factory.example");
	assert_string_equal(ap.imsi, "001010000000049");
	a.imsis = 7;
	assert_int_equal(kl_pop_appid(&a, 49, &ap), 0);
	assert_string_equal(ap.imsi, "001010000000000");
	assert_int_equal(kl_pop_appid(&a, 50, &ap), -EINVAL);
}

static void check_chunk(const struct kl_psk_chunk *c, const uint8_t *key)
{
	struct kl_psk_chunk want[KL_TABLE_PSK_CHUNKS];

	assert_int_equal(kl_psk_init(key, 32, want), 1);
	assert_memory_equal(c, &want[0], sizeof(want[0]));
}

static void test_import(void **state)
{
	struct kl_table_params tp = { .name = "pop_test", .max_ues = 10000, .max_groups = 16,
				      .max_emses = 100, .max_imsis = 100, .max_appids = 50,
				      .e2m_ring = 4, .max_readers = 1, .socket_id = -1 };
	struct kl_pop_params p = base(2024);
	struct kl_pop_stats st;
	struct kl_table *t;
	struct kl_table_key keys[64];
	const void *out[64];
	struct kl_pop_ue ue[64];

	(void)state;
	t = kl_table_create(&tp);
	assert_non_null(t);
	assert_int_equal(kl_pop_import(t, &p, &st), 0);
	assert_int_equal(st.ues, 10000);
	assert_int_equal(st.groups, 16);
	assert_int_equal(st.emses, 100);
	assert_int_equal(st.imsis, 100);
	assert_int_equal(st.e2m_keys, 300);
	assert_int_equal(st.appids, 50);
	assert_true(st.elapsed_ns > 0);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 10000);
	assert_int_equal(kl_table_count(t, KL_TK_GROUP), 16);
	assert_int_equal(kl_table_count(t, KL_TK_EMSE), 100);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 100);
	assert_int_equal(kl_table_count(t, KL_TK_APPID), 50);
	assert_int_equal(kl_table_reader_register(t, 0), 0);

	/* UEs: 64 samples spread over the population, incl. first and last */
	for (unsigned j = 0; j < 64; j++) {
		uint32_t i = j == 63 ? 9999 : j * 157;

		assert_int_equal(kl_pop_ue(&p, i, &ue[j]), 0);
		keys[j] = (struct kl_table_key){ (const uint8_t *)ue[j].impi, ue[j].impi_len };
	}
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, keys, 64, out), 64);
	for (unsigned j = 0; j < 64; j++) {
		const struct kl_ue *e = out[j];

		assert_int_equal(e->ngroups, 1);
		assert_int_equal(e->nchunks, 1);
		assert_int_equal(e->groups[0].group, ue[j].groups[0].group);
		assert_memory_equal(e->groups[0].domain, kl_pop_domain, 3);
		check_chunk(&e->chunk[0], ue[j].muk);
	}
	/* groups */
	for (uint32_t g = 1; g <= 16; g++) {
		struct kl_group want;
		struct kl_group_ref ref;
		uint8_t k5[5];

		assert_int_equal(kl_pop_group(&p, g, &ref, &want), 0);
		memcpy(k5, ref.domain, 3);
		k5[3] = (uint8_t)(g >> 8);
		k5[4] = (uint8_t)g;
		keys[0] = (struct kl_table_key){ k5, 5 };
		assert_int_equal(kl_table_lookup_bulk(t, KL_TK_GROUP, keys, 1, out), 1);
		const struct kl_group *e = out[0];
		assert_memory_equal(e->current.key, want.current.key, 16);
		assert_memory_equal(e->next.key, want.next.key, 16);
		assert_int_equal(e->current.msk_id, want.current.msk_id);
		assert_int_equal(e->next.msk_id, want.next.msk_id);
		assert_true(e->current.valid_from == want.current.valid_from);
		assert_true(e->current.valid_to == want.current.valid_to);
		assert_true(e->next.valid_from == want.next.valid_from);
		assert_true(e->next.valid_to == want.next.valid_to);
		assert_int_equal(e->has_next, 1);
	}
	/* EMSEs */
	for (uint32_t i = 0; i < 100; i += 9) {
		struct kl_pop_emse em;

		assert_int_equal(kl_pop_emse(&p, i, &em), 0);
		keys[0] = (struct kl_table_key){ (const uint8_t *)em.id, em.id_len };
		assert_int_equal(kl_table_lookup_bulk(t, KL_TK_EMSE, keys, 1, out), 1);
		const struct kl_emse *e = out[0];
		assert_int_equal(e->nchunks, 1);
		check_chunk(&e->chunk[0], em.psk);
	}
	/* E2M: newest first */
	for (uint32_t i = 0; i < 100; i += 11) {
		struct kl_pop_e2m m;

		assert_int_equal(kl_pop_e2m(&p, i, 0, &m), 0);
		keys[0] = (struct kl_table_key){ (const uint8_t *)m.imsi, (uint16_t)strlen(m.imsi) };
		assert_int_equal(kl_table_lookup_bulk(t, KL_TK_E2M, keys, 1, out), 1);
		const struct kl_e2m *e = out[0];
		assert_int_equal(e->n, 3);
		for (unsigned k = 0; k < 3; k++) {
			struct kl_hmac_key hk;

			assert_int_equal(kl_pop_e2m(&p, i, k, &m), 0);
			assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, m.key, 32, &hk), 0);
			assert_int_equal(e->keys[k].key_id, m.key_id);
			assert_memory_equal(e->keys[k].istate, hk.istate, sizeof(hk.istate));
			assert_memory_equal(e->keys[k].ostate, hk.ostate, sizeof(hk.ostate));
		}
	}
	/* appids */
	for (uint32_t i = 0; i < 50; i += 7) {
		struct kl_pop_appid a;

		assert_int_equal(kl_pop_appid(&p, i, &a), 0);
		keys[0] = (struct kl_table_key){ (const uint8_t *)a.id, a.id_len };
		assert_int_equal(kl_table_lookup_bulk(t, KL_TK_APPID, keys, 1, out), 1);
		const struct kl_appid *e = out[0];
		assert_int_equal(e->imsi_len, strlen(a.imsi));
		assert_memory_equal(e->imsi, a.imsi, e->imsi_len);
	}
	kl_table_quiescent(t, 0);
	/* a full table replaces entries only once readers pass: no reader is left to wait for */
	kl_table_reader_unregister(t, 0);
	/* re-import replaces in place: same counts */
	assert_int_equal(kl_pop_import(t, &p, &st), 0);
	assert_int_equal(st.ues, 10000);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 10000);
	/* a population larger than the table: -ENOSPC */
	p.ues = 10001;
	p.seed = 7; /* UEs 0..9999 are replaced with new keys, UE 10000 does not fit */
	assert_int_equal(kl_pop_import(t, &p, &st), -ENOSPC);
	kl_table_free(t);

	/* import rate for a bigger population when asked (KL_POP_RATE_UES=1000000) */
	const char *big = getenv("KL_POP_RATE_UES");
	if (big) {
		uint32_t n = (uint32_t)strtoul(big, NULL, 10);
		struct kl_table_params bp = { .name = "pop_rate", .max_ues = n, .max_groups = 16,
					      .max_readers = 1, .socket_id = -1 };
		struct kl_pop_params q = base(1);

		q.ues = n;
		q.emses = q.imsis = q.appids = 0;
		t = kl_table_create(&bp);
		assert_non_null(t);
		assert_int_equal(kl_pop_import(t, &q, &st), 0);
		printf("import: %u UEs in %.3f s = %.0f UEs/s\n", st.ues, (double)st.elapsed_ns / 1e9,
		       (double)st.ues * 1e9 / (double)st.elapsed_ns);
		kl_table_free(t);
	}
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Pair keys: their own stream, symmetric in the two identities; imported for the server's own
 * identity with every other population peer; the UEs' services. */
static void test_pairs_services(void **state)
{
	struct kl_table_params tp = { .name = "pop_pairs", .max_ues = 100, .max_groups = 16,
				      .max_emses = 100, .max_imsis = 100, .max_appids = 50,
				      .max_pairs = 8, .e2m_ring = 4, .max_readers = 1,
				      .socket_id = -1 };
	static const char x0[] = "vlr-0.pop.keyline.test", x1[] = "vlr-1.pop.keyline.test",
			  other[] = "keyline.other.test";
	struct kl_pop_params p = base(77);
	struct kl_pop_pair a, b, c;
	struct kl_pop_stats st;
	struct kl_pop_ue ue;
	struct kl_table *t, *t1;
	uint8_t kcv[KL_KCV_LEN], want[KL_KCV_LEN], svc = 0;
	uint64_t exp = 1;

	(void)state;
	assert_int_equal(kl_pop_services(&p), KL_SVC(MBMS));
	p.ues = 100;
	p.pairs = 3;
	assert_int_equal(kl_pop_services(&p), KL_SVC(MBMS) | KL_SVC(HM));
	/* K({vlr-0, vlr-1}) the same from both sides, another for another pair of servers */
	assert_int_equal(kl_pop_pair(&p, 1, x0, strlen(x0), &a), 0);
	assert_string_equal(a.peer, x1);
	assert_int_equal(kl_pop_pair(&p, 0, x1, strlen(x1), &b), 0);
	assert_string_equal(b.peer, x0);
	assert_memory_equal(a.key, b.key, 32);
	assert_int_equal(kl_pop_pair(&p, 2, x0, strlen(x0), &c), 0);
	assert_memory_not_equal(a.key, c.key, 32);
	assert_int_equal(kl_pop_pair(&p, 1, other, strlen(other), &c), 0);
	assert_memory_not_equal(a.key, c.key, 32);
	/* its own stream: not the UE 0 MUK or anything with the same label and index */
	assert_int_equal(kl_pop_ue(&p, 0, &ue), 0);
	assert_memory_not_equal(a.key, ue.muk, 32);
	assert_int_equal(kl_pop_pair(&p, 3, x0, strlen(x0), &c), -EINVAL);
	assert_int_equal(kl_pop_pair(&p, 0, x0, 0, &c), -EINVAL);
	/* another seed, another key */
	p.seed = 78;
	assert_int_equal(kl_pop_pair(&p, 1, x0, strlen(x0), &c), 0);
	assert_memory_not_equal(a.key, c.key, 32);
	p.seed = 77;
	/* import as vlr-0: keys with vlr-1 and vlr-2, none with itself */
	p.server_id = x0;
	p.server_id_len = (uint16_t)strlen(x0);
	t = kl_table_create(&tp);
	assert_non_null(t);
	assert_int_equal(kl_pop_import(t, &p, &st), 0);
	assert_int_equal(st.pairs, 2);
	assert_int_equal(kl_table_count(t, KL_TK_PAIR), 2);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)x0, (uint16_t)strlen(x0), NULL, NULL),
			 -ENOENT);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)x1, (uint16_t)strlen(x1), &exp, kcv),
			 0);
	assert_true(exp == 0);
	assert_int_equal(kl_kcv(a.key, 32, want), 0);
	assert_memory_equal(kcv, want, KL_KCV_LEN);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)ue.impi, ue.impi_len, &svc), 0);
	assert_int_equal(svc, KL_SVC(MBMS) | KL_SVC(HM));
	/* the server vlr-1 holds the same key with vlr-0; explicit services */
	tp.name = "pop_pairs1";
	t1 = kl_table_create(&tp);
	assert_non_null(t1);
	p.server_id = x1;
	p.server_id_len = (uint16_t)strlen(x1);
	p.services = KL_SVC(DH) | KL_SVC(PROSE);
	assert_int_equal(kl_pop_import(t1, &p, &st), 0);
	assert_int_equal(kl_table_get_pair(t1, (const uint8_t *)x0, (uint16_t)strlen(x0), NULL, kcv),
			 0);
	assert_memory_equal(kcv, want, KL_KCV_LEN);
	assert_int_equal(kl_table_get_ue_services(t1, (const uint8_t *)ue.impi, ue.impi_len, &svc),
			 0);
	assert_int_equal(svc, KL_SVC(DH) | KL_SVC(PROSE));
	/* dh UEs carry their public value, from their MUK; the pair its s2s PSK */
	{
		struct kl_table_key k = { .id = (const uint8_t *)ue.impi, .len = ue.impi_len };
		const void *e = NULL;
		const struct kl_psk_chunk *ch = NULL;
		struct kl_hmac_key kx;
		uint8_t pub[KL_X25519_LEN];
		unsigned n = 0;

		assert_int_equal(kl_table_lookup_bulk(t1, KL_TK_UE, &k, 1, &e), 1);
		assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, ue.muk, sizeof(ue.muk), &kx), 0);
		assert_int_equal(kl_dh_public(NULL, &kx, pub), 0);
		assert_non_null(kl_ue_dh_pub(e));
		assert_memory_equal(kl_ue_dh_pub(e), pub, sizeof(pub));
		k = (struct kl_table_key){ .id = (const uint8_t *)x0, .len = (uint16_t)strlen(x0) };
		assert_int_equal(kl_table_lookup_bulk(t1, KL_TK_PAIR, &k, 1, &e), 1);
		kl_pair_s2s_psk(e, &ch, &n);
		assert_int_equal(n, 1);
		assert_non_null(ch);
	}
	kl_table_free(t1);
	/* without a server identity: no pair keys */
	p.server_id = NULL;
	kl_table_free(t);
	tp.name = "pop_pairs2";
	t = kl_table_create(&tp);
	assert_non_null(t);
	assert_int_equal(kl_pop_import(t, &p, &st), 0);
	assert_int_equal(st.pairs, 0);
	kl_table_free(t);
	kl_memzero(&a, sizeof(a));
	kl_memzero(&b, sizeof(b));
	kl_memzero(&c, sizeof(c));
	kl_memzero(&ue, sizeof(ue));
	p.pairs = KL_POP_MAX_PAIRS + 1;
	assert_int_equal(kl_pop_params_check(&p, NULL, 0), -EINVAL);
}

static void test_file_round_trip(void **state)
{
	struct kl_pop_params p = base(18446744073709551615ull), q;
	char path[128], err[256];
	struct stat sb;

	(void)state;
	snprintf(path, sizeof(path), "%s/pop.txt", tmpdir);
	write_text(path, "old contents\n");
	chmod(path, 0644);
	assert_int_equal(kl_pop_write_file(path, &p), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	memset(&q, 0xAA, sizeof(q));
	assert_int_equal(kl_pop_read_file(path, &q, err, sizeof(err)), 0);
	assert_true(q.seed == p.seed);
	assert_int_equal(q.ues, p.ues);
	assert_int_equal(q.groups, p.groups);
	assert_int_equal(q.emses, p.emses);
	assert_int_equal(q.imsis, p.imsis);
	assert_int_equal(q.appids, p.appids);
	assert_int_equal(q.e2m_keys_per_imsi, p.e2m_keys_per_imsi);
	assert_true(q.now_ntp == p.now_ntp);
	assert_int_equal(q.msk_period_s, p.msk_period_s);
	assert_int_equal(q.pairs, 0);
	assert_int_equal(q.services, 0);
	/* pairs and services are written when set, and read back */
	p.pairs = 12;
	p.services = KL_SVC(MBMS) | KL_SVC(PROSE);
	assert_int_equal(kl_pop_write_file(path, &p), 0);
	assert_int_equal(kl_pop_read_file(path, &q, err, sizeof(err)), 0);
	assert_int_equal(q.pairs, 12);
	assert_int_equal(q.services, KL_SVC(MBMS) | KL_SVC(PROSE));
	p.pairs = 0;
	p.services = 0;
	p.e2m_keys_per_imsi = 0;
	assert_int_equal(kl_pop_write_file(path, &p), -EINVAL);
	snprintf(path, sizeof(path), "%s/nonexistent", tmpdir);
	assert_int_equal(kl_pop_read_file(path, &q, err, sizeof(err)), -ENOENT);
}

#define GOOD_BODY "seed 1\nues 10\ngroups 2\nemses 3\nimsis 4\nappids 5\ne2m-keys 3\nnow 3900000000\nmsk-period 3600\n"

static void test_file_malformed(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "", "line 1:" },
		{ "keyline-population 2\n" GOOD_BODY, "line 1:" },
		{ "keyline-population 1\nbogus 1\n" GOOD_BODY, "line 2: unknown field" },
		{ "keyline-population 1\n" GOOD_BODY "seed 2\n", "line 11: duplicate seed" },
		{ "keyline-population 1\nseed -1\n", "line 2: seed: bad value" },
		{ "keyline-population 1\nseed 18446744073709551616\n", "line 2: seed: bad value" },
		{ "keyline-population 1\nseed 0x10\n", "line 2: seed: bad value" },
		{ "keyline-population 1\nseed 1 \n", "line 2: seed: bad value" },
		{ "keyline-population 1\nseed 01\n", "line 2: seed: bad value" },
		{ "keyline-population 1\nseed\n", "line 2: expected" },
		{ "keyline-population 1\nseed \n", "line 2: seed: bad value" },
		{ "keyline-population 1\n\n# c\nues 100000001\n", "line 4: ues: bad value" },
		{ "keyline-population 1\ngroups 65536\n", "line 2: groups: bad value" },
		{ "keyline-population 1\nemses 1000001\n", "line 2: emses: bad value" },
		{ "keyline-population 1\ne2m-keys 9\n", "line 2: e2m-keys: bad value" },
		{ "keyline-population 1\nmsk-period 31536001\n", "line 2: msk-period: bad value" },
		{ "keyline-population 1\nnow 4294967296\n", "line 2: now: bad value" },
		{ "keyline-population 1\nseed 1\nues 10\ngroups 2\nemses 3\nimsis 4\nappids 5\ne2m-keys 3\nnow 3900000000\n",
		  "line 10: missing field msk-period" },
		{ "keyline-population 1\nseed 1\nues 10\ngroups 2\nemses 3\nimsis 4\nappids 5\ne2m-keys 0\nnow 3900000000\nmsk-period 3600\n",
		  "line 8: e2m-keys out of range" },
		{ "keyline-population 1\nseed 1\nues 10\ngroups 2\nemses 3\nimsis 4\nappids 5\ne2m-keys 3\nnow 3900000000\nmsk-period 1\n",
		  "line 10: msk-period out of range" },
		{ "keyline-population 1\nseed 1\nues 10\ngroups 2\nemses 3\nimsis 4\nappids 5\ne2m-keys 3\nnow 100\nmsk-period 3600\n",
		  "line 9: now out of range" },
		{ "keyline-population 1\nseed 1\nues 10\ngroups 2\nemses 3\nimsis 0\nappids 5\ne2m-keys 3\nnow 3900000000\nmsk-period 3600\n",
		  "line 7: appids need imsis" },
		{ "keyline-population 1\r\n" GOOD_BODY, "line 1:" },
	};
	char path[128], err[256];
	struct kl_pop_params q;

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.txt", tmpdir);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		write_text(path, cases[c].text);
		err[0] = 0;
		if (kl_pop_read_file(path, &q, err, sizeof(err)) != -EINVAL ||
		    strncmp(err, cases[c].want, strlen(cases[c].want))) {
			fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", c, err, cases[c].want);
			fail();
		}
	}
	/* a long line */
	{
		char big[600];

		memset(big, '1', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "keyline-population 1\nseed %s\n", big);
		fclose(f);
		assert_int_equal(kl_pop_read_file(path, &q, err, sizeof(err)), -EINVAL);
		assert_memory_equal(err, "line 2:", 7);
	}
	write_text(path, "keyline-population 1\n# comment\n" GOOD_BODY);
	assert_int_equal(kl_pop_read_file(path, &q, err, sizeof(err)), 0);
}

static int run(const char *cmd, char *buf, size_t cap)
{
	FILE *f = popen(cmd, "r");
	size_t n;
	int st;

	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_tool(void **state)
{
	char cmd[1024], outb[8192], path[128];
	unsigned run_len = 0;

	(void)state;
	if (!tool_path)
		skip();
	snprintf(path, sizeof(path), "%s/tool.txt", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "'%s' --seed 99 --ues 1000 --groups 4 --emses 10 --imsis 10 --appids 10 --e2m-keys 2 -o '%s' 2>&1",
		 tool_path, path);
	assert_int_equal(run(cmd, outb, sizeof(outb)), 0);
	snprintf(cmd, sizeof(cmd), "'%s' --show '%s' --index 3 2>&1", tool_path, path);
	assert_int_equal(run(cmd, outb, sizeof(outb)), 0);
	assert_non_null(strstr(outb, "ue00000003@ims.mnc001.mcc001.3gppnetwork.org"));
	assert_non_null(strstr(outb, "muk-kcv "));
	assert_non_null(strstr(outb, "emse000003.corp.example"));
	assert_non_null(strstr(outb, "app000003@factory.example"));
	/* key domains as everywhere else: lower-case hex, DDDDDD:G */
	assert_non_null(strstr(outb, " groups 00f110:"));
	assert_null(strstr(outb, "00F110"));
	for (const char *c = outb; *c; c++) {
		run_len = isxdigit((unsigned char)*c) ? run_len + 1 : 0;
		if (run_len >= 32) {
			fprintf(stderr, "hex run in: %s\n", outb);
			fail();
		}
	}
	/* the file holds no keys either */
	{
		FILE *f = fopen(path, "r");
		size_t n;

		assert_non_null(f);
		n = fread(outb, 1, sizeof(outb) - 1, f);
		outb[n] = 0;
		fclose(f);
		run_len = 0;
		for (const char *c = outb; *c; c++) {
			run_len = isxdigit((unsigned char)*c) ? run_len + 1 : 0;
			assert_true(run_len < 32);
		}
	}
	static const char *const bad[] = {
		"--bogus", "--seed 1 --ues 10", "--seed x --ues 10 -o /dev/null",
		"--seed 1 --ues 100000001 -o /dev/null", "--seed 1 --ues 10 --e2m-keys 0 -o /dev/null",
		"--seed 1 --ues 10 --appids 3 --imsis 0 -o /dev/null", "--show", "--index 3",
		"--seed 1 --ues 10 -o /dev/null extra",
	};
	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", tool_path, bad[b]);
		if (run(cmd, outb, sizeof(outb)) != 2 || !strchr(outb, '\n') ||
		    strchr(outb, '\n')[1] != 0) {
			fprintf(stderr, "bad args \"%s\": \"%s\"\n", bad[b], outb);
			fail();
		}
	}
	snprintf(cmd, sizeof(cmd), "'%s' --show '%s' --index 5000 2>&1", tool_path, path);
	assert_int_equal(run(cmd, outb, sizeof(outb)), 2);
	/* pair keys: their KCVs, the same from both servers, never the keys */
	snprintf(cmd, sizeof(cmd), "'%s' --seed 99 --ues 10 --pairs 3 --services mbms,hm,dh -o '%s' 2>&1",
		 tool_path, path);
	assert_int_equal(run(cmd, outb, sizeof(outb)), 0);
	{
		char kcv01[8] = "", kcv10[8] = "";
		const char *k;

		snprintf(cmd, sizeof(cmd), "'%s' --show '%s' --index 1 2>&1", tool_path, path);
		assert_int_equal(run(cmd, outb, sizeof(outb)), 0);
		assert_non_null(strstr(outb, "pairs 3\nservices mbms,hm,dh\n"));
		k = strstr(outb, "pair vlr-0.pop.keyline.test with vlr-1.pop.keyline.test kcv ");
		assert_non_null(k);
		memcpy(kcv01, k + strlen("pair vlr-0.pop.keyline.test with vlr-1.pop.keyline.test kcv "),
		       6);
		snprintf(cmd, sizeof(cmd),
			 "'%s' --show '%s' --index 0 --server-id vlr-1.pop.keyline.test 2>&1",
			 tool_path, path);
		assert_int_equal(run(cmd, outb, sizeof(outb)), 0);
		k = strstr(outb, "pair vlr-1.pop.keyline.test with vlr-0.pop.keyline.test kcv ");
		assert_non_null(k);
		memcpy(kcv10, k + strlen("pair vlr-1.pop.keyline.test with vlr-0.pop.keyline.test kcv "),
		       6);
		assert_string_equal(kcv01, kcv10);
	}
	snprintf(cmd, sizeof(cmd), "'%s' --seed 1 --ues 10 --services mbms,tea -o /dev/null 2>&1",
		 tool_path);
	assert_int_equal(run(cmd, outb, sizeof(outb)), 2);
}

int main(int argc, char **argv)
{
	char prefix[64];
	char *eal[] = { "test_population", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_determinism),	cmocka_unit_test(test_import),
		cmocka_unit_test(test_pairs_services),
		cmocka_unit_test(test_file_round_trip), cmocka_unit_test(test_file_malformed),
		cmocka_unit_test(test_tool),
	};
	int rc;

	tool_path = argc > 1 ? argv[1] : NULL;
	snprintf(prefix, sizeof(prefix), "kl_pop_test_%d", (int)getpid());
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kl_pop_test_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	rc = cmocka_run_group_tests_name("population", tests, NULL, NULL);
	char rm[128];

	snprintf(rm, sizeof(rm), "rm -rf '%s'", tmpdir);
	if (system(rm) != 0)
		rc = rc ? rc : 1;
	rte_eal_cleanup();
	return rc;
}
