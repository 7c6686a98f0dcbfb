/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pure half of kl_etcd (kl_etcd.h): base64 and the parsers of etcd's v3 gateway answers. No
 * I/O, no global state: the libFuzzer target links this file alone.
 *
 * Protobuf's JSON mapping as grpc-gateway writes it: bytes are base64 strings, int64/uint64 are
 * decimal strings, a field at its zero value is absent. Every field read here is checked for its
 * JSON type; a wrong type, a non-decimal number or bad base64 is KL_ETCD_EPROTO naming the field.
 * Unknown fields are ignored (newer etcd versions add some).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_etcd.h"

const char *kl_etcd_strerror(int err)
{
	switch (err) {
	case KL_ETCD_OK: return "ok";
	case KL_ETCD_EINVAL: return "invalid argument";
	case KL_ETCD_ENOMEM: return "out of memory";
	case KL_ETCD_EUNREACHABLE: return "no etcd endpoint reachable";
	case KL_ETCD_EUNKNOWN: return "no answer: outcome unknown";
	case KL_ETCD_ESERVER: return "etcd error";
	case KL_ETCD_EPROTO: return "malformed answer";
	case KL_ETCD_ECOMPACTED: return "revision compacted";
	case KL_ETCD_ENOTFOUND: return "not found";
	}
	return "unknown error";
}

static void seterr(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!err || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

/* ---- base64 ------------------------------------------------------------------------------- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t kl_etcd_b64_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

void kl_etcd_b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t i = 0, o = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

long kl_etcd_b64_decode(const char *s, size_t len, uint8_t *out)
{
	size_t n = len, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 0 && n > 0 && s[n - 1] == '=') {
		n--;
		if (s[n - 1] == '=')
			n--;
	}
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)o;
}

size_t kl_etcd_prefix_end(const uint8_t *prefix, size_t len, uint8_t *out)
{
	for (size_t i = len; i > 0; i--) {
		if (prefix[i - 1] != 0xff) {
			memcpy(out, prefix, i - 1);
			out[i - 1] = (uint8_t)(prefix[i - 1] + 1);
			return i;
		}
	}
	out[0] = 0;
	return 1;
}

/* ---- field readers -------------------------------------------------------------------------- */

static int get_i64(json_t *o, const char *name, int64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	char *end;
	long long x;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		goto bad;
	s = json_string_value(v);
	if (json_string_length(v) == 0 || json_string_length(v) > 20 || strlen(s) != json_string_length(v))
		goto bad;
	if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		goto bad;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		goto bad;
	*out = x;
	return 0;
bad:
	seterr(err, errlen, "field \"%s\" is not a 64-bit integer", name);
	return KL_ETCD_EPROTO;
}

static int get_u64(json_t *o, const char *name, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	char *end;
	unsigned long long x;

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		goto bad;
	s = json_string_value(v);
	if (json_string_length(v) == 0 || json_string_length(v) > 20 || strlen(s) != json_string_length(v))
		goto bad;
	if (s[0] < '0' || s[0] > '9')
		goto bad;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		goto bad;
	*out = x;
	return 0;
bad:
	seterr(err, errlen, "field \"%s\" is not an unsigned 64-bit integer", name);
	return KL_ETCD_EPROTO;
}

static int get_bool(json_t *o, const char *name, int *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, name);

	*out = 0;
	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		seterr(err, errlen, "field \"%s\" is not a boolean", name);
		return KL_ETCD_EPROTO;
	}
	*out = json_is_true(v);
	return 0;
}

/* A string field (NULL when absent); a field of another type is an error. */
static json_t *get_string(json_t *o, const char *name, int *rc, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, name);

	*rc = 0;
	if (v && !json_is_string(v)) {
		seterr(err, errlen, "field \"%s\" is not a string", name);
		*rc = KL_ETCD_EPROTO;
		return NULL;
	}
	return v;
}

static size_t b64_room(json_t *v)
{
	return v ? json_string_length(v) / 4 * 3 + 3 : 0;
}

static int decode_into(json_t *v, const char *name, uint8_t *out, size_t *len, char *err,
		       size_t errlen)
{
	long n;

	*len = 0;
	if (!v)
		return 0;
	n = kl_etcd_b64_decode(json_string_value(v), json_string_length(v), out);
	if (n < 0) {
		seterr(err, errlen, "field \"%s\" is not base64", name);
		return KL_ETCD_EPROTO;
	}
	*len = (size_t)n;
	return 0;
}

