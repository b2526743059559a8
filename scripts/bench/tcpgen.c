/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd-tcpgen: TCP payload throughput through a vhost-user switch, for
 * scripts/bench.sh --tcp.
 *
 * Two net_virtio_user ports on one lcore act as the two ends of one TCP
 * stream, port 0 the sender (its MAC ..:01, 198.18.0.1:40000) and port 1
 * the receiver (..:02, 198.18.0.2:5201). The data frames circulate: what
 * port 1 receives is counted (TCP payload bytes, from the IPv4 and TCP
 * headers) and sent again on port 0, with the next sequence number and IP
 * id, so the generator never builds or copies a payload after injecting
 * it, and the frames go round generator -> switch p0 -> p1 -> generator
 * for as long as the run lasts. The switch does what it does for any
 * guest: copies each frame out of the sender's ring and into the
 * receiver's (librte_vhost), and whatever its offloads need.
 *
 *   --mode tso: like a guest with offloads. Both ports ask for every
 *     offload (tx TCP_TSO + TCP_CKSUM: virtio HOST_TSO4/6 + CSUM; rx
 *     TCP_LRO + TCP_CKSUM: GUEST_TSO4/6 + GUEST_CSUM) and fail if the switch
 *     does not offer them. Port 0 sends super-frames of --segs x --mss
 *     payload bytes (44 x 1448 = 63712, a 63778-byte frame) with
 *     RTE_MBUF_F_TX_TCP_SEG | TX_TCP_CKSUM | TX_IPV4, l2/l3/l4 lengths and
 *     tso_segsz = mss, the TCP checksum field holding the pseudo-header
 *     sum (DPDK's convention for TSO: without the length): virtio_user
 *     gives the switch a virtio-net header with gso_type TCPV4,
 *     gso_size = mss and NEEDS_CSUM. Port 1 takes whatever comes (the
 *     super-frame whole into one 64 KiB buffer, or segments) and counts
 *     its payload; a frame with more payload than mss goes out again as a
 *     super-frame, anything else as a frame with a partial checksum.
 *   --mode mtu: like a guest without offloads: no offload asked for,
 *     1514-byte frames (mss 1448 + 66 bytes of headers) with complete IPv4
 *     and TCP checksums (updated incrementally for the new sequence number
 *     and IP id at every round, as the payload does not change).
 *
 * Receive buffers: one 64 KiB buffer per descriptor in tso mode (the
 * ports ask for no mergeable rx buffers: mrg_rxbuf=0 in the devargs, as
 * vhostd offers none and the same endpoint is wanted against every
 * switch), 2 KiB in mtu mode, reused in FIFO order (see NB_BIG_TSO).
 *
 * ACKs: port 1 sends one 66-byte pure ACK (complete checksums) to port 0
 * per --ack-bytes of payload received (default 65536: about one per
 * super-frame, what a Linux receiver with GRO sends), so the switch also
 * carries the reverse direction of a TCP stream; port 0 counts and frees
 * them.
 *
 * First both directions are learnt (a few ACKs from port 1 until one
 * reaches port 0, then a few empty segments from port 0 until one reaches
 * port 1), so a learning bridge forwards known unicast from the start;
 * then the counters are zeroed and the state says ready.
 *
 * Control and counters are in a shared file (--shm PATH, created and sized
 * by the caller, at least TG_SHM_SIZE bytes): an array of little-endian
 * uint64 (TG_NF of them, their names as a space-separated line at offset
 * TG_NAMES_OFF), which the lcore updates in place (plain stores, read by
 * bench/tcp.py whenever it likes) and where the caller writes
 * target_segs: the generator injects frames until it has injected that
 * many segments' worth (one frame in mtu mode, --segs per super-frame in
 * tso mode). Frames the port refuses (ring full) are freed and counted,
 * not injected again: the loop keeps what the rings hold.
 *
 *   vhd-tcpgen EAL... --vdev net_virtio_user0,path=P0,mrg_rxbuf=0 \
 *       --vdev net_virtio_user1,path=P1,mrg_rxbuf=0 -- \
 *       --mode tso|mtu --shm PATH [--mss N] [--segs N] [--ack-bytes N]
 *       [--check] [--link-timeout S]
 *
 * --check: every received data frame's IPv4 header checksum, and its TCP
 * checksum unless the port marked it partial (RTE_MBUF_F_RX_L4_CKSUM_NONE),
 * are verified and its payload length checked (rx_bad_* counters); costs
 * a pass over each frame, so for functional runs, not for measurements.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include "genutil.h"

