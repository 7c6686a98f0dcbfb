/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK worker loop's server-to-server side, over a ring ethdev (rte_eth_from_rings: the test
 * puts frames on its RX ring and takes what it sends from its TX ring) against a scripted engine
 * (kl_fake_engine.h): pkt.peer from the frame's source address and UDP port; an outbox message for
 * a peer whose MAC is unknown becomes an ARP request (IPv4) or a neighbour solicitation (IPv6) and
 * counts as not sent; the ARP reply / neighbour advertisement (or a datagram from the peer's
 * address) teaches the MAC; then the message goes out as a frame from our address and port that
 * the peer's classifier takes as a MIKEY datagram (checksums right); a configured MAC is used at
 * once and never replaced by a learned one.
 *   test_io_dpdk   (EAL arguments are built in: --no-huge --no-shconf, two lcores)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "kl_io.h"

#include "kl_fake_engine.h"

#define OUR_PORT 2269

static struct rte_ring *rxr, *txr;
static struct rte_mempool *pool;
static uint16_t port_id;
static struct kl_net_addrs addrs;
static struct kl_peers peers;
static struct kl_io_neigh neigh;
static struct kl_io_worker *wk;
static struct kl_io_clock clk;
static volatile int stop_flag;
static unsigned lcore;

static const uint8_t A_MAC[6] = { 0x02, 0xaa, 0, 0, 0, 1 };	/* peer A: IPv4, learned */
static const uint8_t B_MAC[6] = { 0x02, 0xbb, 0, 0, 0, 2 };	/* peer B: IPv6, configured */
static const uint8_t B_OTHER[6] = { 0x02, 0xbb, 0, 0, 0, 9 }; /* what B's address also says */
static const uint8_t C_MAC[6] = { 0x02, 0xcc, 0, 0, 0, 3 };	/* peer C: IPv6, learned */

static void add_peer(const char *id, int family, const char *ip, uint16_t port)
{
	struct kl_peer *p = &peers.p[peers.n++];

	p->id_len = (uint16_t)strlen(id);
	memcpy(p->id, id, p->id_len);
	p->family = family == AF_INET ? 4 : 6;
	inet_pton(family, ip, p->ip);
	p->port = port;
}

/* The kl_net_addrs of peer i (to classify what we send it, and to build what it sends). */
static void peer_addrs(unsigned i, const uint8_t mac[6], struct kl_net_addrs *a)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->mac, mac, 6);
	if (peers.p[i].family == 4) {
		memcpy(a->ip4[0], peers.p[i].ip, 4);
		a->n4 = 1;
	} else {
		memcpy(a->ip6[0], peers.p[i].ip, 16);
		a->n6 = 1;
	}
	a->udp_port = peers.p[i].port;
}

static void inject(const uint8_t *f, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);

	assert_non_null(m);
	memcpy(rte_pktmbuf_append(m, len), f, len);
	assert_int_equal(rte_ring_enqueue(rxr, m), 0);
}

/* A datagram from peer i's address and sport to our port: payload text. */
static void inject_udp(unsigned i, const uint8_t mac[6], uint16_t sport, const char *text)
{
	struct kl_net_flow fl = { .v6 = peers.p[i].family == 6, .sport = sport,
				  .dport = OUR_PORT };
	uint8_t f[256];
	uint16_t hr = kl_net_udp_headroom(fl.v6), len;

	memcpy(fl.src_mac, mac, 6);
	memcpy(fl.dst_mac, addrs.mac, 6);
	memcpy(fl.src_ip, peers.p[i].ip, fl.v6 ? 16 : 4);
	memcpy(fl.dst_ip, fl.v6 ? addrs.ip6[0] : addrs.ip4[0], fl.v6 ? 16 : 4);
	memcpy(f + hr, text, strlen(text));
	len = kl_net_build_udp(&fl, f, sizeof(f), (uint16_t)strlen(text));
	assert_true(len > 0);
	inject(f, len);
}

/* The next frame keylined sent, within 2 s. */
static uint16_t take(uint8_t *f, uint16_t cap)
{
	for (int i = 0; i < 2000; i++) {
		void *o;

		if (rte_ring_dequeue(txr, &o) == 0) {
			struct rte_mbuf *m = o;
			uint16_t len = rte_pktmbuf_data_len(m);

			assert_true(len <= cap);
			memcpy(f, rte_pktmbuf_mtod(m, uint8_t *), len);
			rte_pktmbuf_free(m);
			return len;
		}
		usleep(1000);
	}
	fail_msg("no frame sent within 2 s");
	return 0;
}

static void expect_nothing(void)
{
	void *o;

	usleep(50000);
	assert_int_not_equal(rte_ring_dequeue(txr, &o), 0);
}

/* What peer i (MAC mac) makes of a frame we sent it: a MIKEY datagram from our address and
 * port with this payload. */
