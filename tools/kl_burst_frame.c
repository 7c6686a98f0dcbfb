/* SPDX-License-Identifier: BSD-3-Clause */
/* keyline-burst frames: Ethernet/IPv4/IPv6/UDP requests, ARP and NDP, on byte buffers. */
#include <string.h>

#include "kl_burst_io.h"
#include "kl_net.h"

#define ETH_HLEN 14
#define ET_IPV4 0x0800
#define ET_ARP 0x0806
#define ET_IPV6 0x86DD
#define NDP_LEN 32 /* NS / NA with one link-layer address option */

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void kl_burst_source_ip(const struct kl_burst_net *n, uint32_t k, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (n->v6) {
		memcpy(ip, n->client_ip, 16);
		put32(ip + 12, be32(n->client_ip + 12) + k);
	} else {
		put32(ip, be32(n->client_ip) + k);
	}
}

int kl_burst_source_index(const struct kl_burst_net *n, const uint8_t *ip)
{
	uint32_t d;

	if (n->v6) {
		if (memcmp(ip, n->client_ip, 12))
			return -1;
		d = be32(ip + 12) - be32(n->client_ip + 12);
	} else {
		d = be32(ip) - be32(n->client_ip);
	}
	return d < n->sources ? (int)d : -1;
}

static uint16_t client_port(const struct kl_burst_net *n)
{
	return n->client_port ? n->client_port : 40000;
}

uint16_t kl_burst_frame_udp(struct kl_burst_l2 *l, uint32_t source, const uint8_t *payload,
			    uint16_t plen, uint8_t *out, uint16_t cap)
{
	const struct kl_burst_net *n = &l->net;
	uint16_t hdr = n->v6 ? KL_BURST_FRAME_HDR_V6 : KL_BURST_FRAME_HDR_V4, ul = (uint16_t)(8 + plen);
	uint8_t *ip = out + ETH_HLEN, *l4, src[16];
	uint32_t sum;
	uint16_t c;

	if ((uint32_t)hdr + plen > cap || plen > 1400)
		return 0;
	memcpy(out, n->server_mac, 6);
	memcpy(out + 6, l->mac, 6);
	kl_burst_source_ip(n, source, src);
	if (n->v6) {
		put16(out + 12, ET_IPV6);
		put32(ip, 0x60000000u);
		put16(ip + 4, ul);
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, src, 16);
		memcpy(ip + 24, n->server_ip, 16);
		l4 = ip + 40;
	} else {
		put16(out + 12, ET_IPV4);
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, (uint16_t)(20 + ul));
		put16(ip + 4, l->ip_id++);
		put16(ip + 6, 0x4000); /* DF: requests are far below any MTU */
		ip[8] = 64;
		ip[9] = 17;
		put16(ip + 10, 0);
		memcpy(ip + 12, src, 4);
		memcpy(ip + 16, n->server_ip, 4);
		put16(ip + 10, kl_net_csum_fold(kl_net_csum_add(0, ip, 20)));
		l4 = ip + 20;
	}
	put16(l4, client_port(n));
	put16(l4 + 2, n->server_port);
	put16(l4 + 4, ul);
	put16(l4 + 6, 0);
	memcpy(l4 + 8, payload, plen);
	sum = (n->v6 ? kl_net_pseudo6(ip, 17, ul) : kl_net_pseudo4(ip, 17, ul)) + kl_net_csum_add(0, l4, ul);
	c = kl_net_csum_fold(sum);
	put16(l4 + 6, c ? c : 0xFFFF);
	return (uint16_t)(hdr + plen);
}

/* An ARP request / neighbour solicitation for the server's MAC (kl_net builds it). */
uint16_t kl_burst_frame_resolve(const struct kl_burst_l2 *l, uint8_t *out, uint16_t cap)
{
	const struct kl_burst_net *n = &l->net;
	struct kl_net_flow fl = { .v6 = n->v6 };

	memcpy(fl.src_mac, l->mac, 6);
	kl_burst_source_ip(n, 0, fl.src_ip);
	memcpy(fl.dst_ip, n->server_ip, n->v6 ? 16 : 4);
	return kl_net_build_solicit(&fl, out, cap);
}

