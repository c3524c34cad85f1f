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
#include "message-ids.h"
#include "node-files.h"
#include "vtep-mac.h"

int daemon_link_setup(node_agent *d) {
        const ck_node_config *n = &d->cfg->node;
        char a[INET_ADDRSTRLEN];
        int r;

        if (!d->ns) {
                r = ns_new(&d->ns);
                if (r < 0) {
                        daemon_step_failed(d, "cannot open netlink: %s", strerror(-r));
                        return r;
                }
        }
        r = ns_link_setup(d->ns, n->interface, n->address.set ? &n->address.v.addr : NULL,
                          n->address.v.prefixlen, &d->link);
        if (r < 0) {
                daemon_step_failed(d, "interface %s: %s", n->interface,
                                   r == -ENODEV ? "no such interface" :
                                   r == -EADDRNOTAVAIL ? "has no IPv4 address (set [node] address)" : strerror(-r));
                return r;
        }
        log_info("Interface %s is up: %s/%u, MTU %u.", n->interface,
                 inet_ntop(AF_INET, &d->link.addr, a, sizeof a), d->link.prefixlen, d->link.mtu);
        return 0;
}

/* A failure of the network after its step (the lease lost and not yet back,
 * flannel.N or the files not set up again): the node is failed until the
 * network recovers, but the step under way goes on and is not retried for
 * it; the lease retries itself. */
