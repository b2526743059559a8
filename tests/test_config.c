/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_config.c: the config parser, for good files and for every kind of
 * error a user can make (each must name the line, section and key).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "vhd_config.h"

static char path[] = "/tmp/vhd-test-config-XXXXXX";
static struct vhd_config conf;
static char err[1024];

static const char *good = "; comment\n"
			  "[vhostd]\n"
			  "lcores = 1\n"
			  "main-lcore = 0   ; inline comment\n"
			  "socket-mem = 256\n"
			  "\n"
			  "[bridge br0]\n"
			  "mode = learning\n"
			  "mac-aging = 300\n"
			  "[bridge x]\n"
			  "mode = xconnect\n"
			  "[port vm1]\n"
			  "type = vhost-user\n"
			  "path = /run/vhostd/vm1.sock\n"
			  "mode = server\n"
			  "bridge = br0\n"
			  "[port vm2]\n"
			  "type = vhost-user\n"
			  "path = /run/vhostd/vm2.sock\n"
			  "mode = client\n"
			  "bridge = br0\n"
			  "[port up]\n"
			  "type = ethdev\n"
			  "devargs = 0000:3b:00.0\n"
			  "queues = 2\n"
			  "bridge = x\n"
			  "[port up2]\n"
			  "type = ethdev\n"
			  "devargs = net_tap0,iface=tap0\n"
			  "bridge = x\n";

static int load(const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return vhd_config_load(path, &conf, err, sizeof(err));
}

/* TEXT must be refused with a message containing each of WANT[]. */
static void refused(const char *text, const char *what, const char *want1,
		    const char *want2)
{
	int rc = load(text);

	EXPECT(rc < 0, "%s: accepted", what);
	EXPECT(strstr(err, path) != NULL, "%s: no file name in '%s'", what,
	       err);
	EXPECT(strstr(err, want1) != NULL, "%s: '%s' not in '%s'", what, want1,
	       err);
	if (want2)
		EXPECT(strstr(err, want2) != NULL, "%s: '%s' not in '%s'", what,
		       want2, err);
}

static void test_good(void)
{
	EXPECT(load(good) == 0, "%s", err);
	EXPECT(conf.n_dp == 1 && conf.dp_cpus[0] == 1, "lcores");
	EXPECT(conf.socket_mem == 256, "socket-mem");
	EXPECT(strcmp(conf.file_prefix, "vhostd") == 0, "default prefix");
	EXPECT(conf.n_bridges == 2 && conf.n_ports == 4, "counts");
	EXPECT(conf.bridges[0].mode == VHD_BR_LEARNING &&
		   conf.bridges[0].mac_aging == 300,
	       "br0");
	EXPECT(conf.bridges[1].mode == VHD_BR_XCONNECT, "x");
	EXPECT(conf.ports[0].type == VHD_PORT_VHOST && !conf.ports[0].client &&
		   strcmp(conf.ports[0].path, "/run/vhostd/vm1.sock") == 0,
	       "vm1");
	EXPECT(conf.ports[1].client, "vm2 client");
	EXPECT(conf.ports[2].type == VHD_PORT_ETH &&
		   conf.ports[2].queues == 2 && conf.ports[2].bridge == 1,
	       "up");
	EXPECT(strcmp(conf.ports[3].devargs, "net_tap0,iface=tap0") == 0,
	       "devargs with '='");
}

