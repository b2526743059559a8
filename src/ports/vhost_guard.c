/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ports/vhost_guard.c: what a vhost-user frontend sends is checked here
 * before librte_vhost acts on it.
 *
 * A frontend is not trusted. librte_vhost maps whatever file a
 * SET_MEM_TABLE names for as many bytes as the message says, whether or not
 * the file has them: a 4 KiB memfd described as a 2 MiB region maps fine,
 * and the first touch past its end (librte_vhost's own numa lookup of a
 * ring, or an lcore) kills vhostd with SIGBUS, and every tenant with it.
 * The same holds for the dirty log (SET_LOG_BASE). So every message passes
 * through guard_msg() first (librte_vhost's external message callback,
 * registered per connection in new_connection):
 *  - requests for protocol features that were not negotiated, or that a
 *    net device never uses (inflight, postcopy, crypto, config, IOTLB
 *    without VIRTIO_F_IOMMU_PLATFORM), are refused;
 *  - every file described as memory must be a regular file (memfd or
 *    hugetlbfs) holding the whole described range, sizes must not be zero
 *    and no range may wrap around 2^64;
 *  - kick, call and error fds must be eventfds, the backend channel a
 *    socket; call fds and the backend channel are then swapped for
 *    vhostd's own, relayed to the frontend's (vhost_notify.c).
 * A refused message closes the session (the reply-ack flag is cleared so
 * that librte_vhost does not answer and carry on): one log line names the
 * port, the message and what was wrong.
 *
 * What a check cannot cover is a frontend that shrinks the file after it
 * was mapped (ftruncate of its memfd or hugetlbfs file). The pages then
 * vanish under vhostd, and the next touch raises SIGBUS. For that, every
 * guest mapping is registered here, and a SIGBUS inside one replaces the
 * whole mapping with private zero pages (the faulting load or store then
 * completes on them): the guest that did it sees a dead link; vhostd and
 * the other guests go on. vhd_vhost_guard_poll() reports it from the
 * control thread. A SIGBUS anywhere else goes to the handler that was there
 * before (ASan's, or the default: a core dump).
 *
 * Threads: guard_msg(), attach and detach run in librte_vhost's
 * vhost-events thread (detach also on the control thread, for a port being
 * deleted); the signal handler on whichever thread faulted (an lcore, or
 * vhost-events). The mapping table is written under map_lock and read
 * without it by the handler: a slot is cleared before librte_vhost unmaps
 * (pre-handler of SET_MEM_TABLE and RESET_OWNER, destroy_connection, port
 * stop), and no lcore touches a device's memory then (librte_vhost holds
 * the vring locks across those messages; destroy_device waits for a grace
 * period).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_vhost.h>

#include "vhd.h"

/*
 * librte_vhost 22.11 hands the external callbacks its message context. Its
 * layout is internal (lib/vhost/vhost_user.h, struct vhu_msg_context) but
 * fixed: "this structure and VhostUserMsg can't be changed carelessly as
 * external message handlers rely on them". Only what the guard reads is
 * spelt out; the payload union is sized as 22.11's (its largest member is
 * VhostUserCryptoSessionParam, 632 bytes).
 */
#define VU_MAX_FDS	    8
#define VU_NEED_REPLY	    (1u << 3)
#define VU_VRING_NOFD	    (1ull << 8)
#define VU_PAYLOAD_SIZE	    632
#define VU_IOTLB_INVALIDATE 3 /* struct vhost_iotlb_msg's type */

enum {
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_VRING_NUM = 8,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_SET_SLAVE_REQ_FD = 21,
	VU_IOTLB_MSG = 22,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_CRYPTO_CREATE_SESS = 26,
	VU_CRYPTO_CLOSE_SESS = 27,
	VU_POSTCOPY_ADVISE = 28,
	VU_POSTCOPY_LISTEN = 29,
	VU_POSTCOPY_END = 30,
	VU_GET_INFLIGHT_FD = 31,
	VU_SET_INFLIGHT_FD = 32,
	VU_RESET_OWNER = 4,
};

