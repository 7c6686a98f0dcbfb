/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylinectl: operator CLI for keylined's admin socket (one JSON request per line, one JSON answer
 * per line: control/kl_admin.h). Builds one request from the command line, prints the answer in
 * human-readable form (or raw with --json).
 *
 * Exit status: 0 success; 1 keylined answered with an error; 2 usage error, unreadable file, or
 * no connection / no answer. Errors are one line on stderr.
 *
 * Keys: give them in files (--muk-file F, "-" for stdin; hex text, surrounding whitespace
 * ignored) rather than as arguments: an argument such as --muk HEX is visible to other local
 * users (ps, /proc/PID/cmdline) until keylinectl overwrites it at start-up. Key bytes are never
 * printed; keylined answers with key check values (KCV).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kl_crypto.h"
#include "kl_population.h"
#include "kl_util.h"

#define DEFAULT_SOCKET "/run/keyline/admin.sock"
#define DEFAULT_TIMEOUT_S 30
#define IMPORT_TIMEOUT_S 3600 /* a population import runs in one request */
#define BACKUP_TIMEOUT_S 86400 /* a backup of a large store: keylined serves meanwhile */
#define BACKUP_POLL_MS 100
#define MAX_ANSWER (4u << 20)
#define KEYFILE_MAX 8192
#define UNIX_MAX 2085978495ll /* last second NTP era 0 holds; keylined stores NTP */
#define KL_STR_(x) #x
#define KL_STR(x) KL_STR_(x)

static bool json_out;
static const char *prog = "keylinectl";
static int argbase; /* argv index of the command's first argument: errors name positions */
static const char *sock_label; /* the socket in messages: never what -s gave */

__attribute__((format(printf, 1, 2), noreturn)) static void die2(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keylinectl [-s SOCKET] [--json] [--timeout S] COMMAND [ARGS]\n"
		"  ping | version | count\n"
		"  import FILE                   import a TEST population (keyline-population file)\n"
		"  put-ue ID (--muk HEX | --muk-file F) [--group DDDDDD:G]... [--expires T]\n"
		"         [--services LIST]      at most " KL_STR(KL_TABLE_UE_GROUPS)
		" --group: the UE's whole list\n"
		"  services ID LIST              the services a UE may use (the rest kept)\n"
		"  group-add ID DDDDDD:G         one key group more for a UE (MUK and expiry kept)\n"
		"  group-del ID DDDDDD:G         one key group less\n"
		"  put-group DDDDDD:G (--msk HEX | --msk-file F) (--key-number N | --msk-id 0xID)\n"
		"            --valid-from T --valid-to T [(--next-msk HEX | --next-msk-file F)\n"
		"            [--next-key-number N | --next-msk-id 0xID]\n"
		"            [--next-valid-from T] [--next-valid-to T]]\n"
		"  put-emse ID (--psk HEX | --psk-file F)\n"
		"  push-e2m IMSI (--key HEX | --key-file F) --key-id N [--expires T]\n"
		"  put-appid APPID IMSI\n"
		"  put-pair PEER (--key HEX | --key-file F) [--expires T]\n"
		"                                the pair key K(this server, PEER server)\n"
		"  del KIND ID                   KIND: ue, group, emse, imsi, appid, pair\n"
		"  show KIND ID                  metadata and key check values, never keys (a dh UE:\n"
		"                                its public value's fingerprint)\n"
		"  stats [--worker N]\n"
		"  rotate DDDDDD:G               forced MSK rotation: a fresh current MSK from now\n"
		"  status                        table, store, Diameter peers, MSK rotation,\n"
		"                                server-to-server tables\n"
		"  peers                         peer servers: address, pair key, counters\n"
		"  backup FILE                   online copy of the store (consistent, compacted,\n"
		"                                mode 0600) to FILE, which must not exist; keylined\n"
		"                                keeps serving. Restore: stop keylined, copy FILE to\n"
		"                                STORE/data.mdb, remove STORE/lock.mdb, start it\n"
		"                                (README.md, \"Restoring the store\")\n"
		"  naf-keys                      the NAF Key Center's issued keys (KCVs, never keys)\n"
		"  naf-invalidate B_TID DEVICE_ID  invalidate an issued Ks_local_MT\n"
		"  naf-block (--device-id ID | --serial HEX)    blocklist a Device_ID or a\n"
		"  naf-unblock (--device-id ID | --serial HEX)  certificate serial (or remove it)\n"
		"  naf-blocklist                 the blocklist\n"
		"  cluster                       the cluster: this node (role, revisions, lag, etcd)\n"
		"                                and every node registered in etcd\n"
		"  cluster-seed                  upload this node's store into the cluster's\n"
		"                                catalogue (README \"Clusters on etcd\")\n"
		"SOCKET: -s, else $KEYLINE_ADMIN_SOCKET, else " DEFAULT_SOCKET ".\n"
		"T: unix seconds, YYYY-MM-DDTHH:MM:SSZ, now, now+S, now-S or +S.\n"
		"LIST: services, comma-separated: mbms, hm, dh, prose or all (put-ue: mbms).\n"
		"--key-number N: the MSK's key number, 1..65535; --msk-id ID: the whole MSK ID\n"
		"(group << 16 | key number, e.g. 0x00010005 for group 1, key 5); give one of them.\n"
		"The next MSK defaults to key number + 1, valid for the same length right after.\n"
		"Key files hold hex text (\"-\" reads stdin). --muk/--msk/--psk/--key HEX put the key\n"
		"on the command line, where ps shows it: prefer the -file options.\n"
		"A group that does not exist yet is taken with a warning on stderr (exit 0).\n"
		"--json prints keylined's answer as is. Exit: 0 ok, 1 keylined refused, 2 usage or\n"
		"connection error.\n");
}

/* ---- jansson: wipe what it frees (requests carry key hex) ------------------------------------ */

static void wiping_free(void *p)
{
	if (!p)
		return;
	kl_memzero(p, malloc_usable_size(p));
	free(p);
}

/* ---- argument parsing ------------------------------------------------------------------------- */

struct opt {
	const char *name;  /* without "--" */
	bool multi;	   /* may repeat (values collected) */
	const char *val[8];
	unsigned n;
	char *argv_slot[8]; /* the argv string, to overwrite key arguments */
};

