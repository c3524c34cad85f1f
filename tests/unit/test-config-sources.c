/* SPDX-License-Identifier: Apache-2.0 */
/* The config loader: where values come from. Drop-ins, empty values,
 * environment overrides, the effective-config printout, missing files. */

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

/* ---- drop-ins ---- */

static void test_dropins(void **state) {
        ctx *x = *state;

        write_file(x, "agent.conf.d/20-b.conf", "[network]\nvni = 20\n");
        write_file(x, "agent.conf.d/10-a.conf", "# first\n[network]\nvni = 10\nport = 1000\n");
        /* Not drop-ins: wrong suffix, hidden, or nothing before ".conf". */
        write_file(x, "agent.conf.d/README", "not ini at all\n");
        write_file(x, "agent.conf.d/30-c.conf.bak", "[network]\nvni = 30\n");
        write_file(x, "agent.conf.d/40-d.CONF", "[network]\nvni = 40\n");
        write_file(x, "agent.conf.d/.50-e.conf", "[network]\nvni = 50\n");
        write_file(x, "agent.conf.d/.conf", "[network]\nvni = 60\n");
        expect_ok(x, BASE "[network]\nvni = 5\nport = 5\nmtu = 1400\n", NULL);
        assert_int_equal(x->c->network.vni, 20);
        assert_origin(x, "network", "vni", "agent.conf.d/20-b.conf:2");
        assert_int_equal(x->c->network.port, 1000);
        assert_origin(x, "network", "port", "agent.conf.d/10-a.conf:4");
        assert_int_equal(x->c->network.mtu, 1400);
        assert_origin(x, "network", "mtu", "agent.conf:9");
        assert_int_equal(strv_length(x->c->files), 3);
        assert_string_equal(x->c->files[0] + strlen(x->dir) + 1, "agent.conf");
        assert_string_equal(x->c->files[1] + strlen(x->dir) + 1, "agent.conf.d/10-a.conf");
        assert_string_equal(x->c->files[2] + strlen(x->dir) + 1, "agent.conf.d/20-b.conf");
}

static void test_dropins_lexical(void **state) {
        ctx *x = *state;

        /* Lexical, not numeric: "9" sorts after "10" and wins. */
        write_file(x, "agent.conf.d/9-late.conf", "[network]\nvni = 9\n");
        write_file(x, "agent.conf.d/10-early.conf", "[network]\nvni = 10\n");
        write_file(x, "agent.conf.d/a.conf", "[runtime]\nunit = a.service\n");
        write_file(x, "agent.conf.d/B.conf", "[runtime]\nunit = b.service\n");
        expect_ok(x, BASE, NULL);
        assert_int_equal(x->c->network.vni, 9);
        assert_origin(x, "network", "vni", "agent.conf.d/9-late.conf:2");
        /* Byte order: upper case sorts before lower case. */
        assert_string_equal(x->c->runtime.unit, "a.service");
}

static void test_dropins_errors_and_sections(void **state) {
        ctx *x = *state;

        /* A drop-in may supply whole sections, and its errors carry its name. */
        write_file(x, "agent.conf.d/10-role.conf", "[node]\nrole = master\n");
        write_file(x, "agent.conf.d/20-bad.conf", "[network]\n\nvni = -1\n[bogus]\n");
        assert_int_equal(load_text(x, "[etcd]\nendpoints = http://a:1\n", NULL), -EINVAL);
        expect_diags(x,
                     "agent.conf.d/20-bad.conf:3: [network] vni: invalid number \"-1\"",
                     "agent.conf.d/20-bad.conf:4: unknown section [bogus]");

        /* Sections do not carry over from one file to the next. */
        write_file(x, "agent.conf.d/20-bad.conf", "vni = 3\n");
        assert_int_equal(load_text(x, "[etcd]\nendpoints = http://a:1\n[network]\n", NULL), -EINVAL);
        expect_diags(x, "agent.conf.d/20-bad.conf:1: key \"vni\" outside of any section");

        /* A drop-in alone, without the main file, still counts. */
        unlink(x->main);
        write_file(x, "agent.conf.d/20-bad.conf", "[etcd]\nendpoints = http://a:1\n");
        assert_int_equal(load(x, NULL), -EINVAL);
        expect_diags(x, "agent.conf: cannot read: No such file or directory");
}

/* ---- empty values ---- */

