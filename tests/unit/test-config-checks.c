/* SPDX-License-Identifier: Apache-2.0 */
/* The config loader: cross checks, several problems in one file, unknown
 * sections and keys with their hints, INI syntax. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-test.h"
#include "macro.h"

/* ---- cross checks ---- */

static void test_cross_required(void **state) {
        ctx *x = *state;

        /* Required keys have no line: the main file is named. */
        assert_int_equal(load_text(x, "", NULL), -EINVAL);
        expect_diags(x,
                     "agent.conf: [node] role is required (master or minion)",
                     "agent.conf: [etcd] endpoints is required (e.g. http://192.168.3.2:2379)");

        expect_one_error(x, "[etcd]\nendpoints = http://a:1\n", NULL,
                         "agent.conf: [node] role is required (master or minion)");
        expect_one_error(x, "[node]\nrole = master\n", NULL,
                         "agent.conf: [etcd] endpoints is required (e.g. http://192.168.3.2:2379)");
        /* A rejected value is not reported a second time as missing. */
        expect_one_error(x, "[node]\nrole = boss\n[etcd]\nendpoints = http://a:1\n", NULL,
                         "agent.conf:2: [node] role: invalid role \"boss\" (use master or minion)");
        expect_one_error(x, "[node]\nrole = master\n[etcd]\nendpoints = a:1\n", NULL,
                         "agent.conf:4: [etcd] endpoints: invalid URL \"a:1\": only http:// and https:// are supported");
}

static void test_cross_subnet_len(void **state) {
        ctx *x = *state;

        /* Network from the file, subnet-len by default: the network's line. */
        expect_one_error(x, BASE "[network]\nnetwork = 10.0.0.0/24\n", NULL,
                         "agent.conf:7: [network] subnet-len 24 must be greater than the prefix length of network 10.0.0.0/24");
        /* subnet-len from the file: its line. */
        expect_one_error(x, BASE "[network]\nsubnet-len = 15\n", NULL,
                         "agent.conf:7: [network] subnet-len 15 must be greater than the prefix length of network 10.244.0.0/15");
        expect_one_error(x, BASE "[network]\nnetwork = 10.0.0.0/16\nsubnet-len = 8\n", NULL,
                         "agent.conf:8: [network] subnet-len 8 must be greater than the prefix length of network 10.0.0.0/16");
        expect_ok(x, BASE "[network]\nnetwork = 10.0.0.0/16\nsubnet-len = 17\n", NULL);
        expect_ok(x, BASE "[network]\nnetwork = 10.0.0.0/29\nsubnet-len = 30\n", NULL);
}

static void test_cross_pairs(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "cert-file = /c.pem\n", NULL,
                         "agent.conf:6: [etcd] cert-file and key-file must be given together");
        expect_one_error(x, BASE "key-file = /k.pem\n", NULL,
                         "agent.conf:6: [etcd] cert-file and key-file must be given together");
        expect_ok(x, BASE "cert-file = /c.pem\nkey-file = /k.pem\n", NULL);
        expect_one_error(x, BASE "username = root\n", NULL,
                         "agent.conf:6: [etcd] username and password-file must be given together");
        expect_one_error(x, BASE "password-file = /pw\n", NULL,
                         "agent.conf:6: [etcd] username and password-file must be given together");
        expect_ok(x, BASE "username = root\npassword-file = /pw\n", NULL);
        /* ca-file alone is fine: a trust anchor without client auth. */
        expect_ok(x, BASE "ca-file = /ca.pem\n", NULL);
}

