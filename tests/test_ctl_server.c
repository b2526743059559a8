/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_ctl_server.c: the control socket's server (ctl/server.c) against
 * its own command table, without the EAL: framing, every JSON-RPC error,
 * deferred replies, hang-ups, slow and silent clients, too many clients,
 * the socket file's checks, and a few thousand mutated requests.
 *
 * The clients live in this process too: non-blocking sockets, with
 * vhd_ctl_run() called between their reads and writes, so every
 * interleaving is chosen by the test and nothing needs a thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "unit.h"
#include "vhd_ctl.h"

/* The stub commands. */

static struct vhd_ctl_req *later_req;
static int gone_calls, gone_arg;

static void cmd_echo(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	json_t *a = json_array();

	for (int i = 0; i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	vhd_ctl_ok(req, a);
}

static void cmd_fail(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	vhd_ctl_err(req, EEXIST, "thing %s already exists",
		    argc ? argv[0] : "x");
}

static void later_gone(void *arg)
{
	gone_calls++;
	EXPECT(arg == &gone_arg, "on_gone got its argument");
	later_req = NULL;
}

static void cmd_later(struct vhd_ctl_req *req, int argc,
		      const char *const *argv)
{
	(void)argc;
	(void)argv;
	if (later_req) {
		vhd_ctl_err(req, EBUSY, "one at a time");
		return;
	}
	later_req = req;
	vhd_ctl_defer(req, later_gone, &gone_arg);
}

static void cmd_noreply(struct vhd_ctl_req *req, int argc,
			const char *const *argv)
{
	(void)req;
	(void)argc;
	(void)argv;
}

/* A result of atoi(argv[0]) bytes, to fill the socket. */
static void cmd_big(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	size_t n = (size_t)atoi(argv[0]);
	char *s = malloc(n + 1);

	(void)argc;
	memset(s, 'x', n);
	s[n] = '\0';
	vhd_ctl_ok(req, json_string(s));
	free(s);
}

const struct vhd_ctl_cmd vhd_ctl_cmds[] = {
    {"echo", "[ARG...]", 0, 8, cmd_echo, "its arguments"},
    {"fail", "[NAME]", 0, 1, cmd_fail, "fails with EEXIST"},
    {"later", "", 0, 0, cmd_later, "answers later"},
    {"noreply", "", 0, 0, cmd_noreply, "forgets to answer"},
    {"big", "BYTES", 1, 1, cmd_big, "a long string"},
    {"test/two", "A B", 2, 2, cmd_echo, "exactly two arguments"},
    {NULL, NULL, 0, 0, NULL, NULL},
};

/* Clients. */

static char dir[64], path[128];

struct cli {
	int fd;
	char *buf;
	size_t len, cap;
	bool eof;
};

static struct cli *cli_open_at(const char *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct cli *k = calloc(1, sizeof(*k));

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	/* A full backlog says EAGAIN: let the server accept. */
	for (int i = 0; i < 100; i++) {
		if (connect(k->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return k;
		if (errno != EAGAIN)
			break;
		vhd_ctl_run(1);
	}
	close(k->fd);
	free(k);
	return NULL;
}

static struct cli *cli_open(void)
{
	return cli_open_at(path);
}

static void cli_close(struct cli *k)
{
	if (!k)
		return;
	close(k->fd);
	free(k->buf);
	free(k);
}

/* Write all of P, serving the socket while it is full. */
static bool cli_write(struct cli *k, const void *p, size_t n)
{
	const char *s = p;

	for (int tries = 0; n && tries < 100000; tries++) {
		ssize_t w = send(k->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			s += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			vhd_ctl_run(1);
		} else {
			return false;
		}
	}
	return n == 0;
}

static bool cli_puts(struct cli *k, const char *s)
{
	return cli_write(k, s, strlen(s));
}

static void cli_pump(struct cli *k)
{
	for (;;) {
		ssize_t n;

		if (k->cap - k->len < 65536) {
			k->cap = k->cap ? k->cap * 2 : 131072;
			k->buf = realloc(k->buf, k->cap);
		}
		n = recv(k->fd, k->buf + k->len, k->cap - k->len, MSG_DONTWAIT);
		if (n > 0) {
			k->len += (size_t)n;
			continue;
		}
		if (n == 0 || errno != EAGAIN)
			k->eof = true;
		return;
	}
}

/* Serve until K has a whole line (at most ROUNDS turns of the server);
 * returns it without its newline, or NULL. */
static char *cli_line(struct cli *k, int rounds)
{
	for (int i = 0; i <= rounds; i++) {
		char *nl, *line;

		cli_pump(k);
		nl = k->len ? memchr(k->buf, '\n', k->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - k->buf);

			line = strndup(k->buf, n);
			memmove(k->buf, nl + 1, k->len - n - 1);
			k->len -= n + 1;
			return line;
		}
		if (k->eof || i == rounds)
			break;
		vhd_ctl_run(i < 10 ? 0 : 5);
	}
	return NULL;
}

static json_t *cli_reply(struct cli *k)
{
	char *line = cli_line(k, 200);
	json_t *j = line ? json_loads(line, 0, NULL) : NULL;

	free(line);
	return j;
}

/* True when K gets nothing in a few turns of the server. */
static bool cli_quiet(struct cli *k)
{
	for (int i = 0; i < 20; i++) {
		vhd_ctl_run(0);
		cli_pump(k);
	}
	return k->len == 0;
}

/* True when the server closed K (after anything it still had to say). */
static bool cli_closed(struct cli *k)
{
	for (int i = 0; i < 50 && !k->eof; i++) {
		vhd_ctl_run(i < 10 ? 0 : 2);
		cli_pump(k);
	}
	return k->eof;
}

static void serve(int rounds)
{
	for (int i = 0; i < rounds; i++)
		vhd_ctl_run(0);
}

static json_int_t reply_id(const json_t *r)
{
	return json_integer_value(json_object_get(r, "id"));
}

static int err_code(const json_t *r)
{
	return (int)json_integer_value(
	    json_object_get(json_object_get(r, "error"), "code"));
}

static const char *err_msg(const json_t *r)
{
	const char *m = json_string_value(
	    json_object_get(json_object_get(r, "error"), "message"));

	return m ? m : "";
}

static bool null_id(const json_t *r)
{
	return json_is_null(json_object_get(r, "id"));
}

#define REQ(id, method, params)                                         \
	"{\"jsonrpc\":\"2.0\",\"id\":" #id ",\"method\":\"" method "\"" \
	",\"params\":[" params "]}"

/* The cases. */

static void test_basic(void)
{
	struct cli *k = cli_open();
	char *line;
	json_t *r;

	cli_puts(k, REQ(1, "echo", "\"a\",\"b c\"") "\n");
	line = cli_line(k, 50);
	EXPECT(line && strcmp(line, "{\"jsonrpc\":\"2.0\",\"id\":1,"
				    "\"result\":[\"a\",\"b c\"]}") == 0,
	       "reply %s", line ? line : "(none)");
	free(line);

	/* No params, a string id, no newline after the request. */
	cli_puts(k, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"echo\"}");
	r = cli_reply(k);
	EXPECT(r && json_is_string(json_object_get(r, "id")) &&
		   json_array_size(json_object_get(r, "result")) == 0,
	       "string id, no params");
	json_decref(r);

	cli_puts(k, REQ(2, "fail", "\"vm1\""));
	line = cli_line(k, 50);
	EXPECT(line && strcmp(line, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":"
				    "{\"code\":-32000,\"message\":\"thing vm1 "
				    "already exists\",\"data\":{\"errno\":17,"
				    "\"error\":\"EEXIST\"}}}") == 0,
	       "fail reply %s", line ? line : "(none)");
	free(line);

	cli_puts(k, REQ(3, "noreply", ""));
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 3 && err_code(r) == VHD_CTL_E_INTERNAL &&
		   strcmp(err_msg(r), "internal error: no reply") == 0,
	       "noreply -> -32603");
	json_decref(r);
	cli_close(k);
}

static void test_pipelined(void)
{
	struct cli *k = cli_open();
	json_t *a, *b, *c;

	/* Two in one write, no separator; then two with whitespace. */
	cli_puts(
	    k, REQ(1, "echo", "\"1\"")
		   REQ(2, "echo", "\"2\"") " \r\n\t" REQ(3, "echo", "") "\n\n");
	a = cli_reply(k);
	b = cli_reply(k);
	c = cli_reply(k);
	EXPECT(a && reply_id(a) == 1, "first");
	EXPECT(b && reply_id(b) == 2, "second");
	EXPECT(c && reply_id(c) == 3, "third");
	json_decref(a);
	json_decref(b);
	json_decref(c);
	EXPECT(cli_quiet(k), "nothing more");
	cli_close(k);
}

static void test_split_and_silent(void)
{
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":12345,"
				  "\"method\":\"echo\",\"params\":[\"\xc3\xa9"
				  "\\u00e9\\\"}\"],\"x\":[true,null,-1.5e3]}";
	struct cli *a = cli_open(), *b = cli_open(), *c = cli_open();
	json_t *r;

	/* A: every byte on its own, the server running in between. */
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		cli_write(a, req + i, 1);
		vhd_ctl_run(0);
		if (i == 40) {
			/* B: half a request, then silence. */
			cli_write(b, req, 30);
			/* C: served while A and B are half done. */
			cli_puts(c, REQ(7, "echo", "\"c\""));
			r = cli_reply(c);
			EXPECT(r && reply_id(r) == 7, "third client served");
			json_decref(r);
		}
		cli_pump(a);
		EXPECT(a->len == 0 || i == sizeof(req) - 2,
		       "reply before the last byte (%zu)", i);
	}
	r = cli_reply(a);
	EXPECT(r && reply_id(r) == 12345, "byte-wise request answered");
	EXPECT(r && strcmp(json_string_value(
			       json_array_get(json_object_get(r, "result"), 0)),
			   "\xc3\xa9\xc3\xa9\"}") == 0,
	       "argument intact");
	json_decref(r);
	EXPECT(cli_quiet(b), "silent client gets nothing");
	cli_close(a);
	cli_close(b);
	cli_close(c);
}

