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

static const ConfigKeyDef node_keys[] = {
        K(NodeSection, "role", T_ROLE, role, NULL, 0, 0, true),
        K(NodeSection, "name", T_HOSTNAME, name, NULL, 0, 0, false), /* default: the host name */
        K(NodeSection, "interface", T_IFNAME, interface, "eth2", 0, 0, false),
        K(NodeSection, "address", T_HOST_CIDR, address, NULL, 0, 0, false),
};

static const ConfigKeyDef etcd_keys[] = {
        K(EtcdSection, "endpoints", T_URL_LIST, endpoints, NULL, 0, 0, true),
        K(EtcdSection, "prefix", T_KEY_PREFIX, prefix, "/corekube", 0, 0, false),
        /* etcd refuses leases much shorter than its election timeout. */
        K(EtcdSection, "ttl", T_DURATION, ttl, "30s", 2 * USEC_PER_SEC, 24ULL * 3600 * USEC_PER_SEC, false),
        K(EtcdSection, "ca-file", T_PATH, ca_file, NULL, 0, 0, false),
        K(EtcdSection, "cert-file", T_PATH, cert_file, NULL, 0, 0, false),
        K(EtcdSection, "key-file", T_PATH, key_file, NULL, 0, 0, false),
        K(EtcdSection, "username", T_STRING, username, NULL, 0, 0, false),
        K(EtcdSection, "password-file", T_PATH, password_file, NULL, 0, 0, false),
};

static const ConfigKeyDef network_keys[] = {
        K(NetworkSection, "prefix", T_KEY_PREFIX, prefix, "/coreos.com/network", 0, 0, false),
        K(NetworkSection, "network", T_NET_CIDR, network, "10.244.0.0/15", 0, 0, false),
        K(NetworkSection, "subnet-len", T_UINT, subnet_len, "24", 1, 30, false),
        K(NetworkSection, "vni", T_UINT, vni, "1", 1, 16777215, false),
        K(NetworkSection, "port", T_UINT, port, "8472", 1, 65535, false),
        K(NetworkSection, "mtu", T_MTU, mtu, "auto", 68, 65535, false),
        K(NetworkSection, "subnet-file", T_PATH, subnet_file, "/run/flannel/subnet.env", 0, 0, false),
        K(NetworkSection, "docker-opts-file", T_PATH, docker_opts_file, "/run/flannel/docker_opts.env", 0, 0, false),
        K(NetworkSection, "ip-masq", T_BOOL, ip_masq, "false", 0, 0, false),
};

/* unit and restart first: [docker] names these two. The unit's default
 * depends on kind, so it is filled in after loading. */
static const ConfigKeyDef runtime_keys[] = {
        K(RuntimeSection, "unit", T_UNIT, unit, NULL, 0, 0, false),
        K(RuntimeSection, "restart", T_BOOL, restart, "yes", 0, 0, false),
        K(RuntimeSection, "kind", T_RUNTIME, kind, "docker", 0, 0, false),
};

/* Its default depends on kind too. */
static const ConfigKeyDef cni_keys[] = {
        K(CniSection, "conf-file", T_PATH, conf_file, NULL, 0, 0, false),
};

#define REGISTER_BODY "{\"kind\":\"Minion\",\"id\":\"${NODE_IP}\",\"hostIP\":\"${NODE_IP}\",\"apiVersion\":\"v1beta1\"}"

static const ConfigKeyDef master_keys[] = {
        K(RoleSection, "units", T_UNIT_LIST, units,
          "kube-apiserver.service kube-controller-manager.service kube-scheduler.service", 0, 0, false),
        K(RoleSection, "artifacts", T_NAME_LIST, artifacts, "", 0, 0, false),
        K(RoleSection, "register-url", T_URL_TEMPLATE, register_url, NULL, 0, 0, false),
        K(RoleSection, "register-body", T_TEXT, register_body, REGISTER_BODY, 0, 0, false),
};

static const ConfigKeyDef minion_keys[] = {
        K(RoleSection, "units", T_UNIT_LIST, units, "kubelet.service kube-proxy.service", 0, 0, false),
        K(RoleSection, "artifacts", T_NAME_LIST, artifacts, "", 0, 0, false),
        K(RoleSection, "register-url", T_URL_TEMPLATE, register_url, NULL, 0, 0, false),
        K(RoleSection, "register-body", T_TEXT, register_body, REGISTER_BODY, 0, 0, false),
};

static const ConfigKeyDef artifact_keys[] = {
        K(Artifact, "url", T_URL, url, NULL, 0, 0, true),
        K(Artifact, "sha256", T_SHA256, sha256, NULL, 0, 0, true),
        K(Artifact, "path", T_PATH, path, NULL, 0, 0, true),
        K(Artifact, "mode", T_MODE, mode, "0755", 0, 0, false),
};

#define S(n, tbl, sect, field) \
        { .name = n, .keys = tbl, .n_keys = ELEMENTSOF(tbl), \
          .offset = offsetof(AgentConfig, field), .origin_offset = offsetof(sect, origin) }

const ConfigSectionDef ck_sections[] = {
        S("node", node_keys, NodeSection, node),
        S("etcd", etcd_keys, EtcdSection, etcd),
        S("network", network_keys, NetworkSection, network),
        S("runtime", runtime_keys, RuntimeSection, runtime),
        { .name = "docker", .keys = runtime_keys, .n_keys = 2, .offset = offsetof(AgentConfig, runtime),
          .origin_offset = offsetof(RuntimeSection, origin), .alias_of = "runtime" },
        S("cni", cni_keys, CniSection, cni),
        S("role.master", master_keys, RoleSection, roles[ROLE_MASTER]),
        S("role.minion", minion_keys, RoleSection, roles[ROLE_MINION]),
};
const size_t ck_n_sections = ELEMENTSOF(ck_sections);

const ConfigSectionDef ck_artifact_section = {
        .name = "artifact.", .keys = artifact_keys, .n_keys = ELEMENTSOF(artifact_keys),
        .offset = 0, .origin_offset = offsetof(Artifact, origin),
};

void *config_section_base(const AgentConfig *c, const ConfigSectionDef *s) {
        return (uint8_t *) c + s->offset;
}

ConfigOrigin *config_section_origins(void *base, const ConfigSectionDef *s) {
        return (ConfigOrigin *) ((uint8_t *) base + s->origin_offset);
}

char *config_env_name(const char *section, const char *key) {
        char *s = NULL;

        if (asprintf(&s, "COREKUBE_%s_%s", section, key) < 0)
                return NULL;
        for (char *p = s; *p; p++)
                *p = (*p == '-' || *p == '.') ? '_' : (char) toupper((unsigned char) *p);
        return s;
}

const char *origin_to_string(const ConfigOrigin *o, char *buf, size_t len) {
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
