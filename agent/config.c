/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config-internal.h"
#include "config-keys.h"
#include "ini.h"
#include "macro.h"


static bool was_rejected(const ConfigLoader *l, const char *section, const char *key) {
        for (size_t i = 0; i < l->n_rejected; i++)
                for (size_t s = 0; s < ck_n_sections; s++)
                        if (streq(ck_sections[s].name, section) &&
                            l->rejected[i] >= ck_sections[s].keys &&
                            l->rejected[i] < ck_sections[s].keys + ck_sections[s].n_keys &&
                            streq(l->rejected[i]->name, key))
                                return true;
        return false;
}

static bool artifact_key_rejected(const ConfigLoader *l, const char *artifact, const ConfigKeyDef *k) {
        for (size_t i = 0; i < l->n_rejected; i++)
                if (l->rejected[i] == k && l->rejected_artifact[i] == artifact)
                        return true;
        return false;
}

__attribute__((format(printf, 4, 0)))
static void vdiag_at(ConfigLoader *l, int level, const char *where, const char *fmt, va_list ap) {
        char msg[1024], *line = NULL;

        vsnprintf(msg, sizeof msg, fmt, ap);
        if (asprintf(&line, "%s: %s", where, msg) < 0)
                return;
        if (level <= LOG_ERR)
                l->errors++;
        if (l->opts->diag)
                l->opts->diag(level, line, l->opts->userdata);
        else
                fprintf(stderr, "%s\n", line);
        free(line);
}

__attribute__((format(printf, 4, 5)))
static void diag_at(ConfigLoader *l, int level, const char *where, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vdiag_at(l, level, where, fmt, ap);
        va_end(ap);
}

void config_diag(ConfigLoader *l, int level, const ConfigOrigin *o, const char *fmt, ...) {
        char where[512];
        va_list ap;

        origin_to_string(o, where, sizeof where);
        va_start(ap, fmt);
        vdiag_at(l, level, where, fmt, ap);
        va_end(ap);
}

static ConfigOrigin file_origin(const char *file, unsigned line) {
        return (ConfigOrigin) { .kind = ORIGIN_FILE, .file = file, .line = line };
}

/* Assigns one key. An empty value resets the key to its default (lists: to
 * an empty list), so a drop-in can undo what the main file said. */
int config_assign(ConfigLoader *l, const ConfigSectionDef *s, void *base, const ConfigKeyDef *k,
                  const char *value, const ConfigOrigin *o) {
        uint8_t tmp[64] = {};
        char err[CK_ERRLEN] = "";
        ConfigOrigin *origins = config_section_origins(base, s);
        size_t idx = (size_t) (k - s->keys);
        void *p = (uint8_t *) base + k->offset;
        bool is_list = k->type == T_URL_LIST || k->type == T_UNIT_LIST || k->type == T_NAME_LIST;
        int r;

        if (*value == '\0' && !is_list) {
                config_value_free(k->type, p);
                memset(p, 0, config_value_size(k->type));
                if (k->type == T_ROLE)
                        *(NodeRole *) p = ROLE_INVALID;
                if (!k->def) {
                        free(origins[idx].env);
                        origins[idx] = (ConfigOrigin) { .kind = ORIGIN_UNSET };
                        return 0;
                }
                value = k->def;
        }

        r = config_value_parse(k, value, tmp, err);
        if (r < 0) {
                if (l->n_rejected < ELEMENTSOF(l->rejected)) {
                        l->rejected_artifact[l->n_rejected] =
                                s == &ck_artifact_section ? ((Artifact *) base)->name : NULL;
                        l->rejected[l->n_rejected++] = k;
                }
                config_diag(l, LOG_ERR, o, "[%s%s] %s: %s", s->name,
                     s == &ck_artifact_section ? ((Artifact *) base)->name : "", k->name, err);
                return r;
        }
        config_value_free(k->type, p);
        memcpy(p, tmp, config_value_size(k->type));
        free(origins[idx].env);
        origins[idx] = *o;
        if (o->kind == ORIGIN_ENV && !(origins[idx].env = strdup(o->env)))
                return -ENOMEM;
        return 0;
}

