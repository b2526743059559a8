/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ports/vhost_notify.c: what librte_vhost sends a frontend from an lcore
 * (guest interrupts, "calls", and IOTLB misses) is relayed by a thread of
 * its own, so that no frontend can stall an lcore.
 *
 * librte_vhost calls a guest by writing its call eventfd from the lcore
 * that just filled or emptied the guest's ring. That eventfd belongs to the
 * frontend: it shares the open file with vhostd, so it decides whether the
 * write may block (O_NONBLOCK is a property of the shared file), and it can
 * set the counter to its maximum so that the next write does block. One
 * hostile frontend would then freeze an lcore, and every guest it serves,
 * forever.
 *
 * So the guard (vhost_guard.c) hands librte_vhost an eventfd of vhostd's
 * own for each SET_VRING_CALL (non-blocking, and nobody else writes it, so
 * an lcore's write never blocks) and gives the frontend's fd to this relay.
 * The relay thread waits on vhostd's eventfds (epoll) and passes each call
 * on with one write to the frontend's. Should that write block (a frontend
 * racing to fill its own counter), the control thread notices within a
 * second (vhd_notify_watchdog), interrupts the write with a signal, and the
 * relay stops calling that guest: it alone loses its interrupts.
 *
 * The backend channel (SET_SLAVE_REQ_FD) is the same story. With a vIOMMU
 * (iommu-support = yes), an lcore that meets an address it cannot
 * translate sends an IOTLB miss on it with a blocking sendmsg(): a
 * frontend that does not read its end would stop the lcore once the
 * socket buffer is full. So librte_vhost gets one end of a socket pair of
 * vhostd's (SOCK_SEQPACKET: one message per recv), the relay the other
 * and the frontend's socket. The relay always drains its end, so the
 * lcore's sendmsg never waits (and librte_vhost never logs a failed send
 * for each miss), and passes each message on with MSG_DONTWAIT, a flag of
 * the call that the frontend cannot undo. A miss that does not fit is
 * dropped and counted (the lcore asks again once the frontend answers or
 * invalidates); a frontend whose socket is gone gets nothing more.
 * librte_vhost closing its end (a new channel, reset, disconnect) ends the
 * relay's entry.
 *
 * Threads and ownership: take and drop run on the vhost-events thread (the
 * guard's message callbacks) or the control thread (a port being deleted),
 * the relay on its own thread, the watchdog on the control thread. Relay
 * entries are under relay_lock; the relay holds it while it writes, so a
 * drop waits for a write in progress (for at most the watchdog's second).
 * librte_vhost owns the eventfd or socket end it was given (it closes it
 * when the vring's call fd or the channel is replaced or the device goes);
 * the relay owns its own fd (a dup of that eventfd, or the other end of
 * the pair) and the frontend's fd, both closed on drop.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "vhd.h"

/* A server socket has one guest, 8 queue pairs polled but up to 256
 * vrings negotiable: room for the calls of many guests. */
#define RELAY_MAX   8192
#define CHAN_SNDBUF (16 << 20) /* bytes: a backend channel's buffer */
#define CHAN_BATCH  1024       /* messages relayed per wake-up */

struct relay {
	bool used;
	bool chan; /* the backend channel; else vring's calls */
	bool dead; /* its write blocked or failed once: no more */
	int vid;
	uint32_t vring;
	int ours;	  /* dup of the eventfd librte_vhost writes, or the
			   * relay's end of the channel's socket pair */
	int guest;	  /* the frontend's call eventfd or channel socket */
	uint32_t gen;	  /* epoll data: (gen << 32 | slot) */
	uint64_t dropped; /* channel: messages the frontend had no room for */
};

static struct relay relays[RELAY_MAX];
static pthread_mutex_t relay_lock = PTHREAD_MUTEX_INITIALIZER;
static int epfd = -1;
static pthread_t relay_thread;
static bool started;
static uint64_t writing_since; /* TSC of the write in progress, or 0 */
static volatile bool stop;
static int wake_fd = -1;

static void on_sigusr2(int sig)
{
	(void)sig; /* only to make a blocked write return EINTR */
}

static void relay_one(struct relay *r)
{
	uint64_t n;
	struct pollfd pfd = {.fd = r->guest, .events = POLLOUT};

	if (read(r->ours, &n, sizeof(n)) != sizeof(n) || r->dead)
		return;
	/* A full counter: the guest has a call pending anyway. */
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
		return;
	n = 1;
	__atomic_store_n(&writing_since, rte_get_tsc_cycles(),
			 __ATOMIC_RELAXED);
	if (write(r->guest, &n, sizeof(n)) < 0 && errno == EINTR) {
		r->dead = true;
		VHD_LOG(ERR, port,
			"vid %d: writing the guest's call eventfd of vring %u "
			"blocked (the frontend filled it): no more interrupts "
			"to this guest",
			r->vid, r->vring);
	}
	__atomic_store_n(&writing_since, 0, __ATOMIC_RELAXED);
}

static void drop_locked(struct relay *r);

/* Up to CHAN_BATCH messages from librte_vhost's end of a backend
 * channel, each passed on whole or not at all. */
static void relay_chan(struct relay *r)
{
	char buf[4096];

	for (int i = 0; i < CHAN_BATCH; i++) {
		ssize_t n = recv(r->ours, buf, sizeof(buf), MSG_DONTWAIT);
		ssize_t w;

		if (n == 0) {
			drop_locked(r); /* librte_vhost closed its end */
			return;
		}
		if (n < 0)
			return;
		if (r->dead)
			continue;
		w = send(r->guest, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w == n)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (r->dropped++ == 0)
				VHD_LOG(WARNING, port,
					"vid %d: the frontend's backend "
					"channel is full: IOTLB misses are "
					"dropped until it reads",
					r->vid);
			continue;
		}
		/* Gone, or half a message in its stream: nothing more. */
		r->dead = true;
		VHD_LOG(ERR, port,
			"vid %d: cannot send on the frontend's backend "
			"channel (%s): no more IOTLB misses to this guest",
			r->vid, w < 0 ? strerror(errno) : "short write");
	}
}

static void *relay_main(void *arg)
{
	struct epoll_event ev[64];

	(void)arg;
	while (!stop) {
		int n = epoll_wait(epfd, ev, RTE_DIM(ev), -1);

		pthread_mutex_lock(&relay_lock);
		for (int i = 0; i < n; i++) {
			uint32_t slot = (uint32_t)ev[i].data.u64;
			uint32_t gen = (uint32_t)(ev[i].data.u64 >> 32);
			struct relay *r = &relays[slot % RELAY_MAX];

			/* An entry dropped since epoll_wait returned. */
			if (slot < RELAY_MAX && r->used && r->gen == gen) {
				if (r->chan)
					relay_chan(r);
				else
					relay_one(r);
			}
		}
		pthread_mutex_unlock(&relay_lock);
	}
	return NULL;
}

int vhd_notify_init(void)
{
	struct sigaction sa;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr2; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) < 0)
		return -errno;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (epfd < 0 || wake_fd < 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd, &ev) < 0)
		goto fail;
	if (pthread_create(&relay_thread, NULL, relay_main, NULL) != 0)
		goto fail;
	pthread_setname_np(relay_thread, "vhd-notify");
	started = true;
	return 0;
