/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DPDK ports for keylined: probe a device from its devargs (a virtual device such as net_memif,
 * net_tap or net_pcap, or a PCI address bound to vfio-pci), give it an mbuf pool, one RX/TX queue
 * pair per worker with RSS on the IP addresses (so one source always lands on one worker) where
 * the device supports it, TX buffers, and start it. Setup code: it may allocate and log.
 */
#ifndef KL_PORT_H
#define KL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "kl_io.h"

#define KL_PORT_MAX_QUEUES 16

struct kl_port {
	uint16_t port_id;
	uint16_t queues;
	int started;
	char name[64];
	char driver[32];
	uint8_t mac[6];
	int rss;	 /* RSS configured */
	struct rte_mempool *pool;
	struct rte_eth_dev_tx_buffer *txb[KL_PORT_MAX_QUEUES];
};

/**
 * Probe (unless EAL already did) and start the device of devargs with `queues` queue pairs.
 * @param tag  unique short name for the pool ("p0")
 * @return 0, or -errno with a one-line reason in err (port left closed).
 */
int kl_port_open(struct kl_port *p, const char *tag, const char *devargs, uint16_t queues,
		 char *err, size_t errlen);
/** Stop and close the device and free its pool and buffers (EAL cleanup detaches it). */
void kl_port_close(struct kl_port *p);

#endif
