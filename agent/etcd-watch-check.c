/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-client-internal.h"
#include "log.h"
#include "macro.h"

/* The liveness check of an established watch. A watch is one long HTTP
 * response; when the path stops carrying it (a proxy that stops forwarding,
 * a half-dead TCP connection) nothing fails, and only TCP keepalive would
 * notice, much later. So every interval (± 10 %) a cheap probe over another
 * request asks etcd for the newest mod_revision and the number of keys in
 * the watch's range (keys_only, limit 1, sorted by mod_revision, newest
 * first), and holds that against what the watch delivered:
 *  - a key newer than the revision the watch is known to be at (its start,
 *    its events, progress responses) is a put it has not delivered;
 *  - a count other than the previous probe's plus the keys the watch saw
 *    created and deleted since is a change it has not delivered (a delete
 *    leaves no mod_revision behind in the range). Before its first probe a
 *    watch's count is taken at the revision it started from, so that a
 *    delete between that and the first probe (a watch resumed from before
 *    it) is not taken for the way things were.
 * Either may merely be in flight, so after a grace the watch is held against
 * the same probe once more. Not against a new one: that would see newer
 * writes, and on a busy range something is always in flight. If the watch
 * still has not got there, its stream is ended like a broken one and its
 * owner resumes from its last revision. A probe that fails proves nothing
 * (etcd may be away, and the stream's own error path covers that): the next
 * one comes an interval later, never sooner. */

#define DELTAS_MAX 1024U

typedef struct Delta {
        int64_t revision;
        int64_t keys;               /* keys created minus keys deleted at this revision */
} Delta;

struct WatchCheck {
        EtcdRequest *watch;
        sd_event_source *timer;     /* the next probe, or the end of a grace */
        EtcdRequest *probe;
        int64_t known;              /* the watch has delivered everything up to here */

        bool have_base;
        bool base_tried;            /* the count at the start was asked for */
        int64_t base_asked;
        int64_t base_revision;      /* etcd counted base_count keys in the range here */
        int64_t base_count;
        int64_t floor;              /* deltas are complete above this revision */
        Delta *deltas;              /* what the watch delivered after base_revision */
        size_t n_deltas;

        bool grace;                 /* the last probe found the watch behind */
        int64_t probe_revision, probe_count, probe_newest;
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void arm(WatchCheck *k, bool grace) {
        EtcdClient *c = k->watch->client;
        uint64_t now, d, accuracy;

        k->timer = sd_event_source_disable_unref(k->timer);
        k->grace = grace;
        if (grace)
                d = c->watch_check_grace_usec;
        else {
                /* Jitter, so that many nodes do not probe in step. */
                uint64_t spread = c->watch_check_usec / 5;

                d = c->watch_check_usec - spread / 2 + (spread > 0 ? random_u64() % (spread + 1) : 0);
        }
        accuracy = d / 20 ?: 1;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0 ||
            sd_event_add_time(c->event, &k->timer, CLOCK_MONOTONIC, now + d, accuracy, on_timer, k) < 0)
                log_error("etcd watch on %s: cannot schedule its liveness check", k->watch->watch_key);
}

static void add_delta(WatchCheck *k, int64_t revision, int64_t keys) {
        Delta *d;

        if (revision <= k->floor || (k->have_base && revision <= k->base_revision))
                return;
        if (k->n_deltas > 0 && k->deltas[k->n_deltas - 1].revision == revision) {
                k->deltas[k->n_deltas - 1].keys += keys;
                return;
        }
        d = k->n_deltas < DELTAS_MAX ? realloc(k->deltas, (k->n_deltas + 1) * sizeof *d) : NULL;
        if (!d) {
                /* Too much to keep (or no memory): count only from here on. */
                free(k->deltas);
                k->deltas = NULL;
                k->n_deltas = 0;
                k->have_base = false;
                k->base_tried = false;  /* ask for the count at the new floor */
                k->floor = revision;
                return;
        }
        k->deltas = d;
        d[k->n_deltas++] = (Delta) { .revision = revision, .keys = keys };
}

