/* SPDX-License-Identifier: Apache-2.0 */
/* The three dumps of a reconcile (ARP, FDB, routes), keeping only entries of
 * the overlay device: all its neighbours and forwarding entries, its routes
 * in the main table inside the overlay network. */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <string.h>

#include "ns-peers.h"

/* ---- dumps ---- */

static int neigh_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
        reconcile *rc = userdata;
        struct nlattr *tb[NDA_MAX + 1];
        const struct ndmsg *ndm;

        if (!nlh) {
                rc->have_neigh.n = 0;
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWNEIGH || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ndm)))
                return 0;
        ndm = NLMSG_DATA(nlh);
        if (ndm->ndm_family != AF_INET || ndm->ndm_ifindex != rc->ifindex)
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*ndm), tb, NDA_MAX, NULL) < 0 || !tb[NDA_DST] ||
            nla_len(tb[NDA_DST]) != 4)
                return 0;

        neigh_entry *e = ns_vec_push(&rc->have_neigh);
        if (!e)
                return -ENOMEM;
        e->ip = ntohl(nla_get_u32(tb[NDA_DST]));
        e->state = ndm->ndm_state;
        if (tb[NDA_LLADDR] && nla_len(tb[NDA_LLADDR]) == 6) {
                memcpy(e->mac, nla_data(tb[NDA_LLADDR]), 6);
                e->has_mac = true;
        }
        return 0;
}

static int fdb_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
        reconcile *rc = userdata;
        struct nlattr *tb[NDA_MAX + 1];
        const struct ndmsg *ndm;

        if (!nlh) {
                rc->have_fdb.n = 0;
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWNEIGH || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ndm)))
                return 0;
        ndm = NLMSG_DATA(nlh);
        if (ndm->ndm_family != AF_BRIDGE || ndm->ndm_ifindex != rc->ifindex)
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*ndm), tb, NDA_MAX, NULL) < 0)
                return 0;
        /* Entries without a destination are the device's own address list,
         * not forwarding entries. */
        if (!tb[NDA_LLADDR] || nla_len(tb[NDA_LLADDR]) != 6 || !tb[NDA_DST] || nla_len(tb[NDA_DST]) != 4)
                return 0;

        fdb_entry *e = ns_vec_push(&rc->have_fdb);
        if (!e)
                return -ENOMEM;
        memcpy(e->mac, nla_data(tb[NDA_LLADDR]), 6);
        e->dst = ntohl(nla_get_u32(tb[NDA_DST]));
        e->state = ndm->ndm_state;
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
        return 0;
}

static int route_dump_cb(const struct nlmsghdr *nlh, void *userdata) {
        reconcile *rc = userdata;
        struct nlattr *tb[RTA_MAX + 1];
        const struct rtmsg *rtm;
        uint32_t table;

        if (!nlh) {
                rc->have_route.n = 0;
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
                return 0;
        rtm = NLMSG_DATA(nlh);
        if (rtm->rtm_family != AF_INET || (rtm->rtm_flags & RTM_F_CLONED))
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*rtm), tb, RTA_MAX, NULL) < 0)
                return 0;
        table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
        if (table != RT_TABLE_MAIN || !tb[RTA_OIF] || (int) nla_get_u32(tb[RTA_OIF]) != rc->ifindex)
                return 0;

        struct in_addr dst = {};
        if (tb[RTA_DST] && nla_len(tb[RTA_DST]) == 4)
                dst.s_addr = nla_get_u32(tb[RTA_DST]);
        /* Ours: on the overlay device and inside the overlay network. */
        if (rtm->rtm_dst_len < rc->cfg->network_len || !ns_in_prefix(dst, rc->cfg->network, rc->cfg->network_len))
                return 0;

        route_entry *e = ns_vec_push(&rc->have_route);
        if (!e)
                return -ENOMEM;
        e->dst = ntohl(dst.s_addr);
        e->len = rtm->rtm_dst_len;
        e->tos = rtm->rtm_tos;
        e->type = rtm->rtm_type;
        e->prio = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0;
        e->gw = tb[RTA_GATEWAY] && nla_len(tb[RTA_GATEWAY]) == 4 ? ntohl(nla_get_u32(tb[RTA_GATEWAY])) : 0;
        e->onlink = rtm->rtm_flags & RTNH_F_ONLINK;
        return 0;
}

int ns_peers_dump(reconcile *rc) {
        struct ndmsg ndm = { .ndm_family = AF_INET, .ndm_ifindex = rc->ifindex };
        struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = rc->ifindex };
        struct rtmsg rtm = { .rtm_family = AF_INET };
        struct nl_msg *m;
        int r;

        /* NDA_IFINDEX / ifi_index make the kernel filter by device; the
         * callbacks filter again, for kernels that do not. */
        m = ns_msg_new(RTM_GETNEIGH, 0, &ndm, sizeof(ndm));
        if (!m || nla_put_u32(m, NDA_IFINDEX, (uint32_t) rc->ifindex) < 0) {
                nlmsg_free(m);
                return ns_log_error_errno(ENOMEM, "Failed to build a dump request");
        }
        r = ns_dump(rc->ctx, m, neigh_dump_cb, rc);
        nlmsg_free(m);
        if (r < 0)
                return r;

        m = ns_msg_new(RTM_GETNEIGH, 0, &ifi, sizeof(ifi));
        if (!m)
                return ns_log_error_errno(ENOMEM, "Failed to build a dump request");
        r = ns_dump(rc->ctx, m, fdb_dump_cb, rc);
        nlmsg_free(m);
        if (r < 0)
                return r;

        m = ns_msg_new(RTM_GETROUTE, 0, &rtm, sizeof(rtm));
        if (!m)
                return ns_log_error_errno(ENOMEM, "Failed to build a dump request");
        r = ns_dump(rc->ctx, m, route_dump_cb, rc);
        nlmsg_free(m);
        if (r < 0)
                return r;

        rc->stats.dumps = 3;
        return 0;
}