static void test_empty_resets(void **state) {
        ctx *x = *state;

        write_file(x, "agent.conf.d/50-reset.conf",
                   "[node]\n"
                   "name =\n"
                   "address =\n"
                   "interface =\n"
                   "[network]\n"
                   "vni =\n"
                   "mtu =\n"
                   "ip-masq =\n"
                   "[role.minion]\n"
                   "units =\n");
        expect_ok(x,
                  BASE
                  "[node]\n"
                  "interface = eth7\n"
                  "address = 10.1.1.1/24\n"
                  "[network]\n"
                  "vni = 5\n"
                  "mtu = 1400\n"
                  "ip-masq = yes\n", NULL);
        /* Back to the default. A key with a default names the line that
         * reset it (so the printout shows which drop-in undid the main file);
         * one without is unset again, and the node name is the host name. */
        assert_non_null(x->c->node.name);
        assert_origin(x, "node", "name", "default");
        assert_string_equal(x->c->node.interface, "eth2");
        assert_origin(x, "node", "interface", "agent.conf.d/50-reset.conf:4");
        assert_false(x->c->node.address.set);
        assert_origin(x, "node", "address", "unset");
        assert_int_equal(x->c->network.vni, 1);
        assert_origin(x, "network", "vni", "agent.conf.d/50-reset.conf:6");
        assert_int_equal(x->c->network.mtu, 0);
        assert_false(x->c->network.ip_masq);
        assert_origin(x, "network", "ip-masq", "agent.conf.d/50-reset.conf:8");
        /* A list becomes empty (there is nothing else to reset it to). */
        assert_int_equal(strv_length(x->c->roles[ROLE_MINION].units), 0);
        assert_origin(x, "role.minion", "units", "agent.conf.d/50-reset.conf:10");

        /* A required key reset to nothing is missing. */
        write_file(x, "agent.conf.d/50-reset.conf", "[node]\nrole =\n");
        assert_int_equal(load(x, NULL), -EINVAL);
        expect_diags(x, "agent.conf: [node] role is required (master or minion)");
}

/* ---- environment ---- */

static void test_env_precedence(void **state) {
        ctx *x = *state;
        char *const env[] = {
                "PATH=/usr/bin",
                "COREKUBE_NETWORK_VNI=7",
                "COREKUBE_NETWORK_SUBNET_LEN=20",
                "COREKUBE_ETCD_CA_FILE=/etc/ck/ca.pem",
                "COREKUBE_ROLE_MASTER_UNITS=a.service b.service",
                "COREKUBE_NODE_ROLE=master",
                "COREKUBE_LOG_LEVEL=debug",
                "corekube_network_port=1",
                NULL,
        };

        write_file(x, "agent.conf.d/10.conf", "[network]\nvni = 6\n");
        expect_ok(x, BASE "[network]\nvni = 5\nport = 4789\n", env);
        assert_int_equal(x->c->network.vni, 7);
        assert_origin(x, "network", "vni", "env COREKUBE_NETWORK_VNI");
        assert_int_equal(x->c->network.subnet_len, 20);
        assert_origin(x, "network", "subnet-len", "env COREKUBE_NETWORK_SUBNET_LEN");
        assert_string_equal(x->c->etcd.ca_file, "/etc/ck/ca.pem");
        assert_origin(x, "etcd", "ca-file", "env COREKUBE_ETCD_CA_FILE");
        assert_string_equal(x->c->roles[ROLE_MASTER].units[1], "b.service");
        assert_origin(x, "role.master", "units", "env COREKUBE_ROLE_MASTER_UNITS");
        assert_int_equal(x->c->node.role, ROLE_MASTER);
        assert_origin(x, "node", "role", "env COREKUBE_NODE_ROLE");
        /* Untouched by the environment: the file. */
        assert_int_equal(x->c->network.port, 4789);
        assert_origin(x, "network", "port", "agent.conf:8");
}

