/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: the one MAC text form (netsetup's), and the VTEP MAC pinned
 * for given raw machine IDs and VNIs: it must never change, or every peer
 * replaces its entries on upgrade and loses packets. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "netsetup.h"
#include "vtep-mac.h"

static void test_vtep_mac_pinned(void **state) {
        /* Values from before the app-specific ID (issue 15). */
        static const struct {
                const char *id;
                uint32_t vni;
                const char *mac;
        } cases[] = {
                { "0123456789abcdef0123456789abcdef", 1, "f6:ef:96:b1:85:7b" },
                { "3d1219c7c4c5404aaa1f6d2a48adfda4", 4096, "b6:f7:0d:5f:f5:d1" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t mac[6];
                char buf[18];

                vtep_mac_from_machine_id(cases[i].id, cases[i].vni, mac);
                assert_string_equal(ns_format_mac(mac, buf), cases[i].mac);
        }
}

static void test_mac_text(void **state) {
        static const char *const bad[] = {
                "", "02:00:00:00:fe:0", "02:00:00:00:fe:011", "02-00-00-00-fe-01", "02:00:00:00:fe:0g",
                " 2:00:00:00:fe:01", "+2:00:00:00:fe:01", "02:00:00:00:fe: 1", "0200:00:00:fe:01:",
                "02:00:00:00:fe:01\n", "2:0:0:0:fe:1",
        };
        uint8_t mac[6], want[6] = { 0x02, 0x00, 0x00, 0x00, 0xfe, 0x01 };
        char buf[18];

        assert_int_equal(ns_parse_mac("02:00:00:00:fe:01", mac), 0);
        assert_memory_equal(mac, want, 6);
        assert_int_equal(ns_parse_mac("02:00:00:00:FE:01", mac), 0);
        assert_memory_equal(mac, want, 6);
        assert_string_equal(ns_format_mac(mac, buf), "02:00:00:00:fe:01");
        assert_int_equal(ns_parse_mac(NULL, mac), -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                memset(mac, 0xaa, sizeof mac);
                assert_int_equal(ns_parse_mac(bad[i], mac), -EINVAL);
                /* Nothing half-written. */
                assert_int_equal(mac[0], 0xaa);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vtep_mac_pinned),
                cmocka_unit_test(test_mac_text),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
