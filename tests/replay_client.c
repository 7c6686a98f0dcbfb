/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Captured requests replayed so that they reach another worker of keylined (test_keylined_replay):
 * every MBMS request is sent once as captured and again from other source ports and addresses.
 * With SO_REUSEPORT (socket io) another source port lands on another worker; with several queues
 * (DPDK io) another queue or, under RSS, another source address does. Whatever the path, one
 * request may get keys once at most.
 *
 *   replay_client socket POP SERVER_IP PORT N COPIES
 *     N requests (UEs 0..N-1) over kernel UDP: each from 127.0.0.1, then COPIES copies of the
 *     same bytes from other sockets (other ports of 127.0.0.1 and the addresses 127.0.0.2..),
 *     right behind each other so that the copies race. Every answer on every socket is verified.
 *   replay_client pcap POP STATE A.pcap B.pcap N
 *     the same requests as frames to 192.0.2.1:2269 (the MAC net_pcap gives port 0), each from
 *     198.51.100.x and a copy from 203.0.113.x and another port: the original in A.pcap and the
 *     copy in B.pcap for even requests, the other way round for odd ones; STATE
 *     keeps the time and RAND nonce that count needs to rebuild them.
 *   replay_client count POP STATE OUT_A.pcap OUT_B.pcap N
 *     verifies every UDP answer in the two TX captures.
 *   replay_client memif POP SOCKET N
 *     the frames of the pcap mode sent over net_memif (role client, two queue pairs: a request on
 *     one queue, its copy on the other, as the pcap mode splits them) to a keylined whose port
 *     has the pcap mode's MAC; every answer on either queue is verified.
 *
 * Prints one JSON line: requests, copies_sent, key_answers, keys_twice (requests that got keys
 * more than once: must be 0), no_keys, error_answers, unverified, unknown. Exit 0 when it could
 * do its job (the test judges the figures), 2 on bad arguments, 1 on a local failure.
 * Test keys only; no key is printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "kl_eal_rundir.h"
#include "kl_engine.h"
#include "kl_population.h"

#define MAX_N 100000
#define MAX_COPIES 16
#define DGRAM 600
#define FRAME (14 + 20 + 8 + DGRAM)

struct req {
	struct kl_client_req r;
	uint8_t rand[16];
	uint8_t buf[DGRAM];
	struct kl_pop_ue ue;
};

struct tally {
	unsigned requests, copies_sent, key_answers, keys_twice, no_keys, error_answers, unverified,
		unknown;
	unsigned char keys[MAX_N];
};

static struct req *reqs;
static struct tally tl;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int build(const char *popfile, unsigned n, uint64_t ts, const uint8_t nonce[16],
		 struct kl_crypto *c)
{
	struct kl_pop_params pp;
	char err[256];

	if (kl_pop_read_file(popfile, &pp, err, sizeof(err))) {
		fprintf(stderr, "replay_client: population: %s\n", err);
		return -1;
	}
	if (n > pp.ues) {
		fprintf(stderr, "replay_client: the population has fewer than %u UEs\n", n);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct req *q = &reqs[i];

		if (kl_pop_ue(&pp, i, &q->ue) || !q->ue.ngroups) {
			fprintf(stderr, "replay_client: UE %u has no key group\n", i);
			return -1;
		}
		memcpy(q->rand, nonce, 16);
		q->rand[0] ^= (uint8_t)i;
		q->rand[1] ^= (uint8_t)(i >> 8);
		q->rand[2] ^= (uint8_t)(i >> 16);
		q->r.spec = (struct kl_mikey_req_spec){ .rand = q->rand, .id = (const uint8_t *)q->ue.impi,
							.id_len = q->ue.impi_len, .ts = ts, .csb_id = i + 1,
							.group = q->ue.groups[0].group,
							.kind = KL_KIND_MBMS };
		memcpy(q->r.spec.domain, q->ue.groups[0].domain, 3);
		q->r.psk = q->ue.muk;
		q->r.psk_len = sizeof(q->ue.muk);
		q->r.buf = q->buf;
		q->r.cap = sizeof(q->buf);
	}
	for (unsigned i = 0; i < n; i += 64) {
		unsigned m = n - i < 64 ? n - i : 64;
		struct kl_client_req batch[64];

		for (unsigned k = 0; k < m; k++)
			batch[k] = reqs[i + k].r;
		if (kl_client_sign(c, batch, m) != (int)m)
			return -1;
		for (unsigned k = 0; k < m; k++)
			reqs[i + k].r = batch[k];
	}
	tl.requests = n;
	return 0;
}

