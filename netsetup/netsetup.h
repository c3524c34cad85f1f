/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* netsetup: brings up the private interface and the flannel VXLAN overlay and
 * keeps its peer entries in step, through netlink. Knows nothing of etcd or
 * systemd; errors are negative errno values with a message for the caller
 * (ns_error_detail()), which logs the failure once.
 *
 * Typical use by the daemon:
 *
 *     ns_new(&ctx);
 *     ns_link_setup(ctx, "eth2", addr_or_NULL, prefixlen, &link);
 *     cfg.underlay_ifindex = link.ifindex; cfg.local = link.addr; ...
 *     ns_overlay_setup(ctx, &cfg, &overlay);           (create, adopt, change in place or replace)
 *     ns_overlay_reconcile_flags(ctx, peers, n, NS_RECONCILE_NO_REMOVE, &stats);
 *                                                      (at start, before the peer snapshot is
 *                                                       complete: adopt, add, remove nothing)
 *     ns_overlay_reconcile(ctx, peers, n, &stats);     (with a complete snapshot, and on every
 *                                                       change of the peer set)
 *     ns_overlay_apply_delta(ctx, up, n, gone, m, &st); (a few peers changed: their requests
 *                                                       alone; -ESTALE -> reconcile in full)
 *     poll(ns_monitor_fd(ctx)) -> ns_monitor_process(ctx, &events);
 *         NS_EVENT_OVERLAY_GONE / _DOWN -> ns_overlay_setup() + reconcile again
 *         NS_EVENT_PEERS_DRIFT -> reconcile again (same flags as the last one)
 *     ns_overlay_remove(ctx, vni);                     (`leave`)
 *     ns_free(ctx);
 *
 * Not thread safe: one ns_ctx per thread. */

#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The owner decides where messages go; by default they go to stderr. `level`
 * is a syslog level (LOG_WARNING, LOG_INFO, LOG_DEBUG); `error` is a
 * positive errno value or 0, for %m. Failures do not go through the hook: a
 * function that fails returns a negative errno value and leaves what went
 * wrong for ns_error_detail(), and the owner, which decides what the failure
 * means (retry, fail the node, exit), logs it once. */
typedef void (*ns_log_func_t)(int level, int error, const char *format, va_list ap);
void ns_set_log_func(ns_log_func_t f);

/* The message of the last failure if it was `error` (negative or positive
 * errno), e.g. "Failed to add 192.168.3.2/24 to eth2: Permission denied";
 * NULL if there is none for that error. Each detail is returned once. */
const char *ns_error_detail(int error);

typedef struct ns_ctx ns_ctx;

/* Opens the netlink sockets: for requests and dumps, and one subscribed to
 * link, neighbour (ARP and FDB) and IPv4 route notifications (the monitor). */
int ns_new(ns_ctx **ret);
void ns_free(ns_ctx *ctx);

/* ---- the private interface ---- */

typedef struct ns_link_info {
        int ifindex;
        uint32_t mtu;
        struct in_addr addr;          /* the configured address, else the first IPv4 one */
        unsigned prefixlen;
        unsigned changes;             /* requests that changed something (0 = was in place) */
} ns_link_info;

/* Brings `ifname` up; if `addr` is not NULL, assigns addr/prefixlen unless it
 * is already there. Reports index, MTU and IPv4 address. -ENODEV if there is
 * no such link, -EADDRNOTAVAIL if it has no IPv4 address and none was given. */
int ns_link_setup(ns_ctx *ctx, const char *ifname, const struct in_addr *addr, unsigned prefixlen,
                  ns_link_info *ret);

/* ---- the overlay device flannel.<vni> ---- */

typedef struct ns_overlay_config {
        uint32_t vni;                 /* 1 .. 2^24-1; the device is "flannel.<vni>" */
        uint16_t port;                /* UDP port, e.g. 8472 */
        uint32_t mtu;                 /* 0 = underlay MTU - 50 */
        struct in_addr network;       /* the whole overlay, e.g. 10.244.0.0/15 */
        unsigned network_len;
        struct in_addr subnet;        /* ours, e.g. 10.244.94.0/24 */
        unsigned subnet_len;
        int underlay_ifindex;         /* the private interface */
        struct in_addr local;         /* its address: VXLAN source and peers' PublicIP */
        uint8_t mac[6];               /* the VTEP MAC to give the device; all zero: the kernel's.
                                       * A fixed one can be published before the device exists and
                                       * survives its re-creation, so peers need no update. */
} ns_overlay_config;

typedef enum ns_overlay_action {
        NS_OVERLAY_CREATED,           /* there was none */
        NS_OVERLAY_ADOPTED,           /* a compatible device was kept (same ifindex) */
        NS_OVERLAY_REPLACED,          /* an incompatible device was deleted and created anew */
        NS_OVERLAY_CHANGED,           /* the device was changed in place (same ifindex, peers'
                                       * entries kept): local address, underlying device,
                                       * learning or MAC */
} ns_overlay_action;

