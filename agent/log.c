/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;
static int target = -1;         /* -1 unknown, 0 stderr, 1 journal */

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

const char *log_level_to_string(int level) {
        if (level < 0 || level > LOG_DEBUG)
                return "?";
        return level_names[level];
}

int log_level_from_string(const char *s) {
        if (!s || !*s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        if (strcasecmp(s, "err") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        for (int i = 0; i <= LOG_DEBUG; i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}

void log_set_max_level(int level) {
        if (level >= LOG_EMERG && level <= LOG_DEBUG)
                max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/* systemd sets JOURNAL_STREAM=dev:ino for the stream it connected to our
 * stderr; only then is it safe to assume the journal wants our records. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_open(void) {
        target = stderr_is_journal() ? 1 : 0;
}

void log_force_stderr(bool on) {
        target = on ? 0 : -1;
}

bool log_to_journal(void) {
        if (target < 0)
                log_open();
        return target == 1;
}

static void write_stderr(int level, const char *msg) {
        fprintf(stderr, "corekube-agent[%d]: %s: %s\n", (int) getpid(), log_level_to_string(level), msg);
}

static void write_journal(int level, int error, const char *file, int line, const char *func,
                          const char *message_id, const char *const *fields, const char *msg) {
        char prio[32], cfile[256], cline[32], cfunc[128], errno_f[32], mid[64];
        struct iovec iov[64];
        size_t n = 0;
        char *m = NULL;

        if (asprintf(&m, "MESSAGE=%s", msg) < 0) {
                write_stderr(level, msg);
                return;
        }
        snprintf(prio, sizeof prio, "PRIORITY=%d", level);
        snprintf(cfile, sizeof cfile, "CODE_FILE=%s", file);
        snprintf(cline, sizeof cline, "CODE_LINE=%d", line);
        snprintf(cfunc, sizeof cfunc, "CODE_FUNC=%s", func);

#define ADD(s) do { iov[n].iov_base = (void *) (s); iov[n].iov_len = strlen(s); n++; } while (0)
        ADD(m);
        ADD(prio);
        ADD(cfile);
        ADD(cline);
        ADD(cfunc);
        ADD("SYSLOG_IDENTIFIER=corekube-agent");
        if (error != 0) {
                snprintf(errno_f, sizeof errno_f, "ERRNO=%d", abs(error));
                ADD(errno_f);
        }
        if (message_id) {
                snprintf(mid, sizeof mid, "MESSAGE_ID=%s", message_id);
                ADD(mid);
        }
        for (size_t i = 0; fields && fields[i] && n < sizeof iov / sizeof iov[0]; i++)
                ADD(fields[i]);
#undef ADD
        if (sd_journal_sendv(iov, (int) n) < 0)
                write_stderr(level, msg);
        free(m);
}

__attribute__((format(printf, 8, 0)))
static int log_dispatch(int level, int error, const char *file, int line, const char *func,
                        const char *message_id, const char *const *fields,
                        const char *format, va_list ap) {
        char buf[2048];
        int saved_errno = errno;

        if (level > max_level)
                return -abs(error);

        /* Let %m print the error we were handed, not whatever errno holds. */
        errno = abs(error);
        vsnprintf(buf, sizeof buf, format, ap);
        errno = saved_errno;

        if (log_to_journal())
                write_journal(level, error, file, line, func, message_id, fields, buf);
        else
                write_stderr(level, buf);

        errno = saved_errno;
        return -abs(error);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, file, line, func, NULL, NULL, format, ap);
        va_end(ap);
        return r;
}

int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *message_id, const char *const *fields,
                        const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, file, line, func, message_id, fields, format, ap);
        va_end(ap);
        return r;
}

void log_netsetup(int level, int error, const char *format, va_list ap) {
        va_list aq;

        /* Its warnings and notes (failures come back to us as return values). */
        va_copy(aq, ap);
        (void) log_dispatch(level, error, "netsetup", 0, "netsetup", NULL,
                            FIELDS("COREKUBE_COMPONENT=netsetup"), format, aq);
        va_end(aq);
}
