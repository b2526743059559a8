/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_fdb.c: the forwarding table: learn, look up, move between ports,
 * age, flush, and a full table. Runs the EAL without hugepages.
 */
#include <errno.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "unit.h"
#include "vhd.h"
#include "vhd_fdb.h"

static struct rte_rcu_qsbr *rcu;

static uint64_t key(uint32_t i)
{
	uint8_t m[8] = {0x02,
			0x00,
			(uint8_t)(i >> 24),
			(uint8_t)(i >> 16),
			(uint8_t)(i >> 8),
			(uint8_t)i,
			0xee,
			0xee};

	return vhd_fdb_key(m);
}

static uint16_t lookup1(struct vhd_fdb *f, uint64_t k)
{
	uint16_t port;

	vhd_fdb_lookup(f, &k, 1, &port);
	return port;
}

static void test_key(void)
{
	uint8_t a[8] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x99, 0x99};
	uint8_t b[8] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0x01};
	uint8_t c[8] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x56, 0x99, 0x99};

	/* Bytes past the MAC never change the key; every MAC byte does. */
	EXPECT(vhd_fdb_key(a) == vhd_fdb_key(b), "trailing bytes matter");
	EXPECT(vhd_fdb_key(a) != vhd_fdb_key(c), "last MAC byte ignored");
	EXPECT((vhd_fdb_key(a) >> 48) == 0, "not masked");
}

static void test_learn_lookup(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t k[3] = {key(1), key(2), key(3)};
	uint16_t ports[3];
	uint32_t gen;

	EXPECT(vhd_fdb_create(&f, "t_learn", 1024, rcu) == 0, "create");
	gen = vhd_fdb_gen(&f);
	EXPECT(gen != 0, "a zeroed memo is never current");
	vhd_fdb_learn(&f, k, 2, 5, 0, 100, &st);
	EXPECT(vhd_fdb_gen(&f) != gen, "new MACs change the generation");
	gen = vhd_fdb_gen(&f);
	vhd_fdb_lookup(&f, k, 3, ports);
	EXPECT(ports[0] == 5 && ports[1] == 5, "learned: %u %u", ports[0],
	       ports[1]);
	EXPECT(ports[2] == VHD_PORT_NONE, "unknown MAC: %u", ports[2]);
	EXPECT(st.learned == 2 && st.moved == 0, "learned %lu", st.learned);
	EXPECT(vhd_fdb_count(&f) == 2, "count %u", vhd_fdb_count(&f));
	/* Seeing it again on the same port changes nothing. */
	vhd_fdb_learn(&f, k, 2, 5, 0, 101, &st);
	EXPECT(st.learned == 2 && st.moved == 0, "relearn");
	/* A refresh leaves memos of lookups valid. */
	EXPECT(vhd_fdb_gen(&f) == gen, "gen unchanged by a refresh");
	vhd_fdb_free(&f);
}

/* A new MAC twice in one burst, not next to itself (the bridge skips only
 * adjacent repeats): one entry, counted once for the table and the port. */
static void test_repeat_in_burst(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t k[5] = {key(1), key(2), key(1), key(3), key(2)};

	EXPECT(vhd_fdb_create(&f, "t_repeat", 1024, rcu) == 0, "create");
	vhd_fdb_learn(&f, k, 5, 4, 0, 100, &st);
	EXPECT(vhd_fdb_count(&f) == 3, "count %u", vhd_fdb_count(&f));
	EXPECT(vhd_fdb_port_count(&f, 4) == 3, "port count %u",
	       vhd_fdb_port_count(&f, 4));
	EXPECT(st.learned == 3, "learned %lu", st.learned);
	vhd_fdb_flush(&f, 4, false);
	EXPECT(vhd_fdb_count(&f) == 0 && vhd_fdb_port_count(&f, 4) == 0,
	       "after flush: %u, port %u", vhd_fdb_count(&f),
	       vhd_fdb_port_count(&f, 4));
	vhd_fdb_free(&f);
}

