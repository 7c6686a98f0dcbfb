/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline test population (see kl_population.h). TEST KEYS ONLY: load tests and labs.
 *
 * Built twice: kl_popgen (-DKL_POP_NO_IMPORT: generators and file, OpenSSL only, no DPDK) for
 * load generators and tools, and kl_population (with kl_pop_import over the key table).
 */
#include "kl_population.h"
#include "kl_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

const uint8_t kl_pop_domain[3] = { 0x00, 0xF1, 0x10 };

static const char ROOT_LABEL[] = "keyline-population v1 TEST KEYS";


int kl_pop_params_check(const struct kl_pop_params *p, char *err, size_t errlen)
{
	uint64_t now_s;

	if (!p) {
		kl_errf(err, errlen, "no parameters");
		return -EINVAL;
	}
	now_s = p->now_ntp >> 32;
	if (p->ues > KL_POP_MAX_UES) {
		kl_errf(err, errlen, "ues out of range (0..%u)", KL_POP_MAX_UES);
		return -EINVAL;
	}
	if (p->groups > KL_POP_MAX_GROUPS) {
		kl_errf(err, errlen, "groups out of range (0..%u)", KL_POP_MAX_GROUPS);
		return -EINVAL;
	}
	if (p->emses > KL_POP_MAX_EMSES) {
		kl_errf(err, errlen, "emses out of range (0..%u)", KL_POP_MAX_EMSES);
		return -EINVAL;
	}
	if (p->imsis > KL_POP_MAX_IMSIS) {
		kl_errf(err, errlen, "imsis out of range (0..%u)", KL_POP_MAX_IMSIS);
		return -EINVAL;
	}
	if (p->appids > KL_POP_MAX_APPIDS) {
		kl_errf(err, errlen, "appids out of range (0..%u)", KL_POP_MAX_APPIDS);
		return -EINVAL;
	}
	if (p->appids && !p->imsis) {
		kl_errf(err, errlen, "appids need imsis > 0");
		return -EINVAL;
	}
	if (p->e2m_keys_per_imsi < 1 || p->e2m_keys_per_imsi > KL_TABLE_E2M_RING_MAX) {
		kl_errf(err, errlen, "e2m-keys out of range (1..%u)", KL_TABLE_E2M_RING_MAX);
		return -EINVAL;
	}
	if (p->pairs > KL_POP_MAX_PAIRS) {
		kl_errf(err, errlen, "pairs out of range (0..%u)", KL_POP_MAX_PAIRS);
		return -EINVAL;
	}
	if (p->services & ~KL_SVC_ALL) {
		kl_errf(err, errlen, "services out of range (KL_SVC bits, 0..%u)", KL_SVC_ALL);
		return -EINVAL;
	}
	if (p->msk_period_s < 2 || p->msk_period_s > KL_POP_MAX_PERIOD) {
		kl_errf(err, errlen, "msk-period out of range (2..%u)", KL_POP_MAX_PERIOD);
		return -EINVAL;
	}
	if (now_s < p->msk_period_s || now_s + 2ull * p->msk_period_s > UINT32_MAX) {
		kl_errf(err, errlen, "now out of range (NTP seconds, period..2^32-1-2*period)");
		return -EINVAL;
	}
	return 0;
}

/* ---- key material ------------------------------------------------------------------------ */

struct root_cache {
	uint64_t seed;
	int valid;
	uint8_t root[32];
};
static __thread struct root_cache rc_tls;

static int hmac256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen, uint8_t out[32])
{
	unsigned int olen = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) || olen != 32)
		return -EIO;
	return 0;
}

static const uint8_t *root_key(uint64_t seed)
{
	uint8_t s[8];

	if (rc_tls.valid && rc_tls.seed == seed)
		return rc_tls.root;
	for (int b = 0; b < 8; b++)
		s[b] = (uint8_t)(seed >> (56 - 8 * b));
	if (hmac256((const uint8_t *)ROOT_LABEL, sizeof(ROOT_LABEL) - 1, s, 8, rc_tls.root)) {
		rc_tls.valid = 0;
		return NULL;
	}
	rc_tls.seed = seed;
	rc_tls.valid = 1;
	return rc_tls.root;
}

