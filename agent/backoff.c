/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <sys/random.h>

#include "backoff.h"

void backoff_init(Backoff *b, uint64_t min_usec, uint64_t max_usec) {
        if (min_usec == 0)
                min_usec = 1;
        if (max_usec < min_usec)
                max_usec = min_usec;
        *b = (Backoff) { .min_usec = min_usec, .max_usec = max_usec };
}

void backoff_reset(Backoff *b) {
        b->current_usec = 0;
        b->attempts = 0;
}

uint64_t random_u64(void) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint64_t) random() << 32 ^ (uint64_t) random();
        return v;
}

uint64_t backoff_next(Backoff *b) {
        uint64_t d, half;

        if (b->current_usec == 0)
                b->current_usec = b->min_usec;
        else if (b->current_usec >= b->max_usec / 2)
                b->current_usec = b->max_usec;
        else
                b->current_usec *= 2;
        b->attempts++;

        d = b->current_usec;
        half = d / 2;
        return half + random_u64() % (d - half + 1);
}