/* One UDP payload that came back from the server. */
static void answer(struct kl_crypto *c, const uint8_t *p, size_t len, unsigned n)
{
	struct kl_mikey_resp rp;
	struct kl_client_result res;
	unsigned i;

	if (kl_mikey_parse_resp(p, len, &rp) != KL_DROP_NONE || rp.csb_id < 1 || rp.csb_id > n) {
		tl.unknown++;
		return;
	}
	i = rp.csb_id - 1;
	if (kl_client_verify(c, &reqs[i].r, p, (uint16_t)len, kl_ntp_now(), 60, &res)) {
		tl.unverified++;
		return;
	}
	if (res.is_error) {
		tl.error_answers++;
		return;
	}
	tl.key_answers++;
	if (tl.keys[i] < 255)
		tl.keys[i]++;
}

static void report(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		tl.keys_twice += tl.keys[i] > 1;
		tl.no_keys += tl.keys[i] == 0;
	}
	printf("{\"requests\":%u,\"copies_sent\":%u,\"key_answers\":%u,\"keys_twice\":%u,"
	       "\"no_keys\":%u,\"error_answers\":%u,\"unverified\":%u,\"unknown\":%u}\n",
	       tl.requests, tl.copies_sent, tl.key_answers, tl.keys_twice, tl.no_keys,
	       tl.error_answers, tl.unverified, tl.unknown);
}

static int udp_from(const char *src, const struct sockaddr_in *srv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int big = 4 << 20;

	if (fd < 0 || inet_pton(AF_INET, src, &a.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    connect(fd, (const struct sockaddr *)srv, sizeof(*srv))) {
		perror("replay_client: socket");
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return fd;
}

static int run_socket(struct kl_crypto *c, const char *ip, const char *port, unsigned n,
		      unsigned copies)
{
	struct sockaddr_in srv = { .sin_family = AF_INET };
	struct pollfd pf[1 + MAX_COPIES];
	char src[32];
	double quiet;

	srv.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, ip, &srv.sin_addr) != 1 || !srv.sin_port) {
		fprintf(stderr, "replay_client: bad server address or port\n");
		return 2;
	}
	for (unsigned k = 0; k <= copies; k++) {
		/* the original and odd copies from other ports of 127.0.0.1, even copies from
		 * 127.0.0.2.. (other addresses) */
		snprintf(src, sizeof(src), "127.0.0.%u", k && !(k & 1) ? 1 + k / 2 : 1);
		pf[k] = (struct pollfd){ .fd = udp_from(src, &srv), .events = POLLIN };
		if (pf[k].fd < 0)
			return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned k = 0; k <= copies; k++) {
			if (send(pf[k].fd, reqs[i].buf, reqs[i].r.len, 0) == (ssize_t)reqs[i].r.len &&
			    k)
				tl.copies_sent++;
		}
		/* a pause and a look at the answers every 32 requests: no socket buffer overflows */
		if (i % 32 == 31 || i + 1 == n) {
			while (poll(pf, copies + 1, i + 1 == n ? 0 : 1) > 0) {
				for (unsigned k = 0; k <= copies; k++) {
					uint8_t buf[2048];
					ssize_t len;

					while ((len = recv(pf[k].fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
						answer(c, buf, (size_t)len, n);
				}
			}
		}
	}
	/* the rest: until nothing came for a second */
	quiet = mono() + 1.0;
	while (mono() < quiet) {
		if (poll(pf, copies + 1, 100) <= 0)
			continue;
		for (unsigned k = 0; k <= copies; k++) {
			uint8_t buf[2048];
			ssize_t len;

			while ((len = recv(pf[k].fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
				answer(c, buf, (size_t)len, n);
				quiet = mono() + 1.0;
			}
		}
	}
	report(n);
	return 0;
}

/* ---- captures ------------------------------------------------------------------------------ */

static const uint8_t srv_mac[6] = { 0x02, 0x70, 0x63, 0x61, 0x70, 0x00 };
static const uint8_t cli_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)~s;
}

static size_t frame(uint8_t *f, const uint8_t src[4], uint16_t sport, const uint8_t *pl, size_t len)
{
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint32_t ps;
	uint16_t u;

	memcpy(f, srv_mac, 6);
	memcpy(f + 6, cli_mac, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + 8 + len));
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, src, 4);
	ip[16] = 192, ip[17] = 0, ip[18] = 2, ip[19] = 1;
	put16(ip + 10, csum(ip, 20, 0));
	put16(udp, sport);
	put16(udp + 2, 2269);
	put16(udp + 4, (uint16_t)(8 + len));
	put16(udp + 6, 0);
	memcpy(udp + 8, pl, len);
	ps = (uint32_t)(src[0] << 8 | src[1]) + (uint32_t)(src[2] << 8 | src[3]) + (192 << 8 | 0) +
	     (2 << 8 | 1) + 17 + (uint32_t)(8 + len);
	u = csum(udp, 8 + len, ps);
	put16(udp + 6, u ? u : 0xFFFF);
	return 14 + 20 + 8 + len;
}