static void put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* key = HMAC-SHA-256(root, label || 0x00 || a (4) [|| b (4)]) truncated to len (<= 32). */
static int derive(const struct kl_pop_params *p, const char *label, uint32_t a, int has_b, uint32_t b,
		  uint8_t *out, size_t len)
{
	uint8_t msg[32], mac[32];
	size_t ll = strlen(label), n = 0;
	const uint8_t *root = root_key(p->seed);
	int rc;

	if (!root)
		return -EIO;
	memcpy(msg, label, ll);
	n = ll;
	msg[n++] = 0;
	put32(msg + n, a);
	n += 4;
	if (has_b) {
		put32(msg + n, b);
		n += 4;
	}
	rc = hmac256(root, 32, msg, n, mac);
	if (!rc)
		memcpy(out, mac, len);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* ---- generators --------------------------------------------------------------------------- */

int kl_pop_ue(const struct kl_pop_params *p, uint32_t i, struct kl_pop_ue *out)
{
	int n;

	if (!p || !out || i >= p->ues || i >= KL_POP_MAX_UES)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	n = snprintf(out->impi, sizeof(out->impi), "ue%08" PRIu32 "@ims.mnc001.mcc001.3gppnetwork.org", i);
	out->impi_len = (uint16_t)n;
	if (p->groups) {
		memcpy(out->groups[0].domain, kl_pop_domain, 3);
		out->groups[0].group = (uint16_t)(1 + i % p->groups);
		out->ngroups = 1;
	}
	return derive(p, "muk", i, 0, 0, out->muk, 32);
}

static uint16_t msk_number(const struct kl_pop_params *p, int next)
{
	uint64_t epoch = (p->now_ntp >> 32) / p->msk_period_s;
	uint32_t cur = (uint32_t)(epoch % 65534u) + 1; /* 1..65534; 0 means "current" on the wire */

	return (uint16_t)(next ? cur % 65534u + 1 : cur);
}

int kl_pop_group(const struct kl_pop_params *p, uint32_t g, struct kl_group_ref *ref,
		 struct kl_group *out)
{
	uint64_t half, period;
	uint16_t nc, nn;
	int rc;

	if (!p || !out || g < 1 || g > p->groups || g > KL_POP_MAX_GROUPS || p->msk_period_s < 2)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (ref) {
		memcpy(ref->domain, kl_pop_domain, 3);
		ref->group = (uint16_t)g;
	}
	half = (uint64_t)(p->msk_period_s / 2) << 32;
	period = (uint64_t)p->msk_period_s << 32;
	nc = msk_number(p, 0);
	nn = msk_number(p, 1);
	out->current.valid_from = p->now_ntp - half;
	out->current.valid_to = p->now_ntp + half;
	out->current.msk_id = g << 16 | nc;
	out->next.valid_from = out->current.valid_to;
	out->next.valid_to = out->current.valid_to + period;
	out->next.msk_id = g << 16 | nn;
	out->has_next = 1;
	rc = derive(p, "msk", g, 1, nc, out->current.key, sizeof(out->current.key));
	if (!rc)
		rc = derive(p, "msk", g, 1, nn, out->next.key, sizeof(out->next.key));
	return rc;
}

int kl_pop_emse(const struct kl_pop_params *p, uint32_t i, struct kl_pop_emse *out)
{
	if (!p || !out || i >= p->emses || i >= KL_POP_MAX_EMSES)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->id_len = (uint16_t)snprintf(out->id, sizeof(out->id), "emse%06" PRIu32 ".corp.example", i);
	return derive(p, "emse", i, 0, 0, out->psk, 32);
}

static void imsi_of(uint32_t i, char imsi[KL_TABLE_IMSI_MAX + 1])
{
	snprintf(imsi, KL_TABLE_IMSI_MAX + 1, "00101%010" PRIu32, i);
}

int kl_pop_e2m(const struct kl_pop_params *p, uint32_t i, unsigned k, struct kl_pop_e2m *out)
{
	uint8_t rand[16];
	int rc;

	if (!p || !out || i >= p->imsis || k >= p->e2m_keys_per_imsi)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	imsi_of(i, out->imsi);
	rc = derive(p, "e2m-rand", i, 1, k, rand, sizeof(rand));
	if (rc)
		return rc;
	rand[15] = (uint8_t)k; /* key ids of one IMSI are distinct */
	out->key_id = kl_e2m_key_id(rand);
	out->expires = 0;
	return derive(p, "e2m", i, 1, k, out->key, 32);
}

uint8_t kl_pop_services(const struct kl_pop_params *p)
{
	if (p->services)
		return p->services;
	return p->pairs ? (uint8_t)(KL_SVC(MBMS) | KL_SVC(HM)) : KL_SVC_DEFAULT;
}

static size_t put_id(uint8_t *b, const char *id, size_t len)
{
	b[0] = (uint8_t)(len >> 8);
	b[1] = (uint8_t)len;
	memcpy(b + 2, id, len);
	return 2 + len;
}

int kl_pop_pair(const struct kl_pop_params *p, uint32_t i, const char *own, size_t own_len,
		struct kl_pop_pair *out)
{
	uint8_t msg[5 + 2 * (2 + KL_TABLE_ID_MAX)], mac[32];
	const uint8_t *root;
	const char *a, *b;
	size_t al, bl, n;
	int c, rc;

	if (!p || !out || !own || i >= p->pairs || own_len < 1 || own_len > KL_TABLE_ID_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->peer_len = (uint16_t)snprintf(out->peer, sizeof(out->peer),
					   "vlr-%" PRIu32 ".pop.keyline.test", i);
	c = memcmp(own, out->peer, own_len < out->peer_len ? own_len : out->peer_len);
	if (c < 0 || (c == 0 && own_len <= out->peer_len)) {
		a = own, al = own_len, b = out->peer, bl = out->peer_len;
	} else {
		a = out->peer, al = out->peer_len, b = own, bl = own_len;
	}
	root = root_key(p->seed);
	if (!root)
		return -EIO;
	memcpy(msg, "pair", 5); /* with its 0x00 */
	n = 5;
	n += put_id(msg + n, a, al);
	n += put_id(msg + n, b, bl);
	rc = hmac256(root, 32, msg, n, mac);
	if (!rc)
		memcpy(out->key, mac, 32);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

int kl_pop_appid(const struct kl_pop_params *p, uint32_t i, struct kl_pop_appid *out)
{
	if (!p || !out || i >= p->appids || i >= KL_POP_MAX_APPIDS || !p->imsis)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->id_len = (uint16_t)snprintf(out->id, sizeof(out->id), "app%06" PRIu32 "@factory.example", i);
	imsi_of(i % p->imsis, out->imsi);
	return 0;
}

/* ---- parameter file ----------------------------------------------------------------------- */

enum { F_SEED, F_UES, F_GROUPS, F_EMSES, F_IMSIS, F_APPIDS, F_E2M, F_NOW, F_PERIOD, F_PAIRS,
       F_SERVICES, F__N };
#define F_OPTIONAL F_PAIRS /* from here on a field may be absent (0) */
static const char *const FIELD[F__N] = { "seed", "ues", "groups", "emses", "imsis",
					 "appids", "e2m-keys", "now", "msk-period", "pairs",
					 "services" };

int kl_pop_write_file(const char *path, const struct kl_pop_params *p)
{
	char buf[512];
	int fd, n, rc = 0;

	if (!path || kl_pop_params_check(p, NULL, 0))
		return -EINVAL;
	n = snprintf(buf, sizeof(buf),
		     KL_POP_FILE_MAGIC "\n"
		     "# keyline TEST population parameters (load tests and labs only).\n"
		     "# No keys here: they are derived from the seed, so anyone with this file has them.\n"
		     "seed %" PRIu64 "\nues %" PRIu32 "\ngroups %" PRIu32 "\nemses %" PRIu32
		     "\nimsis %" PRIu32 "\nappids %" PRIu32 "\ne2m-keys %u\nnow %" PRIu64
		     "\nmsk-period %" PRIu32 "\n",
		     p->seed, p->ues, p->groups, p->emses, p->imsis, p->appids,
		     (unsigned)p->e2m_keys_per_imsi, p->now_ntp >> 32, p->msk_period_s);
	/* the optional fields only when set: such a file still loads into an older keyline */
	if (n > 0 && p->pairs)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "pairs %" PRIu32 "\n", p->pairs);
	if (n > 0 && (size_t)n < sizeof(buf) && p->services)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      "# services: UEs' service bits (mbms 1, hm 2, dh 4, prose 8)\n"
			      "services %u\n", (unsigned)p->services);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0 || write(fd, buf, (size_t)n) != n)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* Strict unsigned decimal: digits only, no sign, no leading zeros (except "0"), no overflow. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int kl_pop_read_file(const char *path, struct kl_pop_params *p, char *err, size_t errlen)
{
	static const uint64_t MAX[F__N] = { UINT64_MAX, KL_POP_MAX_UES, KL_POP_MAX_GROUPS,
					    KL_POP_MAX_EMSES, KL_POP_MAX_IMSIS, KL_POP_MAX_APPIDS,
					    KL_TABLE_E2M_RING_MAX, UINT32_MAX, KL_POP_MAX_PERIOD,
					    KL_POP_MAX_PAIRS, KL_SVC_ALL };
	uint64_t val[F__N] = { 0 };
	int seen[F__N] = { 0 }, line_of[F__N] = { 0 };
	char line[256], cerr[160];
	unsigned lineno = 0;
	struct kl_pop_params q;
	struct stat st;
	FILE *f;
	int fd, rc = -EINVAL;

	if (!path || !p) {
		kl_errf(err, errlen, "bad argument");
		return -EINVAL;
	}
	/* O_NONBLOCK: a FIFO in its place must be refused, not waited on */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		kl_errf(err, errlen, "cannot open: %s", strerror(errno)); /* the caller names it */
		return rc;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "re"))) {
		close(fd);
		kl_errf(err, errlen, "not a regular file");
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *sp, *name, *value;
		int k;

		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		else if (!feof(f)) {
			kl_errf(err, errlen, "line %u: too long", lineno);
			goto out;
		}
		if (lineno == 1) {
			if (strcmp(line, KL_POP_FILE_MAGIC)) {
				kl_errf(err, errlen, "line 1: not \"" KL_POP_FILE_MAGIC "\"");
				goto out;
			}
			continue;
		}
		if (len == 0 || line[0] == '#')
			continue;
		sp = strchr(line, ' ');
		if (!sp) {
			kl_errf(err, errlen, "line %u: expected \"name value\"", lineno);
			goto out;
		}
		*sp = 0;
		name = line;
		value = sp + 1;
		for (k = 0; k < F__N; k++)
			if (!strcmp(name, FIELD[k]))
				break;
		if (k == F__N) {
			kl_errf(err, errlen, "line %u: unknown field \"%.40s\"", lineno, name);
			goto out;
		}
		if (seen[k]) {
			kl_errf(err, errlen, "line %u: duplicate %s (first on line %d)", lineno, FIELD[k],
			     line_of[k]);
			goto out;
		}
		if (parse_u64(value, MAX[k], &val[k])) {
			kl_errf(err, errlen, "line %u: %s: bad value \"%.40s\" (decimal 0..%" PRIu64 ")",
			     lineno, FIELD[k], value, MAX[k]);
			goto out;
		}
		seen[k] = 1;
		line_of[k] = (int)lineno;
	}
	if (ferror(f)) {
		kl_errf(err, errlen, "line %u: read error", lineno + 1);
		rc = -EIO;
		goto out;
	}
	if (lineno == 0) {
		kl_errf(err, errlen, "line 1: empty file");
		goto out;
	}
	for (int k = 0; k < F_OPTIONAL; k++) {
		if (!seen[k]) {
			kl_errf(err, errlen, "line %u: missing field %s", lineno + 1, FIELD[k]);
			goto out;
		}
	}
	memset(&q, 0, sizeof(q));
	q.seed = val[F_SEED];
	q.ues = (uint32_t)val[F_UES];
	q.groups = (uint32_t)val[F_GROUPS];
	q.emses = (uint32_t)val[F_EMSES];
	q.imsis = (uint32_t)val[F_IMSIS];
	q.appids = (uint32_t)val[F_APPIDS];
	q.e2m_keys_per_imsi = (uint8_t)val[F_E2M];
	q.now_ntp = val[F_NOW] << 32;
	q.msk_period_s = (uint32_t)val[F_PERIOD];
	q.pairs = (uint32_t)val[F_PAIRS];
	q.services = (uint8_t)val[F_SERVICES];
	if (kl_pop_params_check(&q, cerr, sizeof(cerr))) {
		/* name the line of the field that is out of range */
		int k = F_NOW;

		if (!strncmp(cerr, "e2m-keys", 8))
			k = F_E2M;
		else if (!strncmp(cerr, "msk-period", 10))
			k = F_PERIOD;
		else if (!strncmp(cerr, "appids", 6))
			k = F_APPIDS;
		else if (!strncmp(cerr, "pairs", 5))
			k = F_PAIRS;
		else if (!strncmp(cerr, "services", 8))
			k = F_SERVICES;
		kl_errf(err, errlen, "line %d: %s", line_of[k], cerr);
		goto out;
	}
	*p = q;
	rc = 0;
