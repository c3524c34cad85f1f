/* SPDX-License-Identifier: Apache-2.0 */
/* Links and IPv4 addresses: the private interface, and the helpers the
 * overlay device uses for its own MTU, state and address. */
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>
#include <string.h>

#include "ns-internal.h"

struct nl_msg *ns_msg_new(int type, int flags, const void *hdr, size_t hdrlen) {
        struct nl_msg *m;

        /* Small messages: the default (a page) is wasted on a request of 60 bytes. */
        m = nlmsg_alloc_size(512);
        if (!m)
                return NULL;
        struct nlmsghdr *nlh = nlmsg_put(m, 0, 0, type, 0, flags);
        if (!nlh || nlmsg_append(m, (void *) hdr, hdrlen, NLMSG_ALIGNTO) < 0) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

int ns_link_get(ns_ctx *ctx, int ifindex, unsigned *flags, uint32_t *mtu, char name[IF_NAMESIZE]) {
        struct rtnl_link *link = NULL;
        int r;

        r = rtnl_link_get_kernel(ctx->nl, ifindex, NULL, &link);
        if (r < 0)
                return ns_nlerr_to_errno(r);
        if (flags)
                *flags = rtnl_link_get_flags(link);
        if (mtu)
                *mtu = rtnl_link_get_mtu(link);
        if (name)
                snprintf(name, IF_NAMESIZE, "%s", rtnl_link_get_name(link) ?: "");
        rtnl_link_put(link);
        return 0;
}

int ns_link_delete(ns_ctx *ctx, int ifindex) {
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
        struct nl_msg *m;
        int r;

        m = ns_msg_new(RTM_DELLINK, 0, &ifi, sizeof(ifi));
        if (!m)
                return -ENOMEM;
        r = ns_request(ctx, m);
        nlmsg_free(m);
        return r;
}

int ns_link_set(ns_ctx *ctx, int ifindex, bool up, uint32_t mtu) {
        struct ifinfomsg ifi = {
                .ifi_family = AF_UNSPEC,
                .ifi_index = ifindex,
                .ifi_flags = up ? IFF_UP : 0,
                .ifi_change = up ? IFF_UP : 0,
        };
        struct nl_msg *m;
        int r;

        m = ns_msg_new(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
        if (!m)
                return -ENOMEM;
        if (mtu > 0 && nla_put_u32(m, IFLA_MTU, mtu) < 0) {
                nlmsg_free(m);
                return -ENOMEM;
        }
        r = ns_request(ctx, m);
        nlmsg_free(m);
        return r;
}

struct addr_list {
        int ifindex;
        ns_addr *addrs;
        size_t n;
};

static int addr_list_cb(const struct nlmsghdr *nlh, void *userdata) {
        struct addr_list *l = userdata;
        struct nlattr *tb[IFA_MAX + 1];
        const struct ifaddrmsg *ifa;

        if (!nlh) {
                l->n = 0; /* dump restarted */
                return 0;
        }
        if (nlh->nlmsg_type != RTM_NEWADDR)
                return 0;
        ifa = nlmsg_data(nlh);
        if (ifa->ifa_family != AF_INET || (int) ifa->ifa_index != l->ifindex)
                return 0;
        if (nlmsg_parse((struct nlmsghdr *) nlh, sizeof(*ifa), tb, IFA_MAX, NULL) < 0)
                return 0;
        struct nlattr *a = tb[IFA_LOCAL] ?: tb[IFA_ADDRESS];
        if (!a || nla_len(a) != 4 || l->n >= NS_ADDR_MAX)
                return 0;
        memcpy(&l->addrs[l->n].addr, nla_data(a), 4);
        l->addrs[l->n].prefixlen = ifa->ifa_prefixlen;
        l->n++;
        return 0;
}

int ns_addr_list(ns_ctx *ctx, int ifindex, ns_addr *ret, size_t *n) {
        struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_index = (uint32_t) ifindex };
        struct addr_list l = { .ifindex = ifindex, .addrs = ret };
        struct nl_msg *m;
        int r;

        m = ns_msg_new(RTM_GETADDR, 0, &ifa, sizeof(ifa));
        if (!m)
                return ns_log_error_errno(ENOMEM, "Failed to build an address dump request");
        r = ns_dump(ctx, m, addr_list_cb, &l);
        nlmsg_free(m);
        if (r < 0)
                return r;
        *n = l.n;
        return 0;
}

static int addr_change(ns_ctx *ctx, int type, int flags, int ifindex, const ns_addr *a) {
        struct ifaddrmsg ifa = {
                .ifa_family = AF_INET,
                .ifa_prefixlen = (uint8_t) a->prefixlen,
                .ifa_index = (uint32_t) ifindex,
        };
        struct nl_msg *m;
        int r;

        m = ns_msg_new(type, flags, &ifa, sizeof(ifa));
        if (!m)
                return -ENOMEM;
        if (nla_put(m, IFA_LOCAL, 4, &a->addr) < 0 || nla_put(m, IFA_ADDRESS, 4, &a->addr) < 0) {
                nlmsg_free(m);
                return -ENOMEM;
        }
        r = ns_request(ctx, m);
        nlmsg_free(m);
        return r;
}

int ns_addr_add(ns_ctx *ctx, int ifindex, const ns_addr *a) {
        return addr_change(ctx, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, a);
}

int ns_addr_del(ns_ctx *ctx, int ifindex, const ns_addr *a) {
        return addr_change(ctx, RTM_DELADDR, 0, ifindex, a);
}

int ns_link_setup(ns_ctx *ctx, const char *ifname, const struct in_addr *addr, unsigned prefixlen,
                  ns_link_info *ret) {
        struct rtnl_link *link = NULL;
        ns_addr addrs[NS_ADDR_MAX];
        size_t n = 0;
        unsigned changes = 0;
        char buf[INET_ADDRSTRLEN];
        int r, ifindex;
        uint32_t mtu;

        if (!ifname || strlen(ifname) >= IF_NAMESIZE || (addr && (prefixlen < 1 || prefixlen > 32)))
                return ns_log_error_errno(EINVAL, "Invalid interface name or address prefix length");

        r = rtnl_link_get_kernel(ctx->nl, 0, ifname, &link);
        if (r < 0) {
                r = ns_nlerr_to_errno(r);
                if (r == -ENOENT)
                        r = -ENODEV;
                return ns_log_error_errno(r, "Failed to find interface %s: %m", ifname);
        }
        ifindex = rtnl_link_get_ifindex(link);
        mtu = rtnl_link_get_mtu(link);
        bool up = rtnl_link_get_flags(link) & IFF_UP;
        rtnl_link_put(link);

        if (!up) {
                r = ns_link_set(ctx, ifindex, true, 0);
                if (r < 0)
                        return ns_log_error_errno(r, "Failed to bring %s up: %m", ifname);
                changes++;
        }

        r = ns_addr_list(ctx, ifindex, addrs, &n);
        if (r < 0)
                return r;

        ns_link_info info = { .ifindex = ifindex, .mtu = mtu };
        if (addr) {
                bool found = false;
                for (size_t i = 0; i < n; i++)
                        if (addrs[i].addr.s_addr == addr->s_addr && addrs[i].prefixlen == prefixlen)
                                found = true;
                if (!found) {
                        ns_addr a = { .addr = *addr, .prefixlen = prefixlen };
                        r = ns_addr_add(ctx, ifindex, &a);
                        if (r < 0)
                                return ns_log_error_errno(r, "Failed to add %s/%u to %s: %m",
                                                          inet_ntop(AF_INET, addr, buf, sizeof(buf)),
                                                          prefixlen, ifname);
                        changes++;
                }
                info.addr = *addr;
                info.prefixlen = prefixlen;
        } else {
                if (n == 0)
                        return ns_log_error_errno(EADDRNOTAVAIL, "Interface %s has no IPv4 address", ifname);
                info.addr = addrs[0].addr;
                info.prefixlen = addrs[0].prefixlen;
        }

        info.changes = changes;
        if (ret)
                *ret = info;
        return 0;
}
