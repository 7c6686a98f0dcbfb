/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MIKEY codec of keyline's wire profile (PROTOCOL.md): a zero-copy, fully validated view of a
 * request, builders for requests, responses (data type 1, KEMAC) and error messages (data type 6)
 * into caller buffers, and a response/error parser for clients. Knows nothing of DPDK or crypto:
 * builders lay out plaintext and say where the cipher text and the MAC go.
 *
 * Parsers never assert: they return KL_DROP_NONE or the drop reason.
 */
#ifndef KL_MIKEY_H
#define KL_MIKEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KL_MIKEY_PORT 2269
#define KL_MIKEY_REQ_MAX 512
#define KL_MIKEY_ID_MAX 128
#define KL_MIKEY_RAND_LEN 16
#define KL_MIKEY_MAC_LEN 20
#define KL_MIKEY_V_LEN 22
#define KL_MIKEY_MAX_KEYS 2
#define KL_MIKEY_KEY_MAX 32

/* Payload types (RFC 3830 6.1) and data types (6.1) used by the profile. */
enum {
	KL_PT_LAST = 0,
	KL_PT_KEMAC = 1,
	KL_PT_T = 5,
	KL_PT_ID = 6,
	KL_PT_V = 9,
	KL_PT_RAND = 11,
	KL_PT_ERR = 12,
	KL_PT_KEYDATA = 20,
	KL_PT_GENEXT = 21,
};
enum {
	KL_DT_PSK_INIT = 0,
	KL_DT_PSK_RESP = 1,
	KL_DT_ERROR = 6,
};
#define KL_EXT_KEYID 2	  /* RFC 4563 */
#define KL_EXT_KEYLINE 250 /* profile choice */

/* Request kinds keyline serves (PROTOCOL.md section 4), defined once: wire number (the index),
 * name, what a request of the kind is. Counters and the engine's kinds table come from this list;
 * the request TLVs each kind takes are in kl_mikey.c's kind table. */
#define KL_KIND_LIST(K, X)                                      \
	K(X, MBMS, "mbms", "MBMS key requests")                 \
	K(X, E2M, "e2m", "E2M key fetches")                     \
	K(X, HM, "hm", "HM session requests")                   \
	K(X, KSTAR, "kstar", "K* fetches")                      \
	K(X, DH, "dh", "DH public value requests")              \
	K(X, PROSE, "prose", "ProSe assist requests")           \
	K(X, PEERPV, "peerpv", "peer public value queries")     \
	K(X, PUSH, "push", "ProSe pushes from peers")

enum kl_kind {
#define KL_K(X, e, n, d) KL_KIND_##e,
	KL_KIND_LIST(KL_K, )
#undef KL_K
	KL_KIND__COUNT
};

/** Name of a kind ("mbms", "e2m", ...); "unknown" out of range. */
const char *kl_kind_name(unsigned kind);

/* TLVs of EXT type 250, one registry for all kinds (PROTOCOL.md section 4): name, type, value
 * length min..max, identity (1..128 bytes of UTF-8). An unknown type, a repeated TLV, or one
 * that the request's kind does not take makes a request malformed. */
#define KL_TLV_LIST(X)                                          \
	X(UE_ID, 1, 1, KL_MIKEY_ID_MAX, 1)                      \
	X(KEY_ID, 2, 4, 4, 0)                                   \
	X(KEY_INFO, 3, 20, 20, 0)                               \
	X(DETAIL, 4, 2, 2, 0)                                   \
	X(PEER_UE, 5, 1, KL_MIKEY_ID_MAX, 1)                    \
	X(PEER_SERVER, 6, 1, KL_MIKEY_ID_MAX, 1)                \
	X(TOKEN_REQ, 7, 1, KL_MIKEY_REQ_MAX, 0)                 \
	X(TOKEN_PEER, 8, 1, KL_MIKEY_REQ_MAX, 0)                \
	X(X25519, 9, 32, 32, 0)                                 \
	X(RETRY_AFTER, 10, 2, 2, 0)                             \
	X(CONTRIB, 11, 16, 16, 0)                               \
	X(ROLE, 12, 1, 1, 0)                                    \
	X(SOURCE_UE, 13, 1, KL_MIKEY_ID_MAX, 1)                 \
	X(PADDING, 255, 0, KL_MIKEY_REQ_MAX, 0)