static void test_many_lines(void)
{
	struct cli *k = cli_open();
	json_t *r;

	/* Pretty-printed, one line at a time. */
	cli_puts(k, "{\n  \"id\": 1,\n");
	serve(2);
	cli_puts(k, "  \"method\": \"echo\",\n  \"params\": [\n    \"a\"\n");
	serve(2);
	cli_puts(k, "  ]\n}\n");
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 1, "pretty-printed request");
	json_decref(r);

	/* 20000 lines: not one parse a line (that took a minute). */
	cli_puts(k, "{\"id\":2,\"method\":\"echo\",\"x\":[\n");
	for (int i = 0; i < 20000; i++) {
		cli_puts(k, "1,\n");
		vhd_ctl_run(0);
	}
	cli_puts(k, "1]}\n");
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 2, "20000-line request");
	json_decref(r);
	cli_close(k);
}

static void test_malformed(void)
{
	struct cli *k = cli_open();
	json_t *r;

	cli_puts(k, "{bad\n" REQ(1, "echo", "") "\n");
	r = cli_reply(k);
	EXPECT(r && err_code(r) == VHD_CTL_E_PARSE && null_id(r),
	       "-32700, id null");
	json_decref(r);
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 1 && json_object_get(r, "result"),
	       "next line served");
	json_decref(r);

	/* Garbage without an opening bracket, a stray closing one, a raw
	 * control character in a string. */
	cli_puts(k, "garbage\n}\n{\"method\":\"echo\",\"id\":1,\"x\":\"a\x01\"}"
		    "\n" REQ(2, "echo", "") "\n");
	for (int i = 0; i < 3; i++) {
		r = cli_reply(k);
		EXPECT(r && err_code(r) == VHD_CTL_E_PARSE, "parse error %d",
		       i);
		json_decref(r);
	}
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 2, "served after three bad lines");
	json_decref(r);
	cli_close(k);
}

