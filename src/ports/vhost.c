/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ports/vhost.c: vhost-user ports through librte_vhost, and their lifecycle.
 *
 * The callbacks run in librte_vhost's event thread. As in OVS's
 * netdev-dpdk, they only record what changed: new_device publishes the vid
 * (release store), vring_state_changed flips a bit of the enabled-queue mask
 * (it is called with the vrings' access locks held, so waiting there for the
 * lcores could deadlock against an lcore spinning on that lock), and
 * destroy_device unpublishes the vid and then waits for a grace period, so
 * that when it returns no lcore is inside a burst on the device's vrings.
 * librte_vhost calls destroy_device without the vring locks held. Ports
 * come and go at run time: a callback finds its port under
 * vhd_tables_lock, and a port is unregistered (no callback of its own can
 * follow) before it is unpublished and freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_net.h>
#include <rte_vhost.h>

#include "vhd.h"
#include "vhd_ctl.h"
#include "vhd_offload.h"
#include "vhd_sockpath.h"

/* Not offered, because librte_vhost 22.11 cannot take them from a hostile
 * guest (docs/RELIABILITY.md, faults 11 and 12):
 *  - VIRTIO_NET_F_MRG_RXBUF: the rx path takes up to ring size - 1
 *    buffers per frame and 32 frames per call into a shadow ring of ring
 *    size entries, trusting the guest's avail index: a guest posting tiny
 *    buffers with its index far ahead overflows the heap;
 *  - VIRTIO_F_RING_PACKED: SET_VRING_BASE is not checked against the ring
 *    size, and an indirect table's length is allocated before it is
 *    checked (a 4 GiB rte_malloc per poll, stalling the lcore).
 * Nor UFO (no librte_gso for it here on the way to a port without it) and
 * ECN (a flag on TSO that vhostd would have to carry to every port).
 * A guest with GUEST_TSO but no MRG_RXBUF posts 64 KiB buffers (Linux:
 * "big packets"), so it still takes whole super-frames (one that does
 * not gets them segmented: dp/port_io.c, vhost_tx). */
#define VHD_VHOST_DISABLED_FEATURES                                            \
	((1ULL << VIRTIO_NET_F_HOST_ECN) | (1ULL << VIRTIO_NET_F_HOST_UFO) |   \
	 (1ULL << VIRTIO_NET_F_GUEST_ECN) | (1ULL << VIRTIO_NET_F_GUEST_UFO) | \
	 (1ULL << VIRTIO_NET_F_MRG_RXBUF) | (1ULL << VIRTIO_F_RING_PACKED))
/* Not offered with a vIOMMU (iommu-support = yes): with GUEST_TSO a guest
 * posts 64 KiB rx buffers, 17 pages each, every one behind its own IOTLB
 * entry, and librte_vhost 22.11 resolves one IOTLB miss per enqueue
 * attempt: a frame to it finds an untranslated page nearly every time
 * and is dropped (qemu-iommu: 50 of 50). Without it the guest posts
 * one-page buffers; super-frames to it are segmented. */
#define VHD_VHOST_IOMMU_DISABLED \
	((1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO6))
/* The offloads (offloads = yes, the default): checksum and TSO both ways;
 * dp/offload.c gives every other port what it can take. */
