/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kind 0, MBMS key request (PROTOCOL.md sections 4-5): a UE, authenticated by its MUK, asks for
 * the current MSK of a key group (or one by key number); the next MSK comes along when it becomes
 * valid within the pre-delivery window.
 */
#include <string.h>

#include "kl_engine_priv.h"

/* The MUK's lifetime (GBA Ks_NAF) is over: the key exists but is not valid now (12/3, the UE
 * bootstraps again); otherwise the UE must have the mbms service (7/4) and hold the key group
 * (7/1). */
static void authorise(struct kl_worker *w, unsigned i)
{
	const struct kl_ue *ue = w->job[i].requester;
	const struct kl_mikey_req *r = &w->req[i];

	if (ue->expires && w->now >= ue->expires) {
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 3);
		return;
	}
	if (!(ue->services & KL_SVC(MBMS))) {
		kl_job_error(&w->job[i], KL_ERR_INVALID_ID, 4);
		return;
	}
	for (unsigned g = 0; g < ue->ngroups && g < KL_TABLE_UE_GROUPS; g++)
		if (ue->groups[g].group == r->group && !memcmp(ue->groups[g].domain, r->domain, 3))
			return;
	kl_job_error(&w->job[i], KL_ERR_INVALID_ID, 1);
}

static int in_validity(const struct kl_msk *m, uint64_t now)
{
	return m->valid_from <= now && now < m->valid_to;
}

/* Key selection of PROTOCOL.md section 5: the current MSK (or the asked-for key number), plus
 * the next one when it becomes valid within the pre-delivery window. */
static void select_msk(struct kl_worker *w, struct job *j, const struct kl_mikey_req *r,
		       const struct kl_group *g, uint64_t now)
{
	const struct kl_msk *cand[2] = { &g->current, g->has_next ? &g->next : NULL };
	const struct kl_msk *pick = NULL, *extra = NULL;

	if (r->number == 0) {
		for (unsigned i = 0; i < 2 && !pick; i++)
			if (cand[i] && in_validity(cand[i], now))
				pick = cand[i];
		if (!pick) {
			kl_job_error(j, KL_ERR_UNSPECIFIED, 3);
			return;
		}
		if (pick == &g->current && cand[1] && cand[1]->valid_from > now &&
		    cand[1]->valid_from - now <= w->predelivery)
			extra = cand[1];
	} else {
		for (unsigned i = 0; i < 2 && !pick; i++)
			if (cand[i] && (cand[i]->msk_id & 0xFFFF) == r->number)
				pick = cand[i];
		if (!pick) {
			kl_job_error(j, KL_ERR_UNSPECIFIED, 2);
			return;
		}
		if (!in_validity(pick, now) &&
		    !(pick->valid_from > now && pick->valid_from - now <= w->predelivery &&
		      now < pick->valid_to)) {
			kl_job_error(j, KL_ERR_UNSPECIFIED, 3);
			return;
		}
	}
	j->nkeys = 0;
	for (const struct kl_msk *m = pick; m; m = (m == pick ? extra : NULL)) {
		struct kl_mikey_key *k = &j->keys[j->nkeys++];

		k->key = m->key;
		k->key_len = sizeof(m->key);
		k->key_id = m->msk_id;
		k->valid_from = m->valid_from;
		k->valid_to = m->valid_to;
	}
}

static int key_group(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];

	memcpy(j->k.mbms.gkey, r->domain, 3);
	j->k.mbms.gkey[3] = (uint8_t)(r->group >> 8);
	j->k.mbms.gkey[4] = (uint8_t)r->group;
	k->id = j->k.mbms.gkey;
	k->len = 5;
	return 1;
}

static void take_group(struct kl_worker *w, unsigned i, const void *e)
{
	struct job *j = &w->job[i];

	if (!e)
		kl_job_error(j, KL_ERR_UNSPECIFIED, 2);
	else
		select_msk(w, j, &w->req[i], e, w->now);
}

const struct kl_kind_ops kl_kind_mbms = {
	.requester = KL_TK_UE,
	.psk = kl_ue_psk,
	.authorise = authorise,
	.lookup = { { KL_TK_GROUP, key_group, take_group } },
	.nlookups = 1,
};
