/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/evpn.c: BGP EVPN (RFC 7432, 8365) for vxlan ports, through FRR's
 * zebra and the Linux objects it watches and programs. Control thread only.
 *
 * Main design choice: no FRR code and no protocol of our own. zebra learns
 * a VNI from a Linux VXLAN device in a Linux bridge; it advertises the MACs
 * that bridge holds (type-2 routes, next hop the device's local address,
 * which is vhostd's local-ip) and the VNI itself (type-3), and installs
 * what its peers advertise as FDB entries on the VXLAN device. That device
 * carries no traffic here: the VTEP address is vhostd's, on its DPDK
 * underlay. So vhostd
 *  - writes the MACs its bridge has on local ports (guests, ethdevs; not
 *    those from tunnels) as static entries on the vxlan port's `evpn`
 *    interface, a port of that Linux bridge (NUD_NOARP: zebra advertises
 *    those; permanent ones it ignores, dynamic ones the bridge ages out),
 *    and deletes them when they leave its FDB;
 *  - reads what zebra installs (rtnetlink, AF_BRIDGE neighbours): a
 *    00:00:00:00:00:00 entry with a destination per remote VTEP to flood to
 *    (type-3), and per remote MAC two entries, the bridge's (where the MAC
 *    is: on the VXLAN device) and the device's own (which VTEP). A MAC is
 *    remote while both say so; either alone can be the only message of a
 *    change (the device's entry is left stale when the MAC moves, and not
 *    announced again when it moves back to the same VTEP), so both are
 *    kept and the MAC re-evaluated on each.
 * A remote VTEP is a VTEP sub-port of the vxlan port (as a static remote),
 * made when the first route names it and flooded to while it has a type-3
 * route; a remote MAC is an FDB entry of kind VHD_FDB_EVPN on it, which a
 * frame from a local port moves (the MAC came here: written, zebra
 * advertises it with a higher sequence number and the peers follow).
 * Writes go out once a second when the FDB changed; reads are applied as
 * they come (the control loop polls the socket). libmnl builds and parses
 * the messages.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libmnl/libmnl.h>
#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "cmds.h"
#include "vhd.h"
#include "vhd_config.h"
#include "vhd_fdb.h"

/* A remote VTEP: its sub-port, whether zebra floods to it (type-3), and
 * how many remote MACs are behind it. */
struct evpn_vtep {
	uint32_t ip; /* network order; 0: free */
	uint16_t slot;
	bool flood;
	uint32_t macs;
};

/* What the kernel says of one MAC, and what vhostd made of it. */
struct evpn_mac {
	uint32_t self_ip; /* the VXLAN device's entry: its VTEP; 0: none */
	int master;	  /* ifindex of the bridge's entry; 0: none */
	uint32_t remote;  /* installed as remote behind this VTEP; 0: no */
	bool written;	  /* vhostd's entry on the evpn interface */
	uint32_t mark;	  /* tick it was last seen local (writes) */
};

struct vhd_evpn {
	struct vhd_port *p; /* the vxlan port */
	char ifname[VHD_IFNAME_MAX], vx_name[IFNAMSIZ], br_name[IFNAMSIZ];
	int port_if, vx_if, br_if;
	bool bound;    /* the kernel objects are there */
	uint64_t vlan; /* the FDB key's VLAN bits (vid << 48) */
	struct rte_hash *macs;
	struct evpn_mac *mac; /* by hash position */
	uint32_t n_mac;
	struct evpn_vtep vtep[VHD_VXLAN_REMOTES_MAX];
	uint32_t fdb_gen, tick; /* FDB generation last written from */
	/* While the kernel's state is read anew (resync): what it says is
	 * recorded, acted on once all is read (no remote undone and made
	 * again meanwhile); the flood VTEPs seen. */
	bool resyncing;
	uint16_t n_rs_flood;
	uint32_t rs_flood[VHD_VXLAN_REMOTES_MAX];
	uint64_t local_macs, remote_macs, netlink_errors, vtep_full;
	struct vhd_evpn *next;
};

static struct vhd_evpn *evpns;
static struct mnl_socket *ev_nl, *rq_nl; /* events; requests (dumps, writes) */
static uint32_t rq_seq;
static bool resync_all;

#define MAC_KEY_MASK UINT64_C(0xffffffffffff)
/* A receive buffer that holds a whole dump part (libmnl 1.0.5's
 * MNL_SOCKET_DUMP_SIZE; Debian 12 has 1.0.4). */
#define NL_DUMP_SIZE 32768

