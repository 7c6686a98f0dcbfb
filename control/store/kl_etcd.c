/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline's etcd client (kl_etcd.h): requests built with jansson, sent with libcurl (one easy
 * handle per client, so the connection to the current endpoint is kept alive between calls), the
 * answers parsed by kl_etcd_json.c. The watch runs on a libcurl multi handle whose sockets and
 * timer the caller's poll loop drives (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kl_etcd.h"

struct buf {
	char *p;
	size_t len, cap;
	int overflow;
};

struct kl_etcd {
	char *ep[KL_ETCD_MAX_ENDPOINTS];
	size_t n_ep, cur;
	char *ca_file, *cert_file, *key_file;
	long connect_ms, request_ms;
	CURL *h;
	struct curl_slist *hdrs;
	struct buf resp;
	char curl_err[CURL_ERROR_SIZE];
	char err[768];
	int grpc_code;
	const int *abort; /* kl_etcd_set_abort: a call in progress ends when *abort != 0 */
};

static void seterr(struct kl_etcd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct kl_etcd *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static int buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > KL_ETCD_MAX_ANSWER) {
		b->overflow = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	return buf_add(arg, p, size * n) ? 0 : size * n;
}

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void global_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, global_init_once);
}

void kl_etcd_free(struct kl_etcd *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_ep; i++)
		free(c->ep[i]);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	if (c->h)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdrs);
	free(c->resp.p);
	free(c);
}

/* Options common to the client's handle and the watch's. */
static void set_common(const struct kl_etcd *c, CURL *h)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	if (c->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
}

struct kl_etcd *kl_etcd_new(const struct kl_etcd_opts *o, char *err, size_t errlen)
{
	struct kl_etcd *c;

	if (!o || !o->endpoints || o->n_endpoints == 0 || o->n_endpoints > KL_ETCD_MAX_ENDPOINTS) {
		snprintf(err, errlen, "etcd: 1 to %d endpoints needed", KL_ETCD_MAX_ENDPOINTS);
		return NULL;
	}
	for (size_t i = 0; i < o->n_endpoints; i++) {
		const char *e = o->endpoints[i];

		if (!e || (strncmp(e, "http://", 7) && strncmp(e, "https://", 8))) {
			snprintf(err, errlen, "etcd: endpoint %zu is not an http:// or https:// URL",
				 i + 1);
			return NULL;
		}
	}
	if (!o->cert_file != !o->key_file) {
		snprintf(err, errlen, "etcd: a client certificate needs its key and the reverse");
		return NULL;
	}
	if (o->connect_timeout_ms < 0 || o->request_timeout_ms < 0) {
		snprintf(err, errlen, "etcd: negative timeout");
		return NULL;
	}
	global_init();
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	for (size_t i = 0; i < o->n_endpoints; i++) {
		size_t l = strlen(o->endpoints[i]);

		c->ep[i] = strdup(o->endpoints[i]);
		if (!c->ep[i])
			goto nomem;
		c->n_ep = i + 1;
		while (l > 0 && c->ep[i][l - 1] == '/') /* "http://h:2379/" + "/v3/..." */
			c->ep[i][--l] = 0;
	}
	c->ca_file = dupstr(o->ca_file);
	c->cert_file = dupstr(o->cert_file);
	c->key_file = dupstr(o->key_file);
	if ((o->ca_file && !c->ca_file) || (o->cert_file && !c->cert_file) ||
	    (o->key_file && !c->key_file))
		goto nomem;
	c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 1000;
	c->request_ms = o->request_timeout_ms ? o->request_timeout_ms : 5000;
	c->h = curl_easy_init();
	/* No "Expect: 100-continue" (a txn body over 1 KiB would wait for it). */
	c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (c->hdrs)
		c->hdrs = curl_slist_append(c->hdrs, "Expect:");
	if (!c->h || !c->hdrs)
		goto nomem;
	set_common(c, c->h);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, c->request_ms);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
	curl_easy_setopt(c->h, CURLOPT_POST, 1L);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->curl_err);
	return c;
nomem:
	snprintf(err, errlen, "etcd: out of memory");
	kl_etcd_free(c);
	return NULL;
}

struct kl_etcd *kl_etcd_new_like(const struct kl_etcd *c, char *err, size_t errlen)
{
	struct kl_etcd_opts o = { 0 };

	if (!c) {
		snprintf(err, errlen, "etcd: no client to copy");
		return NULL;
	}
	o.endpoints = (const char *const *)c->ep;
	o.n_endpoints = c->n_ep;
	o.ca_file = c->ca_file;
	o.cert_file = c->cert_file;
	o.key_file = c->key_file;
	o.connect_timeout_ms = c->connect_ms;
	o.request_timeout_ms = c->request_ms;
	return kl_etcd_new(&o, err, errlen);
}

/* libcurl's progress callback: non-zero ends the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	const int *flag = arg;

	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	return flag && __atomic_load_n(flag, __ATOMIC_RELAXED) ? 1 : 0;
}

void kl_etcd_set_abort(struct kl_etcd *c, const int *flag)
{
	c->abort = flag;
	curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, flag ? on_progress : NULL);
	curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, (void *)flag);
	curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, flag ? 0L : 1L);
}

const char *kl_etcd_errmsg(const struct kl_etcd *c)
{
	return c->err;
}

int kl_etcd_grpc_code(const struct kl_etcd *c)
{
	return c->grpc_code;
}

const char *kl_etcd_endpoint(const struct kl_etcd *c)
{
	return c->ep[c->cur];
}

/* ---- one request with failover -------------------------------------------------------------- */

