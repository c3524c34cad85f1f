/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: network config validation, subnet record validation, IPv4/MAC
 * parsing, the machine record JSON, backoff bounds, the subnet file. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "ip4-util.h"
#include "macro.h"
#include "netsetup.h"
#include "network-config.h"
#include "registry.h"
#include "subnet-lease.h"
#include "subnet-record.h"

#define IP(a, b, c, d) ((uint32_t) (a) << 24 | (uint32_t) (b) << 16 | (uint32_t) (c) << 8 | (uint32_t) (d))

static void test_ip4_mac(void **state) {
        uint32_t a;
        unsigned len;
        uint8_t m[6];
        char buf[IP4_STRLEN];

        assert_int_equal(ip4_parse("192.168.3.12", &a), 0);
        assert_true(a == IP(192, 168, 3, 12));
        assert_string_equal(ip4_format(a, buf), "192.168.3.12");
        assert_int_equal(ip4_parse("10.1", &a), -EINVAL);
        assert_int_equal(ip4_parse("256.1.1.1", &a), -EINVAL);
        assert_int_equal(ip4_parse(" 1.2.3.4", &a), -EINVAL);
        assert_int_equal(ip4_parse_cidr("10.244.0.0/15", false, &a, &len), 0);
        assert_true(a == IP(10, 244, 0, 0) && len == 15);
        assert_int_equal(ip4_parse_cidr("10.245.0.0/15", false, &a, &len), -EINVAL);   /* host bits */
        assert_int_equal(ip4_parse_cidr("10.244.94.1/24", true, &a, &len), 0);
        assert_int_equal(ip4_parse_cidr("10.0.0.0/33", false, &a, &len), -EINVAL);
        assert_int_equal(ip4_parse_cidr("10.0.0.0/", false, &a, &len), -EINVAL);
        assert_int_equal(ip4_parse_cidr("10.0.0.0/08", false, &a, &len), -EINVAL);
        assert_true(ip4_is_unicast(IP(192, 168, 3, 1)));
        assert_false(ip4_is_unicast(IP(224, 0, 0, 5)));
        assert_false(ip4_is_unicast(IP(255, 255, 255, 255)));
        assert_false(ip4_is_unicast(IP(127, 0, 0, 1)));
        assert_false(ip4_is_unicast(IP(0, 0, 0, 0)));
        assert_false(ip4_is_unicast(IP(169, 254, 1, 1)));

        assert_int_equal(ns_parse_mac("0a:58:0A:f4:5e:01", m), 0);
        assert_true(mac_is_unicast(m));
        assert_int_equal(ns_parse_mac("0a:58:0a:f4:5e", m), -EINVAL);
        assert_int_equal(ns_parse_mac("0a-58-0a-f4-5e-01", m), -EINVAL);
        assert_int_equal(ns_parse_mac("zz:58:0a:f4:5e:01", m), -EINVAL);
        assert_int_equal(ns_parse_mac("01:00:5e:00:00:01", m), 0);
        assert_false(mac_is_unicast(m));
        assert_int_equal(ns_parse_mac("00:00:00:00:00:00", m), 0);
        assert_false(mac_is_unicast(m));
}

