/* SPDX-License-Identifier: Apache-2.0 */
#include "leave-unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "unit-control.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MGR  "org.freedesktop.systemd1.Manager"

struct LeaveUnit {
        sd_bus *bus;
        UnitControl *ctl;
        leave_unit_done_handler_t done;
        void *userdata;
};

static void bus_unrefp(sd_bus **b) {
        sd_bus_flush_close_unref(*b);
}

/* Answers that mean "no such unit here", not "cannot ask": the unit is not
 * loaded, or no service manager is on this bus at all. */
static bool is_no_unit_error(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit") ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.ServiceUnknown") ||
               sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.NameHasNoOwner");
}

int leave_unit_owns_pid(pid_t pid, sd_bus **ret_bus, pid_t *ret_main_pid, char **ret_why) {
        __attribute__((cleanup(bus_unrefp))) sd_bus *bus = NULL;
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error e = SD_BUS_ERROR_NULL;
        __attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *reply = NULL;
        const char *path;
        uint32_t main_pid = 0;
        int r;

        *ret_main_pid = 0;
        *ret_why = NULL;
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                if (asprintf(ret_why, "cannot connect to the system bus: %s", strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }
        /* GetUnit, not LoadUnit: a unit that is not loaded runs nothing. */
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MGR, "GetUnit", &e, &reply, "s", AGENT_UNIT);
        if (r < 0 && is_no_unit_error(&e))
                return 0;
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, SD_DEST, path, "org.freedesktop.systemd1.Service", "MainPID",
                                                &e, 'u', &main_pid);
        if (r < 0) {
                if (asprintf(ret_why, "cannot ask systemd about %s: %s", AGENT_UNIT,
                             e.message ?: strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }
        *ret_main_pid = (pid_t) main_pid;
        if (pid <= 0 || (pid_t) main_pid != pid)
                return 0;
        *ret_bus = TAKE_PTR(bus);
        return 1;
}

static int disable_and_reload(LeaveUnit *u) {
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error e = SD_BUS_ERROR_NULL;
        __attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *m = NULL, *reply = NULL;
        const char *type, *file, *dest;
        int r;

        r = sd_bus_message_new_method_call(u->bus, &m, SD_DEST, SD_PATH, SD_MGR, "DisableUnitFiles");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char *[]) { (char *) AGENT_UNIT, NULL });
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);     /* runtime: no, the persistent links */
        if (r >= 0)
                r = sd_bus_call(u->bus, m, 0, &e, &reply);
        if (r < 0)
                return log_error_errno(r, "Failed to disable %s: %s", AGENT_UNIT, e.message ?: strerror(-r));
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        while (r > 0 && (r = sd_bus_message_read(reply, "(sss)", &type, &file, &dest)) > 0)
                if (streq(type, "unlink"))
                        log_notice("Removed %s.", file);
        if (r < 0)
                log_warning_errno(r, "Cannot read what disabling %s changed: %m", AGENT_UNIT);
        log_notice("Disabled %s.", AGENT_UNIT);
        /* As systemctl disable does: the manager reads the unit files again. */
        sd_bus_error_free(&e);
        r = sd_bus_call_method(u->bus, SD_DEST, SD_PATH, SD_MGR, "Reload", &e, NULL, "");
        if (r < 0)
                return log_error_errno(r, "Failed to reload systemd after disabling %s: %s", AGENT_UNIT,
                                       e.message ?: strerror(-r));
        return 0;
}

static void on_stopped(const char *unit, const char *job_result, const char *detail, void *userdata) {
        LeaveUnit *u = userdata;

        if (!streq(job_result, "done")) {
                log_error("Failed to stop %s: job %s (%s); nothing was released.", unit, job_result,
                          detail ?: "unknown");
                u->done(-EIO, u->userdata);
                return;
        }
        log_notice("Stopped %s.", unit);
        u->done(disable_and_reload(u), u->userdata);
}

int leave_unit_stop_disable(sd_event *event, sd_bus *bus, leave_unit_done_handler_t done, void *userdata,
                            LeaveUnit **ret) {
        _cleanup_(leave_unit_freep) LeaveUnit *u = calloc(1, sizeof *u);
        int r;

        if (!u)
                return -ENOMEM;
        *u = (LeaveUnit) { .bus = sd_bus_ref(bus), .done = done, .userdata = userdata };
        /* UnitControl installs the JobRemoved match before any job is queued. */
        r = unit_ctl_new(event, bus, &u->ctl);
        if (r >= 0) {
                log_notice("Stopping %s.", AGENT_UNIT);
                r = unit_ctl_job(u->ctl, "StopUnit", AGENT_UNIT, on_stopped, u);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}

LeaveUnit *leave_unit_free(LeaveUnit *u) {
        if (!u)
                return NULL;
        unit_ctl_free(u->ctl);
        sd_bus_unref(u->bus);
        free(u);
        return NULL;
}
