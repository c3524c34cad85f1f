/* SPDX-License-Identifier: Apache-2.0 */
/* The overlay device flannel.<vni>: create, adopt, change in place or
 * replace; its MTU, its address and its state.
 *
 * Replacing the device drops every peer's route, ARP and FDB entry with it,
 * so what the kernel can change on the live device is changed there (checked
 * on 6.x: local address, underlying device, learning through RTM_NEWLINK
 * with IFLA_INFO_DATA; the MAC while up, since vxlan allows live address
 * changes). The kernel refuses to change the VNI or the port ("Cannot change
 * VNI/port"; it refuses IFLA_VXLAN_PORT on a change even with the same
 * value, so a change request carries only what differs). */
#include <errno.h>
#include <stdbool.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <string.h>

#include "ns-peers.h"

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

/* What differs on an existing device and can be changed in place. */
enum {
        CHANGE_LOCAL    = 1 << 0,
        CHANGE_UNDERLAY = 1 << 1,
        CHANGE_LEARNING = 1 << 2,
        CHANGE_MAC      = 1 << 3,
};

/* Appends ", " and a formatted item to `buf`; cut short if it does not fit. */
static void describe(char *buf, size_t len, size_t *off, const char *format, ...) _ns_printf_(4, 5);
static void describe(char *buf, size_t len, size_t *off, const char *format, ...) {
        va_list ap;
        int k;

        if (*off > 0 && *off + 2 < len) {
                memcpy(buf + *off, ", ", 3);
                *off += 2;
        }
        if (*off >= len)
                return;
        va_start(ap, format);
        k = vsnprintf(buf + *off, len - *off, format, ap);
        va_end(ap);
        if (k > 0)
                *off = *off + (size_t) k < len ? *off + (size_t) k : len - 1;
}

/* Why an existing device must be replaced, or NULL if it can be kept;
 * `*change` gets the CHANGE_* bits for what is to change in place, `desc` a
 * description of them for the log. */
static const char *compare(struct rtnl_link *link, const ns_overlay_config *cfg, unsigned *change, char *desc,
                           size_t desclen) {
        struct nl_addr *local = NULL;
        char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], m[18], n[18];
        size_t off = 0;
        uint32_t u;

        *change = 0;
        desc[0] = 0;
        if (!rtnl_link_is_vxlan(link))
                return "not a VXLAN device";
        if (rtnl_link_vxlan_get_id(link, &u) < 0 || u != cfg->vni)
                return "other VNI";
        if (rtnl_link_vxlan_get_port(link, &u) < 0 || u != cfg->port)
                return "other UDP port";

        inet_ntop(AF_INET, &cfg->local, b, sizeof(b));
        if (rtnl_link_vxlan_get_local(link, &local) < 0) {
                *change |= CHANGE_LOCAL;
                describe(desc, desclen, &off, "local address none -> %s", b);
        } else {
                if (nl_addr_get_family(local) != AF_INET || nl_addr_get_len(local) != 4 ||
                    memcmp(nl_addr_get_binary_addr(local), &cfg->local, 4) != 0) {
                        *change |= CHANGE_LOCAL;
                        describe(desc, desclen, &off, "local address %s -> %s", nl_addr2str(local, a, sizeof(a)), b);
                }
                nl_addr_put(local);
        }
        if (rtnl_link_vxlan_get_link(link, &u) < 0)
                u = 0;
        if ((int) u != cfg->underlay_ifindex) {
                *change |= CHANGE_UNDERLAY;
                describe(desc, desclen, &off, "underlying device index %u -> %d", u, cfg->underlay_ifindex);
        }
        if (rtnl_link_vxlan_get_learning(link) != 0) {
                *change |= CHANGE_LEARNING;
                describe(desc, desclen, &off, "learning on -> off");
        }
        if (mac_wanted(cfg)) {
                struct nl_addr *addr = rtnl_link_get_addr(link);
                if (!addr || nl_addr_get_len(addr) != 6 || memcmp(nl_addr_get_binary_addr(addr), cfg->mac, 6) != 0) {
                        *change |= CHANGE_MAC;
                        if (addr && nl_addr_get_len(addr) == 6)
                                ns_format_mac(nl_addr_get_binary_addr(addr), m);
                        else
                                snprintf(m, sizeof(m), "none");
                        ns_format_mac(cfg->mac, n);
                        describe(desc, desclen, &off, "MAC %s -> %s", m, n);
                }
        }
        return NULL;
}

/* Local address, underlying device and learning in one RTM_NEWLINK on the
 * existing device; only the attributes that change are sent. */
