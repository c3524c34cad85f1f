/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backoff.h"
#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "subnet-lease.h"
#include "subnet-record.h"

#define LOST_RACES_BEFORE_BACKOFF 5

struct SubnetLease {
        EtcdClient *client;
        sd_event *event;
        char *prefix;
        NetworkConfig config;
        uint32_t public_ip;
        uint8_t mac[6];
        uint32_t preferred;
        unsigned preferred_len;
        uint64_t ttl_usec, margin_usec;
        subnet_lease_handler_t cb;
        void *userdata;

        int64_t lease_id;           /* our etcd lease, 0: none */
        bool acquired;
        uint32_t subnet;            /* what we hold (or held) */
        unsigned len;
        char *key;
        char *value;                /* our record as written */
        uint32_t reported;

        /* the choice being tried */
        uint32_t want;
        char *want_key;
        int64_t want_mod_revision;  /* 0: a new key; else reuse the record at this revision */
        int64_t old_lease;

        EtcdRequest *req;           /* the step in flight */
        EtcdRequest *keepalive;
        EtcdRequest *watch;
        sd_event_source *renew_timer;
        sd_event_source *retry_timer;
        Backoff backoff;
        Backoff watch_backoff;
        bool overwritten;           /* the record was lost to someone writing over it */
        uint64_t watch_started;
        unsigned lost_races;
};

static void acquire(SubnetLease *l);
static void verify(SubnetLease *l);

static int arm(SubnetLease *l, sd_event_source **s, uint64_t delay, sd_event_time_handler_t h) {
        uint64_t now;
        int r;

        *s = sd_event_source_disable_unref(*s);
        r = sd_event_now(l->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        return sd_event_add_time(l->event, s, CLOCK_MONOTONIC, now + delay, USEC_PER_MSEC, h, l);
}

static int on_retry_acquire(sd_event_source *s, uint64_t usec, void *userdata) {
        acquire(userdata);
        return 0;
}

static int on_retry_verify(sd_event_source *s, uint64_t usec, void *userdata) {
        verify(userdata);
        return 0;
}

/* Logged here, where the retry is decided; the callback only informs. */
static void fail(SubnetLease *l, int error, const char *message, bool reverify) {
        uint64_t d = backoff_next(&l->backoff);

        log_warning_errno(error, "Subnet lease: %s; trying again in %.1fs", message ? message : "failed", d / 1e6);
        if (arm(l, &l->retry_timer, d, reverify ? on_retry_verify : on_retry_acquire) < 0)
                log_error("Subnet lease: cannot schedule a retry");
        if (!reverify && l->cb)
                l->cb(l, error, message, NULL, l->userdata);
}

static void lost(SubnetLease *l, const char *why) {
        char s[64], a[IP4_STRLEN];

        snprintf(s, sizeof s, "COREKUBE_SUBNET=%s/%u", ip4_format(l->subnet, a), l->len);
        log_event(LOG_WARNING, MID_LEASE_LOST, FIELDS(s), "Lost subnet lease %s/%u: %s; acquiring again",
                  a, l->len, why);
        l->acquired = false;
        etcd_request_cancel(l->watch);
        l->watch = NULL;
        etcd_request_cancel(l->keepalive);
        l->keepalive = NULL;
        l->renew_timer = sd_event_source_disable_unref(l->renew_timer);
        /* Same subnet again if it is still free. */
        l->preferred = l->subnet;
        l->preferred_len = l->len;
        acquire(l);
}

/* ---- keeping the lease alive ---- */

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata);

static void schedule_renew(SubnetLease *l, int64_t ttl_sec) {
        uint64_t ttl = (uint64_t) ttl_sec * USEC_PER_SEC, margin = l->margin_usec;

        if (margin >= ttl)
                margin = ttl / 2;
        if (arm(l, &l->renew_timer, ttl - margin, on_renew) < 0)
                log_error("Subnet lease: cannot schedule the renewal");
}

