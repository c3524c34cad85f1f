/* SPDX-License-Identifier: Apache-2.0 */
/* `corekube-agent status`: the cluster as etcd sees it (every machine
 * record, plus subnet leases nobody's record claims), and --wait: block
 * until this node's record says ready, through a watch on that one key. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli-etcd.h"
#include "etcd-config.h"
#include "cli.h"
#include "ip4-util.h"
#include "log.h"
#include "machine-id.h"
#include "machines.h"
#include "macro.h"
#include "netsetup.h"
#include "network-config.h"
#include "subnet-record.h"
#include "term-escape.h"

/* A subnet lease without a machine record: a real flanneld node, or an
 * agent that died or was removed without `leave`. */
typedef struct OrphanLease {
        char subnet[IP4_STRLEN + 3];
        char public_ip[IP4_STRLEN];
        char vtep_mac[MAC_STRLEN];
} OrphanLease;

typedef struct StatusCommand {
        const AgentConfig *cfg;
        const CliArgs *args;
        sd_event *event;
        EtcdClient *etcd;
        char node_id[33];               /* app-specific: our record's key */
        bool have_node_id;
        char *own_key;
        char *endpoints;

        /* --wait */
        usec_t timeout;
        sd_event_source *timer;
        EtcdRequest *wait_req;
        EtcdRequest *watch;
        char *own_state;                /* NULL: no record seen */
        char *own_reason;               /* with own_state waiting */
        char *last_error;               /* etcd trouble while waiting */
        bool said_waiting;
        bool read_once;                 /* etcd answered at least once */

        /* the table */
        EtcdRequest *list_req;
        MachineRecord *machines;
        size_t n_machines;
        OrphanLease *orphans;
        size_t n_orphans;
        unsigned n_probes;              /* lease TTL look-ups in flight */
} StatusCommand;

static void finish(StatusCommand *s, int code) {
        (void) sd_event_exit(s->event, code);
}

/* ---- output ---- */

static bool is_self(const StatusCommand *s, const MachineRecord *m) {
        return s->have_node_id && m->id && streq(m->id, s->node_id);
}

enum { COL_NAME, COL_ROLE, COL_IP, COL_SUBNET, COL_STATE, COL_UNITS, COL_SEEN, _COL_MAX };

static void print_row(const char *const cells[_COL_MAX], const size_t width[_COL_MAX]) {
        for (size_t i = 0; i < _COL_MAX; i++) {
                if (i == _COL_MAX - 1)
                        printf("%s\n", cells[i]);
                else
                        printf("%-*s  ", (int) width[i], cells[i]);
        }
}

/* "waiting (master)": the state with what it waits for. */
static const char *state_cell(const MachineRecord *m, char *buf, size_t len) {
        if (strempty(m->state))
                return "?";
        if (!streq(m->state, "waiting") || strempty(m->reason))
                return m->state;
        snprintf(buf, len, "waiting (%s)", m->reason);
        return buf;
}

static void row_cells(const StatusCommand *s, size_t i, time_t now, char units[static 32], char seen[static 32],
                      char state[static 128], const char *c[static _COL_MAX]) {
        if (i < s->n_machines) {
                const MachineRecord *m = &s->machines[i];

                snprintf(units, 32, "%zu/%zu", m->n_active, m->n_units);
                format_seen(machine_seen_ago(m, now), seen, 32);
                c[COL_NAME] = m->name;
                c[COL_ROLE] = m->role;
                c[COL_IP] = strempty(m->ip) ? "-" : m->ip;
                c[COL_SUBNET] = strempty(m->subnet) ? "-" : m->subnet;
                c[COL_STATE] = state_cell(m, state, 128);
        } else {
                const OrphanLease *o = &s->orphans[i - s->n_machines];

                snprintf(units, 32, "-");
                snprintf(seen, 32, "-");
                c[COL_NAME] = "-";
                c[COL_ROLE] = "-";
                c[COL_IP] = o->public_ip;
                c[COL_SUBNET] = o->subnet;
                c[COL_STATE] = "lease-only";
        }
        c[COL_UNITS] = units;
        c[COL_SEEN] = seen;
}

