/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Differential test: random cases in random bursts through both backends, each compared with a
 * reference written here from the RFCs on OpenSSL's one-shot HMAC() and EVP AES-128-CTR and
 * AES-256-GCM on a fresh context per call, which share no code with either backend's fast path.
 *   KL_DIFF_CASES (default 100000) and KL_DIFF_SEED (default fixed) steer it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kl_crypto.h"

#define BURST_MAX 64

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void fill(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

/* ---- references ---------------------------------------------------------------------------- */

static void ref_hmac(enum kl_hash_alg a, const uint8_t *k, size_t kl, const uint8_t *m, size_t ml,
		     uint8_t *out)
{
	unsigned int ol = 0;
	static const uint8_t nothing[1];

	assert_non_null(HMAC(a == KL_HASH_SHA1 ? EVP_sha1() : EVP_sha256(), kl ? k : nothing, (int)kl,
			     ml ? m : nothing, ml, out, &ol));
}

/* RFC 3830 4.1.2: P(s, label, m) = HMAC(s, A_1 || label) || ... with A_0 = label, A_i = HMAC(s, A_(i-1)) */
static void ref_prf(enum kl_prf prf, const uint8_t *inkey, size_t kl, const uint8_t *label,
		    size_t ll, uint8_t *out, size_t outlen)
{
	enum kl_hash_alg a = prf == KL_PRF_MIKEY1 ? KL_HASH_SHA1 : KL_HASH_SHA256;
	size_t hl = a == KL_HASH_SHA1 ? 20 : 32, n = (kl + 31) / 32;

	memset(out, 0, outlen);
	for (size_t c = 0; c < n; c++) {
		const uint8_t *s = inkey + 32 * c;
		size_t sl = kl - 32 * c < 32 ? kl - 32 * c : 32, done = 0;
		uint8_t A[32], buf[32 + 128], blk[32];

		ref_hmac(a, s, sl, label, ll, A);
		while (done < outlen) {
			size_t take = outlen - done < hl ? outlen - done : hl;

			memcpy(buf, A, hl);
			memcpy(buf + hl, label, ll);
			ref_hmac(a, s, sl, buf, hl + ll, blk);
			for (size_t i = 0; i < take; i++)
				out[done + i] ^= blk[i];
			done += take;
			ref_hmac(a, s, sl, A, hl, A);
		}
	}
}

static size_t ref_s(uint16_t fc, const uint8_t (*p)[64], const size_t *pl, unsigned np, uint8_t *s)
{
	size_t o = 0;

	if (fc >= 0xFF00)
		s[o++] = 0xFF;
	s[o++] = (uint8_t)fc;
	for (unsigned i = 0; i < np; i++) {
		memcpy(s + o, p[i], pl[i]);
		o += pl[i];
		s[o++] = (uint8_t)(pl[i] >> 8);
		s[o++] = (uint8_t)pl[i];
	}
	return o;
}

static void ref_ctr(const uint8_t *key, const uint8_t *iv, const uint8_t *in, uint8_t *out, size_t n)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int ol = 0;

	assert_non_null(x);
	assert_int_equal(EVP_EncryptInit_ex(x, EVP_aes_128_ctr(), NULL, key, iv), 1);
	if (n)
		assert_int_equal(EVP_EncryptUpdate(x, out, &ol, in, (int)n), 1);
	EVP_CIPHER_CTX_free(x);
}

/* AES-256-GCM seal (tag written) or open (tag checked). @return 1 when open verified or sealed. */
static int ref_gcm(int open, const uint8_t *key, const uint8_t *iv, const uint8_t *aad, size_t al,
		   const uint8_t *in, uint8_t *out, size_t n, uint8_t *tag)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	uint8_t fin[16];
	int ol = 0, ok;

	assert_non_null(x);
	assert_int_equal(EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, key, iv, !open), 1);
	if (al)
		assert_int_equal(EVP_CipherUpdate(x, NULL, &ol, aad, (int)al), 1);
	if (n)
		assert_int_equal(EVP_CipherUpdate(x, out, &ol, in, (int)n), 1);
	if (open)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, tag), 1);
	ok = EVP_CipherFinal_ex(x, fin, &ol) == 1;
	if (!open)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(x);
	return ok;
}

/* ---- cases ----------------------------------------------------------------------------------- */

static struct kl_crypto *be[2];
static unsigned long counts[8];

struct slot {
	uint8_t key[128], msg[4096 + 32], out[2][4096 + 32], ref[4096 + 32];
	uint8_t p[8][64];
	size_t pl[8];
	size_t kl, ml;
	struct kl_hmac_key ks[KL_PRF_MAX_CHUNKS];
	struct kl_kdf_param kp[8];
	uint8_t tk[2][3][20], tkref[3][20];
	uint8_t iv[16];
	uint8_t aad[2][300], tag[2][16], reftag[16], nonce[2][12];
	uint32_t csb;
	uint64_t ts;
	unsigned alg, np, nch, outlen;
	uint16_t fc;
};