/* ------------------------------------------------------------ netlink */

static void nl_error(struct vhd_evpn *e, const char *what, int errnum)
{
	e->netlink_errors++;
	if (vhd_log_ratelimit(e->p))
		VHD_LOG(ERR, port, "port %s: evpn %s: %s: %s", e->p->name,
			e->ifname, what, strerror(errnum));
}

static int sockets_open(void)
{
	unsigned int groups = RTMGRP_NEIGH | RTMGRP_LINK;
	int big = 4 << 20;

	if (ev_nl)
		return 0;
	ev_nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	rq_nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (ev_nl == NULL || rq_nl == NULL ||
	    mnl_socket_bind(ev_nl, groups, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_bind(rq_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int rc = -errno;

		if (ev_nl)
			mnl_socket_close(ev_nl);
		if (rq_nl)
			mnl_socket_close(rq_nl);
		ev_nl = rq_nl = NULL;
		return rc;
	}
	/* A burst of routes (a peer's whole table) must not overflow the
	 * queue; if it does, ENOBUFS makes everything be read again. */
	if (setsockopt(mnl_socket_get_fd(ev_nl), SOL_SOCKET, SO_RCVBUFFORCE,
		       &big, sizeof(big)) < 0)
		setsockopt(mnl_socket_get_fd(ev_nl), SOL_SOCKET, SO_RCVBUF,
			   &big, sizeof(big));
	/* A request's answer comes at once; never wait long for it. */
	{
		struct timeval tv = {.tv_sec = 2};

		setsockopt(mnl_socket_get_fd(rq_nl), SOL_SOCKET, SO_RCVTIMEO,
			   &tv, sizeof(tv));
	}
	return 0;
}

static void sockets_close(void)
{
	if (ev_nl == NULL || evpns != NULL)
		return;
	mnl_socket_close(ev_nl);
	mnl_socket_close(rq_nl);
	ev_nl = rq_nl = NULL;
}

/* Send NLH on the request socket and run CB over the answer (a dump's
 * parts or an ack): 0, or -errno (the kernel's error included). */
static int request(struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	char buf[NL_DUMP_SIZE];
	uint32_t portid = mnl_socket_get_portid(rq_nl);
	ssize_t n;
	int rc;

	nlh->nlmsg_seq = ++rq_seq;
	if (mnl_socket_sendto(rq_nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(rq_nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		rc = mnl_cb_run(buf, (size_t)n, rq_seq, portid, cb, arg);
	} while (rc > MNL_CB_STOP);
	return rc < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------- links */

struct link {
	int index, master;
	char name[IFNAMSIZ];
	char kind[16];
	bool has_vni;
	uint32_t vni, local; /* local: network order */
	uint16_t port_be;
	bool learning;
};

static int vxlan_attr(const struct nlattr *a, void *arg)
{
	struct link *l = arg;

	switch (mnl_attr_get_type(a)) {
	case IFLA_VXLAN_ID:
		l->has_vni = mnl_attr_validate(a, MNL_TYPE_U32) == 0;
		if (l->has_vni)
			l->vni = mnl_attr_get_u32(a);
		break;
	case IFLA_VXLAN_LOCAL:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			l->local = mnl_attr_get_u32(a);
		break;
	case IFLA_VXLAN_PORT:
		if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			l->port_be = mnl_attr_get_u16(a);
		break;
	case IFLA_VXLAN_LEARNING:
		if (mnl_attr_validate(a, MNL_TYPE_U8) == 0)
			l->learning = mnl_attr_get_u8(a) != 0;
		break;
	}
	return MNL_CB_OK;
}

static int info_attr(const struct nlattr *a, void *arg)
{
	struct link *l = arg;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND &&
	    mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		snprintf(l->kind, sizeof(l->kind), "%s", mnl_attr_get_str(a));
	else if (mnl_attr_get_type(a) == IFLA_INFO_DATA &&
		 strcmp(l->kind, "vxlan") == 0)
		mnl_attr_parse_nested(a, vxlan_attr, l);
	return MNL_CB_OK;
}

static int link_attr(const struct nlattr *a, void *arg)
{
	struct link *l = arg;

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
			snprintf(l->name, sizeof(l->name), "%s",
				 mnl_attr_get_str(a));
		break;
	case IFLA_MASTER:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			l->master = (int)mnl_attr_get_u32(a);
		break;
	case IFLA_LINKINFO:
		/* Kind first: the kernel puts it before the data. */
		mnl_attr_parse_nested(a, info_attr, l);
		break;
	}
	return MNL_CB_OK;
}

/* A link message's facts, false if it is not an ordinary link's (the
 * bridge sends AF_BRIDGE ones of its ports, without their kind). */
static bool link_parse(const struct nlmsghdr *nlh, struct link *l)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	memset(l, 0, sizeof(*l));
	if (ifi->ifi_family == AF_BRIDGE)
		return false;
	l->index = ifi->ifi_index;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr, l);
	return true;
}

struct bind_ctx {
	struct vhd_evpn *e;
	struct link port, br, vx;
	int n_vx; /* VXLAN devices in the bridge with the VNI */
};

static int bind_link(const struct nlmsghdr *nlh, void *arg)
{
	struct bind_ctx *b = arg;
	struct link l;

	if (!link_parse(nlh, &l))
		return MNL_CB_OK;
	if (strcmp(l.name, b->e->ifname) == 0)
		b->port = l;
	if (b->port.master && l.index == b->port.master)
		b->br = l;
	if (strcmp(l.kind, "vxlan") == 0 && l.has_vni &&
	    l.vni == vhd_running->ports[b->e->p->idx].vx.vni && l.master &&
	    l.master == b->port.master) {
		b->vx = l;
		b->n_vx++;
	}
	return MNL_CB_OK;
}

static int dump_links(mnl_cb_t cb, void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtgenmsg *g;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	return request(nlh, cb, arg);
}

/* Find E's kernel objects: its interface, the Linux bridge it is in and
 * that bridge's VXLAN device of the VNI, which must say what the vxlan
 * port says. 0, or -errno with ERR saying what is missing or wrong. */
static int bind_kernel(struct vhd_evpn *e, char *err, size_t errlen)
{
	const struct vhd_vxlan_conf *vx = &vhd_running->ports[e->p->idx].vx;
	struct bind_ctx b = {.e = e};
	char a[INET_ADDRSTRLEN], w[INET_ADDRSTRLEN];
	int rc;

	/* The bridge's index comes with the interface: two passes, as a
	 * dump lists links by index, not in an order that helps. */
	for (int pass = 0; pass < 2; pass++) {
		struct link port = b.port;

		memset(&b, 0, sizeof(b));
		b.e = e;
		b.port = port;
		rc = dump_links(bind_link, &b);
		if (rc < 0) {
			snprintf(err, errlen, "evpn %s: reading links: %s",
				 e->ifname, strerror(-rc));
			return rc;
		}
	}
	if (b.port.index == 0) {
		snprintf(err, errlen, "evpn %s: no such interface", e->ifname);
		return -ENODEV;
	}
	/* zebra advertises what is on the bridge's other ports only: the
	 * VXLAN device's entries are the remote ones. */
	if (strcmp(b.port.kind, "vxlan") == 0 ||
	    strcmp(b.port.kind, "bridge") == 0) {
		snprintf(err, errlen,
			 "evpn %s: is a %s device; name a port of the bridge "
			 "that carries no traffic (a dummy: ip link add vhd%u "
			 "type dummy; ip link set vhd%u master BRIDGE)",
			 e->ifname, b.port.kind, vx->vni, vx->vni);
		return -EINVAL;
	}
	if (b.port.master == 0 || strcmp(b.br.kind, "bridge") != 0) {
		snprintf(err, errlen,
			 "evpn %s: not a port of a Linux bridge (ip link set "
			 "%s master BRIDGE)",
			 e->ifname, e->ifname);
		return -EINVAL;
	}
	if (b.n_vx != 1) {
		snprintf(err, errlen,
			 b.n_vx
			     ? "evpn %s: bridge %s has %d VXLAN devices with "
			       "id %u (zebra needs one)"
			     : "evpn %s: bridge %s has no VXLAN device with "
			       "id %u%.0d",
			 e->ifname, b.br.name, b.n_vx ? b.n_vx : (int)vx->vni,
			 b.n_vx ? (int)vx->vni : 0);
		return -EINVAL;
	}
	inet_ntop(AF_INET, &b.vx.local, a, sizeof(a));
	inet_ntop(AF_INET, &vx->local_ip, w, sizeof(w));
	/* zebra advertises the device's address as the VTEP: peers would
	 * send to an address that is not ours. */
	if (b.vx.local != vx->local_ip) {
		snprintf(err, errlen,
			 "evpn %s: VXLAN device %s has local %s, not local-ip "
			 "%s (ip link set %s type vxlan local %s)",
			 e->ifname, b.vx.name, b.vx.local ? a : "(none)", w,
			 b.vx.name, w);
		return -EINVAL;
	}
	if (ntohs(b.vx.port_be) != vx->udp_port) {
		snprintf(err, errlen,
			 "evpn %s: VXLAN device %s has dstport %u, not "
			 "udp-port %u (make it again with dstport %u)",
			 e->ifname, b.vx.name, ntohs(b.vx.port_be),
			 vx->udp_port, vx->udp_port);
		return -EINVAL;
	}
	if (b.vx.learning)
		VHD_LOG(WARNING, port,
			"port %s: VXLAN device %s learns (give it nolearning: "
			"zebra installs the remote MACs)",
			e->p->name, b.vx.name);
	e->port_if = b.port.index;
	e->br_if = b.br.index;
	e->vx_if = b.vx.index;
	snprintf(e->br_name, sizeof(e->br_name), "%s", b.br.name);
	snprintf(e->vx_name, sizeof(e->vx_name), "%s", b.vx.name);
	e->bound = true;
	return 0;
}

/* ------------------------------------------------------------ vteps */

static struct evpn_vtep *vtep_find(struct vhd_evpn *e, uint32_t ip)
{
	for (int i = 0; i < VHD_VXLAN_REMOTES_MAX; i++)
		if (e->vtep[i].ip == ip)
			return &e->vtep[i];
	return NULL;
}

/* IP's VTEP, made (a sub-port) if new; NULL when there is no room. */
static struct evpn_vtep *vtep_get(struct vhd_evpn *e, uint32_t ip, bool flood)
{
	struct evpn_vtep *v = vtep_find(e, ip);
	int slot;

	if (v) {
		if (flood && !v->flood &&
		    vhd_switch_vtep_flood(v->slot, true) == 0)
			v->flood = true;
		return v;
	}
	v = vtep_find(e, 0);
	if (v == NULL || ip == vhd_running->ports[e->p->idx].vx.local_ip) {
		e->vtep_full++;
		return NULL;
	}
	slot = vhd_switch_vtep_add(e->p->idx, ip, flood);
	if (slot < 0) {
		nl_error(e, "adding a remote", -slot);
		return NULL;
	}
	v->ip = ip;
	v->slot = (uint16_t)slot;
	v->flood = flood;
	v->macs = 0;
	return v;
}

/* Gone when neither flooded to nor behind a MAC. */
static void vtep_put(struct vhd_evpn *e, struct evpn_vtep *v)
{
	if (v->flood || v->macs)
		return;
	vhd_switch_vtep_del(v->slot);
	memset(v, 0, sizeof(*v));
	(void)e;
}

static void vtep_flood(struct vhd_evpn *e, uint32_t ip, bool flood)
{
	struct evpn_vtep *v;

	if (flood) {
		vtep_get(e, ip, true);
		return;
	}
	v = vtep_find(e, ip);
	if (v == NULL || !v->flood)
		return;
	if (vhd_switch_vtep_flood(v->slot, false) == 0)
		v->flood = false;
	vtep_put(e, v);
}

/* ------------------------------------------------------------ MACs */

/* A key rte_hash_iterate gave (copied: no alignment assumed). */
static inline uint64_t key_at(const void *k)
{
	uint64_t key;

	memcpy(&key, k, sizeof(key));
	return key;
}

static struct evpn_mac *mac_get(struct vhd_evpn *e, uint64_t key, bool make)
{
	int32_t pos = rte_hash_lookup(e->macs, &key);

	if (pos < 0 && make) {
		pos = rte_hash_add_key(e->macs, &key);
		if (pos >= 0)
			memset(&e->mac[pos], 0, sizeof(e->mac[pos]));
	}
	return pos < 0 ? NULL : &e->mac[pos];
}

static void mac_forget(struct vhd_evpn *e, uint64_t key, struct evpn_mac *m)
{
	if (m->self_ip || m->master || m->remote || m->written)
		return;
	rte_hash_del_key(e->macs, &key);
}

static struct vhd_fdb *fdb_of(const struct vhd_evpn *e)
{
	struct vhd_bridge *br = vhd_bridges[e->p->bridge];

	return br ? br->fdb : NULL;
}

/* Make vhostd's FDB say what the kernel says of MAC KEY: remote behind a
 * VTEP while the bridge has it on the VXLAN device and the device names
 * the VTEP. */
static void mac_eval(struct vhd_evpn *e, uint64_t key, struct evpn_mac *m)
{
	struct vhd_fdb *f = fdb_of(e);
	uint32_t want = m->master == e->vx_if ? m->self_ip : 0;
	struct evpn_vtep *v, *left = NULL;
	uint16_t port;
	uint8_t kind;

	if (want == m->remote || f == NULL)
		goto out;
	if (m->remote) {
		left = vtep_find(e, m->remote);
		/* Ours only while still EVPN's: a frame from a local port
		 * has made it a learned entry since (the MAC moved here). */
		if (!want && vhd_fdb_get(f, key | e->vlan, &port, &kind) == 0 &&
		    kind == VHD_FDB_EVPN && left && port == left->slot)
			vhd_fdb_del(f, key | e->vlan);
		m->remote = 0;
		e->remote_macs--;
		if (left)
			left->macs--;
	}
	/* A static entry (fdb add) is the operator's: BGP does not move it. */
	if (want && vhd_fdb_get(f, key | e->vlan, &port, &kind) == 0 &&
	    kind == VHD_FDB_STATIC)
		want = 0;
	if (want && (v = vtep_get(e, want, false)) != NULL) {
		if (vhd_fdb_set(f, key | e->vlan, v->slot, VHD_FDB_EVPN) < 0) {
			nl_error(e, "remote MAC: bridge MAC table", ENOSPC);
			vtep_put(e, v);
		} else {
			v->macs++;
			m->remote = want;
			e->remote_macs++;
			/* zebra replaced vhostd's entry when the MAC moved
			 * away: not ours to delete any more. */
			if (m->written) {
				m->written = false;
				e->local_macs--;
			}
		}
	}
	/* The VTEP the MAC left, once nothing needs it. */
	if (left)
		vtep_put(e, left);
out:
	mac_forget(e, key, m);
}

struct neigh {
	uint64_t key;
	uint32_t dst; /* network order; 0: none */
	int master;   /* NDA_MASTER, 0: none */
	bool has_mac;
};

static int neigh_attr(const struct nlattr *a, void *arg)
{
	struct neigh *n = arg;

	switch (mnl_attr_get_type(a)) {
	case NDA_LLADDR:
		if (mnl_attr_get_payload_len(a) == RTE_ETHER_ADDR_LEN) {
			n->key = 0;
			memcpy(&n->key, mnl_attr_get_payload(a),
			       RTE_ETHER_ADDR_LEN);
			n->has_mac = true;
		}
		break;
	case NDA_DST:
		if (mnl_attr_get_payload_len(a) == 4)
			memcpy(&n->dst, mnl_attr_get_payload(a), 4);
		break;
	case NDA_MASTER:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			n->master = (int)mnl_attr_get_u32(a);
		break;
	}
	return MNL_CB_OK;
}

/* One AF_BRIDGE neighbour message (event or dump part). */
static int neigh_msg(const struct nlmsghdr *nlh, void *arg)
{
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
	bool del = nlh->nlmsg_type == RTM_DELNEIGH;
	struct neigh n = {0};

	(void)arg;
	if ((nlh->nlmsg_type != RTM_NEWNEIGH && !del) ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*nd)) ||
	    nd->ndm_family != AF_BRIDGE)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*nd), neigh_attr, &n);
	if (!n.has_mac)
		return MNL_CB_OK;
	for (struct vhd_evpn *e = evpns; e; e = e->next) {
		struct evpn_mac *m;

		if (!e->bound)
			continue;
		/* The VXLAN device's own entries: which VTEP. */
		if (nd->ndm_ifindex == e->vx_if && n.master == 0 && n.dst) {
			if (n.key == 0) { /* 00:00:00:00:00:00: flood, type-3 */
				if (!e->resyncing)
					vtep_flood(e, n.dst, !del);
				else if (!del &&
					 e->n_rs_flood < VHD_VXLAN_REMOTES_MAX)
					e->rs_flood[e->n_rs_flood++] = n.dst;
				continue;
			}
			m = mac_get(e, n.key, !del);
			if (m == NULL)
				continue;
			if (!del)
				m->self_ip = n.dst;
			else if (m->self_ip == n.dst)
				m->self_ip = 0;
			if (!e->resyncing)
				mac_eval(e, n.key, m);
			continue;
		}
		/* The bridge's entries (NDA_MASTER; the bridge sets no
		 * NTF_MASTER in what it sends): where the MAC is. Its own
		 * addresses (permanent) are no MAC of a port. */
		if (n.master != e->br_if || (nd->ndm_state & NUD_PERMANENT) ||
		    n.key == 0)
			continue;
		m = mac_get(e, n.key, !del);
		if (m == NULL)
			continue;
		if (!del)
			m->master = nd->ndm_ifindex;
		else if (m->master == nd->ndm_ifindex)
			m->master = 0;
		/* Our own entry gone or moved (by zebra, or by hand). */
		if (m->written && (del || nd->ndm_ifindex != e->port_if)) {
			m->written = false;
			e->local_macs--;
		}
		if (!e->resyncing)
			mac_eval(e, n.key, m);
	}
	return MNL_CB_OK;
}