static int print_table(const StatusCommand *s) {
        static const char *const head[_COL_MAX] = { "NAME", "ROLE", "IP", "SUBNET", "STATE", "UNITS", "SEEN" };
        size_t n = s->n_machines + s->n_orphans, width[_COL_MAX];
        _cleanup_free_ char (*units)[32] = calloc(n + 1, sizeof *units);
        _cleanup_free_ char (*seen)[32] = calloc(n + 1, sizeof *seen);
        _cleanup_free_ char (*state)[128] = calloc(n + 1, sizeof *state);
        _cleanup_free_ const char *(*cells)[_COL_MAX] = calloc(n + 1, sizeof *cells);
        time_t now = time(NULL);

        if (!units || !seen || !state || !cells || machines_escape(s->machines, s->n_machines) < 0)
                return log_error_errno(-ENOMEM, "Out of memory.");
        if (n == 0) {
                printf("No machine records under %s/machines/ and no subnet leases.\n", s->cfg->etcd.prefix);
                return 0;
        }
        for (size_t k = 0; k < _COL_MAX; k++)
                width[k] = strlen(head[k]);
        for (size_t i = 0; i < n; i++) {
                row_cells(s, i, now, units[i], seen[i], state[i], cells[i]);
                for (size_t k = 0; k < _COL_MAX; k++)
                        if (strlen(cells[i][k]) > width[k])
                                width[k] = strlen(cells[i][k]);
        }
        print_row(head, width);
        for (size_t i = 0; i < n; i++)
                print_row(cells[i], width);
        for (size_t i = 0; i < s->n_machines; i++)
                if (s->machines[i].error)
                        printf("%s: %s\n", s->machines[i].name, s->machines[i].error);
                else if (s->machines[i].message)
                        printf("%s: %s\n", s->machines[i].name, s->machines[i].message);
        if (s->n_orphans > 0)
                printf("lease-only: a subnet lease without a machine record (a flanneld node, or an agent\n"
                       "that stopped without `corekube-agent leave`; its lease expires after 24 h).\n");
        return 0;
}

