/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * L2-L4 of the packet path on plain byte buffers (no DPDK): classify a received Ethernet frame
 * as a MIKEY request for us, something we answer in place (ARP request, ICMP echo, IPv6
 * neighbour solicitation, ICMPv6 echo), or a counted drop; and wrap an engine answer into the
 * Ethernet/IP/UDP reply to its request. Every read is bounds-checked; nothing asserts.
 */
#ifndef KL_NET_H
#define KL_NET_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KL_NET_MAX_ADDRS 8

/* Why a frame was not a MIKEY request and not answered, defined once. */
#define KL_NET_DROP_LIST(X)                                                                    \
	X(NONE, "none", "not dropped")                                                         \
	X(TRUNCATED, "truncated", "frame shorter than its headers say")                       \
	X(NON_IP, "non_ip", "neither IPv4, IPv6 nor ARP")                                       \
	X(BAD_HEADER, "bad_header", "IP version, header length or length fields wrong")        \
	X(BAD_CHECKSUM, "bad_checksum", "IPv4 header, UDP or ICMP checksum wrong")              \
	X(NOT_FOR_US, "not_for_us", "destination is not one of our addresses")                  \
	X(FRAGMENT, "fragment", "IPv4 fragment or IPv6 fragment header")                      \
	X(WRONG_PORT, "wrong_port", "UDP to a port we do not serve")                            \
	X(UNSUPPORTED_PROTO, "unsupported_proto", "other IP protocol or IPv6 extension header") \
	X(UNSUPPORTED_ICMP, "unsupported_icmp", "ICMP/ICMPv6 other than echo and NS")          \
	X(ARP_IGNORED, "arp_ignored", "ARP other than a request for our address")

enum kl_net_drop {
#define KL_X(e, n, d) KL_NET_DROP_##e,
	KL_NET_DROP_LIST(KL_X)
#undef KL_X
	KL_NET_DROP__COUNT
};

const char *kl_net_drop_name(unsigned d);

struct kl_net_addrs {
	uint8_t mac[6];
	uint8_t n4, n6;
	uint8_t ip4[KL_NET_MAX_ADDRS][4];
	uint8_t ip6[KL_NET_MAX_ADDRS][16];
	uint16_t udp_port;
};

enum kl_net_verdict {
	KL_NET_VERDICT_DROP,
	KL_NET_VERDICT_MIKEY, /* a UDP datagram to our port: payload for the engine */
	KL_NET_VERDICT_REPLY, /* the frame was turned into its answer in place: send it back */
};

enum kl_net_kind {
	KL_NET_ARP,
	KL_NET_ICMP4_ECHO,
	KL_NET_ICMP6_ECHO,
	KL_NET_NDP,
	KL_NET_UDP4,
	KL_NET_UDP6,
};

struct kl_net_info {
	uint16_t l3_off;
	uint16_t l4_off;
	uint16_t payload_off; /* UDP payload */
	uint16_t payload_len;
	uint8_t kind;	      /* enum kl_net_kind */
	uint8_t drop;	      /* enum kl_net_drop */
	uint8_t src_key[16];  /* rate-limit key of the source (IPv4 /32, IPv6 /64) */
	uint8_t our_mac[6];   /* MIKEY: the port's MAC, source of the reply */
};

/**
 * Classify frame[0..*len). On KL_NET_VERDICT_REPLY the frame was rewritten into the answer and
 * *len updated; on KL_NET_VERDICT_MIKEY info says where the request is; on DROP info->drop why.
 */
enum kl_net_verdict kl_net_classify(uint8_t *frame, uint16_t *len, const struct kl_net_addrs *a,
				    struct kl_net_info *info);

/**
 * The same with the frame's buffer capacity (cap >= *len): an answer built in place may then be
 * longer than the request (a neighbour solicitation without options gets a 32-byte advertisement).
 */
enum kl_net_verdict kl_net_classify_cap(uint8_t *frame, uint16_t *len, uint16_t cap,
					const struct kl_net_addrs *a, struct kl_net_info *info);

