/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Backend-independent part of the crypto engine: contexts, HMAC key states, the 3GPP KDF, the
 * MIKEY PRF, AES-CM and AES-256-GCM. Everything here turns into bursts of HMAC, AES-CTR or GCM for a
 * backend.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA block transforms: the fastest key-state preparation */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include <openssl/rand.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "kl_crypto_priv.h"

static kl_crypto_log_fn log_fn;

void kl_crypto_set_log(kl_crypto_log_fn fn)
{
	log_fn = fn;
}

void kl_crypto_log(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(buf);
	else
		fprintf(stderr, "keyline crypto: %s\n", buf);
}

void kl_memzero(void *p, size_t n)
{
	/* glibc's explicit_bzero: an optimised memset the compiler may not drop (OPENSSL_cleanse
	 * showed at 4% of the serve profile, zeroing per-request key material byte by byte). */
	if (p && n)
		explicit_bzero(p, n);
}

int kl_random(uint8_t *out, size_t n)
{
	if (!out && n)
		return -EIO;
	return n > INT_MAX || RAND_priv_bytes(out, (int)n) != 1 ? -EIO : 0;
}

struct kl_crypto *kl_crypto_create(enum kl_crypto_backend backend)
{
	struct kl_crypto *c;
	int rc;

	if (backend != KL_CRYPTO_IPSECMB && backend != KL_CRYPTO_OPENSSL) {
		errno = EINVAL;
		return NULL;
	}
	if (posix_memalign((void **)&c, 64, sizeof(*c)) != 0) {
		errno = ENOMEM;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->backend = backend;
	c->scratch = malloc(KL_SCRATCH_LEN);
	if (!c->scratch) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	rc = backend == KL_CRYPTO_IPSECMB ? kl_backend_ipsecmb_init(c) : kl_backend_openssl_init(c);
	if (rc < 0) {
		free(c->scratch);
		free(c);
		errno = -rc;
		return NULL;
	}
	kl_crypto_log("backend %s: %s", kl_crypto_backend_name(c), c->arch);
	return c;
}

void kl_crypto_destroy(struct kl_crypto *c)
{
	if (!c)
		return;
	if (c->ops && c->ops->destroy)
		c->ops->destroy(c);
	kl_memzero(c->scratch, KL_SCRATCH_LEN);
	free(c->scratch);
	kl_memzero(c, sizeof(*c));
	free(c);
}

const char *kl_crypto_backend_name(const struct kl_crypto *c)
{
	return c->backend == KL_CRYPTO_IPSECMB ? "ipsec-mb" : "openssl";
}

const char *kl_crypto_arch(const struct kl_crypto *c)
{
	return c->arch;
}

int kl_crypto_backend_parse(const char *s, enum kl_crypto_backend *out)
{
	if (!s || !out)
		return -EINVAL;
	if (!strcmp(s, "ipsec-mb") || !strcmp(s, "ipsecmb")) {
		*out = KL_CRYPTO_IPSECMB;
		return 0;
	}
	if (!strcmp(s, "openssl")) {
		*out = KL_CRYPTO_OPENSSL;
		return 0;
	}
	return -EINVAL;
}

/* ---------------------------------------------------------------------------------------------- */

static void midstate(enum kl_hash_alg alg, const uint8_t blk[64], uint32_t st[8])
{
	if (alg == KL_HASH_SHA1) {
		SHA_CTX x;

		SHA1_Init(&x);
		SHA1_Update(&x, blk, 64);
		st[0] = x.h0;
		st[1] = x.h1;
		st[2] = x.h2;
		st[3] = x.h3;
		st[4] = x.h4;
		st[5] = st[6] = st[7] = 0;
		kl_memzero(&x, sizeof(x));
	} else {
		SHA256_CTX x;

		SHA256_Init(&x);
		SHA256_Update(&x, blk, 64);
		memcpy(st, x.h, 32);
		kl_memzero(&x, sizeof(x));
	}
}

int kl_hmac_key_init(enum kl_hash_alg alg, const uint8_t *key, size_t len, struct kl_hmac_key *out)
{
	uint8_t k[64], pad[64];

	if ((alg != KL_HASH_SHA1 && alg != KL_HASH_SHA256) || !out || (!key && len))
		return -EINVAL;
	memset(k, 0, sizeof(k));
	if (len > 64) {
		if (alg == KL_HASH_SHA1)
			SHA1(key, len, k);
		else
			SHA256(key, len, k);
	} else if (len) {
		memcpy(k, key, len);
	}
	for (unsigned i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	midstate(alg, pad, out->istate);
	for (unsigned i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	midstate(alg, pad, out->ostate);
	out->alg = (uint8_t)alg;
	kl_memzero(k, sizeof(k));
	kl_memzero(pad, sizeof(pad));
	return 0;
}

int kl_hmac_key_init_burst(enum kl_hash_alg alg, const uint8_t *const keys[], const uint16_t lens[],
			   struct kl_hmac_key out[], unsigned n)
{
	if ((alg != KL_HASH_SHA1 && alg != KL_HASH_SHA256) || (n && (!keys || !lens || !out)))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!keys[i] && lens[i])
			return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		kl_hmac_key_init(alg, keys[i], lens[i], &out[i]);
	return (int)n;
}

void kl_hmac_key_wipe(struct kl_hmac_key *k)
{
	kl_memzero(k, sizeof(*k));
}

/* Runs validated ops of any count and mixed algorithms through the backend, KL_SLICE at a time;
 * a slice that mixes SHA-1 and SHA-256 is gathered per algorithm so each burst stays full. */
static int hmac_run(struct kl_crypto *c, const struct kl_hmac_op *ops, unsigned n)
{
	for (unsigned i = 0; i < n; i += KL_SLICE) {
		unsigned end = n - i > KL_SLICE ? i + KL_SLICE : n, alg = ops[i].key->alg, k;

		for (k = i + 1; k < end && ops[k].key->alg == alg; k++)
			;
		if (k == end) {
			if (c->ops->hmac(c, alg, &ops[i], end - i) < 0)
				return -EIO;
			continue;
		}
		for (unsigned a = KL_HASH_SHA1; a <= KL_HASH_SHA256; a++) {
			unsigned cnt = 0;

			for (k = i; k < end; k++)
				if (ops[k].key->alg == a)
					c->split[cnt++] = ops[k];
			if (cnt && c->ops->hmac(c, a, c->split, cnt) < 0)
				return -EIO;
		}
	}
	return 0;
}

static int hmac_op_valid(const struct kl_hmac_op *op)
{
	return op->key && op->key->alg <= KL_HASH_SHA256 && op->mac && (op->msg || !op->len);
}

int kl_hmac_burst(struct kl_crypto *c, const struct kl_hmac_op ops[], unsigned n)
{
	int rc;

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!hmac_op_valid(&ops[i]))
			return -EINVAL;
	rc = hmac_run(c, ops, n);
	return rc < 0 ? rc : (int)n;
}

int kl_hmac(struct kl_crypto *c, const struct kl_hmac_key *key, const uint8_t *msg, size_t len,
	    uint8_t *mac)
{
	struct kl_hmac_op op = { .key = key, .msg = msg, .len = (uint32_t)len, .mac = mac };

	if (len > UINT32_MAX)
		return -EINVAL;
	return kl_hmac_burst(c, &op, 1) < 0 ? -EINVAL : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* 3GPP KDF                                                                                       */

static int fc_len(uint16_t fc)
{
	if (fc < 0xFF)
		return 1;
	if (fc >= 0xFF00)
		return 2;
	return -1;
}

static int kdf_params_valid(uint16_t fc, const struct kl_kdf_param *p, unsigned np)
{
	if (fc_len(fc) < 0 || np > KL_KDF_MAX_PARAMS || (np && !p))
		return 0;
	for (unsigned i = 0; i < np; i++)
		if (p[i].len > KL_KDF_PARAM_MAX || (!p[i].data && p[i].len))
			return 0;
	return 1;
}

static size_t kdf_s_len(uint16_t fc, const struct kl_kdf_param *p, unsigned np)
{
	size_t len = (size_t)fc_len(fc);

	for (unsigned i = 0; i < np; i++)
		len += 2 + p[i].len;
	return len;
}

static size_t kdf_s_write(uint16_t fc, const struct kl_kdf_param *p, unsigned np, uint8_t *s)
{
	size_t o = 0;

	if (fc_len(fc) == 2)
		s[o++] = (uint8_t)(fc >> 8);
	s[o++] = (uint8_t)fc;
	for (unsigned i = 0; i < np; i++) {
		if (p[i].len)
			memcpy(s + o, p[i].data, p[i].len);
		o += p[i].len;
		s[o++] = (uint8_t)(p[i].len >> 8);
		s[o++] = (uint8_t)p[i].len;
	}
	return o;
}

long kl_kdf_s_build(uint16_t fc, const struct kl_kdf_param *p, unsigned np, uint8_t *buf,
		    size_t cap)
{
	size_t len;

	if (!kdf_params_valid(fc, p, np) || (!buf && cap))
		return -EINVAL;
	len = kdf_s_len(fc, p, np);
	if (len > cap)
		return -ENOSPC;
	return (long)kdf_s_write(fc, p, np, buf);
}

int kl_kdf_burst(struct kl_crypto *c, const struct kl_kdf_op ops[], unsigned n)
{
	size_t used = 0;
	unsigned nh = 0;

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		const struct kl_kdf_op *op = &ops[i];

		if (!op->key || op->key->alg != KL_HASH_SHA256 || !op->out ||
		    !kdf_params_valid(op->fc, op->params, op->nparams))
			return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct kl_kdf_op *op = &ops[i];
		size_t len = kdf_s_len(op->fc, op->params, op->nparams);

		if (nh == KL_SLICE || used + len > KL_SCRATCH_LEN) {
			if (c->ops->hmac(c, KL_HASH_SHA256, c->hops, nh) < 0)
				return -EIO;
			nh = 0;
			used = 0;
		}
		kdf_s_write(op->fc, op->params, op->nparams, c->scratch + used);
		c->hops[nh++] = (struct kl_hmac_op){
			.key = op->key, .msg = c->scratch + used, .len = (uint32_t)len, .mac = op->out
		};
		used += len;
	}
	if (nh && c->ops->hmac(c, KL_HASH_SHA256, c->hops, nh) < 0)
		return -EIO;
	return (int)n;
}

int kl_kdf(struct kl_crypto *c, const struct kl_hmac_key *key, uint16_t fc,
	   const struct kl_kdf_param *p, unsigned np, uint8_t out[KL_KDF_OUT_LEN])
{
	struct kl_kdf_op op = { .key = key, .params = p, .fc = fc, .nparams = (uint8_t)np, .out = out };

	if (np > KL_KDF_MAX_PARAMS)
		return -EINVAL;
	return kl_kdf_burst(c, &op, 1) < 0 ? -EINVAL : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* MIKEY PRF                                                                                      */

int kl_prf_key_init(enum kl_prf prf, const uint8_t *inkey, size_t len, struct kl_hmac_key *chunks,
		    unsigned max_chunks)
{
	size_t n;

	if ((prf != KL_PRF_MIKEY1 && prf != KL_PRF_HMAC_SHA256) || !inkey || !len || !chunks)
		return -EINVAL;
	n = (len + KL_PRF_CHUNK_LEN - 1) / KL_PRF_CHUNK_LEN;
	if (n > max_chunks || n > KL_PRF_MAX_CHUNKS)
		return -ENOSPC;
	for (size_t i = 0; i < n; i++) {
		size_t off = i * KL_PRF_CHUNK_LEN;
		size_t cl = len - off < KL_PRF_CHUNK_LEN ? len - off : KL_PRF_CHUNK_LEN;

		kl_hmac_key_init(prf == KL_PRF_MIKEY1 ? KL_HASH_SHA1 : KL_HASH_SHA256, inkey + off, cl,
				 &chunks[i]);
	}
	return (int)n;
}

int kl_mikey_label(uint32_t constant, uint8_t cs_id, uint32_t csb_id, const uint8_t *rand,
		   size_t rand_len, uint8_t *label, size_t cap)
{
	size_t len = 9 + rand_len;

	if (!label || (!rand && rand_len) || len > cap || len > KL_PRF_LABEL_MAX)
		return -EINVAL;
	label[0] = (uint8_t)(constant >> 24);
	label[1] = (uint8_t)(constant >> 16);
	label[2] = (uint8_t)(constant >> 8);
	label[3] = (uint8_t)constant;
	label[4] = cs_id;
	label[5] = (uint8_t)(csb_id >> 24);
	label[6] = (uint8_t)(csb_id >> 16);
	label[7] = (uint8_t)(csb_id >> 8);
	label[8] = (uint8_t)csb_id;
	if (rand_len)
		memcpy(label + 9, rand, rand_len);
	return (int)len;
}

/*
 * Runs the P-function for nu prepared units (ab holds the label after hlen bytes). Pass 0 makes
 * A_1 = HMAC(s, label); pass i makes HMAC(s, A_i || label) and, while more blocks are wanted,
 * A_(i+1) = HMAC(s, A_i). The output of every unit is XORed into its op's output, which is what
 * combines the chunks of one inkey.
 */
static int prf_units_run(struct kl_crypto *c, unsigned nu)
{
	struct kl_prf_unit *u = c->units;
	unsigned maxm = 0, nh = 0;

	for (unsigned i = 0; i < nu; i++) {
		c->hops[nh++] = (struct kl_hmac_op){
			.key = u[i].key, .msg = u[i].ab + u[i].hlen, .len = u[i].label_len, .mac = u[i].ab
		};
		if (u[i].m > maxm)
			maxm = u[i].m;
	}
	if (hmac_run(c, c->hops, nh) < 0)
		return -EIO;
	for (unsigned p = 1; p <= maxm; p++) {
		nh = 0;
		for (unsigned i = 0; i < nu; i++) {
			if (u[i].m < p)
				continue;
			c->hops[nh++] = (struct kl_hmac_op){ .key = u[i].key,
							     .msg = u[i].ab,
							     .len = (uint32_t)u[i].hlen + u[i].label_len,
							     .mac = u[i].blk };
			if (p < u[i].m)
				c->hops[nh++] = (struct kl_hmac_op){
					.key = u[i].key, .msg = u[i].ab, .len = u[i].hlen, .mac = u[i].anext
				};
		}
		if (hmac_run(c, c->hops, nh) < 0)
			return -EIO;
		for (unsigned i = 0; i < nu; i++) {
			unsigned off = (p - 1) * u[i].hlen, take, b = 0;
			uint8_t *o;

			if (u[i].m < p)
				continue;
			take = u[i].out_len - off < u[i].hlen ? u[i].out_len - off : u[i].hlen;
			/* word-wise: byte stores through out (which might alias the unit, for all the
			 * compiler knows) cost a reload each */
			o = u[i].out + off;
			for (; b + 8 <= take; b += 8) {
				uint64_t x, y;

				memcpy(&x, o + b, 8);
				memcpy(&y, u[i].blk + b, 8);
				x ^= y;
				memcpy(o + b, &x, 8);
			}
			for (; b < take; b++)
				o[b] ^= u[i].blk[b];
			if (p < u[i].m)
				memcpy(u[i].ab, u[i].anext, u[i].hlen);
		}
	}
	kl_memzero(u, nu * sizeof(*u));
	return 0;
}

static struct kl_prf_unit *unit_add(struct kl_crypto *c, unsigned *nu, const struct kl_hmac_key *key,
				    uint8_t *out, unsigned out_len)
{
	struct kl_prf_unit *u;

	if (*nu == KL_SLICE) {
		if (prf_units_run(c, *nu) < 0)
			return NULL;
		*nu = 0;
	}
	u = &c->units[(*nu)++];
	u->key = key;
	u->out = out;
	u->out_len = (uint8_t)out_len;
	u->hlen = (uint8_t)kl_hash_len(key->alg);
	u->m = (uint8_t)((out_len + u->hlen - 1) / u->hlen);
	return u;
}

static int chunks_valid(const struct kl_hmac_key *ch, unsigned n)
{
	if (!ch || n < 1 || n > KL_PRF_MAX_CHUNKS)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (ch[i].alg != ch[0].alg || ch[i].alg > KL_HASH_SHA256)
			return 0;
	return 1;
}

int kl_prf_burst(struct kl_crypto *c, const struct kl_prf_op ops[], unsigned n)
{
	unsigned nu = 0;

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		const struct kl_prf_op *op = &ops[i];

		if (!chunks_valid(op->chunks, op->nchunks) || !op->label || !op->label_len ||
		    op->label_len > KL_PRF_LABEL_MAX || !op->out || !op->out_len ||
		    op->out_len > KL_PRF_OUT_MAX)
			return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++)
		memset(ops[i].out, 0, ops[i].out_len);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k < ops[i].nchunks; k++) {
			struct kl_prf_unit *u =
				unit_add(c, &nu, &ops[i].chunks[k], ops[i].out, ops[i].out_len);

			if (!u)
				return -EIO;
			u->label_len = ops[i].label_len;
			memcpy(u->ab + u->hlen, ops[i].label, ops[i].label_len);
		}
	}
	if (nu && prf_units_run(c, nu) < 0)
		return -EIO;
	return (int)n;
}

