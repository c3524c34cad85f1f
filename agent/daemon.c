/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "daemon-internal.h"
#include "etcd-config.h"
#include "machines.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "node-files.h"

static const char *step_state(step s) {
        switch (s) {
        case STEP_LINK:
        case STEP_REGISTER:
                return "registering";
        case STEP_NETWORK:
                return "network";
        case STEP_DOCKER:
                return "docker";
        case STEP_ARTIFACTS:
                return "artifacts";
        case STEP_CLUSTER:
        case STEP_UNITS:
        case STEP_ANNOUNCE:
                return "units";
        default:
                return "ready";
        }
}

void daemon_update_status(node_agent *d) {
        char sub[32] = "none";
        size_t n_units = d->role ? role_units_count(d->role) : strv_length(config_role(d->cfg)->units);
        size_t active = d->role ? role_units_active(d->role) : 0;
        const char *error = d->error ?: (d->role ? role_units_error(d->role) : NULL);

        if (d->have_subnet)
                format_cidr(&d->subnet, sub, sizeof sub);
        if (error)
                sd_notifyf(false, "STATUS=%s: failed (%s): %s", role_to_string(d->cfg->node.role),
                           step_state(d->step), error);
        else
                sd_notifyf(false, "STATUS=%s: %s, %zu peers, subnet %s, units %zu/%zu active",
                           role_to_string(d->cfg->node.role), step_state(d->step), d->n_peers, sub, active, n_units);
        if (d->registry)
                (void) registry_set_state(d->registry, error ? "failed" : step_state(d->step), error);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        node_agent *d = userdata;

        d->retry = sd_event_source_disable_unref(d->retry);
        d->step_busy = false;
        daemon_advance(d);
        return 0;
}

void daemon_step_failed(node_agent *d, const char *fmt, ...) {
        char f[64], delay_s[32];
        uint64_t now = 0, delay;
        va_list ap;

        free(d->error);
        va_start(ap, fmt);
        if (vasprintf(&d->error, fmt, ap) < 0)
                d->error = NULL;
        va_end(ap);
        delay = backoff_next(&d->backoff);
        snprintf(f, sizeof f, "COREKUBE_STATE=%s", step_state(d->step));
        log_event(LOG_ERR, MID_NODE_FAILED, FIELDS(f), "%s; retrying in %s.", d->error ?: "failed",
                  format_duration(delay - delay % USEC_PER_MSEC, delay_s, sizeof delay_s));
        daemon_update_status(d);
        /* The step itself may also be retried by its module (the lease, the
         * units); this timer covers the rest. */
        d->step_busy = true;
        if (!d->retry) {
                (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_add_time(d->event, &d->retry, CLOCK_MONOTONIC, now + delay, 0, on_retry, d);
        }
}

void daemon_step_done(node_agent *d) {
        free(d->error);
        d->error = NULL;
        /* A retry armed by an earlier failure of this step must not fire
         * into the next one, which may have work in flight. */
        d->retry = sd_event_source_disable_unref(d->retry);
        backoff_reset(&d->backoff);
        d->step_busy = false;
        d->step++;
        daemon_advance(d);
}

/* ---- registration ---- */

static void on_registry(Registry *r, RegistryEvent ev, int error, const char *message, void *userdata) {
        node_agent *d = userdata;
        switch (ev) {
        case REGISTRY_REGISTERED:
                /* registry.c logs the milestone itself. */
                if (d->step == STEP_REGISTER)
                        daemon_step_done(d);
                break;
        case REGISTRY_LOST:
                log_event(LOG_WARNING, MID_REGISTRATION_LOST, NULL, "Machine record lost; registering again.");
                break;
        case REGISTRY_FAILED:
                log_warning("etcd: %s", message ?: strerror(-error));
                break;
        default:
                break;
        }
}

static int register_start(node_agent *d) {
        char ip[INET_ADDRSTRLEN];
        RegistryOptions o = {
                .prefix = d->cfg->etcd.prefix,
                .machine_id = d->machine_id,
                .name = d->cfg->node.name,
                .role = role_to_string(d->cfg->node.role),
                .ip = inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip),
                .version = PACKAGE_VERSION,
                .ttl_usec = d->cfg->etcd.ttl,
        };
        int r;

        if (d->registry)
                return registry_set_ip(d->registry, ip);
        r = registry_new(&d->registry, d->etcd, d->event, &o, on_registry, d);
        if (r >= 0)
                r = registry_start(d->registry);
        return r;
}

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