static int vxlan_change(ns_ctx *ctx, int ifindex, const ns_overlay_config *cfg, unsigned change) {
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
        struct nlattr *info, *data;
        struct nl_msg *m;
        int r;

        m = ns_msg_new(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
        if (!m)
                return -ENOMEM;
        r = -ENOMEM;
        info = nla_nest_start(m, IFLA_LINKINFO);
        if (!info || nla_put_string(m, IFLA_INFO_KIND, "vxlan") < 0)
                goto finish;
        data = nla_nest_start(m, IFLA_INFO_DATA);
        if (!data)
                goto finish;
        if ((change & CHANGE_LOCAL) && nla_put(m, IFLA_VXLAN_LOCAL, 4, &cfg->local) < 0)
                goto finish;
        if ((change & CHANGE_UNDERLAY) && nla_put_u32(m, IFLA_VXLAN_LINK, (uint32_t) cfg->underlay_ifindex) < 0)
                goto finish;
        if ((change & CHANGE_LEARNING) && nla_put_u8(m, IFLA_VXLAN_LEARNING, 0) < 0)
                goto finish;
        nla_nest_end(m, data);
        nla_nest_end(m, info);
        r = ns_request(ctx, m);
finish:
        nlmsg_free(m);
        return r;
}

/* Sets the MAC of the live device. The kernel flushes the device's ARP
 * entries on a MAC change, permanent ones too (routes and FDB entries stay),
 * so the permanent ones are read before and put back after. */
static int mac_change(ns_ctx *ctx, int ifindex, const char *ifname, const uint8_t mac[6], unsigned *restored) {
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
        vec saved = { .size = sizeof(neigh_entry) };
        ns_batch *b = NULL;
        struct nl_msg *m;
        int r;

        *restored = 0;
        r = ns_dump_neigh(ctx, ifindex, &saved);
        if (r < 0)
                return r;

        m = ns_msg_new(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
        if (!m || nla_put(m, IFLA_ADDRESS, 6, mac) < 0) {
                nlmsg_free(m);
                free(saved.p);
                return -ENOMEM;
        }
        r = ns_request(ctx, m);
        nlmsg_free(m);
        if (r < 0) {
                free(saved.p); /* refused: nothing was flushed */
                return r;
        }

        r = ns_batch_new(ctx, NULL, NULL, &b);
        const neigh_entry *e = saved.p;
        for (size_t i = 0; i < saved.n && r >= 0; i++) {
                if (!(e[i].state & NUD_PERMANENT) || !e[i].has_mac)
                        continue;
                op o = { .kind = OP_NEIGH_SET, .neigh = e[i] };
                r = ns_peers_op_queue(b, ifindex, &o, (uint32_t) i);
                (*restored)++;
        }
        if (r >= 0)
                r = ns_batch_flush(b);
        ns_batch_free(b);
        free(saved.p);
        if (r < 0)
                /* The MAC did change; the next reconcile puts the entries back. */
                ns_log_warning("Failed to restore the ARP entries of %s after its MAC change: %s", ifname,
                               strerror(-r));
        return 0;
}

/* Changes the existing device in place; a negative error if the kernel
 * refused (the caller then replaces the device). */
static int overlay_change(ns_ctx *ctx, int ifindex, const char *ifname, const ns_overlay_config *cfg,
                          unsigned change) {
        unsigned restored = 0;
        int r;

        if (change & (CHANGE_LOCAL | CHANGE_UNDERLAY | CHANGE_LEARNING)) {
                r = vxlan_change(ctx, ifindex, cfg, change);
                if (r < 0) {
                        ns_log_info("The kernel refused to change %s in place: %s", ifname, strerror(-r));
                        return r;
                }
        }
        if (change & CHANGE_MAC) {
                r = mac_change(ctx, ifindex, ifname, cfg->mac, &restored);
                if (r < 0) {
                        ns_log_info("The kernel refused to change the MAC of %s while it is up: %s", ifname,
                                    strerror(-r));
                        return r;
                }
                if (restored > 0)
                        ns_log_info("Restored %u ARP entries of %s that the MAC change flushed", restored, ifname);
        }
        return 0;
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
                char desc[256];
                unsigned change;
                const char *why = compare(link, cfg, &change, desc, sizeof(desc));
                int old = rtnl_link_get_ifindex(link);

                rtnl_link_put(link);
                link = NULL;
                if (!why && change) {
                        ns_log_info("Changing %s in place to match the configuration: %s", info.ifname, desc);
                        if (overlay_change(ctx, old, info.ifname, cfg, change) < 0)
                                why = "the kernel refused the change in place";
                        else {
                                info.action = NS_OVERLAY_CHANGED;
                                info.changes += (unsigned) __builtin_popcount(change);
                        }
                }
                if (why) {
                        ns_log_info("Replacing %s: %s", info.ifname, why);
                        r = ns_link_delete(ctx, old);
                        if (r < 0 && r != -ENODEV)
                                return ns_log_error_errno(r, "Failed to delete incompatible %s: %m", info.ifname);
                        info.action = NS_OVERLAY_REPLACED;
                        info.changes++;
                } else if (!change)
                        info.action = NS_OVERLAY_ADOPTED;
        } else if (ns_nlerr_to_errno(r) != -ENODEV && ns_nlerr_to_errno(r) != -ENOENT)
                return ns_log_error_errno(ns_nlerr_to_errno(r), "Failed to look up %s: %m", info.ifname);

        if (info.action == NS_OVERLAY_CREATED || info.action == NS_OVERLAY_REPLACED) {
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

        r = ns_link_delete(ctx, ifindex);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return ns_log_error_errno(r, "Failed to delete %s: %m", name);
        return 1;
}
