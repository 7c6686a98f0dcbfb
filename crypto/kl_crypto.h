/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline batch crypto engine: the one public header of crypto/.
 *
 * HMAC-SHA-1/256 over precomputed key states, the 3GPP KDF (TS 33.220 Annex B), the MIKEY PRF
 * (RFC 3830 MIKEY-1 and RFC 6043 PRF-HMAC-SHA-256), AES-CM-128 as profiled in PROTOCOL.md section 3,
 * AES-256-GCM (the tokens of section 9), key check values and Milenage (TS 35.206). Two backends sit
 * behind the same calls, chosen when a context is created: Intel IPsec-MB and OpenSSL 3. Their
 * outputs are identical.
 *
 * A context belongs to one thread. Burst calls never allocate, lock, log or make a system call.
 * Return conventions: burst calls return the number of operations done (all of them) or -errno
 * when an argument is invalid (nothing is done then); other calls return 0 or -errno.
 */
#ifndef KL_CRYPTO_H
#define KL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kl_crypto_backend {
	KL_CRYPTO_IPSECMB = 0,
	KL_CRYPTO_OPENSSL = 1,
};

enum kl_hash_alg {
	KL_HASH_SHA1 = 0,
	KL_HASH_SHA256 = 1,
};

#define KL_SHA1_LEN 20
#define KL_SHA256_LEN 32
#define KL_HMAC_MAX_LEN 32
#define KL_AES128_KEY_LEN 16
#define KL_KCV_LEN 3

struct kl_crypto;

/** Opaque log sink for context creation messages (which architecture was picked). NULL: stderr. */
typedef void (*kl_crypto_log_fn)(const char *msg);
void kl_crypto_set_log(kl_crypto_log_fn fn);

/**
 * Create a crypto context for the calling thread.
 * @return the context, or NULL with errno set (ENOMEM, ENOTSUP when IPsec-MB finds no usable CPU).
 */
struct kl_crypto *kl_crypto_create(enum kl_crypto_backend backend);
/** Destroy a context; its scratch memory is zeroed first. NULL is accepted. */
void kl_crypto_destroy(struct kl_crypto *c);
/** "ipsec-mb" or "openssl". */
const char *kl_crypto_backend_name(const struct kl_crypto *c);
/** Implementation in use, e.g. "ipsec-mb 1.3.0 avx512 (sse for short bursts)", "OpenSSL 3.0.x". */
const char *kl_crypto_arch(const struct kl_crypto *c);
/** Parse "ipsec-mb" / "openssl". @return 0 or -EINVAL. */
int kl_crypto_backend_parse(const char *s, enum kl_crypto_backend *out);

/* ---------------------------------------------------------------------------------------------- */
/* HMAC with a precomputed key state                                                              */

/** Inner and outer SHA midstates of an HMAC key, in host word order. 16-byte aligned for SIMD. */
struct kl_hmac_key {
	uint32_t istate[8];
	uint32_t ostate[8];
	uint8_t alg; /* enum kl_hash_alg */
} __attribute__((aligned(16)));

/**
 * Precompute the HMAC state of a key (any length; longer than 64 bytes is hashed first).
 * @return 0, or -EINVAL for an unknown alg or a NULL key with a non-zero length.
 */
int kl_hmac_key_init(enum kl_hash_alg alg, const uint8_t *key, size_t len, struct kl_hmac_key *out);
/** Burst form of kl_hmac_key_init. @return n or -EINVAL (nothing written). */
int kl_hmac_key_init_burst(enum kl_hash_alg alg, const uint8_t *const keys[], const uint16_t lens[],
			   struct kl_hmac_key out[], unsigned n);
/** Zero a key state. */
void kl_hmac_key_wipe(struct kl_hmac_key *k);

struct kl_hmac_op {
	const struct kl_hmac_key *key;
	const uint8_t *msg;
	uint32_t len;
	uint8_t *mac; /* full digest: 20 bytes (SHA-1) or 32 (SHA-256) */
};

