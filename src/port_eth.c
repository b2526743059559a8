/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * port_eth.c: ethdev ports (PCI PFs, SR-IOV VFs, vdevs such as net_tap).
 *
 * The device is probed by name at start-up (the EAL got only the PCI
 * addresses the config names), given the configured rx queues and one tx
 * queue per datapath lcore where the device has that many, and put in
 * promiscuous mode: a bridge port must see every frame.
 */
#include <errno.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_pci.h>

#include "vhd.h"

bool vhd_eth_dev_name(const char *devargs, char *name, size_t len)
{
	struct rte_pci_addr addr;
	char buf[VHD_DEVARGS_MAX], *comma;

	snprintf(buf, sizeof(buf), "%s", devargs);
	comma = strchr(buf, ',');
	if (comma)
		*comma = '\0';
	if (rte_pci_addr_parse(buf, &addr) == 0) {
		rte_pci_device_name(&addr, name, len);
		return true;
	}
	snprintf(name, len, "%s", buf);
	return false;
}

int vhd_eth_port_start(struct vhd_port *p, const struct vhd_port_conf *pc)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	char name[RTE_ETH_NAME_MAX_LEN];
	uint16_t rxd = pc->rx_desc, txd = pc->tx_desc;
	int rc;

	vhd_eth_dev_name(pc->devargs, name, sizeof(name));
	rc = rte_eth_dev_get_port_by_name(name, &p->eth_id);
	if (rc < 0) {
		VHD_LOG(ERR, port, "port %s: no ethdev '%s' (devargs %s)",
			p->name, name, pc->devargs);
		return -ENODEV;
	}
	rc = rte_eth_dev_info_get(p->eth_id, &info);
	if (rc < 0)
		goto fail;
	if (pc->queues > info.max_rx_queues) {
		VHD_LOG(ERR, port, "port %s: %u rx queues asked, device has %u",
			p->name, pc->queues, info.max_rx_queues);
		return -EINVAL;
	}
	p->n_rxq = pc->queues;
	p->n_txq = RTE_MIN(vhd_n_lcores, info.max_tx_queues);
	p->txq_shared = p->n_txq < vhd_n_lcores;
	if (p->n_rxq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP) &
		    info.flow_type_rss_offloads;
	}
	/* No MBUF_FAST_FREE: flooded mbufs have refcnt > 1. */
	rc = rte_eth_dev_configure(p->eth_id, p->n_rxq, p->n_txq, &conf);
	if (rc < 0)
		goto fail;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->eth_id, &rxd, &txd);
	if (rc < 0)
		goto fail;
	for (uint16_t q = 0; q < p->n_rxq; q++) {
		rc = rte_eth_rx_queue_setup(p->eth_id, q, rxd,
					    rte_eth_dev_socket_id(p->eth_id),
					    NULL, vhd_pool);
		if (rc < 0)
			goto fail;
	}
	for (uint16_t q = 0; q < p->n_txq; q++) {
		rc = rte_eth_tx_queue_setup(
		    p->eth_id, q, txd, rte_eth_dev_socket_id(p->eth_id), NULL);
		if (rc < 0)
			goto fail;
	}
	rc = rte_eth_dev_start(p->eth_id);
	if (rc < 0)
		goto fail;
	rc = rte_eth_promiscuous_enable(p->eth_id);
	if (rc < 0 && rc != -ENOTSUP)
		VHD_LOG(WARNING, port, "port %s: promiscuous mode: %s", p->name,
			rte_strerror(-rc));
	VHD_LOG(INFO, port, "port %s: ethdev %s (port %u), %u rxq, %u txq%s",
		p->name, name, p->eth_id, p->n_rxq, p->n_txq,
		p->txq_shared ? " (shared, locked)" : "");
	return 0;
fail:
	VHD_LOG(ERR, port, "port %s: ethdev %s setup failed: %s", p->name, name,
		rte_strerror(-rc));
	return rc;
}

void vhd_eth_port_stop(struct vhd_port *p)
{
	int rc = rte_eth_dev_stop(p->eth_id);

	if (rc < 0)
		VHD_LOG(WARNING, port, "port %s: stop: %s", p->name,
			rte_strerror(-rc));
	rte_eth_dev_close(p->eth_id);
}
