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

typedef struct ArtifactFetch ArtifactFetch;

/* error: 0 (installed, or already there with that hash: *changed tells),
 * -EBADMSG for a hash mismatch, -EREMOTEIO for an HTTP 4xx answer, another
 * negative errno otherwise (connection refused, timeout, 5xx: may pass);
 * the callback may free the fetch;
 * message: what happened, naming the artifact (NULL on success). */
typedef void (*artifact_done_handler_t)(const Artifact *a, int error, const char *message, bool changed, void *userdata);

/* Hashes the file in place (a chunk per turn of the loop, at idle
 * priority) and downloads it unless its sha256 is right. The callback
 * always follows, never from within this call; freeing the fetch before
 * (mid-hash or mid-download) cancels it without a call. Returns 0 or a
 * negative errno. */
int artifact_fetch_start(sd_event *event, CurlLoop *loop, const Artifact *a, artifact_done_handler_t cb,
                         void *userdata, ArtifactFetch **ret);
ArtifactFetch *artifact_fetch_free(ArtifactFetch *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(ArtifactFetch *, artifact_fetch_free);

/* The artifact it fetches. */
const Artifact *artifact_fetch_get(ArtifactFetch *f);
