/* SPDX-License-Identifier: Apache-2.0 */
/* The typed value parsers of values.h: good inputs, bad inputs and the exact
 * reason each bad input gets (the config loader prefixes it with FILE:LINE). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "values.h"

/* Macros rather than helpers, so that a failure names the line of the case. */
#define BAD(call, msg)                                                  \
        do {                                                            \
                char err[CK_ERRLEN] = "";                               \
                assert_int_equal((call), -EINVAL);                      \
                assert_string_equal(err, (msg));                        \
        } while (0)

#define GOOD(call)                                                      \
        do {                                                            \
                char err[CK_ERRLEN] = "";                               \
                assert_int_equal((call), 0);                            \
                assert_string_equal(err, "");                           \
        } while (0)

static usec_t dur(const char *s) {
        char err[CK_ERRLEN] = "";
        usec_t u = 0;

        assert_int_equal(parse_duration(s, err, &u), 0);
        assert_string_equal(err, "");
        return u;
}

static void test_duration(void **state) {
        usec_t u = 4242;

        assert_int_equal(dur("500ms"), 500 * USEC_PER_MSEC);
        assert_int_equal(dur("30s"), 30 * USEC_PER_SEC);
        assert_int_equal(dur("5m"), 300 * USEC_PER_SEC);
        assert_int_equal(dur("24h"), 24 * 3600 * USEC_PER_SEC);
        assert_int_equal(dur("1m30s"), 90 * USEC_PER_SEC);
        assert_int_equal(dur("1h1m1s1ms"), 3661 * USEC_PER_SEC + USEC_PER_MSEC);
        assert_int_equal(dur("0s"), 0);
        assert_int_equal(dur("0ms"), 0);
        /* The largest value that fits: UINT64_MAX microseconds is not a whole
         * number of ms, so the top is 18446744073709551 ms. */
        assert_int_equal(dur("18446744073709551ms"), 18446744073709551ULL * USEC_PER_MSEC);

        BAD(parse_duration("", err, &u), "empty duration");
        BAD(parse_duration(NULL, err, &u), "empty duration");
        BAD(parse_duration("30", err, &u),
            "invalid duration \"30\": missing or unknown unit (use ms, s, m or h)");
        BAD(parse_duration("1m30", err, &u),
            "invalid duration \"1m30\": missing or unknown unit (use ms, s, m or h)");
        BAD(parse_duration("5d", err, &u),
            "invalid duration \"5d\": missing or unknown unit (use ms, s, m or h)");
        BAD(parse_duration("5sec", err, &u),
            "invalid duration \"5sec\": missing or unknown unit (use ms, s, m or h)");
        BAD(parse_duration("5mx", err, &u),
            "invalid duration \"5mx\": missing or unknown unit (use ms, s, m or h)");
        BAD(parse_duration("s", err, &u),
            "invalid duration \"s\" (expected e.g. 500ms, 30s, 5m, 24h)");
        BAD(parse_duration("-5s", err, &u),
            "invalid duration \"-5s\" (expected e.g. 500ms, 30s, 5m, 24h)");
        BAD(parse_duration(" 5s", err, &u),
            "invalid duration \" 5s\" (expected e.g. 500ms, 30s, 5m, 24h)");
        BAD(parse_duration("1.5s", err, &u),
            "invalid duration \"1.5s\": missing or unknown unit (use ms, s, m or h)");
        /* Overflow: of the number itself, of number × unit, of the sum. */
        BAD(parse_duration("99999999999999999999s", err, &u),
            "duration \"99999999999999999999s\" is too large");
        BAD(parse_duration("18446744073709551619s", err, &u),
            "duration \"18446744073709551619s\" is too large");
        BAD(parse_duration("18446744073709552ms", err, &u),
            "duration \"18446744073709552ms\" is too large");
        BAD(parse_duration("5124095577h", err, &u),
            "duration \"5124095577h\" is too large");
        BAD(parse_duration("5124095575h1000000s", err, &u),
            "duration \"5124095575h1000000s\" is too large");
        /* Failures leave the result alone. */
        assert_int_equal(u, 4242);
        /* err may be NULL. */
        assert_int_equal(parse_duration("x", NULL, &u), -EINVAL);
}

