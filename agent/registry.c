/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "registry.h"

typedef struct Unit {
        char *name;
        char *state;
} Unit;

struct Registry {
        EtcdClient *client;
        sd_event *event;
        char *key;
        char *id, *name, *role, *ip, *subnet, *version;
        char *legacy_id, *legacy_key;
        EtcdRequest *legacy;        /* the old record's range or delete */
        char *state, *error, *reason, *message;
        Unit *units;
        size_t n_units;
        uint64_t ttl_usec;
        registry_handler_t cb;
        void *userdata;

        int64_t lease_id;
        bool registered;
        bool legacy_done;           /* the old record was looked for */
        bool keepalive_failed;      /* the last keepalive did not go through */
        bool dirty;                 /* the record changed since the last put */
        EtcdRequest *write;         /* grant or put in flight */
        EtcdRequest *keepalive;
        sd_event_source *keepalive_timer;
        sd_event_source *flush;     /* coalesces updates */
        sd_event_source *retry_timer;
        EtcdRequest *watch;         /* on our own key: see on_watch() */
        sd_event_source *watch_timer;
        int64_t watch_revision;     /* the last revision the watch saw */
        Backoff backoff;
};

static void write_record(Registry *r);

static void notify(Registry *r, RegistryEvent ev, int error, const char *message) {
        if (r->cb)
                r->cb(r, ev, error, message, r->userdata);
}

static int arm(Registry *r, sd_event_source **s, uint64_t delay, sd_event_time_handler_t h) {
        uint64_t now;
        int k;

        *s = sd_event_source_disable_unref(*s);
        k = sd_event_now(r->event, CLOCK_MONOTONIC, &now);
        if (k < 0)
                return k;
        return sd_event_add_time(r->event, s, CLOCK_MONOTONIC, now + delay, USEC_PER_MSEC, h, r);
}

static int json_add_string(json_object *o, const char *k, const char *v) {
        json_object *s = json_object_new_string(v ? v : "");

        if (!s || json_object_object_add(o, k, s) < 0) {
                json_object_put(s);
                return -ENOMEM;
        }
        return 0;
}

int registry_format(Registry *r, uint64_t now_usec, char **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *units = json_object_new_object();
        char updated[32];
        time_t t = (time_t) (now_usec / USEC_PER_SEC);
        struct tm tm;
        int k = 0;

        if (!o || !units) {
                json_object_put(units);
                return -ENOMEM;
        }
        strftime(updated, sizeof updated, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));

        k |= json_add_string(o, "id", r->id);
        k |= json_add_string(o, "name", r->name);
        k |= json_add_string(o, "role", r->role);
        k |= json_add_string(o, "ip", r->ip);
        k |= json_add_string(o, "subnet", r->subnet);
        k |= json_add_string(o, "state", r->state);
        if (r->error)
                k |= json_add_string(o, "error", r->error);
        if (r->reason)
                k |= json_add_string(o, "reason", r->reason);
        if (r->message)
                k |= json_add_string(o, "message", r->message);
        for (size_t i = 0; i < r->n_units; i++)
                k |= json_add_string(units, r->units[i].name, r->units[i].state);
        if (json_object_object_add(o, "units", units) < 0) {
                json_object_put(units);
                return -ENOMEM;
        }
        k |= json_add_string(o, "version", r->version);
        k |= json_add_string(o, "updated", updated);
        if (k != 0)
                return -ENOMEM;
        *ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return *ret ? 0 : -ENOMEM;
}

/* ---- lease keepalive ---- */

static int on_keepalive_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void schedule_keepalive(Registry *r) {
        if (arm(r, &r->keepalive_timer, r->ttl_usec / 3, on_keepalive_timer) < 0)
                log_error("Registry: cannot schedule the keepalive");
}

