/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostd configuration: the INI file parsed into plain structs.
 *
 * Parsing needs no EAL (the EAL arguments come from the file), so the
 * parser is usable from unit tests and before rte_eal_init(). Every error
 * names the file, the line, the section and the key.
 *
 * The same code validates bridges and ports added at run time (control
 * socket): their "key=value" arguments go through the section parsers the
 * file uses, so both give the same messages, less the file and line. The
 * running switch keeps its configuration in a struct vhd_config whose
 * bridges[] and ports[] are slots: slot i is the bridge (port) with index i
 * in the switch's tables, and an unused slot has an empty name.
 */
#ifndef VHD_CONFIG_H
#define VHD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHD_NAME_MAX	  32   /* port and bridge names, including NUL */
#define VHD_MAX_PORTS	  1024 /* ports in the switch */
#define VHD_MAX_BRIDGES	  256  /* bridges in the switch */
#define VHD_MAX_DP_LCORES 16   /* datapath lcores */
#define VHD_MAX_QUEUES                                   \
	128 /* queue pairs per port: librte_vhost's own  \
	     * limit (VHOST_MAX_QUEUE_PAIRS), a multiple \
	     * of 64 (struct vhd_qmask) */
#define VHD_DEVARGS_MAX 256

/* VXLAN: a vxlan port (VHD_PORT_VXLAN, what the user names) has one VTEP
 * sub-port (VHD_PORT_VTEP, made by switch.c, named "PORT/REMOTE-IP") per
 * remote: the bridge member, FDB target and counter set of that remote. */
enum vhd_port_type {
	VHD_PORT_VHOST,
	VHD_PORT_ETH,
	VHD_PORT_VXLAN,
	VHD_PORT_VTEP
};
enum vhd_bridge_mode { VHD_BR_LEARNING, VHD_BR_XCONNECT };

/* A port's VLANs, with OVS's names and meanings (ovs-vswitchd.conf.db:
 * vlan_mode, tag, trunks). A frame belongs to one VLAN (0-4094) inside a
 * bridge; untagged frames on a trunk are VLAN 0. */
enum vhd_vlan_mode {
	VHD_VLAN_TRUNK,		  /* tagged in, tagged out (VLAN 0 untagged) */
	VHD_VLAN_ACCESS,	  /* untagged in and out, in VLAN tag */
	VHD_VLAN_NATIVE_UNTAGGED, /* trunk whose untagged frames are VLAN tag */
	VHD_VLAN_NATIVE_TAGGED,	  /* same, but VLAN tag leaves tagged */
};

#define VHD_VLAN_MAX 4095 /* VLANs 0-4094 */

struct vhd_vlan {
	enum vhd_vlan_mode mode;
	uint16_t tag; /* access and native-*: the port's VLAN */
	bool all;     /* trunk, native-*: no trunks key (every VLAN) */
	uint64_t trunks[(VHD_VLAN_MAX + 63) / 64]; /* else: bit per VLAN */
};

/* Does a port with VLAN config V send and receive VLAN VID at all; and,
 * if so, tagged? */
static inline bool vhd_vlan_carries(const struct vhd_vlan *v, uint16_t vid)
{
	if (v->mode != VHD_VLAN_TRUNK && vid == v->tag)
		return true;
	if (v->mode == VHD_VLAN_ACCESS)
		return false;
	return v->all || (v->trunks[vid / 64] >> (vid % 64) & 1);
}

static inline bool vhd_vlan_tagged_out(const struct vhd_vlan *v, uint16_t vid)
{
	return vid != 0 && v->mode != VHD_VLAN_ACCESS &&
	       !(v->mode == VHD_VLAN_NATIVE_UNTAGGED && vid == v->tag);
}

/* V's trunks as the trunks key writes them ("10,20,100-199") into BUF
 * (LEN bytes; VHD_TRUNKS_TEXT_MAX holds any list). */
#define VHD_TRUNKS_TEXT_MAX (VHD_VLAN_MAX * 5)
void vhd_vlan_trunks_format(const struct vhd_vlan *v, char *buf, size_t len);

/* "access", "trunk", ...: the vlan-mode value of M. */
const char *vhd_vlan_mode_name(enum vhd_vlan_mode m);

/* A trunk of every VLAN: what a port is with no VLAN keys. */
static inline bool vhd_vlan_is_default(const struct vhd_vlan *v)
{
	return v->mode == VHD_VLAN_TRUNK && v->all;
}

/* What a port may send as (allowed-macs) and own in its bridge's FDB
 * (mac-learn-limit). */
#define VHD_ALLOWED_MACS_MAX 16

struct vhd_port_security {
	uint16_t n_allowed;			/* 0: any source MAC */
	uint64_t allowed[VHD_ALLOWED_MACS_MAX]; /* MACs as FDB keys */
	uint32_t learn_limit;			/* 0: no limit */
};

#define VHD_MTU_DEFAULT 1500
#define VHD_MTU_MIN	68
#define VHD_MTU_MAX	9600

