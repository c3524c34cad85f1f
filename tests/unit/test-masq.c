/* SPDX-License-Identifier: Apache-2.0 */
/* The nftables script of [network] ip-masq (agent/masq.c), exactly: the
 * table it replaces in one transaction and flannel's four rules. Applying it
 * to a real kernel is tests/agent/test_masq.py's. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>

#include "macro.h"
#include "masq.h"

static Cidr cidr(const char *a, unsigned len) {
        Cidr c = { .prefixlen = len };

        assert_int_equal(inet_pton(AF_INET, a, &c.addr), 1);
        return c;
}

static void test_ruleset(void **state) {
        Cidr net = cidr("10.244.0.0", 16), sub = cidr("10.244.94.0", 24);
        _cleanup_free_ char *s = masq_ruleset(&net, &sub);

        assert_non_null(s);
        assert_string_equal(s,
                "table ip corekube\n"
                "delete table ip corekube\n"
                "table ip corekube {\n"
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return\n"
                "\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random\n"
                "\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.94.0/24 return\n"
                "\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random\n"
                "\t}\n"
                "}\n");
}

static void test_ruleset_other_network(void **state) {
        Cidr net = cidr("172.16.0.0", 12), sub = cidr("172.17.3.128", 25);
        _cleanup_free_ char *s = masq_ruleset(&net, &sub);

        assert_non_null(s);
        assert_non_null(strstr(s, "\t\tip saddr 172.16.0.0/12 ip daddr 172.16.0.0/12 return\n"));
        assert_non_null(strstr(s, "\t\tip saddr != 172.16.0.0/12 ip daddr 172.17.3.128/25 return\n"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ruleset),
                cmocka_unit_test(test_ruleset_other_network),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
