/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "peer-watch.h"

/* Whether `prev` with `d` applied is `p` (both sorted by subnet). */
bool delta_consistent(const SubnetRecord *prev, size_t n_prev, const PeerWatchDelta *d, const SubnetRecord *p,
                      size_t n);
