/* SPDX-License-Identifier: Apache-2.0 */
#include "role-units.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "values.h"

typedef struct RoleUnit {
        RoleUnits *owner;
        char *name;
        char *field;                    /* "COREKUBE_UNIT=<name>" for the journal */
        char *state;                    /* ActiveState, "failed" while Restart= is pending */
        char *failure;                  /* "<unit>: <what failed> (<result>)" until it is active again */
        unsigned job_failures;          /* start jobs not "done" in a row */
        bool started;
} RoleUnit;

struct RoleUnits {
        sd_event *event;
        UnitControl *ctl;
        RoleUnit *units;
        size_t n;
        size_t next;                    /* the unit to start next */
        bool busy;
        char *error;
        RoleUnit *error_unit;           /* whose start job error is */
        Backoff backoff;
        sd_event_source *retry;
        role_units_handler_t cb;
        void *userdata;
};

static void start_next(RoleUnits *ru);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        RoleUnits *ru = userdata;

        ru->retry = sd_event_source_disable_unref(ru->retry);
        start_next(ru);
        return 0;
}

static void unit_started(RoleUnits *ru, RoleUnit *u, const char *how) {
        u->started = true;
        u->job_failures = 0;
        free(ru->error);
        ru->error = NULL;
        ru->error_unit = NULL;
        backoff_reset(&ru->backoff);
        ru->retry = sd_event_source_disable_unref(ru->retry);
        log_event(LOG_INFO, MID_UNIT_STARTED, FIELDS(u->field), "Started %s%s.", u->name, how);
        ru->next++;
        ru->cb(ru, ru->userdata);
        start_next(ru);
}

static void set_failure(RoleUnit *u, const char *what, const char *result) {
        free(u->failure);
        if (asprintf(&u->failure, "%s: %s (%s)", u->name, what, result) < 0)
                u->failure = NULL;
}

static void on_job(const char *unit, const char *result, const char *detail, void *userdata) {
        RoleUnit *u = userdata;
        RoleUnits *ru = u->owner;
        uint64_t delay, now = 0;
        char d[32], rf[96];

        ru->busy = false;
        if (streq(result, "done")) {
                /* The start job is done, so the unit is active: the watch
                 * reports it one Get later, and the record must not say
                 * ready beside an "inactive" unit meanwhile. */
                if (!u->state || !streq(u->state, "active")) {
                        free(u->state);
                        u->state = strdup("active");
                }
                unit_started(ru, u, "");
                return;
        }

        free(ru->error);
        if (asprintf(&ru->error, "%s: start job %s (%s)", unit, result, detail ?: "unknown") < 0)
                ru->error = NULL;
        ru->error_unit = u;
        u->job_failures++;
        /* Logged here; the watch then sees the unit failing and stays quiet. */
        set_failure(u, "start job failed", detail ?: "unknown");
        delay = backoff_next(&ru->backoff);
        snprintf(rf, sizeof rf, "COREKUBE_RESULT=%s", detail ?: "unknown");
        log_event(LOG_ERR, MID_UNIT_FAILED, FIELDS(u->field, rf),
                  "Failed to start %s: job %s, unit result %s; retrying in %s.", unit, result,
                  detail ?: "unknown", format_duration(delay - delay % USEC_PER_MSEC, d, sizeof d));
        ru->cb(ru, ru->userdata);
        (void) sd_event_now(ru->event, CLOCK_MONOTONIC, &now);
        if (sd_event_add_time(ru->event, &ru->retry, CLOCK_MONOTONIC, now + delay, USEC_PER_MSEC, on_retry, ru) < 0)
                log_error("Failed to schedule the retry of %s.", unit);
}

static void start_next(RoleUnits *ru) {
        int r;

        if (ru->busy || ru->retry || ru->next >= ru->n)
                return;
        ru->busy = true;
        r = unit_ctl_job(ru->ctl, "StartUnit", ru->units[ru->next].name, on_job, &ru->units[ru->next]);
        if (r < 0)
                on_job(ru->units[ru->next].name, "error", strerror(-r), &ru->units[ru->next]);
}

