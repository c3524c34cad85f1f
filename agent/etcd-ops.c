/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-client-internal.h"
#include "macro.h"

/* The calls: each builds its JSON body and hands it to the transport. */

static int add_int64(json_object *o, const char *member, int64_t v) {
        json_object *n = etcd_json_new_int64(v);

        if (!n || json_object_object_add(o, member, n) < 0) {
                json_object_put(n);
                return -ENOMEM;
        }
        return 0;
}

static int add_bool(json_object *o, const char *member, bool v) {
        json_object *b = json_object_new_boolean(v);

        if (!b || json_object_object_add(o, member, b) < 0) {
                json_object_put(b);
                return -ENOMEM;
        }
        return 0;
}

static int add_key(json_object *o, const char *key, bool prefix) {
        _cleanup_free_ char *end = NULL;
        size_t end_size;
        int r;

        r = etcd_json_add_base64(o, "key", key, strlen(key));
        if (r < 0 || !prefix)
                return r;
        r = etcd_prefix_range_end(key, &end, &end_size);
        if (r < 0)
                return r;
        return etcd_json_add_base64(o, "range_end", end, end_size);
}

static int submit(EtcdClient *c, const char *path, json_object *body, bool idempotent,
                  etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        EtcdRequest *r;
        int k;

        k = etcd_request_new(c, path, body, &r);
        if (k < 0)
                return k;
        r->idempotent = idempotent;
        r->callback = cb;
        r->userdata = userdata;
        if (ret)
                *ret = r;
        return etcd_request_submit(r);
}

