/* SPDX-License-Identifier: Apache-2.0 */
#include "unit-control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "macro.h"

#define SD_DEST  "org.freedesktop.systemd1"
#define SD_PATH  "/org/freedesktop/systemd1"
#define SD_MGR   "org.freedesktop.systemd1.Manager"
#define SD_UNIT  "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"
#define BUS_CALL_TIMEOUT_USEC (25 * USEC_PER_SEC)

typedef struct Job {
        struct Job *next;
        UnitControl *ctl;
        char *unit;
        char *path;                     /* the job's object path, once StartUnit answered */
        char *result;                   /* JobRemoved's result, while we fetch the unit's Result */
        unit_job_handler_t cb;
        void *userdata;
        sd_bus_slot *slot;
} Job;

typedef struct UnitWatch {
        struct UnitWatch *next;
        UnitControl *ctl;
        char *unit;
        char *path;
        unit_state_handler_t cb;
        void *userdata;
        sd_bus_slot *match;
        sd_bus_slot *get;               /* a GetAll in flight */
        unsigned stage;                 /* its interface, in fetch_ifaces */
        bool known;                     /* values hold a whole state: changes are reported */
        char *values[3];                /* ActiveState, SubState, Result */
        sd_event_source *refetch;       /* after a failed GetAll */
        Backoff backoff;
} UnitWatch;

/* The first two are the Unit interface's, the last the Service interface's
 * (services only). Read with one GetAll per interface at the start, then
 * kept from the values PropertiesChanged carries (systemd marks all three
 * EMITS_CHANGE). */
static const char *const watch_props[] = { "ActiveState", "SubState", "Result" };
static const char *const fetch_ifaces[] = { SD_UNIT, SD_SERVICE };

struct UnitControl {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *job_removed;
        Job *jobs;
        UnitWatch *watches;
};

static void job_free(Job *j) {
        sd_bus_slot_unref(j->slot);
        free(j->unit);
        free(j->path);
        free(j->result);
        free(j);
}

static void job_finish(Job *j, const char *result, const char *detail) {
        UnitControl *u = j->ctl;

        for (Job **p = &u->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        if (j->cb)
                j->cb(j->unit, result, detail, j->userdata);
        job_free(j);
}

static int on_unit_result(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *detail = NULL;

        j->slot = sd_bus_slot_unref(j->slot);
        if (!sd_bus_message_is_method_error(m, NULL) &&
            sd_bus_message_enter_container(m, 'v', "s") >= 0)
                (void) sd_bus_message_read(m, "s", &detail);
        job_finish(j, j->result, detail ?: "unknown");
        return 0;
}

/* The job did not end "done": ask the unit why (its Result property). */
static void job_fetch_result(Job *j) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = sd_bus_path_encode(SD_PATH "/unit", j->unit, &path);
        if (r >= 0)
                r = sd_bus_call_method_async(j->ctl->bus, &j->slot, SD_DEST, path,
                                             "org.freedesktop.DBus.Properties", "Get",
                                             on_unit_result, j, "ss",
                                             strstr(j->unit, ".service") ? "org.freedesktop.systemd1.Service"
                                                                          : "org.freedesktop.systemd1.Unit",
                                             strstr(j->unit, ".service") ? "Result" : "ActiveState");
        if (r < 0)
                job_finish(j, j->result, "unknown");
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitControl *u = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        /* Several of ours can share a path: a RestartUnit while our restart
         * of the unit runs is merged into it (systemd re-runs that job and
         * hands back its path). Each is finished; job_finish() unlinks. */
        for (Job *j = u->jobs, *next; j; j = next) {
                next = j->next;
                if (!j->path || !streq(j->path, path) || j->result)
                        continue;
                if (streq(result, "done")) {
                        job_finish(j, result, NULL);
                        continue;
                }
                j->result = strdup(result);
                if (!j->result)
                        job_finish(j, result, "unknown");
                else
                        job_fetch_result(j);
        }
        return 0;
}

