/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst DPDK front end: port 0, one RX/TX queue pair, one lcore. Frames are built and
 * parsed by kl_burst_frame.c; the loop never makes a syscall (TSC clock, burst RX/TX). The mbuf
 * pool only has to cover the rings and one TX batch: requests live in mbufs just until the
 * device takes them, their state stays in the core.
 *
 * Each loop drains the RX ring completely (answers left there are lost when the server's TX finds
 * it full), then sends what is due in bursts of TX_BURST. Frames the device did not take wait in
 * a backlog for the next loop instead of being dropped, so a run with more requests in flight
 * than the ring holds keeps the server's RX ring full without losing requests; they count as
 * dropped (and time out) only when the device took nothing for BACKLOG_MAX_NS.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "kl_burst_io.h"

#define NB_RXD 1024
#define NB_TXD 1024
#define RX_BURST 32
#define TX_BURST 32
#define TX_RETRIES 16
#define RX_ROUNDS_MAX 4096 /* a bound, not a budget: the ring holds at most NB_RXD */
/* long enough to ride out a stall of either process (a VM is descheduled for milliseconds) */
#define BACKLOG_MAX_NS 50000000ull
/* requests sent per loop before the RX ring is drained again: signing a ring's worth on demand
 * (a rate run catching up after a stall) takes longer than the server needs to fill our RX ring,
 * and the answers it cannot put there are lost and retransmitted */
#define TX_PER_LOOP (2 * KL_BURST_TX_MAX)
#define RESOLVE_EVERY_NS 200000000ull
#define WARMUP_MAX_NS 500000000ull

/* Front-end counters, defined once. */
#define DPDK_COUNTER_LIST(X)                                                          \
	X(RX_FRAMES, "rx_frames")                                                     \
	X(RX_ANSWERS, "rx_answers")                                                   \
	X(RX_BAD, "rx_bad")                                                           \
	X(RX_OTHER, "rx_other")                                                       \
	X(TX_FRAMES, "tx_frames")                                                     \
	X(TX_DROPPED, "tx_dropped")                                                   \
	X(NO_MBUF, "no_mbuf")                                                         \
	X(NEIGH_REPLIES, "arp_ndp_replies")                                           \
	X(RESOLVE_SENT, "resolve_requests")                                           \
	X(WARMUP_SENT, "warmup_requests")                                             \
	X(LOOPS, "loops")                                                             \
	X(IDLE_LOOPS, "idle_loops") /* nothing received or sent */                    \
	X(BUSY_NS, "busy_ns") /* time in loops that received or sent: the client's load */   \
	X(MAX_LOOP_NS, "max_loop_ns") /* longest loop: a stall of the client shows here */

enum {
#define KL_X(e, n) DC_##e,
	DPDK_COUNTER_LIST(KL_X)
#undef KL_X
	DC__COUNT
};

static const char *const dc_names[] = {
#define KL_X(e, n) n,
	DPDK_COUNTER_LIST(KL_X)
#undef KL_X
};

struct dpdk_io {
	uint16_t port;
	struct rte_mempool *pool;
	struct kl_burst_l2 l2;
	uint64_t tsc0, hz;
	uint64_t run_ns; /* t0 to the end of the run */
	uint64_t ns_mult; /* ns per TSC tick << 32: no division per clock read */
	uint64_t cnt[DC__COUNT];
	/* frames the device did not take yet, and their requests */
	struct rte_mbuf *bl[KL_BURST_TX_MAX];
	struct kl_burst_dgram bld[KL_BURST_TX_MAX];
	uint16_t nbl;
	uint64_t bl_since;
};

