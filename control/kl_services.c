/* SPDX-License-Identifier: BSD-3-Clause */
/* keylined's service entries (kl_services.h): each turns the config into one running service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_admin.h"
#include "kl_cluster.h"
#include "kl_cluster_repl.h"
#include "kl_daemon.h"
#include "kl_diameter.h"
#include "kl_elect.h"
#include "kl_engine.h"
#include "kl_feed.h"
#include "kl_metrics.h"
#include "kl_naf.h"
#include "kl_naf_keys.h"
#include "kl_zn.h"

#include <jansson.h>
#include "kl_rotate.h"
#include "kl_services.h"
#include "kl_stats.h"

/* ---- the cluster (control/store/kl_cluster.h) ------------------------------------------------- */

_Static_assert(KL_CONFIG_CLUSTER_MAX_ENDPOINTS == KL_ETCD_MAX_ENDPOINTS &&
		       KL_CONFIG_CLUSTER_PREFIX_MAX == KL_CLUSTER_PREFIX_MAX,
	       "cluster: bounds differ from kl_etcd.h / kl_cluster_repl.h");

static void cluster_log(void *arg, int level, const char *msg)
{
	(void)arg;
	kl_daemon_logf((enum kl_config_log_level)level, "cluster: %s", msg);
}

static int cluster_wanted(void *ctx)
{
	return ((struct kl_services_ctx *)ctx)->cfg->cluster.enabled;
}

static void *cluster_start(void *ctx, int *status)
{
	const struct kl_services_ctx *c = ctx;
	struct kl_cluster_params p = {
		.cfg = &c->cfg->cluster,
		.store = c->store,
		.table = c->table,
		.stats = c->cluster_stats,
		.version = KL_VERSION,
		.log = cluster_log,
	};
	struct kl_cluster *cl;
	char err[512];
	int config;

	cl = kl_cluster_start(&p, &config, err, sizeof(err));
	if (!cl) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "cluster: %s", err);
		*status = config ? KL_EXIT_CONFIG : KL_EXIT_FAIL;
	}
	return cl;
}

static int cluster_pollfds(void *svc, struct pollfd *pf, int max)
{
	return kl_cluster_pollfds(svc, pf, max);
}

static int cluster_timeout(void *svc)
{
	return kl_cluster_timeout_ms(svc);
}

static void cluster_poll(void *svc, short revents)
{
	(void)revents;
	kl_cluster_poll(svc);
}

static void cluster_tick(void *svc)
{
	kl_cluster_tick(svc);
}

static void cluster_stop(void *svc)
{
	kl_cluster_stop(svc);
}

static const struct kl_service_ops cluster_ops = {
	.name = "cluster",
	.wanted = cluster_wanted,
	.start = cluster_start,
	.poll = cluster_poll,
	.tick = cluster_tick,
	.stop = cluster_stop,
	.pollfds = cluster_pollfds,
	.timeout_ms = cluster_timeout,
};

/* ---- MSK rotation (control/kl_rotate.h) -------------------------------------------------------- */

_Static_assert(KL_CONFIG_ROTATE_MIN_PERIOD_S == KL_ROTATE_MIN_PERIOD_S &&
		       KL_CONFIG_ROTATE_MAX_PERIOD_S == KL_ROTATE_MAX_PERIOD_S,
	       "msk_rotation period bounds differ from kl_rotate.h");

static void rotate_log(void *arg, int level, const char *msg)
{
	(void)arg;
	kl_daemon_logf((enum kl_config_log_level)level, "rotate: %s", msg);
}

static int rotation_wanted(void *ctx)
{
	return ((struct kl_services_ctx *)ctx)->cfg->n_msk_rotation != 0;
}

/* The rotation service: the rotation and, with a cluster, its election (only the leader
 * rotates; kl_rotate.h "Cluster"). */
struct rot_svc {
	struct kl_rotate *r;
	struct kl_elect *e;		/* NULL: standalone */
	struct kl_cluster_stats *cs;	/* role published for status and /metrics; NULL: none */
	enum kl_elect_role role;	/* last published */
	int ran;			/* ticked since this node became a ready leader */
	uint64_t next_try;		/* NTP: a leader behind the catalogue looks again then */
	int tick_failed;		/* the last kl_rotate_tick failed: the next tick retries */
};

static struct kl_rotate *rotation_of(void *svc)
{
	return svc ? ((struct rot_svc *)svc)->r : NULL;
}