/* Split args into positionals and --options of spec; --json is taken anywhere. */
static unsigned parse_args(int argc, char **argv, struct opt *spec, unsigned nspec,
			   const char **pos, unsigned maxpos, const char *cmd)
{
	unsigned npos = 0;
	bool opts = true;

	for (int i = 0; i < argc; i++) {
		char *a = argv[i];

		if (opts && !strcmp(a, "--")) {
			opts = false;
			continue;
		}
		if (opts && !strcmp(a, "--json")) {
			json_out = true;
			continue;
		}
		if (opts && a[0] == '-' && a[1] == '-' && a[2]) {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t nl = eq ? (size_t)(eq - name) : strlen(name);
			struct opt *o = NULL;
			char *val;

			for (unsigned k = 0; k < nspec; k++)
				if (strlen(spec[k].name) == nl && !strncmp(spec[k].name, name, nl))
					o = &spec[k];
			if (!o)
				die2("%s: unknown option (argument %d; see --help)", cmd, argbase + i);
			if (eq) {
				val = (char *)eq + 1;
			} else {
				if (i + 1 >= argc)
					die2("%s: --%s needs a value", cmd, o->name);
				val = argv[++i];
			}
			if (o->n && !o->multi)
				die2("%s: --%s given twice", cmd, o->name);
			if (o->n >= sizeof(o->val) / sizeof(o->val[0]))
				die2("%s: --%s given too often", cmd, o->name);
			o->argv_slot[o->n] = val;
			o->val[o->n++] = val;
			continue;
		}
		if (opts && a[0] == '-' && a[1] && strcmp(a, "-"))
			die2("%s: unknown option (argument %d; see --help)", cmd, argbase + i);
		/* what was typed is never echoed: it may be a key given without its --option */
		if (npos >= maxpos)
			die2("%s: unexpected argument %d (not shown; keys go in --OPTION-file; see "
			     "--help)",
			     cmd, argbase + i);
		pos[npos++] = a;
	}
	return npos;
}

static struct opt *opt_get(struct opt *spec, unsigned nspec, const char *name)
{
	for (unsigned k = 0; k < nspec; k++)
		if (!strcmp(spec[k].name, name))
			return &spec[k];
	return NULL;
}

static const char *opt_val(struct opt *spec, unsigned nspec, const char *name)
{
	struct opt *o = opt_get(spec, nspec, name);

	return o && o->n ? o->val[0] : NULL;
}

static uint64_t parse_num(const char *what, const char *s, uint64_t max)
{
	uint64_t v = 0;
	int base = 10;

	if (!s || !*s)
		die2("%s: missing number", what);
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			die2("%s: not a number", what);
	}
	for (const char *c = s; *c; c++) {
		int d = base == 16 ? kl_hexval(*c) : (*c >= '0' && *c <= '9' ? *c - '0' : -1);

		if (d < 0 || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			die2("%s: not a number", what);
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (v > max)
		die2("%s: out of range (max %" PRIu64 ")", what, max);
	return v;
}

/* An MSK ID from --KEYNUM N (the key number) or --MSKID ID (the whole MSK ID, group << 16 |
 * key number: one meaning only, so an ID of 65535 or less, the old key-number form, is refused
 * rather than read as one). @return 0 when neither was given. */
static uint32_t msk_id_opt(const char *keynum, const char *mskid, unsigned group, const char *what)
{
	uint64_t v;

	if (keynum && mskid)
		die2("put-group: give --%skey-number or --%smsk-id, not both", what, what);
	if (keynum) {
		v = parse_num(*what ? "put-group: --next-key-number" : "put-group: --key-number",
			      keynum, 65535);
		if (!v)
			die2("put-group: --%skey-number: 1..65535 (0 is reserved)", what);
		return (uint32_t)group << 16 | (uint32_t)v;
	}
	if (!mskid)
		return 0;
	v = parse_num(*what ? "put-group: --next-msk-id" : "put-group: --msk-id", mskid, UINT32_MAX);
	if (v <= 0xFFFF && group)
		die2("put-group: --%smsk-id is the whole MSK ID (group << 16 | key number, here "
		     "0x%04x0001 for key 1); for a key number give --%skey-number N",
		     what, group, what);
	if (v >> 16 != group)
		die2("put-group: --%smsk-id: its key group is not DDDDDD:G's (%u)", what, group);
	return (uint32_t)v;
}

/* T: unix seconds, ISO 8601 UTC, now, now+S, now-S, +S. */
static int64_t parse_time(const char *what, const char *s)
{
	int64_t now = (int64_t)time(NULL), t;
	struct tm tm;

	if (!s)
		die2("%s: missing time", what);
	if (!strncmp(s, "now", 3) || s[0] == '+') {
		const char *r = s[0] == '+' ? s : s + 3;

		if (!*r)
			t = now;
		else if (*r == '+')
			t = now + (int64_t)parse_num(what, r + 1, (uint64_t)UNIX_MAX);
		else if (*r == '-')
			t = now - (int64_t)parse_num(what, r + 1, (uint64_t)UNIX_MAX);
		else
			die2("%s: bad time (unix seconds, YYYY-MM-DDTHH:MM:SSZ, now+S)", what);
	} else if (strchr(s, '-')) {
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
		if (!end || (*end && strcmp(end, "Z")))
			die2("%s: bad time (unix seconds, YYYY-MM-DDTHH:MM:SSZ, now+S)", what);
		t = (int64_t)timegm(&tm);
	} else if (*s && strspn(s, "0123456789") == strlen(s)) {
		t = (int64_t)parse_num(what, s, (uint64_t)UNIX_MAX);
	} else {
		die2("%s: bad time (unix seconds, YYYY-MM-DDTHH:MM:SSZ, now+S)", what);
	}
	if (t < 0 || t > UNIX_MAX)
		die2("%s: time out of range (1970 .. 2036-02-07)", what);
	return t;
}

static void fmt_time(int64_t t, char *out, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, cap, "%" PRId64, t);
}

/* Hex key text: trimmed, even length, hex digits, min..max bytes. Returns a malloc'd copy. */
static char *check_hex(const char *what, const char *s, size_t len, size_t min, size_t max)
{
	char *h;

	while (len && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
		       s[len - 1] == '\r'))
		len--;
	if (!len)
		die2("%s: empty key", what);
	if (len % 2)
		die2("%s: odd number of hex digits (%zu)", what, len);
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			die2("%s: not hex (bad digit at position %zu)", what, i + 1);
	if (len / 2 < min || len / 2 > max) {
		if (min == max)
			die2("%s: %zu bytes, must be %zu", what, len / 2, min);
		die2("%s: %zu bytes, must be %zu..%zu", what, len / 2, min, max);
	}
	h = malloc(len + 1);
	if (!h)
		die2("out of memory");
	memcpy(h, s, len);
	h[len] = 0;
	return h;
}

static char *read_key_file(const char *what, const char *path, size_t min, size_t max)
{
	char buf[KEYFILE_MAX + 1], *h;
	size_t n = 0;
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;

	if (fd < 0)
		die2("%s: cannot read the file: %s", what, strerror(errno));
	for (;;) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			kl_memzero(buf, sizeof(buf));
			die2("%s: cannot read the file: %s", what, strerror(errno));
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == sizeof(buf)) {
			kl_memzero(buf, sizeof(buf));
			die2("%s: too large for a key file", what);
		}
	}
	if (fd)
		close(fd);
	h = check_hex(what, buf, n, min, max);
	kl_memzero(buf, sizeof(buf));
	return h;
}

