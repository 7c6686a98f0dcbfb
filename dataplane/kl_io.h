/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined worker I/O: the per-worker loop around the request engine, over a DPDK ethdev queue
 * pair (kl_io_dpdk.c) or a kernel UDP socket (kl_io_socket.c), and the I/O-level counters and
 * service-time histogram both share. Counters are written by their worker only and read by the
 * control thread, telemetry and /metrics (64-bit words: no torn reads on the targets we build for).
 */
#ifndef KL_IO_H
#define KL_IO_H

#include <stdint.h>

#include "kl_engine.h"
#include "kl_ratelimit.h"
#include "kl_table.h"
#include "kl_net.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rte_eth_dev_tx_buffer;
struct rte_mempool;

/* I/O counters, defined once. */
#define KL_IO_COUNTER_LIST(X)                                                                  \
	X(RX_FRAMES, "rx_frames", "frames (socket io: datagrams) received")                    \
	X(TX_FRAMES, "tx_frames", "frames (socket io: datagrams) sent")                        \
	X(TX_DROPPED, "tx_dropped", "answers the device or socket did not take")               \
	X(ARP_REPLIES, "arp_replies", "ARP requests for our addresses answered")               \
	X(NDP_ADVERTS, "ndp_adverts", "IPv6 neighbour solicitations answered")                 \
	X(ICMP4_ECHO, "icmp4_echo_replies", "ICMP echo requests answered")                     \
	X(ICMP6_ECHO, "icmp6_echo_replies", "ICMPv6 echo requests answered")                   \
	X(RATE_LIMITED, "rate_limited", "requests dropped: the source's token bucket was empty") \
	X(RATE_REFUSED, "rate_table_full", "requests dropped: no rate-limit slot for a new source") \
	X(NO_MBUF, "no_mbuf", "answers lost: no buffer to build them in")                       \
	X(RX_ERRORS, "rx_errors", "receive errors (socket io)")                                 \
	X(S2S_TX, "s2s_tx", "server-to-server messages handed to the socket or device for a peer") \
	X(S2S_TX_FAILED, "s2s_tx_failed",                                                         \
	  "server-to-server messages not sent: no route, no buffer or the socket refused (the engine retries)") \
	X(S2S_NO_NEIGH, "s2s_no_neighbour",                                                       \
	  "server-to-server messages not sent: the peer's MAC is not known yet (dpdk io; an ARP "     \
	  "request or neighbour solicitation went out instead)")                                  \
	X(NEIGH_LEARNED, "neighbour_learned", "peers' MACs learned or changed (dpdk io)")

enum kl_io_counter {
#define KL_X(e, n, d) KL_IO_CNT_##e,
	KL_IO_COUNTER_LIST(KL_X)
#undef KL_X
	KL_IO_CNT__COUNT
};

const char *kl_io_counter_name(unsigned c);
const char *kl_io_counter_desc(unsigned c);

/*
 * Service time of a request: from the return of the receive call that brought it to the send
 * call that carries its answer (TSC), in buckets with these upper bounds in nanoseconds; the
 * last bucket (index KL_IO_HIST_N) is +Inf. Answered requests only.
 */
#define KL_IO_HIST_N 16
extern const uint32_t kl_io_hist_bound_ns[KL_IO_HIST_N];

struct kl_io_stats {
	uint64_t counter[KL_IO_CNT__COUNT];
	uint64_t net_drop[KL_NET_DROP__COUNT];
	uint64_t svc_hist[KL_IO_HIST_N + 1];
	uint64_t svc_sum_ns; /* sum of service times of the requests in svc_hist */
};

/** Count n requests served in ns nanoseconds each (the worker's own stats). */
static inline void kl_io_hist_add(struct kl_io_stats *st, uint64_t ns, unsigned n)
{
	unsigned b = 0;

	while (b < KL_IO_HIST_N && ns > kl_io_hist_bound_ns[b])
		b++;
	st->svc_hist[b] += n;
	st->svc_sum_ns += ns * n;
}

/* ---- the worker loops ------------------------------------------------------------------------ */

#define KL_IO_BURST 32		 /* frames per rx_burst / recvmmsg */
#define KL_IO_DRAIN_US 100	 /* TX buffers are flushed at least this often */
#define KL_IO_TICK_US 1000	 /* dpdk io: kl_engine_tick at most this often (timers >= 100 ms) */
#define KL_IO_MAX_PORTS 8
#define KL_IO_MAX_SOCKETS 16
#define KL_IO_IDLE_POLL_MS 50 /* socket io: longest idle sleep without peers */
#define KL_IO_S2S_POLL_MS 10  /* ... and with peers (the engine's 100 ms retransmissions) */

/*
 * Wall clock for the packet path without a syscall: NTP time = offset + tsc * 2^32 / hz. The
 * control thread re-reads the realtime clock about once a second and publishes a new offset
 * (one 64-bit word), so TSC drift against NTP-disciplined time never accumulates.
 */
struct kl_io_clock {
	uint64_t hz;	 /* TSC ticks per second */
	uint64_t offset; /* written by the control thread only (atomic store) */
};

/** Set hz and publish the first offset (control thread). */
void kl_io_clock_init(struct kl_io_clock *c, uint64_t hz);
/** Publish a fresh offset from CLOCK_REALTIME (control thread, about once a second). */
void kl_io_clock_sync(struct kl_io_clock *c);
/** NTP timestamp at TSC value tsc (any thread). */
uint64_t kl_io_clock_ntp(const struct kl_io_clock *c, uint64_t tsc);