static void network_failed(node_agent *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void network_failed(node_agent *d, const char *fmt, ...) {
        char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (d->step <= STEP_NETWORK) {
                daemon_step_failed(d, "%s", msg ?: "network failed");
                free(msg);
                return;
        }
        free(d->error);
        d->error = msg;
        d->net_failed = true;
        log_event(LOG_ERR, MID_NODE_FAILED, NULL, "%s; keeping what is programmed.", msg ?: "network failed");
        daemon_update_status(d);
}

static void network_recovered(node_agent *d) {
        if (!d->net_failed)
                return;
        free(d->error);
        d->error = NULL;
        d->net_failed = false;
        log_notice("The network of node %s is fine again.", d->cfg->node.name);
        daemon_update_status(d);
}

static void reconcile(node_agent *d) {
        _cleanup_free_ ns_peer *peers = calloc(d->n_peers + 1, sizeof(ns_peer));
        ns_reconcile_stats st = {};
        int r;

        if (!peers || !d->overlay_up)
                return;
        for (size_t i = 0; i < d->n_peers; i++) {
                peers[i].subnet.s_addr = htonl(d->peers[i].subnet);
                peers[i].subnet_len = d->peers[i].len;
                peers[i].public_ip.s_addr = htonl(d->peers[i].public_ip);
                memcpy(peers[i].mac, d->peers[i].vtep_mac, 6);
        }
        r = ns_overlay_reconcile(d->ns, peers, d->n_peers, &st);
        if (r < 0)
                log_error_errno(r, "Failed to program the peers on %s: %m", d->overlay.ifname);
        else if (st.requests > 0)
                log_info("Peers reconciled: %zu peers, %u added, %u replaced, %u removed.",
                         d->n_peers, st.added, st.replaced, st.removed);
        daemon_update_status(d);
}

static void on_peers(PeerWatch *w, const SubnetRecord *peers, size_t n, void *userdata) {
        node_agent *d = userdata;
        SubnetRecord *copy = calloc(n + 1, sizeof *copy);

        if (!copy)
                return;
        if (n > 0)
                memcpy(copy, peers, n * sizeof *copy);
        free(d->peers);
        d->peers = copy;
        d->n_peers = n;
        reconcile(d);
}

static int overlay_setup(node_agent *d) {
        char sub[32], mac[18], f1[64], f2[64];
        int r;

        d->overlay_cfg.subnet = d->subnet.addr;
        d->overlay_cfg.subnet_len = d->subnet.prefixlen;
        r = ns_overlay_setup(d->ns, &d->overlay_cfg, &d->overlay);
        if (r < 0) {
                d->overlay_up = false;
                network_failed(d, "cannot set up flannel.%u: %s", d->overlay_cfg.vni, strerror(-r));
                return r;
        }
        d->overlay_up = true;
        format_cidr(&d->subnet, sub, sizeof sub);
        ns_format_mac(d->overlay.mac, mac);
        snprintf(f1, sizeof f1, "COREKUBE_SUBNET=%s", sub);
        snprintf(f2, sizeof f2, "COREKUBE_VTEP_MAC=%s", mac);
        log_event(LOG_INFO, MID_OVERLAY_UP, FIELDS(f1, f2), "Overlay %s is up (%s, subnet %s, MTU %u, VTEP %s).",
                  d->overlay.ifname,
                  d->overlay.action == NS_OVERLAY_CREATED ? "created" :
                  d->overlay.action == NS_OVERLAY_ADOPTED ? "adopted" : "replaced",
                  sub, d->overlay.mtu, mac);
        reconcile(d);
        return 0;
}

static int write_files(node_agent *d) {
        node_net n = {
                .network = d->cfg->network.network,
                .subnet = d->subnet,
                .mtu = d->overlay.mtu,
                .ip_masq = d->cfg->network.ip_masq,
        };
        int r;

        n.network.addr.s_addr = htonl(d->netcfg.network);
        n.network.prefixlen = d->netcfg.prefixlen;
        r = node_write_network_files(d->cfg, &n);
        if (r < 0) {
                network_failed(d, "cannot write %s: %s", d->cfg->network.subnet_file, strerror(-r));
                return r;
        }
        if (r > 0) {
                char sub[32], f[64];

                d->files_changed = true;
                snprintf(f, sizeof f, "COREKUBE_SUBNET=%s", format_cidr(&d->subnet, sub, sizeof sub));
                log_event(LOG_INFO, MID_NETWORK_FILES, FIELDS(f), "Wrote %s and %s.", d->cfg->network.subnet_file,
                          d->cfg->network.docker_opts_file);
        }
        return 0;
}

static void lease_held(node_agent *d, bool moved);

static void on_lease(SubnetLease *l, int error, const char *message, const SubnetLeaseEvent *ev, void *userdata) {
        node_agent *d = userdata;
        char sub[32];

        if (error < 0) {
                network_failed(d, "subnet lease: %s", message ?: strerror(-error));
                return;
        }
        d->subnet.addr.s_addr = htonl(ev->subnet);
        d->subnet.prefixlen = ev->len;
        d->have_subnet = true;
        format_cidr(&d->subnet, sub, sizeof sub);
        (void) registry_set_subnet(d->registry, sub);
        if (d->peer_watch)
                (void) peer_watch_set_own(d->peer_watch, ev->subnet, ntohl(d->link.addr.s_addr));
        lease_held(d, ev->changed && ev->previous_subnet != 0);
}

/* What follows a held lease: the overlay, the files, the peers. Also run
 * again when the step is retried after one of these failed, since the lease
 * does not call back again until it changes. */
static void lease_held(node_agent *d, bool moved) {
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
                int r = peer_watch_new(&d->peer_watch, d->etcd, d->event, &o, on_peers, d);
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
        network_recovered(d);
        if (moved && d->step >= STEP_DOCKER) {
                /* A new subnet after the lease was lost: Docker must move,
                 * also when its restart is already under way. */
                daemon_subnet_moved(d);
                return;
        }
        if (d->step == STEP_NETWORK)
                daemon_step_done(d);
}

static void on_netcfg(int error, const char *message, const NetworkConfig *config, bool created, void *userdata) {
        node_agent *d = userdata;
        SubnetLeaseOptions o = {};
        uint32_t pref = 0;
        unsigned pref_len = 0;
        int r;

        d->netcfg_req = NULL;
        if (error < 0) {
                daemon_step_failed(d, "network config %s/config: %s", d->cfg->network.prefix,
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

        (void) subnet_lease_read_subnet_file(d->cfg->network.subnet_file, &pref, &pref_len);
        o = (SubnetLeaseOptions) {
                .prefix = d->cfg->network.prefix,
                .config = *config,
                .public_ip = ntohl(d->link.addr.s_addr),
                .preferred_subnet = pref,
                .preferred_len = pref_len,
        };
        memcpy(o.vtep_mac, d->overlay_cfg.mac, 6);
        r = subnet_lease_new(&d->lease, d->etcd, d->event, &o, on_lease, d);
        if (r >= 0)
                r = subnet_lease_start(d->lease);
        if (r < 0)
                daemon_step_failed(d, "cannot start the subnet lease: %s", strerror(-r));
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        node_agent *d = userdata;
        unsigned events = 0;

        if (ns_monitor_process(d->ns, &events) < 0 || !events || !d->have_subnet)
                return 0;
        if (events & (NS_EVENT_OVERLAY_GONE | NS_EVENT_OVERLAY_DOWN)) {
                log_warning("%s %s; setting it up again.", d->overlay.ifname,
                            events & NS_EVENT_OVERLAY_GONE ? "disappeared" : "went down");
                if (overlay_setup(d) >= 0)
                        network_recovered(d);
        }
        if (events & NS_EVENT_UNDERLAY_DOWN)
                log_warning("%s went down.", d->cfg->node.interface);
        return 0;
}

int daemon_network_start(node_agent *d) {
        char *err = NULL;
        NetworkConfig wanted;
        char net[32];
        int r;

        if (!d->ns_monitor) {
                r = sd_event_add_io(d->event, &d->ns_monitor, ns_monitor_fd(d->ns), EPOLLIN, on_netlink, d);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch netlink: %m");
        }
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
                daemon_step_failed(d, "[network]: %s", err ?: strerror(-r));
                free(err);
                return r;
        }
        return network_config_load(d->etcd, d->cfg->network.prefix, &wanted, on_netcfg, d, &d->netcfg_req);
}

void daemon_network_free(node_agent *d) {
        if (d->netcfg_req)
                etcd_request_cancel(d->netcfg_req);
        peer_watch_free(d->peer_watch);
        subnet_lease_free(d->lease);
        sd_event_source_disable_unref(d->ns_monitor);
        ns_free(d->ns);
        free(d->peers);
}