int kl_mikey_transport_keys_burst(struct kl_crypto *c, const struct kl_mikey_tk_op ops[], unsigned n)
{
	static const uint32_t cst[3] = { KL_MIKEY_C_AUTH, KL_MIKEY_C_ENCR, KL_MIKEY_C_SALT };
	static const uint8_t olen[3] = { KL_MIKEY_AUTH_KEY_LEN, KL_MIKEY_ENCR_KEY_LEN,
					 KL_MIKEY_SALT_KEY_LEN };
	unsigned nu = 0;

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		const struct kl_mikey_tk_op *op = &ops[i];

		if (!chunks_valid(op->chunks, op->nchunks) || !op->rand || op->rand_len < 16 ||
		    op->rand_len > 32 || !op->auth_key || !op->encr_key || !op->salt_key)
			return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		memset(ops[i].auth_key, 0, KL_MIKEY_AUTH_KEY_LEN);
		memset(ops[i].encr_key, 0, KL_MIKEY_ENCR_KEY_LEN);
		memset(ops[i].salt_key, 0, KL_MIKEY_SALT_KEY_LEN);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct kl_mikey_tk_op *op = &ops[i];
		uint8_t *outs[3] = { op->auth_key, op->encr_key, op->salt_key };

		for (unsigned k = 0; k < op->nchunks; k++)
			for (unsigned t = 0; t < 3; t++) {
				struct kl_prf_unit *u = unit_add(c, &nu, &op->chunks[k], outs[t], olen[t]);

				if (!u)
					return -EIO;
				u->label_len = (uint16_t)kl_mikey_label(cst[t], op->cs_id, op->csb_id, op->rand,
									op->rand_len, u->ab + u->hlen,
									KL_PRF_LABEL_MAX);
			}
	}
	if (nu && prf_units_run(c, nu) < 0)
		return -EIO;
	return (int)n;
}

