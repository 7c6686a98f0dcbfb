/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst DPDK front end: port 0, one RX/TX queue pair, one lcore. Frames are built and
 * parsed by kl_burst_frame.c; the loop never makes a syscall (TSC clock, burst RX/TX). The mbuf
 * pool only has to cover the rings and one TX batch: requests live in mbufs just until the
 * device takes them, their state stays in the core.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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
#define TX_RETRIES 16
#define RX_ROUNDS 16
#define RESOLVE_EVERY_NS 200000000ull

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
	X(RESOLVE_SENT, "resolve_requests")

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
	uint64_t cnt[DC__COUNT];
};

static uint64_t clock_ns(const struct dpdk_io *io)
{
	return (uint64_t)((unsigned __int128)(rte_rdtsc() - io->tsc0) * 1000000000u / io->hz);
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
	struct rte_mbuf *m[RX_BURST], *rep[RX_BURST];
	uint16_t n = rte_eth_rx_burst(io->port, 0, m, RX_BURST), nrep = 0;

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
			io->cnt[DC_RX_ANSWERS]++;
			if (b)
				kl_burst_answer(b, f + poff, plen, now);
			rte_pktmbuf_free(m[i]);
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
	if (nrep)
		tx_frames(io, rep, nrep);
	return n;
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
	return o;
}

int kl_burst_run_dpdk(struct kl_burst *b, const struct kl_burst_net *net, struct kl_burst_run *run,
		      char *err, size_t errlen)
{
	struct dpdk_io io;
	struct kl_burst_dgram dg[KL_BURST_TX_MAX];
	struct rte_mbuf *tx[KL_BURST_TX_MAX];
	uint64_t now;
	int rc = -1;

	memset(&io, 0, sizeof(io));
	io.port = RTE_MAX_ETHPORTS;
	io.l2.net = *net;
	io.l2.server_mac_known = net->have_server_mac;
	io.hz = rte_get_tsc_hz();
	io.tsc0 = rte_rdtsc();
	if (!io.hz)
		return fail(err, errlen, "TSC frequency unknown");
	if (net->queues > 1)
		return fail(err, errlen, "--queues %u: one queue pair per run for now", net->queues);
	if (port_setup(&io, net, err, errlen) || resolve(&io, run, err, errlen))
		goto out;
	now = clock_ns(&io);
	kl_burst_start(b, now);
	for (;;) {
		uint64_t t_tx;
		unsigned n;

		if (run->stop && *run->stop) {
			kl_burst_interrupt(b, now);
			kl_burst_tick(b, now, run->out);
			break;
		}
		now = clock_ns(&io);
		/* drain the RX ring before adding load: answers left in it are lost when the
		 * server's TX finds it full */
		for (unsigned r = 0; r < RX_ROUNDS && rx_once(&io, b, now) == RX_BURST; r++)
			;
		if (!kl_burst_tick(b, now, run->out))
			break;
		n = kl_burst_next(b, now, dg, KL_BURST_TX_MAX);
		if (!n)
			continue;
		/* stamped before the send: an answer can come back before tx_burst returns */
		t_tx = clock_ns(&io);
		if (rte_pktmbuf_alloc_bulk(io.pool, tx, n)) {
			io.cnt[DC_NO_MBUF] += n;
			for (unsigned i = 0; i < n; i++)
				dg[i].sent = 0;
		} else {
			uint16_t sent = 0, built = 0, idx[KL_BURST_TX_MAX];

			for (unsigned i = 0; i < n; i++) {
				uint16_t len = kl_burst_frame_udp(&io.l2, dg[i].source, dg[i].data, dg[i].len,
								  rte_pktmbuf_mtod(tx[i], uint8_t *),
								  rte_pktmbuf_tailroom(tx[i]));

				tx[i]->data_len = len;
				tx[i]->pkt_len = len;
				dg[i].sent = 0;
				if (len) {
					idx[built] = (uint16_t)i;
					tx[built++] = tx[i];
				} else {
					rte_pktmbuf_free(tx[i]);
				}
			}
			/* frames that could not be built (never with a 2 KB mbuf) stay unsent */
			for (unsigned t = 0; sent < built && t < TX_RETRIES; t++)
				sent = (uint16_t)(sent + rte_eth_tx_burst(io.port, 0, tx + sent,
									  (uint16_t)(built - sent)));
			io.cnt[DC_TX_FRAMES] += sent;
			if (sent < built) {
				io.cnt[DC_TX_DROPPED] += (uint64_t)(built - sent);
				rte_pktmbuf_free_bulk(tx + sent, (unsigned)(built - sent));
			}
			for (uint16_t k = 0; k < sent; k++)
				dg[idx[k]].sent = 1;
		}
		kl_burst_sent(b, dg, n, t_tx);
	}
	run->end_ns = now;
	rc = 0;
out:
	run->io = io_json(&io);
	if (io.port != RTE_MAX_ETHPORTS) {
		rte_eth_dev_stop(io.port);
		rte_eth_dev_close(io.port);
	}
	rte_mempool_free(io.pool);
	return rc;
}
