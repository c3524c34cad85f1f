/* SPDX-License-Identifier: Apache-2.0 */
/* The part of `leave` both forms share (leave.h): deleting the keys found,
 * one after the other, each only at the mod_revision it was read at (a
 * subnet may have passed to another node meanwhile), then revoking its etcd
 * lease. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-etcd.h"
#include "leave.h"
#include "log.h"
#include "macro.h"
#include "term-escape.h"

void leave_finish(LeaveCommand *l, int code) {
        (void) sd_event_exit(l->event, code);
}

void leave_etcd_failed(LeaveCommand *l, int error, const char *message) {
        if (cli_etcd_unreachable(error)) {
                log_error("etcd is unreachable: %s; %s", message ?: l->endpoints,
                          l->done == 0 ? "nothing was changed." : "run leave again to finish.");
                leave_finish(l, EXIT_UNAVAILABLE);
        } else {
                log_error("etcd: %s", message ?: strerror(-error));
                leave_finish(l, EXIT_RUNTIME);
        }
}

int leave_add_target(LeaveCommand *l, const EtcdKv *kv, const char *what) {
        LeaveTarget *t = reallocarray(l->targets, l->n_targets + 1, sizeof *t);

        if (!t)
                return -ENOMEM;
        l->targets = t;
        t = &t[l->n_targets];
        *t = (LeaveTarget) {
                .key = strdup(kv->key),
                .mod_revision = kv->mod_revision,
                .lease = kv->lease,
                .what = strdup(what),
        };
        if (!t->key || !t->what) {
                free(t->key);
                free(t->what);
                return -ENOMEM;
        }
        l->n_targets++;
        return 0;
}

static void on_revoked(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        LeaveCommand *l = userdata;

        /* -ENOENT: the lease expired or was revoked already; the key is gone. */
        if (error < 0 && error != -ENOENT) {
                leave_etcd_failed(l, error, message);
                return;
        }
        l->next++;
        leave_release(l);
}

static void on_deleted(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        LeaveCommand *l = userdata;
        LeaveTarget *t = &l->targets[l->next];
        char key[1024];

        if (error < 0) {
                leave_etcd_failed(l, error, message);
                return;
        }
        /* Keys come from etcd listings: escaped for the terminal. */
        term_escape_buf(t->key, key, sizeof key);
        if (res->succeeded) {
                printf("Released %s (%s).\n", t->what, key);
                l->done++;
        } else
                printf("%s changed since it was read; left alone (%s).\n", t->what, key);
        if (res->succeeded && t->lease != 0) {
                if (etcd_lease_revoke(l->etcd, t->lease, on_revoked, l, NULL) < 0)
                        leave_finish(l, EXIT_RUNTIME);
                return;
        }
        l->next++;
        leave_release(l);
}

void leave_release(LeaveCommand *l) {
        _cleanup_(etcd_txn_freep) EtcdTxn *t = NULL;
        LeaveTarget *x;

        if (l->next >= l->n_targets) {
                l->released(l);
                return;
        }
        x = &l->targets[l->next];
        t = etcd_txn_new();
        if (!t || etcd_txn_compare(t, x->key, ETCD_COMPARE_MOD, ETCD_COMPARE_EQUAL, x->mod_revision, NULL) < 0 ||
            etcd_txn_delete(t, true, x->key, false) < 0 ||
            etcd_txn_commit(l->etcd, t, on_deleted, l, NULL) < 0) {
                log_error("Out of memory.");
                leave_finish(l, EXIT_RUNTIME);
        }
}

int leave_open(LeaveCommand *l) {
        l->endpoints = cli_etcd_endpoints(l->cfg);
        /* Two rounds over the endpoints, then exit 69 with nothing changed. */
        return cli_etcd_open(l->cfg, 2, &l->event, &l->etcd);
}

int leave_loop(LeaveCommand *l) {
        int r = sd_event_loop(l->event);

        return r < 0 ? EXIT_RUNTIME : r;
}

void leave_done(LeaveCommand *l) {
        etcd_client_free(l->etcd);
        l->etcd = NULL;
        l->event = sd_event_unref(l->event);
        for (size_t i = 0; i < l->n_targets; i++) {
                free(l->targets[i].key);
                free(l->targets[i].what);
        }
        free(l->targets);
        l->targets = NULL;
        l->n_targets = 0;
        free(l->endpoints);
        l->endpoints = NULL;
}
