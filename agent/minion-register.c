/* SPDX-License-Identifier: Apache-2.0 */
#include "minion-register.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

struct MinionRegister {
        CurlLoop *loop;
        CURL *easy;
        struct curl_slist *headers;
        char *url;
        char *body;
        char error[CURL_ERROR_SIZE];
        minion_register_handler_t cb;
        void *userdata;
};

char *expand_placeholders(const char *text, const char *master_ip, const char *node_ip, const char *node_name) {
        const struct { const char *name, *value; } vars[] = {
                { "${MASTER_IP}", master_ip }, { "${NODE_IP}", node_ip }, { "${NODE_NAME}", node_name },
        };
        size_t cap = strlen(text) + 1, len = 0;
        char *out;

        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                for (const char *p = strstr(text, vars[i].name); p; p = strstr(p + 1, vars[i].name))
                        cap += strlen(vars[i].value);
        out = malloc(cap);
        if (!out)
                return NULL;
        for (const char *p = text; *p;) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(vars); i++)
                        if (strncmp(p, vars[i].name, strlen(vars[i].name)) == 0)
                                break;
                if (i < ELEMENTSOF(vars)) {
                        memcpy(out + len, vars[i].value, strlen(vars[i].value));
                        len += strlen(vars[i].value);
                        p += strlen(vars[i].name);
                } else
                        out[len++] = *p++;
        }
        out[len] = '\0';
        return out;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
        return size * nmemb;
}

static void on_done(CURL *easy, CURLcode code, void *userdata) {
        MinionRegister *m = userdata;
        char msg[512];
        long status = 0;

        if (code != CURLE_OK) {
                snprintf(msg, sizeof msg, "POST %s failed: %s", m->url, m->error[0] ? m->error : curl_easy_strerror(code));
                m->cb(-EIO, 0, msg, m->userdata);
                return;
        }
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if ((status >= 200 && status < 300) || status == 409) {
                m->cb(0, status, NULL, m->userdata);
                return;
        }
        snprintf(msg, sizeof msg, "POST %s answered HTTP %ld", m->url, status);
        m->cb(-EIO, status, msg, m->userdata);
}

int minion_register_post(CurlLoop *loop, const char *url, const char *body, minion_register_handler_t cb,
                         void *userdata, MinionRegister **ret) {
        _cleanup_(minion_register_freep) MinionRegister *m = calloc(1, sizeof *m);
        int r;

        if (!m)
                return -ENOMEM;
        *m = (MinionRegister) { .loop = loop, .cb = cb, .userdata = userdata,
                                 .url = strdup(url), .body = strdup(body), .easy = curl_easy_init() };
        m->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!m->url || !m->body || !m->easy || !m->headers)
                return -ENOMEM;
        curl_easy_setopt(m->easy, CURLOPT_URL, m->url);
        curl_easy_setopt(m->easy, CURLOPT_POSTFIELDS, m->body);
        curl_easy_setopt(m->easy, CURLOPT_HTTPHEADER, m->headers);
        curl_easy_setopt(m->easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(m->easy, CURLOPT_ERRORBUFFER, m->error);
        curl_easy_setopt(m->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(m->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(m->easy, CURLOPT_TIMEOUT_MS, 15000L);
        curl_easy_setopt(m->easy, CURLOPT_NOSIGNAL, 1L);
        r = curl_loop_add(loop, m->easy, on_done, m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

MinionRegister *minion_register_free(MinionRegister *m) {
        if (!m)
                return NULL;
        if (m->easy) {
                curl_loop_remove(m->loop, m->easy);
                curl_easy_cleanup(m->easy);
        }
        curl_slist_free_all(m->headers);
        free(m->url);
        free(m->body);
        free(m);
        return NULL;
}
