/* SPDX-License-Identifier: BSD-3-Clause */
/* The NAF Key Center's HTTPS server (kl_naf.h). */
#include "kl_naf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <microhttpd.h>

#include "kl_crypto.h"
#include "kl_naf_keys.h"
#include "kl_naf_req.h"
#include "kl_naf_stats.h"
#include "kl_ratelimit.h"
#include "kl_util.h"
#include "kl_zn.h"

_Static_assert(KL_NAF_REQ_BTID_MAX == KL_NAF_BTID_MAX && KL_NAF_REQ_BTID_MAX == KL_ZN_BTID_MAX &&
		       KL_NAF_REQ_DEVICE_ID_MAX == KL_NAF_DEVICE_ID_MAX &&
		       KL_NAF_REQ_NAF_ID_MAX == KL_NAF_ID_MAX &&
		       KL_CONFIG_NAF_ID_MAX == KL_ZN_NAF_ID_MAX && KL_NAF_KEY_LEN == KL_KDF_OUT_LEN,
	       "NAF limits differ between kl_naf_req.h, kl_naf_keys.h, kl_zn.h and kl_config.h");

/* TLS 1.3, or TLS 1.2 with ECDHE key exchange and AEAD ciphers; nothing older, no RSA/DHE key
 * exchange, no CBC. */
#define NAF_PRIORITIES                                                                          \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-CIPHER-ALL:" \
	"+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:%SERVER_PRECEDENCE"
#define SPARE_CONNECTIONS 4
#define HANDSHAKE_FAILED_LOG "received handshake message out of context"
#define WATCHDOG_TICK_MS 200
#define CHAIN_MAX 8
#define RL_SLOTS 65536u

enum { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* One TLS connection: its deadline, and the client certificate checked once per connection. */
struct conn {
	int fd;		   /* -1: free slot */
	bool closing;	   /* shut down by the watchdog */
	bool requested;	   /* a request arrived (the handshake completed) */
	bool no_cert;	   /* check_cert found no client certificate */
	uint64_t since_ms; /* connection start or the last answer */
	/* the certificate last verified on this connection (DER hash) and what it gave */
	bool checked;
	uint8_t cert_hash[32];
	int device_ok, operator_ok; /* 1 verified, 0 not */
	char why[128];		    /* the device CA's refusal */
	char why_op[128];	    /* the operator CA's refusal */
	char cn[KL_NAF_DEVICE_ID_MAX + 1];
	char serial[KL_NAF_SERIAL_MAX + 1];
};

struct kl_naf {
	const struct kl_config_naf *cfg;
	struct kl_naf_keys *keys;
	struct kl_zn *zn;
	struct kl_naf_stats *stats;
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	struct MHD_Daemon *d;
	int lfd;
	uint16_t port;
	gnutls_x509_trust_list_t tl_device, tl_operator;
	char *cert_pem, *key_pem, *trust_pem;
	struct kl_ratelimit *rl; /* per certificate; under rl_lock */
	pthread_mutex_t rl_lock;
	pthread_mutex_t conn_lock; /* conn[] */
	unsigned nslots;
	struct conn *conn;
	pthread_t watchdog;
	bool watchdog_running;
	int stop;
	uint64_t timeout_ms;
	int default_id; /* index into cfg->ids */
};

/* A request in progress (MHD's req_cls). */
struct req {
	enum kl_naf_route route;
	bool too_large;
	bool answered;
	size_t len;
	char body[]; /* max_body + 1 */
};

__attribute__((format(printf, 3, 4))) static void nlog(const struct kl_naf *n, int level,
						       const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n->log)
		n->log(n->log_arg, level, msg);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- answers -------------------------------------------------------------------------------- */

/* Answer bodies may hold a key: wiped before they are freed. */
static void wipe_free(void *p)
{
	if (p) {
		kl_memzero(p, strlen(p));
		free(p);
	}
}

static enum MHD_Result send_json(struct kl_naf *n, struct MHD_Connection *c, struct req *r,
				 unsigned status, char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer_with_free_callback(strlen(text), text, wipe_free);
	if (!resp) {
		wipe_free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
					r && r->route == KL_NAF_ROUTE_INVALIDATE ? "DELETE" : "POST");
	if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (status == MHD_HTTP_CONTENT_TOO_LARGE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ok = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	if (r)
		r->answered = true;
	kl_naf_stats_count(n->stats, r ? r->route : KL_NAF_ROUTE_OTHER, status);
	return ok;
}

__attribute__((format(printf, 6, 7))) static enum MHD_Result
send_error(struct kl_naf *n, struct MHD_Connection *c, struct req *r, unsigned status,
	   const char *error, const char *fmt, ...)
{
	char detail[320];
	json_t *j;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	j = json_pack("{s:s,s:s}", "error", error, "detail", detail);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return send_json(n, c, r, status, text);
}

/* ---- client certificates -------------------------------------------------------------------- */

static const char *verify_reason(unsigned status)
{
	if (status & GNUTLS_CERT_REVOKED)
		return "the certificate is revoked";
	if (status & GNUTLS_CERT_EXPIRED)
		return "the certificate has expired";
	if (status & GNUTLS_CERT_NOT_ACTIVATED)
		return "the certificate is not yet valid";
	if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		return "the certificate is not issued by the expected CA";
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return "the certificate is not for TLS client authentication";
	if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
		return "the certificate uses an insecure algorithm";
	return "the certificate does not verify";
}

static int verify_with(gnutls_x509_trust_list_t tl, gnutls_x509_crt_t *chain, unsigned n,
		       char *why, size_t wl)
{
	gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
					  .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT };
	unsigned status = 0;
	int rc;

	rc = gnutls_x509_trust_list_verify_crt2(tl, chain, n, &purpose, 1, 0, &status, NULL);
	if (rc < 0) {
		snprintf(why, wl, "verification failed: %s", gnutls_strerror(rc));
		return 0;
	}
	if (status) {
		snprintf(why, wl, "%s", verify_reason(status));
		return 0;
	}
	return 1;
}

/* Check the connection's client certificate (once per connection and certificate): its chain
 * against the device CA and the operator CA (with the CRLs), its CN and serial. @return 0, or
 * -1 with why set (no certificate, unusable). */
static int check_cert(struct kl_naf *n, struct MHD_Connection *c, struct conn *k, char *why,
		      size_t wl)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_x509_crt_t chain[CHAIN_MAX];
	const gnutls_datum_t *certs;
	unsigned ncerts = 0, nchain = 0;
	uint8_t hash[32], serial[64];
	size_t sl = sizeof(serial), cl;
	int rc = -1;

