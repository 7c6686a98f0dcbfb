/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * EAL's runtime directory (/var/run/dpdk/<file-prefix> as root, else under $XDG_RUNTIME_DIR or
 * /tmp) outlives every DPDK process: rte_eal_cleanup leaves it behind, with --no-shconf and
 * --in-memory too, and telemetry unlinks its socket in it from an atexit handler. Call
 * kl_eal_rundir_cleanup_at_exit() once before rte_eal_init: atexit runs handlers in reverse
 * order of registration, so this one runs after telemetry's and after the caller's
 * rte_eal_cleanup, and removes the directory when it is empty. A directory with files in it
 * (another live process of the same prefix) stays. A process killed by a signal removes nothing:
 * whoever killed it cleans up (tests/kl_itest.py).
 */
#ifndef KL_EAL_RUNDIR_H
#define KL_EAL_RUNDIR_H

#include <stdlib.h>
#include <unistd.h>

#include <rte_eal.h>

static inline void kl_eal_rundir_remove(void)
{
	const char *d = rte_eal_get_runtime_dir();

	if (d && *d) /* empty until rte_eal_init chose it */
		rmdir(d);
}

/** @return 0, or non-zero when the handler could not be registered (the directory stays). */
static inline int kl_eal_rundir_cleanup_at_exit(void)
{
	return atexit(kl_eal_rundir_remove);
}

#endif