/* The key from --NAME HEX or --NAME-file F (exactly one); NULL if neither and !required. */
static char *get_key(struct opt *spec, unsigned nspec, const char *name, size_t min, size_t max,
		     bool required, const char *cmd)
{
	char fname[32], what[48];
	struct opt *o = opt_get(spec, nspec, name), *of;
	char *h;

	snprintf(fname, sizeof(fname), "%s-file", name);
	of = opt_get(spec, nspec, fname);
	if (o->n && of->n)
		die2("%s: give --%s or --%s, not both", cmd, name, fname);
	if (!o->n && !of->n) {
		if (required)
			die2("%s: --%s HEX or --%s FILE is required", cmd, name, fname);
		return NULL;
	}
	if (of->n) {
		snprintf(what, sizeof(what), "%s: --%s", cmd, fname);
		return read_key_file(what, of->val[0], min, max);
	}
	snprintf(what, sizeof(what), "%s: --%s", cmd, name);
	h = check_hex(what, o->val[0], strlen(o->val[0]), min, max);
	/* Take it out of /proc/PID/cmdline (it was visible until now: prefer key files). */
	kl_memzero(o->argv_slot[0], strlen(o->argv_slot[0]));
	return h;
}

static void wipe_free_str(char *s)
{
	if (s) {
		kl_memzero(s, strlen(s));
		free(s);
	}
}

/* ---- socket ----------------------------------------------------------------------------------- */

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		die2("%s: socket path too long", sock_label);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die2("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		die2("cannot connect to %s: %s%s", sock_label, strerror(e),
		     e == ENOENT || e == ECONNREFUSED ? " (is keylined running?)" : "");
	}
	return fd;
}

static void send_all(int fd, const char *s, size_t n, const char *path)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die2("%s: send: %s", path, strerror(errno));
		s += k;
		n -= (size_t)k;
	}
}

/* One answer line (malloc'd, NUL-terminated, without its newline). */
static char *recv_line(int fd, int timeout_s, const char *path)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	time_t end = time(NULL) + timeout_s;

	if (!buf)
		die2("out of memory");
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		time_t left = end - time(NULL);
		char *nl;
		ssize_t k;
		int rc;

		if (left <= 0)
			die2("%s: no answer within %d s", path, timeout_s);
		rc = poll(&p, 1, (int)(left > 1000 ? 1000000 : left * 1000));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			die2("poll: %s", strerror(errno));
		if (rc == 0)
			continue;
		if (len + 1 >= cap) {
			if (cap >= MAX_ANSWER)
				die2("%s: answer longer than %u bytes", path, MAX_ANSWER);
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die2("out of memory");
		}
		k = recv(fd, buf + len, cap - len - 1, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			die2("%s: %s", path, strerror(errno));
		if (k == 0)
			die2("%s: keylined closed the connection without an answer", path);
		nl = memchr(buf + len, '\n', (size_t)k);
		len += (size_t)k;
		if (nl) {
			*nl = 0;
			return buf;
		}
	}
}

/* ---- output ----------------------------------------------------------------------------------- */

static const char *s_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "?";
}