static void on_keepalive(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        SubnetLease *l = userdata;

        l->keepalive = NULL;
        if (error == -ENOENT || (error >= 0 && res->ttl <= 0)) {
                l->lease_id = 0;
                lost(l, "the etcd lease expired");
                return;
        }
        if (error < 0) {
                uint64_t d = backoff_next(&l->backoff);

                log_warning_errno(error, "Subnet lease: renewal failed: %s; trying again in %.1fs", message, d / 1e6);
                (void) arm(l, &l->renew_timer, d, on_renew);
                return;
        }
        backoff_reset(&l->backoff);
        log_debug("Subnet lease renewed, TTL %" PRId64 "s", res->ttl);
        schedule_renew(l, res->ttl);
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        SubnetLease *l = userdata;
        int r;

        l->renew_timer = sd_event_source_disable_unref(l->renew_timer);
        if (l->keepalive || !l->acquired)
                return 0;
        r = etcd_lease_keepalive(l->client, l->lease_id, on_keepalive, l, &l->keepalive);
        if (r < 0)
                log_error_errno(r, "Subnet lease: cannot renew: %m");
        return 0;
}

/* ---- watching our own key ---- */

static bool kv_is_ours(SubnetLease *l, const EtcdKv *kv) {
        return kv->lease == l->lease_id && streq(kv->value, l->value);
}

static void on_watch(EtcdClient *c, int error, const char *message, const EtcdWatchResponse *w, void *userdata) {
        SubnetLease *l = userdata;

        if (error < 0 || w->canceled) {
                /* Whatever happened meanwhile, look at the key as it is now;
                 * after a pause, so that a stream that keeps breaking is no busy loop. */
                uint64_t now = 0, d;

                /* A watch that held for a while starts the pauses over. */
                (void) sd_event_now(l->event, CLOCK_MONOTONIC, &now);
                if (now > l->watch_started + l->watch_backoff.max_usec)
                        backoff_reset(&l->watch_backoff);
                d = backoff_next(&l->watch_backoff);
                l->watch = NULL;
                log_debug("Subnet lease: watch ended (%s), checking the record in %.1fs",
                          message ? message : "canceled", d / 1e6);
                if (arm(l, &l->retry_timer, d, on_retry_verify) < 0)
                        verify(l);
                return;
        }

        for (size_t i = 0; i < w->n_events; i++) {
                const EtcdEvent *e = &w->events[i];

                if (e->type == ETCD_EVENT_DELETE || !kv_is_ours(l, &e->kv)) {
                        etcd_request_cancel(l->watch);
                        l->watch = NULL;
                        /* Someone wrote over our record: do not take it back by its PublicIP
                         * (two nodes with one IP would otherwise take turns forever). */
                        l->overwritten = e->type != ETCD_EVENT_DELETE;
                        lost(l, l->overwritten ? "the record was overwritten" : "the record was deleted");
                        return;
                }
        }
}

static void start_watch(SubnetLease *l, int64_t from_revision) {
        int r;

        (void) sd_event_now(l->event, CLOCK_MONOTONIC, &l->watch_started);
        r = etcd_watch(l->client, l->key, false, from_revision, false, on_watch, l, &l->watch);
        if (r < 0)
                fail(l, r, "cannot watch our record", true);
}

static void on_verified(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        SubnetLease *l = userdata;

        l->req = NULL;
        if (error < 0) {
                fail(l, error, message, true);
                return;
        }
        if (res->n_kvs != 1 || !kv_is_ours(l, &res->kvs[0])) {
                lost(l, res->n_kvs == 0 ? "the record is gone" : "the record is no longer ours");
                return;
        }
        start_watch(l, res->revision + 1);
}

static void verify(SubnetLease *l) {
        int r;

        if (!l->acquired)
                return;
        r = etcd_range(l->client, l->key, false, 0, on_verified, l, &l->req);
        if (r < 0)
                fail(l, r, "cannot read our record", true);
}

/* ---- acquiring ---- */

