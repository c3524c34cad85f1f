/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Standard base64 (RFC 4648, with padding), as etcd's JSON gateway uses for
 * keys and values. */

#include <stddef.h>

/* OpenSSL's EVP block coding, with the checks it lacks. Returns 0 and a
 * NUL-terminated string in *ret, -E2BIG or -ENOMEM. */
int base64_encode(const void *data, size_t size, char **ret);

/* Strict: rejects a length that is not a multiple of 4, whitespace and other
 * characters outside the alphabet, '=' other than one or two at the end, and
 * non-zero trailing bits. *ret is NUL-terminated (one byte more than *ret_size) so
 * text values can be used as strings. Returns 0, -EINVAL or -ENOMEM. */
int base64_decode(const char *text, void **ret, size_t *ret_size);
