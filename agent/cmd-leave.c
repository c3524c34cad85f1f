/* SPDX-License-Identifier: Apache-2.0 */
/* `corekube-agent leave`: graceful decommission of this node.
 *
 * First the agent's lock (agent-lock.h): free, and we hold it until we are
 * done, so an agent started meanwhile refuses to run. Held by
 * corekube-agent.service's main process (asked over D-Bus): that unit is
 * stopped and disabled, then we take the lock. Held by anything else, or
 * D-Bus cannot say: nothing is touched, since the holder would register and
 * take a subnet again at once.
 *
 * Then deletes our subnet lease record and our machine record (each only if
 * it is still the version we read, so a subnet another node took in the
 * meantime is left alone) and revokes their etcd leases; then deletes
 * flannel.<vni>, which takes its ARP, FDB and route entries with it, and the
 * masquerading table ([network] ip-masq) if there is one. Peers
 * see the deletion through their watch and drop their routes to us. Running
 * leave twice is fine: the second finds nothing and says so. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-lock.h"
#include "cli-etcd.h"
#include "etcd-config.h"
#include "cli.h"
#include "ip4-util.h"
#include "leave.h"
#include "leave-unit.h"
#include "log.h"
#include "machine-id.h"
#include "macro.h"
#include "masq.h"
#include "message-ids.h"
#include "netsetup.h"
#include "node-state.h"
#include "network-config.h"
#include "subnet-lease.h"
#include "subnet-record.h"
#include "vtep-mac.h"

/* This node's leave: the shared part first, so that a LeaveCommand pointer
 * is one to this. */
typedef struct LocalLeave {
        LeaveCommand l;

        int lock_fd;
        pid_t holder;                   /* the lock's holder, when it was held */
        sd_bus *bus;                    /* set when the holder is the unit's main process */
        LeaveUnit *unit;

        char machine_id[33];            /* raw: our VTEP MAC's input */
        char node_id[33];               /* app-specific: our record's key */
        bool have_machine_id;
        uint32_t ip;                    /* host order; 0: unknown */
        uint32_t file_subnet;           /* from subnet-file; 0: none */
        unsigned file_len;
        uint32_t vni;
        uint8_t mac[6];
} LocalLeave;

/* Our address on the private interface: the configured one, else the first
 * IPv4 address there (the agent's own rule). 0 if there is none. */
static uint32_t own_address(const AgentConfig *c) {
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

/* ---- the end: the device ---- */

static void remove_overlay(LeaveCommand *base) {
        LocalLeave *l = (LocalLeave *) base;
        _cleanup_free_ char *err = NULL;
        ns_ctx *ns = NULL;
        char f[64];
        int r;

        r = ns_new(&ns);
        if (r >= 0)
                r = ns_overlay_remove(ns, l->vni);
        ns_free(ns);
        if (r < 0) {
                log_error_errno(r, "Failed to remove flannel.%u: %s", l->vni, ns_error_detail(r) ?: strerror(-r));
                leave_finish(base, EXIT_RUNTIME);
                return;
        }
        if (r > 0) {
                printf("Removed flannel.%u with its routes, ARP and FDB entries.\n", l->vni);
                base->done++;
        }
        /* Whatever [network] ip-masq says now: the node may have had it on. */
        r = masq_remove(&err);
        if (r < 0) {
                log_error("Failed to remove the nftables table ip %s: %s", MASQ_TABLE, err ?: strerror(-r));
                leave_finish(base, EXIT_RUNTIME);
                return;
        }
        if (r > 0) {
                printf("Removed the nftables table ip %s (the overlay's masquerading).\n", MASQ_TABLE);
                base->done++;
        }
        /* Not to be restored at the next boot, nor to start Docker on. */
        r = node_state_remove();
        if (r < 0) {
                leave_finish(base, EXIT_RUNTIME);
                return;
        }
        if (r > 0) {
                printf("Removed the saved subnet and peer list in %s.\n", node_state_dir());
                base->done++;
        }
        if (base->done == 0) {
                printf("Nothing to do: this node has no subnet lease, no machine record and no flannel.%u.\n",
                       l->vni);
                leave_finish(base, 0);
                return;
        }
        snprintf(f, sizeof f, "COREKUBE_NODE_NAME=%s", base->cfg->node.name);
        log_event(log_to_journal() ? LOG_NOTICE : LOG_DEBUG, MID_NODE_LEFT, FIELDS(f),
                  "Node %s left the cluster.", base->cfg->node.name);
        printf("Node %s left the cluster.\n", base->cfg->node.name);
        leave_finish(base, 0);
}

/* ---- finding what is ours ---- */

static bool subnet_is_ours(const LocalLeave *l, const EtcdKv *kv, uint32_t subnet, unsigned len) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(kv->value);
        json_object *bd, *m;
        uint8_t mac[6];
        uint32_t ip;

        if (l->ip != 0 && subnet_record_public_ip(kv->value, &ip) >= 0 && ip == l->ip)
                return true;
        if (l->have_machine_id && o && json_object_object_get_ex(o, "BackendData", &bd) &&
            json_object_object_get_ex(bd, "VtepMAC", &m) && json_object_is_type(m, json_type_string) &&
            ns_parse_mac(json_object_get_string(m), mac) >= 0 && memcmp(mac, l->mac, 6) == 0)
                return true;
        /* Nothing to recognise us by: trust subnet-file. */
        return l->ip == 0 && !l->have_machine_id && l->file_subnet != 0 &&
               subnet == l->file_subnet && len == l->file_len;
}

