/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Key table tests. Unit suite by default; `--stress` (or KL_TABLE_STRESS=1) runs the 1 M UE
 * memory test instead. EAL runs without hugepages, from anonymous memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "kl_eal_rundir.h"
#include "kl_siphash.h"
#include "kl_table.h"

/* SipHash-2-4-128 reference vectors: key 00..0f, message 00..len-1 for len 0..63
 * (vectors_sip128 in vectors.h of the SipHash reference implementation, github.com/veorq/SipHash). */
static const uint8_t sip128_vectors[64][16] = {
	{0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93},
	{0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45},
	{0x81, 0x77, 0x22, 0x8d, 0xa4, 0xa4, 0x5d, 0xc7, 0xfc, 0xa3, 0x8b, 0xde, 0xf6, 0x0a, 0xff, 0xe4},
	{0x9c, 0x70, 0xb6, 0x0c, 0x52, 0x67, 0xa9, 0x4e, 0x5f, 0x33, 0xb6, 0xb0, 0x29, 0x85, 0xed, 0x51},
	{0xf8, 0x81, 0x64, 0xc1, 0x2d, 0x9c, 0x8f, 0xaf, 0x7d, 0x0f, 0x6e, 0x7c, 0x7b, 0xcd, 0x55, 0x79},
	{0x13, 0x68, 0x87, 0x59, 0x80, 0x77, 0x6f, 0x88, 0x54, 0x52, 0x7a, 0x07, 0x69, 0x0e, 0x96, 0x27},
	{0x14, 0xee, 0xca, 0x33, 0x8b, 0x20, 0x86, 0x13, 0x48, 0x5e, 0xa0, 0x30, 0x8f, 0xd7, 0xa1, 0x5e},
	{0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39},
	{0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4},
	{0x26, 0x44, 0x99, 0x06, 0x0a, 0xd9, 0xba, 0xab, 0xc4, 0x7f, 0x8b, 0x02, 0xbb, 0x6d, 0x71, 0xed},
	{0x00, 0x11, 0x0d, 0xc3, 0x78, 0x14, 0x69, 0x56, 0xc9, 0x54, 0x47, 0xd3, 0xf3, 0xd0, 0xfb, 0xba},
	{0x01, 0x51, 0xc5, 0x68, 0x38, 0x6b, 0x66, 0x77, 0xa2, 0xb4, 0xdc, 0x6f, 0x81, 0xe5, 0xdc, 0x18},
	{0xd6, 0x26, 0xb2, 0x66, 0x90, 0x5e, 0xf3, 0x58, 0x82, 0x63, 0x4d, 0xf6, 0x85, 0x32, 0xc1, 0x25},
	{0x98, 0x69, 0xe2, 0x47, 0xe9, 0xc0, 0x8b, 0x10, 0xd0, 0x29, 0x93, 0x4f, 0xc4, 0xb9, 0x52, 0xf7},
	{0x31, 0xfc, 0xef, 0xac, 0x66, 0xd7, 0xde, 0x9c, 0x7e, 0xc7, 0x48, 0x5f, 0xe4, 0x49, 0x49, 0x02},
	{0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9},
	{0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23, 0x05, 0x77},
	{0x47, 0x3d, 0x06, 0xe8, 0x73, 0x8d, 0xb8, 0x98, 0x54, 0xc0, 0x66, 0xc4, 0x7a, 0xe4, 0x77, 0x40},
	{0xa4, 0x26, 0xe5, 0xe4, 0x23, 0xbf, 0x48, 0x85, 0x29, 0x4d, 0xa4, 0x81, 0xfe, 0xae, 0xf7, 0x23},
	{0x78, 0x01, 0x77, 0x31, 0xcf, 0x65, 0xfa, 0xb0, 0x74, 0xd5, 0x20, 0x89, 0x52, 0x51, 0x2e, 0xb1},
	{0x9e, 0x25, 0xfc, 0x83, 0x3f, 0x22, 0x90, 0x73, 0x3e, 0x93, 0x44, 0xa5, 0xe8, 0x38, 0x39, 0xeb},
	{0x56, 0x8e, 0x49, 0x5a, 0xbe, 0x52, 0x5a, 0x21, 0x8a, 0x22, 0x14, 0xcd, 0x3e, 0x07, 0x1d, 0x12},
	{0x4a, 0x29, 0xb5, 0x45, 0x52, 0xd1, 0x6b, 0x9a, 0x46, 0x9c, 0x10, 0x52, 0x8e, 0xff, 0x0a, 0xae},
	{0xc9, 0xd1, 0x84, 0xdd, 0xd5, 0xa9, 0xf5, 0xe0, 0xcf, 0x8c, 0xe2, 0x9a, 0x9a, 0xbf, 0x69, 0x1c},
	{0x2d, 0xb4, 0x79, 0xae, 0x78, 0xbd, 0x50, 0xd8, 0x88, 0x2a, 0x8a, 0x17, 0x8a, 0x61, 0x32, 0xad},
	{0x8e, 0xce, 0x5f, 0x04, 0x2d, 0x5e, 0x44, 0x7b, 0x50, 0x51, 0xb9, 0xea, 0xcb, 0x8d, 0x8f, 0x6f},
	{0x9c, 0x0b, 0x53, 0xb4, 0xb3, 0xc3, 0x07, 0xe8, 0x7e, 0xae, 0xe0, 0x86, 0x78, 0x14, 0x1f, 0x66},
	{0xab, 0xf2, 0x48, 0xaf, 0x69, 0xa6, 0xea, 0xe4, 0xbf, 0xd3, 0xeb, 0x2f, 0x12, 0x9e, 0xeb, 0x94},
	{0x06, 0x64, 0xda, 0x16, 0x68, 0x57, 0x4b, 0x88, 0xb9, 0x35, 0xf3, 0x02, 0x73, 0x58, 0xae, 0xf4},
	{0xaa, 0x4b, 0x9d, 0xc4, 0xbf, 0x33, 0x7d, 0xe9, 0x0c, 0xd4, 0xfd, 0x3c, 0x46, 0x7c, 0x6a, 0xb7},
	{0xea, 0x5c, 0x7f, 0x47, 0x1f, 0xaf, 0x6b, 0xde, 0x2b, 0x1a, 0xd7, 0xd4, 0x68, 0x6d, 0x22, 0x87},
	{0x29, 0x39, 0xb0, 0x18, 0x32, 0x23, 0xfa, 0xfc, 0x17, 0x23, 0xde, 0x4f, 0x52, 0xc4, 0x3d, 0x35},
	{0x7c, 0x39, 0x56, 0xca, 0x5e, 0xea, 0xfc, 0x3e, 0x36, 0x3e, 0x9d, 0x55, 0x65, 0x46, 0xeb, 0x68},
	{0x77, 0xc6, 0x07, 0x71, 0x46, 0xf0, 0x1c, 0x32, 0xb6, 0xb6, 0x9d, 0x5f, 0x4e, 0xa9, 0xff, 0xcf},
	{0x37, 0xa6, 0x98, 0x6c, 0xb8, 0x84, 0x7e, 0xdf, 0x09, 0x25, 0xf0, 0xf1, 0x30, 0x9b, 0x54, 0xde},
	{0xa7, 0x05, 0xf0, 0xe6, 0x9d, 0xa9, 0xa8, 0xf9, 0x07, 0x24, 0x1a, 0x2e, 0x92, 0x3c, 0x8c, 0xc8},
	{0x3d, 0xc4, 0x7d, 0x1f, 0x29, 0xc4, 0x48, 0x46, 0x1e, 0x9e, 0x76, 0xed, 0x90, 0x4f, 0x67, 0x11},
	{0x0d, 0x62, 0xbf, 0x01, 0xe6, 0xfc, 0x0e, 0x1a, 0x0d, 0x3c, 0x47, 0x51, 0xc5, 0xd3, 0x69, 0x2b},
	{0x8c, 0x03, 0x46, 0x8b, 0xca, 0x7c, 0x66, 0x9e, 0xe4, 0xfd, 0x5e, 0x08, 0x4b, 0xbe, 0xe7, 0xb5},
	{0x52, 0x8a, 0x5b, 0xb9, 0x3b, 0xaf, 0x2c, 0x9c, 0x44, 0x73, 0xcc, 0xe5, 0xd0, 0xd2, 0x2b, 0xd9},
	{0xdf, 0x6a, 0x30, 0x1e, 0x95, 0xc9, 0x5d, 0xad, 0x97, 0xae, 0x0c, 0xc8, 0xc6, 0x91, 0x3b, 0xd8},
	{0x80, 0x11, 0x89, 0x90, 0x2c, 0x85, 0x7f, 0x39, 0xe7, 0x35, 0x91, 0x28, 0x5e, 0x70, 0xb6, 0xdb},
	{0xe6, 0x17, 0x34, 0x6a, 0xc9, 0xc2, 0x31, 0xbb, 0x36, 0x50, 0xae, 0x34, 0xcc, 0xca, 0x0c, 0x5b},
	{0x27, 0xd9, 0x34, 0x37, 0xef, 0xb7, 0x21, 0xaa, 0x40, 0x18, 0x21, 0xdc, 0xec, 0x5a, 0xdf, 0x89},
	{0x89, 0x23, 0x7d, 0x9d, 0xed, 0x9c, 0x5e, 0x78, 0xd8, 0xb1, 0xc9, 0xb1, 0x66, 0xcc, 0x73, 0x42},
	{0x4a, 0x6d, 0x80, 0x91, 0xbf, 0x5e, 0x7d, 0x65, 0x11, 0x89, 0xfa, 0x94, 0xa2, 0x50, 0xb1, 0x4c},
	{0x0e, 0x33, 0xf9, 0x60, 0x55, 0xe7, 0xae, 0x89, 0x3f, 0xfc, 0x0e, 0x3d, 0xcf, 0x49, 0x29, 0x02},
	{0xe6, 0x1c, 0x43, 0x2b, 0x72, 0x0b, 0x19, 0xd1, 0x8e, 0xc8, 0xd8, 0x4b, 0xdc, 0x63, 0x15, 0x1b},
	{0xf7, 0xe5, 0xae, 0xf5, 0x49, 0xf7, 0x82, 0xcf, 0x37, 0x90, 0x55, 0xa6, 0x08, 0x26, 0x9b, 0x16},
	{0x43, 0x8d, 0x03, 0x0f, 0xd0, 0xb7, 0xa5, 0x4f, 0xa8, 0x37, 0xf2, 0xad, 0x20, 0x1a, 0x64, 0x03},
	{0xa5, 0x90, 0xd3, 0xee, 0x4f, 0xbf, 0x04, 0xe3, 0x24, 0x7e, 0x0d, 0x27, 0xf2, 0x86, 0x42, 0x3f},
	{0x5f, 0xe2, 0xc1, 0xa1, 0x72, 0xfe, 0x93, 0xc4, 0xb1, 0x5c, 0xd3, 0x7c, 0xae, 0xf9, 0xf5, 0x38},
	{0x2c, 0x97, 0x32, 0x5c, 0xbd, 0x06, 0xb3, 0x6e, 0xb2, 0x13, 0x3d, 0xd0, 0x8b, 0x3a, 0x01, 0x7c},
	{0x92, 0xc8, 0x14, 0x22, 0x7a, 0x6b, 0xca, 0x94, 0x9f, 0xf0, 0x65, 0x9f, 0x00, 0x2a, 0xd3, 0x9e},
	{0xdc, 0xe8, 0x50, 0x11, 0x0b, 0xd8, 0x32, 0x8c, 0xfb, 0xd5, 0x08, 0x41, 0xd6, 0x91, 0x1d, 0x87},
	{0x67, 0xf1, 0x49, 0x84, 0xc7, 0xda, 0x79, 0x12, 0x48, 0xe3, 0x2b, 0xb5, 0x92, 0x25, 0x83, 0xda},
	{0x19, 0x38, 0xf2, 0xcf, 0x72, 0xd5, 0x4e, 0xe9, 0x7e, 0x94, 0x16, 0x6f, 0xa9, 0x1d, 0x2a, 0x36},
	{0x74, 0x48, 0x1e, 0x96, 0x46, 0xed, 0x49, 0xfe, 0x0f, 0x62, 0x24, 0x30, 0x16, 0x04, 0x69, 0x8e},
	{0x57, 0xfc, 0xa5, 0xde, 0x98, 0xa9, 0xd6, 0xd8, 0x00, 0x64, 0x38, 0xd0, 0x58, 0x3d, 0x8a, 0x1d},
	{0x9f, 0xec, 0xde, 0x1c, 0xef, 0xdc, 0x1c, 0xbe, 0xd4, 0x76, 0x36, 0x74, 0xd9, 0x57, 0x53, 0x59},
	{0xe3, 0x04, 0x0c, 0x00, 0xeb, 0x28, 0xf1, 0x53, 0x66, 0xca, 0x73, 0xcb, 0xd8, 0x72, 0xe7, 0x40},
	{0x76, 0x97, 0x00, 0x9a, 0x6a, 0x83, 0x1d, 0xfe, 0xcc, 0xa9, 0x1c, 0x59, 0x93, 0x67, 0x0f, 0x7a},
	{0x58, 0x53, 0x54, 0x23, 0x21, 0xf5, 0x67, 0xa0, 0x05, 0xd5, 0x47, 0xa4, 0xf0, 0x47, 0x59, 0xbd},
	{0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c},
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned name_seq;

static void table_name(char *buf, size_t cap)
{
	snprintf(buf, cap, "t%u", name_seq++);
}

static struct kl_table *mk(uint32_t max, uint8_t ring, uint8_t readers)
{
	char name[16];
	struct kl_table_params p = {
		.max_ues = max,
		.max_groups = max,
		.max_emses = max,
		.max_imsis = max,
		.max_appids = max,
		.max_pairs = max,
		.e2m_ring = ring,
		.max_readers = readers,
		.socket_id = -1,
	};
	struct kl_table *t;

	table_name(name, sizeof(name));
	p.name = name;
	t = kl_table_create(&p);
	assert_non_null(t);
	return t;
}

static const void *get1(struct kl_table *t, enum kl_table_kind kind, const void *id, uint16_t len)
{
	struct kl_table_key k = {.id = id, .len = len};
	const void *out = (const void *)1;

	kl_table_lookup_bulk(t, kind, &k, 1, &out);
	return out;
}

static int put_ue_str(struct kl_table *t, const char *id, uint8_t fill, unsigned muk_len,
		      unsigned ngroups)
{
	uint8_t muk[64];
	struct kl_group_ref g[KL_TABLE_UE_GROUPS] = {
		{{0x00, 0xf1, 0x10}, 1}, {{0x00, 0xf1, 0x10}, 2}, {{0x21, 0x43, 0x65}, 3},
		{{0x21, 0x43, 0x65}, 4}};

	memset(muk, fill, sizeof(muk));
	return kl_table_put_ue(t, (const uint8_t *)id, (uint16_t)strlen(id), muk, muk_len, g,
			       ngroups);
}

/* SipHash-1-3-128 (the table's digest), key 00..0f, message 00..len-1 for len 0..63. Computed by
 * this implementation and by an independent Python one that agree; the Python one reproduces
 * every SipHash-2-4-128 reference vector above and CPython's siphash13 (PYTHONHASHSEED=0, zero
 * key, 64-bit output) for lengths 1..63, so the round structure and the 1-3 round counts are
 * each checked against an outside source. */
static const uint8_t sip13_128_vectors[64][16] = {
	{0xe7, 0x7e, 0xbc, 0xb2, 0x27, 0x88, 0xa5, 0xbe, 0xfd, 0x62, 0xdb, 0x6a, 0xdd, 0x30, 0x30, 0x01},
	{0xfc, 0x6f, 0x37, 0x04, 0x60, 0xd3, 0xed, 0xa8, 0x5e, 0x05, 0x73, 0xcc, 0x2b, 0x2f, 0xf0, 0x63},
	{0x75, 0x78, 0x7f, 0x09, 0x05, 0x69, 0x83, 0x9b, 0x85, 0x5b, 0xc9, 0x54, 0x8c, 0x6a, 0xea, 0x95},
	{0x6b, 0xc5, 0xcc, 0xfa, 0x1e, 0xdc, 0xf7, 0x9f, 0x48, 0x23, 0x18, 0x77, 0x12, 0xeb, 0xd7, 0x43},
	{0x0c, 0x78, 0x4e, 0x71, 0xac, 0x2b, 0x28, 0x5a, 0x9f, 0x8e, 0x92, 0xe7, 0x8f, 0xbf, 0x2c, 0x25},
	{0xf3, 0x28, 0xdb, 0x89, 0x34, 0x5b, 0x62, 0x0c, 0x79, 0x52, 0x29, 0xa4, 0x26, 0x95, 0x84, 0x3e},
	{0xdc, 0xd0, 0x3d, 0x29, 0xf7, 0x43, 0xe7, 0x10, 0x09, 0x51, 0xb0, 0xe8, 0x39, 0x85, 0xa6, 0xf8},
	{0x10, 0x84, 0xb9, 0x23, 0xf2, 0xaa, 0xe0, 0xc3, 0xa6, 0x2f, 0x2e, 0xc8, 0x08, 0x48, 0xab, 0x77},
	{0xaa, 0x12, 0xfe, 0xe1, 0xd5, 0xe3, 0xda, 0xb4, 0x72, 0x4f, 0x16, 0xab, 0x35, 0xf9, 0xc7, 0x99},
	{0x81, 0xdd, 0xb8, 0x04, 0x2c, 0xf3, 0x39, 0x94, 0xf4, 0x72, 0x0e, 0x00, 0x94, 0x13, 0x7c, 0x42},
	{0x4f, 0xaa, 0x54, 0x1d, 0x5d, 0x49, 0x8e, 0x89, 0xba, 0x0e, 0xa4, 0xc3, 0x87, 0xb2, 0x2f, 0xb4},
	{0x72, 0x3b, 0x9a, 0xf3, 0x55, 0x44, 0x91, 0xdb, 0xb1, 0xd6, 0x63, 0x3d, 0xfc, 0x6e, 0x0c, 0x4e},
	{0xe5, 0x3f, 0x92, 0x85, 0x9e, 0x48, 0x19, 0xa8, 0xdc, 0x06, 0x95, 0x73, 0x9f, 0xea, 0x8c, 0x65},
	{0xb2, 0xf8, 0x58, 0xc7, 0xc9, 0xea, 0x80, 0x1d, 0x53, 0xd6, 0x03, 0x59, 0x6d, 0x65, 0x78, 0x44},
	{0x87, 0xe7, 0x62, 0x68, 0xdb, 0xc9, 0x22, 0x72, 0x26, 0xb0, 0xca, 0x66, 0x5f, 0x64, 0xe3, 0x78},
	{0xc1, 0x7e, 0x55, 0x05, 0xb2, 0xbd, 0x52, 0x6c, 0x29, 0x21, 0xcd, 0xec, 0x1e, 0x7e, 0x01, 0x09},
	{0xd0, 0xa8, 0xd9, 0x57, 0x15, 0x51, 0x8e, 0xeb, 0xb5, 0x13, 0xb0, 0xf8, 0x3d, 0x9e, 0x17, 0x93},
	{0x23, 0x41, 0x26, 0xf9, 0x3f, 0xbb, 0x66, 0x8d, 0x97, 0x51, 0x12, 0xe8, 0xfe, 0xbd, 0xf7, 0xec},
	{0xef, 0x42, 0xf0, 0x3d, 0xb7, 0x8f, 0x70, 0x4d, 0x02, 0x3c, 0x44, 0x9f, 0x16, 0xb7, 0x09, 0x2b},
	{0xab, 0xf7, 0x62, 0x38, 0xc2, 0x0a, 0xf1, 0x61, 0xb2, 0x31, 0x4b, 0x4d, 0x55, 0x26, 0xbc, 0xe9},
	{0x3c, 0x2c, 0x2f, 0x11, 0xbb, 0x90, 0xcf, 0x0b, 0xe3, 0x35, 0xca, 0x9b, 0x2e, 0x91, 0xe9, 0xb7},
	{0x2a, 0x7a, 0x68, 0x0f, 0x22, 0xa0, 0x2a, 0x92, 0xf4, 0x51, 0x49, 0xd2, 0x0f, 0xec, 0xe0, 0xef},
	{0xc9, 0xa8, 0xd1, 0x30, 0x23, 0x1d, 0xd4, 0x3e, 0x42, 0xe6, 0x45, 0x69, 0x57, 0xf8, 0x37, 0x79},
	{0x1d, 0x12, 0x7b, 0x84, 0x40, 0x5c, 0xea, 0xb9, 0x9f, 0xd8, 0x77, 0x5a, 0x9b, 0xe6, 0xc5, 0x59},
	{0x9e, 0x4b, 0xf8, 0x37, 0xbc, 0xfd, 0x92, 0xca, 0xce, 0x09, 0xd2, 0x06, 0x1a, 0x84, 0xd0, 0x4a},
	{0x39, 0x03, 0x1a, 0x96, 0x5d, 0x73, 0xb4, 0xaf, 0x5a, 0x27, 0x4d, 0x18, 0xf9, 0x73, 0xb1, 0xd2},
	{0x7f, 0x4d, 0x0a, 0x12, 0x09, 0xd6, 0x7e, 0x4e, 0xd0, 0x6f, 0x75, 0x38, 0xe1, 0xcf, 0xad, 0x64},
	{0xe6, 0x1e, 0xe2, 0x40, 0xfb, 0xdc, 0xce, 0x38, 0x96, 0x9f, 0x4c, 0xd2, 0x49, 0x27, 0xdd, 0x93},
	{0x4c, 0x3b, 0xa2, 0xb3, 0x7b, 0x0f, 0xdd, 0x8c, 0xfa, 0x5e, 0x95, 0xc1, 0x89, 0xb2, 0x94, 0x14},
	{0xe0, 0x6f, 0xd4, 0xca, 0x06, 0x6f, 0xec, 0xdd, 0x54, 0x06, 0x8a, 0x5a, 0xd8, 0x89, 0x6f, 0x86},
	{0x5c, 0xa8, 0x4c, 0x34, 0x13, 0x9c, 0x65, 0x80, 0xa8, 0x8a, 0xf2, 0x49, 0x90, 0x72, 0x07, 0x06},
	{0x42, 0xea, 0x96, 0x1c, 0x5b, 0x3c, 0x85, 0x8b, 0x17, 0xc3, 0xe5, 0x50, 0xdf, 0xa7, 0x90, 0x10},
	{0x40, 0x6c, 0x44, 0xde, 0xe6, 0x78, 0x57, 0xb2, 0x94, 0x31, 0x60, 0xf3, 0x0c, 0x74, 0x17, 0xd3},
	{0xc5, 0xf5, 0x7b, 0xae, 0x13, 0x20, 0xfc, 0xf4, 0xb4, 0xe8, 0x68, 0xe7, 0x1d, 0x56, 0xc6, 0x6b},
	{0x04, 0xbf, 0x73, 0x7a, 0x5b, 0x67, 0x6b, 0xe7, 0xc3, 0xde, 0x05, 0x01, 0x7d, 0xf4, 0xbf, 0xf9},
	{0x51, 0x63, 0xc9, 0xc0, 0x3f, 0x19, 0x07, 0xea, 0x10, 0x44, 0xed, 0x5c, 0x30, 0x72, 0x7b, 0x4f},
	{0x37, 0xa1, 0x10, 0xf0, 0x02, 0x71, 0x8e, 0xda, 0xd2, 0x4b, 0x3f, 0x9e, 0xe4, 0x53, 0xf1, 0x40},
	{0xb9, 0x87, 0x7e, 0x38, 0x1a, 0xed, 0xd3, 0xda, 0x08, 0xc3, 0x3e, 0x75, 0xff, 0x23, 0xac, 0x10},
	{0x7c, 0x50, 0x04, 0x00, 0x5e, 0xc5, 0xda, 0x4c, 0x5a, 0xc9, 0x44, 0x0e, 0x5c, 0x72, 0x31, 0x93},
	{0x81, 0xb8, 0x24, 0x37, 0x83, 0xdb, 0xc6, 0x46, 0xca, 0x9d, 0x0c, 0xd8, 0x2a, 0xbd, 0xb4, 0x6c},
	{0x50, 0x57, 0x20, 0x54, 0x3e, 0xb9, 0xb4, 0x13, 0xd5, 0x0b, 0x3c, 0xfa, 0xd9, 0xee, 0xf9, 0x38},
	{0x94, 0x5f, 0x59, 0x4d, 0xe7, 0x24, 0x11, 0xe4, 0xd3, 0x35, 0xbe, 0x87, 0x44, 0x56, 0xd8, 0xf3},
	{0x37, 0x92, 0x3b, 0x3e, 0x37, 0x17, 0x77, 0xb2, 0x11, 0x70, 0xbf, 0x9d, 0x7e, 0x62, 0xf6, 0x02},
	{0x3a, 0xd4, 0xe7, 0xc8, 0x57, 0x64, 0x96, 0x46, 0x11, 0xeb, 0x0a, 0x6c, 0x4d, 0x62, 0xde, 0x56},
	{0xcd, 0x91, 0x39, 0x6c, 0x44, 0xaf, 0x4f, 0x51, 0x85, 0x57, 0x8d, 0x9d, 0xd9, 0x80, 0x3f, 0x0a},
	{0xfe, 0x28, 0x15, 0x8e, 0x72, 0x7b, 0x86, 0x8f, 0x39, 0x03, 0xc9, 0xac, 0xda, 0x64, 0xa2, 0x58},
	{0x40, 0xcc, 0x10, 0xb8, 0x28, 0x8c, 0xe5, 0xf0, 0xbc, 0x3a, 0xc0, 0xb6, 0x8a, 0x0e, 0xeb, 0xc8},
	{0x6f, 0x14, 0x90, 0xf5, 0x40, 0x69, 0x9a, 0x3c, 0xd4, 0x97, 0x44, 0x20, 0xec, 0xc9, 0x27, 0x37},
	{0xd5, 0x05, 0xf1, 0xb7, 0x5e, 0x1a, 0x84, 0xa6, 0x03, 0xc4, 0x35, 0x83, 0xb2, 0xed, 0x03, 0x08},
	{0x49, 0x15, 0x73, 0xcf, 0xd7, 0x2b, 0xb4, 0x68, 0x2b, 0x7c, 0xa5, 0x88, 0x0e, 0x1c, 0x8d, 0x6f},
	{0x3e, 0xd6, 0x9c, 0xfe, 0x45, 0xab, 0x40, 0x3f, 0x2f, 0xd2, 0xad, 0x95, 0x9b, 0xa2, 0x76, 0x66},
	{0x8b, 0xe8, 0x39, 0xef, 0x1b, 0x20, 0xb5, 0x7c, 0x83, 0xba, 0x7e, 0xb6, 0xa8, 0xc2, 0x2b, 0x6a},
	{0x14, 0x09, 0x18, 0x6a, 0xb4, 0x22, 0x31, 0xfe, 0xde, 0xe1, 0x81, 0x62, 0xcf, 0x1c, 0xb4, 0xca},
	{0x2b, 0xf3, 0xcc, 0xc2, 0x4a, 0xb6, 0x72, 0xcf, 0x15, 0x1f, 0xb8, 0xd2, 0xf3, 0xf3, 0x06, 0x9b},
	{0xb9, 0xb9, 0x3a, 0x28, 0x82, 0xd6, 0x02, 0x5c, 0xdb, 0x8c, 0x56, 0xfa, 0x13, 0xf7, 0x53, 0x7b},
	{0xd9, 0x7c, 0xca, 0x36, 0x94, 0xfb, 0x20, 0x6d, 0xb8, 0xbd, 0x1f, 0x36, 0x50, 0xc3, 0x33, 0x22},
	{0x94, 0xec, 0x2e, 0x19, 0xa4, 0x0b, 0xe4, 0x1a, 0xf3, 0x94, 0x0d, 0x6b, 0x30, 0xc4, 0x93, 0x84},
	{0x4b, 0x41, 0x60, 0x3f, 0x20, 0x9a, 0x04, 0x5b, 0xe1, 0x40, 0xa3, 0x41, 0xa3, 0xdf, 0xfe, 0x10},
	{0x23, 0xfb, 0xcb, 0x30, 0x9f, 0x1c, 0xf0, 0x94, 0x89, 0x07, 0x55, 0xab, 0x1b, 0x42, 0x65, 0x69},
	{0xe7, 0xd9, 0xb6, 0x56, 0x90, 0x91, 0x8a, 0x2b, 0x23, 0x2f, 0x2f, 0x5c, 0x12, 0xc8, 0x30, 0x0e},
	{0xad, 0xe8, 0x3c, 0xf7, 0xe7, 0xf3, 0x84, 0x7b, 0x36, 0xfa, 0x4b, 0x54, 0xb0, 0x0d, 0xce, 0x61},
	{0x06, 0x10, 0xc5, 0xf2, 0xee, 0x57, 0x1c, 0x8a, 0xc8, 0x0c, 0xbf, 0xe5, 0x38, 0xbd, 0xf1, 0xc7},
	{0x27, 0x1d, 0x5d, 0x00, 0xfb, 0xdb, 0x5d, 0x15, 0x5d, 0x9d, 0xce, 0xa9, 0x7c, 0xb4, 0x02, 0x18},
	{0x4c, 0x58, 0x00, 0xe3, 0x4e, 0xfe, 0x42, 0x6f, 0x07, 0x9f, 0x6b, 0x0a, 0xa7, 0x52, 0x60, 0xad},
};

/* ---- 1. SipHash ------------------------------------------------------------------------------- */

static void test_siphash_vectors(void **state)
{
	uint8_t key[16], msg[64], out[16];
	struct kl_sipkey k;

	(void)state;
	for (unsigned i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (unsigned i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	kl_siphash_key(&k, key);
	for (unsigned len = 0; len < 64; len++) {
		kl_siphash128_cd(&k, 2, 4, msg, len, out);
		if (memcmp(out, sip128_vectors[len], 16))
			fail_msg("SipHash-2-4-128 vector %u", len);
		kl_siphash128(&k, msg, len, out);
		if (memcmp(out, sip13_128_vectors[len], 16))
			fail_msg("SipHash-1-3-128 vector %u", len);
		kl_siphash128_cd(&k, 1, 3, msg, len, out);
		if (memcmp(out, sip13_128_vectors[len], 16))
			fail_msg("SipHash-1-3-128 (c, d given) vector %u", len);
	}
}

/* ---- PSK states --------------------------------------------------------------------------------- */

static void check_states_match_prf(const uint8_t *psk, unsigned len)
{
	struct kl_psk_chunk c[KL_TABLE_PSK_CHUNKS];
	struct kl_hmac_key ref[KL_PRF_MAX_CHUNKS], got[KL_TABLE_PSK_CHUNKS];
	int n = kl_psk_init(psk, len, c);

	assert_int_equal(n, (int)((len + 31) / 32));
	for (int prf = KL_PRF_MIKEY1; prf <= KL_PRF_HMAC_SHA256; prf++) {
		unsigned words = prf == KL_PRF_MIKEY1 ? 5 : 8;

		assert_int_equal(kl_prf_key_init(prf, psk, len, ref, KL_PRF_MAX_CHUNKS), n);
		kl_psk_expand(c, (unsigned)n, prf, got);
		for (int i = 0; i < n; i++) {
			assert_int_equal(got[i].alg, ref[i].alg);
			assert_memory_equal(got[i].istate, ref[i].istate, words * 4);
			assert_memory_equal(got[i].ostate, ref[i].ostate, words * 4);
		}
	}
}

static void test_psk_states(void **state)
{
	uint8_t psk[65];
	struct kl_psk_chunk c[KL_TABLE_PSK_CHUNKS];

	(void)state;
	for (unsigned i = 0; i < sizeof(psk); i++)
		psk[i] = (uint8_t)(0x30 + i * 7);
	check_states_match_prf(psk, 1);
	check_states_match_prf(psk, 16);
	check_states_match_prf(psk, 32); /* one chunk, never two */
	check_states_match_prf(psk, 33);
	check_states_match_prf(psk, 64);
	assert_int_equal(kl_psk_init(psk, 0, c), -EINVAL);
	assert_int_equal(kl_psk_init(psk, 65, c), -EINVAL);
	assert_int_equal(kl_psk_init(NULL, 32, c), -EINVAL);
}

/* ---- 2. every kind ------------------------------------------------------------------------------ */

static void test_ue(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	struct kl_psk_chunk c[2];
	uint8_t muk[64];
	const struct kl_ue *u;

	(void)state;
	assert_int_equal(put_ue_str(t, "alice@ims.example", 0x11, 32, 2), 0);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	u = get1(t, KL_TK_UE, "alice@ims.example", 17);
	assert_non_null(u);
	assert_int_equal(u->ngroups, 2);
	assert_int_equal(u->nchunks, 1);
	assert_memory_equal(u->groups[0].domain, "\x00\xf1\x10", 3);
	assert_int_equal(u->groups[1].group, 2);
	memset(muk, 0x11, sizeof(muk));
	kl_psk_init(muk, 32, c);
	assert_memory_equal(&u->chunk[0], &c[0], sizeof(c[0]));
	assert_null(get1(t, KL_TK_UE, "alice@ims.exampl", 16));
	assert_null(get1(t, KL_TK_EMSE, "alice@ims.example", 17));

	/* replace with a 2-chunk MUK and 4 groups */
	assert_int_equal(put_ue_str(t, "alice@ims.example", 0x22, 64, 4), 1);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	u = get1(t, KL_TK_UE, "alice@ims.example", 17);
	assert_non_null(u);
	assert_int_equal(u->nchunks, 2);
	assert_int_equal(u->ngroups, 4);
	assert_int_equal(u->groups[3].group, 4);
	memset(muk, 0x22, sizeof(muk));
	kl_psk_init(muk, 64, c);
	assert_memory_equal(u->chunk, c, 2 * sizeof(c[0]));

	assert_int_equal(kl_table_del(t, KL_TK_UE, (const uint8_t *)"alice@ims.example", 17), 0);
	assert_null(get1(t, KL_TK_UE, "alice@ims.example", 17));
	assert_int_equal(kl_table_del(t, KL_TK_UE, (const uint8_t *)"alice@ims.example", 17),
			 -ENOENT);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 0);
	/* re-added after delete, before any reclaim */
	assert_int_equal(put_ue_str(t, "alice@ims.example", 0x33, 20, 0), 0);
	u = get1(t, KL_TK_UE, "alice@ims.example", 17);
	assert_non_null(u);
	assert_int_equal(u->ngroups, 0);
	kl_table_free(t);
}

static void test_group(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	struct kl_group_ref ref = {{0x00, 0xf1, 0x10}, 0x1234};
	const uint8_t key[5] = {0x00, 0xf1, 0x10, 0x12, 0x34};
	struct kl_group g;
	const struct kl_group *e;

	(void)state;
	memset(&g, 0, sizeof(g));
	memset(g.current.key, 0xc1, 16);
	g.current.valid_from = 100ull << 32;
	g.current.valid_to = 200ull << 32;
	g.current.msk_id = 0x12340001;
	assert_int_equal(kl_table_put_group(t, &ref, &g), 0);
	e = get1(t, KL_TK_GROUP, key, 5);
	assert_non_null(e);
	assert_memory_equal(e->current.key, g.current.key, 16);
	assert_int_equal(e->current.msk_id, 0x12340001);
	assert_int_equal(e->current.valid_to, 200ull << 32);
	assert_int_equal(e->has_next, 0);
	assert_null(get1(t, KL_TK_GROUP, key, 4));

	memset(g.next.key, 0xc2, 16);
	g.next.msk_id = 0x12340002;
	g.has_next = 1;
	assert_int_equal(kl_table_put_group(t, &ref, &g), 1);
	e = get1(t, KL_TK_GROUP, key, 5);
	assert_non_null(e);
	assert_int_equal(e->has_next, 1);
	assert_int_equal(e->next.msk_id, 0x12340002);
	assert_memory_equal(e->next.key, g.next.key, 16);
	assert_int_equal(kl_table_count(t, KL_TK_GROUP), 1);

	assert_int_equal(kl_table_del(t, KL_TK_GROUP, key, 4), -EINVAL);
	assert_int_equal(kl_table_del(t, KL_TK_GROUP, key, 5), 0);
	assert_null(get1(t, KL_TK_GROUP, key, 5));
	assert_int_equal(kl_table_count(t, KL_TK_GROUP), 0);
	kl_table_free(t);
}

static void test_emse(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	struct kl_psk_chunk c[2];
	uint8_t psk[64];
	const struct kl_emse *e;

	(void)state;
	memset(psk, 0x5a, sizeof(psk));
	kl_psk_init(psk, 16, c);
	assert_int_equal(kl_table_put_emse(t, (const uint8_t *)"emse-1", 6, psk, 16), 0);
	e = get1(t, KL_TK_EMSE, "emse-1", 6);
	assert_non_null(e);
	assert_int_equal(e->nchunks, 1);
	assert_memory_equal(&e->chunk[0], &c[0], sizeof(c[0]));
	assert_int_equal(kl_table_put_emse(t, (const uint8_t *)"emse-1", 6, psk, 64), 1);
	e = get1(t, KL_TK_EMSE, "emse-1", 6);
	assert_non_null(e);
	kl_psk_init(psk, 64, c);
	assert_int_equal(e->nchunks, 2);
	assert_memory_equal(e->chunk, c, sizeof(c));
	assert_int_equal(kl_table_del(t, KL_TK_EMSE, (const uint8_t *)"emse-1", 6), 0);
	assert_null(get1(t, KL_TK_EMSE, "emse-1", 6));
	kl_table_free(t);
}

static void test_appid(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	const struct kl_appid *a;

	(void)state;
	assert_int_equal(kl_table_put_appid(t, (const uint8_t *)"app@x", 5, "001010123456789"), 0);
	a = get1(t, KL_TK_APPID, "app@x", 5);
	assert_non_null(a);
	assert_int_equal(a->imsi_len, 15);
	assert_memory_equal(a->imsi, "001010123456789", 15);
	assert_int_equal(kl_table_put_appid(t, (const uint8_t *)"app@x", 5, "00101"), 1);
	a = get1(t, KL_TK_APPID, "app@x", 5);
	assert_non_null(a);
	assert_int_equal(a->imsi_len, 5);
	assert_memory_equal(a->imsi, "00101", 5);
	assert_int_equal(kl_table_del(t, KL_TK_APPID, (const uint8_t *)"app@x", 5), 0);
	assert_null(get1(t, KL_TK_APPID, "app@x", 5));
	kl_table_free(t);
}

/* Pair keys: HMAC-SHA-256 midstates of the key (a KDF with them equals one with the raw key),
 * expiry and KCV; replace and delete. A table made without max_pairs has none. */
static void test_pair(void **state)
{
	struct kl_table *t = mk(64, 0, 1), *none;
	struct kl_crypto *c = kl_crypto_create(KL_CRYPTO_OPENSSL);
	const struct kl_pair *e;
	struct kl_hmac_key hk, raw;
	uint8_t key[32], a[32], b[32], kcv[KL_KCV_LEN], want[KL_KCV_LEN];
	const struct kl_kdf_param prm = { .data = (const uint8_t *)"ue-a", .len = 4 };
	uint64_t exp = 0;
	struct kl_table_params p = { .name = "nopair", .max_ues = 4, .max_readers = 1, .socket_id = -1 };

	(void)state;
	assert_non_null(c);
	memset(key, 0x6b, sizeof(key));
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"vlr-b", 5, key, 32, 77), 0);
	e = get1(t, KL_TK_PAIR, "vlr-b", 5);
	assert_non_null(e);
	assert_true(e->expires == 77);
	memcpy(hk.istate, e->istate, sizeof(hk.istate));
	memcpy(hk.ostate, e->ostate, sizeof(hk.ostate));
	hk.alg = KL_HASH_SHA256;
	assert_int_equal(kl_hmac_key_init(KL_HASH_SHA256, key, 32, &raw), 0);
	assert_int_equal(kl_kdf(c, &hk, 0xFF06, &prm, 1, a), 0);
	assert_int_equal(kl_kdf(c, &raw, 0xFF06, &prm, 1, b), 0);
	assert_memory_equal(a, b, 32);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)"vlr-b", 5, &exp, kcv), 0);
	assert_int_equal(kl_kcv(key, 32, want), 0);
	assert_memory_equal(kcv, want, KL_KCV_LEN);
	assert_true(exp == 77);
	key[0] ^= 1;
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"vlr-b", 5, key, 32, 0), 1);
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)"vlr-b", 5, &exp, kcv), 0);
	assert_true(exp == 0);
	assert_memory_not_equal(kcv, want, KL_KCV_LEN);
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"vlr-b", 5, key, 0, 0), -EINVAL);
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"vlr-b", 5, key, 65, 0), -EINVAL);
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"", 0, key, 32, 0), -EINVAL);
	assert_int_equal(kl_table_count(t, KL_TK_PAIR), 1);
	assert_int_equal(kl_table_del(t, KL_TK_PAIR, (const uint8_t *)"vlr-b", 5), 0);
	assert_null(get1(t, KL_TK_PAIR, "vlr-b", 5));
	assert_int_equal(kl_table_get_pair(t, (const uint8_t *)"vlr-b", 5, NULL, NULL), -ENOENT);
	none = kl_table_create(&p);
	assert_non_null(none);
	assert_int_equal(kl_table_put_pair(none, (const uint8_t *)"vlr-b", 5, key, 32, 0), -ENOSPC);
	kl_table_free(none);
	kl_crypto_destroy(c);
	kl_table_free(t);
}

