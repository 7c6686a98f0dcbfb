/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target over the Zn client's Bootstrapping-Info-Answer extraction
 * (control/diameter/kl_zn_parse.c, kl_zn_parse_bia): any bytes are a BIA's wire form. A status is always
 * set; a key only with OK, and then it is the ME-Key-Material AVP's value in the input, the
 * answer's Result-Code 2001, its expiry in the future and its IMPI a NUL-free string of
 * 1..255 bytes; anything else leaves no key. abort() only on a violated invariant.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <string.h>

#include "fuzz_common.h"
#include "kl_zn.h"

#define NOW 1800000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[KL_ZN_KEY_LEN];
	struct kl_zn_answer a;
	enum kl_zn_status st;

	memset(&a, 0xA5, sizeof(a));
	st = kl_zn_parse_bia(data, size, NOW, &a);
	FZ_CHECK((unsigned)st < KL_ZN__COUNT && st == a.status);
	if (st != KL_ZN_OK) {
		FZ_CHECK(!memcmp(a.ks_naf, zero, sizeof(zero)));
		FZ_CHECK(!a.impi[0]);
		return 0;
	}
	FZ_CHECK(a.result_code == 2001 && a.expiry > NOW && a.gba_type <= 1 && !a.cached);
	FZ_CHECK(a.impi[0] && strnlen(a.impi, sizeof(a.impi)) <= KL_ZN_IMPI_MAX);
	FZ_CHECK(memmem(data, size, a.ks_naf, KL_ZN_KEY_LEN) != NULL);
	FZ_CHECK(memmem(data, size, a.impi, strlen(a.impi)) != NULL);
	return 0;
}
