/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sched.c: which datapath lcore polls which rx queue, and what each queue
 * costs. Control thread only.
 *
 * Each lcore polls the queues of its list (struct vhd_rxq_list, published
 * with RCU) and adds to each entry the TSC cycles of its polls that
 * brought frames, through switching (dp/lcore.c). Once a second the
 * control thread adds what the entries gained to the port's per-queue
 * totals (harvest) and keeps a snapshot of each, so a queue's load is
 * what it cost over the last VHD_LOAD_SAMPLES - 1 seconds, whichever
 * lcores polled it meanwhile. Placement (rxq_place.c) gives every queue
 * an lcore from those loads, as OVS's pmd-rxq-assign=cycles does; it runs
 * whenever the set of queues changes (ports come and go, a guest enables
 * or disables queue pairs: vhd_sched_poll notices), on `rxq rebalance`,
 * and by itself with auto-rebalance when the estimated improvement is
 * worth it.
 *
 * What is polled: an ethdev's configured rx queues; a vhost port's guest
 * tx vrings that the guest has enabled (none while no guest is up), so an
 * idle or unconnected port costs the lcores nothing.
 *
 * Changing the lists loses no frame: nothing is held across loop
 * iterations, and a queue that moves is first dropped by its old lcore
 * (each lcore keeps only what it polls in both schedules), then, after a
 * grace period, taken by its new one, so no ethdev queue is ever polled by
 * two lcores at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "vhd.h"
#include "vhd_place.h"

struct lcore_sample {
	uint64_t busy, idle, rx_pkts;
};

static struct lcore_sample samples[VHD_MAX_DP_LCORES][VHD_LOAD_SAMPLES];
static unsigned int n_samples, next_sample;
static uint32_t last_auto; /* vhd_clock of the last auto-rebalance look */
static uint32_t placed_at; /* vhd_clock of the last re-placement */

/* The queues P's lcores should poll now. */
static void wanted(const struct vhd_port *p, struct vhd_qmask *m)
{
	memset(m, 0, sizeof(*m));
	if (p->type == VHD_PORT_VHOST) {
		uint16_t nq = vhd_port_nrxq(p);

		for (uint16_t q = 0; q < nq; q++)
			if (vhd_qmask_test(&p->guest_txq, q))
				m->w[q / 64] |= UINT64_C(1) << (q % 64);
		return;
	}
	for (uint16_t q = 0; q < p->n_rxq; q++)
		m->w[q / 64] |= UINT64_C(1) << (q % 64);
}

/* Add what the entries of RL gained since the last look to their ports'
 * totals. */
static void harvest(struct vhd_rxq_list *rl)
{
	for (uint16_t i = 0; rl && i < rl->n; i++) {
		struct vhd_rxq *e = &rl->q[i];
		struct vhd_port *p = vhd_ports[e->port];
		uint64_t c = __atomic_load_n(&e->cycles, __ATOMIC_RELAXED);
		uint64_t n = __atomic_load_n(&e->pkts, __ATOMIC_RELAXED);

		if (p != NULL && p->load != NULL && e->q < p->n_rxq) {
			p->load[e->q].cycles += c - e->seen_cycles;
			p->load[e->q].pkts += n - e->seen_pkts;
		}
		e->seen_cycles = c;
		e->seen_pkts = n;
	}
}

static void harvest_all(void)
{
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		harvest(vhd_lcores[l].rxq);
}

/* Snapshot slots: the newest and the oldest of the window. */
static unsigned int newest(void)
{
	return (next_sample + VHD_LOAD_SAMPLES - 1) % VHD_LOAD_SAMPLES;
}

static unsigned int oldest(void)
{
	return n_samples < VHD_LOAD_SAMPLES ? 0 : next_sample;
}

uint64_t vhd_sched_rxq_load(const struct vhd_port *p, uint16_t q)
{
	if (p->load == NULL || q >= p->n_rxq || n_samples < 2)
		return 0;
	return p->load[q].snap[newest()] - p->load[q].snap[oldest()];
}

void vhd_sched_rxq_window(const struct vhd_port *p, uint16_t q,
			  uint64_t *cycles, uint64_t *pkts)
{
	*cycles = *pkts = 0;
	if (p->load == NULL || q >= p->n_rxq || n_samples < 2)
		return;
	*cycles = p->load[q].snap[newest()] - p->load[q].snap[oldest()];
	*pkts = p->load[q].snap_pkts[newest()] - p->load[q].snap_pkts[oldest()];
}

