/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd.h: the types every part of vhostd shares: ports, bridges, per-lcore
 * state, and the rules for who touches what.
 *
 * Threads:
 *  - datapath lcores (vhd_lcore_main): poll their rx queues, switch, and
 *    transmit. Each one writes only its own struct vhd_lcore.
 *  - the main lcore (control): start-up, the control socket (every change
 *    to bridges and ports, switch.c), FDB aging, captures, shutdown.
 *  - the vhost-events thread of librte_vhost: new_device, destroy_device,
 *    vring_state_changed (ports/vhost.c).
 *  - the telemetry thread: reads counters (ctl/telemetry.c).
 *
 * Publication: vhd_ports[], vhd_bridges[], each bridge's flood list and each
 * lcore's rx queue list are pointers that the control thread publishes with
 * release stores and the lcores read with acquire loads. Whatever is
 * unpublished is freed only after rte_rcu_qsbr_synchronize(vhd_rcu) has seen
 * every datapath lcore pass a quiescent state (once per loop iteration). A
 * vhost port's vid follows the same rule: destroy_device stores -1, then
 * waits for a grace period, so no lcore touches a vring of a device that
 * librte_vhost is about to free. The two other threads that read the tables
 * (vhost-events, telemetry) are not RCU readers: they hold vhd_tables_lock
 * while they look at a port or bridge, and the control thread takes it to
 * unpublish and free one (never around a librte_vhost call, which may wait
 * for the vhost-events thread).
 *
 * Mbuf ownership: an mbuf belongs to the lcore that received it until it is
 * handed to a port's tx (vhd_port_tx) or freed. vhd_port_tx consumes every
 * mbuf it is given: sent ones go to the PMD (ethdev) or are copied into the
 * guest and freed (vhost); unsent ones are freed and counted as drops. A
 * flooded mbuf is not copied: its refcnt is set to the number of
 * destinations and each tx consumes one reference.
 *
 * Queues: each port rx queue is polled by exactly one lcore (vhd_sched),
 * and all the rx queues of a policed port by one lcore, whose meter for
 * that port (vhd_lcore.meter) it is.
 * Tx queues: ethdev ports get one tx queue per lcore when the device has
 * enough, and a per-queue spinlock (taken per burst) otherwise; a vhost port
 * is shared by all lcores through the guest's enabled rx vrings, with a
 * per-vring spinlock taken per burst when more than one lcore runs.
 */
#ifndef VHD_H
#define VHD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_meter.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>

#include "vhd_config.h"
#include "vhd_fdb.h"

#define VHD_BURST 32
/* A burst of super-frames (64 KiB: 32 mbufs each) is taken VHD_BURST_BIG
 * at a time, so that its mbufs come from and go back to the lcore's
 * mempool cache (256) while their data is still in cache: taking 32 moves
 * 2 MiB through the pool's ring, cold. Frames of VHD_BIG_FRAME bytes on
 * average make a burst one of those. */
#define VHD_BURST_BIG 8
#define VHD_BIG_FRAME 16384
#define VHD_PORT_NONE UINT16_MAX

extern int vhd_logtype_main, vhd_logtype_port, vhd_logtype_bridge,
    vhd_logtype_ctl;
