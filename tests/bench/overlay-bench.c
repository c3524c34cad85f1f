/* SPDX-License-Identifier: Apache-2.0 */
/* Overlay benchmark: netsetup's reconcile against iproute2's batch mode.
 *
 * Run it inside a network namespace of its own whose eth2 it may configure
 * (run-overlay-bench.sh does that). For each N: the median of several runs
 * of programming N peers (3N entries: ARP, FDB, route) from empty, a no-op
 * reconcile, replacing 10% of the peers; and the same 3N entries from empty
 * with `ip -batch` + `bridge -batch`, and the same 10% replacement with them.
 * Prints numbers; asserts only that each run did what it should.
 *
 *   overlay-bench [--runs R] N...        (default: --runs 7 100 1000 5000) */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netsetup.h"

static ns_ctx *ctx;
static ns_overlay_config cfg;
static char tmpdir[256];

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, int r) {
        fprintf(stderr, "overlay-bench: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

/* Peer i: subnet 10.<i/256 + 1>.<i%256>.0/24, public IP and MAC from i and a
 * generation (a replaced peer gets a new subnet, IP and MAC). */
static void make_peer(ns_peer *p, unsigned i, unsigned gen) {
        unsigned k = i + gen * 20000;
        memset(p, 0, sizeof(*p));
        p->subnet.s_addr = htonl((10u << 24) | ((k / 256 + 1) << 16) | ((k % 256) << 8));
        p->subnet_len = 24;
        p->public_ip.s_addr = htonl((172u << 24) | (16u << 16) | (k + 1));
        uint8_t mac[6] = { 0x02, 0x42, (uint8_t) gen, (uint8_t) (k >> 16), (uint8_t) (k >> 8), (uint8_t) k };
        memcpy(p->mac, mac, 6);
}

static void reset_overlay(void) {
        ns_overlay_info info;
        int r;

        r = ns_overlay_remove(ctx, cfg.vni);
        if (r < 0)
                die("remove", r);
        r = ns_overlay_setup(ctx, &cfg, &info);
        if (r < 0)
                die("setup", r);
}

static double reconcile(const ns_peer *peers, size_t n, ns_reconcile_stats *st) {
        double t0 = now_ms();
        int r = ns_overlay_reconcile(ctx, peers, n, st);
        double t = now_ms() - t0;
        if (r < 0)
                die("reconcile", r);
        return t;
}

static void write_line_peer(FILE *ip, FILE *br, const ns_peer *p, bool add) {
        char s[INET_ADDRSTRLEN], pub[INET_ADDRSTRLEN], mac[18];

        inet_ntop(AF_INET, &p->subnet, s, sizeof(s));
        inet_ntop(AF_INET, &p->public_ip, pub, sizeof(pub));
        ns_format_mac(p->mac, mac);
        if (add) {
                fprintf(ip, "neigh add %s lladdr %s dev flannel.1 nud permanent\n", s, mac);
                fprintf(br, "fdb add %s dev flannel.1 dst %s self permanent\n", mac, pub);
                fprintf(ip, "route add %s/24 via %s dev flannel.1 onlink\n", s, s);
        } else {
                fprintf(ip, "route del %s/24 via %s dev flannel.1\n", s, s);
                fprintf(br, "fdb del %s dev flannel.1 dst %s self\n", mac, pub);
                fprintf(ip, "neigh del %s dev flannel.1\n", s);
        }
}

/* Writes the iproute2 batch files: `del` peers removed, then `add` peers added. */
static void write_batches(const char *ipf, const char *brf, const ns_peer *del, size_t ndel, const ns_peer *add,
                          size_t nadd) {
        FILE *ip = fopen(ipf, "we"), *br = fopen(brf, "we");
        if (!ip || !br)
                die("batch file", errno);
        for (size_t i = 0; i < ndel; i++)
                write_line_peer(ip, br, &del[i], false);
        for (size_t i = 0; i < nadd; i++)
                write_line_peer(ip, br, &add[i], true);
        if (fclose(ip) != 0 || fclose(br) != 0)
                die("batch file", errno);
}

static void run_cmd(const char *prog, const char *file) {
        pid_t pid = fork();
        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                execlp(prog, prog, "-batch", file, (char *) NULL);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                die("waitpid", errno);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "overlay-bench: %s -batch %s failed\n", prog, file);
                exit(1);
        }
}

/* iproute2 as the reference: ARP and routes in one `ip -batch`, FDB in one
 * `bridge -batch`, process start-up included (that is what it costs). */
static double iproute2(const char *ipf, const char *brf) {
        double t0 = now_ms();
        run_cmd("ip", ipf);
        run_cmd("bridge", brf);
        return now_ms() - t0;
}

static void expect(bool ok, const char *what, size_t n) {
        if (!ok) {
                fprintf(stderr, "overlay-bench: N=%zu: %s\n", n, what);
                exit(1);
        }
}