fail:
	if (epfd >= 0)
		close(epfd);
	if (wake_fd >= 0)
		close(wake_fd);
	epfd = wake_fd = -1;
	return -EIO;
}

void vhd_notify_fini(void)
{
	if (!started)
		return;
	stop = true;
	if (eventfd_write(wake_fd, 1) == 0)
		pthread_join(relay_thread, NULL);
	started = false;
	vhd_notify_drop(-1, UINT32_MAX);
	close(epfd);
	close(wake_fd);
}

/* take and drop may wait for a write in progress: they do the watchdog's
 * work themselves meanwhile, as the control thread that would do it may be
 * the one waiting (a port being deleted). */
static void lock_relays(void)
{
	while (pthread_mutex_trylock(&relay_lock) != 0) {
		vhd_notify_watchdog();
		usleep(1000);
	}
}

static void drop_locked(struct relay *r)
{
	if (r->chan && r->dropped)
		VHD_LOG(WARNING, port,
			"vid %d: %" PRIu64 " IOTLB miss message(s) dropped: "
			"the frontend did not read its backend channel",
			r->vid, r->dropped);
	epoll_ctl(epfd, EPOLL_CTL_DEL, r->ours, NULL);
	close(r->ours);
	close(r->guest);
	r->used = false;
}

void vhd_notify_drop(int vid, uint32_t vring)
{
	lock_relays();
	for (int i = 0; i < RELAY_MAX; i++) {
		struct relay *r = &relays[i];

		if (r->used && (vid < 0 || r->vid == vid) &&
		    (vring == UINT32_MAX ||
		     (vring == VHD_NOTIFY_CHAN
			  ? r->chan
			  : !r->chan && r->vring == vring)))
			drop_locked(r);
	}
	pthread_mutex_unlock(&relay_lock);
}

