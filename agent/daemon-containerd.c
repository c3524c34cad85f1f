/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime step with [runtime] kind = containerd. Nothing is restarted:
 * containerd's CNI plugins read the network configuration (written with the
 * other network files, before this step) each time a pod is set up. What is
 * left is cni0, the bridge the plugin made for an earlier subnet, and the
 * unit itself: a node whose containerd is down cannot run a pod, so it waits
 * for it (reason unit:containerd.service) rather than going on to start
 * kubelet. The agent does not start containerd: it does not depend on our
 * options, so it is the operator's (or its package's) to enable. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni-conf.h"
#include "daemon-internal.h"
#include "log.h"
#include "macro.h"

/* When the subnet moved (while running, or between two runs) the bridge
 * still carries the old gateway and the route to the old subnet, which the
 * overlay now gives to a peer; the plugin adds the new address beside it
 * rather than replace it. Deleted, it is built again on the new gateway by
 * the next pod. With the same subnet it is left alone, and so are its pods. */
static int bridge_check(NodeAgent *d) {
        struct in_addr gw = { .s_addr = htonl(ntohl(d->subnet.addr.s_addr) + 1) }, old = {};
        char gws[INET_ADDRSTRLEN], olds[INET_ADDRSTRLEN], sub[32];
        int r;

        r = ns_bridge_remove_stale(d->ns, CNI_BRIDGE, &gw, d->subnet.prefixlen, &old);
        if (r <= 0)
                return r;
        log_notice("Deleted %s, which had the gateway %s of an earlier subnet: the bridge plugin builds it again on "
                   "%s/%u for the next container of subnet %s.", CNI_BRIDGE, inet_ntop(AF_INET, &old, olds, sizeof olds),
                   inet_ntop(AF_INET, &gw, gws, sizeof gws), d->subnet.prefixlen,
                   format_cidr(&d->subnet, sub, sizeof sub));
        return 0;
}

void daemon_containerd_step(NodeAgent *d) {
        const char *unit = d->cfg->runtime.unit;
        char reason[128];
        int r;

        snprintf(reason, sizeof reason, "unit:%s", unit);
        r = bridge_check(d);
        if (r < 0) {
                daemon_step_waiting(d, STEP_DOCKER, "network", "cannot check %s: %s", CNI_BRIDGE, strerror(-r));
                return;
        }
        if (!d->rt.unit_state) {
                /* daemon_on_docker_state() comes back here; the watch retries
                 * a systemd that does not answer. */
                d->rt.want_state = true;
                if (d->rt.state_error)
                        daemon_step_waiting(d, STEP_DOCKER, reason, "%s", d->rt.state_error);
                return;
        }
        if (!streq(d->rt.unit_state, "active")) {
                /* The next change of its state comes back here. */
                d->rt.want_state = true;
                daemon_step_waiting(d, STEP_DOCKER, reason, "%s is %s: containers cannot start until it runs", unit,
                                    d->rt.unit_state);
                return;
        }
        log_info("%s is active; it reads %s for each container.", unit, d->cfg->cni.conf_file);
        daemon_step_done(d, STEP_DOCKER);
}
