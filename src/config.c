/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.c: the INI file into struct vhd_config.
 *
 * DPDK's rte_cfgfile does the parsing; it cannot say on which line a key
 * stands, nor tell a syntax error from a missing file, so a short first pass
 * over the raw text checks the syntax and records each key's line for the
 * error messages. Nothing here needs the EAL.
 *
 * Bridges and ports added at run time are "key=value" lists put into an
 * in-memory rte_cfgfile section and read by the same section parsers, so
 * the control socket and the file accept the same keys and values and say
 * the same things about them (less the file and line, which they lack).
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_cfgfile.h>
#include <rte_common.h>
#include <rte_ether.h>
#include <rte_pci.h>

#include "vhd_config.h"

/* Lines with a section or a key: room for VHD_MAX_PORTS ports with every
 * key they take, and VHD_MAX_BRIDGES bridges. */
#define MAX_KEYS 32768

struct key_line {
	char sec[CFG_NAME_LEN];
	char key[CFG_NAME_LEN];
	int line;
};

struct parse {
	const char *file; /* NULL: run-time arguments, no file or line */
	char *err;
	size_t errlen;
	struct key_line keys[MAX_KEYS];
	int n_keys;
};

static int fail(struct parse *p, int line, const char *sec, const char *key,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(struct parse *p, int line, const char *sec, const char *key,
		const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->file == NULL && sec && key)
		snprintf(p->err, p->errlen, "[%s] %s: %s", sec, key, msg);
	else if (p->file == NULL && sec)
		snprintf(p->err, p->errlen, "[%s]: %s", sec, msg);
	else if (p->file == NULL)
		snprintf(p->err, p->errlen, "%s", msg);
	else if (sec && key)
		snprintf(p->err, p->errlen, "%s:%d: [%s] %s: %s", p->file, line,
			 sec, key, msg);
	else if (sec)
		snprintf(p->err, p->errlen, "%s:%d: [%s]: %s", p->file, line,
			 sec, msg);
	else
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, line, msg);
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int key_line(const struct parse *p, const char *sec, const char *key)
{
	for (int i = 0; i < p->n_keys; i++)
		if (strcmp(p->keys[i].sec, sec) == 0 &&
		    (key == NULL ? p->keys[i].key[0] == '\0'
				 : strcmp(p->keys[i].key, key) == 0))
			return p->keys[i].line;
	return 0;
}

/* First pass: syntax, lengths, duplicates; remember where each key is. */
static int prescan(struct parse *p)
{
	char *buf = NULL, sec[CFG_NAME_LEN] = "";
	size_t cap = 0;
	ssize_t len;
	int line = 0, rc = 0;
	FILE *f = fopen(p->file, "r");

	if (f == NULL) {
		snprintf(p->err, p->errlen, "%s: cannot open: %s", p->file,
			 strerror(errno));
		return -1;
	}
	while (rc == 0 && (len = getline(&buf, &cap, f)) >= 0) {
		char *s, *eq, *c;

		line++;
		/* rte_cfgfile reads lines into a buffer of this size. */
		if (len >= CFG_NAME_LEN + CFG_VALUE_LEN) {
			rc = fail(p, line, NULL, NULL,
				  "line longer than %d characters",
				  CFG_NAME_LEN + CFG_VALUE_LEN - 1);
			break;
		}
		for (ssize_t i = 0; i < len; i++)
			if (buf[i] == '\0' || ((unsigned char)buf[i] < 0x20 &&
					       !strchr("\t\r\n", buf[i])))
				rc = -1;
		if (rc) {
			rc = fail(p, line, NULL, NULL,
				  "control character or NUL: not a text file?");
			break;
		}
		c = strchr(buf, ';');
		if (c)
			*c = '\0';
		s = trim(buf);
		if (*s == '\0')
			continue;
		if (*s == '#') {
			rc = fail(p, line, NULL, NULL,
				  "comments start with ';', not '#'");
			break;
		}
		if (p->n_keys == MAX_KEYS) {
			rc = fail(p, line, NULL, NULL, "too many lines");
			break;
		}
		if (*s == '[') {
			char *e = strchr(s, ']');

			if (e == NULL || e[1] != '\0') {
				rc = fail(p, line, NULL, NULL,
					  "section header must be '[name]'");
				break;
			}
			*e = '\0';
			s = trim(s + 1);
			if (*s == '\0' || strlen(s) >= CFG_NAME_LEN) {
				rc = fail(p, line, NULL, NULL,
					  "section name empty or too long");
				break;
			}
			if (key_line(p, s, NULL)) {
				rc = fail(p, line, s, NULL,
					  "section repeated (first at line %d)",
					  key_line(p, s, NULL));
				break;
			}
			snprintf(sec, sizeof(sec), "%s", s);
			snprintf(p->keys[p->n_keys].sec, CFG_NAME_LEN, "%s", s);
			p->keys[p->n_keys].key[0] = '\0';
			p->keys[p->n_keys++].line = line;
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL) {
			rc = fail(p, line, sec[0] ? sec : NULL, NULL,
				  "expected 'key = value' or '[section]'");
			break;
		}
		if (sec[0] == '\0') {
			rc = fail(p, line, NULL, NULL,
				  "key before the first [section]");
			break;
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);

		if (*key == '\0' || strlen(key) >= CFG_NAME_LEN) {
			rc = fail(p, line, sec, NULL, "key empty or too long");
			break;
		}
		if (*val == '\0') {
			rc = fail(p, line, sec, key, "empty value");
			break;
		}
		if (strlen(val) >= CFG_VALUE_LEN) {
			rc = fail(p, line, sec, key,
				  "value longer than %d characters",
				  CFG_VALUE_LEN - 1);
			break;
		}
		if (key_line(p, sec, key)) {
			rc = fail(p, line, sec, key,
				  "key repeated (first at line %d)",
				  key_line(p, sec, key));
			break;
		}
		snprintf(p->keys[p->n_keys].sec, CFG_NAME_LEN, "%s", sec);
		snprintf(p->keys[p->n_keys].key, CFG_NAME_LEN, "%s", key);
		p->keys[p->n_keys++].line = line;
	}
	free(buf);
	fclose(f);
	return rc;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

bool vhd_config_dev_name(const char *devargs, char *name, size_t len)
{
	struct rte_pci_addr addr;
	char buf[VHD_DEVARGS_MAX], *comma;

	snprintf(buf, sizeof(buf), "%s", devargs);
	comma = strchr(buf, ',');
	if (comma)
		*comma = '\0';
	if (rte_pci_addr_parse(buf, &addr) == 0) {
		rte_pci_device_name(&addr, name, len);
		return true;
	}
	snprintf(name, len, "%s", buf);
	return false;
}

/* "1,3-5": EACH(LO, HI, ARG) for every item, each number at most MAX;
 * -1 if S is not such a list (or empty) or EACH fails. The one parser of
 * the CPU and the VLAN lists. */
static int parse_ranges(const char *s, uint32_t max,
			int (*each)(uint32_t lo, uint32_t hi, void *arg),
			void *arg)
{
	char buf[CFG_VALUE_LEN], *save = NULL, *tok;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint32_t lo, hi;
		char *dash = strchr(tok, '-');

		if (dash)
			*dash = '\0';
		if (parse_u32(trim(tok), 0, max, &lo))
			return -1;
		hi = lo;
		if (dash && parse_u32(trim(dash + 1), lo, max, &hi))
			return -1;
		if (each(lo, hi, arg) < 0)
			return -1;
		n++;
	}
	return n ? 0 : -1;
}