static void test_invalid_requests(void)
{
	static const struct {
		const char *text;
		int code;
		bool null_id;
	} cases[] = {
	    {"[" REQ(1, "echo", "") "," REQ(2, "echo", "") "]", -32600, true},
	    {"[]", -32600, true},
	    {"\"a string\"\n", -32600, true},
	    {"123\n", -32600, true},
	    {"{\"id\":1}", -32600, false},
	    {"{\"id\":1,\"method\":7}", -32600, false},
	    {"{\"id\":1,\"method\":\"echo\",\"params\":\"a\"}", -32600, false},
	    {"{\"id\":1,\"method\":\"echo\",\"params\":[1]}", -32600, false},
	    {"{\"id\":1,\"method\":\"echo\",\"params\":{}}", -32600, false},
	    {"{\"id\":{},\"method\":\"echo\"}", -32600, true},
	    {"{\"id\":[1],\"method\":\"echo\"}", -32600, true},
	    {"{\"id\":true,\"method\":\"echo\"}", -32600, true},
	    {REQ(1, "nosuch", ""), -32601, false},
	    {REQ(1, "test/two", "\"a\""), -32602, false},
	    {REQ(1, "echo",
		 "\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
		 "\"9\""),
	     -32602, false},
	    {REQ(1, "list-commands", "\"x\""), -32602, false},
	    {"{\"id\":1,\"method\":\"echo\",\"params\":[\"\\u0000\"]}", -32700,
	     true},
	};
	struct cli *k = cli_open();
	json_t *r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_puts(k, cases[i].text);
		r = cli_reply(k);
		EXPECT(r && err_code(r) == cases[i].code &&
			   null_id(r) == cases[i].null_id &&
			   (cases[i].null_id || reply_id(r) == 1),
		       "case %zu: %s", i, cases[i].text);
		if (i == 0)
			EXPECT(r && strstr(err_msg(r), "batch"), "batch: %s",
			       err_msg(r));
		if (cases[i].code == -32601)
			EXPECT(r && strstr(err_msg(r), "'nosuch'"),
			       "names the method: %s", err_msg(r));
		if (i == 13)
			EXPECT(r && strcmp(err_msg(r), "usage: test two A B") ==
					0,
			       "usage: %s", err_msg(r));
		if (i == 15)
			EXPECT(r && strcmp(err_msg(r),
					   "usage: list-commands") == 0,
			       "usage: %s", err_msg(r));
		json_decref(r);
	}
	/* The connection is still good. */
	cli_puts(k, REQ(9, "echo", ""));
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 9, "still served");
	json_decref(r);
	cli_close(k);
}