static void test_cross_secrets(void **state) {
        ctx *x = *state;
        char text[3 * PATH_MAX], msg[3 * PATH_MAX], key[PATH_MAX + 64], pw[PATH_MAX + 64];

        write_file(x, "k.pem", "key\n");
        write_file(x, "pw", "secret\n");
        snprintf(key, sizeof key, "%s/k.pem", x->dir);
        snprintf(pw, sizeof pw, "%s/pw", x->dir);
        snprintf(text, sizeof text, BASE "cert-file = /c.pem\nkey-file = %s\nusername = root\npassword-file = %s\n", key, pw);

        assert_int_equal(chmod(key, 0600), 0);
        assert_int_equal(chmod(pw, 0400), 0);
        expect_ok(x, text, NULL);

        assert_int_equal(chmod(key, 0640), 0);
        snprintf(msg, sizeof msg, "agent.conf:7: [etcd] key-file %s is accessible by group or others (mode 0640): "
                 "make it readable by its owner only (chmod 0600)", "k.pem");
        expect_one_error(x, text, NULL, msg);

        assert_int_equal(chmod(key, 0600), 0);
        assert_int_equal(chmod(pw, 0604), 0);
        snprintf(msg, sizeof msg, "agent.conf:9: [etcd] password-file %s is accessible by group or others (mode 0604): "
                 "make it readable by its owner only (chmod 0600)", "pw");
        expect_one_error(x, text, NULL, msg);

        /* From the environment too, named by its variable. (The diagnostics
         * show paths relative to the test's directory.) */
        snprintf(text, sizeof text, "COREKUBE_ETCD_PASSWORD_FILE=%s", pw);
        snprintf(msg, sizeof msg, "env COREKUBE_ETCD_PASSWORD_FILE: [etcd] password-file %s is accessible by group or others "
                 "(mode 0604): make it readable by its owner only (chmod 0600)", "pw");
        expect_one_error(x, BASE "username = root\n", ((char *const[]) { text, NULL }), msg);
}

static void test_cross_artifacts(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "[role.minion]\nartifacts = kubelet\n", NULL,
                         "agent.conf:7: [role.minion] artifacts names \"kubelet\", but there is no [artifact.kubelet] section");
        /* Both roles are checked, whichever this node has. */
        assert_int_equal(load_text(x, BASE "[role.master]\nartifacts = kubectl kube-apiserver\n", NULL), -EINVAL);
        expect_diags(x,
                     "agent.conf:7: [role.master] artifacts names \"kubectl\", but there is no [artifact.kubectl] section",
                     "agent.conf:7: [role.master] artifacts names \"kube-apiserver\", but there is no [artifact.kube-apiserver] section");
        /* Missing keys are reported at the section header. */
        assert_int_equal(load_text(x, BASE "[role.minion]\nartifacts = kubelet\n[artifact.kubelet]\nmode = 0700\n", NULL),
                         -EINVAL);
        expect_diags(x,
                     "agent.conf:8: [artifact.kubelet] url is required",
                     "agent.conf:8: [artifact.kubelet] sha256 is required",
                     "agent.conf:8: [artifact.kubelet] path is required");
        expect_one_error(x, BASE "[artifact.k]\nurl = http://x/k\npath = /k\n", NULL,
                         "agent.conf:6: [artifact.k] sha256 is required");
        expect_one_error(x, BASE "[artifact.k]\nsha256 = " HEX64 "\npath = /k\n", NULL,
                         "agent.conf:6: [artifact.k] url is required");
        expect_one_error(x, BASE "[artifact.k]\nurl = http://x/k\nsha256 = " HEX64 "\n", NULL,
                         "agent.conf:6: [artifact.k] path is required");
        /* A section may be given in pieces. */
        expect_ok(x, BASE "[artifact.k]\nurl = http://x/k\n[node]\n[artifact.k]\nsha256 = " HEX64 "\npath = /k\n", NULL);
        assert_int_equal(x->c->n_artifacts, 1);
        assert_origin(x, "artifact.k", "path", "agent.conf:11");
        /* Invalid artifact names in section headers. */
        expect_one_error(x, BASE "[artifact.]\nurl = http://x\n", NULL,
                         "agent.conf:6: invalid section [artifact.]: artifact name missing or invalid");
        expect_one_error(x, BASE "[artifact.a/b]\nurl = http://x\n", NULL,
                         "agent.conf:6: invalid section [artifact.a/b]: artifact name missing or invalid");
}

