/* SPDX-License-Identifier: Apache-2.0 */
#include "overlay-sync.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backoff.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"

#define RESYNC_PERIOD_USEC (5 * 60 * USEC_PER_SEC)
/* Notifications come in bursts (one per entry): gather them, then compare once. */
#define REPAIR_DELAY_USEC (5 * USEC_PER_MSEC)

struct OverlaySync {
        sd_event *event;
        ns_ctx *ns;
        overlay_sync_handler_t handler;
        void *userdata;

        bool have_config;
        ns_overlay_config cfg;
        bool up;                        /* the device is set up as cfg says */
        bool announced;                 /* its milestone was logged once */
        ns_overlay_info info;

        ns_peer *peers;
        size_t n_peers, cap_peers;
        bool have_snapshot;             /* a complete peer set was given: removals allowed */
        bool programmed;                /* the last reconcile succeeded */
        bool failed;                    /* the last attempt failed: tell when it recovers */
        bool incremental;               /* the next run may compare with the last desired set, no dump */

        sd_event_source *monitor;
        sd_event_source *work;          /* retry / repair: one pending run */
        sd_event_source *resync;        /* the periodic one */
        Backoff backoff;
        enum { WORK_NONE, WORK_RETRY, WORK_REPAIR } work_kind;
};

static void emit(OverlaySync *s, OverlaySyncEvent ev, int error, const char *message) {
        if (s->handler)
                s->handler(s, ev, error, message, s->userdata);
}

static int on_work(sd_event_source *es, uint64_t usec, void *userdata);

/* One run at `at` at the latest: an earlier request moves it forward. */
static void schedule(OverlaySync *s, uint64_t delay, int kind) {
        uint64_t now = 0, at, cur = 0;

        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        at = now + delay;
        if (s->work && sd_event_source_get_time(s->work, &cur) >= 0 && cur <= at)
                return;
        s->work = sd_event_source_disable_unref(s->work);
        s->work_kind = kind;
        if (sd_event_add_time(s->event, &s->work, CLOCK_MONOTONIC, at, USEC_PER_MSEC, on_work, s) < 0)
                log_error("Overlay: cannot schedule a reconcile; the next resync repairs it.");
}

static void failed(OverlaySync *s, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void failed(OverlaySync *s, int r, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        uint64_t delay = backoff_next(&s->backoff);
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        s->failed = true;
        s->programmed = false;
        log_warning("%s; trying again in %.1fs.", msg ?: "Overlay failed", (double) delay / USEC_PER_SEC);
        /* A peer set the kernel refuses as a whole (-EINVAL) would be refused
         * again: it waits for the next change instead. */
        if (r != -EINVAL)
                schedule(s, delay, WORK_RETRY);
        emit(s, OVERLAY_SYNC_FAILED, r, msg);
}

static int setup(OverlaySync *s) {
        char sub[INET_ADDRSTRLEN], mac[18], f1[64], f2[64];
        int r;

        r = ns_overlay_setup(s->ns, &s->cfg, &s->info);
        if (r < 0) {
                s->up = false;
                failed(s, r, "Cannot set up flannel.%u: %s", s->cfg.vni, ns_error_detail(r) ?: strerror(-r));
                return r;
        }
        s->up = true;
        inet_ntop(AF_INET, &s->cfg.subnet, sub, sizeof sub);
        ns_format_mac(s->info.mac, mac);
        snprintf(f1, sizeof f1, "COREKUBE_SUBNET=%s/%u", sub, s->cfg.subnet_len);
        snprintf(f2, sizeof f2, "COREKUBE_VTEP_MAC=%s", mac);
        /* Every start says how it found the device; after that only changes. */
        if (s->info.action != NS_OVERLAY_ADOPTED || s->info.changes > 0 || !s->announced)
                log_event(LOG_INFO, MID_OVERLAY_UP, FIELDS(f1, f2),
                          "Overlay %s is up (%s, subnet %s/%u, MTU %u, VTEP %s).", s->info.ifname,
                          s->info.action == NS_OVERLAY_CREATED ? "created" :
                          s->info.action == NS_OVERLAY_ADOPTED ? "adopted" :
                          s->info.action == NS_OVERLAY_CHANGED ? "changed in place" : "replaced",
                          sub, s->cfg.subnet_len, s->info.mtu, mac);
        s->announced = true;
        emit(s, OVERLAY_SYNC_UP, 0, NULL);
        return 0;
}

static int reconcile(OverlaySync *s) {
        ns_reconcile_stats st = {};
        unsigned flags = s->have_snapshot ? 0 : NS_RECONCILE_NO_REMOVE;
        int r;

        if (s->incremental)
                flags |= NS_RECONCILE_INCREMENTAL;
        /* Anything but the run right after a delta (retries, repairs,
         * resyncs, the device set up again) compares with the kernel. */
        s->incremental = false;

        /* Before any peer set there is nothing to add, and nothing may go. */
        if (!s->have_snapshot && s->n_peers == 0)
                return 0;
        r = ns_overlay_reconcile_flags(s->ns, s->peers, s->n_peers, flags, &st);
        if (r < 0) {
                failed(s, r, "Cannot program the peers on %s (%u of %u changes refused): %s", s->info.ifname,
                       st.failed, st.requests, ns_error_detail(r) ?: strerror(-r));
                return r;
        }
        if (st.requests > 0 && (flags & NS_RECONCILE_INCREMENTAL) && st.dumps == 0)
                log_info("Peers changed: %zu peers, %u added, %u replaced, %u removed.", s->n_peers, st.added,
                          st.replaced, st.removed);
        else if (st.requests > 0)
                log_info("Peers reconciled: %zu peers, %u added, %u replaced, %u removed%s.", s->n_peers, st.added,
                         st.replaced, st.removed, s->have_snapshot ? "" : " (adopting: nothing removed yet)");
        return 0;
}

/* Device, then peers; on success the backoff starts over. */
static int sync_now(OverlaySync *s) {
        int r;

        if (!s->have_config)
                return 0;
        /* A run now makes a pending retry or repair moot. */
        s->work = sd_event_source_disable_unref(s->work);
        if (!s->up) {
                r = setup(s);
                if (r < 0)
                        return r;
        }
        r = reconcile(s);
        if (r < 0)
                return r;
        backoff_reset(&s->backoff);
        s->programmed = true;
        if (s->failed)
                log_notice("Overlay %s is programmed again.", s->info.ifname);
        s->failed = false;
        emit(s, OVERLAY_SYNC_PROGRAMMED, 0, NULL);
        return 0;
}

static int on_work(sd_event_source *es, uint64_t usec, void *userdata) {
        OverlaySync *s = userdata;

        s->work = sd_event_source_disable_unref(s->work);
        (void) sync_now(s);
        return 0;
}

static uint64_t jittered(uint64_t period) {
        uint64_t v = 0;

        /* ±10 %, so that nodes started together do not dump in step. */
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint64_t) random();
        return period - period / 10 + v % (period / 5 + 1);
}

