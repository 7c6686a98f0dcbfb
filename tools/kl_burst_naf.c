/* SPDX-License-Identifier: BSD-3-Clause */
/* keyline-burst --kind naf: devices fetching Ks_local_MT over HTTPS, every key verified. */
#include "kl_burst_naf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "kl_burst.h"
#include "kl_crypto.h"
#include "kl_naf_client.h"
#include "kl_naf_mt.h"
#include "kl_util.h"

/* Why a device failed (its first failed request ends it). */
enum naf_fail { NF_NONE, NF_HTTP, NF_TRANSPORT, NF_TIMEOUT, NF_BAD_ANSWER, NF_WRONG_KEY,
		NF_INTERRUPTED, NF__COUNT };
static const char *const fail_names[NF__COUNT] = {
	[NF_NONE] = "none", [NF_HTTP] = "http_status", [NF_TRANSPORT] = "transport",
	[NF_TIMEOUT] = "timeout", [NF_BAD_ANSWER] = "bad_answer", [NF_WRONG_KEY] = "wrong_key",
	[NF_INTERRUPTED] = "interrupted",
};

struct dev {
	char cert[PATH_MAX], key[PATH_MAX];
	struct kl_naf_cred cred;	/* full handshakes: parsed once, not per connection */
	char id[KL_NAF_CLI_ID_MAX + 1];
	const struct kl_naf_ue *ue;	/* of the request in flight */
	uint32_t idx;
	uint8_t expect[KL_NAF_MT_KEY_LEN];
	CURL *h;
	char *req;
	struct kl_naf_buf body;
	uint64_t t_start;	/* of the request in flight */
	uint32_t done;		/* requests answered with a verified key */
	enum naf_fail fail;
	long status;		/* NF_HTTP: the status */
	int active;
};

struct run {
	const struct kl_burst_naf_config *c;
	const char *naf_hex;
	struct dev *d;
	uint32_t n;
	struct kl_naf_ue *ues;
	size_t nues;
	struct stack_st_X509 *ca;
	CURLM *m;
	struct curl_slist *hdr;
	char url[4096];
	uint64_t t0, last_done;
	double cpu0, cpu_s;	/* this process's CPU time (user + system) at t0, and over the run */
	double scpu0, scpu_s;	/* the server's (--server-pid), -1 when unknown */
	/* counters */
	uint64_t sent, answered, verified, timeouts, transport, bad_answer, wrong_key, handshakes;
	uint64_t ok_devices, failed_devices, by_fail[NF__COUNT];
	uint64_t by_status[600];
	uint64_t prev_sent, prev_answered, prev_verified, prev_timeouts, prev_handshakes;
	struct kl_hist lat, ilat;
	uint32_t active;
};

