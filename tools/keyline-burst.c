/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst: keyline's load generator. Simulates UEs (or EMSEs) of a deterministic test
 * population asking a keyline server for their keys, verifies every answer, and prints one JSON
 * line per interval and a JSON summary. See --help.
 *
 *   keyline-burst [EAL options] -- --population FILE --server-ip IP --client-ip IP [options]
 *   keyline-burst --io socket --population FILE [--server-ip IP] [options]
 *
 * --presign and --verify-after take the crypto out of the timed run (before t0 and after the
 * last answer), so one client core can load a server that is faster than it can sign and verify.
 *
 * Exit status: 0 when every UE got a verified correct key and every SLO held, 1 otherwise
 * (failures, missed SLO, setup errors), 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <curl/curl.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_burst.h"
#include "kl_burst_io.h"
#include "kl_burst_naf.h"
#include "kl_eal_rundir.h"
#include "kl_mikey.h"
#include "kl_naf_client.h"
#include "kl_naf_mt.h"
#include "kl_util.h"

static volatile sig_atomic_t stop_flag;

/* The kinds, one row each: --kind's name, what the run simulates, and whether it runs over
 * HTTPS (kl_burst_naf) instead of the MIKEY core and its UDP I/O. */
static const struct kind_row {
	const char *what;
	int https;
} kind_rows[] = {
	[KL_BURST_KIND_MBMS] = { "UEs", 0 },
	[KL_BURST_KIND_E2M] = { "fetches", 0 },
	[KL_BURST_KIND_HM] = { "UE pairs", 0 },
	[KL_BURST_KIND_DH] = { "UEs in DH pairs", 0 },
	[KL_BURST_KIND_PROSE] = { "UEs in ProSe pairs", 0 },
	[KL_BURST_KIND_NAF] = { "devices", 1 },
};
#define NKINDS (sizeof(kind_rows) / sizeof(kind_rows[0]))

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

__attribute__((format(printf, 1, 2), noreturn)) static void usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("keyline-burst: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(2);
}

