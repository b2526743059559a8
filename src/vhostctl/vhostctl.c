/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostctl.c: the command-line client of vhostd's control socket.
 *
 * Main design choice: the client knows the wire format and how to print,
 * not the commands. Words become a method ("port add" -> "port/add") by
 * one small list of two-word commands; everything else goes to the server
 * as is, so a command added to vhostd works here at once (printed
 * generically) and an unknown one is refused by the server, which is the
 * one place that knows. Only the output is tailored per command: tables
 * for lists, "key: value" for one object. `top` is a loop over `stats`.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "metrics.h"

#ifndef VHD_VERSION
#define VHD_VERSION "unknown"
#endif

#define DEFAULT_SOCKET "/run/vhostd/vhostd.ctl"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static const char usage_text[] =
    "Usage: vhostctl [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "Control a running vhostd through its control socket.\n"
    "\n"
    "Options:\n"
    "  -s, --socket PATH  the control socket (default: $VHOSTCTL_SOCKET,\n"
    "                     else " DEFAULT_SOCKET ")\n"
    "  -j, --json         print the result as JSON, as the server sent it\n"
    "  -t, --timeout S    wait at most S seconds for the reply (default 30;\n"
    "                     0: forever; capture always waits)\n"
    "  -n, --count N      top: stop after N refreshes\n"
    "  -h, --help         this text\n"
    "  -V, --version      the version\n"
    "\n"
    "Commands:\n"
    "  list-commands                       the commands vhostd knows\n"
    "  bridge add NAME [mode=learning|xconnect] [mac-aging=S]\n"
    "             [mac-table-size=N]       add a bridge\n"
    "  bridge del NAME                     delete a bridge without ports\n"
    "  bridge list                         every bridge\n"
    "  bridge show NAME                    a bridge's settings and "
    "counters\n"
    "  port add NAME bridge=B type=vhost-user path=P "
    "[mode=server|client]\n"
    "           [socket-group=G] [socket-mode=0660] [iommu-support=yes]\n"
    "  port add NAME bridge=B type=ethdev devargs=D [queues=N]\n"
    "           [rx-desc=N] [tx-desc=N]    add a port\n"
    "           either with [vlan-mode=M] [tag=N] [trunks=L]\n"
    "           [allowed-macs=MAC,MAC] [mac-learn-limit=N] [mtu=N]\n"
    "           [ingress-rate-kbps=N] [ingress-burst-kbytes=N]\n"
    "           [rxq-affinity=Q:CPU,...] [offloads=no]\n"
    "  port del NAME                       delete a port\n"
    "  port list                           every port\n"
    "  port show NAME                      a port's state and counters\n"
    "  fdb show [BRIDGE]                   MAC table entries\n"
    "  fdb add BRIDGE MAC PORT [vlan=N]    add a static entry\n"
    "  fdb del BRIDGE MAC [vlan=N]         remove an entry\n"
    "  fdb flush [BRIDGE]                  remove the learned entries\n"
    "  stats [PORT]                        port counters\n"
    "  stats clear [PORT]                  start the counters from zero\n"
    "  lcores                              datapath lcores, their load and\n"
    "                                      each rx queue's share of it\n"
    "  rxq rebalance                       place the rx queues again by\n"
    "                                      their measured load\n"
    "  capture PORT FILE [count=N] [duration=S] [dir=rx|tx|both]\n"
    "                                      write frames to a pcapng file\n"
    "                                      until done or Ctrl-C\n"
    "  config show                         the running configuration\n"
    "  config save [FILE]                  write it to FILE\n"
    "  log list [PATTERN]                  logtypes and their levels\n"
    "  log set [PATTERN] LEVEL             set them (default vhostd.*)\n"
    "  top [PORT] [count=N]                rates per port, every second,\n"
    "                                      until Ctrl-C\n"
    "  info                                version, uptime, mbufs in use\n"
    "  metrics [--listen ADDR:PORT]        counters in Prometheus' text\n"
    "                                      format; --listen serves them at\n"
    "                                      http://ADDR:PORT/metrics\n"
    "  help                                this text\n"
    "\n"
    "Words name the command: \"port add\" is the method \"port/add\". "
    "Any other\n"
    "command is sent as is, so `vhostctl list-commands` shows what this "
    "vhostd\n"
    "offers.\n"
    "\n"
    "Exit status: 0 success; 1 the command failed (the reason is on "
    "stderr);\n"
    "2 usage error (also an unknown command or wrong arguments); 3 vhostd "
    "cannot\n"
    "be reached.\n";

