/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The CNI network configuration the agent writes for containerd (and any
 * runtime that takes pod networking from CNI): the node's subnet on the
 * bridge cni0, addresses from host-local, then portmap. */

#include "values.h"

#define CNI_NETWORK_NAME "corekube"
#define CNI_BRIDGE "cni0"

/* The conflist's text (with a final newline) for our subnet and the
 * overlay's MTU; plugin_masq: the bridge plugin masquerades (ipMasq), for
 * when the agent does not ([network] ip-masq = no). NULL when out of
 * memory. Pure: the unit test checks it. */
char *cni_conf_build(const Cidr *subnet, unsigned mtu, bool plugin_masq);

/* Writes it to path atomically when its content changed. Returns 1 if it
 * changed, 0 if not, or a negative errno (not logged: the caller decides). */
int cni_conf_write(const char *path, const Cidr *subnet, unsigned mtu, bool plugin_masq);