static void help(void)
{
	puts("usage: keyline-burst [EAL options] -- --population FILE [options]   (--io dpdk)\n"
	     "       keyline-burst --io socket --population FILE [options]\n"
	     "       keyline-burst --kind naf --pki DIR --ue-file FILE --naf-id HEX [options]\n"
	     "Simulates UEs of a keyline-population TEST population requesting keys from keyline;\n"
	     "verifies every answer. stdout: one JSON line per interval, then a JSON summary.\n"
	     "\n"
	     "population and requests\n"
	     "  --population FILE       parameter file written by keyline-population (required)\n"
	     "  --kind mbms|e2m|hm|dh|prose\n"
	     "                          MBMS MSK requests by UEs (default), E2M fetches by EMSEs, or\n"
	     "                          HM sessions of UE pairs (PROTOCOL.md section 9: UEa's kind 2\n"
	     "                          at the server, UEb's kind 3 at the peer server, once per UEb;\n"
	     "                          a pair is verified when both open the same Ks)\n"
	     "                          dh, prose: UE pairs (population UEs first + 2k and first +\n"
	     "                          2k + 1; side A at the server, side B at the peer server) each\n"
	     "                          asking its own server for the other's value: kind 4 (the\n"
	     "                          peer's X25519 public value, then Ks) or kind 5 (A initiator\n"
	     "                          with p1, B responder with p3; then KD = KDF(p2, FF05, p4));\n"
	     "                          ERR 12/5 is retried after its retry-after (same p); a pair\n"
	     "                          is verified when both sides derive the same key from the\n"
	     "                          values the population says the other UE has\n"
	     "  --kind naf              NAF Key Center (PROTOCOL.md section 11): N devices fetch\n"
	     "                          Ks_local_MT at once over HTTPS (libcurl multi, HTTP/1.1, one\n"
	     "                          connection and client certificate each); every key checked\n"
	     "                          against the MT side's derivation from the BSF's UE file\n"
	     "                          (Milenage -> CK, IK -> Ks_(ext)_NAF -> Ks_local_MT). Options:\n"
	     "    --pki DIR             make-test-pki.sh OUTDIR: device i is its i-th device\n"
	     "    --ue-file FILE        keyline-hss-sim bsf --ue-file: device i asks for the B-TID\n"
	     "                          of line (first-ue + i) % lines\n"
	     "    --naf-id HEX          NAF_ID sent and used in the derivation (required)\n"
	     "    --url URL             the Key Center (default " KL_NAF_DEFAULT_URL ")\n"
	     "    --ca PEM              its server CA (default DIR/server-ca.pem)\n"
	     "    --devices N           devices (default: all of the PKI)\n"
	     "    --requests R          requests per device, one after the other (default 1)\n"
	     "    --first-ue I          (default 0)\n"
	     "    --full-handshake      every request on a new connection with a full TLS\n"
	     "                          handshake (no reuse, no session resumption); default:\n"
	     "                          keep-alive, one handshake per device\n"
	     "    --ue-per-request      request k of device i asks for line (first-ue + i +\n"
	     "                          k * devices) % lines: a B-TID of its own (new to the Key\n"
	     "                          Center's Zn cache on a first run with enough lines, cached\n"
	     "                          on a second), its key derived as the request starts\n"
	     "    --server-pid PID      the Key Center's process: its CPU time over the run is\n"
	     "                          reported (io.server_cpu_s) with keys and handshakes per\n"
	     "                          second of it (what one server core does when the client\n"
	     "                          is the bound)\n"
	     "    --timeout-ms, --interval-ms, --summary, --fail-list as below (timeout default\n"
	     "                          10000 per request); no retries: a device fails at its first\n"
	     "                          failed request (failures.by_reason: http_STATUS, transport,\n"
	     "                          timeout, bad_answer, wrong_key)\n"
	     "  --ues N                 UEs (e2m: fetches; hm, dh, prose: UE pairs) to simulate\n"
	     "                          (default: all; dh, prose: half the UEs from --first)\n"
	     "  --first I               first population index (default 0)\n"
	     "  --msk current|next      mbms: key number 0 (the MSK valid now, default) or the next\n"
	     "  --e2m-target imsi|appid|mix   e2m: UE identity sent (default imsi)\n"
	     "  --e2m-key newest|id|mix       e2m: newest key, or a key by identifier (default newest)\n"
	     "  --prf mikey1|sha256|mix PRF of the requests (default mikey1)\n"
	     "  --server-id ID          hm, dh, prose: the server's identity (VLRa / MME1; required)\n"
	     "  --peer-server-id ID     hm, dh, prose: the peer server's identity (VLRb / MME2;\n"
	     "                          default: the server, which then plays both roles)\n"
	     "  --pair-timeout-ms T     dh, prose: how long after a pair's first request ERR 12/5\n"
	     "                          is retried (default 30000, the rendezvous lifetime)\n"
	     "  --peer-first J          hm: UEb of pair k is population UE (J + k % M) % UEs\n"
	     "                          (default: first + 1, so UEb of pair k is UEa of pair k + 1)\n"
	     "  --peer-ues M            hm: distinct UEbs (default: one per pair); each fetches K*b\n"
	     "                          once and keeps it for its later tokens\n"
	     "  --hm-pad auto|none      hm: pad kind-2 requests whose answer would exceed 3x\n"
	     "                          (default auto; none: see the server drop them)\n"
	     "  --skew-s S              accepted server clock skew in responses (default 60)\n"
	     "  --crypto ipsec-mb|openssl    client crypto backend (default ipsec-mb)\n"
	     "load\n"
	     "  --mode burst|rate|poisson|max (default burst)\n"
	     "  --window S              burst: start every UE at a random time in [0, S) (default 1)\n"
	     "  --rate R                rate/poisson: UE starts per second\n"
	     "  --inflight K            UEs in progress at once (default 65536; max mode 1024)\n"
	     "  --timeout-ms T          first try's timeout; doubles per retry (default 200)\n"
	     "  --retries N             retransmissions per UE, 0..10 (default 3)\n"
	     "  --seed N                schedule seed (default 1)\n"
	     "  --alt-seed S            e2m: also accept the e2m_key of the same population under\n"
	     "                          seed S (keys replaced during the run); counted as alt_key\n"
	     "  --presign               sign every UE's first try before t0 (reported as prepare_s);\n"
	     "                          the loop only frames and sends them; retries sign when due,\n"
	     "                          and a first try older than --skew-s / 2 is signed anew\n"
	     "  --verify-after          the loop only matches answers to their tries and keeps a\n"
	     "                          copy; every answer is verified after the run (same checks\n"
	     "                          and verdict; the latency is to the match)\n"
	     "  --ks-after              dh, prose: a side whose answer carries the other UE's\n"
	     "                          value ends there; Ks / KD are derived and the pairs\n"
	     "                          decided after the run (dh: no X25519 in the loop)\n"
	     "output and verdict\n"
	     "  --interval-ms MS        interval lines (default 100; 0 = none)\n"
	     "  --summary FILE          also write the summary there\n"
	     "  --fail-list N           failed UEs listed in the summary (default 20)\n"
	     "  --slo-p99-us US         fail unless latency p99 <= US\n"
	     "  --slo-complete-s S      fail unless every UE holds its key S after t0\n"
	     "  --progress              a live progress line on stderr (UEs done, rate, failures,\n"
	     "                          ETA; every 250 ms, rewritten with \\r); the default when\n"
	     "                          stderr is a terminal\n"
	     "I/O\n"
	     "  --io dpdk|socket        DPDK port 0 (EAL options before --, default) or kernel UDP\n"
	     "  --server-ip IP          keyline's address (IPv4 or IPv6; socket default 127.0.0.1)\n"
	     "  --server-port P         default 2269\n"
	     "  --server ADDR[:PORT][,ADDR[:PORT]...]   socket, mbms and e2m: several servers\n"
	     "                          (nodes of one logical server; IPv6 as [ADDR]:PORT; PORT\n"
	     "                          default --server-port); repeatable, up to 16; not with\n"
	     "                          --server-ip. UE i's first try goes to server i % count;\n"
	     "                          after a timeout the UE moves to the next server, so a dead\n"
	     "                          node costs retries, not UEs (summary: servers[], moved)\n"
	     "  --backoff-ms B          after try t of a UE timed out, wait a random time, uniform\n"
	     "                          in [0, B * 2^t), before its next try (default 0, the next\n"
	     "                          try at once; with several servers, --timeout-ms)\n"
	     "  --peer-server-ip IP     hm, dh, prose, socket: the peer server's address (default:\n"
	     "                          the server; dh, prose: where side B's requests go)\n"
	     "  --peer-server-port P    hm, dh, prose, socket: its port (default 2269)\n"
	     "  --client-ip IP          first source address (dpdk: required)\n"
	     "  --client-port P         source port (dpdk default 40000, socket default ephemeral)\n"
	     "  --sources K             spread UEs over K consecutive source addresses (default 1)\n"
	     "  --server-mac MAC        dpdk: skip ARP/NDP for the server\n"
	     "  --link-timeout-s S      dpdk: wait for the link (default 10)\n"
	     "  --hold-s S              dpdk: after the run, print \"keyline-burst: holding\" on stderr\n"
	     "                          and keep the port open S s before closing it (so a test\n"
	     "                          can stop the server first; see README, memif)\n"
	     "  --resolve-timeout-s S   dpdk: wait for ARP/NDP (default 5)\n"
	     "  --queues Q              dpdk: RX/TX queue pairs (1 for now)\n"
	     "Exit: 0 every UE verified and SLOs held; 1 failures or missed SLO; 2 usage error.");
}

