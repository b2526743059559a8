/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/cmd_info.c: what vhostd is and how full it is, in one reply: the
 * version, uptime, sizes and mbuf use. vhostctl metrics reads it for
 * vhostd_info and the mbuf gauges; telemetry's /vhostd/info has the same
 * for DPDK tools. Control thread only.
 */
#include <unistd.h>

#include <rte_version.h>

#include "cmds.h"
#include "vhd.h"

void vhd_cmd_info(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	uint64_t size, used;
	int ports = 0, bridges = 0;

	RTE_SET_USED(argc);
	RTE_SET_USED(argv);
	for (uint16_t i = 0; i < vhd_running->n_ports; i++)
		ports += vhd_ports[i] != NULL;
	for (uint16_t i = 0; i < vhd_running->n_bridges; i++)
		bridges += vhd_bridges[i] != NULL;
	/* Summed over the pools, one per NUMA node in use. */
	vhd_pools_count(&size, &used);
	vhd_ctl_ok(req,
		   json_pack("{s:s,s:s,s:i,s:I,s:i,s:i,s:i,s:I,s:I}", "version",
			     VHD_VERSION, "dpdk_version", rte_version(), "pid",
			     (int)getpid(), "uptime_s", (json_int_t)vhd_clock,
			     "lcores", (int)vhd_n_lcores, "ports", ports,
			     "bridges", bridges, "mbufs", (json_int_t)size,
			     "mbufs_in_use", (json_int_t)used));
}