/* TLV type values on the wire: KL_TLV_UE_ID = 1, ... */
enum {
#define KL_X(e, t, lo, hi, id) KL_TLV_##e = t,
	KL_TLV_LIST(KL_X)
#undef KL_X
};
/* Positions in the registry (bit i of a kind's TLV set): KL_TLVI_UE_ID = 0, ... */
enum kl_tlv_index {
#define KL_X(e, t, lo, hi, id) KL_TLVI_##e,
	KL_TLV_LIST(KL_X)
#undef KL_X
	KL_TLVI__COUNT
};
#define KL_TLV_BIT(e) (1u << KL_TLVI_##e)
#define KL_ERR_INVALID_TS 1
#define KL_ERR_INVALID_ID 7
#define KL_ERR_UNSPECIFIED 12

/* Every drop reason, defined once: enum, names, telemetry and docs come from this list. */
#define KL_DROP_LIST(X)                                                                        \
	X(NONE, "none", "not dropped")                                                         \
	X(MALFORMED, "malformed", "lengths, payload chain or order wrong, trailing bytes")    \
	X(OVERSIZED, "oversized", "request larger than 512 bytes")                            \
	X(UNSUPPORTED_VERSION, "unsupported_version", "MIKEY version other than 1")            \
	X(UNSUPPORTED_TYPE, "unsupported_type", "data, payload, ID, TS, EXT or key kind type") \
	X(UNSUPPORTED_PRF, "unsupported_prf", "PRF function other than MIKEY-1 / HMAC-SHA-256") \
	X(UNSUPPORTED_ALG, "unsupported_alg", "MAC or encryption algorithm")                  \
	X(UNKNOWN_IDENTITY, "unknown_identity", "no such requester")                           \
	X(BAD_MAC, "bad_mac", "MAC did not verify")                                             \
	X(REPLAY, "replay", "same IDi, CSB ID and RAND inside the skew window")                 \
	X(NO_BUFFER, "no_buffer", "no room to build the answer")                               \
	X(AMPLIFICATION, "amplification", "the answer would be more than 3x the request")     \
	X(NOT_PEER, "not_peer", "kind 6/7 not from the configured address and port of the peer it names")

enum kl_drop {
#define KL_X(e, n, d) KL_DROP_##e,
	KL_DROP_LIST(KL_X)
#undef KL_X
	KL_DROP__COUNT
};

/** Metric name of a drop reason ("malformed", ...); "unknown" out of range. */
const char *kl_drop_name(unsigned reason);
/** One-line description of a drop reason. */
const char *kl_drop_desc(unsigned reason);

/** Zero-copy view of a validated request; pointers point into the datagram. */
struct kl_mikey_req {
	const uint8_t *msg;
	const uint8_t *rand; /* 16 bytes */
	const uint8_t *id;   /* IDi */
	const uint8_t *mac;  /* 20 bytes; covers msg[0 .. mac_off) (kind 7: the KEMAC's MAC) */
	const uint8_t *ue;   /* E2M: UE identity TLV */
	uint64_t ts;	     /* NTP-UTC */
	uint32_t csb_id;
	uint32_t key_id; /* E2M: requested key id when has_key_id */
	uint16_t len;
	uint16_t mac_off;
	uint16_t id_len;
	uint16_t ue_len;
	uint16_t group;	 /* MBMS key group */
	uint16_t number; /* MBMS key number, 0 = current */
	uint8_t domain[3]; /* MBMS Key Domain ID (MCC||MNC) */
	uint8_t prf;	   /* 0 MIKEY-1, 1 PRF-HMAC-SHA-256 */
	uint8_t id_type;
	uint8_t ext_type; /* KL_EXT_KEYID or KL_EXT_KEYLINE */
	uint8_t kind;	  /* enum kl_kind */
	uint8_t has_key_id;
	uint16_t encr_off; /* kind 7: its KEMAC's encr data (key data, AES-CM) */
	uint16_t encr_len;
	uint32_t tlv_seen; /* KL_TLV_BIT()s of the TLVs present; tlv[]/tlv_len[] are set only for those */
	const uint8_t *tlv[KL_TLVI__COUNT];
	uint16_t tlv_len[KL_TLVI__COUNT];
};

/** Parse and validate a request datagram. @return KL_DROP_NONE or the drop reason. */
enum kl_drop kl_mikey_parse_req(const uint8_t *buf, size_t len, struct kl_mikey_req *req);