/* Per-UE services: default on a put, kept by set_ue_groups, replaced by set_ue_services, taken
 * from a bulk put; the lists' names and parser. */
static void test_services(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	const struct kl_group_ref g = { { 0, 0xF1, 0x10 }, 1 };
	struct kl_ue_put v = { .id = (const uint8_t *)"u2", .id_len = 2, .muk_len = 32,
			       .services = KL_SVC(HM) };
	uint8_t muk[32], svc = 0;
	unsigned bad = 0;
	char buf[64];
	enum kl_table_kind k;
	int rc;

	(void)state;
	memset(muk, 3, sizeof(muk));
	v.muk = muk;
	assert_int_equal(kl_table_put_ue(t, (const uint8_t *)"u1", 2, muk, 32, &g, 1), 0);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"u1", 2, &svc), 0);
	assert_int_equal(svc, KL_SVC(MBMS));
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, KL_SVC_ALL), 1);
	assert_int_equal(((const struct kl_ue *)get1(t, KL_TK_UE, "u1", 2))->services, KL_SVC_ALL);
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"u1", 2, NULL, 0), 1);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"u1", 2, &svc), 0);
	assert_int_equal(svc, KL_SVC_ALL);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, 0), -EINVAL);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, 0x80), -EINVAL);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"zz", 2, 1), -ENOENT);
	/* a put replaces everything: the default services again */
	assert_int_equal(kl_table_put_ue(t, (const uint8_t *)"u1", 2, muk, 32, &g, 1), 1);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"u1", 2, &svc), 0);
	assert_int_equal(svc, KL_SVC_DEFAULT);
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_int_equal(kl_table_get_ue_services(t, (const uint8_t *)"u2", 2, &svc), 0);
	assert_int_equal(svc, KL_SVC(HM));
	v.services = 0x40;
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 0);
	assert_int_equal(rc, -EINVAL);
	/* names */
	assert_int_equal(kl_service_parse("mbms,hm", &svc, &bad), 0);
	assert_int_equal(svc, KL_SVC(MBMS) | KL_SVC(HM));
	assert_int_equal(kl_service_parse("all", &svc, &bad), 0);
	assert_int_equal(svc, KL_SVC_ALL);
	assert_string_equal(kl_service_format(KL_SVC_ALL, buf, sizeof(buf)), "mbms,hm,dh,prose");
	assert_int_equal(kl_service_parse("mbms,xx", &svc, &bad), -EINVAL);
	assert_int_equal(bad, 2);
	assert_int_equal(kl_service_parse("hm,hm", &svc, &bad), -EINVAL);
	assert_int_equal(kl_service_parse("", &svc, &bad), -EINVAL);
	assert_int_equal(kl_service_parse("mbms,", &svc, &bad), -EINVAL);
	assert_null(kl_service_name(KL_SVC__COUNT));
	for (unsigned i = 0; i < KL_TK__COUNT; i++) {
		assert_int_equal(kl_table_kind_parse(kl_table_kind_name(i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(kl_table_kind_parse("pairs", &k), -EINVAL);
	assert_string_equal(kl_table_kind_plural(KL_TK_PAIR), "pairs");
	kl_table_free(t);
}

static void test_enospc(void **state)
{
	struct kl_table_params p = {
		.name = "full", .max_ues = 8, .max_groups = 8, .max_emses = 8, .max_imsis = 8,
		.max_appids = 8, .max_readers = 1, .socket_id = -1, .max_ues_2chunk = 2,
	};
	struct kl_table *t = kl_table_create(&p);
	uint8_t k32[32] = {1}, id[8];
	struct kl_group g = {0};
	char s[32];

	(void)state;
	assert_non_null(t);
	for (unsigned i = 0; i < 8; i++) {
		struct kl_group_ref ref = {{1, 2, 3}, (uint16_t)i};

		snprintf(s, sizeof(s), "ue%u", i);
		/* the first two take 2-chunk MUKs: the 2-chunk arena's whole capacity */
		assert_int_equal(put_ue_str(t, s, (uint8_t)i, i < 2 ? 64 : 32, 1), 0);
		assert_int_equal(kl_table_put_group(t, &ref, &g), 0);
		memcpy(id, s, 3);
		id[3] = (uint8_t)i;
		assert_int_equal(kl_table_put_emse(t, id, 4, k32, 32), 0);
		snprintf(s, sizeof(s), "0010100000000%u", i);
		assert_int_equal(kl_table_push_e2m(t, s, k32, 1, 0), 0);
		assert_int_equal(kl_table_put_appid(t, id, 4, s), 0);
	}
	{
		struct kl_group_ref ref = {{1, 2, 3}, 99};

		assert_int_equal(put_ue_str(t, "ue8", 8, 32, 1), -ENOSPC);
		assert_int_equal(kl_table_put_group(t, &ref, &g), -ENOSPC);
		assert_int_equal(kl_table_put_emse(t, (const uint8_t *)"zzzz", 4, k32, 32), -ENOSPC);
		assert_int_equal(kl_table_push_e2m(t, "99999", k32, 1, 0), -ENOSPC);
		assert_int_equal(kl_table_put_appid(t, (const uint8_t *)"zzzz", 4, "1"), -ENOSPC);
	}
	/* full kinds still take replacements */
	assert_int_equal(put_ue_str(t, "ue5", 0x55, 32, 1), 1);
	assert_int_equal(kl_table_push_e2m(t, "00101000000003", k32, 2, 0), 0);
	/* the 2-chunk arena is full: ue3 cannot grow, ue0 can be rewritten */
	assert_int_equal(put_ue_str(t, "ue3", 3, 64, 1), -ENOSPC);
	assert_int_equal(put_ue_str(t, "ue0", 0, 64, 1), 1);
	assert_int_equal(put_ue_str(t, "ue1", 1, 32, 1), 1); /* shrinks: frees a 2-chunk slot */
	assert_int_equal(put_ue_str(t, "ue3", 3, 64, 1), 1);
	/* a delete makes room */
	assert_int_equal(kl_table_del(t, KL_TK_UE, (const uint8_t *)"ue7", 3), 0);
	assert_int_equal(put_ue_str(t, "ue8", 8, 32, 1), 0);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 8);
	kl_table_free(t);

	/* a kind with capacity 0 is absent */
	p.name = "nogroups";
	p.max_groups = 0;
	t = kl_table_create(&p);
	assert_non_null(t);
	{
		struct kl_group_ref ref = {{1, 2, 3}, 1};

		assert_int_equal(kl_table_put_group(t, &ref, &g), -ENOSPC);
		assert_null(get1(t, KL_TK_GROUP, "\x01\x02\x03\x00\x01", 5));
		assert_int_equal(kl_table_del(t, KL_TK_GROUP, (const uint8_t *)"\x01\x02\x03\x00\x01", 5),
				 -ENOENT);
	}
	kl_table_free(t);
}

static void test_einval(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	uint8_t id[130], psk[65], k32[32] = {0};
	struct kl_group_ref g[5] = {{{0}, 0}};
	struct kl_group grp = {0};
	struct kl_table_params p = {.name = "x", .max_ues = 8, .e2m_ring = 9};

	(void)state;
	memset(id, 'a', sizeof(id));
	memset(psk, 1, sizeof(psk));
	assert_int_equal(kl_table_put_ue(t, id, 0, psk, 32, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, NULL, 5, psk, 32, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, id, 129, psk, 32, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, id, 128, psk, 32, g, 1), 0);
	assert_int_equal(kl_table_put_ue(t, id, 5, psk, 0, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, id, 5, psk, 65, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, id, 5, NULL, 32, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, id, 5, psk, 32, g, 5), -EINVAL);
	assert_int_equal(kl_table_put_ue(t, id, 5, psk, 32, NULL, 1), -EINVAL);
	assert_int_equal(kl_table_put_ue(NULL, id, 5, psk, 32, g, 1), -EINVAL);
	assert_int_equal(kl_table_put_emse(t, id, 0, psk, 32), -EINVAL);
	assert_int_equal(kl_table_put_emse(t, id, 129, psk, 32), -EINVAL);
	assert_int_equal(kl_table_put_emse(t, id, 5, psk, 0), -EINVAL);
	assert_int_equal(kl_table_put_emse(t, id, 5, psk, 65), -EINVAL);
	assert_int_equal(kl_table_put_group(t, NULL, &grp), -EINVAL);
	assert_int_equal(kl_table_put_group(t, &g[0], NULL), -EINVAL);
	assert_int_equal(kl_table_push_e2m(t, "12a4", k32, 1, 0), -EINVAL);
	assert_int_equal(kl_table_push_e2m(t, "", k32, 1, 0), -EINVAL);
	assert_int_equal(kl_table_push_e2m(t, "1234567890123456", k32, 1, 0), -EINVAL);
	assert_int_equal(kl_table_push_e2m(t, "123456789012345", k32, 1, 0), 0);
	assert_int_equal(kl_table_push_e2m(t, NULL, k32, 1, 0), -EINVAL);
	assert_int_equal(kl_table_push_e2m(t, "1234", NULL, 1, 0), -EINVAL);
	assert_int_equal(kl_table_push_e2m(t, "-1", k32, 1, 0), -EINVAL);
	assert_int_equal(kl_table_put_appid(t, id, 5, "12 4"), -EINVAL);
	assert_int_equal(kl_table_put_appid(t, id, 5, ""), -EINVAL);
	assert_int_equal(kl_table_put_appid(t, id, 0, "1234"), -EINVAL);
	assert_int_equal(kl_table_put_appid(t, id, 129, "1234"), -EINVAL);
	assert_int_equal(kl_table_del(t, KL_TK__COUNT, id, 5), -EINVAL);
	assert_int_equal(kl_table_del(t, KL_TK_UE, id, 0), -EINVAL);
	assert_int_equal(kl_table_del(t, KL_TK_UE, NULL, 5), -EINVAL);
	assert_int_equal(kl_table_del(t, KL_TK_UE, id, 129), -EINVAL);
	assert_int_equal(kl_table_reader_register(t, 1), -EINVAL);
	assert_int_equal(kl_table_count(t, KL_TK__COUNT), 0);

	assert_null(kl_table_create(&p));
	assert_int_equal(rte_errno, EINVAL);
	p.e2m_ring = 0;
	p.name = "a_name_longer_than_16";
	assert_null(kl_table_create(&p));
	assert_int_equal(rte_errno, EINVAL);
	assert_null(kl_table_create(NULL));
	kl_table_free(NULL);
	kl_table_free(t);
}

static void test_lookup_bad_input(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	struct kl_table_key keys[65];
	const void *out[65];

	(void)state;
	assert_int_equal(put_ue_str(t, "bob", 1, 32, 1), 0);
	for (unsigned i = 0; i < 65; i++)
		keys[i] = (struct kl_table_key){.id = (const uint8_t *)"bob", .len = 3};
	keys[1].id = NULL;
	keys[2].len = 0;
	keys[3].len = 129;
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, keys, 64, out), 61);
	assert_null(out[1]);
	assert_null(out[2]);
	assert_null(out[3]);
	assert_non_null(out[0]);
	assert_ptr_equal(out[0], out[63]);
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, keys, 65, out), 0);
	assert_null(out[0]);
	assert_null(out[64]);
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, keys, 0, out), 0);
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, NULL, 4, out), 0);
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, keys, 4, NULL), 0);
	assert_int_equal(kl_table_lookup_bulk(NULL, KL_TK_UE, keys, 4, out), 0);
	assert_int_equal(kl_table_lookup_bulk(t, (enum kl_table_kind)77, keys, 4, out), 0);
	assert_null(out[0]);
	/* a group key must be exactly 5 bytes */
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_GROUP, keys, 4, out), 0);
	kl_table_free(t);
}

