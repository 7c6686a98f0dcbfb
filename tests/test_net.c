/* SPDX-License-Identifier: BSD-3-Clause */
/* L2-L4: ARP, ICMP echo, NDP and ICMPv6 echo answered in place with valid checksums; MIKEY
 * datagrams found over IPv4 and IPv6; every drop reason; truncation at every offset; UDP replies
 * wrapped with addresses swapped and checksums that verify. Checksums are verified here with a
 * separate RFC 1071 sum over the whole packet plus pseudo-header. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kl_net.h"

static const uint8_t OUR_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t IP4[4] = { 192, 0, 2, 1 }, PEER4[4] = { 192, 0, 2, 10 };
static const uint8_t IP6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
static const uint8_t PEER6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 };
static struct kl_net_addrs addrs;

static uint32_t sum16(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static int folds_to_ffff(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return s == 0xFFFF;
}

static void fix_sum(uint8_t *at, uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	s = ~s & 0xFFFF;
	at[0] = (uint8_t)(s >> 8);
	at[1] = (uint8_t)s;
}

static size_t eth(uint8_t *f, uint16_t et)
{
	memcpy(f, OUR_MAC, 6);
	memcpy(f + 6, PEER_MAC, 6);
	f[12] = (uint8_t)(et >> 8);
	f[13] = (uint8_t)et;
	return 14;
}

static size_t udp4(uint8_t *f, uint16_t dport, const uint8_t *pl, uint16_t plen, int csum)
{
	size_t o = eth(f, 0x0800);
	uint8_t *ip = f + o, *u = ip + 20;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((28 + plen) >> 8);
	ip[3] = (uint8_t)(28 + plen);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, PEER4, 4);
	memcpy(ip + 16, IP4, 4);
	fix_sum(ip + 10, sum16(ip, 20));
	u[0] = 0x9c;
	u[1] = 0x40;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)((8 + plen) >> 8);
	u[5] = (uint8_t)(8 + plen);
	u[6] = u[7] = 0;
	memcpy(u + 8, pl, plen);
	if (csum)
		fix_sum(u + 6, sum16(ip + 12, 8) + 17 + 8 + plen + sum16(u, 8u + plen));
	return o + 28 + plen;
}

static size_t ip6hdr(uint8_t *f, uint8_t nh, uint16_t pl, const uint8_t *src, const uint8_t *dst, uint8_t hop)
{
	size_t o = eth(f, 0x86DD);
	uint8_t *ip = f + o;

	memset(ip, 0, 40);
	ip[0] = 0x60;
	ip[4] = (uint8_t)(pl >> 8);
	ip[5] = (uint8_t)pl;
	ip[6] = nh;
	ip[7] = hop;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	return o + 40;
}

static uint32_t pseudo6(const uint8_t *ip, uint8_t nh, uint32_t len)
{
	return sum16(ip + 8, 32) + (len >> 16) + (len & 0xFFFF) + nh;
}

static size_t udp6(uint8_t *f, uint16_t dport, const uint8_t *pl, uint16_t plen)
{
	size_t o = ip6hdr(f, 17, (uint16_t)(8 + plen), PEER6, IP6, 64);
	uint8_t *u = f + o;

	u[0] = 0x9c;
	u[1] = 0x41;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)((8 + plen) >> 8);
	u[5] = (uint8_t)(8 + plen);
	u[6] = u[7] = 0;
	memcpy(u + 8, pl, plen);
	fix_sum(u + 6, pseudo6(f + 14, 17, 8u + plen) + sum16(u, 8u + plen));
	return o + 8 + plen;
}

static void test_arp(void **state)
{
	uint8_t f[64] = { 0 };
	uint16_t len;
	struct kl_net_info in;

	(void)state;
	eth(f, 0x0806);
	memset(f, 0xFF, 6);
	memcpy(f + 14, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(f + 22, PEER_MAC, 6);
	memcpy(f + 28, PEER4, 4);
	memcpy(f + 38, IP4, 4);
	len = 60; /* padded to the Ethernet minimum */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_REPLY);
	assert_int_equal(len, 42);
	assert_memory_equal(f, PEER_MAC, 6);
	assert_memory_equal(f + 6, OUR_MAC, 6);
	assert_memory_equal(f + 20, "\x00\x02", 2);
	assert_memory_equal(f + 22, OUR_MAC, 6);
	assert_memory_equal(f + 28, IP4, 4);
	assert_memory_equal(f + 32, PEER_MAC, 6);
	assert_memory_equal(f + 38, PEER4, 4);
	/* a request for someone else's address, and a reply, are ignored */
	memcpy(f + 20, "\x00\x01", 2);
	memcpy(f + 38, PEER4, 4);
	len = 42;
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_ARP_IGNORED);
}

