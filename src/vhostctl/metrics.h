/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostctl/metrics.h: `vhostctl metrics`, the Prometheus exporter.
 */
#ifndef VHOSTCTL_METRICS_H
#define VHOSTCTL_METRICS_H

/* Run `vhostctl metrics [--listen ADDR:PORT]` against the control socket
 * SOCK (borrowed), ARGV being the words after "metrics"; each request to
 * vhostd waits at most TIMEOUT_MS (0: forever). Returns the exit status:
 * 0, 1 (could not serve), 2 (usage), 3 (vhostd not reachable: the text
 * printed still says vhostd_up 0). With --listen it returns only once
 * SIGINT or SIGTERM arrives. */
int vhostctl_metrics(const char *sock, int argc, char **argv, int timeout_ms);

#endif
