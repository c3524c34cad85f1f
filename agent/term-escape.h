/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Strings from etcd (machine names, errors, keys) are written to terminals
 * by the CLI. A hostile record must not reach the terminal with an escape
 * sequence in it, so everything that is not printable text goes out escaped:
 * C0 controls, DEL, the C1 controls U+0080..U+009F (as UTF-8, and as bare
 * bytes, which some terminals obey) and every byte of an invalid or overlong
 * UTF-8 sequence. Valid multibyte UTF-8 passes through. */

#include <stddef.h>

/* Length of the valid, shortest-form UTF-8 sequence at s (1 for ASCII), or
 * 0 when the bytes at s are not one. Surrogates and code points above
 * U+10FFFF are not valid. */
size_t utf8_sequence_length(const char *s);

/* A copy of s for a terminal, with each unsafe byte written as \xHH.
 * NULL for NULL, or when out of memory. */
char *term_escape(const char *s);

/* The same into buf (always NUL-terminated, truncated to fit), for
 * messages: returns buf. */
const char *term_escape_buf(const char *s, char *buf, size_t size);

/* A copy of JSON text (json-c's output, which escapes C0 but writes DEL,
 * C1 and invalid UTF-8 as they are) with those written as \u00XX, so the
 * result is valid JSON and safe on a terminal. An invalid byte 0xHH becomes
 * U+00HH. NULL when out of memory. */
char *json_escape_unsafe(const char *json);