struct cpu_list {
	uint16_t *cpus, max, *n;
	long ncpu;
};

static int add_cpus(uint32_t lo, uint32_t hi, void *arg)
{
	struct cpu_list *l = arg;

	for (uint32_t c = lo; c <= hi; c++) {
		if (*l->n == l->max || (l->ncpu > 0 && c >= (uint32_t)l->ncpu))
			return -1;
		for (uint16_t i = 0; i < *l->n; i++)
			if (l->cpus[i] == c)
				return -1;
		l->cpus[(*l->n)++] = (uint16_t)c;
	}
	return 0;
}

int vhd_config_parse_cpus(const char *s, uint16_t *cpus, uint16_t max,
			  uint16_t *n)
{
	struct cpu_list l = {cpus, max, n, sysconf(_SC_NPROCESSORS_CONF)};

	*n = 0;
	return parse_ranges(s, 1023, add_cpus, &l);
}

static bool valid_name(const char *s)
{
	if (*s == '\0' || strlen(s) >= VHD_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* Every key of SEC must be in ALLOWED (a NULL-terminated list). */
static int check_keys(struct parse *p, struct rte_cfgfile *cfg, const char *sec,
		      const char *const *allowed)
{
	int n = rte_cfgfile_section_num_entries(cfg, sec);
	struct rte_cfgfile_entry *ent;
	int rc = 0;

	if (n <= 0)
		return 0;
	ent = calloc(n, sizeof(*ent));
	if (ent == NULL)
		return fail(p, 0, sec, NULL, "out of memory");
	n = rte_cfgfile_section_entries(cfg, sec, ent, n);
	for (int i = 0; i < n && rc == 0; i++) {
		const char *const *a = allowed;

		while (*a && strcmp(*a, ent[i].name) != 0)
			a++;
		if (*a == NULL)
			rc = fail(p, key_line(p, sec, ent[i].name), sec,
				  ent[i].name, "unknown key");
	}
	free(ent);
	return rc;
}

struct ctx {
	struct parse *p;
	struct rte_cfgfile *cfg;
	const char *sec;
};

static const char *get(struct ctx *c, const char *key)
{
	return rte_cfgfile_get_entry(c->cfg, c->sec, key);
}

static int bad(struct ctx *c, const char *key, const char *what)
{
	return fail(c->p, key_line(c->p, c->sec, key), c->sec, key, "%s", what);
}

static int get_u32(struct ctx *c, const char *key, uint32_t min, uint32_t max,
		   uint32_t def, uint32_t *out)
{
	const char *v = get(c, key);

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (parse_u32(v, min, max, out))
		return fail(c->p, key_line(c->p, c->sec, key), c->sec, key,
			    "'%s' is not a number from %u to %u", v, min, max);
	return 0;
}

static int get_str(struct ctx *c, const char *key, const char *def, char *out,
		   size_t len)
{
	const char *v = get(c, key);

	if (v == NULL && def == NULL)
		return fail(c->p, key_line(c->p, c->sec, NULL), c->sec, key,
			    "missing required key");
	if (v != NULL)
		snprintf(out, len, "%s", v);
	else if (def != out)
		snprintf(out, len, "%s", def);
	return 0;
}

/* yes|no (also true|false, on|off, 1|0, as OVS and INI files write it). */
static int get_bool(struct ctx *c, const char *key, bool def, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	const char *v = get(c, key);

	*out = def;
	if (v == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return fail(c->p, key_line(c->p, c->sec, key), c->sec, key,
		    "'%s' is not yes or no", v);
}

/* A group that exists on this machine: a socket's group is looked up
 * when the socket is made, and a typo should fail at load, not then. */
static int get_group(struct ctx *c, const char *key, const char *def,
		     char out[VHD_GROUP_MAX])
{
	if (get_str(c, key, def, out, VHD_GROUP_MAX))
		return -1;
	if (out[0] == '\0')
		return 0;
	if (!valid_name(out))
		return bad(c, key, "not a group name");
	if (getgrnam(out) == NULL)
		return bad(c, key, "no such group on this machine");
	return 0;
}

/* A file mode in octal, as chmod takes it ("0660", "660"). */
static int get_mode(struct ctx *c, const char *key, uint32_t def, uint32_t *out)
{
	const char *v = get(c, key);
	size_t n = v ? strlen(v) : 0;
	char *end;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	*out = (uint32_t)strtoul(v, &end, 8);
	if (n < 3 || n > 4 || *end != '\0' || strspn(v, "01234567") != n ||
	    *out > 0777)
		return fail(c->p, key_line(c->p, c->sec, key), c->sec, key,
			    "'%s' is not a file mode in octal such as 0660", v);
	return 0;
}

static int parse_global(struct ctx *c, struct vhd_config *conf)
{
	static const char *const keys[] = {"lcores",
					   "main-lcore",
					   "socket-mem",
					   "mbufs",
					   "file-prefix",
					   "huge-dir",
					   "log-level",
					   "control",
					   "control-group",
					   "socket-group",
					   "socket-mode",
					   "auto-rebalance",
					   "auto-rebalance-interval",
					   "auto-rebalance-load",
					   "auto-rebalance-improvement",
					   NULL};
	uint32_t v;
	const char *s;

	if (check_keys(c->p, c->cfg, c->sec, keys))
		return -1;
	s = get(c, "lcores");
	if (s && vhd_config_parse_cpus(s, conf->dp_cpus, VHD_MAX_DP_LCORES,
				       &conf->n_dp))
		return bad(c, "lcores",
			   "expected a list of distinct existing CPUs such as "
			   "'1' or '1,2' or '1-3'");
	if (get_u32(c, "main-lcore", 0, 1023, conf->main_cpu, &v))
		return -1;
	if (sysconf(_SC_NPROCESSORS_CONF) > 0 &&
	    v >= (uint32_t)sysconf(_SC_NPROCESSORS_CONF))
		return bad(c, "main-lcore", "no such CPU on this machine");
	conf->main_cpu = (uint16_t)v;
	if (get_u32(c, "socket-mem", 16, 1 << 20, conf->socket_mem,
		    &conf->socket_mem) ||
	    get_u32(c, "mbufs", 1024, 1 << 24, 0, &conf->mbufs))
		return -1;
	if (get_str(c, "file-prefix", conf->file_prefix, conf->file_prefix,
		    sizeof(conf->file_prefix)) ||
	    get_str(c, "huge-dir", "", conf->huge_dir,
		    sizeof(conf->huge_dir)) ||
	    get_str(c, "log-level", "", conf->log_level,
		    sizeof(conf->log_level)))
		return -1;
	if (!valid_name(conf->file_prefix))
		return bad(c, "file-prefix",
			   "use letters, digits, '_', '.' or '-'");
	if (get_str(c, "control", conf->control, conf->control,
		    sizeof(conf->control)) ||
	    get_str(c, "control-group", "", conf->control_group,
		    sizeof(conf->control_group)))
		return -1;
	if (conf->control[0] != '/')
		return bad(c, "control", "must be an absolute path");
	/* The kernel would truncate a longer path silently. */
	if (strlen(conf->control) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path))
		return bad(c, "control", "too long for a unix socket");
	if (conf->control_group[0] && !valid_name(conf->control_group))
		return bad(c, "control-group", "not a group name");
	/* OVS's defaults: pmd-auto-lb-rebal-interval 1 min,
	 * -load-threshold 95 %, -improvement-threshold 25 %. */
	return get_group(c, "socket-group", "", conf->socket_group) ||
	       get_mode(c, "socket-mode", VHD_SOCKET_MODE_DEFAULT,
			&conf->socket_mode) ||
	       get_bool(c, "auto-rebalance", false, &conf->auto_rebalance) ||
	       get_u32(c, "auto-rebalance-interval", 5, 86400, 60,
		       &conf->auto_rebalance_interval) ||
	       get_u32(c, "auto-rebalance-load", 0, 100, 95,
		       &conf->auto_rebalance_load) ||
	       get_u32(c, "auto-rebalance-improvement", 1, 100, 25,
		       &conf->auto_rebalance_improvement);
}

static int parse_bridge(struct ctx *c, const char *name,
			struct vhd_bridge_conf *b)
{
	static const char *const keys[] = {"mode", "mac-aging",
					   "mac-table-size", NULL};
	char mode[CFG_VALUE_LEN];

	if (check_keys(c->p, c->cfg, c->sec, keys))
		return -1;
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->line = key_line(c->p, c->sec, NULL);
	get_str(c, "mode", "learning", mode, sizeof(mode));
	if (strcmp(mode, "learning") == 0)
		b->mode = VHD_BR_LEARNING;
	else if (strcmp(mode, "xconnect") == 0)
		b->mode = VHD_BR_XCONNECT;
	else
		return bad(c, "mode", "expected 'learning' or 'xconnect'");
	return get_u32(c, "mac-aging", 0, 86400 * 365, 300, &b->mac_aging) ||
	       get_u32(c, "mac-table-size", 16, 1 << 22, 8192,
		       &b->mac_table_size);
}

static int add_vlans(uint32_t lo, uint32_t hi, void *bits)
{
	for (uint32_t v = lo; v <= hi; v++)
		((uint64_t *)bits)[v / 64] |= UINT64_C(1) << (v % 64);
	return 0;
}

/* "10,20,100-199": set each VLAN's bit; -1 if not such a list. */
static int parse_vlan_list(const char *s, uint64_t *bits)
{
	return parse_ranges(s, VHD_VLAN_MAX - 1, add_vlans, bits);
}

const char *vhd_vlan_mode_name(enum vhd_vlan_mode m)
{
	static const char *const modes[] = {
	    [VHD_VLAN_TRUNK] = "trunk",
	    [VHD_VLAN_ACCESS] = "access",
	    [VHD_VLAN_NATIVE_UNTAGGED] = "native-untagged",
	    [VHD_VLAN_NATIVE_TAGGED] = "native-tagged"};

	return (unsigned int)m < RTE_DIM(modes) ? modes[m] : "?";
}

/* vlan-mode, tag, trunks: OVS's keys, values and defaults (no key: a
 * trunk of every VLAN; a tag alone: an access port). */
static int parse_vlan(struct ctx *c, const struct vhd_config *conf,
		      struct vhd_port_conf *pc)
{
	struct vhd_vlan *v = &pc->vlan;
	const char *m = get(c, "vlan-mode"), *tag = get(c, "tag");
	const char *tr = get(c, "trunks");
	uint32_t t;

	memset(v, 0, sizeof(*v));
	v->all = true;
	v->mode = tag ? VHD_VLAN_ACCESS : VHD_VLAN_TRUNK;
	if (m) {
		size_t i;

		for (i = 0; i <= VHD_VLAN_NATIVE_TAGGED; i++)
			if (strcmp(m, vhd_vlan_mode_name(i)) == 0)
				break;
		if (i > VHD_VLAN_NATIVE_TAGGED)
			return bad(c, "vlan-mode",
				   "expected 'access', 'trunk', "
				   "'native-untagged' or 'native-tagged'");
		v->mode = (enum vhd_vlan_mode)i;
	}
	if (get_u32(c, "tag", 0, VHD_VLAN_MAX - 1, 0, &t))
		return -1;
	v->tag = (uint16_t)t;
	if (tr) {
		v->all = false;
		if (parse_vlan_list(tr, v->trunks))
			return bad(c, "trunks",
				   "expected VLANs from 0 to 4094 such as "
				   "'10,20,100-199'");
	}
	if (v->mode == VHD_VLAN_TRUNK && tag)
		return bad(c, "tag",
			   "a trunk has no tag (untagged frames in a VLAN: "
			   "vlan-mode = native-untagged)");
	if (v->mode != VHD_VLAN_TRUNK && !tag)
		return bad(c, "vlan-mode",
			   "access and native modes need a tag");
	if (v->mode == VHD_VLAN_ACCESS && tr)
		return bad(c, "trunks", "an access port carries its tag only");
	if (!vhd_vlan_is_default(v) &&
	    conf->bridges[pc->bridge].mode != VHD_BR_LEARNING)
		return bad(c,
			   m	 ? "vlan-mode"
			   : tag ? "tag"
				 : "trunks",
			   "VLANs need a learning bridge");
	return 0;
}

/* allowed-macs = MAC[,MAC...] (unicast), mac-learn-limit = N. */
static int parse_security(struct ctx *c, struct vhd_port_conf *pc)
{
	struct vhd_port_security *sec = &pc->sec;
	const char *am = get(c, "allowed-macs");

	memset(sec, 0, sizeof(*sec));
	if (am) {
		char buf[CFG_VALUE_LEN], *save = NULL, *tok;

		snprintf(buf, sizeof(buf), "%s", am);
		for (tok = strtok_r(buf, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			struct rte_ether_addr ea;
			uint8_t k[8] = {0};

			if (rte_ether_unformat_addr(trim(tok), &ea) < 0 ||
			    !rte_is_unicast_ether_addr(&ea) ||
			    rte_is_zero_ether_addr(&ea))
				return fail(
				    c->p,
				    key_line(c->p, c->sec, "allowed-macs"),
				    c->sec, "allowed-macs",
				    "'%s' is not a unicast MAC address",
				    trim(tok));
			if (sec->n_allowed == VHD_ALLOWED_MACS_MAX)
				return bad(c, "allowed-macs",
					   "at most 16 MACs");
			memcpy(k, &ea, sizeof(ea));
			memcpy(&sec->allowed[sec->n_allowed++], k, sizeof(k));
		}
		if (sec->n_allowed == 0)
			return bad(c, "allowed-macs", "no MAC given");
	}
	return get_u32(c, "mac-learn-limit", 0, 1 << 22, 0, &sec->learn_limit);
}

/* ingress-rate-kbps, ingress-burst-kbytes: policing (vhd_config.h has
 * the units and the default burst). */
static int parse_police(struct ctx *c, struct vhd_port_conf *pc)
{
	if (get_u32(c, "ingress-rate-kbps", 0, VHD_POLICE_RATE_MAX, 0,
		    &pc->ingress_rate_kbps) ||
	    get_u32(c, "ingress-burst-kbytes", VHD_POLICE_BURST_MIN,
		    VHD_POLICE_BURST_MAX, 0, &pc->ingress_burst_kbytes))
		return -1;
	if (pc->ingress_burst_kbytes && pc->ingress_rate_kbps == 0)
		return bad(c, "ingress-burst-kbytes",
			   "needs ingress-rate-kbps (a rate above 0)");
	return 0;
}

/* rxq-affinity = Q:CPU[,Q:CPU...] (OVS's other_config:pmd-rxq-affinity):
 * each queue once, each CPU a datapath lcore's. */
static int parse_affinity(struct ctx *c, const struct vhd_config *conf,
			  struct vhd_port_conf *pc)
{
	const char *v = get(c, "rxq-affinity");
	uint16_t max_q =
	    pc->type == VHD_PORT_VHOST ? VHD_MAX_QUEUES : pc->queues;
	char buf[CFG_VALUE_LEN], *save = NULL, *tok;

	pc->n_affinity = 0;
	if (v == NULL)
		return 0;
	/* strtok_r would skip empty items: a stray comma is a typo. */
	if (v[0] == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,"))
		return bad(c, "rxq-affinity",
			   "empty item: expected QUEUE:CPU[,QUEUE:CPU...]");
	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		uint32_t q, cpu;
		bool lcore = false;

		if (colon == NULL)
			return bad(c, "rxq-affinity",
				   "expected QUEUE:CPU[,QUEUE:CPU...] such as "
				   "'0:1,1:2'");
		*colon = '\0';
		if (parse_u32(trim(tok), 0, max_q - 1u, &q))
			return fail(
			    c->p, key_line(c->p, c->sec, "rxq-affinity"),
			    c->sec, "rxq-affinity",
			    "'%s:%s': the queue must be a number from 0 "
			    "to %u",
			    tok, colon + 1, max_q - 1u);
		if (parse_u32(trim(colon + 1), 0, 1023, &cpu))
			return fail(c->p,
				    key_line(c->p, c->sec, "rxq-affinity"),
				    c->sec, "rxq-affinity",
				    "'%s:%s': the CPU must be a number", tok,
				    colon + 1);
		for (uint16_t i = 0; i < conf->n_dp; i++)
			lcore |= conf->dp_cpus[i] == cpu;
		if (!lcore)
			return fail(
			    c->p, key_line(c->p, c->sec, "rxq-affinity"),
			    c->sec, "rxq-affinity",
			    "CPU %u is not one of [vhostd] lcores", cpu);
		for (uint16_t i = 0; i < pc->n_affinity; i++)
			if (pc->affinity[i].q == q)
				return fail(
				    c->p,
				    key_line(c->p, c->sec, "rxq-affinity"),
				    c->sec, "rxq-affinity",
				    "queue %u given twice", q);
		pc->affinity[pc->n_affinity].q = (uint16_t)q;
		pc->affinity[pc->n_affinity++].cpu = (uint16_t)cpu;
	}
	if (pc->n_affinity == 0)
		return bad(c, "rxq-affinity", "empty");
	/* One meter per policed port: its queues are one lcore's. */
	for (uint16_t i = 1; i < pc->n_affinity; i++)
		if (pc->ingress_rate_kbps &&
		    pc->affinity[i].cpu != pc->affinity[0].cpu)
			return bad(c, "rxq-affinity",
				   "a policed port's rx queues are polled by "
				   "one lcore: name one CPU");
	return 0;
}

static int get_ipv4(struct ctx *c, const char *key, const char *v,
		    uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1)
		return bad(c, key, "expected an IPv4 address (a.b.c.d)");
	if (a.s_addr == 0 || a.s_addr == INADDR_BROADCAST ||
	    (ntohl(a.s_addr) >> 28) == 14)
		return bad(c, key, "expected a unicast IPv4 address");
	*out = a.s_addr;
	return 0;
}

/* type = vxlan: the tunnel's keys. The underlay is resolved (and the
 * default MTU set) once every port is known (resolve_vxlan). */
static int parse_vxlan(struct ctx *c, const struct vhd_config *conf,
		       struct vhd_port_conf *pc)
{
	struct vhd_vxlan_conf *vx = &pc->vx;
	char buf[CFG_VALUE_LEN], *save = NULL, *tok;
	const char *v;
	uint32_t u;

	if (strlen(pc->name) >= VHD_VXLAN_NAME_MAX)
		return fail(c->p, key_line(c->p, c->sec, NULL), c->sec, NULL,
			    "a vxlan port's name has at most %d characters "
			    "(its remotes are named NAME/IP)",
			    VHD_VXLAN_NAME_MAX - 1);
	if (conf->bridges[pc->bridge].mode != VHD_BR_LEARNING)
		return bad(c, "bridge", "a vxlan port needs a learning bridge");
	if (parse_vlan(c, conf, pc) || parse_security(c, pc) ||
	    get_u32(c, "vni", 1, 16777215, 0, &vx->vni) ||
	    get_u32(c, "udp-port", 1, 65535, VHD_VXLAN_PORT_DEF, &u))
		return -1;
	vx->udp_port = (uint16_t)u;
	/* Required: as get_str says a key is missing. */
	if ((vx->vni == 0 && get_str(c, "vni", NULL, buf, sizeof(buf))) ||
	    get_str(c, "local-ip", NULL, buf, sizeof(buf)) ||
	    get_ipv4(c, "local-ip", buf, &vx->local_ip) ||
	    get_str(c, "underlay", NULL, vx->underlay, sizeof(vx->underlay)))
		return -1;
	v = get(c, "evpn");
	if (v) {
		if (get(c, "remote"))
			return bad(c, "evpn",
				   "evpn and remote exclude each other (with "
				   "evpn, BGP EVPN gives the remotes)");
		if (*v == '\0' || strlen(v) >= sizeof(vx->evpn) ||
		    strchr(v, '/') || strchr(v, ' '))
			return bad(c, "evpn",
				   "expected a Linux interface name (1-15 "
				   "characters)");
		snprintf(vx->evpn, sizeof(vx->evpn), "%s", v);
		buf[0] = '\0';
	} else if (get_str(c, "remote", NULL, buf, sizeof(buf)))
		return -1;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint32_t ip;

		if (get_ipv4(c, "remote", trim(tok), &ip))
			return -1;
		if (ip == vx->local_ip)
			return bad(c, "remote", "a remote is local-ip");
		for (uint16_t k = 0; k < vx->n_remotes; k++)
			if (vx->remote[k] == ip)
				return bad(c, "remote", "a remote twice");
		if (vx->n_remotes == VHD_VXLAN_REMOTES_MAX)
			return bad(c, "remote", "at most 64 remotes");
		vx->remote[vx->n_remotes++] = ip;
	}
	if (vx->n_remotes == 0 && !vx->evpn[0])
		return bad(c, "remote", "no address given");
	v = get(c, "next-hop-mac");
	if (v) {
		struct rte_ether_addr ea;

		if (rte_ether_unformat_addr(v, &ea) < 0 ||
		    !rte_is_unicast_ether_addr(&ea) ||
		    rte_is_zero_ether_addr(&ea))
			return bad(c, "next-hop-mac",
				   "expected a unicast MAC address");
		vx->has_nh = true;
		memcpy(vx->nh_mac, &ea, 6);
	}
	vx->mtu_given = get(c, "mtu") != NULL;
	pc->offloads = false;
	pc->queues = 0;
	return get_u32(c, "mtu", VHD_MTU_MIN, VHD_MTU_MAX - VHD_VXLAN_OVERHEAD,
		       VHD_MTU_DEFAULT - VHD_VXLAN_OVERHEAD, &pc->mtu);
}

/* A vxlan port's underlay: an ethdev port without a bridge (any slot: a
 * file may name it before its section); the MTU it leaves. */
static int resolve_vxlan(struct parse *p, struct vhd_config *conf, uint16_t i)
{
	struct vhd_port_conf *a = &conf->ports[i];
	char sec[CFG_NAME_LEN];
	int u;

	if (a->type != VHD_PORT_VXLAN)
		return 0;
	snprintf(sec, sizeof(sec), "port %s", a->name);
	u = vhd_config_port_slot(conf, a->vx.underlay);
	if (u < 0 || conf->ports[u].type != VHD_PORT_ETH ||
	    conf->ports[u].bridge != VHD_BRIDGE_NONE)
		return fail(p, key_line(p, sec, "underlay"), sec, "underlay",
			    "'%s' is not an ethdev port without a bridge",
			    a->vx.underlay);
	a->vx.underlay_slot = (uint16_t)u;
	if (!a->vx.mtu_given)
		a->mtu = conf->ports[u].mtu - VHD_VXLAN_OVERHEAD;
	if (a->mtu + VHD_VXLAN_OVERHEAD > conf->ports[u].mtu)
		return fail(p, key_line(p, sec, "mtu"), sec, "mtu",
			    "at most the underlay's mtu - %d (%u)",
			    VHD_VXLAN_OVERHEAD,
			    conf->ports[u].mtu - VHD_VXLAN_OVERHEAD);
	for (uint16_t j = 0; j < conf->n_ports; j++) {
		const struct vhd_port_conf *b = &conf->ports[j];

		if (j == i || b->name[0] == '\0' || b->type != VHD_PORT_VXLAN)
			continue;
		if (b->vx.underlay_slot == a->vx.underlay_slot &&
		    strcmp(b->vx.underlay, a->vx.underlay) == 0 &&
		    b->vx.vni == a->vx.vni && b->vx.udp_port == a->vx.udp_port)
			return fail(p, key_line(p, sec, "vni"), sec, "vni",
				    "vni %u on underlay %s already used by "
				    "port '%s'",
				    a->vx.vni, a->vx.underlay, b->name);
	}
	return 0;
}

static int parse_port(struct ctx *c, const char *name, struct vhd_config *conf,
		      struct vhd_port_conf *pc)
{
	/* The keys of every port, then those of each type. */
#define PORT_KEYS                                                       \
	"type", "bridge", "vlan-mode", "tag", "trunks", "allowed-macs", \
	    "mac-learn-limit", "mtu", "ingress-rate-kbps",              \
	    "ingress-burst-kbytes", "rxq-affinity", "offloads"
	static const char *const vhost_keys[] = {
	    PORT_KEYS,	   "path",	    "mode", "socket-group",
	    "socket-mode", "iommu-support", NULL};
	static const char *const eth_keys[] = {PORT_KEYS, "devargs", "queues",
					       "rx-desc", "tx-desc", NULL};
	/* A vxlan port: no queues of its own, no policing (its frames come
	 * through the underlay's), offloads always done before encapsulation.
	 */
	static const char *const vxlan_keys[] = {
	    "type",   "bridge",	      "vlan-mode",	 "tag",
	    "trunks", "allowed-macs", "mac-learn-limit", "mtu",
	    "vni",    "local-ip",     "underlay",	 "remote",
	    "evpn",   "udp-port",     "next-hop-mac",	 NULL};
#undef PORT_KEYS
	char type[CFG_VALUE_LEN], br[CFG_VALUE_LEN];
	uint32_t v;
	int i;

	snprintf(pc->name, sizeof(pc->name), "%s", name);
	pc->line = key_line(c->p, c->sec, NULL);
	if (get_str(c, "type", NULL, type, sizeof(type)))
		return -1;
	if (strcmp(type, "vhost-user") == 0)
		pc->type = VHD_PORT_VHOST;
	else if (strcmp(type, "ethdev") == 0)
		pc->type = VHD_PORT_ETH;
	else if (strcmp(type, "vxlan") == 0)
		pc->type = VHD_PORT_VXLAN;
	else
		return bad(c, "type",
			   "expected 'vhost-user' or 'ethdev' (or 'vxlan': "
			   "a tunnel)");
	if (check_keys(c->p, c->cfg, c->sec,
		       pc->type == VHD_PORT_VHOST ? vhost_keys
		       : pc->type == VHD_PORT_ETH ? eth_keys
						  : vxlan_keys))
		return -1;
	/* An ethdev without a bridge is a VXLAN underlay: its frames are
	 * VXLAN's to decapsulate (dp/vxlan.c), nothing else. */
	if (pc->type == VHD_PORT_ETH && get(c, "bridge") == NULL) {
		pc->bridge = VHD_BRIDGE_NONE;
	} else {
		if (get_str(c, "bridge", NULL, br, sizeof(br)))
			return -1;
		i = vhd_config_bridge_slot(conf, br);
		if (i < 0)
			return bad(c, "bridge",
				   c->p->file ? "no such [bridge] section"
					      : "no such bridge");
		pc->bridge = (uint16_t)i;
	}
	if (pc->bridge == VHD_BRIDGE_NONE) {
		static const char *const l2_keys[] = {"vlan-mode", "tag",
						      "trunks", "allowed-macs",
						      "mac-learn-limit"};

		for (size_t k = 0; k < RTE_DIM(l2_keys); k++)
			if (get(c, l2_keys[k]))
				return bad(c, l2_keys[k],
					   "not for a port without a bridge "
					   "(a vxlan underlay)");
	}
	if (pc->type == VHD_PORT_VXLAN)
		return parse_vxlan(c, conf, pc);
	if (parse_vlan(c, conf, pc) || parse_security(c, pc) ||
	    parse_police(c, pc) ||
	    get_u32(c, "mtu", VHD_MTU_MIN, VHD_MTU_MAX, VHD_MTU_DEFAULT,
		    &pc->mtu) ||
	    get_bool(c, "offloads", true, &pc->offloads))
		return -1;

	if (pc->type == VHD_PORT_VHOST) {
		char mode[CFG_VALUE_LEN];

		if (get_str(c, "path", NULL, pc->path, sizeof(pc->path)))
			return -1;
		if (pc->path[0] != '/')
			return bad(c, "path", "must be an absolute path");
		if (strlen(pc->path) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path))
			return bad(c, "path", "too long for a unix socket");
		get_str(c, "mode", "server", mode, sizeof(mode));
		if (strcmp(mode, "server") == 0)
			pc->client = false;
		else if (strcmp(mode, "client") == 0)
			pc->client = true;
		else
			return bad(c, "mode", "expected 'server' or 'client'");
		if (pc->client &&
		    (get(c, "socket-group") || get(c, "socket-mode")))
			return bad(c,
				   get(c, "socket-group") ? "socket-group"
							  : "socket-mode",
				   "only for mode = server (the other side "
				   "makes a client port's socket)");
		pc->queues = 1;
		return parse_affinity(c, conf, pc) ||
		       get_bool(c, "iommu-support", false,
				&pc->iommu_support) ||
		       get_group(c, "socket-group", conf->socket_group,
				 pc->socket_group) ||
		       get_mode(c, "socket-mode", conf->socket_mode,
				&pc->socket_mode);
	}
	if (get_str(c, "devargs", NULL, pc->devargs, sizeof(pc->devargs)))
		return -1;
	if (get_u32(c, "queues", 1, VHD_MAX_QUEUES, 1, &v))
		return -1;
	pc->queues = (uint16_t)v;
	if (get_u32(c, "rx-desc", 64, 8192, 1024, &v))
		return -1;
	pc->rx_desc = (uint16_t)v;
	if (get_u32(c, "tx-desc", 64, 8192, 1024, &v))
		return -1;
	pc->tx_desc = (uint16_t)v;
	return parse_affinity(c, conf, pc);
}