static void test_oversize(void)
{
	struct cli *k = cli_open(), *other = cli_open();
	size_t n = VHD_CTL_MAX_REQUEST + 4096;
	char *big = malloc(n);
	json_t *r;

	memcpy(big, "{\"method\":\"echo\",\"params\":[\"", 28);
	memset(big + 28, 'a', n - 28);
	cli_write(k, big, n);
	r = cli_reply(k);
	EXPECT(r && err_code(r) == VHD_CTL_E_REQUEST &&
		   strcmp(err_msg(r), "request larger than 65536 bytes") == 0,
	       "-32600 too large: %s", r ? err_msg(r) : "(none)");
	json_decref(r);
	EXPECT(cli_closed(k), "closed after the reply");

	/* Just under the limit, complete, is served. */
	cli_puts(other, "{\"id\":1,\"method\":\"echo\",\"params\":[\"");
	memset(big, 'b', VHD_CTL_MAX_REQUEST - 100);
	cli_write(other, big, VHD_CTL_MAX_REQUEST - 100);
	cli_puts(other, "\"]}");
	r = cli_reply(other);
	EXPECT(r && reply_id(r) == 1 &&
		   strlen(json_string_value(
		       json_array_get(json_object_get(r, "result"), 0))) ==
		       VHD_CTL_MAX_REQUEST - 100,
	       "64 KiB - 64 B request served");
	json_decref(r);
	free(big);
	cli_close(k);
	cli_close(other);
}

static void test_notification(void)
{
	struct cli *k = cli_open();
	json_t *r;

	/* Carried out and not answered, even when they fail. */
	cli_puts(k, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}"
		    "{\"method\":\"fail\"}{\"method\":\"nosuch\"}"
		    "{\"method\":\"noreply\"}{\"method\":\"test/two\"}" REQ(
			5, "echo", ""));
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 5, "only the request is answered");
	json_decref(r);
	EXPECT(cli_quiet(k), "nothing for the notifications");

	/* A null id is a request, not a notification. */
	cli_puts(k, "{\"id\":null,\"method\":\"echo\"}");
	r = cli_reply(k);
	EXPECT(r && null_id(r) && json_object_get(r, "result"), "id null");
	json_decref(r);
	cli_close(k);
}

static void test_deferred(void)
{
	struct cli *k = cli_open(), *other = cli_open();
	json_t *r;

	gone_calls = 0;
	/* The echo behind it waits: replies stay in order. */
	cli_puts(k, REQ(7, "later", "") REQ(8, "echo", ""));
	EXPECT(cli_quiet(k), "no reply yet");
	EXPECT(later_req != NULL, "deferred");
	cli_puts(other, REQ(1, "echo", ""));
	r = cli_reply(other);
	EXPECT(r && reply_id(r) == 1, "others are served meanwhile");
	json_decref(r);

	/* "The timer fires" between two runs. */
	vhd_ctl_ok(later_req, json_string("done"));
	later_req = NULL;
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 7 &&
		   strcmp(json_string_value(json_object_get(r, "result")),
			  "done") == 0,
	       "deferred reply");
	json_decref(r);
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 8, "then the next request");
	json_decref(r);
	EXPECT(gone_calls == 0, "on_gone not called");

	/* Deferred, then answered with an error. */
	cli_puts(k, REQ(9, "later", ""));
	serve(3);
	vhd_ctl_err(later_req, ETIMEDOUT, "took too long");
	later_req = NULL;
	r = cli_reply(k);
	EXPECT(r && reply_id(r) == 9 && err_code(r) == VHD_CTL_E_FAILED,
	       "deferred error");
	json_decref(r);
	cli_close(k);
	cli_close(other);
}

