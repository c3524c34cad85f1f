/* SPDX-License-Identifier: Apache-2.0 */
#include "cli-etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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

int cli_etcd_open(const ck_config *c, unsigned max_rounds, sd_event **ret_event, EtcdClient **ret_client) {
        _cleanup_free_ char *password = NULL;
        sd_event *e = NULL;
        EtcdClient *client = NULL;
        EtcdClientOptions o;
        int r;

        if (c->etcd.password_file) {
                r = read_password(c->etcd.password_file, &password);
                if (r < 0) {
                        log_error_errno(r, "Failed to read [etcd] password-file %s: %m", c->etcd.password_file);
                        return EXIT_CONFIG;
                }
        }
        r = sd_event_new(&e);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate an event loop: %m");
                return EXIT_RUNTIME;
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
        r = etcd_client_new(&client, e, &o);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the etcd client: %m");
                sd_event_unref(e);
                return EXIT_RUNTIME;
        }
        *ret_event = e;
        *ret_client = client;
        return 0;
}

bool cli_etcd_unreachable(int error) {
        return error == -EHOSTUNREACH || error == -ECONNREFUSED || error == -ETIMEDOUT ||
               error == -ENETUNREACH || error == -ECONNRESET;
}

char *cli_etcd_endpoints(const ck_config *c) {
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

int cli_read_machine_id(char ret[static 33]) {
        _cleanup_fclose_ FILE *f = fopen("/etc/machine-id", "re");
        char buf[64] = "";

        if (!f)
                return -errno;
        if (!fgets(buf, sizeof buf, f))
                return -EIO;
        buf[strcspn(buf, "\n")] = '\0';
        if (strlen(buf) != 32 || strspn(buf, "0123456789abcdef") != 32)
                return -EINVAL;
        memcpy(ret, buf, 33);
        return 0;
}
