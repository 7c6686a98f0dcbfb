/* SPDX-License-Identifier: BSD-3-Clause */
/* keylined's cluster service (kl_cluster.h): join, replicate, follow, resynchronise, report.
 *
 * Threads. The control thread (the key table's only writer) applies the catalogue: the watch
 * (libcurl multi, polled by the control loop), resync pages, the replicator's durable writes
 * (acknowledged only once etcd has committed: the writer waits for them, bounded by the request
 * timeout). The periodic work (the lease keep-alive, the registration, etcd's status, and the
 * join while etcd could not be reached at start) runs on the cluster thread (bg_main) with a
 * kl_etcd client of its own; it publishes what it saw through a small mailbox under a mutex that
 * neither side holds during I/O, and the control thread takes it in at each pass and tick. A
 * member that accepts connections and never answers (stopped, black-holed) thus costs the
 * cluster thread the request timeout per endpoint, never the control loop: the admin socket,
 * /metrics, the Diameter feed and the Key Center go on. Why a thread and not more requests on
 * the control loop's curl multi handle: these calls are short request/answer exchanges chained
 * by their results (grant, then the registration transaction, then maybe a put; a keep-alive
 * that finds the lease gone registers again), which stay plain sequential code on a thread
 * while a multi handle would make each a state machine; and nothing they produce needs the key
 * table or the store, so the thread shares only the mailbox.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kl_cluster.h"
#include "kl_cluster_repl.h"
#include "kl_etcd.h"
#include "kl_store.h"
#include "kl_store_repl.h"

/* Catalogue entries per resync page (one store batch). Large: etcd 3.4 collects every revision
 * of the rest of the range before it applies a range's limit, so a page costs the rest of the
 * snapshot (1,000 a page: 3,000 entries/s at 1 M). */
#define RESYNC_PAGE 5000
#define SEED_CHUNK 1024		 /* store entries per replicator commit when seeding */
#define WATCH_RUNS 16		 /* kl_etcd_watch_run calls per pass (one store batch) */
#define STATUS_EVERY_MS 1000	 /* etcd status (revision, leader) */
#define REGISTER_EVERY_MS 5000	 /* the node's registration value refreshed */
#define QUIET_SYNCED_MS 1000	 /* a watch quiet this long has delivered what etcd had */
#define KEK_CHECK_MAX 256
#define LMDB_KEY_MAX 511

/* One (db, key) a batch wrote: written into the key table once the batch committed. */
struct touched {
	char db[16];
	uint16_t len;
	uint8_t key[LMDB_KEY_MAX];
};

/* A set of (db, key) by 128-bit hash: what a resync snapshot holds. */
struct keyset {
	uint64_t (*v)[2]; /* {0, 0}: empty */
	size_t cap, n;
};

enum phase { PH_JOINING, PH_RESYNC, PH_FOLLOWING };

#define MB_LOGS 8

/* The cluster thread's mailbox (everything under mu; neither thread holds mu during I/O). */
struct mailbox {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* wakes the cluster thread: stop, joined */
	int stop;
	/* in (control thread -> cluster thread) */
	int want_join; /* not joined: try the join transaction every second */
	int joined;    /* joined: keep the lease and the registration alive */
	int64_t applied;
	int stale;
	char role[16];
	/* out (cluster thread -> control thread) */
	uint64_t link_seq; /* bumped for each link note */
	int link_ok;
	char link_what[16], link_err[256];
	uint64_t es_seq; /* bumped for each status call */
	struct kl_etcd_status es;
	int es_ok;
	int registered;
	uint64_t join_seq; /* bumped for each join transaction */
	int join_rc, join_created;
	int64_t join_rev;
	char join_err[512];
	unsigned n_logs;
	int log_level[MB_LOGS];
	char logs[MB_LOGS][256];
};

struct kl_cluster {
	struct kl_config_cluster cfg;
	struct kl_store *store;
	struct kl_table *table;
	struct kl_cluster_stats own_stats, *st;
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	char version[32];
	struct kl_etcd *etcd;
	struct kl_cluster_repl *repl;
	struct kl_store_repl_ops gate; /* refuses writes until joined */
	struct kl_etcd_watch *watch;
	enum phase phase;
	char kv_prefix[KL_CONFIG_CLUSTER_PREFIX_MAX + 8]; /* P/kv/ */
	char node_key[KL_CONFIG_CLUSTER_PREFIX_MAX + KL_CONFIG_CLUSTER_NODE_MAX + 16];
	uint64_t started_unix;
	/* joining */
	int join_warned;
	/* registration (owned by the cluster thread once it runs) */
	int64_t lease;
	int registered, register_warned;
	/* the cluster thread */
	struct kl_etcd *bg_etcd; /* its client */
	pthread_t bg;
	int bg_started;
	int bg_abort; /* set at stop: the thread's etcd call in progress ends */
	struct mailbox mb;
	uint64_t link_seen, es_seen, join_seen; /* the mailbox's sequence numbers taken in */
	int registered_seen;
	uint8_t kek[KEK_CHECK_MAX]; /* the store's kek_check, for the join transaction */
	size_t kek_len;
	/* following */
	int batch_open, batch_failed;
	struct touched *touched;
	size_t n_touched, cap_touched;
	int64_t applied;      /* kl_store_revision */
	int64_t watch_hdr;    /* header revision of the last watch message */
	int64_t last_ev_rev;  /* revision of the last event delivered */
	uint64_t last_msg_ms, last_event_ms, behind_since_ms;
	int watch_up;
	/* resync */
	int64_t rs_rev;
	uint8_t *rs_after; /* the last key of the previous page (NULL: from the start) */
	size_t rs_after_len;
	struct keyset rs_seen;
	struct touched *rs_retry; /* entries the key table had no room for before the deletions */
	size_t n_retry, cap_retry;
	uint64_t rs_started_ms;
	uint64_t rs_entries;
	/* link */
	uint64_t down_since_ms; /* 0: the link is fine */
	int stale_logged;
	char last_err[256];
	/* etcd health */
	struct kl_etcd_status es;
	int es_ok;
	uint64_t refused_logged;
};

/* ---- small helpers ------------------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logf_(struct kl_cluster *c, enum kl_config_log_level l, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(struct kl_cluster *c, enum kl_config_log_level l, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->log)
		c->log(c->log_arg, (int)l, msg);
	else
		fprintf(stderr, "keylined: cluster: %s\n", msg);
}

static void st_set(struct kl_cluster *c, enum kl_cluster_stat i, uint64_t v)
{
	__atomic_store_n(&c->st->v[i], v, __ATOMIC_RELAXED);
}

static void st_add(struct kl_cluster *c, enum kl_cluster_stat i, uint64_t n)
{
	__atomic_fetch_add(&c->st->v[i], n, __ATOMIC_RELAXED);
}

static uint64_t st_get(const struct kl_cluster *c, enum kl_cluster_stat i)
{
	return __atomic_load_n(&c->st->v[i], __ATOMIC_RELAXED);
}

/* A call to etcd succeeded: the link is up (as far as this call tells). */
static void link_ok(struct kl_cluster *c)
{
	uint64_t now = now_ms();

	if (c->down_since_ms && (c->watch_up || c->phase != PH_FOLLOWING)) {
		if (c->stale_logged)
			logf_(c, KL_CONFIG_LOG_WARNING,
			      "etcd reachable again after %" PRIu64 " ms; catching up from revision "
			      "%" PRId64,
			      now - c->down_since_ms, c->applied);
		c->down_since_ms = 0;
		c->stale_logged = 0;
	}
}

static void link_down(struct kl_cluster *c, const char *what, const char *why)
{
	snprintf(c->last_err, sizeof(c->last_err), "%s: %.240s", what, why);
	if (!c->down_since_ms)
		c->down_since_ms = now_ms();
}