/* ---- 3. E2M ring ---------------------------------------------------------------------------------- */

static void e2m_expect(const struct kl_e2m_key *k, uint8_t fill, uint32_t id, uint64_t expires)
{
	uint8_t key[32];
	struct kl_hmac_key hk;

	memset(key, fill, sizeof(key));
	kl_hmac_key_init(KL_HASH_SHA256, key, 32, &hk);
	assert_int_equal(k->key_id, id);
	assert_int_equal(k->expires, expires);
	assert_memory_equal(k->istate, hk.istate, 32);
	assert_memory_equal(k->ostate, hk.ostate, 32);
}

static void test_e2m_ring(void **state)
{
	struct kl_table *t = mk(64, 4, 1);
	const char *imsi = "001010000000001";
	const struct kl_e2m *e;
	uint8_t key[32];

	(void)state;
	for (uint32_t id = 1; id <= 6; id++) {
		memset(key, (int)id, sizeof(key));
		assert_int_equal(kl_table_push_e2m(t, imsi, key, id, 1000 + id), 0);
		e = get1(t, KL_TK_E2M, imsi, 15);
		assert_non_null(e);
		assert_int_equal(e->n, id < 4 ? id : 4);
		e2m_expect(&e->keys[0], (uint8_t)id, id, 1000 + id);
	}
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 1);
	for (unsigned i = 0; i < 4; i++)
		e2m_expect(&e->keys[i], (uint8_t)(6 - i), 6 - i, 1000 + 6 - i);

	/* an existing key id is replaced where it stands */
	memset(key, 0x44, sizeof(key));
	assert_int_equal(kl_table_push_e2m(t, imsi, key, 4, 7777), 1);
	e = get1(t, KL_TK_E2M, imsi, 15);
	assert_non_null(e);
	assert_int_equal(e->n, 4);
	e2m_expect(&e->keys[0], 6, 6, 1006);
	e2m_expect(&e->keys[1], 5, 5, 1005);
	e2m_expect(&e->keys[2], 0x44, 4, 7777);
	e2m_expect(&e->keys[3], 3, 3, 1003);

	/* another IMSI is independent */
	assert_int_equal(kl_table_push_e2m(t, "0010100000002", key, 9, 0), 0);
	e = get1(t, KL_TK_E2M, "0010100000002", 13);
	assert_non_null(e);
	assert_int_equal(e->n, 1);
	e2m_expect(&e->keys[0], 0x44, 9, 0);
	assert_int_equal(kl_table_del(t, KL_TK_E2M, (const uint8_t *)imsi, 15), 0);
	assert_null(get1(t, KL_TK_E2M, imsi, 15));
	kl_table_free(t);
}