struct vu_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct {
			uint32_t nregions;
			uint32_t padding;
			struct vu_region regions[VU_MAX_FDS];
		} memory;
		struct {
			uint64_t mmap_size;
			uint64_t mmap_offset;
		} log;
		struct {
			uint64_t iova;
			uint64_t size;
			uint64_t uaddr;
			uint8_t perm;
			uint8_t type;
		} iotlb;
		uint8_t raw[VU_PAYLOAD_SIZE];
	} payload;
} __attribute__((packed));

struct vu_msg_context {
	struct vu_msg msg;
	int fds[VU_MAX_FDS];
	int fd_num;
} __attribute__((packed));

_Static_assert(sizeof(struct vu_msg) == 12 + VU_PAYLOAD_SIZE,
	       "VhostUserMsg of librte_vhost 22.11");

/* librte_vhost 22.11 has at most 1024 devices (MAX_VHOST_DEVICE). */
#define GUARD_MAX_VID 1024
/* A device maps up to 8 regions and a dirty log. */
#define GUARD_MAPS_PER_VID (VU_MAX_FDS + 1)
#define GUARD_LOG_SLOT	   VU_MAX_FDS

struct guard_map {
	uintptr_t start; /* 0: free; read by the signal handler */
	size_t len;
	volatile sig_atomic_t zeroed; /* set by the signal handler */
};

static struct guard_map maps[GUARD_MAX_VID][GUARD_MAPS_PER_VID];
static char names[GUARD_MAX_VID][VHD_NAME_MAX];
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction old_sigbus;
static volatile sig_atomic_t zeroed_any;

/* A hostile frontend may reconnect in a loop: at most a burst of log lines
 * a second from the guard. Only the vhost-events thread logs here. */
static bool guard_log_ok(void)
{
	static uint64_t window, lines, dropped;
	uint64_t now = rte_get_tsc_cycles(), hz = rte_get_tsc_hz();

	if (now - window > hz) {
		if (dropped)
			VHD_LOG(WARNING, port,
				"vhost-user guard: %" PRIu64
				" more rejections not logged",
				dropped);
		window = now;
		lines = dropped = 0;
	}
	if (lines < 20) {
		lines++;
		return true;
	}
	dropped++;
	return false;
}

static const char *name_of(int vid)
{
	return vid >= 0 && vid < GUARD_MAX_VID && names[vid][0] ? names[vid]
								: "?";
}

static void map_set(int vid, int slot, uintptr_t start, size_t len)
{
	struct guard_map *m = &maps[vid][slot];

	pthread_mutex_lock(&map_lock);
	m->zeroed = 0;
	__atomic_store_n(&m->len, len, __ATOMIC_RELAXED);
	__atomic_store_n(&m->start, start, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&map_lock);
}

static void maps_clear(int vid, int from, int to)
{
	pthread_mutex_lock(&map_lock);
	for (int i = from; i < to; i++)
		__atomic_store_n(&maps[vid][i].start, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&map_lock);
}

/* Only async-signal-safe calls: mmap and write. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	for (int v = 0; v < GUARD_MAX_VID; v++) {
		for (int i = 0; i < GUARD_MAPS_PER_VID; i++) {
			struct guard_map *m = &maps[v][i];
			uintptr_t s =
			    __atomic_load_n(&m->start, __ATOMIC_ACQUIRE);

			if (s == 0 || a < s || a - s >= m->len)
				continue;
			if (mmap((void *)s, m->len, PROT_READ | PROT_WRITE,
				 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
				     MAP_NORESERVE,
				 -1, 0) == MAP_FAILED)
				goto not_ours;
			m->zeroed = 1;
			zeroed_any = 1;
			return;
		}
	}
not_ours:
	if (old_sigbus.sa_flags & SA_SIGINFO &&
	    old_sigbus.sa_sigaction != NULL) {
		old_sigbus.sa_sigaction(sig, si, uc);
		return;
	}
	/* Default action: fault again with no handler, and dump core. */
	signal(SIGBUS, old_sigbus.sa_handler == SIG_IGN
			   ? SIG_DFL
			   : old_sigbus.sa_handler);
}

int vhd_vhost_guard_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old_sigbus) < 0)
		return -errno;
	return 0;
}

