/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * scripts/bench/genutil.h: what the bench's own DPDK generators
 * (latgen.c, tcpgen.c) share: the stop flag their signal handler sets,
 * seconds as TSC cycles, and the wait for a port's link. Each is one
 * program of one file; this header is included once in each.
 */
#ifndef GENUTIL_H
#define GENUTIL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>

static volatile sig_atomic_t quit; /* set by SIGINT/SIGTERM */
static uint64_t hz;		   /* TSC cycles a second, set in main */

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static uint64_t cyc_of(double s)
{
	return (uint64_t)(s * (double)hz);
}

/* 0 once port P's link is up, -1 (said on stderr as WHO) if it is not
 * within TIMEOUT seconds or the program is told to quit. */
static int wait_link(const char *who, uint16_t p, double timeout)
{
	struct rte_eth_link link;
	uint64_t end = rte_rdtsc() + cyc_of(timeout);

	while (!quit) {
		memset(&link, 0, sizeof(link));
		if (rte_eth_link_get_nowait(p, &link) == 0 &&
		    link.link_status == RTE_ETH_LINK_UP)
			return 0;
		if (rte_rdtsc() > end)
			break;
		rte_delay_ms(100);
	}
	fprintf(stderr, "%s: port %u: link not up within %.0f s\n", who, p,
		timeout);
	return -1;
}

#endif