/** What a client puts in a request. */
struct kl_mikey_req_spec {
	const uint8_t *rand; /* 16 bytes */
	const uint8_t *id;
	const uint8_t *ue; /* E2M */
	uint64_t ts;
	uint32_t csb_id;
	uint32_t key_id;
	uint16_t id_len;
	uint16_t ue_len;
	uint16_t group;
	uint16_t number;
	uint8_t domain[3];
	uint8_t prf;
	uint8_t id_type;
	uint8_t kind; /* KL_KIND_MBMS: EXT type 2; the others: EXT type 250 */
	uint8_t has_key_id;
	/* kinds 2..: TLV 5 (peer UE), TLV 6 (peer server) when given (length > 0); TLV 255 of
	 * pad_len zero bytes when has_pad */
	const uint8_t *peer_ue;
	const uint8_t *peer_server;
	uint16_t peer_ue_len;
	uint16_t peer_server_len;
	uint16_t pad_len;
	uint8_t has_pad;
	/* kinds 5..7: TLV 11 (p, 16 bytes) when contrib is set; TLV 12 when role is 1 or 2; TLV 13
	 * (source UE) when source_ue_len > 0 */
	const uint8_t *contrib;
	const uint8_t *source_ue;
	uint16_t source_ue_len;
	uint8_t role;
	/* kind 7: the KEMAC's one key (p2 or p4, SPI 0) in clear; the request then ends with a
	 * KEMAC instead of V (kl_mikey_build_req_kemac) */
	const uint8_t *push_key;
	uint8_t push_key_len;
};

/**
 * Lay out a request; the MAC field (last 20 bytes) is left zero for the caller to fill with
 * HMAC-SHA-1(auth_key, buf[0 .. *mac_off)).
 * @return the datagram length, or -EINVAL / -ENOSPC.
 */
int kl_mikey_build_req(uint8_t *buf, size_t cap, const struct kl_mikey_req_spec *s,
		       uint16_t *mac_off);

/**
 * Lay out a kind 7 request (spec.push_key set): HDR, T, RAND, IDi, EXT, KEMAC with the key data in
 * clear at lay->encr_off (the caller AES-CM encrypts it with the request's T under the s2s
 * encr/salt keys) and the KEMAC MAC at lay->mac_off (HMAC-SHA-1(auth_key, buf[0 .. mac_off))).
 * @return the datagram length, or -EINVAL / -ENOSPC.
 */
struct kl_mikey_layout;
int kl_mikey_build_req_kemac(uint8_t *buf, size_t cap, const struct kl_mikey_req_spec *s,
			     struct kl_mikey_layout *lay);

/** Whether kind's response carries a session: its TLV 3 = session id || valid-from || valid-to
 * and its one key's SPI is 0 (kind 2), instead of a TLV 3 per key whose id is the key's SPI. */
int kl_mikey_kind_session(unsigned kind);

/** One key of a response. */
struct kl_mikey_key {
	const uint8_t *key;
	uint64_t valid_from; /* NTP */
	uint64_t valid_to;   /* NTP */
	uint32_t key_id;
	uint8_t key_len; /* 1..KL_MIKEY_KEY_MAX */
};

/** Where the crypto of a built message goes. */
struct kl_mikey_layout {
	uint16_t len;	    /* whole message */
	uint16_t encr_off;  /* KEMAC encr data (plaintext key data until encrypted) */
	uint16_t encr_len;
	uint16_t mac_off;   /* MAC field; the MAC covers [0, mac_off) */
};

/**
 * Lay out a response (data type 1) to req: HDR, T (now), RAND echo, IDr, EXT (kind, TLV 3 per key),
 * KEMAC with plaintext Key data sub-payloads. The caller AES-CM encrypts [encr_off, +encr_len) with
 * the message's T and fills the MAC.
 * @return 0, -EINVAL or -ENOSPC.
 */
int kl_mikey_build_resp(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			const uint8_t *idr, uint16_t idr_len, const struct kl_mikey_key *keys,
			unsigned nkeys, struct kl_mikey_layout *lay);

/** A TLV of a response's EXT besides TLV 3: its value is copied in, or, when val is NULL, left
 * zero for the caller to fill at off (set by the builder: offset of the value in the message). */
