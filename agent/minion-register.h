/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A minion announces itself to the apiserver (the old v1beta1 API had no
 * self-registration): POST the configured body until it answers 2xx, or 409
 * because the minion is already known. */

#include "curl-event.h"
#include "macro.h"

typedef struct MinionRegister MinionRegister;
typedef void (*minion_register_handler_t)(int error, long status, const char *message, void *userdata);

/* Fills ${MASTER_IP}, ${NODE_IP} and ${NODE_NAME}. */
char *expand_placeholders(const char *text, const char *master_ip, const char *node_ip, const char *node_name);

/* One attempt; message names the URL and what went wrong. */
int minion_register_post(CurlLoop *loop, const char *url, const char *body, minion_register_handler_t cb,
                         void *userdata, MinionRegister **ret);
MinionRegister *minion_register_free(MinionRegister *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MinionRegister *, minion_register_free);
