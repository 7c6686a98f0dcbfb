/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The VLR token scheme (Hoyle-Mitchell), PROTOCOL.md section 9:
 *  kind 2, HM session: UEa asks its server VLRa for a session with UEb of server VLRb. VLRa makes
 *    Ks (CSPRNG), K*a = KDF(K(VLRa,VLRb), FF06, IDUEa), K*b = KDF(K(VLRa,VLRb), FF06, IDUEb) and
 *    answers K*a (KEMAC) with token_a and token_b: 0x01 || nonce || AES-256-GCM(K*x, nonce,
 *    aad = 0x01 || len || ID_VLRa || len || ID_VLRb, Ks || valid-to || len || IDUEa || len ||
 *    IDUEb) || tag.
 *  kind 3, K* fetch: UEb asks its server VLRb for K*b = KDF(K(VLRa,VLRb), FF06, IDUEb), to open
 *    the token UEa handed over.
 * Both need the requester's hm service (7/4) and a pair key with the named server (12/6) that
 * has not expired (12/3).
 */
#include <string.h>

#include "kl_engine_priv.h"

#define TOKEN_VERSION 0x01
#define AAD_VERSION 0x01

/* Requester checks shared by both kinds: the MUK's lifetime, then the service. */
static void authorise(struct kl_worker *w, unsigned i)
{
	const struct kl_ue *ue = w->job[i].requester;

	if (ue->expires && w->now >= ue->expires)
		kl_job_error(&w->job[i], KL_ERR_UNSPECIFIED, 3);
	else if (!(ue->services & KL_SVC(HM)))
		kl_job_error(&w->job[i], KL_ERR_INVALID_ID, 4);
}

static int key_pair(struct kl_worker *w, unsigned i, struct kl_table_key *k)
{
	const struct kl_mikey_req *r = &w->req[i];

	k->id = r->tlv[KL_TLVI_PEER_SERVER];
	k->len = r->tlv_len[KL_TLVI_PEER_SERVER];
	return 1;
}

static void take_pair(struct kl_worker *w, unsigned i, const void *e)
{
	const struct kl_pair *p = e;
	struct job *j = &w->job[i];

	if (!p) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 6);
		return;
	}
	if (p->expires && w->now >= p->expires) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 3);
		return;
	}
	memcpy(j->k.hm.pair.istate, p->istate, sizeof(p->istate));
	memcpy(j->k.hm.pair.ostate, p->ostate, sizeof(p->ostate));
	j->k.hm.pair.alg = KL_HASH_SHA256;
	j->k.hm.pair_expires = p->expires;
}

static void kstar_op(struct job *j, unsigned x, const uint8_t *id, uint16_t len,
		     struct kl_kdf_op *op)
{
	j->k.hm.kdfp[x] = (struct kl_kdf_param){ .data = id, .len = len };
	*op = (struct kl_kdf_op){ .key = &j->k.hm.pair, .params = &j->k.hm.kdfp[x], .fc = 0xFF06,
				  .nparams = 1, .out = j->k.hm.kstar[x] };
}

/* ---- kind 2 ---------------------------------------------------------------------------------- */

/* K*a, K*b; and the session's random parts: Ks, session id, the two nonces. */
static unsigned hm_kdf(struct kl_worker *w, unsigned i, struct kl_kdf_op *op)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	const uint8_t *rnd = kl_worker_random(w, 16 + 4 + 2 * KL_GCM_IV_LEN);

	if (!rnd) {
		kl_job_error(j, KL_ERR_UNSPECIFIED, 0);
		return 0;
	}
	memcpy(j->k.hm.ks, rnd, 16);
	memcpy(&j->k.hm.sid, rnd + 16, 4);
	memcpy(j->k.hm.nonce, rnd + 20, sizeof(j->k.hm.nonce));
	kstar_op(j, 0, r->id, r->id_len, &op[0]);
	kstar_op(j, 1, r->tlv[KL_TLVI_PEER_UE], r->tlv_len[KL_TLVI_PEER_UE], &op[1]);
	j->keys[0] = (struct kl_mikey_key){ .key = j->k.hm.kstar[0], .key_len = 32,
					    .key_id = j->k.hm.sid, .valid_from = w->now,
					    .valid_to = w->now + w->session };
	j->nkeys = 1;
	return 2;
}