static void test_move(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t k = key(7);
	uint32_t gen;

	EXPECT(vhd_fdb_create(&f, "t_move", 1024, rcu) == 0, "create");
	vhd_fdb_learn(&f, &k, 1, 1, 0, 0, &st);
	EXPECT(lookup1(&f, k) == 1, "on port 1");
	gen = vhd_fdb_gen(&f);
	vhd_fdb_learn(&f, &k, 1, 2, 0, 0, &st);
	EXPECT(lookup1(&f, k) == 2, "moved to port 2");
	EXPECT(vhd_fdb_gen(&f) != gen, "a move changes the generation");
	EXPECT(st.moved == 1 && st.learned == 1, "moved %lu", st.moved);
	EXPECT(vhd_fdb_count(&f) == 1, "still one entry");
	vhd_fdb_free(&f);
}

/* An EVPN entry (a remote MAC from BGP): never aged, not counted for its
 * port; a learn moves it (the MAC came to a local port) and makes it a
 * learned entry, counted and aged from then on; a static one never moves. */
static void test_evpn_kind(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t k = key(11), s = key(12);
	uint16_t port;
	uint8_t kind;

	EXPECT(vhd_fdb_create(&f, "t_evpn", 1024, rcu) == 0, "create");
	EXPECT(vhd_fdb_set(&f, k, 9, VHD_FDB_EVPN) == 0, "set evpn");
	EXPECT(vhd_fdb_get(&f, k, &port, &kind) == 0 && port == 9 &&
		   kind == VHD_FDB_EVPN,
	       "evpn entry: port %u kind %u", port, kind);
	EXPECT(vhd_fdb_port_count(&f, 9) == 0, "evpn counts for no port");
	EXPECT(vhd_fdb_age(&f, 1000, 5) == 0, "evpn never ages");
	EXPECT(vhd_fdb_flush(&f, VHD_PORT_NONE, false) == 0,
	       "flush of learned entries keeps evpn");
	vhd_fdb_learn(&f, &k, 1, 3, 0, 1000, &st);
	EXPECT(lookup1(&f, k) == 3, "a learn moves an evpn entry");
	EXPECT(vhd_fdb_get(&f, k, &port, &kind) == 0 && kind == VHD_FDB_DYNAMIC,
	       "moved: learned now (kind %u)", kind);
	EXPECT(vhd_fdb_port_count(&f, 3) == 1 && vhd_fdb_port_count(&f, 9) == 0,
	       "counted for its new port only");
	EXPECT(st.moved == 1, "a move: %lu", st.moved);
	EXPECT(vhd_fdb_set(&f, k, 9, VHD_FDB_EVPN) == 0 &&
		   vhd_fdb_port_count(&f, 3) == 0,
	       "back to evpn: no longer counted");
	EXPECT(vhd_fdb_set(&f, s, 9, VHD_FDB_STATIC) == 0, "set static");
	vhd_fdb_learn(&f, &s, 1, 3, 0, 1000, &st);
	EXPECT(lookup1(&f, s) == 9, "a static entry does not move");
	EXPECT(vhd_fdb_get(&f, key(13), &port, &kind) == -ENOENT, "absent");
	EXPECT(vhd_fdb_del(&f, k) == 0 && vhd_fdb_count(&f) == 1, "del");
	vhd_fdb_free(&f);
}