/* ---- 4. reclamation -------------------------------------------------------------------------------- */

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static void test_reclaim(void **state)
{
	const size_t sz = sizeof(struct kl_ue) + sizeof(struct kl_psk_chunk);
	struct kl_table *t = mk(64, 0, 2);
	uint8_t saved[sizeof(struct kl_ue) + sizeof(struct kl_psk_chunk)];
	const struct kl_ue *old, *cur;
	char id[16];

	(void)state;
	assert_int_equal(kl_table_reader_register(t, 0), 0);
	assert_int_equal(kl_table_reader_register(t, 1), 0);
	assert_int_equal(put_ue_str(t, "carol", 0xaa, 32, 2), 0);
	old = get1(t, KL_TK_UE, "carol", 5); /* reader 0 holds this */
	assert_non_null(old);
	memcpy(saved, old, sz);

	assert_int_equal(put_ue_str(t, "carol", 0xbb, 32, 2), 1);
	kl_table_quiescent(t, 1); /* one reader passed, reader 0 has not */
	kl_table_reclaim(t);
	cur = get1(t, KL_TK_UE, "carol", 5);
	assert_ptr_not_equal(cur, old);
	assert_memory_equal(old, saved, sz);
	/* new entries do not get the old slot while reader 0 may hold it */
	for (unsigned i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "fill%u", i);
		assert_int_equal(put_ue_str(t, id, (uint8_t)i, 32, 1), 0);
		assert_ptr_not_equal(get1(t, KL_TK_UE, id, (uint16_t)strlen(id)), old);
		kl_table_quiescent(t, 1);
	}
	assert_memory_equal(old, saved, sz);

	kl_table_quiescent(t, 0);
	kl_table_reclaim(t);
	assert_true(all_zero(old, sz));
	/* and the zeroed slot is what the next 1-chunk UE gets */
	assert_int_equal(put_ue_str(t, "dave", 0xcc, 32, 1), 0);
	assert_ptr_equal(get1(t, KL_TK_UE, "dave", 4), old);

	/* a delete: same rule */
	old = get1(t, KL_TK_UE, "dave", 4);
	memcpy(saved, old, sz);
	assert_int_equal(kl_table_del(t, KL_TK_UE, (const uint8_t *)"dave", 4), 0);
	kl_table_quiescent(t, 1);
	kl_table_reclaim(t);
	assert_memory_equal(old, saved, sz);
	/* an unregistered reader no longer holds anything back */
	kl_table_reader_unregister(t, 0);
	kl_table_reclaim(t);
	assert_true(all_zero(old, sz));
	kl_table_free(t);
}

