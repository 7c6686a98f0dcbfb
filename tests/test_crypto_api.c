/* SPDX-License-Identifier: BSD-3-Clause */
/* Argument checking of the crypto API, and layouts the profile fixes byte for byte. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kl_crypto.h"

static struct kl_crypto *ctx[2];

static int setup(void **state)
{
	(void)state;
	ctx[0] = kl_crypto_create(KL_CRYPTO_IPSECMB);
	ctx[1] = kl_crypto_create(KL_CRYPTO_OPENSSL);
	return ctx[0] && ctx[1] ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kl_crypto_destroy(ctx[0]);
	kl_crypto_destroy(ctx[1]);
	return 0;
}

static void test_context(void **state)
{
	enum kl_crypto_backend b;

	(void)state;
	errno = 0;
	assert_null(kl_crypto_create((enum kl_crypto_backend)7));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(kl_crypto_backend_parse("openssl", &b), 0);
	assert_int_equal(b, KL_CRYPTO_OPENSSL);
	assert_int_equal(kl_crypto_backend_parse("ipsec-mb", &b), 0);
	assert_int_equal(b, KL_CRYPTO_IPSECMB);
	assert_int_equal(kl_crypto_backend_parse("aesni", &b), -EINVAL);
	assert_int_equal(kl_crypto_backend_parse(NULL, &b), -EINVAL);
	assert_string_equal(kl_crypto_backend_name(ctx[0]), "ipsec-mb");
	assert_string_equal(kl_crypto_backend_name(ctx[1]), "openssl");
	assert_non_null(strstr(kl_crypto_arch(ctx[0]), "ipsec-mb"));
	kl_crypto_destroy(NULL);
}

static void test_hmac_args(void **state)
{
	struct kl_hmac_key k;
	uint8_t mac[32], key[4] = { 1, 2, 3, 4 };
	struct kl_hmac_op op = { .key = &k, .msg = NULL, .len = 5, .mac = mac };
	const uint8_t *keys[2] = { key, NULL };
	uint16_t lens[2] = { 4, 3 };
	struct kl_hmac_key out[2];

	(void)state;
	assert_int_equal(kl_hmac_key_init((enum kl_hash_alg)2, key, 4, &k), -EINVAL);
	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA1, NULL, 4, &k), -EINVAL);
	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA1, NULL, 0, &k), 0); /* empty key is legal */
	assert_int_equal(kl_hmac_key_init_burst(KL_HASH_SHA1, keys, lens, out, 2), -EINVAL);
	lens[1] = 0;
	assert_int_equal(kl_hmac_key_init_burst(KL_HASH_SHA1, keys, lens, out, 2), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(kl_hmac_burst(ctx[i], &op, 1), -EINVAL); /* NULL msg, len 5 */
		op.len = 0;
		assert_int_equal(kl_hmac_burst(ctx[i], &op, 1), 1); /* empty message is legal */
		op.mac = NULL;
		assert_int_equal(kl_hmac_burst(ctx[i], &op, 1), -EINVAL);
		op.mac = mac;
		op.key = NULL;
		assert_int_equal(kl_hmac_burst(ctx[i], &op, 1), -EINVAL);
		op.key = &k;
		op.len = 5;
		assert_int_equal(kl_hmac_burst(NULL, &op, 1), -EINVAL);
		assert_int_equal(kl_hmac_burst(ctx[i], NULL, 3), -EINVAL);
		assert_int_equal(kl_hmac_burst(ctx[i], NULL, 0), 0);
	}
	kl_hmac_key_wipe(&k);
	for (size_t i = 0; i < sizeof(k.istate); i++)
		assert_int_equal(((uint8_t *)k.istate)[i], 0);
}

