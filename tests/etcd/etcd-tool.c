/* SPDX-License-Identifier: Apache-2.0 */
/* Test driver for the etcd modules: runs one of them against a real etcd and
 * prints one JSON line per event on stdout, so pytest can follow along.
 * Commands on stdin steer long-running modes; SIGUSR1 prints counters. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>
#include <unistd.h>

#include "etcd-client.h"
#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "netsetup.h"
#include "network-config.h"
#include "peer-watch.h"
#include "peer-delta-check.h"
#include "registry.h"
#include "subnet-lease.h"
#include "subnet-record.h"

static struct {
        EtcdClientOptions client;
        char **endpoints;
        const char *prefix, *net_prefix, *network;
        unsigned subnet_len;
        uint32_t vni;
        const char *machine_id, *name, *role, *ip, *subnet, *mac, *subnet_file;
        const char *own_subnet, *own_ip;
        uint64_t ttl_usec, margin_usec;
        bool once, prefix_range;
        int64_t revision;
} arg = {
        .prefix = "/corekube",
        .net_prefix = "/coreos.com/network",
        .network = "10.244.0.0/15",
        .subnet_len = 24,
        .vni = 1,
        .role = "minion",
        .mac = "02:00:00:00:00:01",
};

static sd_event *event;
static EtcdClient *client;
static Registry *registry;
static SubnetLease *lease;
static PeerWatch *peers;
static int exit_code;

static void emit(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        fflush(stdout);
        json_object_put(o);
}

static json_object *ev(const char *name) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "event", json_object_new_string(name));
        return o;
}

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_int(json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
}

static void emit_error(int error, const char *message) {
        json_object *o = ev("error");

        add_int(o, "error", error);
        add_str(o, "errno", strerror(-error));
        add_str(o, "message", message);
        emit(o);
}

static void quit(int code) {
        exit_code = code;
        sd_event_exit(event, code);
}

static json_object *kv_json(const EtcdKv *kv) {
        json_object *o = json_object_new_object();

        add_str(o, "key", kv->key);
        add_str(o, "value", kv->value);
        add_int(o, "lease", kv->lease);
        add_int(o, "create_revision", kv->create_revision);
        add_int(o, "mod_revision", kv->mod_revision);
        add_int(o, "version", kv->version);
        return o;
}

static json_object *result_json(const char *name, const EtcdResult *r) {
        json_object *o = ev(name), *kvs = json_object_new_array();

        add_int(o, "revision", r->revision);
        json_object_object_add(o, "succeeded", json_object_new_boolean(r->succeeded));
        for (size_t i = 0; i < r->n_kvs; i++)
                json_object_array_add(kvs, kv_json(&r->kvs[i]));
        json_object_object_add(o, "kvs", kvs);
        add_int(o, "lease_id", r->lease_id);
        add_int(o, "ttl", r->ttl);
        add_int(o, "granted_ttl", r->granted_ttl);
        add_int(o, "deleted", r->deleted);
        return o;
}

/* ---- one-shot calls ---- */

static void on_result(EtcdClient *c, int error, const char *message, const EtcdResult *r, void *userdata) {
        if (error < 0) {
                emit_error(error, message);
                quit(1);
                return;
        }
        emit(result_json(userdata, r));
        quit(0);
}

static void on_ttl_kv(EtcdClient *c, int error, const char *message, const EtcdResult *r, void *userdata) {
        if (error < 0 || r->n_kvs != 1 || r->kvs[0].lease == 0) {
                emit_error(error < 0 ? error : -ENOENT, message ? message : "no such key or no lease");
                quit(1);
                return;
        }
        if (etcd_lease_timetolive(c, r->kvs[0].lease, on_result, (void *) "ttl", NULL) < 0)
                quit(1);
}

/* ---- registration ---- */

