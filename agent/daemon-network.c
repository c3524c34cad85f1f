/* SPDX-License-Identifier: Apache-2.0 */
/* The network part of the bring-up: private interface, flannel's network
 * config, our subnet lease, flannel.<vni>, the peers, and the env files. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon-internal.h"
#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "masq.h"
#include "message-ids.h"
#include "node-files.h"
#include "node-state.h"
#include "vtep-mac.h"

static void network_restore(NodeAgent *d);

int daemon_link_setup(NodeAgent *d) {
        const NodeSection *n = &d->cfg->node;
        char a[INET_ADDRSTRLEN];
        int r;

        if (!d->ns) {
                r = ns_new(&d->ns);
                if (r < 0) {
                        daemon_step_failed(d, STEP_LINK, "cannot open netlink: %s", ns_error_detail(r) ?: strerror(-r));
                        return r;
                }
        }
        r = ns_link_setup(d->ns, n->interface, n->address.set ? &n->address.v.addr : NULL,
                          n->address.v.prefixlen, &d->link);
        if (r < 0) {
                daemon_step_failed(d, STEP_LINK, "interface %s: %s", n->interface,
                                   r == -ENODEV ? "no such interface" :
                                   r == -EADDRNOTAVAIL ? "has no IPv4 address (set [node] address)" :
                                   ns_error_detail(r) ?: strerror(-r));
                return r;
        }
        log_info("Interface %s is up: %s/%u, MTU %u.", n->interface,
                 inet_ntop(AF_INET, &d->link.addr, a, sizeof a), d->link.prefixlen, d->link.mtu);
        network_restore(d);
        return 0;
}

/* A failure of the network after its step (the lease lost and not yet back,
 * flannel.N, the files or the masquerading table not set up again): the node
 * waits until the network recovers (reason "network", or "masq" for the
 * table), but the step under way goes on and is not retried for it; the
 * lease, the overlay and the table retry themselves. */
static void network_problem(NodeAgent *d, const char *reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void network_problem(NodeAgent *d, const char *reason, const char *fmt, ...) {
        char *msg = NULL, f[64];
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!d->run[STEP_NETWORK].done) {
                if (reason)
                        daemon_step_waiting(d, STEP_NETWORK, reason, "%s", msg ?: "network failed");
                else
                        daemon_step_failed(d, STEP_NETWORK, "%s", msg ?: "network failed");
                free(msg);
                return;
        }
        free(d->net_error);
        d->net_error = msg ?: strdup("network failed");
        d->net_reason = reason;
        /* Transient: the node waits (reason network or masq) and the lease,
         * the overlay or the table retries itself. */
        snprintf(f, sizeof f, "COREKUBE_REASON=%s", reason ?: "network");
        log_event(LOG_NOTICE, MID_NODE_WAITING, FIELDS(f), "%s; keeping what is programmed.",
                  msg ?: "network failed");
        daemon_update_status(d);
}

#define network_failed(d, ...) network_problem(d, NULL, __VA_ARGS__)

static void network_recovered(NodeAgent *d) {
        /* The table's own retry says when it is back. */
        if (!d->net_error || d->masq_retry)
                return;
        free(d->net_error);
        d->net_error = NULL;
        d->net_reason = NULL;
        log_notice("The network of node %s is fine again.", d->cfg->node.name);
        daemon_update_status(d);
}

static void on_overlay(OverlaySync *o, OverlaySyncEvent ev, int error, const char *message, void *userdata) {
        NodeAgent *d = userdata;

        switch (ev) {
        case OVERLAY_SYNC_FAILED:
                /* What is programmed stays; the module retries by itself.
                 * Before the lease (restoring at boot) it is no step's. */
                if (d->have_subnet)
                        network_failed(d, "%s", message ?: "the overlay failed");
                break;
        case OVERLAY_SYNC_PROGRAMMED:
                if (d->have_subnet && d->notified_ready)
                        network_recovered(d);
                daemon_update_status(d);
                break;
        default:
                break;
        }
}

#define SNAPSHOT_DELAY_USEC (1 * USEC_PER_SEC)

static void snapshot_write(NodeAgent *d) {
        NodeSnapshot snap = {
                .network.s_addr = htonl(d->netcfg.network),
                .network_len = d->netcfg.prefixlen,
                .vni = d->netcfg.vni,
                .port = d->netcfg.port,
                .subnet = d->subnet.addr,
                .subnet_len = d->subnet.prefixlen,
                .public_ip = d->link.addr,
        };

        if (!d->overlay || !d->have_subnet)
                return;
        snap.peers = (ns_peer *) overlay_sync_peers(d->overlay, &snap.n_peers);
        (void) node_snapshot_write(&snap);
}

