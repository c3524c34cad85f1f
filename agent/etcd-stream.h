/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Parses a byte stream of concatenated JSON objects ({"result":…}{"result":…})
 * with json-c's incremental tokener, whatever way the transport chops it up.
 * Whitespace between objects is skipped; anything else there, or a malformed
 * object, is an error. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct EtcdStream {
        json_tokener *tok;
        size_t size;         /* bytes of the object being parsed so far */
        size_t max_size;     /* an object larger than this is an error */
        bool in_object;
        bool failed;
} EtcdStream;

/* Called with each complete object, which the stream puts afterwards (take
 * a reference to keep it). A negative return stops the feed and is passed
 * on. */
typedef int (*etcd_stream_object_handler_t)(json_object *object, void *userdata);

void etcd_stream_init(EtcdStream *s, size_t max_size);
void etcd_stream_done(EtcdStream *s);
void etcd_stream_reset(EtcdStream *s);

/* Returns 0, -EBADMSG on bytes that cannot start an object or a malformed
 * object, -E2BIG on an oversized one, -ENOMEM, or the callback's error.
 * After an error the stream stays failed until reset. */
int etcd_stream_feed(EtcdStream *s, const char *data, size_t size, etcd_stream_object_handler_t cb, void *userdata);

/* True when bytes of an unfinished object are buffered. */
bool etcd_stream_pending(const EtcdStream *s);