#define TG_MAGIC     0x315047504354ULL /* "TCPGP1" */
#define TG_SHM_SIZE  8192
#define TG_NAMES_OFF 2048
#define NB_DESC	     1024
#define BURST	     32
#define BIG_BUF	     65535 /* data room of a tso-mode rx buffer (uint16_t) */
/*
 * The data frames' buffers, taken and returned in FIFO order (no per-lcore
 * cache, a ring): each is reused only after all the others, so the
 * memory the switch copies from and into turns over the whole pool, and
 * about as many bytes in both modes: tso's receive ring alone is 1024
 * buffers of 64 KiB, 2047 of them turn over 131 MB of frames; mtu's
 * 65535 of 2 KiB, 99 MB of 1514-byte frames (with a cache, mtu's frames
 * would stay in a few MB, in the switch core's L2, tso's not). Port 0's
 * used tx descriptors are reclaimed once 64 are (TX_FREE_THRESH), so few
 * tso buffers wait there.
 */
#define NB_BIG_TSO     2047
#define NB_BIG_MTU     65535
#define NB_SMALL       4095 /* ACKs and the learning frames */
#define TX_FREE_THRESH (NB_DESC - 64)
#define SPORT	       40000
#define DPORT	       5201
#define L2_LEN	       ((uint16_t)sizeof(struct rte_ether_hdr))
#define L3_LEN	       ((uint16_t)sizeof(struct rte_ipv4_hdr))
#define L4_LEN	       ((uint16_t)(sizeof(struct rte_tcp_hdr) + 12)) /* +ts */
#define HDRS	       (L2_LEN + L3_LEN + L4_LEN)		     /* 66 */
#define STALL_US       100 /* a loop this long was preempted, not working */

/* the shared counters, in this order (F_<NAME>), their names in tg_names */
#define TG_FIELDS(X)                                                 \
	X(MAGIC, magic)                                              \
	/* 0 starting, 1 links up, 2 ready, 3 error, 4 exited */     \
	X(STATE, state)                                              \
	X(TARGET_SEGS, target_segs) /* written by the caller */      \
	X(TSC_HZ, tsc_hz)                                            \
	X(MODE_TSO, mode_tso)                                        \
	X(MSS, mss)                                                  \
	X(SEGS, segs)                                                \
	X(OFFLOADS, offloads) /* bits: see offload_bits() */         \
	X(TSC, tsc)	      /* rdtsc at the last loop */           \
	X(LOOPS, loops)                                              \
	X(BUSY_CYCLES, busy_cycles) /* in loops that moved frames */ \
	X(IDLE_CYCLES, idle_cycles)                                  \
	/* loops longer than STALL_US (preempted), in neither */     \
	X(STALL_CYCLES, stall_cycles)                                \
	X(STALLS, stalls)                                            \
	X(INJ_FRAMES, inj_frames)                                    \
	X(INJ_SEGS, inj_segs)                                        \
	X(INJ_FAIL, inj_fail)                                        \
	X(RX_FRAMES, rx_frames) /* data frames on port 1 */          \
	X(RX_BYTES, rx_bytes)                                        \
	X(RX_PAYLOAD, rx_payload)                                    \
	X(RX_SUPER, rx_super) /* more payload than mss */            \
	X(RX_SEGS, rx_segs)   /* payload in mss segments */          \
	X(RX_LRO, rx_lro)                                            \
	X(RX_CSUM_PARTIAL, rx_csum_partial)                          \
	X(RX_OTHER, rx_other)                                        \
	X(RX_BAD_IP_CSUM, rx_bad_ip_csum)                            \
	X(RX_BAD_TCP_CSUM, rx_bad_tcp_csum)                          \
	X(RX_BAD_LEN, rx_bad_len)                                    \
	X(TX_FRAMES, tx_frames)                                      \
	X(TX_FAIL, tx_fail)                                          \
	X(ACK_TX, ack_tx)                                            \
	X(ACK_TX_FAIL, ack_tx_fail)                                  \
	X(ACK_RX, ack_rx)                                            \
	X(ACK_RX_OTHER, ack_rx_other)

