/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Leader election on etcd (see kl_elect.h). Times are CLOCK_MONOTONIC milliseconds.
 *
 * Threaded (kl_elect_start_thread): the election's thread owns the etcd work (its own client,
 * the predecessor's watch, the worker-only fields: key, next_*, recheck, w); what the caller
 * reads (role, leader, term, lease, valid_until, counters, error) is written under mu, which
 * no thread holds during I/O, and the caller's kl_elect_is_leader / kl_elect_status / the
 * leadership clock take mu for a few instructions. Without the thread everything runs on the
 * caller's thread and mu is never contended.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/eventfd.h>

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

	pthread_mutex_t mu; /* the fields the caller reads, when threaded */
	int threaded;	    /* the thread runs */
	pthread_t th;
	int stop;	      /* atomic: the thread ends; also the thread client's abort flag */
	struct kl_etcd *own;  /* the thread's client (e->c while threaded) */
	int wake_fd;	      /* eventfd: wakes the thread (stop) */
	int note_fd;	      /* eventfd: the thread tells the caller's loop that the role changed */
};

static void lk(struct kl_elect *e)
{
	pthread_mutex_lock(&e->mu);
}

static void ulk(struct kl_elect *e)
{
	pthread_mutex_unlock(&e->mu);
}

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
	lk(e);
	snprintf(e->error, sizeof(e->error), "%s: %s (%s)", what, kl_etcd_strerror(rc),
		 kl_etcd_errmsg(e->c));
	ulk(e);
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
	pthread_mutex_init(&e->mu, NULL);
	e->wake_fd = -1;
	e->note_fd = -1;
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

static void stop_thread(struct kl_elect *e);

void kl_elect_free(struct kl_elect *e)
{
	if (!e)
		return;
	stop_thread(e);
	drop_watch(e);
	kl_etcd_free(e->own);
	if (e->wake_fd >= 0)
		close(e->wake_fd);
	if (e->note_fd >= 0)
		close(e->note_fd);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

/* Leadership ends when its time is up (the clock is checked before any other step). Called
 * with mu held. */
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

/* Our lease and key are gone (or never were): campaign again at once. Called with mu held. */
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
	lk(e);
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
		ulk(e);
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
	ulk(e);
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
	lk(e);
	e->lease = l.id;
	/* etcd may raise a short TTL, never lower it: ours is the safe bound */
	e->lease_ttl_s = e->ttl_s;
	e->valid_until = sent + (uint64_t)e->ttl_s * 1000u - (uint64_t)e->margin_ms;
	ulk(e);
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
		lk(e);
		e->campaigns++;
		ulk(e);
		e->recheck = 1;
		return rc;
	}
	if (rc) {
		note_error(e, "create the campaign key", rc);
		kl_etcd_lease_revoke(e->c, l.id); /* best effort: it expires anyway */
		lk(e);
		e->lease = 0;
		ulk(e);
		e->key_len = 0;
		return rc;
	}
	/* a new lease id cannot name an existing key: the compare holds */
	lk(e);
	e->own_rev = t.succeeded ? t.hdr.revision : 0;
	e->campaigns++;
	e->error[0] = 0;
	ulk(e);
	kl_etcd_txn_result_free(&t);
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
		note_error(e, "keep-alive", KL_ETCD_ENOTFOUND);
		lk(e);
		e->keepalive_failures++;
		forget_lease(e, now);
		ulk(e);
		return;
	}
	if (rc) {
		note_error(e, "keep-alive", rc);
		lk(e);
		e->keepalive_failures++;
		ulk(e);
		e->next_keepalive = now + RETRY_MS;
		return;
	}
	lk(e);
	e->keepalives++;
	e->valid_until = sent + (uint64_t)e->lease_ttl_s * 1000u - (uint64_t)e->margin_ms;
	ulk(e);
	e->next_keepalive = sent + (uint64_t)e->period_ms;
}

static void wake(int fd)
{
	uint64_t one = 1;

	if (fd >= 0)
		(void)!write(fd, &one, sizeof(one));
}

int kl_elect_campaign(struct kl_elect *e)
{
	uint64_t now = now_ms();
	int rc;

	if (e->active)
		return 0;
	lk(e);
	e->active = 1;
	e->role = KL_ELECT_FOLLOWER;
	e->next_campaign = now;
	ulk(e);
	if (e->threaded) {
		wake(e->wake_fd); /* the thread campaigns */
		return 0;
	}
	rc = campaign_once(e, now);
	if (e->recheck)
		check(e, now_ms());
	return rc;
}

int kl_elect_resign(struct kl_elect *e)
{
	int rc = 0;

	stop_thread(e); /* the revoke below on this thread (the client is free now) */
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
	if (e->threaded) {
		if (max < 1)
			return 0;
		fds[0].fd = e->note_fd;
		fds[0].events = POLLIN;
		return 1;
	}
	return e->w ? kl_etcd_watch_pollfds(e->w, fds, max) : 0;
}

static long until(uint64_t at, uint64_t now)
{
	return at > now ? (long)(at - now) : 0;
}

