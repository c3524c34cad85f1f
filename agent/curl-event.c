/* SPDX-License-Identifier: Apache-2.0 */
#include "curl-event.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "macro.h"

struct CurlLoop {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
};

typedef struct Transfer {
        curl_done_handler_t cb;
        void *userdata;
} Transfer;

static void check_done(CurlLoop *l) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(l->multi, &left))) {
                CURL *easy = m->easy_handle;
                CURLcode code = m->data.result;
                Transfer *t = NULL;

                if (m->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
                curl_multi_remove_handle(l->multi, easy);
                curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                if (t) {
                        Transfer copy = *t;
                        free(t);
                        copy.cb(easy, code, copy.userdata);
                }
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlLoop *l = userdata;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        curl_multi_socket_action(l->multi, fd, action, &running);
        check_done(l);
        return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlLoop *l = userp;
        sd_event_source *io = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        sd_event_source_disable_unref(io);
                        curl_multi_assign(l->multi, fd, NULL);
                }
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;
        if (io)
                return sd_event_source_set_io_events(io, events) < 0 ? -1 : 0;
        if (sd_event_add_io(l->event, &io, fd, events, on_io, l) < 0)
                return -1;
        curl_multi_assign(l->multi, fd, io);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlLoop *l = userdata;
        int running;

        curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(l);
        return 0;
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp) {
        CurlLoop *l = userp;
        uint64_t now;

        if (timeout_ms < 0)
                return l->timer ? (sd_event_source_set_enabled(l->timer, SD_EVENT_OFF) < 0 ? -1 : 0) : 0;
        if (sd_event_now(l->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        now += (uint64_t) timeout_ms * USEC_PER_MSEC;
        if (!l->timer)
                /* Accuracy 1 µs: curl's timeouts pace every request (0 would
                 * mean 250 ms and put each etcd round trip on that grid). */
                return sd_event_add_time(l->event, &l->timer, CLOCK_MONOTONIC, now, 1, on_timer, l) < 0 ? -1 : 0;
        if (sd_event_source_set_time(l->timer, now) < 0 ||
            sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

int curl_loop_new(sd_event *event, CurlLoop **ret) {
        _cleanup_(curl_loop_freep) CurlLoop *l = calloc(1, sizeof *l);

        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->multi = curl_multi_init();
        if (!l->multi)
                return -ENOMEM;
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
        *ret = TAKE_PTR(l);
        return 0;
}

CurlLoop *curl_loop_free(CurlLoop *l) {
        if (!l)
                return NULL;
        if (l->multi)
                curl_multi_cleanup(l->multi);
        sd_event_source_disable_unref(l->timer);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

int curl_loop_add(CurlLoop *l, CURL *easy, curl_done_handler_t cb, void *userdata) {
        Transfer *t = calloc(1, sizeof *t);

        if (!t)
                return -ENOMEM;
        *t = (Transfer) { .cb = cb, .userdata = userdata };
        curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
        if (curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
                curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
                free(t);
                return -EIO;
        }
        return 0;
}

void curl_loop_remove(CurlLoop *l, CURL *easy) {
        Transfer *t = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
        curl_multi_remove_handle(l->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(t);
}
