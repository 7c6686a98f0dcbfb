/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One MSK per MSK ID across a cluster, whichever nodes race or restart (issue 14 item 4).
 *
 * Before a node hands out or stores a new MSK for (key group, MSK ID), it claims the ID in etcd:
 * a transaction that creates <prefix>/msk/<group>/<MSK ID as 8 hex digits> = its candidate only if
 * the key is absent (create_revision == 0) and otherwise reads what is there. Both branches are
 * one atomic revision, so two leaders racing for one ID (an old leader that has not noticed yet,
 * a node restarting mid-rotation) both come back with the first one's value and use that MSK;
 * the loser's candidate is dropped. The value is the MSK wrapped under the store's KEK
 * (kl_store_kwp, with whatever metadata the caller puts around it): etcd never sees a key in clear.
 * The record carries no lease: it outlives the node that wrote it.
 */
#ifndef KL_MSK_GUARD_H
#define KL_MSK_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "kl_etcd.h"

#define KL_MSK_GUARD_VALUE_MAX 4096

struct kl_msk_claim {
	int created;	      /* 1: this call's transaction created it; 0: it was there (the value
			       * is another node's, or ours from an earlier call); -1: the answer to
			       * our transaction was lost, the value was read back afterwards */
	int ours;	      /* the value stored equals the candidate we offered */
	uint8_t *value;	      /* the value now in etcd (value_len bytes): use this one */
	size_t value_len;
	int64_t create_revision; /* of the record */
	int64_t revision;	 /* etcd's revision when it answered */
};
void kl_msk_claim_free(struct kl_msk_claim *c);

/* The record's key: <prefix>/msk/<group>/<8 hex digits>. Returns its length, or 0 when out
 * (size cap) is too small or group is empty or has a '/'. */
size_t kl_msk_guard_key(const char *prefix, const char *group, uint32_t msk_id, char *out,
			size_t cap);

/*
 * Claim msk_id of group with the candidate wrapped value (1..KL_MSK_GUARD_VALUE_MAX bytes).
 * Returns 0 with out filled (out->value is what every node must use), or a kl_etcd error
 * (KL_ETCD_EINVAL for bad arguments; after KL_ETCD_EUNKNOWN the record is read back once and
 * the call succeeds with created = -1 if it is there).
 */
int kl_msk_claim(struct kl_etcd *c, const char *prefix, const char *group, uint32_t msk_id,
		 const uint8_t *wrapped, size_t len, struct kl_msk_claim *out);

#endif