	if (!ci || !ci->tls_session) {
		snprintf(why, wl, "no TLS session");
		return -1;
	}
	certs = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &ncerts);
	k->no_cert = !certs || ncerts == 0;
	if (k->no_cert) {
		snprintf(why, wl, "no client certificate: one from the device CA is required");
		return -1;
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, hash) < 0) {
		snprintf(why, wl, "cannot hash the client certificate");
		return -1;
	}
	if (k->checked && memcmp(k->cert_hash, hash, sizeof(hash)) == 0)
		return 0;
	k->checked = false;
	if (ncerts > CHAIN_MAX)
		ncerts = CHAIN_MAX;
	for (; nchain < ncerts; nchain++) {
		if (gnutls_x509_crt_init(&chain[nchain]) < 0)
			goto out;
		if (gnutls_x509_crt_import(chain[nchain], &certs[nchain], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(chain[nchain]);
			snprintf(why, wl, "the client certificate cannot be parsed");
			goto out;
		}
	}
	k->device_ok = verify_with(n->tl_device, chain, nchain, k->why, sizeof(k->why));
	k->operator_ok = verify_with(n->tl_operator, chain, nchain, k->why_op, sizeof(k->why_op));
	cl = sizeof(k->cn);
	k->cn[0] = '\0';
	if (gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, k->cn,
					  &cl) < 0 ||
	    !kl_naf_device_id_ok(k->cn, strlen(k->cn))) {
		k->cn[0] = '\0';
		k->device_ok = 0;
		snprintf(k->why, sizeof(k->why),
			 "the certificate's subject has no usable common name (the Device_ID)");
	}
	k->serial[0] = '\0';
	if (gnutls_x509_crt_get_serial(chain[0], serial, &sl) >= 0) {
		size_t i = 0, o = 0;

		while (i + 1 < sl && serial[i] == 0)
			i++;
		for (; i < sl && o + 2 < sizeof(k->serial); i++)
			o += (size_t)snprintf(k->serial + o, sizeof(k->serial) - o, "%02x", serial[i]);
		/* lowercase hex without leading zeros (kl_naf_keys.h) */
		while (k->serial[0] == '0' && k->serial[1])
			memmove(k->serial, k->serial + 1, strlen(k->serial));
	}
	memcpy(k->cert_hash, hash, sizeof(hash));
	k->checked = true;
	rc = 0;
out:
	for (unsigned i = 0; i < nchain; i++)
		gnutls_x509_crt_deinit(chain[i]);
	return rc;
}

