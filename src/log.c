/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log.c: where vhostd's and DPDK's log lines go: to the journal under
 * systemd, to stderr in the foreground.
 *
 * DPDK 22.11's EAL writes every rte_log line to stderr and to syslog(3) at
 * once; under systemd that is each line twice in the journal, both without
 * its logtype. Instead, rte_log's stream is ours (rte_openlog_stream, a
 * fopencookie stream): each line is written once, with the level and
 * logtype of the message rte_log is writing (rte_log_cur_msg_loglevel and
 * _logtype, kept per thread), either to stderr as "LEVEL logtype:
 * message", or as a journal entry of its own (sd_journal_send: PRIORITY,
 * SYSLOG_IDENTIFIER, VHOSTD_LOGTYPE) when stderr is the journal's stream,
 * which systemd tells by $JOURNAL_STREAM (systemd.exec(5)).
 *
 * The stream is unbuffered, so rte_log's text comes to us on the thread
 * that logs, under the stream's lock, and the per-thread level applies to
 * it. A message written in pieces is joined per thread until its newline.
 * Writing is a write(2) or a sendmsg(2): datapath lcores log rarely.
 *
 * DPDK has no call for a logtype's name by id: rte_log_dump lists them;
 * the names are kept and listed anew when an unknown id shows up (EAL
 * registers drivers' logtypes while it starts).
 */
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entries without CODE_FILE/CODE_LINE: they would all name this file. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <rte_log.h>

#include "vhd_log.h"

#define LINE_BYTES 2048 /* longer lines are cut in pieces */
#define LEVEL_MIN  ((int)RTE_LOG_EMERG)
#define LEVEL_MAX  ((int)RTE_LOG_DEBUG)

static FILE *log_stream;
static bool to_journal;

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static char **names; /* by logtype id; NULL: no such id */
static size_t n_names;

/* The message this thread is writing, up to its newline. */
static _Thread_local char line[LINE_BYTES];
static _Thread_local size_t line_len;

static const char *const level_names[] = {
    [RTE_LOG_EMERG] = "emergency", [RTE_LOG_ALERT] = "alert",
    [RTE_LOG_CRIT] = "critical",   [RTE_LOG_ERR] = "error",
    [RTE_LOG_WARNING] = "warning", [RTE_LOG_NOTICE] = "notice",
    [RTE_LOG_INFO] = "info",	   [RTE_LOG_DEBUG] = "debug",
};

/* For stderr: the names of RTE_LOG's and VHD_LOG's level argument. */
static const char *const level_tags[] = {
    [RTE_LOG_EMERG] = "EMERG",	   [RTE_LOG_ALERT] = "ALERT",
    [RTE_LOG_CRIT] = "CRIT",	   [RTE_LOG_ERR] = "ERR",
    [RTE_LOG_WARNING] = "WARNING", [RTE_LOG_NOTICE] = "NOTICE",
    [RTE_LOG_INFO] = "INFO",	   [RTE_LOG_DEBUG] = "DEBUG",
};

int vhd_log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} alias[] = {{"emerg", RTE_LOG_EMERG},
		     {"crit", RTE_LOG_CRIT},
		     {"err", RTE_LOG_ERR},
		     {"warn", RTE_LOG_WARNING}};

	if (s[0] >= '1' && s[0] <= '8' && s[1] == '\0')
		return s[0] - '0';
	for (int l = LEVEL_MIN; l <= LEVEL_MAX; l++)
		if (strcasecmp(s, level_names[l]) == 0)
			return l;
	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (strcasecmp(s, alias[i].name) == 0)
			return alias[i].level;
	return -EINVAL;
}

const char *vhd_log_level_name(int level)
{
	return level >= LEVEL_MIN && level <= LEVEL_MAX ? level_names[level]
							: "?";
}