static void test_defaults(void)
{
	EXPECT(load("[bridge b]\n[port p]\ntype = vhost-user\npath = /x.sock\n"
		    "bridge = b\n") == 0,
	       "%s", err);
	EXPECT(conf.bridges[0].mode == VHD_BR_LEARNING &&
		   conf.bridges[0].mac_aging == 300 &&
		   conf.bridges[0].mac_table_size == 8192,
	       "bridge defaults");
	EXPECT(!conf.ports[0].client, "server by default");
	EXPECT(conf.socket_mode == 0660 && conf.socket_group[0] == '\0' &&
		   conf.ports[0].socket_mode == 0660 &&
		   conf.ports[0].socket_group[0] == '\0',
	       "sockets 0660, vhostd's group, by default");
	EXPECT(load("[vhostd]\nsocket-group = root\nsocket-mode = 0600\n"
		    "[bridge b]\n[port p]\ntype = vhost-user\npath = /x.sock\n"
		    "bridge = b\n[port q]\ntype = vhost-user\n"
		    "path = /y.sock\nbridge = b\nsocket-mode = 664\n") == 0,
	       "%s", err);
	EXPECT(conf.ports[0].socket_mode == 0600 &&
		   strcmp(conf.ports[0].socket_group, "root") == 0 &&
		   conf.ports[1].socket_mode == 0664 &&
		   strcmp(conf.ports[1].socket_group, "root") == 0,
	       "a port takes [vhostd]'s socket keys unless it says");
	EXPECT(vhd_vlan_is_default(&conf.ports[0].vlan), "a trunk of all");
	EXPECT(conf.ports[0].ingress_rate_kbps == 0 &&
		   conf.ports[0].ingress_burst_kbytes == 0,
	       "no policing by default");
	EXPECT(load("[bridge b]\n[port p]\ntype = vhost-user\npath = /x.sock\n"
		    "bridge = b\ntag = 10\n[port q]\ntype = vhost-user\n"
		    "path = /y.sock\nbridge = b\nvlan-mode = native-tagged\n"
		    "tag = 5\ntrunks = 7, 100-102\n") == 0,
	       "%s", err);
	EXPECT(conf.ports[0].vlan.mode == VHD_VLAN_ACCESS &&
		   conf.ports[0].vlan.tag == 10 &&
		   vhd_vlan_carries(&conf.ports[0].vlan, 10) &&
		   !vhd_vlan_carries(&conf.ports[0].vlan, 0) &&
		   !vhd_vlan_tagged_out(&conf.ports[0].vlan, 10),
	       "a tag alone: access");
	EXPECT(conf.ports[1].vlan.mode == VHD_VLAN_NATIVE_TAGGED &&
		   vhd_vlan_carries(&conf.ports[1].vlan, 5) &&
		   vhd_vlan_carries(&conf.ports[1].vlan, 101) &&
		   !vhd_vlan_carries(&conf.ports[1].vlan, 103) &&
		   !vhd_vlan_carries(&conf.ports[1].vlan, 6) &&
		   vhd_vlan_tagged_out(&conf.ports[1].vlan, 5),
	       "native-tagged 5, trunks 7,100-102");
}

static void test_police(void)
{
	char *text;

	EXPECT(load("[bridge b]\n[port p]\ntype = vhost-user\npath = /x.sock\n"
		    "bridge = b\ningress-rate-kbps = 20000\n"
		    "[port q]\ntype = ethdev\ndevargs = net_null0\n"
		    "bridge = b\ningress-rate-kbps = 1000\n"
		    "ingress-burst-kbytes = 10\n"
		    "[port r]\ntype = ethdev\ndevargs = net_null1\n"
		    "bridge = b\ningress-rate-kbps = 0\n"
		    "[port s]\ntype = ethdev\ndevargs = net_null2\n"
		    "bridge = b\ningress-rate-kbps = 400000000\n") == 0,
	       "%s", err);
	EXPECT(conf.ports[0].ingress_rate_kbps == 20000 &&
		   conf.ports[0].ingress_burst_kbytes == 0 &&
		   vhd_police_burst_kbytes(&conf.ports[0]) == 1000,
	       "20000 kbit/s: default burst 400 ms = 1000 kbytes, got %u",
	       vhd_police_burst_kbytes(&conf.ports[0]));
	EXPECT(conf.ports[1].ingress_rate_kbps == 1000 &&
		   vhd_police_burst_kbytes(&conf.ports[1]) == 10,
	       "ethdev: 1000 kbit/s, 10 kbytes");
	EXPECT(conf.ports[2].ingress_rate_kbps == 0 &&
		   conf.ports[2].ingress_burst_kbytes == 0,
	       "rate 0: no policing");
	EXPECT(vhd_police_burst_kbytes(&conf.ports[3]) == 20000000,
	       "the top rate's default burst: %u",
	       vhd_police_burst_kbytes(&conf.ports[3]));
	/* Below 1280 kbit/s, 400 ms is less than 64 kbytes. */
	conf.ports[1].ingress_burst_kbytes = 0;
	EXPECT(vhd_police_burst_kbytes(&conf.ports[1]) == 64,
	       "1000 kbit/s: default burst 64 kbytes");
	conf.ports[1].ingress_rate_kbps = 1281;
	EXPECT(vhd_police_burst_kbytes(&conf.ports[1]) == 65,
	       "1281 kbit/s: 400 ms rounded up");
	conf.ports[1].ingress_burst_kbytes = 10;
	conf.ports[1].ingress_rate_kbps = 1000;

	/* Saved: the keys that were given, and only those. */
	text = vhd_config_format(&conf);
	EXPECT(text && strstr(text, "[port p]") &&
		   strstr(text, "ingress-rate-kbps = 20000\n") &&
		   strstr(text, "ingress-rate-kbps = 1000\n"
				"ingress-burst-kbytes = 10\n") &&
		   !strstr(text, "ingress-rate-kbps = 0") &&
		   !strstr(text, "ingress-burst-kbytes = 1000"),
	       "format:\n%s", text ? text : "(null)");
	if (text) {
		static struct vhd_config again;
		FILE *f = fopen(path, "w");

		fputs(text, f);
		fclose(f);
		EXPECT(vhd_config_load(path, &again, err, sizeof(err)) == 0 &&
			   again.ports[0].ingress_rate_kbps == 20000 &&
			   again.ports[0].ingress_burst_kbytes == 0 &&
			   again.ports[1].ingress_burst_kbytes == 10 &&
			   again.ports[3].ingress_rate_kbps == 400000000,
		       "saved policing does not load back: %s", err);
		free(text);
	}
}

