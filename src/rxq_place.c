/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rxq_place.c: rx queues to datapath lcores by measured cycles (see
 * vhd_place.h), as OVS's pmd-rxq-assign=cycles does it (lib/dpif-netdev.c:
 * sched_numa_list_schedule, sched_pmd_get_lowest).
 *
 * Greedy: the heaviest item first, to the least loaded lcore of its node.
 * Not optimal (that is bin packing), but with nothing pinned the busiest
 * lcore of a node stays within 4/3 of the best (Graham's bound for
 * largest first); O(n_q log n_q + n_items * n_lc); and the answer
 * operators of OVS expect. Everything is computed in arrays of this call:
 * Q and LCORE_LOAD are written only once nothing can fail any more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd_place.h"

/* A queue, sorted by group and then identity, so that the queues of a
 * group are adjacent and the first of them is its lowest (port, q). */
struct qkey {
	uint32_t group;
	uint16_t port, q;
	unsigned int idx; /* into Q: equal identities still sort one way */
};

/* What is placed as one: a queue, or every queue of a group. */
struct item {
	uint64_t load;
	uint16_t port, q;      /* of its lowest queue: order and node */
	unsigned int idx;      /* of its lowest queue, into Q */
	unsigned int first, n; /* its queues: keys[first, first + n) */
	int numa;	       /* of its lowest queue; negative: unknown */
	int pin;	       /* -1: none */
	/* Out. */
	int lcore;
	bool cross_numa;
};

#define CMP(a, b) (((a) > (b)) - ((a) < (b)))

/* Cycles summed over a window never come near 2^64, but a saturated sum
 * still orders right and is the same in whatever order it is taken (so
 * vhd_place_loads agrees with vhd_place). */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int qkey_cmp(const void *pa, const void *pb)
{
	const struct qkey *a = pa, *b = pb;

	if (a->group != b->group)
		return CMP(a->group, b->group);
	if (a->port != b->port)
		return CMP(a->port, b->port);
	if (a->q != b->q)
		return CMP(a->q, b->q);
	return CMP(a->idx, b->idx);
}

/* Pinned items first: where they go is fixed, and the others must see
 * what they weigh there. Then heaviest first, then the lowest (port, q). */
static int item_cmp(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;

	if ((a->pin >= 0) != (b->pin >= 0))
		return a->pin >= 0 ? -1 : 1;
	if (a->load != b->load)
		return CMP(b->load, a->load);
	if (a->port != b->port)
		return CMP(a->port, b->port);
	if (a->q != b->q)
		return CMP(a->q, b->q);
	return CMP(a->idx, b->idx);
}

/* The least loaded lcore on node NUMA (negative: on any node), then the
 * one with fewer queues, then the lowest index (sched_pmd_get_lowest); -1
 * when no lcore is on that node. */
static int lowest(const struct vhd_place_lcore *lc, unsigned int n_lc,
		  const uint64_t *load, const unsigned int *n_rxq, int numa)
{
	int best = -1;

	for (unsigned int i = 0; i < n_lc; i++) {
		if (numa >= 0 && lc[i].numa != numa)
			continue;
		if (best < 0 || load[i] < load[best] ||
		    (load[i] == load[best] && n_rxq[i] < n_rxq[best]))
			best = (int)i;
	}
	return best;
}

static bool node_has_lcore(const struct vhd_place_lcore *lc, unsigned int n_lc,
			   int numa)
{
	for (unsigned int i = 0; i < n_lc; i++)
		if (lc[i].numa == numa)
			return true;
	return false;
}

/* Queues into items (keys sorted): a queue of group 0 alone, a run of
 * one non-zero group together. Returns how many, or -EINVAL for a pin out
 * of range or two pins in one group. */
static int make_items(const struct vhd_place_rxq *q, unsigned int n_q,
		      unsigned int n_lc, const struct qkey *keys,
		      struct item *items)
{
	unsigned int n_items = 0;

	for (unsigned int i = 0; i < n_q;) {
		const struct vhd_place_rxq *r = &q[keys[i].idx];
		struct item *it = &items[n_items++];
		unsigned int j = i;

		*it = (struct item){.port = r->port,
				    .q = r->q,
				    .idx = keys[i].idx,
				    .first = i,
				    .numa = r->numa < 0 ? -1 : r->numa,
				    .pin = -1};
		do {
			const struct vhd_place_rxq *m = &q[keys[j].idx];

			/* -1 is "no pin"; any other negative is as wrong as
			 * one past the last lcore. */
			if (m->pin < -1 ||
			    (m->pin >= 0 && (unsigned int)m->pin >= n_lc))
				return -EINVAL;
			if (m->pin >= 0) {
				if (it->pin >= 0 && it->pin != m->pin)
					return -EINVAL;
				it->pin = m->pin;
			}
			it->load = add_sat(it->load, m->load);
			j++;
		} while (j < n_q && keys[i].group != 0 &&
			 keys[j].group == keys[i].group);
		it->n = j - i;
		i = j;
	}
	return (int)n_items;
}

