/* SPDX-License-Identifier: BSD-3-Clause */
/* The device side of the NAF Key Center's HTTPS API (PROTOCOL.md section 11). */
#include "kl_naf_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kl_crypto.h"
#include "kl_naf_mt.h"
#include "kl_util.h"

size_t kl_naf_buf_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct kl_naf_buf *b = userdata;
	size_t n = size * nmemb;

	if (b->n + n > KL_NAF_CLI_BODY_MAX) {
		b->overflow = 1;
		return 0; /* curl ends the transfer: CURLE_WRITE_ERROR */
	}
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 1024;
		char *np;

		while (nc < b->n + n + 1)
			nc *= 2;
		np = malloc(nc);
		if (!np)
			return 0;
		if (b->p) {
			memcpy(np, b->p, b->n);
			kl_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

void kl_naf_buf_reset(struct kl_naf_buf *b)
{
	if (b->p)
		kl_memzero(b->p, b->cap);
	b->n = 0;
	b->overflow = 0;
}

void kl_naf_buf_free(struct kl_naf_buf *b)
{
	kl_naf_buf_reset(b);
	free(b->p);
	b->p = NULL;
	b->cap = 0;
}

#define KL_SET(opt, val)                                              \
	do {                                                          \
		if ((rc = curl_easy_setopt(h, opt, val)) != CURLE_OK) \
			return rc;                                    \
	} while (0)

/* What every device handle gets: https only, TLS 1.2 or newer, the server verified. */
static CURLcode tls_common(CURL *h)
{
	CURLcode rc;

	KL_SET(CURLOPT_PROTOCOLS_STR, "https");
	KL_SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	KL_SET(CURLOPT_FOLLOWLOCATION, 0L);
	KL_SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	KL_SET(CURLOPT_SSL_VERIFYPEER, 1L);
	KL_SET(CURLOPT_SSL_VERIFYHOST, 2L);
	KL_SET(CURLOPT_NOSIGNAL, 1L);
	return CURLE_OK;
}

CURLcode kl_naf_curl_tls(CURL *h, const char *cert, const char *key, const char *ca)
{
	CURLcode rc = tls_common(h);

	if (rc != CURLE_OK)
		return rc;
	KL_SET(CURLOPT_SSLCERTTYPE, "PEM");
	KL_SET(CURLOPT_SSLCERT, cert);
	KL_SET(CURLOPT_SSLKEYTYPE, "PEM");
	KL_SET(CURLOPT_SSLKEY, key);
	KL_SET(CURLOPT_CAINFO, ca);
	KL_SET(CURLOPT_CAPATH, NULL);
	return CURLE_OK;
}

/* CURLOPT_SSL_CTX_FUNCTION: the new connection's SSL_CTX gets the preloaded certificate, key
 * and server CA (libcurl loads no CA itself: CAINFO and CAPATH are unset). */
static CURLcode ssl_ctx_cb(CURL *h, void *sslctx, void *parm)
{
	const struct kl_naf_cred *c = parm;
	SSL_CTX *ctx = sslctx;
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);

	(void)h;
	if (SSL_CTX_use_certificate(ctx, c->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, c->key) != 1 ||
	    !st)
		return CURLE_SSL_CERTPROBLEM;
	for (int i = 0; i < sk_X509_num(c->ca); i++)
		if (X509_STORE_add_cert(st, sk_X509_value(c->ca, i)) != 1)
			return CURLE_SSL_CACERT_BADFILE;
	return CURLE_OK;
}

CURLcode kl_naf_curl_tls_preloaded(CURL *h, const struct kl_naf_cred *c)
{
	CURLcode rc = tls_common(h);

	if (rc != CURLE_OK)
		return rc;
	KL_SET(CURLOPT_FORBID_REUSE, 1L);
	KL_SET(CURLOPT_FRESH_CONNECT, 1L);
	KL_SET(CURLOPT_CAINFO, NULL);
	KL_SET(CURLOPT_CAPATH, NULL);
	KL_SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	KL_SET(CURLOPT_SSL_CTX_DATA, (void *)c);
	return CURLE_OK;
}
#undef KL_SET

int kl_naf_cred_load(const char *cert, const char *key, struct kl_naf_cred *c, char *err,
		     size_t errlen)
{
	FILE *f;

	memset(c, 0, sizeof(*c));
	if ((f = fopen(cert, "re"))) {
		c->cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(key, "re"))) {
		c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (!c->cert || !c->key || X509_check_private_key(c->cert, c->key) != 1) {
		kl_errf(err, errlen, "%s", !c->cert ? "no PEM certificate in the file"
					   : !c->key ? "no PEM private key in the key file"
						     : "the key does not match the certificate");
		kl_naf_cred_free(c);
		return -1;
	}
	return 0;
}

void kl_naf_cred_free(struct kl_naf_cred *c)
{
	X509_free(c->cert);
	EVP_PKEY_free(c->key);
	c->cert = NULL;
	c->key = NULL;
}