static void test_cpus(void)
{
	uint16_t c[16], n;

	EXPECT(vhd_config_parse_cpus("0", c, 16, &n) == 0 && n == 1 &&
		   c[0] == 0,
	       "0");
	EXPECT(vhd_config_parse_cpus("0-1", c, 16, &n) == 0 && n == 2 &&
		   c[1] == 1,
	       "0-1");
	EXPECT(vhd_config_parse_cpus("1,0", c, 16, &n) == 0 && n == 2, "1,0");
	EXPECT(vhd_config_parse_cpus("0,0", c, 16, &n) < 0, "duplicate");
	EXPECT(vhd_config_parse_cpus("1-0", c, 16, &n) < 0, "backwards");
	EXPECT(vhd_config_parse_cpus("x", c, 16, &n) < 0, "x");
	EXPECT(vhd_config_parse_cpus("", c, 16, &n) < 0, "empty");
	EXPECT(vhd_config_parse_cpus("100000", c, 16, &n) < 0, "huge");
	EXPECT(vhd_config_parse_cpus("1023", c, 16, &n) < 0, "absent CPU");
}

static const char *tail =
    "[bridge br0]\n"
    "[port a]\ntype = vhost-user\npath = /tmp/a.sock\nbridge = br0\n";

static void test_errors(void)
{
	char buf[2048];

	refused("[vhostd]\nlcore = 1\n", "typo key",
		":2:", "[vhostd] lcore: unknown key");
	refused("[bridge b]\nmode = learning\nfoo = 1\n", "unknown bridge key",
		":3:", "foo: unknown key");
	refused("[bridge b]\n[port p]\npath = /x\nbridge = b\n", "missing type",
		":2:", "[port p] type: missing required key");
	refused("[bridge b]\n[port p]\ntype = vhost-user\nbridge = b\n",
		"missing path", "path: missing required key", NULL);
	refused("[bridge b]\n[port p]\ntype = ethdev\nbridge = b\n",
		"missing devargs", "devargs: missing required key", NULL);
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n",
		"missing bridge", "bridge: missing required key", NULL);
	refused("[port p]\ntype = vhost-user\npath = /x\nbridge = nob\n",
		"no such bridge", ":4:", "no such [bridge]");
	refused("[bridge b]\n[port p]\ntype = tap\n", "bad type",
		":3:", "expected 'vhost-user' or 'ethdev'");
	refused("[bridge b]\nmode = hub\n", "bad mode",
		":2:", "expected 'learning' or 'xconnect'");
	refused("[bridge b]\nmac-aging = -1\n", "negative aging",
		":2:", "not a number");
	refused("[bridge b]\nmac-aging = 10s\n", "aging unit",
		":2:", "not a number");
	refused("[vhostd]\nlcores = one\n", "bad lcores", ":2:", "lcores");
	refused("[vhostd]\nsocket-mem = 99999999999\n", "socket-mem range",
		":2:", "not a number");
	refused("[vhostd]\nmain-lcore = 4000\n", "absent main cpu",
		":2:", "main-lcore");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = x.sock\n"
		"bridge = b\n",
		"relative path", ":4:", "absolute");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nmode = listen\n",
		"bad vhost mode", ":6:", "expected 'server' or 'client'");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nqueues = 2\n",
		"ethdev key on vhost port", ":6:", "queues: unknown key");
	refused("[bridge b]\n[port p]\ntype = ethdev\ndevargs = net_null0\n"
		"bridge = b\nqueues = 0\n",
		"zero queues", ":6:", "not a number from 1");
	snprintf(buf, sizeof(buf),
		 "%s[port b]\ntype = vhost-user\npath = /tmp/a.sock\n"
		 "bridge = br0\n",
		 tail);
	refused(buf, "same socket twice", ":8:", "already used by port 'a'");
	refused("[bridge x]\nmode = xconnect\n[port a]\ntype = ethdev\n"
		"devargs = net_null0\nbridge = x\n[port b]\ntype = ethdev\n"
		"devargs = net_null1\nbridge = x\n[port c]\ntype = ethdev\n"
		"devargs = net_null2\nbridge = x\n",
		"xconnect with three ports", ":14:", "has two ports already");
	refused("[bridge b]\n[bridge b]\n", "repeated section",
		":2:", "repeated");
	refused("[bridge b]\nmode = learning\nmode = xconnect\n",
		"repeated key", ":3:", "repeated");
	refused("[bridge b]\nmode learning\n", "no '='",
		":2:", "expected 'key = value'");
	refused("mode = learning\n", "key before section",
		":1:", "before the first");
	refused("[bridge b\n", "broken header", ":1:", "section header");
	refused("[switch s]\n", "unknown section", ":1:", "unknown section");
	refused("[port a b]\n", "bad port name", ":1:", "[port NAME]");
	refused("# hash comment\n", "hash comment", ":1:", "';'");
	refused("[bridge b]\nmode =\n", "empty value", ":2:", "empty value");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nvlan-mode = access\n",
		"access without a tag",
		":6:", "vlan-mode: access and native modes need a tag");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nvlan-mode = trunk\ntag = 5\n",
		"trunk with a tag", ":7:", "tag: a trunk has no tag");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ntag = 5\ntrunks = 6\n",
		"access with trunks",
		":7:", "trunks: an access port carries its tag only");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ntag = 4095\n",
		"tag 4095",
		":6:", "tag: '4095' is not a number from 0 to 4094");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ntrunks = 10,x\n",
		"bad trunks", ":6:", "trunks: expected VLANs from 0 to 4094");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ntrunks = 20-10\n",
		"backwards range", ":6:", "trunks: expected VLANs");
	refused("[bridge b]\n[port p]\ntype = ethdev\ndevargs = net_null0\n"
		"bridge = b\nvlan-mode = dot1q\n",
		"bad vlan-mode", ":6:",
		"vlan-mode: expected 'access', 'trunk', 'native-untagged' or "
		"'native-tagged'");
	refused("[bridge x]\nmode = xconnect\n[port p]\ntype = ethdev\n"
		"devargs = net_null0\nbridge = x\ntag = 10\n",
		"VLAN on an xconnect",
		":7:", "tag: VLANs need a learning bridge");
	refused(
	    "[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
	    "bridge = b\nallowed-macs = 02:00:00:00:00:01,ff:ff:ff:ff:ff:ff\n",
	    "broadcast allowed",
	    ":6:", "allowed-macs: 'ff:ff:ff:ff:ff:ff' is not a unicast MAC");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nallowed-macs = ,\n",
		"no MAC", ":6:", "allowed-macs: no MAC given");
	refused("[bridge b]\n[port p]\ntype = ethdev\ndevargs = net_null0\n"
		"bridge = b\nmac-learn-limit = lots\n",
		"bad limit", ":6:", "mac-learn-limit: 'lots' is not a number");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nmtu = 9601\n",
		"mtu too big",
		":6:", "mtu: '9601' is not a number from 68 to 9600");
	refused("[vhostd]\nsocket-mode = 0778\n", "not octal", ":2:",
		"[vhostd] socket-mode: '0778' is not a file mode in octal");
	refused("[vhostd]\nsocket-mode = 01777\n", "sticky mode",
		":2:", "socket-mode: '01777'");
	refused("[vhostd]\nsocket-mode = 66\n", "two digits",
		":2:", "socket-mode: '66'");
	refused("[vhostd]\nsocket-group = nosuchgroup-vhd\n", "no such group",
		":2:", "socket-group: no such group on this machine");
	refused("[vhostd]\nsocket-group = a b\n", "bad group name",
		":2:", "socket-group: not a group name");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-rate-kbps = 10M\n",
		"rate with a unit", ":6:",
		"[port p] ingress-rate-kbps: '10M' is not a number from 0 to "
		"400000000");
	refused("[bridge b]\n[port p]\ntype = ethdev\ndevargs = net_null0\n"
		"bridge = b\ningress-rate-kbps = -1\n",
		"negative rate", ":6:", "[port p] ingress-rate-kbps: '-1'");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-rate-kbps = 400000001\n",
		"rate too high",
		":6:", "ingress-rate-kbps: '400000001' is not a number");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-rate-kbps = 99999999999999999999\n",
		"rate overflow", ":6:", "ingress-rate-kbps: '9999");
	refused("[bridge b]\n[port p]\ntype = ethdev\ndevargs = net_null0\n"
		"bridge = b\ningress-rate-kbps = 1000\n"
		"ingress-burst-kbytes = 9\n",
		"burst below a jumbo frame", ":7:",
		"[port p] ingress-burst-kbytes: '9' is not a number from 10 to "
		"50000000");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-rate-kbps = 1000\n"
		"ingress-burst-kbytes = 64k\n",
		"burst with a unit", ":7:", "ingress-burst-kbytes: '64k'");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-burst-kbytes = 100\n",
		"burst without a rate", ":6:",
		"[port p] ingress-burst-kbytes: needs ingress-rate-kbps");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-rate-kbps = 0\n"
		"ingress-burst-kbytes = 100\n",
		"burst with rate 0", ":7:", "needs ingress-rate-kbps");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\ningress-rate = 1000\n",
		"rate key without its unit",
		":6:", "[port p] ingress-rate: unknown key");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nmode = client\nsocket-group = root\n",
		"socket key on a client port",
		":7:", "socket-group: only for mode = server");
}

