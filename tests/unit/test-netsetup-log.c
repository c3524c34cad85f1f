/* SPDX-License-Identifier: Apache-2.0 */
/* netsetup's messages through the agent's log hook (issue 15, point 3): its
 * warnings and notes reach the agent's log with their level; a failure is
 * not logged by netsetup but handed to the caller (ns_error_detail()), which
 * logs it once. Captures the agent's stderr log. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "netsetup.h"
#include "ns-internal.h"
#include "overlay-sync.h"

static int saved_stderr = -1;
static char capture_path[] = "/tmp/test-netsetup-log-XXXXXX";

static int capture_start(void **state) {
        int fd = mkstemp(capture_path);

        assert_true(fd >= 0);
        fflush(stderr);
        saved_stderr = dup(STDERR_FILENO);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        close(fd);
        log_force_stderr(true);
        log_set_max_level(LOG_INFO);
        ns_set_log_func(log_netsetup);
        return 0;
}

static int capture_stop(void **state) {
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        unlink(capture_path);
        strcpy(capture_path, "/tmp/test-netsetup-log-XXXXXX");
        return 0;
}

/* What the agent logged so far (the caller frees it). */
static char *captured(void) {
        FILE *f;
        char *buf = calloc(1, 65536);

        fflush(stderr);
        f = fopen(capture_path, "re");
        assert_non_null(f);
        assert_non_null(buf);
        (void) fread(buf, 1, 65535, f);
        fclose(f);
        return buf;
}

static size_t count_lines_with(const char *text, const char *needle) {
        size_t n = 0;

        for (const char *p = text; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

static void test_hook_levels(void **state) {
        char *out;

        ns_log_warning("Netlink replies were lost (%s)", "test");
        ns_log_info("Replacing %s: %s", "flannel.9", "test");
        ns_log_debug("Reconciled %s", "flannel.9");
        out = captured();
        assert_int_equal(count_lines_with(out, ": warning: Netlink replies were lost (test)\n"), 1);
        assert_int_equal(count_lines_with(out, ": info: Replacing flannel.9: test\n"), 1);
        assert_null(strstr(out, "Reconciled"));         /* below the agent's level */
        free(out);
}

static void test_failure_is_detail(void **state) {
        char *out;

        /* A failure is returned with its message, not logged. */
        assert_int_equal(ns_log_full(LOG_ERR, EIO, "Failed to read %s: %m", "x"), -EIO);
        out = captured();
        assert_null(strstr(out, "Failed to read"));
        free(out);
        assert_null(ns_error_detail(-ENOMEM));          /* not that failure's */
        assert_string_equal(ns_error_detail(-EIO), "Failed to read x: Input/output error");
        assert_null(ns_error_detail(-EIO));             /* once */
}

static int count_failed;
static void on_overlay(OverlaySync *s, OverlaySyncEvent ev, int error, const char *message, void *userdata) {
        if (ev == OVERLAY_SYNC_FAILED)
                count_failed++;
}

/* A real netsetup failure (a configuration the library refuses): logged once,
 * by overlay-sync, which decides (a warning: it retries), with netsetup's
 * detail in it. */
static void test_failure_logged_once(void **state) {
        ns_overlay_config cfg = { .vni = 1, .port = 8472, .network_len = 16, .subnet_len = 24 };
        sd_event *event = NULL;
        ns_ctx *ns = NULL;
        OverlaySync *s = NULL;
        char *out;

        inet_pton(AF_INET, "10.244.0.0", &cfg.network);
        inet_pton(AF_INET, "10.244.7.0", &cfg.subnet);
        inet_pton(AF_INET, "192.168.3.7", &cfg.local);  /* underlay_ifindex 0: refused */
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(ns_new(&ns), 0);
        assert_int_equal(overlay_sync_new(event, ns, on_overlay, NULL, &s), 0);
        assert_int_equal(overlay_sync_set_config(s, &cfg), -ENETDOWN);
        assert_int_equal(count_failed, 1);

        out = captured();
        assert_int_equal(count_lines_with(out, "Invalid overlay configuration: no underlying interface"), 1);
        assert_int_equal(count_lines_with(out, ": warning: Cannot set up flannel.1: Invalid overlay configuration: "
                                               "no underlying interface; trying again in "), 1);
        free(out);
        overlay_sync_free(s);
        ns_free(ns);
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_hook_levels, capture_start, capture_stop),
                cmocka_unit_test_setup_teardown(test_failure_is_detail, capture_start, capture_stop),
                cmocka_unit_test_setup_teardown(test_failure_logged_once, capture_start, capture_stop),
        };

        return cmocka_run_group_tests_name("netsetup-log", tests, NULL, NULL);
}