#define TG_ENUM(e, n) F_##e,
#define TG_NAME(e, n) #n,
enum { TG_FIELDS(TG_ENUM) TG_NF };
static const char *const tg_names[TG_NF] = {TG_FIELDS(TG_NAME)};

enum { ST_START, ST_LINKS, ST_READY, ST_ERROR, ST_EXITED };

static volatile uint64_t *v; /* the shared counters */
static struct rte_mempool *big, *small;
static uint16_t port[2]; /* [0] sends data, [1] receives it */
static bool tso, check;
static uint16_t mss = 1448, segs = 44;
static uint32_t ack_bytes = 65536;
static uint32_t seq = 1;
static uint16_t ip_id;
static uint8_t data_hdr[HDRS];	  /* port 0 -> port 1, no lengths/checksums */
static uint8_t ack_frame[HDRS];	  /* port 1 -> port 0, complete */
static uint8_t probe_frame[HDRS]; /* port 0 -> port 1, no payload, complete */

static const uint8_t mac[2][RTE_ETHER_ADDR_LEN] = {{0, 0, 0, 0, 0, 1},
						   {0, 0, 0, 0, 0, 2}};

/* Ethernet, IPv4 (DF, TTL 64), TCP with a timestamp option, from side s
 * (0 or 1) to the other: the headers of every frame this sends */
static void build_hdrs(uint8_t *f, int s, uint8_t tcp_flags)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);
	uint8_t *opt = (uint8_t *)(tcp + 1);

	memset(f, 0, HDRS);
	memcpy(eth->dst_addr.addr_bytes, mac[!s], RTE_ETHER_ADDR_LEN);
	memcpy(eth->src_addr.addr_bytes, mac[s], RTE_ETHER_ADDR_LEN);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	/* 198.18.0.1 <-> 198.18.0.2 (benchmarking range) */
	ip->src_addr = rte_cpu_to_be_32(0xc6120000u | (uint32_t)(1 + s));
	ip->dst_addr = rte_cpu_to_be_32(0xc6120000u | (uint32_t)(2 - s));
	tcp->src_port = rte_cpu_to_be_16(s ? DPORT : SPORT);
	tcp->dst_port = rte_cpu_to_be_16(s ? SPORT : DPORT);
	tcp->sent_seq = rte_cpu_to_be_32(1);
	tcp->recv_ack = rte_cpu_to_be_32(1);
	tcp->data_off = (uint8_t)((L4_LEN / 4) << 4);
	tcp->tcp_flags = tcp_flags;
	tcp->rx_win = rte_cpu_to_be_16(0xffff);
	/* NOP NOP timestamp(TSval, TSecr) */
	opt[0] = 1;
	opt[1] = 1;
	opt[2] = 8;
	opt[3] = 10;
	opt[7] = 1;
	opt[11] = 1;
}

/* a complete frame of headers only (no payload): lengths and checksums */
static void finish_empty(uint8_t *f)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + L2_LEN);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);

	ip->total_length = rte_cpu_to_be_16(L3_LEN + L4_LEN);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	tcp->cksum = 0;
	tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
}

/* ---------------------------------------------------------------- frames */
static struct rte_ipv4_hdr *ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, L2_LEN);
}

static struct rte_tcp_hdr *tcp_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *,
				       L2_LEN + L3_LEN);
}

/* RFC 1624: the checksum after a 32-bit field changed from o to n (both
 * as they are in memory; the sum does not depend on the byte order as long
 * as every word is taken the same way) */
