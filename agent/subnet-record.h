/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* flannel's subnet lease record, <network.prefix>/subnets/<a.b.c.d>-<len>:
 *   {"PublicIP":"192.168.3.12","BackendType":"vxlan",
 *    "BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}
 * Formatting ours and validating everyone else's, before anything of it can
 * reach the kernel. */

#include <stdint.h>

#include "network-config.h"

typedef struct SubnetRecord {
        uint32_t subnet;         /* host order */
        unsigned len;
        uint32_t public_ip;
        uint8_t vtep_mac[6];
        uint32_t vni;
} SubnetRecord;

int subnet_record_format(uint32_t public_ip, const uint8_t vtep_mac[static 6], uint32_t vni, char **ret);

/* Reads only the PublicIP of a record (for the reuse rule); -EINVAL if the
 * value has none. */
int subnet_record_public_ip(const char *value, uint32_t *ret);

/* Validates key and value against the network config. own_subnet/own_ip: our
 * lease (0 when we have none). Returns 0 and *ret for a good peer, 1 for our
 * own record (not a peer, no warning), -EINVAL with *ret_reason for a record
 * that must be ignored. */
int subnet_record_validate(const char *prefix, const char *key, const char *value,
                           const NetworkConfig *config, uint32_t own_subnet, uint32_t own_ip,
                           SubnetRecord *ret, char **ret_reason);

