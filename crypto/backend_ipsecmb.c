/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Intel IPsec-MB backend through the synchronous burst API (IMB_SUBMIT_HASH_BURST,
 * IMB_SUBMIT_CIPHER_BURST), and the direct AES-GCM API for tokens (see imb_gcm). Two managers: the
 * one init_mb_mgr_auto picks (AVX-512 runs 16 HMAC lanes and is fast only when bursts are full) and
 * an SSE one, which uses SHA-NI, for short bursts where the wide manager would spend its time
 * flushing half-empty lanes.
 */
#define NO_COMPAT_IMB_API_053 /* its SHA1/SHA256 names collide with OpenSSL's */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>
#include <openssl/crypto.h>

#include "kl_crypto_priv.h"

/* Bursts shorter than this use the manager calibrated for short bursts, longer ones the one
 * calibrated for full bursts (see calibrate()). */
#define KL_IMB_SHORT_BURST 16u

/* IPsec-MB 1.3 refuses HMAC jobs over an empty message or one longer than this (measured);
 * such messages never come from the wire, and are hashed with OpenSSL's block functions. */
#define KL_IMB_HASH_MAX 65534u

struct imb_state {
	IMB_JOB jobs[KL_SLICE];
	DECLARE_ALIGNED(uint32_t enc_keys[KL_SLICE][4 * 15], 16);
	DECLARE_ALIGNED(uint32_t dec_scratch[4 * 15], 16);
	uint8_t iv2[KL_SLICE][16];
	struct gcm_key_data gcm_key; /* 64-byte aligned: the state is */
	struct gcm_context_data gcm_ctx;
	uint8_t gcm_tag[KL_GCM_TAG_LEN];
	uint8_t gcm_none[16]; /* in/out/aad of empty inputs */
	IMB_MGR *wide;
	IMB_MGR *narrow;
	IMB_MGR *pick[2][2]; /* [alg][0 short burst, 1 full burst] */
	IMB_MGR *gcm;
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
	IMB_MGR *m = s->pick[alg][n >= KL_IMB_SHORT_BURST];
	IMB_HASH_ALG h = alg == KL_HASH_SHA1 ? IMB_AUTH_HMAC_SHA_1 : IMB_AUTH_HMAC_SHA_256;
	uint64_t tag = alg == KL_HASH_SHA1 ? KL_SHA1_LEN : KL_SHA256_LEN;
	unsigned nj = 0;

