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

typedef struct role_unit {
        role_units *owner;
        char *name;
        char *field;                    /* "COREKUBE_UNIT=<name>" for the journal */
        char *state;
        bool started;
} role_unit;

struct role_units {
        sd_event *event;
        unit_ctl *ctl;
        role_unit *units;
        size_t n;
        size_t next;                    /* the unit to start next */
        bool busy;
        char *error;
        Backoff backoff;
        sd_event_source *retry;
        role_units_cb cb;
        void *userdata;
};

static void start_next(role_units *ru);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        role_units *ru = userdata;

        ru->retry = sd_event_source_disable_unref(ru->retry);
        start_next(ru);
        return 0;
}

static void on_job(const char *unit, const char *result, const char *detail, void *userdata) {
        role_unit *u = userdata;
        role_units *ru = u->owner;

        ru->busy = false;
        if (streq(result, "done")) {
                u->started = true;
                free(ru->error);
                ru->error = NULL;
                backoff_reset(&ru->backoff);
                log_event(LOG_INFO, MID_UNIT_STARTED, FIELDS(u->field), "Started %s.", unit);
                ru->next++;
                ru->cb(ru, ru->userdata);
                start_next(ru);
                return;
        }

        free(ru->error);
        if (asprintf(&ru->error, "%s: start job %s (%s)", unit, result, detail ?: "unknown") < 0)
                ru->error = NULL;
        {
                uint64_t delay = backoff_next(&ru->backoff), now = 0;
                char d[32];
                log_event(LOG_ERR, MID_UNIT_FAILED, FIELDS(u->field),
                          "Failed to start %s: job %s, unit result %s; retrying in %s.", unit, result,
                          detail ?: "unknown", format_duration(delay - delay % USEC_PER_MSEC, d, sizeof d));
                ru->cb(ru, ru->userdata);
                (void) sd_event_now(ru->event, CLOCK_MONOTONIC, &now);
                if (sd_event_add_time(ru->event, &ru->retry, CLOCK_MONOTONIC, now + delay, 0, on_retry, ru) < 0)
                        log_error("Failed to schedule the retry of %s.", unit);
        }
}

static void start_next(role_units *ru) {
        int r;

        if (ru->busy || ru->retry || ru->next >= ru->n)
                return;
        ru->busy = true;
        r = unit_ctl_job(ru->ctl, "StartUnit", ru->units[ru->next].name, on_job, &ru->units[ru->next]);
        if (r < 0)
                on_job(ru->units[ru->next].name, "error", strerror(-r), &ru->units[ru->next]);
}

static void on_state(const char *unit, const char *state, void *userdata) {
        role_unit *u = userdata;

        if (u->state && streq(u->state, state))
                return;
        if (u->started && streq(state, "failed"))
                log_event(LOG_WARNING, MID_UNIT_FAILED, FIELDS(u->field), "%s failed; systemd restarts it.", unit);
        free(u->state);
        u->state = strdup(state);
        u->owner->cb(u->owner, u->owner->userdata);
}

int role_units_new(sd_event *event, unit_ctl *ctl, char *const *units, role_units_cb cb, void *userdata,
                   role_units **ret) {
        role_units *ru = calloc(1, sizeof *ru);

        if (!ru)
                return -ENOMEM;
        *ru = (role_units) { .event = event, .ctl = ctl, .cb = cb, .userdata = userdata };
        backoff_init(&ru->backoff, USEC_PER_SEC, 60 * USEC_PER_SEC);
        ru->n = strv_length(units);
        ru->units = calloc(ru->n + 1, sizeof(role_unit));
        if (!ru->units) {
                free(ru);
                return -ENOMEM;
        }
        for (size_t i = 0; i < ru->n; i++) {
                ru->units[i] = (role_unit) { .owner = ru, .name = strdup(units[i]) };
                if (!ru->units[i].name || asprintf(&ru->units[i].field, "COREKUBE_UNIT=%s", units[i]) < 0) {
                        role_units_free(ru);
                        return -ENOMEM;
                }
        }
        *ret = ru;
        return 0;
}

int role_units_start(role_units *ru) {
        for (size_t i = 0; i < ru->n; i++) {
                int r = unit_ctl_watch(ru->ctl, ru->units[i].name, on_state, &ru->units[i]);
                if (r < 0)
                        return r;
        }
        start_next(ru);
        return 0;
}

role_units *role_units_free(role_units *ru) {
        if (!ru)
                return NULL;
        for (size_t i = 0; i < ru->n; i++) {
                free(ru->units[i].name);
                free(ru->units[i].field);
                free(ru->units[i].state);
        }
        free(ru->units);
        free(ru->error);
        sd_event_source_disable_unref(ru->retry);
        free(ru);
        return NULL;
}

bool role_units_all_started(const role_units *ru) {
        return ru->next >= ru->n;
}

const char *role_units_error(const role_units *ru) {
        return ru->error;
}

size_t role_units_count(const role_units *ru) {
        return ru->n;
}

size_t role_units_active(const role_units *ru) {
        size_t k = 0;

        for (size_t i = 0; i < ru->n; i++)
                k += ru->units[i].state && streq(ru->units[i].state, "active");
        return k;
}

const char *role_units_name(const role_units *ru, size_t i) {
        return ru->units[i].name;
}

const char *role_units_state(const role_units *ru, size_t i) {
        return ru->units[i].state ?: "unknown";
}
