/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/lcore.c: the datapath poll loop, its tx buffers, and which lcore polls
 * which rx queue.
 *
 * The loop, per iteration: for each rx queue of this lcore, rx a burst
 * (port_io.c), switch it (bridge.c) into per-destination tx buffers; then
 * flush every non-empty tx buffer (a buffer is also flushed as soon as it
 * holds a full burst) and report a quiescent state. Nothing is held across
 * iterations, so an unpublished port or device is safe to free once every
 * lcore has been through one quiescent state.
 */
#include <string.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "vhd.h"

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
	int socket = (int)rte_lcore_to_socket_id(lc->lcore_id);

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

/* Receive a burst from queue Q of P and switch it; false if it was empty. */
static inline bool rx_and_switch(struct vhd_lcore *lc, struct vhd_port *p,
				 uint16_t q, struct rte_mbuf **pkts)
{
	struct vhd_burst b;
	uint16_t n = vhd_port_rx(lc, p, q, pkts, &b);
	struct vhd_bridge *br;

	if (n == 0)
		return false;
	br = vhd_bridge_get(p->bridge);
	if (unlikely(br == NULL)) {
		lc->stats[p->idx].drop[VHD_DROP_NO_DEST] += n;
		rte_pktmbuf_free_bulk(pkts, n);
	} else {
		vhd_bridge_input(lc, br, p->idx, pkts, n, &b);
	}
	return true;
}

int vhd_lcore_main(void *arg)
{
	struct vhd_lcore *lc = arg;
	struct rte_mbuf *pkts[VHD_BURST];
	uint64_t tsc;

	rte_rcu_qsbr_thread_register(vhd_rcu, lc->idx);
	rte_rcu_qsbr_thread_online(vhd_rcu, lc->idx);
	VHD_LOG(INFO, main, "datapath lcore %u (cpu %d) started", lc->lcore_id,
		rte_lcore_to_cpu_id((int)lc->lcore_id));

	tsc = rte_rdtsc();
	while (likely(!vhd_quit)) {
		const struct vhd_rxq_list *rl =
		    __atomic_load_n(&lc->rxq, __ATOMIC_ACQUIRE);
		bool busy = false;
		uint64_t now;

		for (uint16_t i = 0; rl && i < rl->n; i++) {
			const struct vhd_rxq *e = &rl->q[i];
			struct vhd_port *p = vhd_port_get(e->port);
			uint16_t nq;

			if (unlikely(p == NULL))
				continue;
			nq = vhd_port_nrxq(p);
			for (uint16_t q = e->first; q < nq; q += e->stride)
				busy |= rx_and_switch(lc, p, q, pkts);
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

/*
 * Give every (port, rx queue) to one lcore and publish each lcore's list.
 * Queue q of the k-th port goes to lcore (k + q) % lcores: the first queues
 * of the ports, the busy ones, spread over the lcores first, and one entry
 * per (lcore, port) covers all of that port's queues on the lcore, so a
 * vhost port whose guest has one queue pair costs one poll, not
 * VHD_MAX_QUEUES. A policed port is the exception: all its queues go to
 * lcore k % lcores, so that one meter (that lcore's) sees all its traffic
 * and no lock or atomic is needed to apply one rate across queues
 * (dp/port_io.c); what a policed port forwards is bounded by its rate,
 * not by one lcore. (While the lists change, a port may for a moment be
 * polled by its old and its new lcore: each uses its own meter, so the
 * port may get its burst twice then, never a torn meter.) Old lists are
 * freed after a grace period. Control thread only.
 */
int vhd_sched_build(void)
{
	struct vhd_rxq_list *nl[VHD_MAX_DP_LCORES], *old[VHD_MAX_DP_LCORES];
	struct vhd_rxq_list *mid[VHD_MAX_DP_LCORES];
	uint16_t nports = 0, k = 0, nlc = vhd_n_lcores;

	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++)
		nports += vhd_ports[i] != NULL;
	/* Each lcore's new list and its intermediate one (below). */
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		size_t size =
		    sizeof(*nl[l]) + sizeof(nl[l]->q[0]) * (nports + 1);

		nl[l] = rte_zmalloc("vhd_rxq", size, RTE_CACHE_LINE_SIZE);
		mid[l] = rte_zmalloc("vhd_rxq", size, RTE_CACHE_LINE_SIZE);
		if (nl[l] == NULL || mid[l] == NULL) {
			do {
				rte_free(nl[l]);
				rte_free(mid[l]);
			} while (l--);
			return -ENOMEM;
		}
	}
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		const struct vhd_port *p = vhd_ports[i];

		if (p == NULL)
			continue;
		if (p->police) {
			struct vhd_rxq_list *rl = nl[k++ % nlc];

			rl->q[rl->n++] = (struct vhd_rxq){
			    .port = i, .first = 0, .stride = 1};
			continue;
		}
		for (uint16_t l = 0; l < vhd_n_lcores; l++) {
			/* the q with (k + q) % lcores == l */
			uint16_t first = (uint16_t)((l + nlc - k % nlc) % nlc);

			if (first < p->n_rxq)
				nl[l]->q[nl[l]->n++] = (struct vhd_rxq){
				    .port = i,
				    .first = first,
				    .stride = nlc,
				};
		}
		k++;
	}
	/* An ethdev rx queue must never be polled by two lcores at once (a
	 * vhost one is safe: librte_vhost's trylock). The lists are swapped
	 * one lcore at a time, so a queue that moves would be: first each
	 * lcore keeps only what it polls in both schedules, then, once every
	 * lcore has passed a quiescent state, takes its new list. */
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		struct vhd_rxq_list *o = vhd_lcores[l].rxq;

		for (uint16_t j = 0; o != NULL && j < nl[l]->n; j++)
			for (uint16_t i = 0; i < o->n; i++)
				if (memcmp(&o->q[i], &nl[l]->q[j],
					   sizeof(o->q[i])) == 0)
					mid[l]->q[mid[l]->n++] = nl[l]->q[j];
	}
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		old[l] = __atomic_exchange_n(&vhd_lcores[l].rxq, mid[l],
					     __ATOMIC_ACQ_REL);
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		__atomic_store_n(&vhd_lcores[l].rxq, nl[l], __ATOMIC_RELEASE);
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		rte_free(old[l]);
		rte_free(mid[l]);
	}
	return 0;
}

void vhd_sched_free(void)
{
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		rte_free(vhd_lcores[l].rxq);
		vhd_lcores[l].rxq = NULL;
	}
}
