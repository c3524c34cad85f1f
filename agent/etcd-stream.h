/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Splits a byte stream of concatenated JSON objects ({"result":…}{"result":…})
 * into whole objects, whatever way the transport chops it up. Only tracks
 * nesting and strings; parsing the objects is the caller's job. Whitespace
 * between objects is skipped; anything else there is an error. */

#include <stdbool.h>
#include <stddef.h>

typedef struct EtcdStream {
        char *buf;           /* the object being collected */
        size_t size, allocated;
        size_t max_size;     /* an object larger than this is an error */
        unsigned depth;
        bool in_string, escaped;
        bool failed;
} EtcdStream;

/* Called with each complete object (NUL-terminated, size bytes). A negative
 * return stops the feed and is passed on. */
typedef int (*etcd_stream_object_t)(const char *object, size_t size, void *userdata);

void etcd_stream_init(EtcdStream *s, size_t max_size);
void etcd_stream_done(EtcdStream *s);
void etcd_stream_reset(EtcdStream *s);

/* Returns 0, -EBADMSG on bytes that cannot start an object, -E2BIG on an
 * oversized object, or the callback's error. After an error the stream stays
 * failed until reset. */
int etcd_stream_feed(EtcdStream *s, const char *data, size_t size, etcd_stream_object_t cb, void *userdata);

/* True when bytes of an unfinished object are buffered. */
bool etcd_stream_pending(const EtcdStream *s);
