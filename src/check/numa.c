/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * numa.c: --check-system's hugepages and CPUs (system.c).
 *
 * Hugepages are counted where DPDK looks for them: the sizes that have a
 * hugetlbfs mount (or huge-dir's alone), free less what is promised, in
 * total against socket-mem and on each lcore's NUMA node, where vhostd
 * makes that lcore's mbuf pool. CPUs: EAL refuses an lcore on a CPU that
 * is absent or offline; isolation is only a warning (a shared CPU works,
 * slower).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <rte_common.h>

#include "check.h"

#define HP_SYS	 "/sys/kernel/mm/hugepages"
#define NODE_SYS "/sys/devices/system/node"
#define CPU_SYS	 "/sys/devices/system/cpu"
/* vhostd's socket-mem when a config does not say (config.c). */
#define SOCKET_MEM_DEFAULT 256

#define MAX_SIZES 8
#define MAX_CPUS  1024 /* [vhostd] lcores and main-lcore are below this */

/* ------------------------------------------------------------- CPU lists */

struct cpuset {
	uint64_t b[MAX_CPUS / 64];
};

static bool cpu_in(const struct cpuset *s, unsigned int cpu)
{
	return cpu < MAX_CPUS && (s->b[cpu / 64] >> (cpu % 64) & 1);
}

static void cpu_add(struct cpuset *s, unsigned int cpu)
{
	if (cpu < MAX_CPUS)
		s->b[cpu / 64] |= 1ULL << (cpu % 64);
}

static unsigned int cpus_count(const struct cpuset *s)
{
	unsigned int n = 0;

	for (size_t i = 0; i < RTE_DIM(s->b); i++)
		n += (unsigned int)__builtin_popcountll(s->b[i]);
	return n;
}

static bool cpus_empty(const struct cpuset *s)
{
	return cpus_count(s) == 0;
}

/* A kernel CPU list ("0-3,8"), as in /sys/devices/system/cpu/online, into
 * S; CPUs from MAX_CPUS on are left out (no lcore can be one). */
static void cpus_parse(const char *list, struct cpuset *s)
{
	const char *p = list;

	memset(s, 0, sizeof(*s));
	while (*p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (end == p)
			break;
		if (*end == '-')
			hi = strtoul(end + 1, &end, 10);
		for (unsigned long c = lo; c <= hi && c < MAX_CPUS; c++)
			cpu_add(s, (unsigned int)c);
		p = end + (*end == ',');
	}
}

/* A sysfs CPU list file into S; false if there is no such file. */
static bool cpus_read(const char *path, struct cpuset *s)
{
	char buf[4096];

	if (vhd_chk_read_line(path, buf, sizeof(buf)) < 0) {
		memset(s, 0, sizeof(*s));
		return false;
	}
	cpus_parse(buf, s);
	return true;
}

/* The NUMA node of CPU (sysfs's cpuN/nodeM link), or -1. */
static int cpu_node(unsigned int cpu)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int node = -1;

	snprintf(path, sizeof(path), CPU_SYS "/cpu%u", cpu);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && node < 0)
		if (sscanf(e->d_name, "node%d", &node) != 1)
			node = -1;
	closedir(d);
	return node;
}

/* "1,3" into BUF: the CPUs of the lcores in S. */
static void cpus_format(const struct cpuset *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int c = 0; c < MAX_CPUS && n < len; c++)
		if (cpu_in(s, c))
			n +=
			    snprintf(buf + n, len - n, "%s%u", n ? "," : "", c);
}

/* -------------------------------------------------------------- hugepages */

struct hp {
	unsigned long kb;	  /* page size */
	unsigned long nr, avail;  /* reserved; free and not promised */
	char mount[PATH_MAX / 4]; /* a hugetlbfs of this size, or "" */
};

static int hp_cmp(const void *a, const void *b)
{
	const struct hp *x = a, *y = b;

	return (x->kb > y->kb) - (x->kb < y->kb);
}

