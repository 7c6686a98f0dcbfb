/* SPDX-License-Identifier: BSD-3-Clause */
/* Fixtures of the cmocka tests that use a real key table and a real store (include after
 * cmocka.h). */
#ifndef KL_TEST_STORE_H
#define KL_TEST_STORE_H

#include <stdio.h>

#include "kl_store.h"
#include "kl_table.h"

/* Create the table of p, named prefix<n> (n counted up): fails the test when it cannot. */
static inline struct kl_table *kl_test_table(struct kl_table_params *p, const char *prefix,
					     unsigned *n)
{
	char name[16];
	struct kl_table *t;

	snprintf(name, sizeof(name), "%s%u", prefix, (*n)++);
	p->name = name;
	t = kl_table_create(p);
	assert_non_null(t);
	return t;
}

/* Open (create) the store in dir under the KEK file kek: fails the test when it cannot. */
static inline struct kl_store *kl_test_store(const char *dir, const char *kek, uint64_t map_size)
{
	struct kl_store_params p = { .path = dir, .kek_file = kek, .map_size = map_size,
				     .create_if_missing = 1 };
	char err[512];
	struct kl_store *s = kl_store_open(&p, err, sizeof(err));

	if (!s)
		fail_msg("store %s: %s", dir, err);
	return s;
}

#endif
