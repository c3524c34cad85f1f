/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

int base64_encode(const void *data, size_t size, char **ret) {
        char *out;

        if (size > (size_t) INT_MAX / 4 * 3)
                return -E2BIG;
        out = malloc((size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        /* Writes the padding and the terminating NUL. */
        (void) EVP_EncodeBlock((unsigned char *) out, data, (int) size);
        *ret = out;
        return 0;
}

static unsigned char_value(char c) {
        return (unsigned) (strchr(ALPHABET, c) - ALPHABET);
}

/* EVP_DecodeBlock() skips whitespace around the text, takes '=' anywhere in
 * the last quantum and counts the padding as output bytes: what it accepts
 * is decided here, so that each text has one decoding. */
static int check(const char *text, size_t len, unsigned *ret_pad) {
        unsigned pad = 0;

        if (len % 4 != 0 || len > INT_MAX)
                return -EINVAL;
        while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
                pad++;
        if (strspn(text, ALPHABET) != len - pad)
                return -EINVAL;
        /* The bits that the padding hides must be zero. */
        if ((pad == 1 && (char_value(text[len - 2]) & 0x03) != 0) ||
            (pad == 2 && (char_value(text[len - 3]) & 0x0f) != 0))
                return -EINVAL;
        *ret_pad = pad;
        return 0;
}

int base64_decode(const char *text, void **ret, size_t *ret_size) {
        size_t len = strlen(text);
        unsigned pad;
        uint8_t *out;
        int n, r;

        r = check(text, len, &pad);
        if (r < 0)
                return r;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        n = EVP_DecodeBlock(out, (const unsigned char *) text, (int) len);
        if (n < 0 || (size_t) n != len / 4 * 3) {
                free(out);
                return -EINVAL;
        }
        n -= (int) pad;
        out[n] = 0;
        *ret = out;
        if (ret_size)
                *ret_size = (size_t) n;
        return 0;
}