static int on_job_queued(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *path;

        j->slot = sd_bus_slot_unref(j->slot);
        if (e) {
                job_finish(j, "error", e->message ?: e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) < 0 || !(j->path = strdup(path)))
                job_finish(j, "error", "bad reply from systemd");
        /* Now JobRemoved for this path finishes it. systemd sends the reply
         * before the signal, and the bus keeps one sender's order. */
        return 0;
}

int unit_ctl_job(UnitControl *u, const char *method, const char *unit, unit_job_handler_t cb, void *userdata) {
        Job *j = calloc(1, sizeof *j);
        int r;

        if (!j)
                return -ENOMEM;
        *j = (Job) { .ctl = u, .unit = strdup(unit), .cb = cb, .userdata = userdata };
        if (!j->unit) {
                free(j);
                return -ENOMEM;
        }
        r = sd_bus_call_method_async(u->bus, &j->slot, SD_DEST, SD_PATH, SD_MGR, method,
                                     on_job_queued, j, "ss", unit, "replace");
        if (r < 0) {
                job_free(j);
                return log_error_errno(r, "Failed to call %s(%s): %m", method, unit);
        }
        j->next = u->jobs;
        u->jobs = j;
        return 0;
}

void unit_ctl_job_detach(UnitControl *u, unit_job_handler_t cb, void *userdata) {
        for (Job *j = u->jobs; j; j = j->next)
                if (j->cb == cb && j->userdata == userdata)
                        j->cb = NULL;
}

typedef struct GetU64 {
        char *unit;
        unit_u64_handler_t cb;
        void *userdata;
} GetU64;

static void get_u64_free(void *userdata) {
        GetU64 *g = userdata;

        free(g->unit);
        free(g);
}

static int on_u64(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        GetU64 *g = userdata;
        uint64_t v = 0;
        int r = 0;

        if (sd_bus_message_is_method_error(m, NULL))
                r = -sd_bus_message_get_errno(m) ?: -EIO;
        else if (sd_bus_message_enter_container(m, 'v', "t") < 0 || sd_bus_message_read(m, "t", &v) < 0)
                r = -EBADMSG;
        g->cb(g->unit, r, v, g->userdata);
        return 0;
}

int unit_ctl_reset_failed(UnitControl *u, const char *unit) {
        int r;

        /* No reply wanted: systemd handles our calls in order, so a job
         * queued right after this sees the unit already reset. */
        r = sd_bus_call_method_async(u->bus, NULL, SD_DEST, SD_PATH, SD_MGR, "ResetFailedUnit", NULL, NULL, "s",
                                     unit);
        if (r < 0)
                return log_error_errno(r, "Failed to reset %s: %m", unit);
        return 0;
}