static enum kl_burst_rx rx_arp(struct kl_burst_l2 *l, uint8_t *f, uint16_t *len, uint16_t cap)
{
	const struct kl_burst_net *n = &l->net;
	uint8_t *a = f + ETH_HLEN, sha[6], spa[4], tpa[4];

	if (*len < ETH_HLEN + 28)
		return KL_BURST_RX_BAD;
	if (be16(a) != 1 || be16(a + 2) != ET_IPV4 || a[4] != 6 || a[5] != 4 || n->v6)
		return KL_BURST_RX_OTHER;
	memcpy(sha, a + 8, 6);
	memcpy(spa, a + 14, 4);
	memcpy(tpa, a + 24, 4);
	if (be16(a + 6) == 2) {
		if (memcmp(spa, n->server_ip, 4))
			return KL_BURST_RX_OTHER;
		memcpy(l->net.server_mac, sha, 6);
		l->server_mac_known = 1;
		return KL_BURST_RX_LEARNED;
	}
	if (be16(a + 6) != 1 || kl_burst_source_index(n, tpa) < 0 || cap < 60)
		return KL_BURST_RX_OTHER;
	memcpy(f, sha, 6);
	memcpy(f + 6, l->mac, 6);
	put16(a + 6, 2);
	memcpy(a + 8, l->mac, 6);
	memcpy(a + 14, tpa, 4);
	memcpy(a + 18, sha, 6);
	memcpy(a + 24, spa, 4);
	if (*len < 60) {
		memset(f + *len, 0, 60u - *len);
		*len = 60;
	}
	return KL_BURST_RX_REPLY;
}

static enum kl_burst_rx rx_udp(struct kl_burst_l2 *l, const uint8_t *ip, const uint8_t *l4,
			       uint16_t l4len, uint16_t l4off, uint16_t *poff, uint16_t *plen)
{
	const struct kl_burst_net *n = &l->net;
	uint16_t ul;
	uint32_t ph;

	if (l4len < 8)
		return KL_BURST_RX_BAD;
	ul = be16(l4 + 4);
	if (ul < 8 || ul > l4len)
		return KL_BURST_RX_BAD;
	if (be16(l4) != n->server_port || be16(l4 + 2) != client_port(n))
		return KL_BURST_RX_OTHER;
	ph = n->v6 ? kl_net_pseudo6(ip, 17, ul) : kl_net_pseudo4(ip, 17, ul);
	/* checksum 0 = none over IPv4; mandatory over IPv6 */
	if ((n->v6 || be16(l4 + 6)) && (!be16(l4 + 6) || kl_net_csum_fold(ph + kl_net_csum_add(0, l4, ul)) != 0))
		return KL_BURST_RX_BAD;
	*poff = (uint16_t)(l4off + 8);
	*plen = (uint16_t)(ul - 8);
	return KL_BURST_RX_ANSWER;
}

static enum kl_burst_rx rx_ipv4(struct kl_burst_l2 *l, const uint8_t *f, uint16_t len,
				uint16_t *poff, uint16_t *plen)
{
	const struct kl_burst_net *n = &l->net;
	const uint8_t *ip = f + ETH_HLEN;
	uint16_t ihl, tot;

	if (n->v6)
		return KL_BURST_RX_OTHER;
	if (len < ETH_HLEN + 20)
		return KL_BURST_RX_BAD;
	ihl = (uint16_t)((ip[0] & 0x0F) * 4);
	tot = be16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > len - ETH_HLEN)
		return KL_BURST_RX_BAD;
	if (kl_net_csum_fold(kl_net_csum_add(0, ip, ihl)) != 0)
		return KL_BURST_RX_BAD;
	if (ip[9] != 17 || memcmp(ip + 12, n->server_ip, 4) || kl_burst_source_index(n, ip + 16) < 0)
		return KL_BURST_RX_OTHER;
	if ((be16(ip + 6) & 0x3FFF) != 0) /* fragments: answers fit one datagram */
		return KL_BURST_RX_OTHER;
	return rx_udp(l, ip, ip + ihl, (uint16_t)(tot - ihl), (uint16_t)(ETH_HLEN + ihl), poff, plen);
}

