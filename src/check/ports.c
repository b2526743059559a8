/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ports.c: --check-system's look at what the config's ports need
 * (system.c): each unix socket's directory, as vhostd and as QEMU
 * in the socket's group see it, and each PCI device with the IOMMU and
 * vfio-pci. Permissions are worked out from the modes, not tried: the
 * check runs as vhostd's user, not QEMU's.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "vhd_sockpath.h"

#define PCI_SYS	  "/sys/bus/pci/devices"
#define IOMMU_SYS "/sys/kernel/iommu_groups"

/* ---------------------------------------------------------------- sockets */

/* Can a member of group GID (not the owner) search (and with WRITE, also
 * create files in) the directory ST? Only the group's bits count for a
 * member of the file's group, even when the others' bits say more. */
static bool group_may(const struct stat *st, gid_t gid, bool write)
{
	mode_t want = write ? S_IWGRP | S_IXGRP : S_IXGRP;

	if (st->st_gid != gid)
		want >>= 3; /* the others' bits */
	return (st->st_mode & want) == want;
}

/*
 * The first directory on the way to DIR (DIR included) that group GR
 * cannot search, as WHERE with its fix; false if there is none. QEMU,
 * running as another user (libvirt-qemu) in the socket's group, must
 * reach the socket before the socket's mode counts.
 */
static bool group_blocked(const char *dir, const struct group *gr, char *where,
			  size_t wlen, char *fix, size_t flen)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1;; s++) {
		bool end = *s == '\0';

		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (stat(p, &st) == 0 && !group_may(&st, gr->gr_gid, false)) {
			snprintf(where, wlen, "%s (mode %04o, group %u)", p,
				 (unsigned)(st.st_mode & 07777),
				 (unsigned)st.st_gid);
			if (end)
				snprintf(fix, flen,
					 "chgrp %s %s && chmod g+x %s",
					 gr->gr_name, p, p);
			else
				snprintf(fix, flen, "chmod o+x %s", p);
			return true;
		}
		if (end)
			return false;
		*s = '/';
	}
}

/* The directory a missing DIR's fix makes, in GROUP ("": vhostd's), and
 * under /run (a tmpfs) the tmpfiles.d line that makes it at every boot. */
static void mkdir_fix(char *fix, size_t len, const char *dir, const char *group)
{
	int n;

	if (group[0])
		n = snprintf(fix, len, "install -d -m 0750 -g %s %s", group,
			     dir);
	else
		n = snprintf(fix, len, "mkdir -p %s", dir);
	if (strncmp(dir, "/run/", 5) == 0)
		snprintf(fix + n, len - n,
			 "\n/run is empty at boot: echo 'd %s %s root %s -' > "
			 "/etc/tmpfiles.d/vhostd-sockets.conf",
			 dir, group[0] ? "0750" : "0755",
			 group[0] ? group : "root");
}

/*
 * One unix socket of the config, WHAT (e.g. "port vm1 socket"): vhostd
 * listens on it (a server port, the control socket) or connects to the
 * one QEMU makes there (CLIENT). GROUP ("": vhostd's) is the group QEMU
 * or vhostctl users are in, MODE the server socket's.
 */