static void acquired(SubnetLease *l, int64_t revision) {
        SubnetLeaseEvent ev;
        char s[64], a[IP4_STRLEN];

        l->acquired = true;
        l->overwritten = false;
        l->lost_races = 0;
        backoff_reset(&l->backoff);
        l->subnet = l->want;
        l->len = l->config.subnet_len;
        free(l->key);
        l->key = TAKE_PTR(l->want_key);

        if (l->want_mod_revision > 0 && l->old_lease != 0 && l->old_lease != l->lease_id)
                /* The record left its old lease; nothing else of ours is on it. */
                (void) etcd_lease_revoke(l->client, l->old_lease, NULL, NULL, NULL);

        snprintf(s, sizeof s, "COREKUBE_SUBNET=%s/%u", ip4_format(l->subnet, a), l->len);
        log_event(LOG_INFO, MID_LEASE_ACQUIRED, FIELDS(s), "Acquired subnet lease %s/%u%s", a, l->len,
                  l->want_mod_revision > 0 ? " (our existing record)" : "");

        ev = (SubnetLeaseEvent) {
                .subnet = l->subnet,
                .len = l->len,
                .previous_subnet = l->reported,
                .changed = l->reported != l->subnet,
                .lease_id = l->lease_id,
                .key = l->key,
        };
        if (l->reported != 0 && ev.changed) {
                char b[IP4_STRLEN];

                log_event(LOG_NOTICE, MID_SUBNET_CHANGED, FIELDS(s), "Subnet changed from %s to %s/%u",
                          ip4_format(l->reported, b), a, l->len);
        }
        l->reported = l->subnet;
        schedule_renew(l, (int64_t) (l->ttl_usec / USEC_PER_SEC));
        start_watch(l, revision + 1);
        if (l->cb)
                l->cb(l, 0, NULL, &ev, l->userdata);
}

static void on_committed(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        SubnetLease *l = userdata;

        l->req = NULL;
        if (error == -ENOENT) {
                /* Our etcd lease is gone (revoked): take a new one. */
                l->lease_id = 0;
                acquire(l);
                return;
        }
        if (error < 0) {
                fail(l, error, message, false);
                return;
        }
        if (res->succeeded) {
                acquired(l, res->revision);
                return;
        }

        /* Another node was faster: choose again. flanneld gives up here. */
        l->lost_races++;
        log_debug("Subnet lease: lost the race for %s, choosing again", l->want_key);
        if (l->lost_races % LOST_RACES_BEFORE_BACKOFF == 0) {
                if (arm(l, &l->retry_timer, backoff_next(&l->backoff), on_retry_acquire) < 0)
                        log_error("Subnet lease: cannot schedule a retry");
                return;
        }
        acquire(l);
}

static void commit(SubnetLease *l) {
        _cleanup_(etcd_txn_freep) EtcdTxn *t = etcd_txn_new();
        int r = t ? 0 : -ENOMEM;

        if (r >= 0)
                r = l->want_mod_revision > 0 ?
                        etcd_txn_compare(t, l->want_key, ETCD_COMPARE_MOD, ETCD_COMPARE_EQUAL, l->want_mod_revision, NULL) :
                        etcd_txn_compare(t, l->want_key, ETCD_COMPARE_VERSION, ETCD_COMPARE_EQUAL, 0, NULL);
        if (r >= 0)
                r = etcd_txn_put(t, true, l->want_key, l->value, l->lease_id);
        if (r >= 0)
                r = etcd_txn_commit(l->client, t, on_committed, l, &l->req);
        if (r < 0)
                fail(l, r, "cannot send the lease txn", false);
}

static void on_granted(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        SubnetLease *l = userdata;

        l->req = NULL;
        if (error < 0) {
                fail(l, error, message, false);
                return;
        }
        l->lease_id = res->lease_id;
        commit(l);
}

static uint32_t random_u32(void) {
        uint32_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint32_t) random();
        return v;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

/* The free subnet with index k among the free ones. taken is sorted. */
static uint32_t nth_free(const NetworkConfig *c, const uint32_t *taken, size_t n_taken, uint32_t k) {
        uint32_t size = (uint32_t) 1 << (32 - c->subnet_len);
        size_t t = 0;

        for (uint32_t s = c->subnet_min;; s += size) {
                while (t < n_taken && taken[t] < s)
                        t++;
                if (t >= n_taken || taken[t] != s) {
                        if (k == 0)
                                return s;
                        k--;
                }
                if (s == c->subnet_max)
                        return 0;
        }
}