static uint64_t clock_ns(const struct dpdk_io *io)
{
	return (uint64_t)(((unsigned __int128)(rte_rdtsc() - io->tsc0) * io->ns_mult) >> 32);
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void ip_text(const struct kl_burst_net *n, const uint8_t *ip, char *out, size_t cap)
{
	if (!inet_ntop(n->v6 ? AF_INET6 : AF_INET, ip, out, (socklen_t)cap))
		snprintf(out, cap, "?");
}

static void tx_frames(struct dpdk_io *io, struct rte_mbuf **m, uint16_t n)
{
	uint16_t sent = 0;

	for (unsigned t = 0; sent < n && t < TX_RETRIES; t++)
		sent = (uint16_t)(sent + rte_eth_tx_burst(io->port, 0, m + sent, (uint16_t)(n - sent)));
	io->cnt[DC_TX_FRAMES] += sent;
	if (sent < n) {
		io->cnt[DC_TX_DROPPED] += (uint64_t)(n - sent);
		rte_pktmbuf_free_bulk(m + sent, (unsigned)(n - sent));
	}
}

/* Receive one burst: answers to the core (when given), ARP/NDP for us answered in place. */
static unsigned rx_once(struct dpdk_io *io, struct kl_burst *b, uint64_t now)
{
	struct rte_mbuf *m[RX_BURST], *rep[RX_BURST], *done[RX_BURST];
	const uint8_t *ans[RX_BURST];
	uint16_t alen[RX_BURST];
	uint16_t n = rte_eth_rx_burst(io->port, 0, m, RX_BURST), nrep = 0, na = 0;

	io->cnt[DC_RX_FRAMES] += n;
	for (uint16_t i = 0; i < n; i++) {
		uint16_t len, cap, poff = 0, plen = 0;
		uint8_t *f;
		enum kl_burst_rx v;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(m[i + 1], void *));
		if (m[i]->nb_segs != 1) { /* answers are small: a chained frame is not one */
			io->cnt[DC_RX_OTHER]++;
			if (b)
				kl_burst_count(b, KL_BC_RX_OTHER, 1);
			rte_pktmbuf_free(m[i]);
			continue;
		}
		f = rte_pktmbuf_mtod(m[i], uint8_t *);
		len = rte_pktmbuf_data_len(m[i]);
		{
			uint32_t c = (uint32_t)len + rte_pktmbuf_tailroom(m[i]);

			cap = (uint16_t)(c > UINT16_MAX ? UINT16_MAX : c);
		}
		v = kl_burst_frame_rx(&io->l2, f, &len, cap, &poff, &plen);
		switch (v) {
		case KL_BURST_RX_ANSWER:
			/* to the core together, so their verification is one crypto batch */
			io->cnt[DC_RX_ANSWERS]++;
			ans[na] = f + poff;
			alen[na] = plen;
			done[na++] = m[i];
			break;
		case KL_BURST_RX_REPLY:
			m[i]->data_len = len;
			m[i]->pkt_len = len;
			rep[nrep++] = m[i];
			io->cnt[DC_NEIGH_REPLIES]++;
			break;
		case KL_BURST_RX_LEARNED:
			rte_pktmbuf_free(m[i]);
			break;
		case KL_BURST_RX_BAD:
		case KL_BURST_RX_OTHER:
		default:
			io->cnt[v == KL_BURST_RX_BAD ? DC_RX_BAD : DC_RX_OTHER]++;
			if (b)
				kl_burst_count(b, KL_BC_RX_OTHER, 1);
			rte_pktmbuf_free(m[i]);
			break;
		}
	}
	if (na) {
		if (b)
			kl_burst_answers(b, ans, alen, na, now);
		rte_pktmbuf_free_bulk(done, na);
	}
	if (nrep)
		tx_frames(io, rep, nrep);
	return n;
}

/* Hand frames tx[0..n) of requests d[0..n) (n <= KL_BURST_TX_MAX) to the device, TX_BURST per
 * tx_burst; what it does not take goes to the backlog (empty when this is called). Reports the
 * sent ones to the core. */
static void tx_requests(struct dpdk_io *io, struct kl_burst *b, struct rte_mbuf **tx,
			struct kl_burst_dgram *d, uint16_t n, uint64_t t_tx)
{
	uint16_t sent = 0;

