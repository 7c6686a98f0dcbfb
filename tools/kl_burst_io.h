/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * keyline-burst I/O front ends around the shared core (kl_burst.h): a DPDK ethdev port (frames
 * built and parsed here, the server's MAC found by ARP or NDP, ARP/NDP for our own addresses
 * answered) and kernel UDP sockets (sendmmsg/recvmmsg). Both run the same loop: receive and
 * verify answers, expire timers, sign and send what is due.
 *
 * The frame code is plain C on byte buffers (no DPDK), so tests can check it against the server's
 * own L2-L4 code (kl_net).
 */
#ifndef KL_BURST_IO_H
#define KL_BURST_IO_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "kl_burst.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Addresses of a run. IPv4 addresses use the first 4 bytes. */
struct kl_burst_net {
	int v6;
	uint8_t server_ip[16];
	uint8_t client_ip[16]; /* base: source k is client_ip + k */
	int have_client_ip;
	uint8_t server_mac[6];
	int have_server_mac;
	uint16_t server_port;
	uint8_t peer_server_ip[16]; /* hm: where UEbs fetch K*b (kl_burst_dgram.server 1) */
	uint16_t peer_server_port;
	int have_peer;		    /* otherwise the server plays both roles */
	uint16_t client_port; /* 0: DPDK uses 40000, sockets an ephemeral port */
	uint32_t sources;
	uint32_t link_timeout_s; /* DPDK: wait for the link (memif connects to the server) */
	uint32_t hold_s;	 /* DPDK: keep the port open this long after the run */
	uint32_t resolve_timeout_s; /* DPDK: ARP / NDP for the server */
	uint16_t queues;
	/* several servers (socket io; kl_burst_config.servers): server k at servers_ip[k],
	 * servers_port[k]; server 0 is also server_ip / server_port. 0 or 1: the one server */
	uint32_t nservers;
	uint8_t servers_ip[KL_BURST_SERVERS_MAX][16];
	uint16_t servers_port[KL_BURST_SERVERS_MAX];
};

/* ---- frames (no DPDK) ------------------------------------------------------------------------- */

struct kl_burst_l2 {
	struct kl_burst_net net;
	uint8_t mac[6];
	uint16_t ip_id;
	int server_mac_known;
};

#define KL_BURST_FRAME_HDR_V4 42 /* Ethernet + IPv4 + UDP */
#define KL_BURST_FRAME_HDR_V6 62

enum kl_burst_rx {
	KL_BURST_RX_OTHER,   /* not for us, or nothing we handle */
	KL_BURST_RX_BAD,     /* for us but truncated or with a bad checksum */
	KL_BURST_RX_ANSWER,  /* UDP from the server's address and port to one of ours */
	KL_BURST_RX_REPLY,   /* ARP request / neighbour solicitation for one of our addresses:
			      * the frame was rewritten into the answer, send it */
	KL_BURST_RX_LEARNED, /* ARP reply / neighbour advertisement from the server: MAC learned */
};

/** Source address k (0..sources-1) of a run. */
void kl_burst_source_ip(const struct kl_burst_net *n, uint32_t k, uint8_t ip[16]);
/** Index of a source address, or -1 when it is not one of ours. */
int kl_burst_source_index(const struct kl_burst_net *n, const uint8_t *ip);

/** Frame a request from source k. @return the frame length, 0 when cap is too small. */
uint16_t kl_burst_frame_udp(struct kl_burst_l2 *l, uint32_t source, const uint8_t *payload,
			    uint16_t plen, uint8_t *out, uint16_t cap);
/** ARP request (IPv4) or neighbour solicitation (IPv6) for the server's address. */
uint16_t kl_burst_frame_resolve(const struct kl_burst_l2 *l, uint8_t *out, uint16_t cap);
/**
 * Classify a received frame f[0..*len) (buffer of cap bytes). ANSWER: the UDP payload is at
 * *poff, *plen bytes. REPLY: f was rewritten, *len updated. Never reads outside *len.
 */
enum kl_burst_rx kl_burst_frame_rx(struct kl_burst_l2 *l, uint8_t *f, uint16_t *len, uint16_t cap,
				   uint16_t *poff, uint16_t *plen);

/* ---- run loops -------------------------------------------------------------------------------- */

struct kl_burst_run {
	FILE *out;		     /* interval lines; NULL = none */
	volatile sig_atomic_t *stop; /* set by a signal handler: finish as interrupted */
	json_t *io;		     /* set: the front end's own counters for the summary */
	uint64_t end_ns;	     /* set: the clock at the end, for kl_burst_summary */
};

/**
 * DPDK front end (EAL initialised by the caller): port 0, one RX/TX queue pair.
 * @return 0 when the run happened (see kl_burst_exit_code), -1 when setup failed (err says why).
 */
int kl_burst_run_dpdk(struct kl_burst *b, const struct kl_burst_net *net, struct kl_burst_run *run,
		      char *err, size_t errlen);
/** Kernel UDP socket front end: one socket per source address. Same returns. */
int kl_burst_run_socket(struct kl_burst *b, const struct kl_burst_net *net,
			struct kl_burst_run *run, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
