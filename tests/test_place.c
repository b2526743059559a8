/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_place.c: rx queue placement by cycles: the spread of unmeasured
 * queues, heaviest first and its tie-breaks, pins, groups, NUMA nodes
 * (two of them, one without an lcore, an unknown one), the errors that
 * leave the queues as they were, variance and improvement, and two large
 * switches. Pure computation: no EAL.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "unit.h"
#include "vhd_place.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A queue as the control thread would fill it; the outputs set to what
 * vhd_place must overwrite. */
static struct vhd_place_rxq rxq(uint16_t port, uint16_t q, int numa, int pin,
				uint32_t group, uint64_t load)
{
	return (struct vhd_place_rxq){.port = port,
				      .q = q,
				      .numa = numa,
				      .pin = pin,
				      .group = group,
				      .load = load,
				      .lcore = -7,
				      .cross_numa = true};
}

/* Lcore of queue (PORT, Q) in R[0..n). */
static int lcore_of(const struct vhd_place_rxq *r, unsigned int n,
		    uint16_t port, uint16_t q)
{
	for (unsigned int i = 0; i < n; i++)
		if (r[i].port == port && r[i].q == q)
			return r[i].lcore;
	return -100;
}

/* Every load 0: round robin in (port, q) order, whatever order the array
 * is in. */
static void test_zero_spread(void)
{
	struct vhd_place_lcore lc[3] = {{0}, {0}, {0}};
	/* (port, q) ranks: (0,0)=0 (0,1)=1 (1,0)=2 (1,1)=3 (2,0)=4 (2,1)=5
	 * (3,0)=6, given out of order. */
	struct vhd_place_rxq r[7] = {
	    rxq(2, 1, 0, -1, 0, 0), rxq(0, 0, 0, -1, 0, 0),
	    rxq(3, 0, 0, -1, 0, 0), rxq(1, 0, 0, -1, 0, 0),
	    rxq(0, 1, 0, -1, 0, 0), rxq(2, 0, 0, -1, 0, 0),
	    rxq(1, 1, 0, -1, 0, 0)};
	const uint16_t rank[7] = {5, 0, 6, 2, 1, 4, 3};
	uint64_t load[3];

	for (unsigned int n_lc = 2; n_lc <= 3; n_lc++) {
		unsigned int per[3] = {0};

		EXPECT(vhd_place(lc, n_lc, r, N(r), load) == 0, "place");
		for (unsigned int i = 0; i < N(r); i++) {
			EXPECT(r[i].lcore == (int)(rank[i] % n_lc),
			       "%u lcores: (%u,%u) on %d, want %u", n_lc,
			       r[i].port, r[i].q, r[i].lcore, rank[i] % n_lc);
			EXPECT(!r[i].cross_numa, "cross_numa cleared");
			if (r[i].lcore >= 0 && r[i].lcore < 3)
				per[r[i].lcore]++;
		}
		EXPECT(n_lc == 2 ? per[0] == 4 && per[1] == 3
				 : per[0] == 3 && per[1] == 2 && per[2] == 2,
		       "%u lcores: %u %u %u queues", n_lc, per[0], per[1],
		       per[2]);
		EXPECT(load[0] == 0 && load[1] == 0, "no load");
	}
}

/* 9 7 5 3 1 on two lcores: 9->0 (tie: lower index), 7->1, 5->1 (7<9),
 * 3->0 (9<12), 1->0 (12=12, two queues each: lower index). */
static void test_heaviest_first(void)
{
	struct vhd_place_lcore lc[2] = {{0}, {0}};
	struct vhd_place_rxq r[5] = {
	    rxq(4, 0, 0, -1, 0, 1), rxq(3, 0, 0, -1, 0, 3),
	    rxq(2, 0, 0, -1, 0, 5), rxq(1, 0, 0, -1, 0, 7),
	    rxq(0, 0, 0, -1, 0, 9)};
	const int want[5] = {0, 0, 1, 1, 0};
	uint64_t load[2];

	EXPECT(vhd_place(lc, 2, r, N(r), load) == 0, "place");
	for (unsigned int i = 0; i < N(r); i++)
		EXPECT(r[i].lcore == want[i], "load %lu on %d, want %d",
		       (unsigned long)r[i].load, r[i].lcore, want[i]);
	EXPECT(load[0] == 13 && load[1] == 12, "loads %lu %lu",
	       (unsigned long)load[0], (unsigned long)load[1]);
}

