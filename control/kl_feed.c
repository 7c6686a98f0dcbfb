/* SPDX-License-Identifier: BSD-3-Clause */
/* keylined's side of the HSS feed: see kl_feed.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_feed.h"

struct dia_ctx;

struct kl_feed {
	struct kl_table *table;
	struct kl_store *store;
	uint32_t cap[KL_TK__COUNT];
	unsigned e2m_ring;
	void (*log)(void *arg, enum kl_config_log_level level, const char *msg);
	void *log_arg;
	struct dia_ctx *ctx; /* the poll's store batch; NULL without a store */
};

static void flog(const struct kl_feed *f, enum kl_config_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void flog(const struct kl_feed *f, enum kl_config_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->log)
		f->log(f->log_arg, level, msg);
	else
		fprintf(stderr, "keyline feed: %s: %s\n", kl_config_log_level_name(level), msg);
}

#define DIA_BATCH KL_FEED_BATCH
_Static_assert(KL_DIAMETER_MAX_GROUPS == KL_TABLE_UE_GROUPS,
	       "the feed and keylinectl put-ue take as many key groups as a UE holds");

enum dia_opcode { DOP_PUT_UE, DOP_SET_GROUPS, DOP_DEL, DOP_PUSH_E2M, DOP_DEL_E2M_KEY,
		  DOP_PUT_EMSE, DOP_PUT_APPID };

/* After a queued write: the entry exists, does not, or may (an e2m key removed by id). */
enum { DIA_ABSENT = 0, DIA_PRESENT = 1, DIA_UNKNOWN = 2 };

struct dia_op {
	uint8_t op;	  /* enum dia_opcode */
	uint8_t kind;	  /* enum kl_table_kind */
	uint8_t after;	  /* DIA_ABSENT/PRESENT/UNKNOWN */
	uint8_t was_new;  /* a put of an entry that did not exist: undone in the store if the
			     table refuses it */
	uint16_t key_len;
	uint8_t key[KL_TABLE_ID_MAX + 1]; /* identity bytes or IMSI digits (NUL after) */
	char imsi[KL_TABLE_IMSI_MAX];	  /* put-appid: the IMSI it maps to */
	uint8_t secret_len;
	uint8_t secret[KL_DIAMETER_KEY_MAX]; /* MUK, PSK or e2m_int_key: wiped after use */
	uint32_t key_id;
	uint64_t expires; /* put-ue, push-e2m: NTP timestamp, 0 = never */
	uint8_t ngroups; /* put-ue, set-groups: the UE's groups after this write */
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
};

struct dia_ctx {
	struct kl_feed *d;
	int batch;			 /* a store batch is open */
	unsigned n;			 /* queued table writes */
	int64_t delta[KL_TK__COUNT];	 /* entries the queued writes add (or remove) */
	struct dia_op ops[DIA_BATCH];
};

static const char *const dia_kind_word[KL_TK__COUNT] = { "UE", "key group", "EMSE", "IMSI",
							  "application identity" };


static void dia_drop_ops(struct dia_ctx *c)
{
	kl_memzero(c->ops, sizeof(c->ops[0]) * c->n);
	c->n = 0;
	memset(c->delta, 0, sizeof(c->delta));
}

static uint32_t dia_cap(const struct kl_feed *d, enum kl_table_kind k)
{
	return d->cap[k];
}

/* The newest queued write on (kind, key), or NULL. */
static const struct dia_op *dia_pending(const struct dia_ctx *c, enum kl_table_kind kind,
					const uint8_t *key, uint16_t len)
{
	for (unsigned i = c->n; i-- > 0;) {
		const struct dia_op *o = &c->ops[i];

		if (o->kind == kind && o->key_len == len && !memcmp(o->key, key, len))
			return o;
	}
	return NULL;
}

/* Does the entry exist once the queued writes are applied? */
static int dia_exists(struct dia_ctx *c, enum kl_table_kind kind, const uint8_t *key,
		      uint16_t len)
{
	const struct dia_op *o = dia_pending(c, kind, key, len);
	struct kl_table_key tk = { .id = key, .len = len };
	const void *e = NULL;

	if (o)
		return o->after;
	/* the writer thread may look up: it is the one that recycles entries */
	return kl_table_lookup_bulk(c->d->table, kind, &tk, 1, &e) && e ? DIA_PRESENT : DIA_ABSENT;
}

/* A UE's groups once the queued writes are applied. @return 0 or -ENOENT. */
static int dia_ue_groups(struct kl_feed *d, const uint8_t *id, uint16_t len,
			 struct kl_group_ref *groups, unsigned *ng)
{
	const struct dia_op *o = d->ctx ? dia_pending(d->ctx, KL_TK_UE, id, len) : NULL;

