/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the fuzz targets: each defines LLVMFuzzerTestOneInput; built
 * with libFuzzer (clang, -Dfuzz=true) or with fuzz-main.c, which replays
 * the committed inputs under any compiler. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parsers take C strings: the input up to its first NUL. */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                return NULL;
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/* A broken invariant is a finding: say which, then crash so that libFuzzer
 * keeps the input (and the replay test fails). */
#define fuzz_check(cond)                                                                \
        do {                                                                            \
                if (!(cond)) {                                                          \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,      \
                                __LINE__, #cond);                                       \
                        __builtin_trap();                                               \
                }                                                                       \
        } while (0)
