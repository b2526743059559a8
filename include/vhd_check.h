/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_check.h: vhostd --check-system, a look at the host before vhostd
 * starts (hugepages, socket directories, PCI devices and vfio, CPU
 * isolation, DPDK, privileges and limits).
 */
#ifndef VHD_CHECK_H
#define VHD_CHECK_H

#include <stdio.h>

/* The config --check-system reads when given none, if it exists. */
#define VHD_CHECK_DEFAULT_CONFIG "/etc/vhostd/vhostd.conf"

/*
 * Check the host for the config FILE (NULL: VHD_CHECK_DEFAULT_CONFIG if it
 * exists, else only the checks that need no config) and print one line per
 * check to OUT ("ok", "warn" or "FAIL", each problem followed by its fix),
 * then a summary. Reads sysfs, procfs and the file system only: no EAL, no
 * hugepage taken, nothing created or changed. Returns 0 when no check
 * failed (warnings included), 1 otherwise: an exit status.
 */
int vhd_check_system(const char *file, FILE *out);

#endif
