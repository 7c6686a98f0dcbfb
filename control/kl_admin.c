/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined admin socket: epoll over a listening Unix socket and its clients, line-framed JSON
 * requests executed on the calling (table writer) thread. See kl_admin.h for the protocol.
 */
#include "kl_admin.h"
#include "kl_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kl_population.h"
#include "kl_rotate.h"
#include "kl_store.h"
#include "kl_write.h"

#define NTP_UNIX_OFFSET 2208988800ull
#define UNIX_MAX (UINT32_MAX - NTP_UNIX_OFFSET) /* last second NTP era 0 can hold (2036) */
#define OUT_HIGH_WATER (64u * 1024)		 /* answers queued before a client's input pauses */
#define ACCEPTS_PER_POLL 16
#define ERR_LEN 320

struct kl_admin_client {
	int fd;
	bool eof;     /* the peer will send nothing more */
	bool closing; /* no more requests: close once the answers are out */
	uint32_t events;
	uint32_t in_len;
	uint32_t serial; /* told apart from a later client in the same slot */
	uint64_t last_ms;
	uint64_t line_ms; /* arrival of the first byte of the partial line buffered now */
	char *in; /* max_line + 1 bytes */
	char *out;
	size_t out_off, out_len, out_cap;
};

struct kl_admin {
	int lfd, efd;
	dev_t dev;
	ino_t ino;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct kl_table *table;
	struct kl_store *store; /* NULL: no durable store */
	unsigned e2m_ring;	/* the table's ring size, for kl_store_push_e2m */
	char server_identity[KL_TABLE_ID_MAX + 1]; /* "": none (no pair keys imported) */
	const struct kl_stats_view *stats;
	struct kl_rotate *rotate; /* NULL: no MSK rotation configured */
	struct {
		uint32_t id;	 /* of the last backup started (0: none yet) */
		bool running;	 /* the store's backup thread is copying backup `id` */
		uint32_t last_id; /* of the last backup finished; its result: */
		struct kl_store_backup_result last;
	} bk;
	int (*diameter_status)(void *arg, struct kl_admin_diameter_status *st);
	void *diameter_arg;
	int (*ext_cmd)(void *arg, const char *cmd, const json_t *req, json_t **answer);
	void *ext_arg;
	json_t *(*naf_status)(void *arg);
	void (*ext_status)(void *arg, json_t *status);
	unsigned max_clients, nclients;
	uint32_t max_line, idle_ms, line_ms;
	uint32_t serial;
	struct kl_ctl_stats *ctl; /* NULL: not counted */
	uint64_t answered;
	void (*log)(void *arg, enum kl_admin_log_level level, const char *msg);
	void *log_arg;
	struct kl_admin_client *clients;
};

/* ---- small helpers ---------------------------------------------------------------------------- */


