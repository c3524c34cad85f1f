/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Private to netsetup/: the context, logging and the netlink plumbing shared
 * by the ns-*.c files. */

#include <linux/netlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <stdbool.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "netsetup.h"

#define NS_ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _ns_cleanup_(f) __attribute__((cleanup(f)))
#define _ns_printf_(a, b) __attribute__((format(printf, a, b)))

static inline void ns_freep(void *p) {
        free(*(void **) p);
}
#define _ns_cleanup_free_ _ns_cleanup_(ns_freep)

struct neigh_entry;
struct fdb_entry;
struct route_entry;

/* The desired entries of the last reconcile, sorted as the reconcile sorts
 * them (ns-peers.h), so the monitor finds one by binary search. */
typedef struct ns_wanted {
        int ifindex;                  /* the device they were made for; 0 = none */
        unsigned flags;               /* the NS_RECONCILE_* of that reconcile */
        struct neigh_entry *neigh;
        struct fdb_entry *fdb;
        struct route_entry *route;
        size_t n_neigh, n_fdb, n_route;
        size_t cap_neigh, cap_fdb, cap_route; /* allocated, for ns_overlay_apply_delta() */
} ns_wanted;

void ns_wanted_clear(ns_wanted *w);

struct ns_ctx {
        struct nl_sock *nl;           /* libnl object requests (links, addresses) */
        struct nl_sock *rq;           /* raw dumps and pipelined batches */
        struct nl_sock *mon;          /* link, neighbour and IPv4 route notifications */
        uint32_t seq;                 /* sequence numbers on `rq` */
        uint8_t *rbuf;                /* receive buffer for `rq` and `mon` */
        size_t rbuf_size;

        /* The overlay set up last; ifindex 0 = none. */
        int ov_ifindex;
        char ov_ifname[IF_NAMESIZE];
        ns_overlay_config ov_cfg;
        bool ov_up;
        bool ov_underlay_up;

        ns_wanted wanted;
        unsigned mon_pending;         /* NS_EVENT_* read early, for the next ns_monitor_process() */
};

/* Logging through the owner's hook. `error` is a (positive or negative) errno
 * value or 0; the functions return -abs(error) so they can end a statement
 * like `return ns_log_error_errno(r, ...)`. At LOG_ERR (with an error) the
 * message is the failure's detail for ns_error_detail(), not logged: the
 * caller decides and logs. Something netsetup decides itself (a request it
 * carries on past) is a warning. */
int ns_log_full(int level, int error, const char *format, ...) _ns_printf_(3, 4);
#define ns_log_error_errno(e, ...) ns_log_full(LOG_ERR, (e), __VA_ARGS__)
#define ns_log_warning(...) ((void) ns_log_full(LOG_WARNING, 0, __VA_ARGS__))
#define ns_log_info(...) ((void) ns_log_full(LOG_INFO, 0, __VA_ARGS__))
#define ns_log_debug(...) ((void) ns_log_full(LOG_DEBUG, 0, __VA_ARGS__))

/* libnl's NLE_* codes as negative errno values. */
int ns_nlerr_to_errno(int nlerr);

/* ---- ns-batch.c: dumps and pipelined requests on ctx->rq ---- */

/* Called for every message of a dump; a negative return ends the dump with
 * that error. */
typedef int (*ns_dump_cb)(const struct nlmsghdr *nlh, void *userdata);

/* Sends `req` (type and header already set; flags are set here) as a dump
 * request and calls `cb` for every reply. Restarts the dump if the kernel says
 * it was interrupted by a concurrent change. */
int ns_dump(ns_ctx *ctx, struct nl_msg *req, ns_dump_cb cb, void *userdata);

/* Called for every request the kernel refused; `cookie` is what was given to
 * ns_batch_add(); `msg` is the kernel's extended ack text or NULL. Return 0 to
 * accept the failure (e.g. ENOENT on a delete), or the (negative) error. */
typedef int (*ns_batch_error_cb)(uint32_t cookie, int error, const char *msg, void *userdata);

typedef struct ns_batch ns_batch;

int ns_batch_new(ns_ctx *ctx, ns_batch_error_cb cb, void *userdata, ns_batch **ret);
/* Queues a copy of `msg` (its flags get NLM_F_REQUEST; no NLM_F_ACK: only
 * errors come back). Sends the queue when it is full. */
int ns_batch_add(ns_batch *b, struct nl_msg *msg, uint32_t cookie);
/* Sends what is queued and collects the errors: returns the first error that
 * the callback did not accept (or a transport error), else 0. */
int ns_batch_flush(ns_batch *b);
unsigned ns_batch_sent(const ns_batch *b);
void ns_batch_free(ns_batch *b);

/* One request, waited for: 0 or the kernel's error (not logged). */
int ns_request(ns_ctx *ctx, struct nl_msg *msg);

/* nlmsg_alloc_simple() + a header; NULL on allocation failure. */
struct nl_msg *ns_msg_new(int type, int flags, const void *hdr, size_t hdrlen);

/* ---- ns-link.c ---- */

/* Reads a link's flags, MTU and name by index (one RTM_GETLINK). -ENODEV if
 * there is none; not logged. `name` may be NULL. */
int ns_link_get(ns_ctx *ctx, int ifindex, unsigned *flags, uint32_t *mtu, char name[IF_NAMESIZE]);
/* Sets IFF_UP, and the MTU if not 0. Not logged. */
int ns_link_set(ns_ctx *ctx, int ifindex, bool up, uint32_t mtu);
int ns_link_delete(ns_ctx *ctx, int ifindex);

typedef struct ns_addr {
        struct in_addr addr;
        unsigned prefixlen;
} ns_addr;
#define NS_ADDR_MAX 64

/* The IPv4 addresses of a link, primary first; at most NS_ADDR_MAX. */
int ns_addr_list(ns_ctx *ctx, int ifindex, ns_addr *ret, size_t *n);
int ns_addr_add(ns_ctx *ctx, int ifindex, const ns_addr *a);
int ns_addr_del(ns_ctx *ctx, int ifindex, const ns_addr *a);

static inline uint32_t ns_prefix_mask(unsigned len) {
        return len == 0 ? 0 : htonl(~UINT32_C(0) << (32 - len));
}
static inline bool ns_in_prefix(struct in_addr a, struct in_addr net, unsigned len) {
        return ((a.s_addr ^ net.s_addr) & ns_prefix_mask(len)) == 0;
}

/* ---- ns-monitor.c ---- */

/* Discards pending notifications. */
void ns_monitor_drain(ns_ctx *ctx);
/* Reads pending notifications now (before a change of ours would mix with
 * them); the events in `keep` are saved for the next ns_monitor_process(),
 * all of them are returned in `*seen`. */
int ns_monitor_absorb(ns_ctx *ctx, unsigned keep, unsigned *seen);
