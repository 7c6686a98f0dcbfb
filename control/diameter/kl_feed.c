/* SPDX-License-Identifier: BSD-3-Clause */
/* keylined's side of the HSS feed: see kl_feed.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_feed.h"
#include "kl_write.h"

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
_Static_assert(KL_DIAMETER_SERVICES_ALL == KL_SVC_ALL &&
		       KL_SVC(MBMS) == 1 && KL_SVC(HM) == 2 && KL_SVC(DH) == 4 && KL_SVC(PROSE) == 8,
	       "KL-Services carries the key table's service bits");

/* After a queued write: the entry exists, does not, or may (an e2m key removed by id). */
enum { DIA_ABSENT = 0, DIA_PRESENT = 1, DIA_UNKNOWN = 2 };

/* A queued write: staged in the store's batch, applied to the table after the commit. */
struct dia_op {
	uint8_t after;	  /* DIA_ABSENT/PRESENT/UNKNOWN */
	uint8_t services; /* a UE's services after this write */
	struct kl_write w; /* its key copy is wiped after use */
};

/* The queue's index: (kind, key) -> 1 + the newest queued write on it, 0 empty (open
 * addressing, at most half full). */
#define DIA_SLOTS (4 * DIA_BATCH)
_Static_assert((DIA_SLOTS & (DIA_SLOTS - 1)) == 0, "DIA_SLOTS is a power of two");

struct dia_ctx {
	struct kl_feed *d;
	int batch;			 /* a store batch is open */
	unsigned n;			 /* queued table writes */
	int64_t delta[KL_TK__COUNT];	 /* entries the queued writes add (or remove) */
	uint32_t slot[DIA_SLOTS];
	struct dia_op ops[DIA_BATCH];
};

static void dia_drop_ops(struct dia_ctx *c)
{
	kl_memzero(c->ops, sizeof(c->ops[0]) * c->n);
	if (c->n)
		memset(c->slot, 0, sizeof(c->slot));
	c->n = 0;
	memset(c->delta, 0, sizeof(c->delta));
}

/* The index slot of (kind, key): the one holding it, or the empty one where it goes. */
static uint32_t *dia_slot(struct dia_ctx *c, enum kl_table_kind kind, const uint8_t *key,
			  uint16_t len)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (uint16_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 16777619u;
	for (h &= DIA_SLOTS - 1;; h = (h + 1) & (DIA_SLOTS - 1)) {
		const struct dia_op *o = c->slot[h] ? &c->ops[c->slot[h] - 1] : NULL;

		if (!o || (o->w.kind == kind && o->w.key_len == len && !memcmp(o->w.key, key, len)))
			return &c->slot[h];
	}
}

static struct kl_writer dia_writer(const struct kl_feed *d)
{
	return (struct kl_writer){ .table = d->table, .store = d->store, .e2m_ring = d->e2m_ring };
}