static void test_gone(void)
{
	struct cli *k = cli_open();

	/* Hang-up while deferred: on_gone once, the request freed. */
	gone_calls = 0;
	cli_puts(k, REQ(1, "later", ""));
	serve(5);
	EXPECT(later_req != NULL, "deferred");
	cli_close(k);
	serve(10);
	EXPECT(gone_calls == 1 && later_req == NULL, "on_gone called %d",
	       gone_calls);

	/* A half-close (shutdown) is a hang-up too. */
	k = cli_open();
	cli_puts(k, REQ(1, "later", ""));
	serve(5);
	shutdown(k->fd, SHUT_WR);
	serve(10);
	EXPECT(gone_calls == 2 && later_req == NULL, "on shutdown: %d",
	       gone_calls);
	cli_close(k);

	/* Pipelined requests behind a deferred one, then a hang-up. */
	k = cli_open();
	cli_puts(k, REQ(1, "later", "") REQ(2, "echo", "") REQ(3, "fail", ""));
	serve(5);
	cli_close(k);
	serve(10);
	EXPECT(gone_calls == 3, "pipelined: %d", gone_calls);

	/* Gone before reading its replies: nothing breaks. */
	k = cli_open();
	cli_puts(k, REQ(1, "echo", "") REQ(2, "big", "\"3000000\"")
			REQ(3, "echo", ""));
	serve(3);
	cli_close(k);
	serve(10);
	k = cli_open();
	cli_puts(k, REQ(4, "echo", ""));
	close(k->fd); /* before the server even read it */
	k->fd = -1;
	serve(10);
	cli_close(k);
	EXPECT(gone_calls == 3, "no stray on_gone");
}

static void test_slow_reader(void)
{
	struct cli *slow = cli_open(), *k = cli_open();
	json_t *r;
	char *line;

	/* A 4 MB reply the client does not read, and a request behind. */
	cli_puts(slow, REQ(1, "big", "\"4000000\"") REQ(2, "echo", "\"s\""));
	serve(20);
	for (int i = 0; i < 5; i++) {
		cli_puts(k, REQ(3, "echo", "\"k\""));
		r = cli_reply(k);
		EXPECT(r && reply_id(r) == 3, "served beside a slow reader");
		json_decref(r);
	}
	line = cli_line(slow, 5000);
	EXPECT(line && strlen(line) > 4000000, "the big reply, whole");
	r = line ? json_loads(line, 0, NULL) : NULL;
	EXPECT(r && reply_id(r) == 1, "parses");
	json_decref(r);
	free(line);
	r = cli_reply(slow);
	EXPECT(r && reply_id(r) == 2, "then the next");
	json_decref(r);
	cli_close(slow);
	cli_close(k);
}

static void test_list_commands(void)
{
	struct cli *k = cli_open();
	json_t *r, *list, *e;
	size_t i;
	bool echo = false, self = false;

	cli_puts(k, REQ(1, "list-commands", ""));
	r = cli_reply(k);
	list = json_object_get(r, "result");
	EXPECT(json_array_size(list) == 7, "%zu commands",
	       json_array_size(list));
	json_array_foreach(list, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));

		EXPECT(n && json_is_string(json_object_get(e, "usage")) &&
			   json_is_string(json_object_get(e, "help")),
		       "entry %zu", i);
		if (n && strcmp(n, "echo") == 0)
			echo = strcmp(json_string_value(
					  json_object_get(e, "usage")),
				      "[ARG...]") == 0;
		if (n && strcmp(n, "list-commands") == 0)
			self = true;
	}
	EXPECT(echo && self, "echo and list-commands listed");
	json_decref(r);
	cli_close(k);
}