/* The value of DEVARGS' "iface=" option (net_tap, net_af_packet: the
 * kernel interface the vdev drives), or "". */
static void iface_of(const char *devargs, char *out, size_t len)
{
	const char *v = strstr(devargs, ",iface=");
	size_t n = v ? strcspn(v + 7, ",") : 0;

	snprintf(out, len, "%.*s", (int)n, v ? v + 7 : "");
}

/* Two devargs that name one device, or two vdevs on one kernel interface
 * (a second net_tap on a tap joins it as another queue, and closing either
 * takes the interface down). */
static bool same_device(const char *a, const char *b)
{
	char na[VHD_DEVARGS_MAX], nb[VHD_DEVARGS_MAX];

	vhd_config_dev_name(a, na, sizeof(na));
	vhd_config_dev_name(b, nb, sizeof(nb));
	if (strcmp(na, nb) == 0)
		return true;
	iface_of(a, na, sizeof(na));
	iface_of(b, nb, sizeof(nb));
	return na[0] && strcmp(na, nb) == 0;
}

/* Port I against the ports before it (a file: the first of two reports
 * the second) or every other port (run time): one socket path and one
 * device per port, at most two ports on an xconnect bridge. */
static int check_port(struct parse *p, const struct vhd_config *conf,
		      uint16_t i, bool all)
{
	const struct vhd_port_conf *a = &conf->ports[i];
	char sec[CFG_NAME_LEN];
	int n = 0;

	snprintf(sec, sizeof(sec), "port %s", a->name);
	if (a->type == VHD_PORT_VHOST && strcmp(a->path, conf->control) == 0)
		return fail(p, key_line(p, sec, "path"), sec, "path",
			    "that is the control socket's path");
	for (uint16_t j = 0; j < (all ? conf->n_ports : i); j++) {
		const struct vhd_port_conf *b = &conf->ports[j];

		if (j == i || b->name[0] == '\0')
			continue;
		if (a->type == VHD_PORT_VHOST && b->type == VHD_PORT_VHOST &&
		    strcmp(a->path, b->path) == 0)
			return fail(p, key_line(p, sec, "path"), sec, "path",
				    "socket path already used by port '%s'",
				    b->name);
		if (a->type == VHD_PORT_ETH && b->type == VHD_PORT_ETH &&
		    same_device(a->devargs, b->devargs))
			return fail(
			    p, key_line(p, sec, "devargs"), sec, "devargs",
			    "device already used by port '%s'", b->name);
		n += b->bridge == a->bridge && b->type != VHD_PORT_VXLAN;
	}
	if (a->bridge != VHD_BRIDGE_NONE &&
	    conf->bridges[a->bridge].mode == VHD_BR_XCONNECT && n >= 2)
		return fail(p, key_line(p, sec, "bridge"), sec, "bridge",
			    "xconnect bridge '%s' has two ports already",
			    conf->bridges[a->bridge].name);
	return 0;
}

