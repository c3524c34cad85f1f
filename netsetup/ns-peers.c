/* SPDX-License-Identifier: Apache-2.0 */
/* Peer reconcile: the overlay device's ARP entries, FDB entries and routes
 * made to match the desired peers exactly.
 *
 * One dump per table gives what is there; both sides are sorted and merged;
 * the differences go out as one pipelined batch: removals first (route, FDB,
 * ARP), then additions (ARP, FDB, route). Nothing to change means three
 * dumps and no request. The desired lists are kept in the context afterwards:
 * the monitor compares notifications with them. */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <string.h>

#include "ns-peers.h"

void *ns_vec_push(vec *v) {
        if (v->n >= v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 64;
                void *p = realloc(v->p, cap * v->size);
                if (!p)
                        return NULL;
                v->p = p;
                v->cap = cap;
        }
        void *e = (uint8_t *) v->p + v->n++ * v->size;
        memset(e, 0, v->size);
        return e;
}

/* ---- comparisons ---- */

static int cmp_u32(uint32_t a, uint32_t b) {
        return a < b ? -1 : a > b;
}

int ns_neigh_cmp(const void *a, const void *b) {
        return cmp_u32(((const neigh_entry *) a)->ip, ((const neigh_entry *) b)->ip);
}

int ns_fdb_cmp(const void *a, const void *b) {
        const fdb_entry *x = a, *y = b;
        int c = memcmp(x->mac, y->mac, 6);
        if (!c)
                c = cmp_u32(x->dst, y->dst);
        /* A plain entry before one with its own port/VNI/device, so that the
         * plain one is what a desired entry is compared with. */
        if (!c)
                c = cmp_u32(x->has_port || x->has_vni || x->has_ifindex, y->has_port || y->has_vni || y->has_ifindex);
        return c;
}

int ns_route_cmp(const void *a, const void *b) {
        const route_entry *x = a, *y = b;
        int c = cmp_u32(x->dst, y->dst);
        if (!c)
                c = cmp_u32(x->len, y->len);
        if (!c)
                c = cmp_u32(x->tos, y->tos);
        if (!c)
                c = cmp_u32(x->prio, y->prio);
        return c;
}

static bool mac_eq(const uint8_t a[6], const uint8_t b[6]) {
        return memcmp(a, b, 6) == 0;
}

static int push_op(reconcile *rc, op_kind kind, const void *entry, size_t size) {
        op *o = ns_vec_push(&rc->ops);
        if (!o)
                return ns_log_error_errno(ENOMEM, "Failed to allocate the reconcile plan");
        o->kind = kind;
        memcpy(&o->neigh, entry, size); /* the union's members start at the same place */
        return 0;
}

/* Validates the whole desired set and turns it into sorted entry lists. */
/* qsort() with an empty list: the pointer may be NULL then, which qsort's
 * contract does not allow. */
static void sort_entries(void *p, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n > 1)
                qsort(p, n, size, cmp);
}

int ns_peers_build_wanted(reconcile *rc, const ns_peer *peers, size_t n) {
        char err[256], a[INET_ADDRSTRLEN], mac[18];

        for (size_t i = 0; i < n; i++) {
                if (ns_peer_check(rc->cfg, &peers[i], err, sizeof(err)) < 0)
                        return ns_log_error_errno(EINVAL, "Refusing the peer set, nothing changed: %s", err);

                neigh_entry *ne = ns_vec_push(&rc->want_neigh);
                fdb_entry *fe = ns_vec_push(&rc->want_fdb);
                route_entry *re = ns_vec_push(&rc->want_route);
                if (!ne || !fe || !re)
                        return ns_log_error_errno(ENOMEM, "Failed to allocate the desired state");

                ne->ip = ntohl(peers[i].subnet.s_addr);
                memcpy(ne->mac, peers[i].mac, 6);
                ne->has_mac = true;
                ne->state = NUD_PERMANENT;

                memcpy(fe->mac, peers[i].mac, 6);
                fe->dst = ntohl(peers[i].public_ip.s_addr);
                fe->state = NUD_PERMANENT;
                fe->refs = 1;

                re->dst = ne->ip;
                re->len = (uint8_t) peers[i].subnet_len;
                re->gw = ne->ip;
                re->onlink = true;
                re->type = RTN_UNICAST;
        }

        sort_entries(rc->want_neigh.p, rc->want_neigh.n, sizeof(neigh_entry), ns_neigh_cmp);
        sort_entries(rc->want_route.p, rc->want_route.n, sizeof(route_entry), ns_route_cmp);
        sort_entries(rc->want_fdb.p, rc->want_fdb.n, sizeof(fdb_entry), ns_fdb_cmp);

        const neigh_entry *wn = rc->want_neigh.p;
        for (size_t i = 1; i < rc->want_neigh.n; i++)
                if (wn[i].ip == wn[i - 1].ip) {
                        struct in_addr x = { htonl(wn[i].ip) };
                        inet_ntop(AF_INET, &x, a, sizeof(a));
                        return ns_log_error_errno(EINVAL, "Refusing the peer set, nothing changed: two peers for subnet %s",
                                                  a);
                }

        /* One FDB entry per MAC: the same MAC twice is fine only with the
         * same public IP (then it is one entry). */
        fdb_entry *wf = rc->want_fdb.p;
        size_t k = 0;
        for (size_t i = 0; i < rc->want_fdb.n; i++) {
                if (k > 0 && mac_eq(wf[k - 1].mac, wf[i].mac)) {
                        if (wf[k - 1].dst == wf[i].dst) {
                                wf[k - 1].refs++;
                                continue;
                        }
                        ns_format_mac(wf[i].mac, mac);
                        return ns_log_error_errno(EINVAL,
                                                  "Refusing the peer set, nothing changed: VTEP MAC %s with two public IPs",
                                                  mac);
                }
                wf[k++] = wf[i];
        }
        rc->want_fdb.n = k;
        return 0;
}