static double cpu_now(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU time (user + system, all threads) of process pid from /proc; -1 when unreadable. */
static double proc_cpu(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* after "pid (comm) ": state is field 3, utime 14, stime 15 */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The PKI's devices in pki.json order: cert, key (paths inside the PKI directory), CN. */
static int load_pki(struct run *r, char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *doc, *ents, *e;
	size_t i;
	uint32_t k = 0, want = r->c->devices;

	if ((size_t)snprintf(path, sizeof(path), "%s/pki.json", r->c->pki) >= sizeof(path)) {
		kl_errf(err, errlen, "--pki: path too long");
		return -1;
	}
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	ents = json_object_get(doc, "entries");
	if (!json_is_array(ents)) {
		kl_errf(err, errlen, "--pki: %s", doc ? "pki.json has no \"entries\" list"
						      : "cannot read pki.json (make-test-pki.sh OUTDIR)");
		json_decref(doc);
		return -1;
	}
	json_array_foreach(ents, i, e)
		k += json_is_string(json_object_get(e, "role")) &&
		     !strcmp(json_string_value(json_object_get(e, "role")), "device");
	if (!k || (want && want > k)) {
		kl_errf(err, errlen, "--pki: %u device certificates, %u wanted (make-test-pki.sh --devices N)",
			k, want ? want : 1);
		json_decref(doc);
		return -1;
	}
	r->n = want ? want : k;
	r->d = calloc(r->n, sizeof(*r->d));
	if (!r->d) {
		json_decref(doc);
		kl_errf(err, errlen, "out of memory");
		return -1;
	}
	k = 0;
	json_array_foreach(ents, i, e) {
		const char *role = json_string_value(json_object_get(e, "role"));
		const char *cert = json_string_value(json_object_get(e, "cert"));
		const char *key = json_string_value(json_object_get(e, "key"));
		struct dev *d;
		char why[256];

		if (k == r->n)
			break;
		if (!role || strcmp(role, "device"))
			continue;
		d = &r->d[k++];
		if (!cert || !key || strchr(cert, '/') || strchr(key, '/') ||
		    (size_t)snprintf(d->cert, sizeof(d->cert), "%s/%s", r->c->pki, cert) >= sizeof(d->cert) ||
		    (size_t)snprintf(d->key, sizeof(d->key), "%s/%s", r->c->pki, key) >= sizeof(d->key)) {
			kl_errf(err, errlen, "--pki: device entry %u: bad cert/key names", k);
			json_decref(doc);
			return -1;
		}
		/* the Device_ID is what the certificate says, not what the index says */
		if (kl_naf_cert_cn(d->cert, d->id, sizeof(d->id), why, sizeof(why)) ||
		    kl_naf_cred_load(d->cert, d->key, &d->cred, why, sizeof(why))) {
			kl_errf(err, errlen, "--pki: device %u's certificate: %s", k, why);
			json_decref(doc);
			return -1;
		}
	}
	json_decref(doc);
	return 0;
}

/* Device d's next request asks for ue: the MT side's key for it, and the request body. */
static int aim(struct run *r, struct dev *d, const struct kl_naf_ue *ue, const char *naf_hex)
{
	struct kl_naf_mt_keys mk;
	char *body;

	d->ue = ue;
	if (kl_naf_mt_derive_ue(ue, r->c->naf_id, r->c->naf_len, d->id, &mk))
		return -1;
	memcpy(d->expect, mk.ks_local_mt, sizeof(d->expect));
	kl_memzero(&mk, sizeof(mk));
	if (!naf_hex)
		return 0;
	if (!(body = kl_naf_request_body(ue->btid, d->id, naf_hex)))
		return -1;
	free(d->req);
	d->req = body;
	return d->h ? -(curl_easy_setopt(d->h, CURLOPT_POSTFIELDS, d->req) != CURLE_OK) : 0;
}

static int prepare(struct run *r, char *err, size_t errlen)
{
	char why[256];

	if (load_pki(r, err, errlen))
		return -1;
	if (kl_naf_ue_read(r->c->ue_file, &r->ues, &r->nues, why, sizeof(why))) {
		kl_errf(err, errlen, "--ue-file: %s", why);
		return -1;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		r->d[i].idx = i;
		if (aim(r, &r->d[i], &r->ues[((uint64_t)r->c->first_ue + i) % r->nues], NULL)) {
			kl_errf(err, errlen, "device %u: the MT-side derivation failed", i);
			return -1;
		}
	}
	return 0;
}

static int setup_handle(struct run *r, struct dev *d, const char *ca, const char *naf_hex)
{
	long timeout = r->c->timeout_ms ? (long)r->c->timeout_ms : 10000L;

	d->h = curl_easy_init();
	d->req = kl_naf_request_body(d->ue->btid, d->id, naf_hex);
	d->cred.ca = r->ca;
	/* keep-alive: libcurl matches each device's connection by its certificate file; full
	 * handshakes: a new connection every time, the credentials parsed once (OpenSSL 3 would
	 * decode the files again for every handshake, the client's largest cost) */
	if (!d->h || !d->req ||
	    (r->c->full_handshake ? kl_naf_curl_tls_preloaded(d->h, &d->cred)
				  : kl_naf_curl_tls(d->h, d->cert, d->key, ca)) != CURLE_OK)
		return -1;
	curl_easy_setopt(d->h, CURLOPT_URL, r->url);
	curl_easy_setopt(d->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(d->h, CURLOPT_POSTFIELDS, d->req);
	curl_easy_setopt(d->h, CURLOPT_HTTPHEADER, r->hdr);
	curl_easy_setopt(d->h, CURLOPT_WRITEFUNCTION, kl_naf_buf_write);
	curl_easy_setopt(d->h, CURLOPT_WRITEDATA, &d->body);
	curl_easy_setopt(d->h, CURLOPT_PRIVATE, d);
	curl_easy_setopt(d->h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(d->h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (r->c->full_handshake) {
		/* a new connection and a full handshake for every request */
		curl_easy_setopt(d->h, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(d->h, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(d->h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	return 0;
}

static void start(struct run *r, struct dev *d, uint64_t now)
{
	kl_naf_buf_reset(&d->body);
	/* ue_per_request: the next line's B-TID, its key derived before the request starts */
	if (r->c->ue_per_request && d->done &&
	    aim(r, d, &r->ues[((uint64_t)r->c->first_ue + d->idx + (uint64_t)d->done * r->n) %
			      r->nues], r->naf_hex)) {
		d->fail = NF_TRANSPORT;
		return;
	}
	d->t_start = now;
	if (curl_multi_add_handle(r->m, d->h) != CURLM_OK) {
		d->fail = NF_TRANSPORT;
		return;
	}
	d->active = 1;
	r->active++;
	r->sent++;
}

static void finish_device(struct run *r, struct dev *d, uint64_t now)
{
	if (d->fail == NF_NONE)
		r->ok_devices++;
	else {
		r->failed_devices++;
		r->by_fail[d->fail]++;
	}
	r->last_done = now;
}

/* One finished transfer of device d: count it, check the key, start the next request. */
static void done(struct run *r, struct dev *d, CURLcode cc, uint64_t now)
{
	long status = 0, conns = 0;

	curl_multi_remove_handle(r->m, d->h);
	d->active = 0;
	r->active--;
	curl_easy_getinfo(d->h, CURLINFO_NUM_CONNECTS, &conns);
	r->handshakes += (uint64_t)(conns > 0 ? conns : 0);
	if (cc != CURLE_OK) {
		if (cc == CURLE_OPERATION_TIMEDOUT) {
			r->timeouts++;
			d->fail = NF_TIMEOUT;
		} else {
			r->transport++;
			d->fail = d->body.overflow ? NF_BAD_ANSWER : NF_TRANSPORT;
		}
	} else {
		struct kl_naf_answer a;
		char why[128];

		curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &status);
		r->answered++;
		if (status >= 0 && status < 600)
			r->by_status[status]++;
		if (status != 200) {
			d->fail = NF_HTTP;
			d->status = status;
		} else if (kl_naf_parse_answer(d->body.p ? d->body.p : "", d->body.n, &a, why,
					       sizeof(why)) ||
			   strcmp(a.btid, d->ue->btid) || strcmp(a.device_id, d->id) ||
			   a.naf_len != r->c->naf_len ||
			   memcmp(a.naf_id, r->c->naf_id, a.naf_len)) {
			r->bad_answer++;
			d->fail = NF_BAD_ANSWER;
			kl_naf_answer_wipe(&a);
		} else if (CRYPTO_memcmp(a.key, d->expect, sizeof(d->expect))) {
			r->wrong_key++;
			d->fail = NF_WRONG_KEY;
			kl_naf_answer_wipe(&a);
		} else {
			kl_naf_answer_wipe(&a);
			r->verified++;
			d->done++;
			kl_hist_add(&r->lat, now - d->t_start);
			kl_hist_add(&r->ilat, now - d->t_start);
		}
	}
	kl_naf_buf_reset(&d->body);
	if (d->fail == NF_NONE && d->done < (r->c->requests ? r->c->requests : 1))
		start(r, d, now);
	if (!d->active)
		finish_device(r, d, now);
}

static void interval_line(struct run *r, uint64_t now, FILE *out)
{
	json_t *o = json_object();

	if (o && out) {
		json_object_set_new(o, "type", json_string("interval"));
		json_object_set_new(o, "t", json_real((double)(now - r->t0) / 1e9));
		json_object_set_new(o, "sent", json_integer((json_int_t)(r->sent - r->prev_sent)));
		json_object_set_new(o, "answered",
				    json_integer((json_int_t)(r->answered - r->prev_answered)));
		json_object_set_new(o, "verified",
				    json_integer((json_int_t)(r->verified - r->prev_verified)));
		json_object_set_new(o, "retransmissions", json_integer(0));
		json_object_set_new(o, "timeouts",
				    json_integer((json_int_t)(r->timeouts - r->prev_timeouts)));
		json_object_set_new(o, "handshakes",
				    json_integer((json_int_t)(r->handshakes - r->prev_handshakes)));
		json_object_set_new(o, "in_progress", json_integer(r->active));
		json_object_set_new(o, "lat_us", kl_hist_json(&r->ilat, 0));
		json_dumpf(o, out, JSON_COMPACT | JSON_REAL_PRECISION(7));
		fputc('\n', out);
		fflush(out);
	}
	json_decref(o);
	r->prev_sent = r->sent;
	r->prev_answered = r->answered;
	r->prev_verified = r->verified;
	r->prev_timeouts = r->timeouts;
	r->prev_handshakes = r->handshakes;
	kl_hist_reset(&r->ilat);
}

static json_t *failures_json(const struct run *r)
{
	json_t *o = json_object(), *by = json_object(), *list = json_array();
	uint32_t listed = 0;

	for (unsigned f = NF_HTTP; by && f < NF__COUNT; f++) {
		if (!r->by_fail[f] || f == NF_HTTP)
			continue;
		json_object_set_new(by, fail_names[f], json_integer((json_int_t)r->by_fail[f]));
	}
	for (uint32_t i = 0; by && i < r->n; i++) { /* HTTP failures by status: "http_403" */
		char k[32];
		json_t *v;

		if (r->d[i].fail != NF_HTTP)
			continue;
		snprintf(k, sizeof(k), "http_%ld", r->d[i].status);
		v = json_object_get(by, k);
		json_object_set_new(by, k, json_integer(v ? json_integer_value(v) + 1 : 1));
	}
	for (uint32_t i = 0; list && i < r->n && listed < r->c->fail_list_max; i++) {
		const struct dev *d = &r->d[i];
		char why[32];
		json_t *x;

		if (d->fail == NF_NONE)
			continue;
		if (d->fail == NF_HTTP)
			snprintf(why, sizeof(why), "http_%ld", d->status);
		x = json_pack("{s:I,s:s,s:s,s:s,s:I}", "ue", (json_int_t)i, "id", d->id, "b_tid",
			      d->ue->btid, "reason", d->fail == NF_HTTP ? why : fail_names[d->fail],
			      "keys", (json_int_t)d->done);
		json_array_append_new(list, x);
		listed++;
	}
	if (!o)
		return NULL;
	json_object_set_new(o, "count", json_integer((json_int_t)r->failed_devices));
	json_object_set_new(o, "by_reason", by ? by : json_null());
	json_object_set_new(o, "list", list ? list : json_null());
	json_object_set_new(o, "list_truncated", json_boolean(r->failed_devices > listed));
	return o;
}

static json_t *summary(const struct run *r, uint64_t end, int interrupted)
{
	json_t *o = json_object(), *cnt = json_object(), *st = json_object(), *naf;
	double elapsed = (double)(end - r->t0) / 1e9;
	double span = r->last_done > r->t0 ? (double)(r->last_done - r->t0) / 1e9 : elapsed;
	int ok = r->ok_devices == r->n && !interrupted;
	char nafhex[2 * 255 + 1];

	if (!o || !cnt || !st) {
		json_decref(o);
		json_decref(cnt);
		json_decref(st);
		return NULL;
	}
	for (size_t i = 0; i < r->c->naf_len; i++)
		snprintf(nafhex + 2 * i, 3, "%02x", r->c->naf_id[i]);
	nafhex[2 * r->c->naf_len] = 0;
	json_object_set_new(cnt, "sent", json_integer((json_int_t)r->sent));
	json_object_set_new(cnt, "answered", json_integer((json_int_t)r->answered));
	json_object_set_new(cnt, "verified", json_integer((json_int_t)r->verified));
	json_object_set_new(cnt, "retransmissions", json_integer(0));
	json_object_set_new(cnt, "timeouts", json_integer((json_int_t)r->timeouts));
	json_object_set_new(cnt, "transport_errors", json_integer((json_int_t)r->transport));
	json_object_set_new(cnt, "error_answers",
			    json_integer((json_int_t)(r->answered - r->by_status[200])));
	json_object_set_new(cnt, "malformed", json_integer((json_int_t)r->bad_answer));
	json_object_set_new(cnt, "wrong_key", json_integer((json_int_t)r->wrong_key));
	json_object_set_new(cnt, "handshakes", json_integer((json_int_t)r->handshakes));
	for (unsigned s = 0; s < 600; s++) {
		char k[8];

		if (!r->by_status[s])
			continue;
		snprintf(k, sizeof(k), "%u", s);
		json_object_set_new(st, k, json_integer((json_int_t)r->by_status[s]));
	}
	naf = json_pack("{s:s,s:b,s:I,s:I,s:I,s:f,s:I,s:f,s:o,s:s}", "connection",
			r->c->full_handshake ? "full-handshake" : "keep-alive", "ue_per_request",
			r->c->ue_per_request, "devices",
			(json_int_t)r->n, "requests_per_device",
			(json_int_t)(r->c->requests ? r->c->requests : 1), "keys_verified",
			(json_int_t)r->verified, "keys_per_s",
			span > 0 ? (double)r->verified / span : 0.0, "handshakes",
			(json_int_t)r->handshakes, "handshakes_per_s",
			span > 0 ? (double)r->handshakes / span : 0.0, "by_status", st, "naf_id",
			nafhex);
	json_object_set_new(o, "type", json_string("summary"));
	json_object_set_new(o, "kind", json_string("naf"));
	json_object_set_new(o, "mode", json_string(r->c->full_handshake ? "full-handshake"
									 : "keep-alive"));
	json_object_set_new(o, "ues", json_integer(r->n));
	json_object_set_new(o, "ok", json_integer((json_int_t)r->ok_devices));
	json_object_set_new(o, "failed", json_integer((json_int_t)(r->n - r->ok_devices)));
	json_object_set_new(o, "elapsed_s", json_real(elapsed));
	json_object_set_new(o, "complete_s", ok ? json_real(span) : json_null());
	json_object_set_new(o, "finished_s", json_real(span));
	json_object_set_new(o, "requests_per_s", json_real(span > 0 ? (double)r->sent / span : 0));
	json_object_set_new(o, "answered_per_s",
			    json_real(span > 0 ? (double)r->answered / span : 0));
	json_object_set_new(o, "verified_per_s",
			    json_real(span > 0 ? (double)r->verified / span : 0));
	json_object_set_new(o, "verify", json_string("inline"));
	json_object_set_new(o, "counters", cnt);
	json_object_set_new(o, "naf", naf ? naf : json_null());
	json_object_set_new(o, "errors", json_object()); /* MIKEY ERR numbers: none over HTTPS */
	json_object_set_new(o, "latency_us", kl_hist_json(&r->lat, 1));
	json_object_set_new(o, "failures", failures_json(r));
	json_object_set_new(o, "config",
			    json_pack("{s:I,s:I,s:I,s:I,s:s}", "devices", (json_int_t)r->n,
				      "requests", (json_int_t)(r->c->requests ? r->c->requests : 1),
				      "first_ue", (json_int_t)r->c->first_ue, "timeout_ms",
				      (json_int_t)(r->c->timeout_ms ? r->c->timeout_ms : 10000),
				      "naf_id", nafhex));
	/* the client's CPU over the run: near elapsed_s means the client, not the server, was
	 * the bound */
	json_object_set_new(o, "io", json_pack("{s:s,s:s,s:s,s:f,s:o}", "io", "https (libcurl multi)",
					       "url", r->c->url, "tls",
					       curl_version_info(CURLVERSION_NOW)->ssl_version,
					       "client_cpu_s", r->cpu_s, "server_cpu_s",
					       r->scpu_s >= 0 ? json_real(r->scpu_s) : json_null()));
	/* per second of the server's CPU: what one server core would do if the client kept up */
	if (naf && r->scpu_s > 0) {
		json_object_set_new(naf, "keys_per_server_cpu_s",
				    json_real((double)r->verified / r->scpu_s));
		json_object_set_new(naf, "handshakes_per_server_cpu_s",
				    json_real((double)r->handshakes / r->scpu_s));
	}
	json_object_set_new(o, "interrupted", json_boolean(interrupted));
	json_object_set_new(o, "exit", json_integer(ok ? 0 : 1));
	return o;
}

static void cleanup(struct run *r)
{
	for (uint32_t i = 0; r->d && i < r->n; i++) {
		struct dev *d = &r->d[i];

		if (d->h) {
			if (d->active)
				curl_multi_remove_handle(r->m, d->h);
			curl_easy_cleanup(d->h);
		}
		kl_naf_buf_free(&d->body);
		kl_naf_cred_free(&d->cred);
		free(d->req);
		kl_memzero(d->expect, sizeof(d->expect));
	}
	free(r->d);
	kl_naf_ue_free(r->ues, r->nues);
	kl_naf_ca_free(r->ca);
	if (r->m)
		curl_multi_cleanup(r->m);
	curl_slist_free_all(r->hdr);
}

int kl_burst_naf_run(const struct kl_burst_naf_config *c, volatile sig_atomic_t *stop, FILE *out,
		     json_t **sum, int *exit_code, char *err, size_t errlen)
{
	struct run r;
	char ca[PATH_MAX], nafhex[2 * 255 + 1];
	uint64_t t, next_iv;
	int running = 1, interrupted = 0;

	memset(&r, 0, sizeof(r));
	r.c = c;
	r.scpu_s = -1;
	*sum = NULL;
	*exit_code = 1;
	kl_hist_reset(&r.lat);
	kl_hist_reset(&r.ilat);
	if (!c->naf_len || !c->pki || !c->ue_file || !kl_naf_url_ok(c->url)) {
		kl_errf(err, errlen, "--kind naf needs --pki, --ue-file, --naf-id and an https --url");
		return 2;
	}
	snprintf(r.url, sizeof(r.url), "%s%sv1/ks-local-mt", c->url,
		 c->url[strlen(c->url) - 1] == '/' ? "" : "/");
	if ((size_t)snprintf(ca, sizeof(ca), "%s", c->ca ? c->ca : "") >= sizeof(ca) ||
	    (!c->ca && (size_t)snprintf(ca, sizeof(ca), "%s/server-ca.pem", c->pki) >= sizeof(ca))) {
		kl_errf(err, errlen, "--ca: path too long");
		return 2;
	}
	for (size_t i = 0; i < c->naf_len; i++)
		snprintf(nafhex + 2 * i, 3, "%02x", c->naf_id[i]);
	nafhex[2 * c->naf_len] = 0;
	r.naf_hex = nafhex;
	{
		char why[256];

		if (!(r.ca = kl_naf_ca_load(ca, why, sizeof(why)))) {
			kl_errf(err, errlen, "--ca: %s", why);
			cleanup(&r);
			return 2;
		}
	}
	if (prepare(&r, err, errlen)) {
		cleanup(&r);
		return 2;
	}
	{
		/* a connection per device: raise the descriptor limit to the hard one */
		struct rlimit rl;

		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur < (rlim_t)r.n + 64) {
			kl_errf(err, errlen, "%u devices need %u file descriptors, the limit is %llu",
				r.n, r.n + 64, (unsigned long long)rl.rlim_cur);
			cleanup(&r);
			return 2;
		}
	}
	r.m = curl_multi_init();
	r.hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (!r.m || !r.hdr) {
		kl_errf(err, errlen, "libcurl: cannot make the multi handle");
		cleanup(&r);
		return 1;
	}
	/* one connection per device: the pool keeps them all (connections carry the device's
	 * client certificate and are never shared between devices) */
	curl_multi_setopt(r.m, CURLMOPT_MAXCONNECTS, (long)r.n + 16);
	curl_multi_setopt(r.m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	for (uint32_t i = 0; i < r.n; i++)
		if (setup_handle(&r, &r.d[i], ca, nafhex)) {
			kl_errf(err, errlen, "libcurl: cannot set up device %u", i);
			cleanup(&r);
			return 1;
		}
	r.cpu0 = cpu_now();
	r.scpu0 = proc_cpu(c->server_pid);
	r.t0 = now_ns();
	next_iv = r.t0 + (uint64_t)c->interval_ms * 1000000ull;
	for (uint32_t i = 0; i < r.n; i++) {
		start(&r, &r.d[i], r.t0);
		if (!r.d[i].active)
			finish_device(&r, &r.d[i], r.t0);
	}
	while (r.active) {
		CURLMsg *msg;
		int left;

		if (*stop) {
			interrupted = 1;
			break;
		}
		if (curl_multi_perform(r.m, &running) != CURLM_OK) {
			kl_errf(err, errlen, "libcurl: curl_multi_perform failed");
			interrupted = 1;
			break;
		}
		t = now_ns();
		while ((msg = curl_multi_info_read(r.m, &left))) {
			struct dev *d = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
			if (d)
				done(&r, d, msg->data.result, t);
		}
		if (c->interval_ms && t >= next_iv) {
			interval_line(&r, t, out);
			next_iv += (uint64_t)c->interval_ms * 1000000ull;
		}
		if (r.active)
			curl_multi_poll(r.m, NULL, 0, 50, NULL);
	}
	t = now_ns();
	r.cpu_s = cpu_now() - r.cpu0;
	r.scpu_s = r.scpu0 >= 0 && proc_cpu(c->server_pid) >= 0 ? proc_cpu(c->server_pid) - r.scpu0
								  : -1;
	for (uint32_t i = 0; interrupted && i < r.n; i++)
		if (r.d[i].active) {
			curl_multi_remove_handle(r.m, r.d[i].h);
			r.d[i].active = 0;
			r.d[i].fail = NF_INTERRUPTED;
			r.active--;
			finish_device(&r, &r.d[i], t);
		}
	if (c->interval_ms)
		interval_line(&r, t, out);
	*sum = summary(&r, t, interrupted);
	*exit_code = r.ok_devices == r.n && !interrupted ? 0 : 1;
	cleanup(&r);
	if (!*sum) {
		kl_errf(err, errlen, "out of memory");
		return 1;
	}
	return 0;
}
