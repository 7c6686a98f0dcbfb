/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-device: the external device of the NAF Key Center (PROTOCOL.md section 11). Fetches
 * Ks_local_MT for a B-TID over mutual-TLS HTTPS with its certificate (libcurl), writes it to a
 * new 0600 file and prints its key check value and expiry, never the key. --delete: an operator
 * invalidates an issued key (DELETE /v1/ks-local-mt/{b_tid}/{device_id}). See --help.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "kl_crypto.h"
#include "kl_naf_client.h"
#include "kl_naf_mt.h"
#include "kl_util.h"

/* Exit codes (documented in --help and README) */
enum {
	EX_OK = 0,
	EX_FAIL = 1,	  /* no answer: connection, TLS, timeout; or a local error (the --out file) */
	EX_USAGE = 2,
	EX_400 = 3,	  /* malformed request */
	EX_403 = 4,	  /* device not authorised (certificate, Device_ID, blocklist, invalidated) */
	EX_404 = 5,	  /* B-TID unknown to the BSF (or its Ks expired) */
	EX_429 = 6,	  /* rate limited */
	EX_503 = 7,	  /* BSF unreachable, or the Key Center cannot store the key */
	EX_HTTP = 8,	  /* any other HTTP status */
	EX_BAD_ANSWER = 9, /* a 200 answer that is malformed or not for this request */
};

__attribute__((format(printf, 1, 2), noreturn)) static void usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("keyline-device: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(EX_USAGE);
}

static void help(void)
{
	puts("usage: keyline-device --cert PEM --key PEM --ca PEM --b-tid B-TID --out FILE\n"
	     "                      [--url URL] [--device-id ID] [--naf-id HEX] [--force]\n"
	     "                      [--timeout-s S]\n"
	     "       keyline-device --delete --cert OPERATOR.pem --key PEM --ca PEM --b-tid B-TID\n"
	     "                      --device-id ID [--url URL] [--timeout-s S]\n"
	     "The external device of the NAF Key Center (PROTOCOL.md section 11): POST\n"
	     "/v1/ks-local-mt over HTTPS with the device's certificate (mutual TLS, TLS 1.2 or newer),\n"
	     "writes Ks_local_MT as hex to FILE (a new file, mode 0600) and prints its key check\n"
	     "value, NAF_ID, expiry and lifetime; never the key.\n"
	     "  --cert PEM, --key PEM   the device's certificate and private key\n"
	     "  --ca PEM                the CA of the Key Center's server certificate\n"
	     "  --url URL               the Key Center (default " KL_NAF_DEFAULT_URL "); https only\n"
	     "  --b-tid B-TID           the bootstrapping transaction identifier the MT shows\n"
	     "  --device-id ID          the Device_ID sent (default: the certificate's subject CN)\n"
	     "  --naf-id HEX            NAF_ID (NAF FQDN || Ua security protocol id; default: the\n"
	     "                          Key Center's first configured NAF)\n"
	     "  --out FILE              where the key goes; an existing FILE is refused unless\n"
	     "                          --force (then replaced atomically, mode 0600)\n"
	     "  --timeout-s S           the whole request (default 10)\n"
	     "  --delete                operator: DELETE /v1/ks-local-mt/{b_tid}/{device_id}\n"
	     "                          (invalidates an issued key; --device-id required)\n"
	     "An error answer prints its HTTP status and JSON {error, detail} on stderr.\n"
	     "Exit: 0 done; 1 no answer (connection, TLS, timeout) or a local error; 2 usage;\n"
	     "      3 HTTP 400; 4 HTTP 403; 5 HTTP 404; 6 HTTP 429; 7 HTTP 503; 8 other HTTP status;\n"
	     "      9 a 200 answer that is malformed or not for this request.");
}

static int status_exit(long st)
{
	switch (st) {
	case 400: return EX_400;
	case 403: return EX_403;
	case 404: return EX_404;
	case 429: return EX_429;
	case 503: return EX_503;
	default: return EX_HTTP;
	}
}

enum { O_CERT = 256, O_KEY, O_CA, O_URL, O_BTID, O_DEV, O_NAF, O_OUT, O_FORCE, O_TIMEOUT, O_DELETE,
       O_HELP };

struct opts {
	const char *cert, *key, *ca, *url, *btid, *dev, *naf, *out;
	int force, del;
	long timeout_s;
};