static int dump_neighs(struct vhd_evpn *e)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *nd;

	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = AF_BRIDGE;
	/* The bridge's entries and its ports' own (the VXLAN device's). */
	mnl_attr_put_u32(nlh, NDA_MASTER, (uint32_t)e->br_if);
	return request(nlh, neigh_msg, NULL);
}

/* Read the kernel's state anew (start, or events lost), then act on the
 * difference: what is not in it any more is undone, what stayed stays. */
static int resync(struct vhd_evpn *e)
{
	const void *k;
	void *d;
	uint32_t it = 0;
	int32_t pos;
	int rc;

	while ((pos = rte_hash_iterate(e->macs, &k, &d, &it)) >= 0) {
		e->mac[pos].self_ip = 0;
		e->mac[pos].master = 0;
	}
	e->resyncing = true;
	e->n_rs_flood = 0;
	rc = dump_neighs(e);
	e->resyncing = false;
	if (rc < 0)
		return rc;
	for (int i = 0; i < VHD_VXLAN_REMOTES_MAX; i++) {
		struct evpn_vtep *v = &e->vtep[i];
		bool flood = false;

		for (uint16_t j = 0; j < e->n_rs_flood; j++)
			flood |= e->rs_flood[j] == v->ip;
		if (v->ip && v->flood && !flood &&
		    vhd_switch_vtep_flood(v->slot, false) == 0)
			v->flood = false;
	}
	for (uint16_t j = 0; j < e->n_rs_flood; j++)
		vtep_get(e, e->rs_flood[j], true);
	/* Entries on the interface that vhostd has not written in this run
	 * (an earlier run's): its own to delete, on the next tick, unless
	 * the FDB has them. */
	it = 0;
	while ((pos = rte_hash_iterate(e->macs, &k, &d, &it)) >= 0) {
		struct evpn_mac *m = &e->mac[pos];

		if (m->master == e->port_if && !m->written && !m->remote) {
			m->written = true;
			e->local_macs++;
		}
		mac_eval(e, key_at(k), m);
	}
	for (int i = 0; i < VHD_VXLAN_REMOTES_MAX; i++)
		if (e->vtep[i].ip)
			vtep_put(e, &e->vtep[i]);
	e->fdb_gen = 0; /* write everything on the next tick */
	return 0;
}