static void test_network_config_defaults(void **state) {
        NetworkConfig c;
        char *json = NULL, *why = NULL;

        assert_int_equal(network_config_new("10.244.0.0/15", 24, 1, 8472, &c, &why), 0);
        assert_true(c.subnet_min == IP(10, 244, 1, 0) && c.subnet_max == IP(10, 245, 255, 0));
        assert_int_equal(network_config_n_subnets(&c), 511);
        assert_int_equal(network_config_to_json(&c, &json), 0);
        assert_string_equal(json, "{\"Network\":\"10.244.0.0/15\",\"SubnetLen\":24,\"SubnetMin\":\"10.244.1.0\","
                            "\"SubnetMax\":\"10.245.255.0\",\"Backend\":{\"Type\":\"vxlan\",\"VNI\":1,\"Port\":8472}}");
        /* What we write, we read back the same. */
        {
                NetworkConfig d;

                /* Field by field: the struct's padding is not part of it. */
                assert_int_equal(network_config_from_json(json, &d, &why), 0);
                assert_int_equal(d.network, c.network);
                assert_int_equal(d.prefixlen, c.prefixlen);
                assert_int_equal(d.subnet_len, c.subnet_len);
                assert_int_equal(d.subnet_min, c.subnet_min);
                assert_int_equal(d.subnet_max, c.subnet_max);
                assert_int_equal(d.vni, c.vni);
                assert_int_equal(d.port, c.port);
        }
        free(json);

        assert_true(network_config_subnet_ok(&c, IP(10, 244, 94, 0), 24));
        assert_false(network_config_subnet_ok(&c, IP(10, 244, 0, 0), 24));     /* below SubnetMin */
        assert_false(network_config_subnet_ok(&c, IP(10, 244, 94, 128), 24));
        assert_false(network_config_subnet_ok(&c, IP(10, 244, 94, 0), 25));
        assert_false(network_config_subnet_ok(&c, IP(10, 246, 0, 0), 24));

        /* flannel's own minimal config. */
        assert_int_equal(network_config_from_json("{\"Network\":\"10.1.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}",
                                                  &c, &why), 0);
        assert_true(c.subnet_len == 24 && c.vni == 1 && c.port == 8472);
}