/* Per-certificate token bucket (the certificate's hash is the source). */
static bool rate_ok(struct kl_naf *n, const struct conn *k)
{
	uint8_t key[1][16], allow = 1;

	if (!n->rl)
		return true;
	memcpy(key[0], k->cert_hash, 16);
	pthread_mutex_lock(&n->rl_lock);
	kl_rl_take_bulk(n->rl, (const uint8_t(*)[16])key, 1, mono_ns(), &allow);
	pthread_mutex_unlock(&n->rl_lock);
	return allow != 0;
}

/* ---- the routes ----------------------------------------------------------------------------- */

static void b64_of(const uint8_t *b, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) |
			     (i + 2 < n ? b[i + 2] : 0);

		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static const struct kl_config_naf_id *find_naf_id(const struct kl_naf *n, const uint8_t *id,
						  size_t len)
{
	for (unsigned i = 0; i < n->cfg->n_ids; i++)
		if (n->cfg->ids[i].len == len && memcmp(n->cfg->ids[i].id, id, len) == 0)
			return &n->cfg->ids[i];
	return NULL;
}

static enum MHD_Result issue(struct kl_naf *n, struct MHD_Connection *c, struct req *r,
			     const struct conn *k)
{
	const struct kl_config_naf_id *nid;
	struct kl_zn_answer za;
	struct kl_naf_req q;
	uint8_t key[KL_NAF_KEY_LEN];
	char detail[200], nafhex[2 * KL_NAF_ID_MAX + 1], keyb64[48], expires[32];
	uint64_t now = (uint64_t)time(NULL), expiry;
	enum kl_naf_issue_rc irc;
	enum kl_zn_status zs;
	struct tm tm;
	time_t et;
	char *text;
	int rc;

	if (kl_naf_req_parse(r->body, r->len, &q, detail, sizeof(detail)))
		return send_error(n, c, r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", detail);
	if (strcmp(q.device_id, k->cn) != 0)
		return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
				  "device_id differs from the client certificate's subject common "
				  "name");
	nid = q.naf_len ? find_naf_id(n, q.naf_id, q.naf_len) : &n->cfg->ids[n->default_id];
	if (!nid)
		return send_error(n, c, r, MHD_HTTP_BAD_REQUEST, "bad_request",
				  "naf_id: not one of this Key Center's NAF identities");
	if (kl_naf_keys_blocked(n->keys, q.device_id, k->serial))
		return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
				  "the device or its certificate is blocklisted");
	zs = kl_zn_get(n->zn, q.btid, nid->id, nid->len, &za);
	switch (zs) {
	case KL_ZN_OK:
		break;
	case KL_ZN_UNKNOWN:
		return send_error(n, c, r, MHD_HTTP_NOT_FOUND, "not_found",
				  "the BSF does not know this B-TID (result %" PRIu32
				  "): bootstrap again",
				  za.result_code);
	case KL_ZN_EXPIRED:
		return send_error(n, c, r, MHD_HTTP_NOT_FOUND, "not_found",
				  "the bootstrapping of this B-TID has expired: bootstrap again");
	case KL_ZN_NOT_AUTHORISED:
		return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
				  "the BSF refused this NAF for the subscriber (result %" PRIu32 ")",
				  za.result_code);
	default:
		kl_memzero(&za, sizeof(za));
		return send_error(n, c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
				  "the BSF is %s", zs == KL_ZN_UNREACHABLE ? "unreachable"
									  : "giving unusable answers");
	}
	if (za.expiry <= now) {
		kl_memzero(&za, sizeof(za));
		return send_error(n, c, r, MHD_HTTP_NOT_FOUND, "not_found",
				  "the bootstrapping of this B-TID has expired: bootstrap again");
	}
	{
		struct kl_kdf_param v[3] = {
			{ (const uint8_t *)q.btid, strlen(q.btid) },
			{ nid->id, nid->len },
			{ (const uint8_t *)q.device_id, strlen(q.device_id) },
		};

		rc = kl_derive(NULL, KL_KDF_KS_LOCAL_MT, za.ks_naf, sizeof(za.ks_naf), v, 3, key);
	}
	kl_memzero(za.ks_naf, sizeof(za.ks_naf));
	if (rc) {
		kl_memzero(key, sizeof(key));
		return send_error(n, c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				  "the key derivation failed");
	}
	expiry = za.expiry;
	if (expiry > now + nid->max_lifetime_s)
		expiry = now + nid->max_lifetime_s;
	irc = kl_naf_keys_issue(n->keys, q.btid, nid->id, nid->len, q.device_id, k->serial, key,
				expiry, now);
	if (irc != KL_NAF_ISSUED) {
		kl_memzero(key, sizeof(key));
		if (irc == KL_NAF_INVALIDATED)
			return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
					  "this key was invalidated: bootstrap again for a new "
					  "B-TID");
		if (irc == KL_NAF_BLOCKED)
			return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
					  "the device or its certificate is blocklisted");
		return send_error(n, c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
				  irc == KL_NAF_FULL ? "the Key Center holds as many keys as it may"
						     : "the key could not be stored");
	}
	kl_hex(nid->id, nid->len, nafhex);
	b64_of(key, sizeof(key), keyb64);
	kl_memzero(key, sizeof(key));
	et = (time_t)expiry;
	gmtime_r(&et, &tm);
	strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* built by hand: jansson would keep copies of the key's text in freed blocks */
	{
		size_t cap = strlen(q.btid) + strlen(nafhex) + strlen(q.device_id) + 256;

		text = malloc(cap);
		if (text)
			snprintf(text, cap,
				 "{\"b_tid\":\"%s\",\"naf_id\":\"%s\",\"device_id\":\"%s\","
				 "\"ks_local_mt\":\"%s\",\"expires\":\"%s\",\"lifetime_s\":%" PRIu64
				 "}",
				 q.btid, nafhex, q.device_id, keyb64, expires, expiry - now);
	}
	kl_memzero(keyb64, sizeof(keyb64));
	if (!text)
		return send_error(n, c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
				  "out of memory");
	return send_json(n, c, r, MHD_HTTP_OK, text);
}

