/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Config loading in three passes over the same bytes:
 *  1. a libyaml event pass records the line of every key path ("rate_limit.burst", "ports[1].queues")
 *     and rejects what libcyaml reports badly or not at all: syntax errors, duplicate and unknown
 *     keys (libcyaml points at the wrong line for those), aliases, several documents, deep nesting,
 *     a top level that is not a mapping;
 *  2. libcyaml loads the document through a schema into a raw struct; its type errors come with a
 *     backtrace in the log callback, from which the key path and line are taken;
 *  3. every present value goes through the same string setter the command-line overrides use, then
 *     the shared validator; a failing key is mapped back to its line through pass 1.
 */
#include "kl_config.h"
#include "kl_util.h"

#include <arpa/inet.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define KEY_MAX 128
#define WHAT_MAX 256
#define MAX_DEPTH 8
#define MAX_KEYS 4096

/* ---- value setters (shared by the file loader and the overrides) -------------------------- */

struct num_field {
	const char *key;
	size_t off;
	uint8_t size;
	uint64_t min, max;
	bool pow2;
};

#define NUM(k, m, lo, hi, p2) \
	{ k, offsetof(struct kl_config, m), sizeof(((struct kl_config *)0)->m), lo, hi, p2 }
static const struct num_field num_fields[] = {
	NUM("udp_port", udp_port, 1, 65535, false),
	NUM("workers", workers, 1, KL_CONFIG_MAX_WORKERS, false),
	NUM("skew_s", skew_s, 1, 3600, false),
	NUM("predelivery_s", predelivery_s, 0, 86400, false),
	NUM("hm_session_s", hm_session_s, 60, 86400, false),
	NUM("retry_after_ms", retry_after_ms, 10, 10000, false),
	NUM("replay_cache", replay_cache, 1024, 1u << 26, true),
	NUM("rate_limit.per_source_pps", rate_limit.per_source_pps, 0, 10000000, false),
	NUM("rate_limit.burst", rate_limit.burst, 1, 1000000, false),
	NUM("rate_limit.table_size", rate_limit.table_size, 1024, 1u << 24, true),
	NUM("table.ues", table.ues, 1, 100000000, false),
	NUM("table.groups", table.groups, 1, 65535, false),
	NUM("table.emses", table.emses, 1, 10000000, false),
	NUM("table.imsis", table.imsis, 1, 100000000, false),
	NUM("table.appids", table.appids, 1, 10000000, false),
	NUM("table.pairs", table.pairs, 1, 1000000, false),
	NUM("table.dh_ues", table.dh_ues, 0, 100000000, false),
	NUM("table.e2m_ring", table.e2m_ring, 1, 8, false),
	NUM("store.map_size_mb", store.map_size_mb, 16, 1048576, false),
	NUM("diameter.port", diameter.port, 1, 65535, false),
	NUM("diameter.vendor_id", diameter.vendor_id, 1, 0xffffffffu, false),
	NUM("diameter.app_id", diameter.app_id, 1, 0xfffffffeu, false),
	NUM("diameter.max_queue", diameter.max_queue, 1, KL_CONFIG_DIAMETER_MAX_QUEUE, false),
	NUM("naf_key_center.port", naf.port, 1, 65535, false),
	NUM("naf_key_center.bsf.port", naf.bsf.port, 1, 65535, false),
	NUM("naf_key_center.bsf.timeout_ms", naf.bsf.timeout_ms, 10, 60000, false),
	NUM("naf_key_center.rate_limit.per_cert_rps", naf.rate_per_s, 0, 1000000, false),
	NUM("naf_key_center.rate_limit.burst", naf.rate_burst, 1, 1000000, false),
	NUM("naf_key_center.threads", naf.threads, 1, 64, false),
	NUM("naf_key_center.max_body", naf.max_body, 64, 1048576, false),
	NUM("naf_key_center.max_connections", naf.max_connections, 1, 65536, false),
	NUM("naf_key_center.connection_timeout_s", naf.connection_timeout_s, 1, 3600, false),
	NUM("naf_key_center.max_keys", naf.max_keys, 1, 100000000, false),
	NUM("admin_max_clients", admin_max_clients, 1, 256, false),
	NUM("admin_idle_timeout_s", admin_idle_timeout_s, 1, 86400, false),
	NUM("admin_line_timeout_s", admin_line_timeout_s, 1, 3600, false),
	NUM("metrics_max_connections", metrics_max_connections, 1, 1024, false),
	NUM("metrics_request_timeout_s", metrics_request_timeout_s, 1, 3600, false),
	NUM("cluster.lease_ttl_s", cluster.lease_ttl_s, 2, 300, false),
	NUM("cluster.connect_timeout_ms", cluster.connect_timeout_ms, 10, 60000, false),
	NUM("cluster.request_timeout_ms", cluster.request_timeout_ms, 10, 600000, false),
	NUM("cluster.stale_after_ms", cluster.stale_after_ms, 100, 3600000, false),
	NUM("cluster.write_connections", cluster.write_connections, 1, 16, false),
	NUM("rendezvous_s", rendezvous_s, 1, 3600, false),
	NUM("rendezvous_entries", rendezvous_entries, 64, 1u << 24, true),
	NUM("dh_cache_s", dh_cache_s, 1, 86400, false),
	NUM("dh_cache_entries", dh_cache_entries, 64, 1u << 24, true),
	NUM("s2s_pending", s2s_pending, 16, 65536, false),
};
#define N_NUM (sizeof(num_fields) / sizeof(num_fields[0]))

static const char *const log_names[] = { "error", "warning", "info", "debug" };
static const char *const crypto_names[] = { "ipsec-mb", "openssl" };
static const char *const io_names[] = { "dpdk", "socket" };

const char *
kl_config_log_level_name(enum kl_config_log_level l)
{
	return (unsigned)l < 4 ? log_names[l] : "?";
}

static int
whatf(char *what, size_t wl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int
whatf(char *what, size_t wl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, wl, fmt, ap);
	va_end(ap);
	return -1;
}

/* Values are echoed in messages: keep them printable and short, whatever the file held. */
static void
sanitize(char *dst, size_t dl, const char *src)
{
	size_t i = 0;

	if (kl_maybe_key(src)) { /* a key typed in the wrong place is never echoed */
		snprintf(dst, dl, "%s", kl_shown(src));
		return;
	}
	for (; *src && i + 1 < dl; src++) {
		unsigned char ch = (unsigned char)*src;
		dst[i++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (*src && dl > 4 && i >= 3)
		memcpy(dst + i - 3, "...", 3);
	dst[i] = '\0';
}

static uint64_t
get_num(const struct kl_config *c, const struct num_field *f)
{
	const uint8_t *p = (const uint8_t *)c + f->off;
	if (f->size == 2)
		return *(const uint16_t *)(const void *)p;
	return *(const uint32_t *)(const void *)p;
}

static int
check_num(const struct num_field *f, uint64_t v, char *what, size_t wl)
{
	if (v < f->min || v > f->max)
		return whatf(what, wl, "must be %" PRIu64 "..%" PRIu64 " (got %" PRIu64 ")", f->min,
			     f->max, v);
	if (f->pow2 && (v & (v - 1)) != 0)
		return whatf(what, wl, "must be a power of two (got %" PRIu64 ")", v);
	return 0;
}

/* Parse and store a decimal number at base + f->off (base: the config, or a port). */
static int
set_num(void *base, const struct num_field *f, const char *val, char *what, size_t wl)
{
	char shown[40];
	const char *p = val;
	bool neg = false;
	char *end;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p < '0' || *p > '9') {
		sanitize(shown, sizeof(shown), val);
		return whatf(what, wl, "must be an integer (got '%s')", shown);
	}
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (*end != '\0') {
		sanitize(shown, sizeof(shown), val);
		return whatf(what, wl, "must be an integer (got '%s')", shown);
	}
	if (neg || errno == ERANGE) {
		sanitize(shown, sizeof(shown), val);
		return whatf(what, wl, "must be %" PRIu64 "..%" PRIu64 " (got %s)", f->min, f->max,
			     shown);
	}
	if (check_num(f, v, what, wl) < 0)
		return -1;
	uint8_t *dst = (uint8_t *)base + f->off;
	if (f->size == 2)
		*(uint16_t *)(void *)dst = (uint16_t)v;
	else
		*(uint32_t *)(void *)dst = (uint32_t)v;
	return 0;
}

static int
set_enum(int *dst, const char *const *names, unsigned n, const char *val, char *what, size_t wl)
{
	char shown[40], list[96] = "";
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(val, names[i]) == 0) {
			*dst = (int)i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "|" : "",
			 names[i]);
	}
	sanitize(shown, sizeof(shown), val);
	return whatf(what, wl, "must be one of %s (got '%s')", list, shown);
}

/* Strict UTF-8 (kl_utf8_ok: no overlong forms, no surrogates, nothing above U+10FFFF) without C0
 * controls or DEL (bytes below 0x80 never occur inside a multi-byte sequence). */
static bool
utf8_ok(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return kl_utf8_ok(s, n);
}

static int
parse_ipv4(const char *val, struct in_addr *a, char *what, size_t wl)
{
	char shown[64];
	sanitize(shown, sizeof(shown), val);
	if (inet_pton(AF_INET, val, a) != 1)
		return whatf(what, wl, "not an IPv4 address (got '%s')", shown);
	uint32_t h = ntohl(a->s_addr);
	if (h == 0 || h == 0xffffffffu || (h >> 28) == 0xe)
		return whatf(what, wl, "not a unicast IPv4 address (got '%s')", shown);
	return 0;
}

static int
parse_ipv6(const char *val, struct in6_addr *a, char *what, size_t wl)
{
	char shown[64];
	sanitize(shown, sizeof(shown), val);
	if (inet_pton(AF_INET6, val, a) != 1)
		return whatf(what, wl, "not an IPv6 address (got '%s')", shown);
	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_MULTICAST(a))
		return whatf(what, wl, "not a unicast IPv6 address (got '%s')", shown);
	return 0;
}

static int
parse_endpoint(const char *val, struct kl_config_endpoint *e, char *what, size_t wl)
{
	char shown[64], host[64];
	const char *colon;
	sanitize(shown, sizeof(shown), val);
	memset(e, 0, sizeof(*e));
	if (*val == '\0')
		return 0;
	if (strlen(val) >= sizeof(e->text))
		return whatf(what, wl, "too long (at most %zu bytes)", sizeof(e->text) - 1);
	if (val[0] == '[') {
		const char *close = strchr(val, ']');
		if (close == NULL || close[1] != ':' || (size_t)(close - val - 1) >= sizeof(host))
			goto bad;
		memcpy(host, val + 1, (size_t)(close - val - 1));
		host[close - val - 1] = '\0';
		if (inet_pton(AF_INET6, host, &e->v6) != 1)
			goto bad;
		e->family = AF_INET6;
		colon = close + 1;
	} else {
		colon = strrchr(val, ':');
		if (colon == NULL || (size_t)(colon - val) >= sizeof(host))
			goto bad;
		memcpy(host, val, (size_t)(colon - val));
		host[colon - val] = '\0';
		if (inet_pton(AF_INET, host, &e->v4) != 1)
			goto bad;
		e->family = AF_INET;
	}
	{
		const char *p = colon + 1;
		char *end;
		if (*p < '0' || *p > '9')
			goto bad;
		errno = 0;
		unsigned long port = strtoul(p, &end, 10);
		if (*end != '\0' || errno != 0 || port == 0 || port > 65535)
			goto bad;
		e->port = (uint16_t)port;
	}
	e->enabled = true;
	snprintf(e->text, sizeof(e->text), "%s", val);
	return 0;
bad:
	memset(e, 0, sizeof(*e));
	return whatf(what, wl,
		     "must be IPV4:PORT or [IPV6]:PORT with port 1..65535, or empty for off (got '%s')",
		     shown);
}

static int
check_admin(const char *val, char *what, size_t wl)
{
	char shown[64];
	sanitize(shown, sizeof(shown), val);
	if (val[0] != '/')
		return whatf(what, wl, "must be an absolute path (got '%s')", shown);
	if (strlen(val) > KL_CONFIG_ADMIN_PATH_MAX)
		return whatf(what, wl, "path is %zu bytes; a Unix socket path must be under 108",
			     strlen(val));
	return 0;
}

/* An absolute, printable (it is echoed in messages), bounded path; no_quote: also no '"' (it goes
 * into freeDiameter's "..." strings). */
static int
check_path(const char *val, size_t max, bool no_quote, char *what, size_t wl)
{
	char shown[64];
	sanitize(shown, sizeof(shown), val);
	if (val[0] != '/')
		return whatf(what, wl, "must be an absolute path (got '%s')", shown);
	if (strlen(val) > max)
		return whatf(what, wl, "path is %zu bytes, at most %zu", strlen(val), max);
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f || (no_quote && *p == '"'))
			return whatf(what, wl, no_quote ? "must not contain quotes or control "
							  "characters (got '%s')"
							: "must not contain control characters (got '%s')",
				     shown);
	return 0;
}

/* store.path / store.kek_file */
static int
check_store_path(const char *val, char *what, size_t wl)
{
	return check_path(val, KL_CONFIG_STORE_PATH_MAX, false, what, wl);
}

static long indexed(const char *key, const char *name, const char **rest);
static bool port_name_ok(const char *s);

/* diameter.fd_conf / tls_* */
static int
check_dia_path(const char *val, char *what, size_t wl)
{
	return check_path(val, KL_CONFIG_DIAMETER_STR_MAX, true, what, wl);
}

/* A Diameter identity or realm (DiameterIdentity, RFC 6733 4.3.1): 1..255 bytes of
 * [A-Za-z0-9._-], no empty label. */