/* Methods named by two words; any other command is its first word. */
/* clang-format off */
static const char *const two_words[] = {
    "bridge/add", "bridge/del", "bridge/list", "bridge/show",
    "port/add", "port/del", "port/list", "port/show",
    "fdb/show", "fdb/add", "fdb/del", "fdb/flush",
    "stats/clear", "config/show", "config/save", "rxq/rebalance",
    "log/list", "log/set",
};
/* clang-format on */

/* Exit with a usage error if GROUP is the first word of two-word commands
 * (SUB, if given, not being one of its second words). */
static void subcommand_hint(const char *group, const char *sub)
{
	char subs[256] = "";
	size_t glen = strlen(group);

	for (size_t i = 0; i < sizeof(two_words) / sizeof(*two_words); i++)
		if (strncmp(two_words[i], group, glen) == 0 &&
		    two_words[i][glen] == '/')
			snprintf(subs + strlen(subs),
				 sizeof(subs) - strlen(subs), "%s%s",
				 subs[0] ? ", " : "", two_words[i] + glen + 1);
	if (subs[0] == '\0')
		return;
	if (sub)
		fprintf(stderr, "vhostctl: unknown command '%s %s'", group,
			sub);
	else
		fprintf(stderr, "vhostctl: '%s' needs a subcommand", group);
	fprintf(stderr, ": %s %s\n", group, subs);
	exit(EXIT_USAGE);
}

static const char *sock_path;
static volatile sig_atomic_t interrupted;

static void die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("vhostctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Milliseconds left before DEADLINE, for poll(): -1 is no deadline. */
static int time_left(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	return left < 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

struct conn {
	int fd;
	char *buf; /* received, not yet a whole line */
	size_t len, cap;
	json_int_t next_id;
};

static void conn_open(struct conn *c, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;

	if (strlen(sock_path) >= sizeof(sa.sun_path))
		die(EXIT_CONNECT,
		    "cannot connect to %s: %s (at most %zu bytes)", sock_path,
		    strerror(ENAMETOOLONG), sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, sock_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die(EXIT_CONNECT, "socket: %s", strerror(errno));
	/* A unix socket connects at once, or says EAGAIN while vhostd's
	 * backlog is full: try again until the deadline. */
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			die(EXIT_CONNECT, "cannot connect to %s: %s%s",
			    sock_path, strerror(errno),
			    errno == ENOENT || errno == ECONNREFUSED
				? " (is vhostd running?)"
				: "");
		if (interrupted || time_left(deadline) == 0)
			die(EXIT_CONNECT, "cannot connect to %s: %s", sock_path,
			    strerror(EAGAIN));
		poll(NULL, 0, 10);
	}
}

static void conn_send(struct conn *c, const char *s, long long deadline)
{
	size_t len = strlen(s);

	while (len) {
		struct pollfd p = {.fd = c->fd, .events = POLLOUT};
		ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);

		if (n > 0) {
			s += n;
			len -= (size_t)n;
		} else if (errno == EAGAIN) {
			if (poll(&p, 1, time_left(deadline)) == 0)
				die(EXIT_FAIL, "%s: timed out sending",
				    sock_path);
		} else if (errno != EINTR) {
			die(EXIT_FAIL, "%s: %s", sock_path, strerror(errno));
		}
	}
}

/* One request, one reply: the reply object, or NULL on SIGINT. */
static json_t *rpc(struct conn *c, const char *method, json_t *params,
		   int timeout_ms)
{
	long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
	json_t *req =
	    json_pack("{s:s, s:I, s:s, s:O}", "jsonrpc", "2.0", "id",
		      ++c->next_id, "method", method, "params", params);
	char *text = json_dumps(req, JSON_COMPACT), *nl;
	json_error_t jerr;
	json_t *reply;

	json_decref(req);
	if (!text)
		die(EXIT_FAIL, "out of memory");
	/* The reply is one line: the server never puts a newline in it. */
	text = realloc(text, strlen(text) + 2);
	strcat(text, "\n");
	conn_send(c, text, deadline);
	free(text);
	while (!(nl = c->len ? memchr(c->buf, '\n', c->len) : NULL)) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;
		int rc;

		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 131072;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				die(EXIT_FAIL, "out of memory");
		}
		rc = poll(&p, 1, time_left(deadline));
		if (rc < 0 && errno == EINTR && interrupted)
			return NULL;
		if (rc == 0)
			die(EXIT_FAIL, "%s: no reply within %g s", sock_path,
			    timeout_ms / 1000.0);
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0)
			c->len += (size_t)n;
		else if (n == 0)
			die(EXIT_FAIL, "%s: vhostd closed the connection",
			    sock_path);
		else if (errno != EAGAIN && errno != EINTR)
			die(EXIT_FAIL, "%s: %s", sock_path, strerror(errno));
	}
	reply = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &jerr);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	if (!json_is_object(reply))
		die(EXIT_FAIL, "bad reply from vhostd: %s",
		    reply ? "not an object" : jerr.text);
	return reply;
}

