/* SPDX-License-Identifier: Apache-2.0 */
#include "daemon.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "agent-lock.h"
#include "daemon-internal.h"
#include "etcd-config.h"
#include "machine-id.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"

static void *mfree(void *p) {
        free(p);
        return NULL;
}

/* ---- the steps ---- */

static void link_start(NodeAgent *d);
static void register_step(NodeAgent *d);
static void network_start(NodeAgent *d);
static void ready_start(NodeAgent *d);

typedef struct StepOps {
        const char *name;               /* for the journal */
        const char *state;              /* the record's state while it is the earliest unfinished step */
        void (*start)(NodeAgent *d);    /* called with busy set; ends in done, failed or waiting */
        void (*cancel)(NodeAgent *d);   /* drops what it has in flight; NULL: nothing ever is */
        unsigned after;                 /* the steps (AFTER()) that must be done before it starts */
} StepOps;

#define AFTER(s) (1u << (s))

/* Each step needs only what it uses: the registration and the network
 * both need the link's address, nothing of each other; the runtime needs
 * the network's files; the downloads need nothing of the runtime; the
 * master's address (cluster) is looked up once all that stands. Steps
 * only need steps above them. */
static const StepOps steps[_STEP_MAX] = {
        [STEP_LINK]      = { "link",      "registering", link_start,            NULL, 0 },
        [STEP_REGISTER]  = { "register",  "registering", register_step,         NULL, AFTER(STEP_LINK) },
        [STEP_NETWORK]   = { "network",   "network",     network_start,         NULL, AFTER(STEP_LINK) },
        [STEP_DOCKER]    = { "runtime",   "runtime",     daemon_docker_step,    daemon_docker_cancel,
                             AFTER(STEP_NETWORK) },
        [STEP_ARTIFACTS] = { "artifacts", "artifacts",   daemon_artifacts_step, daemon_artifacts_cancel,
                             AFTER(STEP_NETWORK) },
        [STEP_CLUSTER]   = { "cluster",   "units",       daemon_cluster_step,   daemon_cluster_cancel,
                             AFTER(STEP_REGISTER) | AFTER(STEP_DOCKER) | AFTER(STEP_ARTIFACTS) },
        [STEP_UNITS]     = { "units",     "units",       daemon_units_step,     NULL, AFTER(STEP_CLUSTER) },
        [STEP_ANNOUNCE]  = { "announce",  "units",       daemon_announce_step,  daemon_announce_cancel,
                             AFTER(STEP_UNITS) },
        [STEP_READY]     = { "ready",     "ready",       ready_start,           NULL, AFTER(STEP_ANNOUNCE) },
};

static const char *step_state(Step s) {
        return s < _STEP_MAX ? steps[s].state : "ready";
}

/* Every step s needs, directly or through others. */
static unsigned needs(Step s) {
        unsigned m = steps[s].after;

        for (Step t = 0; t < s; t++)
                if (m & AFTER(t))
                        m |= needs(t);
        return m;
}

bool daemon_step_running(NodeAgent *d, Step s) {
        return d->run[s].started && !d->run[s].done;
}

/* What a step waits for when it does not say. */
static const char *default_reason(NodeAgent *d, Step s, char *buf, size_t len) {
        switch (s) {
        case STEP_REGISTER:
                return "etcd";
        case STEP_DOCKER:
                snprintf(buf, len, "unit:%s", d->cfg->runtime.unit);
                return buf;
        case STEP_ARTIFACTS:
        case STEP_UNITS:
                snprintf(buf, len, "%s", steps[s].name);
                return buf;
        case STEP_CLUSTER:
        case STEP_ANNOUNCE:
                return "master";
        default:
                return "network";
        }
}

/* ---- where the node is: STATUS=, the record ---- */