	if (o) {
		if (o->after != DIA_PRESENT)
			return -ENOENT;
		memcpy(groups, o->groups, sizeof(o->groups[0]) * o->ngroups);
		*ng = o->ngroups;
		return 0;
	}
	return kl_table_get_ue(d->table, id, len, groups, ng, NULL) ? -ENOENT : 0;
}

/* Room in the table for one more entry of a kind, counting the queued writes. */
static int dia_room(struct dia_ctx *c, enum kl_table_kind kind)
{
	int64_t n = (int64_t)kl_table_count(c->d->table, kind) + c->delta[kind];

	if (n >= (int64_t)dia_cap(c->d, kind)) {
		flog(c->d, KL_CONFIG_LOG_WARNING, "the key table is full for %s entries (%u, "
		      "config table.*): request refused", dia_kind_word[kind], dia_cap(c->d, kind));
		return -ENOSPC;
	}
	return 0;
}

/* Open the poll's store batch before its first write. */
static int dia_begin(struct dia_ctx *c)
{
	int rc;

	if (c->n >= DIA_BATCH)
		return -EBUSY; /* cannot happen: one queued write per request, DIA_BATCH per poll */
	if (c->batch)
		return 0;
	rc = kl_store_txn_begin(c->d->store);
	if (rc) {
		flog(c->d, KL_CONFIG_LOG_ERROR, "store batch: %s", kl_store_last_error(c->d->store));
		return rc;
	}
	c->batch = 1;
	return 0;
}

/* Queue a table write (the store write is staged). */
static struct dia_op *dia_queue(struct dia_ctx *c, enum dia_opcode op, enum kl_table_kind kind,
				const uint8_t *key, uint16_t len, int after)
{
	struct dia_op *o = &c->ops[c->n++];

	memset(o, 0, sizeof(*o));
	o->op = (uint8_t)op;
	o->kind = (uint8_t)kind;
	o->after = (uint8_t)after;
	o->key_len = len;
	memcpy(o->key, key, len);
	return o;
}

static int dia_store_error(struct dia_ctx *c, int rc, const char *what)
{
	if (rc != -ENOENT)
		flog(c->d, KL_CONFIG_LOG_ERROR, "store: %s not staged: %s", what,
		      kl_store_last_error(c->d->store)[0] ? kl_store_last_error(c->d->store)
							  : strerror(-rc));
	return rc;
}

static int h_push_muk(void *arg, const uint8_t *id, uint16_t len, const uint8_t *muk,
		      unsigned muk_len, uint64_t expires)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
	unsigned ng = 0;
	int present, rc;
	struct dia_op *o;

	/* expires (NTP timestamp, 0 = never) goes to store and table: from it on the engine
	 * answers the UE ERR 12 detail 3 (bootstrap again) */
	if (muk_len > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN || len > KL_TABLE_ID_MAX)
		return -EINVAL;
	/* the UE keeps its authorised groups */
	present = dia_ue_groups(d, id, len, groups, &ng) == 0;
	if (!c)
		return kl_table_put_ue_exp(d->table, id, len, muk, muk_len, groups, ng, expires);
	if (!present && (rc = dia_room(c, KL_TK_UE)))
		return rc;
	if ((rc = dia_begin(c)))
		return rc;
	rc = kl_store_put_ue_exp(d->store, id, len, muk, muk_len, groups, ng, expires);
	if (rc)
		return dia_store_error(c, rc, "UE");
	o = dia_queue(c, DOP_PUT_UE, KL_TK_UE, id, len, DIA_PRESENT);
	o->was_new = !present;
	o->secret_len = (uint8_t)muk_len;
	memcpy(o->secret, muk, muk_len);
	o->ngroups = (uint8_t)ng;
	memcpy(o->groups, groups, sizeof(groups[0]) * ng);
	o->expires = expires;
	c->delta[KL_TK_UE] += !present;
	return 0;
}

/* Replace an existing UE's groups (push UE-GROUPS, remove of some or all groups). */
static int dia_set_groups(struct kl_feed *d, const uint8_t *id, uint16_t len,
			  const struct kl_group_ref *groups, unsigned ng)
{
	struct dia_ctx *c = d->ctx;
	struct dia_op *o;
	int rc;

	if (!c)
		return kl_table_set_ue_groups(d->table, id, len, groups, ng);
	if ((rc = dia_begin(c)))
		return rc;
	rc = kl_store_set_ue_groups(d->store, id, len, groups, ng);
	/* -ENOENT: a UE of a test population (table only): its groups change in the table only */
	if (rc && rc != -ENOENT)
		return dia_store_error(c, rc, "UE groups");
	o = dia_queue(c, DOP_SET_GROUPS, KL_TK_UE, id, len, DIA_PRESENT);
	o->ngroups = (uint8_t)ng;
	memcpy(o->groups, groups, sizeof(groups[0]) * ng);
	return 0;
}

