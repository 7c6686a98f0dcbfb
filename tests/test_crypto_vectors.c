/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every published vector in shared/vectors, the AES-256-GCM ones in tests/vectors_gcm.txt and the
 * X25519 ones (RFC 7748) in tests/vectors_x25519.txt, on
 * both backends. The values come from the files at run time; nothing here copies them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kl_crypto.h"
#include "kl_vectors.h"

struct fixture {
	enum kl_crypto_backend be;
	struct kl_crypto *c;
};

static struct fixture fx_imb = { KL_CRYPTO_IPSECMB, NULL };
static struct fixture fx_ossl = { KL_CRYPTO_OPENSSL, NULL };

static int setup(void **state)
{
	struct fixture *f = *state;

	f->c = kl_crypto_create(f->be);
	return f->c ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kl_crypto_destroy(f->c);
	f->c = NULL;
	return 0;
}

static long hexv(const struct kl_vblock *b, const char *k, uint8_t *out, size_t cap)
{
	const char *v = kl_vget(b, k);
	long n;

	if (!v)
		fail_msg("vector %s: no field %s", kl_vget(b, "name"), k);
	n = kl_unhex(v, out, cap);
	if (n < 0)
		fail_msg("vector %s: field %s is not hex", kl_vget(b, "name"), k);
	return n;
}

static void load(const char *file, struct kl_vfile *vf)
{
	assert_int_equal(kl_vfile_load(file, vf), 0);
	assert_true(vf->n > 0);
}

static void test_hmac(void **state)
{
	struct fixture *f = *state;
	struct kl_vfile vf;
	unsigned seen = 0;

	load("hmac.txt", &vf);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t key[256], data[1024], mac[64], out[64][32];
		long kl = hexv(b, "key", key, sizeof(key)), dl = hexv(b, "data", data, sizeof(data));
		long ml = hexv(b, "mac", mac, sizeof(mac));
		const char *alg = kl_vget(b, "alg");
		enum kl_hash_alg a = !strcmp(alg, "hmac-sha1") ? KL_HASH_SHA1 : KL_HASH_SHA256;
		struct kl_hmac_key ks;
		struct kl_hmac_op ops[64];

		assert_true(!strcmp(alg, "hmac-sha1") || !strcmp(alg, "hmac-sha256"));
		assert_int_equal(kl_hmac_key_init(a, key, (size_t)kl, &ks), 0);
		assert_int_equal(kl_hmac(f->c, &ks, data, (size_t)dl, out[0]), 0);
		assert_memory_equal(out[0], mac, (size_t)ml);
		/* A full burst of the same vector: every lane must agree. */
		for (unsigned j = 0; j < 64; j++)
			ops[j] = (struct kl_hmac_op){ .key = &ks, .msg = data, .len = (uint32_t)dl, .mac = out[j] };
		memset(out, 0, sizeof(out));
		assert_int_equal(kl_hmac_burst(f->c, ops, 64), 64);
		for (unsigned j = 0; j < 64; j++)
			assert_memory_equal(out[j], mac, (size_t)ml);
		seen++;
	}
	assert_true(seen >= 6);
	kl_vfile_free(&vf);
}

static void test_aes_ctr(void **state)
{
	struct fixture *f = *state;
	struct kl_vfile vf;

	load("aes_ctr.txt", &vf);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t key[16], iv[16], pt[256], ct[256], out[256], back[256];
		long pl;
		struct kl_aes_ctr_op op;

		assert_int_equal(hexv(b, "key", key, 16), 16);
		assert_int_equal(hexv(b, "counter_block", iv, 16), 16);
		pl = hexv(b, "plaintext", pt, sizeof(pt));
		assert_int_equal(hexv(b, "ciphertext", ct, sizeof(ct)), pl);
		op = (struct kl_aes_ctr_op){ .key = key, .iv = iv, .in = pt, .out = out, .len = (uint32_t)pl };
		assert_int_equal(kl_aes_ctr_burst(f->c, &op, 1), 1);
		assert_memory_equal(out, ct, (size_t)pl);
		op = (struct kl_aes_ctr_op){ .key = key, .iv = iv, .in = out, .out = back, .len = (uint32_t)pl };
		assert_int_equal(kl_aes_ctr_burst(f->c, &op, 1), 1);
		assert_memory_equal(back, pt, (size_t)pl);
	}
	kl_vfile_free(&vf);
}