static enum kl_burst_rx rx_ipv6(struct kl_burst_l2 *l, uint8_t *f, uint16_t *lenp, uint16_t cap,
				uint16_t *poff, uint16_t *plen)
{
	const struct kl_burst_net *n = &l->net;
	uint8_t *ip = f + ETH_HLEN, *l4 = ip + 40;
	uint16_t len = *lenp, pl;

	if (!n->v6)
		return KL_BURST_RX_OTHER;
	if (len < ETH_HLEN + 40)
		return KL_BURST_RX_BAD;
	pl = be16(ip + 4);
	if ((ip[0] >> 4) != 6 || pl > len - ETH_HLEN - 40)
		return KL_BURST_RX_BAD;
	if (ip[6] == 17) {
		if (memcmp(ip + 8, n->server_ip, 16) || kl_burst_source_index(n, ip + 24) < 0)
			return KL_BURST_RX_OTHER;
		return rx_udp(l, ip, l4, pl, ETH_HLEN + 40, poff, plen);
	}
	if (ip[6] != 58)
		return KL_BURST_RX_OTHER;
	if (pl < 24 || ip[7] != 255)
		return KL_BURST_RX_OTHER;
	if (kl_net_csum_fold(kl_net_pseudo6(ip, 58, pl) + kl_net_csum_add(0, l4, pl)) != 0)
		return KL_BURST_RX_BAD;
	if (l4[0] == 136 && l4[1] == 0) {
		/* advertisement for the server's address: its MAC from the target link-layer
		 * address option, else from the frame */
		const uint8_t *mac = f + 6;

		if (memcmp(l4 + 8, n->server_ip, 16))
			return KL_BURST_RX_OTHER;
		for (unsigned o = 24; o + 8 <= pl && l4[o + 1]; o += 8u * l4[o + 1])
			if (l4[o] == 2 && l4[o + 1] == 1)
				mac = l4 + o + 2;
		memcpy(l->net.server_mac, mac, 6);
		l->server_mac_known = 1;
		return KL_BURST_RX_LEARNED;
	}
	if (l4[0] == 135 && l4[1] == 0) {
		static const uint8_t unspec[16];
		uint8_t target[16], solicitor[16], smac[6];

		if (kl_burst_source_index(n, l4 + 8) < 0 || !memcmp(ip + 8, unspec, 16) ||
		    cap < ETH_HLEN + 40 + NDP_LEN)
			return KL_BURST_RX_OTHER;
		memcpy(target, l4 + 8, 16);
		memcpy(solicitor, ip + 8, 16);
		memcpy(smac, f + 6, 6);
		memcpy(f, smac, 6);
		memcpy(f + 6, l->mac, 6);
		put32(ip, 0x60000000u);
		put16(ip + 4, NDP_LEN);
		ip[6] = 58;
		ip[7] = 255;
		memcpy(ip + 8, target, 16);
		memcpy(ip + 24, solicitor, 16);
		memset(l4, 0, NDP_LEN);
		l4[0] = 136;
		l4[4] = 0x60; /* solicited, override */
		memcpy(l4 + 8, target, 16);
		l4[24] = 2; /* target link-layer address */
		l4[25] = 1;
		memcpy(l4 + 26, l->mac, 6);
		put16(l4 + 2, kl_net_csum_fold(kl_net_pseudo6(ip, 58, NDP_LEN) + kl_net_csum_add(0, l4, NDP_LEN)));
		*lenp = ETH_HLEN + 40 + NDP_LEN;
		return KL_BURST_RX_REPLY;
	}
	return KL_BURST_RX_OTHER;
}

enum kl_burst_rx kl_burst_frame_rx(struct kl_burst_l2 *l, uint8_t *f, uint16_t *len, uint16_t cap,
				   uint16_t *poff, uint16_t *plen)
{
	uint16_t et;

	if (!f || !len || *len > cap)
		return KL_BURST_RX_BAD;
	if (*len < ETH_HLEN)
		return KL_BURST_RX_BAD;
	et = be16(f + 12);
	if (et == ET_ARP)
		return rx_arp(l, f, len, cap);
	if (et == ET_IPV4)
		return rx_ipv4(l, f, *len, poff, plen);
	if (et == ET_IPV6)
		return rx_ipv6(l, f, len, cap, poff, plen);
	return KL_BURST_RX_OTHER;
}
