/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/cmd_switch.c: the control commands for bridges, ports, the FDB and
 * the running config. Control thread only.
 *
 * The handlers only translate: arguments to switch.c's calls (which
 * validate with the config file's own code and do the change), state to
 * JSON. The control thread is the only writer of the tables, so it reads
 * them here without locks; counters are summed over the lcores at read
 * time and may be one burst old.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <rte_ethdev.h>
#include <rte_ether.h>

#include "cmds.h"
#include "vhd.h"
#include "vhd_offload.h"

static const char *mode_name(enum vhd_bridge_mode m)
{
	return m == VHD_BR_LEARNING ? "learning" : "xconnect";
}

json_t *vhd_port_stats_json(const struct vhd_port_stats *s)
{
	json_t *o = json_pack(
	    "{s:I,s:I,s:I,s:I}", "rx_packets", (json_int_t)s->rx_pkts,
	    "rx_bytes", (json_int_t)s->rx_bytes, "tx_packets",
	    (json_int_t)s->tx_pkts, "tx_bytes", (json_int_t)s->tx_bytes);

	for (int d = 0; o && d < VHD_DROP_MAX; d++)
		json_object_set_new(o, vhd_drop_names[d],
				    json_integer((json_int_t)s->drop[d]));
	if (o &&
	    json_object_update_new(
		o, json_pack("{s:I,s:I,s:I,s:I,s:I}", "rx_tso",
			     (json_int_t)s->rx_tso, "rx_csum_partial",
			     (json_int_t)s->rx_csum_partial, "tx_segmented",
			     (json_int_t)s->tx_segmented, "tx_segments",
			     (json_int_t)s->tx_segments, "tx_sw_csum",
			     (json_int_t)s->tx_sw_csum)) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* ---------------------------------------------------------------- bridges */

static json_t *bridge_json(const struct vhd_bridge *b)
{
	const struct vhd_bridge_conf *bc = &vhd_running->bridges[b->idx];
	struct vhd_bridge_stats s;
	json_t *o, *ports = json_array();

	vhd_bridge_stats_sum(b->idx, &s);
	for (uint16_t i = 0; i < b->ports->n; i++)
		json_array_append_new(
		    ports, json_string(vhd_ports[b->ports->port[i]]->name));
	o = json_pack("{s:s,s:s,s:I,s:I,s:o,s:I}", "name", b->name, "mode",
		      mode_name(b->mode), "mac_aging",
		      (json_int_t)bc->mac_aging, "mac_table_size",
		      (json_int_t)bc->mac_table_size, "ports", ports, "flooded",
		      (json_int_t)s.flooded);
	if (o && b->fdb) {
		json_object_set_new(o, "fdb_entries",
				    json_integer(vhd_fdb_count(b->fdb)));
		json_object_set_new(o, "learned", json_integer(s.learned));
		json_object_set_new(o, "moved", json_integer(s.moved));
		json_object_set_new(o, "aged", json_integer(b->aged));
		json_object_set_new(o, "learn_table_full",
				    json_integer(s.learn_full));
		json_object_set_new(o, "learn_port_limit",
				    json_integer(s.learn_limited));
	}
	return o;
}

void vhd_cmd_bridge_add(struct vhd_ctl_req *req, int argc,
			const char *const *argv)
{
	char err[512];
	int slot = vhd_switch_bridge_add(argv[0], argc - 1, argv + 1, err,
					 sizeof(err));

	if (slot < 0)
		vhd_ctl_err(req, -slot, "%s", err);
	else
		vhd_ctl_ok(req, bridge_json(vhd_bridges[slot]));
}

void vhd_cmd_bridge_del(struct vhd_ctl_req *req, int argc,
			const char *const *argv)
{
	char err[512];
	int rc = vhd_switch_bridge_del(argv[0], err, sizeof(err));

	RTE_SET_USED(argc);
	if (rc < 0)
		vhd_ctl_err(req, -rc, "%s", err);
	else
		vhd_ctl_ok(req, NULL);
}

void vhd_cmd_bridge_list(struct vhd_ctl_req *req, int argc,
			 const char *const *argv)
{
	json_t *a = json_array();

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	for (uint16_t i = 0; i < vhd_running->n_bridges; i++) {
		const struct vhd_bridge *b = vhd_bridges[i];

		if (b == NULL)
			continue;
		json_array_append_new(
		    a,
		    json_pack(
			"{s:s,s:s,s:i,s:I}", "name", b->name, "mode",
			mode_name(b->mode), "ports", b->ports->n, "fdb_entries",
			(json_int_t)(b->fdb ? vhd_fdb_count(b->fdb) : 0)));
	}
	vhd_ctl_ok(req, a);
}

static const struct vhd_bridge *bridge_arg(struct vhd_ctl_req *req,
					   const char *name)
{
	const struct vhd_bridge *b = vhd_bridge_find(name);

	if (b == NULL)
		vhd_ctl_err(req, ENOENT, "no bridge %s", name);
	return b;
}

void vhd_cmd_bridge_show(struct vhd_ctl_req *req, int argc,
			 const char *const *argv)
{
	const struct vhd_bridge *b = bridge_arg(req, argv[0]);

	RTE_SET_USED(argc);
	if (b)
		vhd_ctl_ok(req, bridge_json(b));
}

/* ---------------------------------------------------------------- ports */

static json_t *queue_list(const struct vhd_qmask *m)
{
	json_t *a = json_array();

	for (unsigned int q = 0; m && q < VHD_MAX_QUEUES; q++)
		if (vhd_qmask_test(m, q))
			json_array_append_new(a, json_integer(q));
	return a;
}

/* Why a client-mode port has no frontend, when nothing else went wrong:
 * librte_vhost retries connecting without telling anyone why it fails; the
 * usual reason is that QEMU's socket is not there. */
static json_t *client_wait(const struct vhd_port *p)
{
	struct stat st;
	char msg[sizeof(p->last_error)];
	int e;

	if (p->type != VHD_PORT_VHOST || !p->client || p->conn_vid >= 0 ||
	    stat(p->path, &st) == 0)
		return json_null();
	e = errno;
	snprintf(msg, sizeof(msg),
		 "cannot connect to %s: %s (retrying every second)", p->path,
		 strerror(e));
	return json_pack("{s:s,s:i}", "message", msg, "errno", e);
}

/* A port's VLANs and port security, as configured, and the MACs it owns
 * in its bridge's FDB. */
static void port_l2_json(json_t *o, const struct vhd_port *p)
{
	const struct vhd_bridge *b = vhd_port_bridge(p);
	char trunks[VHD_TRUNKS_TEXT_MAX];
	json_t *macs = json_array();

	json_object_set_new(o, "mtu", json_integer(p->mtu));
	json_object_set_new(o, "vlan_mode",
			    json_string(vhd_vlan_mode_name(p->vlan.mode)));
	json_object_set_new(o, "tag",
			    p->vlan.mode == VHD_VLAN_TRUNK
				? json_null()
				: json_integer(p->vlan.tag));
	/* As the trunks key takes them; an access port has none. */
	vhd_vlan_trunks_format(&p->vlan, trunks, sizeof(trunks));
	json_object_set_new(o, "trunks",
			    p->vlan.mode == VHD_VLAN_ACCESS ? json_null()
			    : p->vlan.all		    ? json_string("all")
					  : json_string(trunks));
	for (uint16_t i = 0; i < p->sec.n_allowed; i++) {
		uint8_t m[8];
		char mac[RTE_ETHER_ADDR_FMT_SIZE];

		memcpy(m, &p->sec.allowed[i], sizeof(m));
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 m[0], m[1], m[2], m[3], m[4], m[5]);
		json_array_append_new(macs, json_string(mac));
	}
	json_object_set_new(o, "allowed_macs",
			    p->sec.n_allowed ? macs : json_null());
	if (!p->sec.n_allowed)
		json_decref(macs);
	json_object_set_new(o, "mac_learn_limit",
			    p->sec.learn_limit
				? json_integer(p->sec.learn_limit)
				: json_null());
	if (b && b->fdb)
		json_object_set_new(
		    o, "learned_macs",
		    json_integer(vhd_fdb_port_count(b->fdb, p->idx)));
}

static json_t *ip_json(uint32_t ip)
{
	char buf[INET_ADDRSTRLEN];

	return json_string(inet_ntop(AF_INET, &ip, buf, sizeof(buf)));
}

/* A remote's next hop (resolved or next-hop-mac), or null. */
static json_t *nh_json(const struct vhd_port *p)
{
	uint64_t nh = __atomic_load_n(&p->vx_nh, __ATOMIC_RELAXED);
	uint8_t m[8];
	char mac[RTE_ETHER_ADDR_FMT_SIZE];

	if (!(nh & VHD_VX_NH_VALID))
		return json_null();
	memcpy(m, &nh, sizeof(m));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
		 m[2], m[3], m[4], m[5]);
	return json_string(mac);
}

