/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-kdf: the key-derivation CLI for operators debugging key mismatches.
 * Hex in, hex out. Every row of PROTOCOL.md section 7, the MIKEY transport keys and PRF, a raw
 * 3GPP KDF, Milenage f1..f5*, E2M key ids and key check values. Bad input: one line on stderr, exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_cli_opt.h"
#include "kl_crypto.h"
#include "kl_engine.h"
#include "kl_naf_mt.h"
#include "kl_util.h"

#define MAX_OPTS 24
#define MAX_VAL 65535
#define UE_KEY_MAX (KL_TABLE_PSK_CHUNKS * KL_PRF_CHUNK_LEN) /* a UE key (MUK) as the table takes it */

static struct kl_cli_opt opts[MAX_OPTS];
static unsigned nopts;
static const char *cmd;
static int cmd_ok; /* cmd is a known command: only then may messages name it */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keyline-kdf%s%s: ", cmd_ok ? " " : "", cmd_ok ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: keyline-kdf [--backend ipsec-mb|openssl] COMMAND [--option VALUE]...\n"
		"commands (values are hex unless noted; a parameter may be written hex:.. or text:..):\n"
		"  list                               the derivation table (PROTOCOL.md section 7)\n");
	for (unsigned i = 0; i < KL_KDF__COUNT; i++) {
		const struct kl_kdf_def *d = kl_kdf_def_get(i);
		char line[256];
		int o = snprintf(line, sizeof(line), "  %s --key HEX", d->name);

		for (unsigned p = 0; p < d->nparams; p++)
			if (d->pname[p])
				o += snprintf(line + o, sizeof(line) - (size_t)o, " --%s %s", d->pname[p],
					      d->ptype[p] == KL_KDF_P_TEXT ? "TEXT" : "HEX");
		fprintf(f, "%-66s Key = %s\n", line, d->key_name);
	}
	fprintf(f,
		"  (a CK||IK key may be given as --ck HEX --ik HEX; ks-naf takes --bmsc-fqdn TEXT for an MBMS NAF_Id)\n"
		"  kdf --key HEX --fc HEX [--p VALUE]...       raw TS 33.220 KDF, 0..16 parameters\n"
		"  mikey-keys --psk HEX --csb-id HEX --rand HEX [--prf mikey-1|hmac-sha256] [--cs-id HEX]\n"
		"  mikey-prf --inkey HEX --const HEX --csb-id HEX --rand HEX --len N [--prf P] [--cs-id HEX]\n"
		"  milenage --k HEX (--op HEX | --opc HEX) --rand HEX --sqn HEX --amf HEX\n"
		"  e2m-key-id --rand HEX                  32 least significant bits of an AV's RAND\n"
		"  kcv --key HEX                          key check value\n"
		"\n"
		"VLR token scheme (PROTOCOL.md section 9, kinds 2 and 3; Hoyle-Mitchell):\n"
		"  vlr-token --key K(VLRa,VLRb) --id-ue TEXT   K*x = KDF(K(VLRa,VLRb), FF06, ID_UEx), printed\n"
		"                                     as hex like every row above (a key: kstar shows only its KCV)\n"
		"  kstar --pair-key-file F --ue ID        key check value of K*x for UE ID (the pair key read\n"
		"                                     from F: 32 bytes of hex text, \"-\" = stdin)\n"
		"  hm-open --kstar-file F --token HEX --vlr-a ID --vlr-b ID --ue-a ID --ue-b ID\n"
		"          [--now UNIX_SECONDS] [--out FILE]\n"
		"                                     open a token with K*x (from F, hex text) as UEx would:\n"
		"                                     prints Ks's key check value and valid-to, never Ks;\n"
		"                                     --out FILE writes Ks as hex (a new file, mode 0600).\n"
		"                                     Exit 1 when the token does not open (says why).\n"
		"  token layout: 0x01 || nonce (12) || AES-256-GCM(key K*x, nonce, aad, Ks (16) ||\n"
		"    valid-to (8, NTP) || len(ID_UEa) (1) || ID_UEa || len(ID_UEb) (1) || ID_UEb) || tag (16);\n"
		"    aad = 0x01 || len(ID_VLRa) (1) || ID_VLRa || len(ID_VLRb) (1) || ID_VLRb. VLRa (the\n"
		"    server UEa asked, kind 2) seals token_a with K*a and token_b with K*b; UEb gets K*b from\n"
		"    VLRb (kind 3) and opens token_b with the same --vlr-a/--vlr-b/--ue-a/--ue-b.\n"
		"\n"
		"DH VLR scheme and ProSe (PROTOCOL.md section 9, kinds 4 and 5): key recovery. Key files\n"
		"hold hex text (\"-\" = stdin); keys are never printed, only their key check values;\n"
		"--out FILE writes the derived key as hex (a new file, mode 0600):\n"
		"  dh-pub --key-file F                UEx's public value P = X25519(KDF(Kx, FF07,\n"
		"                                     \"dh-x25519\"), 9) from its key Kx (1..64 bytes);\n"
		"                                     P is public: printed, with its fingerprint\n"
		"  dh-ks --key-file F --peer-pub HEX --ue ID --peer-ue ID [--out FILE]\n"
		"                                     Ks = KDF(X25519(s_own, P_peer), FF08, ID_lo, ID_hi)\n"
		"                                     from one UE's key and the other UE's public value;\n"
		"                                     exit 1 for an all-zero shared secret\n"
		"  prose-p --kasme-file F --p HEX [--out FILE]\n"
		"                                     p2 = KDF(KASME1, FF04, p1) (or p4 from KASME2, p3;\n"
		"                                     p: 16 bytes)\n"
		"  prose-kd --p2-file F --p4-file F [--out FILE]   KD = KDF(p2, FF05, p4)\n"
		"\n"
		"NAF Key Center, the MT side (PROTOCOL.md sections 7 and 11): Ks_local_MT from a GBA run\n"
		"in one command (Milenage -> CK, IK -> Ks_(ext)_NAF -> Ks_local_MT); prints the key\n"
		"check values of Ks_(ext)_NAF and Ks_local_MT, never a key; --out FILE writes\n"
		"Ks_local_MT as hex (a new file, mode 0600):\n"
		"  gba-ks-local-mt --k HEX (--op HEX | --opc HEX) --rand HEX --sqn HEX --amf HEX\n"
		"          --impi TEXT --btid TEXT --naf-id HEX --device-id TEXT [--out FILE]\n"
		"  gba-ks-local-mt --ue-file F --btid TEXT --naf-id HEX --device-id TEXT [--out FILE]\n"
		"                                     the UE's K, OPc, RAND, SQN, AMF and IMPI from the\n"
		"                                     line of keyline-hss-sim bsf's --ue-file with that\n"
		"                                     B-TID (exit 1 when no line has it)\n");
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

