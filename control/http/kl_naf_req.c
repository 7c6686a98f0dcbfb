/* SPDX-License-Identifier: BSD-3-Clause */
/* The NAF Key Center's request parsers (kl_naf_req.h). */
#include "kl_naf_req.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

__attribute__((format(printf, 3, 4))) static int fail(char *d, size_t dl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, dl, fmt, ap);
	va_end(ap);
	return -1;
}

int kl_naf_btid_ok(const char *s, size_t n)
{
	if (n == 0 || n > KL_NAF_REQ_BTID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '=' || c == '@' || c == '.' || c == '-' ||
		      c == '_'))
			return 0;
	}
	return 1;
}

int kl_naf_device_id_ok(const char *s, size_t n)
{
	if (n == 0 || n > KL_NAF_REQ_DEVICE_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || s[i] == '/')
			return 0;
	return 1;
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

static int get_string(json_t *o, const char *name, const char **s, size_t *n, char *d, size_t dl)
{
	json_t *v = json_object_get(o, name);

	*s = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(d, dl, "%s: must be a string", name);
	*s = json_string_value(v);
	*n = json_string_length(v);
	if (strlen(*s) != *n)
		return fail(d, dl, "%s: must not contain NUL", name);
	return 0;
}

int kl_naf_req_parse(const char *body, size_t len, struct kl_naf_req *out, char *d, size_t dl)
{
	const char *btid, *dev, *naf, *name;
	size_t bl, dvl, nl;
	json_error_t je;
	json_t *j, *v;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!body || len == 0)
		return fail(d, dl, "empty body: a JSON object {\"b_tid\", \"device_id\", \"naf_id\"?} "
				   "is expected");
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return fail(d, dl, "invalid JSON at byte %d", je.position);
	if (!json_is_object(j)) {
		fail(d, dl, "the body must be a JSON object");
		goto out;
	}
	json_object_foreach(j, name, v) {
		if (strcmp(name, "b_tid") && strcmp(name, "device_id") && strcmp(name, "naf_id")) {
			fail(d, dl, "unknown field (b_tid, device_id and naf_id are the fields)");
			goto out;
		}
	}
	if (get_string(j, "b_tid", &btid, &bl, d, dl) || get_string(j, "device_id", &dev, &dvl, d, dl) ||
	    get_string(j, "naf_id", &naf, &nl, d, dl))
		goto out;
	if (!btid) {
		fail(d, dl, "b_tid: missing");
		goto out;
	}
	if (!kl_naf_btid_ok(btid, bl)) {
		fail(d, dl, "b_tid: must be 1..%d characters of base64, '@', '.', '-', '_'",
		     KL_NAF_REQ_BTID_MAX);
		goto out;
	}
	if (!dev) {
		fail(d, dl, "device_id: missing");
		goto out;
	}
	if (!kl_naf_device_id_ok(dev, dvl)) {
		fail(d, dl, "device_id: must be 1..%d printable ASCII characters without '/' or space",
		     KL_NAF_REQ_DEVICE_ID_MAX);
		goto out;
	}
	if (naf) {
		if (nl == 0 || nl % 2 || nl / 2 > KL_NAF_REQ_NAF_ID_MAX) {
			fail(d, dl, "naf_id: must be 1..%d bytes as hex (an even number of digits)",
			     KL_NAF_REQ_NAF_ID_MAX);
			goto out;
		}
		for (size_t i = 0; i < nl; i += 2) {
			int hi = hexv(naf[i]), lo = hexv(naf[i + 1]);

			if (hi < 0 || lo < 0) {
				fail(d, dl, "naf_id: not hex");
				goto out;
			}
			out->naf_id[i / 2] = (uint8_t)(hi << 4 | lo);
		}
		out->naf_len = (uint16_t)(nl / 2);
	}
	memcpy(out->btid, btid, bl);
	memcpy(out->device_id, dev, dvl);
	rc = 0;
out:
	json_decref(j);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Percent-decode src[0..n) into dst (cap bytes, NUL added). @return the length, or -1. */
static long pct_decode(const char *src, size_t n, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexv(src[i + 1]);
			lo = hexv(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0' || o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return (long)o;
}

int kl_naf_path_parse(const char *path, size_t len, struct kl_naf_req *out, char *d, size_t dl)
{
	static const char pre[] = KL_NAF_REQ_PATH "/";
	const size_t pl = sizeof(pre) - 1;
	const char *b, *slash, *q;
	long bn, dn;

	memset(out, 0, sizeof(*out));
	if (!path || len < pl || memcmp(path, pre, pl) != 0)
		return 1;
	q = memchr(path, '?', len);
	if (q)
		len = (size_t)(q - path);
	b = path + pl;
	slash = memchr(b, '/', len - pl);
	if (!slash || memchr(slash + 1, '/', len - (size_t)(slash + 1 - path)))
		return fail(d, dl, "the path must be " KL_NAF_REQ_PATH "/{b_tid}/{device_id}, each "
				   "part percent-encoded ('/' as %%2F)");
	bn = pct_decode(b, (size_t)(slash - b), out->btid, sizeof(out->btid));
	if (bn < 0 || !kl_naf_btid_ok(out->btid, (size_t)bn)) {
		memset(out, 0, sizeof(*out));
		return fail(d, dl, "b_tid in the path: must be 1..%d characters of base64, '@', '.', "
				   "'-', '_' (percent-encoded)",
			    KL_NAF_REQ_BTID_MAX);
	}
	dn = pct_decode(slash + 1, len - (size_t)(slash + 1 - path), out->device_id,
			sizeof(out->device_id));
	if (dn < 0 || !kl_naf_device_id_ok(out->device_id, (size_t)dn)) {
		memset(out, 0, sizeof(*out));
		return fail(d, dl, "device_id in the path: must be 1..%d printable ASCII characters "
				   "(percent-encoded)",
			    KL_NAF_REQ_DEVICE_ID_MAX);
	}
	return 0;
}