/* The revision the watch has not delivered although the last probe saw it;
 * 0 if it has delivered all the probe saw. */
static int64_t undelivered(const WatchCheck *k) {
        int64_t expect;

        if (k->probe_newest > k->known)
                return k->probe_newest;
        if (!k->have_base || k->probe_revision < k->base_revision)
                return 0;
        expect = k->base_count;
        for (size_t i = 0; i < k->n_deltas; i++)
                if (k->deltas[i].revision <= k->probe_revision)
                        expect += k->deltas[i].keys;
        return expect == k->probe_count ? 0 : k->probe_revision;
}

/* The probe's count is etcd's: the base for the next count check. */
static void rebase(WatchCheck *k) {
        size_t j = 0;

        if (k->probe_revision < k->floor)
                return;     /* deltas up to the floor were dropped: wait for a later probe */
        for (size_t i = 0; i < k->n_deltas; i++)
                if (k->deltas[i].revision > k->probe_revision)
                        k->deltas[j++] = k->deltas[i];
        k->n_deltas = j;
        k->have_base = true;
        k->base_revision = k->probe_revision;
        k->base_count = k->probe_count;
}

static void on_probe_done(EtcdRequest *p, int error, const char *message, const EtcdResult *res) {
        EtcdRequest *r = p->owner;
        WatchCheck *k;
        int64_t behind;

        if (!r || !r->liveness)
                return;
        k = r->liveness;
        k->probe = NULL;
        p->owner = NULL;
        if (error < 0) {
                log_debug("etcd watch on %s: probe failed (%s); next one in about %" PRIu64 " ms", r->watch_key,
                          message ? message : "?", (uint64_t) (r->client->watch_check_usec / USEC_PER_MSEC));
                arm(k, false);
                return;
        }
        k->probe_revision = res->revision;
        k->probe_count = res->count;
        k->probe_newest = res->n_kvs > 0 ? res->kvs[0].mod_revision : 0;
        behind = undelivered(k);
        if (behind == 0) {
                rebase(k);
                arm(k, false);
                return;
        }
        log_debug("etcd watch on %s: probe at revision %" PRId64 " found revision %" PRId64
                  " not delivered (watch at %" PRId64 "); looking again after the grace",
                  r->watch_key, res->revision, behind, k->known);
        arm(k, true);
}

static void probe(WatchCheck *k);

/* The count at the revision the watch started from: the first base. */
static void on_base_done(EtcdRequest *p, int error, const char *message, const EtcdResult *res) {
        EtcdRequest *r = p->owner;
        WatchCheck *k;

        if (!r || !r->liveness)
                return;
        k = r->liveness;
        k->probe = NULL;
        p->owner = NULL;
        if (error < 0 && error != -ESTALE) {
                log_debug("etcd watch on %s: probe failed (%s)", r->watch_key, message ? message : "?");
                arm(k, false);
                return;
        }
        /* Compacted away: the first probe's count becomes the base instead. */
        k->base_tried = true;
        if (error >= 0 && k->base_asked == k->floor && !k->have_base) {
                k->have_base = true;
                k->base_revision = k->base_asked;
                k->base_count = res->count;
        }
        probe(k);
}