static void test_bool(void **state) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on", "YES", "True", "On" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off", "NO", "False", "OFF" };
        bool b;

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                b = false;
                GOOD(parse_bool(yes[i], err, &b));
                assert_true(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                b = true;
                GOOD(parse_bool(no[i], err, &b));
                assert_false(b);
        }
        BAD(parse_bool("maybe", err, &b), "invalid boolean \"maybe\" (use yes or no)");
        BAD(parse_bool("", err, &b), "invalid boolean \"\" (use yes or no)");
        BAD(parse_bool("2", err, &b), "invalid boolean \"2\" (use yes or no)");
        BAD(parse_bool("yes ", err, &b), "invalid boolean \"yes \" (use yes or no)");
}

static void test_ipv4(void **state) {
        struct in_addr a;

        GOOD(parse_ipv4("192.168.3.12", err, &a));
        assert_int_equal(ntohl(a.s_addr), 0xc0a8030c);
        GOOD(parse_ipv4("0.0.0.0", err, &a));
        GOOD(parse_ipv4("255.255.255.255", err, &a));
        BAD(parse_ipv4("256.1.1.1", err, &a), "invalid IPv4 address \"256.1.1.1\"");
        BAD(parse_ipv4("10.1", err, &a), "invalid IPv4 address \"10.1\"");
        BAD(parse_ipv4("0x0a.0.0.1", err, &a), "invalid IPv4 address \"0x0a.0.0.1\"");
        BAD(parse_ipv4("1.2.3.4.5", err, &a), "invalid IPv4 address \"1.2.3.4.5\"");
        BAD(parse_ipv4("::1", err, &a), "invalid IPv4 address \"::1\"");
        BAD(parse_ipv4("", err, &a), "invalid IPv4 address \"\"");
        BAD(parse_ipv4(" 1.2.3.4", err, &a), "invalid IPv4 address \" 1.2.3.4\"");
}

static void test_cidr(void **state) {
        char buf[64];
        Cidr c;

        GOOD(parse_cidr("10.244.0.0/15", true, err, &c));
        assert_int_equal(ntohl(c.addr.s_addr), 0x0af40000);
        assert_int_equal(c.prefixlen, 15);
        assert_string_equal(format_cidr(&c, buf, sizeof buf), "10.244.0.0/15");
        GOOD(parse_cidr("0.0.0.0/0", true, err, &c));
        GOOD(parse_cidr("1.2.3.4/32", true, err, &c));
        /* Host bits are fine when a host address is asked for. */
        GOOD(parse_cidr("192.168.3.12/24", false, err, &c));
        assert_string_equal(format_cidr(&c, buf, sizeof buf), "192.168.3.12/24");

        BAD(parse_cidr("10.244.1.0/15", true, err, &c),
            "\"10.244.1.0/15\" has host bits set (did you mean 10.244.0.0/15?)");
        BAD(parse_cidr("192.168.3.12/24", true, err, &c),
            "\"192.168.3.12/24\" has host bits set (did you mean 192.168.3.0/24?)");
        BAD(parse_cidr("1.2.3.4/0", true, err, &c),
            "\"1.2.3.4/0\" has host bits set (did you mean 0.0.0.0/0?)");
        BAD(parse_cidr("10.0.0.0", true, err, &c),
            "invalid CIDR \"10.0.0.0\": missing /prefix-length");
        BAD(parse_cidr("10.0.0.0/33", true, err, &c),
            "invalid CIDR \"10.0.0.0/33\": prefix length must be 0..32");
        BAD(parse_cidr("10.0.0.0/", true, err, &c),
            "invalid CIDR \"10.0.0.0/\": prefix length must be 0..32");
        BAD(parse_cidr("10.0.0.0/8x", true, err, &c),
            "invalid CIDR \"10.0.0.0/8x\": prefix length must be 0..32");
        BAD(parse_cidr("10.0.0.0/-1", true, err, &c),
            "invalid CIDR \"10.0.0.0/-1\": prefix length must be 0..32");
        BAD(parse_cidr("10.0.0/8", true, err, &c),
            "invalid CIDR \"10.0.0/8\": bad address \"10.0.0\"");
        BAD(parse_cidr("/8", true, err, &c), "invalid CIDR \"/8\": bad address \"\"");
        BAD(parse_cidr("100.100.100.100x/8", true, err, &c), "invalid CIDR \"100.100.100.100x/8\"");

        /* containment and masks */
        {
                Cidr outer, inner;
                GOOD(parse_cidr("10.244.0.0/15", true, err, &outer));
                GOOD(parse_cidr("10.245.7.0/24", true, err, &inner));
                assert_true(cidr_contains(&outer, &inner));
                assert_true(cidr_contains(&outer, &outer));
                GOOD(parse_cidr("10.246.0.0/24", true, err, &inner));
                assert_false(cidr_contains(&outer, &inner));
                GOOD(parse_cidr("10.0.0.0/8", true, err, &inner));
                assert_false(cidr_contains(&outer, &inner));
        }
        assert_int_equal(cidr_mask(0), 0);
        assert_int_equal(cidr_mask(15), 0xfffe0000);
        assert_int_equal(cidr_mask(32), 0xffffffff);
}

