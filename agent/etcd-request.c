/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "etcd-client-internal.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"

/* One call's life: attempts on the endpoints in order, backoff between
 * rounds, the read-back of a txn whose outcome is unknown, authentication,
 * and handing results and watch responses to the caller. */

static void request_attempt(EtcdRequest *r);

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
        etcd_request_free(r);
}

void etcd_request_fail(EtcdRequest *r, int error, const char *message) {
        request_finish(r, error, message, NULL);
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
bool etcd_request_deliver_watch(EtcdRequest *r) {
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
        etcd_watch_check_note(r, &w);
        r->in_callback = true;
        r->watch_callback(r->client, 0, NULL, &w, r->userdata);
        r->in_callback = false;
        if (w.canceled || r->canceled) {
                etcd_watch_response_done(&w);
                etcd_request_free(r);
                return false;
        }
        etcd_watch_response_done(&w);
        return true;
}

/* ---- attempts and retries ---- */

/* Logs an endpoint going bad once, and its return; repeats only at debug
 * level, so an outage does not flood the journal. */
static void note_endpoint(EtcdClient *c, unsigned i, const char *failure) {
        char f[300];

        snprintf(f, sizeof f, "COREKUBE_ETCD_ENDPOINT=%s", c->endpoints[i]);
        if (failure && !c->failing[i])
                log_event(LOG_WARNING, MID_ETCD_UNREACHABLE, FIELDS(f), "etcd %s", failure);
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
        if (r->one_round || (c->max_rounds > 0 && r->rounds >= c->max_rounds)) {
                request_finish(r, r->last_errno < 0 ? r->last_errno : -EHOSTUNREACH,
                               r->last_error ? r->last_error : "etcd unreachable", NULL);
                return;
        }
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0 ||
            sd_event_add_time(c->event, &r->retry_source, CLOCK_MONOTONIC,
                              now + backoff_next(&r->backoff), USEC_PER_MSEC, on_retry, r) < 0)
                request_finish(r, -ENOMEM, "cannot schedule a retry", NULL);
}

static void start_auth(EtcdClient *c);

static int on_watch_object(json_object *o, void *userdata) {
        EtcdRequest *r = userdata;
        json_object **p;

        r->silent_timer = sd_event_source_disable_unref(r->silent_timer);
        p = realloc(r->pending, (r->n_pending + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        r->pending = p;
        r->pending[r->n_pending++] = json_object_get(o);
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
                curl_loop_remove(r->client->curl, r->easy);
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

static void on_transfer_done(CURL *easy, CURLcode cc, void *userdata) {
        etcd_request_done(userdata, cc);
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
        if (k >= 0)
                k = curl_loop_add(c->curl, r->easy, on_transfer_done, r);
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

static void start_check(EtcdRequest *t);

void etcd_request_done(EtcdRequest *r, CURLcode cc) {
        EtcdClient *c = r->client;
        _cleanup_free_ char *message = NULL;
        EtcdResult result = {};
        Outcome o = OUTCOME_OK;
        json_object *j;
        long code = 0;
        int error = 0, k;

        if (r->watch) {
                while (r->n_pending > 0)
                        if (!etcd_request_deliver_watch(r))
                                return;
                if (r->streaming) {
                        /* The owner resumes from the last revision it saw. */
                        if (cc != CURLE_OK)
                                (void) etcd_classify_curl(r, cc, &error, &message);
                        request_failf(r, -ECONNRESET, "%s: watch stream ended%s%s", c->endpoints[r->endpoint],
                                      message ? ": " : "", message ? message : "");
                        return;
                }
        }

        if (cc != CURLE_OK)
                o = etcd_classify_curl(r, cc, &error, &message);
        else {
                (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
                if (code != 200)
                        o = etcd_classify_http(r, code, &error, &message);
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
                r->last_errno = error;
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

/* ---- txn read-back ---- */

static void on_check_done(EtcdRequest *chk, int error, const char *message, const EtcdResult *res) {
        EtcdRequest *t = chk->owner;

        if (!t)
                return;
        t->check = NULL;
        chk->owner = NULL;      /* t may be gone before chk is freed */
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

void etcd_request_free(EtcdRequest *r) {
        EtcdClient *c = r->client;

        if (r->check) {
                r->check->owner = NULL;
                etcd_request_free(r->check);
        }
        /* Whoever this one worked for must not free it again (etcd_client_free
         * frees requests in list order, helpers before their owners). */
        if (r->owner) {
                if (r->owner->check == r)
                        r->owner->check = NULL;
                etcd_watch_check_forget_probe(r->owner, r);
        }
        etcd_watch_check_free(r);
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
        free(r->watch_key);
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
        etcd_request_free(r);
}

