/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * check.h: what the parts of vhostd --check-system share
 * (system.c, numa.c, ports.c): the report and the
 * readers of sysfs files.
 */
#ifndef VHD_CHECK_SYSTEM_H
#define VHD_CHECK_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vhd_config.h"

/* ctl/server.c's CTL_RUN_DIR: the one directory vhostd makes itself, for
 * the control socket, which it opens before any port's socket. */
#define VHD_CHK_RUN_DIR "/run/vhostd"

enum vhd_chk_lvl { VHD_CHK_OK, VHD_CHK_WARN, VHD_CHK_FAIL };

struct vhd_chk {
	FILE *out;
	const char *file;	       /* config file, or NULL */
	const struct vhd_config *conf; /* loaded config, or NULL */
	unsigned int n[3];	       /* lines so far, by level */
	/* An EAL process with the config's file-prefix runs (vhostd already
	 * started): the hugepages it holds are not free. */
	bool running;
};

/* Print one check's line at level L, and under it the lines of FIX (one
 * per '\n'; NULL: none). */
void vhd_chk_say(struct vhd_chk *k, enum vhd_chk_lvl l, const char *fix,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The first line of file PATH, without its newline, into BUF (LEN bytes).
 * Returns 0 or a negative errno. */
int vhd_chk_read_line(const char *path, char *buf, size_t len);

/* The number in the file whose path FMT makes; 0 if there is none. */
unsigned long vhd_chk_read_ul(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* The checks, in numa.c and ports.c. Hugepages need no
 * config (K->conf NULL: no socket-mem to compare with); the others do. */
void vhd_chk_hugepages(struct vhd_chk *k);
void vhd_chk_cpus(struct vhd_chk *k);
void vhd_chk_sockets(struct vhd_chk *k);
void vhd_chk_pci(struct vhd_chk *k);

#endif
