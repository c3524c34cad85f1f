/* SPDX-License-Identifier: Apache-2.0 */
#include "node-files.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni-conf.h"
#include "log.h"
#include "macro.h"
#include "node-state.h"

/* FLANNEL_SUBNET is the subnet's first host address with the subnet's
 * prefix, as flanneld writes it: docker0 takes that address. */
static char *first_host(const Cidr *c, char *buf, size_t len) {
        Cidr h = { .addr.s_addr = htonl(ntohl(c->addr.s_addr) + 1), .prefixlen = c->prefixlen };

        return format_cidr(&h, buf, len);
}

int node_subnet_env(const NodeNet *n, EnvFile *e) {
        char net[32], sub[32], mtu[16];

        snprintf(mtu, sizeof mtu, "%u", n->mtu);
        envfile_add(e, "FLANNEL_NETWORK", format_cidr(&n->network, net, sizeof net));
        envfile_add(e, "FLANNEL_SUBNET", first_host(&n->subnet, sub, sizeof sub));
        envfile_add(e, "FLANNEL_MTU", mtu);
        envfile_add(e, "FLANNEL_IPMASQ", n->ip_masq ? "true" : "false");
        return e->error;
}

int node_docker_opts_env(const NodeNet *n, EnvFile *e) {
        char sub[32], bip[64], mtu[32], masq[32], all[160];

        /* When flannel masquerades, Docker must not as well (and vice versa). */
        snprintf(bip, sizeof bip, "--bip=%s", first_host(&n->subnet, sub, sizeof sub));
        snprintf(mtu, sizeof mtu, "--mtu=%u", n->mtu);
        snprintf(masq, sizeof masq, "--ip-masq=%s", n->ip_masq ? "false" : "true");
        snprintf(all, sizeof all, "%s %s %s", bip, masq, mtu);
        envfile_add_quoted(e, "DOCKER_OPT_BIP", bip);
        envfile_add_quoted(e, "DOCKER_OPT_IPMASQ", masq);
        envfile_add_quoted(e, "DOCKER_OPT_MTU", mtu);
        envfile_add_quoted(e, "DOCKER_OPTS", all);
        return e->error;
}

int node_cluster_env(const NodeCluster *n, EnvFile *e) {
        char ip[INET_ADDRSTRLEN], mip[INET_ADDRSTRLEN], host[32];
        _cleanup_free_ char *eps = NULL, *mips = NULL;
        size_t len = 0;

        for (char *const *p = n->etcd_endpoints; p && *p; p++)
                len += strlen(*p) + 1;
        eps = calloc(1, len + 1);
        for (char *const *p = n->etcd_endpoints; eps && p && *p; p++) {
                if (p != n->etcd_endpoints)
                        strcat(eps, ",");
                strcat(eps, *p);
        }
        len = 0;
        for (char **p = n->master_ips; p && *p; p++)
                len += strlen(*p) + 1;
        mips = calloc(1, len + 1);
        for (char **p = n->master_ips; mips && p && *p; p++) {
                if (p != n->master_ips)
                        strcat(mips, " ");
                strcat(mips, *p);
        }
        if (!eps || !mips)
                return -ENOMEM;

        envfile_add(e, "COREKUBE_ROLE", role_to_string(n->role));
        envfile_add(e, "COREKUBE_NODE_NAME", n->name);
        envfile_add(e, "COREKUBE_NODE_IP", inet_ntop(AF_INET, &n->ip, ip, sizeof ip));
        envfile_add(e, "COREKUBE_MASTER_IP", inet_ntop(AF_INET, &n->master_ip, mip, sizeof mip));
        envfile_add_quoted(e, "COREKUBE_MASTER_IPS", mips);
        envfile_add(e, "COREKUBE_ETCD_ENDPOINTS", eps);
        envfile_add(e, "FLANNEL_SUBNET", first_host(&n->subnet, host, sizeof host));
        return e->error;
}

