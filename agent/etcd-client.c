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

#define RESPONSE_MAX (64U * 1024U * 1024U)
#define WATCH_OBJECT_MAX (16U * 1024U * 1024U)

struct EtcdClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
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

static void request_attempt(EtcdRequest *r);
static void request_free(EtcdRequest *r);

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

/* ---- finishing requests ---- */

static void request_finish(EtcdRequest *r, int error, const char *message, const EtcdResult *result) {
        EtcdClient *c = r->client;

        r->in_callback = true;
        if (r->internal_callback)
                r->internal_callback(r, error, message, result);
        else if (r->watch && r->watch_callback)
                r->watch_callback(c, error, message, NULL, r->userdata);
        else if (r->callback)
                r->callback(c, error, message, result, r->userdata);
        request_free(r);
}

static void request_failf(EtcdRequest *r, int error, const char *format, ...) _printf_(3, 4);
static void request_failf(EtcdRequest *r, int error, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        request_finish(r, error, m ? m : "out of memory", NULL);
}

/* Delivers one queued watch response. Returns false if that ended the watch
 * (the request is freed then). */
static bool watch_deliver_one(EtcdRequest *r) {
        EtcdWatchResponse w = {};
        json_object *o = r->pending[0];
        int k;

        memmove(r->pending, r->pending + 1, (r->n_pending - 1) * sizeof *r->pending);
        r->n_pending--;

        k = etcd_watch_response_from_json(o, &w);
        json_object_put(o);
        if (k < 0) {
                request_failf(r, -EBADMSG, "%s: malformed watch response", r->client->endpoints[r->endpoint]);
                return false;
        }
        r->streaming = true;
        r->in_callback = true;
        r->watch_callback(r->client, 0, NULL, &w, r->userdata);
        r->in_callback = false;
        if (w.canceled || r->canceled) {
                etcd_watch_response_done(&w);
                request_free(r);
                return false;
        }
        etcd_watch_response_done(&w);
        return true;
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
                (void) watch_deliver_one(r);
        }
}

/* ---- attempts and retries ---- */

static void note_endpoint(EtcdClient *c, unsigned i, const char *failure) {
        if (failure && !c->failing[i])
                log_warning("etcd %s", failure);
        else if (failure)
                log_debug("etcd %s", failure);
        else if (c->failing[i])
                log_notice("etcd endpoint %s answers again", c->endpoints[i]);
        c->failing[i] = failure != NULL;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        EtcdRequest *r = userdata;

        r->retry_source = sd_event_source_disable_unref(r->retry_source);
        request_attempt(r);
        return 0;
}

/* Move on to the next endpoint, or wait before another round. */
static void request_retry(EtcdRequest *r) {
        EtcdClient *c = r->client;
        uint64_t now;

        if (c->current == r->endpoint)
                c->current = (r->endpoint + 1) % c->n_endpoints;

        if (++r->tried < c->n_endpoints) {
                request_attempt(r);
                return;
        }
        r->tried = 0;
        r->rounds++;
        if (c->max_rounds > 0 && r->rounds >= c->max_rounds) {
                request_finish(r, -EHOSTUNREACH, r->last_error ? r->last_error : "etcd unreachable", NULL);
                return;
        }
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0 ||
            sd_event_add_time(c->event, &r->retry_source, CLOCK_MONOTONIC,
                              now + backoff_next(&r->backoff), USEC_PER_MSEC, on_retry, r) < 0)
                request_finish(r, -ENOMEM, "cannot schedule a retry", NULL);
}

static void start_auth(EtcdClient *c);

static int on_watch_object(const char *text, size_t size, void *userdata) {
        EtcdRequest *r = userdata;
        json_object *o, **p;

        o = etcd_json_parse_first(text, size);
        if (!o)
                return -EBADMSG;
        r->silent_timer = sd_event_source_disable_unref(r->silent_timer);
        p = realloc(r->pending, (r->n_pending + 1) * sizeof *p);
        if (!p) {
                json_object_put(o);
                return -ENOMEM;
        }
        r->pending = p;
        r->pending[r->n_pending++] = o;
        return 0;
}

