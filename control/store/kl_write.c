/* SPDX-License-Identifier: BSD-3-Clause */
/* keyline durable key writes: store first, then the key table (see kl_write.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_write.h"

static int start(struct kl_write *w, enum kl_write_op op, enum kl_table_kind kind,
		 const uint8_t *key, size_t len)
{
	memset(w, 0, sizeof(*w));
	if (!key || len < 1 || len > KL_TABLE_ID_MAX)
		return -EINVAL;
	w->op = (uint8_t)op;
	w->kind = (uint8_t)kind;
	w->key_len = (uint16_t)len;
	memcpy(w->key, key, len);
	return 0;
}

static int secret(struct kl_write *w, const uint8_t *s, unsigned len)
{
	if (!s || len < 1 || len > KL_WRITE_SECRET_MAX) {
		kl_write_wipe(w);
		return -EINVAL;
	}
	w->secret_len = (uint8_t)len;
	memcpy(w->secret, s, len);
	return 0;
}

static int groups(struct kl_write *w, const struct kl_group_ref *g, unsigned n)
{
	if (n > KL_TABLE_UE_GROUPS || (n && !g)) {
		kl_write_wipe(w);
		return -EINVAL;
	}
	w->ngroups = (uint8_t)n;
	if (n)
		memcpy(w->groups, g, sizeof(g[0]) * n);
	return 0;
}

static int imsi_key(struct kl_write *w, enum kl_write_op op, const char *imsi)
{
	size_t n = imsi ? strnlen(imsi, KL_TABLE_IMSI_MAX) : 0;

	if (n < 1 || n >= KL_TABLE_IMSI_MAX)
		return -EINVAL;
	return start(w, op, KL_TK_E2M, (const uint8_t *)imsi, n);
}

int kl_write_ue(struct kl_write *w, const uint8_t *id, uint16_t len, const uint8_t *muk,
		unsigned muk_len, const struct kl_group_ref *g, unsigned ngroups,
		uint64_t expires, uint8_t services)
{
	int rc = start(w, KL_WOP_PUT_UE, KL_TK_UE, id, len);

	if (rc || (rc = groups(w, g, ngroups)) || (rc = secret(w, muk, muk_len)))
		return rc;
	w->expires = expires;
	w->services = services ? services : KL_SVC_DEFAULT;
	return 0;
}

int kl_write_ue_groups(struct kl_write *w, const uint8_t *id, uint16_t len,
		       const struct kl_group_ref *g, unsigned ngroups)
{
	int rc = start(w, KL_WOP_SET_GROUPS, KL_TK_UE, id, len);

	return rc ? rc : groups(w, g, ngroups);
}

int kl_write_ue_services(struct kl_write *w, const uint8_t *id, uint16_t len, uint8_t services)
{
	int rc = start(w, KL_WOP_SET_SERVICES, KL_TK_UE, id, len);

	if (rc)
		return rc;
	if (!services || (services & ~KL_SVC_ALL))
		return -EINVAL;
	w->services = services;
	return 0;
}

void kl_write_group_key(const struct kl_group_ref *ref, uint8_t key[5])
{
	memcpy(key, ref->domain, 3);
	key[3] = (uint8_t)(ref->group >> 8);
	key[4] = (uint8_t)ref->group;
}

char *kl_write_group_name(const struct kl_group_ref *ref, char out[16])
{
	snprintf(out, 16, "%02x%02x%02x:%u", ref->domain[0], ref->domain[1], ref->domain[2],
		 (unsigned)ref->group);
	return out;
}

int kl_write_group(struct kl_write *w, const struct kl_group_ref *ref, const struct kl_group *g)
{
	uint8_t key[5];
	int rc;

	if (!ref || !g)
		return -EINVAL;
	kl_write_group_key(ref, key);
	rc = start(w, KL_WOP_PUT_GROUP, KL_TK_GROUP, key, sizeof(key));
	if (!rc)
		w->group = *g;
	return rc;
}

int kl_write_emse(struct kl_write *w, const uint8_t *id, uint16_t len, const uint8_t *psk,
		  unsigned psk_len)
{
	int rc = start(w, KL_WOP_PUT_EMSE, KL_TK_EMSE, id, len);

	return rc ? rc : secret(w, psk, psk_len);
}

int kl_write_e2m(struct kl_write *w, const char *imsi, const uint8_t key[32], uint32_t key_id,
		 uint64_t expires)
{
	int rc = imsi_key(w, KL_WOP_PUSH_E2M, imsi);

	if (rc || (rc = secret(w, key, 32)))
		return rc;
	w->key_id = key_id;
	w->expires = expires;
	return 0;
}

int kl_write_e2m_del_key(struct kl_write *w, const char *imsi, uint32_t key_id)
{
	int rc = imsi_key(w, KL_WOP_DEL_E2M_KEY, imsi);

	w->key_id = key_id;
	return rc;
}

int kl_write_appid(struct kl_write *w, const uint8_t *appid, uint16_t len, const char *imsi)
{
	size_t n = imsi ? strnlen(imsi, KL_TABLE_IMSI_MAX) : 0;
	int rc = start(w, KL_WOP_PUT_APPID, KL_TK_APPID, appid, len);

	if (rc)
		return rc;
	if (n < 1 || n >= KL_TABLE_IMSI_MAX)
		return -EINVAL;
	memcpy(w->imsi, imsi, n);
	return 0;
}

int kl_write_pair(struct kl_write *w, const uint8_t *peer, uint16_t len, const uint8_t *key,
		  unsigned key_len, uint64_t expires)
{
	int rc = start(w, KL_WOP_PUT_PAIR, KL_TK_PAIR, peer, len);

	if (rc || (rc = secret(w, key, key_len)))
		return rc;
	w->expires = expires;
	return 0;
}

int kl_write_del(struct kl_write *w, enum kl_table_kind kind, const uint8_t *key, uint16_t len)
{
	if ((unsigned)kind >= KL_TK__COUNT)
		return -EINVAL;
	return start(w, KL_WOP_DEL, kind, key, len);
}

static int naf_start(struct kl_write *w, enum kl_write_op op, const struct kl_store_naf *n)
{
	memset(w, 0, sizeof(*w));
	if (kl_store_naf_check(n))
		return -EINVAL;
	w->op = (uint8_t)op;
	w->kind = KL_TK__COUNT;
	w->naf = *n;
	w->naf.invalidated = op == KL_WOP_NAF_INVALIDATE;
	return 0;
}

int kl_write_naf_key(struct kl_write *w, const struct kl_store_naf *n, const uint8_t key[32])
{
	int rc = naf_start(w, KL_WOP_NAF_PUT, n);

	return rc ? rc : secret(w, key, KL_STORE_NAF_KEY_LEN);
}

int kl_write_naf_invalidate(struct kl_write *w, const struct kl_store_naf *n)
{
	return naf_start(w, KL_WOP_NAF_INVALIDATE, n);
}

int kl_write_naf_del(struct kl_write *w, const struct kl_store_naf *n)
{
	return naf_start(w, KL_WOP_NAF_DEL, n);
}

int kl_write_naf_block(struct kl_write *w, enum kl_store_naf_block_kind kind, const char *value,
		       int on, uint64_t now)
{
	memset(w, 0, sizeof(*w));
	if (kl_store_naf_block_check(kind, value))
		return -EINVAL;
	w->op = (uint8_t)(on ? KL_WOP_NAF_BLOCK : KL_WOP_NAF_UNBLOCK);
	w->kind = KL_TK__COUNT;
	w->naf_block_kind = (uint8_t)kind;
	snprintf(w->naf.device_id, sizeof(w->naf.device_id), "%s", value);
	w->naf_now = now;
	return 0;
}

int kl_write_is_naf(const struct kl_write *w)
{
	return w->op >= KL_WOP_NAF_PUT && w->op <= KL_WOP_NAF_UNBLOCK;
}

static const char *what_name(const struct kl_write *w)
{
	if (!kl_write_is_naf(w))
		return kl_table_kind_name((enum kl_table_kind)w->kind);
	return w->op >= KL_WOP_NAF_BLOCK ? "NAF blocklist" : "NAF key";
}

void kl_write_wipe(struct kl_write *w)
{
	if (w)
		kl_memzero(w, sizeof(*w));
}

static void fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t cap, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(out, cap, f, ap);
	va_end(ap);
}

static void result(struct kl_write_result *res, int rc, enum kl_write_where where)
{
	memset(res, 0, sizeof(*res));
	res->rc = rc;
	res->where = (uint8_t)where;
}

char *kl_write_table_error(int rc, enum kl_table_kind kind, char *out, size_t cap)
{
	const char *name = kl_table_kind_name(kind);

	switch (rc) {
	case -ENOSPC:
		fmt(out, cap, "table full for %s", kl_table_kind_plural(kind));
		break;
	case -ENOENT:
		fmt(out, cap, "no such %s entry", name);
		break;
	case -EOPNOTSUPP: /* kl_table_set_ue_services: dh for a MUK the table holds in chunks */
		fmt(out, cap,
		    "the %s entry's MUK is over 32 bytes and not stored here: put it again with "
		    "its MUK and services to give it the dh service", name);
		break;
	case -EINVAL:
		fmt(out, cap, "the key table refused the %s entry as invalid", name);
		break;
	default:
		fmt(out, cap, "%s entry: %s", name, strerror(-rc));
	}
	return out;
}

