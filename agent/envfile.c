/* SPDX-License-Identifier: Apache-2.0 */
#include "envfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

#define ENVFILE_MAX (64 * 1024)

/* Values come from our own typed config and validated etcd records, but a
 * file that a shell or systemd parses must not be able to smuggle anything
 * in: allow a conservative set of characters and refuse the rest. */
static bool value_safe(const char *v, bool allow_space) {
        for (const char *p = v; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                        continue;
                if (strchr("-_./:,=@+%", c))
                        continue;
                if (c == ' ' && allow_space)
                        continue;
                return false;
        }
        return true;
}

static void append(EnvFile *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(EnvFile *e, const char *fmt, ...) {
        va_list ap;
        char *s = NULL, *n;
        int l;

        if (e->error)
                return;
        va_start(ap, fmt);
        l = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (l < 0) {
                e->error = -ENOMEM;
                return;
        }
        n = realloc(e->text, e->len + (size_t) l + 1);
        if (!n) {
                free(s);
                e->error = -ENOMEM;
                return;
        }
        memcpy(n + e->len, s, (size_t) l + 1);
        e->text = n;
        e->len += (size_t) l;
        free(s);
}

void envfile_add(EnvFile *e, const char *key, const char *value) {
        if (!value_safe(value, false)) {
                e->error = e->error ?: -EINVAL;
                return;
        }
        append(e, "%s=%s\n", key, value);
}

void envfile_add_quoted(EnvFile *e, const char *key, const char *value) {
        if (!value_safe(value, true)) {
                e->error = e->error ?: -EINVAL;
                return;
        }
        append(e, "%s=\"%s\"\n", key, value);
}

void envfile_done(EnvFile *e) {
        free(e->text);
        *e = (EnvFile) {};
}

static int same_content(int dirfd, const char *name, const char *content, size_t len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        ssize_t n;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t) st.st_size != len)
                return 0;
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        n = read(fd, buf, len + 1);
        return n == (ssize_t) len && memcmp(buf, content, len) == 0;
}

int mkdir_parents(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *s = '/';
                }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int write_file_atomic(const char *path, const char *content, size_t len, mode_t mode) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        _cleanup_close_ int dfd = -1, fd = -1;
        const char *base = strrchr(path, '/');
        struct stat st = {};
        int r;

        if (!base || base[1] == '\0')
                return -EINVAL;
        dir = strndup(path, (size_t) (base - path));
        base++;
        if (!dir)
                return -ENOMEM;
        if (*dir && (r = mkdir_parents(dir)) < 0)
                return r;
        /* O_NOFOLLOW on the directory too: a symlink planted in /run must not
         * redirect where a root-owned file lands. */
        dfd = open(*dir ? dir : "/", O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return -errno;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        r = same_content(dfd, base, content, len);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Content right; still make the mode exact. */
                if (st.st_mode != 0 && (st.st_mode & 07777) != mode && fchmodat(dfd, base, mode, 0) < 0)
                        return -errno;
                return 0;
        }

        if (asprintf(&tmp, ".#%s.%d.tmp", base, (int) getpid()) < 0)
                return -ENOMEM;
        (void) unlinkat(dfd, tmp, 0);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, content + off, len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                off += (size_t) n;
        }
        /* The umask must not decide the mode of what we publish. */
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (renameat(dfd, tmp, dfd, base) < 0) {
                r = -errno;
                goto fail;
        }
        (void) fsync(dfd);
        return 1;
fail:
        (void) unlinkat(dfd, tmp, 0);
        return r;
}

int envfile_read_value(const char *path, const char *key, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[1024];
        size_t kl = strlen(key);

        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                char *v, *e;
                if (strncmp(line, key, kl) != 0 || line[kl] != '=')
                        continue;
                v = line + kl + 1;
                v[strcspn(v, "\n")] = '\0';
                if (*v == '"' && (e = strrchr(v + 1, '"'))) {
                        *e = '\0';
                        v++;
                }
                *ret = strdup(v);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}