/* How long until the etcd work is due (the thread's, or the caller's when not threaded). */
static int work_timeout_ms(struct kl_elect *e, uint64_t now)
{
	long t = 60000;

	lk(e);
	if (e->role == KL_ELECT_LEADER && until(e->valid_until, now) < t)
		t = until(e->valid_until, now);
	ulk(e);
	if (!e->active)
		return (int)t;
	if (e->recheck && e->lease)
		return 0;
	if (!e->lease)
		t = until(e->next_campaign, now) < t ? until(e->next_campaign, now) : t;
	else if (until(e->next_keepalive, now) < t)
		t = until(e->next_keepalive, now);
	if (e->lease && until(e->next_check, now) < t) /* checks need the lease (work()) */
		t = until(e->next_check, now);
	if (e->w) {
		int wt = kl_etcd_watch_timeout_ms(e->w);

		if (wt >= 0 && wt < t)
			t = wt;
	}
	return (int)t;
}

int kl_elect_timeout_ms(struct kl_elect *e)
{
	uint64_t now = now_ms();
	long t = 60000;

	if (!e->threaded)
		return work_timeout_ms(e, now);
	/* the thread tells role changes through note_fd; the leadership clock is ours */
	lk(e);
	if (e->role == KL_ELECT_LEADER)
		t = until(e->valid_until, now);
	ulk(e);
	return (int)t;
}

/* The etcd work that is due: keep-alive, reads, watch I/O, campaign retries. */
static void work(struct kl_elect *e)
{
	uint64_t now = now_ms();

	lk(e);
	expire(e, now);
	ulk(e);
	if (!e->active)
		return;
	if (!e->lease && now >= e->next_campaign)
		campaign_once(e, now);
	if (e->lease && now >= e->next_keepalive)
		keepalive(e, now_ms());
	lk(e);
	expire(e, now_ms());
	ulk(e);
	if (e->w && kl_etcd_watch_run(e->w)) /* stopped (compacted or canceled): read again */
		e->recheck = 1;
	if (e->lease && (e->recheck || now >= e->next_check))
		check(e, now_ms());
}

enum kl_elect_role kl_elect_run(struct kl_elect *e)
{
	enum kl_elect_role role;

	if (!e->threaded) {
		work(e);
		return e->role;
	}
	{
		uint64_t v;

		(void)!read(e->note_fd, &v, sizeof(v)); /* non-blocking: drained */
	}
	lk(e);
	expire(e, now_ms());
	role = e->role;
	ulk(e);
	return role;
}

/* ---- the election's thread ------------------------------------------------------------------- */

static void *thread_main(void *arg)
{
	struct kl_elect *e = arg;

	while (!__atomic_load_n(&e->stop, __ATOMIC_RELAXED)) {
		struct pollfd pf[POLLFDS_MAX + 1];
		int n = 1, t;
		enum kl_elect_role before;
		char leader[KL_ELECT_NAME_MAX + 1];

		pf[0].fd = e->wake_fd;
		pf[0].events = POLLIN;
		pf[0].revents = 0;
		if (e->w)
			n += kl_etcd_watch_pollfds(e->w, pf + 1, POLLFDS_MAX);
		t = work_timeout_ms(e, now_ms());
		if (t > 0 && poll(pf, (nfds_t)n, t) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN) {
			uint64_t v;

			(void)!read(e->wake_fd, &v, sizeof(v));
		}
		if (__atomic_load_n(&e->stop, __ATOMIC_RELAXED))
			break;
		lk(e);
		before = e->role;
		memcpy(leader, e->leader, sizeof(leader));
		ulk(e);
		work(e);
		lk(e);
		if (e->role != before || strcmp(leader, e->leader))
			wake(e->note_fd);
		ulk(e);
	}
	return NULL;
}

int kl_elect_start_thread(struct kl_elect *e, char *err, size_t errlen)
{
	if (e->threaded)
		return 0;
	e->own = kl_etcd_new_like(e->c, err, errlen);
	if (!e->own)
		return -1;
	kl_etcd_set_abort(e->own, &e->stop);
	e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->note_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->wake_fd < 0 || e->note_fd < 0) {
		snprintf(err, errlen, "election: eventfd: %s", strerror(errno));
		return -1;
	}
	/* the predecessor's watch again on the thread's client */
	drop_watch(e);
	e->recheck = e->lease != 0;
	e->c = e->own;
	e->stop = 0;
	if (pthread_create(&e->th, NULL, thread_main, e)) {
		snprintf(err, errlen, "election: cannot start its thread");
		return -1;
	}
	e->threaded = 1;
	return 0;
}

static void stop_thread(struct kl_elect *e)
{
	if (!e->threaded)
		return;
	__atomic_store_n(&e->stop, 1, __ATOMIC_RELAXED);
	wake(e->wake_fd);
	pthread_join(e->th, NULL);
	e->threaded = 0;
	/* the client is this thread's now (the lease revoke at resign) */
	__atomic_store_n(&e->stop, 0, __ATOMIC_RELAXED);
}

int kl_elect_is_leader(struct kl_elect *e)
{
	int r;

	lk(e);
	expire(e, now_ms());
	r = e->role == KL_ELECT_LEADER;
	ulk(e);
	return r;
}

void kl_elect_status(struct kl_elect *e, struct kl_elect_status *out)
{
	uint64_t now = now_ms();

	lk(e);
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
	ulk(e);
}
