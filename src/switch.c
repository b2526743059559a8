/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * switch.c: the running switch: bridges and ports added and removed while
 * the lcores forward, at start-up from the config file and at run time from
 * the control socket. Control thread only.
 *
 * Main design choice: one path for both. The config file is loaded into
 * vhd_running (struct vhd_config, whose slots are the indexes in
 * vhd_ports[] and vhd_bridges[]) and each of its bridges and ports is then
 * started exactly as one added at run time, so a saved config reproduces
 * the switch. A change reaches the lcores as OVS and DPDK's vhost example
 * do it: build the new object or list aside, publish it with a release
 * store, and free what it replaced only after every lcore has passed a
 * quiescent state (rte_rcu_qsbr_synchronize). A port leaves in the reverse
 * order it came: its socket first (no callback can follow), then the
 * lcores stop polling it, then its bridge stops flooding to it, its FDB
 * entries go, and only then is it freed. Nothing of a failed add stays.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_malloc.h>

#include "vhd.h"
#include "vhd_capture.h"

struct vhd_config *vhd_running;
pthread_mutex_t vhd_tables_lock = PTHREAD_MUTEX_INITIALIZER;

static void grace_period(void)
{
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
}

void vhd_port_error(struct vhd_port *p, int errnum, const char *fmt, ...)
{
	char msg[sizeof(p->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vhd_tables_lock);
	memcpy(p->last_error, msg, sizeof(msg));
	p->last_errno = errnum;
	pthread_mutex_unlock(&vhd_tables_lock);
	/* A guest can make this happen: rate-limited. */
	if (vhd_log_ratelimit(p))
		VHD_LOG(ERR, port, "port %s: %s", p->name, msg);
}

void vhd_port_stats_total(const struct vhd_port *p, struct vhd_port_stats *out)
{
	vhd_port_stats_sum(p->idx, out);
	for (uint16_t i = 0; p->type == VHD_PORT_VXLAN && i < VHD_MAX_PORTS;
	     i++) {
		const struct vhd_port *q = vhd_ports[i];
		struct vhd_port_stats r;

		if (q == NULL || q->type != VHD_PORT_VTEP ||
		    q->vx_parent != p->idx)
			continue;
		vhd_port_stats_sum(i, &r);
		out->rx_pkts += r.rx_pkts;
		out->rx_bytes += r.rx_bytes;
		out->tx_pkts += r.tx_pkts;
		out->tx_bytes += r.tx_bytes;
		for (int d = 0; d < VHD_DROP_MAX; d++)
			out->drop[d] += r.drop[d];
		out->tx_lock_contended += r.tx_lock_contended;
		out->rx_tso += r.rx_tso;
		out->rx_csum_partial += r.rx_csum_partial;
		out->tx_segmented += r.tx_segmented;
		out->tx_segments += r.tx_segments;
		out->tx_sw_csum += r.tx_sw_csum;
	}
}

struct vhd_port *vhd_port_find(const char *name)
{
	int i = vhd_running ? vhd_config_port_slot(vhd_running, name) : -1;

	return i < 0 ? NULL : vhd_ports[i];
}

struct vhd_bridge *vhd_bridge_find(const char *name)
{
	int i = vhd_running ? vhd_config_bridge_slot(vhd_running, name) : -1;

	return i < 0 ? NULL : vhd_bridges[i];
}

/* Publish BR's port list with PORT added (ADD) or taken out, and free the
 * old one after a grace period. */
static int set_member(struct vhd_bridge *br, uint16_t port, bool add)
{
	struct vhd_portlist *old = br->ports, *nl;
	uint16_t n = 0;

	nl = rte_zmalloc("vhd_ports",
			 sizeof(*nl) + sizeof(nl->port[0]) * (old->n + 1), 0);
	if (nl == NULL)
		return -ENOMEM;
	for (uint16_t i = 0; i < old->n; i++)
		if (old->port[i] != port)
			nl->port[n++] = old->port[i];
	if (add)
		nl->port[n++] = port;
	nl->n = n;
	for (uint16_t i = 0; i < n; i++) {
		const struct vhd_port_conf *pc =
		    &vhd_running->ports[nl->port[i]];

		if (!vhd_vlan_is_default(&pc->vlan))
			nl->vlan_aware = true;
		if (pc->sec.n_allowed)
			nl->guarded = true;
	}
	__atomic_store_n(&br->ports, nl, __ATOMIC_RELEASE);
	grace_period();
	rte_free(old);
	return 0;
}

/* ---------------------------------------------------------------- bridges */

static int bridge_start(uint16_t slot, char *err, size_t errlen)
{
	struct vhd_bridge *br =
	    vhd_bridge_create(&vhd_running->bridges[slot], slot);

	if (br == NULL) {
		snprintf(err, errlen, "bridge %s: cannot create its tables",
			 vhd_running->bridges[slot].name);
		return -ENOMEM;
	}
	pthread_mutex_lock(&vhd_tables_lock);
	__atomic_store_n(&vhd_bridges[slot], br, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vhd_tables_lock);
	return 0;
}

static void bridge_remove(uint16_t slot)
{
	struct vhd_bridge *br = vhd_bridges[slot];

	if (br != NULL) {
		pthread_mutex_lock(&vhd_tables_lock);
		__atomic_store_n(&vhd_bridges[slot], NULL, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&vhd_tables_lock);
		grace_period();
		for (uint16_t l = 0; l < vhd_n_lcores; l++)
			memset(&vhd_lcores[l].brstats[slot], 0,
			       sizeof(vhd_lcores[l].brstats[slot]));
		vhd_bridge_free(br);
	}
	vhd_config_del_bridge(vhd_running, slot);
}

int vhd_switch_bridge_add(const char *name, int argc, const char *const *argv,
			  char *err, size_t errlen)
{
	int slot, rc;

	if (vhd_config_bridge_slot(vhd_running, name) >= 0) {
		snprintf(err, errlen, "bridge %s exists", name);
		return -EEXIST;
	}
	slot =
	    vhd_config_add_bridge(vhd_running, name, argc, argv, err, errlen);
	if (slot < 0)
		return -EINVAL;
	rc = bridge_start((uint16_t)slot, err, errlen);
	if (rc < 0) {
		vhd_config_del_bridge(vhd_running, (uint16_t)slot);
		return rc;
	}
	VHD_LOG(INFO, bridge, "bridge %s added", name);
	return slot;
}

int vhd_switch_bridge_del(const char *name, char *err, size_t errlen)
{
	int slot = vhd_config_bridge_slot(vhd_running, name);
	struct vhd_bridge *br;

	if (slot < 0) {
		snprintf(err, errlen, "no bridge %s", name);
		return -ENOENT;
	}
	br = vhd_bridges[slot];
	if (br->ports->n) {
		int len = snprintf(err, errlen,
				   "bridge %s still has %u port(s) (delete "
				   "them first):",
				   name, br->ports->n);

		for (uint16_t i = 0;
		     i < br->ports->n && len > 0 && (size_t)len < errlen; i++)
			len += snprintf(err + len, errlen - len, " %s",
					vhd_ports[br->ports->port[i]]->name);
		return -EBUSY;
	}
	bridge_remove((uint16_t)slot);
	VHD_LOG(INFO, bridge, "bridge %s deleted", name);
	return 0;
}

/* ---------------------------------------------------------------- ports */

static void port_remove(uint16_t slot)
{
	struct vhd_port *p = vhd_ports[slot];
	struct vhd_bridge *br;

	if (p == NULL) {
		vhd_config_del_port(vhd_running, slot);
		return;
	}
	br = p->bridge == VHD_BRIDGE_NONE ? NULL : vhd_bridges[p->bridge];
	/* A vxlan port: its remotes leave the underlay's table (no frame
	 * reaches them), then the bridge, before the port itself. */
	if (p->type == VHD_PORT_VXLAN) {
		struct vhd_port *up = vhd_ports[p->vx_underlay];

		/* EVPN: its MACs withdrawn, and no more remotes from it. */
		if (p->evpn)
			vhd_evpn_stop(p);

		while (up && vhd_vxlan_map_update(up, slot) < 0)
			rte_delay_us_sleep(1000); /* out of memory: wait */
		for (uint16_t i = 0; i < vhd_running->n_ports; i++)
			if (vhd_running->ports[i].name[0] &&
			    vhd_running->ports[i].type == VHD_PORT_VTEP &&
			    vhd_running->ports[i].vx.parent == slot)
				port_remove(i);
	}
	if (p->cap)
		vhd_capture_stop(p, true);
	/* No callback of this socket can follow; destroy_device has run
	 * and waited for the lcores to leave the device's vrings. */
	if (p->type == VHD_PORT_VHOST)
		vhd_vhost_port_stop(p);
	/* The lcores stop polling it: after the grace period no burst from
	 * it is being switched, so its bridge can stop counting it as a
	 * member (a flood's references are counted from that list). Frames
	 * to it meanwhile find no port and are freed. */
	pthread_mutex_lock(&vhd_tables_lock);
	__atomic_store_n(&vhd_ports[slot], NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vhd_tables_lock);
	grace_period();
	while (br && p->type != VHD_PORT_VXLAN &&
	       set_member(br, slot, false) < 0)
		rte_delay_us_sleep(1000); /* out of memory: wait for it */
	if (vhd_sched_build() < 0)
		VHD_LOG(WARNING, port, "port %s: rx schedule not rebuilt",
			p->name);
	if (br && br->fdb)
		vhd_fdb_flush(br->fdb, slot, true);
	grace_period();
	if (p->type == VHD_PORT_ETH)
		vhd_eth_port_stop(p);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		struct vhd_lcore *lc = &vhd_lcores[l];

		memset(&lc->stats[slot], 0, sizeof(lc->stats[slot]));
		memset(&lc->memo[slot], 0, sizeof(lc->memo[slot]));
		memset(&lc->meter[slot], 0, sizeof(lc->meter[slot]));
	}
	free(p->load);
	rte_free(p->vx_map); /* an underlay's: no lcore polls it now */
	rte_free(p);
	vhd_config_del_port(vhd_running, slot);
}

