/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A non-blocking client for etcd's v3 JSON gateway: libcurl's multi interface
 * driven by sd-event, no threads. Every call returns at once and reports its
 * result through a callback from the event loop.
 *
 * Failures: a connection error or timeout moves to the next endpoint; after a
 * full round over all endpoints the request waits (capped exponential backoff
 * with jitter) and tries again, forever unless max_rounds is set. A txn whose
 * outcome is unknown (sent, no answer) is not resent blindly: the client
 * reads back the key its success branch puts and only resends if it did not
 * apply. Errors that retrying cannot fix (TLS verification with a single
 * endpoint round exhausted, wrong password, etcd rejecting the request) end
 * the request with a message naming the endpoint and the cause. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "etcd-json.h"
#include "macro.h"

typedef struct EtcdClient EtcdClient;
typedef struct EtcdRequest EtcdRequest;
typedef struct EtcdTxn EtcdTxn;

typedef struct EtcdClientOptions {
        char **endpoints;                /* NULL-terminated URLs, tried in order */
        const char *ca_file;             /* TLS trust anchor for https endpoints */
        const char *cert_file;           /* TLS client certificate and key */
        const char *key_file;
        const char *username;            /* etcd auth; NULL: none */
        const char *password;
        uint64_t request_timeout_usec;   /* one attempt of a unary call; 0: 5 s */
        uint64_t connect_timeout_usec;   /* 0: 2 s */
        uint64_t backoff_min_usec;       /* 0: 200 ms */
        uint64_t backoff_max_usec;       /* 0: 10 s */
        unsigned max_rounds;             /* rounds over all endpoints; 0: no limit */
        /* Liveness check of every established watch: a probe of its range
         * this often (± 10 %); 0: 60 s; ETCD_WATCH_CHECK_OFF: none. A watch
         * still behind what a probe saw after the grace (0: 2 s) is ended
         * like a broken stream (-ECONNRESET), so its owner resumes. */
        uint64_t watch_check_usec;
        uint64_t watch_check_grace_usec;
} EtcdClientOptions;

#define ETCD_WATCH_CHECK_OFF UINT64_MAX

/* error: 0 or a negative errno (-ECONNREFUSED, -ETIMEDOUT, -ENOENT when etcd
 * says not found, -EACCES for failed authentication, -EPERM, -EINVAL, -EIO,
 * -ESTALE for a compacted revision). message: says what failed and where
 * ("http://127.0.0.1:2379: TLS verification failed: …"); NULL on success.
 * result: NULL on error. Both are only valid during the call. */
typedef void (*etcd_handler_t)(EtcdClient *c, int error, const char *message,
                                const EtcdResult *result, void *userdata);

/* For a watch: each response in order. An error or a response with canceled
 * set ends the watch; no call follows and the handle is gone. A stream that
 * breaks, or stalls (see watch_check_usec), ends with -ECONNRESET. */
typedef void (*etcd_watch_handler_t)(EtcdClient *c, int error, const char *message,
                                      const EtcdWatchResponse *response, void *userdata);

int etcd_client_new(sd_event *event, const EtcdClientOptions *options, EtcdClient **ret);
/* Cancels whatever is in flight without calling back. Not from within one of
 * the client's callbacks. */
EtcdClient *etcd_client_free(EtcdClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(EtcdClient *, etcd_client_free);

/* Splits "http://a:2379, http://b:2379" into a NULL-terminated list. */
int etcd_parse_endpoints(const char *text, char ***ret);
char **etcd_endpoints_free(char **endpoints);

/* HTTP attempts made so far (for tests and the status command). */
uint64_t etcd_client_get_attempts(EtcdClient *c);
/* The endpoint requests currently go to. */
const char *etcd_client_get_endpoint(EtcdClient *c);

/* Every call may hand back the request in *ret (ret may be NULL): valid until
 * its callback has returned or it is canceled. Canceling never calls back. */
void etcd_request_cancel(EtcdRequest *r);

int etcd_range(EtcdClient *c, const char *key, bool prefix, int64_t revision,
               etcd_handler_t cb, void *userdata, EtcdRequest **ret);
int etcd_put(EtcdClient *c, const char *key, const char *value, int64_t lease,
             etcd_handler_t cb, void *userdata, EtcdRequest **ret);
int etcd_delete(EtcdClient *c, const char *key, bool prefix, bool prev_kv,
                etcd_handler_t cb, void *userdata, EtcdRequest **ret);
int etcd_lease_grant(EtcdClient *c, int64_t ttl_sec, etcd_handler_t cb, void *userdata, EtcdRequest **ret);
/* Success with result->ttl <= 0 means the lease no longer exists. */
int etcd_lease_keepalive(EtcdClient *c, int64_t id, etcd_handler_t cb, void *userdata, EtcdRequest **ret);
int etcd_lease_revoke(EtcdClient *c, int64_t id, etcd_handler_t cb, void *userdata, EtcdRequest **ret);
/* result->ttl is what is left (-1: the lease is gone), granted_ttl the original. */
int etcd_lease_timetolive(EtcdClient *c, int64_t id, etcd_handler_t cb, void *userdata, EtcdRequest **ret);
int etcd_compact(EtcdClient *c, int64_t revision, etcd_handler_t cb, void *userdata, EtcdRequest **ret);

/* A watch on key (or all keys under it), from start_revision (0: now). */
int etcd_watch(EtcdClient *c, const char *key, bool prefix, int64_t start_revision, bool prev_kv,
               etcd_watch_handler_t cb, void *userdata, EtcdRequest **ret);

/* Transactions: compares, then the success or the failure operations. */
typedef enum EtcdCompareTarget {
        ETCD_COMPARE_VERSION,
        ETCD_COMPARE_CREATE,
        ETCD_COMPARE_MOD,
        ETCD_COMPARE_VALUE,
        ETCD_COMPARE_LEASE,
} EtcdCompareTarget;

typedef enum EtcdCompareResult {
        ETCD_COMPARE_EQUAL,
        ETCD_COMPARE_GREATER,
        ETCD_COMPARE_LESS,
        ETCD_COMPARE_NOT_EQUAL,
} EtcdCompareResult;

EtcdTxn *etcd_txn_new(void);
EtcdTxn *etcd_txn_free(EtcdTxn *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(EtcdTxn *, etcd_txn_free);
/* number: for VERSION/CREATE/MOD/LEASE; value: for VALUE. */
int etcd_txn_compare(EtcdTxn *t, const char *key, EtcdCompareTarget target, EtcdCompareResult result,
                     int64_t number, const char *value);
int etcd_txn_put(EtcdTxn *t, bool success, const char *key, const char *value, int64_t lease);
int etcd_txn_delete(EtcdTxn *t, bool success, const char *key, bool prefix);
int etcd_txn_range(EtcdTxn *t, bool success, const char *key, bool prefix);
/* result->succeeded tells the branch; result->kvs holds the first range
 * operation's keys of that branch. The txn is not consumed. */
int etcd_txn_commit(EtcdClient *c, const EtcdTxn *t, etcd_handler_t cb, void *userdata, EtcdRequest **ret);
/* The request body, for tests and debugging. */
int etcd_txn_to_json(const EtcdTxn *t, char **ret);