/* The election's role into the cluster's figures (admin status and /metrics read it). */
static void rotation_publish(struct rot_svc *s, enum kl_elect_role role)
{
	if (role == s->role)
		return;
	if (role == KL_ELECT_LEADER || s->role == KL_ELECT_LEADER)
		kl_daemon_logf(KL_CONFIG_LOG_INFO, "msk_rotation: this node %s the rotation leader",
			       role == KL_ELECT_LEADER ? "is now" : "is no longer");
	s->role = role;
	/* one atomic store: /metrics reads it from its own thread (kl_cluster_role_name) */
	kl_cluster_role_set(s->cs, role == KL_ELECT_LEADER ? KL_CLUSTER_ROLE_LEADER
							   : KL_CLUSTER_ROLE_FOLLOWER);
}

static void rotation_stop(void *svc)
{
	struct rot_svc *s = svc;

	if (s->e) {
		(void)kl_elect_resign(s->e); /* the next node takes over at once */
		rotation_publish(s, KL_ELECT_FOLLOWER);
	}
	kl_rotate_free(s->r);
	kl_elect_free(s->e);
	free(s);
}

static void *rotation_start(void *ctx, int *status)
{
	const struct kl_services_ctx *c = ctx;
	const struct kl_config *cfg = c->cfg;
	const struct kl_config_cluster *cc = &cfg->cluster;
	struct kl_rotate_group g[KL_CONFIG_MAX_ROTATIONS];
	struct kl_rotate_params rp = {
		.table = c->table,
		.store = c->store,
		.groups = g,
		.n = cfg->n_msk_rotation,
		.log = rotate_log,
		.ctl = c->ctl,
	};
	struct rot_svc *s;
	char err[512];
	int rc;

	for (unsigned i = 0; i < cfg->n_msk_rotation; i++) {
		const struct kl_config_rotation *cr = &cfg->msk_rotation[i];

		memset(&g[i], 0, sizeof(g[i]));
		memcpy(g[i].ref.domain, cr->domain, 3);
		g[i].ref.group = cr->group;
		g[i].period_s = cr->period_s;
		g[i].predelivery_s = cr->predelivery_s;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "msk_rotation: out of memory");
		*status = KL_EXIT_FAIL;
		return NULL;
	}
	s->role = KL_ELECT_IDLE;
	if (cc->enabled) {
		/* one node rotates: an election on the cluster service's etcd client */
		struct kl_etcd *etcd = kl_cluster_etcd(kl_services_get(c->set, cluster_ops.name));
		struct kl_elect_opts eo = { .prefix = cc->prefix, .election = "rotation",
					    .node = cc->node, .ttl_s = cc->lease_ttl_s };

		s->cs = c->cluster_stats;
		s->e = etcd ? kl_elect_new(etcd, &eo, err, sizeof(err)) : NULL;
		if (!s->e) {
			kl_daemon_logf(KL_CONFIG_LOG_ERROR, "msk_rotation: %s",
				       etcd ? err : "the cluster service is not running");
			*status = etcd ? KL_EXIT_CONFIG : KL_EXIT_FAIL;
			free(s);
			return NULL;
		}
		/* not the leader, or etcd unreachable: not an error (kl_elect_run campaigns on) */
		if (kl_elect_campaign(s->e)) {
			struct kl_elect_status es;

			kl_elect_status(s->e, &es);
			kl_daemon_logf(KL_CONFIG_LOG_WARNING,
				       "msk_rotation: election: %s (campaigning on)", es.error);
		}
		/* from here on the election's etcd calls run on its own thread: a silent etcd
		 * member never blocks the control loop (kl_elect.h) */
		if (kl_elect_start_thread(s->e, err, sizeof(err))) {
			kl_daemon_logf(KL_CONFIG_LOG_ERROR, "msk_rotation: %s", err);
			*status = KL_EXIT_FAIL;
			kl_elect_free(s->e);
			free(s);
			return NULL;
		}
		rp.elect = s->e;
		rp.etcd = etcd;
		rp.prefix = cc->prefix;
	}
	s->r = kl_rotate_create(&rp, err, sizeof(err));
	if (!s->r) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "msk_rotation: %s", err);
		*status = KL_EXIT_FAIL;
		rotation_stop(s);
		return NULL;
	}
	if (s->e)
		rotation_publish(s, kl_elect_run(s->e));
	/* every configured group has its current MSK before a worker answers (a cluster's
	 * follower: the leader's, from the catalogue) */
	rc = kl_rotate_tick(s->r, kl_ntp_now());
	if (rc < 0 && !s->e) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "msk_rotation: the first rotation failed: %s",
			       strerror(-rc));
		*status = KL_EXIT_FAIL;
		rotation_stop(s);
		return NULL;
	}
	s->ran = kl_rotate_ready(s->r);
	kl_daemon_logf(KL_CONFIG_LOG_INFO,
		       "msk_rotation: %u key group%s rotated (%d changed at start)%s",
		       cfg->n_msk_rotation, cfg->n_msk_rotation > 1 ? "s" : "", rc < 0 ? 0 : rc,
		       s->e ? (s->role == KL_ELECT_LEADER ? "; cluster: this node leads the rotation"
							  : "; cluster: the elected node rotates")
		       : c->store ? "" : "; no store: MSKs are made afresh at each start");
	return s;
}

