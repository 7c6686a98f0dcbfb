/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: what the NAF Key Center's clients read from the wire and from the BSF
 * simulator's UE file (tools/kl_naf_client.c, tools/kl_naf_mt.c): the 200 answer parser, the
 * error parser and the UE file line parser, on the same input. Invariants (abort = bug):
 *  - a parsed answer has NUL-terminated printable identities, 1..255 NAF_ID bytes, an expiry of
 *    the form YYYY-MM-DDTHH:MM:SSZ, and survives a round trip: written back as JSON (the key in
 *    base64) it parses to the same answer;
 *  - a refused answer leaves the struct wiped (no key bytes behind);
 *  - error and detail are always NUL-terminated, without control characters;
 *  - a parsed UE line has printable IMPI and B-TID; a refused one is wiped.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fuzz_common.h"
#include "kl_naf_client.h"
#include "kl_naf_mt.h"

static int printable(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static void round_trip(const struct kl_naf_answer *a)
{
	struct kl_naf_answer b;
	char naf[2 * KL_NAF_CLI_ID_MAX + 1], err[128];
	unsigned char k64[64];
	json_t *o;
	char *s;

	for (size_t i = 0; i < a->naf_len; i++)
		snprintf(naf + 2 * i, 3, "%02x", a->naf_id[i]);
	FZ_CHECK(EVP_EncodeBlock(k64, a->key, sizeof(a->key)) == 44);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "b_tid", a->btid, "device_id", a->device_id,
		      "naf_id", naf, "ks_local_mt", (char *)k64, "expires", a->expires,
		      "lifetime_s", (json_int_t)a->lifetime_s);
	FZ_CHECK(o);
	s = json_dumps(o, JSON_COMPACT);
	FZ_CHECK(s);
	FZ_CHECK(kl_naf_parse_answer(s, strlen(s), &b, err, sizeof(err)) == 0);
	FZ_CHECK(!strcmp(a->btid, b.btid) && !strcmp(a->device_id, b.device_id) &&
		 a->naf_len == b.naf_len && !memcmp(a->naf_id, b.naf_id, a->naf_len) &&
		 !memcmp(a->key, b.key, sizeof(a->key)) && !strcmp(a->expires, b.expires) &&
		 a->lifetime_s == b.lifetime_s);
	free(s);
	json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_naf_answer a;
	struct kl_naf_ue u;
	char err[160], e[64], d[64];

	if (!kl_naf_parse_answer((const char *)data, size, &a, err, sizeof(err))) {
		FZ_CHECK(printable(a.btid) && printable(a.device_id) && printable(a.expires));
		FZ_CHECK(a.naf_len >= 1 && a.naf_len <= KL_NAF_CLI_ID_MAX);
		FZ_CHECK(strlen(a.expires) == 20 && a.expires[10] == 'T' && a.expires[19] == 'Z');
		round_trip(&a);
	} else {
		FZ_CHECK(all_zero(&a, sizeof(a)));
		FZ_CHECK(memchr(err, 0, sizeof(err)));
	}
	kl_naf_parse_error((const char *)data, size, e, sizeof(e), d, sizeof(d));
	FZ_CHECK(memchr(e, 0, sizeof(e)) && memchr(d, 0, sizeof(d)));
	for (size_t i = 0; e[i]; i++)
		FZ_CHECK((unsigned char)e[i] >= 0x20 && e[i] != 0x7f);
	for (size_t i = 0; d[i]; i++)
		FZ_CHECK((unsigned char)d[i] >= 0x20 && d[i] != 0x7f);
	if (!kl_naf_ue_parse((const char *)data, size, &u, err, sizeof(err)))
		FZ_CHECK(printable(u.impi) && printable(u.btid));
	else
		FZ_CHECK(all_zero(&u, sizeof(u)));
	return 0;
}