static void on_docker_state(const char *unit, const unit_state *st, void *userdata) {
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
        struct stat st;

        if (d->step != STEP_DOCKER)
                return;
        if (error >= 0 && started_usec > 0 && stat(file, &st) >= 0 &&
            (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC + (uint64_t) st.st_mtim.tv_nsec / 1000 < started_usec) {
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

static void docker_step(node_agent *d) {
        const char *unit = d->cfg->docker.unit;

        if (!d->cfg->docker.restart) {
                daemon_step_done(d);
                return;
        }
        if (!d->docker_state)
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

/* ---- artifacts ---- */

static void artifacts_next(node_agent *d);

static void on_artifact(const ck_artifact *a, int error, const char *message, bool changed, void *userdata) {
        node_agent *d = userdata;
        char f[128];

        d->fetch = artifact_fetch_free(d->fetch);
        if (error < 0) {
                daemon_step_failed(d, "%s", message ?: "artifact download failed");
                return;
        }
        snprintf(f, sizeof f, "COREKUBE_ARTIFACT=%s", a->name);
        log_event(LOG_INFO, MID_ARTIFACT_INSTALLED, FIELDS(f), "Installed artifact %s at %s.", a->name, a->path);
        d->artifact_next++;
        artifacts_next(d);
}

static void artifacts_next(node_agent *d) {
        char *const *names = config_role(d->cfg)->artifacts;
        int r;

        while (names && names[d->artifact_next]) {
                const ck_artifact *a = config_artifact(d->cfg, names[d->artifact_next]);
                d->step_busy = true;
                r = artifact_fetch_start(d->curl, a, on_artifact, d, &d->fetch);
                if (r == 0)
                        return;
                if (r < 0) {
                        daemon_step_failed(d, "artifact %s: %s", a->name, strerror(-r));
                        return;
                }
                log_info("Artifact %s is already in place with its sha256.", a->name);
                d->artifact_next++;
        }
        daemon_step_done(d);
}

/* ---- cluster.env ---- */

static int write_cluster_env(node_agent *d) {
        node_cluster n = {
                .role = d->cfg->node.role,
                .name = d->cfg->node.name,
                .ip = d->link.addr,
                .master_ips = d->master_ips,
                .etcd_endpoints = d->cfg->etcd.endpoints,
                .subnet = d->subnet,
        };
        envfile e = {};
        int r;

        if (d->master_ips && d->master_ips[0])
                inet_pton(AF_INET, d->master_ips[0], &n.master_ip);
        r = node_cluster_env(&n, &e);
        if (r >= 0)
                r = write_file_atomic("/run/corekube/cluster.env", e.text, e.len, 0644);
        envfile_done(&e);
        if (r < 0)
                log_error_errno(r, "Failed to write /run/corekube/cluster.env: %m");
        return r;
}

static void masters_check(node_agent *d);

static void on_masters_watch(EtcdClient *c, int error, const char *message, const EtcdWatchResponse *resp,
                             void *userdata) {
        node_agent *d = userdata;

        if (error < 0 || !resp || resp->canceled) {
                d->masters_watch = NULL;
        }
        if (d->step == STEP_CLUSTER && !d->masters_req)
                masters_check(d);
}

static void on_masters(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        node_agent *d = userdata;
        _cleanup_free_ char *prefix = NULL;

        d->masters_req = NULL;
        if (error < 0) {
                daemon_step_failed(d, "cannot list the machines: %s", message ?: strerror(-error));
                return;
        }
        strv_free(d->master_ips);
        d->master_ips = NULL;
        if (machines_master_ips(res, &d->master_ips) < 0)
                return;
        if (!d->master_ips || !d->master_ips[0]) {
                if (!d->masters_watch && asprintf(&prefix, "%s/machines/", d->cfg->etcd.prefix) >= 0)
                        (void) etcd_watch(d->etcd, prefix, true, res->revision + 1, false, on_masters_watch,
                                          d, &d->masters_watch);
                if (!d->error) {
                        sd_notify(false, "STATUS=minion: waiting for a master to register in etcd");
                        log_info("Waiting for a master to register in etcd.");
                }
                return;
        }
        if (d->masters_watch) {
                etcd_request_cancel(d->masters_watch);
                d->masters_watch = NULL;
        }
        if (write_cluster_env(d) < 0) {
                daemon_step_failed(d, "cannot write /run/corekube/cluster.env");
                return;
        }
        daemon_step_done(d);
}

static void masters_check(node_agent *d) {
        _cleanup_free_ char *prefix = NULL;

        if (asprintf(&prefix, "%s/machines/", d->cfg->etcd.prefix) < 0)
                return;
        d->step_busy = true;
        if (etcd_range(d->etcd, prefix, true, 0, on_masters, d, &d->masters_req) < 0)
                daemon_step_failed(d, "cannot list the machines");
}

static void cluster_step(node_agent *d) {
        char ip[INET_ADDRSTRLEN];

        if (d->cfg->node.role == ROLE_MASTER) {
                /* Other masters may exist; this node's own services talk to itself. */
                strv_free(d->master_ips);
                d->master_ips = calloc(2, sizeof(char *));
                if (d->master_ips)
                        d->master_ips[0] = strdup(inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip));
                if (!d->master_ips || !d->master_ips[0] || write_cluster_env(d) < 0) {
                        daemon_step_failed(d, "cannot write /run/corekube/cluster.env");
                        return;
                }
                daemon_step_done(d);
                return;
        }
        masters_check(d);
}

/* ---- role units ---- */

static void on_role_units(role_units *ru, void *userdata) {
        node_agent *d = userdata;

        for (size_t i = 0; i < role_units_count(ru); i++)
                (void) registry_set_unit(d->registry, role_units_name(ru, i), role_units_state(ru, i));
        /* A unit's failure is role_units_error(), shown by
         * daemon_update_status() for as long as it lasts, also after ready. */
        if (d->step == STEP_READY && d->units_failing != !!role_units_error(ru)) {
                d->units_failing = role_units_error(ru);
                if (d->units_failing)
                        log_warning("Node %s is failed: %s.", d->cfg->node.name, role_units_error(ru));
                else
                        log_notice("Node %s is ready again.", d->cfg->node.name);
        }
        daemon_update_status(d);
        if (d->step == STEP_UNITS && role_units_all_started(ru))
                daemon_step_done(d);
}

static void units_step(node_agent *d) {
        int r;

        d->step_busy = true;
        if (d->role) {
                /* Again after a subnet change: the units run already; role-units
                 * finishes the step if some are still being started. */
                if (role_units_all_started(d->role))
                        daemon_step_done(d);
                return;
        }
        r = role_units_new(d->event, d->units, config_role(d->cfg)->units, on_role_units, d, &d->role);
        if (r >= 0)
                r = role_units_start(d->role);
        if (r < 0)
                daemon_step_failed(d, "cannot start the role units: %s", strerror(-r));
        else if (role_units_all_started(d->role))
                daemon_step_done(d);
}

/* ---- minion registration with the apiserver ---- */

static void on_announce(int error, long status, const char *message, void *userdata) {
        node_agent *d = userdata;

        d->announce = minion_register_free(d->announce);
        if (error < 0) {
                daemon_step_failed(d, "%s", message);
                return;
        }
        log_info("Registered with the apiserver (HTTP %ld).", status);
        daemon_step_done(d);
}

static void announce_step(node_agent *d) {
        const ck_role_config *rc = config_role(d->cfg);
        _cleanup_free_ char *url = NULL, *body = NULL;
        char ip[INET_ADDRSTRLEN];

        if (d->cfg->node.role != ROLE_MINION || !rc->register_url) {
                daemon_step_done(d);
                return;
        }
        inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip);
        url = expand_placeholders(rc->register_url, d->master_ips[0], ip, d->cfg->node.name);
        body = expand_placeholders(rc->register_body ?: "", d->master_ips[0], ip, d->cfg->node.name);
        d->step_busy = true;
        if (!url || !body || minion_register_post(d->curl, url, body, on_announce, d, &d->announce) < 0)
                daemon_step_failed(d, "cannot POST the registration to %s", url ?: "?");
}

/* ---- the state machine ---- */

void daemon_advance(node_agent *d) {
        int r;

        while (!d->step_busy) {
                daemon_update_status(d);
                switch (d->step) {
                case STEP_LINK:
                        if (daemon_link_setup(d) < 0)
                                return;
                        d->step++;
                        break;
                case STEP_REGISTER:
                        d->step_busy = true;
                        r = register_start(d);
                        if (r < 0)
                                daemon_step_failed(d, "cannot register: %s", strerror(-r));
                        return;
                case STEP_NETWORK:
                        d->step_busy = true;
                        r = daemon_network_start(d);
                        if (r < 0 && !d->error)
                                daemon_step_failed(d, "network: %s", strerror(-r));
                        return;
                case STEP_DOCKER:
                        docker_step(d);
                        return;
                case STEP_ARTIFACTS:
                        artifacts_next(d);
                        return;
                case STEP_CLUSTER:
                        cluster_step(d);
                        return;
                case STEP_UNITS:
                        units_step(d);
                        return;
                case STEP_ANNOUNCE:
                        announce_step(d);
                        return;
                case STEP_READY: {
                        const char *err = d->role ? role_units_error(d->role) : NULL;
                        char sub[32], f1[96], f2[64];

                        d->step_busy = true;
                        d->units_failing = err;
                        snprintf(f1, sizeof f1, "COREKUBE_NODE=%s", d->cfg->node.name);
                        snprintf(f2, sizeof f2, "COREKUBE_SUBNET=%s", format_cidr(&d->subnet, sub, sizeof sub));
                        if (err)
                                log_event(LOG_WARNING, MID_READY, FIELDS(f1, f2),
                                          "Node %s finished its bring-up, but is failed: %s.", d->cfg->node.name, err);
                        else
                                log_event(LOG_NOTICE, MID_READY, FIELDS(f1, f2), "Node %s is ready.", d->cfg->node.name);
                        daemon_update_status(d);
                        return;
                }
                }
        }
}

/* ---- process plumbing ---- */

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        node_agent *d = userdata;
        uint64_t interval = 0;

        (void) sd_notify(false, "WATCHDOG=1");
        (void) sd_watchdog_enabled(false, &interval);
        (void) sd_event_source_set_time(s, usec + interval / 2);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        (void) d;
        return 0;
}

static bool needs_dbus(const ck_config *c) {
        return c->docker.restart || strv_length(config_role(c)->units) > 0;
}

int daemon_run(const ck_config *c) {
        node_agent d = { .cfg = c };
        uint64_t wd = 0;
        int r;

        /* Short first retries: a minion that reaches its registration before
         * the master's apiserver listens gets in a quarter second later. */
        backoff_init(&d.backoff, 250 * USEC_PER_MSEC, 60 * USEC_PER_SEC);
        r = read_machine_id(d.machine_id);
        if (r < 0)
                return log_error_errno(r, "Failed to read /etc/machine-id: %m"), 1;

        r = sd_event_default(&d.event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m"), 1;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) sd_event_add_signal(d.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(d.event, NULL, SIGINT, NULL, NULL);
        if (sd_watchdog_enabled(false, &wd) > 0)
                (void) sd_event_add_time_relative(d.event, &d.watchdog, CLOCK_MONOTONIC, wd / 2, 0, on_watchdog, &d);

        r = etcd_client_from_config(c, d.event, 0, &d.etcd);
        if (r == -EKEYREJECTED) {
                r = 78;
                goto finish;
        }
        if (r >= 0)
                r = curl_loop_new(d.event, &d.curl);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the etcd client: %m");
                r = 1;
                goto finish;
        }
        if (needs_dbus(c)) {
                r = unit_ctl_new(d.event, NULL, &d.units);
                if (r < 0) {
                        r = 69;
                        goto finish;
                }
                if (c->docker.restart)
                        (void) unit_ctl_watch(d.units, c->docker.unit, on_docker_state, &d);
        }

        log_info("corekube-agent %s starting as %s %s.", PACKAGE_VERSION, role_to_string(c->node.role), c->node.name);
        daemon_advance(&d);
        r = sd_event_loop(d.event);
        log_info("Stopping; the overlay, the leases and the files stay for the next start.");
        sd_notify(false, "STOPPING=1");
        r = r < 0 ? 1 : 0;

finish:
        minion_register_free(d.announce);
        artifact_fetch_free(d.fetch);
        if (d.masters_req)
                etcd_request_cancel(d.masters_req);
        if (d.masters_watch)
                etcd_request_cancel(d.masters_watch);
        role_units_free(d.role);
        daemon_network_free(&d);
        registry_free(d.registry);
        unit_ctl_free(d.units);
        etcd_client_free(d.etcd);
        curl_loop_free(d.curl);
        sd_event_source_disable_unref(d.retry);
        sd_event_source_disable_unref(d.watchdog);
        sd_event_unref(d.event);
        strv_free(d.master_ips);
        free(d.docker_state);
        free(d.error);
        return r;
}
