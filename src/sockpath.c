/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sockpath.c: a path made ready for a listening unix socket (see
 * vhd_sockpath.h). A stale socket file is told from a live one by trying
 * to connect to it: nothing else says whether a process still listens.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhd_sockpath.h"

_Static_assert(VHD_SOCKPATH_MAX ==
		   sizeof(((struct sockaddr_un *)0)->sun_path) - 1,
	       "VHD_SOCKPATH_MAX is sun_path less its NUL");

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/* PATH's directory must exist and be writable; only MKDIR is created (a
 * typo elsewhere should fail, not grow a tree). */
static int check_dir(const char *path, const char *what, const char *mk,
		     char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	snprintf(dir, sizeof(dir), "%.*s",
		 slash == path ? 1 : (int)(slash - path), path);
	if (stat(dir, &st) < 0 && errno == ENOENT && mk &&
	    strcmp(dir, mk) == 0 && mkdir(dir, 0755) < 0 && errno != EEXIST)
		return fail(err, errlen, -errno, "%s %s: cannot create %s: %s",
			    what, path, dir, strerror(errno));
	if (stat(dir, &st) < 0)
		return fail(err, errlen, -errno, "%s %s: directory %s: %s",
			    what, path, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(err, errlen, -ENOTDIR,
			    "%s %s: %s is not a directory", what, path, dir);
	if (access(dir, W_OK | X_OK) < 0)
		return fail(err, errlen, -errno, "%s %s: cannot create it: %s",
			    what, path, strerror(errno));
	return 0;
}

int vhd_sockpath_check(const char *path, const char *what, char *err,
		       size_t errlen)
{
	size_t len = strlen(path);

	if (path[0] != '/')
		return fail(err, errlen, -EINVAL,
			    "%s %s: must be an absolute path", what, path);
	if (len > VHD_SOCKPATH_MAX)
		return fail(err, errlen, -ENAMETOOLONG,
			    "%s %s: path too long (%zu bytes, at most %d)",
			    what, path, len, VHD_SOCKPATH_MAX);
	return 0;
}

int vhd_sockpath_prepare(const char *path, const char *what, const char *mk,
			 char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	struct stat st;
	int fd, rc;

	rc = vhd_sockpath_check(path, what, err, errlen);
	if (rc < 0)
		return rc;
	rc = check_dir(path, what, mk, err, errlen);
	if (rc < 0)
		return rc;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0
				       : fail(err, errlen, -errno, "%s %s: %s",
					      what, path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return fail(err, errlen, -EEXIST,
			    "%s %s: file exists and is not a socket", what,
			    path);
	memcpy(sa.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s %s: socket: %s", what,
			    path, strerror(errno));
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	close(fd);
	if (rc == 0 || rc == -EAGAIN || rc == -EINPROGRESS)
		return fail(err, errlen, -EADDRINUSE,
			    "%s %s: in use by another process", what, path);
	if (rc != -ECONNREFUSED)
		return fail(err, errlen, rc, "%s %s: connect: %s", what, path,
			    strerror(-rc));
	if (unlink(path) < 0 && errno != ENOENT)
		return fail(err, errlen, -errno,
			    "%s %s: cannot remove the stale socket: %s", what,
			    path, strerror(errno));
	return 0;
}
