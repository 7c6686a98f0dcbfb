/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-hss-sim: the HSS/BSF side of keyline's Diameter key feed, for tests and load.
 * A freeDiameter client peer (Diameter over TLS) of keylined. From a subscriber's K/OPc it runs
 * Milenage for CK/IK, derives the keys of PROTOCOL.md section 7 (e2m_int_key and its key id,
 * the MUK = Ks_(ext)_NAF) and pushes them; it also registers EMSEs, application identities and
 * MBMS key-group authorisations, and removes entries. Bulk mode pushes N generated subscribers
 * with a window of outstanding requests and reports pushes/s. Keys are never printed: results
 * are JSON lines with key check values.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_cli_opt.h"
#include "kl_crypto.h"
#include "kl_diameter.h"
#include "kl_population.h"
#include "kl_util.h"
#include "kl_diameter_priv.h"
#include "kl_zn_priv.h"

#define MAX_OPTS 48
#define NTP_UNIX_OFFSET 2208988800ull

/* Exit statuses */
#define EX_OK 0
#define EX_REFUSED 1 /* an answer other than DIAMETER_SUCCESS, or none */
#define EX_USAGE 2
#define EX_CONNECT 3

static struct kl_cli_opt opts[MAX_OPTS];
static unsigned nopts;
static const char *cmd;
static int cmd_ok; /* cmd is a known command: only then may messages name it */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keyline-hss-sim%s%s: ", cmd_ok ? " " : "", cmd_ok ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EX_USAGE);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keyline-hss-sim CONNECTION COMMAND [--option VALUE]...\n"
		"connection:\n"
		"  --identity FQDN [--realm R] --cert PEM --key PEM --ca PEM [--listen ADDR]\n"
		"      (or --fd-conf FILE: a freeDiameter configuration with its ConnectPeer)\n"
		"  --peer FQDN@ADDR[:PORT]      keylined's Diameter identity and address (IPv6: [ADDR])\n"
		"  [--vendor N] [--app N] [--timeout-ms MS (5000)] [--log-level error|warning|info|debug]\n"
		"commands (hex values; T = unix seconds; keys only as KCVs in the output):\n"
		"  push-e2m --k HEX (--opc HEX | --op HEX) --rand HEX --sqn HEX --amf HEX --imsi DIGITS\n"
		"           [--expires T]       Milenage -> CK,IK -> e2m_int_key, key id = RAND's 32 LSBs\n"
		"  push-muk --k HEX (--opc|--op) --rand HEX --sqn HEX --amf HEX --impi TEXT\n"
		"           (--naf-id HEX | --bmsc-fqdn FQDN) [--btid TEXT] [--expires T]\n"
		"           [--services LIST]   MUK = Ks_(ext)_NAF(CK||IK, RAND, IMPI, NAF_Id), pushed for\n"
		"                               the B-TID when given, else the IMPI; LIST: mbms,hm,dh,prose\n"
		"                               (KL-Services; absent: the UE keeps its services)\n"
		"  put-appid --appid TEXT --imsi DIGITS\n"
		"  put-emse --emse-id TEXT --psk-file FILE   (the PSK as hex in the file, 16..64 bytes)\n"
		"  put-ue-groups --id TEXT [--group DDDDDD:G]...   (the UE's whole set, at most 4)\n"
		"  put-pair --peer-id TEXT --key-file FILE [--expires T]\n"
		"                               the pair key K(keylined, peer server), hex in the file\n"
		"  remove --type muk|e2m|appid|emse|ue-groups|pair (--id TEXT | --imsi DIGITS)\n"
		"         [--key-id HEX] [--group DDDDDD:G]...\n"
		"  bulk [--kind e2m] --n N [--seed S] [--window W (64)] [--ack-log FILE]\n"
		"       [--imsi-base DIGITS (00101)]\n"
		"       [--expires T]           N generated subscribers' e2m_int_keys, as fast as the\n"
		"                               answers allow; every acknowledged push is appended to\n"
		"                               the ack log (IMSI, key id, KCV) after its success arrived\n"
		"  bulk --kind replace --population FILE --seed S [--first I] [--n N] [--window W]\n"
		"       [--ack-log FILE] [--expires T]\n"
		"                               e2m_int_key replacements for a keyline-population file\n"
		"                               (TEST KEYS): from IMSI index I on, every key id of the\n"
		"                               file gets the key the same population has under seed S\n"
		"  bsf --port P --ues N --seed S --ue-file FILE [--runs R (1)] [--ks-lifetime S (3600)]\n"
		"      [--expired I,...] [--not-authorised I,...]\n"
		"      [--bad-answer no-key|short-key|no-expiry|dup-origin:I,...] (options repeatable)\n"
		"      [--bsf-domain D (bsf.keyline.test)] [--bir-log FILE]\n"
		"                               the BSF (TS 29.109 Zn server): listens on P, bootstraps N\n"
		"                               UEs R times (Milenage, B-TID = base64(RAND)@D), writes\n"
		"                               what the MT holds to FILE (0600, TEST KEYS), answers\n"
		"                               Bootstrapping-Info-Requests until SIGTERM (no --peer);\n"
		"                               --bir-log: one line per BIR answered (B-TID, NAF-Id in\n"
		"                               hex, what the answer was)\n"
		"exit: 0 success, 1 refused or unanswered, 2 bad arguments, 3 no connection\n");
}

static const char *get(const char *name)
{
	const char *v;

	if (kl_cli_opt_get(opts, nopts, name, &v))
		die("--%s given twice", name);
	return v;
}

static const char *need(const char *name)
{
	const char *v = get(name);

	if (!v)
		die("missing --%s", name);
	return v;
}

/* After a command took its options: anything left is a mistake. */
static void no_leftovers(void)
{
	for (unsigned i = 0; i < nopts; i++)
		if (!opts[i].used)
			die("argument %d: unknown option for this command", opts[i].pos);
}

static void hex(const char *what, const char *s, uint8_t *out, size_t want)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (n != 2 * want)
		die("--%s: want %zu bytes of hex", what, want);
	for (size_t i = 0; i < want; i++) {
		int hi = kl_hexval(s[2 * i]), lo = kl_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			die("--%s: not hex", what);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
}

/* Hex of 1..max bytes; @return the length. */
static size_t hex_var(const char *what, const char *s, uint8_t *out, size_t max)
{
	size_t n = 0, k = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;

		if (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
			continue;
		if ((v = kl_hexval(*s)) < 0)
			die("%s: not hex", what);
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (k == max)
			die("%s: longer than %zu bytes", what, max);
		out[k++] = (uint8_t)(hi << 4 | v);
		hi = -1;
		n++;
	}
	if (hi >= 0)
		die("%s: odd number of hex digits", what);
	return n;
}

