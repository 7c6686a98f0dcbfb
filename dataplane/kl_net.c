/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "kl_net.h"
#include "kl_ratelimit.h" /* the source key is the rate limiter's */

#define ETH_HLEN 14
#define ET_IPV4 0x0800
#define ET_ARP 0x0806
#define ET_IPV6 0x86DD

static const char *const net_drop_names[] = {
#define KL_X(e, n, d) n,
	KL_NET_DROP_LIST(KL_X)
#undef KL_X
};

const char *kl_net_drop_name(unsigned d)
{
	return d < KL_NET_DROP__COUNT ? net_drop_names[d] : "unknown";
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * 32-bit words in host order into a 64-bit accumulator, folded to 16 bits and brought to network
 * order at the end (RFC 1071 2.(B): the sum is byte-order independent). The result is congruent
 * to the byte-pair sum modulo 0xFFFF and 0 only when every byte is, so callers may keep adding
 * to it and fold once, as before.
 */
uint32_t kl_net_csum_add(uint32_t sum, const uint8_t *p, unsigned n)
{
	uint64_t acc = 0;
	unsigned i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		acc += (v & 0xFFFFFFFFu) + (v >> 32);
	}
	if (i + 4 <= n) {
		uint32_t v;

		memcpy(&v, p + i, 4);
		acc += v;
		i += 4;
	}
	if (i + 2 <= n) {
		uint16_t v;

		memcpy(&v, p + i, 2);
		acc += v;
		i += 2;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (i < n)
		acc += p[i]; /* the odd byte is the high half of its zero-padded word */
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
	acc = ((acc >> 8) | (acc << 8)) & 0xFFFF;
#else
	if (i < n)
		acc += (uint32_t)p[i] << 8;
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
#endif
	return sum + (uint32_t)acc;
}

uint16_t kl_net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

uint32_t kl_net_pseudo4(const uint8_t *ip, uint8_t proto, uint16_t l4len)
{
	return kl_net_csum_add(0, ip + 12, 8) + proto + l4len;
}

uint32_t kl_net_pseudo6(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
	return kl_net_csum_add(0, ip + 8, 32) + (l4len >> 16) + (l4len & 0xFFFF) + proto;
}

static int ours4(const struct kl_net_addrs *a, const uint8_t *ip)
{
	for (unsigned i = 0; i < a->n4 && i < KL_NET_MAX_ADDRS; i++)
		if (!memcmp(a->ip4[i], ip, 4))
			return 1;
	return 0;
}

static int ours6(const struct kl_net_addrs *a, const uint8_t *ip)
{
	for (unsigned i = 0; i < a->n6 && i < KL_NET_MAX_ADDRS; i++)
		if (!memcmp(a->ip6[i], ip, 16))
			return 1;
	return 0;
}

/* Solicited-node multicast ff02::1:ffXX:XXXX of one of our addresses. */
static int our_solicited(const struct kl_net_addrs *a, const uint8_t *ip)
{
	static const uint8_t pfx[13] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff };

	if (memcmp(ip, pfx, 13))
		return 0;
	for (unsigned i = 0; i < a->n6 && i < KL_NET_MAX_ADDRS; i++)
		if (!memcmp(a->ip6[i] + 13, ip + 13, 3))
			return 1;
	return 0;
}

static enum kl_net_verdict drop(struct kl_net_info *in, enum kl_net_drop d)
{
	in->drop = (uint8_t)d;
	return KL_NET_VERDICT_DROP;
}

static void swap_eth(uint8_t *f, const struct kl_net_addrs *a)
{
	memcpy(f, f + 6, 6);
	memcpy(f + 6, a->mac, 6);
}

static enum kl_net_verdict arp(uint8_t *f, uint16_t *lenp, const struct kl_net_addrs *a,
			       struct kl_net_info *in)
{
	uint8_t *p = f + ETH_HLEN, sha[6], spa[4], tpa[4];

