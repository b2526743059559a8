/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_log.h: where log lines go (log.c), and log levels and logtypes by
 * name for the log/list and log/set commands (ctl/cmd_log.c).
 *
 * Every line of vhostd (VHD_LOG) and of DPDK (RTE_LOG) passes through
 * rte_log's one stream, which log.c replaces: under systemd the lines go
 * to the journal with their priority and logtype as fields, in the
 * foreground to stderr as "LEVEL logtype: message".
 */
#ifndef VHD_LOG_H
#define VHD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Send every rte_log line to the journal when stderr is the journal's
 * stream (systemd sets $JOURNAL_STREAM to its "device:inode"), else to
 * stderr. Call before rte_eal_init, so that EAL's own lines come too.
 * Returns 0, or a negative errno (rte_log then keeps its default: stderr
 * and syslog). */
int vhd_log_open(void);

/* Give rte_log its default stream back and free ours. After
 * rte_eal_cleanup. */
void vhd_log_close(void);

/* True when lines go to the journal. */
bool vhd_log_to_journal(void);

/* Level 1 (emergency) .. 8 (debug) from a name ("emerg", "emergency",
 * "alert", "crit", "critical", "err", "error", "warn", "warning",
 * "notice", "info", "debug", any case) or a number "1".."8"; -EINVAL
 * otherwise. */
int vhd_log_level_parse(const char *s);

/* LEVEL's name as EAL's --log-level takes it ("debug"), "?" if out of
 * range. */
const char *vhd_log_level_name(int level);

/* One setting in EAL's --log-level syntax, which the config's log-level
 * key uses too: "LEVEL" (the global level), "GLOB:LEVEL" (logtypes whose
 * name matches the fnmatch(3) pattern), "REGEX,LEVEL" (a POSIX basic
 * regular expression), as rte_log_set_level_pattern/regexp match. */
enum vhd_log_kind { VHD_LOG_GLOBAL, VHD_LOG_GLOB, VHD_LOG_REGEX };

#define VHD_LOG_PATTERN_MAX 128 /* bytes, with the NUL */

struct vhd_log_spec {
	enum vhd_log_kind kind;
	char pattern[VHD_LOG_PATTERN_MAX]; /* "" for VHD_LOG_GLOBAL */
	int level;			   /* 1..8 */
};

/* Parse TEXT into SPEC. Returns 0, or -EINVAL with what is wrong in ERR
 * (ERRLEN bytes). The pattern may not be empty nor hold white space. */
int vhd_log_spec_parse(const char *text, struct vhd_log_spec *spec, char *err,
		       size_t errlen);

/* SPEC as EAL's --log-level takes it, in OUT (LEN bytes); the length it
 * needs, as snprintf. */
int vhd_log_spec_format(const struct vhd_log_spec *spec, char *out, size_t len);

/* Whether logtype NAME matches SPEC's pattern (every name matches a
 * VHD_LOG_GLOBAL one). -EINVAL for a regular expression that does not
 * compile. */
int vhd_log_spec_matches(const struct vhd_log_spec *spec, const char *name);

/* Call FN(ID, NAME, LEVEL, ARG) for every logtype registered now, in id
 * order; LEVEL is its current level. Returns 0 or -ENOMEM. Any thread;
 * NAME is valid only during the call. */
int vhd_log_types_foreach(void (*fn)(uint32_t id, const char *name, int level,
				     void *arg),
			  void *arg);

#endif
