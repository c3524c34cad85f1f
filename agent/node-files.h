/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The files the node's other services read (SPEC section 6):
 * subnet.env and docker_opts.env for Docker, cluster.env for the role units. */

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "config.h"
#include "envfile.h"

typedef struct NodeNet {
        Cidr network;                   /* the whole overlay */
        Cidr subnet;                    /* ours, e.g. 10.244.94.0/24 */
        unsigned mtu;                   /* of flannel.<vni> */
        bool ip_masq;
} NodeNet;

int node_subnet_env(const NodeNet *n, EnvFile *ret);
int node_docker_opts_env(const NodeNet *n, EnvFile *ret);

typedef struct NodeCluster {
        NodeRole role;
        const char *name;
        struct in_addr ip;
        struct in_addr master_ip;       /* the first master by name */
        char **master_ips;              /* every master, by name; may be NULL */
        char *const *etcd_endpoints;
        Cidr subnet;
} NodeCluster;

int node_cluster_env(const NodeCluster *n, EnvFile *ret);

/* Writes the network files: subnet.env, and docker_opts.env with Docker or
 * the CNI network configuration with containerd. Returns 1 if any changed,
 * 0 if not, or a negative errno (logged). */
int node_write_network_files(const AgentConfig *c, const NodeNet *n);
/* When Docker's options were last changed: the older of docker_opts.env in
 * /run and its persisted copy (both are written together; one that is
 * missing or was only copied later does not make them newer). */
int node_docker_opts_mtime(const AgentConfig *c, uint64_t *ret_usec);
