/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp/offload.c: checksum and segmentation offloads, turned from what the
 * sender asked into what each egress port can take.
 *
 * A frame leaves rx in one of three states, marked in its mbuf with the
 * DPDK tx flags a PMD reads (so librte_vhost's enqueue and an ethdev with
 * the offload take it as is):
 *  - plain (no flag): complete checksums, at most one MTU: the 64-byte
 *    fast path; nothing here runs for it;
 *  - partial (RTE_MBUF_F_TX_TCP_CKSUM or _UDP_CKSUM): its TCP/UDP checksum
 *    field holds the pseudo-header sum only (a guest's NEEDS_CSUM, or what
 *    the kernel hands an af_packet socket from a veth);
 *  - super-frame (RTE_MBUF_F_TX_TCP_SEG, tso_segsz the sender's MSS, and
 *    partial): a guest's TSO frame, up to 64 KiB.
 * Per egress port and frame, vhd_offload_tx then passes it on as it is
 * where the port negotiated (vhost) or enabled (ethdev) the offload, or
 * segments it (librte_gso for TCP/IPv4) and completes the checksums in
 * software. The headers are parsed again there: the bridge may have
 * retagged the frame since rx.
 *
 * A flooded frame is one mbuf shared by its destinations (dp/bridge.c):
 * the data of a shared mbuf is never written here, except by what writes
 * the same bytes for every destination (librte_vhost and rte_eth_tx_prepare
 * store the pseudo-header sum); a checksum completed in software goes into
 * a copy unless the mbuf is ours alone, and segments get headers of their
 * own.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <linux/virtio_net.h>

#include <rte_ethdev.h>
#include <rte_gso.h>
#include <rte_ip.h>
#include <rte_net.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "vhd.h"
#include "vhd_offload.h"

#define TX_OFFL_FLAGS                                                         \
	(RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4 | \
	 RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_IP_CKSUM)

/* The headers of a TCP or UDP frame over IPv4 or IPv6. */
struct hdrs {
	uint16_t l2, l3, l4; /* lengths, bytes (l3: with IPv6 extensions) */
	bool v6, tcp;
	uint32_t ip_end; /* offset of the end of the IP datagram, bytes */
};

/* Parse M's headers into H. 0 for TCP or UDP over IPv4 or IPv6 (not a
 * fragment) with every header in its first segment and the IP datagram
 * within the frame and no shorter than its headers. For TCP or UDP
 * otherwise: -EMSGSIZE if the IP datagram runs past the frame (cut short),
 * -EINVAL for a header that lies about itself, -ERANGE for headers longer than
 * the mbuf's l2_len/l3_len fields hold (IPv6 extension headers past 471 bytes);
 * -ENOENT for anything else. */
static int parse(const struct rte_mbuf *m, struct hdrs *h)
{
	struct rte_net_hdr_lens hl;
	uint32_t pt = rte_net_get_ptype(
	    m, &hl, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK | RTE_PTYPE_L4_MASK);
	uint32_t l4 = pt & RTE_PTYPE_L4_MASK;
	const uint8_t *l3;

	if (l4 != RTE_PTYPE_L4_TCP && l4 != RTE_PTYPE_L4_UDP)
		return -ENOENT;
	h->l2 = (uint16_t)hl.l2_len;
	h->l3 = (uint16_t)hl.l3_len;
	h->l4 = (uint16_t)hl.l4_len;
	h->tcp = l4 == RTE_PTYPE_L4_TCP;
	h->v6 = RTE_ETH_IS_IPV6_HDR(pt);
	if ((uint32_t)h->l2 + h->l3 + h->l4 > rte_pktmbuf_data_len(m))
		return -EINVAL;
	l3 = rte_pktmbuf_mtod_offset(m, const uint8_t *, h->l2);
	/* rte_net_get_ptype names the L4 of a header it did not check:
	 * an IP version that is not the ethertype's, an IPv4 header
	 * shorter than 20 bytes, a TCP header shorter than 20. */
	if ((!RTE_ETH_IS_IPV4_HDR(pt) && !h->v6) ||
	    (l3[0] >> 4) != (h->v6 ? 6 : 4) ||
	    (!h->v6 && h->l3 < sizeof(struct rte_ipv4_hdr)) ||
	    (h->tcp && h->l4 < sizeof(struct rte_tcp_hdr)))
		return -EINVAL;
	if (h->l2 > 127 || h->l3 > 511) /* 7 and 9 bits in the mbuf */
		return -ERANGE;
	if (h->v6)
		h->ip_end = h->l2 + (uint32_t)sizeof(struct rte_ipv6_hdr) +
			    rte_be_to_cpu_16(
				((const struct rte_ipv6_hdr *)(const void *)l3)
				    ->payload_len);
	else
		h->ip_end =
		    h->l2 + (uint32_t)rte_be_to_cpu_16(
				((const struct rte_ipv4_hdr *)(const void *)l3)
				    ->total_length);
	if (h->ip_end > rte_pktmbuf_pkt_len(m))
		return -EMSGSIZE;
	if (h->ip_end < (uint32_t)h->l2 + h->l3 + h->l4)
		return -EINVAL;
	return 0;
}