/* The merges below run twice: first queueing removals, then additions and
 * replacements, so that the batch goes out in the documented order. */

static int diff_neigh(reconcile *rc, bool removals) {
        const neigh_entry *h = rc->have_neigh.p, *w = rc->want_neigh.p;
        size_t i = 0, j = 0, nh = rc->have_neigh.n, nw = rc->want_neigh.n;
        int r = 0;

        while (r >= 0 && (i < nh || j < nw)) {
                int c = i >= nh ? 1 : j >= nw ? -1 : ns_neigh_cmp(&h[i], &w[j]);
                if (c < 0) {
                        if (removals && !rc->no_remove) {
                                r = push_op(rc, OP_NEIGH_DEL, &h[i], sizeof(h[i]));
                                rc->stats.removed++;
                        }
                        i++;
                } else if (c > 0) {
                        if (!removals) {
                                r = push_op(rc, OP_NEIGH_SET, &w[j], sizeof(w[j]));
                                rc->stats.added++;
                        }
                        j++;
                } else {
                        if (!removals) {
                                if (h[i].has_mac && mac_eq(h[i].mac, w[j].mac) && (h[i].state & NUD_PERMANENT))
                                        rc->stats.unchanged++;
                                else {
                                        r = push_op(rc, OP_NEIGH_SET, &w[j], sizeof(w[j]));
                                        rc->stats.replaced++;
                                }
                        }
                        i++, j++;
                }
        }
        return r;
}

static int diff_fdb(reconcile *rc, bool removals) {
        const fdb_entry *h = rc->have_fdb.p, *w = rc->want_fdb.p;
        size_t i = 0, j = 0, nh = rc->have_fdb.n, nw = rc->want_fdb.n;
        int r = 0;

        while (r >= 0 && (i < nh || j < nw)) {
                int c = i >= nh ? 1 : j >= nw ? -1 : ns_fdb_cmp(&h[i], &w[j]);
                if (c < 0) {
                        if (removals && !rc->no_remove) {
                                r = push_op(rc, OP_FDB_DEL, &h[i], sizeof(h[i]));
                                rc->stats.removed++;
                        }
                        i++;
                } else if (c > 0) {
                        if (!removals) {
                                r = push_op(rc, OP_FDB_SET, &w[j], sizeof(w[j]));
                                rc->stats.added++;
                        }
                        j++;
                } else {
                        bool extras = h[i].has_port || h[i].has_vni || h[i].has_ifindex;
                        if (!extras && (h[i].state & NUD_PERMANENT)) {
                                if (!removals)
                                        rc->stats.unchanged++;
                        } else if (removals) {
                                if (extras && !rc->no_remove)
                                        r = push_op(rc, OP_FDB_DEL, &h[i], sizeof(h[i]));
                        } else {
                                r = push_op(rc, OP_FDB_SET, &w[j], sizeof(w[j]));
                                rc->stats.replaced++;
                        }
                        i++, j++;
                }
        }
        return r;
}