static void check_socket(struct vhd_chk *k, const char *what, const char *path,
			 const char *group, bool client, uint32_t mode)
{
	char err[512], fix[1024], where[PATH_MAX + 64], dir[PATH_MAX];
	/* Who else opens it: vhostctl's users, or QEMU. */
	const char *who =
	    strcmp(what, "control socket") == 0 ? "vhostctl" : "QEMU";
	const struct group *gr = NULL;
	unsigned int before = k->n[VHD_CHK_WARN] + k->n[VHD_CHK_FAIL];
	struct stat st;

	if (vhd_sockpath_check(path, what, err, sizeof(err)) < 0) {
		snprintf(
		    fix, sizeof(fix),
		    "a path of at most %d bytes in %s, such as " VHD_CHK_RUN_DIR
		    "/NAME.sock",
		    VHD_SOCKPATH_MAX, k->file);
		vhd_chk_say(k, VHD_CHK_FAIL, fix, "%s", err);
		return;
	}
	if (group[0] && (gr = getgrnam(group)) == NULL) {
		snprintf(fix, sizeof(fix),
			 "groupadd --system %s\nor name an existing group in "
			 "%s (libvirt's QEMU runs as libvirt-qemu)",
			 group, k->file);
		vhd_chk_say(k, VHD_CHK_FAIL, fix, "%s %s: no group '%s'", what,
			    path, group);
	}
	snprintf(err, sizeof(err), "%s", path);
	snprintf(dir, sizeof(dir), "%s", dirname(err));
	if (stat(dir, &st) < 0) {
		int e = errno;

		/* vhostd makes VHD_CHK_RUN_DIR for the control socket, which
		 * opens before any port's socket. */
		if (e == ENOENT && strcmp(dir, VHD_CHK_RUN_DIR) == 0 &&
		    !client && k->conf &&
		    strncmp(k->conf->control, VHD_CHK_RUN_DIR "/",
			    sizeof(VHD_CHK_RUN_DIR)) == 0 &&
		    access("/run", W_OK | X_OK) == 0) {
			vhd_chk_say(
			    k, VHD_CHK_OK, NULL,
			    "%s %s: %s is made by vhostd when it starts", what,
			    path, dir);
			return;
		}
		mkdir_fix(fix, sizeof(fix), dir, gr ? group : "");
		vhd_chk_say(
		    k, client && e == ENOENT ? VHD_CHK_WARN : VHD_CHK_FAIL, fix,
		    "%s %s: directory %s: %s%s", what, path, dir, strerror(e),
		    client ? " (QEMU makes the socket there)"
			   : " (vhostd makes only " VHD_CHK_RUN_DIR ")");
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(fix, sizeof(fix), "another path in %s", k->file);
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "%s %s: %s is not a directory", what, path, dir);
		return;
	}
	/* Whoever runs this check is whom vhostd runs as. */
	if (access(dir, client ? X_OK : W_OK | X_OK) < 0) {
		snprintf(fix, sizeof(fix), "run vhostd as root, or chown %u %s",
			 (unsigned)geteuid(), dir);
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "%s %s: uid %u cannot %s %s: %s", what, path,
			    (unsigned)geteuid(),
			    client ? "search" : "create files in", dir,
			    strerror(errno));
	}
	if (gr &&
	    group_blocked(dir, gr, where, sizeof(where), fix, sizeof(fix)))
		vhd_chk_say(
		    k, VHD_CHK_WARN, fix,
		    "%s %s: group %s cannot search %s, so %s in that group "
		    "cannot reach the socket",
		    what, path, group, where, who);
	else if (gr && client && !group_may(&st, gr->gr_gid, true)) {
		snprintf(fix, sizeof(fix), "chgrp %s %s && chmod g+wx %s",
			 group, dir, dir);
		vhd_chk_say(
		    k, VHD_CHK_WARN, fix,
		    "%s %s: group %s cannot create files in %s (mode %04o), "
		    "so QEMU in that group cannot make the socket",
		    what, path, group, dir, (unsigned)(st.st_mode & 07777));
	}
	if (gr && !client && !(mode & S_IWGRP)) {
		snprintf(fix, sizeof(fix), "socket-mode = 0660 in %s", k->file);
		vhd_chk_say(
		    k, VHD_CHK_WARN, fix,
		    "%s %s: mode %04o: group %s cannot connect (that needs "
		    "write permission)",
		    what, path, (unsigned)mode, group);
	}
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode) && !client) {
		snprintf(fix, sizeof(fix), "rm %s, or another path in %s", path,
			 k->file);
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "%s %s: a file that is not a socket is there", what,
			    path);
	}
	if (k->n[VHD_CHK_WARN] + k->n[VHD_CHK_FAIL] == before)
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "%s %s: directory %s ready%s%s", what, path, dir,
			    gr ? ", reachable by group " : "", gr ? group : "");
}