static void expect_datagram(unsigned i, const uint8_t mac[6], const char *text)
{
	struct kl_net_addrs pa;
	struct kl_net_info in;
	uint8_t f[2048];
	uint16_t len = take(f, sizeof(f));
	int v6 = peers.p[i].family == 6;

	peer_addrs(i, mac, &pa);
	assert_memory_equal(f, mac, 6);
	assert_memory_equal(f + 6, addrs.mac, 6);
	assert_int_equal(kl_net_classify(f, &len, &pa, &in), KL_NET_VERDICT_MIKEY);
	assert_int_equal(in.payload_len, strlen(text));
	assert_memory_equal(f + in.payload_off, text, strlen(text));
	assert_memory_equal(f + in.l3_off + (v6 ? 8 : 12), v6 ? addrs.ip6[0] : addrs.ip4[0],
			    v6 ? 16 : 4);
	assert_int_equal(f[in.l4_off] << 8 | f[in.l4_off + 1], OUR_PORT);
}

/* The solicitation we sent for peer i, answered as peer i (MAC mac) would: the answer goes in. */
static void answer_solicit(unsigned i, const uint8_t mac[6])
{
	struct kl_net_addrs pa;
	struct kl_net_info in;
	uint8_t f[2048];
	uint16_t len = take(f, sizeof(f));

	peer_addrs(i, mac, &pa);
	assert_int_equal(kl_net_classify_cap(f, &len, sizeof(f), &pa, &in), KL_NET_VERDICT_REPLY);
	assert_int_equal(in.kind, peers.p[i].family == 6 ? KL_NET_NDP : KL_NET_ARP);
	inject(f, len);
}

static uint64_t io(enum kl_io_counter c)
{
	return __atomic_load_n(&wk->st.counter[c], __ATOMIC_RELAXED);
}

static void wait_counter(enum kl_io_counter c, uint64_t want)
{
	for (int i = 0; i < 200 && io(c) < want; i++)
		usleep(10000);
	assert_int_equal(io(c), want);
}

static void test_peer_of_frames(void **state)
{
	uint8_t seen[8];

	(void)state;
	inject_udp(0, A_MAC, 4000, "a");	     /* peer A */
	inject_udp(0, A_MAC, 4001, "b");	     /* A's address, another port: no peer */
	inject_udp(1, B_OTHER, peers.p[1].port, "c"); /* peer B (IPv6) */
	assert_int_equal(fake_wait_seen(3, seen), 3);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 0);
	assert_int_equal(seen[2], 2);
	/* A's datagrams taught its MAC; B's configured MAC was not replaced */
	assert_int_equal(io(KL_IO_CNT_NEIGH_LEARNED), 1);
	fake_tick_msg(0);
	expect_datagram(0, A_MAC, "tick0");
	fake_tick_msg(1);
	expect_datagram(1, B_MAC, "tick1");
	/* a serve's outbox goes out as well: "S01" asks for one message to each */
	inject_udp(0, A_MAC, 4000, "S01");
	expect_datagram(0, A_MAC, "to0");
	expect_datagram(1, B_MAC, "to1");
	assert_int_equal(io(KL_IO_CNT_S2S_TX), 4);
	assert_int_equal(io(KL_IO_CNT_S2S_NO_NEIGH), 0);
}

static void test_solicit_and_learn(void **state)
{
	(void)state;
	/* C (IPv6): unknown -> a neighbour solicitation, the message not sent */
	fake_tick_msg(2);
	answer_solicit(2, C_MAC);
	wait_counter(KL_IO_CNT_S2S_NO_NEIGH, 1);
	wait_counter(KL_IO_CNT_NEIGH_LEARNED, 2);
	fake_tick_msg(2);
	expect_datagram(2, C_MAC, "tick2");
	/* D (IPv4): unknown -> an ARP request; within KL_IO_NEIGH_ASK_MS no second one */
	fake_tick_msg(3);
	answer_solicit(3, A_MAC); /* the ARP reply announces D at A_MAC's box */
	wait_counter(KL_IO_CNT_S2S_NO_NEIGH, 2);
	wait_counter(KL_IO_CNT_NEIGH_LEARNED, 3);
	fake_tick_msg(3);
	expect_datagram(3, A_MAC, "tick3");
	/* a message for no peer is counted, nothing sent */
	fake_tick_msg(9);
	wait_counter(KL_IO_CNT_S2S_TX_FAILED, 1);
	expect_nothing();
	assert_int_equal(io(KL_IO_CNT_S2S_TX), 6);
}