static void test_icmp4_echo(void **state)
{
	uint8_t f[128];
	size_t o = eth(f, 0x0800);
	uint8_t *ip = f + o, *ic = ip + 20;
	uint16_t len = (uint16_t)(o + 20 + 16);
	struct kl_net_info in;

	(void)state;
	memset(ip, 0, 36);
	ip[0] = 0x45;
	ip[3] = 36;
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, PEER4, 4);
	memcpy(ip + 16, IP4, 4);
	fix_sum(ip + 10, sum16(ip, 20));
	ic[0] = 8;
	memcpy(ic + 4, "\x12\x34\x00\x01pingdata", 12);
	fix_sum(ic + 2, sum16(ic, 16));
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_REPLY);
	assert_int_equal(ic[0], 0);
	assert_memory_equal(ip + 12, IP4, 4);
	assert_memory_equal(ip + 16, PEER4, 4);
	assert_memory_equal(f, PEER_MAC, 6);
	assert_true(folds_to_ffff(sum16(ip, 20)));
	assert_true(folds_to_ffff(sum16(ic, 16)));
	assert_memory_equal(ic + 4, "\x12\x34\x00\x01pingdata", 12);
	/* a bad ICMP checksum is dropped */
	ic[0] = 8;
	ic[3] ^= 1;
	len = (uint16_t)(o + 36);
	memcpy(ip + 12, PEER4, 4);
	memcpy(ip + 16, IP4, 4);
	fix_sum(ip + 10, sum16(ip, 10) + sum16(ip + 12, 8));
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_BAD_CHECKSUM);
}

static void test_ndp_and_echo6(void **state)
{
	uint8_t f[160];
	uint8_t sol[16] = { 0xff, 0x02, [11] = 1, [12] = 0xff, [13] = IP6[13], [14] = IP6[14], [15] = IP6[15] };
	size_t o = ip6hdr(f, 58, 32, PEER6, sol, 255);
	uint8_t *ic = f + o;
	uint16_t len;
	struct kl_net_info in;

	(void)state;
	memset(ic, 0, 32);
	ic[0] = 135;
	memcpy(ic + 8, IP6, 16);
	ic[24] = 1; /* source link-layer address option */
	ic[25] = 1;
	memcpy(ic + 26, PEER_MAC, 6);
	fix_sum(ic + 2, pseudo6(f + 14, 58, 32) + sum16(ic, 32));
	len = (uint16_t)(o + 32);
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_REPLY);
	assert_int_equal(in.kind, KL_NET_NDP);
	assert_int_equal(len, 14 + 40 + 32);
	assert_int_equal(ic[0], 136);
	assert_int_equal(ic[4], 0x60); /* solicited, override */
	assert_memory_equal(ic + 8, IP6, 16);
	assert_int_equal(ic[24], 2);
	assert_memory_equal(ic + 26, OUR_MAC, 6);
	assert_memory_equal(f + 14 + 8, IP6, 16);
	assert_memory_equal(f + 14 + 24, PEER6, 16);
	assert_int_equal(f[14 + 7], 255);
	assert_true(folds_to_ffff(pseudo6(f + 14, 58, 32) + sum16(ic, 32)));
	/* NS without options (RFC 4861 allows it; DAD NS never carry one): 24 bytes. The
	 * 32-byte advertisement needs room beyond the frame: without it a counted drop. */
	for (int dad = 0; dad < 2; dad++) {
		static const uint8_t unspec[16];

		o = ip6hdr(f, 58, 24, dad ? unspec : PEER6, sol, 255);
		ic = f + o;
		memset(ic, 0, 24);
		ic[0] = 135;
		memcpy(ic + 8, IP6, 16);
		fix_sum(ic + 2, pseudo6(f + 14, 58, 24) + sum16(ic, 24));
		len = (uint16_t)(o + 24);
		assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
		assert_int_equal(in.drop, KL_NET_DROP_TRUNCATED);
		len = (uint16_t)(o + 24);
		assert_int_equal(kl_net_classify_cap(f, &len, sizeof(f), &addrs, &in),
				 KL_NET_VERDICT_REPLY);
		assert_int_equal(len, 14 + 40 + 32);
		assert_int_equal(ic[0], 136);
		assert_int_equal(ic[4], dad ? 0x20 : 0x60);
		assert_memory_equal(ic + 26, OUR_MAC, 6);
		if (dad)
			assert_memory_equal(f, "\x33\x33\x00\x00\x00\x01", 6);
		assert_true(folds_to_ffff(pseudo6(f + 14, 58, 32) + sum16(ic, 32)));
	}
	/* NS with hop limit below 255 must be ignored (RFC 4861 7.1.1) */
	o = ip6hdr(f, 58, 32, PEER6, sol, 64);
	ic = f + o;
	memset(ic, 0, 32);
	ic[0] = 135;
	memcpy(ic + 8, IP6, 16);
	fix_sum(ic + 2, pseudo6(f + 14, 58, 32) + sum16(ic, 32));
	len = (uint16_t)(o + 32);
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_BAD_HEADER);
	/* echo */
	o = ip6hdr(f, 58, 12, PEER6, IP6, 64);
	ic = f + o;
	memset(ic, 0, 12);
	ic[0] = 128;
	memcpy(ic + 4, "\x00\x07\x00\x01ping", 8);
	fix_sum(ic + 2, pseudo6(f + 14, 58, 12) + sum16(ic, 12));
	len = (uint16_t)(o + 12);
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_REPLY);
	assert_int_equal(ic[0], 129);
	assert_memory_equal(f + 14 + 8, IP6, 16);
	assert_true(folds_to_ffff(pseudo6(f + 14, 58, 12) + sum16(ic, 12)));
}

