/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * system.c: vhostd --check-system, the host looked over before
 * vhostd starts; here the report, the config, DPDK, privileges and
 * limits, with numa.c (hugepages and CPUs) and ports.c (the
 * ports' sockets and PCI devices).
 *
 * Each check reads what the kernel says (sysfs, /proc, stat) and prints
 * one line, "ok", "warn" or "FAIL", a problem followed by its fix as a
 * command or a file to edit. FAIL means vhostd would not start, or a port
 * of the config could not work; warn means vhostd runs, slower or at some
 * risk. It runs as a systemd ExecStartPre, so it must not take what
 * vhostd is about to take: no EAL, no hugepage, nothing created or
 * changed (a socket file is looked at, never connected to: that could be
 * a live guest's). The paths are the real ones, with no test hooks: a
 * test shows it another host by bind-mounting files over them in a mount
 * namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <rte_cfgfile.h>
#include <rte_common.h>
#include <rte_version.h>

#include "check.h"
#include "vhd_check.h"
#include "vhd_sockpath.h"

/* ------------------------------------------------------------------ report */

void vhd_chk_say(struct vhd_chk *k, enum vhd_chk_lvl l, const char *fix,
		 const char *fmt, ...)
{
	static const char *const name[] = {"ok", "warn", "FAIL"};
	va_list ap;

	k->n[l]++;
	fprintf(k->out, "%-4s  ", name[l]);
	va_start(ap, fmt);
	vfprintf(k->out, fmt, ap);
	va_end(ap);
	fputc('\n', k->out);
	for (const char *s = fix, *first = fix; s && *s;) {
		size_t n = strcspn(s, "\n");

		fprintf(k->out, "      %s%.*s\n",
			s == first ? "fix: " : "     ", (int)n, s);
		s += n + (s[n] == '\n');
	}
}

int vhd_chk_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (f == NULL)
		return -errno;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (ferror(f))
		rc = -EIO;
	fclose(f);
	return rc;
}

unsigned long vhd_chk_read_ul(const char *fmt, ...)
{
	char path[PATH_MAX], buf[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (vhd_chk_read_line(path, buf, sizeof(buf)) < 0)
		return 0;
	return strtoul(buf, NULL, 10);
}

/* ----------------------------------------------------------------- config */

/*
 * A config vhostd refuses says why in one line; this adds the fixes of
 * the problems that are the host's rather than the file's, by reading the
 * file raw (rte_cfgfile): a socket group that does not exist, a socket
 * path a unix socket cannot have.
 */
static void config_raw(struct vhd_chk *k)
{
	struct rte_cfgfile *cfg = rte_cfgfile_load(k->file, 0);
	int n = cfg ? rte_cfgfile_num_sections(cfg, NULL, 0) : 0;

	for (int i = 0; i < n; i++) {
		struct rte_cfgfile_entry ent[64];
		char sec[CFG_NAME_LEN], fix[1024], err[512];
		int m =
		    rte_cfgfile_section_entries_by_index(cfg, i, sec, ent, 64);

		for (int j = 0; j < m; j++) {
			const char *key = ent[j].name, *v = ent[j].value;

			if ((strcmp(key, "socket-group") == 0 ||
			     strcmp(key, "control-group") == 0) &&
			    v[0] && getgrnam(v) == NULL) {
				snprintf(fix, sizeof(fix),
					 "groupadd --system %s\nor name an "
					 "existing group in [%s] %s of %s",
					 v, sec, key, k->file);
				vhd_chk_say(k, VHD_CHK_FAIL, fix,
					    "[%s] %s: no group '%s'", sec, key,
					    v);
			}
			if ((strcmp(key, "path") == 0 ||
			     strcmp(key, "control") == 0) &&
			    vhd_sockpath_check(v, key, err, sizeof(err)) < 0) {
				snprintf(fix, sizeof(fix),
					 "in [%s] of %s, a path of at most %d "
					 "bytes, such as " VHD_CHK_RUN_DIR
					 "/NAME.sock",
					 sec, k->file, VHD_SOCKPATH_MAX);
				vhd_chk_say(k, VHD_CHK_FAIL, fix, "[%s] %s",
					    sec, err);
			}
		}
	}
	if (cfg)
		rte_cfgfile_close(cfg);
}

/* ------------------------------------------------------------------- DPDK */

/* librte_eal's version, as loaded, against the headers vhostd was built
 * with: another year.month is another ABI. */
static void check_dpdk(struct vhd_chk *k)
{
	unsigned int y = 0, m = 0, minor = 0;
	char fix[256];

	sscanf(rte_version(), "%*[^0-9]%u.%u.%u", &y, &m, &minor);
	if (RTE_VERSION_NUM(y, m, 0, 0) < RTE_VERSION_NUM(22, 11, 0, 0)) {
		vhd_chk_say(
		    k, VHD_CHK_FAIL,
		    "install DPDK 22.11 or later (Debian 12: apt-get install "
		    "dpdk dpdk-dev) and rebuild vhostd",
		    "dpdk: %s at run time; vhostd needs 22.11 or later",
		    rte_version());
	} else if (y != RTE_VER_YEAR || m != RTE_VER_MONTH) {
		snprintf(fix, sizeof(fix),
			 "rebuild vhostd against the DPDK installed: meson "
			 "setup --wipe build && ninja -C build");
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "dpdk: %s at run time, built with %d.%02d",
			    rte_version(), RTE_VER_YEAR, RTE_VER_MONTH);
	} else {
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "dpdk: %s (built with %d.%02d.%d)", rte_version(),
			    RTE_VER_YEAR, RTE_VER_MONTH, RTE_VER_MINOR);
	}
}