static void test_age(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t old = key(1), fresh = key(2);
	uint32_t gen;

	EXPECT(vhd_fdb_create(&f, "t_age", 1024, rcu) == 0, "create");
	vhd_fdb_learn(&f, &old, 1, 1, 0, 10, &st);
	vhd_fdb_learn(&f, &fresh, 1, 2, 0, 10, &st);
	vhd_fdb_learn(&f, &fresh, 1, 2, 0, 18, &st); /* refreshed */
	gen = vhd_fdb_gen(&f);
	EXPECT(vhd_fdb_age(&f, 19, 0) == 0, "aging 0 never ages");
	EXPECT(vhd_fdb_gen(&f) == gen, "nothing aged, same generation");
	EXPECT(vhd_fdb_age(&f, 19, 5) == 1, "one aged");
	EXPECT(vhd_fdb_gen(&f) != gen, "a removal changes the generation");
	EXPECT(lookup1(&f, old) == VHD_PORT_NONE, "old entry gone");
	EXPECT(lookup1(&f, fresh) == 2, "fresh entry kept");
	EXPECT(vhd_fdb_count(&f) == 1, "count %u", vhd_fdb_count(&f));
	/* Relearned after aging. */
	vhd_fdb_learn(&f, &old, 1, 3, 0, 20, &st);
	EXPECT(lookup1(&f, old) == 3, "relearned");
	vhd_fdb_free(&f);
}

static void test_flush(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t k[4] = {key(1), key(2), key(3), key(4)};

	EXPECT(vhd_fdb_create(&f, "t_flush", 1024, rcu) == 0, "create");
	vhd_fdb_learn(&f, k, 2, 1, 0, 0, &st);
	vhd_fdb_learn(&f, k + 2, 2, 2, 0, 0, &st);
	EXPECT(vhd_fdb_flush(&f, 1, true) == 2, "flushed port 1");
	EXPECT(lookup1(&f, k[0]) == VHD_PORT_NONE && lookup1(&f, k[2]) == 2,
	       "only port 1's entries");
	EXPECT(vhd_fdb_flush(&f, VHD_PORT_NONE, true) == 2, "flushed all");
	EXPECT(vhd_fdb_count(&f) == 0, "empty");
	vhd_fdb_free(&f);
}

static void test_full(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint32_t i, found = 0;

	EXPECT(vhd_fdb_create(&f, "t_full", 64, rcu) == 0, "create");
	for (i = 0; i < 100; i++) {
		uint64_t k = key(i);

		vhd_fdb_learn(&f, &k, 1, (uint16_t)(i % 4), 0, 0, &st);
	}
	EXPECT(vhd_fdb_count(&f) == 64, "count %u", vhd_fdb_count(&f));
	EXPECT(st.learned == 64 && st.learn_full == 36, "learned %lu full %lu",
	       st.learned, st.learn_full);
	for (i = 0; i < 100; i++)
		found += lookup1(&f, key(i)) == i % 4;
	EXPECT(found == 64, "%u learned entries point at their port", found);
	/* Aging makes room again (slots come back after a grace period). */
	EXPECT(vhd_fdb_age(&f, 1000, 300) == 64, "all aged");
	for (i = 200; i < 264; i++) {
		uint64_t k = key(i);

		vhd_fdb_learn(&f, &k, 1, 1, 0, 1000, &st);
	}
	EXPECT(vhd_fdb_count(&f) == 64, "refilled: %u", vhd_fdb_count(&f));
	EXPECT(lookup1(&f, key(263)) == 1, "new entry after aging");
	vhd_fdb_free(&f);
}

/* mac-learn-limit: a port owns at most LIMIT dynamic entries; moves,
 * aging, flushes, deletes and static entries keep the count exact. */