/* The array field `name` (absent: *n = 0) and a zeroed allocation of one elem per item. */
static int get_array(json_t *o, const char *name, size_t elem, json_t **arr, void **mem,
		     size_t *n, char *err, size_t errlen)
{
	json_t *a = json_object_get(o, name);

	*arr = a;
	*mem = NULL;
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a)) {
		seterr(err, errlen, "\"%s\" is not an array", name);
		return KL_ETCD_EPROTO;
	}
	*n = json_array_size(a);
	if (!*n)
		return 0;
	*mem = calloc(*n, elem);
	if (!*mem) {
		seterr(err, errlen, "out of memory");
		*n = 0;
		return KL_ETCD_ENOMEM;
	}
	return 0;
}

static int parse_header(json_t *top, struct kl_etcd_header *h, int required, char *err,
			size_t errlen)
{
	json_t *o = json_object_get(top, "header");
	int rc;

	memset(h, 0, sizeof(*h));
	if (!o) {
		if (!required)
			return 0;
		seterr(err, errlen, "answer has no \"header\"");
		return KL_ETCD_EPROTO;
	}
	if (!json_is_object(o)) {
		seterr(err, errlen, "\"header\" is not an object");
		return KL_ETCD_EPROTO;
	}
	if ((rc = get_u64(o, "cluster_id", &h->cluster_id, err, errlen)) ||
	    (rc = get_u64(o, "member_id", &h->member_id, err, errlen)) ||
	    (rc = get_i64(o, "revision", &h->revision, err, errlen)) ||
	    (rc = get_u64(o, "raft_term", &h->raft_term, err, errlen)))
		return rc;
	if (h->revision < 0) {
		seterr(err, errlen, "header revision %" PRId64 " is negative", h->revision);
		return KL_ETCD_EPROTO;
	}
	return 0;
}

static int parse_kv(json_t *o, struct kl_etcd_kv *kv, char *err, size_t errlen)
{
	json_t *k, *v;
	int rc;
	uint8_t *mem;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o)) {
		seterr(err, errlen, "a kv is not an object");
		return KL_ETCD_EPROTO;
	}
	k = get_string(o, "key", &rc, err, errlen);
	if (rc)
		return rc;
	v = get_string(o, "value", &rc, err, errlen);
	if (rc)
		return rc;
	if ((rc = get_i64(o, "create_revision", &kv->create_revision, err, errlen)) ||
	    (rc = get_i64(o, "mod_revision", &kv->mod_revision, err, errlen)) ||
	    (rc = get_i64(o, "version", &kv->version, err, errlen)) ||
	    (rc = get_i64(o, "lease", &kv->lease, err, errlen)))
		return rc;
	mem = malloc(b64_room(k) + b64_room(v) + 2);
	if (!mem) {
		seterr(err, errlen, "out of memory");
		return KL_ETCD_ENOMEM;
	}
	if ((rc = decode_into(k, "key", mem, &kv->key_len, err, errlen))) {
		free(mem);
		return rc;
	}
	mem[kv->key_len] = 0;
	kv->key = mem;
	kv->value = mem + kv->key_len + 1;
	if ((rc = decode_into(v, "value", kv->value, &kv->value_len, err, errlen))) {
		free(mem);
		memset(kv, 0, sizeof(*kv));
		return rc;
	}
	kv->value[kv->value_len] = 0;
	return 0;
}

static void kvs_free(struct kl_etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(kvs[i].key);
	free(kvs);
}

static int parse_kvs(json_t *top, const char *name, struct kl_etcd_kv **out, size_t *n, char *err,
		     size_t errlen)
{
	json_t *a;
	void *mem;
	size_t len;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = get_array(top, name, sizeof(**out), &a, &mem, &len, err, errlen)))
		return rc;
	for (size_t i = 0; i < len; i++) {
		if ((rc = parse_kv(json_array_get(a, i), (struct kl_etcd_kv *)mem + i, err, errlen))) {
			kvs_free(mem, i);
			return rc;
		}
	}
	*out = mem;
	*n = len;
	return 0;
}

/* ---- error bodies --------------------------------------------------------------------------- */

static int classify(int code, const char *msg)
{
	if (code == 11 && strstr(msg, "compacted"))
		return KL_ETCD_ECOMPACTED;
	if (code == 5)
		return KL_ETCD_ENOTFOUND;
	return KL_ETCD_ESERVER;
}

