/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd.h: the types every part of vhostd shares: ports, bridges, per-lcore
 * state, and the rules for who touches what.
 *
 * Threads:
 *  - datapath lcores (vhd_lcore_main): poll their rx queues, switch, and
 *    transmit. Each one writes only its own struct vhd_lcore.
 *  - the main lcore (control): start-up, FDB aging, shutdown.
 *  - the vhost-events thread of librte_vhost: new_device, destroy_device,
 *    vring_state_changed (port_vhost.c).
 *  - the telemetry thread: reads counters (stats.c).
 *
 * Publication: vhd_ports[], vhd_bridges[] and each lcore's rx queue list are
 * pointers that the control side publishes with release stores and the
 * lcores read with acquire loads. Whatever is unpublished is freed only after
 * rte_rcu_qsbr_synchronize(vhd_rcu) has seen every datapath lcore pass a
 * quiescent state (once per loop iteration). A vhost port's vid follows the
 * same rule: destroy_device stores -1, then waits for a grace period, so no
 * lcore touches a vring of a device that librte_vhost is about to free.
 *
 * Mbuf ownership: an mbuf belongs to the lcore that received it until it is
 * handed to a port's tx (vhd_port_tx) or freed. vhd_port_tx consumes every
 * mbuf it is given: sent ones go to the PMD (ethdev) or are copied into the
 * guest and freed (vhost); unsent ones are freed and counted as drops. A
 * flooded mbuf is not copied: its refcnt is set to the number of
 * destinations and each tx consumes one reference.
 *
 * Queues: each port rx queue is polled by exactly one lcore (vhd_sched).
 * Tx queues: ethdev ports get one tx queue per lcore when the device has
 * enough, and a per-queue spinlock (taken per burst) otherwise; a vhost port
 * is shared by all lcores through the guest's enabled rx vrings, with a
 * per-vring spinlock taken per burst when more than one lcore runs.
 */
#ifndef VHD_H
#define VHD_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>

#include "vhd_config.h"
#include "vhd_fdb.h"

#define VHD_BURST     32
#define VHD_PORT_NONE UINT16_MAX

