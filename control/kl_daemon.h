/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined assembled from a validated config: key table, durable store (loaded before anything
 * serves), MSK rotation (every configured group has its current MSK before the workers start),
 * the HSS-side Diameter feed (started once the table is filled, before "keylined: ready"),
 * workers (engine, rate limiter, I/O), ports or sockets, admin socket, telemetry and /metrics;
 * the control loop; the orderly stop.
 * main() (keylined.c) only initialises EAL, reads arguments and calls these.
 *
 * Diameter feed: its requests are handled on the control thread (kl_diameter_poll), one store
 * batch per poll: each handler checks what the key table could refuse, stages the store write
 * and queues the table write; the commit makes the batch durable and only then applies the
 * queued table writes in order, so the table never serves what is not durable and a failed
 * commit leaves it untouched (every request of the batch is answered
 * DIAMETER_UNABLE_TO_COMPLY). Without a store the handlers write the table directly. A MUK
 * push keeps the UE's key groups; a UE-GROUPS push replaces them (unknown UE, more than
 * KL_TABLE_UE_GROUPS or a repeated group: refused); removing UE-GROUPS with a list drops those
 * groups; removing E2M with a key id drops that key only; e2m pushes keep the newest
 * table.e2m_ring keys. A MUK's KL-Expiry is accepted but not kept (the key table holds no expiry
 * for a UE).
 */
#ifndef KL_DAEMON_H
#define KL_DAEMON_H

#include <signal.h>

#include "kl_config.h"

struct kl_daemon;

struct kl_daemon_opts {
	const char *population; /* test population parameter file to import before serving, or NULL */
};

/** Exit statuses: 0 clean stop, 1 runtime failure, 2 bad configuration or arguments. */
#define KL_EXIT_OK 0
#define KL_EXIT_FAIL 1
#define KL_EXIT_CONFIG 2

/**
 * Build everything and launch the workers on EAL's worker lcores (EAL initialised).
 * @param status  set to KL_EXIT_CONFIG or KL_EXIT_FAIL on error (one message already printed)
 * @return the daemon, or NULL.
 */
struct kl_daemon *kl_daemon_start(const struct kl_config *cfg, const struct kl_daemon_opts *o,
				  int *status);

/**
 * The control loop: one poll() on every service's fd (kl_services.h: admin requests, Diameter
 * requests; 100 ms at most), each service's poll, clock sync and each service's tick (MSK rotation)
 * every second, worker supervision, until *stop becomes non-zero
 * (a signal) or a worker fails. @return KL_EXIT_OK or KL_EXIT_FAIL.
 */
int kl_daemon_run(struct kl_daemon *d, volatile sig_atomic_t *stop);

/** Stop taking packets, drain, print the final counters, free everything. */
void kl_daemon_stop(struct kl_daemon *d);

/** One "keylined: LEVEL: ..." line on stderr if the configured log level lets it through. */
void kl_daemon_logf(enum kl_config_log_level l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