/* Called by curl: only collect here. Callbacks run later, from on_dispatch or
 * process_done, where they may start new requests. */
static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata) {
        EtcdRequest *r = userdata;
        size_t n = size * nmemb;
        long code = 0;
        char *p;

        (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        if (r->watch && code == 200) {
                if (etcd_stream_feed(&r->stream, data, n, on_watch_object, r) < 0)
                        return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
                if (r->n_pending > 0)
                        (void) sd_event_source_set_enabled(r->client->dispatch, SD_EVENT_ONESHOT);
                return n;
        }

        if (r->response_size + n + 1 > RESPONSE_MAX)
                return 0;
        p = realloc(r->response, r->response_size + n + 1);
        if (!p)
                return 0;
        memcpy(p + r->response_size, data, n);
        r->response_size += n;
        p[r->response_size] = 0;
        r->response = p;
        return n;
}

static int setup_easy(EtcdRequest *r) {
        EtcdClient *c = r->client;
        _cleanup_free_ char *url = NULL, *auth = NULL;
        CURL *e;

        if (asprintf(&url, "%s%s%s", c->endpoints[r->endpoint], c->v3beta[r->endpoint] ? "/v3beta" : "/v3", r->path) < 0)
                return -ENOMEM;

        e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        r->easy = e;
        r->headers = curl_slist_append(NULL, "Content-Type: application/json");
        r->headers = curl_slist_append(r->headers, "Expect:");
        if (c->token && !r->auth) {
                if (asprintf(&auth, "Authorization: %s", c->token) < 0)
                        return -ENOMEM;
                r->headers = curl_slist_append(r->headers, auth);
        }
        if (!r->headers)
                return -ENOMEM;

        r->errbuf[0] = 0;
        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, r->body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) (c->connect_timeout_usec / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->watch ? 0L : (long) (c->request_timeout_usec / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK)
                return -EINVAL;
        if (c->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) != CURLE_OK)
                return -EINVAL;
        if (c->cert_file && curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file) != CURLE_OK)
                return -EINVAL;
        if (c->key_file && curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file) != CURLE_OK)
                return -EINVAL;
        return 0;
}

static void request_reset_transfer(EtcdRequest *r) {
        if (r->easy) {
                curl_multi_remove_handle(r->client->multi, r->easy);
                curl_easy_cleanup(r->easy);
                r->easy = NULL;
        }
        r->silent_timer = sd_event_source_disable_unref(r->silent_timer);
        curl_slist_free_all(r->headers);
        r->headers = NULL;
        free(r->response);
        r->response = NULL;
        r->response_size = 0;
        etcd_stream_reset(&r->stream);
}

/* A watch has no overall timeout (it is a stream), but etcd answers its
 * creation at once: an endpoint that accepts a watch and stays silent (a
 * hung member or proxy) would otherwise hold it forever. */
static int on_watch_silent(sd_event_source *s, uint64_t usec, void *userdata) {
        EtcdRequest *r = userdata;
        EtcdClient *c = r->client;
        char *m = NULL;

        if (asprintf(&m, "%s: watch not answered within %" PRIu64 " ms", c->endpoints[r->endpoint],
                     (uint64_t) (c->request_timeout_usec / USEC_PER_MSEC)) < 0)
                m = NULL;
        note_endpoint(c, r->endpoint, m ? m : "watch not answered");
        free(r->last_error);
        r->last_error = m;
        request_reset_transfer(r);
        request_retry(r);
        return 0;
}

