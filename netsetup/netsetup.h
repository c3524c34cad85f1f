/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* netsetup: brings up the private interface and the flannel VXLAN overlay and
 * keeps its peer entries in step, through netlink. Knows nothing of etcd or
 * systemd; errors are negative errno values. */

#include <stdarg.h>

/* The owner decides where messages go; by default they go to stderr. */
typedef void (*ns_log_func_t)(int level, int error, const char *format, va_list ap);
void ns_set_log_func(ns_log_func_t f);
