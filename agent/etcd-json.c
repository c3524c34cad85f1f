/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "etcd-json.h"
#include "macro.h"

int etcd_json_parse_int64(const char *s, int64_t *ret) {
        char *end;
        long long v;

        if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
                return -EBADMSG;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != 0)
                return -EBADMSG;
        *ret = (int64_t) v;
        return 0;
}

int etcd_json_get_int64(json_object *o, const char *member, int64_t *ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, member, &v) || json_object_is_type(v, json_type_null)) {
                *ret = 0;
                return 0;
        }
        if (json_object_is_type(v, json_type_string))
                return etcd_json_parse_int64(json_object_get_string(v), ret);
        if (json_object_is_type(v, json_type_int)) {
                /* json-c keeps integers as int64 (or uint64 above INT64_MAX, which
                 * no etcd field may hold). */
                if (json_object_get_int64(v) == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX)
                        return -EBADMSG;
                *ret = json_object_get_int64(v);
                return 0;
        }
        return -EBADMSG;
}

static bool json_get_bool(json_object *o, const char *member) {
        json_object *v;

        if (!json_object_object_get_ex(o, member, &v))
                return false;
        return json_object_get_boolean(v);
}

json_object *etcd_json_new_int64(int64_t v) {
        char buf[32];

        snprintf(buf, sizeof buf, "%" PRId64, v);
        return json_object_new_string(buf);
}

int etcd_json_add_base64(json_object *o, const char *member, const void *data, size_t size) {
        _cleanup_free_ char *b = NULL;
        json_object *s;

        if (base64_encode(data, size, &b) < 0)
                return -ENOMEM;
        s = json_object_new_string(b);
        if (!s)
                return -ENOMEM;
        if (json_object_object_add(o, member, s) < 0) {
                json_object_put(s);
                return -ENOMEM;
        }
        return 0;
}

void etcd_kv_done(EtcdKv *kv) {
        free(kv->key);
        free(kv->value);
        *kv = (EtcdKv) {};
}

int etcd_kv_copy(EtcdKv *dst, const EtcdKv *src) {
        *dst = *src;
        dst->key = strdup(src->key ? src->key : "");
        dst->value = malloc(src->value_size + 1);
        if (!dst->key || !dst->value) {
                etcd_kv_done(dst);
                return -ENOMEM;
        }
        if (src->value_size > 0)
                memcpy(dst->value, src->value, src->value_size);
        dst->value[src->value_size] = 0;
        return 0;
}