static void allow_only(const char *const *names)
{
	for (unsigned i = 0; i < nopts; i++) {
		unsigned k;

		for (k = 0; names[k]; k++)
			if (!strcmp(opts[i].name, names[k]))
				break;
		if (!names[k])
			die("argument %d: unknown option", opts[i].pos);
	}
}


/* Every buffer the CLI allocates may hold key bytes: they are registered here and wiped and
 * freed at exit (also after die()), so no key stays behind in freed memory. */
#define MAX_ALLOCS 128
static struct {
	void *p;
	size_t n;
} allocs[MAX_ALLOCS];
static unsigned nallocs;

static void free_all(void)
{
	for (unsigned i = 0; i < nallocs; i++) {
		kl_memzero(allocs[i].p, allocs[i].n);
		free(allocs[i].p);
	}
	nallocs = 0;
}

static void *cli_alloc(size_t n)
{
	void *p;

	if (nallocs == MAX_ALLOCS || !(p = calloc(1, n ? n : 1)))
		die("out of memory");
	if (!nallocs)
		atexit(free_all);
	allocs[nallocs].p = p;
	allocs[nallocs++].n = n ? n : 1;
	return p;
}

/* Parses hex into a fresh buffer; exact length when want > 0. */
static uint8_t *hex(const char *what, const char *s, size_t want, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *b;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (n % 2)
		die("--%s: odd number of hex digits", what);
	if (n / 2 > MAX_VAL)
		die("--%s: longer than %u bytes", what, MAX_VAL);
	if (want && n / 2 != want)
		die("--%s: want %zu bytes of hex, got %zu", what, want, n / 2);
	b = cli_alloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = kl_hexval(s[2 * i]), lo = kl_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			die("--%s: not hex at character %zu", what, 2 * i + (hi < 0 ? 1 : 2));
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (len)
		*len = n / 2;
	return b;
}

/* A KDF parameter: "hex:..", "text:..", or bare in the given default type. */
static struct kl_kdf_param param(const char *what, const char *v, enum kl_kdf_ptype def)
{
	struct kl_kdf_param p;
	size_t n;

	if (!strncmp(v, "hex:", 4)) {
		v += 4;
		def = KL_KDF_P_HEX;
	} else if (!strncmp(v, "text:", 5)) {
		v += 5;
		def = KL_KDF_P_TEXT;
	}
	if (def == KL_KDF_P_HEX) {
		p.data = hex(what, v, 0, &n);
		p.len = n;
		return p;
	}
	n = strlen(v);
	if (n > MAX_VAL)
		die("--%s: longer than %u bytes", what, MAX_VAL);
	p.data = (const uint8_t *)v;
	p.len = n;
	return p;
}

static unsigned long number(const char *what, const char *s, int base, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, base);
	if (!*s || *end || errno || v > max || *s == '-')
		die("--%s: want a number up to %lu", what, max);
	return v;
}

