/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * capture.c: a port's frames into a pcapng file (the `capture` command).
 *
 * Main design choice: the datapath only copies. vhd_capture_burst (any
 * datapath lcore) copies each wanted frame with rte_pcapng_copy() into the
 * capture's own mempool, as an Enhanced Packet Block around the frame, and
 * enqueues it to the capture's ring (multi-producer, single consumer). It
 * never blocks and never writes a file: a full ring or an empty pool drops
 * the copy and counts it in the lcore's own counter (no atomics per
 * packet). The control thread drains the ring into the file with writev
 * (vhd_capture_poll) and ends the capture; ending stores NULL in p->cap and
 * waits for an RCU grace period before the last drain and the frees, so no
 * lcore still holds the ring or pool.
 *
 * Why vhostd writes the file's blocks itself: librte_pcapng 22.11's writer
 * (rte_pcapng_fdopen/rte_pcapng_write_packets) describes ethdevs only: it
 * writes one Interface Description Block per ethdev and maps each packet's
 * port through a table that is left uninitialised for anything else, and a
 * vhost port is not an ethdev. So this file writes the Section Header Block
 * and one Interface Description Block (Ethernet, named after the port,
 * nanosecond timestamps) and then the EPBs that rte_pcapng_copy built,
 * after setting their interface id to 0.
 *
 * Timestamps: rte_pcapng_copy() of the installed 22.11 converts the TSC it
 * is given to nanoseconds since the epoch against one process-wide base
 * that it initialises lazily and moves forward second by second with plain
 * stores, from whichever lcore calls it: a TSC older than that base (the
 * first copy ever, or another lcore having just moved the base) wraps the
 * base for the rest of the process's life. So the datapath overwrites the
 * EPB timestamp with the raw TSC of the burst, and the control thread
 * converts it at write time against this capture's own base (the TSC and
 * CLOCK_REALTIME read together when the capture started).
 *
 * Second pool: rte_pcapng_copy() of 22.11 fills the copy's segments to the
 * brim and then appends the EPB trailer (up to 23 bytes) to the last
 * segment only, so a frame whose length leaves less room than that in its
 * last segment (with 2048-byte segments: 2029-2048, 4077-4096, ... bytes)
 * cannot be copied. A failed copy is tried again from a small pool of
 * 2112-byte segments: the lengths that fail there are different ones (the
 * two sets first meet at 67584 bytes, beyond any frame).
 */
#ifndef ALLOW_EXPERIMENTAL_API
#define ALLOW_EXPERIMENTAL_API /* rte_pcapng_copy */
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pcapng.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "vhd.h"
#include "vhd_capture.h"

RTE_LOG_REGISTER(vhd_logtype_capture, vhostd.capture, INFO);

#define CAP_RING_SIZE	4096 /* copies between two polls (power of 2) */
#define CAP_POOL_SIZE	4095 /* mbufs; a 9000-byte frame takes 5 */
#define CAP_POOL_CACHE	32
#define CAP_POOL2_SIZE	1023 /* the second pool (see above) */
#define CAP_POOL2_ROOM	2112
#define CAP_WRITE_BURST 32u
#define CAP_NS_PER_S	1000000000ULL

/* pcapng block types and option codes (draft-tuexen-opsawg-pcapng). */
#define PCAPNG_SHB	   0x0A0D0D0A
#define PCAPNG_IDB	   0x00000001
#define PCAPNG_ISB	   0x00000005
#define PCAPNG_EPB	   0x00000006
#define PCAPNG_BOM	   0x1A2B3C4D
#define OPT_END		   0
#define OPT_SHB_OS	   3
#define OPT_SHB_USERAPPL   4
#define OPT_IF_NAME	   2
#define OPT_IF_DESCRIPTION 3
#define OPT_IF_TSRESOL	   9
#define OPT_ISB_STARTTIME  2
#define OPT_ISB_ENDTIME	   3
#define OPT_ISB_IFDROP	   5
#define OPT_ISB_USRDELIV   8
#define LINKTYPE_ETHERNET  1

/* The head of an EPB, as rte_pcapng_copy() puts it in the first segment. */
struct epb_head {
	uint32_t block_type;
	uint32_t block_length;
	uint32_t interface_id;
	uint32_t ts_hi, ts_lo;
	uint32_t cap_len, orig_len;
};

/* One lcore's share of a capture: written by that lcore only. */
struct cap_lcore {
	uint64_t copied;  /* enqueued to the ring */
	uint64_t dropped; /* no mbuf, or ring full */
} __rte_cache_aligned;

