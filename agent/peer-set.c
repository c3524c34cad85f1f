/* SPDX-License-Identifier: Apache-2.0 */
/* The usable peers from the peer watch's cache, and what changed in them
 * since the last delivery. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "netsetup.h"
#include "peer-watch-internal.h"

static bool same_peers(const SubnetRecord *a, const SubnetRecord *b, size_t n);

/* Valid records can still contradict each other or us: a VTEP MAC that is
 * ours, or one another record already uses for another public IP (the
 * kernel's FDB maps a MAC to one destination). The record created first
 * keeps the MAC; the later one is left out (warned about once), so that a
 * forged record cannot take a node's traffic or block the whole peer set.
 * Found by sorting the valid records by MAC and age, so a batch costs
 * O(n log n), not a scan of every record for every record. */
static int cmp_mac_age(const void *a, const void *b) {
        const Entry *x = *(Entry *const *) a, *y = *(Entry *const *) b;
        int c = memcmp(x->rec.vtep_mac, y->rec.vtep_mac, 6);

        if (c)
                return c;
        if (x->create_revision != y->create_revision)
                return x->create_revision < y->create_revision ? -1 : 1;
        return strcmp(x->key, y->key);
}

/* Whether e may be used; `owner` is the record that holds its MAC (e itself:
 * the MAC is ours), or NULL. */
static bool usable(Entry *e, const Entry *owner) {
        char f[512], mac[18];

        if (!owner)
                return true;
        if (e->conflict_warned != e->mod_revision) {
                e->conflict_warned = e->mod_revision;
                ns_format_mac(e->rec.vtep_mac, mac);
                snprintf(f, sizeof f, "COREKUBE_ETCD_KEY=%s", e->key);
                if (owner == e)
                        log_event(LOG_WARNING, MID_PEER_REJECTED, FIELDS(f),
                                  "Ignoring peer record %s (revision %" PRId64 "): VTEP MAC %s is ours",
                                  e->key, e->mod_revision, mac);
                else
                        log_event(LOG_WARNING, MID_PEER_REJECTED, FIELDS(f),
                                  "Ignoring peer record %s (revision %" PRId64 "): VTEP MAC %s belongs to %s",
                                  e->key, e->mod_revision, mac, owner->key);
        }
        return false;
}

/* The usable records of one MAC's group `g` (sorted by cmp_mac_age) into
 * `out`: the oldest record holds the MAC; a later one with the same public
 * IP is the same node and fine. */
static size_t group_usable(PeerWatch *w, Entry **g, size_t m, SubnetRecord *out) {
        static const uint8_t zero[6] = {};
        bool own = memcmp(w->own_mac, zero, 6) != 0;
        size_t n = 0;

        for (size_t k = 0; k < m; k++) {
                Entry *e = g[k];
                const Entry *owner = NULL;

                if (own && memcmp(e->rec.vtep_mac, w->own_mac, 6) == 0)
                        owner = e;
                for (size_t o = 0; o < k && !owner; o++)
                        if (g[o]->rec.public_ip != e->rec.public_ip)
                                owner = g[o];
                if (usable(e, owner))
                        out[n++] = e->rec;
        }
        return n;
}

/* The usable peers, unsorted, into `out` (room for every entry). */
static size_t usable_peers(PeerWatch *w, SubnetRecord *out) {
        _cleanup_free_ Entry **idx = calloc(w->n_entries + 1, sizeof *idx);
        size_t m = 0, n = 0;

        if (!idx)
                return log_error_errno(-ENOMEM, "Peer watch: out of memory"), 0;
        for (size_t i = 0; i < w->n_entries; i++)
                if (w->entries[i].status == 0)
                        idx[m++] = &w->entries[i];
        if (m > 1)
                qsort(idx, m, sizeof *idx, cmp_mac_age);
        for (size_t i = 0; i < m;) {
                size_t j = i;

                while (j < m && memcmp(idx[j]->rec.vtep_mac, idx[i]->rec.vtep_mac, 6) == 0)
                        j++;
                n += group_usable(w, idx + i, j - i, out + n);
                i = j;
        }
        return n;
}

static int cmp_rec(const void *a, const void *b) {
        const SubnetRecord *x = a, *y = b;

        return x->subnet < y->subnet ? -1 : x->subnet > y->subnet;
}

/* The whole set again, sorted; 1 if it differs from what was delivered. */
static int settle_full(PeerWatch *w) {
        _cleanup_free_ SubnetRecord *peers = NULL;
        size_t n;

        peers = calloc(w->n_entries + 1, sizeof *peers);
        if (!peers)
                return log_error_errno(-ENOMEM, "Peer watch: out of memory");
        n = usable_peers(w, peers);
        if (n > 1)
                qsort(peers, n, sizeof *peers, cmp_rec);
        if (w->delivered_once && n == w->n_delivered && same_peers(peers, w->delivered, n))
                return 0;
        free(w->delivered);
        w->delivered = TAKE_PTR(peers);
        w->n_delivered = n;
        w->cap_delivered = w->n_entries + 1;
        return 1;
}