static void test_port_limit(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint32_t i;

	EXPECT(vhd_fdb_create(&f, "t_limit", 1024, rcu) == 0, "create");
	for (i = 0; i < 10; i++) {
		uint64_t k = key(i);

		vhd_fdb_learn(&f, &k, 1, 1, 4, 0, &st);
	}
	EXPECT(vhd_fdb_port_count(&f, 1) == 4 && st.learn_limited == 6,
	       "port 1 owns %u, limited %lu", vhd_fdb_port_count(&f, 1),
	       st.learn_limited);
	EXPECT(lookup1(&f, key(3)) == 1 && lookup1(&f, key(4)) == VHD_PORT_NONE,
	       "the first 4 learned, the rest not");
	/* Moving one to port 2 frees room on port 1. */
	{
		uint64_t k = key(0);

		vhd_fdb_learn(&f, &k, 1, 2, 4, 1, &st);
		k = key(5);
		vhd_fdb_learn(&f, &k, 1, 1, 4, 1, &st);
	}
	EXPECT(vhd_fdb_port_count(&f, 1) == 4 &&
		   vhd_fdb_port_count(&f, 2) == 1 && lookup1(&f, key(5)) == 1,
	       "after a move: port 1 %u, port 2 %u", vhd_fdb_port_count(&f, 1),
	       vhd_fdb_port_count(&f, 2));
	/* A limited port cannot take a MAC from another: it stays. */
	{
		uint64_t k = key(0);

		vhd_fdb_learn(&f, &k, 1, 1, 4, 2, &st);
	}
	EXPECT(lookup1(&f, key(0)) == 2, "a full port does not take a MAC");
	/* Static entries do not count; delete and flush give room back. */
	EXPECT(vhd_fdb_add_static(&f, key(5), 1) == 0, "static");
	EXPECT(vhd_fdb_port_count(&f, 1) == 3, "static does not count: %u",
	       vhd_fdb_port_count(&f, 1));
	EXPECT(vhd_fdb_del(&f, key(5)) == 0 && vhd_fdb_port_count(&f, 1) == 3,
	       "deleting a static entry: %u", vhd_fdb_port_count(&f, 1));
	EXPECT(vhd_fdb_del(&f, key(1)) == 0 && vhd_fdb_port_count(&f, 1) == 2,
	       "deleting a dynamic one: %u", vhd_fdb_port_count(&f, 1));
	EXPECT(vhd_fdb_flush(&f, 1, false) == 2 &&
		   vhd_fdb_port_count(&f, 1) == 0,
	       "flushed: %u", vhd_fdb_port_count(&f, 1));
	EXPECT(vhd_fdb_age(&f, 1000, 300) == 1 &&
		   vhd_fdb_port_count(&f, 2) == 0,
	       "aged: %u", vhd_fdb_port_count(&f, 2));
	vhd_fdb_free(&f);
}

static void test_bulk_mixed(void)
{
	struct vhd_fdb f;
	struct vhd_bridge_stats st = {0};
	uint64_t k[64];
	uint16_t ports[64];

	EXPECT(vhd_fdb_create(&f, "t_bulk", 4096, rcu) == 0, "create");
	for (uint32_t i = 0; i < 64; i++)
		k[i] = key(i * 3);
	vhd_fdb_learn(&f, k, 32, 9, 0, 0, &st); /* the first half only */
	vhd_fdb_lookup(&f, k, 64, ports);
	for (uint32_t i = 0; i < 64; i++)
		EXPECT(ports[i] == (i < 32 ? 9 : VHD_PORT_NONE), "entry %u: %u",
		       i, ports[i]);
	vhd_fdb_free(&f);
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0],
		       "--no-huge",
		       "-m",
		       "64",
		       "--no-pci",
		       "--no-shconf",
		       "--file-prefix=vhd-test-fdb",
		       "--no-telemetry",
		       "--log-level=6",
		       "-l",
		       "0",
		       NULL};

	RTE_SET_USED(argc);
	if (rte_eal_init(RTE_DIM(eal) - 1, eal) < 0) {
		printf("EAL init failed\n");
		return 2;
	}
	rcu = rte_zmalloc(NULL, rte_rcu_qsbr_get_memsize(1), 64);
	rte_rcu_qsbr_init(rcu, 1);
	UNIT_CASE(test_key);
	UNIT_CASE(test_learn_lookup);
	UNIT_CASE(test_repeat_in_burst);
	UNIT_CASE(test_move);
	UNIT_CASE(test_evpn_kind);
	UNIT_CASE(test_age);
	UNIT_CASE(test_flush);
	UNIT_CASE(test_full);
	UNIT_CASE(test_bulk_mixed);
	UNIT_CASE(test_port_limit);
	rte_free(rcu);
	rte_eal_cleanup();
	/* --no-shconf still makes a runtime dir: leave nothing behind. */
	rmdir("/var/run/dpdk/vhd-test-fdb");
	return unit_done();
}
