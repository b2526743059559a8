/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/bridge.c: where a frame is decided on.
 *
 * A bridge is either a learning bridge (learn the source MACs of the whole
 * burst, look up the destinations of the whole burst, then hand each frame
 * to one port's tx buffer or flood it) or an xconnect (every frame goes to
 * the other port). The main design choice: the burst is reduced to its runs
 * of equal MACs before touching the table, since a burst from one guest is
 * nearly always one flow; a flood is one mbuf with its refcnt set to the
 * number of destinations (on every segment), never a copy. The bridge's
 * port list (its flood list) is read once per burst: the control thread
 * replaces it whole (RCU) when a port joins or leaves.
 */
#include <stdio.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include "vhd.h"
#include "vhd_fdb.h"

struct vhd_bridge *vhd_bridge_create(const struct vhd_bridge_conf *bc,
				     uint16_t idx)
{
	struct vhd_bridge *br = rte_zmalloc("vhd_bridge", sizeof(*br), 0);
	char name[RTE_HASH_NAMESIZE];

	if (br == NULL)
		return NULL;
	snprintf(br->name, sizeof(br->name), "%s", bc->name);
	br->idx = idx;
	br->mode = bc->mode;
	br->mac_aging = bc->mac_aging;
	br->ports = rte_zmalloc("vhd_ports", sizeof(*br->ports), 0);
	if (br->ports == NULL) {
		rte_free(br);
		return NULL;
	}
	if (br->mode == VHD_BR_LEARNING) {
		int rc;

		br->fdb = rte_zmalloc("vhd_fdb", sizeof(*br->fdb), 0);
		snprintf(name, sizeof(name), "fdb_%u", idx);
		rc = br->fdb ? vhd_fdb_create(br->fdb, name, bc->mac_table_size,
					      vhd_rcu)
			     : -ENOMEM;
		if (rc < 0) {
			VHD_LOG(ERR, bridge, "bridge %s: fdb: %s", br->name,
				rte_strerror(-rc));
			rte_free(br->fdb);
			rte_free(br->ports);
			rte_free(br);
			return NULL;
		}
	}
	return br;
}

void vhd_bridge_free(struct vhd_bridge *br)
{
	if (br == NULL)
		return;
	if (br->fdb) {
		vhd_fdb_free(br->fdb);
		rte_free(br->fdb);
	}
	rte_free(br->ports);
	rte_free(br);
}

void vhd_bridge_age(struct vhd_bridge *br)
{
	if (br->fdb)
		br->aged += vhd_fdb_age(br->fdb, vhd_clock, br->mac_aging);
}

void vhd_bridge_stats_sum(uint16_t idx, struct vhd_bridge_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_bridge_stats *x = &vhd_lcores[l].brstats[idx];

		out->learned += x->learned;
		out->moved += x->moved;
		out->learn_full += x->learn_full;
		out->learn_limited += x->learn_limited;
		out->flooded += x->flooded;
	}
}

/* N references to M, one on every segment: each reference is freed with
 * rte_pktmbuf_free, which drops one from each segment. We hold the only
 * reference: plain stores, not atomic adds. */
static inline void set_refs(struct rte_mbuf *m, uint16_t n)
{
	do
		rte_mbuf_refcnt_set(m, n);
	while ((m = m->next) != NULL);
}

static void flood(struct vhd_lcore *lc, const struct vhd_bridge *br,
		  const struct vhd_portlist *pl, uint16_t in_port,
		  struct rte_mbuf *m)
{
	uint16_t n = pl->n - 1; /* the ingress port is a member */

	if (unlikely(pl->n <= 1)) {
		lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
		rte_pktmbuf_free(m);
		return;
	}
	lc->brstats[br->idx].flooded++;
	set_refs(m, n);
	for (uint16_t i = 0; i < pl->n; i++)
		if (pl->port[i] != in_port)
			vhd_tx_buffer(lc, pl->port[i], m);
}

