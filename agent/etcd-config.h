/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the daemon and the one-shot commands both take from the node: an
 * etcd client made from [etcd]. */

#include <systemd/sd-event.h>

#include "config.h"
#include "etcd-client.h"

/* max_rounds: rounds over all endpoints before a request gives up (0: retry
 * forever). -EKEYREJECTED (logged) when password-file cannot be read. */
int etcd_client_from_config(const AgentConfig *c, sd_event *event, unsigned max_rounds, EtcdClient **ret);
