/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/telemetry.c: counters and state through DPDK telemetry.
 *
 * The telemetry socket is /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2;
 * scripts/vhostd-ctl and dpdk-telemetry.py read it. Commands:
 *   /vhostd/info            version, lcores, mempool use
 *   /vhostd/ports           port names
 *   /vhostd/port,NAME       one port's state and counters (summed over
 *                           the lcores at read time)
 *   /vhostd/bridges         bridge names
 *   /vhostd/bridge,NAME     one bridge's mode, ports and FDB counters
 *   /vhostd/fdb,NAME        learned entries: "MAC PORT AGE VLAN"
 * Runs in the telemetry thread; reads counters without locks (each is
 * written by one lcore; a read may be one burst old), and holds
 * vhd_tables_lock while it looks at a port or bridge, which the control
 * thread may otherwise free.
 */
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "vhd.h"
#include "vhd_offload.h"
#include "vhd_fdb.h"

static struct vhd_port *find_port(const char *name)
{
	for (uint16_t i = 0; name && i < VHD_MAX_PORTS; i++) {
		struct vhd_port *p = vhd_port_get(i);

		if (p && strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

static struct vhd_bridge *find_bridge(const char *name)
{
	for (uint16_t i = 0; name && i < VHD_MAX_BRIDGES; i++) {
		struct vhd_bridge *b = vhd_bridge_get(i);

		if (b && strcmp(b->name, name) == 0)
			return b;
	}
	return NULL;
}

static int cmd_info_locked(const char *cmd, const char *params,
			   struct rte_tel_data *d)
{
	uint64_t loops = 0, busy = 0, busy_cyc = 0, idle_cyc = 0, size, used;
	struct rte_tel_data *nodes, *in_use;

	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		loops += vhd_lcores[l].loops;
		busy += vhd_lcores[l].busy_loops;
		busy_cyc += vhd_lcores[l].busy_cycles;
		idle_cyc += vhd_lcores[l].idle_cycles;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "version", VHD_VERSION);
	rte_tel_data_add_dict_u64(d, "datapath_lcores", vhd_n_lcores);
	rte_tel_data_add_dict_u64(d, "uptime", vhd_clock);
	rte_tel_data_add_dict_u64(d, "loops", loops);
	rte_tel_data_add_dict_u64(d, "busy_loops", busy);
	rte_tel_data_add_dict_u64(d, "busy_cycles", busy_cyc);
	rte_tel_data_add_dict_u64(d, "idle_cycles", idle_cyc);
	rte_tel_data_add_dict_u64(d, "tsc_hz", rte_get_tsc_hz());
	/* Summed over the pools (one per NUMA node in use); then by node. */
	vhd_pools_count(&size, &used);
	rte_tel_data_add_dict_u64(d, "mbufs", size);
	rte_tel_data_add_dict_u64(d, "mbufs_in_use", used);
	nodes = rte_tel_data_alloc();
	in_use = rte_tel_data_alloc();
	if (nodes == NULL || in_use == NULL) {
		rte_tel_data_free(nodes);
		rte_tel_data_free(in_use);
		return 0;
	}
	rte_tel_data_start_array(nodes, RTE_TEL_U64_VAL);
	rte_tel_data_start_array(in_use, RTE_TEL_U64_VAL);
	for (int i = 0; i < RTE_MAX_NUMA_NODES; i++)
		if (vhd_pools_node(i, &size, &used) == 0) {
			rte_tel_data_add_array_u64(nodes, (uint64_t)i);
			rte_tel_data_add_array_u64(in_use, used);
		}
	rte_tel_data_add_dict_container(d, "mbuf_pool_nodes", nodes, 0);
	rte_tel_data_add_dict_container(d, "mbuf_pool_in_use", in_use, 0);
	return 0;
}

static int cmd_ports_locked(const char *cmd, const char *params,
			    struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		struct vhd_port *p = vhd_port_get(i);

		if (p)
			rte_tel_data_add_array_string(d, p->name);
	}
	return 0;
}

static int cmd_port_locked(const char *cmd, const char *params,
			   struct rte_tel_data *d)
{
	struct vhd_port *p = find_port(params);
	struct vhd_bridge *b;
	struct vhd_port_stats s;
	struct rte_eth_stats es;