void vhd_vhost_guard_poll(void)
{
	if (!zeroed_any)
		return;
	zeroed_any = 0;
	pthread_mutex_lock(&map_lock);
	for (int v = 0; v < GUARD_MAX_VID; v++)
		for (int i = 0; i < GUARD_MAPS_PER_VID; i++) {
			struct guard_map *m = &maps[v][i];

			if (!m->zeroed)
				continue;
			m->zeroed = 0;
			VHD_LOG(ERR, port,
				"port %s: the guest's %s (%zu bytes) shrank "
				"under vhostd (its file was truncated); it now "
				"reads as zeros: restart the guest",
				name_of(v),
				i == GUARD_LOG_SLOT ? "dirty log"
						    : "memory region",
				m->len);
		}
	pthread_mutex_unlock(&map_lock);
}

/* Does FD hold [OFF, OFF + LEN) of a regular file? 0 or a reason. */
static const char *check_file_range(int fd, uint64_t off, uint64_t len,
				    char *why, size_t whylen)
{
	struct stat st;
	uint64_t map_len;
	void *m;

	if (fd < 0 || fstat(fd, &st) < 0)
		return "no file descriptor";
	if (st.st_blksize <= 0 || (st.st_blksize & (st.st_blksize - 1)) != 0)
		return "odd block size";
	if (!S_ISREG(st.st_mode))
		return "not a regular file (a memfd or hugetlbfs file)";
	if (len == 0)
		return "size 0";
	if (off + len < off)
		return "offset + size wraps around";
	if (off + len > (uint64_t)st.st_size) {
		snprintf(why, whylen,
			 "offset 0x%" PRIx64 " + size 0x%" PRIx64
			 " is past the end of its file (%" PRIu64 " bytes)",
			 off, len, (uint64_t)st.st_size);
		return why;
	}
	/*
	 * Map it as librte_vhost will (from offset 0, read-write, shared,
	 * rounded up to the file's block size) and unmap it: a mapping
	 * librte_vhost fails to make leaks that region's fd in 22.11
	 * (vhost_user_set_mem_table moves the fd out of the message before
	 * mmap, and free_mem_region closes only the regions that mapped). A
	 * read-only fd, a write-sealed memfd or too few free hugepages are
	 * refused here instead.
	 */
	map_len = RTE_ALIGN_CEIL(off + len, (uint64_t)st.st_blksize);
	if (map_len == 0 || map_len > SIZE_MAX)
		return "size rounded up to the file's block size wraps around";
	m = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		snprintf(why, whylen, "cannot be mapped read-write: %s",
			 strerror(errno));
		return why;
	}
	munmap(m, map_len);
	return NULL;
}