static void defaults(struct vhd_config *conf, const char *file)
{
	memset(conf, 0, sizeof(*conf));
	snprintf(conf->file, sizeof(conf->file), "%s", file);
	conf->dp_cpus[0] = 1;
	conf->n_dp = 1;
	conf->main_cpu = 0;
	conf->socket_mem = 256;
	snprintf(conf->file_prefix, sizeof(conf->file_prefix), "vhostd");
	snprintf(conf->control, sizeof(conf->control), "%s",
		 VHD_CONTROL_DEFAULT);
	conf->socket_mode = VHD_SOCKET_MODE_DEFAULT;
	conf->auto_rebalance_interval = 60;
	conf->auto_rebalance_load = 95;
	conf->auto_rebalance_improvement = 25;
}

int vhd_config_load(const char *file, struct vhd_config *conf, char *err,
		    size_t errlen)
{
	struct parse *p = calloc(1, sizeof(*p));
	struct rte_cfgfile *cfg = NULL;
	char **names = NULL;
	int n = 0, rc = -1;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->file = file;
	p->err = err;
	p->errlen = errlen;
	defaults(conf, file);
	if (prescan(p))
		goto out;
	cfg = rte_cfgfile_load(file, 0);
	if (cfg == NULL) {
		snprintf(err, errlen, "%s: rte_cfgfile could not parse it",
			 file);
		goto out;
	}
	n = rte_cfgfile_num_sections(cfg, NULL, 0);
	names = calloc(n > 0 ? n : 1, sizeof(*names));
	if (names == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		names[i] = malloc(CFG_NAME_LEN);
		if (names[i] == NULL)
			goto out;
	}
	rte_cfgfile_sections(cfg, names, n);

	/* Bridges first, so that ports can refer to any of them. */
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < n; i++) {
			struct ctx c = {p, cfg, names[i]};
			const char *sp = strchr(names[i], ' ');
			const char *name = sp ? sp + 1 : "";
			size_t kl =
			    sp ? (size_t)(sp - names[i]) : strlen(names[i]);
			int line = key_line(p, names[i], NULL);

			if (strcmp(names[i], "vhostd") == 0) {
				if (pass == 0 && parse_global(&c, conf))
					goto out;
				continue;
			}
			if (kl == 6 && strncmp(names[i], "bridge", 6) == 0) {
				if (pass != 1)
					continue;
				if (!valid_name(name)) {
					fail(p, line, names[i], NULL,
					     "expected [bridge NAME], NAME of "
					     "letters, digits, '_', '.', '-'");
					goto out;
				}
				if (conf->n_bridges == VHD_MAX_BRIDGES) {
					fail(p, line, names[i], NULL,
					     "more than %d bridges",
					     VHD_MAX_BRIDGES);
					goto out;
				}
				if (parse_bridge(
					&c, name,
					&conf->bridges[conf->n_bridges]))
					goto out;
				conf->n_bridges++;
				continue;
			}
			if (kl == 4 && strncmp(names[i], "port", 4) == 0) {
				if (pass != 2)
					continue;
				if (!valid_name(name)) {
					fail(p, line, names[i], NULL,
					     "expected [port NAME], NAME of "
					     "letters, digits, '_', '.', '-'");
					goto out;
				}
				if (conf->n_ports == VHD_MAX_PORTS) {
					fail(p, line, names[i], NULL,
					     "more than %d ports",
					     VHD_MAX_PORTS);
					goto out;
				}
				if (parse_port(&c, name, conf,
					       &conf->ports[conf->n_ports]))
					goto out;
				conf->n_ports++;
				continue;
			}
			if (pass == 0) {
				fail(p, line, names[i], NULL,
				     "unknown section (expected [vhostd], "
				     "[bridge NAME] or [port NAME])");
				goto out;
			}
		}
	}
	/* Section names are unique (prescan), so port and bridge names are. */
	rc = 0;
	for (uint16_t i = 0; i < conf->n_ports && rc == 0; i++)
		rc = check_port(p, conf, i, false) ?: resolve_vxlan(p, conf, i);
