/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "message-ids.h"
#include "network-config.h"

#define DEFAULT_VNI 1
#define DEFAULT_PORT 8472

static int failf(char **ret_error, const char *format, ...) _printf_(2, 3);
static int failf(char **ret_error, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

static uint32_t subnet_size(unsigned len) {
        return len >= 32 ? 1 : (uint32_t) 1 << (32 - len);
}

static int validate(NetworkConfig *c, bool have_min, bool have_max, char **ret_error) {
        char a[IP4_STRLEN];
        uint32_t size, last;

        if (c->prefixlen < 1 || c->prefixlen > 30)
                return failf(ret_error, "Network: prefix length /%u is out of range", c->prefixlen);
        if (c->subnet_len <= c->prefixlen || c->subnet_len > 30)
                return failf(ret_error, "SubnetLen: %u must be longer than the network's /%u and at most 30",
                             c->subnet_len, c->prefixlen);

        size = subnet_size(c->subnet_len);
        last = (c->network | ~ip4_mask(c->prefixlen)) - size + 1;
        if (!have_min)
                /* flannel leaves the first subnet out. */
                c->subnet_min = c->network + size;
        if (!have_max)
                c->subnet_max = last;

        if ((c->subnet_min & (size - 1)) != 0)
                return failf(ret_error, "SubnetMin: %s is not aligned to /%u", ip4_format(c->subnet_min, a), c->subnet_len);
        if ((c->subnet_max & (size - 1)) != 0)
                return failf(ret_error, "SubnetMax: %s is not aligned to /%u", ip4_format(c->subnet_max, a), c->subnet_len);
        if ((c->subnet_min & ip4_mask(c->prefixlen)) != c->network)
                return failf(ret_error, "SubnetMin: %s is outside Network", ip4_format(c->subnet_min, a));
        if ((c->subnet_max & ip4_mask(c->prefixlen)) != c->network)
                return failf(ret_error, "SubnetMax: %s is outside Network", ip4_format(c->subnet_max, a));
        if (c->subnet_min > c->subnet_max)
                return failf(ret_error, "SubnetMin: %s is above SubnetMax", ip4_format(c->subnet_min, a));
        if (c->vni < 1 || c->vni > 0xffffff)
                return failf(ret_error, "Backend.VNI: %u is out of range 1…16777215", c->vni);
        return 0;
}

int network_config_new(const char *network, unsigned subnet_len, uint32_t vni, uint16_t port,
                       NetworkConfig *ret, char **ret_error) {
        NetworkConfig c = {
                .subnet_len = subnet_len,
                .vni = vni,
                .port = port,
        };
        int r;

        if (ip4_parse_cidr(network, false, &c.network, &c.prefixlen) < 0)
                return failf(ret_error, "Network: \"%s\" is not an IPv4 network in CIDR form", network ? network : "");
        r = validate(&c, false, false, ret_error);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

/* label: how the error names the member, e.g. "Backend.VNI". */
static int get_member(json_object *o, const char *name, const char *label, json_type type, json_object **ret,
                      char **ret_error) {
        if (!json_object_object_get_ex(o, name, ret))
                return 0;
        if (!json_object_is_type(*ret, type))
                return failf(ret_error, "%s: has the wrong JSON type", label);
        return 1;
}

static int get_uint(json_object *o, const char *name, const char *label, uint32_t max, uint32_t *ret,
                    char **ret_error) {
        json_object *v;
        int64_t n;
        int r;

        r = get_member(o, name, label, json_type_int, &v, ret_error);
        if (r <= 0)
                return r;
        n = json_object_get_int64(v);
        if (n < 0 || n > max)
                return failf(ret_error, "%s: %" PRId64 " is out of range", label, n);
        *ret = (uint32_t) n;
        return 1;
}

int network_config_from_json(const char *json, NetworkConfig *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v, *backend;
        NetworkConfig c = { .vni = DEFAULT_VNI, .port = DEFAULT_PORT };
        bool have_min, have_max;
        uint32_t n;
        int r;

        o = json_tokener_parse(json);
        if (!o || !json_object_is_type(o, json_type_object))
                return failf(ret_error, "not a JSON object");

        r = get_member(o, "Network", "Network", json_type_string, &v, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return failf(ret_error, "Network: missing");
        if (ip4_parse_cidr(json_object_get_string(v), false, &c.network, &c.prefixlen) < 0)
                return failf(ret_error, "Network: \"%s\" is not an IPv4 network in CIDR form", json_object_get_string(v));

        r = get_uint(o, "SubnetLen", "SubnetLen", 32, &c.subnet_len, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                /* flannel's default */
                c.subnet_len = c.prefixlen < 24 ? 24 : c.prefixlen + 1;

        r = get_member(o, "SubnetMin", "SubnetMin", json_type_string, &v, ret_error);
        if (r < 0)
                return r;
        have_min = r > 0;
        if (have_min && ip4_parse(json_object_get_string(v), &c.subnet_min) < 0)
                return failf(ret_error, "SubnetMin: \"%s\" is not an IPv4 address", json_object_get_string(v));
        r = get_member(o, "SubnetMax", "SubnetMax", json_type_string, &v, ret_error);
        if (r < 0)
                return r;
        have_max = r > 0;
        if (have_max && ip4_parse(json_object_get_string(v), &c.subnet_max) < 0)
                return failf(ret_error, "SubnetMax: \"%s\" is not an IPv4 address", json_object_get_string(v));

        r = get_member(o, "Backend", "Backend", json_type_object, &backend, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return failf(ret_error, "Backend: missing (flannel would use udp; this agent needs vxlan)");
        r = get_member(backend, "Type", "Backend.Type", json_type_string, &v, ret_error);
        if (r < 0)
                return r;
        if (r == 0 || !streq(json_object_get_string(v), "vxlan"))
                return failf(ret_error, "Backend.Type: \"%s\" is not supported, only vxlan",
                             r == 0 ? "" : json_object_get_string(v));
        r = get_uint(backend, "VNI", "Backend.VNI", 0xffffff, &c.vni, ret_error);
        if (r < 0)
                return r;
        r = get_uint(backend, "Port", "Backend.Port", 65535, &n, ret_error);
        if (r < 0)
                return r;
        if (r > 0)
                c.port = n == 0 ? DEFAULT_PORT : (uint16_t) n;

        r = validate(&c, have_min, have_max, ret_error);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

int network_config_to_json(const NetworkConfig *c, char **ret) {
        char net[IP4_STRLEN], min[IP4_STRLEN], max[IP4_STRLEN];

        if (asprintf(ret,
                     "{\"Network\":\"%s/%u\",\"SubnetLen\":%u,\"SubnetMin\":\"%s\",\"SubnetMax\":\"%s\","
                     "\"Backend\":{\"Type\":\"vxlan\",\"VNI\":%u,\"Port\":%u}}",
                     ip4_format(c->network, net), c->prefixlen, c->subnet_len,
                     ip4_format(c->subnet_min, min), ip4_format(c->subnet_max, max),
                     c->vni, (unsigned) c->port) < 0)
                return -ENOMEM;
        return 0;
}

bool network_config_subnet_ok(const NetworkConfig *c, uint32_t subnet, unsigned len) {
        return len == c->subnet_len &&
                (subnet & (subnet_size(len) - 1)) == 0 &&
                subnet >= c->subnet_min && subnet <= c->subnet_max;
}

uint32_t network_config_n_subnets(const NetworkConfig *c) {
        return (c->subnet_max - c->subnet_min) / subnet_size(c->subnet_len) + 1;
}

int network_config_subnet_key(const char *prefix, uint32_t subnet, unsigned len, char **ret) {
        char a[IP4_STRLEN];

        if (asprintf(ret, "%s/subnets/%s-%u", prefix, ip4_format(subnet, a), len) < 0)
                return -ENOMEM;
        return 0;
}

int network_config_parse_subnet_key(const char *key, const char *prefix, uint32_t *ret_subnet, unsigned *ret_len) {
        _cleanup_free_ char *cidr = NULL, *head = NULL;
        char *dash;

        if (asprintf(&head, "%s/subnets/", prefix) < 0)
                return -ENOMEM;
        if (strncmp(key, head, strlen(head)) != 0)
                return -EINVAL;
        cidr = strdup(key + strlen(head));
        if (!cidr)
                return -ENOMEM;
        dash = strrchr(cidr, '-');
        if (!dash || strchr(cidr, '/'))
                return -EINVAL;
        *dash = '/';
        return ip4_parse_cidr(cidr, false, ret_subnet, ret_len);
}

/* ---- load or create ---- */

typedef struct Load {
        network_config_handler_t cb;
        void *userdata;
        NetworkConfig wanted;
        char *key;
} Load;

static void on_loaded(EtcdClient *client, int error, const char *message, const EtcdResult *result, void *userdata) {
        Load *l = userdata;
        _cleanup_free_ char *why = NULL, *full = NULL;
        NetworkConfig c;

        if (error < 0)
                l->cb(error, message, NULL, false, l->userdata);
        else if (result->succeeded) {
                char net[IP4_STRLEN];

                log_event(LOG_INFO, MID_NETWORK_CONFIG_CREATED, FIELDS("COREKUBE_ETCD_KEY=network config"),
                          "Created the network configuration %s: %s/%u", l->key,
                          ip4_format(l->wanted.network, net), l->wanted.prefixlen);
                l->cb(0, NULL, &l->wanted, true, l->userdata);
        } else if (result->n_kvs != 1)
                /* Deleted between compare and range: cannot happen within a txn. */
                l->cb(-EIO, "network config vanished", NULL, false, l->userdata);
        else if (network_config_from_json(result->kvs[0].value, &c, &why) < 0) {
                if (asprintf(&full, "%s: %s", l->key, why ? why : "invalid") < 0)
                        full = NULL;
                l->cb(-EINVAL, full ? full : "invalid network config", NULL, false, l->userdata);
        } else
                l->cb(0, NULL, &c, false, l->userdata);

        free(l->key);
        free(l);
}

int network_config_load(EtcdClient *c, const char *prefix, const NetworkConfig *wanted,
                        network_config_handler_t cb, void *userdata, EtcdRequest **ret) {
        _cleanup_(etcd_txn_freep) EtcdTxn *t = NULL;
        _cleanup_free_ char *json = NULL;
        Load *l;
        int r;

        r = network_config_to_json(wanted, &json);
        if (r < 0)
                return r;
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (Load) { .cb = cb, .userdata = userdata, .wanted = *wanted };
        if (asprintf(&l->key, "%s/config", prefix) < 0) {
                free(l);
                return -ENOMEM;
        }

        t = etcd_txn_new();
        r = t ? 0 : -ENOMEM;
        if (r >= 0)
                r = etcd_txn_compare(t, l->key, ETCD_COMPARE_VERSION, ETCD_COMPARE_EQUAL, 0, NULL);
        if (r >= 0)
                r = etcd_txn_put(t, true, l->key, json, 0);
        if (r >= 0)
                r = etcd_txn_range(t, false, l->key, false);
        if (r >= 0)
                r = etcd_txn_commit(c, t, on_loaded, l, ret);
        if (r < 0) {
                free(l->key);
                free(l);
        }
        return r;
}