__attribute__((format(printf, 3, 4)))
static void alog(const struct kl_admin *a, enum kl_admin_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (a->log)
		a->log(a->log_arg, level, msg);
	else if (level <= KL_ADMIN_LOG_INFO)
		fprintf(stderr, "keyline admin: %s\n", msg);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* jansson copies every string it parses (lexer buffer, then the value): zero each block it frees,
 * so key hex in a request does not outlive the request in freed heap memory. */
static void wiping_free(void *p)
{
	if (!p)
		return;
	kl_memzero(p, malloc_usable_size(p));
	free(p);
}

/* Wipe a JSON string value in place (the value's buffer is ours until json_decref). */
static void wipe_json_string(json_t *v)
{
	if (json_is_string(v))
		kl_memzero((void *)(uintptr_t)json_string_value(v), json_string_length(v));
}

/* An identity for log lines: printable ASCII kept, the rest as \xHH, long ones cut. */
static const char *printable(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
	}
	if (o + 8 >= cap && cap > 4) {
		o = o < cap - 4 ? o : cap - 4;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = 0;
	return buf;
}

static void kcv_hex(const uint8_t kcv[KL_KCV_LEN], char out[2 * KL_KCV_LEN + 1])
{
	snprintf(out, 2 * KL_KCV_LEN + 1, "%02X%02X%02X", kcv[0], kcv[1], kcv[2]);
}

static json_t *kcv_json(const uint8_t kcv[KL_KCV_LEN])
{
	char hex[2 * KL_KCV_LEN + 1];

	kcv_hex(kcv, hex);
	return json_string(hex);
}

static json_int_t ntp_to_unix(uint64_t ntp)
{
	return (json_int_t)(ntp >> 32) - (json_int_t)NTP_UNIX_OFFSET;
}

static uint64_t unix_to_ntp(uint64_t unix_s)
{
	return (unix_s + NTP_UNIX_OFFSET) << 32;
}

/* "DDDDDD:G": Key Domain ID as 6 hex digits, key group in decimal (0..65535). */
static int parse_group(const char *s, size_t len, struct kl_group_ref *ref)
{
	unsigned g = 0;

	if (len < 8 || len > 12 || s[6] != ':')
		return -1;
	for (unsigned i = 0; i < 3; i++) {
		unsigned v = 0;

		for (unsigned k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			int d = kl_hexval(c);

			if (d < 0)
				return -1;
			v = v << 4 | (unsigned)d;
		}
		ref->domain[i] = (uint8_t)v;
	}
	for (size_t i = 7; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		g = g * 10 + (unsigned)(s[i] - '0');
		if (g > 65535)
			return -1;
	}
	ref->group = (uint16_t)g;
	return 0;
}

static bool imsi_ok(const char *s, size_t len)
{
	if (len < 1 || len >= KL_TABLE_IMSI_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Names we may echo back: short, lowercase words, which cannot be key material. */
static bool plain_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 24)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int parse_kind(const char *s, enum kl_table_kind *kind)
{
	if (!kl_table_kind_parse(s, kind))
		return 0;
	for (unsigned k = 0; k < KL_TK__COUNT; k++) {
		if (!strcmp(s, kl_table_kind_plural(k))) {
			*kind = (enum kl_table_kind)k;
			return 0;
		}
	}
	if (!strcmp(s, "e2m")) {
		*kind = KL_TK_E2M;
		return 0;
	}
	return -1;
}

/* ---- request context and field access ------------------------------------------------------- */

struct req {
	struct kl_admin *a;
	json_t *ans;	/* the answer being built: {"ok":true,...} */
	char err[ERR_LEN];
	char what[240]; /* summary for the log line of a write: "ue \"id\": added" */
};

__attribute__((format(printf, 2, 3)))
static int rerr(struct req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -1;
}

static void aset(struct req *r, const char *key, json_t *v)
{
	json_object_set_new(r->ans, key, v);
}

/* Every field of o must be in allowed (NULL-terminated); "cmd" is allowed at the top level. */
static int fields_ok(struct req *r, json_t *o, const char *where, const char *const *allowed)
{
	const char *name;
	json_t *v;

	json_object_foreach(o, name, v) {
		bool ok = !*where && !strcmp(name, "cmd");

		for (unsigned i = 0; !ok && allowed && allowed[i]; i++)
			ok = !strcmp(name, allowed[i]);
		if (!ok) {
			if (plain_name(name))
				return rerr(r, "unknown field \"%s%s\"", where, name);
			return rerr(r, "unknown field in %s (name not shown)",
				    *where ? where : "request");
		}
	}
	return 0;
}

static int get_str(struct req *r, json_t *o, const char *where, const char *name, bool required,
		   const char **s, size_t *len)
{
	json_t *v = json_object_get(o, name);

	*s = NULL;
	*len = 0;
	if (!v) {
		if (required)
			return rerr(r, "%s%s: missing", where, name);
		return 0;
	}
	if (!json_is_string(v))
		return rerr(r, "%s%s: must be a string", where, name);
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

/* An identity of 1..KL_TABLE_ID_MAX bytes. */
static int get_id(struct req *r, json_t *o, const char *name, const char **s, size_t *len)
{
	if (get_str(r, o, "", name, true, s, len))
		return -1;
	if (*len < 1 || *len > KL_TABLE_ID_MAX)
		return rerr(r, "%s: %zu bytes, must be 1..%u", name, *len, KL_TABLE_ID_MAX);
	return 0;
}

static int get_imsi(struct req *r, json_t *o, const char *name, const char **s)
{
	size_t len;

	if (get_str(r, o, "", name, true, s, &len))
		return -1;
	if (!imsi_ok(*s, len))
		return rerr(r, "%s: must be 1..%u decimal digits", name, KL_TABLE_IMSI_MAX - 1);
	return 0;
}

static int get_uint(struct req *r, json_t *o, const char *where, const char *name, bool required,
		    uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(o, name);

	if (!v) {
		if (required)
			return rerr(r, "%s%s: missing", where, name);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return rerr(r, "%s%s: must be an integer 0..%" PRIu64, where, name, max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}


/*
 * A key as hex, min..max bytes, into out. The JSON string is wiped whatever the outcome, and
 * the error never quotes the input.
 */
static int get_key(struct req *r, json_t *o, const char *where, const char *name, size_t min,
		   size_t max, uint8_t *out, size_t *len)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	size_t n, i;
	int rc = 0;

	if (!v)
		return rerr(r, "%s%s: missing", where, name);
	if (!json_is_string(v))
		return rerr(r, "%s%s: must be a hex string", where, name);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		rc = rerr(r, "%s%s: empty", where, name);
	else if (n % 2)
		rc = rerr(r, "%s%s: odd number of hex digits (%zu)", where, name, n);
	else if (n / 2 < min || n / 2 > max)
		rc = min == max ? rerr(r, "%s%s: %zu bytes, must be %zu", where, name, n / 2, min)
				: rerr(r, "%s%s: %zu bytes, must be %zu..%zu", where, name, n / 2,
				       min, max);
	for (i = 0; !rc && i < n; i += 2) {
		int hi = kl_hexval(s[i]), lo = kl_hexval(s[i + 1]);

		if (hi < 0 || lo < 0) {
			rc = rerr(r, "%s%s: not hex (bad digit at position %zu)", where, name,
				  i + (hi >= 0) + 1);
			break;
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	wipe_json_string(v);
	if (rc) {
		kl_memzero(out, max);
		return rc;
	}
	*len = n / 2;
	return 0;
}

static int get_group(struct req *r, json_t *o, const char *name, struct kl_group_ref *ref)
{
	const char *s;
	size_t len;

	if (get_str(r, o, "", name, true, &s, &len))
		return -1;
	if (parse_group(s, len, ref))
		return rerr(r, "%s: not a key group (DDDDDD:G: Key Domain ID as 6 hex digits, "
			       "key group 0..65535 in decimal)", name);
	return 0;
}

/* The table key of kind from "id" (a group's is its 5-byte name). */
static int get_entry_key(struct req *r, json_t *o, enum kl_table_kind kind, uint8_t *key,
			 uint16_t *len)
{
	const char *s;
	size_t n;

	if (kind == KL_TK_GROUP) {
		struct kl_group_ref ref;

		if (get_group(r, o, "id", &ref))
			return -1;
		kl_write_group_key(&ref, key);
		*len = 5;
		return 0;
	}
	if (kind == KL_TK_E2M) {
		if (get_imsi(r, o, "id", &s))
			return -1;
		n = strlen(s);
	} else if (get_id(r, o, "id", &s, &n)) {
		return -1;
	}
	memcpy(key, s, n);
	*len = (uint16_t)n;
	return 0;
}

static int get_kind(struct req *r, json_t *o, enum kl_table_kind *kind)
{
	const char *s;
	size_t len;

	if (get_str(r, o, "", "kind", true, &s, &len))
		return -1;
	if (parse_kind(s, kind)) {
		char names[128];
		size_t n = 0;

		names[0] = '\0';
		for (unsigned k = 0; k < KL_TK__COUNT && n < sizeof(names); k++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", k ? ", " : "",
					      kl_table_kind_name(k));
		return rerr(r, "kind: unknown (one of %s)", names);
	}
	return 0;
}

/* "services": a list of service names (or one comma-separated string); absent: *bits kept. */
static int get_services(struct req *r, json_t *o, bool required, uint8_t *bits)
{
	json_t *v = json_object_get(o, "services"), *e;
	char list[128];
	size_t n = 0, i;
	unsigned bad = 0;

	if (!v)
		return required ? rerr(r, "services: missing") : 0;
	if (json_is_string(v)) {
		snprintf(list, sizeof(list), "%s", json_string_value(v));
	} else if (json_is_array(v) && json_array_size(v) <= 2 * KL_SVC__COUNT) {
		list[0] = '\0';
		json_array_foreach(v, i, e) {
			if (!json_is_string(e) || strchr(json_string_value(e), ','))
				return rerr(r, "services[%zu]: not a service name", i);
			n += (size_t)snprintf(list + n, sizeof(list) - (n < sizeof(list) ? n : 0),
					      "%s%s", i ? "," : "", json_string_value(e));
			if (n >= sizeof(list))
				return rerr(r, "services: too long");
		}
	} else {
		return rerr(r, "services: must be a list of service names");
	}
	if (kl_service_parse(list, bits, &bad)) {
		char names[64];

		return rerr(r, "services: item %u is not a service or is listed twice (one of %s)",
			    bad, kl_service_format(KL_SVC_ALL, names, sizeof(names)));
	}
	return 0;
}

static json_t *services_json(uint8_t bits)
{
	json_t *l = json_array();

	for (unsigned b = 0; b < KL_SVC__COUNT; b++)
		if (bits & (1u << b))
			json_array_append_new(l, json_string(kl_service_name(b)));
	return l;
}

static int table_error(struct req *r, int rc, enum kl_table_kind kind)
{
	kl_write_table_error(rc, kind, r->err, sizeof(r->err));
	return -1;
}

/* Is there an entry under this key in the table now (before a write)? */
static bool in_table(struct req *r, enum kl_table_kind kind, const uint8_t *key, uint16_t len)
{
	struct kl_table_key tk = { .id = key, .len = len };
	const void *e = NULL;

	return kl_table_lookup_bulk(r->a->table, kind, &tk, 1, &e) && e;
}

/* One durable write through kl_write (store first, then the table; undone in the store when
 * the table refuses): the answer's error, the log's note. The write is wiped. @return the
 * table's rc (0 added, 1 replaced) or -1 (answered). */
static int write_do(struct req *r, struct kl_write *w)
{
	struct kl_writer wr = { .table = r->a->table, .store = r->a->store,
				.e2m_ring = r->a->e2m_ring };
	struct kl_write_result res;
	int rc = kl_write_do(&wr, w, &res);

	kl_write_wipe(w);
	if (res.note[0])
		alog(r->a, KL_ADMIN_LOG_ERROR, "%s", res.note);
	if (rc < 0)
		return rerr(r, "%s", res.msg);
	return rc;
}

/* Answer and log summary of a write. */
static int put_result(struct req *r, int rc, enum kl_table_kind kind, const char *id, size_t idlen,
		      const char *kcv)
{
	char idp[160];

	if (rc < 0)
		return table_error(r, rc, kind);
	aset(r, "result", json_string(rc ? "replaced" : "added"));
	aset(r, "kind", json_string(kl_table_kind_name(kind)));
	aset(r, "id", json_stringn(id, idlen));
	if (kcv)
		aset(r, "kcv", json_string(kcv));
	snprintf(r->what, sizeof(r->what), "%s \"%s\": %s%s%s%s", kl_table_kind_name(kind),
		 printable(id, idlen, idp, sizeof(idp)), rc ? "replaced" : "added",
		 kcv ? " (kcv " : "", kcv ? kcv : "", kcv ? ")" : "");
	return 0;
}

/* ---- commands --------------------------------------------------------------------------------- */

static int cmd_ping(struct req *r, json_t *j)
{
	if (fields_ok(r, j, "", NULL))
		return -1;
	aset(r, "pong", json_true());
	return 0;
}

/* The version and backends, answered by version and status. */
static void set_version(struct req *r, const struct kl_stats_view *v)
{
	aset(r, "version", json_string(v && v->version ? v->version : "unknown"));
	if (v && v->io_name)
		aset(r, "io_backend", json_string(v->io_name));
	if (v && v->crypto_name)
		aset(r, "crypto_backend", json_string(v->crypto_name));
}

static int cmd_version(struct req *r, json_t *j)
{
	if (fields_ok(r, j, "", NULL))
		return -1;
	set_version(r, r->a->stats);
	return 0;
}

static int parse_seed(struct req *r, json_t *o, uint64_t *seed)
{
	json_t *v = json_object_get(o, "seed");
	const char *s;
	uint64_t x = 0;

	if (!v)
		return rerr(r, "params.seed: missing");
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*seed = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return rerr(r, "params.seed: must be an integer or a decimal string");
	s = json_string_value(v);
	if (!*s || (s[0] == '0' && s[1]))
		return rerr(r, "params.seed: not a decimal number 0..%" PRIu64, UINT64_MAX);
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return rerr(r, "params.seed: not a decimal number 0..%" PRIu64, UINT64_MAX);
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*seed = x;
	return 0;
}

static int pop_params_from_json(struct req *r, json_t *o, struct kl_pop_params *p)
{
	static const char *const f[] = { "seed",  "ues",      "groups", "emses",	"imsis",
					 "appids", "e2m-keys", "now",    "msk-period", "pairs",
					 "services", NULL };
	uint64_t v[10] = { 0 };
	char cerr[200];

	if (!json_is_object(o))
		return rerr(r, "params: must be an object");
	if (fields_ok(r, o, "params.", f) || parse_seed(r, o, &p->seed) ||
	    get_uint(r, o, "params.", "ues", true, KL_POP_MAX_UES, &v[0]) ||
	    get_uint(r, o, "params.", "groups", true, KL_POP_MAX_GROUPS, &v[1]) ||
	    get_uint(r, o, "params.", "emses", true, KL_POP_MAX_EMSES, &v[2]) ||
	    get_uint(r, o, "params.", "imsis", true, KL_POP_MAX_IMSIS, &v[3]) ||
	    get_uint(r, o, "params.", "appids", true, KL_POP_MAX_APPIDS, &v[4]) ||
	    get_uint(r, o, "params.", "e2m-keys", true, KL_TABLE_E2M_RING_MAX, &v[5]) ||
	    get_uint(r, o, "params.", "now", true, UINT32_MAX, &v[6]) ||
	    get_uint(r, o, "params.", "msk-period", true, KL_POP_MAX_PERIOD, &v[7]) ||
	    get_uint(r, o, "params.", "pairs", false, KL_POP_MAX_PAIRS, &v[8]) ||
	    get_uint(r, o, "params.", "services", false, KL_SVC_ALL, &v[9]))
		return -1;
	p->ues = (uint32_t)v[0];
	p->groups = (uint32_t)v[1];
	p->emses = (uint32_t)v[2];
	p->imsis = (uint32_t)v[3];
	p->appids = (uint32_t)v[4];
	p->e2m_keys_per_imsi = (uint8_t)v[5];
	p->now_ntp = v[6] << 32;
	p->msk_period_s = (uint32_t)v[7];
	p->pairs = (uint32_t)v[8];
	p->services = (uint8_t)v[9];
	if (kl_pop_params_check(p, cerr, sizeof(cerr)))
		return rerr(r, "params: %s", cerr);
	return 0;
}

static int cmd_import(struct req *r, json_t *j)
{
	static const char *const f[] = { "params", "path", NULL };
	json_t *params = json_object_get(j, "params");
	struct kl_pop_params p;
	struct kl_pop_stats st;
	const char *path;
	size_t plen;
	int rc;

	memset(&p, 0, sizeof(p));
	if (fields_ok(r, j, "", f) || get_str(r, j, "", "path", false, &path, &plen))
		return -1;
	if (r->a->store)
		return rerr(r, "refused: a key store is configured and test populations are not "
			       "stored (their keys follow from a seed); instead start keylined with "
			       "-p FILE (the population goes into the key table only, beside the "
			       "store), or write stored keys with put-ue, put-group, put-emse, "
			       "push-e2m and put-appid or the Diameter feed");
	if (!!params == !!path)
		return rerr(r, "give either params (the population file's fields) or path");
	if (path) {
		char perr[256];

		if (path[0] != '/')
			return rerr(r, "path: must be absolute");
		if (kl_pop_read_file(path, &p, perr, sizeof(perr)))
			return rerr(r, "population file: %s", perr);
	} else if (pop_params_from_json(r, params, &p)) {
		return -1;
	}
	alog(r->a, KL_ADMIN_LOG_WARNING,
	     "importing a TEST population (seed %" PRIu64 ", %" PRIu32 " ues): its keys follow "
	     "from the seed; never do this on a server with real subscribers",
	     p.seed, p.ues);
	if (r->a->server_identity[0]) {
		p.server_id = r->a->server_identity;
		p.server_id_len = (uint16_t)strlen(r->a->server_identity);
	}
	rc = kl_pop_import(r->a->table, &p, &st);
	if (rc) {
		/* in the import's order, which is the kinds' */
		_Static_assert(KL_TK_UE == 0 && KL_TK_GROUP == 1 && KL_TK_EMSE == 2 &&
				       KL_TK_E2M == 3 && KL_TK_APPID == 4 && KL_TK_PAIR == 5 &&
				       KL_TK__COUNT == 6,
			       "the population import's order is the kinds' order");
		const uint32_t want[KL_TK__COUNT] = { p.ues, p.groups, p.emses, p.imsis, p.appids,
						      p.server_id ? p.pairs : 0 };
		const uint32_t got[KL_TK__COUNT] = { st.ues, st.groups, st.emses, st.imsis,
						     st.appids, st.pairs };
		const char *name;
		unsigned k = 0;

		while (k < KL_TK__COUNT - 1 && got[k] >= want[k])
			k++;
		name = kl_table_kind_plural(k);
		if (rc == -ENOSPC)
			return rerr(r, "import stopped: table full for %s (imported %" PRIu32
				       " of %" PRIu32 " %s; entries written so far stay)",
				    name, got[k], want[k], name);
		return rerr(r, "import stopped at %s (%" PRIu32 " of %" PRIu32 "): %s", name,
			    got[k], want[k], strerror(-rc));
	}
	aset(r, "ues", json_integer(st.ues));
	aset(r, "groups", json_integer(st.groups));
	aset(r, "emses", json_integer(st.emses));
	aset(r, "imsis", json_integer(st.imsis));
	aset(r, "e2m_keys", json_integer(st.e2m_keys));
	aset(r, "appids", json_integer(st.appids));
	aset(r, "pairs", json_integer(st.pairs));
	aset(r, "elapsed_ms", json_real((double)st.elapsed_ns / 1e6));
	snprintf(r->what, sizeof(r->what),
		 "%" PRIu32 " ues, %" PRIu32 " groups, %" PRIu32 " emses, %" PRIu32 " imsis (%" PRIu32
		 " e2m keys), %" PRIu32 " appids in %.1f ms",
		 st.ues, st.groups, st.emses, st.imsis, st.e2m_keys, st.appids,
		 (double)st.elapsed_ns / 1e6);
	return 0;
}

/* A UE may name a group that is not there yet (it gets that group's keys once it is put): the
 * answer carries a warning for each, and so does the log. */
static void warn_missing_groups(struct req *r, const struct kl_group_ref *g, unsigned n)
{
	json_t *w = NULL;

	for (unsigned i = 0; i < n; i++) {
		uint8_t gk[5];
		char name[16], msg[128];

		kl_write_group_key(&g[i], gk);
		if (in_table(r, KL_TK_GROUP, gk, sizeof(gk)))
			continue;
		kl_write_group_name(&g[i], name);
		snprintf(msg, sizeof(msg), "group %s does not exist (yet): the UE gets no key of it "
					   "until it is put", name);
		if (!w)
			w = json_array();
		json_array_append_new(w, json_string(msg));
		alog(r->a, KL_ADMIN_LOG_WARNING, "%s", msg);
	}
	if (w)
		aset(r, "warnings", w);
}

static int cmd_put_ue(struct req *r, json_t *j)
{
	static const char *const f[] = { "id", "muk", "groups", "expires", "services", NULL };
	struct kl_group_ref groups[KL_TABLE_UE_GROUPS];
	uint8_t services = KL_SVC_DEFAULT;
	struct kl_write w;
	json_t *gl = json_object_get(j, "groups");
	uint8_t muk[KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN], kcv[KL_KCV_LEN];
	char kcvs[2 * KL_KCV_LEN + 1];
	uint64_t expires = 0, exp_ntp;
	unsigned ng = 0;
	const char *id;
	size_t idlen, mlen;
	int rc;

	if (fields_ok(r, j, "", f) || get_id(r, j, "id", &id, &idlen) ||
	    get_services(r, j, false, &services))
		return -1;
	if (gl) {
		size_t i;
		json_t *g;

		if (!json_is_array(gl))
			return rerr(r, "groups: must be a list of \"DDDDDD:G\" strings");
		if (json_array_size(gl) > KL_TABLE_UE_GROUPS)
			return rerr(r, "groups: %zu listed, at most %u", json_array_size(gl),
				    KL_TABLE_UE_GROUPS);
		json_array_foreach(gl, i, g) {
			if (!json_is_string(g) ||
			    parse_group(json_string_value(g), json_string_length(g), &groups[ng]))
				return rerr(r, "groups[%zu]: not a key group (DDDDDD:G: Key Domain ID "
					       "as 6 hex digits, key group 0..65535 in decimal)", i);
			for (unsigned k = 0; k < ng; k++)
				if (!memcmp(groups[k].domain, groups[ng].domain, 3) &&
				    groups[k].group == groups[ng].group)
					return rerr(r, "groups[%zu]: listed twice", i);
			ng++;
		}
	}
	/* the MUK's expiry (unix seconds; absent or 0: never) before the key is read */
	if (get_uint(r, j, "", "expires", false, UNIX_MAX, &expires))
		return -1;
	exp_ntp = expires ? unix_to_ntp(expires) : 0;
	if (get_key(r, j, "", "muk", 1, sizeof(muk), muk, &mlen))
		return -1;
	rc = kl_write_ue(&w, (const uint8_t *)id, (uint16_t)idlen, muk, (unsigned)mlen, groups,
			 ng, exp_ntp, services);
	if (kl_kcv(muk, mlen, kcv))
		memset(kcv, 0, sizeof(kcv));
	kl_memzero(muk, sizeof(muk));
	if (rc)
		return table_error(r, rc, KL_TK_UE);
	rc = write_do(r, &w);
	kcv_hex(kcv, kcvs);
	if (rc < 0 || put_result(r, rc, KL_TK_UE, id, idlen, kcvs))
		return -1;
	aset(r, "services", services_json(services));
	warn_missing_groups(r, groups, ng);
	return 0;
}

/* ue-group-add / ue-group-del {id, group}: one key group more or less for a UE, its MUK and
 * expiry kept; store first, then the table, as every write. */
static int ue_group_change(struct req *r, json_t *j, bool add)
{
	static const char *const f[] = { "id", "group", NULL };
	struct kl_group_ref cur[KL_TABLE_UE_GROUPS], next[KL_TABLE_UE_GROUPS], ref;
	unsigned ncur = 0, nn = 0, held = KL_TABLE_UE_GROUPS;
	struct kl_write w;
	char name[16];
	const char *id;
	size_t idlen;
	json_t *gl;
	int rc;

	if (fields_ok(r, j, "", f) || get_id(r, j, "id", &id, &idlen) ||
	    get_group(r, j, "group", &ref))
		return -1;
	kl_write_group_name(&ref, name);
	rc = kl_table_get_ue(r->a->table, (const uint8_t *)id, (uint16_t)idlen, cur, &ncur, NULL);
	if (rc)
		return table_error(r, rc, KL_TK_UE);
	for (unsigned i = 0; i < ncur; i++) {
		if (!memcmp(cur[i].domain, ref.domain, 3) && cur[i].group == ref.group)
			held = i;
		else
			next[nn++] = cur[i];
	}
	if (add && held < KL_TABLE_UE_GROUPS)
		return rerr(r, "the ue already holds group %s", name);
	if (!add && held == KL_TABLE_UE_GROUPS)
		return rerr(r, "the ue does not hold group %s", name);
	if (add && ncur == KL_TABLE_UE_GROUPS)
		return rerr(r, "the ue holds %u key groups, the most a UE may hold: remove one first",
			    KL_TABLE_UE_GROUPS);
	if (add)
		next[nn++] = ref;
	if (kl_write_ue_groups(&w, (const uint8_t *)id, (uint16_t)idlen, next, nn))
		return table_error(r, -EINVAL, KL_TK_UE);
	if (write_do(r, &w) < 0)
		return -1;
	aset(r, "result", json_string(add ? "group added" : "group removed"));
	aset(r, "kind", json_string(kl_table_kind_name(KL_TK_UE)));
	aset(r, "id", json_stringn(id, idlen));
	aset(r, "group", json_string(name));
	gl = json_array();
	for (unsigned i = 0; i < nn; i++) {
		char g[16];

		kl_write_group_name(&next[i], g);
		json_array_append_new(gl, json_string(g));
	}
	aset(r, "groups", gl);
	snprintf(r->what, sizeof(r->what), "ue: group %s %s", name, add ? "added" : "removed");
	if (add)
		warn_missing_groups(r, &ref, 1);
	return 0;
}

static int cmd_ue_group_add(struct req *r, json_t *j)
{
	return ue_group_change(r, j, true);
}

static int cmd_ue_group_del(struct req *r, json_t *j)
{
	return ue_group_change(r, j, false);
}

/* ue-services {id, services}: the services a UE may use, everything else kept. */
static int cmd_ue_services(struct req *r, json_t *j)
{
	static const char *const f[] = { "id", "services", NULL };
	uint8_t services = 0;
	char list[64];
	struct kl_write w;
	const char *id;
	size_t idlen;

	if (fields_ok(r, j, "", f) || get_id(r, j, "id", &id, &idlen) ||
	    get_services(r, j, true, &services))
		return -1;
	if (kl_write_ue_services(&w, (const uint8_t *)id, (uint16_t)idlen, services))
		return table_error(r, -EINVAL, KL_TK_UE);
	if (write_do(r, &w) < 0)
		return -1;
	aset(r, "result", json_string("services set"));
	aset(r, "kind", json_string(kl_table_kind_name(KL_TK_UE)));
	aset(r, "id", json_stringn(id, idlen));
	aset(r, "services", services_json(services));
	snprintf(r->what, sizeof(r->what), "ue: services %s",
		 kl_service_format(services, list, sizeof(list)));
	return 0;
}

/* put-pair {peer, key, expires}: the pair key K(own identity, peer) of PROTOCOL.md section 9. */
static int cmd_put_pair(struct req *r, json_t *j)
{
	static const char *const f[] = { "peer", "key", "expires", NULL };
	uint8_t key[KL_WRITE_SECRET_MAX], kcv[KL_KCV_LEN];
	char kcvs[2 * KL_KCV_LEN + 1];
	uint64_t expires = 0;
	struct kl_write w;
	const char *peer;
	size_t plen, klen;
	int rc;

	if (fields_ok(r, j, "", f) || get_id(r, j, "peer", &peer, &plen) ||
	    get_uint(r, j, "", "expires", false, UNIX_MAX, &expires) ||
	    get_key(r, j, "", "key", 1, sizeof(key), key, &klen))
		return -1;
	rc = kl_write_pair(&w, (const uint8_t *)peer, (uint16_t)plen, key, (unsigned)klen,
			   expires ? unix_to_ntp(expires) : 0);
	if (kl_kcv(key, klen, kcv))
		memset(kcv, 0, sizeof(kcv));
	kl_memzero(key, sizeof(key));
	if (rc || (rc = write_do(r, &w)) < 0)
		return rc < -1 ? table_error(r, rc, KL_TK_PAIR) : -1;
	kcv_hex(kcv, kcvs);
	if (put_result(r, rc, KL_TK_PAIR, peer, plen, kcvs))
		return -1;
	aset(r, "expires", json_integer((json_int_t)expires));
	return 0;
}

/* One MSK: {"key","msk_id","valid_from","valid_to"}. */
static int get_msk(struct req *r, json_t *o, const char *where, const struct kl_group_ref *ref,
		   struct kl_msk *m, char kcvs[2 * KL_KCV_LEN + 1])
{
	static const char *const f[] = { "key", "msk_id", "valid_from", "valid_to", NULL };
	uint64_t id = 0, from = 0, to = 0;
	uint8_t kcv[KL_KCV_LEN];
	char w[16];
	size_t klen;

	if (!json_is_object(o))
		return rerr(r, "%s: must be an object {key, msk_id, valid_from, valid_to}", where);
	snprintf(w, sizeof(w), "%s.", where);
	if (fields_ok(r, o, w, f) || get_uint(r, o, w, "msk_id", true, UINT32_MAX, &id) ||
	    get_uint(r, o, w, "valid_from", true, UNIX_MAX, &from) ||
	    get_uint(r, o, w, "valid_to", true, UNIX_MAX, &to))
		return -1;
	if (id > 0xFFFF && id >> 16 != ref->group)
		return rerr(r, "%smsk_id: its key group %" PRIu64 " is not the group's (%u): give "
			       "the key number, or group << 16 | key number",
			    w, id >> 16, (unsigned)ref->group);
	if ((id & 0xFFFF) == 0)
		return rerr(r, "%smsk_id: key number 0 is reserved (a request for the current key)",
			    w);
	if (to <= from)
		return rerr(r, "%svalid_to must be after valid_from", w);
	if (get_key(r, o, w, "key", sizeof(m->key), sizeof(m->key), m->key, &klen))
		return -1;
	m->msk_id = (uint32_t)ref->group << 16 | (uint32_t)(id & 0xFFFF);
	m->valid_from = unix_to_ntp(from);
	m->valid_to = unix_to_ntp(to);
	if (kl_kcv(m->key, sizeof(m->key), kcv))
		memset(kcv, 0, sizeof(kcv));
	kcv_hex(kcv, kcvs);
	return 0;
}

static int cmd_put_group(struct req *r, json_t *j)
{
	static const char *const f[] = { "group", "current", "next", NULL };
	json_t *next = json_object_get(j, "next");
	char kcv_cur[8], kcv_next[8] = "", name[16];
	struct kl_group_ref ref;
	struct kl_group g;
	struct kl_write w;
	int rc = -1;

	memset(&g, 0, sizeof(g));
	if (fields_ok(r, j, "", f) || get_group(r, j, "group", &ref))
		return -1;
	if (!json_object_get(j, "current"))
		return rerr(r, "current: missing");
	if (get_msk(r, json_object_get(j, "current"), "current", &ref, &g.current, kcv_cur))
		goto out;
	if (next && !json_is_null(next)) {
		if (get_msk(r, next, "next", &ref, &g.next, kcv_next))
			goto out;
		if ((g.next.msk_id & 0xFFFF) == (g.current.msk_id & 0xFFFF)) {
			rerr(r, "next.msk_id: same key number as current");
			goto out;
		}
		g.has_next = 1;
	}
	kl_write_group(&w, &ref, &g);
	rc = write_do(r, &w);
	if (rc < 0)
		goto out;
	kl_write_group_name(&ref, name);
	if (put_result(r, rc, KL_TK_GROUP, name, strlen(name), NULL)) {
		rc = -1;
		goto out;
	}
	aset(r, "current_kcv", json_string(kcv_cur));
	if (g.has_next)
		aset(r, "next_kcv", json_string(kcv_next));
	snprintf(r->what + strlen(r->what), sizeof(r->what) - strlen(r->what),
		 " (msk_id 0x%08" PRIX32 " kcv %s%s%s)", g.current.msk_id, kcv_cur,
		 g.has_next ? ", next kcv " : "", kcv_next);
	rc = 0;
out:
	kl_memzero(&g, sizeof(g));
	return rc < 0 ? -1 : 0;
}

static int cmd_put_emse(struct req *r, json_t *j)
{
	static const char *const f[] = { "id", "psk", NULL };
	uint8_t psk[KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN], kcv[KL_KCV_LEN];
	char kcvs[2 * KL_KCV_LEN + 1];
	struct kl_write w;
	const char *id;
	size_t idlen, plen;
	int rc;

	if (fields_ok(r, j, "", f) || get_id(r, j, "id", &id, &idlen) ||
	    get_key(r, j, "", "psk", 1, sizeof(psk), psk, &plen))
		return -1;
	rc = kl_write_emse(&w, (const uint8_t *)id, (uint16_t)idlen, psk, (unsigned)plen);
	if (kl_kcv(psk, plen, kcv))
		memset(kcv, 0, sizeof(kcv));
	kl_memzero(psk, sizeof(psk));
	if (rc || (rc = write_do(r, &w)) < 0)
		return rc < -1 ? table_error(r, rc, KL_TK_EMSE) : -1;
	kcv_hex(kcv, kcvs);
	return put_result(r, rc, KL_TK_EMSE, id, idlen, kcvs);
}

static int cmd_push_e2m(struct req *r, json_t *j)
{
	static const char *const f[] = { "imsi", "key", "key_id", "expires", NULL };
	uint8_t key[32], kcv[KL_KCV_LEN];
	char kcvs[2 * KL_KCV_LEN + 1];
	uint64_t key_id = 0, expires = 0;
	struct kl_write w;
	const char *imsi;
	size_t klen;
	int rc;

	if (fields_ok(r, j, "", f) || get_imsi(r, j, "imsi", &imsi) ||
	    get_uint(r, j, "", "key_id", true, UINT32_MAX, &key_id) ||
	    get_uint(r, j, "", "expires", false, UNIX_MAX, &expires) ||
	    get_key(r, j, "", "key", sizeof(key), sizeof(key), key, &klen))
		return -1;
	rc = kl_write_e2m(&w, imsi, key, (uint32_t)key_id, expires ? unix_to_ntp(expires) : 0);
	if (kl_kcv(key, sizeof(key), kcv))
		memset(kcv, 0, sizeof(kcv));
	kl_memzero(key, sizeof(key));
	if (rc || (rc = write_do(r, &w)) < 0)
		return rc < -1 ? table_error(r, rc, KL_TK_E2M) : -1;
	kcv_hex(kcv, kcvs);
	if (put_result(r, rc, KL_TK_E2M, imsi, strlen(imsi), kcvs))
		return -1;
	aset(r, "key_id", json_integer((json_int_t)key_id));
	snprintf(r->what + strlen(r->what), sizeof(r->what) - strlen(r->what),
		 " key_id %" PRIu64, key_id);
	return 0;
}

static int cmd_put_appid(struct req *r, json_t *j)
{
	static const char *const f[] = { "appid", "imsi", NULL };
	const char *id, *imsi;
	struct kl_write w;
	size_t idlen;
	int rc;

	if (fields_ok(r, j, "", f) || get_id(r, j, "appid", &id, &idlen) ||
	    get_imsi(r, j, "imsi", &imsi))
		return -1;
	rc = kl_write_appid(&w, (const uint8_t *)id, (uint16_t)idlen, imsi);
	if (rc || (rc = write_do(r, &w)) < 0)
		return rc < -1 ? table_error(r, rc, KL_TK_APPID) : -1;
	if (put_result(r, rc, KL_TK_APPID, id, idlen, NULL))
		return -1;
	aset(r, "imsi", json_string(imsi));
	return 0;
}

static int cmd_del(struct req *r, json_t *j)
{
	static const char *const f[] = { "kind", "id", NULL };
	uint8_t key[KL_TABLE_ID_MAX];
	char idp[160];
	enum kl_table_kind kind;
	struct kl_write w;
	uint16_t len;

	if (fields_ok(r, j, "", f) || get_kind(r, j, &kind) || get_entry_key(r, j, kind, key, &len))
		return -1;
	if (kind == KL_TK_GROUP) {
		struct kl_group_ref g = { .group = (uint16_t)(key[3] << 8 | key[4]) };

		memcpy(g.domain, key, 3);
		/* rotation would make it again at the next tick, numbering its keys from 1 anew
		 * (an MSK ID UEs may hold for another key) */
		if (kl_rotate_has(r->a->rotate, &g)) {
			char name[16];

			kl_write_group_name(&g, name);
			return rerr(r, "group %s is under MSK rotation (config msk_rotation:): take "
				       "it out of the configuration before deleting it",
				    name);
		}
	}
	/* Store first: an entry deleted from the table only would come back at the next start.
	 * Entries of a -p test population are in the table only. */
	if (kl_write_del(&w, kind, key, len))
		return table_error(r, -EINVAL, kind);
	if (write_do(r, &w) < 0)
		return -1;
	aset(r, "result", json_string("deleted"));
	aset(r, "kind", json_string(kl_table_kind_name(kind)));
	aset(r, "id", json_copy(json_object_get(j, "id")));
	snprintf(r->what, sizeof(r->what), "%s \"%s\": deleted", kl_table_kind_name(kind),
		 printable(json_string_value(json_object_get(j, "id")),
			   json_string_length(json_object_get(j, "id")), idp, sizeof(idp)));
	return 0;
}

static int cmd_count(struct req *r, json_t *j)
{
	json_t *counts;

	if (fields_ok(r, j, "", NULL))
		return -1;
	counts = json_object();
	for (unsigned k = 0; k < KL_TK__COUNT; k++)
		json_object_set_new(counts, kl_stats_table_kind_name(k),
				    json_integer(kl_table_count(r->a->table, (enum kl_table_kind)k)));
	aset(r, "counts", counts);
	aset(r, "memory_bytes", json_integer((json_int_t)kl_table_memory(r->a->table)));
	return 0;
}

static json_t *msk_json(const struct kl_msk *m)
{
	uint8_t kcv[KL_KCV_LEN];

	if (kl_kcv(m->key, sizeof(m->key), kcv))
		memset(kcv, 0, sizeof(kcv));
	return json_pack("{s:I,s:I,s:I,s:I,s:o}", "msk_id", (json_int_t)m->msk_id, "key_number",
			 (json_int_t)(m->msk_id & 0xFFFF), "valid_from", ntp_to_unix(m->valid_from),
			 "valid_to", ntp_to_unix(m->valid_to), "kcv", kcv_json(kcv));
}

static int cmd_show(struct req *r, json_t *j)
{
	static const char *const f[] = { "kind", "id", NULL };
	uint8_t key[KL_TABLE_ID_MAX];
	struct kl_table_key tk;
	enum kl_table_kind kind;
	const void *e = NULL;
	uint16_t len;

	if (fields_ok(r, j, "", f) || get_kind(r, j, &kind) || get_entry_key(r, j, kind, key, &len))
		return -1;
	tk.id = key;
	tk.len = len;
	/* The control thread is the writer: entries stay valid until its own next write. */
	if (!kl_table_lookup_bulk(r->a->table, kind, &tk, 1, &e) || !e)
		return table_error(r, -ENOENT, kind);
	aset(r, "kind", json_string(kl_table_kind_name(kind)));
	aset(r, "id", json_copy(json_object_get(j, "id")));
	switch (kind) {
	case KL_TK_UE: {
		const struct kl_ue *u = e;
		json_t *gl = json_array();

		for (unsigned i = 0; i < u->ngroups && i < KL_TABLE_UE_GROUPS; i++) {
			char g[16];

			kl_write_group_name(&u->groups[i], g);
			json_array_append_new(gl, json_string(g));
		}
		aset(r, "groups", gl);
		aset(r, "muk_chunks", json_integer(u->nchunks));
		aset(r, "kcv", kcv_json(u->kcv));
		/* the MUK's expiry in unix seconds; 0 = never */
		aset(r, "expires", json_integer(u->expires ? ntp_to_unix(u->expires) : 0));
		aset(r, "services", services_json(u->services));
		if (kl_ue_dh_pub(u)) { /* P is public; a fingerprint is enough to compare */
			uint8_t fp[KL_DH_FP_LEN];
			char hex[2 * KL_DH_FP_LEN + 1];

			kl_dh_pub_fp(kl_ue_dh_pub(u), fp);
			for (unsigned i = 0; i < KL_DH_FP_LEN; i++)
				snprintf(hex + 2 * i, 3, "%02x", fp[i]);
			aset(r, "dh_pub_fp", json_string(hex));
		}
		break;
	}
	case KL_TK_PAIR: {
		const struct kl_pair *p = e;

		aset(r, "kcv", kcv_json(p->kcv));
		/* unix seconds; 0 = never */
		aset(r, "expires", json_integer(p->expires ? ntp_to_unix(p->expires) : 0));
		break;
	}
	case KL_TK_GROUP: {
		const struct kl_group *g = e;

		aset(r, "current", msk_json(&g->current));
		aset(r, "next", g->has_next ? msk_json(&g->next) : json_null());
		break;
	}
	case KL_TK_EMSE: {
		const struct kl_emse *m = e;

		aset(r, "psk_chunks", json_integer(m->nchunks));
		aset(r, "kcv", kcv_json(m->kcv));
		break;
	}
	case KL_TK_E2M: {
		const struct kl_e2m *m = e;
		json_t *keys = json_array();

		for (unsigned i = 0; i < m->n && i < KL_TABLE_E2M_RING_MAX; i++) {
			const struct kl_e2m_key *k = &m->keys[i];

			json_array_append_new(
				keys, json_pack("{s:I,s:I,s:o}", "key_id", (json_int_t)k->key_id,
						"expires", k->expires ? ntp_to_unix(k->expires) : 0,
						"kcv", kcv_json(k->kcv)));
		}
		aset(r, "keys", keys);
		break;
	}
	case KL_TK_APPID: {
		const struct kl_appid *ap = e;

		aset(r, "imsi", json_stringn(ap->imsi, ap->imsi_len < KL_TABLE_IMSI_MAX
							      ? ap->imsi_len
							      : KL_TABLE_IMSI_MAX));
		break;
	}
	default:
		break;
	}
	return 0;
}

static json_t *named_counters(const uint64_t *v, unsigned n, unsigned first,
			      const char *(*name)(unsigned))
{
	json_t *o = json_object();

	for (unsigned i = first; i < n; i++)
		json_object_set_new(o, name(i), json_integer((json_int_t)v[i]));
	return o;
}

static int cmd_stats(struct req *r, json_t *j)
{
	static const char *const f[] = { "worker", NULL };
	const struct kl_stats_view *v = r->a->stats;
	struct kl_stats_total *t;
	uint64_t worker = 0, hist_n = 0, errors = 0, drops = 0, net_drops = 0;
	bool one = json_object_get(j, "worker") != NULL;
	json_t *bounds, *counts, *svc, *totals;
	struct timespec ts;

	if (fields_ok(r, j, "", f))
		return -1;
	if (!v)
		return rerr(r, "no counters: this server has no stats view");
	if (get_uint(r, j, "", "worker", false, UINT32_MAX, &worker))
		return -1;
	if (one && worker >= v->n_workers)
		return rerr(r, "worker: %" PRIu64 " out of range (%u workers)", worker, v->n_workers);
	t = calloc(1, sizeof(*t));
	if (!t)
		return rerr(r, "out of memory");
	if (kl_stats_sum(v, one ? (int)worker : -1, t)) {
		free(t);
		return rerr(r, "counters unavailable");
	}
	aset(r, "version", json_string(v->version ? v->version : "unknown"));
	if (v->io_name)
		aset(r, "io_backend", json_string(v->io_name));
	if (v->crypto_name)
		aset(r, "crypto_backend", json_string(v->crypto_name));
	clock_gettime(CLOCK_REALTIME, &ts);
	if (v->start_ns) {
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;

		aset(r, "uptime_s", json_integer(now > v->start_ns
							 ? (json_int_t)((now - v->start_ns) / 1000000000u)
							 : 0));
	}
	aset(r, "workers", json_integer(v->n_workers));
	if (one)
		aset(r, "worker", json_integer((json_int_t)worker));
	aset(r, "engine", named_counters(t->engine.counter, KL_CNT__COUNT, 0, kl_counter_name));
	aset(r, "engine_drops", named_counters(t->engine.drop, KL_DROP__COUNT, 1, kl_drop_name));
	aset(r, "io", named_counters(t->io.counter, KL_IO_CNT__COUNT, 0, kl_io_counter_name));
	aset(r, "net_drops",
	     named_counters(t->io.net_drop, KL_NET_DROP__COUNT, 1, kl_net_drop_name));
	bounds = json_array();
	counts = json_array();
	for (unsigned i = 0; i < KL_IO_HIST_N; i++)
		json_array_append_new(bounds, json_integer(kl_io_hist_bound_ns[i]));
	for (unsigned i = 0; i <= KL_IO_HIST_N; i++) {
		json_array_append_new(counts, json_integer((json_int_t)t->io.svc_hist[i]));
		hist_n += t->io.svc_hist[i];
	}
	svc = json_pack("{s:o,s:o,s:I,s:I}", "bounds_ns", bounds, "counts", counts, "count",
			(json_int_t)hist_n, "sum_ns", (json_int_t)t->io.svc_sum_ns);
	if (hist_n)
		json_object_set_new(svc, "mean_ns", json_integer((json_int_t)(t->io.svc_sum_ns /
									     hist_n)));
	aset(r, "service_time", svc);
	for (unsigned i = 0; i < KL_CNT__COUNT; i++)
		if (!strncmp(kl_counter_name(i), "error_", 6))
			errors += t->engine.counter[i];
	for (unsigned i = 1; i < KL_DROP__COUNT; i++)
		drops += t->engine.drop[i];
	for (unsigned i = 1; i < KL_NET_DROP__COUNT; i++)
		net_drops += t->io.net_drop[i];
	totals = json_pack("{s:I,s:I,s:I,s:I,s:I}", "requests",
			   (json_int_t)t->engine.counter[KL_CNT_RX], "key_responses",
			   (json_int_t)(t->engine.counter[KL_CNT_ANSWERED_MBMS] +
					t->engine.counter[KL_CNT_ANSWERED_E2M]),
			   "error_responses", (json_int_t)errors, "engine_drops", (json_int_t)drops,
			   "net_drops", (json_int_t)net_drops);
	aset(r, "totals", totals);
	free(t);
	return 0;
}

/* ---- MSK rotation and status ------------------------------------------------------------------ */

static uint64_t ntp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec + NTP_UNIX_OFFSET) << 32 |
	       (((uint64_t)ts.tv_nsec << 32) / 1000000000u);
}

static json_t *rot_msk_json(uint32_t id, uint64_t from, uint64_t to, const uint8_t *kcv)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:o}", "msk_id", (json_int_t)id, "key_number",
			 (json_int_t)(id & 0xFFFF), "valid_from", ntp_to_unix(from), "valid_to",
			 ntp_to_unix(to), "kcv", kcv_json(kcv));
}

static json_t *rot_status_json(const struct kl_rotate_status *st)
{
	char name[16];
	json_t *o;

	kl_write_group_name(&st->ref, name);
	o = json_pack("{s:s,s:I,s:I,s:I,s:I}", "group", name, "period_s",
		      (json_int_t)st->period_s, "predelivery_s", (json_int_t)st->predelivery_s,
		      "rotations", (json_int_t)st->rotations, "failures",
		      (json_int_t)st->failures);
	if (!o)
		return NULL;
	json_object_set_new(o, "current",
			    st->current_id ? rot_msk_json(st->current_id, st->current_from,
							  st->current_to, st->current_kcv)
					   : json_null());
	json_object_set_new(o, "next",
			    st->has_next ? rot_msk_json(st->next_id, st->next_from, st->next_to,
							st->next_kcv)
					 : json_null());
	return o;
}

static int cmd_rotate(struct req *r, json_t *j)
{
	static const char *const f[] = { "group", NULL };
	struct kl_rotate_status st;
	struct kl_group_ref ref;
	char err[ERR_LEN], name[16];
	uint32_t id = 0;
	unsigned i, n;
	int rc;

	if (fields_ok(r, j, "", f) || get_group(r, j, "group", &ref))
		return -1;
	kl_write_group_name(&ref, name);
	if (!r->a->rotate)
		return rerr(r, "no MSK rotation is configured (config msk_rotation:)");
	err[0] = 0;
	rc = kl_rotate_force(r->a->rotate, &ref, ntp_now(), &id, err, sizeof(err));
	if (rc == -ENOENT)
		return rerr(r, "group %s: not a group with MSK rotation (config msk_rotation:)",
			    name);
	if (rc)
		return rerr(r, "group %s: rotation failed: %s", name, err[0] ? err : strerror(-rc));
	n = kl_rotate_count(r->a->rotate);
	for (i = 0; i < n; i++)
		if (!kl_rotate_status(r->a->rotate, i, &st) && !memcmp(st.ref.domain, ref.domain, 3) &&
		    st.ref.group == ref.group)
			break;
	aset(r, "result", json_string("rotated"));
	aset(r, "group", json_string(name));
	if (i < n && st.current_id == id) {
		json_t *m = rot_msk_json(id, st.current_from, st.current_to, st.current_kcv);

		json_object_update(r->ans, m);
		json_decref(m);
		snprintf(r->what, sizeof(r->what),
			 "group %s: forced rotation, current msk_id 0x%08" PRIX32 " kcv "
			 "%02X%02X%02X",
			 name, id, st.current_kcv[0], st.current_kcv[1], st.current_kcv[2]);
	} else {
		/* the table refused the new state after it was stored: retried at the next tick */
		aset(r, "msk_id", json_integer((json_int_t)id));
		aset(r, "key_number", json_integer((json_int_t)(id & 0xFFFF)));
		snprintf(r->what, sizeof(r->what), "group %s: forced rotation, msk_id 0x%08" PRIX32,
			 name, id);
	}
	return 0;
}

/* A string of an external source (peer identities): printable ASCII, at most cap - 1 bytes. */
static json_t *ext_string(const char *s, size_t cap)
{
	char buf[600];

	return json_string(printable(s, strnlen(s, cap), buf, sizeof(buf)));
}

static json_t *status_store(struct req *r)
{
	struct kl_store_stats ss;
	json_t *o, *e;
	int rc;

	if (!r->a->store)
		return json_pack("{s:b}", "enabled", 0);
	rc = kl_store_stats(r->a->store, &ss);
	if (rc)
		return json_pack("{s:b,s:s}", "enabled", 1, "error", strerror(-rc));
	e = json_object();
	for (unsigned k = 0; k < KL_TK__COUNT; k++)
		json_object_set_new(e, kl_stats_table_kind_name(k),
				    json_integer((json_int_t)ss.entries[k]));
	o = json_pack("{s:b,s:o,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:o,s:b}", "enabled", 1, "entries", e,
		      "file_bytes", (json_int_t)ss.file_bytes, "used_bytes",
		      (json_int_t)ss.used_bytes, "map_size", (json_int_t)ss.map_size,
		      "bytes_per_ue", ss.bytes_per_ue, "ue_bytes", (json_int_t)ss.ue_bytes,
		      "schema", (json_int_t)ss.schema, "created", (json_int_t)ss.created,
		      "kek_kcv", kcv_json(ss.kek_kcv), "kek_secure_heap", (int)ss.kek_secure_heap);
	return o;
}

static json_t *status_diameter(struct req *r)
{
	struct kl_admin_diameter_status *d;
	json_t *o, *peers;
	int rc;

	if (!r->a->diameter_status)
		return json_pack("{s:b}", "enabled", 0);
	d = calloc(1, sizeof(*d));
	if (!d)
		return json_pack("{s:b,s:s}", "enabled", 1, "error", "out of memory");
	rc = r->a->diameter_status(r->a->diameter_arg, d);
	if (rc) {
		o = json_pack("{s:b,s:s}", "enabled", 1, "error",
			      strerror(rc < 0 ? -rc : rc));
	} else if (!d->enabled) {
		o = json_pack("{s:b}", "enabled", 0);
	} else {
		peers = json_array();
		for (unsigned i = 0; i < d->npeers && i < KL_ADMIN_MAX_PEERS; i++)
			json_array_append_new(
				peers, json_pack("{s:o,s:o}", "identity",
						 ext_string(d->peers[i].identity,
							    sizeof(d->peers[i].identity)),
						 "state",
						 ext_string(d->peers[i].state,
							    sizeof(d->peers[i].state))));
		o = json_pack("{s:b,s:o,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:o}", "enabled", 1,
			      "identity", ext_string(d->identity, sizeof(d->identity)), "port",
			      (json_int_t)d->port, "vendor_id", (json_int_t)d->vendor_id, "app_id",
			      (json_int_t)d->app_id, "counters", "answered_ok",
			      (json_int_t)d->answered_ok, "rejected", (json_int_t)d->rejected,
			      "failed", (json_int_t)d->failed, "busy", (json_int_t)d->busy,
			      "commits", (json_int_t)d->commits, "queued", (json_int_t)d->queued,
			      "peers_refused", (json_int_t)d->peers_refused, "peers", peers);
	}
	free(d);
	return o;
}

static json_t *status_rotation(struct req *r)
{
	json_t *groups;
	unsigned n;

	if (!r->a->rotate)
		return json_pack("{s:b,s:[]}", "enabled", 0, "groups");
	groups = json_array();
	n = kl_rotate_count(r->a->rotate);
	for (unsigned i = 0; i < n; i++) {
		struct kl_rotate_status st;

		if (!kl_rotate_status(r->a->rotate, i, &st))
			json_array_append_new(groups, rot_status_json(&st));
	}
	return json_pack("{s:b,s:o}", "enabled", 1, "groups", groups);
}

/* The server-to-server state's sizes (kl_stats_s2s), or {"enabled":false} without one. */
static json_t *status_s2s(struct req *r)
{
	const struct kl_stats_view *v = r->a->stats;
	struct kl_s2s_stats st;

	if (kl_stats_s2s(v, &st))
		return json_pack("{s:b}", "enabled", 0);
	return json_pack("{s:b,s:I,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:I}", "enabled",
			 1, "peers", (json_int_t)(v->peers ? v->peers->n : 0), "rendezvous", "used",
			 (json_int_t)st.rendezvous_used, "capacity", (json_int_t)st.rendezvous_cap,
			 "full", (json_int_t)st.rendezvous_full, "cache", "used",
			 (json_int_t)st.cache_used, "capacity", (json_int_t)st.cache_cap, "full",
			 (json_int_t)st.cache_full, "pending", "used", (json_int_t)st.pending_used,
			 "capacity", (json_int_t)st.pending_cap, "full", (json_int_t)st.pending_full,
			 "contended", (json_int_t)st.contended);
}

/* The configured peer servers: address, whether the table holds our pair key with each (its
 * KCV and expiry, never the key), their counters; and what unconfigured sources had refused. */
static int cmd_peers(struct req *r, json_t *j)
{
	const struct kl_stats_view *v = r->a->stats;
	const struct kl_peers *ps = v ? __atomic_load_n(&v->peers, __ATOMIC_ACQUIRE) : NULL;
	json_t *arr;

	if (fields_ok(r, j, "", NULL))
		return -1;
	if (!ps)
		return rerr(r, "no peers: this server has no server-to-server view");
	arr = json_array();
	for (unsigned i = 0; i < ps->n && i < KL_PEERS_MAX; i++) {
		const struct kl_peer *p = &ps->p[i];
		char addr[INET6_ADDRSTRLEN] = "?";
		uint8_t kcv[KL_KCV_LEN];
		uint64_t exp = 0;
		int has = kl_table_get_pair(r->a->table, p->id, p->id_len, &exp, kcv) == 0;
		json_t *c = json_object(), *o;

		inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->ip, addr, sizeof(addr));
		for (unsigned k = 0; k < KL_PEER_CNT__COUNT; k++)
			json_object_set_new(c, kl_peer_counter_name(k),
					    json_integer((json_int_t)kl_peer_counter(ps, i, k)));
		o = json_pack("{s:s%,s:s,s:i,s:b,s:o}", "identity", (const char *)p->id,
			      (size_t)p->id_len, "address", addr, "port", (int)p->port, "pair_key",
			      has, "counters", c);
		if (!o) {
			json_decref(arr);
			return rerr(r, "peer %u: identity is not UTF-8", i);
		}
		if (has) {
			json_object_set_new(o, "pair_kcv", kcv_json(kcv));
			json_object_set_new(o, "pair_expires", json_integer(exp ? ntp_to_unix(exp) : 0));
		}
		json_array_append_new(arr, o);
	}
	aset(r, "peers", arr);
	aset(r, "unconfigured_refused",
	     json_integer((json_int_t)kl_peer_counter(ps, KL_PEER_UNCONFIGURED,
						      KL_PEER_CNT_REFUSED)));
	return 0;
}

