/* SPDX-License-Identifier: Apache-2.0 */
/* `corekube-agent leave --node NAME [--force]`, from any node: removes
 * another node's machine record and its subnet lease(s), so that peers drop
 * their routes to it at once instead of after the 24 h lease. Nothing local
 * is touched (no lock, no flannel.1).
 *
 * NAME is a record's name or ID (the app-specific ID of its key). A record
 * whose etcd lease still has time left belongs to a node that is alive (its
 * agent keeps it), and is refused without --force: its agent would only
 * register again. A node whose record expired already can still be named by
 * its raw /etc/machine-id, which is never in etcd: its subnet lease carries a
 * VTEP MAC made from that ID. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ip4-util.h"
#include "leave.h"
#include "log.h"
#include "macro.h"
#include "netsetup.h"
#include "network-config.h"
#include "subnet-record.h"
#include "term-escape.h"
#include "vtep-mac.h"

typedef struct NodeLeave {
        LeaveCommand *l;
        const char *name;               /* as given */
        char id[33];                    /* the record's ID, or the raw machine ID given */
        bool raw_id;                    /* no record: id is a raw machine ID */
        uint32_t vni;
        EtcdKv record;                  /* key NULL: no record */
        char *record_name;
        uint32_t ip;                    /* the record's, host order; 0: unknown */
        uint32_t subnet;                /* the record's; 0: unknown */
        uint32_t *other_subnets;        /* those of every other record */
        size_t n_other_subnets;
} NodeLeave;

static bool is_machine_id(const char *s) {
        return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static const char *key_id(const char *key) {
        const char *slash = strrchr(key, '/');

        return slash ? slash + 1 : key;
}

static char *json_str(const char *value, const char *field) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(value);
        json_object *v;

        if (!o || !json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return strdup(json_object_get_string(v));
}

static bool lease_mac(const char *value, uint8_t mac[static 6]) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(value);
        json_object *bd, *m;

        return o && json_object_object_get_ex(o, "BackendData", &bd) &&
               json_object_object_get_ex(bd, "VtepMAC", &m) && json_object_is_type(m, json_type_string) &&
               ns_parse_mac(json_object_get_string(m), mac) >= 0;
}

static void on_released(LeaveCommand *l) {
        NodeLeave *n = l->userdata;

        if (l->done == 0)
                printf("Nothing was removed: %s's keys changed while we read them.\n", n->name);
        else
                printf("Removed node %s (%s) from the cluster.\n", n->record_name ?: n->name, n->id);
        leave_finish(l, l->done == 0 ? EXIT_RUNTIME : 0);
}

/* Named by its raw machine ID, a subnet lease is the node's when its VTEP
 * MAC is the one made from that ID. Named by its record, when it is the
 * record's subnet, or when its PublicIP is the record's and it is no other
 * record's subnet (a reinstalled machine keeps its IP under a new ID). */
static bool subnet_is_the_nodes(const NodeLeave *n, const EtcdKv *kv, uint32_t subnet) {
        uint8_t mine[6], mac[6];
        uint32_t ip;

        if (n->raw_id) {
                vtep_mac_from_machine_id(n->id, n->vni, mine);
                return lease_mac(kv->value, mac) && memcmp(mac, mine, 6) == 0;
        }
        if (n->subnet != 0 && subnet == n->subnet)
                return true;
        if (n->ip == 0 || subnet_record_public_ip(kv->value, &ip) < 0 || ip != n->ip)
                return false;
        for (size_t i = 0; i < n->n_other_subnets; i++)
                if (subnet == n->other_subnets[i])
                        return false;
        return true;
}

/* The subnet of a record's "subnet" ("10.244.94.0/24"); 0 if none. */
static uint32_t record_subnet(const char *value) {
        _cleanup_free_ char *s = json_str(value, "subnet");
        uint32_t a;
        unsigned len;

        return s && ip4_parse_cidr(s, false, &a, &len) >= 0 ? a : 0;
}

static void on_subnets(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        NodeLeave *n = userdata;

        if (error < 0) {
                leave_etcd_failed(n->l, error, message);
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                char what[64], a[IP4_STRLEN];
                uint32_t subnet;
                unsigned len;

                if (network_config_parse_subnet_key(res->kvs[i].key, n->l->cfg->network.prefix, &subnet, &len) < 0 ||
                    !subnet_is_the_nodes(n, &res->kvs[i], subnet))
                        continue;
                snprintf(what, sizeof what, "subnet %s/%u", ip4_format(subnet, a), len);
                if (leave_add_target(n->l, &res->kvs[i], what) < 0) {
                        leave_finish(n->l, EXIT_RUNTIME);
                        return;
                }
        }
        if (n->record.key && leave_add_target(n->l, &n->record, "the machine record") < 0) {
                leave_finish(n->l, EXIT_RUNTIME);
                return;
        }
        if (n->l->n_targets == 0) {
                log_error("Unknown node %s: no machine record and no subnet lease of that machine ID.", n->name);
                leave_finish(n->l, EXIT_RUNTIME);
                return;
        }
        leave_release(n->l);
}

static void list_subnets(NodeLeave *n) {
        _cleanup_free_ char *prefix = NULL;

        if (asprintf(&prefix, "%s/subnets/", n->l->cfg->network.prefix) < 0 ||
            etcd_range(n->l->etcd, prefix, true, 0, on_subnets, n, NULL) < 0)
                leave_finish(n->l, EXIT_RUNTIME);
}