static void test_ask_limit(void **state)
{
	(void)state;
	/* E (IPv4) never answers: one ARP request per KL_IO_NEIGH_ASK_MS however many messages */
	fake_tick_msg(4);
	{
		uint8_t f[256];
		uint16_t len = take(f, sizeof(f));

		assert_int_equal(len, 60);
		assert_memory_equal(f, "\xff\xff\xff\xff\xff\xff", 6);
	}
	wait_counter(KL_IO_CNT_S2S_NO_NEIGH, 3);
	fake_tick_msg(4);
	wait_counter(KL_IO_CNT_S2S_NO_NEIGH, 4);
	expect_nothing();
	usleep(KL_IO_NEIGH_ASK_MS * 1000);
	fake_tick_msg(4);
	(void)take((uint8_t[256]){ 0 }, 256);
	wait_counter(KL_IO_CNT_S2S_NO_NEIGH, 5);
}

static int setup(void **state)
{
	static char *eal[] = { "test_io_dpdk", "--no-huge", "--no-shconf", "--no-pci",
			       "--no-telemetry", "-m", "128", "-l", "0-1", "--log-level=error",
			       "--file-prefix", NULL };
	char prefix[32];
	struct rte_eth_conf conf;
	struct rte_eth_dev_tx_buffer *txb;
	struct rte_ether_addr mac;
	int argc = 12;

	(void)state;
	snprintf(prefix, sizeof(prefix), "kliodpdk%d", (int)getpid());
	eal[11] = prefix;
	if (rte_eal_init(argc, eal) < 0)
		return -1;
	pool = rte_pktmbuf_pool_create("kl_test_pool", 2047, 32, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       (int)rte_socket_id());
	rxr = rte_ring_create("kl_test_rx", 1024, (int)rte_socket_id(), 0);
	txr = rte_ring_create("kl_test_tx", 1024, (int)rte_socket_id(), 0);
	if (!pool || !rxr || !txr)
		return -1;
	{
		int id = rte_eth_from_rings("kl_ring0", &rxr, 1, &txr, 1, rte_socket_id());

		if (id < 0)
			return -1;
		port_id = (uint16_t)id;
	}
	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(port_id, 1, 1, &conf) ||
	    rte_eth_rx_queue_setup(port_id, 0, 256, rte_socket_id(), NULL, pool) ||
	    rte_eth_tx_queue_setup(port_id, 0, 256, rte_socket_id(), NULL) ||
	    rte_eth_dev_start(port_id))
		return -1;
	rte_eth_macaddr_get(port_id, &mac);
	memcpy(addrs.mac, mac.addr_bytes, 6);
	addrs.udp_port = OUR_PORT;
	addrs.n4 = addrs.n6 = 1;
	inet_pton(AF_INET, "192.0.2.1", addrs.ip4[0]);
	inet_pton(AF_INET6, "2001:db8::1", addrs.ip6[0]);

	add_peer("vlr-a", AF_INET, "192.0.2.10", 4000);
	add_peer("vlr-b", AF_INET6, "2001:db8::20", 2270);
	add_peer("mme-c", AF_INET6, "2001:db8::30", 2269);
	add_peer("mme-d", AF_INET, "192.0.2.40", 2269);
	add_peer("vlr-e", AF_INET, "192.0.2.50", 2269);
	neigh.e[1] = kl_io_neigh_word(B_MAC, 0, 1);

	txb = rte_zmalloc_socket("kl_test_txb", RTE_ETH_TX_BUFFER_SIZE(KL_IO_BURST), 0,
				 (int)rte_socket_id());
	wk = rte_zmalloc("kl_test_worker", sizeof(*wk), 64);
	if (!txb || !wk || rte_eth_tx_buffer_init(txb, KL_IO_BURST))
		return -1;
	memset(&fake, 0, sizeof(fake));
	fake.tick_msg = -1;
	kl_io_clock_init(&clk, rte_get_tsc_hz());
	wk->engine = &fake;
	wk->clock = &clk;
	wk->stop = &stop_flag;
	wk->peers = &peers;
	wk->neigh = &neigh;
	wk->nq = 1;
	wk->q[0].port_id = port_id;
	wk->q[0].queue_id = 0;
	wk->q[0].addrs = &addrs;
	wk->q[0].txb = txb;
	wk->q[0].pool = pool;
	lcore = rte_get_next_lcore(-1, 1, 0);
	return rte_eal_remote_launch(kl_io_dpdk_loop, wk, lcore);
}

static int teardown(void **state)
{
	char rundir[PATH_MAX];

	(void)state;
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
	rte_eal_wait_lcore(lcore);
	rte_eth_dev_stop(port_id);
	snprintf(rundir, sizeof(rundir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	/* EAL leaves its (empty, with --no-shconf --no-telemetry) runtime directory behind */
	if (rmdir(rundir))
		print_message("rmdir %s: %s\n", rundir, strerror(errno));
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_of_frames),
		cmocka_unit_test(test_solicit_and_learn),
		cmocka_unit_test(test_ask_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