static void test_url(void **state) {
        GOOD(parse_url("http://192.168.3.2:2379", err));
        GOOD(parse_url("https://etcd.example:2379/", err));
        GOOD(parse_url("http://h", err));
        BAD(parse_url("ftp://x", err),
            "invalid URL \"ftp://x\": only http:// and https:// are supported");
        BAD(parse_url("192.168.3.2:2379", err),
            "invalid URL \"192.168.3.2:2379\": only http:// and https:// are supported");
        BAD(parse_url("HTTP://x", err),
            "invalid URL \"HTTP://x\": only http:// and https:// are supported");
        BAD(parse_url("unix:///run/etcd.sock", err),
            "invalid URL \"unix:///run/etcd.sock\": only http:// and https:// are supported");
        BAD(parse_url("", err), "invalid URL \"\": only http:// and https:// are supported");
        BAD(parse_url("http://", err), "invalid URL \"http://\": missing host");
        BAD(parse_url("https:///x", err), "invalid URL \"https:///x\": missing host");
        BAD(parse_url("http://:2379", err), "invalid URL \"http://:2379\": missing host");
        BAD(parse_url("http://a b", err),
            "invalid URL \"http://a b\": contains whitespace or control characters");
        BAD(parse_url("http://a\tb", err),
            "invalid URL \"http://a\tb\": contains whitespace or control characters");
}

static void test_ifname(void **state) {
        GOOD(parse_ifname("eth2", err));
        GOOD(parse_ifname("e", err));
        GOOD(parse_ifname("flannel.1", err));
        GOOD(parse_ifname("abcdefghijklmno", err));         /* 15: the kernel's limit */
        GOOD(parse_ifname("...", err));
        BAD(parse_ifname("abcdefghijklmnop", err),           /* 16 */
            "invalid interface name \"abcdefghijklmnop\": must be 1..15 characters");
        BAD(parse_ifname("", err), "invalid interface name \"\": must be 1..15 characters");
        BAD(parse_ifname(".", err), "invalid interface name \".\"");
        BAD(parse_ifname("..", err), "invalid interface name \"..\"");
        BAD(parse_ifname("eth/0", err),
            "invalid interface name \"eth/0\": '/', ':' and whitespace are not allowed");
        BAD(parse_ifname("eth0:1", err),
            "invalid interface name \"eth0:1\": '/', ':' and whitespace are not allowed");
        BAD(parse_ifname("eth 0", err),
            "invalid interface name \"eth 0\": '/', ':' and whitespace are not allowed");
        BAD(parse_ifname("eth\x01", err),
            "invalid interface name \"eth\x01\": '/', ':' and whitespace are not allowed");
}

