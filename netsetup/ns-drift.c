/* SPDX-License-Identifier: Apache-2.0 */
/* Drift: a neighbour or route notification judged against the desired set of
 * the last reconcile (ctx->wanted). Our own reconcile adds and replaces only
 * wanted entries with their wanted content and deletes only unwanted ones, so
 * its notifications never count as drift; that keeps an owner who reconciles
 * on drift from looping. */
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "ns-peers.h"

/* The kernel keeps one destination per unicast MAC (a replace changes it in
 * place), so the wanted FDB entry is found by MAC alone. */
static int fdb_mac_cmp(const void *a, const void *b) {
        return memcmp(((const fdb_entry *) a)->mac, ((const fdb_entry *) b)->mac, 6);
}

static bool fdb_extras(const fdb_entry *e) {
        return e->has_port || e->has_vni || e->has_ifindex;
}

static bool neigh_drift(const ns_wanted *w, const neigh_entry *e, bool del) {
        const neigh_entry *want = w->n_neigh ? bsearch(e, w->neigh, w->n_neigh, sizeof(*e), ns_neigh_cmp) : NULL;

        if (want)
                return del || !e->has_mac || memcmp(e->mac, want->mac, 6) != 0 || !(e->state & NUD_PERMANENT);
        if (del || (w->flags & NS_RECONCILE_NO_REMOVE))
                return false;
        /* Not wanted: only a static entry is someone's doing. The kernel's
         * own (resolution attempts, multicast) come and go with traffic;
         * reporting them would tie reconciles to traffic. */
        return e->state & NUD_PERMANENT;
}

static bool fdb_drift(const ns_wanted *w, const fdb_entry *e, bool del) {
        const fdb_entry *want = w->n_fdb ? bsearch(e, w->fdb, w->n_fdb, sizeof(*e), fdb_mac_cmp) : NULL;

        if (want) {
                bool same = e->dst == want->dst && !fdb_extras(e);
                /* A NEW for a wanted MAC with another destination or a port of
                 * its own replaced the wanted one. */
                return del ? same : !same || !(e->state & NUD_PERMANENT);
        }
        return !del && !(w->flags & NS_RECONCILE_NO_REMOVE);
}

static bool route_drift(const ns_wanted *w, const route_entry *e, bool del) {
        const route_entry *want = w->n_route ? bsearch(e, w->route, w->n_route, sizeof(*e), ns_route_cmp) : NULL;

        if (want)
                return del || e->gw != want->gw || !e->onlink || e->type != RTN_UNICAST;
        return !del && !(w->flags & NS_RECONCILE_NO_REMOVE);
}

bool ns_drift_check(const ns_ctx *ctx, const struct nlmsghdr *nlh) {
        const ns_wanted *w = &ctx->wanted;
        neigh_entry ne;
        fdb_entry fe;
        route_entry re;

        /* Nothing reconciled on this device yet: nothing to drift from. */
        if (w->ifindex == 0 || w->ifindex != ctx->ov_ifindex)
                return false;

        switch (nlh->nlmsg_type) {
        case RTM_NEWNEIGH:
        case RTM_DELNEIGH:
                if (ns_parse_neigh(nlh, w->ifindex, &ne) > 0)
                        return neigh_drift(w, &ne, nlh->nlmsg_type == RTM_DELNEIGH);
                if (ns_parse_fdb(nlh, w->ifindex, &fe) > 0)
                        return fdb_drift(w, &fe, nlh->nlmsg_type == RTM_DELNEIGH);
                return false;
        case RTM_NEWROUTE:
        case RTM_DELROUTE:
                if (ns_parse_route(nlh, w->ifindex, &ctx->ov_cfg, &re) > 0)
                        return route_drift(w, &re, nlh->nlmsg_type == RTM_DELROUTE);
                return false;
        default:
                return false;
        }
}