static unsigned long long number(const char *what, const char *s, int base,
				 unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, base);
	if (!*s || *end || errno || v > max || *s == '-')
		die("--%s: want a number up to %llu", what, max);
	return v;
}

static void imsi_opt(const char *s, char out[KL_DIAMETER_IMSI_MAX + 1])
{
	size_t n = strlen(s);

	if (!n || n > KL_DIAMETER_IMSI_MAX || strspn(s, "0123456789") != n)
		die("--imsi: want 1..15 decimal digits");
	memcpy(out, s, n + 1);
}

static void text_id(const char *what, const char *s, struct kl_diameter_entry *e)
{
	size_t n = strlen(s);

	if (!n || n > KL_DIAMETER_ID_MAX)
		die("--%s: 1..%u bytes", what, KL_DIAMETER_ID_MAX);
	memcpy(e->id, s, n);
	e->id_len = (uint16_t)n;
}

static uint64_t expires_opt(void)
{
	const char *v = get("expires");
	unsigned long long t;

	if (!v)
		return 0;
	t = number("expires", v, 10, 0xFFFFFFFFull - NTP_UNIX_OFFSET);
	return t ? (t + NTP_UNIX_OFFSET) << 32 : 0;
}

static void groups_opt(struct kl_diameter_entry *e)
{
	for (unsigned i = 0; i < nopts; i++) {
		const char *s = opts[i].val, *colon;
		struct kl_diameter_group *g;

		if (strcmp(opts[i].name, "group"))
			continue;
		opts[i].used = 1;
		if (e->ngroups == KL_DIAMETER_MAX_GROUPS)
			die("more than %u --group", KL_DIAMETER_MAX_GROUPS);
		g = &e->groups[e->ngroups++];
		colon = strchr(s, ':');
		if (!colon || colon - s != 6)
			die("--group: want DDDDDD:G (Key Domain ID as 6 hex digits, key group)");
		{
			char dom[7];

			memcpy(dom, s, 6);
			dom[6] = 0;
			hex("group", dom, g->domain, 3);
		}
		g->group = (uint16_t)number("group", colon + 1, 10, 65535);
	}
}

static void kcv_str(const uint8_t *k, size_t n, char out[7])
{
	uint8_t c[KL_KCV_LEN];

	if (kl_kcv(k, n, c) < 0)
		snprintf(out, 7, "??????");
	else
		snprintf(out, 7, "%02x%02x%02x", c[0], c[1], c[2]);
}

/* Milenage from --k, --opc|--op, --rand, --sqn, --amf: CK||IK into ckik, RAND into rand. */
static void av_opts(uint8_t ckik[32], uint8_t rand[16])
{
	struct kl_milenage_out o;
	uint8_t k[16], opc[16], sqn[6], amf[2];

	hex("k", need("k"), k, 16);
	if (get("op") && get("opc"))
		die("give --op or --opc, not both");
	if (get("op")) {
		uint8_t op[16];

		hex("op", get("op"), op, 16);
		if (kl_milenage_opc(k, op, opc) < 0)
			die("OPc computation failed");
		kl_memzero(op, sizeof(op));
	} else {
		hex("opc", need("opc"), opc, 16);
	}
	hex("rand", need("rand"), rand, 16);
	hex("sqn", need("sqn"), sqn, 6);
	hex("amf", need("amf"), amf, 2);
	if (kl_milenage(k, opc, rand, sqn, amf, &o) < 0)
		die("milenage failed");
	memcpy(ckik, o.ck, 16);
	memcpy(ckik + 16, o.ik, 16);
	kl_memzero(&o, sizeof(o));
	kl_memzero(k, sizeof(k));
	kl_memzero(opc, sizeof(opc));
}

/* ---- one request, waited for ------------------------------------------------------------- */

struct waiter {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int done;
	uint32_t rc;
};

static void wait_done(void *arg, uint32_t rc)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->m);
	w->rc = rc;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kl_diameter *g_c;
static unsigned g_timeout_ms = 5000;

/* Send e, wait for the answer, print one JSON line (extra: more "key":value pairs). */
static int send_one(struct kl_diameter_entry *e, const char *extra)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	double t0 = now_s();
	int rc = kl_diameter_client_send(g_c, e, g_timeout_ms, wait_done, &w);

	kl_memzero(e->key, sizeof(e->key));
	if (rc) {
		fprintf(stderr, "keyline-hss-sim %s: cannot send: %s\n", cmd, strerror(-rc));
		return EX_CONNECT;
	}
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.m);
	pthread_mutex_unlock(&w.m);
	printf("{\"command\":\"%s\",\"type\":\"%s\",\"result\":%u,\"result_name\":\"%s\","
	       "\"elapsed_ms\":%.1f%s%s}\n",
	       cmd, kl_diameter_type_name(e->type), w.rc,
	       w.rc ? kl_diameter_result_name(w.rc) : "no answer", (now_s() - t0) * 1000.0,
	       extra && *extra ? "," : "", extra ? extra : "");
	fflush(stdout);
	return w.rc == KL_DIAMETER_SUCCESS ? EX_OK : EX_REFUSED;
}

/* ---- commands: each checks its options and builds the request before we connect ---------- */

static struct kl_diameter_entry g_e;
static char g_extra[400];

/* The key (16..64 bytes of hex) from a file into e, its KCV into the output; e becomes the
 * request and is wiped. */
