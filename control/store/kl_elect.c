/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Leader election on etcd (see kl_elect.h). Times are CLOCK_MONOTONIC milliseconds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_elect.h"

#define RETRY_MS 250	     /* a failed keep-alive, read or campaign: again after this */
#define KEY_MAX 1024	     /* <prefix>/elect/<election>/<16 hex> */
#define POLLFDS_MAX 8

struct kl_elect {
	struct kl_etcd *c;
	char pfx[KEY_MAX]; /* <prefix>/elect/<election>/ */
	size_t pfx_len;
	char node[KL_ELECT_NAME_MAX + 1];
	size_t node_len;
	int64_t ttl_s;
	long margin_ms;
	long period_ms; /* keep-alive and read period: ttl / 3 */

	int active;	  /* campaigning */
	int64_t lease;	  /* 0: none (campaign due) */
	int64_t lease_ttl_s;
	char key[KEY_MAX]; /* our campaign key */
	size_t key_len;
	int64_t own_rev;
	uint64_t valid_until; /* leadership may last until then */
	uint64_t next_keepalive, next_check, next_campaign;
	int recheck; /* the predecessor went away (or its watch stopped): read now */

	enum kl_elect_role role;
	char leader[KL_ELECT_NAME_MAX + 1];
	int64_t term;
	int64_t elected_rev;

	/* the predecessor's watch */
	struct kl_etcd_watch *w;
	uint8_t wkey[KEY_MAX];
	size_t wkey_len;

