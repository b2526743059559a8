/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_fdb.h: a bridge's forwarding table (MAC -> port).
 *
 * Built on rte_hash with lock-free readers and RCU-deferred slot reuse
 * (rte_hash_rcu_qsbr_add). Any datapath lcore may learn (hash adds take the
 * hash's writer lock, but only for a MAC not seen before); the control
 * thread ages. Per-entry data lives in an array indexed by the hash
 * position, so refreshing an entry is one plain store, made only when the
 * second changes. A freed slot's port is VHD_PORT_NONE, so a reader that
 * races with a new add sees "unknown" and floods, never a stale port.
 * Static entries (fdb/add) are never aged and never moved by learning;
 * EVPN ones are never aged (see VHD_FDB_EVPN).
 */
#ifndef VHD_FDB_H
#define VHD_FDB_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_rcu_qsbr.h>

struct vhd_bridge_stats;

struct vhd_fdb_entry {
	uint64_t key;  /* MAC in the low 48 bits (as read from the frame) */
	uint32_t seen; /* vhd_clock second of the last frame from it */
	uint16_t port;
	uint8_t is_static; /* VHD_FDB_*: written by the control thread */
	uint8_t pad;
};

/* An entry's kind (is_static): learned (ages, moves with its MAC), static
 * (fdb/add: never ages, never moves), or from BGP EVPN (never ages; a frame
 * from a port that learns moves it: the MAC moved here, and ctl/evpn.c
 * advertises it). */
#define VHD_FDB_DYNAMIC 0
#define VHD_FDB_STATIC	1
#define VHD_FDB_EVPN	2

struct vhd_fdb {
	struct rte_hash *h;
	struct vhd_fdb_entry *ent;
	uint32_t n_ent; /* size of ent[]: every position rte_hash can return */
	uint32_t cap;	/* cap on learned entries */
	/* Live entries. rte_hash_count() also counts deleted keys whose
	 * slots wait for an RCU grace period. Changed (atomically) only when
	 * a MAC is added or removed, never per frame. */
	uint32_t n_live;
	/* Dynamic entries per port (index: port), for mac-learn-limit;
	 * changed with the entry's port, never per frame. */
	uint32_t *port_live;
	/* Generation: bumped whenever a MAC is added, moves to another port
	 * or is removed (never per frame: a refresh leaves it), on its own
	 * cache line since every burst reads it. */
	uint32_t gen __rte_cache_aligned;
};

/* What an lcore remembers of its last burst from one port: exact while the
 * FDB and its generation are the ones it was made under (bridge.c). */
struct vhd_fdb_memo {
	const struct vhd_fdb *fdb;
	uint32_t gen;
	uint32_t src_seen; /* second SRC was last learned in */
	uint64_t src;	   /* last learned source */
	uint64_t dst;	   /* last looked-up destination, */
	uint16_t dst_port; /* and its port (VHD_PORT_NONE: unknown) */
};

/* Never the key of a MAC (keys have 48 bits). */
#define VHD_FDB_KEY_NONE UINT64_MAX

static inline uint32_t vhd_fdb_gen(const struct vhd_fdb *f)
{
	return __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE);
}

/* Key of a MAC stored at P (6 bytes; reads 8, so P+8 must be readable). */
static inline uint64_t vhd_fdb_key(const void *p)
{
	uint64_t k;

	__builtin_memcpy(&k, p, sizeof(k));
	return k & UINT64_C(0xffffffffffff);
}

int vhd_fdb_create(struct vhd_fdb *f, const char *name, uint32_t cap,
		   struct rte_rcu_qsbr *rcu);
void vhd_fdb_free(struct vhd_fdb *f);

/* Learn that KEYS[0..n) (distinct unicast MACs) are behind PORT, which may
 * own at most LIMIT dynamic entries (0: no limit; a MAC beyond it is not
 * learned, or stays where it was, and counts learn_limited). */
void vhd_fdb_learn(struct vhd_fdb *f, const uint64_t *keys, uint32_t n,
		   uint16_t port, uint32_t limit, uint32_t now,
		   struct vhd_bridge_stats *st);

/* Dynamic entries of PORT. */
static inline uint32_t vhd_fdb_port_count(const struct vhd_fdb *f,
					  uint16_t port)
{
	return __atomic_load_n(&f->port_live[port], __ATOMIC_RELAXED);
}

/* Ports of KEYS[0..n) (at most RTE_HASH_LOOKUP_BULK_MAX), VHD_PORT_NONE for
 * unknown. */
void vhd_fdb_lookup(const struct vhd_fdb *f, const uint64_t *keys, uint32_t n,
		    uint16_t *ports);

/* Remove entries older than AGING seconds at NOW; returns how many. Control
 * thread only. */
uint32_t vhd_fdb_age(struct vhd_fdb *f, uint32_t now, uint32_t aging);

/* Remove every entry of PORT (VHD_PORT_NONE: of every port), the static
 * ones too if STATICS; returns how many. Control thread only. */
uint32_t vhd_fdb_flush(struct vhd_fdb *f, uint16_t port, bool statics);

/* An entry KEY -> PORT of KIND (VHD_FDB_STATIC or VHD_FDB_EVPN; an
 * existing entry becomes one): 0, or -ENOSPC when the table is full.
 * Control thread only. */
int vhd_fdb_set(struct vhd_fdb *f, uint64_t key, uint16_t port, uint8_t kind);

static inline int vhd_fdb_add_static(struct vhd_fdb *f, uint64_t key,
				     uint16_t port)
{
	return vhd_fdb_set(f, key, port, VHD_FDB_STATIC);
}

/* KEY's port and kind: 0, or -ENOENT. Control thread only. */
int vhd_fdb_get(const struct vhd_fdb *f, uint64_t key, uint16_t *port,
		uint8_t *kind);

/* Remove KEY's entry: 0, or -ENOENT. Control thread only. */
int vhd_fdb_del(struct vhd_fdb *f, uint64_t key);

uint32_t vhd_fdb_count(const struct vhd_fdb *f);

#endif