static int rotation_pollfds(void *svc, struct pollfd *pf, int max)
{
	struct rot_svc *s = svc;

	return s->e ? kl_elect_pollfds(s->e, pf, max) : 0;
}

static int rotation_timeout(void *svc)
{
	struct rot_svc *s = svc;
	int t = kl_rotate_timeout_ms(s->r, kl_ntp_now()), te;

	if (!s->e)
		return t;
	te = kl_elect_timeout_ms(s->e);
	if (t < 0 || te < t)
		t = te;
	/* a new leader waits for its replica to reach its election's revision */
	if (s->role == KL_ELECT_LEADER && !s->ran && t > 50)
		t = 50;
	return t;
}

/* Every pass: a pre-delivery or promotion that is due; with a cluster, the election's I/O, and
 * a node that became leader rotates as soon as its replica has caught up, not at the next tick. */
static void rotation_poll(void *svc, short revents)
{
	struct rot_svc *s = svc;

	(void)revents;
	if (kl_rotate_timeout_ms(s->r, kl_ntp_now()) == 0)
		(void)kl_rotate_tick(s->r, kl_ntp_now()); /* failures are logged */
	if (!s->e)
		return;
	rotation_publish(s, kl_elect_run(s->e));
	if (s->role != KL_ELECT_LEADER) {
		s->ran = 0;
		return;
	}
	if (!s->ran && kl_ntp_now() >= s->next_try) {
		(void)kl_rotate_tick(s->r, kl_ntp_now()); /* failures are logged */
		s->ran = kl_rotate_ready(s->r);
		s->next_try = kl_ntp_now() + ((uint64_t)1 << 32) / 20; /* behind: in 50 ms */
	}
}

static void rotation_tick(void *svc)
{
	struct rot_svc *s = svc;

	/* A ready leader's tick reads the group's record in etcd first (kl_rotate.c group_fresh),
	 * a synchronous call: it ticks only when a rotation is due (rotation_poll does those at
	 * once) or the last tick failed, so a silent etcd member does not hold the control thread
	 * every second while the leadership lasts (a leader that became ready ticked then, and
	 * every rotation sets the next due time). Followers and a standalone node tick every
	 * second (no etcd call). */
	if (!s->e || !s->ran || s->tick_failed || s->role != KL_ELECT_LEADER ||
	    kl_rotate_timeout_ms(s->r, kl_ntp_now()) == 0)
		s->tick_failed = kl_rotate_tick(s->r, kl_ntp_now()) < 0; /* failures are logged */
	if (s->e)
		rotation_publish(s, kl_elect_is_leader(s->e) ? KL_ELECT_LEADER : KL_ELECT_FOLLOWER);
}

static const struct kl_service_ops rotation_ops = {
	.name = "rotation",
	.wanted = rotation_wanted,
	.start = rotation_start,
	.poll = rotation_poll,
	.tick = rotation_tick,
	.stop = rotation_stop,
	.pollfds = rotation_pollfds,
	.timeout_ms = rotation_timeout,
};