enum { NOT_SENT, MAYBE_SENT };

/* libcurl's detailed message (CURLOPT_ERRORBUFFER) or, without one, the code's. */
static const char *curl_detail(CURLcode rc, const char *buf)
{
	return buf[0] ? buf : curl_easy_strerror(rc);
}

/* What a libcurl failure says about the request. */
static int curl_failure_kind(CURLcode rc, const char *detail)
{
	/* A TLS alert from the server (TLS 1.3 refuses a client certificate after the client's
	 * side of the handshake ended, so it shows as a receive error) or a failed TLS write: the
	 * connection never carried a whole HTTP request, and etcd's gateway acts on whole ones
	 * only. */
	if (rc == CURLE_RECV_ERROR && (strstr(detail, " alert ") || strstr(detail, "SSL_write")))
		return NOT_SENT;
	switch (rc) {
	case CURLE_SEND_ERROR: /* the request was not written whole */
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	/* Not HTTP at all: whatever listens there is not etcd's gateway. */
	case CURLE_WEIRD_SERVER_REPLY:
		return NOT_SENT;
	case CURLE_OPERATION_TIMEDOUT:
	default:
		return MAYBE_SENT;
	}
}

/*
 * POST req (consumed) to path at each endpoint in turn; on success c->resp holds the 200 answer's
 * body and the endpoint that gave it becomes the current one. idempotent: a request that may have
 * been sent is retried elsewhere (reads), else it ends the call with KL_ETCD_EUNKNOWN (writes).
 */
static int call(struct kl_etcd *c, const char *path, json_t *req, int idempotent)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	char url[1024];
	char tried[640] = "";
	size_t tlen = 0;
	int rc = KL_ETCD_EUNREACHABLE;

	json_decref(req);
	c->err[0] = 0;
	c->grpc_code = 0;
	if (!body) {
		seterr(c, "etcd %s: out of memory", path);
		return KL_ETCD_ENOMEM;
	}
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	for (size_t k = 0; k < c->n_ep; k++) {
		size_t i = (c->cur + k) % c->n_ep;
		long status = 0;
		CURLcode cr;
		char *ctype = NULL;
		const char *detail;

		if (c->abort && __atomic_load_n(c->abort, __ATOMIC_RELAXED)) {
			seterr(c, "etcd %s: abandoned (the client is stopping)", path);
			rc = KL_ETCD_EUNREACHABLE;
			goto out;
		}
		c->resp.len = 0;
		c->resp.overflow = 0;
		c->curl_err[0] = 0;
		snprintf(url, sizeof(url), "%s%s", c->ep[i], path);
		curl_easy_setopt(c->h, CURLOPT_URL, url);
		cr = curl_easy_perform(c->h);
		if (cr != CURLE_OK) {
			if (c->resp.overflow) {
				seterr(c, "etcd %s at %s: answer larger than %u bytes", path, c->ep[i],
				       KL_ETCD_MAX_ANSWER);
				rc = KL_ETCD_EPROTO;
				goto out;
			}
			detail = curl_detail(cr, c->curl_err);
			if (tlen < sizeof(tried))
				tlen += (size_t)snprintf(tried + tlen, sizeof(tried) - tlen, "%s%s: %s",
							 tlen ? "; " : "", c->ep[i], detail);
			if (curl_failure_kind(cr, detail) == MAYBE_SENT && !idempotent) {
				seterr(c, "etcd %s at %s: %s: the write may or may not be applied",
				       path, c->ep[i], detail);
				c->cur = i;
				rc = KL_ETCD_EUNKNOWN;
				goto out;
			}
			continue;
		}
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c->h, CURLINFO_CONTENT_TYPE, &ctype);
		if (status == 200) {
			c->cur = i;
			rc = 0;
			goto out;
		}
		if (!ctype || strncmp(ctype, "application/json", 16)) {
			/* A 404 "Not Found" in text: an HTTP server, but no v3 gateway. */
			seterr(c, "etcd %s at %s: HTTP %ld, not a JSON answer (no etcd v3 gateway?)",
			       path, c->ep[i], status);
			c->cur = i;
			rc = KL_ETCD_EPROTO;
			goto out;
		}
		{
			char msg[400];
			int code;

			rc = kl_etcd_parse_error(c->resp.p ? c->resp.p : "", c->resp.len, &code, msg,
						 sizeof(msg));
			if (rc == KL_ETCD_EPROTO) {
				seterr(c, "etcd %s at %s: HTTP %ld with a malformed error body", path,
				       c->ep[i], status);
				c->cur = i;
				goto out;
			}
			/* Unavailable ("no leader", "not capable", ...): another member may serve a
			 * read; a write is retried only when etcd says it was not started. */
			if (code == 14 && (idempotent || strstr(msg, "no leader"))) {
				if (tlen < sizeof(tried))
					tlen += (size_t)snprintf(tried + tlen, sizeof(tried) - tlen,
								 "%s%s: %s", tlen ? "; " : "",
								 c->ep[i], msg);
				rc = KL_ETCD_EUNREACHABLE;
				continue;
			}
			seterr(c, "etcd %s at %s: %s", path, c->ep[i], msg);
			c->grpc_code = code;
			c->cur = i;
			goto out;
		}
	}
	seterr(c, "etcd %s: no endpoint answered (%s)", path, tried);
	rc = KL_ETCD_EUNREACHABLE;