static void on_state(const char *unit, const UnitState *st, void *userdata) {
        RoleUnit *u = userdata;
        RoleUnits *ru = u->owner;
        const char *result = st->result ?: "unknown";
        /* Between a failed run and systemd's Restart= the unit is
         * "activating (auto-restart)": failed as far as the record goes. */
        bool failing = streq(st->active_state, "failed") ||
                       (streq(st->active_state, "activating") && streq(st->sub_state, "auto-restart"));
        const char *shown = failing ? "failed" : st->active_state;
        bool changed = !u->state || !streq(u->state, shown);
        char rf[96];

        /* systemd could not be asked: the watch asks again; what we knew stays. */
        if (st->error)
                return;

        if (failing && !u->failure) {
                set_failure(u, "failed", result);
                snprintf(rf, sizeof rf, "COREKUBE_RESULT=%s", result);
                log_event(LOG_WARNING, MID_UNIT_FAILED, FIELDS(u->field, rf), "%s failed (result %s).", unit, result);
                changed = true;
        } else if (streq(st->active_state, "active") && u->failure) {
                free(u->failure);
                u->failure = NULL;
                log_info("%s is active again.", unit);
                changed = true;
        }
        if (changed) {
                free(u->state);
                u->state = strdup(shown);
        }

        /* Waiting to retry a unit that systemd's Restart= brought up in the
         * meantime: it is started. */
        if (ru->retry && !ru->busy && ru->next < ru->n && &ru->units[ru->next] == u &&
            streq(st->active_state, "active")) {
                unit_started(ru, u, " (by its Restart=)");
                return;
        }
        if (changed)
                ru->cb(ru, ru->userdata);
}

int role_units_new(sd_event *event, UnitControl *ctl, char *const *units, role_units_handler_t cb, void *userdata,
                   RoleUnits **ret) {
        _cleanup_(role_units_freep) RoleUnits *ru = calloc(1, sizeof *ru);

        if (!ru)
                return -ENOMEM;
        *ru = (RoleUnits) { .event = event, .ctl = ctl, .cb = cb, .userdata = userdata };
        backoff_init(&ru->backoff, USEC_PER_SEC, 60 * USEC_PER_SEC);
        ru->n = strv_length(units);
        ru->units = calloc(ru->n + 1, sizeof(RoleUnit));
        if (!ru->units)
                return -ENOMEM;
        for (size_t i = 0; i < ru->n; i++) {
                ru->units[i] = (RoleUnit) { .owner = ru, .name = strdup(units[i]) };
                if (!ru->units[i].name || asprintf(&ru->units[i].field, "COREKUBE_UNIT=%s", units[i]) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(ru);
        return 0;
}

int role_units_start(RoleUnits *ru) {
        for (size_t i = 0; i < ru->n; i++) {
                int r = unit_ctl_watch(ru->ctl, ru->units[i].name, on_state, &ru->units[i]);
                if (r < 0)
                        return r;
        }
        start_next(ru);
        return 0;
}

RoleUnits *role_units_free(RoleUnits *ru) {
        if (!ru)
                return NULL;
        for (size_t i = 0; ru->units && i < ru->n; i++) {
                free(ru->units[i].name);
                free(ru->units[i].field);
                free(ru->units[i].state);
                free(ru->units[i].failure);
        }
        free(ru->units);
        free(ru->error);
        sd_event_source_disable_unref(ru->retry);
        free(ru);
        return NULL;
}

bool role_units_all_started(const RoleUnits *ru) {
        return ru->next >= ru->n;
}

const char *role_units_error(const RoleUnits *ru) {
        if (ru->error)
                return ru->error;
        for (size_t i = 0; i < ru->n; i++)
                if (ru->units[i].failure)
                        return ru->units[i].failure;
        return NULL;
}

const char *role_units_error_unit(const RoleUnits *ru) {
        if (ru->error)
                return ru->error_unit ? ru->error_unit->name : NULL;
        for (size_t i = 0; i < ru->n; i++)
                if (ru->units[i].failure)
                        return ru->units[i].name;
        return NULL;
}

bool role_units_error_terminal(const RoleUnits *ru) {
        return ru->error && ru->error_unit && ru->error_unit->job_failures >= ROLE_UNITS_FAILED_JOBS;
}

size_t role_units_count(const RoleUnits *ru) {
        return ru->n;
}

size_t role_units_active(const RoleUnits *ru) {
        size_t k = 0;

        for (size_t i = 0; i < ru->n; i++)
                k += ru->units[i].state && streq(ru->units[i].state, "active");
        return k;
}

const char *role_units_name(const RoleUnits *ru, size_t i) {
        return ru->units[i].name;
}

const char *role_units_state(const RoleUnits *ru, size_t i) {
        return ru->units[i].state ?: "unknown";
}