static void lease_lost(Registry *r, const char *why) {
        log_event(LOG_WARNING, MID_REGISTRATION_LOST, FIELDS("COREKUBE_ETCD_KEY=machine record"),
                  "Machine record lease lost (%s), registering again", why);
        r->lease_id = 0;
        r->registered = false;
        notify(r, REGISTRY_LOST, 0, why);
        r->dirty = true;
        write_record(r);
}

static void on_keepalive(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        Registry *r = userdata;

        r->keepalive = NULL;
        if (error == -ENOENT || (error >= 0 && res->ttl <= 0)) {
                lease_lost(r, "the etcd lease expired or was revoked");
                return;
        }
        if (error < 0) {
                log_warning_errno(error, "Registry: keepalive failed: %s", message);
                r->keepalive_failed = true;
                notify(r, REGISTRY_FAILED, error, message);
        } else if (r->keepalive_failed) {
                r->keepalive_failed = false;
                notify(r, REGISTRY_RENEWED, 0, NULL);
        }
        schedule_keepalive(r);
}

static int on_keepalive_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Registry *r = userdata;
        int k;

        r->keepalive_timer = sd_event_source_disable_unref(r->keepalive_timer);
        if (r->lease_id == 0 || r->keepalive)
                return 0;
        k = etcd_lease_keepalive(r->client, r->lease_id, on_keepalive, r, &r->keepalive);
        if (k < 0)
                log_error_errno(k, "Registry: cannot send the keepalive: %m");
        return 0;
}

/* ---- watching our own record ---- */

/* The record can go while our lease lives: deleted by hand, or put again
 * on another lease by an instance of us that was stopping (its last put
 * arriving after ours) and whose lease then expires. The keepalive cannot
 * see that, so we watch the key and write it again. */

static void watch_start(Registry *r);
static int mark_dirty(Registry *r);

static int on_watch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Registry *r = userdata;

        r->watch_timer = sd_event_source_disable_unref(r->watch_timer);
        watch_start(r);
        return 0;
}

static void on_watch(EtcdClient *c, int error, const char *message, const EtcdWatchResponse *resp,
                     void *userdata) {
        Registry *r = userdata;

        if (error < 0 || !resp || resp->canceled) {
                /* Gone: resume after the last revision seen (or from now,
                 * if that was compacted away), a little later. */
                r->watch = NULL;
                if (resp && resp->compact_revision > 0)
                        r->watch_revision = 0;
                if (arm(r, &r->watch_timer, USEC_PER_SEC, on_watch_timer) < 0)
                        log_error("Registry: cannot schedule the record's watch");
                return;
        }
        for (size_t i = 0; i < resp->n_events; i++) {
                const EtcdEvent *e = &resp->events[i];

                if (e->kv.mod_revision > r->watch_revision)
                        r->watch_revision = e->kv.mod_revision;
                if (!r->registered || r->lease_id == 0 || r->write)
                        continue;       /* a write of ours is coming anyway */
                if (e->type == ETCD_EVENT_DELETE || e->kv.lease != r->lease_id) {
                        log_warning("Machine record %s was %s; writing it again.", r->key,
                                    e->type == ETCD_EVENT_DELETE ? "deleted" : "put on another lease");
                        (void) mark_dirty(r);
                }
        }
        /* etcd sends every event up to a response's revision before it, except
         * the first: it names the revision when the watch was made, and a
         * watch resumed from before that still has those events to come (a
         * stream lost before they came must resume before them). */
        if (resp->created && r->watch_revision > 0)
                return;
        if (resp->revision > r->watch_revision)
                r->watch_revision = resp->revision;
}

static void watch_start(Registry *r) {
        if (r->watch || r->watch_timer)
                return;
        if (etcd_watch(r->client, r->key, false, r->watch_revision > 0 ? r->watch_revision + 1 : 0, false,
                       on_watch, r, &r->watch) < 0 &&
            arm(r, &r->watch_timer, USEC_PER_SEC, on_watch_timer) < 0)
                log_error("Registry: cannot watch the record");
}

/* ---- writing the record ---- */

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Registry *r = userdata;

        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
        write_record(r);
        return 0;
}

