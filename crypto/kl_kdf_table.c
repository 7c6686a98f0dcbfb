/* SPDX-License-Identifier: BSD-3-Clause */
/* The derivations of PROTOCOL.md section 7, kept in one table. FCs marked "profile choice" are
 * this project's (0xFF 0x01.. : TS 33.220 has no private range); the others are 3GPP's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto_priv.h"

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
	/* "prose-kd" is the operator's command (key files, KCV out): this row is its hex form */
	[KL_KDF_PROSE_KD] = { "prose-kd-hex", "p2", "profile choice", 0xFF05, 1, { "p4" }, { NULL },
			      { H } },
	[KL_KDF_VLR_TOKEN] = { "vlr-token", "K(VLRa,VLRb)", "profile choice", 0xFF06, 1, { "id-ue" },
			       { NULL }, { T } },
	[KL_KDF_DH_SCALAR] = { "dh-scalar", "Kx (UEx's PSK)", "profile choice", 0xFF07, 1, { NULL },
			       { "dh-x25519" }, { T } },
	/* "dh-ks" is the operator's command (X25519 included): this row is the KDF step alone */
	[KL_KDF_DH_KS] = { "dh-ks-hex", "X25519 shared secret", "profile choice", 0xFF08, 2,
			   { "id-lo", "id-hi" }, { NULL, NULL }, { T, T } },
	[KL_KDF_S2S_PSK] = { "s2s-psk", "K(VLRa,VLRb)", "profile choice", 0xFF09, 1, { NULL },
			     { "s2s" }, { T } },
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

/* One KDF without a crypto context: S built here, one HMAC-SHA-256 through OpenSSL. */
static int kdf_one(const struct kl_hmac_key *key, uint16_t fc, const struct kl_kdf_param *p,
		   unsigned np, uint8_t out[KL_KDF_OUT_LEN])
{
	uint8_t stack[512], *s = stack;
	size_t cap = 2;
	long n;

	for (unsigned i = 0; i < np; i++)
		cap += 2 + p[i].len;
	if (cap > sizeof(stack) && !(s = malloc(cap)))
		return -ENOMEM;
	n = kl_kdf_s_build(fc, p, np, s, cap);
	if (n >= 0)
		kl_ossl_hmac_one(key, s, (size_t)n, out);
	kl_memzero(s, cap); /* S may hold identities: cleared like the rest */
	if (s != stack)
		free(s);
	return n < 0 ? -EINVAL : 0;
}

int kl_derive_hk(struct kl_crypto *c, enum kl_kdf_id id, const struct kl_hmac_key *key,
		 const struct kl_kdf_param *vars, unsigned nvars, uint8_t out[KL_KDF_OUT_LEN])
{
	const struct kl_kdf_def *d = kl_kdf_def_get(id);
	struct kl_kdf_param p[4];
	unsigned nv = 0;

	if (!d || !key || key->alg != KL_HASH_SHA256 || !out || (nvars && !vars))
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
	return c ? kl_kdf(c, key, d->fc, p, d->nparams, out) : kdf_one(key, d->fc, p, d->nparams, out);
}

int kl_derive(struct kl_crypto *c, enum kl_kdf_id id, const uint8_t *key, size_t key_len,
	      const struct kl_kdf_param *vars, unsigned nvars, uint8_t out[KL_KDF_OUT_LEN])
{
	struct kl_hmac_key k;
	int rc;

	if (!key || !key_len || kl_hmac_key_init(KL_HASH_SHA256, key, key_len, &k))
		return -EINVAL;
	rc = kl_derive_hk(c, id, &k, vars, nvars, out);
	kl_hmac_key_wipe(&k);
	return rc;
}

uint32_t kl_e2m_key_id(const uint8_t rand[16])
{
	return (uint32_t)rand[12] << 24 | (uint32_t)rand[13] << 16 | (uint32_t)rand[14] << 8 | rand[15];
}
