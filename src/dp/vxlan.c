/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/vxlan.c: VXLAN (RFC 7348) on the lcores: decapsulation of what an
 * underlay receives, encapsulation of what a vxlan port sends, and the ARP
 * a VTEP needs (answering for its local-ip, learning its remotes' MACs).
 *
 * Main design choice: a vxlan port is one VTEP sub-port per remote
 * (switch.c makes them), so the bridge learns MAC -> (vxlan port, remote)
 * as MAC -> sub-port, floods to every remote as to every member (head-end
 * replication), and per-remote counters are a port's counters: nothing in
 * bridge.c or fdb.c knows about tunnels. The split horizon (what came from
 * a remote goes to no remote of the same vxlan port: each remote floods to
 * the others itself, and a Linux VTEP with nolearning sends unknown
 * unicast to all) is kept at encapsulation: decapsulated mbufs carry a
 * dynamic flag and their vxlan port in a dynamic field. An
 * underlay is an ethdev port in no bridge: the lcore that polls it hands
 * its bursts here instead of to a bridge, so plain forwarding between
 * other ports pays nothing. Decapsulation moves the data offset
 * (rte_pktmbuf_adj), encapsulation prepends in the headroom; only a frame
 * shared with other destinations (a flood) or without headroom is copied.
 * Encapsulated frames go into the underlay's tx buffer of the lcore, sent
 * with the lcore's other bursts. The next hop of a remote comes from its
 * ARP reply (or next-hop-mac): an lcore that receives one writes it into
 * the sub-port (rare; only when it changes), and one that has a frame for
 * a remote without one asks, once a second per remote, from its own tx
 * queue of the underlay (the control thread has none of its own).
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <rte_udp.h>

#include "vhd.h"
#include "vhd_offload.h"

#define VXLAN_FLAG_I RTE_BE32(0x08000000)

/* The VXLAN header (RFC 7348 5): flags (I: 0x08), VNI << 8. */
struct vx_hdr {
	rte_be32_t flags;
	rte_be32_t vni;
} __rte_packed;

#define OUTER_LEN                                          \
	(RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + \
	 sizeof(struct rte_udp_hdr) + sizeof(struct vx_hdr))

/* Split horizon: set on decapsulated mbufs (ol_flags, cleared by every
 * mbuf reset), with the vxlan port they came from in a dynamic field.
 * Registered by the control thread before the first tunnel table is
 * published; 0 until then. */
static uint64_t vx_from_tunnel;
static int vx_horizon_off = -1;

static inline uint16_t *horizon(struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, vx_horizon_off, uint16_t *);
}

/* ---- rx ---------------------------------------------------------------- */

static inline uint64_t mac_word(const struct rte_ether_addr *a)
{
	uint64_t w = 0;

	memcpy(&w, a, RTE_ETHER_ADDR_LEN);
	return w;
}

/* An ARP frame on underlay UP: a request for one of its local-ips is
 * answered in place (into the underlay's tx buffer); the sender of any
 * ARP that is one of its remotes gives that remote's next hop. Consumes
 * M; false if M was dropped. */
static bool arp_input(struct vhd_lcore *lc, struct vhd_port *up,
		      const struct vhd_vxlan_map *map, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *ah = (struct rte_arp_hdr *)(eh + 1);
	struct rte_arp_ipv4 *a = &ah->arp_data;
	uint32_t spa, tpa;
	bool ours = false;

	if (rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN + sizeof(*ah) ||
	    ah->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    ah->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    ah->arp_hlen != RTE_ETHER_ADDR_LEN || ah->arp_plen != 4)
		return false;
	spa = a->arp_sip;
	tpa = a->arp_tip;
	for (uint16_t i = 0; i < map->n_local; i++)
		ours |= map->local[i] == tpa;
	/* Whoever speaks ARP from a remote's address is its next hop (no
	 * routing on the underlay in step 1: remotes are on-link). */
	if (rte_is_unicast_ether_addr(&a->arp_sha) &&
	    (ours || ah->arp_opcode == RTE_BE16(RTE_ARP_OP_REPLY))) {
		uint64_t nh = mac_word(&a->arp_sha) | VHD_VX_NH_VALID;

		for (uint16_t i = 0; i < map->n; i++) {
			struct vhd_port *p;

			if (map->e[i].remote != spa ||
			    (p = vhd_port_get(map->e[i].vtep)) == NULL ||
			    p->vx_static_nh ||
			    __atomic_load_n(&p->vx_nh, __ATOMIC_RELAXED) == nh)
				continue;
			__atomic_store_n(&p->vx_nh, nh, __ATOMIC_RELAXED);
		}
	}
	if (!ours || ah->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST)) {
		rte_pktmbuf_free(m); /* seen, not a drop */
		return true;
	}
	/* The reply, in place: an rx mbuf is ours alone. */
	rte_ether_addr_copy(&a->arp_sha, &eh->dst_addr);
	memcpy(&eh->src_addr, up->vx_src_mac, RTE_ETHER_ADDR_LEN);
	ah->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	rte_ether_addr_copy(&a->arp_sha, &a->arp_tha);
	memcpy(&a->arp_sha, up->vx_src_mac, RTE_ETHER_ADDR_LEN);
	a->arp_tip = spa;
	a->arp_sip = tpa;
	vhd_tx_buffer(lc, up->idx, m);
	return true;
}