/* ------------------------------------------------------------ writes */

/* Write (or delete) vhostd's entry KEY on E's interface: 0 or -errno. */
static int write_mac(struct vhd_evpn *e, uint64_t key, bool del)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ndmsg *nd;

	nlh->nlmsg_type = del ? RTM_DELNEIGH : RTM_NEWNEIGH;
	/* REPLACE: the MAC may be on the VXLAN device still (it moved
	 * here from a remote host). */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
			   (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = AF_BRIDGE;
	nd->ndm_ifindex = e->port_if;
	/* static: zebra advertises it, the bridge never ages it. */
	nd->ndm_state = NUD_NOARP;
	nd->ndm_flags = NTF_MASTER;
	mnl_attr_put(nlh, NDA_LLADDR, RTE_ETHER_ADDR_LEN, &key);
	return request(nlh, NULL, NULL);
}

static void write_local(struct vhd_evpn *e)
{
	struct vhd_fdb *f = fdb_of(e);
	const void *k;
	void *d;
	uint32_t it = 0;
	int32_t pos;

	if (f == NULL || !e->bound || vhd_fdb_gen(f) == e->fdb_gen)
		return;
	e->fdb_gen = vhd_fdb_gen(f);
	e->tick++;
	for (uint32_t i = 0; i < f->n_ent; i++) {
		const struct vhd_fdb_entry *fe = &f->ent[i];
		uint16_t port = __atomic_load_n(&fe->port, __ATOMIC_ACQUIRE);
		uint64_t key = __atomic_load_n(&fe->key, __ATOMIC_RELAXED);
		const struct vhd_port *q;
		struct evpn_mac *m;
		int rc;

		if (port == VHD_PORT_NONE || (key & ~MAC_KEY_MASK) != e->vlan ||
		    fe->is_static == VHD_FDB_EVPN ||
		    (q = vhd_ports[port]) == NULL || q->type == VHD_PORT_VTEP ||
		    q->type == VHD_PORT_VXLAN)
			continue;
		key &= MAC_KEY_MASK;
		m = mac_get(e, key, true);
		if (m == NULL) {
			nl_error(e, "local MACs", ENOSPC);
			break;
		}
		m->mark = e->tick;
		if (m->written)
			continue;
		rc = write_mac(e, key, false);
		if (rc < 0) {
			nl_error(e, "writing a local MAC", -rc);
			mac_forget(e, key, m);
			e->fdb_gen = 0; /* try again next second */
			continue;
		}
		m->written = true;
		e->local_macs++;
	}
	while ((pos = rte_hash_iterate(e->macs, &k, &d, &it)) >= 0) {
		struct evpn_mac *m = &e->mac[pos];
		uint64_t key = key_at(k);
		int rc;

		if (!m->written || m->mark == e->tick)
			continue;
		rc = write_mac(e, key, true);
		/* Gone already (zebra moved it, someone deleted it). */
		if (rc < 0 && rc != -ENOENT) {
			nl_error(e, "deleting a local MAC", -rc);
			e->fdb_gen = 0;
			continue;
		}
		m->written = false;
		e->local_macs--;
		/* Deleting while iterating is safe in rte_hash (the
		 * position stays free until the next add). */
		mac_forget(e, key, m);
	}
}

