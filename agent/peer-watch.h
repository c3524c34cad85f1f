/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The other nodes' subnet leases: a snapshot of <network.prefix>/subnets/ at
 * revision R, then a watch from R+1 (with prev_kv), kept as a cache of
 * validated peers. Changes go to the daemon in batches: one callback per
 * watch response (what arrived together goes together), at once. A broken watch resumes after the last revision seen; a
 * canceled or compacted one lists again and rebuilds, so no removal is
 * missed. A bad record is warned about once per revision (naming its key)
 * and left out. */

#include <stddef.h>
#include <stdint.h>

#include "etcd-client.h"
#include "network-config.h"
#include "subnet-record.h"
#include "macro.h"

typedef struct PeerWatch PeerWatch;

typedef struct PeerWatchOptions {
        const char *prefix;          /* network.prefix */
        NetworkConfig config;
        uint32_t own_subnet;         /* 0: none yet */
        uint32_t own_ip;
        uint8_t own_mac[6];          /* our VTEP MAC; all zero: unknown */
        uint64_t settle_usec;        /* least time between two batches; 0 (the agent's): none, every
                                      * watch response is delivered on the next loop iteration */
} PeerWatchOptions;

/* What changed since the last delivery. */
typedef struct PeerWatchDelta {
        const SubnetRecord *upsert;  /* records added or changed */
        size_t n_upsert;
        const uint32_t *removed;     /* subnets (host order) no longer peers */
        size_t n_removed;
} PeerWatchDelta;

/* The complete set of valid peers, sorted by subnet, and what changed in it
 * since the last call: `delta` is NULL after a list (or a change of our own
 * lease), when the whole set was judged again; else the set is the last one
 * with `delta` applied. */
typedef void (*peer_watch_handler_t)(PeerWatch *w, const SubnetRecord *peers, size_t n_peers,
                                     const PeerWatchDelta *delta, void *userdata);

int peer_watch_new(EtcdClient *client, sd_event *event, const PeerWatchOptions *o, peer_watch_handler_t cb,
                   void *userdata, PeerWatch **ret);
PeerWatch *peer_watch_free(PeerWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(PeerWatch *, peer_watch_free);
int peer_watch_start(PeerWatch *w);
/* Our lease changed: validate the cache again against it. */
int peer_watch_set_own(PeerWatch *w, uint32_t subnet, uint32_t ip);
/* Drop the watch and list again (e.g. on SIGHUP). */
int peer_watch_relist(PeerWatch *w);

/* Counters for tests and status: lists done, batches delivered. */
unsigned peer_watch_get_lists(PeerWatch *w);
unsigned peer_watch_get_batches(PeerWatch *w);