static void apply_defaults(ConfigLoader *l, const ConfigSectionDef *s, void *base) {
        const ConfigOrigin def = { .kind = ORIGIN_DEFAULT };

        for (size_t i = 0; i < s->n_keys; i++)
                if (s->keys[i].def)
                        (void) config_assign(l, s, base, &s->keys[i], s->keys[i].def, &def);
}

/* ---- sections and keys ---- */

static const char *closest(const char *word, const char *const *cands, size_t n) {
        const char *best = NULL;
        unsigned bd = UINT32_MAX;

        for (size_t i = 0; i < n; i++) {
                unsigned d = levenshtein(word, cands[i]);
                if (d < bd) {
                        bd = d;
                        best = cands[i];
                }
        }
        return bd <= 2 && bd < strlen(word) ? best : NULL;
}

Artifact *config_artifact_find(AgentConfig *c, const char *name) {
        for (size_t i = 0; i < c->n_artifacts; i++)
                if (streq(c->artifacts[i].name, name))
                        return &c->artifacts[i];
        return NULL;
}

const Artifact *config_artifact(const AgentConfig *c, const char *name) {
        return config_artifact_find((AgentConfig *) c, name);
}

Artifact *config_artifact_add(ConfigLoader *l, const char *name, const ConfigOrigin *o) {
        AgentConfig *c = l->c;
        Artifact *a = realloc(c->artifacts, (c->n_artifacts + 1) * sizeof *a);

        if (!a)
                return NULL;
        c->artifacts = a;
        a = &c->artifacts[c->n_artifacts];
        *a = (Artifact) { .name = strdup(name), .section = *o };
        if (!a->name)
                return NULL;
        if (o->kind == ORIGIN_ENV)
                a->section.env = strdup(o->env);
        c->n_artifacts++;
        apply_defaults(l, &ck_artifact_section, a);
        return a;
}

static const ConfigKeyDef *key_find(const ConfigSectionDef *s, const char *key) {
        for (size_t i = 0; i < s->n_keys; i++)
                if (streq(s->keys[i].name, key))
                        return &s->keys[i];
        return NULL;
}

static int on_section(const char *name, const char *file, unsigned line, void *userdata) {
        ConfigLoader *l = userdata;
        ConfigOrigin o = file_origin(file, line);
        const char *names[16];
        size_t n = 0;

        l->sect = NULL;
        l->base = NULL;
        l->skip_section = false;
        for (size_t i = 0; i < ck_n_sections; i++) {
                if (streq(ck_sections[i].name, name)) {
                        l->sect = &ck_sections[i];
                        l->base = config_section_base(l->c, l->sect);
                        if (l->sect->alias_of)
                                config_diag(l, LOG_NOTICE, &o, "[%s] is deprecated: its keys are [%s]'s, write them there",
                                            name, l->sect->alias_of);
                        return 0;
                }
                if (!ck_sections[i].alias_of)
                        names[n++] = ck_sections[i].name;
        }
        if (strncmp(name, "artifact.", 9) == 0) {
                char err[CK_ERRLEN];
                Artifact *a;

                if (name[9] == '\0' || config_check_artifact_name(name + 9, err) < 0) {
                        config_diag(l, LOG_ERR, &o, "invalid section [%s]: artifact name missing or invalid", name);
                        l->skip_section = true;
                        return 0;
                }
                a = config_artifact_find(l->c, name + 9);
                if (!a && !(a = config_artifact_add(l, name + 9, &o)))
                        return -ENOMEM;
                l->sect = &ck_artifact_section;
                l->base = a;
                return 0;
        }
        names[n++] = "artifact.NAME";
        {
                const char *hint = closest(name, names, n);
                if (hint)
                        config_diag(l, LOG_ERR, &o, "unknown section [%s] (did you mean [%s]?)", name, hint);
                else
                        config_diag(l, LOG_ERR, &o, "unknown section [%s]", name);
        }
        l->skip_section = true;
        return 0;
}

