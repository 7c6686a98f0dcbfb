/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * diameter_testd: kl_diameter's server with recording handlers, standing in for keylined in
 * tests/test_diameter.py. The handlers keep what was pushed in memory and, with a commit
 * callback (the default), stage changes that one commit per kl_diameter_poll makes durable:
 * appended to --commit-file and fsync'ed, then printed as JSON lines on stdout. Keys are shown
 * as key check values only.
 *
 *   diameter_testd --identity ID --listen ADDR --port N --cert F --key F --ca F
 *       [--realm R] [--vendor N] [--app N] [--allow-peer ID]... [--max-queue N]
 *       [--delay-ms N]        sleep before each commit (answers must wait for it)
 *       [--fail-imsi IMSI]    the handler refuses pushes for this IMSI
 *       [--fail-commit-imsi IMSI]  the commit fails when its batch holds this IMSI
 *       [--no-commit]         no commit callback: each handler makes its change durable
 *       [--commit-file F] [--log-level error|warning|info|debug]
 *       [--https-port N]      also serve HTTPS (libmicrohttpd + GnuTLS, --cert/--key, a pool of
 *                             4 threads) in this process: GET /echo/X answers "X\n" (tests of
 *                             the GnuTLS interposers: other sessions are not freeDiameter's)
 *
 * stdout: "diameter_testd: ready" once listening, one JSON object per committed change
 * {"event":"commit","op":"push"|"remove","type":..,...}, and at exit a {"event":"stats",...}
 * line (with the GnuTLS interposers' counters: tls_* as kl_diameter_tls_counts gives them) and
 * "diameter_testd: stopped". Exit 0, or 2 for bad arguments or a failed start.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "kl_crypto.h"
#include "kl_diameter.h"

#define MAX_ALLOW 8
#define NTP_UNIX_OFFSET 2208988800u

static volatile sig_atomic_t g_stop;

static struct {
	const char *fail_imsi, *fail_commit_imsi;
	unsigned delay_ms;
	FILE *commit_file;
	json_t *staged; /* array of change objects waiting for the commit */
	int staged_fail;
	/* what is present now: "type:id" strings in an open-addressing set */
	char **set;
	size_t set_cap, set_n;
	unsigned long commits;
} g;

static void on_signal(int s)
{
	(void)s;
	g_stop = 1;
}

static void die(const char *msg)
{
	fprintf(stderr, "diameter_testd: %s\n", msg);
	exit(2);
}

/* ---- a small string set: which entries exist ------------------------------------------------ */

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static size_t set_slot(const char *k)
{
	size_t i = fnv(k) & (g.set_cap - 1);

	while (g.set[i] && strcmp(g.set[i], k))
		i = (i + 1) & (g.set_cap - 1);
	return i;
}

static void set_grow(void)
{
	char **old = g.set;
	size_t oc = g.set_cap;

	g.set_cap = oc ? oc * 2 : 1024;
	g.set = calloc(g.set_cap, sizeof(char *));
	if (!g.set)
		die("out of memory");
	for (size_t i = 0; i < oc; i++)
		if (old[i])
			g.set[set_slot(old[i])] = old[i];
	free(old);
}

static void set_add(const char *k)
{
	size_t i;

	if ((g.set_n + 1) * 2 > g.set_cap)
		set_grow();
	i = set_slot(k);
	if (!g.set[i]) {
		g.set[i] = strdup(k);
		if (!g.set[i])
			die("out of memory");
		g.set_n++;
	}
}

/* Removal by re-inserting the rest of the cluster (linear probing). */
static int set_del(const char *k)
{
	size_t i, j;

	if (!g.set_cap)
		return 0;
	i = set_slot(k);
	if (!g.set[i])
		return 0;
	free(g.set[i]);
	g.set[i] = NULL;
	g.set_n--;
	for (j = (i + 1) & (g.set_cap - 1); g.set[j]; j = (j + 1) & (g.set_cap - 1)) {
		char *s = g.set[j];

		g.set[j] = NULL;
		g.set[set_slot(s)] = s;
	}
	return 1;
}

static int set_has(const char *k)
{
	return g.set_cap && g.set[set_slot(k)] != NULL;
}

/* ---- recording ----------------------------------------------------------------------------- */

static void kcv_hex(const uint8_t *key, unsigned len, char out[7])
{
	uint8_t k[KL_KCV_LEN];

	if (kl_kcv(key, len, k) < 0) {
		strcpy(out, "??????");
		return;
	}
	snprintf(out, 7, "%02x%02x%02x", k[0], k[1], k[2]);
}

static json_t *change(const char *op, const char *type)
{
	json_t *o = json_object();

	json_object_set_new(o, "event", json_string("commit"));
	json_object_set_new(o, "op", json_string(op));
	json_object_set_new(o, "type", json_string(type));
	return o;
}

static void set_id(json_t *o, const char *name, const uint8_t *id, uint16_t len)
{
	json_object_set_new(o, name, json_stringn((const char *)id, len));
}

static long long unix_time(uint64_t ntp)
{
	return ntp ? (long long)(ntp >> 32) - NTP_UNIX_OFFSET : 0;
}

/* What the change does to the set, and whether the entry was there (for removes). */
static int apply(json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *op = json_string_value(json_object_get(o, "op"));
	json_t *idv = json_object_get(o, "id");
	const char *id = idv ? json_string_value(idv)
			     : json_string_value(json_object_get(o, "imsi"));
	char k[512];

	snprintf(k, sizeof(k), "%s:%s", type, id ? id : "");
	if (!strcmp(op, "push")) {
		set_add(k);
		return 1;
	}
	return set_del(k);
}

/* Make one change durable: file + fsync, then stdout. */
static int write_durable(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	if (!s)
		return -ENOMEM;
	if (g.commit_file && (fprintf(g.commit_file, "%s\n", s) < 0 || fflush(g.commit_file))) {
		free(s);
		return -EIO;
	}
	printf("%s\n", s);
	free(s);
	return 0;
}

static int sync_file(void)
{
	if (g.commit_file && fsync(fileno(g.commit_file)))
		return -errno;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR && !g_stop)
		;
}

/* A change from a handler: staged for the commit, or (no commit) made durable now. */
static int record(json_t *o, int with_commit)
{
	int rc = 0;

	if (with_commit) {
		json_array_append_new(g.staged, o);
		return 0;
	}
	if (g.delay_ms)
		sleep_ms(g.delay_ms);
	json_object_set_new(o, "found", json_boolean(apply(o)));
	if ((rc = write_durable(o)) == 0)
		rc = sync_file();
	json_decref(o);
	fflush(stdout);
	return rc;
}

static int g_with_commit = 1;

/* A push of a key under an identity (MUK, pair key): its KCV, length and expiry. */
static int key_push(const char *type, const uint8_t *id, uint16_t id_len, const uint8_t *key,
		    unsigned key_len, uint64_t expires, json_t **out)
{
	json_t *o = change("push", type);
	char kcv[7];

	kcv_hex(key, key_len, kcv);
	set_id(o, "id", id, id_len);
	json_object_set_new(o, "kcv", json_string(kcv));
	json_object_set_new(o, "key_len", json_integer(key_len));
	json_object_set_new(o, "expires", json_integer(unix_time(expires)));
	*out = o;
	return 0;
}

static int h_push_muk(void *arg, const uint8_t *id, uint16_t id_len, const uint8_t *muk,
		      unsigned muk_len, uint64_t expires, uint8_t services)
{
	json_t *o;

	(void)arg;
	key_push("muk", id, id_len, muk, muk_len, expires, &o);
	if (services)
		json_object_set_new(o, "services", json_integer(services));
	return record(o, g_with_commit);
}

static int h_push_pair(void *arg, const uint8_t *peer, uint16_t len, const uint8_t *key,
		       unsigned key_len, uint64_t expires)
{
	json_t *o;

	(void)arg;
	key_push("pair", peer, len, key, key_len, expires, &o);
	return record(o, g_with_commit);
}


static int h_push_e2m(void *arg, const char *imsi, uint32_t key_id, const uint8_t key[32],
		      uint64_t expires)
{
	json_t *o;
	char kcv[7], kid[9];

	(void)arg;
	if (g.fail_imsi && !strcmp(imsi, g.fail_imsi))
		return -EIO;
	if (g.fail_commit_imsi && !strcmp(imsi, g.fail_commit_imsi))
		g.staged_fail = 1;
	o = change("push", "e2m");
	kcv_hex(key, 32, kcv);
	snprintf(kid, sizeof(kid), "%08x", key_id);
	json_object_set_new(o, "imsi", json_string(imsi));
	json_object_set_new(o, "key_id", json_string(kid));
	json_object_set_new(o, "kcv", json_string(kcv));
	json_object_set_new(o, "expires", json_integer(unix_time(expires)));
	return record(o, g_with_commit);
}

static int h_put_appid(void *arg, const uint8_t *appid, uint16_t len, const char *imsi)
{
	json_t *o = change("push", "appid");

	(void)arg;
	set_id(o, "id", appid, len);
	json_object_set_new(o, "imsi", json_string(imsi));
	return record(o, g_with_commit);
}

static int h_put_emse(void *arg, const uint8_t *id, uint16_t id_len, const uint8_t *psk,
		      unsigned psk_len)
{
	json_t *o = change("push", "emse");
	char kcv[7];

	(void)arg;
	kcv_hex(psk, psk_len, kcv);
	set_id(o, "id", id, id_len);
	json_object_set_new(o, "kcv", json_string(kcv));
	json_object_set_new(o, "key_len", json_integer(psk_len));
	return record(o, g_with_commit);
}

static json_t *groups_json(const struct kl_diameter_group *g, unsigned n)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < n; i++) {
		char s[16];

		snprintf(s, sizeof(s), "%02x%02x%02x:%u", g[i].domain[0], g[i].domain[1],
			 g[i].domain[2], g[i].group);
		json_array_append_new(a, json_string(s));
	}
	return a;
}

