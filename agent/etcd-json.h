/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The JSON shapes of etcd's v3 gateway: int64 fields (sent as strings, and
 * left out when zero), base64 keys and values, and the decoded results the
 * client hands to its callers. Pure functions; no I/O. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline void json_object_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

typedef struct EtcdKv {
        char *key;
        char *value;            /* NUL-terminated; value_size bytes */
        size_t value_size;
        int64_t create_revision;
        int64_t mod_revision;
        int64_t version;
        int64_t lease;
} EtcdKv;

typedef struct EtcdResult {
        int64_t revision;       /* header.revision */
        /* range; for a txn the kvs of its first range operation */
        EtcdKv *kvs;
        size_t n_kvs;
        int64_t count;
        bool more;
        /* txn */
        bool succeeded;
        /* deleterange */
        int64_t deleted;
        EtcdKv *prev_kvs;
        size_t n_prev_kvs;
        /* lease grant/keepalive/timetolive: TTL <= 0 means the lease is gone */
        int64_t lease_id;
        int64_t ttl;
        int64_t granted_ttl;
        /* auth */
        char *token;
} EtcdResult;

typedef enum EtcdEventType {
        ETCD_EVENT_PUT,
        ETCD_EVENT_DELETE,
} EtcdEventType;

typedef struct EtcdEvent {
        EtcdEventType type;
        EtcdKv kv;
        EtcdKv prev_kv;
        bool has_prev_kv;
} EtcdEvent;

typedef struct EtcdWatchResponse {
        int64_t revision;
        int64_t watch_id;
        bool created;
        bool canceled;
        int64_t compact_revision;   /* > 0: the requested revision was compacted away */
        char *cancel_reason;
        EtcdEvent *events;
        size_t n_events;
} EtcdWatchResponse;

/* Reads an int64 member given as a string or a JSON integer. An absent
 * member is 0 (proto3 leaves zero values out). Never goes through double.
 * Returns 0 or -EBADMSG. */
int etcd_json_get_int64(json_object *o, const char *member, int64_t *ret);
int etcd_json_parse_int64(const char *s, int64_t *ret);
/* etcd's preferred form: a JSON string holding the decimal number. */
json_object *etcd_json_new_int64(int64_t v);
/* Adds member = base64(data). Returns 0 or -ENOMEM. */
int etcd_json_add_base64(json_object *o, const char *member, const void *data, size_t size);

int etcd_kv_from_json(json_object *o, EtcdKv *ret);
void etcd_kv_done(EtcdKv *kv);
int etcd_kv_copy(EtcdKv *dst, const EtcdKv *src);

/* Decodes a unary response body (range, put, txn, deleterange, lease,
 * auth). A body wrapped in {"result":…} (streamed endpoints) is unwrapped. */
int etcd_result_from_json(json_object *o, EtcdResult *ret);
void etcd_result_done(EtcdResult *r);

int etcd_watch_response_from_json(json_object *o, EtcdWatchResponse *ret);
void etcd_watch_response_done(EtcdWatchResponse *r);

/* The end of a prefix range: the prefix with its last byte incremented
 * (trailing 0xff bytes dropped); "\0" (all keys) if none is left. */
int etcd_prefix_range_end(const char *prefix, char **ret, size_t *ret_size);

/* Parses the body of an error reply, {"error":…,"code":N,"message":…}.
 * Returns 0 and the message (may be NULL) and gRPC code, or -EBADMSG. */
int etcd_json_error(json_object *o, const char **ret_message, int *ret_code);

/* Parses the first JSON object of text, ignoring what follows it (the 3.4
 * gateway appends gRPC trailers to error bodies). NULL if there is none. */
json_object *etcd_json_parse_first(const char *text, size_t size);