static void test_unit_name(void **state) {
        char long_name[300];

        GOOD(parse_unit_name("docker.service", err));
        GOOD(parse_unit_name("kube-apiserver.service", err));
        GOOD(parse_unit_name("getty@tty1.service", err));
        GOOD(parse_unit_name("foo@.service", err));
        GOOD(parse_unit_name("dev-disk-by\\x2dlabel.device", err));
        GOOD(parse_unit_name("a:b_c.socket", err));
        GOOD(parse_unit_name("x.timer", err));
        GOOD(parse_unit_name("x.target", err));
        BAD(parse_unit_name("docker", err),
            "invalid unit name \"docker\": needs a unit type suffix such as .service");
        BAD(parse_unit_name("docker.servic", err),
            "invalid unit name \"docker.servic\": needs a unit type suffix such as .service");
        BAD(parse_unit_name(".service", err),
            "invalid unit name \".service\": empty name before the suffix");
        BAD(parse_unit_name("my unit.service", err),
            "invalid unit name \"my unit.service\": character ' ' is not allowed");
        BAD(parse_unit_name("a/b.service", err),
            "invalid unit name \"a/b.service\": character '/' is not allowed");
        BAD(parse_unit_name("@x.service", err), "invalid unit name \"@x.service\": misplaced '@'");
        BAD(parse_unit_name("a@b@c.service", err), "invalid unit name \"a@b@c.service\": misplaced '@'");
        BAD(parse_unit_name("", err), "invalid unit name \"\": must be 1..255 characters");

        memset(long_name, 'a', 247);
        strcpy(long_name + 247, ".service");                 /* 255 */
        GOOD(parse_unit_name(long_name, err));
        memset(long_name, 'a', 248);
        strcpy(long_name + 248, ".service");                 /* 256 */
        {
                /* The reason quotes the name and so is cut at CK_ERRLEN. */
                char err[CK_ERRLEN] = "";
                assert_int_equal(parse_unit_name(long_name, err), -EINVAL);
                assert_int_equal(strncmp(err, "invalid unit name \"aaaa", 23), 0);
                assert_int_equal(strlen(err), CK_ERRLEN - 1);
        }
}

static void test_hostname(void **state) {
        char name[80];

        GOOD(parse_hostname("minion-1", err));
        GOOD(parse_hostname("node_2.example", err));
        GOOD(parse_hostname("9", err));
        memset(name, 'a', 64);
        name[64] = '\0';
        GOOD(parse_hostname(name, err));
        name[64] = 'a';
        name[65] = '\0';
        BAD(parse_hostname(name, err),
            "invalid node name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be 1..64 characters");
        BAD(parse_hostname("", err), "invalid node name \"\": must be 1..64 characters");
        BAD(parse_hostname("-x", err), "invalid node name \"-x\": must start with a letter or digit");
        BAD(parse_hostname(".x", err), "invalid node name \".x\": must start with a letter or digit");
        BAD(parse_hostname("a b", err), "invalid node name \"a b\": use letters, digits, '-', '_' and '.'");
        BAD(parse_hostname("a/b", err), "invalid node name \"a/b\": use letters, digits, '-', '_' and '.'");
}

