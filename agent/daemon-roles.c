/* SPDX-License-Identifier: Apache-2.0 */
/* The role's part of the bring-up: artifacts, cluster.env, role units and
 * the minion's registration with the apiserver. */
#include <arpa/inet.h>
#include <assert.h>
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

/* Up to ARTIFACTS_PARALLEL downloads side by side on the one curl loop;
 * the hash of a file already in place is computed off the loop's hot path
 * (artifact.c). */
enum {
        ARTIFACT_PENDING,
        ARTIFACT_RUNNING,
        ARTIFACT_DONE,
        ARTIFACT_FAILED,                /* started again with the step's retry */
};

static void artifacts_fill(NodeAgent *d);

static void artifact_problem(NodeAgent *d, const Artifact *a, int error, const char *message) {
        char reason[300];

        /* A wrong sha256 or a 4xx will not pass by itself: an operator must
         * fix the config or the server. A refused connection, a timeout or a
         * 5xx may. */
        if (error == -EBADMSG || error == -EREMOTEIO) {
                daemon_step_failed_terminal(d, STEP_ARTIFACTS, "%s", message);
                return;
        }
        snprintf(reason, sizeof reason, "artifact:%s", a->name);
        daemon_step_waiting(d, STEP_ARTIFACTS, reason, "%s", message);
}

static void on_artifact(const Artifact *a, int error, const char *message, bool changed, void *userdata) {
        NodeAgent *d = userdata;
        size_t slot = 0, i;
        char f[128];

        while (slot < ARTIFACTS_PARALLEL && (!d->art.fetch[slot] || artifact_fetch_get(d->art.fetch[slot]) != a))
                slot++;
        assert(slot < ARTIFACTS_PARALLEL);
        i = d->art.index[slot];
        d->art.fetch[slot] = artifact_fetch_free(d->art.fetch[slot]);
        if (error < 0) {
                d->art.state[i] = ARTIFACT_FAILED;
                artifact_problem(d, a, error, message ?: "artifact download failed");
                artifacts_fill(d);      /* the others go on */
                return;
        }
        d->art.state[i] = ARTIFACT_DONE;
        if (changed) {
                snprintf(f, sizeof f, "COREKUBE_ARTIFACT=%s", a->name);
                log_event(LOG_INFO, MID_ARTIFACT_INSTALLED, FIELDS(f), "Installed artifact %s at %s.", a->name,
                          a->path);
        } else
                log_info("Artifact %s is already in place with its sha256.", a->name);
        artifacts_fill(d);
}

/* Starts what may start; finishes the step when all are in place. */
static void artifacts_fill(NodeAgent *d) {
        char *const *names = config_role(d->cfg)->artifacts;
        size_t n = strv_length(names), slot = 0;
        bool all = true;
        char msg[300];
        int r;

        for (size_t i = 0; i < n; i++) {
                const Artifact *a = config_artifact(d->cfg, names[i]);

                all = all && d->art.state[i] == ARTIFACT_DONE;
                if (d->art.state[i] != ARTIFACT_PENDING)
                        continue;
                while (slot < ARTIFACTS_PARALLEL && d->art.fetch[slot])
                        slot++;
                if (slot == ARTIFACTS_PARALLEL)
                        return;
                r = artifact_fetch_start(d->event, d->curl, a, on_artifact, d, &d->art.fetch[slot]);
                if (r < 0) {
                        d->art.state[i] = ARTIFACT_FAILED;
                        snprintf(msg, sizeof msg, "artifact %s: %s", a->name, strerror(-r));
                        artifact_problem(d, a, r, msg);
                        continue;
                }
                d->art.state[i] = ARTIFACT_RUNNING;
                d->art.index[slot] = i;
        }
        if (all)
                daemon_step_done(d, STEP_ARTIFACTS);
}

void daemon_artifacts_step(NodeAgent *d) {
        size_t n = strv_length(config_role(d->cfg)->artifacts);

        if (!d->art.state) {
                d->art.state = calloc(n + 1, 1);
                if (!d->art.state) {
                        daemon_step_failed(d, STEP_ARTIFACTS, "out of memory");
                        return;
                }
        }
        /* Started again by the retry: what failed is tried again. */
        for (size_t i = 0; i < n; i++)
                if (d->art.state[i] == ARTIFACT_FAILED)
                        d->art.state[i] = ARTIFACT_PENDING;
        artifacts_fill(d);
}

void daemon_artifacts_cancel(NodeAgent *d) {
        /* The step starts over: an artifact installed already is found in
         * place with its sha256 and not fetched again. */
        for (size_t i = 0; i < ARTIFACTS_PARALLEL; i++)
                d->art.fetch[i] = artifact_fetch_free(d->art.fetch[i]);
        free(d->art.state);
        d->art.state = NULL;
}

/* ---- cluster.env ---- */