/* Hand a whole burst to one port: straight to tx when nothing is buffered
 * for it, so the common one-flow burst is not copied into a buffer, and tx
 * gets what rx learned of it (B). */
static void to_port(struct vhd_lcore *lc, uint16_t out, struct rte_mbuf **pkts,
		    uint16_t n, const struct vhd_burst *b)
{
	if (lc->tx[out].n == 0) {
		vhd_port_tx(lc, out, pkts, n, b);
		return;
	}
	for (uint16_t i = 0; i < n; i++)
		vhd_tx_buffer(lc, out, pkts[i]);
}

/* Flood a whole burst (one unknown or group destination): each mbuf gets one
 * reference per destination port, and the burst goes to each port whole,
 * as a unicast burst would. */
static void flood_burst(struct vhd_lcore *lc, const struct vhd_bridge *br,
			const struct vhd_portlist *pl, uint16_t in_port,
			struct rte_mbuf **pkts, uint16_t n,
			const struct vhd_burst *b)
{
	uint16_t k = pl->n - 1; /* the ingress port is a member */
	struct vhd_burst shared = {.bytes = b->bytes,
				   .max_len = b->max_len,
				   .plain = false,
				   .offl = b->offl};

	if (unlikely(pl->n <= 1)) {
		lc->stats[in_port].drop[VHD_DROP_NO_DEST] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	lc->brstats[br->idx].flooded += n;
	if (k > 1) {
		for (uint16_t i = 0; i < n; i++)
			set_refs(pkts[i], k);
		b = &shared; /* more than one reference each now */
	}
	for (uint16_t i = 0; i < pl->n; i++)
		if (pl->port[i] != in_port)
			to_port(lc, pl->port[i], pkts, n, b);
}

/* The memo of IN_PORT on this lcore, emptied if the FDB has changed since
 * it was made. */
static inline struct vhd_fdb_memo *
memo_of(struct vhd_lcore *lc, const struct vhd_fdb *f, uint16_t in_port)
{
	struct vhd_fdb_memo *mo = &lc->memo[in_port];
	uint32_t gen = vhd_fdb_gen(f);

	if (unlikely(mo->gen != gen || mo->fdb != f)) {
		mo->fdb = f;
		mo->gen = gen;
		mo->src = mo->dst = VHD_FDB_KEY_NONE;
	}
	return mo;
}

/* Learn the burst's sources US[0..ks). A one-source burst whose source this
 * lcore already learned on this port this second, with no change to the
 * table since, would change nothing: skip the table. (If that learn failed,
 * the table was full: it is retried next second.) */
static inline void learn(struct vhd_lcore *lc, struct vhd_bridge *br,
			 uint16_t in_port, const uint64_t *us, uint16_t ks)
{
	const struct vhd_port *ip;
	struct vhd_fdb_memo *mo;

	if (ks == 0)
		return;
	mo = memo_of(lc, br->fdb, in_port);
	if (ks == 1) {
		if (us[0] == mo->src && mo->src_seen == vhd_clock)
			return;
		mo->src = us[0];
		mo->src_seen = vhd_clock;
	}
	ip = vhd_port_get(in_port);
	if (unlikely(ip && ip->no_learn))
		return;
	vhd_fdb_learn(br->fdb, us, ks, in_port, ip ? ip->sec.learn_limit : 0,
		      vhd_clock, &lc->brstats[br->idx]);
}

/* Ports of the burst's destinations UD[0..kd). A one-destination burst to
 * the destination of the last one, with no change to the table since, goes
 * where that one went (or floods as it did). */
static inline void lookup(struct vhd_lcore *lc, struct vhd_bridge *br,
			  uint16_t in_port, const uint64_t *ud, uint16_t kd,
			  uint16_t *uport)
{
	struct vhd_fdb_memo *mo = memo_of(lc, br->fdb, in_port);

	if (kd == 1 && ud[0] == mo->dst) {
		uport[0] = mo->dst_port;
		return;
	}
	vhd_fdb_lookup(br->fdb, ud, kd, uport);
	if (kd == 1) {
		mo->dst = ud[0];
		mo->dst_port = uport[0];
	}
}

#define VLAN_HDR_LEN (RTE_ETHER_HDR_LEN + 4)

/* The VLAN ID of a tagged frame's header EH. */
static inline uint16_t vid_of(const struct rte_ether_hdr *eh)
{
	const struct rte_vlan_hdr *vh = (const struct rte_vlan_hdr *)(eh + 1);

	return rte_be_to_cpu_16(vh->vlan_tci) & 0xfff;
}

/* The VLAN a frame received on a port with config V belongs to: TAGGED,
 * with VID, or not. -1: the port does not carry it (OVS: a tagged frame on
 * an access port, a VLAN not in trunks). A priority-tagged frame (VID 0)
 * counts as untagged. */
static inline int vlan_in(const struct vhd_vlan *v, bool tagged, uint16_t vid)
{
	if (!tagged || vid == 0) {
		if (v->mode == VHD_VLAN_TRUNK)
			return vhd_vlan_carries(v, 0) ? 0 : -1;
		return v->tag;
	}
	if (v->mode == VHD_VLAN_ACCESS || !vhd_vlan_carries(v, vid))
		return -1;
	return vid;
}

/* Make M (ours alone: one reference, direct) leave in VLAN VID tagged or
 * untagged (TAG). 0, or -1 if it cannot be (no headroom). */
static int retag(struct rte_mbuf *m, uint16_t vid, bool tag)
{
	if (tag) {
		m->vlan_tci = vid;
		return rte_vlan_insert(&m) == 0 ? 0 : -1;
	}
	if (rte_vlan_strip(m) != 0)
		return -1;
	m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
	return 0;
}

/* One frame of VLAN VID (received TAGGED or not) to port OUT: its tag
 * made what OUT wants, in the mbuf itself (a unicast frame is ours
 * alone). */
static void vlan_to_port(struct vhd_lcore *lc, uint16_t in_port, uint16_t out,
			 struct rte_mbuf *m, uint16_t vid, bool tagged)
{
	const struct vhd_port *p = vhd_port_get(out);

	/* The entry was learned in this VLAN on OUT; a port deleted since
	 * is NULL here. */
	if (unlikely(p == NULL || !vhd_vlan_carries(&p->vlan, vid))) {
		lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
		rte_pktmbuf_free(m);
		return;
	}
	if (vhd_vlan_tagged_out(&p->vlan, vid) != tagged &&
	    unlikely(retag(m, vid, !tagged) < 0)) {
		lc->stats[in_port].drop[VHD_DROP_INVALID]++;
		rte_pktmbuf_free(m);
		return;
	}
	vhd_tx_buffer(lc, out, m);
}

/* Flood M (VLAN VID, received TAGGED or not) to the members that carry
 * VID. Those that take it as it came share M; those that take the other
 * form share one copy, retagged (a flood is the one place the switch
 * copies a frame: two ports cannot share one mbuf with two headers). */
static void vlan_flood(struct vhd_lcore *lc, const struct vhd_bridge *br,
		       const struct vhd_portlist *pl, uint16_t in_port,
		       struct rte_mbuf *m, uint16_t vid, bool tagged)
{
	uint16_t same[pl->n], other[pl->n], ns = 0, no = 0;
	struct rte_mbuf *m2 = NULL;

	for (uint16_t i = 0; i < pl->n; i++) {
		const struct vhd_port *p = vhd_port_get(pl->port[i]);

		if (pl->port[i] == in_port || p == NULL ||
		    !vhd_vlan_carries(&p->vlan, vid))
			continue;
		if (vhd_vlan_tagged_out(&p->vlan, vid) == tagged)
			same[ns++] = pl->port[i];
		else
			other[no++] = pl->port[i];
	}
	if (ns + no == 0) {
		lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
		rte_pktmbuf_free(m);
		return;
	}
	lc->brstats[br->idx].flooded++;
	if (no) {
		m2 = ns ? rte_pktmbuf_copy(m, lc->pool, 0, UINT32_MAX) : m;
		if (m2 == NULL || retag(m2, vid, !tagged) < 0) {
			lc->stats[in_port]
			    .drop[m2 ? VHD_DROP_INVALID : VHD_DROP_NO_MBUF] +=
			    no;
			if (m2 != NULL && m2 != m)
				rte_pktmbuf_free(m2);
			if (m2 == m) /* ns == 0: nobody else takes it */
				rte_pktmbuf_free(m);
			m2 = NULL;
			no = 0;
			if (ns == 0)
				return;
		}
	}
	if (ns) {
		set_refs(m, ns);
		for (uint16_t i = 0; i < ns; i++)
			vhd_tx_buffer(lc, same[i], m);
	}
	if (no) {
		set_refs(m2, no);
		for (uint16_t i = 0; i < no; i++)
			vhd_tx_buffer(lc, other[i], m2);
	}
}

/* Flood a whole one-destination burst of VLAN VID (all received TAGGED or
 * all not) as flood_burst does, when every member that carries VID takes
 * it as it came; false (nothing done) if one wants it retagged. */
static bool vlan_flood_burst(struct vhd_lcore *lc, const struct vhd_bridge *br,
			     const struct vhd_portlist *pl, uint16_t in_port,
			     struct rte_mbuf **pkts, uint16_t n, uint16_t vid,
			     bool tagged, const struct vhd_burst *b)
{
	uint16_t to[pl->n], k = 0;
	struct vhd_burst shared;

	for (uint16_t i = 0; i < pl->n; i++) {
		const struct vhd_port *p = vhd_port_get(pl->port[i]);

		if (pl->port[i] == in_port || p == NULL ||
		    !vhd_vlan_carries(&p->vlan, vid))
			continue;
		if (vhd_vlan_tagged_out(&p->vlan, vid) != tagged)
			return false;
		to[k++] = pl->port[i];
	}
	if (k == 0) {
		lc->stats[in_port].drop[VHD_DROP_NO_DEST] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return true;
	}
	lc->brstats[br->idx].flooded += n;
	if (k > 1) {
		for (uint16_t i = 0; i < n; i++)
			set_refs(pkts[i], k);
		if (b != NULL) {
			shared = *b;
			shared.plain = false; /* more than one reference each */
			b = &shared;
		}
	}
	for (uint16_t i = 0; i < k; i++)
		to_port(lc, to[i], pkts, n, b);
	return true;
}

/* A bridge with VLANs configured: each frame is put in its VLAN by its
 * port's config (or dropped, drop_vlan), learned and looked up as
 * (VLAN, MAC), and leaves every port tagged as that port wants. The
 * burst is still learned and looked up in bulk, by runs of equal keys. */
static void vlan_input(struct vhd_lcore *lc, struct vhd_bridge *br,
		       const struct vhd_portlist *pl, uint16_t in_port,
		       struct rte_mbuf **pkts, uint16_t n,
		       const struct vhd_burst *b)
{
	const struct vhd_port *ip = vhd_port_get(in_port);
	uint64_t us[VHD_BURST], ud[VHD_BURST];
	uint16_t uport[VHD_BURST], vid[VHD_BURST];
	uint8_t run[VHD_BURST];
	bool tagged[VHD_BURST], changed = false;
	uint16_t ks = 0, kd = 0, k = 0, ntagged = 0;

	if (unlikely(ip == NULL)) {
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct rte_ether_hdr *eh =
		    rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		bool t = eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_VLAN) &&
			 m->data_len >= VLAN_HDR_LEN;
		int v = vlan_in(&ip->vlan, t, t ? vid_of(eh) : 0);
		uint64_t d, s;

		/* A priority tag (VID 0) goes: the frame is untagged in
		 * whatever VLAN its port put it, tagged anew on the way out
		 * where a port wants it so. */
		if (unlikely(t && v >= 0 && vid_of(eh) == 0)) {
			if (retag(m, 0, false) < 0)
				v = -1;
			t = false;
			changed = true;
			eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		}

		if (v < 0) {
			lc->stats[in_port].drop[VHD_DROP_VLAN]++;
			rte_pktmbuf_free(m);
			continue;
		}
		d = vhd_fdb_key(&eh->dst_addr) | (uint64_t)v << 48;
		s = vhd_fdb_key(&eh->src_addr) | (uint64_t)v << 48;
		if (likely(!(s & 1)) && (ks == 0 || s != us[ks - 1]))
			us[ks++] = s;
		if (kd == 0 || d != ud[kd - 1])
			ud[kd++] = d;
		pkts[k] = m;
		vid[k] = (uint16_t)v;
		tagged[k] = t;
		ntagged += t;
		run[k++] = (uint8_t)(kd - 1);
	}
	if (k == 0)
		return;
	learn(lc, br, in_port, us, ks);
	lookup(lc, br, in_port, ud, kd, uport);
	/* A one-destination burst (one VLAN: the key has it) that leaves as
	 * it came goes whole, as on a bridge without VLANs, with what rx
	 * learned of it (unless frames were dropped or changed here). */
	if (kd == 1 && uport[0] == VHD_PORT_NONE &&
	    (ntagged == 0 || ntagged == k) &&
	    vlan_flood_burst(lc, br, pl, in_port, pkts, k, vid[0], tagged[0],
			     k == n && !changed ? b : NULL))
		return;
	if (kd == 1 && uport[0] != VHD_PORT_NONE && uport[0] != in_port &&
	    (ntagged == 0 || ntagged == k)) {
		const struct vhd_port *op = vhd_port_get(uport[0]);

		if (likely(op != NULL && vhd_vlan_carries(&op->vlan, vid[0]) &&
			   vhd_vlan_tagged_out(&op->vlan, vid[0]) ==
			       tagged[0])) {
			to_port(lc, uport[0], pkts, k,
				k == n && !changed ? b : NULL);
			return;
		}
	}
	for (uint16_t i = 0; i < k; i++) {
		uint16_t out = uport[run[i]];

		if (out == VHD_PORT_NONE)
			vlan_flood(lc, br, pl, in_port, pkts[i], vid[i],
				   tagged[i]);
		else if (unlikely(out == in_port)) {
			lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
			rte_pktmbuf_free(pkts[i]);
		} else
			vlan_to_port(lc, in_port, out, pkts[i], vid[i],
				     tagged[i]);
	}
}