static int on_resync(sd_event_source *es, uint64_t usec, void *userdata) {
        OverlaySync *s = userdata;

        log_debug("Overlay: periodic resync.");
        (void) sync_now(s);
        (void) sd_event_source_set_time(es, usec + jittered(RESYNC_PERIOD_USEC));
        (void) sd_event_source_set_enabled(es, SD_EVENT_ON);
        return 0;
}

static int on_netlink(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        OverlaySync *s = userdata;
        unsigned events = 0;
        int r;

        /* A failed read loses nothing for good: the next resync compares all. */
        r = ns_monitor_process(s->ns, &events);
        if (r < 0)
                log_warning("Cannot read netlink notifications: %s", ns_error_detail(r) ?: strerror(-r));
        if (r < 0 || !events || !s->have_config)
                return 0;
        if (events & (NS_EVENT_OVERLAY_GONE | NS_EVENT_OVERLAY_DOWN)) {
                log_warning("%s %s; setting it up again.", s->info.ifname,
                            events & NS_EVENT_OVERLAY_GONE ? "disappeared" : "went down");
                s->up = false;
                (void) sync_now(s);
        } else if (events & NS_EVENT_PEERS_DRIFT) {
                log_info("Entries on %s were changed by someone else; repairing.", s->info.ifname);
                if (!s->work || s->work_kind != WORK_RETRY)
                        schedule(s, REPAIR_DELAY_USEC, WORK_REPAIR);
        }
        if (events & NS_EVENT_UNDERLAY_DOWN)
                log_warning("The overlay's underlying interface went down.");
        return 0;
}