static int on_snapshot_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        NodeAgent *d = userdata;

        d->snapshot_timer = sd_event_source_disable_unref(d->snapshot_timer);
        snapshot_write(d);
        return 0;
}

static void to_ns_peer(const SubnetRecord *r, ns_peer *p) {
        *p = (ns_peer) {
                .subnet.s_addr = htonl(r->subnet),
                .subnet_len = r->len,
                .public_ip.s_addr = htonl(r->public_ip),
        };
        memcpy(p->mac, r->vtep_mac, 6);
}

/* Watch events: only the peers that changed go to the overlay. 0, or
 * -ESTALE/-ENOMEM when the whole set must go instead. */
static int peers_delta(NodeAgent *d, const PeerWatchDelta *delta) {
        _cleanup_free_ ns_peer *up = calloc(delta->n_upsert + 1, sizeof *up);
        _cleanup_free_ struct in_addr *rm = calloc(delta->n_removed + 1, sizeof *rm);
        int r;

        if (!up || !rm)
                return -ENOMEM;
        for (size_t i = 0; i < delta->n_upsert; i++)
                to_ns_peer(&delta->upsert[i], &up[i]);
        for (size_t i = 0; i < delta->n_removed; i++)
                rm[i].s_addr = htonl(delta->removed[i]);
        r = overlay_sync_apply_delta(d->overlay, up, delta->n_upsert, rm, delta->n_removed);
        return r == -ESTALE || r == -ENOMEM ? r : 0;
}

static void on_peers(PeerWatch *w, const SubnetRecord *peers, size_t n, const PeerWatchDelta *delta,
                     void *userdata) {
        NodeAgent *d = userdata;
        _cleanup_free_ ns_peer *p = NULL;
        /* Every set the watch delivers is complete (a list, then the
         * events after it): the overlay may remove what is not in it. */
        unsigned lists = peer_watch_get_lists(w);

        d->n_peers = n;
        if (!delta || lists != d->peer_lists || peers_delta(d, delta) < 0) {
                p = calloc(n + 1, sizeof(ns_peer));
                if (!p) {
                        log_error("Out of memory for %zu peers; the next change or resync programs them.", n);
                        return;
                }
                for (size_t i = 0; i < n; i++)
                        to_ns_peer(&peers[i], &p[i]);
                /* After a list, compare with the kernel; after our own
                 * lease changed, with the last desired set. */
                (void) overlay_sync_set_peers(d->overlay, p, n,
                                              OVERLAY_PEERS_COMPLETE |
                                              (lists == d->peer_lists ? OVERLAY_PEERS_DELTA : 0));
        }
        d->peer_lists = lists;
        daemon_update_status(d);

        /* Kept for the next boot (to carry traffic before etcd answers);
         * at most once a second, since each write is an fsync. */
        if (d->have_subnet && !d->snapshot_timer)
                (void) sd_event_add_time_relative(d->event, &d->snapshot_timer, CLOCK_MONOTONIC, SNAPSHOT_DELAY_USEC,
                                                  100 * USEC_PER_MSEC, on_snapshot_timer, d);
}

static int overlay_new(NodeAgent *d) {
        if (d->overlay)
                return 0;
        return overlay_sync_new(d->event, d->ns, on_overlay, d, &d->overlay);
}

/* At start, before etcd is asked anything: flannel.1 as it was before the
 * reboot (or the restart), from the persisted snapshot. Only added: what
 * the kernel holds stays until a complete peer list from etcd says. */
