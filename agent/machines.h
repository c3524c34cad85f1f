/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Reading the machine records of <etcd.prefix>/machines/ (written by
 * registry.c): for cluster.env (the masters) and for `status`. Records that
 * do not parse are skipped. */

#include <stddef.h>
#include <time.h>

#include "etcd-json.h"

typedef struct machine {
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
} machine;

/* Parses every record of a range result, sorted by name. */
int machines_parse(const EtcdResult *res, machine **ret, size_t *ret_n);
void machines_free(machine *m, size_t n);

/* Escapes every string of every record for a terminal (term-escape.h):
 * they come from etcd, so from anyone who can write there. */
int machines_escape(machine *m, size_t n);

/* Seconds since the record was last seen: its lease's last keepalive when
 * known (seen_ago), else its "updated" time; -1 when neither is known. */
long long machine_seen_ago(const machine *m, time_t now);
/* "42s ago", "5m ago", "3h ago" or "-". */
const char *format_seen(long long ago, char *buf, size_t len);

/* The IPs of every master, ordered by name. */
int machines_master_ips(const EtcdResult *res, char ***ret);