static void test_sha256(void **state) {
        static const char hex[] = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";
        uint8_t h[32];
        char out[65];

        GOOD(parse_sha256(hex, err, h));
        assert_int_equal(h[0], 0x01);
        assert_int_equal(h[7], 0xef);
        assert_int_equal(h[15], 0xef);
        assert_string_equal(format_sha256(h, out),
                            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        BAD(parse_sha256("abc", err, h), "invalid sha256 \"abc\": must be 64 hex digits, got 3 characters");
        BAD(parse_sha256("", err, h), "invalid sha256 \"\": must be 64 hex digits, got 0 characters");
        BAD(parse_sha256("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", err, h),
            "invalid sha256 \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\": "
            "must be 64 hex digits, got 63 characters");
        BAD(parse_sha256("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", err, h),
            "invalid sha256 \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\": "
            "must be 64 hex digits, got 65 characters");
        BAD(parse_sha256("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", err, h),
            "invalid sha256 \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\": "
            "'g' is not a hex digit");
        BAD(parse_sha256("0123456789abcdef 123456789abcdef0123456789abcdef0123456789abcdef", err, h),
            "invalid sha256 \"0123456789abcdef 123456789abcdef0123456789abcdef0123456789abcdef\": "
            "' ' is not a hex digit");
}

static void test_mode(void **state) {
        mode_t m = 0;

        GOOD(parse_mode("0755", err, &m));
        assert_int_equal(m, 0755);
        GOOD(parse_mode("644", err, &m));
        assert_int_equal(m, 0644);
        GOOD(parse_mode("0", err, &m));
        assert_int_equal(m, 0);
        GOOD(parse_mode("07777", err, &m));
        assert_int_equal(m, 07777);
        GOOD(parse_mode("4755", err, &m));
        assert_int_equal(m, 04755);
        BAD(parse_mode("0800", err, &m), "invalid mode \"0800\": expected octal such as 0755");
        BAD(parse_mode("rwx", err, &m), "invalid mode \"rwx\": expected octal such as 0755");
        BAD(parse_mode("", err, &m), "invalid mode \"\": expected octal such as 0755");
        BAD(parse_mode("000755", err, &m), "invalid mode \"000755\": expected octal such as 0755");
        BAD(parse_mode("-755", err, &m), "invalid mode \"-755\": expected octal such as 0755");
        BAD(parse_mode("17777", err, &m), "invalid mode \"17777\": at most 07777");
}

static void test_uint_range(void **state) {
        uint64_t v = 0;

        GOOD(parse_uint_range("1", 1, 16777215, err, &v));
        assert_int_equal(v, 1);
        GOOD(parse_uint_range("16777215", 1, 16777215, err, &v));
        assert_int_equal(v, 16777215);
        GOOD(parse_uint_range("0", 0, 0, err, &v));
        GOOD(parse_uint_range("007", 1, 10, err, &v));
        assert_int_equal(v, 7);
        BAD(parse_uint_range("0", 1, 16777215, err, &v), "0 is out of range 1..16777215");
        BAD(parse_uint_range("16777216", 1, 16777215, err, &v), "16777216 is out of range 1..16777215");
        BAD(parse_uint_range("65536", 1, 65535, err, &v), "65536 is out of range 1..65535");
        BAD(parse_uint_range("", 1, 2, err, &v), "empty number");
        BAD(parse_uint_range("12a", 1, 200, err, &v), "invalid number \"12a\"");
        BAD(parse_uint_range("-1", 0, 200, err, &v), "invalid number \"-1\"");
        BAD(parse_uint_range("+1", 0, 200, err, &v), "invalid number \"+1\"");
        BAD(parse_uint_range(" 1", 0, 200, err, &v), "invalid number \" 1\"");
        BAD(parse_uint_range("0x10", 0, 200, err, &v), "invalid number \"0x10\"");
        BAD(parse_uint_range("99999999999999999999999", 0, 200, err, &v),
            "number \"99999999999999999999999\" out of range 0..200");
        assert_int_equal(v, 7);
}

static void test_key_prefix(void **state) {
        GOOD(parse_key_prefix("/corekube", err));
        GOOD(parse_key_prefix("/coreos.com/network", err));
        GOOD(parse_key_prefix("/", err));
        GOOD(parse_key_prefix("/a/.b/c..", err));
        BAD(parse_key_prefix("corekube", err), "invalid key prefix \"corekube\": must start with '/'");
        BAD(parse_key_prefix("", err), "invalid key prefix \"\": must start with '/'");
        BAD(parse_key_prefix("/corekube/", err), "invalid key prefix \"/corekube/\": must not end with '/'");
        BAD(parse_key_prefix("/a//b", err), "invalid key prefix \"/a//b\": empty, '.' or '..' component");
        BAD(parse_key_prefix("/a/./b", err), "invalid key prefix \"/a/./b\": empty, '.' or '..' component");
        BAD(parse_key_prefix("/a/..", err), "invalid key prefix \"/a/..\": empty, '.' or '..' component");
        BAD(parse_key_prefix("/a b", err), "invalid key prefix \"/a b\": whitespace or control characters");
}

static void test_abs_path(void **state) {
        GOOD(parse_abs_path("/run/flannel/subnet.env", err));
        GOOD(parse_abs_path("/opt/bin/..kubelet", err));
        GOOD(parse_abs_path("/", err));
        BAD(parse_abs_path("run/flannel", err), "invalid path \"run/flannel\": must be absolute");
        BAD(parse_abs_path("", err), "invalid path \"\": must be absolute");
        BAD(parse_abs_path("/run/../etc/x", err), "invalid path \"/run/../etc/x\": '..' components are not allowed");
        BAD(parse_abs_path("/run/..", err), "invalid path \"/run/..\": '..' components are not allowed");
        BAD(parse_abs_path("/a\nb", err), "invalid path \"/a\nb\": control characters");
}

static void test_levenshtein(void **state) {
        char a[100], b[100];

        assert_int_equal(levenshtein("", ""), 0);
        assert_int_equal(levenshtein("abc", "abc"), 0);
        assert_int_equal(levenshtein("", "abc"), 3);
        assert_int_equal(levenshtein("abc", ""), 3);
        assert_int_equal(levenshtein("kitten", "sitting"), 3);
        assert_int_equal(levenshtein("interfac", "interface"), 1);
        assert_int_equal(levenshtein("endpoint", "endpoints"), 1);
        assert_int_equal(levenshtein("netwrk", "network"), 1);
        assert_int_equal(levenshtein("flaw", "lawn"), 2);
        assert_int_equal(levenshtein("ab", "ba"), 2);
        /* symmetric */
        assert_int_equal(levenshtein("sitting", "kitten"), 3);
        /* Words of 64 characters or more are never "close". */
        memset(a, 'a', 63);
        a[63] = '\0';
        memcpy(b, a, 64);
        assert_int_equal(levenshtein(a, b), 0);
        memset(a, 'a', 64);
        a[64] = '\0';
        assert_int_equal(levenshtein(a, a), UINT32_MAX);
        assert_int_equal(levenshtein("x", a), UINT32_MAX);
}

static void test_split_words(void **state) {
        char **l = NULL;

        assert_int_equal(split_words("a, b,,c", ", ", &l), 3);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "a");
        assert_string_equal(l[1], "b");
        assert_string_equal(l[2], "c");
        assert_null(l[3]);
        strv_free(l);

        assert_int_equal(split_words("  kubelet.service\tkube-proxy.service  ", " \t", &l), 2);
        assert_string_equal(l[0], "kubelet.service");
        assert_string_equal(l[1], "kube-proxy.service");
        assert_null(l[2]);
        strv_free(l);

        assert_int_equal(split_words("", " ", &l), 0);
        assert_non_null(l);
        assert_null(l[0]);
        strv_free(l);

        assert_int_equal(split_words(" ,, ", ", ", &l), 0);
        assert_null(l[0]);
        strv_free(l);

        assert_int_equal(split_words("one", ",", &l), 1);
        assert_string_equal(l[0], "one");
        strv_free(l);

        assert_int_equal(strv_length(NULL), 0);
        strv_free(NULL);
}

