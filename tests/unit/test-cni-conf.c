/* SPDX-License-Identifier: Apache-2.0 */
/* The CNI network configuration: the exact text for a lease and an MTU, and
 * that it is written only when it changes. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni-conf.h"
#include "macro.h"

static const char want_94[] =
"{\n"
"  \"cniVersion\": \"0.4.0\",\n"
"  \"name\": \"corekube\",\n"
"  \"plugins\": [\n"
"    {\n"
"      \"type\": \"bridge\",\n"
"      \"bridge\": \"cni0\",\n"
"      \"isGateway\": true,\n"
"      \"isDefaultGateway\": true,\n"
"      \"ipMasq\": false,\n"
"      \"mtu\": 1450,\n"
"      \"ipam\": {\n"
"        \"type\": \"host-local\",\n"
"        \"ranges\": [\n"
"          [\n"
"            {\n"
"              \"subnet\": \"10.244.94.0/24\",\n"
"              \"gateway\": \"10.244.94.1\"\n"
"            }\n"
"          ]\n"
"        ]\n"
"      }\n"
"    },\n"
"    {\n"
"      \"type\": \"portmap\",\n"
"      \"capabilities\": {\n"
"        \"portMappings\": true\n"
"      }\n"
"    }\n"
"  ]\n"
"}\n";

static Cidr cidr(const char *a, unsigned len) {
        Cidr c = { .prefixlen = len };

        assert_int_equal(inet_pton(AF_INET, a, &c.addr), 1);
        return c;
}

static void test_build(void **state) {
        Cidr s = cidr("10.244.94.0", 24);
        _cleanup_free_ char *t = cni_conf_build(&s, 1450, false);

        assert_non_null(t);
        assert_string_equal(t, want_94);
}

static void test_build_other(void **state) {
        /* Another length and MTU; host bits given are dropped, the gateway is
         * the first address. */
        Cidr s = cidr("10.100.16.7", 20);
        _cleanup_free_ char *t = cni_conf_build(&s, 8950, false);

        assert_non_null(t);
        assert_non_null(strstr(t, "\"subnet\": \"10.100.16.0/20\",\n"));
        assert_non_null(strstr(t, "\"gateway\": \"10.100.16.1\"\n"));
        assert_non_null(strstr(t, "\"mtu\": 8950,\n"));
}

/* s with its first `from` replaced by `to` (both must be there). */
static char *replace_once(const char *s, const char *from, const char *to) {
        const char *p = strstr(s, from);
        char *r = NULL;

        assert_non_null(p);
        assert_true(asprintf(&r, "%.*s%s%s", (int) (p - s), s, to, p + strlen(from)) > 0);
        return r;
}

static void test_build_plugin_masq(void **state) {
        /* [network] ip-masq = no: the bridge plugin masquerades, as Docker
         * does; everything else is the same text. */
        Cidr s = cidr("10.244.94.0", 24);
        _cleanup_free_ char *t = cni_conf_build(&s, 1450, true);
        _cleanup_free_ char *want = replace_once(want_94, "\"ipMasq\": false,", "\"ipMasq\": true,");

        assert_non_null(t);
        assert_string_equal(t, want);
}

static void test_write_only_changes(void **state) {
        char dir[] = "/tmp/test-cni-conf-XXXXXX", path[64];
        Cidr a = cidr("10.244.94.0", 24), b = cidr("10.244.95.0", 24);
        struct stat st1, st2;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/10-corekube.conflist", dir);
        assert_int_equal(cni_conf_write(path, &a, 1450, false), 1);
        assert_int_equal(stat(path, &st1), 0);
        assert_int_equal(st1.st_mode & 07777, 0644);
        assert_int_equal(cni_conf_write(path, &a, 1450, false), 0);
        assert_int_equal(stat(path, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);       /* not replaced */
        assert_int_equal(cni_conf_write(path, &b, 1450, false), 1);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(getdelim(&text, &len, '\0', f) > 0, 1);
        fclose(f);
        assert_non_null(strstr(text, "\"gateway\": \"10.244.95.1\""));
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_build),
                cmocka_unit_test(test_build_other),
                cmocka_unit_test(test_build_plugin_masq),
                cmocka_unit_test(test_write_only_changes),
        };

        return cmocka_run_group_tests_name("cni-conf", tests, NULL, NULL);
}
