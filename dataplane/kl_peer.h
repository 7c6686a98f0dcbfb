/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Peer servers (PROTOCOL.md section 10): the other keylines this one exchanges server-to-server
 * messages with (kinds 6 and 7), as the config's `peers:` lists them. The list is built by the
 * control thread before the workers start and never changes while they run; only the counters
 * move (relaxed atomic adds: several workers may count for one peer, and server-to-server traffic
 * is a small part of a worker's packets).
 *
 * A datagram is "from a configured peer" when its source address and port are one peer's
 * (the I/O sets struct kl_pkt.peer); kinds 6 and 7 are accepted only then, and only when IDi is
 * that same peer's identity.
 */
#ifndef KL_PEER_H
#define KL_PEER_H

#include <stdint.h>

#include "kl_mikey.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KL_PEERS_MAX 32

/* Per-peer counters, defined once: enum, names (keylinectl, /metrics), descriptions. */
#define KL_PEER_COUNTER_LIST(X)                                                                  \
	X(SENT, "sent", "server-to-server requests sent to the peer (first tries)")               \
	X(ANSWERED, "answered", "answers from the peer that verified and matched a request")       \
	X(RETRIED, "retried", "requests sent again after no answer (100 ms, doubling)")           \
	X(FAILED, "failed", "requests given up after 3 tries without an answer")                   \
	X(REFUSED, "refused", "kind 6/7 messages refused: IDi is the peer's but the source is not, or the peer sent what it may not") \
	X(RECEIVED, "received", "kind 6/7 requests from the peer that verified")

enum kl_peer_counter {
#define KL_X(e, n, d) KL_PEER_CNT_##e,
	KL_PEER_COUNTER_LIST(KL_X)
#undef KL_X
	KL_PEER_CNT__COUNT
};

const char *kl_peer_counter_name(unsigned c);
const char *kl_peer_counter_desc(unsigned c);

/* Messages from sources that are no configured peer, counted once for the server. */
#define KL_PEER_UNCONFIGURED KL_PEERS_MAX

struct kl_peer {
	uint8_t id[KL_MIKEY_ID_MAX]; /* the peer server's identity (its IDr / IDi) */
	uint16_t id_len;
	uint8_t family;	 /* 4 or 6 */
	uint8_t ip[16];	 /* network order; IPv4 in ip[0..3] */
	uint16_t port;	 /* host order */
	uint8_t mac[6];	 /* DPDK io: next hop's MAC when configured (has_mac), else learned */
	uint8_t has_mac;
};

struct kl_peers {
	unsigned n;
	struct kl_peer p[KL_PEERS_MAX];
	/* [KL_PEER_UNCONFIGURED] counts REFUSED messages from sources that are no peer */
	uint64_t cnt[KL_PEERS_MAX + 1][KL_PEER_CNT__COUNT];
};

/** Index of the peer with this identity, or -1. */
int kl_peers_find_id(const struct kl_peers *ps, const uint8_t *id, uint16_t len);
/** Index of the peer with this source address (family 4/6, ip network order, port host order),
 * or -1. */
int kl_peers_find_addr(const struct kl_peers *ps, uint8_t family, const uint8_t *ip,
		       uint16_t port);

/** Count one event for peer i (KL_PEER_UNCONFIGURED for no peer): any thread. */
static inline void kl_peer_count(struct kl_peers *ps, unsigned i, enum kl_peer_counter c)
{
	if (ps && i <= KL_PEERS_MAX)
		__atomic_fetch_add(&ps->cnt[i][c], 1, __ATOMIC_RELAXED);
}

/** Read a counter (any thread). */
static inline uint64_t kl_peer_counter(const struct kl_peers *ps, unsigned i,
				       enum kl_peer_counter c)
{
	return __atomic_load_n(&ps->cnt[i][c], __ATOMIC_RELAXED);
}

#ifdef __cplusplus
}
#endif
#endif