static void learning_input(struct vhd_lcore *lc, struct vhd_bridge *br,
			   const struct vhd_portlist *pl, uint16_t in_port,
			   struct rte_mbuf **pkts, uint16_t n,
			   const struct vhd_burst *b)
{
	/* The burst as runs of equal MACs: US/UD hold each run's source and
	 * destination key, RUN[i] the destination run of frame i. */
	uint64_t us[VHD_BURST], ud[VHD_BURST];
	uint16_t uport[VHD_BURST];
	uint8_t run[VHD_BURST];
	uint16_t ks = 0, kd = 0;

	ud[0] = 0; /* n > 0, but the compiler cannot know */
	for (uint16_t i = 0; i < n; i++) {
		const struct rte_ether_hdr *eh =
		    rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *);
		uint64_t d = vhd_fdb_key(&eh->dst_addr);
		uint64_t s = vhd_fdb_key(&eh->src_addr);

		/* Every port a trunk of every VLAN: a tagged frame is in its
		 * VLAN (OVS's default), and leaves as it came. */
		if (unlikely(eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_VLAN)) &&
		    pkts[i]->data_len >= VLAN_HDR_LEN) {
			uint64_t v = vid_of(eh);

			d |= v << 48;
			s |= v << 48;
		}
		/* Group-bit sources (bit 0 of the first byte) are bogus:
		 * never learned. */
		if (likely(!(s & 1)) && (ks == 0 || s != us[ks - 1]))
			us[ks++] = s;
		if (kd == 0 || d != ud[kd - 1])
			ud[kd++] = d;
		run[i] = (uint8_t)(kd - 1);
	}
	learn(lc, br, in_port, us, ks);
	lookup(lc, br, in_port, ud, kd, uport);

	if (kd == 1 && uport[0] != in_port) {
		if (uport[0] == VHD_PORT_NONE)
			flood_burst(lc, br, pl, in_port, pkts, n, b);
		else
			to_port(lc, uport[0], pkts, n, b);
		return;
	}
	/* Many destinations behind one port (many flows between two ports,
	 * or one guest talking to many hosts behind an uplink): the burst
	 * still goes to that port whole, not frame by frame through its
	 * buffer. */
	if (uport[0] != VHD_PORT_NONE && uport[0] != in_port) {
		uint16_t k = 1;

		while (k < kd && uport[k] == uport[0])
			k++;
		if (k == kd) {
			to_port(lc, uport[0], pkts, n, b);
			return;
		}
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint16_t out = uport[run[i]];

		/* Multicast and broadcast MACs are never learned, so they
		 * read as unknown and flood like unknown unicast. */
		if (out == VHD_PORT_NONE)
			flood(lc, br, pl, in_port, m);
		else if (unlikely(out == in_port)) {
			lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
			rte_pktmbuf_free(m);
		} else
			vhd_tx_buffer(lc, out, m);
	}
}