#define VHD_VHOST_OFFLOAD_FEATURES                                             \
	((1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |     \
	 (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO6) | \
	 (1ULL << VIRTIO_NET_F_GUEST_TSO4) |                                   \
	 (1ULL << VIRTIO_NET_F_GUEST_TSO6))

static const char *const feature_names[64] = {
    [VIRTIO_NET_F_CSUM] = "VIRTIO_NET_F_CSUM",
    [VIRTIO_NET_F_GUEST_CSUM] = "VIRTIO_NET_F_GUEST_CSUM",
    [VIRTIO_NET_F_CTRL_GUEST_OFFLOADS] = "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS",
    [VIRTIO_NET_F_MTU] = "VIRTIO_NET_F_MTU",
    [VIRTIO_NET_F_MAC] = "VIRTIO_NET_F_MAC",
    [VIRTIO_NET_F_GSO] = "VIRTIO_NET_F_GSO",
    [VIRTIO_NET_F_GUEST_TSO4] = "VIRTIO_NET_F_GUEST_TSO4",
    [VIRTIO_NET_F_GUEST_TSO6] = "VIRTIO_NET_F_GUEST_TSO6",
    [VIRTIO_NET_F_GUEST_ECN] = "VIRTIO_NET_F_GUEST_ECN",
    [VIRTIO_NET_F_GUEST_UFO] = "VIRTIO_NET_F_GUEST_UFO",
    [VIRTIO_NET_F_HOST_TSO4] = "VIRTIO_NET_F_HOST_TSO4",
    [VIRTIO_NET_F_HOST_TSO6] = "VIRTIO_NET_F_HOST_TSO6",
    [VIRTIO_NET_F_HOST_ECN] = "VIRTIO_NET_F_HOST_ECN",
    [VIRTIO_NET_F_HOST_UFO] = "VIRTIO_NET_F_HOST_UFO",
    [VIRTIO_NET_F_MRG_RXBUF] = "VIRTIO_NET_F_MRG_RXBUF",
    [VIRTIO_NET_F_STATUS] = "VIRTIO_NET_F_STATUS",
    [VIRTIO_NET_F_CTRL_VQ] = "VIRTIO_NET_F_CTRL_VQ",
    [VIRTIO_NET_F_CTRL_RX] = "VIRTIO_NET_F_CTRL_RX",
    [VIRTIO_NET_F_CTRL_VLAN] = "VIRTIO_NET_F_CTRL_VLAN",
    [VIRTIO_NET_F_CTRL_RX_EXTRA] = "VIRTIO_NET_F_CTRL_RX_EXTRA",
    [VIRTIO_NET_F_GUEST_ANNOUNCE] = "VIRTIO_NET_F_GUEST_ANNOUNCE",
    [VIRTIO_NET_F_MQ] = "VIRTIO_NET_F_MQ",
    [VIRTIO_NET_F_CTRL_MAC_ADDR] = "VIRTIO_NET_F_CTRL_MAC_ADDR",
    [VIRTIO_F_NOTIFY_ON_EMPTY] = "VIRTIO_F_NOTIFY_ON_EMPTY",
    [VIRTIO_F_ANY_LAYOUT] = "VIRTIO_F_ANY_LAYOUT",
    [VIRTIO_RING_F_INDIRECT_DESC] = "VIRTIO_RING_F_INDIRECT_DESC",
    [VIRTIO_RING_F_EVENT_IDX] = "VIRTIO_RING_F_EVENT_IDX",
    [30] = "VHOST_USER_F_PROTOCOL_FEATURES",
    [VIRTIO_F_VERSION_1] = "VIRTIO_F_VERSION_1",
    [VIRTIO_F_ACCESS_PLATFORM] = "VIRTIO_F_ACCESS_PLATFORM",
    [VIRTIO_F_RING_PACKED] = "VIRTIO_F_RING_PACKED",
    [VIRTIO_F_IN_ORDER] = "VIRTIO_F_IN_ORDER",
    [VIRTIO_F_ORDER_PLATFORM] = "VIRTIO_F_ORDER_PLATFORM",
    [VIRTIO_F_SR_IOV] = "VIRTIO_F_SR_IOV",
    [VIRTIO_F_RING_RESET] = "VIRTIO_F_RING_RESET",
    [VIRTIO_NET_F_NOTF_COAL] = "VIRTIO_NET_F_NOTF_COAL",
    [VIRTIO_NET_F_HASH_REPORT] = "VIRTIO_NET_F_HASH_REPORT",
    [VIRTIO_NET_F_RSS] = "VIRTIO_NET_F_RSS",
    [VIRTIO_NET_F_RSC_EXT] = "VIRTIO_NET_F_RSC_EXT",
    [VIRTIO_NET_F_STANDBY] = "VIRTIO_NET_F_STANDBY",
    [VIRTIO_NET_F_SPEED_DUPLEX] = "VIRTIO_NET_F_SPEED_DUPLEX",
};

const char *vhd_vhost_feature_name(unsigned int b)
{
	return b < 64 ? feature_names[b] : NULL;
}

/* The port of VID's socket. The callbacks of one socket never run while
 * its port is being freed (it is unregistered first), but another port may
 * be: the lookup holds vhd_tables_lock. */
static struct vhd_port *port_of_vid(int vid)
{
	char path[PATH_MAX];
	struct vhd_port *found = NULL;

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) < 0)
		return NULL;
	pthread_mutex_lock(&vhd_tables_lock);
	for (uint16_t i = 0; i < VHD_MAX_PORTS && found == NULL; i++) {
		struct vhd_port *p = vhd_port_get(i);

		if (p && p->type == VHD_PORT_VHOST &&
		    strcmp(p->path, path) == 0)
			found = p;
	}
	pthread_mutex_unlock(&vhd_tables_lock);
	return found;
}