static int
check_diamid(const char *val, char *what, size_t wl)
{
	char shown[64];
	size_t n = strlen(val);
	sanitize(shown, sizeof(shown), val);
	if (n == 0 || n > KL_CONFIG_DIAMETER_STR_MAX)
		return whatf(what, wl, "must be a domain name of 1..%d bytes (got %zu bytes)",
			     KL_CONFIG_DIAMETER_STR_MAX, n);
	for (size_t i = 0; i < n; i++) {
		char ch = val[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
			return whatf(what, wl,
				     "must be a domain name: letters, digits, '.', '-', '_' (got '%s')",
				     shown);
		if (ch == '.' && (i == 0 || i + 1 == n || val[i + 1] == '.'))
			return whatf(what, wl, "must be a domain name without empty labels (got '%s')",
				     shown);
	}
	return 0;
}

static int
check_dia_listen(const char *val, char *what, size_t wl)
{
	char shown[64];
	struct in6_addr a6;
	struct in_addr a4;
	sanitize(shown, sizeof(shown), val);
	if (val[0] == '\0')
		return 0;
	if (strlen(val) >= sizeof(((struct kl_config_diameter *)0)->listen) ||
	    (inet_pton(AF_INET, val, &a4) != 1 && inet_pton(AF_INET6, val, &a6) != 1))
		return whatf(what, wl, "must be an IPv4 or IPv6 address, or empty for all (got '%s')",
			     shown);
	return 0;
}

/* "DDDDDD:G": Key Domain ID as 6 hex digits (MCC||MNC), key group 0..65535 in decimal (as
 * keylinectl writes it). */
static int
parse_group_ref(const char *val, uint8_t domain[3], uint16_t *group, char *what, size_t wl)
{
	char shown[64];
	size_t n = strlen(val);
	unsigned g = 0;
	sanitize(shown, sizeof(shown), val);
	if (n < 8 || n > 12 || val[6] != ':')
		goto bad;
	for (unsigned i = 0; i < 6; i++) {
		char ch = val[i];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			goto bad;
		if (i % 2 == 0)
			domain[i / 2] = (uint8_t)(d << 4);
		else
			domain[i / 2] |= (uint8_t)d;
	}
	for (size_t i = 7; i < n; i++) {
		if (val[i] < '0' || val[i] > '9')
			goto bad;
		g = g * 10 + (unsigned)(val[i] - '0');
		if (g > 65535)
			goto bad;
	}
	*group = (uint16_t)g;
	return 0;
bad:
	return whatf(what, wl,
		     "must be \"DDDDDD:G\": Key Domain ID as 6 hex digits, key group 0..65535 "
		     "(got '%s')",
		     shown);
}

/* ---- lists and tables shared by the sections ------------------------------------------------ */

/* One item of a list into slot i of its array (ctx: the array and how to check an item). */
typedef int (*list_item_fn)(void *ctx, unsigned i, const char *val, char *what, size_t wl);

struct list_spec {
	unsigned max;	     /* entries at most */
	const char *entries; /* their name in messages: "peers" */
	size_t text_max;     /* the whole list's text is shorter than this */
	list_item_fn item;
	void *ctx;
};

/* The longest list text (diameter.allowed_peers); the others are shorter. */
#define LIST_TEXT_MAX (KL_CONFIG_DIAMETER_MAX_PEERS * (KL_CONFIG_DIAMETER_STR_MAX + 1) + 1)

/* "a,b,c": the whole list (*n its length). */
static int
set_list(const struct list_spec *l, unsigned *n, const char *val, char *what, size_t wl)
{
	char buf[LIST_TEXT_MAX];
	unsigned k = 0;

	if (strlen(val) >= l->text_max || strlen(val) >= sizeof(buf))
		return whatf(what, wl, "list too long");
	snprintf(buf, sizeof(buf), "%s", val);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (k == l->max)
			return whatf(what, wl, "at most %u %s", l->max, l->entries);
		if (l->item(l->ctx, k, tok, what, wl) < 0)
			return -1;
		k++;
	}
	*n = k;
	return 0;
}

/* Entry idx of a list of n: idx == n appends. */
static int
list_index(long idx, unsigned n, unsigned max, const char *entries, char *what, size_t wl)
{
	if (idx > (long)n || idx >= (long)max)
		return whatf(what, wl, "at most %u %s, numbered from 0 without gaps", max, entries);
	return 0;
}

/* "LIST[N]": one entry of the list. */
static int
set_list_entry(const struct list_spec *l, unsigned *n, long idx, const char *val, char *what,
	       size_t wl)
{
	if (list_index(idx, *n, l->max, l->entries, what, wl) < 0)
		return -1;
	if (l->item(l->ctx, (unsigned)idx, val, what, wl) < 0)
		return -1;
	if (idx == (long)*n)
		(*n)++;
	return 0;
}

/* A list of strings: char array[max][stride], each entry checked. */
struct str_slots {
	char *base;
	size_t stride;
	int (*check)(const char *val, char *what, size_t wl);
};

static int
str_item(void *ctx, unsigned i, const char *val, char *what, size_t wl)
{
	const struct str_slots *s = ctx;

	if (s->check(val, what, wl) < 0)
		return -1;
	snprintf(s->base + (size_t)i * s->stride, s->stride, "%s", val);
	return 0;
}

/* A string field of a section that holds a path: its key, where it is, whether "" clears it. */
struct path_field {
	const char *name;
	size_t off;
	bool optional; /* an empty value clears it */
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Sets the path field of base that sub names (a char[size] checked by check).
 * @return 1 when set, 0 when sub names none of them, -1 on a bad value (what says why). */
static int
set_path_field(void *base, const struct path_field *t, size_t n, const char *sub, const char *val,
	       size_t size, int (*check)(const char *, char *, size_t), char *what, size_t wl)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(sub, t[i].name) != 0)
			continue;
		if (!(t[i].optional && val[0] == '\0') && check(val, what, wl) < 0)
			return -1;
		snprintf((char *)base + t[i].off, size, "%s", val);
		return 1;
	}
	return 0;
}

/* Every path field of base set (key: "SECTION.NAME"), the required ones present. */
static int
check_path_fields(const void *base, const struct path_field *t, size_t n, const char *section,
		  char *key, size_t kl, char *what, size_t wl)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = (const char *)base + t[i].off;

		snprintf(key, kl, "%s.%s", section, t[i].name);
		if (v[0] == '\0') {
			if (t[i].optional)
				continue;
			return whatf(what, wl, "required key is missing (an absolute PEM file)");
		}
		if (check_dia_path(v, what, wl) < 0)
			return -1;
	}
	return 0;
}

/* diameter.* PEM files (fd_conf first: check_diameter checks it apart). */
static const struct path_field dia_paths[] = {
	{ "fd_conf", offsetof(struct kl_config_diameter, fd_conf), true },
	{ "tls_cert", offsetof(struct kl_config_diameter, tls_cert), false },
	{ "tls_key", offsetof(struct kl_config_diameter, tls_key), false },
	{ "tls_ca", offsetof(struct kl_config_diameter, tls_ca), false },
	{ "tls_crl", offsetof(struct kl_config_diameter, tls_crl), true },
};

/* diameter.* keys other than the numbers. */
static int
set_diameter(struct kl_config *c, const char *sub, const char *val, char *what, size_t wl)
{
	struct kl_config_diameter *d = &c->diameter;
	struct str_slots peers = { d->allowed_peers[0], sizeof(d->allowed_peers[0]),
					 check_diamid };
	const struct list_spec peer_list = { KL_CONFIG_DIAMETER_MAX_PEERS, "peers", LIST_TEXT_MAX,
					     str_item, &peers };
	const char *rest;
	long idx;
	int r;

	if ((r = set_path_field(d, dia_paths, N_OF(dia_paths), sub, val,
				KL_CONFIG_DIAMETER_STR_MAX + 1, check_dia_path, what, wl)) != 0)
		return r < 0 ? -1 : 0;
	if (strcmp(sub, "identity") == 0 || strcmp(sub, "realm") == 0) {
		bool realm = sub[0] == 'r';
		if (!(realm && val[0] == '\0') && check_diamid(val, what, wl) < 0)
			return -1;
		snprintf(realm ? d->realm : d->identity, sizeof(d->identity), "%s", val);
		return 0;
	}
	if (strcmp(sub, "listen") == 0) {
		if (check_dia_listen(val, what, wl) < 0)
			return -1;
		snprintf(d->listen, sizeof(d->listen), "%s", val);
		return 0;
	}
	if (strcmp(sub, "allowed_peers") == 0)
		return set_list(&peer_list, &d->n_allowed_peers, val, what, wl);
	if ((idx = indexed(sub, "allowed_peers", &rest)) >= 0 && *rest == '\0')
		return set_list_entry(&peer_list, &d->n_allowed_peers, idx, val, what, wl);
	return whatf(what, wl, "unknown key");
}

/* The entry N of a list an override "LIST[N].FIELD" sets (N == n appends): *field = FIELD. */
static int
list_field(long idx, unsigned n, unsigned max, const char *entries, const char *rest,
	   const char **field, char *what, size_t wl)
{
	if (list_index(idx, n, max, entries, what, wl) < 0)
		return -1;
	if (*rest != '.')
		return whatf(what, wl, "unknown key");
	*field = rest + 1;
	return 0;
}