/* The VTEP a VXLAN frame M (IPv4 header IP) is for, or VHD_PORT_NONE
 * with *REASON set: not for a tunnel of this underlay at all
 * (drop_not_vxlan), or a bad one (drop_vxlan). *ADJ: the outer headers'
 * length. */
static uint16_t classify(const struct vhd_vxlan_map *map, struct rte_mbuf *m,
			 const struct rte_ipv4_hdr *ip, uint32_t *adj,
			 enum vhd_drop *reason)
{
	uint32_t len = rte_pktmbuf_data_len(m), ihl, tot;
	const struct rte_udp_hdr *uh;
	const struct vx_hdr *vh;
	bool tunnel = false;

	*reason = VHD_DROP_NOT_VXLAN;
	if (len < RTE_ETHER_HDR_LEN + sizeof(*ip) ||
	    (ip->version_ihl >> 4) != 4 || ip->next_proto_id != IPPROTO_UDP)
		return VHD_PORT_NONE;
	ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;
	uh = (const struct rte_udp_hdr *)((const char *)ip + ihl);
	if (ihl < sizeof(*ip) || len < RTE_ETHER_HDR_LEN + ihl + sizeof(*uh))
		return VHD_PORT_NONE;
	for (uint16_t i = 0; i < map->n && !tunnel; i++)
		tunnel = map->e[i].local == ip->dst_addr &&
			 map->e[i].udp_be == uh->dst_port;
	if (!tunnel)
		return VHD_PORT_NONE;
	/* For one of our tunnels from here on: what is wrong is
	 * drop_vxlan. Fragments are not reassembled (RFC 7348 4.3: VTEPs
	 * must not fragment). */
	*reason = VHD_DROP_VXLAN;
	*adj = RTE_ETHER_HDR_LEN + ihl + sizeof(*uh) + sizeof(*vh);
	tot = rte_be_to_cpu_16(ip->total_length);
	if (len < *adj + RTE_ETHER_HDR_LEN ||
	    rte_pktmbuf_pkt_len(m) < RTE_ETHER_HDR_LEN + tot ||
	    tot < *adj || /* an inner Ethernet header at least */
	    (ip->fragment_offset &
	     RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return VHD_PORT_NONE;
	vh = (const struct vx_hdr *)(uh + 1);
	/* The I flag must be set; the reserved bits are ignored (5). */
	if (!(vh->flags & VXLAN_FLAG_I))
		return VHD_PORT_NONE;
	for (uint16_t i = 0; i < map->n; i++) {
		const struct vhd_vxlan_ent *e = &map->e[i];

		if (e->local == ip->dst_addr && e->udp_be == uh->dst_port &&
		    e->vni_be == (vh->vni & RTE_BE32(0xffffff00)) &&
		    e->remote == ip->src_addr) {
			/* Ethernet padding past the datagram goes. */
			if (rte_pktmbuf_pkt_len(m) > RTE_ETHER_HDR_LEN + tot)
				rte_pktmbuf_trim(m, rte_pktmbuf_pkt_len(m) -
							RTE_ETHER_HDR_LEN -
							tot);
			return e->vtep;
		}
	}
	return VHD_PORT_NONE;
}

/* A run of decapsulated frames from VTEP PORT into its bridge, as if the
 * VTEP had received them (its rx counters, the inner checksums an
 * af_packet underlay may leave partial). */
static void to_bridge(struct vhd_lcore *lc, const struct vhd_port *up,
		      uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct vhd_port_stats *st;
	struct vhd_bridge *br;
	struct vhd_burst b = {.plain = false, .offl = false};
	struct vhd_port *p;

	/* An empty run (the first, before any VTEP) has port NONE: not an
	 * index to look up. */
	if (n == 0)
		return;
	p = vhd_port_get(port);
	if (unlikely(p == NULL || (br = vhd_bridge_get(p->bridge)) == NULL)) {
		lc->stats[up->idx].drop[VHD_DROP_VXLAN] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	st = &lc->stats[port];
	for (uint16_t i = 0; i < n; i++) {
		pkts[i]->ol_flags |= vx_from_tunnel;
		*horizon(pkts[i]) = p->vx_parent;
		b.bytes += rte_pktmbuf_pkt_len(pkts[i]);
		b.max_len = RTE_MAX(b.max_len, rte_pktmbuf_pkt_len(pkts[i]));
	}
	st->rx_pkts += n;
	st->rx_bytes += b.bytes;
	if (up->rx_csum_check) {
		n = vhd_offload_rx(lc, p, pkts, n, &b);
		if (n == 0)
			return;
	}
	vhd_bridge_input(lc, br, port, pkts, n, &b);
}

void vhd_vxlan_input(struct vhd_lcore *lc, struct vhd_port *up,
		     struct rte_mbuf **pkts, uint16_t n)
{
	const struct vhd_vxlan_map *map =
	    __atomic_load_n(&up->vx_map, __ATOMIC_ACQUIRE);
	struct vhd_port_stats *st = &lc->stats[up->idx];
	struct rte_mbuf *run[VHD_BURST];
	uint16_t k = 0, cur = VHD_PORT_NONE;

	if (unlikely(map == NULL)) {
		st->drop[VHD_DROP_NOT_VXLAN] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eh =
		    rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		enum vhd_drop why;
		uint32_t adj;
		uint16_t vtep;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
			if (!arp_input(lc, up, map, m)) {
				st->drop[VHD_DROP_NOT_VXLAN]++;
				rte_pktmbuf_free(m);
			}
			continue;
		}
		vtep = eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)
			   ? classify(map, m,
				      (const struct rte_ipv4_hdr *)(eh + 1),
				      &adj, &why)
			   : (why = VHD_DROP_NOT_VXLAN, VHD_PORT_NONE);
		if (vtep == VHD_PORT_NONE) {
			st->drop[why]++;
			rte_pktmbuf_free(m);
			continue;
		}
		/* Zero copy: the inner frame starts ADJ bytes in. What the
		 * sender's offloads marked on the outer frame does not
		 * apply to the inner one. */
		rte_pktmbuf_adj(m, (uint16_t)adj);
		m->ol_flags &= ~(uint64_t)VHD_TX_OFFL_MARK;
		if (vtep != cur) {
			to_bridge(lc, up, cur, run, k);
			k = 0;
			cur = vtep;
		}
		run[k++] = m;
	}
	to_bridge(lc, up, cur, run, k);
}

/* ---- tx ---------------------------------------------------------------- */

/* The outer UDP source port: 49152..65535 from a hash of the inner flow
 * (RFC 7348 5), so ECMP on the underlay spreads flows and keeps each in
 * order: the MACs, and for IP the addresses (and ports of an unfragmented
 * TCP/UDP/IPv4 datagram), never a field that changes per packet. */
static inline uint16_t flow_port(const struct rte_mbuf *m)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);
	const struct rte_ether_hdr *eh = (const struct rte_ether_hdr *)d;
	/* rte_hash_crc reads 8 bytes at a time: the frame's fields are
	 * copied to aligned words first (headers sit at any offset). */
	uint64_t w[4] = {0};
	uint32_t h, w4;

	memcpy(w, d, 2 * RTE_ETHER_ADDR_LEN);
	h = rte_hash_crc(w, 2 * RTE_ETHER_ADDR_LEN, 0);

	if (eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4) &&
	    len >= RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr)) {
		const struct rte_ipv4_hdr *ip =
		    (const struct rte_ipv4_hdr *)(eh + 1);
		uint32_t ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;

		memcpy(w, &ip->src_addr, 8);
		h = rte_hash_crc_8byte(w[0], h);
		if ((ip->next_proto_id == IPPROTO_TCP ||
		     ip->next_proto_id == IPPROTO_UDP) &&
		    !(ip->fragment_offset &
		      RTE_BE16(RTE_IPV4_HDR_MF_FLAG |
			       RTE_IPV4_HDR_OFFSET_MASK)) &&
		    len >= RTE_ETHER_HDR_LEN + ihl + 4) {
			memcpy(&w4, (const uint8_t *)ip + ihl, 4);
			h = rte_hash_crc_4byte(w4, h);
		}
	} else if (eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV6) &&
		   len >= RTE_ETHER_HDR_LEN + 40) {
		memcpy(w, d + RTE_ETHER_HDR_LEN + 8, 32);
		h = rte_hash_crc(w, 32, h);
	}
	return (uint16_t)(49152 + (h ^ (h >> 16)) % 16384);
}