static int new_device(int vid)
{
	struct vhd_port *p = port_of_vid(vid);
	uint16_t nr_vring, nr_qp;

	if (p == NULL || p->conn_vid != vid) {
		VHD_LOG(ERR, port, "vid %d: not the connection of a port", vid);
		return -1;
	}
	nr_vring = rte_vhost_get_vring_num(vid);
	nr_qp = nr_vring / 2;
	if (nr_qp > VHD_MAX_QUEUES) {
		if (vhd_log_ratelimit(p))
			VHD_LOG(WARNING, port,
				"port %s: guest has %u queue pairs, only %u "
				"are polled",
				p->name, nr_qp, VHD_MAX_QUEUES);
		nr_qp = VHD_MAX_QUEUES;
	}
	/* We poll: the guest need not kick us. */
	for (uint16_t i = 0; i < nr_vring; i++)
		rte_vhost_enable_guest_notification(vid, i, 0);
	if (rte_vhost_get_negotiated_features(vid, &p->features) < 0)
		p->features = 0;
	__atomic_store_n(&p->rx_bufs_small, false, __ATOMIC_RELAXED);
	__atomic_store_n(&p->rx_bufs_small_logged, false, __ATOMIC_RELAXED);
	/* Before the vid: an lcore that sees the device sees these. */
	__atomic_store_n(&p->tx_offl, vhd_offload_vhost_caps(p->features),
			 __ATOMIC_RELEASE);
	p->numa_node = rte_vhost_get_numa_node(vid);
	if (nr_qp < p->nr_qp) /* vrings enabled before the device started */
		nr_qp = p->nr_qp;
	__atomic_store_n(&p->nr_qp, nr_qp, __ATOMIC_RELEASE);
	p->connects++;
	__atomic_store_n(&p->vid, vid, __ATOMIC_RELEASE);
	vhd_ctl_wake(); /* its queues to the lcores (sched.c) */
	if (vhd_log_ratelimit(p))
		VHD_LOG(INFO, port,
			"port %s: guest up (vid %d, %u queue pairs)", p->name,
			vid, nr_qp);
	return 0;
}

static void destroy_device(int vid)
{
	struct vhd_port *p = port_of_vid(vid);

	if (p == NULL || __atomic_load_n(&p->vid, __ATOMIC_ACQUIRE) != vid)
		return;
	/* No offload before the grace period: a burst that read this
	 * guest's offloads ends before the next guest's vid is stored. */
	__atomic_store_n(&p->tx_offl, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&p->vid, -1, __ATOMIC_RELEASE);
	vhd_ctl_wake();
	/* After this no lcore uses VID; librte_vhost may free its rings. */
	rte_rcu_qsbr_synchronize(vhd_rcu, RTE_QSBR_THRID_INVALID);
	if (vhd_log_ratelimit(p))
		VHD_LOG(INFO, port, "port %s: guest down (vid %d)", p->name,
			vid);
}