/* A vxlan port's tunnel and its remotes (each: next hop, counters); a
 * VTEP sub-port's remote. */
static void vxlan_json(json_t *o, const struct vhd_port *p,
		       const struct vhd_port_conf *pc)
{
	json_t *a = json_array();

	json_object_set_new(o, "vni", json_integer(pc->vx.vni));
	json_object_set_new(o, "local_ip", ip_json(pc->vx.local_ip));
	json_object_set_new(o, "underlay", json_string(pc->vx.underlay));
	json_object_set_new(o, "udp_port", json_integer(pc->vx.udp_port));
	if (p->type == VHD_PORT_VTEP) {
		json_object_set_new(o, "remote", ip_json(p->vx_remote));
		json_object_set_new(o, "mac", nh_json(p));
		json_decref(a);
		return;
	}
	json_object_set_new(o, "next_hop_mac",
			    p->vx_static_nh ? nh_json(p) : json_null());
	for (uint16_t i = 0; i < vhd_running->n_ports; i++) {
		const struct vhd_port_conf *c = &vhd_running->ports[i];
		const struct vhd_port *r = vhd_ports[i];
		struct vhd_port_stats s;

		if (c->name[0] == '\0' || c->type != VHD_PORT_VTEP ||
		    c->vx.parent != p->idx || r == NULL)
			continue;
		vhd_port_stats_sum(i, &s);
		json_array_append_new(
		    a,
		    json_pack("{s:s,s:o,s:o,s:b,s:I,s:I,s:I,s:I,s:I}", "name",
			      r->name, "ip", ip_json(r->vx_remote), "mac",
			      nh_json(r), "flood", !c->vx.no_flood,
			      "rx_packets", (json_int_t)s.rx_pkts, "rx_bytes",
			      (json_int_t)s.rx_bytes, "tx_packets",
			      (json_int_t)s.tx_pkts, "tx_bytes",
			      (json_int_t)s.tx_bytes, "drop_no_neigh",
			      (json_int_t)s.drop[VHD_DROP_NO_NEIGH]));
	}
	json_object_set_new(o, "remotes", a);
	if (p->evpn)
		json_object_set_new(o, "evpn", vhd_evpn_json(p));
}

