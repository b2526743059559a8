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

#define LOAD_SAMPLES 6 /* lcores: the last 5 s */

struct load_sample {
	uint64_t busy, idle, rx_pkts;
};

static struct load_sample samples[VHD_MAX_DP_LCORES][LOAD_SAMPLES];
static unsigned int n_samples, next_sample;

static uint64_t lcore_rx_pkts(const struct vhd_lcore *lc)
{
	uint64_t n = 0;

	for (uint16_t i = 0; i < vhd_running->n_ports; i++)
		if (vhd_ports[i])
			n += lc->stats[i].rx_pkts;
	return n;
}

void vhd_cmd_lcores_tick(void)
{
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_lcore *lc = &vhd_lcores[l];

		samples[l][next_sample] = (struct load_sample){
		    .busy = lc->busy_cycles,
		    .idle = lc->idle_cycles,
		    .rx_pkts = lcore_rx_pkts(lc),
		};
	}
	next_sample = (next_sample + 1) % LOAD_SAMPLES;
	if (n_samples < LOAD_SAMPLES)
		n_samples++;
}

static json_t *lcore_rxqs(const struct vhd_lcore *lc)
{
	const struct vhd_rxq_list *rl = lc->rxq;
	json_t *a = json_array();

	for (uint16_t i = 0; rl && i < rl->n; i++) {
		const struct vhd_rxq *e = &rl->q[i];
		const struct vhd_port *p = vhd_ports[e->port];

		if (p == NULL)
			continue;
		for (uint16_t q = e->first; q < vhd_port_nrxq(p);
		     q += e->stride)
			json_array_append_new(a,
					      json_pack("{s:s,s:i}", "port",
							p->name, "queue", q));
	}
	return a;
}

void vhd_cmd_lcores(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	unsigned int newest = (next_sample + LOAD_SAMPLES - 1) % LOAD_SAMPLES;
	unsigned int oldest =
	    n_samples < LOAD_SAMPLES ? 0 : next_sample % LOAD_SAMPLES;
	double hz = (double)rte_get_tsc_hz();
	json_t *a = json_array();

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	for (uint16_t l = 0; l < vhd_n_lcores; l++) {
		const struct vhd_lcore *lc = &vhd_lcores[l];
		const struct load_sample *o = &samples[l][oldest],
					 *n = &samples[l][newest];
		uint64_t busy = n->busy - o->busy, idle = n->idle - o->idle;
		double secs = (double)(busy + idle) / hz;
		double pct = busy + idle
				 ? 100.0 * (double)busy / (double)(busy + idle)
				 : 0.0;
		json_int_t pps =
		    n_samples > 1 && secs > 0
			? (json_int_t)((double)(n->rx_pkts - o->rx_pkts) / secs)
			: 0;

		json_array_append_new(
		    a, json_pack("{s:i,s:i,s:f,s:I,s:o}", "lcore", lc->lcore_id,
				 "cpu", rte_lcore_to_cpu_id((int)lc->lcore_id),
				 "busy_pct", pct, "pps", pps, "rxqs",
				 lcore_rxqs(lc)));
	}
	vhd_ctl_ok(req, a);
}

/* Port PORT's counters less those at its last clear. */
static json_t *since_clear(const struct vhd_port *p)
{
	struct vhd_port_stats s;
	const struct vhd_port_stats *b = &p->clear_base;
	json_t *o;

	vhd_port_stats_sum(p->idx, &s);
	s.rx_pkts -= b->rx_pkts;
	s.rx_bytes -= b->rx_bytes;
	s.tx_pkts -= b->tx_pkts;
	s.tx_bytes -= b->tx_bytes;
	for (int d = 0; d < VHD_DROP_MAX; d++)
		s.drop[d] -= b->drop[d];
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
	for (uint16_t i = 0; i < vhd_running->n_ports; i++)
		if (vhd_ports[i])
			fn(vhd_ports[i], acc);
	return true;
}

static void add_stats(struct vhd_port *p, json_t *acc)
{
	json_array_append_new(acc, since_clear(p));
}

static void clear_stats(struct vhd_port *p, json_t *acc)
{
	vhd_port_stats_sum(p->idx, &p->clear_base);
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
