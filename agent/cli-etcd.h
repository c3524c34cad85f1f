/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the one-shot commands (status, leave) share: an event loop with an
 * etcd client made from the configuration, and this machine's ID. */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "etcd-client.h"

/* max_rounds: rounds over all endpoints before a request gives up (0: retry
 * forever). Returns 0, or an exit code after saying why on stderr. */
int cli_etcd_open(const AgentConfig *c, unsigned max_rounds, sd_event **ret_event, EtcdClient **ret_client);

/* The errors that mean "etcd could not be reached" (exit 69), as opposed to
 * etcd answering with an error (exit 1). */
bool cli_etcd_unreachable(int error);

/* "http://a:2379, http://b:2379": for messages. */
char *cli_etcd_endpoints(const AgentConfig *c);