/* A vxlan port with evpn instead of remote: parsed, exclusive, saved. */
static void test_evpn(void)
{
	static const char *vx =
	    "[bridge b]\n"
	    "[port up]\ntype = ethdev\ndevargs = net_null0\n"
	    "[port vx]\ntype = vxlan\nbridge = b\nvni = 100\n"
	    "local-ip = 10.98.0.1\nunderlay = up\n";
	char buf[1024];
	char *text;

	snprintf(buf, sizeof(buf), "%sevpn = vhd100\n", vx);
	EXPECT(load(buf) == 0, "evpn: %s", err);
	EXPECT(strcmp(conf.ports[1].vx.evpn, "vhd100") == 0 &&
		   conf.ports[1].vx.n_remotes == 0,
	       "evpn '%s', %u remotes", conf.ports[1].vx.evpn,
	       conf.ports[1].vx.n_remotes);
	text = vhd_config_format(&conf);
	EXPECT(text && strstr(text, "evpn = vhd100\n") &&
		   !strstr(text, "remote ="),
	       "saved: %s", text ? text : "(null)");
	free(text);
	snprintf(buf, sizeof(buf), "%sevpn = vhd100\nremote = 10.98.0.2\n", vx);
	refused(buf, "evpn and remote", "[port vx] evpn", "exclude each other");
	snprintf(buf, sizeof(buf), "%sevpn = a-name-of-16-char\n", vx);
	refused(buf, "evpn name too long", "[port vx] evpn",
		"Linux interface name");
	snprintf(buf, sizeof(buf), "%sevpn = a/b\n", vx);
	refused(buf, "evpn name with a slash", "[port vx] evpn",
		"Linux interface name");
	refused(vx, "neither evpn nor remote", "[port vx] remote", NULL);
}

