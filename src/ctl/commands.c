/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/commands.c: every control command in one table: its name (the
 * JSON-RPC method; vhostctl's words joined by '/'), its arguments, their
 * bounds (checked by the server before the handler runs) and its handler,
 * which lives beside the state it changes. list-commands is the server's.
 */
#include "cmds.h"

/* clang-format off */
const struct vhd_ctl_cmd vhd_ctl_cmds[] = {
    {"bridge/add", "NAME [mode=learning|xconnect] [mac-aging=S] "
     "[mac-table-size=N]", 1, 4, vhd_cmd_bridge_add, "add a bridge"},
    {"bridge/del", "NAME", 1, 1, vhd_cmd_bridge_del,
     "delete a bridge that has no ports"},
    {"bridge/list", "", 0, 0, vhd_cmd_bridge_list, "every bridge"},
    {"bridge/show", "NAME", 1, 1, vhd_cmd_bridge_show,
     "a bridge's settings, ports and FDB counters"},
    {"port/add", "NAME bridge=B type=vhost-user path=P [mode=server|client] "
     "[socket-group=G] [socket-mode=0660] [iommu-support=yes] | NAME bridge=B type=ethdev "
     "devargs=D [queues=N] [rx-desc=N] [tx-desc=N]; both: [vlan-mode=M] "
     "[tag=N] [trunks=L] [allowed-macs=MAC,MAC] [mac-learn-limit=N] [mtu=N] "
     "[ingress-rate-kbps=N] [ingress-burst-kbytes=N] [rxq-affinity=Q:CPU,...] "
     "[offloads=no] | NAME bridge=B type=vxlan vni=N local-ip=A underlay=P "
     "remote=IP[,IP...]|evpn=IFNAME [udp-port=4789] [next-hop-mac=MAC] "
     "[mtu=N]; "
     "NAME type=ethdev devargs=D without bridge: a vxlan underlay",
     1, 27, vhd_cmd_port_add,
     "add a port to a bridge"},
    {"port/del", "NAME", 1, 1, vhd_cmd_port_del,
     "delete a port (its guest is disconnected)"},
    {"port/list", "", 0, 0, vhd_cmd_port_list, "every port"},
    {"port/show", "NAME", 1, 1, vhd_cmd_port_show,
     "a port's state, guest, queues, last error and counters"},
    {"fdb/show", "[BRIDGE]", 0, 1, vhd_cmd_fdb_show,
     "MAC table entries: MAC, port, age, static or learned"},
    {"fdb/add", "BRIDGE MAC PORT [vlan=N]", 3, 4, vhd_cmd_fdb_add,
     "a static entry: never aged, never moved by learning"},
    {"fdb/del", "BRIDGE MAC [vlan=N]", 2, 3, vhd_cmd_fdb_del,
     "remove an entry"},
    {"fdb/flush", "[BRIDGE]", 0, 1, vhd_cmd_fdb_flush,
     "remove the learned entries"},
    {"stats", "[PORT]", 0, 1, vhd_cmd_stats,
     "port counters since the last stats clear"},
    {"stats/clear", "[PORT]", 0, 1, vhd_cmd_stats_clear,
     "start the counters of stats from zero"},
    {"lcores", "", 0, 0, vhd_cmd_lcores,
     "datapath lcores: busy share, packets/s, and each rx queue polled with "
     "its share of the lcore and packets/s (the last 5 s)"},
    {"info", "", 0, 0, vhd_cmd_info,
     "version, uptime, ports, bridges, lcores and mbufs in use"},
    {"rxq/rebalance", "", 0, 0, vhd_cmd_rxq_rebalance,
     "place every rx queue on the lcores again by its measured load"},
    {"capture", "PORT FILE [count=N] [duration=S] [dir=rx|tx|both]", 2, 5,
     vhd_cmd_capture, "write a port's frames to a pcapng file"},
    {"config/show", "", 0, 0, vhd_cmd_config_show,
     "the running bridges and ports as a config file"},
    {"config/save", "[FILE]", 0, 1, vhd_cmd_config_save,
     "write config show to FILE (default: the file vhostd started with)"},
    {"log/list", "[PATTERN]", 0, 1, vhd_cmd_log_list,
     "every logtype (or those matching the glob PATTERN) and its level"},
    {"log/set", "[PATTERN] LEVEL | PATTERN:LEVEL | REGEX,LEVEL", 1, 2,
     vhd_cmd_log_set,
     "set the level of the logtypes matching PATTERN (default vhostd.*); "
     "LEVEL emerg..debug or 1..8"},
    {NULL, NULL, 0, 0, NULL, NULL},
};
/* clang-format on */