static void test_network_config_errors(void **state) {
        static const char *const cases[][2] = {
                { "[]", "not a JSON object" },
                { "{}", "Network: missing" },
                { "{\"Network\":5}", "Network: has the wrong JSON type" },
                { "{\"Network\":\"10.1.0.1/16\",\"Backend\":{\"Type\":\"vxlan\"}}", "Network:" },
                { "{\"Network\":\"10.1.0.0/16\",\"SubnetLen\":16,\"Backend\":{\"Type\":\"vxlan\"}}", "SubnetLen:" },
                { "{\"Network\":\"10.1.0.0/16\",\"SubnetLen\":31,\"Backend\":{\"Type\":\"vxlan\"}}", "SubnetLen:" },
                { "{\"Network\":\"10.1.0.0/16\",\"SubnetMin\":\"10.1.0.7\",\"Backend\":{\"Type\":\"vxlan\"}}", "SubnetMin:" },
                { "{\"Network\":\"10.1.0.0/16\",\"SubnetMin\":\"10.2.0.0\",\"Backend\":{\"Type\":\"vxlan\"}}", "SubnetMin:" },
                { "{\"Network\":\"10.1.0.0/16\",\"SubnetMax\":\"x\",\"Backend\":{\"Type\":\"vxlan\"}}", "SubnetMax:" },
                { "{\"Network\":\"10.1.0.0/16\",\"SubnetMin\":\"10.1.9.0\",\"SubnetMax\":\"10.1.8.0\","
                  "\"Backend\":{\"Type\":\"vxlan\"}}", "SubnetMin:" },
                { "{\"Network\":\"10.1.0.0/16\"}", "Backend:" },
                { "{\"Network\":\"10.1.0.0/16\",\"Backend\":{\"Type\":\"host-gw\"}}", "Backend.Type:" },
                { "{\"Network\":\"10.1.0.0/16\",\"Backend\":{\"Type\":\"vxlan\",\"VNI\":0}}", "Backend.VNI:" },
                { "{\"Network\":\"10.1.0.0/16\",\"Backend\":{\"Type\":\"vxlan\",\"Port\":70000}}", "Backend.Port:" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                NetworkConfig c;
                char *why = NULL;

                assert_int_equal(network_config_from_json(cases[i][0], &c, &why), -EINVAL);
                assert_non_null(why);
                if (strncmp(why, cases[i][1], strlen(cases[i][1])) != 0)
                        fail_msg("case %zu: \"%s\" does not start with \"%s\"", i, why, cases[i][1]);
                free(why);
        }
}

static void test_subnet_keys(void **state) {
        uint32_t s;
        unsigned len;
        char *k;

        assert_int_equal(network_config_subnet_key("/coreos.com/network", IP(10, 244, 94, 0), 24, &k), 0);
        assert_string_equal(k, "/coreos.com/network/subnets/10.244.94.0-24");
        assert_int_equal(network_config_parse_subnet_key(k, "/coreos.com/network", &s, &len), 0);
        assert_true(s == IP(10, 244, 94, 0) && len == 24);
        free(k);
        assert_int_equal(network_config_parse_subnet_key("/coreos.com/network/subnets/10.244.94.0/24",
                                                         "/coreos.com/network", &s, &len), -EINVAL);
        assert_int_equal(network_config_parse_subnet_key("/other/subnets/10.244.94.0-24",
                                                         "/coreos.com/network", &s, &len), -EINVAL);
        assert_int_equal(network_config_parse_subnet_key("/coreos.com/network/subnets/10.244.94.1-24",
                                                         "/coreos.com/network", &s, &len), -EINVAL);
}

static void test_subnet_record(void **state) {
        static const char P[] = "/coreos.com/network";
        static const char *const hostile[][3] = {
                { "/coreos.com/network/subnets/10.244.5.0-24", "{bad json", "not a JSON object" },
                { "/coreos.com/network/subnets/10.9.5.0-24", NULL, "outside the network" },
                { "/coreos.com/network/subnets/10.244.5.0-25", NULL, "subnet length" },
                { "/coreos.com/network/subnets/10.244.0.0-16", NULL, "subnet length" },
                { "/coreos.com/network/subnets/10.244.5.0-16", NULL, "the key" },
                { "/coreos.com/network/subnets/junk", NULL, "the key" },
                { "/coreos.com/network/subnets/10.244.94.0-24", NULL, "claims our subnet" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"224.0.0.5\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VtepMAC\":\"02:00:00:00:00:01\"}}",
                  "PublicIP 224.0.0.5 is not a unicast" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"1.2.3\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VtepMAC\":\"02:00:00:00:00:01\"}}",
                  "PublicIP is missing" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"udp\"}", "BackendType" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"vxlan\"}", "BackendData is missing" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VtepMAC\":\"ff:ff:ff:ff:ff:ff\"}}",
                  "BackendData.VtepMAC ff:ff:ff:ff:ff:ff is not a unicast" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VtepMAC\":\"nope\"}}",
                  "BackendData.VtepMAC is missing" },
                { "/coreos.com/network/subnets/10.244.5.0-24",
                  "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":2,\"VtepMAC\":\"02:00:00:00:00:01\"}}",
                  "BackendData.VNI" },
        };
        NetworkConfig c;
        SubnetRecord r;
        char *v, *why;
        uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
        uint32_t own = IP(10, 244, 94, 0), own_ip = IP(192, 168, 3, 12);

        assert_int_equal(network_config_new("10.244.0.0/15", 24, 1, 8472, &c, NULL), 0);
        assert_int_equal(subnet_record_format(IP(192, 168, 3, 5), mac, 1, &v), 0);
        assert_string_equal(v, "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"vxlan\","
                            "\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"02:00:00:00:00:01\"}}");

        assert_int_equal(subnet_record_validate(P, "/coreos.com/network/subnets/10.244.5.0-24", v, &c, own, own_ip, &r, &why), 0);
        assert_true(r.subnet == IP(10, 244, 5, 0) && r.len == 24 && r.public_ip == IP(192, 168, 3, 5) && r.vni == 1);
        assert_memory_equal(r.vtep_mac, mac, 6);
        assert_null(why);

        /* Our own record: not a peer, not a warning. */
        free(v);
        assert_int_equal(subnet_record_format(own_ip, mac, 1, &v), 0);
        assert_int_equal(subnet_record_validate(P, "/coreos.com/network/subnets/10.244.94.0-24", v, &c, own, own_ip, &r, &why), 1);

        for (size_t i = 0; i < ELEMENTSOF(hostile); i++) {
                const char *value = hostile[i][1] ? hostile[i][1] :
                        "{\"PublicIP\":\"192.168.3.5\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VtepMAC\":\"02:00:00:00:00:01\"}}";

                why = NULL;
                assert_int_equal(subnet_record_validate(P, hostile[i][0], value, &c, own, own_ip, &r, &why), -EINVAL);
                assert_non_null(why);
                if (!strstr(why, hostile[i][2]))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, hostile[i][2]);
                free(why);
        }
        free(v);
}