int vhd_sched_lcore_window(uint16_t l, uint64_t *busy, uint64_t *idle,
			   uint64_t *rx_pkts)
{
	const struct lcore_sample *o, *n;

	if (l >= vhd_n_lcores || n_samples < 2)
		return -ENODATA;
	o = &samples[l][oldest()];
	n = &samples[l][newest()];
	*busy = n->busy - o->busy;
	*idle = n->idle - o->idle;
	*rx_pkts = n->rx_pkts - o->rx_pkts;
	return 0;
}

/* A plan: every wanted queue, where it is polled now and where it would
 * go. */
struct plan {
	struct vhd_place_rxq *q;
	int *cur; /* lcore polling q[i] now, -1: none */
	unsigned int n;
	uint64_t cur_load[VHD_MAX_DP_LCORES], new_load[VHD_MAX_DP_LCORES];
};

static void plan_free(struct plan *pl)
{
	free(pl->q);
	free(pl->cur);
	memset(pl, 0, sizeof(*pl));
}

static int lcore_of_cpu(uint16_t cpu)
{
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		if (vhd_lcores[l].cpu == cpu)
			return l;
	return -1;
}

/* The pin of queue Q of P (rxq-affinity), or -1. */
static int pin_of(const struct vhd_port *p, uint16_t q)
{
	const struct vhd_port_conf *pc = &vhd_running->ports[p->idx];

	for (uint16_t i = 0; i < pc->n_affinity; i++)
		if (pc->affinity[i].q == q)
			return lcore_of_cpu(pc->affinity[i].cpu);
	return -1;
}

static int port_numa(const struct vhd_port *p)
{
	if (p->type == VHD_PORT_VHOST)
		return p->numa_node;
	return rte_eth_dev_socket_id(p->eth_id);
}

/* Fill PL with every queue the lcores should poll (their ports' load
 * tables allocated on the way) and place them. */
static int plan_make(struct plan *pl)
{
	struct vhd_place_lcore lcs[VHD_MAX_DP_LCORES];
	unsigned int cap = 0;
	int rc;

	memset(pl, 0, sizeof(*pl));
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++)
		if (vhd_ports[i])
			cap += vhd_ports[i]->type == VHD_PORT_VHOST
				   ? vhd_port_nrxq(vhd_ports[i])
				   : vhd_ports[i]->n_rxq;
	pl->q = calloc(cap ? cap : 1, sizeof(*pl->q));
	pl->cur = calloc(cap ? cap : 1, sizeof(*pl->cur));
	if (pl->q == NULL || pl->cur == NULL) {
		plan_free(pl);
		return -ENOMEM;
	}
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		struct vhd_port *p = vhd_ports[i];
		struct vhd_qmask m;

		if (p == NULL)
			continue;
		wanted(p, &m);
		for (uint16_t q = 0; q < VHD_MAX_QUEUES && pl->n < cap; q++) {
			if (!(m.w[q / 64] >> (q % 64) & 1))
				continue;
			if (p->load == NULL) {
				p->load = calloc(p->n_rxq, sizeof(*p->load));
				if (p->load == NULL) {
					plan_free(pl);
					return -ENOMEM;
				}
			}
			pl->cur[pl->n] = -1;
			pl->q[pl->n++] = (struct vhd_place_rxq){
			    .port = i,
			    .q = q,
			    .numa = port_numa(p),
			    .pin = pin_of(p, q),
			    /* One meter per lcore: a policed port's queues
			     * share one. */
			    .group = p->police ? (uint32_t)i + 1 : 0,
			    .load = vhd_sched_rxq_load(p, q),
			};
		}
	}
	/* Where each is polled now: PL->q holds each port's queues
	 * together, in order. */
	{
		unsigned int *first = malloc(sizeof(*first) * VHD_MAX_PORTS);

		if (first == NULL) {
			plan_free(pl);
			return -ENOMEM;
		}
		for (uint16_t i = 0; i < VHD_MAX_PORTS; i++)
			first[i] = UINT_MAX;
		for (unsigned int k = pl->n; k-- > 0;)
			first[pl->q[k].port] = k;
		for (uint16_t l = 0; l < vhd_n_lcores; l++) {
			const struct vhd_rxq_list *rl = vhd_lcores[l].rxq;

			for (uint16_t j = 0; rl && j < rl->n; j++)
				for (unsigned int k = first[rl->q[j].port];
				     k < pl->n &&
				     pl->q[k].port == rl->q[j].port;
				     k++)
					if (pl->q[k].q == rl->q[j].q) {
						pl->cur[k] = l;
						break;
					}
		}
		free(first);
	}
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		lcs[l].numa = vhd_lcores[l].numa;
	for (unsigned int k = 0; k < pl->n; k++)
		pl->q[k].lcore = pl->cur[k];
	vhd_place_loads(pl->q, pl->n, vhd_n_lcores, pl->cur_load);
	rc = vhd_place(lcs, vhd_n_lcores, pl->q, pl->n, pl->new_load);
	if (rc < 0)
		plan_free(pl);
	return rc;
}