static void on_registry(Registry *r, RegistryEvent e, int error, const char *message, void *userdata) {
        static const char *const names[] = {
                [REGISTRY_REGISTERED] = "registered",
                [REGISTRY_WRITTEN] = "written",
                [REGISTRY_LOST] = "lost",
                [REGISTRY_FAILED] = "failed",
                [REGISTRY_RENEWED] = "renewed",
        };
        json_object *o = ev(names[e]);

        add_int(o, "lease", registry_get_lease(r));
        add_str(o, "key", registry_get_key(r));
        if (message)
                add_str(o, "message", message);
        emit(o);
}

static void on_left(EtcdClient *c, int error, const char *message, const EtcdResult *r, void *userdata) {
        if (error < 0)
                emit_error(error, message);
        else
                emit(ev("left"));
        quit(error < 0);
}

/* ---- subnet lease ---- */

static void on_lease(SubnetLease *l, int error, const char *message, const SubnetLeaseEvent *e, void *userdata) {
        char a[IP4_STRLEN], b[IP4_STRLEN], s[32];
        json_object *o;

        if (error < 0) {
                emit_error(error, message);
                return;
        }
        o = ev("acquired");
        snprintf(s, sizeof s, "%s/%u", ip4_format(e->subnet, a), e->len);
        add_str(o, "subnet", s);
        add_str(o, "previous", e->previous_subnet ? ip4_format(e->previous_subnet, b) : NULL);
        json_object_object_add(o, "changed", json_object_new_boolean(e->changed));
        add_int(o, "lease", e->lease_id);
        add_str(o, "key", e->key);
        emit(o);
        if (peers) {
                uint32_t ip = 0;

                (void) ip4_parse(arg.ip, &ip);
                (void) peer_watch_set_own(peers, e->subnet, ip);
        }
        if (arg.once)
                quit(0);
}

static void on_peers(PeerWatch *w, const SubnetRecord *p, size_t n, const PeerWatchDelta *delta, void *userdata) {
        static SubnetRecord *prev;
        static size_t n_prev;
        json_object *o = ev("peers"), *a = json_object_new_array();

        for (size_t i = 0; i < n; i++) {
                json_object *x = json_object_new_object();
                char s[IP4_STRLEN], ip[IP4_STRLEN], mac[MAC_STRLEN], cidr[32];

                snprintf(cidr, sizeof cidr, "%s/%u", ip4_format(p[i].subnet, s), p[i].len);
                add_str(x, "subnet", cidr);
                add_str(x, "ip", ip4_format(p[i].public_ip, ip));
                add_str(x, "mac", ns_format_mac(p[i].vtep_mac, mac));
                json_object_array_add(a, x);
        }
        json_object_object_add(o, "peers", a);
        add_int(o, "lists", peer_watch_get_lists(w));
        add_int(o, "batches", peer_watch_get_batches(w));
        if (delta) {
                json_object *d = json_object_new_object();
                add_int(d, "upsert", (int64_t) delta->n_upsert);
                add_int(d, "removed", (int64_t) delta->n_removed);
                json_object_object_add(d, "consistent",
                                       json_object_new_boolean(delta_consistent(prev, n_prev, delta, p, n)));
                json_object_object_add(o, "delta", d);
        }
        free(prev);
        prev = calloc(n + 1, sizeof *prev);
        n_prev = prev ? n : 0;
        if (prev && n > 0)
                memcpy(prev, p, n * sizeof *prev);
        emit(o);
}

static NetworkConfig wanted_config;