void daemon_update_status(NodeAgent *d) {
        const char *role = role_to_string(d->cfg->node.role);
        char sub[32] = "none", ureason[300];
        size_t n_units = d->role ? role_units_count(d->role) : strv_length(config_role(d->cfg)->units);
        size_t active = d->role ? role_units_active(d->role) : 0;
        const char *unit_error = d->role ? role_units_error(d->role) : NULL;
        const char *state = step_state(d->step), *reason = NULL, *message = NULL;
        const StepRun *terminal = NULL, *waiting = NULL;
        bool failed = false;

        /* Steps run side by side: the earliest one's problem is shown. */
        for (Step s = 0; s < _STEP_MAX; s++) {
                const StepRun *r = &d->run[s];

                if (r->error && r->terminal && !terminal)
                        terminal = r;
                if (r->error && !r->terminal && !waiting)
                        waiting = r;
        }
        /* One problem is shown: a terminal one first, then the network's
         * (it takes traffic), then a step's own, then a role unit's. */
        if (terminal) {
                failed = true;
                message = terminal->error;
        } else if (unit_error && role_units_error_terminal(d->role)) {
                failed = true;
                message = unit_error;
        } else if (d->net_error) {
                reason = d->net_reason ?: "network";
                message = d->net_error;
        } else if (waiting) {
                reason = waiting->reason ?: "unknown";
                message = waiting->error;
        } else if (unit_error) {
                snprintf(ureason, sizeof ureason, "unit:%s", role_units_error_unit(d->role) ?: "?");
                reason = ureason;
                message = unit_error;
        }

        if (d->have_subnet)
                format_cidr(&d->subnet, sub, sizeof sub);
        if (failed)
                sd_notifyf(false, "STATUS=%s: failed (%s): %s", role, state, message);
        else if (d->etcd_error)
                /* Ahead of a wait: nothing else can be recorded meanwhile. */
                sd_notifyf(false, "STATUS=%s: waiting (etcd): %s", role, d->etcd_error);
        else if (reason)
                sd_notifyf(false, "STATUS=%s: waiting (%s): %s", role, reason, message);
        else
                sd_notifyf(false, "STATUS=%s: %s, %zu peers, subnet %s, units %zu/%zu active", role, state,
                           d->n_peers, sub, active, n_units);
        if (d->registry)
                (void) registry_set_waiting(d->registry, failed ? "failed" : reason ? "waiting" : state, reason,
                                            message);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        StepRun *r = userdata;

        r->retry = sd_event_source_disable_unref(r->retry);
        r->busy = false;
        daemon_advance(r->d);
        return 0;
}

static void step_problem(NodeAgent *d, Step s, bool terminal, const char *reason, const char *fmt, va_list ap)
        __attribute__((format(printf, 5, 0)));
