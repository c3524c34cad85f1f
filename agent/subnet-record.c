/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-json.h"
#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "netsetup.h"
#include "subnet-record.h"


int subnet_record_format(uint32_t public_ip, const uint8_t vtep_mac[static 6], uint32_t vni, char **ret) {
        char ip[IP4_STRLEN], mac[MAC_STRLEN];

        /* Member order as flannel writes it. */
        if (asprintf(ret, "{\"PublicIP\":\"%s\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":%" PRIu32 ",\"VtepMAC\":\"%s\"}}",
                     ip4_format(public_ip, ip), vni, ns_format_mac(vtep_mac, mac)) < 0)
                return -ENOMEM;
        return 0;
}

int subnet_record_public_ip(const char *value, uint32_t *ret) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(value);
        json_object *v;

        if (!o || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "PublicIP", &v) || !json_object_is_type(v, json_type_string))
                return -EINVAL;
        return ip4_parse(json_object_get_string(v), ret);
}

static int reject(char **ret_reason, const char *format, ...) _printf_(2, 3);
static int reject(char **ret_reason, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_reason, format, ap) < 0)
                *ret_reason = NULL;
        va_end(ap);
        return -EINVAL;
}

int subnet_record_validate(const char *prefix, const char *key, const char *value,
                           const NetworkConfig *config, uint32_t own_subnet, uint32_t own_ip,
                           SubnetRecord *ret, char **ret_reason) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v, *data;
        SubnetRecord rec = {};
        char a[IP4_STRLEN];

        *ret_reason = NULL;
        if (network_config_parse_subnet_key(key, prefix, &rec.subnet, &rec.len) < 0)
                return reject(ret_reason, "the key is not <network>-<length>");
        if ((rec.subnet & ip4_mask(config->prefixlen)) != config->network || rec.len < config->prefixlen)
                return reject(ret_reason, "subnet %s/%u is outside the network %s/%u",
                              ip4_format(rec.subnet, a), rec.len, ip4_format(config->network, (char[IP4_STRLEN]) {}),
                              config->prefixlen);
        if (rec.len != config->subnet_len)
                return reject(ret_reason, "subnet length /%u, the network uses /%u", rec.len, config->subnet_len);

        o = json_tokener_parse(value);
        if (!o || !json_object_is_type(o, json_type_object))
                return reject(ret_reason, "the value is not a JSON object");

        if (!json_object_object_get_ex(o, "PublicIP", &v) || !json_object_is_type(v, json_type_string) ||
            ip4_parse(json_object_get_string(v), &rec.public_ip) < 0)
                return reject(ret_reason, "PublicIP is missing or not an IPv4 address");
        if (!ip4_is_unicast(rec.public_ip))
                return reject(ret_reason, "PublicIP %s is not a unicast address", ip4_format(rec.public_ip, a));

        if (own_subnet != 0 && rec.subnet == own_subnet) {
                if (rec.public_ip == own_ip)
                        return 1;
                return reject(ret_reason, "it claims our subnet %s/%u for %s", ip4_format(own_subnet, (char[IP4_STRLEN]) {}),
                              rec.len, ip4_format(rec.public_ip, a));
        }

        if (!json_object_object_get_ex(o, "BackendType", &v) || !json_object_is_type(v, json_type_string) ||
            !streq(json_object_get_string(v), "vxlan"))
                return reject(ret_reason, "BackendType is not vxlan");

        if (!json_object_object_get_ex(o, "BackendData", &data) || !json_object_is_type(data, json_type_object))
                return reject(ret_reason, "BackendData is missing");
        if (!json_object_object_get_ex(data, "VtepMAC", &v) || !json_object_is_type(v, json_type_string) ||
            ns_parse_mac(json_object_get_string(v), rec.vtep_mac) < 0)
                return reject(ret_reason, "BackendData.VtepMAC is missing or not a MAC address");
        if (!mac_is_unicast(rec.vtep_mac))
                return reject(ret_reason, "BackendData.VtepMAC %s is not a unicast MAC", json_object_get_string(v));

        rec.vni = config->vni;
        if (json_object_object_get_ex(data, "VNI", &v)) {
                int64_t vni;

                if (!json_object_is_type(v, json_type_int) || (vni = json_object_get_int64(v)) != config->vni)
                        return reject(ret_reason, "BackendData.VNI does not match the network's VNI %" PRIu32, config->vni);
        }

        *ret = rec;
        return 0;
}