/* Port security (allowed-macs): frames of PORT whose source MAC is not
 * one it may use are dropped (drop_spoof) before anything learns from
 * them. Compacts PKTS; returns how many are left and mends *B (a subset
 * of plain frames is plain). */
static uint16_t drop_spoofed(struct vhd_lcore *lc, const struct vhd_port *p,
			     struct rte_mbuf **pkts, uint16_t n,
			     struct vhd_burst *b)
{
	const struct vhd_port_security *sec = &p->sec;
	uint16_t k = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct rte_ether_hdr *eh =
		    rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		uint64_t s = vhd_fdb_key(&eh->src_addr);
		uint16_t j = 0;

		while (j < sec->n_allowed && sec->allowed[j] != s)
			j++;
		if (likely(j < sec->n_allowed)) {
			pkts[k++] = m;
			continue;
		}
		lc->stats[p->idx].drop[VHD_DROP_SPOOF]++;
		b->bytes -= rte_pktmbuf_pkt_len(m);
		rte_pktmbuf_free(m);
	}
	return k;
}

void vhd_bridge_input(struct vhd_lcore *lc, struct vhd_bridge *br,
		      uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		      const struct vhd_burst *b)
{
	const struct vhd_portlist *pl =
	    __atomic_load_n(&br->ports, __ATOMIC_ACQUIRE);
	struct vhd_burst kept;

	if (unlikely(pl->guarded)) {
		const struct vhd_port *ip = vhd_port_get(in_port);

		if (ip && ip->sec.n_allowed) {
			kept = *b;
			n = drop_spoofed(lc, ip, pkts, n, &kept);
			if (n == 0)
				return;
			b = &kept;
		}
	}

	if (br->mode == VHD_BR_XCONNECT) {
		/* Until its second port is added, an xconnect has nowhere to
		 * send. */
		if (unlikely(pl->n != 2)) {
			lc->stats[in_port].drop[VHD_DROP_NO_DEST] += n;
			rte_pktmbuf_free_bulk(pkts, n);
			return;
		}
		to_port(lc, pl->port[0] == in_port ? pl->port[1] : pl->port[0],
			pkts, n, b);
		return;
	}
	if (unlikely(pl->vlan_aware))
		vlan_input(lc, br, pl, in_port, pkts, n, b);
	else
		learning_input(lc, br, pl, in_port, pkts, n, b);
}
