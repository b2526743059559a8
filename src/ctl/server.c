/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * server.c: the control socket: accepts clients, frames and parses their
 * JSON-RPC requests, checks them against vhd_ctl_cmds[], calls the handler
 * and sends exactly one reply per request (OVS unixctl's model).
 *
 * Main design choice: one poll() loop on the caller's thread, every socket
 * non-blocking, and each client with its own input and output buffer, so a
 * slow or silent client only ever stalls itself. A client is served one
 * request at a time: while its reply is unsent or deferred nothing more is
 * parsed or read from it. That keeps replies in order and bounds a client's
 * memory to one request and one reply, and the socket's own buffer pushes
 * back on a client that writes faster than it reads.
 *
 * Framing: requests need no delimiter. A byte scanner (brackets, strings,
 * newlines) spots where a value may end and only then asks jansson, so a
 * request arriving a byte at a time is not re-parsed for every byte, and a
 * value cut inside a token ("tr", "1e", half a UTF-8 character) is never
 * taken for a syntax error.
 *
 * Handlers' argv point into the parsed request, which the server keeps
 * until the request is answered or its client goes away. A deferred
 * request whose client hangs up (or half-closes) is freed right after its
 * on_gone: its owner must forget it there, and never answer it later
 * (that would be a use after free; during on_gone an answer is ignored).
 * Handlers must not call vhd_ctl_run() or vhd_ctl_close().
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_log.h>

#include "vhd_ctl.h"
#include "vhd_sockpath.h"

RTE_LOG_REGISTER(vhd_logtype_ctl, vhostd.ctl, INFO);

#define CTL_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_##level, vhd_logtype_ctl, fmt "\n", ##__VA_ARGS__)

#define CTL_RUN_DIR "/run/vhostd" /* the only directory we create */
#define CTL_BUDGET  32		  /* requests per client per vhd_ctl_run */
#define CTL_IN_MAX  (VHD_CTL_MAX_REQUEST + 1) /* one byte more: too big */
#define CTL_KEEP    (16 * 1024) /* buffers above this are freed when idle */

struct ctl_client {
	int fd;
	char *in; /* received; [in_off, in_len) not yet parsed */
	size_t in_off, in_len, in_cap;
	/* The scanner: bytes before scan_pos are known not to end a value. */
	size_t scan_pos;
	int scan_depth;
	bool scan_str, scan_esc, scan_junk;
	size_t scan_tried; /* bytes jansson last found incomplete */
	char *out;	   /* replies; [out_off, out_len) not yet sent */
	size_t out_off, out_len, out_cap;
	struct vhd_ctl_req *pending; /* deferred request */
	bool eof;		     /* the client will send nothing more */
	bool closing;		     /* close once the output is sent */
	bool more;		     /* budget spent with requests left */
	bool dead;		     /* free at the next sweep */
};

struct vhd_ctl_req {
	struct ctl_client *client; /* NULL once the client is gone */
	json_t *msg;		   /* the request; argv points into it */
	json_t *id;		   /* in msg; NULL for a notification */
	const char **argv;
	void (*on_gone)(void *arg);
	void *arg;
};

static struct {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctl_client *clients[VHD_CTL_MAX_CLIENTS];
	const struct vhd_ctl_req *cur;	/* request whose handler runs */
	bool cur_done;			/* ...and it was answered or deferred */
	const struct vhd_ctl_req *gone; /* request whose on_gone runs */
	bool busy; /* requests left: poll without sleeping */
} ctl = {.fd = -1};

static void list_commands(struct vhd_ctl_req *req, int argc,
			  const char *const *argv);

static const struct vhd_ctl_cmd builtin_cmds[] = {
    {"list-commands", "", 0, 0, list_commands, "list the commands"},
    {NULL, NULL, 0, 0, NULL, NULL},
};

/* Some bugs can be triggered again and again by a client; their log lines
 * are limited to a few every ten seconds. */
static bool log_allowed(void)
{
	static time_t window;
	static int count;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - window >= 10) {
		window = now.tv_sec;
		count = 0;
	}
	return count++ < 5;
}