static int cmd_status(struct req *r, json_t *j)
{
	const struct kl_stats_view *v = r->a->stats;
	json_t *counts;

	if (fields_ok(r, j, "", NULL))
		return -1;
	set_version(r, v);
	if (v && v->start_ns) {
		struct timespec ts;
		uint64_t now;

		clock_gettime(CLOCK_REALTIME, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		aset(r, "uptime_s", json_integer(now > v->start_ns
							 ? (json_int_t)((now - v->start_ns) / 1000000000u)
							 : 0));
	}
	if (v)
		aset(r, "workers", json_integer(v->n_workers));
	counts = json_object();
	for (unsigned k = 0; k < KL_TK__COUNT; k++)
		json_object_set_new(counts, kl_stats_table_kind_name(k),
				    json_integer(kl_table_count(r->a->table, (enum kl_table_kind)k)));
	aset(r, "table", json_pack("{s:o,s:I}", "counts", counts, "memory_bytes",
				   (json_int_t)kl_table_memory(r->a->table)));
	aset(r, "store", status_store(r));
	aset(r, "diameter", status_diameter(r));
	aset(r, "rotation", status_rotation(r));
	aset(r, "s2s", status_s2s(r));
	{
		json_t *naf = r->a->naf_status ? r->a->naf_status(r->a->ext_arg) : NULL;

		aset(r, "naf_key_center", naf ? naf : json_pack("{s:b}", "enabled", 0));
	}
	if (r->a->ext_status)
		r->a->ext_status(r->a->ext_arg, r->ans);
	return 0;
}

/* ---- backup ----------------------------------------------------------------------------------- */

/* Collect a finished backup (each poll): logged, kept for backup-status. */
static void backup_tick(struct kl_admin *a)
{
	struct kl_store_backup_result *res = &a->bk.last;

	if (!a->bk.running || kl_store_backup_poll(a->store, res) != 1)
		return;
	a->bk.running = false;
	a->bk.last_id = a->bk.id;
	if (res->rc)
		alog(a, KL_ADMIN_LOG_ERROR, "backup #%" PRIu32 " to %.200s failed: %s", a->bk.id,
		     res->file, res->msg);
	else
		alog(a, KL_ADMIN_LOG_INFO,
		     "backup #%" PRIu32 " to %.200s done: %" PRIu64 " bytes in %.2f s", a->bk.id,
		     res->file, res->bytes, res->seconds);
}

/* The store's backup thread copies while this thread serves: "backup" starts it and answers at
 * once, "backup-status" tells when it is done (keylinectl backup asks until it is). */
static int cmd_backup(struct req *r, json_t *j)
{
	static const char *const fields[] = { "file", NULL };
	const char *file;
	size_t len;
	int rc;

	if (fields_ok(r, j, "", fields) || get_str(r, j, "", "file", true, &file, &len))
		return -1;
	if (!r->a->store)
		return rerr(r, "backup: no store is configured (keys are in memory only)");
	backup_tick(r->a); /* one that finished since this poll began */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)file[i] < 0x20 || file[i] == 0x7f)
			return rerr(r, "file: must not contain control characters");
	rc = kl_store_backup_start(r->a->store, file, r->err, sizeof(r->err));
	if (rc)
		return -1;
	r->a->bk.id++;
	r->a->bk.running = true;
	aset(r, "id", json_integer(r->a->bk.id));
	aset(r, "result", json_string("started"));
	snprintf(r->what, sizeof(r->what), "#%" PRIu32 " to %.200s started", r->a->bk.id, file);
	return 0;
}