typedef struct ns_overlay_info {
        char ifname[IF_NAMESIZE];
        int ifindex;
        uint8_t mac[6];               /* the VTEP MAC to publish in our lease */
        uint32_t mtu;
        ns_overlay_action action;
        unsigned changes;             /* requests that changed something (0 = was in place) */
} ns_overlay_info;

/* Makes flannel.<vni> exist as configured: VXLAN with this VNI, port, local
 * address and underlying device, learning off; MTU; address <subnet>.0/32
 * (other addresses inside the overlay network are removed, others kept); up.
 * A device of that name with another local address, underlying device,
 * learning or MAC is changed in place (NS_OVERLAY_CHANGED; `changes` counts
 * each attribute; the permanent ARP entries, which the kernel flushes when
 * the MAC changes, are put back). Only a device that differs in kind, VNI or
 * port (the kernel refuses to change these), or whose change in place the
 * kernel refuses, is deleted and created anew: that drops all its peers'
 * entries. Remembers the device in `ctx` for the reconcile and the monitor;
 * notifications pending from before are discarded, except that drift is
 * still reported. -EINVAL for a bad config. */
int ns_overlay_setup(ns_ctx *ctx, const ns_overlay_config *cfg, ns_overlay_info *ret);

/* Deletes flannel.<vni> and with it all its neighbour, FDB and route entries.
 * Returns 1 if it was deleted, 0 if there was none. */
int ns_overlay_remove(ns_ctx *ctx, uint32_t vni);

/* ---- peers ---- */

typedef struct ns_peer {
        struct in_addr subnet;        /* e.g. 10.244.12.0 */
        unsigned subnet_len;          /* must equal the config's subnet_len */
        struct in_addr public_ip;     /* its underlay address: the FDB destination */
        uint8_t mac[6];               /* its VTEP MAC */
} ns_peer;

/* Checks one peer against the config: the subnet is aligned, has our subnet
 * length, lies inside the overlay network and is not our own; the public IP
 * is unicast (not 0/8, loopback, multicast, class E or broadcast); the MAC is
 * neither zero nor multicast. Returns 0, or -EINVAL with the reason in `err`
 * (if not NULL). Does not log. */
int ns_peer_check(const ns_overlay_config *cfg, const ns_peer *peer, char *err, size_t errlen);

typedef struct ns_reconcile_stats {
        unsigned added;               /* entries (neighbour, FDB, route) created */
        unsigned replaced;            /* entries changed in place (new MAC, new state, new gateway) */
        unsigned removed;             /* entries deleted (stale or no longer desired) */
        unsigned unchanged;           /* entries already as desired */
        unsigned requests;            /* change requests sent (0 on a no-op reconcile) */
        unsigned dumps;               /* dump requests sent (3 on every reconcile) */
        unsigned failed;              /* change requests the kernel refused */
} ns_reconcile_stats;

/* Makes the overlay device set up by the last ns_overlay_setup() hold exactly,
 * for each peer: the permanent ARP entry <subnet> -> MAC, the permanent FDB
 * entry MAC -> public IP (NTF_SELF), and the route <subnet>/len via <subnet>
 * onlink. Everything else on the device of these kinds (routes: in the main
 * table and inside the overlay network) is removed; entries on other devices
 * and routes outside the network are left alone. Additions go in the order
 * ARP, FDB, route; removals in the reverse order.
 *
 * Validation policy: every peer is checked first (ns_peer_check(), plus no
 * two peers with the same subnet, no MAC with two public IPs); if one is
 * invalid, the whole call is refused with -EINVAL and nothing is touched.
 *
 * Cost: one dump per table, then the changes pipelined (many requests per
 * send, errors collected afterwards). If the kernel refuses some requests the
 * others are still applied, `failed` counts them and the first error is
 * returned. -ENODEV if no overlay is set up. `stats` may be NULL. */
int ns_overlay_reconcile(ns_ctx *ctx, const ns_peer *peers, size_t n, ns_reconcile_stats *stats);

enum {
        NS_RECONCILE_NO_REMOVE = 1 << 0, /* adopt: add and replace what is wanted, remove nothing */
        NS_RECONCILE_INCREMENTAL = 1 << 1, /* no dumps: compare with the last reconcile's desired set */
};

/* ns_overlay_reconcile() (= flags 0) with flags. With NS_RECONCILE_NO_REMOVE
 * no delete request is sent: entries that are not wanted stay (also FDB
 * entries with a port, VNI or device of their own), wanted ones are added,
 * and wanted ones with other content (MAC, state, gateway, an FDB entry's
 * destination) are replaced in place. For this, as long as the peer snapshot
 * is not known to be complete. -EINVAL for unknown flags.
 *
 * With NS_RECONCILE_INCREMENTAL the kernel is taken to hold what the last
 * reconcile on this device wanted, and only the difference to the new set is
 * sent: one peer added, changed or removed costs its own requests and no
 * dump, whatever the number of peers. When that cannot be trusted (no earlier
 * reconcile on this device, drift noticed since) it dumps as without the flag.
 * The owner still does a full reconcile after a re-list, on drift and now and
 * then, since entries it never wanted are invisible to this mode.
 *
 * Either way the desired entries are remembered in `ctx` for the monitor
 * (NS_EVENT_PEERS_DRIFT), once the reconcile has reached the kernel, also if
 * the kernel refused some of its requests: they are what the owner wants. */