int overlay_sync_new(sd_event *event, ns_ctx *ns, overlay_sync_handler_t handler, void *userdata,
                     OverlaySync **ret) {
        _cleanup_(overlay_sync_freep) OverlaySync *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->ns = ns;
        s->handler = handler;
        s->userdata = userdata;
        backoff_init(&s->backoff, 100 * USEC_PER_MSEC, 30 * USEC_PER_SEC);
        r = sd_event_add_io(event, &s->monitor, ns_monitor_fd(ns), EPOLLIN, on_netlink, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

OverlaySync *overlay_sync_free(OverlaySync *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->monitor);
        sd_event_source_disable_unref(s->work);
        sd_event_source_disable_unref(s->resync);
        sd_event_unref(s->event);
        free(s->peers);
        free(s);
        return NULL;
}

int overlay_sync_set_config(OverlaySync *s, const ns_overlay_config *cfg) {
        int r;

        if (s->have_config && memcmp(&s->cfg, cfg, sizeof *cfg) == 0 && s->up && s->programmed)
                return 0;
        s->cfg = *cfg;
        s->have_config = true;
        s->up = false;          /* set up again: ns_overlay_setup() adopts what fits */
        if (!s->resync) {
                r = sd_event_add_time_relative(s->event, &s->resync, CLOCK_MONOTONIC, jittered(RESYNC_PERIOD_USEC),
                                               USEC_PER_SEC, on_resync, s);
                if (r < 0)
                        log_warning_errno(r, "Cannot arm the periodic overlay resync: %m");
        }
        /* Only the device decides: a peer the kernel refuses is retried
         * here and must not hold up the files and READY=1. */
        (void) sync_now(s);
        return s->up ? 0 : -ENETDOWN;
}

int overlay_sync_set_peers(OverlaySync *s, const ns_peer *peers, size_t n, unsigned flags) {
        bool complete = flags & OVERLAY_PEERS_COMPLETE;

        ns_peer *copy = calloc(n + 1, sizeof *copy);

        if (!copy)
                return log_error_errno(-ENOMEM, "Overlay: out of memory");
        if (n > 0)
                memcpy(copy, peers, n * sizeof *copy);
        free(s->peers);
        s->peers = copy;
        s->n_peers = n;
        s->cap_peers = n + 1;
        if (complete && !s->have_snapshot)
                log_info("Peer list read (%zu peers): entries no peer wants are removed from now on.", n);
        /* Only a set after a complete one can be a delta of what is programmed. */
        s->incremental = (flags & OVERLAY_PEERS_DELTA) && s->have_snapshot && s->programmed;
        s->have_snapshot = s->have_snapshot || complete;
        return sync_now(s);
}

/* Where `subnet` is or would go in s->peers (sorted by subnet while
 * have_snapshot: the watch's sets are, and deltas keep them so). */
static size_t peer_index(const OverlaySync *s, struct in_addr subnet) {
        uint32_t key = ntohl(subnet.s_addr);
        size_t lo = 0, hi = s->n_peers;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (ntohl(s->peers[mid].subnet.s_addr) < key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static int peers_apply(OverlaySync *s, const ns_peer *upsert, size_t n_upsert, const struct in_addr *removed,
                       size_t n_removed) {
        if (s->n_peers + n_upsert > s->cap_peers) {
                size_t cap = (s->n_peers + n_upsert) * 2;
                ns_peer *p = realloc(s->peers, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                s->peers = p;
                s->cap_peers = cap;
        }
        for (size_t i = 0; i < n_removed; i++) {
                size_t j = peer_index(s, removed[i]);
                if (j < s->n_peers && s->peers[j].subnet.s_addr == removed[i].s_addr) {
                        memmove(s->peers + j, s->peers + j + 1, (s->n_peers - j - 1) * sizeof *s->peers);
                        s->n_peers--;
                }
        }
        for (size_t i = 0; i < n_upsert; i++) {
                size_t j = peer_index(s, upsert[i].subnet);
                if (j >= s->n_peers || s->peers[j].subnet.s_addr != upsert[i].subnet.s_addr) {
                        memmove(s->peers + j + 1, s->peers + j, (s->n_peers - j) * sizeof *s->peers);
                        s->n_peers++;
                }
                s->peers[j] = upsert[i];
        }
        return 0;
}

int overlay_sync_apply_delta(OverlaySync *s, const ns_peer *upsert, size_t n_upsert, const struct in_addr *removed,
                             size_t n_removed) {
        ns_reconcile_stats st = {};
        int r;

        /* Only a set from a complete one on can take a delta. */
        if (!s->have_snapshot)
                return -ESTALE;
        r = peers_apply(s, upsert, n_upsert, removed, n_removed);
        if (r < 0)
                return log_error_errno(r, "Overlay: out of memory");
        s->incremental = false;
        /* Not programmed as it stands (a failure being retried, the device
         * being set up): the whole set the usual way. */
        if (!s->have_config || !s->up || !s->programmed || s->failed)
                return sync_now(s);

        r = ns_overlay_apply_delta(s->ns, upsert, n_upsert, removed, n_removed, &st);
        if (r == -ESTALE)
                /* Drift since the last reconcile: compare with the kernel. */
                return sync_now(s);
        if (r < 0) {
                failed(s, r, "Cannot program the peers on %s (%u of %u changes refused): %s", s->info.ifname,
                       st.failed, st.requests, ns_error_detail(r) ?: strerror(-r));
                return r;
        }
        if (st.requests > 0)
                log_info("Peers changed: %zu peers, %u added, %u replaced, %u removed.", s->n_peers, st.added,
                         st.replaced, st.removed);
        backoff_reset(&s->backoff);
        emit(s, OVERLAY_SYNC_PROGRAMMED, 0, NULL);
        return 0;
}

void overlay_sync_resync(OverlaySync *s) {
        (void) sync_now(s);
}


const ns_overlay_info *overlay_sync_info(const OverlaySync *s) {
        return &s->info;
}


const ns_peer *overlay_sync_peers(const OverlaySync *s, size_t *ret_n) {
        *ret_n = s->n_peers;
        return s->peers;
}