/* The line's sink (log.c) adds its level and logtype. */
#define VHD_LOG(level, type, fmt, ...) \
	rte_log(RTE_LOG_##level, vhd_logtype_##type, fmt "\n", ##__VA_ARGS__)

/* Drop reasons. Keep the names (dp/port_io.c) in the same order. */
enum vhd_drop {
	VHD_DROP_NO_DEST,   /* ingress: nowhere to send (only port, hairpin) */
	VHD_DROP_INVALID,   /* ingress: runt frame */
	VHD_DROP_NOT_READY, /* egress: guest not connected / no enabled rxq */
	VHD_DROP_TX_FULL,   /* egress: ring still full after retries */
	VHD_DROP_VLAN,	    /* ingress: a VLAN the port does not carry */
	VHD_DROP_NO_MBUF,   /* a flood's copy found the pool empty */
	VHD_DROP_SPOOF,	    /* ingress: source MAC not in allowed-macs */
	VHD_DROP_MTU,	    /* egress: longer than the port's MTU */
	VHD_DROP_POLICED,   /* ingress: above the port's ingress rate */
	VHD_DROP_BAD_OFFLOAD, /* ingress: an offload request refused (bad
			       * virtio-net header: dp/offload.c) */
	/* VXLAN (dp/vxlan.c). On an underlay: a frame for one of its
	 * tunnels (local-ip, udp-port) that is malformed, without the I
	 * flag, of an unknown VNI or from an unknown remote; anything else
	 * that is neither that nor ARP. On a vxlan port: no next hop
	 * known for the remote yet (ARP asked). */
	VHD_DROP_VXLAN,
	VHD_DROP_NOT_VXLAN,
	VHD_DROP_NO_NEIGH,
	VHD_DROP_MAX
};
extern const char *const vhd_drop_names[VHD_DROP_MAX];

/* Per (lcore, port) counters: written by one lcore, summed on read. A
 * whole number of cache lines, so a port's rx and tx counters share its
 * first line whatever the number of drop reasons. */
struct vhd_port_stats {
	uint64_t rx_pkts, rx_bytes;
	uint64_t tx_pkts, tx_bytes;
	uint64_t drop[VHD_DROP_MAX];
	uint64_t tx_lock_contended;
	/* Offloads (dp/offload.c): super-frames and frames with a partial
	 * checksum received; super-frames segmented in software for this
	 * port, the segments that made (also in tx_pkts), and frames whose
	 * TCP/UDP checksum was completed in software for it. */
	uint64_t rx_tso, rx_csum_partial;
	uint64_t tx_segmented, tx_segments, tx_sw_csum;
} __rte_cache_aligned;

/* Per (lcore, bridge) counters. */
struct vhd_bridge_stats {
	uint64_t learned, moved, learn_full, learn_limited, flooded;
};

struct vhd_capture;

/* A set of a port's queues (bit q % 64 of word q / 64). Written with
 * atomics (the vhost-events thread), read without locks. */
struct vhd_qmask {
	uint64_t w[VHD_MAX_QUEUES / 64];
};

static inline void vhd_qmask_set(struct vhd_qmask *m, unsigned int q, bool on)
{
	uint64_t bit = UINT64_C(1) << (q % 64);

	if (on)
		__atomic_fetch_or(&m->w[q / 64], bit, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&m->w[q / 64], ~bit, __ATOMIC_RELEASE);
}

static inline void vhd_qmask_zero(struct vhd_qmask *m)
{
	for (unsigned int i = 0; i < VHD_MAX_QUEUES / 64; i++)
		__atomic_store_n(&m->w[i], 0, __ATOMIC_RELEASE);
}

static inline bool vhd_qmask_test(const struct vhd_qmask *m, unsigned int q)
{
	return __atomic_load_n(&m->w[q / 64], __ATOMIC_RELAXED) >> (q % 64) & 1;
}

struct vhd_port {
	/* Set before the port is published, then read-only. */
	char name[VHD_NAME_MAX];
	enum vhd_port_type type;
	uint16_t idx;	 /* index in vhd_ports[] */
	uint16_t bridge; /* index in vhd_bridges[] */
	bool client;
	bool started; /* vhost: registered with librte_vhost */
	bool police;  /* ingress policing: police_prof, lcores' meters */
	char path[PATH_MAX];
	struct vhd_vlan vlan;	      /* vlan-mode, tag, trunks */
	struct vhd_port_security sec; /* allowed-macs, mac-learn-limit */
	/* Nothing is learned from its frames: a VTEP of an EVPN vxlan port
	 * (its remotes' MACs come from BGP, as Linux's nolearning). */
	bool no_learn;
	uint32_t mtu;	    /* configured MTU, bytes */
	uint32_t max_frame; /* mtu + Ethernet header: longer frames (4
			     * more if tagged) are not sent, drop_mtu */
	char socket_group[VHD_GROUP_MAX]; /* vhost server: file's group */
	uint32_t socket_mode;		  /* and mode */
	bool iommu_support;		  /* vhost: VIRTIO_F_IOMMU_PLATFORM */
	bool offloads;	    /* offer (vhost) or enable (ethdev) offloads */
	bool tx_multiseg;   /* ethdev: sends chained mbufs */
	bool rx_csum_check; /* ethdev: checksums may come partial (af_packet) */
	uint64_t eth_tx_offloads; /* ethdev: RTE_ETH_TX_OFFLOAD_* enabled */
	uint16_t eth_id;	  /* ethdev port id */
	uint16_t n_rxq; /* rx queues at most (vhost: VHD_MAX_QUEUES) */
	uint16_t n_txq;
	bool txq_shared; /* more lcores than tx queues: lock per burst */
	/* Ingress policing (police): srTCM profile (CIR, CBS; EBS 0) of
	 * ingress-rate-kbps and the burst that applies, also for show. */
	struct rte_meter_srtcm_profile police_prof;
	uint32_t police_rate_kbps, police_burst_kbytes;
	/* Set by the control thread while a capture runs (dp/capture.c). */
	struct vhd_capture *cap;

	/* vhost: written by the vhost-events thread, read by lcores. */
	int vid;	/* -1: no device; else the live device */
	int conn_vid;	/* the one accepted connection, or -1 */
	uint16_t nr_qp; /* queue pairs of the live device */
	struct vhd_qmask
	    guest_rxq; /* enabled guest rx vrings (our tx queues) */
	struct vhd_qmask
	    guest_txq;	   /* enabled guest tx vrings (our rx queues) */
	uint64_t features; /* negotiated virtio features (live device) */
	/* VHD_OFFL_* the port takes as they are (vhd_offload.h): an
	 * ethdev's from start, a guest's stored before its vid is. */
	uint32_t tx_offl;
	/* A datapath lcore found the guest's rx buffers too small for a
	 * super-frame and took TSO out of tx_offl (dp/port_io.c); cleared
	 * by new_device. The control thread logs it once (logged). */
	bool rx_bufs_small, rx_bufs_small_logged;
	int numa_node;	   /* of the guest's memory, or -1 */
	uint64_t connects; /* new_device count */
	uint64_t log_tsc;  /* rate limit for guest-triggered logs */
	unsigned int log_burst;

	/* The last thing that went wrong (vhd_port_error), for port/show;
	 * written under vhd_tables_lock. */
	char last_error[160];
	int last_errno;
	/* Control thread: counters at the last stats/clear. */
	struct vhd_port_stats clear_base;
	/* Control thread (sched.c): each rx queue's cost (n_rxq entries,
	 * allocated once the port has a queue to poll), and the queues in
	 * the lcores' lists. */
	struct vhd_rxq_load *load;
	struct vhd_qmask placed;

	/* VXLAN (dp/vxlan.c), set before the port is published. A vxlan
	 * port and its VTEP sub-ports: the tunnel (addresses and ports in
	 * network order, VNI as the header's second word); a VTEP also its
	 * remote and its vxlan port. */
	uint32_t vx_vni_be, vx_local, vx_remote;
	uint16_t vx_udp_be, vx_underlay, vx_parent;
	uint8_t vx_src_mac[6]; /* the underlay's */
	bool vx_static_nh;     /* next-hop-mac: never from ARP */
	/* A VTEP's next hop: the MAC in the low 48 bits, bit 63 set once
	 * known. Written by whichever lcore sees the remote's ARP (rare,
	 * and only when it changes), read once a burst. */
	uint64_t vx_nh;
	/* TSC of the last ARP request for it (lcores; a race between two
	 * only sends one more). */
	uint64_t vx_arp_tsc;
	/* An underlay: its tunnels (published like the tables, RCU). */
	struct vhd_vxlan_map *vx_map;
	/* Control thread: a VTEP on its way out (left out of its underlay's
	 * table before its slot can be reused); an EVPN vxlan port's state
	 * (ctl/evpn.c). */
	bool vx_dying;
	struct vhd_evpn *evpn;

	rte_spinlock_t txq_lock[VHD_MAX_QUEUES];
} __rte_cache_aligned;

#define VHD_VX_NH_VALID (UINT64_C(1) << 63)

/* An underlay's tunnels, for rx: the (local-ip, udp-port, VNI, remote) of
 * each VTEP on it, a short array scanned per frame (a few tunnels), and
 * the local-ips it answers ARP for. */
struct vhd_vxlan_ent {
	uint32_t local, remote, vni_be;
	uint16_t udp_be, vtep;
};
struct vhd_vxlan_map {
	uint16_t n, n_local;
	uint32_t local[VHD_MAX_PORTS];
	struct vhd_vxlan_ent e[];
};

/* A bridge's ports, in the order they were added: its flood list. */
struct vhd_portlist {
	uint16_t n;
	bool vlan_aware; /* some member is not a trunk of every VLAN */
	bool guarded;	 /* some member has allowed-macs */
	uint16_t port[];
};

struct vhd_bridge {
	char name[VHD_NAME_MAX];
	uint16_t idx;
	enum vhd_bridge_mode mode;
	uint32_t mac_aging;
	struct vhd_fdb *fdb; /* learning only */
	uint64_t aged;	     /* written by the control thread only */
	/* Published by the control thread (RCU); never NULL. */
	struct vhd_portlist *ports;
};

/* One rx queue in an lcore's poll list (sched.c). PORT and Q are set
 * before the list is published; CYCLES (TSC cycles of the polls that
 * brought frames, through switching) and PKTS are written by the lcore
 * that polls the list and nobody else; SEEN_* by the control thread (what
 * it has added to the port's totals). */
struct vhd_rxq {
	uint16_t port;
	uint16_t q;
	/* Frames to take in its next poll (0: VHD_BURST); its lcore's. */
	uint16_t burst;
	uint64_t cycles, pkts;
	uint64_t seen_cycles, seen_pkts;
};

struct vhd_rxq_list {
	uint16_t n;
	struct vhd_rxq q[];
};

/* A queue's cost, summed from the lcores' lists by the control thread,
 * with a snapshot of the cycles each second: the load placement uses is
 * the difference across the window (sched.c). */
#define VHD_LOAD_SAMPLES 6 /* a window of 5 s */
struct vhd_rxq_load {
	uint64_t cycles, pkts;
	uint64_t snap[VHD_LOAD_SAMPLES], snap_pkts[VHD_LOAD_SAMPLES];
};

struct vhd_txbuf {
	uint16_t n;
	bool listed; /* in the lcore's dirty list */
	struct rte_mbuf *pkts[VHD_BURST];
};

/*
 * Written only by its own lcore (rxq is published by the control side).
 * The per-port and per-bridge arrays (VHD_MAX_PORTS, VHD_MAX_BRIDGES
 * entries) are allocated at start-up on the lcore's NUMA node; an entry is
 * zeroed by the control thread only while no port (bridge) has its index,
 * after a grace period.
 */
struct vhd_lcore {
	unsigned int lcore_id;
	/* The CPU it runs on (from [vhostd] lcores) and that CPU's NUMA
	 * node. Not rte_lcore_to_cpu_id()/_socket_id(): with EAL's --lcores
	 * mapping those give the core and node of the CPU numbered like the
	 * lcore, not of the CPU the lcore runs on. */
	uint16_t cpu;
	int numa;
	uint16_t idx; /* 0..vhd_n_lcores-1, also the RCU thread id */
	/* Its node's mbuf pool (dp/pools.c): what it dequeues from guests
	 * into and copies floods into. */
	struct rte_mempool *pool;
	struct vhd_rxq_list *rxq;
	/* Ports whose tx buffer has been written since the last flush. */
	uint16_t n_dirty;
	uint16_t *dirty;
	uint64_t loops, busy_loops;
	/* TSC cycles in loop iterations that moved packets, and in empty
	 * ones: the lcore's load, as OVS's pmd-stats-show reports it. */
	uint64_t busy_cycles, idle_cycles;
	struct vhd_port_stats *stats;	  /* by port */
	struct vhd_bridge_stats *brstats; /* by bridge */
	struct vhd_txbuf *tx;		  /* by destination port */
	struct vhd_fdb_memo *memo;	  /* by ingress port */
	struct rte_meter_srtcm *meter;	  /* by ingress port (policed ones) */
} __rte_cache_aligned;

extern struct vhd_port *vhd_ports[VHD_MAX_PORTS];
extern struct vhd_bridge *vhd_bridges[VHD_MAX_BRIDGES];
extern struct vhd_lcore vhd_lcores[VHD_MAX_DP_LCORES];
extern uint16_t vhd_n_lcores;
extern struct rte_rcu_qsbr *vhd_rcu;
/* The main lcore's node's mbuf pool: for ports on no known node. */
extern struct rte_mempool *vhd_pool;
extern volatile bool vhd_quit;
extern uint32_t vhd_clock; /* seconds since start, kept by the main lcore */
extern pthread_mutex_t vhd_tables_lock; /* see the top of this file */

static inline struct vhd_port *vhd_port_get(uint16_t idx)
{
	return __atomic_load_n(&vhd_ports[idx], __ATOMIC_ACQUIRE);
}

static inline struct vhd_bridge *vhd_bridge_get(uint16_t idx)
{
	return __atomic_load_n(&vhd_bridges[idx], __ATOMIC_ACQUIRE);
}

/* P's bridge; NULL for an underlay (in none) or while it has none. */
static inline struct vhd_bridge *vhd_port_bridge(const struct vhd_port *p)
{
	return p->bridge == VHD_BRIDGE_NONE ? NULL : vhd_bridge_get(p->bridge);
}

/* The type key's value ("vhost-user", "ethdev", "vxlan"; "vtep" for a
 * vxlan port's remote). */
static inline const char *vhd_port_type_name(enum vhd_port_type t)
{
	return t == VHD_PORT_VHOST   ? "vhost-user"
	       : t == VHD_PORT_ETH   ? "ethdev"
	       : t == VHD_PORT_VXLAN ? "vxlan"
				     : "vtep";
}

/* What vhd_port_rx learned of a burst in its one pass over the mbufs, for
 * vhd_port_tx when the burst goes out whole and unchanged: its bytes, and
 * whether every mbuf is plain (one segment, one reference, direct, from
 * vhd_pool), so tx needs no second pass to count and free it. */
struct vhd_burst {
	uint64_t bytes;
	uint32_t max_len; /* the longest frame's length, bytes */
	bool plain;
	bool offl; /* some frame is partial or a super-frame (offload.c) */
};

/* dp/port_io.c: where a packet enters and leaves the switch. vhd_port_rx
 * takes at most MAX (<= VHD_BURST) frames and returns the burst's frames that
 * have a whole Ethernet header and are within the port's ingress rate (runts
 * and policed frames are counted in rx and as drops, and freed there) and fills
 * *B; the caller owns the frames. vhd_port_tx takes B only for such a burst,
 * else NULL; it takes at most VHD_BURST frames and leaves the array PKTS as it
 * was (a flood hands the same one to every port). */
uint16_t vhd_port_rx(struct vhd_lcore *lc, struct vhd_port *p, uint16_t q,
		     struct rte_mbuf **pkts, uint16_t max, struct vhd_burst *b);
void vhd_port_tx(struct vhd_lcore *lc, uint16_t port, struct rte_mbuf **pkts,
		 uint16_t n, const struct vhd_burst *b);
bool vhd_port_up(const struct vhd_port *p);

/* Rx queues of P an lcore may poll now: a vhost port's live queue pairs
 * (none while no guest is up), an ethdev's configured queues. */
static inline uint16_t vhd_port_nrxq(const struct vhd_port *p)
{
	if (p->type == VHD_PORT_VHOST)
		return __atomic_load_n(&p->vid, __ATOMIC_ACQUIRE) < 0
			   ? 0
			   : __atomic_load_n(&p->nr_qp, __ATOMIC_ACQUIRE);
	return p->n_rxq;
}
void vhd_port_stats_sum(uint16_t port, struct vhd_port_stats *out);
bool vhd_log_ratelimit(struct vhd_port *p);

/* P's counters as the control commands and telemetry show them: a vxlan
 * port's are the sum of its remotes' (it is in no burst itself). Control
 * thread, or with vhd_tables_lock held. */
void vhd_port_stats_total(const struct vhd_port *p, struct vhd_port_stats *out);

/* Record what went wrong with P for port/show (any thread but the
 * lcores): ERRNUM is a positive errno. */
void vhd_port_error(struct vhd_port *p, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ports/vhost.c, ports/eth.c: lifecycle; control thread only. A start
 * that fails has logged why, recorded it (vhd_port_error) and left
 * nothing behind; returns a negative errno. */
int vhd_vhost_port_check(struct vhd_port *p);
int vhd_vhost_port_start(struct vhd_port *p);
void vhd_vhost_port_stop(struct vhd_port *p);
int vhd_eth_port_start(struct vhd_port *p, const struct vhd_port_conf *pc);
void vhd_eth_port_stop(struct vhd_port *p);
/* Control thread, every loop: records what the lcores found of a guest
 * (rx buffers too small for its negotiated TSO) in its port's last
 * error, once a connection. */
void vhd_vhost_poll(void);
/* Virtio feature bit B's name ("VIRTIO_NET_F_MRG_RXBUF"), or NULL. */
const char *vhd_vhost_feature_name(unsigned int b);

/* ports/vhost_guard.c: every vhost-user message is checked before
 * librte_vhost acts on it, and a guest mapping that shrinks under vhostd
 * turns into zero pages instead of a SIGBUS.
 * init: once, before any port starts (installs the SIGBUS handler);
 * -errno on failure.
 * attach: in new_connection (vhost-events thread); -errno for a vid out
 * of range or a connection whose socket cannot be found or given its
 * timeouts (the connection is then refused).
 * detach: once the connection is gone (destroy_connection, or after
 * rte_vhost_driver_unregister).
 * poll: on the control thread, logs the mappings the handler replaced. */
int vhd_vhost_guard_init(void);
int vhd_vhost_guard_attach(int vid, const char *port_name);
void vhd_vhost_guard_detach(int vid);
void vhd_vhost_guard_poll(void);
/* On the vhost-events thread, within librte_vhost's handling of a message
 * (vring_state_changed): whether that message is an IOTLB message. */
bool vhd_vhost_guard_in_iotlb_msg(void);

/* ports/vhost_msg_fds.c: the fds librte_vhost drops with a message it
 * refuses before the guard sees it (why: there). Both on the vhost-events
 * thread. handled: the pre-handler saw the message just read (its fds are
 * librte_vhost's or the guard's). reap: in destroy_connection, closes the
 * fds of a message read whole and never handled; returns how many. */
void vhd_msg_fds_handled(void);
int vhd_msg_fds_reap(void);

/* ports/vhost_notify.c: guest calls and IOTLB misses relayed off the
 * lcores (why: there). init/fini/watchdog: control thread (init before
 * any port starts, fini after the last stopped; watchdog every tick).
 * take: gives the relay the frontend's call eventfd GUEST_FD of (VID,
 * VRING) and returns the eventfd librte_vhost is to write instead (it
 * owns it), or -errno (then GUEST_FD is still the caller's). take_chan:
 * the same for VID's backend channel socket (SET_SLAVE_REQ_FD); returns
 * the socket librte_vhost is to send on. drop: forgets (VID, VRING) (VID
 * -1: every vid; VRING UINT32_MAX: every vring and the channel;
 * VHD_NOTIFY_CHAN: the channel) and closes its fds. take, take_chan and
 * drop run on the vhost-events or the control thread. */
#define VHD_NOTIFY_CHAN (UINT32_MAX - 1)
int vhd_notify_init(void);
void vhd_notify_fini(void);
void vhd_notify_watchdog(void);
int vhd_notify_take(int vid, uint32_t vring, int guest_fd);
int vhd_notify_take_chan(int vid, int guest_fd);
void vhd_notify_drop(int vid, uint32_t vring);

/*
 * switch.c: the running switch: bridges and ports added and removed, at
 * start-up from the config file and at run time from the control socket.
 * Control thread only. Each returns 0 (or the new index) or a negative
 * errno with a message naming the object in ERR; a change that fails
 * leaves nothing half made.
 */
extern struct vhd_config *vhd_running; /* what runs now (slots = indexes) */
int vhd_switch_bridge_add(const char *name, int argc, const char *const *argv,
			  char *err, size_t errlen);
int vhd_switch_bridge_del(const char *name, char *err, size_t errlen);
int vhd_switch_port_add(const char *name, int argc, const char *const *argv,
			char *err, size_t errlen);
int vhd_switch_port_del(const char *name, char *err, size_t errlen);
/* Everything in CONF (start-up): bridges, then ports. */
int vhd_switch_load(struct vhd_config *conf, char *err, size_t errlen);
/* Every port and bridge removed (shutdown, lcores stopped). */
void vhd_switch_clear(void);
/* Published port (bridge) called NAME, or NULL. Control thread, or with
 * vhd_tables_lock held. */
struct vhd_port *vhd_port_find(const char *name);
struct vhd_bridge *vhd_bridge_find(const char *name);
/* VTEP sub-ports of vxlan port PARENT made and removed at run time (EVPN):
 * add one for remote IP (network order), flooded to if FLOOD (its slot, or
 * -ENOSPC, -ENOMEM); make one flooded to or not; remove one. */
int vhd_switch_vtep_add(uint16_t parent, uint32_t ip, bool flood);
int vhd_switch_vtep_flood(uint16_t slot, bool flood);
void vhd_switch_vtep_del(uint16_t slot);

/*
 * ctl/evpn.c: BGP EVPN through FRR's zebra, over the Linux objects zebra
 * watches and programs (a bridge with a VXLAN device and the vxlan port's
 * `evpn` interface). Control thread only.
 * start: check P's kernel objects (ERR says what is wrong: -ENODEV,
 *   -EINVAL), then take the remotes and remote MACs zebra has installed;
 * stop: withdraw P's local MACs (deletes what it wrote) and forget it;
 * poll: apply what zebra changed since (non-blocking);
 * tick: once a second, write the bridges' new local MACs and delete the
 *   gone ones;
 * json: port show's "evpn" object of P.
 */
struct vhd_port_conf;
int vhd_evpn_start(struct vhd_port *p, const struct vhd_port_conf *pc,
		   char *err, size_t errlen);
void vhd_evpn_stop(struct vhd_port *p);
void vhd_evpn_poll(void);
void vhd_evpn_tick(void);

/* bridge.c: where a packet is decided on. */
struct vhd_bridge *vhd_bridge_create(const struct vhd_bridge_conf *bc,
				     uint16_t idx);
void vhd_bridge_free(struct vhd_bridge *br);
void vhd_bridge_input(struct vhd_lcore *lc, struct vhd_bridge *br,
		      uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		      const struct vhd_burst *b);
void vhd_bridge_age(struct vhd_bridge *br);
/* Bridge IDX's counters summed over the lcores (any thread; may be one
 * burst old). */
void vhd_bridge_stats_sum(uint16_t idx, struct vhd_bridge_stats *out);

/* dp/vxlan.c: VXLAN on the lcores. input: a burst of underlay UP
 * (consumed: decapsulated into the bridges, ARP answered, the rest
 * dropped). encap: PKTS[0..n) for VTEP P (consumed) into the underlay's tx
 * buffer; how many went. */
void vhd_vxlan_input(struct vhd_lcore *lc, struct vhd_port *up,
		     struct rte_mbuf **pkts, uint16_t n);
uint16_t vhd_vxlan_encap(struct vhd_lcore *lc, struct vhd_port *p,
			 struct rte_mbuf **pkts, uint16_t n, uint64_t *bytes);
/* Control thread: UP's tunnel table from the published VTEPs on it, but
 * those of vxlan port EXCEPT (VHD_PORT_NONE: none); -ENOMEM. */
int vhd_vxlan_map_update(struct vhd_port *up, uint16_t except);

/* lcore.c: the poll loop and its tx buffers. */
int vhd_lcore_main(void *arg);
/* sched.c: which lcore polls which rx queue (why and how: there). All on
 * the control thread.
 * build: places every queue that should be polled by its measured load
 * and publishes the lcores' lists (ports added or removed); -ENOMEM.
 * poll: rebuilds when a port's queues to poll changed (a guest came, went,
 * or enabled or disabled queue pairs); every control loop.
 * tick: every second: the lcores' counters into the ports' loads, the
 * load window, auto-rebalance when due.
 * rebalance: re-places every queue now (rxq/rebalance); R says what
 * moved and the lcores' estimated loads before and after.
 * rxq_load: cycles queue Q of P cost over the window (0 until two ticks);
 * rxq_window: those and its frames.
 * lcore_window: datapath lcore L's busy and idle TSC cycles and received
 * frames over the window; -ENODATA until two ticks. */
struct vhd_sched_report {
	unsigned int queues, moved;
	double var_before, var_after, improvement; /* cycles^2, cycles^2, % */
	uint64_t load_before[VHD_MAX_DP_LCORES], load_after[VHD_MAX_DP_LCORES];
};
int vhd_sched_build(void);
void vhd_sched_free(void);
void vhd_sched_poll(void);
void vhd_sched_tick(void);
int vhd_sched_rebalance(struct vhd_sched_report *r);
uint64_t vhd_sched_rxq_load(const struct vhd_port *p, uint16_t q);
void vhd_sched_rxq_window(const struct vhd_port *p, uint16_t q,
			  uint64_t *cycles, uint64_t *pkts);
int vhd_sched_lcore_window(uint16_t l, uint64_t *busy, uint64_t *idle,
			   uint64_t *rx_pkts);
void vhd_lcore_flush_port(struct vhd_lcore *lc, uint16_t port);

/* dp/pools.c, control thread only: one mbuf pool of N_MBUFS per NUMA node
 * in use. vhd_pools_init makes the main lcore's node's (vhd_pool) and
 * each datapath lcore's, and sets vhd_lcore.pool; -ENOMEM if one cannot
 * be made. vhd_pool_of(NODE) returns NODE's pool, making it on first use
 * (an ethdev on another node added at run time); vhd_pool for a negative
 * (unknown) node; NULL if it cannot be made. vhd_pools_count sums sizes
 * and mbufs in use over the pools (mbufs); vhd_pools_node gives node I's,
 * -ENOENT if it has none. vhd_pools_free frees them all (after the lcores
 * have stopped and every port is gone). */
int vhd_pools_init(unsigned int n_mbufs, int main_node);
struct rte_mempool *vhd_pool_of(int node);
void vhd_pools_count(uint64_t *size, uint64_t *in_use);
int vhd_pools_node(int node, uint64_t *size, uint64_t *in_use);
void vhd_pools_free(void);

int vhd_lcore_alloc(struct vhd_lcore *lc);
void vhd_lcore_free(struct vhd_lcore *lc);

static inline void vhd_tx_buffer(struct vhd_lcore *lc, uint16_t port,
				 struct rte_mbuf *m)
{
	struct vhd_txbuf *tb = &lc->tx[port];

	tb->pkts[tb->n++] = m;
	if (unlikely(!tb->listed)) {
		tb->listed = true;
		lc->dirty[lc->n_dirty++] = port;
	}
	if (unlikely(tb->n == VHD_BURST))
		vhd_lcore_flush_port(lc, port);
}

/* ctl/telemetry.c: telemetry commands. */
int vhd_telemetry_init(void);

#endif
