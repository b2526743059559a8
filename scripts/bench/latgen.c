/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd-latgen: one-way latency through a vhost-user switch, for
 * scripts/bench.sh --latency.
 *
 * Why it exists: dpdk-testpmd's latencystats stamps a packet when testpmd
 * receives it and reads the stamp when the same testpmd transmits it, so it
 * measures testpmd's own forwarding, not the trip through the switch. Here
 * one lcore (the generator CPU) sends 64 B frames on net_virtio_user port 0
 * with rte_rdtsc() and a sequence number in the payload, and polls
 * net_virtio_user port 1 in the same loop: a frame that crossed the switch
 * (its vhost-user port p0 -> p1) is timed with the same core's TSC, so
 * latency = rdtsc when received - stamp, with no clock to synchronise.
 *
 * What a sample includes: the virtio_user enqueue, the switch's poll and
 * forwarding, and the wait in port 1's ring until this loop polls it (at
 * most one loop iteration, a few hundred ns at most when the core is not
 * preempted: stalls= counts iterations that took longer than 10 us).
 *
 *   vhd-latgen EAL... --vdev net_virtio_user0,path=P0 \
 *       --vdev net_virtio_user1,path=P1 -- \
 *       [--capacity] [--rate PPS,...] [--load PCT,...] [--seconds S]
 *       [--warmup S] [--size B] [--burst N]
 *
 * --capacity: send as fast as the loop can for S seconds; the received rate
 * is the switch's one-way capacity in this topology (or the generator's,
 * whichever is lower). --rate: paced (TSC) at PPS. --load: at PCT % of the
 * rate --capacity measured first. Every measurement drains both ports, runs
 * a warm-up at its rate (not counted), then S seconds counted, then waits
 * for the stragglers, and prints one line:
 *
 *   LAT mode=rate load_pct=50 target_pps=... tx_pps=... rx_pps=... sent=...
 *       recv=... lost=... p50_ns=... p99_ns=... p999_ns=... max_ns=... ...
 *
 * Percentiles come from a log-linear histogram (1 ns buckets below 128 ns,
 * then 64 per power of two: within 1.6 %; the bucket's upper bound is
 * reported); min, max and mean are exact.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_udp.h>

#include "genutil.h"

#define LG_MAGIC   0x4c47 /* "LG" */
#define RUN_PROBE  1	  /* learning / readiness frames */
#define NB_MBUFS   16383
#define MBUF_CACHE 256
#define NB_DESC	   1024
#define MAX_BURST  32
#define MAX_STEPS  32
#define STALL_NS   10000 /* a loop iteration longer than this: a stall */
#define PL_OFF                                                        \
	(sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
	 sizeof(struct rte_udp_hdr))

/* what every frame carries after its IPv4/UDP headers */
struct lg_payload {
	uint16_t magic;
	uint16_t run; /* the measurement (or warm-up) it belongs to */
	uint32_t seq;
	uint64_t tsc; /* rte_rdtsc() just before rte_eth_tx_burst() */
} __rte_packed;
#define TSC_OFF (PL_OFF + offsetof(struct lg_payload, tsc))

/* ---------------------------------------------------------------- histogram
 * Values in ns. Below 2 * H_SUB one bucket per ns; above, H_SUB buckets per
 * power of two. Values from 2^(H_MAX_MSB + 1) ns (about 37 min) on land in
 * the last bucket.
 */
#define H_SUB_BITS 6
#define H_SUB	   (1u << H_SUB_BITS)
#define H_MAX_MSB  40
#define H_BUCKETS  ((H_MAX_MSB - H_SUB_BITS + 2) * H_SUB)

struct hist {
	uint64_t n, sum, min, max;
	uint64_t b[H_BUCKETS];
};

static unsigned int h_index(uint64_t v)
{
	unsigned int msb, shift;

	if (v < 2 * H_SUB)
		return (unsigned int)v;
	if (v >= (1ULL << (H_MAX_MSB + 1)))
		v = (1ULL << (H_MAX_MSB + 1)) - 1;
	msb = 63 - (unsigned int)__builtin_clzll(v);
	shift = msb - H_SUB_BITS;
	return (shift + 1) * H_SUB + (unsigned int)((v >> shift) - H_SUB);
}

/* the largest value that lands in bucket i */
static uint64_t h_upper(unsigned int i)
{
	unsigned int shift;

	if (i < 2 * H_SUB)
		return i;
	shift = i / H_SUB - 1;
	return ((uint64_t)(H_SUB + i % H_SUB) << shift) + (1ULL << shift) - 1;
}

static void h_add(struct hist *h, uint64_t v)
{
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
	h->b[h_index(v)]++;
}