static void on_timetolive(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        NodeLeave *n = userdata;

        if (error < 0 && error != -ENOENT) {
                leave_etcd_failed(n->l, error, message);
                return;
        }
        if (error >= 0 && res->ttl > 0) {
                if (!n->l->args->force) {
                        log_error("Node %s (%s) is alive: its machine record's lease has %lld s left. Stop its "
                                  "agent (or run leave on it), or use --force. Nothing was changed.",
                                  n->record_name ?: n->name, n->id, (long long) res->ttl);
                        leave_finish(n->l, EXIT_RUNTIME);
                        return;
                }
                log_warning("Node %s (%s) is alive (its record's lease has %lld s left); removing it anyway "
                            "(--force). A running agent registers again.", n->record_name ?: n->name, n->id,
                            (long long) res->ttl);
        }
        list_subnets(n);
}

static int keep_record(NodeLeave *n, const EtcdKv *kv) {
        _cleanup_free_ char *ip = json_str(kv->value, "ip"), *name = json_str(kv->value, "name");

        /* The name and ID are only printed: escaped for the terminal. */
        n->record = (EtcdKv) { .key = strdup(kv->key), .mod_revision = kv->mod_revision, .lease = kv->lease };
        n->record_name = term_escape(name);
        if (!n->record.key)
                return -ENOMEM;
        term_escape_buf(key_id(kv->key), n->id, sizeof n->id);
        if (ip && ip4_parse(ip, &n->ip) < 0)
                n->ip = 0;
        n->subnet = record_subnet(kv->value);
        return 0;
}

static void on_machines(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        NodeLeave *n = userdata;
        const EtcdKv *by_id = NULL, *by_name = NULL;
        size_t n_named = 0;

        if (error < 0) {
                leave_etcd_failed(n->l, error, message);
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                _cleanup_free_ char *name = json_str(res->kvs[i].value, "name");

                if (streq(key_id(res->kvs[i].key), n->name))
                        by_id = &res->kvs[i];
                else if (name && streq(name, n->name)) {
                        by_name = &res->kvs[i];
                        n_named++;
                }
        }
        if (!by_id && n_named > 1) {
                log_error("%zu machine records are named %s; give the ID of the one to remove:", n_named,
                          n->name);
                for (size_t i = 0; i < res->n_kvs; i++) {
                        _cleanup_free_ char *name = json_str(res->kvs[i].value, "name");
                        char id[256];
                        if (name && streq(name, n->name))
                                log_error("  %s", term_escape_buf(key_id(res->kvs[i].key), id, sizeof id));
                }
                leave_finish(n->l, EXIT_RUNTIME);
                return;
        }
        by_id = by_id ?: by_name;
        if (!by_id && !is_machine_id(n->name)) {
                log_error("Unknown node %s: no machine record has that name or ID (a node whose record "
                          "expired can be named by its machine ID, /etc/machine-id).", n->name);
                leave_finish(n->l, EXIT_RUNTIME);
                return;
        }
        /* The other records' subnets, never taken for this one's. */
        n->other_subnets = calloc(res->n_kvs ?: 1, sizeof *n->other_subnets);
        if (!n->other_subnets || (by_id && keep_record(n, by_id) < 0)) {
                leave_finish(n->l, EXIT_RUNTIME);
                return;
        }
        if (!by_id) {
                snprintf(n->id, sizeof n->id, "%s", n->name);
                n->raw_id = true;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                uint32_t s = record_subnet(res->kvs[i].value);

                if (&res->kvs[i] != by_id && s != 0)
                        n->other_subnets[n->n_other_subnets++] = s;
        }
        /* Alive: its record is on an etcd lease with time left. */
        if (n->record.key && n->record.lease != 0) {
                if (etcd_lease_timetolive(n->l->etcd, n->record.lease, on_timetolive, n, NULL) < 0)
                        leave_finish(n->l, EXIT_RUNTIME);
                return;
        }
        list_subnets(n);
}

static void on_config(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        NodeLeave *n = userdata;
        _cleanup_free_ char *prefix = NULL, *why = NULL;
        NetworkConfig nc;

        if (error < 0) {
                leave_etcd_failed(n->l, error, message);
                return;
        }
        /* The VTEP MACs are made with the cluster's VNI. */
        if (res->n_kvs > 0 && network_config_from_json(res->kvs[0].value, &nc, &why) >= 0)
                n->vni = nc.vni;
        if (asprintf(&prefix, "%s/machines/", n->l->cfg->etcd.prefix) < 0 ||
            etcd_range(n->l->etcd, prefix, true, 0, on_machines, n, NULL) < 0)
                leave_finish(n->l, EXIT_RUNTIME);
}

int leave_node_run(LeaveCommand *l) {
        NodeLeave n = { .l = l, .name = l->args->node, .vni = l->cfg->network.vni };
        _cleanup_free_ char *key = NULL;
        int r;

        l->released = on_released;
        l->userdata = &n;
        r = leave_open(l);
        if (r == 0 && (asprintf(&key, "%s/config", l->cfg->network.prefix) < 0 ||
                       etcd_range(l->etcd, key, false, 0, on_config, &n, NULL) < 0)) {
                log_error("Out of memory.");
                r = EXIT_RUNTIME;
        }
        if (r == 0)
                r = leave_loop(l);
        /* The client goes first: nothing of it may call back into n. */
        leave_done(l);
        free(n.record.key);
        free(n.record_name);
        free(n.other_subnets);
        return r;
}
