/* SPDX-License-Identifier: Apache-2.0 */
/* A subnet lease as a peer (or anyone who can write etcd) publishes it: the
 * first line is the key, the rest the value. What is accepted is what the
 * agent would program into the kernel, so it must be inside the network,
 * a unicast address and MAC, and the network's VNI. */
#include "fuzz.h"
#include "ip4-util.h"
#include "subnet-record.h"

#define PREFIX "/coreos.com/network"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *in = fuzz_string(data, size), *value, *reason = NULL, *formatted = NULL;
        NetworkConfig c;
        SubnetRecord rec;
        uint32_t ip;
        int r;

        if (!in)
                return 0;
        value = strchr(in, '\n');
        if (value)
                *value++ = '\0';
        else
                value = (char *) "";
        fuzz_check(network_config_new("10.1.0.0/16", 24, 1, 8472, &c, NULL) >= 0);

        /* We hold 10.1.7.0/24 for 192.168.3.7. */
        r = subnet_record_validate(PREFIX, in, value, &c, 0x0a010700, 0xc0a80307, &rec, &reason);
        if (r == 0) {
                fuzz_check(!reason);
                fuzz_check(rec.len == c.subnet_len);
                fuzz_check((rec.subnet & ip4_mask(c.prefixlen)) == c.network);
                fuzz_check(rec.subnet != 0x0a010700);
                fuzz_check(ip4_is_unicast(rec.public_ip));
                fuzz_check(mac_is_unicast(rec.vtep_mac));
                fuzz_check(rec.vni == c.vni);
                /* What we would write for ourselves parses back the same. */
                fuzz_check(subnet_record_format(rec.public_ip, rec.vtep_mac, rec.vni, &formatted) >= 0);
                fuzz_check(subnet_record_public_ip(formatted, &ip) >= 0 && ip == rec.public_ip);
        } else if (r < 0)
                fuzz_check(reason);
        (void) subnet_record_public_ip(value, &ip);
        free(formatted);
        free(reason);
        free(in);
        return 0;
}