static void report_unknown_key(ConfigLoader *l, const ConfigOrigin *o, const char *key) {
        const char *cands[CK_MAX_KEYS];
        const char *hint;
        const char *sname = l->sect->name;
        const char *aname = l->sect == &ck_artifact_section ? ((Artifact *) l->base)->name : "";

        /* Right key, wrong section? That beats a near miss here ("ttl" in
         * [network] is not a typo of "mtu"). */
        for (size_t i = 0; i < ck_n_sections; i++)
                if (!ck_sections[i].alias_of && key_find(&ck_sections[i], key)) {
                        config_diag(l, LOG_ERR, o, "unknown key \"%s\" in [%s%s] (it belongs in [%s])",
                             key, sname, aname, ck_sections[i].name);
                        return;
                }
        for (size_t i = 0; i < l->sect->n_keys; i++)
                cands[i] = l->sect->keys[i].name;
        hint = closest(key, cands, l->sect->n_keys);
        if (hint) {
                config_diag(l, LOG_ERR, o, "unknown key \"%s\" in [%s%s] (did you mean \"%s\"?)", key, sname, aname, hint);
                return;
        }
        config_diag(l, LOG_ERR, o, "unknown key \"%s\" in [%s%s]", key, sname, aname);
}

static int on_key(const char *key, const char *value, const char *file, unsigned line, void *userdata) {
        ConfigLoader *l = userdata;
        ConfigOrigin o = file_origin(file, line);
        const ConfigKeyDef *k;
        int r;

        if (l->skip_section)
                return 0;
        if (!l->sect) {
                config_diag(l, LOG_ERR, &o, "key \"%s\" outside of any section", key);
                return 0;
        }
        k = key_find(l->sect, key);
        if (!k) {
                report_unknown_key(l, &o, key);
                return 0;
        }
        r = config_assign(l, l->sect, l->base, k, value, &o);
        return r == -ENOMEM ? r : 0;
}

static int on_syntax_error(const char *msg, const char *file, unsigned line, void *userdata) {
        ConfigLoader *l = userdata;
        ConfigOrigin o = file_origin(file, line);

        config_diag(l, LOG_ERR, &o, "%s", msg);
        return 0;
}

static const char *remember_file(AgentConfig *c, const char *path) {
        size_t n = strv_length(c->files);
        char **f = realloc(c->files, (n + 2) * sizeof(char *));

        if (!f)
                return NULL;
        c->files = f;
        f[n] = strdup(path);
        f[n + 1] = NULL;
        return f[n];
}

static int read_file(ConfigLoader *l, const char *path, bool must_exist) {
        static const IniCallbacks cb = {
                .section = on_section,
                .key = on_key,
                .error = on_syntax_error,
        };
        const char *name = remember_file(l->c, path);
        int r;

        if (!name)
                return -ENOMEM;
        l->sect = NULL;
        l->base = NULL;
        l->skip_section = false;
        r = ini_parse_file(name, &cb, l);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r < 0 && r != -ENOMEM) {
                diag_at(l, LOG_ERR, name, "cannot read: %s", strerror(-r));
                return 0;
        }
        return r;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int read_dropins(ConfigLoader *l, const char *main_path) {
        _cleanup_free_ char *dir = NULL;
        char **names = NULL;
        size_t n = 0;
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (asprintf(&dir, "%s.d", main_path) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                char **nn;
                if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".conf"))
                        continue;
                nn = realloc(names, (n + 1) * sizeof(char *));
                if (!nn) {
                        r = -ENOMEM;
                        break;
                }
                names = nn;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r >= 0 && n > 0)
                qsort(names, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++) {
                if (r >= 0)
                        r = read_file(l, names[i], false);
                free(names[i]);
        }
        free(names);
        return r;
}

/* ---- cross checks ---- */

static const ConfigOrigin *best_origin(const ConfigOrigin *a, const ConfigOrigin *b) {
        return a->kind == ORIGIN_FILE || a->kind == ORIGIN_ENV ? a : b;
}