static int write_cluster_env(NodeAgent *d) {
        NodeCluster n = {
                .role = d->cfg->node.role,
                .name = d->cfg->node.name,
                .ip = d->link.addr,
                .master_ips = d->cl.master_ips,
                .etcd_endpoints = d->cfg->etcd.endpoints,
                .subnet = d->subnet,
        };
        EnvFile e = {};
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

static void on_master(int ready, const char *message, char **master_ips, void *userdata) {
        NodeAgent *d = userdata;

        if (ready <= 0) {
                /* The wait goes on (its watch says at once when a master is
                 * ready); the step's retry lists again in any case, as a
                 * watch that cannot be set up (or says nothing) must not
                 * leave us here for good. Waiting, never failed: a master
                 * comes up by itself. */
                if (!d->run[STEP_CLUSTER].retry)
                        daemon_step_waiting(d, STEP_CLUSTER, "master", "%s%s",
                                    ready < 0 ? "cannot list the machines: " : "", message);
                return;
        }
        d->cl.wait = master_wait_free(d->cl.wait);
        strv_free(d->cl.master_ips);
        d->cl.master_ips = master_ips;
        if (write_cluster_env(d) < 0) {
                daemon_step_waiting(d, STEP_CLUSTER, "files", "cannot write /run/corekube/cluster.env");
                return;
        }
        log_info("Master %s is ready.", master_ips[0]);
        daemon_step_done(d, STEP_CLUSTER);
}

void daemon_cluster_step(NodeAgent *d) {
        char ip[INET_ADDRSTRLEN];
        int r;

        if (d->cfg->node.role == ROLE_MASTER) {
                /* Other masters may exist; this node's own services talk to itself. */
                strv_free(d->cl.master_ips);
                d->cl.master_ips = calloc(2, sizeof(char *));
                if (d->cl.master_ips)
                        d->cl.master_ips[0] = strdup(inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip));
                if (!d->cl.master_ips || !d->cl.master_ips[0] || write_cluster_env(d) < 0) {
                        daemon_step_waiting(d, STEP_CLUSTER, "files", "cannot write /run/corekube/cluster.env");
                        return;
                }
                daemon_step_done(d, STEP_CLUSTER);
                return;
        }
        /* A minion needs a master that is ready: its apiserver answers. */
        if (d->cl.wait) {
                master_wait_check(d->cl.wait);
                return;
        }
        r = master_wait_new(d->etcd, d->cfg->etcd.prefix, on_master, d, &d->cl.wait);
        if (r < 0)
                daemon_step_waiting(d, STEP_CLUSTER, "master", "cannot list the machines: %s", strerror(-r));
}

void daemon_cluster_cancel(NodeAgent *d) {
        d->cl.wait = master_wait_free(d->cl.wait);
}

/* ---- role units ---- */

static void on_role_units(RoleUnits *ru, void *userdata) {
        NodeAgent *d = userdata;

        for (size_t i = 0; i < role_units_count(ru); i++)
                (void) registry_set_unit(d->registry, role_units_name(ru, i), role_units_state(ru, i));
        /* A unit's failure is role_units_error(), shown by
         * daemon_update_status() for as long as it lasts, also after ready. */
        if (daemon_step_running(d, STEP_READY) && d->units_failing != !!role_units_error(ru)) {
                d->units_failing = role_units_error(ru);
                if (d->units_failing)
                        log_warning("Node %s is %s: %s.", d->cfg->node.name,
                                    role_units_error_terminal(ru) ? "failed" : "waiting for a unit",
                                    role_units_error(ru));
                else
                        log_notice("Node %s is ready again.", d->cfg->node.name);
        }
        daemon_update_status(d);
        if (daemon_step_running(d, STEP_UNITS) && role_units_all_started(ru))
                daemon_step_done(d, STEP_UNITS);
}

void daemon_units_step(NodeAgent *d) {
        int r;

        if (d->role) {
                /* Again after a subnet change: the units run already; role-units
                 * finishes the step if some are still being started. */
                if (role_units_all_started(d->role))
                        daemon_step_done(d, STEP_UNITS);
                return;
        }
        r = role_units_new(d->event, d->units, config_role(d->cfg)->units, on_role_units, d, &d->role);
        if (r >= 0)
                r = role_units_start(d->role);
        if (r < 0)
                daemon_step_failed(d, STEP_UNITS, "cannot start the role units: %s", strerror(-r));
        else if (role_units_all_started(d->role))
                daemon_step_done(d, STEP_UNITS);
}

/* ---- minion registration with the apiserver ---- */

static void on_announce(int error, long status, const char *message, void *userdata) {
        NodeAgent *d = userdata;

        d->ann.post = minion_register_free(d->ann.post);
        if (error < 0) {
                /* The apiserver not listening yet, a 5xx, a timeout: it
                 * comes. A 4xx (but 409, "already known") says our request
                 * is wrong. */
                if (status >= 400 && status < 500)
                        daemon_step_failed_terminal(d, STEP_ANNOUNCE, "%s", message);
                else
                        daemon_step_waiting(d, STEP_ANNOUNCE, "master", "%s", message);
                return;
        }
        log_info("Registered with the apiserver (HTTP %ld).", status);
        daemon_step_done(d, STEP_ANNOUNCE);
}

void daemon_announce_step(NodeAgent *d) {
        const RoleSection *rc = config_role(d->cfg);
        _cleanup_free_ char *url = NULL, *body = NULL;
        char ip[INET_ADDRSTRLEN];

        if (d->cfg->node.role != ROLE_MINION || !rc->register_url) {
                daemon_step_done(d, STEP_ANNOUNCE);
                return;
        }
        inet_ntop(AF_INET, &d->link.addr, ip, sizeof ip);
        url = expand_placeholders(rc->register_url, d->cl.master_ips[0], ip, d->cfg->node.name);
        body = expand_placeholders(rc->register_body ?: "", d->cl.master_ips[0], ip, d->cfg->node.name);
        if (!url || !body || minion_register_post(d->curl, url, body, on_announce, d, &d->ann.post) < 0)
                daemon_step_waiting(d, STEP_ANNOUNCE, "master", "cannot POST the registration to %s", url ?: "?");
}

void daemon_announce_cancel(NodeAgent *d) {
        d->ann.post = minion_register_free(d->ann.post);
}

void daemon_roles_free(NodeAgent *d) {
        strv_free(d->cl.master_ips);
        d->cl.master_ips = NULL;
}
