/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* /run/corekube/agent.lock: the running agent holds an exclusive flock on
 * it for its whole life (SPEC 6), so that a second agent on the node refuses
 * to start and `leave` can tell whether one runs, and which process it is. */

#include <sys/types.h>

#define AGENT_LOCK_DIR  "/run/corekube"
#define AGENT_LOCK_PATH AGENT_LOCK_DIR "/agent.lock"

/* Creates the directory (0755) and the file (0644) as needed and takes the
 * lock without waiting; on success *ret_fd holds it (O_CLOEXEC) and the file
 * says our PID. -EWOULDBLOCK: another process holds it (*ret_fd is then
 * still the open file, for agent_lock_holder()); other negative errnos: the
 * file could not be opened or locked. */
int agent_lock_take(int *ret_fd);

/* The PID of the process holding the lock on fd's file: from /proc/locks
 * (what the kernel knows), else from the PID the holder wrote into the file.
 * 0: unknown. */
pid_t agent_lock_holder(int fd);
