/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keylined assembled from a validated config: key table, workers (engine, rate limiter, I/O),
 * ports or sockets, admin socket, telemetry and /metrics; the control loop; the orderly stop.
 * main() (keylined.c) only initialises EAL, reads arguments and calls these.
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
 * The control loop: admin requests, clock sync, worker supervision, until *stop becomes non-zero
 * (a signal) or a worker fails. @return KL_EXIT_OK or KL_EXIT_FAIL.
 */
int kl_daemon_run(struct kl_daemon *d, volatile sig_atomic_t *stop);

/** Stop taking packets, drain, print the final counters, free everything. */
void kl_daemon_stop(struct kl_daemon *d);

#endif
