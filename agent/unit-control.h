/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Unit control through systemd's D-Bus API, asynchronously on our sd-event
 * loop: StartUnit/RestartUnit awaited through JobRemoved (the match is in
 * place before the call), and state watches for the role units: one GetAll
 * per interface, then the values systemd's PropertiesChanged carries. */

#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct UnitControl UnitControl;

/* job_result: systemd's job result ("done", "failed", "canceled", "timeout",
 * "dependency", "skipped", ...) or "error" when the call itself failed;
 * detail: the unit's Result property (e.g. "exit-code") or the bus error. */
typedef void (*unit_job_handler_t)(const char *unit, const char *job_result, const char *detail, void *userdata);
/* What a watch reports: ActiveState, SubState and, for services, Result
 * ("success", "exit-code", "signal", ...; NULL for other unit types). A
 * service between a failed run and its Restart= shows active_state
 * "activating", sub_state "auto-restart" and the failed run's result. */
typedef struct UnitState {
        const char *active_state;
        const char *sub_state;
        const char *result;
        /* Set when systemd could not be asked (active_state and sub_state
         * are then "unknown"): the watch asks again with backoff. */
        const char *error;
} UnitState;

typedef void (*unit_state_handler_t)(const char *unit, const UnitState *state, void *userdata);

/* bus: NULL connects to the system bus. */
int unit_ctl_new(sd_event *event, sd_bus *bus, UnitControl **ret);
UnitControl *unit_ctl_free(UnitControl *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(UnitControl *, unit_ctl_free);

/* method: "StartUnit" or "RestartUnit"; mode "replace". */
int unit_ctl_job(UnitControl *u, const char *method, const char *unit, unit_job_handler_t cb, void *userdata);
/* Forget the callback of every job in flight queued with cb and userdata:
 * its JobRemoved is then ignored. For a caller that queues the job again
 * (the job's input changed meanwhile). */
void unit_ctl_job_detach(UnitControl *u, unit_job_handler_t cb, void *userdata);
/* Calls cb with the unit's current state now-ish and after every change. */
int unit_ctl_watch(UnitControl *u, const char *unit, unit_state_handler_t cb, void *userdata);
/* One uint64 property of a unit (a timestamp, a counter), asynchronously:
 * cb gets it, or a negative errno. */
typedef void (*unit_u64_handler_t)(const char *unit, int error, uint64_t value, void *userdata);
int unit_ctl_get_u64(UnitControl *u, const char *unit, const char *iface, const char *property, unit_u64_handler_t cb,
                     void *userdata);
/* ResetFailedUnit: clears the failed state and the start rate limit. */
int unit_ctl_reset_failed(UnitControl *u, const char *unit);
/* Number of jobs still waiting for JobRemoved. */
unsigned unit_ctl_pending(UnitControl *u);