/* ---- naf_key_center ------------------------------------------------------------------------- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
		return (ch | 0x20) - 'a' + 10;
	return -1;
}

/* Even-length hex of 1..max bytes into out. @return the length, or -1. */
static int
parse_hex(const char *val, uint8_t *out, size_t max)
{
	size_t n = strlen(val);

	if (n == 0 || n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(val[i]), lo = hexval(val[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

/* "0-3,6,8-9": CPU numbers below KL_CONFIG_MAX_CPUS; "" clears the list. */
static int
parse_cpus(const char *val, struct kl_config_naf *n, char *what, size_t wl)
{
	char shown[64];
	uint64_t set[KL_CONFIG_MAX_CPUS / 64] = { 0 };
	const char *p = val;
	bool any = false;

	sanitize(shown, sizeof(shown), val);
	if (*p == '\0') {
		n->has_cpus = false;
		memset(n->cpus, 0, sizeof(n->cpus));
		n->cpus_text[0] = '\0';
		return 0;
	}
	if (strlen(val) >= sizeof(n->cpus_text))
		return whatf(what, wl, "too long (at most %zu bytes)", sizeof(n->cpus_text) - 1);
	while (*p) {
		unsigned long lo, hi;
		char *end;

		if (*p < '0' || *p > '9')
			goto bad;
		lo = strtoul(p, &end, 10);
		hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				goto bad;
			hi = strtoul(p, &end, 10);
			p = end;
		}
		if (lo > hi || hi >= KL_CONFIG_MAX_CPUS)
			return whatf(what, wl, "CPUs must be 0..%d, ranges low-high (got '%s')",
				     KL_CONFIG_MAX_CPUS - 1, shown);
		for (unsigned long cpu = lo; cpu <= hi; cpu++)
			set[cpu / 64] |= 1ull << (cpu % 64);
		any = true;
		if (*p == ',') {
			p++;
			if (*p == '\0')
				goto bad;
		} else if (*p) {
			goto bad;
		}
	}
	if (!any)
		goto bad;
	memcpy(n->cpus, set, sizeof(set));
	n->has_cpus = true;
	snprintf(n->cpus_text, sizeof(n->cpus_text), "%s", val);
	return 0;
bad:
	return whatf(what, wl, "must be a CPU list such as \"2-3,6\", or empty for every CPU but "
			       "the workers' (got '%s')",
		     shown);
}

/* A NAF_Id entry's bytes from its parts: fqdn || ua_protocol, or the hex form. */
static void
naf_id_compose(struct kl_config_naf_id *e)
{
	size_t fl = strlen(e->fqdn);

	if (e->has_hex)
		return;
	e->len = 0;
	if (fl && e->has_ua && fl + KL_CONFIG_NAF_UA_LEN <= KL_CONFIG_NAF_ID_MAX) {
		memcpy(e->id, e->fqdn, fl);
		memcpy(e->id + fl, e->ua, KL_CONFIG_NAF_UA_LEN);
		e->len = (uint16_t)(fl + KL_CONFIG_NAF_UA_LEN);
	}
}

/* naf_key_center.naf_ids[N].fqdn|ua_protocol|hex|max_lifetime_s|default */
static int
set_naf_id(struct kl_config *c, long idx, const char *rest, const char *val, char *what,
	   size_t wl)
{
	static const struct num_field lf = { "max_lifetime_s",
					     offsetof(struct kl_config_naf_id, max_lifetime_s), 4,
					     60, 31536000, false };
	struct kl_config_naf_id *e;
	char shown[64];

	if (list_field(idx, c->naf.n_ids, KL_CONFIG_NAF_MAX_IDS, "NAF identities", rest, &rest,
		       what, wl) < 0)
		return -1;
	e = &c->naf.ids[idx];
	if (idx == (long)c->naf.n_ids) {
		memset(e, 0, sizeof(*e));
		e->max_lifetime_s = 86400;
	}
	sanitize(shown, sizeof(shown), val);
	if (strcmp(rest, "fqdn") == 0) {
		if (check_diamid(val, what, wl) < 0)
			return -1;
		if (strlen(val) + KL_CONFIG_NAF_UA_LEN > KL_CONFIG_NAF_ID_MAX)
			return whatf(what, wl, "at most %d bytes (the NAF_Id adds 5)",
				     KL_CONFIG_NAF_ID_MAX - KL_CONFIG_NAF_UA_LEN);
		snprintf(e->fqdn, sizeof(e->fqdn), "%s", val);
	} else if (strcmp(rest, "ua_protocol") == 0) {
		if (parse_hex(val, e->ua, KL_CONFIG_NAF_UA_LEN) != KL_CONFIG_NAF_UA_LEN)
			return whatf(what, wl,
				     "must be the Ua security protocol identifier as 10 hex digits "
				     "(TS 33.220 Annex H, e.g. 0100000002; got '%s')",
				     shown);
		e->has_ua = true;
	} else if (strcmp(rest, "hex") == 0) {
		int n = parse_hex(val, e->id, KL_CONFIG_NAF_ID_MAX);

		if (n < 0)
			return whatf(what, wl, "must be the whole NAF_Id as hex, 1..%d bytes (got '%s')",
				     KL_CONFIG_NAF_ID_MAX, shown);
		e->len = (uint16_t)n;
		e->has_hex = true;
	} else if (strcmp(rest, "max_lifetime_s") == 0) {
		if (set_num(e, &lf, val, what, wl) < 0)
			return -1;
	} else if (strcmp(rest, "default") == 0) {
		if (strcmp(val, "true") && strcmp(val, "false"))
			return whatf(what, wl, "must be true or false (got '%s')", shown);
		e->is_default = val[0] == 't';
	} else {
		return whatf(what, wl, "unknown key");
	}
	naf_id_compose(e);
	if (idx == (long)c->naf.n_ids)
		c->naf.n_ids++;
	return 0;
}

/* naf_key_center.* PEM files. */
static const struct path_field naf_paths[] = {
	{ "tls_cert", offsetof(struct kl_config_naf, tls_cert), false },
	{ "tls_key", offsetof(struct kl_config_naf, tls_key), false },
	{ "device_ca", offsetof(struct kl_config_naf, device_ca), false },
	{ "operator_ca", offsetof(struct kl_config_naf, operator_ca), false },
	{ "crl", offsetof(struct kl_config_naf, crl), true },
};

/* naf_key_center.* keys other than the numbers. */
static int
set_naf(struct kl_config *c, const char *sub, const char *val, char *what, size_t wl)
{
	struct kl_config_naf *n = &c->naf;
	const char *rest;
	long idx;
	int r;

	if ((r = set_path_field(n, naf_paths, N_OF(naf_paths), sub, val,
				KL_CONFIG_DIAMETER_STR_MAX + 1, check_dia_path, what, wl)) != 0)
		return r < 0 ? -1 : 0;
	if (strcmp(sub, "listen") == 0 || strcmp(sub, "bsf.address") == 0) {
		bool bsf = sub[0] == 'b';

		if (bsf && val[0] == '\0')
			return whatf(what, wl, "must be the BSF's IPv4 or IPv6 address");
		if (check_dia_listen(val, what, wl) < 0)
			return -1;
		snprintf(bsf ? n->bsf.address : n->listen, sizeof(n->listen), "%s", val);
		return 0;
	}
	if (strcmp(sub, "bsf.identity") == 0) {
		if (check_diamid(val, what, wl) < 0)
			return -1;
		snprintf(n->bsf.identity, sizeof(n->bsf.identity), "%s", val);
		return 0;
	}
	if (strcmp(sub, "cpus") == 0)
		return parse_cpus(val, n, what, wl);
	if ((idx = indexed(sub, "naf_ids", &rest)) >= 0)
		return set_naf_id(c, idx, rest, val, what, wl);
	return whatf(what, wl, "unknown key");
}

static int
check_naf(const struct kl_config *c, char *key, size_t kl, char *what, size_t wl)
{
	const struct kl_config_naf *n = &c->naf;
	unsigned defaults = 0;

	snprintf(key, kl, "naf_key_center");
	if (!c->diameter.enabled)
		return whatf(what, wl, "needs the diameter: section: the Key Center asks the BSF over "
				       "Zn on keylined's Diameter stack");
	if (check_path_fields(n, naf_paths, N_OF(naf_paths), "naf_key_center", key, kl, what,
			      wl) < 0)
		return -1;
	snprintf(key, kl, "naf_key_center.listen");
	if (check_dia_listen(n->listen, what, wl) < 0)
		return -1;
	snprintf(key, kl, "naf_key_center.naf_ids");
	if (n->n_ids == 0)
		return whatf(what, wl, "required key is missing (at least one NAF identity: fqdn "
				       "and ua_protocol, or hex)");
	if (n->n_ids > KL_CONFIG_NAF_MAX_IDS)
		return whatf(what, wl, "at most %d entries", KL_CONFIG_NAF_MAX_IDS);
	for (unsigned i = 0; i < n->n_ids; i++) {
		const struct kl_config_naf_id *e = &n->ids[i];

		snprintf(key, kl, "naf_key_center.naf_ids[%u]", i);
		if (e->has_hex && (e->fqdn[0] || e->has_ua))
			return whatf(what, wl, "give either hex or fqdn and ua_protocol, not both");
		if (!e->has_hex && !e->fqdn[0])
			return whatf(what, wl, "fqdn is missing (or give the whole NAF_Id as hex)");
		if (!e->has_hex && !e->has_ua)
			return whatf(what, wl, "ua_protocol is missing (10 hex digits, TS 33.220 "
					       "Annex H)");
		if (e->len == 0 || e->len > KL_CONFIG_NAF_ID_MAX)
			return whatf(what, wl, "the NAF_Id is empty or too long");
		snprintf(key, kl, "naf_key_center.naf_ids[%u].max_lifetime_s", i);
		if (e->max_lifetime_s < 60 || e->max_lifetime_s > 31536000)
			return whatf(what, wl, "must be 60..31536000 (got %u)", e->max_lifetime_s);
		snprintf(key, kl, "naf_key_center.naf_ids[%u]", i);
		for (unsigned j = 0; j < i; j++)
			if (n->ids[j].len == e->len && memcmp(n->ids[j].id, e->id, e->len) == 0)
				return whatf(what, wl, "the same NAF_Id as naf_ids[%u]", j);
		defaults += e->is_default;
	}
	snprintf(key, kl, "naf_key_center.naf_ids");
	if (n->n_ids > 1 && defaults != 1)
		return whatf(what, wl, "with %u NAF identities exactly one must be default: true "
				       "(got %u)",
			     n->n_ids, defaults);
	snprintf(key, kl, "naf_key_center.bsf.identity");
	if (n->bsf.identity[0] == '\0')
		return whatf(what, wl, "required key is missing (the BSF's Diameter identity)");
	if (check_diamid(n->bsf.identity, what, wl) < 0)
		return -1;
	if (strchr(n->bsf.identity, '.') == NULL)
		return whatf(what, wl, "must be an FQDN (its realm is the part after the first dot)");
	if (c->diameter.identity[0] && strcmp(n->bsf.identity, c->diameter.identity) == 0)
		return whatf(what, wl, "is keylined's own diameter.identity");
	snprintf(key, kl, "naf_key_center.bsf.address");
	if (n->bsf.address[0] == '\0')
		return whatf(what, wl, "required key is missing (the BSF's IPv4 or IPv6 address)");
	if (check_dia_listen(n->bsf.address, what, wl) < 0)
		return -1;
	snprintf(key, kl, "naf_key_center.port");
	if (c->metrics.enabled && c->metrics.port == n->port)
		return whatf(what, wl, "is the metrics port %u", n->port);
	if (c->diameter.port == n->port)
		return whatf(what, wl, "is the diameter.port %u", n->port);
	return 0;
}

/* An etcd endpoint: http:// or https://, then a host name, an IPv4 address or [IPv6], and an
 * optional :port (1..65535); nothing after it (the client adds /v3/...). */
static int
check_etcd_url(const char *val, char *what, size_t wl)
{
	char shown[64];
	const char *p = val, *host;
	size_t hl;

	sanitize(shown, sizeof(shown), val);
	if (strlen(val) > KL_CONFIG_CLUSTER_URL_MAX)
		return whatf(what, wl, "at most %d bytes (got %zu)", KL_CONFIG_CLUSTER_URL_MAX,
			     strlen(val));
	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else if (strncmp(p, "https://", 8) == 0)
		p += 8;
	else
		return whatf(what, wl, "must be an http:// or https:// URL (got '%s')", shown);
	host = p;
	if (*p == '[') {
		char a[64];
		struct in6_addr a6;
		const char *close = strchr(p, ']');

		if (!close || (size_t)(close - p - 1) >= sizeof(a))
			goto bad;
		memcpy(a, p + 1, (size_t)(close - p - 1));
		a[close - p - 1] = '\0';
		if (inet_pton(AF_INET6, a, &a6) != 1)
			goto bad;
		p = close + 1;
	} else {
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '.' || *p == '-')
			p++;
		hl = (size_t)(p - host);
		if (hl == 0 || host[0] == '.' || host[hl - 1] == '.' || host[0] == '-')
			goto bad;
	}
	if (*p == ':') {
		char *end;
		unsigned long port;

		if (p[1] < '0' || p[1] > '9')
			goto bad;
		errno = 0;
		port = strtoul(p + 1, &end, 10);
		if (errno || port == 0 || port > 65535)
			goto bad;
		p = end;
	}
	if (*p == '/' && p[1] == '\0')
		p++;
	if (*p != '\0')
		goto bad;
	return 0;
bad:
	return whatf(what, wl, "must be http(s)://HOST[:PORT] with a host name, an IPv4 address "
			       "or [IPv6], port 1..65535, no path (got '%s')",
		     shown);
}

/* cluster.* keys other than the numbers. */
static int
set_cluster(struct kl_config *c, const char *sub, const char *val, char *what, size_t wl)
{
	struct kl_config_cluster *k = &c->cluster;
	static const struct path_field files[] = {
		{ "ca_file", offsetof(struct kl_config_cluster, ca_file), true },
		{ "cert_file", offsetof(struct kl_config_cluster, cert_file), true },
		{ "key_file", offsetof(struct kl_config_cluster, key_file), true },
	};
	struct str_slots urls = { k->endpoints[0], sizeof(k->endpoints[0]), check_etcd_url };
	const struct list_spec url_list = { KL_CONFIG_CLUSTER_MAX_ENDPOINTS, "endpoints",
					    sizeof(k->endpoints), str_item, &urls };
	char shown[64];
	const char *rest;
	long idx;
	int r;

	sanitize(shown, sizeof(shown), val);
	if ((r = set_path_field(k, files, N_OF(files), sub, val, KL_CONFIG_STORE_PATH_MAX + 1,
				check_store_path, what, wl)) != 0)
		return r < 0 ? -1 : 0;
	if (strcmp(sub, "prefix") == 0) {
		size_t n = strlen(val);

		if (n == 0 || n > KL_CONFIG_CLUSTER_PREFIX_MAX || val[0] != '/' || val[n - 1] == '/')
			return whatf(what, wl, "must be 1..%d bytes starting with '/', without a "
					       "trailing '/' (got '%s')",
				     KL_CONFIG_CLUSTER_PREFIX_MAX, shown);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)val[i] <= 0x20 || (unsigned char)val[i] >= 0x7f)
				return whatf(what, wl, "must be printable ASCII without spaces "
						       "(got '%s')",
					     shown);
		snprintf(k->prefix, sizeof(k->prefix), "%s", val);
		return 0;
	}
	if (strcmp(sub, "node") == 0) {
		if (!port_name_ok(val) || strlen(val) > KL_CONFIG_CLUSTER_NODE_MAX)
			return whatf(what, wl, "must be 1..%d characters of [A-Za-z0-9_.-] (got '%s')",
				     KL_CONFIG_CLUSTER_NODE_MAX, shown);
		snprintf(k->node, sizeof(k->node), "%s", val);
		return 0;
	}
	if (strcmp(sub, "endpoints") == 0)
		return set_list(&url_list, &k->n_endpoints, val, what, wl);
	if ((idx = indexed(sub, "endpoints", &rest)) >= 0 && *rest == '\0')
		return set_list_entry(&url_list, &k->n_endpoints, idx, val, what, wl);
	return whatf(what, wl, "unknown key");
}

static int
check_cluster(const struct kl_config *c, char *key, size_t kl, char *what, size_t wl)
{
	const struct kl_config_cluster *k = &c->cluster;
	bool https = false;

	snprintf(key, kl, "cluster");
	if (!c->store.enabled)
		return whatf(what, wl, "needs the store: section (the node's replica of the "
				       "catalogue; its KEK file is the cluster's KEK)");
	snprintf(key, kl, "cluster.endpoints");
	if (k->n_endpoints == 0)
		return whatf(what, wl, "required key is missing (1..%d etcd client URLs)",
			     KL_CONFIG_CLUSTER_MAX_ENDPOINTS);
	if (k->n_endpoints > KL_CONFIG_CLUSTER_MAX_ENDPOINTS)
		return whatf(what, wl, "at most %d endpoints", KL_CONFIG_CLUSTER_MAX_ENDPOINTS);
	for (unsigned i = 0; i < k->n_endpoints; i++) {
		snprintf(key, kl, "cluster.endpoints[%u]", i);
		if (check_etcd_url(k->endpoints[i], what, wl) < 0)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(k->endpoints[i], k->endpoints[j]) == 0)
				return whatf(what, wl, "duplicate of cluster.endpoints[%u]", j);
		https |= strncmp(k->endpoints[i], "https://", 8) == 0;
	}
	snprintf(key, kl, "cluster.node");
	if (k->node[0] == '\0')
		return whatf(what, wl, "required key is missing (this node's name, unique in the "
				       "cluster: [A-Za-z0-9_.-])");
	snprintf(key, kl, "cluster.prefix");
	if (k->prefix[0] != '/' || k->prefix[strlen(k->prefix) - 1] == '/')
		return whatf(what, wl, "must start with '/' and not end with one");
	snprintf(key, kl, "cluster.key_file");
	if (k->cert_file[0] && !k->key_file[0])
		return whatf(what, wl, "required with cluster.cert_file (its private key)");
	snprintf(key, kl, "cluster.cert_file");
	if (k->key_file[0] && !k->cert_file[0])
		return whatf(what, wl, "required with cluster.key_file (the client certificate)");
	if ((k->cert_file[0] || k->ca_file[0]) && !https) {
		snprintf(key, kl, k->ca_file[0] ? "cluster.ca_file" : "cluster.cert_file");
		return whatf(what, wl, "TLS files, but no https:// endpoint");
	}
	snprintf(key, kl, "cluster.request_timeout_ms");
	if (k->request_timeout_ms < k->connect_timeout_ms)
		return whatf(what, wl, "is %u, below connect_timeout_ms %u", k->request_timeout_ms,
			     k->connect_timeout_ms);
	return 0;
}

/* msk_rotation[N].group|period_s|predelivery_s (rest: ".group" ...). */
static int
set_rotation(struct kl_config *c, long idx, const char *rest, const char *val, char *what,
	     size_t wl)
{
	static const struct num_field pf = { "period_s", offsetof(struct kl_config_rotation, period_s),
					     4, KL_CONFIG_ROTATE_MIN_PERIOD_S,
					     KL_CONFIG_ROTATE_MAX_PERIOD_S, false };
	static const struct num_field df = { "predelivery_s",
					     offsetof(struct kl_config_rotation, predelivery_s), 4,
					     0, KL_CONFIG_ROTATE_MAX_PERIOD_S - 1, false };
	struct kl_config_rotation *r;
	if (list_field(idx, c->n_msk_rotation, KL_CONFIG_MAX_ROTATIONS, "entries", rest, &rest, what,
		       wl) < 0)
		return -1;
	r = &c->msk_rotation[idx];
	if (idx == (long)c->n_msk_rotation)
		memset(r, 0, sizeof(*r));
	if (strcmp(rest, "group") == 0) {
		if (parse_group_ref(val, r->domain, &r->group, what, wl) < 0)
			return -1;
	} else if (strcmp(rest, "period_s") == 0) {
		if (set_num(r, &pf, val, what, wl) < 0)
			return -1;
	} else if (strcmp(rest, "predelivery_s") == 0) {
		if (set_num(r, &df, val, what, wl) < 0)
			return -1;
	} else {
		return whatf(what, wl, "unknown key");
	}
	if (idx == (long)c->n_msk_rotation)
		c->n_msk_rotation++;
	return 0;
}

