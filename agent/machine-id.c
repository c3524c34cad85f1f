/* SPDX-License-Identifier: Apache-2.0 */
#include "machine-id.h"

int machine_id_raw(char ret[static SD_ID128_STRING_MAX]) {
        sd_id128_t id;
        int r;

        r = sd_id128_get_machine(&id);
        if (r < 0)
                return r;
        sd_id128_to_string(id, ret);
        return 0;
}

int machine_id_node(char ret[static SD_ID128_STRING_MAX]) {
        sd_id128_t id;
        int r;

        r = sd_id128_get_machine_app_specific(COREKUBE_APP_ID, &id);
        if (r < 0)
                return r;
        sd_id128_to_string(id, ret);
        return 0;
}