int vhd_log_spec_parse(const char *text, struct vhd_log_spec *spec, char *err,
		       size_t errlen)
{
	const char *sep, *level;
	size_t plen;
	regex_t re;

	memset(spec, 0, sizeof(*spec));
	if (text[strcspn(text, " \t\n\r\f\v")] != '\0') {
		snprintf(err, errlen, "'%s': no spaces in a log level setting",
			 text);
		return -EINVAL;
	}
	/* As EAL parses --log-level: a ',' first, else a ':'. */
	sep = strchr(text, ',');
	spec->kind = VHD_LOG_REGEX;
	if (sep == NULL) {
		sep = strchr(text, ':');
		spec->kind = VHD_LOG_GLOB;
	}
	if (sep == NULL) {
		spec->kind = VHD_LOG_GLOBAL;
		level = text;
	} else {
		plen = (size_t)(sep - text);
		level = sep + 1;
		if (plen == 0 || plen >= sizeof(spec->pattern)) {
			snprintf(err, errlen, "'%s': the logtype pattern is %s",
				 text, plen ? "too long" : "empty");
			return -EINVAL;
		}
		memcpy(spec->pattern, text, plen);
	}
	spec->level = vhd_log_level_parse(level);
	if (spec->level < 0) {
		snprintf(
		    err, errlen,
		    "'%s' is not a log level: use emerg, alert, crit, err, "
		    "warning, notice, info, debug or 1-8",
		    level);
		return -EINVAL;
	}
	if (spec->kind == VHD_LOG_REGEX) {
		if (regcomp(&re, spec->pattern, 0) != 0) {
			snprintf(err, errlen,
				 "'%s' is not a regular expression",
				 spec->pattern);
			return -EINVAL;
		}
		regfree(&re);
	}
	return 0;
}

int vhd_log_spec_format(const struct vhd_log_spec *spec, char *out, size_t len)
{
	if (spec->kind == VHD_LOG_GLOBAL)
		return snprintf(out, len, "%s",
				vhd_log_level_name(spec->level));
	return snprintf(out, len, "%s%c%s", spec->pattern,
			spec->kind == VHD_LOG_REGEX ? ',' : ':',
			vhd_log_level_name(spec->level));
}

int vhd_log_spec_matches(const struct vhd_log_spec *spec, const char *name)
{
	regex_t re;
	int rc;

	switch (spec->kind) {
	case VHD_LOG_GLOB:
		/* The flags of rte_log_set_level_pattern and _regexp. */
		return fnmatch(spec->pattern, name, 0) == 0;
	case VHD_LOG_REGEX:
		if (regcomp(&re, spec->pattern, 0) != 0)
			return -EINVAL;
		rc = regexec(&re, name, 0, NULL, 0) == 0;
		regfree(&re);
		return rc;
	default:
		return 1;
	}
}

/* rte_log_dump's "id 12: lib.vhost.config, level is info" lines: FN(ID,
 * NAME, ARG) for each. */