static int h_put_ue_groups(void *arg, const uint8_t *id, uint16_t id_len,
			   const struct kl_diameter_group *groups, unsigned n)
{
	json_t *o = change("push", "ue-groups");

	(void)arg;
	set_id(o, "id", id, id_len);
	json_object_set_new(o, "groups", groups_json(groups, n));
	return record(o, g_with_commit);
}

/* Removes answer -ENOENT for an absent entry (kl_diameter answers success all the same). */
static int removed(json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	json_t *idv = json_object_get(o, "id");
	const char *id = idv ? json_string_value(idv)
			     : json_string_value(json_object_get(o, "imsi"));
	char k[512];

	snprintf(k, sizeof(k), "%s:%s", type, id ? id : "");
	if (!set_has(k)) {
		json_decref(o);
		return -ENOENT;
	}
	return record(o, g_with_commit);
}

static int h_remove_muk(void *arg, const uint8_t *id, uint16_t id_len)
{
	json_t *o = change("remove", "muk");

	(void)arg;
	set_id(o, "id", id, id_len);
	return removed(o);
}

static int h_remove_e2m(void *arg, const char *imsi, int has_key_id, uint32_t key_id)
{
	json_t *o = change("remove", "e2m");

	(void)arg;
	json_object_set_new(o, "imsi", json_string(imsi));
	if (has_key_id) {
		char kid[9];

		snprintf(kid, sizeof(kid), "%08x", key_id);
		json_object_set_new(o, "key_id", json_string(kid));
	}
	return removed(o);
}