#define VHD_GROUP_MAX		64
#define VHD_SOCKET_MODE_DEFAULT 0660

/* VXLAN (RFC 7348): 50 bytes of outer Ethernet, IPv4, UDP and VXLAN. */
#define VHD_VXLAN_OVERHEAD    50
#define VHD_VXLAN_REMOTES_MAX 64
#define VHD_IFNAME_MAX	      16 /* IFNAMSIZ: a Linux interface name + NUL */
#define VHD_VXLAN_PORT_DEF    4789
#define VHD_VXLAN_NAME_MAX    (VHD_NAME_MAX - 16) /* room for "/IP" */
#define VHD_BRIDGE_NONE	      UINT16_MAX /* an underlay: in no bridge */

struct vhd_vxlan_conf {
	uint32_t vni;	   /* 1..16777215 */
	uint32_t local_ip; /* network order; vhostd answers ARP for it */
	uint16_t udp_port; /* host order */
	char underlay[VHD_NAME_MAX]; /* an ethdev port without a bridge */
	uint16_t underlay_slot;
	bool has_nh; /* next-hop-mac: every remote through it, no ARP */
	uint8_t nh_mac[6];
	uint16_t n_remotes;
	uint32_t remote[VHD_VXLAN_REMOTES_MAX]; /* network order */
	/* evpn = IFNAME (instead of remote): the remotes and their MACs
	 * come from BGP EVPN through FRR's zebra, which programs the Linux
	 * bridge IFNAME is a port of (ctl/evpn.c); "" without. */
	char evpn[VHD_IFNAME_MAX];
	/* A VTEP sub-port: its vxlan port's slot and remote address (network
	 * order); no_flood: it gets no floods (an EVPN remote known from a
	 * MAC route only, without its inclusive multicast route). */
	uint16_t parent;
	uint32_t vtep_ip;
	bool no_flood;
	bool mtu_given;
};

struct vhd_port_conf {
	char name[VHD_NAME_MAX];
	enum vhd_port_type type;
	uint16_t bridge; /* index into vhd_config.bridges */
	uint16_t queues; /* ethdev: rx queues; vhost: ignored (guest decides) */
	bool client;	 /* vhost: vhostd connects and reconnects */
	char path[PATH_MAX]; /* vhost socket */
	/* vhost server: the socket file's group ("": vhostd's) and mode;
	 * from [vhostd] socket-group / socket-mode unless the port says. */
	char socket_group[VHD_GROUP_MAX];
	uint32_t socket_mode;
	/* vhost: offer VIRTIO_F_IOMMU_PLATFORM (guests with a vIOMMU); the
	 * frontend then sends IOTLB updates and vhostd asks it for missing
	 * translations on its backend channel. */
	bool iommu_support;
	/* Checksum and segmentation offloads (default on): a guest is
	 * offered CSUM, GUEST_CSUM, HOST_TSO4/6 and GUEST_TSO4/6, an ethdev's
	 * tx checksum and TSO offloads are enabled; off, every frame to the
	 * port is segmented and checksummed in software (dp/offload.c). */
	bool offloads;
	char devargs[VHD_DEVARGS_MAX]; /* ethdev: PCI address or vdev */
	uint16_t rx_desc, tx_desc;     /* ethdev ring sizes */
	struct vhd_vlan vlan;	       /* vlan-mode, tag, trunks */
	struct vhd_port_security sec;  /* allowed-macs, mac-learn-limit */
	uint32_t mtu;		       /* bytes of L3 payload (default 1500) */
	/* Ingress policing: kbit/s (0: none) and the burst in kbytes as
	 * configured (0: not given; vhd_police_burst_kbytes() is what
	 * applies). */
	uint32_t ingress_rate_kbps;
	uint32_t ingress_burst_kbytes;
	/* rxq-affinity = Q:CPU,...: rx queue Q is polled by the datapath
	 * lcore on CPU (one of [vhostd] lcores). */
	uint16_t n_affinity;
	struct {
		uint16_t q, cpu;
	} affinity[VHD_MAX_QUEUES];
	struct vhd_vxlan_conf vx; /* type = vxlan, and VTEP sub-ports */
	int line;		  /* where the section starts */
};

/* Policing units: 1 kbit = 1000 bits, 1 kbyte = 1000 bytes (as OVS's
 * ingress_policing_rate), of whole Ethernet frames as the port counts them
 * in rx_bytes (header, any VLAN tag, payload; no FCS, preamble or gap). */
#define VHD_POLICE_RATE_MAX  400000000 /* kbit/s: 400 Gbit/s */
#define VHD_POLICE_BURST_MIN 10	       /* kbytes: a 9018-byte jumbo frame */
#define VHD_POLICE_BURST_MAX 50000000  /* kbytes: 1 s of the top rate */
#define VHD_POLICE_BURST_DEF 64	       /* kbytes: the least default */