/* the q-quantile (0 < q <= 1): upper bound of its bucket, at most max */
static uint64_t h_quantile(const struct hist *h, double q)
{
	uint64_t rank, acc = 0;
	unsigned int i;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n);
	if ((double)rank < q * (double)h->n)
		rank++;
	if (rank < 1)
		rank = 1;
	for (i = 0; i < H_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= rank)
			return RTE_MIN(h_upper(i), h->max);
	}
	return h->max;
}

/* ---------------------------------------------------------------- state */
struct meas {
	uint16_t run;	/* frames of this run are counted */
	uint64_t recv;	/* of this run */
	uint64_t stale; /* of an earlier run or warm-up */
	uint64_t other; /* not ours */
	uint64_t reord; /* seq below the last one seen */
	uint32_t last_seq;
	bool have_last;
	struct hist h;
};

struct txstat {
	uint64_t sched;	  /* frames due by the schedule (skipped included) */
	uint64_t sent;	  /* accepted by rte_eth_tx_burst */
	uint64_t txfail;  /* not accepted (ring full) or no mbuf */
	uint64_t skipped; /* due while the loop was late, never sent */
	uint64_t stalls;  /* loop iterations longer than STALL_NS */
	uint64_t stall_max;
	double secs;
};

static struct rte_mempool *pool;
static uint16_t ports[2];		   /* [0] sends, [1] receives */
static uint8_t tmpl[2][RTE_ETHER_MAX_LEN]; /* frame sent on port 0 / 1 */
static uint16_t frame_len = 64;
static uint32_t seq;
static double ns_per_cyc;
static struct meas scratch; /* frames nobody waits for */

static uint64_t ns_of(uint64_t cyc)
{
	return (uint64_t)((double)cyc * ns_per_cyc);
}

/* frame i: Ethernet 00:..:0(i+1) -> the other port's MAC, IPv4/UDP */
static void build_template(int i)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)tmpl[i];
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	const uint8_t mac[2][RTE_ETHER_ADDR_LEN] = {{0, 0, 0, 0, 0, 1},
						    {0, 0, 0, 0, 0, 2}};

	memset(tmpl[i], 0, sizeof(tmpl[i]));
	memcpy(eth->src_addr.addr_bytes, mac[i], RTE_ETHER_ADDR_LEN);
	memcpy(eth->dst_addr.addr_bytes, mac[!i], RTE_ETHER_ADDR_LEN);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16(frame_len - sizeof(*eth));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	/* 198.18.0.1 <-> 198.18.0.2 (benchmarking range) */
	ip->src_addr = rte_cpu_to_be_32(0xc6120000u | (uint32_t)(1 + i));
	ip->dst_addr = rte_cpu_to_be_32(0xc6120000u | (uint32_t)(2 - i));
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16(1024);
	udp->dst_port = rte_cpu_to_be_16(1024);
	udp->dgram_len =
	    rte_cpu_to_be_16(frame_len - sizeof(*eth) - sizeof(*ip));
}

/* n (<= MAX_BURST) frames of run `run` on port side `s` (0 or 1), stamped
 * right before the burst; returns how many the port took */
static uint16_t send_burst(int s, uint16_t n, uint16_t run)
{
	struct rte_mbuf *m[MAX_BURST];
	struct lg_payload pl = {.magic = LG_MAGIC, .run = run};
	uint64_t now;
	uint16_t i, sent;
	char *d;

	if (rte_pktmbuf_alloc_bulk(pool, m, n) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		d = rte_pktmbuf_append(m[i], frame_len);
		memcpy(d, tmpl[s], frame_len);
		pl.seq = seq++;
		memcpy(d + PL_OFF, &pl, sizeof(pl));
	}
	now = rte_rdtsc();
	for (i = 0; i < n; i++)
		memcpy(rte_pktmbuf_mtod_offset(m[i], char *, TSC_OFF), &now,
		       sizeof(now));
	sent = rte_eth_tx_burst(ports[s], 0, m, n);
	if (sent < n)
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	return sent;
}