static enum MHD_Result invalidate(struct kl_naf *n, struct MHD_Connection *c, struct req *r,
				  const char *url)
{
	struct kl_naf_req q;
	char detail[200];
	json_t *j;
	int rc = kl_naf_path_parse(url, strlen(url), &q, detail, sizeof(detail));

	if (rc)
		return send_error(n, c, r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", detail);
	rc = kl_naf_keys_invalidate_wait(n->keys, q.btid, q.device_id);
	if (rc == -ENOENT)
		return send_error(n, c, r, MHD_HTTP_NOT_FOUND, "not_found",
				  "no key was issued to this device for this B-TID");
	if (rc)
		return send_error(n, c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
				  "the invalidation could not be stored (%s)", strerror(-rc));
	nlog(n, LOG_INFO, "key of device %s for a B-TID invalidated by the operator", q.device_id);
	j = json_pack("{s:s,s:s,s:b}", "b_tid", q.btid, "device_id", q.device_id, "invalidated", 1);
	{
		char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

		json_decref(j);
		return send_json(n, c, r, MHD_HTTP_OK, text);
	}
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	struct kl_naf *n = cls;
	struct req *r = *req_cls;
	struct conn *k = conn_of(c);
	bool post = !strcmp(method, MHD_HTTP_METHOD_POST);
	bool del = !strcmp(method, MHD_HTTP_METHOD_DELETE);
	char why[160];

	(void)version;
	if (!r) {
		const char *cl;

		r = calloc(1, sizeof(*r) + n->cfg->max_body + 1);
		if (!r)
			return MHD_NO;
		*req_cls = r;
		if (k && !k->requested) {
			k->requested = true;
			kl_naf_stats_add(&n->stats->handshakes, 1);
		}
		if (!strcmp(url, KL_NAF_REQ_PATH)) {
			r->route = KL_NAF_ROUTE_ISSUE;
			if (!post)
				return send_error(n, c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
						  "method_not_allowed", "%s takes POST",
						  KL_NAF_REQ_PATH);
		} else if (!strncmp(url, KL_NAF_REQ_PATH "/", sizeof(KL_NAF_REQ_PATH))) {
			r->route = KL_NAF_ROUTE_INVALIDATE;
			if (!del)
				return send_error(n, c, r, MHD_HTTP_METHOD_NOT_ALLOWED,
						  "method_not_allowed",
						  "%s/{b_tid}/{device_id} takes DELETE",
						  KL_NAF_REQ_PATH);
		} else {
			r->route = KL_NAF_ROUTE_OTHER;
			return send_error(n, c, r, MHD_HTTP_NOT_FOUND, "not_found",
					  "no such resource: the Key Center serves POST %s and "
					  "DELETE %s/{b_tid}/{device_id}",
					  KL_NAF_REQ_PATH, KL_NAF_REQ_PATH);
		}
		if (!k || check_cert(n, c, k, why, sizeof(why))) {
			kl_naf_stats_add(k && k->no_cert ? &n->stats->cert_missing
							 : &n->stats->cert_refused,
					 1);
			return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden", "%s",
					  k ? why : "no connection state");
		}
		if ((post && !k->device_ok) || (del && !k->operator_ok))
			kl_naf_stats_add(&n->stats->cert_refused, 1);
		if (post && !k->device_ok)
			return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
					  "device certificate refused: %s", k->why);
		if (del && !k->operator_ok)
			return send_error(n, c, r, MHD_HTTP_FORBIDDEN, "forbidden",
					  "an operator certificate is required: %s", k->why_op);
		if (!rate_ok(n, k))
			return send_error(n, c, r, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
					  "more than %u requests per second from this certificate",
					  n->cfg->rate_per_s);
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > n->cfg->max_body)
			return send_error(n, c, r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
					  "the body may have at most %u bytes", n->cfg->max_body);
		return MHD_YES;
	}
	if (r->answered) { /* the rest of a body after an early answer */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->len + *upload_size > n->cfg->max_body)
			r->too_large = true;
		else
			memcpy(r->body + r->len, upload, *upload_size);
		if (!r->too_large)
			r->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large)
		return send_error(n, c, r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
				  "the body may have at most %u bytes", n->cfg->max_body);
	if (r->route == KL_NAF_ROUTE_ISSUE)
		return issue(n, c, r, k);
	return invalidate(n, c, r, url);
}

