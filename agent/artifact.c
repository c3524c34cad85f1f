/* SPDX-License-Identifier: Apache-2.0 */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envfile.h"
#include "log.h"
#include "macro.h"

/* The file in place is hashed this much per turn of the loop, at idle
 * priority: a 100 MB binary must not hold up the watches and timers. */
#define HASH_CHUNK (1024 * 1024)

struct ArtifactFetch {
        const Artifact *a;
        CurlLoop *loop;
        sd_event_source *hash;          /* the file in place being hashed */
        int hash_fd;
        uint8_t *hash_buf;
        CURL *easy;
        EVP_MD_CTX *md;
        int fd;
        int dirfd;
        char *tmp;                      /* name inside the directory */
        const char *base;
        int write_error;
        char curl_error[CURL_ERROR_SIZE];
        artifact_done_handler_t cb;
        void *userdata;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        ArtifactFetch *f = userdata;
        size_t len = size * nmemb;

        for (size_t off = 0; off < len;) {
                ssize_t n = write(f->fd, ptr + off, len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        f->write_error = -errno;
                        return 0;       /* makes curl abort the transfer */
                }
                off += (size_t) n;
        }
        EVP_DigestUpdate(f->md, ptr, len);
        return len;
}

static void discard_tmp(ArtifactFetch *f) {
        if (f->tmp) {
                (void) unlinkat(f->dirfd, f->tmp, 0);
                free(f->tmp);
                f->tmp = NULL;
        }
}

static void finish(ArtifactFetch *f, int error, const char *message, bool changed) {
        if (error < 0)
                discard_tmp(f);
        f->cb(f->a, error, message, changed, f->userdata);
}

/* The download went to an unnamed O_TMPFILE, so that nothing half-written
 * or unverified is ever visible, and a killed agent leaves nothing behind.
 * Once verified it gets a temporary name, which rename() moves into place. */
static int link_tmpfile(ArtifactFetch *f) {
        char proc[64];

        if (f->tmp)
                return 0;       /* no O_TMPFILE here: it has a name already */
        if (asprintf(&f->tmp, ".#%s.%d.new", f->base, (int) getpid()) < 0) {
                f->tmp = NULL;
                errno = ENOMEM;
                return -1;
        }
        (void) unlinkat(f->dirfd, f->tmp, 0);
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
        if (linkat(AT_FDCWD, proc, f->dirfd, f->tmp, AT_SYMLINK_FOLLOW) < 0) {
                int e = errno;
                free(f->tmp);
                f->tmp = NULL;
                errno = e;
                return -1;
        }
        return 0;
}

static void on_done(CURL *easy, CURLcode code, void *userdata) {
        ArtifactFetch *f = userdata;
        char msg[512], exp[65], got[65];
        uint8_t h[32];
        unsigned hl = 32;
        long status = 0;

        if (code != CURLE_OK) {
                if (f->write_error)
                        snprintf(msg, sizeof msg, "artifact %s: writing %s failed: %s", f->a->name, f->a->path,
                                 strerror(-f->write_error));
                else
                        snprintf(msg, sizeof msg, "artifact %s: download from %s failed: %s", f->a->name, f->a->url,
                                 f->curl_error[0] ? f->curl_error : curl_easy_strerror(code));
                finish(f, f->write_error ?: -EIO, msg, false);
                return;
        }
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
                snprintf(msg, sizeof msg, "artifact %s: %s answered HTTP %ld", f->a->name, f->a->url, status);
                /* A 4xx will not go away by itself (a wrong URL, no access);
                 * a 5xx or a redirect loop may. */
                finish(f, status >= 400 && status < 500 ? -EREMOTEIO : -EIO, msg, false);
                return;
        }
        EVP_DigestFinal_ex(f->md, h, &hl);
        if (memcmp(h, f->a->sha256.v, 32) != 0) {
                snprintf(msg, sizeof msg, "artifact %s: sha256 mismatch: expected %s, got %s; %s left untouched",
                         f->a->name, format_sha256(f->a->sha256.v, exp), format_sha256(h, got), f->a->path);
                finish(f, -EBADMSG, msg, false);
                return;
        }
        if (fchmod(f->fd, f->a->mode) < 0 || fsync(f->fd) < 0 || link_tmpfile(f) < 0 ||
            renameat(f->dirfd, f->tmp, f->dirfd, f->base) < 0) {
                snprintf(msg, sizeof msg, "artifact %s: installing %s failed: %m", f->a->name, f->a->path);
                finish(f, -errno, msg, false);
                return;
        }
        (void) fsync(f->dirfd);
        free(f->tmp);
        f->tmp = NULL;
        finish(f, 0, NULL, true);
}