static void test_kdf_args(void **state)
{
	uint8_t big[KL_KDF_PARAM_MAX + 1], s[64], out[32];
	struct kl_kdf_param p[KL_KDF_MAX_PARAMS + 1];
	struct kl_hmac_key k256, k1;

	(void)state;
	memset(big, 0x5a, sizeof(big));
	for (unsigned i = 0; i <= KL_KDF_MAX_PARAMS; i++)
		p[i] = (struct kl_kdf_param){ .data = big, .len = 0 };
	kl_hmac_key_init(KL_HASH_SHA256, big, 32, &k256);
	kl_hmac_key_init(KL_HASH_SHA1, big, 32, &k1);
	/* FC: one byte below 0xFF, or two starting 0xFF */
	assert_int_equal(kl_kdf_s_build(0x0100, p, 0, s, sizeof(s)), -EINVAL);
	assert_int_equal(kl_kdf_s_build(0x00FF, p, 0, s, sizeof(s)), -EINVAL);
	assert_int_equal(kl_kdf_s_build(0xFF01, p, 0, s, sizeof(s)), 2);
	assert_int_equal(s[0], 0xFF);
	assert_int_equal(s[1], 0x01);
	/* Empty parameters are written with L = 0000 (TS 33.220 B.2.0). */
	assert_int_equal(kl_kdf_s_build(0x10, p, 2, s, sizeof(s)), 5);
	assert_memory_equal(s, "\x10\x00\x00\x00\x00", 5);
	/* 16 parameters at most */
	assert_int_equal(kl_kdf_s_build(0x10, p, 16, s, sizeof(s)), 1 + 32);
	assert_int_equal(kl_kdf_s_build(0x10, p, 17, s, sizeof(s)), -EINVAL);
	/* no parameter over 65535 bytes */
	p[0].len = KL_KDF_PARAM_MAX + 1;
	assert_int_equal(kl_kdf_s_build(0x10, p, 1, NULL, 0), -EINVAL);
	p[0].len = 3;
	assert_int_equal(kl_kdf_s_build(0x10, p, 1, s, 5), -ENOSPC);
	p[0].data = NULL;
	assert_int_equal(kl_kdf_s_build(0x10, p, 1, s, sizeof(s)), -EINVAL);
	p[0].data = big;
	for (int i = 0; i < 2; i++) {
		struct kl_kdf_op op = { .key = &k256, .params = p, .fc = 0x10, .nparams = 1, .out = out };

		assert_int_equal(kl_kdf(ctx[i], &k256, 0x10, p, 17, out), -EINVAL);
		assert_int_equal(kl_kdf(ctx[i], &k1, 0x10, p, 1, out), -EINVAL); /* SHA-1 state */
		assert_int_equal(kl_kdf(ctx[i], &k256, 0x1FF, p, 1, out), -EINVAL);
		assert_int_equal(kl_kdf_burst(ctx[i], &op, 1), 1);
		op.out = NULL;
		assert_int_equal(kl_kdf_burst(ctx[i], &op, 1), -EINVAL);
		/* the largest S there is: 16 parameters of 65535 bytes */
		for (unsigned j = 0; j < KL_KDF_MAX_PARAMS; j++)
			p[j] = (struct kl_kdf_param){ .data = big, .len = KL_KDF_PARAM_MAX };
		assert_int_equal(kl_kdf(ctx[i], &k256, 0xFFFF, p, 16, out), 0);
		for (unsigned j = 0; j < KL_KDF_MAX_PARAMS; j++)
			p[j].len = 0;
	}
}

static void test_derive_table(void **state)
{
	uint8_t key[32] = { 1 }, out[32], ref[32];
	struct kl_kdf_param v[3] = { { (const uint8_t *)"emse-1", 6 } };
	struct kl_kdf_param full[2] = { { (const uint8_t *)"emse-1", 6 },
					{ (const uint8_t *)"e2m_CIoT", 8 } };
	struct kl_hmac_key k;

	(void)state;
	assert_null(kl_kdf_def_get(KL_KDF__COUNT));
	assert_non_null(kl_kdf_def_find("e2m-key"));
	assert_null(kl_kdf_def_find("nope"));
	for (unsigned i = 0; i < KL_KDF__COUNT; i++) {
		const struct kl_kdf_def *d = kl_kdf_def_get(i);

		assert_non_null(d);
		assert_ptr_equal(kl_kdf_def_find(d->name), d);
		for (unsigned p = 0; p < d->nparams; p++)
			assert_true((d->pname[p] == NULL) != (d->fixed[p] == NULL));
	}
	/* e2m_key = KDF(e2m_int_key, FC 0xFF02, EMSE_Id, "e2m_CIoT") as PROTOCOL.md section 7 says */
	assert_int_equal(kl_derive(ctx[0], KL_KDF_E2M, key, 32, v, 1, out), 0);
	kl_hmac_key_init(KL_HASH_SHA256, key, 32, &k);
	assert_int_equal(kl_kdf(ctx[1], &k, 0xFF02, full, 2, ref), 0);
	assert_memory_equal(out, ref, 32);
	assert_int_equal(kl_derive(ctx[0], KL_KDF_E2M, key, 32, v, 2, out), -EINVAL);
	assert_int_equal(kl_derive(ctx[0], KL_KDF_E2M, key, 32, v, 0, out), -EINVAL);
	assert_int_equal(kl_derive(ctx[0], KL_KDF_E2M, NULL, 32, v, 1, out), -EINVAL);
	assert_int_equal(kl_derive(ctx[0], KL_KDF__COUNT, key, 32, v, 1, out), -EINVAL);
}