/** One HMAC. @return 0 or -EINVAL. */
int kl_hmac(struct kl_crypto *c, const struct kl_hmac_key *key, const uint8_t *msg, size_t len,
	    uint8_t *mac);
/** A burst of HMACs; SHA-1 and SHA-256 keys may be mixed. @return n or -EINVAL. */
int kl_hmac_burst(struct kl_crypto *c, const struct kl_hmac_op ops[], unsigned n);

/* ---------------------------------------------------------------------------------------------- */
/* 3GPP KDF, TS 33.220 Annex B: KDF(Key, S) = HMAC-SHA-256(Key, S), S = FC || P0 || L0 || ...       */

#define KL_KDF_MAX_PARAMS 16
#define KL_KDF_PARAM_MAX 65535u
#define KL_KDF_S_MAX (2u + KL_KDF_MAX_PARAMS * (2u + KL_KDF_PARAM_MAX))
#define KL_KDF_OUT_LEN 32

/** FC: 0x00..0xFE is one byte; 0xFF00..0xFFFF is two bytes starting 0xFF. Anything else is invalid. */
struct kl_kdf_param {
	const uint8_t *data; /* may be NULL when len is 0 */
	size_t len;
};

/**
 * Build S into buf.
 * @return the length of S, -EINVAL (bad FC, more than 16 parameters, a parameter over 65535 bytes,
 *         NULL data with a length), or -ENOSPC when cap is too small.
 */
long kl_kdf_s_build(uint16_t fc, const struct kl_kdf_param *p, unsigned np, uint8_t *buf,
		    size_t cap);

/** KDF with a precomputed SHA-256 key state. @return 0 or -EINVAL. */
int kl_kdf(struct kl_crypto *c, const struct kl_hmac_key *key, uint16_t fc,
	   const struct kl_kdf_param *p, unsigned np, uint8_t out[KL_KDF_OUT_LEN]);

struct kl_kdf_op {
	const struct kl_hmac_key *key; /* SHA-256 state */
	const struct kl_kdf_param *params;
	uint16_t fc;
	uint8_t nparams;
	uint8_t *out; /* 32 bytes */
};

/** A burst of KDFs. @return n, or -EINVAL when any op is invalid (nothing is computed). */
int kl_kdf_burst(struct kl_crypto *c, const struct kl_kdf_op ops[], unsigned n);

/* ---------------------------------------------------------------------------------------------- */
/* MIKEY PRF (RFC 3830 4.1.2, RFC 6043): inkey cut into 256-bit chunks, P-function outputs XORed   */

enum kl_prf {
	KL_PRF_MIKEY1 = 0,	   /* HMAC-SHA-1 */
	KL_PRF_HMAC_SHA256 = 1, /* RFC 6043 */
};

#define KL_PRF_CHUNK_LEN 32
#define KL_PRF_MAX_CHUNKS 4 /* PSKs up to 128 bytes */
#define KL_PRF_LABEL_MAX 64
#define KL_PRF_OUT_MAX 64

/* MIKEY constants (RFC 3830 4.1.3) */
#define KL_MIKEY_C_TEK 0x2AD01C64u
#define KL_MIKEY_C_ENCR 0x150533E1u
#define KL_MIKEY_C_AUTH 0x2D22AC75u
#define KL_MIKEY_C_SALT 0x29B88916u
#define KL_MIKEY_AUTH_KEY_LEN 20
#define KL_MIKEY_ENCR_KEY_LEN 16
#define KL_MIKEY_SALT_KEY_LEN 14

/**
 * Precompute the chunk states of a PRF input key (a 32-byte key is one chunk, never two).
 * @return the number of chunks (1..max), -EINVAL (empty key, bad prf) or -ENOSPC (too many chunks).
 */
int kl_prf_key_init(enum kl_prf prf, const uint8_t *inkey, size_t len, struct kl_hmac_key *chunks,
		    unsigned max_chunks);

struct kl_prf_op {
	const struct kl_hmac_key *chunks; /* states from kl_prf_key_init with the same prf */
	const uint8_t *label;
	uint8_t *out;
	uint16_t label_len; /* 1..KL_PRF_LABEL_MAX */
	uint8_t nchunks;    /* 1..KL_PRF_MAX_CHUNKS */
	uint8_t out_len;    /* 1..KL_PRF_OUT_MAX */
};