/* A JSON string even when S is not UTF-8 (a handler's message may quote a
 * file): jansson refuses such text, so its high bytes become '?'. */
static json_t *json_text(const char *s)
{
	json_t *j = json_string(s);
	char *t;

	if (j || !(t = strdup(s)))
		return j;
	for (char *p = t; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(t);
	free(t);
	return j;
}

static int grow(char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 4096;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Send what the socket takes; the rest waits for POLLOUT. */
static void client_flush(struct ctl_client *c)
{
	while (!c->dead && c->out_off < c->out_len) {
		ssize_t n =
		    send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			c->out_off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		else
			c->dead = true; /* EPIPE: the reply is dropped */
	}
	c->out_off = c->out_len = 0;
	if (c->out_cap > CTL_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

/* Queue REPLY (a reference taken over) on C and start sending it. */
static void client_send(struct ctl_client *c, json_t *reply)
{
	char *s = json_dumps(reply, JSON_COMPACT);
	size_t len;

	if (!s) {
		/* Out of memory, or a handler's result that is not JSON
		 * (a NaN). The client must still get its one reply. */
		json_t *id = json_object_get(reply, "id");

		json_t *err;

		if (log_allowed())
			CTL_LOG(ERR, "cannot encode a reply");
		err = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0",
				"id", id ? id : json_null(), "error", "code",
				VHD_CTL_E_INTERNAL, "message",
				"internal error: reply not encodable");
		s = json_dumps(err, JSON_COMPACT);
		json_decref(err);
	}
	json_decref(reply);
	if (!s || c->dead)
		goto out;
	len = strlen(s);
	if (grow(&c->out, &c->out_cap, c->out_len + len + 1) < 0) {
		c->dead = true; /* no memory for its reply: it hears nothing */
		goto out;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	client_flush(c);
out:
	free(s);
}

static json_t *error_reply(json_t *id, int code, int errnum, const char *msg)
{
	json_t *err = json_object(), *reply = json_object();

	json_object_set_new(err, "code", json_integer(code));
	json_object_set_new(err, "message", json_text(msg));
	if (code == VHD_CTL_E_FAILED) {
		json_t *data = json_object();
		const char *name = strerrorname_np(errnum);

		json_object_set_new(data, "errno", json_integer(errnum));
		if (name)
			json_object_set_new(data, "error", json_string(name));
		json_object_set_new(err, "data", data);
	}
	json_object_set_new(reply, "jsonrpc", json_string("2.0"));
	json_object_set_new(reply, "id", id ? json_incref(id) : json_null());
	json_object_set_new(reply, "error", err);
	return reply;
}

/* An error found by the server itself, before any handler ran. */
static void client_error(struct ctl_client *c, json_t *id, int code,
			 const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void client_error(struct ctl_client *c, json_t *id, int code,
			 const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CTL_LOG(DEBUG, "client %d: %s", c->fd, msg);
	client_send(c, error_reply(id, code, 0, msg));
}

static void req_free(struct vhd_ctl_req *req)
{
	json_decref(req->msg);
	free(req->argv);
	free(req);
}

/* Every answer ends here: REPLY goes to the client if it is still there
 * and asked for one, and REQ is freed. */
static void req_answer(struct vhd_ctl_req *req, json_t *reply)
{
	struct ctl_client *c = req->client;

	if (req == ctl.cur)
		ctl.cur_done = true;
	if (c && c->pending == req) {
		c->pending = NULL;
		ctl.busy = true; /* its next requests may be buffered */
	}
	if (c && req->id && !c->dead)
		client_send(c, reply);
	else
		json_decref(reply);
	req_free(req);
}

void vhd_ctl_ok(struct vhd_ctl_req *req, json_t *result)
{
	json_t *reply;

	if (!req || req == ctl.gone) {
		json_decref(result);
		return;
	}
	reply = json_object();
	json_object_set_new(reply, "jsonrpc", json_string("2.0"));
	json_object_set_new(reply, "id",
			    req->id ? json_incref(req->id) : json_null());
	json_object_set_new(reply, "result", result ? result : json_null());
	req_answer(req, reply);
}

static void req_error(struct vhd_ctl_req *req, int code, int errnum,
		      const char *msg)
{
	if (req && req != ctl.gone)
		req_answer(req, error_reply(req->id, code, errnum, msg));
}

void vhd_ctl_err(struct vhd_ctl_req *req, int errnum, const char *fmt, ...)
{
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* A negative errno (a return value passed on as is) means the same. */
	req_error(req, VHD_CTL_E_FAILED, errnum < 0 ? -errnum : errnum,
		  msg ? msg : "out of memory");
	free(msg);
}

void vhd_ctl_defer(struct vhd_ctl_req *req, void (*on_gone)(void *arg),
		   void *arg)
{
	if (req == ctl.cur)
		ctl.cur_done = true;
	req->on_gone = on_gone;
	req->arg = arg;
	if (req->client)
		req->client->pending = req;
}

static void list_commands(struct vhd_ctl_req *req, int argc,
			  const char *const *argv)
{
	const struct vhd_ctl_cmd *tables[] = {builtin_cmds, vhd_ctl_cmds};
	json_t *list = json_array();

	(void)argc;
	(void)argv;
	for (size_t t = 0; t < 2; t++)
		for (const struct vhd_ctl_cmd *cmd = tables[t]; cmd->name;
		     cmd++)
			json_array_append_new(
			    list,
			    json_pack("{s:s, s:s, s:s}", "name", cmd->name,
				      "usage", cmd->usage ? cmd->usage : "",
				      "help", cmd->help ? cmd->help : ""));
	vhd_ctl_ok(req, list);
}

static const struct vhd_ctl_cmd *find_cmd(const char *name)
{
	const struct vhd_ctl_cmd *tables[] = {builtin_cmds, vhd_ctl_cmds};

	for (size_t t = 0; t < 2; t++)
		for (const struct vhd_ctl_cmd *cmd = tables[t]; cmd->name;
		     cmd++)
			if (strcmp(cmd->name, name) == 0)
				return cmd;
	return NULL;
}

static bool params_ok(const json_t *params)
{
	size_t i;
	json_t *v;

	if (!json_is_array(params))
		return false;
	json_array_foreach(params, i, v) if (!json_is_string(v)) return false;
	return true;
}

/* Check MSG (a reference taken over) and call its command's handler. */
static void dispatch(struct ctl_client *c, json_t *msg)
{
	json_t *id, *method, *params;
	const struct vhd_ctl_cmd *cmd;
	struct vhd_ctl_req *req;
	size_t argc;

	if (!json_is_object(msg)) {
		client_error(c, NULL, VHD_CTL_E_REQUEST,
			     json_is_array(msg)
				 ? "batch requests are not supported"
				 : "request is not a JSON object");
		goto out;
	}
	id = json_object_get(msg, "id");
	if (id && !json_is_string(id) && !json_is_number(id) &&
	    !json_is_null(id)) {
		client_error(c, NULL, VHD_CTL_E_REQUEST,
			     "id must be a string, a number or null");
		goto out;
	}
	/* A request so broken that it may not mean to be a notification is
	 * answered even without an id, as JSON-RPC says. */
	method = json_object_get(msg, "method");
	if (!json_is_string(method)) {
		client_error(c, id, VHD_CTL_E_REQUEST,
			     "method missing or not a string");
		goto out;
	}
	params = json_object_get(msg, "params");
	if (params && !params_ok(params)) {
		client_error(c, id, VHD_CTL_E_REQUEST,
			     "params must be an array of strings");
		goto out;
	}
	argc = params ? json_array_size(params) : 0;
	cmd = find_cmd(json_string_value(method));
	if (!cmd) {
		CTL_LOG(DEBUG, "client %d: unknown command '%.64s'", c->fd,
			json_string_value(method));
		if (id) {
			char *m;

			if (asprintf(&m, "unknown command '%s'",
				     json_string_value(method)) < 0)
				m = NULL;
			client_send(c, error_reply(id, VHD_CTL_E_METHOD, 0,
						   m ? m : "unknown command"));
			free(m);
		}
		goto out;
	}
	if (argc < (size_t)cmd->min_args ||
	    (cmd->max_args >= 0 && argc > (size_t)cmd->max_args)) {
		char words[256];

		snprintf(words, sizeof(words), "%s", cmd->name);
		for (char *p = words; *p; p++)
			if (*p == '/')
				*p = ' ';
		if (id)
			client_error(c, id, VHD_CTL_E_PARAMS, "usage: %s%s%s",
				     words,
				     cmd->usage && *cmd->usage ? " " : "",
				     cmd->usage ? cmd->usage : "");
		goto out;
	}

	req = calloc(1, sizeof(*req));
	if (req)
		req->argv = calloc(argc + 1, sizeof(*req->argv));
	if (!req || !req->argv) {
		free(req);
		client_error(c, id, VHD_CTL_E_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < argc; i++)
		req->argv[i] = json_string_value(json_array_get(params, i));
	req->client = c;
	req->msg = msg;
	req->id = id;
	CTL_LOG(DEBUG, "client %d: %s", c->fd, cmd->name);

	ctl.cur = req;
	ctl.cur_done = false;
	cmd->fn(req, (int)argc, req->argv);
	ctl.cur = NULL;
	if (!ctl.cur_done) {
		if (log_allowed())
			CTL_LOG(ERR, "bug: command %s returned without a reply",
				cmd->name);
		req_error(req, VHD_CTL_E_INTERNAL, 0,
			  "internal error: no reply");
	}
	return;
out:
	json_decref(msg);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void consume(struct ctl_client *c, size_t n)
{
	c->in_off += n;
	c->scan_pos = c->in_off;
	c->scan_depth = 0;
	c->scan_str = c->scan_esc = c->scan_junk = false;
	c->scan_tried = 0;
}

/* Where the first value in the input may end (the offset after the byte
 * that may end it), or 0 when it surely has not ended yet. A value ends at
 * its closing bracket; anything else (a scalar, junk) is taken to end at a
 * newline, and a newline anywhere lets jansson judge what came before, so
 * a line-oriented client that sent garbage gets its error at once (in a
 * long value of many lines, only now and then: see below). */
static size_t scan(struct ctl_client *c)
{
	while (c->scan_pos < c->in_len) {
		char ch = c->in[c->scan_pos++];

		/* Each newline would re-parse the whole value: after an
		 * incomplete one, wait until the text has doubled, so a
		 * value of many lines costs a few parses, not one a line. */
		if (ch == '\n' && c->scan_pos - c->in_off >= 2 * c->scan_tried)
			return c->scan_pos;
		if (c->scan_str) {
			if (c->scan_esc)
				c->scan_esc = false;
			else if (ch == '\\')
				c->scan_esc = true;
			else if (ch == '"')
				c->scan_str = false;
		} else if (c->scan_junk) {
			continue;
		} else if (ch == '{' || ch == '[') {
			c->scan_depth++;
		} else if (ch == '}' || ch == ']') {
			if (c->scan_depth <= 1)
				return c->scan_pos;
			c->scan_depth--;
		} else if (ch == '"' && c->scan_depth > 0) {
			c->scan_str = true;
		} else if (c->scan_depth == 0 && !is_space(ch)) {
			c->scan_junk = true;
		}
	}
	return 0;
}

/* Answer a text that is not JSON, and skip it: up to and including the
 * next newline (a line-oriented client goes on from there), or all of
 * it. */
static void parse_error(struct ctl_client *c, const json_error_t *jerr)
{
	size_t from = c->in_off + (jerr->position > 0 ? jerr->position - 1 : 0);
	char *nl = NULL;

	client_error(c, NULL, VHD_CTL_E_PARSE, "parse error at byte %d: %s",
		     jerr->position, jerr->text);
	if (from < c->in_len)
		nl = memchr(c->in + from, '\n', c->in_len - from);
	consume(c, nl ? (size_t)(nl - c->in) + 1 - c->in_off
		      : c->in_len - c->in_off);
}

static void too_big(struct ctl_client *c)
{
	client_error(c, NULL, VHD_CTL_E_REQUEST, "request larger than %d bytes",
		     VHD_CTL_MAX_REQUEST);
	c->closing = true;
	consume(c, c->in_len - c->in_off);
}

/* Serve the buffered requests, one at a time while nothing is waiting to
 * be sent or answered. */
static void client_process(struct ctl_client *c)
{
	int budget = CTL_BUDGET;

	c->more = false;
	while (!c->dead && !c->closing && !c->pending &&
	       c->out_off == c->out_len) {
		json_error_t jerr;
		size_t end, used;
		const char *nul;
		json_t *msg;

		while (c->in_off < c->in_len && is_space(c->in[c->in_off]))
			consume(c, 1);
		if (c->in_off == c->in_len)
			break;
		if (budget-- == 0) {
			c->more = ctl.busy = true;
			break;
		}
		end = scan(c);
		if (!end && c->eof)
			end = c->in_len; /* last chance: it all came */
		if (!end) {
			if (c->in_len - c->in_off > VHD_CTL_MAX_REQUEST)
				too_big(c);
			break;
		}
		/* jansson takes a NUL for the end of its input and would
		 * wait for more forever: no JSON text holds one. */
		nul = memchr(c->in + c->in_off, '\0', end - c->in_off);
		if (nul != NULL) {
			memset(&jerr, 0, sizeof(jerr));
			jerr.position = (int)(nul - (c->in + c->in_off)) + 1;
			snprintf(jerr.text, sizeof(jerr.text),
				 "NUL byte in the request");
			parse_error(c, &jerr);
			continue;
		}
		msg =
		    json_loadb(c->in + c->in_off, end - c->in_off,
			       JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
		if (msg) {
			used = jerr.position > 0 ? (size_t)jerr.position : 1;
			consume(c, used);
			if (used > VHD_CTL_MAX_REQUEST) {
				json_decref(msg);
				too_big(c);
			} else {
				dispatch(c, msg);
			}
		} else if (json_error_code(&jerr) ==
			   json_error_premature_end_of_input) {
			if (end == c->in_len && c->eof)
				consume(c, c->in_len - c->in_off);
			else if (c->in_len - c->in_off > VHD_CTL_MAX_REQUEST)
				too_big(c);
			else
				c->scan_tried = end - c->in_off;
		} else {
			parse_error(c, &jerr);
		}
	}
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
		consume(c, 0);
		if (c->in_cap > CTL_KEEP) {
			free(c->in);
			c->in = NULL;
			c->in_cap = 0;
		}
	}
}

static void client_read(struct ctl_client *c)
{
	size_t need, room;
	ssize_t n;

	if (c->in_off > 0) {
		size_t shift = c->in_off;

		memmove(c->in, c->in + shift, c->in_len - shift);
		c->in_len -= shift;
		c->in_off = 0;
		c->scan_pos -= shift;
	}
	if (c->in_len >= CTL_IN_MAX)
		return; /* full: client_process() judged it */
	need = c->in_len + 4096 < CTL_IN_MAX ? c->in_len + 4096 : CTL_IN_MAX;
	if (grow(&c->in, &c->in_cap, need) < 0) {
		c->dead = true;
		return;
	}
	room = (c->in_cap < CTL_IN_MAX ? c->in_cap : CTL_IN_MAX) - c->in_len;
	n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
	if (n > 0)
		c->in_len += (size_t)n;
	else if (n == 0)
		c->eof = true;
	else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
		c->dead = true;
}

static bool client_reading(const struct ctl_client *c)
{
	return !c->pending && c->out_off == c->out_len && !c->eof &&
	       !c->closing && !c->dead;
}

static short client_events(const struct ctl_client *c)
{
	if (c->out_off < c->out_len)
		return POLLOUT;
	if (c->pending)
		return POLLRDHUP; /* only to notice a hang-up */
	return client_reading(c) ? POLLIN | POLLRDHUP : 0;
}

static void client_service(struct ctl_client *c, short rev)
{
	if (rev & POLLNVAL) {
		c->dead = true;
		return;
	}
	if (rev & POLLOUT)
		client_flush(c);
	if (c->dead)
		return;
	if (client_reading(c)) {
		if (rev & (POLLIN | POLLHUP | POLLRDHUP | POLLERR))
			client_read(c);
	} else if (rev & (POLLHUP | POLLERR)) {
		c->dead = true; /* nobody to read what is unsent */
	} else if ((rev & POLLRDHUP) && c->pending) {
		c->eof = true; /* hung up while its request waits */
	}
	client_process(c);
}

static void client_free(struct ctl_client *c)
{
	struct vhd_ctl_req *req = c->pending;

	if (req) {
		c->pending = NULL;
		req->client = NULL;
		if (req->on_gone) {
			ctl.gone = req;
			req->on_gone(req->arg);
			ctl.gone = NULL;
		}
		req_free(req);
	}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Close the clients that are done: gone, hung up while a request waits,
 * or with everything answered after they stopped sending. */
static void sweep(void)
{
	for (int i = 0; i < VHD_CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = ctl.clients[i];
		bool idle;

		if (!c)
			continue;
		idle = c->out_off == c->out_len && !c->pending && !c->more;
		if (c->dead || (c->eof && c->pending) ||
		    ((c->eof || c->closing) && idle)) {
			CTL_LOG(DEBUG, "client %d: closed", c->fd);
			client_free(c);
			ctl.clients[i] = NULL;
		}
	}
}

static void ctl_accept(void)
{
	static const char full[] =
	    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,"
	    "\"message\":\"too many control clients\",\"data\":{\"errno\":16,"
	    "\"error\":\"EBUSY\"}}}\n";

	for (;;) {
		int fd =
		    accept4(ctl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *c;
		int i;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_allowed())
				CTL_LOG(WARNING, "accept on %s: %s", ctl.path,
					strerror(errno));
			return;
		}
		for (i = 0; i < VHD_CTL_MAX_CLIENTS && ctl.clients[i]; i++)
			;
		c = i < VHD_CTL_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			/* Best effort: the socket buffer of a new
			 * connection takes this much. */
			if (send(fd, full, sizeof(full) - 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				CTL_LOG(DEBUG, "refusing client: %s",
					strerror(errno));
			if (log_allowed())
				CTL_LOG(WARNING, "%s: more than %d clients",
					ctl.path, VHD_CTL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		c->fd = fd;
		ctl.clients[i] = c;
		CTL_LOG(DEBUG, "client %d: connected", fd);
	}
}

/* Written by other threads (vhd_ctl_wake) to end the control loop's wait
 * early: created with the socket, never closed while vhostd runs. */
static int wake_fd = -1;

void vhd_ctl_wake(void)
{
	int fd = __atomic_load_n(&wake_fd, __ATOMIC_ACQUIRE);

	if (fd >= 0)
		eventfd_write(fd, 1);
}

void vhd_ctl_run(int timeout_ms)
{
	/* The listening socket, the wake eventfd, the clients. */
	struct pollfd pfd[2 + VHD_CTL_MAX_CLIENTS];
	struct ctl_client *who[2 + VHD_CTL_MAX_CLIENTS];
	int n = 0;

	/* Requests left over (a deferred reply was sent since, or a budget
	 * ran out) are served before sleeping. */
	ctl.busy = false;
	for (int i = 0; i < VHD_CTL_MAX_CLIENTS; i++)
		if (ctl.clients[i])
			client_process(ctl.clients[i]);
	sweep();

	if (ctl.fd >= 0) {
		pfd[n] = (struct pollfd){.fd = ctl.fd, .events = POLLIN};
		who[n++] = NULL;
	}
	if (wake_fd >= 0) {
		pfd[n] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
		who[n++] = NULL;
	}
	for (int i = 0; i < VHD_CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = ctl.clients[i];
		short ev = c ? client_events(c) : 0;

		if (ev) {
			pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
			who[n++] = c;
		}
	}
	if (poll(pfd, (nfds_t)n, ctl.busy ? 0 : timeout_ms) > 0) {
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (who[i]) {
				client_service(who[i], pfd[i].revents);
			} else if (pfd[i].fd == wake_fd) {
				eventfd_t v;

				eventfd_read(wake_fd, &v);
			} else {
				ctl_accept();
			}
		}
	}
	sweep();
}

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

int vhd_ctl_open(const char *path, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = path ? strlen(path) : 0;
	gid_t gid = (gid_t)-1;
	struct stat st;
	int fd, ret;

	if (ctl.fd >= 0)
		return fail(err, errlen, -EBUSY,
			    "control socket %s: already serving %s",
			    path ? path : "", ctl.path);
	if (path == NULL || len == 0)
		return fail(err, errlen, -EINVAL,
			    "control socket path is empty");
	if (wake_fd < 0)
		__atomic_store_n(&wake_fd,
				 eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
				 __ATOMIC_RELEASE);
	if (group && *group) {
		const struct group *gr = getgrnam(group);

		if (!gr)
			return fail(err, errlen, -ENOENT,
				    "control socket %s: no such group '%s'",
				    path, group);
		gid = gr->gr_gid;
	}
	ret = vhd_sockpath_prepare(path, "control socket", CTL_RUN_DIR, err,
				   errlen);
	if (ret < 0)
		return ret;
	memcpy(sa.sun_path, path, len + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, -errno,
			    "control socket %s: socket: %s", path,
			    strerror(errno));
	/* Linux creates the file with the socket's mode: nobody else can
	 * connect between bind() and chmod(). */
	if (fchmod(fd, 0660) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = fail(err, errlen, -errno, "control socket %s: bind: %s",
			   path, strerror(errno));
		close(fd);
		return ret;
	}
	/* Room for a burst of clients (monitoring scripts) while the control
	 * thread is busy: a full backlog refuses non-blocking connects. */
	if (listen(fd, 128) < 0 || chmod(path, 0660) < 0 ||
	    chown(path, (uid_t)-1, gid) < 0 || stat(path, &st) < 0) {
		ret = fail(err, errlen, -errno, "control socket %s: %s", path,
			   strerror(errno));
		close(fd);
		unlink(path);
		return ret;
	}
	ctl.fd = fd;
	ctl.dev = st.st_dev;
	ctl.ino = st.st_ino;
	memcpy(ctl.path, path, len + 1);
	CTL_LOG(INFO, "control socket %s", path);
	return 0;
}

void vhd_ctl_close(void)
{
	struct stat st;

	for (int i = 0; i < VHD_CTL_MAX_CLIENTS; i++) {
		if (ctl.clients[i]) {
			client_free(ctl.clients[i]);
			ctl.clients[i] = NULL;
		}
	}
	if (ctl.fd < 0)
		return;
	close(ctl.fd);
	ctl.fd = -1;
	/* Only our own file: another vhostd may have taken the path over. */
	if (stat(ctl.path, &st) == 0 && st.st_dev == ctl.dev &&
	    st.st_ino == ctl.ino)
		unlink(ctl.path);
	ctl.path[0] = '\0';
}

int vhd_ctl_kv(const char *arg, char *key, size_t klen, const char **value)
{
	const char *eq = arg ? strchr(arg, '=') : NULL;
	size_t n = eq ? (size_t)(eq - arg) : 0;

	/* A key that does not fit is no key any command knows. */
	if (n == 0 || n >= klen)
		return -EINVAL;
	memcpy(key, arg, n);
	key[n] = '\0';
	*value = eq + 1;
	return 0;
}
