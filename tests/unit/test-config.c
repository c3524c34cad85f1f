/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration loader: real files in a temporary directory, an explicit
 * environment, and every diagnostic captured and compared word for word. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config-keys.h"
#include "config.h"
#include "macro.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Five lines that make a valid configuration. */
#define BASE                                    \
        "[node]\n"                              \
        "role = minion\n"                       \
        "name = node-1\n"                       \
        "[etcd]\n"                              \
        "endpoints = http://127.0.0.1:2379\n"

/* BASE plus a complete artifact; its next line is line 10. */
#define BASE_ARTIFACT                           \
        BASE                                    \
        "[artifact.a]\n"                        \
        "url = https://example.invalid/a\n"     \
        "sha256 = " HEX64 "\n"                  \
        "path = /opt/bin/a\n"

static char root[PATH_MAX];

typedef struct ctx {
        char dir[PATH_MAX + 16];
        char main[PATH_MAX + 32];
        char *diags[64];
        size_t n_diags;
        ck_config *c;
} ctx;

static char *const no_env[] = { NULL };

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -errno : 0;
}

static void rm_rf(const char *path) {
        (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int group_setup(void **state) {
        const char *t = getenv("TMPDIR");

        snprintf(root, sizeof root, "%s/test-config-XXXXXX", t && *t ? t : "/tmp");
        return mkdtemp(root) ? 0 : -1;
}

static int group_teardown(void **state) {
        rm_rf(root);
        return 0;
}

static int setup(void **state) {
        static unsigned n = 0;
        ctx *x = calloc(1, sizeof *x);

        if (!x)
                return -1;
        snprintf(x->dir, sizeof x->dir, "%s/%u", root, ++n);
        snprintf(x->main, sizeof x->main, "%s/agent.conf", x->dir);
        if (mkdir(x->dir, 0700) < 0) {
                free(x);
                return -1;
        }
        *state = x;
        return 0;
}

static int teardown(void **state) {
        ctx *x = *state;

        config_free(x->c);
        for (size_t i = 0; i < x->n_diags; i++)
                free(x->diags[i]);
        rm_rf(x->dir);
        free(x);
        return 0;
}

/* Diagnostics name files by their full path; keep them relative to the
 * test's directory so expected texts are short. Warnings get a prefix. */
static void capture(int level, const char *msg, void *userdata) {
        ctx *x = userdata;
        char buf[2048] = "", *o = buf;
        size_t dl = strlen(x->dir);

        if (level > LOG_ERR)
                o = stpcpy(o, "warning: ");
        for (const char *p = msg; *p && o < buf + sizeof buf - 1;) {
                if (strncmp(p, x->dir, dl) == 0 && p[dl] == '/') {
                        p += dl + 1;
                        continue;
                }
                *o++ = *p++;
        }
        *o = '\0';
        assert_true(x->n_diags < ELEMENTSOF(x->diags));
        x->diags[x->n_diags++] = strdup(buf);
}

static void write_file(ctx *x, const char *rel, const char *text) {
        char path[PATH_MAX * 2];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", x->dir, rel);
        if (strchr(rel, '/')) {
                char d[PATH_MAX * 2];
                snprintf(d, sizeof d, "%s", path);
                *strrchr(d, '/') = '\0';
                assert_true(mkdir(d, 0700) == 0 || errno == EEXIST);
        }
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static int load_path(ctx *x, const char *path, char *const *env) {
        ck_load_options o = {
                .path = path,
                .environ = env ? env : no_env,
                .diag = capture,
                .userdata = x,
        };

        for (size_t i = 0; i < x->n_diags; i++)
                free(x->diags[i]);
        x->n_diags = 0;
        config_free(x->c);
        x->c = NULL;
        return config_load(&o, &x->c);
}

static int load(ctx *x, char *const *env) {
        return load_path(x, x->main, env);
}

static int load_text(ctx *x, const char *text, char *const *env) {
        write_file(x, "agent.conf", text);
        return load(x, env);
}

static void print_diags(const ctx *x) {
        print_message("diagnostics (%zu):\n", x->n_diags);
        for (size_t i = 0; i < x->n_diags; i++)
                print_message("  %s\n", x->diags[i]);
}

/* The captured diagnostics must be exactly these, in this order. */
#define expect_diags(x, ...) expect_diags_internal((x), (const char *const[]) { __VA_ARGS__, NULL })
static void expect_diags_internal(const ctx *x, const char *const *want) {
        size_t n = 0;

        while (want[n])
                n++;
        if (n != x->n_diags)
                print_diags(x);
        assert_int_equal(x->n_diags, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(x->diags[i], want[i]);
}

/* Loads text and expects failure with exactly one diagnostic. */
#define expect_one_error(x, text, env, msg)                             \
        do {                                                            \
                assert_int_equal(load_text((x), (text), (env)), -EINVAL); \
                assert_null((x)->c);                                    \
                expect_diags((x), (msg));                               \
        } while (0)

static void expect_ok(ctx *x, const char *text, char *const *env) {
        int r = load_text(x, text, env);

        if (r != 0)
                print_diags(x);
        assert_int_equal(r, 0);
        assert_non_null(x->c);
        assert_int_equal(x->n_diags, 0);
}

static const ck_section_def *section(const char *name) {
        for (size_t i = 0; i < ck_n_sections; i++)
                if (streq(ck_sections[i].name, name))
                        return &ck_sections[i];
        return strncmp(name, "artifact.", 9) == 0 ? &ck_artifact_section : NULL;
}

static void *section_base(const ck_config *c, const char *name) {
        const ck_section_def *s = section(name);

        assert_non_null(s);
        if (s == &ck_artifact_section) {
                const ck_artifact *a = config_artifact(c, name + 9);
                assert_non_null(a);
                return (void *) a;
        }
        return config_section_base(c, s);
}

static size_t key_index(const char *sect, const char *key) {
        const ck_section_def *s = section(sect);

        for (size_t i = 0; i < s->n_keys; i++)
                if (streq(s->keys[i].name, key))
                        return i;
        fail_msg("no key %s in [%s]", key, sect);
        return 0;
}

/* A key's value as the printout would show it. */
static char *value_of(const ck_config *c, const char *sect, const char *key) {
        const ck_section_def *s = section(sect);
        const ck_key_def *k = &s->keys[key_index(sect, key)];

        return config_value_format(k->type, (uint8_t *) section_base(c, sect) + k->offset);
}

static void assert_value(const ck_config *c, const char *sect, const char *key, const char *want) {
        _cleanup_free_ char *v = value_of(c, sect, key);

        assert_non_null(v);
        assert_string_equal(v, want);
}

/* Where a key's value came from, as the printout would show it (relative). */
static void assert_origin(const ctx *x, const char *sect, const char *key, const char *want) {
        const ck_section_def *s = section(sect);
        const ck_origin *o = config_section_origins(section_base(x->c, sect), s) + key_index(sect, key);
        char buf[PATH_MAX * 2];
        const char *str = origin_to_string(o, buf, sizeof buf);
        size_t dl = strlen(x->dir);

        if (strncmp(str, x->dir, dl) == 0)
                str += dl + 1;
        assert_string_equal(str, want);
}

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
        { "docker", "unit", "containerd.service", "containerd.service" },
        { "docker", "restart", "no", "no" },
        { "docker", "restart", "TRUE", "yes" },
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
        { "docker", "unit", "docker",
          "[docker] unit: invalid unit name \"docker\": needs a unit type suffix such as .service" },
        { "docker", "unit", "a@b@c.service", "[docker] unit: invalid unit name \"a@b@c.service\": misplaced '@'" },
        { "docker", "restart", "sometimes", "[docker] restart: invalid boolean \"sometimes\" (use yes or no)" },
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
        const ck_config *c;
        const ck_artifact *a;

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
                  "[docker]\n"
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
        assert_string_equal(c->docker.unit, "docker.service");
        assert_false(c->docker.restart);
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
        const ck_config *c;
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
        assert_true(c->docker.restart);
        assert_ptr_equal(config_role(c), &c->roles[ROLE_MINION]);
        assert_int_equal(strv_length(c->roles[ROLE_MINION].artifacts), 0);
        assert_string_equal(c->roles[ROLE_MINION].register_body,
                            "{\"kind\":\"Minion\",\"id\":\"${NODE_IP}\",\"hostIP\":\"${NODE_IP}\",\"apiVersion\":\"v1beta1\"}");
        assert_int_equal(c->n_artifacts, 0);
}

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
        expect_one_error(x, BASE "[docker]\nmtu = 1400\n", NULL,
                         "agent.conf:7: unknown key \"mtu\" in [docker] (it belongs in [network])");
        /* Nothing close. */
        expect_one_error(x, BASE "[node]\nx = 1\n", NULL, "agent.conf:7: unknown key \"x\" in [node]");
        expect_one_error(x, BASE "[docker]\ncolour = blue\n", NULL, "agent.conf:7: unknown key \"colour\" in [docker]");

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
        write_file(x, "agent.conf.d/a.conf", "[docker]\nunit = a.service\n");
        write_file(x, "agent.conf.d/B.conf", "[docker]\nunit = b.service\n");
        expect_ok(x, BASE, NULL);
        assert_int_equal(x->c->network.vni, 9);
        assert_origin(x, "network", "vni", "agent.conf.d/9-late.conf:2");
        /* Byte order: upper case sorts before lower case. */
        assert_string_equal(x->c->docker.unit, "a.service");
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
        const ck_artifact *a;
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
"[docker]\n"
"unit = docker.service                            # default\n"
"restart = yes                                    # default\n"
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
        ck_load_options o = { .path = NULL, .environ = env, .diag = capture, .userdata = x };

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

static void test_env_name(void **state) {
        _cleanup_free_ char *a = config_env_name("role.master", "register-url");
        _cleanup_free_ char *b = config_env_name("network", "subnet-len");

        assert_string_equal(a, "COREKUBE_ROLE_MASTER_REGISTER_URL");
        assert_string_equal(b, "COREKUBE_NETWORK_SUBNET_LEN");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_keys_valid),
                T(test_keys_invalid),
                T(test_invalid_artifact_not_also_missing),
                T(test_typed_values),
                T(test_defaults),
                T(test_cross_required),
                T(test_cross_subnet_len),
                T(test_cross_pairs),
                T(test_cross_artifacts),
                T(test_cross_address),
                T(test_all_problems_reported),
                T(test_unknown),
                T(test_syntax),
                T(test_syntax_mtu_comment),
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
                T(test_env_name),
        };

        return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
