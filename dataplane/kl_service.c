/* SPDX-License-Identifier: BSD-3-Clause */
/* The services a UE may use (KL_SERVICE_LIST in kl_table.h): names, parsing and formatting. No
 * DPDK: built into the key table and into kl_popgen (tools that do not link DPDK). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kl_table.h"

static const char *const service_names[KL_SVC__COUNT] = {
#define KL_X(e, n, d) n,
	KL_SERVICE_LIST(KL_X)
#undef KL_X
};

const char *kl_service_name(unsigned b)
{
	return b < KL_SVC__COUNT ? service_names[b] : NULL;
}

int kl_service_parse(const char *s, uint8_t *bits, unsigned *bad)
{
	uint8_t out = 0;
	unsigned pos = 0;

	if (bad)
		*bad = 0;
	if (!s || !bits)
		return -EINVAL;
	if (!strcmp(s, "all")) {
		*bits = KL_SVC_ALL;
		return 0;
	}
	for (const char *p = s;; pos++) {
		size_t n = strcspn(p, ",");
		unsigned b = 0;

		while (b < KL_SVC__COUNT && !(strlen(service_names[b]) == n &&
					      !strncmp(p, service_names[b], n)))
			b++;
		if (b == KL_SVC__COUNT || (out & (1u << b))) {
			if (bad)
				*bad = pos + 1;
			return -EINVAL;
		}
		out |= (uint8_t)(1u << b);
		if (!p[n])
			break;
		p += n + 1;
	}
	*bits = out;
	return 0;
}

char *kl_service_format(uint8_t bits, char *out, size_t cap)
{
	size_t o = 0;

	if (!out || !cap)
		return out;
	out[0] = 0;
	for (unsigned b = 0; b < KL_SVC__COUNT; b++)
		if (bits & (1u << b)) {
			int w = snprintf(out + o, cap - o, "%s%s", o ? "," : "", service_names[b]);

			if (w < 0 || (size_t)w >= cap - o)
				break;
			o += (size_t)w;
		}
	return out;
}