static int cmd_backup_status(struct req *r, json_t *j)
{
	const struct kl_store_backup_result *res = &r->a->bk.last;

	if (fields_ok(r, j, "", NULL))
		return -1;
	backup_tick(r->a);
	aset(r, "running", json_boolean(r->a->bk.running));
	aset(r, "id", json_integer(r->a->bk.id));
	if (!r->a->bk.last_id)
		return 0;
	aset(r, "last", json_pack("{s:I,s:s,s:b,s:I,s:f,s:s}", "id",
				  (json_int_t)r->a->bk.last_id, "file", res->file, "ok", !res->rc,
				  "bytes", (json_int_t)res->bytes, "seconds", res->seconds, "error",
				  res->msg));
	return 0;
}

static const struct kl_admin_cmd {
	const char *name;
	int (*fn)(struct req *r, json_t *j);
	bool writes; /* logged at info when it succeeds */
} cmds[] = {
	{ "ping", cmd_ping, false },
	{ "version", cmd_version, false },
	{ "import-population", cmd_import, true },
	{ "put-ue", cmd_put_ue, true },
	{ "ue-group-add", cmd_ue_group_add, true },
	{ "ue-group-del", cmd_ue_group_del, true },
	{ "ue-services", cmd_ue_services, true },
	{ "put-pair", cmd_put_pair, true },
	{ "put-group", cmd_put_group, true },
	{ "put-emse", cmd_put_emse, true },
	{ "push-e2m", cmd_push_e2m, true },
	{ "put-appid", cmd_put_appid, true },
	{ "del", cmd_del, true },
	{ "count", cmd_count, false },
	{ "show", cmd_show, false },
	{ "stats", cmd_stats, false },
	{ "rotate", cmd_rotate, true },
	{ "status", cmd_status, false },
	{ "peers", cmd_peers, false },
	{ "backup", cmd_backup, true },
	{ "backup-status", cmd_backup_status, false },
};

