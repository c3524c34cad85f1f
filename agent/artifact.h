/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Role binaries: downloaded with libcurl on the event loop, checked against
 * their sha256 before they are moved into place (temp file in the same
 * directory, fsync, chmod, rename). One call is one attempt; the daemon
 * decides about retries. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "curl-event.h"
#include "macro.h"

typedef struct artifact_fetch artifact_fetch;

/* error: 0 (installed, or already there with that hash: *changed tells),
 * -EBADMSG for a hash mismatch, -EREMOTEIO for an HTTP 4xx answer, another
 * negative errno otherwise (connection refused, timeout, 5xx: may pass);
 * the callback may free the fetch;
 * message: what happened, naming the artifact (NULL on success). */
typedef void (*artifact_done_cb)(const ck_artifact *a, int error, const char *message, bool changed, void *userdata);

/* Returns 1 when the file is already in place with the right hash (no
 * download, no callback), 0 when a download started, or a negative errno. */
int artifact_fetch_start(curl_loop *loop, const ck_artifact *a, artifact_done_cb cb, void *userdata,
                         artifact_fetch **ret);
artifact_fetch *artifact_fetch_free(artifact_fetch *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(artifact_fetch *, artifact_fetch_free);

/* sha256 of a file; -ENOENT if it does not exist. */
int file_sha256(const char *path, uint8_t ret[32]);
