/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhostctl/metrics.c: `vhostctl metrics`: vhostd's counters and gauges in
 * the Prometheus text exposition format (0.0.4), printed once, or served
 * at http://ADDR:PORT/metrics (--listen) with libmicrohttpd.
 *
 * Main design choice: an exporter beside the daemon, not inside it. Each
 * scrape opens the control socket and asks the JSON-RPC methods every
 * client uses (info, port/list, stats, lcores, bridge/list, bridge/show),
 * then writes the text; vhostd's threads never serve HTTP. A vhostd that
 * is down or restarting is a scrape that says vhostd_up 0 (HTTP 200), as
 * mysqld_exporter's mysql_up does, not a failed target: the exporter's
 * own `up` stays about the exporter. Names follow Prometheus' rules:
 * counters end in _total, ratios are 0..1, labels port/bridge/type on
 * every port metric, drops one family with a reason label.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
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
#include <microhttpd.h>

#include "metrics.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct exporter {
	const char *sock;
	int timeout_ms;
	bool serving; /* log when vhostd goes down or comes back */
	int was_up;   /* -1: not known yet */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------ control socket client */

/* Unlike vhostctl's own client, every failure is returned: a scrape must
 * survive vhostd going away. */
struct client {
	int fd;
	int timeout_ms; /* per request; 0: none */
	char *buf;	/* received, not yet a whole line */
	size_t len, cap;
	json_int_t id;
	char err[256];
};

static int wait_ms(const struct client *c, long long deadline)
{
	long long left;

	if (c->timeout_ms <= 0)
		return -1;
	left = deadline - now_ms();
	return left < 0 ? 0 : (int)left;
}

static int client_open(struct client *c, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	long long deadline = now_ms() + timeout_ms;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(c->err, sizeof(c->err), "%s: path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(c->err, sizeof(c->err), "socket: %s", strerror(errno));
		return -1;
	}
	/* EAGAIN: vhostd's backlog is full; try again until the deadline. */
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if ((errno != EAGAIN && errno != EINTR) ||
		    wait_ms(c, deadline) == 0) {
			snprintf(c->err, sizeof(c->err),
				 "cannot connect to %s: %s%s", path,
				 strerror(errno),
				 errno == ENOENT || errno == ECONNREFUSED
				     ? " (is vhostd running?)"
				     : "");
			close(c->fd);
			c->fd = -1;
			return -1;
		}
		poll(NULL, 0, 10);
	}
	return 0;
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

/* METHOD with string parameters ARG (NULL: none): its result (a new
 * reference), or NULL with C->err set. *RPC_ERR (if given) tells an error
 * reply from vhostd apart from a broken connection. */
static json_t *client_call(struct client *c, const char *method,
			   const char *arg, bool *rpc_err)
{
	long long deadline = now_ms() + c->timeout_ms;
	json_t *req, *reply, *res;
	char *text, *nl;
	size_t off = 0, len;
	json_error_t jerr;

	if (rpc_err)
		*rpc_err = false;
	req = json_pack("{s:s,s:I,s:s,s:[]}", "jsonrpc", "2.0", "id", ++c->id,
			"method", method, "params");
	if (req && arg)
		json_array_append_new(json_object_get(req, "params"),
				      json_string(arg));
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (text == NULL) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return NULL;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over the NUL: sent by length */
	while (off < len) {
		struct pollfd p = {.fd = c->fd, .events = POLLOUT};
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
		} else if (errno == EAGAIN) {
			if (poll(&p, 1, wait_ms(c, deadline)) == 0) {
				errno = ETIMEDOUT;
				break;
			}
		} else if (errno != EINTR) {
			break;
		}
	}
	free(text);
	if (off < len) {
		snprintf(c->err, sizeof(c->err), "%s: cannot send: %s", method,
			 strerror(errno));
		return NULL;
	}
	/* The reply is one line. */
	while (!(nl = c->len ? memchr(c->buf, '\n', c->len) : NULL)) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;

		if (c->cap - c->len < 65536) {
			char *b = realloc(c->buf, c->cap ? c->cap * 2 : 131072);

			if (b == NULL) {
				snprintf(c->err, sizeof(c->err),
					 "out of memory");
				return NULL;
			}
			c->buf = b;
			c->cap = c->cap ? c->cap * 2 : 131072;
		}
		if (poll(&p, 1, wait_ms(c, deadline)) == 0) {
			snprintf(c->err, sizeof(c->err),
				 "%s: no reply within %d ms", method,
				 c->timeout_ms);
			return NULL;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			snprintf(c->err, sizeof(c->err), "%s: %s", method,
				 n == 0 ? "vhostd closed the connection"
					: strerror(errno));
			return NULL;
		}
	}
	reply = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &jerr);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	res = json_object_get(reply, "result");
	if (res == NULL) {
		const char *m = json_string_value(json_object_get(
		    json_object_get(reply, "error"), "message"));

		snprintf(c->err, sizeof(c->err), "%s: %s", method,
			 m	 ? m
			 : reply ? "bad reply"
				 : jerr.text);
		if (rpc_err)
			*rpc_err = m != NULL;
	}
	json_incref(res);
	json_decref(reply);
	return res;
}