	uint64_t campaigns, elected, lost, keepalives, keepalive_failures;
	char error[256];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *kl_elect_role_name(enum kl_elect_role r)
{
	static const char *const names[] = { [KL_ELECT_IDLE] = "idle",
					     [KL_ELECT_FOLLOWER] = "follower",
					     [KL_ELECT_LEADER] = "leader" };

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

static void note_error(struct kl_elect *e, const char *what, int rc)
{
	snprintf(e->error, sizeof(e->error), "%s: %s (%s)", what, kl_etcd_strerror(rc),
		 kl_etcd_errmsg(e->c));
}

struct kl_elect *kl_elect_new(struct kl_etcd *c, const struct kl_elect_opts *o, char *err,
			      size_t errlen)
{
	struct kl_elect *e;
	size_t plen, elen, nlen;
	int64_t ttl;
	long margin;

	if (!c || !o || !o->prefix || !o->election || !o->node) {
		snprintf(err, errlen, "election: client, prefix, election and node are required");
		return NULL;
	}
	plen = strlen(o->prefix);
	elen = strlen(o->election);
	nlen = strlen(o->node);
	while (plen && o->prefix[plen - 1] == '/')
		plen--;
	if (!elen || strchr(o->election, '/')) {
		snprintf(err, errlen, "election: the election's name is empty or has a '/'");
		return NULL;
	}
	if (!nlen || nlen > KL_ELECT_NAME_MAX) {
		snprintf(err, errlen, "election: node name of 1..%d bytes", KL_ELECT_NAME_MAX);
		return NULL;
	}
	if (plen + elen + 32 >= KEY_MAX) {
		snprintf(err, errlen, "election: prefix and election name too long");
		return NULL;
	}
	ttl = o->ttl_s ? o->ttl_s : 10;
	if (ttl < 2 || ttl > 3600) {
		snprintf(err, errlen, "election: ttl %" PRId64 " s out of range (2..3600)", ttl);
		return NULL;
	}
	margin = o->margin_ms ? o->margin_ms : (long)(ttl * 1000 / 4);
	if (margin < 250 && !o->margin_ms)
		margin = 250;
	/* at least one keep-alive period must fit between a keep-alive and the end of leadership */
	if (margin <= 0 || margin >= ttl * 1000 * 2 / 3) {
		snprintf(err, errlen, "election: margin %ld ms out of range (1..%" PRId64 ")", margin,
			 ttl * 1000 * 2 / 3 - 1);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "election: out of memory");
		return NULL;
	}
	e->c = c;
	e->pfx_len = (size_t)snprintf(e->pfx, sizeof(e->pfx), "%.*s/elect/%s/", (int)plen, o->prefix,
				      o->election);
	memcpy(e->node, o->node, nlen + 1);
	e->node_len = nlen;
	e->ttl_s = ttl;
	e->margin_ms = margin;
	e->period_ms = (long)(ttl * 1000 / 3);
	return e;
}

static void drop_watch(struct kl_elect *e)
{
	kl_etcd_watch_free(e->w);
	e->w = NULL;
	e->wkey_len = 0;
}

void kl_elect_free(struct kl_elect *e)
{
	if (!e)
		return;
	drop_watch(e);
	free(e);
}

/* Leadership ends when its time is up (the clock is checked before any other step). */
static void expire(struct kl_elect *e, uint64_t now)
{
	if (e->role == KL_ELECT_LEADER && now >= e->valid_until) {
		e->role = e->active ? KL_ELECT_FOLLOWER : KL_ELECT_IDLE;
		e->lost++;
		/* whether we still lead is for etcd to say once we reach it again */
		e->leader[0] = 0;
		e->term = 0;
	}
}

/* Our lease and key are gone (or never were): campaign again at once. */
static void forget_lease(struct kl_elect *e, uint64_t now)
{
	if (e->role == KL_ELECT_LEADER) {
		e->role = KL_ELECT_FOLLOWER;
		e->lost++;
	}
	e->lease = 0;
	e->own_rev = 0;
	e->key_len = 0;
	e->valid_until = 0;
	e->next_campaign = now;
	drop_watch(e);
}

static void on_watch(void *arg, const struct kl_etcd_watch_note *n)
{
	struct kl_elect *e = arg;

	/* the predecessor deleted, or the watch stopped: read the election again */
	if ((n->what == KL_ETCD_W_EVENT && n->ev->type == KL_ETCD_EV_DELETE) ||
	    n->what == KL_ETCD_W_COMPACTED || n->what == KL_ETCD_W_CANCELED)
		e->recheck = 1;
}

/* Watch the predecessor's key from revision rev + 1 (a deletion after our read is seen). */
static void watch_pred(struct kl_elect *e, const struct kl_etcd_kv *p, int64_t rev)
{
	if (e->w && e->wkey_len == p->key_len && !memcmp(e->wkey, p->key, p->key_len))
		return;
	drop_watch(e);
	if (p->key_len > sizeof(e->wkey))
		return; /* not one of ours: the periodic read covers it */
	e->w = kl_etcd_watch_new(e->c, p->key, p->key_len, 0, rev + 1, on_watch, e);
	if (e->w) {
		memcpy(e->wkey, p->key, p->key_len);
		e->wkey_len = p->key_len;
	}
}

/* Read the election's keys: who leads, whether we do, whom to watch. */
static void check(struct kl_elect *e, uint64_t now)
{
	struct kl_etcd_range r;
	const struct kl_etcd_kv *low = NULL, *pred = NULL, *own = NULL;
	int64_t after = 0;
	int rc;

	e->recheck = 0;
	e->next_check = now + (uint64_t)e->period_ms;
	/* all pages at one revision; campaigners are few, so this is one page */
	rc = kl_etcd_range_page(e->c, e->pfx, e->pfx_len, NULL, 0, 0, 0, &r);
	if (rc) {
		note_error(e, "read the election", rc);
		e->next_check = now + RETRY_MS;
		return;
	}
	e->error[0] = 0;
	for (size_t i = 0; i < r.n; i++) {
		const struct kl_etcd_kv *kv = &r.kvs[i];

		if (kv->key_len == e->key_len && !memcmp(kv->key, e->key, e->key_len))
			own = kv;
		if (!low || kv->create_revision < low->create_revision)
			low = kv;
	}
	if (e->key_len && !own) {
		/* our key went away (lease expired while we were cut off, or deleted by hand) */
		kl_etcd_range_free(&r);
		forget_lease(e, now);
		return;
	}
	if (own) {
		e->own_rev = own->create_revision;
		for (size_t i = 0; i < r.n; i++) {
			const struct kl_etcd_kv *kv = &r.kvs[i];

			if (kv->create_revision < own->create_revision && kv->create_revision > after) {
				after = kv->create_revision;
				pred = kv;
			}
		}
	}
	if (low) {
		size_t n = low->value_len < KL_ELECT_NAME_MAX ? low->value_len : KL_ELECT_NAME_MAX;

		memcpy(e->leader, low->value, n);
		e->leader[n] = 0;
		e->term = low->create_revision;
	} else {
		e->leader[0] = 0;
		e->term = 0;
	}
	if (own && low == own && now < e->valid_until) {
		if (e->role != KL_ELECT_LEADER) {
			e->elected++;
			e->elected_rev = r.hdr.revision;
		}
		e->role = KL_ELECT_LEADER;
		drop_watch(e);
	} else {
		if (e->role == KL_ELECT_LEADER)
			e->lost++;
		e->role = e->active ? KL_ELECT_FOLLOWER : KL_ELECT_IDLE;
		if (pred)
			watch_pred(e, pred, r.hdr.revision);
		else
			drop_watch(e);
	}
	kl_etcd_range_free(&r);
}

/* A lease and our campaign key on it (create_revision == 0: created by this transaction). */
static int campaign_once(struct kl_elect *e, uint64_t now)
{
	struct kl_etcd_lease l;
	struct kl_etcd_txn_result t;
	struct kl_etcd_cmp cmp;
	struct kl_etcd_op put;
	uint64_t sent = now_ms();
	int rc;

	e->next_campaign = now + RETRY_MS;
	rc = kl_etcd_lease_grant(e->c, e->ttl_s, 0, &l);
	if (rc) {
		note_error(e, "grant the lease", rc);
		return rc;
	}
	e->lease = l.id;
	/* etcd may raise a short TTL, never lower it: ours is the safe bound */
	e->lease_ttl_s = e->ttl_s;
	e->valid_until = sent + (uint64_t)e->ttl_s * 1000u - (uint64_t)e->margin_ms;
	e->next_keepalive = sent + (uint64_t)e->period_ms;
	e->key_len = (size_t)snprintf(e->key, sizeof(e->key), "%s%016" PRIx64, e->pfx,
				      (uint64_t)l.id);
	cmp = (struct kl_etcd_cmp){ .key = (const uint8_t *)e->key, .key_len = e->key_len,
				    .target = KL_ETCD_CREATE, .op = KL_ETCD_EQUAL, .number = 0 };
	put = (struct kl_etcd_op){ .kind = KL_ETCD_OP_PUT, .key = (const uint8_t *)e->key,
				   .key_len = e->key_len, .value = (const uint8_t *)e->node,
				   .value_len = e->node_len, .lease = l.id };
	rc = kl_etcd_txn(e->c, &cmp, 1, &put, 1, NULL, 0, &t);
	if (rc == KL_ETCD_EUNKNOWN) {
		/* maybe created: the read below finds it, or campaigns again */
		note_error(e, "create the campaign key", rc);
		e->campaigns++;
		e->recheck = 1;
		return rc;
	}
	if (rc) {
		note_error(e, "create the campaign key", rc);
		kl_etcd_lease_revoke(e->c, l.id); /* best effort: it expires anyway */
		e->lease = 0;
		e->key_len = 0;
		return rc;
	}
	/* a new lease id cannot name an existing key: the compare holds */
	e->own_rev = t.succeeded ? t.hdr.revision : 0;
	kl_etcd_txn_result_free(&t);
	e->campaigns++;
	e->error[0] = 0;
	e->recheck = 1;
	return 0;
}

static void keepalive(struct kl_elect *e, uint64_t now)
{
	struct kl_etcd_lease l;
	uint64_t sent = now_ms();
	int rc = kl_etcd_lease_keepalive(e->c, e->lease, &l);

	if (rc == KL_ETCD_ENOTFOUND || (!rc && l.ttl <= 0)) {
		/* expired at etcd (we were away longer than the TTL): the key went with it */
		e->keepalive_failures++;
		note_error(e, "keep-alive", KL_ETCD_ENOTFOUND);
		forget_lease(e, now);
		return;
	}
	if (rc) {
		e->keepalive_failures++;
		note_error(e, "keep-alive", rc);
		e->next_keepalive = now + RETRY_MS;
		return;
	}
	e->keepalives++;
	e->valid_until = sent + (uint64_t)e->lease_ttl_s * 1000u - (uint64_t)e->margin_ms;
	e->next_keepalive = sent + (uint64_t)e->period_ms;
}

int kl_elect_campaign(struct kl_elect *e)
{
	uint64_t now = now_ms();
	int rc;

	if (e->active)
		return 0;
	e->active = 1;
	e->role = KL_ELECT_FOLLOWER;
	rc = campaign_once(e, now);
	if (e->recheck)
		check(e, now_ms());
	return rc;
}

int kl_elect_resign(struct kl_elect *e)
{
	int rc = 0;

	if (e->role == KL_ELECT_LEADER)
		e->lost++;
	e->role = KL_ELECT_IDLE;
	e->active = 0;
	e->leader[0] = 0;
	e->term = 0;
	if (e->lease) {
		rc = kl_etcd_lease_revoke(e->c, e->lease);
		if (rc == KL_ETCD_ENOTFOUND)
			rc = 0;
		if (rc)
			note_error(e, "revoke the lease", rc);
	}
	e->lease = 0;
	e->own_rev = 0;
	e->key_len = 0;
	e->valid_until = 0;
	drop_watch(e);
	return rc;
}

int kl_elect_pollfds(struct kl_elect *e, struct pollfd *fds, int max)
{
	return e->w ? kl_etcd_watch_pollfds(e->w, fds, max) : 0;
}

static long until(uint64_t at, uint64_t now)
{
	return at > now ? (long)(at - now) : 0;
}

int kl_elect_timeout_ms(struct kl_elect *e)
{
	uint64_t now = now_ms();
	long t = 60000;

	if (e->role == KL_ELECT_LEADER && until(e->valid_until, now) < t)
		t = until(e->valid_until, now);
	if (!e->active)
		return (int)t;
	if (e->recheck)
		return 0;
	if (!e->lease)
		t = until(e->next_campaign, now) < t ? until(e->next_campaign, now) : t;
	else if (until(e->next_keepalive, now) < t)
		t = until(e->next_keepalive, now);
	if (until(e->next_check, now) < t)
		t = until(e->next_check, now);
	if (e->w) {
		int wt = kl_etcd_watch_timeout_ms(e->w);

		if (wt >= 0 && wt < t)
			t = wt;
	}
	return (int)t;
}

enum kl_elect_role kl_elect_run(struct kl_elect *e)
{
	uint64_t now = now_ms();

