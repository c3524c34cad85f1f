/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between etcd-client.c (transport, retries, auth) and etcd-ops.c
 * (the calls and their JSON bodies). */

#include <curl/curl.h>

#include "backoff.h"
#include "curl-event.h"
#include "etcd-client.h"
#include "etcd-stream.h"

typedef struct WatchCheck WatchCheck;

struct EtcdRequest {
        EtcdClient *client;
        EtcdRequest *prev, *next;

        char *path;                 /* below the API prefix, e.g. "/kv/range" */
        char *body;
        bool watch;
        bool idempotent;            /* safe to send again when the outcome is unknown */
        bool auth;                  /* the /auth/authenticate call itself */

        /* A txn: the put of its success branch, read back when unsure. */
        char *check_key;
        char *check_value;
        int64_t check_lease;
        EtcdRequest *check;         /* the read-back in flight */

        etcd_handler_t callback;
        etcd_watch_handler_t watch_callback;
        void (*internal_callback)(EtcdRequest *self, int error, const char *message, const EtcdResult *result);
        EtcdRequest *owner;         /* the txn a read-back, or the watch a probe belongs to */
        void *userdata;

        CURL *easy;
        struct curl_slist *headers;
        char errbuf[CURL_ERROR_SIZE];
        char *response;
        size_t response_size;
        EtcdStream stream;
        json_object **pending;      /* watch responses waiting to be handed out */
        size_t n_pending;
        bool streaming;             /* a watch that has delivered a response */
        char *watch_key;            /* a watch's range, start and liveness check */
        bool watch_prefix;
        int64_t watch_start;
        WatchCheck *liveness;
        bool one_round;             /* give up after one round over the endpoints */
        sd_event_source *silent_timer;  /* a watch must start answering within the request timeout */

        unsigned endpoint;
        unsigned tried;             /* endpoints tried in this round */
        unsigned rounds;
        Backoff backoff;
        sd_event_source *retry_source;
        bool waiting_auth;
        bool auth_retried;
        bool canceled;
        bool in_callback;
        char *last_error;           /* why the last attempt failed */
        int last_errno;
};

#define RESPONSE_MAX (64U * 1024U * 1024U)
#define WATCH_OBJECT_MAX (16U * 1024U * 1024U)

struct EtcdClient {
        sd_event *event;
        CurlLoop *curl;                 /* libcurl's multi interface on sd-event */
        sd_event_source *dispatch;      /* hands out watch responses outside curl */

        char **endpoints;
        unsigned n_endpoints;
        bool *v3beta;                   /* per endpoint: only /v3beta answers */
        bool *failing;                  /* per endpoint: last attempt failed (log once) */
        unsigned current;

        char *ca_file, *cert_file, *key_file;
        char *username, *password;
        uint64_t request_timeout_usec, connect_timeout_usec;
        uint64_t backoff_min_usec, backoff_max_usec;
        unsigned max_rounds;
        uint64_t watch_check_usec, watch_check_grace_usec;

        char *token;
        EtcdRequest *auth_request;

        EtcdRequest *requests;
        uint64_t attempts;
};

typedef enum Outcome {
        OUTCOME_OK,
        OUTCOME_RETRY,          /* not applied: try the next endpoint */
        OUTCOME_UNSURE,         /* sent, no answer: may have applied */
        OUTCOME_FAIL,           /* retrying would not help */
        OUTCOME_REAUTH,         /* the token expired */
        OUTCOME_V3BETA,         /* /v3 unknown here: use /v3beta */
} Outcome;

/* etcd-request.c */
void etcd_request_done(EtcdRequest *r, CURLcode cc);
/* Hands out one queued watch response; false if that ended the watch. */
bool etcd_request_deliver_watch(EtcdRequest *r);
void etcd_request_free(EtcdRequest *r);
/* Ends the request: its callback gets error and message, then it is freed. */
void etcd_request_fail(EtcdRequest *r, int error, const char *message);

/* etcd-errors.c: what a failed attempt means, and a message naming the
 * endpoint and the cause. */
Outcome etcd_classify_curl(EtcdRequest *r, CURLcode cc, int *ret_error, char **ret_message);
Outcome etcd_classify_http(EtcdRequest *r, long code, int *ret_error, char **ret_message);

int etcd_request_new(EtcdClient *c, const char *path, json_object *body, EtcdRequest **ret);
/* Queues the request; on failure frees it. */
int etcd_request_submit(EtcdRequest *r);

/* etcd-watch-check.c: the liveness check of established watches. */
/* Each watch response, before its owner sees it. */
void etcd_watch_check_note(EtcdRequest *r, const EtcdWatchResponse *w);
void etcd_watch_check_free(EtcdRequest *r);
/* A probe going away (finished or canceled). */
void etcd_watch_check_forget_probe(EtcdRequest *watch, EtcdRequest *probe);
