/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A small INI reader: "[section]", "key = value", whole-line comments with
 * '#' or ';', and trailing comments that start with whitespace + '#'. Values
 * are passed verbatim otherwise (no quoting rules), so JSON fits. */

typedef struct IniCallbacks {
        int (*section)(const char *name, const char *file, unsigned line, void *userdata);
        int (*key)(const char *key, const char *value, const char *file, unsigned line, void *userdata);
        int (*error)(const char *msg, const char *file, unsigned line, void *userdata);
} IniCallbacks;

/* Returns 0, the first negative value a callback returned, or a negative
 * errno if the file cannot be read. */
int ini_parse_file(const char *path, const IniCallbacks *cb, void *userdata);
int ini_parse_string(const char *text, const char *name, const IniCallbacks *cb, void *userdata);