static int cmp_rxq(const void *a, const void *b)
{
	const struct vhd_rxq *x = a, *y = b;

	return x->port != y->port ? (int)x->port - (int)y->port
				  : (int)x->q - (int)y->q;
}

/* Publish PL's placement: each lcore's new list, through the
 * intermediate one. */
static int plan_apply(const struct plan *pl)
{
	struct vhd_rxq_list *nl[VHD_MAX_DP_LCORES] = {0};
	struct vhd_rxq_list *mid[VHD_MAX_DP_LCORES] = {0};
	struct vhd_rxq_list *old[VHD_MAX_DP_LCORES];
	unsigned int cnt[VHD_MAX_DP_LCORES] = {0};

	for (unsigned int k = 0; k < pl->n; k++)
		cnt[pl->q[k].lcore]++;
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		size_t size = sizeof(*nl[l]) + sizeof(nl[l]->q[0]) * cnt[l];

		nl[l] = rte_zmalloc("vhd_rxq", size, RTE_CACHE_LINE_SIZE);
		mid[l] = rte_zmalloc("vhd_rxq", size, RTE_CACHE_LINE_SIZE);
		if (nl[l] == NULL || mid[l] == NULL) {
			for (uint16_t k = 0; k <= l; k++) {
				rte_free(nl[k]);
				rte_free(mid[k]);
			}
			return -ENOMEM;
		}
	}
	for (unsigned int k = 0; k < pl->n; k++) {
		struct vhd_rxq_list *rl = nl[pl->q[k].lcore];

		rl->q[rl->n++] =
		    (struct vhd_rxq){.port = pl->q[k].port, .q = pl->q[k].q};
	}
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_rxq_list *o = vhd_lcores[l].rxq;

		qsort(nl[l]->q, nl[l]->n, sizeof(nl[l]->q[0]), cmp_rxq);
		for (uint16_t j = 0; o != NULL && j < nl[l]->n; j++)
			for (uint16_t i = 0; i < o->n; i++)
				if (o->q[i].port == nl[l]->q[j].port &&
				    o->q[i].q == nl[l]->q[j].q)
					mid[l]->q[mid[l]->n++] = nl[l]->q[j];
	}
	harvest_all();
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		old[l] = __atomic_exchange_n(&vhd_lcores[l].rxq, mid[l],
					     __ATOMIC_ACQ_REL);
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		harvest(old[l]);
		__atomic_store_n(&vhd_lcores[l].rxq, nl[l], __ATOMIC_RELEASE);
	}
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		harvest(mid[l]);
		rte_free(old[l]);
		rte_free(mid[l]);
	}
	placed_at = vhd_clock;
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++)
		if (vhd_ports[i])
			memset(&vhd_ports[i]->placed, 0,
			       sizeof(vhd_ports[i]->placed));
	for (unsigned int k = 0; k < pl->n; k++) {
		struct vhd_port *p = vhd_ports[pl->q[k].port];

		p->placed.w[pl->q[k].q / 64] |= UINT64_C(1)
						<< (pl->q[k].q % 64);
	}
	return 0;
}

int vhd_sched_build(void)
{
	struct plan pl;
	int rc = plan_make(&pl);

	if (rc < 0)
		return rc;
	rc = plan_apply(&pl);
	plan_free(&pl);
	return rc;
}

void vhd_sched_free(void)
{
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		rte_free(vhd_lcores[l].rxq);
		vhd_lcores[l].rxq = NULL;
	}
}

void vhd_sched_poll(void)
{
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		const struct vhd_port *p = vhd_ports[i];
		struct vhd_qmask m;

		if (p == NULL)
			continue;
		wanted(p, &m);
		if (memcmp(&m, &p->placed, sizeof(m)) != 0) {
			if (vhd_sched_build() < 0)
				VHD_LOG(WARNING, main,
					"rx schedule not rebuilt: out of "
					"memory");
			return;
		}
	}
}