static void start_lease_and_watch(const NetworkConfig *cfg, bool do_lease, bool do_watch) {
        int r;

        if (do_lease) {
                SubnetLeaseOptions o = {
                        .prefix = arg.net_prefix,
                        .config = *cfg,
                        .ttl_usec = arg.ttl_usec,
                        .renew_margin_usec = arg.margin_usec,
                };

                if (!arg.ip || ip4_parse(arg.ip, &o.public_ip) < 0 || ns_parse_mac(arg.mac, o.vtep_mac) < 0) {
                        emit_error(-EINVAL, "--ip and --mac are needed");
                        quit(2);
                        return;
                }
                if (arg.subnet_file) {
                        r = subnet_lease_read_subnet_file(arg.subnet_file, &o.preferred_subnet, &o.preferred_len);
                        if (r < 0 && r != -ENOENT)
                                emit_error(r, "cannot read the subnet file");
                }
                r = subnet_lease_new(client, event, &o, on_lease, NULL, &lease);
                if (r < 0) {
                        emit_error(r, "subnet_lease_new");
                        quit(1);
                        return;
                }
                (void) subnet_lease_start(lease);
        }
        if (do_watch) {
                PeerWatchOptions o = { .prefix = arg.net_prefix, .config = *cfg };

                if (arg.own_subnet) {
                        unsigned len;

                        if (ip4_parse_cidr(arg.own_subnet, false, &o.own_subnet, &len) < 0) {
                                emit_error(-EINVAL, "bad --own-subnet");
                                quit(2);
                                return;
                        }
                }
                if (arg.own_ip)
                        (void) ip4_parse(arg.own_ip, &o.own_ip);
                else if (arg.ip)
                        (void) ip4_parse(arg.ip, &o.own_ip);
                r = peer_watch_new(client, event, &o, on_peers, NULL, &peers);
                if (r < 0) {
                        emit_error(r, "peer_watch_new");
                        quit(1);
                        return;
                }
                (void) peer_watch_start(peers);
        }
}

static bool mode_lease, mode_watch, mode_config;

static void on_config(int error, const char *message, const NetworkConfig *cfg, bool created, void *userdata) {
        _cleanup_free_ char *json = NULL;
        json_object *o;

        if (error < 0) {
                emit_error(error, message);
                quit(1);
                return;
        }
        o = ev("config");
        json_object_object_add(o, "created", json_object_new_boolean(created));
        if (network_config_to_json(cfg, &json) >= 0)
                add_str(o, "config", json);
        emit(o);
        if (mode_config) {
                quit(0);
                return;
        }
        start_lease_and_watch(cfg, mode_lease, mode_watch);
}

/* ---- stdin commands and signals ---- */

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        static char buf[4096];
        static size_t have;
        ssize_t n;
        char *nl;

        n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) {
                sd_event_source_disable_unref(s);
                return 0;
        }
        have += (size_t) n;
        buf[have] = 0;
        while ((nl = strchr(buf, '\n'))) {
                char cmd[64] = "", a1[256] = "", a2[256] = "";

                *nl = 0;
                (void) sscanf(buf, "%63s %255s %255[^\n]", cmd, a1, a2);
                if (streq(cmd, "state") && registry)
                        (void) registry_set_state(registry, a1, *a2 ? a2 : NULL);
                else if (streq(cmd, "unit") && registry)
                        (void) registry_set_unit(registry, a1, *a2 ? a2 : NULL);
                else if (streq(cmd, "subnet") && registry)
                        (void) registry_set_subnet(registry, a1);
                else if (streq(cmd, "leave") && registry) {
                        if (registry_leave(registry, on_left, NULL) < 0)
                                quit(1);
                } else if (streq(cmd, "release") && lease) {
                        if (subnet_lease_release(lease, on_left, NULL) < 0)
                                quit(1);
                } else if (streq(cmd, "mac") && lease) {
                        uint8_t m[6];

                        if (ns_parse_mac(a1, m) < 0 || subnet_lease_set_vtep_mac(lease, m) < 0)
                                emit_error(-EINVAL, "cannot set the VTEP MAC");
                } else if (streq(cmd, "relist") && peers)
                        (void) peer_watch_relist(peers);
                else if (streq(cmd, "stats")) {
                        json_object *o = ev("stats");

                        add_int(o, "attempts", (int64_t) etcd_client_get_attempts(client));
                        emit(o);
                }
                have -= (size_t) (nl + 1 - buf);
                memmove(buf, nl + 1, have + 1);
        }
        return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        json_object *o = ev("stats");

        add_int(o, "attempts", (int64_t) etcd_client_get_attempts(client));
        add_str(o, "endpoint", etcd_client_get_endpoint(client));
        if (peers) {
                add_int(o, "lists", peer_watch_get_lists(peers));
                add_int(o, "batches", peer_watch_get_batches(peers));
        }
        emit(o);
        return 0;
}

