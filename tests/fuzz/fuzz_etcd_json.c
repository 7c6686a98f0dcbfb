/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the parsers of etcd's v3 gateway answers (control/store/kl_etcd_json.c), which read
 * whatever an endpoint sends. Input: one selector byte (which parser), then the answer body.
 * Invariants beyond "no crash, no leak, no over-read": a refused answer leaves an empty result
 * and a message; an accepted one has consistent lengths (every key and value NUL-terminated
 * inside its allocation), counts that match its arrays, no negative revision in its header;
 * base64 decoding re-encodes to a string that decodes to the same bytes.
 */
#include <string.h>

#include "fuzz_common.h"
#include "kl_etcd.h"

static void check_kv(const struct kl_etcd_kv *kv)
{
	FZ_CHECK(kv->key && kv->value == kv->key + kv->key_len + 1);
	FZ_CHECK(kv->key[kv->key_len] == 0 && kv->value[kv->value_len] == 0);
}

static void check_range(const struct kl_etcd_range *r)
{
	FZ_CHECK((r->n == 0) == (r->kvs == NULL));
	FZ_CHECK(r->count >= 0 && r->hdr.revision >= 0);
	for (size_t i = 0; i < r->n; i++)
		check_kv(&r->kvs[i]);
}

static int is_error(int rc)
{
	return rc == KL_ETCD_EPROTO || rc == KL_ETCD_ESERVER || rc == KL_ETCD_ECOMPACTED ||
	       rc == KL_ETCD_ENOTFOUND || rc == KL_ETCD_ENOMEM;
}

static void b64(const uint8_t *data, size_t size)
{
	uint8_t *out = malloc(size / 4 * 3 + 3);
	char *enc;
	uint8_t *again;
	long n, m;

	FZ_CHECK(out);
	n = kl_etcd_b64_decode((const char *)data, size, out);
	if (n < 0) {
		free(out);
		return;
	}
	FZ_CHECK((size_t)n <= size / 4 * 3 + 2);
	enc = malloc(kl_etcd_b64_len((size_t)n) + 1);
	again = malloc((size_t)n + 3);
	FZ_CHECK(enc && again);
	kl_etcd_b64_encode(out, (size_t)n, enc);
	FZ_CHECK(strlen(enc) == kl_etcd_b64_len((size_t)n));
	m = kl_etcd_b64_decode(enc, strlen(enc), again);
	FZ_CHECK(m == n && !memcmp(out, again, (size_t)n));
	free(out);
	free(enc);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body;
	char err[256];
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	len = size - 1;
	err[0] = 0;
	switch (data[0] % 9) {
	case 0: {
		struct kl_etcd_range r;

		rc = kl_etcd_parse_range(body, len, &r, err, sizeof(err));
		if (rc)
			FZ_CHECK(is_error(rc) && err[0] && r.n == 0 && !r.kvs);
		check_range(&r);
		kl_etcd_range_free(&r);
		break;
	}
	case 1: {
		struct kl_etcd_header h;

		rc = kl_etcd_parse_put(body, len, &h, err, sizeof(err));
		FZ_CHECK(rc ? is_error(rc) && err[0] : h.revision >= 0);
		break;
	}
	case 2: {
		struct kl_etcd_header h;
		int64_t d;

		rc = kl_etcd_parse_delete(body, len, &h, &d, err, sizeof(err));
		FZ_CHECK(rc ? is_error(rc) && err[0] && d == 0 : h.revision >= 0);
		break;
	}
	case 3: {
		struct kl_etcd_txn_result t;

		rc = kl_etcd_parse_txn(body, len, &t, err, sizeof(err));
		if (rc)
			FZ_CHECK(is_error(rc) && err[0] && t.n == 0 && !t.res);
		for (size_t i = 0; i < t.n; i++) {
			FZ_CHECK(t.res[i].kind <= KL_ETCD_OP_RANGE);
			check_range(&t.res[i].range);
		}
		kl_etcd_txn_result_free(&t);
		break;
	}
	case 4: {
		struct kl_etcd_lease l;

		rc = kl_etcd_parse_lease(body, len, &l, err, sizeof(err));
		FZ_CHECK(rc ? is_error(rc) && err[0] && l.id == 0 : l.ttl >= 0);
		break;
	}
	case 5: {
		struct kl_etcd_status s;

		rc = kl_etcd_parse_status(body, len, &s, err, sizeof(err));
		FZ_CHECK(rc ? is_error(rc) && err[0] : 1);
		FZ_CHECK(memchr(s.version, 0, sizeof(s.version)) != NULL);
		break;
	}
	case 6: {
		struct kl_etcd_watch_resp w;

		rc = kl_etcd_parse_watch(body, len, &w, err, sizeof(err));
		if (rc)
			FZ_CHECK(is_error(rc) && err[0] && w.n_events == 0 && !w.events);
		FZ_CHECK(memchr(w.cancel_reason, 0, sizeof(w.cancel_reason)) != NULL);
		for (size_t i = 0; i < w.n_events; i++) {
			FZ_CHECK(w.events[i].type == KL_ETCD_EV_PUT ||
				 w.events[i].type == KL_ETCD_EV_DELETE);
			check_kv(&w.events[i].kv);
		}
		kl_etcd_watch_resp_free(&w);
		break;
	}
	case 7: {
		int code;

		rc = kl_etcd_parse_error(body, len, &code, err, sizeof(err));
		FZ_CHECK(is_error(rc) && err[0]);
		break;
	}
	case 8:
		b64((const uint8_t *)body, len);
		break;
	}
	return 0;
}
