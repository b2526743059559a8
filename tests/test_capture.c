/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_capture.c: dp/capture.c without a switch: bursts copied, the pcapng
 * file it writes read back block by block (one interface named after the
 * port, EPBs byte for byte with direction flags and wall-clock times, the
 * statistics block), count and duration limits, stop, drops when nobody
 * drains, and the file refusals. Runs the EAL without hugepages.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "unit.h"
#include "vhd.h"
#include "vhd_capture.h"

struct rte_rcu_qsbr *vhd_rcu; /* no thread registered: grace is immediate */

static struct rte_mempool *src;
static struct vhd_port port;
static char dir[64];

static struct done {
	int calls;
	uint64_t packets, dropped;
	char error[256];
} done;

static void on_done(void *arg, uint64_t packets, uint64_t dropped,
		    const char *error)
{
	struct done *d = arg;

	d->calls++;
	d->packets = packets;
	d->dropped = dropped;
	snprintf(d->error, sizeof(d->error), "%s", error ? error : "");
}

static uint8_t pattern(uint32_t len, uint32_t i)
{
	return (uint8_t)(len * 31 + i * 7);
}

/* A frame of LEN bytes, in segments of at most SEG bytes. */
static struct rte_mbuf *mkframe(uint32_t len, uint32_t seg)
{
	struct rte_mbuf *head = NULL;
	uint32_t off = 0;

	while (off < len) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(src);
		uint32_t n = RTE_MIN(seg, len - off);
		uint8_t *d;

		if (m == NULL)
			return NULL;
		d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)n);
		for (uint32_t i = 0; i < n; i++)
			d[i] = pattern(len, off + i);
		off += n;
		if (head == NULL)
			head = m;
		else
			rte_pktmbuf_chain(head, m);
	}
	return head;
}

/* ------------------------------------------------------- reading a file */

struct pkt {
	uint32_t iface, caplen, origlen, flags;
	uint64_t ts;
	const uint8_t *data;
};

struct file {
	uint8_t *buf;
	size_t len;
	int shb, idb, isb, bad;
	char ifname[64];
	int tsresol;
	uint16_t linktype;
	uint64_t isb_drop, isb_deliv;
	int n;
	struct pkt pkt[64];
};

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* The options from P to END of a block of TYPE that this test looks at. */
static void options(struct file *f, const uint8_t *p, const uint8_t *end,
		    uint32_t type, struct pkt *pk)
{
	while (p + 4 <= end) {
		uint16_t code, len;

		memcpy(&code, p, 2);
		memcpy(&len, p + 2, 2);
		p += 4;
		if (code == 0)
			return;
		if (p + len > end) {
			f->bad++;
			return;
		}
		if (type == 1 && code == 2 && len < sizeof(f->ifname))
			memcpy(f->ifname, p, len);
		if (type == 1 && code == 9 && len == 1)
			f->tsresol = p[0];
		if (type == 6 && code == 2 && len == 4)
			pk->flags = rd32(p);
		if (type == 5 && code == 5 && len == 8)
			f->isb_drop = rd64(p);
		if (type == 5 && code == 8 && len == 8)
			f->isb_deliv = rd64(p);
		p += (len + 3u) & ~3u;
	}
}