static int dump_types(void (*fn)(uint32_t id, char *name, void *arg), void *arg)
{
	char *buf = NULL, *next;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return -ENOMEM;
	rte_log_dump(f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	for (char *l = buf; l && *l; l = next) {
		unsigned long id;
		char *end;
		int off = 0;

		next = strchr(l, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(l, "id %lu: %n", &id, &off) != 1 || off == 0 ||
		    id > UINT32_MAX)
			continue;
		end = strstr(l + off, ", level is ");
		if (end == NULL)
			continue;
		*end = '\0';
		fn((uint32_t)id, l + off, arg);
	}
	free(buf);
	return 0;
}

struct foreach_arg {
	void (*fn)(uint32_t id, const char *name, int level, void *arg);
	void *arg;
};

static void foreach_one(uint32_t id, char *name, void *arg)
{
	struct foreach_arg *a = arg;

	a->fn(id, name, rte_log_get_level(id), a->arg);
}

int vhd_log_types_foreach(void (*fn)(uint32_t id, const char *name, int level,
				     void *arg),
			  void *arg)
{
	struct foreach_arg a = {fn, arg};

	return dump_types(foreach_one, &a);
}

struct names_arg {
	char **v;
	size_t n;
	bool failed;
};

static void names_add(uint32_t id, char *name, void *arg)
{
	struct names_arg *a = arg;

	if (id >= a->n) {
		size_t n = id + 64;
		char **v = realloc(a->v, n * sizeof(*v));

		if (v == NULL) {
			a->failed = true;
			return;
		}
		memset(v + a->n, 0, (n - a->n) * sizeof(*v));
		a->v = v;
		a->n = n;
	}
	free(a->v[id]);
	a->v[id] = strdup(name);
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Logtype ID's name in OUT (LEN bytes). */
static void type_name(uint32_t id, char *out, size_t len)
{
	pthread_mutex_lock(&names_lock);
	if (id >= n_names || names[id] == NULL) {
		struct names_arg a = {0};

		if (dump_types(names_add, &a) == 0 && !a.failed) {
			names_free(names, n_names);
			names = a.v;
			n_names = a.n;
		} else {
			names_free(a.v, a.n);
		}
	}
	if (id < n_names && names[id])
		snprintf(out, len, "%s", names[id]);
	else
		snprintf(out, len, "logtype%u", id);
	pthread_mutex_unlock(&names_lock);
}

/* One line (without its newline) of the message this thread logs. */
static void emit(const char *text, size_t len)
{
	int level = rte_log_cur_msg_loglevel();
	char name[128];

	if (len == 0)
		return;
	/* Text written to the stream outside rte_log (level 0). */
	if (level < LEVEL_MIN || level > LEVEL_MAX)
		level = (int)RTE_LOG_INFO;
	type_name((uint32_t)rte_log_cur_msg_logtype(), name, sizeof(name));
	/* A journal that is not there: stderr (its stream) has the line. */
	if (to_journal &&
	    sd_journal_send("MESSAGE=%.*s", (int)len, text, "PRIORITY=%d",
			    level - 1, "SYSLOG_IDENTIFIER=vhostd",
			    "VHOSTD_LOGTYPE=%s", name, NULL) == 0)
		return;
	fprintf(stderr, "%s %s: %.*s\n", level_tags[level], name, (int)len,
		text);
}

static ssize_t log_write(void *cookie, const char *buf, size_t size)
{
	size_t done = 0;

	(void)cookie;
	while (done < size) {
		const char *nl = memchr(buf + done, '\n', size - done);
		size_t n = nl ? (size_t)(nl - (buf + done)) : size - done;
		size_t room = sizeof(line) - line_len;

		if (n > room)
			n = room;
		memcpy(line + line_len, buf + done, n);
		line_len += n;
		done += n;
		if (nl && buf + done == nl)
			done++;
		else if (line_len < sizeof(line))
			continue;
		emit(line, line_len);
		line_len = 0;
	}
	return (ssize_t)size;
}

/* systemd.exec(5): stderr is connected to the journal when $JOURNAL_STREAM
 * ("device:inode") names the file stderr is. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (e == NULL || sscanf(e, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    e[end] != '\0' || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

int vhd_log_open(void)
{
	static cookie_io_functions_t fns = {.write = log_write};

	log_stream = fopencookie(NULL, "w", fns);
	if (log_stream == NULL)
		return -errno;
	setvbuf(log_stream, NULL, _IONBF, 0);
	to_journal = stderr_is_journal();
	if (rte_openlog_stream(log_stream) < 0) {
		fclose(log_stream);
		log_stream = NULL;
		return -EINVAL;
	}
	return 0;
}

void vhd_log_close(void)
{
	if (log_stream == NULL)
		return;
	rte_openlog_stream(NULL);
	if (line_len)
		emit(line, line_len);
	line_len = 0;
	fclose(log_stream);
	log_stream = NULL;
	pthread_mutex_lock(&names_lock);
	names_free(names, n_names);
	names = NULL;
	n_names = 0;
	pthread_mutex_unlock(&names_lock);
}

bool vhd_log_to_journal(void)
{
	return log_stream != NULL && to_journal;
}