static void put(const char *name, const uint8_t *b, size_t n)
{
	if (name)
		printf("%s=", name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('\n');
}

static uint8_t *main_key(size_t *len, const struct kl_kdf_def *d)
{
	const char *k = get("key"), *ck = get("ck"), *ik = get("ik");

	if (k && (ck || ik))
		die("give --key or --ck/--ik, not both");
	if (k) {
		uint8_t *b = hex("key", k, 0, len);

		if (!*len)
			die("--key: empty");
		return b;
	}
	if (d && !strcmp(d->key_name, "CK||IK") && ck && ik) {
		size_t l1, l2;
		uint8_t *a = hex("ck", ck, 16, &l1), *b = hex("ik", ik, 16, &l2);
		uint8_t *r = cli_alloc(32);

		memcpy(r, a, 16);
		memcpy(r + 16, b, 16);
		*len = 32;
		return r;
	}
	die(d && !strcmp(d->key_name, "CK||IK") ? "missing --key (or --ck and --ik)" : "missing --key");
}

static int cmd_row(struct kl_crypto *c, const struct kl_kdf_def *d, enum kl_kdf_id id)
{
	const char *allowed[12] = { "key", "ck", "ik" };
	struct kl_kdf_param vars[4];
	unsigned na = 3, nv = 0;
	uint8_t out[KL_KDF_OUT_LEN], *key;
	size_t klen;

	for (unsigned p = 0; p < d->nparams; p++)
		if (d->pname[p])
			allowed[na++] = d->pname[p];
	if (id == KL_KDF_KS_NAF)
		allowed[na++] = "bmsc-fqdn";
	allowed[na] = NULL;
	allow_only(allowed);
	key = main_key(&klen, d);
	for (unsigned p = 0; p < d->nparams; p++) {
		const char *v;

		if (!d->pname[p])
			continue;
		v = get(d->pname[p]);
		if (id == KL_KDF_KS_NAF && !strcmp(d->pname[p], "naf-id") && get("bmsc-fqdn")) {
			/* MBMS: NAF_Id = BM-SC FQDN || Ua security protocol id 01 00 00 00 01 */
			const char *f = get("bmsc-fqdn");
			size_t fl = strlen(f);
			uint8_t *b = cli_alloc(fl + 5);

			if (v)
				die("give --naf-id or --bmsc-fqdn, not both");
			if (!b || fl > MAX_VAL - 5)
				die("--bmsc-fqdn: too long");
			memcpy(b, f, fl);
			memcpy(b + fl, "\x01\x00\x00\x00\x01", 5);
			vars[nv].data = b;
			vars[nv++].len = fl + 5;
			continue;
		}
		if (!v)
			die("missing --%s", d->pname[p]);
		vars[nv++] = param(d->pname[p], v, d->ptype[p]);
	}
	if (kl_derive(c, id, key, klen, vars, nv, out) < 0)
		die("derivation rejected its arguments");
	put(NULL, out, sizeof(out));
	kl_memzero(out, sizeof(out));
	return 0;
}

static int cmd_kdf(struct kl_crypto *c)
{
	static const char *const allowed[] = { "key", "fc", "p", NULL };
	struct kl_kdf_param p[KL_KDF_MAX_PARAMS];
	struct kl_hmac_key k;
	unsigned np = 0;
	uint8_t out[KL_KDF_OUT_LEN], *key;
	size_t klen, fl;
	uint8_t *fcb;
	uint16_t fc;

	allow_only(allowed);
	key = main_key(&klen, NULL);
	fcb = hex("fc", need("fc"), 0, &fl);
	if (fl == 1 && fcb[0] != 0xFF)
		fc = fcb[0];
	else if (fl == 2 && fcb[0] == 0xFF)
		fc = (uint16_t)(0xFF00 | fcb[1]);
	else
		die("--fc: one byte 00..fe, or two bytes starting ff");
	for (unsigned i = 0; i < nopts; i++) {
		if (strcmp(opts[i].name, "p"))
			continue;
		if (np == KL_KDF_MAX_PARAMS)
			die("more than %u parameters", KL_KDF_MAX_PARAMS);
		p[np++] = param("p", opts[i].val, KL_KDF_P_HEX);
	}
	kl_hmac_key_init(KL_HASH_SHA256, key, klen, &k);
	if (kl_kdf(c, &k, fc, p, np, out) < 0)
		die("kdf rejected its arguments");
	put(NULL, out, sizeof(out));
	kl_hmac_key_wipe(&k);
	return 0;
}

/* A key of min..max bytes from a file of hex text (surrounding whitespace allowed; "-" =
 * stdin); *len gets its length. */
static uint8_t *key_file_n(const char *what, const char *path, size_t min, size_t max, size_t *len)
{
	char *buf = cli_alloc(4096);
	size_t n = 0, a, z;
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;

	if (fd < 0)
		die("--%s: cannot read the file: %s", what, strerror(errno));
	for (ssize_t k; n < 4095; n += (size_t)k) {
		k = read(fd, buf + n, 4095 - n);
		if (k < 0 && errno == EINTR)
			k = 0;
		else if (k < 0)
			die("--%s: cannot read the file: %s", what, strerror(errno));
		else if (!k)
			break;
	}
	if (fd)
		close(fd);
	if (n == 4095)
		die("--%s: too large for a key file", what);
	for (a = 0; a < n && strchr(" \t\r\n", buf[a]); a++)
		;
	for (z = n; z > a && strchr(" \t\r\n", buf[z - 1]); z--)
		;
	buf[z] = 0;
	if (min == max)
		return hex(what, buf + a, min, len);
	{
		size_t n2;
		uint8_t *k = hex(what, buf + a, 0, &n2);

		if (n2 < min || n2 > max)
			die("--%s: want %zu..%zu bytes of hex, got %zu", what, min, max, n2);
		if (len)
			*len = n2;
		return k;
	}
}

/* A 32-byte key from a file of hex text. */
static uint8_t *key_file(const char *what, const char *path)
{
	return key_file_n(what, path, 32, 32, NULL);
}

/* An identity option: 1..255 bytes of text. */
static const char *ident(const char *name)
{
	const char *v = need(name);

	if (!*v || strlen(v) > 255)
		die("--%s: want 1..255 bytes", name);
	return v;
}

static void put_kcv(const char *name, const uint8_t *key, size_t len)
{
	uint8_t kcv[KL_KCV_LEN];

	if (kl_kcv(key, len, kcv) < 0)
		die("key check value failed");
	put(name, kcv, sizeof(kcv));
}

/* KCV of K*x = KDF(K(VLRa,VLRb), FF06, ID_UEx). */
static int cmd_kstar(struct kl_crypto *c)
{
	static const char *const allowed[] = { "pair-key-file", "ue", NULL };
	const char *ue;
	struct kl_kdf_param p;
	uint8_t out[KL_KDF_OUT_LEN], *pair;

	allow_only(allowed);
	pair = key_file("pair-key-file", need("pair-key-file"));
	ue = ident("ue");
	p = (struct kl_kdf_param){ .data = (const uint8_t *)ue, .len = strlen(ue) };
	if (kl_derive(c, KL_KDF_VLR_TOKEN, pair, 32, &p, 1, out) < 0)
		die("derivation rejected its arguments");
	put_kcv("kstar_kcv", out, sizeof(out));
	kl_memzero(out, sizeof(out));
	return 0;
}

/* --out FILE: a new 0600 file, made before anything is derived or opened so that an existing
 * file is a usage error before anything is printed. @return its fd, -1 without --out. */
static int out_open(const char *out)
{
	int fd = -1;

	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		die("--out: cannot create the file (it must not exist): %s", strerror(errno));
	return fd;
}

/* The command failed: the --out file made for it goes. */
static void out_drop(int fd, const char *out)
{
	if (fd >= 0) {
		close(fd);
		unlink(out);
	}
}

/* A key (n <= 32 bytes) as hex text into the --out file (fd from out_open; -1: none). */
static void out_write(int fd, const uint8_t *key, size_t n)
{
	char line[2 * 32 + 2];
	ssize_t w;

	if (fd < 0)
		return;
	if (n > 32)
		die("--out: key too long");
	for (size_t i = 0; i < n; i++)
		snprintf(line + 2 * i, 3, "%02x", key[i]);
	line[2 * n] = '\n';
	w = write(fd, line, 2 * n + 1);
	kl_memzero(line, sizeof(line));
	if (w != (ssize_t)(2 * n + 1) || fsync(fd) || close(fd))
		die("--out: write failed");
}

static int cmd_hm_open(struct kl_crypto *c)
{
	static const char *const allowed[] = { "kstar-file", "token", "vlr-a", "vlr-b", "ue-a",
					       "ue-b", "now", "out", NULL };
	const char *va, *vb, *ua, *ub, *now = get("now"), *out = get("out");
	struct kl_hm_open o;
	size_t tl;
	uint8_t *kstar, *tok;
	time_t vt;
	struct tm tm;
	char date[32];

	int fd;

	allow_only(allowed);
	kstar = key_file("kstar-file", need("kstar-file"));
	tok = hex("token", need("token"), 0, &tl);
	va = ident("vlr-a");
	vb = ident("vlr-b");
	ua = ident("ue-a");
	ub = ident("ue-b");
	if (tl > UINT16_MAX)
		die("--token: too long");
	fd = out_open(out);
	o = (struct kl_hm_open){ .kstar = kstar, .token = tok, .token_len = (uint16_t)tl,
				 .vlra = (const uint8_t *)va, .vlra_len = (uint16_t)strlen(va),
				 .vlrb = (const uint8_t *)vb, .vlrb_len = (uint16_t)strlen(vb),
				 .ue_a = (const uint8_t *)ua, .ue_a_len = (uint16_t)strlen(ua),
				 .ue_b = (const uint8_t *)ub, .ue_b_len = (uint16_t)strlen(ub),
				 .now = now ? (uint64_t)(number("now", now, 10, 0xFFFFFFFFul - 2208988800ul) +
							 2208988800ul) << 32
					    : kl_ntp_now() };
	if (kl_client_hm_open_burst(c, &o, 1) != 1 || o.rc)
		out_drop(fd, out);
	if (o.rc == -EIO) {
		fprintf(stderr, "keyline-kdf hm-open: the crypto failed\n");
		return 1;
	}
	if (o.rc) {
		fprintf(stderr, "keyline-kdf hm-open: the token does not open: %s\n",
			o.rc == -EBADMSG ? "not a token (layout)"
			: o.rc == -EPERM ? "tag (another K*x, other servers, or an altered token)"
			: o.rc == -EPROTO ? "it is for other UEs"
					  : "expired (valid-to has passed)");
		return 1;
	}
	put_kcv("ks_kcv", o.ks, sizeof(o.ks));
	vt = (time_t)((o.valid_to >> 32) - 2208988800ull);
	if (!gmtime_r(&vt, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(date, sizeof(date), "?");
	printf("valid_to=%s\nvalid_to_ntp=%016llx\n", date, (unsigned long long)o.valid_to);
	out_write(fd, o.ks, sizeof(o.ks));
	kl_memzero(o.ks, sizeof(o.ks));
	return 0;
}

/* ---- DH VLR scheme and ProSe (PROTOCOL.md section 9): key recovery --------------------------- */

static void put_fp(const uint8_t p[KL_X25519_LEN])
{
	uint8_t fp[KL_DH_FP_LEN];

	kl_dh_pub_fp(p, fp);
	put("dh_pub_fp", fp, sizeof(fp));
}

/* UEx's public value from its key (P is public: printed, with the fingerprint keylinectl
 * shows). */
static int cmd_dh_pub(struct kl_crypto *c)
{
	static const char *const allowed[] = { "key-file", NULL };
	struct kl_hmac_key kx;
	uint8_t p[KL_X25519_LEN], *k;
	size_t kl;

	allow_only(allowed);
	k = key_file_n("key-file", need("key-file"), 1, UE_KEY_MAX, &kl);
	kl_hmac_key_init(KL_HASH_SHA256, k, kl, &kx);
	if (kl_dh_public(c, &kx, p)) {
		kl_hmac_key_wipe(&kx);
		fprintf(stderr, "keyline-kdf dh-pub: the crypto failed\n");
		return 1;
	}
	kl_hmac_key_wipe(&kx);
	put("dh_pub", p, sizeof(p));
	put_fp(p);
	return 0;
}

/* Ks of the DH scheme from one UE's key and the other's public value, as that UE computes it:
 * its KCV printed, Ks itself only into --out. */
static int cmd_dh_ks(struct kl_crypto *c)
{
	static const char *const allowed[] = { "key-file", "peer-pub", "ue", "peer-ue", "out",
					       NULL };
	const char *ue, *peer, *out = get("out");
	struct kl_hmac_key kx;
	uint8_t ks[KL_KDF_OUT_LEN], *k, *pp;
	size_t kl;
	int fd, rc;

	allow_only(allowed);
	k = key_file_n("key-file", need("key-file"), 1, UE_KEY_MAX, &kl);
	pp = hex("peer-pub", need("peer-pub"), KL_X25519_LEN, NULL);
	ue = ident("ue");
	peer = ident("peer-ue");
	if (!strcmp(ue, peer))
		die("--ue and --peer-ue: the two UEs must differ");
	fd = out_open(out);
	kl_hmac_key_init(KL_HASH_SHA256, k, kl, &kx);
	rc = kl_dh_ks(c, &kx, pp, (const uint8_t *)ue, strlen(ue), (const uint8_t *)peer,
		      strlen(peer), ks);
	kl_hmac_key_wipe(&kx);
	if (rc) {
		out_drop(fd, out);
		fprintf(stderr, "keyline-kdf dh-ks: %s\n",
			rc == -EPERM ? "the X25519 shared secret is all zero (the peer's public value "
				       "is a low-order point): no key"
				     : "the crypto failed");
		return 1;
	}
	put_kcv("ks_kcv", ks, sizeof(ks));
	out_write(fd, ks, sizeof(ks));
	kl_memzero(ks, sizeof(ks));
	return 0;
}

/* A row of the table from a 32-byte key and one parameter, for an operator: the result's KCV
 * printed as kcv_name, the result itself only into --out. */
static int derive_out(struct kl_crypto *c, enum kl_kdf_id id, const uint8_t key[32],
		      const struct kl_kdf_param *p, const char *kcv_name)
{
	const char *out = get("out");
	uint8_t v[KL_KDF_OUT_LEN];
	int fd = out_open(out);

	if (kl_derive(c, id, key, 32, p, 1, v)) {
		out_drop(fd, out);
		fprintf(stderr, "keyline-kdf %s: the crypto failed\n", cmd);
		return 1;
	}
	put_kcv(kcv_name, v, sizeof(v));
	out_write(fd, v, sizeof(v));
	kl_memzero(v, sizeof(v));
	return 0;
}

/* p2 = KDF(KASME1, FF04, p1), or p4 from KASME2 and p3. */
static int cmd_prose_p(struct kl_crypto *c)
{
	static const char *const allowed[] = { "kasme-file", "p", "out", NULL };
	struct kl_kdf_param p;
	uint8_t *kasme;

	allow_only(allowed);
	kasme = key_file("kasme-file", need("kasme-file"));
	p.data = hex("p", need("p"), 16, &p.len);
	return derive_out(c, KL_KDF_PROSE_P2, kasme, &p, "p_kcv");
}

/* KD = KDF(p2, FF05, p4). */
static int cmd_prose_kd(struct kl_crypto *c)
{
	static const char *const allowed[] = { "p2-file", "p4-file", "out", NULL };
	struct kl_kdf_param p;
	uint8_t *p2;

	allow_only(allowed);
	p2 = key_file("p2-file", need("p2-file"));
	p.data = key_file("p4-file", need("p4-file"));
	p.len = 32;
	return derive_out(c, KL_KDF_PROSE_KD, p2, &p, "kd_kcv");
}

static enum kl_prf prf_opt(void)
{
	const char *v = get("prf");

	if (!v || !strcmp(v, "mikey-1") || !strcmp(v, "0"))
		return KL_PRF_MIKEY1;
	if (!strcmp(v, "hmac-sha256") || !strcmp(v, "prf-hmac-sha-256") || !strcmp(v, "1"))
		return KL_PRF_HMAC_SHA256;
	die("--prf: want mikey-1 or hmac-sha256");
}

static void mikey_common(const char *keyopt, struct kl_hmac_key *ch, int *nch, uint32_t *csb,
			 uint8_t **rand, size_t *rl, uint8_t *cs_id)
{
	size_t kl, n;
	uint8_t *k = hex(keyopt, need(keyopt), 0, &kl), *b;
	const char *cs = get("cs-id");

	if (!kl)
		die("--%s: empty", keyopt);
	*nch = kl_prf_key_init(prf_opt(), k, kl, ch, KL_PRF_MAX_CHUNKS);
	if (*nch < 0)
		die("--%s: 1..%u bytes", keyopt, KL_PRF_MAX_CHUNKS * KL_PRF_CHUNK_LEN);
	kl_memzero(k, kl);
	b = hex("csb-id", need("csb-id"), 4, &n);
	*csb = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	*rand = hex("rand", need("rand"), 0, rl);
	*cs_id = 0xFF;
	if (cs)
		*cs_id = hex("cs-id", cs, 1, &n)[0];
}

static int cmd_mikey_keys(struct kl_crypto *c)
{
	static const char *const allowed[] = { "psk", "csb-id", "rand", "prf", "cs-id", NULL };
	struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
	uint8_t a[20], e[16], s[14], *rand, cs_id;
	struct kl_mikey_tk_op op;
	uint32_t csb;
	size_t rl;
	int nch;

	allow_only(allowed);
	mikey_common("psk", ch, &nch, &csb, &rand, &rl, &cs_id);
	if (rl < 16 || rl > 32)
		die("--rand: 16..32 bytes");
	op = (struct kl_mikey_tk_op){ .chunks = ch, .rand = rand, .auth_key = a, .encr_key = e,
				      .salt_key = s, .csb_id = csb, .nchunks = (uint8_t)nch,
				      .rand_len = (uint8_t)rl, .cs_id = cs_id };
	if (kl_mikey_transport_keys_burst(c, &op, 1) != 1)
		die("transport key derivation failed");
	put("auth_key", a, sizeof(a));
	put("encr_key", e, sizeof(e));
	put("salt_key", s, sizeof(s));
	return 0;
}

static int cmd_mikey_prf(struct kl_crypto *c)
{
	static const char *const allowed[] = { "inkey", "const", "csb-id", "rand", "len",
					       "prf", "cs-id", NULL };
	struct kl_hmac_key ch[KL_PRF_MAX_CHUNKS];
	uint8_t label[KL_PRF_LABEL_MAX], out[KL_PRF_OUT_MAX], *rand, cs_id, *cb;
	struct kl_prf_op op;
	uint32_t csb, cst;
	size_t rl, n;
	int nch, ll;
	unsigned long len;

	allow_only(allowed);
	mikey_common("inkey", ch, &nch, &csb, &rand, &rl, &cs_id);
	cb = hex("const", need("const"), 4, &n);
	cst = (uint32_t)cb[0] << 24 | (uint32_t)cb[1] << 16 | (uint32_t)cb[2] << 8 | cb[3];
	len = number("len", need("len"), 10, KL_PRF_OUT_MAX);
	if (!len)
		die("--len: at least 1");
	ll = kl_mikey_label(cst, cs_id, csb, rand, rl, label, sizeof(label));
	if (ll < 0)
		die("--rand: the label would be over %u bytes", KL_PRF_LABEL_MAX);
	op = (struct kl_prf_op){ .chunks = ch, .label = label, .out = out, .label_len = (uint16_t)ll,
				 .nchunks = (uint8_t)nch, .out_len = (uint8_t)len };
	if (kl_prf_burst(c, &op, 1) != 1)
		die("prf failed");
	put(NULL, out, len);
	return 0;
}

/* Ks_local_MT from a GBA run, as the MT derives it: Milenage -> CK, IK -> Ks_(ext)_NAF (FC 01) ->
 * Ks_local_MT (FC FF03). The run's values from the options or from a UE file line. */
static int cmd_gba_ks_local_mt(void)
{
	static const char *const allowed[] = { "k", "op", "opc", "rand", "sqn", "amf", "impi",
					       "btid", "naf-id", "device-id", "ue-file", "out",
					       NULL };
	const char *uef = get("ue-file"), *out = get("out"), *btid, *dev;
	struct kl_kdf_param naf;
	struct kl_naf_mt_keys mk;
	struct kl_naf_ue *ues = NULL, *u = cli_alloc(sizeof(*u));
	size_t nues = 0;
	int fd, rc;

	allow_only(allowed);
	btid = ident("btid");
	dev = ident("device-id");
	naf = param("naf-id", need("naf-id"), KL_KDF_P_HEX);
	if (!naf.len || naf.len > 255)
		die("--naf-id: want 1..255 bytes");
	if (uef) {
		char err[256];
		const struct kl_naf_ue *f;

		if (get("k") || get("op") || get("opc") || get("rand") || get("sqn") || get("amf") ||
		    get("impi"))
			die("give --ue-file or --k/--opc/--rand/--sqn/--amf/--impi, not both");
		if (kl_naf_ue_read(uef, &ues, &nues, err, sizeof(err)))
			die("--ue-file: %s", err);
		f = kl_naf_ue_find(ues, nues, btid);
		if (f)
			*u = *f;
		kl_naf_ue_free(ues, nues);
		if (!f) {
			fprintf(stderr, "keyline-kdf %s: no UE in the --ue-file has that B-TID\n", cmd);
			return 1;
		}
	} else {
		memcpy(u->k, hex("k", need("k"), 16, NULL), 16);
		if (get("op") && get("opc"))
			die("give --op or --opc, not both");
		if (get("op")) {
			if (kl_milenage_opc(u->k, hex("op", get("op"), 16, NULL), u->opc) < 0)
				die("OPc computation failed");
		} else {
			memcpy(u->opc, hex("opc", need("opc"), 16, NULL), 16);
		}
		memcpy(u->rand, hex("rand", need("rand"), 16, NULL), 16);
		memcpy(u->sqn, hex("sqn", need("sqn"), 6, NULL), 6);
		memcpy(u->amf, hex("amf", need("amf"), 2, NULL), 2);
		snprintf(u->impi, sizeof(u->impi), "%s", ident("impi"));
		snprintf(u->btid, sizeof(u->btid), "%s", btid);
	}
	fd = out_open(out);
	rc = kl_naf_mt_derive_ue(u, naf.data, naf.len, dev, &mk);
	if (rc) {
		out_drop(fd, out);
		fprintf(stderr, "keyline-kdf %s: the derivation failed\n", cmd);
		return 1;
	}
	put_kcv("ks_naf_kcv", mk.ks_naf, sizeof(mk.ks_naf));
	put_kcv("ks_local_mt_kcv", mk.ks_local_mt, sizeof(mk.ks_local_mt));
	out_write(fd, mk.ks_local_mt, sizeof(mk.ks_local_mt));
	kl_memzero(&mk, sizeof(mk));
	return 0;
}

static int cmd_milenage(void)
{
	static const char *const allowed[] = { "k", "op", "opc", "rand", "sqn", "amf", NULL };
	struct kl_milenage_out o;
	uint8_t *k, *opc, *rand, *sqn, *amf;

	allow_only(allowed);
	k = hex("k", need("k"), 16, NULL);
	if (get("op") && get("opc"))
		die("give --op or --opc, not both");
	if (get("op")) {
		uint8_t *op = hex("op", get("op"), 16, NULL);

		opc = cli_alloc(16);
		if (kl_milenage_opc(k, op, opc) < 0)
			die("OPc computation failed");
	} else {
		opc = hex("opc", need("opc"), 16, NULL);
	}
	rand = hex("rand", need("rand"), 16, NULL);
	sqn = hex("sqn", need("sqn"), 6, NULL);
	amf = hex("amf", need("amf"), 2, NULL);
	if (kl_milenage(k, opc, rand, sqn, amf, &o) < 0)
		die("milenage failed");
	put("opc", opc, 16);
	put("f1_mac_a", o.mac_a, 8);
	put("f1star_mac_s", o.mac_s, 8);
	put("f2_res", o.res, 8);
	put("f3_ck", o.ck, 16);
	put("f4_ik", o.ik, 16);
	put("f5_ak", o.ak, 6);
	put("f5star_ak", o.ak_star, 6);
	kl_memzero(&o, sizeof(o));
	return 0;
}

int main(int argc, char **argv)
{
	enum kl_crypto_backend be = KL_CRYPTO_IPSECMB;
	const struct kl_kdf_def *d;
	struct kl_crypto *c;
	int i = 1, rc;

	kl_crypto_set_log(NULL);
	if (i < argc && !strcmp(argv[i], "--backend")) {
		if (i + 1 >= argc || kl_crypto_backend_parse(argv[i + 1], &be) < 0)
			die("--backend: want ipsec-mb or openssl");
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i++];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	for (; i < argc; i += 2) {
		/* never echoed: it may be a key given without its --option */
		if (strncmp(argv[i], "--", 2) || !argv[i][2])
			die("argument %d: unexpected (not shown; keys go in --OPTION)", i);
		if (i + 1 >= argc)
			die("argument %d: an option without a value", i);
		if (nopts == MAX_OPTS)
			die("too many options");
		opts[nopts].pos = i;
		opts[nopts].name = argv[i] + 2;
		opts[nopts++].val = argv[i + 1];
	}
	cmd_ok = !strcmp(cmd, "list") || !strcmp(cmd, "milenage") || !strcmp(cmd, "e2m-key-id") ||
		 !strcmp(cmd, "kcv") || !strcmp(cmd, "kdf") || !strcmp(cmd, "mikey-keys") ||
		 !strcmp(cmd, "mikey-prf") || !strcmp(cmd, "kstar") || !strcmp(cmd, "hm-open") ||
		 !strcmp(cmd, "dh-pub") || !strcmp(cmd, "dh-ks") || !strcmp(cmd, "prose-p") ||
		 !strcmp(cmd, "prose-kd") || !strcmp(cmd, "gba-ks-local-mt") || kl_kdf_def_find(cmd);
	if (!strcmp(cmd, "list")) {
		if (nopts)
			die("takes no options");
		for (unsigned r = 0; r < KL_KDF__COUNT; r++) {
			d = kl_kdf_def_get(r);
			printf("%-12s FC %s%02x  Key %-14s %s\n", d->name, d->fc > 0xFF ? "ff" : "",
			       d->fc & 0xFF, d->key_name, d->source);
		}
		return 0;
	}
	if (!strcmp(cmd, "milenage"))
		return cmd_milenage();
	if (!strcmp(cmd, "gba-ks-local-mt"))
		return cmd_gba_ks_local_mt();
	if (!strcmp(cmd, "e2m-key-id")) {
		static const char *const allowed[] = { "rand", NULL };

		allow_only(allowed);
		printf("%08x\n", kl_e2m_key_id(hex("rand", need("rand"), 16, NULL)));
		return 0;
	}
	if (!strcmp(cmd, "kcv")) {
		static const char *const allowed[] = { "key", NULL };
		uint8_t kcv[KL_KCV_LEN];
		size_t kl;
		uint8_t *k;

		allow_only(allowed);
		k = hex("key", need("key"), 0, &kl);
		if (kl_kcv(k, kl, kcv) < 0)
			die("--key: empty");
		put(NULL, kcv, sizeof(kcv));
		return 0;
	}
	d = kl_kdf_def_find(cmd);
	if (!d && !cmd_ok)
		die("unknown command (try --help)");
	kl_crypto_set_log(NULL);
	c = kl_crypto_create(be);
	if (!c) {
		fprintf(stderr, "keyline-kdf: cannot create the %s crypto context: %s\n",
			be == KL_CRYPTO_IPSECMB ? "ipsec-mb" : "openssl", strerror(errno));
		return 1;
	}
	if (d)
		rc = cmd_row(c, d, (enum kl_kdf_id)(d - kl_kdf_def_get(0)));
	else if (!strcmp(cmd, "kdf"))
		rc = cmd_kdf(c);
	else if (!strcmp(cmd, "mikey-keys"))
		rc = cmd_mikey_keys(c);
	else if (!strcmp(cmd, "kstar"))
		rc = cmd_kstar(c);
	else if (!strcmp(cmd, "hm-open"))
		rc = cmd_hm_open(c);
	else if (!strcmp(cmd, "dh-pub"))
		rc = cmd_dh_pub(c);
	else if (!strcmp(cmd, "dh-ks"))
		rc = cmd_dh_ks(c);
	else if (!strcmp(cmd, "prose-p"))
		rc = cmd_prose_p(c);
	else if (!strcmp(cmd, "prose-kd"))
		rc = cmd_prose_kd(c);
	else
		rc = cmd_mikey_prf(c);
	kl_crypto_destroy(c);
	return rc;
}