static json_t *port_json(const struct vhd_port *p, bool detail)
{
	const struct vhd_port_conf *pc = &vhd_running->ports[p->idx];
	struct vhd_port_stats s;
	struct rte_eth_stats es;
	json_t *o, *st;

	vhd_port_stats_total(p, &s);
	o = json_pack("{s:s,s:o,s:s,s:s}", "name", p->name, "bridge",
		      vhd_port_bridge(p) ? json_string(vhd_port_bridge(p)->name)
					 : json_null(),
		      "type", vhd_port_type_name(p->type), "state",
		      vhd_port_up(p) ? "up" : "down");
	if (o == NULL)
		return NULL;
	if (!detail) {
		uint64_t drops = 0;

		for (int d = 0; d < VHD_DROP_MAX; d++)
			drops += s.drop[d];
		json_object_set_new(o, "rx_packets", json_integer(s.rx_pkts));
		json_object_set_new(o, "tx_packets", json_integer(s.tx_pkts));
		json_object_set_new(o, "drops", json_integer(drops));
		return o;
	}
	if (p->type == VHD_PORT_VHOST) {
		bool up = vhd_port_up(p);
		uint64_t f = up ? p->features : 0;
		json_t *feat = json_array();

		for (unsigned int b = 0; b < 64; b++)
			if (f & (UINT64_C(1) << b)) {
				const char *n = vhd_vhost_feature_name(b);
				char buf[32];

				if (n == NULL) {
					snprintf(buf, sizeof(buf), "bit %u", b);
					n = buf;
				}
				json_array_append_new(feat, json_string(n));
			}
		json_object_set_new(o, "path", json_string(p->path));
		json_object_set_new(
		    o, "mode", json_string(p->client ? "client" : "server"));
		json_object_set_new(o, "connected",
				    json_boolean(p->conn_vid >= 0));
		json_object_set_new(o, "iommu_support",
				    json_boolean(p->iommu_support));
		json_object_set_new(o, "features", feat);
		json_object_set_new(o, "queue_pairs",
				    json_integer(up ? p->nr_qp : 0));
		json_object_set_new(o, "rxq_enabled",
				    queue_list(up ? &p->guest_rxq : NULL));
		json_object_set_new(o, "txq_enabled",
				    queue_list(up ? &p->guest_txq : NULL));
		json_object_set_new(o, "numa_node",
				    json_integer(up ? p->numa_node : -1));
		json_object_set_new(o, "connects", json_integer(p->connects));
	} else if (p->type == VHD_PORT_VXLAN || p->type == VHD_PORT_VTEP) {
		vxlan_json(o, p, pc);
	} else {
		json_object_set_new(o, "devargs", json_string(pc->devargs));
		json_object_set_new(o, "ethdev_port", json_integer(p->eth_id));
		json_object_set_new(o, "rx_queues", json_integer(p->n_rxq));
		json_object_set_new(o, "tx_queues", json_integer(p->n_txq));
		json_object_set_new(
		    o, "numa_node",
		    json_integer(rte_eth_dev_socket_id(p->eth_id)));
	}
	port_l2_json(o, p);
	{
		const char *names[VHD_OFFLOAD_NAMES_MAX];
		unsigned int n = vhd_offload_active(p, names);
		json_t *a = json_array();

		for (unsigned int i = 0; i < n; i++)
			json_array_append_new(a, json_string(names[i]));
		json_object_set_new(o, "offloads", json_boolean(p->offloads));
		json_object_set_new(o, "offloads_active", a);
	}
	/* rxq-affinity as the key takes it, or null. */
	if (pc->n_affinity) {
		char aff[VHD_MAX_QUEUES * 10] = "";
		size_t n = 0;

		for (uint16_t k = 0; k < pc->n_affinity && n < sizeof(aff); k++)
			n += (size_t)snprintf(
			    aff + n, sizeof(aff) - n, "%s%u:%u", k ? "," : "",
			    pc->affinity[k].q, pc->affinity[k].cpu);
		json_object_set_new(o, "rxq_affinity", json_string(aff));
	} else {
		json_object_set_new(o, "rxq_affinity", json_null());
	}
	/* Policing as it applies (0: none; the burst its default when the
	 * config has none). */
	json_object_set_new(o, "ingress_rate_kbps",
			    json_integer(p->police_rate_kbps));
	json_object_set_new(o, "ingress_burst_kbytes",
			    json_integer(p->police_burst_kbytes));
	pthread_mutex_lock(&vhd_tables_lock);
	json_object_set_new(o, "last_error",
			    p->last_error[0] ? json_pack("{s:s,s:i}", "message",
							 p->last_error, "errno",
							 p->last_errno)
					     : client_wait(p));
	pthread_mutex_unlock(&vhd_tables_lock);
	st = vhd_port_stats_json(&s);
	/* What the PMD itself counted: frames it took and then failed to
	 * send (oerrors), frames the NIC dropped (imissed, ierrors), rx
	 * without mbufs. */
	if (p->type == VHD_PORT_ETH && st &&
	    rte_eth_stats_get(p->eth_id, &es) == 0) {
		json_object_set_new(st, "eth_oerrors",
				    json_integer((json_int_t)es.oerrors));
		json_object_set_new(st, "eth_ierrors",
				    json_integer((json_int_t)es.ierrors));
		json_object_set_new(st, "eth_imissed",
				    json_integer((json_int_t)es.imissed));
		json_object_set_new(st, "eth_rx_nombuf",
				    json_integer((json_int_t)es.rx_nombuf));
	}
	json_object_set_new(o, "stats", st);
	return o;
}

