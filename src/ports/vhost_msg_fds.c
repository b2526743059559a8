/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ports/vhost_msg_fds.c: closes the fds that librte_vhost drops with a
 * vhost-user message it refuses before any callback of vhostd's sees it.
 *
 * librte_vhost 22.11 (and 23.11) reads a message and its fds, then checks
 * its vring index (vhost_user_check_and_alloc_queue_pair: an index of
 * VHOST_MAX_VRING (256) or more, or SET_INFLIGHT_FD with no queue); on
 * failure vhost_user_msg_handler() returns without closing the fds, and
 * ends the session. The external pre-handler (vhost_guard.c) runs only
 * after that check, so it cannot close them either. A frontend that
 * reconnects in a loop could leak up to 8 fds a connection until vhostd
 * has none left for any guest.
 *
 * librte_vhost never says which fds a message brought, so learn it where
 * they arrive: vhostd defines recvmsg() and read() (the dynamic linker
 * binds librte_vhost's calls to the executable's definitions first; each
 * calls the next definition, libc's or ASan's). On the thread that reads
 * vhost-user messages (librte_vhost's vhost-events thread; the state is
 * per thread, so other threads' calls only pass through):
 *  - recvmsg() that brings fds records them, with each fd's (dev, ino),
 *    and whether librte_vhost will read a payload next;
 *  - read() of that payload notes whether it came whole (librte_vhost
 *    closes the fds itself when it did not: read_vhost_message());
 *  - the pre-handler (vhd_msg_fds_handled) marks them as seen: from there
 *    librte_vhost's handlers, or the guard, own them;
 *  - destroy_connection (vhd_msg_fds_reap, same thread) closes those that
 *    were read whole and never seen, if the number still names the same
 *    file.
 * The fix belongs in librte_vhost (close the message's fds on that error
 * path); drop this file with a DPDK that has it.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_version.h>

#include "vhd.h"

/* 22.11's VHOST_USER_HDR_SIZE, VHOST_MEMORY_MAX_NREGIONS, and the size of
 * VhostUserMsg's payload union (see vhost_guard.c). */
#define MSG_HDR_SIZE	 12
#define MSG_MAX_FDS	 8
#define MSG_PAYLOAD_SIZE 632

enum msg_state {
	MSG_NONE,    /* nothing recorded, or librte_vhost owns the fds */
	MSG_PAYLOAD, /* header read, payload read next */
	MSG_READ,    /* read whole: a handler must see it */
};

struct msg_fds {
	enum msg_state state;
	int sock;
	uint32_t payload_len;
	int n;
	int fd[MSG_MAX_FDS];
	dev_t dev[MSG_MAX_FDS];
	ino_t ino[MSG_MAX_FDS];
};

static _Thread_local struct msg_fds pending;

typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*read_fn)(int, void *, size_t);

static void *next_recvmsg;
static void *next_read;

/* The next definition after vhostd's: libc's, or ASan's interceptor. Looked
 * up on first use (libraries' constructors may call read() before ours
 * would run), by whichever thread comes first: each finds the same. */
static void *next_of(void **slot, const char *sym)
{
	void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);

	if (f == NULL) {
		f = dlsym(RTLD_NEXT, sym);
		__atomic_store_n(slot, f, __ATOMIC_RELAXED);
	}
	return f;
}

static void record(int sock, const struct msghdr *m, ssize_t len)
{
	struct cmsghdr *c;
	uint32_t size;

	pending.state = MSG_NONE;
	pending.n = 0;
	for (c = CMSG_FIRSTHDR(m); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		/* librte_vhost copies the first SCM_RIGHTS block only, and
		 * at most MSG_MAX_FDS fds fit its control buffer. */
		pending.n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (pending.n > MSG_MAX_FDS)
			pending.n = MSG_MAX_FDS;
		memcpy(pending.fd, CMSG_DATA(c), pending.n * sizeof(int));
		break;
	}
	/* A short header: librte_vhost closes the fds itself. */
	if (pending.n == 0 || len != MSG_HDR_SIZE || m->msg_iovlen < 1 ||
	    m->msg_iov[0].iov_len < MSG_HDR_SIZE)
		return;
	for (int i = 0; i < pending.n; i++) {
		struct stat st;

		if (fstat(pending.fd[i], &st) < 0) {
			pending.n = 0;
			return;
		}
		pending.dev[i] = st.st_dev;
		pending.ino[i] = st.st_ino;
	}
	memcpy(&size, (const char *)m->msg_iov[0].iov_base + 8, sizeof(size));
	if (size > MSG_PAYLOAD_SIZE)
		return; /* refused unread: librte_vhost closes the fds */
	pending.sock = sock;
	pending.payload_len = size;
	pending.state = size ? MSG_PAYLOAD : MSG_READ;
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	ssize_t r;

	r = ((recvmsg_fn)next_of(&next_recvmsg, "recvmsg"))(fd, m, flags);
	if (r > 0 && !(flags & MSG_PEEK)) {
		if (m->msg_controllen > 0)
			record(fd, m, r);
		else
			pending.state = MSG_NONE;
	}
	return r;
}

ssize_t read(int fd, void *buf, size_t count)
{
	ssize_t r;

	r = ((read_fn)next_of(&next_read, "read"))(fd, buf, count);
	if (__builtin_expect(pending.state == MSG_PAYLOAD, 0) &&
	    fd == pending.sock && count == pending.payload_len)
		pending.state = r == (ssize_t)count ? MSG_READ : MSG_NONE;
	return r;
}

void vhd_msg_fds_handled(void)
{
	pending.state = MSG_NONE;
}

/* The DPDK releases known to drop the fds (22.11 is the one vhostd is
 * built with; 23.11 still does). */
#define MSG_FDS_DROPPED (RTE_VERSION < RTE_VERSION_NUM(24, 0, 0, 0))

int vhd_msg_fds_reap(void)
{
	int closed = 0;

	if (!MSG_FDS_DROPPED || pending.state != MSG_READ)
		return 0;
	pending.state = MSG_NONE;
	for (int i = 0; i < pending.n; i++) {
		struct stat st;

		if (fstat(pending.fd[i], &st) == 0 &&
		    st.st_dev == pending.dev[i] &&
		    st.st_ino == pending.ino[i] && close(pending.fd[i]) == 0)
			closed++;
	}
	return closed;
}