static struct slot slots[BURST_MAX];

static void case_hmac(unsigned n, int mixed, unsigned alg)
{
	struct kl_hmac_op ops[2][BURST_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];

		s->alg = mixed ? rn(2) : alg;
		s->kl = rn(101);
		s->ml = rn(301);
		fill(s->key, s->kl);
		fill(s->msg, s->ml);
		assert_int_equal(kl_hmac_key_init(s->alg, s->key, s->kl, &s->ks[0]), 0);
		ref_hmac(s->alg, s->key, s->kl, s->msg, s->ml, s->ref);
		for (int b = 0; b < 2; b++)
			ops[b][i] = (struct kl_hmac_op){ .key = &s->ks[0], .msg = s->msg,
							 .len = (uint32_t)s->ml, .mac = s->out[b] };
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_hmac_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		size_t hl = slots[i].alg == KL_HASH_SHA1 ? 20 : 32;

		assert_memory_equal(slots[i].out[0], slots[i].ref, hl);
		assert_memory_equal(slots[i].out[1], slots[i].ref, hl);
	}
	counts[0] += n;
}

static void case_kdf(unsigned n)
{
	struct kl_kdf_op ops[2][BURST_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		uint8_t S[2 + 8 * 66];
		size_t sl;

		s->kl = 1 + rn(64);
		fill(s->key, s->kl);
		s->np = rn(9);
		s->fc = rn(4) ? (uint16_t)rn(0xFF) : (uint16_t)(0xFF00 | rn(256));
		for (unsigned j = 0; j < s->np; j++) {
			s->pl[j] = rn(41);
			fill(s->p[j], s->pl[j]);
			s->kp[j] = (struct kl_kdf_param){ .data = s->p[j], .len = s->pl[j] };
		}
		sl = ref_s(s->fc, (const uint8_t(*)[64])s->p, s->pl, s->np, S);
		ref_hmac(KL_HASH_SHA256, s->key, s->kl, S, sl, s->ref);
		assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, s->key, s->kl, &s->ks[0]), 0);
		for (int b = 0; b < 2; b++)
			ops[b][i] = (struct kl_kdf_op){ .key = &s->ks[0], .params = s->kp, .fc = s->fc,
							.nparams = (uint8_t)s->np, .out = s->out[b] };
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_kdf_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(slots[i].out[0], slots[i].ref, 32);
		assert_memory_equal(slots[i].out[1], slots[i].ref, 32);
	}
	counts[1] += n;
}

static void case_tk(unsigned n)
{
	static const size_t psk_lens[] = { 16, 20, 32, 48, 64 };
	static const uint32_t cst[3] = { KL_MIKEY_C_AUTH, KL_MIKEY_C_ENCR, KL_MIKEY_C_SALT };
	static const size_t ol[3] = { 20, 16, 14 };
	struct kl_mikey_tk_op ops[2][BURST_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		enum kl_prf prf = (enum kl_prf)rn(2);
		int nch;

		s->kl = psk_lens[rn(5)];
		fill(s->key, s->kl);
		fill(s->msg, 16);
		s->csb = (uint32_t)rnd();
		nch = kl_prf_key_init(prf, s->key, s->kl, s->ks, KL_PRF_MAX_CHUNKS);
		assert_int_equal(nch, (int)((s->kl + 31) / 32));
		for (int t = 0; t < 3; t++) {
			uint8_t label[25];

			label[0] = (uint8_t)(cst[t] >> 24);
			label[1] = (uint8_t)(cst[t] >> 16);
			label[2] = (uint8_t)(cst[t] >> 8);
			label[3] = (uint8_t)cst[t];
			label[4] = 0xFF;
			label[5] = (uint8_t)(s->csb >> 24);
			label[6] = (uint8_t)(s->csb >> 16);
			label[7] = (uint8_t)(s->csb >> 8);
			label[8] = (uint8_t)s->csb;
			memcpy(label + 9, s->msg, 16);
			ref_prf(prf, s->key, s->kl, label, sizeof(label), s->tkref[t], ol[t]);
		}
		for (int b = 0; b < 2; b++)
			ops[b][i] = (struct kl_mikey_tk_op){ .chunks = s->ks, .rand = s->msg,
							     .auth_key = s->tk[b][0], .encr_key = s->tk[b][1],
							     .salt_key = s->tk[b][2], .csb_id = s->csb,
							     .nchunks = (uint8_t)nch, .rand_len = 16,
							     .cs_id = 0xFF };
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_mikey_transport_keys_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++)
		for (int b = 0; b < 2; b++)
			for (int t = 0; t < 3; t++)
				assert_memory_equal(slots[i].tk[b][t], slots[i].tkref[t], ol[t]);
	counts[2] += n;
}