static long long i_of(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void print_msk(const char *label, json_t *m)
{
	char from[32], to[32];

	if (!json_is_object(m)) {
		printf("  %-8s none\n", label);
		return;
	}
	fmt_time(i_of(m, "valid_from"), from, sizeof(from));
	fmt_time(i_of(m, "valid_to"), to, sizeof(to));
	printf("  %-8s msk_id 0x%08llX (key %lld)  valid %s .. %s  kcv %s\n", label,
	       i_of(m, "msk_id"), i_of(m, "key_number"), from, to, s_of(m, "kcv"));
}

static void print_services(json_t *a)
{
	json_t *v;
	size_t i;

	printf("  services ");
	json_array_foreach(json_object_get(a, "services"), i, v)
		printf("%s%s", i ? "," : "", json_string_value(v));
	printf("\n");
}

static void print_show(json_t *a)
{
	const char *kind = s_of(a, "kind");

	if (!strcmp(kind, "ue")) {
		json_t *g = json_object_get(a, "groups"), *v;
		size_t i;

		printf("ue %s\n  muk      %lld chunk(s), kcv %s\n  groups   ", s_of(a, "id"),
		       i_of(a, "muk_chunks"), s_of(a, "kcv"));
		if (!json_array_size(g))
			printf("none");
		json_array_foreach(g, i, v)
			printf("%s%s", i ? ", " : "", json_string_value(v));
		printf("\n  expires  ");
		if (i_of(a, "expires")) { /* the MUK's expiry, unix seconds; 0 or absent: never */
			char ex[32];

			fmt_time(i_of(a, "expires"), ex, sizeof(ex));
			printf("%s (%lld)%s\n", ex, i_of(a, "expires"),
			       (long long)time(NULL) >= i_of(a, "expires") ? " expired" : "");
		} else {
			printf("never\n");
		}
		print_services(a);
		if (json_object_get(a, "dh_pub_fp")) /* dh UEs: their X25519 public value's */
			printf("  dh pub   fingerprint %s\n", s_of(a, "dh_pub_fp"));
	} else if (!strcmp(kind, "pair")) {
		char ex[32] = "never";

		if (i_of(a, "expires"))
			fmt_time(i_of(a, "expires"), ex, sizeof(ex));
		printf("pair %s\n  key      kcv %s\n  expires  %s", s_of(a, "id"), s_of(a, "kcv"),
		       ex);
		if (i_of(a, "expires"))
			printf(" (%lld)%s", i_of(a, "expires"),
			       (long long)time(NULL) >= i_of(a, "expires") ? " expired" : "");
		printf("\n");
	} else if (!strcmp(kind, "group")) {
		printf("group %s\n", s_of(a, "id"));
		print_msk("current", json_object_get(a, "current"));
		print_msk("next", json_object_get(a, "next"));
	} else if (!strcmp(kind, "emse")) {
		printf("emse %s\n  psk      %lld chunk(s), kcv %s\n", s_of(a, "id"),
		       i_of(a, "psk_chunks"), s_of(a, "kcv"));
	} else if (!strcmp(kind, "imsi")) {
		json_t *keys = json_object_get(a, "keys"), *k;
		size_t i;

		printf("imsi %s: %zu e2m key(s), newest first\n", s_of(a, "id"),
		       json_array_size(keys));
		json_array_foreach(keys, i, k) {
			char ex[32] = "never";

			if (i_of(k, "expires"))
				fmt_time(i_of(k, "expires"), ex, sizeof(ex));
			printf("  key_id %-10lld expires %-20s kcv %s\n", i_of(k, "key_id"), ex,
			       s_of(k, "kcv"));
		}
	} else if (!strcmp(kind, "appid")) {
		printf("appid %s -> imsi %s\n", s_of(a, "id"), s_of(a, "imsi"));
	}
}

static void print_counters(const char *title, json_t *o)
{
	const char *k;
	json_t *v;

	printf("%s:\n", title);
	json_object_foreach(o, k, v)
		printf("  %-28s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
}

static void print_stats(json_t *a)
{
	json_t *t = json_object_get(a, "totals"), *svc = json_object_get(a, "service_time");
	json_t *bounds = json_object_get(svc, "bounds_ns"), *counts = json_object_get(svc, "counts");
	size_t nb = json_array_size(bounds);

	printf("keyline %s (io %s, crypto %s), uptime %lld s, %lld worker(s)", s_of(a, "version"),
	       s_of(a, "io_backend"), s_of(a, "crypto_backend"), i_of(a, "uptime_s"),
	       i_of(a, "workers"));
	if (json_object_get(a, "worker"))
		printf(", showing worker %lld", i_of(a, "worker"));
	printf("\ntotals: %lld requests, %lld key responses, %lld error responses, %lld engine drops, "
	       "%lld net drops\n",
	       i_of(t, "requests"), i_of(t, "key_responses"), i_of(t, "error_responses"),
	       i_of(t, "engine_drops"), i_of(t, "net_drops"));
	print_counters("engine", json_object_get(a, "engine"));
	print_counters("engine drops", json_object_get(a, "engine_drops"));
	print_counters("io", json_object_get(a, "io"));
	print_counters("net drops", json_object_get(a, "net_drops"));
	printf("service time: %lld answered", i_of(svc, "count"));
	if (json_object_get(svc, "mean_ns"))
		printf(", mean %.1f us", (double)i_of(svc, "mean_ns") / 1000.0);
	printf("\n");
	for (size_t i = 0; i < json_array_size(counts); i++) {
		char label[32];

		if (i < nb)
			snprintf(label, sizeof(label), "<= %.1f us",
				 (double)json_integer_value(json_array_get(bounds, i)) / 1000.0);
		else
			snprintf(label, sizeof(label), ">  %.1f us",
				 nb ? (double)json_integer_value(json_array_get(bounds, nb - 1)) /
					      1000.0
				    : 0.0);
		printf("  %-14s %" JSON_INTEGER_FORMAT "\n", label,
		       json_integer_value(json_array_get(counts, i)));
	}
}

static void print_kind_counts(json_t *c)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach(c, k, v) {
		printf("%s%" JSON_INTEGER_FORMAT " %s", first ? "" : ", ", json_integer_value(v), k);
		first = false;
	}
}

/* One server-to-server table: used/capacity and refusals when full. */
static void print_s2s_table(json_t *s2s, const char *name)
{
	json_t *t = json_object_get(s2s, name);

	printf("%s %lld/%lld (full %lld)", name, i_of(t, "used"), i_of(t, "capacity"),
	       i_of(t, "full"));
}

static void print_s2s(json_t *s2s)
{
	printf("s2s:      ");
	if (!json_is_true(json_object_get(s2s, "enabled"))) {
		printf("none\n");
		return;
	}
	printf("%lld peer(s); ", i_of(s2s, "peers"));
	print_s2s_table(s2s, "rendezvous");
	printf(", ");
	print_s2s_table(s2s, "cache");
	printf(", ");
	print_s2s_table(s2s, "pending");
	printf("; contended %lld\n", i_of(s2s, "contended"));
}

/* One line per peer: identity, address:port, pair key (KCV) and its counters, in the answer's
 * order (KL_PEER_COUNTER_LIST). */
static void print_peers(json_t *a)
{
	json_t *peers = json_object_get(a, "peers"), *p, *c0;
	const char *k;
	json_t *v;
	size_t i;

	c0 = json_object_get(json_array_get(peers, 0), "counters");
	printf("%-24s %-30s %-14s", "identity", "address:port", "pair key");
	json_object_foreach(c0, k, v)
		printf(" %9s", k);
	printf("\n");
	json_array_foreach(peers, i, p) {
		const char *addr = s_of(p, "address");
		char ap[80], pk[32];

		snprintf(ap, sizeof(ap), strchr(addr, ':') ? "[%s]:%lld" : "%s:%lld", addr,
			 i_of(p, "port"));
		if (json_is_true(json_object_get(p, "pair_key")))
			snprintf(pk, sizeof(pk), "yes %s%s", s_of(p, "pair_kcv"),
				 i_of(p, "pair_expires") && (long long)time(NULL) >=
								 i_of(p, "pair_expires")
					 ? " expired"
					 : "");
		else
			snprintf(pk, sizeof(pk), "no");
		printf("%-24s %-30s %-14s", s_of(p, "identity"), ap, pk);
		json_object_foreach(json_object_get(p, "counters"), k, v)
			printf(" %9" JSON_INTEGER_FORMAT, json_integer_value(v));
		printf("\n");
	}
	if (!json_array_size(peers))
		printf("(no peers configured)\n");
	printf("refused from unconfigured sources: %lld\n", i_of(a, "unconfigured_refused"));
}

/* The cluster part of status (kl_cluster_status): one line, then etcd's health. */
static void print_cluster(json_t *c)
{
	json_t *e = json_object_get(c, "etcd"), *n = json_object_get(c, "counters");

	printf("cluster:  ");
	if (!json_is_true(json_object_get(c, "enabled"))) {
		printf("none\n");
		return;
	}
	printf("node %s (%s), %s%s; revision %lld applied, etcd %lld, lag %lld (%lld ms)\n",
	       s_of(c, "node"), s_of(c, "role"), s_of(c, "state"),
	       json_is_true(json_object_get(c, "stale")) ? ", STALE" : "",
	       i_of(c, "applied_revision"), i_of(c, "etcd_revision"), i_of(c, "lag_revisions"),
	       i_of(c, "lag_ms"));
	if (json_object_get(c, "election")) {
		json_t *el = json_object_get(c, "election");
		const char *who = s_of(el, "leader");

		printf("          MSK rotation leader %s (term %lld)%s; this node elected %lld, "
		       "lost %lld time(s)%s%s\n",
		       who[0] ? who : "none", i_of(el, "term"),
		       !strcmp(s_of(el, "role"), "leader") && !json_is_true(json_object_get(el, "ready"))
			       ? ", catching up"
			       : "",
		       i_of(el, "elected"), i_of(el, "lost"), s_of(el, "error")[0] ? "; " : "",
		       s_of(el, "error"));
	}
	printf("          etcd %s %s (member %s, leader %s)%s%s\n", s_of(e, "endpoint"),
	       json_is_true(json_object_get(e, "healthy")) ? "healthy" : "NOT healthy",
	       s_of(e, "member"), s_of(e, "leader"), json_object_get(c, "link_error") ? ": " : "",
	       json_object_get(c, "link_error") ? s_of(c, "link_error") : "");
	printf("          events applied %lld, skipped %lld, refused %lld; resyncs %lld; "
	       "replicated commits %lld (%lld conflicts, %lld unreachable)\n",
	       i_of(n, "events_applied"), i_of(n, "events_skipped"), i_of(n, "events_refused"),
	       i_of(n, "resyncs"), i_of(n, "repl_commits"), i_of(n, "repl_conflicts"),
	       i_of(n, "repl_unreachable"));
}

static void print_status(json_t *a)
{
	json_t *t = json_object_get(a, "table"), *s = json_object_get(a, "store"),
	       *d = json_object_get(a, "diameter"), *rot = json_object_get(a, "rotation"), *v;
	size_t i;

	printf("keyline %s", s_of(a, "version"));
	if (json_object_get(a, "io_backend"))
		printf(" (io %s, crypto %s)", s_of(a, "io_backend"), s_of(a, "crypto_backend"));
	if (json_object_get(a, "uptime_s"))
		printf(", uptime %lld s", i_of(a, "uptime_s"));
	if (json_object_get(a, "workers"))
		printf(", %lld worker(s)", i_of(a, "workers"));
	printf("\ntable:    ");
	print_kind_counts(json_object_get(t, "counts"));
	printf("; memory %lld bytes\n", i_of(t, "memory_bytes"));
	printf("store:    ");
	if (!json_is_true(json_object_get(s, "enabled"))) {
		printf("none\n");
	} else if (json_object_get(s, "error")) {
		printf("error: %s\n", s_of(s, "error"));
	} else {
		char created[32];

		fmt_time(i_of(s, "created"), created, sizeof(created));
		print_kind_counts(json_object_get(s, "entries"));
		printf("\n          file %lld bytes, used %lld bytes (map %lld), %.1f bytes/ue\n"
		       "          schema %lld, created %s, kek kcv %s (%s)\n",
		       i_of(s, "file_bytes"), i_of(s, "used_bytes"), i_of(s, "map_size"),
		       json_number_value(json_object_get(s, "bytes_per_ue")), i_of(s, "schema"),
		       created, s_of(s, "kek_kcv"),
		       json_is_true(json_object_get(s, "kek_secure_heap")) ? "secure heap"
									 : "locked page");
	}
	printf("diameter: ");
	if (!json_is_true(json_object_get(d, "enabled"))) {
		printf("none\n");
	} else if (json_object_get(d, "error")) {
		printf("error: %s\n", s_of(d, "error"));
	} else {
		json_t *c = json_object_get(d, "counters"), *peers = json_object_get(d, "peers");

		printf("%s port %lld (vendor %lld, application %lld)\n", s_of(d, "identity"),
		       i_of(d, "port"), i_of(d, "vendor_id"), i_of(d, "app_id"));
		printf("          answered_ok %lld, rejected %lld, failed %lld, busy %lld, commits "
		       "%lld, queued %lld, peers_refused %lld\n",
		       i_of(c, "answered_ok"), i_of(c, "rejected"), i_of(c, "failed"),
		       i_of(c, "busy"), i_of(c, "commits"), i_of(c, "queued"),
		       i_of(c, "peers_refused"));
		if (!json_array_size(peers))
			printf("          no peers\n");
		json_array_foreach(peers, i, v)
			printf("          peer %s  %s\n", s_of(v, "identity"), s_of(v, "state"));
	}
	print_s2s(json_object_get(a, "s2s"));
	v = json_object_get(a, "naf_key_center");
	printf("naf:      ");
	if (!json_is_true(json_object_get(v, "enabled"))) {
		printf("none\n");
	} else {
		json_t *b = json_object_get(v, "bsf"), *z = json_object_get(v, "zn"),
		       *k = json_object_get(v, "keys");

		printf("port %lld, BSF %s %s; %lld key(s), %lld invalidated, %lld issued; Zn %lld "
		       "sent, %lld cache hit(s)\n",
		       i_of(v, "port"), s_of(b, "identity"),
		       json_is_true(json_object_get(b, "open")) ? "open" : "not connected",
		       i_of(k, "keys"), i_of(k, "invalidated"), i_of(k, "issued"), i_of(z, "sent"),
		       i_of(z, "cache_hits"));
	}
	print_cluster(json_object_get(a, "cluster"));
	printf("rotation: ");
	if (!json_is_true(json_object_get(rot, "enabled"))) {
		printf("none\n");
		return;
	}
	printf("%zu group(s)\n", json_array_size(json_object_get(rot, "groups")));
	json_array_foreach(json_object_get(rot, "groups"), i, v) {
		printf("group %s  period %lld s, pre-delivery %lld s, %lld rotation(s), %lld "
		       "failure(s)\n",
		       s_of(v, "group"), i_of(v, "period_s"), i_of(v, "predelivery_s"),
		       i_of(v, "rotations"), i_of(v, "failures"));
		print_msk("current", json_object_get(v, "current"));
		print_msk("next", json_object_get(v, "next"));
	}
}

static void print_answer(const char *cmd, json_t *a)
{
	if (!strcmp(cmd, "ping")) {
		printf("pong\n");
	} else if (!strcmp(cmd, "version")) {
		printf("keyline %s", s_of(a, "version"));
		if (json_object_get(a, "io_backend"))
			printf(" (io %s, crypto %s)", s_of(a, "io_backend"), s_of(a, "crypto_backend"));
		printf("\n");
	} else if (!strcmp(cmd, "import-population")) {
		printf("imported %lld ues, %lld groups, %lld emses, %lld imsis (%lld e2m keys), "
		       "%lld appids in %.1f ms\n",
		       i_of(a, "ues"), i_of(a, "groups"), i_of(a, "emses"), i_of(a, "imsis"),
		       i_of(a, "e2m_keys"), i_of(a, "appids"),
		       json_number_value(json_object_get(a, "elapsed_ms")));
	} else if (!strcmp(cmd, "count")) {
		json_t *c = json_object_get(a, "counts"), *v;
		const char *k;

		json_object_foreach(c, k, v)
			printf("%-8s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
		printf("memory   %lld bytes\n", i_of(a, "memory_bytes"));
	} else if (!strcmp(cmd, "show")) {
		print_show(a);
	} else if (!strcmp(cmd, "stats")) {
		print_stats(a);
	} else if (!strcmp(cmd, "status")) {
		print_status(a);
	} else if (!strcmp(cmd, "peers")) {
		print_peers(a);
	} else if (!strcmp(cmd, "cluster")) {
		json_t *n;
		size_t i;

		print_cluster(json_object_get(a, "self"));
		json_array_foreach(json_object_get(a, "nodes"), i, n)
			printf("node %-20s %-9s revision %lld%s, version %s, up since %lld%s\n",
			       s_of(n, "node"), s_of(n, "role"), i_of(n, "applied_revision"),
			       json_is_true(json_object_get(n, "stale")) ? " (stale)" : "",
			       s_of(n, "version"), i_of(n, "started"),
			       json_object_get(n, "error") ? " (not a node registration)" : "");
	} else if (!strcmp(cmd, "cluster-seed")) {
		printf("seeded: %lld entries uploaded\n", i_of(a, "entries"));
	} else if (!strcmp(cmd, "backup")) {
		json_t *last = json_object_get(a, "last");

		printf("backup %s: %lld bytes in %.2f s\n", s_of(last, "file"), i_of(last, "bytes"),
		       json_number_value(json_object_get(last, "seconds")));
	} else if (!strcmp(cmd, "ue-group-add") || !strcmp(cmd, "ue-group-del")) {
		json_t *v;
		size_t i;

		printf("ue %s: %s %s; groups", s_of(a, "id"), s_of(a, "result"), s_of(a, "group"));
		json_array_foreach(json_object_get(a, "groups"), i, v)
			printf("%s %s", i ? "," : "", json_string_value(v));
		printf("%s\n", json_array_size(json_object_get(a, "groups")) ? "" : " none");
	} else if (!strcmp(cmd, "naf-keys")) {
		json_t *k;
		size_t i;

		json_array_foreach(json_object_get(a, "keys"), i, k)
			printf("%s %s naf_id %s kcv %s expiry %lld%s\n", s_of(k, "b_tid"),
			       s_of(k, "device_id"), s_of(k, "naf_id"), s_of(k, "kcv"),
			       i_of(k, "expiry"),
			       json_is_true(json_object_get(k, "invalidated")) ? " invalidated" : "");
		printf("%zu key(s)\n", json_array_size(json_object_get(a, "keys")));
	} else if (!strcmp(cmd, "naf-blocklist")) {
		json_t *v;
		size_t i;

		json_array_foreach(json_object_get(a, "device_ids"), i, v)
			printf("device_id %s\n", json_string_value(v));
		json_array_foreach(json_object_get(a, "serials"), i, v)
			printf("serial %s\n", json_string_value(v));
	} else if (!strncmp(cmd, "naf-", 4)) {
		printf("%s: ok\n", cmd);
	} else if (!strcmp(cmd, "rotate")) {
		printf("group %s: rotated\n", s_of(a, "group"));
		print_msk("current", json_object_get(a, "valid_to") ? a : NULL);
	} else if (!strcmp(cmd, "put-group")) {
		printf("group %s: %s (current kcv %s", s_of(a, "id"), s_of(a, "result"),
		       s_of(a, "current_kcv"));
		if (json_object_get(a, "next_kcv"))
			printf(", next kcv %s", s_of(a, "next_kcv"));
		printf(")\n");
	} else if (!strcmp(cmd, "push-e2m")) {
		printf("imsi %s: key %lld %s (kcv %s)\n", s_of(a, "id"), i_of(a, "key_id"),
		       s_of(a, "result"), s_of(a, "kcv"));
	} else if (!strcmp(cmd, "put-appid")) {
		printf("appid %s: %s (imsi %s)\n", s_of(a, "id"), s_of(a, "result"), s_of(a, "imsi"));
	} else if (!strcmp(cmd, "ue-services")) {
		printf("ue %s: %s\n", s_of(a, "id"), s_of(a, "result"));
		print_services(a);
	} else if (json_object_get(a, "result")) { /* put-ue, put-emse, del */
		printf("%s %s: %s", s_of(a, "kind"), s_of(a, "id"), s_of(a, "result"));
		if (json_object_get(a, "kcv"))
			printf(" (kcv %s)", s_of(a, "kcv"));
		printf("\n");
	}
}

/* ---- commands --------------------------------------------------------------------------------- */

#define NOPT(spec) ((unsigned)(sizeof(spec) / sizeof((spec)[0])))

static json_t *req_new(const char *cmd)
{
	json_t *r = json_object();

	if (!r)
		die2("out of memory");
	json_object_set_new(r, "cmd", json_string(cmd));
	return r;
}

/* The hex string goes into the request; the caller's copy is wiped. */
static void set_key(json_t *r, const char *field, char *hex)
{
	json_object_set_new(r, field, json_string(hex));
	wipe_free_str(hex);
}

static json_t *build(const char *cmd, int argc, char **argv, int *timeout_s)
{
	const char *pos[3];
	json_t *r;
	unsigned n;

	if (!strcmp(cmd, "ping") || !strcmp(cmd, "version") || !strcmp(cmd, "count") ||
	    !strcmp(cmd, "status") || !strcmp(cmd, "peers") || !strcmp(cmd, "cluster") ||
	    !strcmp(cmd, "cluster-seed")) {
		parse_args(argc, argv, NULL, 0, pos, 0, cmd);
		return req_new(cmd);
	}
	if (!strcmp(cmd, "import")) {
		struct kl_pop_params p;
		char err[256], seed[24];

		if (parse_args(argc, argv, NULL, 0, pos, 1, cmd) != 1)
			die2("import: give the population FILE");
		if (kl_pop_read_file(pos[0], &p, err, sizeof(err)))
			die2("import: FILE: %s", err);
		snprintf(seed, sizeof(seed), "%" PRIu64, p.seed);
		r = req_new("import-population");
		json_object_set_new(
			r, "params",
			json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "seed", seed, "ues",
				  (json_int_t)p.ues, "groups", (json_int_t)p.groups, "emses",
				  (json_int_t)p.emses, "imsis", (json_int_t)p.imsis, "appids",
				  (json_int_t)p.appids, "e2m-keys", (json_int_t)p.e2m_keys_per_imsi,
				  "now", (json_int_t)(p.now_ntp >> 32), "msk-period",
				  (json_int_t)p.msk_period_s, "pairs", (json_int_t)p.pairs, "services",
				  (json_int_t)p.services));
		if (*timeout_s == 0)
			*timeout_s = IMPORT_TIMEOUT_S;
		return r;
	}
	if (!strcmp(cmd, "put-ue")) {
		struct opt o[] = { { .name = "muk" }, { .name = "muk-file" },
				   { .name = "group", .multi = true }, { .name = "expires" },
				   { .name = "services" } };
		struct opt *g = &o[2];
		const char *v;
		json_t *gl;

		if (parse_args(argc, argv, o, NOPT(o), pos, 1, cmd) != 1)
			die2("put-ue: give the UE's ID (IMPI or B-TID)");
		if (g->n > KL_TABLE_UE_GROUPS)
			die2("put-ue: at most %u --group", KL_TABLE_UE_GROUPS);
		r = req_new(cmd);
		json_object_set_new(r, "id", json_string(pos[0]));
		gl = json_array();
		for (unsigned i = 0; i < g->n; i++)
			json_array_append_new(gl, json_string(g->val[i]));
		json_object_set_new(r, "groups", gl);
		if ((v = opt_val(o, NOPT(o), "expires")) && strcmp(v, "never") && strcmp(v, "0"))
			json_object_set_new(r, "expires",
					    json_integer(parse_time("put-ue: --expires", v)));
		if ((v = opt_val(o, NOPT(o), "services")))
			json_object_set_new(r, "services", json_string(v));
		set_key(r, "muk", get_key(o, NOPT(o), "muk", 1, 64, true, cmd));
		return r;
	}
	if (!strcmp(cmd, "put-group")) {
		struct opt o[] = { { .name = "msk" },	      { .name = "msk-file" },
				   { .name = "msk-id" },      { .name = "valid-from" },
				   { .name = "valid-to" },    { .name = "next-msk" },
				   { .name = "next-msk-file" }, { .name = "next-msk-id" },
				   { .name = "next-valid-from" }, { .name = "next-valid-to" },
				   { .name = "key-number" }, { .name = "next-key-number" } };
		const char *v, *colon;
		int64_t from, to;
		unsigned group;
		uint64_t id;
		char *next;
		json_t *cur;

		if (parse_args(argc, argv, o, NOPT(o), pos, 1, cmd) != 1)
			die2("put-group: give the key group as DDDDDD:G");
		if (!(colon = strchr(pos[0], ':')) || colon - pos[0] != 6)
			die2("put-group: the key group must be DDDDDD:G");
		group = (unsigned)parse_num("put-group: DDDDDD:G", colon + 1, 65535);
		id = msk_id_opt(opt_val(o, NOPT(o), "key-number"), opt_val(o, NOPT(o), "msk-id"), group,
				"");
		if (!id)
			die2("put-group: --key-number N or --msk-id ID is required");
		if (!opt_val(o, NOPT(o), "valid-from") || !opt_val(o, NOPT(o), "valid-to"))
			die2("put-group: --valid-from and --valid-to are required");
		from = parse_time("put-group: --valid-from", opt_val(o, NOPT(o), "valid-from"));
		to = parse_time("put-group: --valid-to", opt_val(o, NOPT(o), "valid-to"));
		r = req_new(cmd);
		json_object_set_new(r, "group", json_string(pos[0]));
		cur = json_pack("{s:I,s:I,s:I}", "msk_id", (json_int_t)id, "valid_from",
				(json_int_t)from, "valid_to", (json_int_t)to);
		set_key(cur, "key", get_key(o, NOPT(o), "msk", 16, 16, true, cmd));
		json_object_set_new(r, "current", cur);
		next = get_key(o, NOPT(o), "next-msk", 16, 16, false, cmd);
		if (!next) {
			if (opt_val(o, NOPT(o), "next-msk-id") ||
			    opt_val(o, NOPT(o), "next-key-number") ||
			    opt_val(o, NOPT(o), "next-valid-from") ||
			    opt_val(o, NOPT(o), "next-valid-to"))
				die2("put-group: --next-* options need --next-msk or --next-msk-file");
			return r;
		}
		{
			uint64_t nid = (uint64_t)group << 16 | ((id & 0xFFFF) % 65535 + 1);
			int64_t nfrom = to, nto;
			json_t *nx;

			if (opt_val(o, NOPT(o), "next-key-number") || opt_val(o, NOPT(o), "next-msk-id"))
				nid = msk_id_opt(opt_val(o, NOPT(o), "next-key-number"),
						 opt_val(o, NOPT(o), "next-msk-id"), group, "next-");
			if ((v = opt_val(o, NOPT(o), "next-valid-from")))
				nfrom = parse_time("put-group: --next-valid-from", v);
			nto = nfrom + (to - from);
			if ((v = opt_val(o, NOPT(o), "next-valid-to")))
				nto = parse_time("put-group: --next-valid-to", v);
			if (nto > UNIX_MAX)
				die2("put-group: the next MSK would end after 2036-02-07: give "
				     "--next-valid-to");
			nx = json_pack("{s:I,s:I,s:I}", "msk_id", (json_int_t)nid, "valid_from",
				       (json_int_t)nfrom, "valid_to", (json_int_t)nto);
			set_key(nx, "key", next);
			json_object_set_new(r, "next", nx);
		}
		return r;
	}
	if (!strcmp(cmd, "put-emse")) {
		struct opt o[] = { { .name = "psk" }, { .name = "psk-file" } };

		if (parse_args(argc, argv, o, NOPT(o), pos, 1, cmd) != 1)
			die2("put-emse: give the EMSE_Id");
		r = req_new(cmd);
		json_object_set_new(r, "id", json_string(pos[0]));
		set_key(r, "psk", get_key(o, NOPT(o), "psk", 1, 64, true, cmd));
		return r;
	}
	if (!strcmp(cmd, "push-e2m")) {
		struct opt o[] = { { .name = "key" }, { .name = "key-file" }, { .name = "key-id" },
				   { .name = "expires" } };
		const char *v;

		if (parse_args(argc, argv, o, NOPT(o), pos, 1, cmd) != 1)
			die2("push-e2m: give the IMSI");
		if (!(v = opt_val(o, NOPT(o), "key-id")))
			die2("push-e2m: --key-id is required");
		r = req_new(cmd);
		json_object_set_new(r, "imsi", json_string(pos[0]));
		json_object_set_new(r, "key_id",
				    json_integer((json_int_t)parse_num("push-e2m: --key-id", v,
								       UINT32_MAX)));
		if ((v = opt_val(o, NOPT(o), "expires")) && strcmp(v, "never") && strcmp(v, "0"))
			json_object_set_new(r, "expires",
					    json_integer(parse_time("push-e2m: --expires", v)));
		set_key(r, "key", get_key(o, NOPT(o), "key", 32, 32, true, cmd));
		return r;
	}
	if (!strcmp(cmd, "put-pair")) {
		struct opt o[] = { { .name = "key" }, { .name = "key-file" }, { .name = "expires" } };
		const char *v;

		if (parse_args(argc, argv, o, NOPT(o), pos, 1, cmd) != 1)
			die2("put-pair: give the PEER server's identity");
		r = req_new(cmd);
		json_object_set_new(r, "peer", json_string(pos[0]));
		if ((v = opt_val(o, NOPT(o), "expires")) && strcmp(v, "never") && strcmp(v, "0"))
			json_object_set_new(r, "expires",
					    json_integer(parse_time("put-pair: --expires", v)));
		set_key(r, "key", get_key(o, NOPT(o), "key", 1, 64, true, cmd));
		return r;
	}
	if (!strcmp(cmd, "services")) {
		if (parse_args(argc, argv, NULL, 0, pos, 2, cmd) != 2)
			die2("services: give the UE's ID and the LIST of services (mbms,hm,dh,prose)");
		r = req_new("ue-services");
		json_object_set_new(r, "id", json_string(pos[0]));
		json_object_set_new(r, "services", json_string(pos[1]));
		return r;
	}
	if (!strcmp(cmd, "put-appid")) {
		if (parse_args(argc, argv, NULL, 0, pos, 2, cmd) != 2)
			die2("put-appid: give APPID and IMSI");
		r = req_new(cmd);
		json_object_set_new(r, "appid", json_string(pos[0]));
		json_object_set_new(r, "imsi", json_string(pos[1]));
		return r;
	}
	if (!strcmp(cmd, "del") || !strcmp(cmd, "show")) {
		n = parse_args(argc, argv, NULL, 0, pos, 2, cmd);
		if (n != 2)
			die2("%s: give KIND (ue, group, emse, imsi, appid, pair) and ID", cmd);
		r = req_new(cmd);
		json_object_set_new(r, "kind", json_string(pos[0]));
		json_object_set_new(r, "id", json_string(pos[1]));
		return r;
	}
	if (!strcmp(cmd, "group-add") || !strcmp(cmd, "group-del")) {
		if (parse_args(argc, argv, NULL, 0, pos, 2, cmd) != 2)
			die2("%s: give the UE's ID and the key group as DDDDDD:G", cmd);
		r = req_new(!strcmp(cmd, "group-add") ? "ue-group-add" : "ue-group-del");
		json_object_set_new(r, "id", json_string(pos[0]));
		json_object_set_new(r, "group", json_string(pos[1]));
		return r;
	}
	if (!strcmp(cmd, "naf-keys") || !strcmp(cmd, "naf-blocklist")) {
		parse_args(argc, argv, NULL, 0, pos, 0, cmd);
		return req_new(cmd);
	}
	if (!strcmp(cmd, "naf-invalidate")) {
		if (parse_args(argc, argv, NULL, 0, pos, 2, cmd) != 2)
			die2("naf-invalidate: give B_TID and DEVICE_ID");
		r = req_new(cmd);
		json_object_set_new(r, "b_tid", json_string(pos[0]));
		json_object_set_new(r, "device_id", json_string(pos[1]));
		return r;
	}
	if (!strcmp(cmd, "naf-block") || !strcmp(cmd, "naf-unblock")) {
		struct opt o[] = { { .name = "device-id" }, { .name = "serial" } };

		parse_args(argc, argv, o, NOPT(o), pos, 0, cmd);
		if (!!o[0].n == !!o[1].n)
			die2("%s: give --device-id ID or --serial HEX", cmd);
		r = req_new(cmd);
		json_object_set_new(r, o[0].n ? "device_id" : "serial",
				    json_string(o[0].n ? o[0].val[0] : o[1].val[0]));
		return r;
	}
	if (!strcmp(cmd, "rotate")) {
		if (parse_args(argc, argv, NULL, 0, pos, 1, cmd) != 1)
			die2("rotate: give the key group as DDDDDD:G");
		r = req_new(cmd);
		json_object_set_new(r, "group", json_string(pos[0]));
		return r;
	}
	if (!strcmp(cmd, "stats")) {
		struct opt o[] = { { .name = "worker" } };
		const char *v;

		parse_args(argc, argv, o, NOPT(o), pos, 0, cmd);
		r = req_new(cmd);
		if ((v = opt_val(o, NOPT(o), "worker")))
			json_object_set_new(r, "worker",
					    json_integer((json_int_t)parse_num("stats: --worker", v,
									       UINT32_MAX)));
		return r;
	}
	if (!strcmp(cmd, "backup")) {
		char *abs = NULL;

		if (parse_args(argc, argv, NULL, 0, pos, 1, cmd) != 1 || !*pos[0])
			die2("backup: give the FILE to write (it must not exist)");
		/* keylined runs elsewhere: a relative FILE is made absolute here */
		if (pos[0][0] != '/') {
			char *cwd = getcwd(NULL, 0);

			if (!cwd || asprintf(&abs, "%s/%s", cwd, pos[0]) < 0)
				die2("backup: cannot make FILE an absolute path");
			free(cwd);
		}
		r = req_new(cmd);
		json_object_set_new(r, "file", json_string(abs ? abs : pos[0]));
		free(abs);
		if (*timeout_s == 0)
			*timeout_s = BACKUP_TIMEOUT_S;
		return r;
	}
	die2("unknown command (argument %d; see --help)", argbase - 1);
}

/* backup: keylined copies in a thread of its own and answers "started" at once; ask until this
 * backup (its id) has finished. *line and *ans become the final backup-status answer, with the
 * backup's error at the top. @return whether the backup succeeded. */
static bool wait_backup(int fd, const char *path, int timeout_s, char **line, json_t **ans)
{
	static const char req[] = "{\"cmd\":\"backup-status\"}\n";
	json_int_t id = json_integer_value(json_object_get(*ans, "id"));
	time_t end = time(NULL) + timeout_s;

	for (;;) {
		json_t *last;

		json_decref(*ans);
		free(*line);
		poll(NULL, 0, BACKUP_POLL_MS);
		send_all(fd, req, sizeof(req) - 1, path);
		*line = recv_line(fd, timeout_s, path);
		*ans = json_loads(*line, 0, NULL);
		if (!json_is_object(*ans))
			die2("%s: the answer is not a JSON object", path);
		if (!json_is_true(json_object_get(*ans, "ok")))
			return false;
		last = json_object_get(*ans, "last");
		if (json_integer_value(json_object_get(last, "id")) == id) {
			if (json_is_true(json_object_get(last, "ok")))
				return true;
			json_object_set(*ans, "error", json_object_get(last, "error"));
			return false;
		}
		if (time(NULL) >= end)
			die2("backup: not finished within %d s (keylined goes on: see its log)",
			     timeout_s);
	}
}

int main(int argc, char **argv)
{
	const char *path = getenv("KEYLINE_ADMIN_SOCKET"), *cmd;
	int i = 1, timeout_s = 0, fd;
	char *line, *req, reqcmd[32];
	json_error_t je;
	json_t *r, *ans;
	bool ok;

	json_set_alloc_funcs(malloc, wiping_free);
	if (!path || !*path)
		path = DEFAULT_SOCKET;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--socket")) {
			if (++i >= argc)
				die2("%s needs a path", argv[i - 1]);
			path = argv[i];
			sock_label = "the -s socket";
		} else if (!strncmp(argv[i], "--socket=", 9)) {
			path = argv[i] + 9;
			sock_label = "the -s socket";
		} else if (!strcmp(argv[i], "--json")) {
			json_out = true;
		} else if (!strcmp(argv[i], "--timeout")) {
			if (++i >= argc)
				die2("--timeout needs seconds");
			timeout_s = (int)parse_num("--timeout", argv[i], 86400);
			if (!timeout_s)
				die2("--timeout: must be 1..86400 seconds");
		} else {
			die2("unknown option (argument %d; see --help)", i);
		}
	}
	if (i >= argc)
		die2("no command (see --help)");
	if (!*path)
		die2("empty socket path");
	if (!sock_label)
		sock_label = path; /* the default or $KEYLINE_ADMIN_SOCKET */
	cmd = argv[i++];
	argbase = i;
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	r = build(cmd, argc - i, argv + i, &timeout_s);
	if (!timeout_s)
		timeout_s = DEFAULT_TIMEOUT_S;
	snprintf(reqcmd, sizeof(reqcmd), "%s", json_string_value(json_object_get(r, "cmd")));
	req = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (!req)
		die2("out of memory");
	fd = connect_to(path);
	send_all(fd, req, strlen(req), sock_label);
	send_all(fd, "\n", 1, sock_label);
	wipe_free_str(req);
	line = recv_line(fd, timeout_s, sock_label);
	ans = json_loads(line, 0, &je);
	if (!json_is_object(ans))
		die2("%s: the answer is not a JSON object", sock_label);
	ok = json_is_true(json_object_get(ans, "ok"));
	if (ok && !strcmp(reqcmd, "backup"))
		ok = wait_backup(fd, sock_label, timeout_s, &line, &ans);
	close(fd);
	if (json_out)
		printf("%s\n", line);
	else if (ok)
		print_answer(reqcmd, ans);
	if (ok && !json_out) {
		json_t *w;
		size_t k;

		json_array_foreach(json_object_get(ans, "warnings"), k, w)
			fprintf(stderr, "%s: warning: %s\n", prog, json_string_value(w));
	}
	if (!ok)
		fprintf(stderr, "%s: %s\n", prog,
			json_string_value(json_object_get(ans, "error"))
				? json_string_value(json_object_get(ans, "error"))
				: "keylined refused the request");
	free(line);
	json_decref(ans);
	return ok ? 0 : 1;
}