static bool is_eventfd(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static const char *check_mem_table(const struct vu_msg_context *c, char *why,
				   size_t whylen)
{
	uint32_t n = c->msg.payload.memory.nregions;
	struct vu_region r[VU_MAX_FDS];
	char what[160];

	/* librte_vhost itself refuses a wrong count of regions or fds. */
	if (n > VU_MAX_FDS || c->fd_num != (int)n)
		return NULL;
	/* The payload sits at offset 12 of a packed struct: copy it out. */
	memcpy(r, (const uint8_t *)&c->msg + 12 + 8, n * sizeof(r[0]));
	for (uint32_t i = 0; i < n; i++) {
		const char *e =
		    check_file_range(c->fds[i], r[i].mmap_offset,
				     r[i].memory_size, what, sizeof(what));

		if (e == NULL && (r[i].guest_phys_addr + r[i].memory_size <
				      r[i].guest_phys_addr ||
				  r[i].userspace_addr + r[i].memory_size <
				      r[i].userspace_addr))
			e = "address + size wraps around";
		if (e) {
			snprintf(why, whylen, "region %u: %s", i, e);
			return why;
		}
	}
	return NULL;
}

/* What is wrong with C, or NULL. */
static const char *check_msg(int vid, const struct vu_msg_context *c, char *why,
			     size_t whylen)
{
	uint64_t pf = 0, f = 0;

	rte_vhost_get_negotiated_protocol_features(vid, &pf);
	rte_vhost_get_negotiated_features(vid, &f);
	switch (c->msg.request) {
	case VU_SET_MEM_TABLE:
		return check_mem_table(c, why, whylen);
	case VU_SET_VRING_NUM:
		/* librte_vhost 22.11 takes up to 32 frames a call (one used
		 * entry each) into a shadow ring of ring size entries, with
		 * no check against the ring size: a smaller ring overflows
		 * the heap. */
		if (c->msg.size >= 8 && (c->msg.payload.u64 >> 32) < 32) {
			snprintf(why, whylen,
				 "vring size %" PRIu64 " is below 32",
				 c->msg.payload.u64 >> 32);
			return why;
		}
		return NULL;
	case VU_SET_LOG_BASE:
		if (!(pf & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD)))
			return "LOG_SHMFD was not negotiated";
		if (c->fd_num != 1 || c->msg.size != 16)
			return NULL; /* librte_vhost refuses it */
		/* librte_vhost 22.11 maps offset + size and unmaps only size
		 * when the log is replaced: each offset would leak a mapping.
		 * QEMU always sends 0. */
		if (c->msg.payload.log.mmap_offset != 0)
			return "log offset is not 0";
		return check_file_range(
		    c->fds[0], c->msg.payload.log.mmap_offset,
		    c->msg.payload.log.mmap_size, why, whylen);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		if (c->msg.payload.u64 & VU_VRING_NOFD || c->fd_num != 1)
			return NULL;
		return is_eventfd(c->fds[0]) ? NULL : "fd is not an eventfd";
	case VU_SET_SLAVE_REQ_FD: {
		struct stat st;

		if (!(pf & (1ull << VHOST_USER_PROTOCOL_F_SLAVE_REQ)))
			return "SLAVE_REQ was not negotiated";
		if (c->fd_num == 1 &&
		    (fstat(c->fds[0], &st) < 0 || !S_ISSOCK(st.st_mode)))
			return "fd is not a socket";
		return NULL;
	}
	case VU_IOTLB_MSG:
		return f & (1ull << VIRTIO_F_IOMMU_PLATFORM)
			   ? NULL
			   : "VIRTIO_F_IOMMU_PLATFORM was not negotiated";
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
	case VU_CRYPTO_CREATE_SESS:
	case VU_CRYPTO_CLOSE_SESS:
	case VU_POSTCOPY_ADVISE:
	case VU_POSTCOPY_LISTEN:
	case VU_POSTCOPY_END:
	case VU_GET_INFLIGHT_FD:
	case VU_SET_INFLIGHT_FD:
		return "not offered to a net device";
	default:
		return NULL;
	}
}

