/* SPDX-License-Identifier: Apache-2.0 */
/* An etcd gateway's answer, as a server (or whoever answers in its place)
 * sends it: decoded as every kind of result the client asks for. */
#include "etcd-json.h"
#include "fuzz.h"
#include "machines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *o = etcd_json_parse_first((const char *) data, size);
        EtcdResult res = {};
        EtcdWatchResponse w = {};
        const char *message;
        int code;

        if (!o)
                return 0;
        if (etcd_result_from_json(o, &res) >= 0) {
                MachineRecord *m = NULL;
                size_t n = 0;
                char **ips = NULL;

                for (size_t i = 0; i < res.n_kvs; i++)
                        fuzz_check(res.kvs[i].key && res.kvs[i].value &&
                                   res.kvs[i].value[res.kvs[i].value_size] == '\0');
                if (machines_parse(&res, &m, &n) >= 0) {
                        machines_free(m, n);
                        free(m);
                }
                if (machines_master_ips(&res, false, &ips) >= 0)
                        for (char **p = ips; *p; p++)
                                free(*p);
                free(ips);
                etcd_result_done(&res);
        }
        if (etcd_watch_response_from_json(o, &w) >= 0) {
                for (size_t i = 0; i < w.n_events; i++)
                        fuzz_check(w.events[i].kv.key && w.events[i].kv.value);
                etcd_watch_response_done(&w);
        }
        /* The client matches on the message: it must be a string. */
        if (etcd_json_error(o, &message, &code) >= 0)
                fuzz_check(message);
        json_object_put(o);
        return 0;
}