static uint16_t csum_replace4(uint16_t cs, uint32_t o, uint32_t n)
{
	uint32_t s = (uint16_t)~cs;

	s += (uint16_t) ~(uint16_t)o + (uint16_t) ~(uint16_t)(o >> 16);
	s += (uint16_t)n + (uint16_t)(n >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/*
 * Make the data frame m (headers as data_hdr, payload len bytes) ready to
 * go out on port 0 as the next part of the stream: sequence number and IP
 * id advanced, lengths and checksums as the mode wants, offload flags.
 * Its IPv4 total length is already right (set at injection, unchanged by
 * the round through the switch unless the switch segmented it, in which
 * case it is a segment's).
 */
static void prepare_data(struct rte_mbuf *m, uint32_t len)
{
	struct rte_ipv4_hdr *ip = ip_of(m);
	struct rte_tcp_hdr *tcp = tcp_of(m);
	uint32_t oseq = tcp->sent_seq, nseq = rte_cpu_to_be_32(seq);

	seq += len;
	ip->packet_id = rte_cpu_to_be_16(ip_id);
	ip_id = (uint16_t)(ip_id + (len > mss ? (len + mss - 1) / mss : 1));
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	tcp->sent_seq = nseq;
	m->l2_len = L2_LEN;
	m->l3_len = L3_LEN;
	m->l4_len = L4_LEN;
	m->packet_type = 0;
	if (!tso) {
		/* a guest without offloads: complete checksum */
		m->ol_flags = 0;
		tcp->cksum = csum_replace4(tcp->cksum, oseq, nseq);
		return;
	}
	if (len > mss) {
		m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_SEG |
			      RTE_MBUF_F_TX_TCP_CKSUM;
		m->tso_segsz = mss;
	} else {
		m->ol_flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
		m->tso_segsz = 0;
	}
	tcp->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
}

/* a new data frame of len payload bytes (0: the learning probe) */
static struct rte_mbuf *new_data(uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(big);
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *tcp;
	uint8_t *d;
	uint32_t i;

	if (m == NULL)
		return NULL;
	d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(HDRS + len));
	if (d == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	if (len == 0) {
		memcpy(d, probe_frame, HDRS);
		return m;
	}
	memcpy(d, data_hdr, HDRS);
	for (i = 0; i < len; i++)
		d[HDRS + i] = (uint8_t)(i * 7 + 1);
	ip = ip_of(m);
	tcp = tcp_of(m);
	ip->total_length = rte_cpu_to_be_16((uint16_t)(L3_LEN + L4_LEN + len));
	/* the complete checksum for the first sequence number (1, as in the
	 * template); prepare_data() moves it on */
	tcp->cksum = 0;
	if (!tso)
		tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
	prepare_data(m, len);
	return m;
}

static struct rte_mbuf *new_ack(void)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(small);
	char *d;

	if (m == NULL)
		return NULL;
	d = rte_pktmbuf_append(m, HDRS);
	memcpy(d, ack_frame, HDRS);
	return m;
}

/* our data frame (to 198.18.0.2:DPORT)? Its TCP payload length in *len */
static bool parse_data(struct rte_mbuf *m, uint32_t *len)
{
	const struct rte_ether_hdr *eth;
	const struct rte_ipv4_hdr *ip;
	const struct rte_tcp_hdr *tcp;
	uint32_t ihl, doff, tot;

	if (rte_pktmbuf_data_len(m) < HDRS)
		return false;
	eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	ip = (const struct rte_ipv4_hdr *)(eth + 1);
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ip->next_proto_id != IPPROTO_TCP)
		return false;
	ihl = (uint32_t)(ip->version_ihl & 0xf) * 4;
	tcp = (const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
	if (ihl != L3_LEN || tcp->dst_port != rte_cpu_to_be_16(DPORT))
		return false;
	doff = (uint32_t)(tcp->data_off >> 4) * 4;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (doff != L4_LEN || tot < ihl + doff ||
	    tot + L2_LEN > rte_pktmbuf_pkt_len(m))
		return false;
	*len = tot - ihl - doff;
	return true;
}

static bool is_ack(struct rte_mbuf *m)
{
	const struct rte_tcp_hdr *tcp;

	if (rte_pktmbuf_data_len(m) < HDRS)
		return false;
	tcp = tcp_of(m);
	return ip_of(m)->next_proto_id == IPPROTO_TCP &&
	       tcp->dst_port == rte_cpu_to_be_16(SPORT);
}

/* the TCP checksum of m as it should be (0 and 0xffff are the same) */
static bool tcp_csum_ok(struct rte_ipv4_hdr *ip, struct rte_tcp_hdr *tcp)
{
	uint16_t got = tcp->cksum, want;

	tcp->cksum = 0;
	want = rte_ipv4_udptcp_cksum(ip, tcp);
	tcp->cksum = got;
	return got == want ||
	       ((got == 0 || got == 0xffff) && (want == 0 || want == 0xffff));
}

/* --check: one received data frame */
static void check_frame(struct rte_mbuf *m, uint32_t len)
{
	struct rte_ipv4_hdr *ip = ip_of(m);
	struct rte_tcp_hdr *tcp = tcp_of(m);

	if (rte_ipv4_cksum(ip) != 0)
		v[F_RX_BAD_IP_CSUM]++;
	if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) !=
		RTE_MBUF_F_RX_L4_CKSUM_NONE &&
	    m->nb_segs == 1 && !tcp_csum_ok(ip, tcp))
		v[F_RX_BAD_TCP_CSUM]++;
	/* a whole super-frame, or one mss segment (or a last, shorter one) */
	if (len == 0 || (len > mss && len != (uint32_t)mss * segs))
		v[F_RX_BAD_LEN]++;
}