/* A registered reader that stops reporting: the writer runs out of spare slots, waits a bounded
 * time and reports -ENOSPC instead of hanging or reusing memory; it recovers once the reader
 * reports. */
static void test_stuck_reader(void **state)
{
	struct kl_table *t = mk(8, 0, 1);
	const struct kl_ue *held;
	unsigned i;
	double t0;
	int rc = 0;

	(void)state;
	assert_int_equal(kl_table_reader_register(t, 0), 0);
	assert_int_equal(put_ue_str(t, "x", 0, 32, 1), 0);
	held = get1(t, KL_TK_UE, "x", 1);
	t0 = now_s();
	for (i = 1; i < 5000; i++) {
		rc = put_ue_str(t, "x", (uint8_t)i, 32, 1);
		if (rc != 1)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_true(i > 1000); /* the spare slots were all used first */
	assert_true(now_s() - t0 > 0.4);
	assert_int_equal(held->nchunks, 1); /* never recycled under the reader */
	assert_non_null(get1(t, KL_TK_UE, "x", 1));
	kl_table_quiescent(t, 0);
	assert_int_equal(put_ue_str(t, "x", 1, 32, 1), 1);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 1);
	kl_table_free(t);
}

/* ---- 5. RCU race ------------------------------------------------------------------------------------- */

#define RACE_UES 64

struct race {
	struct kl_table *t;
	struct kl_psk_chunk a, b;
	char ids[RACE_UES][16];
	volatile int stop;
	uint64_t checks, torn, missing, loops;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	struct kl_table_key keys[RACE_UES];
	const void *out[RACE_UES];
	uint64_t checks = 0, torn = 0, missing = 0, loops = 0;

	for (unsigned i = 0; i < RACE_UES; i++)
		keys[i] = (struct kl_table_key){(const uint8_t *)r->ids[i], (uint16_t)strlen(r->ids[i])};
	if (kl_table_reader_register(r->t, 0)) {
		r->torn = UINT64_MAX;
		return NULL;
	}
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		kl_table_lookup_bulk(r->t, KL_TK_UE, keys, RACE_UES, out);
		for (unsigned i = 0; i < RACE_UES; i++) {
			const struct kl_ue *u = out[i];

			if (!u) {
				missing++;
				continue;
			}
			checks++;
			if (u->nchunks != 1 || u->ngroups != 1 || u->groups[0].group != 1 ||
			    (memcmp(&u->chunk[0], &r->a, sizeof(r->a)) &&
			     memcmp(&u->chunk[0], &r->b, sizeof(r->b))))
				torn++;
		}
		loops++;
		kl_table_quiescent(r->t, 0);
	}
	kl_table_reader_unregister(r->t, 0);
	r->checks = checks;
	r->torn = torn;
	r->missing = missing;
	r->loops = loops;
	return NULL;
}

