/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Parsers for the typed values of the configuration. Each returns 0 or a
 * negative errno and, on error, a short reason in err (what is wrong, not
 * where: the caller knows the file and line). */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef uint64_t usec_t;

typedef struct Cidr {
        struct in_addr addr;            /* network byte order */
        unsigned prefixlen;
} Cidr;

#define CK_ERRLEN 256

int parse_duration(const char *s, char *err, usec_t *ret);
int parse_bool(const char *s, char *err, bool *ret);
int parse_ipv4(const char *s, char *err, struct in_addr *ret);
/* "a.b.c.d/len"; when network is true the host bits must be zero. */
int parse_cidr(const char *s, bool network, char *err, Cidr *ret);
/* http:// or https:// with a host; no spaces. */
int parse_url(const char *s, char *err);
int parse_ifname(const char *s, char *err);
int parse_unit_name(const char *s, char *err);
int parse_hostname(const char *s, char *err);
int parse_sha256(const char *s, char *err, uint8_t ret[32]);
int parse_mode(const char *s, char *err, mode_t *ret);
int parse_uint_range(const char *s, uint64_t min, uint64_t max, char *err, uint64_t *ret);
/* An etcd key prefix: absolute, no trailing slash, no empty or dot components. */
int parse_key_prefix(const char *s, char *err);
int parse_abs_path(const char *s, char *err);

/* Splits on any of seps, dropping empty words. Returns the count or -ENOMEM. */
int split_words(const char *s, const char *seps, char ***ret);
char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
size_t strv_length(char *const *l);

/* Formatting for the effective-config printout. */
char *format_duration(usec_t u, char *buf, size_t len);
char *format_cidr(const Cidr *c, char *buf, size_t len);
char *format_sha256(const uint8_t h[32], char *buf /* >= 65 */);

bool cidr_contains(const Cidr *outer, const Cidr *inner);
uint32_t cidr_mask(unsigned prefixlen);     /* host byte order */

unsigned levenshtein(const char *a, const char *b);