void vhd_cmd_port_add(struct vhd_ctl_req *req, int argc,
		      const char *const *argv)
{
	char err[512];
	int slot =
	    vhd_switch_port_add(argv[0], argc - 1, argv + 1, err, sizeof(err));

	if (slot < 0)
		vhd_ctl_err(req, -slot, "%s", err);
	else
		vhd_ctl_ok(req, port_json(vhd_ports[slot], true));
}

void vhd_cmd_port_del(struct vhd_ctl_req *req, int argc,
		      const char *const *argv)
{
	char err[512];
	int rc = vhd_switch_port_del(argv[0], err, sizeof(err));

	RTE_SET_USED(argc);
	if (rc < 0)
		vhd_ctl_err(req, -rc, "%s", err);
	else
		vhd_ctl_ok(req, NULL);
}

void vhd_cmd_port_list(struct vhd_ctl_req *req, int argc,
		       const char *const *argv)
{
	json_t *a = json_array();

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	/* A vxlan port's remotes are in its own port show. */
	for (uint16_t i = 0; i < vhd_running->n_ports; i++)
		if (vhd_ports[i] && vhd_ports[i]->type != VHD_PORT_VTEP)
			json_array_append_new(a,
					      port_json(vhd_ports[i], false));
	vhd_ctl_ok(req, a);
}