	expire(e, now);
	if (!e->active)
		return e->role;
	if (!e->lease && now >= e->next_campaign)
		campaign_once(e, now);
	if (e->lease && now >= e->next_keepalive)
		keepalive(e, now_ms());
	expire(e, now_ms());
	if (e->w && kl_etcd_watch_run(e->w)) /* stopped (compacted or canceled): read again */
		e->recheck = 1;
	if (e->lease && (e->recheck || now >= e->next_check))
		check(e, now_ms());
	return e->role;
}

int kl_elect_is_leader(struct kl_elect *e)
{
	expire(e, now_ms());
	return e->role == KL_ELECT_LEADER;
}

void kl_elect_status(struct kl_elect *e, struct kl_elect_status *out)
{
	uint64_t now = now_ms();

	expire(e, now);
	memset(out, 0, sizeof(*out));
	out->role = e->role;
	memcpy(out->leader, e->leader, sizeof(out->leader));
	out->term = e->term;
	out->lease = e->lease;
	out->own_revision = e->own_rev;
	out->valid_ms = e->role == KL_ELECT_LEADER ? until(e->valid_until, now) : 0;
	out->campaigns = e->campaigns;
	out->elected = e->elected;
	out->lost = e->lost;
	out->keepalives = e->keepalives;
	out->keepalive_failures = e->keepalive_failures;
	memcpy(out->error, e->error, sizeof(out->error));
	out->elected_revision = e->role == KL_ELECT_LEADER ? e->elected_rev : 0;
}
