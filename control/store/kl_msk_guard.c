/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The MSK-ID guard (see kl_msk_guard.h): create-if-absent, else read, in one etcd transaction.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_msk_guard.h"

#define KEY_MAX 1024

void kl_msk_claim_free(struct kl_msk_claim *c)
{
	if (!c)
		return;
	free(c->value);
	c->value = NULL;
	c->value_len = 0;
}

size_t kl_msk_guard_key(const char *prefix, const char *group, uint32_t msk_id, char *out,
			size_t cap)
{
	size_t plen;
	int n;

	if (!prefix || !group || !*group || strchr(group, '/') || !out)
		return 0;
	plen = strlen(prefix);
	while (plen && prefix[plen - 1] == '/')
		plen--;
	n = snprintf(out, cap, "%.*s/msk/%s/%08" PRIx32, (int)plen, prefix, group, msk_id);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Copy what etcd holds into out. */
static int take(struct kl_msk_claim *out, const struct kl_etcd_kv *kv, const uint8_t *mine,
		size_t len)
{
	out->value = malloc(kv->value_len ? kv->value_len : 1);
	if (!out->value)
		return KL_ETCD_ENOMEM;
	memcpy(out->value, kv->value, kv->value_len);
	out->value_len = kv->value_len;
	out->create_revision = kv->create_revision;
	out->ours = kv->value_len == len && !memcmp(kv->value, mine, len);
	return 0;
}

int kl_msk_claim(struct kl_etcd *c, const char *prefix, const char *group, uint32_t msk_id,
		 const uint8_t *wrapped, size_t len, struct kl_msk_claim *out)
{
	char key[KEY_MAX];
	size_t klen = kl_msk_guard_key(prefix, group, msk_id, key, sizeof(key));
	struct kl_etcd_cmp cmp;
	struct kl_etcd_op put, get;
	struct kl_etcd_txn_result t;
	struct kl_etcd_range r;
	int rc;

	if (!out)
		return KL_ETCD_EINVAL;
	memset(out, 0, sizeof(*out));
	if (!c || !klen || !wrapped || !len || len > KL_MSK_GUARD_VALUE_MAX)
		return KL_ETCD_EINVAL;
	cmp = (struct kl_etcd_cmp){ .key = (const uint8_t *)key, .key_len = klen,
				    .target = KL_ETCD_CREATE, .op = KL_ETCD_EQUAL, .number = 0 };
	put = (struct kl_etcd_op){ .kind = KL_ETCD_OP_PUT, .key = (const uint8_t *)key,
				   .key_len = klen, .value = wrapped, .value_len = len };
	get = (struct kl_etcd_op){ .kind = KL_ETCD_OP_RANGE, .key = (const uint8_t *)key,
				   .key_len = klen };
	rc = kl_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t);
	if (rc == KL_ETCD_EUNKNOWN) {
		/* applied or not: what is there now is the answer (ours or the winner's) */
		rc = kl_etcd_get(c, key, klen, &r);
		if (rc)
			return rc;
		if (r.n != 1) {
			kl_etcd_range_free(&r);
			return KL_ETCD_EUNKNOWN;
		}
		out->created = -1;
		out->revision = r.hdr.revision;
		rc = take(out, &r.kvs[0], wrapped, len);
		kl_etcd_range_free(&r);
		return rc;
	}
	if (rc)
		return rc;
	out->revision = t.hdr.revision;
	if (t.succeeded) {
		out->created = 1;
		out->ours = 1;
		out->create_revision = t.hdr.revision;
		out->value = malloc(len);
		if (!out->value) {
			kl_etcd_txn_result_free(&t);
			return KL_ETCD_ENOMEM;
		}
		memcpy(out->value, wrapped, len);
		out->value_len = len;
		kl_etcd_txn_result_free(&t);
		return 0;
	}
	/* the failure branch read the record in the same revision as the compare */
	if (t.n != 1 || t.res[0].kind != KL_ETCD_OP_RANGE || t.res[0].range.n != 1) {
		kl_etcd_txn_result_free(&t);
		return KL_ETCD_EPROTO;
	}
	rc = take(out, &t.res[0].range.kvs[0], wrapped, len);
	kl_etcd_txn_result_free(&t);
	return rc;
}
