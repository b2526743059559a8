/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * main.c: command line, EAL start-up from the config, launch of the
 * datapath lcores, the control loop (control socket, clock, FDB aging,
 * captures) and clean shutdown.
 *
 * Start-up order matters: the lcores run (with empty tables) before the
 * config's bridges and ports are added, by the same code that adds them at
 * run time (switch.c), so a port is published before librte_vhost can call
 * back for it. Shutdown reverses it: the lcores stop and go offline first,
 * then the control socket closes, then every port goes (sockets closed:
 * destroy_device's grace period is then immediate; ethdevs stopped) and the
 * mempool must be whole again.
 */
#include <dirent.h>
#include <getopt.h>
#include <mntent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <numa.h>
#include <systemd/sd-daemon.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_version.h>

#include "ctl/cmds.h"
#include "vhd.h"
#include "vhd_capture.h"
#include "vhd_check.h"
#include "vhd_ctl.h"
#include "vhd_log.h"

RTE_LOG_REGISTER(vhd_logtype_main, vhostd.main, INFO);
RTE_LOG_REGISTER(vhd_logtype_port, vhostd.port, INFO);
RTE_LOG_REGISTER(vhd_logtype_bridge, vhostd.bridge, INFO);

struct vhd_port *vhd_ports[VHD_MAX_PORTS];
struct vhd_bridge *vhd_bridges[VHD_MAX_BRIDGES];
struct vhd_lcore vhd_lcores[VHD_MAX_DP_LCORES];
uint16_t vhd_n_lcores;
struct rte_rcu_qsbr *vhd_rcu;
volatile bool vhd_quit;
uint32_t vhd_clock;

#define MAX_EAL_ARGS 256

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s --config FILE [--check] [-- EAL ARGS...]\n"
		"       %s --check-system [--config FILE]\n"
		"A vhost-user switch: QEMU guests and DPDK ports on L2 "
		"bridges.\n\n"
		"  -c, --config FILE  configuration (INI): vhostd.conf(5), "
		"/etc/vhostd/vhostd.conf\n"
		"      --check        parse the configuration, print it, and "
		"exit\n"
		"      --check-system check this host for the configuration "
		"(default\n"
		"                     " VHD_CHECK_DEFAULT_CONFIG
		" if it exists): hugepages,\n"
		"                     socket directories, PCI devices, CPUs; "
		"exit 1 on a FAIL\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n"
		"  -- EAL ARGS        extra DPDK EAL arguments, after those "
		"built from\n"
		"                     the config (a later one overrides)\n\n"
		"Runs in the foreground until SIGINT or SIGTERM. Control: "
		"vhostctl(8). As a service: systemctl start vhostd.\n",
		prog, prog);
}

static void on_signal(int sig)
{
	RTE_SET_USED(sig);
	vhd_quit = true;
}

struct argv_buf {
	char *v[MAX_EAL_ARGS];
	int n;
};

static int add_arg(struct argv_buf *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_arg(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->n == MAX_EAL_ARGS - 1)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		return -1;
	a->v[a->n++] = s;
	return 0;
}

/* EAL arguments from the config: its own lcores and file prefix, a small
 * amount of memory, and only the devices the config names. */
