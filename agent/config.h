/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The agent's configuration: one typed struct, filled once from the main
 * file, its drop-ins (lexical order, later wins) and COREKUBE_* environment
 * variables (which win over files). Nothing else re-parses strings. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "build-config.h"
#include "macro.h"
#include "values.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/corekube/agent.conf"

typedef enum NodeRole {
        ROLE_MASTER,
        ROLE_MINION,
        _ROLE_MAX,
        ROLE_INVALID = -1,
} NodeRole;

const char *role_to_string(NodeRole r);

typedef enum ConfigOriginKind {
        ORIGIN_UNSET,
        ORIGIN_DEFAULT,
        ORIGIN_FILE,
        ORIGIN_ENV,
} ConfigOriginKind;

typedef struct ConfigOrigin {
        ConfigOriginKind kind;
        const char *file;               /* owned by the config's file list */
        unsigned line;
        char *env;                      /* the variable's name, for ORIGIN_ENV */
} ConfigOrigin;

typedef struct OptionalCidr {
        bool set;
        Cidr v;
} OptionalCidr;

typedef struct Sha256 {
        bool set;
        uint8_t v[32];
} Sha256;

#define CK_MAX_KEYS 16

typedef struct NodeSection {
        NodeRole role;
        char *name;
        char *interface;
        OptionalCidr address;
        ConfigOrigin origin[CK_MAX_KEYS];
} NodeSection;

typedef struct EtcdSection {
        char **endpoints;               /* NULL-terminated */
        char *prefix;
        usec_t ttl;
        char *ca_file;
        char *cert_file;
        char *key_file;
        char *username;
        char *password_file;
        ConfigOrigin origin[CK_MAX_KEYS];
} EtcdSection;

typedef struct NetworkSection {
        char *prefix;
        Cidr network;
        uint32_t subnet_len;
        uint32_t vni;
        uint32_t port;
        uint32_t mtu;                   /* 0 = auto: interface MTU - 50 */
        char *subnet_file;
        char *docker_opts_file;
        bool ip_masq;
        ConfigOrigin origin[CK_MAX_KEYS];
} NetworkSection;

typedef enum RuntimeKind {
        RUNTIME_DOCKER,                 /* docker_opts.env, and the unit restarted when it changed */
        RUNTIME_CONTAINERD,             /* a CNI network configuration, read per pod */
        _RUNTIME_MAX,
        RUNTIME_INVALID = -1,
} RuntimeKind;

const char *runtime_kind_to_string(RuntimeKind k);

#define CNI_CONF_FILE_DEFAULT "/etc/cni/net.d/10-corekube.conflist"

/* [runtime]; [docker] is its deprecated alias for unit and restart, which
 * come first so that both sections index the same origins. */
typedef struct RuntimeSection {
        char *unit;                     /* always set after loading: docker.service or containerd.service by default */
        bool restart;                   /* docker only */
        RuntimeKind kind;
        ConfigOrigin origin[CK_MAX_KEYS];
} RuntimeSection;

typedef struct CniSection {
        char *conf_file;                /* NULL with kind = docker */
        ConfigOrigin origin[CK_MAX_KEYS];
} CniSection;

typedef struct RoleSection {
        char **units;                   /* NULL-terminated, in start order */
        char **artifacts;               /* names of [artifact.NAME] sections */
        char *register_url;             /* with ${MASTER_IP} etc. unexpanded */
        char *register_body;
        ConfigOrigin origin[CK_MAX_KEYS];
} RoleSection;

typedef struct Artifact {
        char *name;
        char *url;
        Sha256 sha256;
        char *path;
        mode_t mode;
        ConfigOrigin section;           /* where [artifact.NAME] first appeared */
        ConfigOrigin origin[CK_MAX_KEYS];
} Artifact;

typedef struct AgentConfig {
        NodeSection node;
        EtcdSection etcd;
        NetworkSection network;
        RuntimeSection runtime;
        CniSection cni;
        RoleSection roles[_ROLE_MAX];
        Artifact *artifacts;
        size_t n_artifacts;

        char *main_path;
        char **files;                   /* every file read, owning the names origins point to */
} AgentConfig;

/* Where diagnostics go: a callback per problem, already formatted as
 * "FILE:LINE: message" or "env COREKUBE_X: message". */
typedef void (*config_diag_handler_t)(int level, const char *msg, void *userdata);

typedef struct ConfigLoadOptions {
        const char *path;               /* NULL: CONFIG_DEFAULT_PATH */
        char *const *environ;           /* NULL: the process environment */
        config_diag_handler_t diag;     /* NULL: print to stderr */
        void *userdata;
} ConfigLoadOptions;

/* Returns 0 and a config; -EINVAL when any problem was found (each reported
 * through diag; *ret stays NULL), or another negative errno. */
int config_load(const ConfigLoadOptions *opts, AgentConfig **ret);
AgentConfig *config_free(AgentConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentConfig *, config_free);

/* The role section of this node. */
const RoleSection *config_role(const AgentConfig *c);
const Artifact *config_artifact(const AgentConfig *c, const char *name);

/* The effective configuration as INI, each value with where it came from. */
void config_dump(const AgentConfig *c, FILE *f);
