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
 *   /vhostd/port_stats[,N]  page N (default 0) of every port's counters
 *                           and state, keyed by name: what Telegraf's
 *                           inputs.dpdk reads (additional_commands)
 *   /vhostd/bridges         bridge names
 *   /vhostd/bridge,NAME     one bridge's mode, ports and FDB counters
 *   /vhostd/fdb,NAME        learned entries: "MAC PORT AGE VLAN"
 * Runs in the telemetry thread; reads counters without locks (each is
 * written by one lcore; a read may be one burst old), and holds
 * vhd_tables_lock while it looks at a port or bridge, which the control
 * thread may otherwise free.
 *
 * /vhostd/port_stats is paged because DPDK 22.11 telemetry writes a reply
 * into a 16 KiB buffer (MAX_OUTPUT_LEN in lib/telemetry/telemetry.c; the
 * socket's hello message says max_output_len) and silently leaves out
 * every dict entry that does not fit: a page holds as many ports as fit
 * when every name is as long as it may be and every counter has 20
 * digits, so a page is never cut. Dict names may only hold [A-Za-z0-9_/]
 * there, so a port name with '.' or '-' is keyed with '_' instead (and
 * the entry carries the real "name").
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "vhd.h"
#include "vhd_offload.h"
#include "vhd_fdb.h"

/* DPDK 22.11's telemetry output buffer (see above). */
#define TEL_OUTPUT_LEN 16384
/* Room for the reply's prefix ({"/vhostd/port_stats":) and closing. */
#define TEL_OUTPUT_SLACK 64

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

/* /vhostd/port_stats: a port's entry goes into a dict or, with no dict,
 * is only measured as the longest JSON it can take. */
struct tel_sink {
	struct rte_tel_data *d; /* NULL: measure */
	size_t len;		/* the longest JSON of what went in */
};

static void sink_u64(struct tel_sink *s, const char *name, uint64_t v)
{
	if (s->d)
		rte_tel_data_add_dict_u64(s->d, name, v);
	s->len += strlen(name) + 4 + 20; /* ,"name":v */
}

static void sink_str(struct tel_sink *s, const char *name, const char *v)
{
	if (s->d)
		rte_tel_data_add_dict_string(s->d, name, v);
	/* ,"name":"v": a port or bridge name at most, no escapes needed */
	s->len += strlen(name) + 6 + VHD_NAME_MAX - 1;
}

/* A port's counters (/vhostd/port and /vhostd/port_stats alike). */
static void sink_counters(struct tel_sink *s, const struct vhd_port_stats *st)
{
	sink_u64(s, "rx_packets", st->rx_pkts);
	sink_u64(s, "rx_bytes", st->rx_bytes);
	sink_u64(s, "tx_packets", st->tx_pkts);
	sink_u64(s, "tx_bytes", st->tx_bytes);
	for (int i = 0; i < VHD_DROP_MAX; i++)
		sink_u64(s, vhd_drop_names[i], st->drop[i]);
	sink_u64(s, "tx_lock_contended", st->tx_lock_contended);
	sink_u64(s, "rx_tso", st->rx_tso);
	sink_u64(s, "rx_csum_partial", st->rx_csum_partial);
	sink_u64(s, "tx_segmented", st->tx_segmented);
	sink_u64(s, "tx_segments", st->tx_segments);
	sink_u64(s, "tx_sw_csum", st->tx_sw_csum);
}

/* NAME as a telemetry dict name: every character outside [A-Za-z0-9_] as
 * '_'. True if that changed it. */
static bool tel_key(const char *name, char key[VHD_NAME_MAX])
{
	bool changed = false;
	size_t i;

	for (i = 0; name[i] && i < VHD_NAME_MAX - 1; i++) {
		bool ok = isalnum((unsigned char)name[i]) || name[i] == '_';

		key[i] = ok ? name[i] : '_';
		changed |= !ok;
	}
	key[i] = '\0';
	return changed;
}

/* Port P's entry; P NULL: every field any port can have. */
static void port_stats_entry(const struct vhd_port *p, struct tel_sink *s,
			     bool renamed)
{
	const struct vhd_bridge *b = p ? vhd_port_bridge(p) : NULL;
	struct vhd_port_stats st = {0};
	struct rte_eth_stats es = {0};
	bool eth = p == NULL;

	if (p) {
		vhd_port_stats_total(p, &st);
		eth = p->type == VHD_PORT_ETH &&
		      rte_eth_stats_get(p->eth_id, &es) == 0;
	}
	if (renamed)
		sink_str(s, "name", p ? p->name : "");
	sink_str(s, "bridge", b ? b->name : "");
	sink_str(s, "type", p ? vhd_port_type_name(p->type) : "ethdev");
	/* Numeric, so that Telegraf makes it a field a graph can use. */
	sink_u64(s, "up", p && vhd_port_up(p) ? 1 : 0);
	sink_counters(s, &st);
	if (eth) {
		sink_u64(s, "eth_oerrors", es.oerrors);
		sink_u64(s, "eth_ierrors", es.ierrors);
		sink_u64(s, "eth_imissed", es.imissed);
		sink_u64(s, "eth_rx_nombuf", es.rx_nombuf);
	}
}

/* Ports in one page of /vhostd/port_stats: as many worst-case entries
 * (,"KEY":{...}) as fit in the output buffer. */
static unsigned int port_stats_per_page;

static unsigned int port_stats_page_size(void)
{
	struct tel_sink s = {0};
	size_t entry;

	port_stats_entry(NULL, &s, true);
	/* ,"KEY":{ ... }: the first field's comma is the '{' */
	entry = s.len + (VHD_NAME_MAX - 1) + 5;
	return (unsigned int)RTE_MIN((TEL_OUTPUT_LEN - TEL_OUTPUT_SLACK) /
					 entry,
				     (size_t)RTE_TEL_MAX_DICT_ENTRIES);
}

static int cmd_port_stats_locked(const char *cmd, const char *params,
				 struct rte_tel_data *d)
{
	unsigned int per = port_stats_per_page, n = 0;
	unsigned long page = 0;
	char *end;

	RTE_SET_USED(cmd);
	if (params && *params) {
		errno = 0;
		page = strtoul(params, &end, 10);
		if (*end || errno || !isdigit((unsigned char)*params))
			return -EINVAL;
	}
	rte_tel_data_start_dict(d);
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		struct vhd_port *p = vhd_port_get(i);
		struct tel_sink s = {0};
		char key[VHD_NAME_MAX], other[VHD_NAME_MAX];
		bool renamed;

		/* A vxlan port counts its remotes: not listed twice. */
		if (p == NULL || p->type == VHD_PORT_VTEP || n++ / per != page)
			continue;
		renamed = tel_key(p->name, key);
		/* A key another port has too: a port keyed by its own name
		 * keeps it, else the first port; this one gets its index. */
		for (uint16_t j = 0; renamed && j < VHD_MAX_PORTS; j++) {
			struct vhd_port *q = vhd_port_get(j);
			size_t at;

			if (q == NULL || j == i ||
			    (tel_key(q->name, other) && j > i) ||
			    strcmp(other, key) != 0)
				continue;
			at = RTE_MIN(strlen(key), (size_t)VHD_NAME_MAX - 7);
			snprintf(key + at, VHD_NAME_MAX - at, "_%u", i);
			break;
		}
		s.d = rte_tel_data_alloc();
		if (s.d == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(s.d);
		port_stats_entry(p, &s, renamed);
		if (rte_tel_data_add_dict_container(d, key, s.d, 0) != 0)
			rte_tel_data_free(s.d);
	}
	return 0;
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
	{
		unsigned int n = 0, per = port_stats_per_page;

		for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
			const struct vhd_port *p = vhd_port_get(i);

			n += p != NULL && p->type != VHD_PORT_VTEP;
		}
		rte_tel_data_add_dict_u64(d, "ports", n);
		rte_tel_data_add_dict_u64(d, "port_stats_page_size", per);
		rte_tel_data_add_dict_u64(d, "port_stats_pages",
					  n ? (n + per - 1) / per : 1);
	}
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

		if (p && p->type != VHD_PORT_VTEP)
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
	b = vhd_port_bridge(p);
	vhd_port_stats_total(p, &s);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "name", p->name);
	rte_tel_data_add_dict_string(d, "type", vhd_port_type_name(p->type));
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
	} else if (p->type == VHD_PORT_ETH) {
		rte_tel_data_add_dict_u64(d, "ethdev_port", p->eth_id);
		rte_tel_data_add_dict_u64(d, "rx_queues", p->n_rxq);
		rte_tel_data_add_dict_u64(d, "tx_queues", p->n_txq);
	}
	rte_tel_data_add_dict_u64(d, "ingress_rate_kbps", p->police_rate_kbps);
	rte_tel_data_add_dict_u64(d, "ingress_burst_kbytes",
				  p->police_burst_kbytes);
	sink_counters(&(struct tel_sink){.d = d}, &s);
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
LOCKED(cmd_port_stats)
LOCKED(cmd_bridges)
LOCKED(cmd_bridge)
LOCKED(cmd_fdb)

