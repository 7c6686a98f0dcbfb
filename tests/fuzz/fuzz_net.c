/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target over L2-L4 (dataplane/kl_net.c): any frame is classified; a MIKEY verdict
 * must point inside the frame, a reply must stay inside the buffer and carry valid checksums,
 * and a wrapped UDP answer must be well formed. abort() only on a violated invariant.
 */
#include <string.h>

#include "fuzz_common.h"
#include "kl_net.h"

static uint32_t sum16(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static int ok_sum(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return s == 0xFFFF;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t f[2048], out[2048];
	struct kl_net_addrs a = { .mac = { 2, 0, 0, 0, 0, 1 }, .n4 = 1, .n6 = 1, .udp_port = 2269 };
	struct kl_net_info in;
	uint16_t len;
	enum kl_net_verdict v;

	if (size > sizeof(f))
		return 0;
	memcpy(a.ip4[0], "\xc0\x00\x02\x01", 4);
	memcpy(a.ip6[0], "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	memcpy(f, data, size);
	len = (uint16_t)size;
	v = kl_net_classify(f, &len, &a, &in);
	FZ_CHECK(in.drop < KL_NET_DROP__COUNT);
	FZ_CHECK((v == KL_NET_VERDICT_DROP) == (in.drop != KL_NET_DROP_NONE));
	if (v == KL_NET_VERDICT_REPLY) {
		FZ_CHECK(len <= size);
		FZ_CHECK(!memcmp(f + 6, a.mac, 6));
		if (in.kind == KL_NET_ICMP4_ECHO)
			FZ_CHECK(ok_sum(sum16(f + 14, (size_t)(f[14] & 0x0F) * 4)));
		if (in.kind == KL_NET_ICMP6_ECHO || in.kind == KL_NET_NDP) {
			uint16_t pl = (uint16_t)(f[18] << 8 | f[19]);

			FZ_CHECK(54u + pl == len);
			FZ_CHECK(ok_sum(sum16(f + 22, 32) + pl + 58 + sum16(f + 54, pl)));
		}
	}
	if (v == KL_NET_VERDICT_MIKEY) {
		uint16_t hr = kl_net_reply_headroom(&in), n;

		FZ_CHECK(in.payload_off + in.payload_len <= size);
		FZ_CHECK(in.kind == KL_NET_UDP4 || in.kind == KL_NET_UDP6);
		memset(out + hr, 0x42, 64);
		n = kl_net_finish_udp_reply(f, &in, out, sizeof(out), 64);
		FZ_CHECK(n == hr + 64);
		FZ_CHECK(!memcmp(out, f + 6, 6));
	}
	return 0;
}