/* "aa:bb:cc:dd:ee:ff": a unicast MAC, not all zero. */
static int
parse_mac(const char *val, uint8_t mac[6], char *what, size_t wl)
{
	char shown[64];
	unsigned b[6];
	int used = 0;

	sanitize(shown, sizeof(shown), val);
	if (strlen(val) != 17 ||
	    sscanf(val, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &used) != 6 ||
	    used != 17)
		return whatf(what, wl, "must be a MAC address aa:bb:cc:dd:ee:ff (got '%s')", shown);
	for (unsigned i = 0; i < 17; i++)
		if (i % 3 == 2 ? val[i] != ':'
			       : !((val[i] >= '0' && val[i] <= '9') ||
				   ((val[i] | 0x20) >= 'a' && (val[i] | 0x20) <= 'f')))
			return whatf(what, wl, "must be a MAC address aa:bb:cc:dd:ee:ff (got '%s')",
				     shown);
	if ((b[0] & 1) || (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0)
		return whatf(what, wl, "must be a unicast MAC address, not zero (got '%s')", shown);
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

/* A peer's identity: 1..128 bytes of printable UTF-8 (PROTOCOL.md section 1). */
static int
check_peer_id(const char *val, size_t n, char *what, size_t wl)
{
	if (n == 0 || n > KL_CONFIG_PEER_ID_MAX)
		return whatf(what, wl, "must be 1..%d bytes (got %zu)", KL_CONFIG_PEER_ID_MAX, n);
	if (!utf8_ok((const uint8_t *)val, n))
		return whatf(what, wl, "must be printable UTF-8");
	return 0;
}

/* A peer's address: a unicast IPv4 or IPv6 address (no port: that is peers[N].port). */
static int
parse_peer_addr(const char *val, struct kl_config_peer *p, char *what, size_t wl)
{
	char shown[64];
	struct in6_addr a6;
	struct in_addr a4;

	sanitize(shown, sizeof(shown), val);
	if (inet_pton(AF_INET, val, &a4) == 1) {
		if (parse_ipv4(val, &a4, what, wl) < 0)
			return -1;
		p->family = AF_INET;
		p->v4 = a4;
		memset(&p->v6, 0, sizeof(p->v6));
		return 0;
	}
	if (inet_pton(AF_INET6, val, &a6) == 1) {
		if (parse_ipv6(val, &a6, what, wl) < 0)
			return -1;
		if (IN6_IS_ADDR_V4MAPPED(&a6))
			return whatf(what, wl, "give an IPv4 peer as IPv4, not v4-mapped (got '%s')",
				     shown);
		p->family = AF_INET6;
		p->v6 = a6;
		memset(&p->v4, 0, sizeof(p->v4));
		return 0;
	}
	return whatf(what, wl, "must be an IPv4 or IPv6 address, without a port (got '%s')", shown);
}

/* peers[N].identity|address|port|mac (rest: ".identity" ...). */
static int
set_peer(struct kl_config *c, long idx, const char *rest, const char *val, char *what, size_t wl)
{
	static const struct num_field portf = { "port", offsetof(struct kl_config_peer, port), 2, 1,
						65535, false };
	struct kl_config_peer *p;

	if (list_field(idx, c->n_peers, KL_CONFIG_MAX_PEERS, "peers", rest, &rest, what, wl) < 0)
		return -1;
	p = &c->peers[idx];
	if (idx == (long)c->n_peers) {
		memset(p, 0, sizeof(*p));
		p->port = KL_CONFIG_DEFAULT_PEER_PORT;
	}
	if (strcmp(rest, "identity") == 0) {
		size_t n = strlen(val);

		if (check_peer_id(val, n, what, wl) < 0)
			return -1;
		memcpy(p->identity, val, n + 1);
		p->identity_len = (uint16_t)n;
	} else if (strcmp(rest, "address") == 0) {
		if (parse_peer_addr(val, p, what, wl) < 0)
			return -1;
	} else if (strcmp(rest, "port") == 0) {
		if (set_num(p, &portf, val, what, wl) < 0)
			return -1;
	} else if (strcmp(rest, "mac") == 0) {
		if (val[0] == '\0') {
			p->has_mac = false;
			memset(p->mac, 0, sizeof(p->mac));
		} else {
			if (parse_mac(val, p->mac, what, wl) < 0)
				return -1;
			p->has_mac = true;
		}
	} else {
		return whatf(what, wl, "unknown key");
	}
	if (idx == (long)c->n_peers)
		c->n_peers++;
	return 0;
}

static bool
port_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

static bool
devargs_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* "name[N]rest" -> N (and *rest); -1 when the key is not of that shape. */
static long
indexed(const char *key, const char *name, const char **rest)
{
	size_t nl = strlen(name);
	char *end;
	if (strncmp(key, name, nl) != 0 || key[nl] != '[' || key[nl + 1] < '0' || key[nl + 1] > '9')
		return -1;
	long i = strtol(key + nl + 1, &end, 10);
	if (*end != ']' || i > 1000)
		return -1;
	*rest = end + 1;
	return i;
}

static int
ipv4_item(void *ctx, unsigned i, const char *val, char *what, size_t wl)
{
	return parse_ipv4(val, (struct in_addr *)ctx + i, what, wl);
}

static int
ipv6_item(void *ctx, unsigned i, const char *val, char *what, size_t wl)
{
	return parse_ipv6(val, (struct in6_addr *)ctx + i, what, wl);
}

/* Set one key from its text form; on error, what says why (the caller names the key). */
static int
set_key(struct kl_config *c, const char *key, const char *val, char *what, size_t wl)
{
	const struct list_spec v4 = { KL_CONFIG_MAX_ADDRS, "addresses", 1024, ipv4_item, c->ipv4 };
	const struct list_spec v6 = { KL_CONFIG_MAX_ADDRS, "addresses", 1024, ipv6_item, c->ipv6 };
	const char *rest;
	long idx;

	for (size_t i = 0; i < N_NUM; i++)
		if (strcmp(key, num_fields[i].key) == 0) {
			if (set_num(c, &num_fields[i], val, what, wl) < 0)
				return -1;
			if (strncmp(key, "store.", 6) == 0)
				c->store.enabled = true;
			if (strncmp(key, "diameter.", 9) == 0)
				c->diameter.enabled = true;
			if (strncmp(key, "naf_key_center.", 15) == 0)
				c->naf.enabled = true;
			if (strncmp(key, "cluster.", 8) == 0)
				c->cluster.enabled = true;
			return 0;
		}

	if (strcmp(key, "server_identity") == 0) {
		size_t n = strlen(val);
		if (n == 0 || n > KL_CONFIG_IDENTITY_MAX)
			return whatf(what, wl, "must be 1..%d bytes (got %zu)", KL_CONFIG_IDENTITY_MAX, n);
		if (!utf8_ok((const uint8_t *)val, n))
			return whatf(what, wl, "must be printable UTF-8");
		memcpy(c->server_identity, val, n + 1);
		c->server_identity_len = (uint16_t)n;
		return 0;
	}
	if (strcmp(key, "admin_socket") == 0) {
		if (check_admin(val, what, wl) < 0)
			return -1;
		snprintf(c->admin_socket, sizeof(c->admin_socket), "%s", val);
		return 0;
	}
	if (strcmp(key, "store.path") == 0 || strcmp(key, "store.kek_file") == 0) {
		bool is_path = key[6] == 'p';
		if (check_store_path(val, what, wl) < 0)
			return -1;
		if (is_path)
			snprintf(c->store.path, sizeof(c->store.path), "%s", val);
		else
			snprintf(c->store.kek_file, sizeof(c->store.kek_file), "%s", val);
		c->store.enabled = true;
		return 0;
	}
	if (strncmp(key, "diameter.", 9) == 0) {
		if (set_diameter(c, key + 9, val, what, wl) < 0)
			return -1;
		c->diameter.enabled = true;
		return 0;
	}
	if (strncmp(key, "naf_key_center.", 15) == 0) {
		if (set_naf(c, key + 15, val, what, wl) < 0)
			return -1;
		c->naf.enabled = true;
		return 0;
	}
	if (strncmp(key, "cluster.", 8) == 0) {
		if (set_cluster(c, key + 8, val, what, wl) < 0)
			return -1;
		c->cluster.enabled = true;
		return 0;
	}
	if ((idx = indexed(key, "msk_rotation", &rest)) >= 0)
		return set_rotation(c, idx, rest, val, what, wl);
	if ((idx = indexed(key, "peers", &rest)) >= 0)
		return set_peer(c, idx, rest, val, what, wl);
	if (strcmp(key, "peers") == 0) {
		if (val[0] != '\0')
			return whatf(what, wl, "only the empty value (no peers) can be given for the "
					       "whole list; set peers[N].identity etc.");
		c->n_peers = 0;
		memset(c->peers, 0, sizeof(c->peers));
		return 0;
	}
	if (strcmp(key, "metrics") == 0)
		return parse_endpoint(val, &c->metrics, what, wl);
	if (strcmp(key, "log_level") == 0) {
		int v = 0;
		if (set_enum(&v, log_names, 4, val, what, wl) < 0)
			return -1;
		c->log_level = (enum kl_config_log_level)v;
		return 0;
	}
	if (strcmp(key, "crypto") == 0) {
		int v = 0;
		if (set_enum(&v, crypto_names, 2, val, what, wl) < 0)
			return -1;
		c->crypto = (enum kl_config_crypto)v;
		return 0;
	}
	if (strcmp(key, "io") == 0) {
		int v = 0;
		if (set_enum(&v, io_names, 2, val, what, wl) < 0)
			return -1;
		c->io = (enum kl_config_io)v;
		return 0;
	}
	if (strcmp(key, "ipv4") == 0)
		return set_list(&v4, &c->n_ipv4, val, what, wl);
	if (strcmp(key, "ipv6") == 0)
		return set_list(&v6, &c->n_ipv6, val, what, wl);
	if ((idx = indexed(key, "ipv4", &rest)) >= 0 && *rest == '\0')
		return set_list_entry(&v4, &c->n_ipv4, idx, val, what, wl);
	if ((idx = indexed(key, "ipv6", &rest)) >= 0 && *rest == '\0')
		return set_list_entry(&v6, &c->n_ipv6, idx, val, what, wl);
	if ((idx = indexed(key, "ports", &rest)) >= 0 && *rest == '.') {
		struct kl_config_port *p;
		if (list_field(idx, c->n_ports, KL_CONFIG_MAX_PORTS, "ports", rest, &rest, what,
			       wl) < 0)
			return -1;
		p = &c->ports[idx];
		if (strcmp(rest, "name") == 0) {
			if (!port_name_ok(val) || strlen(val) > KL_CONFIG_PORT_NAME_MAX)
				return whatf(what, wl, "must be 1..%d characters of [A-Za-z0-9_.-]",
					     KL_CONFIG_PORT_NAME_MAX);
			snprintf(p->name, sizeof(p->name), "%s", val);
		} else if (strcmp(rest, "devargs") == 0) {
			if (!devargs_ok(val) || strlen(val) > KL_CONFIG_DEVARGS_MAX)
				return whatf(what, wl,
					     "must be 1..%d printable characters without spaces",
					     KL_CONFIG_DEVARGS_MAX);
			snprintf(p->devargs, sizeof(p->devargs), "%s", val);
		} else if (strcmp(rest, "queues") == 0) {
			static const struct num_field qf = { "queues",
							     offsetof(struct kl_config_port, queues),
							     2, 1, KL_CONFIG_MAX_QUEUES, false };
			if (set_num(p, &qf, val, what, wl) < 0)
				return -1;
		} else {
			return whatf(what, wl, "unknown key");
		}
		if (idx == (long)c->n_ports) {
			c->n_ports++;
			if (p->queues == 0)
				p->queues = 1;
		}
		return 0;
	}
	return whatf(what, wl, "unknown key");
}

/* ---- validation ----------------------------------------------------------------------------- */

static int
check_diameter(const struct kl_config_diameter *d, char *key, size_t kl, char *what, size_t wl)
{
	/* what the freeDiameter file sets (with dia_paths but fd_conf) */
	static const struct path_field conf_keys[] = {
		{ "identity", offsetof(struct kl_config_diameter, identity), false },
		{ "realm", offsetof(struct kl_config_diameter, realm), false },
		{ "listen", offsetof(struct kl_config_diameter, listen), false },
	};

	if (d->fd_conf[0]) {
		snprintf(key, kl, "diameter.fd_conf");
		if (check_dia_path(d->fd_conf, what, wl) < 0)
			return -1;
		for (size_t i = 0; i < N_OF(conf_keys) + N_OF(dia_paths) - 1; i++) {
			const struct path_field *f = i < N_OF(conf_keys)
							     ? &conf_keys[i]
							     : &dia_paths[i - N_OF(conf_keys) + 1];

			if (((const char *)d + f->off)[0]) {
				snprintf(key, kl, "diameter.%s", f->name);
				return whatf(what, wl,
					     "not allowed with diameter.fd_conf (the freeDiameter "
					     "file sets it)");
			}
		}
	} else {
		snprintf(key, kl, "diameter.identity");
		if (d->identity[0] == '\0')
			return whatf(what, wl, "required key is missing (keylined's Diameter identity, "
					       "an FQDN its certificate names; or diameter.fd_conf)");
		if (check_diamid(d->identity, what, wl) < 0)
			return -1;
		snprintf(key, kl, "diameter.realm");
		if (d->realm[0] && check_diamid(d->realm, what, wl) < 0)
			return -1;
		if (d->realm[0] == '\0' && strchr(d->identity, '.') == NULL)
			return whatf(what, wl, "required when diameter.identity has no domain part");
		snprintf(key, kl, "diameter.listen");
		if (check_dia_listen(d->listen, what, wl) < 0)
			return -1;
		if (check_path_fields(d, dia_paths + 1, N_OF(dia_paths) - 1, "diameter", key, kl,
				      what, wl) < 0)
			return -1;
	}
	snprintf(key, kl, "diameter.allowed_peers");
	if (d->n_allowed_peers > KL_CONFIG_DIAMETER_MAX_PEERS)
		return whatf(what, wl, "at most %d peers", KL_CONFIG_DIAMETER_MAX_PEERS);
	for (unsigned i = 0; i < d->n_allowed_peers; i++) {
		snprintf(key, kl, "diameter.allowed_peers[%u]", i);
		if (check_diamid(d->allowed_peers[i], what, wl) < 0)
			return -1;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(d->allowed_peers[i], d->allowed_peers[j]) == 0)
				return whatf(what, wl, "duplicate of diameter.allowed_peers[%u]", j);
	}
	return 0;
}

/* peers: every entry complete, identities and address:port pairs unique, none of them ours, and
 * each of a family the server can send from. */
static int
check_peers(const struct kl_config *c, char *key, size_t kl, char *what, size_t wl)
{
	snprintf(key, kl, "peers");
	if (c->n_peers > KL_CONFIG_MAX_PEERS)
		return whatf(what, wl, "at most %d peers", KL_CONFIG_MAX_PEERS);
	for (unsigned i = 0; i < c->n_peers; i++) {
		const struct kl_config_peer *p = &c->peers[i];
		bool v4 = p->family == AF_INET, ours = false;

		snprintf(key, kl, "peers[%u].identity", i);
		if (p->identity_len == 0)
			return whatf(what, wl, "required key is missing (the peer server's identity, "
					       "1..%d bytes of UTF-8)",
				     KL_CONFIG_PEER_ID_MAX);
		if (strlen(p->identity) != p->identity_len ||
		    check_peer_id(p->identity, p->identity_len, what, wl) < 0)
			return whatf(what, wl, "must be 1..%d bytes of printable UTF-8",
				     KL_CONFIG_PEER_ID_MAX);
		if (p->identity_len == c->server_identity_len &&
		    memcmp(p->identity, c->server_identity, p->identity_len) == 0)
			return whatf(what, wl, "is this server's own server_identity");
		for (unsigned j = 0; j < i; j++)
			if (c->peers[j].identity_len == p->identity_len &&
			    memcmp(c->peers[j].identity, p->identity, p->identity_len) == 0)
				return whatf(what, wl, "duplicate of peers[%u].identity", j);
		snprintf(key, kl, "peers[%u].address", i);
		if (p->family != AF_INET && p->family != AF_INET6)
			return whatf(what, wl, "required key is missing (the IPv4 or IPv6 address "
					       "the peer sends from)");
		if (p->port == 0)
			return whatf(what, wl, "port must be 1..65535");
		for (unsigned j = 0; j < i; j++) {
			const struct kl_config_peer *q = &c->peers[j];

			if (q->family == p->family && q->port == p->port &&
			    (v4 ? q->v4.s_addr == p->v4.s_addr
				: memcmp(&q->v6, &p->v6, sizeof(p->v6)) == 0))
				return whatf(what, wl,
					     "peers[%u] has the same address and port: a datagram "
					     "would not tell them apart",
					     j);
		}
		if (c->n_ipv4 + c->n_ipv6 > 0 && (v4 ? c->n_ipv4 : c->n_ipv6) == 0)
			return whatf(what, wl,
				     "an IPv%c peer, but this server has no %s address to send from",
				     v4 ? '4' : '6', v4 ? "ipv4" : "ipv6");
		for (unsigned j = 0; v4 && j < c->n_ipv4; j++)
			ours |= c->ipv4[j].s_addr == p->v4.s_addr;
		for (unsigned j = 0; !v4 && j < c->n_ipv6; j++)
			ours |= memcmp(&c->ipv6[j], &p->v6, sizeof(p->v6)) == 0;
		if (ours && p->port == c->udp_port)
			return whatf(what, wl, "with port %u is this server's own address and udp_port",
				     p->port);
	}
	return 0;
}

static int
check(const struct kl_config *c, char *key, size_t kl, char *what, size_t wl)
{
	for (size_t i = 0; i < N_NUM; i++) {
		if (check_num(&num_fields[i], get_num(c, &num_fields[i]), what, wl) < 0) {
			snprintf(key, kl, "%s", num_fields[i].key);
			return -1;
		}
	}
	snprintf(key, kl, "server_identity");
	if (c->server_identity_len == 0)
		return whatf(what, wl, "required key is missing (1..%d bytes of UTF-8)",
			     KL_CONFIG_IDENTITY_MAX);
	if (c->server_identity_len > KL_CONFIG_IDENTITY_MAX ||
	    strlen(c->server_identity) != c->server_identity_len ||
	    !utf8_ok((const uint8_t *)c->server_identity, c->server_identity_len))
		return whatf(what, wl, "must be 1..%d bytes of printable UTF-8", KL_CONFIG_IDENTITY_MAX);

	snprintf(key, kl, "admin_socket");
	if (check_admin(c->admin_socket, what, wl) < 0)
		return -1;
	if (c->store.enabled) {
		snprintf(key, kl, "store.path");
		if (c->store.path[0] == '\0')
			return whatf(what, wl, "required key is missing (the store's directory)");
		if (check_store_path(c->store.path, what, wl) < 0)
			return -1;
		snprintf(key, kl, "store.kek_file");
		if (c->store.kek_file[0] == '\0')
			return whatf(what, wl, "required key is missing (the 0600 file holding the "
					       "store's key-encryption key)");
		if (check_store_path(c->store.kek_file, what, wl) < 0)
			return -1;
	}
	if (c->diameter.enabled && check_diameter(&c->diameter, key, kl, what, wl) < 0)
		return -1;
	if (c->naf.enabled && check_naf(c, key, kl, what, wl) < 0)
		return -1;
	if (c->cluster.enabled && check_cluster(c, key, kl, what, wl) < 0)
		return -1;
	snprintf(key, kl, "msk_rotation");
	if (c->n_msk_rotation > KL_CONFIG_MAX_ROTATIONS)
		return whatf(what, wl, "at most %d entries", KL_CONFIG_MAX_ROTATIONS);
	for (unsigned i = 0; i < c->n_msk_rotation; i++) {
		const struct kl_config_rotation *r = &c->msk_rotation[i];
		snprintf(key, kl, "msk_rotation[%u].period_s", i);
		if (r->period_s == 0)
			return whatf(what, wl, "required key is missing (%u..%u seconds)",
				     KL_CONFIG_ROTATE_MIN_PERIOD_S, KL_CONFIG_ROTATE_MAX_PERIOD_S);
		if (r->period_s < KL_CONFIG_ROTATE_MIN_PERIOD_S ||
		    r->period_s > KL_CONFIG_ROTATE_MAX_PERIOD_S)
			return whatf(what, wl, "must be %u..%u (got %u)", KL_CONFIG_ROTATE_MIN_PERIOD_S,
				     KL_CONFIG_ROTATE_MAX_PERIOD_S, r->period_s);
		snprintf(key, kl, "msk_rotation[%u].predelivery_s", i);
		if (r->predelivery_s >= r->period_s)
			return whatf(what, wl, "must be below period_s %u (got %u)", r->period_s,
				     r->predelivery_s);
		if (r->predelivery_s > c->predelivery_s)
			return whatf(what, wl,
				     "is %u but the top-level predelivery_s is %u: workers send the "
				     "next MSK only within that window",
				     r->predelivery_s, c->predelivery_s);
		snprintf(key, kl, "msk_rotation[%u].group", i);
		for (unsigned j = 0; j < i; j++)
			if (memcmp(c->msk_rotation[j].domain, r->domain, 3) == 0 &&
			    c->msk_rotation[j].group == r->group)
				return whatf(what, wl, "duplicate of msk_rotation[%u].group", j);
	}
	if (check_peers(c, key, kl, what, wl) < 0)
		return -1;
	snprintf(key, kl, "metrics");
	if (c->metrics.enabled && (c->metrics.port == 0 ||
				   (c->metrics.family != AF_INET && c->metrics.family != AF_INET6)))
		return whatf(what, wl, "invalid endpoint");
	snprintf(key, kl, "log_level");
	if ((unsigned)c->log_level > KL_CONFIG_LOG_DEBUG)
		return whatf(what, wl, "invalid level");
	snprintf(key, kl, "crypto");
	if ((unsigned)c->crypto > KL_CONFIG_CRYPTO_OPENSSL)
		return whatf(what, wl, "invalid backend");
	snprintf(key, kl, "io");
	if ((unsigned)c->io > KL_CONFIG_IO_SOCKET)
		return whatf(what, wl, "invalid I/O backend");

	snprintf(key, kl, "ipv4");
	if (c->n_ipv4 > KL_CONFIG_MAX_ADDRS)
		return whatf(what, wl, "at most %d addresses", KL_CONFIG_MAX_ADDRS);
	for (unsigned i = 0; i < c->n_ipv4; i++)
		for (unsigned j = 0; j < i; j++)
			if (c->ipv4[i].s_addr == c->ipv4[j].s_addr) {
				snprintf(key, kl, "ipv4[%u]", i);
				return whatf(what, wl, "duplicate of ipv4[%u]", j);
			}
	snprintf(key, kl, "ipv6");
	if (c->n_ipv6 > KL_CONFIG_MAX_ADDRS)
		return whatf(what, wl, "at most %d addresses", KL_CONFIG_MAX_ADDRS);
	for (unsigned i = 0; i < c->n_ipv6; i++)
		for (unsigned j = 0; j < i; j++)
			if (memcmp(&c->ipv6[i], &c->ipv6[j], sizeof(c->ipv6[i])) == 0) {
				snprintf(key, kl, "ipv6[%u]", i);
				return whatf(what, wl, "duplicate of ipv6[%u]", j);
			}

	snprintf(key, kl, "ports");
	if (c->n_ports > KL_CONFIG_MAX_PORTS)
		return whatf(what, wl, "at most %d ports", KL_CONFIG_MAX_PORTS);
	for (unsigned i = 0; i < c->n_ports; i++) {
		const struct kl_config_port *p = &c->ports[i];
		snprintf(key, kl, "ports[%u].name", i);
		if (p->name[0] == '\0')
			return whatf(what, wl, "required key is missing");
		if (!port_name_ok(p->name))
			return whatf(what, wl, "must be characters of [A-Za-z0-9_.-]");
		for (unsigned j = 0; j < i; j++)
			if (strcmp(p->name, c->ports[j].name) == 0)
				return whatf(what, wl, "duplicate of ports[%u].name", j);
		snprintf(key, kl, "ports[%u].devargs", i);
		if (p->devargs[0] == '\0')
			return whatf(what, wl, "required key is missing");
		if (!devargs_ok(p->devargs))
			return whatf(what, wl, "must be printable characters without spaces");
		snprintf(key, kl, "ports[%u].queues", i);
		if (p->queues < 1 || p->queues > KL_CONFIG_MAX_QUEUES)
			return whatf(what, wl, "must be 1..%d (got %u)", KL_CONFIG_MAX_QUEUES, p->queues);
		if (c->io == KL_CONFIG_IO_DPDK && p->queues != c->workers)
			return whatf(what, wl,
				     "is %u but workers is %u: each worker owns one RX/TX queue pair "
				     "on every port",
				     p->queues, c->workers);
	}
	if (c->io == KL_CONFIG_IO_DPDK) {
		snprintf(key, kl, "ports");
		if (c->n_ports == 0)
			return whatf(what, wl, "at least one port is required with io: dpdk");
		snprintf(key, kl, "ipv4");
		if (c->n_ipv4 + c->n_ipv6 == 0)
			return whatf(what, wl,
				     "at least one ipv4 or ipv6 address is required with io: dpdk");
	}
	return 0;
}

int
kl_config_validate(const struct kl_config *c, char *err, size_t errlen)
{
	char key[KEY_MAX], what[WHAT_MAX];
	if (check(c, key, sizeof(key), what, sizeof(what)) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", key, what);
	return -1;
}

void
kl_config_defaults(struct kl_config *c)
{
	memset(c, 0, sizeof(*c));
	c->udp_port = KL_CONFIG_DEFAULT_UDP_PORT;
	c->workers = 1;
	c->skew_s = 60;
	c->predelivery_s = 60;
	c->hm_session_s = 3600;
	c->retry_after_ms = 200;
	c->replay_cache = 4194304;
	c->rate_limit.per_source_pps = 0;
	c->rate_limit.burst = 64;
	c->rate_limit.table_size = 65536;
	c->table.ues = 1048576;
	c->table.groups = 1024;
	c->table.emses = 65536;
	c->table.imsis = 65536;
	c->table.appids = 65536;
	c->table.pairs = 64;
	c->table.dh_ues = 0; /* the table's default: max(ues / 16 + 1024, min(ues, 65536)) */
	c->table.e2m_ring = 4;
	c->store.map_size_mb = 1024;
	c->diameter.port = KL_CONFIG_DEFAULT_DIAMETER_PORT;
	c->diameter.vendor_id = KL_CONFIG_DEFAULT_DIAMETER_VENDOR;
	c->diameter.app_id = KL_CONFIG_DEFAULT_DIAMETER_APP;
	c->diameter.max_queue = KL_CONFIG_DEFAULT_DIAMETER_QUEUE;
	c->naf.port = KL_CONFIG_DEFAULT_NAF_PORT;
	c->naf.bsf.port = KL_CONFIG_DEFAULT_BSF_PORT;
	c->naf.bsf.timeout_ms = 2000;
	c->naf.rate_per_s = 50;
	c->naf.rate_burst = 20;
	c->naf.threads = 2;
	c->naf.max_body = 4096;
	c->naf.max_connections = 1024;
	c->naf.connection_timeout_s = 10;
	c->naf.max_keys = 1000000;
	snprintf(c->cluster.prefix, sizeof(c->cluster.prefix), "%s",
		 KL_CONFIG_DEFAULT_CLUSTER_PREFIX);
	c->cluster.lease_ttl_s = 10;
	c->cluster.connect_timeout_ms = 1000;
	c->cluster.request_timeout_ms = 5000;
	c->cluster.stale_after_ms = 5000;
	c->cluster.write_connections = 4;
	snprintf(c->admin_socket, sizeof(c->admin_socket), "%s", KL_CONFIG_DEFAULT_ADMIN_SOCKET);
	c->admin_max_clients = 16;
	c->admin_idle_timeout_s = 60;
	c->admin_line_timeout_s = 5;
	c->metrics_max_connections = 32;
	c->metrics_request_timeout_s = 5;
	c->rendezvous_s = 30;
	c->rendezvous_entries = 65536;
	c->dh_cache_s = 300;
	c->dh_cache_entries = 65536;
	c->s2s_pending = 4096;
	c->log_level = KL_CONFIG_LOG_INFO;
	c->crypto = KL_CONFIG_CRYPTO_IPSEC_MB;
	c->io = KL_CONFIG_IO_DPDK;
}

void
kl_config_free(struct kl_config *c)
{
	if (c != NULL)
		memset(c, 0, sizeof(*c));
}

int
kl_config_override(struct kl_config *c, const char *kv, char *err, size_t errlen)
{
	char key[KEY_MAX], what[WHAT_MAX], shown[KEY_MAX];
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		sanitize(shown, sizeof(shown), kv);
		snprintf(err, errlen, "command line: %s: override must be KEY=VALUE", shown);
		return -1;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (set_key(c, key, eq + 1, what, sizeof(what)) < 0) {
		sanitize(shown, sizeof(shown), key);
		snprintf(err, errlen, "command line: %s: %s", shown, what);
		return -1;
	}
	/* Cross-field rules wait for kl_config_validate(): overrides come one at a time
	 * ("workers=2" then "ports[0].queues=2") and may pass through an inconsistent state. */
	return 0;
}

/* ---- pass 1: key paths and lines (libyaml events) --------------------------------------- */

struct key_line {
	char path[KEY_MAX];
	unsigned line;
};

struct keymap {
	struct key_line *v;
	unsigned n, cap;
	unsigned first_line; /* line of the top-level mapping */
};

static void
keymap_free(struct keymap *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static const struct key_line *
keymap_find(const struct keymap *m, const char *path)
{
	for (unsigned i = 0; i < m->n; i++)
		if (strcmp(m->v[i].path, path) == 0)
			return &m->v[i];
	return NULL;
}

/* Line of path, else of its closest recorded parent ("ports[1].name" -> "ports[1]" -> "ports"). */
static unsigned
keymap_line(const struct keymap *m, const char *path)
{
	char p[KEY_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		const struct key_line *k = keymap_find(m, p);
		if (k != NULL)
			return k->line;
		char *cut = strrchr(p, '.');
		char *br = strrchr(p, '[');
		if (br != NULL && (cut == NULL || br > cut))
			cut = br;
		if (cut == NULL)
			break;
		*cut = '\0';
	}
	return m->first_line ? m->first_line : 1;
}

static bool
keymap_present(const struct keymap *m, const char *path)
{
	return keymap_find(m, path) != NULL;
}

static const char *const top_keys[] = { "ports", "ipv4", "ipv6", "udp_port", "workers",
	"server_identity", "skew_s", "predelivery_s", "hm_session_s", "retry_after_ms", "replay_cache", "rate_limit",
	"table", "store", "diameter", "msk_rotation", "admin_socket", "metrics", "log_level", "crypto", "io",
	"admin_max_clients", "admin_idle_timeout_s", "admin_line_timeout_s", "metrics_max_connections",
	"metrics_request_timeout_s", "peers", "rendezvous_s", "rendezvous_entries", "dh_cache_s",
	"dh_cache_entries", "s2s_pending", "naf_key_center", "cluster", NULL };
static const char *const cluster_keys[] = { "endpoints", "ca_file", "cert_file", "key_file",
	"prefix", "node", "lease_ttl_s", "connect_timeout_ms", "request_timeout_ms",
	"stale_after_ms", "write_connections", NULL };
static const char *const naf_keys[] = { "listen", "port", "tls_cert", "tls_key", "device_ca",
	"operator_ca", "crl", "naf_ids", "bsf", "rate_limit", "threads", "max_body",
	"max_connections", "connection_timeout_s", "max_keys", "cpus", NULL };
static const char *const naf_id_keys[] = { "fqdn", "ua_protocol", "hex", "max_lifetime_s",
	"default", NULL };
static const char *const naf_bsf_keys[] = { "identity", "address", "port", "timeout_ms", NULL };
static const char *const naf_rl_keys[] = { "per_cert_rps", "burst", NULL };
static const char *const dia_keys[] = { "fd_conf", "identity", "realm", "listen", "port",
	"tls_cert", "tls_key", "tls_ca", "tls_crl", "vendor_id", "app_id", "allowed_peers",
	"max_queue", NULL };
static const char *const rot_keys[] = { "group", "period_s", "predelivery_s", NULL };
static const char *const rl_keys[] = { "per_source_pps", "burst", "table_size", NULL };
static const char *const table_keys[] = { "ues", "groups", "emses", "imsis", "appids", "e2m_ring",
	"pairs", "dh_ues", NULL };
static const char *const store_keys[] = { "path", "kek_file", "map_size_mb", NULL };
static const char *const port_keys[] = { "name", "devargs", "queues", NULL };
static const char *const peer_keys[] = { "identity", "address", "port", "mac", NULL };

static bool
in_list(const char *const *l, const char *k)
{
	for (; *l; l++)
		if (strcmp(*l, k) == 0)
			return true;
	return false;
}

/* Keys allowed in the mapping at path; NULL = not a mapping of ours (libcyaml reports the type). */
static const char *const *
allowed_keys(const char *path, unsigned depth)
{
	if (depth == 1)
		return top_keys;
	if (strcmp(path, "rate_limit") == 0)
		return rl_keys;
	if (strcmp(path, "table") == 0)
		return table_keys;
	if (strcmp(path, "store") == 0)
		return store_keys;
	if (strcmp(path, "diameter") == 0)
		return dia_keys;
	if (strcmp(path, "naf_key_center") == 0)
		return naf_keys;
	if (strcmp(path, "cluster") == 0)
		return cluster_keys;
	if (strcmp(path, "naf_key_center.bsf") == 0)
		return naf_bsf_keys;
	if (strcmp(path, "naf_key_center.rate_limit") == 0)
		return naf_rl_keys;
	const char *rest;
	if (indexed(path, "naf_key_center.naf_ids", &rest) >= 0 && *rest == '\0')
		return naf_id_keys;
	if (indexed(path, "ports", &rest) >= 0 && *rest == '\0')
		return port_keys;
	if (indexed(path, "msk_rotation", &rest) >= 0 && *rest == '\0')
		return rot_keys;
	if (indexed(path, "peers", &rest) >= 0 && *rest == '\0')
		return peer_keys;
	return NULL;
}

struct frame {
	bool is_map;
	bool want_key;
	unsigned idx;
	char path[KEY_MAX]; /* path of this node */
	char key[KEY_MAX];  /* map: path of the value about to come */
};

struct perr {
	char key[KEY_MAX];
	char what[WHAT_MAX];
	unsigned line;
};

static int
perr_set(struct perr *e, unsigned line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int
perr_set(struct perr *e, unsigned line, const char *key, const char *fmt, ...)
{
	va_list ap;
	e->line = line;
	sanitize(e->key, sizeof(e->key), key);
	va_start(ap, fmt);
	vsnprintf(e->what, sizeof(e->what), fmt, ap);
	va_end(ap);
	return -1;
}

static int
keymap_add(struct keymap *m, const char *path, unsigned line, struct perr *e)
{
	if (keymap_find(m, path) != NULL)
		return perr_set(e, line, path, "duplicate key (first at line %u)",
				keymap_find(m, path)->line);
	if (m->n == MAX_KEYS)
		return perr_set(e, line, path, "too many keys (at most %d)", MAX_KEYS);
	if (m->n == m->cap) {
		unsigned cap = m->cap ? m->cap * 2 : 64;
		struct key_line *v = realloc(m->v, cap * sizeof(*v));
		if (v == NULL)
			return perr_set(e, line, path, "out of memory");
		m->v = v;
		m->cap = cap;
	}
	snprintf(m->v[m->n].path, KEY_MAX, "%s", path);
	m->v[m->n].line = line;
	m->n++;
	return 0;
}

/* Key paths are for messages and duplicate checks; a (deeply nested) long one is truncated. */
static void
pathf(char *out, size_t ol, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
pathf(char *out, size_t ol, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, ol, fmt, ap);
	va_end(ap);
}

/* The path of the node starting now in the parent frame f (a map value or a sequence entry). */
static void
child_path(struct frame *f, char *out, size_t ol)
{
	if (f->is_map) {
		snprintf(out, ol, "%s", f->key);
		f->want_key = true;
	} else {
		pathf(out, ol, "%s[%u]", f->path, f->idx);
		f->idx++;
	}
}

static int
scan_keys(const uint8_t *buf, size_t len, struct keymap *m, struct perr *e)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct frame *st;
	unsigned depth = 0, docs = 0;
	int rc = -1;
	bool done = false;
	const char *last_key = "(document)";

	st = calloc(MAX_DEPTH + 1, sizeof(*st));
	if (st == NULL)
		return perr_set(e, 1, "(document)", "out of memory");
	if (!yaml_parser_initialize(&parser)) {
		free(st);
		return perr_set(e, 1, "(document)", "out of memory");
	}
	yaml_parser_set_input_string(&parser, buf, len);

	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			unsigned line = (unsigned)parser.problem_mark.line + 1;
			if (parser.error == YAML_READER_ERROR)
				line = 1 + (unsigned)parser.mark.line;
			perr_set(e, line, last_key, "YAML syntax error: %s%s%s",
				 parser.problem ? parser.problem : "unknown",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		unsigned line = (unsigned)ev.start_mark.line + 1;
		struct frame *top = depth ? &st[depth - 1] : NULL;
		char path[KEY_MAX];

		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				perr_set(e, line, "(document)", "only one YAML document is allowed");
				goto fail_ev;
			}
			break;
		case YAML_ALIAS_EVENT:
			perr_set(e, line, top && top->is_map && !top->want_key ? top->key : last_key,
				 "YAML aliases are not allowed");
			goto fail_ev;
		case YAML_SCALAR_EVENT:
			if (top == NULL) {
				if (ev.data.scalar.length == 0 && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
					break; /* empty document: reported as a missing key later */
				perr_set(e, line, "(top level)",
					 "the document must be a mapping of keys, not a scalar");
				goto fail_ev;
			}
			if (top->is_map && top->want_key) {
				const char *k = (const char *)ev.data.scalar.value;
				const char *const *allowed = allowed_keys(top->path, depth);
				if (ev.data.scalar.length >= 64 || strlen(k) != ev.data.scalar.length) {
					perr_set(e, line, k, "unknown key");
					goto fail_ev;
				}
				if (depth == 1)
					snprintf(top->key, KEY_MAX, "%s", k);
				else
					pathf(top->key, KEY_MAX, "%s.%s", top->path, k);
				last_key = top->key;
				if (allowed != NULL && !in_list(allowed, k)) {
					perr_set(e, line, top->key, "unknown key");
					goto fail_ev;
				}
				if (keymap_add(m, top->key, line, e) < 0)
					goto fail_ev;
				top->want_key = false;
			} else {
				child_path(top, path, sizeof(path));
				if (!top->is_map && keymap_add(m, path, line, e) < 0)
					goto fail_ev;
				/* a "\0" escape would silently cut the C string libcyaml hands over */
				if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length) {
					perr_set(e, line, top->is_map ? top->key : path,
						 "must not contain a NUL character");
					goto fail_ev;
				}
			}
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (top == NULL) {
				if (ev.type != YAML_MAPPING_START_EVENT) {
					perr_set(e, line, "(top level)",
						 "the document must be a mapping of keys, not a list");
					goto fail_ev;
				}
				m->first_line = line;
				path[0] = '\0';
			} else if (top->is_map && top->want_key) {
				perr_set(e, line, top->path[0] ? top->path : "(top level)",
					 "keys must be plain strings");
				goto fail_ev;
			} else {
				child_path(top, path, sizeof(path));
				if (!top->is_map && keymap_add(m, path, line, e) < 0)
					goto fail_ev;
			}
			if (depth == MAX_DEPTH) {
				perr_set(e, line, path, "nested too deeply");
				goto fail_ev;
			}
			st[depth].is_map = ev.type == YAML_MAPPING_START_EVENT;
			st[depth].want_key = true;
			st[depth].idx = 0;
			snprintf(st[depth].path, KEY_MAX, "%s", path);
			st[depth].key[0] = '\0';
			depth++;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		continue;
fail_ev:
		yaml_event_delete(&ev);
		goto out;
	}
	rc = 0;
out:
	yaml_parser_delete(&parser);
	free(st);
	return rc;
}

/* ---- pass 2: libcyaml schema --------------------------------------------------------------- */

/* Numbers are read as strings: libcyaml's INT accepts "1.5"; set_num() is strict decimal. */
struct raw_port {
	char *name;
	char *devargs;
	char *queues;
};

struct raw_rl {
	char *per_source_pps;
	char *burst;
	char *table_size;
};

struct raw_table {
	char *ues, *groups, *emses, *imsis, *appids, *e2m_ring, *pairs, *dh_ues;
};

struct raw_store {
	char *path, *kek_file, *map_size_mb;
};

struct raw_dia {
	char *fd_conf, *identity, *realm, *listen, *port, *tls_cert, *tls_key, *tls_ca, *tls_crl;
	char *vendor_id, *app_id, *max_queue;
	char **allowed_peers;
	unsigned allowed_peers_count;
};

struct raw_rot {
	char *group, *period_s, *predelivery_s;
};

struct raw_naf_id {
	char *fqdn, *ua_protocol, *hex, *max_lifetime_s, *is_default;
};

struct raw_naf_bsf {
	char *identity, *address, *port, *timeout_ms;
};

struct raw_naf_rl {
	char *per_cert_rps, *burst;
};

struct raw_naf {
	char *listen, *port, *tls_cert, *tls_key, *device_ca, *operator_ca, *crl, *threads;
	char *max_body, *max_connections, *connection_timeout_s, *max_keys, *cpus;
	struct raw_naf_id *naf_ids;
	unsigned naf_ids_count;
	struct raw_naf_bsf *bsf;
	struct raw_naf_rl *rate_limit;
};

struct raw_peer {
	char *identity, *address, *port, *mac;
};

struct raw_cluster {
	char **endpoints;
	unsigned endpoints_count;
	char *ca_file, *cert_file, *key_file, *prefix, *node, *lease_ttl_s, *connect_timeout_ms;
	char *request_timeout_ms, *stale_after_ms, *write_connections;
};

struct raw_cfg {
	struct raw_port *ports;
	unsigned ports_count;
	char **ipv4;
	unsigned ipv4_count;
	char **ipv6;
	unsigned ipv6_count;
	char *udp_port;
	char *workers;
	char *server_identity;
	char *skew_s;
	char *predelivery_s;
	char *hm_session_s;
	char *retry_after_ms;
	char *replay_cache;
	struct raw_rl *rate_limit;
	struct raw_table *table;
	struct raw_store *store;
	struct raw_dia *diameter;
	struct raw_naf *naf_key_center;
	struct raw_cluster *cluster;
	struct raw_rot *msk_rotation;
	unsigned msk_rotation_count;
	struct raw_peer *peers;
	unsigned peers_count;
	char *rendezvous_s, *rendezvous_entries, *dh_cache_s, *dh_cache_entries, *s2s_pending;
	char *admin_socket;
	char *metrics;
	char *admin_max_clients;
	char *admin_idle_timeout_s;
	char *admin_line_timeout_s;
	char *metrics_max_connections;
	char *metrics_request_timeout_s;
	char *log_level;
	char *crypto;
	char *io;
};

/* Generous limits here: the setters give the precise message (with the key's line). */
#define STR_MAX 4096
#define SEQ_MAX 1024
#define OPT CYAML_FLAG_OPTIONAL
#define OPT_STR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER_NULL_STR)
/* An optional string field named as its member. */
#define OPT_STR_FIELD(st, n) CYAML_FIELD_STRING_PTR(#n, OPT_STR, struct st, n, 0, STR_MAX)

static const cyaml_schema_field_t port_fields[] = {
	OPT_STR_FIELD(raw_port, name),
	OPT_STR_FIELD(raw_port, devargs),
	OPT_STR_FIELD(raw_port, queues),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t port_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_port, port_fields),
};
static const cyaml_schema_value_t str_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, STR_MAX),
};
static const cyaml_schema_field_t rl_fields[] = {
	OPT_STR_FIELD(raw_rl, per_source_pps),
	OPT_STR_FIELD(raw_rl, burst),
	OPT_STR_FIELD(raw_rl, table_size),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t table_fields[] = {
	OPT_STR_FIELD(raw_table, ues),
	OPT_STR_FIELD(raw_table, groups),
	OPT_STR_FIELD(raw_table, emses),
	OPT_STR_FIELD(raw_table, imsis),
	OPT_STR_FIELD(raw_table, appids),
	OPT_STR_FIELD(raw_table, e2m_ring),
	OPT_STR_FIELD(raw_table, pairs),
	OPT_STR_FIELD(raw_table, dh_ues),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t store_fields[] = {
	OPT_STR_FIELD(raw_store, path),
	OPT_STR_FIELD(raw_store, kek_file),
	OPT_STR_FIELD(raw_store, map_size_mb),
	CYAML_FIELD_END
};
#define DIA_STR(n) OPT_STR_FIELD(raw_dia, n)
static const cyaml_schema_field_t dia_fields[] = {
	DIA_STR(fd_conf), DIA_STR(identity), DIA_STR(realm), DIA_STR(listen), DIA_STR(port),
	DIA_STR(tls_cert), DIA_STR(tls_key), DIA_STR(tls_ca), DIA_STR(tls_crl), DIA_STR(vendor_id),
	DIA_STR(app_id), DIA_STR(max_queue),
	CYAML_FIELD_SEQUENCE("allowed_peers", OPT | CYAML_FLAG_POINTER, struct raw_dia,
			     allowed_peers, &str_schema, 0, SEQ_MAX),
	CYAML_FIELD_END
};
#undef DIA_STR
static const cyaml_schema_field_t naf_id_fields[] = {
	OPT_STR_FIELD(raw_naf_id, fqdn),
	OPT_STR_FIELD(raw_naf_id, ua_protocol),
	OPT_STR_FIELD(raw_naf_id, hex),
	OPT_STR_FIELD(raw_naf_id, max_lifetime_s),
	CYAML_FIELD_STRING_PTR("default", OPT_STR, struct raw_naf_id, is_default, 0, STR_MAX),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t naf_id_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_naf_id, naf_id_fields),
};
static const cyaml_schema_field_t naf_bsf_fields[] = {
	OPT_STR_FIELD(raw_naf_bsf, identity),
	OPT_STR_FIELD(raw_naf_bsf, address),
	OPT_STR_FIELD(raw_naf_bsf, port),
	OPT_STR_FIELD(raw_naf_bsf, timeout_ms),
	CYAML_FIELD_END
};
static const cyaml_schema_field_t naf_rl_fields[] = {
	OPT_STR_FIELD(raw_naf_rl, per_cert_rps),
	OPT_STR_FIELD(raw_naf_rl, burst),
	CYAML_FIELD_END
};
#define NAF_STR(n) OPT_STR_FIELD(raw_naf, n)
static const cyaml_schema_field_t naf_fields[] = {
	NAF_STR(listen), NAF_STR(port), NAF_STR(tls_cert), NAF_STR(tls_key), NAF_STR(device_ca),
	NAF_STR(operator_ca), NAF_STR(crl), NAF_STR(threads), NAF_STR(max_body),
	NAF_STR(max_connections), NAF_STR(connection_timeout_s), NAF_STR(max_keys), NAF_STR(cpus),
	CYAML_FIELD_SEQUENCE("naf_ids", OPT | CYAML_FLAG_POINTER, struct raw_naf, naf_ids,
			     &naf_id_schema, 0, SEQ_MAX),
	CYAML_FIELD_MAPPING_PTR("bsf", OPT_STR, struct raw_naf, bsf, naf_bsf_fields),
	CYAML_FIELD_MAPPING_PTR("rate_limit", OPT_STR, struct raw_naf, rate_limit, naf_rl_fields),
	CYAML_FIELD_END
};
#undef NAF_STR
#define CL_STR(n) OPT_STR_FIELD(raw_cluster, n)
static const cyaml_schema_field_t cluster_fields[] = {
	CYAML_FIELD_SEQUENCE("endpoints", OPT | CYAML_FLAG_POINTER, struct raw_cluster, endpoints,
			     &str_schema, 0, SEQ_MAX),
	CL_STR(ca_file), CL_STR(cert_file), CL_STR(key_file), CL_STR(prefix), CL_STR(node),
	CL_STR(lease_ttl_s), CL_STR(connect_timeout_ms), CL_STR(request_timeout_ms),
	CL_STR(stale_after_ms), CL_STR(write_connections),
	CYAML_FIELD_END
};
#undef CL_STR
static const cyaml_schema_field_t rot_fields[] = {
	OPT_STR_FIELD(raw_rot, group),
	OPT_STR_FIELD(raw_rot, period_s),
	OPT_STR_FIELD(raw_rot, predelivery_s),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t rot_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_rot, rot_fields),
};
static const cyaml_schema_field_t peer_fields[] = {
	OPT_STR_FIELD(raw_peer, identity),
	OPT_STR_FIELD(raw_peer, address),
	OPT_STR_FIELD(raw_peer, port),
	OPT_STR_FIELD(raw_peer, mac),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t peer_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_peer, peer_fields),
};
static const cyaml_schema_field_t top_fields[] = {
	CYAML_FIELD_SEQUENCE("ports", OPT | CYAML_FLAG_POINTER, struct raw_cfg, ports, &port_schema,
			     0, SEQ_MAX),
	CYAML_FIELD_SEQUENCE("ipv4", OPT | CYAML_FLAG_POINTER, struct raw_cfg, ipv4, &str_schema, 0,
			     SEQ_MAX),
	CYAML_FIELD_SEQUENCE("ipv6", OPT | CYAML_FLAG_POINTER, struct raw_cfg, ipv6, &str_schema, 0,
			     SEQ_MAX),
	OPT_STR_FIELD(raw_cfg, udp_port),
	OPT_STR_FIELD(raw_cfg, workers),
	OPT_STR_FIELD(raw_cfg, server_identity),
	OPT_STR_FIELD(raw_cfg, skew_s),
	OPT_STR_FIELD(raw_cfg, predelivery_s),
	OPT_STR_FIELD(raw_cfg, hm_session_s),
	OPT_STR_FIELD(raw_cfg, retry_after_ms),
	OPT_STR_FIELD(raw_cfg, replay_cache),
	CYAML_FIELD_MAPPING_PTR("rate_limit", OPT_STR, struct raw_cfg, rate_limit, rl_fields),
	CYAML_FIELD_MAPPING_PTR("table", OPT_STR, struct raw_cfg, table, table_fields),
	CYAML_FIELD_MAPPING_PTR("store", OPT_STR, struct raw_cfg, store, store_fields),
	CYAML_FIELD_MAPPING_PTR("diameter", OPT_STR, struct raw_cfg, diameter, dia_fields),
	CYAML_FIELD_MAPPING_PTR("naf_key_center", OPT_STR, struct raw_cfg, naf_key_center,
				naf_fields),
	CYAML_FIELD_MAPPING_PTR("cluster", OPT_STR, struct raw_cfg, cluster, cluster_fields),
	CYAML_FIELD_SEQUENCE("msk_rotation", OPT | CYAML_FLAG_POINTER, struct raw_cfg, msk_rotation,
			     &rot_schema, 0, SEQ_MAX),
	CYAML_FIELD_SEQUENCE("peers", OPT | CYAML_FLAG_POINTER, struct raw_cfg, peers, &peer_schema,
			     0, SEQ_MAX),
	OPT_STR_FIELD(raw_cfg, rendezvous_s),
	OPT_STR_FIELD(raw_cfg, rendezvous_entries),
	OPT_STR_FIELD(raw_cfg, dh_cache_s),
	OPT_STR_FIELD(raw_cfg, dh_cache_entries),
	OPT_STR_FIELD(raw_cfg, s2s_pending),
	OPT_STR_FIELD(raw_cfg, admin_socket),
	OPT_STR_FIELD(raw_cfg, metrics),
	OPT_STR_FIELD(raw_cfg, admin_max_clients),
	OPT_STR_FIELD(raw_cfg, admin_idle_timeout_s),
	OPT_STR_FIELD(raw_cfg, admin_line_timeout_s),
	OPT_STR_FIELD(raw_cfg, metrics_max_connections),
	OPT_STR_FIELD(raw_cfg, metrics_request_timeout_s),
	OPT_STR_FIELD(raw_cfg, log_level),
	OPT_STR_FIELD(raw_cfg, crypto),
	OPT_STR_FIELD(raw_cfg, io),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t top_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_cfg, top_fields),
};