static json_object *probe_body(const EtcdRequest *r, int64_t at_revision) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        _cleanup_free_ char *end = NULL;
        size_t end_size;

        if (!o || etcd_json_add_base64(o, "key", r->watch_key, strlen(r->watch_key)) < 0)
                return NULL;
        if (r->watch_prefix && (etcd_prefix_range_end(r->watch_key, &end, &end_size) < 0 ||
                                etcd_json_add_base64(o, "range_end", end, end_size) < 0))
                return NULL;
        if (at_revision > 0)
                return json_object_object_add(o, "revision", etcd_json_new_int64(at_revision)) < 0 ||
                       json_object_object_add(o, "count_only", json_object_new_boolean(true)) < 0 ?
                       NULL : TAKE_PTR(o);
        if (json_object_object_add(o, "limit", etcd_json_new_int64(1)) < 0 ||
            json_object_object_add(o, "sort_order", json_object_new_string("DESCEND")) < 0 ||
            json_object_object_add(o, "sort_target", json_object_new_string("MOD")) < 0 ||
            json_object_object_add(o, "keys_only", json_object_new_boolean(true)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static void probe(WatchCheck *k) {
        bool base = !k->have_base && !k->base_tried && k->floor > 0;
        _cleanup_(json_object_putp) json_object *body = probe_body(k->watch, base ? k->floor : 0);
        EtcdRequest *p;

        if (!body || etcd_request_new(k->watch->client, "/kv/range", body, &p) < 0) {
                arm(k, false);
                return;
        }
        p->idempotent = true;
        p->one_round = true;        /* an unreachable etcd is the stream's business */
        p->internal_callback = base ? on_base_done : on_probe_done;
        p->owner = k->watch;
        k->base_asked = base ? k->floor : 0;
        k->probe = p;
        (void) etcd_request_submit(p);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        WatchCheck *k = userdata;
        EtcdRequest *r = k->watch;
        _cleanup_free_ char *m = NULL;
        char f[512];
        int64_t behind;

        k->timer = sd_event_source_disable_unref(k->timer);
        if (!k->grace) {
                probe(k);
                return 0;
        }

        /* Responses already received count as delivered. */
        while (r->n_pending > 0)
                if (!etcd_request_deliver_watch(r))
                        return 0;   /* that ended the watch (and this check) */
        behind = undelivered(k);
        if (behind == 0) {
                rebase(k);
                arm(k, false);
                return 0;
        }

        snprintf(f, sizeof f, "COREKUBE_ETCD_KEY=%s", r->watch_key);
        log_event(LOG_WARNING, NULL, FIELDS(f), "etcd watch on %s stalled (no event for revision %" PRId64
                  "); reconnecting", r->watch_key, behind);
        if (asprintf(&m, "%s: watch stream stalled (no event for revision %" PRId64 ")",
                     r->client->endpoints[r->endpoint], behind) < 0)
                m = NULL;
        etcd_request_fail(r, -ECONNRESET, m ? m : "watch stream stalled");
        return 0;
}

void etcd_watch_check_note(EtcdRequest *r, const EtcdWatchResponse *w) {
        WatchCheck *k = r->liveness;

        if (!k) {
                if (r->client->watch_check_usec == ETCD_WATCH_CHECK_OFF || w->canceled)
                        return;
                k = calloc(1, sizeof *k);
                if (!k) {
                        log_error("etcd watch on %s: no memory for its liveness check", r->watch_key);
                        return;
                }
                k->watch = r;
                /* The watch delivers what changes from its start on; started at
                 * "now", it starts after the revision its first answer names. */
                k->known = r->watch_start > 0 ? r->watch_start - 1 : w->revision;
                k->floor = k->known;
                r->liveness = k;
                arm(k, false);
        }

        if (w->n_events == 0 && !w->created && !w->canceled && w->revision > k->known)
                k->known = w->revision;     /* progress: etcd sends it once all before it is sent */
        for (size_t i = 0; i < w->n_events; i++) {
                const EtcdEvent *e = &w->events[i];

                if (e->kv.mod_revision > k->known)
                        k->known = e->kv.mod_revision;
                if (e->type == ETCD_EVENT_DELETE)
                        add_delta(k, e->kv.mod_revision, -1);
                else if (e->kv.version == 1)
                        add_delta(k, e->kv.mod_revision, +1);
        }
}

void etcd_watch_check_forget_probe(EtcdRequest *watch, EtcdRequest *probe) {
        if (watch->liveness && watch->liveness->probe == probe)
                watch->liveness->probe = NULL;
}

void etcd_watch_check_free(EtcdRequest *r) {
        WatchCheck *k = r->liveness;

        if (!k)
                return;
        r->liveness = NULL;
        if (k->probe) {
                k->probe->owner = NULL;
                etcd_request_free(k->probe);
        }
        sd_event_source_disable_unref(k->timer);
        free(k->deltas);
        free(k);
}