static const struct vhd_port *port_arg(struct vhd_ctl_req *req,
				       const char *name)
{
	const struct vhd_port *p = vhd_port_find(name);

	if (p == NULL)
		vhd_ctl_err(req, ENOENT, "no port %s", name);
	return p;
}

void vhd_cmd_port_show(struct vhd_ctl_req *req, int argc,
		       const char *const *argv)
{
	const struct vhd_port *p = port_arg(req, argv[0]);

	RTE_SET_USED(argc);
	if (p)
		vhd_ctl_ok(req, port_json(p, true));
}

/* ---------------------------------------------------------------- fdb */

static void fdb_entries(json_t *a, const struct vhd_bridge *b)
{
	const struct vhd_fdb *f = b->fdb;

	for (uint32_t i = 0; f && i < f->n_ent; i++) {
		const struct vhd_fdb_entry *e = &f->ent[i];
		uint16_t port = __atomic_load_n(&e->port, __ATOMIC_ACQUIRE);
		const struct vhd_port *vtep;
		json_t *o;
		uint8_t m[8];
		char mac[RTE_ETHER_ADDR_FMT_SIZE];

		if (port == VHD_PORT_NONE || vhd_ports[port] == NULL)
			continue;
		memcpy(m, &e->key, sizeof(m));
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 m[0], m[1], m[2], m[3], m[4], m[5]);
		/* A remote's MAC: the vxlan port and the remote VTEP. */
		vtep = vhd_ports[port]->type == VHD_PORT_VTEP
			   ? vhd_ports[vhd_ports[port]->vx_parent]
			   : NULL;
		o = json_pack("{s:s,s:i,s:s,s:s,s:o,s:b}", "bridge", b->name,
			      "vlan", (int)(e->key >> 48), "mac", mac, "port",
			      vtep ? vtep->name : vhd_ports[port]->name, "age",
			      e->is_static ? json_null()
					   : json_integer(vhd_clock - e->seen),
			      "static", e->is_static == VHD_FDB_STATIC);
		/* From BGP EVPN (only then: as vtep, a key of its kind). */
		if (o && e->is_static == VHD_FDB_EVPN)
			json_object_set_new(o, "evpn", json_true());
		if (o && vtep)
			json_object_set_new(
			    o, "vtep", ip_json(vhd_ports[port]->vx_remote));
		json_array_append_new(a, o);
	}
}

