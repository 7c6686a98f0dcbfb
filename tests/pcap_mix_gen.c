/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The capture side of the net_pcap replay test (test_keylined_pcap.py), no DPDK:
 *
 *   pcap_mix_gen gen POP_FILE MIX.pcap EXPECT.json
 *     writes a shuffled (deterministic order) mix of valid MBMS and E2M requests for the
 *     population, requests that must be dropped at every MIKEY stage, frames that must be dropped
 *     at every L2-L4 check, and ARP/ICMP/ICMPv6/NDP requests; EXPECT.json holds the exact value of
 *     every keylined counter after the replay (from reading kl_net.c and kl_engine.c: each frame
 *     is built so that only one drop reason can apply) and the number of frames keylined sends.
 *
 *   pcap_mix_gen verify POP_FILE MIX.pcap OUT.pcap [SERVER_IDENTITY]
 *     works out on its own, from MIX.pcap and the population, which frames deserve an answer
 *     (strict L2-L4 checks written here, not kl_net's; MAC recomputed with the population's
 *     PSK), then checks every frame of OUT.pcap: ARP/ICMP/NDP replies field by field with
 *     checksums computed here; every UDP answer matched to its request by RAND, verified with
 *     the rebuilt client state (kl_client_verify) and its keys compared with the population's
 *     MSKs and e2m_keys (HMAC-SHA-256 KDF computed here with OpenSSL, and with kl_derive).
 *     Prints a JSON summary; exits 1 on any mismatch, missing or unexpected answer.
 *
 * Both sides use the addresses of the test configuration: 192.0.2.1, 2001:db8::1, UDP 2269.
 * Test keys only (a throw-away population); keys are never printed, only key check values.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kl_engine.h"
#include "kl_io.h"
#include "kl_net.h"
#include "kl_population.h"

#define MAX_FRAME 2048
#define SKEW_S 60	 /* keylined's default skew_s */
#define PREDELIVERY_S 60 /* and predelivery_s */
#define NTP_SEC(s) ((uint64_t)(s) << 32)
#define ET_IPV4 0x0800
#define ET_ARP 0x0806
#define ET_IPV6 0x86DD

static const uint8_t srv4[4] = { 192, 0, 2, 1 };
static const uint8_t srv6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
static const uint8_t other4[4] = { 192, 0, 2, 99 };
static const uint8_t other6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x99 };
/* Where clients send: the MAC net_pcap gives port 0 ("\x02pcap\0"), as a client would have
 * learnt by ARP. verify learns the server's MAC from its ARP replies instead of trusting this. */
static const uint8_t srv_mac[6] = { 0x02, 0x70, 0x63, 0x61, 0x70, 0x00 };

/* Counter names straight from keylined's lists, so the expectations use its spelling. */
static const char *const eng_names[] = {
#define KL_X(e, n, d) n,
	KL_COUNTER_LIST(KL_X)
#undef KL_X
};
static const char *const io_names[] = {
#define KL_X(e, n, d) n,
	KL_IO_COUNTER_LIST(KL_X)
#undef KL_X
};
static const char *const drop_names[] = {
#define KL_X(e, n, d) n,
	KL_DROP_LIST(KL_X)
#undef KL_X
};
static const char *const net_names[] = {
#define KL_X(e, n, d) n,
	KL_NET_DROP_LIST(KL_X)
#undef KL_X
};

/* The engine counters that count answers (one datagram sent each). */
static const enum kl_counter answer_cnt[] = { KL_CNT_ANSWERED_MBMS, KL_CNT_ANSWERED_E2M,
					     KL_CNT_ERR_INVALID_TS, KL_CNT_ERR_NOT_AUTHORISED,
					     KL_CNT_ERR_NO_SUCH_KEY, KL_CNT_ERR_KEY_NOT_VALID };
#define N_ANSWER_CNT (sizeof(answer_cnt) / sizeof(answer_cnt[0]))

/* ---- shared: checksums, pcap files, population identities ----------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += rd16(p + i);
	if (i < n)
		s += (uint32_t)p[i] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)~s;
}

/* L4 checksum over the pseudo-header of the IP header at ip; 0 when the stored sum is right. */
static uint16_t l4_sum(int v6, const uint8_t *ip, uint8_t proto, const uint8_t *l4, size_t n)
{
	uint32_t s = v6 ? sum16(0, ip + 8, 32) : sum16(0, ip + 12, 8);

	s += proto + (uint32_t)(n & 0xFFFF) + (uint32_t)(n >> 16);
	return fold(sum16(s, l4, n));
}

struct frame {
	uint8_t *data;
	uint32_t len;
	unsigned cat; /* gen: category index */
};

struct frames {
	struct frame *f;
	unsigned n, cap;
};

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "pcap_mix_gen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void frames_add(struct frames *fs, const uint8_t *d, uint32_t len, unsigned cat)
{
	if (fs->n == fs->cap) {
		unsigned nc = fs->cap ? 2 * fs->cap : 64;
		struct frame *nf = realloc(fs->f, nc * sizeof(*nf));

		if (!nf)
			fatal("out of memory");
		fs->f = nf;
		fs->cap = nc;
	}
	fs->f[fs->n].data = malloc(len ? len : 1);
	if (!fs->f[fs->n].data)
		fatal("out of memory");
	memcpy(fs->f[fs->n].data, d, len);
	fs->f[fs->n].len = len;
	fs->f[fs->n].cat = cat;
	fs->n++;
}

static void frames_free(struct frames *fs)
{
	for (unsigned i = 0; i < fs->n; i++)
		free(fs->f[i].data);
	free(fs->f);
	fs->f = NULL;
	fs->n = fs->cap = 0;
}

static uint32_t rd32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t rd32x(const uint8_t *p, int swap)
{
	uint32_t v = rd32le(p);

	return swap ? __builtin_bswap32(v) : v;
}

/* Classic libpcap file, either byte order, micro- or nanosecond stamps (the pcap PMD writes
 * nanoseconds), Ethernet link type. */
static void pcap_read(const char *path, struct frames *fs)
{
	FILE *f = fopen(path, "rb");
	uint8_t h[24], rec[16], buf[65536];
	uint32_t magic;
	int swap;

	if (!f)
		fatal("%s: %s", path, strerror(errno));
	if (fread(h, 1, 24, f) != 24)
		fatal("%s: no pcap header", path);
	magic = rd32le(h);
	if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
		swap = 0;
	else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
		swap = 1;
	else
		fatal("%s: not a classic pcap file (magic %08x)", path, magic);
	if (rd32x(h + 20, swap) != 1)
		fatal("%s: link type %u, want Ethernet", path, rd32x(h + 20, swap));
	for (;;) {
		size_t got = fread(rec, 1, 16, f);
		uint32_t incl;

		if (got == 0)
			break;
		if (got != 16)
			fatal("%s: truncated record header", path);
		incl = rd32x(rec + 8, swap);
		if (incl > sizeof(buf))
			fatal("%s: record of %u bytes", path, incl);
		if (fread(buf, 1, incl, f) != incl)
			fatal("%s: truncated record", path);
		frames_add(fs, buf, incl, 0);
	}
	fclose(f);
}

static void wr32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void pcap_write(const char *path, const struct frames *fs, uint64_t unix_s)
{
	FILE *f = fopen(path, "wb");
	uint8_t h[24] = { 0 }, rec[16];

	if (!f)
		fatal("%s: %s", path, strerror(errno));
	wr32le(h, 0xa1b2c3d4u);
	h[4] = 2;
	h[6] = 4;
	wr32le(h + 16, 65535);
	wr32le(h + 20, 1);
	fwrite(h, 1, 24, f);
	for (unsigned i = 0; i < fs->n; i++) {
		wr32le(rec, (uint32_t)unix_s);
		wr32le(rec + 4, i * 10);
		wr32le(rec + 8, fs->f[i].len);
		wr32le(rec + 12, fs->f[i].len);
		fwrite(rec, 1, 16, f);
		fwrite(fs->f[i].data, 1, fs->f[i].len, f);
	}
	if (fclose(f))
		fatal("%s: write failed", path);
}

static void load_pop(const char *path, struct kl_pop_params *p)
{
	char err[256];

	if (kl_pop_read_file(path, p, err, sizeof(err))) {
		if (!strncmp(err, path, strlen(path))) /* an open error names the file already */
			fatal("%s", err);
		fatal("%s: %s", path, err);
	}
	if (!p->ues || !p->groups || !p->emses || !p->imsis || !p->appids)
		fatal("%s: the mix needs UEs, groups, EMSEs, IMSIs and application ids", path);
}