static int error_of(json_t *top, int *code, char *msg, size_t msglen)
{
	json_t *e = json_object_get(top, "error");
	json_t *m, *c;

	*code = 0;
	if (!e)
		return KL_ETCD_EPROTO;
	if (json_is_object(e)) { /* stream: {"error":{"grpc_code":14,"message":".."}} */
		m = json_object_get(e, "message");
		c = json_object_get(e, "grpc_code");
	} else if (json_is_string(e)) { /* unary: {"error":"..","message":"..","code":14} */
		m = json_object_get(top, "message");
		if (!json_is_string(m))
			m = e;
		c = json_object_get(top, "code");
	} else {
		return KL_ETCD_EPROTO;
	}
	if (c && !json_is_integer(c))
		return KL_ETCD_EPROTO;
	if (m && !json_is_string(m))
		return KL_ETCD_EPROTO;
	*code = c ? (int)json_integer_value(c) : 0;
	seterr(msg, msglen, "%s (gRPC code %d)", m ? json_string_value(m) : "no message", *code);
	return classify(*code, m ? json_string_value(m) : "");
}

static json_t *load(const char *body, size_t len, int *rc, char *err, size_t errlen)
{
	json_error_t je;
	json_t *top = json_loadb(body, len, 0, &je);
	int code;

	*rc = 0;
	if (!top) {
		seterr(err, errlen, "answer is not JSON (%s at byte %d)", je.text, je.position);
		*rc = KL_ETCD_EPROTO;
		return NULL;
	}
	if (!json_is_object(top)) {
		seterr(err, errlen, "answer is not a JSON object");
		json_decref(top);
		*rc = KL_ETCD_EPROTO;
		return NULL;
	}
	if (json_object_get(top, "error")) {
		*rc = error_of(top, &code, err, errlen);
		if (*rc == KL_ETCD_EPROTO)
			seterr(err, errlen, "answer has a malformed \"error\"");
		json_decref(top);
		return NULL;
	}
	return top;
}

int kl_etcd_parse_error(const char *body, size_t len, int *code, char *msg, size_t msglen)
{
	json_error_t je;
	json_t *top = json_loadb(body, len, 0, &je);
	int rc;

	*code = 0;
	if (!top || !json_is_object(top)) {
		json_decref(top);
		seterr(msg, msglen, "not an etcd error body");
		return KL_ETCD_EPROTO;
	}
	rc = error_of(top, code, msg, msglen);
	if (rc == KL_ETCD_EPROTO)
		seterr(msg, msglen, "not an etcd error body");
	json_decref(top);
	return rc;
}

/* ---- answers -------------------------------------------------------------------------------- */

/* One answer's fields from its JSON object into out; frees what it allocated on error. */
typedef int (*answer_fn)(json_t *top, void *out, char *err, size_t errlen);

static int parse_answer(const char *body, size_t len, answer_fn fn, void *out, size_t out_size,
			char *err, size_t errlen)
{
	int rc;
	json_t *top;

	memset(out, 0, out_size);
	top = load(body, len, &rc, err, errlen);
	if (!top)
		return rc;
	rc = fn(top, out, err, errlen);
	json_decref(top);
	if (rc)
		memset(out, 0, out_size);
	return rc;
}

static int range_of(json_t *o, struct kl_etcd_range *out, int header_required, char *err,
		    size_t errlen)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_header(o, &out->hdr, header_required, err, errlen)) ||
	    (rc = get_bool(o, "more", &out->more, err, errlen)) ||
	    (rc = get_i64(o, "count", &out->count, err, errlen)))
		return rc;
	if (out->count < 0) {
		seterr(err, errlen, "negative count");
		return KL_ETCD_EPROTO;
	}
	return parse_kvs(o, "kvs", &out->kvs, &out->n, err, errlen);
}

void kl_etcd_range_free(struct kl_etcd_range *r)
{
	if (!r)
		return;
	kvs_free(r->kvs, r->n);
	memset(r, 0, sizeof(*r));
}

static int range_answer(json_t *top, void *out, char *err, size_t errlen)
{
	return range_of(top, out, 1, err, errlen);
}

static int put_answer(json_t *top, void *out, char *err, size_t errlen)
{
	return parse_header(top, out, 1, err, errlen);
}