static void update_stale(struct kl_cluster *c)
{
	uint64_t now = now_ms();
	int stale = c->down_since_ms && now - c->down_since_ms >= c->cfg.stale_after_ms;

	if (stale && !c->stale_logged) {
		logf_(c, KL_CONFIG_LOG_WARNING,
		      "stale: no contact with etcd for %" PRIu64 " ms (%s); serving the last state "
		      "(revision %" PRId64 ")",
		      now - c->down_since_ms, c->last_err, c->applied);
		c->stale_logged = 1;
	}
	st_set(c, KL_CLUSTER_STALE, (uint64_t)stale);
}

static void update_lag(struct kl_cluster *c)
{
	uint64_t now = now_ms();
	int64_t lag = c->watch_hdr > c->applied ? c->watch_hdr - c->applied : 0;

	/* etcd sends a lagging watcher its backlog message after message; a watch quiet for a
	 * while has everything (the header may count revisions of other keys) */
	if (lag && c->watch_up && now - c->last_msg_ms >= QUIET_SYNCED_MS)
		lag = 0;
	if (c->phase == PH_RESYNC && c->rs_rev > c->applied)
		lag = c->rs_rev - c->applied;
	if (!lag)
		c->behind_since_ms = 0;
	else if (!c->behind_since_ms)
		c->behind_since_ms = now;
	st_set(c, KL_CLUSTER_LAG_REVISIONS, (uint64_t)lag);
	st_set(c, KL_CLUSTER_LAG_MS, c->behind_since_ms ? now - c->behind_since_ms : 0);
	st_set(c, KL_CLUSTER_SINCE_EVENT_MS, c->last_event_ms ? now - c->last_event_ms : 0);
	st_set(c, KL_CLUSTER_APPLIED_REVISION, (uint64_t)(c->applied > 0 ? c->applied : 0));
}

/* ---- key set (resync) --------------------------------------------------------------------------- */

static void ks_hash(const char *db, const uint8_t *key, size_t len, uint64_t h[2])
{
	uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;

	for (const char *p = db; *p; p++) {
		a = (a ^ (uint8_t)*p) * 0x100000001b3ull;
		b = (b ^ (uint8_t)*p) * 0x9e3779b97f4a7c15ull;
	}
	a = (a ^ 0xff) * 0x100000001b3ull;
	b = (b ^ 0xff) * 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < len; i++) {
		a = (a ^ key[i]) * 0x100000001b3ull;
		b = ((b ^ key[i]) * 0x9e3779b97f4a7c15ull) ^ (b >> 29);
	}
	h[0] = a | 1; /* never {0, 0} */
	h[1] = b;
}

static int ks_add(struct keyset *s, const uint64_t h[2])
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t(*v)[2] = calloc(cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			size_t j;

			if (!s->v[i][0])
				continue;
			for (j = s->v[i][0] & (cap - 1); v[j][0]; j = (j + 1) & (cap - 1))
				;
			v[j][0] = s->v[i][0];
			v[j][1] = s->v[i][1];
		}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	for (size_t j = h[0] & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
		if (!s->v[j][0]) {
			s->v[j][0] = h[0];
			s->v[j][1] = h[1];
			s->n++;
			return 0;
		}
		if (s->v[j][0] == h[0] && s->v[j][1] == h[1])
			return 0;
	}
}

static int ks_has(const struct keyset *s, const uint64_t h[2])
{
	if (!s->cap)
		return 0;
	for (size_t j = h[0] & (s->cap - 1); s->v[j][0]; j = (j + 1) & (s->cap - 1))
		if (s->v[j][0] == h[0] && s->v[j][1] == h[1])
			return 1;
	return 0;
}

