/* SPDX-License-Identifier: Apache-2.0 */
#include "masq.h"

#include <errno.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"

/* Flannel's rules, in this order (the first that matches decides; a NAT
 * chain's verdict holds for the whole connection):
 *   pod network -> pod network: never masqueraded, pods see pod addresses;
 *   pod network -> anywhere but multicast: masqueraded, the reply comes back
 *     to the node;
 *   elsewhere -> our own subnet: left alone (the host reaching its pods);
 *   elsewhere -> another node's pods: masqueraded, so the reply comes back
 *     over the overlay to this node's address on it.
 * fully-random: the source port is drawn at random, as flannel does with
 * --random-fully; the kernel's sequential choice races between connections
 * made at once from several pods (the conntrack insert collision). */
char *masq_ruleset(const Cidr *network, const Cidr *subnet) {
        char net[32], sub[32];
        char *s = NULL;

        format_cidr(network, net, sizeof net);
        format_cidr(subnet, sub, sizeof sub);
        /* "table" creates it if missing, so that "delete" always finds one:
         * the three are one transaction, seen whole or not at all. */
        if (asprintf(&s,
                     "table ip " MASQ_TABLE "\n"
                     "delete table ip " MASQ_TABLE "\n"
                     "table ip " MASQ_TABLE " {\n"
                     "\tchain postrouting {\n"
                     "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                     "\t\tip saddr %1$s ip daddr %1$s return\n"
                     "\t\tip saddr %1$s ip daddr != 224.0.0.0/4 masquerade fully-random\n"
                     "\t\tip saddr != %1$s ip daddr %2$s return\n"
                     "\t\tip saddr != %1$s ip daddr %1$s masquerade fully-random\n"
                     "\t}\n"
                     "}\n", net, sub) < 0)
                return NULL;
        return s;
}

static void nft_ctx_freep(struct nft_ctx **c) {
        if (*c)
                nft_ctx_free(*c);
}

/* libnftables exits the process when it cannot open its netlink socket:
 * find out first whether the kernel has nftables at all. */
static int nft_probe(void) {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

/* nft's first error, without where in the script it was nor the script
 * it quotes: "Could not process rule: Operation not permitted". */
static char *nft_error(struct nft_ctx *c) {
        const char *e = nft_ctx_get_error_buffer(c), *nl, *m;

        if (!e || !*e)
                return strdup("nftables failed without saying why");
        nl = strchrnul(e, '\n');
        m = strstr(e, "Error: ");
        if (m && m < nl)
                e = m + strlen("Error: ");
        return strndup(e, (size_t) (nl - e));
}

/* Runs script in one transaction; *ret_output gets what nft printed. */
static int nft_run(const char *script, char **ret_output, char **ret_error) {
        _cleanup_(nft_ctx_freep) struct nft_ctx *c = NULL;
        int r;

        r = nft_probe();
        if (r < 0) {
                *ret_error = strdup("the kernel has no nftables");
                return r;
        }
        c = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!c || nft_ctx_buffer_output(c) < 0 || nft_ctx_buffer_error(c) < 0)
                return -ENOMEM;
        if (nft_run_cmd_from_buffer(c, script) != 0) {
                *ret_error = nft_error(c);
                return -EIO;
        }
        if (ret_output) {
                *ret_output = strdup(nft_ctx_get_output_buffer(c) ?: "");
                if (!*ret_output)
                        return -ENOMEM;
        }
        return 0;
}

#define TABLE_LINE "table ip " MASQ_TABLE

/* 1 if table ip corekube exists, 0 if not (or no nftables), or -errno. */
static int masq_table_exists(char **ret_error) {
        _cleanup_free_ char *out = NULL;
        int r;

        if (nft_probe() < 0)
                return 0;
        r = nft_run("list tables ip", &out, ret_error);
        if (r < 0)
                return r;
        for (char *l = out, *e; l && *l; l = e ? e + 1 : NULL) {
                e = strchr(l, '\n');
                if (e)
                        *e = '\0';
                /* "table ip corekube", perhaps with a comment after it. */
                if (strncmp(l, TABLE_LINE, strlen(TABLE_LINE)) == 0 &&
                    (l[strlen(TABLE_LINE)] == '\0' || l[strlen(TABLE_LINE)] == ' '))
                        return 1;
        }
        return 0;
}

int masq_apply(const Cidr *network, const Cidr *subnet, char **ret_error) {
        _cleanup_free_ char *script = masq_ruleset(network, subnet);
        int exists, r;

        *ret_error = NULL;
        if (!script)
                return -ENOMEM;
        /* Only for the caller's message: the script works either way. */
        exists = masq_table_exists(ret_error);
        if (exists < 0)
                return exists;
        r = nft_run(script, NULL, ret_error);
        if (r < 0)
                return r;
        return !exists;
}

int masq_remove(char **ret_error) {
        int r;

        *ret_error = NULL;
        r = masq_table_exists(ret_error);
        if (r <= 0)
                return r;
        r = nft_run("delete table ip " MASQ_TABLE "\n", NULL, ret_error);
        if (r < 0)
                return r;
        return 1;
}