/* Equal lcore loads: the one with fewer queues. Equal item loads: the
 * lowest (port, q) first. */
static void test_ties(void)
{
	struct vhd_place_lcore lc[2] = {{0}, {0}};
	/* 10->0, 5->1, 5->1 (5<10): 10=10 with 1 and 2 queues, so 0->0. */
	struct vhd_place_rxq a[4] = {
	    rxq(0, 0, 0, -1, 0, 10), rxq(1, 0, 0, -1, 0, 5),
	    rxq(2, 0, 0, -1, 0, 5), rxq(3, 0, 0, -1, 0, 0)};
	/* Same load: (0,1) before (1,0) before (1,1). */
	struct vhd_place_rxq b[3] = {rxq(1, 1, 0, -1, 0, 4),
				     rxq(1, 0, 0, -1, 0, 4),
				     rxq(0, 1, 0, -1, 0, 4)};

	EXPECT(vhd_place(lc, 2, a, N(a), NULL) == 0, "place");
	EXPECT(a[0].lcore == 0 && a[1].lcore == 1 && a[2].lcore == 1 &&
		   a[3].lcore == 0,
	       "fewer queues: %d %d %d %d", a[0].lcore, a[1].lcore, a[2].lcore,
	       a[3].lcore);
	EXPECT(vhd_place(lc, 2, b, N(b), NULL) == 0, "place");
	EXPECT(lcore_of(b, 3, 0, 1) == 0 && lcore_of(b, 3, 1, 0) == 1 &&
		   lcore_of(b, 3, 1, 1) == 0,
	       "(port, q) order: %d %d %d", lcore_of(b, 3, 0, 1),
	       lcore_of(b, 3, 1, 0), lcore_of(b, 3, 1, 1));
}

/* Pinned queues stay, even where that is unbalanced, and weigh on their
 * lcore before anything else is placed. */
static void test_pinned(void)
{
	struct vhd_place_lcore lc[2] = {{0}, {0}};
	/* lcore 1 starts at 10: 6->0, 4->0 (6<10), 3->1 (10=10, 2 queues on
	 * 0 and 1 on 1). The pins come last in the array. */
	struct vhd_place_rxq r[4] = {
	    rxq(0, 0, 0, -1, 0, 6), rxq(0, 1, 0, -1, 0, 4),
	    rxq(0, 2, 0, -1, 0, 3), rxq(5, 0, 0, 1, 0, 10)};
	/* Both pinned to lcore 0, lcore 1 stays empty. */
	struct vhd_place_rxq s[2] = {rxq(0, 0, 0, 0, 0, 50),
				     rxq(1, 0, 0, 0, 0, 40)};
	uint64_t load[2];

	EXPECT(vhd_place(lc, 2, r, N(r), load) == 0, "place");
	EXPECT(r[3].lcore == 1, "pinned on %d", r[3].lcore);
	EXPECT(r[0].lcore == 0 && r[1].lcore == 0 && r[2].lcore == 1,
	       "others: %d %d %d", r[0].lcore, r[1].lcore, r[2].lcore);
	EXPECT(load[0] == 10 && load[1] == 13, "loads %lu %lu",
	       (unsigned long)load[0], (unsigned long)load[1]);
	EXPECT(vhd_place(lc, 2, s, N(s), load) == 0, "place");
	EXPECT(s[0].lcore == 0 && s[1].lcore == 0, "pins kept: %d %d",
	       s[0].lcore, s[1].lcore);
	EXPECT(load[0] == 90 && load[1] == 0, "loads %lu %lu",
	       (unsigned long)load[0], (unsigned long)load[1]);
}

/* A group is one item of its summed load: 6 (1+2+3) -> 0, 5 -> 1, 4 -> 1
 * (5<6), 0 -> 0 (6<9). Its queues are interleaved with others. */
