/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>

#include "etcd-stream.h"

void etcd_stream_init(EtcdStream *s, size_t max_size) {
        *s = (EtcdStream) { .max_size = max_size < INT_MAX ? max_size : INT_MAX };
}

void etcd_stream_reset(EtcdStream *s) {
        if (s->tok)
                json_tokener_reset(s->tok);
        s->size = 0;
        s->in_object = s->failed = false;
}

void etcd_stream_done(EtcdStream *s) {
        if (s->tok)
                json_tokener_free(s->tok);
        etcd_stream_init(s, s->max_size);
}

bool etcd_stream_pending(const EtcdStream *s) {
        return s->in_object;
}

static int fail(EtcdStream *s, int r) {
        s->failed = true;
        return r;
}

static bool is_space(char c) {
        return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int etcd_stream_feed(EtcdStream *s, const char *data, size_t size, etcd_stream_object_handler_t cb, void *userdata) {
        size_t i = 0;

        if (s->failed)
                return -EBADMSG;
        if (!s->tok) {
                /* The depth is the default (32); etcd's responses nest 5 deep. */
                s->tok = json_tokener_new();
                if (!s->tok)
                        return fail(s, -ENOMEM);
                /* Strict JSON; the next object may follow in the same chunk. */
                json_tokener_set_flags(s->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
        }

        while (i < size) {
                enum json_tokener_error e;
                json_object *o;
                size_t n, used;
                int r;

                if (!s->in_object) {
                        if (is_space(data[i])) {
                                i++;
                                continue;
                        }
                        if (data[i] != '{')
                                return fail(s, -EBADMSG);
                        s->in_object = true;
                        s->size = 0;
                }
                /* Never more than the limit allows: the tokener buffers
                 * strings and keys itself. */
                n = size - i;
                if (n > s->max_size - s->size)
                        n = s->max_size - s->size;
                o = json_tokener_parse_ex(s->tok, data + i, (int) n);
                e = json_tokener_get_error(s->tok);
                if (e == json_tokener_continue) {
                        s->size += n;
                        i += n;
                        if (s->size >= s->max_size)
                                return fail(s, -E2BIG);
                        continue;
                }
                if (!o || e != json_tokener_success)
                        return fail(s, -EBADMSG);
                used = json_tokener_get_parse_end(s->tok);
                json_tokener_reset(s->tok);
                s->in_object = false;
                i += used;
                r = cb(o, userdata);
                json_object_put(o);
                if (r < 0)
                        return fail(s, r);
        }
        return 0;
}
