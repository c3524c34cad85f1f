/* SPDX-License-Identifier: Apache-2.0 */
#include "values.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

__attribute__((format(printf, 2, 3)))
static int fail(char *err, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err, CK_ERRLEN, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

int parse_duration(const char *s, char *err, usec_t *ret) {
        static const struct { const char *suffix; usec_t mult; } units[] = {
                { "ms", USEC_PER_MSEC },
                { "s", USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
        };
        usec_t total = 0;
        const char *p = s;

        if (strempty(s))
                return fail(err, "empty duration");

        /* A sequence of <number><unit>, e.g. "1m30s"; a unit is always required
         * so that "30" cannot silently mean seconds to one reader and ms to another. */
        while (*p) {
                uint64_t n = 0;
                const char *start = p;
                size_t i;

                while (isdigit((unsigned char) *p)) {
                        uint64_t d = (uint64_t) (*p - '0');
                        if (n > (UINT64_MAX - d) / 10)
                                return fail(err, "duration \"%s\" is too large", s);
                        n = n * 10 + d;
                        p++;
                }
                if (p == start)
                        return fail(err, "invalid duration \"%s\" (expected e.g. 500ms, 30s, 5m, 24h)", s);
                for (i = 0; i < ELEMENTSOF(units); i++) {
                        size_t l = strlen(units[i].suffix);
                        if (strncmp(p, units[i].suffix, l) == 0 && !isalpha((unsigned char) p[l]))
                                break;
                }
                if (i >= ELEMENTSOF(units))
                        return fail(err, "invalid duration \"%s\": missing or unknown unit (use ms, s, m or h)", s);
                if (n > (UINT64_MAX - total) / units[i].mult)
                        return fail(err, "duration \"%s\" is too large", s);
                total += n * units[i].mult;
                p += strlen(units[i].suffix);
        }
        *ret = total;
        return 0;
}

int parse_bool(const char *s, char *err, bool *ret) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return fail(err, "invalid boolean \"%s\" (use yes or no)", s);
}

int parse_ipv4(const char *s, char *err, struct in_addr *ret) {
        /* inet_pton rejects the shorthand forms ("10.1", "0x0a.0.0.1") that
         * inet_aton would accept; we want exactly four decimal octets. */
        if (inet_pton(AF_INET, s, ret) != 1)
                return fail(err, "invalid IPv4 address \"%s\"", s);
        return 0;
}

uint32_t cidr_mask(unsigned prefixlen) {
        return prefixlen == 0 ? 0 : UINT32_MAX << (32 - prefixlen);
}

int parse_cidr(const char *s, bool network, char *err, Cidr *ret) {
        char buf[INET_ADDRSTRLEN + 4];
        const char *slash = strchr(s, '/');
        uint64_t len;
        Cidr c;
        int r;

        if (!slash)
                return fail(err, "invalid CIDR \"%s\": missing /prefix-length", s);
        if ((size_t) (slash - s) >= INET_ADDRSTRLEN)
                return fail(err, "invalid CIDR \"%s\"", s);
        memcpy(buf, s, (size_t) (slash - s));
        buf[slash - s] = '\0';
        if (parse_ipv4(buf, NULL, &c.addr) < 0)
                return fail(err, "invalid CIDR \"%s\": bad address \"%s\"", s, buf);
        r = parse_uint_range(slash + 1, 0, 32, NULL, &len);
        if (r < 0)
                return fail(err, "invalid CIDR \"%s\": prefix length must be 0..32", s);
        c.prefixlen = (unsigned) len;
        if (network && (ntohl(c.addr.s_addr) & ~cidr_mask(c.prefixlen)) != 0) {
                struct in_addr n = { htonl(ntohl(c.addr.s_addr) & cidr_mask(c.prefixlen)) };
                char nb[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &n, nb, sizeof nb);
                return fail(err, "\"%s\" has host bits set (did you mean %s/%u?)", s, nb, c.prefixlen);
        }
        *ret = c;
        return 0;
}

bool cidr_contains(const Cidr *outer, const Cidr *inner) {
        uint32_t m = cidr_mask(outer->prefixlen);

        return inner->prefixlen >= outer->prefixlen &&
               (ntohl(inner->addr.s_addr) & m) == (ntohl(outer->addr.s_addr) & m);
}

int parse_url(const char *s, char *err) {
        const char *host;

        if (strncmp(s, "http://", 7) == 0)
                host = s + 7;
        else if (strncmp(s, "https://", 8) == 0)
                host = s + 8;
        else
                return fail(err, "invalid URL \"%s\": only http:// and https:// are supported", s);
        if (*host == '\0' || *host == '/' || *host == ':')
                return fail(err, "invalid URL \"%s\": missing host", s);
        for (const char *p = s; *p; p++)
                if (isspace((unsigned char) *p) || iscntrl((unsigned char) *p))
                        return fail(err, "invalid URL \"%s\": contains whitespace or control characters", s);
        return 0;
}

int parse_ifname(const char *s, char *err) {
        /* The kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no '/',
         * ':' or whitespace. */
        size_t l = strlen(s);

        if (l == 0 || l >= IFNAMSIZ)
                return fail(err, "invalid interface name \"%s\": must be 1..%d characters", s, IFNAMSIZ - 1);
        if (streq(s, ".") || streq(s, ".."))
                return fail(err, "invalid interface name \"%s\"", s);
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || isspace((unsigned char) *p) || !isprint((unsigned char) *p))
                        return fail(err, "invalid interface name \"%s\": '/', ':' and whitespace are not allowed", s);
        return 0;
}