	if (*lenp < ETH_HLEN + 28)
		return drop(in, KL_NET_DROP_TRUNCATED);
	in->kind = KL_NET_ARP;
	if (be16(p) != 1 || be16(p + 2) != ET_IPV4 || p[4] != 6 || p[5] != 4 || be16(p + 6) != 1 ||
	    !ours4(a, p + 24))
		return drop(in, KL_NET_DROP_ARP_IGNORED);
	memcpy(sha, p + 8, 6);
	memcpy(spa, p + 14, 4);
	memcpy(tpa, p + 24, 4);
	swap_eth(f, a);
	put16(p + 6, 2); /* reply: we are the sender, the asker the target */
	memcpy(p + 8, a->mac, 6);
	memcpy(p + 14, tpa, 4);
	memcpy(p + 18, sha, 6);
	memcpy(p + 24, spa, 4);
	*lenp = ETH_HLEN + 28;
	return KL_NET_VERDICT_REPLY;
}

/* UDP over either IP; l4len is what the IP header leaves for it. */
static enum kl_net_verdict udp(const uint8_t *ip, const uint8_t *l4, uint16_t l4len, int v6,
			       const struct kl_net_addrs *a, struct kl_net_info *in)
{
	uint16_t ul;
	uint32_t ph;

	if (l4len < 8)
		return drop(in, KL_NET_DROP_TRUNCATED);
	ul = be16(l4 + 4);
	if (ul < 8 || ul > l4len)
		return drop(in, KL_NET_DROP_BAD_HEADER);
	/* checksum 0 means none over IPv4; over IPv6 it is mandatory (RFC 8200 8.1) */
	ph = v6 ? kl_net_pseudo6(ip, 17, ul) : kl_net_pseudo4(ip, 17, ul);
	if ((v6 || be16(l4 + 6)) && (!be16(l4 + 6) || kl_net_csum_fold(ph + kl_net_csum_add(0, l4, ul)) != 0))
		return drop(in, KL_NET_DROP_BAD_CHECKSUM);
	if (be16(l4 + 2) != a->udp_port)
		return drop(in, KL_NET_DROP_WRONG_PORT);
	in->payload_off = (uint16_t)(in->l4_off + 8);
	in->payload_len = (uint16_t)(ul - 8);
	memcpy(in->our_mac, a->mac, 6); /* the reply's source, whatever MAC the request was sent to */
	return KL_NET_VERDICT_MIKEY;
}

static enum kl_net_verdict ipv4(uint8_t *f, uint16_t *lenp, const struct kl_net_addrs *a,
				struct kl_net_info *in)
{
	uint16_t len = *lenp, ihl, tot, l4len;
	uint8_t *ip = f + ETH_HLEN, *l4;

