/* SPDX-License-Identifier: Apache-2.0 */
/* flannel's network config JSON, as any etcd writer may set it. A config
 * that is accepted must describe a usable range and survive a round trip. */
#include "fuzz.h"
#include "network-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *json = fuzz_string(data, size), *error = NULL, *again = NULL, *key = NULL;
        NetworkConfig c, c2;
        uint32_t subnet;
        unsigned len;

        if (!json)
                return 0;
        if (network_config_from_json(json, &c, &error) >= 0) {
                fuzz_check(c.prefixlen >= 1 && c.subnet_len > c.prefixlen && c.subnet_len <= 30);
                fuzz_check(c.subnet_min <= c.subnet_max);
                fuzz_check(c.vni >= 1 && c.vni <= 0xffffff);
                fuzz_check(network_config_n_subnets(&c) >= 1);
                fuzz_check(network_config_subnet_ok(&c, c.subnet_min, c.subnet_len));
                fuzz_check(network_config_subnet_ok(&c, c.subnet_max, c.subnet_len));

                fuzz_check(network_config_to_json(&c, &again) >= 0);
                fuzz_check(network_config_from_json(again, &c2, NULL) >= 0);
                fuzz_check(memcmp(&c, &c2, sizeof c) == 0);

                fuzz_check(network_config_subnet_key("/coreos.com/network", c.subnet_max, c.subnet_len, &key) >= 0);
                fuzz_check(network_config_parse_subnet_key(key, "/coreos.com/network", &subnet, &len) >= 0);
                fuzz_check(subnet == c.subnet_max && len == c.subnet_len);
        } else
                fuzz_check(error);
        /* The same bytes as a lease key. */
        (void) network_config_parse_subnet_key(json, "/coreos.com/network", &subnet, &len);
        free(key);
        free(again);
        free(error);
        free(json);
        return 0;
}