/* The result of REPLY (borrowed), or exit with its error. */
static json_t *result_of(json_t *reply)
{
	json_t *err = json_object_get(reply, "error");
	const char *msg;
	json_int_t code;

	if (!err)
		return json_object_get(reply, "result");
	msg = json_string_value(json_object_get(err, "message"));
	code = json_integer_value(json_object_get(err, "code"));
	fprintf(stderr, "vhostctl: %s%s\n", msg ? msg : "error without message",
		code == -32601 ? " (vhostctl list-commands lists them)" : "");
	exit(code == -32601 || code == -32602 ? EXIT_USAGE : EXIT_FAIL);
}

/* Output. */

/* V as one table cell or one "key: value" value: lists joined by SEP
 * (an object in a list, e.g. an rx queue, is its values joined by ':'). */
static char *cell(const json_t *v, const char *sep)
{
	char *s = NULL;
	size_t i;
	json_t *e;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		return asprintf(&s, "%" JSON_INTEGER_FORMAT,
				json_integer_value(v)) < 0
			   ? NULL
			   : s;
	case JSON_REAL:
		return asprintf(&s, "%.1f", json_real_value(v)) < 0 ? NULL : s;
	case JSON_TRUE:
		return strdup("yes");
	case JSON_FALSE:
		return strdup("no");
	case JSON_ARRAY:
	case JSON_OBJECT: {
		size_t len = 0;
		const char *k;

		s = strdup("");
		/* Arrays and objects alike: their values, in order. */
		if (json_is_array(v)) {
			json_array_foreach(v, i, e)
			{
				char *c = cell(e, ":"), *t;

				if (asprintf(&t, "%s%s%s", s, len ? sep : "",
					     c ? c : "") >= 0) {
					free(s);
					s = t;
					len++;
				}
				free(c);
			}
		} else {
			json_object_foreach((json_t *)v, k, e)
			{
				char *c = cell(e, sep), *t;

				if (asprintf(&t, "%s%s%s", s, len ? sep : "",
					     c ? c : "") >= 0) {
					free(s);
					s = t;
					len++;
				}
				free(c);
			}
		}
		return s;
	}
	default:
		return strdup("-");
	}
}

static void upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

/* ROWS (objects) as aligned columns, each line INDENT spaces in: first the
 * KEYS given, then any other key of the first row. Numbers are
 * right-aligned. */
