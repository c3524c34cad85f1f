/* SPDX-License-Identifier: Apache-2.0 */
/* artifact.c's check of a file already in place: hashed a chunk per turn of
 * a real sd-event loop (never all at once), the download skipped when the
 * sha256 matches, tried when it does not, and a fetch freed mid-hash gone
 * without a callback. Real files in a temporary directory; the "server" is
 * a closed port on loopback (connection refused), nothing is downloaded. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"

#define BIG (8 * 1024 * 1024)           /* 8 chunks of artifact.c's 1 MiB */

typedef struct fixture {
        char dir[64];
        char path[96];
        sd_event *event;
        CurlLoop *curl;
        Artifact a;
        unsigned calls;
        int error;
        bool changed;
} fixture;

static void on_done(const Artifact *a, int error, const char *message, bool changed, void *userdata) {
        fixture *f = userdata;

        f->calls++;
        f->error = error;
        f->changed = changed;
}

/* Writes len bytes of pattern to the file in place; the artifact's sha256
 * is that of the same bytes, or of other ones when !match. */
static void put_file(fixture *f, size_t len, bool match) {
        uint8_t *buf = malloc(len);
        unsigned hl = 32;
        int fd;

        assert_non_null(buf);
        for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t) (i * 7 + 3);
        fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, len), (ssize_t) len);
        close(fd);
        if (!match)
                buf[len / 2] ^= 1;
        assert_int_equal(EVP_Digest(buf, len, f->a.sha256.v, &hl, EVP_sha256(), NULL), 1);
        free(buf);
}

static int setup(void **state) {
        fixture *f = calloc(1, sizeof *f);

        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/test-artifact-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof f->path, "%s/blob", f->dir);
        f->a = (Artifact) { .name = (char *) "blob", .url = (char *) "http://127.0.0.1:1/blob",
                               .path = f->path, .mode = 0755 };
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(curl_loop_new(f->event, &f->curl), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        curl_loop_free(f->curl);
        sd_event_unref(f->event);
        (void) unlink(f->path);
        (void) rmdir(f->dir);
        free(f);
        return 0;
}

/* Turns of the loop until the callback came (bounded). */
static unsigned run_until_called(fixture *f) {
        unsigned turns = 0;

        while (f->calls == 0 && turns < 10000) {
                assert_true(sd_event_run(f->event, 1000 * 1000) >= 0);
                turns++;
        }
        return turns;
}

static void test_in_place_is_not_fetched(void **state) {
        fixture *f = *state;
        ArtifactFetch *fetch = NULL;

        put_file(f, BIG, true);
        assert_int_equal(artifact_fetch_start(f->event, f->curl, &f->a, on_done, f, &fetch), 0);
        /* Never from within the call. */
        assert_int_equal(f->calls, 0);
        /* A chunk per turn: 8 MiB take more than one. */
        assert_true(run_until_called(f) > 1);
        assert_int_equal(f->calls, 1);
        assert_int_equal(f->error, 0);
        assert_false(f->changed);
        artifact_fetch_free(fetch);
}

static void test_wrong_content_is_fetched(void **state) {
        fixture *f = *state;
        ArtifactFetch *fetch = NULL;

        put_file(f, 3 * 1024 * 1024 + 17, false);
        assert_int_equal(artifact_fetch_start(f->event, f->curl, &f->a, on_done, f, &fetch), 0);
        run_until_called(f);
        /* The download was tried: the closed port refuses it (may pass). */
        assert_int_equal(f->calls, 1);
        assert_int_equal(f->error, -EIO);
        artifact_fetch_free(fetch);
}

static void test_freed_mid_hash(void **state) {
        fixture *f = *state;
        ArtifactFetch *fetch = NULL;

        put_file(f, BIG, true);
        assert_int_equal(artifact_fetch_start(f->event, f->curl, &f->a, on_done, f, &fetch), 0);
        assert_true(sd_event_run(f->event, 0) >= 0);
        assert_true(sd_event_run(f->event, 0) >= 0);
        assert_int_equal(f->calls, 0);
        artifact_fetch_free(fetch);
        /* Nothing of it is left on the loop: it would run now. */
        for (unsigned i = 0; i < 20; i++)
                assert_true(sd_event_run(f->event, 0) >= 0);
        assert_int_equal(f->calls, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_in_place_is_not_fetched, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_content_is_fetched, setup, teardown),
                cmocka_unit_test_setup_teardown(test_freed_mid_hash, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
