/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhd_ctl.h: the control socket (JSON-RPC 2.0 over a unix stream socket)
 * and its command table, as OVS's unixctl is built.
 *
 * Everything here runs on the control thread (the main lcore), never on a
 * datapath lcore. The server (ctl/server.c) owns the socket and its
 * clients; it parses requests, finds the command in vhd_ctl_cmds[] (one
 * table, ctl/commands.c), checks the number of arguments against the
 * command's bounds, and calls the handler, which lives beside the state it
 * changes. Every request with an id gets exactly one reply: the handler
 * answers it with vhd_ctl_ok() or vhd_ctl_err(), now or, after
 * vhd_ctl_defer(), later. Datapath files never include this header.
 *
 * Wire format: a request is one JSON object {"jsonrpc": "2.0", "method":
 * "port/add", "params": ["vm3", "bridge=br0", ...], "id": 1}; params, when
 * present, is an array of strings (the command's arguments). Requests may
 * follow each other on one connection, with or without a newline between
 * them; each reply is one JSON object followed by a newline. A request may
 * be at most VHD_CTL_MAX_REQUEST bytes.
 */
#ifndef VHD_CTL_H
#define VHD_CTL_H

#include <stdarg.h>
#include <stddef.h>

#include <jansson.h>

#define VHD_CTL_MAX_REQUEST (64 * 1024) /* bytes */
#define VHD_CTL_MAX_CLIENTS 64		/* connections at once */

/* JSON-RPC error codes. A handler's failure is VHD_CTL_E_FAILED with the
 * errno in the error's data ({"errno": N, "error": "EEXIST"}). */
#define VHD_CTL_E_PARSE	   -32700 /* not JSON */
#define VHD_CTL_E_REQUEST  -32600 /* JSON, but not a valid request */
#define VHD_CTL_E_METHOD   -32601 /* no such command */
#define VHD_CTL_E_PARAMS   -32602 /* wrong number or kind of arguments */
#define VHD_CTL_E_INTERNAL -32603
#define VHD_CTL_E_FAILED   -32000 /* the command itself failed */

/* One request waiting for its reply. Opaque; owned by the server. */
struct vhd_ctl_req;

/* A command's handler: ARGV[0..ARGC) are the request's params, already
 * checked against the command's min_args/max_args. It must answer REQ
 * exactly once: vhd_ctl_ok() or vhd_ctl_err() before returning, or
 * vhd_ctl_defer() and one of them later. */
typedef void vhd_ctl_fn(struct vhd_ctl_req *req, int argc,
			const char *const *argv);

struct vhd_ctl_cmd {
	const char *name;  /* method, e.g. "port/add" (vhostctl: port add) */
	const char *usage; /* arguments, e.g. "NAME bridge=B type=T ..." */
	int min_args, max_args;
	vhd_ctl_fn *fn;
	const char *help; /* one line */
};

/* ctl/commands.c: every command, ended by an entry with name NULL. */
extern const struct vhd_ctl_cmd vhd_ctl_cmds[];

/* Answer REQ with RESULT (a reference the server takes over; NULL means
 * JSON null). REQ is gone afterwards. */
void vhd_ctl_ok(struct vhd_ctl_req *req, json_t *result);

/* Answer REQ with an error: ERRNUM is a positive errno (EINVAL, EEXIST,
 * ENOENT, EBUSY, ...), the message says what is wrong in words a person
 * understands, naming the object. REQ is gone afterwards. */
void vhd_ctl_err(struct vhd_ctl_req *req, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answer REQ later. If the client goes away first, the server calls
 * ON_GONE(ARG) once and frees REQ: the owner must not use REQ after that.
 * While a request is deferred, the server reads no further requests from
 * that connection (replies stay in order) but still notices a hang-up. */
void vhd_ctl_defer(struct vhd_ctl_req *req, void (*on_gone)(void *arg),
		   void *arg);

/* Create the socket at PATH (mode 0660, group GROUP or the process's group
 * when GROUP is empty). A stale socket file is replaced; one that a live
 * process listens on is an error. Returns 0 or a negative errno with a
 * message in ERR. */
int vhd_ctl_open(const char *path, const char *group, char *err, size_t errlen);

/* Serve the socket: wait up to TIMEOUT_MS for activity, then accept,
 * read, dispatch and write whatever is ready without blocking. */
void vhd_ctl_run(int timeout_ms);

/* Any thread: end vhd_ctl_run's wait now (something for the control loop
 * to act on, e.g. a guest's queues changed). Nothing before vhd_ctl_open. */
void vhd_ctl_wake(void);

/* Close every client (deferred requests get ON_GONE) and the socket, and
 * remove the socket file. */
void vhd_ctl_close(void);

/* Helpers for handlers: "key=value" ARG's key copied into KEY (KLEN
 * bytes) and *VALUE pointed at what follows the '='; -EINVAL if there is no
 * '=', the key is empty or does not fit. */
int vhd_ctl_kv(const char *arg, char *key, size_t klen, const char **value);

#endif