/** PRF(inkey, label, out_len) for a burst. @return n or -EINVAL. */
int kl_prf_burst(struct kl_crypto *c, const struct kl_prf_op ops[], unsigned n);

/** Write the MIKEY label: constant (4) || cs_id (1) || csb_id (4) || rand. @return its length or -EINVAL. */
int kl_mikey_label(uint32_t constant, uint8_t cs_id, uint32_t csb_id, const uint8_t *rand,
		   size_t rand_len, uint8_t *label, size_t cap);

struct kl_mikey_tk_op {
	const struct kl_hmac_key *chunks; /* PSK states */
	const uint8_t *rand;
	uint8_t *auth_key; /* 20 bytes */
	uint8_t *encr_key; /* 16 bytes */
	uint8_t *salt_key; /* 14 bytes */
	uint32_t csb_id;
	uint8_t nchunks;
	uint8_t rand_len; /* 16..32 */
	uint8_t cs_id;	  /* 0xFF in keyline's profile */
};

/** Transport keys auth_key/encr_key/salt_key of a burst of requests in two HMAC passes. @return n or -EINVAL. */
int kl_mikey_transport_keys_burst(struct kl_crypto *c, const struct kl_mikey_tk_op ops[], unsigned n);

/* ---------------------------------------------------------------------------------------------- */
/* AES-128-CTR and AES-CM-128                                                                     */

struct kl_aes_ctr_op {
	const uint8_t *key; /* 16 bytes */
	const uint8_t *iv;  /* 16-byte initial counter block, 128-bit big-endian counter */
	const uint8_t *in;
	uint8_t *out; /* may equal in */
	uint32_t len;
};

/** AES-128-CTR for a burst. @return n or -EINVAL. */
int kl_aes_ctr_burst(struct kl_crypto *c, const struct kl_aes_ctr_op ops[], unsigned n);

/** AES-CM IV = (salt XOR (0x0000 || CSB ID || T)) || 0x0000, T the 8-byte NTP time of the message. */
void kl_aescm_iv(const uint8_t salt[KL_MIKEY_SALT_KEY_LEN], uint32_t csb_id, uint64_t ntp_ts,
		 uint8_t iv[16]);

struct kl_aescm_op {
	const uint8_t *key;  /* encr_key, 16 bytes */
	const uint8_t *salt; /* salt_key, 14 bytes */
	const uint8_t *in;
	uint8_t *out; /* may equal in */
	uint64_t ntp_ts;
	uint32_t csb_id;
	uint32_t len; /* at most KL_AESCM_MAX_LEN */
};

#define KL_AESCM_MAX_LEN (65536u * 16u) /* the IV's low 16 bits are the block counter */

/** AES-CM-128 (encrypt and decrypt are the same) for a burst. @return n or -EINVAL. */
int kl_aescm_burst(struct kl_crypto *c, const struct kl_aescm_op ops[], unsigned n);

/* ---------------------------------------------------------------------------------------------- */
/* AES-256-GCM (SP 800-38D, 96-bit nonce, 128-bit tag): the HM tokens of PROTOCOL.md section 9     */

#define KL_GCM_KEY_LEN 32
#define KL_GCM_IV_LEN 12
#define KL_GCM_TAG_LEN 16

/* Every op has its own key (K*x is fresh per request): the key schedule and GHASH table are made
 * per op inside the burst and wiped at its end. */
struct kl_gcm_op {
	const uint8_t *key; /* 32 bytes */
	const uint8_t *iv;  /* 12 bytes */
	const uint8_t *aad; /* may be NULL when aad_len is 0 */
	const uint8_t *in;  /* may be NULL when len is 0 */
	uint8_t *out;	    /* len bytes; may equal in */
	uint8_t *tag;	    /* 16 bytes: written by seal, checked by open */
	uint16_t aad_len;
	uint16_t len;
	int rc; /* out: 0, or -EBADMSG when open found a wrong tag (out is zeroed then) */
};