struct vhd_capture {
	/* Set before p->cap is published, then read-only. */
	unsigned int dir; /* mask of enum vhd_cap_dir */
	uint64_t count;	  /* frames to write; 0: no limit */
	struct rte_mempool *pool, *pool2;
	struct rte_ring *ring;

	/* Control thread only. */
	struct vhd_port *port;
	struct vhd_capture *next;
	int fd;
	dev_t dev; /* the file, to refuse a second capture into it */
	ino_t ino;
	uint64_t written;
	uint64_t tsc0, ns0, hz; /* wall clock NS0 was TSC0 */
	uint64_t end_tsc;	/* duration: 0 no limit */
	vhd_capture_done_fn *done;
	void *arg;
	char error[PATH_MAX + 128]; /* first write error; ends the capture */
	char file[PATH_MAX];

	struct cap_lcore lc[VHD_MAX_DP_LCORES];
};

static struct vhd_capture *caps; /* running captures */
static unsigned int cap_seq;	 /* names of rings and pools */

/* The datapath. */

void vhd_capture_burst(struct vhd_capture *c, uint16_t lcore,
		       struct rte_mbuf *const *pkts, uint16_t n,
		       enum vhd_cap_dir dir, uint16_t queue)
{
	struct cap_lcore *l = &c->lc[lcore];
	const enum rte_pcapng_direction pd = dir == VHD_CAP_RX
						 ? RTE_PCAPNG_DIRECTION_IN
						 : RTE_PCAPNG_DIRECTION_OUT;
	struct rte_mbuf *copies[CAP_WRITE_BURST];
	bool enough = false;
	uint64_t tsc;
	uint16_t i = 0;

	RTE_ASSERT(lcore < VHD_MAX_DP_LCORES);
	if (!(c->dir & dir))
		return;
	tsc = rte_get_tsc_cycles();
	while (i < n && !enough) {
		unsigned int k = 0, sent;

		for (; i < n && k < CAP_WRITE_BURST; i++) {
			struct rte_mbuf *m;
			struct epb_head *h;

			/* No lcore alone needs more than COUNT copies; the
			 * control thread writes the first COUNT it gets. */
			if (c->count != 0 && l->copied + k >= c->count) {
				enough = true;
				break;
			}
			m = rte_pcapng_copy(0, queue, pkts[i], c->pool,
					    UINT32_MAX, tsc, pd);
			if (unlikely(m == NULL))
				m = rte_pcapng_copy(0, queue, pkts[i], c->pool2,
						    UINT32_MAX, tsc, pd);
			if (unlikely(m == NULL)) {
				l->dropped++;
				continue;
			}
			h = rte_pktmbuf_mtod(m, struct epb_head *);
			h->ts_hi = (uint32_t)(tsc >> 32);
			h->ts_lo = (uint32_t)tsc;
			copies[k++] = m;
		}
		if (k == 0)
			continue;
		sent = rte_ring_mp_enqueue_burst(c->ring, (void **)copies, k,
						 NULL);
		l->copied += sent;
		if (unlikely(sent < k)) {
			l->dropped += k - sent;
			rte_pktmbuf_free_bulk(&copies[sent], k - sent);
		}
	}
}

/* The file: pcapng blocks. */

struct blk {
	uint8_t b[1024];
	uint32_t len;
};

static void put(struct blk *b, const void *data, uint32_t len)
{
	memcpy(b->b + b->len, data, len);
	b->len += len;
}