static void test_max_clients(void)
{
	struct cli *k[VHD_CTL_MAX_CLIENTS + 3];
	size_t n = sizeof(k) / sizeof(k[0]);
	json_t *r;

	for (size_t i = 0; i < n; i++) {
		k[i] = cli_open();
		serve(1);
	}
	serve(5);
	for (size_t i = VHD_CTL_MAX_CLIENTS; i < n; i++) {
		EXPECT(k[i] && cli_closed(k[i]), "client %zu refused", i);
		json_decref(k[i] ? cli_reply(k[i]) : NULL);
	}
	/* The first and the last admitted are served. */
	cli_puts(k[0], REQ(1, "echo", ""));
	cli_puts(k[VHD_CTL_MAX_CLIENTS - 1], REQ(2, "echo", ""));
	r = cli_reply(k[0]);
	EXPECT(r && reply_id(r) == 1, "first served");
	json_decref(r);
	r = cli_reply(k[VHD_CTL_MAX_CLIENTS - 1]);
	EXPECT(r && reply_id(r) == 2, "64th served");
	json_decref(r);
	for (size_t i = 0; i < n; i++)
		cli_close(k[i]);
	serve(5);
	/* Slots are given back. */
	k[0] = cli_open();
	serve(2);
	cli_puts(k[0], REQ(3, "echo", ""));
	r = cli_reply(k[0]);
	EXPECT(r && reply_id(r) == 3, "served again");
	json_decref(r);
	cli_close(k[0]);
}

static void test_refused_reply(void)
{
	struct cli *k[VHD_CTL_MAX_CLIENTS + 1];
	json_t *r;
	char *line;

	for (size_t i = 0; i <= VHD_CTL_MAX_CLIENTS; i++) {
		k[i] = cli_open();
		serve(1);
	}
	line = cli_line(k[VHD_CTL_MAX_CLIENTS], 50);
	r = line ? json_loads(line, 0, NULL) : NULL;
	EXPECT(r && err_code(r) == VHD_CTL_E_FAILED && null_id(r),
	       "refusal says why: %s", line ? line : "(none)");
	json_decref(r);
	free(line);
	for (size_t i = 0; i <= VHD_CTL_MAX_CLIENTS; i++)
		cli_close(k[i]);
	serve(5);
}