/* libcyaml's error log: the first message, then a backtrace innermost first. */
struct cylog {
	char msg[WHAT_MAX];
	char path[KEY_MAX];
	unsigned line;
	bool in_backtrace;
	bool got_frame;
	char frames[MAX_DEPTH][KEY_MAX];
	unsigned n_frames;
	unsigned lines[MAX_DEPTH];
};

static void
cy_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cylog *l = ctx;
	char text[512];
	char name[KEY_MAX];
	unsigned line = 0, col = 0;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(text, sizeof(text), fmt, args);
	text[strcspn(text, "\n")] = '\0';
	if (strncmp(text, "Load: Backtrace:", 16) == 0) {
		l->in_backtrace = true;
		return;
	}
	if (!l->in_backtrace) {
		if (l->msg[0] == '\0')
			sanitize(l->msg, sizeof(l->msg),
				 strncmp(text, "Load: ", 6) == 0 ? text + 6 : text);
		return;
	}
	if (l->n_frames == MAX_DEPTH)
		return;
	/* "  in mapping field 'x' (line: 3, column: 9)", "  in sequence entry '2' (line: ...)" */
	if (sscanf(text, "  in mapping field '%127[^']' (line: %u, column: %u)", name, &line, &col) ==
	    3) {
		snprintf(l->frames[l->n_frames], KEY_MAX, "%s", name);
	} else if (sscanf(text, "  in sequence entry '%127[^']' (line: %u, column: %u)", name, &line,
			  &col) == 3) {
		unsigned long n = strtoul(name, NULL, 10);
		snprintf(l->frames[l->n_frames], KEY_MAX, "[%lu]", n ? n - 1 : 0);
	} else if (sscanf(text, "  in mapping (line: %u, column: %u)", &line, &col) == 2) {
		l->frames[l->n_frames][0] = '\0';
	} else {
		return;
	}
	l->lines[l->n_frames++] = line;
}

