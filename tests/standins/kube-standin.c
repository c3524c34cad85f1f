/* SPDX-License-Identifier: Apache-2.0 */
/* kube-standin: a STAND-IN for the Kubernetes v0.6.2 binaries, which cannot be
 * had on the test machine. It is not Kubernetes. Installed under the names of
 * the real binaries (/opt/bin/kube-apiserver, kubelet, ...), it picks its
 * mode from argv[0] (or from the first argument when called as kube-standin):
 *
 *   kube-apiserver   HTTP on --address/--port (0.0.0.0:8080) that records
 *                    minion registrations (see standin-apiserver.h)
 *   kubectl          "get minions" prints the apiserver's list (-s URL)
 *   anything else    logs its arguments and stays up until SIGTERM
 *
 * Failure switch, for tests of failing units: when KUBE_STANDIN_FAIL=1 is in
 * the environment, or /etc/kube-standin/fail-<mode> or
 * /etc/kube-standin/fail-all exists ($KUBE_STANDIN_ETC overrides the
 * directory), it logs why and exits 1 at once. */

#include <libgen.h>
#include <signal.h>
#include <stdbool.h>

#include "macro.h"
#include "standin-apiserver.h"
#include "standin-http.h"

#define DEFAULT_STATE_DIR "/var/lib/kube-standin"
#define DEFAULT_ETC_DIR "/etc/kube-standin"

/* Value of a Go-style flag: "--name=value", "-name=value", "--name value". */
static const char *flag_value(int argc, char *argv[], const char *name) {
        size_t n = strlen(name);

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (a[0] != '-')
                        continue;
                a += a[1] == '-' ? 2 : 1;
                if (strncmp(a, name, n) != 0)
                        continue;
                if (a[n] == '=')
                        return a + n + 1;
                if (a[n] == 0 && i + 1 < argc)
                        return argv[i + 1];
        }
        return NULL;
}

static bool should_fail(const char *mode) {
        const char *e = getenv("KUBE_STANDIN_FAIL"), *dir = getenv("KUBE_STANDIN_ETC");
        _cleanup_free_ char *p = NULL;

        if (e && streq(e, "1")) {
                fprintf(stderr, "%s stand-in: failing on purpose (KUBE_STANDIN_FAIL=1)\n", mode);
                return true;
        }
        if (!dir)
                dir = DEFAULT_ETC_DIR;
        if (asprintf(&p, "%s/fail-%s", dir, mode) < 0)
                return false;
        if (access(p, F_OK) == 0) {
                fprintf(stderr, "%s stand-in: failing on purpose (%s exists)\n", mode, p);
                return true;
        }
        free(p);
        p = NULL;
        if (asprintf(&p, "%s/fail-all", dir) < 0)
                return false;
        if (access(p, F_OK) == 0) {
                fprintf(stderr, "%s stand-in: failing on purpose (%s exists)\n", mode, p);
                return true;
        }
        return false;
}

static void log_arguments(const char *mode, int argc, char *argv[]) {
        fprintf(stderr, "%s stand-in (not Kubernetes) started with:", mode);
        for (int i = 1; i < argc; i++)
                fprintf(stderr, " %s", argv[i]);
        fputc('\n', stderr);
}

static int run_apiserver(int argc, char *argv[]) {
        const char *address = flag_value(argc, argv, "address"), *port = flag_value(argc, argv, "port");
        const char *dir = getenv("KUBE_STANDIN_DIR");
        char *end;
        unsigned long p = 8080;

        if (port) {
                errno = 0;
                p = strtoul(port, &end, 10);
                if (errno != 0 || *end != 0 || p == 0 || p > 65535) {
                        fprintf(stderr, "kube-apiserver stand-in: invalid --port=%s\n", port);
                        return 64;
                }
        }
        return apiserver_run(address ?: "0.0.0.0", (unsigned) p, dir ?: DEFAULT_STATE_DIR);
}

static int run_kubectl(int argc, char *argv[]) {
        const char *server = flag_value(argc, argv, "s") ?: flag_value(argc, argv, "server");
        _cleanup_free_ char *url = NULL, *body = NULL;
        int code;

        /* Only "get minions" means anything to the stand-in. */
        if (argc < 3 || !streq(argv[argc - 2], "get") || !streq(argv[argc - 1], "minions")) {
                fprintf(stderr, "kubectl stand-in (not Kubernetes): only \"get minions\" is known\n");
                return 64;
        }
        if (asprintf(&url, "%s/api/v1beta1/minions", server ?: "http://127.0.0.1:8080") < 0)
                return 1;
        code = http_get(url, &body);
        if (code < 0) {
                fprintf(stderr, "kubectl stand-in: GET %s failed: %s\n", url, strerror(-code));
                return 1;
        }
        printf("%s\n", body);
        return code == 200 ? 0 : 1;
}

static void stop_signals(sigset_t *ss) {
        sigemptyset(ss);
        sigaddset(ss, SIGTERM);
        sigaddset(ss, SIGINT);
}

static int run_idle(const char *mode) {
        sigset_t ss;
        int sig = 0;

        /* Stay up like a real daemon would; SIGTERM is a clean stop. */
        stop_signals(&ss);
        if (sigwait(&ss, &sig) != 0)
                return 1;
        fprintf(stderr, "%s stand-in: stopping on signal %d\n", mode, sig);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char *a0 = strdup(argv[0] ?: "kube-standin");
        const char *mode;
        sigset_t ss;

        /* Blocked from the start, so that a SIGTERM arriving while we start
         * up is still a clean stop rather than a kill. */
        stop_signals(&ss);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        if (!a0)
                return 1;
        mode = basename(a0);
        if (streq(mode, "kube-standin")) {
                if (argc < 2) {
                        fprintf(stderr, "usage: kube-standin MODE [ARGS...]  (a stand-in, not Kubernetes)\n");
                        return 64;
                }
                mode = argv[1];
                argv++;
                argc--;
        }

        setvbuf(stderr, NULL, _IOLBF, 0);
        log_arguments(mode, argc, argv);
        if (should_fail(mode))
                return 1;

        if (streq(mode, "kube-apiserver"))
                return run_apiserver(argc, argv);
        if (streq(mode, "kubectl")) {
                sigprocmask(SIG_UNBLOCK, &ss, NULL);
                return run_kubectl(argc, argv);
        }
        return run_idle(mode);
}
