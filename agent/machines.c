/* SPDX-License-Identifier: Apache-2.0 */
#include "machines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ip4-util.h"
#include "macro.h"
#include "term-escape.h"
#include "values.h"

static char *get_str(json_object *o, const char *k) {
        json_object *v;

        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return strdup(json_object_get_string(v));
}

static int parse_one(const EtcdKv *kv, MachineRecord *m) {
        json_object *o = json_tokener_parse(kv->value), *units;
        uint32_t ip;

        if (!o || !json_object_is_type(o, json_type_object)) {
                if (o)
                        json_object_put(o);
                return -EINVAL;
        }
        *m = (MachineRecord) {
                .id = get_str(o, "id"), .name = get_str(o, "name"), .role = get_str(o, "role"),
                .ip = get_str(o, "ip"), .subnet = get_str(o, "subnet"), .state = get_str(o, "state"),
                .error = get_str(o, "error"), .reason = get_str(o, "reason"),
                .message = get_str(o, "message"), .updated = get_str(o, "updated"),
        };
        if (json_object_object_get_ex(o, "units", &units) && json_object_is_type(units, json_type_object)) {
                size_t len = 1;
                json_object_object_foreach(units, k, v) {
                        len += strlen(k) + 2 + (json_object_is_type(v, json_type_string) ? strlen(json_object_get_string(v)) : 1) + 2;
                }
                m->units = calloc(1, len);
                json_object_object_foreach(units, k2, v2) {
                        const char *s = json_object_is_type(v2, json_type_string) ? json_object_get_string(v2) : "?";
                        m->n_units++;
                        m->n_active += streq(s, "active");
                        if (m->units) {
                                if (*m->units)
                                        strcat(m->units, ", ");
                                strcat(m->units, k2);
                                strcat(m->units, "=");
                                strcat(m->units, s);
                        }
                }
        }
        json_object_put(o);
        /* A record must at least say who and where: the rest is optional. */
        if (!m->name || !m->role || (m->ip && ip4_parse(m->ip, &ip) < 0)) {
                machines_free(m, 1);
                *m = (MachineRecord) {};
                return -EINVAL;
        }
        return 0;
}

static int cmp_name(const void *a, const void *b) {
        return strcmp(((const MachineRecord *) a)->name, ((const MachineRecord *) b)->name);
}

int machines_parse(const EtcdResult *res, MachineRecord **ret, size_t *ret_n) {
        MachineRecord *m = calloc(res->n_kvs + 1, sizeof *m);
        size_t n = 0;

        if (!m)
                return -ENOMEM;
        for (size_t i = 0; i < res->n_kvs; i++)
                if (parse_one(&res->kvs[i], &m[n]) >= 0) {
                        m[n].lease = res->kvs[i].lease;
                        m[n].seen_ago = -1;
                        n++;
                }
        qsort(m, n, sizeof *m, cmp_name);
        *ret = m;
        *ret_n = n;
        return 0;
}

void machines_free(MachineRecord *m, size_t n) {
        for (size_t i = 0; m && i < n; i++) {
                free(m[i].id);
                free(m[i].name);
                free(m[i].role);
                free(m[i].ip);
                free(m[i].subnet);
                free(m[i].state);
                free(m[i].error);
                free(m[i].reason);
                free(m[i].message);
                free(m[i].updated);
                free(m[i].units);
        }
}

int machines_master_ips(const EtcdResult *res, bool ready_only, char ***ret) {
        MachineRecord *m = NULL;
        size_t n = 0, k = 0;
        char **l;
        int r;

        r = machines_parse(res, &m, &n);
        if (r < 0)
                return r;
        l = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; l && i < n; i++)
                if (streq(m[i].role, "master") && m[i].ip &&
                    (!ready_only || (m[i].state && streq(m[i].state, "ready"))))
                        l[k++] = strdup(m[i].ip);
        machines_free(m, n);
        free(m);
        if (!l)
                return -ENOMEM;
        *ret = l;
        return 0;
}

int machines_escape(MachineRecord *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char **f[] = { &m[i].id, &m[i].name, &m[i].role, &m[i].ip, &m[i].subnet, &m[i].state,
                               &m[i].error, &m[i].reason, &m[i].message, &m[i].updated, &m[i].units };

                for (size_t k = 0; k < ELEMENTSOF(f); k++) {
                        char *e;

                        if (!*f[k])
                                continue;
                        e = term_escape(*f[k]);
                        if (!e)
                                return -ENOMEM;
                        free(*f[k]);
                        *f[k] = e;
                }
        }
        return 0;
}

