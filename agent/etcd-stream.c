/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-stream.h"

void etcd_stream_init(EtcdStream *s, size_t max_size) {
        *s = (EtcdStream) { .max_size = max_size };
}

void etcd_stream_reset(EtcdStream *s) {
        s->size = 0;
        s->depth = 0;
        s->in_string = s->escaped = s->failed = false;
}

void etcd_stream_done(EtcdStream *s) {
        free(s->buf);
        etcd_stream_init(s, s->max_size);
}

bool etcd_stream_pending(const EtcdStream *s) {
        return s->size > 0;
}

static int append(EtcdStream *s, const char *p, size_t n) {
        if (s->size + n + 1 > s->max_size)
                return -E2BIG;
        if (s->size + n + 1 > s->allocated) {
                size_t a = (s->size + n + 1) * 2;
                char *b;

                if (a > s->max_size)
                        a = s->max_size;
                b = realloc(s->buf, a);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->allocated = a;
        }
        memcpy(s->buf + s->size, p, n);
        s->size += n;
        s->buf[s->size] = 0;
        return 0;
}

int etcd_stream_feed(EtcdStream *s, const char *data, size_t size, etcd_stream_object_t cb, void *userdata) {
        size_t start = 0;   /* first byte of data not yet copied into buf */
        int r;

        if (s->failed)
                return -EBADMSG;

        for (size_t i = 0; i < size; i++) {
                char c = data[i];

                if (s->depth == 0) {
                        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                                start = i + 1;
                                continue;
                        }
                        if (c != '{') {
                                s->failed = true;
                                return -EBADMSG;
                        }
                        s->depth = 1;
                        start = i;
                        continue;
                }

                if (s->in_string) {
                        if (s->escaped)
                                s->escaped = false;
                        else if (c == '\\')
                                s->escaped = true;
                        else if (c == '"')
                                s->in_string = false;
                        continue;
                }

                if (c == '"')
                        s->in_string = true;
                else if (c == '{' || c == '[')
                        s->depth++;
                else if (c == '}' || c == ']') {
                        s->depth--;
                        if (s->depth == 0) {
                                r = append(s, data + start, i + 1 - start);
                                if (r < 0) {
                                        s->failed = true;
                                        return r;
                                }
                                start = i + 1;
                                r = cb(s->buf, s->size, userdata);
                                s->size = 0;
                                if (r < 0) {
                                        s->failed = true;
                                        return r;
                                }
                        }
                }
        }

        if (s->depth > 0) {
                r = append(s, data + start, size - start);
                if (r < 0) {
                        s->failed = true;
                        return r;
                }
        }
        return 0;
}