/* ---------------------------------------------------------------------------------------------- */
/* AES-CTR / AES-CM                                                                               */

static int ctr_run(struct kl_crypto *c, const struct kl_aes_ctr_op *ops, unsigned n)
{
	unsigned nc = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!ops[i].len)
			continue;
		c->cops[nc++] = ops[i];
		if (nc == KL_SLICE) {
			if (c->ops->aes_ctr(c, c->cops, nc) < 0)
				return -EIO;
			nc = 0;
		}
	}
	if (nc && c->ops->aes_ctr(c, c->cops, nc) < 0)
		return -EIO;
	return 0;
}

int kl_aes_ctr_burst(struct kl_crypto *c, const struct kl_aes_ctr_op ops[], unsigned n)
{
	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!ops[i].key || !ops[i].iv || (ops[i].len && (!ops[i].in || !ops[i].out)))
			return -EINVAL;
	return ctr_run(c, ops, n) < 0 ? -EIO : (int)n;
}

void kl_aescm_iv(const uint8_t salt[KL_MIKEY_SALT_KEY_LEN], uint32_t csb_id, uint64_t ntp_ts,
		 uint8_t iv[16])
{
	memcpy(iv, salt, 14);
	iv[2] ^= (uint8_t)(csb_id >> 24);
	iv[3] ^= (uint8_t)(csb_id >> 16);
	iv[4] ^= (uint8_t)(csb_id >> 8);
	iv[5] ^= (uint8_t)csb_id;
	for (unsigned b = 0; b < 8; b++)
		iv[6 + b] ^= (uint8_t)(ntp_ts >> (56 - 8 * b));
	iv[14] = 0;
	iv[15] = 0;
}