static void test_udp_and_reply(void **state)
{
	uint8_t f[600], out[1600], pl[100];
	struct kl_net_info in;
	uint16_t len, n;

	(void)state;
	for (unsigned i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)i;
	for (int v6 = 0; v6 < 2; v6++)
		for (int csum = 0; csum < 2; csum++) {
			len = (uint16_t)(v6 ? udp6(f, 2269, pl, 100) : udp4(f, 2269, pl, 100, csum));
			assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_MIKEY);
			assert_int_equal(in.payload_len, 100);
			assert_memory_equal(f + in.payload_off, pl, 100);
			assert_int_equal(in.src_key[0], v6 ? 6 : 4);
			/* the answer: payload at the headroom, headers around it */
			memset(out, 0xEE, sizeof(out));
			memcpy(out + kl_net_reply_headroom(&in), "answer!", 7);
			n = kl_net_finish_udp_reply(f, &in, out, sizeof(out), 7);
			assert_int_equal(n, kl_net_reply_headroom(&in) + 7);
			assert_memory_equal(out, PEER_MAC, 6);
			assert_memory_equal(out + 6, OUR_MAC, 6);
			if (v6) {
				assert_memory_equal(out + 14 + 8, IP6, 16);
				assert_memory_equal(out + 14 + 24, PEER6, 16);
				assert_true(folds_to_ffff(pseudo6(out + 14, 17, 15) + sum16(out + 54, 15)));
				assert_memory_equal(out + 54, "\x08\xdd\x9c\x41", 4);
			} else {
				assert_memory_equal(out + 14 + 12, IP4, 4);
				assert_memory_equal(out + 14 + 16, PEER4, 4);
				assert_true(folds_to_ffff(sum16(out + 14, 20)));
				assert_true(folds_to_ffff(sum16(out + 26, 8) + 17 + 15 + sum16(out + 34, 15)));
				assert_memory_equal(out + 34, "\x08\xdd\x9c\x40", 4);
			}
			assert_int_equal(kl_net_finish_udp_reply(f, &in, out, (uint16_t)(n - 1), 7), 0);
			/* sent to the broadcast MAC: the answer still comes from our MAC */
			len = (uint16_t)(v6 ? udp6(f, 2269, pl, 100) : udp4(f, 2269, pl, 100, csum));
			memset(f, 0xff, 6);
			assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_MIKEY);
			n = kl_net_finish_udp_reply(f, &in, out, sizeof(out), 7);
			assert_int_equal(n, kl_net_reply_headroom(&in) + 7);
			assert_memory_equal(out + 6, OUR_MAC, 6);
		}
}

