/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_capture.h: capture a port's frames to a pcapng file (dp/capture.c),
 * the control command `capture` (ctl/cmd_capture.c).
 *
 * dpdk-dumpcap cannot see vhost ports (it hooks ethdev rx/tx callbacks), so
 * vhostd captures itself. A port being captured has p->cap set; the
 * datapath, right after an rx burst and before a tx burst, calls
 * vhd_capture_burst(), which copies the frames the capture wants
 * (rte_pcapng_copy) into the capture's own mempool and ring. The control
 * thread drains the ring into the file (vhd_capture_poll) and ends the
 * capture when its count or duration is reached, or when told to
 * (vhd_capture_stop). Ending unpublishes p->cap and waits for an RCU grace
 * period (vhd_rcu) before the ring and pool are freed.
 *
 * Threads: vhd_capture_burst runs on datapath lcores; everything else on
 * the control thread (the main lcore) only.
 */
#ifndef VHD_CAPTURE_H
#define VHD_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Direction of a burst; as a mask (VHD_CAP_RX | VHD_CAP_TX), what a
 * capture records. */
enum vhd_cap_dir { VHD_CAP_RX = 1, VHD_CAP_TX = 2 };

struct vhd_capture;
struct vhd_port;
struct rte_mbuf;

/* Datapath (any lcore, lcore index LCORE < VHD_MAX_DP_LCORES): copy the
 * frames of a burst that C wants into its ring; never blocks; the frames
 * stay the caller's; what cannot be copied is counted as dropped. PKTS[0..N)
 * are whole frames as received from (rx) or about to be sent to (tx) the
 * port; QUEUE is recorded in each packet (the EPB queue option). C is the
 * value the caller loaded from p->cap (acquire) in this same burst. */
void vhd_capture_burst(struct vhd_capture *c, uint16_t lcore,
		       struct rte_mbuf *const *pkts, uint16_t n,
		       enum vhd_cap_dir dir, uint16_t queue);

/* Control thread: when a capture ends, DONE(ARG, packets written, dropped,
 * error message or NULL) is called once on the control thread. The file is
 * complete and closed by then; ERROR is valid only during the call. */
typedef void vhd_capture_done_fn(void *arg, uint64_t packets, uint64_t dropped,
				 const char *error);

/* Start capturing port P into FILE: DIR a mask of enum vhd_cap_dir, COUNT
 * frames (0: no limit), DURATION seconds (0: no limit). FILE (an existing
 * regular file is truncated; anything else, or a symlink, is refused) gets
 * a pcapng section with one interface, named after the port, with
 * nanosecond timestamps (wall clock). Returns 0 or a negative errno with a
 * message in ERR (no such directory, file cannot be created, P already
 * captured, out of memory). Control thread only. */
int vhd_capture_start(struct vhd_port *p, const char *file, unsigned int dir,
		      uint64_t count, uint32_t duration,
		      vhd_capture_done_fn *done, void *arg, char *err,
		      size_t errlen);

/* End P's capture now (port being deleted, shutdown, client gone): the file
 * is completed and closed. With NOTIFY, DONE is called; without, it is not.
 * No-op if P has none. Waits for an RCU grace period (vhd_rcu). Control
 * thread only. */
void vhd_capture_stop(struct vhd_port *p, bool notify);

/* Control thread, every control-loop iteration: write what the lcores
 * copied, end captures whose count or duration is reached. */
void vhd_capture_poll(void);

/* True while any capture runs (the control loop then polls every few ms). */
bool vhd_capture_active(void);

#endif
