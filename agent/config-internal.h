/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The loader's state, shared by config.c (files, cross checks) and
 * config-env.c (the COREKUBE_* environment). */

#include <stdbool.h>
#include <stddef.h>

#include "config-keys.h"
#include "config.h"

typedef struct ConfigLoader {
        AgentConfig *c;
        const ConfigLoadOptions *opts;
        unsigned errors;
        /* current section while reading a file */
        const ConfigSectionDef *sect;
        void *base;
        bool skip_section;              /* unknown section: its keys are not reported again */
        /* keys whose value was rejected: "is required" would only repeat that */
        const ConfigKeyDef *rejected[64];
        const char *rejected_artifact[64];      /* the artifact's name, for artifact keys */
        size_t n_rejected;
} ConfigLoader;

/* Reports a problem at o ("FILE:LINE: ..."); LOG_ERR and worse count as errors. */
void config_diag(ConfigLoader *l, int level, const ConfigOrigin *o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Assigns one key of section s (whose struct is at base) from its text;
 * a rejected value is reported. Returns 0, -EINVAL or -ENOMEM. */
int config_assign(ConfigLoader *l, const ConfigSectionDef *s, void *base, const ConfigKeyDef *k, const char *value,
                  const ConfigOrigin *o);
Artifact *config_artifact_find(AgentConfig *c, const char *name);
Artifact *config_artifact_add(ConfigLoader *l, const char *name, const ConfigOrigin *o);
/* Applies the COREKUBE_* variables of l->opts->environ (or the process's). */
int config_apply_env(ConfigLoader *l);