static int diff_route(reconcile *rc, bool removals) {
        const route_entry *h = rc->have_route.p, *w = rc->want_route.p;
        size_t i = 0, j = 0, nh = rc->have_route.n, nw = rc->want_route.n;
        int r = 0;

        while (r >= 0 && (i < nh || j < nw)) {
                int c = i >= nh ? 1 : j >= nw ? -1 : ns_route_cmp(&h[i], &w[j]);
                if (c < 0) {
                        if (removals && !rc->no_remove) {
                                r = push_op(rc, OP_ROUTE_DEL, &h[i], sizeof(h[i]));
                                rc->stats.removed++;
                        }
                        i++;
                } else if (c > 0) {
                        if (!removals) {
                                r = push_op(rc, OP_ROUTE_ADD, &w[j], sizeof(w[j]));
                                rc->stats.added++;
                        }
                        j++;
                } else {
                        if (!removals) {
                                if (h[i].gw == w[j].gw && h[i].onlink && h[i].type == RTN_UNICAST)
                                        rc->stats.unchanged++;
                                else {
                                        r = push_op(rc, OP_ROUTE_REPLACE, &w[j], sizeof(w[j]));
                                        rc->stats.replaced++;
                                }
                        }
                        i++, j++;
                }
        }
        return r;
}

static int op_error(uint32_t cookie, int error, const char *msg, void *userdata) {
        reconcile *rc = userdata;
        const op *o = (const op *) rc->ops.p + cookie;
        char what[128];

        /* Already gone is what a removal wanted. */
        if ((o->kind == OP_NEIGH_DEL || o->kind == OP_FDB_DEL || o->kind == OP_ROUTE_DEL) &&
            (error == -ENOENT || error == -ESRCH))
                return 0;

        rc->stats.failed++;
        ns_peers_op_describe(o, what, sizeof(what));
        /* The other requests go on: each refusal is a warning here, and the
         * caller reports the reconcile's failure (with stats.failed). */
        if (o->kind == OP_ROUTE_ADD && error == -EEXIST)
                return ns_log_full(LOG_WARNING, error,
                                   "Failed to %s on %s: a route to that subnet exists on another device, left alone",
                                   what, rc->ctx->ov_ifname);
        return ns_log_full(LOG_WARNING, error, "Failed to %s on %s: %m%s%s", what, rc->ctx->ov_ifname,
                           msg ? ": " : "", msg ?: "");
}

int ns_peers_send_ops(reconcile *rc) {
        ns_batch *b;
        int r;

        if (rc->ops.n == 0)
                return 0;

        r = ns_batch_new(rc->ctx, op_error, rc, &b);
        if (r < 0)
                return r;
        const op *ops = rc->ops.p;
        for (size_t i = 0; i < rc->ops.n && r >= 0; i++)
                r = ns_peers_op_queue(b, rc->ifindex, &ops[i], (uint32_t) i);
        int q = ns_batch_flush(b);
        rc->stats.requests = ns_batch_sent(b);
        ns_batch_free(b);
        return r < 0 ? r : q;
}

void ns_wanted_clear(ns_wanted *w) {
        free(w->neigh);
        free(w->fdb);
        free(w->route);
        *w = (ns_wanted) {};
}

/* The desired lists become `w`'s (the context's, for the monitor). */
void ns_wanted_take(ns_wanted *w, reconcile *rc, unsigned flags) {
        ns_wanted_clear(w);
        *w = (ns_wanted) {
                .ifindex = rc->ifindex,
                .flags = flags,
                .neigh = rc->want_neigh.p,
                .fdb = rc->want_fdb.p,
                .route = rc->want_route.p,
                .n_neigh = rc->want_neigh.n,
                .n_fdb = rc->want_fdb.n,
                .n_route = rc->want_route.n,
                .cap_neigh = rc->want_neigh.cap,
                .cap_fdb = rc->want_fdb.cap,
                .cap_route = rc->want_route.cap,
        };
        rc->want_neigh = rc->want_fdb = rc->want_route = (vec) {};
}

int ns_overlay_reconcile(ns_ctx *ctx, const ns_peer *peers, size_t n, ns_reconcile_stats *stats) {
        return ns_overlay_reconcile_flags(ctx, peers, n, 0, stats);
}

/* The last desired set as what the kernel holds (already sorted). */
static int vec_copy(vec *v, const void *p, size_t n) {
        if (n == 0)
                return 0;
        v->p = malloc(n * v->size);
        if (!v->p)
                return ns_log_error_errno(ENOMEM, "Failed to allocate the reconcile plan");
        memcpy(v->p, p, n * v->size);
        v->n = v->cap = n;
        return 0;
}

static int wanted_as_have(reconcile *rc) {
        const ns_wanted *w = &rc->ctx->wanted;
        int r;

        r = vec_copy(&rc->have_neigh, w->neigh, w->n_neigh);
        if (r >= 0)
                r = vec_copy(&rc->have_fdb, w->fdb, w->n_fdb);
        if (r >= 0)
                r = vec_copy(&rc->have_route, w->route, w->n_route);
        return r;
}

