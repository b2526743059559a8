/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd configuration: the INI file parsed into plain structs.
 *
 * Parsing needs no EAL (the EAL arguments come from the file), so the
 * parser is usable from unit tests and before rte_eal_init(). Every error
 * names the file, the line, the section and the key.
 */
#ifndef VHD_CONFIG_H
#define VHD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHD_NAME_MAX	  32 /* port and bridge names, including NUL */
#define VHD_MAX_PORTS	  64 /* ports in the switch */
#define VHD_MAX_BRIDGES	  16 /* bridges in the switch */
#define VHD_MAX_DP_LCORES 16 /* datapath lcores */
#define VHD_MAX_QUEUES	  8  /* rx queues polled per port */
#define VHD_DEVARGS_MAX	  256

enum vhd_port_type { VHD_PORT_VHOST, VHD_PORT_ETH };
enum vhd_bridge_mode { VHD_BR_LEARNING, VHD_BR_XCONNECT };

struct vhd_port_conf {
	char name[VHD_NAME_MAX];
	enum vhd_port_type type;
	uint16_t bridge; /* index into vhd_config.bridges */
	uint16_t queues; /* ethdev: rx queues; vhost: ignored (guest decides) */
	bool client;	 /* vhost: vhostd connects and reconnects */
	char path[PATH_MAX];	       /* vhost socket */
	char devargs[VHD_DEVARGS_MAX]; /* ethdev: PCI address or vdev */
	uint16_t rx_desc, tx_desc;     /* ethdev ring sizes */
	int line;		       /* where the section starts */
};

struct vhd_bridge_conf {
	char name[VHD_NAME_MAX];
	enum vhd_bridge_mode mode;
	uint32_t mac_aging;	 /* seconds; 0 = never age */
	uint32_t mac_table_size; /* cap on learned entries */
	int line;
};

struct vhd_config {
	char file[PATH_MAX];
	uint16_t dp_cpus[VHD_MAX_DP_LCORES]; /* CPU of each datapath lcore */
	uint16_t n_dp;
	uint16_t main_cpu;
	uint32_t socket_mem; /* MiB */
	uint32_t mbufs;	     /* 0: computed from the ports */
	char file_prefix[64];
	char huge_dir[PATH_MAX];
	char log_level[32];
	struct vhd_bridge_conf bridges[VHD_MAX_BRIDGES];
	uint16_t n_bridges;
	struct vhd_port_conf ports[VHD_MAX_PORTS];
	uint16_t n_ports;
};

/*
 * Parse FILE into CONF. Returns 0, or -1 with a one-line message of the form
 * "FILE:LINE: [section] key: what is wrong" in ERR.
 */
int vhd_config_load(const char *file, struct vhd_config *conf, char *err,
		    size_t errlen);

/* Parse a CPU list such as "1", "1,3" or "2-5" (as EAL's -l does). */
int vhd_config_parse_cpus(const char *s, uint16_t *cpus, uint16_t max,
			  uint16_t *n);

#endif