static int h_remove_appid(void *arg, const uint8_t *appid, uint16_t len)
{
	json_t *o = change("remove", "appid");

	(void)arg;
	set_id(o, "id", appid, len);
	return removed(o);
}

static int h_remove_emse(void *arg, const uint8_t *id, uint16_t id_len)
{
	json_t *o = change("remove", "emse");

	(void)arg;
	set_id(o, "id", id, id_len);
	return removed(o);
}

static int h_remove_pair(void *arg, const uint8_t *peer, uint16_t len)
{
	json_t *o = change("remove", "pair");

	(void)arg;
	set_id(o, "id", peer, len);
	return removed(o);
}

static int h_remove_ue_groups(void *arg, const uint8_t *id, uint16_t id_len,
			      const struct kl_diameter_group *groups, unsigned n)
{
	json_t *o = change("remove", "ue-groups");

	(void)arg;
	set_id(o, "id", id, id_len);
	json_object_set_new(o, "groups", groups_json(groups, n));
	return removed(o);
}

static int h_commit(void *arg)
{
	size_t i;
	json_t *o;
	int rc = 0;

	(void)arg;
	g.commits++;
	if (g.delay_ms)
		sleep_ms(g.delay_ms);
	if (g.staged_fail) {
		g.staged_fail = 0;
		json_array_clear(g.staged);
		return -EIO;
	}
	json_array_foreach(g.staged, i, o)
	{
		json_object_set_new(o, "found", json_boolean(apply(o)));
		if ((rc = write_durable(o)))
			break;
	}
	if (!rc)
		rc = sync_file();
	json_array_clear(g.staged);
	fflush(stdout);
	return rc;
}