/** Encrypt and tag a burst. @return n, -EINVAL (nothing done) or -EIO. */
int kl_gcm_seal_burst(struct kl_crypto *c, struct kl_gcm_op ops[], unsigned n);
/**
 * Check and decrypt a burst. Tags are compared in constant time; an op whose tag does not match
 * gets rc = -EBADMSG and an all-zero out (no unauthenticated plaintext is released).
 * @return n (whatever the tags), -EINVAL (nothing done) or -EIO.
 */
int kl_gcm_open_burst(struct kl_crypto *c, struct kl_gcm_op ops[], unsigned n);

/* ---------------------------------------------------------------------------------------------- */
/* Key check value: what tools show instead of keys                                               */

/**
 * KCV of a key: the first 3 bytes of AES-128-ECB(key, 0^128) for a 16-byte key, otherwise of
 * HMAC-SHA-256(key, 0^128).
 * @return 0 or -EINVAL.
 */
int kl_kcv(const uint8_t *key, size_t len, uint8_t kcv[KL_KCV_LEN]);

/* ---------------------------------------------------------------------------------------------- */
/* Milenage (TS 35.206), for HSS-side tooling                                                     */

struct kl_milenage_out {
	uint8_t mac_a[8];
	uint8_t mac_s[8];
	uint8_t res[8];
	uint8_t ck[16];
	uint8_t ik[16];
	uint8_t ak[6];
	uint8_t ak_star[6];
};

/** OPc = OP XOR E_K(OP). @return 0 or -EIO. */
int kl_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16]);
/** f1, f1*, f2, f3, f4, f5, f5*. @return 0 or -EIO. */
int kl_milenage(const uint8_t k[16], const uint8_t opc[16], const uint8_t rand[16],
		const uint8_t sqn[6], const uint8_t amf[2], struct kl_milenage_out *out);

/* ---------------------------------------------------------------------------------------------- */
/* The derivations of PROTOCOL.md section 7: one table                                            */

enum kl_kdf_id {
	KL_KDF_KS_NAF,	  /* Ks_(ext)_NAF / MUK */
	KL_KDF_KASME,
	KL_KDF_E2M_INT,	  /* e2m_int_key */
	KL_KDF_E2M,	  /* e2m_key */
	KL_KDF_KS_LOCAL_MT,
	KL_KDF_PROSE_P2,
	KL_KDF_PROSE_KD,
	KL_KDF_VLR_TOKEN, /* K*x */
	KL_KDF_DH_SCALAR, /* UEx's X25519 private scalar */
	KL_KDF_DH_KS,	  /* Ks of the DH scheme, from the X25519 shared secret */
	KL_KDF_S2S_PSK,	  /* server-to-server PSK, from K(VLRa,VLRb) */
	KL_KDF_AKMA_KAKMA,
	KL_KDF_AKMA_ATID,
	KL_KDF_AKMA_KAF,
	KL_KDF__COUNT
};

enum kl_kdf_ptype {
	KL_KDF_P_TEXT, /* UTF-8 text as given */
	KL_KDF_P_HEX,  /* octets */
};

struct kl_kdf_def {
	const char *name;     /* CLI subcommand */
	const char *key_name; /* what Key is, e.g. "CK||IK" */
	const char *source;
	uint16_t fc;
	uint8_t nparams;		/* all parameters, fixed ones included */
	const char *pname[4];		/* option name of a variable parameter, NULL for a fixed one */
	const char *fixed[4];		/* the fixed text parameter, NULL for a variable one */
	enum kl_kdf_ptype ptype[4];	/* how a variable parameter is written by default */
};

/** Table row of a derivation, or NULL for an unknown id. */
const struct kl_kdf_def *kl_kdf_def_get(enum kl_kdf_id id);
/** Row by CLI name, or NULL. */
const struct kl_kdf_def *kl_kdf_def_find(const char *name);

