/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Bootstrapping-Info-Answer's content from its wire form (TS 29.109 Zn, RFC 6733 framing):
 * a pure function over bytes, so that the extraction kl_zn.c relies on can be fuzzed without
 * freeDiameter. See kl_zn_parse_bia in kl_zn.h.
 */
#include <string.h>

#include "kl_crypto.h"
#include "kl_util.h"
#include "kl_zn.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define AVP_USER_NAME 1u
#define AVP_VENDOR_ID 266u
#define AVP_RESULT_CODE 268u
#define AVP_EXP_RESULT 297u
#define AVP_EXP_RESULT_CODE 298u
#define AVP_FLAG_V 0x80u
#define DIAMETER_UNABLE_TO_DELIVER 3002u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const char *kl_zn_status_name(enum kl_zn_status st)
{
	static const char *const names[KL_ZN__COUNT] = { "ok",	    "unknown",	   "not_authorised",
							 "expired", "unreachable", "bad_answer" };

	return (unsigned)st < KL_ZN__COUNT ? names[st] : "invalid";
}

struct avp {
	uint32_t code, vendor;
	const uint8_t *data;
	size_t len;
};

/* The next AVP at *pos in [buf, buf+end): 1 (taken), 0 (end reached), -1 (malformed). */
static int next_avp(const uint8_t *buf, size_t end, size_t *pos, struct avp *a)
{
	size_t p = *pos, alen, hl;

	if (p == end)
		return 0;
	if (end - p < 8)
		return -1;
	alen = be32(buf + p + 4) & 0xFFFFFFu;
	hl = (buf[p + 4] & AVP_FLAG_V) ? 12 : 8;
	if (alen < hl || alen > end - p)
		return -1;
	a->code = be32(buf + p);
	a->vendor = hl == 12 ? be32(buf + p + 8) : 0;
	a->data = buf + p + hl;
	a->len = alen - hl;
	/* padding to 4 bytes; the last AVP of a message or group must be padded as well */
	alen = (alen + 3) & ~(size_t)3;
	if (alen > end - p)
		return -1;
	*pos = p + alen;
	return 1;
}

/* A Time AVP (NTP seconds, RFC 6733 4.3.1: values with the top bit clear are after 2036). */
static uint64_t ntp_to_unix(uint32_t t)
{
	uint64_t s = t & 0x80000000u ? (uint64_t)t : (uint64_t)t + (1ull << 32);

	return s > NTP_UNIX_OFFSET ? s - NTP_UNIX_OFFSET : 0;
}

static enum kl_zn_status fin(struct kl_zn_answer *out, enum kl_zn_status st)
{
	uint32_t rc = out->result_code;

	if (st != KL_ZN_OK) {
		kl_memzero(out, sizeof(*out));
		out->result_code = rc;
	}
	out->status = st;
	return st;
}

enum kl_zn_status kl_zn_parse_bia(const uint8_t *msg, size_t len, uint64_t now,
				  struct kl_zn_answer *out)
{
	const uint8_t *key = NULL;
	int has_rc = 0, has_exp = 0, has_expiry = 0, has_created = 0, has_gba = 0, has_user = 0;
	uint32_t expiry = 0, created = 0, gba = 0, exp_rc = 0;
	struct avp a;
	size_t pos = 20;
	int r;

