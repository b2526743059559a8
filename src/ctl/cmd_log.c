/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl/cmd_log.c: log levels at run time, as OVS's vlog/list and vlog/set:
 * log/list shows every logtype (DPDK's and vhostd's) with its level,
 * log/set changes them by the patterns EAL's --log-level takes.
 *
 * A change is also kept in the running config's log-level key (a list of
 * --log-level settings, applied in order at start), so that config show
 * and config save write it: the new setting goes last, and earlier ones
 * whose every logtype it overrides are dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "cmds.h"
#include "vhd.h"
#include "vhd_log.h"

struct row {
	char *name;
	uint32_t id;
};

struct rows {
	struct row *v;
	size_t n, cap;
	const struct vhd_log_spec *filter; /* NULL: every logtype */
	bool failed;
};

static void rows_add(uint32_t id, const char *name, int level, void *arg)
{
	struct rows *r = arg;

	(void)level;
	if (r->failed ||
	    (r->filter && vhd_log_spec_matches(r->filter, name) <= 0))
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 256;
		struct row *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL) {
			r->failed = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].name = strdup(name);
	r->v[r->n].id = id;
	if (r->v[r->n].name == NULL)
		r->failed = true;
	else
		r->n++;
}

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
}

/* The logtypes matching FILTER (NULL: all), or -ENOMEM. */
static int rows_get(struct rows *r, const struct vhd_log_spec *filter)
{
	memset(r, 0, sizeof(*r));
	r->filter = filter;
	if (vhd_log_types_foreach(rows_add, r) < 0 || r->failed) {
		rows_free(r);
		return -ENOMEM;
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->name,
		      ((const struct row *)b)->name);
}

/* [{"logtype": "vhostd.port", "level": "debug"}, ...] by name, the levels
 * as they are now. */
static json_t *rows_json(struct rows *r)
{
	json_t *out = json_array();

	qsort(r->v, r->n, sizeof(*r->v), by_name);
	for (size_t i = 0; i < r->n; i++)
		json_array_append_new(
		    out,
		    json_pack(
			"{s:s, s:s}", "logtype", r->v[i].name, "level",
			vhd_log_level_name(rte_log_get_level(r->v[i].id))));
	return out;
}

void vhd_cmd_log_list(struct vhd_ctl_req *req, int argc,
		      const char *const *argv)
{
	struct vhd_log_spec spec = {.kind = VHD_LOG_GLOB};
	struct rows r;

	if (argc == 1) {
		if (strlen(argv[0]) >= sizeof(spec.pattern)) {
			vhd_ctl_err(req, EINVAL, "logtype pattern too long");
			return;
		}
		snprintf(spec.pattern, sizeof(spec.pattern), "%s", argv[0]);
	}
	if (rows_get(&r, argc ? &spec : NULL) < 0) {
		vhd_ctl_err(req, ENOMEM, "out of memory");
		return;
	}
	if (r.n == 0)
		vhd_ctl_err(req, ENOENT,
			    "no logtype matches '%s' (log list "
			    "shows them all)",
			    argv[0]);
	else
		vhd_ctl_ok(req, rows_json(&r));
	rows_free(&r);
}

/* Whether every logtype that OLD matches, NEW matches too (then NEW, set
 * after it, overrides OLD everywhere). */
static bool overridden(const struct vhd_log_spec *old,
		       const struct vhd_log_spec *new, const struct rows *all)
{
	bool any = false;

	if (old->kind == new->kind && strcmp(old->pattern, new->pattern) == 0)
		return true;
	if (old->kind == VHD_LOG_GLOBAL)
		return false;
	for (size_t i = 0; i < all->n; i++) {
		if (vhd_log_spec_matches(old, all->v[i].name) <= 0)
			continue;
		if (vhd_log_spec_matches(new, all->v[i].name) <= 0)
			return false;
		any = true;
	}
	return any;
}

/* The log-level key CUR with SPEC added, in OUT (LEN bytes); -ENOSPC if it
 * does not fit. */