/**
 * Run a derivation of the table: vars are its variable parameters in table order; fixed ones
 * are inserted. c NULL: no crypto context, one HMAC through OpenSSL (the control plane's
 * writer, one key at a time). @return 0 or -EINVAL (wrong number of variable parameters, bad key).
 */
int kl_derive(struct kl_crypto *c, enum kl_kdf_id id, const uint8_t *key, size_t key_len,
	      const struct kl_kdf_param *vars, unsigned nvars, uint8_t out[KL_KDF_OUT_LEN]);
/** kl_derive from Key's HMAC-SHA-256 state (kl_hmac_key_init with KL_HASH_SHA256, or a PSK
 * chunk's midstates); c NULL as for kl_derive. @return 0 or -EINVAL. */
int kl_derive_hk(struct kl_crypto *c, enum kl_kdf_id id, const struct kl_hmac_key *key,
		 const struct kl_kdf_param *vars, unsigned nvars, uint8_t out[KL_KDF_OUT_LEN]);

/** E2M key identifier: the 32 least significant bits of the AV's RAND. */
uint32_t kl_e2m_key_id(const uint8_t rand[16]);

/** Zero memory in a way the compiler keeps. */
void kl_memzero(void *p, size_t n);
/**
 * n bytes from OpenSSL's private CSPRNG (a DRBG in user space, seeded by the kernel and reseeded
 * now and then: callers on the packet path fill a buffer in bulk). @return 0 or -EIO.
 */
int kl_random(uint8_t *out, size_t n);

/* ---------------------------------------------------------------------------------------------- */
/* X25519 (RFC 7748) for the Diffie-Hellman VLR scheme (PROTOCOL.md section 9, kind 4), through    */
/* OpenSSL: the control plane computes public values, UEs and operators the shared secret. Never   */
/* on the packet path.                                                                              */

#define KL_X25519_LEN 32

/** Public value P = X25519(s, 9) of the private scalar s (clamped as RFC 7748 says). @return 0 or
 * -EIO. */
int kl_x25519_public(const uint8_t s[KL_X25519_LEN], uint8_t p[KL_X25519_LEN]);
/** Shared secret X25519(s, peer). @return 0, -EIO, or -EPERM when it is all zero (a low-order
 * peer value: an error on both sides, PROTOCOL.md section 9); out is then zero. */
int kl_x25519_shared(const uint8_t s[KL_X25519_LEN], const uint8_t peer[KL_X25519_LEN],
		     uint8_t out[KL_X25519_LEN]);

/* The DH VLR scheme's values (PROTOCOL.md sections 7 and 9). Kx is UEx's PSK (its MUK as stored),
 * given as its HMAC-SHA-256 key state; c NULL: no crypto context (OpenSSL, one at a time: the
 * key table's writer). s_x = KDF(Kx, FF07, "dh-x25519") lives only inside these calls. */

#define KL_DH_FP_LEN 8 /* a public value's fingerprint: the first 8 bytes of SHA-256(P) */

/** UEx's public value P_x = X25519(s_x, 9). @return 0, -EINVAL or -EIO. */
int kl_dh_public(struct kl_crypto *c, const struct kl_hmac_key *kx, uint8_t p[KL_X25519_LEN]);
/**
 * Ks = KDF(X25519(s_own, P_peer), FF08, ID_lo, ID_hi), the two UE identities (1..65535 bytes
 * each) in bytewise ascending order (a prefix first). ks is zero on failure.
 * @return 0, -EINVAL (a bad argument, equal identities), -EPERM (all-zero shared secret: a
 *         low-order peer value) or -EIO.
 */
int kl_dh_ks(struct kl_crypto *c, const struct kl_hmac_key *kx, const uint8_t peer[KL_X25519_LEN],
	     const uint8_t *id, size_t id_len, const uint8_t *peer_id, size_t peer_id_len,
	     uint8_t ks[KL_KDF_OUT_LEN]);
/** Fingerprint of a public value, for operators (P is public; the scalar is never shown). */
void kl_dh_pub_fp(const uint8_t p[KL_X25519_LEN], uint8_t fp[KL_DH_FP_LEN]);

#ifdef __cplusplus
}
#endif
#endif