	if (len < ETH_HLEN + 20)
		return drop(in, KL_NET_DROP_TRUNCATED);
	ihl = (uint16_t)((ip[0] & 0x0F) * 4);
	tot = be16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl)
		return drop(in, KL_NET_DROP_BAD_HEADER);
	if (tot > len - ETH_HLEN)
		return drop(in, KL_NET_DROP_TRUNCATED);
	if (kl_net_csum_fold(kl_net_csum_add(0, ip, ihl)) != 0)
		return drop(in, KL_NET_DROP_BAD_CHECKSUM);
	if (!ours4(a, ip + 16))
		return drop(in, KL_NET_DROP_NOT_FOR_US);
	if ((be16(ip + 6) & 0x3FFF) != 0) /* MF or a fragment offset */
		return drop(in, KL_NET_DROP_FRAGMENT);
	in->l3_off = ETH_HLEN;
	in->l4_off = (uint16_t)(ETH_HLEN + ihl);
	l4 = f + in->l4_off;
	l4len = (uint16_t)(tot - ihl);
	if (ip[9] == 17) {
		in->kind = KL_NET_UDP4;
		kl_rl_key_v4(ip + 12, in->src_key);
		return udp(ip, l4, l4len, 0, a, in);
	}
	if (ip[9] == 1) {
		uint8_t tmp[4];

		in->kind = KL_NET_ICMP4_ECHO;
		if (l4len < 8)
			return drop(in, KL_NET_DROP_TRUNCATED);
		if (kl_net_csum_fold(kl_net_csum_add(0, l4, l4len)) != 0)
			return drop(in, KL_NET_DROP_BAD_CHECKSUM);
		if (l4[0] != 8 || l4[1] != 0)
			return drop(in, KL_NET_DROP_UNSUPPORTED_ICMP);
		swap_eth(f, a);
		memcpy(tmp, ip + 12, 4);
		memcpy(ip + 12, ip + 16, 4);
		memcpy(ip + 16, tmp, 4);
		ip[8] = 64;
		put16(ip + 10, 0);
		put16(ip + 10, kl_net_csum_fold(kl_net_csum_add(0, ip, ihl)));
		l4[0] = 0;
		put16(l4 + 2, 0);
		put16(l4 + 2, kl_net_csum_fold(kl_net_csum_add(0, l4, l4len)));
		*lenp = (uint16_t)(ETH_HLEN + tot); /* drop Ethernet padding */
		return KL_NET_VERDICT_REPLY;
	}
	return drop(in, KL_NET_DROP_UNSUPPORTED_PROTO);
}

static enum kl_net_verdict ipv6(uint8_t *f, uint16_t *lenp, uint16_t cap,
				const struct kl_net_addrs *a, struct kl_net_info *in)
{
	uint16_t len = *lenp, pl;
	uint8_t *ip = f + ETH_HLEN, *l4;

	if (len < ETH_HLEN + 40)
		return drop(in, KL_NET_DROP_TRUNCATED);
	if ((ip[0] >> 4) != 6)
		return drop(in, KL_NET_DROP_BAD_HEADER);
	pl = be16(ip + 4);
	if (pl > len - ETH_HLEN - 40)
		return drop(in, KL_NET_DROP_TRUNCATED);
	in->l3_off = ETH_HLEN;
	in->l4_off = ETH_HLEN + 40;
	l4 = f + in->l4_off;
	if (ip[6] == 44) /* fragment header: like IPv4 fragments, requests fit one datagram */
		return drop(in, KL_NET_DROP_FRAGMENT);
	if (ip[6] == 17) {
		in->kind = KL_NET_UDP6;
		if (!ours6(a, ip + 24))
			return drop(in, KL_NET_DROP_NOT_FOR_US);
		kl_rl_key_v6(ip + 8, in->src_key);
		return udp(ip, l4, pl, 1, a, in);
	}
	if (ip[6] == 58) {
		uint8_t tmp[16];

		if (pl < 8)
			return drop(in, KL_NET_DROP_TRUNCATED);
		if (kl_net_csum_fold(kl_net_pseudo6(ip, 58, pl) + kl_net_csum_add(0, l4, pl)) != 0)
			return drop(in, KL_NET_DROP_BAD_CHECKSUM);
		if (l4[0] == 128 && l4[1] == 0) {
			in->kind = KL_NET_ICMP6_ECHO;
			if (!ours6(a, ip + 24))
				return drop(in, KL_NET_DROP_NOT_FOR_US);
			swap_eth(f, a);
			memcpy(tmp, ip + 8, 16);
			memcpy(ip + 8, ip + 24, 16);
			memcpy(ip + 24, tmp, 16);
			ip[7] = 64;
			l4[0] = 129;
			put16(l4 + 2, 0);
			put16(l4 + 2, kl_net_csum_fold(kl_net_pseudo6(ip, 58, pl) + kl_net_csum_add(0, l4, pl)));
			*lenp = (uint16_t)(ETH_HLEN + 40 + pl);
			return KL_NET_VERDICT_REPLY;
		}
		if (l4[0] == 135 && l4[1] == 0) {
			/* Neighbour solicitation (RFC 4861 7.1.1): hop limit 255, 24 bytes + options */
			static const uint8_t unspec[16];
			int dad;

			in->kind = KL_NET_NDP;
			if (ip[7] != 255 || pl < 24)
				return drop(in, KL_NET_DROP_BAD_HEADER);
			if (!ours6(a, l4 + 8) || (!ours6(a, ip + 24) && !our_solicited(a, ip + 24)))
				return drop(in, KL_NET_DROP_NOT_FOR_US);
			dad = !memcmp(ip + 8, unspec, 16);
			/* Advertisement: to the solicitor (all-nodes for DAD), from the target. It is
			 * 32 bytes; a solicitation without options (DAD ones never carry any) is 24,
			 * so the answer may need the buffer room beyond the frame. */
			if (cap < ETH_HLEN + 40 + 32)
				return drop(in, KL_NET_DROP_TRUNCATED);
			swap_eth(f, a);
			if (dad) {
				static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };

				memcpy(ip + 24, all_nodes, 16);
				memcpy(f, "\x33\x33\x00\x00\x00\x01", 6);
			} else {
				memcpy(ip + 24, ip + 8, 16);
			}
			memcpy(ip + 8, l4 + 8, 16);
			put16(ip + 4, 32);
			ip[6] = 58;
			ip[7] = 255;
			l4[0] = 136;
			l4[1] = 0;
			l4[4] = dad ? 0x20 : 0x60; /* Solicited unless DAD, Override */
			l4[5] = l4[6] = l4[7] = 0;
			l4[24] = 2; /* target link-layer address option */
			l4[25] = 1;
			memcpy(l4 + 26, a->mac, 6);
			put16(l4 + 2, 0);
			put16(l4 + 2, kl_net_csum_fold(kl_net_pseudo6(ip, 58, 32) + kl_net_csum_add(0, l4, 32)));
			*lenp = ETH_HLEN + 40 + 32;
			return KL_NET_VERDICT_REPLY;
		}
		return drop(in, KL_NET_DROP_UNSUPPORTED_ICMP);
	}
	return drop(in, KL_NET_DROP_UNSUPPORTED_PROTO);
}

