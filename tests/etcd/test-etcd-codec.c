/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: base64, the watch stream splitter, etcd's JSON shapes. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "etcd-client.h"
#include "etcd-json.h"
#include "etcd-stream.h"
#include "macro.h"

static void test_base64_roundtrip(void **state) {
        static const char *const cases[][2] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
                { "/coreos.com/network/subnets/", "L2NvcmVvcy5jb20vbmV0d29yay9zdWJuZXRzLw==" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *enc = NULL;
                _cleanup_free_ void *dec = NULL;
                size_t n;

                assert_int_equal(base64_encode(cases[i][0], strlen(cases[i][0]), &enc), 0);
                assert_string_equal(enc, cases[i][1]);
                assert_int_equal(base64_decode(cases[i][1], &dec, &n), 0);
                assert_int_equal(n, strlen(cases[i][0]));
                assert_memory_equal(dec, cases[i][0], n);
                assert_int_equal(((char *) dec)[n], 0);
        }
}

static void test_base64_binary(void **state) {
        uint8_t all[256];
        _cleanup_free_ char *enc = NULL;
        _cleanup_free_ void *dec = NULL;
        size_t n;

        for (unsigned i = 0; i < 256; i++)
                all[i] = (uint8_t) i;
        assert_int_equal(base64_encode(all, sizeof all, &enc), 0);
        assert_int_equal(base64_decode(enc, &dec, &n), 0);
        assert_int_equal(n, 256);
        assert_memory_equal(dec, all, 256);
}

static void test_base64_rejects(void **state) {
        static const char *const bad[] = {
                "Zg=", "Zg", "Z===", "Zm9v!A==", "Zh==", "Zm9=", "Zg==Zg==", "=Zg=", "Zm 9v", "Zm9v\n",
                /* EVP_DecodeBlock() alone accepts these. */
                " Zm9v", "Zm9v ", "\tZm9vYmFy\n", "Zm9v\nYmFy", "Zm\r\n9v", "Zg=\n", "Zm9v====", "Zm9vZ===",
                "Zm=v", "Z=9v", "Zm9v-_==", "Zm9v\x80===", "Zm9v.A==", "====",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                void *dec = NULL;

                assert_int_equal(base64_decode(bad[i], &dec, NULL), -EINVAL);
                assert_null(dec);
        }
}

typedef struct Collected {
        char *objects[16];
        size_t n;
} Collected;

static int collect(json_object *o, void *userdata) {
        Collected *c = userdata;

        assert_true(json_object_is_type(o, json_type_object));
        assert_true(c->n < 16);
        c->objects[c->n++] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return 0;
}

static void collected_free(Collected *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->objects[i]);
        c->n = 0;
}

static const char stream_text[] =
        "{\"result\":{\"created\":true}}\n"
        "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"value\":\"e30=\"}}],\"x\":\"a}b{\\\"c\\\\\"}}"
        "  \r\n\t{\"result\":{\"canceled\":true,\"compact_revision\":\"5\"}}";

static void test_stream_split_everywhere(void **state) {
        size_t len = strlen(stream_text);

        /* Any split into two chunks, and byte by byte, yields the same three objects. */
        for (size_t cut = 0; cut <= len; cut++) {
                EtcdStream s;
                Collected c = {};

                etcd_stream_init(&s, 4096);
                assert_int_equal(etcd_stream_feed(&s, stream_text, cut, collect, &c), 0);
                assert_int_equal(etcd_stream_feed(&s, stream_text + cut, len - cut, collect, &c), 0);
                assert_int_equal(c.n, 3);
                assert_string_equal(c.objects[0], "{\"result\":{\"created\":true}}");
                assert_string_equal(c.objects[1],
                        "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"value\":\"e30=\"}}],\"x\":\"a}b{\\\"c\\\\\"}}");
                assert_string_equal(c.objects[2], "{\"result\":{\"canceled\":true,\"compact_revision\":\"5\"}}");
                assert_false(etcd_stream_pending(&s));
                collected_free(&c);
                etcd_stream_done(&s);
        }
        {
                EtcdStream s;
                Collected c = {};

                etcd_stream_init(&s, 4096);
                for (size_t i = 0; i < len; i++)
                        assert_int_equal(etcd_stream_feed(&s, stream_text + i, 1, collect, &c), 0);
                assert_int_equal(c.n, 3);
                collected_free(&c);
                etcd_stream_done(&s);
        }
}