/* Key of a KDF vector: hex "key", or ck||ik when the vector gives those. */
static long kdf_key(const struct kl_vblock *b, uint8_t *key)
{
	if (kl_vget(b, "ck") && kl_vget(b, "ik")) {
		assert_int_equal(hexv(b, "ck", key, 16), 16);
		assert_int_equal(hexv(b, "ik", key + 16, 16), 16);
		return 32;
	}
	return hexv(b, "key", key, 64);
}

static void test_kdf(void **state)
{
	struct fixture *f = *state;
	struct kl_vfile vf;
	unsigned kasme = 0;

	load("kdf_3gpp.txt", &vf);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t key[64], fcb[2], exp[32], out[32], pbuf[KL_KDF_MAX_PARAMS][128], s[1024], sx[1024];
		struct kl_kdf_param p[KL_KDF_MAX_PARAMS];
		long kl = kdf_key(b, key), fl = hexv(b, "fc", fcb, 2);
		uint16_t fc = fl == 1 ? fcb[0] : (uint16_t)(fcb[0] << 8 | fcb[1]);
		unsigned np = 0;
		struct kl_hmac_key ks;
		char pn[8];

		assert_int_equal(hexv(b, "out", exp, 32), 32);
		for (;; np++) {
			long l;

			snprintf(pn, sizeof(pn), "p%u", np);
			if (!kl_vget(b, pn))
				break;
			l = hexv(b, pn, pbuf[np], sizeof(pbuf[np]));
			p[np] = (struct kl_kdf_param){ .data = pbuf[np], .len = (size_t)l };
		}
		if (kl_vget(b, "s")) {
			long sl = hexv(b, "s", sx, sizeof(sx));

			assert_int_equal(kl_kdf_s_build(fc, p, np, s, sizeof(s)), sl);
			assert_memory_equal(s, sx, (size_t)sl);
		}
		assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, key, (size_t)kl, &ks), 0);
		memset(out, 0, sizeof(out));
		assert_int_equal(kl_kdf(f->c, &ks, fc, p, np, out), 0);
		assert_memory_equal(out, exp, 32);
		if (!strcmp(kl_vget(b, "kdf"), "kasme")) {
			/* The same through the derivation table's KASME row. */
			memset(out, 0, sizeof(out));
			assert_int_equal(kl_derive(f->c, KL_KDF_KASME, key, (size_t)kl, p, np, out), 0);
			assert_memory_equal(out, exp, 32);
			kasme++;
		}
	}
	assert_true(kasme >= 2);
	kl_vfile_free(&vf);
}