/* The pseudo-header sum (not folded to 16 bits, not complemented) of a
 * TCP/UDP datagram of LEN bytes under IP header L3. Written out rather
 * than rte_ipv6_phdr_cksum(), which takes the length from payload_len and
 * so is wrong with extension headers. */
static uint32_t pseudo_sum(const char *l3, const struct hdrs *h, uint32_t len)
{
	uint8_t proto = h->tcp ? IPPROTO_TCP : IPPROTO_UDP;
	uint32_t sum;

	if (h->v6) {
		const struct rte_ipv6_hdr *ip = (const void *)l3;

		sum = __rte_raw_cksum(
		    (const char *)ip + offsetof(struct rte_ipv6_hdr, src_addr),
		    32, 0);
		sum += rte_cpu_to_be_16((uint16_t)(len >> 16)) +
		       rte_cpu_to_be_16((uint16_t)len);
	} else {
		const struct rte_ipv4_hdr *ip = (const void *)l3;

		sum = __rte_raw_cksum(
		    (const char *)ip + offsetof(struct rte_ipv4_hdr, src_addr),
		    8, 0);
		sum += rte_cpu_to_be_16((uint16_t)len);
	}
	return sum + rte_cpu_to_be_16(proto);
}

static inline uint16_t fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The L4 checksum field of M (headers H). */
static inline rte_be16_t *csum_field(struct rte_mbuf *m, const struct hdrs *h)
{
	return rte_pktmbuf_mtod_offset(m, rte_be16_t *,
				       h->l2 + h->l3 + (h->tcp ? 16 : 6));
}

/* The one's complement sum, folded, of LEN bytes of M from OFF, across
 * its segments. Not rte_raw_cksum_mbuf(): in DPDK 22.11 it truncates the
 * sum of a segment that starts at an odd offset to 16 bits before
 * swapping its bytes, losing the carries (a librte_gso segment with an
 * odd MSS got a wrong checksum). */
