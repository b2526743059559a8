/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/port_io.c: where a frame enters and leaves the switch, for both kinds
 * of port, and the port counters.
 *
 * Design choice: one rx and one tx function switch on the port type once per
 * burst; the vhost side talks to librte_vhost directly (as OVS does), not
 * through the vhost PMD, so vhostd owns the device lifecycle (ports/vhost.c).
 * Tx retries a full ring a bounded number of times while it makes progress,
 * then drops and counts, so one slow guest cannot stall an lcore. A capture
 * (dp/capture.c) sees a port's frames here, as they arrive and as they are
 * handed to the port; while none runs that costs one predictable branch.
 * So does ingress policing (rte_meter srTCM) on a port without it.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_vhost.h>

#include "vhd.h"
#include "vhd_capture.h"
#include "vhd_offload.h"

#define TX_RETRIES 8

const char *const vhd_drop_names[VHD_DROP_MAX] = {
    [VHD_DROP_NO_DEST] = "drop_no_dest",
    [VHD_DROP_INVALID] = "drop_invalid",
    [VHD_DROP_NOT_READY] = "drop_not_ready",
    [VHD_DROP_TX_FULL] = "drop_tx_full",
    [VHD_DROP_VLAN] = "drop_vlan",
    [VHD_DROP_NO_MBUF] = "drop_no_mbuf",
    [VHD_DROP_SPOOF] = "drop_spoof",
    [VHD_DROP_MTU] = "drop_mtu",
    [VHD_DROP_POLICED] = "drop_policed",
    [VHD_DROP_BAD_OFFLOAD] = "drop_bad_offload",
    [VHD_DROP_VXLAN] = "drop_vxlan",
    [VHD_DROP_NOT_VXLAN] = "drop_not_vxlan",
    [VHD_DROP_NO_NEIGH] = "drop_no_neigh",
};

static uint64_t bytes_of(struct rte_mbuf **pkts, uint16_t n)
{
	uint64_t b = 0;

	for (uint16_t i = 0; i < n; i++)
		b += rte_pktmbuf_pkt_len(pkts[i]);
	return b;
}

/* Non-zero unless M is plain: one segment, one reference, direct, from
 * POOL (the lcore's), so it can go straight back to POOL once sent. */
static inline uint64_t not_plain(const struct rte_mbuf *m,
				 const struct rte_mempool *pool)
{
	return (m->ol_flags & (RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL)) |
	       (uint64_t)(rte_mbuf_refcnt_read(m) ^ 1) |
	       (uint64_t)(m->nb_segs ^ 1) | (uint64_t)(m->pool != pool);
}

/* Drop the runts of a burst (frames too short for an Ethernet header, which
 * a guest can send); rare, so kept out of the loop below. */
static uint16_t drop_runts(struct vhd_port_stats *st, struct rte_mbuf **pkts,
			   uint16_t n)
{
	uint16_t ok = 0;

	for (uint16_t i = 0; i < n; i++) {
		if (rte_pktmbuf_data_len(pkts[i]) < RTE_ETHER_HDR_LEN) {
			st->drop[VHD_DROP_INVALID]++;
			rte_pktmbuf_free(pkts[i]);
			continue;
		}
		pkts[ok++] = pkts[i];
	}
	return ok;
}

/*
 * Ingress policing: the frames of a burst that the port's srTCM meter
 * colours red (above the rate, the burst spent) are dropped, counted
 * drop_policed, before the bridge learns or forwards anything of them. The
 * meter is this lcore's for this port: vhd_sched_build gives all the rx
 * queues of a policed port to one lcore, so this one meter sees all the
 * port's traffic and applies the whole rate (a meter per queue or per
 * lcore with a share of the rate would hold a single flow, which RSS puts
 * on one queue, to that share). No lock or atomic: the state is the
 * lcore's own. One TSC read a burst; EBS is 0, so a frame is green or red.
 */