static void print_table_at(const json_t *rows, const char *const *keys,
			   int indent)
{
	const char *cols[64];
	size_t ncols = 0, nrows = json_array_size(rows);
	const json_t *first = json_array_get(rows, 0);
	const char *k;
	json_t *v;

	for (; keys && *keys && ncols < 64; keys++)
		cols[ncols++] = *keys;
	json_object_foreach((json_t *)first, k, v)
	{
		size_t j;

		for (j = 0; j < ncols && strcmp(cols[j], k); j++)
			;
		if (j == ncols && ncols < 64)
			cols[ncols++] = k;
	}
	if (!ncols)
		return;

	char **text = calloc((nrows + 1) * ncols, sizeof(*text));
	size_t width[64] = {0};
	bool right[64];

	for (size_t j = 0; j < ncols; j++) {
		text[j] = strdup(cols[j]);
		upper(text[j]);
		width[j] = strlen(text[j]);
		right[j] = nrows > 0;
		for (size_t i = 0; i < nrows; i++) {
			v = json_object_get(json_array_get(rows, i), cols[j]);
			text[(i + 1) * ncols + j] = v ? cell(v, ",") : NULL;
			if (v && !json_is_number(v) && !json_is_null(v))
				right[j] = false;
		}
	}
	for (size_t i = 1; i <= nrows; i++)
		for (size_t j = 0; j < ncols; j++) {
			const char *t = text[i * ncols + j];
			size_t n = t ? strlen(t) : 1;

			if (n > width[j])
				width[j] = n;
		}
	for (size_t i = 0; i <= nrows; i++) {
		printf("%*s", indent, "");
		for (size_t j = 0; j < ncols; j++) {
			const char *t = text[i * ncols + j];
			int w = (int)width[j];
			bool last = j + 1 == ncols;

			if (!t)
				t = "-";
			if (right[j])
				printf("%*s%s", w, t, last ? "" : "  ");
			else if (last)
				printf("%s", t);
			else
				printf("%-*s  ", w, t);
		}
		printf("\n");
	}
	for (size_t i = 0; i < (nrows + 1) * ncols; i++)
		free(text[i]);
	free(text);
}

static void print_table(const json_t *rows, const char *const *keys)
{
	print_table_at(rows, keys, 0);
}

/* OBJ as "key: value" lines; an object inside is an indented block. A
 * vxlan port's remotes are an indented table, one line per remote: on one
 * line their counters would be a row of numbers without names. */
static void print_kv(const json_t *obj, int indent)
{
	static const char *const remote_keys[] = {
	    "ip",	  "mac",      "flood",	       "rx_packets", "rx_bytes",
	    "tx_packets", "tx_bytes", "drop_no_neigh", NULL};
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v)
	{
		if (strcmp(k, "remotes") == 0 && json_is_array(v) &&
		    json_is_object(json_array_get(v, 0))) {
			printf("%*s%s:\n", indent, "", k);
			print_table_at(v, remote_keys, indent + 2);
		} else if (json_is_object(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_kv(v, indent + 2);
		} else {
			char *c = cell(v, " ");

			printf("%*s%s: %s\n", indent, "", k, c ? c : "");
			free(c);
		}
	}
}

static void print_generic(const json_t *r)
{
	size_t i;
	json_t *e;

	if (json_is_object(r)) {
		print_kv(r, 0);
	} else if (json_is_array(r) && json_is_object(json_array_get(r, 0))) {
		print_table(r, NULL);
	} else if (json_is_array(r)) {
		json_array_foreach(r, i, e)
		{
			char *c = cell(e, " ");

			printf("%s\n", c ? c : "");
			free(c);
		}
	} else if (r && !json_is_null(r)) {
		char *c = cell(r, " ");

		printf("%s\n", c ? c : "");
		free(c);
	}
}