static int config_with(const char *cur, const struct vhd_log_spec *spec,
		       const struct rows *all, char *out, size_t len)
{
	char *copy = strdup(cur), *save = NULL, err[256];
	size_t used = 0;
	int n;

	if (copy == NULL)
		return -ENOMEM;
	out[0] = '\0';
	for (char *w = strtok_r(copy, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		struct vhd_log_spec old;

		if (vhd_log_spec_parse(w, &old, err, sizeof(err)) == 0 &&
		    overridden(&old, spec, all))
			continue;
		n = snprintf(out + used, len - used, "%s ", w);
		if (n < 0 || (size_t)n >= len - used)
			goto full;
		used += (size_t)n;
	}
	n = vhd_log_spec_format(spec, out + used, len - used);
	if (n < 0 || (size_t)n >= len - used)
		goto full;
	free(copy);
	return 0;
full:
	free(copy);
	return -ENOSPC;
}

void vhd_cmd_log_set(struct vhd_ctl_req *req, int argc, const char *const *argv)
{
	struct vhd_log_spec spec;
	struct rows all, hit;
	char err[256], conf[sizeof(vhd_running->log_level)];
	int n, rc;

	/* LEVEL, PATTERN LEVEL, or one --log-level setting. */
	if (argc == 2 && strpbrk(argv[0], ",: \t") != NULL) {
		vhd_ctl_err(
		    req, EINVAL,
		    "'%s': a logtype pattern holds no ',', ':' or space",
		    argv[0]);
		return;
	}
	if (argc == 2 || strpbrk(argv[0], ",:") == NULL) {
		const char *level = argv[argc - 1];

		if (vhd_log_level_parse(level) < 0) {
			vhd_ctl_err(
			    req, EINVAL,
			    "'%s' is not a log level: use emerg, alert, "
			    "crit, err, warning, notice, info, debug or "
			    "1-8",
			    level);
			return;
		}
		n = snprintf(conf, sizeof(conf), "%s:%s",
			     argc == 2 ? argv[0] : "vhostd.*", level);
	} else {
		n = snprintf(conf, sizeof(conf), "%s", argv[0]);
	}
	if (n < 0 || (size_t)n >= sizeof(conf)) {
		vhd_ctl_err(req, EINVAL, "logtype pattern too long");
		return;
	}
	if (vhd_log_spec_parse(conf, &spec, err, sizeof(err)) < 0) {
		vhd_ctl_err(req, EINVAL, "%s", err);
		return;
	}
	if (rows_get(&all, NULL) < 0) {
		vhd_ctl_err(req, ENOMEM, "out of memory");
		return;
	}
	if (rows_get(&hit, &spec) < 0) {
		rows_free(&all);
		vhd_ctl_err(req, ENOMEM, "out of memory");
		return;
	}
	if (hit.n == 0) {
		vhd_ctl_err(req, ENOENT,
			    "no logtype matches '%s' (log list shows them all)",
			    spec.pattern);
		goto out;
	}
	rc = config_with(vhd_running ? vhd_running->log_level : "", &spec, &all,
			 conf, sizeof(conf));
	if (rc == -ENOSPC) {
		vhd_ctl_err(req, ENOSPC,
			    "the config's log-level would be longer than %zu "
			    "bytes: set a broader pattern",
			    sizeof(conf) - 1);
		goto out;
	} else if (rc < 0) {
		vhd_ctl_err(req, -rc, "out of memory");
		goto out;
	}
	rc =
	    spec.kind == VHD_LOG_REGEX
		? rte_log_set_level_regexp(spec.pattern, (uint32_t)spec.level)
		: rte_log_set_level_pattern(spec.pattern, (uint32_t)spec.level);
	if (rc < 0) {
		vhd_ctl_err(req, EINVAL, "DPDK refused level %s for '%s'",
			    vhd_log_level_name(spec.level), spec.pattern);
		goto out;
	}
	if (vhd_running)
		snprintf(vhd_running->log_level, sizeof(vhd_running->log_level),
			 "%s", conf);
	VHD_LOG(INFO, main, "log level of %s set to %s", spec.pattern,
		vhd_log_level_name(spec.level));
	vhd_ctl_ok(req, rows_json(&hit));
out:
	rows_free(&all);
	rows_free(&hit);
}