static void ks_free(struct keyset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- applying catalogue records -------------------------------------------------------------- */

static int batch_begin(struct kl_cluster *c)
{
	int rc;

	if (c->batch_open)
		return 0;
	rc = kl_store_txn_begin(c->store);
	if (rc)
		return rc;
	c->batch_open = 1;
	c->batch_failed = 0;
	c->n_touched = 0;
	return 0;
}

static int touch(struct kl_cluster *c, const char *db, const uint8_t *key, size_t len)
{
	struct touched *t;

	if (c->n_touched == c->cap_touched) {
		size_t cap = c->cap_touched ? c->cap_touched * 2 : 256;

		t = realloc(c->touched, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		c->touched = t;
		c->cap_touched = cap;
	}
	t = &c->touched[c->n_touched++];
	snprintf(t->db, sizeof(t->db), "%s", db);
	t->len = (uint16_t)len;
	memcpy(t->key, key, len);
	return 0;
}

static void refused(struct kl_cluster *c, const char *what)
{
	st_add(c, KL_CLUSTER_EVENTS_REFUSED, 1);
	/* the first ten, then one in a thousand: a node with the wrong records must not flood */
	if (c->refused_logged < 10 || c->refused_logged % 1000 == 0)
		logf_(c, KL_CONFIG_LOG_WARNING, "catalogue entry refused (%" PRIu64 " so far): %s",
		      c->refused_logged + 1, what);
	c->refused_logged++;
}

/* One catalogue record (value NULL: deleted) into the open batch. A store failure other than a
 * refused record spoils the batch. */
static void apply_one(struct kl_cluster *c, const uint8_t *ekey, size_t ekey_len,
		      const uint8_t *value, size_t value_len, int64_t rev)
{
	char db[16];
	uint8_t key[LMDB_KEY_MAX];
	size_t klen;
	int rc;

	if (c->batch_failed)
		return;
	if (kl_cluster_key_parse(c->cfg.prefix, ekey, ekey_len, db, key, sizeof(key), &klen)) {
		refused(c, "not a catalogue key");
		return;
	}
	if (batch_begin(c)) {
		c->batch_failed = 1;
		snprintf(c->last_err, sizeof(c->last_err), "store: cannot begin a batch: %s",
			 kl_store_last_error(c->store));
		return;
	}
	rc = kl_store_apply(c->store, db, key, klen, value, value_len, rev);
	if (rc == 1) {
		st_add(c, KL_CLUSTER_EVENTS_APPLIED, 1);
		if (touch(c, db, key, klen))
			c->batch_failed = 1;
	} else if (rc == 0) {
		st_add(c, KL_CLUSTER_EVENTS_SKIPPED, 1);
	} else if (rc == -EBADMSG || rc == -EINVAL) {
		char what[320];

		snprintf(what, sizeof(what), "%s at revision %" PRId64 ": %s", db, rev,
			 kl_store_last_error(c->store));
		refused(c, what);
	} else {
		c->batch_failed = 1;
		snprintf(c->last_err, sizeof(c->last_err), "store: %s (%s)", strerror(-rc),
			 kl_store_last_error(c->store));
	}
}

/* An entry the store now holds (or no longer holds) into the key table. may_retry: a resync's
 * deletions come after its pages, so a full table may have room then: kept for later. */
static void sync_table(struct kl_cluster *c, const struct touched *t, int may_retry)
{
	int r = kl_store_sync_table(c->store, c->table, t->db, t->key, t->len);
	char what[160];

	if (r == -ENOSPC && may_retry) {
		if (c->n_retry == c->cap_retry) {
			size_t cap = c->cap_retry ? c->cap_retry * 2 : 64;
			struct touched *v = realloc(c->rs_retry, cap * sizeof(*v));

			if (v) {
				c->rs_retry = v;
				c->cap_retry = cap;
			}
		}
		if (c->n_retry < c->cap_retry) {
			c->rs_retry[c->n_retry++] = *t;
			return;
		}
	}
	if (r < 0) {
		snprintf(what, sizeof(what), "%s: the key table refused it: %s", t->db, strerror(-r));
		refused(c, what);
	}
}

/* Close the batch: set the revision (rev > 0), commit, then write the entries into the key table.
 * @return 0, or -1 (rolled back). */
static int batch_end(struct kl_cluster *c, int64_t rev)
{
	int rc = 0;

	if (!c->batch_open) {
		if (rev > c->applied && !c->batch_failed) {
			rc = kl_store_set_revision(c->store, rev);
			if (!rc)
				c->applied = rev;
		}
		c->batch_failed = 0;
		return rc ? -1 : 0;
	}
	c->batch_open = 0;
	if (!c->batch_failed && rev > c->applied)
		rc = kl_store_set_revision(c->store, rev);
	if (c->batch_failed || rc) {
		kl_store_txn_abort(c->store);
		rc = -1;
	} else if ((rc = kl_store_txn_commit(c->store)) != 0) {
		snprintf(c->last_err, sizeof(c->last_err), "store commit: %s (%s)", strerror(-rc),
			 kl_store_last_error(c->store));
		rc = -1;
	}
	c->batch_failed = 0;
	if (rc) {
		st_add(c, KL_CLUSTER_APPLY_FAILURES, 1);
		logf_(c, KL_CONFIG_LOG_ERROR, "applying catalogue events failed: %s; again from "
					      "revision %" PRId64, c->last_err, c->applied + 1);
		c->n_touched = 0;
		return -1;
	}
	if (rev > c->applied)
		c->applied = rev;
	for (size_t i = 0; i < c->n_touched; i++)
		sync_table(c, &c->touched[i], c->phase == PH_RESYNC);
	c->n_touched = 0;
	return 0;
}

/* ---- watch -------------------------------------------------------------------------------------- */

static void watch_cb(void *arg, const struct kl_etcd_watch_note *n)
{
	struct kl_cluster *c = arg;
	uint64_t now = now_ms();

	switch (n->what) {
	case KL_ETCD_W_CREATED:
		c->watch_up = 1;
		c->last_msg_ms = now;
		if (n->revision > c->watch_hdr)
			c->watch_hdr = n->revision;
		st_add(c, KL_CLUSTER_WATCH_CONNECTS, 1);
		logf_(c, KL_CONFIG_LOG_INFO, "following etcd at %s from revision %" PRId64,
		      n->endpoint, kl_etcd_watch_next_revision(c->watch));
		link_ok(c);
		break;
	case KL_ETCD_W_EVENT:
		c->last_msg_ms = now;
		c->last_event_ms = now;
		c->watch_hdr = n->revision;
		c->last_ev_rev = n->ev->kv.mod_revision;
		apply_one(c, n->ev->kv.key, n->ev->kv.key_len,
			  n->ev->type == KL_ETCD_EV_PUT ? n->ev->kv.value : NULL,
			  n->ev->kv.value_len, n->ev->kv.mod_revision);
		break;
	case KL_ETCD_W_DISCONNECTED:
		if (c->watch_up)
			st_add(c, KL_CLUSTER_WATCH_DISCONNECTS, 1);
		c->watch_up = 0;
		link_down(c, "watch", n->reason ? n->reason : "disconnected");
		break;
	case KL_ETCD_W_COMPACTED:
		c->watch_up = 0;
		logf_(c, KL_CONFIG_LOG_WARNING,
		      "etcd compacted its history past revision %" PRId64
		      " (at %" PRId64 "): full resynchronisation",
		      kl_etcd_watch_next_revision(c->watch), n->compact_revision);
		break;
	case KL_ETCD_W_CANCELED:
		c->watch_up = 0;
		link_down(c, "watch", n->reason ? n->reason : "canceled");
		break;
	}
}

static void resync_begin(struct kl_cluster *c, const char *why)
{
	c->phase = PH_RESYNC;
	c->rs_rev = 0;
	free(c->rs_after);
	c->rs_after = NULL;
	c->rs_after_len = 0;
	c->rs_entries = 0;
	c->n_retry = 0;
	ks_free(&c->rs_seen);
	c->rs_started_ms = now_ms();
	c->watch_up = 0;
	st_add(c, KL_CLUSTER_RESYNCS, 1);
	logf_(c, KL_CONFIG_LOG_INFO, "full resynchronisation from the catalogue (%s)", why);
}

static int watch_from(struct kl_cluster *c, int64_t rev)
{
	if (!c->watch) {
		c->watch = kl_etcd_watch_new(c->etcd, c->kv_prefix, strlen(c->kv_prefix), 1, rev,
					     watch_cb, c);
		if (!c->watch)
			return -ENOMEM;
	} else if (kl_etcd_watch_restart(c->watch, rev)) {
		return -EINVAL;
	}
	c->phase = PH_FOLLOWING;
	c->watch_up = 0;
	return 0;
}

static void follow(struct kl_cluster *c)
{
	int rc = 0;

	for (int i = 0; i < WATCH_RUNS; i++) {
		uint64_t ev = st_get(c, KL_CLUSTER_EVENTS_APPLIED) +
			      st_get(c, KL_CLUSTER_EVENTS_SKIPPED) +
			      st_get(c, KL_CLUSTER_EVENTS_REFUSED);

		rc = kl_etcd_watch_run(c->watch);
		if (rc || c->batch_failed)
			break;
		if (ev == st_get(c, KL_CLUSTER_EVENTS_APPLIED) + st_get(c, KL_CLUSTER_EVENTS_SKIPPED) +
				  st_get(c, KL_CLUSTER_EVENTS_REFUSED))
			break; /* nothing more came */
	}
	/* every event up to the watch's resume point was delivered (all of a revision come in one
	 * message) */
	if (c->batch_open || c->batch_failed) {
		if (batch_end(c, kl_etcd_watch_next_revision(c->watch) - 1) < 0)
			(void)watch_from(c, c->applied + 1);
	}
	if (rc == KL_ETCD_ECOMPACTED)
		resync_begin(c, "etcd compacted past the replica's revision");
	else if (rc == KL_ETCD_ESERVER)
		(void)watch_from(c, c->applied + 1); /* canceled: reopen (back-off in the watch) */
}

/* ---- full resynchronisation ----------------------------------------------------------------- */

struct del_list {
	struct touched *v;
	size_t n, cap;
	const struct keyset *seen;
	int64_t snap;
};

static int collect_gone(void *arg, const char *db, const uint8_t *key, size_t key_len,
			const uint8_t *value, size_t value_len, int64_t rev)
{
	struct del_list *d = arg;
	uint64_t h[2];

	(void)value_len;
	if (!value || key_len > LMDB_KEY_MAX || rev > d->snap)
		return 0; /* a tombstone, or written after the snapshot */
	ks_hash(db, key, key_len, h);
	if (ks_has(d->seen, h))
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct touched *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	snprintf(d->v[d->n].db, sizeof(d->v[d->n].db), "%s", db);
	d->v[d->n].len = (uint16_t)key_len;
	memcpy(d->v[d->n].key, key, key_len);
	d->n++;
	return 0;
}

/* The snapshot is read: delete what it does not hold, set the revision, follow from it. */
static void resync_finish(struct kl_cluster *c)
{
	struct del_list d = { .seen = &c->rs_seen, .snap = c->rs_rev };
	int rc = kl_store_each_record(c->store, collect_gone, &d);

	if (rc) {
		logf_(c, KL_CONFIG_LOG_ERROR, "resync: reading the replica failed: %s",
		      rc < 0 ? strerror(-rc) : "stopped");
		free(d.v);
		resync_begin(c, "again after a failure");
		return;
	}
	for (size_t i = 0; i < d.n; i++) {
		if (batch_begin(c)) {
			c->batch_failed = 1;
			break;
		}
		rc = kl_store_apply(c->store, d.v[i].db, d.v[i].key, d.v[i].len, NULL, 0, c->rs_rev);
		if (rc == 1) {
			if (touch(c, d.v[i].db, d.v[i].key, d.v[i].len))
				c->batch_failed = 1;
		} else if (rc < 0) {
			c->batch_failed = 1;
			snprintf(c->last_err, sizeof(c->last_err), "store: %s (%s)", strerror(-rc),
				 kl_store_last_error(c->store));
		}
	}
	free(d.v);
	if (batch_end(c, c->rs_rev) < 0) {
		resync_begin(c, "again after a failure");
		return;
	}
	st_add(c, KL_CLUSTER_RESYNC_DELETED, d.n);
	for (size_t i = 0; i < c->n_retry; i++)
		sync_table(c, &c->rs_retry[i], 0);
	c->n_retry = 0;
	(void)kl_store_purge_tombstones(c->store, c->rs_rev);
	logf_(c, KL_CONFIG_LOG_INFO,
	      "resynchronised at revision %" PRId64 ": %" PRIu64 " entries read, %zu deleted, in "
	      "%" PRIu64 " ms",
	      c->rs_rev, c->rs_entries, d.n, now_ms() - c->rs_started_ms);
	ks_free(&c->rs_seen);
	if (watch_from(c, c->rs_rev + 1))
		logf_(c, KL_CONFIG_LOG_ERROR, "cannot start the watch: out of memory");
}

/* One page of the snapshot, in one store batch. */
static void resync_page(struct kl_cluster *c)
{
	struct kl_etcd_range r;
	int rc = kl_etcd_range_page(c->etcd, c->kv_prefix, strlen(c->kv_prefix),
				    c->rs_after_len ? c->rs_after : NULL, c->rs_after_len,
				    RESYNC_PAGE, c->rs_rev, &r);

	if (rc == KL_ETCD_ECOMPACTED) {
		resync_begin(c, "the snapshot was compacted meanwhile");
		return;
	}
	if (rc) {
		link_down(c, "resync", kl_etcd_errmsg(c->etcd));
		return;
	}
	link_ok(c);
	if (!c->rs_rev)
		c->rs_rev = r.hdr.revision;
	if (r.hdr.revision > c->watch_hdr)
		c->watch_hdr = r.hdr.revision;
	for (size_t i = 0; i < r.n; i++) {
		const struct kl_etcd_kv *kv = &r.kvs[i];
		char db[16];
		uint8_t key[LMDB_KEY_MAX];
		size_t klen;
		uint64_t h[2];

		if (!kl_cluster_key_parse(c->cfg.prefix, kv->key, kv->key_len, db, key, sizeof(key),
					  &klen)) {
			ks_hash(db, key, klen, h);
			if (ks_add(&c->rs_seen, h))
				c->batch_failed = 1;
		}
		apply_one(c, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision);
	}
	c->rs_entries += r.n;
	st_add(c, KL_CLUSTER_RESYNC_ENTRIES, r.n);
	if (r.n) {
		const struct kl_etcd_kv *last = &r.kvs[r.n - 1];
		uint8_t *a = malloc(last->key_len);

		if (!a) {
			c->batch_failed = 1;
		} else {
			memcpy(a, last->key, last->key_len);
			free(c->rs_after);
			c->rs_after = a;
			c->rs_after_len = last->key_len;
		}
	}
	/* the revision is set once the whole snapshot is in */
	if (batch_end(c, 0) < 0) {
		kl_etcd_range_free(&r);
		resync_begin(c, "again after a failure");
		return;
	}
	if (!r.more || !r.n)
		resync_finish(c);
	kl_etcd_range_free(&r);
}

/* ---- seed ---------------------------------------------------------------------------------------- */

struct seed {
	struct kl_cluster *c;
	struct kl_store_change ch[SEED_CHUNK];
	int64_t mrev[SEED_CHUNK];
	uint8_t *buf[SEED_CHUNK];
	size_t n;
	uint64_t total;
	char err[256];
	int64_t *revs; /* the revisions of the seed's transactions (with repeats) */
	size_t n_revs, cap_revs;
	int revs_lost; /* one unknown (no memory, or a change without its revision) */
};

static int seed_flush(struct seed *s)
{
	int64_t rev = 0;
	int rc = 0;

	if (s->n)
		rc = kl_cluster_repl_ops.commit(s->c->repl, s->ch, s->n, &rev, s->err,
						 sizeof(s->err));
	for (size_t i = 0; i < s->n && !rc; i++) {
		if (s->n_revs && s->revs[s->n_revs - 1] == s->mrev[i])
			continue; /* the same transaction as the change before */
		if (s->n_revs == s->cap_revs) {
			size_t cap = s->cap_revs ? s->cap_revs * 2 : 64;
			int64_t *v = realloc(s->revs, cap * sizeof(*v));

			if (!v) {
				s->revs_lost = 1;
				break;
			}
			s->revs = v;
			s->cap_revs = cap;
		}
		if (s->mrev[i] <= 0)
			s->revs_lost = 1;
		s->revs[s->n_revs++] = s->mrev[i];
	}
	for (size_t i = 0; i < s->n; i++)
		free(s->buf[i]);
	if (!rc)
		s->total += s->n;
	s->n = 0;
	return rc;
}

static int seed_one(void *arg, const char *db, const uint8_t *key, size_t key_len,
		    const uint8_t *value, size_t value_len, int64_t rev)
{
	struct seed *s = arg;
	struct kl_store_change *ch = &s->ch[s->n];
	uint8_t *b;

	(void)rev;
	if (!value)
		return 0; /* a tombstone */
	b = malloc(16 + key_len + value_len);
	if (!b)
		return -ENOMEM;
	snprintf((char *)b, 16, "%s", db);
	memcpy(b + 16, key, key_len);
	memcpy(b + 16 + key_len, value, value_len);
	memset(ch, 0, sizeof(*ch));
	ch->db = (const char *)b;
	ch->key = b + 16;
	ch->key_len = key_len;
	ch->value = b + 16 + key_len;
	ch->value_len = value_len;
	s->mrev[s->n] = 0;
	ch->mod_revision = &s->mrev[s->n];
	s->buf[s->n++] = b;
	return s->n == SEED_CHUNK ? seed_flush(s) : 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* When the seed's transactions took exactly the revisions after + 1 .. S, nothing else was
 * written to etcd between revision `after` and the seed's end: returns S, else 0. */
static int64_t seed_contiguous(struct seed *s, int64_t after)
{
	size_t n = 0;

	if (s->revs_lost || !s->n_revs || after <= 0)
		return 0;
	qsort(s->revs, s->n_revs, sizeof(*s->revs), cmp_i64);
	for (size_t i = 0; i < s->n_revs; i++)
		if (!n || s->revs[n - 1] != s->revs[i])
			s->revs[n++] = s->revs[i];
	return s->revs[0] == after + 1 && s->revs[n - 1] == after + (int64_t)n ? s->revs[n - 1]
									       : 0;
}

/* Upload every store entry into the catalogue (last writer wins). @return entries or -errno.
 * upto (may be NULL): see seed_contiguous (from revision after). */
static long seed(struct kl_cluster *c, char *err, size_t errlen, int64_t after, int64_t *upto)
{
	struct seed *s = calloc(1, sizeof(*s));
	long rc;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->c = c;
	rc = kl_store_each_record(c->store, seed_one, s);
	if (!rc)
		rc = seed_flush(s);
	for (size_t i = 0; i < s->n; i++)
		free(s->buf[i]);
	if (rc)
		snprintf(err, errlen, "%s", s->err[0] ? s->err : strerror((int)-rc));
	else
		rc = (long)s->total;
	if (upto)
		*upto = rc >= 0 ? seed_contiguous(s, after) : 0;
	st_add(c, KL_CLUSTER_SEEDED, s->total);
	free(s->revs);
	free(s);
	return rc;
}

/* ---- join and registration ------------------------------------------------------------------ */

/* The join transaction on client e (P/meta/kek_check created when absent, else compared with
 * the store's). Reads nothing of c but its configuration and c->kek, so the cluster thread runs
 * it too. @return 0 joined (*created: by this transaction, *rev: its revision), 1 not yet (etcd
 * unreachable: retried), -1 refused (wrong KEK: fatal); err says why. */
static int join_txn(const struct kl_cluster *c, struct kl_etcd *e, int *created, int64_t *rev,
		    char *err, size_t errlen)
{
	char kk[KL_CONFIG_CLUSTER_PREFIX_MAX + 32];
	struct kl_etcd_cmp cmp;
	struct kl_etcd_op put, get;
	struct kl_etcd_txn_result t;
	int rc;

	snprintf(kk, sizeof(kk), "%s/meta/kek_check", c->cfg.prefix);
	memset(&cmp, 0, sizeof(cmp));
	cmp.key = (const uint8_t *)kk;
	cmp.key_len = strlen(kk);
	cmp.target = KL_ETCD_CREATE;
	cmp.op = KL_ETCD_EQUAL;
	memset(&put, 0, sizeof(put));
	put.kind = KL_ETCD_OP_PUT;
	put.key = cmp.key;
	put.key_len = cmp.key_len;
	put.value = c->kek;
	put.value_len = c->kek_len;
	memset(&get, 0, sizeof(get));
	get.kind = KL_ETCD_OP_RANGE;
	get.key = cmp.key;
	get.key_len = cmp.key_len;
	rc = kl_etcd_txn(e, &cmp, 1, &put, 1, &get, 1, &t);
	if (rc) {
		snprintf(err, errlen, "%s", kl_etcd_errmsg(e));
		return 1;
	}
	*created = t.succeeded;
	*rev = t.hdr.revision;
	if (!t.succeeded) {
		const struct kl_etcd_range *r = t.n == 1 ? &t.res[0].range : NULL;

		if (!r || r->n != 1 || r->kvs[0].value_len != c->kek_len ||
		    memcmp(r->kvs[0].value, c->kek, c->kek_len)) {
			snprintf(err, errlen,
				 "this node's KEK (store.kek_file) is not the cluster's: %s holds "
				 "another key check (every node of a cluster needs the same KEK "
				 "file); refusing to start",
				 kk);
			kl_etcd_txn_result_free(&t);
			return -1;
		}
	}
	kl_etcd_txn_result_free(&t);
	return 0;
}

/* The first node of a new cluster (created at revision rev) whose store holds entries while the
 * catalogue is empty uploads them. When nothing else was written to etcd between its join and
 * the seed's end, the catalogue at the seed's last revision is exactly the store: the replica
 * continues from there (no full resynchronisation reading back what it has just written). */
static void seed_new(struct kl_cluster *c, int64_t rev)
{
	struct kl_etcd_range r;
	struct kl_etcd_range_req q = { 0 };
	uint8_t end[sizeof(c->kv_prefix)];
	struct kl_store_stats ss;
	uint64_t local_n = 0;
	int64_t n, upto = 0;
	char e[256];
	long sn;

	q.key = (const uint8_t *)c->kv_prefix;
	q.key_len = strlen(c->kv_prefix);
	q.range_end = end;
	q.range_end_len = kl_etcd_prefix_end(q.key, q.key_len, end);
	q.count_only = 1;
	if (!kl_store_stats(c->store, &ss))
		for (unsigned k = 0; k < KL_TK__COUNT; k++)
			local_n += ss.entries[k];
	if (!local_n || kl_etcd_range(c->etcd, &q, &r) != 0)
		return;
	n = r.count;
	kl_etcd_range_free(&r);
	if (n != 0)
		return;
	sn = seed(c, e, sizeof(e), rev, &upto);
	if (sn < 0) {
		logf_(c, KL_CONFIG_LOG_ERROR,
		      "seeding the new catalogue from the store failed: %s (keylinectl "
		      "cluster-seed tries again)",
		      e);
		return;
	}
	logf_(c, KL_CONFIG_LOG_INFO, "seeded the new catalogue with the store's %ld entries", sn);
	if (upto > c->applied && batch_end(c, upto) == 0)
		logf_(c, KL_CONFIG_LOG_INFO,
		      "the replica is the catalogue at revision %" PRId64 " (the seed's): following "
		      "from there",
		      upto);
	else if (c->applied <= 0)
		logf_(c, KL_CONFIG_LOG_INFO, "etcd was written meanwhile by others: the replica "
					     "reads the catalogue back");
}

/* Joined (join_txn said 0): set up the replica and follow. 0, or -1 (out of memory). */
static int join_done(struct kl_cluster *c, int created, int64_t rev, char *err, size_t errlen)
{
	st_set(c, KL_CLUSTER_JOINED, 1);
	c->applied = kl_store_revision(c->store);
	logf_(c, KL_CONFIG_LOG_INFO, "node %s joined cluster %s%s (replica at revision %" PRId64 ")",
	      c->cfg.node, c->cfg.prefix, created ? " (new: this node created it)" : "",
	      c->applied);
	if (created)
		seed_new(c, rev);
	if (c->applied <= 0)
		resync_begin(c, "the replica has never applied the catalogue");
	else if (watch_from(c, c->applied + 1)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* At start, on the control thread. @return as join_txn. */
static int join(struct kl_cluster *c, char *err, size_t errlen)
{
	int created = 0, rc;
	int64_t rev = 0;

	rc = join_txn(c, c->etcd, &created, &rev, err, errlen);
	if (rc > 0)
		link_down(c, "join", err);
	if (rc)
		return rc;
	link_ok(c);
	return join_done(c, created, rev, err, errlen);
}

/* ---- the cluster thread ------------------------------------------------------------------------- */

static void bg_log(struct kl_cluster *c, enum kl_config_log_level l, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void bg_log(struct kl_cluster *c, enum kl_config_log_level l, const char *fmt, ...)
{
	struct mailbox *m = &c->mb;
	va_list ap;

	pthread_mutex_lock(&m->mu);
	if (m->n_logs < MB_LOGS) {
		va_start(ap, fmt);
		vsnprintf(m->logs[m->n_logs], sizeof(m->logs[0]), fmt, ap);
		va_end(ap);
		m->log_level[m->n_logs++] = (int)l;
	}
	pthread_mutex_unlock(&m->mu);
}

/* What a periodic call told about the link (the control thread applies the last one). */
static void bg_link(struct kl_cluster *c, int ok, const char *what, const char *why)
{
	struct mailbox *m = &c->mb;

	pthread_mutex_lock(&m->mu);
	m->link_seq++;
	m->link_ok = ok;
	snprintf(m->link_what, sizeof(m->link_what), "%s", what);
	snprintf(m->link_err, sizeof(m->link_err), "%s", why ? why : "");
	pthread_mutex_unlock(&m->mu);
}

static int node_value(struct kl_cluster *c, char *out, size_t cap)
{
	int64_t applied;
	int stale;
	char role[16];
	json_t *j;
	char *s;
	int n;

	pthread_mutex_lock(&c->mb.mu);
	applied = c->mb.applied;
	stale = c->mb.stale;
	memcpy(role, c->mb.role, sizeof(role));
	pthread_mutex_unlock(&c->mb.mu);
	j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:b,s:s}", "node", c->cfg.node, "version", c->version,
		      "started", (json_int_t)c->started_unix, "updated", (json_int_t)time(NULL),
		      "applied_revision", (json_int_t)applied, "stale", stale, "role", role);
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	n = s ? snprintf(out, cap, "%s", s) : -1;
	free(s);
	json_decref(j);
	return n > 0 && (size_t)n < cap ? n : -1;
}

static void set_registered(struct kl_cluster *c, int r)
{
	c->registered = r;
	pthread_mutex_lock(&c->mb.mu);
	c->mb.registered = r;
	pthread_mutex_unlock(&c->mb.mu);
}

/* Take P/nodes/<node> on a fresh lease (or ours): 0, or 1 (another node holds the name).
 * Cluster thread. */
static int do_register(struct kl_cluster *c)
{
	struct kl_etcd *e = c->bg_etcd;
	char val[512];
	int n = node_value(c, val, sizeof(val));
	struct kl_etcd_cmp cmp[1];
	struct kl_etcd_op put, get;
	struct kl_etcd_txn_result t;
	struct kl_etcd_lease l;
	int rc;

	if (n < 0)
		return -1;
	if (!c->lease) {
		rc = kl_etcd_lease_grant(e, c->cfg.lease_ttl_s, 0, &l);
		if (rc) {
			bg_link(c, 0, "lease", kl_etcd_errmsg(e));
			st_add(c, KL_CLUSTER_KEEPALIVE_FAILURES, 1);
			return -1;
		}
		c->lease = l.id;
	}
	memset(cmp, 0, sizeof(cmp));
	cmp[0].key = (const uint8_t *)c->node_key;
	cmp[0].key_len = strlen(c->node_key);
	cmp[0].target = KL_ETCD_CREATE;
	cmp[0].op = KL_ETCD_EQUAL;
	memset(&put, 0, sizeof(put));
	put.kind = KL_ETCD_OP_PUT;
	put.key = cmp[0].key;
	put.key_len = cmp[0].key_len;
	put.value = (const uint8_t *)val;
	put.value_len = (size_t)n;
	put.lease = c->lease;
	memset(&get, 0, sizeof(get));
	get.kind = KL_ETCD_OP_RANGE;
	get.key = cmp[0].key;
	get.key_len = cmp[0].key_len;
	rc = kl_etcd_txn(e, cmp, 1, &put, 1, &get, 1, &t);
	if (rc) {
		bg_link(c, 0, "register", kl_etcd_errmsg(e));
		return -1;
	}
	if (!t.succeeded) {
		const struct kl_etcd_range *r = t.n == 1 ? &t.res[0].range : NULL;
		int ours = r && r->n == 1 && r->kvs[0].lease == c->lease;

		kl_etcd_txn_result_free(&t);
		if (!ours) {
			if (!c->register_warned)
				bg_log(c, KL_CONFIG_LOG_WARNING,
				       "node name %s is registered by another lease (another node "
				       "with this name, or this node's previous run until its lease "
				       "expires): registering again every second",
				       c->cfg.node);
			c->register_warned = 1;
			return 1;
		}
		rc = kl_etcd_put(e, c->node_key, strlen(c->node_key), val, (size_t)n, c->lease,
				 NULL);
		if (rc)
			return -1;
	} else {
		kl_etcd_txn_result_free(&t);
	}
	if (!c->registered)
		bg_log(c, KL_CONFIG_LOG_INFO, "registered as %s (lease %" PRIx64 ", %u s)",
		       c->node_key, (uint64_t)c->lease, c->cfg.lease_ttl_s);
	set_registered(c, 1);
	c->register_warned = 0;
	return 0;
}

/* Cluster thread. */
static void keepalive(struct kl_cluster *c)
{
	struct kl_etcd_lease l;
	int rc;

	if (!c->lease || !c->registered) {
		(void)do_register(c);
		return;
	}
	rc = kl_etcd_lease_keepalive(c->bg_etcd, c->lease, &l);
	if (rc == KL_ETCD_ENOTFOUND) {
		/* expired while the link was down: a new lease, the registration again */
		bg_log(c, KL_CONFIG_LOG_WARNING, "the node's lease expired: registering again");
		c->lease = 0;
		set_registered(c, 0);
		(void)do_register(c);
		return;
	}
	if (rc) {
		st_add(c, KL_CLUSTER_KEEPALIVE_FAILURES, 1);
		bg_link(c, 0, "keep-alive", kl_etcd_errmsg(c->bg_etcd));
		return;
	}
	bg_link(c, 1, "keep-alive", NULL);
}

/* Cluster thread: etcd's status (revision, leader) into the mailbox. */
static void bg_status(struct kl_cluster *c)
{
	struct kl_etcd_status s;
	int rc = kl_etcd_status(c->bg_etcd, &s);

	pthread_mutex_lock(&c->mb.mu);
	c->mb.es_seq++;
	c->mb.es_ok = rc == 0;
	if (!rc)
		c->mb.es = s;
	pthread_mutex_unlock(&c->mb.mu);
	bg_link(c, rc == 0, "status", rc ? kl_etcd_errmsg(c->bg_etcd) : NULL);
}

/* Cluster thread: the join transaction, while etcd could not be reached at start. */
static void bg_join(struct kl_cluster *c)
{
	char e[512] = "";
	int created = 0;
	int64_t rev = 0;
	int rc = join_txn(c, c->bg_etcd, &created, &rev, e, sizeof(e));

	pthread_mutex_lock(&c->mb.mu);
	c->mb.join_seq++;
	c->mb.join_rc = rc;
	c->mb.join_created = created;
	c->mb.join_rev = rev;
	snprintf(c->mb.join_err, sizeof(c->mb.join_err), "%s", e);
	if (rc <= 0)
		c->mb.want_join = 0; /* the control thread takes it from here */
	pthread_mutex_unlock(&c->mb.mu);
}

static void *bg_main(void *arg)
{
	struct kl_cluster *c = arg;
	struct mailbox *m = &c->mb;
	unsigned ka = c->cfg.lease_ttl_s * 1000u / 3;
	uint64_t next_status = 0, next_ka = 0, next_reg = 0, next_join = 0;

	if (ka > c->cfg.stale_after_ms / 2)
		ka = c->cfg.stale_after_ms / 2;
	if (!ka)
		ka = 1;
	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		uint64_t now = now_ms(), due = next_status;
		int joined = m->joined, want_join = m->want_join;

		if (joined && next_ka < due)
			due = next_ka;
		if (joined && c->registered && next_reg < due)
			due = next_reg;
		if (!joined && want_join && next_join < due)
			due = next_join;
		if (due > now) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)((due - now) / 1000);
			ts.tv_nsec += (long)((due - now) % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&m->cv, &m->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&m->mu);
		if (!joined && want_join && now >= next_join) {
			next_join = now + 1000;
			bg_join(c);
		}
		if (joined && now >= next_ka) {
			next_ka = now + ka;
			keepalive(c);
		}
		if (joined && c->registered && now >= next_reg) {
			next_reg = now + REGISTER_EVERY_MS;
			(void)do_register(c);
		}
		if (now >= next_status) {
			next_status = now + STATUS_EVERY_MS;
			bg_status(c);
		}
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* Control thread: take in what the cluster thread published, and publish what it needs. */
static void mb_drain(struct kl_cluster *c)
{
	struct mailbox *m = &c->mb;
	char logs[MB_LOGS][256], what[16], why[256];
	int lv[MB_LOGS], link = -1, join_rc = 1, created = 0;
	unsigned n_logs;
	int64_t join_rev = 0;
	int join_new = 0, signal = 0;
	char join_err[512];

	pthread_mutex_lock(&m->mu);
	n_logs = m->n_logs;
	memcpy(logs, m->logs, sizeof(logs[0]) * n_logs);
	memcpy(lv, m->log_level, sizeof(lv[0]) * n_logs);
	m->n_logs = 0;
	if (m->link_seq != c->link_seen) {
		c->link_seen = m->link_seq;
		link = m->link_ok;
		memcpy(what, m->link_what, sizeof(what));
		memcpy(why, m->link_err, sizeof(why));
	}
	if (m->es_seq != c->es_seen) {
		c->es_seen = m->es_seq;
		c->es_ok = m->es_ok;
		if (m->es_ok)
			c->es = m->es;
	}
	c->registered_seen = m->registered;
	if (m->join_seq != c->join_seen) {
		c->join_seen = m->join_seq;
		join_new = 1;
		join_rc = m->join_rc;
		created = m->join_created;
		join_rev = m->join_rev;
		memcpy(join_err, m->join_err, sizeof(join_err));
	}
	m->applied = c->applied;
	m->stale = (int)st_get(c, KL_CLUSTER_STALE);
	snprintf(m->role, sizeof(m->role), "%s", kl_cluster_role_name(c->st));
	pthread_mutex_unlock(&m->mu);

	for (unsigned i = 0; i < n_logs; i++)
		logf_(c, (enum kl_config_log_level)lv[i], "%s", logs[i]);
	if (c->es_ok)
		st_set(c, KL_CLUSTER_ETCD_REVISION, (uint64_t)c->es.hdr.revision);
	if (link == 1 && c->phase != PH_JOINING)
		link_ok(c);
	else if (link == 0)
		link_down(c, what, why);
	if (join_new && c->phase == PH_JOINING && !st_get(c, KL_CLUSTER_JOINED)) {
		char e[512];

		if (join_rc < 0) {
			/* the KEK differs: nothing of this node may reach the catalogue */
			if (c->join_warned != 2)
				logf_(c, KL_CONFIG_LOG_ERROR, "%s", join_err);
			c->join_warned = 2;
		} else if (join_rc > 0) {
			link_down(c, "join", join_err);
		} else {
			link_ok(c);
			if (join_done(c, created, join_rev, e, sizeof(e)))
				logf_(c, KL_CONFIG_LOG_ERROR, "%s", e);
			signal = 1;
		}
	}
	if (signal) {
		pthread_mutex_lock(&m->mu);
		m->joined = 1;
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
}

/* The cluster thread with its own client; joined: it registers at once, else it joins. */
static int bg_start(struct kl_cluster *c, int joined, char *err, size_t errlen)
{
	pthread_condattr_t ca;

	c->bg_etcd = kl_etcd_new_like(c->etcd, err, errlen);
	if (!c->bg_etcd)
		return -1;
	kl_etcd_set_abort(c->bg_etcd, &c->bg_abort);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->mb.cv, &ca);
	pthread_condattr_destroy(&ca);
	c->mb.joined = joined;
	c->mb.want_join = !joined;
	c->mb.applied = c->applied;
	snprintf(c->mb.role, sizeof(c->mb.role), "%s", kl_cluster_role_name(c->st));
	if (pthread_create(&c->bg, NULL, bg_main, c)) {
		snprintf(err, errlen, "cannot start the cluster thread");
		pthread_cond_destroy(&c->mb.cv);
		return -1;
	}
	c->bg_started = 1;
	return 0;
}

static void bg_stop(struct kl_cluster *c)
{
	if (!c->bg_started)
		return;
	__atomic_store_n(&c->bg_abort, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&c->mb.mu);
	c->mb.stop = 1;
	pthread_cond_signal(&c->mb.cv);
	pthread_mutex_unlock(&c->mb.mu);
	pthread_join(c->bg, NULL);
	pthread_cond_destroy(&c->mb.cv);
	c->bg_started = 0;
	__atomic_store_n(&c->bg_abort, 0, __ATOMIC_RELAXED);
}

/* ---- the service -------------------------------------------------------------------------------- */

static int gate_commit(void *arg, const struct kl_store_change *ch, size_t n, int64_t *revision,
		       char *err, size_t errlen)
{
	struct kl_cluster *c = arg;
	struct kl_cluster_repl_stats rs;
	int rc;

	if (!st_get(c, KL_CLUSTER_JOINED)) {
		snprintf(err, errlen, "cluster: not joined yet (etcd unreachable since start: %s)",
			 c->last_err);
		return -ENOTCONN;
	}
	rc = kl_cluster_repl_ops.commit(c->repl, ch, n, revision, err, errlen);
	if (rc == -ENOTCONN)
		link_down(c, "write", err);
	else if (!rc)
		link_ok(c);
	kl_cluster_repl_stats(c->repl, &rs);
	st_set(c, KL_CLUSTER_REPL_COMMITS, rs.commits);
	st_set(c, KL_CLUSTER_REPL_TXNS, rs.txns);
	st_set(c, KL_CLUSTER_REPL_OPS, rs.ops);
	st_set(c, KL_CLUSTER_REPL_CONFLICTS, rs.conflicts);
	st_set(c, KL_CLUSTER_REPL_UNREACHABLE, rs.unreachable);
	st_set(c, KL_CLUSTER_REPL_UNKNOWN, rs.unknown);
	st_set(c, KL_CLUSTER_REPL_LATENCY_US_SUM, rs.lat_us_sum);
	st_set(c, KL_CLUSTER_REPL_LATENCY_US_MAX, rs.lat_us_max);
	return rc;
}

struct kl_cluster *kl_cluster_start(const struct kl_cluster_params *p, int *config_error,
				    char *err, size_t errlen)
{
	const char *eps[KL_CONFIG_CLUSTER_MAX_ENDPOINTS];
	struct kl_etcd_opts o = { 0 };
	struct kl_cluster *c;
	char e[512];
	int rc;

	*config_error = 1;
	if (!p || !p->cfg || !p->store || !p->table) {
		snprintf(err, errlen, "cluster: needs the store (store: section)");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		*config_error = 0;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mb.mu, NULL);
	c->cfg = *p->cfg;
	c->store = p->store;
	c->table = p->table;
	c->st = p->stats ? p->stats : &c->own_stats;
	for (unsigned i = 0; i < KL_CLUSTER__COUNT; i++)
		st_set(c, (enum kl_cluster_stat)i, 0);
	if (strcmp(c->st->node, c->cfg.node)) /* the daemon set it before sharing the stats */
		snprintf(c->st->node, sizeof(c->st->node), "%s", c->cfg.node);
	kl_cluster_role_set(c->st, KL_CLUSTER_ROLE_FOLLOWER);
	c->log = p->log;
	c->log_arg = p->log_arg;
	snprintf(c->version, sizeof(c->version), "%s", p->version ? p->version : "?");
	snprintf(c->kv_prefix, sizeof(c->kv_prefix), "%s/kv/", c->cfg.prefix);
	snprintf(c->node_key, sizeof(c->node_key), "%s/nodes/%s", c->cfg.prefix, c->cfg.node);
	c->started_unix = (uint64_t)time(NULL);
	for (unsigned i = 0; i < c->cfg.n_endpoints; i++)
		eps[i] = c->cfg.endpoints[i];
	o.endpoints = eps;
	o.n_endpoints = c->cfg.n_endpoints;
	o.ca_file = c->cfg.ca_file[0] ? c->cfg.ca_file : NULL;
	o.cert_file = c->cfg.cert_file[0] ? c->cfg.cert_file : NULL;
	o.key_file = c->cfg.key_file[0] ? c->cfg.key_file : NULL;
	o.connect_timeout_ms = c->cfg.connect_timeout_ms;
	o.request_timeout_ms = c->cfg.request_timeout_ms;
	c->etcd = kl_etcd_new(&o, e, sizeof(e));
	if (c->etcd)
		c->repl = kl_cluster_repl_new(c->etcd, c->cfg.prefix, e, sizeof(e));
	if (c->repl && c->cfg.write_connections > 1 &&
	    kl_cluster_repl_set_parallel(c->repl, &o, c->cfg.write_connections, e, sizeof(e)))
		logf_(c, KL_CONFIG_LOG_WARNING, "writes over one connection: %s", e);
	if (!c->etcd || !c->repl) {
		snprintf(err, errlen, "%s", e);
		kl_cluster_stop(c);
		return NULL;
	}
	{
		long ll = kl_store_kek_check(c->store, c->kek, sizeof(c->kek));

		if (ll <= 0) {
			snprintf(err, errlen, "the store has no kek_check record: %s",
				 ll < 0 ? strerror((int)-ll) : "empty");
			kl_cluster_stop(c);
			return NULL;
		}
		c->kek_len = (size_t)ll;
	}
	c->applied = kl_store_revision(c->store);
	c->phase = PH_JOINING;
	rc = join(c, e, sizeof(e));
	if (rc < 0) {
		snprintf(err, errlen, "%s", e);
		kl_cluster_stop(c);
		return NULL;
	}
	if (rc > 0) {
		logf_(c, KL_CONFIG_LOG_WARNING,
		      "etcd unreachable (%s): serving the replica (revision %" PRId64 "), writes "
		      "refused until the node has joined",
		      e, c->applied);
		c->join_warned = 1;
	}
	if (bg_start(c, rc == 0, e, sizeof(e))) {
		*config_error = 0;
		snprintf(err, errlen, "%s", e);
		kl_cluster_stop(c);
		return NULL;
	}
	c->gate.commit = gate_commit;
	kl_store_set_repl(c->store, &c->gate, c);
	update_lag(c);
	*config_error = 0;
	return c;
}

void kl_cluster_stop(struct kl_cluster *c)
{
	if (!c)
		return;
	if (c->batch_open)
		kl_store_txn_abort(c->store);
	if (c->repl)
		kl_store_set_repl(c->store, NULL, NULL);
	bg_stop(c);
	if (c->lease && c->bg_etcd)
		(void)kl_etcd_lease_revoke(c->bg_etcd, c->lease); /* the registration goes with it */
	kl_etcd_free(c->bg_etcd);
	pthread_mutex_destroy(&c->mb.mu);
	kl_etcd_watch_free(c->watch);
	kl_cluster_repl_free(c->repl);
	kl_etcd_free(c->etcd);
	ks_free(&c->rs_seen);
	free(c->rs_after);
	free(c->rs_retry);
	free(c->touched);
	free(c);
}

int kl_cluster_pollfds(struct kl_cluster *c, struct pollfd *pf, int max)
{
	return c->phase == PH_FOLLOWING && c->watch ? kl_etcd_watch_pollfds(c->watch, pf, max) : 0;
}

int kl_cluster_timeout_ms(struct kl_cluster *c)
{
	if (c->phase == PH_RESYNC)
		return 0; /* the next page at once */
	if (c->phase == PH_FOLLOWING && c->watch)
		return kl_etcd_watch_timeout_ms(c->watch);
	return -1;
}

/* The control loop's part: the watch's events or a resync page; the keep-alive, the
 * registration, etcd's status and the join retries are the cluster thread's (mb_drain takes in
 * what it saw). */
void kl_cluster_poll(struct kl_cluster *c)
{
	mb_drain(c);
	if (c->phase == PH_RESYNC)
		resync_page(c);
	else if (c->phase == PH_FOLLOWING && c->watch)
		follow(c);
	update_stale(c);
	update_lag(c);
}

void kl_cluster_tick(struct kl_cluster *c)
{
	mb_drain(c);
	/* a quiet watch that resumes from further on (progress notifications): note it */
	if (c->phase == PH_FOLLOWING && c->watch && !c->batch_open) {
		int64_t r = kl_etcd_watch_next_revision(c->watch) - 1;

		if (r > c->applied)
			(void)batch_end(c, r);
	}
	update_stale(c);
	update_lag(c);
}

/* ---- status and admin -------------------------------------------------------------------------- */

static const char *phase_name(enum phase p)
{
	return p == PH_JOINING ? "joining" : p == PH_RESYNC ? "resynchronising" : "following";
}

json_t *kl_cluster_status(struct kl_cluster *c)
{
	json_t *o, *cnt = json_object(), *etcd, *rep;
	char member[24], leader[24];

	update_lag(c);
	for (unsigned i = 0; i < KL_CLUSTER__COUNT; i++)
		json_object_set_new(cnt, kl_cluster_stat_info(i)->name,
				    json_integer((json_int_t)st_get(c, (enum kl_cluster_stat)i)));
	snprintf(member, sizeof(member), "%" PRIx64, c->es.hdr.member_id);
	snprintf(leader, sizeof(leader), "%" PRIx64, c->es.leader);
	etcd = json_pack("{s:s,s:b,s:s,s:s,s:s,s:I,s:I,s:I}", "endpoint",
			 kl_etcd_endpoint(c->etcd), "healthy", c->es_ok && c->es.leader != 0,
			 "member", member, "leader", leader, "version", c->es.version, "revision",
			 (json_int_t)c->es.hdr.revision, "db_size", (json_int_t)c->es.db_size,
			 "raft_term", (json_int_t)c->es.raft_term);
	if (etcd && !c->es_ok)
		json_object_set_new(etcd, "error", json_string(c->last_err));
	rep = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "commits",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_COMMITS), "txns",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_TXNS), "ops",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_OPS), "conflicts",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_CONFLICTS), "unreachable",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_UNREACHABLE), "unknown",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_UNKNOWN), "latency_us_sum",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_LATENCY_US_SUM), "latency_us_max",
			(json_int_t)st_get(c, KL_CLUSTER_REPL_LATENCY_US_MAX));
	o = json_pack("{s:b,s:s,s:s,s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "enabled", 1,
		      "node", c->cfg.node, "prefix", c->cfg.prefix, "role",
		      kl_cluster_role_name(c->st), "state", phase_name(c->phase), "stale",
		      (int)st_get(c, KL_CLUSTER_STALE),
		      "registered", c->registered_seen, "applied_revision", (json_int_t)c->applied,
		      "etcd_revision", (json_int_t)st_get(c, KL_CLUSTER_ETCD_REVISION),
		      "lag_revisions", (json_int_t)st_get(c, KL_CLUSTER_LAG_REVISIONS), "lag_ms",
		      (json_int_t)st_get(c, KL_CLUSTER_LAG_MS), "since_last_event_ms",
		      (json_int_t)st_get(c, KL_CLUSTER_SINCE_EVENT_MS), "etcd",
		      etcd ? etcd : json_null(), "replicator", rep ? rep : json_null(), "counters",
		      cnt ? cnt : json_null());
	if (o && c->down_since_ms)
		json_object_set_new(o, "link_error", json_string(c->last_err));
	return o;
}