static void test_drops(void **state)
{
	uint8_t f[600], pl[40] = { 1 };
	struct kl_net_info in;
	uint16_t len, full;

	(void)state;
	full = (uint16_t)udp4(f, 2269, pl, 40, 1);
	/* truncation at every offset: never a MIKEY datagram, never a reply */
	for (uint16_t cut = 0; cut < full; cut++) {
		uint8_t c[600];

		memcpy(c, f, full);
		len = cut;
		assert_int_equal(kl_net_classify(c, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	}
	len = (uint16_t)udp4(f, 53, pl, 40, 1);
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_WRONG_PORT);
	len = (uint16_t)udp4(f, 2269, pl, 40, 1);
	f[14 + 6] = 0x20; /* more fragments */
	fix_sum(f + 24, 0);
	f[24] = f[25] = 0;
	fix_sum(f + 24, sum16(f + 14, 20));
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_FRAGMENT);
	len = (uint16_t)udp4(f, 2269, pl, 40, 1);
	f[14 + 19] = 99; /* someone else's address; the header checksum is now wrong too */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_BAD_CHECKSUM);
	f[24] = f[25] = 0;
	fix_sum(f + 24, sum16(f + 14, 20));
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_NOT_FOR_US);
	len = (uint16_t)udp4(f, 2269, pl, 40, 1);
	f[len - 1] ^= 0x55; /* payload changed under a UDP checksum */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_BAD_CHECKSUM);
	len = (uint16_t)udp6(f, 2269, pl, 40);
	f[14 + 40 + 6] = f[14 + 40 + 7] = 0; /* no checksum is not allowed over IPv6 */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_BAD_CHECKSUM);
	len = (uint16_t)udp6(f, 2269, pl, 40);
	f[14 + 6] = 0; /* hop-by-hop extension header */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_UNSUPPORTED_PROTO);
	len = (uint16_t)udp6(f, 2269, pl, 40);
	f[14 + 6] = 44; /* fragment header: a fragment like its IPv4 kin */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_FRAGMENT);
	len = 60;
	memset(f, 0, 60);
	f[12] = 0x88;
	f[13] = 0xcc; /* LLDP */
	assert_int_equal(kl_net_classify(f, &len, &addrs, &in), KL_NET_VERDICT_DROP);
	assert_int_equal(in.drop, KL_NET_DROP_NON_IP);
	assert_string_equal(kl_net_drop_name(KL_NET_DROP_FRAGMENT), "fragment");
	len = 10;
	assert_int_equal(kl_net_classify(NULL, &len, &addrs, &in), KL_NET_VERDICT_DROP);
}

/* kl_net_csum_add against the byte-pair sum: every length 0..300 at every start alignment 0..7,
 * random bytes, all-0xFF (sums that are multiples of 0xFFFF) and all-zero data, added to a running
 * sum as the callers do; the folded checksums must agree, including the 0 / 0xFFFF cases. */
static uint16_t fold16(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)~s;
}

/* Frames keyline starts (server-to-server): a datagram to a peer is what the peer's classifier
 * takes as a MIKEY datagram with the payload intact (so both checksums verify); an ARP request and
 * a neighbour solicitation for the peer get answered by a peer's classifier, and the answers (and
 * the requests themselves) teach the MAC through kl_net_neigh_hint. */