static void test_milenage(void **state)
{
	struct kl_vfile vf, kv;
	unsigned chained = 0;

	(void)state;
	load("milenage.txt", &vf);
	load("kdf_3gpp.txt", &kv);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t k[16], op[16], opc[16], opc2[16], rand[16], sqn[6], amf[2], e[16];
		struct kl_milenage_out o;

		hexv(b, "k", k, 16);
		hexv(b, "op", op, 16);
		hexv(b, "opc", opc, 16);
		hexv(b, "rand", rand, 16);
		hexv(b, "sqn", sqn, 6);
		hexv(b, "amf", amf, 2);
		assert_int_equal(kl_milenage_opc(k, op, opc2), 0);
		assert_memory_equal(opc2, opc, 16);
		assert_int_equal(kl_milenage(k, opc, rand, sqn, amf, &o), 0);
		assert_int_equal(hexv(b, "f1_mac_a", e, 16), 8);
		assert_memory_equal(o.mac_a, e, 8);
		assert_int_equal(hexv(b, "f1star_mac_s", e, 16), 8);
		assert_memory_equal(o.mac_s, e, 8);
		assert_int_equal(hexv(b, "f2_res", e, 16), 8);
		assert_memory_equal(o.res, e, 8);
		assert_int_equal(hexv(b, "f3_ck", e, 16), 16);
		assert_memory_equal(o.ck, e, 16);
		assert_int_equal(hexv(b, "f4_ik", e, 16), 16);
		assert_memory_equal(o.ik, e, 16);
		assert_int_equal(hexv(b, "f5_ak", e, 16), 6);
		assert_memory_equal(o.ak, e, 6);
		assert_int_equal(hexv(b, "f5star_ak", e, 16), 6);
		assert_memory_equal(o.ak_star, e, 6);
		/* A KDF vector whose CK||IK came from this Milenage set: HSS-style chain. */
		for (unsigned j = 0; j < kv.n; j++) {
			const char *kd = kl_vget(&kv.b[j], "key");
			char prefix[9];

			snprintf(prefix, sizeof(prefix), "%s", kl_vget(b, "k"));
			if (kd && strstr(kd, "milenage") && strstr(kd, prefix)) {
				uint8_t ck[16], ik[16];

				hexv(&kv.b[j], "ck", ck, 16);
				hexv(&kv.b[j], "ik", ik, 16);
				assert_memory_equal(o.ck, ck, 16);
				assert_memory_equal(o.ik, ik, 16);
				chained++;
			}
		}
	}
	assert_true(chained >= 1);
	kl_vfile_free(&vf);
	kl_vfile_free(&kv);
}

static void test_mikey_prf(void **state)
{
	struct fixture *f = *state;
	struct kl_vfile vf;
	unsigned outputs = 0, tk = 0;

	load("mikey_prf.txt", &vf);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t inkey[128], rand[32], csbb[4], cs, exp[64], out[64], label[64];
		uint8_t tko[3][20], tke[3][20];
		int have_tk = 0;
		long kl = hexv(b, "inkey", inkey, sizeof(inkey)), rl = hexv(b, "rand", rand, sizeof(rand));
		const char *prf = kl_vget(b, "prf");
		enum kl_prf pf = !strcmp(prf, "mikey-1") ? KL_PRF_MIKEY1 : KL_PRF_HMAC_SHA256;
		struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
		uint32_t csb;
		int nch;

		assert_true(!strcmp(prf, "mikey-1") || !strcmp(prf, "hmac-sha256"));
		assert_int_equal(hexv(b, "csb_id", csbb, 4), 4);
		assert_int_equal(hexv(b, "cs_id", &cs, 1), 1);
		csb = (uint32_t)csbb[0] << 24 | (uint32_t)csbb[1] << 16 | (uint32_t)csbb[2] << 8 | csbb[3];
		nch = kl_prf_key_init(pf, inkey, (size_t)kl, ch, KL_PRF_MAX_CHUNKS);
		assert_int_equal(nch, (kl + 31) / 32);
		for (unsigned k = 0; k < b->n; k++) {
			unsigned cst, len;
			char tail;
			int ll;
			struct kl_prf_op op;

			/* <what>_const_<8 hex>_<bytes> */
			const char *c = strstr(b->kv[k].k, "_const_");

			if (!c || sscanf(c, "_const_%8x_%u%c", &cst, &len, &tail) != 2)
				continue;
			assert_int_equal(hexv(b, b->kv[k].k, exp, sizeof(exp)), len);
			ll = kl_mikey_label(cst, cs, csb, rand, (size_t)rl, label, sizeof(label));
			assert_true(ll > 0);
			op = (struct kl_prf_op){ .chunks = ch, .label = label, .out = out,
						 .label_len = (uint16_t)ll, .nchunks = (uint8_t)nch,
						 .out_len = (uint8_t)len };
			memset(out, 0xAA, sizeof(out));
			assert_int_equal(kl_prf_burst(f->c, &op, 1), 1);
			assert_memory_equal(out, exp, len);
			outputs++;
			if (cst == KL_MIKEY_C_AUTH && len == 20) {
				memcpy(tke[0], exp, 20);
				have_tk |= 1;
			} else if (cst == KL_MIKEY_C_ENCR && len == 16) {
				memcpy(tke[1], exp, 16);
				have_tk |= 2;
			} else if (cst == KL_MIKEY_C_SALT && len == 14) {
				memcpy(tke[2], exp, 14);
				have_tk |= 4;
			}
		}
		if (have_tk == 7) {
			struct kl_mikey_tk_op op = { .chunks = ch, .rand = rand, .auth_key = tko[0],
						     .encr_key = tko[1], .salt_key = tko[2], .csb_id = csb,
						     .nchunks = (uint8_t)nch, .rand_len = (uint8_t)rl,
						     .cs_id = cs };

			assert_int_equal(kl_mikey_transport_keys_burst(f->c, &op, 1), 1);
			assert_memory_equal(tko[0], tke[0], 20);
			assert_memory_equal(tko[1], tke[1], 16);
			assert_memory_equal(tko[2], tke[2], 14);
			tk++;
		}
	}
	assert_true(outputs >= 8);
	assert_true(tk >= 1);
	kl_vfile_free(&vf);
}

