/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the two forms of `leave` share (cmd-leave.c: this node;
 * cmd-leave-node.c: --node, another node's keys): the keys to delete, each
 * guarded by the mod_revision it was read at, with their etcd leases
 * revoked afterwards. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "cli.h"
#include "config.h"
#include "etcd-client.h"

typedef struct leave_target {
        char *key;
        int64_t mod_revision;
        int64_t lease;
        char *what;                     /* "subnet 10.244.5.0/24", "the machine record" */
} leave_target;

typedef struct leave_cmd leave_cmd;
/* Called once every target was deleted (or found changed and left alone). */
typedef void (*leave_released_t)(leave_cmd *l);

struct leave_cmd {
        const ck_config *cfg;
        const cli_args *args;
        sd_event *event;
        EtcdClient *etcd;
        char *endpoints;

        leave_target *targets;
        size_t n_targets;
        size_t next;
        size_t done;                    /* things actually removed */
        leave_released_t released;
        void *userdata;
};

void leave_finish(leave_cmd *l, int code);
/* Exits 69 when etcd could not be reached, 1 otherwise. */
void leave_etcd_failed(leave_cmd *l, int error, const char *message);
int leave_add_target(leave_cmd *l, const EtcdKv *kv, const char *what);
/* Deletes the targets one after the other, then calls l->released. */
void leave_release(leave_cmd *l);
/* Opens etcd (two rounds over the endpoints, then 69): 0 or an exit code. */
int leave_open(leave_cmd *l);
/* Runs the loop until leave_finish(): its exit code. */
int leave_loop(leave_cmd *l);
/* Frees what l holds (not l). */
void leave_done(leave_cmd *l);

/* leave --node NAME [--force]; l->cfg and l->args are set. */
int leave_node_run(leave_cmd *l);