static int h_put_ue_groups(void *arg, const uint8_t *id, uint16_t len,
			   const struct kl_diameter_group *g, unsigned n)
{
	struct kl_feed *d = arg;
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS], cur[KL_TABLE_UE_GROUPS];
	unsigned ncur;

	if (n > KL_TABLE_UE_GROUPS) {
		flog(d, KL_CONFIG_LOG_WARNING, "a UE may hold at most %u key groups (got %u)",
		      KL_TABLE_UE_GROUPS, n);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		memcpy(groups[i].domain, g[i].domain, 3);
		groups[i].group = g[i].group;
		for (unsigned k = 0; k < i; k++)
			if (!memcmp(groups[k].domain, groups[i].domain, 3) &&
			    groups[k].group == groups[i].group)
				return -EINVAL;
	}
	if (len > KL_TABLE_ID_MAX || dia_ue_groups(d, id, len, cur, &ncur))
		return -ENOENT; /* a push for an unknown UE: DIAMETER_UNABLE_TO_COMPLY */
	return dia_set_groups(d, id, len, groups, n);
}

static int h_remove_ue_groups(void *arg, const uint8_t *id, uint16_t len,
			      const struct kl_diameter_group *g, unsigned n)
{
	struct kl_feed *d = arg;
	struct kl_group_ref cur[KL_TABLE_UE_GROUPS], keep[KL_TABLE_UE_GROUPS];
	unsigned ncur = 0, nk = 0;

	if (len > KL_TABLE_ID_MAX || dia_ue_groups(d, id, len, cur, &ncur))
		return -ENOENT; /* a remove: success, nothing to do */
	for (unsigned i = 0; i < ncur; i++) {
		int drop = n == 0; /* no list: every group */

		for (unsigned k = 0; k < n && !drop; k++)
			drop = !memcmp(cur[i].domain, g[k].domain, 3) && cur[i].group == g[k].group;
		if (!drop)
			keep[nk++] = cur[i];
	}
	if (nk == ncur)
		return -ENOENT; /* none of the listed groups was held */
	return dia_set_groups(d, id, len, keep, nk);
}

/* Delete a whole entry (UE, EMSE, IMSI, application identity). */
static int dia_del(struct kl_feed *d, enum kl_table_kind kind, const uint8_t *key,
		   uint16_t len)
{
	struct dia_ctx *c = d->ctx;
	int present, rc;

	if (!c)
		return kl_table_del(d->table, kind, key, len);
	present = dia_exists(c, kind, key, len);
	if (present == DIA_ABSENT)
		return -ENOENT;
	if ((rc = dia_begin(c)))
		return rc;
	rc = kl_store_del(d->store, kind, key, len);
	if (rc && rc != -ENOENT) /* -ENOENT: a test population's entry, in the table only */
		return dia_store_error(c, rc, dia_kind_word[kind]);
	dia_queue(c, DOP_DEL, kind, key, len, DIA_ABSENT);
	c->delta[kind] -= present == DIA_PRESENT;
	return 0;
}

static int h_remove_muk(void *arg, const uint8_t *id, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_UE, id, len);
}

static int h_push_e2m(void *arg, const char *imsi, uint32_t key_id,
		      const uint8_t key[KL_DIAMETER_E2M_KEY_LEN], uint64_t expires)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	uint16_t len = (uint16_t)strlen(imsi);
	struct dia_op *o;
	int present, rc;

	if (!c)
		return kl_table_push_e2m(d->table, imsi, key, key_id, expires);
	if (len < 1 || len >= KL_TABLE_IMSI_MAX)
		return -EINVAL;
	present = dia_exists(c, KL_TK_E2M, (const uint8_t *)imsi, len);
	if (present != DIA_PRESENT && (rc = dia_room(c, KL_TK_E2M)))
		return rc;
	if ((rc = dia_begin(c)))
		return rc;
	/* the store keeps the same newest table.e2m_ring keys as the table */
	rc = kl_store_push_e2m(d->store, imsi, key, key_id, expires, d->e2m_ring);
	if (rc)
		return dia_store_error(c, rc, "e2m_int_key");
	o = dia_queue(c, DOP_PUSH_E2M, KL_TK_E2M, (const uint8_t *)imsi, len, DIA_PRESENT);
	o->was_new = present == DIA_ABSENT;
	o->secret_len = KL_DIAMETER_E2M_KEY_LEN;
	memcpy(o->secret, key, KL_DIAMETER_E2M_KEY_LEN);
	o->key_id = key_id;
	o->expires = expires;
	c->delta[KL_TK_E2M] += present != DIA_PRESENT;
	return 0;
}

