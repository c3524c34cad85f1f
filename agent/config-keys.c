/* SPDX-License-Identifier: Apache-2.0 */
#include "config-keys.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define K(sect, n, t, field, d, lo, hi, req) \
        { .name = n, .type = t, .offset = offsetof(sect, field), .def = d, .min = lo, .max = hi, .required = req }

static const ck_key_def node_keys[] = {
        K(ck_node_config, "role", T_ROLE, role, NULL, 0, 0, true),
        K(ck_node_config, "name", T_HOSTNAME, name, NULL, 0, 0, false), /* default: the host name */
        K(ck_node_config, "interface", T_IFNAME, interface, "eth2", 0, 0, false),
        K(ck_node_config, "address", T_HOST_CIDR, address, NULL, 0, 0, false),
};

static const ck_key_def etcd_keys[] = {
        K(ck_etcd_config, "endpoints", T_URL_LIST, endpoints, NULL, 0, 0, true),
        K(ck_etcd_config, "prefix", T_KEY_PREFIX, prefix, "/corekube", 0, 0, false),
        /* etcd refuses leases much shorter than its election timeout. */
        K(ck_etcd_config, "ttl", T_DURATION, ttl, "30s", 2 * USEC_PER_SEC, 24ULL * 3600 * USEC_PER_SEC, false),
        K(ck_etcd_config, "ca-file", T_PATH, ca_file, NULL, 0, 0, false),
        K(ck_etcd_config, "cert-file", T_PATH, cert_file, NULL, 0, 0, false),
        K(ck_etcd_config, "key-file", T_PATH, key_file, NULL, 0, 0, false),
        K(ck_etcd_config, "username", T_STRING, username, NULL, 0, 0, false),
        K(ck_etcd_config, "password-file", T_PATH, password_file, NULL, 0, 0, false),
};

static const ck_key_def network_keys[] = {
        K(ck_network_config, "prefix", T_KEY_PREFIX, prefix, "/coreos.com/network", 0, 0, false),
        K(ck_network_config, "network", T_NET_CIDR, network, "10.244.0.0/15", 0, 0, false),
        K(ck_network_config, "subnet-len", T_UINT, subnet_len, "24", 1, 30, false),
        K(ck_network_config, "vni", T_UINT, vni, "1", 1, 16777215, false),
        K(ck_network_config, "port", T_UINT, port, "8472", 1, 65535, false),
        K(ck_network_config, "mtu", T_MTU, mtu, "auto", 68, 65535, false),
        K(ck_network_config, "subnet-file", T_PATH, subnet_file, "/run/flannel/subnet.env", 0, 0, false),
        K(ck_network_config, "docker-opts-file", T_PATH, docker_opts_file, "/run/flannel/docker_opts.env", 0, 0, false),
        K(ck_network_config, "ip-masq", T_BOOL, ip_masq, "false", 0, 0, false),
};

/* unit and restart first: [docker] names these two. The unit's default
 * depends on kind, so it is filled in after loading. */
static const ck_key_def runtime_keys[] = {
        K(ck_runtime_config, "unit", T_UNIT, unit, NULL, 0, 0, false),
        K(ck_runtime_config, "restart", T_BOOL, restart, "yes", 0, 0, false),
        K(ck_runtime_config, "kind", T_RUNTIME, kind, "docker", 0, 0, false),
};

/* Its default depends on kind too. */
static const ck_key_def cni_keys[] = {
        K(ck_cni_config, "conf-file", T_PATH, conf_file, NULL, 0, 0, false),
};

#define REGISTER_BODY "{\"kind\":\"Minion\",\"id\":\"${NODE_IP}\",\"hostIP\":\"${NODE_IP}\",\"apiVersion\":\"v1beta1\"}"

static const ck_key_def master_keys[] = {
        K(ck_role_config, "units", T_UNIT_LIST, units,
          "kube-apiserver.service kube-controller-manager.service kube-scheduler.service", 0, 0, false),
        K(ck_role_config, "artifacts", T_NAME_LIST, artifacts, "", 0, 0, false),
        K(ck_role_config, "register-url", T_URL_TEMPLATE, register_url, NULL, 0, 0, false),
        K(ck_role_config, "register-body", T_TEXT, register_body, REGISTER_BODY, 0, 0, false),
};

static const ck_key_def minion_keys[] = {
        K(ck_role_config, "units", T_UNIT_LIST, units, "kubelet.service kube-proxy.service", 0, 0, false),
        K(ck_role_config, "artifacts", T_NAME_LIST, artifacts, "", 0, 0, false),
        K(ck_role_config, "register-url", T_URL_TEMPLATE, register_url, NULL, 0, 0, false),
        K(ck_role_config, "register-body", T_TEXT, register_body, REGISTER_BODY, 0, 0, false),
};

static const ck_key_def artifact_keys[] = {
        K(ck_artifact, "url", T_URL, url, NULL, 0, 0, true),
        K(ck_artifact, "sha256", T_SHA256, sha256, NULL, 0, 0, true),
        K(ck_artifact, "path", T_PATH, path, NULL, 0, 0, true),
        K(ck_artifact, "mode", T_MODE, mode, "0755", 0, 0, false),
};

#define S(n, tbl, sect, field) \
        { .name = n, .keys = tbl, .n_keys = ELEMENTSOF(tbl), \
          .offset = offsetof(ck_config, field), .origin_offset = offsetof(sect, origin) }

const ck_section_def ck_sections[] = {
        S("node", node_keys, ck_node_config, node),
        S("etcd", etcd_keys, ck_etcd_config, etcd),
        S("network", network_keys, ck_network_config, network),
        S("runtime", runtime_keys, ck_runtime_config, runtime),
        { .name = "docker", .keys = runtime_keys, .n_keys = 2, .offset = offsetof(ck_config, runtime),
          .origin_offset = offsetof(ck_runtime_config, origin), .alias_of = "runtime" },
        S("cni", cni_keys, ck_cni_config, cni),
        S("role.master", master_keys, ck_role_config, roles[ROLE_MASTER]),
        S("role.minion", minion_keys, ck_role_config, roles[ROLE_MINION]),
};
const size_t ck_n_sections = ELEMENTSOF(ck_sections);

const ck_section_def ck_artifact_section = {
        .name = "artifact.", .keys = artifact_keys, .n_keys = ELEMENTSOF(artifact_keys),
        .offset = 0, .origin_offset = offsetof(ck_artifact, origin),
};

void *config_section_base(const ck_config *c, const ck_section_def *s) {
        return (uint8_t *) c + s->offset;
}

ck_origin *config_section_origins(void *base, const ck_section_def *s) {
        return (ck_origin *) ((uint8_t *) base + s->origin_offset);
}

char *config_env_name(const char *section, const char *key) {
        char *s = NULL;

        if (asprintf(&s, "COREKUBE_%s_%s", section, key) < 0)
                return NULL;
        for (char *p = s; *p; p++)
                *p = (*p == '-' || *p == '.') ? '_' : (char) toupper((unsigned char) *p);
        return s;
}

const char *origin_to_string(const ck_origin *o, char *buf, size_t len) {
        switch (o->kind) {
        case ORIGIN_FILE:
                snprintf(buf, len, "%s:%u", o->file, o->line);
                break;
        case ORIGIN_ENV:
                snprintf(buf, len, "env %s", o->env);
                break;
        case ORIGIN_DEFAULT:
                snprintf(buf, len, "default");
                break;
        default:
                snprintf(buf, len, "unset");
        }
        return buf;
}