static uint64_t parse_ms(const char *s) {
        return (uint64_t) strtoull(s, NULL, 10) * USEC_PER_MSEC;
}

static int parse_args(int argc, char *argv[]) {
        enum { O_ENDPOINTS = 256, O_CACERT, O_CERT, O_KEY, O_USER, O_PASSWORD, O_MAX_ROUNDS, O_BACKOFF_MIN,
               O_BACKOFF_MAX, O_TIMEOUT, O_PREFIX, O_NET_PREFIX, O_NETWORK, O_SUBNET_LEN, O_VNI, O_MACHINE_ID,
               O_NAME, O_ROLE, O_IP, O_SUBNET, O_MAC, O_SUBNET_FILE, O_OWN_SUBNET, O_OWN_IP, O_TTL, O_MARGIN,
               O_ONCE, O_RANGE_PREFIX, O_REVISION, O_WATCH_CHECK, O_WATCH_GRACE };
        static const struct option options[] = {
                { "endpoints", required_argument, NULL, O_ENDPOINTS },
                { "cacert", required_argument, NULL, O_CACERT },
                { "cert", required_argument, NULL, O_CERT },
                { "key", required_argument, NULL, O_KEY },
                { "user", required_argument, NULL, O_USER },
                { "password", required_argument, NULL, O_PASSWORD },
                { "max-rounds", required_argument, NULL, O_MAX_ROUNDS },
                { "backoff-min", required_argument, NULL, O_BACKOFF_MIN },
                { "backoff-max", required_argument, NULL, O_BACKOFF_MAX },
                { "timeout", required_argument, NULL, O_TIMEOUT },
                { "prefix", required_argument, NULL, O_PREFIX },
                { "net-prefix", required_argument, NULL, O_NET_PREFIX },
                { "network", required_argument, NULL, O_NETWORK },
                { "subnet-len", required_argument, NULL, O_SUBNET_LEN },
                { "vni", required_argument, NULL, O_VNI },
                { "machine-id", required_argument, NULL, O_MACHINE_ID },
                { "name", required_argument, NULL, O_NAME },
                { "role", required_argument, NULL, O_ROLE },
                { "ip", required_argument, NULL, O_IP },
                { "subnet", required_argument, NULL, O_SUBNET },
                { "mac", required_argument, NULL, O_MAC },
                { "subnet-file", required_argument, NULL, O_SUBNET_FILE },
                { "own-subnet", required_argument, NULL, O_OWN_SUBNET },
                { "own-ip", required_argument, NULL, O_OWN_IP },
                { "ttl", required_argument, NULL, O_TTL },
                { "margin", required_argument, NULL, O_MARGIN },
                { "once", no_argument, NULL, O_ONCE },
                { "range-prefix", no_argument, NULL, O_RANGE_PREFIX },
                { "revision", required_argument, NULL, O_REVISION },
                { "watch-check", required_argument, NULL, O_WATCH_CHECK },   /* ms; "off" */
                { "watch-grace", required_argument, NULL, O_WATCH_GRACE },   /* ms */
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case O_ENDPOINTS:
                        if (etcd_parse_endpoints(optarg, &arg.endpoints) < 0)
                                return -EINVAL;
                        break;
                case O_CACERT: arg.client.ca_file = optarg; break;
                case O_CERT: arg.client.cert_file = optarg; break;
                case O_KEY: arg.client.key_file = optarg; break;
                case O_USER: arg.client.username = optarg; break;
                case O_PASSWORD: arg.client.password = optarg; break;
                case O_MAX_ROUNDS: arg.client.max_rounds = (unsigned) atoi(optarg); break;
                case O_BACKOFF_MIN: arg.client.backoff_min_usec = parse_ms(optarg); break;
                case O_BACKOFF_MAX: arg.client.backoff_max_usec = parse_ms(optarg); break;
                case O_TIMEOUT: arg.client.request_timeout_usec = parse_ms(optarg); break;
                case O_PREFIX: arg.prefix = optarg; break;
                case O_NET_PREFIX: arg.net_prefix = optarg; break;
                case O_NETWORK: arg.network = optarg; break;
                case O_SUBNET_LEN: arg.subnet_len = (unsigned) atoi(optarg); break;
                case O_VNI: arg.vni = (uint32_t) atoi(optarg); break;
                case O_MACHINE_ID: arg.machine_id = optarg; break;
                case O_NAME: arg.name = optarg; break;
                case O_ROLE: arg.role = optarg; break;
                case O_IP: arg.ip = optarg; break;
                case O_SUBNET: arg.subnet = optarg; break;
                case O_MAC: arg.mac = optarg; break;
                case O_SUBNET_FILE: arg.subnet_file = optarg; break;
                case O_OWN_SUBNET: arg.own_subnet = optarg; break;
                case O_OWN_IP: arg.own_ip = optarg; break;
                case O_TTL: arg.ttl_usec = (uint64_t) strtoull(optarg, NULL, 10) * USEC_PER_SEC; break;
                case O_MARGIN: arg.margin_usec = (uint64_t) strtoull(optarg, NULL, 10) * USEC_PER_SEC; break;
                case O_ONCE: arg.once = true; break;
                case O_RANGE_PREFIX: arg.prefix_range = true; break;
                case O_REVISION: arg.revision = strtoll(optarg, NULL, 10); break;
                case O_WATCH_CHECK:
                        arg.client.watch_check_usec = streq(optarg, "off") ? ETCD_WATCH_CHECK_OFF : parse_ms(optarg);
                        break;
                case O_WATCH_GRACE: arg.client.watch_check_grace_usec = parse_ms(optarg); break;
                default:
                        return -EINVAL;
                }
        if (!arg.endpoints)
                return -EINVAL;
        arg.client.endpoints = arg.endpoints;
        return 0;
}

