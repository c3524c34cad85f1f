/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the config loader tests: each test gets a fresh directory with
 * agent.conf (and agent.conf.d/), loads it with an explicit environment and
 * captures every diagnostic, paths made relative to that directory.
 * Include after <cmocka.h>: the macros below use its assertions. */

#include <limits.h>
#include <stddef.h>

#include "config-keys.h"
#include "config.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Five lines that make a valid configuration. */
#define BASE                                    \
        "[node]\n"                              \
        "role = minion\n"                       \
        "name = node-1\n"                       \
        "[etcd]\n"                              \
        "endpoints = http://127.0.0.1:2379\n"

/* BASE plus a complete artifact; its next line is line 10. */
#define BASE_ARTIFACT                           \
        BASE                                    \
        "[artifact.a]\n"                        \
        "url = https://example.invalid/a\n"     \
        "sha256 = " HEX64 "\n"                  \
        "path = /opt/bin/a\n"

typedef struct ctx {
        char dir[PATH_MAX + 16];
        char main[PATH_MAX + 32];
        char *diags[64];
        size_t n_diags;
        AgentConfig *c;
} ctx;

extern char *const no_env[];

int group_setup(void **state);
int group_teardown(void **state);
int setup(void **state);
int teardown(void **state);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

void write_file(ctx *x, const char *rel, const char *text);
/* Loads path (or the test's agent.conf) with env (NULL: an empty one). */
int load_path(ctx *x, const char *path, char *const *env);
int load(ctx *x, char *const *env);
int load_text(ctx *x, const char *text, char *const *env);
void print_diags(const ctx *x);
/* The diag callback of ConfigLoadOptions; userdata is the ctx. */
void capture(int level, const char *msg, void *userdata);

/* The captured diagnostics must be exactly these, in this order. */
#define expect_diags(x, ...) expect_diags_internal((x), (const char *const[]) { __VA_ARGS__, NULL })
void expect_diags_internal(const ctx *x, const char *const *want);

/* Loads text and expects failure with exactly one diagnostic. */
#define expect_one_error(x, text, env, msg)                             \
        do {                                                            \
                assert_int_equal(load_text((x), (text), (env)), -EINVAL); \
                assert_null((x)->c);                                    \
                expect_diags((x), (msg));                               \
        } while (0)

/* Loads text and expects success without any diagnostic. */
void expect_ok(ctx *x, const char *text, char *const *env);

const ConfigSectionDef *section(const char *name);
void *section_base(const AgentConfig *c, const char *name);
size_t key_index(const char *sect, const char *key);
/* A key's value as the printout would show it. */
char *value_of(const AgentConfig *c, const char *sect, const char *key);
void assert_value(const AgentConfig *c, const char *sect, const char *key, const char *want);
/* Where a key's value came from, as the printout shows it (relative). */
void assert_origin(const ctx *x, const char *sect, const char *key, const char *want);