static int fetch_start(ArtifactFetch *f) {
        const Artifact *a = f->a;
        _cleanup_free_ char *dir = NULL;
        int r;

        dir = strndup(a->path, (size_t) (strrchr(a->path, '/') - a->path));
        if (!dir)
                return -ENOMEM;
        f->base = strrchr(a->path, '/') + 1;
        r = *dir ? mkdir_parents(dir) : 0;
        if (r < 0)
                return log_error_errno(r, "artifact %s: cannot create %s: %m", a->name, dir);
        f->dirfd = open(*dir ? dir : "/", O_DIRECTORY | O_CLOEXEC);
        if (f->dirfd < 0)
                return log_error_errno(errno, "artifact %s: cannot open %s: %m", a->name, dir);
        f->fd = openat(f->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (f->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
                /* A file system without O_TMPFILE: a named temp file. */
                if (asprintf(&f->tmp, ".#%s.%d.download", f->base, (int) getpid()) < 0)
                        return -ENOMEM;
                (void) unlinkat(f->dirfd, f->tmp, 0);
                f->fd = openat(f->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        }
        if (f->fd < 0) {
                r = -errno;
                free(f->tmp);
                f->tmp = NULL;
                return log_error_errno(r, "artifact %s: cannot create a file in %s: %m", a->name, dir);
        }
        if (!f->md)
                f->md = EVP_MD_CTX_new();
        f->easy = curl_easy_init();
        if (!f->md || !f->easy || EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        curl_easy_setopt(f->easy, CURLOPT_URL, a->url);
        curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->curl_error);
        curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(f->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        /* No total timeout (binaries are large); a stalled transfer ends. */
        curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
        r = curl_loop_add(f->loop, f->easy, on_done, f);
        if (r < 0)
                return log_error_errno(r, "artifact %s: cannot start the download: %m", a->name);
        return 0;
}

static void hash_stop(ArtifactFetch *f) {
        f->hash = sd_event_source_disable_unref(f->hash);
        if (f->hash_fd >= 0)
                close(f->hash_fd);
        f->hash_fd = -1;
        free(f->hash_buf);
        f->hash_buf = NULL;
}

static void download(ArtifactFetch *f) {
        char msg[512];
        int r;

        r = fetch_start(f);
        if (r < 0) {
                snprintf(msg, sizeof msg, "artifact %s: %s", f->a->name, strerror(-r));
                finish(f, r, msg, false);
        }
}

static int on_hash_chunk(sd_event_source *s, void *userdata) {
        ArtifactFetch *f = userdata;
        unsigned len = 32;
        uint8_t h[32];
        ssize_t n;

        n = read(f->hash_fd, f->hash_buf, HASH_CHUNK);
        if (n < 0 && errno == EINTR)
                return 0;
        if (n > 0) {
                EVP_DigestUpdate(f->md, f->hash_buf, (size_t) n);
                return 0;       /* the next chunk on the next turn */
        }
        hash_stop(f);
        if (n == 0 && EVP_DigestFinal_ex(f->md, h, &len) == 1 && memcmp(h, f->a->sha256.v, 32) == 0) {
                finish(f, 0, NULL, false);      /* may free f */
                return 0;
        }
        if (n < 0)
                log_warning_errno(errno, "artifact %s: cannot read %s (%m); downloading it.", f->a->name, f->a->path);
        download(f);
        return 0;
}

/* Hashes the file in place, a chunk per turn of the loop. Returns 1 when
 * there is none (or it cannot be hashed): download it. */
static int hash_start(ArtifactFetch *f, sd_event *event) {
        int r;

        f->hash_fd = open(f->a->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (f->hash_fd < 0)
                return 1;
        f->md = EVP_MD_CTX_new();
        f->hash_buf = malloc(HASH_CHUNK);
        if (!f->md || !f->hash_buf || EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        r = sd_event_add_defer(event, &f->hash, on_hash_chunk, f);
        if (r < 0)
                return r;
        /* A defer source is one-shot by default: on until the end of the file. */
        r = sd_event_source_set_enabled(f->hash, SD_EVENT_ON);
        if (r < 0)
                return r;
        (void) sd_event_source_set_priority(f->hash, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_description(f->hash, "artifact-hash");
        return 0;
}

int artifact_fetch_start(sd_event *event, CurlLoop *loop, const Artifact *a, artifact_done_handler_t cb,
                         void *userdata, ArtifactFetch **ret) {
        _cleanup_(artifact_fetch_freep) ArtifactFetch *f = NULL;
        int r;

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        *f = (ArtifactFetch) { .a = a, .loop = loop, .cb = cb, .userdata = userdata, .fd = -1, .dirfd = -1,
                                .hash_fd = -1 };
        r = hash_start(f, event);
        if (r > 0)
                r = fetch_start(f);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

const Artifact *artifact_fetch_get(ArtifactFetch *f) {
        return f->a;
}

ArtifactFetch *artifact_fetch_free(ArtifactFetch *f) {
        if (!f)
                return NULL;
        hash_stop(f);
        if (f->easy) {
                curl_loop_remove(f->loop, f->easy);
                curl_easy_cleanup(f->easy);
        }
        discard_tmp(f);
        if (f->fd >= 0)
                close(f->fd);
        if (f->dirfd >= 0)
                close(f->dirfd);
        EVP_MD_CTX_free(f->md);
        free(f);
        return NULL;
}