static void parse(struct file *f, const char *path)
{
	FILE *fp = fopen(path, "rb");
	size_t off = 0;

	memset(f, 0, sizeof(*f));
	f->tsresol = -1;
	if (fp == NULL) {
		f->bad++;
		return;
	}
	f->buf = malloc(1 << 20);
	f->len = fread(f->buf, 1, 1 << 20, fp);
	fclose(fp);
	while (off + 12 <= f->len) {
		const uint8_t *b = f->buf + off;
		uint32_t type = rd32(b), len = rd32(b + 4);

		if (len < 12 || len % 4 || off + len > f->len ||
		    rd32(b + len - 4) != len) {
			f->bad++;
			return;
		}
		if (type == 0x0A0D0D0A) {
			f->shb++;
			if (rd32(b + 8) != 0x1A2B3C4D)
				f->bad++;
			options(f, b + 24, b + len - 4, type, NULL);
		} else if (type == 1) {
			f->idb++;
			memcpy(&f->linktype, b + 8, 2);
			options(f, b + 16, b + len - 4, type, NULL);
		} else if (type == 6 && f->n < 64) {
			struct pkt *pk = &f->pkt[f->n++];

			pk->iface = rd32(b + 8);
			pk->ts = (uint64_t)rd32(b + 12) << 32 | rd32(b + 16);
			pk->caplen = rd32(b + 20);
			pk->origlen = rd32(b + 24);
			pk->data = b + 28;
			options(f, b + 28 + ((pk->caplen + 3u) & ~3u),
				b + len - 4, type, pk);
		} else if (type == 5) {
			f->isb++;
			options(f, b + 20, b + len - 4, type, NULL);
		}
		off += len;
	}
	if (off != f->len)
		f->bad++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static bool frame_ok(const struct pkt *pk, uint32_t len)
{
	if (pk->caplen != len || pk->origlen != len)
		return false;
	for (uint32_t i = 0; i < len; i++)
		if (pk->data[i] != pattern(len, i))
			return false;
	return true;
}

/* Send LENS as one burst of DIR on lcore LC; the frames stay ours. */
static void burst(uint16_t lc, const uint32_t *lens, uint16_t n,
		  enum vhd_cap_dir d)
{
	struct rte_mbuf *m[16];

	for (uint16_t i = 0; i < n; i++)
		m[i] = mkframe(lens[i], 1500);
	vhd_capture_burst(port.cap, lc, m, n, d, 3);
	rte_pktmbuf_free_bulk(m, n);
}

/* ------------------------------------------------------------- the cases */

static void test_file(void)
{
	/* 2040 and 4090 bytes: lengths rte_pcapng_copy cannot put in
	 * 2048-byte segments (the second pool takes them). */
	const uint32_t rx[] = {60, 1514, 2040, 9000};
	const uint32_t tx[] = {64, 4090, 61, 100};
	char file[128], err[256];
	uint64_t t0 = now_ns();
	struct file f;
	int rc;

	snprintf(file, sizeof(file), "%s/a.pcapng", dir);
	memset(&done, 0, sizeof(done));
	rc = vhd_capture_start(&port, file, VHD_CAP_RX | VHD_CAP_TX, 7, 0,
			       on_done, &done, err, sizeof(err));
	EXPECT(rc == 0 && port.cap != NULL, "start: %d %s", rc, err);
	EXPECT(vhd_capture_active(), "not active");
	burst(0, rx, 4, VHD_CAP_RX);
	burst(1, tx, 4, VHD_CAP_TX); /* lcore 1: its own limit of 7 */
	vhd_capture_poll();
	EXPECT(done.calls == 1 && done.packets == 7 && done.dropped == 0 &&
		   done.error[0] == '\0',
	       "done: %d calls, %lu packets, %lu dropped, '%s'", done.calls,
	       done.packets, done.dropped, done.error);
	EXPECT(port.cap == NULL && !vhd_capture_active(), "still running");
	EXPECT(rte_mempool_lookup("vhd_cap0") == NULL, "pool not freed");

	parse(&f, file);
	EXPECT(!f.bad && f.shb == 1 && f.idb == 1 && f.isb == 1,
	       "blocks: bad %d shb %d idb %d isb %d", f.bad, f.shb, f.idb,
	       f.isb);
	EXPECT(!strcmp(f.ifname, "vm1") && f.tsresol == 9 && f.linktype == 1,
	       "interface '%s' tsresol %d link %u", f.ifname, f.tsresol,
	       f.linktype);
	EXPECT(f.n == 7, "%d packets", f.n);
	for (int i = 0; i < f.n && i < 7; i++) {
		uint32_t len = i < 4 ? rx[i] : tx[i - 4];

		EXPECT(frame_ok(&f.pkt[i], len), "packet %d differs", i);
		EXPECT(f.pkt[i].iface == 0, "packet %d interface %u", i,
		       f.pkt[i].iface);
		EXPECT(f.pkt[i].flags == (i < 4 ? 1u : 2u),
		       "packet %d flags %u", i, f.pkt[i].flags);
		EXPECT(f.pkt[i].ts >= t0 - 1000000 &&
			   f.pkt[i].ts <= now_ns() + 1000000,
		       "packet %d time %lu, not %lu..now", i, f.pkt[i].ts, t0);
	}
	EXPECT(f.isb_drop == 0 && f.isb_deliv == 7, "isb drop %lu deliv %lu",
	       f.isb_drop, f.isb_deliv);
	free(f.buf);
	if (access("/usr/bin/tcpdump", X_OK) == 0) {
		char cmd[256];

		snprintf(
		    cmd, sizeof(cmd),
		    "test $(tcpdump -n -r %s 2>/dev/null | grep -c '^[0-9]')"
		    " = 7",
		    file);
		EXPECT(system(cmd) == 0, "tcpdump does not read 7 packets");
	}
}

static void test_dir_and_stop(void)
{
	const uint32_t lens[] = {70, 80, 90};
	char file[128], err[256];
	struct file f;

	snprintf(file, sizeof(file), "%s/b.pcapng", dir);
	memset(&done, 0, sizeof(done));
	EXPECT(vhd_capture_start(&port, file, VHD_CAP_TX, 0, 0, on_done, &done,
				 err, sizeof(err)) == 0,
	       "start: %s", err);
	burst(0, lens, 3, VHD_CAP_RX); /* not wanted */
	burst(0, lens, 3, VHD_CAP_TX);
	vhd_capture_poll();
	EXPECT(done.calls == 0 && port.cap != NULL, "ended without limit");
	vhd_capture_stop(&port, false);
	EXPECT(done.calls == 0 && port.cap == NULL, "stop: %d calls",
	       done.calls);
	vhd_capture_stop(&port, true); /* none: no-op */
	parse(&f, file);
	EXPECT(!f.bad && f.n == 3 && f.pkt[0].flags == 2 &&
		   frame_ok(&f.pkt[2], 90),
	       "bad %d, %d packets", f.bad, f.n);
	free(f.buf);
}

static void test_duration(void)
{
	char file[128], err[256];
	struct timespec ts = {0, 10 * 1000 * 1000};
	uint64_t t0 = now_ns();

	snprintf(file, sizeof(file), "%s/c.pcapng", dir);
	memset(&done, 0, sizeof(done));
	EXPECT(vhd_capture_start(&port, file, VHD_CAP_RX, 0, 1, on_done, &done,
				 err, sizeof(err)) == 0,
	       "start: %s", err);
	while (done.calls == 0 && now_ns() - t0 < 3000000000ull) {
		vhd_capture_poll();
		nanosleep(&ts, NULL);
	}
	EXPECT(done.calls == 1 && done.packets == 0, "done %d", done.calls);
	EXPECT(now_ns() - t0 >= 990000000ull && now_ns() - t0 < 2000000000ull,
	       "ended after %lu ns", now_ns() - t0);
}

/* Nobody drains: the ring fills, the rest are dropped and counted. */
static void test_drops(void)
{
	char file[128], err[256];
	struct rte_mbuf *m[32];
	struct file f;

	snprintf(file, sizeof(file), "%s/d.pcapng", dir);
	memset(&done, 0, sizeof(done));
	EXPECT(vhd_capture_start(&port, file, VHD_CAP_RX, 0, 0, on_done, &done,
				 err, sizeof(err)) == 0,
	       "start: %s", err);
	for (int i = 0; i < 32; i++)
		m[i] = mkframe(60, 60);
	for (int i = 0; i < 5000 / 32; i++)
		vhd_capture_burst(port.cap, 2, m, 32, VHD_CAP_RX, 0);
	rte_pktmbuf_free_bulk(m, 32);
	vhd_capture_stop(&port, true);
	EXPECT(done.calls == 1 && done.packets == 4095 &&
		   done.dropped == 156 * 32 - 4095,
	       "%lu packets, %lu dropped", done.packets, done.dropped);
	parse(&f, file);
	EXPECT(!f.bad && f.isb_drop == 156 * 32 - 4095, "bad %d, drop %lu",
	       f.bad, f.isb_drop);
	free(f.buf);
	EXPECT(rte_mempool_avail_count(src) == 511, "source mbufs leaked");
}

static void test_refused(void)
{
	char file[128], link[128], err[256];
	struct vhd_port other = {.name = "vm2", .type = VHD_PORT_VHOST};

	snprintf(file, sizeof(file), "%s/nodir/x.pcapng", dir);
	EXPECT(vhd_capture_start(&port, file, 3, 0, 0, on_done, &done, err,
				 sizeof(err)) == -ENOENT,
	       "missing directory: %s", err);
	EXPECT(vhd_capture_start(&port, "/dev/null", 3, 0, 0, on_done, &done,
				 err, sizeof(err)) == -EINVAL,
	       "/dev/null: %s", err);
	snprintf(file, sizeof(file), "%s/e.pcapng", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	EXPECT(symlink(file, link) == 0, "symlink");
	EXPECT(vhd_capture_start(&port, link, 3, 0, 0, on_done, &done, err,
				 sizeof(err)) == -ELOOP,
	       "symlink: %s", err);
	unlink(link);

	EXPECT(vhd_capture_start(&port, file, 3, 0, 0, on_done, &done, err,
				 sizeof(err)) == 0,
	       "start: %s", err);
	EXPECT(vhd_capture_start(&port, file, 3, 0, 0, on_done, &done, err,
				 sizeof(err)) == -EBUSY,
	       "second capture of a port: %s", err);
	EXPECT(vhd_capture_start(&other, file, 3, 0, 0, on_done, &done, err,
				 sizeof(err)) == -EBUSY,
	       "second capture into a file: %s", err);
	vhd_capture_stop(&port, false);
	EXPECT(!vhd_capture_active(), "still active");
}

int main(int argc, char **argv)
{
	char *eal[] = {argv[0],
		       "--no-huge",
		       "-m",
		       "128",
		       "--no-pci",
		       "--no-shconf",
		       "--file-prefix=vhd-test-capture",
		       "--no-telemetry",
		       "--log-level=6",
		       "-l",
		       "0",
		       NULL};
	char cmd[128];

	RTE_SET_USED(argc);
	if (rte_eal_init(RTE_DIM(eal) - 1, eal) < 0) {
		printf("EAL init failed\n");
		return 2;
	}
	vhd_rcu = rte_zmalloc(NULL, rte_rcu_qsbr_get_memsize(1), 64);
	rte_rcu_qsbr_init(vhd_rcu, 1);
	src = rte_pktmbuf_pool_create("src", 511, 0, 0,
				      RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	snprintf(port.name, sizeof(port.name), "vm1");
	snprintf(dir, sizeof(dir), "/tmp/vhd-test-capture-XXXXXX");
	if (src == NULL || mkdtemp(dir) == NULL) {
		printf("setup failed\n");
		return 2;
	}
	UNIT_CASE(test_file);
	UNIT_CASE(test_dir_and_stop);
	UNIT_CASE(test_duration);
	UNIT_CASE(test_drops);
	UNIT_CASE(test_refused);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", dir);
	rte_mempool_free(src);
	rte_free(vhd_rcu);
	rte_eal_cleanup();
	rmdir("/var/run/dpdk/vhd-test-capture");
	return unit_done();
}
