/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_place.h: which datapath lcore polls which rx queue, decided from
 * the cycles each queue cost (OVS's pmd-rxq-assign=cycles), the NUMA node
 * of each queue and lcore, and the queues an operator pinned
 * (rxq-affinity).
 *
 * Pure computation: no DPDK, no globals, no allocation that outlives a
 * call. The control thread fills the arrays from what the lcores measured
 * and applies the result (switch.c, dp/lcore.c); the unit tests
 * (tests/test_place.c) feed it described topologies, e.g. two NUMA nodes
 * this machine does not have.
 */
#ifndef VHD_PLACE_H
#define VHD_PLACE_H

#include <stdbool.h>
#include <stdint.h>

struct vhd_place_lcore {
	int numa; /* NUMA node of the lcore's CPU */
};

struct vhd_place_rxq {
	/* In. */
	uint16_t port, q; /* identity, also the tie-break order */
	int numa;	  /* node of the port's device or guest memory; -1:
			   * unknown (any lcore is local) */
	int pin;	  /* lcore index it must go to (rxq-affinity), -1:
			   * none */
	uint32_t group;	  /* non-zero: every queue with this group goes to
			   * one lcore, as one item of their summed load (the
			   * queues of a policed port: one meter) */
	uint64_t load;	  /* TSC cycles it cost over the measuring window */
	/* Out. */
	int lcore;	 /* index into the lcores */
	bool cross_numa; /* no lcore on its node: placed on another (pinned
			  * or not; a group's node is that of its lowest
			  * (port, q)) */
};

/*
 * Give each of the N_Q queues Q an lcore among the N_LC lcores LC:
 *  - a pinned queue goes to its lcore (a pinned queue of a group takes
 *    the whole group with it; two pins in one group that disagree are an
 *    error);
 *  - the others, as items (a group is one item), heaviest first (equal
 *    loads: the lowest (port, q) first; a group's is its lowest), each
 *    to the least loaded lcore on its node (a group's: that of its
 *    lowest (port, q)), counting what is already placed there (pinned
 *    ones included); equal loads: the lcore with fewer queues (a group
 *    counts each of its queues), then the lower index. With no lcore on
 *    its node an item goes to the least loaded of all the lcores, and
 *    each of its queues gets cross_numa.
 * With every load 0 (nothing measured yet) this spreads the queues
 * evenly, in (port, q) order.
 * LCORE_LOAD (N_LC entries, may be NULL) gets each lcore's summed load.
 * Returns 0, or with Q and LCORE_LOAD unchanged -EINVAL (no lcore, a pin
 * out of range, a group pinned to two lcores) or -ENOMEM (its temporary
 * arrays).
 */
int vhd_place(const struct vhd_place_lcore *lc, unsigned int n_lc,
	      struct vhd_place_rxq *q, unsigned int n_q, uint64_t *lcore_load);

/* Each lcore's summed load (LCORE_LOAD, N_LC entries) under the
 * placement in Q[].lcore (entries out of range are skipped). */
void vhd_place_loads(const struct vhd_place_rxq *q, unsigned int n_q,
		     unsigned int n_lc, uint64_t *lcore_load);

/* The population variance (the mean squared deviation, divided by N_LC)
 * of N_LC lcore loads (0 for fewer than two lcores), in cycles squared:
 * what auto-rebalance compares before and after. */
double vhd_place_variance(const uint64_t *lcore_load, unsigned int n_lc);

/* How much better (percent, 0-100; 0 when CUR_VAR is 0 or NEW_VAR is not
 * smaller) a placement of variance NEW_VAR is than one of CUR_VAR, as
 * OVS's auto load balancer estimates it. */
double vhd_place_improvement(double cur_var, double new_var);

#endif
