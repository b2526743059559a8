/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_sockpath.h: getting a path ready for a listening unix socket, for
 * the vhost-user server sockets and the control socket alike.
 */
#ifndef VHD_SOCKPATH_H
#define VHD_SOCKPATH_H

#include <stddef.h>

/* The longest path a unix socket address holds: sun_path less its NUL. */
#define VHD_SOCKPATH_MAX 107

/*
 * PATH as a unix socket's address, without touching the file system:
 * absolute and at most VHD_SOCKPATH_MAX bytes. Returns 0, or -EINVAL /
 * -ENAMETOOLONG with "WHAT PATH: what is wrong" in ERR.
 */
int vhd_sockpath_check(const char *path, const char *what, char *err,
		       size_t errlen);

/*
 * Make PATH usable for bind(): no longer than sun_path allows (the kernel
 * and librte_vhost would cut it silently), in a directory that exists and
 * that we may write (only MKDIR, if PATH's directory is exactly that, is
 * created), with no file in the way: a socket file nobody listens on is
 * left over from a crash and removed; one that answers belongs to a live
 * process (-EADDRINUSE); any other file is -EEXIST. Returns 0 or a negative
 * errno with "WHAT PATH: what is wrong" in ERR.
 */
int vhd_sockpath_prepare(const char *path, const char *what, const char *mkdir,
			 char *err, size_t errlen);

#endif