static void test_cross_address(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "[node]\naddress = 10.0.0.0/8\n", NULL,
                         "agent.conf:7: [node] address: \"10.0.0.0/8\" is not a host address (it is the network address of its network)");
        expect_one_error(x, BASE "[node]\naddress = 10.0.0.3/30\n", NULL,
                         "agent.conf:7: [node] address: \"10.0.0.3/30\" is not a host address (it is the broadcast address of its network)");
        expect_ok(x, BASE "[node]\naddress = 10.0.0.2/30\n", NULL);
}

/* ---- several problems, all reported ---- */

static void test_all_problems_reported(void **state) {
        ctx *x = *state;

        assert_int_equal(load_text(x,
                                   "[node]\n"                           /* 1 */
                                   "role = minon\n"                     /* 2 */
                                   "interfac = eth2\n"                  /* 3 */
                                   "address = 192.168.3.0/24\n"         /* 4 */
                                   "[etcd]\n"                           /* 5 */
                                   "endpoints = ftp://x\n"              /* 6 */
                                   "ttl = 30\n"                         /* 7 */
                                   "cert-file = /c.pem\n"               /* 8 */
                                   "[netwrk]\n"                         /* 9 */
                                   "vni = 0\n"                          /* 10: skipped with its section */
                                   "[network]\n"                        /* 11 */
                                   "network = 10.244.1.0/15\n"          /* 12 */
                                   "vni = 0\n"                          /* 13 */
                                   "this is not a key\n"                /* 14 */
                                   "[role.minion]\n"                    /* 15 */
                                   "artifacts = kubelet\n",             /* 16 */
                                   NULL), -EINVAL);
        assert_null(x->c);
        expect_diags(x,
                     "agent.conf:2: [node] role: invalid role \"minon\" (use master or minion)",
                     "agent.conf:3: unknown key \"interfac\" in [node] (did you mean \"interface\"?)",
                     "agent.conf:4: [node] address: \"192.168.3.0/24\" is not a host address (it is the network address of its network)",
                     "agent.conf:6: [etcd] endpoints: invalid URL \"ftp://x\": only http:// and https:// are supported",
                     "agent.conf:7: [etcd] ttl: invalid duration \"30\": missing or unknown unit (use ms, s, m or h)",
                     "agent.conf:9: unknown section [netwrk] (did you mean [network]?)",
                     "agent.conf:12: [network] network: \"10.244.1.0/15\" has host bits set (did you mean 10.244.0.0/15?)",
                     "agent.conf:13: [network] vni: 0 is out of range 1..16777215",
                     "agent.conf:14: expected \"key = value\", got \"this is not a key\"",
                     "agent.conf:8: [etcd] cert-file and key-file must be given together",
                     "agent.conf:16: [role.minion] artifacts names \"kubelet\", but there is no [artifact.kubelet] section");
        assert_int_equal(x->n_diags, 11);
}

/* ---- unknown sections and keys, syntax ---- */