/* The election's part of the cluster status ("role" and "election"), NULL-safe. */
static void rotation_status(void *svc, json_t *cluster)
{
	struct rot_svc *s = svc;
	struct kl_elect_status es;

	if (!s || !s->e || !cluster)
		return;
	kl_elect_status(s->e, &es);
	json_object_set_new(cluster, "role", json_string(es.role == KL_ELECT_LEADER ? "leader"
										    : "follower"));
	json_object_set_new(
		cluster, "election",
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "name",
			  "rotation", "role", kl_elect_role_name(es.role), "leader", es.leader,
			  "term", (json_int_t)es.term, "elected_revision",
			  (json_int_t)es.elected_revision, "valid_ms", (json_int_t)es.valid_ms,
			  "lease", (json_int_t)es.lease, "campaigns", (json_int_t)es.campaigns,
			  "elected", (json_int_t)es.elected, "lost", (json_int_t)es.lost,
			  "keepalives", (json_int_t)es.keepalives, "keepalive_failures",
			  (json_int_t)es.keepalive_failures, "ready", kl_rotate_ready(s->r),
			  "error", es.error));
}

/* ---- Diameter feed (control/diameter/kl_diameter.h, kl_feed.h) ------------------------------------------ */

_Static_assert(KL_CONFIG_DEFAULT_DIAMETER_PORT == KL_DIAMETER_DEFAULT_PORT &&
		       KL_CONFIG_DEFAULT_DIAMETER_VENDOR == KL_DIAMETER_DEFAULT_VENDOR &&
		       KL_CONFIG_DEFAULT_DIAMETER_APP == KL_DIAMETER_DEFAULT_APP &&
		       KL_CONFIG_DEFAULT_DIAMETER_QUEUE == KL_DIAMETER_DEFAULT_MAX_QUEUE &&
		       KL_CONFIG_DIAMETER_MAX_QUEUE == KL_DIAMETER_MAX_QUEUE,
	       "diameter defaults differ from kl_diameter.h");

struct feed_svc {
	const struct kl_config *cfg;
	struct kl_diameter *dia;
	struct kl_feed *feed; /* the feed's writes (store batch, table) */
};

static void dia_log(void *arg, enum kl_diameter_log_level level, const char *msg)
{
	const struct kl_config *cfg = arg;

	/* any thread (freeDiameter's too): one write per line */
	if ((enum kl_config_log_level)level > cfg->log_level)
		return;
	fprintf(stderr, "keylined: %s: diameter: %s\n",
		kl_config_log_level_name((enum kl_config_log_level)level), msg);
}

static void feed_log(void *arg, enum kl_config_log_level level, const char *msg)
{
	(void)arg;
	kl_daemon_logf(level, "diameter: %s", msg);
}

static int feed_wanted(void *ctx)
{
	return ((struct kl_services_ctx *)ctx)->cfg->diameter.enabled;
}

static void feed_stop(void *svc)
{
	struct feed_svc *f = svc;

	/* the feed writes the table and the store from kl_diameter_poll only: stopped (queued
	 * requests dropped unanswered) before either goes */
	kl_diameter_stop(f->dia);
	kl_feed_free(f->feed);
	free(f);
}

static void *feed_start(void *ctx, int *status)
{
	const struct kl_services_ctx *c = ctx;
	const struct kl_config_diameter *dc = &c->cfg->diameter;
	const char *peers[KL_CONFIG_DIAMETER_MAX_PEERS + 1];
	struct kl_diameter_handlers h;
	struct kl_diameter_params p = {
		.fd_conf = dc->fd_conf[0] ? dc->fd_conf : NULL,
		.identity = dc->identity[0] ? dc->identity : NULL,
		.realm = dc->realm[0] ? dc->realm : NULL,
		.listen = dc->listen[0] ? dc->listen : NULL,
		.port = dc->port,
		.tls_cert = dc->tls_cert[0] ? dc->tls_cert : NULL,
		.tls_key = dc->tls_key[0] ? dc->tls_key : NULL,
		.tls_ca = dc->tls_ca[0] ? dc->tls_ca : NULL,
		.tls_crl = dc->tls_crl[0] ? dc->tls_crl : NULL,
		.vendor_id = dc->vendor_id,
		.app_id = dc->app_id,
		.allowed_peers = dc->n_allowed_peers ? peers : NULL,
		.max_queue = dc->max_queue,
		.log = dia_log,
		.log_arg = (void *)c->cfg,
		.log_level = (enum kl_diameter_log_level)c->cfg->log_level,
		.ctl = c->ctl,
	};
	struct kl_feed_params fp = {
		.table = c->table,
		.store = c->store,
		.cfg = c->cfg,
		.log = feed_log,
	};
	struct feed_svc *f;
	char err[512];

	for (unsigned i = 0; i < dc->n_allowed_peers; i++)
		peers[i] = dc->allowed_peers[i];
	peers[dc->n_allowed_peers] = NULL;
	f = calloc(1, sizeof(*f));
	if (f)
		f->feed = kl_feed_create(&fp);
	if (!f || !f->feed) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "diameter: out of memory");
		*status = KL_EXIT_FAIL;
		free(f);
		return NULL;
	}
	f->cfg = c->cfg;
	kl_feed_handlers(f->feed, &h);
	f->dia = kl_diameter_start(&p, &h, err, sizeof(err));
	if (!f->dia) {
		/* a file, address or port of the diameter: section that cannot be used */
		*status = errno == EINVAL || errno == EIO ? KL_EXIT_CONFIG : KL_EXIT_FAIL;
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "diameter: %s", err);
		feed_stop(f);
		return NULL;
	}
	kl_daemon_logf(KL_CONFIG_LOG_INFO,
		       "diameter: %s on %s port %u (TLS), vendor %u, application %u, %s%s",
		       dc->fd_conf[0] ? "freeDiameter configuration" : dc->identity,
		       dc->fd_conf[0] ? dc->fd_conf : dc->listen[0] ? dc->listen : "all addresses",
		       dc->port, dc->vendor_id, dc->app_id,
		       c->store ? "durable (one store batch per poll)"
				: "no store: keys in memory only",
		       dc->n_allowed_peers ? ", allowed peers listed" : "");
	return f;
}

