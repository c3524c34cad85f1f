/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Logging: structured records to the journal when our stderr is the journal
 * (JOURNAL_STREAM matches), "corekube-agent[pid]: level: message" on stderr
 * otherwise. Every log_*_errno() returns -abs(error) so callers can write
 * `return log_error_errno(r, "Failed to …: %m");`. */

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#define _printf_(a, b) __attribute__((format(printf, a, b)))

void log_open(void);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "debug", "info", "notice", "warning", "err"/"error", "crit", "alert", "emerg"
 * or 0..7; returns the level or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);
/* True when records go to the journal rather than plain stderr. */
bool log_to_journal(void);
/* Only for tests: force a target regardless of JOURNAL_STREAM. */
void log_force_stderr(bool on);

/* netsetup's log hook (ns_set_log_func()): its messages with their level
 * and COREKUBE_COMPONENT=netsetup. */
__attribute__((format(printf, 3, 0)))
void log_netsetup(int level, int error, const char *format, va_list ap);

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

/* fields: NULL-terminated "KEY=value" strings, e.g. "COREKUBE_SUBNET=10.244.3.0/24".
 * message_id: 32 hex chars or NULL. */
int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *message_id, const char *const *fields,
                        const char *format, ...) _printf_(8, 9);

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, (e), __VA_ARGS__)

/* A milestone or event: MESSAGE_ID plus COREKUBE_* fields.
 *   log_event(LOG_INFO, MID_LEASE_ACQUIRED, FIELDS("COREKUBE_SUBNET=10.244.3.0/24"),
 *             "Acquired subnet %s", s); */
#define FIELDS(...) ((const char *const[]) { __VA_ARGS__, NULL })
#define log_event(level, mid, fields, ...) \
        log_struct_internal((level), 0, __FILE__, __LINE__, __func__, (mid), (fields), __VA_ARGS__)
#define log_event_errno(level, error, mid, fields, ...) \
        log_struct_internal((level), (error), __FILE__, __LINE__, __func__, (mid), (fields), __VA_ARGS__)
