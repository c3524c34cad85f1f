/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Our VTEP MAC, derived from the machine ID and the VNI: known before
 * flannel.<vni> exists (it goes into the subnet lease), the same after the
 * device is recreated (peers never relearn it), and recognisable by `leave`
 * in our lease even when the interface address is gone. Locally
 * administered, unicast. */

#include <stdint.h>

void vtep_mac_from_machine_id(const char *machine_id, uint32_t vni, uint8_t ret[static 6]);
