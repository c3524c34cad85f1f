/* SPDX-License-Identifier: Apache-2.0 */
#include "cni-conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "envfile.h"
#include "macro.h"

static json_object *add(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return NULL;
        }
        return v;
}

static json_object *bridge_plugin(const Cidr *subnet, unsigned mtu, bool masq) {
        uint32_t mask = subnet->prefixlen ? ~UINT32_C(0) << (32 - subnet->prefixlen) : 0;
        Cidr net = { .addr.s_addr = subnet->addr.s_addr & htonl(mask), .prefixlen = subnet->prefixlen };
        struct in_addr gw = { .s_addr = htonl(ntohl(net.addr.s_addr) + 1) };
        char cidr[32], gws[INET_ADDRSTRLEN];
        json_object *p = json_object_new_object(), *ipam, *ranges, *set, *range;
        bool ok;

        if (!p)
                return NULL;
        format_cidr(&net, cidr, sizeof cidr);
        inet_ntop(AF_INET, &gw, gws, sizeof gws);
        /* With [network] ip-masq the agent masquerades (one rule set for both
         * runtimes, kept in step with the overlay); without it the plugin
         * does, as Docker does on docker0, so pods keep outbound access. */
        ok = add(p, "type", json_object_new_string("bridge")) &&
             add(p, "bridge", json_object_new_string(CNI_BRIDGE)) &&
             add(p, "isGateway", json_object_new_boolean(true)) &&
             add(p, "isDefaultGateway", json_object_new_boolean(true)) &&
             add(p, "ipMasq", json_object_new_boolean(masq)) &&
             add(p, "mtu", json_object_new_int((int32_t) mtu)) &&
             (ipam = add(p, "ipam", json_object_new_object())) &&
             add(ipam, "type", json_object_new_string("host-local")) &&
             (ranges = add(ipam, "ranges", json_object_new_array()));
        if (ok) {
                /* Gateway on the subnet's first address, as docker0 takes it
                 * from FLANNEL_SUBNET. */
                set = json_object_new_array();
                range = json_object_new_object();
                ok = set && range && json_object_array_add(ranges, set) >= 0;
                if (!ok)
                        json_object_put(set);
                ok = ok && json_object_array_add(set, range) >= 0;
                if (!ok)
                        json_object_put(range);
                ok = ok && add(range, "subnet", json_object_new_string(cidr)) &&
                     add(range, "gateway", json_object_new_string(gws));
        }
        if (!ok) {
                json_object_put(p);
                return NULL;
        }
        return p;
}

static json_object *portmap_plugin(void) {
        json_object *p = json_object_new_object(), *caps;

        if (!p)
                return NULL;
        if (!add(p, "type", json_object_new_string("portmap")) ||
            !(caps = add(p, "capabilities", json_object_new_object())) ||
            !add(caps, "portMappings", json_object_new_boolean(true))) {
                json_object_put(p);
                return NULL;
        }
        return p;
}

char *cni_conf_build(const Cidr *subnet, unsigned mtu, bool plugin_masq) {
        json_object *o = json_object_new_object(), *plugins, *p;
        char *text = NULL;
        bool ok;

        if (!o)
                return NULL;
        ok = add(o, "cniVersion", json_object_new_string("0.4.0")) &&
             add(o, "name", json_object_new_string(CNI_NETWORK_NAME)) &&
             (plugins = add(o, "plugins", json_object_new_array()));
        for (int i = 0; ok && i < 2; i++) {
                p = i == 0 ? bridge_plugin(subnet, mtu, plugin_masq) : portmap_plugin();
                ok = p && json_object_array_add(plugins, p) >= 0;
                if (!ok)
                        json_object_put(p);
        }
        if (ok) {
                const char *s = json_object_to_json_string_ext(
                        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
                if (s && asprintf(&text, "%s\n", s) < 0)
                        text = NULL;
        }
        json_object_put(o);
        return text;
}

int cni_conf_write(const char *path, const Cidr *subnet, unsigned mtu, bool plugin_masq) {
        _cleanup_free_ char *text = cni_conf_build(subnet, mtu, plugin_masq);

        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0644);
}
