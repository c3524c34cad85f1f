/* SPDX-License-Identifier: Apache-2.0 */
/* The overlay device flannel.<vni>: create, adopt or replace; its MTU, its
 * address and its state. */
#include <errno.h>
#include <stdbool.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <string.h>

#include "ns-internal.h"

#define VXLAN_OVERHEAD 50 /* outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 */
#define MIN_MTU 68

static bool mac_wanted(const ns_overlay_config *cfg) {
        static const uint8_t zero[6];

        return memcmp(cfg->mac, zero, 6) != 0;
}

static int config_check(const ns_overlay_config *cfg) {
        const char *why = NULL;

        if (cfg->vni < 1 || cfg->vni > 0xffffff)
                why = "VNI out of range 1..16777215";
        else if (cfg->port == 0)
                why = "UDP port 0";
        else if (cfg->network_len < 1 || cfg->network_len > 30)
                why = "network prefix length out of range 1..30";
        else if (cfg->subnet_len < cfg->network_len || cfg->subnet_len > 30)
                why = "subnet length shorter than the network's or longer than 30";
        else if ((cfg->network.s_addr & ~ns_prefix_mask(cfg->network_len)) != 0)
                why = "network address has host bits set";
        else if ((cfg->subnet.s_addr & ~ns_prefix_mask(cfg->subnet_len)) != 0)
                why = "subnet address has host bits set";
        else if (!ns_in_prefix(cfg->subnet, cfg->network, cfg->network_len))
                why = "subnet outside the network";
        else if (cfg->underlay_ifindex <= 0)
                why = "no underlying interface";
        else if (cfg->local.s_addr == 0)
                why = "no local address";
        else if (mac_wanted(cfg) && (cfg->mac[0] & 1))
                why = "multicast VTEP MAC";
        if (why)
                return ns_log_error_errno(EINVAL, "Invalid overlay configuration: %s", why);
        return 0;
}

/* Why an existing device cannot be adopted, or NULL if it can. */
static const char *incompatible(struct rtnl_link *link, const ns_overlay_config *cfg) {
        struct nl_addr *local = NULL;
        uint32_t u;
        const char *why = NULL;

        if (!rtnl_link_is_vxlan(link))
                return "not a VXLAN device";
        if (rtnl_link_vxlan_get_id(link, &u) < 0 || u != cfg->vni)
                return "other VNI";
        if (rtnl_link_vxlan_get_port(link, &u) < 0 || u != cfg->port)
                return "other UDP port";
        if (rtnl_link_vxlan_get_link(link, &u) < 0 || (int) u != cfg->underlay_ifindex)
                return "other underlying device";
        if (rtnl_link_vxlan_get_learning(link) != 0)
                return "learning on";
        if (mac_wanted(cfg)) {
                struct nl_addr *a = rtnl_link_get_addr(link);
                if (!a || nl_addr_get_len(a) != 6 || memcmp(nl_addr_get_binary_addr(a), cfg->mac, 6) != 0)
                        return "other MAC address";
        }
        if (rtnl_link_vxlan_get_local(link, &local) < 0)
                return "no local address";
        if (nl_addr_get_family(local) != AF_INET || nl_addr_get_len(local) != 4 ||
            memcmp(nl_addr_get_binary_addr(local), &cfg->local, 4) != 0)
                why = "other local address";
        nl_addr_put(local);
        return why;
}