	RTE_SET_USED(cmd);
	if (p == NULL)
		return -EINVAL;
	b = vhd_bridge_get(p->bridge);
	vhd_port_stats_sum(p->idx, &s);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", p->name);
	rte_tel_data_add_dict_string(
	    d, "type", p->type == VHD_PORT_VHOST ? "vhost-user" : "ethdev");
	rte_tel_data_add_dict_string(d, "bridge", b ? b->name : "");
	rte_tel_data_add_dict_string(d, "state",
				     vhd_port_up(p) ? "up" : "down");
	if (p->type == VHD_PORT_VHOST) {
		rte_tel_data_add_dict_string(d, "path", p->path);
		rte_tel_data_add_dict_string(d, "mode",
					     p->client ? "client" : "server");
		rte_tel_data_add_dict_u64(d, "iommu_support", p->iommu_support);
		rte_tel_data_add_dict_u64(d, "queue_pairs",
					  vhd_port_up(p) ? p->nr_qp : 0);
		unsigned int n = 0;

		for (unsigned int q = 0; q < VHD_MAX_QUEUES; q++)
			n += vhd_qmask_test(&p->guest_rxq, q);
		/* Queues 0-63 as a mask (what a script tests), and how many
		 * of all are enabled. */
		rte_tel_data_add_dict_u64(
		    d, "enabled_rxq_mask",
		    __atomic_load_n(&p->guest_rxq.w[0], __ATOMIC_RELAXED));
		rte_tel_data_add_dict_u64(d, "enabled_rxqs", n);
		rte_tel_data_add_dict_u64(d, "connects", p->connects);
	} else {
		rte_tel_data_add_dict_u64(d, "ethdev_port", p->eth_id);
		rte_tel_data_add_dict_u64(d, "rx_queues", p->n_rxq);
		rte_tel_data_add_dict_u64(d, "tx_queues", p->n_txq);
	}
	rte_tel_data_add_dict_u64(d, "ingress_rate_kbps", p->police_rate_kbps);
	rte_tel_data_add_dict_u64(d, "ingress_burst_kbytes",
				  p->police_burst_kbytes);
	rte_tel_data_add_dict_u64(d, "rx_packets", s.rx_pkts);
	rte_tel_data_add_dict_u64(d, "rx_bytes", s.rx_bytes);
	rte_tel_data_add_dict_u64(d, "tx_packets", s.tx_pkts);
	rte_tel_data_add_dict_u64(d, "tx_bytes", s.tx_bytes);
	for (int i = 0; i < VHD_DROP_MAX; i++)
		rte_tel_data_add_dict_u64(d, vhd_drop_names[i], s.drop[i]);
	rte_tel_data_add_dict_u64(d, "tx_lock_contended", s.tx_lock_contended);
	rte_tel_data_add_dict_u64(d, "rx_tso", s.rx_tso);
	rte_tel_data_add_dict_u64(d, "rx_csum_partial", s.rx_csum_partial);
	rte_tel_data_add_dict_u64(d, "tx_segmented", s.tx_segmented);
	rte_tel_data_add_dict_u64(d, "tx_segments", s.tx_segments);
	rte_tel_data_add_dict_u64(d, "tx_sw_csum", s.tx_sw_csum);
	rte_tel_data_add_dict_u64(d, "offloads", p->offloads);
	{
		const char *names[VHD_OFFLOAD_NAMES_MAX];
		unsigned int n = vhd_offload_active(p, names);
		char list[128] = "";
		size_t len = 0;

		/* A comma-separated string: the dict takes no nested array
		 * without a container of its own. */
		for (unsigned int i = 0; i < n && len < sizeof(list); i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len,
						"%s%s", i ? "," : "", names[i]);
		rte_tel_data_add_dict_string(d, "offloads_active", list);
	}
	rte_tel_data_add_dict_u64(d, "mtu", p->mtu);
	if (p->type == VHD_PORT_ETH && rte_eth_stats_get(p->eth_id, &es) == 0) {
		rte_tel_data_add_dict_u64(d, "eth_oerrors", es.oerrors);
		rte_tel_data_add_dict_u64(d, "eth_ierrors", es.ierrors);
		rte_tel_data_add_dict_u64(d, "eth_imissed", es.imissed);
		rte_tel_data_add_dict_u64(d, "eth_rx_nombuf", es.rx_nombuf);
	}
	return 0;
}

static int cmd_bridges_locked(const char *cmd, const char *params,
			      struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	for (uint16_t i = 0; i < VHD_MAX_BRIDGES; i++) {
		struct vhd_bridge *b = vhd_bridge_get(i);

		if (b)
			rte_tel_data_add_array_string(d, b->name);
	}
	return 0;
}

static int cmd_bridge_locked(const char *cmd, const char *params,
			     struct rte_tel_data *d)
{
	struct vhd_bridge *b = find_bridge(params);
	struct vhd_bridge_stats s;
	struct rte_tel_data *ports;