/* libcyaml's type errors in the config's terms (everything else is passed through). */
static const char *
cy_explain(const char *msg)
{
	if (strstr(msg, "Expecting STRING") != NULL) {
		if (strstr(msg, "SEQUENCE_START") != NULL)
			return "must be a single value, not a list";
		if (strstr(msg, "MAPPING_START") != NULL)
			return "must be a single value, not a mapping";
	}
	if (strstr(msg, "Expecting MAPPING") != NULL)
		return "must be a mapping of keys";
	if (strstr(msg, "Expecting SEQUENCE") != NULL)
		return "must be a list";
	return msg;
}

/* Innermost-first frames -> "ports[1].queues", plus the innermost line. */
static void
cylog_path(struct cylog *l)
{
	l->path[0] = '\0';
	l->line = l->n_frames ? l->lines[0] : 0;
	for (unsigned i = l->n_frames; i-- > 0;) {
		const char *f = l->frames[i];
		size_t n = strlen(l->path);
		if (f[0] == '\0')
			continue;
		if (f[0] == '[' || n == 0)
			snprintf(l->path + n, sizeof(l->path) - n, "%s", f);
		else
			snprintf(l->path + n, sizeof(l->path) - n, ".%s", f);
	}
}

/* ---- pass 3: values ------------------------------------------------------------------------- */