static uint16_t raw_sum(const struct rte_mbuf *m, uint32_t off, uint32_t len)
{
	uint32_t sum = 0, done = 0;

	while (m != NULL && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	for (; m != NULL && len; m = m->next, off = 0) {
		uint32_t n = RTE_MIN(len, (uint32_t)m->data_len - off);
		uint16_t part = fold(__rte_raw_cksum(
		    rte_pktmbuf_mtod_offset(m, const char *, off), n, 0));

		/* A piece that starts at an odd offset has its bytes in the
		 * other halves of the 16-bit words. */
		sum += done & 1 ? rte_bswap16(part) : part;
		done += n;
		len -= n;
	}
	return fold(sum);
}

/* The one's complement sum of M's TCP/UDP datagram (headers H, length
 * from its IP header) with its pseudo-header, folded. */
static uint16_t l4_sum(const struct rte_mbuf *m, const struct hdrs *h)
{
	const char *l3 = rte_pktmbuf_mtod_offset(m, const char *, h->l2);
	uint32_t len = h->ip_end - h->l2 - h->l3;

	return fold(pseudo_sum(l3, h, len) + raw_sum(m, h->l2 + h->l3, len));
}

/* Complete M's checksums in software: IPv4 header's (IP_TOO) and
 * TCP/UDP's. M is ours alone. */
static void fill_csum(struct rte_mbuf *m, const struct hdrs *h, bool ip_too)
{
	rte_be16_t *f = csum_field(m, h);
	uint16_t c;

	if (ip_too && !h->v6) {
		struct rte_ipv4_hdr *ip =
		    rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, h->l2);

		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
	*f = 0;
	c = (uint16_t)~l4_sum(m, h);
	/* RFC 768: a UDP checksum that comes out 0 is sent as all ones. */
	if (c == 0 && !h->tcp)
		c = 0xffff;
	*f = c;
	m->ol_flags &= ~TX_OFFL_FLAGS;
}

/* ---- rx ---------------------------------------------------------------- */

/* One frame a guest sent with offload marks (librte_vhost's compliant
 * flags): made partial or a super-frame, as the top of this file says.
 * false if the request is one vhostd refuses (drop_bad_offload). */
static bool rx_guest_frame(struct vhd_port_stats *st, struct rte_mbuf *m)
{
	uint64_t f = m->ol_flags;
	bool lro = f & RTE_MBUF_F_RX_LRO;
	uint32_t len = rte_pktmbuf_pkt_len(m), hdr, payload;
	struct hdrs h;

	m->ol_flags = f & ~(RTE_MBUF_F_RX_LRO | RTE_MBUF_F_RX_L4_CKSUM_MASK);
	if (!lro &&
	    (f & RTE_MBUF_F_RX_L4_CKSUM_MASK) != RTE_MBUF_F_RX_L4_CKSUM_NONE)
		return true;
	if (parse(m, &h) < 0)
		return false;
	if (lro) {
		/* GSO of UDP (UFO, never offered), a GSO size larger than
		 * the frame, an IP length that is not the frame's. */
		if (!h.tcp || m->tso_segsz == 0 || m->tso_segsz > len ||
		    h.ip_end != len)
			return false;
		hdr = (uint32_t)h.l2 + h.l3 + h.l4;
		payload = len - hdr;
		/* One segment's worth: a plain frame (with a partial
		 * checksum). */
		if (payload > m->tso_segsz) {
			if ((payload + m->tso_segsz - 1) / m->tso_segsz >
			    VHD_GSO_MAX_SEGS)
				return false;
			m->ol_flags |= RTE_MBUF_F_TX_TCP_SEG;
			st->rx_tso++;
		}
	}
	m->ol_flags |=
	    h.tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
	st->rx_csum_partial++;
	return true;
}

/* One frame from an af_packet port. The kernel hands a packet socket what
 * a veth (or a local socket) carried, with the checksum partial when the
 * sender left it to an offload (the socket's TP_STATUS_CSUMNOTREADY, which
 * DPDK 22.11's af_packet PMD does not read): a TCP/UDP checksum that does
 * not verify but holds exactly the pseudo-header sum is partial. A frame
 * whose IP datagram runs past its end was cut to the ring's frame size
 * (a GSO frame from the kernel): false, drop_invalid. */
static bool rx_kernel_frame(struct vhd_port_stats *st, struct rte_mbuf *m)
{
	struct hdrs h;
	rte_be16_t f;
	int rc = parse(m, &h);

	if (rc < 0) /* cut short, or not one to look at: as it came */
		return rc != -EMSGSIZE;
	f = *csum_field(m, &h);
	if (!h.tcp && !h.v6 && f == 0) /* UDP/IPv4 without a checksum */
		return true;
	if (l4_sum(m, &h) == 0xffff)
		return true;
	if (f != fold(pseudo_sum(rte_pktmbuf_mtod_offset(m, const char *, h.l2),
				 &h, h.ip_end - h.l2 - h.l3)))
		return true; /* a bad checksum: the receiver's to drop */
	m->ol_flags |=
	    h.tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
	st->rx_csum_partial++;
	return true;
}

uint16_t vhd_offload_rx(struct vhd_lcore *lc, struct vhd_port *p,
			struct rte_mbuf **pkts, uint16_t n, struct vhd_burst *b)
{
	struct vhd_port_stats *st = &lc->stats[p->idx];
	bool guest = p->type == VHD_PORT_VHOST;
	uint16_t k = 0;

	b->offl = false;
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (guest ? rx_guest_frame(st, m) : rx_kernel_frame(st, m)) {
			b->offl |= (m->ol_flags & TX_OFFL_FLAGS) != 0;
			pkts[k++] = m;
			continue;
		}
		st->drop[guest ? VHD_DROP_BAD_OFFLOAD : VHD_DROP_INVALID]++;
		b->bytes -= rte_pktmbuf_pkt_len(m);
		rte_pktmbuf_free(m);
	}
	return k;
}

/* ---- tx ---------------------------------------------------------------- */

/* M, ours alone to write: M itself if no other reference sees its data,
 * else a copy (and M's reference dropped); NULL if no mbuf was left. */
static struct rte_mbuf *own(struct vhd_lcore *lc, struct rte_mbuf *m)
{
	struct rte_mbuf *c;

