/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bridge.c: where a frame is decided on.
 *
 * A bridge is either a learning bridge (learn the source MACs of the whole
 * burst, look up the destinations of the whole burst, then hand each frame
 * to one port's tx buffer or flood it) or an xconnect (every frame goes to
 * the other port). The main design choice: the burst is reduced to its runs
 * of equal MACs before touching the table, since a burst from one guest is
 * nearly always one flow; a flood is one mbuf with its refcnt set to the
 * number of destinations, never a copy.
 */
#include <stdio.h>

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
	rte_free(br);
}

void vhd_bridge_age(struct vhd_bridge *br)
{
	if (br->fdb)
		br->aged += vhd_fdb_age(br->fdb, vhd_clock, br->mac_aging);
}

static void flood(struct vhd_lcore *lc, const struct vhd_bridge *br,
		  uint16_t in_port, struct rte_mbuf *m)
{
	uint16_t n = br->n_ports - 1; /* the ingress port is a member */

	if (unlikely(n == 0)) {
		lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
		rte_pktmbuf_free(m);
		return;
	}
	lc->brstats[br->idx].flooded++;
	/* We hold the only reference: a plain store, not an atomic add. */
	rte_mbuf_refcnt_set(m, n);
	for (uint16_t i = 0; i < br->n_ports; i++)
		if (br->ports[i] != in_port)
			vhd_tx_buffer(lc, br->ports[i], m);
}

/*
 * Unique runs of KEYS[0..n): U[0..return) holds each run's key and RUN[i]
 * the run index of KEYS[i].
 */
static uint16_t runs(const uint64_t *keys, uint16_t n, uint64_t *u,
		     uint8_t *run)
{
	uint16_t k = 0;

	for (uint16_t i = 0; i < n; i++) {
		if (k == 0 || keys[i] != u[k - 1])
			u[k++] = keys[i];
		run[i] = (uint8_t)(k - 1);
	}
	return k;
}

static void learning_input(struct vhd_lcore *lc, struct vhd_bridge *br,
			   uint16_t in_port, struct rte_mbuf **pkts, uint16_t n)
{
	uint64_t src[VHD_BURST], dst[VHD_BURST], u[VHD_BURST];
	uint16_t uport[VHD_BURST];
	uint8_t run[VHD_BURST];
	uint16_t n_src = 0, k;

	for (uint16_t i = 0; i < n; i++) {
		const struct rte_ether_hdr *eh =
		    rte_pktmbuf_mtod(pkts[i], struct rte_ether_hdr *);

		dst[i] = vhd_fdb_key(&eh->dst_addr);
		/* Group-bit sources are bogus: never learned. */
		if (likely(!(eh->src_addr.addr_bytes[0] & 1)))
			src[n_src++] = vhd_fdb_key(&eh->src_addr);
	}

	k = runs(src, n_src, u, run);
	if (k)
		vhd_fdb_learn(br->fdb, u, k, in_port, vhd_clock,
			      &lc->brstats[br->idx]);

	k = runs(dst, n, u, run);
	vhd_fdb_lookup(br->fdb, u, k, uport);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint16_t out = uport[run[i]];

		/* Multicast and broadcast MACs are never learned, so they
		 * read as unknown and flood like unknown unicast. */
		if (out == VHD_PORT_NONE)
			flood(lc, br, in_port, m);
		else if (unlikely(out == in_port)) {
			lc->stats[in_port].drop[VHD_DROP_NO_DEST]++;
			rte_pktmbuf_free(m);
		} else
			vhd_tx_buffer(lc, out, m);
	}
}

void vhd_bridge_input(struct vhd_lcore *lc, struct vhd_bridge *br,
		      uint16_t in_port, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t ok = 0;

	/* Runts cannot be switched; drop them here, once. */
	for (uint16_t i = 0; i < n; i++) {
		if (unlikely(rte_pktmbuf_data_len(pkts[i]) <
			     sizeof(struct rte_ether_hdr))) {
			lc->stats[in_port].drop[VHD_DROP_INVALID]++;
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		pkts[ok++] = pkts[i];
	}
	if (unlikely(ok == 0))
		return;

	if (br->mode == VHD_BR_XCONNECT) {
		uint16_t out =
		    br->ports[0] == in_port ? br->ports[1] : br->ports[0];

		if (unlikely(br->n_ports != 2)) {
			lc->stats[in_port].drop[VHD_DROP_NO_DEST] += ok;
			rte_pktmbuf_free_bulk(pkts, ok);
			return;
		}
		for (uint16_t i = 0; i < ok; i++)
			vhd_tx_buffer(lc, out, pkts[i]);
		return;
	}
	learning_input(lc, br, in_port, pkts, ok);
}
