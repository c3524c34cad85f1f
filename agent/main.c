/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-lock.h"
#include "build-config.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "netsetup.h"

typedef struct Verb {
        const char *name;
        const char *args;
        const char *help;
        int (*run)(const CliArgs *a);
} Verb;

static int cmd_version(const CliArgs *a) {
        printf("corekube-agent %s\n", PACKAGE_VERSION);
        return 0;
}

static const Verb verbs[] = {
        { "run", "[-c FILE]", "run the node agent (the systemd service)", cmd_run },
        { "check-config", "[-c FILE]", "validate the configuration and print the effective values", cmd_check_config },
        { "status", "[--json] [--wait[=T]]", "the cluster table from etcd; --wait: until this node is ready", cmd_status },
        { "leave", "[-c FILE]", "leave: stop and disable the unit, release subnet and record, remove flannel.1", cmd_leave },
        { "leave", "--node NAME [--force]", "remove another node's record and subnet lease", cmd_leave },
        { "version", "", "print the version", cmd_version },
};

static void help(void) {
        printf("Usage: corekube-agent [OPTIONS] COMMAND\n\n"
               "The node agent of a corekube cluster: registers this node in etcd, sets up\n"
               "its flannel VXLAN overlay and starts its Kubernetes role units.\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char left[64];
                snprintf(left, sizeof left, "%s %s", verbs[i].name, verbs[i].args);
                printf("  %-30s %s\n", left, verbs[i].help);
        }
        printf("\nOptions:\n"
               "  -c, --config=FILE              configuration file (default %s;\n"
               "                                 drop-ins from FILE.d/*.conf)\n"
               "      --log-level=LEVEL          debug, info, notice, warning, error\n"
               "                                 (also COREKUBE_LOG_LEVEL)\n"
               "      --json                     status: print JSON\n"
               "      --wait[=TIMEOUT]           status: wait until this node is ready (exit 0), or\n"
               "                                 TIMEOUT (e.g. 90s, 5m) passes or it fails (exit 1)\n"
               "      --node NAME                leave: another node (its record's name or machine\n"
               "                                 ID); refused while its record is alive\n"
               "      --force                    leave --node: even while its record is alive\n"
               "  -h, --help                     show this help\n"
               "      --version                  print the version\n\n"
               "'leave' stops and disables corekube-agent.service first when that is what\n"
               "runs; it refuses (exit 1) while another process holds %s,\n"
               "and exits 69 when it cannot ask systemd (D-Bus) which one holds it.\n\n"
               "Exit codes: 0 ok, 1 runtime failure, 64 usage error, 69 service unavailable,\n"
               "78 configuration error.\n", CONFIG_DEFAULT_PATH, AGENT_LOCK_PATH);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "corekube-agent: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (try 'corekube-agent --help')\n");
        return EXIT_USAGE;
}

int main(int argc, char *argv[]) {
        enum { ARG_LOG_LEVEL = 0x100, ARG_VERSION, ARG_JSON, ARG_WAIT, ARG_NODE, ARG_FORCE };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "json", no_argument, NULL, ARG_JSON },
                { "wait", optional_argument, NULL, ARG_WAIT },
                { "node", required_argument, NULL, ARG_NODE },
                { "force", no_argument, NULL, ARG_FORCE },
                {}
        };
        CliArgs a = {};
        const char *e;
        const Verb *v = NULL;
        int c;

        log_open();
        ns_set_log_func(log_netsetup);
        e = getenv("COREKUBE_LOG_LEVEL");
        if (e) {
                int l = log_level_from_string(e);
                if (l < 0)
                        return usage_error("invalid COREKUBE_LOG_LEVEL \"%s\"", e);
                log_set_max_level(l);
        }

        /* '+' stops at the first non-option, so that options may also follow
         * the command: we parse in two rounds around it. */
        for (int round = 0; round < 2; round++) {
                opterr = 0;
                while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0) {
                        switch (c) {
                        case 'c':
                                a.config_path = optarg;
                                break;
                        case 'h':
                                help();
                                return 0;
                        case ARG_VERSION:
                                return cmd_version(&a);
                        case ARG_LOG_LEVEL: {
                                int l = log_level_from_string(optarg);
                                if (l < 0)
                                        return usage_error("invalid log level \"%s\"", optarg);
                                log_set_max_level(l);
                                break;
                        }
                        case ARG_JSON:
                                a.json = true;
                                break;
                        case ARG_WAIT:
                                a.wait = true;
                                a.wait_timeout = optarg;
                                break;
                        case ARG_NODE:
                                if (strempty(optarg))
                                        return usage_error("--node needs a node name or machine ID");
                                a.node = optarg;
                                break;
                        case ARG_FORCE:
                                a.force = true;
                                break;
                        case '?':
                                if (optopt && optopt < 0x100)
                                        return usage_error("unknown or incomplete option '-%c'", optopt);
                                return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
                        default:
                                return usage_error("unexpected option");
                        }
                }
                if (round == 1)
                        break;
                if (optind >= argc)
                        return usage_error("missing command");
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                        if (streq(argv[optind], verbs[i].name)) {
                                v = &verbs[i];
                                break;
                        }
                if (!v)
                        return usage_error("unknown command \"%s\"", argv[optind]);
                /* Continue after the command name. */
                argc -= optind;
                argv += optind;
                optind = 1;
        }
        if (optind < argc)
                return usage_error("unexpected argument \"%s\" for %s", argv[optind], v->name);
        if ((a.json || a.wait) && v->run != cmd_status)
                return usage_error("--json and --wait only apply to status");
        if (a.node && v->run != cmd_leave)
                return usage_error("--node only applies to leave");
        if (a.force && !a.node)
                return usage_error("--force only applies to leave --node");
        return v->run(&a);
}
