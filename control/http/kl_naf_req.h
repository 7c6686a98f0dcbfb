/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NAF Key Center's request parsers (PROTOCOL.md section 11), pure functions without state so
 * that they can be fuzzed alone (tests/fuzz/fuzz_naf_req.c):
 *   the POST /v1/ks-local-mt body {"b_tid": "...", "device_id": "...", "naf_id": "hex"?}
 *   the DELETE /v1/ks-local-mt/{b_tid}/{device_id} path, percent-encoded parts ('/' and '+' of
 *   a base64 B-TID arrive as %2F and %2B).
 * Unknown fields, duplicate fields, wrong types, lengths beyond the limits and characters
 * outside the sets below are refused with a one-line detail that never echoes the input.
 */
#ifndef KL_NAF_REQ_H
#define KL_NAF_REQ_H

#include <stddef.h>
#include <stdint.h>

#define KL_NAF_REQ_BTID_MAX 255	     /* = KL_NAF_BTID_MAX, KL_ZN_BTID_MAX */
#define KL_NAF_REQ_DEVICE_ID_MAX 64   /* = KL_NAF_DEVICE_ID_MAX (an X.509 CN's upper bound) */
#define KL_NAF_REQ_NAF_ID_MAX 255     /* = KL_NAF_ID_MAX */
#define KL_NAF_REQ_PATH "/v1/ks-local-mt"

struct kl_naf_req {
	char btid[KL_NAF_REQ_BTID_MAX + 1];	      /* base64(RAND)@domain: [A-Za-z0-9+/=@._-] */
	char device_id[KL_NAF_REQ_DEVICE_ID_MAX + 1]; /* printable ASCII, no '/' */
	uint8_t naf_id[KL_NAF_REQ_NAF_ID_MAX];
	uint16_t naf_len; /* 0: the request named none (the configured default) */
};

/**
 * Parse a POST body of len bytes (not NUL-terminated).
 * @return 0 with *out filled, or -1 with detail set ("b_tid: missing", ...).
 */
int kl_naf_req_parse(const char *body, size_t len, struct kl_naf_req *out, char *detail,
		     size_t dl);

/**
 * Parse the raw (still percent-encoded) path of a DELETE: "/v1/ks-local-mt/B/D".
 * @return 0 with out->btid and out->device_id set (naf_len 0), 1 when the path is not of this
 *         route at all (404), or -1 with detail (a malformed part: 400).
 */
int kl_naf_path_parse(const char *path, size_t len, struct kl_naf_req *out, char *detail,
		      size_t dl);

/** Check a B-TID / Device_ID by the sets above (the certificate's CN goes through the latter). */
int kl_naf_btid_ok(const char *s, size_t n);
int kl_naf_device_id_ok(const char *s, size_t n);

#endif