/* ------------------------------------------------------------ events */

static int event_msg(const struct nlmsghdr *nlh, void *arg)
{
	struct link l;

	(void)arg;
	if (nlh->nlmsg_type == RTM_NEWNEIGH || nlh->nlmsg_type == RTM_DELNEIGH)
		return neigh_msg(nlh, NULL);
	if ((nlh->nlmsg_type != RTM_DELLINK &&
	     nlh->nlmsg_type != RTM_NEWLINK) ||
	    !link_parse(nlh, &l))
		return MNL_CB_OK;
	for (struct vhd_evpn *e = evpns; e; e = e->next) {
		bool gone = nlh->nlmsg_type == RTM_DELLINK &&
			    (l.index == e->port_if || l.index == e->vx_if ||
			     l.index == e->br_if);
		bool left = nlh->nlmsg_type == RTM_NEWLINK &&
			    (l.index == e->port_if || l.index == e->vx_if) &&
			    l.master != e->br_if;

		if (e->bound && (gone || left)) {
			VHD_LOG(ERR, port,
				"port %s: evpn %s: %s %s; no remotes until "
				"the port is added again",
				e->p->name, e->ifname, l.name,
				gone ? "was deleted" : "left its bridge");
			e->bound = false;
			resync_all = true;
		}
	}
	return MNL_CB_OK;
}

