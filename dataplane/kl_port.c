/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "kl_port.h"

#define RX_DESC 1024
#define TX_DESC 1024
#define POOL_CACHE 256

static int fail(char *err, size_t errlen, int rc, const char *fmt, const char *what)
{
	snprintf(err, errlen, fmt, what, rte_strerror(-rc));
	return rc;
}

int kl_port_open(struct kl_port *p, const char *tag, const char *devargs, uint16_t queues,
		 char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t nrx = RX_DESC, ntx = TX_DESC;
	const char *comma = strchr(devargs, ',');
	size_t nl = comma ? (size_t)(comma - devargs) : strlen(devargs);
	char pool_name[RTE_MEMPOOL_NAMESIZE];
	unsigned nb_mbufs;
	int socket, rc;

	memset(p, 0, sizeof(*p));
	if (!queues || queues > KL_PORT_MAX_QUEUES || nl == 0 || nl >= sizeof(p->name)) {
		snprintf(err, errlen, "bad device arguments or queue count");
		return -EINVAL;
	}
	memcpy(p->name, devargs, nl);
	p->queues = queues;
	if (rte_eth_dev_get_port_by_name(p->name, &p->port_id) != 0) {
		rc = rte_dev_probe(devargs);
		if (rc < 0 && rc != -EEXIST)
			return fail(err, errlen, rc, "cannot probe device %s: %s", devargs);
		if (rte_eth_dev_get_port_by_name(p->name, &p->port_id) != 0) {
			snprintf(err, errlen, "device %s: probed but no ethdev port named %s", devargs,
				 p->name);
			kl_port_close(p);
			return -ENODEV;
		}
	}
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc) {
		kl_port_close(p);
		return fail(err, errlen, rc, "port %s: no device info: %s", p->name);
	}
	snprintf(p->driver, sizeof(p->driver), "%s", info.driver_name ? info.driver_name : "?");
	if (queues > info.max_rx_queues || queues > info.max_tx_queues) {
		snprintf(err, errlen, "port %s (%s): %u queues asked, the device has %u RX / %u TX",
			 p->name, p->driver, queues, info.max_rx_queues, info.max_tx_queues);
		kl_port_close(p);
		return -EINVAL;
	}
	memset(&conf, 0, sizeof(conf));
	if (queues > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_IP)) {
		/* Hash on addresses only: a source keeps its worker, so its token bucket is whole. */
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & RTE_ETH_RSS_IP;
		p->rss = 1;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	rc = rte_eth_dev_configure(p->port_id, queues, queues, &conf);
	if (rc) {
		kl_port_close(p);
		return fail(err, errlen, rc, "port %s: configure failed: %s", p->name);
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nrx, &ntx);
	if (rc) {
		kl_port_close(p);
		return fail(err, errlen, rc, "port %s: descriptor counts: %s", p->name);
	}
	socket = rte_eth_dev_socket_id(p->port_id);
	if (socket < 0)
		socket = (int)rte_socket_id();
	/* RX rings full, TX rings full, answers in flight and every lcore's cache. */
	nb_mbufs = queues * (nrx + ntx + 4 * KL_IO_BURST) + rte_lcore_count() * POOL_CACHE + 1024;
	snprintf(pool_name, sizeof(pool_name), "kl_pool_%s", tag);
	p->pool = rte_pktmbuf_pool_create(pool_name, nb_mbufs, POOL_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!p->pool) {
		rc = -rte_errno;
		kl_port_close(p);
		return fail(err, errlen, rc, "port %s: mbuf pool: %s (give EAL more memory, -m)",
			    p->name);
	}
	for (uint16_t q = 0; q < queues; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, nrx, (unsigned)socket, NULL, p->pool);
		if (!rc)
			rc = rte_eth_tx_queue_setup(p->port_id, q, ntx, (unsigned)socket, NULL);
		if (rc) {
			kl_port_close(p);
			return fail(err, errlen, rc, "port %s: queue setup: %s", p->name);
		}
		p->txb[q] = rte_zmalloc_socket("kl_txb", RTE_ETH_TX_BUFFER_SIZE(KL_IO_BURST), 0,
					       socket);
		if (!p->txb[q] || rte_eth_tx_buffer_init(p->txb[q], KL_IO_BURST)) {
			kl_port_close(p);
			snprintf(err, errlen, "port %s: out of memory for TX buffers", p->name);
			return -ENOMEM;
		}
	}
	rc = rte_eth_dev_start(p->port_id);
	if (rc) {
		kl_port_close(p);
		return fail(err, errlen, rc, "port %s: start failed: %s", p->name);
	}
	p->started = 1;
	rc = rte_eth_macaddr_get(p->port_id, &mac);
	if (rc) {
		kl_port_close(p);
		return fail(err, errlen, rc, "port %s: no MAC address: %s", p->name);
	}
	memcpy(p->mac, mac.addr_bytes, 6);
	return 0;
}

void kl_port_close(struct kl_port *p)
{
	if (!p->name[0])
		return;
	if (rte_eth_dev_is_valid_port(p->port_id)) {
		if (p->started)
			(void)rte_eth_dev_stop(p->port_id);
		(void)rte_eth_dev_close(p->port_id);
	}
	for (unsigned q = 0; q < KL_PORT_MAX_QUEUES; q++)
		rte_free(p->txb[q]);
	rte_mempool_free(p->pool);
	memset(p, 0, sizeof(*p));
}