enum kl_net_verdict kl_net_classify(uint8_t *frame, uint16_t *len, const struct kl_net_addrs *a,
				    struct kl_net_info *info)
{
	return kl_net_classify_cap(frame, len, len ? *len : 0, a, info);
}

enum kl_net_verdict kl_net_classify_cap(uint8_t *frame, uint16_t *len, uint16_t cap,
					const struct kl_net_addrs *a, struct kl_net_info *info)
{
	uint16_t et;

	memset(info, 0, sizeof(*info));
	if (!frame || !len || !a || *len < ETH_HLEN)
		return drop(info, KL_NET_DROP_TRUNCATED);
	et = be16(frame + 12);
	if (et == ET_IPV4)
		return ipv4(frame, len, a, info);
	if (et == ET_IPV6)
		return ipv6(frame, len, cap > *len ? cap : *len, a, info);
	if (et == ET_ARP)
		return arp(frame, len, a, info);
	return drop(info, KL_NET_DROP_NON_IP);
}

uint16_t kl_net_reply_headroom(const struct kl_net_info *info)
{
	return kl_net_udp_headroom(info->kind == KL_NET_UDP6);
}

uint16_t kl_net_udp_headroom(int v6)
{
	return v6 ? ETH_HLEN + 40 + 8 : ETH_HLEN + 20 + 8;
}

/* Ethernet/IP/UDP headers of fl in front of a payload of plen bytes at out + headroom; vtf: the
 * IPv6 version/traffic class/flow label word (4 bytes) or the IPv4 TOS in vtf[1]. */
