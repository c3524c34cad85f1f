/* SPDX-License-Identifier: Apache-2.0 */
/* The role's part of the bring-up: artifacts, cluster.env, role units and
 * the minion's registration with the apiserver. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon-internal.h"
#include "machines.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "node-files.h"

/* ---- artifacts ---- */


static void artifact_problem(node_agent *d, const ck_artifact *a, int error, const char *message) {
        char reason[300];

        /* A wrong sha256 or a 4xx will not pass by itself: an operator must
         * fix the config or the server. A refused connection, a timeout or a
         * 5xx may. */
        if (error == -EBADMSG || error == -EREMOTEIO) {
                daemon_step_failed_terminal(d, "%s", message);
                return;
        }
        snprintf(reason, sizeof reason, "artifact:%s", a->name);
        daemon_step_waiting(d, reason, "%s", message);
}

static void on_artifact(const ck_artifact *a, int error, const char *message, bool changed, void *userdata) {
        node_agent *d = userdata;
        char f[128];

        d->art.fetch = artifact_fetch_free(d->art.fetch);
        if (error < 0) {
                artifact_problem(d, a, error, message ?: "artifact download failed");
                return;
        }
        snprintf(f, sizeof f, "COREKUBE_ARTIFACT=%s", a->name);
        log_event(LOG_INFO, MID_ARTIFACT_INSTALLED, FIELDS(f), "Installed artifact %s at %s.", a->name, a->path);
        d->art.next++;
        daemon_artifacts_step(d);
}

void daemon_artifacts_step(node_agent *d) {
        char *const *names = config_role(d->cfg)->artifacts;
        char msg[300];
        int r;

        while (names && names[d->art.next]) {
                const ck_artifact *a = config_artifact(d->cfg, names[d->art.next]);
                r = artifact_fetch_start(d->curl, a, on_artifact, d, &d->art.fetch);
                if (r == 0)
                        return;
                if (r < 0) {
                        snprintf(msg, sizeof msg, "artifact %s: %s", a->name, strerror(-r));
                        artifact_problem(d, a, r, msg);
                        return;
                }
                log_info("Artifact %s is already in place with its sha256.", a->name);
                d->art.next++;
        }
        daemon_step_done(d);
}

void daemon_artifacts_cancel(node_agent *d) {
        /* The step starts over: an artifact installed already is found in
         * place with its sha256 and not fetched again. */
        d->art.fetch = artifact_fetch_free(d->art.fetch);
        d->art.next = 0;
}

/* ---- cluster.env ---- */

static int write_cluster_env(node_agent *d) {
        node_cluster n = {
                .role = d->cfg->node.role,
                .name = d->cfg->node.name,
                .ip = d->link.addr,
                .master_ips = d->cl.master_ips,
                .etcd_endpoints = d->cfg->etcd.endpoints,
                .subnet = d->subnet,
        };
        envfile e = {};
        int r;

        if (d->cl.master_ips && d->cl.master_ips[0])
                inet_pton(AF_INET, d->cl.master_ips[0], &n.master_ip);
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

        if (error < 0 || !resp || resp->canceled)
                d->cl.watch = NULL;
        /* A change under machines/ (or the watch's end): look again now
         * rather than at the next retry. */
        if (d->step == STEP_CLUSTER && !d->cl.list)
                masters_check(d);
}

static void on_masters(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        node_agent *d = userdata;
        _cleanup_free_ char *prefix = NULL;

        d->cl.list = NULL;
        if (error < 0) {
                daemon_step_waiting(d, "master", "cannot list the machines: %s", message ?: strerror(-error));
                return;
        }
        strv_free(d->cl.master_ips);
        d->cl.master_ips = NULL;
        if (machines_master_ips(res, &d->cl.master_ips) < 0) {
                daemon_step_waiting(d, "master", "cannot list the machines: %s", strerror(ENOMEM));
                return;
        }
        if (!d->cl.master_ips || !d->cl.master_ips[0]) {
                /* The watch says at once when a master comes; the retry of
                 * the step lists again in any case, as a watch that cannot
                 * be set up (or says nothing) must not leave us here for
                 * good. */
                if (!d->cl.watch && asprintf(&prefix, "%s/machines/", d->cfg->etcd.prefix) >= 0 &&
                    etcd_watch(d->etcd, prefix, true, res->revision + 1, false, on_masters_watch, d,
                               &d->cl.watch) < 0)
                        d->cl.watch = NULL;
                if (!d->retry)
                        daemon_step_waiting(d, "master", "no master has registered in etcd yet");
                return;
        }
        daemon_cluster_cancel(d);
        if (write_cluster_env(d) < 0) {
                daemon_step_waiting(d, "files", "cannot write /run/corekube/cluster.env");
                return;
        }
        daemon_step_done(d);
}

