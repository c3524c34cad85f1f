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
#define MID_UNIT_STARTED             "932fb70e53c2da8bff6c4692d848c0ff"
#define MID_UNIT_FAILED              "7de28bb782a89f9a5609103753afd500"
#define MID_OVERLAY_UP               "be5a490530fbfe7fa6341dc3b3aec06c"
#define MID_DOCKER_RESTARTED         "af1ff278bec7875d8c6f4475b81fb4ab"
#define MID_READY                    "55bbe08da66a1b049c31d9b0d47824dd"
#define MID_ARTIFACT_INSTALLED       "6713c51212c064e51748b8295f9cd150"
#define MID_NODE_FAILED              "08d4a8c9d3bc5efaf2eb8284afc6c58c"
#define MID_NETWORK_FILES            "f803505a4177f7c652872ec323d4e32a"
#define MID_NODE_LEFT                "a6096691d4964499b1f8c2ef0ab045fc"
#define MID_NODE_WAITING             "a5727ece7f574c9081e740c9868963f5"
#define MID_MASQ_INSTALLED           "530e7922813449eaaae91b7587b8510e"