static void request_attempt(EtcdRequest *r) {
        EtcdClient *c = r->client;
        int k;

        request_reset_transfer(r);
        r->endpoint = c->current;

        if (c->username && !c->token && !r->auth) {
                r->waiting_auth = true;
                start_auth(c);
                return;
        }

        k = setup_easy(r);
        if (k >= 0 && curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
                k = -EIO;
        if (k >= 0 && r->watch) {
                uint64_t now;

                k = sd_event_now(c->event, CLOCK_MONOTONIC, &now);
                if (k >= 0)
                        k = sd_event_add_time(c->event, &r->silent_timer, CLOCK_MONOTONIC,
                                              now + c->request_timeout_usec, USEC_PER_MSEC, on_watch_silent, r);
        }
        if (k < 0) {
                request_failf(r, k, "%s: cannot set up the request", c->endpoints[r->endpoint]);
                return;
        }
        c->attempts++;
}

static Outcome classify_curl(EtcdRequest *r, CURLcode cc, int *ret_error, char **ret_message) {
        const char *ep = r->client->endpoints[r->endpoint];
        const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
        curl_off_t sent = 0;
        long os_errno = 0;
        Outcome o;
        int k;

        (void) curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
        (void) curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &sent);
        /* Nothing of the body left us: etcd cannot have acted on it. */
        o = sent > 0 ? OUTCOME_UNSURE : OUTCOME_RETRY;

        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
                *ret_error = os_errno > 0 ? -(int) os_errno : -ECONNREFUSED;
                k = asprintf(ret_message, "%s: %s (%s)", ep,
                             os_errno == ECONNREFUSED ? "connection refused" : "cannot connect", detail);
                o = OUTCOME_RETRY;
                break;
        case CURLE_PEER_FAILED_VERIFICATION:
                *ret_error = -EPROTO;
                k = asprintf(ret_message, "%s: TLS verification failed: %s", ep, detail);
                o = OUTCOME_RETRY;
                break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ENGINE_NOTFOUND:
                *ret_error = -EPROTO;
                k = asprintf(ret_message, "%s: TLS handshake failed: %s", ep, detail);
                o = OUTCOME_RETRY;
                break;
        case CURLE_OPERATION_TIMEDOUT:
                *ret_error = -ETIMEDOUT;
                k = asprintf(ret_message, "%s: timeout: %s", ep, detail);
                break;
        default:
                *ret_error = -ECONNRESET;
                k = asprintf(ret_message, "%s: %s", ep, detail);
                break;
        }
        if (k < 0)
                *ret_message = NULL;
        return o;
}

static Outcome classify_http(EtcdRequest *r, long code, int *ret_error, char **ret_message) {
        EtcdClient *c = r->client;
        const char *ep = c->endpoints[r->endpoint], *message = NULL;
        json_object *o;
        Outcome out;
        int grpc = 0, k;

        o = r->response ? etcd_json_parse_first(r->response, r->response_size) : NULL;
        if (!o || etcd_json_error(o, &message, &grpc) < 0) {
                if (o)
                        json_object_put(o);
                if (code == 404 && !c->v3beta[r->endpoint])
                        return OUTCOME_V3BETA;
                *ret_error = code >= 500 ? -EAGAIN : -EIO;
                if (asprintf(ret_message, "%s: HTTP %ld", ep, code) < 0)
                        *ret_message = NULL;
                /* A proxy's 5xx: the request may have gone through. */
                return code >= 500 ? OUTCOME_UNSURE : OUTCOME_FAIL;
        }

        out = OUTCOME_FAIL;
        if (strstr(message, "invalid auth token") || strstr(message, "auth token is expired")) {
                *ret_error = -EACCES;
                out = r->auth_retried || r->auth ? OUTCOME_FAIL : OUTCOME_REAUTH;
        } else if (strstr(message, "authentication failed")) {
                *ret_error = -EACCES;
        } else
                switch (grpc) {
                case 5:         /* NotFound */
                        *ret_error = -ENOENT;
                        break;
                case 7:         /* PermissionDenied */
                        *ret_error = -EPERM;
                        break;
                case 16:        /* Unauthenticated */
                        *ret_error = -EACCES;
                        break;
                case 11:        /* OutOfRange: compacted */
                        *ret_error = -ESTALE;
                        break;
                case 3:         /* InvalidArgument */
                        *ret_error = -EINVAL;
                        break;
                case 4:         /* DeadlineExceeded, e.g. "request timed out" */
                case 14:        /* Unavailable, e.g. "no leader" */
                        *ret_error = -EAGAIN;
                        out = OUTCOME_UNSURE;
                        break;
                default:
                        *ret_error = -EIO;
                        break;
                }

        k = asprintf(ret_message, "%s: HTTP %ld: %s", ep, code, message);
        if (k < 0)
                *ret_message = NULL;
        json_object_put(o);
        return out;
}

static void start_check(EtcdRequest *t);

