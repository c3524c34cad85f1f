/* SPDX-License-Identifier: Apache-2.0 */
#include "etcd-config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

static int read_password(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char buf[512] = "";

        if (!f || !fgets(buf, sizeof buf, f))
                return f ? -EIO : -errno;
        buf[strcspn(buf, "\n")] = '\0';
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int etcd_client_from_config(const AgentConfig *c, sd_event *event, unsigned max_rounds, EtcdClient **ret) {
        _cleanup_free_ char *password = NULL;
        EtcdClientOptions o;
        int r;

        if (c->etcd.password_file) {
                r = read_password(c->etcd.password_file, &password);
                if (r < 0) {
                        log_error_errno(r, "Failed to read [etcd] password-file %s: %m", c->etcd.password_file);
                        return -EKEYREJECTED;
                }
        }
        o = (EtcdClientOptions) {
                .endpoints = c->etcd.endpoints,
                .ca_file = c->etcd.ca_file,
                .cert_file = c->etcd.cert_file,
                .key_file = c->etcd.key_file,
                .username = c->etcd.username,
                .password = password,
                .max_rounds = max_rounds,
        };
        r = etcd_client_new(event, &o, ret);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the etcd client: %m");
        return 0;
}