/* Messages name an argument by option or position, never by what was typed (it may be a key
 * in the wrong place); g_argoff: argv index of targv[0]. */
static int g_argoff;

static uint64_t num(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v = 0;

	if (!s || !*s)
		usage_err("%s: missing value", opt);
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9' || v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
			usage_err("%s: not a decimal number", opt);
		v = v * 10 + (uint64_t)(*c - '0');
	}
	if (v < min || v > max)
		usage_err("%s: out of range (%" PRIu64 "..%" PRIu64 ")", opt, min, max);
	return v;
}

static double real(const char *opt, const char *s, double min, double max)
{
	char *end = NULL;
	double v;

	if (!s || !*s)
		usage_err("%s: missing value", opt);
	errno = 0;
	v = strtod(s, &end);
	if (errno || !end || *end || !isfinite(v))
		usage_err("%s: not a number", opt);
	if (v < min || v > max)
		usage_err("%s: out of range (%g..%g)", opt, min, max);
	return v;
}

static int choice(const char *opt, const char *s, const char *const *names, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	(void)s;
	usage_err("%s: unknown value (see --help)", opt);
}

static int parse_ip(const char *s, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (inet_pton(AF_INET, s, ip) == 1)
		return 0;
	if (inet_pton(AF_INET6, s, ip) == 1)
		return 1;
	return -1;
}

/* A server identity (1..128 bytes, no NUL); never echoed. */
static void identity(const char *opt, const char *s, char out[KL_MIKEY_ID_MAX + 1])
{
	size_t n = strlen(s);

	if (!n || n > KL_MIKEY_ID_MAX)
		usage_err("%s: want 1..%d bytes", opt, KL_MIKEY_ID_MAX);
	memcpy(out, s, n + 1);
}

static void parse_mac(const char *opt, const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
	    6)
		usage_err("%s: not a MAC address (aa:bb:cc:dd:ee:ff)", opt);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
}

enum {
	O_POP = 256, O_KIND, O_UES, O_FIRST, O_MSK, O_E2M_TARGET, O_E2M_KEY, O_PRF, O_SKEW, O_CRYPTO,
	O_MODE, O_WINDOW, O_RATE, O_INFLIGHT, O_TIMEOUT, O_RETRIES, O_SEED, O_INTERVAL, O_SUMMARY,
	O_FAIL_LIST, O_SLO_P99, O_SLO_COMPLETE, O_IO, O_SERVER_IP, O_SERVER_PORT, O_CLIENT_IP,
	O_CLIENT_PORT, O_SOURCES, O_SERVER_MAC, O_LINK_TIMEOUT, O_HOLD, O_RESOLVE_TIMEOUT, O_QUEUES, O_HELP,
	O_PRESIGN, O_VERIFY_AFTER, O_KS_AFTER, O_ALT_SEED, O_PROGRESS, O_SERVER_ID, O_PEER_SERVER_ID,
	O_PEER_FIRST, O_PEER_UES, O_HM_PAD, O_PEER_SERVER_IP, O_PEER_SERVER_PORT, O_PAIR_TIMEOUT,
	O_PKI, O_UE_FILE, O_NAF_ID, O_URL, O_CA, O_DEVICES, O_REQUESTS, O_FIRST_UE, O_FULL_HS,
	O_SERVER_PID, O_UE_PER_REQ, O_SERVER, O_BACKOFF,
};

struct opts {
	struct kl_burst_config cfg;
	struct kl_burst_net net;
	const char *population;
	const char *summary;
	const char *server_ip;
	const char *client_ip;
	const char *peer_server_ip;
	int socket_io;
	int progress;
	struct kl_burst_naf_config naf;
	int naf_opts;	/* a --kind naf option was given */
	int udp_opts;	/* an option of the MIKEY kinds was given */
	int timeout_given;
	int backoff_given;
	const char *servers[KL_BURST_SERVERS_MAX]; /* --server, one address each (not terminated) */
	size_t server_len[KL_BURST_SERVERS_MAX];
	unsigned nservers;
};

/* --server ADDR[:PORT][,...]: each address kept for servers_resolve (the port default may come
 * later on the command line). */
