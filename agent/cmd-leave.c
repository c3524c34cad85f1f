/* SPDX-License-Identifier: Apache-2.0 */
/* `corekube-agent leave`: graceful decommission of this node. Deletes our
 * subnet lease record and our machine record (each only if it is still the
 * version we read, so a subnet another node took in the meantime is left
 * alone) and revokes their etcd leases; then deletes flannel.<vni>, which
 * takes its ARP, FDB and route entries with it. Peers see the deletion
 * through their watch and drop their routes to us.
 *
 * The agent must be stopped first (systemctl stop corekube-agent): a running
 * agent would take a subnet and register again at once. leave does not try
 * to detect it; the unit and --help say so. Running leave twice is fine: the
 * second finds nothing and says so. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-etcd.h"
#include "etcd-config.h"
#include "cli.h"
#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "netsetup.h"
#include "network-config.h"
#include "subnet-lease.h"
#include "subnet-record.h"
#include "vtep-mac.h"

typedef struct leave_target {
        char *key;
        int64_t mod_revision;
        int64_t lease;
        char *what;                     /* "subnet 10.244.5.0/24", "machine record" */
} leave_target;

typedef struct leave_cmd {
        const ck_config *cfg;
        sd_event *event;
        EtcdClient *etcd;
        char *endpoints;

        char machine_id[33];
        bool have_machine_id;
        uint32_t ip;                    /* host order; 0: unknown */
        uint32_t file_subnet;           /* from subnet-file; 0: none */
        unsigned file_len;
        uint32_t vni;
        uint8_t mac[6];

        leave_target *targets;
        size_t n_targets;
        size_t next;
        size_t done;
} leave_cmd;

static void finish(leave_cmd *l, int code) {
        (void) sd_event_exit(l->event, code);
}

static void etcd_failed(leave_cmd *l, int error, const char *message) {
        if (cli_etcd_unreachable(error)) {
                log_error("etcd is unreachable: %s; %s", message ?: l->endpoints,
                          l->done == 0 ? "nothing was changed." : "run leave again to finish.");
                finish(l, EXIT_UNAVAILABLE);
        } else {
                log_error("etcd: %s", message ?: strerror(-error));
                finish(l, EXIT_RUNTIME);
        }
}

/* Our address on the private interface: the configured one, else the first
 * IPv4 address there (the agent's own rule). 0 if there is none. */
static uint32_t own_address(const ck_config *c) {
        struct ifaddrs *list = NULL;
        uint32_t ip = 0;

        if (c->node.address.set)
                return ntohl(c->node.address.v.addr.s_addr);
        if (getifaddrs(&list) < 0)
                return 0;
        for (struct ifaddrs *i = list; i && !ip; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && streq(i->ifa_name, c->node.interface))
                        ip = ntohl(((const struct sockaddr_in *) (const void *) i->ifa_addr)->sin_addr.s_addr);
        freeifaddrs(list);
        return ip;
}

static int add_target(leave_cmd *l, const EtcdKv *kv, const char *what) {
        leave_target *t = reallocarray(l->targets, l->n_targets + 1, sizeof *t);

        if (!t)
                return -ENOMEM;
        l->targets = t;
        t = &t[l->n_targets];
        *t = (leave_target) {
                .key = strdup(kv->key),
                .mod_revision = kv->mod_revision,
                .lease = kv->lease,
                .what = strdup(what),
        };
        if (!t->key || !t->what) {
                free(t->key);
                free(t->what);
                return -ENOMEM;
        }
        l->n_targets++;
        return 0;
}

/* ---- the end: the device ---- */

static void remove_overlay(leave_cmd *l) {
        ns_ctx *ns = NULL;
        char f[64];
        int r;

        r = ns_new(&ns);
        if (r >= 0)
                r = ns_overlay_remove(ns, l->vni);
        ns_free(ns);
        if (r < 0) {
                log_error_errno(r, "Failed to remove flannel.%u: %m", l->vni);
                finish(l, EXIT_RUNTIME);
                return;
        }
        if (r > 0) {
                printf("Removed flannel.%u with its routes, ARP and FDB entries.\n", l->vni);
                l->done++;
        }
        if (l->done == 0) {
                printf("Nothing to do: this node has no subnet lease, no machine record and no flannel.%u.\n",
                       l->vni);
                finish(l, 0);
                return;
        }
        snprintf(f, sizeof f, "COREKUBE_NODE_NAME=%s", l->cfg->node.name);
        log_event(log_to_journal() ? LOG_NOTICE : LOG_DEBUG, MID_NODE_LEFT, FIELDS(f),
                  "Node %s left the cluster.", l->cfg->node.name);
        printf("Node %s left the cluster.\n", l->cfg->node.name);
        finish(l, 0);
}

/* ---- deleting the keys, one after the other ---- */

static void next_target(leave_cmd *l);

static void on_revoked(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        leave_cmd *l = userdata;

        /* -ENOENT: the lease expired or was revoked already; the key is gone. */
        if (error < 0 && error != -ENOENT) {
                etcd_failed(l, error, message);
                return;
        }
        l->next++;
        next_target(l);
}

static void on_deleted(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        leave_cmd *l = userdata;
        leave_target *t = &l->targets[l->next];

        if (error < 0) {
                etcd_failed(l, error, message);
                return;
        }
        if (res->succeeded) {
                printf("Released %s (%s).\n", t->what, t->key);
                l->done++;
        } else
                printf("%s changed since it was read; left alone (%s).\n", t->what, t->key);
        if (res->succeeded && t->lease != 0) {
                if (etcd_lease_revoke(l->etcd, t->lease, on_revoked, l, NULL) < 0)
                        finish(l, EXIT_RUNTIME);
                return;
        }
        l->next++;
        next_target(l);
}