static void on_machine(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        LeaveCommand *l = userdata;

        if (error < 0) {
                leave_etcd_failed(l, error, message);
                return;
        }
        if (res->n_kvs > 0 && leave_add_target(l, &res->kvs[0], "the machine record") < 0) {
                leave_finish(l, EXIT_RUNTIME);
                return;
        }
        leave_release(l);
}

static void on_subnets(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        LocalLeave *l = userdata;
        _cleanup_free_ char *key = NULL;

        if (error < 0) {
                leave_etcd_failed(&l->l, error, message);
                return;
        }
        for (size_t i = 0; i < res->n_kvs; i++) {
                char what[64], a[IP4_STRLEN];
                uint32_t subnet;
                unsigned len;

                if (network_config_parse_subnet_key(res->kvs[i].key, l->l.cfg->network.prefix, &subnet, &len) < 0 ||
                    !subnet_is_ours(l, &res->kvs[i], subnet, len))
                        continue;
                snprintf(what, sizeof what, "subnet %s/%u", ip4_format(subnet, a), len);
                if (leave_add_target(&l->l, &res->kvs[i], what) < 0) {
                        leave_finish(&l->l, EXIT_RUNTIME);
                        return;
                }
        }
        if (!l->have_machine_id) {
                leave_release(&l->l);
                return;
        }
        if (asprintf(&key, "%s/machines/%s", l->l.cfg->etcd.prefix, l->node_id) < 0 ||
            etcd_range(l->l.etcd, key, false, 0, on_machine, &l->l, NULL) < 0)
                leave_finish(&l->l, EXIT_RUNTIME);
}

static void on_config(EtcdClient *c, int error, const char *message, const EtcdResult *res, void *userdata) {
        LocalLeave *l = userdata;
        _cleanup_free_ char *prefix = NULL, *why = NULL;
        NetworkConfig nc;

        if (error < 0) {
                leave_etcd_failed(&l->l, error, message);
                return;
        }
        /* The VNI in force is the cluster's, which may differ from ours. */
        if (res->n_kvs > 0 && network_config_from_json(res->kvs[0].value, &nc, &why) >= 0)
                l->vni = nc.vni;
        if (l->have_machine_id)
                vtep_mac_from_machine_id(l->machine_id, l->vni, l->mac);
        if (asprintf(&prefix, "%s/subnets/", l->l.cfg->network.prefix) < 0 ||
            etcd_range(l->l.etcd, prefix, true, 0, on_subnets, l, NULL) < 0)
                leave_finish(&l->l, EXIT_RUNTIME);
}