/* one rx burst on port side `s`: frames of ms->run timed into ms->h */
static uint16_t poll_rx(int s, struct meas *ms)
{
	struct rte_mbuf *m[MAX_BURST];
	struct lg_payload pl;
	uint64_t now;
	uint16_t i, n;

	n = rte_eth_rx_burst(ports[s], 0, m, MAX_BURST);
	if (n == 0)
		return 0;
	now = rte_rdtsc();
	for (i = 0; i < n; i++) {
		if (rte_pktmbuf_data_len(m[i]) < PL_OFF + sizeof(pl)) {
			ms->other++;
			continue;
		}
		memcpy(&pl, rte_pktmbuf_mtod_offset(m[i], char *, PL_OFF),
		       sizeof(pl));
		if (pl.magic != LG_MAGIC) {
			ms->other++;
		} else if (pl.run != ms->run) {
			ms->stale++;
		} else {
			h_add(&ms->h, ns_of(now > pl.tsc ? now - pl.tsc : 0));
			ms->recv++;
			if (ms->have_last && pl.seq < ms->last_seq)
				ms->reord++;
			ms->last_seq = pl.seq;
			ms->have_last = true;
		}
	}
	rte_pktmbuf_free_bulk(m, n);
	return n;
}

/* poll both ports until nothing came for quiet_ms (at most max_ms) */
static void drain(unsigned int quiet_ms, unsigned int max_ms)
{
	uint64_t now = rte_rdtsc(), last = now;
	uint64_t end = now + cyc_of(max_ms / 1e3);
	uint64_t quiet = cyc_of(quiet_ms / 1e3);

	while (!quit && now < end && now - last < quiet) {
		if (poll_rx(0, &scratch) + poll_rx(1, &scratch) > 0)
			last = rte_rdtsc();
		now = rte_rdtsc();
	}
}

/* ---------------------------------------------------------------- setup */
static int port_init(uint16_t port)
{
	struct rte_eth_conf conf;
	int ret;

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_configure(port, 1, 1, &conf);
	if (ret == 0)
		ret = rte_eth_rx_queue_setup(
		    port, 0, NB_DESC, rte_eth_dev_socket_id(port), NULL, pool);
	if (ret == 0)
		ret = rte_eth_tx_queue_setup(port, 0, NB_DESC,
					     rte_eth_dev_socket_id(port), NULL);
	if (ret == 0)
		ret = rte_eth_dev_start(port);
	if (ret != 0)
		fprintf(stderr, "latgen: port %u: setup failed: %s\n", port,
			rte_strerror(-ret));
	return ret;
}

/*
 * Readiness and learning: a few frames from port 1 (src :02 -> :01), then
 * from port 0 (src :01 -> :02), each repeated every 100 ms until one
 * comes through. A learning bridge learns :02 on p1 from the first (it
 * floods them, :01 being unknown) and :01 on p0 from the second, which it
 * forwards to p1 as known unicast; every measured frame is then known
 * unicast. It also tells that the switch forwards both ways (its vhost
 * rings ready). Then the ports are drained.
 */
static int learn(double timeout)
{
	struct meas ms;
	uint64_t end, wait;
	int s;

	for (s = 1; s >= 0; s--) {
		memset(&ms, 0, sizeof(ms));
		ms.run = RUN_PROBE;
		end = rte_rdtsc() + cyc_of(timeout);
		while (!quit && ms.recv == 0) {
			if (rte_rdtsc() > end) {
				fprintf(stderr,
					"latgen: nothing from port %d reached "
					"port %d within %.0f s\n",
					s, !s, timeout);
				return -1;
			}
			send_burst(s, 4, RUN_PROBE);
			wait = rte_rdtsc() + cyc_of(0.1);
			while (!quit && rte_rdtsc() < wait) {
				poll_rx(!s, &ms);
				poll_rx(s, &scratch);
			}
		}
	}
	drain(50, 1000);
	return quit ? -1 : 0;
}

/* ---------------------------------------------------------------- measure
 * Send on port 0 for secs seconds: at pps frames per second (TSC-paced, at
 * most `burst` at a time; after a stall at most 4 bursts behind, the rest
 * skipped), or as fast as the loop goes (pps 0). Port 1 is polled every
 * iteration, port 0 every 64th. Once a second one frame from port 1 (:02,
 * not counted) keeps a learning bridge's entry of :02 from ageing out in
 * long runs.
 */
static void run_phase(double pps, double secs, unsigned int burst, uint16_t run,
		      struct meas *ms, struct txstat *ts)
{
	uint64_t t0 = rte_rdtsc(), now = t0, prev = t0, end = t0 + cyc_of(secs);
	uint64_t stall = cyc_of(STALL_NS / 1e9), target, due, it = 0;
	uint64_t refresh = t0 + hz;
	double per_cyc = pps / (double)hz;
	uint16_t sent;

