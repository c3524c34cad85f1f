/* SPDX-License-Identifier: Apache-2.0 */
/* The change requests of a reconcile: one netlink message per ARP entry, FDB
 * entry or route, queued on a batch. */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <stdio.h>
#include <string.h>

#include "ns-peers.h"

static int put_ip(struct nl_msg *m, int attr, uint32_t host_order) {
        return nla_put_u32(m, attr, htonl(host_order));
}

static struct nl_msg *neigh_msg(int ifindex, const op *o) {
        const neigh_entry *e = &o->neigh;
        bool set = o->kind == OP_NEIGH_SET;
        struct ndmsg ndm = {
                .ndm_family = AF_INET,
                .ndm_ifindex = ifindex,
                .ndm_state = set ? NUD_PERMANENT : 0,
        };
        struct nl_msg *m;

        m = ns_msg_new(set ? RTM_NEWNEIGH : RTM_DELNEIGH, set ? NLM_F_CREATE | NLM_F_REPLACE : 0, &ndm, sizeof(ndm));
        if (!m)
                return NULL;
        if (put_ip(m, NDA_DST, e->ip) < 0 || (set && nla_put(m, NDA_LLADDR, 6, e->mac) < 0)) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

static struct nl_msg *fdb_msg(int ifindex, const op *o) {
        const fdb_entry *e = &o->fdb;
        bool set = o->kind == OP_FDB_SET;
        struct ndmsg ndm = {
                .ndm_family = AF_BRIDGE,
                .ndm_ifindex = ifindex,
                .ndm_state = set ? NUD_PERMANENT : 0,
                .ndm_flags = NTF_SELF,
        };
        struct nl_msg *m;
        int r;

        m = ns_msg_new(set ? RTM_NEWNEIGH : RTM_DELNEIGH, set ? NLM_F_CREATE | NLM_F_REPLACE : 0, &ndm, sizeof(ndm));
        if (!m)
                return NULL;
        r = nla_put(m, NDA_LLADDR, 6, e->mac);
        if (r >= 0)
                r = put_ip(m, NDA_DST, e->dst);
        /* A hand-made entry with its own port, VNI or device is only found
         * (for deletion) when these are named too. */
        if (r >= 0 && e->has_port)
                r = nla_put(m, NDA_PORT, 2, &e->port);
        if (r >= 0 && e->has_vni)
                r = nla_put_u32(m, NDA_VNI, e->vni);
        if (r >= 0 && e->has_ifindex)
                r = nla_put_u32(m, NDA_IFINDEX, e->ifindex);
        if (r < 0) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

static struct nl_msg *route_msg(int ifindex, const op *o) {
        const route_entry *e = &o->route;
        struct rtmsg rtm = {
                .rtm_family = AF_INET,
                .rtm_dst_len = e->len,
                .rtm_tos = e->tos,
                .rtm_table = RT_TABLE_MAIN,
        };
        struct nl_msg *m;
        int type, flags = 0, r;

        switch (o->kind) {
        case OP_ROUTE_DEL:
                type = RTM_DELROUTE;
                rtm.rtm_scope = RT_SCOPE_NOWHERE; /* any */
                rtm.rtm_type = e->type;
                break;
        case OP_ROUTE_ADD:
        case OP_ROUTE_REPLACE:
                type = RTM_NEWROUTE;
                flags = NLM_F_CREATE | (o->kind == OP_ROUTE_ADD ? NLM_F_EXCL : NLM_F_REPLACE);
                rtm.rtm_protocol = RTPROT_BOOT;
                rtm.rtm_scope = RT_SCOPE_UNIVERSE;
                rtm.rtm_type = RTN_UNICAST;
                rtm.rtm_flags = RTNH_F_ONLINK;
                break;
        default:
                return NULL;
        }

        m = ns_msg_new(type, flags, &rtm, sizeof(rtm));
        if (!m)
                return NULL;
        r = put_ip(m, RTA_DST, e->dst);
        if (r >= 0 && e->prio)
                r = nla_put_u32(m, RTA_PRIORITY, e->prio);
        if (r >= 0 && e->gw)
                r = put_ip(m, RTA_GATEWAY, e->gw);
        if (r >= 0)
                r = nla_put_u32(m, RTA_OIF, (uint32_t) ifindex);
        if (r < 0) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

int ns_peers_op_queue(ns_batch *b, int ifindex, const op *o, uint32_t cookie) {
        struct nl_msg *m;
        int r;

        switch (o->kind) {
        case OP_NEIGH_DEL:
        case OP_NEIGH_SET:
                m = neigh_msg(ifindex, o);
                break;
        case OP_FDB_DEL:
        case OP_FDB_SET:
                m = fdb_msg(ifindex, o);
                break;
        default:
                m = route_msg(ifindex, o);
                break;
        }
        if (!m)
                return ns_log_error_errno(ENOMEM, "Failed to build a netlink request");

        r = ns_batch_add(b, m, cookie);
        nlmsg_free(m);
        return r;
}

void ns_peers_op_describe(const op *o, char *buf, size_t len) {
        char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], mac[18];
        struct in_addr x;

        switch (o->kind) {
        case OP_NEIGH_DEL:
        case OP_NEIGH_SET:
                x.s_addr = htonl(o->neigh.ip);
                inet_ntop(AF_INET, &x, a, sizeof(a));
                ns_format_mac(o->neigh.mac, mac);
                if (o->kind == OP_NEIGH_SET)
                        snprintf(buf, len, "set ARP entry %s -> %s", a, mac);
                else
                        snprintf(buf, len, "delete ARP entry %s", a);
                break;
        case OP_FDB_DEL:
        case OP_FDB_SET:
                x.s_addr = htonl(o->fdb.dst);
                inet_ntop(AF_INET, &x, a, sizeof(a));
                ns_format_mac(o->fdb.mac, mac);
                snprintf(buf, len, "%s FDB entry %s -> %s", o->kind == OP_FDB_SET ? "set" : "delete", mac, a);
                break;
        default:
                x.s_addr = htonl(o->route.dst);
                inet_ntop(AF_INET, &x, a, sizeof(a));
                x.s_addr = htonl(o->route.gw);
                inet_ntop(AF_INET, &x, g, sizeof(g));
                snprintf(buf, len, "%s route %s/%u via %s",
                         o->kind == OP_ROUTE_DEL ? "delete" : o->kind == OP_ROUTE_ADD ? "add" : "replace",
                         a, o->route.len, g);
                break;
        }
}
