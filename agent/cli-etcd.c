/* SPDX-License-Identifier: Apache-2.0 */
#include "cli-etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "etcd-config.h"
#include "log.h"
#include "macro.h"

int cli_etcd_open(const AgentConfig *c, unsigned max_rounds, sd_event **ret_event, EtcdClient **ret_client) {
        sd_event *e = NULL;
        EtcdClient *client = NULL;
        int r;

        r = sd_event_new(&e);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate an event loop: %m");
                return EXIT_RUNTIME;
        }
        r = etcd_client_from_config(c, e, max_rounds, &client);
        if (r < 0) {
                sd_event_unref(e);
                return r == -EKEYREJECTED ? EXIT_CONFIG : EXIT_RUNTIME;
        }
        *ret_event = e;
        *ret_client = client;
        return 0;
}

bool cli_etcd_unreachable(int error) {
        return error == -EHOSTUNREACH || error == -ECONNREFUSED || error == -ETIMEDOUT ||
               error == -ENETUNREACH || error == -ECONNRESET;
}

char *cli_etcd_endpoints(const AgentConfig *c) {
        size_t len = 1;
        char *s;

        for (char **e = c->etcd.endpoints; e && *e; e++)
                len += strlen(*e) + 2;
        s = calloc(1, len);
        for (char **e = c->etcd.endpoints; s && e && *e; e++) {
                if (*s)
                        strcat(s, ", ");
                strcat(s, *e);
        }
        return s;
}