struct delete_out {
	struct kl_etcd_header hdr;
	int64_t deleted;
};

static int delete_answer(json_t *top, void *out, char *err, size_t errlen)
{
	struct delete_out *d = out;
	int rc = parse_header(top, &d->hdr, 1, err, errlen);

	return rc ? rc : get_i64(top, "deleted", &d->deleted, err, errlen);
}

int kl_etcd_parse_delete(const char *body, size_t len, struct kl_etcd_header *out,
			 int64_t *deleted, char *err, size_t errlen)
{
	struct delete_out d;
	int rc = parse_answer(body, len, delete_answer, &d, sizeof(d), err, errlen);

	*out = d.hdr;
	*deleted = d.deleted;
	return rc;
}

void kl_etcd_txn_result_free(struct kl_etcd_txn_result *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		kl_etcd_range_free(&t->res[i].range);
	free(t->res);
	memset(t, 0, sizeof(*t));
}

static int op_result_of(json_t *o, struct kl_etcd_op_result *r, char *err, size_t errlen)
{
	json_t *v;
	struct kl_etcd_header h;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o)) {
		seterr(err, errlen, "a txn response is not an object");
		return KL_ETCD_EPROTO;
	}
	if ((v = json_object_get(o, "response_put"))) {
		r->kind = KL_ETCD_OP_PUT;
		if (!json_is_object(v))
			goto bad;
		return parse_header(v, &h, 0, err, errlen);
	}
	if ((v = json_object_get(o, "response_delete_range"))) {
		r->kind = KL_ETCD_OP_DELETE;
		if (!json_is_object(v))
			goto bad;
		if ((rc = parse_header(v, &h, 0, err, errlen)))
			return rc;
		return get_i64(v, "deleted", &r->deleted, err, errlen);
	}
	if ((v = json_object_get(o, "response_range"))) {
		r->kind = KL_ETCD_OP_RANGE;
		if (!json_is_object(v))
			goto bad;
		return range_of(v, &r->range, 0, err, errlen);
	}
bad:
	seterr(err, errlen, "a txn response is none of put, delete_range, range");
	return KL_ETCD_EPROTO;
}

static int txn_answer(json_t *top, void *p, char *err, size_t errlen)
{
	struct kl_etcd_txn_result *out = p;
	json_t *a;
	void *mem;
	size_t n;
	int rc;

	if ((rc = parse_header(top, &out->hdr, 1, err, errlen)) ||
	    (rc = get_bool(top, "succeeded", &out->succeeded, err, errlen)) ||
	    (rc = get_array(top, "responses", sizeof(*out->res), &a, &mem, &n, err, errlen)))
		return rc;
	out->res = mem;
	for (size_t i = 0; i < n; i++) {
		rc = op_result_of(json_array_get(a, i), &out->res[i], err, errlen);
		out->n = i + 1; /* freed below on error */
		if (rc) {
			kl_etcd_txn_result_free(out);
			return rc;
		}
	}
	return 0;
}

static int lease_answer(json_t *top, void *p, char *err, size_t errlen)
{
	struct kl_etcd_lease *out = p;
	json_t *o = json_object_get(top, "result"), *e;
	int rc;

	if (o && !json_is_object(o)) {
		seterr(err, errlen, "\"result\" is not an object");
		return KL_ETCD_EPROTO;
	}
	if (!o)
		o = top;
	e = get_string(o, "error", &rc, err, errlen);
	if (rc)
		return rc;
	if (e && json_string_length(e)) {
		seterr(err, errlen, "%s", json_string_value(e));
		return KL_ETCD_ESERVER;
	}
	if ((rc = parse_header(o, &out->hdr, 1, err, errlen)) ||
	    (rc = get_i64(o, "ID", &out->id, err, errlen)) ||
	    (rc = get_i64(o, "TTL", &out->ttl, err, errlen)))
		return rc;
	if (out->ttl < 0)
		out->ttl = 0;
	return 0;
}