static void put32(struct blk *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

/* A TLV option, padded to 32 bits; DATA is cut to what the block holds. */
static void put_opt(struct blk *b, uint16_t code, const void *data,
		    uint32_t len)
{
	uint16_t hdr[2];
	uint32_t room = sizeof(b->b) - b->len - 16; /* opt_end, length */

	if (len > room - 4)
		len = room - 4;
	hdr[0] = code;
	hdr[1] = (uint16_t)len;
	put(b, hdr, sizeof(hdr));
	put(b, data, len);
	while (b->len % 4)
		b->b[b->len++] = 0;
}

/* Close block B: opt_end if OPTS, the trailing length, the length field. */
static void end_block(struct blk *b, bool opts)
{
	if (opts)
		put32(b, OPT_END);
	put32(b, b->len + 4);
	memcpy(b->b + 4, &b->len, sizeof(b->len));
}

/* Put a timestamp option as pcapng stores it: high 32 bits, then low. */
static void put_ts_opt(struct blk *b, uint16_t code, uint64_t ns)
{
	uint32_t ts[2] = {(uint32_t)(ns >> 32), (uint32_t)ns};

	put_opt(b, code, ts, sizeof(ts));
}

static uint64_t tsc_to_ns(const struct vhd_capture *c, uint64_t tsc)
{
	uint64_t d = tsc >= c->tsc0 ? tsc - c->tsc0 : c->tsc0 - tsc;
	uint64_t ns =
	    d / c->hz * CAP_NS_PER_S + d % c->hz * CAP_NS_PER_S / c->hz;

	return tsc >= c->tsc0 ? c->ns0 + ns : c->ns0 - ns;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * CAP_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void set_error(struct vhd_capture *c, const char *what, int errnum)
{
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "%s %s: %s", what, c->file,
			 strerror(errnum));
}

/* Write IOV[0..N) whole (a regular file may still take less at once). */
static int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static void write_block(struct vhd_capture *c, const struct blk *b)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)b->b,
			    .iov_len = b->len};
	int rc;

	if (c->error[0] != '\0')
		return;
	rc = writev_all(c->fd, &iov, 1);
	if (rc < 0)
		set_error(c, "write", -rc);
}

static void write_headers(struct vhd_capture *c, const char *port,
			  enum vhd_port_type type)
{
	struct blk b = {.len = 0};
	char s[256];
	struct utsname u;
	const uint16_t v[2] = {1, 0};
	const uint64_t section_len = UINT64_MAX; /* not given */
	const uint16_t link[2] = {LINKTYPE_ETHERNET, 0};
	const uint8_t tsresol = 9; /* 10^-9 s */

	put32(&b, PCAPNG_SHB);
	put32(&b, 0);
	put32(&b, PCAPNG_BOM);
	put(&b, v, sizeof(v));
	put(&b, &section_len, sizeof(section_len));
	if (uname(&u) == 0) {
		snprintf(s, sizeof(s), "%s %s", u.sysname, u.release);
		put_opt(&b, OPT_SHB_OS, s, (uint32_t)strlen(s));
	}
	snprintf(s, sizeof(s), "vhostd (%s)", rte_version());
	put_opt(&b, OPT_SHB_USERAPPL, s, (uint32_t)strlen(s));
	end_block(&b, true);
	write_block(c, &b);

	b.len = 0;
	put32(&b, PCAPNG_IDB);
	put32(&b, 0);
	put(&b, link, sizeof(link));
	put32(&b, 0); /* snaplen: none */
	put_opt(&b, OPT_IF_NAME, port, (uint32_t)strlen(port));
	snprintf(s, sizeof(s), "vhostd %s port %s", vhd_port_type_name(type),
		 port);
	put_opt(&b, OPT_IF_DESCRIPTION, s, (uint32_t)strlen(s));
	put_opt(&b, OPT_IF_TSRESOL, &tsresol, sizeof(tsresol));
	end_block(&b, true);
	write_block(c, &b);
}

/* Interface Statistics Block: what the capture lost and wrote. */
static void write_stats(struct vhd_capture *c, uint64_t dropped)
{
	struct blk b = {.len = 0};
	uint64_t end = now_ns();

	put32(&b, PCAPNG_ISB);
	put32(&b, 0);
	put32(&b, 0); /* interface */
	put32(&b, (uint32_t)(end >> 32));
	put32(&b, (uint32_t)end);
	put_ts_opt(&b, OPT_ISB_STARTTIME, c->ns0);
	put_ts_opt(&b, OPT_ISB_ENDTIME, end);
	put_opt(&b, OPT_ISB_IFDROP, &dropped, sizeof(dropped));
	put_opt(&b, OPT_ISB_USRDELIV, &c->written, sizeof(c->written));
	end_block(&b, true);
	write_block(c, &b);
}

