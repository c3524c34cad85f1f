/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The overlay as a reconciler that lives as long as the agent. It owns what
 * flannel.<vni> should hold (our subnet, the last *complete* peer snapshot)
 * and keeps the kernel there: at once on every change of either, on netlink
 * notifications that show someone else changed the device or its entries,
 * every 5 min (±10 %) as a kernel-only dump-and-compare, and after a failure
 * with backoff.
 *
 * Kernel state found at start is adopted: until this process has been given
 * a complete snapshot, a reconcile adds and replaces entries but never
 * removes one, so a restart (or an etcd that does not answer) takes no
 * traffic away. Knows netlink (through netsetup) and nothing of etcd. */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "netsetup.h"
#include "macro.h"

typedef struct OverlaySync OverlaySync;

typedef enum OverlaySyncEvent {
        OVERLAY_SYNC_UP,        /* the device is set up (again); overlay_sync_info() tells how */
        OVERLAY_SYNC_FAILED,    /* setting it up or programming it failed; retried with backoff */
        OVERLAY_SYNC_PROGRAMMED,/* the peers are programmed as wanted (also after a failure) */
} OverlaySyncEvent;

typedef void (*overlay_sync_handler_t)(OverlaySync *s, OverlaySyncEvent ev, int error, const char *message,
                                       void *userdata);

int overlay_sync_new(sd_event *event, ns_ctx *ns, overlay_sync_handler_t handler, void *userdata,
                     OverlaySync **ret);
OverlaySync *overlay_sync_free(OverlaySync *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(OverlaySync *, overlay_sync_free);

/* The device as it should be (with our subnet). Sets it up at once and
 * reconciles; returns 0 when the device is up (-ENETDOWN if not). Failures
 * are reported through the handler and retried by the module. */
int overlay_sync_set_config(OverlaySync *s, const ns_overlay_config *cfg);

enum {
        /* Read from etcd as a whole by this process; from the first such set
         * on, entries no peer wants are removed. Without it (the snapshot
         * persisted before a reboot) the set is only added. */
        OVERLAY_PEERS_COMPLETE = 1 << 0,
        /* The set differs from the last one by what the watch reported:
         * send the requests for those peers alone, no dump. */
        OVERLAY_PEERS_DELTA = 1 << 1,
};

/* The peer set (copied), with OVERLAY_PEERS_* flags. */
int overlay_sync_set_peers(OverlaySync *s, const ns_peer *peers, size_t n, unsigned flags);

/* The last set given changed by `upsert` (added or changed) and `removed`
 * (subnets), as the peer watch reports a watch event: only those peers'
 * requests are sent, no dump, no rebuild of the desired set. While the last
 * set is not programmed (a failure being retried) the whole changed set is
 * reconciled instead, and so after drift netsetup noticed. -ESTALE (nothing
 * done) before a complete set was given: give the whole set. */
int overlay_sync_apply_delta(OverlaySync *s, const ns_peer *upsert, size_t n_upsert, const struct in_addr *removed,
                             size_t n_removed);

/* A full dump-and-compare now (SIGHUP). */
void overlay_sync_resync(OverlaySync *s);

const ns_overlay_info *overlay_sync_info(const OverlaySync *s);
/* The peer set last given. */
const ns_peer *overlay_sync_peers(const OverlaySync *s, size_t *ret_n);