/* A put-group's key group, back from its table key (kl_write_group_key). */
static struct kl_group_ref group_ref(const struct kl_write *w)
{
	struct kl_group_ref ref = { .group = (uint16_t)(w->key[3] << 8 | w->key[4]) };

	memcpy(ref.domain, w->key, 3);
	return ref;
}

static int store_write(const struct kl_writer *wr, const struct kl_write *w)
{
	struct kl_store *s = wr->store;
	const char *imsi = (const char *)w->key;

	switch (w->op) {
	case KL_WOP_PUT_UE:
		return kl_store_put_ue_svc(s, w->key, w->key_len, w->secret, w->secret_len,
					   w->groups, w->ngroups, w->expires, w->services);
	case KL_WOP_SET_GROUPS:
		return kl_store_set_ue_groups(s, w->key, w->key_len, w->groups, w->ngroups);
	case KL_WOP_SET_SERVICES:
		return kl_store_set_ue_services(s, w->key, w->key_len, w->services);
	case KL_WOP_PUT_GROUP: {
		struct kl_group_ref ref = group_ref(w);

		return kl_store_put_group(s, &ref, &w->group);
	}
	case KL_WOP_PUT_EMSE:
		return kl_store_put_emse(s, w->key, w->key_len, w->secret, w->secret_len);
	case KL_WOP_PUSH_E2M:
		return kl_store_push_e2m(s, imsi, w->secret, w->key_id, w->expires,
					 wr->e2m_ring ? wr->e2m_ring : 4);
	case KL_WOP_DEL_E2M_KEY:
		return kl_store_del_e2m_key(s, imsi, w->key_id);
	case KL_WOP_PUT_APPID:
		return kl_store_put_appid(s, w->key, w->key_len, w->imsi);
	case KL_WOP_PUT_PAIR:
		return kl_store_put_pair(s, w->key, w->key_len, w->secret, w->secret_len,
					 w->expires);
	case KL_WOP_DEL:
		return kl_store_del(s, (enum kl_table_kind)w->kind, w->key, w->key_len);
	case KL_WOP_NAF_PUT:
		return kl_store_naf_put(s, &w->naf, w->secret);
	case KL_WOP_NAF_INVALIDATE:
		return kl_store_naf_put(s, &w->naf, NULL);
	case KL_WOP_NAF_DEL:
		return kl_store_naf_del(s, &w->naf);
	case KL_WOP_NAF_BLOCK:
	case KL_WOP_NAF_UNBLOCK:
		return kl_store_naf_block(s, (enum kl_store_naf_block_kind)w->naf_block_kind,
					  w->naf.device_id, w->op == KL_WOP_NAF_BLOCK, w->naf_now);
	}
	return -EINVAL;
}