/* A vxlan port (VTEP sub-port) P of config PC: its tunnel, from its
 * underlay, which must be running. */
static int vxlan_setup(struct vhd_port *p, const struct vhd_port_conf *pc,
		       uint16_t slot)
{
	const struct vhd_vxlan_conf *vx = &pc->vx;
	struct vhd_port *up = vhd_ports[vx->underlay_slot];
	struct rte_ether_addr mac;

	if (up == NULL || up->type != VHD_PORT_ETH ||
	    up->bridge != VHD_BRIDGE_NONE) {
		vhd_port_error(p, ENODEV, "underlay %s is not running",
			       vx->underlay);
		return -ENODEV;
	}
	if (rte_eth_macaddr_get(up->eth_id, &mac) < 0) {
		vhd_port_error(p, ENODEV, "underlay %s has no MAC",
			       vx->underlay);
		return -ENODEV;
	}
	memcpy(p->vx_src_mac, &mac, sizeof(p->vx_src_mac));
	p->vx_vni_be = rte_cpu_to_be_32(vx->vni << 8);
	p->vx_local = vx->local_ip;
	p->vx_udp_be = rte_cpu_to_be_16(vx->udp_port);
	p->vx_underlay = vx->underlay_slot;
	p->vx_parent = pc->type == VHD_PORT_VTEP ? vx->parent : slot;
	if (pc->type == VHD_PORT_VTEP) {
		p->vx_remote = vx->vtep_ip;
		p->no_learn = vx->evpn[0] != '\0';
	}
	p->vx_static_nh = vx->has_nh;
	if (vx->has_nh) {
		memcpy(&p->vx_nh, vx->nh_mac, sizeof(vx->nh_mac));
		p->vx_nh |= VHD_VX_NH_VALID;
	}
	/* Offloads are done before encapsulation (dp/offload.c), the
	 * underlay gets whole frames with their checksums. */
	p->tx_offl = 0;
	return 0;
}