void vhd_evpn_poll(void)
{
	char buf[NL_DUMP_SIZE];
	ssize_t n;

	if (ev_nl == NULL)
		return;
	while ((n = mnl_socket_recvfrom(ev_nl, buf, sizeof(buf))) > 0)
		mnl_cb_run(buf, (size_t)n, 0, 0, event_msg, NULL);
	if (n < 0 && errno == ENOBUFS) {
		VHD_LOG(WARNING, port,
			"evpn: netlink events lost; reading the kernel's "
			"state again");
		resync_all = true;
	}
	if (!resync_all)
		return;
	resync_all = false;
	for (struct vhd_evpn *e = evpns; e; e = e->next) {
		if (!e->bound) {
			/* Its kernel objects went: nothing of them stays. */
			const void *k;
			void *d;
			uint32_t it = 0;
			int32_t pos;

			while ((pos = rte_hash_iterate(e->macs, &k, &d, &it)) >=
			       0) {
				e->mac[pos].self_ip = 0;
				e->mac[pos].master = 0;
				e->mac[pos].written = false;
				mac_eval(e, key_at(k), &e->mac[pos]);
			}
			e->local_macs = 0;
			for (int i = 0; i < VHD_VXLAN_REMOTES_MAX; i++)
				if (e->vtep[i].ip) {
					e->vtep[i].flood = false;
					vtep_put(e, &e->vtep[i]);
				}
			continue;
		}
		if (resync(e) < 0)
			resync_all = true; /* next time round */
	}
}