void vhd_cmd_fdb_show(struct vhd_ctl_req *req, int argc,
		      const char *const *argv)
{
	json_t *a;

	if (argc == 1) {
		const struct vhd_bridge *b = bridge_arg(req, argv[0]);

		if (b == NULL)
			return;
		a = json_array();
		fdb_entries(a, b);
	} else {
		a = json_array();
		for (uint16_t i = 0; i < vhd_running->n_bridges; i++)
			if (vhd_bridges[i])
				fdb_entries(a, vhd_bridges[i]);
	}
	vhd_ctl_ok(req, a);
}

/* The FDB of bridge NAME, or NULL after answering REQ. */
static struct vhd_fdb *fdb_arg(struct vhd_ctl_req *req, const char *name)
{
	const struct vhd_bridge *b = bridge_arg(req, name);

	if (b && b->fdb == NULL)
		vhd_ctl_err(req, EINVAL,
			    "bridge %s is an xconnect: it has no FDB", name);
	return b ? b->fdb : NULL;
}

/* The FDB key of unicast MAC S, or -1 after answering REQ. */
static int mac_arg(struct vhd_ctl_req *req, const char *s, uint64_t *key)
{
	struct rte_ether_addr ea;
	uint8_t k[8] = {0};

	if (rte_ether_unformat_addr(s, &ea) < 0) {
		vhd_ctl_err(req, EINVAL, "'%s' is not a MAC address", s);
		return -1;
	}
	if (!rte_is_unicast_ether_addr(&ea) || rte_is_zero_ether_addr(&ea)) {
		vhd_ctl_err(req, EINVAL, "%s is not a unicast MAC address", s);
		return -1;
	}
	memcpy(k, &ea, sizeof(ea));
	*key = vhd_fdb_key(k);
	return 0;
}

/* "vlan=N" (ARGC > I) or VLAN 0 into the key; -1 after answering REQ. */
static int vlan_arg(struct vhd_ctl_req *req, int argc, const char *const *argv,
		    int i, uint64_t *key, uint16_t *vid)
{
	char *end;
	unsigned long v = 0;

	if (argc > i) {
		if (strncmp(argv[i], "vlan=", 5) != 0 ||
		    (v = strtoul(argv[i] + 5, &end, 10), *end != '\0') ||
		    argv[i][5] == '\0' || v >= VHD_VLAN_MAX) {
			vhd_ctl_err(req, EINVAL,
				    "expected vlan=N (0 to 4094), not '%s'",
				    argv[i]);
			return -1;
		}
	}
	*vid = (uint16_t)v;
	*key |= (uint64_t)v << 48;
	return 0;
}

void vhd_cmd_fdb_add(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	struct vhd_fdb *f = fdb_arg(req, argv[0]);
	const struct vhd_port *p;
	uint64_t key;
	uint16_t vid;
	int rc;

	if (f == NULL || mac_arg(req, argv[1], &key) < 0 ||
	    (p = port_arg(req, argv[2])) == NULL ||
	    vlan_arg(req, argc, argv, 3, &key, &vid) < 0)
		return;
	/* A vxlan port's remotes' MACs are learned, or come from EVPN. */
	if (p->type == VHD_PORT_VXLAN || p->type == VHD_PORT_VTEP ||
	    vhd_port_bridge(p) == NULL ||
	    strcmp(vhd_port_bridge(p)->name, argv[0]) != 0) {
		vhd_ctl_err(req, EINVAL, "port %s is not on bridge %s", p->name,
			    argv[0]);
		return;
	}
	if (!vhd_vlan_carries(&p->vlan, vid)) {
		vhd_ctl_err(req, EINVAL, "port %s does not carry VLAN %u",
			    p->name, vid);
		return;
	}
	rc = vhd_fdb_add_static(f, key, p->idx);
	if (rc < 0)
		vhd_ctl_err(req, -rc, "bridge %s: MAC table full (%u entries)",
			    argv[0], f->cap);
	else
		vhd_ctl_ok(req, NULL);
}