/* ---------------------------------------------------------------- setup */
static uint64_t offload_bits(uint16_t p, uint64_t rx, uint64_t tx)
{
	/* bit 0 tx TSO, 1 tx TCP csum, 2 rx LRO, 3 rx TCP csum; port 1 << 4 */
	uint64_t b = ((tx & RTE_ETH_TX_OFFLOAD_TCP_TSO) ? 1 : 0) |
		     ((tx & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) ? 2 : 0) |
		     ((rx & RTE_ETH_RX_OFFLOAD_TCP_LRO) ? 4 : 0) |
		     ((rx & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) ? 8 : 0);
	return b << (4 * p);
}

static int port_init(int s)
{
	const uint64_t want_rx =
	    RTE_ETH_RX_OFFLOAD_TCP_LRO | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	const uint64_t want_tx =
	    RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	struct rte_eth_dev_info info;
	struct rte_eth_txconf txconf;
	struct rte_eth_conf conf;
	uint16_t p = port[s];
	int ret;

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_info_get(p, &info);
	if (ret != 0)
		goto fail;
	fprintf(stderr,
		"tcpgen: port %u: the switch offers rx offloads 0x%" PRIx64
		" tx offloads 0x%" PRIx64 "\n",
		p, info.rx_offload_capa, info.tx_offload_capa);
	if (tso) {
		/* a guest with offloads asks for all of them, on both ports */
		if ((info.rx_offload_capa & want_rx) != want_rx ||
		    (info.tx_offload_capa & want_tx) != want_tx) {
			fprintf(stderr,
				"tcpgen: port %u: --mode tso, but the switch "
				"does not offer TSO and checksum offload "
				"(virtio HOST_TSO4/6 + CSUM, GUEST_TSO4/6 + "
				"GUEST_CSUM)\n",
				p);
			return -ENOTSUP;
		}
		conf.rxmode.offloads = want_rx;
		conf.txmode.offloads = want_tx;
	}
	txconf = info.default_txconf;
	txconf.tx_free_thresh = TX_FREE_THRESH;
	ret = rte_eth_dev_configure(p, 1, 1, &conf);
	if (ret == 0)
		/* port 0 receives only ACKs: small buffers */
		ret = rte_eth_rx_queue_setup(p, 0, NB_DESC,
					     rte_eth_dev_socket_id(p), NULL,
					     s == 1 ? big : small);
	if (ret == 0)
		ret = rte_eth_tx_queue_setup(p, 0, NB_DESC,
					     rte_eth_dev_socket_id(p), &txconf);
	if (ret == 0)
		ret = rte_eth_dev_start(p);
	if (ret == 0) {
		v[F_OFFLOADS] |= offload_bits((uint16_t)s, conf.rxmode.offloads,
					      conf.txmode.offloads);
		return 0;
	}
fail:
	fprintf(stderr, "tcpgen: port %u: setup failed: %s\n", p,
		rte_strerror(-ret));
	return ret;
}

/* free everything port side s has received; how many were from the other
 * side (an ACK on port 0, a data frame on port 1) */
static unsigned int drain_port(int s)
{
	struct rte_mbuf *m[BURST];
	unsigned int got = 0;
	uint32_t len;
	uint16_t i, n;

	n = rte_eth_rx_burst(port[s], 0, m, BURST);
	for (i = 0; i < n; i++)
		if (s == 0 ? is_ack(m[i]) : parse_data(m[i], &len))
			got++;
	rte_pktmbuf_free_bulk(m, n);
	return got;
}