static void key_file(const char *what, const char *path, struct kl_diameter_entry *e)
{
	char buf[512], kcv[7];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		die("%s: %s", what, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (!feof(f))
		die("%s: longer than %zu bytes", what, sizeof(buf) - 1);
	fclose(f);
	buf[n] = 0;
	n = hex_var(what, buf, e->key, KL_DIAMETER_KEY_MAX);
	kl_memzero(buf, sizeof(buf));
	if (n < KL_DIAMETER_KEY_MIN)
		die("%s: want %u..%u bytes of hex", what, KL_DIAMETER_KEY_MIN, KL_DIAMETER_KEY_MAX);
	e->key_len = (uint8_t)n;
	kcv_str(e->key, e->key_len, kcv);
	if (memchr(e->id, '"', e->id_len) || memchr(e->id, '\\', e->id_len))
		snprintf(g_extra, sizeof(g_extra), "\"kcv\":\"%s\"", kcv);
	else
		snprintf(g_extra, sizeof(g_extra), "\"id\":\"%.*s\",\"kcv\":\"%s\"",
			 (int)e->id_len, (const char *)e->id, kcv);
	g_e = *e;
	kl_memzero(e, sizeof(*e));
}

/* KL-Services from a list of names (the key table's services: kl_diameter.h's bits); NULL:
 * absent (0). */
static uint8_t services_opt(const char *list)
{
	uint8_t bits = 0;
	unsigned bad = 0;

	if (list && kl_service_parse(list, &bits, &bad))
		die("--services: item %u is not mbms, hm, dh or prose, or is listed twice", bad);
	return bits;
}

static void cmd_push_e2m(struct kl_crypto *c)
{
	struct kl_diameter_entry e = { 0 };
	uint8_t ckik[32], rand[16];
	char kcv[7];

	e.op = KL_DIAMETER_PUSH;
	e.type = KL_DIAMETER_E2M;
	av_opts(ckik, rand);
	imsi_opt(need("imsi"), e.imsi);
	e.expires = expires_opt();
	no_leftovers();
	if (kl_derive(c, KL_KDF_E2M_INT, ckik, sizeof(ckik), NULL, 0, e.key) < 0)
		die("e2m_int_key derivation failed");
	kl_memzero(ckik, sizeof(ckik));
	e.key_len = KL_DIAMETER_E2M_KEY_LEN;
	e.key_id = kl_e2m_key_id(rand);
	e.has_key_id = 1;
	kcv_str(e.key, e.key_len, kcv);
	snprintf(g_extra, sizeof(g_extra), "\"imsi\":\"%s\",\"key_id\":\"%08x\",\"kcv\":\"%s\"",
		 e.imsi, e.key_id, kcv);
	g_e = e;
	kl_memzero(&e, sizeof(e));
}

static void cmd_push_muk(struct kl_crypto *c)
{
	struct kl_diameter_entry e = { 0 };
	struct kl_kdf_param v[3];
	uint8_t ckik[32], rand[16], naf[300];
	const char *impi, *btid, *nafhex, *fqdn;
	char kcv[7];
	size_t nl;

	e.op = KL_DIAMETER_PUSH;
	e.type = KL_DIAMETER_MUK;
	av_opts(ckik, rand);
	impi = need("impi");
	btid = get("btid");
	nafhex = get("naf-id");
	fqdn = get("bmsc-fqdn");
	if (!!nafhex == !!fqdn)
		die("give --naf-id or --bmsc-fqdn");
	if (fqdn) {
		/* MBMS: NAF_Id = BM-SC FQDN || Ua security protocol id 01 00 00 00 01 */
		nl = strlen(fqdn);
		if (!nl || nl > sizeof(naf) - 5)
			die("--bmsc-fqdn: 1..%zu bytes", sizeof(naf) - 5);
		memcpy(naf, fqdn, nl);
		memcpy(naf + nl, "\x01\x00\x00\x00\x01", 5);
		nl += 5;
	} else {
		nl = hex_var("--naf-id", nafhex, naf, sizeof(naf));
		if (!nl)
			die("--naf-id: empty");
	}
	text_id(btid ? "btid" : "impi", btid ? btid : impi, &e);
	if (strlen(impi) > 65535)
		die("--impi: too long");
	e.expires = expires_opt();
	e.services = services_opt(get("services"));
	no_leftovers();
	v[0] = (struct kl_kdf_param){ rand, 16 };
	v[1] = (struct kl_kdf_param){ (const uint8_t *)impi, strlen(impi) };
	v[2] = (struct kl_kdf_param){ naf, nl };
	if (kl_derive(c, KL_KDF_KS_NAF, ckik, sizeof(ckik), v, 3, e.key) < 0)
		die("MUK derivation failed");
	kl_memzero(ckik, sizeof(ckik));
	e.key_len = KL_KDF_OUT_LEN;
	kcv_str(e.key, e.key_len, kcv);
	/* the identity is echoed only when it needs no JSON escaping */
	if (memchr(e.id, '"', e.id_len) || memchr(e.id, '\\', e.id_len))
		snprintf(g_extra, sizeof(g_extra), "\"kcv\":\"%s\"", kcv);
	else
		snprintf(g_extra, sizeof(g_extra), "\"id\":\"%.*s\",\"kcv\":\"%s\"", (int)e.id_len,
			 (const char *)e.id, kcv);
	g_e = e;
	kl_memzero(&e, sizeof(e));
}

static void cmd_put_appid(void)
{
	struct kl_diameter_entry e = { 0 };

	e.op = KL_DIAMETER_PUSH;
	e.type = KL_DIAMETER_APPID;
	text_id("appid", need("appid"), &e);
	imsi_opt(need("imsi"), e.imsi);
	no_leftovers();
	g_e = e;
}

/* put-emse, put-pair: an identity and a key from a file (pair keys: with an expiry). */
static void cmd_key_push(enum kl_diameter_type type, const char *id_opt, const char *file_opt)
{
	struct kl_diameter_entry e = { 0 };
	char what[32];
	const char *path;

	e.op = KL_DIAMETER_PUSH;
	e.type = type;
	text_id(id_opt, need(id_opt), &e);
	path = need(file_opt);
	if (type == KL_DIAMETER_PAIR)
		e.expires = expires_opt();
	no_leftovers();
	snprintf(what, sizeof(what), "--%s", file_opt);
	key_file(what, path, &e);
}

static void cmd_put_ue_groups(void)
{
	struct kl_diameter_entry e = { 0 };

	e.op = KL_DIAMETER_PUSH;
	e.type = KL_DIAMETER_UE_GROUPS;
	text_id("id", need("id"), &e);
	groups_opt(&e);
	no_leftovers();
	g_e = e;
}

static void cmd_remove(void)
{
	struct kl_diameter_entry e = { 0 };
	const char *t = need("type");
	unsigned i;

	for (i = 1; i <= KL_DIAMETER_TYPE_LAST &&
		    strcmp(t, kl_diameter_type_name((enum kl_diameter_type)i));
	     i++)
		;
	if (i > KL_DIAMETER_TYPE_LAST)
		die("--type: muk, e2m, appid, emse, ue-groups or pair");
	e.op = KL_DIAMETER_REMOVE;
	e.type = (enum kl_diameter_type)i;
	if (e.type == KL_DIAMETER_E2M) {
		imsi_opt(need("imsi"), e.imsi);
		if (get("key-id")) {
			e.key_id = (uint32_t)number("key-id", get("key-id"), 16, 0xFFFFFFFFull);
			e.has_key_id = 1;
		}
	} else {
		text_id("id", need("id"), &e);
		if (e.type == KL_DIAMETER_UE_GROUPS)
			groups_opt(&e);
	}
	no_leftovers();
	g_e = e;
}

/* ---- bulk ---------------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void fill(uint64_t *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(s);

		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
}

struct bulk_req;

struct bulk {
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned outstanding;
	struct bulk_req *oldest, *newest; /* outstanding pushes in send order */
	int gave_up; /* a push passed its deadline: answers still to come are dropped */
	uint64_t ok, failed, no_answer, busy_retries;
	uint64_t *retry; /* subscriber indices answered TOO_BUSY, to send again */
	size_t nretry;
	FILE *ack;
	struct kl_crypto *c;
	uint64_t seed;
	const char *imsi_base;
	uint64_t expires;
	int lost;
	/* --kind replace: e2m_int_key replacements for the IMSIs of a test population */
	int replace;
	struct kl_pop_params pop;
	uint64_t first;
};