	memset(ts, 0, sizeof(*ts));
	while (!quit) {
		now = rte_rdtsc();
		if (now >= end)
			break;
		if (now - prev > stall) {
			ts->stalls++;
			ts->stall_max = RTE_MAX(ts->stall_max, now - prev);
		}
		prev = now;
		if (pps <= 0) {
			due = burst;
		} else {
			target = (uint64_t)((double)(now - t0) * per_cyc);
			due = target > ts->sched ? target - ts->sched : 0;
			if (due > 4 * burst) {
				ts->skipped += due - burst;
				ts->sched += due - burst;
				due = burst;
			}
			due = RTE_MIN(due, (uint64_t)burst);
		}
		if (due > 0) {
			sent = send_burst(0, (uint16_t)due, run);
			ts->sched += due;
			ts->sent += sent;
			ts->txfail += due - sent;
		}
		poll_rx(1, ms);
		if ((++it & 63) == 0)
			poll_rx(0, &scratch);
		if (now >= refresh) {
			send_burst(1, 1, RUN_PROBE);
			refresh = now + hz;
		}
	}
	ts->secs = (double)(now - t0) / (double)hz;
}

struct step {
	const char *mode; /* capacity, rate, load */
	double pps;	  /* rate: the rate; load: percent */
};

static uint16_t next_run = RUN_PROBE + 1;

/* drain, warm up, measure, collect the stragglers, print; returns the
 * received rate over the counted window */
static double measure(const char *mode, double load_pct, double pps,
		      double secs, double warmup, unsigned int burst)
{
	static struct meas ms; /* the histogram is large */
	struct txstat ts;
	uint64_t recv_win, end, last, now;
	uint16_t warm_run = next_run++, run = next_run++;
	double rx_pps;

	drain(20, 1000);
	if (warmup > 0) {
		memset(&ms, 0, sizeof(ms));
		ms.run = warm_run;
		run_phase(pps, warmup, burst, warm_run, &ms, &ts);
	}
	memset(&ms, 0, sizeof(ms));
	ms.run = run;
	run_phase(pps, secs, burst, run, &ms, &ts);
	recv_win = ms.recv;
	/* stragglers: until all are in, or 20 ms without any (at most 1 s) */
	now = last = rte_rdtsc();
	end = now + hz;
	while (!quit && ms.recv < ts.sent && now < end &&
	       now - last < hz / 50) {
		if (poll_rx(1, &ms) > 0)
			last = rte_rdtsc();
		now = rte_rdtsc();
	}
	if (quit)
		return 0;
	rx_pps = ts.secs > 0 ? (double)recv_win / ts.secs : 0;
	printf("LAT mode=%s load_pct=%g target_pps=%.0f tx_pps=%.0f "
	       "rx_pps=%.0f seconds=%.3f sent=%" PRIu64 " txfail=%" PRIu64
	       " skipped=%" PRIu64 " recv=%" PRIu64 " lost=%" PRId64
	       " stale=%" PRIu64 " other=%" PRIu64 " reord=%" PRIu64
	       " min_ns=%" PRIu64 " p50_ns=%" PRIu64 " p90_ns=%" PRIu64
	       " p99_ns=%" PRIu64 " p999_ns=%" PRIu64 " max_ns=%" PRIu64
	       " mean_ns=%.0f stalls=%" PRIu64 " stall_max_ns=%" PRIu64
	       " size=%u burst=%u\n",
	       mode, load_pct, pps, ts.secs > 0 ? (double)ts.sent / ts.secs : 0,
	       rx_pps, ts.secs, ts.sent, ts.txfail, ts.skipped, ms.recv,
	       (int64_t)(ts.sent - ms.recv), ms.stale, ms.other, ms.reord,
	       ms.h.min, h_quantile(&ms.h, 0.50), h_quantile(&ms.h, 0.90),
	       h_quantile(&ms.h, 0.99), h_quantile(&ms.h, 0.999), ms.h.max,
	       ms.h.n ? (double)ms.h.sum / (double)ms.h.n : 0.0, ts.stalls,
	       ns_of(ts.stall_max), frame_len, burst);
	fflush(stdout);
	return rx_pps;
}

/* ---------------------------------------------------------------- main */
static void usage(const char *prog)
{
	fprintf(
	    stderr,
	    "usage: %s EAL-OPTIONS -- [--capacity] [--rate PPS,...] "
	    "[--load PCT,...]\n"
	    "       [--seconds S] [--warmup S] [--size BYTES] [--burst N]\n"
	    "       [--link-timeout S]\n"
	    "Two ports (net_virtio_user vdevs): frames go out on the first,\n"
	    "come back on the second. --load needs --capacity.\n",
	    prog);
}

