/* SPDX-License-Identifier: Apache-2.0 */
/* Watching the overlay device: link notifications (RTNLGRP_LINK) tell the
 * owner when flannel.<vni> disappears or goes down, so it can be rebuilt;
 * neighbour (ARP, and the vxlan FDB as AF_BRIDGE) and IPv4 route
 * notifications tell it when the peers' entries drift (ns-drift.c). */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/socket.h>
#include <string.h>
#include <sys/socket.h>

#include "ns-peers.h"

int ns_monitor_fd(ns_ctx *ctx) {
        return nl_socket_get_fd(ctx->mon);
}

/* One datagram into ctx->rbuf: its length, -EAGAIN when nothing is left, or
 * another error (-ENOBUFS: notifications were lost). */
static ssize_t monitor_recv(ns_ctx *ctx) {
        for (;;) {
                ssize_t k = recv(nl_socket_get_fd(ctx->mon), ctx->rbuf, ctx->rbuf_size, MSG_DONTWAIT);
                if (k >= 0)
                        return k;
                if (errno != EINTR)
                        return -errno;
        }
}

void ns_monitor_drain(ns_ctx *ctx) {
        ssize_t k;

        do
                k = monitor_recv(ctx);
        while (k >= 0 || k == -ENOBUFS);
}

/* Applies what a link's new state means for the overlay. */
static void monitor_link(ns_ctx *ctx, int ifindex, bool gone, unsigned flags, const char *name, unsigned *events) {
        if (ctx->ov_ifindex == 0)
                return;

        if (ifindex == ctx->ov_ifindex) {
                if (gone || (name && !(strcmp(name, ctx->ov_ifname) == 0))) {
                        *events |= NS_EVENT_OVERLAY_GONE;
                        ctx->ov_ifindex = 0;
                        return;
                }
                bool up = flags & IFF_UP;
                if (ctx->ov_up && !up)
                        *events |= NS_EVENT_OVERLAY_DOWN;
                ctx->ov_up = up;
        } else if (ifindex == ctx->ov_cfg.underlay_ifindex && !gone) {
                bool up = flags & IFF_UP;
                if (ctx->ov_underlay_up && !up)
                        *events |= NS_EVENT_UNDERLAY_DOWN;
                ctx->ov_underlay_up = up;
        }
}

/* After lost notifications: ask the kernel how things are now. */
static void monitor_resync(ns_ctx *ctx, unsigned *events) {
        char name[IF_NAMESIZE];
        unsigned flags;
        int r;

        if (ctx->ov_ifindex == 0)
                return;
        r = ns_link_get(ctx, ctx->ov_ifindex, &flags, NULL, name);
        monitor_link(ctx, ctx->ov_ifindex, r < 0, r < 0 ? 0 : flags, r < 0 ? NULL : name, events);
        if (ctx->ov_ifindex == 0)
                return;
        r = ns_link_get(ctx, ctx->ov_cfg.underlay_ifindex, &flags, NULL, NULL);
        if (r >= 0)
                monitor_link(ctx, ctx->ov_cfg.underlay_ifindex, false, flags, NULL, events);
}

/* Reads everything pending; `*events` gets what it means. */
static int monitor_read(ns_ctx *ctx, unsigned *events) {
        bool overrun = false;
        unsigned ev = 0;

        for (;;) {
                ssize_t k = monitor_recv(ctx);
                if (k == -EAGAIN)
                        break;
                if (k == -ENOBUFS) {
                        overrun = true;
                        continue;
                }
                if (k < 0)
                        return ns_log_error_errno((int) k, "Failed to read netlink notifications: %m");

                size_t len = (size_t) k;
                for (struct nlmsghdr *h = (struct nlmsghdr *) ctx->rbuf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                        struct nlattr *tb[IFLA_MAX + 1];
                        const struct ifinfomsg *ifi;
                        const char *name = NULL;

                        if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) {
                                if (!(ev & NS_EVENT_PEERS_DRIFT) && ns_drift_check(ctx, h))
                                        ev |= NS_EVENT_PEERS_DRIFT;
                                continue;
                        }
                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
                                continue;
                        ifi = NLMSG_DATA(h);
                        if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) >= 0 && tb[IFLA_IFNAME])
                                name = nla_get_string(tb[IFLA_IFNAME]);
                        monitor_link(ctx, ifi->ifi_index, h->nlmsg_type == RTM_DELLINK, ifi->ifi_flags, name, &ev);
                }
        }

        if (overrun) {
                /* Lost entry notifications cannot be recovered here: the
                 * owner's reconcile compares everything. */
                ns_log_warning("Netlink notifications were lost; reading the overlay state");
                monitor_resync(ctx, &ev);
                if (ctx->ov_ifindex != 0)
                        ev |= NS_EVENT_PEERS_DRIFT;
        }

        *events = ev;
        return 0;
}

int ns_monitor_absorb(ns_ctx *ctx, unsigned keep, unsigned *seen) {
        unsigned ev = 0;
        int r;

        r = monitor_read(ctx, &ev);
        if (r < 0)
                return r;
        ctx->mon_pending |= ev & keep;
        *seen = ev;
        return 0;
}

int ns_monitor_process(ns_ctx *ctx, unsigned *events) {
        unsigned ev = 0;
        int r;

        r = monitor_read(ctx, &ev);
        if (r < 0)
                return r;
        ev |= ctx->mon_pending;
        ctx->mon_pending = 0;
        /* A deleted device takes its entries along (their notifications come
         * first); the owner sets it up and reconciles anyway. */
        if (ev & NS_EVENT_OVERLAY_GONE)
                ev &= ~(unsigned) NS_EVENT_PEERS_DRIFT;
        *events = ev;
        return 0;
}
