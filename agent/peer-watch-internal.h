/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Private to the peer watch: its cache of records (peer-watch.c) and the
 * peer set computed from it (peer-set.c). */

#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "peer-watch.h"

/* More changed MACs than this in one batch: compute the whole set again. */
#define DIRTY_MAX 64

typedef struct Entry {
        char *key;
        char *value;
        int64_t mod_revision;
        int64_t create_revision;
        int64_t conflict_warned;    /* mod_revision of the record last warned about as a conflict */
        int status;                 /* 0 peer, 1 our own, < 0 rejected */
        SubnetRecord rec;
} Entry;

struct PeerWatch {
        EtcdClient *client;
        sd_event *event;
        char *prefix;
        char *dir;                  /* "<prefix>/subnets/" */
        NetworkConfig config;
        uint32_t own_subnet, own_ip;
        uint8_t own_mac[6];
        uint64_t settle_usec;
        peer_watch_handler_t cb;
        void *userdata;

        Entry *entries;
        size_t n_entries, cap_entries;
        size_t *by_key;             /* indexes into entries, sorted by key: a record found by binary search */
        int64_t revision;           /* everything up to here is in the cache */

        EtcdRequest *list;
        EtcdRequest *watch;
        sd_event_source *settle;
        sd_event_source *retry;
        Backoff backoff;
        uint64_t watch_started;
        SubnetRecord *delivered;    /* sorted by subnet */
        size_t n_delivered, cap_delivered;
        bool delivered_once;
        /* What changed since the last delivery: the VTEP MACs whose records
         * came, went or changed, or everything (a list, our own lease). */
        bool dirty_all;
        uint8_t dirty[DIRTY_MAX][6];
        size_t n_dirty;
        uint64_t last_batch_usec;   /* when the callback last ran (CLOCK_MONOTONIC) */
        unsigned lists, batches;
};

/* peer-set.c: the set of usable peers from the cache, sorted by subnet. A
 * record with this MAC came, went or changed (only usable ones count). */
void peer_set_mark(PeerWatch *w, const Entry *e);
/* The changes since the last delivery made to w->delivered: the groups of
 * the marked MACs only, or the whole set after a list (dirty_all). 1 if it
 * changed (`d` set, NULL arrays after a full run; the caller frees them), 0 if
 * not, or a negative errno (the cache stays marked). */
int peer_set_settle(PeerWatch *w, bool full, PeerWatchDelta *d);