static void on_listed(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        SubnetLease *l = userdata;
        _cleanup_free_ uint32_t *taken = NULL;
        size_t n_taken = 0, n_free;
        char a[IP4_STRLEN];
        int r;

        l->req = NULL;
        if (error < 0) {
                fail(l, error, message, false);
                return;
        }

        l->want = 0;
        l->want_mod_revision = 0;
        l->old_lease = 0;
        taken = calloc(res->n_kvs + 1, sizeof *taken);
        if (!taken) {
                fail(l, -ENOMEM, "out of memory", false);
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                uint32_t s, ip;
                unsigned len;

                if (network_config_parse_subnet_key(res->kvs[i].key, l->prefix, &s, &len) < 0)
                        continue;
                taken[n_taken++] = s;
                /* 1. The record that already names us, e.g. after a restart. */
                if (l->want == 0 && network_config_subnet_ok(&l->config, s, len) &&
                    !(l->overwritten && l->key && streq(l->key, res->kvs[i].key)) &&
                    subnet_record_public_ip(res->kvs[i].value, &ip) >= 0 && ip == l->public_ip) {
                        l->want = s;
                        l->want_mod_revision = res->kvs[i].mod_revision;
                        l->old_lease = res->kvs[i].lease;
                }
        }
        qsort(taken, n_taken, sizeof *taken, cmp_u32);

        /* 2. The subnet we had (subnet-file or before a loss), if free. */
        if (l->want == 0 && l->preferred != 0 &&
            network_config_subnet_ok(&l->config, l->preferred, l->preferred_len) &&
            !bsearch(&l->preferred, taken, n_taken, sizeof *taken, cmp_u32))
                l->want = l->preferred;

        /* 3. Any free one, at random so that nodes starting together rarely collide. */
        if (l->want == 0) {
                uint32_t n = network_config_n_subnets(&l->config), in_range = 0;

                for (size_t i = 0; i < n_taken; i++)
                        if (network_config_subnet_ok(&l->config, taken[i], l->config.subnet_len))
                                in_range++;
                n_free = n - in_range;
                if (n_free == 0) {
                        fail(l, -ENOSPC, "no free subnet left in the network", false);
                        return;
                }
                l->want = nth_free(&l->config, taken, n_taken, random_u32() % (uint32_t) n_free);
        }

        free(l->want_key);
        l->want_key = NULL;
        r = network_config_subnet_key(l->prefix, l->want, l->config.subnet_len, &l->want_key);
        if (r < 0) {
                fail(l, r, "out of memory", false);
                return;
        }
        log_debug("Subnet lease: trying %s/%u", ip4_format(l->want, a), l->config.subnet_len);

        if (l->lease_id == 0) {
                r = etcd_lease_grant(l->client, (int64_t) (l->ttl_usec / USEC_PER_SEC), on_granted, l, &l->req);
                if (r < 0)
                        fail(l, r, "cannot request an etcd lease", false);
                return;
        }
        commit(l);
}

static void acquire(SubnetLease *l) {
        _cleanup_free_ char *dir = NULL;
        int r;

        l->retry_timer = sd_event_source_disable_unref(l->retry_timer);
        etcd_request_cancel(l->req);
        l->req = NULL;
        if (asprintf(&dir, "%s/subnets/", l->prefix) < 0) {
                fail(l, -ENOMEM, "out of memory", false);
                return;
        }
        r = etcd_range(l->client, dir, true, 0, on_listed, l, &l->req);
        if (r < 0)
                fail(l, r, "cannot list the subnet leases", false);
}

/* ---- public ---- */

