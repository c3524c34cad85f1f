/* SPDX-License-Identifier: Apache-2.0 */
#include "agent-lock.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "macro.h"

int agent_lock_take(int *ret_fd) {
        _cleanup_close_ int dfd = -1, fd = -1;
        char pid[32];
        int n;

        if (mkdir(AGENT_LOCK_DIR, 0755) < 0 && errno != EEXIST)
                return -errno;
        /* A symlink planted in place of the directory or the file is not
         * followed (-ELOOP, -ENOTDIR): we would create or truncate a file
         * wherever it points. */
        dfd = open(AGENT_LOCK_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        /* No O_TRUNC: the file may be another agent's, which says its PID. */
        fd = openat(dfd, "agent.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
                *ret_fd = TAKE_FD(fd);
                return r;
        }
        /* For people (cat) and for readers without /proc/locks; the lock
         * itself is what counts. */
        n = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) n, 0) != n)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF": the PID as the reader's
 * PID namespace sees it, device as major:minor in hex, inode in decimal. */
static pid_t holder_from_proc_locks(const struct stat *st) {
        _cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
        char line[256];

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f)) {
                char type[16], mode[16], access[16];
                unsigned maj, min;
                uintmax_t ino;
                int pid;

                if (sscanf(line, "%*[^:]: %15s %15s %15s %d %x:%x:%ju", type, mode, access, &pid, &maj, &min,
                           &ino) != 7 || !streq(type, "FLOCK"))
                        continue;
                if (maj == major(st->st_dev) && min == minor(st->st_dev) && ino == (uintmax_t) st->st_ino &&
                    pid > 0)
                        return pid;
        }
        return 0;
}

pid_t agent_lock_holder(int fd) {
        struct stat st;
        char buf[32] = {};
        ssize_t n;
        pid_t pid;
        char *end;
        long v;

        if (fstat(fd, &st) < 0)
                return 0;
        pid = holder_from_proc_locks(&st);
        if (pid > 0)
                return pid;
        /* E.g. a file system whose stat() device is not the one the lock is
         * recorded on (overlayfs). */
        n = pread(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
                return 0;
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || v <= 0 || v > INT32_MAX)
                return 0;
        return (pid_t) v;
}