/*
 * Learning and readiness, as vhd-latgen's: ACKs from port 1 (:02 -> :01)
 * every 100 ms until one reaches port 0 (a learning bridge learns :02 on
 * p1), then empty segments from port 0 until one reaches port 1 (:01 on
 * p0, forwarded as known unicast): both directions forward. Then drain.
 */
static int learn(double timeout)
{
	struct rte_mbuf *m;
	uint64_t end, wait;
	unsigned int got;
	int s;

	for (s = 1; s >= 0; s--) {
		end = rte_rdtsc() + cyc_of(timeout);
		got = 0;
		while (!quit && got == 0) {
			if (rte_rdtsc() > end) {
				fprintf(stderr,
					"tcpgen: nothing from port %d reached "
					"port %d within %.0f s\n",
					s, !s, timeout);
				return -1;
			}
			m = s == 1 ? new_ack() : new_data(0);
			if (m != NULL &&
			    rte_eth_tx_burst(port[s], 0, &m, 1) != 1)
				rte_pktmbuf_free(m);
			wait = rte_rdtsc() + cyc_of(0.1);
			while (!quit && got == 0 && rte_rdtsc() < wait) {
				got = drain_port(!s);
				drain_port(s);
			}
		}
	}
	wait = rte_rdtsc() + cyc_of(0.05);
	while (!quit && rte_rdtsc() < wait) {
		drain_port(0);
		drain_port(1);
	}
	return quit ? -1 : 0;
}

/* ---------------------------------------------------------------- loop */
static uint16_t inject(void)
{
	struct rte_mbuf *m[BURST];
	uint64_t per = tso ? segs : 1;
	uint64_t due = v[F_TARGET_SEGS] > v[F_INJ_SEGS]
			   ? (v[F_TARGET_SEGS] - v[F_INJ_SEGS] + per - 1) / per
			   : 0;
	uint16_t n = 0, sent;

	due = RTE_MIN(due, (uint64_t)BURST);
	while (n < due) {
		m[n] = new_data((uint32_t)mss * (uint32_t)per);
		if (m[n] == NULL)
			break;
		n++;
	}
	if (n < due)
		v[F_INJ_FAIL] += due - n;
	/* counted as injected even when the ring refuses them: the target
	 * is met, what did not fit is lost, as tx_first's excess */
	v[F_INJ_FRAMES] += due;
	v[F_INJ_SEGS] += due * per;
	if (n == 0)
		return 0;
	sent = rte_eth_tx_burst(port[0], 0, m, n);
	if (sent < n) {
		v[F_INJ_FAIL] += n - sent;
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	}
	return n;
}

