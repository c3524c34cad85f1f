/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Our node's flannel subnet lease: <network.prefix>/subnets/<a.b.c.d>-<len>
 * on its own etcd lease (24 h), acquired with a txn (version 0) and tried
 * again with another subnet when a node wins the race. Reuse order: the
 * record whose PublicIP is ours; the preferred subnet (from subnet-file, or
 * the one we had) if free; a random free one. Kept alive before it expires;
 * re-acquired when deleted, expired or taken over. */

#include <stdbool.h>
#include <stdint.h>

#include "etcd-client.h"
#include "network-config.h"
#include "macro.h"

typedef struct SubnetLease SubnetLease;

typedef struct SubnetLeaseOptions {
        const char *prefix;               /* network.prefix */
        NetworkConfig config;
        uint32_t public_ip;               /* host order */
        uint8_t vtep_mac[6];
        uint32_t preferred_subnet;        /* 0: none (e.g. from subnet_lease_read_subnet_file) */
        unsigned preferred_len;
        uint64_t ttl_usec;                /* 0: 24 h */
        uint64_t renew_margin_usec;       /* renew this long before expiry; 0: 1 h (or ttl/2 if less) */
} SubnetLeaseOptions;

typedef struct SubnetLeaseEvent {
        uint32_t subnet;
        unsigned len;
        uint32_t previous_subnet;         /* the one reported before; 0: first time */
        bool changed;                     /* subnet differs from previous_subnet */
        int64_t lease_id;
        const char *key;
} SubnetLeaseEvent;

/* Called each time the lease is acquired (first time and after a loss), and
 * with error < 0 when acquiring failed (it is retried after a backoff; the
 * daemon keeps what it programmed). */
typedef void (*subnet_lease_handler_t)(SubnetLease *l, int error, const char *message,
                                        const SubnetLeaseEvent *event, void *userdata);

int subnet_lease_new(EtcdClient *client, sd_event *event, const SubnetLeaseOptions *o, subnet_lease_handler_t cb,
                     void *userdata, SubnetLease **ret);
SubnetLease *subnet_lease_free(SubnetLease *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(SubnetLease *, subnet_lease_free);
int subnet_lease_start(SubnetLease *l);
/* Revokes the etcd lease, which deletes our record (for "leave"). */
int subnet_lease_release(SubnetLease *l, etcd_handler_t cb, void *userdata);
/* The VTEP MAC changed (flannel.1 recreated): rewrite the record. */
int subnet_lease_set_vtep_mac(SubnetLease *l, const uint8_t mac[static 6]);
/* 0 if none yet. */
uint32_t subnet_lease_get_subnet(SubnetLease *l, unsigned *ret_len);

/* Reads FLANNEL_SUBNET=10.244.94.1/24 from a subnet.env file and returns the
 * subnet (10.244.94.0/24). -ENOENT if the file or the line is missing. */
int subnet_lease_read_subnet_file(const char *path, uint32_t *ret_subnet, unsigned *ret_len);
