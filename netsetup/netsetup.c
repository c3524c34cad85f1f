/* SPDX-License-Identifier: Apache-2.0 */
/* The context (netlink sockets), the log hook and small shared helpers. */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ns-internal.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define NS_RBUF_SIZE (64 * 1024)
/* Room for the errors of a whole pipelined burst, and on the monitor for the
 * notifications of one (three per peer, about 1 KiB each in the buffer's
 * accounting): an overrun there costs the owner a full reconcile. The FORCE
 * variants pass the rmem_max cap when we are privileged. */
#define NS_RQ_BUF_SIZE (8 * 1024 * 1024)
#define NS_MON_BUF_SIZE (8 * 1024 * 1024)

static ns_log_func_t log_func;

/* The last failure's message, for the caller that decides what it means
 * (one per thread, as the contexts are). */
static __thread char error_detail[512];
static __thread int error_detail_errno;

void ns_set_log_func(ns_log_func_t f) {
        log_func = f;
}

const char *ns_error_detail(int error) {
        if (error == 0 || error_detail_errno != abs(error))
                return NULL;
        error_detail_errno = 0;         /* read once: never a stale one later */
        return error_detail;
}

int ns_log_full(int level, int error, const char *format, ...) {
        va_list ap;
        int saved = errno;

        if (error < 0)
                error = -error;

        va_start(ap, format);
        errno = error;
        if (level <= LOG_ERR && error != 0) {
                /* A failure: returned, not logged; the caller logs it once. */
                vsnprintf(error_detail, sizeof error_detail, format, ap);
                error_detail_errno = error;
        } else if (log_func)
                log_func(level, error, format, ap);
        else if (level < LOG_DEBUG) {
                vfprintf(stderr, format, ap);
                fputc('\n', stderr);
        }
        va_end(ap);

        errno = saved;
        return -error;
}

int ns_nlerr_to_errno(int nlerr) {
        static const int map[] = {
                [NLE_SUCCESS] = 0,
                [NLE_FAILURE] = EIO,
                [NLE_INTR] = EINTR,
                [NLE_BAD_SOCK] = EBADF,
                [NLE_AGAIN] = EAGAIN,
                [NLE_NOMEM] = ENOMEM,
                [NLE_EXIST] = EEXIST,
                [NLE_INVAL] = EINVAL,
                [NLE_RANGE] = ERANGE,
                [NLE_MSGSIZE] = EMSGSIZE,
                [NLE_OPNOTSUPP] = EOPNOTSUPP,
                [NLE_AF_NOSUPPORT] = EAFNOSUPPORT,
                [NLE_OBJ_NOTFOUND] = ENOENT,
                [NLE_NOATTR] = ENOENT,
                [NLE_MISSING_ATTR] = EINVAL,
                [NLE_AF_MISMATCH] = EAFNOSUPPORT,
                [NLE_SEQ_MISMATCH] = EILSEQ,
                [NLE_MSG_OVERFLOW] = EOVERFLOW,
                [NLE_MSG_TRUNC] = EMSGSIZE,
                [NLE_NOADDR] = EADDRNOTAVAIL,
                [NLE_SRCRT_NOSUPPORT] = EOPNOTSUPP,
                [NLE_MSG_TOOSHORT] = EBADMSG,
                [NLE_MSGTYPE_NOSUPPORT] = EOPNOTSUPP,
                [NLE_OBJ_MISMATCH] = EINVAL,
                [NLE_NOCACHE] = ENOENT,
                [NLE_BUSY] = EBUSY,
                [NLE_PROTO_MISMATCH] = EPROTONOSUPPORT,
                [NLE_NOACCESS] = EACCES,
                [NLE_PERM] = EPERM,
                [NLE_PKTLOC_FILE] = ENOENT,
                [NLE_PARSE_ERR] = EINVAL,
                [NLE_NODEV] = ENODEV,
                [NLE_IMMUTABLE] = EPERM,
                [NLE_DUMP_INTR] = EINTR,
                [NLE_ATTRSIZE] = EINVAL,
        };

        if (nlerr < 0)
                nlerr = -nlerr;
        if ((size_t) nlerr >= NS_ELEMENTSOF(map))
                return -EIO;
        return -map[nlerr];
}