/* ------------------------------------------------- privileges and limits */

/* Capabilities DPDK and vhostd use when not root: locked memory (vfio's
 * DMA mappings), tap and af_packet ports. */
static const struct {
	int cap;
	const char *name;
} caps[] = {
    {CAP_IPC_LOCK, "CAP_IPC_LOCK"},
    {CAP_NET_ADMIN, "CAP_NET_ADMIN"},
    {CAP_NET_RAW, "CAP_NET_RAW"},
};

static uint64_t cap_eff(void)
{
	char line[256];
	uint64_t eff = 0;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %" SCNx64, &eff) == 1)
			break;
	if (f)
		fclose(f);
	return eff;
}

/*
 * The fds vhostd may hold, an estimate: EAL's (one per hugepage segment,
 * 2 MiB each at worst) and, per vhost-user port, its sockets, up to 8
 * guest memory regions and a kick and a call eventfd per vring of 4
 * queue pairs.
 */
static unsigned long fds_needed(const struct vhd_config *c)
{
	unsigned long n = 64 + c->socket_mem / 2;

	for (uint16_t i = 0; i < c->n_ports; i++)
		n += c->ports[i].type == VHD_PORT_VHOST ? 2 + 8 + 16 : 4;
	return n;
}

/* Does the config name a PCI device (one that vfio maps for DMA)? */
static bool has_pci(const struct vhd_config *c)
{
	char name[VHD_DEVARGS_MAX];

	for (uint16_t i = 0; i < c->n_ports; i++)
		if (c->ports[i].name[0] && c->ports[i].type == VHD_PORT_ETH &&
		    vhd_config_dev_name(c->ports[i].devargs, name,
					sizeof(name)))
			return true;
	return false;
}

static void check_privileges(struct vhd_chk *k)
{
	uint64_t eff = cap_eff();
	char missing[128] = "", fix[512];
	struct rlimit rl;

	if (geteuid() == 0) {
		vhd_chk_say(k, VHD_CHK_OK, NULL, "privileges: running as root");
	} else {
		for (size_t i = 0; i < RTE_DIM(caps); i++)
			if (!(eff >> caps[i].cap & 1))
				snprintf(missing + strlen(missing),
					 sizeof(missing) - strlen(missing),
					 " %s", caps[i].name);
		if (missing[0] == '\0') {
			vhd_chk_say(k, VHD_CHK_OK, NULL,
				    "privileges: uid %u with CAP_IPC_LOCK "
				    "CAP_NET_ADMIN CAP_NET_RAW",
				    (unsigned)geteuid());
		} else {
			snprintf(fix, sizeof(fix),
				 "run vhostd as root (the systemd unit does), "
				 "or give it the capabilities: "
				 "AmbientCapabilities=%s in its unit",
				 missing + 1);
			vhd_chk_say(
			    k, VHD_CHK_WARN, fix,
			    "privileges: uid %u, without%s: DPDK may not lock "
			    "memory or open /dev/vfio, tap or af_packet "
			    "devices; these checks see the host as uid %u does",
			    (unsigned)geteuid(), missing, (unsigned)geteuid());
		}
		/* Root's CAP_IPC_LOCK ignores the limit; vfio counts every
		 * page it maps for DMA against it. */
		if (k->conf && has_pci(k->conf) && !(eff >> CAP_IPC_LOCK & 1) &&
		    getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur < (rlim_t)k->conf->socket_mem << 20)
			vhd_chk_say(
			    k, VHD_CHK_WARN,
			    "LimitMEMLOCK=infinity in vhostd's systemd unit, "
			    "or ulimit -l unlimited before starting it",
			    "locked memory: limit %lu KiB, below socket-mem "
			    "(%u MiB): vfio cannot map the memory for DMA",
			    (unsigned long)(rl.rlim_cur >> 10),
			    k->conf->socket_mem);
	}
	/* vhostd raises its soft limit to the hard one at start. */
	if (k->conf && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		unsigned long need = fds_needed(k->conf);

		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
			snprintf(fix, sizeof(fix),
				 "LimitNOFILE=%lu in vhostd's systemd unit "
				 "(systemctl edit vhostd), or ulimit -Hn %lu "
				 "in the shell that starts it",
				 need, need);
			vhd_chk_say(
			    k, VHD_CHK_WARN, fix,
			    "open files: hard limit %lu, below the %lu the "
			    "config's ports may need",
			    (unsigned long)rl.rlim_max, need);
		} else {
			vhd_chk_say(
			    k, VHD_CHK_OK, NULL,
			    "open files: hard limit %lu (the config's ports "
			    "may need %lu)",
			    (unsigned long)rl.rlim_max, need);
		}
	}
}

