/* SPDX-License-Identifier: Apache-2.0 */
/* COREKUBE_<SECTION>_<KEY> environment variables: they win over the files
 * and are applied after them, through the same assignment as a file's line. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config-internal.h"
#include "config-keys.h"
#include "macro.h"

extern char **environ;

static void env_to_key(char *s) {
        for (char *p = s; *p; p++)
                *p = *p == '_' ? '-' : (char) tolower((unsigned char) *p);
}

static int apply_env_one(ConfigLoader *l, const char *name, const char *value) {
        ConfigOrigin o = { .kind = ORIGIN_ENV, .env = (char *) name };

        for (size_t i = 0; i < ck_n_sections; i++)
                for (size_t j = 0; j < ck_sections[i].n_keys; j++) {
                        _cleanup_free_ char *e = config_env_name(ck_sections[i].name, ck_sections[i].keys[j].name);
                        if (!e)
                                return -ENOMEM;
                        if (streq(e, name)) {
                                if (ck_sections[i].alias_of) {
                                        _cleanup_free_ char *use = config_env_name(ck_sections[i].alias_of,
                                                                                   ck_sections[i].keys[j].name);
                                        config_diag(l, LOG_NOTICE, &o, "deprecated: use %s", use ?: "[runtime]");
                                }
                                int r = config_assign(l, &ck_sections[i], config_section_base(l->c, &ck_sections[i]),
                                               &ck_sections[i].keys[j], value, &o);
                                return r == -ENOMEM ? r : 1;
                        }
                }

        /* COREKUBE_ARTIFACT_<NAME>_<KEY>: NAME matched against the artifacts
         * named so far, in sections or role lists; else taken as given. */
        if (strncmp(name, "COREKUBE_ARTIFACT_", 18) == 0)
                for (size_t j = 0; j < ck_artifact_section.n_keys; j++) {
                        const ConfigKeyDef *k = &ck_artifact_section.keys[j];
                        _cleanup_free_ char *suffix = config_env_name("", k->name);
                        _cleanup_free_ char *aname = NULL;
                        size_t nl = strlen(name), sl;
                        Artifact *a = NULL;

                        if (!suffix)
                                return -ENOMEM;
                        /* suffix is "COREKUBE__URL": keep "_URL" */
                        sl = strlen(suffix + 9);
                        if (nl <= 18 + sl || !streq(name + nl - sl, suffix + 9))
                                continue;
                        aname = strndup(name + 18, nl - 18 - sl);
                        if (!aname)
                                return -ENOMEM;
                        for (size_t i = 0; i < l->c->n_artifacts && !a; i++) {
                                _cleanup_free_ char *e = config_env_name("ARTIFACT", l->c->artifacts[i].name);
                                if (e && strncmp(e, name, strlen(e)) == 0 && streq(name + strlen(e), suffix + 9))
                                        a = &l->c->artifacts[i];
                        }
                        for (int ro = 0; ro < _ROLE_MAX && !a; ro++)
                                for (char **p = l->c->roles[ro].artifacts; p && *p && !a; p++) {
                                        _cleanup_free_ char *e = config_env_name("ARTIFACT", *p);
                                        if (e && strncmp(e, name, strlen(e)) == 0 &&
                                            streq(name + strlen(e), suffix + 9) && !(a = config_artifact_add(l, *p, &o)))
                                                return -ENOMEM;
                                }
                        if (!a) {
                                env_to_key(aname);
                                if (!(a = config_artifact_add(l, aname, &o)))
                                        return -ENOMEM;
                        }
                        return config_assign(l, &ck_artifact_section, a, k, value, &o) == -ENOMEM ? -ENOMEM : 1;
                }
        return 0;
}

int config_apply_env(ConfigLoader *l) {
        char *const *env = l->opts->environ ? l->opts->environ : environ;

        /* Role sections first: their artifact lists decide how
         * COREKUBE_ARTIFACT_* names are split. */
        for (int pass = 0; pass < 2; pass++)
                for (char *const *e = env; e && *e; e++) {
                        _cleanup_free_ char *name = NULL;
                        const char *eq = strchr(*e, '=');
                        bool is_artifact;
                        int r;

                        if (strncmp(*e, "COREKUBE_", 9) != 0 || !eq)
                                continue;
                        name = strndup(*e, (size_t) (eq - *e));
                        if (!name)
                                return -ENOMEM;
                        if (streq(name, "COREKUBE_LOG_LEVEL"))
                                continue;
                        is_artifact = strncmp(name, "COREKUBE_ARTIFACT_", 18) == 0;
                        if (is_artifact != (pass == 1))
                                continue;
                        r = apply_env_one(l, name, eq + 1);
                        if (r < 0)
                                return r;
                        if (r == 0) {
                                ConfigOrigin o = { .kind = ORIGIN_ENV, .env = name };
                                /* Not an error: role units' cluster.env also uses the
                                 * COREKUBE_ namespace, and a shell may carry it. */
                                config_diag(l, LOG_WARNING, &o, "unknown variable, ignored");
                        }
                }
        return 0;
}