static void request_done(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct kl_naf *n = cls;
	struct req *r = *req_cls;
	struct conn *k = conn_of(c);

	(void)toe;
	if (r) {
		kl_memzero(r->body, r->len);
		free(r);
		*req_cls = NULL;
	}
	if (k) {
		pthread_mutex_lock(&n->conn_lock);
		k->since_ms = mono_ms();
		pthread_mutex_unlock(&n->conn_lock);
	}
}

/* ---- connections and their deadlines -------------------------------------------------------- */

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
			enum MHD_ConnectionNotificationCode toe)
{
	struct kl_naf *n = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *k = *socket_ctx;

	pthread_mutex_lock(&n->conn_lock);
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (k) {
			if (!k->requested)
				kl_naf_stats_add(&n->stats->conn_no_request, 1);
			kl_memzero(k, sizeof(*k));
			k->fd = -1;
			kl_naf_stats_add(&n->stats->connections, -1);
		}
		pthread_mutex_unlock(&n->conn_lock);
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	for (unsigned i = 0; i < n->nslots && !k; i++)
		if (n->conn[i].fd < 0)
			k = &n->conn[i];
	if (!ci || !k) { /* cannot happen: MHD's limit is below the table's size */
		if (ci)
			shutdown(ci->connect_fd, SHUT_RDWR);
		pthread_mutex_unlock(&n->conn_lock);
		return;
	}
	memset(k, 0, sizeof(*k));
	k->fd = ci->connect_fd;
	k->since_ms = mono_ms();
	*socket_ctx = k;
	kl_naf_stats_add(&n->stats->connections, 1);
	pthread_mutex_unlock(&n->conn_lock);
}

/* MHD's own timeout closes silent connections only: a client trickling bytes would keep its
 * slot. Each request must be complete connection_timeout_s after the connection opened or the
 * previous answer went out; the socket is shut down (MHD then closes it as ended by the peer). */
static void *watchdog(void *arg)
{
	struct kl_naf *n = arg;

	while (!__atomic_load_n(&n->stop, __ATOMIC_ACQUIRE)) {
		uint64_t now;

		usleep(WATCHDOG_TICK_MS * 1000);
		now = mono_ms();
		pthread_mutex_lock(&n->conn_lock);
		for (unsigned i = 0; i < n->nslots; i++) {
			struct conn *k = &n->conn[i];

			if (k->fd >= 0 && !k->closing && now - k->since_ms >= n->timeout_ms) {
				shutdown(k->fd, SHUT_RDWR);
				k->closing = true;
				kl_naf_stats_add(&n->stats->conn_timed_out, 1);
			}
		}
		pthread_mutex_unlock(&n->conn_lock);
	}
	return NULL;
}

/* The raw path: B-TIDs hold '/' as %2F, which must not become a path separator. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
	(void)cls;
	(void)c;
	return strlen(uri);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct kl_naf *n = cls;
	char msg[400];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	/* MHD (0.9.75 to 1.0) tells a failed gnutls_handshake() (an error, not EAGAIN) only here,
	 * in MHD_run_tls_handshake_, before closing the connection; its TLS state is not exposed
	 * and the session is deinitialised before the connection's CLOSED notification. */
	if (strstr(msg, HANDSHAKE_FAILED_LOG))
		kl_naf_stats_add(&n->stats->tls_failed, 1);
	nlog(n, LOG_DEBUG, "https: %s", msg);
}

/* ---- start and stop ------------------------------------------------------------------------- */

static char *read_pem(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf = NULL;
	ssize_t got;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (1 << 20)) {
		snprintf(err, errlen, "%s: not a regular file of 1 byte to 1 MiB", path);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		snprintf(err, errlen, "%s: cannot read", path);
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	return buf;
}

