/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "macro.h"
#include "netsetup.h"
#include "message-ids.h"
#include "peer-watch-internal.h"


static void list(PeerWatch *w);
static void watch_from(PeerWatch *w, int64_t revision);

static void entry_done(Entry *e) {
        free(e->key);
        free(e->value);
        *e = (Entry) {};
}

static void entries_free(Entry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                entry_done(&e[i]);
        free(e);
}

/* The position in `by_key` where `key` is or would go. */
static size_t key_pos(const PeerWatch *w, size_t n, const char *key) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(w->entries[w->by_key[mid]].key, key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static Entry *find(const PeerWatch *w, const char *key, size_t *ret_pos) {
        size_t p = key_pos(w, w->n_entries, key);

        if (ret_pos)
                *ret_pos = p;
        if (p < w->n_entries && streq(w->entries[w->by_key[p]].key, key))
                return &w->entries[w->by_key[p]];
        return NULL;
}

/* Drops the entry at `pos` of by_key; the last entry takes its place. */
static void remove_at(PeerWatch *w, size_t pos) {
        size_t i = w->by_key[pos], last = w->n_entries - 1;

        memmove(w->by_key + pos, w->by_key + pos + 1, (w->n_entries - pos - 1) * sizeof *w->by_key);
        entry_done(&w->entries[i]);
        if (i != last) {
                w->by_key[key_pos(w, w->n_entries - 1, w->entries[last].key)] = i;
                w->entries[i] = w->entries[last];
        }
        w->n_entries--;
}

static int cmp_key_index_ctx(const void *a, const void *b, void *userdata) {
        const Entry *e = userdata;
        return strcmp(e[*(const size_t *) a].key, e[*(const size_t *) b].key);
}

/* Validates e; warns unless this key at this revision was rejected before. */
static void validate(PeerWatch *w, Entry *e, const Entry *before) {
        _cleanup_free_ char *reason = NULL;
        char f[512];

        e->status = subnet_record_validate(w->prefix, e->key, e->value, &w->config, w->own_subnet, w->own_ip,
                                           &e->rec, &reason);
        if (e->status >= 0)
                return;
        if (before && before->status < 0 && before->mod_revision == e->mod_revision)
                return;
        snprintf(f, sizeof f, "COREKUBE_ETCD_KEY=%s", e->key);
        log_event(LOG_WARNING, MID_PEER_REJECTED, FIELDS(f), "Ignoring peer record %s (revision %" PRId64 "): %s",
                  e->key, e->mod_revision, reason ? reason : "invalid");
}


static int on_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        PeerWatch *w = userdata;
        PeerWatchDelta d = {};
        bool full = w->dirty_all || !w->delivered_once;
        int r;

        w->settle = sd_event_source_disable_unref(w->settle);
        r = peer_set_settle(w, full, &d);
        if (r < 0)
                return 0;       /* still marked: the next change tries again */
        w->dirty_all = false;
        w->n_dirty = 0;
        if (r == 0)
                return 0;
        w->delivered_once = true;
        w->last_batch_usec = usec;
        w->batches++;
        log_debug("Peer watch: %zu peers (%s)", w->n_delivered, d.upsert || d.removed ? "the changes" : "all");
        if (w->cb)
                w->cb(w, w->delivered, w->n_delivered, d.upsert || d.removed ? &d : NULL, w->userdata);
        free((void *) d.upsert);
        free((void *) d.removed);
        return 0;
}

/* A change is delivered on the next loop iteration, so that all events of
 * one watch response (and of those read in the same iteration) go together;
 * the daemon then programs just the peers that changed, so waiting longer
 * would gain nothing. With settle_usec > 0, changes within settle_usec of the
 * last delivery are collected and delivered at its end. */
static void changed(PeerWatch *w) {
        uint64_t now, at;

        if (w->settle)
                return;     /* the burst is already being collected */
        if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0) {
                log_error("Peer watch: cannot read the clock");
                return;
        }
        at = now;
        if (w->delivered_once && now < w->last_batch_usec + w->settle_usec)
                at = w->last_batch_usec + w->settle_usec;
        if (sd_event_add_time(w->event, &w->settle, CLOCK_MONOTONIC, at, 1, on_settle, w) < 0)
                log_error("Peer watch: cannot schedule the batch");
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        PeerWatch *w = userdata;

        w->retry = sd_event_source_disable_unref(w->retry);
        list(w);
        return 0;
}

