/* SPDX-License-Identifier: Apache-2.0 */
/* The env-file writer with hostile values (a subnet or name from etcd that
 * tries to break out of quoting): values are NUL-separated, the first byte
 * of each says quoted or not. A value is either refused, leaving the text
 * as it was, or written as one line that a shell and systemd read back as
 * exactly that value. */
#include "envfile.h"
#include "fuzz.h"

static bool plain_char(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                (c != '\0' && strchr("-_./:,=@+%", c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EnvFile e = {};

        for (size_t off = 0; off < size;) {
                const uint8_t *end = memchr(data + off, 0, size - off);
                size_t len = end ? (size_t) (end - (data + off)) : size - off;
                char *value = fuzz_string(data + off + 1, len > 0 ? len - 1 : 0);
                bool quoted = len > 0 && (data[off] & 1);
                size_t before = e.len;
                int error = e.error;

                if (!value)
                        break;
                if (quoted)
                        envfile_add_quoted(&e, "FLANNEL_Q", value);
                else
                        envfile_add(&e, "FLANNEL_P", value);

                if (e.error) {
                        fuzz_check(e.len == before);
                } else {
                        const char *line = e.text + before;
                        size_t vl = strlen(value);

                        fuzz_check(error == 0);
                        /* KEY=VALUE\n or KEY="VALUE"\n, nothing else */
                        fuzz_check(e.len == before + 10 + vl + 1 + (quoted ? 2 : 0));
                        fuzz_check(memcmp(line + 10 + (quoted ? 1 : 0), value, vl) == 0);
                        fuzz_check(e.text[e.len - 1] == '\n');
                        for (size_t i = 0; i < vl; i++)
                                fuzz_check(plain_char((unsigned char) value[i]) || (quoted && value[i] == ' '));
                }
                free(value);
                off += len + 1;
        }
        if (e.text)
                fuzz_check(strlen(e.text) == e.len);
        envfile_done(&e);
        return 0;
}
