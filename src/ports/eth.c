/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ports/eth.c: ethdev ports (PCI PFs, SR-IOV VFs, vdevs such as net_tap).
 *
 * The devices of the config file are probed by the EAL at start-up (it gets
 * only the PCI addresses the config names); a port added at run time is
 * hot-plugged (rte_dev_probe), and every port's device is unplugged when
 * the port is deleted, so the same devargs can come back with other
 * options. A port gets the configured rx queues and one tx queue per
 * datapath lcore where the device has that many, and promiscuous mode: a
 * bridge port must see every frame. Its rings take mbufs from the one pool
 * for good, so a port that would leave the pool short is refused.
 */
#include <errno.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>

#include "vhd.h"
#include "vhd_offload.h"

static void unplug(struct vhd_port *p);

int vhd_eth_port_start(struct vhd_port *p, const struct vhd_port_conf *pc)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	char name[RTE_ETH_NAME_MAX_LEN];
	uint16_t rxd = pc->rx_desc, txd = pc->tx_desc;
	unsigned int need, avail, room;
	struct rte_mempool *pool;
	bool pci = vhd_config_dev_name(pc->devargs, name, sizeof(name));
	int rc;

	/* The config file's devices were probed by the EAL; ours either way
	 * from here on, unplugged when the port goes. */
	if (rte_eth_dev_get_port_by_name(name, &p->eth_id) < 0) {
		rc = rte_dev_probe(pc->devargs);
		if (rc < 0) {
			/* EAL's EFAULT: no bus or driver took the name. */
			vhd_port_error(p, -rc, "cannot probe device '%s': %s%s",
				       pc->devargs,
				       rc == -EFAULT ? "no driver for it"
						     : rte_strerror(-rc),
				       pci ? " (a PCI device added at run "
					     "time needs the PCI bus: start "
					     "vhostd with -- -a ADDRESS)"
					   : "");
			return rc;
		}
		if (rte_eth_dev_get_port_by_name(name, &p->eth_id) < 0) {
			vhd_port_error(p, ENODEV,
				       "device '%s' is not an ethdev named "
				       "'%s'",
				       pc->devargs, name);
			rte_eal_hotplug_remove(pci ? "pci" : "vdev", name);
			return -ENODEV;
		}
	}
	rc = rte_eth_dev_info_get(p->eth_id, &info);
	if (rc < 0)
		goto fail;
	if (pc->queues > info.max_rx_queues) {
		vhd_port_error(p, EINVAL, "%u rx queues asked, device has %u",
			       pc->queues, info.max_rx_queues);
		rc = -EINVAL;
		goto unplug;
	}
	/* Rx rings stay full of mbufs; tx rings hold them until the NIC is
	 * done. Keep a quarter of the pool for the lcores and the guests. */
	need = pc->queues * rxd + vhd_n_lcores * txd;
	/* Its rx rings fill from the pool of the device's node. */
	pool = vhd_pool_of(rte_eth_dev_socket_id(p->eth_id));
	if (pool == NULL) {
		vhd_port_error(p, ENOMEM,
			       "no mbuf pool on node %d: raise "
			       "socket-mem",
			       rte_eth_dev_socket_id(p->eth_id));
		rc = -ENOMEM;
		goto unplug;
	}
	avail = rte_mempool_avail_count(pool);
	if (need + pool->size / 4 > avail) {
		vhd_port_error(p, ENOBUFS,
			       "its rings need %u mbufs, the pool has %u free "
			       "of %u: raise [vhostd] mbufs",
			       need, avail, pool->size);
		rc = -ENOBUFS;
		goto unplug;
	}
	if (pc->mtu < info.min_mtu || pc->mtu > info.max_mtu) {
		vhd_port_error(p, EINVAL, "mtu %u: the device takes %u to %u",
			       pc->mtu, info.min_mtu, info.max_mtu);
		rc = -EINVAL;
		goto unplug;
	}
	conf.rxmode.mtu = pc->mtu;
	room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
	/* A frame longer than one mbuf's room arrives in several. */
	if (pc->mtu + RTE_ETHER_HDR_LEN + 4 + RTE_ETHER_CRC_LEN > room) {
		if (!(info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)) {
			vhd_port_error(p, EINVAL,
				       "mtu %u: frames need more than one mbuf "
				       "and the device cannot scatter them",
				       pc->mtu);
			rc = -EINVAL;
			goto unplug;
		}
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	}
	/* The tx offloads the device has, when the port wants them; what
	 * it lacks is done in software (dp/offload.c). */
	if (pc->offloads)
		conf.txmode.offloads |=
		    info.tx_offload_capa &
		    (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |
		     RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
		     RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO);
	/* DPDK 22.11's net_tap refuses a TSO frame whose segments (MSS plus
	 * headers) are longer than its MTU without the Ethernet header, so
	 * every full-sized one: its TSO is software GSO anyway, ours does. */
	if (strcmp(info.driver_name, "net_tap") == 0)
		conf.txmode.offloads &= ~RTE_ETH_TX_OFFLOAD_TCP_TSO;
	/* Chained mbufs only where needed (a PMD may pick a slower tx path
	 * for them): jumbo frames and super-frames. Segments made for a
	 * device without are copies in one mbuf each (dp/offload.c). */
	if ((pc->mtu + RTE_ETHER_HDR_LEN + 4 > room ||
	     (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_TSO)) &&
	    (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS))
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	p->tx_multiseg =
	    (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;
	p->eth_tx_offloads = conf.txmode.offloads;
	p->tx_offl = vhd_offload_eth_caps(conf.txmode.offloads);
	/* af_packet hands over what the kernel had, partial checksums of
	 * a veth's or a local socket's frames too (dp/offload.c). */
	p->rx_csum_check = strcmp(info.driver_name, "net_af_packet") == 0;
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
					    NULL, pool);
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
	vhd_port_error(p, -rc, "ethdev %s setup failed: %s", name,
		       rte_strerror(-rc));
	rte_eth_dev_stop(p->eth_id);
unplug:
	unplug(p);
	return rc;
}

/* Close the ethdev and unplug its device (its rings' mbufs go back). */
static void unplug(struct vhd_port *p)
{
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;
	int rc;

	if (rte_eth_dev_info_get(p->eth_id, &info) == 0)
		dev = info.device;
	rte_eth_dev_close(p->eth_id);
	if (dev && (rc = rte_dev_remove(dev)) < 0)
		VHD_LOG(WARNING, port, "port %s: unplug: %s", p->name,
			rte_strerror(-rc));
}

void vhd_eth_port_stop(struct vhd_port *p)
{
	int rc = rte_eth_dev_stop(p->eth_id);

	if (rc < 0)
		VHD_LOG(WARNING, port, "port %s: stop: %s", p->name,
			rte_strerror(-rc));
	unplug(p);
}
