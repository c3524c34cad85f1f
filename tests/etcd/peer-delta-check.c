/* SPDX-License-Identifier: Apache-2.0 */
/* etcd-tool's check of a peer watch delta against the sets before and after. */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "peer-delta-check.h"

static int cmp_subnet(const void *a, const void *b) {
        const SubnetRecord *x = a, *y = b;
        return x->subnet < y->subnet ? -1 : x->subnet > y->subnet;
}

/* Whether the last set with `delta` applied is the new set: what the agent
 * programs from the delta is what the set says. */
bool delta_consistent(const SubnetRecord *prev, size_t n_prev, const PeerWatchDelta *d,
                             const SubnetRecord *p, size_t n) {
        _cleanup_free_ SubnetRecord *q = calloc(n_prev + d->n_upsert + 1, sizeof *q);
        size_t k = 0;

        if (!q)
                return false;
        for (size_t i = 0; i < n_prev; i++) {
                bool keep = true;
                for (size_t j = 0; j < d->n_removed; j++)
                        keep = keep && d->removed[j] != prev[i].subnet;
                for (size_t j = 0; j < d->n_upsert; j++)
                        keep = keep && d->upsert[j].subnet != prev[i].subnet;
                if (keep)
                        q[k++] = prev[i];
        }
        for (size_t j = 0; j < d->n_upsert; j++)
                q[k++] = d->upsert[j];
        qsort(q, k, sizeof *q, cmp_subnet);
        for (size_t i = 0; i < k && k == n; i++)
                if (q[i].subnet != p[i].subnet || q[i].len != p[i].len || q[i].public_ip != p[i].public_ip ||
                    memcmp(q[i].vtep_mac, p[i].vtep_mac, 6) != 0 || q[i].vni != p[i].vni)
                        return false;
        return k == n;
}