static void wr32(FILE *f, uint32_t v)
{
	fwrite(&v, 4, 1, f); /* little-endian host: the classic pcap format in host order */
}

static FILE *pcap_create(const char *path)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return NULL;
	wr32(f, 0xa1b2c3d4u);
	wr32(f, 2u | 4u << 16);
	wr32(f, 0);
	wr32(f, 0);
	wr32(f, 65535);
	wr32(f, 1); /* Ethernet */
	return f;
}

static void pcap_put(FILE *f, const uint8_t *fr, size_t len)
{
	wr32(f, 0);
	wr32(f, 0);
	wr32(f, (uint32_t)len);
	wr32(f, (uint32_t)len);
	fwrite(fr, 1, len, f);
}

static int state_io(const char *path, int write, uint64_t *ts, uint8_t nonce[16])
{
	FILE *f = fopen(path, write ? "w" : "r");
	int ok;

	if (!f)
		return -1;
	if (write) {
		ok = fprintf(f, "%" PRIu64 "\n", *ts) > 0 && fwrite(nonce, 1, 16, f) == 16;
	} else {
		ok = fscanf(f, "%" SCNu64 "\n", ts) == 1 && fread(nonce, 1, 16, f) == 16;
	}
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_captures(const char *a, const char *b, unsigned n)
{
	FILE *fa = pcap_create(a), *fb = pcap_create(b);
	uint8_t fr[FRAME];

	if (!fa || !fb)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t sa[4] = { 198, 51, 100, (uint8_t)(1 + i % 200) };
		const uint8_t sb[4] = { 203, 0, 113, (uint8_t)(1 + (i * 7) % 200) };

		/* the originals of even requests and the copies of odd ones on queue 0, the rest on
		 * queue 1: each worker sees both */
		pcap_put(i & 1 ? fb : fa, fr,
			 frame(fr, sa, (uint16_t)(40000 + i % 1000), reqs[i].buf, reqs[i].r.len));
		pcap_put(i & 1 ? fa : fb, fr,
			 frame(fr, sb, (uint16_t)(50000 + i % 1000), reqs[i].buf, reqs[i].r.len));
		tl.copies_sent++;
	}
	return (fclose(fa) | fclose(fb)) ? 1 : 0;
}

/* One Ethernet frame from the server: its UDP answer, if it is one. */
static void frame_answer(struct kl_crypto *c, const uint8_t *fr, size_t len, unsigned n)
{
	const uint8_t *ip = fr + 14, *udp;
	unsigned ihl;

	if (len < 14 + 20 + 8 || fr[12] != 0x08 || fr[13] != 0x00 || ip[9] != 17)
		return; /* ARP and the like */
	ihl = (ip[0] & 15u) * 4;
	udp = ip + ihl;
	if (14 + ihl + 8 > len || (udp[0] << 8 | udp[1]) != 2269)
		return;
	answer(c, udp + 8, len - 14 - ihl - 8, n);
}