/*
 * tests/vectors_gcm.txt and tests/vectors_x25519.txt sit beside the errata file (all in tests/,
 * not in the shared/vectors mirror); env (KL_GCM_VECTORS, KL_X25519_VECTORS) names one explicitly.
 */
static void load_beside(const char *env, const char *file, struct kl_vfile *vf)
{
	const char *p = getenv(env), *er = getenv("KL_VECTORS_ERRATA");
	char path[1024];

	if (!p) {
		const char *slash = er ? strrchr(er, '/') : NULL;

		if (!slash)
			fail_msg("neither %s nor KL_VECTORS_ERRATA is set", env);
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - er), er, file);
		p = path;
	}
	assert_int_equal(kl_vfile_load_path(p, vf), 0);
	assert_true(vf->n > 0);
}

static void load_gcm(struct kl_vfile *vf)
{
	load_beside("KL_GCM_VECTORS", "vectors_gcm.txt", vf);
}

/* RFC 7748 sections 5.2 and 6.1 through kl_x25519_public / kl_x25519_shared (OpenSSL, no
 * backend), and the all-zero refusal for low-order points: -EPERM with a zero output. */
static void test_x25519(void **state)
{
	struct kl_vfile vf;
	unsigned single = 0, iter = 0, dh = 0, low = 0;

	(void)state;
	load_beside("KL_X25519_VECTORS", "vectors_x25519.txt", &vf);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t s[32], u[32], want[32], out[32], a[32], bb[32], pa[32], pb[32];
		const char *kind = kl_vget(b, "kind"), *it = kl_vget(b, "iterations");

		if (kind && !strcmp(kind, "low-order")) {
			/* with the RFC's scalars: every one gives all zero, refused */
			assert_int_equal(hexv(b, "u", u, 32), 32);
			memset(s, 0x77, sizeof(s));
			memset(out, 0xAA, sizeof(out));
			assert_int_equal(kl_x25519_shared(s, u, out), -EPERM);
			memset(want, 0, sizeof(want));
			assert_memory_equal(out, want, 32);
			low++;
		} else if (it) {
			unsigned long n = strtoul(it, NULL, 10);
			uint8_t k[32] = { 9 }, v[32] = { 9 };

			assert_int_equal(hexv(b, "out", want, 32), 32);
			for (unsigned long j = 0; j < n; j++) {
				assert_int_equal(kl_x25519_shared(k, v, out), 0);
				memcpy(v, k, 32);
				memcpy(k, out, 32);
			}
			assert_memory_equal(k, want, 32);
			iter++;
		} else if (kl_vget(b, "shared")) {
			assert_int_equal(hexv(b, "alice_private", a, 32), 32);
			assert_int_equal(hexv(b, "bob_private", bb, 32), 32);
			assert_int_equal(hexv(b, "alice_public", want, 32), 32);
			assert_int_equal(kl_x25519_public(a, pa), 0);
			assert_memory_equal(pa, want, 32);
			assert_int_equal(hexv(b, "bob_public", want, 32), 32);
			assert_int_equal(kl_x25519_public(bb, pb), 0);
			assert_memory_equal(pb, want, 32);
			assert_int_equal(hexv(b, "shared", want, 32), 32);
			assert_int_equal(kl_x25519_shared(a, pb, out), 0);
			assert_memory_equal(out, want, 32);
			assert_int_equal(kl_x25519_shared(bb, pa, out), 0);
			assert_memory_equal(out, want, 32);
			dh++;
		} else {
			assert_int_equal(hexv(b, "scalar", s, 32), 32);
			assert_int_equal(hexv(b, "u", u, 32), 32);
			assert_int_equal(hexv(b, "out", want, 32), 32);
			assert_int_equal(kl_x25519_shared(s, u, out), 0);
			assert_memory_equal(out, want, 32);
			single++;
		}
	}
	assert_int_equal(single, 2);
	assert_int_equal(iter, 2);
	assert_int_equal(dh, 1);
	assert_int_equal(low, 3);
	kl_vfile_free(&vf);
}

