/* SPDX-License-Identifier: Apache-2.0 */
/* The config loader, key by key: every valid and invalid value with its exact
 * FILE:LINE message, the typed struct, the defaults. */

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
#include <unistd.h>

#include "config-test.h"
#include "macro.h"

/* ---- every key: valid values ---- */

static const struct good_case {
        const char *section, *key, *value, *formatted;
} good_cases[] = {
        { "node", "role", "master", "master" },
        { "node", "role", "minion", "minion" },
        { "node", "name", "minion-1", "minion-1" },
        { "node", "interface", "eth0", "eth0" },
        { "node", "interface", "abcdefghijklmno", "abcdefghijklmno" },
        { "node", "address", "192.168.3.12/24", "192.168.3.12/24" },
        { "node", "address", "10.0.0.0/31", "10.0.0.0/31" },
        { "node", "address", "10.1.2.3/32", "10.1.2.3/32" },
        { "etcd", "endpoints", "http://a:2379, https://b:2379,http://c", "http://a:2379,https://b:2379,http://c" },
        { "etcd", "prefix", "/ck/cluster-1", "/ck/cluster-1" },
        { "etcd", "ttl", "1m30s", "1m30s" },
        { "etcd", "ttl", "2s", "2s" },
        { "etcd", "ttl", "2000ms", "2s" },
        { "etcd", "ttl", "24h", "24h" },
        { "etcd", "ca-file", "/etc/corekube/ca.pem", "/etc/corekube/ca.pem" },
        { "network", "prefix", "/coreos.com/net", "/coreos.com/net" },
        { "network", "network", "10.0.0.0/8", "10.0.0.0/8" },
        { "network", "subnet-len", "16", "16" },
        { "network", "subnet-len", "30", "30" },
        { "network", "vni", "1", "1" },
        { "network", "vni", "16777215", "16777215" },
        { "network", "port", "1", "1" },
        { "network", "port", "65535", "65535" },
        { "network", "mtu", "auto", "auto" },
        { "network", "mtu", "68", "68" },
        { "network", "mtu", "1450", "1450" },
        { "network", "mtu", "65535", "65535" },
        { "network", "subnet-file", "/run/ck/subnet.env", "/run/ck/subnet.env" },
        { "network", "docker-opts-file", "/run/ck/opts.env", "/run/ck/opts.env" },
        { "network", "ip-masq", "yes", "yes" },
        { "network", "ip-masq", "off", "no" },
        { "runtime", "unit", "containerd.service", "containerd.service" },
        { "runtime", "restart", "no", "no" },
        { "runtime", "restart", "TRUE", "yes" },
        { "role.master", "units", "a.service   b.socket\tc@x.service", "a.service b.socket c@x.service" },
        { "role.master", "register-url", "https://${NODE_IP}/x", "https://${NODE_IP}/x" },
        { "role.minion", "units", "kubelet.service", "kubelet.service" },
        { "role.minion", "register-url", "http://${MASTER_IP}:8080/api/v1beta1/minions",
          "http://${MASTER_IP}:8080/api/v1beta1/minions" },
        { "role.minion", "register-body", "{\"id\":\"${NODE_NAME}\",\"ip\":\"${NODE_IP}\"}",
          "{\"id\":\"${NODE_NAME}\",\"ip\":\"${NODE_IP}\"}" },
        /* A '#' not after whitespace is part of the value. */
        { "role.minion", "register-body", "{\"a\":\"#x\"}", "{\"a\":\"#x\"}" },
        { "artifact.a", "url", "http://10.0.0.1/a", "http://10.0.0.1/a" },
        { "artifact.a", "sha256", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", HEX64 },
        { "artifact.a", "path", "/usr/local/bin/a", "/usr/local/bin/a" },
        { "artifact.a", "mode", "0644", "0644" },
        { "artifact.a", "mode", "755", "0755" },
};

static void test_keys_valid(void **state) {
        ctx *x = *state;

        for (size_t i = 0; i < ELEMENTSOF(good_cases); i++) {
                const struct good_case *t = &good_cases[i];
                char text[2048];

                /* The key goes on line 10 in both layouts. */
                if (strncmp(t->section, "artifact.", 9) == 0)
                        snprintf(text, sizeof text, BASE_ARTIFACT "%s = %s\n", t->key, t->value);
                else
                        snprintf(text, sizeof text, BASE "#\n#\n#\n[%s]\n%s = %s\n", t->section, t->key, t->value);
                expect_ok(x, text, NULL);
                assert_value(x->c, t->section, t->key, t->formatted);
                assert_origin(x, t->section, t->key, "agent.conf:10");
        }
}

/* ---- every key: invalid values and their exact message ---- */

static const struct bad_case {
        const char *section, *key, *value, *msg;
} bad_cases[] = {
        { "node", "role", "minon", "[node] role: invalid role \"minon\" (use master or minion)" },
        { "node", "role", "Master", "[node] role: invalid role \"Master\" (use master or minion)" },
        { "node", "name", "-x", "[node] name: invalid node name \"-x\": must start with a letter or digit" },
        { "node", "name", "a b", "[node] name: invalid node name \"a b\": use letters, digits, '-', '_' and '.'" },
        { "node", "interface", "abcdefghijklmnop",
          "[node] interface: invalid interface name \"abcdefghijklmnop\": must be 1..15 characters" },
        { "node", "interface", "eth0:1",
          "[node] interface: invalid interface name \"eth0:1\": '/', ':' and whitespace are not allowed" },
        { "node", "address", "192.168.3.12",
          "[node] address: invalid CIDR \"192.168.3.12\": missing /prefix-length" },
        { "node", "address", "192.168.3.0/24",
          "[node] address: \"192.168.3.0/24\" is not a host address (it is the network address of its network)" },
        { "node", "address", "192.168.3.255/24",
          "[node] address: \"192.168.3.255/24\" is not a host address (it is the broadcast address of its network)" },
        { "node", "address", "127.0.0.1/8",
          "[node] address: \"127.0.0.1/8\" is not a usable unicast host address" },
        { "node", "address", "0.0.0.0/32",
          "[node] address: \"0.0.0.0/32\" is not a usable unicast host address" },
        { "node", "address", "224.0.0.5/24",
          "[node] address: \"224.0.0.5/24\" is not a usable unicast host address" },
        { "node", "address", "240.0.0.1/24",
          "[node] address: \"240.0.0.1/24\" is not a usable unicast host address" },
        { "etcd", "endpoints", "ftp://x",
          "[etcd] endpoints: invalid URL \"ftp://x\": only http:// and https:// are supported" },
        { "etcd", "endpoints", "http://a:1, 10.0.0.1:2379",
          "[etcd] endpoints: invalid URL \"10.0.0.1:2379\": only http:// and https:// are supported" },
        { "etcd", "endpoints", ", ,", "[etcd] endpoints: no endpoint given" },
        { "etcd", "endpoints", "", "[etcd] endpoints: no endpoint given" },
        { "etcd", "prefix", "corekube", "[etcd] prefix: invalid key prefix \"corekube\": must start with '/'" },
        { "etcd", "prefix", "/corekube/", "[etcd] prefix: invalid key prefix \"/corekube/\": must not end with '/'" },
        { "etcd", "ttl", "30", "[etcd] ttl: invalid duration \"30\": missing or unknown unit (use ms, s, m or h)" },
        { "etcd", "ttl", "1s", "[etcd] ttl: 1s is out of range 2s..24h" },
        { "etcd", "ttl", "1999ms", "[etcd] ttl: 1999ms is out of range 2s..24h" },
        { "etcd", "ttl", "24h1ms", "[etcd] ttl: 24h1ms is out of range 2s..24h" },
        { "etcd", "ca-file", "ca.pem", "[etcd] ca-file: invalid path \"ca.pem\": must be absolute" },
        { "etcd", "cert-file", "./c.pem", "[etcd] cert-file: invalid path \"./c.pem\": must be absolute" },
        { "etcd", "key-file", "k.pem", "[etcd] key-file: invalid path \"k.pem\": must be absolute" },
        { "etcd", "password-file", "/etc/../pw",
          "[etcd] password-file: invalid path \"/etc/../pw\": '..' components are not allowed" },
        { "etcd", "username", "a\tb", "[etcd] username: control characters are not allowed" },
        { "network", "prefix", "/coreos.com//network",
          "[network] prefix: invalid key prefix \"/coreos.com//network\": empty, '.' or '..' component" },
        { "network", "network", "10.244.1.0/15",
          "[network] network: \"10.244.1.0/15\" has host bits set (did you mean 10.244.0.0/15?)" },
        { "network", "network", "10.244.0.0",
          "[network] network: invalid CIDR \"10.244.0.0\": missing /prefix-length" },
        { "network", "subnet-len", "31", "[network] subnet-len: 31 is out of range 1..30" },
        { "network", "subnet-len", "0", "[network] subnet-len: 0 is out of range 1..30" },
        { "network", "subnet-len", "/24", "[network] subnet-len: invalid number \"/24\"" },
        { "network", "vni", "0", "[network] vni: 0 is out of range 1..16777215" },
        { "network", "vni", "16777216", "[network] vni: 16777216 is out of range 1..16777215" },
        { "network", "port", "0", "[network] port: 0 is out of range 1..65535" },
        { "network", "port", "65536", "[network] port: 65536 is out of range 1..65535" },
        { "network", "port", "http", "[network] port: invalid number \"http\"" },
        { "network", "mtu", "67", "[network] mtu: invalid MTU \"67\": use auto or 68..65535" },
        { "network", "mtu", "65536", "[network] mtu: invalid MTU \"65536\": use auto or 68..65535" },
        { "network", "mtu", "AUTO", "[network] mtu: invalid MTU \"AUTO\": use auto or 68..65535" },
        { "network", "subnet-file", "run/subnet.env",
          "[network] subnet-file: invalid path \"run/subnet.env\": must be absolute" },
        { "network", "docker-opts-file", "/run/..",
          "[network] docker-opts-file: invalid path \"/run/..\": '..' components are not allowed" },
        { "network", "ip-masq", "maybe", "[network] ip-masq: invalid boolean \"maybe\" (use yes or no)" },
        { "runtime", "unit", "docker",
          "[runtime] unit: invalid unit name \"docker\": needs a unit type suffix such as .service" },
        { "runtime", "unit", "a@b@c.service", "[runtime] unit: invalid unit name \"a@b@c.service\": misplaced '@'" },
        { "runtime", "restart", "sometimes", "[runtime] restart: invalid boolean \"sometimes\" (use yes or no)" },
        { "role.master", "units", "kube-apiserver.service kube-scheduler",
          "[role.master] units: invalid unit name \"kube-scheduler\": needs a unit type suffix such as .service" },
        { "role.master", "artifacts", "kubectl bin/kubectl",
          "[role.master] artifacts: invalid artifact name \"bin/kubectl\": use letters, digits, '-', '_' and '.'" },
        { "role.minion", "register-url", "http://${MASTER}:8080/",
          "[role.minion] register-url: unknown placeholder \"${MASTER}\" (known: ${MASTER_IP}, ${NODE_IP}, ${NODE_NAME})" },
        { "role.minion", "register-url", "http://${MASTER_IP",
          "[role.minion] register-url: unknown placeholder \"${MASTER_IP\" (known: ${MASTER_IP}, ${NODE_IP}, ${NODE_NAME})" },
        { "role.minion", "register-url", "ftp://${MASTER_IP}/",
          "[role.minion] register-url: invalid URL \"ftp://${MASTER_IP}/\": only http:// and https:// with a host" },
        { "role.minion", "register-url", "http://${MASTER_IP} x",
          "[role.minion] register-url: invalid URL \"http://${MASTER_IP} x\": only http:// and https:// with a host" },
        { "role.minion", "register-body", "{\"id\":\"${ID}\"}",
          "[role.minion] register-body: unknown placeholder \"${ID}\" (known: ${MASTER_IP}, ${NODE_IP}, ${NODE_NAME})" },
        { "artifact.a", "url", "ftp://x/a",
          "[artifact.a] url: invalid URL \"ftp://x/a\": only http:// and https:// are supported" },
        { "artifact.a", "sha256", "abc",
          "[artifact.a] sha256: invalid sha256 \"abc\": must be 64 hex digits, got 3 characters" },
        { "artifact.a", "path", "opt/bin/a", "[artifact.a] path: invalid path \"opt/bin/a\": must be absolute" },
        { "artifact.a", "mode", "0800", "[artifact.a] mode: invalid mode \"0800\": expected octal such as 0755" },
        { "artifact.a", "mode", "17777", "[artifact.a] mode: invalid mode \"17777\": at most 07777" },
};

static void test_keys_invalid(void **state) {
        ctx *x = *state;

        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const struct bad_case *t = &bad_cases[i];
                char text[2048], want[1024];

                if (strncmp(t->section, "artifact.", 9) == 0)
                        snprintf(text, sizeof text, BASE_ARTIFACT "%s = %s\n", t->key, t->value);
                else
                        snprintf(text, sizeof text, BASE "#\n#\n#\n[%s]\n%s = %s\n", t->section, t->key, t->value);
                snprintf(want, sizeof want, "agent.conf:10: %s", t->msg);
                expect_one_error(x, text, NULL, want);
        }
}