struct stack_st_X509 *kl_naf_ca_load(const char *ca, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	FILE *f = fopen(ca, "re");
	X509 *x;

	if (!f || !sk) {
		kl_errf(err, errlen, "cannot open: %s", f ? "out of memory" : strerror(errno));
		if (f)
			fclose(f);
		sk_X509_free(sk);
		return NULL;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	ERR_clear_error(); /* the end of the file */
	fclose(f);
	if (!sk_X509_num(sk)) {
		kl_errf(err, errlen, "no PEM certificate in the file");
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

void kl_naf_ca_free(struct stack_st_X509 *ca)
{
	sk_X509_pop_free(ca, X509_free);
}

int kl_naf_url_ok(const char *url)
{
	const char *host, *slash;

	if (!url || strncmp(url, "https://", 8))
		return 0;
	host = url + 8;
	if (!*host || *host == '/')
		return 0;
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '?' || *c == '#')
			return 0;
	slash = strchr(host, '/');
	return !slash || !slash[1];
}

char *kl_naf_request_body(const char *btid, const char *device_id, const char *naf_id_hex)
{
	json_t *o = json_pack("{s:s,s:s}", "b_tid", btid, "device_id", device_id);
	char *s;

	if (o && naf_id_hex && json_object_set_new(o, "naf_id", json_string(naf_id_hex)))
		json_object_clear(o);
	s = o && json_object_size(o) ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* "YYYY-MM-DDTHH:MM:SSZ" */
static int rfc3339_utc(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";

	if (strlen(s) != sizeof(pat) - 1)
		return 0;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return 0;
	return 1;
}

int kl_naf_parse_answer(const char *body, size_t len, struct kl_naf_answer *a, char *err,
			size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *v;
	uint8_t raw[64];
	char naf[2 * KL_NAF_CLI_ID_MAX + 1];
	int n, rc = -1;
	size_t bl;

	memset(a, 0, sizeof(*a));
	if (!o) {
		kl_errf(err, errlen, "answer is not JSON (column %d)", je.column);
		return -1;
	}
	if (!json_is_object(o)) {
		kl_errf(err, errlen, "answer is not a JSON object");
		goto out;
	}
	if (kl_naf_json_text(o, "b_tid", a->btid, sizeof(a->btid), err, errlen) ||
	    kl_naf_json_text(o, "device_id", a->device_id, sizeof(a->device_id), err, errlen) ||
	    kl_naf_json_text(o, "naf_id", naf, sizeof(naf), err, errlen) ||
	    kl_naf_json_text(o, "expires", a->expires, sizeof(a->expires), err, errlen))
		goto out;
	n = (int)kl_naf_hex(naf, a->naf_id, sizeof(a->naf_id));
	if (n <= 0) {
		kl_errf(err, errlen, "\"naf_id\": not hex");
		goto out;
	}
	a->naf_len = (size_t)n;
	if (!rfc3339_utc(a->expires)) {
		kl_errf(err, errlen, "\"expires\": not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)");
		goto out;
	}
	v = json_object_get(o, "lifetime_s");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		kl_errf(err, errlen, "\"lifetime_s\": missing or not a non-negative integer");
		goto out;
	}
	a->lifetime_s = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "ks_local_mt");
	bl = json_is_string(v) ? json_string_length(v) : 0;
	/* base64 of 32 bytes: 44 characters ending in one '=' */
	if (bl != 44 || EVP_DecodeBlock(raw, (const unsigned char *)json_string_value(v), 44) != 33 ||
	    json_string_value(v)[43] != '=' || json_string_value(v)[42] == '=') {
		kl_errf(err, errlen, "\"ks_local_mt\": missing or not base64 of %d bytes",
			KL_NAF_CLI_KEY_LEN);
		goto out;
	}
	memcpy(a->key, raw, KL_NAF_CLI_KEY_LEN);
	rc = 0;
out:
	kl_memzero(raw, sizeof(raw));
	json_decref(o);
	if (rc)
		kl_naf_answer_wipe(a);
	return rc;
}

static void clean_copy(char *out, size_t cap, const char *s)
{
	size_t i;

	for (i = 0; cap && i + 1 < cap && s[i]; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (cap)
		out[i] = 0;
}

int kl_naf_parse_error(const char *body, size_t len, char *error, size_t elen, char *detail,
		       size_t dlen)
{
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *e = json_object_get(o, "error"), *d = json_object_get(o, "detail");
	int rc = -1;

	if (json_is_object(o) && json_is_string(e)) {
		clean_copy(error, elen, json_string_value(e));
		clean_copy(detail, dlen, json_is_string(d) ? json_string_value(d) : "");
		rc = 0;
	} else {
		clean_copy(error, elen, "(no JSON error in the answer)");
		clean_copy(detail, dlen, "");
	}
	json_decref(o);
	return rc;
}

int kl_naf_cert_cn(const char *pem, char *cn, size_t cap, char *err, size_t errlen)
{
	FILE *f = fopen(pem, "re");
	X509 *x;
	X509_NAME *nm;
	const ASN1_STRING *s;
	int i, n, rc = -1;

	if (!f) {
		kl_errf(err, errlen, "cannot open: %s", strerror(errno));
		return -1;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		kl_errf(err, errlen, "no PEM certificate in the file");
		return -1;
	}
	nm = X509_get_subject_name(x);
	i = nm ? X509_NAME_get_index_by_NID(nm, NID_commonName, -1) : -1;
	if (i < 0 || X509_NAME_get_index_by_NID(nm, NID_commonName, i) >= 0) {
		kl_errf(err, errlen, i < 0 ? "the certificate's subject has no CN"
					   : "the certificate's subject has more than one CN");
		goto out;
	}
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i));
	n = s ? ASN1_STRING_length(s) : 0;
	if (n <= 0 || (size_t)n >= cap) {
		kl_errf(err, errlen, "the certificate's CN is empty or longer than %zu bytes", cap - 1);
		goto out;
	}
	memcpy(cn, ASN1_STRING_get0_data(s), (size_t)n);
	cn[n] = 0;
	for (int k = 0; k < n; k++)
		if ((unsigned char)cn[k] < 0x20 || (unsigned char)cn[k] >= 0x7f) {
			kl_errf(err, errlen, "the certificate's CN is not printable ASCII");
			goto out;
		}
	rc = 0;
out:
	X509_free(x);
	return rc;
}

void kl_naf_answer_wipe(struct kl_naf_answer *a)
{
	kl_memzero(a, sizeof(*a));
}
