/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center's admin commands (control/http/kl_naf_keys.c, kl_naf_keys_admin): the first byte
 * picks the command (naf-keys, naf-invalidate, naf-block, naf-unblock, naf-blocklist, or one
 * that is not theirs), the rest is the request's JSON text. Against a memory-only instance that
 * holds issued keys. Invariants: the return is 0, 1 or -EINVAL; 1 sets no answer; 0 an object;
 * -EINVAL an object with an "error" string; no answer ever holds an issued key's bytes (hex)
 * that the request did not hold itself.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "kl_naf_keys.h"

static struct kl_naf_keys *keys;
static const char *const cmds[] = { "naf-keys", "naf-invalidate", "naf-block", "naf-unblock",
				    "naf-blocklist", "status" };
static char key_hex[3][65];
static atomic_int stop;

static void *poller(void *arg)
{
	struct pollfd p = { .fd = kl_naf_keys_fd(arg), .events = POLLIN };

	while (!atomic_load(&stop))
		if (poll(&p, 1, 10) > 0)
			kl_naf_keys_poll(arg);
	return NULL;
}

static void setup(void)
{
	struct kl_naf_keys_params p = { .store = NULL, .max_keys = 64, .wait_ms = 2000 };
	char err[256];
	pthread_t th;

	keys = kl_naf_keys_open(&p, err, sizeof(err));
	FZ_CHECK(keys != NULL);
	pthread_create(&th, NULL, poller, keys);
	for (unsigned i = 0; i < 3; i++) {
		uint8_t key[32];
		char btid[32];

		for (unsigned j = 0; j < 32; j++) {
			key[j] = (uint8_t)(0xa0 + i * 7 + j);
			snprintf(key_hex[i] + 2 * j, 3, "%02x", key[j]);
		}
		snprintf(btid, sizeof(btid), "B%u@bsf", i);
		FZ_CHECK(kl_naf_keys_issue(keys, btid, (const uint8_t *)"naf", 3, "device-0001.test",
					   NULL, key, 4000000000u, 1800000000u) == KL_NAF_ISSUED);
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
}

struct echo {
	const char *hex;
	int found;
};

static int blocked_has(void *arg, enum kl_naf_block_kind kind, const char *value)
{
	struct echo *e = arg;

	(void)kind;
	e->found |= strstr(value, e->hex) != NULL;
	return e->found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL, *ans = NULL;
	json_error_t je;
	char *txt;
	int rc;

	if (!keys)
		setup();
	if (size < 1)
		return 0;
	if (size > 1) {
		req = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, &je);
		if (!req)
			return 0;
	}
	rc = kl_naf_keys_admin(keys, cmds[data[0] % 6], req, &ans);
	json_decref(req);
	FZ_CHECK(rc == 0 || rc == 1 || rc == -EINVAL);
	if (rc == 1) {
		FZ_CHECK(ans == NULL);
		return 0;
	}
	FZ_CHECK(json_is_object(ans));
	if (rc == -EINVAL)
		FZ_CHECK(json_is_string(json_object_get(ans, "error")));
	txt = json_dumps(ans, JSON_COMPACT);
	FZ_CHECK(txt != NULL);
	/* (an answer may echo what a request said, now or in a blocklist entry an earlier input
	 * added: only bytes no request held count) */
	for (unsigned i = 0; i < 3; i++) {
		struct echo e = { .hex = key_hex[i] + 8 };

		if (!strstr(txt, e.hex) || memmem(data, size, e.hex, strlen(e.hex)))
			continue;
		kl_naf_keys_list_blocked(keys, blocked_has, &e);
		FZ_CHECK(e.found);
	}
	free(txt);
	json_decref(ans);
	return 0;
}