static void test_group(void)
{
	struct vhd_place_lcore lc[2] = {{0}, {0}};
	struct vhd_place_rxq r[6] = {
	    rxq(2, 2, 0, -1, 7, 3), rxq(0, 0, 0, -1, 0, 5),
	    rxq(2, 0, 0, -1, 7, 1), rxq(1, 0, 0, -1, 0, 4),
	    rxq(2, 1, 0, -1, 7, 2), rxq(3, 0, 0, -1, 0, 0)};
	uint64_t load[2];

	EXPECT(vhd_place(lc, 2, r, N(r), load) == 0, "place");
	EXPECT(r[0].lcore == 0 && r[2].lcore == 0 && r[4].lcore == 0,
	       "group on one lcore: %d %d %d", r[0].lcore, r[2].lcore,
	       r[4].lcore);
	EXPECT(r[1].lcore == 1 && r[3].lcore == 1 && r[5].lcore == 0,
	       "others: %d %d %d", r[1].lcore, r[3].lcore, r[5].lcore);
	EXPECT(load[0] == 6 && load[1] == 9, "loads %lu %lu",
	       (unsigned long)load[0], (unsigned long)load[1]);
}

/* One pinned queue takes its group; the same pin twice is no conflict. */
static void test_group_pin(void)
{
	struct vhd_place_lcore lc[3] = {{0}, {0}, {0}};
	struct vhd_place_rxq r[5] = {
	    rxq(1, 0, 0, -1, 3, 8), rxq(1, 1, 0, 2, 3, 0),
	    rxq(1, 2, 0, -1, 3, 8), rxq(0, 0, 0, -1, 0, 1),
	    rxq(4, 0, 0, 2, 3, 1)}; /* pinned to the same lcore */
	uint64_t load[3];

	EXPECT(vhd_place(lc, 3, r, N(r), load) == 0, "place");
	for (unsigned int i = 0; i < N(r); i++)
		if (r[i].group == 3)
			EXPECT(r[i].lcore == 2, "(%u,%u) on %d", r[i].port,
			       r[i].q, r[i].lcore);
	EXPECT(r[3].lcore == 0, "single on %d", r[3].lcore);
	EXPECT(load[0] == 1 && load[1] == 0 && load[2] == 17,
	       "loads %lu %lu %lu", (unsigned long)load[0],
	       (unsigned long)load[1], (unsigned long)load[2]);
}

/* Errors leave the queues and the loads as they were. */
static void expect_einval(const struct vhd_place_lcore *lc, unsigned int n_lc,
			  struct vhd_place_rxq *r, unsigned int n,
			  const char *what)
{
	struct vhd_place_rxq before[8];
	uint64_t load[4] = {1, 2, 3, 4};

	memcpy(before, r, sizeof(*r) * n);
	EXPECT(vhd_place(lc, n_lc, r, n, load) == -EINVAL, "%s", what);
	EXPECT(memcmp(before, r, sizeof(*r) * n) == 0, "%s: q changed", what);
	EXPECT(load[0] == 1 && load[1] == 2 && load[2] == 3 && load[3] == 4,
	       "%s: loads changed", what);
}

static void test_errors(void)
{
	struct vhd_place_lcore lc[2] = {{0}, {0}};
	struct vhd_place_rxq conflict[4] = {
	    rxq(0, 0, 0, -1, 0, 5), rxq(1, 0, 0, 0, 9, 1),
	    rxq(1, 1, 0, -1, 9, 1), rxq(1, 2, 0, 1, 9, 1)};
	struct vhd_place_rxq range[3] = {rxq(0, 0, 0, -1, 0, 5),
					 rxq(1, 0, 0, 2, 0, 1),
					 rxq(2, 0, 0, -1, 0, 1)};
	struct vhd_place_rxq neg[2] = {rxq(0, 0, 0, -1, 0, 5),
				       rxq(1, 0, 0, -2, 0, 1)};
	struct vhd_place_rxq ok[1] = {rxq(0, 0, 0, -1, 0, 5)};
	uint64_t load[2] = {1, 2};

	expect_einval(lc, 2, conflict, N(conflict), "two pins in a group");
	expect_einval(lc, 2, range, N(range), "pin past the last lcore");
	expect_einval(lc, 2, neg, N(neg), "pin -2");
	expect_einval(lc, 0, ok, N(ok), "no lcore");
	/* No queue is fine: every lcore idle. */
	EXPECT(vhd_place(lc, 2, ok, 0, load) == 0 && load[0] == 0 &&
		   load[1] == 0,
	       "no queue");
}

