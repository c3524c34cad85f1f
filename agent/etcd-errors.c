/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-client-internal.h"
#include "macro.h"

Outcome etcd_classify_curl(EtcdRequest *r, CURLcode cc, int *ret_error, char **ret_message) {
        const char *ep = r->client->endpoints[r->endpoint];
        const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
        curl_off_t sent = 0;
        long os_errno = 0;
        Outcome o;
        int k;

        (void) curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
        (void) curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &sent);
        /* Nothing of the body left us: etcd cannot have acted on it. */
        o = sent > 0 ? OUTCOME_UNSURE : OUTCOME_RETRY;

        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
                *ret_error = os_errno > 0 ? -(int) os_errno : -ECONNREFUSED;
                k = asprintf(ret_message, "%s: %s (%s)", ep,
                             os_errno == ECONNREFUSED ? "connection refused" : "cannot connect", detail);
                o = OUTCOME_RETRY;
                break;
        case CURLE_PEER_FAILED_VERIFICATION:
                *ret_error = -EPROTO;
                k = asprintf(ret_message, "%s: TLS verification failed: %s", ep, detail);
                o = OUTCOME_RETRY;
                break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ENGINE_NOTFOUND:
                *ret_error = -EPROTO;
                k = asprintf(ret_message, "%s: TLS handshake failed: %s", ep, detail);
                o = OUTCOME_RETRY;
                break;
        case CURLE_OPERATION_TIMEDOUT:
                *ret_error = -ETIMEDOUT;
                k = asprintf(ret_message, "%s: timeout: %s", ep, detail);
                break;
        default:
                *ret_error = -ECONNRESET;
                k = asprintf(ret_message, "%s: %s", ep, detail);
                break;
        }
        if (k < 0)
                *ret_message = NULL;
        return o;
}

Outcome etcd_classify_http(EtcdRequest *r, long code, int *ret_error, char **ret_message) {
        EtcdClient *c = r->client;
        const char *ep = c->endpoints[r->endpoint], *message = NULL;
        json_object *o;
        Outcome out;
        int grpc = 0, k;

        o = r->response ? etcd_json_parse_first(r->response, r->response_size) : NULL;
        if (!o || etcd_json_error(o, &message, &grpc) < 0) {
                if (o)
                        json_object_put(o);
                if (code == 404 && !c->v3beta[r->endpoint])
                        return OUTCOME_V3BETA;
                *ret_error = code >= 500 ? -EAGAIN : -EIO;
                if (asprintf(ret_message, "%s: HTTP %ld", ep, code) < 0)
                        *ret_message = NULL;
                /* A proxy's 5xx: the request may have gone through. */
                return code >= 500 ? OUTCOME_UNSURE : OUTCOME_FAIL;
        }

        out = OUTCOME_FAIL;
        if (strstr(message, "invalid auth token") || strstr(message, "auth token is expired")) {
                *ret_error = -EACCES;
                out = r->auth_retried || r->auth ? OUTCOME_FAIL : OUTCOME_REAUTH;
        } else if (strstr(message, "authentication failed")) {
                *ret_error = -EACCES;
        } else
                switch (grpc) {
                case 5:         /* NotFound */
                        *ret_error = -ENOENT;
                        break;
                case 7:         /* PermissionDenied */
                        *ret_error = -EPERM;
                        break;
                case 16:        /* Unauthenticated */
                        *ret_error = -EACCES;
                        break;
                case 11:        /* OutOfRange: compacted */
                        *ret_error = -ESTALE;
                        break;
                case 3:         /* InvalidArgument */
                        *ret_error = -EINVAL;
                        break;
                case 1:         /* Canceled, e.g. "the client connection is closing" */
                case 4:         /* DeadlineExceeded, e.g. "request timed out" */
                case 14:        /* Unavailable, e.g. "no leader" */
                        *ret_error = -EAGAIN;
                        out = OUTCOME_UNSURE;
                        break;
                default:
                        *ret_error = -EIO;
                        break;
                }

        k = asprintf(ret_message, "%s: HTTP %ld: %s", ep, code, message);
        if (k < 0)
                *ret_message = NULL;
        json_object_put(o);
        return out;
}