int kl_aescm_burst(struct kl_crypto *c, const struct kl_aescm_op ops[], unsigned n)
{
	struct kl_aes_ctr_op cop[KL_SLICE];
	unsigned nc = 0;

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!ops[i].key || !ops[i].salt || ops[i].len > KL_AESCM_MAX_LEN ||
		    (ops[i].len && (!ops[i].in || !ops[i].out)))
			return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!ops[i].len)
			continue;
		kl_aescm_iv(ops[i].salt, ops[i].csb_id, ops[i].ntp_ts, c->ivs[nc]);
		cop[nc] = (struct kl_aes_ctr_op){ .key = ops[i].key,
						  .iv = c->ivs[nc],
						  .in = ops[i].in,
						  .out = ops[i].out,
						  .len = ops[i].len };
		if (++nc == KL_SLICE) {
			if (c->ops->aes_ctr(c, cop, nc) < 0)
				return -EIO;
			nc = 0;
		}
	}
	if (nc && c->ops->aes_ctr(c, cop, nc) < 0)
		return -EIO;
	return (int)n;
}

/* ---------------------------------------------------------------------------------------------- */
/* AES-256-GCM                                                                                    */

static int gcm_op_valid(const struct kl_gcm_op *op)
{
	return op->key && op->iv && op->tag && (!op->aad_len || op->aad) &&
	       (!op->len || (op->in && op->out));
}

static int gcm_run(struct kl_crypto *c, struct kl_gcm_op ops[], unsigned n, int open)
{
	int rc = 0;

	if (!c || (n && !ops))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!gcm_op_valid(&ops[i]))
			return -EINVAL;
	for (unsigned i = 0; i < n && rc == 0; i += KL_SLICE)
		rc = c->ops->gcm(c, ops + i, n - i < KL_SLICE ? n - i : KL_SLICE, open);
	/* One place for both backends: a forged token yields no plaintext, not even a prefix, and
	 * neither does a burst the backend could not finish. */
	for (unsigned i = 0; i < n; i++) {
		if (rc < 0)
			ops[i].rc = -EIO;
		if (open && ops[i].rc != 0)
			kl_memzero(ops[i].out, ops[i].len);
	}
	return rc < 0 ? -EIO : (int)n;
}

int kl_gcm_seal_burst(struct kl_crypto *c, struct kl_gcm_op ops[], unsigned n)
{
	return gcm_run(c, ops, n, 0);
}

int kl_gcm_open_burst(struct kl_crypto *c, struct kl_gcm_op ops[], unsigned n)
{
	return gcm_run(c, ops, n, 1);
}