void vhd_evpn_tick(void)
{
	for (struct vhd_evpn *e = evpns; e; e = e->next)
		write_local(e);
}

/* ------------------------------------------------------------ ports */

int vhd_evpn_start(struct vhd_port *p, const struct vhd_port_conf *pc,
		   char *err, size_t errlen)
{
	struct vhd_bridge *br = vhd_bridges[p->bridge];
	uint32_t cap = br && br->fdb ? br->fdb->cap : 0;
	char name[RTE_HASH_NAMESIZE];
	struct rte_hash_parameters hp = {
	    .name = name,
	    .entries = cap < 64 ? 64 : cap,
	    .key_len = sizeof(uint64_t),
	    .hash_func = rte_hash_crc,
	    .socket_id = SOCKET_ID_ANY,
	};
	struct vhd_evpn *e;
	int rc;

	if (cap == 0) {
		snprintf(err, errlen, "port %s: evpn needs a learning bridge",
			 p->name);
		return -EINVAL;
	}
	e = rte_zmalloc("vhd_evpn", sizeof(*e), 0);
	if (e == NULL) {
		snprintf(err, errlen, "port %s: out of memory", p->name);
		return -ENOMEM;
	}
	e->p = p;
	snprintf(e->ifname, sizeof(e->ifname), "%s", pc->vx.evpn);
	/* The VNI's MACs are those of the port's own VLAN (an access
	 * port's tag; untagged otherwise). */
	e->vlan =
	    vhd_vlan_is_default(&p->vlan) ? 0 : (uint64_t)p->vlan.tag << 48;
	snprintf(name, sizeof(name), "evpn_%u", p->idx);
	e->macs = rte_hash_create(&hp);
	e->n_mac = hp.entries + 64;
	e->mac = e->macs
		     ? rte_zmalloc("vhd_evpn", sizeof(*e->mac) * e->n_mac, 0)
		     : NULL;
	rc = e->mac ? sockets_open() : -ENOMEM;
	if (rc == 0) {
		char why[256];

		rc = bind_kernel(e, why, sizeof(why));
		if (rc < 0)
			snprintf(err, errlen, "port %s: %s", p->name, why);
	} else {
		snprintf(err, errlen, "port %s: evpn: %s", p->name,
			 rc == -ENOMEM ? "out of memory" : "netlink socket");
	}
	if (rc == 0) {
		p->evpn = e;
		e->next = evpns;
		evpns = e;
		rc = resync(e);
		if (rc < 0)
			snprintf(err, errlen,
				 "port %s: evpn %s: reading the FDB: %s",
				 p->name, e->ifname, strerror(-rc));
	}
	if (rc < 0) {
		if (p->evpn)
			vhd_evpn_stop(p);
		else {
			rte_hash_free(e->macs);
			rte_free(e->mac);
			rte_free(e);
			sockets_close();
		}
		return rc;
	}
	VHD_LOG(INFO, port,
		"port %s: evpn through %s (bridge %s, VXLAN device %s)",
		p->name, e->ifname, e->br_name, e->vx_name);
	return 0;
}

