/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The role's units: started one after the other in the configured order
 * (StartUnit, mode replace, each awaited through JobRemoved), a failed one
 * retried with backoff, and all of them watched afterwards so the machine
 * record can say which are active. systemd's Restart= does the restarting. */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "unit-control.h"
#include "macro.h"

typedef struct RoleUnits RoleUnits;

/* Called whenever something changes: all started, a failure (error set,
 * naming the unit and systemd's result), or an ActiveState change. */
typedef void (*role_units_handler_t)(RoleUnits *ru, void *userdata);

int role_units_new(sd_event *event, UnitControl *ctl, char *const *units, role_units_handler_t cb, void *userdata,
                   RoleUnits **ret);
RoleUnits *role_units_free(RoleUnits *ru);
DEFINE_TRIVIAL_CLEANUP_FUNC(RoleUnits *, role_units_free);
int role_units_start(RoleUnits *ru);

bool role_units_all_started(const RoleUnits *ru);
/* Why the units are not all fine: the last start failure until that unit
 * started, else the first unit that failed and is not active again; NULL
 * when none. */
const char *role_units_error(const RoleUnits *ru);
/* The unit role_units_error() is about (NULL when none). */
const char *role_units_error_unit(const RoleUnits *ru);
/* The error is a start job that did not end "done" this many times in a
 * row: something only an operator can fix (the unit keeps being retried).
 * A unit that fails after its start (systemd's Restart= at work) is not. */
#define ROLE_UNITS_FAILED_JOBS 3
bool role_units_error_terminal(const RoleUnits *ru);
size_t role_units_count(const RoleUnits *ru);
size_t role_units_active(const RoleUnits *ru);
const char *role_units_name(const RoleUnits *ru, size_t i);
/* ActiveState ("failed" also while a Restart= is pending), "unknown" until known. */
const char *role_units_state(const RoleUnits *ru, size_t i);