static void test_missing_file(void)
{
	EXPECT(vhd_config_load("/nonexistent/vhostd.conf", &conf, err,
			       sizeof(err)) < 0,
	       "missing file accepted");
	EXPECT(strstr(err, "/nonexistent/vhostd.conf") &&
		   strstr(err, "No such file"),
	       "'%s'", err);
}

/* ARGS (NULL-terminated "key=value") for port NAME must be refused with
 * WANT in the message, and change nothing. */
static void port_refused(const char *name, const char *want, ...)
{
	const char *argv[16];
	int argc = 0, slot;
	uint16_t before = conf.n_ports;
	va_list ap;

	va_start(ap, want);
	while (argc < 15 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	err[0] = '\0';
	slot = vhd_config_add_port(&conf, name, argc, argv, err, sizeof(err));
	EXPECT(slot < 0, "port %s accepted (want '%s')", name, want);
	EXPECT(strstr(err, want) != NULL, "'%s' not in '%s'", want, err);
	EXPECT(conf.n_ports == before, "port %s left behind", name);
}

static void test_runtime(void)
{
	const char *ok[] = {"bridge=br0", "type=vhost-user",
			    "path=/run/vhostd/vm3.sock", "mode=client"};
	const char *br[] = {"mode=xconnect", "mac-aging=10"};
	char *text;
	int slot;

	EXPECT(load(good) == 0, "%s", err);
	port_refused("vm3",
		     "[port vm3] path: socket path already used by "
		     "port 'vm1'",
		     "bridge=br0", "type=vhost-user",
		     "path=/run/vhostd/vm1.sock", NULL);
	port_refused("vm3", "[port vm3] bridge: no such bridge", "bridge=nob",
		     "type=vhost-user", "path=/x.sock", NULL);
	port_refused("vm3", "[port vm3] queues: unknown key", "bridge=br0",
		     "type=vhost-user", "path=/x.sock", "queues=2", NULL);
	port_refused("vm3", "[port vm3] path: missing required key",
		     "bridge=br0", "type=vhost-user", NULL);
	port_refused("vm3", "expected key=value", "bridge=br0", "vhost", NULL);
	port_refused("vm3", "';'", "bridge=br0", "type=vhost-user",
		     "path=/x;y.sock", NULL);
	port_refused("vm3", "given twice", "bridge=br0", "bridge=br0", NULL);
	port_refused(
	    "vm3", "too long for a unix socket", "bridge=br0",
	    "type=vhost-user",
	    "path=/run/vhostd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
	    NULL);
	port_refused("vm3",
		     "[port vm3] ingress-rate-kbps: 'fast' is not a number",
		     "bridge=br0", "type=vhost-user", "path=/x.sock",
		     "ingress-rate-kbps=fast", NULL);
	port_refused("vm3",
		     "[port vm3] ingress-burst-kbytes: needs ingress-rate-kbps",
		     "bridge=br0", "type=ethdev", "devargs=net_null8",
		     "ingress-burst-kbytes=100", NULL);
	port_refused("vm3", "[port vm3] ingress-burst-kbytes: '0' is not a",
		     "bridge=br0", "type=ethdev", "devargs=net_null8",
		     "ingress-rate-kbps=100", "ingress-burst-kbytes=0", NULL);
	port_refused("vm1", "a port of that name exists", "bridge=br0", NULL);
	port_refused("bad name", "port name 'bad name'", "bridge=br0", NULL);
	port_refused("up3", "xconnect bridge 'x' has two ports already",
		     "bridge=x", "type=ethdev", "devargs=net_null9", NULL);
	port_refused("up3", "device already used by port 'up2'", "bridge=br0",
		     "type=ethdev", "devargs=net_tap0,iface=tap0", NULL);
	/* One device, other options: still the same device (and ethdev). */
	port_refused("up3", "device already used by port 'up2'", "bridge=br0",
		     "type=ethdev", "devargs=net_tap0,iface=tap9", NULL);
	port_refused("up3", "device already used by port 'up'", "bridge=br0",
		     "type=ethdev", "devargs=3b:00.0", NULL);
	/* Another vdev on the same kernel interface. */
	port_refused("up3", "device already used by port 'up2'", "bridge=br0",
		     "type=ethdev", "devargs=net_af_packet0,iface=tap0", NULL);

	slot = vhd_config_add_port(&conf, "vm3", 4, ok, err, sizeof(err));
	EXPECT(slot == 4 && conf.n_ports == 5, "vm3 in slot %d: %s", slot, err);
	vhd_config_del_port(&conf, 0);
	slot = vhd_config_add_port(&conf, "vm4", 3, ok, err, sizeof(err));
	EXPECT(slot < 0 && strstr(err, "already used by port 'vm3'"),
	       "vm4 with vm3's path: %s", err);
	ok[2] = "path=/run/vhostd/vm4.sock";
	slot = vhd_config_add_port(&conf, "vm4", 3, ok, err, sizeof(err));
	EXPECT(slot == 0, "vm4 reuses vm1's slot: %d %s", slot, err);
	EXPECT(vhd_config_add_bridge(&conf, "br0", 0, NULL, err, sizeof(err)) <
		       0 &&
		   strstr(err, "a bridge of that name exists"),
	       "duplicate bridge: %s", err);
	EXPECT(vhd_config_add_bridge(&conf, "x2", 1,
				     (const char *[]){"mode=hub"}, err,
				     sizeof(err)) < 0 &&
		   strstr(err, "[bridge x2] mode: expected 'learning' or "
			       "'xconnect'"),
	       "bad bridge mode: %s", err);
	slot = vhd_config_add_bridge(&conf, "x2", 2, br, err, sizeof(err));
	EXPECT(slot == 2 && conf.bridges[2].mode == VHD_BR_XCONNECT &&
		   conf.bridges[2].mac_aging == 10,
	       "x2: %d %s", slot, err);

	/* What is formatted loads back into the same bridges and ports. */
	text = vhd_config_format(&conf);
	EXPECT(text != NULL, "format");
	if (text) {
		static struct vhd_config again;
		FILE *f = fopen(path, "w");

		fputs(text, f);
		fclose(f);
		EXPECT(vhd_config_load(path, &again, err, sizeof(err)) == 0,
		       "saved config refused: %s\n%s", err, text);
		EXPECT(again.n_ports == 5 && again.n_bridges == 3,
		       "saved config: %u ports, %u bridges", again.n_ports,
		       again.n_bridges);
		EXPECT(vhd_config_port_slot(&again, "vm4") >= 0 &&
			   again.ports[vhd_config_port_slot(&again, "vm3")]
			       .client &&
			   again.ports[vhd_config_port_slot(&again, "up")]
				   .queues == 2,
		       "saved ports");
		free(text);
	}
}

/* rxq-affinity, auto-rebalance, iommu-support, offloads: accepted, kept, and
 * every bad value refused with its line. */
static void test_sched_keys(void)
{
	EXPECT(load("[vhostd]\nlcores = 1\nauto-rebalance = yes\n"
		    "auto-rebalance-interval = 10\n"
		    "[bridge b]\n[port p]\ntype = vhost-user\npath = /x.sock\n"
		    "bridge = b\nrxq-affinity = 0:1,3:1\niommu-support = yes\n"
		    "[port e]\ntype = ethdev\ndevargs = net_null0\n"
		    "queues = 2\nbridge = b\nrxq-affinity = 1:1\n") == 0,
	       "%s", err);
	EXPECT(conf.auto_rebalance && conf.auto_rebalance_interval == 10 &&
		   conf.auto_rebalance_load == 95 &&
		   conf.auto_rebalance_improvement == 25,
	       "auto-rebalance");
	EXPECT(conf.ports[0].n_affinity == 2 &&
		   conf.ports[0].affinity[1].q == 3 &&
		   conf.ports[0].affinity[1].cpu == 1 &&
		   conf.ports[0].iommu_support,
	       "p");
	EXPECT(conf.ports[1].n_affinity == 1 &&
		   conf.ports[1].affinity[0].q == 1,
	       "e");
	EXPECT(load("[bridge b]\n") == 0 && !conf.auto_rebalance &&
		   conf.auto_rebalance_interval == 60,
	       "defaults");
	refused("[vhostd]\nlcores = 1\n[bridge b]\n[port p]\n"
		"type = vhost-user\npath = /x\nbridge = b\n"
		"rxq-affinity = 0:0\n",
		"pin off the lcores",
		":8:", "rxq-affinity: CPU 0 is not one of [vhostd] lcores");
	refused("[vhostd]\nlcores = 1\n[bridge b]\n[port e]\n"
		"type = ethdev\ndevargs = net_null0\nbridge = b\n"
		"rxq-affinity = 1:1\n",
		"queue past queues",
		":8:", "the queue must be a number from 0 to 0");
	refused("[vhostd]\nlcores = 1\n[bridge b]\n[port p]\n"
		"type = vhost-user\npath = /x\nbridge = b\n"
		"rxq-affinity = 0:1,\n",
		"trailing comma", ":8:", "empty item");
	refused("[vhostd]\nlcores = 1\n[bridge b]\n[port p]\n"
		"type = vhost-user\npath = /x\nbridge = b\n"
		"rxq-affinity = 0:1x\n",
		"bad CPU", ":8:", "the CPU must be a number");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nrxq-affinity = 0:1,0:1\n",
		"queue twice", ":6:", "queue 0 given twice");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\nrxq-affinity = 1\n",
		"no colon", ":6:", "expected QUEUE:CPU");
	refused("[vhostd]\nauto-rebalance = sometimes\n", "not a bool",
		":2:", "auto-rebalance: 'sometimes' is not yes or no");
	refused("[vhostd]\nauto-rebalance-improvement = 0\n", "0 %",
		":2:", "not a number from 1 to 100");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\niommu-support = maybe\n",
		"iommu maybe",
		":6:", "iommu-support: 'maybe' is not yes or no");
	/* offloads: on unless a port says no, for either type */
	EXPECT(load("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		    "bridge = b\n[port e]\ntype = ethdev\n"
		    "devargs = net_null0\nbridge = b\noffloads = no\n") == 0,
	       "%s", err);
	EXPECT(conf.ports[0].offloads && !conf.ports[1].offloads, "offloads");
	refused("[bridge b]\n[port p]\ntype = vhost-user\npath = /x\n"
		"bridge = b\noffloads = maybe\n",
		"offloads maybe", ":6:", "offloads: 'maybe' is not yes or no");
}

