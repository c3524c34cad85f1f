/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* libcurl's multi interface driven by sd-event: transfers run on the
 * daemon's one loop; each finished transfer is handed to its callback. */

#include <curl/curl.h>
#include <systemd/sd-event.h>
#include "macro.h"

typedef struct CurlLoop CurlLoop;
typedef void (*curl_done_handler_t)(CURL *easy, CURLcode code, void *userdata);

int curl_loop_new(sd_event *event, CurlLoop **ret);
CurlLoop *curl_loop_free(CurlLoop *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlLoop *, curl_loop_free);
/* The easy handle stays the caller's; the callback runs once, after the
 * handle has been taken out of the multi handle. */
int curl_loop_add(CurlLoop *l, CURL *easy, curl_done_handler_t cb, void *userdata);
void curl_loop_remove(CurlLoop *l, CURL *easy);
