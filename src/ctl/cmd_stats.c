/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/cmd_stats.c: counters since the last clear, and the datapath lcores'
 * load. Control thread only.
 *
 * Counters are never reset where the lcores write them (that would need a
 * store from another thread on every lcore's lines): stats/clear records
 * the sums at that moment and stats reports the difference, so telemetry
 * keeps reporting totals. The lcores' load is sampled once a second from
 * their own cycle counters (as OVS's pmd-stats-show), into a short ring, so
 * lcores reports the last few seconds rather than the whole run.
 */
#include <errno.h>
#include <string.h>

#include <rte_lcore.h>

#include "cmds.h"
#include "vhd.h"

/* One lcore's queues, each with its share of the lcore's cycles over the
 * window (OVS's pmd-rxq-show "usage") and its frames per second. */
static json_t *lcore_rxqs(const struct vhd_lcore *lc, uint64_t total,
			  double secs)
{
	const struct vhd_rxq_list *rl = lc->rxq;
	json_t *a = json_array();

	for (uint16_t i = 0; rl && i < rl->n; i++) {
		const struct vhd_rxq *e = &rl->q[i];
		const struct vhd_port *p = vhd_ports[e->port];
		uint64_t load = 0, pkts = 0;

		if (p == NULL)
			continue;
		vhd_sched_rxq_window(p, e->q, &load, &pkts);
		json_array_append_new(
		    a, json_pack(
			   "{s:s,s:i,s:f,s:I}", "port", p->name, "queue", e->q,
			   "share_pct",
			   total ? 100.0 * (double)load / (double)total : 0.0,
			   "pps",
			   (json_int_t)(secs > 0 ? (double)pkts / secs : 0)));
	}
	return a;
}

void vhd_cmd_lcores(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	double hz = (double)rte_get_tsc_hz();
	json_t *a = json_array();

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_lcore *lc = &vhd_lcores[l];
		uint64_t busy = 0, idle = 0, rx = 0;
		double secs, pct;

		vhd_sched_lcore_window(l, &busy, &idle, &rx);
		secs = (double)(busy + idle) / hz;
		pct = busy + idle ? 100.0 * (double)busy / (double)(busy + idle)
				  : 0.0;
		json_array_append_new(
		    a, json_pack("{s:i,s:i,s:i,s:f,s:I,s:o}", "lcore",
				 lc->lcore_id, "cpu", lc->cpu, "numa", lc->numa,
				 "busy_pct", pct, "pps",
				 (json_int_t)(secs > 0 ? (double)rx / secs : 0),
				 "rxqs", lcore_rxqs(lc, busy + idle, secs)));
	}
	vhd_ctl_ok(req, a);
}

static json_t *loads_json(const uint64_t *load, double hz)
{
	json_t *a = json_array();

	/* Cycles over the window, as a share of one lcore's window. */
	for (uint16_t l = 0; l < vhd_n_lcores; l++)
		json_array_append_new(a,
				      json_real(100.0 * (double)load[l] /
						(hz * (VHD_LOAD_SAMPLES - 1))));
	return a;
}

void vhd_cmd_rxq_rebalance(struct vhd_ctl_req *req, int argc,
			   const char *const *argv)
{
	struct vhd_sched_report r;
	double hz = (double)rte_get_tsc_hz();
	int rc;

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	rc = vhd_sched_rebalance(&r);
	if (rc < 0) {
		vhd_ctl_err(req, -rc, "rebalance failed: %s", strerror(-rc));
		return;
	}
	VHD_LOG(INFO, main,
		"rxq rebalance: %u of %u queues moved, estimated improvement "
		"%.0f %%",
		r.moved, r.queues, r.improvement);
	vhd_ctl_ok(req,
		   json_pack("{s:i,s:i,s:f,s:o,s:o}", "queues", r.queues,
			     "moved", r.moved, "improvement_pct", r.improvement,
			     "load_pct_before", loads_json(r.load_before, hz),
			     "load_pct_after", loads_json(r.load_after, hz)));
}

/* Port PORT's counters less those at its last clear. */
static json_t *since_clear(const struct vhd_port *p)
{
	struct vhd_port_stats s;
	const struct vhd_port_stats *b = &p->clear_base;
	json_t *o;

	vhd_port_stats_total(p, &s);
	s.rx_pkts -= b->rx_pkts;
	s.rx_bytes -= b->rx_bytes;
	s.tx_pkts -= b->tx_pkts;
	s.tx_bytes -= b->tx_bytes;
	for (int d = 0; d < VHD_DROP_MAX; d++)
		s.drop[d] -= b->drop[d];
	s.rx_tso -= b->rx_tso;
	s.rx_csum_partial -= b->rx_csum_partial;
	s.tx_segmented -= b->tx_segmented;
	s.tx_segments -= b->tx_segments;
	s.tx_sw_csum -= b->tx_sw_csum;
	o = vhd_port_stats_json(&s);
	json_object_set_new(o, "port", json_string(p->name));
	return o;
}

/* Apply FN to port ARGV[0] or, with no argument, to every port; false
 * after answering REQ if there is no such port. */
static bool each_port(struct vhd_ctl_req *req, int argc,
		      const char *const *argv,
		      void (*fn)(struct vhd_port *p, json_t *acc), json_t *acc)
{
	if (argc == 1) {
		struct vhd_port *p = vhd_port_find(argv[0]);

		if (p == NULL) {
			vhd_ctl_err(req, ENOENT, "no port %s", argv[0]);
			return false;
		}
		fn(p, acc);
		return true;
	}
	/* A vxlan port's remotes are counted in it (by name: each alone). */
	for (uint16_t i = 0; i < vhd_running->n_ports; i++)
		if (vhd_ports[i] && vhd_ports[i]->type != VHD_PORT_VTEP)
			fn(vhd_ports[i], acc);
	return true;
}

static void add_stats(struct vhd_port *p, json_t *acc)
{
	json_array_append_new(acc, since_clear(p));
}

static void clear_stats(struct vhd_port *p, json_t *acc)
{
	vhd_port_stats_total(p, &p->clear_base);
	json_integer_set(acc, json_integer_value(acc) + 1);
}

void vhd_cmd_stats(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	json_t *a = json_array();

	if (each_port(req, argc, argv, add_stats, a))
		vhd_ctl_ok(req, a);
	else
		json_decref(a);
}

void vhd_cmd_stats_clear(struct vhd_ctl_req *req, int argc,
			 const char *const *argv)
{
	json_t *n = json_integer(0);

	if (each_port(req, argc, argv, clear_stats, n))
		vhd_ctl_ok(req, json_pack("{s:o}", "cleared", n));
	else
		json_decref(n);
}