int vhd_sched_rebalance(struct vhd_sched_report *r)
{
	struct plan pl;
	int rc = plan_make(&pl);

	if (rc < 0)
		return rc;
	memset(r, 0, sizeof(*r));
	for (unsigned int k = 0; k < pl.n; k++)
		r->moved += pl.cur[k] != pl.q[k].lcore;
	r->queues = pl.n;
	r->var_before = vhd_place_variance(pl.cur_load, vhd_n_lcores);
	r->var_after = vhd_place_variance(pl.new_load, vhd_n_lcores);
	r->improvement = vhd_place_improvement(r->var_before, r->var_after);
	memcpy(r->load_before, pl.cur_load, sizeof(r->load_before));
	memcpy(r->load_after, pl.new_load, sizeof(r->load_after));
	/* Only for the better: a placement no more even than the current
	 * one (equal loads swapped, idle queues shuffled) is not applied. */
	if (r->var_after >= r->var_before) {
		r->moved = 0;
		memcpy(r->load_after, pl.cur_load, sizeof(r->load_after));
		r->var_after = r->var_before;
		r->improvement = 0;
		plan_free(&pl);
		return 0;
	}
	rc = r->moved ? plan_apply(&pl) : 0;
	plan_free(&pl);
	return rc;
}

static uint64_t lcore_rx_pkts(const struct vhd_lcore *lc)
{
	uint64_t n = 0;

	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++)
		if (vhd_ports[i])
			n += lc->stats[i].rx_pkts;
	return n;
}

/*
 * auto-rebalance, as OVS's pmd-auto-lb: when an lcore was busy for at
 * least auto-rebalance-load percent of the window, compute a new
 * placement from the measured loads and apply it only if it lowers the
 * variance of the lcores' loads by auto-rebalance-improvement percent.
 */
static void auto_rebalance(void)
{
	const struct vhd_config *c = vhd_running;
	struct vhd_sched_report r;
	struct plan pl;
	double busiest = 0;

	/* A window's worth of loads measured since the last re-placement:
	 * the window would otherwise mix the old placement's costs in. */
	if (!c->auto_rebalance || vhd_n_lcores < 2 ||
	    vhd_clock - last_auto < c->auto_rebalance_interval ||
	    vhd_clock - placed_at < VHD_LOAD_SAMPLES)
		return;
	last_auto = vhd_clock;
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		uint64_t b, i, n;

		if (vhd_sched_lcore_window(l, &b, &i, &n) == 0 && b + i)
			busiest = RTE_MAX(busiest,
					  100.0 * (double)b / (double)(b + i));
	}
	if (busiest < c->auto_rebalance_load || plan_make(&pl) < 0)
		return;
	r.var_before = vhd_place_variance(pl.cur_load, vhd_n_lcores);
	r.var_after = vhd_place_variance(pl.new_load, vhd_n_lcores);
	r.improvement = vhd_place_improvement(r.var_before, r.var_after);
	if (r.improvement >= c->auto_rebalance_improvement) {
		VHD_LOG(INFO, main,
			"auto-rebalance: busiest lcore %.0f %% busy, new "
			"placement %.0f %% better: applied",
			busiest, r.improvement);
		if (plan_apply(&pl) < 0)
			VHD_LOG(WARNING, main, "auto-rebalance: out of memory");
	}
	plan_free(&pl);
}

void vhd_sched_tick(void)
{
	harvest_all();
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		struct vhd_port *p = vhd_ports[i];

		if (p == NULL || p->load == NULL)
			continue;
		for (uint16_t q = 0; q < p->n_rxq; q++) {
			p->load[q].snap[next_sample] = p->load[q].cycles;
			p->load[q].snap_pkts[next_sample] = p->load[q].pkts;
		}
	}
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_lcore *lc = &vhd_lcores[l];

		samples[l][next_sample] = (struct lcore_sample){
		    .busy = lc->busy_cycles,
		    .idle = lc->idle_cycles,
		    .rx_pkts = lcore_rx_pkts(lc),
		};
	}
	next_sample = (next_sample + 1) % VHD_LOAD_SAMPLES;
	if (n_samples < VHD_LOAD_SAMPLES)
		n_samples++;
	auto_rebalance();
}