long long machine_seen_ago(const MachineRecord *m, time_t now) {
        struct tm tm = {};
        const char *end;

        if (m->seen_ago >= 0)
                return m->seen_ago;
        if (!m->updated)
                return -1;
        end = strptime(m->updated, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return -1;
        return (long long) (now - timegm(&tm));
}

const char *format_seen(long long ago, char *buf, size_t len) {
        if (ago < 0)
                snprintf(buf, len, "-");
        else if (ago < 120)
                snprintf(buf, len, "%llds ago", ago);
        else if (ago < 2 * 3600)
                snprintf(buf, len, "%lldm ago", ago / 60);
        else
                snprintf(buf, len, "%lldh ago", ago / 3600);
        return buf;
}

/* ---- waiting for a ready master ---- */

struct MasterWait {
        EtcdClient *client;
        char *prefix;                   /* <etcd.prefix>/machines/ */
        EtcdRequest *list;
        EtcdRequest *watch;
        int64_t revision;               /* of the last list: the watch starts after it */
        bool list_again;                /* a change came while a list was in flight */
        master_wait_handler_t cb;
        void *userdata;
};

static void wait_list(MasterWait *w);

static void on_wait_watch(EtcdClient *c, int error, const char *message, const EtcdWatchResponse *resp,
                          void *userdata) {
        MasterWait *w = userdata;

        if (error < 0 || !resp || resp->canceled)
                w->watch = NULL;        /* gone: the next list sets it up again */
        if (error >= 0 && resp && !resp->canceled && resp->n_events == 0)
                return;                 /* created, or progress: nothing changed */
        /* A record changed (or the watch ended): look again now rather
         * than at the caller's next check. */
        wait_list(w);
}

/* What the records say when no master is ready, for the caller's message. */
static char *not_ready_message(const EtcdResult *res) {
        MachineRecord *m = NULL;
        size_t n = 0;
        char *msg = NULL;

        if (machines_parse(res, &m, &n) < 0)
                return NULL;
        for (size_t i = 0; i < n && !msg; i++)
                if (streq(m[i].role, "master") &&
                    asprintf(&msg, "master %s is %s, not ready yet", m[i].name, m[i].state ?: "unknown") < 0)
                        msg = NULL;
        if (!msg)
                msg = strdup("no master has registered in etcd yet");
        machines_free(m, n);
        free(m);
        return msg;
}

static void on_wait_list(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        MasterWait *w = userdata;
        char **ips = NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        w->list = NULL;
        if (error < 0) {
                w->cb(error, message ?: strerror(-error), NULL, w->userdata);
                return;
        }
        r = machines_master_ips(res, true, &ips);
        if (r < 0) {
                w->cb(r, strerror(-r), NULL, w->userdata);
                return;
        }
        if (ips[0]) {
                if (w->watch)
                        etcd_request_cancel(w->watch);
                w->watch = NULL;
                w->cb(1, NULL, ips, w->userdata);       /* may free w */
                return;
        }
        free(ips);
        w->revision = res->revision;
        if (!w->watch && etcd_watch(w->client, w->prefix, true, w->revision + 1, false, on_wait_watch, w,
                                    &w->watch) < 0)
                w->watch = NULL;        /* master_wait_check() lists again */
        if (w->list_again) {
                w->list_again = false;
                wait_list(w);
                return;
        }
        msg = not_ready_message(res);
        w->cb(0, msg ?: "no master is ready yet", NULL, w->userdata);
}

static void wait_list(MasterWait *w) {
        if (w->list) {
                w->list_again = true;   /* it may have missed the change */
                return;
        }
        if (etcd_range(w->client, w->prefix, true, 0, on_wait_list, w, &w->list) < 0) {
                w->list = NULL;
                w->cb(-ENOMEM, strerror(ENOMEM), NULL, w->userdata);
        }
}

int master_wait_new(EtcdClient *c, const char *prefix, master_wait_handler_t cb, void *userdata, MasterWait **ret) {
        MasterWait *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        *w = (MasterWait) { .client = c, .cb = cb, .userdata = userdata };
        if (asprintf(&w->prefix, "%s/machines/", prefix) < 0) {
                free(w);
                return -ENOMEM;
        }
        *ret = w;
        wait_list(w);
        return 0;
}

void master_wait_check(MasterWait *w) {
        if (!w->list)
                wait_list(w);
}

MasterWait *master_wait_free(MasterWait *w) {
        if (!w)
                return NULL;
        if (w->list)
                etcd_request_cancel(w->list);
        if (w->watch)
                etcd_request_cancel(w->watch);
        free(w->prefix);
        free(w);
        return NULL;
}
