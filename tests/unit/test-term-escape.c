/* SPDX-License-Identifier: Apache-2.0 */
/* term-escape.h: what the CLI writes to a terminal for strings from etcd.
 * Every control (C0, DEL, C1) and every byte of an invalid or overlong
 * UTF-8 sequence comes out as \xHH; valid UTF-8 text passes through. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "term-escape.h"

#define ESC(in, out)                                                    \
        do {                                                            \
                char *_e = term_escape(in);                             \
                assert_non_null(_e);                                    \
                assert_string_equal(_e, (out));                         \
                free(_e);                                               \
        } while (0)

#define JSON(in, out)                                                   \
        do {                                                            \
                char *_e = json_escape_unsafe(in);                      \
                assert_non_null(_e);                                    \
                assert_string_equal(_e, (out));                         \
                free(_e);                                               \
        } while (0)

static void test_plain(void **state) {
        ESC("", "");
        ESC("node-1.example", "node-1.example");
        ESC("a b ~ \\ \"q\"", "a b ~ \\ \"q\"");
        assert_null(term_escape(NULL));
}

static void test_c0_del(void **state) {
        ESC("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07");
        ESC("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d");
        ESC("\x01\x1f", "\\x01\\x1f");
        ESC("x\x7fy", "x\\x7fy");
}

static void test_c1(void **state) {
        /* U+0080..U+009F in UTF-8 (CSI is U+009B), each byte escaped. */
        ESC("\xc2\x80", "\\xc2\\x80");
        ESC("a\xc2\x9b" "31mred", "a\\xc2\\x9b31mred");
        ESC("\xc2\x9f", "\\xc2\\x9f");
        /* U+00A0 is the first character after C1: printable. */
        ESC("\xc2\xa0", "\xc2\xa0");
        /* A bare C1 byte is invalid UTF-8 (and a control to 8-bit terminals). */
        ESC("\x9b" "2J", "\\x9b2J");
}

static void test_invalid_utf8(void **state) {
        ESC("\xff\xfe", "\\xff\\xfe");
        ESC("\x80", "\\x80");                           /* lone continuation */
        ESC("a\xc3", "a\\xc3");                         /* truncated at the end */
        ESC("\xc3(", "\\xc3(");                         /* truncated before ASCII */
        ESC("\xe2\x82", "\\xe2\\x82");
        ESC("\xed\xa0\x80", "\\xed\\xa0\\x80");         /* a surrogate, U+D800 */
        ESC("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
        ESC("\xf8\x88\x80\x80\x80", "\\xf8\\x88\\x80\\x80\\x80");
}

static void test_overlong(void **state) {
        ESC("\xc0\x80", "\\xc0\\x80");                  /* NUL */
        ESC("\xc1\x9b", "\\xc1\\x9b");                  /* ESC-ish */
        ESC("\xe0\x80\x9b", "\\xe0\\x80\\x9b");
        ESC("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf");
        ESC("\xf0\x80\x80\x9b", "\\xf0\\x80\\x80\\x9b");
        ESC("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf");
}

static void test_multibyte(void **state) {
        ESC("n\xc3\xb6" "de", "n\xc3\xb6" "de");                        /* ö */
        ESC("\xe2\x82\xac", "\xe2\x82\xac");                            /* € */
        ESC("\xe0\xa0\x80", "\xe0\xa0\x80");                            /* U+0800 */
        ESC("\xef\xbf\xbd", "\xef\xbf\xbd");                            /* U+FFFD */
        ESC("\xf0\x9f\x90\xa7", "\xf0\x9f\x90\xa7");                    /* U+1F427 */
        ESC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");                    /* U+10FFFF */
        assert_int_equal(utf8_sequence_length("\xf0\x9f\x90\xa7"), 4);
        assert_int_equal(utf8_sequence_length("\xc0\xaf"), 0);
}

static void test_buf(void **state) {
        char buf[8];

        /* Truncation never splits an escape or a character. */
        assert_string_equal(term_escape_buf("ab\x1b" "cd", buf, sizeof buf), "ab\\x1bc");
        assert_string_equal(term_escape_buf("abcde\x1b", buf, sizeof buf), "abcde");
        assert_string_equal(term_escape_buf("abcdef\xe2\x82\xac", buf, sizeof buf), "abcdef");
        assert_string_equal(term_escape_buf(NULL, buf, sizeof buf), "");
}

static void test_json(void **state) {
        /* json-c has escaped C0 already; its pretty-printing newlines stay. */
        JSON("{\n  \"a\": \"x\\u001b\"\n}", "{\n  \"a\": \"x\\u001b\"\n}");
        JSON("\"a\x7f" "b\"", "\"a\\u007fb\"");
        JSON("\"\xc2\x9b" "2J\"", "\"\\u009b2J\"");
        JSON("\"\xff\xc0\x80\"", "\"\\u00ff\\u00c0\\u0080\"");
        JSON("\"n\xc3\xb6" "de \xe2\x82\xac\"", "\"n\xc3\xb6" "de \xe2\x82\xac\"");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_c0_del),
                cmocka_unit_test(test_c1),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_overlong),
                cmocka_unit_test(test_multibyte),
                cmocka_unit_test(test_buf),
                cmocka_unit_test(test_json),
        };

        return cmocka_run_group_tests_name("term-escape", tests, NULL, NULL);
}