static void server_list(struct opts *o, const char *arg)
{
	for (const char *t = arg;; t++) {
		size_t n = strcspn(t, ",");

		if (!n)
			usage_err("--server: an empty address");
		if (o->nservers >= KL_BURST_SERVERS_MAX)
			usage_err("--server: at most %d servers", KL_BURST_SERVERS_MAX);
		o->servers[o->nservers] = t;
		o->server_len[o->nservers++] = n;
		t += n;
		if (!*t)
			break;
	}
}

/* One --server address: ADDR, ADDR:PORT (IPv4), [ADDR] or [ADDR]:PORT (IPv6), or a bare IPv6
 * address. @return the family (0 IPv4, 1 IPv6). */
static int server_addr(const char *arg, size_t len, uint16_t dflt, uint8_t ip[16], uint16_t *port)
{
	char host[INET6_ADDRSTRLEN + 1], buf[INET6_ADDRSTRLEN + 16];
	const char *p = NULL, *s = buf, *colon;
	size_t hl;
	int fam;

	if (len >= sizeof(buf))
		usage_err("--server: not an address (too long)");
	memcpy(buf, arg, len);
	buf[len] = 0;
	colon = strchr(s, ':');
	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || (end[1] && end[1] != ':'))
			usage_err("--server: [ADDR]:PORT for IPv6");
		hl = (size_t)(end - s - 1);
		s++;
		p = end[1] ? end + 2 : NULL;
	} else if (colon && !strchr(colon + 1, ':')) { /* one colon: IPv4:PORT */
		hl = (size_t)(colon - s);
		p = colon + 1;
	} else {
		hl = strlen(s);
	}
	if (!hl || hl >= sizeof(host))
		usage_err("--server: not an IPv4 or IPv6 address");
	memcpy(host, s, hl);
	host[hl] = 0;
	fam = parse_ip(host, ip);
	if (fam < 0)
		usage_err("--server: not an IPv4 or IPv6 address");
	*port = p ? (uint16_t)num("--server port", p, 1, 65535) : dflt;
	return fam;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "population", required_argument, NULL, O_POP },
		{ "kind", required_argument, NULL, O_KIND },
		{ "ues", required_argument, NULL, O_UES },
		{ "first", required_argument, NULL, O_FIRST },
		{ "msk", required_argument, NULL, O_MSK },
		{ "e2m-target", required_argument, NULL, O_E2M_TARGET },
		{ "e2m-key", required_argument, NULL, O_E2M_KEY },
		{ "prf", required_argument, NULL, O_PRF },
		{ "skew-s", required_argument, NULL, O_SKEW },
		{ "crypto", required_argument, NULL, O_CRYPTO },
		{ "mode", required_argument, NULL, O_MODE },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "rate", required_argument, NULL, O_RATE },
		{ "inflight", required_argument, NULL, O_INFLIGHT },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "seed", required_argument, NULL, O_SEED },
		{ "interval-ms", required_argument, NULL, O_INTERVAL },
		{ "summary", required_argument, NULL, O_SUMMARY },
		{ "fail-list", required_argument, NULL, O_FAIL_LIST },
		{ "slo-p99-us", required_argument, NULL, O_SLO_P99 },
		{ "slo-complete-s", required_argument, NULL, O_SLO_COMPLETE },
		{ "io", required_argument, NULL, O_IO },
		{ "server-ip", required_argument, NULL, O_SERVER_IP },
		{ "server-port", required_argument, NULL, O_SERVER_PORT },
		{ "client-ip", required_argument, NULL, O_CLIENT_IP },
		{ "client-port", required_argument, NULL, O_CLIENT_PORT },
		{ "sources", required_argument, NULL, O_SOURCES },
		{ "server-mac", required_argument, NULL, O_SERVER_MAC },
		{ "link-timeout-s", required_argument, NULL, O_LINK_TIMEOUT },
		{ "hold-s", required_argument, NULL, O_HOLD },
		{ "resolve-timeout-s", required_argument, NULL, O_RESOLVE_TIMEOUT },
		{ "queues", required_argument, NULL, O_QUEUES },
		{ "presign", no_argument, NULL, O_PRESIGN },
		{ "verify-after", no_argument, NULL, O_VERIFY_AFTER },
		{ "ks-after", no_argument, NULL, O_KS_AFTER },
		{ "alt-seed", required_argument, NULL, O_ALT_SEED },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "server-id", required_argument, NULL, O_SERVER_ID },
		{ "peer-server-id", required_argument, NULL, O_PEER_SERVER_ID },
		{ "peer-first", required_argument, NULL, O_PEER_FIRST },
		{ "peer-ues", required_argument, NULL, O_PEER_UES },
		{ "hm-pad", required_argument, NULL, O_HM_PAD },
		{ "peer-server-ip", required_argument, NULL, O_PEER_SERVER_IP },
		{ "peer-server-port", required_argument, NULL, O_PEER_SERVER_PORT },
		{ "pair-timeout-ms", required_argument, NULL, O_PAIR_TIMEOUT },
		{ "pki", required_argument, NULL, O_PKI },
		{ "ue-file", required_argument, NULL, O_UE_FILE },
		{ "naf-id", required_argument, NULL, O_NAF_ID },
		{ "url", required_argument, NULL, O_URL },
		{ "ca", required_argument, NULL, O_CA },
		{ "devices", required_argument, NULL, O_DEVICES },
		{ "requests", required_argument, NULL, O_REQUESTS },
		{ "first-ue", required_argument, NULL, O_FIRST_UE },
		{ "full-handshake", no_argument, NULL, O_FULL_HS },
		{ "server-pid", required_argument, NULL, O_SERVER_PID },
		{ "ue-per-request", no_argument, NULL, O_UE_PER_REQ },
		{ "server", required_argument, NULL, O_SERVER },
		{ "backoff-ms", required_argument, NULL, O_BACKOFF },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *kinds[NKINDS];
	static const char *const pads[] = { "auto", "none" };
	static const char *const modes[] = { "burst", "rate", "poisson", "max" };
	static const char *const msks[] = { "current", "next" };
	static const char *const targets[] = { "imsi", "appid", "mix" };
	static const char *const keys[] = { "newest", "id", "mix" };
	static const char *const prfs[] = { "mikey1", "sha256", "mix" };
	static const char *const ios[] = { "dpdk", "socket" };
	int c, rate_given = 0, window_given = 0;

	for (unsigned k = 0; k < NKINDS; k++)
		kinds[k] = kl_burst_kind_name((enum kl_burst_kind)k);
	kl_burst_config_defaults(&o->cfg);
	o->naf.url = KL_NAF_DEFAULT_URL;
	o->naf.fail_list_max = 20;
	memset(&o->net, 0, sizeof(o->net));
	o->net.server_port = KL_MIKEY_PORT;
	o->net.sources = 1;
	o->net.link_timeout_s = 10;
	o->net.resolve_timeout_s = 5;
	o->net.queues = 1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_POP: o->population = optarg; break;
		case O_KIND: o->cfg.kind = (enum kl_burst_kind)choice("--kind", optarg, kinds, NKINDS); break;
		case O_UES: o->cfg.ues = (uint32_t)num("--ues", optarg, 1, KL_POP_MAX_UES); break;
		case O_FIRST: o->cfg.first = (uint32_t)num("--first", optarg, 0, KL_POP_MAX_UES); break;
		case O_MSK: o->cfg.msk = (enum kl_burst_msk)choice("--msk", optarg, msks, 2); break;
		case O_E2M_TARGET:
			o->cfg.e2m_target = (enum kl_burst_mix)choice("--e2m-target", optarg, targets, 3);
			break;
		case O_E2M_KEY: o->cfg.e2m_key = (enum kl_burst_mix)choice("--e2m-key", optarg, keys, 3); break;
		case O_PRF: o->cfg.prf = (enum kl_burst_mix)choice("--prf", optarg, prfs, 3); break;
		case O_SKEW: o->cfg.skew_s = (uint32_t)num("--skew-s", optarg, 1, 86400); break;
		case O_CRYPTO:
			if (kl_crypto_backend_parse(optarg, &o->cfg.backend))
				usage_err("--crypto: unknown backend (ipsec-mb, openssl)");
			break;
		case O_MODE: o->cfg.mode = (enum kl_burst_mode)choice("--mode", optarg, modes, 4); break;
		case O_WINDOW:
			o->cfg.window_s = real("--window", optarg, 1e-6, 86400);
			window_given = 1;
			break;
		case O_RATE:
			o->cfg.rate = real("--rate", optarg, 1e-3, 1e9);
			rate_given = 1;
			break;
		case O_INFLIGHT: o->cfg.inflight = (uint32_t)num("--inflight", optarg, 1, 16777216); break;
		case O_TIMEOUT: o->cfg.timeout_ms = (uint32_t)num("--timeout-ms", optarg, 1, 600000); break;
		case O_RETRIES:
			o->cfg.retries = (uint32_t)num("--retries", optarg, 0, KL_BURST_MAX_RETRIES);
			break;
		case O_SEED: o->cfg.seed = num("--seed", optarg, 0, UINT64_MAX); break;
		case O_PRESIGN: o->cfg.presign = 1; break;
		case O_VERIFY_AFTER: o->cfg.verify_after = 1; break;
		case O_KS_AFTER: o->cfg.ks_after = 1; break;
		case O_PROGRESS: o->progress = 1; break;
		case O_SERVER_ID: identity("--server-id", optarg, o->cfg.server_id); break;
		case O_PEER_SERVER_ID: identity("--peer-server-id", optarg, o->cfg.peer_server_id); break;
		case O_PEER_FIRST:
			o->cfg.peer_first = (uint32_t)num("--peer-first", optarg, 0, KL_POP_MAX_UES);
			o->cfg.has_peer_first = 1;
			break;
		case O_PEER_UES: o->cfg.peer_ues = (uint32_t)num("--peer-ues", optarg, 1, KL_POP_MAX_UES); break;
		case O_HM_PAD: o->cfg.hm_no_pad = choice("--hm-pad", optarg, pads, 2); break;
		case O_PEER_SERVER_IP: o->peer_server_ip = optarg; break;
		case O_PAIR_TIMEOUT:
			o->cfg.pair_timeout_ms = (uint32_t)num("--pair-timeout-ms", optarg, 1, 3600000);
			break;
		case O_PEER_SERVER_PORT:
			o->net.peer_server_port = (uint16_t)num("--peer-server-port", optarg, 1, 65535);
			break;
		case O_ALT_SEED:
			o->cfg.alt_seed = num("--alt-seed", optarg, 0, UINT64_MAX);
			o->cfg.has_alt_seed = 1;
			break;
		case O_INTERVAL: o->cfg.interval_ms = (uint32_t)num("--interval-ms", optarg, 0, 3600000); break;
		case O_SUMMARY: o->summary = optarg; break;
		case O_FAIL_LIST: o->cfg.fail_list_max = (uint32_t)num("--fail-list", optarg, 0, 100000); break;
		case O_SLO_P99: o->cfg.slo_p99_us = real("--slo-p99-us", optarg, 1e-3, 1e12); break;
		case O_SLO_COMPLETE: o->cfg.slo_complete_s = real("--slo-complete-s", optarg, 1e-6, 1e7); break;
		case O_IO: o->socket_io = choice("--io", optarg, ios, 2); break;
		case O_SERVER_IP: o->server_ip = optarg; break;
		case O_SERVER_PORT:
			o->net.server_port = (uint16_t)num("--server-port", optarg, 1, 65535);
			break;
		case O_SERVER: server_list(o, optarg); break;
		case O_BACKOFF:
			o->cfg.backoff_ms = (uint32_t)num("--backoff-ms", optarg, 0, 600000);
			o->backoff_given = 1;
			break;
		case O_CLIENT_IP: o->client_ip = optarg; break;
		case O_CLIENT_PORT: o->net.client_port = (uint16_t)num("--client-port", optarg, 1, 65535); break;
		case O_SOURCES: o->net.sources = (uint32_t)num("--sources", optarg, 1, 65536); break;
		case O_SERVER_MAC:
			parse_mac("--server-mac", optarg, o->net.server_mac);
			o->net.have_server_mac = 1;
			break;
		case O_LINK_TIMEOUT: o->net.link_timeout_s = (uint32_t)num("--link-timeout-s", optarg, 1, 3600); break;
		case O_HOLD: o->net.hold_s = (uint32_t)num("--hold-s", optarg, 0, 3600); break;
		case O_RESOLVE_TIMEOUT:
			o->net.resolve_timeout_s = (uint32_t)num("--resolve-timeout-s", optarg, 1, 3600);
			break;
		case O_QUEUES: o->net.queues = (uint16_t)num("--queues", optarg, 1, 1); break;
		case O_PKI: o->naf.pki = optarg; break;
		case O_UE_FILE: o->naf.ue_file = optarg; break;
		case O_NAF_ID: {
			long n = kl_naf_hex(optarg, o->naf.naf_id, sizeof(o->naf.naf_id));

			if (n <= 0)
				usage_err("--naf-id: want 1..255 bytes of hex");
			o->naf.naf_len = (size_t)n;
			break;
		}
		case O_URL: o->naf.url = optarg; break;
		case O_CA: o->naf.ca = optarg; break;
		case O_DEVICES: o->naf.devices = (uint32_t)num("--devices", optarg, 1, 1000000); break;
		case O_REQUESTS: o->naf.requests = (uint32_t)num("--requests", optarg, 1, 100000000); break;
		case O_FIRST_UE: o->naf.first_ue = (uint32_t)num("--first-ue", optarg, 0, UINT32_MAX); break;
		case O_FULL_HS: o->naf.full_handshake = 1; break;
		case O_UE_PER_REQ: o->naf.ue_per_request = 1; break;
		case O_SERVER_PID: o->naf.server_pid = (int)num("--server-pid", optarg, 1, INT32_MAX); break;
		case 'h':
		case O_HELP: help(); exit(0);
		case ':': usage_err("argument %d: missing value", g_argoff + optind - 1);
		default: usage_err("argument %d: unknown option or missing value", g_argoff + optind - 1);
		}
		/* which family the option belongs to: each kind refuses the other's */
		if (c >= O_PKI && c <= O_UE_PER_REQ)
			o->naf_opts = 1;
		else if (c == O_TIMEOUT)
			o->timeout_given = 1;
		else if (c != O_KIND && c != O_INTERVAL && c != O_SUMMARY && c != O_FAIL_LIST &&
			 c != O_PROGRESS)
			o->udp_opts = 1;
	}
	if (kind_rows[o->cfg.kind].https) {
		if (optind < argc)
			usage_err("argument %d: unexpected (not shown)", g_argoff + optind);
		if (o->udp_opts)
			usage_err("--kind naf takes --pki, --ue-file, --naf-id, --url, --ca, --devices, "
				  "--requests, --first-ue, --full-handshake, --ue-per-request, --server-pid, "
				  "--timeout-ms, --interval-ms, "
				  "--summary, --fail-list");
		if (!o->naf.pki || !o->naf.ue_file || !o->naf.naf_len)
			usage_err("--kind naf needs --pki DIR, --ue-file FILE and --naf-id HEX");
		if (!kl_naf_url_ok(o->naf.url))
			usage_err("--url: want https://HOST[:PORT] (https only, no path)");
		o->naf.timeout_ms = o->timeout_given ? o->cfg.timeout_ms : 10000;
		o->naf.interval_ms = o->cfg.interval_ms;
		o->naf.fail_list_max = o->cfg.fail_list_max;
		return;
	}
	if (o->naf_opts)
		usage_err("--pki, --ue-file, --naf-id, --url, --ca, --devices, --requests, --first-ue, "
			  "--full-handshake, --ue-per-request and --server-pid belong to --kind naf");
	if (optind < argc)
		usage_err("argument %d: unexpected (not shown)", g_argoff + optind);
	if (!o->population)
		usage_err("--population FILE is required");
	if (rate_given && o->cfg.mode != KL_BURST_MODE_RATE && o->cfg.mode != KL_BURST_MODE_POISSON)
		usage_err("--rate belongs to --mode rate or poisson");
	if (window_given && o->cfg.mode != KL_BURST_MODE_BURST)
		usage_err("--window belongs to --mode burst");
	if ((o->cfg.mode == KL_BURST_MODE_RATE || o->cfg.mode == KL_BURST_MODE_POISSON) && !rate_given)
		usage_err("--mode %s needs --rate", kl_burst_mode_name(o->cfg.mode));
	o->cfg.sources = o->net.sources;
	if (o->nservers) {
		if (o->server_ip)
			usage_err("--server and --server-ip: give the servers one way");
		if (!o->socket_io && o->nservers > 1)
			usage_err("several servers need --io socket");
		if (o->nservers > 1 && o->cfg.kind != KL_BURST_KIND_MBMS &&
		    o->cfg.kind != KL_BURST_KIND_E2M)
			usage_err("several servers: --kind mbms or e2m");
		for (unsigned i = 0; i < o->nservers; i++) {
			int fam = server_addr(o->servers[i], o->server_len[i], o->net.server_port,
					      o->net.servers_ip[i], &o->net.servers_port[i]);

			if (i && fam != o->net.v6)
				usage_err("--server: every server of one family (IPv4 or IPv6)");
			o->net.v6 = fam;
		}
		memcpy(o->net.server_ip, o->net.servers_ip[0], 16);
		o->net.server_port = o->net.servers_port[0];
		o->net.nservers = o->nservers;
		o->cfg.servers = o->nservers;
		if (o->nservers > 1 && !o->backoff_given)
			o->cfg.backoff_ms = o->cfg.timeout_ms;
	} else if (!o->server_ip) {
		if (!o->socket_io)
			usage_err("--server-ip is required with --io dpdk");
		o->server_ip = "127.0.0.1";
	}
	if (!o->nservers) {
		int fam = parse_ip(o->server_ip, o->net.server_ip);

		if (fam < 0)
			usage_err("--server-ip: not an IPv4 or IPv6 address");
		o->net.v6 = fam;
	}
	if (o->client_ip) {
		int fam = parse_ip(o->client_ip, o->net.client_ip);

		if (fam < 0)
			usage_err("--client-ip: not an IPv4 or IPv6 address");
		if (fam != o->net.v6)
			usage_err("--client-ip and --server-ip must be of the same family");
		o->net.have_client_ip = 1;
		if (!o->net.v6) {
			uint32_t base = (uint32_t)o->net.client_ip[0] << 24 | (uint32_t)o->net.client_ip[1] << 16 |
					(uint32_t)o->net.client_ip[2] << 8 | o->net.client_ip[3];

			if ((uint64_t)base + o->net.sources - 1 > UINT32_MAX)
				usage_err("--client-ip + --sources runs past 255.255.255.255");
		}
	} else if (!o->socket_io) {
		usage_err("--client-ip is required with --io dpdk");
	}
	if (o->socket_io && (o->net.have_server_mac || o->net.queues > 1))
		usage_err("--server-mac and --queues are for --io dpdk");
	if (kl_burst_kind_pairs(o->cfg.kind)) {
		if (o->cfg.has_peer_first || o->cfg.peer_ues || o->cfg.hm_no_pad)
			usage_err("--peer-first, --peer-ues and --hm-pad belong to --kind hm");
	} else if (o->cfg.kind != KL_BURST_KIND_HM &&
		   (o->cfg.server_id[0] || o->cfg.peer_server_id[0] || o->cfg.has_peer_first ||
		    o->cfg.peer_ues || o->cfg.hm_no_pad || o->peer_server_ip ||
		    o->net.peer_server_port)) {
		usage_err("--server-id, --peer-* and --hm-pad belong to --kind hm, dh or prose");
	}
	if (o->cfg.pair_timeout_ms && !kl_burst_kind_pairs(o->cfg.kind))
		usage_err("--pair-timeout-ms belongs to --kind dh or prose");
	if ((o->cfg.kind == KL_BURST_KIND_HM || kl_burst_kind_pairs(o->cfg.kind)) &&
	    !o->cfg.server_id[0])
		usage_err("--kind %s needs --server-id (the server's identity)",
			  kl_burst_kind_name(o->cfg.kind));
	if (o->peer_server_ip || o->net.peer_server_port) {
		if (!o->socket_io)
			usage_err("--peer-server-ip/--peer-server-port need --io socket");
		if (!o->net.peer_server_port)
			o->net.peer_server_port = KL_MIKEY_PORT;
		if (!o->peer_server_ip) /* the server's address (--server-ip or --server) */
			memcpy(o->net.peer_server_ip, o->net.server_ip, 16);
		else if (parse_ip(o->peer_server_ip, o->net.peer_server_ip) != o->net.v6)
			usage_err("--peer-server-ip: not an address of --server-ip's family");
		o->net.have_peer = 1;
	}
}

