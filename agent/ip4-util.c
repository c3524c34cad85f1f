/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ip4-util.h"

int ip4_parse(const char *s, uint32_t *ret) {
        struct in_addr a;

        /* inet_pton takes only dotted quads: no "10.1", no octal, no spaces. */
        if (!s || inet_pton(AF_INET, s, &a) != 1)
                return -EINVAL;
        *ret = ntohl(a.s_addr);
        return 0;
}

uint32_t ip4_mask(unsigned len) {
        return len == 0 ? 0 : len >= 32 ? UINT32_MAX : ~(UINT32_MAX >> len);
}

int ip4_parse_cidr(const char *s, bool allow_host_bits, uint32_t *ret_addr, unsigned *ret_len) {
        char buf[IP4_STRLEN];
        const char *slash;
        char *end;
        unsigned long len;
        uint32_t a;

        if (!s)
                return -EINVAL;
        slash = strchr(s, '/');
        if (!slash || (size_t) (slash - s) >= sizeof buf || slash[1] < '0' || slash[1] > '9')
                return -EINVAL;
        memcpy(buf, s, slash - s);
        buf[slash - s] = 0;
        errno = 0;
        len = strtoul(slash + 1, &end, 10);
        if (errno != 0 || *end != 0 || len > 32 || (slash[1] == '0' && slash[2] != 0))
                return -EINVAL;
        if (ip4_parse(buf, &a) < 0)
                return -EINVAL;
        if (!allow_host_bits && (a & ~ip4_mask((unsigned) len)) != 0)
                return -EINVAL;
        *ret_addr = a;
        *ret_len = (unsigned) len;
        return 0;
}

const char *ip4_format(uint32_t a, char buf[static IP4_STRLEN]) {
        snprintf(buf, IP4_STRLEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
        return buf;
}

bool ip4_is_unicast(uint32_t a) {
        uint8_t first = (uint8_t) (a >> 24);

        if (first == 0 || first == 127 || first >= 224)
                return false;
        if ((a & 0xffff0000U) == 0xa9fe0000U)   /* 169.254/16 */
                return false;
        return true;
}

bool mac_is_unicast(const uint8_t mac[static 6]) {
        static const uint8_t zero[6];

        return (mac[0] & 1) == 0 && memcmp(mac, zero, 6) != 0;
}