static uint16_t put_udp(const struct kl_net_flow *fl, const uint8_t vtf[4], uint8_t *out,
			uint16_t cap, uint16_t plen)
{
	uint16_t hr = kl_net_udp_headroom(fl->v6), ul = (uint16_t)(8 + plen);
	uint8_t *ip = out + ETH_HLEN, *l4;

	if ((uint32_t)hr + plen > cap)
		return 0;
	memcpy(out, fl->dst_mac, 6);
	memcpy(out + 6, fl->src_mac, 6);
	if (fl->v6) {
		put16(out + 12, ET_IPV6);
		memcpy(ip, vtf, 4);
		put16(ip + 4, ul);
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, fl->src_ip, 16);
		memcpy(ip + 24, fl->dst_ip, 16);
		l4 = ip + 40;
	} else {
		put16(out + 12, ET_IPV4);
		ip[0] = 0x45;
		ip[1] = vtf[1];
		put16(ip + 2, (uint16_t)(20 + ul));
		put16(ip + 4, 0);
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = 17;
		put16(ip + 10, 0);
		memcpy(ip + 12, fl->src_ip, 4);
		memcpy(ip + 16, fl->dst_ip, 4);
		put16(ip + 10, kl_net_csum_fold(kl_net_csum_add(0, ip, 20)));
		l4 = ip + 20;
	}
	put16(l4, fl->sport);
	put16(l4 + 2, fl->dport);
	put16(l4 + 4, ul);
	put16(l4 + 6, 0);
	{
		uint32_t sum = (fl->v6 ? kl_net_pseudo6(ip, 17, ul) : kl_net_pseudo4(ip, 17, ul)) +
			       kl_net_csum_add(0, l4, ul);
		uint16_t c = kl_net_csum_fold(sum);

		put16(l4 + 6, c ? c : 0xFFFF); /* 0 means "no checksum": send its other form */
	}
	return (uint16_t)(hr + plen);
}

uint16_t kl_net_build_udp(const struct kl_net_flow *fl, uint8_t *out, uint16_t cap, uint16_t plen)
{
	static const uint8_t vtf[4] = { 0x60, 0, 0, 0 };

	return fl && out ? put_udp(fl, vtf, out, cap, plen) : 0;
}

uint16_t kl_net_finish_udp_reply(const uint8_t *req, const struct kl_net_info *info, uint8_t *out,
				 uint16_t cap, uint16_t plen)
{
	const uint8_t *rip = req + info->l3_off, *rl4 = req + info->l4_off;
	int v6 = info->kind == KL_NET_UDP6;
	struct kl_net_flow fl;

	/* the request's ends swapped; version, traffic class and flow label (or TOS) echoed */
	fl.v6 = (uint8_t)v6;
	memcpy(fl.dst_mac, req + 6, 6);
	memcpy(fl.src_mac, info->our_mac, 6);
	memcpy(fl.src_ip, rip + (v6 ? 24 : 16), v6 ? 16 : 4);
	memcpy(fl.dst_ip, rip + (v6 ? 8 : 12), v6 ? 16 : 4);
	fl.sport = be16(rl4 + 2);
	fl.dport = be16(rl4);
	return put_udp(&fl, rip, out, cap, plen);
}