	for (const struct rte_mbuf *s = m; s != NULL; s = s->next)
		if (rte_mbuf_refcnt_read(s) != 1 || RTE_MBUF_CLONED(s) ||
		    RTE_MBUF_HAS_EXTBUF(s))
			goto copy;
	return m;
copy:
	c = rte_pktmbuf_copy(m, lc->pool, 0, UINT32_MAX);
	rte_pktmbuf_free(m);
	return c;
}

/* A segment's TCP flags, as Linux's tcp_gso_segment sets them: FIN and
 * PSH on the last only, CWR on the first only. */
static inline void seg_flags(struct rte_tcp_hdr *th, bool first, bool last)
{
	if (!last)
		th->tcp_flags &=
		    (uint8_t) ~(RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG);
	if (!first)
		th->tcp_flags &= (uint8_t)~RTE_TCP_CWR_FLAG;
}

/*
 * Segment TCP super-frame M (headers H, ours or shared) into OUT by
 * copying: librte_gso in DPDK 22.11 segments TCP over IPv4 only, and its
 * segments are two mbufs each, which an ethdev without MULTI_SEGS cannot
 * send. Each
 * segment is a copy of its payload behind a copy of the headers, with the
 * headers' lengths, sequence number and flags (FIN and PSH on the last
 * only) its own, as librte_gso makes them for IPv4. Returns the number of
 * segments, or -ENOMEM (nothing left in OUT).
 */
static int segment_copy(struct vhd_lcore *lc, struct rte_mbuf *m,
			const struct hdrs *h, struct rte_mbuf **out)
{
	uint32_t hdr = (uint32_t)h->l2 + h->l3 + h->l4, mss = m->tso_segsz;
	uint32_t payload = h->ip_end - hdr;
	const char *src = rte_pktmbuf_mtod(m, const char *);
	const struct rte_tcp_hdr *th0 = (const void *)(src + h->l2 + h->l3);
	uint32_t seq = rte_be_to_cpu_32(th0->sent_seq);
	int k = 0;

	for (uint32_t off = 0; off < payload; off += mss, k++) {
		uint32_t len = RTE_MIN(mss, payload - off);
		struct rte_mbuf *s =
		    rte_pktmbuf_copy(m, lc->pool, hdr + off, len);
		struct rte_tcp_hdr *th;
		char *d;

		if (s == NULL)
			goto nomem;
		d = rte_pktmbuf_prepend(s, (uint16_t)hdr);
		if (d == NULL) { /* headers longer than the headroom */
			struct rte_mbuf *hm = rte_pktmbuf_alloc(lc->pool);

			if (hm == NULL ||
			    (d = rte_pktmbuf_append(hm, (uint16_t)hdr)) ==
				NULL ||
			    rte_pktmbuf_chain(hm, s) < 0) {
				rte_pktmbuf_free(hm);
				rte_pktmbuf_free(s);
				goto nomem;
			}
			s = hm;
		}
		memcpy(d, src, hdr);
		if (h->v6) {
			((struct rte_ipv6_hdr *)(d + h->l2))->payload_len =
			    rte_cpu_to_be_16(
				(uint16_t)(h->l3 - sizeof(struct rte_ipv6_hdr) +
					   h->l4 + len));
		} else {
			struct rte_ipv4_hdr *ip =
			    (struct rte_ipv4_hdr *)(d + h->l2);

			ip->total_length =
			    rte_cpu_to_be_16((uint16_t)(h->l3 + h->l4 + len));
			/* As librte_gso: one more IP ID a segment. */
			ip->packet_id = rte_cpu_to_be_16(
			    (uint16_t)(rte_be_to_cpu_16(ip->packet_id) + k));
		}
		th = (struct rte_tcp_hdr *)(d + h->l2 + h->l3);
		th->sent_seq = rte_cpu_to_be_32(seq + off);
		seg_flags(th, off == 0, off + len == payload);
		out[k] = s;
	}
	return k;
nomem:
	rte_pktmbuf_free_bulk(out, (unsigned int)k);
	return -ENOMEM;
}

/* Prepare M (marked, headers set) for ethdev P's tx offloads: false if
 * the PMD refuses it. */
static bool eth_prepare(struct vhd_lcore *lc, struct vhd_port *p,
			struct rte_mbuf *m)
{
	return p->type != VHD_PORT_ETH ||
	       rte_eth_tx_prepare(p->eth_id, lc->idx % p->n_txq, &m, 1) == 1;
}