static void test_env_required_and_errors(void **state) {
        ctx *x = *state;
        char *const env_ok[] = { "COREKUBE_NODE_ROLE=minion", "COREKUBE_ETCD_ENDPOINTS=http://a:1,http://b:2", NULL };
        char *const env_bad[] = { "COREKUBE_NETWORK_VNI=0", "COREKUBE_NODE_ADDRESS=10.0.0.0/8", NULL };
        char *const env_unknown[] = { "COREKUBE_BOGUS=1", "COREKUBE_NODE_COLOUR=blue", NULL };
        char *const env_empty[] = { "COREKUBE_NETWORK_VNI=", "COREKUBE_NODE_ROLE=", NULL };

        /* Required keys from the environment alone. */
        expect_ok(x, "", env_ok);
        assert_int_equal(strv_length(x->c->etcd.endpoints), 2);
        assert_origin(x, "etcd", "endpoints", "env COREKUBE_ETCD_ENDPOINTS");

        assert_int_equal(load_text(x, BASE, env_bad), -EINVAL);
        expect_diags(x,
                     "env COREKUBE_NETWORK_VNI: [network] vni: 0 is out of range 1..16777215",
                     "env COREKUBE_NODE_ADDRESS: [node] address: \"10.0.0.0/8\" is not a host address (it is the network address of its network)");

        /* Unknown variables are warnings only: cluster.env shares the namespace. */
        assert_int_equal(load_text(x, BASE, env_unknown), 0);
        assert_non_null(x->c);
        expect_diags(x,
                     "warning: env COREKUBE_BOGUS: unknown variable, ignored",
                     "warning: env COREKUBE_NODE_COLOUR: unknown variable, ignored");

        /* An empty variable resets to the default, over the file. */
        assert_int_equal(load_text(x, BASE "[network]\nvni = 5\n", env_empty), -EINVAL);
        expect_diags(x, "agent.conf: [node] role is required (master or minion)");
}

static void test_env_cross_check_origin(void **state) {
        ctx *x = *state;
        char *const env[] = { "COREKUBE_ETCD_USERNAME=root", "COREKUBE_NETWORK_SUBNET_LEN=8", NULL };

        assert_int_equal(load_text(x, BASE, env), -EINVAL);
        expect_diags(x,
                     "env COREKUBE_NETWORK_SUBNET_LEN: [network] subnet-len 8 must be greater than the prefix length of network 10.244.0.0/15",
                     "env COREKUBE_ETCD_USERNAME: [etcd] username and password-file must be given together");
}

static void test_env_artifacts(void **state) {
        ctx *x = *state;
        const Artifact *a;
        /* The artifact variables come before the role list that names them:
         * role lists are applied first, whatever the order. */
        char *const env[] = {
                "COREKUBE_ARTIFACT_KUBE_PROXY_URL=https://example.invalid/kube-proxy",
                "COREKUBE_ARTIFACT_KUBE_PROXY_SHA256=" HEX64,
                "COREKUBE_ARTIFACT_KUBE_PROXY_PATH=/opt/bin/kube-proxy",
                "COREKUBE_ARTIFACT_KUBELET_URL=http://mirror.invalid/kubelet",
                "COREKUBE_ARTIFACT_KUBELET_MODE=0700",
                "COREKUBE_ROLE_MINION_ARTIFACTS=kubelet kube-proxy",
                NULL,
        };

        expect_ok(x,
                  BASE
                  "[artifact.kubelet]\n"
                  "url = https://example.invalid/kubelet\n"
                  "sha256 = " HEX64 "\n"
                  "path = /opt/bin/kubelet\n", env);
        assert_int_equal(x->c->n_artifacts, 2);
        a = config_artifact(x->c, "kube-proxy");
        assert_non_null(a);
        assert_string_equal(a->url, "https://example.invalid/kube-proxy");
        assert_string_equal(a->path, "/opt/bin/kube-proxy");
        assert_int_equal(a->mode, 0755);
        assert_origin(x, "artifact.kube-proxy", "url", "env COREKUBE_ARTIFACT_KUBE_PROXY_URL");
        assert_origin(x, "artifact.kube-proxy", "mode", "default");
        a = config_artifact(x->c, "kubelet");
        assert_non_null(a);
        assert_string_equal(a->url, "http://mirror.invalid/kubelet");
        assert_origin(x, "artifact.kubelet", "url", "env COREKUBE_ARTIFACT_KUBELET_URL");
        assert_origin(x, "artifact.kubelet", "path", "agent.conf:9");
        assert_int_equal(a->mode, 0700);
        assert_string_equal(x->c->roles[ROLE_MINION].artifacts[1], "kube-proxy");
}