struct bulk_req {
	struct bulk *b;
	struct bulk_req *prev, *next; /* b->oldest .. b->newest */
	double sent;		      /* now_s() when sent */
	uint64_t idx;
	char imsi[KL_DIAMETER_IMSI_MAX + 1];
	uint32_t key_id;
	char kcv[7];
};

/* --kind replace: push idx is key k = idx % keys-per-IMSI of IMSI first + idx / keys-per-IMSI of
 * a test population: its IMSI and key id as the population file has them, its key as the same
 * population under --seed has it. A key id the server holds is replaced in place. */
static int replace_subscriber(struct bulk *b, uint64_t idx, struct kl_diameter_entry *e,
			      char kcv[7])
{
	struct kl_pop_params alt = b->pop;
	struct kl_pop_e2m orig, repl;
	uint32_t imsi = (uint32_t)(b->first + idx / b->pop.e2m_keys_per_imsi);
	unsigned k = (unsigned)(idx % b->pop.e2m_keys_per_imsi);
	int rc;

	memset(e, 0, sizeof(*e));
	alt.seed = b->seed;
	rc = kl_pop_e2m(&b->pop, imsi, k, &orig);
	if (!rc)
		rc = kl_pop_e2m(&alt, imsi, k, &repl);
	if (!rc) {
		e->op = KL_DIAMETER_PUSH;
		e->type = KL_DIAMETER_E2M;
		memcpy(e->imsi, orig.imsi, sizeof(e->imsi));
		e->key_len = 32;
		memcpy(e->key, repl.key, 32);
		e->has_key_id = 1;
		e->key_id = orig.key_id;
		e->expires = b->expires;
		kcv_str(e->key, 32, kcv);
	}
	kl_memzero(&orig, sizeof(orig));
	kl_memzero(&repl, sizeof(repl));
	return rc;
}

/* Subscriber idx: K, OPc, RAND from the seed; SQN = idx; AMF 8000. */
static int subscriber(struct bulk *b, uint64_t idx, struct kl_diameter_entry *e, char kcv[7])
{
	struct kl_milenage_out o;
	uint8_t k[16], opc[16], rand[16], sqn[6], amf[2] = { 0x80, 0x00 }, ckik[32];
	uint64_t s = b->seed ^ (idx * 0xD1B54A32D192ED03ull);
	size_t bl = strlen(b->imsi_base);
	int rc;

	fill(&s, k, 16);
	fill(&s, opc, 16);
	fill(&s, rand, 16);
	for (int i = 0; i < 6; i++)
		sqn[i] = (uint8_t)(idx >> (8 * (5 - i)));
	memset(e, 0, sizeof(*e));
	e->op = KL_DIAMETER_PUSH;
	e->type = KL_DIAMETER_E2M;
	snprintf(e->imsi, sizeof(e->imsi), "%s%0*llu", b->imsi_base, (int)(15 - bl),
		 (unsigned long long)idx);
	rc = kl_milenage(k, opc, rand, sqn, amf, &o);
	memcpy(ckik, o.ck, 16);
	memcpy(ckik + 16, o.ik, 16);
	if (!rc)
		rc = kl_derive(b->c, KL_KDF_E2M_INT, ckik, 32, NULL, 0, e->key);
	kl_memzero(&o, sizeof(o));
	kl_memzero(k, sizeof(k));
	kl_memzero(opc, sizeof(opc));
	kl_memzero(ckik, sizeof(ckik));
	e->key_len = 32;
	e->key_id = kl_e2m_key_id(rand);
	e->has_key_id = 1;
	e->expires = b->expires;
	kcv_str(e->key, 32, kcv);
	return rc;
}

/* Under b->m: r leaves the outstanding list. */
static void bulk_unlink(struct bulk *b, struct bulk_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		b->oldest = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		b->newest = r->prev;
}

static void bulk_done(void *arg, uint32_t rc)
{
	struct bulk_req *r = arg;
	struct bulk *b = r->b;

	pthread_mutex_lock(&b->m);
	if (b->gave_up) { /* run_bulk has returned: only r is ours */
		pthread_mutex_unlock(&b->m);
		free(r);
		return;
	}
	bulk_unlink(b, r);
	b->outstanding--;
	if (rc == KL_DIAMETER_SUCCESS) {
		b->ok++;
		if (b->ack) {
			fprintf(b->ack, "%s %08x %s\n", r->imsi, r->key_id, r->kcv);
			fflush(b->ack);
		}
	} else if (rc == KL_DIAMETER_TOO_BUSY) {
		b->busy_retries++;
		b->retry[b->nretry++] = r->idx;
	} else if (!rc) {
		b->no_answer++;
	} else {
		b->failed++;
		if (rc == 3002) /* unable to deliver: the connection is gone */
			b->lost = 1;
	}
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->m);
	free(r);
}

static struct bulk g_b = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
static unsigned long long g_bulk_n, g_bulk_window;

static void cmd_bulk(struct kl_crypto *c)
{
	struct bulk *b = &g_b;
	const char *ack = get("ack-log"), *kind = get("kind");

	if (kind && strcmp(kind, "e2m") && strcmp(kind, "replace"))
		die("--kind: e2m or replace");
	b->replace = kind && !strcmp(kind, "replace");
	if (b->replace) {
		char err[256];
		uint64_t total;

		if (kl_pop_read_file(need("population"), &b->pop, err, sizeof(err)))
			die("--population: %s", err);
		b->seed = number("seed", need("seed"), 0, ~0ull);
		b->first = get("first") ? number("first", get("first"), 10, b->pop.imsis) : 0;
		total = (uint64_t)(b->pop.imsis - b->first) * b->pop.e2m_keys_per_imsi;
		g_bulk_n = get("n") ? number("n", get("n"), 10, total) : total;
		if (!g_bulk_n)
			die("--population: no E2M keys to replace");
	} else if (get("population") || get("first")) {
		die("--population and --first go with --kind replace");
	}
	if (!b->replace)
		g_bulk_n = number("n", need("n"), 10, 100000000ull);
	if (!b->replace)
		b->seed = get("seed") ? number("seed", get("seed"), 0, ~0ull) : 1;
	g_bulk_window = get("window") ? number("window", get("window"), 10, 100000) : 64;
	if (!g_bulk_window)
		die("--window: at least 1");
	b->imsi_base = get("imsi-base") ? get("imsi-base") : "00101";
	if (!*b->imsi_base || strlen(b->imsi_base) > 10 ||
	    strspn(b->imsi_base, "0123456789") != strlen(b->imsi_base))
		die("--imsi-base: 1..10 digits");
	b->expires = expires_opt();
	no_leftovers();
	b->c = c;
	b->retry = calloc(g_bulk_window + 1, sizeof(uint64_t));
	if (!b->retry)
		die("out of memory");
	if (ack && !(b->ack = fopen(ack, "a")))
		die("--ack-log: %s", strerror(errno));
}

