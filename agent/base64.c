/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *data, size_t size, char **ret) {
        const uint8_t *p = data;
        char *out, *o;

        out = o = malloc((size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < size; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t left = size - i;

                if (left > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];

                *o++ = alphabet[(v >> 18) & 63];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = left > 1 ? alphabet[(v >> 6) & 63] : '=';
                *o++ = left > 2 ? alphabet[v & 63] : '=';
        }
        *o = 0;
        *ret = out;
        return 0;
}

static int decode_char(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *text, void **ret, size_t *ret_size) {
        size_t len = strlen(text), n = 0;
        uint8_t *out;

        if (len % 4 != 0)
                return -EINVAL;

        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int c[4];
                unsigned pad = 0;

                for (unsigned k = 0; k < 4; k++) {
                        if (text[i + k] == '=' && last && k >= 2) {
                                c[k] = 0;
                                pad++;
                                continue;
                        }
                        /* '=' may only end the text, and nothing may follow it. */
                        c[k] = pad > 0 ? -1 : decode_char(text[i + k]);
                        if (c[k] < 0) {
                                free(out);
                                return -EINVAL;
                        }
                }

                uint32_t v = (uint32_t) c[0] << 18 | (uint32_t) c[1] << 12 | (uint32_t) c[2] << 6 | (uint32_t) c[3];
                /* Bits that padding hides must be zero, so each text has one decoding. */
                if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) {
                        free(out);
                        return -EINVAL;
                }
                out[n++] = (uint8_t) (v >> 16);
                if (pad < 2)
                        out[n++] = (uint8_t) (v >> 8);
                if (pad < 1)
                        out[n++] = (uint8_t) v;
        }
        out[n] = 0;
        *ret = out;
        if (ret_size)
                *ret_size = n;
        return 0;
}