static void free_pem(char *p)
{
	if (p) {
		kl_memzero(p, strlen(p));
		free(p);
	}
}

/* A trust list of one CA file (and the CRLs of crl_pem that it signs). */
static int make_tl(gnutls_x509_trust_list_t *tl, const char *ca_path, const char *ca_pem,
		   const char *crl_pem, unsigned *crls, char *err, size_t errlen)
{
	gnutls_datum_t d = { (unsigned char *)(uintptr_t)ca_pem, (unsigned)strlen(ca_pem) };
	int rc;

	if (gnutls_x509_trust_list_init(tl, 0) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = gnutls_x509_trust_list_add_trust_mem(*tl, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (rc <= 0) {
		snprintf(err, errlen, "%s: no CA certificate in it (%s)", ca_path,
			 rc < 0 ? gnutls_strerror(rc) : "none found");
		return -1;
	}
	if (crl_pem) {
		gnutls_datum_t cd = { (unsigned char *)(uintptr_t)crl_pem, (unsigned)strlen(crl_pem) };

		rc = gnutls_x509_trust_list_add_trust_mem(*tl, NULL, &cd, GNUTLS_X509_FMT_PEM,
							  GNUTLS_TL_VERIFY_CRL, 0);
		if (rc > 0)
			*crls += (unsigned)rc;
	}
	return 0;
}

/* The CPUs the HTTPS threads run on: the configured ones, else every CPU but the workers'. */
static int pick_cpus(const struct kl_naf_params *p, cpu_set_t *set, char *err, size_t errlen)
{
	const struct kl_config_naf *cfg = p->cfg;
	int ncpu = get_nprocs_conf();

	CPU_ZERO(set);
	for (int cpu = 0; cpu < ncpu && cpu < KL_CONFIG_MAX_CPUS; cpu++) {
		bool worker = p->worker_cpus && (p->worker_cpus[cpu / 64] >> (cpu % 64) & 1);
		bool want = cfg->has_cpus ? (cfg->cpus[cpu / 64] >> (cpu % 64) & 1) : !worker;

		if (cfg->has_cpus && want && worker) {
			snprintf(err, errlen,
				 "naf_key_center.cpus: CPU %d runs a worker lcore: the HTTPS "
				 "threads must not share the workers' cores",
				 cpu);
			return -1;
		}
		if (want)
			CPU_SET(cpu, set);
	}
	if (CPU_COUNT(set) == 0) {
		if (cfg->has_cpus) {
			snprintf(err, errlen, "naf_key_center.cpus: none of %s exists (this machine "
					      "has %d CPUs)",
				 cfg->cpus_text, ncpu);
			return -1;
		}
		for (int cpu = 0; cpu < ncpu && cpu < CPU_SETSIZE; cpu++)
			CPU_SET(cpu, set); /* every CPU runs a worker: share them (logged) */
		return 1;
	}
	return 0;
}

static int listen_socket(const struct kl_config_naf *cfg, uint16_t *port, char *err,
			 size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, zero = 0;
	struct in_addr a4;

	memset(&ss, 0, sizeof(ss));
	if (cfg->listen[0] && inet_pton(AF_INET, cfg->listen, &a4) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = a4;
		s4->sin_port = htons(cfg->port);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		if (cfg->listen[0] && inet_pton(AF_INET6, cfg->listen, &s6->sin6_addr) != 1) {
			snprintf(err, errlen, "naf_key_center.listen: not an address");
			return -1;
		}
		s6->sin6_port = htons(cfg->port);
		sl = sizeof(*s6);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6) /* "" listens on both families, an IPv6 address on v6 only */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, cfg->listen[0] ? &one : &zero,
			   sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1024)) {
		snprintf(err, errlen, "cannot listen on %s port %u: %s",
			 cfg->listen[0] ? cfg->listen : "all addresses", cfg->port, strerror(errno));
		close(fd);
		return -1;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

void kl_naf_get_stats(struct kl_naf *n, struct kl_zn_stats *zs, struct kl_naf_keys_stats *ks)
{
	kl_zn_get_stats(n->zn, zs);
	kl_naf_keys_get_stats(n->keys, ks);
}

static void pull(void *arg, struct kl_zn_stats *zs, struct kl_naf_keys_stats *ks)
{
	kl_naf_get_stats(arg, zs, ks);
}

struct kl_naf *kl_naf_start(const struct kl_naf_params *p, int *config, char *err,
			    size_t errlen)
{
	const struct kl_config_naf *cfg = p->cfg;
	struct kl_naf_keys_params kp = { .store = p->store, .max_keys = cfg->max_keys };
	struct kl_zn_params zp = {
		.bsf_identity = cfg->bsf.identity,
		.bsf_address = cfg->bsf.address,
		.bsf_port = cfg->bsf.port,
		.timeout_ms = cfg->bsf.timeout_ms,
	};
	char *crl_pem = NULL, *dev_pem = NULL, *op_pem = NULL, e2[256];
	unsigned crls = 0, flags;
	cpu_set_t cpus, saved;
	struct kl_naf *n;
	int shared;

	*config = 0;
	n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->cfg = cfg;
	n->stats = p->stats;
	n->log = p->log;
	n->log_arg = p->log_arg;
	n->lfd = -1;
	n->timeout_ms = (uint64_t)cfg->connection_timeout_s * 1000u;
	pthread_mutex_init(&n->rl_lock, NULL);
	pthread_mutex_init(&n->conn_lock, NULL);
	for (unsigned i = 0; i < cfg->n_ids; i++)
		if (cfg->ids[i].is_default)
			n->default_id = (int)i;
	if (!n->stats) {
		static struct kl_naf_stats none = KL_NAF_STATS_INIT; /* counted, never shown */

		n->stats = &none;
	}

	/* the files first: a configuration error is found before anything starts */
	*config = 1;
	if (!(n->cert_pem = read_pem(cfg->tls_cert, err, errlen)) ||
	    !(n->key_pem = read_pem(cfg->tls_key, err, errlen)) ||
	    !(dev_pem = read_pem(cfg->device_ca, err, errlen)) ||
	    !(op_pem = read_pem(cfg->operator_ca, err, errlen)) ||
	    (cfg->crl[0] && !(crl_pem = read_pem(cfg->crl, err, errlen))))
		goto fail;
	if (make_tl(&n->tl_device, cfg->device_ca, dev_pem, crl_pem, &crls, err, errlen) ||
	    make_tl(&n->tl_operator, cfg->operator_ca, op_pem, crl_pem, &crls, err, errlen))
		goto fail;
	if (crl_pem && crls == 0) {
		snprintf(err, errlen, "%s: no CRL in it signed by the device CA or the operator CA",
			 cfg->crl);
		goto fail;
	}
	n->trust_pem = malloc(strlen(dev_pem) + strlen(op_pem) + 2);
	if (!n->trust_pem) {
		snprintf(err, errlen, "out of memory");
		*config = 0;
		goto fail;
	}
	sprintf(n->trust_pem, "%s\n%s", dev_pem, op_pem);
	shared = pick_cpus(p, &cpus, err, errlen);
	if (shared < 0)
		goto fail;
	n->lfd = listen_socket(cfg, &n->port, err, errlen);
	if (n->lfd < 0)
		goto fail;
	*config = 0;

	if (cfg->rate_per_s) {
		struct kl_rl_params rp = { .pps = cfg->rate_per_s,
					   .burst = cfg->rate_burst,
					   .slots = RL_SLOTS,
					   .hz = 1000000000u };

		n->rl = kl_rl_create(&rp);
		if (!n->rl) {
			snprintf(err, errlen, "rate limiter: %s", strerror(errno));
			goto fail;
		}
	}
	n->nslots = cfg->max_connections + SPARE_CONNECTIONS;
	n->conn = calloc(n->nslots, sizeof(*n->conn));
	if (!n->conn) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < n->nslots; i++)
		n->conn[i].fd = -1;
	n->keys = kl_naf_keys_open(&kp, e2, sizeof(e2));
	if (!n->keys) {
		snprintf(err, errlen, "issued keys: %s", e2);
		goto fail;
	}
	n->zn = kl_zn_start(p->dia, &zp, e2, sizeof(e2));
	if (!n->zn) {
		snprintf(err, errlen, "Zn client: %s", e2);
		goto fail;
	}

	/* MHD's threads inherit the creating thread's affinity: set it around their creation */
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	/* poll, not epoll: MHD 0.9.75's epoll loop spins on recv() during TLS handshakes (half the
	 * server's CPU in __libc_recv under perf; full handshakes/s 74 -> 264, keep-alive keys/s
	 * 3,800 -> 7,900 on the 2-core VM with keyline-burst --kind naf on the same cores) */
	flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	n->d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, n, /* the logger first: MHD says so otherwise */
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, n, MHD_OPTION_LISTEN_SOCKET, n->lfd,
		MHD_OPTION_HTTPS_MEM_KEY, n->key_pem, MHD_OPTION_HTTPS_MEM_CERT, n->cert_pem,
		MHD_OPTION_HTTPS_MEM_TRUST, n->trust_pem, MHD_OPTION_HTTPS_PRIORITIES,
		NAF_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
		MHD_OPTION_NOTIFY_CONNECTION, notify_conn, n, MHD_OPTION_NOTIFY_COMPLETED,
		request_done, n, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, n, MHD_OPTION_END);
	if (n->d && pthread_create(&n->watchdog, NULL, watchdog, n) == 0)
		n->watchdog_running = true;
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	if (!n->d || !n->watchdog_running) {
		snprintf(err, errlen, "the HTTPS server did not start (server certificate and key "
				      "%s, %s)",
			 cfg->tls_cert, cfg->tls_key);
		*config = 1;
		goto fail;
	}
	n->lfd = -1; /* MHD's now */
	if (n->stats) {
		pthread_mutex_lock(&n->stats->lock);
		n->stats->pull = pull;
		n->stats->pull_arg = n;
		pthread_mutex_unlock(&n->stats->lock);
	}
	nlog(n, LOG_INFO,
	     "NAF Key Center on %s port %u (HTTPS, TLS 1.3/1.2 ECDHE, client certificates of %s), "
	     "%u NAF identit%s, BSF %s at %s port %u, %u threads on %d CPUs%s, %u requests/s per "
	     "certificate%s",
	     cfg->listen[0] ? cfg->listen : "all addresses", n->port, cfg->device_ca, cfg->n_ids,
	     cfg->n_ids > 1 ? "ies" : "y", cfg->bsf.identity, cfg->bsf.address, cfg->bsf.port,
	     cfg->threads, CPU_COUNT(&cpus),
	     shared ? " (every CPU runs a worker: shared with them)" : "", cfg->rate_per_s,
	     crl_pem ? ", CRL checked" : "");
	free_pem(dev_pem);
	free_pem(op_pem);
	free_pem(crl_pem);
	return n;
fail:
	free_pem(dev_pem);
	free_pem(op_pem);
	free_pem(crl_pem);
	kl_naf_stop(n);
	return NULL;
}