	while (sent < n) {
		uint16_t want = n - sent < TX_BURST ? (uint16_t)(n - sent) : TX_BURST;
		uint16_t got = rte_eth_tx_burst(io->port, 0, tx + sent, want);

		sent = (uint16_t)(sent + got);
		if (got < want)
			break;
	}
	io->cnt[DC_TX_FRAMES] += sent;
	for (uint16_t i = 0; i < sent; i++)
		d[i].sent = 1;
	kl_burst_sent(b, d, sent, t_tx);
	for (uint16_t i = sent; i < n; i++) {
		io->bl[io->nbl] = tx[i];
		io->bld[io->nbl++] = d[i];
	}
	if (io->nbl)
		io->bl_since = t_tx;
}

/* Send the backlog; what the device still refuses after BACKLOG_MAX_NS is dropped (it times
 * out in the core like a request lost on the wire). @return 1 while a backlog remains. */
static int tx_backlog(struct dpdk_io *io, struct kl_burst *b, uint64_t now)
{
	uint16_t sent = 0, rest;

	while (sent < io->nbl) {
		uint16_t want = io->nbl - sent < TX_BURST ? (uint16_t)(io->nbl - sent) : TX_BURST;
		uint16_t got = rte_eth_tx_burst(io->port, 0, io->bl + sent, want);

		sent = (uint16_t)(sent + got);
		if (got < want)
			break;
	}

	io->cnt[DC_TX_FRAMES] += sent;
	for (uint16_t i = 0; i < sent; i++)
		io->bld[i].sent = 1;
	kl_burst_sent(b, io->bld, sent, now);
	rest = (uint16_t)(io->nbl - sent);
	if (sent)
		io->bl_since = now;
	if (rest && now - io->bl_since > BACKLOG_MAX_NS) {
		for (uint16_t i = sent; i < io->nbl; i++)
			io->bld[i].sent = 0;
		kl_burst_sent(b, io->bld + sent, rest, now);
		io->cnt[DC_TX_DROPPED] += rest;
		rte_pktmbuf_free_bulk(io->bl + sent, rest);
		rest = 0;
	}
	if (rest && sent) {
		memmove(io->bl, io->bl + sent, rest * sizeof(io->bl[0]));
		memmove(io->bld, io->bld + sent, rest * sizeof(io->bld[0]));
	}
	io->nbl = rest;
	return rest != 0;
}