static const char *request_name(uint32_t r)
{
	static const char *const n[] = {
	    [VU_RESET_OWNER] = "RESET_OWNER",
	    [VU_SET_MEM_TABLE] = "SET_MEM_TABLE",
	    [VU_SET_LOG_BASE] = "SET_LOG_BASE",
	    [VU_SET_VRING_NUM] = "SET_VRING_NUM",
	    [VU_GET_VRING_BASE] = "GET_VRING_BASE",
	    [VU_SET_VRING_KICK] = "SET_VRING_KICK",
	    [VU_SET_VRING_CALL] = "SET_VRING_CALL",
	    [VU_SET_VRING_ERR] = "SET_VRING_ERR",
	    [VU_SET_SLAVE_REQ_FD] = "SET_SLAVE_REQ_FD",
	    [VU_IOTLB_MSG] = "IOTLB_MSG",
	    [VU_GET_CONFIG] = "GET_CONFIG",
	    [VU_SET_CONFIG] = "SET_CONFIG",
	    [VU_CRYPTO_CREATE_SESS] = "CRYPTO_CREATE_SESS",
	    [VU_CRYPTO_CLOSE_SESS] = "CRYPTO_CLOSE_SESS",
	    [VU_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
	    [VU_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
	    [VU_POSTCOPY_END] = "POSTCOPY_END",
	    [VU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
	    [VU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
	};

	return r < RTE_DIM(n) && n[r] ? n[r] : "?";
}

/* Refuse C: its fds are closed and, with no reply-ack asked for, the
 * session ends (librte_vhost closes the connection). */
static enum rte_vhost_msg_result reject(int vid, struct vu_msg_context *c,
					const char *why)
{
	if (guard_log_ok())
		VHD_LOG(ERR, port,
			"port %s: rejected vhost-user %s (%u): %s; closing the "
			"session",
			name_of(vid), request_name(c->msg.request),
			c->msg.request, why);
	for (int i = 0; i < c->fd_num; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->fd_num = 0;
	c->msg.flags &= ~VU_NEED_REPLY;
	return RTE_VHOST_MSG_RESULT_ERR;
}

/* The request librte_vhost is handling on this thread (vhost-events):
 * its notifications (vring_state_changed) come before the next one. */
static __thread uint32_t cur_request;

bool vhd_vhost_guard_in_iotlb_msg(void)
{
	return cur_request == VU_IOTLB_MSG;
}

static enum rte_vhost_msg_result guard_msg(int vid, void *msg)
{
	struct vu_msg_context *c = msg;
	char why[256];
	const char *e;

	cur_request = c->msg.request;
	vhd_msg_fds_handled();
	if (c->fd_num < 0 || c->fd_num > VU_MAX_FDS)
		c->fd_num = 0; /* cannot happen: librte_vhost bounds it */
	e = check_msg(vid, c, why, sizeof(why));
	if (e)
		return reject(vid, c, e);
	if (c->msg.request == VU_SET_VRING_CALL) {
		uint32_t vring = c->msg.payload.u64 & 0xff;
		int ours;

		if (c->msg.payload.u64 & VU_VRING_NOFD || c->fd_num != 1) {
			vhd_notify_drop(vid, vring);
			return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
		}
		/* librte_vhost writes our eventfd; the relay theirs. */
		ours = vhd_notify_take(vid, vring, c->fds[0]);
		if (ours < 0) {
			snprintf(why, sizeof(why), "cannot relay calls: %s",
				 strerror(-ours));
			return reject(vid, c, why);
		}
		c->fds[0] = ours;
	} else if (c->msg.request == VU_SET_SLAVE_REQ_FD && c->fd_num == 1) {
		/* librte_vhost sends on our socket; the relay on theirs. */
		int ours = vhd_notify_take_chan(vid, c->fds[0]);

		if (ours < 0) {
			snprintf(why, sizeof(why),
				 "cannot relay the backend channel: %s",
				 strerror(-ours));
			return reject(vid, c, why);
		}
		c->fds[0] = ours;
	} else if (c->msg.request == VU_IOTLB_MSG &&
		   c->msg.payload.iotlb.type == VU_IOTLB_INVALIDATE) {
		/* QEMU invalidates "everything from IOVA up" as [IOVA, 2^64)
		 * (its notifier's range above the MSI window): librte_vhost
		 * 22.11 computes iova + size, which wraps to 0, and then
		 * invalidates neither the IOTLB entries nor the rings in it:
		 * translations of reused IOVAs would stay stale, and vhostd
		 * would read and write pages the guest gave to something
		 * else. The same range less its last byte (no page starts
		 * there). */
		uint64_t top = UINT64_MAX - c->msg.payload.iotlb.iova;

		if (c->msg.payload.iotlb.size > top)
			c->msg.payload.iotlb.size = top;
	} else if (c->msg.request == VU_GET_VRING_BASE) {
		/* librte_vhost closes the vring's call fd. */
		vhd_notify_drop(vid, c->msg.payload.u64 & 0xffffffff);
	} else if (c->msg.request == VU_RESET_OWNER) {
		vhd_notify_drop(vid, UINT32_MAX);
	}
	if (vid >= 0 && vid < GUARD_MAX_VID) {
		/* librte_vhost is about to unmap what this device mapped. */
		if (c->msg.request == VU_SET_MEM_TABLE ||
		    c->msg.request == VU_RESET_OWNER)
			maps_clear(vid, 0, GUARD_MAPS_PER_VID);
		else if (c->msg.request == VU_SET_LOG_BASE)
			maps_clear(vid, GUARD_LOG_SLOT, GUARD_LOG_SLOT + 1);
	}
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

/* After librte_vhost mapped a memory table or a log: register the
 * mappings for the SIGBUS handler. */
static enum rte_vhost_msg_result guard_post_msg(int vid, void *msg)
{
	struct vu_msg_context *c = msg;
	struct rte_vhost_memory *mem = NULL;

	if (vid < 0 || vid >= GUARD_MAX_VID)
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	if (c->msg.request == VU_SET_MEM_TABLE &&
	    rte_vhost_get_mem_table(vid, &mem) == 0) {
		for (uint32_t i = 0; i < mem->nregions && i < VU_MAX_FDS; i++)
			map_set(vid, i, (uintptr_t)mem->regions[i].mmap_addr,
				mem->regions[i].mmap_size);
		free(mem);
	} else if (c->msg.request == VU_SET_LOG_BASE) {
		uint64_t base, size, off = c->msg.payload.log.mmap_offset;

		/* librte_vhost maps the log from offset 0 of its file. */
		if (rte_vhost_get_log_base(vid, &base, &size) == 0 && base)
			map_set(vid, GUARD_LOG_SLOT, base - off, size + off);
	}
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

static const struct rte_vhost_user_extern_ops guard_ops = {
    .pre_msg_handle = guard_msg,
    .post_msg_handle = guard_post_msg,
};

static bool sun_is(const struct sockaddr_un *a, socklen_t len, const char *path)
{
	size_t n = strlen(path);

	return a->sun_family == AF_UNIX &&
	       len >= offsetof(struct sockaddr_un, sun_path) + n &&
	       strncmp(a->sun_path, path, n) == 0 &&
	       (len == offsetof(struct sockaddr_un, sun_path) + n ||
		a->sun_path[n] == '\0');
}

/*
 * librte_vhost reads and answers a frontend with blocking calls on its
 * one vhost-events thread: a frontend that sends half a message, or never
 * reads its replies, would hold that thread, and with it every other
 * guest's connects, reconnects and ring setup. librte_vhost does not show
 * us the connection's fd, so find it (the one socket, other than a
 * listening one, whose own or peer address is the port's path) and give
 * it send and receive timeouts: a message stalled for GUARD_IO_TIMEOUT_S
 * then fails and librte_vhost closes that session. Idle sessions are not
 * affected: librte_vhost reads only once poll() says a message came.
 */
#define GUARD_IO_TIMEOUT_S 1

static int set_io_timeouts(const char *path)
{
	struct timeval tv = {.tv_sec = GUARD_IO_TIMEOUT_S};
	struct dirent *e;
	int found = 0;
	DIR *d = opendir("/proc/self/fd");

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_un a;
		socklen_t len = sizeof(a);
		int fd = atoi(e->d_name), v = 0;
		socklen_t vl = sizeof(v);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || v)
			continue; /* not a socket, or a listening one */
		if ((getsockname(fd, (struct sockaddr *)&a, &len) == 0 &&
		     sun_is(&a, len, path)) ||
		    ((len = sizeof(a)),
		     getpeername(fd, (struct sockaddr *)&a, &len) == 0 &&
			 sun_is(&a, len, path))) {
			if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				       sizeof(tv)) < 0 ||
			    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				       sizeof(tv)) < 0) {
				closedir(d);
				return -errno;
			}
			found++;
		}
	}
	closedir(d);
	return found ? 0 : -ENOENT;
}

int vhd_vhost_guard_attach(int vid, const char *port_name)
{
	char path[PATH_MAX];
	int rc;

	if (vid < 0 || vid >= GUARD_MAX_VID)
		return -EINVAL;
	if (rte_vhost_get_ifname(vid, path, sizeof(path)) < 0)
		return -EINVAL;
	rc = set_io_timeouts(path);
	if (rc < 0)
		return rc;
	/* The control thread reads the name (guard_poll) under map_lock. */
	pthread_mutex_lock(&map_lock);
	snprintf(names[vid], sizeof(names[vid]), "%s", port_name);
	pthread_mutex_unlock(&map_lock);
	maps_clear(vid, 0, GUARD_MAPS_PER_VID);
	if (rte_vhost_extern_callback_register(vid, &guard_ops, NULL) < 0)
		return -EINVAL;
	return 0;
}

void vhd_vhost_guard_detach(int vid)
{
	if (vid < 0 || vid >= GUARD_MAX_VID)
		return;
	vhd_notify_drop(vid, UINT32_MAX);
	maps_clear(vid, 0, GUARD_MAPS_PER_VID);
}
