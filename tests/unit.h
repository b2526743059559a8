/* SPDX-License-Identifier: BSD-3-Clause */
/* unit.h: the few assertion helpers the C unit tests share. */
#ifndef VHD_UNIT_H
#define VHD_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed, unit_checks;

#define EXPECT(cond, ...)                                                      \
	do {                                                                   \
		unit_checks++;                                                 \
		if (!(cond)) {                                                 \
			unit_failed++;                                         \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

#define UNIT_CASE(fn)                                                      \
	do {                                                               \
		int before = unit_failed;                                  \
		fn();                                                      \
		printf("%s %s\n", unit_failed == before ? "ok  " : "FAIL", \
		       #fn);                                               \
	} while (0)

static inline int unit_done(void)
{
	printf("%d checks, %d failed\n", unit_checks, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