static int vring_state_changed(int vid, uint16_t queue_id, int enable)
{
	struct vhd_port *p = port_of_vid(vid);
	struct vhd_qmask *mask;

	/* Odd vrings are the guest's tx queues: polled while q < nr_qp,
	 * librte_vhost itself skips disabled ones (the mask is for
	 * port/show). Even ones are the guest's rx queues, our tx queues. */
	if (p == NULL || p->conn_vid != vid || queue_id / 2 >= VHD_MAX_QUEUES)
		return 0;
	/* With VIRTIO_F_IOMMU_PLATFORM, librte_vhost also reports a vring
	 * not ready when an IOTLB invalidate covers its rings (QEMU sends one
	 * on a global IOTLB flush in the guest), and ready again only once
	 * they are translated anew: for a guest rx vring, that takes an
	 * enqueue (its IOTLB miss). The guest did not disable it: it stays
	 * in the mask, or no enqueue would ever bring it back. */
	if (!enable && vhd_vhost_guard_in_iotlb_msg())
		return 0;
	mask = queue_id & 1 ? &p->guest_txq : &p->guest_rxq;
	vhd_qmask_set(mask, queue_id / 2, enable);
	vhd_ctl_wake();
	/* QEMU sets up and enables one queue pair after the other: the
	 * device is started (new_device) once the first is ready, and the
	 * others come here. A tx vring enabled past nr_qp is polled from now
	 * on (nr_qp never shrinks while the device lives: librte_vhost skips
	 * disabled vrings). */
	if (enable && (queue_id & 1) && queue_id / 2 < VHD_MAX_QUEUES &&
	    queue_id / 2 >= __atomic_load_n(&p->nr_qp, __ATOMIC_RELAXED))
		__atomic_store_n(&p->nr_qp, queue_id / 2 + 1, __ATOMIC_RELEASE);
	if (vhd_log_ratelimit(p))
		VHD_LOG(DEBUG, port, "port %s: vring %u %s", p->name, queue_id,
			enable ? "enabled" : "disabled");
	return 0;
}

/* One guest per port: a server socket accepts more than one connection,
 * so any connection after the first is refused. */
static int new_connection(int vid)
{
	struct vhd_port *p = port_of_vid(vid);
	int rc;

	if (p == NULL)
		return -1;
	if (p->conn_vid >= 0) {
		vhd_port_error(p, EBUSY,
			       "refused a second connection (vid %d) while vid "
			       "%d is connected",
			       vid, p->conn_vid);
		return -1;
	}
	rc = vhd_vhost_guard_attach(vid, p->name);
	if (rc < 0) {
		vhd_port_error(p, -rc,
			       "cannot guard the connection of vid %d: refused",
			       vid);
		return -1;
	}
	p->conn_vid = vid;
	/* A new connection starts with no enabled queues. */
	vhd_qmask_zero(&p->guest_rxq);
	vhd_qmask_zero(&p->guest_txq);
	__atomic_store_n(&p->nr_qp, 0, __ATOMIC_RELEASE);
	return 0;
}

static void destroy_connection(int vid)
{
	struct vhd_port *p = port_of_vid(vid);
	int leaked = vhd_msg_fds_reap();

	if (leaked > 0 && (p == NULL || vhd_log_ratelimit(p)))
		VHD_LOG(WARNING, port,
			"port %s: closed %d fds of a vhost-user message "
			"librte_vhost refused without closing them",
			p ? p->name : "?", leaked);
	vhd_vhost_guard_detach(vid);
	if (p && p->conn_vid == vid) {
		p->conn_vid = -1;
		/* port/show: no queue is enabled once the guest is gone. */
		vhd_qmask_zero(&p->guest_rxq);
		vhd_qmask_zero(&p->guest_txq);
	}
}

