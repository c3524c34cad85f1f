/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "etcd-client-internal.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"

/* The client: endpoints, options, and libcurl's multi interface run by
 * sd-event. Requests themselves live in etcd-request.c. */

uint64_t etcd_client_get_attempts(EtcdClient *c) {
        return c->attempts;
}

const char *etcd_client_get_endpoint(EtcdClient *c) {
        return c->endpoints[c->current];
}

/* ---- libcurl multi on sd-event ---- */

static void process_done(EtcdClient *c);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        EtcdClient *c = userdata;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        curl_multi_socket_action(c->multi, fd, action, &running);
        process_done(c);
        return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        EtcdClient *c = userp;
        sd_event_source *io = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        sd_event_source_disable_unref(io);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (io) {
                if (sd_event_source_set_io_events(io, events) < 0 ||
                    sd_event_source_set_enabled(io, SD_EVENT_ON) < 0)
                        return -1;
                return 0;
        }
        if (sd_event_add_io(c->event, &io, fd, events, on_io, c) < 0)
                return -1;
        (void) sd_event_source_set_description(io, "etcd-curl-io");
        curl_multi_assign(c->multi, fd, io);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        EtcdClient *c = userdata;
        int running;

        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        process_done(c);
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        EtcdClient *c = userp;
        uint64_t now;

        if (timeout_ms < 0)
                return c->timer ? (sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0 ? -1 : 0) : 0;

        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        now += (uint64_t) timeout_ms * USEC_PER_MSEC;
        if (c->timer) {
                if (sd_event_source_set_time(c->timer, now) < 0 ||
                    sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                        return -1;
                return 0;
        }
        if (sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, now, USEC_PER_MSEC, on_timer, c) < 0)
                return -1;
        (void) sd_event_source_set_description(c->timer, "etcd-curl-timer");
        return 0;
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


static void process_done(EtcdClient *c) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(c->multi, &left))) {
                EtcdRequest *r = NULL;
                CURLcode cc;

                if (m->msg != CURLMSG_DONE)
                        continue;
                cc = m->data.result;
                (void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
                if (r)
                        etcd_request_done(r, cc);
        }
}

/* ---- the client ---- */

void etcd_endpoints_free(char **endpoints) {
        for (size_t i = 0; endpoints && endpoints[i]; i++)
                free(endpoints[i]);
        free(endpoints);
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

int etcd_client_new(EtcdClient **ret, sd_event *event, const EtcdClientOptions *o) {
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

        c->multi = curl_multi_init();
        if (!c->multi)
                return -ENOMEM;
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
                return -EIO;
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
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
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