static void test_format_duration(void **state) {
        char buf[64];

        assert_string_equal(format_duration(0, buf, sizeof buf), "0s");
        assert_string_equal(format_duration(500 * USEC_PER_MSEC, buf, sizeof buf), "500ms");
        assert_string_equal(format_duration(30 * USEC_PER_SEC, buf, sizeof buf), "30s");
        assert_string_equal(format_duration(90 * USEC_PER_SEC, buf, sizeof buf), "1m30s");
        assert_string_equal(format_duration(24 * 3600 * USEC_PER_SEC, buf, sizeof buf), "24h");
        assert_string_equal(format_duration(3600 * USEC_PER_SEC + USEC_PER_MSEC, buf, sizeof buf), "1h1ms");
        /* What it prints parses back to the same value. */
        {
                const usec_t u = 26 * 3600 * USEC_PER_SEC + 61 * USEC_PER_SEC + 7 * USEC_PER_MSEC;
                usec_t back = 0;
                char err[CK_ERRLEN] = "";
                assert_int_equal(parse_duration(format_duration(u, buf, sizeof buf), err, &back), 0);
                assert_int_equal(back, u);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration),
                cmocka_unit_test(test_bool),
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_cidr),
                cmocka_unit_test(test_url),
                cmocka_unit_test(test_ifname),
                cmocka_unit_test(test_unit_name),
                cmocka_unit_test(test_hostname),
                cmocka_unit_test(test_sha256),
                cmocka_unit_test(test_mode),
                cmocka_unit_test(test_uint_range),
                cmocka_unit_test(test_key_prefix),
                cmocka_unit_test(test_abs_path),
                cmocka_unit_test(test_levenshtein),
                cmocka_unit_test(test_split_words),
                cmocka_unit_test(test_format_duration),
        };

        return cmocka_run_group_tests_name("values", tests, NULL, NULL);
}
