/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst --kind naf: N external devices fetch Ks_local_MT from the NAF Key Center
 * (PROTOCOL.md section 11) at once over HTTPS (libcurl multi, HTTP/1.1), each with its own
 * client certificate (a make-test-pki.sh PKI: device i = the i-th "device" entry of pki.json)
 * and its own connection. Device i asks for the B-TID of line (first_ue + i) % lines of the BSF
 * simulator's UE file; every key is checked against the MT side's derivation from that line
 * (Milenage -> CK, IK -> Ks_(ext)_NAF -> Ks_local_MT, kl_naf_mt), computed before t0.
 *
 * Connections: keep-alive (default: one TLS handshake per device, then its requests on that
 * connection), or full_handshake (every request on a new connection with a full handshake: no
 * connection reuse, no TLS session resumption). The summary has the shape of the other kinds'
 * (keyline-report reads it) and a "naf" member: keys/s, handshakes, answers by HTTP status.
 */
#ifndef KL_BURST_NAF_H
#define KL_BURST_NAF_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct kl_burst_naf_config {
	const char *url;	/* https://HOST:PORT */
	const char *ca;		/* the Key Center's server CA (PEM); NULL: PKI/server-ca.pem */
	const char *pki;	/* make-test-pki.sh OUTDIR (pki.json) */
	const char *ue_file;	/* keyline-hss-sim bsf --ue-file */
	uint8_t naf_id[255];	/* the NAF_ID the MT uses (sent in every request) */
	size_t naf_len;
	uint32_t devices;	/* 0: every device of the PKI */
	uint32_t requests;	/* per device, one after the other (0: 1) */
	uint32_t first_ue;	/* device i uses UE file line (first_ue + i) % lines */
	int full_handshake;
	int ue_per_request;	/* request k of device i asks for line (first_ue + i + k * devices)
				 * % lines (a B-TID new to the Zn cache while k * devices < lines) */
	uint32_t timeout_ms;	/* one request (0: 10000) */
	uint32_t interval_ms;	/* interval lines (0: none) */
	uint32_t fail_list_max;
	int server_pid;		/* > 0: its CPU time over the run goes into the summary (the Key
				 * Center's cost per key and per handshake, whoever bounds the run) */
};

/**
 * Run: load the PKI and the UE file, derive every expected key, then the timed run. Interval
 * lines go to out; *summary gets the summary (the caller dumps it). stop ends the run early
 * (unfinished devices fail as interrupted).
 * @return 0 (the run happened: *exit_code says whether every key was verified, 0 or 1), 2 for
 * a bad configuration (err set), 1 for a setup failure (err set).
 */
int kl_burst_naf_run(const struct kl_burst_naf_config *c, volatile sig_atomic_t *stop, FILE *out,
		     json_t **summary, int *exit_code, char *err, size_t errlen);

#endif