/* The answer with both tokens' room: 0x01 || nonce || plaintext (sealed in place later) || tag. */
static int hm_build(struct kl_worker *w, unsigned i, struct kl_pkt *p)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];
	const uint8_t *idb = r->tlv[KL_TLVI_PEER_UE], *vlrb = r->tlv[KL_TLVI_PEER_SERVER];
	uint16_t lb = r->tlv_len[KL_TLVI_PEER_UE], lvb = r->tlv_len[KL_TLVI_PEER_SERVER];
	uint16_t pt_len = (uint16_t)(16 + 8 + 1 + r->id_len + 1 + lb);
	uint16_t tok_len = (uint16_t)(1 + KL_GCM_IV_LEN + pt_len + KL_GCM_TAG_LEN);
	struct kl_mikey_tlv tok[2] = { { .type = KL_TLV_TOKEN_REQ, .len = tok_len },
				       { .type = KL_TLV_TOKEN_PEER, .len = tok_len } };
	uint8_t *a = j->k.hm.aad;
	int rc;

	rc = kl_mikey_build_resp_tlv(p->out, p->out_cap, r, w->now, w->idr, w->idr_len, j->keys,
				     j->nkeys, tok, 2, &j->lay);
	if (rc < 0)
		return rc;
	/* aad = 0x01 || len(ID_VLRa) || ID_VLRa || len(ID_VLRb) || ID_VLRb; this server is VLRa */
	a[0] = AAD_VERSION;
	a[1] = (uint8_t)w->idr_len;
	memcpy(a + 2, w->idr, w->idr_len);
	a[2 + w->idr_len] = (uint8_t)lvb;
	memcpy(a + 3 + w->idr_len, vlrb, lvb);
	j->k.hm.aad_len = (uint16_t)(3 + w->idr_len + lvb);
	j->k.hm.pt_len = pt_len;
	for (unsigned x = 0; x < 2; x++) {
		uint8_t *t = p->out + tok[x].off;

		j->k.hm.tok_off[x] = tok[x].off;
		t[0] = TOKEN_VERSION;
		memcpy(t + 1, j->k.hm.nonce[x], KL_GCM_IV_LEN);
		t += 1 + KL_GCM_IV_LEN;
		/* Ks || valid-to || len(IDUEa) || IDUEa || len(IDUEb) || IDUEb */
		memcpy(t, j->k.hm.ks, 16);
		kl_put64(t + 16, j->keys[0].valid_to);
		t[24] = (uint8_t)r->id_len;
		memcpy(t + 25, r->id, r->id_len);
		t[25 + r->id_len] = (uint8_t)lb;
		memcpy(t + 26 + r->id_len, idb, lb);
	}
	return 0;
}

static unsigned hm_seal(struct kl_worker *w, unsigned i, uint8_t *out, struct kl_gcm_op *op)
{
	struct job *j = &w->job[i];

	for (unsigned x = 0; x < 2; x++) {
		uint8_t *t = out + j->k.hm.tok_off[x] + 1 + KL_GCM_IV_LEN;

		op[x] = (struct kl_gcm_op){ .key = j->k.hm.kstar[x], .iv = j->k.hm.nonce[x],
					    .aad = j->k.hm.aad, .aad_len = j->k.hm.aad_len,
					    .in = t, .out = t, .len = j->k.hm.pt_len,
					    .tag = t + j->k.hm.pt_len };
	}
	return 2;
}

const struct kl_kind_ops kl_kind_hm = {
	.requester = KL_TK_UE,
	.psk = kl_ue_psk,
	.authorise = authorise,
	.lookup = { { KL_TK_PAIR, key_pair, take_pair } },
	.nlookups = 1,
	.kdf = hm_kdf,
	.build = hm_build,
	.seal = hm_seal,
};

/* ---- kind 3 ---------------------------------------------------------------------------------- */

/* K*b for the requester; TLV 3 = 0 || now || the pair key's expiry. */
static unsigned kstar_kdf(struct kl_worker *w, unsigned i, struct kl_kdf_op *op)
{
	const struct kl_mikey_req *r = &w->req[i];
	struct job *j = &w->job[i];

	kstar_op(j, 0, r->id, r->id_len, op);
	j->keys[0] = (struct kl_mikey_key){ .key = j->k.hm.kstar[0], .key_len = 32, .key_id = 0,
					    .valid_from = w->now, .valid_to = j->k.hm.pair_expires };
	j->nkeys = 1;
	return 1;
}

const struct kl_kind_ops kl_kind_kstar = {
	.requester = KL_TK_UE,
	.psk = kl_ue_psk,
	.authorise = authorise,
	.lookup = { { KL_TK_PAIR, key_pair, take_pair } },
	.nlookups = 1,
	.kdf = kstar_kdf,
};