/* Every hugepage size the kernel has, with its pages and a mount. */
static int hp_scan(struct hp *hp)
{
	DIR *d = opendir(HP_SYS);
	struct mntent *m;
	struct dirent *e;
	FILE *f;
	int n = 0;

	while (d && (e = readdir(d)) != NULL && n < MAX_SIZES) {
		unsigned long kb, free, resv;

		if (sscanf(e->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		free = vhd_chk_read_ul(HP_SYS "/%s/free_hugepages", e->d_name);
		resv = vhd_chk_read_ul(HP_SYS "/%s/resv_hugepages", e->d_name);
		hp[n] = (struct hp){
		    .kb = kb,
		    .nr = vhd_chk_read_ul(HP_SYS "/%s/nr_hugepages", e->d_name),
		    .avail = free > resv ? free - resv : 0,
		};
		n++;
	}
	if (d)
		closedir(d);
	qsort(hp, n, sizeof(*hp), hp_cmp);
	/* A hugetlbfs's block size is its page size. */
	f = setmntent("/proc/mounts", "re");
	while (f && (m = getmntent(f)) != NULL) {
		struct statfs sf;

		if (strcmp(m->mnt_type, "hugetlbfs") != 0 ||
		    statfs(m->mnt_dir, &sf) < 0)
			continue;
		for (int i = 0; i < n; i++)
			if (hp[i].kb == (unsigned long)sf.f_bsize / 1024 &&
			    hp[i].mount[0] == '\0')
				snprintf(hp[i].mount, sizeof(hp[i].mount), "%s",
					 m->mnt_dir);
	}
	if (f)
		endmntent(f);
	return n;
}

/* The default hugepage size (what vm.nr_hugepages reserves), in kB. */
static unsigned long hp_default_kb(void)
{
	char line[128];
	unsigned long kb = 2048;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* The commands that reserve NR pages of KB kB, now and at every boot. */
static void hp_fix(char *fix, size_t len, unsigned long kb, unsigned long nr,
		   unsigned long def_kb)
{
	int n = snprintf(fix, len,
			 "echo %lu > " HP_SYS "/hugepages-%lukB/nr_hugepages\n",
			 nr, kb);

	if (kb == def_kb)
		snprintf(fix + n, len - n,
			 "to reserve them at every boot: echo "
			 "'vm.nr_hugepages = %lu' > "
			 "/etc/sysctl.d/80-vhostd.conf",
			 nr);
	else
		snprintf(fix + n, len - n,
			 "to reserve them at every boot: add hugepagesz=%luM "
			 "hugepages=%lu to GRUB_CMDLINE_LINUX in "
			 "/etc/default/grub, then update-grub",
			 kb / 1024, nr);
}

/* The mount command and fstab line for a hugetlbfs of KB kB at DIR. */
static void mount_fix(char *fix, size_t len, const char *dir, unsigned long kb)
{
	snprintf(fix, len,
		 "mkdir -p %s && mount -t hugetlbfs -o pagesize=%luM nodev "
		 "%s\nto mount it at every boot, in /etc/fstab: nodev %s "
		 "hugetlbfs pagesize=%luM 0 0",
		 dir, kb / 1024, dir, dir, kb / 1024);
}

/* Free pages of KB kB on NODE, the per-node counterpart of avail. */
static unsigned long node_free(int node, unsigned long kb)
{
	return vhd_chk_read_ul(NODE_SYS "/node%d/hugepages/hugepages-%lukB/"
					"free_hugepages",
			       node, kb);
}

/*
 * The lcores' NUMA nodes: EAL spreads -m over the nodes by their share of
 * the lcores (and takes the rest wherever pages are left), and vhostd
 * makes each lcore's mbuf pool on its node, where it fails without pages.
 * KB is the page size a fix reserves.
 */
static void check_nodes(struct vhd_chk *k, const struct hp *hp, int n,
			const bool *usable, unsigned long kb)
{
	const struct vhd_config *c = k->conf;
	unsigned int n_lc = c->n_dp + 1;
	char fix[256], list[256];

	for (int node = 0; node < 64; node++) {
		unsigned long mib = 0, share, add;
		struct cpuset on = {{0}};
		unsigned int n_on = 0; /* lcores, two may share a CPU */

		for (unsigned int i = 0; i < n_lc; i++) {
			unsigned int cpu = i ? c->dp_cpus[i - 1] : c->main_cpu;

			if (cpu_node(cpu) == node) {
				cpu_add(&on, cpu);
				n_on++;
			}
		}
		if (n_on == 0)
			continue;
		for (int i = 0; i < n; i++)
			if (usable[i])
				mib +=
				    node_free(node, hp[i].kb) * hp[i].kb / 1024;
		cpus_format(&on, list, sizeof(list));
		share = (unsigned long)c->socket_mem * n_on / n_lc;
		add = share > mib ? share - mib : 0;
		snprintf(fix, sizeof(fix),
			 "echo %lu > " NODE_SYS
			 "/node%d/hugepages/hugepages-%lukB/nr_hugepages",
			 vhd_chk_read_ul(NODE_SYS
					 "/node%d/hugepages/hugepages-%lukB/"
					 "nr_hugepages",
					 node, kb) +
			     RTE_MAX((add * 1024 + kb - 1) / kb, 1UL),
			 node, kb);
		if (mib == 0)
			vhd_chk_say(k, VHD_CHK_FAIL, fix,
				    "hugepages on node %d (cpus %s): none "
				    "free, and these lcores' mbuf pool is "
				    "made there",
				    node, list);
		else if (mib < share)
			vhd_chk_say(
			    k, VHD_CHK_WARN, fix,
			    "hugepages on node %d (cpus %s): %lu MiB free, "
			    "less than its share of socket-mem (%lu MiB): the "
			    "rest comes from another node, slower to reach",
			    node, list, mib, share);
		else
			vhd_chk_say(
			    k, VHD_CHK_OK, NULL,
			    "hugepages on node %d (cpus %s): %lu MiB free, its "
			    "share of socket-mem is %lu MiB",
			    node, list, mib, share);
	}
}

/* WHAT DIR (a hugetlbfs) is not writable by vhostd's user (errno). */
static void chown_fail(struct vhd_chk *k, const char *what, const char *dir)
{
	unsigned int uid = (unsigned int)geteuid();
	int e = errno;
	char fix[PATH_MAX + 128];

	snprintf(fix, sizeof(fix),
		 "run vhostd as root, or chown %u %s (and uid=%u in its "
		 "/etc/fstab options, to keep it)",
		 uid, dir, uid);
	vhd_chk_say(k, VHD_CHK_FAIL, fix,
		    "%s %s: uid %u cannot create files there: %s", what, dir,
		    uid, strerror(e));
}

void vhd_chk_hugepages(struct vhd_chk *k)
{
	const struct vhd_config *c = k->conf;
	unsigned long def_kb = hp_default_kb(), dir_kb = 0, mib = 0, need;
	unsigned long fix_kb = def_kb, fix_nr = 0;
	bool usable[MAX_SIZES] = {false}, any = false, mounted = false;
	bool any_usable = false;
	const char *huge_dir = c && c->huge_dir[0] ? c->huge_dir : NULL;
	char fix[1024], unmounted[128] = "";
	struct hp hp[MAX_SIZES];
	int n = hp_scan(hp);

	/* EAL uses the sizes that have a mount, or only huge-dir's. */
	if (huge_dir) {
		struct statfs sf;

		mount_fix(fix, sizeof(fix), huge_dir, def_kb);
		if (statfs(huge_dir, &sf) < 0)
			vhd_chk_say(k, VHD_CHK_FAIL, fix, "huge-dir %s: %s",
				    huge_dir, strerror(errno));
		else if ((unsigned long)sf.f_type != HUGETLBFS_MAGIC)
			vhd_chk_say(k, VHD_CHK_FAIL, fix,
				    "huge-dir %s: not a hugetlbfs mount",
				    huge_dir);
		else if (access(huge_dir, W_OK | X_OK) < 0)
			chown_fail(k, "huge-dir", huge_dir);
		else
			dir_kb = (unsigned long)sf.f_bsize / 1024;
		if (dir_kb)
			vhd_chk_say(k, VHD_CHK_OK, NULL,
				    "huge-dir %s: hugetlbfs of %lukB pages",
				    huge_dir, dir_kb);
		fix_kb = dir_kb ? dir_kb : def_kb;
	}
	for (int i = 0; i < n; i++) {
		char nodes[256] = "";
		size_t len = 0;

		usable[i] = huge_dir ? hp[i].kb == dir_kb : hp[i].mount[0];
		any_usable |= usable[i];
		if (hp[i].nr == 0)
			continue;
		any = true;
		mounted |= hp[i].mount[0] != '\0';
		if (!hp[i].mount[0] && !huge_dir)
			snprintf(unmounted + strlen(unmounted),
				 sizeof(unmounted) - strlen(unmounted),
				 "%s%lukB", unmounted[0] ? ", " : "", hp[i].kb);
		if (usable[i])
			mib += hp[i].avail * hp[i].kb / 1024;
		for (int node = 0; node < 64 && len < sizeof(nodes); node++) {
			char p[128];
			struct stat st;

			snprintf(p, sizeof(p), NODE_SYS "/node%d", node);
			if (stat(p, &st) < 0)
				continue;
			len += snprintf(
			    nodes + len, sizeof(nodes) - len,
			    "%snode%d %lu of %lu",
			    len ? ", " : "; free by node: ", node,
			    node_free(node, hp[i].kb),
			    vhd_chk_read_ul(
				"%s/hugepages/hugepages-%lukB/nr_hugepages", p,
				hp[i].kb));
		}
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "hugepages %lukB: %lu reserved, %lu free%s%s",
			    hp[i].kb, hp[i].nr, hp[i].avail,
			    usable[i]  ? ""
			    : huge_dir ? " (unused: not huge-dir's)"
				       : " (unused: not mounted)",
			    nodes);
	}
	need = c ? c->socket_mem : SOCKET_MEM_DEFAULT;
	if (!any) {
		hp_fix(fix, sizeof(fix), fix_kb,
		       (need * 1024 + fix_kb - 1) / fix_kb, def_kb);
		vhd_chk_say(k, VHD_CHK_FAIL, fix, "hugepages: none reserved");
	}
	if (!huge_dir) {
		mount_fix(fix, sizeof(fix), "/dev/hugepages", def_kb);
		if (!mounted && n > 0)
			vhd_chk_say(k, VHD_CHK_FAIL, fix, "hugetlbfs: %s",
				    any ? "none mounted for the reserved sizes"
					: "nothing mounted");
		else if (unmounted[0])
			vhd_chk_say(
			    k, VHD_CHK_WARN, fix,
			    "hugetlbfs: %s pages reserved but not mounted: "
			    "DPDK cannot use them",
			    unmounted);
		for (int i = 0; i < n && mounted; i++) {
			if (hp[i].nr == 0 || hp[i].mount[0] == '\0')
				continue;
			/* EAL makes a file there per page (or segment). */
			if (access(hp[i].mount, W_OK | X_OK) == 0) {
				vhd_chk_say(k, VHD_CHK_OK, NULL,
					    "hugetlbfs: %lukB pages at %s",
					    hp[i].kb, hp[i].mount);
				continue;
			}
			snprintf(fix, sizeof(fix), "hugetlbfs: %lukB pages at",
				 hp[i].kb);
			chown_fail(k, fix, hp[i].mount);
		}
	}
	/* Without a usable mount, the FAIL above says what to do first. */
	if (c == NULL || !any_usable)
		return;
	if (k->running) {
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "hugepage memory: %lu MiB free besides what the "
			    "running vhostd holds (socket-mem %lu MiB)",
			    mib, need);
		return;
	}
	if (mib < need) {
		for (int i = 0; i < n; i++)
			if (hp[i].kb == fix_kb)
				fix_nr = hp[i].nr;
		hp_fix(fix, sizeof(fix), fix_kb,
		       fix_nr + ((need - mib) * 1024 + fix_kb - 1) / fix_kb,
		       def_kb);
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "hugepage memory: %lu MiB free where DPDK looks, "
			    "socket-mem needs %lu MiB",
			    mib, need);
	} else {
		vhd_chk_say(
		    k, VHD_CHK_OK, NULL,
		    "hugepage memory: %lu MiB free, socket-mem needs %lu MiB",
		    mib, need);
	}
	check_nodes(k, hp, n, usable, fix_kb);
}

