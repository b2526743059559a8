/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/cmd_capture.c: the `capture PORT FILE [count=N] [duration=S]
 * [dir=rx|tx|both]` command. Control thread only.
 *
 * The request is answered when the capture ends (dp/capture.c calls DONE):
 * after COUNT frames, after DURATION seconds, or when the port goes. Until
 * then it is deferred; if the client goes away first, the capture is ended
 * without an answer (the file is still completed), as Ctrl-C on vhostctl
 * ends it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "vhd.h"
#include "vhd_capture.h"

#define CAP_COUNT_MAX	 UINT32_MAX
#define CAP_DURATION_MAX (366u * 24 * 3600) /* seconds */

/* One deferred capture request. */
struct cap_req {
	struct vhd_ctl_req *req;
	struct vhd_port *port;
	char name[VHD_NAME_MAX];
	char file[PATH_MAX];
};

static void cap_done(void *arg, uint64_t packets, uint64_t dropped,
		     const char *error)
{
	struct cap_req *r = arg;

	if (error != NULL)
		vhd_ctl_err(r->req, EIO, "capture of port %s: %s", r->name,
			    error);
	else
		vhd_ctl_ok(r->req, json_pack("{s:s,s:s,s:I,s:I}", "port",
					     r->name, "file", r->file,
					     "packets", (json_int_t)packets,
					     "dropped", (json_int_t)dropped));
	free(r);
}

/* The client went away: end the capture, no answer. Until DONE answers,
 * the port exists (deleting a port ends its capture with DONE first); the
 * lookup only guards against a port freed without that. */
static void cap_gone(void *arg)
{
	struct cap_req *r = arg;

	if (vhd_port_find(r->name) == r->port)
		vhd_capture_stop(r->port, false);
	free(r);
}

/* A decimal number from 1 to MAX, nothing else. */
static int parse_num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* FILE: an absolute path, not too long, in a directory that exists. */
static int check_file(struct vhd_ctl_req *req, const char *file)
{
	char dir[PATH_MAX];
	const char *slash;
	struct stat st;

	if (file[0] != '/') {
		vhd_ctl_err(req, EINVAL,
			    "capture: file '%s' must be an absolute path",
			    file);
		return -1;
	}
	if (strlen(file) >= PATH_MAX) {
		vhd_ctl_err(req, ENAMETOOLONG,
			    "capture: file name longer than %d bytes",
			    PATH_MAX - 1);
		return -1;
	}
	slash = strrchr(file, '/');
	if (slash[1] == '\0') {
		vhd_ctl_err(req, EINVAL, "capture: file '%s' names a directory",
			    file);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
	if (dir[0] == '\0')
		snprintf(dir, sizeof(dir), "/");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		vhd_ctl_err(req, ENOENT, "capture: no such directory '%s'",
			    dir);
		return -1;
	}
	return 0;
}

void vhd_cmd_capture(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	uint64_t count = 0, duration = 0;
	unsigned int dir = VHD_CAP_RX | VHD_CAP_TX;
	bool seen[3] = {false, false, false};
	struct vhd_port *p;
	struct cap_req *r;
	char err[PATH_MAX + 256];
	int rc;

	p = vhd_port_find(argv[0]);
	if (p == NULL) {
		vhd_ctl_err(req, ENOENT, "no port %s", argv[0]);
		return;
	}
	if (check_file(req, argv[1]) < 0)
		return;
	for (int i = 2; i < argc; i++) {
		char key[16];
		const char *val;
		int k;

		if (vhd_ctl_kv(argv[i], key, sizeof(key), &val) < 0) {
			vhd_ctl_err(req, EINVAL,
				    "capture: '%s' is not count=N, duration=S "
				    "or dir=rx|tx|both",
				    argv[i]);
			return;
		}
		k = !strcmp(key, "count")      ? 0
		    : !strcmp(key, "duration") ? 1
		    : !strcmp(key, "dir")      ? 2
					       : -1;
		if (k < 0) {
			vhd_ctl_err(req, EINVAL,
				    "capture: unknown option '%s' (count, "
				    "duration, dir)",
				    key);
			return;
		}
		if (seen[k]) {
			vhd_ctl_err(req, EINVAL, "capture: %s given twice",
				    key);
			return;
		}
		seen[k] = true;
		if (k == 0 && parse_num(val, CAP_COUNT_MAX, &count) < 0) {
			vhd_ctl_err(req, EINVAL,
				    "capture: count: '%s' is not a number from "
				    "1 to %" PRIu64,
				    val, (uint64_t)CAP_COUNT_MAX);
			return;
		}
		if (k == 1 && parse_num(val, CAP_DURATION_MAX, &duration) < 0) {
			vhd_ctl_err(req, EINVAL,
				    "capture: duration: '%s' is not a number "
				    "of seconds from 1 to %u",
				    val, CAP_DURATION_MAX);
			return;
		}
		if (k == 2) {
			if (!strcmp(val, "rx"))
				dir = VHD_CAP_RX;
			else if (!strcmp(val, "tx"))
				dir = VHD_CAP_TX;
			else if (!strcmp(val, "both"))
				dir = VHD_CAP_RX | VHD_CAP_TX;
			else {
				vhd_ctl_err(req, EINVAL,
					    "capture: dir: '%s' is not rx, tx "
					    "or both",
					    val);
				return;
			}
		}
	}

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		vhd_ctl_err(req, ENOMEM, "out of memory");
		return;
	}
	r->req = req;
	r->port = p;
	snprintf(r->name, sizeof(r->name), "%s", p->name);
	snprintf(r->file, sizeof(r->file), "%s", argv[1]);
	rc = vhd_capture_start(p, argv[1], dir, count, (uint32_t)duration,
			       cap_done, r, err, sizeof(err));
	if (rc < 0) {
		vhd_ctl_err(req, -rc, "capture: %s", err);
		free(r);
		return;
	}
	/* Nothing ends a capture before the control loop polls again. */
	vhd_ctl_defer(req, cap_gone, r);
}
