/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline MSK rotation: the control thread's schedule of MBMS service keys (MSKs) per key group.
 *
 * Each configured key group (config msk_rotation:) has a period and a pre-delivery window.
 * The table holds the group's current MSK and, within the pre-delivery window before the
 * current one ends, the next. MSKs come from a CSPRNG (OpenSSL RAND_priv_bytes) and are written
 * to the durable store (when there is one) before the table is changed, so a key is stored
 * before it becomes next (or current), and a restart serves the same keys.
 *
 * Timeline of one group (NTP timestamps, period P, pre-delivery D):
 *   current [from, from + P)
 *   at from + P - D: a fresh MSK becomes next, valid [from + P, from + 2P), key number + 1
 *   at from + P:     next becomes current (has_next 0), and so on.
 * Key numbers run 1..65535 and wrap to 1 (0 asks for "the current key" on the wire); the MSK ID
 * is key group (2) || key number (2).
 * A configured group that is absent (from the store and the table) is created at the first tick
 * with a fresh current MSK valid from now. A group whose current and next have both ended (keyline
 * was down) gets a fresh current valid from now.
 * A forced rotation (keylinectl rotate GROUP) replaces the current MSK at once with a fresh one
 * valid from now for a period (next key number), and drops a pending next; UEs then fetch the
 * new key (a rekey burst). The next one is pre-delivered on schedule.
 * State: with a store, the store is the source of truth: each tick reads the group from the store
 * (the table's copy only when the store has none, which is then stored), advances it, writes
 * the store when anything changed (fresh MSKs or a promotion), and puts it into the table when
 * the table's copy differs (so a table write that failed after the store commit is redone at
 * the next tick, without making other keys). A store that cannot be read or written (damaged
 * record, full map, I/O) fails that group for this tick: the table keeps serving what it has,
 * and the group is retried at the next tick. Without a store the table is the state.
 * A group deleted by an operator is created afresh at the next tick (key number 1).
 * Cluster (params elect set): the store is a replica of the cluster's catalogue (kl_cluster.h)
 * and only the node the election made leader rotates; followers do nothing here (the cluster's
 * watch brings the leader's group records into their store and key table) and refuse a forced
 * rotation ("not the rotation leader (leader: NAME)"). The leader acts on a group once its
 * replica holds the catalogue's newest record of it (one etcd read per group and tick: every
 * write of an earlier leader, even in a quiet catalogue). Each fresh MSK is claimed
 * first in the MSK-ID guard (kl_msk_guard.h: create-if-absent of <prefix>/msk/<group>/<MSK ID>,
 * the MSK and its validity wrapped under the store's KEK): when another node claimed that ID
 * before (an old leader that died between its claim and its group write, two leaders racing),
 * its MSK is used, so one MSK ID never names two keys. A claim whose validity has ended is from
 * an earlier pass of the key numbers (or a group write that never happened) and is replaced.
 * The group record is then written through the store's replicator, which compares the record
 * it replaces (kl_store_repl.h): a leader that read a stale group writes nothing. After a
 * promotion the leader deletes the guard records of MSKs that have ended, so that key numbers
 * can wrap (65535 -> 1). A store write that etcd refuses fails the group for this tick.
 * Every call belongs to the table's writer thread (the control thread), outside a store batch
 * (kl_store_txn_begin: a put in a batch is only staged, not durable). Keys are never logged:
 * one INFO line per new MSK names the group, the MSK ID, the KCV and the validity.
 */
#ifndef KL_ROTATE_H
#define KL_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "kl_table.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_ROTATE_MIN_PERIOD_S 10u
#define KL_ROTATE_MAX_PERIOD_S (366u * 86400u)

struct kl_store;
struct kl_ctl_stats;

struct kl_rotate_group {
	struct kl_group_ref ref;
	uint32_t period_s;	/* KL_ROTATE_MIN_PERIOD_S..KL_ROTATE_MAX_PERIOD_S */
	uint32_t predelivery_s; /* 0..period_s - 1 */
};

struct kl_rotate_params {
	struct kl_table *table;
	struct kl_store *store; /* NULL: the table only (keys are lost at restart) */
	const struct kl_rotate_group *groups; /* copied */
	unsigned n;
	/* Log sink (levels as enum kl_config_log_level: 0 error .. 3 debug); NULL: stderr. */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	struct kl_ctl_stats *ctl; /* control-plane counters (rotations, failures); NULL: none */
	/* A cluster (issue 14 item 4; NULL: standalone, as above). Only the elected node rotates
	 * (see "Cluster" below); store required. The election is the caller's (it drives it and
	 * frees it after kl_rotate_free); etcd is the node's client, prefix the cluster's. */
	struct kl_elect *elect;
	struct kl_etcd *etcd;
	const char *prefix;
};

struct kl_rotate;

/** Create (no key is made until the first tick). @return NULL with err set (EINVAL, ENOMEM). */
struct kl_rotate *kl_rotate_create(const struct kl_rotate_params *p, char *err, size_t errlen);

/**
 * Bring every group up to date at now (NTP timestamp, seconds << 32): create, pre-deliver,
 * promote. Call once before the workers serve, then about every second. A store or table
 * failure is logged and that group retried at the next tick.
 * @return the number of groups changed, or a negative errno of the first failure.
 */
int kl_rotate_tick(struct kl_rotate *r, uint64_t now);

/**
 * Forced rotation of one configured group (see above).
 * @return 0 with *msk_id the new current MSK ID; -ENOENT (not a configured group), or -errno
 *         from the store or table with err set.
 */
int kl_rotate_force(struct kl_rotate *r, const struct kl_group_ref *g, uint64_t now,
		    uint32_t *msk_id, char *err, size_t errlen);

struct kl_rotate_status {
	struct kl_group_ref ref;
	uint32_t period_s, predelivery_s;
	uint32_t current_id; /* 0: none yet */
	uint64_t current_from, current_to;
	uint8_t has_next;
	uint32_t next_id;
	uint64_t next_from, next_to;
	uint8_t current_kcv[KL_KCV_LEN], next_kcv[KL_KCV_LEN];
	uint64_t rotations; /* MSKs made since start */
	uint64_t failures;  /* ticks that failed for this group */
};

/** Configured groups. */
unsigned kl_rotate_count(const struct kl_rotate *r);
/** Status of group i (0..count-1): configuration, counters, and the MSKs the key table holds
 * now (current_id 0 when the table has no entry for the group). @return 0 or -ENOENT. */
int kl_rotate_status(const struct kl_rotate *r, unsigned i, struct kl_rotate_status *st);

/** 1 when g is a configured (rotated) group, else 0 (also for r NULL). */
int kl_rotate_has(const struct kl_rotate *r, const struct kl_group_ref *g);

/** Free; NULL is accepted. */
void kl_rotate_free(struct kl_rotate *r);

/** How long until the next pre-delivery or promotion the last ticks found (ms, 0: due now), or
 * -1 when none is known (a follower, a failed group): call kl_rotate_tick then, for a change on
 * time rather than at the next once-a-second tick. */
int kl_rotate_timeout_ms(const struct kl_rotate *r, uint64_t now);

/** 1 when this node rotates now: standalone, or the cluster's rotation leader whose last tick
 * found its replica up to date with every group's newest catalogue record; else 0 (a follower,
 * or a leader still catching up). */
int kl_rotate_ready(struct kl_rotate *r);

#ifdef __cplusplus
}
#endif
#endif