static const struct rte_vhost_device_ops vhost_ops = {
    .new_device = new_device,
    .destroy_device = destroy_device,
    .vring_state_changed = vring_state_changed,
    .new_connection = new_connection,
    .destroy_connection = destroy_connection,
};

/* A server socket's path: see vhd_sockpath_prepare(). */
static int check_server_path(struct vhd_port *p)
{
	char err[256];
	int rc =
	    vhd_sockpath_prepare(p->path, "socket", NULL, err, sizeof(err));

	if (rc < 0)
		vhd_port_error(p, -rc, "%s", err);
	return rc;
}

/* What can be checked before the port is published: a server socket's
 * path. */
int vhd_vhost_port_check(struct vhd_port *p)
{
	p->vid = -1;
	p->conn_vid = -1;
	p->numa_node = -1;
	p->n_rxq = VHD_MAX_QUEUES;
	return p->client ? 0 : check_server_path(p);
}

/* Who vhostd is and what the socket's directory allows: for a log line
 * about a socket vhostd could not bind or connect to. */
static void describe_access(const char *path, char *out, size_t len)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;
	int n;

	n = snprintf(out, len, "vhostd runs as uid %u gid %u",
		     (unsigned int)geteuid(), (unsigned int)getegid());
	snprintf(dir, sizeof(dir), "%.*s",
		 slash == path ? 1 : (int)(slash - path), path);
	if (n > 0 && (size_t)n < len && stat(dir, &st) == 0)
		snprintf(out + n, len - n, "; %s is uid %u gid %u mode %04o",
			 dir, (unsigned int)st.st_uid, (unsigned int)st.st_gid,
			 (unsigned int)(st.st_mode & 07777));
}

/*
 * A server port's socket, made with its configured group and mode and
 * never wider: bind() (in rte_vhost_driver_start) creates the file with
 * the process umask applied, so it is made 0600 (vhostd's user alone),
 * then given its group, then its mode. The umask is the process's: a file
 * another thread creates meanwhile is made narrower, never wider.
 */
static int start_server(struct vhd_port *p)
{
	gid_t gid = (gid_t)-1;
	char who[256];
	mode_t old;
	int rc, e;

	if (p->socket_group[0]) {
		const struct group *gr = getgrnam(p->socket_group);

		if (gr == NULL) {
			vhd_port_error(p, ENOENT,
				       "socket %s: no such group '%s'", p->path,
				       p->socket_group);
			return -ENOENT;
		}
		gid = gr->gr_gid;
	}
	old = umask(0177);
	errno = 0;
	rc = rte_vhost_driver_start(p->path);
	e = errno;
	umask(old);
	if (rc < 0) {
		describe_access(p->path, who, sizeof(who));
		vhd_port_error(p, e ? e : EIO, "cannot listen on %s: %s (%s)",
			       p->path,
			       e ? strerror(e) : "see librte_vhost's log", who);
		return -(e ? e : EIO);
	}
	if (chown(p->path, (uid_t)-1, gid) < 0 ||
	    chmod(p->path, p->socket_mode) < 0) {
		e = errno;
		describe_access(p->path, who, sizeof(who));
		vhd_port_error(
		    p, e, "socket %s: cannot set group %s mode %04o: %s (%s)",
		    p->path,
		    p->socket_group[0] ? p->socket_group : "(vhostd's)",
		    (unsigned int)p->socket_mode, strerror(e), who);
		return -e;
	}
	return 0;
}

/* A client port: librte_vhost connects (and logs why not, each retry);
 * say once who vhostd is if the socket is there and refuses it. */
