/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kl_elect and kl_msk_guard without etcd: options refused with a reason, the MSK record's key,
 * bad claims refused before anything is sent (the client points at a closed port, and nothing
 * here may reach it). The etcd side is tests/test_elect.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kl_elect.h"
#include "kl_msk_guard.h"

static struct kl_etcd *client(void)
{
	static const char *const eps[] = { "http://127.0.0.1:9" };
	struct kl_etcd_opts o = { .endpoints = eps, .n_endpoints = 1 };
	char err[128];
	struct kl_etcd *c = kl_etcd_new(&o, err, sizeof(err));

	assert_non_null(c);
	return c;
}

static void test_opts(void **state)
{
	struct kl_etcd *c = client();
	struct kl_elect_opts o = { .prefix = "/kl/", .election = "rotation", .node = "node-a" };
	struct kl_elect_status st;
	struct kl_elect *e;
	char err[128], longname[KL_ELECT_NAME_MAX + 2];

	(void)state;
	e = kl_elect_new(c, &o, err, sizeof(err));
	assert_non_null(e);
	kl_elect_status(e, &st);
	assert_int_equal(st.role, KL_ELECT_IDLE);
	assert_int_equal(kl_elect_is_leader(e), 0);
	assert_string_equal(kl_elect_role_name(st.role), "idle");
	/* idle: nothing to do, nothing sent */
	assert_int_equal(kl_elect_run(e), KL_ELECT_IDLE);
	assert_int_equal(kl_elect_pollfds(e, NULL, 0), 0);
	kl_elect_free(e);

	struct {
		struct kl_elect_opts o;
		const char *why;
	} bad[] = {
		{ { .prefix = "/kl", .election = "", .node = "a" }, "election's name" },
		{ { .prefix = "/kl", .election = "a/b", .node = "a" }, "election's name" },
		{ { .prefix = "/kl", .election = "r", .node = "" }, "node name" },
		{ { .prefix = "/kl", .election = "r", .node = longname }, "node name" },
		{ { .prefix = "/kl", .election = "r", .node = "a", .ttl_s = 1 }, "ttl" },
		{ { .prefix = "/kl", .election = "r", .node = "a", .ttl_s = 3601 }, "ttl" },
		{ { .prefix = "/kl", .election = "r", .node = "a", .ttl_s = 3, .margin_ms = 2000 },
		  "margin" },
		{ { .prefix = "/kl", .election = "r", .node = "a", .ttl_s = 3, .margin_ms = -1 },
		  "margin" },
		{ { .prefix = NULL, .election = "r", .node = "a" }, "required" },
	};
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_null(kl_elect_new(c, &bad[i].o, err, sizeof(err)));
		assert_non_null(strstr(err, bad[i].why));
	}
	assert_null(kl_elect_new(NULL, &o, err, sizeof(err)));
	kl_etcd_free(c);
}

static void test_msk_key(void **state)
{
	char k[64];
	struct kl_etcd *c = client();
	struct kl_msk_claim cl;
	uint8_t v[KL_MSK_GUARD_VALUE_MAX + 1] = { 0 };

	(void)state;
	assert_int_equal(kl_msk_guard_key("/kl/", "00f110:0003", 0x00030001u, k, sizeof(k)),
			 strlen("/kl/msk/00f110:0003/00030001"));
	assert_string_equal(k, "/kl/msk/00f110:0003/00030001");
	assert_int_equal(kl_msk_guard_key("/kl", "", 1, k, sizeof(k)), 0);
	assert_int_equal(kl_msk_guard_key("/kl", "a/b", 1, k, sizeof(k)), 0);
	assert_int_equal(kl_msk_guard_key("/kl", "g", 1, k, 10), 0); /* does not fit */
	/* refused before anything is sent */
	assert_int_equal(kl_msk_claim(c, "/kl", "g", 1, v, 0, &cl), KL_ETCD_EINVAL);
	assert_null(cl.value);
	assert_int_equal(kl_msk_claim(c, "/kl", "g", 1, v, sizeof(v), &cl), KL_ETCD_EINVAL);
	assert_int_equal(kl_msk_claim(c, "/kl", "", 1, v, 16, &cl), KL_ETCD_EINVAL);
	assert_int_equal(kl_msk_claim(c, "/kl", "g", 1, NULL, 16, &cl), KL_ETCD_EINVAL);
	assert_int_equal(kl_msk_claim(c, "/kl", "g", 1, v, 16, NULL), KL_ETCD_EINVAL);
	/* a real attempt to a closed port: unreachable, nothing claimed */
	assert_int_equal(kl_msk_claim(c, "/kl", "g", 1, v, 16, &cl), KL_ETCD_EUNREACHABLE);
	assert_null(cl.value);
	kl_msk_claim_free(&cl);
	kl_etcd_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_msk_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
