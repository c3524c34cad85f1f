/* SPDX-License-Identifier: Apache-2.0 */
#include "standin-apiserver.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "macro.h"
#include "standin-http.h"

#define MINIONS_PATH "/api/v1beta1/minions"

typedef struct Apiserver {
        char *record_path;
        json_object *minions;   /* array of the recorded bodies, in arrival order */
} Apiserver;

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
        stop_requested = 1;
}

static void json_putp(json_object **j) {
        if (*j)
                json_object_put(*j);
}
#define _cleanup_json_ _cleanup_(json_putp)

static const char *minion_id(json_object *o) {
        json_object *id;

        if (!json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "id", &id) ||
            !json_object_is_type(id, json_type_string) ||
            json_object_get_string_len(id) == 0)
                return NULL;
        return json_object_get_string(id);
}

static bool have_minion(Apiserver *a, const char *id) {
        size_t n = json_object_array_length(a->minions);

        for (size_t i = 0; i < n; i++) {
                const char *other = minion_id(json_object_array_get_idx(a->minions, i));
                if (other && streq(other, id))
                        return true;
        }
        return false;
}

/* Registrations survive a restart of the stand-in (the real apiserver keeps
 * them in etcd), so a repeat after a restart is still a 409. */
static int load_records(Apiserver *a) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t size = 0;

        f = fopen(a->record_path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        while (getline(&line, &size, f) >= 0) {
                json_object *o = json_tokener_parse(line);
                if (!o)
                        continue;
                if (!minion_id(o)) {
                        json_object_put(o);
                        continue;
                }
                json_object_array_add(a->minions, o);
        }
        return 0;
}

static int append_record(Apiserver *a, json_object *o) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *line = NULL;

        if (asprintf(&line, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                return -ENOMEM;
        fd = open(a->record_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, line, strlen(line)) != (ssize_t) strlen(line))
                return errno > 0 ? -errno : -EIO;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

static int status_body(int fd, int code, const char *reason, const char *message) {
        _cleanup_json_ json_object *s = json_object_new_object();

        json_object_object_add(s, "kind", json_object_new_string("Status"));
        json_object_object_add(s, "apiVersion", json_object_new_string("v1beta1"));
        json_object_object_add(s, "status", json_object_new_string(code < 300 ? "Success" : "Failure"));
        json_object_object_add(s, "reason", json_object_new_string(reason));
        json_object_object_add(s, "message", json_object_new_string(message));
        json_object_object_add(s, "code", json_object_new_int(code));
        return http_write_response(fd, code, "application/json",
                                   json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN));
}

static int handle_post(Apiserver *a, int fd, const HttpRequest *req) {
        _cleanup_json_ json_object *o = NULL;
        const char *id;
        int r;

        o = json_tokener_parse(req->body);
        id = o ? minion_id(o) : NULL;
        if (!id) {
                fprintf(stderr, "apiserver stand-in: rejected a registration without an id: %s\n", req->body);
                return status_body(fd, 400, "BadRequest", "body must be a JSON object with a string \"id\"");
        }
        if (have_minion(a, id)) {
                fprintf(stderr, "apiserver stand-in: minion %s already registered (409)\n", id);
                return status_body(fd, 409, "AlreadyExists", "minion already exists");
        }
        r = append_record(a, o);
        if (r < 0) {
                fprintf(stderr, "apiserver stand-in: failed to record minion %s: %s\n", id, strerror(-r));
                return status_body(fd, 500, "InternalError", "failed to record the minion");
        }
        fprintf(stderr, "apiserver stand-in: registered minion %s\n", id);
        json_object_array_add(a->minions, json_object_get(o));
        return http_write_response(fd, 201, "application/json", req->body);
}

static int handle_list(Apiserver *a, int fd) {
        _cleanup_json_ json_object *l = json_object_new_object();

        json_object_object_add(l, "kind", json_object_new_string("MinionList"));
        json_object_object_add(l, "apiVersion", json_object_new_string("v1beta1"));
        json_object_object_add(l, "items", json_object_get(a->minions));
        return http_write_response(fd, 200, "application/json",
                                   json_object_to_json_string_ext(l, JSON_C_TO_STRING_PLAIN));
}

static void handle_connection(Apiserver *a, int fd) {
        /* One slow or silent client must not stop the others for long. */
        struct timeval tv = { .tv_sec = 5 };
        HttpRequest req;
        int r;

        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        r = http_read_request(fd, &req);
        if (r < 0) {
                fprintf(stderr, "apiserver stand-in: bad request: %s\n", strerror(-r));
                (void) status_body(fd, r == -EFBIG ? 413 : 400, "BadRequest", "malformed request");
                return;
        }

        /* The query string plays no part here. */
        req.path[strcspn(req.path, "?")] = 0;

        if (streq(req.path, MINIONS_PATH) && streq(req.method, "POST"))
                r = handle_post(a, fd, &req);
        else if (streq(req.path, MINIONS_PATH) && streq(req.method, "GET"))
                r = handle_list(a, fd);
        else if (streq(req.path, "/healthz") && streq(req.method, "GET"))
                r = http_write_response(fd, 200, "text/plain", "ok");
        else if (streq(req.path, MINIONS_PATH))
                r = status_body(fd, 405, "MethodNotAllowed", "only GET and POST");
        else
                r = status_body(fd, 404, "NotFound", "not served by the stand-in");
        if (r < 0)
                fprintf(stderr, "apiserver stand-in: failed to answer %s %s: %s\n",
                        req.method, req.path, strerror(-r));
        http_request_done(&req);
}

int apiserver_run(const char *address, unsigned port, const char *state_dir) {
        struct sigaction sa = { .sa_handler = on_stop };  /* no SA_RESTART: accept() returns EINTR */
        _cleanup_close_ int lfd = -1;
        Apiserver a = {};
        int r;

        if (mkdir(state_dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "apiserver stand-in: cannot create %s: %m\n", state_dir);
                return 1;
        }
        if (asprintf(&a.record_path, "%s/minions.jsonl", state_dir) < 0)
                return 1;
        a.minions = json_object_new_array();
        if (!a.minions)
                return 1;
        r = load_records(&a);
        if (r < 0)
                fprintf(stderr, "apiserver stand-in: cannot read %s, starting empty: %s\n",
                        a.record_path, strerror(-r));

        lfd = http_listen(address, port);
        if (lfd < 0) {
                fprintf(stderr, "apiserver stand-in: cannot listen on %s:%u: %s\n",
                        address, port, strerror(-lfd));
                r = 1;
                goto finish;
        }
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_UNBLOCK, &ss, NULL);  /* main() blocked them until now */
        fprintf(stderr, "apiserver stand-in: listening on %s:%u, %zu minions recorded in %s\n",
                address, port, json_object_array_length(a.minions), a.record_path);

        while (!stop_requested) {
                _cleanup_close_ int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        fprintf(stderr, "apiserver stand-in: accept failed: %m\n");
                        r = 1;
                        goto finish;
                }
                handle_connection(&a, fd);
        }
        fprintf(stderr, "apiserver stand-in: stopping\n");
        r = 0;
finish:
        json_object_put(a.minions);
        free(a.record_path);
        return r;
}