/* Two messages cut into three chunks at every pair of offsets. */
static void test_stream_two_messages_every_cut(void **state) {
        static const char text[] = "{\"result\":{\"header\":{\"revision\":\"7\"},\"created\":true}}\r\n"
                                   "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}}],\"s\":\"}{\\\"\"}}";
        size_t len = strlen(text);

        for (size_t a = 0; a <= len; a++)
                for (size_t b = a; b <= len; b++) {
                        EtcdStream s;
                        Collected c = {};

                        etcd_stream_init(&s, 4096);
                        assert_int_equal(etcd_stream_feed(&s, text, a, collect, &c), 0);
                        assert_int_equal(etcd_stream_feed(&s, text + a, b - a, collect, &c), 0);
                        assert_int_equal(etcd_stream_feed(&s, text + b, len - b, collect, &c), 0);
                        assert_int_equal(c.n, 2);
                        assert_string_equal(c.objects[0], "{\"result\":{\"header\":{\"revision\":\"7\"},\"created\":true}}");
                        assert_string_equal(c.objects[1], "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}}],\"s\":\"}{\\\"\"}}");
                        assert_false(etcd_stream_pending(&s));
                        collected_free(&c);
                        etcd_stream_done(&s);
                }
}

static void test_stream_malformed(void **state) {
        static const char *const bad[] = {
                "{\"a\":1,}", "{\"a\":tru}", "{\"a\" 1}", "{\"a\":[1,]}", "{\"a\":\"\\x\"}", "{\"a\":1]",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                EtcdStream s;
                Collected c = {};

                etcd_stream_init(&s, 4096);
                /* A good object first: it is handed out, the bad one is not. */
                assert_int_equal(etcd_stream_feed(&s, "{\"ok\":1}", 8, collect, &c), 0);
                assert_int_equal(etcd_stream_feed(&s, bad[i], strlen(bad[i]), collect, &c), -EBADMSG);
                assert_int_equal(c.n, 1);
                collected_free(&c);
                etcd_stream_done(&s);
        }
}

static void test_stream_errors(void **state) {
        EtcdStream s;
        Collected c = {};
        char big[200];

        etcd_stream_init(&s, 4096);
        assert_int_equal(etcd_stream_feed(&s, "{\"a\":1}x{", 9, collect, &c), -EBADMSG);
        assert_int_equal(c.n, 1);
        /* Stays failed until reset. */
        assert_int_equal(etcd_stream_feed(&s, "{}", 2, collect, &c), -EBADMSG);
        etcd_stream_reset(&s);
        assert_int_equal(etcd_stream_feed(&s, "{}", 2, collect, &c), 0);
        assert_int_equal(c.n, 2);
        collected_free(&c);
        etcd_stream_done(&s);

        etcd_stream_init(&s, 64);
        memset(big, ' ', sizeof big);
        big[0] = '{';
        assert_int_equal(etcd_stream_feed(&s, big, sizeof big, collect, &c), -E2BIG);
        etcd_stream_done(&s);

        /* The limit holds across chunks, inside a string too; one at the
         * limit still passes. */
        etcd_stream_init(&s, 64);
        assert_int_equal(etcd_stream_feed(&s, "{\"a\":\"", 6, collect, &c), 0);
        for (unsigned i = 0; i < 57; i++)
                assert_int_equal(etcd_stream_feed(&s, "x", 1, collect, &c), 0);
        assert_int_equal(etcd_stream_feed(&s, "x", 1, collect, &c), -E2BIG);
        etcd_stream_done(&s);
        etcd_stream_init(&s, 64);
        memset(big, 'x', sizeof big);
        memcpy(big, "{\"a\":\"", 6);
        memcpy(big + 62, "\"}", 2);
        assert_int_equal(etcd_stream_feed(&s, big, 64, collect, &c), 0);
        assert_int_equal(c.n, 1);
        collected_free(&c);
        etcd_stream_done(&s);

        /* A partial object is pending, not delivered. */
        etcd_stream_init(&s, 4096);
        assert_int_equal(etcd_stream_feed(&s, "{\"a\":\"}", 7, collect, &c), 0);
        assert_int_equal(c.n, 0);
        assert_true(etcd_stream_pending(&s));
        etcd_stream_done(&s);
}

