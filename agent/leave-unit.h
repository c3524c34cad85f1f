/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What `leave` asks systemd over the system bus when the agent's lock is
 * held: is the holder corekube-agent.service's main process, and if so, stop
 * and disable that unit. */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include "macro.h"

#define AGENT_UNIT "corekube-agent.service"

/* Connects to the system bus and compares pid with the unit's MainPID.
 * Returns 1 (it is: *ret_bus is the connection, for the stop), 0 (it is not,
 * or there is no such unit or no systemd on the bus; *ret_main_pid says the
 * unit's main PID, 0 for none), or a negative errno when the bus or systemd
 * cannot be asked (*ret_why says why). */
int leave_unit_owns_pid(pid_t pid, sd_bus **ret_bus, pid_t *ret_main_pid, char **ret_why);

/* StopUnit(AGENT_UNIT, "replace") on event, awaited through JobRemoved; then
 * DisableUnitFiles and a Reload, as `systemctl disable` does. done gets 0 or
 * a negative errno (the failure already logged). */
typedef void (*leave_unit_done_handler_t)(int error, void *userdata);
typedef struct LeaveUnit LeaveUnit;
int leave_unit_stop_disable(sd_event *event, sd_bus *bus, leave_unit_done_handler_t done, void *userdata,
                            LeaveUnit **ret);
LeaveUnit *leave_unit_free(LeaveUnit *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(LeaveUnit *, leave_unit_free);