/*
 * Under b->m: wait for a change, at most until the oldest outstanding push's deadline: every push
 * gets its answer or its timeout callback within --timeout-ms, but freeDiameter 1.2.1 drops the
 * answers of a connection the server closes mid-push with no callback at all (README, "TLS
 * race"): a push still outstanding 2 s past its timeout ends the run. @return 0, or -1 then.
 */
static int bulk_wait(struct bulk *b)
{
	struct timespec ts;
	double due, late;

	if (!b->oldest) {
		pthread_cond_wait(&b->cv, &b->m);
		return 0;
	}
	due = b->oldest->sent + g_timeout_ms / 1000.0 + 2.0;
	late = due - now_s();
	if (late > 0) {
		clock_gettime(CLOCK_REALTIME, &ts); /* the condition's clock */
		ts.tv_sec += (time_t)late;
		ts.tv_nsec += (long)((late - (double)(time_t)late) * 1e9);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&b->cv, &b->m, &ts);
		if (!b->oldest || b->oldest->sent + g_timeout_ms / 1000.0 + 2.0 > now_s())
			return 0;
	}
	fprintf(stderr,
		"keyline-hss-sim bulk: %u pushes unanswered, the oldest for %.1f s (--timeout-ms %u "
		"+ 2 s): the connection was lost with no answer (freeDiameter dropped them); "
		"giving up\n",
		b->outstanding, now_s() - b->oldest->sent, g_timeout_ms);
	b->gave_up = 1;
	b->no_answer += b->outstanding;
	b->outstanding = 0;
	return -1;
}

static int run_bulk(void)
{
	struct bulk *b = &g_b;
	unsigned long long n = g_bulk_n, window = g_bulk_window;
	uint64_t next = 0;
	double t0, dt;
	int stopped = 0;

	t0 = now_s();
	pthread_mutex_lock(&b->m);
	for (;;) {
		struct kl_diameter_entry e;
		struct bulk_req *r;
		uint64_t idx;
		int rc;

		while (!stopped &&
		       (b->outstanding >= window || (!b->nretry && next == n && b->outstanding)))
			if (bulk_wait(b))
				stopped = 1;
		if (b->lost || stopped || (!b->nretry && next == n))
			break;
		if (b->nretry) {
			idx = b->retry[--b->nretry];
			pthread_mutex_unlock(&b->m);
			/* the server's queue was full: give its control thread a moment */
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		} else {
			idx = next++;
			pthread_mutex_unlock(&b->m);
		}
		r = malloc(sizeof(*r));
		if (!r || (b->replace ? replace_subscriber(b, idx, &e, r->kcv)
				      : subscriber(b, idx, &e, r->kcv)))
			die("subscriber %llu: %s", (unsigned long long)idx,
			    r ? "derivation failed" : "out of memory");
		r->b = b;
		r->idx = idx;
		memcpy(r->imsi, e.imsi, sizeof(r->imsi));
		r->key_id = e.key_id;
		pthread_mutex_lock(&b->m);
		b->outstanding++;
		r->sent = now_s();
		r->next = NULL;
		r->prev = b->newest;
		if (b->newest)
			b->newest->next = r;
		else
			b->oldest = r;
		b->newest = r;
		pthread_mutex_unlock(&b->m);
		rc = kl_diameter_client_send(g_c, &e, g_timeout_ms, bulk_done, r);
		kl_memzero(e.key, sizeof(e.key));
		pthread_mutex_lock(&b->m);
		if (rc) {
			bulk_unlink(b, r);
			b->outstanding--;
			free(r);
			fprintf(stderr, "keyline-hss-sim bulk: cannot send: %s\n", strerror(-rc));
			stopped = 1;
		}
	}
	/* wait for what is still in flight (each at most until its deadline) */
	while (b->outstanding && !b->gave_up)
		bulk_wait(b);
	pthread_mutex_unlock(&b->m);
	dt = now_s() - t0;
	printf("{\"command\":\"bulk\",\"kind\":\"%s\",\"n\":%llu,\"ok\":%llu,\"failed\":%llu,\"no_answer\":%llu,"
	       "\"busy_retries\":%llu,\"window\":%llu,\"seconds\":%.3f,\"pushes_per_s\":%.0f}\n",
	       b->replace ? "replace" : "e2m", n, (unsigned long long)b->ok, (unsigned long long)b->failed,
	       (unsigned long long)b->no_answer, (unsigned long long)b->busy_retries, window, dt,
	       dt > 0 ? (double)b->ok / dt : 0.0);
	fflush(stdout);
	pthread_mutex_lock(&b->m); /* a late callback (gave_up) touches neither */
	if (b->ack)
		fclose(b->ack);
	b->ack = NULL;
	free(b->retry);
	b->retry = NULL;
	b->gave_up = 1;
	pthread_mutex_unlock(&b->m);
	return b->ok == n ? EX_OK : EX_REFUSED;
}

/* ---- bsf: the BSF role (TS 29.109 Zn server), /work/contract/BSF_SIM.md ------------------- */

enum bsf_mode {
	BSF_NORMAL = 0,
	BSF_EXPIRED,
	BSF_NOT_AUTH,
	BSF_NO_KEY,
	BSF_SHORT_KEY,
	BSF_NO_EXPIRY,
	BSF_DUP_ORIGIN /* Origin-Host and Origin-Realm twice: the BIA breaks its command's rules */
};

struct bsf_ue {
	char btid[96];
	char impi[48];
	uint8_t ckik[32], rand[16];
	uint64_t expires, created; /* Unix seconds */
	uint8_t mode;
};

static struct {
	struct bsf_ue *ue;
	size_t n;
	struct kl_zn_dict dict;
	pthread_mutex_t m;
	uint64_t ok, unknown, not_auth, expired, bad, missing;
	FILE *bir_log; /* --bir-log */
} g_bsf = { .m = PTHREAD_MUTEX_INITIALIZER };

static int bsf_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bsf_ue *)a)->btid, ((const struct bsf_ue *)b)->btid);
}