static int port_start(uint16_t slot, char *err, size_t errlen);

/* A vxlan port's remotes: a VTEP sub-port each, then the underlay's
 * table, so that frames from them arrive at published ports. */
static int vxlan_start(struct vhd_port *p, uint16_t slot, char *err,
		       size_t errlen)
{
	const struct vhd_port_conf *pc = &vhd_running->ports[slot];
	int rc = 0;

	for (uint16_t r = 0; r < pc->vx.n_remotes && rc == 0; r++) {
		int v = vhd_config_add_vtep(vhd_running, slot, pc->vx.remote[r],
					    false);

		if (v < 0) {
			snprintf(err, errlen, "port %s: more than %d ports",
				 p->name, VHD_MAX_PORTS);
			return -ENOSPC;
		}
		rc = port_start((uint16_t)v, err, errlen);
		if (rc < 0 && vhd_ports[v] == NULL)
			vhd_config_del_port(vhd_running, (uint16_t)v);
	}
	if (rc == 0)
		rc = vhd_vxlan_map_update(vhd_ports[p->vx_underlay],
					  VHD_PORT_NONE);
	/* EVPN: the remotes BGP knows of now, and from here on. */
	if (rc == 0 && pc->vx.evpn[0]) {
		rc = vhd_evpn_start(p, pc, err, errlen);
		if (rc < 0)
			return rc;
	}
	return rc;
}

