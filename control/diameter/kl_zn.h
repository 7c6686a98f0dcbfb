/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Zn client (TS 29.109): Ks_(ext)_NAF for a B-TID and a NAF_Id from the BSF, on the freeDiameter
 * stack keylined already runs for its Diameter feed (control/diameter/kl_diameter.h). Application 16777220
 * (vendor 10415), Bootstrapping-Info-Request/Answer (command 310). The BSF is one configured peer
 * that keylined connects to (TLS, the diameter: section's certificate and CA).
 *
 * Answers are cached per (B-TID, NAF_Id) until their Key-ExpiryTime, Ks_(ext)_NAF wrapped in memory
 * (never in clear outside a call). Thread-safe: any thread may call kl_zn_get (the Key Center's
 * HTTPS threads do); it blocks the caller for at most timeout_ms. Never called on a worker lcore.
 */
#ifndef KL_ZN_H
#define KL_ZN_H

#include <stddef.h>
#include <stdint.h>

struct kl_diameter;

#define KL_ZN_APP_ID 16777220u
#define KL_ZN_VENDOR_ID 10415u
#define KL_ZN_CMD_BOOTSTRAPPING_INFO 310u
#define KL_ZN_BTID_MAX 255	/* bytes of a B-TID (base64(RAND)@bsf-domain) */
#define KL_ZN_NAF_ID_MAX 255	/* bytes of a NAF_Id (NAF FQDN || Ua security protocol id) */
#define KL_ZN_IMPI_MAX 255
#define KL_ZN_KEY_LEN 32	/* Ks_(ext)_NAF */
#define KL_ZN_LAT_BUCKETS 12	/* latency histogram: <= 0.5,1,2,5,10,20,50,100,200,500,1000 ms, +Inf */

struct kl_zn_params {
	const char *bsf_identity;	/* the BSF's Diameter identity (FQDN) */
	const char *bsf_realm;		/* NULL: the part of bsf_identity after its first dot */
	const char *bsf_address;	/* IP address keylined connects to */
	uint16_t bsf_port;		/* 0: 3868 */
	unsigned timeout_ms;		/* one BIR round trip, 0: 2000 */
	unsigned cache_entries;		/* 0: 65536; full: the oldest expiring entry goes */
};

enum kl_zn_status {
	KL_ZN_OK = 0,
	KL_ZN_UNKNOWN,		/* 5401 IMPI unknown, 5403 B-TID invalid: HTTP 404 */
	KL_ZN_NOT_AUTHORISED,	/* 5402: HTTP 403 */
	KL_ZN_EXPIRED,		/* the BSF's Key-ExpiryTime has passed: HTTP 404 (bootstrap again) */
	KL_ZN_UNREACHABLE,	/* no open connection to the BSF, or no answer within timeout_ms: 503 */
	KL_ZN_BAD_ANSWER,	/* an answer with missing or malformed AVPs, other result codes: 503 */
	KL_ZN__COUNT
};

struct kl_zn_answer {
	enum kl_zn_status status;
	uint32_t result_code;		/* the BIA's (Experimental-)Result-Code, 0 without an answer */
	uint8_t ks_naf[KL_ZN_KEY_LEN];	/* Ks_(ext)_NAF (status OK only); the caller wipes it */
	uint64_t expiry;		/* Key-ExpiryTime as Unix seconds */
	uint64_t created;		/* BootstrapInfoCreationTime as Unix seconds (0: absent) */
	uint32_t gba_type;		/* GBA-Type: 0 3G GBA (GBA_ME), 1 2G GBA */
	char impi[KL_ZN_IMPI_MAX + 1];	/* User-Name */
	int cached;			/* answered from the cache */
};

struct kl_zn_stats {
	uint64_t requests;		/* kl_zn_get calls */
	uint64_t cache_hits;
	uint64_t sent;			/* BIRs sent */
	uint64_t answered;		/* BIAs received */
	uint64_t by_status[KL_ZN__COUNT];
	uint64_t latency[KL_ZN_LAT_BUCKETS]; /* BIR round trips, not cumulative */
	uint64_t latency_sum_us;
	uint64_t cache_size;
	int bsf_open;			/* the connection to the BSF is open */
	uint64_t coalesced;		/* cache misses that waited for a BIR already in flight
					 * for the same (B-TID, NAF_Id) instead of sending one */
};

/**
 * Register the Zn application and command in the running stack's dictionary (dict_dcca_3gpp has
 * the AVPs), advertise the application, and add the BSF peer. d is keylined's running Diameter
 * stack. @return the client, or NULL with err set (one line).
 */
struct kl_zn *kl_zn_start(struct kl_diameter *d, const struct kl_zn_params *p, char *err,
			  size_t errlen);

/**
 * Ks_(ext)_NAF for (btid, naf_id): from the cache while unexpired, else one BIR (Transaction-
 * Identifier, NAF-Id) to the BSF, waited for at most timeout_ms. Fills *out (status always set).
 * @return out->status.
 */
enum kl_zn_status kl_zn_get(struct kl_zn *z, const char *btid, const uint8_t *naf_id,
			    size_t naf_len, struct kl_zn_answer *out);

/** Forget every cached answer for btid (all NAF_Ids). */
void kl_zn_forget(struct kl_zn *z, const char *btid);

void kl_zn_get_stats(struct kl_zn *z, struct kl_zn_stats *s);

/** A status's name ("ok", "unknown", "not_authorised", "expired", "unreachable", "bad_answer"). */
const char *kl_zn_status_name(enum kl_zn_status st);

/** Stop: pending calls return KL_ZN_UNREACHABLE; the cache is wiped. Call before the stack stops. */
void kl_zn_stop(struct kl_zn *z);


/* ---- added by the Zn implementation (after the contract's declarations) -------------------- */

/**
 * The BIA's content as kl_zn_get uses it, from one whole Diameter message in wire form (pure: no
 * freeDiameter, no clock; the libFuzzer target's entry). Every AVP is checked: the header
 * (version 1, length, answer of command 310 in application 16777220), each AVP's length and
 * padding, no duplicates of the AVPs read, Result-Code xor Experimental-Result (Vendor-Id
 * 10415), and on 2001: ME-Key-Material of exactly KL_ZN_KEY_LEN bytes, Key-ExpiryTime (4 bytes),
 * User-Name (1..KL_ZN_IMPI_MAX bytes of UTF-8 without NUL), optional BootstrapInfoCreationTime
 * (4 bytes) and GBA-Type (4 bytes, 0 or 1). 5401/5403 -> UNKNOWN, 5402 -> NOT_AUTHORISED, 3002
 * (DIAMETER_UNABLE_TO_DELIVER, the local answer when no route to the BSF is left) ->
 * UNREACHABLE, a Key-ExpiryTime <= now (Unix seconds) -> EXPIRED, anything else BAD_ANSWER.
 * out is filled (status, result_code; the key on OK only) and wiped on anything but OK.
 * @return out->status.
 */
enum kl_zn_status kl_zn_parse_bia(const uint8_t *msg, size_t len, uint64_t now,
				  struct kl_zn_answer *out);

/* The AVP codes of TS 29.109 used here (vendor 10415) and the Experimental-Result-Codes. */
#define KL_ZN_AVP_TRANSACTION_ID 401u
#define KL_ZN_AVP_NAF_ID 402u
#define KL_ZN_AVP_KEY_EXPIRY 404u
#define KL_ZN_AVP_ME_KEY 405u
#define KL_ZN_AVP_CREATION_TIME 408u
#define KL_ZN_AVP_GBA_TYPE 410u
#define KL_ZN_IMPI_UNKNOWN 5401u
#define KL_ZN_NOT_AUTHORIZED 5402u
#define KL_ZN_BTID_INVALID 5403u

#endif