/* Lcores 0, 1 on node 0 and 2, 3 on node 1: each queue stays on its node
 * even when the other node's lcores are idler. */
static void test_numa(void)
{
	struct vhd_place_lcore lc[4] = {{0}, {0}, {1}, {1}};
	/* Node 1: 100->2, 90->3, 80->3 (90<100). Node 0: 1->0, 1->1,
	 * 1->0. */
	struct vhd_place_rxq r[6] = {
	    rxq(0, 0, 1, -1, 0, 100), rxq(0, 1, 1, -1, 0, 90),
	    rxq(0, 2, 1, -1, 0, 80),  rxq(1, 0, 0, -1, 0, 1),
	    rxq(1, 1, 0, -1, 0, 1),   rxq(1, 2, 0, -1, 0, 1)};
	const int want[6] = {2, 3, 3, 0, 1, 0};
	uint64_t load[4];

	EXPECT(vhd_place(lc, 4, r, N(r), load) == 0, "place");
	for (unsigned int i = 0; i < N(r); i++) {
		EXPECT(r[i].lcore == want[i], "(%u,%u) node %d on %d, want %d",
		       r[i].port, r[i].q, r[i].numa, r[i].lcore, want[i]);
		EXPECT(!r[i].cross_numa, "(%u,%u) cross_numa", r[i].port,
		       r[i].q);
	}
	EXPECT(load[0] == 2 && load[1] == 1 && load[2] == 100 && load[3] == 170,
	       "loads %lu %lu %lu %lu", (unsigned long)load[0],
	       (unsigned long)load[1], (unsigned long)load[2],
	       (unsigned long)load[3]);
}

/* Node 5 has no lcore: its queue goes to the least loaded of all, on
 * another node, with cross_numa, and so does every queue of a group whose
 * lowest queue is on such a node (a pinned one too). */
static void test_numa_missing(void)
{
	struct vhd_place_lcore lc[3] = {{0}, {0}, {1}};
	/* 10->0, 9->1, 3->2 (node 1), then node 5's 1 -> 2 (3 < 9 < 10). */
	struct vhd_place_rxq r[4] = {
	    rxq(0, 0, 0, -1, 0, 10), rxq(1, 0, 0, -1, 0, 9),
	    rxq(2, 0, 1, -1, 0, 3), rxq(3, 0, 5, -1, 0, 1)};
	/* A group on node 7 whose second queue says node 0 (the lowest
	 * decides), and a pinned queue of node 6. */
	struct vhd_place_rxq g[4] = {
	    rxq(0, 0, 7, -1, 2, 1), rxq(0, 1, 0, -1, 2, 1),
	    rxq(1, 0, 0, -1, 0, 5), rxq(2, 0, 6, 0, 0, 1)};

	EXPECT(vhd_place(lc, 3, r, N(r), NULL) == 0, "place");
	EXPECT(r[0].lcore == 0 && r[1].lcore == 1 && r[2].lcore == 2,
	       "local ones: %d %d %d", r[0].lcore, r[1].lcore, r[2].lcore);
	EXPECT(r[3].lcore == 2 && r[3].cross_numa, "node 5 on %d, cross %d",
	       r[3].lcore, r[3].cross_numa);
	EXPECT(!r[0].cross_numa && !r[1].cross_numa && !r[2].cross_numa,
	       "local ones not cross");
	/* Pinned 1 on 0; 5 (node 0) -> 1; group 2 (node 7) -> 2. */
	EXPECT(vhd_place(lc, 3, g, N(g), NULL) == 0, "place");
	EXPECT(g[0].lcore == 2 && g[1].lcore == 2 && g[0].cross_numa &&
		   g[1].cross_numa,
	       "group on %d %d, cross %d %d", g[0].lcore, g[1].lcore,
	       g[0].cross_numa, g[1].cross_numa);
	EXPECT(g[2].lcore == 1 && !g[2].cross_numa, "node 0 on %d", g[2].lcore);
	EXPECT(g[3].lcore == 0 && g[3].cross_numa, "pinned on %d, cross %d",
	       g[3].lcore, g[3].cross_numa);
}