static int on_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        PeerWatch *w = userdata;

        w->retry = sd_event_source_disable_unref(w->retry);
        watch_from(w, w->revision + 1);
        return 0;
}

static void retry_list(PeerWatch *w, int error, const char *message) {
        uint64_t now, d = backoff_next(&w->backoff);

        log_warning_errno(error, "Peer watch: %s; listing again in %.1fs", message ? message : "failed", d / 1e6);
        if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0 ||
            sd_event_add_time(w->event, &w->retry, CLOCK_MONOTONIC, now + d, USEC_PER_MSEC, on_retry, w) < 0)
                log_error("Peer watch: cannot schedule a retry");
}

/* ---- the watch ---- */

/* Room for one more entry, in both arrays. */
static int grow(PeerWatch *w) {
        size_t cap = w->cap_entries < 64 ? 64 : w->cap_entries * 2;
        Entry *e = realloc(w->entries, cap * sizeof *e);

        if (!e)
                return -ENOMEM;
        w->entries = e;
        size_t *k = realloc(w->by_key, cap * sizeof *k);
        if (!k)
                return -ENOMEM;
        w->by_key = k;
        w->cap_entries = cap;
        return 0;
}


static void apply_event(PeerWatch *w, const EtcdEvent *ev) {
        size_t pos;
        Entry *e = find(w, ev->kv.key, &pos);
        char *value;

        if (e)
                peer_set_mark(w, e);
        if (ev->type == ETCD_EVENT_DELETE) {
                if (e)
                        remove_at(w, pos);
                return;
        }

        value = strdup(ev->kv.value);
        if (!value) {
                log_error("Peer watch: out of memory");
                if (e)
                        remove_at(w, pos);
                return;
        }
        if (!e) {
                char *key = strdup(ev->kv.key);

                if (!key || (w->n_entries >= w->cap_entries && grow(w) < 0)) {
                        log_error("Peer watch: out of memory");
                        free(key);
                        free(value);
                        return;
                }
                memmove(w->by_key + pos + 1, w->by_key + pos, (w->n_entries - pos) * sizeof *w->by_key);
                w->by_key[pos] = w->n_entries;
                e = &w->entries[w->n_entries++];
                *e = (Entry) { .key = key };
        }
        free(e->value);
        e->value = value;
        e->mod_revision = ev->kv.mod_revision;
        e->create_revision = ev->kv.create_revision;
        validate(w, e, NULL);
        peer_set_mark(w, e);
}

static void on_watch(EtcdClient *c, int error, const char *message, const EtcdWatchResponse *r, void *userdata) {
        PeerWatch *w = userdata;

        if (error < 0) {
                /* Resume where we were; if that is compacted by now, etcd says so.
                 * After a pause, so that a stream that keeps breaking is no busy loop. */
                uint64_t now = 0, d;

                /* A watch that held for a while starts the pauses over. */
                (void) sd_event_now(w->event, CLOCK_MONOTONIC, &now);
                if (now > w->watch_started + w->backoff.max_usec)
                        backoff_reset(&w->backoff);
                d = backoff_next(&w->backoff);
                w->watch = NULL;
                log_debug("Peer watch: %s; resuming from revision %" PRId64 " in %.1fs",
                          message, w->revision + 1, d / 1e6);
                if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0 ||
                    sd_event_add_time(w->event, &w->retry, CLOCK_MONOTONIC, now + d, USEC_PER_MSEC, on_resume, w) < 0)
                        watch_from(w, w->revision + 1);
                return;
        }
        if (r->canceled) {
                w->watch = NULL;
                if (r->compact_revision > 0)
                        log_info("Peer watch: revision %" PRId64 " was compacted (now %" PRId64 "), listing again",
                                 w->revision + 1, r->compact_revision);
                else
                        log_info("Peer watch: canceled by etcd (%s), listing again",
                                 r->cancel_reason ? r->cancel_reason : "no reason given");
                list(w);
                return;
        }
        for (size_t i = 0; i < r->n_events; i++) {
                apply_event(w, &r->events[i]);
                if (r->events[i].kv.mod_revision > w->revision)
                        w->revision = r->events[i].kv.mod_revision;
        }
        if (r->n_events > 0)
                changed(w);
}

static void watch_from(PeerWatch *w, int64_t revision) {
        int r;

        (void) sd_event_now(w->event, CLOCK_MONOTONIC, &w->watch_started);
        r = etcd_watch(w->client, w->dir, true, revision, true, on_watch, w, &w->watch);
        if (r < 0)
                retry_list(w, r, "cannot start the watch");
}