int unit_ctl_get_u64(UnitControl *u, const char *unit, const char *iface, const char *property, unit_u64_handler_t cb,
                     void *userdata) {
        _cleanup_free_ char *path = NULL;
        sd_bus_slot *slot = NULL;
        GetU64 *g = calloc(1, sizeof *g);
        int r;

        if (!g || !(g->unit = strdup(unit))) {
                free(g);
                return -ENOMEM;
        }
        g->cb = cb;
        g->userdata = userdata;
        r = sd_bus_path_encode(SD_PATH "/unit", unit, &path);
        if (r >= 0)
                r = sd_bus_call_method_async(u->bus, &slot, SD_DEST, path, "org.freedesktop.DBus.Properties", "Get",
                                             on_u64, g, "ss", iface, property);
        if (r < 0) {
                get_u64_free(g);
                return log_error_errno(r, "Failed to ask for %s's %s: %m", unit, property);
        }
        /* The bus owns the call; g goes with it, answered or not. */
        (void) sd_bus_slot_set_destroy_callback(slot, get_u64_free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 0;
}

unsigned unit_ctl_pending(UnitControl *u) {
        unsigned n = 0;

        for (Job *j = u->jobs; j; j = j->next)
                n++;
        return n;
}

static bool is_service(const char *unit) {
        const char *dot = strrchr(unit, '.');

        return dot && streq(dot, ".service");
}

static void watch_fetch(UnitWatch *w);
static void watch_refresh(UnitWatch *w);

static int on_refetch(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitWatch *w = userdata;

        w->refetch = sd_event_source_disable_unref(w->refetch);
        watch_refresh(w);
        return 0;
}

/* A GetAll that failed: no PropertiesChanged may ever come (a unit that
 * does not change), so we ask again after a while, and say why meanwhile. */
static void watch_failed(UnitWatch *w, const char *why) {
        uint64_t now = 0, delay = backoff_next(&w->backoff);
        char msg[256];

        w->known = false;
        snprintf(msg, sizeof msg, "cannot read %s's %s from systemd: %s", w->unit,
                 w->stage == 0 ? "state" : "result", why);
        log_warning("%s; asking again in %.1fs.", msg, (double) delay / USEC_PER_SEC);
        w->refetch = sd_event_source_disable_unref(w->refetch);
        (void) sd_event_now(w->ctl->event, CLOCK_MONOTONIC, &now);
        if (sd_event_add_time(w->ctl->event, &w->refetch, CLOCK_MONOTONIC, now + delay, USEC_PER_MSEC, on_refetch,
                              w) < 0)
                log_error("Failed to schedule another look at %s.", w->unit);
        w->cb(w->unit, &(UnitState) { "unknown", "unknown", NULL, msg }, w->userdata);
}

/* Our properties of the interface: [*lo, *hi) of watch_props; 0 if none. */
static bool props_of(const UnitWatch *w, const char *iface, size_t *lo, size_t *hi) {
        if (streq(iface, SD_UNIT)) {
                *lo = 0;
                *hi = 2;
        } else if (streq(iface, SD_SERVICE) && is_service(w->unit)) {
                *lo = 2;
                *hi = 3;
        } else
                return false;
        return true;
}

/* Reads an a{sv} (GetAll's reply, PropertiesChanged's changes) and keeps
 * our properties among [lo, hi). Returns how many it carried. */
static int read_props(sd_bus_message *m, UnitWatch *w, size_t lo, size_t hi) {
        int r, n = 0;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *value;
                size_t i = lo;

                r = sd_bus_message_read(m, "s", &name);
                while (r >= 0 && i < hi && !streq(name, watch_props[i]))
                        i++;
                if (r >= 0 && i == hi)
                        r = sd_bus_message_skip(m, "v");
                else if (r >= 0) {
                        r = sd_bus_message_read(m, "v", "s", &value);
                        if (r >= 0) {
                                char *copy = strdup(value);

                                if (!copy)
                                        return -ENOMEM;
                                free(w->values[i]);
                                w->values[i] = copy;
                                n++;
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : n;
}

static void watch_report(UnitWatch *w) {
        w->cb(w->unit, &(UnitState) { w->values[0], w->values[1], w->values[2], NULL }, w->userdata);
}

static int on_watch_props(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitWatch *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        size_t lo = 0, hi = 0;
        int n;

        w->get = sd_bus_slot_unref(w->get);
        if (e) {
                watch_failed(w, e->message ?: e->name);
                return 0;
        }
        (void) props_of(w, fetch_ifaces[w->stage], &lo, &hi);
        n = read_props(m, w, lo, hi);
        if (n < 0 || (size_t) n < hi - lo) {
                watch_failed(w, n == -ENOMEM ? "out of memory" : "bad reply");
                return 0;
        }
        if (w->stage == 0 && is_service(w->unit)) {
                w->stage = 1;
                watch_fetch(w);
                return 0;
        }
        backoff_reset(&w->backoff);
        w->known = true;
        watch_report(w);
        return 0;
}

static void watch_fetch(UnitWatch *w) {
        int r = sd_bus_call_method_async(w->ctl->bus, &w->get, SD_DEST, w->path,
                                         "org.freedesktop.DBus.Properties", "GetAll",
                                         on_watch_props, w, "s", fetch_ifaces[w->stage]);
        if (r < 0)
                watch_failed(w, strerror(-r));
}

/* Reads everything again: at the start, after a failure, and when systemd
 * invalidates a property instead of sending its value. */
static void watch_refresh(UnitWatch *w) {
        w->refetch = sd_event_source_disable_unref(w->refetch);
        w->get = sd_bus_slot_unref(w->get);
        w->known = false;
        w->stage = 0;
        watch_fetch(w);
}

/* systemd sends a unit's change for its type's interface (Service) first,
 * then for Unit, "so that clients get atomic behaviour" (dbus-unit.c): the
 * state is whole, and reported, on the Unit one. A change that arrives
 * while a GetAll is in flight was sent before its reply, which is newer. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitWatch *w = userdata;
        const char *iface, *name;
        bool invalidated = false;
        size_t lo, hi;
        int n, r;

        if (sd_bus_message_read(m, "s", &iface) < 0 || !props_of(w, iface, &lo, &hi))
                return 0;
        n = read_props(m, w, lo, hi);
        r = n < 0 ? n : sd_bus_message_enter_container(m, 'a', "s");
        while (r >= 0 && (r = sd_bus_message_read(m, "s", &name)) > 0)
                for (size_t i = lo; i < hi; i++)
                        if (streq(name, watch_props[i]))
                                invalidated = true;
        if (r < 0 || invalidated) {
                watch_refresh(w);
                return 0;
        }
        if (n > 0 && w->known && !w->get && lo == 0)
                watch_report(w);
        return 0;
}

int unit_ctl_watch(UnitControl *u, const char *unit, unit_state_handler_t cb, void *userdata) {
        _cleanup_free_ char *match = NULL;
        UnitWatch *w = calloc(1, sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        *w = (UnitWatch) { .ctl = u, .cb = cb, .userdata = userdata, .unit = strdup(unit) };
        backoff_init(&w->backoff, USEC_PER_SEC, 30 * USEC_PER_SEC);
        r = w->unit ? sd_bus_path_encode(SD_PATH "/unit", unit, &w->path) : -ENOMEM;
        if (r >= 0 && asprintf(&match, "type='signal',sender='" SD_DEST "',path='%s',"
                               "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
                               w->path) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = sd_bus_add_match_async(u->bus, &w->match, match, on_properties_changed, NULL, w);
        if (r < 0) {
                free(w->unit);
                free(w->path);
                free(w);
                return log_error_errno(r, "Failed to watch %s: %m", unit);
        }
        w->next = u->watches;
        u->watches = w;
        watch_refresh(w);
        return 0;
}

int unit_ctl_new(sd_event *event, sd_bus *bus, UnitControl **ret) {
        _cleanup_(unit_ctl_freep) UnitControl *u = calloc(1, sizeof *u);
        int r;

        if (!u)
                return -ENOMEM;
        u->event = event;
        if (bus)
                u->bus = sd_bus_ref(bus);
        else {
                r = sd_bus_open_system(&u->bus);
                if (r < 0)
                        return log_error_errno(r, "Failed to connect to the system bus: %m");
        }
        r = sd_bus_attach_event(u->bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                /* Synchronous, once at start: the match must be in place
                 * before any job is queued, or its JobRemoved could be missed. */
                r = sd_bus_match_signal(u->bus, &u->job_removed, SD_DEST, SD_PATH, SD_MGR,
                                        "JobRemoved", on_job_removed, u);
        /* systemd only emits JobRemoved and PropertiesChanged to subscribers. */
        if (r >= 0)
                r = sd_bus_call_method(u->bus, SD_DEST, SD_PATH, SD_MGR, "Subscribe", NULL, NULL, "");
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to systemd's signals: %m");
        *ret = TAKE_PTR(u);
        return 0;
}

UnitControl *unit_ctl_free(UnitControl *u) {
        if (!u)
                return NULL;
        while (u->jobs) {
                Job *j = u->jobs;
                u->jobs = j->next;
                job_free(j);
        }
        while (u->watches) {
                UnitWatch *w = u->watches;
                u->watches = w->next;
                sd_bus_slot_unref(w->match);
                sd_bus_slot_unref(w->get);
                sd_event_source_disable_unref(w->refetch);
                for (size_t i = 0; i < ELEMENTSOF(w->values); i++)
                        free(w->values[i]);
                free(w->unit);
                free(w->path);
                free(w);
        }
        sd_bus_slot_unref(u->job_removed);
        sd_bus_flush_close_unref(u->bus);
        free(u);
        return NULL;
}