static void request_done(EtcdRequest *r, CURLcode cc) {
        EtcdClient *c = r->client;
        _cleanup_free_ char *message = NULL;
        EtcdResult result = {};
        Outcome o = OUTCOME_OK;
        json_object *j;
        long code = 0;
        int error = 0, k;

        if (r->watch) {
                while (r->n_pending > 0)
                        if (!watch_deliver_one(r))
                                return;
                if (r->streaming) {
                        /* The owner resumes from the last revision it saw. */
                        if (cc != CURLE_OK)
                                (void) classify_curl(r, cc, &error, &message);
                        request_failf(r, -ECONNRESET, "%s: watch stream ended%s%s", c->endpoints[r->endpoint],
                                      message ? ": " : "", message ? message : "");
                        return;
                }
        }

        if (cc != CURLE_OK)
                o = classify_curl(r, cc, &error, &message);
        else {
                (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
                if (code != 200)
                        o = classify_http(r, code, &error, &message);
                else if (r->watch) {
                        error = -ECONNRESET;
                        if (asprintf(&message, "%s: watch stream closed before it started", c->endpoints[r->endpoint]) < 0)
                                message = NULL;
                        o = OUTCOME_RETRY;
                }
        }

        if (o == OUTCOME_OK) {
                j = etcd_json_parse_first(r->response ? r->response : "", r->response_size);
                k = etcd_result_from_json(j, &result);
                if (j)
                        json_object_put(j);
                if (k < 0) {
                        /* Not etcd's answer (a broken proxy or server): another
                         * endpoint may do better. A write may have applied. */
                        error = -EBADMSG;
                        if (asprintf(&message, "%s: malformed response to %s", c->endpoints[r->endpoint], r->path) < 0)
                                message = NULL;
                        o = OUTCOME_UNSURE;
                }
        }

        switch (o) {
        case OUTCOME_OK:
                note_endpoint(c, r->endpoint, NULL);
                request_finish(r, 0, NULL, &result);
                etcd_result_done(&result);
                return;

        case OUTCOME_FAIL:
                note_endpoint(c, r->endpoint, NULL);
                request_finish(r, error, message ? message : "request failed", NULL);
                return;

        case OUTCOME_REAUTH:
                log_debug("etcd token expired, authenticating again");
                r->auth_retried = true;
                free(c->token);
                c->token = NULL;
                request_attempt(r);
                return;

        case OUTCOME_V3BETA:
                log_info("etcd %s has no /v3 API, using /v3beta", c->endpoints[r->endpoint]);
                c->v3beta[r->endpoint] = true;
                request_attempt(r);
                return;

        case OUTCOME_RETRY:
        case OUTCOME_UNSURE:
                note_endpoint(c, r->endpoint, message ? message : "request failed");
                free(r->last_error);
                r->last_error = TAKE_PTR(message);
                if (o == OUTCOME_RETRY || r->idempotent)
                        request_retry(r);
                else if (r->check_key) {
                        if (c->current == r->endpoint)
                                c->current = (r->endpoint + 1) % c->n_endpoints;
                        start_check(r);
                } else
                        request_failf(r, -EIO, "outcome unknown: %s", r->last_error ? r->last_error : "?");
                return;
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
                        request_done(r, cc);
        }
}

/* ---- txn read-back ---- */

static void on_check_done(EtcdRequest *chk, int error, const char *message, const EtcdResult *res) {
        EtcdRequest *t = chk->owner;

        if (!t)
                return;
        t->check = NULL;
        if (error < 0) {
                request_failf(t, error, "txn outcome unknown (%s), reading it back failed: %s",
                              t->last_error ? t->last_error : "?", message);
                return;
        }
        if (res->n_kvs == 1 && streq(res->kvs[0].value, t->check_value) && res->kvs[0].lease == t->check_lease) {
                EtcdResult ok = { .revision = res->kvs[0].mod_revision, .succeeded = true };

                log_debug("etcd txn on %s had applied before the connection failed", t->check_key);
                request_finish(t, 0, NULL, &ok);
                return;
        }
        log_debug("etcd txn on %s had not applied, sending it again", t->check_key);
        request_attempt(t);
}

static void start_check(EtcdRequest *t) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        EtcdRequest *chk;
        int k;

        k = body ? etcd_json_add_base64(body, "key", t->check_key, strlen(t->check_key)) : -ENOMEM;
        if (k >= 0)
                k = etcd_request_new(t->client, "/kv/range", body, &chk);
        if (k < 0) {
                request_failf(t, k, "txn outcome unknown: %s", t->last_error ? t->last_error : "?");
                return;
        }
        chk->idempotent = true;
        chk->internal_callback = on_check_done;
        chk->owner = t;
        t->check = chk;
        (void) etcd_request_submit(chk);
}