static void test_prf_args(void **state)
{
	uint8_t psk[129] = { 0 }, rand[16] = { 0 }, a[20], e[16], s[14], label[64], out[64];
	struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
	struct kl_mikey_tk_op tk;
	struct kl_prf_op op;

	(void)state;
	/* a 32-byte PSK is one chunk, never a full chunk plus an empty one */
	assert_int_equal(kl_prf_key_init(KL_PRF_MIKEY1, psk, 32, ch, 4), 1);
	assert_int_equal(kl_prf_key_init(KL_PRF_MIKEY1, psk, 33, ch, 4), 2);
	assert_int_equal(kl_prf_key_init(KL_PRF_MIKEY1, psk, 16, ch, 4), 1);
	assert_int_equal(kl_prf_key_init(KL_PRF_HMAC_SHA256, psk, 128, ch, 4), 4);
	assert_int_equal(kl_prf_key_init(KL_PRF_HMAC_SHA256, psk, 129, ch, 4), -ENOSPC);
	assert_int_equal(kl_prf_key_init(KL_PRF_MIKEY1, psk, 64, ch, 1), -ENOSPC);
	assert_int_equal(kl_prf_key_init(KL_PRF_MIKEY1, psk, 0, ch, 4), -EINVAL);
	assert_int_equal(kl_prf_key_init((enum kl_prf)2, psk, 16, ch, 4), -EINVAL);
	/* label = const || cs_id || csb_id || rand, big-endian */
	assert_int_equal(kl_mikey_label(0x2D22AC75, 0xFF, 0x01020304, rand, 16, label, 64), 25);
	assert_memory_equal(label, "\x2d\x22\xac\x75\xff\x01\x02\x03\x04", 9);
	assert_int_equal(kl_mikey_label(1, 2, 3, rand, 16, label, 24), -EINVAL);
	assert_int_equal(kl_prf_key_init(KL_PRF_MIKEY1, psk, 32, ch, 4), 1);
	for (int i = 0; i < 2; i++) {
		tk = (struct kl_mikey_tk_op){ .chunks = ch, .rand = rand, .auth_key = a, .encr_key = e,
					      .salt_key = s, .csb_id = 1, .nchunks = 1, .rand_len = 16,
					      .cs_id = 0xFF };
		assert_int_equal(kl_mikey_transport_keys_burst(ctx[i], &tk, 1), 1);
		tk.rand_len = 15;
		assert_int_equal(kl_mikey_transport_keys_burst(ctx[i], &tk, 1), -EINVAL);
		tk.rand_len = 16;
		tk.nchunks = 0;
		assert_int_equal(kl_mikey_transport_keys_burst(ctx[i], &tk, 1), -EINVAL);
		tk.nchunks = 5;
		assert_int_equal(kl_mikey_transport_keys_burst(ctx[i], &tk, 1), -EINVAL);
		tk.nchunks = 1;
		tk.salt_key = NULL;
		assert_int_equal(kl_mikey_transport_keys_burst(ctx[i], &tk, 1), -EINVAL);
		op = (struct kl_prf_op){ .chunks = ch, .label = label, .out = out, .label_len = 25,
					 .nchunks = 1, .out_len = 64 };
		assert_int_equal(kl_prf_burst(ctx[i], &op, 1), 1);
		op.out_len = 65;
		assert_int_equal(kl_prf_burst(ctx[i], &op, 1), -EINVAL);
		op.out_len = 0;
		assert_int_equal(kl_prf_burst(ctx[i], &op, 1), -EINVAL);
		op.out_len = 16;
		op.label_len = 65;
		assert_int_equal(kl_prf_burst(ctx[i], &op, 1), -EINVAL);
		op.label_len = 0;
		assert_int_equal(kl_prf_burst(ctx[i], &op, 1), -EINVAL);
	}
}