out:
	if (names)
		for (int i = 0; i < n; i++)
			free(names[i]);
	free(names);
	if (cfg)
		rte_cfgfile_close(cfg);
	free(p);
	return rc;
}

int vhd_config_bridge_slot(const struct vhd_config *conf, const char *name)
{
	for (uint16_t i = 0; i < conf->n_bridges; i++)
		if (conf->bridges[i].name[0] &&
		    strcmp(conf->bridges[i].name, name) == 0)
			return i;
	return -1;
}

int vhd_config_port_slot(const struct vhd_config *conf, const char *name)
{
	for (uint16_t i = 0; i < conf->n_ports; i++)
		if (conf->ports[i].name[0] &&
		    strcmp(conf->ports[i].name, name) == 0)
			return i;
	return -1;
}

/* A section SEC holding ARGV's "key=value" pairs, checked as prescan()
 * checks a file's lines. */
static struct rte_cfgfile *args_section(struct parse *p, const char *sec,
					int argc, const char *const *argv)
{
	struct rte_cfgfile *cfg = rte_cfgfile_create(0);

	if (cfg == NULL || rte_cfgfile_add_section(cfg, sec) < 0) {
		fail(p, 0, sec, NULL, "out of memory");
		goto fail;
	}
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char key[CFG_NAME_LEN];
		size_t kl = eq ? (size_t)(eq - argv[i]) : 0;

		if (eq == NULL || kl == 0) {
			fail(p, 0, sec, NULL, "expected key=value, not '%s'",
			     argv[i]);
			goto fail;
		}
		if (kl >= CFG_NAME_LEN) {
			fail(p, 0, sec, NULL, "key too long in '%s'", argv[i]);
			goto fail;
		}
		memcpy(key, argv[i], kl);
		key[kl] = '\0';
		if (eq[1] == '\0') {
			fail(p, 0, sec, key, "empty value");
			goto fail;
		}
		/* What a file could not hold cannot be saved to one. */
		for (const char *c = eq + 1; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == ';' ||
			    (isspace((unsigned char)*c) &&
			     (c == eq + 1 || c[1] == '\0'))) {
				fail(p, 0, sec, key,
				     "control character, ';' or surrounding "
				     "space in '%s'",
				     eq + 1);
				goto fail;
			}
		if (strlen(eq + 1) >= CFG_VALUE_LEN) {
			fail(p, 0, sec, key, "value longer than %d characters",
			     CFG_VALUE_LEN - 1);
			goto fail;
		}
		if (rte_cfgfile_has_entry(cfg, sec, key)) {
			fail(p, 0, sec, key, "key given twice");
			goto fail;
		}
		if (rte_cfgfile_add_entry(cfg, sec, key, eq + 1) < 0) {
			fail(p, 0, sec, key, "out of memory");
			goto fail;
		}
	}
	return cfg;
