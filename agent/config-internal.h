/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The loader's state, shared by config.c (files, cross checks) and
 * config-env.c (the COREKUBE_* environment). */

#include <stdbool.h>
#include <stddef.h>

#include "config-keys.h"
#include "config.h"

typedef struct loader {
        ck_config *c;
        const ck_load_options *opts;
        unsigned errors;
        /* current section while reading a file */
        const ck_section_def *sect;
        void *base;
        bool skip_section;              /* unknown section: its keys are not reported again */
        /* keys whose value was rejected: "is required" would only repeat that */
        const ck_key_def *rejected[64];
        const char *rejected_artifact[64];      /* the artifact's name, for artifact keys */
        size_t n_rejected;
} loader;

/* Reports a problem at o ("FILE:LINE: ..."); LOG_ERR and worse count as errors. */
void config_diag(loader *l, int level, const ck_origin *o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Assigns one key of section s (whose struct is at base) from its text;
 * a rejected value is reported. Returns 0, -EINVAL or -ENOMEM. */
int config_assign(loader *l, const ck_section_def *s, void *base, const ck_key_def *k, const char *value,
                  const ck_origin *o);
ck_artifact *config_artifact_find(ck_config *c, const char *name);
ck_artifact *config_artifact_add(loader *l, const char *name, const ck_origin *o);
/* Applies the COREKUBE_* variables of l->opts->environ (or the process's). */
int config_apply_env(loader *l);