/* Segment super-frame M (headers H) into OUT and drop our reference to M.
 * Each segment's IPv4 header checksum is completed; its TCP checksum too,
 * unless P takes partial ones (PARTIAL): then it is left to P, as a
 * guest's own segments would be (librte_vhost or rte_eth_tx_prepare store
 * each one's pseudo-header sum). Returns the number of segments, or a
 * negative errno (M dropped too; -EPERM: the PMD refused a segment). */
static int segment(struct vhd_lcore *lc, struct vhd_port *p, struct rte_mbuf *m,
		   const struct hdrs *h, struct rte_mbuf **out, bool partial)
{
	int k;

	if (!h->v6 && (p->type == VHD_PORT_VHOST || p->tx_multiseg)) {
		/* Zero copy: each segment is a header mbuf of its own and
		 * an indirect mbuf on M's payload. librte_gso clears
		 * TX_TCP_SEG on M: restored for the flood's other ports. */
		struct rte_gso_ctx ctx = {
		    .direct_pool = lc->pool,
		    .indirect_pool = lc->pool,
		    .gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO,
		    .gso_size =
			(uint16_t)(h->l2 + h->l3 + h->l4 + m->tso_segsz),
		};
		uint64_t saved = m->ol_flags;

		k = rte_gso_segment(m, &ctx, out, VHD_GSO_MAX_SEGS);
		m->ol_flags = saved;
	} else {
		k = segment_copy(lc, m, h, out);
	}
	rte_pktmbuf_free(m);
	if (k <= 0) /* 0: nothing to segment, which rx rules out */
		return k < 0 ? k : -EINVAL;
	for (int i = 0; i < k; i++) {
		struct rte_mbuf *s = out[i];
		struct hdrs sh = *h;
		char *l3 = rte_pktmbuf_mtod_offset(s, char *, h->l2);

		/* librte_gso clears FIN and PSH, not CWR. */
		seg_flags((struct rte_tcp_hdr *)(l3 + h->l3), i == 0,
			  i == k - 1);

		if (partial) {
			if (!h->v6) {
				struct rte_ipv4_hdr *ip = (void *)l3;

				ip->hdr_checksum = 0;
				ip->hdr_checksum = rte_ipv4_cksum(ip);
			}
			s->ol_flags =
			    (s->ol_flags & ~TX_OFFL_FLAGS) |
			    RTE_MBUF_F_TX_TCP_CKSUM |
			    (h->v6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4);
			s->l2_len = h->l2;
			s->l3_len = h->l3;
			s->l4_len = h->l4;
			if (!eth_prepare(lc, p, s)) {
				rte_pktmbuf_free_bulk(out, (unsigned int)k);
				return -EPERM;
			}
			continue;
		}
		sh.ip_end =
		    h->v6
			? h->l2 + (uint32_t)sizeof(struct rte_ipv6_hdr) +
			      rte_be_to_cpu_16(((const struct rte_ipv6_hdr *)l3)
						   ->payload_len)
			: h->l2 + (uint32_t)rte_be_to_cpu_16(
				      ((const struct rte_ipv4_hdr *)l3)
					  ->total_length);
		fill_csum(s, &sh, true);
	}
	return k;
}

int vhd_offload_tx(struct vhd_lcore *lc, struct vhd_port *p, struct rte_mbuf *m,
		   struct rte_mbuf **out)
{
	struct vhd_port_stats *st = &lc->stats[p->idx];
	uint32_t caps = __atomic_load_n(&p->tx_offl, __ATOMIC_RELAXED);
	bool tso = m->ol_flags & RTE_MBUF_F_TX_TCP_SEG;
	uint32_t max = p->max_frame, frame;
	struct hdrs h;
	int k;