/* Internet checksum pieces (RFC 1071), shared with the load generator's framing. */
/** Add n bytes (big-endian 16-bit words, odd tail padded) to an unfolded sum (the result is
 * congruent modulo 0xFFFF, not equal: compare sums only after kl_net_csum_fold). */
uint32_t kl_net_csum_add(uint32_t sum, const uint8_t *p, unsigned n);
/** Fold and complement: the checksum field value (0 over a whole valid header). */
uint16_t kl_net_csum_fold(uint32_t sum);
/** Pseudo-header sums: IPv4 (RFC 768) and IPv6 (RFC 8200 8.1), ip = the IP header. */
uint32_t kl_net_pseudo4(const uint8_t *ip, uint8_t proto, uint16_t l4len);
uint32_t kl_net_pseudo6(const uint8_t *ip, uint8_t proto, uint32_t l4len);

/** Bytes of Ethernet + IP + UDP header in the reply to a request of this info (42 or 62). */
uint16_t kl_net_reply_headroom(const struct kl_net_info *info);

/**
 * Wrap an answer: out must hold the UDP payload (plen bytes) at out + headroom; this writes the
 * Ethernet/IP/UDP headers answering the request frame req (addresses and ports swapped) with
 * checksums. @return the frame length, or 0 when it would not fit in cap.
 */
uint16_t kl_net_finish_udp_reply(const uint8_t *req, const struct kl_net_info *info, uint8_t *out,
				 uint16_t cap, uint16_t plen);

/* ---- frames keyline starts itself (server-to-server requests to a peer) -------------------- */

/** Both ends of a UDP datagram keyline sends on its own (not an answer). */
struct kl_net_flow {
	uint8_t v6;	     /* 0: IPv4 (4-byte addresses in src_ip/dst_ip), 1: IPv6 */
	uint8_t src_mac[6];  /* our port's MAC */
	uint8_t dst_mac[6];  /* the next hop's */
	uint8_t src_ip[16];  /* network order */
	uint8_t dst_ip[16];
	uint16_t sport;	     /* host order */
	uint16_t dport;
};

/** Bytes of Ethernet + IP + UDP header in front of a datagram of this family (42 or 62). */
uint16_t kl_net_udp_headroom(int v6);

/**
 * Write the Ethernet/IP/UDP headers of fl in front of the plen-byte payload that is already at
 * out + kl_net_udp_headroom(fl->v6), with both checksums. @return the frame length, or 0 when it
 * would not fit in cap.
 */
uint16_t kl_net_build_udp(const struct kl_net_flow *fl, uint8_t *out, uint16_t cap, uint16_t plen);

/**
 * Ask for the MAC of fl->dst_ip from fl->src_ip / fl->src_mac (fl->dst_mac and the ports are not
 * used): an ARP request (IPv4, broadcast, padded to the 60-byte Ethernet minimum) or a neighbour
 * solicitation (IPv6, to the solicited-node multicast address, with our link-layer address).
 * @return the frame length or 0 (cap too small).
 */
uint16_t kl_net_build_solicit(const struct kl_net_flow *fl, uint8_t *out, uint16_t cap);

/** An IP address -> MAC binding a received frame announces. */
struct kl_net_neigh {
	uint8_t v6;
	uint8_t ip[16];
	uint8_t mac[6];
};

/**
 * What a frame says about a neighbour's MAC, before it is classified (an ARP request for our
 * address is turned into its answer in place): an ARP request or reply (the sender's address and
 * MAC), an IPv6 neighbour solicitation with a source link-layer address option (its source), a
 * neighbour advertisement with a target link-layer address option (its target). Well-formedness
 * only: checksums are the classifier's.
 * @return 1 with *nb set, or 0 (nothing to learn).
 */
int kl_net_neigh_hint(const uint8_t *frame, uint16_t len, struct kl_net_neigh *nb);

#ifdef __cplusplus
}
#endif
#endif