int parse_unit_name(const char *s, char *err) {
        static const char *const suffixes[] = {
                ".service", ".socket", ".target", ".device", ".mount", ".automount",
                ".swap", ".timer", ".path", ".slice", ".scope",
        };
        const char *dot = strrchr(s, '.');
        const char *at;
        size_t l = strlen(s);
        bool ok = false;

        if (l == 0 || l > 255)
                return fail(err, "invalid unit name \"%s\": must be 1..255 characters", s);
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr(":-_.\\@", *p))
                        return fail(err, "invalid unit name \"%s\": character '%c' is not allowed", s, *p);
        for (size_t i = 0; dot && i < ELEMENTSOF(suffixes); i++)
                ok = ok || streq(dot, suffixes[i]);
        if (!ok)
                return fail(err, "invalid unit name \"%s\": needs a unit type suffix such as .service", s);
        if (dot == s)
                return fail(err, "invalid unit name \"%s\": empty name before the suffix", s);
        at = strchr(s, '@');
        if (at && (at == s || strchr(at + 1, '@')))
                return fail(err, "invalid unit name \"%s\": misplaced '@'", s);
        return 0;
}

int parse_hostname(const char *s, char *err) {
        size_t l = strlen(s);

        if (l == 0 || l > 64)
                return fail(err, "invalid node name \"%s\": must be 1..64 characters", s);
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-_.", *p))
                        return fail(err, "invalid node name \"%s\": use letters, digits, '-', '_' and '.'", s);
        if (s[0] == '-' || s[0] == '.')
                return fail(err, "invalid node name \"%s\": must start with a letter or digit", s);
        return 0;
}

int parse_sha256(const char *s, char *err, uint8_t ret[32]) {
        if (strlen(s) != 64)
                return fail(err, "invalid sha256 \"%s\": must be 64 hex digits, got %zu characters", s, strlen(s));
        for (size_t i = 0; i < 32; i++) {
                int v = 0;
                for (size_t j = 0; j < 2; j++) {
                        char c = (char) tolower((unsigned char) s[2 * i + j]);
                        if (c >= '0' && c <= '9')
                                v = v * 16 + (c - '0');
                        else if (c >= 'a' && c <= 'f')
                                v = v * 16 + (c - 'a' + 10);
                        else
                                return fail(err, "invalid sha256 \"%s\": '%c' is not a hex digit", s, s[2 * i + j]);
                }
                ret[i] = (uint8_t) v;
        }
        return 0;
}

int parse_mode(const char *s, char *err, mode_t *ret) {
        mode_t m = 0;

        if (strempty(s) || strlen(s) > 5)
                return fail(err, "invalid mode \"%s\": expected octal such as 0755", s);
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '7')
                        return fail(err, "invalid mode \"%s\": expected octal such as 0755", s);
                m = m * 8 + (mode_t) (*p - '0');
        }
        if (m > 07777)
                return fail(err, "invalid mode \"%s\": at most 07777", s);
        *ret = m;
        return 0;
}

