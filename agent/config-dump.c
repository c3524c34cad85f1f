/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "config-keys.h"
#include "macro.h"

static void dump_section(FILE *f, const char *header, const ConfigSectionDef *s, void *base) {
        const ConfigOrigin *origins = config_section_origins(base, s);

        fprintf(f, "\n[%s]\n", header);
        for (size_t i = 0; i < s->n_keys; i++) {
                const ConfigKeyDef *k = &s->keys[i];
                _cleanup_free_ char *v = config_value_format(k->type, (uint8_t *) base + k->offset);
                _cleanup_free_ char *line = NULL;
                char where[512];
                bool unset = origins[i].kind == ORIGIN_UNSET;

                if (asprintf(&line, "%s%s = %s", unset ? "#" : "", k->name, v ? v : "") < 0)
                        continue;
                fprintf(f, "%-48s # %s\n", line, origin_to_string(&origins[i], where, sizeof where));
        }
}

void config_dump(const AgentConfig *c, FILE *f) {
        fprintf(f, "# Effective configuration; each value with where it came from.\n");
        fprintf(f, "# Files read:");
        for (char **p = c->files; p && *p; p++)
                fprintf(f, " %s", *p);
        fprintf(f, "\n");
        for (size_t i = 0; i < ck_n_sections; i++)
                if (!ck_sections[i].alias_of)
                        dump_section(f, ck_sections[i].name, &ck_sections[i], config_section_base(c, &ck_sections[i]));
        for (size_t i = 0; i < c->n_artifacts; i++) {
                _cleanup_free_ char *h = NULL;
                if (asprintf(&h, "artifact.%s", c->artifacts[i].name) < 0)
                        continue;
                dump_section(f, h, &ck_artifact_section, &c->artifacts[i]);
        }
}
