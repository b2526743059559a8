/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/pools.c: the mbuf pools, one per NUMA node in use, as OVS keeps one
 * per node (netdev-dpdk's dpdk_mp per socket). A datapath lcore takes the mbufs
 * it fills from its own node's pool (a guest's frames are copied into them
 * there), and an ethdev's rx queues from the device's node, so neither the
 * copy nor the NIC's DMA crosses the interconnect. Every pool has the same
 * size ([vhostd] mbufs, or the computed default).
 *
 * Threads: the pools are made and freed by the control thread only; lcores
 * read vhd_lcore.pool, set before they start.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <rte_errno.h>
#include <rte_mbuf.h>

#include "vhd.h"

struct rte_mempool *vhd_pool;
static struct rte_mempool *pools[RTE_MAX_NUMA_NODES];
static unsigned int pool_n;

static struct rte_mempool *pool_make(int node)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct rte_mempool *mp;

	snprintf(name, sizeof(name), "vhd_mbuf_%d", node);
	mp = rte_pktmbuf_pool_create(name, pool_n, 256, 0,
				     RTE_MBUF_DEFAULT_BUF_SIZE, node);
	if (mp == NULL)
		VHD_LOG(ERR, main,
			"mbuf pool of %u on node %d: %s "
			"(raise socket-mem)",
			pool_n, node, rte_strerror(rte_errno));
	else
		VHD_LOG(INFO, main, "mbuf pool of %u on node %d", pool_n, node);
	return mp;
}

int vhd_pools_init(unsigned int n_mbufs, int main_node)
{
	pool_n = n_mbufs;
	if (main_node < 0 || main_node >= RTE_MAX_NUMA_NODES)
		main_node = 0;
	vhd_pool = vhd_pool_of(main_node);
	if (vhd_pool == NULL)
		return -ENOMEM;
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		vhd_lcores[l].pool = vhd_pool_of(vhd_lcores[l].numa);
		if (vhd_lcores[l].pool == NULL)
			return -ENOMEM;
	}
	return 0;
}

struct rte_mempool *vhd_pool_of(int node)
{
	if (node < 0 || node >= RTE_MAX_NUMA_NODES)
		return vhd_pool;
	if (pools[node] == NULL)
		pools[node] = pool_make(node);
	return pools[node];
}

void vhd_pools_count(uint64_t *size, uint64_t *in_use)
{
	*size = *in_use = 0;
	for (int i = 0; i < RTE_MAX_NUMA_NODES; i++)
		if (pools[i]) {
			*size += pools[i]->size;
			*in_use += rte_mempool_in_use_count(pools[i]);
		}
}

int vhd_pools_node(int i, uint64_t *size, uint64_t *in_use)
{
	if (i < 0 || i >= RTE_MAX_NUMA_NODES || pools[i] == NULL)
		return -ENOENT;
	*size = pools[i]->size;
	*in_use = rte_mempool_in_use_count(pools[i]);
	return 0;
}

void vhd_pools_free(void)
{
	uint64_t size, used;

	vhd_pools_count(&size, &used);
	if (size && used)
		VHD_LOG(WARNING, main, "%" PRIu64 " mbufs still in use at exit",
			used);
	else if (size)
		VHD_LOG(INFO, main, "all mbufs returned");
	for (int i = 0; i < RTE_MAX_NUMA_NODES; i++) {
		rte_mempool_free(pools[i]);
		pools[i] = NULL;
	}
	vhd_pool = NULL;
}