int vhd_switch_vtep_add(uint16_t parent, uint32_t ip, bool flood)
{
	char err[256];
	int v = vhd_config_add_vtep(vhd_running, parent, ip, !flood), rc;
	struct vhd_port *p = vhd_ports[parent];

	if (v < 0)
		return -ENOSPC;
	rc = port_start((uint16_t)v, err, sizeof(err));
	if (rc < 0) {
		if (vhd_ports[v] == NULL)
			vhd_config_del_port(vhd_running, (uint16_t)v);
		VHD_LOG(ERR, port, "%s", err);
		return rc;
	}
	rc = vhd_vxlan_map_update(vhd_ports[p->vx_underlay], VHD_PORT_NONE);
	if (rc < 0) {
		vhd_switch_vtep_del((uint16_t)v);
		return rc;
	}
	return v;
}

int vhd_switch_vtep_flood(uint16_t slot, bool flood)
{
	struct vhd_port_conf *pc = &vhd_running->ports[slot];
	struct vhd_bridge *br = vhd_bridges[pc->bridge];
	int rc;

	if (pc->vx.no_flood == !flood)
		return 0;
	rc = set_member(br, slot, flood);
	if (rc == 0)
		pc->vx.no_flood = !flood;
	return rc;
}

void vhd_switch_vtep_del(uint16_t slot)
{
	struct vhd_port *p = vhd_ports[slot], *up;

	/* Out of the underlay's table first: no frame decapsulated after
	 * the grace period names this slot, which a new port may reuse. */
	if (p != NULL) {
		p->vx_dying = true;
		up = vhd_ports[p->vx_underlay];
		while (up && vhd_vxlan_map_update(up, VHD_PORT_NONE) < 0)
			rte_delay_us_sleep(1000); /* out of memory: wait */
	}
	port_remove(slot);
}

/* A vhost-user path that names, however spelled, the control socket or
 * another port's socket: refused before anything connects to it (the
 * in-use probe would look like a second guest to our own port). The
 * config's string comparison catches the same spelling only. */