void vhd_evpn_stop(struct vhd_port *p)
{
	struct vhd_evpn *e = p->evpn, **pp;
	const void *k;
	void *d;
	uint32_t it = 0;
	int32_t pos;

	if (e == NULL)
		return;
	/* Withdrawn: every MAC vhostd wrote goes. Remotes go with the
	 * port's sub-ports (switch.c). */
	while ((pos = rte_hash_iterate(e->macs, &k, &d, &it)) >= 0)
		if (e->bound && e->mac[pos].written)
			write_mac(e, key_at(k), true);
	for (pp = &evpns; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	p->evpn = NULL;
	rte_hash_free(e->macs);
	rte_free(e->mac);
	rte_free(e);
	sockets_close();
}

json_t *vhd_evpn_json(const struct vhd_port *p)
{
	const struct vhd_evpn *e = p->evpn;
	uint32_t flood = 0;

	if (e == NULL)
		return json_null();
	for (int i = 0; i < VHD_VXLAN_REMOTES_MAX; i++)
		flood += e->vtep[i].ip && e->vtep[i].flood;
	return json_pack(
	    "{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I}", "interface", e->ifname,
	    "vxlan_device", e->vx_name, "bridge", e->br_name, "bound", e->bound,
	    "local_macs", (json_int_t)e->local_macs, "remote_macs",
	    (json_int_t)e->remote_macs, "flood_vteps", (json_int_t)flood,
	    "remotes_refused", (json_int_t)e->vtep_full, "netlink_errors",
	    (json_int_t)e->netlink_errors);
}