static void test_unknown(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "[nodes]\nrole = master\nfoo = bar\n", NULL,
                         "agent.conf:6: unknown section [nodes] (did you mean [node]?)");
        expect_one_error(x, BASE "[role.mastr]\nunits = a.service\n", NULL,
                         "agent.conf:6: unknown section [role.mastr] (did you mean [role.master]?)");
        expect_one_error(x, BASE "[kubernetes]\n", NULL, "agent.conf:6: unknown section [kubernetes]");
        expect_one_error(x, BASE "[artifact]\n", NULL, "agent.conf:6: unknown section [artifact]");
        expect_one_error(x, BASE "[Node]\n", NULL, "agent.conf:6: unknown section [Node] (did you mean [node]?)");

        expect_one_error(x, BASE "[node]\ninterfac = eth2\n", NULL,
                         "agent.conf:7: unknown key \"interfac\" in [node] (did you mean \"interface\"?)");
        expect_one_error(x, BASE "endpoint = http://a:1\n", NULL,
                         "agent.conf:6: unknown key \"endpoint\" in [etcd] (did you mean \"endpoints\"?)");
        expect_one_error(x, BASE "[network]\nsubnet_len = 20\n", NULL,
                         "agent.conf:7: unknown key \"subnet_len\" in [network] (did you mean \"subnet-len\"?)");
        expect_one_error(x, BASE_ARTIFACT "urls = http://x\n", NULL,
                         "agent.conf:10: unknown key \"urls\" in [artifact.a] (did you mean \"url\"?)");
        /* The right key in the wrong section. */
        expect_one_error(x, BASE "[node]\nendpoints = http://a:1\n", NULL,
                         "agent.conf:7: unknown key \"endpoints\" in [node] (it belongs in [etcd])");
        expect_one_error(x, BASE "[network]\nttl = 30s\n", NULL,
                         "agent.conf:7: unknown key \"ttl\" in [network] (it belongs in [etcd])");
        expect_one_error(x, BASE "[runtime]\nmtu = 1400\n", NULL,
                         "agent.conf:7: unknown key \"mtu\" in [runtime] (it belongs in [network])");
        /* Nothing close. */
        expect_one_error(x, BASE "[node]\nx = 1\n", NULL, "agent.conf:7: unknown key \"x\" in [node]");
        expect_one_error(x, BASE "[runtime]\ncolour = blue\n", NULL, "agent.conf:7: unknown key \"colour\" in [runtime]");

        expect_one_error(x, "role = minion\n" BASE, NULL, "agent.conf:1: key \"role\" outside of any section");
}

static void test_syntax(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "[node\n", NULL, "agent.conf:6: invalid section header \"[node\"");
        expect_one_error(x, BASE "[node] x\n", NULL, "agent.conf:6: invalid section header \"[node] x\"");
        expect_one_error(x, BASE "just words\n", NULL, "agent.conf:6: expected \"key = value\", got \"just words\"");
        expect_one_error(x, BASE "= 5\n", NULL, "agent.conf:6: missing key before '='");
        expect_one_error(x, BASE "username = a\x01z\n", NULL,
                         "agent.conf:6: control character in the value of \"username\"");

        /* Comments, blank lines, spaces, CRLF and a byte order mark. */
        expect_ok(x,
                  "\xef\xbb\xbf# comment\r\n"
                  "; another\r\n"
                  "\r\n"
                  "  [node]   # trailing\r\n"
                  "  role   =   master   # the role\r\n"
                  "name=n1\r\n"
                  "[etcd]\r\n"
                  "endpoints = http://a:1\r\n"
                  "[network]\n"
                  "vni = 7 # seven\n", NULL);
        assert_int_equal(x->c->node.role, ROLE_MASTER);
        assert_string_equal(x->c->node.name, "n1");
        assert_int_equal(x->c->network.vni, 7);
        assert_origin(x, "network", "vni", "agent.conf:10");
}

static void test_syntax_mtu_comment(void **state) {
        ctx *x = *state;

        expect_one_error(x, BASE "[network]\nmtu = 1400#x\n", NULL,
                         "agent.conf:7: [network] mtu: invalid MTU \"1400#x\": use auto or 68..65535");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_cross_required),
                T(test_cross_subnet_len),
                T(test_cross_pairs),
                T(test_cross_secrets),
                T(test_cross_artifacts),
                T(test_cross_address),
                T(test_all_problems_reported),
                T(test_unknown),
                T(test_syntax),
                T(test_syntax_mtu_comment),
        };

        return cmocka_run_group_tests_name("config-checks", tests, group_setup, group_teardown);
}