/* ---- connections ------------------------------------------------------------------------------ */

static size_t out_pending(const struct kl_admin_client *c)
{
	return c->out_len - c->out_off;
}

static int out_append(struct kl_admin_client *c, const json_t *ans)
{
	size_t n = json_dumpb(ans, NULL, 0, JSON_COMPACT);

	if (!n)
		return -1;
	if (c->out_len + n + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		if (c->out_off) { /* reclaim what was sent */
			memmove(c->out, c->out + c->out_off, out_pending(c));
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + n + 1)
			cap *= 2;
		if (cap > c->out_cap) {
			p = realloc(c->out, cap);
			if (!p)
				return -1;
			c->out = p;
			c->out_cap = cap;
		}
	}
	if (json_dumpb(ans, c->out + c->out_len, n, JSON_COMPACT) != n)
		return -1;
	c->out_len += n;
	c->out[c->out_len++] = '\n';
	return 0;
}

static void answer_error(struct kl_admin *a, struct kl_admin_client *c, const char *msg)
{
	json_t *ans = json_pack("{s:b,s:s}", "ok", 0, "error", msg);

	if (!ans || out_append(c, ans))
		c->closing = true;
	json_decref(ans);
	a->answered++;
	kl_ctl_add(a->ctl, KL_CTL_ADMIN_REQUESTS, 1);
	kl_ctl_add(a->ctl, KL_CTL_ADMIN_ERRORS, 1);
}

