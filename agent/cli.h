/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

/* Exit codes of SPEC section 3 (sysexits.h values). */
#define EXIT_RUNTIME     1
#define EXIT_USAGE       64
#define EXIT_UNAVAILABLE 69
#define EXIT_CONFIG      78

typedef struct CliArgs {
        const char *config_path;        /* NULL: the default */
        bool json;
        bool wait;
        const char *wait_timeout;       /* NULL: no timeout given */
        const char *node;               /* leave --node: a machine record's name or ID */
        bool force;                     /* leave --node --force: even while it is alive */
} CliArgs;

int cmd_check_config(const CliArgs *a);
int cmd_run(const CliArgs *a);
int cmd_status(const CliArgs *a);
int cmd_leave(const CliArgs *a);

/* Loads the configuration, reporting problems on stderr (and in the
 * journal when running under it). Returns 0, or EXIT_CONFIG / EXIT_RUNTIME. */
struct AgentConfig;
int cli_load_config(const CliArgs *a, struct AgentConfig **ret);