static int status_answer(json_t *top, void *p, char *err, size_t errlen)
{
	struct kl_etcd_status *out = p;
	json_t *v;
	int rc;

	if ((rc = parse_header(top, &out->hdr, 1, err, errlen)) ||
	    (rc = get_i64(top, "dbSize", &out->db_size, err, errlen)) ||
	    (rc = get_i64(top, "dbSizeInUse", &out->db_size_in_use, err, errlen)) ||
	    (rc = get_u64(top, "leader", &out->leader, err, errlen)) ||
	    (rc = get_u64(top, "raftIndex", &out->raft_index, err, errlen)) ||
	    (rc = get_u64(top, "raftTerm", &out->raft_term, err, errlen)) ||
	    (rc = get_u64(top, "raftAppliedIndex", &out->raft_applied_index, err, errlen)))
		return rc;
	v = get_string(top, "version", &rc, err, errlen);
	if (!rc && v)
		snprintf(out->version, sizeof(out->version), "%s", json_string_value(v));
	return rc;
}

void kl_etcd_watch_resp_free(struct kl_etcd_watch_resp *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_events; i++)
		free(r->events[i].kv.key);
	free(r->events);
	memset(r, 0, sizeof(*r));
}

static int event_of(json_t *o, struct kl_etcd_event *ev, char *err, size_t errlen)
{
	json_t *t, *kv;

	memset(ev, 0, sizeof(*ev));
	if (!json_is_object(o)) {
		seterr(err, errlen, "a watch event is not an object");
		return KL_ETCD_EPROTO;
	}
	t = json_object_get(o, "type");
	if (!t || (json_is_string(t) && !strcmp(json_string_value(t), "PUT")) ||
	    (json_is_integer(t) && json_integer_value(t) == 0))
		ev->type = KL_ETCD_EV_PUT;
	else if ((json_is_string(t) && !strcmp(json_string_value(t), "DELETE")) ||
		 (json_is_integer(t) && json_integer_value(t) == 1))
		ev->type = KL_ETCD_EV_DELETE;
	else {
		seterr(err, errlen, "a watch event has an unknown \"type\"");
		return KL_ETCD_EPROTO;
	}
	kv = json_object_get(o, "kv");
	if (!kv) {
		seterr(err, errlen, "a watch event has no \"kv\"");
		return KL_ETCD_EPROTO;
	}
	return parse_kv(kv, &ev->kv, err, errlen);
}

static int watch_answer(json_t *top, void *p, char *err, size_t errlen)
{
	struct kl_etcd_watch_resp *out = p;
	json_t *o = json_object_get(top, "result"), *a, *reason;
	void *mem;
	size_t n;
	int rc;

	if (!json_is_object(o)) {
		seterr(err, errlen, "watch message has no \"result\" object");
		return KL_ETCD_EPROTO;
	}
	if ((rc = parse_header(o, &out->hdr, 1, err, errlen)) ||
	    (rc = get_i64(o, "watch_id", &out->watch_id, err, errlen)) ||
	    (rc = get_bool(o, "created", &out->created, err, errlen)) ||
	    (rc = get_bool(o, "canceled", &out->canceled, err, errlen)) ||
	    (rc = get_i64(o, "compact_revision", &out->compact_revision, err, errlen)))
		return rc;
	reason = get_string(o, "cancel_reason", &rc, err, errlen);
	if (rc)
		return rc;
	if (reason)
		snprintf(out->cancel_reason, sizeof(out->cancel_reason), "%s",
			 json_string_value(reason));
	if ((rc = get_array(o, "events", sizeof(*out->events), &a, &mem, &n, err, errlen)))
		return rc;
	out->events = mem;
	for (size_t i = 0; i < n; i++) {
		if ((rc = event_of(json_array_get(a, i), &out->events[i], err, errlen))) {
			kl_etcd_watch_resp_free(out);
			return rc;
		}
		out->n_events = i + 1;
	}
	return 0;
}

/* The public parsers (kl_etcd.h): parse_answer with each answer's reader. */
#define KL_ETCD_PARSERS(X)                                \
	X(range, struct kl_etcd_range, range_answer)      \
	X(put, struct kl_etcd_header, put_answer)         \
	X(txn, struct kl_etcd_txn_result, txn_answer)     \
	X(lease, struct kl_etcd_lease, lease_answer)      \
	X(status, struct kl_etcd_status, status_answer)   \
	X(watch, struct kl_etcd_watch_resp, watch_answer)

#define KL_X(name, type, reader)                                                       \
	int kl_etcd_parse_##name(const char *body, size_t len, type *out, char *err,   \
				 size_t errlen)                                        \
	{                                                                              \
		return parse_answer(body, len, reader, out, sizeof(*out), err, errlen); \
	}
KL_ETCD_PARSERS(KL_X)
#undef KL_X