/* Parse a decimal field of n digits at s; -1 if not all digits. */
static long long digits(const uint8_t *s, size_t n)
{
	long long v = 0;

	if (!n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Population identities by pattern ("ue%08u@ims...", "emse%06u.corp.example", "app%06u@factory.
 * example", "00101%010u"): the index, confirmed by regenerating the entry; -1 if not in it. */
static long long pop_ue_index(const struct kl_pop_params *p, const uint8_t *id, size_t n,
			      struct kl_pop_ue *out)
{
	long long i = n > 10 && !memcmp(id, "ue", 2) ? digits(id + 2, 8) : -1;

	if (i < 0 || i >= p->ues || kl_pop_ue(p, (uint32_t)i, out) || out->impi_len != n ||
	    memcmp(out->impi, id, n))
		return -1;
	return i;
}

static long long pop_emse_index(const struct kl_pop_params *p, const uint8_t *id, size_t n,
				struct kl_pop_emse *out)
{
	long long i = n > 10 && !memcmp(id, "emse", 4) ? digits(id + 4, 6) : -1;

	if (i < 0 || i >= p->emses || kl_pop_emse(p, (uint32_t)i, out) || out->id_len != n ||
	    memcmp(out->id, id, n))
		return -1;
	return i;
}

/* IMSI index of a UE identity TLV (an IMSI or an application identity); -1 if unknown. */
static long long pop_imsi_index(const struct kl_pop_params *p, const uint8_t *ue, size_t n)
{
	if (n >= 1 && n <= 15 && digits(ue, n) >= 0) {
		long long i = n == 15 && !memcmp(ue, "00101", 5) ? digits(ue + 5, 10) : -1;

		return i >= 0 && i < p->imsis ? i : -1;
	}
	if (n > 9 && !memcmp(ue, "app", 3)) {
		long long i = digits(ue + 3, 6);
		struct kl_pop_appid a;

		if (i < 0 || i >= p->appids || kl_pop_appid(p, (uint32_t)i, &a) || a.id_len != n ||
		    memcmp(a.id, ue, n))
			return -1;
		return digits((const uint8_t *)a.imsi + 5, 10);
	}
	return -1;
}

/* ---- gen ---------------------------------------------------------------------------------------- */

enum cat {
	C_MBMS4,
	C_MBMS6,
	C_E2M_IMSI,
	C_E2M_APPID,
	C_UNKNOWN_ID,
	C_BAD_MAC,
	C_REPLAY,
	C_MALFORMED,
	C_BAD_VERSION,
	C_OVERSIZED,
	C_LATE,
	C_NOT_AUTH,
	C_NO_SUCH_KEY,
	C_TRUNCATED,
	C_BAD_CSUM,
	C_WRONG_PORT,
	C_NON_IP,
	C_NOT_FOR_US,
	C_FRAGMENT,
	C_BAD_HEADER,
	C_UNSUP_PROTO,
	C_UNSUP_ICMP,
	C_ARP,
	C_ARP_OTHER,
	C_ICMP4,
	C_ICMP6,
	C_NDP,
	C__COUNT
};

static const char *const cat_names[C__COUNT] = {
	"mbms_ipv4", "mbms_ipv6", "e2m_by_imsi", "e2m_by_appid", "unknown_identity", "bad_mac",
	"replayed_duplicate", "malformed_payload", "unsupported_version", "oversized",
	"t_outside_skew", "mbms_not_authorised", "no_such_key", "truncated", "bad_checksum",
	"wrong_port", "non_ip", "not_for_us", "fragment", "bad_ip_header", "unsupported_proto",
	"unsupported_icmp", "arp_for_us", "arp_for_other", "icmp4_echo", "icmp6_echo", "ndp_ns",
};

struct expect {
	uint64_t eng[KL_CNT__COUNT];
	uint64_t io[KL_IO_CNT__COUNT];
	uint64_t drop[KL_DROP__COUNT];
	uint64_t net[KL_NET_DROP__COUNT];
	unsigned cat[C__COUNT];
};

struct gen {
	struct kl_pop_params pop;
	struct kl_crypto *c;
	uint64_t rng;
	uint64_t now;
	unsigned seq; /* source address / port of the next client */
	struct frames fs;
	struct expect ex;
};

static uint64_t rnd(struct gen *g)
{
	uint64_t z = (g->rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t rnd_below(struct gen *g, uint32_t n)
{
	return (uint32_t)(rnd(g) % n);
}

/* One request of the mix, before it is signed. */
struct rq {
	int e2m;
	uint32_t who;		/* UE or EMSE index */
	const char *id;		/* instead of the population's identity (unknown requester) */
	int group_delta;	/* MBMS: ask for the UE's group + this (mod groups) */
	int number;		/* MBMS: key number (0 = "the current key"); -1: the current key's
				 * number, asked for explicitly */
	const char *ue;		/* E2M: UE identity TLV */
	int key_k;		/* E2M: k >= 0 the id of the k-th newest key; -1 no key id TLV;
				 * -2 key_id below */
	uint32_t key_id;
	int64_t t_off_s;	/* T = now + this */
	int wrong_psk;		/* sign with a key that is not the requester's */
};

/* Build and sign a request; returns its length. */
static uint16_t make_req(struct gen *g, const struct rq *r, uint8_t *out, uint16_t cap)
{
	struct kl_client_req q;
	struct kl_pop_ue ue;
	struct kl_pop_emse em;
	uint8_t rand[16], junk_psk[32];
	uint64_t x;

	memset(&q, 0, sizeof(q));
	for (int i = 0; i < 16; i += 8) {
		x = rnd(g);
		memcpy(rand + i, &x, 8);
	}
	x = rnd(g);
	memcpy(junk_psk, &x, 8);
	memset(junk_psk + 8, 0x5A, sizeof(junk_psk) - 8);
	q.spec.rand = rand;
	q.spec.ts = g->now + (uint64_t)(r->t_off_s * (int64_t)NTP_SEC(1));
	q.spec.csb_id = (uint32_t)rnd(g);
	q.spec.prf = (uint8_t)rnd_below(g, 2);
	q.spec.id_type = (uint8_t)rnd_below(g, 2);
	q.buf = out;
	q.cap = cap;
	if (!r->e2m) {
		struct kl_pop_ue other;

		if (kl_pop_ue(&g->pop, r->who, &ue))
			fatal("population UE %u", r->who);
		q.spec.kind = KL_KIND_MBMS;
		q.spec.id = (const uint8_t *)(r->id ? r->id : ue.impi);
		q.spec.id_len = (uint16_t)(r->id ? strlen(r->id) : ue.impi_len);
		memcpy(q.spec.domain, ue.groups[0].domain, 3);
		q.spec.group = (uint16_t)(1 + (ue.groups[0].group - 1 + r->group_delta) % g->pop.groups);
		if (r->number < 0) {
			struct kl_group_ref ref;
			struct kl_group grp;

			if (kl_pop_group(&g->pop, q.spec.group, &ref, &grp))
				fatal("population group %u", q.spec.group);
			q.spec.number = (uint16_t)grp.current.msk_id;
			kl_memzero(&grp, sizeof(grp));
		} else {
			q.spec.number = (uint16_t)r->number;
		}
		q.psk = ue.muk;
		q.psk_len = sizeof(ue.muk);
		if (r->wrong_psk) {
			if (kl_pop_ue(&g->pop, (r->who + 1) % g->pop.ues, &other))
				fatal("population UE");
			memcpy(ue.muk, other.muk, sizeof(ue.muk));
			kl_memzero(&other, sizeof(other));
		}
	} else {
		if (kl_pop_emse(&g->pop, r->who, &em))
			fatal("population EMSE %u", r->who);
		q.spec.kind = KL_KIND_E2M;
		q.spec.id = (const uint8_t *)(r->id ? r->id : em.id);
		q.spec.id_len = (uint16_t)(r->id ? strlen(r->id) : em.id_len);
		q.spec.ue = (const uint8_t *)r->ue;
		q.spec.ue_len = (uint16_t)strlen(r->ue);
		if (r->key_k >= 0) {
			long long im = pop_imsi_index(&g->pop, (const uint8_t *)r->ue, strlen(r->ue));
			struct kl_pop_e2m e;

			if (im < 0 || kl_pop_e2m(&g->pop, (uint32_t)im, (unsigned)r->key_k, &e))
				fatal("population E2M key %s/%d", r->ue, r->key_k);
			q.spec.key_id = e.key_id;
			q.spec.has_key_id = 1;
			kl_memzero(&e, sizeof(e));
		} else if (r->key_k == -2) {
			q.spec.key_id = r->key_id;
			q.spec.has_key_id = 1;
		}
		q.psk = r->wrong_psk ? junk_psk : em.psk;
		q.psk_len = 32;
	}
	if (r->id) /* an unknown requester signs with a key of its own */
		q.psk = junk_psk;
	if (kl_client_sign(g->c, &q, 1) != 1)
		fatal("kl_client_sign failed");
	kl_memzero(&ue, sizeof(ue));
	kl_memzero(&em, sizeof(em));
	kl_memzero(junk_psk, sizeof(junk_psk));
	kl_memzero(q.auth_key, sizeof(q.auth_key) + sizeof(q.encr_key) + sizeof(q.salt_key));
	return q.len;
}

/* How an IP/UDP frame is spoilt. */
struct mut {
	int v6;
	const uint8_t *dst;  /* NULL: ours */
	uint16_t dport;	     /* 0: 2269 */
	int tot_extra;	     /* IPv4 total length / IPv6 payload length this much too large */
	int bad_ip_csum;
	int udp_csum;	     /* 0 right, 1 none (zero), 2 wrong */
	uint16_t frag;	     /* IPv4 flags/fragment offset field */
	unsigned trailer;    /* Ethernet padding after the IP packet */
	uint8_t proto;	     /* 0: UDP */
	uint8_t ihl_words;   /* 0: 5 */
};

static void client_of(struct gen *g, int v6, uint8_t mac[6], uint8_t ip[16], uint16_t *port)
{
	unsigned s = g->seq++;

	memcpy(mac, "\x02\x00\x00\x00\x01\x00", 6);
	mac[4] = (uint8_t)(s >> 8);
	mac[5] = (uint8_t)s;
	memset(ip, 0, 16);
	if (v6) {
		memcpy(ip, "\x20\x01\x0d\xb8\x01\x00", 6);
		wr16(ip + 14, (uint16_t)(s + 1));
	} else {
		ip[0] = 198;
		ip[1] = 51;
		ip[2] = (uint8_t)(100 + s / 250);
		ip[3] = (uint8_t)(1 + s % 250);
	}
	*port = (uint16_t)(40000 + s);
}

/* Ethernet + IP + UDP (or proto) around pl; returns the frame length. */
static uint32_t ip_frame(struct gen *g, uint8_t *f, const uint8_t *pl, uint16_t plen,
			 const struct mut *m)
{
	uint8_t mac[6], sip[16], *ip = f + 14, *l4;
	uint16_t sport, ulen = (uint16_t)(8 + plen), ihl = (uint16_t)(4 * (m->ihl_words ? m->ihl_words : 5));
	uint8_t proto = m->proto ? m->proto : 17;
	uint32_t len;

	client_of(g, m->v6, mac, sip, &sport);
	memcpy(f, srv_mac, 6);
	memcpy(f + 6, mac, 6);
	wr16(f + 12, m->v6 ? ET_IPV6 : ET_IPV4);
	if (m->v6) {
		memset(ip, 0, 40);
		ip[0] = 0x60;
		wr16(ip + 4, (uint16_t)(ulen + m->tot_extra));
		ip[6] = proto;
		ip[7] = 64;
		memcpy(ip + 8, sip, 16);
		memcpy(ip + 24, m->dst ? m->dst : srv6, 16);
		l4 = ip + 40;
	} else {
		uint16_t hl = ihl < 20 ? 20 : ihl;

		memset(ip, 0, hl);
		ip[0] = (uint8_t)(0x40 | ihl / 4);
		wr16(ip + 2, (uint16_t)(hl + ulen + m->tot_extra));
		wr16(ip + 4, (uint16_t)g->seq);
		wr16(ip + 6, m->frag ? m->frag : 0x4000);
		ip[8] = 64;
		ip[9] = proto;
		memcpy(ip + 12, sip, 4);
		memcpy(ip + 16, m->dst ? m->dst : srv4, 4);
		wr16(ip + 10, fold(sum16(0, ip, hl)));
		if (m->bad_ip_csum)
			ip[11] ^= 0x01;
		l4 = ip + hl;
	}
	wr16(l4, sport);
	wr16(l4 + 2, m->dport ? m->dport : KL_MIKEY_PORT);
	wr16(l4 + 4, ulen);
	wr16(l4 + 6, 0);
	memcpy(l4 + 8, pl, plen);
	if (m->udp_csum != 1) {
		uint16_t c = l4_sum(m->v6, ip, proto, l4, ulen);

		wr16(l4 + 6, c ? c : 0xFFFF);
		if (m->udp_csum == 2)
			l4[7] ^= 0x40;
	}
	len = (uint32_t)(l4 - f) + ulen;
	memset(f + len, 0, m->trailer);
	return len + m->trailer;
}

static void add(struct gen *g, const uint8_t *f, uint32_t len, enum cat c)
{
	frames_add(&g->fs, f, len, c);
	g->ex.cat[c]++;
	g->ex.io[KL_IO_CNT_RX_FRAMES]++;
}

/* A UDP datagram that reaches the engine: it counts as received; d is its parse result. */
static void exp_engine(struct gen *g, enum kl_drop d, int e2m)
{
	g->ex.eng[KL_CNT_RX]++;
	if (d != KL_DROP_NONE) {
		g->ex.drop[d]++;
		return;
	}
	g->ex.eng[e2m ? KL_CNT_REQ_E2M : KL_CNT_REQ_MBMS]++;
}

static void exp_drop(struct gen *g, enum kl_drop d, int e2m)
{
	exp_engine(g, KL_DROP_NONE, e2m);
	g->ex.drop[d]++;
}

static void exp_answer(struct gen *g, enum kl_counter c, int e2m)
{
	exp_engine(g, KL_DROP_NONE, e2m);
	g->ex.eng[c]++;
	g->ex.io[KL_IO_CNT_TX_FRAMES]++;
}

static void exp_net(struct gen *g, enum kl_net_drop d)
{
	g->ex.net[d]++;
}

static void exp_reply(struct gen *g, enum kl_io_counter c)
{
	g->ex.io[c]++;
	g->ex.io[KL_IO_CNT_TX_FRAMES]++;
}

/* A signed request in a clean frame, expected to be answered with counter c. */
static void valid(struct gen *g, const struct rq *r, const struct mut *m, enum kl_counter c,
		  enum cat cat)
{
	uint8_t pl[600], f[MAX_FRAME];
	uint16_t n = make_req(g, r, pl, sizeof(pl));

	add(g, f, ip_frame(g, f, pl, n, m), cat);
	exp_answer(g, c, r->e2m);
}

static const char *imsi_str(uint32_t i, char *buf)
{
	snprintf(buf, KL_TABLE_IMSI_MAX + 1, "00101%010" PRIu32, i);
	return buf;
}

static const char *appid_str(struct gen *g, uint32_t i, char *buf)
{
	struct kl_pop_appid a;

	if (kl_pop_appid(&g->pop, i, &a))
		fatal("population appid %u", i);
	memcpy(buf, a.id, a.id_len);
	buf[a.id_len] = 0;
	return buf;
}

static void gen_requests(struct gen *g)
{
	const struct mut v4 = { 0 }, v6 = { .v6 = 1 };
	char s[64];
	uint8_t pl[700], f[MAX_FRAME];
	uint16_t n;
	uint32_t len;
	unsigned e2m_ring = g->pop.e2m_keys_per_imsi;

	/* valid MBMS: current key (number 0) or the current key number asked for explicitly */
	for (int i = 0; i < 16; i++) {
		struct rq r = { .who = rnd_below(g, g->pop.ues), .number = i % 5 == 4 ? -1 : 0 };
		struct mut m = v4;

		m.udp_csum = i == 3 ? 1 : 0; /* no UDP checksum is fine over IPv4 */
		m.trailer = i == 5 ? 6 : 0;  /* Ethernet padding after the IP packet */
		valid(g, &r, &m, KL_CNT_ANSWERED_MBMS, C_MBMS4);
	}
	for (int i = 0; i < 8; i++) {
		struct rq r = { .who = rnd_below(g, g->pop.ues), .number = i == 7 ? -1 : 0 };

		valid(g, &r, &v6, KL_CNT_ANSWERED_MBMS, C_MBMS6);
	}
	/* valid E2M by IMSI: the newest key, or a key id of the ring */
	for (int i = 0; i < 6; i++) {
		struct rq r = { .e2m = 1, .who = rnd_below(g, g->pop.emses),
				.ue = imsi_str(rnd_below(g, g->pop.imsis), s),
				.key_k = i < 2 ? -1 : (int)((unsigned)i % e2m_ring) };

		valid(g, &r, i & 1 ? &v6 : &v4, KL_CNT_ANSWERED_E2M, C_E2M_IMSI);
	}
	/* valid E2M by application identity */
	for (int i = 0; i < 5; i++) {
		struct rq r = { .e2m = 1, .who = rnd_below(g, g->pop.emses),
				.ue = appid_str(g, rnd_below(g, g->pop.appids), s),
				.key_k = i == 4 ? (int)(e2m_ring - 1) : -1 };

		valid(g, &r, i & 1 ? &v6 : &v4, KL_CNT_ANSWERED_E2M, C_E2M_APPID);
	}
	/* T outside the skew: a verified requester gets error 1 */
	{
		struct rq a = { .who = rnd_below(g, g->pop.ues), .t_off_s = -600 };
		struct rq b = { .e2m = 1, .who = rnd_below(g, g->pop.emses), .t_off_s = 600,
				.ue = imsi_str(0, s), .key_k = -1 };

		valid(g, &a, &v4, KL_CNT_ERR_INVALID_TS, C_LATE);
		valid(g, &b, &v6, KL_CNT_ERR_INVALID_TS, C_LATE);
	}
	/* answered errors: not authorised (7), no such key (12/2) */
	{
		struct rq na = { .who = rnd_below(g, g->pop.ues), .group_delta = 1 };
		struct rq nk[4] = {
			{ .e2m = 1, .who = 0, .ue = "001019999999999", .key_k = -1 },
			{ .e2m = 1, .who = 1, .ue = "app999999@factory.example", .key_k = -1 },
			{ .e2m = 1, .who = 2, .key_k = -2, .key_id = 0 },
			{ .who = rnd_below(g, g->pop.ues), .number = 0 },
		};
		char s2[64];
		struct kl_group_ref ref;
		struct kl_group grp;
		uint32_t ue_group;
		struct kl_pop_ue ue;

		valid(g, &na, &v4, KL_CNT_ERR_NOT_AUTHORISED, C_NOT_AUTH);
		nk[2].ue = imsi_str(1, s2);
		/* a key id no key of the ring has */
		for (uint32_t cand = 0xDEAD0000u;; cand++) {
			int used = 0;

			for (unsigned k = 0; k < e2m_ring; k++) {
				struct kl_pop_e2m e;

				if (kl_pop_e2m(&g->pop, 1, k, &e))
					fatal("population E2M key");
				used |= e.key_id == cand;
				kl_memzero(&e, sizeof(e));
			}
			if (!used) {
				nk[2].key_id = cand;
				break;
			}
		}
		/* MBMS key number that is neither the current nor the next one */
		if (kl_pop_ue(&g->pop, nk[3].who, &ue))
			fatal("population UE");
		ue_group = ue.groups[0].group;
		kl_memzero(&ue, sizeof(ue));
		if (kl_pop_group(&g->pop, ue_group, &ref, &grp))
			fatal("population group");
		nk[3].number = (uint16_t)(grp.current.msk_id + 7);
		if (nk[3].number == 0 || nk[3].number == (uint16_t)grp.next.msk_id)
			nk[3].number = (uint16_t)(grp.current.msk_id + 9);
		kl_memzero(&grp, sizeof(grp));
		for (int i = 0; i < 4; i++)
			valid(g, &nk[i], i & 1 ? &v6 : &v4, KL_CNT_ERR_NO_SUCH_KEY, C_NO_SUCH_KEY);
	}
	/* unknown requesters (well-formed, signed with a key of their own) */
	{
		struct rq u[3] = {
			{ .who = 0, .id = "ue99999999@ims.mnc001.mcc001.3gppnetwork.org" },
			{ .who = 1, .id = "nobody@ims.example" },
			{ .e2m = 1, .who = 0, .id = "emse999999.corp.example", .ue = "001010000000000",
			  .key_k = -1 },
		};

		for (int i = 0; i < 3; i++) {
			n = make_req(g, &u[i], pl, sizeof(pl));
			add(g, f, ip_frame(g, f, pl, n, i & 1 ? &v6 : &v4), C_UNKNOWN_ID);
			exp_drop(g, KL_DROP_UNKNOWN_IDENTITY, u[i].e2m);
		}
	}
	/* bad MAC: a flipped MAC bit, another UE's MUK, a field changed after signing */
	for (int i = 0; i < 3; i++) {
		struct rq r = { .e2m = i == 2, .who = rnd_below(g, i == 2 ? g->pop.emses : g->pop.ues),
				.ue = imsi_str(2, s), .key_k = -1, .wrong_psk = i == 1 };

		n = make_req(g, &r, pl, sizeof(pl));
		if (i == 0)
			pl[n - 1] ^= 0x01;
		else if (i == 2)
			pl[7] ^= 0x01; /* CSB ID */
		add(g, f, ip_frame(g, f, pl, n, i & 1 ? &v6 : &v4), C_BAD_MAC);
		exp_drop(g, KL_DROP_BAD_MAC, r.e2m);
	}
	/* replays: byte-identical copies of two answered requests; the first copy is answered */
	for (int i = 0; i < 2; i++) {
		struct rq r = { .e2m = i, .who = rnd_below(g, i ? g->pop.emses : g->pop.ues),
				.ue = imsi_str(3, s), .key_k = -1 };

		valid(g, &r, i ? &v6 : &v4, i ? KL_CNT_ANSWERED_E2M : KL_CNT_ANSWERED_MBMS,
		      i ? C_E2M_IMSI : C_MBMS4);
		add(g, g->fs.f[g->fs.n - 1].data, g->fs.f[g->fs.n - 1].len, C_REPLAY);
		exp_drop(g, KL_DROP_REPLAY, i);
	}
	/* malformed MIKEY: empty, 7 bytes, wrong payload chain after a valid HDR start, bytes
	 * after V */
	{
		static const uint8_t seven[7] = { 1, 0, 5, 0, 0, 0, 0 };
		uint8_t junk[40];
		struct rq r = { .who = rnd_below(g, g->pop.ues) };

		len = ip_frame(g, f, pl, 0, &v4);
		add(g, f, len, C_MALFORMED);
		add(g, f, ip_frame(g, f, seven, sizeof(seven), &v6), C_MALFORMED);
		for (unsigned i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rnd(g);
		junk[0] = 1;	/* version 1 */
		junk[1] = 0;	/* data type 0 */
		junk[2] = 7;	/* next payload: not T */
		add(g, f, ip_frame(g, f, junk, sizeof(junk), &v4), C_MALFORMED);
		n = make_req(g, &r, pl, sizeof(pl));
		memcpy(pl + n, "\0\0\0", 3);
		add(g, f, ip_frame(g, f, pl, (uint16_t)(n + 3), &v6), C_MALFORMED);
		for (int i = 0; i < 4; i++)
			exp_engine(g, KL_DROP_MALFORMED, 0);
	}
	/* MIKEY version 2 */
	{
		struct rq r = { .who = rnd_below(g, g->pop.ues) };

		n = make_req(g, &r, pl, sizeof(pl));
		pl[0] = 2;
		add(g, f, ip_frame(g, f, pl, n, &v4), C_BAD_VERSION);
		exp_engine(g, KL_DROP_UNSUPPORTED_VERSION, 0);
	}
	/* oversized: a signed request grown to 513 and 640 bytes (size is checked first) */
	for (int i = 0; i < 2; i++) {
		struct rq r = { .who = rnd_below(g, g->pop.ues) };
		uint16_t to = i ? 640 : KL_MIKEY_REQ_MAX + 1;

		n = make_req(g, &r, pl, sizeof(pl));
		memset(pl + n, 0, (size_t)(to - n));
		add(g, f, ip_frame(g, f, pl, to, i ? &v6 : &v4), C_OVERSIZED);
		exp_engine(g, KL_DROP_OVERSIZED, 0);
	}
}

/* L2-L4 drops, each around an otherwise valid signed request (an answer to one would show). */
static void gen_net(struct gen *g)
{
	static const uint8_t lldp[] = { 0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x02, 0, 0, 0, 2, 1,
					0x88, 0xcc, 0x02, 0x07, 0x04, 0x02, 0, 0, 0, 2, 1, 0x04,
					0x03, 0x05, 'p', '1', 0x06, 0x02, 0x00, 0x78, 0x00, 0x00 };
	const struct mut muts[] = {
		{ .tot_extra = 16 },				 /* truncated */
		{ .v6 = 1, .tot_extra = 16 },			 /* truncated */
		{ .bad_ip_csum = 1 },				 /* bad checksum */
		{ .udp_csum = 2 },				 /* bad checksum */
		{ .v6 = 1, .udp_csum = 1 },			 /* bad checksum: none over IPv6 */
		{ .dport = KL_MIKEY_PORT + 1 },			 /* wrong port */
		{ .v6 = 1, .dport = 53 },			 /* wrong port */
		{ .dst = other4 },				 /* not for us */
		{ .v6 = 1, .dst = other6 },			 /* not for us */
		{ .frag = 0x2000 },				 /* fragment: MF */
		{ .frag = 185 },				 /* fragment: offset */
		{ .ihl_words = 4 },				 /* bad header: IHL 16 bytes */
		{ .proto = 6 },					 /* TCP */
		{ .v6 = 1, .proto = 44 },			 /* IPv6 fragment header */
	};
	const enum kl_net_drop why[] = {
		KL_NET_DROP_TRUNCATED,	 KL_NET_DROP_TRUNCATED,	  KL_NET_DROP_BAD_CHECKSUM,
		KL_NET_DROP_BAD_CHECKSUM, KL_NET_DROP_BAD_CHECKSUM, KL_NET_DROP_WRONG_PORT,
		KL_NET_DROP_WRONG_PORT,	 KL_NET_DROP_NOT_FOR_US,  KL_NET_DROP_NOT_FOR_US,
		KL_NET_DROP_FRAGMENT,	 KL_NET_DROP_FRAGMENT,	  KL_NET_DROP_BAD_HEADER,
		KL_NET_DROP_UNSUPPORTED_PROTO, KL_NET_DROP_FRAGMENT,
	};
	const enum cat cats[] = { C_TRUNCATED, C_TRUNCATED, C_BAD_CSUM, C_BAD_CSUM, C_BAD_CSUM,
				  C_WRONG_PORT, C_WRONG_PORT, C_NOT_FOR_US, C_NOT_FOR_US, C_FRAGMENT,
				  C_FRAGMENT, C_BAD_HEADER, C_UNSUP_PROTO, C_FRAGMENT };
	uint8_t pl[600], f[MAX_FRAME];

	_Static_assert(sizeof(muts) / sizeof(muts[0]) == sizeof(why) / sizeof(why[0]), "table");
	_Static_assert(sizeof(cats) / sizeof(cats[0]) == sizeof(why) / sizeof(why[0]), "table");
	for (unsigned i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		struct rq r = { .who = rnd_below(g, g->pop.ues) };
		uint16_t n = make_req(g, &r, pl, sizeof(pl));

		add(g, f, ip_frame(g, f, pl, n, &muts[i]), cats[i]);
		exp_net(g, why[i]);
	}
	/* a runt shorter than an Ethernet header */
	add(g, lldp, 10, C_TRUNCATED);
	exp_net(g, KL_NET_DROP_TRUNCATED);
	/* not IP: LLDP, and an IPv4 packet behind a VLAN tag (keylined serves untagged ports) */
	add(g, lldp, sizeof(lldp), C_NON_IP);
	exp_net(g, KL_NET_DROP_NON_IP);
	{
		struct rq r = { .who = rnd_below(g, g->pop.ues) };
		uint16_t n = make_req(g, &r, pl, sizeof(pl));
		uint32_t len = ip_frame(g, f, pl, n, &(struct mut){ 0 });

		memmove(f + 16, f + 12, len - 12);
		wr16(f + 12, 0x8100);
		wr16(f + 14, 100);
		add(g, f, len + 4, C_NON_IP);
		exp_net(g, KL_NET_DROP_NON_IP);
	}
}

/* Ethernet + IPv4 + ICMP echo request; returns the frame length. */
static uint32_t icmp4_frame(struct gen *g, uint8_t *f, const uint8_t *dst, uint8_t type,
			    uint16_t id, uint16_t dlen, int bad_sum)
{
	uint8_t pl[256];
	struct mut m = { .dst = dst, .proto = 1 };
	uint32_t len;
	uint8_t *l4 = f + 34;

	/* build as UDP-shaped then rewrite the 8-byte L4 header as ICMP */
	memset(pl, 0, sizeof(pl));
	for (unsigned i = 0; i < dlen; i++)
		pl[i] = (uint8_t)('a' + i % 26);
	len = ip_frame(g, f, pl, dlen, &m);
	l4[0] = type;
	l4[1] = 0;
	wr16(l4 + 2, 0);
	wr16(l4 + 4, id);
	wr16(l4 + 6, (uint16_t)g->seq);
	wr16(l4 + 2, fold(sum16(0, l4, 8u + dlen)));
	if (bad_sum)
		l4[3] ^= 0x10;
	if (len < 60) { /* Ethernet minimum: padding beyond the IP packet */
		memset(f + len, 0, 60 - len);
		len = 60;
	}
	return len;
}

/* Ethernet + IPv6 + ICMPv6 (echo request or NS) */
static uint32_t icmp6_frame(struct gen *g, uint8_t *f, const uint8_t *dst, const uint8_t *body,
			    uint16_t blen)
{
	struct mut m = { .v6 = 1, .dst = dst, .proto = 58 };
	uint8_t *ip = f + 14, *l4 = f + 54;
	uint32_t len = ip_frame(g, f, body, (uint16_t)(blen - 8), &m);

	memcpy(l4, body, blen); /* the whole ICMPv6 message replaces the UDP-shaped one */
	wr16(ip + 4, blen);
	len = 54u + blen;
	wr16(l4 + 2, 0);
	wr16(l4 + 2, l4_sum(1, ip, 58, l4, blen));
	return len;
}

static void gen_local(struct gen *g)
{
	uint8_t f[MAX_FRAME], body[128];
	uint32_t len;

	/* ARP requests: two for us (one padded to 60 bytes), one for another address */
	for (int i = 0; i < 3; i++) {
		uint8_t mac[6], ip[16], *a = f + 14;
		uint16_t port;

		client_of(g, 0, mac, ip, &port);
		memset(f, 0xFF, 6);
		memcpy(f + 6, mac, 6);
		wr16(f + 12, ET_ARP);
		wr16(a, 1);
		wr16(a + 2, ET_IPV4);
		a[4] = 6;
		a[5] = 4;
		wr16(a + 6, 1);
		memcpy(a + 8, mac, 6);
		memcpy(a + 14, ip, 4);
		memset(a + 18, 0, 6);
		memcpy(a + 24, i == 2 ? other4 : srv4, 4);
		len = 42;
		if (i == 1) {
			memset(f + 42, 0, 18);
			len = 60;
		}
		add(g, f, len, i == 2 ? C_ARP_OTHER : C_ARP);
		if (i == 2)
			exp_net(g, KL_NET_DROP_ARP_IGNORED);
		else
			exp_reply(g, KL_IO_CNT_ARP_REPLIES);
	}
	/* ICMP echo: with data, without (padded frame); bad checksum; timestamp request; to another
	 * address */
	add(g, f, icmp4_frame(g, f, srv4, 8, 0x1234, 56, 0), C_ICMP4);
	exp_reply(g, KL_IO_CNT_ICMP4_ECHO);
	add(g, f, icmp4_frame(g, f, srv4, 8, 0x4321, 0, 0), C_ICMP4);
	exp_reply(g, KL_IO_CNT_ICMP4_ECHO);
	add(g, f, icmp4_frame(g, f, srv4, 8, 0x5555, 16, 1), C_BAD_CSUM);
	exp_net(g, KL_NET_DROP_BAD_CHECKSUM);
	add(g, f, icmp4_frame(g, f, srv4, 13, 0x6666, 12, 0), C_UNSUP_ICMP);
	exp_net(g, KL_NET_DROP_UNSUPPORTED_ICMP);
	add(g, f, icmp4_frame(g, f, other4, 8, 0x7777, 8, 0), C_NOT_FOR_US);
	exp_net(g, KL_NET_DROP_NOT_FOR_US);
	/* ICMPv6 echo */
	memset(body, 0, sizeof(body));
	body[0] = 128;
	wr16(body + 4, 0xabcd);
	wr16(body + 6, 1);
	memcpy(body + 8, "keyline pcap replay", 19);
	add(g, f, icmp6_frame(g, f, srv6, body, 27), C_ICMP6);
	exp_reply(g, KL_IO_CNT_ICMP6_ECHO);
	/* Neighbour solicitations for 2001:db8::1 with a source link-layer address option: to the
	 * solicited-node multicast address, and unicast (hop limit 255 is set below) */
	for (int i = 0; i < 2; i++) {
		static const uint8_t snm[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff, [13] = 0,
						 [14] = 0, [15] = 1 };

		memset(body, 0, sizeof(body));
		body[0] = 135;
		memcpy(body + 8, srv6, 16);
		body[24] = 1;
		body[25] = 1;
		len = icmp6_frame(g, f, i ? srv6 : snm, body, 32);
		memcpy(f + 54 + 26, f + 6, 6); /* SLLA = the solicitor's MAC */
		f[14 + 7] = 255;
		if (!i)
			memcpy(f, "\x33\x33\xff\x00\x00\x01", 6);
		wr16(f + 54 + 2, 0);
		wr16(f + 54 + 2, l4_sum(1, f + 14, 58, f + 54, 32));
		add(g, f, len, C_NDP);
		exp_reply(g, KL_IO_CNT_NDP_ADVERTS);
	}
	/* ICMPv6 that is neither echo nor NS: a router solicitation */
	memset(body, 0, sizeof(body));
	body[0] = 133;
	add(g, f, icmp6_frame(g, f, srv6, body, 8), C_UNSUP_ICMP);
	exp_net(g, KL_NET_DROP_UNSUPPORTED_ICMP);
}

static void write_json_counters(FILE *o, const struct expect *e)
{
	const char *sep = "";

	fprintf(o, "  \"counters\": {");
	for (unsigned i = 0; i < KL_CNT__COUNT; i++, sep = ",")
		fprintf(o, "%s\n    \"%s\": %" PRIu64, sep, eng_names[i], e->eng[i]);
	for (unsigned i = 0; i < KL_IO_CNT__COUNT; i++)
		fprintf(o, ",\n    \"%s\": %" PRIu64, io_names[i], e->io[i]);
	for (unsigned i = 1; i < KL_DROP__COUNT; i++)
		fprintf(o, ",\n    \"drop_%s\": %" PRIu64, drop_names[i], e->drop[i]);
	for (unsigned i = 1; i < KL_NET_DROP__COUNT; i++)
		fprintf(o, ",\n    \"net_drop_%s\": %" PRIu64, net_names[i], e->net[i]);
	fprintf(o, "\n  },\n");
}

static int cmd_gen(const char *popf, const char *mixf, const char *expf)
{
	struct gen g;
	FILE *o;
	uint64_t answers = 0;

	memset(&g, 0, sizeof(g));
	load_pop(popf, &g.pop);
	/* fixed indices below (EMSE 0..2, IMSI 0..3) and identities that must stay unknown */
	if (g.pop.groups < 2 || g.pop.emses < 3 || g.pop.imsis < 4 || g.pop.appids >= 999999)
		fatal("%s: the mix needs groups >= 2, emses >= 3, imsis >= 4, appids < 999999", popf);
	g.c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!g.c)
		fatal("no crypto context");
	g.rng = 0x6b65796c696e6521ull ^ g.pop.seed;
	g.now = kl_ntp_now();
	gen_requests(&g);
	gen_net(&g);
	gen_local(&g);
	/* shuffle (Fisher-Yates, fixed seed); a replayed copy may come before its original: the two
	 * are the same bytes, so either way one is answered and one is a replay */
	for (unsigned i = g.fs.n - 1; i > 0; i--) {
		unsigned j = rnd_below(&g, i + 1);
		struct frame t = g.fs.f[i];

		g.fs.f[i] = g.fs.f[j];
		g.fs.f[j] = t;
	}
	pcap_write(mixf, &g.fs, (g.now >> 32) - 2208988800ull);
	o = fopen(expf, "w");
	if (!o)
		fatal("%s: %s", expf, strerror(errno));
	fprintf(o, "{\n  \"frames\": %u,\n  \"tx_frames\": %" PRIu64 ",\n", g.fs.n,
		g.ex.io[KL_IO_CNT_TX_FRAMES]);
	for (unsigned i = 0; i < N_ANSWER_CNT; i++)
		answers += g.ex.eng[answer_cnt[i]];
	fprintf(o, "  \"udp_answers\": %" PRIu64 ",\n", answers);
	write_json_counters(o, &g.ex);
	fprintf(o, "  \"mix\": {");
	for (unsigned i = 0; i < C__COUNT; i++)
		fprintf(o, "%s\n    \"%s\": %u", i ? "," : "", cat_names[i], g.ex.cat[i]);
	fprintf(o, "\n  }\n}\n");
	if (fclose(o))
		fatal("%s: write failed", expf);
	frames_free(&g.fs);
	kl_crypto_destroy(g.c);
	return 0;
}

/* ---- verify ------------------------------------------------------------------------------------ */

/* Strict L3/L4 view of a frame, written from the RFCs (not from kl_net). */
struct pkt {
	const uint8_t *f;
	uint32_t len;
	int v6;
	const uint8_t *ip, *src, *dst, *l4;
	uint32_t l4len; /* what the IP header gives the L4 message */
	uint8_t proto;
};

/* Unfragmented IPv4/IPv6 with a right header; 0 or -1. */
static int parse_ip(const uint8_t *f, uint32_t len, struct pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	p->len = len;
	if (len < 14)
		return -1;
	p->ip = f + 14;
	if (rd16(f + 12) == ET_IPV4) {
		const uint8_t *ip = p->ip;
		uint32_t ihl, tot;

		if (len < 34 || ip[0] >> 4 != 4)
			return -1;
		ihl = (ip[0] & 15u) * 4;
		tot = rd16(ip + 2);
		if (ihl < 20 || tot < ihl || 14 + tot > len || fold(sum16(0, ip, ihl)) != 0 ||
		    (rd16(ip + 6) & 0x3FFF))
			return -1;
		p->src = ip + 12;
		p->dst = ip + 16;
		p->proto = ip[9];
		p->l4 = ip + ihl;
		p->l4len = tot - ihl;
		return 0;
	}
	if (rd16(f + 12) == ET_IPV6) {
		const uint8_t *ip = p->ip;

		if (len < 54 || ip[0] >> 4 != 6 || 54u + rd16(ip + 4) > len)
			return -1;
		p->v6 = 1;
		p->src = ip + 8;
		p->dst = ip + 24;
		p->proto = ip[6]; /* an extension header is not something we answer through */
		p->l4 = ip + 40;
		p->l4len = rd16(ip + 4);
		return 0;
	}
	return -1;
}

static int is_ours(const struct pkt *p, const uint8_t *a)
{
	return !memcmp(a, p->v6 ? srv6 : srv4, p->v6 ? 16 : 4);
}

/* UDP with a right checksum (none is allowed over IPv4 only); payload and its length out. */
static int udp_ok(const struct pkt *p, const uint8_t **pl, uint16_t *plen)
{
	uint16_t ul;

	if (p->proto != 17 || p->l4len < 8)
		return 0;
	ul = rd16(p->l4 + 4);
	if (ul < 8 || ul > p->l4len)
		return 0;
	if (rd16(p->l4 + 6) == 0 ? p->v6 : l4_sum(p->v6, p->ip, 17, p->l4, ul) != 0)
		return 0;
	*pl = p->l4 + 8;
	*plen = (uint16_t)(ul - 8);
	return 1;
}

static int icmp_ok(const struct pkt *p)
{
	if (p->v6)
		return p->proto == 58 && p->l4len >= 8 && l4_sum(1, p->ip, 58, p->l4, p->l4len) == 0;
	return p->proto == 1 && p->l4len >= 8 && fold(sum16(0, p->l4, p->l4len)) == 0;
}

/* A request that deserves an answer, with what its client knew. */
struct want {
	const struct frame *fr;
	struct pkt pk;
	struct kl_mikey_req req;
	struct kl_client_req cli;
	uint8_t buf[KL_MIKEY_REQ_MAX];
	uint8_t psk[32];
	long long who; /* UE or EMSE index */
	int answered;
};

enum local_kind { L_ARP, L_ICMP4, L_ICMP6, L_NDP, L__COUNT };

struct local {
	const struct frame *fr;
	struct pkt pk;
	enum local_kind kind;
	int answered;
};

struct verify {
	struct kl_pop_params pop;
	struct kl_crypto *c;
	const char *idr;
	struct want *w;
	unsigned nw;
	struct local *l;
	unsigned nl;
	uint8_t srv_mac[6];
	int have_mac;
	unsigned failures;
	uint64_t now;
	/* summary */
	unsigned ans[KL_CNT__COUNT];
	unsigned replies[L__COUNT];
	unsigned udp_answers, missing, unexpected;
};

static void fail(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	v->failures++;
}

/* Regenerate the requester's PSK from the population and re-sign the request with the same
 * spec: the bytes must come out identical (MAC included) for the request to be valid. */
static int rebuild_client(struct verify *v, struct want *w)
{
	const struct kl_mikey_req *r = &w->req;
	struct kl_client_req *q = &w->cli;

	memset(q, 0, sizeof(*q));
	if (r->kind == KL_KIND_MBMS) {
		struct kl_pop_ue ue;

		w->who = pop_ue_index(&v->pop, r->id, r->id_len, &ue);
		memcpy(w->psk, ue.muk, 32);
		kl_memzero(&ue, sizeof(ue));
	} else {
		struct kl_pop_emse em;

		w->who = pop_emse_index(&v->pop, r->id, r->id_len, &em);
		memcpy(w->psk, em.psk, 32);
		kl_memzero(&em, sizeof(em));
	}
	if (w->who < 0)
		return 0;
	q->spec = (struct kl_mikey_req_spec){ .rand = r->rand, .id = r->id, .ue = r->ue, .ts = r->ts,
					      .csb_id = r->csb_id, .key_id = r->key_id,
					      .id_len = r->id_len, .ue_len = r->ue_len,
					      .group = r->group, .number = r->number,
					      .prf = r->prf, .id_type = r->id_type, .kind = r->kind,
					      .has_key_id = r->has_key_id };
	memcpy(q->spec.domain, r->domain, 3);
	q->psk = w->psk;
	q->psk_len = 32;
	q->buf = w->buf;
	q->cap = sizeof(w->buf);
	if (kl_client_sign(v->c, q, 1) != 1)
		return 0;
	return q->len == r->len && !memcmp(w->buf, r->msg, r->len);
}

/* Which frames of the mix deserve an answer, judged here. */
static void plan(struct verify *v, const struct frames *mix)
{
	v->w = calloc(mix->n ? mix->n : 1, sizeof(*v->w));
	v->l = calloc(mix->n ? mix->n : 1, sizeof(*v->l));
	if (!v->w || !v->l)
		fatal("out of memory");
	for (unsigned i = 0; i < mix->n; i++) {
		const struct frame *fr = &mix->f[i];
		struct pkt pk;
		const uint8_t *pl;
		uint16_t plen;

		if (fr->len >= 42 && rd16(fr->data + 12) == ET_ARP) {
			const uint8_t *a = fr->data + 14;

			if (rd16(a) == 1 && rd16(a + 2) == ET_IPV4 && a[4] == 6 && a[5] == 4 &&
			    rd16(a + 6) == 1 && !memcmp(a + 24, srv4, 4))
				v->l[v->nl++] = (struct local){ .fr = fr, .kind = L_ARP };
			continue;
		}
		if (parse_ip(fr->data, fr->len, &pk))
			continue;
		if (icmp_ok(&pk)) {
			const uint8_t *m = pk.l4;

			if (!pk.v6 && m[0] == 8 && m[1] == 0 && is_ours(&pk, pk.dst))
				v->l[v->nl++] = (struct local){ .fr = fr, .pk = pk, .kind = L_ICMP4 };
			else if (pk.v6 && m[0] == 128 && m[1] == 0 && is_ours(&pk, pk.dst))
				v->l[v->nl++] = (struct local){ .fr = fr, .pk = pk, .kind = L_ICMP6 };
			else if (pk.v6 && m[0] == 135 && m[1] == 0 && pk.ip[7] == 255 && pk.l4len >= 24 &&
				 !memcmp(m + 8, srv6, 16) &&
				 (is_ours(&pk, pk.dst) ||
				  (!memcmp(pk.dst, "\xff\x02\0\0\0\0\0\0\0\0\0\x01\xff", 13) &&
				   !memcmp(pk.dst + 13, srv6 + 13, 3))))
				v->l[v->nl++] = (struct local){ .fr = fr, .pk = pk, .kind = L_NDP };
			continue;
		}
		if (!is_ours(&pk, pk.dst) || !udp_ok(&pk, &pl, &plen) ||
		    rd16(pk.l4 + 2) != KL_MIKEY_PORT) {
			continue;
		}
		{
			struct want *w = &v->w[v->nw];
			int dup = 0;

			memset(w, 0, sizeof(*w));
			w->fr = fr;
			w->pk = pk;
			if (kl_mikey_parse_req(pl, plen, &w->req) != KL_DROP_NONE ||
			    !rebuild_client(v, w))
				continue;
			/* the first of the same (IDi, CSB ID, RAND) is answered, a copy is a replay */
			for (unsigned k = 0; k < v->nw && !dup; k++)
				dup = v->w[k].req.id_len == w->req.id_len &&
				      !memcmp(v->w[k].req.id, w->req.id, w->req.id_len) &&
				      v->w[k].req.csb_id == w->req.csb_id &&
				      !memcmp(v->w[k].req.rand, w->req.rand, 16);
			if (!dup)
				v->nw++;
		}
	}
}

/* The server's MAC: what its ARP replies say it is (else the first frame's source). */
static void learn_mac(struct verify *v, const struct frames *out)
{
	for (unsigned i = 0; i < out->n && !v->have_mac; i++) {
		const uint8_t *f = out->f[i].data;

		if (out->f[i].len >= 42 && rd16(f + 12) == ET_ARP && rd16(f + 20) == 2) {
			memcpy(v->srv_mac, f + 22, 6);
			v->have_mac = 1;
		}
	}
	if (!v->have_mac && out->n && out->f[0].len >= 14) {
		memcpy(v->srv_mac, out->f[0].data + 6, 6);
		v->have_mac = 1;
	}
}

static int check_arp(struct verify *v, const struct frame *o)
{
	const uint8_t *a = o->data + 14;

	for (unsigned i = 0; i < v->nl; i++) {
		struct local *l = &v->l[i];
		const uint8_t *q = l->fr->data + 14;

		if (l->kind != L_ARP || l->answered || memcmp(a + 18, q + 8, 6) ||
		    memcmp(a + 24, q + 14, 4))
			continue;
		l->answered = 1;
		if (o->len != 42 && o->len != 60)
			fail(v, "ARP reply of %u bytes", o->len);
		if (memcmp(o->data, l->fr->data + 6, 6))
			fail(v, "ARP reply not sent to the asker's MAC");
		if (rd16(a) != 1 || rd16(a + 2) != ET_IPV4 || a[4] != 6 || a[5] != 4 || rd16(a + 6) != 2)
			fail(v, "ARP reply header wrong");
		if (memcmp(a + 8, v->srv_mac, 6) || memcmp(a + 14, srv4, 4))
			fail(v, "ARP reply sender is not the server's MAC/192.0.2.1");
		return 1;
	}
	return 0;
}

/* ICMP/ICMPv6 echo reply: match the request by addresses, id and sequence; data echoed. */
static int check_echo(struct verify *v, const struct frame *o, const struct pkt *pk)
{
	enum local_kind kind = pk->v6 ? L_ICMP6 : L_ICMP4;

	for (unsigned i = 0; i < v->nl; i++) {
		struct local *l = &v->l[i];
		const struct pkt *q = &l->pk;
		unsigned alen = pk->v6 ? 16 : 4;

		if (l->kind != kind || l->answered || memcmp(pk->dst, q->src, alen) ||
		    memcmp(pk->src, q->dst, alen) || memcmp(pk->l4 + 4, q->l4 + 4, 4))
			continue;
		l->answered = 1;
		if (pk->l4[0] != (pk->v6 ? 129 : 0) || pk->l4[1] != 0)
			fail(v, "echo reply type/code %u/%u", pk->l4[0], pk->l4[1]);
		if (pk->l4len != q->l4len || memcmp(pk->l4 + 8, q->l4 + 8, q->l4len - 8))
			fail(v, "echo reply does not echo the request's data");
		if (!icmp_ok(pk))
			fail(v, "echo reply checksum wrong");
		if (memcmp(o->data, l->fr->data + 6, 6))
			fail(v, "echo reply not sent to the asker's MAC");
		if (pk->v6 ? pk->ip[7] == 0 : pk->ip[8] == 0)
			fail(v, "echo reply with hop limit 0");
		if (o->len != 14 + (pk->v6 ? 40 : 0) + (pk->v6 ? pk->l4len : rd16(pk->ip + 2)) &&
		    o->len != 60)
			fail(v, "echo reply frame of %u bytes", o->len);
		return 1;
	}
	return 0;
}

static int check_na(struct verify *v, const struct frame *o, const struct pkt *pk)
{
	const uint8_t *m = pk->l4;

	for (unsigned i = 0; i < v->nl; i++) {
		struct local *l = &v->l[i];
		const struct pkt *q = &l->pk;

		if (l->kind != L_NDP || l->answered || memcmp(pk->dst, q->src, 16))
			continue;
		l->answered = 1;
		if (!icmp_ok(pk) || m[1] != 0 || pk->l4len < 24)
			fail(v, "neighbour advertisement checksum or length wrong");
		else if (memcmp(m + 8, srv6, 16) || memcmp(pk->src, srv6, 16))
			fail(v, "neighbour advertisement not for/from 2001:db8::1");
		if (pk->ip[7] != 255)
			fail(v, "neighbour advertisement hop limit %u", pk->ip[7]);
		if ((m[4] & 0xE0) != 0x60)
			fail(v, "neighbour advertisement flags %02x (want Solicited, Override)", m[4]);
		if (pk->l4len < 32 || m[24] != 2 || m[25] != 1 || memcmp(m + 26, v->srv_mac, 6))
			fail(v, "neighbour advertisement without the server's link-layer address");
		if (memcmp(o->data, l->fr->data + 6, 6))
			fail(v, "neighbour advertisement not sent to the solicitor's MAC");
		return 1;
	}
	return 0;
}

/* What the server must answer to w, judged from the population at the server's time. */
struct outcome {
	int err_no; /* 0: keys */
	uint16_t detail;
	unsigned nkeys;
	struct kl_mikey_key keys[KL_MIKEY_MAX_KEYS];
	uint8_t key_store[KL_MIKEY_MAX_KEYS][32];
	enum kl_counter counter;
};

static int in_valid(const struct kl_msk *m, uint64_t t)
{
	return m->valid_from <= t && t < m->valid_to;
}

static void add_key(struct outcome *o, const uint8_t *k, uint8_t klen, uint32_t id, uint64_t from,
		    uint64_t to)
{
	struct kl_mikey_key *x = &o->keys[o->nkeys];

	memcpy(o->key_store[o->nkeys], k, klen);
	x->key = o->key_store[o->nkeys];
	x->key_len = klen;
	x->key_id = id;
	x->valid_from = from;
	x->valid_to = to;
	o->nkeys++;
}

/* e2m_key = HMAC-SHA-256(e2m_int_key, 0xFF 0x02 || EMSE_Id || L || "e2m_CIoT" || L), written
 * out here from PROTOCOL.md section 7, and compared with the KDF table of the project. */
static int e2m_key(struct verify *v, const uint8_t *ik, const uint8_t *emse, uint16_t elen,
		   uint8_t out[32])
{
	uint8_t s[2 + KL_MIKEY_ID_MAX + 2 + 8 + 2], alt[32];
	unsigned o = 0, olen = 32;
	struct kl_kdf_param prm = { .data = emse, .len = elen };
	int ok;

	s[o++] = 0xFF;
	s[o++] = 0x02;
	memcpy(s + o, emse, elen);
	o += elen;
	wr16(s + o, elen);
	o += 2;
	memcpy(s + o, "e2m_CIoT", 8);
	o += 8;
	wr16(s + o, 8);
	o += 2;
	if (!HMAC(EVP_sha256(), ik, 32, s, o, out, &olen) || olen != 32)
		return -1;
	if (kl_derive(v->c, KL_KDF_E2M, ik, 32, &prm, 1, alt))
		return -1;
	ok = !memcmp(out, alt, 32);
	kl_memzero(alt, sizeof(alt));
	return ok ? 0 : -1;
}

static void predict(struct verify *v, const struct want *w, uint64_t srv_ts, struct outcome *o)
{
	const struct kl_mikey_req *r = &w->req;
	uint64_t d = r->ts > srv_ts ? r->ts - srv_ts : srv_ts - r->ts;

	memset(o, 0, sizeof(*o));
	if (d > NTP_SEC(SKEW_S)) {
		o->err_no = KL_ERR_INVALID_TS;
		o->counter = KL_CNT_ERR_INVALID_TS;
		return;
	}
	o->err_no = KL_ERR_UNSPECIFIED;
	o->detail = 2;
	o->counter = KL_CNT_ERR_NO_SUCH_KEY;
	if (r->kind == KL_KIND_MBMS) {
		struct kl_pop_ue ue;
		struct kl_group_ref ref;
		struct kl_group grp;
		const struct kl_msk *pick = NULL, *extra = NULL, *cand[2];
		int auth = 0;

		if (kl_pop_ue(&v->pop, (uint32_t)w->who, &ue))
			fatal("population UE");
		for (unsigned i = 0; i < ue.ngroups; i++)
			auth |= ue.groups[i].group == r->group && !memcmp(ue.groups[i].domain, r->domain, 3);
		kl_memzero(&ue, sizeof(ue));
		if (!auth) {
			o->err_no = KL_ERR_INVALID_ID;
			o->detail = 1;
			o->counter = KL_CNT_ERR_NOT_AUTHORISED;
			return;
		}
		if (r->group < 1 || r->group > v->pop.groups || memcmp(r->domain, kl_pop_domain, 3) ||
		    kl_pop_group(&v->pop, r->group, &ref, &grp))
			return;
		cand[0] = &grp.current;
		cand[1] = grp.has_next ? &grp.next : NULL;
		if (r->number == 0) {
			pick = in_valid(cand[0], srv_ts) ? cand[0]
			       : cand[1] && in_valid(cand[1], srv_ts) ? cand[1] : NULL;
			if (pick == cand[0] && cand[1] && cand[1]->valid_from > srv_ts &&
			    cand[1]->valid_from - srv_ts <= NTP_SEC(PREDELIVERY_S))
				extra = cand[1];
		} else {
			for (int i = 0; i < 2 && !pick; i++)
				if (cand[i] && (uint16_t)cand[i]->msk_id == r->number)
					pick = cand[i];
			if (!pick) {
				kl_memzero(&grp, sizeof(grp));
				return;
			}
			if (!in_valid(pick, srv_ts) &&
			    !(pick->valid_from > srv_ts &&
			      pick->valid_from - srv_ts <= NTP_SEC(PREDELIVERY_S)))
				pick = NULL;
		}
		if (!pick) {
			o->detail = 3;
			o->counter = KL_CNT_ERR_KEY_NOT_VALID;
		} else {
			o->err_no = 0;
			o->counter = KL_CNT_ANSWERED_MBMS;
			add_key(o, pick->key, 16, pick->msk_id, pick->valid_from, pick->valid_to);
			if (extra)
				add_key(o, extra->key, 16, extra->msk_id, extra->valid_from,
					extra->valid_to);
		}
		kl_memzero(&grp, sizeof(grp));
		return;
	}
	{
		long long im = pop_imsi_index(&v->pop, r->ue, r->ue_len);
		struct kl_pop_e2m e;
		uint8_t key[32];
		int k = -1;

		if (im < 0)
			return;
		for (unsigned x = 0; x < v->pop.e2m_keys_per_imsi && k < 0; x++) {
			if (kl_pop_e2m(&v->pop, (uint32_t)im, x, &e))
				fatal("population E2M key");
			if (!r->has_key_id || e.key_id == r->key_id)
				k = (int)x;
			else
				kl_memzero(&e, sizeof(e));
		}
		if (k < 0)
			return;
		if (e.expires && srv_ts >= e.expires) {
			o->detail = 3;
			o->counter = KL_CNT_ERR_KEY_NOT_VALID;
		} else if (e2m_key(v, e.key, r->id, r->id_len, key)) {
			fail(v, "e2m_key: the KDF table disagrees with PROTOCOL.md section 7");
		} else {
			o->err_no = 0;
			o->counter = KL_CNT_ANSWERED_E2M;
			add_key(o, key, 32, e.key_id, 0, e.expires);
		}
		kl_memzero(key, sizeof(key));
		kl_memzero(&e, sizeof(e));
	}
}

static void kcv_str(const uint8_t *k, size_t n, char out[7])
{
	uint8_t c[KL_KCV_LEN] = { 0 };

	kl_kcv(k, n, c);
	snprintf(out, 7, "%02x%02x%02x", c[0], c[1], c[2]);
}

static int check_udp(struct verify *v, const struct frame *o, const struct pkt *pk)
{
	const uint8_t *pl;
	uint16_t plen;
	struct kl_mikey_resp rp;
	struct want *w = NULL;
	struct kl_client_result res;
	struct outcome want;
	int rc;
	unsigned alen = pk->v6 ? 16 : 4;

	if (!udp_ok(pk, &pl, &plen) || rd16(pk->l4 + 6) == 0) {
		fail(v, "UDP answer with a wrong or missing checksum");
		return 1;
	}
	if (kl_mikey_parse_resp(pl, plen, &rp) != KL_DROP_NONE) {
		fail(v, "UDP answer that is not a MIKEY response or error (%u bytes)", plen);
		return 1;
	}
	for (unsigned i = 0; i < v->nw && !w; i++)
		if (!memcmp(v->w[i].req.rand, rp.rand, 16) && v->w[i].req.csb_id == rp.csb_id &&
		    v->w[i].pk.v6 == pk->v6 && !memcmp(v->w[i].pk.src, pk->dst, alen) &&
		    rd16(v->w[i].pk.l4) == rd16(pk->l4 + 2))
			w = &v->w[i];
	if (!w)
		return 0;
	v->udp_answers++;
	if (w->answered++) {
		fail(v, "request answered twice");
		return 1;
	}
	if (memcmp(pk->src, w->pk.dst, alen) || rd16(pk->l4) != rd16(w->pk.l4 + 2))
		fail(v, "answer not from the address and port the request went to");
	if (memcmp(o->data, w->fr->data + 6, 6))
		fail(v, "answer not sent to the requester's MAC");
	if (o->len != 14 + (pk->v6 ? 40 : 0) + (pk->v6 ? pk->l4len : rd16(pk->ip + 2)))
		fail(v, "answer frame of %u bytes carries bytes after the IP packet", o->len);
	rc = kl_client_verify(v->c, &w->cli, pl, plen, v->now, SKEW_S, &res);
	if (rc) {
		fail(v, "kl_client_verify refused an answer: %s", strerror(-rc));
		return 1;
	}
	predict(v, w, res.server_ts, &want);
	if (res.is_error) {
		if (!want.err_no || res.err_no != want.err_no || res.detail != want.detail)
			fail(v, "error %u/%u, want %d/%u", res.err_no, res.detail, want.err_no,
			     want.detail);
		if (plen > w->req.len)
			fail(v, "error message larger than its request (%u > %u)", plen, w->req.len);
	} else if (want.err_no) {
		fail(v, "keys answered, want error %d/%u", want.err_no, want.detail);
	} else if (res.nkeys != want.nkeys) {
		fail(v, "%u keys answered, want %u", res.nkeys, want.nkeys);
	} else {
		for (unsigned i = 0; i < want.nkeys; i++) {
			const struct kl_mikey_key *a = &res.keys[i], *b = &want.keys[i];

			if (a->key_len != b->key_len || memcmp(a->key, b->key, b->key_len)) {
				char ka[7], kb[7];

				kcv_str(a->key, a->key_len, ka);
				kcv_str(b->key, b->key_len, kb);
				fail(v, "key %u: KCV %s, want %s", i, ka, kb);
			}
			if (a->key_id != b->key_id || a->valid_from != b->valid_from ||
			    a->valid_to != b->valid_to)
				fail(v, "key %u: id %08x validity %016" PRIx64 "..%016" PRIx64
					", want %08x %016" PRIx64 "..%016" PRIx64,
				     i, a->key_id, a->valid_from, a->valid_to, b->key_id, b->valid_from,
				     b->valid_to);
		}
	}
	if (v->idr && (rp.data_type == KL_DT_PSK_RESP) &&
	    (rp.idr_len != strlen(v->idr) || memcmp(rp.idr, v->idr, rp.idr_len)))
		fail(v, "IDr is not the configured server identity");
	if (w->req.kind == KL_KIND_E2M && !res.is_error) {
		long long im = pop_imsi_index(&v->pop, w->req.ue, w->req.ue_len);
		char imsi[KL_TABLE_IMSI_MAX + 1];

		snprintf(imsi, sizeof(imsi), "00101%010lld", im);
		if (memmem(pl, plen, imsi, 15))
			fail(v, "the IMSI appears in an E2M response");
	}
	v->ans[want.counter]++;
	kl_memzero(&want, sizeof(want));
	kl_memzero(&res, sizeof(res));
	return 1;
}

static int cmd_verify(const char *popf, const char *mixf, const char *outf, const char *idr)
{
	struct verify v;
	struct frames mix = { 0 }, out = { 0 };
	static const char *const lname[L__COUNT] = { "arp_replies", "icmp4_echo_replies",
						     "icmp6_echo_replies", "ndp_adverts" };

	memset(&v, 0, sizeof(v));
	load_pop(popf, &v.pop);
	v.idr = idr;
	v.c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!v.c)
		fatal("no crypto context");
	v.now = kl_ntp_now();
	pcap_read(mixf, &mix);
	pcap_read(outf, &out);
	plan(&v, &mix);
	learn_mac(&v, &out);
	for (unsigned i = 0; i < out.n; i++) {
		const struct frame *o = &out.f[i];
		struct pkt pk;
		int ok = 0;

		if (o->len < 14) {
			fail(&v, "out frame %u: %u bytes", i + 1, o->len);
			continue;
		}
		if (memcmp(o->data + 6, v.srv_mac, 6))
			fail(&v, "out frame %u: source MAC %02x:%02x:%02x:%02x:%02x:%02x is not the "
				 "server's", i + 1, o->data[6], o->data[7], o->data[8], o->data[9],
			     o->data[10], o->data[11]);
		if (rd16(o->data + 12) == ET_ARP && o->len >= 42) {
			ok = check_arp(&v, o);
			v.replies[L_ARP] += (unsigned)ok;
		} else if (!parse_ip(o->data, o->len, &pk)) {
			if (pk.proto == 17) {
				ok = check_udp(&v, o, &pk);
			} else if (!pk.v6 && pk.proto == 1 && pk.l4len >= 8 && pk.l4[0] == 0) {
				ok = check_echo(&v, o, &pk);
				v.replies[L_ICMP4] += (unsigned)ok;
			} else if (pk.v6 && pk.proto == 58 && pk.l4len >= 8 && pk.l4[0] == 129) {
				ok = check_echo(&v, o, &pk);
				v.replies[L_ICMP6] += (unsigned)ok;
			} else if (pk.v6 && pk.proto == 58 && pk.l4len >= 8 && pk.l4[0] == 136) {
				ok = check_na(&v, o, &pk);
				v.replies[L_NDP] += (unsigned)ok;
			}
		}
		if (!ok) {
			v.unexpected++;
			fail(&v, "out frame %u (%u bytes) answers nothing in the mix that deserved it",
			     i + 1, o->len);
		}
	}
	for (unsigned i = 0; i < v.nw; i++)
		if (!v.w[i].answered) {
			v.missing++;
			fail(&v, "request %s (%.*s) was not answered",
			     v.w[i].req.kind == KL_KIND_MBMS ? "MBMS" : "E2M", (int)v.w[i].req.id_len,
			     (const char *)v.w[i].req.id);
		}
	for (unsigned i = 0; i < v.nl; i++)
		if (!v.l[i].answered) {
			v.missing++;
			fail(&v, "%s: a request was not answered", lname[v.l[i].kind]);
		}
	printf("{\"out_frames\": %u, \"mix_frames\": %u, \"deserved_udp_answers\": %u, "
	       "\"deserved_local_replies\": %u, \"udp_answers\": %u",
	       out.n, mix.n, v.nw, v.nl, v.udp_answers);
	for (unsigned i = 0; i < N_ANSWER_CNT; i++)
		printf(", \"%s\": %u", eng_names[answer_cnt[i]], v.ans[answer_cnt[i]]);
	for (unsigned i = 0; i < L__COUNT; i++)
		printf(", \"%s\": %u", lname[i], v.replies[i]);
	printf(", \"missing\": %u, \"unexpected\": %u, \"failures\": %u, \"ok\": %s}\n", v.missing,
	       v.unexpected, v.failures, v.failures ? "false" : "true");
	for (unsigned i = 0; i < v.nw; i++) {
		kl_memzero(v.w[i].psk, sizeof(v.w[i].psk));
		kl_memzero(&v.w[i].cli, sizeof(v.w[i].cli));
	}
	free(v.w);
	free(v.l);
	frames_free(&mix);
	frames_free(&out);
	kl_crypto_destroy(v.c);
	return v.failures ? 1 : 0;
}

static void quiet(const char *msg)
{
	(void)msg;
}

int main(int argc, char **argv)
{
	kl_crypto_set_log(quiet);
	if (argc == 5 && !strcmp(argv[1], "gen"))
		return cmd_gen(argv[2], argv[3], argv[4]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	fprintf(stderr, "usage: pcap_mix_gen gen POP_FILE MIX.pcap EXPECT.json\n"
			"       pcap_mix_gen verify POP_FILE MIX.pcap OUT.pcap [SERVER_IDENTITY]\n");
	return 2;
}