static int write_summary(json_t *s, const char *path)
{
	FILE *f;
	int rc = 0;

	if (json_dumpf(s, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) < 0)
		rc = -1;
	fputc('\n', stdout);
	fflush(stdout);
	if (!path)
		return rc;
	f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "keyline-burst: --summary: %s\n", strerror(errno));
		return -1;
	}
	if (json_dumpf(s, f, JSON_INDENT(1) | JSON_REAL_PRECISION(9)) < 0 || fputc('\n', f) == EOF)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc)
		fprintf(stderr, "keyline-burst: --summary: write failed\n");
	return rc;
}

/* --kind naf: HTTPS devices (kl_burst_naf), same stdout (interval lines, summary) and exit. */
static int main_https(struct opts *o)
{
	json_t *sum = NULL;
	char err[512];
	int code, rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "keyline-burst: libcurl initialisation failed\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "keyline-burst: preparing %s devices (MT-side keys) ...\n",
		kl_burst_kind_name(o->cfg.kind));
	rc = kl_burst_naf_run(&o->naf, &stop_flag, stdout, &sum, &code, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "keyline-burst: %s\n", err);
		curl_global_cleanup();
		return rc;
	}
	if (write_summary(sum, o->summary))
		code = 1;
	json_decref(sum);
	curl_global_cleanup();
	return code;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct kl_pop_params pop;
	struct kl_burst *b;
	struct kl_burst_run run = { .out = stdout, .stop = &stop_flag };
	char err[512];
	char **targv;
	int eal_argc = 1, targc, dashdash = -1, rc, code;
	json_t *sum;

	/* EAL options come before "--"; without "--" everything is ours */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashdash = i;
			break;
		}
	if (dashdash > 0)
		eal_argc = dashdash;
	targc = dashdash > 0 ? argc - dashdash : argc;
	targv = calloc((size_t)targc + 1, sizeof(*targv));
	if (!targv)
		return 1;
	targv[0] = argv[0];
	for (int i = 1; i < targc; i++)
		targv[i] = argv[(dashdash > 0 ? dashdash : 0) + i];
	memset(&o, 0, sizeof(o));
	/* DPDK echoes EAL arguments it cannot use: one that could be a key never reaches it */
	for (int i = 1; i < eal_argc; i++)
		if (kl_maybe_key(argv[i]))
			usage_err("EAL argument %d could be a key: refused, not shown", i);
	g_argoff = dashdash > 0 ? dashdash : 0;
	parse_args(targc, targv, &o);
	if (kind_rows[o.cfg.kind].https) {
		if (eal_argc > 1)
			usage_err("EAL options are not for --kind %s", kl_burst_kind_name(o.cfg.kind));
		free(targv);
		return main_https(&o);
	}
	if (o.socket_io && eal_argc > 1)
		usage_err("EAL options are for --io dpdk");
	rc = kl_pop_read_file(o.population, &pop, err, sizeof(err));
	if (rc)
		usage_err("--population: %s", err);
	if (!o.socket_io) {
		char *keep = argv[eal_argc];

		argv[eal_argc] = NULL;
		kl_eal_rundir_cleanup_at_exit(); /* no empty /var/run/dpdk/<prefix> left behind */
		rc = rte_eal_init(eal_argc, argv);
		argv[eal_argc] = keep;
		if (rc < 0) {
			fprintf(stderr, "keyline-burst: EAL init failed: %s\n", rte_strerror(rte_errno));
			free(targv);
			return 1;
		}
	}
	fprintf(stderr, "keyline-burst: preparing %s population%s ...\n",
		kl_burst_kind_name(o.cfg.kind),
		o.cfg.presign ? " and presigning first tries" : "");
	b = kl_burst_create(&o.cfg, &pop, err, sizeof(err));
	if (!b) {
		/* a population that does not fit the request is the operator's usage error */
		fprintf(stderr, "keyline-burst: %s\n", err);
		if (!o.socket_io)
			rte_eal_cleanup();
		free(targv);
		return 2;
	}
	fprintf(stderr, "keyline-burst: %u %s, mode %s, io %s\n", kl_burst_ues(b), kind_rows[o.cfg.kind].what,
		kl_burst_mode_name(o.cfg.mode),
		o.socket_io ? "socket" : "dpdk");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (o.progress || isatty(STDERR_FILENO))
		kl_burst_set_progress(b, stderr, 250);
	rc = o.socket_io ? kl_burst_run_socket(b, &o.net, &run, err, sizeof(err))
			 : kl_burst_run_dpdk(b, &o.net, &run, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "keyline-burst: %s\n", err);
		json_decref(run.io);
		kl_burst_destroy(b);
		if (!o.socket_io)
			rte_eal_cleanup();
		free(targv);
		return 1;
	}
	kl_burst_progress_end(b, run.end_ns);
	if (o.cfg.verify_after || o.cfg.ks_after) {
		fprintf(stderr, "keyline-burst: verifying the answers ...\n");
		kl_burst_verify_stored(b);
	}
	sum = kl_burst_summary(b, run.end_ns);
	code = kl_burst_exit_code(b);
	if (sum) {
		json_t *rows = json_object_get(sum, "servers");
		json_t *addrs = run.io ? json_object_get(run.io, "servers") : NULL;

		/* the core counts by index; the I/O knows the addresses */
		for (size_t i = 0; i < json_array_size(rows) && i < json_array_size(addrs); i++)
			json_object_set(json_array_get(rows, i), "address", json_array_get(addrs, i));
		json_object_set_new(sum, "io", run.io ? run.io : json_null());
		if (write_summary(sum, o.summary))
			code = 1;
		json_decref(sum);
	} else {
		json_decref(run.io);
		code = 1;
	}
	kl_burst_destroy(b);
	if (!o.socket_io)
		rte_eal_cleanup();
	free(targv);
	return code;
}
