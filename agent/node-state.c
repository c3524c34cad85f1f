/* SPDX-License-Identifier: Apache-2.0 */
#include "node-state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envfile.h"
#include "etcd-json.h"
#include "ip4-util.h"
#include "log.h"
#include "macro.h"
#include "netsetup.h"

#define SNAPSHOT_FILE "peers.json"
/* Far more than a flannel network holds (a /8 in /24s is 65536). */
#define SNAPSHOT_MAX_BYTES (32u << 20)

const char *node_state_dir(void) {
        static char dir[4096];
        const char *e = getenv("STATE_DIRECTORY");

        if (!e || !*e || *e != '/')
                return NODE_STATE_DIR_DEFAULT;
        snprintf(dir, sizeof dir, "%.*s", (int) strcspn(e, ":"), e);
        return dir;
}

char *node_state_path(const char *name) {
        char *p;

        if (asprintf(&p, "%s/%s", node_state_dir(), name) < 0)
                return NULL;
        return p;
}

static char *cidr(struct in_addr a, unsigned len, char buf[static 32]) {
        char ip[INET_ADDRSTRLEN];

        snprintf(buf, 32, "%s/%u", inet_ntop(AF_INET, &a, ip, sizeof ip), len);
        return buf;
}

int node_snapshot_write(const NodeSnapshot *s) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        _cleanup_free_ char *path = node_state_path(SNAPSHOT_FILE);
        json_object *peers = json_object_new_array();
        char buf[32], ip[INET_ADDRSTRLEN], mac[18];
        const char *text;
        int r;

        if (!o || !peers || !path) {
                json_object_put(peers);
                return log_error_errno(-ENOMEM, "Failed to build the peer snapshot: %m");
        }
        json_object_object_add(o, "network", json_object_new_string(cidr(s->network, s->network_len, buf)));
        json_object_object_add(o, "vni", json_object_new_int64(s->vni));
        json_object_object_add(o, "port", json_object_new_int(s->port));
        json_object_object_add(o, "subnet", json_object_new_string(cidr(s->subnet, s->subnet_len, buf)));
        json_object_object_add(o, "public_ip", json_object_new_string(inet_ntop(AF_INET, &s->public_ip, ip, sizeof ip)));
        json_object_object_add(o, "peers", peers);
        for (size_t i = 0; i < s->n_peers; i++) {
                json_object *p = json_object_new_object();

                if (!p)
                        return log_error_errno(-ENOMEM, "Failed to build the peer snapshot: %m");
                json_object_array_add(peers, p);
                ns_format_mac(s->peers[i].mac, mac);
                json_object_object_add(p, "subnet", json_object_new_string(cidr(s->peers[i].subnet,
                                                                                 s->peers[i].subnet_len, buf)));
                json_object_object_add(p, "public_ip", json_object_new_string(
                                               inet_ntop(AF_INET, &s->peers[i].public_ip, ip, sizeof ip)));
                json_object_object_add(p, "vtep_mac", json_object_new_string(mac));
        }
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (!text)
                return log_error_errno(-ENOMEM, "Failed to build the peer snapshot: %m");
        r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return log_warning_errno(r, "Failed to write %s: %m", path);
        return r;
}

/* The string member `key` of o as a CIDR or an address; NULL on success,
 * or what is wrong. */
static const char *get_cidr(json_object *o, const char *key, struct in_addr *ret, unsigned *ret_len) {
        json_object *v;
        uint32_t a;
        unsigned len = 32;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return "missing or not a string";
        if (ret_len ? ip4_parse_cidr(json_object_get_string(v), false, &a, &len) < 0 :
                      ip4_parse(json_object_get_string(v), &a) < 0)
                return "not a valid address";
        ret->s_addr = htonl(a);
        if (ret_len)
                *ret_len = len;
        return NULL;
}

static const char *get_uint(json_object *o, const char *key, uint64_t max, uint64_t *ret) {
        json_object *v;
        int64_t i;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return "missing or not a number";
        i = json_object_get_int64(v);
        if (i < 0 || (uint64_t) i > max)
                return "out of range";
        *ret = (uint64_t) i;
        return NULL;
}

static int malformed(const char *path, const char *what, const char *why) {
        log_warning("Ignoring %s: %s: %s.", path, what, why);
        return -EINVAL;
}

int node_snapshot_read(NodeSnapshot *ret) {
        _cleanup_free_ char *path = node_state_path(SNAPSHOT_FILE), *text = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        NodeSnapshot s = {};
        json_object *peers;
        const char *why;
        uint64_t u;
        size_t n;

        if (!path)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        text = malloc(SNAPSHOT_MAX_BYTES + 1);
        if (!text)
                return -ENOMEM;
        n = fread(text, 1, SNAPSHOT_MAX_BYTES + 1, f);
        if (ferror(f))
                return log_warning_errno(-EIO, "Failed to read %s: %m", path);
        if (n > SNAPSHOT_MAX_BYTES)
                return malformed(path, "the file", "too large");
        text[n] = 0;
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object))
                return malformed(path, "the file", "not a JSON object");

        if ((why = get_cidr(o, "network", &s.network, &s.network_len)))
                return malformed(path, "network", why);
        if ((why = get_uint(o, "vni", (1u << 24) - 1, &u)) || (u == 0 && (why = "out of range")))
                return malformed(path, "vni", why);
        s.vni = (uint32_t) u;
        if ((why = get_uint(o, "port", 65535, &u)) || (u == 0 && (why = "out of range")))
                return malformed(path, "port", why);
        s.port = (uint16_t) u;
        if ((why = get_cidr(o, "subnet", &s.subnet, &s.subnet_len)))
                return malformed(path, "subnet", why);
        if ((why = get_cidr(o, "public_ip", &s.public_ip, NULL)))
                return malformed(path, "public_ip", why);
        if (!json_object_object_get_ex(o, "peers", &peers) || !json_object_is_type(peers, json_type_array))
                return malformed(path, "peers", "missing or not an array");

        n = json_object_array_length(peers);
        s.peers = calloc(n + 1, sizeof *s.peers);
        if (!s.peers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *p = json_object_array_get_idx(peers, i), *m;
                ns_peer *e = &s.peers[i];
                char what[32];

                snprintf(what, sizeof what, "peers[%zu]", i);
                why = !json_object_is_type(p, json_type_object) ? "not an object" :
                      (get_cidr(p, "subnet", &e->subnet, &e->subnet_len) ?:
                       get_cidr(p, "public_ip", &e->public_ip, NULL));
                if (!why && (!json_object_object_get_ex(p, "vtep_mac", &m) || !json_object_is_type(m, json_type_string) ||
                             ns_parse_mac(json_object_get_string(m), e->mac) < 0 || !mac_is_unicast(e->mac)))
                        why = "vtep_mac is not a unicast MAC";
                if (why) {
                        free(s.peers);
                        return malformed(path, what, why);
                }
        }
        s.n_peers = n;
        *ret = s;
        return 0;
}

void node_snapshot_done(NodeSnapshot *s) {
        free(s->peers);
        *s = (NodeSnapshot) {};
}

int node_state_remove(void) {
        static const char *const names[] = { SNAPSHOT_FILE, "subnet.env", "docker_opts.env" };
        int n = 0;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = node_state_path(names[i]);

                if (!p)
                        return -ENOMEM;
                if (unlink(p) == 0)
                        n++;
                else if (errno != ENOENT)
                        return log_error_errno(-errno, "Failed to remove %s: %m", p);
        }
        return n;
}
