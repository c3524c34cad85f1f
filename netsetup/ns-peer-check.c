/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of one peer against the overlay configuration. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ns-internal.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) _ns_printf_(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

int ns_peer_check(const ns_overlay_config *cfg, const ns_peer *peer, char *err, size_t errlen) {
        char s[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN], m[18];
        uint32_t ip = ntohl(peer->public_ip.s_addr);

        inet_ntop(AF_INET, &peer->subnet, s, sizeof(s));
        inet_ntop(AF_INET, &cfg->network, n, sizeof(n));

        if (peer->subnet_len != cfg->subnet_len)
                return fail(err, errlen, "subnet %s/%u: length is not the configured /%u", s, peer->subnet_len,
                            cfg->subnet_len);
        if ((peer->subnet.s_addr & ~ns_prefix_mask(peer->subnet_len)) != 0)
                return fail(err, errlen, "subnet %s/%u: host bits set", s, peer->subnet_len);
        if (!ns_in_prefix(peer->subnet, cfg->network, cfg->network_len))
                return fail(err, errlen, "subnet %s/%u: outside the overlay network %s/%u", s, peer->subnet_len, n,
                            cfg->network_len);
        if (peer->subnet.s_addr == cfg->subnet.s_addr)
                return fail(err, errlen, "subnet %s/%u: that is our own subnet", s, peer->subnet_len);

        inet_ntop(AF_INET, &peer->public_ip, n, sizeof(n));
        if ((ip >> 24) == 0 || (ip >> 24) == 127 || (ip >> 28) == 0xe || (ip >> 28) == 0xf)
                return fail(err, errlen, "subnet %s/%u: public IP %s is not a unicast address", s,
                            peer->subnet_len, n);

        ns_format_mac(peer->mac, m);
        static const uint8_t zero[6] = {};
        if (memcmp(peer->mac, zero, 6) == 0)
                return fail(err, errlen, "subnet %s/%u: VTEP MAC is zero", s, peer->subnet_len);
        if (peer->mac[0] & 1)
                return fail(err, errlen, "subnet %s/%u: VTEP MAC %s is a multicast address", s, peer->subnet_len, m);

        return 0;
}