	for (unsigned i = 0; i < n; i++) {
		IMB_JOB *j;

		if (ops[i].len == 0 || ops[i].len > KL_IMB_HASH_MAX) {
			kl_ossl_hmac_one(ops[i].key, ops[i].msg, ops[i].len, ops[i].mac);
			continue;
		}
		j = &s->jobs[nj++];

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
	if (nj && IMB_SUBMIT_HASH_BURST(m, s->jobs, nj, h) != nj)
		return -EIO;
	return 0;
}

static void ctr_job(IMB_JOB *j, const uint32_t *ks, const uint8_t *iv, const uint8_t *in,
		    uint8_t *out, uint32_t len)
{
	j->enc_keys = ks;
	j->dec_keys = ks;
	j->key_len_in_bytes = IMB_KEY_128_BYTES;
	j->iv = iv;
	j->iv_len_in_bytes = 16;
	j->src = in;
	j->dst = out;
	j->cipher_start_src_offset_in_bytes = 0;
	j->msg_len_to_cipher_in_bytes = len;
	j->cipher_mode = IMB_CIPHER_CNTR;
	j->cipher_direction = IMB_DIR_ENCRYPT;
	j->hash_alg = IMB_AUTH_NULL;
	j->chain_order = IMB_ORDER_CIPHER_HASH;
}

static int ctr_submit(struct imb_state *s, unsigned nj)
{
	if (nj && IMB_SUBMIT_CIPHER_BURST(s->wide, s->jobs, nj, IMB_CIPHER_CNTR, IMB_DIR_ENCRYPT,
					  IMB_KEY_128_BYTES) != nj)
		return -EIO;
	return 0;
}

/*
 * IPsec-MB counts only in the low 32 bits of a 16-byte counter block; the API promises a 128-bit
 * counter, so an operation whose counter would wrap those 32 bits runs as two jobs, the second
 * from the carried counter block. AES-CM never wraps (its counter starts at a multiple of 2^16
 * and is at most 2^16 blocks long), so this costs the packet path one compare.
 */
static int imb_aes_ctr(struct kl_crypto *c, const struct kl_aes_ctr_op *ops, unsigned n)
{
	struct imb_state *s = c->be;
	unsigned nj = 0;
	int rc = 0;

	for (unsigned i = 0; i < n && rc == 0; i++) {
		const uint8_t *iv = ops[i].iv;
		uint64_t blocks = (ops[i].len + 15u) / 16u;
		uint64_t low = (uint64_t)iv[12] << 24 | (uint64_t)iv[13] << 16 | (uint64_t)iv[14] << 8 | iv[15];

		IMB_AES_KEYEXP_128(s->wide, ops[i].key, s->enc_keys[i], s->dec_scratch);
		if (low + blocks <= (1ull << 32)) {
			if (nj == KL_SLICE) {
				rc = ctr_submit(s, nj);
				nj = 0;
			}
			ctr_job(&s->jobs[nj++], s->enc_keys[i], iv, ops[i].in, ops[i].out, ops[i].len);
			continue;
		}
		{
			uint32_t first = (uint32_t)(((1ull << 32) - low) * 16u);
			uint8_t *iv2 = s->iv2[i];
			unsigned carry = 1;

			memcpy(iv2, iv, 12);
			memset(iv2 + 12, 0, 4);
			for (int b = 11; b >= 0 && carry; b--) {
				iv2[b] = (uint8_t)(iv2[b] + 1);
				carry = iv2[b] == 0;
			}
			if (nj + 2 > KL_SLICE) {
				rc = ctr_submit(s, nj);
				nj = 0;
			}
			ctr_job(&s->jobs[nj++], s->enc_keys[i], iv, ops[i].in, ops[i].out, first);
			ctr_job(&s->jobs[nj++], s->enc_keys[i], iv2, ops[i].in + first, ops[i].out + first,
				ops[i].len - first);
		}
	}
	if (rc == 0)
		rc = ctr_submit(s, nj);
	/* Expanded per-request keys do not outlive the burst. */
	memset(s->enc_keys, 0, n * sizeof(s->enc_keys[0]));
	return rc;
}

/*
 * AES-256-GCM through the direct API: IMB_AES256_GCM_PRE (AES key schedule and GHASH key powers)
 * then IMB_AES256_GCM_ENC/DEC, op after op, with one key table that stays in L1. The job and burst
 * APIs take GCM too (IMB_CIPHER_GCM + IMB_AUTH_AES_GMAC), but each job must then carry its own
 * 1008-byte gcm_key_data until the burst completes, and IPsec-MB 1.3 runs GCM jobs one by one
 * anyway (no multi-lane GCM). Measured on AVX2 (Zen) with a fresh key per op, 20-byte AAD: per op
 * 134 ns direct, 156 ns IMB_SUBMIT_BURST, 163 ns IMB_SUBMIT_JOB at 80 bytes; 176/200/213 ns at 256.
 * The key precomputation is ~77 ns of it whatever the API: a token's key is used once.
 */
static int imb_gcm(struct kl_crypto *c, struct kl_gcm_op *ops, unsigned n, int open)
{
	struct imb_state *s = c->be;
	IMB_MGR *m = s->gcm;
	int rc = 0;

	for (unsigned i = 0; i < n; i++) {
		struct kl_gcm_op *op = &ops[i];
		const uint8_t *in = op->len ? op->in : s->gcm_none;
		const uint8_t *aad = op->aad_len ? op->aad : s->gcm_none;
		uint8_t *out = op->len ? op->out : s->gcm_none;

		IMB_AES256_GCM_PRE(m, op->key, &s->gcm_key);
		if (!open) {
			IMB_AES256_GCM_ENC(m, &s->gcm_key, &s->gcm_ctx, out, in, op->len, op->iv, aad,
					   op->aad_len, op->tag, KL_GCM_TAG_LEN);
			op->rc = 0;
		} else {
			IMB_AES256_GCM_DEC(m, &s->gcm_key, &s->gcm_ctx, out, in, op->len, op->iv, aad,
					   op->aad_len, s->gcm_tag, KL_GCM_TAG_LEN);
			op->rc = CRYPTO_memcmp(s->gcm_tag, op->tag, KL_GCM_TAG_LEN) ? -EBADMSG : 0;
		}
		/* The direct API reports through imb_errno only, cleared by the next good call. */
		if (imb_get_errno(m) != 0)
			rc = -EIO;
	}
	kl_memzero(&s->gcm_key, sizeof(s->gcm_key));
	kl_memzero(&s->gcm_ctx, sizeof(s->gcm_ctx));
	kl_memzero(s->gcm_tag, sizeof(s->gcm_tag));
	return rc;
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
	.gcm = imb_gcm,
	.destroy = imb_destroy,
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Best-of-N time of HMAC bursts of n 64-byte messages on one manager. */
static uint64_t time_hmac(struct kl_crypto *c, IMB_MGR *m, enum kl_hash_alg alg, unsigned n)
{
	struct imb_state *s = c->be;
	static const uint8_t msg[64];
	uint8_t mac[KL_SLICE][KL_HMAC_MAX_LEN];
	struct kl_hmac_key key;
	struct kl_hmac_op ops[KL_SLICE];
	uint64_t best = UINT64_MAX;

	kl_hmac_key_init(alg, msg, 16, &key);
	for (unsigned i = 0; i < n; i++)
		ops[i] = (struct kl_hmac_op){ .key = &key, .msg = msg, .len = sizeof(msg), .mac = mac[i] };
	for (unsigned rep = 0; rep < 7; rep++) {
		uint64_t t0 = mono_ns(), t;

		for (unsigned it = 0; it < 512 / n; it++) {
			IMB_MGR *save[2] = { s->pick[alg][0], s->pick[alg][1] };

			s->pick[alg][0] = s->pick[alg][1] = m;
			imb_hmac(c, alg, ops, n);
			s->pick[alg][0] = save[0];
			s->pick[alg][1] = save[1];
		}
		t = mono_ns() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

/* Best-of-N time of GCM seals of an HM-token-sized message (fresh key each) on one manager. */
static uint64_t time_gcm(struct kl_crypto *c, IMB_MGR *m)
{
	struct imb_state *s = c->be;
	uint8_t buf[8][128], tag[8][KL_GCM_TAG_LEN];
	struct kl_gcm_op ops[8];
	IMB_MGR *save = s->gcm;
	uint64_t best = UINT64_MAX;

	memset(buf, 0x5c, sizeof(buf));
	for (unsigned i = 0; i < 8; i++)
		ops[i] = (struct kl_gcm_op){ .key = buf[i], .iv = buf[i] + 32, .aad = buf[i] + 48,
					     .aad_len = 40, .in = buf[i], .out = buf[i], .len = 96,
					     .tag = tag[i] };
	s->gcm = m;
	for (unsigned rep = 0; rep < 7; rep++) {
		uint64_t t0 = mono_ns(), t;

		for (unsigned it = 0; it < 16; it++)
			imb_gcm(c, ops, 8, 0);
		t = mono_ns() - t0;
		if (t < best)
			best = t;
	}
	s->gcm = save;
	return best;
}

/*
 * Which manager is faster depends on the CPU: on AVX-512 parts with SHA-NI the SSE manager's
 * SHA-NI code can beat the 16-lane AVX-512 HMAC (measured here for SHA-256 at every burst size),
 * while the wide one wins for full SHA-1 bursts. Measure instead of guessing: a few hundred
 * microseconds once per context. Outputs are identical whichever is picked.
 */
static void calibrate(struct kl_crypto *c)
{
	struct imb_state *s = c->be;

	/* GCM with a fresh key per op: AVX-512 precomputes 48 GHASH key powers per key, SSE/AVX2 8;
	 * for ~100-byte tokens the narrower table can win. */
	s->gcm = s->narrow;
	if (s->arch != IMB_ARCH_SSE && time_gcm(c, s->wide) < time_gcm(c, s->narrow))
		s->gcm = s->wide;

	for (unsigned a = KL_HASH_SHA1; a <= KL_HASH_SHA256; a++) {
		s->pick[a][0] = s->pick[a][1] = s->narrow;
		if (s->arch == IMB_ARCH_SSE)
			continue;
		s->pick[a][0] = time_hmac(c, s->wide, a, 8) < time_hmac(c, s->narrow, a, 8) ? s->wide
											      : s->narrow;
		s->pick[a][1] = time_hmac(c, s->wide, a, 64) < time_hmac(c, s->narrow, a, 64) ? s->wide
												: s->narrow;
	}
}

static const char *mgr_name(const struct imb_state *s, const IMB_MGR *m)
{
	return m == s->narrow ? "sse" : arch_name(s->arch);
}

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
	calibrate(c);
	snprintf(c->arch, sizeof(c->arch),
		 "ipsec-mb %s, auto picked %s; HMAC-SHA-1 %s/%s, HMAC-SHA-256 %s/%s (bursts <%u/>=%u), "
		 "AES-GCM %s",
		 imb_get_version_str(), arch_name(s->arch), mgr_name(s, s->pick[0][0]),
		 mgr_name(s, s->pick[0][1]), mgr_name(s, s->pick[1][0]), mgr_name(s, s->pick[1][1]),
		 KL_IMB_SHORT_BURST, KL_IMB_SHORT_BURST, mgr_name(s, s->gcm));
	return 0;
}