/* The persisted copy: Docker's drop-in reads it, so a change of it is what
 * makes Docker's running options stale. Returns 1 if it changed, 0 if not,
 * or a negative errno (logged: the node still works from /run, only a reboot
 * would start Docker on old options). */
static int write_persisted(const char *name, const EnvFile *e) {
        _cleanup_free_ char *p = node_state_path(name);
        int r;

        if (!p)
                return -ENOMEM;
        r = write_file_atomic(p, e->text, e->len, 0644);
        if (r < 0)
                log_warning_errno(r, "Failed to write %s: %m", p);
        return r;
}

/* With containerd: subnet.env (for whoever reads it, and our next start)
 * and the CNI file; no docker_opts.env, which nothing would read. */
static int write_containerd_files(const AgentConfig *c, const NodeNet *n) {
        EnvFile s = {};
        int r, changed = 0;

        r = node_subnet_env(n, &s);
        if (r < 0) {
                log_error_errno(r, "Failed to build the flannel environment file: %m");
                goto done;
        }
        r = write_file_atomic(c->network.subnet_file, s.text, s.len, 0644);
        if (r < 0) {
                log_error_errno(r, "Failed to write %s: %m", c->network.subnet_file);
                goto done;
        }
        changed |= r;
        r = cni_conf_write(c->cni.conf_file, &n->subnet, n->mtu, !c->network.ip_masq);
        if (r < 0) {
                log_error_errno(r, "Failed to write %s: %m", c->cni.conf_file);
                goto done;
        }
        changed |= r;
        (void) write_persisted("subnet.env", &s);
        r = changed;
done:
        envfile_done(&s);
        return r;
}

int node_write_network_files(const AgentConfig *c, const NodeNet *n) {
        _cleanup_free_ char *kept = node_state_path("docker_opts.env");
        EnvFile s = {}, d = {};
        int r, run_changed = 0, k;
        bool had_kept;

        if (c->runtime.kind == RUNTIME_CONTAINERD)
                return write_containerd_files(c, n);
        if (!kept)
                return -ENOMEM;
        had_kept = access(kept, F_OK) >= 0;
        r = node_subnet_env(n, &s);
        if (r >= 0)
                r = node_docker_opts_env(n, &d);
        if (r < 0) {
                log_error_errno(r, "Failed to build the flannel environment files: %m");
                goto done;
        }
        r = write_file_atomic(c->network.subnet_file, s.text, s.len, 0644);
        if (r < 0) {
                log_error_errno(r, "Failed to write %s: %m", c->network.subnet_file);
                goto done;
        }
        run_changed |= r;
        r = write_file_atomic(c->network.docker_opts_file, d.text, d.len, 0644);
        if (r < 0) {
                log_error_errno(r, "Failed to write %s: %m", c->network.docker_opts_file);
                goto done;
        }
        run_changed |= r;
        k = write_persisted("subnet.env", &s);
        if (k >= 0)
                k = write_persisted("docker_opts.env", &d);
        /* After a reboot /run is new but Docker started from the persisted
         * copy: that one tells whether Docker runs on old options. Where
         * there was none yet (first boot, an upgrade from a version without
         * it), /run tells. */
        r = k >= 0 && had_kept ? k : run_changed;
done:
        envfile_done(&s);
        envfile_done(&d);
        return r;
}

int node_docker_opts_mtime(const AgentConfig *c, uint64_t *ret_usec) {
        _cleanup_free_ char *kept = node_state_path("docker_opts.env");
        const char *files[] = { c->network.docker_opts_file, kept };
        uint64_t best = UINT64_MAX;
        struct stat st;

        if (!kept)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (stat(files[i], &st) >= 0) {
                        uint64_t t = (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC +
                                     (uint64_t) st.st_mtim.tv_nsec / 1000;
                        if (t < best)
                                best = t;
                }
        if (best == UINT64_MAX)
                return -ENOENT;
        *ret_usec = best;
        return 0;
}
