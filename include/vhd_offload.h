/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_offload.h: checksum and segmentation offloads (dp/offload.c). All on
 * the datapath lcore that owns the frames, except the *_caps helpers.
 */
#ifndef VHD_OFFLOAD_H
#define VHD_OFFLOAD_H

#include <stdint.h>

#include <rte_mbuf.h>

struct vhd_lcore;
struct vhd_port;
struct vhd_burst;

/* What a port can take as it is (vhd_port.tx_offl): a partial TCP or UDP
 * checksum, a TCP/IPv4 or TCP/IPv6 super-frame. */
#define VHD_OFFL_TCP_CSUM (1u << 0)
#define VHD_OFFL_UDP_CSUM (1u << 1)
#define VHD_OFFL_TSO4	  (1u << 2)
#define VHD_OFFL_TSO6	  (1u << 3)

/* Segments one super-frame may make at most (a 64 KiB frame at an MSS of
 * 256 bytes); a super-frame that would make more is drop_bad_offload. */
#define VHD_GSO_MAX_SEGS 256

/* The tx flags that mark a frame partial or a super-frame (offload.c). */
#define VHD_TX_OFFL_MARK (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK)

/* Rx, for a burst of P (N frames in PKTS, owned by LC) in which some frame
 * carries librte_vhost's offload flags, or any burst of a port whose
 * checksums may be partial (af_packet): marks each frame partial or a
 * super-frame, or drops it (a guest's: drop_bad_offload; a cut frame of an
 * af_packet port: drop_invalid), counted, its bytes taken off B->bytes.
 * Compacts PKTS; returns how many are left; sets B->offl if one is
 * marked. */
uint16_t vhd_offload_rx(struct vhd_lcore *lc, struct vhd_port *p,
			struct rte_mbuf **pkts, uint16_t n,
			struct vhd_burst *b);

/* Tx of one marked frame M (one reference, which this consumes) to P:
 * fills OUT (VHD_GSO_MAX_SEGS entries) with what P is to send: M as it
 * is, where P takes the offload; else M's segments or M (or a copy of it,
 * when it is shared) with its checksums completed. Returns how many; 0 if
 * M was dropped (counted: drop_mtu, drop_no_mbuf, drop_bad_offload). */
int vhd_offload_tx(struct vhd_lcore *lc, struct vhd_port *p, struct rte_mbuf *m,
		   struct rte_mbuf **out);

/* VHD_OFFL_* of a guest that negotiated virtio FEATURES, of an ethdev
 * with RTE_ETH_TX_OFFLOAD_* TX_OFFLOADS enabled. */
uint32_t vhd_offload_vhost_caps(uint64_t features);
uint32_t vhd_offload_eth_caps(uint64_t tx_offloads);

/* The offloads in effect on P now, by name, into NAMES (6 entries):
 * a guest's negotiated ones ("csum", "guest_csum", "host_tso4",
 * "host_tso6", "guest_tso4", "guest_tso6"; none while it is down), an
 * ethdev's enabled ones ("ipv4_cksum", "tcp_cksum", "udp_cksum",
 * "tcp_tso"). Returns how many. Control or telemetry thread. */
#define VHD_OFFLOAD_NAMES_MAX 6
unsigned int vhd_offload_active(const struct vhd_port *p, const char **names);

#endif