static void case_prf(unsigned n)
{
	struct kl_prf_op ops[2][BURST_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		enum kl_prf prf = (enum kl_prf)rn(2);
		int nch;

		s->kl = 1 + rn(128);
		s->ml = 1 + rn(KL_PRF_LABEL_MAX);
		s->outlen = 1 + rn(KL_PRF_OUT_MAX);
		fill(s->key, s->kl);
		fill(s->msg, s->ml);
		nch = kl_prf_key_init(prf, s->key, s->kl, s->ks, KL_PRF_MAX_CHUNKS);
		assert_true(nch > 0);
		ref_prf(prf, s->key, s->kl, s->msg, s->ml, s->ref, s->outlen);
		for (int b = 0; b < 2; b++)
			ops[b][i] = (struct kl_prf_op){ .chunks = s->ks, .label = s->msg, .out = s->out[b],
							.label_len = (uint16_t)s->ml, .nchunks = (uint8_t)nch,
							.out_len = (uint8_t)s->outlen };
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_prf_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(slots[i].out[0], slots[i].ref, slots[i].outlen);
		assert_memory_equal(slots[i].out[1], slots[i].ref, slots[i].outlen);
	}
	counts[3] += n;
}

static void case_aescm(unsigned n)
{
	struct kl_aescm_op ops[2][BURST_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		uint8_t iv[16];

		s->ml = rn(50) ? rn(301) : 4096;
		fill(s->key, 16 + 14);
		fill(s->msg, s->ml);
		s->csb = (uint32_t)rnd();
		s->ts = rnd();
		/* IV straight from PROTOCOL.md section 3 */
		memset(iv, 0, sizeof(iv));
		for (int b = 0; b < 4; b++)
			iv[2 + b] = (uint8_t)(s->csb >> (24 - 8 * b));
		for (int b = 0; b < 8; b++)
			iv[6 + b] = (uint8_t)(s->ts >> (56 - 8 * b));
		for (int b = 0; b < 14; b++)
			iv[b] ^= s->key[16 + b];
		ref_ctr(s->key, iv, s->msg, s->ref, s->ml);
		for (int b = 0; b < 2; b++)
			ops[b][i] = (struct kl_aescm_op){ .key = s->key, .salt = s->key + 16, .in = s->msg,
							  .out = s->out[b], .ntp_ts = s->ts, .csb_id = s->csb,
							  .len = (uint32_t)s->ml };
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_aescm_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(slots[i].out[0], slots[i].ref, slots[i].ml);
		assert_memory_equal(slots[i].out[1], slots[i].ref, slots[i].ml);
	}
	counts[4] += n;
}

static void case_ctr(unsigned n)
{
	struct kl_aes_ctr_op ops[2][BURST_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];

		s->ml = rn(301);
		fill(s->key, 16);
		fill(s->iv, 16);
		/* counters about to carry out of the low 32 and 64 bits */
		if (rn(2))
			memset(s->iv + (rn(2) ? 12 : 8), 0xFF, rn(2) ? 4 : 8);
		if (rn(2))
			s->iv[15] = (uint8_t)(0xFF - rn(8));
		fill(s->msg, s->ml);
		ref_ctr(s->key, s->iv, s->msg, s->ref, s->ml);
		for (int b = 0; b < 2; b++)
			ops[b][i] = (struct kl_aes_ctr_op){ .key = s->key, .iv = s->iv, .in = s->msg,
							    .out = s->out[b], .len = (uint32_t)s->ml };
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_aes_ctr_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		assert_memory_equal(slots[i].out[0], slots[i].ref, slots[i].ml);
		assert_memory_equal(slots[i].out[1], slots[i].ref, slots[i].ml);
	}
	counts[5] += n;
}

/*
 * Seal on both backends (half of them in place), then open what each sealed in one burst where
 * about a quarter of the ops have a bit flipped in the ciphertext, tag, AAD or nonce: those must
 * come back -EBADMSG with a zeroed output, the others with the plaintext.
 */