int subnet_lease_new(EtcdClient *client, sd_event *event, const SubnetLeaseOptions *o, subnet_lease_handler_t cb,
                     void *userdata, SubnetLease **ret) {
        _cleanup_(subnet_lease_freep) SubnetLease *l = NULL;

        if (!o->prefix || o->public_ip == 0)
                return -EINVAL;
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (SubnetLease) {
                .client = client,
                .event = sd_event_ref(event),
                .config = o->config,
                .public_ip = o->public_ip,
                .preferred = o->preferred_subnet,
                .preferred_len = o->preferred_len,
                .ttl_usec = o->ttl_usec ?: 24ULL * 3600 * USEC_PER_SEC,
                .margin_usec = o->renew_margin_usec ?: 3600 * USEC_PER_SEC,
                .cb = cb,
                .userdata = userdata,
        };
        if (l->ttl_usec < USEC_PER_SEC)
                l->ttl_usec = USEC_PER_SEC;
        memcpy(l->mac, o->vtep_mac, 6);
        backoff_init(&l->backoff, 500 * USEC_PER_MSEC, 30 * USEC_PER_SEC);
        backoff_init(&l->watch_backoff, 200 * USEC_PER_MSEC, 30 * USEC_PER_SEC);
        l->prefix = strdup(o->prefix);
        if (!l->prefix || subnet_record_format(l->public_ip, l->mac, l->config.vni, &l->value) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

SubnetLease *subnet_lease_free(SubnetLease *l) {
        if (!l)
                return NULL;
        etcd_request_cancel(l->req);
        etcd_request_cancel(l->keepalive);
        etcd_request_cancel(l->watch);
        sd_event_source_disable_unref(l->renew_timer);
        sd_event_source_disable_unref(l->retry_timer);
        sd_event_unref(l->event);
        free(l->prefix);
        free(l->key);
        free(l->value);
        free(l->want_key);
        free(l);
        return NULL;
}

int subnet_lease_start(SubnetLease *l) {
        acquire(l);
        return 0;
}

uint32_t subnet_lease_get_subnet(SubnetLease *l, unsigned *ret_len) {
        if (ret_len)
                *ret_len = l->acquired ? l->len : 0;
        return l->acquired ? l->subnet : 0;
}

int subnet_lease_release(SubnetLease *l, etcd_handler_t cb, void *userdata) {
        int64_t id = l->lease_id;

        etcd_request_cancel(l->req);
        etcd_request_cancel(l->keepalive);
        etcd_request_cancel(l->watch);
        l->req = l->keepalive = l->watch = NULL;
        l->renew_timer = sd_event_source_disable_unref(l->renew_timer);
        l->retry_timer = sd_event_source_disable_unref(l->retry_timer);
        l->acquired = false;
        l->lease_id = 0;
        if (id == 0)
                return -ENOENT;
        return etcd_lease_revoke(l->client, id, cb, userdata, NULL);
}

int subnet_lease_set_vtep_mac(SubnetLease *l, const uint8_t mac[static 6]) {
        _cleanup_(etcd_txn_freep) EtcdTxn *t = NULL;
        char *v;
        int r;

        if (memcmp(mac, l->mac, 6) == 0)
                return 0;
        r = subnet_record_format(l->public_ip, mac, l->config.vni, &v);
        if (r < 0)
                return r;
        memcpy(l->mac, mac, 6);
        free(l->value);
        l->value = v;
        if (!l->acquired)
                return 0;
        /* Our watch sees this put and finds it ours, as l->value is already new. */
        t = etcd_txn_new();
        if (!t)
                return -ENOMEM;
        r = etcd_txn_compare(t, l->key, ETCD_COMPARE_LEASE, ETCD_COMPARE_EQUAL, l->lease_id, NULL);
        if (r >= 0)
                r = etcd_txn_put(t, true, l->key, l->value, l->lease_id);
        if (r >= 0)
                r = etcd_txn_commit(l->client, t, NULL, NULL, NULL);
        return r;
}

int subnet_lease_read_subnet_file(const char *path, uint32_t *ret_subnet, unsigned *ret_len) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[256];

        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                uint32_t a;
                unsigned len;

                line[strcspn(line, "\r\n")] = 0;
                if (strncmp(line, "FLANNEL_SUBNET=", 15) != 0)
                        continue;
                if (ip4_parse_cidr(line + 15, true, &a, &len) < 0 || len > 30)
                        return -EINVAL;
                *ret_subnet = a & ip4_mask(len);
                *ret_len = len;
                return 0;
        }
        return -ENOENT;
}