void vhd_chk_sockets(struct vhd_chk *k)
{
	const struct vhd_config *c = k->conf;
	char what[VHD_NAME_MAX + 32];

	check_socket(k, "control socket", c->control, c->control_group, false,
		     0660);
	for (uint16_t i = 0; i < c->n_ports; i++) {
		const struct vhd_port_conf *pc = &c->ports[i];

		if (pc->name[0] == '\0' || pc->type != VHD_PORT_VHOST)
			continue;
		snprintf(what, sizeof(what), "port %s%s socket", pc->name,
			 pc->client ? " (client)" : "");
		check_socket(k, what, pc->path, pc->socket_group, pc->client,
			     pc->socket_mode);
	}
}

/* -------------------------------------------------------------------- PCI */

/* Drivers that share a device with the kernel: DPDK needs no vfio. */
static bool bifurcated(const char *drv)
{
	return strcmp(drv, "mlx5_core") == 0 || strcmp(drv, "mlx4_core") == 0;
}

/* The driver ADDR is bound to ("": none), and its kernel interface. */
static void pci_driver(const char *addr, char *drv, size_t dlen, char *ifn,
		       size_t ilen)
{
	char p[PATH_MAX], link[PATH_MAX];
	glob_t g;
	ssize_t n;

	snprintf(p, sizeof(p), PCI_SYS "/%s/driver", addr);
	n = readlink(p, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	snprintf(drv, dlen, "%s", n > 0 ? strrchr(link, '/') + 1 : "");
	ifn[0] = '\0';
	/* net/IF, or virtioN/net/IF for a virtio device. */
	snprintf(p, sizeof(p), PCI_SYS "/%s/{net,virtio*/net}/*", addr);
	if (glob(p, GLOB_BRACE, NULL, &g) == 0 && g.gl_pathc > 0)
		snprintf(ifn, ilen, "%s", strrchr(g.gl_pathv[0], '/') + 1);
	globfree(&g);
}

static unsigned int dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	unsigned int n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* The IOMMU, and vfio-pci: what a device that is not bifurcated needs. */
static void check_vfio(struct vhd_chk *k)
{
	unsigned int groups = dir_entries(IOMMU_SYS);
	char noiommu[8] = "", vendor[64] = "", line[128], fix[1024];
	bool amd;
	struct stat st;
	FILE *f;

	vhd_chk_read_line(
	    "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", noiommu,
	    sizeof(noiommu));
	f = fopen("/proc/cpuinfo", "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "vendor_id : %63s", vendor) == 1)
			break;
	if (f)
		fclose(f);
	amd = strcmp(vendor, "AuthenticAMD") == 0;
	snprintf(fix, sizeof(fix),
		 "turn on %s in the firmware and add %s iommu=pt to "
		 "GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub "
		 "and reboot\n"
		 "without an IOMMU (no DMA protection): modprobe vfio "
		 "enable_unsafe_noiommu_mode=1",
		 amd ? "AMD-Vi" : "VT-d",
		 amd ? "amd_iommu=on" : "intel_iommu=on");
	if (groups > 0) {
		vhd_chk_say(k, VHD_CHK_OK, NULL, "iommu: on (%u groups)",
			    groups);
	} else if (noiommu[0] == 'Y') {
		fix[strcspn(fix, "\n")] = '\0';
		vhd_chk_say(k, VHD_CHK_WARN, fix,
			    "iommu: none, vfio in no-IOMMU mode: a device can "
			    "DMA anywhere in the host's memory");
	} else {
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "iommu: no IOMMU groups (%s empty): vfio-pci "
			    "cannot take a device",
			    IOMMU_SYS);
	}
	if (stat("/sys/bus/pci/drivers/vfio-pci", &st) == 0)
		vhd_chk_say(k, VHD_CHK_OK, NULL, "vfio-pci: loaded");
	else
		vhd_chk_say(k, VHD_CHK_FAIL,
			    "modprobe vfio-pci\nto load it at every boot: echo "
			    "vfio-pci > /etc/modules-load.d/vfio-pci.conf",
			    "vfio-pci: module not loaded");
}

/* Port PC's PCI device ADDR: there, and bound to a driver DPDK can use. */
static void check_pci_port(struct vhd_chk *k, const struct vhd_port_conf *pc,
			   const char *addr)
{
	char p[PATH_MAX], drv[64], ifn[64], fix[1024];
	struct stat st;
	int n = 0;

	snprintf(p, sizeof(p), PCI_SYS "/%s", addr);
	if (stat(p, &st) < 0) {
		snprintf(fix, sizeof(fix),
			 "lspci -D lists this machine's devices: put the "
			 "right address in devargs of [port %s] (%s:%d)",
			 pc->name, k->file, pc->line);
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "port %s: PCI device %s: not on this machine",
			    pc->name, addr);
		return;
	}
	pci_driver(addr, drv, sizeof(drv), ifn, sizeof(ifn));
	if (strcmp(drv, "vfio-pci") == 0 || bifurcated(drv)) {
		vhd_chk_say(k, VHD_CHK_OK, NULL, "port %s: PCI device %s: %s%s",
			    pc->name, addr, drv,
			    bifurcated(drv) ? " (bifurcated: DPDK drives it "
					      "beside the kernel)"
					    : "");
		return;
	}
	if (ifn[0])
		n = snprintf(fix, sizeof(fix), "ip link set %s down && ", ifn);
	snprintf(fix + n, sizeof(fix) - n,
		 "dpdk-devbind.py --bind=vfio-pci %s\n"
		 "to keep it at every boot: driverctl set-override %s vfio-pci",
		 addr, addr);
	/* uio works, without DMA isolation. */
	if (strstr(drv, "uio"))
		vhd_chk_say(k, VHD_CHK_WARN, fix,
			    "port %s: PCI device %s: bound to %s: the device "
			    "can DMA anywhere in the host's memory",
			    pc->name, addr, drv);
	else
		vhd_chk_say(k, VHD_CHK_FAIL, fix,
			    "port %s: PCI device %s: bound to %s%s%s%s",
			    pc->name, addr, drv[0] ? drv : "no driver",
			    drv[0] ? " (the kernel's)" : "",
			    ifn[0] ? ", interface " : "", ifn);
}

