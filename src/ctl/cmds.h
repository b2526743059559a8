/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/cmds.h: the control commands' handlers, one file per area, listed
 * in one table (commands.c). Control thread only.
 */
#ifndef VHD_CTL_CMDS_H
#define VHD_CTL_CMDS_H

#include "vhd_ctl.h"

/* cmd_switch.c: bridges, ports, the FDB, the running config. */
vhd_ctl_fn vhd_cmd_bridge_add, vhd_cmd_bridge_del, vhd_cmd_bridge_list,
    vhd_cmd_bridge_show;
vhd_ctl_fn vhd_cmd_port_add, vhd_cmd_port_del, vhd_cmd_port_list,
    vhd_cmd_port_show;
vhd_ctl_fn vhd_cmd_fdb_show, vhd_cmd_fdb_add, vhd_cmd_fdb_del,
    vhd_cmd_fdb_flush;
vhd_ctl_fn vhd_cmd_config_show, vhd_cmd_config_save;

/* A port's counters as JSON ({"rx_packets": ..., "drop_...": ...}). */
struct vhd_port_stats;
json_t *vhd_port_stats_json(const struct vhd_port_stats *s);

/* evpn.c: port show's "evpn" object of vxlan port P (null without). */
struct vhd_port;
json_t *vhd_evpn_json(const struct vhd_port *p);

/* cmd_stats.c: counters, lcore and rx queue load, rebalance. */
vhd_ctl_fn vhd_cmd_stats, vhd_cmd_stats_clear, vhd_cmd_lcores,
    vhd_cmd_rxq_rebalance;

/* cmd_info.c: version, uptime, sizes, mbufs in use. */
vhd_ctl_fn vhd_cmd_info;

/* cmd_capture.c */
vhd_ctl_fn vhd_cmd_capture;

/* cmd_log.c: log levels at run time. */
vhd_ctl_fn vhd_cmd_log_list, vhd_cmd_log_set;

#endif