static int run(int argc, char *argv[]) {
        const char *cmd;
        int r;

        if (optind >= argc)
                return -EINVAL;
        cmd = argv[optind];
        argv += optind + 1;
        argc -= optind + 1;

        if (streq(cmd, "get") && argc == 1)
                return etcd_range(client, argv[0], arg.prefix_range, arg.revision, on_result, (void *) "get", NULL);
        if (streq(cmd, "put") && argc == 2)
                return etcd_put(client, argv[0], argv[1], 0, on_result, (void *) "put", NULL);
        if (streq(cmd, "del") && argc == 1)
                return etcd_delete(client, argv[0], arg.prefix_range, true, on_result, (void *) "del", NULL);
        if (streq(cmd, "grant") && argc == 1)
                return etcd_lease_grant(client, strtoll(argv[0], NULL, 10), on_result, (void *) "grant", NULL);
        if (streq(cmd, "ttl") && argc == 1)
                return etcd_range(client, argv[0], false, 0, on_ttl_kv, NULL, NULL);
        if (streq(cmd, "create") && argc == 2) {
                /* txn: create if absent, else read what is there */
                _cleanup_(etcd_txn_freep) EtcdTxn *t = etcd_txn_new();

                if (!t || etcd_txn_compare(t, argv[0], ETCD_COMPARE_VERSION, ETCD_COMPARE_EQUAL, 0, NULL) < 0 ||
                    etcd_txn_put(t, true, argv[0], argv[1], 0) < 0 || etcd_txn_range(t, false, argv[0], false) < 0)
                        return -ENOMEM;
                return etcd_txn_commit(client, t, on_result, (void *) "txn", NULL);
        }
        if (streq(cmd, "txn-if") && argc == 5) {
                /* txn-if KEY version|create|mod|value|lease =|!=|<|> NUMBER|VALUE NEW:
                 * success puts NEW at KEY and deletes KEY/old; failure reads KEY. */
                static const char *const targets[] = { "version", "create", "mod", "value", "lease" };
                static const char *const ops[] = { "=", ">", "<", "!=" };
                _cleanup_(etcd_txn_freep) EtcdTxn *t = etcd_txn_new();
                _cleanup_free_ char *old = NULL;
                int target = -1, op = -1;

                for (int i = 0; i < 5; i++)
                        if (streq(argv[1], targets[i]))
                                target = i;
                for (int i = 0; i < 4; i++)
                        if (streq(argv[2], ops[i]))
                                op = i;
                if (!t || target < 0 || op < 0 || asprintf(&old, "%s/old", argv[0]) < 0)
                        return -EINVAL;
                if (etcd_txn_compare(t, argv[0], (EtcdCompareTarget) target, (EtcdCompareResult) op,
                                     strtoll(argv[3], NULL, 10), argv[3]) < 0 ||
                    etcd_txn_put(t, true, argv[0], argv[4], 0) < 0 || etcd_txn_delete(t, true, old, false) < 0 ||
                    etcd_txn_range(t, false, argv[0], false) < 0)
                        return -ENOMEM;
                return etcd_txn_commit(client, t, on_result, (void *) "txn", NULL);
        }
        if (streq(cmd, "register")) {
                RegistryOptions o = {
                        .prefix = arg.prefix,
                        .machine_id = arg.machine_id,
                        .name = arg.name ? arg.name : arg.machine_id,
                        .role = arg.role,
                        .ip = arg.ip,
                        .subnet = arg.subnet,
                        .version = "test",
                        .ttl_usec = arg.ttl_usec,
                };

                r = registry_new(client, event, &o, on_registry, NULL, &registry);
                if (r < 0)
                        return r;
                return registry_start(registry);
        }

        mode_config = streq(cmd, "config");
        mode_lease = streq(cmd, "lease") || streq(cmd, "lease-watch");
        mode_watch = streq(cmd, "watch") || streq(cmd, "lease-watch");
        if (mode_config || mode_lease || mode_watch) {
                _cleanup_free_ char *why = NULL;

                r = network_config_new(arg.network, arg.subnet_len, arg.vni, 8472, &wanted_config, &why);
                if (r < 0) {
                        emit_error(r, why);
                        return r;
                }
                return network_config_load(client, arg.net_prefix, &wanted_config, on_config, NULL, NULL);
        }
        return -EINVAL;
}

