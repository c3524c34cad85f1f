/* SPDX-License-Identifier: Apache-2.0 */
#include "standin-http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "macro.h"

#define HEADER_MAX (64U * 1024U)
#define BODY_MAX (1024U * 1024U)

void http_request_done(HttpRequest *req) {
        free(req->body);
        req->body = NULL;
        req->body_size = 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Value of header `name` inside the header block, or NULL. */
static const char *find_header(const char *headers, const char *name, size_t *ret_len) {
        size_t n = strlen(name);

        for (const char *l = strstr(headers, "\r\n"); l; l = strstr(l, "\r\n")) {
                l += 2;
                if (strncasecmp(l, name, n) != 0 || l[n] != ':')
                        continue;
                const char *v = l + n + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                const char *e = strstr(v, "\r\n");
                *ret_len = e ? (size_t) (e - v) : strlen(v);
                return v;
        }
        return NULL;
}

int http_read_request(int fd, HttpRequest *req) {
        _cleanup_free_ char *buf = NULL;
        size_t used = 0, header_len;
        char *end;
        int r;

        *req = (HttpRequest) {};

        buf = malloc(HEADER_MAX + 1);
        if (!buf)
                return -ENOMEM;

        /* Headers first, up to the blank line. */
        for (;;) {
                if (used >= HEADER_MAX)
                        return -EFBIG;
                ssize_t k = recv(fd, buf + used, HEADER_MAX - used, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EBADMSG;
                used += (size_t) k;
                buf[used] = 0;
                end = strstr(buf, "\r\n\r\n");
                if (end)
                        break;
        }
        header_len = (size_t) (end - buf) + 4;
        end[2] = 0; /* the header block now ends with its last "\r\n" */

        if (sscanf(buf, "%15s %511s HTTP/1.", req->method, req->path) != 2)
                return -EBADMSG;

        size_t vlen, content_length = 0;
        const char *v = find_header(buf, "Content-Length", &vlen);
        if (v) {
                char *e;
                errno = 0;
                unsigned long long l = strtoull(v, &e, 10);
                if (errno != 0 || e == v || !isdigit((unsigned char) *v))
                        return -EBADMSG;
                if (l > BODY_MAX)
                        return -EFBIG;
                content_length = (size_t) l;
        }

        v = find_header(buf, "Expect", &vlen);
        if (v && vlen >= 12 && strncasecmp(v, "100-continue", 12) == 0) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                r = write_all(fd, cont, sizeof(cont) - 1);
                if (r < 0)
                        return r;
        }

        req->body = malloc(content_length + 1);
        if (!req->body)
                return -ENOMEM;
        size_t have = used - header_len;
        if (have > content_length)
                have = content_length;
        memcpy(req->body, buf + header_len, have);
        while (have < content_length) {
                ssize_t k = recv(fd, req->body + have, content_length - have, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        http_request_done(req);
                        return r;
                }
                if (k == 0) {
                        http_request_done(req);
                        return -EBADMSG;
                }
                have += (size_t) k;
        }
        req->body[content_length] = 0;
        req->body_size = content_length;
        return 0;
}

static const char *reason_of(int code) {
        switch (code) {
        case 200: return "OK";
        case 201: return "Created";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 413: return "Payload Too Large";
        case 500: return "Internal Server Error";
        default:  return "Unknown";
        }
}

int http_write_response(int fd, int code, const char *content_type, const char *body) {
        _cleanup_free_ char *head = NULL;
        size_t len = strlen(body);
        int n, r;

        n = asprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", code, reason_of(code), content_type, len);
        if (n < 0)
                return -ENOMEM;
        r = write_all(fd, head, (size_t) n);
        if (r < 0)
                return r;
        return write_all(fd, body, len);
}

int http_listen(const char *address, unsigned port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        _cleanup_close_ int fd = -1;
        int one = 1;

        if (port == 0 || port > 65535 || inet_pton(AF_INET, address, &sa.sin_addr) != 1)
                return -EINVAL;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (listen(fd, 16) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int http_get(const char *url, char **ret_body) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        _cleanup_free_ char *host = NULL, *req = NULL, *buf = NULL;
        _cleanup_close_ int fd = -1;
        const char *p, *path, *port = "80";
        size_t used = 0, alloc = 4096;
        int code, r;

        p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
        path = strchr(p, '/');
        host = path ? strndup(p, (size_t) (path - p)) : strdup(p);
        if (!host)
                return -ENOMEM;
        if (!path)
                path = "/";
        char *colon = strrchr(host, ':');
        if (colon) {
                *colon = 0;
                port = colon + 1;
        }

        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0)
                return -EHOSTUNREACH;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        freeaddrinfo(ai);

        if (asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host) < 0)
                return -ENOMEM;
        r = write_all(fd, req, strlen(req));
        if (r < 0)
                return r;

        buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (used + 1 >= alloc) {
                        if (alloc >= BODY_MAX)
                                return -EFBIG;
                        char *n = realloc(buf, alloc * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc *= 2;
                }
                ssize_t k = recv(fd, buf + used, alloc - used - 1, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                used += (size_t) k;
        }
        buf[used] = 0;

        if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
                return -EBADMSG;
        char *body = strstr(buf, "\r\n\r\n");
        *ret_body = strdup(body ? body + 4 : "");
        if (!*ret_body)
                return -ENOMEM;
        return code;
}
