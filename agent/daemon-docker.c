/* SPDX-License-Identifier: Apache-2.0 */
/* The Docker step: restart it when its environment changed or it is not
 * running with the current one. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon-internal.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "node-files.h"

/* ---- docker ---- */

static void docker_restart(node_agent *d);

static void on_docker_job(const char *unit, const char *result, const char *detail, void *userdata) {
        node_agent *d = userdata;
        char f[128];

        if (streq(result, "failed") && detail && streq(detail, "start-limit-hit") && !d->docker_limit_reset) {
                /* The restarts that hit the limit were ours (earlier runs
                 * of the agent, each with a new environment for it): the
                 * limit guards against a crashing Docker, which a restart
                 * after the reset still reports. */
                log_notice("%s hit its start rate limit; resetting it and restarting once more.", unit);
                d->docker_limit_reset = true;
                if (unit_ctl_reset_failed(d->units, unit) >= 0) {
                        docker_restart(d);
                        return;
                }
        }
        if (!streq(result, "done")) {
                daemon_step_failed(d, "%s: restart job %s (%s)", unit, result, detail ?: "unknown");
                return;
        }
        d->docker_limit_reset = false;
        snprintf(f, sizeof f, "COREKUBE_UNIT=%s", unit);
        log_event(LOG_INFO, MID_DOCKER_RESTARTED, FIELDS(f), "Restarted %s with the flannel options.", unit);
        d->files_changed = false;
        daemon_step_done(d);
}

void daemon_on_docker_state(const char *unit, const unit_state *st, void *userdata) {
        node_agent *d = userdata;

        free(d->docker_state);
        d->docker_state = strdup(st->active_state);
        if (d->step == STEP_DOCKER && !d->step_busy)
                daemon_advance(d);
}

static void docker_restart(node_agent *d) {
        d->step_busy = true;
        if (unit_ctl_job(d->units, "RestartUnit", d->cfg->docker.unit, on_docker_job, d) < 0)
                daemon_step_failed(d, "%s: cannot queue the restart", d->cfg->docker.unit);
}

/* Docker reads docker_opts.env when it starts: it runs with the current
 * file if it started after the file's last change. */
static void on_docker_started(const char *unit, int error, uint64_t started_usec, void *userdata) {
        node_agent *d = userdata;
        const char *file = d->cfg->network.docker_opts_file;
        uint64_t changed_usec = 0;

        if (d->step != STEP_DOCKER)
                return;
        if (error >= 0 && started_usec > 0 && node_docker_opts_mtime(d->cfg, &changed_usec) >= 0 &&
            changed_usec < started_usec) {
                log_info("%s is active and started after %s was last written; not restarting it.", unit, file);
                daemon_step_done(d);
                return;
        }
        if (error < 0)
                log_warning_errno(error, "Cannot tell when %s started (%m); restarting it.", unit);
        else
                log_info("%s runs since before %s was last written; restarting it.", unit, file);
        docker_restart(d);
}

void daemon_docker_step(node_agent *d) {
        const char *unit = d->cfg->docker.unit;

        if (!d->cfg->docker.restart) {
                daemon_step_done(d);
                return;
        }
        if (!d->docker_state)
                return;         /* on_docker_state() comes back here */
        /* Starting at boot with the persisted options: let it finish, then
         * judge; a restart now would start it twice. */
        if (!d->files_changed && (streq(d->docker_state, "activating") || streq(d->docker_state, "reloading")))
                return;         /* on_docker_state() comes back here */
        d->step_busy = true;
        if (!d->files_changed && streq(d->docker_state, "active")) {
                /* Unchanged now, but a previous run may have written them and
                 * died before the restart: on_docker_started() compares. */
                if (unit_ctl_get_u64(d->units, unit, "org.freedesktop.systemd1.Service", "ExecMainStartTimestamp",
                                     on_docker_started, d) >= 0)
                        return;
        }
        docker_restart(d);
}