static int eal_args(const struct vhd_config *c, const char *prog, int extra_n,
		    char **extra, struct argv_buf *a)
{
	char lcores[1024];
	int len, pci = 0, rc = 0;

	len = snprintf(lcores, sizeof(lcores), "0@%u", c->main_cpu);
	for (uint16_t i = 0; i < c->n_dp; i++)
		len += snprintf(lcores + len, sizeof(lcores) - len, ",%u@%u",
				i + 1, c->dp_cpus[i]);
	rc |= add_arg(a, "%s", prog);
	rc |= add_arg(a, "--lcores=%s", lcores);
	rc |= add_arg(a, "--main-lcore=0");
	rc |= add_arg(a, "--file-prefix=%s", c->file_prefix);
	rc |= add_arg(a, "-m");
	rc |= add_arg(a, "%u", c->socket_mem);
	if (c->huge_dir[0])
		rc |= add_arg(a, "--huge-dir=%s", c->huge_dir);
	/* librte_vhost logs every vhost-user message at INFO: a guest could
	 * flood the log. Errors still show; a user level overrides. */
	rc |= add_arg(a, "--log-level=lib.vhost.config:notice");
	/* Its one warning, at every start, is that no legacy (v1) socket is
	 * made: vhostd has only the v2 one. */
	rc |= add_arg(a, "--log-level=lib.telemetry:error");
	/* The config's settings in order: a later one overrides. */
	char levels[sizeof(c->log_level)], *save = NULL;

	snprintf(levels, sizeof(levels), "%s", c->log_level);
	for (char *w = strtok_r(levels, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save))
		rc |= add_arg(a, "--log-level=%s", w);
	for (uint16_t i = 0; i < c->n_ports; i++) {
		const struct vhd_port_conf *pc = &c->ports[i];
		char name[VHD_DEVARGS_MAX];

		if (pc->type != VHD_PORT_ETH)
			continue;
		if (vhd_config_dev_name(pc->devargs, name, sizeof(name))) {
			rc |= add_arg(a, "-a");
			pci++;
		} else {
			rc |= add_arg(a, "--vdev");
		}
		rc |= add_arg(a, "%s", pc->devargs);
	}
	/* No PCI scan unless a device is named: here, or by the user for a
	 * port to be added at run time. */
	for (int i = 0; i < extra_n; i++)
		if (strncmp(extra[i], "-a", 2) == 0 ||
		    strncmp(extra[i], "--allow", 7) == 0)
			pci++;
	if (pci == 0)
		rc |= add_arg(a, "--no-pci");
	for (int i = 0; i < extra_n; i++)
		rc |= add_arg(a, "%s", extra[i]);
	a->v[a->n] = NULL;
	return rc ? -1 : 0;
}

/* EAL would only say "invalid log priority": say which setting. */
static int check_log_level(const struct vhd_config *c, char *err, size_t errlen)
{
	char levels[sizeof(c->log_level)], *save = NULL, why[256];
	struct vhd_log_spec spec;

	snprintf(levels, sizeof(levels), "%s", c->log_level);
	for (char *w = strtok_r(levels, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save))
		if (vhd_log_spec_parse(w, &spec, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: [vhostd] log-level: %s",
				 c->file, why);
			return -1;
		}
	return 0;
}

/* --check: a summary, then every key as it applies (defaults filled in),
 * in the config file's own format. */
static void print_config(const struct vhd_config *c)
{
	char *text = vhd_config_format(c);

	printf("config %s: %u datapath lcore(s), main cpu %u, %u MiB, "
	       "%u bridge(s), %u port(s)\n",
	       c->file, c->n_dp, c->main_cpu, c->socket_mem, c->n_bridges,
	       c->n_ports);
	/* Without config save's own first line (a ';' comment). */
	if (text)
		fputs(text[0] == ';' ? text + strcspn(text, "\n") + 1 : text,
		      stdout);
	free(text);
}

static void print_attach_hint(const struct vhd_port *p)
{
	if (p->client)
		printf("port %s: connecting to %s; start QEMU with\n"
		       "  -chardev socket,id=%s,path=%s,server=on,wait=off\n",
		       p->name, p->path, p->name, p->path);
	else
		printf("port %s: listening on %s; start QEMU with\n"
		       "  -chardev socket,id=%s,path=%s,reconnect=1\n",
		       p->name, p->path, p->name, p->path);
	printf("  -netdev vhost-user,id=n-%s,chardev=%s -device "
	       "virtio-net-pci,netdev=n-%s",
	       p->name, p->name, p->name);
	/* The guest's MTU is QEMU's to tell it (VIRTIO_NET_F_MTU). */
	if (p->mtu != VHD_MTU_DEFAULT)
		printf(",host_mtu=%u", p->mtu);
	printf("\n  and shared guest memory (-object "
	       "memory-backend-memfd,id=mem,size=1G,share=on -numa "
	       "node,memdev=mem)\n");
}

static unsigned int pool_size(const struct vhd_config *c)
{
	/* Room for an ethdev port or two added at run time. */
	unsigned int n = 16384 + c->n_dp * (512 + 4 * VHD_BURST);

	if (c->mbufs)
		return c->mbufs;
	for (uint16_t i = 0; i < c->n_ports; i++)
		if (c->ports[i].type == VHD_PORT_ETH)
			n += c->ports[i].queues * c->ports[i].rx_desc +
			     c->n_dp * c->ports[i].tx_desc;
	return n;
}