/* Changes and deletes of an entry the store does not hold: a test population's (table only). */
static int table_only_ok(const struct kl_write *w)
{
	return w->op == KL_WOP_SET_GROUPS || w->op == KL_WOP_SET_SERVICES ||
	       w->op == KL_WOP_DEL_E2M_KEY || w->op == KL_WOP_DEL;
}

int kl_write_stage(const struct kl_writer *wr, struct kl_write *w, struct kl_write_result *res)
{
	struct kl_table_key tk = { .id = w->key, .len = w->key_len };
	const void *e = NULL;
	const char *m;
	int rc;

	result(res, 0, KL_WR_OK);
	w->existed = !kl_write_is_naf(w) &&
		     kl_table_lookup_bulk(wr->table, (enum kl_table_kind)w->kind, &tk, 1, &e) && e;
	w->stored = 0;
	w->in_store = 0;
	if (!wr->store)
		return 0;
	if (kl_write_is_naf(w)) {
		rc = store_write(wr, w);
		w->stored = rc == 0;
		if (!rc)
			return 0;
		result(res, rc, KL_WR_STORE);
		m = kl_store_last_error(wr->store);
		fmt(res->msg, sizeof(res->msg), "store: %s %s", what_name(w),
		    m[0] ? m : strerror(-rc));
		return rc;
	}
	/* a put the table refuses undoes a new entry only: not one the store held already (e.g. a
	 * group whose rotated MSKs the table refused, kept stored for the next start) */
	if (!table_only_ok(w))
		w->in_store = kl_store_has(wr->store, (enum kl_table_kind)w->kind, w->key,
					   w->key_len) != 0;
	rc = store_write(wr, w);
	if (rc == -ENOENT && table_only_ok(w))
		return 0;
	if (!rc) {
		w->stored = 1;
		return 0;
	}
	result(res, rc, KL_WR_STORE);
	m = kl_store_last_error(wr->store);
	if (rc == -ENOSPC)
		fmt(res->msg, sizeof(res->msg),
		    "store: full for %s (map_size reached; raise store.map_size_mb)%s%s",
		    kl_table_kind_name(w->kind), m[0] ? ": " : "", m);
	else
		fmt(res->msg, sizeof(res->msg), "store: %s entry not stored: %s",
		    kl_table_kind_name(w->kind), m[0] ? m : strerror(-rc));
	return rc;
}