static void test_s2s_frames(void **state)
{
	struct kl_net_addrs peer = { .n4 = 1, .n6 = 1, .udp_port = 2270 };
	struct kl_net_info in;
	struct kl_net_neigh nb;
	uint8_t f[256];
	uint16_t len;

	(void)state;
	memcpy(peer.mac, PEER_MAC, 6);
	memcpy(peer.ip4[0], PEER4, 4);
	memcpy(peer.ip6[0], PEER6, 16);
	for (int v6 = 0; v6 < 2; v6++) {
		struct kl_net_flow fl = { .v6 = (uint8_t)v6, .sport = 2269, .dport = 2270 };
		static const uint8_t pl[] = "s2s request";
		uint16_t hr = kl_net_udp_headroom(v6);

		memcpy(fl.src_mac, OUR_MAC, 6);
		memcpy(fl.dst_mac, PEER_MAC, 6);
		memcpy(fl.src_ip, v6 ? IP6 : IP4, v6 ? 16 : 4);
		memcpy(fl.dst_ip, v6 ? PEER6 : PEER4, v6 ? 16 : 4);
		assert_int_equal(hr, v6 ? 62 : 42);
		memset(f, 0xAA, sizeof(f));
		memcpy(f + hr, pl, sizeof(pl));
		assert_int_equal(kl_net_build_udp(&fl, f, (uint16_t)(hr + sizeof(pl) - 1),
						  sizeof(pl)),
				 0); /* does not fit */
		len = kl_net_build_udp(&fl, f, sizeof(f), sizeof(pl));
		assert_int_equal(len, hr + sizeof(pl));
		assert_memory_equal(f, PEER_MAC, 6);
		assert_memory_equal(f + 6, OUR_MAC, 6);
		assert_int_equal(kl_net_classify(f, &len, &peer, &in), KL_NET_VERDICT_MIKEY);
		assert_int_equal(in.kind, v6 ? KL_NET_UDP6 : KL_NET_UDP4);
		assert_int_equal(in.payload_len, sizeof(pl));
		assert_memory_equal(f + in.payload_off, pl, sizeof(pl));
		assert_int_equal(f[in.l4_off] << 8 | f[in.l4_off + 1], 2269); /* from our port */
		/* a datagram is no neighbour announcement (its source MAC is learned by the I/O) */
		assert_int_equal(kl_net_neigh_hint(f, len, &nb), 0);

		/* ask for the peer's MAC: the request announces ours, the answer the peer's */
		len = kl_net_build_solicit(&fl, f, sizeof(f));
		assert_int_equal(len, v6 ? 14 + 40 + 32 : 60);
		assert_int_equal(kl_net_build_solicit(&fl, f, (uint16_t)(len - 1)), 0);
		len = kl_net_build_solicit(&fl, f, sizeof(f));
		assert_int_equal(kl_net_neigh_hint(f, len, &nb), 1);
		assert_int_equal(nb.v6, v6);
		assert_memory_equal(nb.ip, v6 ? IP6 : IP4, v6 ? 16 : 4);
		assert_memory_equal(nb.mac, OUR_MAC, 6);
		if (v6)
			assert_memory_equal(f, "\x33\x33\xff\x00\x00\x10", 6);
		else
			assert_memory_equal(f, "\xff\xff\xff\xff\xff\xff", 6);
		assert_int_equal(kl_net_classify_cap(f, &len, sizeof(f), &peer, &in),
				 KL_NET_VERDICT_REPLY);
		assert_int_equal(in.kind, v6 ? KL_NET_NDP : KL_NET_ARP);
		assert_memory_equal(f, OUR_MAC, 6); /* the answer comes back to us */
		assert_int_equal(kl_net_neigh_hint(f, len, &nb), 1);
		assert_int_equal(nb.v6, v6);
		assert_memory_equal(nb.ip, v6 ? PEER6 : PEER4, v6 ? 16 : 4);
		assert_memory_equal(nb.mac, PEER_MAC, 6);
		/* cut anywhere: nothing learned, nothing read beyond */
		for (uint16_t cut = 0; cut < len; cut++)
			assert_int_equal(kl_net_neigh_hint(f, cut, &nb), 0);
	}
}

static void test_csum_add(void **state)
{
	static uint8_t buf[320];
	uint64_t x = 0x9E3779B97F4A7C15ull;

	(void)state;
	for (unsigned fill = 0; fill < 3; fill++) {
		for (unsigned i = 0; i < sizeof(buf); i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = fill == 0 ? (uint8_t)(x >> 24) : fill == 1 ? 0xFF : 0;
		}
		for (unsigned off = 0; off < 8; off++)
			for (unsigned n = 0; n <= 300; n++)
				for (uint32_t start = 0; start < 3; start++) {
					uint32_t s0 = start == 0 ? 0 : start == 1 ? 0xFFFF : 0x1234 + n;
					uint32_t ref = s0 + sum16(buf + off, n);
					uint32_t got = kl_net_csum_add(s0, buf + off, n);

					assert_int_equal(kl_net_csum_fold(got), fold16(ref));
					assert_int_equal(kl_net_csum_fold(got + 17 + n), fold16(ref + 17 + n));
				}
	}
	/* 64 KiB of 0xFF: the accumulator must not overflow */
	{
		static uint8_t big[65535];

		memset(big, 0xFF, sizeof(big));
		assert_int_equal(kl_net_csum_fold(kl_net_csum_add(0, big, sizeof(big))),
				 fold16(sum16(big, sizeof(big))));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arp),	      cmocka_unit_test(test_icmp4_echo),
		cmocka_unit_test(test_ndp_and_echo6), cmocka_unit_test(test_udp_and_reply),
		cmocka_unit_test(test_drops),	      cmocka_unit_test(test_csum_add),
		cmocka_unit_test(test_s2s_frames),
	};

	memcpy(addrs.mac, OUR_MAC, 6);
	addrs.n4 = 1;
	memcpy(addrs.ip4[0], IP4, 4);
	addrs.n6 = 1;
	memcpy(addrs.ip6[0], IP6, 16);
	addrs.udp_port = 2269;
	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