static int h_remove_e2m(void *arg, const char *imsi, int has_key_id, uint32_t key_id)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	uint16_t len = (uint16_t)strlen(imsi);
	struct dia_op *o;
	int rc;

	if (!has_key_id)
		return dia_del(d, KL_TK_E2M, (const uint8_t *)imsi, len);
	if (!c)
		return kl_table_del_e2m_key(d->table, imsi, key_id);
	if (len < 1 || len >= KL_TABLE_IMSI_MAX ||
	    dia_exists(c, KL_TK_E2M, (const uint8_t *)imsi, len) == DIA_ABSENT)
		return -ENOENT;
	if ((rc = dia_begin(c)))
		return rc;
	rc = kl_store_del_e2m_key(d->store, imsi, key_id);
	if (rc && rc != -ENOENT)
		return dia_store_error(c, rc, "e2m_int_key removal");
	/* the IMSI goes when this was its last key: whether it stays is known once applied */
	o = dia_queue(c, DOP_DEL_E2M_KEY, KL_TK_E2M, (const uint8_t *)imsi, len, DIA_UNKNOWN);
	o->key_id = key_id;
	return 0;
}

static int h_put_appid(void *arg, const uint8_t *appid, uint16_t len, const char *imsi)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	struct dia_op *o;
	int present, rc;

	if (!c)
		return kl_table_put_appid(d->table, appid, len, imsi);
	if (len > KL_TABLE_ID_MAX || strlen(imsi) < 1 || strlen(imsi) >= KL_TABLE_IMSI_MAX)
		return -EINVAL;
	present = dia_exists(c, KL_TK_APPID, appid, len);
	if (!present && (rc = dia_room(c, KL_TK_APPID)))
		return rc;
	if ((rc = dia_begin(c)))
		return rc;
	rc = kl_store_put_appid(d->store, appid, len, imsi);
	if (rc)
		return dia_store_error(c, rc, "application identity");
	o = dia_queue(c, DOP_PUT_APPID, KL_TK_APPID, appid, len, DIA_PRESENT);
	o->was_new = !present;
	snprintf(o->imsi, sizeof(o->imsi), "%s", imsi);
	c->delta[KL_TK_APPID] += !present;
	return 0;
}

static int h_remove_appid(void *arg, const uint8_t *appid, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_APPID, appid, len);
}

static int h_put_emse(void *arg, const uint8_t *id, uint16_t len, const uint8_t *psk,
		      unsigned psk_len)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	struct dia_op *o;
	int present, rc;

	if (!c)
		return kl_table_put_emse(d->table, id, len, psk, psk_len);
	if (len > KL_TABLE_ID_MAX || psk_len > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN)
		return -EINVAL;
	present = dia_exists(c, KL_TK_EMSE, id, len);
	if (!present && (rc = dia_room(c, KL_TK_EMSE)))
		return rc;
	if ((rc = dia_begin(c)))
		return rc;
	rc = kl_store_put_emse(d->store, id, len, psk, psk_len);
	if (rc)
		return dia_store_error(c, rc, "EMSE");
	o = dia_queue(c, DOP_PUT_EMSE, KL_TK_EMSE, id, len, DIA_PRESENT);
	o->was_new = !present;
	o->secret_len = (uint8_t)psk_len;
	memcpy(o->secret, psk, psk_len);
	c->delta[KL_TK_EMSE] += !present;
	return 0;
}

static int h_remove_emse(void *arg, const uint8_t *id, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_EMSE, id, len);
}