static void masters_check(node_agent *d) {
        _cleanup_free_ char *prefix = NULL;

        if (d->cl.list)
                return;         /* one list at a time: it calls back */
        if (asprintf(&prefix, "%s/machines/", d->cfg->etcd.prefix) < 0) {
                daemon_step_waiting(d, "master", "cannot list the machines: %s", strerror(ENOMEM));
                return;
        }
        if (etcd_range(d->etcd, prefix, true, 0, on_masters, d, &d->cl.list) < 0) {
                d->cl.list = NULL;
                daemon_step_waiting(d, "master", "cannot list the machines");
        }
}

void daemon_cluster_step(node_agent *d) {
        char ip[INET_ADDRSTRLEN];

        if (d->cfg->node.role == ROLE_MASTER) {
                /* Other masters may exist; this node's own services talk to itself. */
                strv_free(d->cl.master_ips);
                d->cl.master_ips = calloc(2, sizeof(char *));
                if (d->cl.master_ips)
                        d->cl.master_ips[0] = strdup(inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip));
                if (!d->cl.master_ips || !d->cl.master_ips[0] || write_cluster_env(d) < 0) {
                        daemon_step_waiting(d, "files", "cannot write /run/corekube/cluster.env");
                        return;
                }
                daemon_step_done(d);
                return;
        }
        masters_check(d);
}

void daemon_cluster_cancel(node_agent *d) {
        if (d->cl.list)
                etcd_request_cancel(d->cl.list);
        if (d->cl.watch)
                etcd_request_cancel(d->cl.watch);
        d->cl.list = d->cl.watch = NULL;
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
                        log_warning("Node %s is %s: %s.", d->cfg->node.name,
                                    role_units_error_terminal(ru) ? "failed" : "waiting for a unit",
                                    role_units_error(ru));
                else
                        log_notice("Node %s is ready again.", d->cfg->node.name);
        }
        daemon_update_status(d);
        if (d->step == STEP_UNITS && role_units_all_started(ru))
                daemon_step_done(d);
}

void daemon_units_step(node_agent *d) {
        int r;

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

        d->ann.post = minion_register_free(d->ann.post);
        if (error < 0) {
                /* The apiserver not listening yet, a 5xx, a timeout: it
                 * comes. A 4xx (but 409, "already known") says our request
                 * is wrong. */
                if (status >= 400 && status < 500)
                        daemon_step_failed_terminal(d, "%s", message);
                else
                        daemon_step_waiting(d, "master", "%s", message);
                return;
        }
        log_info("Registered with the apiserver (HTTP %ld).", status);
        daemon_step_done(d);
}

void daemon_announce_step(node_agent *d) {
        const ck_role_config *rc = config_role(d->cfg);
        _cleanup_free_ char *url = NULL, *body = NULL;
        char ip[INET_ADDRSTRLEN];

        if (d->cfg->node.role != ROLE_MINION || !rc->register_url) {
                daemon_step_done(d);
                return;
        }
        inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip);
        url = expand_placeholders(rc->register_url, d->cl.master_ips[0], ip, d->cfg->node.name);
        body = expand_placeholders(rc->register_body ?: "", d->cl.master_ips[0], ip, d->cfg->node.name);
        if (!url || !body || minion_register_post(d->curl, url, body, on_announce, d, &d->ann.post) < 0)
                daemon_step_waiting(d, "master", "cannot POST the registration to %s", url ?: "?");
}

void daemon_announce_cancel(node_agent *d) {
        d->ann.post = minion_register_free(d->ann.post);
}

void daemon_roles_free(node_agent *d) {
        strv_free(d->cl.master_ips);
        d->cl.master_ips = NULL;
}