uint16_t kl_net_build_solicit(const struct kl_net_flow *fl, uint8_t *out, uint16_t cap)
{
	uint8_t *p = out + ETH_HLEN;

	if (!fl || !out)
		return 0;
	if (!fl->v6) {
		if (cap < 60)
			return 0;
		memset(out, 0, 60); /* padded to the Ethernet minimum */
		memset(out, 0xFF, 6);
		memcpy(out + 6, fl->src_mac, 6);
		put16(out + 12, ET_ARP);
		put16(p, 1);
		put16(p + 2, ET_IPV4);
		p[4] = 6;
		p[5] = 4;
		put16(p + 6, 1); /* request */
		memcpy(p + 8, fl->src_mac, 6);
		memcpy(p + 14, fl->src_ip, 4);
		memcpy(p + 24, fl->dst_ip, 4);
		return 60;
	}
	if (cap < ETH_HLEN + 40 + 32)
		return 0;
	{
		static const uint8_t snm[13] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff };
		uint8_t *l4 = p + 40;

		/* to the target's solicited-node multicast group (RFC 4861 7.2.2) */
		out[0] = 0x33;
		out[1] = 0x33;
		out[2] = 0xff;
		memcpy(out + 3, fl->dst_ip + 13, 3);
		memcpy(out + 6, fl->src_mac, 6);
		put16(out + 12, ET_IPV6);
		p[0] = 0x60;
		p[1] = p[2] = p[3] = 0;
		put16(p + 4, 32);
		p[6] = 58;
		p[7] = 255;
		memcpy(p + 8, fl->src_ip, 16);
		memcpy(p + 24, snm, 13);
		memcpy(p + 37, fl->dst_ip + 13, 3);
		l4[0] = 135;
		l4[1] = 0;
		put16(l4 + 2, 0);
		memset(l4 + 4, 0, 4);
		memcpy(l4 + 8, fl->dst_ip, 16);
		l4[24] = 1; /* source link-layer address option */
		l4[25] = 1;
		memcpy(l4 + 26, fl->src_mac, 6);
		put16(l4 + 2, kl_net_csum_fold(kl_net_pseudo6(p, 58, 32) + kl_net_csum_add(0, l4, 32)));
		return ETH_HLEN + 40 + 32;
	}
}

/* The link-layer address option of this type among an NDP message's options (from opt on). */
static const uint8_t *nd_lladdr(const uint8_t *opt, const uint8_t *end, uint8_t type)
{
	while (opt + 8 <= end) {
		unsigned olen = (unsigned)opt[1] * 8;

		if (!olen || opt + olen > end)
			return NULL;
		if (opt[0] == type && olen >= 8)
			return opt + 2;
		opt += olen;
	}
	return NULL;
}

int kl_net_neigh_hint(const uint8_t *f, uint16_t len, struct kl_net_neigh *nb)
{
	const uint8_t *p = f + ETH_HLEN, *mac;
	uint16_t et;

	if (!f || !nb || len < ETH_HLEN)
		return 0;
	et = be16(f + 12);
	if (et == ET_ARP) {
		if (len < ETH_HLEN + 28 || be16(p) != 1 || be16(p + 2) != ET_IPV4 || p[4] != 6 ||
		    p[5] != 4 || (be16(p + 6) != 1 && be16(p + 6) != 2) || (p[8] & 1))
			return 0;
		memset(nb, 0, sizeof(*nb));
		memcpy(nb->ip, p + 14, 4);
		memcpy(nb->mac, p + 8, 6);
		return 1;
	}
	if (et == ET_IPV6 && len >= ETH_HLEN + 40 + 24 && (p[0] >> 4) == 6 && p[6] == 58 &&
	    p[7] == 255) {
		const uint8_t *l4 = p + 40, *end;
		uint16_t pl = be16(p + 4);

		if (pl < 24 || pl > len - ETH_HLEN - 40 || l4[1] != 0)
			return 0;
		end = l4 + pl;
		if (l4[0] == 135) { /* NS: the solicitor's own address (not the unspecified one) */
			static const uint8_t unspec[16];

			if (!memcmp(p + 8, unspec, 16) || !(mac = nd_lladdr(l4 + 24, end, 1)))
				return 0;
			memcpy(nb->ip, p + 8, 16);
		} else if (l4[0] == 136) { /* NA: its target */
			if (!(mac = nd_lladdr(l4 + 24, end, 2)))
				return 0;
			memcpy(nb->ip, l4 + 8, 16);
		} else {
			return 0;
		}
		if (mac[0] & 1)
			return 0;
		nb->v6 = 1;
		memcpy(nb->mac, mac, 6);
		return 1;
	}
	return 0;
}