/* A command of another module (kl_admin_params.ext_cmd). */
struct ext_cmd {
	char name[64];
	bool writes; /* logged at info when it succeeds: anything but a listing */
};

/* @return 0 (answered into r), -1 (r->err set), or 1: nobody's command. */
static int ext_command(struct req *r, const char *name, json_t *j, struct ext_cmd *e)
{
	json_t *ans = NULL, *err;
	char cmd[64];
	int rc;

	if (!r->a->ext_cmd || strlen(name) >= sizeof(cmd))
		return 1;
	snprintf(cmd, sizeof(cmd), "%s", name);
	name = cmd;
	json_object_del(j, "cmd"); /* the module sees the arguments only */
	rc = r->a->ext_cmd(r->a->ext_arg, name, j, &ans);
	if (rc == 1) {
		json_decref(ans);
		return 1;
	}
	snprintf(e->name, sizeof(e->name), "%s", plain_name(name) ? name : "command");
	e->writes = !strstr(name, "list") && strcmp(name, "naf-keys") != 0;
	if (rc < 0) {
		err = json_object_get(ans, "error");
		rerr(r, "%s", json_is_string(err) ? json_string_value(err) : "failed");
		json_decref(ans);
		return -1;
	}
	if (json_is_object(ans))
		json_object_update(r->ans, ans);
	json_decref(ans);
	return 0;
}