/* A fresh artifact whose required keys are all invalid: each is reported
 * once, not again as "is required". */
static void test_invalid_artifact_not_also_missing(void **state) {
        ctx *x = *state;

        assert_int_equal(load_text(x, BASE "[artifact.b]\nurl = x\nsha256 = y\npath = z\n", NULL), -EINVAL);
        expect_diags(x,
                     "agent.conf:7: [artifact.b] url: invalid URL \"x\": only http:// and https:// are supported",
                     "agent.conf:8: [artifact.b] sha256: invalid sha256 \"y\": must be 64 hex digits, got 1 characters",
                     "agent.conf:9: [artifact.b] path: invalid path \"z\": must be absolute");
}

/* ---- the typed struct ---- */

static void test_typed_values(void **state) {
        ctx *x = *state;
        const AgentConfig *c;
        const Artifact *a;

        expect_ok(x,
                  "[node]\n"
                  "role = master\n"
                  "name = master-1\n"
                  "interface = eth1\n"
                  "address = 192.168.3.2/24\n"
                  "[etcd]\n"
                  "endpoints = http://192.168.3.2:2379,https://192.168.3.3:2379\n"
                  "ttl = 1m30s\n"
                  "cert-file = /etc/ck/c.pem\n"
                  "key-file = /etc/ck/k.pem\n"
                  "username = root\n"
                  "password-file = /etc/ck/pw\n"
                  "[network]\n"
                  "network = 10.100.0.0/16\n"
                  "subnet-len = 20\n"
                  "vni = 42\n"
                  "port = 4789\n"
                  "mtu = 1400\n"
                  "ip-masq = yes\n"
                  "[runtime]\n"
                  "restart = no\n"
                  "[role.master]\n"
                  "units = kube-apiserver.service kube-scheduler.service\n"
                  "artifacts = kubectl\n"
                  "[artifact.kubectl]\n"
                  "url = https://example.invalid/kubectl\n"
                  "sha256 = " HEX64 "\n"
                  "path = /opt/bin/kubectl\n"
                  "mode = 0750\n", NULL);
        c = x->c;
        assert_int_equal(c->node.role, ROLE_MASTER);
        assert_string_equal(c->node.name, "master-1");
        assert_string_equal(c->node.interface, "eth1");
        assert_true(c->node.address.set);
        assert_int_equal(ntohl(c->node.address.v.addr.s_addr), 0xc0a80302);
        assert_int_equal(c->node.address.v.prefixlen, 24);
        assert_int_equal(strv_length(c->etcd.endpoints), 2);
        assert_string_equal(c->etcd.endpoints[1], "https://192.168.3.3:2379");
        assert_string_equal(c->etcd.prefix, "/corekube");
        assert_int_equal(c->etcd.ttl, 90 * USEC_PER_SEC);
        assert_string_equal(c->etcd.cert_file, "/etc/ck/c.pem");
        assert_string_equal(c->etcd.username, "root");
        assert_null(c->etcd.ca_file);
        assert_int_equal(ntohl(c->network.network.addr.s_addr), 0x0a640000);
        assert_int_equal(c->network.network.prefixlen, 16);
        assert_int_equal(c->network.subnet_len, 20);
        assert_int_equal(c->network.vni, 42);
        assert_int_equal(c->network.port, 4789);
        assert_int_equal(c->network.mtu, 1400);
        assert_true(c->network.ip_masq);
        assert_string_equal(c->network.subnet_file, "/run/flannel/subnet.env");
        assert_string_equal(c->runtime.unit, "docker.service");
        assert_false(c->runtime.restart);
        assert_ptr_equal(config_role(c), &c->roles[ROLE_MASTER]);
        assert_int_equal(strv_length(config_role(c)->units), 2);
        assert_string_equal(config_role(c)->units[1], "kube-scheduler.service");
        assert_null(config_role(c)->register_url);
        assert_string_equal(c->roles[ROLE_MINION].units[0], "kubelet.service");
        assert_int_equal(c->n_artifacts, 1);
        a = config_artifact(c, "kubectl");
        assert_non_null(a);
        assert_string_equal(a->url, "https://example.invalid/kubectl");
        assert_true(a->sha256.set);
        assert_int_equal(a->sha256.v[31], 0xef);
        assert_string_equal(a->path, "/opt/bin/kubectl");
        assert_int_equal(a->mode, 0750);
        assert_null(config_artifact(c, "kubelet"));
}

