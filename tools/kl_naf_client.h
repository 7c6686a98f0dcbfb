/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device side of the NAF Key Center's HTTPS API (PROTOCOL.md section 11), shared by
 * keyline-device and keyline-burst --kind naf: libcurl's TLS settings for a device (its
 * certificate and key, the Key Center's CA, TLS 1.2 at least), the request body, the answer and
 * error parsers, and the Device_ID of a certificate (its subject CN).
 */
#ifndef KL_NAF_CLIENT_H
#define KL_NAF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#define KL_NAF_CLI_KEY_LEN 32
#define KL_NAF_CLI_ID_MAX 255	/* B-TID, NAF_ID (bytes), Device_ID */
#define KL_NAF_CLI_BODY_MAX 65536 /* answers longer than this are cut off (and malformed) */
#define KL_NAF_DEFAULT_URL "https://localhost:8443"

/** A bounded response body; wiped by kl_naf_buf_free (an answer holds a key). */
struct kl_naf_buf {
	char *p;
	size_t n, cap;
	int overflow;
};

/** CURLOPT_WRITEFUNCTION for a struct kl_naf_buf (CURLOPT_WRITEDATA). */
size_t kl_naf_buf_write(char *data, size_t size, size_t nmemb, void *userdata);
void kl_naf_buf_reset(struct kl_naf_buf *b);
void kl_naf_buf_free(struct kl_naf_buf *b);

/**
 * TLS settings of a device (or operator) handle: client certificate and key (PEM files), the
 * CA that signs the Key Center's certificate, peer and host verification on, TLS 1.2 or newer,
 * https only. @return CURLE_OK or the first failing option's code.
 */
CURLcode kl_naf_curl_tls(CURL *h, const char *cert, const char *key, const char *ca);

/**
 * A device's credentials parsed once, for a connection per request (keyline-burst
 * --full-handshake). OpenSSL 3 decodes PEM and DER keys slowly (its decoder framework, ~1 ms per
 * file), and libcurl would read the files again for every connection: kl_naf_curl_tls_preloaded
 * instead hands these objects to each new connection's SSL_CTX. The server CA's certificates
 * (ca) are shared.
 */
struct kl_naf_cred {
	struct x509_st *cert;
	struct evp_pkey_st *key;
	struct stack_st_X509 *ca;	/* not owned by the cred (kl_naf_ca_load / _free) */
};

/** Load a PEM certificate and its private key. @return 0, or -1 with err set. */
int kl_naf_cred_load(const char *cert, const char *key, struct kl_naf_cred *c, char *err,
		     size_t errlen);
void kl_naf_cred_free(struct kl_naf_cred *c);
/** Every certificate of a PEM CA file. @return the stack, or NULL with err set. */
struct stack_st_X509 *kl_naf_ca_load(const char *ca, char *err, size_t errlen);
void kl_naf_ca_free(struct stack_st_X509 *ca);

/**
 * kl_naf_curl_tls's settings with the credentials from c (they must outlive the handle's
 * transfers): no file is read per connection, the server is verified against c->ca only. libcurl
 * cannot tell connections with such credentials apart, so this also sets FORBID_REUSE and
 * FRESH_CONNECT (a new connection for every transfer, never one of another device).
 */
CURLcode kl_naf_curl_tls_preloaded(CURL *h, const struct kl_naf_cred *c);

/** Whether url is an https:// URL without a path beyond "/" (the API's base). */
int kl_naf_url_ok(const char *url);

/** The POST /v1/ks-local-mt body: {"b_tid", "device_id"[, "naf_id"]} (malloc'd; NULL: ENOMEM). */
char *kl_naf_request_body(const char *btid, const char *device_id, const char *naf_id_hex);

/** A 200 answer. */
struct kl_naf_answer {
	char btid[KL_NAF_CLI_ID_MAX + 1];
	char device_id[KL_NAF_CLI_ID_MAX + 1];
	uint8_t naf_id[KL_NAF_CLI_ID_MAX];
	size_t naf_len;
	uint8_t key[KL_NAF_CLI_KEY_LEN];
	char expires[40];	/* RFC 3339 UTC as sent */
	uint64_t lifetime_s;
};

/**
 * Parse a 200 answer: every member present and well-formed (ks_local_mt base64 of 32 bytes,
 * naf_id hex, expires RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ", lifetime_s a non-negative integer).
 * Never echoes values. @return 0, or -1 with err set (a wiped *a).
 */
int kl_naf_parse_answer(const char *body, size_t len, struct kl_naf_answer *a, char *err,
			size_t errlen);

/**
 * An error answer's {"error", "detail"} (each cut to its buffer, control characters replaced).
 * @return 0, or -1 when the body is not such an object (error/detail then say so).
 */
int kl_naf_parse_error(const char *body, size_t len, char *error, size_t elen, char *detail,
		       size_t dlen);

/** The subject CN of the first certificate in a PEM file. @return 0, or -1 with err set. */
int kl_naf_cert_cn(const char *pem, char *cn, size_t cap, char *err, size_t errlen);

/** Wipe a parsed answer. */
void kl_naf_answer_wipe(struct kl_naf_answer *a);

#endif