static void step_problem(NodeAgent *d, Step s, bool terminal, const char *reason, const char *fmt, va_list ap) {
        StepRun *r = &d->run[s];
        char f[64], fr[340], delay_s[32], rbuf[300];
        uint64_t now = 0, delay;
        char *msg = NULL;

        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        if (r->done) {
                /* Late news of a step already done: not the node's
                 * problem any more. */
                log_debug("The %s step is done; ignoring: %s", steps[s].name, msg ?: "?");
                free(msg);
                return;
        }
        if (!terminal && !reason)
                reason = default_reason(d, s, rbuf, sizeof rbuf);
        delay = backoff_next(&r->backoff);
        format_duration(delay - delay % USEC_PER_MSEC, delay_s, sizeof delay_s);
        snprintf(f, sizeof f, "COREKUBE_STATE=%s", step_state(s));
        if (terminal)
                log_event(LOG_ERR, MID_NODE_FAILED, FIELDS(f), "%s; retrying in %s.", msg ?: "failed", delay_s);
        else {
                snprintf(fr, sizeof fr, "COREKUBE_REASON=%s", reason);
                /* A wait is expected (a master not up yet): notice, not warning. */
                log_event(LOG_NOTICE, MID_NODE_WAITING, FIELDS(f, fr), "Waiting (%s): %s; retrying in %s.", reason,
                          msg ?: "not yet", delay_s);
        }
        free(r->error);
        r->error = msg;
        free(r->reason);
        r->reason = terminal ? NULL : strdup(reason);
        r->terminal = terminal;
        daemon_update_status(d);
        /* The step itself may also be retried by its module (the lease, the
         * units); this timer covers the rest. */
        r->busy = true;
        if (!r->retry) {
                (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_add_time(d->event, &r->retry, CLOCK_MONOTONIC, now + delay, USEC_PER_MSEC,
                                         on_retry, r);
        }
}

void daemon_step_failed(NodeAgent *d, Step s, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        step_problem(d, s, false, NULL, fmt, ap);
        va_end(ap);
}

void daemon_step_waiting(NodeAgent *d, Step s, const char *reason, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        step_problem(d, s, false, reason, fmt, ap);
        va_end(ap);
}

void daemon_step_failed_terminal(NodeAgent *d, Step s, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        step_problem(d, s, true, NULL, fmt, ap);
        va_end(ap);
}

/* Back to not started: no problem, no retry, a fresh backoff. */
static void step_reset(StepRun *r) {
        r->error = mfree(r->error);
        r->reason = mfree(r->reason);
        r->terminal = false;
        /* A retry armed by an earlier failure of this step must not fire
         * into a later run of it, which may have work in flight. */
        r->retry = sd_event_source_disable_unref(r->retry);
        backoff_reset(&r->backoff);
        r->busy = r->done = r->started = false;
}

void daemon_step_done(NodeAgent *d, Step s) {
        StepRun *r = &d->run[s];

        step_reset(r);
        r->started = r->done = true;
        daemon_advance(d);
}

void daemon_subnet_moved(NodeAgent *d) {
        /* What a step that needs the network has in flight would call back
         * into a step started again (a second download, a step skipped,
         * Docker ending on the old --bip): drop it all; each step does it
         * again. A cancel is harmless for a step that has nothing in flight. */
        log_notice("The subnet moved while at the %s step; starting again from the %s step.",
                   steps[d->step].name, steps[STEP_DOCKER].name);
        for (Step s = 0; s < _STEP_MAX; s++) {
                if (!(needs(s) & AFTER(STEP_NETWORK)))
                        continue;
                if (steps[s].cancel)
                        steps[s].cancel(d);
                step_reset(&d->run[s]);
        }
        daemon_advance(d);
}

/* ---- registration ---- */

static void on_registry(Registry *r, RegistryEvent ev, int error, const char *message, void *userdata) {
        NodeAgent *d = userdata;
        const char *m = message ?: strerror(-error);

        if (!m)         /* never; but gcc -fsanitize cannot tell (-Wformat-overflow) */
                m = "unknown error";

        switch (ev) {
        case REGISTRY_REGISTERED:
        case REGISTRY_WRITTEN:
        case REGISTRY_RENEWED:
                if (d->etcd_error) {
                        d->etcd_error = mfree(d->etcd_error);
                        log_notice("etcd takes the machine record again.");
                        daemon_update_status(d);
                }
                /* registry.c logs the milestone itself. */
                if (ev == REGISTRY_REGISTERED && daemon_step_running(d, STEP_REGISTER))
                        daemon_step_done(d, STEP_REGISTER);
                break;
        case REGISTRY_LOST:
                log_event(LOG_WARNING, MID_REGISTRATION_LOST, NULL, "Machine record lost; registering again.");
                break;
        case REGISTRY_FAILED:
                /* The record cannot say it: STATUS= and the journal do.
                 * registry.c retries with backoff. */
                if (!d->etcd_error || !streq(d->etcd_error, m)) {
                        log_event(LOG_WARNING, MID_NODE_WAITING, FIELDS("COREKUBE_REASON=etcd"),
                                  "Waiting (etcd): %s; retrying.", m);
                        free(d->etcd_error);
                        d->etcd_error = strdup(m);
                        daemon_update_status(d);
                }
                break;
        default:
                break;
        }
}

static int register_start(NodeAgent *d) {
        char ip[INET_ADDRSTRLEN];
        RegistryOptions o = {
                .prefix = d->cfg->etcd.prefix,
                .machine_id = d->node_id,
                .legacy_id = d->machine_id,
                .name = d->cfg->node.name,
                .role = role_to_string(d->cfg->node.role),
                .ip = inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip),
                .version = PACKAGE_VERSION,
                .ttl_usec = d->cfg->etcd.ttl,
        };
        int r;

        if (d->registry)
                return registry_set_ip(d->registry, ip);
        r = registry_new(d->etcd, d->event, &o, on_registry, d, &d->registry);
        if (r >= 0 && d->have_subnet) {
                /* The network ran ahead of us: the first write has it. */
                char sub[32];

                r = registry_set_subnet(d->registry, format_cidr(&d->subnet, sub, sizeof sub));
        }
        if (r >= 0)
                r = registry_start(d->registry);
        if (r < 0)
                d->registry = registry_free(d->registry);
        return r;
}

static void register_step(NodeAgent *d) {
        int r = register_start(d);

        if (r < 0)
                daemon_step_failed(d, STEP_REGISTER, "cannot register: %s", strerror(-r));
}