/* A key or password that others can read is as good as published: refuse to
 * start with one rather than use it. A missing file is reported where it
 * is read (check-config may run before the secrets are installed). */
static void check_secret(ConfigLoader *l, const char *key, const char *path, const ConfigOrigin *o) {
        struct stat st;

        if (!path || stat(path, &st) < 0)
                return;
        if (!S_ISREG(st.st_mode))
                config_diag(l, LOG_ERR, o, "[etcd] %s %s is not a regular file", key, path);
        else if ((st.st_mode & 0077) != 0)
                config_diag(l, LOG_ERR, o, "[etcd] %s %s is accessible by group or others (mode %04o): "
                     "make it readable by its owner only (chmod 0600)",
                     key, path, (unsigned) (st.st_mode & 07777));
}

static bool origin_given(const ConfigOrigin *o) {
        return o->kind == ORIGIN_FILE || o->kind == ORIGIN_ENV;
}

/* Fills the defaults that depend on kind, and refuses what cannot work
 * with it. The origin indices are runtime_keys' and cni_keys' order. */
static void check_runtime(ConfigLoader *l) {
        RuntimeSection *rt = &l->c->runtime;
        CniSection *cni = &l->c->cni;
        bool containerd = rt->kind == RUNTIME_CONTAINERD;

        if (!rt->unit) {
                rt->unit = strdup(containerd ? "containerd.service" : "docker.service");
                rt->origin[0] = (ConfigOrigin) { .kind = ORIGIN_DEFAULT };
        }
        if (!containerd) {
                /* docker0 (--bip) and cni0 (the bridge plugin's gateway)
                 * would both claim the subnet's first address. */
                if (cni->conf_file)
                        config_diag(l, LOG_ERR, &cni->origin[0],
                                    "[cni] conf-file is only used with [runtime] kind = containerd: with Docker, "
                                    "docker0 and cni0 would both claim the subnet's first address");
                return;
        }
        if (origin_given(&rt->origin[1]))
                config_diag(l, LOG_NOTICE, &rt->origin[1],
                            "[runtime] restart is ignored with kind = containerd: it reads the CNI file per pod, "
                            "nothing is restarted");
        if (!cni->conf_file) {
                cni->conf_file = strdup(CNI_CONF_FILE_DEFAULT);
                cni->origin[0] = (ConfigOrigin) { .kind = ORIGIN_DEFAULT };
        }
}

static void cross_check(ConfigLoader *l) {
        AgentConfig *c = l->c;
        char where[600];

        /* Required keys have no line to point at: name the main file. */
        snprintf(where, sizeof where, "%s%s", c->main_path, access(c->main_path, F_OK) == 0 ? "" : " (not found)");

        if (c->node.role == ROLE_INVALID && !was_rejected(l, "node", "role"))
                diag_at(l, LOG_ERR, where, "[node] role is required (master or minion)");
        if ((!c->etcd.endpoints || !c->etcd.endpoints[0]) && !was_rejected(l, "etcd", "endpoints"))
                diag_at(l, LOG_ERR, where, "[etcd] endpoints is required (e.g. http://192.168.3.2:2379)");

        if (c->network.subnet_len <= c->network.network.prefixlen) {
                char n[64];
                config_diag(l, LOG_ERR, best_origin(&c->network.origin[2], &c->network.origin[1]),
                     "[network] subnet-len %u must be greater than the prefix length of network %s",
                     c->network.subnet_len, format_cidr(&c->network.network, n, sizeof n));
        }

        if (!!c->etcd.cert_file != !!c->etcd.key_file)
                config_diag(l, LOG_ERR, c->etcd.cert_file ? &c->etcd.origin[4] : &c->etcd.origin[5],
                     "[etcd] cert-file and key-file must be given together");
        if (!!c->etcd.username != !!c->etcd.password_file)
                config_diag(l, LOG_ERR, c->etcd.username ? &c->etcd.origin[6] : &c->etcd.origin[7],
                     "[etcd] username and password-file must be given together");

        check_runtime(l);

        check_secret(l, "key-file", c->etcd.key_file, &c->etcd.origin[5]);
        check_secret(l, "password-file", c->etcd.password_file, &c->etcd.origin[7]);

        for (int r = 0; r < _ROLE_MAX; r++)
                for (char **p = c->roles[r].artifacts; p && *p; p++)
                        if (!config_artifact_find(c, *p))
                                config_diag(l, LOG_ERR, &c->roles[r].origin[1],
                                     "[role.%s] artifacts names \"%s\", but there is no [artifact.%s] section",
                                     role_to_string((NodeRole) r), *p, *p);

        for (size_t i = 0; i < c->n_artifacts; i++) {
                Artifact *a = &c->artifacts[i];
                for (size_t k = 0; k < ck_artifact_section.n_keys; k++)
                        if (ck_artifact_section.keys[k].required && a->origin[k].kind == ORIGIN_UNSET &&
                            !artifact_key_rejected(l, a->name, &ck_artifact_section.keys[k]))
                                config_diag(l, LOG_ERR, &a->section, "[artifact.%s] %s is required",
                                     a->name, ck_artifact_section.keys[k].name);
        }
}