/* The newest queued write on (kind, key), or NULL. */
static const struct dia_op *dia_pending(struct dia_ctx *c, enum kl_table_kind kind,
					const uint8_t *key, uint16_t len)
{
	uint32_t *sl = dia_slot(c, kind, key, len);

	return *sl ? &c->ops[*sl - 1] : NULL;
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

/* A UE's groups and services once the queued writes are applied. @return 0 or -ENOENT. */
static int dia_ue(struct kl_feed *d, const uint8_t *id, uint16_t len, struct kl_group_ref *groups,
		  unsigned *ng, uint8_t *services)
{
	const struct dia_op *o = d->ctx ? dia_pending(d->ctx, KL_TK_UE, id, len) : NULL;

	if (o) {
		if (o->after != DIA_PRESENT)
			return -ENOENT;
		memcpy(groups, o->w.groups, sizeof(o->w.groups[0]) * o->w.ngroups);
		*ng = o->w.ngroups;
		*services = o->services;
		return 0;
	}
	if (kl_table_get_ue(d->table, id, len, groups, ng, NULL) ||
	    kl_table_get_ue_services(d->table, id, len, services))
		return -ENOENT;
	return 0;
}

/* Room in the table for one more entry of a kind, counting the queued writes. */
static int dia_room(struct dia_ctx *c, enum kl_table_kind kind)
{
	int64_t n = (int64_t)kl_table_count(c->d->table, kind) + c->delta[kind];

	if (n >= (int64_t)c->d->cap[kind]) {
		flog(c->d, KL_CONFIG_LOG_WARNING, "the key table is full for %s (%u, config "
		      "table.%s): request refused", kl_table_kind_plural(kind), c->d->cap[kind],
		      kl_table_kind_plural(kind));
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

/*
 * One write of a request (w, wiped here in every case). Without a store it goes to the table at
 * once. With one it is staged in the poll's store batch and queued for the table: present is
 * whether the entry exists now (counting the queue), after whether it does once this write is
 * applied, delta the entries it adds (1) or removes (-1) if it takes effect.
 */
static int dia_write(struct kl_feed *d, struct kl_write *w, int present, int after,
		     uint8_t services)
{
	struct dia_ctx *c = d->ctx;
	struct kl_writer wr = dia_writer(d);
	struct kl_write_result res;
	enum kl_table_kind kind = (enum kl_table_kind)w->kind;
	int delta = after == DIA_PRESENT ? present != DIA_PRESENT
					 : -(after == DIA_ABSENT && present == DIA_PRESENT);
	struct dia_op *o;
	int rc;

	if (!c) {
		rc = kl_write_do(&wr, w, &res);
		goto out;
	}
	if (delta > 0 && (rc = dia_room(c, kind)))
		goto out;
	if ((rc = dia_begin(c)))
		goto out;
	rc = kl_write_stage(&wr, w, &res);
	if (rc) {
		if (rc != -ENOENT)
			flog(d, KL_CONFIG_LOG_ERROR, "%s", res.msg);
		goto out;
	}
	o = &c->ops[c->n++];
	o->after = (uint8_t)after;
	o->services = services;
	o->w = *w;
	o->w.existed = present != DIA_ABSENT;
	*dia_slot(c, kind, o->w.key, o->w.key_len) = c->n; /* the newest on its key */
	c->delta[kind] += delta;
out:
	kl_write_wipe(w);
	return rc;
}

static int h_push_muk(void *arg, const uint8_t *id, uint16_t len, const uint8_t *muk,
		      unsigned muk_len, uint64_t expires, uint8_t new_services)
{
	struct kl_feed *d = arg;
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
	uint8_t services = KL_SVC_DEFAULT;
	unsigned ng = 0;
	struct kl_write w;
	int present;

	/* expires (NTP timestamp, 0 = never) goes to store and table: from it on the engine
	 * answers the UE ERR 12 detail 3 (bootstrap again) */
	if (muk_len > KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN || len > KL_TABLE_ID_MAX)
		return -EINVAL;
	/* the UE keeps its authorised groups, and its services unless the push sets them */
	present = dia_ue(d, id, len, groups, &ng, &services) == 0;
	if (new_services)
		services = new_services;
	if (kl_write_ue(&w, id, len, muk, muk_len, groups, ng, expires, services))
		return -EINVAL;
	return dia_write(d, &w, present, DIA_PRESENT, services);
}

/* Replace an existing UE's groups (push UE-GROUPS, remove of some or all groups). */
static int dia_set_groups(struct kl_feed *d, const uint8_t *id, uint16_t len,
			  const struct kl_group_ref *groups, unsigned ng, uint8_t services)
{
	struct kl_write w;

	if (kl_write_ue_groups(&w, id, len, groups, ng))
		return -EINVAL;
	/* a UE of a test population (table only): its groups change in the table only */
	return dia_write(d, &w, DIA_PRESENT, DIA_PRESENT, services);
}

static int h_put_ue_groups(void *arg, const uint8_t *id, uint16_t len,
			   const struct kl_diameter_group *g, unsigned n)
{
	struct kl_feed *d = arg;
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS], cur[KL_TABLE_UE_GROUPS];
	uint8_t services;
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
	if (len > KL_TABLE_ID_MAX || dia_ue(d, id, len, cur, &ncur, &services))
		return -ENOENT; /* a push for an unknown UE: DIAMETER_UNABLE_TO_COMPLY */
	return dia_set_groups(d, id, len, groups, n, services);
}

static int h_remove_ue_groups(void *arg, const uint8_t *id, uint16_t len,
			      const struct kl_diameter_group *g, unsigned n)
{
	struct kl_feed *d = arg;
	struct kl_group_ref cur[KL_TABLE_UE_GROUPS], keep[KL_TABLE_UE_GROUPS];
	unsigned ncur = 0, nk = 0;
	uint8_t services;

	if (len > KL_TABLE_ID_MAX || dia_ue(d, id, len, cur, &ncur, &services))
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
	return dia_set_groups(d, id, len, keep, nk, services);
}

/* Delete a whole entry (UE, EMSE, IMSI, application identity, pair key). */
static int dia_del(struct kl_feed *d, enum kl_table_kind kind, const uint8_t *key,
		   uint16_t len)
{
	int present = d->ctx ? dia_exists(d->ctx, kind, key, len) : DIA_UNKNOWN;
	struct kl_write w;

	if (present == DIA_ABSENT)
		return -ENOENT;
	if (kl_write_del(&w, kind, key, len))
		return -ENOENT;
	return dia_write(d, &w, present, DIA_ABSENT, 0);
}

static int h_remove_muk(void *arg, const uint8_t *id, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_UE, id, len);
}

static int h_push_e2m(void *arg, const char *imsi, uint32_t key_id,
		      const uint8_t key[KL_DIAMETER_E2M_KEY_LEN], uint64_t expires)
{
	struct kl_feed *d = arg;
	struct kl_write w;
	int present;

	if (kl_write_e2m(&w, imsi, key, key_id, expires))
		return -EINVAL;
	present = d->ctx ? dia_exists(d->ctx, KL_TK_E2M, w.key, w.key_len) : DIA_UNKNOWN;
	/* the store keeps the same newest table.e2m_ring keys as the table */
	return dia_write(d, &w, present, DIA_PRESENT, 0);
}

static int h_remove_e2m(void *arg, const char *imsi, int has_key_id, uint32_t key_id)
{
	struct kl_feed *d = arg;
	struct kl_write w;

	if (!has_key_id)
		return dia_del(d, KL_TK_E2M, (const uint8_t *)imsi, (uint16_t)strlen(imsi));
	if (kl_write_e2m_del_key(&w, imsi, key_id) ||
	    (d->ctx && dia_exists(d->ctx, KL_TK_E2M, w.key, w.key_len) == DIA_ABSENT))
		return -ENOENT;
	/* the IMSI goes when this was its last key: whether it stays is known once applied */
	return dia_write(d, &w, DIA_PRESENT, DIA_UNKNOWN, 0);
}

static int h_put_appid(void *arg, const uint8_t *appid, uint16_t len, const char *imsi)
{
	struct kl_feed *d = arg;
	struct kl_write w;

	if (kl_write_appid(&w, appid, len, imsi))
		return -EINVAL;
	return dia_write(d, &w, d->ctx ? dia_exists(d->ctx, KL_TK_APPID, appid, len) : DIA_UNKNOWN,
			 DIA_PRESENT, 0);
}

static int h_remove_appid(void *arg, const uint8_t *appid, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_APPID, appid, len);
}