static void test_open_errors(void)
{
	char err[256], p[256], p2[160];
	int fd, ret;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	/* Already open. */
	ret = vhd_ctl_open(path, "", err, sizeof(err));
	EXPECT(ret == -EBUSY, "second open: %d", ret);

	vhd_ctl_close();
	EXPECT(stat(path, &st) < 0 && errno == ENOENT, "close removes it");

	/* Too long: 120 bytes. */
	snprintf(p, sizeof(p), "%s/%0*d", dir, (int)(119 - strlen(dir)), 0);
	ret = vhd_ctl_open(p, "", err, sizeof(err));
	EXPECT(ret == -ENAMETOOLONG &&
		   strstr(err, "path too long (120 bytes, at most 107)"),
	       "%d %s", ret, err);
	/* 107 is fine. */
	snprintf(p, sizeof(p), "%s/%0*d", dir, (int)(106 - strlen(dir)), 0);
	ret = vhd_ctl_open(p, "", err, sizeof(err));
	EXPECT(ret == 0, "107 bytes: %d %s", ret, err);
	EXPECT(stat(p, &st) == 0 && (st.st_mode & 0777) == 0660 &&
		   S_ISSOCK(st.st_mode),
	       "mode %o", st.st_mode);
	vhd_ctl_close();

	/* Missing directory (not ours to create). */
	snprintf(p, sizeof(p), "%s/nodir/ctl", dir);
	ret = vhd_ctl_open(p, "", err, sizeof(err));
	EXPECT(ret == -ENOENT && strstr(err, "/nodir"), "%d %s", ret, err);

	/* Unknown group: nothing is left behind. */
	ret = vhd_ctl_open(path, "no-such-group-vhd", err, sizeof(err));
	EXPECT(ret == -ENOENT && strstr(err, "no such group"), "%d %s", ret,
	       err);
	EXPECT(stat(path, &st) < 0, "no file after a failed open");

	/* A regular file in the way. */
	close(open(path, O_CREAT | O_WRONLY, 0600));
	ret = vhd_ctl_open(path, "", err, sizeof(err));
	EXPECT(ret == -EEXIST && strstr(err, path), "%d %s", ret, err);
	unlink(path);

	/* A stale socket (bound, nobody listening) is replaced. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	EXPECT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind");
	close(fd);
	ret = vhd_ctl_open(path, "root", err, sizeof(err));
	EXPECT(ret == 0, "stale replaced: %d %s", ret, err);

	/* A live one is refused and left alone. */
	snprintf(p2, sizeof(p2), "%s/live.sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p2);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	listen(fd, 1);
	vhd_ctl_close();
	ret = vhd_ctl_open(p2, "", err, sizeof(err));
	EXPECT(ret == -EADDRINUSE && strstr(err, "in use by another process"),
	       "%d %s", ret, err);
	EXPECT(stat(p2, &st) == 0, "live socket kept");
	close(fd);
	unlink(p2);

	ret = vhd_ctl_open(path, "", err, sizeof(err));
	EXPECT(ret == 0, "reopen: %d %s", ret, err);
}

static void test_kv(void)
{
	char key[8];
	const char *v = NULL;

	EXPECT(vhd_ctl_kv("mode=client", key, sizeof(key), &v) == 0 &&
		   strcmp(key, "mode") == 0 && strcmp(v, "client") == 0,
	       "mode=client");
	EXPECT(vhd_ctl_kv("path=a=b", key, sizeof(key), &v) == 0 &&
		   strcmp(v, "a=b") == 0,
	       "first '='");
	EXPECT(vhd_ctl_kv("x=", key, sizeof(key), &v) == 0 && *v == '\0',
	       "empty value");
	EXPECT(vhd_ctl_kv("noequals", key, sizeof(key), &v) == -EINVAL,
	       "no '='");
	EXPECT(vhd_ctl_kv("=v", key, sizeof(key), &v) == -EINVAL, "no key");
	EXPECT(vhd_ctl_kv("toolongkey=v", key, sizeof(key), &v) == -EINVAL,
	       "key too long");
}

/* Mutated requests: the server must neither crash nor leak nor wedge. */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static size_t mutate(char *buf, size_t len, size_t cap)
{
	static const char *const inserts[] = {"{",
					      "\"",
					      "\\",
					      "[",
					      "]",
					      "}",
					      ",",
					      ":",
					      "\n",
					      "1e999999",
					      "123456789012345678901234567890",
					      "-",
					      "\\u",
					      "\\ud83d",
					      "\xff",
					      "\xc3",
					      "null",
					      "\"id\":",
					      "{\"a\":"};
	int kind = (int)rnd(8);
	size_t at = len ? rnd((uint32_t)len + 1) : 0;

	switch (kind) {
	case 0: /* flip bytes */
		for (int i = 0, n = 1 + (int)rnd(4); i < n && len; i++)
			buf[rnd((uint32_t)len)] = (char)rnd(256);
		return len;
	case 1: /* truncate */
		return at;
	case 2: /* a NUL */
		if (len + 1 > cap)
			return len;
		memmove(buf + at + 1, buf + at, len - at);
		buf[at] = '\0';
		return len + 1;
	case 3: { /* deep nesting */
		size_t n = 10000;

		if (len + n > cap)
			return len;
		memmove(buf + at + n, buf + at, len - at);
		memset(buf + at, rnd(2) ? '[' : '{', n);
		return len + n;
	}
	default: { /* a token */
		const char *s =
		    inserts[rnd(sizeof(inserts) / sizeof(*inserts))];
		size_t n = strlen(s);

		if (len + n > cap)
			return len;
		memmove(buf + at + n, buf + at, len - at);
		memcpy(buf + at, s, n);
		return len + n;
	}
	}
}

/* Tally what K was told (whole lines only) and drop it. */
static void count_replies(struct cli *k, int counts[8])
{
	static const int codes[] = {0, -32700, -32600, -32601, -32602, -32000};
	char *line;

	while (k->len && memchr(k->buf, '\n', k->len) &&
	       (line = cli_line(k, 0))) {
		json_t *r = json_loads(line, 0, NULL);
		int code = r && !json_object_get(r, "result") ? err_code(r) : 0,
		    i;

		for (i = 0; i < 6 && codes[i] != code; i++)
			;
		counts[r ? i : 7]++;
		json_decref(r);
		free(line);
	}
	k->len = 0; /* and a part line, if any */
}

static void test_mutations(void)
{
	static const char *const seeds[] = {
	    REQ(1, "echo", "\"a\",\"b\""),
	    REQ("x", "fail", "\"vm1\""),
	    REQ(2, "test/two", "\"a\",\"b\""),
	    REQ(3, "list-commands", ""),
	    "{\"method\":\"echo\",\"params\":[\"n\"]}",
	    "[" REQ(1, "echo", "") "]",
	    "{\"jsonrpc\":\"2.0\",\"id\":1.5e300,\"method\":\"echo\"}",
	};
	size_t cap = 64 * 1024;
	char *buf = malloc(cap);
	struct cli *shared = cli_open();
	int rounds = 3000, counts[8] = {0};
	json_t *r;

	for (int i = 0; i < rounds; i++) {
		const char *seed = seeds[rnd(sizeof(seeds) / sizeof(*seeds))];
		size_t len = strlen(seed);
		bool own = rnd(4) == 0;
		struct cli *k;

		memcpy(buf, seed, len);
		for (int m = 0, n = 1 + (int)rnd(3); m < n; m++)
			len = mutate(buf, len, cap - 1);
		if (rnd(2))
			buf[len++] = '\n';
		if (!shared || shared->eof || rnd(20) == 0) {
			cli_close(shared);
			shared = cli_open();
		}
		k = own ? cli_open() : shared;
		if (!k)
			continue;
		if (len > 1 && rnd(4) == 0) {
			/* In two writes, the server running between them. */
			size_t half = rnd((uint32_t)len);

			cli_write(k, buf, half);
			vhd_ctl_run(0);
			cli_write(k, buf + half, len - half);
		} else {
			cli_write(k, buf, len);
		}
		vhd_ctl_run(0);
		vhd_ctl_run(0);
		cli_pump(k);
		count_replies(k, counts);
		if (own) {
			if (rnd(2))
				shutdown(k->fd, SHUT_WR);
			vhd_ctl_run(0);
			cli_close(k);
		}
		/* Now and then, a well-formed request on a new client. */
		if (i % 500 == 499) {
			k = cli_open();
			cli_puts(k, REQ(42, "echo", "\"ok\""));
			r = cli_reply(k);
			EXPECT(r && reply_id(r) == 42, "served after %d", i);
			json_decref(r);
			cli_close(k);
		}
	}
	cli_close(shared);
	free(buf);
	serve(10);
	printf("%d mutated requests: %d results, %d -32700, %d -32600, "
	       "%d -32601, %d -32602, %d -32000, %d other\n",
	       rounds, counts[0], counts[1], counts[2], counts[3], counts[4],
	       counts[5], counts[6] + counts[7]);
	EXPECT(counts[0] > 0 && counts[1] > 0 && counts[2] > 0, "a mix");

	/* 10000 '[' on their own, and then a good request. */
	{
		struct cli *k = cli_open();
		char deep[20001];

		memset(deep, '[', 10000);
		memset(deep + 10000, ']', 10000);
		deep[20000] = '\n';
		cli_write(k, deep, sizeof(deep));
		r = cli_reply(k);
		EXPECT(r && err_code(r) == VHD_CTL_E_PARSE, "deep nesting");
		json_decref(r);
		cli_write(k, deep, 10000);
		cli_puts(k, "\n" REQ(43, "echo", ""));
		serve(5);
		cli_close(k);
		k = cli_open();
		cli_puts(k, REQ(44, "echo", ""));
		r = cli_reply(k);
		EXPECT(r && reply_id(r) == 44, "served at the end");
		json_decref(r);
		cli_close(k);
	}
}

int main(void)
{
	char err[256];
	int ret;

	snprintf(dir, sizeof(dir), "/tmp/vhd-ctl-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	ret = vhd_ctl_open(path, "", err, sizeof(err));
	if (ret < 0) {
		printf("vhd_ctl_open: %s\n", err);
		return 2;
	}
	UNIT_CASE(test_basic);
	UNIT_CASE(test_pipelined);
	UNIT_CASE(test_split_and_silent);
	UNIT_CASE(test_many_lines);
	UNIT_CASE(test_malformed);
	UNIT_CASE(test_invalid_requests);
	UNIT_CASE(test_oversize);
	UNIT_CASE(test_notification);
	UNIT_CASE(test_deferred);
	UNIT_CASE(test_gone);
	UNIT_CASE(test_slow_reader);
	UNIT_CASE(test_list_commands);
	UNIT_CASE(test_mutations);
	UNIT_CASE(test_max_clients);
	UNIT_CASE(test_refused_reply);
	UNIT_CASE(test_kv);
	UNIT_CASE(test_open_errors);

	/* Closing with a deferred request: on_gone once. */
	{
		struct cli *k = cli_open();

		gone_calls = 0;
		cli_puts(k, REQ(1, "later", ""));
		serve(5);
		vhd_ctl_close();
		EXPECT(gone_calls == 1 && !later_req, "close: on_gone %d",
		       gone_calls);
		cli_close(k);
	}
	rmdir(dir);
	return unit_done();
}