static void write_failed(Registry *r, int error, const char *message) {
        uint64_t d = backoff_next(&r->backoff);

        log_warning_errno(error, "Registry: %s; trying again in %.1fs", message ? message : "write failed", d / 1e6);
        notify(r, REGISTRY_FAILED, error, message);
        if (arm(r, &r->retry_timer, d, on_retry) < 0)
                log_error("Registry: cannot schedule a retry");
}

static void on_legacy_deleted(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        Registry *r = userdata;

        r->legacy = NULL;
        if (error < 0)
                log_warning_errno(error, "Registry: failed to remove our record from before the upgrade, %s (%s); "
                                  "it expires with the old agent's lease.", r->legacy_key, message ?: "error");
        else if (res->succeeded)
                log_info("Removed our record from before the upgrade, %s: the node is %s now.", r->legacy_key, r->key);
}

/* The old key is made from this machine's ID, but a clone of its image with
 * another name is another node (its ID is its own to fix): only a record
 * with our raw ID and our name is ours. The role may have changed with the
 * configuration; the node is the same. */
static bool legacy_is_ours(Registry *r, const char *value) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(value);
        json_object *id, *name;

        return o && json_object_object_get_ex(o, "id", &id) && json_object_object_get_ex(o, "name", &name) &&
               json_object_is_type(id, json_type_string) && json_object_is_type(name, json_type_string) &&
               streq(json_object_get_string(id), r->legacy_id) && streq(json_object_get_string(name), r->name);
}

static void on_legacy_record(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        Registry *r = userdata;
        _cleanup_(etcd_txn_freep) EtcdTxn *t = NULL;
        int k;

        r->legacy = NULL;
        if (error < 0) {
                log_warning_errno(error, "Registry: failed to look for our record from before the upgrade, %s (%s); "
                                  "it expires with the old agent's lease.", r->legacy_key, message ?: "error");
                return;
        }
        if (res->n_kvs == 0)
                return;
        if (!legacy_is_ours(r, res->kvs[0].value)) {
                log_warning("Registry: %s is not ours (another id or name); leaving it.", r->legacy_key);
                return;
        }
        /* Only the version we read: a write since then is not ours to undo. */
        t = etcd_txn_new();
        k = t ? etcd_txn_compare(t, r->legacy_key, ETCD_COMPARE_MOD, ETCD_COMPARE_EQUAL, res->kvs[0].mod_revision, NULL) : -ENOMEM;
        if (k >= 0)
                k = etcd_txn_delete(t, true, r->legacy_key, false);
        if (k >= 0)
                k = etcd_txn_commit(r->client, t, on_legacy_deleted, r, &r->legacy);
        if (k < 0)
                log_warning_errno(k, "Registry: failed to remove our record from before the upgrade, %s: %m",
                                  r->legacy_key);
}

static void legacy_start(Registry *r) {
        int k;

        if (!r->legacy_key)
                return;
        k = etcd_range(r->client, r->legacy_key, false, 0, on_legacy_record, r, &r->legacy);
        if (k < 0)
                log_warning_errno(k, "Registry: failed to look for our record from before the upgrade: %m");
}

static void on_put(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        Registry *r = userdata;
        bool first, first_ever;

        r->write = NULL;
        if (error == -ENOENT) {
                /* "requested lease not found": the lease went away under us. */
                lease_lost(r, "the etcd lease is gone");
                return;
        }
        if (error < 0) {
                r->dirty = true;
                write_failed(r, error, message);
                return;
        }
        backoff_reset(&r->backoff);
        first = !r->registered;
        first_ever = first && !r->legacy_done;
        r->legacy_done = true;
        r->registered = true;
        if (res->revision > r->watch_revision && !r->watch)
                r->watch_revision = res->revision;
        watch_start(r);
        if (first) {
                char f[80];

                snprintf(f, sizeof f, "COREKUBE_LEASE=%" PRIx64, (uint64_t) r->lease_id);
                log_event(LOG_INFO, MID_REGISTERED, FIELDS(f), "Registered as %s (%s) in etcd", r->name, r->role);
                notify(r, REGISTRY_REGISTERED, 0, NULL);
                if (first_ever)
                        legacy_start(r);
        } else
                notify(r, REGISTRY_WRITTEN, 0, NULL);
        if (r->dirty)
                write_record(r);
}