/* ---- the snapshot ---- */

static void on_list(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        PeerWatch *w = userdata;
        Entry *entries;
        size_t *by_key, n = 0;

        w->list = NULL;
        if (error < 0) {
                retry_list(w, error, message);
                return;
        }

        entries = calloc(res->n_kvs + 1, sizeof *entries);
        by_key = calloc(res->n_kvs + 1, sizeof *by_key);
        if (!entries || !by_key) {
                free(entries);
                free(by_key);
                retry_list(w, -ENOMEM, "out of memory");
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                Entry *e = &entries[n];
                const Entry *before;

                e->key = strdup(res->kvs[i].key);
                e->value = strdup(res->kvs[i].value);
                e->mod_revision = res->kvs[i].mod_revision;
                e->create_revision = res->kvs[i].create_revision;
                if (!e->key || !e->value) {
                        entry_done(e);
                        continue;
                }
                before = find(w, e->key, NULL);
                if (before)
                        e->conflict_warned = before->conflict_warned;
                validate(w, e, before);
                n++;
        }
        entries_free(w->entries, w->n_entries);
        free(w->by_key);
        for (size_t i = 0; i < n; i++)
                by_key[i] = i;
        if (n > 1)
                qsort_r(by_key, n, sizeof *by_key, cmp_key_index_ctx, entries);
        w->entries = entries;
        w->by_key = by_key;
        w->n_entries = n;
        w->cap_entries = res->n_kvs + 1;
        w->revision = res->revision;
        w->lists++;
        w->dirty_all = true;
        log_debug("Peer watch: listed %zu records at revision %" PRId64, n, res->revision);

        changed(w);
        watch_from(w, res->revision + 1);
}

static void list(PeerWatch *w) {
        int r;

        etcd_request_cancel(w->watch);
        w->watch = NULL;
        etcd_request_cancel(w->list);
        w->list = NULL;
        w->retry = sd_event_source_disable_unref(w->retry);
        r = etcd_range(w->client, w->dir, true, 0, on_list, w, &w->list);
        if (r < 0)
                retry_list(w, r, "cannot list the subnet leases");
}

/* ---- public ---- */

int peer_watch_new(EtcdClient *client, sd_event *event, const PeerWatchOptions *o, peer_watch_handler_t cb,
                   void *userdata, PeerWatch **ret) {
        _cleanup_(peer_watch_freep) PeerWatch *w = NULL;

        if (!o->prefix)
                return -EINVAL;
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (PeerWatch) {
                .client = client,
                .event = sd_event_ref(event),
                .config = o->config,
                .own_subnet = o->own_subnet,
                .own_ip = o->own_ip,
                .settle_usec = o->settle_usec,
                .cb = cb,
                .userdata = userdata,
        };
        memcpy(w->own_mac, o->own_mac, 6);
        backoff_init(&w->backoff, 200 * USEC_PER_MSEC, 30 * USEC_PER_SEC);
        w->prefix = strdup(o->prefix);
        if (!w->prefix || asprintf(&w->dir, "%s/subnets/", o->prefix) < 0) {
                w->dir = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(w);
        return 0;
}

PeerWatch *peer_watch_free(PeerWatch *w) {
        if (!w)
                return NULL;
        etcd_request_cancel(w->list);
        etcd_request_cancel(w->watch);
        sd_event_source_disable_unref(w->settle);
        sd_event_source_disable_unref(w->retry);
        sd_event_unref(w->event);
        entries_free(w->entries, w->n_entries);
        free(w->by_key);
        free(w->delivered);
        free(w->prefix);
        free(w->dir);
        free(w);
        return NULL;
}

int peer_watch_start(PeerWatch *w) {
        list(w);
        return 0;
}

int peer_watch_relist(PeerWatch *w) {
        list(w);
        return 0;
}

int peer_watch_set_own(PeerWatch *w, uint32_t subnet, uint32_t ip) {
        if (w->own_subnet == subnet && w->own_ip == ip)
                return 0;
        w->own_subnet = subnet;
        w->own_ip = ip;
        for (size_t i = 0; i < w->n_entries; i++) {
                Entry before = w->entries[i];

                /* The same revision rejected again is not warned about twice. */
                validate(w, &w->entries[i], &before);
        }
        w->dirty_all = true;
        changed(w);
        return 0;
}

unsigned peer_watch_get_lists(PeerWatch *w) {
        return w->lists;
}

unsigned peer_watch_get_batches(PeerWatch *w) {
        return w->batches;
}