	RTE_SET_USED(cmd);
	if (b == NULL)
		return -EINVAL;
	vhd_bridge_stats_sum(b->idx, &s);
	ports = rte_tel_data_alloc();
	if (ports == NULL)
		return -ENOMEM;
	rte_tel_data_start_array(ports, RTE_TEL_STRING_VAL);
	for (uint16_t i = 0; i < b->ports->n; i++) {
		struct vhd_port *p = vhd_port_get(b->ports->port[i]);

		if (p)
			rte_tel_data_add_array_string(ports, p->name);
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", b->name);
	rte_tel_data_add_dict_string(
	    d, "mode", b->mode == VHD_BR_LEARNING ? "learning" : "xconnect");
	rte_tel_data_add_dict_container(d, "ports", ports, 0);
	if (b->fdb) {
		rte_tel_data_add_dict_u64(d, "mac_aging", b->mac_aging);
		rte_tel_data_add_dict_u64(d, "mac_table_size", b->fdb->cap);
		rte_tel_data_add_dict_u64(d, "fdb_entries",
					  vhd_fdb_count(b->fdb));
		rte_tel_data_add_dict_u64(d, "learned", s.learned);
		rte_tel_data_add_dict_u64(d, "moved", s.moved);
		rte_tel_data_add_dict_u64(d, "aged", b->aged);
		rte_tel_data_add_dict_u64(d, "learn_table_full", s.learn_full);
		rte_tel_data_add_dict_u64(d, "learn_port_limit",
					  s.learn_limited);
	}
	rte_tel_data_add_dict_u64(d, "flooded", s.flooded);
	return 0;
}

static int cmd_fdb_locked(const char *cmd, const char *params,
			  struct rte_tel_data *d)
{
	struct vhd_bridge *b = find_bridge(params);
	uint32_t n = 0;

	RTE_SET_USED(cmd);
	if (b == NULL || b->fdb == NULL)
		return -EINVAL;
	rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
	for (uint32_t i = 0; i < b->fdb->n_ent && n < RTE_TEL_MAX_ARRAY_ENTRIES;
	     i++) {
		const struct vhd_fdb_entry *e = &b->fdb->ent[i];
		uint16_t port = __atomic_load_n(&e->port, __ATOMIC_RELAXED);
		struct vhd_port *p;
		uint8_t m[8];
		char line[RTE_TEL_MAX_STRING_LEN];

		if (port == VHD_PORT_NONE || (p = vhd_port_get(port)) == NULL)
			continue;
		memcpy(m, &e->key, sizeof(m));
		snprintf(line, sizeof(line),
			 "%02x:%02x:%02x:%02x:%02x:%02x %s %u %u", m[0], m[1],
			 m[2], m[3], m[4], m[5], p->name, vhd_clock - e->seen,
			 (unsigned int)(e->key >> 48));
		rte_tel_data_add_array_string(d, line);
		n++;
	}
	return 0;
}

/* Each command under vhd_tables_lock. */
#define LOCKED(name)                                         \
	static int name(const char *cmd, const char *params, \
			struct rte_tel_data *d)              \
	{                                                    \
		int rc;                                      \
                                                             \
		pthread_mutex_lock(&vhd_tables_lock);        \
		rc = name##_locked(cmd, params, d);          \
		pthread_mutex_unlock(&vhd_tables_lock);      \
		return rc;                                   \
	}
LOCKED(cmd_info)
LOCKED(cmd_ports)
LOCKED(cmd_port)
LOCKED(cmd_bridges)
LOCKED(cmd_bridge)
LOCKED(cmd_fdb)

int vhd_telemetry_init(void)
{
	return rte_telemetry_register_cmd("/vhostd/info", cmd_info,
					  "vhostd version, lcores, mbufs in "
					  "use. No parameters") ||
	       rte_telemetry_register_cmd("/vhostd/ports", cmd_ports,
					  "Port names. No parameters") ||
	       rte_telemetry_register_cmd("/vhostd/port", cmd_port,
					  "A port's state and counters. "
					  "Parameter: port name") ||
	       rte_telemetry_register_cmd("/vhostd/bridges", cmd_bridges,
					  "Bridge names. No parameters") ||
	       rte_telemetry_register_cmd("/vhostd/bridge", cmd_bridge,
					  "A bridge's state and counters. "
					  "Parameter: bridge name") ||
	       rte_telemetry_register_cmd("/vhostd/fdb", cmd_fdb,
					  "Learned MACs: 'MAC PORT AGE'. "
					  "Parameter: bridge name");
}
