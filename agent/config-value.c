/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-keys.h"
#include "macro.h"

static const char *const role_names[_ROLE_MAX] = {
        [ROLE_MASTER] = "master",
        [ROLE_MINION] = "minion",
};

const char *role_to_string(NodeRole r) {
        return r >= 0 && r < _ROLE_MAX ? role_names[r] : "invalid";
}

static const char *const runtime_names[_RUNTIME_MAX] = {
        [RUNTIME_DOCKER] = "docker",
        [RUNTIME_CONTAINERD] = "containerd",
};

const char *runtime_kind_to_string(RuntimeKind k) {
        return k >= 0 && k < _RUNTIME_MAX ? runtime_names[k] : "invalid";
}

size_t config_value_size(ConfigType t) {
        switch (t) {
        case T_ROLE:
                return sizeof(NodeRole);
        case T_RUNTIME:
                return sizeof(RuntimeKind);
        case T_HOST_CIDR:
                return sizeof(OptionalCidr);
        case T_NET_CIDR:
                return sizeof(Cidr);
        case T_SHA256:
                return sizeof(Sha256);
        case T_DURATION:
                return sizeof(usec_t);
        case T_UINT:
        case T_MTU:
                return sizeof(uint32_t);
        case T_BOOL:
                return sizeof(bool);
        case T_MODE:
                return sizeof(mode_t);
        default:
                return sizeof(char *);
        }
}

void config_value_free(ConfigType t, void *p) {
        switch (t) {
        case T_URL_LIST:
        case T_UNIT_LIST:
        case T_NAME_LIST:
                strv_free(*(char ***) p);
                *(char ***) p = NULL;
                break;
        case T_HOSTNAME: case T_IFNAME: case T_URL: case T_URL_TEMPLATE: case T_TEXT:
        case T_KEY_PREFIX: case T_PATH: case T_STRING: case T_UNIT:
                free(*(char **) p);
                *(char **) p = NULL;
                break;
        default:
                break;
        }
}

static int check_placeholders(const char *s, char *err) {
        static const char *const known[] = { "${MASTER_IP}", "${NODE_IP}", "${NODE_NAME}" };

        for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${")) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || strncmp(p, known[i], strlen(known[i])) == 0;
                if (!ok) {
                        snprintf(err, CK_ERRLEN, "unknown placeholder \"%.*s\" (known: ${MASTER_IP}, ${NODE_IP}, ${NODE_NAME})",
                                 (int) strcspn(p, "}") + 1, p);
                        return -EINVAL;
                }
        }
        return 0;
}

static int parse_list(const char *value, const char *seps, int (*check)(const char *, char *),
                      char ***ret, char *err) {
        char **l = NULL;
        int r = split_words(value, seps, &l);

        if (r < 0) {
                snprintf(err, CK_ERRLEN, "out of memory");
                return r;
        }
        for (char **p = l; *p; p++)
                if (check && (r = check(*p, err)) < 0) {
                        strv_free(l);
                        return r;
                }
        *ret = l;
        return 0;
}

int config_check_artifact_name(const char *s, char *err) {
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-_.", *p)) {
                        snprintf(err, CK_ERRLEN, "invalid artifact name \"%s\": use letters, digits, '-', '_' and '.'", s);
                        return -EINVAL;
                }
        return 0;
}

static int check_string(const char *s, char *err) {
        for (const char *p = s; *p; p++)
                if (iscntrl((unsigned char) *p)) {
                        snprintf(err, CK_ERRLEN, "control characters are not allowed");
                        return -EINVAL;
                }
        return 0;
}

static int check_host_cidr(const Cidr *c, const char *value, char *err) {
        uint32_t a = ntohl(c->addr.s_addr), m = cidr_mask(c->prefixlen);

        if (c->prefixlen <= 30 && ((a & ~m) == 0 || (a & ~m) == ~m)) {
                snprintf(err, CK_ERRLEN, "\"%s\" is not a host address (it is the %s address of its network)",
                         value, (a & ~m) == 0 ? "network" : "broadcast");
                return -EINVAL;
        }
        if (a == 0 || (a >> 24) == 127 || (a >> 28) == 14 || (a >> 28) == 15) {
                snprintf(err, CK_ERRLEN, "\"%s\" is not a usable unicast host address", value);
                return -EINVAL;
        }
        return 0;
}