static void test_int64(void **state) {
        _cleanup_(json_object_putp) json_object *o =
                json_tokener_parse("{\"s\":\"9223372036854775807\",\"n\":9007199254740993,\"neg\":\"-5\","
                                   "\"bad\":\"12x\",\"f\":1.5,\"empty\":\"\",\"big\":\"9223372036854775808\"}");
        _cleanup_(json_object_putp) json_object *v = etcd_json_new_int64(INT64_MAX);
        int64_t x;

        assert_non_null(o);
        assert_int_equal(etcd_json_get_int64(o, "s", &x), 0);
        assert_true(x == INT64_MAX);
        /* 2^53 + 1: lost if it ever went through a double. */
        assert_int_equal(etcd_json_get_int64(o, "n", &x), 0);
        assert_true(x == 9007199254740993LL);
        assert_int_equal(etcd_json_get_int64(o, "neg", &x), 0);
        assert_true(x == -5);
        assert_int_equal(etcd_json_get_int64(o, "missing", &x), 0);
        assert_true(x == 0);
        assert_int_equal(etcd_json_get_int64(o, "bad", &x), -EBADMSG);
        assert_int_equal(etcd_json_get_int64(o, "f", &x), -EBADMSG);
        assert_int_equal(etcd_json_get_int64(o, "empty", &x), -EBADMSG);
        assert_int_equal(etcd_json_get_int64(o, "big", &x), -EBADMSG);
        assert_string_equal(json_object_get_string(v), "9223372036854775807");
}

static void test_range_result(void **state) {
        static const char body[] =
                "{\"header\":{\"revision\":\"42\"},\"kvs\":[{\"key\":\"L2E=\",\"create_revision\":\"3\","
                "\"mod_revision\":\"40\",\"version\":\"7\",\"value\":\"aGk=\",\"lease\":\"7587869999999999999\"},"
                "{\"key\":\"L2I=\",\"mod_revision\":\"41\"}],\"count\":\"2\",\"more\":true}"
                "Grpc-Trailer-Content-Type: application/grpc";
        _cleanup_(json_object_putp) json_object *o = etcd_json_parse_first(body, strlen(body));
        EtcdResult r;

        assert_non_null(o);
        assert_int_equal(etcd_result_from_json(o, &r), 0);
        assert_true(r.revision == 42);
        assert_int_equal(r.n_kvs, 2);
        assert_string_equal(r.kvs[0].key, "/a");
        assert_string_equal(r.kvs[0].value, "hi");
        assert_int_equal(r.kvs[0].value_size, 2);
        assert_true(r.kvs[0].lease == 7587869999999999999LL);
        assert_true(r.kvs[0].mod_revision == 40 && r.kvs[0].version == 7 && r.kvs[0].create_revision == 3);
        assert_string_equal(r.kvs[1].value, "");
        assert_true(r.count == 2 && r.more);
        etcd_result_done(&r);
}

static void test_txn_and_lease_results(void **state) {
        _cleanup_(json_object_putp) json_object *txn = json_tokener_parse(
                "{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_put\":{}},"
                "{\"response_range\":{\"kvs\":[{\"key\":\"eA==\",\"value\":\"eQ==\"}],\"count\":\"1\"}}]}");
        _cleanup_(json_object_putp) json_object *ka = json_tokener_parse(
                "{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"2324035650234202630\",\"TTL\":\"5\"}}");
        _cleanup_(json_object_putp) json_object *gone = json_tokener_parse(
                "{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"1234\"}}");
        EtcdResult r;

        assert_int_equal(etcd_result_from_json(txn, &r), 0);
        assert_false(r.succeeded);
        assert_int_equal(r.n_kvs, 1);
        assert_string_equal(r.kvs[0].key, "x");
        assert_string_equal(r.kvs[0].value, "y");
        etcd_result_done(&r);

        assert_int_equal(etcd_result_from_json(ka, &r), 0);
        assert_true(r.lease_id == 2324035650234202630LL && r.ttl == 5);
        etcd_result_done(&r);

        /* keepalive of a lease that is gone: no TTL */
        assert_int_equal(etcd_result_from_json(gone, &r), 0);
        assert_true(r.ttl == 0);
        etcd_result_done(&r);
}