static int link_delete(ns_ctx *ctx, int ifindex) {
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

static int vxlan_create(ns_ctx *ctx, const char *name, const ns_overlay_config *cfg, uint32_t mtu) {
        struct rtnl_link *link;
        struct nl_addr *local = NULL;
        int r;

        link = rtnl_link_vxlan_alloc();
        if (!link)
                return ns_log_error_errno(ENOMEM, "Failed to allocate a link object");
        local = nl_addr_build(AF_INET, &cfg->local, 4);
        if (!local) {
                rtnl_link_put(link);
                return ns_log_error_errno(ENOMEM, "Failed to allocate an address object");
        }

        rtnl_link_set_name(link, name);
        rtnl_link_set_mtu(link, mtu);
        if (mac_wanted(cfg)) {
                struct nl_addr *a = nl_addr_build(AF_LLC, cfg->mac, 6);
                if (!a) {
                        nl_addr_put(local);
                        rtnl_link_put(link);
                        return ns_log_error_errno(ENOMEM, "Failed to allocate an address object");
                }
                rtnl_link_set_addr(link, a);
                nl_addr_put(a);
        }
        r = rtnl_link_vxlan_set_id(link, cfg->vni);
        if (r >= 0)
                r = rtnl_link_vxlan_set_port(link, cfg->port);
        if (r >= 0)
                r = rtnl_link_vxlan_set_local(link, local);
        if (r >= 0)
                r = rtnl_link_vxlan_set_link(link, (uint32_t) cfg->underlay_ifindex);
        if (r >= 0)
                r = rtnl_link_vxlan_set_learning(link, 0);
        if (r >= 0)
                r = rtnl_link_add(ctx->nl, link, NLM_F_CREATE | NLM_F_EXCL);
        nl_addr_put(local);
        rtnl_link_put(link);
        if (r < 0) {
                r = ns_nlerr_to_errno(r);
                return ns_log_error_errno(r, "Failed to create VXLAN device %s: %m", name);
        }
        return 0;
}

/* <subnet>.0/32 on the device; other addresses inside the overlay network go. */
static int overlay_addresses(ns_ctx *ctx, int ifindex, const ns_overlay_config *cfg, unsigned *changes) {
        ns_addr addrs[NS_ADDR_MAX], want = { .addr = cfg->subnet, .prefixlen = 32 };
        char buf[INET_ADDRSTRLEN];
        bool found = false;
        size_t n = 0;
        int r;

        r = ns_addr_list(ctx, ifindex, addrs, &n);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                if (addrs[i].addr.s_addr == want.addr.s_addr && addrs[i].prefixlen == 32) {
                        found = true;
                        continue;
                }
                if (!ns_in_prefix(addrs[i].addr, cfg->network, cfg->network_len))
                        continue; /* not in the overlay: not ours to judge */
                r = ns_addr_del(ctx, ifindex, &addrs[i]);
                if (r < 0 && r != -EADDRNOTAVAIL)
                        return ns_log_error_errno(r, "Failed to remove stale address %s/%u from the overlay device: %m",
                                                  inet_ntop(AF_INET, &addrs[i].addr, buf, sizeof(buf)),
                                                  addrs[i].prefixlen);
                (*changes)++;
        }

        if (!found) {
                r = ns_addr_add(ctx, ifindex, &want);
                if (r < 0)
                        return ns_log_error_errno(r, "Failed to add %s/32 to the overlay device: %m",
                                                  inet_ntop(AF_INET, &want.addr, buf, sizeof(buf)));
                (*changes)++;
        }
        return 0;
}