/* Ask who has P's remote (an ARP request on the underlay), at most once a
 * second per remote. */
static void arp_ask(struct vhd_lcore *lc, struct vhd_port *p,
		    struct vhd_port *up)
{
	uint64_t now = rte_rdtsc();
	struct rte_ether_hdr *eh;
	struct rte_arp_hdr *ah;
	struct rte_mbuf *m;

	if (now - p->vx_arp_tsc < rte_get_tsc_hz())
		return;
	p->vx_arp_tsc = now;
	m = rte_pktmbuf_alloc(lc->pool);
	if (m == NULL)
		return;
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, RTE_ETHER_HDR_LEN +
							       sizeof(*ah));
	if (eh == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	ah = (struct rte_arp_hdr *)(eh + 1);
	memset(&eh->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
	memcpy(&eh->src_addr, p->vx_src_mac, RTE_ETHER_ADDR_LEN);
	eh->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
	ah->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = RTE_ETHER_ADDR_LEN;
	ah->arp_plen = 4;
	ah->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
	memcpy(&ah->arp_data.arp_sha, p->vx_src_mac, RTE_ETHER_ADDR_LEN);
	ah->arp_data.arp_sip = p->vx_local;
	memset(&ah->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
	ah->arp_data.arp_tip = p->vx_remote;
	vhd_tx_buffer(lc, up->idx, m);
}

uint16_t vhd_vxlan_encap(struct vhd_lcore *lc, struct vhd_port *p,
			 struct rte_mbuf **pkts, uint16_t n, uint64_t *bytes)
{
	struct vhd_port_stats *st = &lc->stats[p->idx];
	struct vhd_port *up = vhd_port_get(p->vx_underlay);
	uint64_t nh = __atomic_load_n(&p->vx_nh, __ATOMIC_RELAXED);
	uint16_t sent = 0;

	*bytes = 0;
	if (unlikely(up == NULL || !(nh & VHD_VX_NH_VALID))) {
		uint16_t dropped = 0;

		/* What split horizon keeps from this tunnel is neither a
		 * drop nor a reason to look for the next hop. */
		for (uint16_t i = 0; i < n; i++) {
			struct rte_mbuf *m = pkts[i];

			if (!(m->ol_flags & vx_from_tunnel) ||
			    *horizon(m) != p->vx_parent)
				dropped++;
			rte_pktmbuf_free(m);
		}
		st->drop[up ? VHD_DROP_NO_NEIGH : VHD_DROP_NOT_READY] +=
		    dropped;
		if (up && dropped)
			arp_ask(lc, p, up);
		return 0;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eh;
		struct rte_ipv4_hdr *ip;
		struct rte_udp_hdr *uh;
		struct vx_hdr *vh;
		uint32_t len;
		uint16_t sport;

		/* Not back into the tunnel it came from: not counted, as a
		 * bridge does not count a frame not sent back out its
		 * ingress port. */
		if (unlikely(m->ol_flags & vx_from_tunnel) &&
		    *horizon(m) == p->vx_parent) {
			rte_pktmbuf_free(m);
			continue;
		}
		sport = flow_port(m);
		/* A flood's mbuf is every destination's: not ours to write
		 * a header into; nor is an indirect one's data. */
		if (rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m) ||
		    rte_pktmbuf_headroom(m) < OUTER_LEN) {
			struct rte_mbuf *c =
			    rte_pktmbuf_copy(m, lc->pool, 0, UINT32_MAX);

			rte_pktmbuf_free(m);
			if (unlikely(c == NULL ||
				     rte_pktmbuf_headroom(c) < OUTER_LEN)) {
				rte_pktmbuf_free(c);
				st->drop[VHD_DROP_NO_MBUF]++;
				continue;
			}
			m = c;
		}
		len = rte_pktmbuf_pkt_len(m);
		eh = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, OUTER_LEN);
		ip = (struct rte_ipv4_hdr *)(eh + 1);
		uh = (struct rte_udp_hdr *)(ip + 1);
		vh = (struct vx_hdr *)(uh + 1);
		memcpy(&eh->dst_addr, &nh, RTE_ETHER_ADDR_LEN);
		memcpy(&eh->src_addr, p->vx_src_mac, RTE_ETHER_ADDR_LEN);
		eh->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->type_of_service = 0;
		ip->total_length = rte_cpu_to_be_16(
		    (uint16_t)(len + OUTER_LEN - RTE_ETHER_HDR_LEN));
		ip->packet_id = 0;
		ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
		ip->time_to_live = 64;
		ip->next_proto_id = IPPROTO_UDP;
		ip->hdr_checksum = 0;
		ip->src_addr = p->vx_local;
		ip->dst_addr = p->vx_remote;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		uh->src_port = rte_cpu_to_be_16(sport);
		uh->dst_port = p->vx_udp_be;
		uh->dgram_len = rte_cpu_to_be_16(
		    (uint16_t)(len + sizeof(*uh) + sizeof(*vh)));
		/* Zero: no UDP checksum (RFC 7348 5, Linux's default). */
		uh->dgram_cksum = 0;
		vh->flags = VXLAN_FLAG_I;
		vh->vni = p->vx_vni_be;
		m->ol_flags &= ~((uint64_t)VHD_TX_OFFL_MARK | vx_from_tunnel);
		*bytes += len;
		sent++;
		vhd_tx_buffer(lc, up->idx, m);
	}
	return sent;
}