static uint16_t police(struct vhd_lcore *lc, struct vhd_port *p,
		       struct rte_mbuf **pkts, uint16_t n, struct vhd_burst *b)
{
	struct rte_meter_srtcm *m = &lc->meter[p->idx];
	struct rte_mbuf *red[VHD_BURST];
	uint64_t now = rte_rdtsc(), red_bytes = 0;
	uint16_t ok = 0, nr = 0;

	for (uint16_t i = 0; i < n; i++) {
		uint32_t len = rte_pktmbuf_pkt_len(pkts[i]);

		if (likely(rte_meter_srtcm_color_blind_check(m, &p->police_prof,
							     now, len) !=
			   RTE_COLOR_RED)) {
			pkts[ok++] = pkts[i];
			continue;
		}
		red[nr++] = pkts[i];
		red_bytes += len;
	}
	if (nr) {
		lc->stats[p->idx].drop[VHD_DROP_POLICED] += nr;
		b->bytes -= red_bytes;
		rte_pktmbuf_free_bulk(red, nr);
	}
	return ok;
}

uint16_t vhd_port_rx(struct vhd_lcore *lc, struct vhd_port *p, uint16_t q,
		     struct rte_mbuf **pkts, uint16_t max, struct vhd_burst *b)
{
	struct vhd_port_stats *st = &lc->stats[p->idx];
	struct vhd_capture *cap;
	uint64_t bytes = 0, odd = 0, ol = 0;
	uint32_t max_len = 0;
	uint16_t n, min_len = UINT16_MAX;

	if (p->type == VHD_PORT_VHOST) {
		int vid = __atomic_load_n(&p->vid, __ATOMIC_ACQUIRE);

		if (vid < 0 ||
		    q >= __atomic_load_n(&p->nr_qp, __ATOMIC_RELAXED))
			return 0;
		/* librte_vhost has just copied the frames into the mbufs:
		 * they are in cache, no prefetch. */
		n = rte_vhost_dequeue_burst(vid, q * 2 + 1, lc->pool, pkts,
					    max);
	} else {
		n = rte_eth_rx_burst(p->eth_id, q, pkts, max);
		for (uint16_t i = 0; i < n; i++)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	}
	if (n == 0)
		return 0;
	cap = __atomic_load_n(&p->cap, __ATOMIC_ACQUIRE);
	if (unlikely(cap != NULL))
		vhd_capture_burst(cap, lc->idx, pkts, n, VHD_CAP_RX, q);
	/* The one pass over the burst: the mbuf fields read here share the
	 * mbuf's first cache line. */
	for (uint16_t i = 0; i < n; i++) {
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
		max_len = RTE_MAX(max_len, rte_pktmbuf_pkt_len(pkts[i]));
		min_len = RTE_MIN(min_len, rte_pktmbuf_data_len(pkts[i]));
		odd |= not_plain(pkts[i], lc->pool);
		ol |= pkts[i]->ol_flags;
	}
	st->rx_pkts += n;
	st->rx_bytes += bytes;
	b->bytes = bytes;
	b->max_len = max_len;
	b->plain = odd == 0;
	b->offl = false;
	if (unlikely(min_len < RTE_ETHER_HDR_LEN)) {
		n = drop_runts(st, pkts, n);
		b->bytes = bytes_of(pkts, n);
	}
	/* librte_vhost marks what a guest asked of its offloads; an ethdev
	 * PMD's rx checksum flags mean nothing here (no rx offload is
	 * enabled), but an af_packet port's checksums may be partial. */
	if (unlikely(
		(p->type == VHD_PORT_VHOST &&
		 (ol & (RTE_MBUF_F_RX_LRO | RTE_MBUF_F_RX_L4_CKSUM_MASK))) ||
		p->rx_csum_check) &&
	    n)
		n = vhd_offload_rx(lc, p, pkts, n, b);
	/* The one branch policing costs a port without it. */
	if (unlikely(p->police))
		n = police(lc, p, pkts, n, b);
	return n;
}

