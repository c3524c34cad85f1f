/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the node keeps across reboots, in its state directory
 * ($STATE_DIRECTORY, which StateDirectory=corekube sets; /var/lib/corekube
 * otherwise): copies of subnet.env and docker_opts.env (Docker's drop-in
 * reads this docker_opts.env, so Docker starts at boot on the last subnet),
 * and peers.json, the last complete peer snapshot with the overlay it was
 * programmed on, so that flannel.1 carries traffic at boot before etcd
 * answers. */

#include <stddef.h>
#include <stdint.h>

#include "netsetup.h"

#define NODE_STATE_DIR_DEFAULT "/var/lib/corekube"

/* The directory (the first of $STATE_DIRECTORY's, if it lists several). */
const char *node_state_dir(void);
/* "<dir>/<name>", or NULL when out of memory. */
char *node_state_path(const char *name);

typedef struct NodeSnapshot {
        struct in_addr network;         /* the overlay network and its prefix */
        unsigned network_len;
        uint32_t vni;
        uint16_t port;
        struct in_addr subnet;          /* ours */
        unsigned subnet_len;
        struct in_addr public_ip;       /* ours: a snapshot of another address is not used */
        ns_peer *peers;
        size_t n_peers;
} NodeSnapshot;

/* Writes peers.json atomically; 1 if it changed, 0 if not, or a negative
 * errno (logged). */
int node_snapshot_write(const NodeSnapshot *s);
/* Reads peers.json: 0, -ENOENT when there is none, -EINVAL when it is
 * malformed (logged, naming the file and what is wrong). */
int node_snapshot_read(NodeSnapshot *ret);
void node_snapshot_done(NodeSnapshot *s);

/* Removes the persisted files (`leave`); returns how many were removed. */
int node_state_remove(void);