static json_object *range_body(const char *key, bool prefix, int64_t revision) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (add_key(o, key, prefix) < 0 || (revision > 0 && add_int64(o, "revision", revision) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int etcd_range(EtcdClient *c, const char *key, bool prefix, int64_t revision,
               etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(json_object_putp) json_object *o = range_body(key, prefix, revision);

        if (!o)
                return -ENOMEM;
        return submit(c, "/kv/range", o, true, cb, userdata, ret);
}

static json_object *put_body(const char *key, const char *value, int64_t lease) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (etcd_json_add_base64(o, "key", key, strlen(key)) < 0 ||
            etcd_json_add_base64(o, "value", value, strlen(value)) < 0 ||
            (lease != 0 && add_int64(o, "lease", lease) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int etcd_put(EtcdClient *c, const char *key, const char *value, int64_t lease,
             etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(json_object_putp) json_object *o = put_body(key, value, lease);

        if (!o)
                return -ENOMEM;
        /* Putting the same value twice leaves the same state. */
        return submit(c, "/kv/put", o, true, cb, userdata, ret);
}

static json_object *delete_body(const char *key, bool prefix, bool prev_kv) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (add_key(o, key, prefix) < 0 || (prev_kv && add_bool(o, "prev_kv", true) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int etcd_delete(EtcdClient *c, const char *key, bool prefix, bool prev_kv,
                etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(json_object_putp) json_object *o = delete_body(key, prefix, prev_kv);

        if (!o)
                return -ENOMEM;
        return submit(c, "/kv/deleterange", o, true, cb, userdata, ret);
}

static int lease_call(EtcdClient *c, const char *path, const char *member, int64_t v,
                      etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || add_int64(o, member, v) < 0)
                return -ENOMEM;
        /* A second grant only leaves an unused lease behind, which expires. */
        return submit(c, path, o, true, cb, userdata, ret);
}

int etcd_lease_grant(EtcdClient *c, int64_t ttl_sec, etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        return lease_call(c, "/lease/grant", "TTL", ttl_sec, cb, userdata, ret);
}

int etcd_lease_keepalive(EtcdClient *c, int64_t id, etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        return lease_call(c, "/lease/keepalive", "ID", id, cb, userdata, ret);
}

int etcd_lease_revoke(EtcdClient *c, int64_t id, etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        return lease_call(c, "/lease/revoke", "ID", id, cb, userdata, ret);
}

int etcd_lease_timetolive(EtcdClient *c, int64_t id, etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        return lease_call(c, "/lease/timetolive", "ID", id, cb, userdata, ret);
}

int etcd_compact(EtcdClient *c, int64_t revision, etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        return lease_call(c, "/kv/compaction", "revision", revision, cb, userdata, ret);
}

int etcd_watch(EtcdClient *c, const char *key, bool prefix, int64_t start_revision, bool prev_kv,
               etcd_watch_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *create = json_object_new_object();
        EtcdRequest *r;
        int k;

        if (!o || !create || json_object_object_add(o, "create_request", create) < 0) {
                json_object_put(create);
                return -ENOMEM;
        }
        if (add_key(create, key, prefix) < 0 ||
            (start_revision > 0 && add_int64(create, "start_revision", start_revision) < 0) ||
            (prev_kv && add_bool(create, "prev_kv", true) < 0))
                return -ENOMEM;

        k = etcd_request_new(c, "/watch", o, &r);
        if (k < 0)
                return k;
        r->watch = true;
        r->idempotent = true;
        r->watch_key = strdup(key);
        if (!r->watch_key) {
                etcd_request_free(r);
                return -ENOMEM;
        }
        r->watch_prefix = prefix;
        r->watch_start = start_revision;
        r->watch_callback = cb;
        r->userdata = userdata;
        if (ret)
                *ret = r;
        return etcd_request_submit(r);
}

/* ---- transactions ---- */

struct EtcdTxn {
        json_object *compare, *success, *failure;
        char *check_key, *check_value;
        int64_t check_lease;
};

EtcdTxn *etcd_txn_free(EtcdTxn *t) {
        if (!t)
                return NULL;
        json_object_put(t->compare);
        json_object_put(t->success);
        json_object_put(t->failure);
        free(t->check_key);
        free(t->check_value);
        free(t);
        return NULL;
}

EtcdTxn *etcd_txn_new(void) {
        EtcdTxn *t = calloc(1, sizeof *t);

        if (!t)
                return NULL;
        t->compare = json_object_new_array();
        t->success = json_object_new_array();
        t->failure = json_object_new_array();
        if (!t->compare || !t->success || !t->failure)
                return etcd_txn_free(t);
        return t;
}

static const char *const target_names[] = {
        [ETCD_COMPARE_VERSION] = "VERSION",
        [ETCD_COMPARE_CREATE] = "CREATE",
        [ETCD_COMPARE_MOD] = "MOD",
        [ETCD_COMPARE_VALUE] = "VALUE",
        [ETCD_COMPARE_LEASE] = "LEASE",
};

static const char *const target_members[] = {
        [ETCD_COMPARE_VERSION] = "version",
        [ETCD_COMPARE_CREATE] = "create_revision",
        [ETCD_COMPARE_MOD] = "mod_revision",
        [ETCD_COMPARE_VALUE] = "value",
        [ETCD_COMPARE_LEASE] = "lease",
};

static const char *const result_names[] = {
        [ETCD_COMPARE_EQUAL] = "EQUAL",
        [ETCD_COMPARE_GREATER] = "GREATER",
        [ETCD_COMPARE_LESS] = "LESS",
        [ETCD_COMPARE_NOT_EQUAL] = "NOT_EQUAL",
};

static int append(json_object *array, json_object *o) {
        if (!o || json_object_array_add(array, o) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        return 0;
}

int etcd_txn_compare(EtcdTxn *t, const char *key, EtcdCompareTarget target, EtcdCompareResult result,
                     int64_t number, const char *value) {
        json_object *o;

        if ((unsigned) target >= ELEMENTSOF(target_names) || (unsigned) result >= ELEMENTSOF(result_names))
                return -EINVAL;
        if (target == ETCD_COMPARE_VALUE && !value)
                return -EINVAL;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (etcd_json_add_base64(o, "key", key, strlen(key)) < 0 ||
            json_object_object_add(o, "target", json_object_new_string(target_names[target])) < 0 ||
            json_object_object_add(o, "result", json_object_new_string(result_names[result])) < 0 ||
            (target == ETCD_COMPARE_VALUE ?
             etcd_json_add_base64(o, "value", value, strlen(value)) :
             add_int64(o, target_members[target], number)) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        return append(t->compare, o);
}

static int add_op(EtcdTxn *t, bool success, const char *op, json_object *body) {
        json_object *o = json_object_new_object();

        if (!o || !body || json_object_object_add(o, op, body) < 0) {
                json_object_put(o);
                json_object_put(body);
                return -ENOMEM;
        }
        return append(success ? t->success : t->failure, o);
}

int etcd_txn_put(EtcdTxn *t, bool success, const char *key, const char *value, int64_t lease) {
        int r;

        r = add_op(t, success, "request_put", put_body(key, value, lease));
        if (r < 0)
                return r;
        if (success && !t->check_key) {
                t->check_key = strdup(key);
                t->check_value = strdup(value);
                t->check_lease = lease;
                if (!t->check_key || !t->check_value)
                        return -ENOMEM;
        }
        return 0;
}

int etcd_txn_delete(EtcdTxn *t, bool success, const char *key, bool prefix) {
        return add_op(t, success, "request_delete_range", delete_body(key, prefix, false));
}

int etcd_txn_range(EtcdTxn *t, bool success, const char *key, bool prefix) {
        return add_op(t, success, "request_range", range_body(key, prefix, 0));
}

static json_object *txn_body(const EtcdTxn *t) {
        json_object *o = json_object_new_object();

        if (!o ||
            json_object_object_add(o, "compare", json_object_get(t->compare)) < 0 ||
            json_object_object_add(o, "success", json_object_get(t->success)) < 0 ||
            json_object_object_add(o, "failure", json_object_get(t->failure)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int etcd_txn_to_json(const EtcdTxn *t, char **ret) {
        _cleanup_(json_object_putp) json_object *o = txn_body(t);

        if (!o)
                return -ENOMEM;
        *ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return *ret ? 0 : -ENOMEM;
}

int etcd_txn_commit(EtcdClient *c, const EtcdTxn *t, etcd_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(json_object_putp) json_object *o = txn_body(t);
        EtcdRequest *r;
        int k;

        if (!o)
                return -ENOMEM;

        k = etcd_request_new(c, "/kv/txn", o, &r);
        if (k < 0)
                return k;
        /* A txn without compares or puts is safe to send again. */
        r->idempotent = json_object_array_length(t->compare) == 0 && !t->check_key &&
                        json_object_array_length(t->failure) == 0;
        if (t->check_key) {
                r->check_key = strdup(t->check_key);
                r->check_value = strdup(t->check_value);
                r->check_lease = t->check_lease;
                if (!r->check_key || !r->check_value) {
                        etcd_request_cancel(r);
                        return -ENOMEM;
                }
        }
        r->callback = cb;
        r->userdata = userdata;
        if (ret)
                *ret = r;
        return etcd_request_submit(r);
}