static unsigned long num(const char *opt, const char *v, unsigned long max)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 10);
	if (!*v || *end || errno || x > max || *v == '-') {
		fprintf(stderr, "diameter_testd: %s: want a number up to %lu\n", opt, max);
		exit(2);
	}
	return x;
}

/* control/diameter/kl_diameter.c: sends confined, byes confined, sends passed through, byes passed */

static enum MHD_Result https_echo(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **ctx)
{
	struct MHD_Response *r;
	enum MHD_Result rc;
	char body[256];
	int n;

	(void)cls;
	(void)version;
	(void)upload;
	if (!*ctx) { /* first call: headers only */
		*ctx = c;
		return MHD_YES;
	}
	if (*upload_len || strcmp(method, "GET") || strncmp(url, "/echo/", 6) ||
	    (n = snprintf(body, sizeof(body), "%s\n", url + 6)) >= (int)sizeof(body))
		return MHD_NO;
	r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *b = f ? calloc(1, 65536) : NULL;

	if (b && fread(b, 1, 65535, f) == 0) {
		free(b);
		b = NULL;
	}
	if (f)
		fclose(f);
	return b;
}

static void log_sink(void *arg, enum kl_diameter_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)arg;
	fprintf(stderr, "diameter_testd: %s: %s\n", names[level], msg);
}