static int port_setup(struct dpdk_io *io, const struct kl_burst_net *net, char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t nb_rxd = NB_RXD, nb_txd = NB_TXD, port = RTE_MAX_ETHPORTS;
	int socket, rc;
	unsigned nmbuf;
	uint16_t p;

	RTE_ETH_FOREACH_DEV(p) {
		port = p;
		break;
	}
	if (port == RTE_MAX_ETHPORTS)
		return fail(err, errlen,
			    "no DPDK port: give the EAL one, e.g. --vdev net_memif0,role=client,socket=PATH");
	io->port = port;
	socket = rte_eth_dev_socket_id(port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	rc = rte_eth_dev_info_get(port, &info);
	if (rc)
		return fail(err, errlen, "port %u: device info: %s", port, strerror(-rc));
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_configure(port, 1, 1, &conf);
	if (rc)
		return fail(err, errlen, "port %u (%s): configure: %s", port, info.driver_name,
			    strerror(-rc));
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (rc)
		return fail(err, errlen, "port %u: descriptors: %s", port, strerror(-rc));
	/* the rings, one TX batch, the neighbour replies and the per-lcore cache */
	nmbuf = 2u * (nb_rxd + nb_txd) + 2u * KL_BURST_TX_MAX + 2u * RX_BURST + 512u;
	io->pool = rte_pktmbuf_pool_create("kl_burst_mbufs", nmbuf, 256, 0,
					   RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!io->pool)
		return fail(err, errlen, "mbuf pool of %u: %s", nmbuf, rte_strerror(rte_errno));
	rc = rte_eth_rx_queue_setup(port, 0, nb_rxd, (unsigned)socket, NULL, io->pool);
	if (!rc)
		rc = rte_eth_tx_queue_setup(port, 0, nb_txd, (unsigned)socket, NULL);
	if (rc)
		return fail(err, errlen, "port %u: queue setup: %s", port, strerror(-rc));
	rc = rte_eth_dev_start(port);
	if (rc)
		return fail(err, errlen, "port %u (%s): start: %s%s", port, info.driver_name,
			    strerror(-rc),
			    strstr(info.driver_name, "memif") ? " (is the server listening on that socket?)"
							       : "");
	rc = rte_eth_macaddr_get(port, &mac);
	if (rc)
		return fail(err, errlen, "port %u: MAC address: %s", port, strerror(-rc));
	memcpy(io->l2.mac, mac.addr_bytes, 6);
	/* memif's link comes up when it has connected to the server's socket */
	for (uint64_t t0 = clock_ns(io);;) {
		struct rte_eth_link link;

		memset(&link, 0, sizeof(link));
		if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
			break;
		if (clock_ns(io) - t0 > (uint64_t)net->link_timeout_s * 1000000000ull)
			return fail(err, errlen,
				    "port %u (%s): link not up after %u s (is the server running?)", port,
				    info.driver_name, net->link_timeout_s);
		rte_delay_ms(10);
	}
	return 0;
}

static int resolve(struct dpdk_io *io, struct kl_burst_run *run, char *err, size_t errlen)
{
	const struct kl_burst_net *n = &io->l2.net;
	uint64_t t0 = clock_ns(io), next = 0;
	char ip[INET6_ADDRSTRLEN];

	while (!io->l2.server_mac_known) {
		uint64_t now = clock_ns(io);

		if (run->stop && *run->stop)
			return fail(err, errlen, "interrupted while resolving the server's MAC");
		if (now - t0 > (uint64_t)n->resolve_timeout_s * 1000000000ull) {
			ip_text(n, n->server_ip, ip, sizeof(ip));
			return fail(err, errlen, "%s did not answer %s within %u s (or give --server-mac)",
				    ip, n->v6 ? "neighbour solicitation" : "ARP", n->resolve_timeout_s);
		}
		if (now >= next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(io->pool);

			if (m) {
				uint16_t len = kl_burst_frame_resolve(&io->l2, rte_pktmbuf_mtod(m, uint8_t *),
								      rte_pktmbuf_tailroom(m));

				m->data_len = len;
				m->pkt_len = len;
				io->cnt[DC_RESOLVE_SENT]++;
				tx_frames(io, &m, 1);
			} else {
				io->cnt[DC_NO_MBUF]++;
			}
			next = now + RESOLVE_EVERY_NS;
		}
		if (!rx_once(io, NULL, now))
			rte_delay_us(50);
	}
	return 0;
}

/*
 * Before t0, cycle every buffer of both rings with ARP requests (neighbour solicitations) the
 * server answers: memif's shared buffers are faulted in on first use, on each side, and a run
 * that starts cold shows some ten milliseconds of ~1 ms latency that belong to neither program.
 */
static void warm_up(struct dpdk_io *io, unsigned frames)
{
	uint64_t t0 = clock_ns(io), now = t0;

	while (io->cnt[DC_WARMUP_SENT] < frames && now - t0 < WARMUP_MAX_NS) {
		struct rte_mbuf *m[TX_BURST];
		uint16_t n = TX_BURST, k;

		if (!rte_pktmbuf_alloc_bulk(io->pool, m, n)) {
			for (uint16_t i = 0; i < n; i++) {
				uint16_t len = kl_burst_frame_resolve(&io->l2, rte_pktmbuf_mtod(m[i], uint8_t *),
								      rte_pktmbuf_tailroom(m[i]));

				m[i]->data_len = len;
				m[i]->pkt_len = len;
			}
			k = rte_eth_tx_burst(io->port, 0, m, n);
			io->cnt[DC_WARMUP_SENT] += k;
			if (k < n)
				rte_pktmbuf_free_bulk(m + k, (unsigned)(n - k));
		}
		now = clock_ns(io);
		while (rx_once(io, NULL, now) == RX_BURST)
			;
	}
	/* the last replies */
	for (uint64_t end = clock_ns(io) + 2000000ull; clock_ns(io) < end;)
		rx_once(io, NULL, now);
}

static json_t *io_json(const struct dpdk_io *io)
{
	json_t *o = json_object();
	char mac[32], smac[32], ip[INET6_ADDRSTRLEN];

	if (!o)
		return NULL;
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", io->l2.mac[0], io->l2.mac[1],
		 io->l2.mac[2], io->l2.mac[3], io->l2.mac[4], io->l2.mac[5]);
	snprintf(smac, sizeof(smac), "%02x:%02x:%02x:%02x:%02x:%02x", io->l2.net.server_mac[0],
		 io->l2.net.server_mac[1], io->l2.net.server_mac[2], io->l2.net.server_mac[3],
		 io->l2.net.server_mac[4], io->l2.net.server_mac[5]);
	json_object_set_new(o, "io", json_string("dpdk"));
	json_object_set_new(o, "port", json_integer(io->port));
	json_object_set_new(o, "mac", json_string(mac));
	json_object_set_new(o, "server_mac", json_string(smac));
	ip_text(&io->l2.net, io->l2.net.server_ip, ip, sizeof(ip));
	json_object_set_new(o, "server", json_string(ip));
	json_object_set_new(o, "server_port", json_integer(io->l2.net.server_port));
	json_object_set_new(o, "sources", json_integer(io->l2.net.sources));
	for (unsigned c = 0; c < DC__COUNT; c++)
		json_object_set_new(o, dc_names[c], json_integer((json_int_t)io->cnt[c]));
	/* near 1: the client, not the server, set the pace */
	json_object_set_new(o, "busy_share",
			    json_real(io->run_ns ? (double)io->cnt[DC_BUSY_NS] / (double)io->run_ns : 0));
	return o;
}