/* Parses value into *p (whose old content the caller frees on success). */
int config_value_parse(const ConfigKeyDef *k, const char *value, void *p, char *err) {
        uint64_t u;
        int r;

        switch (k->type) {
        case T_ROLE:
                for (int i = 0; i < _ROLE_MAX; i++)
                        if (streq(value, role_names[i])) {
                                *(NodeRole *) p = (NodeRole) i;
                                return 0;
                        }
                snprintf(err, CK_ERRLEN, "invalid role \"%s\" (use master or minion)", value);
                return -EINVAL;
        case T_RUNTIME:
                for (int i = 0; i < _RUNTIME_MAX; i++)
                        if (streq(value, runtime_names[i])) {
                                *(RuntimeKind *) p = (RuntimeKind) i;
                                return 0;
                        }
                snprintf(err, CK_ERRLEN, "unsupported runtime \"%s\" (use docker or containerd)", value);
                return -EINVAL;
        case T_HOSTNAME:
                r = parse_hostname(value, err);
                break;
        case T_IFNAME:
                r = parse_ifname(value, err);
                break;
        case T_HOST_CIDR: {
                OptionalCidr *c = p;
                r = parse_cidr(value, false, err, &c->v);
                if (r >= 0)
                        r = check_host_cidr(&c->v, value, err);
                c->set = r >= 0;
                return r;
        }
        case T_NET_CIDR:
                return parse_cidr(value, true, err, p);
        case T_URL_LIST:
                r = parse_list(value, ", \t", parse_url, p, err);
                if (r >= 0 && !**(char ***) p) {
                        config_value_free(k->type, p);
                        snprintf(err, CK_ERRLEN, "no endpoint given");
                        return -EINVAL;
                }
                return r;
        case T_URL:
                r = parse_url(value, err);
                break;
        case T_URL_TEMPLATE:
                r = check_placeholders(value, err);
                if (r >= 0) {
                        /* Validate the URL with the placeholders filled by a sample value. */
                        char *t = strdup(value);
                        if (!t)
                                return -ENOMEM;
                        for (char *q = strstr(t, "${"); q; q = strstr(q, "${")) {
                                char *e = strchr(q, '}');
                                memset(q, 'x', (size_t) (e - q + 1));
                        }
                        r = parse_url(t, err);
                        if (r < 0)
                                snprintf(err, CK_ERRLEN, "invalid URL \"%s\": only http:// and https:// with a host", value);
                        free(t);
                }
                break;
        case T_TEXT:
                r = check_placeholders(value, err);
                if (r >= 0)
                        r = check_string(value, err);
                break;
        case T_KEY_PREFIX:
                r = parse_key_prefix(value, err);
                break;
        case T_PATH:
                r = parse_abs_path(value, err);
                break;
        case T_STRING:
                r = check_string(value, err);
                break;
        case T_DURATION:
                r = parse_duration(value, err, p);
                if (r >= 0 && (*(usec_t *) p < k->min || *(usec_t *) p > k->max)) {
                        char a[64], b[64];
                        snprintf(err, CK_ERRLEN, "%s is out of range %s..%s", value,
                                 format_duration(k->min, a, sizeof a), format_duration(k->max, b, sizeof b));
                        return -ERANGE;
                }
                return r;
        case T_UINT:
                r = parse_uint_range(value, k->min, k->max, err, &u);
                if (r >= 0)
                        *(uint32_t *) p = (uint32_t) u;
                return r;
        case T_MTU:
                if (streq(value, "auto")) {
                        *(uint32_t *) p = 0;
                        return 0;
                }
                r = parse_uint_range(value, k->min, k->max, err, &u);
                if (r < 0)
                        snprintf(err, CK_ERRLEN, "invalid MTU \"%s\": use auto or %u..%u", value,
                                 (unsigned) k->min, (unsigned) k->max);
                else
                        *(uint32_t *) p = (uint32_t) u;
                return r;
        case T_BOOL:
                return parse_bool(value, err, p);
        case T_UNIT:
                r = parse_unit_name(value, err);
                break;
        case T_UNIT_LIST:
                return parse_list(value, " \t", parse_unit_name, p, err);
        case T_NAME_LIST:
                return parse_list(value, " \t", config_check_artifact_name, p, err);
        case T_SHA256: {
                Sha256 *h = p;
                r = parse_sha256(value, err, h->v);
                h->set = r >= 0;
                return r;
        }
        case T_MODE:
                return parse_mode(value, err, p);
        default:
                return -EINVAL;
        }

        /* The plain string types end here. */
        if (r < 0)
                return r;
        *(char **) p = strdup(value);
        return *(char **) p ? 0 : -ENOMEM;
}

static char *join(char *const *l, const char *sep) {
        size_t n = 1;
        char *s;

        for (char *const *p = l; p && *p; p++)
                n += strlen(*p) + strlen(sep);
        s = calloc(1, n);
        if (!s)
                return NULL;
        for (char *const *p = l; p && *p; p++) {
                if (p != l)
                        strcat(s, sep);
                strcat(s, *p);
        }
        return s;
}

char *config_value_format(ConfigType t, const void *p) {
        char buf[128];

        switch (t) {
        case T_ROLE: {
                NodeRole r = *(const NodeRole *) p;
                return strdup(r == ROLE_INVALID ? "" : role_to_string(r));
        }
        case T_RUNTIME:
                return strdup(runtime_kind_to_string(*(const RuntimeKind *) p));
        case T_HOST_CIDR: {
                const OptionalCidr *c = p;
                return strdup(c->set ? format_cidr(&c->v, buf, sizeof buf) : "");
        }
        case T_NET_CIDR:
                return strdup(format_cidr(p, buf, sizeof buf));
        case T_URL_LIST:
                return join(*(char *const *const *) p, ",");
        case T_UNIT_LIST:
        case T_NAME_LIST:
                return join(*(char *const *const *) p, " ");
        case T_DURATION:
                return strdup(format_duration(*(const usec_t *) p, buf, sizeof buf));
        case T_UINT:
                snprintf(buf, sizeof buf, "%" PRIu32, *(const uint32_t *) p);
                return strdup(buf);
        case T_MTU: {
                uint32_t m = *(const uint32_t *) p;
                if (m == 0)
                        return strdup("auto");
                snprintf(buf, sizeof buf, "%" PRIu32, m);
                return strdup(buf);
        }
        case T_BOOL:
                return strdup(*(const bool *) p ? "yes" : "no");
        case T_SHA256: {
                const Sha256 *h = p;
                char hex[65];
                return strdup(h->set ? format_sha256(h->v, hex) : "");
        }
        case T_MODE:
                snprintf(buf, sizeof buf, "%04o", (unsigned) *(const mode_t *) p);
                return strdup(buf);
        default: {
                const char *s = *(const char *const *) p;
                return strdup(s ? s : "");
        }
        }
}