/* Write the EPBs in M[0..N): interface 0, the raw TSC made wall clock. */
static void write_packets(struct vhd_capture *c, struct rte_mbuf **m,
			  unsigned int n)
{
	struct iovec iov[IOV_MAX];
	int niov = 0, rc;

	for (unsigned int i = 0; i < n; i++) {
		struct epb_head *h = rte_pktmbuf_mtod(m[i], struct epb_head *);
		uint64_t ns = tsc_to_ns(c, (uint64_t)h->ts_hi << 32 | h->ts_lo);

		h->interface_id = 0;
		h->ts_hi = (uint32_t)(ns >> 32);
		h->ts_lo = (uint32_t)ns;
		if (niov + m[i]->nb_segs > IOV_MAX) {
			rc = writev_all(c->fd, iov, niov);
			if (rc < 0)
				goto fail;
			niov = 0;
		}
		for (struct rte_mbuf *s = m[i]; s != NULL; s = s->next) {
			iov[niov].iov_base = rte_pktmbuf_mtod(s, void *);
			iov[niov++].iov_len = s->data_len;
		}
	}
	rc = writev_all(c->fd, iov, niov);
	if (rc == 0)
		return;
fail:
	set_error(c, "write", -rc);
}

/* Move up to MAX copies from the ring to the file (or, past COUNT or after
 * an error, to the pool). */
static void drain(struct vhd_capture *c, unsigned int max)
{
	struct rte_mbuf *m[CAP_WRITE_BURST];
	unsigned int n, keep;

	while (max > 0) {
		n = rte_ring_sc_dequeue_burst(
		    c->ring, (void **)m, RTE_MIN(max, CAP_WRITE_BURST), NULL);
		if (n == 0)
			break;
		max -= n;
		keep = n;
		if (c->count != 0 && c->count - c->written < keep)
			keep = (unsigned int)(c->count - c->written);
		if (c->error[0] != '\0')
			keep = 0;
		if (keep > 0) {
			write_packets(c, m, keep);
			if (c->error[0] == '\0')
				c->written += keep;
		}
		rte_pktmbuf_free_bulk(m, n);
	}
}

/* The control thread. */

static int open_file(const char *file, char *err, size_t errlen)
{
	int fd;

	/* No O_TRUNC before we know it is a regular file; O_NONBLOCK so
	 * that a FIFO cannot hold the control thread in open(). */
	fd =
	    open(file, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		 0644);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT || e == ENOTDIR)
			snprintf(err, errlen, "%s: no such directory", file);
		else if (e == ELOOP)
			snprintf(err, errlen, "%s: is a symbolic link", file);
		else
			snprintf(err, errlen, "%s: %s", file, strerror(e));
		return -e;
	}
	return fd;
}

static void pool_free(const struct vhd_capture *c, struct rte_mempool *mp)
{
	unsigned int used;

	if (mp == NULL)
		return;
	used = rte_mempool_in_use_count(mp);
	if (used != 0)
		VHD_LOG(WARNING, capture,
			"capture of port %s: %u mbufs not returned to pool %s",
			c->port->name, used, mp->name);
	rte_mempool_free(mp);
}

static void cap_free(struct vhd_capture *c)
{
	rte_ring_free(c->ring);
	pool_free(c, c->pool);
	pool_free(c, c->pool2);
	if (c->fd >= 0)
		close(c->fd);
	rte_free(c);
}

static void cap_end(struct vhd_capture *c, bool notify);

