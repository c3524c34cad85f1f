/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config-test.h"
#include "macro.h"

static char root[PATH_MAX];

char *const no_env[] = { NULL };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -errno : 0;
}

static void rm_rf(const char *path) {
        (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int group_setup(void **state) {
        const char *t = getenv("TMPDIR");

        snprintf(root, sizeof root, "%s/test-config-XXXXXX", t && *t ? t : "/tmp");
        return mkdtemp(root) ? 0 : -1;
}

int group_teardown(void **state) {
        rm_rf(root);
        return 0;
}

int setup(void **state) {
        static unsigned n = 0;
        ctx *x = calloc(1, sizeof *x);

        if (!x)
                return -1;
        snprintf(x->dir, sizeof x->dir, "%s/%u", root, ++n);
        snprintf(x->main, sizeof x->main, "%s/agent.conf", x->dir);
        if (mkdir(x->dir, 0700) < 0) {
                free(x);
                return -1;
        }
        *state = x;
        return 0;
}

int teardown(void **state) {
        ctx *x = *state;

        config_free(x->c);
        for (size_t i = 0; i < x->n_diags; i++)
                free(x->diags[i]);
        rm_rf(x->dir);
        free(x);
        return 0;
}

/* Diagnostics name files by their full path; keep them relative to the
 * test's directory so expected texts are short. Warnings get a prefix. */
void capture(int level, const char *msg, void *userdata) {
        ctx *x = userdata;
        char buf[2048] = "", *o = buf;
        size_t dl = strlen(x->dir);

        if (level > LOG_ERR)
                o = stpcpy(o, "warning: ");
        for (const char *p = msg; *p && o < buf + sizeof buf - 1;) {
                if (strncmp(p, x->dir, dl) == 0 && p[dl] == '/') {
                        p += dl + 1;
                        continue;
                }
                *o++ = *p++;
        }
        *o = '\0';
        assert_true(x->n_diags < ELEMENTSOF(x->diags));
        x->diags[x->n_diags++] = strdup(buf);
}

void write_file(ctx *x, const char *rel, const char *text) {
        char path[PATH_MAX * 2];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", x->dir, rel);
        if (strchr(rel, '/')) {
                char d[PATH_MAX * 2];
                snprintf(d, sizeof d, "%s", path);
                *strrchr(d, '/') = '\0';
                assert_true(mkdir(d, 0700) == 0 || errno == EEXIST);
        }
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

int load_path(ctx *x, const char *path, char *const *env) {
        ConfigLoadOptions o = {
                .path = path,
                .environ = env ? env : no_env,
                .diag = capture,
                .userdata = x,
        };

        for (size_t i = 0; i < x->n_diags; i++)
                free(x->diags[i]);
        x->n_diags = 0;
        config_free(x->c);
        x->c = NULL;
        return config_load(&o, &x->c);
}

int load(ctx *x, char *const *env) {
        return load_path(x, x->main, env);
}

int load_text(ctx *x, const char *text, char *const *env) {
        write_file(x, "agent.conf", text);
        return load(x, env);
}

void print_diags(const ctx *x) {
        print_message("diagnostics (%zu):\n", x->n_diags);
        for (size_t i = 0; i < x->n_diags; i++)
                print_message("  %s\n", x->diags[i]);
}

void expect_diags_internal(const ctx *x, const char *const *want) {
        size_t n = 0;

        while (want[n])
                n++;
        if (n != x->n_diags)
                print_diags(x);
        assert_int_equal(x->n_diags, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(x->diags[i], want[i]);
}

void expect_ok(ctx *x, const char *text, char *const *env) {
        int r = load_text(x, text, env);

        if (r != 0)
                print_diags(x);
        assert_int_equal(r, 0);
        assert_non_null(x->c);
        assert_int_equal(x->n_diags, 0);
}

const ConfigSectionDef *section(const char *name) {
        for (size_t i = 0; i < ck_n_sections; i++)
                if (streq(ck_sections[i].name, name))
                        return &ck_sections[i];
        return strncmp(name, "artifact.", 9) == 0 ? &ck_artifact_section : NULL;
}

void *section_base(const AgentConfig *c, const char *name) {
        const ConfigSectionDef *s = section(name);

        assert_non_null(s);
        if (s == &ck_artifact_section) {
                const Artifact *a = config_artifact(c, name + 9);
                assert_non_null(a);
                return (void *) a;
        }
        return config_section_base(c, s);
}

size_t key_index(const char *sect, const char *key) {
        const ConfigSectionDef *s = section(sect);

        for (size_t i = 0; i < s->n_keys; i++)
                if (streq(s->keys[i].name, key))
                        return i;
        fail_msg("no key %s in [%s]", key, sect);
        return 0;
}

/* A key's value as the printout would show it. */
char *value_of(const AgentConfig *c, const char *sect, const char *key) {
        const ConfigSectionDef *s = section(sect);
        const ConfigKeyDef *k = &s->keys[key_index(sect, key)];

        return config_value_format(k->type, (uint8_t *) section_base(c, sect) + k->offset);
}

void assert_value(const AgentConfig *c, const char *sect, const char *key, const char *want) {
        _cleanup_free_ char *v = value_of(c, sect, key);

        assert_non_null(v);
        assert_string_equal(v, want);
}

/* Where a key's value came from, as the printout would show it (relative). */
void assert_origin(const ctx *x, const char *sect, const char *key, const char *want) {
        const ConfigSectionDef *s = section(sect);
        const ConfigOrigin *o = config_section_origins(section_base(x->c, sect), s) + key_index(sect, key);
        char buf[PATH_MAX * 2];
        const char *str = origin_to_string(o, buf, sizeof buf);
        size_t dl = strlen(x->dir);

        if (strncmp(str, x->dir, dl) == 0)
                str += dl + 1;
        assert_string_equal(str, want);
}
