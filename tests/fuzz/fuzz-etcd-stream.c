/* SPDX-License-Identifier: Apache-2.0 */
/* A watch stream: concatenated JSON objects cut at arbitrary points. The
 * first byte chooses the chunk size, so that objects straddle feeds. Every
 * object handed out must be one balanced JSON object, and feeding the same
 * bytes at once must hand out the same objects. */
#include "etcd-json.h"
#include "etcd-stream.h"
#include "fuzz.h"

#define OBJECT_MAX 4096

typedef struct collected {
        size_t n;
        size_t total;
        uint64_t hash;
} collected;

static int on_object(const char *object, size_t size, void *userdata) {
        collected *c = userdata;
        json_object *o;
        EtcdWatchResponse w = {};

        fuzz_check(size > 0 && size < OBJECT_MAX && object[0] == '{' && object[size] == '\0');
        c->n++;
        c->total += size;
        for (size_t i = 0; i < size; i++)
                c->hash = (c->hash ^ (uint8_t) object[i]) * 1099511628211ULL;

        /* What the client does with each object. */
        o = etcd_json_parse_first(object, size);
        if (!o)
                return -EBADMSG;
        if (etcd_watch_response_from_json(o, &w) >= 0)
                etcd_watch_response_done(&w);
        json_object_put(o);
        return 0;
}

static int feed(const uint8_t *data, size_t size, size_t chunk, collected *c) {
        EtcdStream s;
        int r = 0;

        etcd_stream_init(&s, OBJECT_MAX);
        for (size_t off = 0; off < size && r >= 0; off += chunk)
                r = etcd_stream_feed(&s, (const char *) data + off, size - off < chunk ? size - off : chunk,
                                     on_object, c);
        /* Once failed, it stays failed. */
        if (r < 0)
                fuzz_check(etcd_stream_feed(&s, "{}", 2, on_object, c) < 0);
        etcd_stream_done(&s);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        collected a = {}, b = { .hash = 0 };
        size_t chunk;
        int ra, rb;

        if (size < 1)
                return 0;
        chunk = (size_t) data[0] % 17 + 1;
        data++;
        size--;
        ra = feed(data, size, chunk, &a);
        rb = feed(data, size, size ?: 1, &b);
        /* A parse failure in the callback may stop either run early; when
         * both ran to the end they saw the same objects. */
        if (ra >= 0 && rb >= 0)
                fuzz_check(a.n == b.n && a.total == b.total && a.hash == b.hash);
        return 0;
}
