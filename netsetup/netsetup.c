/* SPDX-License-Identifier: Apache-2.0 */
#include "netsetup.h"

#include <stdio.h>

static ns_log_func_t log_func;

void ns_set_log_func(ns_log_func_t f) {
        log_func = f;
}
