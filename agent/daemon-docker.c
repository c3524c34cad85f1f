/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime step: restart the runtime's unit (docker.service) when its
 * environment changed or it is not running with the current one. Its state
 * (d->rt) is this file's alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon-internal.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "node-files.h"

static void docker_restart(NodeAgent *d);

static const char *unit_reason(NodeAgent *d, char *buf, size_t len) {
        snprintf(buf, len, "unit:%s", d->cfg->runtime.unit);
        return buf;
}

static void on_docker_job(const char *unit, const char *result, const char *detail, void *userdata) {
        NodeAgent *d = userdata;
        char f[128], r[128];

        d->rt.job_pending = false;
        if (streq(result, "failed") && detail && streq(detail, "start-limit-hit") && !d->rt.limit_reset) {
                /* The restarts that hit the limit were ours (earlier runs
                 * of the agent, each with a new environment for it): the
                 * limit guards against a crashing Docker, which a restart
                 * after the reset still reports. */
                log_notice("%s hit its start rate limit; resetting it and restarting once more.", unit);
                d->rt.limit_reset = true;
                if (unit_ctl_reset_failed(d->units, unit) >= 0) {
                        docker_restart(d);
                        return;
                }
        }
        if (!streq(result, "done")) {
                /* Three in a row is not going to pass by itself. */
                if (++d->rt.job_failures >= ROLE_UNITS_FAILED_JOBS)
                        daemon_step_failed_terminal(d, STEP_DOCKER, "%s: restart job %s (%s), %u times in a row", unit,
                                                    result, detail ?: "unknown", d->rt.job_failures);
                else
                        daemon_step_waiting(d, STEP_DOCKER, unit_reason(d, r, sizeof r), "%s: restart job %s (%s)",
                                            unit, result, detail ?: "unknown");
                return;
        }
        d->rt.limit_reset = false;
        d->rt.job_failures = 0;
        snprintf(f, sizeof f, "COREKUBE_UNIT=%s", unit);
        if (d->rt.start_only)
                log_info("Started %s; it runs with the current flannel options.", unit);
        else
                log_event(LOG_INFO, MID_DOCKER_RESTARTED, FIELDS(f), "Restarted %s with the flannel options.", unit);
        d->files_changed = false;
        daemon_step_done(d, STEP_DOCKER);
}

void daemon_on_docker_state(const char *unit, const UnitState *st, void *userdata) {
        NodeAgent *d = userdata;
        char r[128];

        free(d->rt.unit_state);
        d->rt.unit_state = st->error ? NULL : strdup(st->active_state);
        free(d->rt.state_error);
        d->rt.state_error = st->error ? strdup(st->error) : NULL;
        if (!daemon_step_running(d, STEP_DOCKER) || !d->rt.want_state)
                return;
        if (st->error) {
                /* The watch asks again with backoff and calls back. */
                daemon_step_waiting(d, STEP_DOCKER, unit_reason(d, r, sizeof r), "%s", st->error);
                return;
        }
        d->rt.want_state = false;
        daemon_docker_step(d);
}

static void docker_restart(NodeAgent *d) {
        char r[128];
        int k;

        k = unit_ctl_job(d->units, d->rt.start_only ? "StartUnit" : "RestartUnit", d->cfg->runtime.unit,
                         on_docker_job, d);
        if (k < 0) {
                daemon_step_waiting(d, STEP_DOCKER, unit_reason(d, r, sizeof r), "%s: cannot queue the restart: %s",
                                    d->cfg->runtime.unit, strerror(-k));
                return;
        }
        d->rt.job_pending = true;
}

/* Docker reads docker_opts.env when it starts: it runs with the current
 * file if it started after the file's last change. */
static void on_docker_started(const char *unit, int error, uint64_t started_usec, void *userdata) {
        NodeAgent *d = userdata;
        const char *file = d->cfg->network.docker_opts_file;
        uint64_t changed_usec = 0;

        d->rt.gets_pending--;
        if (d->rt.gets_stale > 0) {
                /* Asked before a cancel: systemd answers in order, so the
                 * stale answers are the first ones. */
                d->rt.gets_stale--;
                return;
        }
        if (!daemon_step_running(d, STEP_DOCKER))
                return;
        if (error >= 0 && started_usec > 0 && node_docker_opts_mtime(d->cfg, &changed_usec) >= 0 &&
            changed_usec < started_usec) {
                log_info("%s is active and started after %s was last written; not restarting it.", unit, file);
                daemon_step_done(d, STEP_DOCKER);
                return;
        }
        if (error < 0)
                log_warning_errno(error, "Cannot tell when %s started (%m); restarting it.", unit);
        else
                log_info("%s runs since before %s was last written; restarting it.", unit, file);
        d->rt.start_only = false;
        docker_restart(d);
}

void daemon_docker_step(NodeAgent *d) {
        const char *unit = d->cfg->runtime.unit;
        char r[128];

        if (d->cfg->runtime.kind == RUNTIME_CONTAINERD) {
                daemon_containerd_step(d);
                return;
        }
        if (!d->cfg->runtime.restart) {
                daemon_step_done(d, STEP_DOCKER);
                return;
        }
        /* Started again (a retry armed while we waited for the unit's
         * state) with our restart or our question in flight: it calls back. */
        if (d->rt.job_pending || d->rt.gets_pending > d->rt.gets_stale)
                return;
        if (!d->rt.unit_state) {
                /* daemon_on_docker_state() comes back here; the watch retries
                 * a systemd that does not answer. */
                d->rt.want_state = true;
                if (d->rt.state_error)
                        daemon_step_waiting(d, STEP_DOCKER, unit_reason(d, r, sizeof r), "%s", d->rt.state_error);
                return;
        }
        /* Starting at boot with the persisted options: let it finish, then
         * judge; a restart now would start it twice. */
        if (!d->files_changed && (streq(d->rt.unit_state, "activating") || streq(d->rt.unit_state, "reloading"))) {
                d->rt.want_state = true;        /* daemon_on_docker_state() comes back here */
                return;
        }
        if (!d->files_changed && streq(d->rt.unit_state, "active")) {
                /* Unchanged now, but a previous run may have written them and
                 * died before the restart: on_docker_started() compares. */
                if (unit_ctl_get_u64(d->units, unit, "org.freedesktop.systemd1.Service", "ExecMainStartTimestamp",
                                     on_docker_started, d) >= 0) {
                        d->rt.gets_pending++;
                        return;
                }
        }
        /* Not running, with current options (at boot: its start may still
         * be queued behind its dependencies): start it, or join the queued
         * start; a restart would be logged, and counted, for nothing. */
        d->rt.start_only = !d->files_changed && !streq(d->rt.unit_state, "active");
        docker_restart(d);
}

void daemon_docker_cancel(NodeAgent *d) {
        /* A restart in flight may run with the old environment: its result
         * is ignored, and the step queues a new one (systemd merges it into
         * the running job, which then runs again). */
        if (d->rt.job_pending && d->units)
                unit_ctl_job_detach(d->units, on_docker_job, d);
        d->rt.job_pending = false;
        d->rt.gets_stale = d->rt.gets_pending;
        d->rt.want_state = false;
}

void daemon_docker_free(NodeAgent *d) {
        free(d->rt.unit_state);
        free(d->rt.state_error);
        d->rt.unit_state = d->rt.state_error = NULL;
}
