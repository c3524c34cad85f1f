/* SPDX-License-Identifier: Apache-2.0 */
/* Dumps and pipelined requests on the raw request socket.
 *
 * A batch packs many requests into one datagram (the kernel handles them one
 * after the other), asks for no acknowledgement of the ones that succeed, and
 * ends each datagram with an NLMSG_NOOP carrying NLM_F_ACK: its ack is the
 * barrier after which every error of that datagram has been read. Errors are
 * matched to requests by sequence number. rtnetlink handles a datagram
 * synchronously within sendmsg(), so when send returns the replies are queued
 * (or, if the receive buffer overflowed, lost: reported as -ENOBUFS). */
#include <errno.h>
#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/socket.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "ns-internal.h"

/* Bytes per datagram. Must stay below the socket's send buffer; 64 KiB holds
 * about 800 neighbour/FDB/route requests. */
#define NS_BATCH_CHUNK (64 * 1024)
#define NS_BATCH_MAX_MSGS (NS_BATCH_CHUNK / NLMSG_HDRLEN)
#define NS_REPLY_TIMEOUT_MS 10000
#define NS_DUMP_RETRIES 5

struct ns_batch {
        ns_ctx *ctx;
        ns_batch_error_cb cb;
        void *userdata;
        uint8_t *buf;
        size_t len;
        uint32_t cookies[NS_BATCH_MAX_MSGS];
        size_t n;
        uint32_t first_seq;
        unsigned sent;
        int first_error;
};

static int send_raw(ns_ctx *ctx, const void *buf, size_t len) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        int fd = nl_socket_get_fd(ctx->rq);

        for (;;) {
                ssize_t k = sendto(fd, buf, len, 0, (const struct sockaddr *) &sa, sizeof(sa));
                if (k >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

/* Receives one datagram into ctx->rbuf; waits at most timeout_ms. */
static ssize_t recv_raw(ns_ctx *ctx, int timeout_ms) {
        int fd = nl_socket_get_fd(ctx->rq);

        for (;;) {
                ssize_t k = recv(fd, ctx->rbuf, ctx->rbuf_size, MSG_DONTWAIT | MSG_TRUNC);
                if (k >= 0) {
                        if ((size_t) k > ctx->rbuf_size)
                                return -EMSGSIZE;
                        return k;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN || timeout_ms == 0)
                        return -errno;

                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
        }
}

/* The text of an extended ack, if the kernel sent one. */
static const char *extack_msg(const struct nlmsghdr *nlh) {
        const struct nlmsgerr *e = NLMSG_DATA(nlh);
        struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
        size_t off;

        if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
                return NULL;
        /* With NETLINK_CAP_ACK the request's payload is not echoed. */
        off = NLMSG_HDRLEN + sizeof(*e);
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
                off += e->msg.nlmsg_len - NLMSG_HDRLEN;
        if (off >= nlh->nlmsg_len)
                return NULL;
        if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *) ((uint8_t *) nlh + off),
                      (int) (nlh->nlmsg_len - off), NULL) < 0)
                return NULL;
        if (!tb[NLMSGERR_ATTR_MSG])
                return NULL;
        return nla_get_string(tb[NLMSGERR_ATTR_MSG]);
}

int ns_dump(ns_ctx *ctx, struct nl_msg *req, ns_dump_cb cb, void *userdata) {
        struct nlmsghdr *rh = nlmsg_hdr(req);

        for (unsigned attempt = 0;; attempt++) {
                bool interrupted = false, done = false;
                int r, cb_error = 0;

                rh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
                rh->nlmsg_seq = ctx->seq++;
                rh->nlmsg_pid = 0;
                r = send_raw(ctx, rh, rh->nlmsg_len);
                if (r < 0)
                        return ns_log_error_errno(r, "Failed to send a netlink dump request: %m");

                while (!done) {
                        ssize_t k = recv_raw(ctx, NS_REPLY_TIMEOUT_MS);
                        if (k < 0)
                                return ns_log_error_errno((int) k, "Failed to read a netlink dump: %m");

                        size_t len = (size_t) k;
                        for (struct nlmsghdr *h = (struct nlmsghdr *) ctx->rbuf; NLMSG_OK(h, len);
                             h = NLMSG_NEXT(h, len)) {
                                if (h->nlmsg_seq != rh->nlmsg_seq)
                                        continue; /* stale reply of an abandoned exchange */
                                if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                                        interrupted = true;
                                if (h->nlmsg_type == NLMSG_DONE) {
                                        done = true;
                                        break;
                                }
                                if (h->nlmsg_type == NLMSG_ERROR) {
                                        const struct nlmsgerr *e = NLMSG_DATA(h);
                                        return ns_log_error_errno(e->error, "Netlink dump failed: %m");
                                }
                                if (cb_error < 0)
                                        continue; /* read to the end, so nothing is left queued */
                                r = cb(h, userdata);
                                if (r < 0)
                                        cb_error = r;
                        }
                }
                if (cb_error < 0)
                        return cb_error;
                if (!interrupted)
                        return 0;
                if (attempt >= NS_DUMP_RETRIES)
                        return ns_log_error_errno(EAGAIN, "Netlink dump kept being interrupted by changes");
                /* The table changed while it was being read: start over. */
                r = cb(NULL, userdata);
                if (r < 0)
                        return r;
        }
}