/*
 * dpdk io: the next-hop MAC of each peer, shared by all workers of keylined: whichever worker
 * sees an ARP packet or a neighbour solicitation/advertisement from a peer's address, or a
 * datagram from the peer, learns it for all, since with RSS the peer's answers need not reach the worker that sends to it. One 64-bit
 * word per peer, stored and loaded atomically (no lock): 0 = unknown, else KL_IO_NEIGH_VALID |
 * (port index << 48) | MAC (the 6 bytes big-endian in the low 48 bits). A configured mac is set
 * before the workers start, flagged KL_IO_NEIGH_STATIC, and never replaced.
 */
#define KL_IO_NEIGH_VALID (1ull << 63)
#define KL_IO_NEIGH_STATIC (1ull << 62)
#define KL_IO_NEIGH_ASK_MS 100 /* at most one ARP request / solicitation per peer this often */
struct kl_io_neigh {
	uint64_t e[KL_PEERS_MAX];
	uint64_t asked[KL_PEERS_MAX]; /* TSC of the last ARP request / solicitation for the peer */
};

/** The kl_io_neigh word of a MAC reached through port index port (is_static: configured). */
static inline uint64_t kl_io_neigh_word(const uint8_t mac[6], unsigned port, int is_static)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 6; i++)
		v = v << 8 | mac[i];
	return KL_IO_NEIGH_VALID | (is_static ? KL_IO_NEIGH_STATIC : 0) |
	       (uint64_t)(port & 0xff) << 48 | v;
}

/** One port a DPDK worker serves: its queue of that port and the port's addresses. */
struct kl_io_dpdk_queue {
	uint16_t port_id;
	uint16_t queue_id;
	const struct kl_net_addrs *addrs;
	struct rte_eth_dev_tx_buffer *txb; /* KL_IO_BURST deep, error callback counts TX_DROPPED */
	struct rte_mempool *pool;	   /* for answers that do not fit behind their request */
};

/** Everything one worker owns; written by that worker only (the stop flag and clock excepted). */
struct kl_io_worker {
	unsigned id; /* worker index = queue index = RCU reader id */
	struct kl_worker *engine;
	struct kl_table *table;
	struct kl_ratelimit *rl; /* NULL: rate limiting off */
	/* The configured peer servers (NULL or none: no server-to-server traffic): sets pkt.peer of
	 * every datagram from a peer's address and port, and where the engine's outbox goes. Never
	 * changes while the workers run. */
	const struct kl_peers *peers;
	struct kl_io_neigh *neigh; /* dpdk io with peers: their MACs, shared by all workers */
	const struct kl_io_clock *clock;
	const volatile int *stop; /* set by the control thread: stop taking packets, drain, return */
	/* dpdk io */
	unsigned nq;
	struct kl_io_dpdk_queue q[KL_IO_MAX_PORTS];
	/* socket io */
	unsigned nfd;
	int fd[KL_IO_MAX_SOCKETS];
	struct kl_io_stats st __attribute__((aligned(64)));
	void *scratch; /* socket io: receive and send buffers, allocated before the loop */
} __attribute__((aligned(64)));

/**
 * DPDK worker loop (an lcore function; arg is a struct kl_io_worker): rx_burst on each queue ->
 * classify -> rate limit -> one engine burst (each answer built in its request's mbuf, behind the
 * request) -> tx buffer; TX drained every KL_IO_DRAIN_US and
 * whenever a receive comes back short; one RCU quiescent report per loop. With peers: pkt.peer
 * from each datagram's source address and port, the engine's outbox after each burst and each
 * kl_engine_tick (every KL_IO_TICK_US) as frames to the peers (w->neigh: their MACs, learned from
 * ARP/NDP and their datagrams; unknown: an ARP request / neighbour solicitation instead).
 * Registers and unregisters the worker's RCU reader itself. Returns 0 when *stop is set (after
 * flushing TX).
 */
int kl_io_dpdk_loop(void *arg);

/**
 * Open worker w's kernel UDP sockets: one SO_REUSEPORT socket per address (IPv4 and IPv6), bound
 * to port; no address = one dual-stack socket on [::]. @return 0 or -errno (msg in err).
 */
int kl_io_socket_open(struct kl_io_worker *w, const struct kl_net_addrs *a, char *err,
		      unsigned errlen);
/** Close what kl_io_socket_open opened. */
void kl_io_socket_close(struct kl_io_worker *w);
/**
 * Kernel-socket worker loop: recvmmsg on each socket -> rate limit -> peer of each source ->
 * one engine burst -> sendmmsg of the answers, then of the engine's server-to-server outbox (to
 * each peer's address and port, from the socket bound to our port of the peer's family: a
 * dual-stack socket sends to an IPv4 peer v4-mapped); kl_engine_tick every turn. Blocks in poll()
 * (RCU offline) when every socket is idle: at most KL_IO_IDLE_POLL_MS, KL_IO_S2S_POLL_MS with
 * peers (retransmissions are due every 100 ms). Returns 0 on *stop.
 */
int kl_io_socket_loop(void *arg);

#ifdef __cplusplus
}
#endif
#endif