#define GCM_MAXLEN 64
#define GCM_COPIES 12 /* the burst is longer than a backend slice (128 ops) */

/* One op of the GCM burst and what it must give. */
struct gcm_case {
	uint8_t key[32], iv[12], aad[GCM_MAXLEN], in[GCM_MAXLEN], out[GCM_MAXLEN], tag[16];
	uint8_t want[GCM_MAXLEN];
	long len, aad_len;
	int rc;
};

enum gcm_tamper { T_NONE, T_CT, T_TAG, T_AAD, T_IV, T__COUNT };

static void test_gcm(void **state)
{
	struct fixture *f = *state;
	struct kl_vfile vf;
	static struct gcm_case cs[GCM_COPIES * 16 * T__COUNT];
	static struct kl_gcm_op ops[GCM_COPIES * 16 * T__COUNT];
	unsigned nc = 0, pass = 0, fail = 0, tampered = 0;

	load_gcm(&vf);
	assert_true(vf.n <= 16);
	for (unsigned i = 0; i < vf.n; i++) {
		const struct kl_vblock *b = &vf.b[i];
		uint8_t key[32], iv[12], aad[GCM_MAXLEN], pt[GCM_MAXLEN], ct[GCM_MAXLEN], tag[16];
		uint8_t out[GCM_MAXLEN], otag[16];
		long al, cl, pl = -1;
		int ok = !strcmp(kl_vget(b, "result"), "pass");
		struct kl_gcm_op op;

		assert_true(ok || !strcmp(kl_vget(b, "result"), "fail"));
		assert_int_equal(hexv(b, "key", key, 32), 32);
		assert_int_equal(hexv(b, "iv", iv, 12), 12);
		assert_int_equal(hexv(b, "tag", tag, 16), 16);
		al = hexv(b, "aad", aad, sizeof(aad));
		cl = hexv(b, "ciphertext", ct, sizeof(ct));
		if (ok) {
			pl = hexv(b, "plaintext", pt, sizeof(pt));
			assert_int_equal(pl, cl);
			/* seal, out of place and in place */
			memset(out, 0xAA, sizeof(out));
			op = (struct kl_gcm_op){ .key = key, .iv = iv, .aad = al ? aad : NULL,
						 .aad_len = (uint16_t)al, .in = pl ? pt : NULL,
						 .out = pl ? out : NULL, .len = (uint16_t)pl, .tag = otag, .rc = 7 };
			assert_int_equal(kl_gcm_seal_burst(f->c, &op, 1), 1);
			assert_int_equal(op.rc, 0);
			assert_memory_equal(out, ct, (size_t)cl);
			assert_memory_equal(otag, tag, 16);
			memcpy(out, pt, (size_t)pl);
			op.in = op.out = pl ? out : NULL;
			memset(otag, 0, sizeof(otag));
			assert_int_equal(kl_gcm_seal_burst(f->c, &op, 1), 1);
			assert_memory_equal(out, ct, (size_t)cl);
			assert_memory_equal(otag, tag, 16);
			/* open in place */
			op.tag = tag;
			assert_int_equal(kl_gcm_open_burst(f->c, &op, 1), 1);
			assert_int_equal(op.rc, 0);
			assert_memory_equal(out, pt, (size_t)pl);
			pass++;
		} else {
			fail++;
		}
		/* The burst: this vector as published and, when it verifies, with one bit flipped in
		 * each input the tag covers. */
		for (int t = T_NONE; t < T__COUNT; t++) {
			struct gcm_case *c = &cs[nc];

			if (t != T_NONE && (!ok || (t == T_CT && !cl) || (t == T_AAD && !al)))
				continue;
			memcpy(c->key, key, 32);
			memcpy(c->iv, iv, 12);
			memcpy(c->aad, aad, (size_t)al);
			memcpy(c->in, ct, (size_t)cl);
			memcpy(c->tag, tag, 16);
			c->len = cl;
			c->aad_len = al;
			c->rc = ok && t == T_NONE ? 0 : -EBADMSG;
			memset(c->want, 0, sizeof(c->want));
			if (c->rc == 0)
				memcpy(c->want, pt, (size_t)pl);
			switch (t) {
			case T_CT: c->in[(i * 7) % cl] ^= (uint8_t)(1u << (i % 8)); break;
			case T_TAG: c->tag[i % 16] ^= 0x80; break;
			case T_AAD: c->aad[(i * 5) % al] ^= 0x01; break;
			case T_IV: c->iv[i % 12] ^= 0x10; break;
			default: break;
			}
			tampered += t != T_NONE;
			nc++;
		}
	}
	for (unsigned k = 1; k < GCM_COPIES; k++)
		memcpy(&cs[k * nc], cs, nc * sizeof(cs[0]));
	nc *= GCM_COPIES;
	for (unsigned k = 0; k < nc; k++) {
		struct gcm_case *c = &cs[k];

		memset(c->out, 0xAA, sizeof(c->out));
		ops[k] = (struct kl_gcm_op){ .key = c->key, .iv = c->iv, .aad = c->aad_len ? c->aad : NULL,
					     .aad_len = (uint16_t)c->aad_len, .in = c->len ? c->in : NULL,
					     .out = c->len ? c->out : NULL, .len = (uint16_t)c->len,
					     .tag = c->tag, .rc = 7 };
	}
	assert_true(nc > 128);
	assert_int_equal(kl_gcm_open_burst(f->c, ops, nc), (int)nc);
	for (unsigned k = 0; k < nc; k++) {
		assert_int_equal(ops[k].rc, cs[k].rc);
		/* a refused op releases nothing: all zero, not the 0xAA it started as */
		assert_memory_equal(cs[k].out, cs[k].want, (size_t)cs[k].len);
	}
	assert_true(pass >= 6 && fail >= 2 && tampered >= 20);
	kl_vfile_free(&vf);
}

#define BOTH(fn)                                                                               \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &fx_imb),                \
		cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &fx_ossl)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_hmac), BOTH(test_aes_ctr), BOTH(test_kdf), BOTH(test_mikey_prf),
		BOTH(test_gcm), cmocka_unit_test(test_milenage), cmocka_unit_test(test_x25519),
	};

	kl_crypto_set_log(NULL);
	return cmocka_run_group_tests_name("crypto-vectors", tests, NULL, NULL);
}