/* Enter (VID, VRING, CHAN) with the relay's OURS and the frontend's GUEST:
 * both the relay's on success, still the caller's on failure. */
static int add_relay(int vid, uint32_t vring, bool chan, int ours, int guest)
{
	struct relay *r = NULL;
	struct epoll_event ev = {.events = EPOLLIN};

	vhd_notify_drop(vid, chan ? VHD_NOTIFY_CHAN : vring);
	lock_relays();
	for (int i = 0; i < RELAY_MAX && r == NULL; i++)
		if (!relays[i].used)
			r = &relays[i];
	if (r == NULL)
		goto fail;
	r->gen++;
	ev.data.u64 = (uint64_t)r->gen << 32 | (uint64_t)(r - relays);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, ours, &ev) < 0)
		goto fail;
	r->used = true;
	r->chan = chan;
	r->dead = false;
	r->vid = vid;
	r->vring = vring;
	r->ours = ours;
	r->guest = guest;
	r->dropped = 0;
	pthread_mutex_unlock(&relay_lock);
	return 0;
fail:
	pthread_mutex_unlock(&relay_lock);
	return -ENOSPC;
}

int vhd_notify_take(int vid, uint32_t vring, int guest_fd)
{
	int ours, dup_fd, rc;

	if (!started)
		return -ENODEV;
	ours = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ours < 0)
		return -errno;
	dup_fd = fcntl(ours, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0) {
		close(ours);
		return -EMFILE;
	}
	rc = add_relay(vid, vring, false, dup_fd, guest_fd);
	if (rc < 0) {
		close(dup_fd);
		close(ours);
		return rc;
	}
	return ours;
}

int vhd_notify_take_chan(int vid, int guest_fd)
{
	int sv[2], rc;

	if (!started)
		return -ENODEV;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0, sv) < 0)
		return -errno;
	/* Room for CHAN_SNDBUF bytes of messages (each ~1 KiB with the
	 * kernel's overhead) while the relay thread waits for a CPU: should
	 * librte_vhost's end fill, its send fails and it logs every miss. A
	 * pair's own queue has no length limit but this one (root may raise
	 * it past wmem_max). */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &(int){CHAN_SNDBUF},
		       sizeof(int)) < 0)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){CHAN_SNDBUF},
			   sizeof(int));
	rc = add_relay(vid, VHD_NOTIFY_CHAN, true, sv[1], guest_fd);
	if (rc < 0) {
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	return sv[0];
}

void vhd_notify_watchdog(void)
{
	uint64_t since = __atomic_load_n(&writing_since, __ATOMIC_RELAXED);

	if (started && since && rte_get_tsc_cycles() - since > rte_get_tsc_hz())
		pthread_kill(relay_thread, SIGUSR2);
}