static void put_record(Registry *r) {
        _cleanup_free_ char *json = NULL;
        struct timespec ts;
        int k;

        clock_gettime(CLOCK_REALTIME, &ts);
        k = registry_format(r, (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000, &json);
        if (k >= 0) {
                r->dirty = false;
                k = etcd_put(r->client, r->key, json, r->lease_id, on_put, r, &r->write);
        }
        if (k < 0) {
                r->dirty = true;
                write_failed(r, k, "cannot send the record");
        }
}

static void on_granted(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        Registry *r = userdata;

        r->write = NULL;
        if (error < 0) {
                write_failed(r, error, message);
                return;
        }
        r->lease_id = res->lease_id;
        schedule_keepalive(r);
        put_record(r);
}

static void write_record(Registry *r) {
        int k;

        if (r->write || r->retry_timer)
                return;     /* on_put or on_retry comes back here */
        if (r->lease_id == 0) {
                k = etcd_lease_grant(r->client, (int64_t) (r->ttl_usec / USEC_PER_SEC), on_granted, r, &r->write);
                if (k < 0)
                        write_failed(r, k, "cannot request a lease");
                return;
        }
        if (r->dirty)
                put_record(r);
}

static int on_flush(sd_event_source *s, void *userdata) {
        write_record(userdata);
        return 0;
}

static int mark_dirty(Registry *r) {
        r->dirty = true;
        if (!r->flush)
                return 0;   /* not started yet */
        return sd_event_source_set_enabled(r->flush, SD_EVENT_ONESHOT);
}

/* ---- public ---- */

/* Returns 1 if the value changed, 0 if it is the same: callers set their
 * fields on every status update, and only a change is worth an etcd write. */
static int set_str(char **p, const char *v) {
        char *n = NULL;

        if ((!v && !*p) || (v && *p && streq(v, *p)))
                return 0;
        if (v) {
                n = strdup(v);
                if (!n)
                        return -ENOMEM;
        }
        free(*p);
        *p = n;
        return 1;
}

int registry_new(EtcdClient *client, sd_event *event, const RegistryOptions *o, registry_handler_t cb,
                 void *userdata, Registry **ret) {
        _cleanup_(registry_freep) Registry *r = NULL;

        if (!o->prefix || !o->machine_id || !o->name || !o->role)
                return -EINVAL;
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->client = client;
        r->event = sd_event_ref(event);
        r->cb = cb;
        r->userdata = userdata;
        r->ttl_usec = o->ttl_usec ?: 30 * USEC_PER_SEC;
        if (r->ttl_usec < 3 * USEC_PER_SEC)
                r->ttl_usec = 3 * USEC_PER_SEC;
        backoff_init(&r->backoff, 500 * USEC_PER_MSEC, 15 * USEC_PER_SEC);
        if (asprintf(&r->key, "%s/machines/%s", o->prefix, o->machine_id) < 0 ||
            set_str(&r->id, o->machine_id) < 0 || set_str(&r->name, o->name) < 0 ||
            set_str(&r->role, o->role) < 0 || set_str(&r->ip, o->ip) < 0 ||
            set_str(&r->subnet, o->subnet) < 0 || set_str(&r->version, o->version) < 0 ||
            set_str(&r->state, "registering") < 0 || set_str(&r->legacy_id, o->legacy_id) < 0 ||
            (o->legacy_id && !streq(o->legacy_id, o->machine_id) &&
             asprintf(&r->legacy_key, "%s/machines/%s", o->prefix, o->legacy_id) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        etcd_request_cancel(r->write);
        etcd_request_cancel(r->keepalive);
        etcd_request_cancel(r->watch);
        etcd_request_cancel(r->legacy);
        sd_event_source_disable_unref(r->watch_timer);
        sd_event_source_disable_unref(r->keepalive_timer);
        sd_event_source_disable_unref(r->flush);
        sd_event_source_disable_unref(r->retry_timer);
        sd_event_unref(r->event);
        for (size_t i = 0; i < r->n_units; i++) {
                free(r->units[i].name);
                free(r->units[i].state);
        }
        free(r->units);
        free(r->key);
        free(r->id);
        free(r->legacy_id);
        free(r->legacy_key);
        free(r->name);
        free(r->role);
        free(r->ip);
        free(r->subnet);
        free(r->version);
        free(r->state);
        free(r->error);
        free(r->reason);
        free(r->message);
        free(r);
        return NULL;
}

int registry_start(Registry *r) {
        int k;

        if (r->flush)
                return -EALREADY;
        k = sd_event_add_defer(r->event, &r->flush, on_flush, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->flush, "registry-flush");
        return mark_dirty(r);
}

int registry_set_state(Registry *r, const char *state, const char *error) {
        return registry_set_waiting(r, state, NULL, error);
}

int registry_set_waiting(Registry *r, const char *state, const char *reason, const char *message) {
        /* "error" is only for failed: what needs an operator; a wait says
         * what it waits for ("reason") and the last thing it saw. */
        bool waiting = reason != NULL;
        int a = set_str(&r->state, state), b = set_str(&r->error, waiting ? NULL : message),
            c = set_str(&r->reason, reason), e = set_str(&r->message, waiting ? message : NULL);

        if (a < 0 || b < 0 || c < 0 || e < 0)
                return -ENOMEM;
        return a || b || c || e ? mark_dirty(r) : 0;
}

int registry_set_subnet(Registry *r, const char *subnet) {
        int k = set_str(&r->subnet, subnet);

        return k <= 0 ? k : mark_dirty(r);
}

int registry_set_ip(Registry *r, const char *ip) {
        int k = set_str(&r->ip, ip);

        return k <= 0 ? k : mark_dirty(r);
}

int registry_set_unit(Registry *r, const char *unit, const char *active_state) {
        size_t i;
        int k;

        for (i = 0; i < r->n_units; i++)
                if (streq(r->units[i].name, unit))
                        break;
        if (!active_state) {
                if (i == r->n_units)
                        return 0;
                free(r->units[i].name);
                free(r->units[i].state);
                memmove(r->units + i, r->units + i + 1, (r->n_units - i - 1) * sizeof *r->units);
                r->n_units--;
                return mark_dirty(r);
        }
        if (i == r->n_units) {
                Unit *u = realloc(r->units, (r->n_units + 1) * sizeof *u);

                if (!u)
                        return -ENOMEM;
                r->units = u;
                u[i] = (Unit) { .name = strdup(unit) };
                if (!u[i].name)
                        return -ENOMEM;
                r->n_units++;
        }
        k = set_str(&r->units[i].state, active_state);
        return k <= 0 ? k : mark_dirty(r);
}

int registry_leave(Registry *r, etcd_handler_t cb, void *userdata) {
        int64_t id = r->lease_id;

        etcd_request_cancel(r->write);
        etcd_request_cancel(r->keepalive);
        etcd_request_cancel(r->watch);
        r->write = r->keepalive = r->watch = NULL;
        r->watch_timer = sd_event_source_disable_unref(r->watch_timer);
        r->keepalive_timer = sd_event_source_disable_unref(r->keepalive_timer);
        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
        r->flush = sd_event_source_disable_unref(r->flush);
        r->lease_id = 0;
        r->registered = false;
        if (id == 0)
                return -ENOENT;
        return etcd_lease_revoke(r->client, id, cb, userdata, NULL);
}

int64_t registry_get_lease(Registry *r) {
        return r->lease_id;
}

const char *registry_get_key(Registry *r) {
        return r->key;
}