out:
	fclose(f);
	return rc;
}

/* ---- import ------------------------------------------------------------------------------- */

#ifndef KL_POP_NO_IMPORT
#define POP_BATCH 1024

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct pop_batch {
	struct kl_pop_ue ue[POP_BATCH];
	struct kl_ue_put put[POP_BATCH];
	int res[POP_BATCH];
};

static int import_ues(struct kl_table *t, const struct kl_pop_params *p, struct kl_pop_stats *st)
{
	struct pop_batch *b = malloc(sizeof(*b));
	int rc = 0;

	if (!b)
		return -ENOMEM;
	for (uint32_t base = 0; base < p->ues && !rc; base += POP_BATCH) {
		unsigned n = p->ues - base < POP_BATCH ? p->ues - base : POP_BATCH;

		for (unsigned j = 0; j < n && !rc; j++) {
			rc = kl_pop_ue(p, base + j, &b->ue[j]);
			b->put[j] = (struct kl_ue_put){ .id = (const uint8_t *)b->ue[j].impi,
							.muk = b->ue[j].muk,
							.groups = b->ue[j].groups,
							.id_len = b->ue[j].impi_len,
							.muk_len = 32,
							.ngroups = b->ue[j].ngroups,
							.services = kl_pop_services(p) };
		}
		if (rc)
			break;
		st->ues += kl_table_put_ue_bulk(t, b->put, n, b->res);
		for (unsigned j = 0; j < n; j++) {
			if (b->res[j] < 0) {
				rc = b->res[j];
				break;
			}
		}
	}
	kl_memzero(b, sizeof(*b));
	free(b);
	return rc;
}