int ns_overlay_reconcile_flags(ns_ctx *ctx, const ns_peer *peers, size_t n, unsigned flags,
                               ns_reconcile_stats *stats) {
        reconcile rc = {
                .ctx = ctx,
                .ifindex = ctx->ov_ifindex,
                .cfg = &ctx->ov_cfg,
                .no_remove = flags & NS_RECONCILE_NO_REMOVE,
                .have_neigh.size = sizeof(neigh_entry),
                .have_fdb.size = sizeof(fdb_entry),
                .have_route.size = sizeof(route_entry),
                .want_neigh.size = sizeof(neigh_entry),
                .want_fdb.size = sizeof(fdb_entry),
                .want_route.size = sizeof(route_entry),
                .ops.size = sizeof(op),
        };
        unsigned seen = 0, drift_before;
        int r;

        if (flags & ~(unsigned) (NS_RECONCILE_NO_REMOVE | NS_RECONCILE_INCREMENTAL))
                return ns_log_error_errno(EINVAL, "Unknown reconcile flags 0x%x", flags);
        if (ctx->ov_ifindex == 0)
                return ns_log_error_errno(ENODEV, "No overlay device set up; cannot program peers");
        if (n > 0 && !peers)
                return ns_log_error_errno(EINVAL, "Peer list missing");

        r = ns_peers_build_wanted(&rc, peers, n);
        if (r < 0)
                goto finish;

        /* Notifications from before this point are judged against the old
         * desired set, so that ours (judged against the new one) do not mix
         * with them. Drift they show needs no report: the dumps below see it
         * and this reconcile repairs it. Link events are kept for the owner. */
        drift_before = ctx->mon_pending & NS_EVENT_PEERS_DRIFT;
        r = ns_monitor_absorb(ctx, ~(unsigned) NS_EVENT_PEERS_DRIFT, &seen);
        if (r < 0)
                goto finish;
        ctx->mon_pending &= ~(unsigned) NS_EVENT_PEERS_DRIFT;
        if (ctx->ov_ifindex != rc.ifindex) {
                /* The device just went: the owner learns it from the monitor. */
                r = ns_log_error_errno(ENODEV, "Overlay device %s disappeared; cannot program peers", ctx->ov_ifname);
                goto finish;
        }

        if ((flags & NS_RECONCILE_INCREMENTAL) && ctx->wanted.ifindex == rc.ifindex && !drift_before &&
            !(seen & NS_EVENT_PEERS_DRIFT))
                r = wanted_as_have(&rc);
        else
                r = ns_peers_dump(&rc);
        if (r < 0) {
                ctx->mon_pending |= drift_before | (seen & NS_EVENT_PEERS_DRIFT);
                goto finish;
        }
        sort_entries(rc.have_neigh.p, rc.have_neigh.n, sizeof(neigh_entry), ns_neigh_cmp);
        sort_entries(rc.have_fdb.p, rc.have_fdb.n, sizeof(fdb_entry), ns_fdb_cmp);
        sort_entries(rc.have_route.p, rc.have_route.n, sizeof(route_entry), ns_route_cmp);

        r = diff_route(&rc, true);
        if (r >= 0)
                r = diff_fdb(&rc, true);
        if (r >= 0)
                r = diff_neigh(&rc, true);
        if (r >= 0)
                r = diff_neigh(&rc, false);
        if (r >= 0)
                r = diff_fdb(&rc, false);
        if (r >= 0)
                r = diff_route(&rc, false);
        if (r < 0) {
                ctx->mon_pending |= drift_before | (seen & NS_EVENT_PEERS_DRIFT);
                goto finish;
        }

        r = ns_peers_send_ops(&rc);
        ns_wanted_take(&ctx->wanted, &rc, flags);
        ns_log_debug("Reconciled %s with %zu peers%s: %u added, %u replaced, %u removed, %u unchanged, %u requests, %u failed",
                     ctx->ov_ifname, n, rc.no_remove ? " (removing nothing)" : "", rc.stats.added,
                     rc.stats.replaced, rc.stats.removed, rc.stats.unchanged, rc.stats.requests, rc.stats.failed);

finish:
        if (stats)
                *stats = rc.stats;
        free(rc.have_neigh.p);
        free(rc.have_fdb.p);
        free(rc.have_route.p);
        free(rc.want_neigh.p);
        free(rc.want_fdb.p);
        free(rc.want_route.p);
        free(rc.ops.p);
        return r;
}