/* The ports whose devargs are a PCI address ("0000:3b:00.0,..."). */
void vhd_chk_pci(struct vhd_chk *k)
{
	const struct vhd_config *c = k->conf;
	char addr[VHD_DEVARGS_MAX], drv[64], ifn[64];
	bool any = false, need_vfio = false;

	for (uint16_t i = 0; i < c->n_ports; i++) {
		const struct vhd_port_conf *pc = &c->ports[i];

		if (pc->name[0] && pc->type == VHD_PORT_ETH &&
		    vhd_config_dev_name(pc->devargs, addr, sizeof(addr))) {
			pci_driver(addr, drv, sizeof(drv), ifn, sizeof(ifn));
			any = true;
			need_vfio |= !bifurcated(drv);
		}
	}
	if (!any) {
		vhd_chk_say(k, VHD_CHK_OK, NULL,
			    "pci: no PCI ports in the config");
		return;
	}
	if (need_vfio)
		check_vfio(k);
	for (uint16_t i = 0; i < c->n_ports; i++) {
		const struct vhd_port_conf *pc = &c->ports[i];

		if (pc->name[0] && pc->type == VHD_PORT_ETH &&
		    vhd_config_dev_name(pc->devargs, addr, sizeof(addr)))
			check_pci_port(k, pc, addr);
	}
}