static int same_socket(const struct vhd_port *p, char *err, size_t errlen)
{
	struct stat st, o;

	if (stat(p->path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	if (stat(vhd_running->control, &o) == 0 && o.st_dev == st.st_dev &&
	    o.st_ino == st.st_ino) {
		snprintf(err, errlen,
			 "[port %s] path: that is the control socket's path",
			 p->name);
		return -EINVAL;
	}
	for (uint16_t i = 0; i < vhd_running->n_ports; i++) {
		const struct vhd_port *q = vhd_ports[i];

		if (q == NULL || q->type != VHD_PORT_VHOST ||
		    stat(q->path, &o) < 0 || o.st_dev != st.st_dev ||
		    o.st_ino != st.st_ino)
			continue;
		snprintf(err, errlen,
			 "[port %s] path: socket path already used by port "
			 "'%s'",
			 p->name, q->name);
		return -EINVAL;
	}
	return 0;
}

/* P's ingress policing as PC says: its srTCM profile (CIR the rate, CBS
 * the burst, EBS 0: a frame is within the rate or dropped), and every
 * lcore's meter for its slot filled (a full bucket), before anyone sees
 * the port; the slot's meters are nobody else's until then. */
static int police_setup(struct vhd_port *p, const struct vhd_port_conf *pc)
{
	struct rte_meter_srtcm_params prm = {0};
	int rc;

	if (pc->ingress_rate_kbps == 0)
		return 0;
	p->police_rate_kbps = pc->ingress_rate_kbps;
	p->police_burst_kbytes = vhd_police_burst_kbytes(pc);
	prm.cir = (uint64_t)p->police_rate_kbps * 1000 / 8;
	prm.cbs = (uint64_t)p->police_burst_kbytes * 1000;
	rc = rte_meter_srtcm_profile_config(&p->police_prof, &prm);
	for (uint16_t l = 0; rc == 0 && l < vhd_n_lcores; l++)
		rc = rte_meter_srtcm_config(&vhd_lcores[l].meter[p->idx],
					    &p->police_prof);
	if (rc < 0) {
		vhd_port_error(p, -rc, "ingress policing: rte_meter: %s",
			       rte_strerror(-rc));
		return rc;
	}
	p->police = true;
	return 0;
}

/* Start the port of config slot SLOT: check and set up what can fail
 * before anyone sees it, publish it (bridge first, then the port, then
 * the lcores' rx lists), then open its socket. */
static int port_start(uint16_t slot, char *err, size_t errlen)
{
	const struct vhd_port_conf *pc = &vhd_running->ports[slot];
	struct vhd_bridge *br =
	    pc->bridge == VHD_BRIDGE_NONE ? NULL : vhd_bridges[pc->bridge];
	/* An underlay and a vxlan port (its remotes are) are no members,
	 * nor an EVPN remote not to flood to. */
	bool member = br != NULL && pc->type != VHD_PORT_VXLAN &&
		      !(pc->type == VHD_PORT_VTEP && pc->vx.no_flood);
	struct vhd_port *p;
	int rc;

	p = rte_zmalloc("vhd_port", sizeof(*p), RTE_CACHE_LINE_SIZE);
	if (p == NULL) {
		snprintf(err, errlen, "port %s: out of memory", pc->name);
		return -ENOMEM;
	}
	snprintf(p->name, sizeof(p->name), "%s", pc->name);
	p->type = pc->type;
	p->idx = slot;
	p->bridge = pc->bridge;
	p->client = pc->client;
	p->vid = -1;
	snprintf(p->path, sizeof(p->path), "%s", pc->path);
	snprintf(p->socket_group, sizeof(p->socket_group), "%s",
		 pc->socket_group);
	p->socket_mode = pc->socket_mode;
	p->iommu_support = pc->iommu_support;
	p->offloads = pc->offloads;
	p->vlan = pc->vlan;
	p->sec = pc->sec;
	p->mtu = pc->mtu;
	p->max_frame = pc->mtu + RTE_ETHER_HDR_LEN;
	for (int q = 0; q < VHD_MAX_QUEUES; q++)
		rte_spinlock_init(&p->txq_lock[q]);
	if (p->type == VHD_PORT_VHOST) {
		rc = same_socket(p, err, errlen);
		if (rc < 0) {
			rte_free(p);
			return rc;
		}
	}
	rc = police_setup(p, pc);
	if (rc < 0) {
		snprintf(err, errlen, "port %s: %s", p->name, p->last_error);
		rte_free(p);
		return rc;
	}
	rc = p->type == VHD_PORT_ETH	 ? vhd_eth_port_start(p, pc)
	     : p->type == VHD_PORT_VHOST ? vhd_vhost_port_check(p)
					 : vxlan_setup(p, pc, slot);
	if (rc < 0) {
		snprintf(err, errlen, "port %s: %s", p->name, p->last_error);
		rte_free(p);
		return rc;
	}
	/* An underlay answers ARP for its tunnels' local-ips with its MAC. */
	if (p->type == VHD_PORT_ETH && p->bridge == VHD_BRIDGE_NONE) {
		struct rte_ether_addr mac;

		if (rte_eth_macaddr_get(p->eth_id, &mac) == 0)
			memcpy(p->vx_src_mac, &mac, sizeof(p->vx_src_mac));
	}
	/* Counters from zero (a slot's last port left them zeroed). */
	rc = member ? set_member(br, slot, true) : 0;
	if (rc == 0) {
		pthread_mutex_lock(&vhd_tables_lock);
		__atomic_store_n(&vhd_ports[slot], p, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&vhd_tables_lock);
		rc = vhd_sched_build();
	}
	if (rc == 0 && p->type == VHD_PORT_VHOST)
		rc = vhd_vhost_port_start(p);
	if (rc == 0 && p->type == VHD_PORT_VXLAN) {
		err[0] = '\0';
		rc = vxlan_start(p, slot, err, errlen);
	}
	if (rc < 0) {
		/* A remote's failure has said what it is already. */
		if (p->type != VHD_PORT_VXLAN || !err[0])
			snprintf(err, errlen, "port %s: %s", p->name,
				 p->last_error[0] ? p->last_error
						  : strerror(-rc));
		if (vhd_ports[slot] == NULL) { /* not published yet */
			if (p->type == VHD_PORT_ETH)
				vhd_eth_port_stop(p);
			rte_free(p);
			return rc;
		}
		port_remove(slot);
		return rc;
	}
	return 0;
}

int vhd_switch_port_add(const char *name, int argc, const char *const *argv,
			char *err, size_t errlen)
{
	int slot, rc;

	if (vhd_config_port_slot(vhd_running, name) >= 0) {
		snprintf(err, errlen, "port %s exists", name);
		return -EEXIST;
	}
	slot = vhd_config_add_port(vhd_running, name, argc, argv, err, errlen);
	if (slot < 0)
		return -EINVAL;
	rc = port_start((uint16_t)slot, err, errlen);
	if (rc < 0) {
		if (vhd_ports[slot] == NULL)
			vhd_config_del_port(vhd_running, (uint16_t)slot);
		return rc;
	}
	if (vhd_ports[slot]->bridge == VHD_BRIDGE_NONE)
		VHD_LOG(INFO, port, "port %s added (an underlay)", name);
	else
		VHD_LOG(INFO, port, "port %s added to bridge %s", name,
			vhd_bridges[vhd_ports[slot]->bridge]->name);
	return slot;
}

int vhd_switch_port_del(const char *name, char *err, size_t errlen)
{
	int slot = vhd_config_port_slot(vhd_running, name);

	if (slot < 0) {
		snprintf(err, errlen, "no port %s", name);
		return -ENOENT;
	}
	if (vhd_running->ports[slot].type == VHD_PORT_VTEP) {
		snprintf(err, errlen,
			 "port %s is a remote of vxlan port %s (change that "
			 "port)",
			 name,
			 vhd_running->ports[vhd_running->ports[slot].vx.parent]
			     .name);
		return -EINVAL;
	}
	for (uint16_t i = 0; i < vhd_running->n_ports; i++)
		if (vhd_running->ports[i].name[0] &&
		    vhd_running->ports[i].type == VHD_PORT_VXLAN &&
		    vhd_running->ports[i].vx.underlay_slot == slot) {
			snprintf(err, errlen,
				 "port %s is the underlay of vxlan port %s "
				 "(delete that first)",
				 name, vhd_running->ports[i].name);
			return -EBUSY;
		}
	port_remove((uint16_t)slot);
	VHD_LOG(INFO, port, "port %s deleted", name);
	return 0;
}

/* ---------------------------------------------------------------- all */

int vhd_switch_load(struct vhd_config *conf, char *err, size_t errlen)
{
	int rc = 0;

	vhd_running = conf;
	for (uint16_t b = 0; b < conf->n_bridges && rc == 0; b++)
		rc = bridge_start(b, err, errlen);
	/* Vxlan ports after the rest (their underlays); their remotes take
	 * slots as they start. */
	for (int pass = 0; pass < 2; pass++)
		for (uint16_t i = 0, n = conf->n_ports; i < n && rc == 0; i++)
			if ((conf->ports[i].type == VHD_PORT_VXLAN) == pass &&
			    conf->ports[i].type != VHD_PORT_VTEP)
				rc = port_start(i, err, errlen);
	return rc;
}

void vhd_switch_clear(void)
{
	if (vhd_running == NULL)
		return;
	/* Vxlan ports first (they take their remotes), then the rest. */
	for (int pass = 0; pass < 2; pass++)
		for (uint16_t i = 0; i < vhd_running->n_ports; i++)
			if (vhd_running->ports[i].name[0] &&
			    (vhd_running->ports[i].type == VHD_PORT_VXLAN) ==
				!pass)
				port_remove(i);
	for (uint16_t b = 0; b < vhd_running->n_bridges; b++)
		if (vhd_running->bridges[b].name[0])
			bridge_remove(b);
}