static int start_client(struct vhd_port *p)
{
	struct stat st;
	char who[256];

	if (stat(p->path, &st) == 0 &&
	    faccessat(AT_FDCWD, p->path, W_OK, AT_EACCESS) < 0) {
		int e = errno;

		describe_access(p->path, who, sizeof(who));
		VHD_LOG(WARNING, port,
			"port %s: cannot connect to %s: %s (socket uid %u gid "
			"%u mode %04o; %s); retrying",
			p->name, p->path, strerror(e), (unsigned int)st.st_uid,
			(unsigned int)st.st_gid,
			(unsigned int)(st.st_mode & 07777), who);
	}
	if (rte_vhost_driver_start(p->path) < 0) {
		vhd_port_error(p, EIO, "cannot start client socket %s",
			       p->path);
		return -EIO;
	}
	return 0;
}

int vhd_vhost_port_start(struct vhd_port *p)
{
	/* Compliant offload flags: what a guest asked comes as rx flags
	 * (RTE_MBUF_F_RX_LRO, _RX_L4_CKSUM_NONE) for dp/offload.c to check,
	 * not as tx flags to pass on unchecked. */
	uint64_t flags = (p->client ? RTE_VHOST_USER_CLIENT : 0) |
			 (p->iommu_support ? RTE_VHOST_USER_IOMMU_SUPPORT : 0) |
			 RTE_VHOST_USER_NET_COMPLIANT_OL_FLAGS;
	uint64_t off = VHD_VHOST_DISABLED_FEATURES |
		       (p->offloads ? 0 : VHD_VHOST_OFFLOAD_FEATURES) |
		       (p->iommu_support ? VHD_VHOST_IOMMU_DISABLED : 0);
	int rc;

	if (rte_vhost_driver_register(p->path, flags) < 0) {
		vhd_port_error(p, EINVAL, "cannot register %s", p->path);
		return -EINVAL;
	}
	if (rte_vhost_driver_disable_features(p->path, off) < 0 ||
	    rte_vhost_driver_callback_register(p->path, &vhost_ops) < 0) {
		vhd_port_error(p, EINVAL, "cannot set up %s", p->path);
		rc = -EINVAL;
		goto fail;
	}
	rc = p->client ? start_client(p) : start_server(p);
	if (rc < 0)
		goto fail;
	p->started = true;
	VHD_LOG(INFO, port, "port %s: vhost-user %s socket %s", p->name,
		p->client ? "client (reconnecting)" : "server", p->path);
	return 0;
fail:
	rte_vhost_driver_unregister(p->path);
	return rc;
}

void vhd_vhost_port_stop(struct vhd_port *p)
{
	if (!p->started)
		return;
	p->started = false;
	/* Closes the connection (destroy_device runs) and, for a server,
	 * removes the socket file. */
	if (rte_vhost_driver_unregister(p->path) < 0)
		VHD_LOG(WARNING, port, "port %s: unregister %s failed", p->name,
			p->path);
	/* No message handler of the connection runs any more (unregister
	 * waits for it), and its memory is unmapped. */
	if (p->conn_vid >= 0)
		vhd_vhost_guard_detach(p->conn_vid);
	p->conn_vid = -1;
}

void vhd_vhost_poll(void)
{
	for (uint16_t i = 0; i < VHD_MAX_PORTS; i++) {
		struct vhd_port *p = vhd_ports[i];

		if (p == NULL || p->type != VHD_PORT_VHOST ||
		    __atomic_load_n(&p->rx_bufs_small_logged,
				    __ATOMIC_RELAXED) ||
		    !__atomic_load_n(&p->rx_bufs_small, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&p->rx_bufs_small_logged, true,
				 __ATOMIC_RELAXED);
		/* Short: last_error holds 159 characters. */
		vhd_port_error(
		    p, EMSGSIZE,
		    "rx buffers too small for a super-frame "
		    "(GUEST_TSO without MRG_RXBUF needs 64 KiB ones): "
		    "super-frames to it are segmented");
	}
}