void vhd_cmd_fdb_del(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	struct vhd_fdb *f = fdb_arg(req, argv[0]);
	uint64_t key;
	uint16_t vid;

	if (f == NULL || mac_arg(req, argv[1], &key) < 0 ||
	    vlan_arg(req, argc, argv, 2, &key, &vid) < 0)
		return;
	if (vhd_fdb_del(f, key) < 0)
		vhd_ctl_err(req, ENOENT,
			    "bridge %s has no entry for %s in VLAN %u%s",
			    argv[0], argv[1], vid,
			    argc > 2 ? "" : " (vlan=N for another)");
	else
		vhd_ctl_ok(req, NULL);
}

void vhd_cmd_fdb_flush(struct vhd_ctl_req *req, int argc,
		       const char *const *argv)
{
	uint32_t n = 0;

	if (argc == 1) {
		struct vhd_fdb *f = fdb_arg(req, argv[0]);

		if (f == NULL)
			return;
		n = vhd_fdb_flush(f, VHD_PORT_NONE, false);
	} else {
		for (uint16_t i = 0; i < vhd_running->n_bridges; i++)
			if (vhd_bridges[i] && vhd_bridges[i]->fdb)
				n += vhd_fdb_flush(vhd_bridges[i]->fdb,
						   VHD_PORT_NONE, false);
	}
	vhd_ctl_ok(req, json_pack("{s:I}", "flushed", (json_int_t)n));
}

/* ---------------------------------------------------------------- config */

void vhd_cmd_config_show(struct vhd_ctl_req *req, int argc,
			 const char *const *argv)
{
	char *text = vhd_config_format(vhd_running);

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	if (text == NULL) {
		vhd_ctl_err(req, ENOMEM, "out of memory");
		return;
	}
	vhd_ctl_ok(req, json_pack("{s:s}", "config", text));
	free(text);
}

/* Write TEXT to FILE atomically: a temporary file in the same directory,
 * synced, then renamed over FILE. */
static int write_atomic(const char *file, const char *text, char *err,
			size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	size_t len = strlen(text);
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", file) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", file);
		return -ENAMETOOLONG;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		snprintf(dir, sizeof(dir), "%s", file);
		snprintf(err, errlen, "cannot write in %s: %s", dirname(dir),
			 strerror(-rc));
		return rc;
	}
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, 0644) < 0 ||
	    fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, file) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "cannot write %s: %s", file,
			 strerror(-rc));
		unlink(tmp);
	}
	return rc;
}

void vhd_cmd_config_save(struct vhd_ctl_req *req, int argc,
			 const char *const *argv)
{
	const char *file = argc == 1 ? argv[0] : vhd_running->file;
	char err[PATH_MAX + 128];
	char *text;
	int rc;

	if (argc == 1 && file[0] != '/') {
		vhd_ctl_err(req, EINVAL,
			    "config save: '%s' must be an absolute path", file);
		return;
	}
	text = vhd_config_format(vhd_running);
	if (text == NULL) {
		vhd_ctl_err(req, ENOMEM, "out of memory");
		return;
	}
	rc = write_atomic(file, text, err, sizeof(err));
	free(text);
	if (rc < 0)
		vhd_ctl_err(req, -rc, "%s", err);
	else
		vhd_ctl_ok(req, json_pack("{s:s}", "file", file));
}
