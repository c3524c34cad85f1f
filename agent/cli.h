/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

/* Exit codes of SPEC section 3 (sysexits.h values). */
#define EXIT_RUNTIME     1
#define EXIT_USAGE       64
#define EXIT_UNAVAILABLE 69
#define EXIT_CONFIG      78

typedef struct cli_args {
        const char *config_path;        /* NULL: the default */
        bool json;
        bool wait;
        const char *wait_timeout;       /* NULL: no timeout given */
        const char *node;               /* leave --node: a machine record's name or ID */
        bool force;                     /* leave --node --force: even while it is alive */
} cli_args;

int cmd_check_config(const cli_args *a);
int cmd_run(const cli_args *a);
int cmd_status(const cli_args *a);
int cmd_leave(const cli_args *a);

/* Loads the configuration, reporting problems on stderr (and in the
 * journal when running under it). Returns 0, or EXIT_CONFIG / EXIT_RUNTIME. */
struct ck_config;
int cli_load_config(const cli_args *a, struct ck_config **ret);
