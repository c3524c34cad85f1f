/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* This machine's IDs. machine-id(5) asks that the machine ID not be exposed:
 * what names the node in etcd (the record's key and "id") is the
 * app-specific ID, sd_id128_get_machine_app_specific() with corekube's
 * application ID, an HMAC-SHA256 of it keyed by the machine ID. The raw ID
 * stays on the node: it is the input of the VTEP MAC (vtep-mac.h), and the
 * key of records written before the app-specific ID (registry.h removes
 * ours). */

#include <systemd/sd-id128.h>

/* Generated once with `systemd-id128 new`; never change it: every node's
 * record key is made from it. */
#define COREKUBE_APP_ID SD_ID128_MAKE(2b, 73, a5, 81, 01, 54, 44, 12, 95, e0, f7, 8f, cf, c4, 75, 35)

/* Both as 32 lower-case hex digits. Negative errno when /etc/machine-id is
 * missing, empty or invalid. */
int machine_id_raw(char ret[static SD_ID128_STRING_MAX]);
int machine_id_node(char ret[static SD_ID128_STRING_MAX]);
