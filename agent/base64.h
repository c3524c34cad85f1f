/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Standard base64 (RFC 4648, with padding), as etcd's JSON gateway uses for
 * keys and values. */

#include <stddef.h>

/* Returns 0 and a NUL-terminated string in *ret, or -ENOMEM. */
int base64_encode(const void *data, size_t size, char **ret);

/* Strict: rejects characters outside the alphabet, bad padding and non-zero
 * trailing bits. *ret is NUL-terminated (one byte more than *ret_size) so
 * text values can be used as strings. Returns 0, -EINVAL or -ENOMEM. */
int base64_decode(const char *text, void **ret, size_t *ret_size);
