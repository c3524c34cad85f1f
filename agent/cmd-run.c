/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

int cmd_run(const CliArgs *a) {
        AgentConfig *c = NULL;
        int r;

        r = cli_load_config(a, &c);
        if (r != 0)
                return r;
        r = daemon_run(c);
        config_free(c);
        return r;
}