/* ------------------------------------------------------ exposition text */

/* V as a label value: backslash, double quote and newline escaped. */
static void put_value(FILE *f, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: NAME{K1="V1",...} (KV NULL-terminated pairs) VALUE. */
static void sample(FILE *f, const char *name, const char *const *kv,
		   const json_t *value)
{
	fputs(name, f);
	for (int i = 0; kv && kv[i]; i += 2) {
		fprintf(f, "%s%s=\"", i ? "," : "{", kv[i]);
		put_value(f, kv[i + 1]);
		fputc('"', f);
	}
	if (kv && kv[0])
		fputc('}', f);
	if (json_is_integer(value))
		fprintf(f, " %" JSON_INTEGER_FORMAT "\n",
			json_integer_value(value));
	else
		fprintf(f, " %.6g\n", json_number_value(value));
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* What each port counter of `stats` means; any other is still exported. */
static const struct {
	const char *key, *help;
} port_help[] = {
    {"rx_packets", "Frames the port received (from its guest or device)."},
    {"rx_bytes", "Bytes of the frames the port received."},
    {"tx_packets", "Frames the port sent (to its guest or device)."},
    {"tx_bytes", "Bytes of the frames the port sent."},
    {"rx_tso", "TSO super-frames the port received."},
    {"rx_csum_partial", "Frames received with a partial checksum."},
    {"tx_segmented", "Super-frames segmented in software for the port."},
    {"tx_segments", "Segments those super-frames made (also in tx)."},
    {"tx_sw_csum", "Frames whose checksum was completed in software."},
    {"tx_lock_contended", "Transmits that waited for a queue's lock."},
};

static void port_counters(FILE *f, const json_t *stats, const json_t **info)
{
	json_t *keys = json_array(), *row, *v;
	const char *k;
	size_t i, j;
	char name[160], help[256];

	/* Every counter any row has, in order of appearance. */
	json_array_foreach(stats, i, row)
	{
		json_object_foreach(row, k, v)
		{
			bool seen = false;

			/* A key that cannot be part of a metric name is
			 * left out. */
			if (!json_is_integer(v) ||
			    strspn(k,
				   "abcdefghijklmnopqrstuvwxyz0123456789_") !=
				strlen(k))
				continue;
			for (j = 0; j < json_array_size(keys) && !seen; j++)
				seen = !strcmp(k, json_string_value(
						      json_array_get(keys, j)));
			if (!seen)
				json_array_append_new(keys, json_string(k));
		}
	}
	/* Drops: one family, the reason a label. */
	family(f, "vhostd_port_dropped_packets_total", "counter",
	       "Frames the port dropped, by reason (vhostctl stats drop_*).");
	json_array_foreach(stats, i, row)
	{
		json_object_foreach(row, k, v)
		{
			const char *kv[] = {"port",   str(row, "port"),
					    "bridge", str(info[i], "bridge"),
					    "type",   str(info[i], "type"),
					    "reason", NULL,
					    NULL};

			if (strncmp(k, "drop_", 5) != 0 || !json_is_integer(v))
				continue;
			kv[7] = k + 5;
			sample(f, "vhostd_port_dropped_packets_total", kv, v);
		}
	}
	for (j = 0; j < json_array_size(keys); j++) {
		const char *key = json_string_value(json_array_get(keys, j));

		if (strncmp(key, "drop_", 5) == 0)
			continue;
		snprintf(name, sizeof(name), "vhostd_port_%s_total", key);
		snprintf(help, sizeof(help),
			 "Port counter %s of vhostctl stats.", key);
		for (size_t h = 0; h < sizeof(port_help) / sizeof(*port_help);
		     h++)
			if (strcmp(port_help[h].key, key) == 0)
				snprintf(help, sizeof(help), "%s",
					 port_help[h].help);
		family(f, name, "counter", help);
		json_array_foreach(stats, i, row)
		{
			const char *kv[] = {"port",   str(row, "port"),
					    "bridge", str(info[i], "bridge"),
					    "type",   str(info[i], "type"),
					    NULL};

			v = json_object_get(row, key);
			if (json_is_integer(v))
				sample(f, name, kv, v);
		}
	}
	json_decref(keys);
}

/* Everything one scrape asked for. */
struct scrape {
	json_t *info, *ports, *stats, *lcores, *bridges, *shows;
};

static void scrape_free(struct scrape *s)
{
	json_decref(s->info);
	json_decref(s->ports);
	json_decref(s->stats);
	json_decref(s->lcores);
	json_decref(s->bridges);
	json_decref(s->shows);
}

/* Ask vhostd for everything; false (with ERR) if it did not answer. */
static bool scrape_get(const struct exporter *x, struct scrape *s, char *err,
		       size_t errlen)
{
	struct client c;
	bool rpc_err, ok = false;
	size_t i;
	json_t *b;

	memset(s, 0, sizeof(*s));
	if (client_open(&c, x->sock, x->timeout_ms) < 0) {
		snprintf(err, errlen, "%s", c.err);
		return false;
	}
	/* info is newer than the rest: a vhostd without it still counts. */
	s->info = client_call(&c, "info", NULL, &rpc_err);
	if (s->info == NULL && !rpc_err)
		goto out;
	if (!(s->ports = client_call(&c, "port/list", NULL, NULL)) ||
	    !(s->stats = client_call(&c, "stats", NULL, NULL)) ||
	    !(s->lcores = client_call(&c, "lcores", NULL, NULL)) ||
	    !(s->bridges = client_call(&c, "bridge/list", NULL, NULL)))
		goto out;
	s->shows = json_array();
	json_array_foreach(s->bridges, i, b)
	{
		json_t *show =
		    client_call(&c, "bridge/show", str(b, "name"), &rpc_err);

		/* A bridge deleted meanwhile is left out. */
		if (show == NULL && !rpc_err)
			goto out;
		json_array_append_new(s->shows, show ? show : json_object());
	}
	ok = true;
out:
	if (!ok)
		snprintf(err, errlen, "%s", c.err);
	client_close(&c);
	return ok;
}

static void write_info(FILE *f, const json_t *info)
{
	const char *kv[] = {"version", str(info, "version"), "dpdk_version",
			    str(info, "dpdk_version"), NULL};
	json_t *one = json_integer(1);

	family(f, "vhostd_info", "gauge",
	       "vhostd's version and DPDK's, as labels; always 1.");
	sample(f, "vhostd_info", kv, one);
	json_decref(one);
	family(f, "vhostd_uptime_seconds", "gauge",
	       "Seconds since vhostd started.");
	sample(f, "vhostd_uptime_seconds", NULL,
	       json_object_get(info, "uptime_s"));
	family(f, "vhostd_mbufs", "gauge",
	       "Mbufs in vhostd's pools (every NUMA node).");
	sample(f, "vhostd_mbufs", NULL, json_object_get(info, "mbufs"));
	family(f, "vhostd_mbufs_in_use", "gauge",
	       "Mbufs taken from vhostd's pools: in rings, queues, flight.");
	sample(f, "vhostd_mbufs_in_use", NULL,
	       json_object_get(info, "mbufs_in_use"));
}

static void write_ports(FILE *f, const struct scrape *s)
{
	size_t n = json_array_size(s->stats), i, j;
	const json_t **info = calloc(n ? n : 1, sizeof(*info));
	json_t *row, *p;

	if (info == NULL)
		return;
	/* Each stats row's port/list row, for its labels and state. */
	json_array_foreach(s->stats, i, row)
	{
		json_array_foreach(s->ports, j, p)
		{
			if (strcmp(str(p, "name"), str(row, "port")) == 0) {
				info[i] = p;
				break;
			}
		}
	}
	family(f, "vhostd_port_up", "gauge",
	       "1 if the port is up (a guest with its queues, a started "
	       "device), else 0.");
	json_array_foreach(s->ports, j, p)
	{
		const char *kv[] = {
		    "port", str(p, "name"), "bridge", str(p, "bridge"),
		    "type", str(p, "type"), NULL};
		json_t *up = json_integer(strcmp(str(p, "state"), "up") == 0);

		sample(f, "vhostd_port_up", kv, up);
		json_decref(up);
	}
	port_counters(f, s->stats, info);
	free(info);
}

static void write_lcores(FILE *f, const json_t *lcores)
{
	static const struct {
		const char *name, *key, *help;
		double scale;
		bool rxq;
	} fam[] = {
	    {"vhostd_lcore_busy_ratio", "busy_pct",
	     "Share of the datapath lcore's time spent busy (last 5 s).", 0.01,
	     false},
	    {"vhostd_lcore_rx_packets_per_second", "pps",
	     "Frames the lcore received per second (last 5 s).", 1, false},
	    {"vhostd_rxq_busy_ratio", "share_pct",
	     "The rx queue's share of its lcore's time (last 5 s).", 0.01,
	     true},
	    {"vhostd_rxq_rx_packets_per_second", "pps",
	     "Frames received on the rx queue per second (last 5 s).", 1, true},
	};
	char lc[16], cpu[16], numa[16], q[16];
	json_t *l, *r;
	size_t i, j;

	for (size_t k = 0; k < sizeof(fam) / sizeof(*fam); k++) {
		family(f, fam[k].name, "gauge", fam[k].help);
		json_array_foreach(lcores, i, l)
		{
			snprintf(
			    lc, sizeof(lc), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(json_object_get(l, "lcore")));
			snprintf(cpu, sizeof(cpu), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(json_object_get(l, "cpu")));
			snprintf(
			    numa, sizeof(numa), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(json_object_get(l, "numa")));
			if (!fam[k].rxq) {
				const char *kv[] = {"lcore", lc,   "cpu", cpu,
						    "numa",  numa, NULL};
				json_t *v =
				    json_real(json_number_value(json_object_get(
						  l, fam[k].key)) *
					      fam[k].scale);

				sample(f, fam[k].name, kv, v);
				json_decref(v);
				continue;
			}
			json_array_foreach(json_object_get(l, "rxqs"), j, r)
			{
				const char *kv[] = {"port",  str(r, "port"),
						    "queue", q,
						    "lcore", lc,
						    NULL};
				json_t *v =
				    json_real(json_number_value(json_object_get(
						  r, fam[k].key)) *
					      fam[k].scale);

				snprintf(q, sizeof(q), "%" JSON_INTEGER_FORMAT,
					 json_integer_value(
					     json_object_get(r, "queue")));
				sample(f, fam[k].name, kv, v);
				json_decref(v);
			}
		}
	}
}

static void write_bridges(FILE *f, const struct scrape *s)
{
	static const struct {
		const char *name, *key, *type, *help;
	} fam[] = {
	    {"vhostd_bridge_ports", "ports", "gauge", "Ports on the bridge."},
	    {"vhostd_bridge_fdb_entries", "fdb_entries", "gauge",
	     "MAC table entries (learned and static)."},
	    {"vhostd_bridge_mac_table_size", "mac_table_size", "gauge",
	     "Most MAC table entries the bridge keeps."},
	    {"vhostd_bridge_flooded_packets_total", "flooded", "counter",
	     "Frames flooded (broadcast, multicast, unknown unicast)."},
	    {"vhostd_bridge_learned_total", "learned", "counter",
	     "MAC addresses learned."},
	    {"vhostd_bridge_moved_total", "moved", "counter",
	     "Learned MAC addresses that moved to another port."},
	    {"vhostd_bridge_aged_total", "aged", "counter",
	     "Learned MAC addresses aged out."},
	    {"vhostd_bridge_learn_table_full_total", "learn_table_full",
	     "counter", "MAC addresses not learned: the table was full."},
	    {"vhostd_bridge_learn_port_limit_total", "learn_port_limit",
	     "counter", "MAC addresses not learned: a port's limit."},
	};
	json_t *b;
	size_t i;

	for (size_t k = 0; k < sizeof(fam) / sizeof(*fam); k++) {
		family(f, fam[k].name, fam[k].type, fam[k].help);
		json_array_foreach(s->bridges, i, b)
		{
			const char *kv[] = {"bridge", str(b, "name"), "mode",
					    str(b, "mode"), NULL};
			json_t *v = json_object_get(b, fam[k].key);

			/* bridge/show has the counters (learning bridges
			 * alone have the learning ones). */
			if (!v)
				v = json_object_get(json_array_get(s->shows, i),
						    fam[k].key);
			if (json_is_integer(v))
				sample(f, fam[k].name, kv, v);
		}
	}
}

/* One scrape's text (malloc'd, *LEN bytes); *UP whether vhostd answered,
 * and if not ERR says why. */
static char *scrape_text(struct exporter *x, size_t *len, bool *up, char *err,
			 size_t errlen)
{
	struct scrape s;
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	json_t *v;

	if (f == NULL)
		return NULL;
	*up = scrape_get(x, &s, err, errlen);
	family(f, "vhostd_up", "gauge",
	       "1 if vhostd answered on its control socket, else 0.");
	v = json_integer(*up);
	sample(f, "vhostd_up", NULL, v);
	json_decref(v);
	if (*up) {
		if (s.info)
			write_info(f, s.info);
		write_ports(f, &s);
		write_lcores(f, s.lcores);
		write_bridges(f, &s);
	}
	scrape_free(&s);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	if (x->serving && x->was_up != (int)*up)
		fprintf(stderr, "vhostctl: metrics: %s%s\n",
			*up ? "vhostd answers on " : "vhostd is down: ",
			*up ? x->sock : err);
	x->was_up = *up;
	return text;
}

/* ---------------------------------------------------------------- HTTP */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     char *body, size_t len, bool must_free)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, body,
	    must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (r == NULL) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(
	    r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    code == MHD_HTTP_OK ? CONTENT_TYPE : "text/plain; charset=utf-8");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char not_allowed[] = "only GET and HEAD\n";
	static char failed[] = "out of memory\n";
	static int seen;
	char err[256];
	size_t len;
	bool up;
	char *text;

	(void)version;
	(void)upload;
	/* The first call only announces the request; answer on the next,
	 * once any body has been read (and ignored). */
	if (*state == NULL) {
		*state = &seen;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed,
			     strlen(not_allowed), false);
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, not_found,
			     strlen(not_found), false);
	text = scrape_text(cls, &len, &up, err, sizeof(err));
	if (text == NULL)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, failed,
			     strlen(failed), false);
	return reply(conn, MHD_HTTP_OK, text, len, true);
}