/* Node unknown: every lcore is local, none is cross. */
static void test_numa_unknown(void)
{
	struct vhd_place_lcore lc[2] = {{0}, {1}};
	/* Pinned 10 on node 0's lcore: the unknown ones go to node 1's
	 * until it is the busier: 6->1, 5->1 (6<10), 2->0 (10<11). */
	struct vhd_place_rxq r[4] = {
	    rxq(0, 0, 0, 0, 0, 10), rxq(1, 0, -1, -1, 0, 6),
	    rxq(1, 1, -1, -1, 0, 5), rxq(1, 2, -1, -1, 0, 2)};
	uint64_t load[2];

	EXPECT(vhd_place(lc, 2, r, N(r), load) == 0, "place");
	EXPECT(r[1].lcore == 1 && r[2].lcore == 1 && r[3].lcore == 0,
	       "unknown on %d %d %d", r[1].lcore, r[2].lcore, r[3].lcore);
	for (unsigned int i = 0; i < N(r); i++)
		EXPECT(!r[i].cross_numa, "(%u,%u) cross", r[i].port, r[i].q);
	EXPECT(load[0] == 12 && load[1] == 11, "loads %lu %lu",
	       (unsigned long)load[0], (unsigned long)load[1]);
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

/* vhd_place_loads agrees with what vhd_place reported, over a mix of
 * pins, groups and nodes; it skips lcores out of range. */
static void test_loads(void)
{
	struct vhd_place_lcore lc[4] = {{0}, {0}, {1}, {1}};
	struct vhd_place_rxq r[40];
	uint64_t placed[4], again[4];
	uint32_t s = 42;

	for (unsigned int i = 0; i < N(r); i++) {
		uint32_t x = lcg(&s);

		r[i] = rxq((uint16_t)(i / 4), (uint16_t)(i % 4),
			   (int)(x % 3) - 1, x % 7 == 0 ? (int)(x % 4) : -1,
			   x % 5 == 0 ? 1 + (x >> 4) % 3 : 0, lcg(&s) % 1000);
	}
	/* Keep each group's pins in agreement. */
	for (unsigned int i = 0; i < N(r); i++)
		if (r[i].group != 0 && r[i].pin >= 0)
			r[i].pin = (int)r[i].group % 4;
	EXPECT(vhd_place(lc, 4, r, N(r), placed) == 0, "place");
	vhd_place_loads(r, N(r), 4, again);
	EXPECT(memcmp(placed, again, sizeof(placed)) == 0,
	       "placed %lu %lu %lu %lu, summed %lu %lu %lu %lu",
	       (unsigned long)placed[0], (unsigned long)placed[1],
	       (unsigned long)placed[2], (unsigned long)placed[3],
	       (unsigned long)again[0], (unsigned long)again[1],
	       (unsigned long)again[2], (unsigned long)again[3]);
	r[0].lcore = 4;
	r[1].lcore = -1;
	vhd_place_loads(r, N(r), 4, again);
	EXPECT(again[0] + again[1] + again[2] + again[3] ==
		   placed[0] + placed[1] + placed[2] + placed[3] - r[0].load -
		       r[1].load,
	       "out of range skipped");
}

static void test_variance(void)
{
	const uint64_t even[2] = {10, 10}, uneven[2] = {0, 20};
	const uint64_t four[4] = {2, 4, 4, 6};

	EXPECT(vhd_place_variance(even, 2) == 0, "{10,10}: %g",
	       vhd_place_variance(even, 2));
	/* Population: ((10)^2 + (10)^2) / 2, not / 1. */
	EXPECT(vhd_place_variance(uneven, 2) == 100, "{0,20}: %g",
	       vhd_place_variance(uneven, 2));
	EXPECT(vhd_place_variance(four, 4) == 2, "{2,4,4,6}: %g",
	       vhd_place_variance(four, 4));
	EXPECT(vhd_place_variance(uneven, 1) == 0, "one lcore");
	EXPECT(vhd_place_variance(uneven, 0) == 0, "no lcore");
}

static void test_improvement(void)
{
	EXPECT(vhd_place_improvement(100, 25) == 75, "%g",
	       vhd_place_improvement(100, 25));
	EXPECT(vhd_place_improvement(0, 5) == 0, "cur 0");
	EXPECT(vhd_place_improvement(0, 0) == 0, "both 0");
	EXPECT(vhd_place_improvement(10, 20) == 0, "worse");
	EXPECT(vhd_place_improvement(10, 10) == 0, "same");
	EXPECT(vhd_place_improvement(10, 0) == 100, "perfect");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* N_PORTS x N_QS queues of pseudo-random loads on N_LC lcores of one
 * node: all placed, the spread no more than the heaviest queue (largest
 * first onto the least loaded keeps it so), and quick. */
static void scale(unsigned int n_ports, unsigned int n_qs, unsigned int n_lc)
{
	unsigned int n = n_ports * n_qs;
	struct vhd_place_lcore *lc = calloc(n_lc, sizeof(*lc));
	struct vhd_place_rxq *r = calloc(n, sizeof(*r));
	uint64_t *load = calloc(n_lc, sizeof(*load));
	uint64_t max_q = 0, lo = UINT64_MAX, hi = 0;
	unsigned int bad = 0;
	uint32_t s = n;
	double t;

	if (lc == NULL || r == NULL || load == NULL) {
		EXPECT(0, "out of memory");
		goto out;
	}
	for (unsigned int i = 0; i < n; i++) {
		r[i] = rxq((uint16_t)(i / n_qs), (uint16_t)(i % n_qs), 0, -1, 0,
			   lcg(&s) % 100000);
		max_q = r[i].load > max_q ? r[i].load : max_q;
	}
	t = now();
	EXPECT(vhd_place(lc, n_lc, r, n, load) == 0, "place");
	t = now() - t;
	for (unsigned int i = 0; i < n; i++)
		bad += r[i].lcore < 0 || r[i].lcore >= (int)n_lc;
	for (unsigned int i = 0; i < n_lc; i++) {
		lo = load[i] < lo ? load[i] : lo;
		hi = load[i] > hi ? load[i] : hi;
	}
	EXPECT(bad == 0, "%u queues unplaced", bad);
	EXPECT(hi - lo <= max_q, "spread %lu > %lu", (unsigned long)(hi - lo),
	       (unsigned long)max_q);
	EXPECT(t < 1.0, "%u queues on %u lcores took %.3f s", n, n_lc, t);
	/* Unmeasured: exactly even. */
	bad = 0;
	for (unsigned int i = 0; i < n; i++)
		r[i].load = 0;
	EXPECT(vhd_place(lc, n_lc, r, n, NULL) == 0, "place");
	for (unsigned int i = 0; i < n; i++)
		bad += r[i].lcore != (int)(i % n_lc);
	EXPECT(bad == 0, "%u queues off round robin", bad);
out:
	free(lc);
	free(r);
	free(load);
}

static void test_scale(void)
{
	scale(1024, 1, 2);
	scale(64, 128, 16);
}

int main(void)
{
	UNIT_CASE(test_zero_spread);
	UNIT_CASE(test_heaviest_first);
	UNIT_CASE(test_ties);
	UNIT_CASE(test_pinned);
	UNIT_CASE(test_group);
	UNIT_CASE(test_group_pin);
	UNIT_CASE(test_errors);
	UNIT_CASE(test_numa);
	UNIT_CASE(test_numa_missing);
	UNIT_CASE(test_numa_unknown);
	UNIT_CASE(test_loads);
	UNIT_CASE(test_variance);
	UNIT_CASE(test_improvement);
	UNIT_CASE(test_scale);
	return unit_done();
}
