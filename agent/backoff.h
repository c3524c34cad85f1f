/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Capped exponential backoff with jitter: each delay is a random value in
 * [d/2, d] where d doubles from min up to max. The jitter keeps many nodes
 * from retrying in step after a shared outage. */

#include <stdint.h>

typedef struct Backoff {
        uint64_t min_usec;
        uint64_t max_usec;
        uint64_t current_usec;   /* 0: next delay is min */
        unsigned attempts;
} Backoff;

void backoff_init(Backoff *b, uint64_t min_usec, uint64_t max_usec);
/* The delay before the next attempt; advances the state. */
uint64_t backoff_next(Backoff *b);
void backoff_reset(Backoff *b);
/* Random bits from the kernel (random() if it has none yet): jitter, not secrets. */
uint64_t random_u64(void);