int kl_burst_run_dpdk(struct kl_burst *b, const struct kl_burst_net *net, struct kl_burst_run *run,
		      char *err, size_t errlen)
{
	struct dpdk_io io;
	struct kl_burst_dgram dg[KL_BURST_TX_MAX];
	struct rte_mbuf *tx[KL_BURST_TX_MAX];
	uint64_t now, t_start;
	int rc = -1;

	memset(&io, 0, sizeof(io));
	io.port = RTE_MAX_ETHPORTS;
	io.l2.net = *net;
	io.l2.server_mac_known = net->have_server_mac;
	io.hz = rte_get_tsc_hz();
	io.tsc0 = rte_rdtsc();
	if (!io.hz)
		return fail(err, errlen, "TSC frequency unknown");
	io.ns_mult = (uint64_t)((1000000000ull << 32) / io.hz);
	if (net->queues > 1)
		return fail(err, errlen, "--queues %u: one queue pair per run for now", net->queues);
	if (net->have_peer) /* one server's MAC and address: it plays both hm roles */
		return fail(err, errlen, "a peer server needs --io socket");
	if (port_setup(&io, net, err, errlen) || resolve(&io, run, err, errlen))
		goto out;
	warm_up(&io, 2u * (NB_RXD + NB_TXD));
	now = t_start = clock_ns(&io);
	kl_burst_start(b, now);
	for (;;) {
		uint64_t work = io.cnt[DC_RX_FRAMES] + io.cnt[DC_TX_FRAMES], t;

		if (run->stop && *run->stop) {
			kl_burst_interrupt(b, now);
			kl_burst_tick(b, now, run->out);
			break;
		}
		io.cnt[DC_LOOPS]++;
		t = clock_ns(&io);
		if (t - now > io.cnt[DC_MAX_LOOP_NS])
			io.cnt[DC_MAX_LOOP_NS] = t - now;
		now = t;
		/* drain the RX ring before adding load: answers left in it are lost when the
		 * server's TX finds it full */
		for (unsigned r = 0; r < RX_ROUNDS_MAX && rx_once(&io, b, now) == RX_BURST; r++)
			;
		if (!kl_burst_tick(b, now, run->out))
			break;
		/* what is due, TX_BURST per tx_burst, until the device is full, nothing is due or
		 * TX_PER_LOOP went out */
		for (unsigned budget = TX_PER_LOOP; budget && (!io.nbl || !tx_backlog(&io, b, now));) {
			/* signed in batches of KL_BURST_TX_MAX: the crypto wants them large */
			unsigned n = kl_burst_next(b, now, dg, budget < KL_BURST_TX_MAX ? budget : KL_BURST_TX_MAX);
			uint16_t built = 0;
			uint64_t t_tx;

			if (!n)
				break;
			budget -= n;
			if (rte_pktmbuf_alloc_bulk(io.pool, tx, n)) {
				io.cnt[DC_NO_MBUF] += n;
				for (unsigned i = 0; i < n; i++)
					dg[i].sent = 0;
				kl_burst_sent(b, dg, n, now);
				break;
			}
			for (unsigned i = 0; i < n; i++) {
				uint16_t len = kl_burst_frame_udp(&io.l2, dg[i].source, dg[i].data, dg[i].len,
								  rte_pktmbuf_mtod(tx[i], uint8_t *),
								  rte_pktmbuf_tailroom(tx[i]));

				dg[i].sent = 0;
				if (!len) { /* never with a 2 KB mbuf: stays unsent, times out */
					rte_pktmbuf_free(tx[i]);
					kl_burst_sent(b, &dg[i], 1, now);
					continue;
				}
				tx[i]->data_len = len;
				tx[i]->pkt_len = len;
				tx[built] = tx[i];
				dg[built++] = dg[i];
			}
			/* stamped before the send: an answer can come back before tx_burst returns */
			t_tx = clock_ns(&io);
			tx_requests(&io, b, tx, dg, built, t_tx);
			if (io.nbl)
				break;
		}
		if (io.cnt[DC_RX_FRAMES] + io.cnt[DC_TX_FRAMES] == work)
			io.cnt[DC_IDLE_LOOPS]++;
		else
			io.cnt[DC_BUSY_NS] += clock_ns(&io) - now;
	}
	if (io.nbl) { /* stopped (or every UE finished) with frames the device never took */
		io.cnt[DC_TX_DROPPED] += io.nbl;
		rte_pktmbuf_free_bulk(io.bl, io.nbl);
		io.nbl = 0;
	}
	run->end_ns = now;
	io.run_ns = now - t_start;
	rc = 0;
out:
	run->io = io_json(&io);
	if (rc == 0 && net->hold_s) {
		/* DPDK 22.11's memif PMD can fault in a peer still polling while a disconnect
		 * unmaps the rings: give the server the chance to stop first. */
		uint64_t end = clock_ns(&io) + (uint64_t)net->hold_s * 1000000000ull;

		fprintf(stderr, "keyline-burst: holding the port %u s\n", net->hold_s);
		fflush(stderr);
		/* until the server is gone (the link goes down when it disconnects) */
		while (clock_ns(&io) < end) {
			struct rte_eth_link link;

			memset(&link, 0, sizeof(link));
			if (rte_eth_link_get_nowait(io.port, &link) == 0 &&
			    link.link_status == RTE_ETH_LINK_DOWN)
				break;
			rte_delay_ms(10);
		}
	}
	if (io.port != RTE_MAX_ETHPORTS) {
		rte_eth_dev_stop(io.port);
		rte_eth_dev_close(io.port);
	}
	rte_mempool_free(io.pool);
	return rc;
}