static int table_write(const struct kl_writer *wr, const struct kl_write *w)
{
	struct kl_table *t = wr->table;
	const char *imsi = (const char *)w->key;

	switch (w->op) {
	case KL_WOP_PUT_UE: {
		struct kl_ue_put p = { .id = w->key, .id_len = w->key_len, .muk = w->secret,
				       .muk_len = w->secret_len, .groups = w->groups,
				       .ngroups = w->ngroups, .expires = w->expires,
				       .services = w->services };
		int rc = -EINVAL;

		kl_table_put_ue_bulk(t, &p, 1, &rc);
		return rc;
	}
	case KL_WOP_SET_GROUPS:
		return kl_table_set_ue_groups(t, w->key, w->key_len, w->groups, w->ngroups);
	case KL_WOP_SET_SERVICES: {
		int rc = kl_table_set_ue_services(t, w->key, w->key_len, w->services);

		/* the dh service for a MUK over 32 bytes: its public value needs the whole MUK,
		 * which only the store holds (the table keeps the chunks' states) */
		if (rc == -EOPNOTSUPP && w->stored)
			rc = kl_store_load_ue(wr->store, t, w->key, w->key_len);
		return rc;
	}
	case KL_WOP_PUT_GROUP: {
		struct kl_group_ref ref = group_ref(w);

		return kl_table_put_group(t, &ref, &w->group);
	}
	case KL_WOP_PUT_EMSE:
		return kl_table_put_emse(t, w->key, w->key_len, w->secret, w->secret_len);
	case KL_WOP_PUSH_E2M:
		return kl_table_push_e2m(t, imsi, w->secret, w->key_id, w->expires);
	case KL_WOP_DEL_E2M_KEY:
		return kl_table_del_e2m_key(t, imsi, w->key_id);
	case KL_WOP_PUT_APPID:
		return kl_table_put_appid(t, w->key, w->key_len, w->imsi);
	case KL_WOP_PUT_PAIR:
		return kl_table_put_pair(t, w->key, w->key_len, w->secret, w->secret_len,
					 w->expires);
	case KL_WOP_DEL:
		return kl_table_del(t, (enum kl_table_kind)w->kind, w->key, w->key_len);
	}
	return -EINVAL;
}