static void print_human(const char *method, const json_t *r)
{
	static const struct {
		const char *method;
		const char *keys[16];
	} tables[] = {
	    {"port/list",
	     {"name", "bridge", "type", "state", "rx_packets", "tx_packets",
	      "drops"}},
	    {"bridge/list", {"name", "mode", "ports", "fdb_entries"}},
	    {"fdb/show", {"bridge", "vlan", "mac", "port", "age", "static"}},
	    {"stats",
	     {"port", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
	      "drop_no_dest", "drop_invalid", "drop_not_ready", "drop_tx_full",
	      "drop_vlan", "drop_no_mbuf", "drop_spoof", "drop_mtu",
	      "drop_policed"}},
	};
	size_t i;
	json_t *e;

	if (strcmp(method, "list-commands") == 0 && json_is_array(r)) {
		json_array_foreach(r, i, e)
		{
			const char *n, *u;
			char *w;

			n = json_string_value(json_object_get(e, "name"));
			u = json_string_value(json_object_get(e, "usage"));
			w = strdup(n ? n : "?");
			for (char *p = w; *p; p++)
				if (*p == '/')
					*p = ' ';
			printf("%s%s%s\n", w, u && *u ? " " : "", u ? u : "");
			free(w);
		}
		return;
	}
	/* A remote VTEP's column only where some MAC is behind one; an
	 * entry from BGP EVPN says so in STATIC (neither learned nor
	 * static). */
	if (strcmp(method, "fdb/show") == 0 && json_is_array(r)) {
		static const char *const vx_keys[] = {"bridge", "vlan", "mac",
						      "port",	"vtep", "age",
						      "static", NULL};
		json_t *rows = json_deep_copy(r);
		bool vtep = false;

		json_array_foreach(rows, i, e)
		{
			vtep |= json_object_get(e, "vtep") != NULL;
			if (json_is_true(json_object_get(e, "evpn")))
				json_object_set_new(e, "static",
						    json_string("evpn"));
			json_object_del(e, "evpn");
		}
		if (rows)
			print_table(rows, vtep ? vx_keys : tables[2].keys);
		json_decref(rows);
		return;
	}
	if (strcmp(method, "lcores") == 0 && json_is_array(r)) {
		/* One row per queue, as OVS's pmd-rxq-show lists them. */
		static const char *const keys[] = {
		    "lcore", "cpu",   "numa",	   "busy_pct", "lcore_pps",
		    "port",  "queue", "share_pct", "pps",      NULL};
		json_t *rows = json_array(), *q;
		size_t j;

		json_array_foreach(r, i, e)
		{
			json_t *qs = json_object_get(e, "rxqs");
			json_t *base =
			    json_pack("{s:O,s:O,s:O,s:O,s:O}", "lcore",
				      json_object_get(e, "lcore"), "cpu",
				      json_object_get(e, "cpu"), "numa",
				      json_object_get(e, "numa"), "busy_pct",
				      json_object_get(e, "busy_pct"),
				      "lcore_pps", json_object_get(e, "pps"));

			if (base == NULL)
				continue;
			if (json_array_size(qs) == 0) {
				json_object_set_new(base, "port",
						    json_string("-"));
				json_array_append_new(rows, base);
				continue;
			}
			json_array_foreach(qs, j, q)
			{
				json_t *row = json_deep_copy(base);

				json_object_update(row, q);
				json_array_append_new(rows, row);
			}
			json_decref(base);
		}
		if (json_array_size(rows))
			print_table(rows, keys);
		json_decref(rows);
		return;
	}
	if (strcmp(method, "config/show") == 0 && json_is_object(r)) {
		const char *t = json_string_value(json_object_get(r, "config"));
		size_t n = t ? strlen(t) : 0;

		fputs(t ? t : "", stdout);
		if (n && t[n - 1] != '\n')
			putchar('\n');
		return;
	}
	if (strcmp(method, "capture") == 0 && json_is_object(r)) {
		printf("captured %" JSON_INTEGER_FORMAT
		       " packets to %s (%" JSON_INTEGER_FORMAT " dropped)\n",
		       json_integer_value(json_object_get(r, "packets")),
		       json_string_value(json_object_get(r, "file"))
			   ? json_string_value(json_object_get(r, "file"))
			   : "?",
		       json_integer_value(json_object_get(r, "dropped")));
		return;
	}
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (strcmp(method, tables[i].method) == 0 && json_is_array(r)) {
			if (json_array_size(r))
				print_table(r, tables[i].keys);
			return;
		}
	print_generic(r);
}

/* top: the rates between two samples of "stats". */

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static json_int_t counter(const json_t *row, const char *key)
{
	return json_integer_value(json_object_get(row, key));
}