static void run(void)
{
	struct rte_mbuf *rx[BURST], *tx[BURST], *acks[BURST], *ackrx[BURST];
	uint64_t prev = rte_rdtsc(), now, ack_acc = 0;
	const uint64_t stall = hz * STALL_US / 1000000;
	uint32_t len;
	uint16_t i, n, nt, na, sent, moved;

	while (!quit) {
		moved = inject();

		/* port 1: data in, counted, out again on port 0 */
		n = rte_eth_rx_burst(port[1], 0, rx, BURST);
		nt = 0;
		if (n > 0) {
			/* counted here, published once per burst (the
			 * shared counters are volatile) */
			uint64_t bytes = 0, payload = 0, nseg = 0, super = 0,
				 lro = 0, partial = 0;

			for (i = 0; i < n; i++) {
				struct rte_mbuf *m = rx[i];

				if (!parse_data(m, &len)) {
					v[F_RX_OTHER]++;
					rte_pktmbuf_free(m);
					continue;
				}
				payload += len;
				if (len > mss) {
					nseg += (len + mss - 1) / mss;
					super++;
				} else {
					nseg++;
				}
				if (m->ol_flags & RTE_MBUF_F_RX_LRO)
					lro++;
				if ((m->ol_flags &
				     RTE_MBUF_F_RX_L4_CKSUM_MASK) ==
				    RTE_MBUF_F_RX_L4_CKSUM_NONE)
					partial++;
				if (check)
					check_frame(m, len);
				bytes += rte_pktmbuf_pkt_len(m);
				prepare_data(m, len);
				tx[nt++] = m;
			}
			ack_acc += payload;
			v[F_RX_FRAMES] += nt;
			v[F_RX_BYTES] += bytes;
			v[F_RX_PAYLOAD] += payload;
			v[F_RX_SEGS] += nseg;
			v[F_RX_SUPER] += super;
			v[F_RX_LRO] += lro;
			v[F_RX_CSUM_PARTIAL] += partial;
		}
		if (nt > 0) {
			sent = rte_eth_tx_burst(port[0], 0, tx, nt);
			v[F_TX_FRAMES] += sent;
			if (sent < nt) {
				v[F_TX_FAIL] += nt - sent;
				rte_pktmbuf_free_bulk(tx + sent, nt - sent);
			}
		}

		/* ACKs: port 1 -> port 0 */
		na = 0;
		while (ack_bytes > 0 && ack_acc >= ack_bytes && na < BURST) {
			acks[na] = new_ack();
			if (acks[na] == NULL)
				break;
			na++;
			ack_acc -= ack_bytes;
		}
		if (ack_bytes == 0)
			ack_acc = 0;
		if (na > 0) {
			sent = rte_eth_tx_burst(port[1], 0, acks, na);
			v[F_ACK_TX] += sent;
			if (sent < na) {
				v[F_ACK_TX_FAIL] += na - sent;
				rte_pktmbuf_free_bulk(acks + sent, na - sent);
			}
		}
		na = rte_eth_rx_burst(port[0], 0, ackrx, BURST);
		for (i = 0; i < na; i++) {
			if (is_ack(ackrx[i]))
				v[F_ACK_RX]++;
			else
				v[F_ACK_RX_OTHER]++;
		}
		if (na > 0)
			rte_pktmbuf_free_bulk(ackrx, na);

		moved += n + na;
		now = rte_rdtsc();
		if (now - prev > stall) {
			v[F_STALL_CYCLES] += now - prev;
			v[F_STALLS]++;
		} else if (moved > 0) {
			v[F_BUSY_CYCLES] += now - prev;
		} else {
			v[F_IDLE_CYCLES] += now - prev;
		}
		v[F_LOOPS]++;
		v[F_TSC] = now;
		prev = now;
	}
}

/* ---------------------------------------------------------------- main */
static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s EAL-OPTIONS -- --mode tso|mtu --shm PATH [--mss N] "
		"[--segs N]\n"
		"       [--ack-bytes N] [--check] [--link-timeout S]\n"
		"Two ports (net_virtio_user vdevs, mrg_rxbuf=0): TCP data goes "
		"out on the\nfirst, comes back on the second and goes round "
		"again.\n",
		prog);
}