static void network_restore(NodeAgent *d) {
        _cleanup_free_ char *path = node_state_path("peers.json");
        NodeSnapshot snap = {};
        ns_overlay_config cfg;
        char sub[32];
        int r;

        if (d->restore_tried)
                return;
        d->restore_tried = true;
        r = node_snapshot_read(&snap);
        if (r < 0) {
                if (r != -ENOENT && r != -EINVAL)
                        log_warning_errno(r, "Cannot read the persisted peer snapshot: %m");
                return;
        }
        if (snap.public_ip.s_addr != d->link.addr.s_addr) {
                log_info("Not restoring the overlay from %s: it was made for another address.", path ?: "peers.json");
                goto done;
        }
        cfg = (ns_overlay_config) {
                .vni = snap.vni,
                .port = snap.port,
                .mtu = d->cfg->network.mtu,
                .network = snap.network,
                .network_len = snap.network_len,
                .subnet = snap.subnet,
                .subnet_len = snap.subnet_len,
                .underlay_ifindex = d->link.ifindex,
                .local = d->link.addr,
        };
        vtep_mac_from_machine_id(d->machine_id, snap.vni, cfg.mac);
        r = overlay_new(d);
        if (r >= 0)
                r = overlay_sync_set_config(d->overlay, &cfg);
        if (r >= 0)
                r = overlay_sync_set_peers(d->overlay, snap.peers, snap.n_peers, 0);
        if (r < 0) {
                log_warning_errno(r, "Cannot restore the overlay from %s (%m); waiting for etcd.", path ?: "peers.json");
                goto done;
        }
        Cidr c = { .addr = snap.subnet, .prefixlen = snap.subnet_len };
        log_notice("Restored flannel.%u from %s: subnet %s, %zu peers (until etcd has been read, nothing is removed).",
                   snap.vni, path ?: "peers.json", format_cidr(&c, sub, sizeof sub), snap.n_peers);
done:
        node_snapshot_done(&snap);
}

static int overlay_setup(NodeAgent *d) {
        int r;

        r = overlay_new(d);
        if (r < 0) {
                network_failed(d, "cannot watch netlink: %s", strerror(-r));
                return r;
        }
        d->overlay_cfg.subnet = d->subnet.addr;
        d->overlay_cfg.subnet_len = d->subnet.prefixlen;
        /* Failures were reported through on_overlay() and are retried. */
        return overlay_sync_set_config(d->overlay, &d->overlay_cfg);
}

static int write_files(NodeAgent *d) {
        NodeNet n = {
                .network = d->cfg->network.network,
                .subnet = d->subnet,
                .mtu = overlay_sync_info(d->overlay)->mtu,
                .ip_masq = d->cfg->network.ip_masq,
        };
        const char *runtime_file = d->cfg->runtime.kind == RUNTIME_CONTAINERD ? d->cfg->cni.conf_file :
                                   d->cfg->network.docker_opts_file;
        int r;

        n.network.addr.s_addr = htonl(d->netcfg.network);
        n.network.prefixlen = d->netcfg.prefixlen;
        r = node_write_network_files(d->cfg, &n);
        if (r < 0) {
                network_failed(d, "cannot write %s or %s: %s", d->cfg->network.subnet_file, runtime_file,
                               strerror(-r));
                return r;
        }
        if (r > 0) {
                char sub[32], f[64];

                d->files_changed = true;
                snprintf(f, sizeof f, "COREKUBE_SUBNET=%s", format_cidr(&d->subnet, sub, sizeof sub));
                log_event(LOG_INFO, MID_NETWORK_FILES, FIELDS(f), "Wrote %s and %s.", d->cfg->network.subnet_file,
                          runtime_file);
        }
        return 0;
}

/* ---- [network] ip-masq ---- */

static bool cidr_eq(const Cidr *a, const Cidr *b) {
        return a->addr.s_addr == b->addr.s_addr && a->prefixlen == b->prefixlen;
}

static int on_masq_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* The table as [network] ip-masq wants it: with yes, installed or replaced
 * (atomically) for the overlay and our subnet; with no, one found is removed
 * (the node was switched from yes), else nothing is touched. A failure is a
 * wait (reason masq), retried with backoff: by the step's retry at the
 * network step, by its own timer after it. A stopping agent leaves the table. */