int main(int argc, char *argv[]) {
        sigset_t ss;
        int r;

        log_open();
        if (getenv("ETCD_TOOL_DEBUG"))
                log_set_max_level(LOG_DEBUG);
        if (parse_args(argc, argv) < 0) {
                fprintf(stderr, "usage: etcd-tool --endpoints=URL[,URL] [options] get|put|del|grant|ttl|create|"
                        "register|config|lease|watch|lease-watch ...\n");
                return 64;
        }

        sigemptyset(&ss);
        sigaddset(&ss, SIGUSR1);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        if (sd_event_default(&event) < 0)
                return 1;
        (void) sd_event_add_signal(event, NULL, SIGUSR1, on_usr1, NULL);
        (void) sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        (void) sd_event_add_io(event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, NULL);

        r = etcd_client_new(event, &arg.client, &client);
        if (r < 0) {
                emit_error(r, "etcd_client_new");
                return 1;
        }
        r = run(argc, argv);
        if (r < 0) {
                if (r == -EINVAL)
                        fprintf(stderr, "bad command line\n");
                return r == -EINVAL ? 64 : 1;
        }
        r = sd_event_loop(event);

        peer_watch_free(peers);
        subnet_lease_free(lease);
        registry_free(registry);
        etcd_client_free(client);
        sd_event_unref(event);
        etcd_endpoints_free(arg.endpoints);
        return exit_code;
}
