/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "term-escape.h"

size_t utf8_sequence_length(const char *s) {
        const uint8_t *p = (const uint8_t *) s;
        uint32_t cp, min;
        size_t n;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                n = 2, cp = p[0] & 0x1f, min = 0x80;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                n = 3, cp = p[0] & 0x0f, min = 0x800;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                n = 4, cp = p[0] & 0x07, min = 0x10000;
        } else
                return 0;       /* a continuation byte, 0xc0/0xc1 (always overlong), or 0xf5.. */
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)      /* the NUL terminator stops here too */
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

/* How many bytes at s are one safe character (0: escape the byte at s). */
static size_t safe_length(const char *s) {
        const uint8_t *p = (const uint8_t *) s;
        size_t n;

        if (p[0] < 0x20 || p[0] == 0x7f)
                return 0;
        n = utf8_sequence_length(s);
        if (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f)     /* U+0080..U+009F */
                return 0;
        return n;
}

const char *term_escape_buf(const char *s, char *buf, size_t size) {
        size_t o = 0;

        if (size == 0)
                return buf;
        for (const char *p = s ?: ""; *p;) {
                size_t n = safe_length(p);

                if (n == 0) {
                        if (o + 4 >= size)
                                break;
                        snprintf(buf + o, 5, "\\x%02x", (uint8_t) *p);
                        o += 4;
                        p++;
                } else {
                        if (o + n >= size)
                                break;
                        memcpy(buf + o, p, n);
                        o += n;
                        p += n;
                }
        }
        buf[o] = '\0';
        return buf;
}

char *term_escape(const char *s) {
        size_t size;
        char *buf;

        if (!s)
                return NULL;
        size = strlen(s) * 4 + 1;
        buf = malloc(size);
        return buf ? (char *) term_escape_buf(s, buf, size) : NULL;
}

char *json_escape_unsafe(const char *json) {
        size_t o = 0;
        char *buf = malloc(strlen(json) * 6 + 1);

        if (!buf)
                return NULL;
        /* Outside strings JSON text is ASCII, and json-c escapes the C0
         * controls inside them: its newlines and spaces stay as they are. */
        for (const char *p = json; *p;) {
                const uint8_t *u = (const uint8_t *) p;
                size_t n = u[0] == 0x7f ? 0 : utf8_sequence_length(p);

                if (n == 2 && u[0] == 0xc2 && u[1] <= 0x9f) {
                        o += (size_t) sprintf(buf + o, "\\u%04x", u[1]);
                        p += 2;
                } else if (n == 0) {
                        o += (size_t) sprintf(buf + o, "\\u%04x", u[0]);
                        p++;
                } else {
                        memcpy(buf + o, p, n);
                        o += n;
                        p += n;
                }
        }
        buf[o] = '\0';
        return buf;
}