int ns_batch_new(ns_ctx *ctx, ns_batch_error_cb cb, void *userdata, ns_batch **ret) {
        ns_batch *b;

        b = calloc(1, sizeof(*b));
        if (!b)
                return ns_log_error_errno(ENOMEM, "Failed to allocate a netlink batch");
        b->buf = malloc(NS_BATCH_CHUNK);
        if (!b->buf) {
                free(b);
                return ns_log_error_errno(ENOMEM, "Failed to allocate a netlink batch");
        }
        b->ctx = ctx;
        b->cb = cb;
        b->userdata = userdata;
        *ret = b;
        return 0;
}

void ns_batch_free(ns_batch *b) {
        if (!b)
                return;
        free(b->buf);
        free(b);
}

unsigned ns_batch_sent(const ns_batch *b) {
        return b->sent;
}

static void batch_error(ns_batch *b, int r) {
        if (r < 0 && b->first_error == 0)
                b->first_error = r;
}

/* Sends the queued requests plus the barrier and reads replies up to the
 * barrier's ack. */
static int batch_send(ns_batch *b) {
        ns_ctx *ctx = b->ctx;
        struct nlmsghdr *barrier;
        uint32_t barrier_seq;
        int r;

        if (b->n == 0)
                return 0;

        barrier = (struct nlmsghdr *) (b->buf + b->len);
        barrier_seq = ctx->seq++;
        *barrier = (struct nlmsghdr) {
                .nlmsg_len = NLMSG_HDRLEN,
                .nlmsg_type = NLMSG_NOOP,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
                .nlmsg_seq = barrier_seq,
        };

        r = send_raw(ctx, b->buf, b->len + NLMSG_HDRLEN);
        if (r < 0)
                return ns_log_error_errno(r, "Failed to send %zu netlink requests: %m", b->n);
        b->sent += (unsigned) b->n;

        for (bool done = false, overrun = false; !done;) {
                /* After an overrun the barrier may be lost too; everything
                 * that was kept is already queued, so do not wait. */
                ssize_t k = recv_raw(ctx, overrun ? 0 : NS_REPLY_TIMEOUT_MS);
                if (k == -ENOBUFS) {
                        ns_log_warning("Netlink replies were lost (receive buffer overrun)");
                        batch_error(b, -ENOBUFS);
                        overrun = true;
                        continue;
                }
                if (k == -EAGAIN && overrun)
                        break;
                if (k < 0)
                        return ns_log_error_errno((int) k, "Failed to read netlink replies: %m");

                size_t len = (size_t) k;
                for (struct nlmsghdr *h = (struct nlmsghdr *) ctx->rbuf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                        if (h->nlmsg_type != NLMSG_ERROR)
                                continue;
                        if (h->nlmsg_seq == barrier_seq) {
                                done = true;
                                continue;
                        }
                        uint32_t i = h->nlmsg_seq - b->first_seq;
                        if (i >= b->n)
                                continue; /* not ours (stale) */

                        const struct nlmsgerr *e = NLMSG_DATA(h);
                        if (e->error == 0)
                                continue;
                        r = b->cb ? b->cb(b->cookies[i], e->error, extack_msg(h), b->userdata) : e->error;
                        batch_error(b, r);
                }
        }

        b->len = 0;
        b->n = 0;
        return 0;
}

int ns_batch_add(ns_batch *b, struct nl_msg *msg, uint32_t cookie) {
        struct nlmsghdr *nlh = nlmsg_hdr(msg);
        size_t size = NLMSG_ALIGN(nlh->nlmsg_len);
        int r;

        if (size + NLMSG_HDRLEN > NS_BATCH_CHUNK)
                return ns_log_error_errno(EMSGSIZE, "Netlink request too large for a batch");

        if (b->len + size + NLMSG_HDRLEN > NS_BATCH_CHUNK || b->n >= NS_BATCH_MAX_MSGS - 1) {
                r = batch_send(b);
                if (r < 0)
                        return r;
        }

        if (b->n == 0)
                b->first_seq = b->ctx->seq;
        nlh->nlmsg_flags |= NLM_F_REQUEST;
        nlh->nlmsg_flags &= (uint16_t) ~NLM_F_ACK;
        nlh->nlmsg_seq = b->ctx->seq++;
        nlh->nlmsg_pid = 0;
        memcpy(b->buf + b->len, nlh, nlh->nlmsg_len);
        memset(b->buf + b->len + nlh->nlmsg_len, 0, size - nlh->nlmsg_len);
        b->len += size;
        b->cookies[b->n++] = cookie;
        return 0;
}

int ns_batch_flush(ns_batch *b) {
        int r;

        r = batch_send(b);
        if (r < 0)
                return r;
        r = b->first_error;
        b->first_error = 0;
        return r;
}

int ns_request(ns_ctx *ctx, struct nl_msg *msg) {
        ns_batch *b;
        int r;

        /* No error callback: the caller decides and logs. */
        r = ns_batch_new(ctx, NULL, NULL, &b);
        if (r < 0)
                return r;
        r = ns_batch_add(b, msg, 0);
        if (r >= 0)
                r = ns_batch_flush(b);
        ns_batch_free(b);
        return r;
}
