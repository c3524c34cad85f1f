/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Private to the peer reconcile (ns-peers*.c). Addresses are kept in host
 * order so that sorting orders them numerically. */

#include "ns-internal.h"

typedef struct neigh_entry {
        uint32_t ip;                  /* host order, for sorting */
        uint8_t mac[6];
        bool has_mac;
        uint16_t state;
} neigh_entry;

typedef struct fdb_entry {
        uint8_t mac[6];
        uint32_t dst;                 /* host order */
        uint16_t state;
        /* Set on entries added by hand with a port, VNI or device of their
         * own: they must be named to be deleted, and are never what we want. */
        bool has_port, has_vni, has_ifindex;
        uint16_t port;                /* network order, as in the attribute */
        uint32_t vni, ifindex;
        uint32_t refs;                /* desired ones: how many peers share this MAC (and destination) */
} fdb_entry;

typedef struct route_entry {
        uint32_t dst;                 /* host order */
        uint8_t len, tos, type;
        uint32_t prio;
        uint32_t gw;                  /* host order; 0 = none */
        bool onlink;
} route_entry;

typedef struct vec {
        void *p;
        size_t n, cap, size;
} vec;

/* A new zeroed element at the end, or NULL on allocation failure. */
void *ns_vec_push(vec *v);

typedef struct reconcile {
        ns_ctx *ctx;
        int ifindex;
        const ns_overlay_config *cfg;
        bool no_remove;                        /* NS_RECONCILE_NO_REMOVE */
        vec have_neigh, have_fdb, have_route; /* from the dumps: ours only */
        vec want_neigh, want_fdb, want_route;
        vec ops;                               /* the changes, in the order they are sent */
        ns_reconcile_stats stats;
} reconcile;

typedef enum op_kind {
        OP_NEIGH_DEL,
        OP_NEIGH_SET,                 /* create or replace */
        OP_FDB_DEL,
        OP_FDB_SET,                   /* create or replace */
        OP_ROUTE_DEL,
        OP_ROUTE_ADD,                 /* create; a foreign route with the same key is left alone */
        OP_ROUTE_REPLACE,             /* replace our own route with the same key */
} op_kind;

typedef struct op {
        op_kind kind;
        union {
                neigh_entry neigh;
                fdb_entry fdb;
                route_entry route;
        };
} op;

/* ns-peers.c: the orders the entry lists are sorted in (the key of each
 * kind: ARP by IP; FDB by MAC, then destination, plain before extras; routes
 * by destination, length, TOS, priority). */
int ns_neigh_cmp(const void *a, const void *b);
int ns_fdb_cmp(const void *a, const void *b);
int ns_route_cmp(const void *a, const void *b);

/* ns-peers.c: validate the whole desired set and turn it into sorted entry
 * lists (rc->want_*); -EINVAL (logged as the detail) if a peer is invalid. */
int ns_peers_build_wanted(reconcile *rc, const ns_peer *peers, size_t n);
/* Send rc->ops as one pipelined batch; stats.requests and stats.failed. */
int ns_peers_send_ops(reconcile *rc);
/* rc->want_* become `w` (what was there is freed). */
void ns_wanted_take(ns_wanted *w, reconcile *rc, unsigned flags);

/* ns-peers-delta.c: the desired set `w` changed in place by a delta (see
 * ns_overlay_apply_delta()), the requests for it appended to `ops` (of op)
 * in the order they are to be sent. Validates everything first: on an
 * error `w` and `ops` are as they were. No netlink. */
int ns_wanted_apply_delta(ns_wanted *w, const ns_overlay_config *cfg, const ns_peer *upsert, size_t n_upsert,
                          const struct in_addr *remove, size_t n_remove, vec *ops, ns_reconcile_stats *stats);

/* ns-peers-dump.c: fill have_* with the device's entries (3 dumps). */
int ns_peers_dump(reconcile *rc);
/* The device's ARP entries (one dump) appended to `out` (of neigh_entry). */
int ns_dump_neigh(ns_ctx *ctx, int ifindex, vec *out);
/* Message parsers for dumps and notifications (NEW and DEL): 1 with `e`
 * filled if the message is an entry of that kind on `ifindex` (routes: in
 * the main table, inside cfg's network), else 0. */
int ns_parse_neigh(const struct nlmsghdr *nlh, int ifindex, neigh_entry *e);
int ns_parse_fdb(const struct nlmsghdr *nlh, int ifindex, fdb_entry *e);
int ns_parse_route(const struct nlmsghdr *nlh, int ifindex, const ns_overlay_config *cfg, route_entry *e);

/* ns-drift.c: whether a neighbour or route notification shows the device's
 * entries drifting from ctx->wanted. */
bool ns_drift_check(const ns_ctx *ctx, const struct nlmsghdr *nlh);

/* ns-peers-ops.c: queue one change; describe one for messages. */
int ns_peers_op_queue(ns_batch *b, int ifindex, const op *o, uint32_t cookie);
void ns_peers_op_describe(const op *o, char *buf, size_t len);