static int masq_sync(NodeAgent *d) {
        _cleanup_free_ char *err = NULL;
        Cidr net = { .addr.s_addr = htonl(d->netcfg.network), .prefixlen = d->netcfg.prefixlen };
        char n[32], sub[32], f[64];
        uint64_t delay;
        int r;

        if (d->masq_synced && (!d->cfg->network.ip_masq ||
                               (cidr_eq(&net, &d->masq_net) && cidr_eq(&d->subnet, &d->masq_subnet))))
                return 0;
        format_cidr(&net, n, sizeof n);
        format_cidr(&d->subnet, sub, sizeof sub);
        if (d->cfg->network.ip_masq) {
                r = masq_apply(&net, &d->subnet, &err);
                if (r >= 0) {
                        snprintf(f, sizeof f, "COREKUBE_SUBNET=%s", sub);
                        log_event(LOG_INFO, MID_MASQ_INSTALLED, FIELDS(f),
                                  "%s the nftables table ip %s: traffic from %s to outside it leaves with this "
                                  "node's address (subnet %s).", r > 0 ? "Installed" : "Replaced", MASQ_TABLE, n, sub);
                }
        } else {
                r = masq_remove(&err);
                if (r > 0)
                        log_notice("Removed the nftables table ip %s: [network] ip-masq is off.", MASQ_TABLE);
        }
        if (r >= 0) {
                d->masq_synced = true;
                d->masq_net = net;
                d->masq_subnet = d->subnet;
                backoff_reset(&d->masq_backoff);
                d->masq_retry = sd_event_source_disable_unref(d->masq_retry);
                return 0;
        }

        d->masq_synced = false;
        network_problem(d, "masq", "cannot %s the nftables table ip %s: %s",
                        d->cfg->network.ip_masq ? "install" : "remove", MASQ_TABLE, err ?: strerror(-r));
        if (d->run[STEP_NETWORK].done && !d->masq_retry) {
                delay = backoff_next(&d->masq_backoff);
                (void) sd_event_add_time_relative(d->event, &d->masq_retry, CLOCK_MONOTONIC, delay, USEC_PER_MSEC,
                                                  on_masq_retry, d);
        }
        return r;
}

static int on_masq_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        NodeAgent *d = userdata;

        d->masq_retry = sd_event_source_disable_unref(d->masq_retry);
        if (masq_sync(d) >= 0)
                network_recovered(d);
        return 0;
}

static void lease_held(NodeAgent *d, bool moved);

static void on_lease(SubnetLease *l, int error, const char *message, const SubnetLeaseEvent *ev, void *userdata) {
        NodeAgent *d = userdata;
        char sub[32];

        if (error < 0) {
                network_failed(d, "subnet lease: %s", message ?: strerror(-error));
                return;
        }
        d->subnet.addr.s_addr = htonl(ev->subnet);
        d->subnet.prefixlen = ev->len;
        d->have_subnet = true;
        format_cidr(&d->subnet, sub, sizeof sub);
        if (d->registry)        /* else register_start() gives it */
                (void) registry_set_subnet(d->registry, sub);
        if (d->peer_watch)
                (void) peer_watch_set_own(d->peer_watch, ev->subnet, ntohl(d->link.addr.s_addr));
        lease_held(d, ev->changed && ev->previous_subnet != 0);
}

/* What follows a held lease: the overlay, the files, the peers. Also run
 * again when the step is retried after one of these failed, since the lease
 * does not call back again until it changes. */
static void lease_held(NodeAgent *d, bool moved) {
        if (overlay_setup(d) < 0 || write_files(d) < 0)
                return;

        if (!d->peer_watch) {
                PeerWatchOptions o = {
                        .prefix = d->cfg->network.prefix,
                        .config = d->netcfg,
                        .own_subnet = ntohl(d->subnet.addr.s_addr),
                        .own_ip = ntohl(d->link.addr.s_addr),
                };
                memcpy(o.own_mac, d->overlay_cfg.mac, 6);
                int r = peer_watch_new(d->etcd, d->event, &o, on_peers, d, &d->peer_watch);
                if (r >= 0)
                        r = peer_watch_start(d->peer_watch);
                if (r < 0) {
                        network_failed(d, "cannot watch the peers: %s", strerror(-r));
                        return;
                }
        }

        /* The node's network is usable: whoever is ordered after us may
         * start now. Everything that follows waits on other units, which
         * must never wait on us in turn. */
        if (!d->notified_ready) {
                (void) sd_notify(false, "READY=1");
                d->notified_ready = true;
        }
        /* A table that cannot be replaced does not hold Docker back from
         * a new subnet: the old one still masquerades the pods' traffic
         * (its rules name the overlay; only the host-to-own-pods exception
         * names the old subnet). */
        int r = masq_sync(d);
        if (r >= 0)
                network_recovered(d);
        if (moved && d->run[STEP_DOCKER].started) {
                /* A new subnet after the lease was lost: Docker must move,
                 * also when its restart is already under way. */
                daemon_subnet_moved(d);
                return;
        }
        if (r >= 0 && daemon_step_running(d, STEP_NETWORK))
                daemon_step_done(d, STEP_NETWORK);
}

