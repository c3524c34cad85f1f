/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Reading the machine records of <etcd.prefix>/machines/ (written by
 * registry.c): for cluster.env (the masters) and for `status`. Records that
 * do not parse are skipped. */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "etcd-client.h"
#include "etcd-json.h"
#include "macro.h"

typedef struct MachineRecord {
        char *id;
        char *name;
        char *role;
        char *ip;
        char *subnet;
        char *state;
        char *error;
        char *reason;                   /* with state waiting: what for */
        char *message;                  /* with state waiting: the last thing seen */
        char *updated;
        char *units;                    /* "kubelet.service=active, ..." */
        size_t n_units;
        size_t n_active;
        int64_t lease;                  /* the record's etcd lease (0: none) */
        long long seen_ago;             /* seconds since its last keepalive; -1: unknown */
} MachineRecord;

/* Parses every record of a range result, sorted by name. */
int machines_parse(const EtcdResult *res, MachineRecord **ret, size_t *ret_n);
void machines_free(MachineRecord *m, size_t n);

/* Escapes every string of every record for a terminal (term-escape.h):
 * they come from etcd, so from anyone who can write there. */
int machines_escape(MachineRecord *m, size_t n);

/* Seconds since the record was last seen: its lease's last keepalive when
 * known (seen_ago), else its "updated" time; -1 when neither is known. */
long long machine_seen_ago(const MachineRecord *m, time_t now);
/* "42s ago", "5m ago", "3h ago" or "-". */
const char *format_seen(long long ago, char *buf, size_t len);

/* The IPs of every master, ordered by name; with ready_only, of the
 * masters whose record says state ready. */
int machines_master_ips(const EtcdResult *res, bool ready_only, char ***ret);

/* Waits until some master's record says state ready: lists the records,
 * then watches them and lists again on every change.
 *   ready > 0: master_ips are the ready masters' IPs (the callee owns
 *              them); the wait is over, nothing follows;
 *   ready = 0: none is ready yet (message says what there is); it goes on;
 *   ready < 0: etcd could not be listed (a negative errno, message says);
 *              it goes on: master_wait_check() lists again.
 * Records that do not parse are skipped. */
typedef struct MasterWait MasterWait;
typedef void (*master_wait_handler_t)(int ready, const char *message, char **master_ips, void *userdata);

int master_wait_new(EtcdClient *c, const char *prefix, master_wait_handler_t cb, void *userdata, MasterWait **ret);
/* Lists again now, unless a list is in flight (a watch that is stuck or
 * cannot be set up must not keep us waiting for good); also sets the
 * watch up again if it ended. */
void master_wait_check(MasterWait *w);
/* Cancels whatever is in flight; never calls back. */
MasterWait *master_wait_free(MasterWait *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(MasterWait *, master_wait_free);