	if (unlikely(parse(m, &h) < 0)) {
		st->drop[VHD_DROP_BAD_OFFLOAD]++;
		rte_pktmbuf_free(m);
		return 0;
	}
	if (h.l2 > RTE_ETHER_HDR_LEN)
		max += 4; /* tagged */
	/* What leaves, as the receiver sees it: a segment, or the frame. */
	frame = tso ? (uint32_t)h.l2 + h.l3 + h.l4 + m->tso_segsz
		    : rte_pktmbuf_pkt_len(m);
	if (frame > max) {
		st->drop[VHD_DROP_MTU]++;
		rte_pktmbuf_free(m);
		return 0;
	}
	/* With IPv6 extension headers, the pseudo-header sum librte_vhost
	 * and rte_eth_tx_prepare store (rte_ipv6_phdr_cksum) is wrong: it
	 * takes payload_len for the L4 length. vhostd completes those. */
	if (h.v6 && h.l3 != sizeof(struct rte_ipv6_hdr))
		caps = 0;
	/* The same for every port (a flood shares M): the PMDs' form. */
	m->l2_len = h.l2;
	m->l3_len = h.l3;
	m->l4_len = h.l4;
	m->ol_flags |= h.v6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4;
	if (tso && (caps & (h.v6 ? VHD_OFFL_TSO6 : VHD_OFFL_TSO4))) {
		/* A NIC rewrites each segment's IPv4 header checksum. */
		if (p->type == VHD_PORT_ETH && !h.v6)
			m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
		goto as_is;
	}
	if (!tso && (caps & (h.tcp ? VHD_OFFL_TCP_CSUM : VHD_OFFL_UDP_CSUM)))
		goto as_is;
	if (tso) {
		bool partial = caps & VHD_OFFL_TCP_CSUM;

		k = segment(lc, p, m, &h, out, partial);
		if (k < 0) {
			st->drop[k == -ENOMEM ? VHD_DROP_NO_MBUF
					      : VHD_DROP_BAD_OFFLOAD]++;
			return 0;
		}
		st->tx_segmented++;
		st->tx_segments += (uint64_t)k;
		if (!partial)
			st->tx_sw_csum += (uint64_t)k;
		return k;
	}
	m = own(lc, m);
	if (m == NULL) {
		st->drop[VHD_DROP_NO_MBUF]++;
		return 0;
	}
	fill_csum(m, &h, false);
	st->tx_sw_csum++;
	out[0] = m;
	return 1;
as_is:
	if (!eth_prepare(lc, p, m)) {
		st->drop[VHD_DROP_BAD_OFFLOAD]++;
		rte_pktmbuf_free(m);
		return 0;
	}
	out[0] = m;
	return 1;
}

uint32_t vhd_offload_vhost_caps(uint64_t features)
{
	uint32_t c = 0;

	/* GUEST_TSO needs GUEST_CSUM (virtio 1.1, 5.1.3.1). */
	if (features & (1ULL << VIRTIO_NET_F_GUEST_CSUM)) {
		c |= VHD_OFFL_TCP_CSUM | VHD_OFFL_UDP_CSUM;
		if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
			c |= VHD_OFFL_TSO4;
		if (features & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
			c |= VHD_OFFL_TSO6;
	}
	return c;
}

uint32_t vhd_offload_eth_caps(uint64_t tx_offloads)
{
	uint32_t c = 0;

	if (tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) {
		c |= VHD_OFFL_TCP_CSUM;
		if (tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_TSO) {
			c |= VHD_OFFL_TSO6;
			if (tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM)
				c |= VHD_OFFL_TSO4;
		}
	}
	if (tx_offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM)
		c |= VHD_OFFL_UDP_CSUM;
	return c;
}

unsigned int vhd_offload_active(const struct vhd_port *p, const char **names)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} vhost[] =
	    {
		{1ULL << VIRTIO_NET_F_CSUM, "csum"},
		{1ULL << VIRTIO_NET_F_GUEST_CSUM, "guest_csum"},
		{1ULL << VIRTIO_NET_F_HOST_TSO4, "host_tso4"},
		{1ULL << VIRTIO_NET_F_HOST_TSO6, "host_tso6"},
		{1ULL << VIRTIO_NET_F_GUEST_TSO4, "guest_tso4"},
		{1ULL << VIRTIO_NET_F_GUEST_TSO6, "guest_tso6"},
	    },
	  eth[] = {
	      {RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, "ipv4_cksum"},
	      {RTE_ETH_TX_OFFLOAD_TCP_CKSUM, "tcp_cksum"},
	      {RTE_ETH_TX_OFFLOAD_UDP_CKSUM, "udp_cksum"},
	      {RTE_ETH_TX_OFFLOAD_TCP_TSO, "tcp_tso"},
	  };
	bool guest = p->type == VHD_PORT_VHOST;
	uint64_t have =
	    guest ? (vhd_port_up(p) ? p->features : 0) : p->eth_tx_offloads;
	unsigned int n = 0;

	for (unsigned int i = 0; i < 6; i++) {
		uint64_t bit = guest ? vhost[i].bit : i < 4 ? eth[i].bit : 0;

		if (bit && (have & bit))
			names[n++] = guest ? vhost[i].name : eth[i].name;
	}
	return n;
}