static void test_rcu_race(void **state)
{
	struct race *r = calloc(1, sizeof(*r));
	uint8_t ka[32], kb[32];
	uint64_t writes = 0, nospc = 0;
	pthread_t th;
	double end;

	(void)state;
	assert_non_null(r);
	r->t = mk(1024, 0, 1);
	memset(ka, 0xaa, sizeof(ka));
	memset(kb, 0xbb, sizeof(kb));
	assert_int_equal(kl_psk_init(ka, 32, &r->a), 1);
	assert_int_equal(kl_psk_init(kb, 32, &r->b), 1);
	for (unsigned i = 0; i < RACE_UES; i++) {
		snprintf(r->ids[i], sizeof(r->ids[i]), "race-%u", i);
		assert_int_equal(put_ue_str(r->t, r->ids[i], 0xaa, 32, 1), 0);
	}
	assert_int_equal(pthread_create(&th, NULL, race_reader, r), 0);
	end = now_s() + 3.0;
	while (now_s() < end) {
		for (unsigned i = 0; i < RACE_UES; i++) {
			int rc = put_ue_str(r->t, r->ids[i], (writes & 64) ? 0xbb : 0xaa, 32, 1);

			if (rc == -ENOSPC)
				nospc++; /* reader descheduled for KL_WAIT_US; not a failure */
			else
				assert_int_equal(rc, 1);
			writes++;
		}
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	printf("rcu race: %" PRIu64 " writes (%" PRIu64 " -ENOSPC), %" PRIu64 " reader loops, %" PRIu64
	       " checks, %" PRIu64 " torn, %" PRIu64 " missing\n",
	       writes, nospc, r->loops, r->checks, r->torn, r->missing);
	assert_true(r->checks > 100000);
	assert_int_equal(r->torn, 0);
	assert_int_equal(r->missing, 0);
	kl_table_free(r->t);
	free(r);
}

/* ---- 6. writer-side updates: set_ue_groups, del_e2m_key, get_ue, get_group ------------------------ */

static const struct kl_group_ref NEW_G[KL_TABLE_UE_GROUPS] = {
	{{0x99, 0x88, 0x77}, 0x1234}, {{0x99, 0x88, 0x77}, 7}, {{0x01, 0x02, 0x03}, 0xffff},
	{{0x00, 0x00, 0x01}, 0}};

static void test_set_ue_groups(void **state)
{
	const size_t sz = sizeof(struct kl_ue) + 2 * sizeof(struct kl_psk_chunk);
	struct kl_table_params p = {.max_ues = 64, .max_ues_2chunk = 1, .max_readers = 1,
				    .socket_id = -1};
	struct kl_group_ref g[KL_TABLE_UE_GROUPS + 1] = {{{0}, 0}};
	uint8_t saved[sizeof(struct kl_ue) + 2 * sizeof(struct kl_psk_chunk)];
	uint8_t muk[64], kcv[KL_KCV_LEN], got_kcv[KL_KCV_LEN];
	struct kl_psk_chunk c[2];
	const struct kl_ue *old, *u;
	struct kl_table *t;
	unsigned ng = 99;
	char name[16];

	(void)state;
	table_name(name, sizeof(name));
	p.name = name;
	t = kl_table_create(&p);
	assert_non_null(t);
	assert_int_equal(kl_table_reader_register(t, 0), 0);
	assert_int_equal(put_ue_str(t, "bob@ims", 0x5a, 64, 2), 0); /* 2 chunks */
	assert_int_equal(put_ue_str(t, "amy@ims", 0x11, 20, 4), 0); /* 1 chunk */
	memset(muk, 0x5a, sizeof(muk));
	assert_int_equal(kl_kcv(muk, 64, kcv), 0);
	assert_int_equal(kl_psk_init(muk, 64, c), 2);
	old = get1(t, KL_TK_UE, "bob@ims", 7); /* reader 0 holds it */
	assert_non_null(old);
	memcpy(saved, old, sz);

	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"bob@ims", 7, NEW_G, 3), 1);
	u = get1(t, KL_TK_UE, "bob@ims", 7);
	assert_non_null(u);
	assert_ptr_not_equal(u, old); /* a new entry was swapped in */
	assert_int_equal(u->nchunks, 2);
	assert_memory_equal(u->chunk, c, 2 * sizeof(c[0]));	 /* the MUK states are kept */
	assert_memory_equal(u->chunk, old->chunk, 2 * sizeof(c[0])); /* equal to the original's */
	assert_memory_equal(u->kcv, kcv, KL_KCV_LEN);
	assert_int_equal(u->ngroups, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_memory_equal(u->groups[i].domain, NEW_G[i].domain, 3);
		assert_int_equal(u->groups[i].group, NEW_G[i].group);
	}
	assert_int_equal(kl_table_count(t, KL_TK_UE), 2);
	/* the reader's old entry is untouched until it reports quiescence */
	kl_table_reclaim(t);
	assert_memory_equal(old, saved, sz);
	kl_table_quiescent(t, 0);
	kl_table_reclaim(t);
	assert_true(all_zero(old, sz));

	/* get_ue: groups and KCV, no key material */
	assert_int_equal(kl_table_get_ue(t, (const uint8_t *)"bob@ims", 7, g, &ng, got_kcv), 0);
	assert_int_equal(ng, 3);
	assert_memory_equal(got_kcv, kcv, KL_KCV_LEN);
	for (unsigned i = 0; i < 3; i++) {
		assert_memory_equal(g[i].domain, NEW_G[i].domain, 3);
		assert_int_equal(g[i].group, NEW_G[i].group);
	}
	assert_int_equal(kl_table_get_ue(t, (const uint8_t *)"bob@ims", 7, NULL, &ng, NULL), 0);
	assert_int_equal(kl_table_get_ue(t, (const uint8_t *)"nobody", 6, g, &ng, got_kcv),
			 -ENOENT);
	assert_int_equal(kl_table_get_ue(t, (const uint8_t *)"bob@ims", 0, g, &ng, got_kcv),
			 -EINVAL);
	assert_int_equal(kl_table_get_ue(NULL, (const uint8_t *)"bob@ims", 7, g, &ng, got_kcv),
			 -EINVAL);

	/* 1-chunk UE, to no groups */
	memset(muk, 0x11, sizeof(muk));
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"amy@ims", 7, NULL, 0), 1);
	u = get1(t, KL_TK_UE, "amy@ims", 7);
	assert_non_null(u);
	assert_int_equal(u->ngroups, 0);
	assert_int_equal(u->nchunks, 1);
	assert_int_equal(kl_kcv(muk, 20, kcv), 0);
	assert_memory_equal(u->kcv, kcv, KL_KCV_LEN);
	assert_int_equal(kl_psk_init(muk, 20, c), 1);
	assert_memory_equal(u->chunk, c, sizeof(c[0]));
	assert_int_equal(kl_table_get_ue(t, (const uint8_t *)"amy@ims", 7, g, &ng, got_kcv), 0);
	assert_int_equal(ng, 0);

	/* errors, and nothing changed by them */
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"carl@ims", 8, NEW_G, 1),
			 -ENOENT);
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"bob@ims", 7, g, 5), -EINVAL);
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"bob@ims", 7, NULL, 1), -EINVAL);
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"bob@ims", 0, NEW_G, 1), -EINVAL);
	assert_int_equal(kl_table_set_ue_groups(t, NULL, 7, NEW_G, 1), -EINVAL);
	assert_int_equal(kl_table_set_ue_groups(NULL, (const uint8_t *)"bob@ims", 7, NEW_G, 1),
			 -EINVAL);
	assert_null(get1(t, KL_TK_UE, "carl@ims", 8));
	assert_int_equal(kl_table_count(t, KL_TK_UE), 2);
	u = get1(t, KL_TK_UE, "bob@ims", 7);
	assert_int_equal(u->ngroups, 3);

	/* the 2-chunk budget (max_ues_2chunk = 1) is unchanged by group updates: bob still
	 * takes the one 2-chunk place, a second 2-chunk UE is refused, bob's own replacement not */
	for (unsigned i = 0; i < 50; i++) {
		assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"bob@ims", 7,
							NEW_G + i % 2, 2), 1);
		kl_table_quiescent(t, 0);
	}
	assert_int_equal(put_ue_str(t, "dan@ims", 1, 64, 1), -ENOSPC);
	assert_int_equal(put_ue_str(t, "bob@ims", 2, 64, 1), 1);
	kl_table_free(t);
}

/* A reader racing set_ue_groups sees, for each UE, the old or the new entry whole: the same MUK
 * states and KCV always, and group set A (1 group) or set B (3 groups), never a mix. */
#define GRACE_UES 32

struct grace {
	struct kl_table *t;
	struct kl_psk_chunk chunk;
	uint8_t kcv[KL_KCV_LEN];
	char ids[GRACE_UES][16];
	volatile int stop;
	uint64_t checks, torn, missing, seen_a, seen_b;
};

static void *grace_reader(void *arg)
{
	struct grace *r = arg;
	struct kl_table_key keys[GRACE_UES];
	const void *out[GRACE_UES];
	uint64_t checks = 0, torn = 0, missing = 0, a = 0, b = 0;

	for (unsigned i = 0; i < GRACE_UES; i++)
		keys[i] = (struct kl_table_key){(const uint8_t *)r->ids[i],
						(uint16_t)strlen(r->ids[i])};
	if (kl_table_reader_register(r->t, 0)) {
		r->torn = UINT64_MAX;
		return NULL;
	}
	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		kl_table_lookup_bulk(r->t, KL_TK_UE, keys, GRACE_UES, out);
		for (unsigned i = 0; i < GRACE_UES; i++) {
			const struct kl_ue *u = out[i];
			int is_a, is_b;

			if (!u) {
				missing++;
				continue;
			}
			checks++;
			is_a = u->ngroups == 1 && u->groups[0].group == 1 &&
			       !memcmp(u->groups[0].domain, "\x00\xf1\x10", 3);
			is_b = u->ngroups == 3;
			for (unsigned j = 0; is_b && j < 3; j++)
				is_b = u->groups[j].group == NEW_G[j].group &&
				       !memcmp(u->groups[j].domain, NEW_G[j].domain, 3);
			a += is_a;
			b += is_b;
			if ((!is_a && !is_b) || u->nchunks != 1 ||
			    memcmp(&u->chunk[0], &r->chunk, sizeof(r->chunk)) ||
			    memcmp(u->kcv, r->kcv, KL_KCV_LEN))
				torn++;
		}
		kl_table_quiescent(r->t, 0);
	}
	kl_table_reader_unregister(r->t, 0);
	r->checks = checks;
	r->torn = torn;
	r->missing = missing;
	r->seen_a = a;
	r->seen_b = b;
	return NULL;
}