/*
 * Free a burst that librte_vhost has copied into the guest. When every mbuf
 * is plain (PLAIN: rx found so; else checked here), as after a unicast
 * forward, the burst goes straight back to the mempool cache, as a PMD
 * does with RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE; otherwise (floods hold more
 * references, jumbo frames have segments) rte_pktmbuf_free_bulk.
 */
static void free_copied(struct rte_mempool *pool, struct rte_mbuf **pkts,
			uint16_t n, bool plain)
{
	uint64_t odd = 0;

	if (!plain)
		for (uint16_t i = 0; i < n; i++)
			odd |= not_plain(pkts[i], pool);
	if (likely(odd == 0))
		rte_mempool_put_bulk(pool, (void **)pkts, n);
	else
		rte_pktmbuf_free_bulk(pkts, n);
}

/* The guest rx vring (our tx queue) for lcore IDX: the IDX-th enabled one,
 * modulo how many the guest enabled. -1 if none is. */
static int vhost_txq(const struct vhd_port *p, uint16_t idx)
{
	uint64_t w[VHD_MAX_QUEUES / 64];
	unsigned int n = 0, k;

	for (unsigned int i = 0; i < VHD_MAX_QUEUES / 64; i++) {
		w[i] = __atomic_load_n(&p->guest_rxq.w[i], __ATOMIC_RELAXED);
		n += (unsigned int)__builtin_popcountll(w[i]);
	}
	if (unlikely(n == 0))
		return -1;
	k = idx % n;
	for (unsigned int i = 0;; i++) {
		unsigned int c = (unsigned int)__builtin_popcountll(w[i]);

		if (k < c) {
			for (; k; k--)
				w[i] &= w[i] - 1;
			return (int)(i * 64 +
				     (unsigned int)__builtin_ctzll(w[i]));
		}
		k -= c;
	}
}

/* Copy PKTS[0..n) into P's guest; how many went. *SMALL: the guest has
 * buffers posted but the first unsent frame, a super-frame, fits none of
 * them (not counted as dropped: the caller segments it). */
static uint16_t vhost_tx(struct vhd_lcore *lc, struct vhd_port *p,
			 struct rte_mbuf **pkts, uint16_t n, bool *small)
{
	struct vhd_port_stats *st = &lc->stats[p->idx];
	int vid = __atomic_load_n(&p->vid, __ATOMIC_ACQUIRE);
	uint16_t sent = 0, k;
	unsigned int tries = 0;
	int q;

	if (unlikely(vid < 0 || (q = vhost_txq(p, lc->idx)) < 0)) {
		st->drop[VHD_DROP_NOT_READY] += n;
		return 0;
	}
	if (vhd_n_lcores > 1 &&
	    unlikely(!rte_spinlock_trylock(&p->txq_lock[q]))) {
		st->tx_lock_contended++;
		rte_spinlock_lock(&p->txq_lock[q]);
	}
	do {
		k = rte_vhost_enqueue_burst(vid, q * 2, pkts + sent, n - sent);
		sent += k;
	} while (k && sent < n && ++tries < TX_RETRIES);
	/* A guest with GUEST_TSO but without mergeable rx buffers must post
	 * buffers that hold a super-frame (Linux does: 64 KiB ones); DPDK's
	 * virtio PMD with LRO posts mbuf-sized ones, and librte_vhost stops
	 * at the first frame that fits no buffer. */
	*small = sent < n && (pkts[sent]->ol_flags & RTE_MBUF_F_TX_TCP_SEG) &&
		 rte_vhost_avail_entries(vid, (uint16_t)(q * 2)) > 0;
	if (vhd_n_lcores > 1)
		rte_spinlock_unlock(&p->txq_lock[q]);
	if (unlikely(sent < n) && !*small)
		st->drop[VHD_DROP_TX_FULL] += n - sent;
	/* librte_vhost copied the data: every mbuf is still ours. */
	return sent;
}