static json_int_t drops(const json_t *row)
{
	json_int_t sum = 0;
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)row, k,
			    v) if (strncmp(k, "drop_", 5) == 0) sum +=
	    json_integer_value(v);
	return sum;
}

static const json_t *find_port(const json_t *rows, const char *port)
{
	size_t i;
	json_t *e;

	json_array_foreach(rows, i, e)
	{
		const char *p = json_string_value(json_object_get(e, "port"));

		if (p && port && strcmp(p, port) == 0)
			return e;
	}
	return NULL;
}

static json_int_t rate(json_int_t now, json_int_t then, double secs)
{
	/* A counter that went back was cleared: no rate for this round. */
	return now < then ? 0 : (json_int_t)((double)(now - then) / secs + 0.5);
}

static void top_print(const json_t *now, const json_t *prev, double secs,
		      bool tty, int round)
{
	static const char *const keys[] = {"port",     "rx_pps",   "tx_pps",
					   "rx_bit/s", "tx_bit/s", "drops/s",
					   NULL};
	json_t *rows = json_array();
	size_t i;
	json_t *e;

	json_array_foreach(now, i, e)
	{
		const char *port =
		    json_string_value(json_object_get(e, "port"));
		const json_t *p = find_port(prev, port);

		if (!p)
			p = e; /* new since the last sample */
		json_array_append_new(
		    rows, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "port",
				    port ? port : "?", "rx_pps",
				    rate(counter(e, "rx_packets"),
					 counter(p, "rx_packets"), secs),
				    "tx_pps",
				    rate(counter(e, "tx_packets"),
					 counter(p, "tx_packets"), secs),
				    "rx_bit/s",
				    rate(counter(e, "rx_bytes") * 8,
					 counter(p, "rx_bytes") * 8, secs),
				    "tx_bit/s",
				    rate(counter(e, "tx_bytes") * 8,
					 counter(p, "tx_bytes") * 8, secs),
				    "drops/s", rate(drops(e), drops(p), secs)));
	}
	if (tty)
		printf("\033[H\033[2J"
		       "vhostctl top: %s, every 1 s, Ctrl-C to quit\n\n",
		       sock_path);
	else if (round > 0)
		printf("\n");
	if (json_array_size(rows))
		print_table(rows, keys);
	else
		printf("no ports\n");
	fflush(stdout);
	json_decref(rows);
}