int ns_overlay_reconcile_flags(ns_ctx *ctx, const ns_peer *peers, size_t n, unsigned flags,
                               ns_reconcile_stats *stats);

/* A delta of the peer set: the peers in `upsert` added or changed (by
 * subnet), the subnets in `remove` gone. The kernel is taken to hold what the
 * desired set of the last reconcile on this device, with the deltas since,
 * says; that set is updated in place (binary search, no dump, no rebuild) and
 * only the changed peers' requests are sent, so one change costs its own
 * requests whatever the number of peers. The same set as a full reconcile of
 * the resulting peers would want, so the monitor judges drift alike.
 *
 * Validation as in ns_overlay_reconcile(), for the changed peers: each is
 * checked, no subnet twice (nor both upserted and removed), and no VTEP MAC
 * with two public IPs among the changed peers and the rest of the set; if one
 * fails, -EINVAL and nothing changes. Removing a subnet that is not there is
 * no error. Removals go out as in a reconcile, unless that reconcile was with
 * NS_RECONCILE_NO_REMOVE.
 *
 * -ESTALE (not logged) when the kernel cannot be taken to hold that set: no
 * reconcile on this device yet, or drift noticed since; the owner then does a
 * full reconcile with the whole set. -ENODEV if no overlay is set up. Requests
 * the kernel refuses count in `failed`, as in a reconcile. */
int ns_overlay_apply_delta(ns_ctx *ctx, const ns_peer *upsert, size_t n_upsert, const struct in_addr *remove,
                           size_t n_remove, ns_reconcile_stats *stats);

/* ---- watching the overlay device ---- */

enum {
        NS_EVENT_OVERLAY_GONE   = 1 << 0, /* flannel.<vni> was deleted (or renamed) */
        NS_EVENT_OVERLAY_DOWN   = 1 << 1, /* flannel.<vni> is administratively down */
        NS_EVENT_UNDERLAY_DOWN  = 1 << 2, /* the private interface went down */
        NS_EVENT_PEERS_DRIFT    = 1 << 3, /* the overlay's ARP, FDB or route entries differ
                                           * from what the last reconcile made: reconcile */
};

/* A file descriptor that becomes readable (POLLIN) when notifications
 * arrive. */
int ns_monitor_fd(ns_ctx *ctx);

/* Reads what is pending without blocking and sets `*events` to the NS_EVENT_*
 * bits that apply to the device set up by the last ns_overlay_setup(); 0 if
 * nothing relevant happened. After NS_EVENT_OVERLAY_GONE the device is
 * forgotten until the next ns_overlay_setup(). Notifications caused by
 * ns_overlay_setup() itself are not reported.
 *
 * NS_EVENT_PEERS_DRIFT: on the overlay device (routes: main table, inside the
 * overlay network) an entry the last reconcile wanted was deleted or changed
 * (other MAC, not permanent, other FDB destination or a port/VNI/device of
 * its own, other gateway, not onlink), or, if that reconcile was without
 * NS_RECONCILE_NO_REMOVE, one that is not wanted appeared (ARP: only
 * permanent ones; the kernel's own resolution entries come and go with
 * traffic and are removed at the next reconcile anyway). The reconcile's own
 * changes do not cause it. Also set when notifications were lost (receive
 * buffer overrun): the owner cannot know, a reconcile compares everything. */
int ns_monitor_process(ns_ctx *ctx, unsigned *events);

/* The one MAC text form, also the agent's (etcd records): "aa:bb:cc:dd:ee:ff",
 * exactly (upper-case digits accepted); -EINVAL otherwise. The formatter
 * writes lower case and returns buf. */
int ns_parse_mac(const char *s, uint8_t mac[6]);
const char *ns_format_mac(const uint8_t mac[6], char buf[18]);

/* ---- the pods' bridge ---- */

/* Deletes the bridge `ifname` (cni0) if it carries IPv4 addresses but not
 * gateway/prefixlen: it was built for a subnet the node no longer holds.
 * Absent, without an address yet, with the gateway, or not a bridge: left
 * alone. Returns 1 if it was deleted (its first address in *ret_old, if not
 * NULL), 0 if not, or a negative errno. */
int ns_bridge_remove_stale(ns_ctx *ctx, const char *ifname, const struct in_addr *gateway, unsigned prefixlen,
                           struct in_addr *ret_old);
