/* SPDX-License-Identifier: Apache-2.0 */
/* Machine records under <prefix>/machines/, as any node (or etcd writer)
 * publishes them; records are separated by NUL bytes. The agent reads
 * master addresses from them. */
#include "fuzz.h"
#include "ip4-util.h"
#include "machines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EtcdKv kvs[16] = {};
        EtcdResult res = { .kvs = kvs };
        MachineRecord *m = NULL;
        char **ips = NULL;
        size_t n = 0;
        uint32_t ip;

        for (size_t off = 0; off <= size && res.n_kvs < 16;) {
                const uint8_t *end = memchr(data + off, 0, size - off);
                size_t len = end ? (size_t) (end - (data + off)) : size - off;

                kvs[res.n_kvs].key = (char *) "/corekube/machines/x";
                kvs[res.n_kvs].value = fuzz_string(data + off, len);
                kvs[res.n_kvs].value_size = len;
                if (!kvs[res.n_kvs].value)
                        break;
                res.n_kvs++;
                off += len + 1;
        }

        if (machines_parse(&res, &m, &n) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        fuzz_check(m[i].name && m[i].role);
                        if (i > 0)
                                fuzz_check(strcmp(m[i - 1].name, m[i].name) <= 0);
                        fuzz_check(m[i].n_active <= m[i].n_units);
                }
                machines_free(m, n);
                free(m);
        }
        if (machines_master_ips(&res, false, &ips) >= 0) {
                for (char **p = ips; *p; p++) {
                        fuzz_check(ip4_parse(*p, &ip) >= 0);
                        free(*p);
                }
                free(ips);
        }
        for (size_t i = 0; i < res.n_kvs; i++)
                free(kvs[i].value);
        return 0;
}