/*
 * The burst of a port policed at RATE kbit/s when none is configured:
 * what the rate sends in 400 ms (RATE / 20 kbytes), and at least 64
 * kbytes. Why so much: between guests RTTs are tens of microseconds, so
 * any congestion window sends far above the rate; a policer (no queue)
 * then drops runs of a window, retransmissions too, and TCP stalls on
 * retransmission timeouts, 200 ms at least on Linux. Tokens that arrive
 * while the bucket is full are lost, so a bucket shorter than the stall
 * caps the flow: with 100 ms of the rate one CUBIC flow got 46-52 % of
 * 20 Mbit/s (tests/test_police.py), with 200 ms 90-94 %, with 400 ms (a
 * timeout and its first backoff) 93-97 %. OVS suggests 800 ms
 * (ingress_policing_burst = 80 % of the rate). More burst lets more
 * through at once after a quiet spell, never more on average; 64 kbytes
 * (some 43 full-size frames) keeps slow ports from a bucket of a few
 * frames.
 */
static inline uint32_t vhd_police_burst_kbytes(const struct vhd_port_conf *pc)
{
	uint32_t def = (pc->ingress_rate_kbps + 19) / 20;

	if (pc->ingress_burst_kbytes)
		return pc->ingress_burst_kbytes;
	return def > VHD_POLICE_BURST_DEF ? def : VHD_POLICE_BURST_DEF;
}

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
	/* EAL --log-level settings, space-separated, applied in order. */
	char log_level[256];
	char control[PATH_MAX];		   /* control socket */
	char control_group[VHD_GROUP_MAX]; /* its group ("": the process's) */
	/* Defaults of the vhost server sockets' group ("": vhostd's) and
	 * mode (VHD_SOCKET_MODE_DEFAULT). */
	char socket_group[VHD_GROUP_MAX];
	uint32_t socket_mode;
	/* auto-rebalance (OVS's pmd-auto-lb): every auto_rebalance_interval
	 * seconds, when an lcore was at least auto_rebalance_load % busy,
	 * re-place the rx queues if that lowers the variance of the lcores'
	 * loads by auto_rebalance_improvement %. */
	bool auto_rebalance;
	uint32_t auto_rebalance_interval;    /* seconds */
	uint32_t auto_rebalance_load;	     /* percent */
	uint32_t auto_rebalance_improvement; /* percent */
	struct vhd_bridge_conf bridges[VHD_MAX_BRIDGES];
	uint16_t n_bridges; /* slots in use or used: bridges[0..n_bridges) */
	struct vhd_port_conf ports[VHD_MAX_PORTS];
	uint16_t n_ports; /* slots in use or used: ports[0..n_ports) */
};

#define VHD_CONTROL_DEFAULT "/run/vhostd/vhostd.ctl"

/*
 * Parse FILE into CONF. Returns 0, or -1 with a one-line message of the form
 * "FILE:LINE: [section] key: what is wrong" in ERR.
 */
int vhd_config_load(const char *file, struct vhd_config *conf, char *err,
		    size_t errlen);

/*
 * Run-time changes to a loaded CONF. ARGV[0..argc) are "key=value" strings
 * with the keys of the file's [bridge NAME] / [port NAME] sections. On
 * success the new bridge (port) is in a free slot, whose index is returned;
 * on error, -1 with "[port NAME] key: what is wrong" in ERR and CONF
 * unchanged.
 */
int vhd_config_add_bridge(struct vhd_config *conf, const char *name, int argc,
			  const char *const *argv, char *err, size_t errlen);
int vhd_config_add_port(struct vhd_config *conf, const char *name, int argc,
			const char *const *argv, char *err, size_t errlen);
/* A VTEP sub-port for remote IP (network order) of the vxlan port in slot
 * PARENT, flooded to unless NO_FLOOD: a copy of its config in a free slot,
 * named "PARENT/IP"; the slot or -1. */
int vhd_config_add_vtep(struct vhd_config *conf, uint16_t parent, uint32_t ip,
			bool no_flood);
/* Free slot I (its name becomes empty). */
void vhd_config_del_bridge(struct vhd_config *conf, uint16_t i);
void vhd_config_del_port(struct vhd_config *conf, uint16_t i);
/* Slot of the bridge (port) called NAME, or -1. */
int vhd_config_bridge_slot(const struct vhd_config *conf, const char *name);
int vhd_config_port_slot(const struct vhd_config *conf, const char *name);

/*
 * CONF as an INI file that vhd_config_load() reads back into the same
 * bridges and ports: malloc'ed text (the caller frees), or NULL.
 */
char *vhd_config_format(const struct vhd_config *conf);

/* The device DEVARGS names: a canonical PCI address ("0000:3b:00.0") or
 * the vdev name ("net_tap0"), which is also its ethdev's name; true if it
 * is a PCI device. Two ports cannot share one device. */
bool vhd_config_dev_name(const char *devargs, char *name, size_t len);

/* Parse a CPU list such as "1", "1,3" or "2-5" (as EAL's -l does). */
int vhd_config_parse_cpus(const char *s, uint16_t *cpus, uint16_t max,
			  uint16_t *n);

#endif