static void test_watch_response(void **state) {
        _cleanup_(json_object_putp) json_object *ev = json_tokener_parse(
                "{\"result\":{\"header\":{\"revision\":\"12\"},\"events\":["
                "{\"kv\":{\"key\":\"YQ==\",\"value\":\"MQ==\",\"mod_revision\":\"11\"}},"
                "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Yg==\",\"mod_revision\":\"12\"},"
                "\"prev_kv\":{\"key\":\"Yg==\",\"value\":\"Mg==\"}}]}}");
        _cleanup_(json_object_putp) json_object *compacted = json_tokener_parse(
                "{\"result\":{\"header\":{},\"canceled\":true,\"compact_revision\":\"5\"}}");
        _cleanup_(json_object_putp) json_object *bad = json_tokener_parse(
                "{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!\"}}]}}");
        EtcdWatchResponse w;

        assert_int_equal(etcd_watch_response_from_json(ev, &w), 0);
        assert_int_equal(w.n_events, 2);
        assert_int_equal(w.events[0].type, ETCD_EVENT_PUT);
        assert_string_equal(w.events[0].kv.value, "1");
        assert_int_equal(w.events[1].type, ETCD_EVENT_DELETE);
        assert_true(w.events[1].has_prev_kv);
        assert_string_equal(w.events[1].prev_kv.value, "2");
        assert_true(w.revision == 12 && w.events[1].kv.mod_revision == 12);
        etcd_watch_response_done(&w);

        assert_int_equal(etcd_watch_response_from_json(compacted, &w), 0);
        assert_true(w.canceled && w.compact_revision == 5);
        etcd_watch_response_done(&w);

        assert_int_equal(etcd_watch_response_from_json(bad, &w), -EBADMSG);
}

static void test_prefix_end_and_errors(void **state) {
        _cleanup_(json_object_putp) json_object *err = json_tokener_parse(
                "{\"error\":\"etcdserver: requested lease not found\",\"code\":5}");
        char *e;
        size_t n;
        const char *m;
        int code;

        assert_int_equal(etcd_prefix_range_end("/a/", &e, &n), 0);
        assert_string_equal(e, "/a0");
        assert_int_equal(n, 3);
        free(e);
        assert_int_equal(etcd_prefix_range_end("a\xff", &e, &n), 0);
        assert_string_equal(e, "b");
        free(e);
        assert_int_equal(etcd_prefix_range_end("\xff", &e, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(e[0], 0);
        free(e);

        assert_int_equal(etcd_json_error(err, &m, &code), 0);
        assert_string_equal(m, "etcdserver: requested lease not found");
        assert_int_equal(code, 5);
        assert_null(etcd_json_parse_first("Not Found\n", 10));
}

static void test_txn_json(void **state) {
        _cleanup_(etcd_txn_freep) EtcdTxn *t = etcd_txn_new();
        _cleanup_free_ char *json = NULL;

        assert_non_null(t);
        assert_int_equal(etcd_txn_compare(t, "k", ETCD_COMPARE_VERSION, ETCD_COMPARE_EQUAL, 0, NULL), 0);
        assert_int_equal(etcd_txn_compare(t, "k", ETCD_COMPARE_MOD, ETCD_COMPARE_LESS, 7587869999999999999LL, NULL), 0);
        assert_int_equal(etcd_txn_compare(t, "k", ETCD_COMPARE_VALUE, ETCD_COMPARE_NOT_EQUAL, 0, "v"), 0);
        assert_int_equal(etcd_txn_compare(t, "k", ETCD_COMPARE_VALUE, ETCD_COMPARE_EQUAL, 0, NULL), -EINVAL);
        assert_int_equal(etcd_txn_put(t, true, "k", "v", 42), 0);
        assert_int_equal(etcd_txn_delete(t, true, "d/", true), 0);
        assert_int_equal(etcd_txn_range(t, false, "k", false), 0);
        assert_int_equal(etcd_txn_to_json(t, &json), 0);
        assert_string_equal(json,
                "{\"compare\":["
                "{\"key\":\"aw==\",\"target\":\"VERSION\",\"result\":\"EQUAL\",\"version\":\"0\"},"
                "{\"key\":\"aw==\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"7587869999999999999\"},"
                "{\"key\":\"aw==\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"value\":\"dg==\"}],"
                "\"success\":[{\"request_put\":{\"key\":\"aw==\",\"value\":\"dg==\",\"lease\":\"42\"}},"
                "{\"request_delete_range\":{\"key\":\"ZC8=\",\"range_end\":\"ZDA=\"}}],"
                "\"failure\":[{\"request_range\":{\"key\":\"aw==\"}}]}");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64_roundtrip),
                cmocka_unit_test(test_base64_binary),
                cmocka_unit_test(test_base64_rejects),
                cmocka_unit_test(test_stream_split_everywhere),
                cmocka_unit_test(test_stream_two_messages_every_cut),
                cmocka_unit_test(test_stream_malformed),
                cmocka_unit_test(test_stream_errors),
                cmocka_unit_test(test_int64),
                cmocka_unit_test(test_range_result),
                cmocka_unit_test(test_txn_and_lease_results),
                cmocka_unit_test(test_watch_response),
                cmocka_unit_test(test_prefix_end_and_errors),
                cmocka_unit_test(test_txn_json),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
