/* SPDX-License-Identifier: Apache-2.0 */
/* The three dumps of a reconcile (ARP, FDB, routes), keeping only entries of
 * the overlay device: all its neighbours and forwarding entries, its routes
 * in the main table inside the overlay network. The same parsers read the
 * monitor's notifications. */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <string.h>

#include "ns-peers.h"

/* ---- parsers, shared by the dumps and the monitor ---- */

int ns_parse_neigh(const struct nlmsghdr *nlh, int ifindex, neigh_entry *e) {
        struct nlattr *tb[NDA_MAX + 1];
        const struct ndmsg *ndm;

        if ((nlh->nlmsg_type != RTM_NEWNEIGH && nlh->nlmsg_type != RTM_DELNEIGH) ||
            nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ndm)))
                return 0;
        ndm = NLMSG_DATA(nlh);
        if (ndm->ndm_family != AF_INET || ndm->ndm_ifindex != ifindex)
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*ndm), tb, NDA_MAX, NULL) < 0 || !tb[NDA_DST] ||
            nla_len(tb[NDA_DST]) != 4)
                return 0;

        *e = (neigh_entry) {
                .ip = ntohl(nla_get_u32(tb[NDA_DST])),
                .state = ndm->ndm_state,
        };
        if (tb[NDA_LLADDR] && nla_len(tb[NDA_LLADDR]) == 6) {
                memcpy(e->mac, nla_data(tb[NDA_LLADDR]), 6);
                e->has_mac = true;
        }
        return 1;
}

int ns_parse_fdb(const struct nlmsghdr *nlh, int ifindex, fdb_entry *e) {
        struct nlattr *tb[NDA_MAX + 1];
        const struct ndmsg *ndm;

        if ((nlh->nlmsg_type != RTM_NEWNEIGH && nlh->nlmsg_type != RTM_DELNEIGH) ||
            nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ndm)))
                return 0;
        ndm = NLMSG_DATA(nlh);
        if (ndm->ndm_family != AF_BRIDGE || ndm->ndm_ifindex != ifindex)
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*ndm), tb, NDA_MAX, NULL) < 0)
                return 0;
        /* Entries without a destination are the device's own address list,
         * not forwarding entries. */
        if (!tb[NDA_LLADDR] || nla_len(tb[NDA_LLADDR]) != 6 || !tb[NDA_DST] || nla_len(tb[NDA_DST]) != 4)
                return 0;

        *e = (fdb_entry) {
                .dst = ntohl(nla_get_u32(tb[NDA_DST])),
                .state = ndm->ndm_state,
        };
        memcpy(e->mac, nla_data(tb[NDA_LLADDR]), 6);
        if (tb[NDA_PORT] && nla_len(tb[NDA_PORT]) == 2) {
                e->has_port = true;
                memcpy(&e->port, nla_data(tb[NDA_PORT]), 2);
        }
        if (tb[NDA_VNI] && nla_len(tb[NDA_VNI]) == 4) {
                e->has_vni = true;
                e->vni = nla_get_u32(tb[NDA_VNI]);
        }
        if (tb[NDA_IFINDEX] && nla_len(tb[NDA_IFINDEX]) == 4) {
                e->has_ifindex = true;
                e->ifindex = nla_get_u32(tb[NDA_IFINDEX]);
        }
        return 1;
}

int ns_parse_route(const struct nlmsghdr *nlh, int ifindex, const ns_overlay_config *cfg, route_entry *e) {
        struct nlattr *tb[RTA_MAX + 1];
        const struct rtmsg *rtm;
        uint32_t table;

        if ((nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_DELROUTE) ||
            nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
                return 0;
        rtm = NLMSG_DATA(nlh);
        if (rtm->rtm_family != AF_INET || (rtm->rtm_flags & RTM_F_CLONED))
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*rtm), tb, RTA_MAX, NULL) < 0)
                return 0;
        table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
        if (table != RT_TABLE_MAIN || !tb[RTA_OIF] || (int) nla_get_u32(tb[RTA_OIF]) != ifindex)
                return 0;

        struct in_addr dst = {};
        if (tb[RTA_DST] && nla_len(tb[RTA_DST]) == 4)
                dst.s_addr = nla_get_u32(tb[RTA_DST]);
        /* Ours: on the overlay device and inside the overlay network. */
        if (rtm->rtm_dst_len < cfg->network_len || !ns_in_prefix(dst, cfg->network, cfg->network_len))
                return 0;

        *e = (route_entry) {
                .dst = ntohl(dst.s_addr),
                .len = rtm->rtm_dst_len,
                .tos = rtm->rtm_tos,
                .type = rtm->rtm_type,
                .prio = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0,
                .gw = tb[RTA_GATEWAY] && nla_len(tb[RTA_GATEWAY]) == 4 ? ntohl(nla_get_u32(tb[RTA_GATEWAY])) : 0,
                .onlink = rtm->rtm_flags & RTNH_F_ONLINK,
        };
        return 1;
}

