/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))

static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_close_ _cleanup_(closep)

/* For a type whose func() frees it and returns NULL: funcp() for _cleanup_,
 * so a constructor unwinds by returning. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)         \
        static inline void func##p(type *p) {           \
                if (*p)                                 \
                        *p = func(*p);                  \
        }

static inline void *steal_pointer_internal(void **p) {
        void *t = *p;
        *p = NULL;
        return t;
}
#define TAKE_PTR(p) ((__typeof__(p)) steal_pointer_internal((void **) &(p)))

static inline int take_fd(int *fd) {
        int t = *fd;
        *fd = -1;
        return t;
}
#define TAKE_FD(fd) take_fd(&(fd))

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strempty(s) (!(s) || !*(s))
#define USEC_PER_SEC  1000000ULL
#define USEC_PER_MSEC 1000ULL