static void test_set_ue_groups_race(void **state)
{
	static const struct kl_group_ref ga = {{0x00, 0xf1, 0x10}, 1};
	struct grace *r = calloc(1, sizeof(*r));
	uint64_t writes = 0, nospc = 0;
	uint8_t muk[32];
	pthread_t th;
	double end;

	(void)state;
	assert_non_null(r);
	r->t = mk(256, 0, 1);
	memset(muk, 0x3c, sizeof(muk));
	assert_int_equal(kl_psk_init(muk, 32, &r->chunk), 1);
	assert_int_equal(kl_kcv(muk, 32, r->kcv), 0);
	for (unsigned i = 0; i < GRACE_UES; i++) {
		snprintf(r->ids[i], sizeof(r->ids[i]), "grace-%u", i);
		assert_int_equal(put_ue_str(r->t, r->ids[i], 0x3c, 32, 1), 0);
	}
	assert_int_equal(pthread_create(&th, NULL, grace_reader, r), 0);
	end = now_s() + 1.5;
	while (now_s() < end) {
		for (unsigned i = 0; i < GRACE_UES; i++) {
			int b = (writes >> 5) & 1;
			int rc = kl_table_set_ue_groups(r->t, (const uint8_t *)r->ids[i],
							(uint16_t)strlen(r->ids[i]),
							b ? NEW_G : &ga, b ? 3 : 1);

			if (rc == -ENOSPC)
				nospc++; /* reader descheduled for KL_WAIT_US; not a failure */
			else
				assert_int_equal(rc, 1);
			writes++;
		}
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	printf("set_ue_groups race: %" PRIu64 " writes (%" PRIu64 " -ENOSPC), %" PRIu64
	       " checks (%" PRIu64 " old/A, %" PRIu64 " new/B), %" PRIu64 " torn, %" PRIu64
	       " missing\n",
	       writes, nospc, r->checks, r->seen_a, r->seen_b, r->torn, r->missing);
	assert_true(r->checks > 10000);
	assert_true(r->seen_a > 0 && r->seen_b > 0);
	assert_int_equal(r->torn, 0);
	assert_int_equal(r->missing, 0);
	assert_int_equal(kl_table_count(r->t, KL_TK_UE), GRACE_UES);
	kl_table_free(r->t);
	free(r);
}

static void test_del_e2m_key(void **state)
{
	const size_t sz = sizeof(struct kl_e2m) + 4 * sizeof(struct kl_e2m_key);
	uint8_t saved[sizeof(struct kl_e2m) + 4 * sizeof(struct kl_e2m_key)];
	struct kl_table *t = mk(64, 4, 1);
	const char *imsi = "001010000000001", *other = "00102";
	const struct kl_e2m *e, *old;
	uint8_t key[32];

	(void)state;
	assert_int_equal(kl_table_reader_register(t, 0), 0);
	for (uint32_t id = 1; id <= 4; id++) {
		memset(key, (int)id, sizeof(key));
		assert_int_equal(kl_table_push_e2m(t, imsi, key, id, 1000 + id), 0);
	}
	memset(key, 0x77, sizeof(key));
	assert_int_equal(kl_table_push_e2m(t, other, key, 77, 0), 0);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 2);
	old = get1(t, KL_TK_E2M, imsi, 15); /* reader 0 holds 4,3,2,1 */
	assert_non_null(old);
	memcpy(saved, old, sz);

	/* the middle key: the rest keep their order, newest first */
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 3), 0);
	e = get1(t, KL_TK_E2M, imsi, 15);
	assert_non_null(e);
	assert_ptr_not_equal(e, old);
	assert_int_equal(e->n, 3);
	e2m_expect(&e->keys[0], 4, 4, 1004);
	e2m_expect(&e->keys[1], 2, 2, 1002);
	e2m_expect(&e->keys[2], 1, 1, 1001);
	kl_table_reclaim(t);
	assert_memory_equal(old, saved, sz); /* held by the reader */
	kl_table_quiescent(t, 0);
	kl_table_reclaim(t);
	assert_true(all_zero(old, sz));

	assert_int_equal(kl_table_del_e2m_key(t, imsi, 3), -ENOENT);
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 99), -ENOENT);
	assert_int_equal(kl_table_del_e2m_key(t, "00199", 1), -ENOENT);
	assert_int_equal(kl_table_del_e2m_key(t, "12a4", 1), -EINVAL);
	assert_int_equal(kl_table_del_e2m_key(t, "", 1), -EINVAL);
	assert_int_equal(kl_table_del_e2m_key(t, "1234567890123456", 1), -EINVAL);
	assert_int_equal(kl_table_del_e2m_key(t, NULL, 1), -EINVAL);
	assert_int_equal(kl_table_del_e2m_key(NULL, imsi, 1), -EINVAL);
	assert_int_equal(get1(t, KL_TK_E2M, imsi, 15) == NULL, 0);
	assert_int_equal(((const struct kl_e2m *)get1(t, KL_TK_E2M, imsi, 15))->n, 3);

	/* the ring goes on from there: a push fills it again, the oldest evicted after */
	memset(key, 5, sizeof(key));
	assert_int_equal(kl_table_push_e2m(t, imsi, key, 5, 1005), 0);
	e = get1(t, KL_TK_E2M, imsi, 15);
	assert_int_equal(e->n, 4);
	e2m_expect(&e->keys[0], 5, 5, 1005);
	e2m_expect(&e->keys[3], 1, 1, 1001);
	/* newest and oldest */
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 5), 0);
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 1), 0);
	e = get1(t, KL_TK_E2M, imsi, 15);
	assert_int_equal(e->n, 2);
	e2m_expect(&e->keys[0], 4, 4, 1004);
	e2m_expect(&e->keys[1], 2, 2, 1002);
	/* the last key takes the IMSI with it */
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 4), 0);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 2);
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 2), 0);
	assert_null(get1(t, KL_TK_E2M, imsi, 15));
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 1);
	assert_int_equal(kl_table_del_e2m_key(t, imsi, 2), -ENOENT);
	e = get1(t, KL_TK_E2M, other, 5); /* the other IMSI is untouched */
	assert_non_null(e);
	assert_int_equal(e->n, 1);
	e2m_expect(&e->keys[0], 0x77, 77, 0);
	/* a deleted IMSI comes back as new */
	assert_int_equal(kl_table_push_e2m(t, imsi, key, 6, 0), 0);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 2);
	assert_int_equal(kl_table_del_e2m_key(t, other, 77), 0);
	assert_int_equal(kl_table_count(t, KL_TK_E2M), 1);
	kl_table_quiescent(t, 0);
	kl_table_free(t);
}

static void test_get_group(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	struct kl_group_ref ref = {{0x00, 0xf1, 0x10}, 0x1234}, other = {{0x00, 0xf1, 0x10}, 0x1235};
	struct kl_group g, out;

	(void)state;
	memset(&g, 0, sizeof(g));
	memset(g.current.key, 0xc1, 16);
	g.current.valid_from = 100ull << 32;
	g.current.valid_to = 200ull << 32;
	g.current.msk_id = 0x12340001;
	memset(g.next.key, 0xc2, 16);
	g.next.valid_from = 200ull << 32;
	g.next.valid_to = 300ull << 32;
	g.next.msk_id = 0x12340002;
	g.has_next = 1;
	memset(&out, 0xee, sizeof(out));
	assert_int_equal(kl_table_get_group(t, &ref, &out), -ENOENT);
	assert_int_equal(kl_table_put_group(t, &ref, &g), 0);
	assert_int_equal(kl_table_get_group(t, &ref, &out), 0);
	assert_memory_equal(&out, &g, sizeof(g)); /* padding zeroed too */
	assert_int_equal(kl_table_get_group(t, &other, &out), -ENOENT);
	assert_int_equal(kl_table_get_group(t, NULL, &out), -EINVAL);
	assert_int_equal(kl_table_get_group(t, &ref, NULL), -EINVAL);
	assert_int_equal(kl_table_get_group(NULL, &ref, &out), -EINVAL);

	/* a rotation is what the next read sees */
	memcpy(&g.current, &g.next, sizeof(g.current));
	memset(&g.next, 0, sizeof(g.next));
	g.has_next = 0;
	assert_int_equal(kl_table_put_group(t, &ref, &g), 1);
	assert_int_equal(kl_table_get_group(t, &ref, &out), 0);
	assert_memory_equal(&out, &g, sizeof(g));
	assert_int_equal(out.current.msk_id, 0x12340002);
	kl_memzero(&out, sizeof(out));
	kl_table_free(t);
}

/* ---- dh public values and the s2s PSK ------------------------------------------------------------ */

/* The expected values, computed here with OpenSSL's HMAC and EVP X25519 directly (not through
 * kl_derive or kl_dh_public): P = X25519(HMAC-SHA-256(Kx, FF07 || "dh-x25519" || 0009), 9). */
static void ref_kdf(const uint8_t *key, size_t klen, uint8_t fc2, const char *p, uint8_t out[32])
{
	uint8_t s[64];
	size_t n = strlen(p);
	unsigned ol = 32;

	s[0] = 0xFF;
	s[1] = fc2;
	memcpy(s + 2, p, n);
	s[2 + n] = 0;
	s[3 + n] = (uint8_t)n;
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, s, n + 4, out, &ol));
}

static void ref_pub(const uint8_t *muk, size_t len, uint8_t pub[32])
{
	uint8_t sc[32];
	size_t n = 32;
	EVP_PKEY *k;

	ref_kdf(muk, len, 0x07, "dh-x25519", sc);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sc, 32);
	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
	EVP_PKEY_free(k);
}

static const struct kl_ue *ue_of(struct kl_table *t, const char *id)
{
	return get1(t, KL_TK_UE, id, (uint16_t)strlen(id));
}

/* A dh UE carries P = X25519(KDF(MUK, FF07, "dh-x25519"), 9) in its entry, whatever wrote it:
 * a put (1- and 2-chunk MUK), a bulk put, a services change (1-chunk: from the chunk state;
 * 2-chunk: refused, the entry unchanged), a groups change (kept); losing dh loses it; the dh
 * UEs' maximum is its own. */
static void test_dh_pub(void **state)
{
	char name[16];
	struct kl_table_params p = { .max_ues = 16, .max_readers = 1, .socket_id = -1,
				     .max_ues_dh = 3 };
	const struct kl_group_ref g = { { 0, 0xF1, 0x10 }, 1 };
	uint8_t muk[40], want[32], want40[32], got[32];
	struct kl_ue_put v = { .id = (const uint8_t *)"d2", .id_len = 2, .muk_len = 32,
			       .services = KL_SVC(DH) | KL_SVC(MBMS) };
	struct kl_table *t;
	int rc;

	(void)state;
	table_name(name, sizeof(name));
	p.name = name;
	t = kl_table_create(&p);
	assert_non_null(t);
	for (unsigned i = 0; i < sizeof(muk); i++)
		muk[i] = (uint8_t)(0x30 + 7 * i);
	ref_pub(muk, 32, want);
	ref_pub(muk, 40, want40);
	v.muk = muk;
	/* bulk put with dh; a put without it has none */
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_int_equal(rc, 0);
	assert_non_null(kl_ue_dh_pub(ue_of(t, "d2")));
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "d2")), want, 32);
	assert_int_equal(kl_table_get_ue_dh_pub(t, (const uint8_t *)"d2", 2, got), 0);
	assert_memory_equal(got, want, 32);
	assert_int_equal(kl_table_put_ue(t, (const uint8_t *)"u1", 2, muk, 32, &g, 1), 0);
	assert_null(kl_ue_dh_pub(ue_of(t, "u1")));
	assert_null(kl_ue_dh_pub(NULL));
	assert_int_equal(kl_table_get_ue_dh_pub(t, (const uint8_t *)"u1", 2, got), -ENODATA);
	assert_int_equal(kl_table_get_ue_dh_pub(t, (const uint8_t *)"zz", 2, got), -ENOENT);
	assert_int_equal(kl_table_get_ue_dh_pub(t, (const uint8_t *)"u1", 2, NULL), -EINVAL);
	/* services change: gets P from its chunk state, keeps it over a groups change, loses it */
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, KL_SVC(DH)), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "u1")), want, 32);
	assert_memory_equal(ue_of(t, "u1")->chunk, ue_of(t, "d2")->chunk, sizeof(struct kl_psk_chunk));
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"u1", 2, NULL, 0), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "u1")), want, 32);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, KL_SVC_ALL), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "u1")), want, 32);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, KL_SVC(HM)), 1);
	assert_null(kl_ue_dh_pub(ue_of(t, "u1")));
	assert_int_equal(ue_of(t, "u1")->services, KL_SVC(HM));
	/* another MUK, another P */
	v.muk_len = 31;
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_int_equal(rc, 1);
	assert_memory_not_equal(kl_ue_dh_pub(ue_of(t, "d2")), want, 32);
	v.muk_len = 32;
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "d2")), want, 32);
	/* a 40-byte MUK: P from the whole MUK; a services change cannot add dh to such a UE */
	v.id = (const uint8_t *)"d40";
	v.id_len = 3;
	v.muk_len = 40;
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_int_equal(ue_of(t, "d40")->nchunks, 2);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "d40")), want40, 32);
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"d40", 3, &g, 1), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "d40")), want40, 32);
	assert_int_equal(kl_table_put_ue_exp(t, (const uint8_t *)"m40", 3, muk, 40, NULL, 0, 0), 0);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"m40", 3, KL_SVC(DH)),
			 -EOPNOTSUPP);
	assert_int_equal(ue_of(t, "m40")->services, KL_SVC_DEFAULT);
	assert_null(kl_ue_dh_pub(ue_of(t, "m40")));
	/* the dh maximum (3): d2, d40, then one more; the next is refused, others still go in */
	v.id = (const uint8_t *)"d3";
	v.id_len = 2;
	v.muk_len = 32;
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	v.id = (const uint8_t *)"d4";
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 0);
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, KL_SVC(DH)), -ENOSPC);
	assert_null(kl_ue_dh_pub(ue_of(t, "u1")));
	assert_int_equal(kl_table_put_ue(t, (const uint8_t *)"u5", 2, muk, 32, NULL, 0), 0);
	/* a replacement of a dh UE needs no more room; a delete or losing dh frees it */
	v.id = (const uint8_t *)"d3";
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_int_equal(rc, 1);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"d3", 2, KL_SVC(MBMS)), 1);
	assert_int_equal(kl_table_set_ue_services(t, (const uint8_t *)"u1", 2, KL_SVC(DH)), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "u1")), want, 32);
	assert_int_equal(kl_table_del(t, KL_TK_UE, (const uint8_t *)"d2", 2), 0);
	v.id = (const uint8_t *)"d4";
	assert_int_equal(kl_table_put_ue_bulk(t, &v, 1, &rc), 1);
	assert_memory_equal(kl_ue_dh_pub(ue_of(t, "d4")), want, 32);
	kl_table_free(t);
}

