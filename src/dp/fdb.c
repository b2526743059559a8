/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/fdb.c: the MAC table of a learning bridge on rte_hash (see vhd_fdb.h).
 */
#include <errno.h>
#include <string.h>

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "vhd.h"
#include "vhd_fdb.h"

int vhd_fdb_create(struct vhd_fdb *f, const char *name, uint32_t cap,
		   struct rte_rcu_qsbr *rcu)
{
	struct rte_hash_parameters hp = {
	    .name = name,
	    .entries = cap,
	    .key_len = sizeof(uint64_t),
	    .hash_func = rte_hash_crc,
	    .socket_id = (int)rte_socket_id(),
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD |
			  RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
			  RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	struct rte_hash_rcu_config rc = {
	    .v = rcu,
	    .mode = RTE_HASH_QSBR_MODE_DQ,
	};

	static uint32_t gens;

	memset(f, 0, sizeof(*f));
	f->cap = cap;
	/* Each table starts its generations far from any other's: an lcore's
	 * memo of a freed table whose memory a new one reuses is never
	 * current (and a zeroed memo never is). */
	gens += 1u << 20;
	f->gen = gens | 1;
	/* With multi-writer adds, per-lcore slot caches make positions
	 * reach past ENTRIES (rte_cuckoo_hash.c sizes its key store so). */
	f->n_ent = cap + RTE_MAX_LCORE * 64;
	f->h = rte_hash_create(&hp);
	if (f->h == NULL)
		return -rte_errno;
	f->ent =
	    rte_zmalloc(name, sizeof(*f->ent) * f->n_ent, RTE_CACHE_LINE_SIZE);
	if (f->ent == NULL) {
		rte_hash_free(f->h);
		return -ENOMEM;
	}
	f->port_live = rte_zmalloc(name, sizeof(*f->port_live) * VHD_MAX_PORTS,
				   RTE_CACHE_LINE_SIZE);
	if (f->port_live == NULL) {
		rte_free(f->ent);
		rte_hash_free(f->h);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < f->n_ent; i++)
		f->ent[i].port = VHD_PORT_NONE;
	if (rcu != NULL && rte_hash_rcu_qsbr_add(f->h, &rc) != 0) {
		int rc_err = -rte_errno;

		vhd_fdb_free(f);
		return rc_err;
	}
	return 0;
}

void vhd_fdb_free(struct vhd_fdb *f)
{
	rte_hash_free(f->h);
	rte_free(f->ent);
	rte_free(f->port_live);
	memset(f, 0, sizeof(*f));
}

/* Hash positions of KEYS[0..n) (negative: absent), in one bulk lookup. */
static inline void positions(const struct vhd_fdb *f, const uint64_t *keys,
			     uint32_t n, const void **kp, int32_t *pos)
{
	for (uint32_t i = 0; i < n; i++)
		kp[i] = &keys[i];
	rte_hash_lookup_bulk(f->h, kp, n, pos);
}

/* One more dynamic entry for PORT, unless that passes LIMIT (0: none). */
static inline bool port_take(struct vhd_fdb *f, uint16_t port, uint32_t limit)
{
	if (__atomic_add_fetch(&f->port_live[port], 1, __ATOMIC_RELAXED) >
		limit &&
	    limit) {
		__atomic_sub_fetch(&f->port_live[port], 1, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

static inline void port_give(struct vhd_fdb *f, uint16_t port)
{
	if (port != VHD_PORT_NONE)
		__atomic_sub_fetch(&f->port_live[port], 1, __ATOMIC_RELAXED);
}

void vhd_fdb_learn(struct vhd_fdb *f, const uint64_t *keys, uint32_t n,
		   uint16_t port, uint32_t limit, uint32_t now,
		   struct vhd_bridge_stats *st)
{
	const void *kp[RTE_HASH_LOOKUP_BULK_MAX];
	int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];

	positions(f, keys, n, kp, pos);
	for (uint32_t i = 0; i < n; i++) {
		struct vhd_fdb_entry *e;

		if (likely(pos[i] >= 0)) {
			e = &f->ent[pos[i]];
			if (unlikely(__atomic_load_n(
					 &e->key, __ATOMIC_ACQUIRE) != keys[i]))
				continue; /* slot being reused: next time */
			/* Written only when changed: no cache line
			 * bouncing between lcores in the steady state. */
			if (unlikely(e->seen != now))
				e->seen = now;
			if (unlikely(e->port != port)) {
				uint16_t was = e->port;
				uint8_t kind = e->is_static;

				if (kind == VHD_FDB_STATIC)
					continue;
				if (!port_take(f, port, limit)) {
					st->learn_limited++;
					continue;
				}
				/* Another lcore or the control thread may
				 * change it meanwhile: the one that changes
				 * it gives back the count of what it saw. */
				if (!__atomic_compare_exchange_n(
					&e->port, &was, port, false,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
					port_give(f, port);
					continue;
				}
				/* An EVPN entry counted for no port; the MAC
				 * moved here, the entry is learned now. */
				if (kind == VHD_FDB_EVPN)
					e->is_static = VHD_FDB_DYNAMIC;
				else
					port_give(f, was);
				if (was != VHD_PORT_NONE) {
					st->moved++;
					__atomic_add_fetch(&f->gen, 1,
							   __ATOMIC_RELEASE);
				}
			}
			continue;
		}
		if (!port_take(f, port, limit)) {
			st->learn_limited++;
			continue;
		}
		if (__atomic_add_fetch(&f->n_live, 1, __ATOMIC_RELAXED) >
		    f->cap) {
			__atomic_sub_fetch(&f->n_live, 1, __ATOMIC_RELAXED);
			port_give(f, port);
			st->learn_full++;
			continue;
		}
		pos[i] = rte_hash_add_key(f->h, kp[i]);
		if (pos[i] < 0) {
			__atomic_sub_fetch(&f->n_live, 1, __ATOMIC_RELAXED);
			port_give(f, port);
			st->learn_full++;
			continue;
		}
		/* Port before key: a reader that sees the new key (acquire)
		 * sees its port too. A new MAC twice in one burst (not next
		 * to itself), or from two lcores at once, is added twice and
		 * the second add finds the entry the first made, its port set:
		 * counted once. */
		e = &f->ent[pos[i]];
		{
			uint16_t none = VHD_PORT_NONE;

			if (!__atomic_compare_exchange_n(
				&e->port, &none, port, false, __ATOMIC_RELAXED,
				__ATOMIC_RELAXED)) {
				__atomic_sub_fetch(&f->n_live, 1,
						   __ATOMIC_RELAXED);
				port_give(f, port);
				continue;
			}
		}
		e->seen = now;
		e->is_static = 0;
		__atomic_store_n(&e->key, keys[i], __ATOMIC_RELEASE);
		__atomic_add_fetch(&f->gen, 1, __ATOMIC_RELEASE);
		st->learned++;
	}
}

void vhd_fdb_lookup(const struct vhd_fdb *f, const uint64_t *keys, uint32_t n,
		    uint16_t *ports)
{
	const void *kp[RTE_HASH_LOOKUP_BULK_MAX];
	int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];

	positions(f, keys, n, kp, pos);
	for (uint32_t i = 0; i < n; i++) {
		const struct vhd_fdb_entry *e =
		    &f->ent[pos[i] >= 0 ? pos[i] : 0];

		/* A slot just reused for another MAC may still hold the old
		 * key: that reads as unknown (flood), never as a stale port. */
		ports[i] =
		    pos[i] >= 0 && __atomic_load_n(&e->key, __ATOMIC_ACQUIRE) ==
				       keys[i]
			? __atomic_load_n(&e->port, __ATOMIC_RELAXED)
			: VHD_PORT_NONE;
	}
}

/* Delete one entry; its slot reads "unknown" until reused. A learner may
 * refresh the port between the two stores; readers also check the key. */
static void fdb_del(struct vhd_fdb *f, struct vhd_fdb_entry *e)
{
	bool dynamic = !e->is_static;
	uint16_t was;

	was = __atomic_exchange_n(&e->port, VHD_PORT_NONE, __ATOMIC_RELEASE);
	if (dynamic)
		port_give(f, was);
	if (rte_hash_del_key(f->h, &e->key) >= 0)
		__atomic_sub_fetch(&f->n_live, 1, __ATOMIC_RELAXED);
	was = __atomic_exchange_n(&e->port, VHD_PORT_NONE, __ATOMIC_RELEASE);
	if (dynamic)
		port_give(f, was);
	e->is_static = 0;
	__atomic_add_fetch(&f->gen, 1, __ATOMIC_RELEASE);
}

int vhd_fdb_set(struct vhd_fdb *f, uint64_t key, uint16_t port, uint8_t kind)
{
	int32_t pos = rte_hash_lookup(f->h, &key);
	struct vhd_fdb_entry *e;

	if (pos < 0) {
		if (__atomic_add_fetch(&f->n_live, 1, __ATOMIC_RELAXED) >
		    f->cap) {
			__atomic_sub_fetch(&f->n_live, 1, __ATOMIC_RELAXED);
			return -ENOSPC;
		}
		pos = rte_hash_add_key(f->h, &key);
		if (pos < 0) {
			__atomic_sub_fetch(&f->n_live, 1, __ATOMIC_RELAXED);
			return -ENOSPC;
		}
	}
	/* Static first: a learner that sees the new port leaves it. */
	e = &f->ent[pos];
	if (e->is_static) {
		e->is_static = kind;
		__atomic_store_n(&e->port, port, __ATOMIC_RELEASE);
	} else {
		e->is_static = kind;
		/* A dynamic entry made static no longer counts for its
		 * port (a learner may still move it once: give back what
		 * the exchange saw). */
		port_give(
		    f, __atomic_exchange_n(&e->port, port, __ATOMIC_RELEASE));
	}
	e->seen = 0;
	__atomic_store_n(&e->key, key, __ATOMIC_RELEASE);
	__atomic_add_fetch(&f->gen, 1, __ATOMIC_RELEASE);
	return 0;
}

int vhd_fdb_get(const struct vhd_fdb *f, uint64_t key, uint16_t *port,
		uint8_t *kind)
{
	int32_t pos = rte_hash_lookup(f->h, &key);

	if (pos < 0 || f->ent[pos].port == VHD_PORT_NONE)
		return -ENOENT;
	*port = f->ent[pos].port;
	*kind = f->ent[pos].is_static;
	return 0;
}

int vhd_fdb_del(struct vhd_fdb *f, uint64_t key)
{
	int32_t pos = rte_hash_lookup(f->h, &key);

	if (pos < 0 || f->ent[pos].port == VHD_PORT_NONE)
		return -ENOENT;
	fdb_del(f, &f->ent[pos]);
	return 0;
}

uint32_t vhd_fdb_age(struct vhd_fdb *f, uint32_t now, uint32_t aging)
{
	uint32_t n = 0;

	if (aging == 0)
		return 0;
	for (uint32_t i = 0; i < f->n_ent; i++) {
		struct vhd_fdb_entry *e = &f->ent[i];

		if (e->port != VHD_PORT_NONE && !e->is_static &&
		    now - e->seen >= aging) {
			fdb_del(f, e);
			n++;
		}
	}
	return n;
}

uint32_t vhd_fdb_flush(struct vhd_fdb *f, uint16_t port, bool statics)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < f->n_ent; i++) {
		struct vhd_fdb_entry *e = &f->ent[i];

		if (e->port != VHD_PORT_NONE && (statics || !e->is_static) &&
		    (port == VHD_PORT_NONE || e->port == port)) {
			fdb_del(f, e);
			n++;
		}
	}
	return n;
}

uint32_t vhd_fdb_count(const struct vhd_fdb *f)
{
	return __atomic_load_n(&f->n_live, __ATOMIC_RELAXED);
}