static void test_registry_format(void **state) {
        Registry *r = NULL;
        RegistryOptions o = {
                .prefix = "/corekube", .machine_id = "abc", .name = "minion-1", .role = "minion",
                .ip = "192.168.3.12", .subnet = "10.244.94.0/24", .version = "0.1.0",
        };
        char *json;

        assert_int_equal(registry_new(NULL, NULL, &o, NULL, NULL, &r), 0);
        assert_string_equal(registry_get_key(r), "/corekube/machines/abc");
        assert_int_equal(registry_format(r, 1795000000ULL * 1000000ULL, &json), 0);
        assert_string_equal(json, "{\"id\":\"abc\",\"name\":\"minion-1\",\"role\":\"minion\",\"ip\":\"192.168.3.12\","
                            "\"subnet\":\"10.244.94.0\\/24\",\"state\":\"registering\",\"units\":{},"
                            "\"version\":\"0.1.0\",\"updated\":\"2026-11-18T11:06:40Z\"}");
        free(json);

        assert_int_equal(registry_set_unit(r, "kubelet.service", "active"), 0);
        assert_int_equal(registry_set_unit(r, "kube-proxy.service", "failed"), 0);
        assert_int_equal(registry_set_unit(r, "kubelet.service", "activating"), 0);
        assert_int_equal(registry_set_state(r, "failed", "kube-proxy.service: exit-code"), 0);
        assert_int_equal(registry_format(r, 0, &json), 0);
        assert_non_null(strstr(json, "\"state\":\"failed\",\"error\":\"kube-proxy.service: exit-code\""));
        assert_non_null(strstr(json, "\"units\":{\"kubelet.service\":\"activating\",\"kube-proxy.service\":\"failed\"}"));
        free(json);

        assert_int_equal(registry_set_unit(r, "kubelet.service", NULL), 0);
        assert_int_equal(registry_set_state(r, "ready", NULL), 0);
        assert_int_equal(registry_format(r, 0, &json), 0);
        assert_null(strstr(json, "error"));
        assert_non_null(strstr(json, "\"units\":{\"kube-proxy.service\":\"failed\"}"));
        free(json);
        registry_free(r);
}

static void test_backoff(void **state) {
        Backoff b;
        uint64_t cap = 0;

        backoff_init(&b, 100, 1000);
        for (unsigned i = 0; i < 50; i++) {
                uint64_t d = backoff_next(&b);

                assert_true(d >= b.current_usec / 2 && d <= b.current_usec);
                assert_true(b.current_usec <= 1000);
                if (b.current_usec == 1000)
                        cap++;
        }
        assert_true(cap > 40);      /* reached the cap after a few steps and stayed */
        backoff_reset(&b);
        assert_true(backoff_next(&b) <= 100);
}

static void test_subnet_file(void **state) {
        char path[] = "/tmp/corekube-subnet-env-XXXXXX";
        int fd = mkstemp(path);
        uint32_t s;
        unsigned len;
        FILE *f;

        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        fputs("FLANNEL_NETWORK=10.244.0.0/15\nFLANNEL_SUBNET=10.244.94.1/24\nFLANNEL_MTU=1450\n", f);
        fclose(f);
        assert_int_equal(subnet_lease_read_subnet_file(path, &s, &len), 0);
        assert_true(s == IP(10, 244, 94, 0) && len == 24);

        f = fopen(path, "w");
        fputs("FLANNEL_MTU=1450\n", f);
        fclose(f);
        assert_int_equal(subnet_lease_read_subnet_file(path, &s, &len), -ENOENT);
        f = fopen(path, "w");
        fputs("FLANNEL_SUBNET=garbage\n", f);
        fclose(f);
        assert_int_equal(subnet_lease_read_subnet_file(path, &s, &len), -EINVAL);
        unlink(path);
        assert_int_equal(subnet_lease_read_subnet_file(path, &s, &len), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ip4_mac),
                cmocka_unit_test(test_network_config_defaults),
                cmocka_unit_test(test_network_config_errors),
                cmocka_unit_test(test_subnet_keys),
                cmocka_unit_test(test_subnet_record),
                cmocka_unit_test(test_registry_format),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_subnet_file),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