/* A pair entry holds the chunk states of KDF(K(VLRa,VLRb), FF09, "s2s"); a new key, new states. */
static void test_pair_s2s(void **state)
{
	struct kl_table *t = mk(8, 0, 1);
	struct kl_psk_chunk want;
	const struct kl_psk_chunk *ch = NULL;
	uint8_t key[32], psk[32];
	unsigned n = 0;

	(void)state;
	memset(key, 0x5a, sizeof(key));
	ref_kdf(key, 32, 0x09, "s2s", psk);
	assert_int_equal(kl_psk_init(psk, 32, &want), 1);
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"vlr-b", 5, key, 32, 0), 0);
	kl_pair_s2s_psk(get1(t, KL_TK_PAIR, "vlr-b", 5), &ch, &n);
	assert_int_equal(n, 1);
	assert_non_null(ch);
	assert_memory_equal(ch, &want, sizeof(want));
	key[5] ^= 0x80;
	assert_int_equal(kl_table_put_pair(t, (const uint8_t *)"vlr-b", 5, key, 32, 0), 1);
	kl_pair_s2s_psk(get1(t, KL_TK_PAIR, "vlr-b", 5), &ch, &n);
	assert_memory_not_equal(ch, &want, sizeof(want));
	kl_table_free(t);
}

/* ---- 7. 1 M UEs (stress) ------------------------------------------------------------------------------ */

/* 1 M by default; KL_TABLE_UES=10000000 measures the 10 M target (needs ~3 GB). */
static uint32_t big_ues = 1000000u;
#define BIG_UES big_ues

static void big_id(char *buf, size_t cap, uint32_t i)
{
	snprintf(buf, cap, "ue%07u@ims.mnc001.mcc001.3gppnetwork.org", i);
}

static void test_million(void **state)
{
	struct kl_table_params p = {
		.name = "big", .max_ues = BIG_UES, .max_groups = 1024, .max_emses = 1024,
		.max_imsis = 1024, .max_appids = 1024, .max_readers = 4, .socket_id = -1,
	};
	struct kl_table *t;
	uint8_t muk[32];
	char id[64];
	double t0 = now_s(), t1;
	uint64_t bytes, found = 0;

	(void)state;
	t = kl_table_create(&p);
	assert_non_null(t);
	for (uint32_t i = 0; i < BIG_UES; i++) {
		struct kl_group_ref g[2] = {{{0x00, 0xf1, 0x10}, (uint16_t)i},
					    {{0x00, 0xf1, 0x10}, (uint16_t)(i + 1)}};

		big_id(id, sizeof(id), i);
		memcpy(muk, &i, sizeof(i));
		memset(muk + 4, 0x5c, sizeof(muk) - 4);
		if (kl_table_put_ue(t, (const uint8_t *)id, (uint16_t)strlen(id), muk, 32, g, 2))
			fail_msg("put UE %u", i);
	}
	t1 = now_s();
	assert_int_equal(kl_table_count(t, KL_TK_UE), BIG_UES);
	bytes = kl_table_memory(t);
	printf("table: %u UEs, %" PRIu64 " bytes, %.1f bytes per UE (filled in %.2f s)\n", BIG_UES,
	       bytes, (double)bytes / BIG_UES, t1 - t0);

	/* a sample in bursts of 64, contents checked */
	for (uint32_t base = 0; base < BIG_UES; base += 64 * 997) {
		char ids[64][64];
		struct kl_table_key keys[64];
		const void *out[64];
		unsigned n = 0;

		for (uint32_t i = base; i < base + 64 && i < BIG_UES; i++, n++) {
			big_id(ids[n], sizeof(ids[n]), i);
			keys[n] = (struct kl_table_key){(const uint8_t *)ids[n], (uint16_t)strlen(ids[n])};
		}
		assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, keys, n, out), n);
		for (unsigned j = 0; j < n; j++) {
			const struct kl_ue *u = out[j];

			assert_int_equal(u->ngroups, 2);
			assert_int_equal(u->nchunks, 1);
			assert_int_equal(u->groups[0].group, (uint16_t)(base + j));
			found++;
		}
	}
	printf("table: %" PRIu64 " sampled UEs found\n", found);
	assert_true(found > 1000);
	if (bytes > 256ull * BIG_UES)
		fail_msg("%.1f bytes per UE exceeds 256", (double)bytes / BIG_UES);
	kl_table_free(t);
}

/* Bulk writes: every entry gets its own result; a bad one does not stop the rest. */
static void test_bulk(void **state)
{
	struct kl_table_params p = { .name = "bulk", .max_ues = 600, .max_readers = 1, .socket_id = -1 };
	static struct kl_ue_put v[700];
	static char ids[700][40];
	static int rc[700];
	uint8_t muk[32];
	struct kl_group_ref g = { { 0x00, 0xf1, 0x10 }, 9 };
	struct kl_table *t;
	struct kl_table_key k;
	const void *out;

	(void)state;
	memset(muk, 0x42, sizeof(muk));
	t = kl_table_create(&p);
	assert_non_null(t);
	for (unsigned i = 0; i < 700; i++) {
		snprintf(ids[i], sizeof(ids[i]), "bulk%u@ims.example", i);
		v[i] = (struct kl_ue_put){ .id = (const uint8_t *)ids[i], .muk = muk,
					   .groups = &g, .id_len = (uint16_t)strlen(ids[i]),
					   .muk_len = 32, .ngroups = 1 };
	}
	v[5].muk_len = 0;   /* invalid */
	v[6].id_len = 0;    /* invalid */
	v[7] = v[8];	    /* the same UE twice: add, then replace */
	assert_int_equal(kl_table_put_ue_bulk(t, v, 700, rc), 601); /* 600 added + 1 replaced */
	assert_int_equal(rc[5], -EINVAL);
	assert_int_equal(rc[6], -EINVAL);
	assert_int_equal(rc[7], 0);
	assert_int_equal(rc[8], 1);
	for (unsigned i = 603; i < 700; i++) /* the 600th distinct UE is v[602] */
		assert_int_equal(rc[i], -ENOSPC);
	assert_int_equal(kl_table_count(t, KL_TK_UE), 600);
	k = (struct kl_table_key){ .id = (const uint8_t *)ids[100], .len = (uint16_t)strlen(ids[100]) };
	assert_int_equal(kl_table_lookup_bulk(t, KL_TK_UE, &k, 1, &out), 1);
	assert_int_equal(((const struct kl_ue *)out)->groups[0].group, 9);
	kl_table_free(t);
}

/* ---- MUK expiry ------------------------------------------------------------------------------- */

static void test_ue_expiry(void **state)
{
	struct kl_table *t = mk(64, 0, 1);
	const uint64_t exp = (uint64_t)3900000000u << 32, exp2 = (uint64_t)3900000600u << 32;
	struct kl_group_ref g[2] = {{{0x00, 0xf1, 0x10}, 1}, {{0x00, 0xf1, 0x10}, 2}}, gg[4];
	const char *ids[3] = {"exp-1", "exp-2", "exp-3"};
	struct kl_ue_put v[3];
	uint8_t muk[64], kcv[KL_KCV_LEN];
	const struct kl_ue *u;
	uint64_t e = 1;
	unsigned ng = 9;
	int rc[3];

	(void)state;
	memset(muk, 0x42, sizeof(muk));
	/* put_ue: never expires */
	assert_int_equal(put_ue_str(t, "never", 0x11, 32, 2), 0);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"never", 5, &e), 0);
	assert_true(e == 0);
	u = get1(t, KL_TK_UE, "never", 5);
	assert_true(u->expires == 0);

	/* put_ue_exp: 1- and 2-chunk MUKs keep their expiry next to the other fields */
	assert_int_equal(kl_table_put_ue_exp(t, (const uint8_t *)"muk1", 4, muk, 32, g, 2, exp), 0);
	assert_int_equal(kl_table_put_ue_exp(t, (const uint8_t *)"muk2", 4, muk, 64, g, 1, exp2), 0);
	u = get1(t, KL_TK_UE, "muk1", 4);
	assert_true(u->expires == exp);
	assert_int_equal(u->ngroups, 2);
	assert_int_equal(u->nchunks, 1);
	u = get1(t, KL_TK_UE, "muk2", 4);
	assert_true(u->expires == exp2);
	assert_int_equal(u->ngroups, 1);
	assert_int_equal(u->nchunks, 2);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"muk2", 4, &e), 0);
	assert_true(e == exp2);
	/* kl_table_get_ue is unchanged by the expiry */
	assert_int_equal(kl_table_get_ue(t, (const uint8_t *)"muk1", 4, gg, &ng, kcv), 0);
	assert_int_equal(ng, 2);
	assert_int_equal(gg[1].group, 2);

	/* set_ue_groups keeps the expiry (and MUK) */
	assert_int_equal(kl_table_set_ue_groups(t, (const uint8_t *)"muk1", 4, g, 1), 1);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"muk1", 4, &e), 0);
	assert_true(e == exp);
	u = get1(t, KL_TK_UE, "muk1", 4);
	assert_int_equal(u->ngroups, 1);
	assert_int_equal(u->nchunks, 1);
	/* a replacement takes its own expiry: put_ue clears it, put_ue_exp sets a new one */
	assert_int_equal(kl_table_put_ue(t, (const uint8_t *)"muk1", 4, muk, 32, g, 2), 1);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"muk1", 4, &e), 0);
	assert_true(e == 0);
	assert_int_equal(kl_table_put_ue_exp(t, (const uint8_t *)"muk1", 4, muk, 32, g, 2, exp2), 1);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"muk1", 4, &e), 0);
	assert_true(e == exp2);

	/* bulk: per entry, 0 when left out */
	for (unsigned i = 0; i < 3; i++)
		v[i] = (struct kl_ue_put){.id = (const uint8_t *)ids[i], .id_len = 5, .muk = muk,
					  .muk_len = 16, .groups = g, .ngroups = 2};
	v[1].expires = exp;
	assert_int_equal(kl_table_put_ue_bulk(t, v, 3, rc), 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)ids[i], 5, &e), 0);
		assert_true(e == (i == 1 ? exp : 0));
	}

	/* bad input */
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"absent", 6, &e), -ENOENT);
	assert_int_equal(kl_table_get_ue_expiry(NULL, (const uint8_t *)"muk1", 4, &e), -EINVAL);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"muk1", 4, NULL), -EINVAL);
	assert_int_equal(kl_table_get_ue_expiry(t, NULL, 4, &e), -EINVAL);
	assert_int_equal(kl_table_get_ue_expiry(t, (const uint8_t *)"muk1", 0, &e), -EINVAL);
	assert_int_equal(kl_table_put_ue_exp(t, (const uint8_t *)"x", 1, muk, 0, g, 1, exp), -EINVAL);
	kl_table_free(t);
}

int main(int argc, char **argv)
{
	char prefix[64], mem[16], *eal[] = {
		argv[0], "--no-huge", "--no-shconf", "-m", mem, "--no-pci", "--no-telemetry",
		"--file-prefix", prefix, "-l", "0-1", "--log-level=error",
	};
	const char *env = getenv("KL_TABLE_STRESS"), *ues = getenv("KL_TABLE_UES");

	if (ues && strtoul(ues, NULL, 10) >= 1000 && strtoul(ues, NULL, 10) <= 50000000)
		big_ues = (uint32_t)strtoul(ues, NULL, 10);
	snprintf(mem, sizeof(mem), "%u", big_ues / 1000000u * 300u + 1800u);
	int stress = env && env[0] == '1', rc;
	const struct CMUnitTest fast[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_psk_states),
		cmocka_unit_test(test_ue),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_emse),
		cmocka_unit_test(test_appid),
		cmocka_unit_test(test_pair),
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_dh_pub),
		cmocka_unit_test(test_pair_s2s),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_einval),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_lookup_bad_input),
		cmocka_unit_test(test_e2m_ring),
		cmocka_unit_test(test_reclaim),
		cmocka_unit_test(test_stuck_reader),
		cmocka_unit_test(test_rcu_race),
		cmocka_unit_test(test_set_ue_groups),
		cmocka_unit_test(test_set_ue_groups_race),
		cmocka_unit_test(test_del_e2m_key),
		cmocka_unit_test(test_get_group),
		cmocka_unit_test(test_ue_expiry),
	};
	const struct CMUnitTest big[] = {
		cmocka_unit_test(test_million),
	};

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--stress"))
			stress = 1;
	snprintf(prefix, sizeof(prefix), "kl_table_test_%d", (int)getpid());
	kl_eal_rundir_cleanup_at_exit(); /* no /var/run/dpdk/<prefix> left behind */
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = stress ? cmocka_run_group_tests_name("table-stress", big, NULL, NULL)
		    : cmocka_run_group_tests_name("table", fast, NULL, NULL);
	rte_eal_cleanup();
	return rc;
}