static uint16_t eth_tx(struct vhd_lcore *lc, struct vhd_port *p,
		       struct rte_mbuf **pkts, uint16_t n,
		       const struct vhd_burst *b)
{
	struct vhd_port_stats *st = &lc->stats[p->idx];
	uint16_t q = lc->idx % p->n_txq, sent = 0, k;
	uint64_t bytes = b ? b->bytes : bytes_of(pkts, n);
	unsigned int tries = 0;

	if (p->txq_shared && unlikely(!rte_spinlock_trylock(&p->txq_lock[q]))) {
		st->tx_lock_contended++;
		rte_spinlock_lock(&p->txq_lock[q]);
	}
	do {
		k = rte_eth_tx_burst(p->eth_id, q, pkts + sent, n - sent);
		sent += k;
	} while (k && sent < n && ++tries < TX_RETRIES);
	if (p->txq_shared)
		rte_spinlock_unlock(&p->txq_lock[q]);
	/* Sent mbufs belong to the PMD now: count the unsent ones only. */
	if (unlikely(sent < n)) {
		st->drop[VHD_DROP_TX_FULL] += n - sent;
		bytes -= bytes_of(pkts + sent, n - sent);
	}
	st->tx_bytes += bytes;
	return sent;
}

static void tx_checked(struct vhd_lcore *lc, struct vhd_port *p, uint16_t port,
		       struct rte_mbuf *const *pkts, uint16_t n);