int parse_uint_range(const char *s, uint64_t min, uint64_t max, char *err, uint64_t *ret) {
        uint64_t v = 0;

        if (strempty(s))
                return fail(err, "empty number");
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char) *p))
                        return fail(err, "invalid number \"%s\"", s);
                if (v > (UINT64_MAX - 9) / 10)
                        return fail(err, "number \"%s\" out of range %" PRIu64 "..%" PRIu64, s, min, max);
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (v < min || v > max)
                return fail(err, "%s is out of range %" PRIu64 "..%" PRIu64, s, min, max);
        *ret = v;
        return 0;
}

int parse_key_prefix(const char *s, char *err) {
        const char *p = s;

        if (s[0] != '/')
                return fail(err, "invalid key prefix \"%s\": must start with '/'", s);
        if (strlen(s) > 1 && s[strlen(s) - 1] == '/')
                return fail(err, "invalid key prefix \"%s\": must not end with '/'", s);
        while (*p == '/' && p[1]) {
                const char *e = strchrnul(p + 1, '/');
                size_t l = (size_t) (e - p - 1);
                if (l == 0 || (l == 1 && p[1] == '.') || (l == 2 && p[1] == '.' && p[2] == '.'))
                        return fail(err, "invalid key prefix \"%s\": empty, '.' or '..' component", s);
                p = e;
        }
        for (p = s; *p; p++)
                if (isspace((unsigned char) *p) || iscntrl((unsigned char) *p))
                        return fail(err, "invalid key prefix \"%s\": whitespace or control characters", s);
        return 0;
}

int parse_abs_path(const char *s, char *err) {
        if (s[0] != '/')
                return fail(err, "invalid path \"%s\": must be absolute", s);
        for (const char *p = s; *p; p++)
                if (iscntrl((unsigned char) *p))
                        return fail(err, "invalid path \"%s\": control characters", s);
        if (strstr(s, "/../") || (strlen(s) >= 3 && streq(s + strlen(s) - 3, "/..")))
                return fail(err, "invalid path \"%s\": '..' components are not allowed", s);
        return 0;
}

char **strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

int split_words(const char *s, const char *seps, char ***ret) {
        char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (const char *p = s; *p;) {
                size_t k;
                char **nl;

                p += strspn(p, seps);
                k = strcspn(p, seps);
                if (k == 0)
                        break;
                nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        goto oom;
                l = nl;
                l[n] = strndup(p, k);
                if (!l[n])
                        goto oom;
                l[++n] = NULL;
                p += k;
        }
        *ret = l;
        return (int) n;
oom:
        strv_free(l);
        return -ENOMEM;
}

char *format_duration(usec_t u, char *buf, size_t len) {
        static const struct { const char *suffix; usec_t mult; } units[] = {
                { "h", 3600 * USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC },
        };
        size_t off = 0;

        if (u == 0) {
                snprintf(buf, len, "0s");
                return buf;
        }
        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(units) && off < len; i++)
                if (u >= units[i].mult) {
                        off += (size_t) snprintf(buf + off, len - off, "%" PRIu64 "%s",
                                                 u / units[i].mult, units[i].suffix);
                        u %= units[i].mult;
                }
        return buf;
}

char *format_cidr(const Cidr *c, char *buf, size_t len) {
        char a[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &c->addr, a, sizeof a);
        snprintf(buf, len, "%s/%u", a, c->prefixlen);
        return buf;
}

char *format_sha256(const uint8_t h[32], char *buf) {
        for (size_t i = 0; i < 32; i++)
                sprintf(buf + 2 * i, "%02x", h[i]);
        return buf;
}

unsigned levenshtein(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned row[64];

        if (lb >= ELEMENTSOF(row) || la >= 64)
                return UINT32_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                unsigned prev = row[0], t;
                row[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        t = row[j];
                        row[j] = row[j] + 1;
                        if (row[j - 1] + 1 < row[j])
                                row[j] = row[j - 1] + 1;
                        if (prev + cost < row[j])
                                row[j] = prev + cost;
                        prev = t;
                }
        }
        return row[lb];
}