int vhd_capture_start(struct vhd_port *p, const char *file, unsigned int dir,
		      uint64_t count, uint32_t duration,
		      vhd_capture_done_fn *done, void *arg, char *err,
		      size_t errlen)
{
	struct vhd_capture *c = NULL;
	char name[RTE_MEMPOOL_NAMESIZE];
	struct stat st;
	uint64_t t1, t2;
	unsigned int seq;
	int fd, rc;

	if (p->cap != NULL) {
		snprintf(err, errlen,
			 "port %s is already being captured into %s", p->name,
			 p->cap->file);
		return -EBUSY;
	}
	if (strlen(file) >= sizeof(c->file)) {
		snprintf(err, errlen, "file name longer than %d bytes",
			 PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	fd = open_file(file, err, errlen);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", file);
		close(fd);
		return -EINVAL;
	}
	for (const struct vhd_capture *o = caps; o != NULL; o = o->next)
		if (o->dev == st.st_dev && o->ino == st.st_ino) {
			snprintf(err, errlen,
				 "%s: already being written by the capture "
				 "of port %s",
				 file, o->port->name);
			close(fd);
			return -EBUSY;
		}
	if (ftruncate(fd, 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(-rc));
		close(fd);
		return rc;
	}

	c = rte_zmalloc("vhd_capture", sizeof(*c), RTE_CACHE_LINE_SIZE);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->port = p;
	c->dir = dir;
	c->count = count;
	c->done = done;
	c->arg = arg;
	snprintf(c->file, sizeof(c->file), "%s", file);

	seq = cap_seq++;
	snprintf(name, sizeof(name), "vhd_cap%u", seq);
	c->pool =
	    rte_pktmbuf_pool_create(name, CAP_POOL_SIZE, CAP_POOL_CACHE, 0,
				    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	snprintf(name, sizeof(name), "vhd_cap%u_2", seq);
	if (c->pool != NULL)
		c->pool2 = rte_pktmbuf_pool_create(
		    name, CAP_POOL2_SIZE, CAP_POOL_CACHE, 0,
		    RTE_PKTMBUF_HEADROOM + CAP_POOL2_ROOM, SOCKET_ID_ANY);
	snprintf(name, sizeof(name), "vhd_cap%u_r", seq);
	if (c->pool2 != NULL)
		c->ring = rte_ring_create(name, CAP_RING_SIZE, SOCKET_ID_ANY,
					  RING_F_SC_DEQ);
	if (c->pool == NULL || c->pool2 == NULL || c->ring == NULL) {
		rc = -(rte_errno ? rte_errno : ENOMEM);
		snprintf(err, errlen,
			 "capture buffers of %u mbufs: %s (raise socket-mem)",
			 CAP_POOL_SIZE + CAP_POOL2_SIZE, rte_strerror(-rc));
		cap_free(c);
		return rc;
	}

	/* The wall clock at a TSC read halfway around clock_gettime(). */
	c->hz = rte_get_tsc_hz();
	t1 = rte_get_tsc_cycles();
	c->ns0 = now_ns();
	t2 = rte_get_tsc_cycles();
	c->tsc0 = t1 + (t2 - t1) / 2;
	c->end_tsc = duration ? c->tsc0 + (uint64_t)duration * c->hz : 0;

	/* Published before the headers are written (only the control thread
	 * writes the file, in order): once the file has its headers, the
	 * capture sees the port's frames. */
	c->next = caps;
	caps = c;
	__atomic_store_n(&p->cap, c, __ATOMIC_RELEASE);
	write_headers(c, p->name, p->type);
	if (c->error[0] != '\0') {
		snprintf(err, errlen, "%s", c->error);
		cap_end(c, false);
		return -EIO;
	}
	VHD_LOG(INFO, capture,
		"capture of port %s into %s started (dir %s, count %" PRIu64
		", duration %us)",
		p->name, file,
		dir == (VHD_CAP_RX | VHD_CAP_TX) ? "both"
		: dir == VHD_CAP_RX		 ? "rx"
						 : "tx",
		count, duration);
	return 0;
}

/* Unpublish C, wait until no lcore can be in vhd_capture_burst with it,
 * write what is left, complete the file, free everything. */
static void cap_end(struct vhd_capture *c, bool notify)
{
	uint64_t dropped = 0;

	for (struct vhd_capture **pp = &caps; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	__atomic_store_n(&c->port->cap, NULL, __ATOMIC_RELEASE);
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);

	drain(c, UINT_MAX);
	for (unsigned int i = 0; i < VHD_MAX_DP_LCORES; i++)
		dropped += c->lc[i].dropped;
	write_stats(c, dropped);
	if (close(c->fd) < 0)
		set_error(c, "close", errno);
	c->fd = -1;

	if (c->error[0] != '\0')
		VHD_LOG(ERR, capture, "capture of port %s: %s", c->port->name,
			c->error);
	VHD_LOG(INFO, capture,
		"capture of port %s into %s ended: %" PRIu64
		" packets, %" PRIu64 " dropped",
		c->port->name, c->file, c->written, dropped);
	if (notify && c->done != NULL)
		c->done(c->arg, c->written, dropped,
			c->error[0] != '\0' ? c->error : NULL);
	cap_free(c);
}

void vhd_capture_stop(struct vhd_port *p, bool notify)
{
	if (p->cap != NULL)
		cap_end(p->cap, notify);
}

void vhd_capture_poll(void)
{
	uint64_t now = rte_get_tsc_cycles();
	struct vhd_capture *next;

	for (struct vhd_capture *c = caps; c != NULL; c = next) {
		next = c->next;
		drain(c, CAP_RING_SIZE);
		if (c->error[0] != '\0' ||
		    (c->count != 0 && c->written >= c->count) ||
		    (c->end_tsc != 0 && now >= c->end_tsc)) {
			cap_end(c, true);
			/* DONE may have ended others: start over (the
			 * ended ones are off the list). */
			next = caps;
		}
	}
}

bool vhd_capture_active(void)
{
	return caps != NULL;
}
