/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "agent-lock.h"
#include "daemon-internal.h"
#include "etcd-config.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"

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
        d->net_failed = false;
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
                (void) sd_event_add_time(d->event, &d->retry, CLOCK_MONOTONIC, now + delay, USEC_PER_MSEC, on_retry, d);
        }
}

void daemon_step_done(node_agent *d) {
        free(d->error);
        d->error = NULL;
        d->net_failed = false;
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
                        /* Not d->error: that may still be the failure being retried. */
                        if (r < 0 && !d->retry)
                                daemon_step_failed(d, "network: %s", strerror(-r));
                        return;
                case STEP_DOCKER:
                        daemon_docker_step(d);
                        return;
                case STEP_ARTIFACTS:
                        daemon_artifacts_step(d);
                        return;
                case STEP_CLUSTER:
                        daemon_cluster_step(d);
                        return;
                case STEP_UNITS:
                        daemon_units_step(d);
                        return;
                case STEP_ANNOUNCE:
                        daemon_announce_step(d);
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

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        daemon_network_reload(userdata);
        return 0;
}

static bool needs_dbus(const ck_config *c) {
        return c->docker.restart || strv_length(config_role(c)->units) > 0;
}

int daemon_run(const ck_config *c) {
        node_agent d = { .cfg = c };
        _cleanup_close_ int lock_fd = -1;
        uint64_t wd = 0;
        int r;

        /* Held until we exit: two agents on one node would fight over its
         * record, subnet and devices, and `leave` looks for the holder. */
        r = agent_lock_take(&lock_fd);
        if (r == -EWOULDBLOCK)
                return log_error("Another corekube-agent (PID %d) holds %s; two agents on one node would fight. Exiting.",
                                 (int) agent_lock_holder(lock_fd), AGENT_LOCK_PATH), 1;
        if (r < 0)
                return log_error_errno(r, "Failed to lock %s: %m", AGENT_LOCK_PATH), 1;
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
        sigaddset(&ss, SIGHUP);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void) sd_event_add_signal(d.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(d.event, NULL, SIGINT, NULL, NULL);
        (void) sd_event_add_signal(d.event, NULL, SIGHUP, on_sighup, &d);
        if (sd_watchdog_enabled(false, &wd) > 0)
                (void) sd_event_add_time_relative(d.event, &d.watchdog, CLOCK_MONOTONIC, wd / 2, wd / 20, on_watchdog, &d);

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
                /* Without it the Docker step would wait for its state forever. */
                if (c->docker.restart && unit_ctl_watch(d.units, c->docker.unit, daemon_on_docker_state, &d) < 0) {
                        r = 69;
                        goto finish;
                }
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
