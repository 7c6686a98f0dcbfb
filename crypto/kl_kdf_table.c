/* SPDX-License-Identifier: BSD-3-Clause */
/* The derivations of PROTOCOL.md section 7, kept in one table. FCs marked "profile choice" are
 * this project's (0xFF 0x01.. : TS 33.220 has no private range); the others are 3GPP's. */
#include <errno.h>
#include <string.h>

#include "kl_crypto.h"

#define T KL_KDF_P_TEXT
#define H KL_KDF_P_HEX

static const struct kl_kdf_def defs[KL_KDF__COUNT] = {
	[KL_KDF_KS_NAF] = { "ks-naf", "CK||IK", "TS 33.220 B.3", 0x01, 4,
			    { NULL, "rand", "impi", "naf-id" }, { "gba-me", NULL, NULL, NULL },
			    { T, H, T, H } },
	[KL_KDF_KASME] = { "kasme", "CK||IK", "TS 33.401 A.2", 0x10, 2, { "sn-id", "sqn-xor-ak" },
			   { NULL, NULL }, { H, H } },
	[KL_KDF_E2M_INT] = { "e2m-int-key", "CK||IK", "profile choice", 0xFF01, 1, { NULL },
			     { "e2m_CIoT" }, { T } },
	[KL_KDF_E2M] = { "e2m-key", "e2m_int_key", "profile choice", 0xFF02, 2, { "emse-id", NULL },
			 { NULL, "e2m_CIoT" }, { T, T } },
	[KL_KDF_KS_LOCAL_MT] = { "ks-local-mt", "Ks_(ext)_NAF", "profile choice", 0xFF03, 3,
				 { "btid", "naf-id", "device-id" }, { NULL, NULL, NULL }, { T, H, T } },
	[KL_KDF_PROSE_P2] = { "prose-p2", "KASME", "profile choice", 0xFF04, 1, { "p1" }, { NULL },
			      { H } },
	[KL_KDF_PROSE_KD] = { "prose-kd", "p2", "profile choice", 0xFF05, 1, { "p4" }, { NULL },
			      { H } },
	[KL_KDF_VLR_TOKEN] = { "vlr-token", "K(VLRa,VLRb)", "profile choice", 0xFF06, 1, { "id-ue" },
			       { NULL }, { T } },
	[KL_KDF_AKMA_KAKMA] = { "akma-kakma", "KAUSF", "TS 33.535 A.2", 0x80, 2, { NULL, "supi" },
				{ "AKMA", NULL }, { T, T } },
	[KL_KDF_AKMA_ATID] = { "akma-atid", "KAUSF", "TS 33.535 A.3", 0x81, 2, { NULL, "supi" },
			       { "A-TID", NULL }, { T, T } },
	[KL_KDF_AKMA_KAF] = { "akma-kaf", "K_AKMA", "TS 33.535 A.4", 0x82, 1, { "af-id" }, { NULL },
			      { T } },
};

const struct kl_kdf_def *kl_kdf_def_get(enum kl_kdf_id id)
{
	return (unsigned)id < KL_KDF__COUNT ? &defs[id] : NULL;
}

const struct kl_kdf_def *kl_kdf_def_find(const char *name)
{
	for (unsigned i = 0; name && i < KL_KDF__COUNT; i++)
		if (!strcmp(defs[i].name, name))
			return &defs[i];
	return NULL;
}

int kl_derive(struct kl_crypto *c, enum kl_kdf_id id, const uint8_t *key, size_t key_len,
	      const struct kl_kdf_param *vars, unsigned nvars, uint8_t out[KL_KDF_OUT_LEN])
{
	const struct kl_kdf_def *d = kl_kdf_def_get(id);
	struct kl_kdf_param p[4];
	struct kl_hmac_key k;
	unsigned nv = 0;
	int rc;

	if (!d || !key || !key_len || (nvars && !vars))
		return -EINVAL;
	for (unsigned i = 0; i < d->nparams; i++) {
		if (d->fixed[i]) {
			p[i].data = (const uint8_t *)d->fixed[i];
			p[i].len = strlen(d->fixed[i]);
		} else {
			if (nv >= nvars)
				return -EINVAL;
			p[i] = vars[nv++];
		}
	}
	if (nv != nvars)
		return -EINVAL;
	kl_hmac_key_init(KL_HASH_SHA256, key, key_len, &k);
	rc = kl_kdf(c, &k, d->fc, p, d->nparams, out);
	kl_hmac_key_wipe(&k);
	return rc;
}

uint32_t kl_e2m_key_id(const uint8_t rand[16])
{
	return (uint32_t)rand[12] << 24 | (uint32_t)rand[13] << 16 | (uint32_t)rand[14] << 8 | rand[15];
}