static void case_gcm(unsigned n)
{
	struct kl_gcm_op ops[2][BURST_MAX] = { 0 };
	int bad[BURST_MAX];

	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		size_t al = rn(301);

		s->ml = rn(301);
		fill(s->key, 32);
		fill(s->iv, 12);
		fill(s->aad[0], al);
		fill(s->msg, s->ml);
		assert_int_equal(ref_gcm(0, s->key, s->iv, s->aad[0], al, s->msg, s->ref, s->ml,
					 s->reftag), 1);
		for (int b = 0; b < 2; b++) {
			int inplace = rn(2);

			memcpy(s->aad[1], s->aad[0], al);
			if (inplace)
				memcpy(s->out[b], s->msg, s->ml);
			ops[b][i] = (struct kl_gcm_op){ .key = s->key, .iv = s->iv,
							.aad = al ? s->aad[0] : NULL, .aad_len = (uint16_t)al,
							.in = s->ml ? (inplace ? s->out[b] : s->msg) : NULL,
							.out = s->ml ? s->out[b] : NULL, .len = (uint16_t)s->ml,
							.tag = s->tag[b], .rc = 1 };
		}
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_gcm_seal_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];

		for (int b = 0; b < 2; b++) {
			assert_int_equal(ops[b][i].rc, 0);
			assert_memory_equal(s->out[b], s->ref, s->ml);
			assert_memory_equal(s->tag[b], s->reftag, 16);
		}
		/* open: in place over the ciphertext each backend wrote, tampered or not */
		bad[i] = rn(4) == 0 ? 1 + (int)rn(4) : 0;
		if ((bad[i] == 1 && !s->ml) || (bad[i] == 3 && !ops[0][i].aad_len))
			bad[i] = 2;
		for (int b = 0; b < 2; b++) {
			struct kl_gcm_op *o = &ops[b][i];
			uint8_t chk[300];

			memcpy(s->nonce[b], s->iv, 12);
			o->in = o->len ? s->out[b] : NULL;
			o->aad = o->aad_len ? s->aad[b] : NULL;
			o->iv = s->nonce[b];
			o->rc = 1;
			switch (bad[i]) {
			case 1: s->out[b][rn(s->ml)] ^= (uint8_t)(1u << rn(8)); break;
			case 2: s->tag[b][rn(16)] ^= (uint8_t)(1u << rn(8)); break;
			case 3: s->aad[b][rn(o->aad_len)] ^= (uint8_t)(1u << rn(8)); break;
			case 4: s->nonce[b][rn(12)] ^= (uint8_t)(1u << rn(8)); break;
			default: break;
			}
			/* the reference agrees on the verdict */
			assert_int_equal(ref_gcm(1, o->key, o->iv, s->aad[b], o->aad_len, s->out[b], chk,
						 o->len, s->tag[b]),
					 !bad[i]);
		}
	}
	for (int b = 0; b < 2; b++)
		assert_int_equal(kl_gcm_open_burst(be[b], ops[b], n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];

		for (int b = 0; b < 2; b++) {
			assert_int_equal(ops[b][i].rc, bad[i] ? -EBADMSG : 0);
			if (bad[i])
				for (size_t k = 0; k < s->ml; k++)
					assert_int_equal(s->out[b][k], 0);
			else
				assert_memory_equal(s->out[b], s->msg, s->ml);
		}
		counts[7] += bad[i] != 0;
	}
	counts[6] += n;
}

static void test_differential(void **state)
{
	const char *ce = getenv("KL_DIFF_CASES"), *se = getenv("KL_DIFF_SEED");
	unsigned long total = ce ? strtoul(ce, NULL, 10) : 100000, done = 0;
	uint64_t seed = se ? strtoull(se, NULL, 0) : 0x6b65796c696e6531ull;

	(void)state;
	rng_state = seed ? seed : 1;
	printf("# differential: %lu cases, seed 0x%" PRIx64 "\n", total, seed);
	while (done < total) {
		unsigned n = 1 + rn(BURST_MAX);

		if (n > total - done)
			n = (unsigned)(total - done);
		switch (rn(9)) {
		case 0: case_hmac(n, 0, KL_HASH_SHA1); break;
		case 1: case_hmac(n, 0, KL_HASH_SHA256); break;
		case 2: case_hmac(n, 1, 0); break;
		case 3: case_kdf(n); break;
		case 4: case_tk(n); break;
		case 5: case_prf(n); break;
		case 6: case_aescm(n); break;
		case 7: case_gcm(n); break;
		default: case_ctr(n); break;
		}
		done += n;
	}
	printf("# hmac %lu, kdf %lu, transport keys %lu, prf %lu, aes-cm %lu, aes-ctr %lu, "
	       "aes-gcm %lu (%lu opens tampered)\n",
	       counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6], counts[7]);
	assert_true(done >= total);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_differential) };
	int rc;

	kl_crypto_set_log(NULL);
	be[0] = kl_crypto_create(KL_CRYPTO_IPSECMB);
	be[1] = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!be[0] || !be[1])
		return 1;
	rc = cmocka_run_group_tests_name("crypto-differential", tests, NULL, NULL);
	kl_crypto_destroy(be[0]);
	kl_crypto_destroy(be[1]);
	return rc;
}
