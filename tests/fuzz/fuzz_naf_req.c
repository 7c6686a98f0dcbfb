/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the NAF Key Center's request parsers (control/http/kl_naf_req.c). The first byte
 * picks the parser: even, the POST body (JSON); odd, the DELETE path (raw, percent-encoded).
 * Invariants: an accepted request holds a B-TID and a Device_ID of the allowed character sets
 * and lengths (checked independently here), a NAF_Id no longer than its limit; a refusal leaves
 * the output zeroed and a detail line without control characters; nothing else is written.
 */
#include <string.h>

#include "fuzz_common.h"
#include "kl_naf_req.h"

static int btid_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("+/=@._-", c) != NULL;
}

static void check_ok(const struct kl_naf_req *q)
{
	size_t bl = strnlen(q->btid, sizeof(q->btid)), dl = strnlen(q->device_id, sizeof(q->device_id));

	FZ_CHECK(bl >= 1 && bl <= KL_NAF_REQ_BTID_MAX);
	FZ_CHECK(dl >= 1 && dl <= KL_NAF_REQ_DEVICE_ID_MAX);
	for (size_t i = 0; i < bl; i++)
		FZ_CHECK(q->btid[i] && btid_char(q->btid[i]));
	for (size_t i = 0; i < dl; i++)
		FZ_CHECK(q->device_id[i] > 0x20 && q->device_id[i] < 0x7f && q->device_id[i] != '/');
	FZ_CHECK(q->naf_len <= KL_NAF_REQ_NAF_ID_MAX);
}

static void check_refused(const struct kl_naf_req *q, const char *detail)
{
	static const struct kl_naf_req zero;

	FZ_CHECK(memcmp(q, &zero, sizeof(zero)) == 0);
	FZ_CHECK(detail[0] != '\0');
	for (const char *p = detail; *p; p++)
		FZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_naf_req q;
	char detail[200];
	int rc;

	if (size < 1)
		return 0;
	memset(&q, 0xa5, sizeof(q));
	detail[0] = '\0';
	if (data[0] % 2 == 0) {
		rc = kl_naf_req_parse((const char *)data + 1, size - 1, &q, detail, sizeof(detail));
		FZ_CHECK(rc == 0 || rc == -1);
	} else {
		char path[1024];
		size_t n = size - 1 < sizeof(path) - 1 ? size - 1 : sizeof(path) - 1;

		memcpy(path, data + 1, n);
		path[n] = '\0';
		rc = kl_naf_path_parse(path, strlen(path), &q, detail, sizeof(detail));
		FZ_CHECK(rc >= -1 && rc <= 1);
		if (rc == 0)
			FZ_CHECK(q.naf_len == 0);
		if (rc == 1) {
			static const struct kl_naf_req zero;

			FZ_CHECK(memcmp(&q, &zero, sizeof(zero)) == 0);
			return 0;
		}
	}
	if (rc == 0)
		check_ok(&q);
	else
		check_refused(&q, detail);
	return 0;
}