extern int vhd_logtype_main, vhd_logtype_port, vhd_logtype_bridge;
#define VHD_LOG(level, type, fmt, ...)                                    \
	rte_log(RTE_LOG_##level, vhd_logtype_##type, "vhostd: " fmt "\n", \
		##__VA_ARGS__)

/* Drop reasons. Keep the names (stats.c) in the same order. */
enum vhd_drop {
	VHD_DROP_NO_DEST,   /* ingress: nowhere to send (only port, hairpin) */
	VHD_DROP_INVALID,   /* ingress: runt frame */
	VHD_DROP_NOT_READY, /* egress: guest not connected / no enabled rxq */
	VHD_DROP_TX_FULL,   /* egress: ring still full after retries */
	VHD_DROP_MAX
};
extern const char *const vhd_drop_names[VHD_DROP_MAX];

/* Per (lcore, port) counters: written by one lcore, summed on read. */
struct vhd_port_stats {
	uint64_t rx_pkts, rx_bytes;
	uint64_t tx_pkts, tx_bytes;
	uint64_t drop[VHD_DROP_MAX];
	uint64_t tx_lock_contended;
};

/* Per (lcore, bridge) counters. */
struct vhd_bridge_stats {
	uint64_t learned, moved, learn_full, flooded;
};

struct vhd_port {
	/* Set before the port is published, then read-only. */
	char name[VHD_NAME_MAX];
	enum vhd_port_type type;
	uint16_t idx;	 /* index in vhd_ports[] */
	uint16_t bridge; /* index in vhd_bridges[] */
	bool client;
	bool started; /* vhost: registered with librte_vhost */
	char path[PATH_MAX];
	uint16_t eth_id; /* ethdev port id */
	uint16_t n_rxq;	 /* rx queues at most (vhost: VHD_MAX_QUEUES) */
	uint16_t n_txq;
	bool txq_shared; /* more lcores than tx queues: lock per burst */

	/* vhost: written by the vhost-events thread, read by lcores. */
	int vid;		 /* -1: no device; else the live device */
	int conn_vid;		 /* the one accepted connection, or -1 */
	uint16_t nr_qp;		 /* queue pairs of the live device */
	uint32_t guest_rxq_mask; /* enabled guest rx vrings (our tx queues) */
	uint64_t connects;	 /* new_device count */
	uint64_t log_tsc;	 /* rate limit for guest-triggered logs */
	unsigned int log_burst;

	rte_spinlock_t txq_lock[VHD_MAX_QUEUES];
} __rte_cache_aligned;

struct vhd_bridge {
	char name[VHD_NAME_MAX];
	uint16_t idx;
	enum vhd_bridge_mode mode;
	uint32_t mac_aging;
	struct vhd_fdb *fdb; /* learning only */
	uint64_t aged;	     /* written by the control thread only */
	/* Flood list: every port of the bridge. */
	uint16_t n_ports;
	uint16_t ports[VHD_MAX_PORTS];
};

/* One port's share of an lcore's polling: rx queues FIRST, FIRST + STRIDE,
 * ... below the number the port has live (vhd_port_nrxq). */
struct vhd_rxq {
	uint16_t port;
	uint16_t first;
	uint16_t stride;
};

struct vhd_rxq_list {
	uint16_t n;
	struct vhd_rxq q[];
};

struct vhd_txbuf {
	uint16_t n;
	struct rte_mbuf *pkts[VHD_BURST];
};

/* Written only by its own lcore (rxq is published by the control side). */
struct vhd_lcore {
	unsigned int lcore_id;
	uint16_t idx; /* 0..vhd_n_lcores-1, also the RCU thread id */
	struct vhd_rxq_list *rxq;
	uint64_t dirty; /* bit per port with a non-empty tx buffer */
	uint64_t loops, busy_loops;
	/* TSC cycles in loop iterations that moved packets, and in empty
	 * ones: the lcore's load, as OVS's pmd-stats-show reports it. */
	uint64_t busy_cycles, idle_cycles;
	struct vhd_port_stats stats[VHD_MAX_PORTS];
	struct vhd_bridge_stats brstats[VHD_MAX_BRIDGES];
	struct vhd_txbuf tx[VHD_MAX_PORTS];
	struct vhd_fdb_memo memo[VHD_MAX_PORTS]; /* by ingress port */
} __rte_cache_aligned;

extern struct vhd_port *vhd_ports[VHD_MAX_PORTS];
extern struct vhd_bridge *vhd_bridges[VHD_MAX_BRIDGES];
extern struct vhd_lcore vhd_lcores[VHD_MAX_DP_LCORES];
extern uint16_t vhd_n_lcores;
extern struct rte_rcu_qsbr *vhd_rcu;
extern struct rte_mempool *vhd_pool;
extern volatile bool vhd_quit;
extern uint32_t vhd_clock; /* seconds since start, kept by the main lcore */

static inline struct vhd_port *vhd_port_get(uint16_t idx)
{
	return __atomic_load_n(&vhd_ports[idx], __ATOMIC_ACQUIRE);
}

static inline struct vhd_bridge *vhd_bridge_get(uint16_t idx)
{
	return __atomic_load_n(&vhd_bridges[idx], __ATOMIC_ACQUIRE);
}

/* What vhd_port_rx learned of a burst in its one pass over the mbufs, for
 * vhd_port_tx when the burst goes out whole and unchanged: its bytes, and
 * whether every mbuf is plain (one segment, one reference, direct, from
 * vhd_pool), so tx needs no second pass to count and free it. */
struct vhd_burst {
	uint64_t bytes;
	bool plain;
};

/* port.c: where a packet enters and leaves the switch. vhd_port_rx returns
 * the burst's frames that have a whole Ethernet header (runts are counted
 * and freed there) and fills *B; the caller owns the frames. vhd_port_tx
 * takes B only for such a burst, else NULL. */
uint16_t vhd_port_rx(struct vhd_lcore *lc, struct vhd_port *p, uint16_t q,
		     struct rte_mbuf **pkts, struct vhd_burst *b);
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
			   : p->nr_qp;
	return p->n_rxq;
}
void vhd_port_stats_sum(uint16_t port, struct vhd_port_stats *out);
bool vhd_log_ratelimit(struct vhd_port *p);

/* port_vhost.c, port_eth.c: lifecycle; control thread only. */
int vhd_vhost_port_start(struct vhd_port *p);
void vhd_vhost_port_stop(struct vhd_port *p);
int vhd_eth_port_start(struct vhd_port *p, const struct vhd_port_conf *pc);
void vhd_eth_port_stop(struct vhd_port *p);
/* The ethdev name of DEVARGS (a canonical PCI address, or the vdev name);
 * true if it is a PCI device. */
bool vhd_eth_dev_name(const char *devargs, char *name, size_t len);

/* bridge.c: where a packet is decided on. */
struct vhd_bridge *vhd_bridge_create(const struct vhd_bridge_conf *bc,
				     uint16_t idx);
void vhd_bridge_free(struct vhd_bridge *br);
void vhd_bridge_input(struct vhd_lcore *lc, struct vhd_bridge *br,
		      uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		      const struct vhd_burst *b);
void vhd_bridge_age(struct vhd_bridge *br);

/* lcore.c: the poll loop and its tx buffers. */
int vhd_lcore_main(void *arg);
int vhd_sched_build(void);
void vhd_sched_free(void);
void vhd_lcore_flush_port(struct vhd_lcore *lc, uint16_t port);

static inline void vhd_tx_buffer(struct vhd_lcore *lc, uint16_t port,
				 struct rte_mbuf *m)
{
	struct vhd_txbuf *tb = &lc->tx[port];

	tb->pkts[tb->n++] = m;
	lc->dirty |= UINT64_C(1) << port;
	if (unlikely(tb->n == VHD_BURST))
		vhd_lcore_flush_port(lc, port);
}

/* stats.c: telemetry commands. */
int vhd_stats_init(void);

#endif
