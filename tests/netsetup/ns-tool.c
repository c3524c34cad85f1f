/* SPDX-License-Identifier: Apache-2.0 */
/* Test driver for the netsetup library.
 *
 *   ns-tool [OPTIONS] setup             private interface + overlay; prints what it found
 *   ns-tool [OPTIONS] reconcile FILE    setup, then program the peers in FILE
 *   ns-tool [OPTIONS] check FILE        validate the peers in FILE (no netlink)
 *   ns-tool [OPTIONS] remove            delete flannel.<vni>
 *   ns-tool [OPTIONS] watch             setup, print "ready", then one line per event
 *   ns-tool [OPTIONS] session           setup, print "ready", then one command a line on stdin:
 *       reconcile FILE [no-remove]      reconcile, print the stats, then the events pending
 *                                       right after it (its own notifications are queued
 *                                       by then: the kernel sends them within the requests)
 *       delta FILE|- [SUBNET,...]       ns_overlay_apply_delta(): the peers in FILE added or
 *                                       changed, the subnets (A/LEN) removed; as reconcile
 *       process                         the events pending now, without waiting
 *       wait MS                         poll the monitor up to MS ms, then its events
 *     each answer ends with "end"; events print as "event=NAME" lines.
 *
 * OPTIONS: --underlay IF (eth2) --addr A/LEN --vni N (1) --port N (8472)
 *          --mtu N (0 = auto) --network A/LEN (10.244.0.0/15) --subnet A/LEN (10.244.94.0/24)
 *          --once (watch: exit after the first event) --mac MAC (fixed VTEP MAC)
 *          --no-remove (reconcile: NS_RECONCILE_NO_REMOVE)
 *          --monitor-rcvbuf BYTES (shrink the monitor's receive buffer, to provoke overruns)
 * FILE: one peer a line, "SUBNET/LEN PUBLIC_IP MAC"; '#' starts a comment.
 * Output is "key=value" lines; exit status 0, or 1 with the error on stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include "netsetup.h"

static struct {
        const char *underlay;
        bool has_addr, once, no_remove;
        int monitor_rcvbuf;
        struct in_addr addr;
        unsigned addr_len;
        ns_overlay_config cfg;
} arg = {
        .underlay = "eth2",
        .cfg = { .vni = 1, .port = 8472, .network_len = 15, .subnet_len = 24 },
};

__attribute__((format(printf, 3, 0)))
static void log_stderr(int level, int error, const char *format, va_list ap) {
        static const char *names[] = { "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" };

        if (level >= LOG_DEBUG && !getenv("NS_TOOL_DEBUG"))
                return;
        fprintf(stderr, "ns-tool: %s: ", names[level & 7]);
        errno = error;
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
}

static int parse_prefix(const char *s, struct in_addr *a, unsigned *len) {
        char buf[32], *slash, *end;
        unsigned long l;

        if (strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;
        errno = 0;
        l = strtoul(slash + 1, &end, 10);
        if (errno || *end || l > 32 || inet_pton(AF_INET, buf, a) != 1)
                return -EINVAL;
        *len = (unsigned) l;
        return 0;
}

static int read_peers(const char *path, ns_peer **ret, size_t *n) {
        FILE *f = fopen(path, "re");
        char line[256];
        ns_peer *peers = NULL;
        size_t count = 0, cap = 0, lineno = 0;

        if (!f) {
                fprintf(stderr, "ns-tool: %s: %m\n", path);
                return -errno;
        }
        while (fgets(line, sizeof(line), f)) {
                char subnet[64], ip[64], mac[64];
                lineno++;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = 0;
                int k = sscanf(line, "%63s %63s %63s", subnet, ip, mac);
                if (k <= 0)
                        continue;
                if (count >= cap) {
                        cap = cap ? cap * 2 : 64;
                        ns_peer *p = realloc(peers, cap * sizeof(*peers));
                        if (!p) {
                                fclose(f);
                                free(peers);
                                return -ENOMEM;
                        }
                        peers = p;
                }
                ns_peer *p = &peers[count++];
                if (k != 3 || parse_prefix(subnet, &p->subnet, &p->subnet_len) < 0 ||
                    inet_pton(AF_INET, ip, &p->public_ip) != 1 || ns_parse_mac(mac, p->mac) < 0) {
                        fprintf(stderr, "ns-tool: %s:%zu: expected SUBNET/LEN PUBLIC_IP MAC\n", path, lineno);
                        fclose(f);
                        free(peers);
                        return -EINVAL;
                }
        }
        fclose(f);
        *ret = peers;
        *n = count;
        return 0;
}

static int setup(ns_ctx *ctx) {
        ns_link_info link;
        ns_overlay_info ov;
        char a[INET_ADDRSTRLEN], mac[18];
        const char *actions[] = { "created", "adopted", "replaced", "changed" };
        int r;

        r = ns_link_setup(ctx, arg.underlay, arg.has_addr ? &arg.addr : NULL, arg.addr_len, &link);
        if (r < 0)
                return r;
        printf("link_ifindex=%d\nlink_mtu=%u\nlink_addr=%s/%u\nlink_changes=%u\n", link.ifindex, link.mtu,
               inet_ntop(AF_INET, &link.addr, a, sizeof(a)), link.prefixlen, link.changes);

        arg.cfg.underlay_ifindex = link.ifindex;
        arg.cfg.local = link.addr;
        r = ns_overlay_setup(ctx, &arg.cfg, &ov);
        if (r < 0)
                return r;
        ns_format_mac(ov.mac, mac);
        printf("ifname=%s\nifindex=%d\nmac=%s\nmtu=%u\naction=%s\nchanges=%u\n", ov.ifname, ov.ifindex, mac, ov.mtu,
               actions[ov.action], ov.changes);
        fflush(stdout);
        return 0;
}

static void print_events(unsigned ev) {
        if (ev & NS_EVENT_OVERLAY_GONE)
                printf("event=overlay-gone\n");
        if (ev & NS_EVENT_OVERLAY_DOWN)
                printf("event=overlay-down\n");
        if (ev & NS_EVENT_UNDERLAY_DOWN)
                printf("event=underlay-down\n");
        if (ev & NS_EVENT_PEERS_DRIFT)
                printf("event=peers-drift\n");
}

static int reconcile(ns_ctx *ctx, const ns_peer *peers, size_t n, unsigned flags) {
        ns_reconcile_stats st = {};
        int r;

        r = ns_overlay_reconcile_flags(ctx, peers, n, flags, &st);
        printf("added=%u\nreplaced=%u\nremoved=%u\nunchanged=%u\nrequests=%u\ndumps=%u\nfailed=%u\n", st.added,
               st.replaced, st.removed, st.unchanged, st.requests, st.dumps, st.failed);
        return r;
}

static int watch(ns_ctx *ctx) {
        int r;

        r = setup(ctx);
        if (r < 0)
                return r;
        printf("ready\n");
        fflush(stdout);

        for (;;) {
                struct pollfd p = { .fd = ns_monitor_fd(ctx), .events = POLLIN };
                unsigned ev;

                if (poll(&p, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                r = ns_monitor_process(ctx, &ev);
                if (r < 0)
                        return r;
                print_events(ev);
                fflush(stdout);
                if (ev && arg.once)
                        return 0;
        }
}

static int delta(ns_ctx *ctx, const char *file, char *subnets) {
        ns_reconcile_stats st = {};
        ns_peer *peers = NULL;
        struct in_addr rm[64];
        size_t n = 0, n_rm = 0;
        int r = 0;

        for (char *t = subnets ? strtok(subnets, ",") : NULL; t; t = strtok(NULL, ",")) {
                unsigned len;
                if (n_rm >= 64 || parse_prefix(t, &rm[n_rm], &len) < 0)
                        return -EINVAL;
                n_rm++;
        }
        if (strcmp(file, "-") != 0)
                r = read_peers(file, &peers, &n);
        if (r >= 0)
                r = ns_overlay_apply_delta(ctx, peers, n, rm, n_rm, &st);
        free(peers);
        printf("added=%u\nreplaced=%u\nremoved=%u\nunchanged=%u\nrequests=%u\ndumps=%u\nfailed=%u\n", st.added,
               st.replaced, st.removed, st.unchanged, st.requests, st.dumps, st.failed);
        return r;
}

static int session_command(ns_ctx *ctx, char *line) {
        char *verb = strtok(line, " \t\n"), *a1 = strtok(NULL, " \t\n"), *a2 = strtok(NULL, " \t\n");
        unsigned ev = 0;
        int r = 0;

        if (!verb)
                return 0;
        if (strcmp(verb, "reconcile") == 0 && a1) {
                ns_peer *peers = NULL;
                size_t n = 0;
                unsigned flags = a2 && strcmp(a2, "no-remove") == 0 ? NS_RECONCILE_NO_REMOVE : 0;
                r = read_peers(a1, &peers, &n);
                if (r >= 0)
                        r = reconcile(ctx, peers, n, flags);
                free(peers);
                printf("rc=%d\n", r);
        } else if (strcmp(verb, "delta") == 0 && a1) {
                r = delta(ctx, a1, a2);
                printf("rc=%d\n", r);
        } else if (strcmp(verb, "wait") == 0 && a1) {
                struct pollfd p = { .fd = ns_monitor_fd(ctx), .events = POLLIN };
                int k = poll(&p, 1, atoi(a1));
                if (k == 0)
                        printf("timeout\n");
        } else if (strcmp(verb, "process") != 0) {
                printf("error=unknown command\nend\n");
                return 0;
        }
        r = ns_monitor_process(ctx, &ev);
        if (r < 0)
                printf("error=%s\n", ns_error_detail(r) ?: strerror(-r));
        print_events(ev);
        printf("end\n");
        return 0;
}

static int session(ns_ctx *ctx) {
        char line[512];
        int r;

        r = setup(ctx);
        if (r < 0)
                return r;
        printf("ready\n");
        fflush(stdout);
        while (fgets(line, sizeof(line), stdin)) {
                session_command(ctx, line);
                fflush(stdout);
        }
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "underlay", required_argument, NULL, 'u' },
                { "addr", required_argument, NULL, 'a' },
                { "vni", required_argument, NULL, 'v' },
                { "port", required_argument, NULL, 'p' },
                { "mtu", required_argument, NULL, 'm' },
                { "network", required_argument, NULL, 'n' },
                { "subnet", required_argument, NULL, 's' },
                { "once", no_argument, NULL, 'o' },
                { "mac", required_argument, NULL, 'M' },
                { "no-remove", no_argument, NULL, 'R' },
                { "monitor-rcvbuf", required_argument, NULL, 'B' },
                {}
        };
        ns_ctx *ctx = NULL;
        ns_peer *peers = NULL;
        size_t n = 0;
        int c, r;

        ns_set_log_func(log_stderr);
        inet_pton(AF_INET, "10.244.0.0", &arg.cfg.network);
        inet_pton(AF_INET, "10.244.94.0", &arg.cfg.subnet);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'u':
                        arg.underlay = optarg;
                        break;
                case 'a':
                        if (parse_prefix(optarg, &arg.addr, &arg.addr_len) < 0)
                                goto usage;
                        arg.has_addr = true;
                        break;
                case 'v':
                        arg.cfg.vni = (uint32_t) strtoul(optarg, NULL, 10);
                        break;
                case 'p':
                        arg.cfg.port = (uint16_t) strtoul(optarg, NULL, 10);
                        break;
                case 'm':
                        arg.cfg.mtu = (uint32_t) strtoul(optarg, NULL, 10);
                        break;
                case 'n':
                        if (parse_prefix(optarg, &arg.cfg.network, &arg.cfg.network_len) < 0)
                                goto usage;
                        break;
                case 's':
                        if (parse_prefix(optarg, &arg.cfg.subnet, &arg.cfg.subnet_len) < 0)
                                goto usage;
                        break;
                case 'o':
                        arg.once = true;
                        break;
                case 'B':
                        arg.monitor_rcvbuf = atoi(optarg);
                        break;
                case 'R':
                        arg.no_remove = true;
                        break;
                case 'M':
                        if (ns_parse_mac(optarg, arg.cfg.mac) < 0)
                                goto usage;
                        break;
                default:
                        goto usage;
                }
        }
        if (optind >= argc)
                goto usage;

        const char *verb = argv[optind];
        bool needs_file = (strcmp(verb, "reconcile") == 0) || (strcmp(verb, "check") == 0);
        if (needs_file) {
                if (optind + 1 >= argc)
                        goto usage;
                r = read_peers(argv[optind + 1], &peers, &n);
                if (r < 0)
                        return 1;
        }

        if ((strcmp(verb, "check") == 0)) {
                int bad = 0;
                for (size_t i = 0; i < n; i++) {
                        char err[256];
                        if (ns_peer_check(&arg.cfg, &peers[i], err, sizeof(err)) < 0) {
                                printf("invalid=%s\n", err);
                                bad = 1;
                        } else
                                printf("valid\n");
                }
                free(peers);
                return bad;
        }

        r = ns_new(&ctx);
        if (r < 0)
                return 1;
        if (arg.monitor_rcvbuf > 0 &&
            setsockopt(ns_monitor_fd(ctx), SOL_SOCKET, SO_RCVBUF, &arg.monitor_rcvbuf, sizeof(arg.monitor_rcvbuf)) < 0) {
                fprintf(stderr, "ns-tool: SO_RCVBUF: %m\n");
                ns_free(ctx);
                return 1;
        }

        if ((strcmp(verb, "setup") == 0))
                r = setup(ctx);
        else if ((strcmp(verb, "watch") == 0))
                r = watch(ctx);
        else if ((strcmp(verb, "session") == 0))
                r = session(ctx);
        else if ((strcmp(verb, "remove") == 0)) {
                r = ns_overlay_remove(ctx, arg.cfg.vni);
                if (r >= 0)
                        printf("removed=%d\n", r);
        } else if ((strcmp(verb, "bridge-stale") == 0) && optind + 1 < argc) {
                /* The gateway is the first address of --subnet. */
                struct in_addr gw = { .s_addr = htonl(ntohl(arg.cfg.subnet.s_addr) + 1) };
                r = ns_bridge_remove_stale(ctx, argv[optind + 1], &gw, arg.cfg.subnet_len, NULL);
                if (r >= 0)
                        printf("deleted=%d\n", r);
        } else if ((strcmp(verb, "reconcile") == 0)) {
                r = setup(ctx);
                if (r >= 0)
                        r = reconcile(ctx, peers, n, arg.no_remove ? NS_RECONCILE_NO_REMOVE : 0);
        } else {
                ns_free(ctx);
                goto usage;
        }

        ns_free(ctx);
        free(peers);
        if (r < 0) {
                /* Like the agent: the library's detail, logged once by its caller. */
                fprintf(stderr, "ns-tool: %s failed: %s\n", verb, ns_error_detail(r) ?: strerror(-r));
                return 1;
        }
        return 0;

usage:
        fprintf(stderr, "usage: ns-tool [--underlay IF] [--addr A/LEN] [--vni N] [--port N] [--mtu N]\n"
                        "               [--network A/LEN] [--subnet A/LEN] [--once] [--mac MAC] [--no-remove]\n"
                        "               setup | reconcile FILE | check FILE | remove | watch | session |\n"
                        "               bridge-stale NAME\n");
        free(peers);
        return 64;
}