int kl_naf_fd(struct kl_naf *n)
{
	return kl_naf_keys_fd(n->keys);
}

void kl_naf_poll(struct kl_naf *n)
{
	kl_naf_keys_poll(n->keys);
}

void kl_naf_tick(struct kl_naf *n)
{
	kl_naf_keys_tick(n->keys, (uint64_t)time(NULL));
}

struct kl_naf_keys *kl_naf_keys_of(struct kl_naf *n)
{
	return n ? n->keys : NULL;
}

uint16_t kl_naf_port(const struct kl_naf *n)
{
	return n->port;
}

static void *stop_mhd(void *arg)
{
	struct kl_naf *n = arg;

	MHD_stop_daemon(n->d);
	__atomic_store_n(&n->d, NULL, __ATOMIC_RELEASE);
	return NULL;
}

void kl_naf_stop(struct kl_naf *n)
{
	if (!n)
		return;
	if (n->stats) {
		pthread_mutex_lock(&n->stats->lock);
		if (n->stats->pull_arg == n) {
			n->stats->pull = NULL;
			n->stats->pull_arg = NULL;
		}
		pthread_mutex_unlock(&n->stats->lock);
	}
	if (n->d) {
		pthread_t t;

		/* requests in flight wait for this (the control) thread to commit their keys: keep
		 * committing while MHD's threads finish */
		if (pthread_create(&t, NULL, stop_mhd, n) == 0) {
			while (__atomic_load_n(&n->d, __ATOMIC_ACQUIRE)) {
				struct pollfd pf = { .fd = kl_naf_keys_fd(n->keys), .events = POLLIN };

				if (poll(&pf, 1, 10) > 0)
					kl_naf_keys_poll(n->keys);
			}
			pthread_join(t, NULL);
		} else {
			MHD_stop_daemon(n->d);
		}
		n->d = NULL;
	}
	if (n->watchdog_running) {
		__atomic_store_n(&n->stop, 1, __ATOMIC_RELEASE);
		pthread_join(n->watchdog, NULL);
	}
	if (n->lfd >= 0)
		close(n->lfd);
	if (n->zn)
		kl_zn_stop(n->zn);
	if (n->keys)
		kl_naf_keys_close(n->keys);
	kl_rl_free(n->rl);
	if (n->tl_device)
		gnutls_x509_trust_list_deinit(n->tl_device, 1);
	if (n->tl_operator)
		gnutls_x509_trust_list_deinit(n->tl_operator, 1);
	free_pem(n->cert_pem);
	free_pem(n->key_pem);
	free_pem(n->trust_pem);
	free(n->conn);
	pthread_mutex_destroy(&n->rl_lock);
	pthread_mutex_destroy(&n->conn_lock);
	free(n);
}
