/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kind 1, E2M key fetch (PROTOCOL.md sections 4, 5 and 7): an EMSE, authenticated by its PSK,
 * fetches e2m_key = KDF(e2m_int_key, FF02, EMSE_Id, "e2m_CIoT") for an IMSI (or an application
 * identity that maps to one), the newest e2m_int_key or one by key identifier. The IMSI never
 * appears in the answer.
 */
#include <string.h>

#include "kl_engine_priv.h"

#define E2M_LABEL "e2m_CIoT"

static void emse_psk(const void *e, const struct kl_psk_chunk **chunk, unsigned *n)
{
	const struct kl_emse *em = e;

	*chunk = em->chunk;
	*n = em->nchunks;
}

static int imsi_digits(const uint8_t *s, uint16_t n)
{
	if (n < 1 || n > 15)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* An application identity first goes through the appid table to its IMSI. */
static int key_appid(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	if (imsi_digits(r->ue, r->ue_len))
		return 0;
	k->id = r->ue;
	k->len = r->ue_len;
	return 1;
}

static void take_appid(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_appid *a = e;

	if (!a) {
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 2);
		return;
	}
	w->job[i].k.e2m.imsi = a->imsi;
	w->job[i].k.e2m.imsi_len = a->imsi_len;
}

static int key_e2m(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];

	if (j->k.e2m.imsi) {
		k->id = (const uint8_t *)j->k.e2m.imsi;
		k->len = j->k.e2m.imsi_len;
	} else {
		k->id = r->ue;
		k->len = r->ue_len;
	}
	return 1;
}

static void take_e2m(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_e2m *ring = e;
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	const struct kl_e2m_key *k = NULL;

	if (!ring || !ring->n) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 2);
		return;
	}
	if (!r->has_key_id) {
		k = &ring->keys[0];
	} else {
		for (unsigned x = 0; x < ring->n && !k; x++)
			if (ring->keys[x].key_id == r->key_id)
				k = &ring->keys[x];
		if (!k) {
			kl_job_error(j, KL_ERR_UNSPECIFIED, 2);
			return;
		}
	}
	if (k->expires && w->now >= k->expires) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 3);
		return;
	}
	j->k.e2m.e2m = k;
}

/* e2m_key = KDF(e2m_int_key, FF02, EMSE_Id, "e2m_CIoT"); the answer's one key. */
static unsigned kdf(struct kl_worker *w, unsigned i, struct kl_kdf_op *op)
{
	struct job *j = &w->job[i];
	const struct kl_e2m_key *e = j->k.e2m.e2m;

	memcpy(j->k.e2m.e2m_int.istate, e->istate, sizeof(j->k.e2m.e2m_int.istate));
	memcpy(j->k.e2m.e2m_int.ostate, e->ostate, sizeof(j->k.e2m.e2m_int.ostate));
	j->k.e2m.e2m_int.alg = KL_HASH_SHA256;
	j->k.e2m.kdfp[0] = (struct kl_kdf_param){ .data = w->req[i].id, .len = w->req[i].id_len };
	j->k.e2m.kdfp[1] = (struct kl_kdf_param){ .data = (const uint8_t *)E2M_LABEL,
						  .len = sizeof(E2M_LABEL) - 1 };
	*op = (struct kl_kdf_op){ .key = &j->k.e2m.e2m_int, .params = j->k.e2m.kdfp, .fc = 0xFF02,
				  .nparams = 2, .out = j->k.e2m.e2m_key };
	j->keys[0] = (struct kl_mikey_key){ .key = j->k.e2m.e2m_key, .key_len = 32,
					    .key_id = e->key_id, .valid_from = 0,
					    .valid_to = e->expires };
	j->nkeys = 1;
	return 1;
}

static void start(struct job *j)
{
	j->k.e2m.imsi = NULL;
	j->k.e2m.e2m = NULL;
}

const struct kl_kind_ops kl_kind_e2m = {
	.start = start,
	.requester = KL_TK_EMSE,
	.psk = emse_psk,
	.lookup = { { KL_TK_APPID, key_appid, take_appid }, { KL_TK_E2M, key_e2m, take_e2m } },
	.nlookups = 2,
	.kdf = kdf,
};
