/* SPDX-License-Identifier: Apache-2.0 */
/* Peer deltas: the desired set of the last reconcile (ctx->wanted, sorted)
 * changed in place for the peers that changed, and only their requests sent.
 * Every lookup is a binary search, so a change costs O(log n) comparisons
 * (plus the moves of an insert or erase) instead of rebuilding, re-sorting
 * and re-validating the whole set. */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "ns-peers.h"

/* What a delta does to one VTEP MAC's FDB entry. */
typedef struct mac_change {
        uint8_t mac[6];
        fdb_entry *old;               /* the desired entry now, or NULL */
        uint32_t dropped;             /* peers leaving it (removed, or now with another MAC) */
        uint32_t added;               /* changed peers with this MAC */
        uint32_t dst;                 /* their public IP (host order) */
} mac_change;

typedef struct delta {
        ns_wanted *w;
        const ns_overlay_config *cfg;
        uint32_t *up_ips, *rm_ips;    /* sorted, host order; rm_ips without duplicates */
        size_t n_up, n_rm;
        mac_change *macs;
        size_t n_macs;
} delta;

static int cmp_ip(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

static neigh_entry *find_neigh(const ns_wanted *w, uint32_t ip) {
        neigh_entry key = { .ip = ip };
        return w->n_neigh ? bsearch(&key, w->neigh, w->n_neigh, sizeof(key), ns_neigh_cmp) : NULL;
}

static int fdb_mac_cmp(const void *a, const void *b) {
        return memcmp(((const fdb_entry *) a)->mac, ((const fdb_entry *) b)->mac, 6);
}

static fdb_entry *find_fdb(const ns_wanted *w, const uint8_t mac[6]) {
        fdb_entry key = {};
        memcpy(key.mac, mac, 6);
        return w->n_fdb ? bsearch(&key, w->fdb, w->n_fdb, sizeof(key), fdb_mac_cmp) : NULL;
}

/* The first index whose element is not less than `key`. */
static size_t lower_bound(const void *base, size_t n, size_t size, const void *key,
                          int (*cmp)(const void *, const void *)) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cmp((const uint8_t *) base + mid * size, key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static void insert_at(void *base, size_t *n, size_t size, size_t i, const void *e) {
        uint8_t *p = base;
        memmove(p + (i + 1) * size, p + i * size, (*n - i) * size);
        memcpy(p + i * size, e, size);
        (*n)++;
}

static void erase_at(void *base, size_t *n, size_t size, size_t i) {
        uint8_t *p = base;
        memmove(p + i * size, p + (i + 1) * size, (*n - i - 1) * size);
        (*n)--;
}

static int reserve(void **p, size_t *cap, size_t need, size_t size) {
        if (need <= *cap)
                return 0;
        size_t c = need < 64 ? 64 : need + need / 2;
        void *q = realloc(*p, c * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = c;
        return 0;
}

/* The MAC's record, created on first use; never fails (room for all). */
static mac_change *mac_of(delta *d, const uint8_t mac[6]) {
        for (size_t i = 0; i < d->n_macs; i++)
                if (memcmp(d->macs[i].mac, mac, 6) == 0)
                        return &d->macs[i];
        mac_change *m = &d->macs[d->n_macs++];
        *m = (mac_change) {};
        memcpy(m->mac, mac, 6);
        m->old = find_fdb(d->w, mac);
        return m;
}

static int conflict(const uint8_t mac[6]) {
        char m[18];

        ns_format_mac(mac, m);
        return ns_log_error_errno(EINVAL, "Refusing the peer change, nothing changed: VTEP MAC %s with two public IPs",
                                  m);
}

static int validate(delta *d, const ns_peer *up, const struct in_addr *rm) {
        char err[256], a[INET_ADDRSTRLEN];

        for (size_t i = 0; i < d->n_up; i++) {
                if (ns_peer_check(d->cfg, &up[i], err, sizeof(err)) < 0)
                        return ns_log_error_errno(EINVAL, "Refusing the peer change, nothing changed: %s", err);
                d->up_ips[i] = ntohl(up[i].subnet.s_addr);
        }
        size_t k = 0;
        for (size_t i = 0; i < d->n_rm; i++)
                d->rm_ips[i] = ntohl(rm[i].s_addr);
        if (d->n_up > 1)
                qsort(d->up_ips, d->n_up, sizeof(uint32_t), cmp_ip);
        if (d->n_rm > 1)
                qsort(d->rm_ips, d->n_rm, sizeof(uint32_t), cmp_ip);
        for (size_t i = 0; i < d->n_rm; i++)
                if (k == 0 || d->rm_ips[k - 1] != d->rm_ips[i])
                        d->rm_ips[k++] = d->rm_ips[i];
        d->n_rm = k;

        for (size_t i = 0, j = 0; i < d->n_up; i++) {
                uint32_t ip = d->up_ips[i];
                while (j < d->n_rm && d->rm_ips[j] < ip)
                        j++;
                if ((i > 0 && d->up_ips[i - 1] == ip) || (j < d->n_rm && d->rm_ips[j] == ip)) {
                        struct in_addr x = { htonl(ip) };
                        inet_ntop(AF_INET, &x, a, sizeof(a));
                        return ns_log_error_errno(EINVAL, "Refusing the peer change, nothing changed: subnet %s named twice",
                                                  a);
                }
        }

        /* Which FDB entries change: each MAC's peers before and after. */
        for (size_t i = 0; i < d->n_rm; i++) {
                const neigh_entry *ne = find_neigh(d->w, d->rm_ips[i]);
                if (ne)
                        mac_of(d, ne->mac)->dropped++;
        }
        for (size_t i = 0; i < d->n_up; i++) {
                const neigh_entry *ne = find_neigh(d->w, ntohl(up[i].subnet.s_addr));
                if (ne)
                        mac_of(d, ne->mac)->dropped++;
                mac_change *m = mac_of(d, up[i].mac);
                uint32_t dst = ntohl(up[i].public_ip.s_addr);
                if (m->added > 0 && m->dst != dst)
                        return conflict(m->mac);
                m->added++;
                m->dst = dst;
        }
        for (size_t i = 0; i < d->n_macs; i++) {
                const mac_change *m = &d->macs[i];
                /* Peers that keep the MAC keep its destination. */
                if (m->old && m->old->refs > m->dropped && m->added > 0 && m->old->dst != m->dst)
                        return conflict(m->mac);
        }
        return 0;
}

static void push(vec *ops, op_kind kind, const void *entry, size_t size) {
        op *o = (op *) ops->p + ops->n++;   /* room was reserved */
        *o = (op) { .kind = kind };
        memcpy(&o->neigh, entry, size);
}

static route_entry route_of(const delta *d, uint32_t ip) {
        return (route_entry) {
                .dst = ip,
                .len = (uint8_t) d->cfg->subnet_len,
                .gw = ip,
                .onlink = true,
                .type = RTN_UNICAST,
        };
}

/* In the order a reconcile sends: removals route, FDB, ARP; then additions
 * ARP, FDB, route. Nothing here can fail. */
static void apply(delta *d, const ns_peer *up, vec *ops, ns_reconcile_stats *st) {
        ns_wanted *w = d->w;
        bool no_remove = w->flags & NS_RECONCILE_NO_REMOVE;

        for (size_t i = 0; i < d->n_rm; i++) {
                route_entry key = route_of(d, d->rm_ips[i]);
                size_t j = lower_bound(w->route, w->n_route, sizeof(key), &key, ns_route_cmp);
                if (j < w->n_route && ns_route_cmp(&w->route[j], &key) == 0) {
                        if (!no_remove) {
                                push(ops, OP_ROUTE_DEL, &w->route[j], sizeof(key));
                                st->removed++;
                        }
                        erase_at(w->route, &w->n_route, sizeof(key), j);
                }
        }

        /* FDB entries no peer keeps, or that move to another destination
         * (as a reconcile does: the old one deleted, the new one set). */
        for (size_t i = 0; i < d->n_macs; i++) {
                mac_change *m = &d->macs[i];
                if (!m->old)
                        continue;
                uint32_t left = m->old->refs - m->dropped;
                if (left == 0 && (m->added == 0 || m->old->dst != m->dst)) {
                        if (!no_remove) {
                                push(ops, OP_FDB_DEL, m->old, sizeof(fdb_entry));
                                st->removed++;
                        }
                        /* Erasing moves the entries after it: look them up again below. */
                        erase_at(w->fdb, &w->n_fdb, sizeof(fdb_entry), (size_t) (m->old - w->fdb));
                        for (size_t k = 0; k < d->n_macs; k++)
                                if (d->macs[k].old && d->macs[k].old > m->old)
                                        d->macs[k].old--;
                        m->old = NULL;
                } else
                        m->old->refs = left;
        }

        for (size_t i = 0; i < d->n_rm; i++) {
                neigh_entry key = { .ip = d->rm_ips[i] };
                size_t j = lower_bound(w->neigh, w->n_neigh, sizeof(key), &key, ns_neigh_cmp);
                if (j < w->n_neigh && w->neigh[j].ip == key.ip) {
                        if (!no_remove) {
                                push(ops, OP_NEIGH_DEL, &w->neigh[j], sizeof(key));
                                st->removed++;
                        }
                        erase_at(w->neigh, &w->n_neigh, sizeof(key), j);
                }
        }

        for (size_t i = 0; i < d->n_up; i++) {
                neigh_entry e = {
                        .ip = ntohl(up[i].subnet.s_addr),
                        .has_mac = true,
                        .state = NUD_PERMANENT,
                };
                memcpy(e.mac, up[i].mac, 6);
                size_t j = lower_bound(w->neigh, w->n_neigh, sizeof(e), &e, ns_neigh_cmp);
                if (j < w->n_neigh && w->neigh[j].ip == e.ip) {
                        if (memcmp(w->neigh[j].mac, e.mac, 6) == 0) {
                                st->unchanged++;
                                continue;
                        }
                        w->neigh[j] = e;
                        st->replaced++;
                } else {
                        insert_at(w->neigh, &w->n_neigh, sizeof(e), j, &e);
                        st->added++;
                }
                push(ops, OP_NEIGH_SET, &e, sizeof(e));
        }

        for (size_t i = 0; i < d->n_macs; i++) {
                mac_change *m = &d->macs[i];
                if (m->added == 0)
                        continue;
                if (m->old) {
                        /* Same destination, kept by the peers that stay. */
                        m->old->refs += m->added;
                        continue;
                }
                fdb_entry e = { .dst = m->dst, .state = NUD_PERMANENT, .refs = m->added };
                memcpy(e.mac, m->mac, 6);
                size_t j = lower_bound(w->fdb, w->n_fdb, sizeof(e), &e, ns_fdb_cmp);
                insert_at(w->fdb, &w->n_fdb, sizeof(e), j, &e);
                for (size_t k = 0; k < d->n_macs; k++)
                        if (d->macs[k].old && d->macs[k].old >= &w->fdb[j])
                                d->macs[k].old++;
                push(ops, OP_FDB_SET, &e, sizeof(e));
                st->added++;
        }

        for (size_t i = 0; i < d->n_up; i++) {
                route_entry e = route_of(d, ntohl(up[i].subnet.s_addr));
                size_t j = lower_bound(w->route, w->n_route, sizeof(e), &e, ns_route_cmp);
                if (j < w->n_route && ns_route_cmp(&w->route[j], &e) == 0)
                        continue;
                insert_at(w->route, &w->n_route, sizeof(e), j, &e);
                push(ops, OP_ROUTE_ADD, &e, sizeof(e));
                st->added++;
        }
}

int ns_wanted_apply_delta(ns_wanted *w, const ns_overlay_config *cfg, const ns_peer *upsert, size_t n_upsert,
                          const struct in_addr *remove, size_t n_remove, vec *ops, ns_reconcile_stats *stats) {
        _ns_cleanup_free_ uint32_t *ips = NULL;
        _ns_cleanup_free_ mac_change *macs = NULL;
        delta d = { .w = w, .cfg = cfg, .n_up = n_upsert, .n_rm = n_remove };
        int r;

        if ((n_upsert > 0 && !upsert) || (n_remove > 0 && !remove))
                return ns_log_error_errno(EINVAL, "Peer change missing");
        ips = malloc((n_upsert + n_remove + 1) * sizeof(uint32_t));
        macs = malloc((n_remove + 2 * n_upsert + 1) * sizeof(mac_change));
        if (!ips || !macs)
                return ns_log_error_errno(ENOMEM, "Failed to allocate the peer change");
        d.up_ips = ips;
        d.rm_ips = ips + n_upsert;
        d.macs = macs;

        r = validate(&d, upsert, remove);
        if (r < 0)
                return r;

        /* Room first, so that the change in place cannot stop half-way. */
        size_t nops = ops->n + 3 * (d.n_up + d.n_rm) + d.n_macs;
        if (reserve((void **) &w->neigh, &w->cap_neigh, w->n_neigh + d.n_up, sizeof(neigh_entry)) < 0 ||
            reserve((void **) &w->fdb, &w->cap_fdb, w->n_fdb + d.n_macs, sizeof(fdb_entry)) < 0 ||
            reserve((void **) &w->route, &w->cap_route, w->n_route + d.n_up, sizeof(route_entry)) < 0 ||
            reserve(&ops->p, &ops->cap, nops, sizeof(op)) < 0)
                return ns_log_error_errno(ENOMEM, "Failed to allocate the peer change");
        /* reserve() may have moved the FDB entries. */
        for (size_t i = 0; i < d.n_macs; i++)
                d.macs[i].old = find_fdb(w, d.macs[i].mac);

        apply(&d, upsert, ops, stats);
        return 0;
}

int ns_overlay_apply_delta(ns_ctx *ctx, const ns_peer *upsert, size_t n_upsert, const struct in_addr *remove,
                           size_t n_remove, ns_reconcile_stats *stats) {
        reconcile rc = {
                .ctx = ctx,
                .ifindex = ctx->ov_ifindex,
                .cfg = &ctx->ov_cfg,
                .ops.size = sizeof(op),
        };
        unsigned seen = 0;
        int r;

        if (ctx->ov_ifindex == 0)
                return ns_log_error_errno(ENODEV, "No overlay device set up; cannot program peers");
        if (ctx->wanted.ifindex != ctx->ov_ifindex || (ctx->mon_pending & NS_EVENT_PEERS_DRIFT))
                return -ESTALE;

        /* Notifications from before are judged against the old set; drift
         * among them means the kernel is not what the set says. */
        r = ns_monitor_absorb(ctx, ~0u, &seen);
        if (r < 0)
                goto finish;
        if (ctx->ov_ifindex != rc.ifindex) {
                r = ns_log_error_errno(ENODEV, "Overlay device %s disappeared; cannot program peers", ctx->ov_ifname);
                goto finish;
        }
        if (seen & NS_EVENT_PEERS_DRIFT) {
                r = -ESTALE;
                goto finish;
        }

        r = ns_wanted_apply_delta(&ctx->wanted, &ctx->ov_cfg, upsert, n_upsert, remove, n_remove, &rc.ops,
                                  &rc.stats);
        if (r < 0)
                goto finish;
        r = ns_peers_send_ops(&rc);
        ns_log_debug("Changed %s by %zu peers and %zu removals: %u added, %u replaced, %u removed, %u requests, %u failed",
                     ctx->ov_ifname, n_upsert, n_remove, rc.stats.added, rc.stats.replaced, rc.stats.removed,
                     rc.stats.requests, rc.stats.failed);
finish:
        if (stats)
                *stats = rc.stats;
        free(rc.ops.p);
        return r;
}