int kl_pop_import(struct kl_table *t, const struct kl_pop_params *p, struct kl_pop_stats *st)
{
	struct kl_pop_stats local;
	uint64_t t0 = mono_ns();
	int rc;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (!t || kl_pop_params_check(p, NULL, 0))
		return -EINVAL;
	rc = import_ues(t, p, st);
	for (uint32_t g = 1; !rc && g <= p->groups; g++) {
		struct kl_group_ref ref;
		struct kl_group grp;

		rc = kl_pop_group(p, g, &ref, &grp);
		if (!rc)
			rc = kl_table_put_group(t, &ref, &grp);
		kl_memzero(&grp, sizeof(grp));
		if (rc >= 0) {
			st->groups++;
			rc = 0;
		}
	}
	for (uint32_t i = 0; !rc && i < p->emses; i++) {
		struct kl_pop_emse e;

		rc = kl_pop_emse(p, i, &e);
		if (!rc)
			rc = kl_table_put_emse(t, (const uint8_t *)e.id, e.id_len, e.psk, 32);
		kl_memzero(&e, sizeof(e));
		if (rc >= 0) {
			st->emses++;
			rc = 0;
		}
	}
	for (uint32_t i = 0; !rc && i < p->imsis; i++) {
		/* oldest first, so the newest (k = 0) ends first in the ring */
		for (int k = (int)p->e2m_keys_per_imsi - 1; !rc && k >= 0; k--) {
			struct kl_pop_e2m e;

			rc = kl_pop_e2m(p, i, (unsigned)k, &e);
			if (!rc)
				rc = kl_table_push_e2m(t, e.imsi, e.key, e.key_id, e.expires);
			kl_memzero(&e, sizeof(e));
			if (rc >= 0) {
				st->e2m_keys++;
				rc = 0;
			}
		}
		if (!rc)
			st->imsis++;
	}
	for (uint32_t i = 0; !rc && i < p->appids; i++) {
		struct kl_pop_appid a;

		rc = kl_pop_appid(p, i, &a);
		if (!rc)
			rc = kl_table_put_appid(t, (const uint8_t *)a.id, a.id_len, a.imsi);
		if (rc >= 0) {
			st->appids++;
			rc = 0;
		}
	}
	for (uint32_t i = 0; !rc && p->server_id && i < p->pairs; i++) {
		struct kl_pop_pair k;

		rc = kl_pop_pair(p, i, p->server_id, p->server_id_len, &k);
		if (!rc && !(k.peer_len == p->server_id_len &&
			     !memcmp(k.peer, p->server_id, k.peer_len))) {
			rc = kl_table_put_pair(t, (const uint8_t *)k.peer, k.peer_len, k.key, 32, 0);
			if (rc >= 0)
				st->pairs++;
		}
		kl_memzero(&k, sizeof(k));
		if (rc > 0)
			rc = 0;
	}
	st->elapsed_ns = mono_ns() - t0;
	return rc;
}
#endif