static int admin_err(json_t **answer, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int admin_err(json_t **answer, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*answer = json_pack("{s:s}", "error", msg);
	return -1;
}

/* Every node registered under P/nodes/ (their JSON values as they wrote them). */
static int admin_nodes(struct kl_cluster *c, json_t **answer)
{
	char pfx[sizeof(c->node_key)];
	uint8_t after[sizeof(c->node_key) + 64];
	size_t after_len = 0;
	json_t *nodes = json_array();
	int more = 1;

	snprintf(pfx, sizeof(pfx), "%s/nodes/", c->cfg.prefix);
	while (more && nodes) {
		struct kl_etcd_range r;
		int rc = kl_etcd_range_page(c->etcd, pfx, strlen(pfx), after_len ? after : NULL,
					    after_len, 256, 0, &r);

		if (rc) {
			json_decref(nodes);
			return admin_err(answer, "cluster: etcd: %s", kl_etcd_errmsg(c->etcd));
		}
		for (size_t i = 0; i < r.n; i++) {
			json_t *v = json_loadb((const char *)r.kvs[i].value, r.kvs[i].value_len, 0,
					       NULL);

			/* another writer's bytes: shown only as a JSON object */
			if (!json_is_object(v)) {
				json_decref(v);
				v = json_pack("{s:s#,s:s}", "key", (const char *)r.kvs[i].key,
					      (int)r.kvs[i].key_len, "error",
					      "not a node registration");
			}
			if (v)
				json_object_set_new(v, "lease_alive", json_boolean(r.kvs[i].lease));
			json_array_append_new(nodes, v);
		}
		more = r.more && r.n;
		if (r.n && r.kvs[r.n - 1].key_len <= sizeof(after)) {
			after_len = r.kvs[r.n - 1].key_len;
			memcpy(after, r.kvs[r.n - 1].key, after_len);
		} else {
			more = 0;
		}
		kl_etcd_range_free(&r);
	}
	*answer = json_pack("{s:o,s:o}", "nodes", nodes ? nodes : json_array(), "self",
			    kl_cluster_status(c));
	return *answer ? 0 : -1;
}

int kl_cluster_admin(struct kl_cluster *c, const char *cmd, const json_t *req, json_t **answer)
{
	int is_cluster = !strcmp(cmd, "cluster"), is_seed = !strcmp(cmd, "cluster-seed");

	if (!is_cluster && !is_seed)
		return 1;
	if (!c)
		return admin_err(answer, "the cluster is not configured (no cluster: section)");
	if (json_object_size(req))
		return admin_err(answer, "%s takes no arguments", cmd);
	if (is_cluster)
		return admin_nodes(c, answer);
	if (!st_get(c, KL_CLUSTER_JOINED))
		return admin_err(answer, "cluster-seed: not joined yet (%s)", c->last_err);
	{
		char e[256];
		long n = seed(c, e, sizeof(e), 0, NULL);

		if (n < 0)
			return admin_err(answer, "cluster-seed: %s", e);
		logf_(c, KL_CONFIG_LOG_INFO, "cluster-seed: %ld store entries uploaded", n);
		*answer = json_pack("{s:s,s:I}", "result", "seeded", "entries", (json_int_t)n);
	}
	return 0;
}

struct kl_etcd *kl_cluster_etcd(struct kl_cluster *c)
{
	return c ? c->etcd : NULL;
}
