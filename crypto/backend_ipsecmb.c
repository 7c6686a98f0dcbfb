/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Intel IPsec-MB backend through the synchronous burst API (IMB_SUBMIT_HASH_BURST,
 * IMB_SUBMIT_CIPHER_BURST). Two managers: the one init_mb_mgr_auto picks (AVX-512 runs 16 HMAC
 * lanes and is fast only when bursts are full) and an SSE one, which uses SHA-NI, for short bursts
 * where the wide manager would spend its time flushing half-empty lanes.
 */
#define NO_COMPAT_IMB_API_053 /* its SHA1/SHA256 names collide with OpenSSL's */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "kl_crypto_priv.h"

/* Below this many HMACs in one burst the SSE (SHA-NI) manager is faster than the AVX-512 one
 * (measured with bench/crypto_bench: see the foundation issue note). */
#ifndef KL_IMB_SMALL_BURST
#define KL_IMB_SMALL_BURST 8u
#endif

struct imb_state {
	IMB_JOB jobs[KL_SLICE];
	DECLARE_ALIGNED(uint32_t enc_keys[KL_SLICE][4 * 15], 16);
	DECLARE_ALIGNED(uint32_t dec_scratch[4 * 15], 16);
	IMB_MGR *wide;
	IMB_MGR *narrow;
	IMB_ARCH arch;
};

static const char *arch_name(IMB_ARCH a)
{
	switch (a) {
	case IMB_ARCH_NOAESNI: return "no-aesni";
	case IMB_ARCH_SSE: return "sse";
	case IMB_ARCH_AVX: return "avx";
	case IMB_ARCH_AVX2: return "avx2";
	case IMB_ARCH_AVX512: return "avx512";
	default: return "unknown";
	}
}

static int imb_hmac(struct kl_crypto *c, enum kl_hash_alg alg, const struct kl_hmac_op *ops,
		    unsigned n)
{
	struct imb_state *s = c->be;
	IMB_MGR *m = n < KL_IMB_SMALL_BURST ? s->narrow : s->wide;
	IMB_HASH_ALG h = alg == KL_HASH_SHA1 ? IMB_AUTH_HMAC_SHA_1 : IMB_AUTH_HMAC_SHA_256;
	uint64_t tag = alg == KL_HASH_SHA1 ? KL_SHA1_LEN : KL_SHA256_LEN;

	for (unsigned i = 0; i < n; i++) {
		IMB_JOB *j = &s->jobs[i];

		j->src = ops[i].msg;
		j->hash_start_src_offset_in_bytes = 0;
		j->msg_len_to_hash_in_bytes = ops[i].len;
		j->auth_tag_output = ops[i].mac;
		j->auth_tag_output_len_in_bytes = tag;
		j->u.HMAC._hashed_auth_key_xor_ipad = (const uint8_t *)ops[i].key->istate;
		j->u.HMAC._hashed_auth_key_xor_opad = (const uint8_t *)ops[i].key->ostate;
		j->hash_alg = h;
		j->cipher_mode = IMB_CIPHER_NULL;
		j->chain_order = IMB_ORDER_HASH_CIPHER;
		j->cipher_direction = IMB_DIR_ENCRYPT;
	}
	if (IMB_SUBMIT_HASH_BURST(m, s->jobs, n, h) != n)
		return -EIO;
	return 0;
}

static int imb_aes_ctr(struct kl_crypto *c, const struct kl_aes_ctr_op *ops, unsigned n)
{
	struct imb_state *s = c->be;
	IMB_MGR *m = s->wide;

	for (unsigned i = 0; i < n; i++) {
		IMB_JOB *j = &s->jobs[i];

		IMB_AES_KEYEXP_128(m, ops[i].key, s->enc_keys[i], s->dec_scratch);
		j->enc_keys = s->enc_keys[i];
		j->dec_keys = s->enc_keys[i];
		j->key_len_in_bytes = IMB_KEY_128_BYTES;
		j->iv = ops[i].iv;
		j->iv_len_in_bytes = 16;
		j->src = ops[i].in;
		j->dst = ops[i].out;
		j->cipher_start_src_offset_in_bytes = 0;
		j->msg_len_to_cipher_in_bytes = ops[i].len;
		j->cipher_mode = IMB_CIPHER_CNTR;
		j->cipher_direction = IMB_DIR_ENCRYPT;
		j->hash_alg = IMB_AUTH_NULL;
		j->chain_order = IMB_ORDER_CIPHER_HASH;
	}
	if (IMB_SUBMIT_CIPHER_BURST(m, s->jobs, n, IMB_CIPHER_CNTR, IMB_DIR_ENCRYPT,
				    IMB_KEY_128_BYTES) != n)
		return -EIO;
	/* Expanded per-request keys do not outlive the burst. */
	memset(s->enc_keys, 0, n * sizeof(s->enc_keys[0]));
	return 0;
}

static void imb_destroy(struct kl_crypto *c)
{
	struct imb_state *s = c->be;

	if (!s)
		return;
	free_mb_mgr(s->wide);
	free_mb_mgr(s->narrow);
	memset(s, 0, sizeof(*s));
	free(s);
	c->be = NULL;
}

static const struct kl_backend_ops imb_ops = {
	.hmac = imb_hmac,
	.aes_ctr = imb_aes_ctr,
	.destroy = imb_destroy,
};

int kl_backend_ipsecmb_init(struct kl_crypto *c)
{
	struct imb_state *s;

	if (posix_memalign((void **)&s, 64, sizeof(*s)) != 0)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->wide = alloc_mb_mgr(0);
	s->narrow = alloc_mb_mgr(0);
	if (!s->wide || !s->narrow) {
		free_mb_mgr(s->wide);
		free_mb_mgr(s->narrow);
		free(s);
		return -ENOMEM;
	}
	init_mb_mgr_auto(s->wide, &s->arch);
	if (s->arch == IMB_ARCH_NONE || imb_get_errno(s->wide) != 0) {
		free_mb_mgr(s->wide);
		free_mb_mgr(s->narrow);
		free(s);
		return -ENOTSUP;
	}
	init_mb_mgr_sse(s->narrow);
	c->be = s;
	c->ops = &imb_ops;
	snprintf(c->arch, sizeof(c->arch), "ipsec-mb %s, auto picked %s (bursts >= %u), sse/SHA-NI below",
		 imb_get_version_str(), arch_name(s->arch), KL_IMB_SMALL_BURST);
	return 0;
}