out:
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, NULL);
	free(body);
	return rc;
}

/* Finish a call: parse errors are the endpoint's fault; say which. */
static int parsed(struct kl_etcd *c, const char *path, int rc, const char *perr)
{
	if (rc)
		seterr(c, "etcd %s at %s: %s", path, c->ep[c->cur], perr);
	return rc;
}

/* ---- request builders ----------------------------------------------------------------------- */

static int add_bytes(json_t *o, const char *name, const uint8_t *p, size_t len)
{
	char *s = malloc(kl_etcd_b64_len(len) + 1);
	int rc;

	if (!s)
		return -1;
	kl_etcd_b64_encode(p ? p : (const uint8_t *)"", len, s);
	rc = json_object_set_new(o, name, json_string(s));
	free(s);
	return rc;
}

static int add_i64(json_t *o, const char *name, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_object_set_new(o, name, json_string(s));
}

static json_t *range_json(const struct kl_etcd_range_req *r)
{
	json_t *o = json_object();
	int bad = !o;

	bad = bad || add_bytes(o, "key", r->key, r->key_len);
	if (r->range_end)
		bad = bad || add_bytes(o, "range_end", r->range_end, r->range_end_len);
	if (r->limit)
		bad = bad || add_i64(o, "limit", r->limit);
	if (r->revision)
		bad = bad || add_i64(o, "revision", r->revision);
	if (r->keys_only)
		bad = bad || json_object_set_new(o, "keys_only", json_true());
	if (r->count_only)
		bad = bad || json_object_set_new(o, "count_only", json_true());
	if (r->serializable)
		bad = bad || json_object_set_new(o, "serializable", json_true());
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *put_json(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen,
			int64_t lease)
{
	json_t *o = json_object();

	if (!o || add_bytes(o, "key", key, klen) || add_bytes(o, "value", val, vlen) ||
	    (lease && add_i64(o, "lease", lease))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *delete_json(const uint8_t *key, size_t klen, const uint8_t *end, size_t elen)
{
	json_t *o = json_object();

	if (!o || add_bytes(o, "key", key, klen) || (end && add_bytes(o, "range_end", end, elen))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int check_key(struct kl_etcd *c, const void *key, size_t len)
{
	c->err[0] = 0;
	if (!key || !len) {
		seterr(c, "etcd: empty key");
		return KL_ETCD_EINVAL;
	}
	return 0;
}

/* ---- key-value ------------------------------------------------------------------------------ */

int kl_etcd_range(struct kl_etcd *c, const struct kl_etcd_range_req *req, struct kl_etcd_range *out)
{
	char perr[256];
	json_t *j;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_key(c, req->key, req->key_len)))
		return rc;
	if (req->limit < 0 || req->revision < 0) {
		seterr(c, "etcd: negative limit or revision");
		return KL_ETCD_EINVAL;
	}
	j = range_json(req);
	if (!j)
		return KL_ETCD_ENOMEM;
	if ((rc = call(c, "/v3/kv/range", j, 1)))
		return rc;
	rc = kl_etcd_parse_range(c->resp.p, c->resp.len, out, perr, sizeof(perr));
	return parsed(c, "/v3/kv/range", rc, perr);
}

int kl_etcd_get(struct kl_etcd *c, const void *key, size_t key_len, struct kl_etcd_range *out)
{
	struct kl_etcd_range_req r = { .key = key, .key_len = key_len };

	return kl_etcd_range(c, &r, out);
}

int kl_etcd_range_page(struct kl_etcd *c, const void *prefix, size_t prefix_len, const void *after,
		       size_t after_len, int64_t limit, int64_t revision, struct kl_etcd_range *out)
{
	uint8_t *end = malloc(prefix_len + 1);
	uint8_t *from = NULL;
	struct kl_etcd_range_req r = { .limit = limit, .revision = revision };
	int rc;

	memset(out, 0, sizeof(*out));
	if (!end)
		return KL_ETCD_ENOMEM;
	r.range_end = end;
	r.range_end_len = kl_etcd_prefix_end(prefix, prefix_len, end);
	if (after) {
		/* The smallest key after `after`: after || 0x00. */
		from = malloc(after_len + 1);
		if (!from) {
			free(end);
			return KL_ETCD_ENOMEM;
		}
		memcpy(from, after, after_len);
		from[after_len] = 0;
		r.key = from;
		r.key_len = after_len + 1;
	} else {
		r.key = prefix;
		r.key_len = prefix_len;
	}
	rc = kl_etcd_range(c, &r, out);
	free(end);
	free(from);
	return rc;
}

int kl_etcd_put(struct kl_etcd *c, const void *key, size_t key_len, const void *value,
		size_t value_len, int64_t lease, int64_t *revision)
{
	struct kl_etcd_header h;
	char perr[256];
	json_t *j;
	int rc;

	if (revision)
		*revision = 0;
	if ((rc = check_key(c, key, key_len)))
		return rc;
	j = put_json(key, key_len, value, value_len, lease);
	if (!j)
		return KL_ETCD_ENOMEM;
	if ((rc = call(c, "/v3/kv/put", j, 0)))
		return rc;
	rc = kl_etcd_parse_put(c->resp.p, c->resp.len, &h, perr, sizeof(perr));
	if (!rc && revision)
		*revision = h.revision;
	return parsed(c, "/v3/kv/put", rc, perr);
}

int kl_etcd_delete(struct kl_etcd *c, const void *key, size_t key_len, int prefix,
		   int64_t *deleted, int64_t *revision)
{
	struct kl_etcd_header h;
	char perr[256];
	uint8_t *end = NULL;
	size_t elen = 0;
	int64_t d;
	json_t *j;
	int rc;

	if (deleted)
		*deleted = 0;
	if (revision)
		*revision = 0;
	if ((rc = check_key(c, key, key_len)))
		return rc;
	if (prefix) {
		end = malloc(key_len);
		if (!end)
			return KL_ETCD_ENOMEM;
		elen = kl_etcd_prefix_end(key, key_len, end);
	}
	j = delete_json(key, key_len, end, elen);
	free(end);
	if (!j)
		return KL_ETCD_ENOMEM;
	if ((rc = call(c, "/v3/kv/deleterange", j, 0)))
		return rc;
	rc = kl_etcd_parse_delete(c->resp.p, c->resp.len, &h, &d, perr, sizeof(perr));
	if (!rc) {
		if (deleted)
			*deleted = d;
		if (revision)
			*revision = h.revision;
	}
	return parsed(c, "/v3/kv/deleterange", rc, perr);
}

int kl_etcd_compact(struct kl_etcd *c, int64_t revision, int physical)
{
	json_t *j = json_object();
	char perr[256];
	struct kl_etcd_header h;
	int rc;

	c->err[0] = 0;
	if (!j || add_i64(j, "revision", revision) ||
	    (physical && json_object_set_new(j, "physical", json_true()))) {
		json_decref(j);
		return KL_ETCD_ENOMEM;
	}
	if ((rc = call(c, "/v3/kv/compaction", j, 0)))
		return rc;
	rc = kl_etcd_parse_put(c->resp.p, c->resp.len, &h, perr, sizeof(perr));
	return parsed(c, "/v3/kv/compaction", rc, perr);
}

/* ---- transactions --------------------------------------------------------------------------- */

static json_t *cmp_json(const struct kl_etcd_cmp *k)
{
	static const char *const targets[] = { "VERSION", "CREATE", "MOD", "VALUE" };
	static const char *const fields[] = { "version", "create_revision", "mod_revision" };
	static const char *const ops[] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
	json_t *o;
	int bad;

	if ((unsigned)k->target > KL_ETCD_VALUE || (unsigned)k->op > KL_ETCD_NOT_EQUAL ||
	    !k->key || !k->key_len)
		return NULL;
	o = json_object();
	bad = !o || json_object_set_new(o, "target", json_string(targets[k->target])) ||
	      json_object_set_new(o, "result", json_string(ops[k->op])) ||
	      add_bytes(o, "key", k->key, k->key_len);
	if (!bad && k->target == KL_ETCD_VALUE)
		bad = add_bytes(o, "value", k->value, k->value_len);
	else if (!bad)
		bad = add_i64(o, fields[k->target], k->number);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *op_json(const struct kl_etcd_op *op)
{
	json_t *inner = NULL, *o;
	const char *name = NULL;

	if (!op->key || !op->key_len)
		return NULL;
	switch (op->kind) {
	case KL_ETCD_OP_PUT:
		name = "request_put";
		inner = put_json(op->key, op->key_len, op->value, op->value_len, op->lease);
		break;
	case KL_ETCD_OP_DELETE:
		name = "request_delete_range";
		inner = delete_json(op->key, op->key_len, op->range_end, op->range_end_len);
		break;
	case KL_ETCD_OP_RANGE: {
		struct kl_etcd_range_req r = { .key = op->key, .key_len = op->key_len,
					       .range_end = op->range_end,
					       .range_end_len = op->range_end_len,
					       .limit = op->limit };

		name = "request_range";
		inner = range_json(&r);
		break;
	}
	}
	if (!inner)
		return NULL;
	o = json_object();
	if (!o || json_object_set_new(o, name, inner)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int add_list(json_t *top, const char *name, const void *items, size_t n, size_t size,
		    json_t *(*one)(const void *))
{
	json_t *a = json_array();

	if (!a || json_object_set_new(top, name, a))
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *x = one((const char *)items + i * size);

		if (!x || json_array_append_new(a, x))
			return -1;
	}
	return 0;
}

static json_t *cmp_one(const void *p)
{
	return cmp_json(p);
}

static json_t *op_one(const void *p)
{
	return op_json(p);
}

int kl_etcd_txn(struct kl_etcd *c, const struct kl_etcd_cmp *cmp, size_t n_cmp,
		const struct kl_etcd_op *success, size_t n_success, const struct kl_etcd_op *failure,
		size_t n_failure, struct kl_etcd_txn_result *out)
{
	char perr[256];
	json_t *j;
	int rc;

	memset(out, 0, sizeof(*out));
	c->err[0] = 0;
	if (n_success > KL_ETCD_MAX_TXN_OPS || n_failure > KL_ETCD_MAX_TXN_OPS ||
	    n_cmp > KL_ETCD_MAX_TXN_OPS) {
		seterr(c, "etcd txn: more than %d compares or operations", KL_ETCD_MAX_TXN_OPS);
		return KL_ETCD_EINVAL;
	}
	j = json_object();
	if (!j || add_list(j, "compare", cmp, n_cmp, sizeof(*cmp), cmp_one) ||
	    add_list(j, "success", success, n_success, sizeof(*success), op_one) ||
	    add_list(j, "failure", failure, n_failure, sizeof(*failure), op_one)) {
		json_decref(j);
		seterr(c, "etcd txn: an empty key or an unknown compare/operation kind");
		return KL_ETCD_EINVAL;
	}
	if ((rc = call(c, "/v3/kv/txn", j, 0)))
		return rc;
	rc = kl_etcd_parse_txn(c->resp.p, c->resp.len, out, perr, sizeof(perr));
	if (!rc && out->n != (out->succeeded ? n_success : n_failure)) {
		snprintf(perr, sizeof(perr), "txn answer has %zu results for %zu operations", out->n,
			 out->succeeded ? n_success : n_failure);
		kl_etcd_txn_result_free(out);
		rc = KL_ETCD_EPROTO;
	}
	return parsed(c, "/v3/kv/txn", rc, perr);
}

/* ---- leases and status ---------------------------------------------------------------------- */

static int lease_call(struct kl_etcd *c, const char *path, json_t *j, int idempotent,
		      struct kl_etcd_lease *out)
{
	char perr[256];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!j)
		return KL_ETCD_ENOMEM;
	if ((rc = call(c, path, j, idempotent)))
		return rc == KL_ETCD_ESERVER && c->grpc_code == 5 ? KL_ETCD_ENOTFOUND : rc;
	rc = kl_etcd_parse_lease(c->resp.p, c->resp.len, out, perr, sizeof(perr));
	return parsed(c, path, rc, perr);
}

static json_t *id_json(const char *name1, int64_t v1, const char *name2, int64_t v2)
{
	json_t *j = json_object();

	if (!j || add_i64(j, name1, v1) || (name2 && add_i64(j, name2, v2))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int kl_etcd_lease_grant(struct kl_etcd *c, int64_t ttl, int64_t id, struct kl_etcd_lease *out)
{
	c->err[0] = 0;
	if (ttl <= 0 || id < 0) {
		memset(out, 0, sizeof(*out));
		seterr(c, "etcd lease grant: TTL must be positive");
		return KL_ETCD_EINVAL;
	}
	return lease_call(c, "/v3/lease/grant", id_json("TTL", ttl, "ID", id), 0, out);
}

int kl_etcd_lease_revoke(struct kl_etcd *c, int64_t id)
{
	struct kl_etcd_lease l;
	int rc = lease_call(c, "/v3/lease/revoke", id_json("ID", id, NULL, 0), 0, &l);

	/* The revoke answer has only a header: no ID, no TTL. */
	return rc;
}

int kl_etcd_lease_keepalive(struct kl_etcd *c, int64_t id, struct kl_etcd_lease *out)
{
	/* Renewing twice is harmless: retried on another member like a read. */
	int rc = lease_call(c, "/v3/lease/keepalive", id_json("ID", id, NULL, 0), 1, out);

	if (!rc && out->ttl <= 0) {
		seterr(c, "etcd lease %" PRId64 " is gone (expired or revoked)", id);
		return KL_ETCD_ENOTFOUND;
	}
	return rc;
}

int kl_etcd_status(struct kl_etcd *c, struct kl_etcd_status *out)
{
	char perr[256];
	json_t *j = json_object();
	int rc;

	memset(out, 0, sizeof(*out));
	if (!j)
		return KL_ETCD_ENOMEM;
	if ((rc = call(c, "/v3/maintenance/status", j, 1)))
		return rc;
	rc = kl_etcd_parse_status(c->resp.p, c->resp.len, out, perr, sizeof(perr));
	return parsed(c, "/v3/maintenance/status", rc, perr);
}

/* ---- watch ---------------------------------------------------------------------------------- */

#define W_MAX_FDS 4
#define W_BACKOFF_MIN_MS 50
#define W_BACKOFF_MAX_MS 2000
/* One watch message larger than this ends the stream as malformed (etcd sends a revision's
 * events in one message; 64 MiB holds 128 ops of 512 KiB values). */
#define W_MAX_LINE KL_ETCD_MAX_ANSWER

enum w_state { W_STREAMING, W_WAITING, W_STOPPED };

struct kl_etcd_watch {
	struct kl_etcd *c;
	uint8_t *key, *end;
	size_t key_len, end_len;
	int64_t next_rev;
	kl_etcd_watch_cb cb;
	void *arg;
	CURLM *m;
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	size_t ep;
	enum w_state state;
	int stop_rc;
	struct buf line;
	char reason[512];
	char curl_err[CURL_ERROR_SIZE];
	int fail; /* the stream is to be dropped (malformed / compacted / canceled) */
	struct {
		curl_socket_t fd;
		int what;
	} fds[W_MAX_FDS];
	int n_fds;
	long timer_ms; /* libcurl's timer: -1 none */
	uint64_t timer_set_at, retry_at;
	uint64_t created_by; /* 0: created; else the stream must be created by then */
	unsigned backoff_ms;
	struct kl_etcd_watch_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int w_socket_cb(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct kl_etcd_watch *w = arg;
	int i;

	(void)e;
	(void)sockp;
	for (i = 0; i < w->n_fds; i++)
		if (w->fds[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE) {
		if (i < w->n_fds)
			w->fds[i] = w->fds[--w->n_fds];
		return 0;
	}
	if (i == w->n_fds) {
		if (w->n_fds == W_MAX_FDS)
			return -1;
		w->n_fds++;
	}
	w->fds[i].fd = s;
	w->fds[i].what = what;
	return 0;
}

static int w_timer_cb(CURLM *m, long timeout_ms, void *arg)
{
	struct kl_etcd_watch *w = arg;

	(void)m;
	w->timer_ms = timeout_ms;
	w->timer_set_at = now_ms();
	return 0;
}

static void w_note(struct kl_etcd_watch *w, enum kl_etcd_watch_what what,
		   const struct kl_etcd_event *ev, int64_t rev, int64_t compact, const char *reason)
{
	struct kl_etcd_watch_note n = { .what = what, .ev = ev, .revision = rev,
					.compact_revision = compact, .reason = reason,
					.endpoint = w->c->ep[w->ep] };

	w->cb(w->arg, &n);
}

/* One line of the stream: a whole JSON message. */
static void w_message(struct kl_etcd_watch *w, const char *p, size_t len)
{
	struct kl_etcd_watch_resp r;
	char perr[256];
	int rc = kl_etcd_parse_watch(p, len, &r, perr, sizeof(perr));

	if (rc) {
		snprintf(w->reason, sizeof(w->reason), "%s: %s",
			 rc == KL_ETCD_EPROTO ? "malformed watch message" : "watch error", perr);
		w->fail = 1;
		return;
	}
	w->st.messages++;
	if (r.compact_revision > 0) {
		w->state = W_STOPPED;
		w->stop_rc = KL_ETCD_ECOMPACTED;
		w->fail = 1;
		snprintf(w->reason, sizeof(w->reason), "compacted at revision %" PRId64,
			 r.compact_revision);
		w_note(w, KL_ETCD_W_COMPACTED, NULL, r.hdr.revision, r.compact_revision, w->reason);
		goto out;
	}
	if (r.canceled) {
		w->state = W_STOPPED;
		w->stop_rc = KL_ETCD_ESERVER;
		w->fail = 1;
		snprintf(w->reason, sizeof(w->reason), "watch canceled by etcd: %s",
			 r.cancel_reason[0] ? r.cancel_reason : "no reason given");
		w_note(w, KL_ETCD_W_CANCELED, NULL, r.hdr.revision, 0, w->reason);
		goto out;
	}
	if (r.created) {
		w->backoff_ms = W_BACKOFF_MIN_MS;
		w->created_by = 0;
		/* "From now on": pin now, so a reconnection misses nothing in between. */
		if (w->next_rev == 0)
			w->next_rev = r.hdr.revision + 1;
		w_note(w, KL_ETCD_W_CREATED, NULL, r.hdr.revision, 0, NULL);
	}
	/* Reopened from next_rev, nothing older can come, and revisions only grow: anything else
	 * is not etcd. Checked before any event is delivered, so that the reopening (from next_rev)
	 * neither skips nor repeats one. */
	for (size_t i = 0; i < r.n_events; i++) {
		int64_t rev = r.events[i].kv.mod_revision;

		if (rev < w->next_rev || (i && rev < r.events[i - 1].kv.mod_revision)) {
			snprintf(w->reason, sizeof(w->reason),
				 "malformed watch message: event revision %" PRId64
				 " before %" PRId64, rev, i ? r.events[i - 1].kv.mod_revision : w->next_rev);
			w->fail = 1;
			goto out;
		}
	}
	for (size_t i = 0; i < r.n_events; i++) {
		w->st.events++;
		w_note(w, KL_ETCD_W_EVENT, &r.events[i], r.hdr.revision, 0, NULL);
	}
	/* All events of a revision come in one message: resume after the last one. */
	if (r.n_events)
		w->next_rev = r.events[r.n_events - 1].kv.mod_revision + 1;
	/* A progress notification (no events, not the creation): etcd sends it to a synced
	 * watcher only, so every event up to its header revision was delivered. An idle watch
	 * thus resumes from a recent revision, not one compaction may since have removed. */
	if (!r.n_events && !r.created && r.hdr.revision >= w->next_rev)
		w->next_rev = r.hdr.revision + 1;
out:
	kl_etcd_watch_resp_free(&r);
}

static size_t w_on_body(char *p, size_t size, size_t n, void *arg)
{
	struct kl_etcd_watch *w = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		/* Keep the error body for the disconnect reason. */
		if (w->line.len < 400)
			buf_add(&w->line, p, len < 400 ? len : 400);
		return len;
	}
	for (size_t i = 0; i < len && !w->fail; i++) {
		if (p[i] != '\n') {
			size_t j = i;

			while (j < len && p[j] != '\n')
				j++;
			if (buf_add(&w->line, p + i, j - i)) {
				snprintf(w->reason, sizeof(w->reason),
					 "malformed watch message: longer than %u bytes", W_MAX_LINE);
				w->fail = 1;
				break;
			}
			i = j - 1;
			continue;
		}
		if (w->line.len)
			w_message(w, w->line.p, w->line.len);
		w->line.len = 0;
	}
	return w->fail ? 0 : len;
}

static void w_drop_handle(struct kl_etcd_watch *w)
{
	if (w->h) {
		curl_multi_remove_handle(w->m, w->h);
		curl_easy_cleanup(w->h);
		w->h = NULL;
	}
	w->line.len = 0;
}

static int w_start(struct kl_etcd_watch *w)
{
	char url[1024];

	w_drop_handle(w);
	free(w->body);
	{
		json_t *cr = json_object(), *top = json_object();
		int bad = !cr || !top || add_bytes(cr, "key", w->key, w->key_len) ||
			  (w->end && add_bytes(cr, "range_end", w->end, w->end_len)) ||
			  (w->next_rev && add_i64(cr, "start_revision", w->next_rev)) ||
			  json_object_set_new(cr, "progress_notify", json_true());

		if (bad || json_object_set_new(top, "create_request", cr)) {
			json_decref(top);
			return KL_ETCD_ENOMEM;
		}
		w->body = json_dumps(top, JSON_COMPACT);
		json_decref(top);
		if (!w->body)
			return KL_ETCD_ENOMEM;
	}
	w->h = curl_easy_init();
	if (!w->h)
		return KL_ETCD_ENOMEM;
	set_common(w->c, w->h);
	snprintf(url, sizeof(url), "%s/v3/watch", w->c->ep[w->ep]);
	curl_easy_setopt(w->h, CURLOPT_URL, url);
	curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, w->body);
	curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, w_on_body);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->h, CURLOPT_PRIVATE, w);
	w->curl_err[0] = 0;
	curl_easy_setopt(w->h, CURLOPT_ERRORBUFFER, w->curl_err);
	w->fail = 0;
	w->reason[0] = 0;
	w->line.len = 0;
	if (curl_multi_add_handle(w->m, w->h) != CURLM_OK)
		return KL_ETCD_ENOMEM;
	w->state = W_STREAMING;
	/* A member (or anything) that takes the connection and stays silent is dropped: etcd
	 * confirms a watch at once. An idle stream after that is normal (TCP keep-alive finds a
	 * dead peer; hasleader a member cut off). */
	w->created_by = now_ms() + (uint64_t)w->c->connect_ms + (uint64_t)w->c->request_ms;
	w->st.connects++;
	return 0;
}

struct kl_etcd_watch *kl_etcd_watch_new(struct kl_etcd *c, const void *key, size_t key_len,
					int prefix, int64_t start_revision, kl_etcd_watch_cb cb,
					void *arg)
{
	struct kl_etcd_watch *w;

	if (!c || !key || !key_len || !cb || start_revision < 0)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->c = c;
	w->cb = cb;
	w->arg = arg;
	w->ep = c->cur;
	w->next_rev = start_revision;
	w->timer_ms = -1;
	w->backoff_ms = W_BACKOFF_MIN_MS;
	w->key = malloc(key_len);
	w->key_len = key_len;
	if (!w->key)
		goto fail;
	memcpy(w->key, key, key_len);
	if (prefix) {
		w->end = malloc(key_len);
		if (!w->end)
			goto fail;
		w->end_len = kl_etcd_prefix_end(key, key_len, w->end);
	}
	/* hasleader: a member cut off from the leader ends the stream instead of going silent. */
	w->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (w->hdrs)
		w->hdrs = curl_slist_append(w->hdrs, "Expect:");
	if (w->hdrs)
		w->hdrs = curl_slist_append(w->hdrs, "Grpc-Metadata-hasleader: true");
	w->m = curl_multi_init();
	if (!w->hdrs || !w->m)
		goto fail;
	curl_multi_setopt(w->m, CURLMOPT_SOCKETFUNCTION, w_socket_cb);
	curl_multi_setopt(w->m, CURLMOPT_SOCKETDATA, w);
	curl_multi_setopt(w->m, CURLMOPT_TIMERFUNCTION, w_timer_cb);
	curl_multi_setopt(w->m, CURLMOPT_TIMERDATA, w);
	w->state = W_WAITING;
	w->retry_at = 0;
	return w;
fail:
	kl_etcd_watch_free(w);
	return NULL;
}

void kl_etcd_watch_free(struct kl_etcd_watch *w)
{
	if (!w)
		return;
	w_drop_handle(w);
	if (w->m)
		curl_multi_cleanup(w->m);
	curl_slist_free_all(w->hdrs);
	free(w->body);
	free(w->line.p);
	free(w->key);
	free(w->end);
	free(w);
}

int kl_etcd_watch_pollfds(struct kl_etcd_watch *w, struct pollfd *fds, int max)
{
	int n = 0;

	for (int i = 0; i < w->n_fds && n < max; i++) {
		fds[n].fd = w->fds[i].fd;
		fds[n].events = (short)(((w->fds[i].what & CURL_POLL_IN) ? POLLIN : 0) |
					((w->fds[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
		fds[n].revents = 0;
		n++;
	}
	return n;
}

int kl_etcd_watch_timeout_ms(struct kl_etcd_watch *w)
{
	uint64_t now = now_ms();
	long t = -1;

	if (w->state == W_WAITING)
		t = w->retry_at > now ? (long)(w->retry_at - now) : 0;
	if (w->state == W_STREAMING && w->timer_ms >= 0) {
		uint64_t due = w->timer_set_at + (uint64_t)w->timer_ms;

		t = due > now ? (long)(due - now) : 0;
	}
	if (w->state == W_STREAMING && w->created_by) {
		long c = w->created_by > now ? (long)(w->created_by - now) : 0;

		if (t < 0 || c < t)
			t = c;
	}
	return t > 60000 ? 60000 : (int)t;
}

/* The stream ended (error, EOF, or dropped by us): tell, and schedule the reopening. */
static void w_disconnected(struct kl_etcd_watch *w, CURLcode cr)
{
	long status = 0;

	if (w->h)
		curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	if (!w->reason[0]) {
		if (cr != CURLE_OK)
			snprintf(w->reason, sizeof(w->reason), "%s", curl_detail(cr, w->curl_err));
		else if (status != 200)
			snprintf(w->reason, sizeof(w->reason), "HTTP %ld: %.*s", status,
				 (int)(w->line.len > 300 ? 300 : w->line.len),
				 w->line.p ? w->line.p : "");
		else
			snprintf(w->reason, sizeof(w->reason), "stream ended by the server");
	}
	w->st.disconnects++;
	w_note(w, KL_ETCD_W_DISCONNECTED, NULL, 0, 0, w->reason);
	w_drop_handle(w);
	w->n_fds = 0;
	w->timer_ms = -1;
	w->ep = (w->ep + 1) % w->c->n_ep;
	w->state = W_WAITING;
	w->retry_at = now_ms() + w->backoff_ms;
	w->backoff_ms = w->backoff_ms * 2 > W_BACKOFF_MAX_MS ? W_BACKOFF_MAX_MS : w->backoff_ms * 2;
}

int kl_etcd_watch_run(struct kl_etcd_watch *w)
{
	int running = 0, left;
	CURLMsg *msg;

	if (w->state == W_STOPPED)
		return w->stop_rc;
	if (w->state == W_WAITING) {
		if (now_ms() < w->retry_at)
			return 0;
		if (w_start(w))
			return KL_ETCD_ENOMEM;
		curl_multi_socket_action(w->m, CURL_SOCKET_TIMEOUT, 0, &running);
	} else {
		struct pollfd pf[W_MAX_FDS];
		int n = kl_etcd_watch_pollfds(w, pf, W_MAX_FDS);

		/* Which of our sockets are ready now (the caller's poll told it only that one is). */
		if (n && poll(pf, (nfds_t)n, 0) > 0) {
			for (int i = 0; i < n; i++) {
				int ev = ((pf[i].revents & POLLIN) ? CURL_CSELECT_IN : 0) |
					 ((pf[i].revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
					 ((pf[i].revents & (POLLERR | POLLHUP)) ? CURL_CSELECT_ERR
										 : 0);

				if (ev)
					curl_multi_socket_action(w->m, pf[i].fd, ev, &running);
				if (w->state != W_STREAMING || !w->h)
					break;
			}
		}
		if (w->state == W_STREAMING && w->timer_ms >= 0 &&
		    now_ms() >= w->timer_set_at + (uint64_t)w->timer_ms) {
			w->timer_ms = -1;
			curl_multi_socket_action(w->m, CURL_SOCKET_TIMEOUT, 0, &running);
		}
	}
	if (w->state == W_STREAMING && w->created_by && now_ms() >= w->created_by) {
		snprintf(w->reason, sizeof(w->reason), "no watch confirmation within %ld ms",
			 w->c->connect_ms + w->c->request_ms);
		w_disconnected(w, CURLE_OK);
		return 0;
	}
	while ((msg = curl_multi_info_read(w->m, &left))) {
		if (msg->msg != CURLMSG_DONE || msg->easy_handle != w->h)
			continue;
		if (w->state == W_STOPPED) {
			w_drop_handle(w);
			w->n_fds = 0;
			w->timer_ms = -1;
			return w->stop_rc;
		}
		w_disconnected(w, msg->data.result);
		break;
	}
	if (w->state == W_STOPPED) {
		w_drop_handle(w);
		w->n_fds = 0;
		w->timer_ms = -1;
		return w->stop_rc;
	}
	return 0;
}

int64_t kl_etcd_watch_next_revision(const struct kl_etcd_watch *w)
{
	return w->next_rev;
}

int kl_etcd_watch_restart(struct kl_etcd_watch *w, int64_t start_revision)
{
	if (start_revision < 0)
		return KL_ETCD_EINVAL;
	w_drop_handle(w);
	w->n_fds = 0;
	w->timer_ms = -1;
	w->next_rev = start_revision;
	w->state = W_WAITING;
	w->retry_at = 0;
	w->backoff_ms = W_BACKOFF_MIN_MS;
	w->stop_rc = 0;
	return 0;
}

void kl_etcd_watch_stats(const struct kl_etcd_watch *w, struct kl_etcd_watch_stats *out)
{
	*out = w->st;
}
