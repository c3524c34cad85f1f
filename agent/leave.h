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

typedef struct LeaveTarget {
        char *key;
        int64_t mod_revision;
        int64_t lease;
        char *what;                     /* "subnet 10.244.5.0/24", "the machine record" */
} LeaveTarget;

typedef struct LeaveCommand LeaveCommand;
/* Called once every target was deleted (or found changed and left alone). */
typedef void (*leave_released_handler_t)(LeaveCommand *l);

struct LeaveCommand {
        const AgentConfig *cfg;
        const CliArgs *args;
        sd_event *event;
        EtcdClient *etcd;
        char *endpoints;

        LeaveTarget *targets;
        size_t n_targets;
        size_t next;
        size_t done;                    /* things actually removed */
        leave_released_handler_t released;
        void *userdata;
};

void leave_finish(LeaveCommand *l, int code);
/* Exits 69 when etcd could not be reached, 1 otherwise. */
void leave_etcd_failed(LeaveCommand *l, int error, const char *message);
int leave_add_target(LeaveCommand *l, const EtcdKv *kv, const char *what);
/* Deletes the targets one after the other, then calls l->released. */
void leave_release(LeaveCommand *l);
/* Opens etcd (two rounds over the endpoints, then 69): 0 or an exit code. */
int leave_open(LeaveCommand *l);
/* Runs the loop until leave_finish(): its exit code. */
int leave_loop(LeaveCommand *l);
/* Frees what l holds (not l). */
void leave_done(LeaveCommand *l);

/* leave --node NAME [--force]; l->cfg and l->args are set. */
int leave_node_run(LeaveCommand *l);