/*
 * The hugepage files of PREFIX in every hugetlbfs mount, unlinked (after
 * rte_eal_cleanup). DPDK 22.11 leaves the pages its memzones hold (an
 * ethdev's data, for one) mapped to files until the process ends, and the
 * files stay after it: their pages stay reserved until the next start with
 * the same prefix. Only this process (the primary) uses them; a secondary
 * still attached keeps its mapping.
 */
static void hugepage_files_remove(const char *prefix)
{
	FILE *m = setmntent("/proc/mounts", "r");
	size_t n = strlen(prefix);
	struct mntent *me;

	if (m == NULL)
		return;
	while ((me = getmntent(m)) != NULL) {
		DIR *d;
		struct dirent *de;

		if (strcmp(me->mnt_type, "hugetlbfs") != 0 ||
		    (d = opendir(me->mnt_dir)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, prefix, n) == 0 &&
			    strncmp(de->d_name + n, "map_", 4) == 0)
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	endmntent(m);
}

/* The control thread's loop: the control socket (every change to the
 * switch is made from here), captures, the rx schedule as guests' queues
 * come and go, and once a second the clock, FDB aging and the load
 * samples (and auto-rebalance). */
static void control_loop(void)
{
	uint64_t hz = rte_get_timer_hz(), start = rte_get_timer_cycles();
	uint32_t ticked_at = 0;

	while (!vhd_quit) {
		/* A capture's ring is drained every few ms. */
		vhd_ctl_run(vhd_capture_active() ? 5 : 100);
		vhd_capture_poll();
		vhd_vhost_guard_poll();
		vhd_vhost_poll();
		vhd_evpn_poll();
		vhd_notify_watchdog();
		vhd_sched_poll();
		__atomic_store_n(
		    &vhd_clock,
		    (uint32_t)((rte_get_timer_cycles() - start) / hz),
		    __ATOMIC_RELAXED);
		if (vhd_clock == ticked_at)
			continue;
		ticked_at = vhd_clock;
		for (uint16_t b = 0; b < VHD_MAX_BRIDGES; b++)
			if (vhd_bridges[b])
				vhd_bridge_age(vhd_bridges[b]);
		vhd_evpn_tick();
		vhd_sched_tick();
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'k'},
	    {"check-system", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	static struct vhd_config conf;
	struct argv_buf eal = {0};
	struct rlimit rl;
	char abs_file[PATH_MAX];
	const char *file = NULL;
	bool check = false, eal_up = false, ctl_up = false, launched = false;
	bool check_system = false;
	char err[1024];
	unsigned int lcore_id;
	int opt, rc = EXIT_FAILURE;
	uint16_t l = 0;

	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 's':
			check_system = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return EXIT_SUCCESS;
		case 'V':
			printf("vhostd %s (%s)\n", VHD_VERSION, rte_version());
			return EXIT_SUCCESS;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	/* Before anything takes memory: the host as vhostd would find it. */
	if (check_system)
		return vhd_check_system(file, stdout);
	if (file == NULL) {
		fprintf(stderr, "vhostd: --config FILE is required\n");
		usage(stderr, argv[0]);
		return 2;
	}
	if (vhd_config_load(file, &conf, err, sizeof(err)) < 0 ||
	    check_log_level(&conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "vhostd: config error: %s\n", err);
		return EXIT_FAILURE;
	}
	/* config save writes here by default: say where, whatever the
	 * working directory of whoever asks. */
	if (realpath(file, abs_file) != NULL)
		snprintf(conf.file, sizeof(conf.file), "%s", abs_file);
	if (check) {
		print_config(&conf);
		return EXIT_SUCCESS;
	}
	/* Every vhost-user port is a socket or two: up to VHD_MAX_PORTS of
	 * them need more fds than the usual soft limit of 1024. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (eal_args(&conf, argv[0], argc - optind, argv + optind, &eal) < 0) {
		fprintf(stderr, "vhostd: too many EAL arguments\n");
		return EXIT_FAILURE;
	}
	/* rte_eal_init may permute its argv: keep our copy for freeing. */
	char *eal_v[MAX_EAL_ARGS];

	memcpy(eal_v, eal.v, sizeof(eal_v));
	/* From EAL's first line on: the journal under systemd, else stderr. */
	if (vhd_log_open() < 0)
		fprintf(stderr, "vhostd: cannot set up logging: DPDK's "
				"default (stderr and syslog) instead\n");
	if (rte_eal_init(eal.n, eal_v) < 0) {
		fprintf(stderr,
			"vhostd: DPDK EAL initialisation failed: %s\n"
			"vhostd: check that hugepages are reserved "
			"(/proc/sys/vm/nr_hugepages) and mounted (hugetlbfs), "
			"and that the CPUs in 'lcores' exist\n",
			rte_strerror(rte_errno));
		goto out_args;
	}
	eal_up = true;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	vhd_n_lcores = conf.n_dp;
	vhd_rcu = rte_zmalloc("vhd_rcu", rte_rcu_qsbr_get_memsize(vhd_n_lcores),
			      RTE_CACHE_LINE_SIZE);
	if (vhd_rcu == NULL || rte_rcu_qsbr_init(vhd_rcu, vhd_n_lcores) < 0) {
		VHD_LOG(ERR, main, "RCU init failed");
		goto out;
	}
	RTE_LCORE_FOREACH_WORKER (lcore_id) {
		vhd_lcores[l].lcore_id = lcore_id;
		vhd_lcores[l].idx = l;
		/* eal_args: lcore i + 1 runs on dp_cpus[i]. */
		vhd_lcores[l].cpu = conf.dp_cpus[lcore_id - 1];
		vhd_lcores[l].numa = numa_available() < 0
					 ? 0
					 : numa_node_of_cpu(vhd_lcores[l].cpu);
		if (vhd_lcores[l].numa < 0)
			vhd_lcores[l].numa = 0;
		if (vhd_lcore_alloc(&vhd_lcores[l]) < 0) {
			VHD_LOG(ERR, main, "lcore %u: out of memory", lcore_id);
			goto out;
		}
		l++;
	}
	if (vhd_pools_init(pool_size(&conf), (int)rte_socket_id()) < 0)
		goto out;
	if (vhd_sched_build() < 0 || vhd_telemetry_init() < 0)
		goto out;
	if (vhd_vhost_guard_init() < 0 || vhd_notify_init() < 0) {
		fprintf(stderr, "vhostd: cannot set up the vhost-user guard\n");
		goto out;
	}
	if (vhd_ctl_open(conf.control, conf.control_group, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "vhostd: control socket: %s\n", err);
		goto out;
	}
	ctl_up = true;

	for (l = 0; l < vhd_n_lcores; l++)
		rte_eal_remote_launch(vhd_lcore_main, &vhd_lcores[l],
				      vhd_lcores[l].lcore_id);
	launched = true;

	if (vhd_switch_load(&conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "vhostd: %s\n", err);
		vhd_quit = true;
	}
	for (uint16_t i = 0; i < conf.n_ports && !vhd_quit; i++)
		if (vhd_ports[i] && vhd_ports[i]->type == VHD_PORT_VHOST)
			print_attach_hint(vhd_ports[i]);
	if (!vhd_quit) {
		uint16_t n_ports = 0;

		/* The config's ports, not a vxlan port's remotes. */
		for (uint16_t i = 0; i < conf.n_ports; i++)
			n_ports += conf.ports[i].name[0] &&
				   conf.ports[i].type != VHD_PORT_VTEP;
		printf("vhostd %s ready: %u port(s), %u bridge(s), %u datapath "
		       "lcore(s); control: vhostctl --socket %s\n",
		       VHD_VERSION, n_ports, conf.n_bridges, vhd_n_lcores,
		       conf.control);
		fflush(stdout);
		/* Type=notify: systemd starts what depends on vhostd only now,
		 * with every socket of the config open. A no-op outside
		 * systemd (no NOTIFY_SOCKET). */
		sd_notifyf(0, "READY=1\nSTATUS=%u port(s), %u bridge(s)",
			   n_ports, conf.n_bridges);
		rc = EXIT_SUCCESS;
		control_loop();
		sd_notify(0, "STOPPING=1");
		VHD_LOG(INFO, main, "shutting down");
	}
out:
	vhd_quit = true;
	if (launched)
		rte_eal_mp_wait_lcore();
	if (ctl_up)
		vhd_ctl_close();
	vhd_switch_clear();
	vhd_notify_fini();
	vhd_sched_free();
	for (l = 0; l < vhd_n_lcores; l++)
		vhd_lcore_free(&vhd_lcores[l]);
	vhd_pools_free();
	rte_free(vhd_rcu);
	if (eal_up) {
		rte_eal_cleanup();
		hugepage_files_remove(conf.file_prefix);
	}
out_args:
	vhd_log_close();
	for (int i = 0; i < eal.n; i++)
		free(eal.v[i]);
	return rc;
}