static int json_add(json_object *o, const char *k, json_object *v) {
        if (!v || json_object_object_add(o, k, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *machine_json(const StatusCommand *s, const MachineRecord *m, time_t now) {
        json_object *o = json_object_new_object(), *units = json_object_new_object();
        _cleanup_free_ char *list = m->units ? strdup(m->units) : NULL;
        long long ago = machine_seen_ago(m, now);
        int k = 0;

        if (!o || !units) {
                json_object_put(o);
                json_object_put(units);
                return NULL;
        }
        /* machines.c flattened the units to "a.service=active, b.service=failed" (NULL: none). */
        for (char *p = list, *save = NULL, *w; list && (w = strtok_r(p, ",", &save)); p = NULL) {
                char *eq = strchr(w, '=');
                w += strspn(w, " ");
                if (!eq)
                        continue;
                *eq = '\0';
                k |= json_add(units, w, json_object_new_string(eq + 1));
        }
        k |= json_add(o, "id", json_object_new_string(m->id ?: ""));
        k |= json_add(o, "name", json_object_new_string(m->name));
        k |= json_add(o, "role", json_object_new_string(m->role));
        k |= json_add(o, "ip", json_object_new_string(m->ip ?: ""));
        k |= json_add(o, "subnet", json_object_new_string(m->subnet ?: ""));
        k |= json_add(o, "state", json_object_new_string(m->state ?: ""));
        if (m->error)
                k |= json_add(o, "error", json_object_new_string(m->error));
        if (m->reason)
                k |= json_add(o, "reason", json_object_new_string(m->reason));
        if (m->message)
                k |= json_add(o, "message", json_object_new_string(m->message));
        k |= json_add(o, "units", units);
        k |= json_add(o, "units_active", json_object_new_int64((int64_t) m->n_active));
        k |= json_add(o, "units_total", json_object_new_int64((int64_t) m->n_units));
        k |= json_add(o, "updated", json_object_new_string(m->updated ?: ""));
        if (ago >= 0)
                k |= json_add(o, "seen_seconds_ago", json_object_new_int64(ago));
        k |= json_add(o, "self", json_object_new_boolean(is_self(s, m)));
        if (k != 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int print_json(const StatusCommand *s) {
        _cleanup_(json_object_putp) json_object *root = json_object_new_object();
        json_object *machines = json_object_new_array(), *orphans = json_object_new_array();
        _cleanup_free_ char *text = NULL;
        time_t now = time(NULL);
        int k = 0;

        k |= json_add(root, "machines", machines);
        k |= json_add(root, "leases_without_record", orphans);
        if (!root || k != 0)
                return log_error_errno(-ENOMEM, "Out of memory.");
        for (size_t i = 0; i < s->n_machines; i++) {
                json_object *m = machine_json(s, &s->machines[i], now);
                if (!m || json_object_array_add(machines, m) < 0) {
                        json_object_put(m);
                        return log_error_errno(-ENOMEM, "Out of memory.");
                }
        }
        for (size_t i = 0; i < s->n_orphans; i++) {
                json_object *o = json_object_new_object();
                k = o ? 0 : -ENOMEM;
                if (o) {
                        k |= json_add(o, "subnet", json_object_new_string(s->orphans[i].subnet));
                        k |= json_add(o, "public_ip", json_object_new_string(s->orphans[i].public_ip));
                        k |= json_add(o, "vtep_mac", json_object_new_string(s->orphans[i].vtep_mac));
                }
                if (k != 0 || json_object_array_add(orphans, o) < 0) {
                        json_object_put(o);
                        return log_error_errno(-ENOMEM, "Out of memory.");
                }
        }
        /* Valid JSON, and safe on a terminal, whatever the records hold. */
        text = json_escape_unsafe(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                  JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (!text)
                return log_error_errno(-ENOMEM, "Out of memory.");
        printf("%s\n", text);
        return 0;
}

/* ---- listing ---- */

static void list_failed(StatusCommand *s, int error, const char *message) {
        if (cli_etcd_unreachable(error)) {
                log_error("etcd is unreachable: %s", message ?: s->endpoints);
                finish(s, EXIT_UNAVAILABLE);
        } else {
                log_error("etcd: %s", message ?: strerror(-error));
                finish(s, EXIT_RUNTIME);
        }
}

static bool subnet_claimed(const StatusCommand *s, const char *subnet) {
        for (size_t i = 0; i < s->n_machines; i++)
                if (s->machines[i].subnet && streq(s->machines[i].subnet, subnet))
                        return true;
        return false;
}

typedef struct MachineProbe {
        StatusCommand *status;
        size_t index;
} MachineProbe;

static void seen_start(StatusCommand *s);

static void on_subnets(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        StatusCommand *s = userdata;

        s->list_req = NULL;
        if (error < 0) {
                list_failed(s, error, message);
                return;
        }
        s->orphans = calloc(res->n_kvs + 1, sizeof *s->orphans);
        if (!s->orphans) {
                finish(s, EXIT_RUNTIME);
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                OrphanLease *o = &s->orphans[s->n_orphans];
                _cleanup_(json_object_putp) json_object *j = NULL;
                json_object *bd, *mac;
                char a[IP4_STRLEN];
                uint8_t m[6];
                uint32_t subnet, ip;
                unsigned len;

                if (network_config_parse_subnet_key(res->kvs[i].key, s->cfg->network.prefix, &subnet, &len) < 0)
                        continue;
                snprintf(o->subnet, sizeof o->subnet, "%s/%u", ip4_format(subnet, a), len);
                if (subnet_claimed(s, o->subnet))
                        continue;
                if (subnet_record_public_ip(res->kvs[i].value, &ip) >= 0)
                        ip4_format(ip, o->public_ip);
                else
                        snprintf(o->public_ip, sizeof o->public_ip, "?");
                snprintf(o->vtep_mac, sizeof o->vtep_mac, "?");
                j = json_tokener_parse(res->kvs[i].value);
                if (j && json_object_object_get_ex(j, "BackendData", &bd) &&
                    json_object_object_get_ex(bd, "VtepMAC", &mac) && json_object_is_type(mac, json_type_string) &&
                    ns_parse_mac(json_object_get_string(mac), m) >= 0)
                        ns_format_mac(m, o->vtep_mac);
                s->n_orphans++;
        }
        seen_start(s);
}

static void print_result(StatusCommand *s) {
        if ((s->args->json ? print_json(s) : print_table(s)) < 0) {
                finish(s, EXIT_RUNTIME);
                return;
        }
        finish(s, fflush(stdout) == 0 ? 0 : EXIT_RUNTIME);
}

/* "Last seen" is the last keepalive of the record's lease: granted TTL
 * minus what is left. The record's "updated" only moves when it changes. */
static void on_lease_ttl(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        MachineProbe *p = userdata;
        StatusCommand *s = p->status;

        if (error >= 0 && res && res->ttl >= 0 && res->granted_ttl >= res->ttl)
                s->machines[p->index].seen_ago = res->granted_ttl - res->ttl;
        free(p);
        if (--s->n_probes == 0)
                print_result(s);
}

static void seen_start(StatusCommand *s) {
        for (size_t i = 0; i < s->n_machines; i++) {
                MachineProbe *p;

                if (s->machines[i].lease == 0)
                        continue;
                p = calloc(1, sizeof *p);
                if (!p)
                        break;
                *p = (MachineProbe) { .status = s, .index = i };
                s->n_probes++;
                if (etcd_lease_timetolive(s->etcd, s->machines[i].lease, on_lease_ttl, p, NULL) < 0) {
                        s->n_probes--;
                        free(p);
                }
        }
        if (s->n_probes == 0)
                print_result(s);
}

static void on_machines(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        StatusCommand *s = userdata;
        _cleanup_free_ char *prefix = NULL;

        s->list_req = NULL;
        if (error < 0) {
                list_failed(s, error, message);
                return;
        }
        if (machines_parse(res, &s->machines, &s->n_machines) < 0 ||
            asprintf(&prefix, "%s/subnets/", s->cfg->network.prefix) < 0 ||
            etcd_range(s->etcd, prefix, true, 0, on_subnets, s, &s->list_req) < 0) {
                log_error("Out of memory.");
                finish(s, EXIT_RUNTIME);
        }
}

static void list_start(StatusCommand *s) {
        _cleanup_free_ char *prefix = NULL;

        if (asprintf(&prefix, "%s/machines/", s->cfg->etcd.prefix) < 0 ||
            etcd_range(s->etcd, prefix, true, 0, on_machines, s, &s->list_req) < 0) {
                log_error("Out of memory.");
                finish(s, EXIT_RUNTIME);
        }
}

/* ---- --wait ---- */

static void wait_start(StatusCommand *s);

/* Looks at our record (NULL: there is none). Returns true when the wait is over. */
static bool wait_check(StatusCommand *s, const char *value) {
        _cleanup_(json_object_putp) json_object *o = value ? json_tokener_parse(value) : NULL;
        json_object *v;
        const char *state = NULL, *error = NULL, *reason = NULL, *name = s->cfg->node.name;

        if (o && json_object_object_get_ex(o, "state", &v) && json_object_is_type(v, json_type_string))
                state = json_object_get_string(v);
        if (o && json_object_object_get_ex(o, "error", &v) && json_object_is_type(v, json_type_string))
                error = json_object_get_string(v);
        if (o && json_object_object_get_ex(o, "name", &v) && json_object_is_type(v, json_type_string))
                name = json_object_get_string(v);
        if (o && json_object_object_get_ex(o, "reason", &v) && json_object_is_type(v, json_type_string))
                reason = json_object_get_string(v);
        free(s->own_state);
        s->own_state = term_escape(state);
        free(s->own_reason);
        s->own_reason = term_escape(reason);

        /* Only failed ends the wait early: it needs an operator. Every
         * other state, waiting (for a master, a unit, a download) included,
         * is the agent still working on it. */
        if (state && streq(state, "failed")) {
                char n[256], e[1024];
                log_error("Node %s failed: %s", term_escape_buf(name, n, sizeof n),
                          term_escape_buf(error ?: "(no error given)", e, sizeof e));
                finish(s, EXIT_RUNTIME);
                return true;
        }
        if (state && streq(state, "ready")) {
                if (s->watch) {
                        etcd_request_cancel(s->watch);
                        s->watch = NULL;
                }
                list_start(s);
                return true;
        }
        return false;
}

static void on_watch(EtcdClient *c, int error, const char *message, const EtcdWatchResponse *resp,
                     void *userdata) {
        StatusCommand *s = userdata;

        if (error < 0 || !resp || resp->canceled || resp->compact_revision > 0) {
                /* The handle is gone (or about to be): read the key again and
                 * watch anew, so no change in between is missed. */
                if (resp && !resp->canceled && s->watch)
                        etcd_request_cancel(s->watch);
                s->watch = NULL;
                free(s->last_error);
                s->last_error = term_escape(message);
                wait_start(s);
                return;
        }
        for (size_t i = 0; i < resp->n_events; i++)
                if (wait_check(s, resp->events[i].type == ETCD_EVENT_PUT ? resp->events[i].kv.value : NULL))
                        return;
}

static void on_own_record(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        StatusCommand *s = userdata;

        s->wait_req = NULL;
        if (error < 0) {
                /* Only errors retrying cannot fix end here (no max_rounds). */
                log_error("etcd: %s", message ?: strerror(-error));
                finish(s, EXIT_RUNTIME);
                return;
        }
        free(s->last_error);
        s->last_error = NULL;
        s->read_once = true;
        if (wait_check(s, res->n_kvs > 0 ? res->kvs[0].value : NULL))
                return;
        if (!s->said_waiting) {
                /* The watch starts right after what we read: nothing is missed. */
                fprintf(stderr, "Waiting for node %s to be ready (state: %s)...\n", s->cfg->node.name,
                        s->own_state ?: "no record yet");
                fflush(stderr);
                s->said_waiting = true;
        }
        if (etcd_watch(s->etcd, s->own_key, false, res->revision + 1, false, on_watch, s, &s->watch) < 0) {
                log_error("Failed to watch %s.", s->own_key);
                finish(s, EXIT_RUNTIME);
        }
}

static void wait_start(StatusCommand *s) {
        if (etcd_range(s->etcd, s->own_key, false, 0, on_own_record, s, &s->wait_req) < 0) {
                log_error("Out of memory.");
                finish(s, EXIT_RUNTIME);
        }
}

static int on_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        StatusCommand *s = userdata;
        char t[32];

        format_duration(s->timeout, t, sizeof t);
        if (!s->read_once)
                log_error("Timed out after %s waiting for node %s to be ready: no answer from etcd at %s.", t,
                          s->cfg->node.name, s->endpoints);
        else if (s->last_error && !s->own_state)
                log_error("Timed out after %s waiting for node %s to be ready: etcd: %s", t,
                          s->cfg->node.name, s->last_error);
        else if (!s->own_state)
                log_error("Timed out after %s waiting for node %s to be ready: it has no record (%s).", t,
                          s->cfg->node.name, s->own_key);
        else
                log_error("Timed out after %s waiting for node %s to be ready: its state is %s%s%s%s.", t,
                          s->cfg->node.name, s->own_state, s->own_reason ? " (" : "", s->own_reason ?: "",
                          s->own_reason ? ")" : "");
        finish(s, EXIT_RUNTIME);
        return 0;
}

/* ---- the command ---- */

static int status_run(StatusCommand *s) {
        int r;

        s->endpoints = cli_etcd_endpoints(s->cfg);
        r = machine_id_node(s->node_id);
        s->have_node_id = r >= 0;
        if (s->args->wait && r < 0) {
                log_error_errno(r, "Failed to read /etc/machine-id, which --wait needs: %m");
                return EXIT_RUNTIME;
        }
        /* Without --wait one round over the endpoints, then exit 69. */
        r = cli_etcd_open(s->cfg, s->args->wait ? 0 : 1, &s->event, &s->etcd);
        if (r != 0)
                return r;
        if (!s->args->wait) {
                list_start(s);
        } else {
                if (asprintf(&s->own_key, "%s/machines/%s", s->cfg->etcd.prefix, s->node_id) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory."), EXIT_RUNTIME;
                if (s->timeout > 0) {
                        r = sd_event_add_time_relative(s->event, &s->timer, CLOCK_MONOTONIC, s->timeout, 10 * USEC_PER_MSEC,
                                                       on_timeout, s);
                        if (r < 0)
                                return log_error_errno(r, "Failed to arm the timeout: %m"), EXIT_RUNTIME;
                }
                wait_start(s);
        }
        r = sd_event_loop(s->event);
        return r < 0 ? EXIT_RUNTIME : r;
}

int cmd_status(const CliArgs *a) {
        StatusCommand s = { .args = a };
        AgentConfig *c = NULL;
        char err[CK_ERRLEN] = "";
        int r;

        if (a->wait && a->wait_timeout) {
                /* A bare number means seconds here, as for timeout(1). */
                const char *w = a->wait_timeout;
                _cleanup_free_ char *t = NULL;

                if (*w && strspn(w, "0123456789") == strlen(w)) {
                        if (asprintf(&t, "%ss", w) < 0)
                                return EXIT_RUNTIME;
                        w = t;
                }
                if (parse_duration(w, err, &s.timeout) < 0) {
                        fprintf(stderr, "corekube-agent: --wait: %s (try 'corekube-agent --help')\n", err);
                        return EXIT_USAGE;
                }
        }
        r = cli_load_config(a, &c);
        if (r != 0)
                return r;
        s.cfg = c;
        r = status_run(&s);

        /* Freeing the client cancels what is in flight without calling back. */
        etcd_client_free(s.etcd);
        sd_event_source_disable_unref(s.timer);
        sd_event_unref(s.event);
        machines_free(s.machines, s.n_machines);
        free(s.machines);
        free(s.orphans);
        free(s.own_key);
        free(s.own_state);
        free(s.own_reason);
        free(s.last_error);
        free(s.endpoints);
        config_free(c);
        return r;
}