/* Send PKTS[0..n) (at most VHD_BURST, checked) on P, index PORT. */
static void tx_send(struct vhd_lcore *lc, struct vhd_port *p, uint16_t port,
		    struct rte_mbuf **pkts, uint16_t n,
		    const struct vhd_burst *b)
{
	struct vhd_capture *cap = __atomic_load_n(&p->cap, __ATOMIC_ACQUIRE);
	uint16_t sent;

	if (unlikely(p->type == VHD_PORT_VTEP)) {
		uint64_t bytes;

		/* Into the underlay's tx buffer: what it then drops is
		 * counted there. */
		sent = vhd_vxlan_encap(lc, p, pkts, n, &bytes);
		lc->stats[port].tx_pkts += sent;
		lc->stats[port].tx_bytes += bytes;
		return;
	}
	if (p->type == VHD_PORT_VHOST) {
		bool small = false;

		sent = vhost_tx(lc, p, pkts, n, &small);
		/* What the guest got: librte_vhost copied it, the mbufs are
		 * still ours. */
		if (unlikely(cap != NULL) && sent)
			vhd_capture_burst(cap, lc->idx, pkts, sent, VHD_CAP_TX,
					  lc->idx);
		lc->stats[port].tx_bytes +=
		    b && sent == n ? b->bytes : bytes_of(pkts, sent);
		if (unlikely(small)) {
			/* No more super-frames to this guest (until it
			 * connects again): the rest, and all that follow,
			 * go segmented (dp/offload.c). Once: the rest has
			 * no super-frame left. */
			__atomic_fetch_and(&p->tx_offl,
					   ~(VHD_OFFL_TSO4 | VHD_OFFL_TSO6),
					   __ATOMIC_RELAXED);
			__atomic_store_n(&p->rx_bufs_small, true,
					 __ATOMIC_RELAXED);
			free_copied(lc->pool, pkts, sent, false);
			lc->stats[port].tx_pkts += sent;
			tx_checked(lc, p, port, pkts + sent, n - sent);
			return;
		}
		free_copied(lc->pool, pkts, n, b && b->plain);
	} else {
		/* Before the PMD owns them, where dpdk-dumpcap's tx callback
		 * would see them. */
		if (unlikely(cap != NULL))
			vhd_capture_burst(cap, lc->idx, pkts, n, VHD_CAP_TX,
					  lc->idx);
		sent = eth_tx(lc, p, pkts, n, b);
		if (unlikely(sent < n))
			rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
	lc->stats[port].tx_pkts += sent;
}

/* A burst that needs a look at each frame: a buffered one (no B), one
 * with a frame longer than P's MTU allows, or one with offload marks.
 * Frames too long are dropped (drop_mtu; 4 bytes more for a tagged one);
 * marked ones become what P can take (vhd_offload_tx), segments perhaps,
 * so what is sent may be more than VHD_BURST frames: it goes in bursts.
 * PKTS is left as it was (a flood hands the same array to every port). */
static void tx_checked(struct vhd_lcore *lc, struct vhd_port *p, uint16_t port,
		       struct rte_mbuf *const *pkts, uint16_t n)
{
	struct rte_mbuf *out[VHD_BURST], *segs[VHD_GSO_MAX_SEGS];
	uint16_t k = 0;

	/* Nothing to segment for a guest that is not there. */
	if (p->type == VHD_PORT_VHOST && unlikely(!vhd_port_up(p))) {
		lc->stats[port].drop[VHD_DROP_NOT_READY] += n;
		for (uint16_t i = 0; i < n; i++)
			rte_pktmbuf_free(pkts[i]);
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint32_t max = p->max_frame;
		int ns;

		if (unlikely(m->ol_flags & VHD_TX_OFFL_MARK)) {
			ns = vhd_offload_tx(lc, p, m, segs);
			for (int j = 0; j < ns; j++) {
				out[k++] = segs[j];
				if (k == VHD_BURST) {
					tx_send(lc, p, port, out, k, NULL);
					k = 0;
				}
			}
			continue;
		}
		if (rte_pktmbuf_pkt_len(m) > max) {
			const struct rte_ether_hdr *eh =
			    rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

			if (eh->ether_type == RTE_BE16(RTE_ETHER_TYPE_VLAN))
				max += 4;
		}
		if (unlikely(rte_pktmbuf_pkt_len(m) > max)) {
			lc->stats[port].drop[VHD_DROP_MTU]++;
			rte_pktmbuf_free(m);
			continue;
		}
		out[k++] = m;
		if (k == VHD_BURST) {
			tx_send(lc, p, port, out, k, NULL);
			k = 0;
		}
	}
	if (k)
		tx_send(lc, p, port, out, k, NULL);
}

void vhd_port_tx(struct vhd_lcore *lc, uint16_t port, struct rte_mbuf **pkts,
		 uint16_t n, const struct vhd_burst *b)
{
	struct vhd_port *p = vhd_port_get(port);

	if (unlikely(p == NULL)) {
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	/* What rx learned of the burst says at once whether any frame is too
	 * long or marked for offloads; a buffered burst is checked frame by
	 * frame. */
	if (b == NULL || unlikely(b->max_len > p->max_frame || b->offl)) {
		tx_checked(lc, p, port, pkts, n);
		return;
	}
	tx_send(lc, p, port, pkts, n, b);
}

bool vhd_port_up(const struct vhd_port *p)
{
	if (p->type == VHD_PORT_VHOST)
		return __atomic_load_n(&p->vid, __ATOMIC_ACQUIRE) >= 0;
	return true;
}

void vhd_port_stats_sum(uint16_t port, struct vhd_port_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_port_stats *s = &vhd_lcores[l].stats[port];

		out->rx_pkts += s->rx_pkts;
		out->rx_bytes += s->rx_bytes;
		out->tx_pkts += s->tx_pkts;
		out->tx_bytes += s->tx_bytes;
		for (int d = 0; d < VHD_DROP_MAX; d++)
			out->drop[d] += s->drop[d];
		out->tx_lock_contended += s->tx_lock_contended;
		out->rx_tso += s->rx_tso;
		out->rx_csum_partial += s->rx_csum_partial;
		out->tx_segmented += s->tx_segmented;
		out->tx_segments += s->tx_segments;
		out->tx_sw_csum += s->tx_sw_csum;
	}
}

/* At most 10 guest-triggered messages a second per port. Called from the
 * vhost-events and control threads, never the lcores; a race between the
 * two only miscounts the budget. */
bool vhd_log_ratelimit(struct vhd_port *p)
{
	uint64_t now = rte_get_timer_cycles();

	if (now - p->log_tsc > rte_get_timer_hz()) {
		p->log_tsc = now;
		p->log_burst = 0;
	}
	return ++p->log_burst <= 10;
}
