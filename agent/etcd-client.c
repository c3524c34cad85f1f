/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-client-internal.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "values.h"

/* The client: endpoints, options, and the transfers on curl-event.c's loop. Requests themselves live in etcd-request.c. */

uint64_t etcd_client_get_attempts(EtcdClient *c) {
        return c->attempts;
}

const char *etcd_client_get_endpoint(EtcdClient *c) {
        return c->endpoints[c->current];
}

static int on_dispatch(sd_event_source *s, void *userdata) {
        EtcdClient *c = userdata;

        /* Start again from the head after each delivery: a callback may
         * cancel or start requests. */
        for (;;) {
                EtcdRequest *r;

                for (r = c->requests; r; r = r->next)
                        if (r->n_pending > 0)
                                break;
                if (!r)
                        return 0;
                (void) etcd_request_deliver_watch(r);
        }
}


/* ---- the client ---- */

char **etcd_endpoints_free(char **endpoints) {
        return strv_free(endpoints);
}

int etcd_parse_endpoints(const char *text, char ***ret) {
        _cleanup_free_ char *copy = strdup(text ? text : "");
        char **list = NULL, *state = NULL;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, ", \t", &state); w; w = strtok_r(NULL, ", \t", &state)) {
                char **l = realloc(list, (n + 2) * sizeof *l);

                if (!l) {
                        etcd_endpoints_free(list);
                        return -ENOMEM;
                }
                list = l;
                list[n] = strdup(w);
                list[n + 1] = NULL;
                if (!list[n]) {
                        etcd_endpoints_free(list);
                        return -ENOMEM;
                }
                n++;
        }
        if (n == 0)
                return -EINVAL;
        *ret = list;
        return 0;
}

static int strdup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (strempty(s))
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int etcd_client_new(sd_event *event, const EtcdClientOptions *o, EtcdClient **ret) {
        static bool curl_ready = false;
        _cleanup_(etcd_client_freep) EtcdClient *c = NULL;
        size_t n = 0;

        while (o->endpoints && o->endpoints[n])
                n++;
        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(o->endpoints[i], "http://", 7) != 0 && strncmp(o->endpoints[i], "https://", 8) != 0)
                        return -EINVAL;

        if (!curl_ready) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -EIO;
                curl_ready = true;
        }

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->n_endpoints = (unsigned) n;
        c->endpoints = calloc(n + 1, sizeof(char *));
        c->v3beta = calloc(n, sizeof(bool));
        c->failing = calloc(n, sizeof(bool));
        if (!c->endpoints || !c->v3beta || !c->failing)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(o->endpoints[i]);

                while (l > 0 && o->endpoints[i][l - 1] == '/')
                        l--;
                c->endpoints[i] = strndup(o->endpoints[i], l);
                if (!c->endpoints[i])
                        return -ENOMEM;
        }
        if (strdup_opt(o->ca_file, &c->ca_file) < 0 || strdup_opt(o->cert_file, &c->cert_file) < 0 ||
            strdup_opt(o->key_file, &c->key_file) < 0 || strdup_opt(o->username, &c->username) < 0 ||
            strdup_opt(o->password, &c->password) < 0)
                return -ENOMEM;

        c->request_timeout_usec = o->request_timeout_usec ?: 5 * USEC_PER_SEC;
        c->connect_timeout_usec = o->connect_timeout_usec ?: 2 * USEC_PER_SEC;
        c->backoff_min_usec = o->backoff_min_usec ?: 200 * USEC_PER_MSEC;
        c->backoff_max_usec = o->backoff_max_usec ?: 10 * USEC_PER_SEC;
        c->max_rounds = o->max_rounds;
        c->watch_check_usec = o->watch_check_usec ?: 60 * USEC_PER_SEC;
        c->watch_check_grace_usec = o->watch_check_grace_usec ?: 2 * USEC_PER_SEC;

        if (curl_loop_new(event, &c->curl) < 0)
                return -ENOMEM;
        if (sd_event_add_defer(event, &c->dispatch, on_dispatch, c) < 0 ||
            sd_event_source_set_enabled(c->dispatch, SD_EVENT_OFF) < 0)
                return -ENOMEM;
        (void) sd_event_source_set_description(c->dispatch, "etcd-dispatch");

        *ret = TAKE_PTR(c);
        return 0;
}

EtcdClient *etcd_client_free(EtcdClient *c) {
        if (!c)
                return NULL;
        while (c->requests)
                etcd_request_free(c->requests);
        curl_loop_free(c->curl);
        sd_event_source_disable_unref(c->dispatch);
        sd_event_unref(c->event);
        etcd_endpoints_free(c->endpoints);
        free(c->v3beta);
        free(c->failing);
        free(c->ca_file);
        free(c->cert_file);
        free(c->key_file);
        free(c->username);
        if (c->password)
                explicit_bzero(c->password, strlen(c->password));
        free(c->password);
        free(c->token);
        free(c);
        return NULL;
}