static void link_start(NodeAgent *d) {
        if (daemon_link_setup(d) >= 0)
                daemon_step_done(d, STEP_LINK);
}

static void network_start(NodeAgent *d) {
        int r = daemon_network_start(d);

        /* Not its error: that may still be the failure being retried. */
        if (r < 0 && !d->run[STEP_NETWORK].retry)
                daemon_step_failed(d, STEP_NETWORK, "network: %s", strerror(-r));
}

static void ready_start(NodeAgent *d) {
        const char *err = d->role ? role_units_error(d->role) : NULL;
        char sub[32], f1[96], f2[64];

        d->units_failing = err;
        snprintf(f1, sizeof f1, "COREKUBE_NODE=%s", d->cfg->node.name);
        snprintf(f2, sizeof f2, "COREKUBE_SUBNET=%s", format_cidr(&d->subnet, sub, sizeof sub));
        if (err)
                log_event(LOG_WARNING, MID_READY, FIELDS(f1, f2), "Node %s finished its bring-up, but a unit is not: %s.",
                          d->cfg->node.name, err);
        else
                log_event(LOG_NOTICE, MID_READY, FIELDS(f1, f2), "Node %s is ready.", d->cfg->node.name);
        daemon_update_status(d);
}

/* ---- the state machine ---- */

static Step earliest_unfinished(NodeAgent *d) {
        Step s = 0;

        while (s < STEP_READY && d->run[s].done)
                s++;
        return s;
}

void daemon_advance(NodeAgent *d) {
        /* A step's start() ends in daemon_step_done() (which comes back here
         * for the ones after it), in a failure or wait with its retry armed,
         * or with work in flight that calls back. Each step that may start
         * does, in the table's order. */
        d->step = earliest_unfinished(d);
        daemon_update_status(d);
        for (Step s = 0; s < _STEP_MAX; s++) {
                StepRun *r = &d->run[s];
                unsigned after = steps[s].after;
                bool ready = true;

                for (Step t = 0; t < s && ready; t++)
                        if ((after & AFTER(t)) && !d->run[t].done)
                                ready = false;
                if (!ready || r->done || r->busy)
                        continue;
                r->busy = r->started = true;
                if (s != d->step)
                        log_debug("Starting the %s step beside the %s step.", steps[s].name, steps[d->step].name);
                steps[s].start(d);
        }
}

/* ---- process plumbing ---- */

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        daemon_network_reload(userdata);
        return 0;
}

static bool needs_dbus(const AgentConfig *c) {
        return daemon_runtime_watched(c) || strv_length(config_role(c)->units) > 0;
}

int daemon_run(const AgentConfig *c) {
        NodeAgent d = { .cfg = c };
        _cleanup_close_ int lock_fd = -1;
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
        for (Step s = 0; s < _STEP_MAX; s++) {
                d.run[s] = (StepRun) { .d = &d };
                backoff_init(&d.run[s].backoff, 250 * USEC_PER_MSEC, 60 * USEC_PER_SEC);
        }
        backoff_init(&d.masq_backoff, 250 * USEC_PER_MSEC, 60 * USEC_PER_SEC);
        r = machine_id_raw(d.machine_id);
        if (r >= 0)
                r = machine_id_node(d.node_id);
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
        /* sd-event pings WatchdogSec= (the unit sets it) from the loop itself, so
         * a loop that hangs is restarted. */
        r = sd_event_set_watchdog(d.event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the service watchdog, continuing without: %m");

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
                /* Without it the runtime step would wait for its state forever. */
                if (daemon_runtime_watched(c) &&
                    unit_ctl_watch(d.units, c->runtime.unit, daemon_on_docker_state, &d) < 0) {
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
        for (Step s = 0; s < _STEP_MAX; s++) {
                if (steps[s].cancel)
                        steps[s].cancel(&d);
                step_reset(&d.run[s]);
        }
        daemon_roles_free(&d);
        daemon_docker_free(&d);
        role_units_free(d.role);
        daemon_network_free(&d);
        registry_free(d.registry);
        unit_ctl_free(d.units);
        etcd_client_free(d.etcd);
        curl_loop_free(d.curl);
        sd_event_unref(d.event);
        free(d.net_error);
        free(d.etcd_error);
        return r;
}