static void bench(size_t n, unsigned runs) {
        ns_peer *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
        double *t_empty = calloc(runs, sizeof(double)), *t_ip = calloc(runs, sizeof(double)),
               *t_noop = calloc(runs, sizeof(double)), *t_repl = calloc(runs, sizeof(double)),
               *t_ip_repl = calloc(runs, sizeof(double));
        size_t k = n / 10, keep = n - k;
        char ipf[320], brf[320], ipr[320], brr[320];
        ns_reconcile_stats st;

        if (!a || !b || !t_empty || !t_ip || !t_noop || !t_repl || !t_ip_repl)
                die("alloc", ENOMEM);
        for (size_t i = 0; i < n; i++) {
                make_peer(&a[i], (unsigned) i, 0);
                b[i] = a[i];
        }
        for (size_t i = keep; i < n; i++)
                make_peer(&b[i], (unsigned) i, 1); /* B: A with its last 10% replaced */

        snprintf(ipf, sizeof(ipf), "%s/ip-%zu", tmpdir, n);
        snprintf(brf, sizeof(brf), "%s/br-%zu", tmpdir, n);
        snprintf(ipr, sizeof(ipr), "%s/ip-a2b-%zu", tmpdir, n);
        snprintf(brr, sizeof(brr), "%s/br-a2b-%zu", tmpdir, n);
        write_batches(ipf, brf, NULL, 0, a, n);
        write_batches(ipr, brr, a + keep, k, b + keep, k);

        for (unsigned r = 0; r < runs; r++) {
                reset_overlay();
                t_empty[r] = reconcile(a, n, &st);
                expect(st.added == 3 * n && st.failed == 0, "from empty did not add 3N entries", n);

                t_noop[r] = reconcile(a, n, &st);
                expect(st.requests == 0 && st.unchanged == 3 * n, "no-op reconcile sent requests", n);

                t_repl[r] = reconcile(b, n, &st); /* A -> B: 10% of the peers replaced */
                expect(st.added == 3 * k && st.removed == 3 * k && st.failed == 0, "replace did not swap 10%", n);

                reset_overlay();
                t_ip[r] = iproute2(ipf, brf);
                reconcile(a, n, &st);
                expect(st.requests == 0 && st.unchanged == 3 * n, "iproute2 did not program the same state", n);
                t_ip_repl[r] = iproute2(ipr, brr);
                reconcile(b, n, &st);
                expect(st.requests == 0, "iproute2 replace did not reach the same state", n);
        }

        double e = median(t_empty, runs), i = median(t_ip, runs), z = median(t_noop, runs),
               p = median(t_repl, runs), q = median(t_ip_repl, runs);
        printf("%6zu | %10.2f | %10.2f | %5.2f | %8.3f | %10.2f | %10.2f | %5.2f\n", n, e, i, e / i, z, p, q, p / q);
        fflush(stdout);

        unlink(ipf), unlink(brf), unlink(ipr), unlink(brr);
        free(a), free(b), free(t_empty), free(t_ip), free(t_noop), free(t_repl), free(t_ip_repl);
}

int main(int argc, char *argv[]) {
        unsigned runs = 7;
        ns_link_info link;
        struct in_addr addr;
        int r, first = 1;

        if (argc > 2 && strcmp(argv[1], "--runs") == 0) {
                runs = (unsigned) atoi(argv[2]);
                first = 3;
        }
        if (runs < 1)
                runs = 1;

        r = ns_new(&ctx);
        if (r < 0)
                die("ns_new", r);
        inet_pton(AF_INET, "192.168.3.11", &addr);
        r = ns_link_setup(ctx, "eth2", &addr, 24, &link);
        if (r < 0)
                die("eth2", r);

        cfg = (ns_overlay_config) { .vni = 1, .port = 8472, .network_len = 8, .subnet_len = 24,
                                    .underlay_ifindex = link.ifindex, .local = link.addr };
        inet_pton(AF_INET, "10.0.0.0", &cfg.network);
        inet_pton(AF_INET, "10.255.255.0", &cfg.subnet);

        /* Under $TMPDIR: the run script points it at a directory it removes
         * on every exit path, also when this program dies half way. */
        snprintf(tmpdir, sizeof(tmpdir), "%s/overlay-bench.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        if (!mkdtemp(tmpdir))
                die("mkdtemp", errno);

        printf("overlay-bench: median of %u runs, milliseconds; N peers = 3N entries (ARP, FDB, route)\n", runs);
        printf("     N | ours empty |   iproute2 | ratio | ours noop | ours 10%%  | iproute2 10%% | ratio\n");
        if (first >= argc) {
                static const size_t def[] = { 100, 1000, 5000 };
                for (size_t i = 0; i < 3; i++)
                        bench(def[i], runs);
        } else
                for (int i = first; i < argc; i++)
                        bench((size_t) strtoul(argv[i], NULL, 10), runs);

        ns_overlay_remove(ctx, cfg.vni);
        rmdir(tmpdir);
        ns_free(ctx);
        return 0;
}