static int feed_fd(void *svc)
{
	return kl_diameter_fd(((struct feed_svc *)svc)->dia);
}

static void feed_poll(void *svc, short revents)
{
	struct feed_svc *f = svc;

	if (!(revents & POLLIN))
		return;
	/* one bounded batch (one store transaction) per pass: with a cluster its commit waits for
	 * etcd, and the cluster's watch and the admin socket get their turn before the next one
	 * (kl_diameter_poll leaves its fd readable while requests are queued) */
	kl_diameter_poll(f->dia, KL_FEED_BATCH);
	kl_feed_poll_done(f->feed);
}

/* The Diameter part of the admin "status" command. */
static int feed_status(const struct feed_svc *f, struct kl_admin_diameter_status *st)
{
	const struct kl_config_diameter *dc;
	struct kl_diameter_peer peers[KL_ADMIN_MAX_PEERS];
	struct kl_diameter_stats s;
	int n;

	memset(st, 0, sizeof(*st));
	if (!f)
		return 0;
	dc = &f->cfg->diameter;
	st->enabled = 1;
	snprintf(st->identity, sizeof(st->identity), "%s", dc->identity);
	st->port = dc->port;
	st->vendor_id = dc->vendor_id;
	st->app_id = dc->app_id;
	kl_diameter_get_stats(f->dia, &s);
	st->answered_ok = s.answered_ok;
	st->rejected = s.rejected;
	st->failed = s.failed;
	st->busy = s.busy;
	st->commits = s.commits;
	st->queued = s.queued;
	st->peers_refused = s.peers_refused;
	n = kl_diameter_peers(f->dia, peers, KL_ADMIN_MAX_PEERS);
	if (n < 0)
		return n;
	st->npeers = (unsigned)n < KL_ADMIN_MAX_PEERS ? (unsigned)n : KL_ADMIN_MAX_PEERS;
	for (unsigned i = 0; i < st->npeers; i++) {
		snprintf(st->peers[i].identity, sizeof(st->peers[i].identity), "%s",
			 peers[i].identity);
		snprintf(st->peers[i].state, sizeof(st->peers[i].state), "%s", peers[i].state);
	}
	return 0;
}

static const struct kl_service_ops feed_ops = {
	.name = "diameter",
	.wanted = feed_wanted,
	.start = feed_start,
	.fd = feed_fd,
	.poll = feed_poll,
	.stop = feed_stop,
};

/* ---- the NAF Key Center (control/http/kl_naf.h) ----------------------------------------------------- */

static void naf_log(void *arg, int level, const char *msg)
{
	const struct kl_config *cfg = arg;

	/* any thread (the HTTPS pool's too): one write per line */
	if ((enum kl_config_log_level)level > cfg->log_level)
		return;
	fprintf(stderr, "keylined: %s: naf_key_center: %s\n",
		kl_config_log_level_name((enum kl_config_log_level)level), msg);
}