	if (!out)
		return KL_ZN_BAD_ANSWER;
	memset(out, 0, sizeof(*out));
	if (!msg || len < 20 || len > 0xFFFFFFu || msg[0] != 1 || (be32(msg) & 0xFFFFFFu) != len ||
	    (len & 3))
		return fin(out, KL_ZN_BAD_ANSWER);
	/* an answer (R clear) of Bootstrapping-Info in the Zn application */
	if ((msg[4] & 0x80) || (be32(msg + 4) & 0xFFFFFFu) != KL_ZN_CMD_BOOTSTRAPPING_INFO ||
	    be32(msg + 8) != KL_ZN_APP_ID)
		return fin(out, KL_ZN_BAD_ANSWER);
	while ((r = next_avp(msg, len, &pos, &a)) > 0) {
		if (a.vendor == 0 && a.code == AVP_RESULT_CODE) {
			if (has_rc++ || a.len != 4)
				return fin(out, KL_ZN_BAD_ANSWER);
			out->result_code = be32(a.data);
		} else if (a.vendor == 0 && a.code == AVP_EXP_RESULT) {
			size_t gp = 0;
			struct avp g;
			int has_vendor = 0, has_code = 0, gr;

			if (has_exp++)
				return fin(out, KL_ZN_BAD_ANSWER);
			while ((gr = next_avp(a.data, a.len, &gp, &g)) > 0) {
				if (g.vendor || (g.code != AVP_VENDOR_ID && g.code != AVP_EXP_RESULT_CODE))
					continue;
				if (g.len != 4)
					return fin(out, KL_ZN_BAD_ANSWER);
				if (g.code == AVP_VENDOR_ID) {
					if (has_vendor++ || be32(g.data) != KL_ZN_VENDOR_ID)
						return fin(out, KL_ZN_BAD_ANSWER);
				} else {
					if (has_code++)
						return fin(out, KL_ZN_BAD_ANSWER);
					exp_rc = be32(g.data);
				}
			}
			if (gr < 0 || !has_vendor || !has_code)
				return fin(out, KL_ZN_BAD_ANSWER);
		} else if (a.vendor == 0 && a.code == AVP_USER_NAME) {
			if (has_user++ || !a.len || a.len > KL_ZN_IMPI_MAX || memchr(a.data, 0, a.len) ||
			    !kl_utf8_ok(a.data, a.len))
				return fin(out, KL_ZN_BAD_ANSWER);
			memcpy(out->impi, a.data, a.len);
			out->impi[a.len] = 0;
		} else if (a.vendor == KL_ZN_VENDOR_ID && a.code == KL_ZN_AVP_ME_KEY) {
			if (key || a.len != KL_ZN_KEY_LEN)
				return fin(out, KL_ZN_BAD_ANSWER);
			key = a.data;
		} else if (a.vendor == KL_ZN_VENDOR_ID && a.code == KL_ZN_AVP_KEY_EXPIRY) {
			if (has_expiry++ || a.len != 4)
				return fin(out, KL_ZN_BAD_ANSWER);
			expiry = be32(a.data);
		} else if (a.vendor == KL_ZN_VENDOR_ID && a.code == KL_ZN_AVP_CREATION_TIME) {
			if (has_created++ || a.len != 4)
				return fin(out, KL_ZN_BAD_ANSWER);
			created = be32(a.data);
		} else if (a.vendor == KL_ZN_VENDOR_ID && a.code == KL_ZN_AVP_GBA_TYPE) {
			if (has_gba++ || a.len != 4 || be32(a.data) > 1)
				return fin(out, KL_ZN_BAD_ANSWER);
			gba = be32(a.data);
		}
	}
	if (r < 0)
		return fin(out, KL_ZN_BAD_ANSWER);
	if (has_rc == has_exp) /* exactly one of them */
		return fin(out, KL_ZN_BAD_ANSWER);
	if (has_exp) {
		out->result_code = exp_rc;
		if (exp_rc == KL_ZN_IMPI_UNKNOWN || exp_rc == KL_ZN_BTID_INVALID)
			return fin(out, KL_ZN_UNKNOWN);
		if (exp_rc == KL_ZN_NOT_AUTHORIZED)
			return fin(out, KL_ZN_NOT_AUTHORISED);
		return fin(out, KL_ZN_BAD_ANSWER);
	}
	if (out->result_code == DIAMETER_UNABLE_TO_DELIVER)
		return fin(out, KL_ZN_UNREACHABLE);
	if (out->result_code != 2001 || !key || !has_expiry || !has_user)
		return fin(out, KL_ZN_BAD_ANSWER);
	out->expiry = ntp_to_unix(expiry);
	out->created = has_created ? ntp_to_unix(created) : 0;
	out->gba_type = gba;
	if (out->expiry <= now)
		return fin(out, KL_ZN_EXPIRED);
	memcpy(out->ks_naf, key, KL_ZN_KEY_LEN);
	return fin(out, KL_ZN_OK);
}