int ns_overlay_setup(ns_ctx *ctx, const ns_overlay_config *cfg, ns_overlay_info *ret) {
        ns_overlay_info info = { .action = NS_OVERLAY_CREATED };
        struct rtnl_link *link = NULL;
        char uname[IF_NAMESIZE];
        unsigned uflags;
        uint32_t umtu, mtu;
        int r;

        r = config_check(cfg);
        if (r < 0)
                return r;
        snprintf(info.ifname, sizeof(info.ifname), "flannel.%u", cfg->vni);

        r = ns_link_get(ctx, cfg->underlay_ifindex, &uflags, &umtu, uname);
        if (r < 0)
                return ns_log_error_errno(r, "Failed to read the underlying interface (index %d): %m",
                                          cfg->underlay_ifindex);
        mtu = cfg->mtu > 0 ? cfg->mtu : umtu - VXLAN_OVERHEAD;
        if (mtu < MIN_MTU || (cfg->mtu == 0 && umtu < MIN_MTU + VXLAN_OVERHEAD))
                return ns_log_error_errno(EINVAL, "Overlay MTU too small (interface %s has MTU %u)", uname, umtu);

        /* Drift that happened before still needs the owner's reconcile; the
         * rest pending is about the device we are about to set up. */
        unsigned seen;
        r = ns_monitor_absorb(ctx, NS_EVENT_PEERS_DRIFT, &seen);
        if (r < 0)
                return r;

        /* The device is about to change: forget the old one so the monitor
         * does not report what we do here. */
        ctx->ov_ifindex = 0;

        r = rtnl_link_get_kernel(ctx->nl, 0, info.ifname, &link);
        if (r >= 0) {
                const char *why = incompatible(link, cfg);
                int old = rtnl_link_get_ifindex(link);

                rtnl_link_put(link);
                link = NULL;
                if (why) {
                        ns_log_info("Replacing %s: %s", info.ifname, why);
                        r = link_delete(ctx, old);
                        if (r < 0 && r != -ENODEV)
                                return ns_log_error_errno(r, "Failed to delete incompatible %s: %m", info.ifname);
                        info.action = NS_OVERLAY_REPLACED;
                        info.changes++;
                } else
                        info.action = NS_OVERLAY_ADOPTED;
        } else if (ns_nlerr_to_errno(r) != -ENODEV && ns_nlerr_to_errno(r) != -ENOENT)
                return ns_log_error_errno(ns_nlerr_to_errno(r), "Failed to look up %s: %m", info.ifname);

        if (info.action != NS_OVERLAY_ADOPTED) {
                /* A new device carries none of the desired entries. */
                ns_wanted_clear(&ctx->wanted);
                r = vxlan_create(ctx, info.ifname, cfg, mtu);
                if (r < 0)
                        return r;
                info.changes++;
        }

        r = rtnl_link_get_kernel(ctx->nl, 0, info.ifname, &link);
        if (r < 0)
                return ns_log_error_errno(ns_nlerr_to_errno(r), "Failed to read %s back: %m", info.ifname);
        info.ifindex = rtnl_link_get_ifindex(link);
        info.mtu = rtnl_link_get_mtu(link);
        bool up = rtnl_link_get_flags(link) & IFF_UP;
        struct nl_addr *lladdr = rtnl_link_get_addr(link);
        if (lladdr && nl_addr_get_len(lladdr) == 6)
                memcpy(info.mac, nl_addr_get_binary_addr(lladdr), 6);
        rtnl_link_put(link);

        if (info.mtu != mtu) {
                r = ns_link_set(ctx, info.ifindex, false, mtu);
                if (r < 0)
                        return ns_log_error_errno(r, "Failed to set the MTU of %s to %u: %m", info.ifname, mtu);
                info.mtu = mtu;
                info.changes++;
        }

        r = overlay_addresses(ctx, info.ifindex, cfg, &info.changes);
        if (r < 0)
                return r;

        if (!up) {
                r = ns_link_set(ctx, info.ifindex, true, 0);
                if (r < 0)
                        return ns_log_error_errno(r, "Failed to bring %s up: %m", info.ifname);
                info.changes++;
        }

        /* Notifications so far were caused by this setup: not news for the owner. */
        ns_monitor_drain(ctx);

        ctx->ov_ifindex = info.ifindex;
        ctx->ov_cfg = *cfg;
        ctx->ov_up = true;
        ctx->ov_underlay_up = uflags & IFF_UP;
        memcpy(ctx->ov_ifname, info.ifname, sizeof(ctx->ov_ifname));

        if (ret)
                *ret = info;
        return 0;
}

int ns_overlay_remove(ns_ctx *ctx, uint32_t vni) {
        struct rtnl_link *link = NULL;
        char name[IF_NAMESIZE];
        int r, ifindex;

        snprintf(name, sizeof(name), "flannel.%u", vni);
        r = rtnl_link_get_kernel(ctx->nl, 0, name, &link);
        if (r < 0) {
                r = ns_nlerr_to_errno(r);
                if (r == -ENODEV || r == -ENOENT)
                        return 0;
                return ns_log_error_errno(r, "Failed to look up %s: %m", name);
        }
        ifindex = rtnl_link_get_ifindex(link);
        rtnl_link_put(link);

        if (ctx->ov_ifindex == ifindex)
                ctx->ov_ifindex = 0; /* deliberate: no event */

        r = link_delete(ctx, ifindex);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return ns_log_error_errno(r, "Failed to delete %s: %m", name);
        return 1;
}