static void set_buffer(int fd, int opt_force, int opt, int size) {
        /* Best effort: without privilege the kernel caps at rmem_max/wmem_max. */
        if (setsockopt(fd, SOL_SOCKET, opt_force, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
}

static int socket_open(struct nl_sock **ret, const char *what) {
        struct nl_sock *sk;
        int r;

        sk = nl_socket_alloc();
        if (!sk)
                return ns_log_error_errno(ENOMEM, "Failed to allocate the netlink %s socket", what);

        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                r = ns_nlerr_to_errno(r);
                return ns_log_error_errno(r, "Failed to open the netlink %s socket: %s", what, strerror(-r));
        }

        *ret = sk;
        return 0;
}

int ns_new(ns_ctx **ret) {
        ns_ctx *ctx;
        int r, one = 1, fd;

        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return ns_log_error_errno(ENOMEM, "Failed to allocate the netsetup context");

        ctx->rbuf_size = NS_RBUF_SIZE;
        ctx->rbuf = malloc(ctx->rbuf_size);
        if (!ctx->rbuf) {
                r = ns_log_error_errno(ENOMEM, "Failed to allocate the netlink receive buffer");
                goto fail;
        }

        r = socket_open(&ctx->nl, "request");
        if (r < 0)
                goto fail;

        r = socket_open(&ctx->rq, "batch");
        if (r < 0)
                goto fail;
        fd = nl_socket_get_fd(ctx->rq);
        set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, NS_RQ_BUF_SIZE);
        set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, NS_RQ_BUF_SIZE);
        /* Errors without a copy of the request (small), but with the kernel's
         * explanation when it has one. */
        (void) setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        (void) setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        ctx->seq = (uint32_t) getpid() << 8;

        r = socket_open(&ctx->mon, "monitor");
        if (r < 0)
                goto fail;
        nl_socket_disable_seq_check(ctx->mon);
        r = nl_socket_add_memberships(ctx->mon, RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, 0);
        if (r < 0) {
                r = ns_nlerr_to_errno(r);
                ns_log_error_errno(r, "Failed to subscribe to link, neighbour and route notifications: %s",
                                   strerror(-r));
                goto fail;
        }
        r = nl_socket_set_nonblocking(ctx->mon);
        if (r < 0) {
                r = ns_nlerr_to_errno(r);
                ns_log_error_errno(r, "Failed to make the monitor socket non-blocking: %s", strerror(-r));
                goto fail;
        }
        set_buffer(nl_socket_get_fd(ctx->mon), SO_RCVBUFFORCE, SO_RCVBUF, NS_MON_BUF_SIZE);

        *ret = ctx;
        return 0;

fail:
        ns_free(ctx);
        return r;
}

void ns_free(ns_ctx *ctx) {
        if (!ctx)
                return;
        if (ctx->nl)
                nl_socket_free(ctx->nl);
        if (ctx->rq)
                nl_socket_free(ctx->rq);
        if (ctx->mon)
                nl_socket_free(ctx->mon);
        ns_wanted_clear(&ctx->wanted);
        free(ctx->rbuf);
        free(ctx);
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int ns_parse_mac(const char *s, uint8_t mac[6]) {
        uint8_t v[6];

        /* Exactly six pairs of hex digits and five colons: no sign, space or
         * single digit of the kind sscanf() would let through. */
        if (!s || strlen(s) != 17)
                return -EINVAL;
        for (size_t i = 0; i < 6; i++) {
                int hi = hex_digit(s[i * 3]), lo = hex_digit(s[i * 3 + 1]);

                if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
                        return -EINVAL;
                v[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(mac, v, 6);
        return 0;
}

const char *ns_format_mac(const uint8_t mac[6], char buf[18]) {
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        return buf;
}
