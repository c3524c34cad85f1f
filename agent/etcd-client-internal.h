/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between etcd-client.c (transport, retries, auth) and etcd-ops.c
 * (the calls and their JSON bodies). */

#include <curl/curl.h>

#include "backoff.h"
#include "etcd-client.h"
#include "etcd-stream.h"

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

        etcd_callback_t callback;
        etcd_watch_callback_t watch_callback;
        void (*internal_callback)(EtcdRequest *self, int error, const char *message, const EtcdResult *result);
        EtcdRequest *owner;         /* the txn a read-back belongs to */
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
        char *last_error;
};

int etcd_request_new(EtcdClient *c, const char *path, json_object *body, EtcdRequest **ret);
/* Queues the request; on failure frees it. */
int etcd_request_submit(EtcdRequest *r);