static void test_env_artifact_errors(void **state) {
        ctx *x = *state;
        char *const env_bad[] = { "COREKUBE_ARTIFACT_A_SHA256=xyz", NULL };
        char *const env_partial[] = { "COREKUBE_ARTIFACT_NEW_ONE_URL=http://x/y", NULL };
        char *const env_unknown_key[] = { "COREKUBE_ARTIFACT_A_COLOUR=red", NULL };

        assert_int_equal(load_text(x, BASE_ARTIFACT, env_bad), -EINVAL);
        expect_diags(x, "env COREKUBE_ARTIFACT_A_SHA256: [artifact.a] sha256: invalid sha256 \"xyz\": "
                        "must be 64 hex digits, got 3 characters");

        /* A name no section or role knows is taken as given (lower case,
         * '_' as '-'); the section is then incomplete. */
        assert_int_equal(load_text(x, BASE, env_partial), -EINVAL);
        expect_diags(x,
                     "env COREKUBE_ARTIFACT_NEW_ONE_URL: [artifact.new-one] sha256 is required",
                     "env COREKUBE_ARTIFACT_NEW_ONE_URL: [artifact.new-one] path is required");

        assert_int_equal(load_text(x, BASE_ARTIFACT, env_unknown_key), 0);
        expect_diags(x, "warning: env COREKUBE_ARTIFACT_A_COLOUR: unknown variable, ignored");
}

/* ---- the effective-configuration printout ---- */

static void test_dump(void **state) {
        ctx *x = *state;
        char *const env[] = { "COREKUBE_NETWORK_VNI=7", NULL };
        _cleanup_free_ char *out = NULL, *rel = NULL;
        size_t len = 0, dl = strlen(x->dir);
        FILE *f;

        write_file(x, "agent.conf.d/10-net.conf", "[network]\nmtu = 1400\nvni = 3\n");
        expect_ok(x,
                  "[node]\n"
                  "role = minion\n"
                  "name = minion-1\n"
                  "address = 192.168.3.12/24\n"
                  "[etcd]\n"
                  "endpoints = http://192.168.3.2:2379, http://192.168.3.3:2379\n"
                  "ttl = 90s\n"
                  "[role.minion]\n"
                  "artifacts = kubelet\n"
                  "register-url = http://${MASTER_IP}:8080/api/v1beta1/minions\n"
                  "[artifact.kubelet]\n"
                  "url = https://example.invalid/v0.6.2/kubelet\n"
                  "sha256 = " HEX64 "\n"
                  "path = /opt/bin/kubelet\n", env);

        f = open_memstream(&out, &len);
        assert_non_null(f);
        config_dump(x->c, f);
        assert_int_equal(fclose(f), 0);

        /* Paths relative to the test directory. */
        rel = calloc(1, len + 1);
        assert_non_null(rel);
        for (char *p = out, *o = rel; *p;) {
                if (strncmp(p, x->dir, dl) == 0 && p[dl] == '/') {
                        p += dl + 1;
                        continue;
                }
                *o++ = *p++;
        }
        assert_string_equal(rel,
"# Effective configuration; each value with where it came from.\n"
"# Files read: agent.conf agent.conf.d/10-net.conf\n"
"\n"
"[node]\n"
"role = minion                                    # agent.conf:2\n"
"name = minion-1                                  # agent.conf:3\n"
"interface = eth2                                 # default\n"
"address = 192.168.3.12/24                        # agent.conf:4\n"
"\n"
"[etcd]\n"
"endpoints = http://192.168.3.2:2379,http://192.168.3.3:2379 # agent.conf:6\n"
"prefix = /corekube                               # default\n"
"ttl = 1m30s                                      # agent.conf:7\n"
"#ca-file =                                       # unset\n"
"#cert-file =                                     # unset\n"
"#key-file =                                      # unset\n"
"#username =                                      # unset\n"
"#password-file =                                 # unset\n"
"\n"
"[network]\n"
"prefix = /coreos.com/network                     # default\n"
"network = 10.244.0.0/15                          # default\n"
"subnet-len = 24                                  # default\n"
"vni = 7                                          # env COREKUBE_NETWORK_VNI\n"
"port = 8472                                      # default\n"
"mtu = 1400                                       # agent.conf.d/10-net.conf:2\n"
"subnet-file = /run/flannel/subnet.env            # default\n"
"docker-opts-file = /run/flannel/docker_opts.env  # default\n"
"ip-masq = no                                     # default\n"
"\n"
"[runtime]\n"
"unit = docker.service                            # default\n"
"restart = yes                                    # default\n"
"kind = docker                                    # default\n"
"\n"
"[cni]\n"
"#conf-file =                                     # unset\n"
"\n"
"[role.master]\n"
"units = kube-apiserver.service kube-controller-manager.service kube-scheduler.service # default\n"
"artifacts =                                      # default\n"
"#register-url =                                  # unset\n"
"register-body = {\"kind\":\"Minion\",\"id\":\"${NODE_IP}\",\"hostIP\":\"${NODE_IP}\",\"apiVersion\":\"v1beta1\"} # default\n"
"\n"
"[role.minion]\n"
"units = kubelet.service kube-proxy.service       # default\n"
"artifacts = kubelet                              # agent.conf:9\n"
"register-url = http://${MASTER_IP}:8080/api/v1beta1/minions # agent.conf:10\n"
"register-body = {\"kind\":\"Minion\",\"id\":\"${NODE_IP}\",\"hostIP\":\"${NODE_IP}\",\"apiVersion\":\"v1beta1\"} # default\n"
"\n"
"[artifact.kubelet]\n"
"url = https://example.invalid/v0.6.2/kubelet     # agent.conf:12\n"
"sha256 = " HEX64 " # agent.conf:13\n"
"path = /opt/bin/kubelet                          # agent.conf:14\n"
"mode = 0755                                      # default\n");
}

