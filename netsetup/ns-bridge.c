/* SPDX-License-Identifier: Apache-2.0 */
/* The pods' bridge (cni0): the CNI bridge plugin creates it and puts the
 * gateway of the node's subnet on it; when the subnet moves it must go, so
 * that the plugin builds it again on the new gateway. */
#include <arpa/inet.h>
#include <errno.h>
#include <netlink/route/link.h>
#include <string.h>

#include "ns-internal.h"

int ns_bridge_remove_stale(ns_ctx *ctx, const char *ifname, const struct in_addr *gateway, unsigned prefixlen,
                           struct in_addr *ret_old) {
        struct rtnl_link *link = NULL;
        ns_addr addrs[NS_ADDR_MAX];
        size_t n = 0;
        const char *type;
        bool bridge;
        int r, ifindex;

        if (!ifname || strlen(ifname) >= IF_NAMESIZE || prefixlen < 1 || prefixlen > 32)
                return ns_log_error_errno(EINVAL, "Invalid bridge name or prefix length");
        r = rtnl_link_get_kernel(ctx->nl, 0, ifname, &link);
        if (r < 0) {
                r = ns_nlerr_to_errno(r);
                if (r == -ENODEV || r == -ENOENT)
                        return 0;
                return ns_log_error_errno(r, "Failed to look up %s: %m", ifname);
        }
        ifindex = rtnl_link_get_ifindex(link);
        type = rtnl_link_get_type(link);
        bridge = type && strcmp(type, "bridge") == 0;
        rtnl_link_put(link);
        if (!bridge)
                return 0;       /* not one the plugin made: not ours to delete */

        r = ns_addr_list(ctx, ifindex, addrs, &n);
        if (r < 0)
                return r;
        /* No address yet: the plugin adds the current one itself. */
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (addrs[i].addr.s_addr == gateway->s_addr && addrs[i].prefixlen == prefixlen)
                        return 0;

        r = ns_link_delete(ctx, ifindex);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return ns_log_error_errno(r, "Failed to delete %s: %m", ifname);
        if (ret_old)
                *ret_old = addrs[0].addr;
        return 1;
}