/* ARG ("ADDR:PORT", "[V6ADDR]:PORT", ":PORT") as a socket address; 0, or
 * -1 with ERR. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss,
			socklen_t *sslen, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	const char *port, *end;
	char host[256];
	size_t hlen;
	long n;
	int rc;

	if (arg[0] == '[') {
		end = strchr(arg, ']');
		if (end == NULL || end[1] != ':') {
			snprintf(err, errlen, "expected [ADDR]:PORT");
			return -1;
		}
		hlen = (size_t)(end - arg - 1);
		port = end + 2;
		arg++;
		hints.ai_family = AF_INET6;
	} else {
		end = strrchr(arg, ':');
		if (end == NULL) {
			snprintf(err, errlen, "expected ADDR:PORT");
			return -1;
		}
		hlen = (size_t)(end - arg);
		if (memchr(arg, ':', hlen)) {
			snprintf(err, errlen,
				 "an IPv6 address goes in brackets: "
				 "[::1]:PORT");
			return -1;
		}
		port = end + 1;
		/* ":PORT": every IPv4 address, as node_exporter's ":9100". */
		hints.ai_family = AF_INET;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "address too long");
		return -1;
	}
	memcpy(host, arg, hlen);
	host[hlen] = '\0';
	n = strspn(port, "0123456789") == strlen(port) && *port &&
		    strlen(port) <= 5
		? strtol(port, NULL, 10)
		: 0;
	if (n < 1 || n > 65535) {
		snprintf(err, errlen, "port '%s' is not 1-65535", port);
		return -1;
	}
	rc = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int serve(struct exporter *x, const char *at)
{
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	socklen_t sslen;
	sigset_t stop;
	char err[300];
	int fd, one = 1, sig;

	if (parse_listen(at, &ss, &sslen, err, sizeof(err)) < 0) {
		fprintf(stderr, "vhostctl: metrics: bad --listen '%s': %s\n",
			at, err);
		return EXIT_USAGE;
	}
	/* Our own socket: a bind error is reported as what it is. */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 64) < 0) {
		fprintf(stderr, "vhostctl: metrics: cannot listen on %s: %s\n",
			at, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAIL;
	}
	/* Signals to this thread alone (the server's threads inherit the
	 * mask), taken by sigwait: a clean stop without handlers. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
		(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, on_request, x, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "vhostctl: metrics: cannot start the HTTP "
				"server\n");
		close(fd);
		return EXIT_FAIL;
	}
	fprintf(stderr,
		"vhostctl: metrics: serving %s's metrics on "
		"http://%s/metrics\n",
		x->sock, at);
	while (sigwait(&stop, &sig) != 0)
		;
	/* Closes the listening socket too. */
	MHD_stop_daemon(d);
	fprintf(stderr, "vhostctl: metrics: stopped (signal %d)\n", sig);
	return 0;
}

int vhostctl_metrics(const char *sock, int argc, char **argv, int timeout_ms)
{
	struct exporter x = {sock, timeout_ms, false, -1};
	const char *at = NULL;
	char err[256];
	size_t len;
	bool up;
	char *text;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			at = argv[++i];
		else if (strncmp(argv[i], "--listen=", 9) == 0)
			at = argv[i] + 9;
		else if (strncmp(argv[i], "listen=", 7) == 0)
			at = argv[i] + 7;
		else {
			fprintf(
			    stderr,
			    "vhostctl: usage: metrics [--listen ADDR:PORT]\n");
			return EXIT_USAGE;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (at) {
		x.serving = true;
		return serve(&x, at);
	}
	text = scrape_text(&x, &len, &up, err, sizeof(err));
	if (text == NULL) {
		fprintf(stderr, "vhostctl: out of memory\n");
		return EXIT_FAIL;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	if (fflush(stdout) != 0)
		return EXIT_FAIL;
	if (!up) {
		fprintf(stderr, "vhostctl: %s\n", err);
		return EXIT_CONNECT;
	}
	return 0;
}