/* -------------------------------------------------------------------- CPUs */

void vhd_chk_cpus(struct vhd_chk *k)
{
	const struct vhd_config *c = k->conf;
	struct cpuset online, present, isolated, nohz, dp = {{0}}, bad = {{0}};
	struct cpuset noiso = {{0}}, tick = {{0}};
	char list[256], bad_list[256], fix[1024];
	bool has_nohz;

	cpus_read(CPU_SYS "/online", &online);
	if (!cpus_read(CPU_SYS "/present", &present))
		present = online;
	cpus_read(CPU_SYS "/isolated", &isolated);
	has_nohz = cpus_read(CPU_SYS "/nohz_full", &nohz);
	/* EAL refuses an lcore on a CPU that is not there or not online. */
	for (unsigned int i = 0; i <= c->n_dp; i++) {
		unsigned int cpu = i ? c->dp_cpus[i - 1] : c->main_cpu;

		if (i)
			cpu_add(&dp, cpu);
		if (!cpu_in(&present, cpu)) {
			vhd_chk_say(k, VHD_CHK_FAIL,
				    "name CPUs that exist in lcores and "
				    "main-lcore (lscpu lists them)",
				    "cpu %u (%s): not on this machine", cpu,
				    i ? "lcores" : "main-lcore");
		} else if (!cpu_in(&online, cpu)) {
			snprintf(fix, sizeof(fix),
				 "echo 1 > " CPU_SYS "/cpu%u/online", cpu);
			vhd_chk_say(k, VHD_CHK_FAIL, fix,
				    "cpu %u (%s): offline", cpu,
				    i ? "lcores" : "main-lcore");
		} else {
			continue;
		}
		cpu_add(&bad, cpu);
	}
	cpus_format(&dp, list, sizeof(list));
	if (cpus_empty(&bad))
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "cpus: main-lcore %u and lcores %s online",
			    c->main_cpu, list);
	/* Isolation is for speed: a shared CPU still switches. */
	for (unsigned int cpu = 0; cpu < MAX_CPUS; cpu++) {
		if (!cpu_in(&dp, cpu))
			continue;
		if (!cpu_in(&isolated, cpu))
			cpu_add(&noiso, cpu);
		else if (has_nohz && !cpu_in(&nohz, cpu))
			cpu_add(&tick, cpu);
	}
	if (!cpus_empty(&noiso)) {
		cpus_format(&noiso, bad_list, sizeof(bad_list));
		snprintf(fix, sizeof(fix),
			 "add isolcpus=%s nohz_full=%s rcu_nocbs=%s to "
			 "GRUB_CMDLINE_LINUX in /etc/default/grub, then "
			 "update-grub and reboot",
			 list, list, list);
		vhd_chk_say(
		    k, VHD_CHK_WARN, fix,
		    "cpu isolation: lcores cpu(s) %s not isolated: other "
		    "tasks and interrupts take time from the datapath",
		    bad_list);
		return;
	}
	cpus_format(&tick, bad_list, sizeof(bad_list));
	vhd_chk_say(k, VHD_CHK_OK, NULL,
		    "cpu isolation: lcores cpu(s) %s isolated%s%s", list,
		    !has_nohz		? " (this kernel has no nohz_full)"
		    : cpus_empty(&tick) ? " and nohz_full"
					: "; not nohz_full, the tick still "
					  "interrupts cpu(s) ",
		    bad_list);
}
