/* SPDX-License-Identifier: Apache-2.0 */
#include "vtep-mac.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

void vtep_mac_from_machine_id(const char *machine_id, uint32_t vni, uint8_t ret[static 6]) {
        uint8_t h[EVP_MAX_MD_SIZE];
        unsigned len = sizeof h;
        char buf[64];

        snprintf(buf, sizeof buf, "corekube-vtep:%s:%u", machine_id, vni);
        EVP_Digest(buf, strlen(buf), h, &len, EVP_sha256(), NULL);
        memcpy(ret, h, 6);
        ret[0] = (uint8_t) ((ret[0] & 0xfe) | 0x02);
}