static int top(struct conn *c, int argc, char **argv, long count,
	       int timeout_ms)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	json_t *params = json_array(), *prev = NULL;
	bool tty = isatty(STDOUT_FILENO);
	long long prev_ms = 0;
	int round = 0;

	for (int i = 0; i < argc; i++) {
		char *end;

		const char *n = NULL;

		if (strncmp(argv[i], "count=", 6) == 0)
			n = argv[i] + 6;
		else if (strncmp(argv[i], "--count=", 8) == 0)
			n = argv[i] + 8;
		else if ((!strcmp(argv[i], "--count") ||
			  !strcmp(argv[i], "-n")) &&
			 i + 1 < argc)
			n = argv[++i];
		if (n) {
			count = strtol(n, &end, 10);
			if (*end || !*n || count <= 0)
				die(EXIT_USAGE, "top: bad count '%s'", n);
		} else if (json_array_size(params) == 0) {
			json_array_append_new(params, json_string(argv[i]));
		} else {
			die(EXIT_USAGE, "usage: top [PORT] [count=N]");
		}
	}
	/* No SA_RESTART: Ctrl-C must wake poll(). */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!interrupted) {
		json_t *reply = rpc(c, "stats", params, timeout_ms), *res;
		long long now;

		if (!reply)
			break;
		now = now_ms();
		res = result_of(reply);
		if (prev) {
			top_print(res, prev, (double)(now - prev_ms) / 1000.0,
				  tty, round++);
			json_decref(prev);
		}
		prev = json_incref(res);
		json_decref(reply);
		prev_ms = now;
		if (count > 0 && round >= count)
			break;
		while (!interrupted && now_ms() - prev_ms < 1000)
			poll(NULL, 0, (int)(1000 - (now_ms() - prev_ms)));
	}
	json_decref(prev);
	json_decref(params);
	free(c->buf);
	close(c->fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0}};
	struct conn conn = {.fd = -1};
	double timeout = 30;
	bool json_out = false;
	const char *method;
	char two[64], *end;
	json_t *params, *reply, *result;
	long count = 0;
	int opt, words = 1;

	sock_path = getenv("VHOSTCTL_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = DEFAULT_SOCKET;
	/* '+': options end at the command; its arguments are its own. */
	while ((opt = getopt_long(argc, argv, "+s:jt:n:hV", opts, NULL)) !=
	       -1) {
		switch (opt) {
		case 's':
			sock_path = optarg;
			break;
		case 'j':
			json_out = true;
			break;
		case 't':
			timeout = strtod(optarg, &end);
			if (*end || !*optarg || timeout < 0 || timeout > 1e6)
				die(EXIT_USAGE, "bad --timeout '%s'", optarg);
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || !*optarg || count <= 0)
				die(EXIT_USAGE, "bad --count '%s'", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("vhostctl " VHD_VERSION "\n");
			return 0;
		default:
			fprintf(stderr, "Try 'vhostctl --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	argv += optind;
	argc -= optind;
	/* "vhostctl port list --json" too: no command takes an argument
	 * that is exactly "--json". */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			json_out = true;
			memmove(&argv[i], &argv[i + 1],
				sizeof(*argv) * (size_t)(argc - i));
			argc--;
			i--;
		}
	if (strcmp(argv[0], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	/* Its own client: it must outlive a vhostd that goes away. */
	if (strcmp(argv[0], "metrics") == 0)
		return vhostctl_metrics(sock_path, argc - 1, argv + 1,
					(int)(timeout * 1000));

	method = argv[0];
	if (argc >= 2 && snprintf(two, sizeof(two), "%s/%s", argv[0], argv[1]) <
			     (int)sizeof(two)) {
		for (size_t i = 0; i < sizeof(two_words) / sizeof(*two_words);
		     i++)
			if (strcmp(two, two_words[i]) == 0) {
				method = two;
				words = 2;
			}
	}

	/* A group word ("port") with no or a wrong second word: say which
	 * subcommands it has rather than "unknown command 'port'". */
	if (words == 1 && strcmp(argv[0], "stats") != 0)
		subcommand_hint(argv[0], argc >= 2 ? argv[1] : NULL);

	signal(SIGPIPE, SIG_IGN);
	conn_open(&conn, (int)(timeout * 1000));
	if (strcmp(method, "top") == 0)
		return top(&conn, argc - 1, argv + 1, count,
			   (int)(timeout * 1000));

	params = json_array();
	for (int i = words; i < argc; i++)
		json_array_append_new(params, json_string(argv[i]));
	if (json_array_size(params) != (size_t)(argc - words))
		die(EXIT_USAGE, "arguments must be UTF-8 text");
	/* capture answers when it ends. Ctrl-C ends it too: vhostctl
	 * closes the socket, which stops the capture in vhostd, whose file
	 * is then complete. */
	if (strcmp(method, "capture") == 0) {
		struct sigaction sa = {.sa_handler = on_sigint};

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	reply = rpc(&conn, method, params,
		    strcmp(method, "capture") == 0 ? 0 : (int)(timeout * 1000));
	if (reply == NULL) {
		close(conn.fd);
		printf("capture stopped; %s is complete\n",
		       argc > words + 1 ? argv[words + 1] : "the file");
		json_decref(params);
		free(conn.buf);
		return 0;
	}
	result = result_of(reply);
	if (json_out) {
		char *s = json_dumps(result ? result : json_null(),
				     JSON_INDENT(2) | JSON_ENCODE_ANY);

		printf("%s\n", s ? s : "null");
		free(s);
	} else {
		print_human(method, result);
	}
	json_decref(reply);
	json_decref(params);
	free(conn.buf);
	close(conn.fd);
	return fflush(stdout) == 0 ? 0 : EXIT_FAIL;
}
