/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* [network] ip-masq: flannel's outbound masquerading, as an nftables table
 * of our own (table ip corekube) programmed through libnftables. Traffic from
 * the overlay to the world leaves with the node's address; traffic within
 * the overlay keeps its pod addresses. Knows nftables, nothing of etcd or
 * the daemon. */

#include "values.h"

#define MASQ_TABLE "corekube"

/* The whole transaction that creates or replaces the table for the overlay
 * `network` and this node's `subnet`, as nft script text (newly allocated;
 * NULL when out of memory). A pure function: the unit tests check it. */
char *masq_ruleset(const Cidr *network, const Cidr *subnet);

/* Installs the table, or replaces it in one transaction (there is no moment
 * without the rules). 1: installed, 0: replaced an existing one, or a
 * negative errno with *ret_error (newly allocated, may stay NULL) saying
 * what nftables said. */
int masq_apply(const Cidr *network, const Cidr *subnet, char **ret_error);

/* Removes the table. 1: removed, 0: there was none (also when the kernel has
 * no nftables at all), or a negative errno with *ret_error as above. */
int masq_remove(char **ret_error);