static int naf_wanted(void *ctx)
{
	return ((struct kl_services_ctx *)ctx)->cfg->naf.enabled;
}

static void *naf_start(void *ctx, int *status)
{
	const struct kl_services_ctx *c = ctx;
	const struct feed_svc *f = kl_services_get(c->set, feed_ops.name);
	struct kl_naf_params p = {
		.cfg = &c->cfg->naf,
		.store = c->store,
		.stats = c->naf_stats,
		.worker_cpus = c->worker_cpus,
		.log = naf_log,
		.log_arg = (void *)c->cfg,
	};
	struct kl_naf *n;
	char err[512];
	int config;

	if (!f) { /* kl_config_validate wants the diameter: section: cannot happen */
		kl_daemon_logf(KL_CONFIG_LOG_ERROR,
			       "naf_key_center: needs the Diameter stack (diameter: section)");
		*status = KL_EXIT_CONFIG;
		return NULL;
	}
	p.dia = f->dia;
	n = kl_naf_start(&p, &config, err, sizeof(err));
	if (!n) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "naf_key_center: %s", err);
		*status = config ? KL_EXIT_CONFIG : KL_EXIT_FAIL;
	}
	return n;
}

static int naf_fd(void *svc)
{
	return kl_naf_fd(svc);
}

static void naf_poll(void *svc, short revents)
{
	if (revents & POLLIN)
		kl_naf_poll(svc);
}

static void naf_tick(void *svc)
{
	kl_naf_tick(svc);
}

static void naf_stop(void *svc)
{
	kl_naf_stop(svc);
}

static const struct kl_service_ops naf_ops = {
	.name = "naf_key_center",
	.wanted = naf_wanted,
	.start = naf_start,
	.fd = naf_fd,
	.poll = naf_poll,
	.tick = naf_tick,
	.stop = naf_stop,
};

/* ---- admin socket (control/kl_admin.h) --------------------------------------------------------- */

static void admin_log(void *arg, enum kl_admin_log_level level, const char *msg)
{
	(void)arg;
	/* the admin levels mirror ours */
	kl_daemon_logf((enum kl_config_log_level)level, "admin: %s", msg);
}

/* Asked on each "status": the feed is found in the registry then (it starts after the admin). */
static int admin_diameter_status(void *arg, struct kl_admin_diameter_status *st)
{
	const struct kl_services_ctx *c = arg;

	return feed_status(kl_services_get(c->set, feed_ops.name), st);
}

/* Other services' admin commands: the cluster's (cluster, cluster-seed), the Key Center's (naf-*),
 * found in the registry when asked (the Key Center starts later);
 * without it they answer that it is not configured. */
static int admin_ext_cmd(void *arg, const char *cmd, const struct json_t *req,
			 struct json_t **answer)
{
	const struct kl_services_ctx *c = arg;
	int rc = kl_cluster_admin(kl_services_get(c->set, cluster_ops.name), cmd, req, answer);

	if (rc == 0 && !strcmp(cmd, "cluster"))
		rotation_status(kl_services_get(c->set, rotation_ops.name),
				json_object_get(*answer, "self"));
	if (rc != 1)
		return rc;
	return kl_naf_keys_admin(kl_naf_keys_of(kl_services_get(c->set, naf_ops.name)), cmd, req,
				 answer);
}

/* The Key Center's part of "status", from the running entry (NULL: not running). */
static json_t *admin_naf_status(void *arg)
{
	const struct kl_services_ctx *c = arg;
	struct kl_naf *n = kl_services_get(c->set, naf_ops.name);
	struct kl_naf_keys_stats ks;
	struct kl_zn_stats zs;

	if (!n)
		return NULL;
	kl_naf_get_stats(n, &zs, &ks);
	return json_pack("{s:b,s:i,s:{s:s,s:b},s:{s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I}}",
			 "enabled", 1, "port", (int)kl_naf_port(n), "bsf", "identity",
			 c->cfg->naf.bsf.identity, "open", zs.bsf_open, "zn", "requests",
			 (json_int_t)zs.requests, "cache_hits", (json_int_t)zs.cache_hits, "sent",
			 (json_int_t)zs.sent, "answered", (json_int_t)zs.answered, "cache_entries",
			 (json_int_t)zs.cache_size, "keys", "keys", (json_int_t)ks.keys, "invalidated",
			 (json_int_t)ks.invalidated, "issued", (json_int_t)ks.issued,
			 "blocked_devices", (json_int_t)ks.blocked_devices, "blocked_serials",
			 (json_int_t)ks.blocked_serials);
}

