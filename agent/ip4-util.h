/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* IPv4 and MAC text forms, strict. Addresses are uint32_t in host order so
 * subnet arithmetic stays plain. */

#include <stdbool.h>
#include <stdint.h>

#define IP4_STRLEN 16
#define MAC_STRLEN 18

int ip4_parse(const char *s, uint32_t *ret);
/* "a.b.c.d/n"; host bits must be zero unless allow_host_bits. */
int ip4_parse_cidr(const char *s, bool allow_host_bits, uint32_t *ret_addr, unsigned *ret_len);
const char *ip4_format(uint32_t a, char buf[static IP4_STRLEN]);
uint32_t ip4_mask(unsigned len);
/* Not 0/8, loopback, link-local, multicast, broadcast or reserved 240/4. */
bool ip4_is_unicast(uint32_t a);

/* MAC text: ns_parse_mac() and ns_format_mac() (netsetup.h). */
/* Not multicast/broadcast (low bit of the first octet) and not all zero. */
bool mac_is_unicast(const uint8_t mac[static 6]);
