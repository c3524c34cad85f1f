/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* MESSAGE_ID of each milestone the agent logs to the journal. Never change
 * a published one: journalctl MESSAGE_ID=… queries depend on them. */

#define MID_REGISTERED              "b8cf6553c38a4cc09e7029404bc5ccd2"
#define MID_REGISTRATION_LOST       "bc6e1445b96c4d9982cc110922ebfbe8"
#define MID_LEASE_ACQUIRED          "2a155d7a46de4e18884ea39c2571bd13"
#define MID_LEASE_LOST              "5737b02fe78747c3a4ca38644734f765"
#define MID_NETWORK_CONFIG_CREATED  "c1e4d7d085d44dd485a625c4f7cf7131"
#define MID_PEER_REJECTED           "5ce862eb66364ecd8758301c0cb97046"
#define MID_ETCD_UNREACHABLE        "cfae284c65dd4dd283c40cffaa08872e"
#define MID_SUBNET_CHANGED          "2c080cf2c3b0436baf74df36288ddbc9"