/* One queued write into the table (after the commit). */
static int dia_apply(struct kl_feed *d, const struct dia_op *o)
{
	char imsi[KL_TABLE_IMSI_MAX + 1];

	switch (o->op) {
	case DOP_PUT_UE:
		return kl_table_put_ue_exp(d->table, o->key, o->key_len, o->secret, o->secret_len,
					   o->groups, o->ngroups, o->expires);
	case DOP_SET_GROUPS:
		return kl_table_set_ue_groups(d->table, o->key, o->key_len, o->groups, o->ngroups);
	case DOP_DEL: {
		int rc = kl_table_del(d->table, o->kind, o->key, o->key_len);

		return rc == -ENOENT ? 0 : rc;
	}
	case DOP_PUSH_E2M:
	case DOP_DEL_E2M_KEY:
		memcpy(imsi, o->key, o->key_len);
		imsi[o->key_len] = '\0';
		if (o->op == DOP_PUSH_E2M)
			return kl_table_push_e2m(d->table, imsi, o->secret, o->key_id, o->expires);
		{
			int rc = kl_table_del_e2m_key(d->table, imsi, o->key_id);

			return rc == -ENOENT ? 0 : rc;
		}
	case DOP_PUT_EMSE:
		return kl_table_put_emse(d->table, o->key, o->key_len, o->secret, o->secret_len);
	case DOP_PUT_APPID:
		return kl_table_put_appid(d->table, o->key, o->key_len, o->imsi);
	}
	return -EINVAL;
}

/* The commit hook: make the poll's batch durable, then apply its table writes in order. */
static int h_commit(void *arg)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	int rc = 0;

	if (c->batch) {
		c->batch = 0;
		rc = kl_store_txn_commit(d->store);
		if (rc) {
			flog(d, KL_CONFIG_LOG_ERROR,
			      "store commit of %u changes failed: %s (the key table is "
			      "unchanged)",
			      c->n, kl_store_last_error(d->store)[0] ? kl_store_last_error(d->store)
								     : strerror(-rc));
			dia_drop_ops(c);
			return rc;
		}
	}
	for (unsigned i = 0; i < c->n; i++) {
		const struct dia_op *o = &c->ops[i];
		int trc = dia_apply(d, o);

		if (trc >= 0)
			continue;
		/* checked beforehand, so this is rare (e.g. a 2-chunk MUK arena full) */
		if (o->was_new && kl_store_del(d->store, o->kind, o->key, o->key_len) == 0)
			flog(d, KL_CONFIG_LOG_ERROR,
			      "the key table refused a stored %s (%s): taken out of the "
			      "store again",
			      dia_kind_word[o->kind], strerror(-trc));
		else
			flog(d, KL_CONFIG_LOG_ERROR,
			      "the key table refused a stored %s change (%s): the stored "
			      "value takes effect at the next start",
			      dia_kind_word[o->kind], strerror(-trc));
	}
	dia_drop_ops(c);
	return 0;
}

/* After each kl_diameter_poll: a batch that no commit closed (every handler of the poll
 * failed) is dropped. */
static void dia_poll_done(struct kl_feed *d)
{
	struct dia_ctx *c = d->ctx;

	if (!c)
		return;
	if (c->batch) {
		kl_store_txn_abort(d->store);
		c->batch = 0;
	}
	dia_drop_ops(c);
}


struct kl_feed *kl_feed_create(const struct kl_feed_params *p)
{
	struct kl_feed *f;

	if (!p || !p->table || !p->cfg) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->table = p->table;
	f->store = p->store;
	f->cap[KL_TK_UE] = p->cfg->table.ues;
	f->cap[KL_TK_GROUP] = p->cfg->table.groups;
	f->cap[KL_TK_EMSE] = p->cfg->table.emses;
	f->cap[KL_TK_E2M] = p->cfg->table.imsis;
	f->cap[KL_TK_APPID] = p->cfg->table.appids;
	f->e2m_ring = p->cfg->table.e2m_ring;
	f->log = p->log;
	f->log_arg = p->log_arg;
	if (p->store) {
		f->ctx = calloc(1, sizeof(*f->ctx));
		if (!f->ctx) {
			free(f);
			return NULL;
		}
		f->ctx->d = f;
	}
	return f;
}

void kl_feed_handlers(struct kl_feed *f, struct kl_diameter_handlers *h)
{
	*h = (struct kl_diameter_handlers){
		.push_muk = h_push_muk,
		.push_e2m = h_push_e2m,
		.put_appid = h_put_appid,
		.put_emse = h_put_emse,
		.put_ue_groups = h_put_ue_groups,
		.remove_muk = h_remove_muk,
		.remove_e2m = h_remove_e2m,
		.remove_appid = h_remove_appid,
		.remove_emse = h_remove_emse,
		.remove_ue_groups = h_remove_ue_groups,
		.commit = f->store ? h_commit : NULL,
		.arg = f,
	};
}

void kl_feed_poll_done(struct kl_feed *f)
{
	if (f)
		dia_poll_done(f);
}

void kl_feed_free(struct kl_feed *f)
{
	if (!f)
		return;
	dia_poll_done(f);
	free(f->ctx);
	free(f);
}