/* ---- public ---- */

AgentConfig *config_free(AgentConfig *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < ck_n_sections; i++) {
                void *base = config_section_base(c, &ck_sections[i]);
                ConfigOrigin *o = config_section_origins(base, &ck_sections[i]);

                if (ck_sections[i].alias_of)
                        continue;       /* its values are the real section's */
                for (size_t k = 0; k < ck_sections[i].n_keys; k++) {
                        config_value_free(ck_sections[i].keys[k].type, (uint8_t *) base + ck_sections[i].keys[k].offset);
                        free(o[k].env);
                }
        }
        for (size_t i = 0; i < c->n_artifacts; i++) {
                Artifact *a = &c->artifacts[i];
                for (size_t k = 0; k < ck_artifact_section.n_keys; k++) {
                        config_value_free(ck_artifact_section.keys[k].type, (uint8_t *) a + ck_artifact_section.keys[k].offset);
                        free(a->origin[k].env);
                }
                free(a->section.env);
                free(a->name);
        }
        free(c->artifacts);
        strv_free(c->files);
        free(c->main_path);
        free(c);
        return NULL;
}

const RoleSection *config_role(const AgentConfig *c) {
        return &c->roles[c->node.role == ROLE_MASTER ? ROLE_MASTER : ROLE_MINION];
}

int config_load(const ConfigLoadOptions *opts, AgentConfig **ret) {
        ConfigLoadOptions defopts = {};
        ConfigLoader l = {};
        AgentConfig *c;
        char host[256] = "";
        int r;

        if (!opts)
                opts = &defopts;
        l.opts = opts;
        c = l.c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->node.role = ROLE_INVALID;
        c->main_path = strdup(opts->path ? opts->path : CONFIG_DEFAULT_PATH);
        if (!c->main_path) {
                free(c);
                return -ENOMEM;
        }

        for (size_t i = 0; i < ck_n_sections; i++)
                if (!ck_sections[i].alias_of)
                        apply_defaults(&l, &ck_sections[i], config_section_base(c, &ck_sections[i]));
        if (gethostname(host, sizeof host - 1) < 0 || parse_hostname(host, NULL) < 0)
                snprintf(host, sizeof host, "localhost");
        c->node.name = strdup(host);
        c->node.origin[1].kind = ORIGIN_DEFAULT;

        r = read_file(&l, c->main_path, opts->path != NULL);
        if (r >= 0)
                r = read_dropins(&l, c->main_path);
        if (r >= 0)
                r = config_apply_env(&l);
        if (r >= 0 && !c->node.name) {
                /* "name =" resets to the default, which is the host name. */
                c->node.name = strdup(host);
                c->node.origin[1].kind = ORIGIN_DEFAULT;
                if (!c->node.name)
                        r = -ENOMEM;
        }
        if (r < 0) {
                config_free(c);
                return r;
        }
        cross_check(&l);
        if (l.errors > 0) {
                config_free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}