/* ---- dumps ---- */

typedef struct dump_target {
        int ifindex;
        const ns_overlay_config *cfg;
        vec *v;
} dump_target;

/* One dump callback per kind; a NULL message means the dump restarts. */
static int neigh_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
        dump_target *t = userdata;
        neigh_entry e, *p;

        if (!nlh) {
                t->v->n = 0;
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWNEIGH || ns_parse_neigh(nlh, t->ifindex, &e) <= 0)
                return 0;
        p = ns_vec_push(t->v);
        if (!p)
                return -ENOMEM;
        *p = e;
        return 0;
}

static int fdb_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
        dump_target *t = userdata;
        fdb_entry e, *p;

        if (!nlh) {
                t->v->n = 0;
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWNEIGH || ns_parse_fdb(nlh, t->ifindex, &e) <= 0)
                return 0;
        p = ns_vec_push(t->v);
        if (!p)
                return -ENOMEM;
        *p = e;
        return 0;
}

static int route_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
        dump_target *t = userdata;
        route_entry e, *p;

        if (!nlh) {
                t->v->n = 0;
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWROUTE || ns_parse_route(nlh, t->ifindex, t->cfg, &e) <= 0)
                return 0;
        p = ns_vec_push(t->v);
        if (!p)
                return -ENOMEM;
        *p = e;
        return 0;
}

int ns_dump_neigh(ns_ctx *ctx, int ifindex, vec *out) {
        struct ndmsg ndm = { .ndm_family = AF_INET, .ndm_ifindex = ifindex };
        dump_target t = { .ifindex = ifindex, .v = out };
        struct nl_msg *m;
        int r;

        /* NDA_IFINDEX / ifi_index make the kernel filter by device; the
         * parsers filter again, for kernels that do not. */
        m = ns_msg_new(RTM_GETNEIGH, 0, &ndm, sizeof(ndm));
        if (!m || nla_put_u32(m, NDA_IFINDEX, (uint32_t) ifindex) < 0) {
                nlmsg_free(m);
                return ns_log_error_errno(ENOMEM, "Failed to build a dump request");
        }
        r = ns_dump(ctx, m, neigh_dump_cb, &t);
        nlmsg_free(m);
        return r;
}

int ns_peers_dump(reconcile *rc) {
        struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = rc->ifindex };
        struct rtmsg rtm = { .rtm_family = AF_INET };
        dump_target fdb = { .ifindex = rc->ifindex, .v = &rc->have_fdb };
        dump_target route = { .ifindex = rc->ifindex, .cfg = rc->cfg, .v = &rc->have_route };
        struct nl_msg *m;
        int r;

        r = ns_dump_neigh(rc->ctx, rc->ifindex, &rc->have_neigh);
        if (r < 0)
                return r;

        m = ns_msg_new(RTM_GETNEIGH, 0, &ifi, sizeof(ifi));
        if (!m)
                return ns_log_error_errno(ENOMEM, "Failed to build a dump request");
        r = ns_dump(rc->ctx, m, fdb_dump_cb, &fdb);
        nlmsg_free(m);
        if (r < 0)
                return r;

        m = ns_msg_new(RTM_GETROUTE, 0, &rtm, sizeof(rtm));
        if (!m)
                return ns_log_error_errno(ENOMEM, "Failed to build a dump request");
        r = ns_dump(rc->ctx, m, route_dump_cb, &route);
        nlmsg_free(m);
        if (r < 0)
                return r;

        rc->stats.dumps = 3;
        return 0;
}