/* The table refused a write the store took: undo it in the store where that can be done. */
static void undo(const struct kl_writer *wr, const struct kl_write *w,
		 const struct kl_group_ref *prev, unsigned nprev, uint8_t prev_svc,
		 struct kl_write_result *res)
{
	const char *name = kl_table_kind_name(w->kind);
	int rc = -EINVAL;

	switch (w->op) {
	case KL_WOP_SET_GROUPS:
		rc = kl_store_set_ue_groups(wr->store, w->key, w->key_len, prev, nprev);
		break;
	case KL_WOP_SET_SERVICES:
		rc = kl_store_set_ue_services(wr->store, w->key, w->key_len, prev_svc);
		break;
	default:
		if (!w->existed && !w->in_store)
			rc = kl_store_del(wr->store, (enum kl_table_kind)w->kind, w->key,
					  w->key_len);
	}
	res->undone = rc == 0;
	if (res->undone)
		fmt(res->note, sizeof(res->note),
		    "the key table refused a stored %s change (%s): undone in the store", name,
		    strerror(-res->rc));
	else
		fmt(res->note, sizeof(res->note),
		    "store: the %s change was stored but the key table kept its previous value "
		    "(%s): the stored value takes effect at the next start",
		    name, strerror(-res->rc));
}

int kl_write_apply(const struct kl_writer *wr, const struct kl_write *w,
		   struct kl_write_result *res)
{
	struct kl_group_ref prev[KL_TABLE_UE_GROUPS];
	unsigned nprev = 0;
	uint8_t prev_svc = KL_SVC_DEFAULT;
	int rc, have_prev = 1;

	/* what the table holds before a UE change: the store is put back to it on a refusal (a UE
	 * the table does not hold leaves the store's change as it is) */
	if (w->stored && w->op == KL_WOP_SET_GROUPS)
		have_prev = !kl_table_get_ue(wr->table, w->key, w->key_len, prev, &nprev, NULL);
	if (kl_write_is_naf(w)) { /* no table side: the Key Center's index follows the commit */
		result(res, 0, KL_WR_OK);
		return 0;
	}
	if (w->stored && w->op == KL_WOP_SET_SERVICES)
		have_prev = !kl_table_get_ue_services(wr->table, w->key, w->key_len, &prev_svc);
	rc = table_write(wr, w);
	result(res, rc, rc < 0 ? KL_WR_TABLE : KL_WR_OK);
	if (rc >= 0)
		return rc;
	kl_write_table_error(rc, (enum kl_table_kind)w->kind, res->msg, sizeof(res->msg));
	/* a delete the table refused (no such entry there) is complete in the store */
	if (w->stored && have_prev && !wr->keep_stored && w->op != KL_WOP_DEL &&
	    w->op != KL_WOP_DEL_E2M_KEY)
		undo(wr, w, prev, nprev, prev_svc, res);
	return rc;
}

int kl_write_do(const struct kl_writer *wr, struct kl_write *w, struct kl_write_result *res)
{
	int rc = kl_write_stage(wr, w, res);

	return rc ? rc : kl_write_apply(wr, w, res);
}
