/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined's side of the HSS feed: what each Diameter Key-Push / Key-Remove (control/diameter/kl_diameter.h)
 * does to the durable store and the key table.
 *
 * The handlers run on the control thread (the key table's writer) from kl_diameter_poll. With a
 * store, each poll is one store batch: a handler checks what the key table could refuse (a bad
 * argument, a kind that is full), stages the store write (the batch opens at the first one) and
 * queues the table write; the commit hook commits the batch and only then applies the queued table
 * writes in order. So the table never serves what is not durable, a failed commit leaves it
 * untouched, and DIAMETER_SUCCESS is sent only after the commit. Later requests of a batch see the
 * earlier ones through the queue (a UE's groups, whether an entry exists). Without a store the
 * handlers write the table at once.
 *
 * Semantics: a MUK push keeps the UE's key groups (and sets the MUK's expiry); a UE-GROUPS push
 * replaces the groups of an existing UE, keeping its MUK (an unknown UE, or more than
 * KL_TABLE_UE_GROUPS groups: refused); removing some groups keeps the others; an E2M push keeps
 * the newest table.e2m_ring keys of the IMSI (a known key id is replaced in place); an E2M remove
 * with a key id removes that key, without one the IMSI.
 * Key copies are wiped after use; messages never hold key bytes.
 */
#ifndef KL_FEED_H
#define KL_FEED_H

#include "kl_config.h"
#include "kl_diameter.h"
#include "kl_store.h"
#include "kl_table.h"

/* requests per kl_diameter_poll call (one queued write each), one store commit: with a cluster a
 * commit waits for etcd, and the control loop (the watch, the admin socket) waits for it. 256 gave
 * the same durable pushes/s as 2048 in cluster-push-bench (2,600-2,900/s, 3 members, load ~2)
 * and lag A -> B during a two-node push p99 390-430 ms instead of 1.4-1.8 s */
#define KL_FEED_BATCH 256

struct kl_feed_params {
	struct kl_table *table;
	struct kl_store *store;	     /* NULL: the table only */
	const struct kl_config *cfg; /* table capacities and e2m_ring (kept by pointer) */
	/* log sink; NULL: stderr. Levels as the config's. */
	void (*log)(void *arg, enum kl_config_log_level level, const char *msg);
	void *log_arg;
};

struct kl_feed;

/** @return the feed, or NULL (out of memory). */
struct kl_feed *kl_feed_create(const struct kl_feed_params *p);

/** Fill h with the feed's handlers (and commit hook when there is a store); h->arg is f. */
void kl_feed_handlers(struct kl_feed *f, struct kl_diameter_handlers *h);

/** After each kl_diameter_poll(d, at most KL_FEED_BATCH): a batch that no commit closed (every
 * handler of the poll failed) is dropped. */
void kl_feed_poll_done(struct kl_feed *f);

/** Free (an open batch is aborted). NULL is accepted. */
void kl_feed_free(struct kl_feed *f);

#endif
