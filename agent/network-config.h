/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* flannel's network configuration, <network.prefix>/config:
 *   {"Network":"10.244.0.0/15","SubnetLen":24,"SubnetMin":"10.244.1.0",
 *    "SubnetMax":"10.245.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}
 * Read it, or create it from our settings if there is none (atomically: the
 * first node wins and everyone uses its config), and validate it. */

#include <stdbool.h>
#include <stdint.h>

#include "etcd-client.h"

typedef struct NetworkConfig {
        uint32_t network;        /* host order */
        unsigned prefixlen;
        unsigned subnet_len;
        uint32_t subnet_min;     /* first and last subnet leases may use */
        uint32_t subnet_max;
        uint32_t vni;
        uint16_t port;
} NetworkConfig;

/* From the agent's [network] settings, with flannel's defaults for
 * SubnetMin (the second subnet) and SubnetMax (the last one). On error
 * *ret_error names the setting. */
int network_config_new(const char *network, unsigned subnet_len, uint32_t vni, uint16_t port,
                       NetworkConfig *ret, char **ret_error);

/* Parses and validates flannel's JSON. Returns -EINVAL with *ret_error naming
 * the key ("SubnetMin: 10.244.0.5 is not aligned to /24"). */
int network_config_from_json(const char *json, NetworkConfig *ret, char **ret_error);
int network_config_to_json(const NetworkConfig *c, char **ret);

/* subnet/len is one this network hands out: right length, aligned, between
 * SubnetMin and SubnetMax. */
bool network_config_subnet_ok(const NetworkConfig *c, uint32_t subnet, unsigned len);
/* How many subnets lie between SubnetMin and SubnetMax. */
uint32_t network_config_n_subnets(const NetworkConfig *c);

/* The key of <subnet>: "<prefix>/subnets/10.244.5.0-24". */
int network_config_subnet_key(const char *prefix, uint32_t subnet, unsigned len, char **ret);
/* Parses the last part of such a key. */
int network_config_parse_subnet_key(const char *key, const char *prefix, uint32_t *ret_subnet, unsigned *ret_len);

/* error < 0: message says why; created: our config was written. */
typedef void (*network_config_handler_t)(int error, const char *message, const NetworkConfig *config,
                                          bool created, void *userdata);

/* One txn: create <prefix>/config from *wanted if it has no version, else
 * read it. */
int network_config_load(EtcdClient *c, const char *prefix, const NetworkConfig *wanted,
                        network_config_handler_t cb, void *userdata, EtcdRequest **ret);