/* Repeatable --NAME I,J,... (with prefix MODE: for --bad-answer): mark those UE indices. */
static void bsf_marks(const char *name, uint8_t *marks, unsigned long long n)
{
	for (unsigned i = 0; i < nopts; i++) {
		const char *s = opts[i].val;
		uint8_t mode;
		char item[32];

		if (strcmp(opts[i].name, name))
			continue;
		opts[i].used = 1;
		if (!strcmp(name, "expired")) {
			mode = BSF_EXPIRED;
		} else if (!strcmp(name, "not-authorised")) {
			mode = BSF_NOT_AUTH;
		} else if (!strncmp(s, "no-key:", 7)) {
			mode = BSF_NO_KEY;
			s += 7;
		} else if (!strncmp(s, "short-key:", 10)) {
			mode = BSF_SHORT_KEY;
			s += 10;
		} else if (!strncmp(s, "no-expiry:", 10)) {
			mode = BSF_NO_EXPIRY;
			s += 10;
		} else if (!strncmp(s, "dup-origin:", 11)) {
			mode = BSF_DUP_ORIGIN;
			s += 11;
		} else {
			die("--bad-answer: want no-key|short-key|no-expiry|dup-origin:I,...");
		}
		while (*s) {
			size_t l = strcspn(s, ",");
			unsigned long long idx;

			if (!l || l >= sizeof(item))
				die("--%s: want UE indices I,J,...", name);
			memcpy(item, s, l);
			item[l] = 0;
			idx = number(name, item, 10, n ? n - 1 : 0);
			if (marks[idx])
				die("--%s: UE %llu is listed twice (or in two of the lists)", name, idx);
			marks[idx] = mode;
			s += l;
			if (*s)
				s++;
		}
	}
}

static void put_ntp(uint8_t b[4], uint64_t unix_s)
{
	uint32_t t = (uint32_t)(unix_s + NTP_UNIX_OFFSET);

	b[0] = (uint8_t)(t >> 24);
	b[1] = (uint8_t)(t >> 16);
	b[2] = (uint8_t)(t >> 8);
	b[3] = (uint8_t)t;
}

static int bsf_experimental(struct msg *ans, uint32_t code)
{
	struct kl_zn_dict *k = &g_bsf.dict;
	struct avp *g = NULL;
	int rc;

	if ((rc = fd_msg_add_origin(ans, 0)) || (rc = fd_msg_avp_new(k->exp_result, 0, &g)))
		return rc;
	if ((rc = kl_dia_add_u32(g, k->vendor_id, KL_ZN_VENDOR_ID)) ||
	    (rc = kl_dia_add_u32(g, k->exp_result_code, code)) ||
	    (rc = fd_msg_avp_add(ans, MSG_BRW_LAST_CHILD, g)))
		fd_msg_free((struct msg *)g);
	return rc;
}

/* One OctetString AVP of the request, copied (0: absent). */
static size_t bsf_take(struct msg *req, struct dict_object *model, uint8_t *out, size_t cap)
{
	struct avp *a = NULL;
	struct avp_hdr *h;

	if (fd_msg_search_avp(req, model, &a) || !a || fd_msg_avp_hdr(a, &h) || !h->avp_value ||
	    !h->avp_value->os.len || h->avp_value->os.len > cap)
		return 0;
	memcpy(out, h->avp_value->os.data, h->avp_value->os.len);
	return h->avp_value->os.len;
}

static int bsf_on_bir(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
		      enum disp_action *act)
{
	struct kl_zn_dict *k = &g_bsf.dict;
	uint8_t tid[KL_ZN_BTID_MAX + 1], naf[KL_ZN_NAF_ID_MAX], key[KL_KDF_OUT_LEN], t[4];
	struct bsf_ue q, *u = NULL;
	struct msg *ans = *msg;
	size_t tl, nl;
	int rc = 0;
	uint64_t *count = NULL;

	(void)avp;
	(void)sess;
	(void)opaque;
	tl = bsf_take(ans, k->tid, tid, sizeof(q.btid) - 1);
	nl = bsf_take(ans, k->naf_id, naf, sizeof(naf));
	if (fd_msg_new_answer_from_req(fd_g_config->cnf_dict, &ans, 0))
		return EINVAL;
	*msg = NULL;
	*act = DISP_ACT_CONT;
	if (!tl || !nl) {
		count = &g_bsf.missing;
		rc = fd_msg_rescode_set(ans, "DIAMETER_MISSING_AVP", NULL, NULL, 1);
		goto send;
	}
	memcpy(q.btid, tid, tl);
	q.btid[tl] = 0;
	if (strlen(q.btid) == tl)
		u = bsearch(&q, g_bsf.ue, g_bsf.n, sizeof(*g_bsf.ue), bsf_cmp);
	if ((rc = kl_dia_add_u32(ans, k->auth_session_state, 1)))
		goto send;
	if (!u) {
		count = &g_bsf.unknown;
		rc = bsf_experimental(ans, KL_ZN_IMPI_UNKNOWN);
		goto send;
	}
	if (u->mode == BSF_NOT_AUTH) {
		count = &g_bsf.not_auth;
		rc = bsf_experimental(ans, KL_ZN_NOT_AUTHORIZED);
		goto send;
	}
	count = u->mode == BSF_EXPIRED ? &g_bsf.expired : u->mode ? &g_bsf.bad : &g_bsf.ok;
	{
		struct kl_kdf_param v[3] = { { u->rand, 16 },
					     { (const uint8_t *)u->impi, strlen(u->impi) },
					     { naf, nl } };

		if (kl_derive(NULL, KL_KDF_KS_NAF, u->ckik, 32, v, 3, key) < 0)
			rc = EIO;
	}
	if (!rc)
		rc = fd_msg_rescode_set(ans, "DIAMETER_SUCCESS", NULL, NULL, 1);
	if (!rc)
		rc = kl_dia_add_os(ans, k->user_name, u->impi, strlen(u->impi));
	if (!rc && u->mode != BSF_NO_KEY)
		rc = kl_dia_add_os(ans, k->me_key, key, u->mode == BSF_SHORT_KEY ? 16 : KL_KDF_OUT_LEN);
	kl_memzero(key, sizeof(key));
	if (!rc && u->mode != BSF_NO_EXPIRY) {
		put_ntp(t, u->expires);
		rc = kl_dia_add_os(ans, k->expiry, t, 4);
	}
	if (!rc) {
		put_ntp(t, u->created);
		rc = kl_dia_add_os(ans, k->created, t, 4);
	}
	if (!rc)
		rc = kl_dia_add_u32(ans, k->gba_type, 0); /* 3G GBA */
	if (!rc && u->mode == BSF_DUP_ORIGIN)
		rc = fd_msg_add_origin(ans, 0);
send:
	if (rc) {
		fd_msg_free(ans);
		return rc;
	}
	pthread_mutex_lock(&g_bsf.m);
	(*count)++;
	if (g_bsf.bir_log) {
		static const char *const what[] = { "ok", "unknown", "not_authorised", "expired",
						    "bad_answer", "missing_avp" };
		uint64_t *all[] = { &g_bsf.ok,	    &g_bsf.unknown, &g_bsf.not_auth,
				    &g_bsf.expired, &g_bsf.bad,	    &g_bsf.missing };
		size_t w = 0;

		while (w < 5 && all[w] != count)
			w++;
		fprintf(g_bsf.bir_log, "%.*s ", (int)tl, (const char *)tid);
		for (size_t i = 0; i < nl; i++)
			fprintf(g_bsf.bir_log, "%02x", naf[i]);
		fprintf(g_bsf.bir_log, "%s %s\n", nl ? "" : "-", what[w]);
		fflush(g_bsf.bir_log);
	}
	pthread_mutex_unlock(&g_bsf.m);
	return fd_msg_send(&ans, NULL, NULL);
}

