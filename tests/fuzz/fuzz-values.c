/* SPDX-License-Identifier: Apache-2.0 */
/* The config value parsers: durations, CIDRs, URLs, names, modes, ranges.
 * Whatever parses must format back to something that parses to the same. */
#include <arpa/inet.h>

#include "fuzz.h"
#include "values.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char err[CK_ERRLEN], buf[128];
        char *s = fuzz_string(data, size), **words = NULL;
        usec_t u, u2;
        Cidr c, c2;
        uint8_t sha[32];
        mode_t mode;
        uint64_t n;
        bool b;

        if (!s)
                return 0;

        if (parse_duration(s, err, &u) >= 0) {
                fuzz_check(parse_duration(format_duration(u, buf, sizeof buf), err, &u2) >= 0);
                fuzz_check(u == u2);
        }
        for (int network = 0; network < 2; network++)
                if (parse_cidr(s, network, err, &c) >= 0) {
                        fuzz_check(c.prefixlen <= 32);
                        fuzz_check(parse_cidr(format_cidr(&c, buf, sizeof buf), network, err, &c2) >= 0);
                        fuzz_check(c.addr.s_addr == c2.addr.s_addr && c.prefixlen == c2.prefixlen);
                        fuzz_check(cidr_contains(&c, &c2));
                }
        if (parse_url(s, err) >= 0)
                fuzz_check(strncmp(s, "http", 4) == 0 && !strpbrk(s, " \t\r\n"));
        if (parse_ifname(s, err) >= 0)
                fuzz_check(strlen(s) < 16 && !strchr(s, '/'));
        if (parse_hostname(s, err) >= 0)
                fuzz_check(strlen(s) <= 253);
        if (parse_unit_name(s, err) >= 0)
                fuzz_check(!strchr(s, '/'));
        if (parse_sha256(s, err, sha) >= 0)
                fuzz_check(strcasecmp(format_sha256(sha, buf), s) == 0);
        if (parse_mode(s, err, &mode) >= 0)
                fuzz_check(mode <= 07777);
        if (parse_uint_range(s, 1, 65535, err, &n) >= 0)
                fuzz_check(n >= 1 && n <= 65535);
        if (parse_key_prefix(s, err) >= 0)
                fuzz_check(s[0] == '/' && !strstr(s, "/../"));
        if (parse_abs_path(s, err) >= 0)
                fuzz_check(s[0] == '/');
        (void) parse_bool(s, err, &b);
        (void) parse_ipv4(s, err, &(struct in_addr) {});
        if (split_words(s, " \t,", &words) >= 0) {
                for (char **w = words; *w; w++)
                        fuzz_check(**w && !strpbrk(*w, " \t,"));
                strv_free(words);
        }
        (void) levenshtein(s, "endpoints");
        (void) levenshtein("subnet-len", s);
        free(s);
        return 0;
}