static void handle_line(struct kl_admin *a, struct kl_admin_client *c, const char *line,
			size_t len)
{
	const struct kl_admin_cmd *cmd = NULL;
	struct ext_cmd ext = { "", false };
	json_error_t je;
	struct req r;
	json_t *j;
	int rc = -1;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	while (len && (line[0] == ' ' || line[0] == '\t')) {
		line++;
		len--;
	}
	if (!len)
		return;
	memset(&r, 0, sizeof(r));
	r.a = a;
	r.ans = json_pack("{s:b}", "ok", 1);
	if (!r.ans) {
		answer_error(a, c, "out of memory");
		return;
	}
	/* jansson's message would quote the text near the error, which may be key hex. */
	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		rerr(&r, "invalid JSON at byte %d of the request", je.position);
	} else if (!json_is_object(j)) {
		rerr(&r, "a request must be a JSON object");
	} else {
		json_t *jc = json_object_get(j, "cmd");

		if (!json_is_string(jc)) {
			rerr(&r, "cmd: missing or not a string");
		} else {
			for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
				if (!strcmp(json_string_value(jc), cmds[i].name))
					cmd = &cmds[i];
			if (!cmd && (rc = ext_command(&r, json_string_value(jc), j, &ext)) <= 0)
				; /* another module's command (kl_admin_params.ext_cmd) */
			else if (!cmd && plain_name(json_string_value(jc)))
				rerr(&r, "unknown command \"%s\"", json_string_value(jc));
			else if (!cmd)
				rerr(&r, "unknown command");
			else
				rc = cmd->fn(&r, j);
		}
	}
	json_decref(j);
	if (rc) {
		alog(a, KL_ADMIN_LOG_WARNING, "client %" PRIu32 ": %s: %s", c->serial,
		     cmd ? cmd->name : ext.name[0] ? ext.name : "request", r.err);
		answer_error(a, c, r.err);
	} else {
		if (!cmd && ext.writes)
			alog(a, KL_ADMIN_LOG_INFO, "client %" PRIu32 ": %s", c->serial, ext.name);
		else if (cmd && cmd->writes)
			alog(a, KL_ADMIN_LOG_INFO, "client %" PRIu32 ": %s %s", c->serial, cmd->name,
			     r.what);
		if (out_append(c, r.ans))
			c->closing = true;
		a->answered++;
		kl_ctl_add(a->ctl, KL_CTL_ADMIN_REQUESTS, 1);
	}
	json_decref(r.ans);
}

/* Drop n handled bytes from the front of the input; the bytes freed at the end are wiped. */
static void consume(struct kl_admin_client *c, uint32_t n)
{
	if (!n)
		return;
	memmove(c->in, c->in + n, c->in_len - n);
	kl_memzero(c->in + (c->in_len - n), n);
	c->in_len -= n;
}

static void process(struct kl_admin *a, struct kl_admin_client *c)
{
	uint32_t start = 0;
	bool stalled;

	while (!c->closing && out_pending(c) < OUT_HIGH_WATER) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);

		if (!nl)
			break;
		handle_line(a, c, c->in + start, (size_t)(nl - (c->in + start)));
		start = (uint32_t)(nl - c->in) + 1;
	}
	consume(c, start);
	if (start) /* what is left began after the last line handled */
		c->line_ms = c->in_len ? mono_ms() : 0;
	if (c->closing)
		return;
	stalled = out_pending(c) >= OUT_HIGH_WATER;
	if (stalled)
		return;
	/* Not stalled, so no complete line is left. */
	if (c->in_len > a->max_line) {
		char msg[96];

		snprintf(msg, sizeof(msg), "request line longer than %" PRIu32 " bytes: closing",
			 a->max_line);
		alog(a, KL_ADMIN_LOG_WARNING, "client %" PRIu32 ": %s", c->serial, msg);
		consume(c, c->in_len);
		answer_error(a, c, msg);
		c->closing = true;
	} else if (c->eof) {
		if (c->in_len) /* a last request without its newline */
			handle_line(a, c, c->in, c->in_len);
		consume(c, c->in_len);
		c->closing = true;
	}
}

static void drop_client(struct kl_admin *a, struct kl_admin_client *c, const char *why)
{
	if (c->fd < 0)
		return;
	alog(a, KL_ADMIN_LOG_DEBUG, "client %" PRIu32 ": %s", c->serial, why);
	epoll_ctl(a->efd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (c->in) {
		kl_memzero(c->in, c->in_len);
		free(c->in);
	}
	free(c->out);
	c->in = NULL;
	c->out = NULL;
	c->in_len = 0;
	c->out_off = c->out_len = c->out_cap = 0;
	a->nclients--;
	kl_ctl_set(a->ctl, KL_CTL_ADMIN_CLIENTS, a->nclients);
}

/* @return 0, or -1 when the peer is gone. */
static int flush_out(struct kl_admin_client *c)
{
	while (out_pending(c)) {
		ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			c->last_ms = mono_ms();
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			return -1;
		}
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	return 0;
}

/* @return 0, or -1 on a read error. */
static int read_in(struct kl_admin *a, struct kl_admin_client *c)
{
	uint32_t cap = a->max_line + 1;
	ssize_t n;

	if (c->in_len >= cap)
		return 0;
	n = recv(c->fd, c->in + c->in_len, cap - c->in_len, MSG_DONTWAIT);
	if (n > 0) {
		c->last_ms = mono_ms();
		if (!c->in_len)
			c->line_ms = c->last_ms;
		c->in_len += (uint32_t)n;
	} else if (n == 0) {
		c->eof = true;
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		return -1;
	}
	return 0;
}

static uint64_t client_tag(const struct kl_admin *a, const struct kl_admin_client *c)
{
	return (uint64_t)c->serial << 32 | (uint64_t)(c - a->clients + 1);
}

static void service(struct kl_admin *a, struct kl_admin_client *c, uint32_t ev)
{
	uint32_t want = 0;

	if (ev & EPOLLERR) {
		drop_client(a, c, "socket error");
		return;
	}
	if ((ev & (EPOLLIN | EPOLLHUP)) && !c->eof && !c->closing && read_in(a, c)) {
		drop_client(a, c, "read error");
		return;
	}
	if (flush_out(c)) {
		drop_client(a, c, "peer gone");
		return;
	}
	/* The socket may take all the answers at once: then the lines still buffered behind the
	 * high-water mark are due now, as no event will come for them. Bounded by the buffer. */
	do {
		process(a, c);
		if (flush_out(c)) {
			drop_client(a, c, "peer gone");
			return;
		}
	} while (!c->closing && out_pending(c) < OUT_HIGH_WATER && memchr(c->in, '\n', c->in_len));
	if (c->closing && !out_pending(c)) {
		drop_client(a, c, "closed");
		return;
	}
	if (!c->eof && !c->closing && out_pending(c) < OUT_HIGH_WATER && c->in_len <= a->max_line)
		want |= EPOLLIN;
	if (out_pending(c))
		want |= EPOLLOUT;
	if (want != c->events) {
		struct epoll_event e = { .events = want, .data.u64 = client_tag(a, c) };

		if (epoll_ctl(a->efd, EPOLL_CTL_MOD, c->fd, &e)) {
			drop_client(a, c, "epoll error");
			return;
		}
		c->events = want;
	}
}

/* A client we will not serve gets one answer, if its socket takes it, and is closed. */
static void refuse(struct kl_admin *a, int fd, const char *msg)
{
	json_t *ans = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
	char buf[256];
	size_t n = ans ? json_dumpb(ans, buf, sizeof(buf) - 1, JSON_COMPACT) : 0;

	if (n && n < sizeof(buf) - 1) {
		buf[n++] = '\n';
		if (send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			alog(a, KL_ADMIN_LOG_DEBUG, "refused client: %s", strerror(errno));
	}
	json_decref(ans);
	close(fd);
	kl_ctl_add(a->ctl, KL_CTL_ADMIN_REFUSED, 1);
	alog(a, KL_ADMIN_LOG_WARNING, "refused a client: %s", msg);
}

/* A client we stop serving (timeout, eviction) is told why, if its socket takes the line. */
static void close_with(struct kl_admin *a, struct kl_admin_client *c, enum kl_ctl_counter cnt,
		       const char *msg)
{
	json_t *ans = json_pack("{s:b,s:s}", "ok", 0, "error", msg);

	alog(a, KL_ADMIN_LOG_WARNING, "client %" PRIu32 ": %s", c->serial, msg);
	if (ans && !out_append(c, ans))
		(void)flush_out(c);
	json_decref(ans);
	kl_ctl_add(a->ctl, cnt, 1);
	drop_client(a, c, "closed by the server");
}

/* Since when a client has made no progress: its partial line's first byte, else its last I/O. */
static uint64_t stalled_since(const struct kl_admin_client *c)
{
	return c->in_len && c->line_ms < c->last_ms ? c->line_ms : c->last_ms;
}

/* At the limit, the client idle (or holding a partial line) the longest gives its slot to a new
 * one: slow or forgotten connections must not lock an operator out. @return the freed slot. */
static struct kl_admin_client *evict(struct kl_admin *a)
{
	struct kl_admin_client *v = NULL;
	char msg[96];

	for (unsigned k = 0; k < a->max_clients; k++) {
		struct kl_admin_client *c = &a->clients[k];

		if (c->fd >= 0 && (!v || stalled_since(c) < stalled_since(v)))
			v = c;
	}
	if (!v)
		return NULL;
	snprintf(msg, sizeof(msg),
		 "too many admin clients (max %u): this connection was idle the longest",
		 a->max_clients);
	close_with(a, v, KL_CTL_ADMIN_EVICTED, msg);
	return v;
}

static void accept_clients(struct kl_admin *a)
{
	for (unsigned i = 0; i < ACCEPTS_PER_POLL; i++) {
		struct kl_admin_client *c = NULL;
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				alog(a, KL_ADMIN_LOG_WARNING, "accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			refuse(a, fd, "permission denied");
			continue;
		}
		for (unsigned k = 0; k < a->max_clients && !c; k++)
			if (a->clients[k].fd < 0)
				c = &a->clients[k];
		if (!c)
			c = evict(a);
		if (!c) {
			refuse(a, fd, "no client slot");
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->in = malloc(a->max_line + 1);
		if (!c->in) {
			c->fd = -1;
			refuse(a, fd, "out of memory");
			continue;
		}
		c->fd = fd;
		c->serial = ++a->serial;
		c->events = EPOLLIN;
		c->last_ms = mono_ms();
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = client_tag(a, c) };

		a->nclients++;
		kl_ctl_set(a->ctl, KL_CTL_ADMIN_CLIENTS, a->nclients);
		if (epoll_ctl(a->efd, EPOLL_CTL_ADD, fd, &e)) {
			alog(a, KL_ADMIN_LOG_WARNING, "epoll: %s", strerror(errno));
			drop_client(a, c, "epoll error");
			continue;
		}
		alog(a, KL_ADMIN_LOG_DEBUG, "client %" PRIu32 ": connected (pid %d, uid %u)",
		     c->serial, (int)cred.pid, (unsigned)cred.uid);
	}
}

int kl_admin_poll(struct kl_admin *a, int timeout_ms)
{
	struct epoll_event ev[KL_ADMIN_MAX_CLIENTS + 1];
	uint64_t before, now;
	int n;

	if (!a)
		return -EINVAL;
	backup_tick(a);
	before = a->answered;
	n = epoll_wait(a->efd, ev, (int)a->max_clients + 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t tag = ev[i].data.u64;
		uint32_t slot = (uint32_t)tag, serial = (uint32_t)(tag >> 32);
		struct kl_admin_client *c;

		if (!tag) {
			accept_clients(a);
			continue;
		}
		if (slot < 1 || slot > a->max_clients)
			continue;
		c = &a->clients[slot - 1];
		/* The slot may have been freed and reused earlier in this batch. */
		if (c->fd >= 0 && c->serial == serial)
			service(a, c, ev[i].events);
	}
	now = mono_ms();
	for (unsigned k = 0; k < a->max_clients; k++) {
		struct kl_admin_client *c = &a->clients[k];
		char msg[96];

		if (c->fd < 0)
			continue;
		/* Not stalled behind unread answers, so what is buffered is one partial line. */
		if (c->in_len && !c->closing && out_pending(c) < OUT_HIGH_WATER &&
		    now - c->line_ms >= a->line_ms) {
			snprintf(msg, sizeof(msg),
				 "request line not completed within %" PRIu32 " ms: closing",
				 a->line_ms);
			close_with(a, c, KL_CTL_ADMIN_TIMEOUTS, msg);
		} else if (now - c->last_ms >= a->idle_ms) {
			snprintf(msg, sizeof(msg), "idle for %" PRIu32 " ms: closing", a->idle_ms);
			close_with(a, c, KL_CTL_ADMIN_TIMEOUTS, msg);
		}
	}
	return (int)(a->answered - before > INT_MAX ? INT_MAX : a->answered - before);
}

int kl_admin_fd(const struct kl_admin *a)
{
	return a ? a->efd : -1;
}

unsigned kl_admin_clients(const struct kl_admin *a)
{
	return a ? a->nclients : 0;
}

/* ---- socket setup ----------------------------------------------------------------------------- */

/* mkdir -p of the socket's directory (new directories 0750). */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *last;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	last = strrchr(dir, '/');
	if (!last || last == dir)
		return 0;
	*last = 0;
	for (char *p = dir + 1;; p++) {
		char saved = *p;

		if (saved && saved != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0750) && errno != EEXIST) {
			int e = errno;

			kl_errf(err, errlen, "admin socket %s: cannot create directory %s: %s", path, dir,
			     strerror(e));
			return -e;
		}
		if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
			kl_errf(err, errlen, "admin socket %s: %s is not a directory", path, dir);
			return -ENOTDIR;
		}
		*p = saved;
		if (!saved)
			return 0;
	}
}