/* Where `subnet` is or would go in the delivered set. */
static size_t delivered_index(const PeerWatch *w, uint32_t subnet) {
        size_t lo = 0, hi = w->n_delivered;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (w->delivered[mid].subnet < subnet)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static const SubnetRecord *find_delivered(const PeerWatch *w, uint32_t subnet) {
        size_t i = delivered_index(w, subnet);

        return i < w->n_delivered && w->delivered[i].subnet == subnet ? &w->delivered[i] : NULL;
}

static bool has_subnet(const SubnetRecord *r, size_t n, uint32_t subnet) {
        for (size_t i = 0; i < n; i++)
                if (r[i].subnet == subnet)
                        return true;
        return false;
}

/* Applies the changes to the delivered set in place (room was made). */
static void delivered_apply(PeerWatch *w, const SubnetRecord *up, size_t n_up, const uint32_t *rm, size_t n_rm) {
        for (size_t i = 0; i < n_rm; i++) {
                size_t j = delivered_index(w, rm[i]);
                if (j < w->n_delivered && w->delivered[j].subnet == rm[i]) {
                        memmove(w->delivered + j, w->delivered + j + 1, (w->n_delivered - j - 1) * sizeof *up);
                        w->n_delivered--;
                }
        }
        for (size_t i = 0; i < n_up; i++) {
                size_t j = delivered_index(w, up[i].subnet);
                if (j >= w->n_delivered || w->delivered[j].subnet != up[i].subnet) {
                        memmove(w->delivered + j + 1, w->delivered + j, (w->n_delivered - j) * sizeof *up);
                        w->n_delivered++;
                }
                w->delivered[j] = up[i];
        }
}

/* Only the groups of the MACs that changed are judged again (a change can
 * move a MAC's ownership, so the whole group), and the delivered set is
 * changed in place: no sort of the whole set per change. 1 with `d` set if
 * something changed; its arrays are the caller's to free. */
static int settle_delta(PeerWatch *w, PeerWatchDelta *d) {
        _cleanup_free_ Entry **g = malloc((w->n_entries + 1) * sizeof *g);
        _cleanup_free_ SubnetRecord *now = malloc((w->n_entries + 1) * sizeof *now);
        _cleanup_free_ SubnetRecord *up = malloc((w->n_entries + 1) * sizeof *up);
        _cleanup_free_ uint32_t *rm = malloc((w->n_delivered + 1) * sizeof *rm);
        size_t n_up = 0, n_rm = 0, k = 0, r = 0;

        if (!g || !now || !up || !rm)
                return -ENOMEM;
        for (size_t x = 0; x < w->n_dirty; x++) {
                const uint8_t *mac = w->dirty[x];
                size_t m = 0, nk;

                for (size_t i = 0; i < w->n_entries; i++)
                        if (w->entries[i].status == 0 && memcmp(w->entries[i].rec.vtep_mac, mac, 6) == 0)
                                g[m++] = &w->entries[i];
                if (m > 1)
                        qsort(g, m, sizeof *g, cmp_mac_age);
                nk = group_usable(w, g, m, now + k);
                for (size_t j = k; j < k + nk; j++) {
                        const SubnetRecord *old = find_delivered(w, now[j].subnet);
                        if (!old || !same_peers(old, &now[j], 1))
                                up[n_up++] = now[j];
                }
                for (size_t i = 0; i < w->n_delivered; i++)
                        if (memcmp(w->delivered[i].vtep_mac, mac, 6) == 0 &&
                            !has_subnet(now + k, nk, w->delivered[i].subnet))
                                rm[n_rm++] = w->delivered[i].subnet;
                k += nk;
        }
        /* A record that moved to another MAC is changed, not gone. */
        for (size_t i = 0; i < n_rm; i++)
                if (!has_subnet(now, k, rm[i]))
                        rm[r++] = rm[i];
        n_rm = r;
        if (n_up == 0 && n_rm == 0)
                return 0;

        if (w->n_delivered + n_up > w->cap_delivered) {
                size_t cap = (w->n_delivered + n_up) * 2;
                SubnetRecord *p = realloc(w->delivered, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                w->delivered = p;
                w->cap_delivered = cap;
        }
        delivered_apply(w, up, n_up, rm, n_rm);
        *d = (PeerWatchDelta) {
                .upsert = TAKE_PTR(up),
                .n_upsert = n_up,
                .removed = TAKE_PTR(rm),
                .n_removed = n_rm,
        };
        return 1;
}

static bool same_peers(const SubnetRecord *a, const SubnetRecord *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (a[i].subnet != b[i].subnet || a[i].len != b[i].len || a[i].public_ip != b[i].public_ip ||
                    memcmp(a[i].vtep_mac, b[i].vtep_mac, 6) != 0 || a[i].vni != b[i].vni)
                        return false;
        return true;
}

/* A usable record with this MAC came, went or changed. */
void peer_set_mark(PeerWatch *w, const Entry *e) {
        if (e->status != 0 || w->dirty_all)
                return;
        for (size_t i = 0; i < w->n_dirty; i++)
                if (memcmp(w->dirty[i], e->rec.vtep_mac, 6) == 0)
                        return;
        if (w->n_dirty == DIRTY_MAX) {
                w->dirty_all = true;
                return;
        }
        memcpy(w->dirty[w->n_dirty++], e->rec.vtep_mac, 6);
}

int peer_set_settle(PeerWatch *w, bool full, PeerWatchDelta *d) {
        int r;

        *d = (PeerWatchDelta) {};
        if (!full) {
                r = settle_delta(w, d);
                if (r >= 0)
                        return r;
        }
        return settle_full(w);
}
