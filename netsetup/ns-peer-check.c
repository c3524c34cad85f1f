/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of one peer against the overlay configuration. The checks are
 * plain arithmetic; text is formatted only for a peer that fails one, since
 * every peer of every reconcile passes through here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ns-internal.h"

typedef enum peer_problem {
        PEER_OK,
        PEER_BAD_LENGTH,
        PEER_HOST_BITS,
        PEER_OUTSIDE,
        PEER_OURS,
        PEER_NOT_UNICAST,
        PEER_MAC_ZERO,
        PEER_MAC_MULTICAST,
} peer_problem;

static peer_problem peer_problem_of(const ns_overlay_config *cfg, const ns_peer *peer) {
        static const uint8_t zero[6] = {};
        uint32_t ip = ntohl(peer->public_ip.s_addr);

        if (peer->subnet_len != cfg->subnet_len)
                return PEER_BAD_LENGTH;
        if ((peer->subnet.s_addr & ~ns_prefix_mask(peer->subnet_len)) != 0)
                return PEER_HOST_BITS;
        if (!ns_in_prefix(peer->subnet, cfg->network, cfg->network_len))
                return PEER_OUTSIDE;
        if (peer->subnet.s_addr == cfg->subnet.s_addr)
                return PEER_OURS;
        if ((ip >> 24) == 0 || (ip >> 24) == 127 || (ip >> 28) == 0xe || (ip >> 28) == 0xf)
                return PEER_NOT_UNICAST;
        if (memcmp(peer->mac, zero, 6) == 0)
                return PEER_MAC_ZERO;
        if (peer->mac[0] & 1)
                return PEER_MAC_MULTICAST;
        return PEER_OK;
}

int ns_peer_check(const ns_overlay_config *cfg, const ns_peer *peer, char *err, size_t errlen) {
        char s[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN], m[18];
        peer_problem p = peer_problem_of(cfg, peer);

        if (p == PEER_OK)
                return 0;
        if (!err || errlen == 0)
                return -EINVAL;

        inet_ntop(AF_INET, &peer->subnet, s, sizeof(s));
        switch (p) {
        case PEER_BAD_LENGTH:
                snprintf(err, errlen, "subnet %s/%u: length is not the configured /%u", s, peer->subnet_len,
                         cfg->subnet_len);
                break;
        case PEER_HOST_BITS:
                snprintf(err, errlen, "subnet %s/%u: host bits set", s, peer->subnet_len);
                break;
        case PEER_OUTSIDE:
                inet_ntop(AF_INET, &cfg->network, n, sizeof(n));
                snprintf(err, errlen, "subnet %s/%u: outside the overlay network %s/%u", s, peer->subnet_len, n,
                         cfg->network_len);
                break;
        case PEER_OURS:
                snprintf(err, errlen, "subnet %s/%u: that is our own subnet", s, peer->subnet_len);
                break;
        case PEER_NOT_UNICAST:
                inet_ntop(AF_INET, &peer->public_ip, n, sizeof(n));
                snprintf(err, errlen, "subnet %s/%u: public IP %s is not a unicast address", s, peer->subnet_len, n);
                break;
        case PEER_MAC_ZERO:
                snprintf(err, errlen, "subnet %s/%u: VTEP MAC is zero", s, peer->subnet_len);
                break;
        case PEER_MAC_MULTICAST:
                ns_format_mac(peer->mac, m);
                snprintf(err, errlen, "subnet %s/%u: VTEP MAC %s is a multicast address", s, peer->subnet_len, m);
                break;
        case PEER_OK:
                break;
        }
        return -EINVAL;
}
