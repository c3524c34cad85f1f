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
#include "values.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/corekube/agent.conf"

typedef enum ck_role {
        ROLE_MASTER,
        ROLE_MINION,
        _ROLE_MAX,
        ROLE_INVALID = -1,
} ck_role;

const char *role_to_string(ck_role r);

typedef enum ck_origin_kind {
        ORIGIN_UNSET,
        ORIGIN_DEFAULT,
        ORIGIN_FILE,
        ORIGIN_ENV,
} ck_origin_kind;

typedef struct ck_origin {
        ck_origin_kind kind;
        const char *file;               /* owned by the config's file list */
        unsigned line;
        char *env;                      /* the variable's name, for ORIGIN_ENV */
} ck_origin;

typedef struct ck_opt_cidr {
        bool set;
        ck_cidr v;
} ck_opt_cidr;

typedef struct ck_sha256 {
        bool set;
        uint8_t v[32];
} ck_sha256;

#define CK_MAX_KEYS 16

typedef struct ck_node_config {
        ck_role role;
        char *name;
        char *interface;
        ck_opt_cidr address;
        ck_origin origin[CK_MAX_KEYS];
} ck_node_config;

typedef struct ck_etcd_config {
        char **endpoints;               /* NULL-terminated */
        char *prefix;
        usec_t ttl;
        char *ca_file;
        char *cert_file;
        char *key_file;
        char *username;
        char *password_file;
        ck_origin origin[CK_MAX_KEYS];
} ck_etcd_config;

typedef struct ck_network_config {
        char *prefix;
        ck_cidr network;
        uint32_t subnet_len;
        uint32_t vni;
        uint32_t port;
        uint32_t mtu;                   /* 0 = auto: interface MTU - 50 */
        char *subnet_file;
        char *docker_opts_file;
        bool ip_masq;
        ck_origin origin[CK_MAX_KEYS];
} ck_network_config;

typedef enum ck_runtime_kind {
        RUNTIME_DOCKER,                 /* docker_opts.env, and the unit restarted when it changed */
        RUNTIME_CONTAINERD,             /* a CNI network configuration, read per pod */
        _RUNTIME_MAX,
        RUNTIME_INVALID = -1,
} ck_runtime_kind;

const char *runtime_kind_to_string(ck_runtime_kind k);

#define CNI_CONF_FILE_DEFAULT "/etc/cni/net.d/10-corekube.conflist"

/* [runtime]; [docker] is its deprecated alias for unit and restart, which
 * come first so that both sections index the same origins. */
typedef struct ck_runtime_config {
        char *unit;                     /* always set after loading: docker.service or containerd.service by default */
        bool restart;                   /* docker only */
        ck_runtime_kind kind;
        ck_origin origin[CK_MAX_KEYS];
} ck_runtime_config;

typedef struct ck_cni_config {
        char *conf_file;                /* NULL with kind = docker */
        ck_origin origin[CK_MAX_KEYS];
} ck_cni_config;

typedef struct ck_role_config {
        char **units;                   /* NULL-terminated, in start order */
        char **artifacts;               /* names of [artifact.NAME] sections */
        char *register_url;             /* with ${MASTER_IP} etc. unexpanded */
        char *register_body;
        ck_origin origin[CK_MAX_KEYS];
} ck_role_config;

typedef struct ck_artifact {
        char *name;
        char *url;
        ck_sha256 sha256;
        char *path;
        mode_t mode;
        ck_origin section;              /* where [artifact.NAME] first appeared */
        ck_origin origin[CK_MAX_KEYS];
} ck_artifact;

typedef struct ck_config {
        ck_node_config node;
        ck_etcd_config etcd;
        ck_network_config network;
        ck_runtime_config runtime;
        ck_cni_config cni;
        ck_role_config roles[_ROLE_MAX];
        ck_artifact *artifacts;
        size_t n_artifacts;

        char *main_path;
        char **files;                   /* every file read, owning the names origins point to */
} ck_config;

/* Where diagnostics go: a callback per problem, already formatted as
 * "FILE:LINE: message" or "env COREKUBE_X: message". */
typedef void (*ck_diag_func_t)(int level, const char *msg, void *userdata);

typedef struct ck_load_options {
        const char *path;               /* NULL: CONFIG_DEFAULT_PATH */
        char *const *environ;           /* NULL: the process environment */
        ck_diag_func_t diag;            /* NULL: print to stderr */
        void *userdata;
} ck_load_options;

/* Returns 0 and a config; -EINVAL when any problem was found (each reported
 * through diag; *ret stays NULL), or another negative errno. */
int config_load(const ck_load_options *opts, ck_config **ret);
void config_free(ck_config *c);

/* The role section of this node. */
const ck_role_config *config_role(const ck_config *c);
const ck_artifact *config_artifact(const ck_config *c, const char *name);

/* The effective configuration as INI, each value with where it came from. */
void config_dump(const ck_config *c, FILE *f);