/* "a,b,c" of positive numbers into steps of `mode` */
static int parse_list(const char *s, const char *mode, struct step *st, int *n)
{
	char *end;
	double v;

	while (*s) {
		errno = 0;
		v = strtod(s, &end);
		if (errno || end == s || v <= 0 || (*end && *end != ',') ||
		    *n >= MAX_STEPS)
			return -1;
		st[*n].mode = mode;
		st[*n].pps = v;
		(*n)++;
		s = *end ? end + 1 : end;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"capacity", no_argument, NULL, 'c'},
	    {"rate", required_argument, NULL, 'r'},
	    {"load", required_argument, NULL, 'l'},
	    {"seconds", required_argument, NULL, 's'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"size", required_argument, NULL, 'z'},
	    {"burst", required_argument, NULL, 'b'},
	    {"link-timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct step steps[MAX_STEPS];
	int nsteps = 0, opt, ret, i, rc = 0;
	bool capacity = false;
	double secs = 5, warmup = 1, link_timeout = 30, cap = 0, pps;
	unsigned long burst = MAX_BURST, size = 64;
	uint16_t pid, n = 0;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "latgen: EAL init failed\n");
	argc -= ret;
	argv += ret;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			capacity = true;
			break;
		case 'r':
		case 'l':
			if (parse_list(optarg, opt == 'r' ? "rate" : "load",
				       steps, &nsteps) < 0)
				rte_exit(EXIT_FAILURE, "latgen: bad list %s\n",
					 optarg);
			break;
		case 's':
			secs = strtod(optarg, NULL);
			break;
		case 'w':
			warmup = strtod(optarg, NULL);
			break;
		case 'z':
			size = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			burst = strtoul(optarg, NULL, 10);
			break;
		case 't':
			link_timeout = strtod(optarg, NULL);
			break;
		default:
			usage(argv[0]);
			rte_exit(opt == 'h' ? 0 : EXIT_FAILURE, "\n");
		}
	}
	if (secs <= 0 || warmup < 0 || burst < 1 || burst > MAX_BURST ||
	    size < PL_OFF + sizeof(struct lg_payload) ||
	    size > RTE_ETHER_MAX_LEN || (!capacity && nsteps == 0))
		rte_exit(EXIT_FAILURE,
			 "latgen: bad arguments (see --help; size %zu..%d, "
			 "burst 1..%d)\n",
			 PL_OFF + sizeof(struct lg_payload), RTE_ETHER_MAX_LEN,
			 MAX_BURST);
	for (i = 0; i < nsteps; i++)
		if (strcmp(steps[i].mode, "load") == 0 && !capacity)
			rte_exit(EXIT_FAILURE,
				 "latgen: --load needs --capacity\n");
	frame_len = (uint16_t)size;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	hz = rte_get_tsc_hz();
	ns_per_cyc = 1e9 / (double)hz;
	scratch.run = UINT16_MAX; /* never a run's */

	RTE_ETH_FOREACH_DEV (pid) {
		if (n < 2)
			ports[n] = pid;
		n++;
	}
	if (n != 2)
		rte_exit(EXIT_FAILURE,
			 "latgen: need exactly 2 ports, have %u\n", n);
	pool =
	    rte_pktmbuf_pool_create("latgen", NB_MBUFS, MBUF_CACHE, 0,
				    RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (pool == NULL)
		rte_exit(EXIT_FAILURE, "latgen: mbuf pool: %s\n",
			 rte_strerror(rte_errno));
	build_template(0);
	build_template(1);
	for (i = 0; i < 2; i++)
		if (port_init(ports[i]) != 0) {
			rc = 1;
			goto out;
		}
	for (i = 0; i < 2; i++)
		if (wait_link("latgen", ports[i], link_timeout) != 0) {
			rc = 1;
			goto out;
		}
	fprintf(stderr, "latgen: TSC %.3f GHz; links up; learning\n",
		(double)hz / 1e9);
	if (learn(link_timeout) != 0) {
		rc = 1;
		goto out;
	}

	if (capacity) {
		cap = measure("capacity", 0, 0, secs, warmup, MAX_BURST);
		if (!quit && cap <= 0) {
			fprintf(stderr, "latgen: capacity 0: nothing came "
					"through\n");
			rc = 1;
			goto out;
		}
	}
	for (i = 0; i < nsteps && !quit; i++) {
		if (strcmp(steps[i].mode, "load") == 0) {
			pps = cap * steps[i].pps / 100;
			measure("load", steps[i].pps, pps, secs, warmup,
				(unsigned int)burst);
		} else {
			measure("rate", 0, steps[i].pps, secs, warmup,
				(unsigned int)burst);
		}
	}
	if (quit)
		rc = 1;
out:
	for (i = 0; i < 2; i++) {
		rte_eth_dev_stop(ports[i]);
		rte_eth_dev_close(ports[i]);
	}
	rte_eal_cleanup();
	return rc;
}