int main(int argc, char **argv)
{
	const char *allow[MAX_ALLOW + 1] = { 0 };
	struct kl_diameter_params p = { 0 };
	struct kl_diameter_handlers h = {
		.push_muk = h_push_muk,
		.push_e2m = h_push_e2m,
		.put_appid = h_put_appid,
		.put_emse = h_put_emse,
		.put_ue_groups = h_put_ue_groups,
		.remove_muk = h_remove_muk,
		.remove_e2m = h_remove_e2m,
		.remove_appid = h_remove_appid,
		.remove_emse = h_remove_emse,
		.remove_ue_groups = h_remove_ue_groups,
		.push_pair = h_push_pair,
		.remove_pair = h_remove_pair,
		.commit = h_commit,
	};
	struct kl_diameter_stats st;
	struct kl_diameter *d;
	struct sigaction sa;
	unsigned nallow = 0, https_port = 0;
	struct MHD_Daemon *mhd = NULL;
	char *https_cert = NULL, *https_key = NULL;
	uint64_t tls[4];
	char err[512];

	p.log = log_sink;
	p.log_level = KL_DIAMETER_LOG_INFO;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--no-commit")) {
			g_with_commit = 0;
			h.commit = NULL;
			continue;
		}
		if (!v)
			die("an option lacks its value");
		i++;
		if (!strcmp(o, "--identity"))
			p.identity = v;
		else if (!strcmp(o, "--realm"))
			p.realm = v;
		else if (!strcmp(o, "--listen"))
			p.listen = v;
		else if (!strcmp(o, "--port"))
			p.port = (uint16_t)num(o, v, 65535);
		else if (!strcmp(o, "--cert"))
			p.tls_cert = v;
		else if (!strcmp(o, "--key"))
			p.tls_key = v;
		else if (!strcmp(o, "--ca"))
			p.tls_ca = v;
		else if (!strcmp(o, "--fd-conf"))
			p.fd_conf = v;
		else if (!strcmp(o, "--vendor"))
			p.vendor_id = (uint32_t)num(o, v, 0xFFFFFFFFul);
		else if (!strcmp(o, "--app"))
			p.app_id = (uint32_t)num(o, v, 0xFFFFFFFFul);
		else if (!strcmp(o, "--https-port"))
			https_port = (unsigned)num(o, v, 65535);
		else if (!strcmp(o, "--max-queue"))
			p.max_queue = (unsigned)num(o, v, KL_DIAMETER_MAX_QUEUE);
		else if (!strcmp(o, "--allow-peer")) {
			if (nallow == MAX_ALLOW)
				die("too many --allow-peer");
			allow[nallow++] = v;
			p.allowed_peers = allow;
		} else if (!strcmp(o, "--delay-ms"))
			g.delay_ms = (unsigned)num(o, v, 60000);
		else if (!strcmp(o, "--fail-imsi"))
			g.fail_imsi = v;
		else if (!strcmp(o, "--fail-commit-imsi"))
			g.fail_commit_imsi = v;
		else if (!strcmp(o, "--commit-file")) {
			g.commit_file = fopen(v, "a");
			if (!g.commit_file)
				die("cannot open --commit-file");
		} else if (!strcmp(o, "--log-level")) {
			static const char *const lv[] = { "error", "warning", "info", "debug" };
			unsigned l;

			for (l = 0; l < 4 && strcmp(v, lv[l]); l++)
				;
			if (l == 4)
				die("--log-level: error, warning, info or debug");
			p.log_level = (enum kl_diameter_log_level)l;
		} else {
			fprintf(stderr, "diameter_testd: unknown option %s\n", o);
			return 2;
		}
	}
	g.staged = json_array();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	d = kl_diameter_start(&p, &h, err, sizeof(err));
	if (!d) {
		fprintf(stderr, "diameter_testd: %s\n", err);
		return 2;
	}
	if (https_port) {
		https_cert = p.tls_cert ? slurp(p.tls_cert) : NULL;
		https_key = p.tls_key ? slurp(p.tls_key) : NULL;
		if (https_cert && https_key)
			mhd = MHD_start_daemon(
				MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS | MHD_USE_ERROR_LOG,
				(uint16_t)https_port, NULL, NULL, https_echo, NULL,
				MHD_OPTION_HTTPS_MEM_CERT, https_cert, MHD_OPTION_HTTPS_MEM_KEY,
				https_key, MHD_OPTION_THREAD_POOL_SIZE, 4u,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
		if (!mhd) {
			fprintf(stderr, "diameter_testd: cannot serve HTTPS on port %u\n", https_port);
			kl_diameter_stop(d);
			return 2;
		}
	}
	printf("diameter_testd: ready\n");
	fflush(stdout);
	while (!g_stop) {
		struct pollfd pfd = { kl_diameter_fd(d), POLLIN, 0 };

		if (poll(&pfd, 1, 200) > 0 && (pfd.revents & POLLIN))
			kl_diameter_poll(d, 64);
	}
	if (mhd)
		MHD_stop_daemon(mhd);
	free(https_cert);
	free(https_key);
	kl_diameter_get_stats(d, &st);
	kl_diameter_stop(d);
	kl_diameter_tls_counts(tls);
	printf("{\"event\":\"stats\",\"ok\":%llu,\"rejected\":%llu,\"failed\":%llu,\"busy\":%llu,"
	       "\"commits\":%llu,\"peers_refused\":%u,\"tls_confined_sends\":%llu,"
	       "\"tls_confined_byes\":%llu,\"tls_passed_sends\":%llu,\"tls_passed_byes\":%llu}\n",
	       (unsigned long long)st.answered_ok, (unsigned long long)st.rejected,
	       (unsigned long long)st.failed, (unsigned long long)st.busy,
	       (unsigned long long)st.commits, st.peers_refused, (unsigned long long)tls[0],
	       (unsigned long long)tls[1], (unsigned long long)tls[2], (unsigned long long)tls[3]);
	printf("diameter_testd: stopped\n");
	fflush(stdout);
	if (g.commit_file)
		fclose(g.commit_file);
	json_decref(g.staged);
	for (size_t i = 0; i < g.set_cap; i++)
		free(g.set[i]);
	free(g.set);
	return 0;
}