static int count_capture(struct kl_crypto *c, const char *path, unsigned n)
{
	FILE *f = fopen(path, "rb");
	uint32_t h[6], r[4];
	uint8_t fr[65536];

	if (!f || fread(h, 4, 6, f) != 6 || (h[0] != 0xa1b2c3d4u && h[0] != 0xa1b23c4du)) {
		fprintf(stderr, "replay_client: %s: not a pcap file\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	while (fread(r, 4, 4, f) == 4 && r[2] <= sizeof(fr) && fread(fr, 1, r[2], f) == r[2])
		frame_answer(c, fr, r[2], n);
	fclose(f);
	return 0;
}

/* ---- memif: the same frames over a DPDK port with two queues ------------------------------ */

/* @return whether every request has had a key answer */
static bool all_keyed(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!tl.keys[i])
			return false;
	return true;
}

/* One receive burst on each of the two queues, every frame counted. @return the frames. */
static unsigned rx_answers(struct kl_crypto *c, uint16_t port, unsigned n)
{
	unsigned total = 0;

	for (uint16_t q = 0; q < 2; q++) {
		struct rte_mbuf *rx[64];
		uint16_t got = rte_eth_rx_burst(port, q, rx, 64);

		for (uint16_t x = 0; x < got; x++) {
			frame_answer(c, rte_pktmbuf_mtod(rx[x], const uint8_t *),
				     rte_pktmbuf_data_len(rx[x]), n);
			rte_pktmbuf_free(rx[x]);
		}
		total += got;
	}
	return total;
}

static int run_memif(struct kl_crypto *c, const char *sock, unsigned n)
{
	char prefix[64], vdev[512];
	char *eal[] = { "replay_client", "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
			"--no-telemetry", "-l", "0", "--log-level=error", "--file-prefix", prefix,
			"--vdev", vdev };
	struct rte_eth_conf conf;
	struct rte_mempool *pool;
	struct rte_eth_link link;
	uint16_t port = 0;
	double quiet;

	snprintf(prefix, sizeof(prefix), "kl_replay_client_%d", (int)getpid());
	snprintf(vdev, sizeof(vdev), "net_memif0,role=client,socket=%s", sock);
	kl_eal_rundir_cleanup_at_exit();
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "replay_client: EAL init failed\n");
		return 1;
	}
	memset(&conf, 0, sizeof(conf));
	pool = rte_pktmbuf_pool_create("replay", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	if (!pool || rte_eth_dev_configure(port, 2, 2, &conf))
		return 1;
	for (uint16_t q = 0; q < 2; q++)
		if (rte_eth_rx_queue_setup(port, q, 1024, rte_socket_id(), NULL, pool) ||
		    rte_eth_tx_queue_setup(port, q, 1024, rte_socket_id(), NULL))
			return 1;
	if (rte_eth_dev_start(port))
		return 1;
	for (double t0 = mono();; rte_delay_ms(10)) {
		memset(&link, 0, sizeof(link));
		if (!rte_eth_link_get_nowait(port, &link) && link.link_status == RTE_ETH_LINK_UP)
			break;
		if (mono() - t0 > 20) {
			fprintf(stderr, "replay_client: memif link not up\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < n; i += 16) {
		struct rte_mbuf *m[2][32];
		unsigned k[2] = { 0, 0 };

		for (unsigned j = i; j < n && j < i + 16; j++)
			for (unsigned copy = 0; copy < 2; copy++) {
				const uint8_t sa[4] = { 198, 51, 100, (uint8_t)(1 + j % 200) };
				const uint8_t sb[4] = { 203, 0, 113, (uint8_t)(1 + (j * 7) % 200) };
				/* as in the captures: the original of an even request on queue 0 */
				unsigned q = (j & 1) ^ copy;
				struct rte_mbuf *b = rte_pktmbuf_alloc(pool);
				uint8_t *d;

				if (!b)
					return 1;
				d = (uint8_t *)rte_pktmbuf_append(b, FRAME);
				b->data_len = b->pkt_len = (uint32_t)frame(
					d, copy ? sb : sa, (uint16_t)((copy ? 50000 : 40000) + j % 1000),
					reqs[j].buf, reqs[j].r.len);
				m[q][k[q]++] = b;
				tl.copies_sent += copy;
			}
		for (uint16_t q = 0; q < 2; q++) {
			unsigned sent = 0;

			for (double t0 = mono(); sent < k[q] && mono() - t0 < 2;)
				sent += rte_eth_tx_burst(port, q, m[q] + sent, (uint16_t)(k[q] - sent));
			if (sent < k[q])
				rte_pktmbuf_free_bulk(m[q] + sent, k[q] - sent);
		}
		rx_answers(c, port, n); /* as they come: the rings stay short */
	}
	/* the rest: until nothing came for a second once every request has its key, or for
	 * three seconds while some have none (a request whose two copies met may never get one;
	 * a loaded machine can stall a side for a second) */
	for (quiet = mono() + 3.0; mono() < quiet - (all_keyed(n) ? 2.0 : 0.0);)
		if (rx_answers(c, port, n))
			quiet = mono() + 3.0;
	report(n);
	/* keep the port until the server has gone (22.11's memif faults in a side still polling
	 * when its peer disconnects): the caller stops keylined, then this process */
	fflush(stdout);
	for (double t0 = mono(); mono() - t0 < 30; rte_delay_ms(50)) {
		memset(&link, 0, sizeof(link));
		if (!rte_eth_link_get_nowait(port, &link) && link.link_status != RTE_ETH_LINK_UP)
			break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kl_crypto *c;
	uint8_t nonce[16];
	uint64_t ts = kl_ntp_now();
	unsigned n;
	int rc;

	if (argc != 7 && !(argc == 5 && !strcmp(argv[1], "memif"))) {
		fprintf(stderr, "usage: replay_client socket POP SERVER_IP PORT N COPIES\n"
				"       replay_client pcap POP STATE A.pcap B.pcap N\n"
				"       replay_client count POP STATE OUT_A.pcap OUT_B.pcap N\n"
				"       replay_client memif POP SOCKET N\n");
		return 2;
	}
	n = (unsigned)atoi(argv[argc == 5 ? 4 : !strcmp(argv[1], "socket") ? 5 : 6]);
	if (n < 1 || n > MAX_N) {
		fprintf(stderr, "replay_client: N must be 1..%u\n", MAX_N);
		return 2;
	}
	reqs = calloc(n, sizeof(*reqs));
	c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	if (!reqs || !c)
		return 1;
	if (!strcmp(argv[1], "count")) {
		if (state_io(argv[3], 0, &ts, nonce)) {
			fprintf(stderr, "replay_client: %s: unreadable state\n", argv[3]);
			return 2;
		}
	} else if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
		return 1;
	}
	if (build(argv[2], n, ts, nonce, c))
		return 1;
	if (!strcmp(argv[1], "socket")) {
		unsigned copies = (unsigned)atoi(argv[6]);

		if (copies < 1 || copies > MAX_COPIES) {
			fprintf(stderr, "replay_client: COPIES must be 1..%u\n", MAX_COPIES);
			return 2;
		}
		rc = run_socket(c, argv[3], argv[4], n, copies);
	} else if (!strcmp(argv[1], "pcap")) {
		rc = state_io(argv[3], 1, &ts, nonce) || write_captures(argv[4], argv[5], n);
		if (!rc)
			report(n);
	} else if (!strcmp(argv[1], "memif")) {
		rc = run_memif(c, argv[3], n);
	} else if (!strcmp(argv[1], "count")) {
		rc = count_capture(c, argv[4], n) || count_capture(c, argv[5], n);
		if (!rc)
			report(n);
	} else {
		fprintf(stderr, "replay_client: unknown mode\n");
		rc = 2;
	}
	kl_memzero(reqs, (size_t)n * sizeof(*reqs));
	free(reqs);
	kl_crypto_destroy(c);
	return rc;
}