static int decode_member(json_object *o, const char *member, char **ret, size_t *ret_size) {
        json_object *v;
        void *p;
        int r;

        if (!json_object_object_get_ex(o, member, &v)) {
                /* An empty value is left out. */
                *ret = strdup("");
                if (ret_size)
                        *ret_size = 0;
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        r = base64_decode(json_object_get_string(v), &p, ret_size);
        if (r == -EINVAL)
                return -EBADMSG;
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

int etcd_kv_from_json(json_object *o, EtcdKv *ret) {
        EtcdKv kv = {};
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        r = decode_member(o, "key", &kv.key, NULL);
        if (r >= 0)
                r = decode_member(o, "value", &kv.value, &kv.value_size);
        if (r >= 0)
                r = etcd_json_get_int64(o, "create_revision", &kv.create_revision);
        if (r >= 0)
                r = etcd_json_get_int64(o, "mod_revision", &kv.mod_revision);
        if (r >= 0)
                r = etcd_json_get_int64(o, "version", &kv.version);
        if (r >= 0)
                r = etcd_json_get_int64(o, "lease", &kv.lease);
        if (r < 0) {
                etcd_kv_done(&kv);
                return r;
        }
        *ret = kv;
        return 0;
}

static int kvs_from_json(json_object *o, const char *member, EtcdKv **ret, size_t *ret_n) {
        json_object *a;
        size_t n;
        EtcdKv *kvs;

        *ret = NULL;
        *ret_n = 0;
        if (!json_object_object_get_ex(o, member, &a))
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(a);
        if (n == 0)
                return 0;
        kvs = calloc(n, sizeof *kvs);
        if (!kvs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = etcd_kv_from_json(json_object_array_get_idx(a, i), &kvs[i]);
                if (r < 0) {
                        for (size_t k = 0; k < i; k++)
                                etcd_kv_done(&kvs[k]);
                        free(kvs);
                        return r;
                }
        }
        *ret = kvs;
        *ret_n = n;
        return 0;
}

static int header_revision(json_object *o, int64_t *ret) {
        json_object *h;

        if (!json_object_object_get_ex(o, "header", &h)) {
                *ret = 0;
                return 0;
        }
        return etcd_json_get_int64(h, "revision", ret);
}

static json_object *unwrap_result(json_object *o) {
        json_object *inner;

        if (json_object_object_get_ex(o, "result", &inner) && json_object_is_type(inner, json_type_object))
                return inner;
        return o;
}

void etcd_result_done(EtcdResult *r) {
        for (size_t i = 0; i < r->n_kvs; i++)
                etcd_kv_done(&r->kvs[i]);
        for (size_t i = 0; i < r->n_prev_kvs; i++)
                etcd_kv_done(&r->prev_kvs[i]);
        free(r->kvs);
        free(r->prev_kvs);
        free(r->token);
        *r = (EtcdResult) {};
}

int etcd_result_from_json(json_object *o, EtcdResult *ret) {
        EtcdResult res = {};
        json_object *range = o, *responses, *tok;
        int r;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        o = unwrap_result(o);
        range = o;

        res.succeeded = json_get_bool(o, "succeeded");
        res.more = json_get_bool(o, "more");

        /* A txn: take the first range response of the branch that ran. */
        if (json_object_object_get_ex(o, "responses", &responses) &&
            json_object_is_type(responses, json_type_array)) {
                range = NULL;
                for (size_t i = 0; i < json_object_array_length(responses); i++) {
                        json_object *op = json_object_array_get_idx(responses, i), *rr;

                        if (json_object_object_get_ex(op, "response_range", &rr)) {
                                range = rr;
                                break;
                        }
                }
        }

        r = header_revision(o, &res.revision);
        if (r >= 0 && range) {
                r = kvs_from_json(range, "kvs", &res.kvs, &res.n_kvs);
                if (r >= 0)
                        r = etcd_json_get_int64(range, "count", &res.count);
                if (range != o)
                        res.more = json_get_bool(range, "more");
        }
        if (r >= 0)
                r = kvs_from_json(o, "prev_kvs", &res.prev_kvs, &res.n_prev_kvs);
        if (r >= 0)
                r = etcd_json_get_int64(o, "deleted", &res.deleted);
        if (r >= 0)
                r = etcd_json_get_int64(o, "ID", &res.lease_id);
        if (r >= 0)
                r = etcd_json_get_int64(o, "TTL", &res.ttl);
        if (r >= 0)
                r = etcd_json_get_int64(o, "grantedTTL", &res.granted_ttl);
        /* JSON null comes back as a NULL object: check types, never assume. */
        if (r >= 0 && json_object_object_get_ex(o, "token", &tok)) {
                if (!json_object_is_type(tok, json_type_string))
                        r = -EBADMSG;
                else if (!(res.token = strdup(json_object_get_string(tok))))
                        r = -ENOMEM;
        }
        if (r < 0) {
                etcd_result_done(&res);
                return r;
        }
        *ret = res;
        return 0;
}

void etcd_watch_response_done(EtcdWatchResponse *r) {
        for (size_t i = 0; i < r->n_events; i++) {
                etcd_kv_done(&r->events[i].kv);
                etcd_kv_done(&r->events[i].prev_kv);
        }
        free(r->events);
        free(r->cancel_reason);
        *r = (EtcdWatchResponse) {};
}

int etcd_watch_response_from_json(json_object *o, EtcdWatchResponse *ret) {
        EtcdWatchResponse w = {};
        json_object *events, *reason;
        int r;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        o = unwrap_result(o);

        w.created = json_get_bool(o, "created");
        w.canceled = json_get_bool(o, "canceled");
        r = header_revision(o, &w.revision);
        if (r >= 0)
                r = etcd_json_get_int64(o, "watch_id", &w.watch_id);
        if (r >= 0)
                r = etcd_json_get_int64(o, "compact_revision", &w.compact_revision);
        if (r >= 0 && json_object_object_get_ex(o, "cancel_reason", &reason) &&
            json_object_is_type(reason, json_type_string)) {
                w.cancel_reason = strdup(json_object_get_string(reason));
                if (!w.cancel_reason)
                        r = -ENOMEM;
        }
        if (r >= 0 && json_object_object_get_ex(o, "events", &events)) {
                size_t n;

                if (!json_object_is_type(events, json_type_array))
                        r = -EBADMSG;
                else if ((n = json_object_array_length(events)) > 0) {
                        w.events = calloc(n, sizeof *w.events);
                        if (!w.events)
                                r = -ENOMEM;
                        for (size_t i = 0; r >= 0 && i < n; i++) {
                                json_object *e = json_object_array_get_idx(events, i), *t, *kv, *prev;

                                w.n_events = i + 1;
                                w.events[i].type = ETCD_EVENT_PUT;
                                if (json_object_object_get_ex(e, "type", &t) &&
                                    json_object_is_type(t, json_type_string) &&
                                    streq(json_object_get_string(t), "DELETE"))
                                        w.events[i].type = ETCD_EVENT_DELETE;
                                if (!json_object_object_get_ex(e, "kv", &kv)) {
                                        r = -EBADMSG;
                                        break;
                                }
                                r = etcd_kv_from_json(kv, &w.events[i].kv);
                                if (r >= 0 && json_object_object_get_ex(e, "prev_kv", &prev)) {
                                        r = etcd_kv_from_json(prev, &w.events[i].prev_kv);
                                        w.events[i].has_prev_kv = r >= 0;
                                }
                        }
                }
        }
        if (r < 0) {
                etcd_watch_response_done(&w);
                return r;
        }
        *ret = w;
        return 0;
}

int etcd_prefix_range_end(const char *prefix, char **ret, size_t *ret_size) {
        size_t n = strlen(prefix);
        char *e;

        while (n > 0 && (unsigned char) prefix[n - 1] == 0xff)
                n--;
        if (n == 0) {
                e = calloc(1, 2);
                if (!e)
                        return -ENOMEM;
                *ret = e;
                *ret_size = 1;
                return 0;
        }
        e = strndup(prefix, n);
        if (!e)
                return -ENOMEM;
        e[n - 1] = (char) ((unsigned char) e[n - 1] + 1);
        *ret = e;
        *ret_size = n;
        return 0;
}

int etcd_json_error(json_object *o, const char **ret_message, int *ret_code) {
        json_object *m, *c;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        /* Callers match on the message: it must be a string. */
        if ((!json_object_object_get_ex(o, "error", &m) || !json_object_is_type(m, json_type_string)) &&
            (!json_object_object_get_ex(o, "message", &m) || !json_object_is_type(m, json_type_string)))
                return -EBADMSG;
        *ret_message = json_object_get_string(m);
        *ret_code = json_object_object_get_ex(o, "code", &c) ? json_object_get_int(c) : 0;
        return 0;
}

json_object *etcd_json_parse_first(const char *text, size_t size) {
        json_tokener *tok;
        json_object *o;

        /* Skip leading whitespace so the tokener starts at the object. */
        while (size > 0 && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t')) {
                text++;
                size--;
        }
        if (size == 0 || size > INT32_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, text, (int) size);
        json_tokener_free(tok);
        return o;
}