struct kl_mikey_tlv {
	const uint8_t *val;
	uint16_t len;
	uint16_t off; /* set */
	uint8_t type;
};

/** kl_mikey_build_resp with extra TLVs after the TLV 3s (kind 2: tokens, TLV 7 and 8). For a
 * session kind (kl_mikey_kind_session) keys[0].key_id is the session id and the SPI is 0.
 * @return 0, -EINVAL or -ENOSPC. */
int kl_mikey_build_resp_tlv(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			    const uint8_t *idr, uint16_t idr_len, const struct kl_mikey_key *keys,
			    unsigned nkeys, struct kl_mikey_tlv *extra, unsigned nextra,
			    struct kl_mikey_layout *lay);

/**
 * Lay out a response without a secret (PROTOCOL.md section 9): HDR, T, RAND echo, IDr, EXT 250
 * (the request's kind, the extra TLVs, no TLV 3), V. The caller fills the MAC at lay->mac_off;
 * lay->encr_len is 0.
 * @return 0, -EINVAL or -ENOSPC.
 */
int kl_mikey_build_resp_v(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			  const uint8_t *idr, uint16_t idr_len, struct kl_mikey_tlv *extra,
			  unsigned nextra, struct kl_mikey_layout *lay);

/**
 * Lay out an error message (data type 6): HDR, T (now), RAND echo, ERR, optional EXT with TLV 4
 * detail (detail 0 = none), V. Never larger than the request.
 * @return 0, -EINVAL or -ENOSPC.
 */
int kl_mikey_build_err(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
		       uint8_t err_no, uint16_t detail, struct kl_mikey_layout *lay);
/** kl_mikey_build_err with TLV 10 retry-after (milliseconds) beside the detail (ERR 12/5). */
int kl_mikey_build_err_retry(uint8_t *buf, size_t cap, const struct kl_mikey_req *req, uint64_t now,
			     uint8_t err_no, uint16_t detail, uint16_t retry_ms,
			     struct kl_mikey_layout *lay);

/** Zero-copy view of a response or error message, as a client sees it. */
struct kl_mikey_resp {
	const uint8_t *msg;
	const uint8_t *rand;
	const uint8_t *idr;
	const uint8_t *encr; /* KEMAC encr data */
	const uint8_t *mac;
	const uint8_t *tlv3[KL_MIKEY_MAX_KEYS]; /* 20 bytes each: key id, valid-from, valid-to */
	uint32_t tlv_seen; /* other TLVs of the EXT (the kind's: kind 2's tokens), as in a request */
	const uint8_t *tlv[KL_TLVI__COUNT];
	uint16_t tlv_len[KL_TLVI__COUNT];
	uint64_t ts;
	uint32_t csb_id;
	uint16_t len;
	uint16_t idr_len;
	uint16_t encr_len;
	uint16_t mac_off;
	uint16_t detail;
	uint16_t retry_after_ms; /* errors: TLV 10 when has_retry_after */
	uint8_t has_retry_after;
	uint8_t data_type; /* KL_DT_PSK_RESP or KL_DT_ERROR; a response without KEMAC ends with V
			    * (encr NULL, nkeys 0: kinds 4, 6, 7) */
	uint8_t prf;
	uint8_t kind;
	uint8_t nkeys;
	uint8_t err_no;
	uint8_t has_detail;
};

/** Parse a response or error message. @return KL_DROP_NONE or the reason it is not acceptable. */
enum kl_drop kl_mikey_parse_resp(const uint8_t *buf, size_t len, struct kl_mikey_resp *r);

/**
 * Parse decrypted KEMAC key data into keys (pointers into plain).
 * @return the number of keys, or -EBADMSG.
 */
int kl_mikey_parse_keydata(const uint8_t *plain, size_t len, struct kl_mikey_key *keys,
			   unsigned max);

/** Big-endian helpers shared by the packet code. */
static inline uint16_t kl_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t kl_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t kl_be64(const uint8_t *p)
{
	return (uint64_t)kl_be32(p) << 32 | kl_be32(p + 4);
}
static inline void kl_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void kl_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void kl_put64(uint8_t *p, uint64_t v)
{
	kl_put32(p, (uint32_t)(v >> 32));
	kl_put32(p + 4, (uint32_t)v);
}

#ifdef __cplusplus
}
#endif
#endif
