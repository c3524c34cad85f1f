/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "log.h"

static void report(int level, const char *msg, void *userdata) {
        /* Compiler-style lines on a terminal; structured records in the journal. */
        if (log_to_journal())
                log_full(level, "%s", msg);
        else
                fprintf(stderr, "%s%s\n", level <= LOG_ERR ? "" : "warning: ", msg);
}

int cli_load_config(const CliArgs *a, AgentConfig **ret) {
        ConfigLoadOptions o = {
                .path = a->config_path,
                .diag = report,
        };
        int r;

        r = config_load(&o, ret);
        if (r == -EINVAL) {
                log_full(log_to_journal() ? LOG_ERR : LOG_DEBUG, "Configuration is invalid, nothing changed.");
                return EXIT_CONFIG;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to load the configuration: %m");
                return EXIT_RUNTIME;
        }
        return 0;
}

int cmd_check_config(const CliArgs *a) {
        AgentConfig *c = NULL;
        int r;

        r = cli_load_config(a, &c);
        if (r != 0)
                return r;
        config_dump(c, stdout);
        config_free(c);
        return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
}