static volatile uint64_t *map_shm(const char *path)
{
	void *p;
	int fd = open(path, O_RDWR);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < TG_SHM_SIZE) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = mmap(NULL, TG_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"mode", required_argument, NULL, 'm'},
	    {"shm", required_argument, NULL, 's'},
	    {"mss", required_argument, NULL, 'S'},
	    {"segs", required_argument, NULL, 'n'},
	    {"ack-bytes", required_argument, NULL, 'a'},
	    {"check", no_argument, NULL, 'c'},
	    {"link-timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *shm = NULL, *mode = NULL;
	double link_timeout = 30;
	unsigned long x;
	char *names;
	size_t off = 0;
	uint16_t pid, n = 0;
	int opt, ret, i, rc = 0, started = 0;

	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "tcpgen: EAL init failed\n");
	argc -= ret;
	argv += ret;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			mode = optarg;
			break;
		case 's':
			shm = optarg;
			break;
		case 'S':
		case 'n':
			x = strtoul(optarg, NULL, 10);
			if (x < 1 || x > 9000)
				rte_exit(EXIT_FAILURE, "tcpgen: bad --%s\n",
					 opt == 'S' ? "mss" : "segs");
			if (opt == 'S')
				mss = (uint16_t)x;
			else
				segs = (uint16_t)x;
			break;
		case 'a':
			ack_bytes = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			check = true;
			break;
		case 't':
			link_timeout = strtod(optarg, NULL);
			break;
		default:
			usage(argv[0]);
			rte_exit(opt == 'h' ? 0 : EXIT_FAILURE, "\n");
		}
	}
	if (mode == NULL || shm == NULL ||
	    (strcmp(mode, "tso") != 0 && strcmp(mode, "mtu") != 0)) {
		usage(argv[0]);
		rte_exit(EXIT_FAILURE, "tcpgen: --mode tso|mtu and --shm\n");
	}
	tso = strcmp(mode, "tso") == 0;
	if (!tso)
		segs = 1;
	/* a super-frame must fit one rx buffer (with the virtio-net header)
	 * and an IPv4 total length */
	if (HDRS + (uint32_t)mss * segs > BIG_BUF - RTE_PKTMBUF_HEADROOM - 12 ||
	    L3_LEN + L4_LEN + (uint32_t)mss * segs > UINT16_MAX ||
	    (!tso && HDRS + mss > RTE_MBUF_DEFAULT_DATAROOM))
		rte_exit(EXIT_FAILURE,
			 "tcpgen: --mss x --segs too large for one frame\n");
	v = map_shm(shm);
	if (v == NULL)
		rte_exit(EXIT_FAILURE, "tcpgen: --shm %s: %s\n", shm,
			 strerror(errno));
	names = (char *)v + TG_NAMES_OFF;
	for (i = 0; i < TG_NF; i++)
		off += (size_t)snprintf(names + off,
					TG_SHM_SIZE - TG_NAMES_OFF - off,
					"%s%s", i ? " " : "", tg_names[i]);
	hz = rte_get_tsc_hz();
	v[F_TSC_HZ] = hz;
	v[F_MODE_TSO] = tso;
	v[F_MSS] = mss;
	v[F_SEGS] = segs;
	v[F_MAGIC] = TG_MAGIC;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	build_hdrs(data_hdr, 0, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
	build_hdrs(probe_frame, 0, RTE_TCP_ACK_FLAG);
	finish_empty(probe_frame);
	build_hdrs(ack_frame, 1, RTE_TCP_ACK_FLAG);
	finish_empty(ack_frame);

	RTE_ETH_FOREACH_DEV (pid) {
		if (n < 2)
			port[n] = pid;
		n++;
	}
	if (n != 2) {
		fprintf(stderr, "tcpgen: need exactly 2 ports, have %u\n", n);
		rc = 1;
		goto out;
	}
	big = rte_pktmbuf_pool_create_by_ops(
	    "tg_big", tso ? NB_BIG_TSO : NB_BIG_MTU, 0, 0,
	    tso ? BIG_BUF : RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id(),
	    "ring_sp_sc");
	small =
	    rte_pktmbuf_pool_create("tg_small", NB_SMALL, 128, 0,
				    RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (big == NULL || small == NULL) {
		fprintf(stderr, "tcpgen: mbuf pools: %s\n",
			rte_strerror(rte_errno));
		rc = 1;
		goto out;
	}
	for (i = 0; i < 2; i++) {
		if (port_init(i) != 0) {
			rc = 1;
			goto out;
		}
		started = i + 1;
	}
	for (i = 0; i < 2; i++)
		if (wait_link("tcpgen", port[i], link_timeout) != 0) {
			rc = 1;
			goto out;
		}
	v[F_STATE] = ST_LINKS;
	if (learn(link_timeout) != 0) {
		rc = 1;
		goto out;
	}
	/* the learning frames are not counted */
	for (i = F_TSC; i < TG_NF; i++)
		v[i] = 0;
	fprintf(stderr,
		"tcpgen: ready: mode %s, mss %u, %u segments per frame (%u "
		"bytes), offloads 0x%" PRIx64 ", TSC %.3f GHz\n",
		tso ? "tso" : "mtu", mss, segs, HDRS + mss * segs,
		v[F_OFFLOADS], (double)hz / 1e9);
	v[F_STATE] = ST_READY;
	run();
out:
	if (rc != 0)
		v[F_STATE] = ST_ERROR;
	for (i = 0; i < started; i++) {
		rte_eth_dev_stop(port[i]);
		rte_eth_dev_close(port[i]);
	}
	if (rc == 0)
		v[F_STATE] = ST_EXITED;
	munmap((void *)v, TG_SHM_SIZE);
	rte_eal_cleanup();
	return rc;
}