static void on_netcfg(int error, const char *message, const NetworkConfig *config, bool created, void *userdata) {
        NodeAgent *d = userdata;
        SubnetLeaseOptions o = {};
        uint32_t pref = 0;
        unsigned pref_len = 0;
        int r;

        d->netcfg_req = NULL;
        if (error == -EINVAL) {
                /* A config in etcd that is not ours to use: an operator's call. */
                daemon_step_failed_terminal(d, STEP_NETWORK, "network config %s/config: %s", d->cfg->network.prefix,
                                            message ?: strerror(-error));
                return;
        }
        if (error < 0) {
                daemon_step_failed(d, STEP_NETWORK, "network config %s/config: %s", d->cfg->network.prefix,
                                   message ?: strerror(-error));
                return;
        }
        /* network-config.c logs MID_NETWORK_CONFIG_CREATED when it made it. */
        d->netcfg = *config;

        d->overlay_cfg = (ns_overlay_config) {
                .vni = config->vni,
                .port = config->port,
                .mtu = d->cfg->network.mtu,
                .network.s_addr = htonl(config->network),
                .network_len = config->prefixlen,
                .underlay_ifindex = d->link.ifindex,
                .local = d->link.addr,
        };
        vtep_mac_from_machine_id(d->machine_id, config->vni, d->overlay_cfg.mac);

        /* After a reboot /run is empty: the persisted copy names the subnet. */
        if (subnet_lease_read_subnet_file(d->cfg->network.subnet_file, &pref, &pref_len) < 0) {
                _cleanup_free_ char *kept = node_state_path("subnet.env");

                if (kept)
                        (void) subnet_lease_read_subnet_file(kept, &pref, &pref_len);
        }
        o = (SubnetLeaseOptions) {
                .prefix = d->cfg->network.prefix,
                .config = *config,
                .public_ip = ntohl(d->link.addr.s_addr),
                .preferred_subnet = pref,
                .preferred_len = pref_len,
        };
        memcpy(o.vtep_mac, d->overlay_cfg.mac, 6);
        r = subnet_lease_new(d->etcd, d->event, &o, on_lease, d, &d->lease);
        if (r >= 0)
                r = subnet_lease_start(d->lease);
        if (r < 0)
                daemon_step_failed(d, STEP_NETWORK, "cannot start the subnet lease: %s", strerror(-r));
}

int daemon_network_start(NodeAgent *d) {
        char *err = NULL;
        NetworkConfig wanted;
        char net[32];
        int r;

        if (d->netcfg_req)
                return 0;       /* under way: it calls back */
        if (d->lease) {
                /* Under way: the lease calls back. Once held, a retry redoes
                 * what failed after it (e.g. a file that could not be written). */
                if (d->have_subnet)
                        lease_held(d, false);
                return 0;
        }
        r = network_config_new(format_cidr(&d->cfg->network.network, net, sizeof net), d->cfg->network.subnet_len,
                               d->cfg->network.vni, (uint16_t) d->cfg->network.port, &wanted, &err);
        if (r < 0) {
                daemon_step_failed(d, STEP_NETWORK, "[network]: %s", err ?: strerror(-r));
                free(err);
                return r;
        }
        return network_config_load(d->etcd, d->cfg->network.prefix, &wanted, on_netcfg, d, &d->netcfg_req);
}

void daemon_network_free(NodeAgent *d) {
        if (d->netcfg_req)
                etcd_request_cancel(d->netcfg_req);
        peer_watch_free(d->peer_watch);
        subnet_lease_free(d->lease);
        /* A change not yet saved is saved now: the next boot starts from it. */
        if (d->snapshot_timer)
                snapshot_write(d);
        d->snapshot_timer = sd_event_source_disable_unref(d->snapshot_timer);
        /* The table stays: a stopping agent never takes traffic away. */
        d->masq_retry = sd_event_source_disable_unref(d->masq_retry);
        overlay_sync_free(d->overlay);
        ns_free(d->ns);
}

void daemon_network_reload(NodeAgent *d) {
        log_notice("Reloading: listing the peers in etcd again and comparing flannel.%u with them.",
                   d->overlay_cfg.vni);
        if (d->peer_watch)
                (void) peer_watch_relist(d->peer_watch);
        if (d->overlay)
                overlay_sync_resync(d->overlay);
        /* The table again, in case someone flushed the ruleset. Before the
         * network step is done (or while it is failing) its retry does it. */
        d->masq_synced = false;
        if (d->have_subnet && d->run[STEP_NETWORK].done && !d->masq_retry && masq_sync(d) >= 0)
                network_recovered(d);
}