fail:
	if (cfg)
		rte_cfgfile_close(cfg);
	return NULL;
}

/* A free slot of N_USED (at most MAX): the first emptied one, else the
 * next; -1 if none. */
static int free_slot(const char *names, size_t stride, uint16_t *n_used,
		     uint16_t max)
{
	for (uint16_t i = 0; i < *n_used; i++)
		if (names[i * stride] == '\0')
			return i;
	if (*n_used == max)
		return -1;
	return (*n_used)++;
}

/* The first half of a run-time add of a KIND ("bridge", "port") called
 * NAME: its name, a free slot among NAMES (STRIDE bytes apart, *N_USED of
 * MAX used) and its arguments as the section SEC. The slot, with *CFG set,
 * or -1 after fail(). */
static int add_begin(struct parse *p, const char *kind, const char *name,
		     bool exists, const char *names, size_t stride,
		     uint16_t *n_used, uint16_t max, int argc,
		     const char *const *argv, char *sec,
		     struct rte_cfgfile **cfg)
{
	int slot;

	snprintf(sec, CFG_NAME_LEN, "%s %s", kind, name);
	if (!valid_name(name))
		return fail(p, 0, NULL, NULL,
			    "%s name '%s': use up to %d letters, digits, '_', "
			    "'.' or '-'",
			    kind, name, VHD_NAME_MAX - 1);
	if (exists)
		return fail(p, 0, sec, NULL, "a %s of that name exists", kind);
	slot = free_slot(names, stride, n_used, max);
	if (slot < 0)
		return fail(p, 0, sec, NULL, "more than %d %ss", max, kind);
	*cfg = args_section(p, sec, argc, argv);
	return *cfg ? slot : -1;
}