/* A file with VHD_MAX_PORTS ports, each with a few keys, loads; one more
 * port is refused. */
static void test_many_ports(void)
{
	size_t cap = (VHD_MAX_PORTS + 2) * 160 + 64, n = 0;
	char *t = malloc(cap);

	n += (size_t)snprintf(t + n, cap - n, "[bridge b]\n");
	for (int i = 0; i <= VHD_MAX_PORTS; i++)
		n += (size_t)snprintf(t + n, cap - n,
				      "[port p%d]\ntype = vhost-user\n"
				      "path = /run/p%d.sock\nbridge = b\n"
				      "mode = server\nmtu = 1500\n",
				      i, i);
	refused(t, "1025 ports", ":6146:", "more than 1024 ports");
	*strstr(t, "[port p1024]") = '\0';
	EXPECT(load(t) == 0, "1024 ports: %s", err);
	EXPECT(conf.n_ports == VHD_MAX_PORTS, "ports %u", conf.n_ports);
	free(t);
}

int main(void)
{
	int fd = mkstemp(path);

	if (fd < 0)
		return 2;
	close(fd);
	UNIT_CASE(test_good);
	UNIT_CASE(test_defaults);
	UNIT_CASE(test_police);
	UNIT_CASE(test_cpus);
	UNIT_CASE(test_errors);
	UNIT_CASE(test_evpn);
	UNIT_CASE(test_sched_keys);
	UNIT_CASE(test_many_ports);
	UNIT_CASE(test_missing_file);
	UNIT_CASE(test_runtime);
	unlink(path);
	return unit_done();
}