/* ---- authentication ---- */

static void on_auth_done(EtcdRequest *a, int error, const char *message, const EtcdResult *res) {
        EtcdClient *c = a->client;
        EtcdRequest *r;

        c->auth_request = NULL;
        if (error >= 0 && res->token) {
                free(c->token);
                c->token = strdup(res->token);
                if (c->token) {
                        for (;;) {
                                for (r = c->requests; r; r = r->next)
                                        if (r->waiting_auth)
                                                break;
                                if (!r)
                                        return;
                                r->waiting_auth = false;
                                request_attempt(r);
                        }
                }
                error = -ENOMEM;
                message = "out of memory";
        }
        for (;;) {
                for (r = c->requests; r; r = r->next)
                        if (r->waiting_auth)
                                break;
                if (!r)
                        return;
                r->waiting_auth = false;
                request_failf(r, error < 0 ? error : -EACCES, "authentication as %s failed: %s",
                              c->username, message ? message : "no token");
        }
}

static void start_auth(EtcdClient *c) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        EtcdRequest *a;
        int k;

        if (c->auth_request)
                return;
        body = json_object_new_object();
        if (!body ||
            json_object_object_add(body, "name", json_object_new_string(c->username)) < 0 ||
            json_object_object_add(body, "password", json_object_new_string(c->password ? c->password : "")) < 0)
                k = -ENOMEM;
        else
                k = etcd_request_new(c, "/auth/authenticate", body, &a);
        if (k < 0) {
                log_error_errno(k, "Failed to set up etcd authentication: %m");
                return;
        }
        a->auth = true;
        a->idempotent = true;
        a->internal_callback = on_auth_done;
        c->auth_request = a;
        (void) etcd_request_submit(a);
}

/* ---- requests ---- */

int etcd_request_new(EtcdClient *c, const char *path, json_object *body, EtcdRequest **ret) {
        EtcdRequest *r;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->client = c;
        r->path = strdup(path);
        r->body = strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
        if (!r->path || !r->body) {
                free(r->path);
                free(r->body);
                free(r);
                return -ENOMEM;
        }
        etcd_stream_init(&r->stream, WATCH_OBJECT_MAX);
        backoff_init(&r->backoff, c->backoff_min_usec, c->backoff_max_usec);
        r->next = c->requests;
        if (c->requests)
                c->requests->prev = r;
        c->requests = r;
        *ret = r;
        return 0;
}

int etcd_request_submit(EtcdRequest *r) {
        request_attempt(r);
        return 0;
}

static void request_free(EtcdRequest *r) {
        EtcdClient *c = r->client;

        if (r->check) {
                r->check->owner = NULL;
                request_free(r->check);
        }
        if (c->auth_request == r)
                c->auth_request = NULL;
        request_reset_transfer(r);
        sd_event_source_disable_unref(r->retry_source);

        if (r->prev)
                r->prev->next = r->next;
        else
                c->requests = r->next;
        if (r->next)
                r->next->prev = r->prev;

        etcd_stream_done(&r->stream);
        for (size_t i = 0; i < r->n_pending; i++)
                json_object_put(r->pending[i]);
        free(r->pending);
        free(r->path);
        free(r->body);
        free(r->check_key);
        free(r->check_value);
        free(r->last_error);
        free(r);
}

void etcd_request_cancel(EtcdRequest *r) {
        if (!r)
                return;
        if (r->in_callback) {
                r->canceled = true;
                return;
        }
        if (r->owner)
                r->owner->check = NULL;
        request_free(r);
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
                request_free(c->requests);
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
