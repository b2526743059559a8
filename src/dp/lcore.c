/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/lcore.c: the datapath poll loop and its tx buffers.
 *
 * The loop, per iteration: for each rx queue of this lcore's list
 * (sched.c decides which), rx a burst (port_io.c), switch it (bridge.c)
 * into per-destination tx buffers, and add its cycles to the queue's
 * entry; then flush every non-empty tx buffer (a buffer is also flushed as
 * soon as it holds a full burst) and report a quiescent state. Nothing is
 * held across iterations, so an unpublished port or device is safe to free
 * once every lcore has been through one quiescent state.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "vhd.h"

#define LOAD_EVERY 16 /* loops: one in LOAD_EVERY measures queues' cycles */

void vhd_lcore_flush_port(struct vhd_lcore *lc, uint16_t port)
{
	struct vhd_txbuf *tb = &lc->tx[port];
	uint16_t n = tb->n;

	tb->n = 0;
	vhd_port_tx(lc, port, tb->pkts, n, NULL);
}

/* Flush every buffer written since the last flush: a list of ports, not a
 * scan of all VHD_MAX_PORTS buffers (a buffer flushed when it filled up
 * stays listed, and may be empty now). */
static void flush_all(struct vhd_lcore *lc)
{
	for (uint16_t i = 0; i < lc->n_dirty; i++) {
		uint16_t port = lc->dirty[i];
		struct vhd_txbuf *tb = &lc->tx[port];

		tb->listed = false;
		if (tb->n)
			vhd_lcore_flush_port(lc, port);
	}
	lc->n_dirty = 0;
}

int vhd_lcore_alloc(struct vhd_lcore *lc)
{
	int socket = lc->numa;

#define LC_ALLOC(f, n)                                                 \
	(lc->f = rte_zmalloc_socket("vhd_lcore", sizeof(*lc->f) * (n), \
				    RTE_CACHE_LINE_SIZE, socket)) == NULL
	if (LC_ALLOC(dirty, VHD_MAX_PORTS) || LC_ALLOC(stats, VHD_MAX_PORTS) ||
	    LC_ALLOC(brstats, VHD_MAX_BRIDGES) || LC_ALLOC(tx, VHD_MAX_PORTS) ||
	    LC_ALLOC(memo, VHD_MAX_PORTS) || LC_ALLOC(meter, VHD_MAX_PORTS)) {
		vhd_lcore_free(lc);
		return -ENOMEM;
	}
#undef LC_ALLOC
	return 0;
}

void vhd_lcore_free(struct vhd_lcore *lc)
{
	rte_free(lc->dirty);
	rte_free(lc->stats);
	rte_free(lc->brstats);
	rte_free(lc->tx);
	rte_free(lc->memo);
	rte_free(lc->meter);
	lc->dirty = NULL;
	lc->stats = NULL;
	lc->brstats = NULL;
	lc->tx = NULL;
	lc->memo = NULL;
	lc->meter = NULL;
}

/* Receive a burst from rx queue E of P and switch it; how many frames came
 * (runts and policed ones included). */
static inline uint16_t rx_and_switch(struct vhd_lcore *lc, struct vhd_port *p,
				     struct vhd_rxq *e, struct rte_mbuf **pkts)
{
	struct vhd_burst b;
	uint64_t before = lc->stats[p->idx].rx_pkts;
	uint16_t n =
	    vhd_port_rx(lc, p, e->q, pkts, e->burst ? e->burst : VHD_BURST, &b);
	struct vhd_bridge *br;

	if (n == 0)
		return (uint16_t)(lc->stats[p->idx].rx_pkts - before);
	/* Super-frames: fewer at a time next poll (vhd.h, VHD_BURST_BIG). */
	e->burst =
	    unlikely(b.bytes > (uint64_t)n * VHD_BIG_FRAME) ? VHD_BURST_BIG : 0;
	/* An underlay (no bridge): VXLAN's (dp/vxlan.c). */
	if (unlikely(p->bridge == VHD_BRIDGE_NONE)) {
		vhd_vxlan_input(lc, p, pkts, n);
		return n;
	}
	br = vhd_bridge_get(p->bridge);
	if (unlikely(br == NULL)) {
		lc->stats[p->idx].drop[VHD_DROP_NO_DEST] += n;
		rte_pktmbuf_free_bulk(pkts, n);
	} else {
		vhd_bridge_input(lc, br, p->idx, pkts, n, &b);
	}
	return n;
}

int vhd_lcore_main(void *arg)
{
	struct vhd_lcore *lc = arg;
	struct rte_mbuf *pkts[VHD_BURST];
	uint64_t tsc;

	rte_rcu_qsbr_thread_register(vhd_rcu, lc->idx);
	rte_rcu_qsbr_thread_online(vhd_rcu, lc->idx);
	VHD_LOG(INFO, main, "datapath lcore %u (cpu %d) started", lc->lcore_id,
		lc->cpu);

	tsc = rte_rdtsc();
	while (likely(!vhd_quit)) {
		struct vhd_rxq_list *rl =
		    __atomic_load_n(&lc->rxq, __ATOMIC_ACQUIRE);
		/* Queues' cycles are measured in one loop of LOAD_EVERY (a
		 * TSC read per busy poll costs about 1 % at 64 B) and
		 * counted LOAD_EVERY times: over the 5 s window that is
		 * hundreds of thousands of samples. */
		const bool sample = (lc->loops & (LOAD_EVERY - 1)) == 0;
		uint64_t now, t = tsc;
		bool busy = false;

		for (uint16_t i = 0; rl && i < rl->n; i++) {
			struct vhd_rxq *e = &rl->q[i];
			struct vhd_port *p = vhd_port_get(e->port);
			uint16_t n;

			if (unlikely(p == NULL))
				continue;
			n = rx_and_switch(lc, p, e, pkts);
			/* A queue's load: the cycles since the previous busy
			 * queue (its poll, and any empty polls between); the
			 * flush is not counted. */
			if (n) {
				e->pkts += n;
				busy = true;
				if (unlikely(sample)) {
					now = rte_rdtsc();
					e->cycles += (now - t) * LOAD_EVERY;
					t = now;
				}
			}
		}
		flush_all(lc);
		lc->loops++;
		lc->busy_loops += busy;
		/* One TSC read a loop: this one's end is the next's start. */
		now = rte_rdtsc();
		if (busy)
			lc->busy_cycles += now - tsc;
		else
			lc->idle_cycles += now - tsc;
		tsc = now;
		rte_rcu_qsbr_quiescent(vhd_rcu, lc->idx);
	}

	flush_all(lc);
	rte_rcu_qsbr_thread_offline(vhd_rcu, lc->idx);
	rte_rcu_qsbr_thread_unregister(vhd_rcu, lc->idx);
	return 0;
}