int vhd_place(const struct vhd_place_lcore *lc, unsigned int n_lc,
	      struct vhd_place_rxq *q, unsigned int n_q, uint64_t *lcore_load)
{
	struct qkey *keys = NULL;
	struct item *items = NULL;
	uint64_t *load = NULL;
	unsigned int *n_rxq = NULL;
	int n_items, rc = 0;

	if (n_lc == 0)
		return -EINVAL;
	/* One more than needed: calloc(0) may return NULL. */
	keys = calloc((size_t)n_q + 1, sizeof(*keys));
	items = calloc((size_t)n_q + 1, sizeof(*items));
	load = calloc(n_lc, sizeof(*load));
	n_rxq = calloc(n_lc, sizeof(*n_rxq));
	if (keys == NULL || items == NULL || load == NULL || n_rxq == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned int i = 0; i < n_q; i++)
		keys[i] = (struct qkey){.group = q[i].group,
					.port = q[i].port,
					.q = q[i].q,
					.idx = i};
	qsort(keys, n_q, sizeof(*keys), qkey_cmp);
	n_items = make_items(q, n_q, n_lc, keys, items);
	if (n_items < 0) {
		rc = n_items;
		goto out;
	}
	qsort(items, (size_t)n_items, sizeof(*items), item_cmp);
	for (int i = 0; i < n_items; i++) {
		struct item *it = &items[i];
		int to;

		/* An unknown node is local everywhere; a node without an
		 * lcore leaves the least loaded of them all. */
		it->cross_numa =
		    it->numa >= 0 && !node_has_lcore(lc, n_lc, it->numa);
		if (it->pin >= 0)
			to = it->pin;
		else
			to = lowest(lc, n_lc, load, n_rxq,
				    it->cross_numa ? -1 : it->numa);
		it->lcore = to;
		load[to] = add_sat(load[to], it->load);
		n_rxq[to] += it->n;
	}
	/* Nothing can fail from here on. */
	for (int i = 0; i < n_items; i++) {
		const struct item *it = &items[i];

		for (unsigned int j = it->first; j < it->first + it->n; j++) {
			q[keys[j].idx].lcore = it->lcore;
			q[keys[j].idx].cross_numa = it->cross_numa;
		}
	}
	if (lcore_load != NULL)
		memcpy(lcore_load, load, sizeof(*load) * n_lc);
out:
	free(keys);
	free(items);
	free(load);
	free(n_rxq);
	return rc;
}

void vhd_place_loads(const struct vhd_place_rxq *q, unsigned int n_q,
		     unsigned int n_lc, uint64_t *lcore_load)
{
	for (unsigned int i = 0; i < n_lc; i++)
		lcore_load[i] = 0;
	for (unsigned int i = 0; i < n_q; i++)
		if (q[i].lcore >= 0 && (unsigned int)q[i].lcore < n_lc)
			lcore_load[q[i].lcore] =
			    add_sat(lcore_load[q[i].lcore], q[i].load);
}

/* In doubles: squared cycles overflow 64 bits, and the mean is not an
 * integer (OVS's integer mean loses up to a cycle per lcore). */
double vhd_place_variance(const uint64_t *lcore_load, unsigned int n_lc)
{
	double mean = 0, var = 0;

	if (n_lc < 2)
		return 0;
	for (unsigned int i = 0; i < n_lc; i++)
		mean += (double)lcore_load[i];
	mean /= n_lc;
	for (unsigned int i = 0; i < n_lc; i++) {
		double d = (double)lcore_load[i] - mean;

		var += d * d;
	}
	return var / n_lc;
}

/* OVS's pmd_rebalance_dry_run: (cur - new) * 100 / cur. Written so that a
 * NaN on either side gives 0 too. */
double vhd_place_improvement(double cur_var, double new_var)
{
	double pct;

	if (!(cur_var > 0) || !(new_var < cur_var))
		return 0;
	pct = (cur_var - new_var) * 100 / cur_var;
	return pct > 100 ? 100 : pct;
}