/* The cluster's part of "status". */
static void admin_ext_status(void *arg, json_t *status)
{
	const struct kl_services_ctx *c = arg;
	struct kl_cluster *cl = kl_services_get(c->set, cluster_ops.name);
	json_t *v = cl ? kl_cluster_status(cl) : NULL;

	rotation_status(kl_services_get(c->set, rotation_ops.name), v);
	json_object_set_new(status, "cluster", v ? v : json_pack("{s:b}", "enabled", 0));
}

static void *admin_start(void *ctx, int *status)
{
	const struct kl_services_ctx *c = ctx;
	const struct kl_config *cfg = c->cfg;
	struct kl_admin_params ap = {
		.path = cfg->admin_socket,
		.table = c->table,
		.store = c->store,
		.e2m_ring = cfg->table.e2m_ring,
		.server_identity = cfg->server_identity,
		.stats = c->view,
		.rotate = rotation_of(kl_services_get(c->set, rotation_ops.name)),
		.diameter_status = cfg->diameter.enabled ? admin_diameter_status : NULL,
		.diameter_arg = ctx,
		.ext_cmd = admin_ext_cmd,
		.ext_arg = ctx,
		.naf_status = admin_naf_status,
		.ext_status = admin_ext_status,
		.log = admin_log,
		.ctl = c->ctl,
		.max_clients = cfg->admin_max_clients,
		.idle_timeout_ms = cfg->admin_idle_timeout_s * 1000u,
		.line_timeout_ms = cfg->admin_line_timeout_s * 1000u,
	};
	struct kl_admin *a;
	char err[256];

	a = kl_admin_create(&ap, err, sizeof(err));
	if (!a) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "admin_socket: %s", err);
		*status = KL_EXIT_FAIL;
	}
	return a;
}

static int admin_fd(void *svc)
{
	return kl_admin_fd(svc);
}

static void admin_poll(void *svc, short revents)
{
	(void)revents;
	/* the admin socket also keeps its own timers (idle clients): polled every pass */
	if (kl_admin_poll(svc, 0) < 0)
		kl_daemon_logf(KL_CONFIG_LOG_WARNING, "admin socket poll failed");
}

static void admin_stop(void *svc)
{
	kl_admin_destroy(svc);
}

static const struct kl_service_ops admin_ops = {
	.name = "admin",
	.start = admin_start,
	.fd = admin_fd,
	.poll = admin_poll,
	.stop = admin_stop,
};

/* ---- /metrics (control/kl_metrics.h) ----------------------------------------------------------- */

static int metrics_wanted(void *ctx)
{
	return ((struct kl_services_ctx *)ctx)->cfg->metrics.enabled;
}

static void *metrics_start(void *ctx, int *status)
{
	const struct kl_services_ctx *c = ctx;
	struct kl_metrics_limits ml = {
		.max_connections = c->cfg->metrics_max_connections,
		.request_timeout_s = c->cfg->metrics_request_timeout_s,
	};
	struct kl_metrics *m;
	char err[256];

	m = kl_metrics_start_with(&c->cfg->metrics, c->view, &ml, err, sizeof(err));
	if (!m) {
		kl_daemon_logf(KL_CONFIG_LOG_ERROR, "metrics: %s", err);
		*status = KL_EXIT_FAIL;
	}
	return m;
}

static void metrics_stop(void *svc)
{
	kl_metrics_stop(svc);
}

static const struct kl_service_ops metrics_ops = {
	.name = "metrics",
	.wanted = metrics_wanted,
	.start = metrics_start,
	.stop = metrics_stop,
};

/* ---- the registry ------------------------------------------------------------------------------ */

const struct kl_service_ops *const kl_keylined_services[] = {
	&cluster_ops,
	&rotation_ops,
	&admin_ops,
	&metrics_ops,
	&feed_ops,
	&naf_ops,
};
const unsigned kl_keylined_n_services =
	sizeof(kl_keylined_services) / sizeof(kl_keylined_services[0]);
_Static_assert(sizeof(kl_keylined_services) / sizeof(kl_keylined_services[0]) <= KL_SERVICES_MAX,
	       "more services than KL_SERVICES_MAX");