/* ---------------------------------------------------------------- running */

/*
 * Is an EAL primary process of the config's file-prefix running (vhostd
 * already started, the check run by hand)? EAL holds a write lock on its
 * runtime directory's config file as long as it runs; F_GETLK asks
 * without taking it.
 */
static void check_running(struct vhd_chk *k)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[PATH_MAX];
	int fd;

	/* Where EAL puts it (eal_get_runtime_dir). */
	snprintf(path, sizeof(path), "%s/dpdk/%s/config",
		 geteuid() == 0 ? "/var/run"
		 : xdg		? xdg
				: "/tmp",
		 k->conf->file_prefix);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
		k->running = true;
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "running: pid %d holds file-prefix %s (vhostd "
			    "started): its hugepages are not counted free",
			    (int)fl.l_pid, k->conf->file_prefix);
	}
	close(fd);
}

/* ------------------------------------------------------------------ main */

int vhd_check_system(const char *file, FILE *out)
{
	struct vhd_chk k = {.out = out, .file = file};
	struct vhd_config *conf = NULL;
	char err[1024], fix[PATH_MAX * 2];

	if (file == NULL && access(VHD_CHECK_DEFAULT_CONFIG, F_OK) == 0)
		k.file = file = VHD_CHECK_DEFAULT_CONFIG;
	if (file) {
		/* Large (every port slot): not on the stack. */
		conf = calloc(1, sizeof(*conf));
		if (conf == NULL) {
			fprintf(out, "FAIL  out of memory\n");
			return 1;
		}
		if (vhd_config_load(file, conf, err, sizeof(err)) < 0) {
			if (access(file, R_OK) < 0)
				snprintf(fix, sizeof(fix),
					 "a config file vhostd can "
					 "read: " VHD_CHECK_DEFAULT_CONFIG
					 " (installed with vhostd), or "
					 "--config FILE");
			else
				snprintf(fix, sizeof(fix),
					 "edit %s there (vhostd --check "
					 "--config %s shows it as vhostd reads "
					 "it)",
					 file, file);
			vhd_chk_say(&k, VHD_CHK_FAIL, fix, "config: %s", err);
			config_raw(&k);
			free(conf);
			conf = NULL;
		} else {
			vhd_chk_say(
			    &k, VHD_CHK_OK, NULL,
			    "config %s: %u bridge(s), %u port(s), %u datapath "
			    "lcore(s), socket-mem %u MiB",
			    file, conf->n_bridges, conf->n_ports, conf->n_dp,
			    conf->socket_mem);
		}
	} else {
		vhd_chk_say(
		    &k, VHD_CHK_OK, NULL,
		    "config: none (no --config, no " VHD_CHECK_DEFAULT_CONFIG
		    "): the checks of lcores, sockets and ports are left out");
	}
	k.conf = conf;
	if (conf)
		check_running(&k);
	check_dpdk(&k);
	check_privileges(&k);
	vhd_chk_hugepages(&k);
	if (conf) {
		vhd_chk_cpus(&k);
		vhd_chk_sockets(&k);
		vhd_chk_pci(&k);
	}
	fprintf(out, "%u ok, %u warn, %u FAIL: %s\n", k.n[VHD_CHK_OK],
		k.n[VHD_CHK_WARN], k.n[VHD_CHK_FAIL],
		k.n[VHD_CHK_FAIL] ? "fix the FAIL lines before starting vhostd"
		: k.n[VHD_CHK_WARN]
		    ? "vhostd can start; the warnings cost speed or "
		      "safety"
		    : "vhostd can start");
	free(conf);
	return k.n[VHD_CHK_FAIL] ? 1 : 0;
}