/* A socket file at path: in use (a server answers), stale (removed) or an error. */
static int check_existing(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	const char *path = sa->sun_path;
	struct stat st;
	int fd, e;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		e = errno;
		kl_errf(err, errlen, "admin socket %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		kl_errf(err, errlen, "admin socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		kl_errf(err, errlen, "admin socket %s: socket: %s", path, strerror(e));
		return -e;
	}
	/* Non-blocking, so a live server with a full backlog (EAGAIN) cannot stall us. */
	if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) || errno == EAGAIN ||
	    errno == EINPROGRESS) {
		close(fd);
		kl_errf(err, errlen, "admin socket %s: in use", path);
		return -EADDRINUSE;
	}
	e = errno;
	close(fd);
	if (e != ECONNREFUSED) {
		kl_errf(err, errlen, "admin socket %s: %s", path, strerror(e));
		return -e;
	}
	if (unlink(path) && errno != ENOENT) {
		e = errno;
		kl_errf(err, errlen, "admin socket %s: cannot remove the stale socket: %s", path,
		     strerror(e));
		return -e;
	}
	return 0;
}

struct kl_admin *kl_admin_create(const struct kl_admin_params *p, char *err, size_t errlen)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0 };
	struct sockaddr_un sa;
	struct kl_admin *a;
	struct stat st;
	mode_t old;
	int rc;

	if (!p || !p->table || !p->path) {
		kl_errf(err, errlen, "admin socket: missing path or table");
		errno = EINVAL;
		return NULL;
	}
	if (p->path[0] != '/' || strlen(p->path) >= sizeof(sa.sun_path) ||
	    p->path[strlen(p->path) - 1] == '/') {
		kl_errf(err, errlen, "admin socket %s: must be an absolute file path under %zu bytes",
		     p->path, sizeof(sa.sun_path));
		errno = EINVAL;
		return NULL;
	}
	if (p->e2m_ring > KL_TABLE_E2M_RING_MAX) {
		kl_errf(err, errlen, "admin socket: e2m_ring %u out of range (1..%u)", p->e2m_ring,
			KL_TABLE_E2M_RING_MAX);
		errno = EINVAL;
		return NULL;
	}
	if (p->max_clients > KL_ADMIN_MAX_CLIENTS ||
	    (p->max_line && (p->max_line < KL_ADMIN_MIN_LINE || p->max_line > KL_ADMIN_MAX_LINE))) {
		kl_errf(err, errlen, "admin socket: max_clients (<= %u) or max_line (%u..%u) out of range",
		     KL_ADMIN_MAX_CLIENTS, KL_ADMIN_MIN_LINE, KL_ADMIN_MAX_LINE);
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		kl_errf(err, errlen, "admin socket: out of memory");
		return NULL;
	}
	a->lfd = a->efd = -1;
	a->table = p->table;
	a->store = p->store;
	a->e2m_ring = p->e2m_ring ? p->e2m_ring : 4;
	if (p->server_identity)
		snprintf(a->server_identity, sizeof(a->server_identity), "%s", p->server_identity);
	a->stats = p->stats;
	a->rotate = p->rotate;
	a->diameter_status = p->diameter_status;
	a->diameter_arg = p->diameter_arg;
	a->ext_cmd = p->ext_cmd;
	a->ext_arg = p->ext_arg;
	a->naf_status = p->naf_status;
	a->ext_status = p->ext_status;
	a->max_clients = p->max_clients ? p->max_clients : KL_ADMIN_DEFAULT_MAX_CLIENTS;
	a->max_line = p->max_line ? p->max_line : KL_ADMIN_DEFAULT_MAX_LINE;
	a->idle_ms = p->idle_timeout_ms ? p->idle_timeout_ms : KL_ADMIN_DEFAULT_IDLE_MS;
	a->line_ms = p->line_timeout_ms ? p->line_timeout_ms : KL_ADMIN_DEFAULT_LINE_MS;
	a->ctl = p->ctl;
	a->log = p->log;
	a->log_arg = p->log_arg;
	snprintf(a->path, sizeof(a->path), "%s", p->path);
	a->clients = calloc(a->max_clients, sizeof(*a->clients));
	if (!a->clients) {
		kl_errf(err, errlen, "admin socket: out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned k = 0; k < a->max_clients; k++)
		a->clients[k].fd = -1;

	json_set_alloc_funcs(malloc, wiping_free);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, p->path, strlen(p->path));
	rc = make_parents(p->path, err, errlen);
	if (!rc)
		rc = check_existing(&sa, err, errlen);
	if (rc)
		goto fail;
	a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->lfd < 0) {
		rc = -errno;
		kl_errf(err, errlen, "admin socket %s: socket: %s", p->path, strerror(-rc));
		goto fail;
	}
	/* The file is created 0600 from the start: no window in which others could connect. */
	old = umask(0177);
	rc = bind(a->lfd, (const struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (rc) {
		if (rc == -EADDRINUSE)
			kl_errf(err, errlen, "admin socket %s: in use", p->path);
		else
			kl_errf(err, errlen, "admin socket %s: bind: %s", p->path, strerror(-rc));
		goto fail;
	}
	if (chmod(p->path, 0600) || lstat(p->path, &st)) {
		rc = -errno;
		kl_errf(err, errlen, "admin socket %s: %s", p->path, strerror(-rc));
		unlink(p->path);
		goto fail;
	}
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	if (listen(a->lfd, 64)) {
		rc = -errno;
		kl_errf(err, errlen, "admin socket %s: listen: %s", p->path, strerror(-rc));
		unlink(p->path);
		goto fail;
	}
	a->efd = epoll_create1(EPOLL_CLOEXEC);
	if (a->efd < 0 || epoll_ctl(a->efd, EPOLL_CTL_ADD, a->lfd, &e)) {
		rc = -errno;
		kl_errf(err, errlen, "admin socket %s: epoll: %s", p->path, strerror(-rc));
		unlink(p->path);
		goto fail;
	}
	alog(a, KL_ADMIN_LOG_INFO, "listening on %s", a->path);
	return a;
fail:
	if (a->efd >= 0)
		close(a->efd);
	if (a->lfd >= 0)
		close(a->lfd);
	free(a->clients);
	free(a);
	errno = -rc;
	return NULL;
}

void kl_admin_destroy(struct kl_admin *a)
{
	struct stat st;

	if (!a)
		return;
	for (unsigned k = 0; k < a->max_clients; k++)
		drop_client(a, &a->clients[k], "server stopping");
	/* Only our own socket file: a successor may already have replaced it. */
	if (!lstat(a->path, &st) && st.st_dev == a->dev && st.st_ino == a->ino)
		unlink(a->path);
	close(a->lfd);
	close(a->efd);
	free(a->clients);
	free(a);
}