static void test_defaults(void **state) {
        ctx *x = *state;
        const AgentConfig *c;
        char host[256] = "";

        expect_ok(x, "[node]\nrole = minion\n[etcd]\nendpoints = http://127.0.0.1:2379\n", NULL);
        c = x->c;
        assert_int_equal(gethostname(host, sizeof host - 1), 0);
        if (parse_hostname(host, NULL) < 0)
                strcpy(host, "localhost");
        assert_string_equal(c->node.name, host);
        assert_origin(x, "node", "name", "default");
        assert_string_equal(c->node.interface, "eth2");
        assert_false(c->node.address.set);
        assert_origin(x, "node", "address", "unset");
        assert_int_equal(c->etcd.ttl, 30 * USEC_PER_SEC);
        assert_string_equal(c->network.prefix, "/coreos.com/network");
        assert_int_equal(c->network.network.prefixlen, 15);
        assert_int_equal(c->network.subnet_len, 24);
        assert_int_equal(c->network.vni, 1);
        assert_int_equal(c->network.port, 8472);
        assert_int_equal(c->network.mtu, 0);
        assert_string_equal(c->network.docker_opts_file, "/run/flannel/docker_opts.env");
        assert_false(c->network.ip_masq);
        assert_true(c->runtime.restart);
        assert_ptr_equal(config_role(c), &c->roles[ROLE_MINION]);
        assert_int_equal(strv_length(c->roles[ROLE_MINION].artifacts), 0);
        assert_string_equal(c->roles[ROLE_MINION].register_body,
                            "{\"kind\":\"Minion\",\"id\":\"${NODE_IP}\",\"hostIP\":\"${NODE_IP}\",\"apiVersion\":\"v1beta1\"}");
        assert_int_equal(c->n_artifacts, 0);
}

static void test_env_name(void **state) {
        _cleanup_free_ char *a = config_env_name("role.master", "register-url");
        _cleanup_free_ char *b = config_env_name("network", "subnet-len");

        assert_string_equal(a, "COREKUBE_ROLE_MASTER_REGISTER_URL");
        assert_string_equal(b, "COREKUBE_NETWORK_SUBNET_LEN");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_keys_valid),
                T(test_keys_invalid),
                T(test_invalid_artifact_not_also_missing),
                T(test_typed_values),
                T(test_defaults),
                T(test_env_name),
        };

        return cmocka_run_group_tests_name("config-keys", tests, group_setup, group_teardown);
}
