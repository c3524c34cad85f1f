/* SPDX-License-Identifier: Apache-2.0 */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"

/* Config files are small; refusing huge ones bounds what a mistake (say,
 * -c pointing at a log file) can cost. */
#define INI_MAX_SIZE (1024 * 1024)

static char *strip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = '\0';
        return s;
}

static void strip_trailing_comment(char *s) {
        for (char *p = s; *p; p++)
                if (*p == '#' && p > s && isspace((unsigned char) p[-1])) {
                        *p = '\0';
                        return;
                }
}

static int parse_line(char *line, const char *name, unsigned n, const IniCallbacks *cb, void *userdata) {
        char *s = strip(line), *eq, *key, *value;
        char msg[256];

        if (*s == '\0' || *s == '#' || *s == ';')
                return 0;
        if (*s == '[') {
                char *e = strchr(s, ']');
                if (!e || strip(e + 1)[0] != '\0') {
                        strip_trailing_comment(e ? e + 1 : s);
                        if (!e || strip(e + 1)[0] != '\0') {
                                snprintf(msg, sizeof msg, "invalid section header \"%.64s\"", s);
                                return cb->error(msg, name, n, userdata);
                        }
                }
                *e = '\0';
                return cb->section(strip(s + 1), name, n, userdata);
        }
        eq = strchr(s, '=');
        if (!eq) {
                snprintf(msg, sizeof msg, "expected \"key = value\", got \"%.64s\"", s);
                return cb->error(msg, name, n, userdata);
        }
        *eq = '\0';
        key = strip(s);
        value = eq + 1;
        strip_trailing_comment(value);
        value = strip(value);
        if (*key == '\0') {
                snprintf(msg, sizeof msg, "missing key before '='");
                return cb->error(msg, name, n, userdata);
        }
        for (const char *p = value; *p; p++)
                if (iscntrl((unsigned char) *p) && *p != '\t') {
                        snprintf(msg, sizeof msg, "control character in the value of \"%.64s\"", key);
                        return cb->error(msg, name, n, userdata);
                }
        return cb->key(key, value, name, n, userdata);
}

int ini_parse_string(const char *text, const char *name, const IniCallbacks *cb, void *userdata) {
        _cleanup_free_ char *copy = strdup(text);
        char *p, *nl;
        unsigned n = 0;

        if (!copy)
                return -ENOMEM;
        p = copy;
        /* A UTF-8 byte order mark from an editor is not part of the first key. */
        if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;
        for (; p; p = nl) {
                int r;
                nl = strchr(p, '\n');
                if (nl)
                        *nl++ = '\0';
                n++;
                if (*p && p[strlen(p) - 1] == '\r')
                        p[strlen(p) - 1] = '\0';
                r = parse_line(p, name, n, cb, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int ini_parse_file(const char *path, const IniCallbacks *cb, void *userdata) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (st.st_size > INI_MAX_SIZE)
                return -EFBIG;
        buf = malloc(INI_MAX_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, INI_MAX_SIZE + 1, f);
        if (ferror(f))
                return -EIO;
        if (n > INI_MAX_SIZE)
                return -EFBIG;
        if (memchr(buf, '\0', n))
                return -EBADMSG;
        buf[n] = '\0';
        return ini_parse_string(buf, path, cb, userdata);
}