/* ---- which file ---- */

static void test_missing_explicit_file(void **state) {
        ctx *x = *state;
        char path[PATH_MAX * 2];
        char *const env[] = { "COREKUBE_NODE_ROLE=minion", "COREKUBE_ETCD_ENDPOINTS=http://a:1", NULL };

        /* -c FILE that does not exist is an error even when the environment
         * supplies everything. */
        snprintf(path, sizeof path, "%s/nope.conf", x->dir);
        assert_int_equal(load_path(x, path, env), -EINVAL);
        assert_null(x->c);
        expect_diags(x, "nope.conf: cannot read: No such file or directory");

        assert_int_equal(load_path(x, path, NULL), -EINVAL);
        expect_diags(x,
                     "nope.conf: cannot read: No such file or directory",
                     "nope.conf (not found): [node] role is required (master or minion)",
                     "nope.conf (not found): [etcd] endpoints is required (e.g. http://192.168.3.2:2379)");

        /* A directory is not a configuration file. */
        assert_int_equal(load_path(x, x->dir, env), -EINVAL);
        assert_int_equal(x->n_diags, 1);
        assert_non_null(strstr(x->diags[0], ": cannot read: Is a directory"));
}

static void test_missing_default_file(void **state) {
        ctx *x = *state;
        char *const env[] = { "COREKUBE_NODE_ROLE=minion", "COREKUBE_ETCD_ENDPOINTS=http://a:1", NULL };
        ConfigLoadOptions o = { .path = NULL, .environ = env, .diag = capture, .userdata = x };

        /* Only meaningful where the default file and its drop-ins are absent. */
        if (access(CONFIG_DEFAULT_PATH, F_OK) == 0 || access(CONFIG_DEFAULT_PATH ".d", F_OK) == 0)
                skip();
        assert_int_equal(config_load(&o, &x->c), 0);
        assert_int_equal(x->n_diags, 0);
        assert_string_equal(x->c->main_path, CONFIG_DEFAULT_PATH);
        assert_origin(x, "node", "role", "env COREKUBE_NODE_ROLE");

        /* Without the environment, only the missing keys are reported. */
        config_free(x->c);
        x->c = NULL;
        o.environ = no_env;
        assert_int_equal(config_load(&o, &x->c), -EINVAL);
        expect_diags(x,
                     CONFIG_DEFAULT_PATH " (not found): [node] role is required (master or minion)",
                     CONFIG_DEFAULT_PATH " (not found): [etcd] endpoints is required (e.g. http://192.168.3.2:2379)");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_dropins),
                T(test_dropins_lexical),
                T(test_dropins_errors_and_sections),
                T(test_empty_resets),
                T(test_env_precedence),
                T(test_env_required_and_errors),
                T(test_env_cross_check_origin),
                T(test_env_artifacts),
                T(test_env_artifact_errors),
                T(test_dump),
                T(test_missing_explicit_file),
                T(test_missing_default_file),
        };

        return cmocka_run_group_tests_name("config-sources", tests, group_setup, group_teardown);
}
