/* SPDX-License-Identifier: Apache-2.0 */
/* A watch stream: concatenated JSON objects cut at arbitrary points. The
 * first byte chooses the chunk size, so that objects straddle feeds. Every
 * object handed out must be a JSON object, and feeding the same bytes at
 * once must hand out the same objects. */
#include "etcd-json.h"
#include "etcd-stream.h"
#include "fuzz.h"

#define OBJECT_MAX 4096

typedef struct collected {
        size_t n;
        size_t total;
        uint64_t hash;
} collected;

static int on_object(json_object *o, void *userdata) {
        collected *c = userdata;
        EtcdWatchResponse w = {};
        const char *text;
        size_t size;

        fuzz_check(json_object_is_type(o, json_type_object));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size = strlen(text);
        c->n++;
        c->total += size;
        for (size_t i = 0; i < size; i++)
                c->hash = (c->hash ^ (uint8_t) text[i]) * 1099511628211ULL;

        /* What the client does with each object. */
        if (etcd_watch_response_from_json(o, &w) >= 0)
                etcd_watch_response_done(&w);
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
