/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Environment files (subnet.env, docker_opts.env, cluster.env), written
 * atomically: temp file in the same directory, fsync, rename. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct EnvFile {
        char *text;
        size_t len;
        int error;                      /* first error while building, e.g. -EINVAL for an unsafe value */
} EnvFile;

/* KEY=value, the value written bare; only characters that need no quoting
 * in either shell or systemd EnvironmentFile= syntax are accepted. */
void envfile_add(EnvFile *e, const char *key, const char *value);
/* KEY="value" with the same restriction (spaces allowed). */
void envfile_add_quoted(EnvFile *e, const char *key, const char *value);
void envfile_done(EnvFile *e);

/* Writes content to path atomically with the given mode, creating the parent
 * directory (0755) if needed; refuses to write through a symlink. Returns 1 if
 * the file changed, 0 if it already held exactly this content, or a negative
 * errno. */
int write_file_atomic(const char *path, const char *content, size_t len, mode_t mode);

/* mkdir -p with mode 0755. */
int mkdir_parents(const char *dir);

/* Reads the value of KEY from an env file written by us. Returns 0, -ENOENT
 * (no file or no key) or another negative errno. */
int envfile_read_value(const char *path, const char *key, char **ret);