static void test_aescm(void **state)
{
	uint8_t salt[14] = { 0 }, iv[16], key[16] = { 0 }, buf[64] = { 0 };
	struct kl_aescm_op op = { .key = key, .salt = salt, .in = buf, .out = buf, .ntp_ts = 1,
				  .csb_id = 2, .len = KL_AESCM_MAX_LEN + 1 };

	(void)state;
	/* IV = (salt XOR (0x0000 || CSB ID || T)) || 0x0000 */
	kl_aescm_iv(salt, 0xA1B2C3D4, 0x0102030405060708ull, iv);
	assert_memory_equal(iv, "\x00\x00\xa1\xb2\xc3\xd4\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00", 16);
	memset(salt, 0xFF, sizeof(salt));
	kl_aescm_iv(salt, 0, 0, iv);
	assert_memory_equal(iv, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00", 16);
	for (int i = 0; i < 2; i++) {
		op.len = KL_AESCM_MAX_LEN + 1;
		assert_int_equal(kl_aescm_burst(ctx[i], &op, 1), -EINVAL);
		op.len = 0;
		assert_int_equal(kl_aescm_burst(ctx[i], &op, 1), 1);
		op.len = 64;
		op.salt = NULL;
		assert_int_equal(kl_aescm_burst(ctx[i], &op, 1), -EINVAL);
		op.salt = salt;
	}
}

static void test_gcm_args(void **state)
{
	uint8_t key[32] = { 1 }, iv[12] = { 2 }, aad[8] = { 3 }, buf[32], tag[16], tag2[16];
	struct kl_gcm_op good = { .key = key, .iv = iv, .aad = aad, .aad_len = 8, .in = buf,
				  .out = buf, .len = 32, .tag = tag };
	struct kl_gcm_op bad[6];

	(void)state;
	for (int i = 0; i < 6; i++)
		bad[i] = good;
	bad[0].key = NULL;
	bad[1].iv = NULL;
	bad[2].tag = NULL;
	bad[3].aad = NULL;
	bad[4].in = NULL;
	bad[5].out = NULL;
	for (int i = 0; i < 2; i++) {
		struct kl_gcm_op ops[2] = { good, good };

		assert_int_equal(kl_gcm_seal_burst(NULL, ops, 1), -EINVAL);
		assert_int_equal(kl_gcm_open_burst(ctx[i], NULL, 1), -EINVAL);
		assert_int_equal(kl_gcm_seal_burst(ctx[i], NULL, 0), 0);
		/* one bad op: nothing is done, not even the good one before it */
		for (int b = 0; b < 6; b++) {
			memset(buf, 0x33, sizeof(buf));
			memset(tag, 0x44, sizeof(tag));
			ops[1] = bad[b];
			ops[0].rc = ops[1].rc = 9;
			assert_int_equal(kl_gcm_seal_burst(ctx[i], ops, 2), -EINVAL);
			assert_int_equal(kl_gcm_open_burst(ctx[i], ops, 2), -EINVAL);
			assert_int_equal(ops[0].rc, 9);
			assert_int_equal(buf[0], 0x33);
			assert_int_equal(tag[0], 0x44);
		}
		/* empty plaintext and AAD may come without buffers: the tag alone (GMAC of nothing) */
		ops[0] = (struct kl_gcm_op){ .key = key, .iv = iv, .tag = tag };
		assert_int_equal(kl_gcm_seal_burst(ctx[i], ops, 1), 1);
		assert_int_equal(kl_gcm_open_burst(ctx[i], ops, 1), 1);
		assert_int_equal(ops[0].rc, 0);
		tag[15] ^= 1;
		assert_int_equal(kl_gcm_open_burst(ctx[i], ops, 1), 1);
		assert_int_equal(ops[0].rc, -EBADMSG);
		/* in place, tag right after the ciphertext (a token's layout) */
		memset(buf, 0x5A, sizeof(buf));
		ops[0] = good;
		ops[0].len = 16;
		ops[0].tag = buf + 16;
		assert_int_equal(kl_gcm_seal_burst(ctx[i], ops, 1), 1);
		memcpy(tag2, buf + 16, 16);
		assert_int_equal(kl_gcm_open_burst(ctx[i], ops, 1), 1);
		assert_int_equal(ops[0].rc, 0);
		for (int k = 0; k < 16; k++)
			assert_int_equal(buf[k], 0x5A);
		assert_memory_equal(buf + 16, tag2, 16);
	}
}

static void test_kcv(void **state)
{
	uint8_t key[32] = { 0 }, kcv[3], z[16] = { 0 }, ecb[16], iv[16] = { 0 };
	struct kl_aes_ctr_op op = { .key = key, .iv = iv, .in = z, .out = ecb, .len = 16 };

	(void)state;
	assert_int_equal(kl_kcv(key, 0, kcv), -EINVAL);
	assert_int_equal(kl_kcv(NULL, 16, kcv), -EINVAL);
	/* AES-CTR's first keystream block with a zero counter is AES-ECB of the zero block */
	key[0] = 0x42;
	assert_int_equal(kl_kcv(key, 16, kcv), 0);
	assert_int_equal(kl_aes_ctr_burst(ctx[0], &op, 1), 1);
	assert_memory_equal(kcv, ecb, 3);
	assert_int_equal(kl_kcv(key, 32, kcv), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_context),	  cmocka_unit_test(test_hmac_args),
		cmocka_unit_test(test_kdf_args),  cmocka_unit_test(test_derive_table),
		cmocka_unit_test(test_prf_args),  cmocka_unit_test(test_aescm),
		cmocka_unit_test(test_gcm_args), cmocka_unit_test(test_kcv),
	};

	kl_crypto_set_log(NULL);
	return cmocka_run_group_tests_name("crypto-api", tests, setup, teardown);
}