/* ---- control ----------------------------------------------------------- */

int vhd_vxlan_map_update(struct vhd_port *up, uint16_t except)
{
	static const struct rte_mbuf_dynfield hf = {
	    .name = "vhd_vxlan_horizon",
	    .size = sizeof(uint16_t),
	    .align = __alignof__(uint16_t),
	};
	static const struct rte_mbuf_dynflag ff = {.name = "vhd_vxlan_rx"};
	struct vhd_vxlan_map *old = up->vx_map, *map;
	uint16_t n = 0;

	if (vx_horizon_off < 0) {
		int off = rte_mbuf_dynfield_register(&hf);
		int bit = off < 0 ? off : rte_mbuf_dynflag_register(&ff);

		if (bit < 0) {
			VHD_LOG(ERR, port, "vxlan: mbuf dynamic field: %s",
				rte_strerror(rte_errno));
			return -ENOSPC;
		}
		vx_horizon_off = off;
		vx_from_tunnel = UINT64_C(1) << bit;
	}

	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		const struct vhd_port *p = vhd_ports[i];

		n += p && p->type == VHD_PORT_VTEP && !p->vx_dying &&
		     p->vx_underlay == up->idx && p->vx_parent != except;
	}
	map = rte_zmalloc("vhd_vxlan_map", sizeof(*map) + n * sizeof(map->e[0]),
			  RTE_CACHE_LINE_SIZE);
	if (map == NULL)
		return -ENOMEM;
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		const struct vhd_port *p = vhd_ports[i];
		struct vhd_vxlan_ent *e;
		bool known = false;

		if (p == NULL || p->type != VHD_PORT_VTEP || p->vx_dying ||
		    p->vx_underlay != up->idx || p->vx_parent == except)
			continue;
		e = &map->e[map->n++];
		e->local = p->vx_local;
		e->remote = p->vx_remote;
		e->vni_be = p->vx_vni_be;
		e->udp_be = p->vx_udp_be;
		e->vtep = p->idx;
		for (uint16_t k = 0; k < map->n_local; k++)
			known |= map->local[k] == p->vx_local;
		if (!known)
			map->local[map->n_local++] = p->vx_local;
	}
	__atomic_store_n(&up->vx_map, map, __ATOMIC_RELEASE);
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
	rte_free(old);
	return 0;
}