static const char *text_arg(const char *opt, const char *v, size_t max)
{
	size_t n = strlen(v);

	if (!n || n > max)
		usage_err("%s: want 1..%zu bytes", opt, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			usage_err("%s: want printable ASCII without spaces", opt);
	return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "ca", required_argument, NULL, O_CA },
		{ "url", required_argument, NULL, O_URL },
		{ "b-tid", required_argument, NULL, O_BTID },
		{ "device-id", required_argument, NULL, O_DEV },
		{ "naf-id", required_argument, NULL, O_NAF },
		{ "out", required_argument, NULL, O_OUT },
		{ "force", no_argument, NULL, O_FORCE },
		{ "timeout-s", required_argument, NULL, O_TIMEOUT },
		{ "delete", no_argument, NULL, O_DELETE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char **seen[O_HELP - O_CERT] = { 0 };
	int c;

	memset(o, 0, sizeof(*o));
	o->url = KL_NAF_DEFAULT_URL;
	o->timeout_s = 10;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		const char **dst = NULL;

		switch (c) {
		case O_CERT: dst = &o->cert; break;
		case O_KEY: dst = &o->key; break;
		case O_CA: dst = &o->ca; break;
		case O_URL: dst = &o->url; break;
		case O_BTID: dst = &o->btid; break;
		case O_DEV: dst = &o->dev; break;
		case O_NAF: dst = &o->naf; break;
		case O_OUT: dst = &o->out; break;
		case O_FORCE: o->force = 1; break;
		case O_DELETE: o->del = 1; break;
		case O_TIMEOUT: {
			char *end;

			errno = 0;
			o->timeout_s = strtol(optarg, &end, 10);
			if (errno || !*optarg || *end || o->timeout_s < 1 || o->timeout_s > 3600)
				usage_err("--timeout-s: want a whole number 1..3600");
			break;
		}
		case 'h':
		case O_HELP: help(); exit(EX_OK);
		default:
			/* never what was typed: it may be a key put in the wrong place */
			usage_err("argument %d: unknown option or missing value", optind - 1);
		}
		if (dst) {
			if (seen[c - O_CERT])
				usage_err("%s given twice", lo[c - O_CERT].name);
			seen[c - O_CERT] = dst;
			*dst = optarg;
		}
	}
	if (optind < argc)
		usage_err("argument %d: unexpected (not shown)", optind);
	if (!o->cert || !o->key || !o->ca)
		usage_err("--cert, --key and --ca are required");
	if (!o->btid)
		usage_err("--b-tid is required");
	text_arg("--b-tid", o->btid, KL_NAF_CLI_ID_MAX);
	if (o->dev)
		text_arg("--device-id", o->dev, KL_NAF_CLI_ID_MAX);
	if (!kl_naf_url_ok(o->url))
		usage_err("--url: want https://HOST[:PORT] (https only, no path)");
	if (o->naf) {
		uint8_t b[KL_NAF_CLI_ID_MAX];

		if (kl_naf_hex(o->naf, b, sizeof(b)) <= 0)
			usage_err("--naf-id: want 1..%d bytes of hex", KL_NAF_CLI_ID_MAX);
	}
	if (o->del) {
		if (o->out || o->force || o->naf)
			usage_err("--out, --force and --naf-id are not for --delete");
		if (!o->dev)
			usage_err("--delete needs --device-id");
	} else if (!o->out) {
		usage_err("--out FILE is required (the key is never printed)");
	}
}

/* The key file: a new 0600 file (O_EXCL), or with --force a temporary file renamed over FILE
 * once written. Opened before the request, so a refused FILE costs no key. */
struct outfile {
	int fd;
	char tmp[4096];
	const char *path;
	int force;
};