int vhd_config_add_bridge(struct vhd_config *conf, const char *name, int argc,
			  const char *const *argv, char *err, size_t errlen)
{
	struct parse p = {.err = err, .errlen = errlen};
	char sec[CFG_NAME_LEN];
	struct rte_cfgfile *cfg;
	uint16_t n = conf->n_bridges;
	struct ctx c = {&p, NULL, sec};
	int slot, rc;

	slot = add_begin(&p, "bridge", name,
			 vhd_config_bridge_slot(conf, name) >= 0,
			 conf->bridges[0].name, sizeof(conf->bridges[0]), &n,
			 VHD_MAX_BRIDGES, argc, argv, sec, &cfg);
	if (slot < 0)
		return -1;
	c.cfg = cfg;
	rc = parse_bridge(&c, name, &conf->bridges[slot]);
	rte_cfgfile_close(cfg);
	if (rc) {
		memset(&conf->bridges[slot], 0, sizeof(conf->bridges[slot]));
		return -1;
	}
	conf->n_bridges = n;
	return slot;
}

int vhd_config_add_port(struct vhd_config *conf, const char *name, int argc,
			const char *const *argv, char *err, size_t errlen)
{
	struct parse p = {.err = err, .errlen = errlen};
	char sec[CFG_NAME_LEN];
	struct rte_cfgfile *cfg;
	uint16_t n = conf->n_ports, was = conf->n_ports;
	struct ctx c = {&p, NULL, sec};
	int slot, rc;

	slot =
	    add_begin(&p, "port", name, vhd_config_port_slot(conf, name) >= 0,
		      conf->ports[0].name, sizeof(conf->ports[0]), &n,
		      VHD_MAX_PORTS, argc, argv, sec, &cfg);
	if (slot < 0)
		return -1;
	c.cfg = cfg;
	rc = parse_port(&c, name, conf, &conf->ports[slot]);
	rte_cfgfile_close(cfg);
	/* check_port compares with the slots below n_ports. */
	conf->n_ports = n;
	if (rc == 0)
		rc = check_port(&p, conf, (uint16_t)slot, true)
			 ?: resolve_vxlan(&p, conf, (uint16_t)slot);
	if (rc) {
		memset(&conf->ports[slot], 0, sizeof(conf->ports[slot]));
		conf->n_ports = was;
		return -1;
	}
	return slot;
}

int vhd_config_add_vtep(struct vhd_config *conf, uint16_t parent, uint32_t ip,
			bool no_flood)
{
	struct vhd_port_conf *pc;
	char a[INET_ADDRSTRLEN], name[VHD_NAME_MAX];
	int slot = free_slot(conf->ports[0].name, sizeof(conf->ports[0]),
			     &conf->n_ports, VHD_MAX_PORTS);

	if (slot < 0)
		return -1;
	pc = &conf->ports[slot];
	*pc = conf->ports[parent];
	inet_ntop(AF_INET, &ip, a, sizeof(a));
	/* Fits: a vxlan port's name is short enough (parse_vxlan). */
	snprintf(name, sizeof(name), "%s/%s", conf->ports[parent].name, a);
	memcpy(pc->name, name, sizeof(pc->name));
	pc->type = VHD_PORT_VTEP;
	pc->vx.parent = parent;
	pc->vx.vtep_ip = ip;
	pc->vx.no_flood = no_flood;
	return slot;
}

void vhd_config_del_bridge(struct vhd_config *conf, uint16_t i)
{
	memset(&conf->bridges[i], 0, sizeof(conf->bridges[i]));
}

void vhd_config_del_port(struct vhd_config *conf, uint16_t i)
{
	memset(&conf->ports[i], 0, sizeof(conf->ports[i]));
}

/* Append to a growing malloc'ed string; false when out of memory. */
struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void put(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL,
			      t->s ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if (t->s && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		char *ns = realloc(t->s, t->cap * 2 + (size_t)n + 1024);

		if (ns == NULL) {
			t->oom = true;
			return;
		}
		t->s = ns;
		t->cap = t->cap * 2 + (size_t)n + 1024;
	}
}