static int
apply_str(struct kl_config *c, const struct keymap *m, const char *key, const char *val,
	  struct perr *e)
{
	char what[WHAT_MAX];
	if (!keymap_present(m, key))
		return 0;
	if (set_key(c, key, val ? val : "", what, sizeof(what)) < 0)
		return perr_set(e, keymap_line(m, key), key, "%s", what);
	return 0;
}

/* Scalar keys of a section with their raw values (NULL: absent). */
struct key_val {
	const char *key;
	const char *val;
};

static int
apply_list(struct kl_config *c, const struct keymap *m, const struct key_val *kv, size_t n,
	   struct perr *e)
{
	for (size_t i = 0; i < n; i++)
		if (apply_str(c, m, kv[i].key, kv[i].val, e) < 0)
			return -1;
	return 0;
}

/* A list of scalars from the file (ipv4, diameter.allowed_peers, ...): LIST[i] for each. */
static int
apply_strs(struct kl_config *c, const struct keymap *m, const char *list, char *const *vals,
	   unsigned n, unsigned max, const char *entries, struct perr *e)
{
	char key[KEY_MAX];

	if (n > max)
		return perr_set(e, keymap_line(m, list), list, "at most %u %s (got %u)", max, entries,
				n);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s[%u]", list, i);
		if (apply_str(c, m, key, vals[i], e) < 0)
			return -1;
	}
	return 0;
}

/* The naf_key_center: section (its presence turns the Key Center on; check() wants the rest). */
static int
apply_naf(struct kl_config *c, const struct raw_naf *n, const struct keymap *m, struct perr *e)
{
	char key[KEY_MAX];

	if (keymap_present(m, "naf_key_center"))
		c->naf.enabled = true;
	if (n == NULL)
		return 0;
	const struct key_val kv[] = {
		{ "naf_key_center.listen", n->listen },
		{ "naf_key_center.port", n->port },
		{ "naf_key_center.tls_cert", n->tls_cert },
		{ "naf_key_center.tls_key", n->tls_key },
		{ "naf_key_center.device_ca", n->device_ca },
		{ "naf_key_center.operator_ca", n->operator_ca },
		{ "naf_key_center.crl", n->crl },
		{ "naf_key_center.threads", n->threads },
		{ "naf_key_center.max_body", n->max_body },
		{ "naf_key_center.max_connections", n->max_connections },
		{ "naf_key_center.connection_timeout_s", n->connection_timeout_s },
		{ "naf_key_center.max_keys", n->max_keys },
		{ "naf_key_center.cpus", n->cpus },
		{ "naf_key_center.bsf.identity", n->bsf ? n->bsf->identity : NULL },
		{ "naf_key_center.bsf.address", n->bsf ? n->bsf->address : NULL },
		{ "naf_key_center.bsf.port", n->bsf ? n->bsf->port : NULL },
		{ "naf_key_center.bsf.timeout_ms", n->bsf ? n->bsf->timeout_ms : NULL },
		{ "naf_key_center.rate_limit.per_cert_rps",
		  n->rate_limit ? n->rate_limit->per_cert_rps : NULL },
		{ "naf_key_center.rate_limit.burst", n->rate_limit ? n->rate_limit->burst : NULL },
	};
	if (apply_list(c, m, kv, sizeof(kv) / sizeof(kv[0]), e) < 0)
		return -1;
	if (n->naf_ids_count > KL_CONFIG_NAF_MAX_IDS)
		return perr_set(e, keymap_line(m, "naf_key_center.naf_ids"), "naf_key_center.naf_ids",
				"at most %d entries (got %u)", KL_CONFIG_NAF_MAX_IDS,
				n->naf_ids_count);
	for (unsigned i = 0; i < n->naf_ids_count; i++) {
		const struct raw_naf_id *q = &n->naf_ids[i];
		static const char *const names[] = { "fqdn", "ua_protocol", "hex", "max_lifetime_s",
						     "default" };
		const char *vals[] = { q->fqdn, q->ua_protocol, q->hex, q->max_lifetime_s,
				       q->is_default };

		/* an entry exists as soon as it is listed; check() names what it lacks */
		memset(&c->naf.ids[i], 0, sizeof(c->naf.ids[i]));
		c->naf.ids[i].max_lifetime_s = 86400;
		c->naf.n_ids = i + 1;
		for (unsigned k = 0; k < 5; k++) {
			snprintf(key, sizeof(key), "naf_key_center.naf_ids[%u].%s", i, names[k]);
			if (apply_str(c, m, key, vals[k], e) < 0)
				return -1;
		}
	}
	return 0;
}

