/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* `corekube-agent run`: the node's bring-up as a state machine on one
 * sd-event loop (etcd over curl multi, netlink, D-Bus, timers, watchdog). */

#include "config.h"

/* Returns an exit code (0 on SIGTERM after a clean stop). */
int daemon_run(const AgentConfig *c);