static int find_our_keys(LocalLeave *l) {
        _cleanup_free_ char *key = NULL;

        if (asprintf(&key, "%s/config", l->l.cfg->network.prefix) < 0 ||
            etcd_range(l->l.etcd, key, false, 0, on_config, l, NULL) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- the agent's lock and its unit ---- */

/* 0: go on, with the lock ours, or held by the unit's main process (then
 * l->bus is set: the unit is to be stopped first); otherwise an exit code,
 * said why. */
static int check_lock(LocalLeave *l) {
        _cleanup_free_ char *why = NULL;
        pid_t main_pid = 0;
        int r;

        r = agent_lock_take(&l->lock_fd);
        if (r >= 0)
                return 0;
        if (r != -EWOULDBLOCK)
                return log_error_errno(r, "Failed to lock %s: %m", AGENT_LOCK_PATH), EXIT_RUNTIME;
        l->holder = agent_lock_holder(l->lock_fd);
        /* Only systemd can tell whether the holder is the unit we may stop;
         * without it the holder could be the unit, and would re-register at
         * once after we removed its keys. */
        r = leave_unit_owns_pid(l->holder, &l->bus, &main_pid, &why);
        if (r < 0) {
                log_error("%s is held by PID %d, and whether that is %s cannot be told: %s. Nothing was changed.",
                          AGENT_LOCK_PATH, (int) l->holder, AGENT_UNIT, why ?: strerror(-r));
                return EXIT_UNAVAILABLE;
        }
        if (r == 0) {
                if (l->holder > 0)
                        log_error("A corekube-agent runs as PID %d (it holds %s) and is not %s's main process; "
                                  "stop it first. Nothing was changed.", (int) l->holder, AGENT_LOCK_PATH, AGENT_UNIT);
                else
                        log_error("An unknown process holds %s (a corekube-agent runs); stop it first. "
                                  "Nothing was changed.", AGENT_LOCK_PATH);
                return EXIT_RUNTIME;
        }
        log_notice("%s is held by PID %d, %s's main process.", AGENT_LOCK_PATH, (int) l->holder, AGENT_UNIT);
        return 0;
}

static void on_unit_stopped(int error, void *userdata) {
        LocalLeave *l = userdata;
        int r;

        if (error < 0) {
                leave_finish(&l->l, EXIT_RUNTIME);
                return;
        }
        /* Ours from here on: an agent started now refuses to run. */
        close(l->lock_fd);
        l->lock_fd = -1;
        r = agent_lock_take(&l->lock_fd);
        if (r == -EWOULDBLOCK) {
                log_error("PID %d took %s after %s stopped; nothing was released.",
                          (int) agent_lock_holder(l->lock_fd), AGENT_LOCK_PATH, AGENT_UNIT);
                leave_finish(&l->l, EXIT_RUNTIME);
                return;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to lock %s: %m", AGENT_LOCK_PATH);
                leave_finish(&l->l, EXIT_RUNTIME);
                return;
        }
        if (find_our_keys(l) < 0) {
                log_error("Out of memory.");
                leave_finish(&l->l, EXIT_RUNTIME);
        }
}

static int leave_run(LocalLeave *l) {
        int r;

        r = check_lock(l);
        if (r != 0)
                return r;
        l->vni = l->l.cfg->network.vni;
        l->l.released = remove_overlay;
        r = machine_id_raw(l->machine_id);
        if (r >= 0)
                r = machine_id_node(l->node_id);
        l->have_machine_id = r >= 0;
        if (r < 0)
                log_warning_errno(r, "Cannot read /etc/machine-id (%m); looking for our subnet by address only.");
        l->ip = own_address(l->l.cfg);
        (void) subnet_lease_read_subnet_file(l->l.cfg->network.subnet_file, &l->file_subnet, &l->file_len);

        r = leave_open(&l->l);
        if (r != 0)
                return r;
        if (l->bus)
                r = leave_unit_stop_disable(l->l.event, l->bus, on_unit_stopped, l, &l->unit);
        else
                r = find_our_keys(l);
        if (r < 0)
                return log_error_errno(r, "Failed to start: %m"), EXIT_RUNTIME;
        return leave_loop(&l->l);
}

int cmd_leave(const CliArgs *a) {
        LocalLeave l = { .lock_fd = -1 };
        AgentConfig *c = NULL;
        int r;

        r = cli_load_config(a, &c);
        if (r != 0)
                return r;
        l.l.cfg = c;
        l.l.args = a;
        if (a->node)
                r = leave_node_run(&l.l);
        else
                r = leave_run(&l);

        leave_unit_free(l.unit);
        sd_bus_flush_close_unref(l.bus);
        leave_done(&l.l);
        if (l.lock_fd >= 0)
                close(l.lock_fd);
        config_free(c);
        return r;
}