static void next_target(leave_cmd *l) {
        _cleanup_(etcd_txn_freep) EtcdTxn *t = NULL;
        leave_target *x;

        if (l->next >= l->n_targets) {
                remove_overlay(l);
                return;
        }
        x = &l->targets[l->next];
        /* Only the version we read: a subnet may have passed to another node. */
        t = etcd_txn_new();
        if (!t || etcd_txn_compare(t, x->key, ETCD_COMPARE_MOD, ETCD_COMPARE_EQUAL, x->mod_revision, NULL) < 0 ||
            etcd_txn_delete(t, true, x->key, false) < 0 ||
            etcd_txn_commit(l->etcd, t, on_deleted, l, NULL) < 0) {
                log_error("Out of memory.");
                finish(l, EXIT_RUNTIME);
        }
}

/* ---- finding what is ours ---- */

static bool subnet_is_ours(const leave_cmd *l, const EtcdKv *kv, uint32_t subnet, unsigned len) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(kv->value);
        json_object *bd, *m;
        uint8_t mac[6];
        uint32_t ip;

        if (l->ip != 0 && subnet_record_public_ip(kv->value, &ip) >= 0 && ip == l->ip)
                return true;
        if (l->have_machine_id && o && json_object_object_get_ex(o, "BackendData", &bd) &&
            json_object_object_get_ex(bd, "VtepMAC", &m) && json_object_is_type(m, json_type_string) &&
            mac_parse(json_object_get_string(m), mac) >= 0 && memcmp(mac, l->mac, 6) == 0)
                return true;
        /* Nothing to recognise us by: trust subnet-file. */
        return l->ip == 0 && !l->have_machine_id && l->file_subnet != 0 &&
               subnet == l->file_subnet && len == l->file_len;
}

static void on_machine(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        leave_cmd *l = userdata;

        if (error < 0) {
                etcd_failed(l, error, message);
                return;
        }
        if (res->n_kvs > 0 && add_target(l, &res->kvs[0], "the machine record") < 0) {
                finish(l, EXIT_RUNTIME);
                return;
        }
        next_target(l);
}

static void on_subnets(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        leave_cmd *l = userdata;
        _cleanup_free_ char *key = NULL;

        if (error < 0) {
                etcd_failed(l, error, message);
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                char what[64], a[IP4_STRLEN];
                uint32_t subnet;
                unsigned len;

                if (network_config_parse_subnet_key(res->kvs[i].key, l->cfg->network.prefix, &subnet, &len) < 0 ||
                    !subnet_is_ours(l, &res->kvs[i], subnet, len))
                        continue;
                snprintf(what, sizeof what, "subnet %s/%u", ip4_format(subnet, a), len);
                if (add_target(l, &res->kvs[i], what) < 0) {
                        finish(l, EXIT_RUNTIME);
                        return;
                }
        }
        if (!l->have_machine_id) {
                next_target(l);
                return;
        }
        if (asprintf(&key, "%s/machines/%s", l->cfg->etcd.prefix, l->machine_id) < 0 ||
            etcd_range(l->etcd, key, false, 0, on_machine, l, NULL) < 0)
                finish(l, EXIT_RUNTIME);
}

static void on_config(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        leave_cmd *l = userdata;
        _cleanup_free_ char *prefix = NULL, *why = NULL;
        NetworkConfig nc;

        if (error < 0) {
                etcd_failed(l, error, message);
                return;
        }
        /* The VNI in force is the cluster's, which may differ from ours. */
        if (res->n_kvs > 0 && network_config_from_json(res->kvs[0].value, &nc, &why) >= 0)
                l->vni = nc.vni;
        if (l->have_machine_id)
                vtep_mac_from_machine_id(l->machine_id, l->vni, l->mac);
        if (asprintf(&prefix, "%s/subnets/", l->cfg->network.prefix) < 0 ||
            etcd_range(l->etcd, prefix, true, 0, on_subnets, l, NULL) < 0)
                finish(l, EXIT_RUNTIME);
}

static int leave_run(leave_cmd *l) {
        _cleanup_free_ char *key = NULL;
        int r;

        l->endpoints = cli_etcd_endpoints(l->cfg);
        l->vni = l->cfg->network.vni;
        r = read_machine_id(l->machine_id);
        l->have_machine_id = r >= 0;
        if (r < 0)
                log_warning_errno(r, "Cannot read /etc/machine-id (%m); looking for our subnet by address only.");
        l->ip = own_address(l->cfg);
        (void) subnet_lease_read_subnet_file(l->cfg->network.subnet_file, &l->file_subnet, &l->file_len);

        /* Two rounds over the endpoints, then exit 69 with nothing changed. */
        r = cli_etcd_open(l->cfg, 2, &l->event, &l->etcd);
        if (r != 0)
                return r;
        if (asprintf(&key, "%s/config", l->cfg->network.prefix) < 0 ||
            etcd_range(l->etcd, key, false, 0, on_config, l, NULL) < 0)
                return log_error_errno(-ENOMEM, "Out of memory."), EXIT_RUNTIME;
        r = sd_event_loop(l->event);
        return r < 0 ? EXIT_RUNTIME : r;
}

int cmd_leave(const cli_args *a) {
        leave_cmd l = {};
        ck_config *c = NULL;
        int r;

        r = cli_load_config(a, &c);
        if (r != 0)
                return r;
        l.cfg = c;
        r = leave_run(&l);

        etcd_client_free(l.etcd);
        sd_event_unref(l.event);
        for (size_t i = 0; i < l.n_targets; i++) {
                free(l.targets[i].key);
                free(l.targets[i].what);
        }
        free(l.targets);
        free(l.endpoints);
        config_free(c);
        return r;
}