static void b64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
}

static void hexs(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int run_bsf(struct kl_diameter_params *p)
{
	unsigned long long n, runs, life;
	const char *file, *domain;
	uint8_t *marks;
	char tmp[4096], err[512];
	struct kl_diameter_handlers none = { 0 };
	struct kl_diameter *d;
	struct disp_hdl *disp = NULL;
	struct disp_when when;
	sigset_t ss;
	FILE *f;
	uint64_t now = (uint64_t)time(NULL);
	int fd, sig, rc;

	p->port = (uint16_t)number("port", need("port"), 10, 65535);
	n = number("ues", need("ues"), 10, 1000000);
	g_b.seed = number("seed", need("seed"), 0, ~0ull);
	file = need("ue-file");
	runs = get("runs") ? number("runs", get("runs"), 10, 100) : 1;
	life = get("ks-lifetime") ? number("ks-lifetime", get("ks-lifetime"), 10, 100000000) : 3600;
	domain = get("bsf-domain") ? get("bsf-domain") : "bsf.keyline.test";
	if (get("bir-log") && !(g_bsf.bir_log = fopen(get("bir-log"), "a")))
		die("--bir-log: %s", strerror(errno));
	if (!n || !runs || !life)
		die("--ues, --runs and --ks-lifetime: at least 1");
	if (!*domain || strlen(domain) > 60 || strpbrk(domain, "\"\\@ "))
		die("--bsf-domain: 1..60 characters of a domain name");
	if (!(marks = calloc(n, 1)) || !(g_bsf.ue = calloc(n * runs, sizeof(*g_bsf.ue))))
		die("out of memory");
	bsf_marks("expired", marks, n);
	bsf_marks("not-authorised", marks, n);
	bsf_marks("bad-answer", marks, n);
	no_leftovers();
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
		die("--ue-file: path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) || !(f = fdopen(fd, "w")))
		die("--ue-file: %s", strerror(errno));
	for (unsigned long long i = 0; i < n; i++)
		for (unsigned long long r = 0; r < runs; r++) {
			struct bsf_ue *u = &g_bsf.ue[g_bsf.n++];
			uint64_t s = g_b.seed ^ (i * 0xD1B54A32D192ED03ull) ^
				     ((r + 1) * 0x9E3779B97F4A7C15ull);
			uint8_t k[16], opc[16], sqn[6] = { 0, 0, 0, 0, 0, (uint8_t)(r + 1) },
					       amf[2] = { 0x80, 0x00 };
			char hk[33], ho[33], hr[33];
			struct kl_milenage_out o;
			char rb64[25];

			fill(&s, k, 16);
			fill(&s, opc, 16);
			fill(&s, u->rand, 16);
			if (kl_milenage(k, opc, u->rand, sqn, amf, &o) < 0)
				die("milenage failed");
			memcpy(u->ckik, o.ck, 16);
			memcpy(u->ckik + 16, o.ik, 16);
			kl_memzero(&o, sizeof(o));
			b64(u->rand, 16, rb64);
			snprintf(u->btid, sizeof(u->btid), "%s@%s", rb64, domain);
			snprintf(u->impi, sizeof(u->impi), "ue-%06llu@ims.keyline.test", i);
			u->mode = marks[i];
			u->created = now;
			u->expires = u->mode == BSF_EXPIRED ? now - 60 : now + life;
			hexs(k, 16, hk);
			hexs(opc, 16, ho);
			hexs(u->rand, 16, hr);
			fprintf(f,
				"{\"index\": %llu, \"run\": %llu, \"impi\": \"%s\", \"b_tid\": \"%s\", "
				"\"k\": \"%s\", \"opc\": \"%s\", \"rand\": \"%s\", "
				"\"sqn\": \"0000000000%02x\", \"amf\": \"8000\", \"expires\": %llu}\n",
				i, r, u->impi, u->btid, hk, ho, hr, sqn[5],
				(unsigned long long)u->expires);
			kl_memzero(k, sizeof(k));
			kl_memzero(opc, sizeof(opc));
			kl_memzero(hk, sizeof(hk));
			kl_memzero(ho, sizeof(ho));
		}
	free(marks);
	if (fflush(f) || fsync(fileno(f)) || fclose(f))
		die("--ue-file: %s", strerror(errno));
	qsort(g_bsf.ue, g_bsf.n, sizeof(*g_bsf.ue), bsf_cmp);

	/* SIGTERM/SIGINT go to sigwait below: blocked before freeDiameter's threads start */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	d = kl_diameter_start(p, &none, err, sizeof(err));
	if (!d) {
		unlink(tmp);
		fprintf(stderr, "keyline-hss-sim bsf: %s\n", err);
		return EX_CONNECT;
	}
	if (kl_zn_dict_init(&g_bsf.dict, err, sizeof(err)) ||
	    (rc = fd_disp_app_support(g_bsf.dict.app, g_bsf.dict.vendor, 1, 0))) {
		fprintf(stderr, "keyline-hss-sim bsf: %s\n", err);
		kl_diameter_stop(d);
		unlink(tmp);
		return EX_CONNECT;
	}
	memset(&when, 0, sizeof(when));
	when.app = g_bsf.dict.app;
	when.command = g_bsf.dict.bir;
	if ((rc = fd_disp_register(bsf_on_bir, DISP_HOW_CC, &when, NULL, &disp))) {
		fprintf(stderr, "keyline-hss-sim bsf: cannot register the BIR handler: %s\n",
			strerror(rc));
		kl_diameter_stop(d);
		unlink(tmp);
		return EX_CONNECT;
	}
	/* the UE file appears once BIRs are answered: it is the readiness signal */
	if (rename(tmp, file))
		die("--ue-file: %s", strerror(errno));
	fprintf(stderr, "keyline-hss-sim bsf: %zu bootstraps of %llu UEs, listening on port %u\n",
		g_bsf.n, n, (unsigned)p->port);
	do
		rc = sigwait(&ss, &sig);
	while (rc == EINTR);
	fd_disp_unregister(&disp, NULL);
	kl_diameter_stop(d);
	fprintf(stderr,
		"keyline-hss-sim bsf: ok %llu unknown %llu not_authorised %llu expired %llu "
		"bad_answer %llu missing_avp %llu\n",
		(unsigned long long)g_bsf.ok, (unsigned long long)g_bsf.unknown,
		(unsigned long long)g_bsf.not_auth, (unsigned long long)g_bsf.expired,
		(unsigned long long)g_bsf.bad, (unsigned long long)g_bsf.missing);
	kl_memzero(g_bsf.ue, g_bsf.n * sizeof(*g_bsf.ue));
	free(g_bsf.ue);
	return EX_OK;
}

/* ---- main ---------------------------------------------------------------------------------- */

/* Which crypto backend runs is of no interest here: its start-up line is dropped. */
static void crypto_quiet(const char *msg)
{
	(void)msg;
}

static void log_sink(void *arg, enum kl_diameter_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)arg;
	fprintf(stderr, "keyline-hss-sim: %s: %s\n", names[level], msg);
}

/* FQDN@ADDR[:PORT], ADDR an IPv4 address or [IPv6]. */
static void peer_opt(const char *s, struct kl_diameter_params *p)
{
	static char id[256], addr[128];
	const char *at = strchr(s, '@'), *a, *port = NULL;
	size_t al;

	if (!at || at == s || (size_t)(at - s) >= sizeof(id))
		die("--peer: want FQDN@ADDR[:PORT]");
	memcpy(id, s, (size_t)(at - s));
	id[at - s] = 0;
	a = at + 1;
	if (*a == '[') {
		const char *close = strchr(a, ']');

		if (!close)
			die("--peer: unterminated [IPv6 address]");
		al = (size_t)(close - a - 1);
		a++;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			die("--peer: junk after ]");
	} else {
		const char *colon = strchr(a, ':');

		al = colon ? (size_t)(colon - a) : strlen(a);
		if (colon)
			port = colon + 1;
	}
	if (!al || al >= sizeof(addr))
		die("--peer: no address");
	memcpy(addr, a, al);
	addr[al] = 0;
	p->peer_identity = id;
	p->peer_address = addr;
	if (port)
		p->peer_port = (uint16_t)number("peer port", port, 10, 65535);
}

int main(int argc, char **argv)
{
	static const char *const commands[] = { "push-e2m", "push-muk", "put-appid", "put-emse",
						"put-ue-groups", "put-pair", "remove", "bulk", "bsf",
						NULL };
	struct kl_diameter_params p = { 0 };
	struct kl_crypto *c = NULL;
	char err[512];
	int i, rc;

	kl_crypto_set_log(crypto_quiet);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "help")) {
			usage(stdout);
			return 0;
		}
		if (strncmp(argv[i], "--", 2)) {
			/* never echoed: it may be a key given without its --option */
			if (cmd)
				die("argument %d: unexpected (not shown; keys go in --OPTION)", i);
			cmd = argv[i];
			continue;
		}
		if (!argv[i][2])
			die("argument %d: unexpected '--'", i);
		if (i + 1 >= argc)
			die("argument %d: an option without a value", i);
		if (nopts == MAX_OPTS)
			die("too many options");
		opts[nopts].pos = i;
		opts[nopts].name = argv[i] + 2;
		opts[nopts++].val = argv[++i];
	}
	if (!cmd) {
		usage(stderr);
		return EX_USAGE;
	}
	for (i = 0; commands[i] && strcmp(cmd, commands[i]); i++)
		;
	if (!commands[i])
		die("unknown command (try --help)");
	cmd_ok = 1;

	p.log = log_sink;
	p.log_level = KL_DIAMETER_LOG_WARNING;
	if (get("log-level")) {
		static const char *const lv[] = { "error", "warning", "info", "debug" };
		unsigned l;

		for (l = 0; l < 4 && strcmp(get("log-level"), lv[l]); l++)
			;
		if (l == 4)
			die("--log-level: error, warning, info or debug");
		p.log_level = (enum kl_diameter_log_level)l;
	}
	p.fd_conf = get("fd-conf");
	p.identity = get("identity");
	p.realm = get("realm");
	p.listen = get("listen");
	p.tls_cert = get("cert");
	p.tls_key = get("key");
	p.tls_ca = get("ca");
	if (get("vendor"))
		p.vendor_id = (uint32_t)number("vendor", get("vendor"), 10, 0xFFFFFFFFull);
	if (get("app"))
		p.app_id = (uint32_t)number("app", get("app"), 10, 0xFFFFFFFFull);
	if (get("timeout-ms"))
		g_timeout_ms = (unsigned)number("timeout-ms", get("timeout-ms"), 10, 600000);
	if (!strcmp(cmd, "bsf")) {
		if (p.fd_conf || !p.identity || !p.tls_cert || !p.tls_key || !p.tls_ca)
			die("give --identity, --cert, --key and --ca");
		return run_bsf(&p);
	}
	peer_opt(need("peer"), &p);
	if (!p.fd_conf && (!p.identity || !p.tls_cert || !p.tls_key || !p.tls_ca))
		die("give --identity, --cert, --key and --ca (or --fd-conf)");

	c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!c) {
		fprintf(stderr, "keyline-hss-sim: cannot create a crypto context: %s\n",
			strerror(errno));
		return EX_CONNECT;
	}
	/* The command's options are checked and its request built before connecting: argument
	 * errors exit 2 at once, with no peer involved. */
	if (!strcmp(cmd, "push-e2m"))
		cmd_push_e2m(c);
	else if (!strcmp(cmd, "push-muk"))
		cmd_push_muk(c);
	else if (!strcmp(cmd, "put-appid"))
		cmd_put_appid();
	else if (!strcmp(cmd, "put-emse"))
		cmd_key_push(KL_DIAMETER_EMSE, "emse-id", "psk-file");
	else if (!strcmp(cmd, "put-ue-groups"))
		cmd_put_ue_groups();
	else if (!strcmp(cmd, "put-pair"))
		cmd_key_push(KL_DIAMETER_PAIR, "peer-id", "key-file");
	else if (!strcmp(cmd, "remove"))
		cmd_remove();
	else
		cmd_bulk(c);
	g_c = kl_diameter_client_start(&p, g_timeout_ms, err, sizeof(err));
	if (!g_c) {
		fprintf(stderr, "keyline-hss-sim: %s\n", err);
		kl_memzero(&g_e, sizeof(g_e));
		kl_crypto_destroy(c);
		return EX_CONNECT;
	}
	rc = !strcmp(cmd, "bulk") ? run_bulk() : send_one(&g_e, g_extra);
	kl_diameter_stop(g_c);
	kl_crypto_destroy(c);
	return rc;
}