/* The cluster: section (its presence turns the cluster on; check() wants the rest). */
static int
apply_cluster(struct kl_config *c, const struct raw_cluster *k, const struct keymap *m,
	      struct perr *e)
{
	if (keymap_present(m, "cluster"))
		c->cluster.enabled = true;
	if (k == NULL)
		return 0;
	const struct key_val kv[] = {
		{ "cluster.ca_file", k->ca_file },
		{ "cluster.cert_file", k->cert_file },
		{ "cluster.key_file", k->key_file },
		{ "cluster.prefix", k->prefix },
		{ "cluster.node", k->node },
		{ "cluster.lease_ttl_s", k->lease_ttl_s },
		{ "cluster.connect_timeout_ms", k->connect_timeout_ms },
		{ "cluster.request_timeout_ms", k->request_timeout_ms },
		{ "cluster.stale_after_ms", k->stale_after_ms },
		{ "cluster.write_connections", k->write_connections },
	};
	if (apply_list(c, m, kv, sizeof(kv) / sizeof(kv[0]), e) < 0)
		return -1;
	return apply_strs(c, m, "cluster.endpoints", k->endpoints, k->endpoints_count,
			  KL_CONFIG_CLUSTER_MAX_ENDPOINTS, "endpoints", e);
}

static int
apply_raw(struct kl_config *c, const struct raw_cfg *r, const struct keymap *m, struct perr *e)
{
	char key[KEY_MAX];

	if (r->ports_count > KL_CONFIG_MAX_PORTS)
		return perr_set(e, keymap_line(m, "ports"), "ports", "at most %d ports (got %u)",
				KL_CONFIG_MAX_PORTS, r->ports_count);
	for (unsigned i = 0; i < r->ports_count; i++) {
		const struct raw_port *p = &r->ports[i];
		/* A port exists as soon as its entry does, even if every key is missing. */
		c->ports[i].queues = 1;
		c->n_ports = i + 1;
		snprintf(key, sizeof(key), "ports[%u].name", i);
		if (apply_str(c, m, key, p->name, e) < 0)
			return -1;
		snprintf(key, sizeof(key), "ports[%u].devargs", i);
		if (apply_str(c, m, key, p->devargs, e) < 0)
			return -1;
		snprintf(key, sizeof(key), "ports[%u].queues", i);
		if (apply_str(c, m, key, p->queues, e) < 0)
			return -1;
	}
	if (apply_strs(c, m, "ipv4", r->ipv4, r->ipv4_count, KL_CONFIG_MAX_ADDRS, "addresses",
		       e) < 0 ||
	    apply_strs(c, m, "ipv6", r->ipv6, r->ipv6_count, KL_CONFIG_MAX_ADDRS, "addresses",
		       e) < 0)
		return -1;
	if (apply_str(c, m, "udp_port", r->udp_port, e) < 0 ||
	    apply_str(c, m, "workers", r->workers, e) < 0 ||
	    apply_str(c, m, "server_identity", r->server_identity, e) < 0 ||
	    apply_str(c, m, "skew_s", r->skew_s, e) < 0 ||
	    apply_str(c, m, "predelivery_s", r->predelivery_s, e) < 0 ||
	    apply_str(c, m, "hm_session_s", r->hm_session_s, e) < 0 ||
	    apply_str(c, m, "retry_after_ms", r->retry_after_ms, e) < 0 ||
	    apply_str(c, m, "replay_cache", r->replay_cache, e) < 0 ||
	    apply_str(c, m, "admin_socket", r->admin_socket, e) < 0 ||
	    apply_str(c, m, "metrics", r->metrics, e) < 0 ||
	    apply_str(c, m, "admin_max_clients", r->admin_max_clients, e) < 0 ||
	    apply_str(c, m, "admin_idle_timeout_s", r->admin_idle_timeout_s, e) < 0 ||
	    apply_str(c, m, "admin_line_timeout_s", r->admin_line_timeout_s, e) < 0 ||
	    apply_str(c, m, "metrics_max_connections", r->metrics_max_connections, e) < 0 ||
	    apply_str(c, m, "metrics_request_timeout_s", r->metrics_request_timeout_s, e) < 0 ||
	    apply_str(c, m, "log_level", r->log_level, e) < 0 ||
	    apply_str(c, m, "crypto", r->crypto, e) < 0 || apply_str(c, m, "io", r->io, e) < 0 ||
	    apply_str(c, m, "rendezvous_s", r->rendezvous_s, e) < 0 ||
	    apply_str(c, m, "rendezvous_entries", r->rendezvous_entries, e) < 0 ||
	    apply_str(c, m, "dh_cache_s", r->dh_cache_s, e) < 0 ||
	    apply_str(c, m, "dh_cache_entries", r->dh_cache_entries, e) < 0 ||
	    apply_str(c, m, "s2s_pending", r->s2s_pending, e) < 0)
		return -1;
	if (r->rate_limit != NULL) {
		if (apply_str(c, m, "rate_limit.per_source_pps", r->rate_limit->per_source_pps, e) <
			    0 ||
		    apply_str(c, m, "rate_limit.burst", r->rate_limit->burst, e) < 0 ||
		    apply_str(c, m, "rate_limit.table_size", r->rate_limit->table_size, e) < 0)
			return -1;
	}
	if (r->table != NULL) {
		if (apply_str(c, m, "table.ues", r->table->ues, e) < 0 ||
		    apply_str(c, m, "table.groups", r->table->groups, e) < 0 ||
		    apply_str(c, m, "table.emses", r->table->emses, e) < 0 ||
		    apply_str(c, m, "table.imsis", r->table->imsis, e) < 0 ||
		    apply_str(c, m, "table.appids", r->table->appids, e) < 0 ||
		    apply_str(c, m, "table.e2m_ring", r->table->e2m_ring, e) < 0 ||
		    apply_str(c, m, "table.pairs", r->table->pairs, e) < 0 ||
		    apply_str(c, m, "table.dh_ues", r->table->dh_ues, e) < 0)
			return -1;
	}
	/* The section's presence turns the store on; check() then wants path and kek_file. */
	if (keymap_present(m, "store"))
		c->store.enabled = true;
	if (r->store != NULL) {
		if (apply_str(c, m, "store.path", r->store->path, e) < 0 ||
		    apply_str(c, m, "store.kek_file", r->store->kek_file, e) < 0 ||
		    apply_str(c, m, "store.map_size_mb", r->store->map_size_mb, e) < 0)
			return -1;
	}
	/* The same for the Diameter feed: check() then wants identity and TLS files, or fd_conf. */
	if (keymap_present(m, "diameter"))
		c->diameter.enabled = true;
	if (r->diameter != NULL) {
		const struct raw_dia *d = r->diameter;
		const struct key_val kv[] = {
			{ "diameter.fd_conf", d->fd_conf },	{ "diameter.identity", d->identity },
			{ "diameter.realm", d->realm },		{ "diameter.listen", d->listen },
			{ "diameter.port", d->port },		{ "diameter.tls_cert", d->tls_cert },
			{ "diameter.tls_key", d->tls_key },	{ "diameter.tls_ca", d->tls_ca },
			{ "diameter.tls_crl", d->tls_crl },	{ "diameter.vendor_id", d->vendor_id },
			{ "diameter.app_id", d->app_id },	{ "diameter.max_queue", d->max_queue },
		};
		if (apply_list(c, m, kv, sizeof(kv) / sizeof(kv[0]), e) < 0)
			return -1;
		if (apply_strs(c, m, "diameter.allowed_peers", d->allowed_peers,
			       d->allowed_peers_count, KL_CONFIG_DIAMETER_MAX_PEERS, "peers", e) < 0)
			return -1;
	}
	if (apply_naf(c, r->naf_key_center, m, e) < 0)
		return -1;
	if (apply_cluster(c, r->cluster, m, e) < 0)
		return -1;
	if (r->msk_rotation_count > KL_CONFIG_MAX_ROTATIONS)
		return perr_set(e, keymap_line(m, "msk_rotation"), "msk_rotation",
				"at most %d entries (got %u)", KL_CONFIG_MAX_ROTATIONS,
				r->msk_rotation_count);
	for (unsigned i = 0; i < r->msk_rotation_count; i++) {
		const struct raw_rot *q = &r->msk_rotation[i];
		static const char *const names[] = { "group", "period_s", "predelivery_s" };
		const char *vals[] = { q->group, q->period_s, q->predelivery_s };
		/* An entry exists as soon as it is listed; each of its keys is required. */
		memset(&c->msk_rotation[i], 0, sizeof(c->msk_rotation[i]));
		c->n_msk_rotation = i + 1;
		for (unsigned k = 0; k < 3; k++) {
			snprintf(key, sizeof(key), "msk_rotation[%u].%s", i, names[k]);
			if (!keymap_present(m, key))
				return perr_set(e, keymap_line(m, key), key,
						"required key is missing%s",
						k == 0 ? " (\"DDDDDD:G\": Key Domain ID, key group)"
						       : " (seconds)");
			if (apply_str(c, m, key, vals[k], e) < 0)
				return -1;
		}
	}
	if (r->peers_count > KL_CONFIG_MAX_PEERS)
		return perr_set(e, keymap_line(m, "peers"), "peers", "at most %d peers (got %u)",
				KL_CONFIG_MAX_PEERS, r->peers_count);
	for (unsigned i = 0; i < r->peers_count; i++) {
		const struct raw_peer *q = &r->peers[i];
		static const char *const names[] = { "identity", "address", "port", "mac" };
		const char *vals[] = { q->identity, q->address, q->port, q->mac };

		/* An entry exists as soon as it is listed; identity and address are required
		 * (check() names the missing one), port and mac are optional. */
		memset(&c->peers[i], 0, sizeof(c->peers[i]));
		c->peers[i].port = KL_CONFIG_DEFAULT_PEER_PORT;
		c->n_peers = i + 1;
		for (unsigned k = 0; k < 4; k++) {
			snprintf(key, sizeof(key), "peers[%u].%s", i, names[k]);
			if (apply_str(c, m, key, vals[k], e) < 0)
				return -1;
		}
	}
	return 0;
}

static int
read_file(const char *path, uint8_t **buf, size_t *len, struct perr *e)
{
	/* O_NONBLOCK: a FIFO (or device) in its place must be refused, not waited on */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	size_t cap = 0, n = 0;
	uint8_t *b = NULL;
	struct stat st;
	FILE *f;

	if (fd < 0)
		return perr_set(e, 1, "(file)", "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return perr_set(e, 1, "(file)", "not a regular file");
	}
	f = fdopen(fd, "rb");
	if (f == NULL) {
		close(fd);
		return perr_set(e, 1, "(file)", "cannot open: %s", strerror(errno));
	}
	for (;;) {
		if (n == cap) {
			if (cap > KL_CONFIG_MAX_FILE_SIZE) {
				free(b);
				fclose(f);
				return perr_set(e, 1, "(file)", "larger than %u bytes",
						KL_CONFIG_MAX_FILE_SIZE);
			}
			cap = cap ? cap * 2 : 8192;
			uint8_t *nb = realloc(b, cap + 1);
			if (nb == NULL) {
				free(b);
				fclose(f);
				return perr_set(e, 1, "(file)", "out of memory");
			}
			b = nb;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(b);
		return perr_set(e, 1, "(file)", "read error");
	}
	if (n > KL_CONFIG_MAX_FILE_SIZE) {
		free(b);
		return perr_set(e, 1, "(file)", "larger than %u bytes", KL_CONFIG_MAX_FILE_SIZE);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

int
kl_config_load(const char *path, struct kl_config *out, char *err, size_t errlen)
{
	struct keymap m = { 0 };
	struct perr e = { .line = 1 };
	struct raw_cfg *raw = NULL;
	struct cylog cl;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = -1;
	cyaml_config_t cy = {
		.log_fn = cy_log,
		.log_ctx = &cl,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_NO_ALIAS,
	};

	kl_config_defaults(out);
	if (read_file(path, &buf, &len, &e) < 0)
		goto out;
	if (scan_keys(buf, len, &m, &e) < 0)
		goto out;
	if (m.n == 0) {
		perr_set(&e, 1, "server_identity", "required key is missing (the file has no keys)");
		goto out;
	}
	memset(&cl, 0, sizeof(cl));
	cyaml_err_t cerr = cyaml_load_data(buf, len, &cy, &top_schema, (cyaml_data_t **)&raw, NULL);
	if (cerr != CYAML_OK) {
		cylog_path(&cl);
		const char *key = cl.path[0] ? cl.path : "(document)";
		unsigned line = cl.path[0] && keymap_present(&m, cl.path) ? keymap_line(&m, cl.path)
									: (cl.line ? cl.line : 1);
		perr_set(&e, line, key, "%s", cy_explain(cl.msg[0] ? cl.msg : cyaml_strerror(cerr)));
		raw = NULL;
		goto out;
	}
	if (apply_raw(out, raw, &m, &e) < 0)
		goto out;
	{
		char key[KEY_MAX], what[WHAT_MAX];
		if (check(out, key, sizeof(key), what, sizeof(what)) < 0) {
			perr_set(&e, keymap_line(&m, key), key, "%s", what);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0) {
		char shown[256];
		sanitize(shown, sizeof(shown), path);
		snprintf(err, errlen, "%s:%u: %s: %s", shown, e.line, e.key, e.what);
	}
	if (raw != NULL)
		cyaml_free(&cy, &top_schema, raw, 0);
	keymap_free(&m);
	free(buf);
	return rc;
}
