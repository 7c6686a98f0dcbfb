/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Leader election on etcd (etcd's election recipe, over kl_etcd and the v3 gateway), for the one
 * node of a cluster that rotates MSKs (issue 14 item 4).
 *
 * A campaigner holds a lease of ttl_s seconds, kept alive every ttl_s / 3, and one campaign key
 * <prefix>/elect/<election>/<lease id, 16 hex digits> = its node name, attached to the lease and
 * created by a transaction that requires create_revision == 0. The leader is the campaigner whose
 * key has the lowest create_revision under <prefix>/elect/<election>/; its term is that
 * create_revision (it grows with every new leader). A follower watches the key just before its
 * own (the highest create_revision below its own) and looks again when it is deleted: resigned
 * (lease revoked) or expired (the node died, or was cut off, for longer than the TTL). Every
 * ttl_s / 3 each campaigner also reads the election's keys, which refreshes the leader's name for
 * status and notices a campaign key that disappeared (the node campaigns again with a new lease).
 *
 * Safety: a node counts as leader only until (the time it sent its last successful keep-alive or
 * the lease grant) + ttl_s - margin. etcd cannot expire the lease before that time (it renews the
 * lease for ttl_s when it gets the keep-alive, which is after we sent it), so a node that was
 * stopped or cut off stops acting as leader before another node can be elected. kl_elect_is_leader
 * checks that clock at every call: call it right before every leader action (and keep the action
 * shorter than the margin). After a pause (SIGSTOP, a hung disk) the first call reports the loss.
 * Writes that must not be doubled by two leaders racing anyway (a new MSK) still go through a
 * transaction that cannot produce two values for one key (kl_msk_guard.h).
 *
 * Driven from the caller's poll loop like kl_etcd_watch, with no thread (or on a thread of its
 * own: kl_elect_start_thread, at the end; keylined does that): add kl_elect_pollfds()
 * to the pollfd set, sleep at most kl_elect_timeout_ms(), call kl_elect_run(). The keep-alive,
 * the reads and the campaign are synchronous kl_etcd calls (each bounded by the client's request
 * timeout) made from kl_elect_run() when due; the predecessor's watch is a kl_etcd_watch stream.
 * Not thread-safe; the kl_etcd client must outlive the election.
 */
#ifndef KL_ELECT_H
#define KL_ELECT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "kl_etcd.h"

#define KL_ELECT_NAME_MAX 128

struct kl_elect_opts {
	const char *prefix;   /* the cluster's key prefix ("/keyline"; no trailing slash needed) */
	const char *election; /* the election's name ("rotation") */
	const char *node;     /* this node's name: its campaign key's value (1..128 bytes) */
	int64_t ttl_s;	      /* lease TTL in seconds, 2..3600; 0: 10 */
	long margin_ms;	      /* leadership ends ttl - margin after the last keep-alive was sent;
			       * 0: ttl / 4 (at least 250 ms); must be below 2/3 of the TTL */
};

enum kl_elect_role {
	KL_ELECT_IDLE,	   /* not campaigning (before kl_elect_campaign, after kl_elect_resign) */
	KL_ELECT_FOLLOWER, /* campaigning; another node leads, or no leader is known right now */
	KL_ELECT_LEADER,
};

/* "idle", "follower", "leader". */
const char *kl_elect_role_name(enum kl_elect_role r);

struct kl_elect_status {
	enum kl_elect_role role;
	char leader[KL_ELECT_NAME_MAX + 1]; /* the leader's node name, "" when none is known */
	int64_t term;			    /* the leader key's create_revision, 0 when unknown */
	int64_t lease;			    /* our lease, 0 when we hold none */
	int64_t own_revision;		    /* our campaign key's create_revision, 0 when none */
	long valid_ms;			    /* leader: how long leadership lasts without keep-alive */
	uint64_t campaigns;		    /* campaign keys created (leases granted) */
	uint64_t elected, lost;		    /* times this node became / stopped being leader */
	uint64_t keepalives, keepalive_failures;
	char error[256];		    /* the last etcd error, "" when the last call worked */
	/* leader: etcd's revision of the read that made this node leader. Every write of an
	 * earlier leader has a lower revision (it lost its lease, and its key, before): a new
	 * leader acts once its replica has applied at least this revision. */
	int64_t elected_revision;
};

struct kl_elect;

/* An election client (opts copied). Nothing is sent before kl_elect_campaign. NULL on a bad
 * option or no memory, with the reason in err. */
struct kl_elect *kl_elect_new(struct kl_etcd *c, const struct kl_elect_opts *opts, char *err,
			      size_t errlen);
/* Free without talking to etcd (the lease then expires by itself; resign first for a prompt
 * handover). NULL is accepted. */
void kl_elect_free(struct kl_elect *e);

/* Start campaigning: grant the lease, create the campaign key, look at the election. On an etcd
 * error the node still campaigns: kl_elect_run() tries again. Returns 0 or a kl_etcd error. */
int kl_elect_campaign(struct kl_elect *e);
/* Resign: revoke the lease (its key goes with it, the next campaigner takes over at once) and
 * stop campaigning. Leadership ends before the revoke is sent. Returns 0 or a kl_etcd error (the
 * lease then expires by itself). */
int kl_elect_resign(struct kl_elect *e);

/* The watch's sockets (up to max). Returns how many were written. */
int kl_elect_pollfds(struct kl_elect *e, struct pollfd *fds, int max);
/* How long the caller may sleep before kl_elect_run() is due (ms, >= 0). */
int kl_elect_timeout_ms(struct kl_elect *e);
/* Keep-alive, reads, watch I/O and campaign retries that are due. Never blocks longer than the
 * kl_etcd calls it makes. Returns the role after it. */
enum kl_elect_role kl_elect_run(struct kl_elect *e);
/* 1 when this node leads now (the lease is surely alive at etcd), 0 otherwise; ends leadership
 * (counted as lost) when the time is up. Call it right before every leader action. */
int kl_elect_is_leader(struct kl_elect *e);
/* The state now (after the same clock check as kl_elect_is_leader). */
void kl_elect_status(struct kl_elect *e, struct kl_elect_status *out);

/* ---- added (helper st): the election on a thread of its own --------------------------------- */

/* From now on the election's etcd work (keep-alive, reads, campaign retries, the predecessor's
 * watch) runs on a thread of its own with its own kl_etcd client (kl_etcd_new_like of the
 * one given to kl_elect_new), so a silent etcd member never blocks the caller's loop:
 * kl_elect_run, kl_elect_is_leader, kl_elect_status and kl_elect_timeout_ms only read the state
 * the thread publishes (under a mutex no thread holds during I/O). kl_elect_pollfds gives one
 * eventfd the thread signals when the role or the leader changes; kl_elect_run drains it. Call
 * it after kl_elect_campaign (which campaigns once at once on the caller's thread, so a node
 * that leads knows it at start). kl_elect_resign stops the thread first (a call in progress is
 * abandoned within about a second), then revokes on the caller's thread. 0, or -1 with err. */
int kl_elect_start_thread(struct kl_elect *e, char *err, size_t errlen);

#endif