int vhd_telemetry_init(void)
{
	port_stats_per_page = port_stats_page_size();
	/* A help text must stay under RTE_TEL_MAX_STRING_LEN (128). */
	if (rte_telemetry_register_cmd("/vhostd/info", cmd_info,
				       "vhostd version, lcores, mbufs in use, "
				       "port_stats pages. No parameters") ||
	    rte_telemetry_register_cmd("/vhostd/ports", cmd_ports,
				       "Port names. No parameters") ||
	    rte_telemetry_register_cmd("/vhostd/port", cmd_port,
				       "A port's state and counters. "
				       "Parameter: port name") ||
	    rte_telemetry_register_cmd("/vhostd/port_stats", cmd_port_stats,
				       "Every port's counters and state by "
				       "name, a page at a time. Parameter: "
				       "page (default 0; see /vhostd/info)") ||
	    rte_telemetry_register_cmd("/vhostd/bridges", cmd_bridges,
				       "Bridge names. No parameters") ||
	    rte_telemetry_register_cmd("/vhostd/bridge", cmd_bridge,
				       "A bridge's state and counters. "
				       "Parameter: bridge name") ||
	    rte_telemetry_register_cmd("/vhostd/fdb", cmd_fdb,
				       "Learned MACs: 'MAC PORT AGE'. "
				       "Parameter: bridge name")) {
		VHD_LOG(ERR, main, "cannot register the telemetry commands");
		return -EINVAL;
	}
	return 0;
}