static int out_open(struct outfile *f, const char *path, int force)
{
	f->path = path;
	f->force = force;
	f->tmp[0] = 0;
	if (!force) {
		f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (f->fd < 0) {
			fprintf(stderr, "keyline-device: --out: cannot create the file%s: %s\n",
				errno == EEXIST ? " (it exists; --force replaces it)" : "", strerror(errno));
			return -1;
		}
		return 0;
	}
	if ((size_t)snprintf(f->tmp, sizeof(f->tmp), "%s.XXXXXX", path) >= sizeof(f->tmp)) {
		fprintf(stderr, "keyline-device: --out: path too long\n");
		return -1;
	}
	f->fd = mkostemp(f->tmp, O_CLOEXEC); /* mode 0600 */
	if (f->fd < 0) {
		fprintf(stderr, "keyline-device: --out: cannot create a file beside it: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

static void out_drop(struct outfile *f)
{
	if (f->fd < 0)
		return;
	close(f->fd);
	unlink(f->force ? f->tmp : f->path);
	f->fd = -1;
}

static int out_commit(struct outfile *f, const uint8_t *key, size_t n)
{
	char line[2 * KL_NAF_CLI_KEY_LEN + 2];
	ssize_t w;

	for (size_t i = 0; i < n; i++)
		snprintf(line + 2 * i, 3, "%02x", key[i]);
	line[2 * n] = '\n';
	w = write(f->fd, line, 2 * n + 1);
	kl_memzero(line, sizeof(line));
	if (w != (ssize_t)(2 * n + 1) || fsync(f->fd) || fchmod(f->fd, 0600) ||
	    (f->force && rename(f->tmp, f->path))) {
		fprintf(stderr, "keyline-device: --out: write failed: %s\n", strerror(errno));
		out_drop(f);
		return -1;
	}
	close(f->fd);
	f->fd = -1;
	return 0;
}

static void put_hex(const char *name, const uint8_t *b, size_t n)
{
	printf("%s=", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('\n');
}

int main(int argc, char **argv)
{
	struct opts o;
	struct outfile of = { .fd = -1 };
	struct kl_naf_buf body = { 0 };
	struct curl_slist *hdr = NULL;
	char dev[KL_NAF_CLI_ID_MAX + 1], url[4096], err[CURL_ERROR_SIZE + 256], cerr[CURL_ERROR_SIZE];
	char *req = NULL;
	CURL *h;
	CURLcode cc;
	long status = 0;
	int rc = EX_FAIL;

	parse_args(argc, argv, &o);
	if (o.dev) {
		snprintf(dev, sizeof(dev), "%s", o.dev);
	} else if (kl_naf_cert_cn(o.cert, dev, sizeof(dev), err, sizeof(err))) {
		usage_err("--cert: %s (give --device-id)", err);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(h = curl_easy_init())) {
		fprintf(stderr, "keyline-device: libcurl initialisation failed\n");
		return EX_FAIL;
	}
	if (o.del) {
		char *eb = curl_easy_escape(h, o.btid, 0), *ed = curl_easy_escape(h, dev, 0);

		if (!eb || !ed)
			goto oom;
		snprintf(url, sizeof(url), "%s%sv1/ks-local-mt/%s/%s", o.url,
			 o.url[strlen(o.url) - 1] == '/' ? "" : "/", eb, ed);
		curl_free(eb);
		curl_free(ed);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		if (out_open(&of, o.out, o.force)) {
			rc = EX_USAGE;
			goto done;
		}
		snprintf(url, sizeof(url), "%s%sv1/ks-local-mt", o.url,
			 o.url[strlen(o.url) - 1] == '/' ? "" : "/");
		req = kl_naf_request_body(o.btid, dev, o.naf);
		hdr = curl_slist_append(NULL, "Content-Type: application/json");
		if (!req || !hdr)
			goto oom;
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	}
	cerr[0] = 0;
	if ((cc = kl_naf_curl_tls(h, o.cert, o.key, o.ca)) != CURLE_OK ||
	    (cc = curl_easy_setopt(h, CURLOPT_URL, url)) != CURLE_OK) {
		fprintf(stderr, "keyline-device: libcurl: %s\n", curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o.timeout_s * 1000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, kl_naf_buf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK && body.overflow) {
		fprintf(stderr, "keyline-device: the answer is longer than %d bytes\n",
			KL_NAF_CLI_BODY_MAX);
		rc = EX_BAD_ANSWER;
		goto done;
	}
	if (cc != CURLE_OK) {
		fprintf(stderr, "keyline-device: no answer: %s%s%s\n", curl_easy_strerror(cc),
			cerr[0] ? ": " : "", cerr);
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (o.del ? status < 200 || status > 299 : status != 200) {
		char e[256], d[512];

		kl_naf_parse_error(body.p ? body.p : "", body.n, e, sizeof(e), d, sizeof(d));
		fprintf(stderr, "keyline-device: HTTP %ld: error \"%s\" detail \"%s\"\n", status, e, d);
		rc = status_exit(status);
		goto done;
	}
	if (o.del) {
		printf("deleted: HTTP %ld\n", status);
		rc = EX_OK;
		goto done;
	}
	{
		struct kl_naf_answer a;
		uint8_t kcv[KL_KCV_LEN];

		if (kl_naf_parse_answer(body.p ? body.p : "", body.n, &a, err, sizeof(err))) {
			fprintf(stderr, "keyline-device: HTTP 200 but a bad answer: %s\n", err);
			rc = EX_BAD_ANSWER;
			goto done;
		}
		if (strcmp(a.btid, o.btid) || strcmp(a.device_id, dev)) {
			fprintf(stderr, "keyline-device: HTTP 200 but the answer is for another %s\n",
				strcmp(a.btid, o.btid) ? "B-TID" : "Device_ID");
			kl_naf_answer_wipe(&a);
			rc = EX_BAD_ANSWER;
			goto done;
		}
		if (o.naf) {
			uint8_t nb[KL_NAF_CLI_ID_MAX];
			long nl = kl_naf_hex(o.naf, nb, sizeof(nb));

			if ((size_t)nl != a.naf_len || memcmp(nb, a.naf_id, a.naf_len)) {
				fprintf(stderr, "keyline-device: HTTP 200 but the answer is for another NAF_ID\n");
				kl_naf_answer_wipe(&a);
				rc = EX_BAD_ANSWER;
				goto done;
			}
		}
		if (kl_kcv(a.key, sizeof(a.key), kcv) || out_commit(&of, a.key, sizeof(a.key))) {
			kl_naf_answer_wipe(&a);
			goto done;
		}
		printf("b_tid=%s\ndevice_id=%s\n", a.btid, a.device_id);
		put_hex("naf_id", a.naf_id, a.naf_len);
		put_hex("ks_local_mt_kcv", kcv, sizeof(kcv));
		printf("expires=%s\nlifetime_s=%llu\n", a.expires, (unsigned long long)a.lifetime_s);
		kl_naf_answer_wipe(&a);
		rc = EX_OK;
	}
	goto done;
oom:
	fprintf(stderr, "keyline-device: out of memory\n");
done:
	out_drop(&of);
	kl_naf_buf_free(&body);
	curl_slist_free_all(hdr);
	free(req);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return rc;
}