void vhd_vlan_trunks_format(const struct vhd_vlan *v, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (uint32_t lo = 0; lo < VHD_VLAN_MAX && n < len; lo++) {
		uint32_t hi = lo;

		if (!(v->trunks[lo / 64] >> (lo % 64) & 1))
			continue;
		while (hi + 1 < VHD_VLAN_MAX &&
		       (v->trunks[(hi + 1) / 64] >> ((hi + 1) % 64) & 1))
			hi++;
		n += (size_t)snprintf(buf + n, len - n,
				      hi > lo ? "%s%u-%u" : "%s%u",
				      n ? "," : "", lo, hi);
		lo = hi;
	}
}

static void put_vlan(struct text *t, const struct vhd_vlan *v)
{
	char trunks[VHD_TRUNKS_TEXT_MAX];

	if (vhd_vlan_is_default(v))
		return;
	put(t, "vlan-mode = %s\n", vhd_vlan_mode_name(v->mode));
	if (v->mode != VHD_VLAN_TRUNK)
		put(t, "tag = %u\n", v->tag);
	if (v->all)
		return;
	vhd_vlan_trunks_format(v, trunks, sizeof(trunks));
	put(t, "trunks = %s\n", trunks);
}

char *vhd_config_format(const struct vhd_config *c)
{
	struct text t = {0};

	put(&t, "; vhostd configuration, written by vhostd (config save)\n");
	put(&t, "[vhostd]\nlcores = ");
	for (uint16_t i = 0; i < c->n_dp; i++)
		put(&t, "%s%u", i ? "," : "", c->dp_cpus[i]);
	put(&t, "\nmain-lcore = %u\nsocket-mem = %u\n", c->main_cpu,
	    c->socket_mem);
	if (c->mbufs)
		put(&t, "mbufs = %u\n", c->mbufs);
	put(&t, "file-prefix = %s\n", c->file_prefix);
	if (c->huge_dir[0])
		put(&t, "huge-dir = %s\n", c->huge_dir);
	if (c->log_level[0])
		put(&t, "log-level = %s\n", c->log_level);
	put(&t, "control = %s\n", c->control);
	if (c->control_group[0])
		put(&t, "control-group = %s\n", c->control_group);
	if (c->socket_group[0])
		put(&t, "socket-group = %s\n", c->socket_group);
	put(&t, "socket-mode = %04o\n", c->socket_mode);
	if (c->auto_rebalance)
		put(&t,
		    "auto-rebalance = yes\nauto-rebalance-interval = %u\n"
		    "auto-rebalance-load = %u\n"
		    "auto-rebalance-improvement = %u\n",
		    c->auto_rebalance_interval, c->auto_rebalance_load,
		    c->auto_rebalance_improvement);
	for (uint16_t b = 0; b < c->n_bridges; b++) {
		const struct vhd_bridge_conf *bc = &c->bridges[b];

		if (bc->name[0] == '\0')
			continue;
		put(&t,
		    "\n[bridge %s]\nmode = %s\nmac-aging = %u\n"
		    "mac-table-size = %u\n",
		    bc->name,
		    bc->mode == VHD_BR_LEARNING ? "learning" : "xconnect",
		    bc->mac_aging, bc->mac_table_size);
	}
	for (uint16_t i = 0; i < c->n_ports; i++) {
		const struct vhd_port_conf *pc = &c->ports[i];

		if (pc->name[0] == '\0' || pc->type == VHD_PORT_VTEP)
			continue;
		put(&t, "\n[port %s]\n", pc->name);
		if (pc->bridge != VHD_BRIDGE_NONE)
			put(&t, "bridge = %s\n", c->bridges[pc->bridge].name);
		if (pc->type == VHD_PORT_VXLAN) {
			const struct vhd_vxlan_conf *vx = &pc->vx;
			char ip[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &vx->local_ip, ip, sizeof(ip));
			put(&t,
			    "type = vxlan\nvni = %u\nlocal-ip = %s\n"
			    "underlay = %s\nudp-port = %u\n",
			    vx->vni, ip, vx->underlay, vx->udp_port);
			for (uint16_t k = 0; k < vx->n_remotes; k++) {
				inet_ntop(AF_INET, &vx->remote[k], ip,
					  sizeof(ip));
				put(&t, "%s%s%s", k ? "," : "remote = ", ip,
				    k + 1 == vx->n_remotes ? "\n" : "");
			}
			if (vx->evpn[0])
				put(&t, "evpn = %s\n", vx->evpn);
			if (vx->has_nh)
				put(&t,
				    "next-hop-mac = "
				    "%02x:%02x:%02x:%02x:%02x:%02x\n",
				    vx->nh_mac[0], vx->nh_mac[1], vx->nh_mac[2],
				    vx->nh_mac[3], vx->nh_mac[4],
				    vx->nh_mac[5]);
		} else if (pc->type == VHD_PORT_VHOST) {
			put(&t, "type = vhost-user\npath = %s\nmode = %s\n",
			    pc->path, pc->client ? "client" : "server");
			/* What differs from [vhostd]'s defaults. */
			if (!pc->client &&
			    strcmp(pc->socket_group, c->socket_group) != 0)
				put(&t, "socket-group = %s\n",
				    pc->socket_group);
			if (!pc->client && pc->socket_mode != c->socket_mode)
				put(&t, "socket-mode = %04o\n",
				    pc->socket_mode);
			if (pc->iommu_support)
				put(&t, "iommu-support = yes\n");
		} else
			put(&t,
			    "type = ethdev\ndevargs = %s\nqueues = %u\n"
			    "rx-desc = %u\ntx-desc = %u\n",
			    pc->devargs, pc->queues, pc->rx_desc, pc->tx_desc);
		if (!pc->offloads && pc->type != VHD_PORT_VXLAN)
			put(&t, "offloads = no\n");
		put_vlan(&t, &pc->vlan);
		for (uint16_t k = 0; k < pc->sec.n_allowed; k++) {
			uint8_t m[8];

			memcpy(m, &pc->sec.allowed[k], sizeof(m));
			put(&t, "%s%02x:%02x:%02x:%02x:%02x:%02x%s",
			    k ? "," : "allowed-macs = ", m[0], m[1], m[2], m[3],
			    m[4], m[5], k + 1 == pc->sec.n_allowed ? "\n" : "");
		}
		if (pc->sec.learn_limit)
			put(&t, "mac-learn-limit = %u\n", pc->sec.learn_limit);
		if (pc->type == VHD_PORT_VXLAN ? pc->vx.mtu_given
					       : pc->mtu != VHD_MTU_DEFAULT)
			put(&t, "mtu = %u\n", pc->mtu);
		if (pc->ingress_rate_kbps)
			put(&t, "ingress-rate-kbps = %u\n",
			    pc->ingress_rate_kbps);
		if (pc->ingress_burst_kbytes)
			put(&t, "ingress-burst-kbytes = %u\n",
			    pc->ingress_burst_kbytes);
		for (uint16_t k = 0; k < pc->n_affinity; k++)
			put(&t, "%s%u:%u%s",
			    k ? "," : "rxq-affinity = ", pc->affinity[k].q,
			    pc->affinity[k].cpu,
			    k + 1 == pc->n_affinity ? "\n" : "");
	}
	if (t.oom) {
		free(t.s);
		return NULL;
	}
	return t.s;
}