static int h_put_emse(void *arg, const uint8_t *id, uint16_t len, const uint8_t *psk,
		      unsigned psk_len)
{
	struct kl_feed *d = arg;
	struct kl_write w;

	if (kl_write_emse(&w, id, len, psk, psk_len))
		return -EINVAL;
	return dia_write(d, &w, d->ctx ? dia_exists(d->ctx, KL_TK_EMSE, id, len) : DIA_UNKNOWN,
			 DIA_PRESENT, 0);
}

static int h_remove_emse(void *arg, const uint8_t *id, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_EMSE, id, len);
}

static int h_push_pair(void *arg, const uint8_t *peer, uint16_t len, const uint8_t *key,
		       unsigned key_len, uint64_t expires)
{
	struct kl_feed *d = arg;
	struct kl_write w;

	if (kl_write_pair(&w, peer, len, key, key_len, expires))
		return -EINVAL;
	return dia_write(d, &w, d->ctx ? dia_exists(d->ctx, KL_TK_PAIR, peer, len) : DIA_UNKNOWN,
			 DIA_PRESENT, 0);
}

static int h_remove_pair(void *arg, const uint8_t *peer, uint16_t len)
{
	return len > KL_TABLE_ID_MAX ? -ENOENT : dia_del(arg, KL_TK_PAIR, peer, len);
}

/* The commit hook: make the poll's batch durable, then apply its table writes in order. */
static int h_commit(void *arg)
{
	struct kl_feed *d = arg;
	struct dia_ctx *c = d->ctx;
	struct kl_writer wr = dia_writer(d);
	struct kl_write_result res;
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
		/* a delete of what the table no longer holds is done; refusals were checked
		 * beforehand, so they are rare (e.g. a 2-chunk MUK arena full): undone in the
		 * store where that can be done */
		if (kl_write_apply(&wr, &c->ops[i].w, &res) < 0 && res.rc != -ENOENT)
			flog(d, KL_CONFIG_LOG_ERROR, "%s: %s", res.msg,
			      res.note[0] ? res.note : "not stored either");
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
	f->cap[KL_TK_PAIR] = p->cfg->table.pairs;
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
		.push_pair = h_push_pair,
		.remove_pair = h_remove_pair,
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
