/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Just enough HTTP/1.1 for the Kubernetes stand-ins: one request per
 * connection, Content-Length bodies, "Connection: close" answers. */

#include <stddef.h>

typedef struct HttpRequest {
        char method[16];
        char path[512];
        char *body;             /* NUL-terminated, may be empty, never NULL after a parse */
        size_t body_size;
} HttpRequest;

void http_request_done(HttpRequest *req);

/* Reads one request from fd. Returns 0, or a negative errno (-EBADMSG for a
 * malformed request, -EFBIG for one over the size limits). */
int http_read_request(int fd, HttpRequest *req);

int http_write_response(int fd, int code, const char *content_type, const char *body);

/* Listening TCP socket on address:port (IPv4 dotted quad or "0.0.0.0"). */
int http_listen(const char *address, unsigned port);

/* GET http://HOST:PORT/PATH; *ret_body gets the body (caller frees), the
 * return value is the status code or a negative errno. */
int http_get(const char *url, char **ret_body);
