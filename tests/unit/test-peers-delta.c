/* SPDX-License-Identifier: Apache-2.0 */
/* netsetup's peer deltas without netlink: the desired set changed in place by
 * ns_wanted_apply_delta() must be exactly the set a full reconcile of the
 * resulting peers builds (the monitor judges drift against it), its requests
 * must be the changed peers' alone, and a refused delta changes nothing. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <string.h>

#include "ns-peers.h"

#define POOL 300    /* subnets 10.244.<i>.0/24 (10.244.94.0 is ours) */
#define MACS 64     /* fewer MACs than subnets: peers share them */

static const ns_overlay_config cfg = {
        .vni = 1,
        .network = { 0x0000f40a },      /* 10.244.0.0/15, network order */
        .network_len = 15,
        .subnet = { 0x005ef40a },       /* 10.244.94.0/24 */
        .subnet_len = 24,
};

/* The model: which subnets are peers, with which MAC; a MAC's public IP. */
static struct {
        bool on[POOL];
        unsigned mac[POOL];
        uint32_t mac_ip[MACS];          /* host order */
} model;

static uint64_t rng = 88172645463325252ULL;

static unsigned rnd(unsigned n) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (unsigned) (rng % n);
}

static struct in_addr subnet_of(unsigned i) {
        return (struct in_addr) { htonl(0x0af40000u + (i << 8)) };
}

static ns_peer peer_of(unsigned i, unsigned mac) {
        ns_peer p = { .subnet = subnet_of(i), .subnet_len = 24, .public_ip = { htonl(model.mac_ip[mac]) } };
        uint8_t m[6] = { 0x02, 0, 0, 0, (uint8_t) (mac >> 8), (uint8_t) mac };
        memcpy(p.mac, m, 6);
        return p;
}

static bool usable(unsigned i) {
        return i != 94;
}

static void build(ns_wanted *w, unsigned flags) {
        static ns_peer peers[POOL];
        reconcile rc = {
                .cfg = &cfg,
                .want_neigh.size = sizeof(neigh_entry),
                .want_fdb.size = sizeof(fdb_entry),
                .want_route.size = sizeof(route_entry),
        };
        size_t n = 0;

        for (unsigned i = 0; i < POOL; i++)
                if (model.on[i])
                        peers[n++] = peer_of(i, model.mac[i]);
        assert_int_equal(ns_peers_build_wanted(&rc, peers, n), 0);
        ns_wanted_take(w, &rc, flags);
}

static void assert_same(const ns_wanted *a, const ns_wanted *b) {
        assert_int_equal(a->flags, b->flags);
        assert_int_equal(a->n_neigh, b->n_neigh);
        assert_int_equal(a->n_fdb, b->n_fdb);
        assert_int_equal(a->n_route, b->n_route);
        for (size_t i = 0; i < a->n_neigh; i++) {
                assert_int_equal(a->neigh[i].ip, b->neigh[i].ip);
                assert_memory_equal(a->neigh[i].mac, b->neigh[i].mac, 6);
                assert_int_equal(a->neigh[i].has_mac, b->neigh[i].has_mac);
                assert_int_equal(a->neigh[i].state, b->neigh[i].state);
        }
        for (size_t i = 0; i < a->n_fdb; i++) {
                assert_memory_equal(a->fdb[i].mac, b->fdb[i].mac, 6);
                assert_int_equal(a->fdb[i].dst, b->fdb[i].dst);
                assert_int_equal(a->fdb[i].state, b->fdb[i].state);
                assert_int_equal(a->fdb[i].refs, b->fdb[i].refs);
                assert_false(a->fdb[i].has_port || a->fdb[i].has_vni || a->fdb[i].has_ifindex);
        }
        for (size_t i = 0; i < a->n_route; i++) {
                assert_int_equal(a->route[i].dst, b->route[i].dst);
                assert_int_equal(a->route[i].len, b->route[i].len);
                assert_int_equal(a->route[i].tos, b->route[i].tos);
                assert_int_equal(a->route[i].prio, b->route[i].prio);
                assert_int_equal(a->route[i].gw, b->route[i].gw);
                assert_int_equal(a->route[i].onlink, b->route[i].onlink);
                assert_int_equal(a->route[i].type, b->route[i].type);
        }
}

static void model_init(unsigned n_on) {
        memset(&model, 0, sizeof(model));
        for (unsigned m = 0; m < MACS; m++)
                model.mac_ip[m] = 0xc0a80300u + 10 + m;        /* 192.168.3.(10+m) */
        for (unsigned i = 0; i < n_on; i++)
                if (usable(i)) {
                        model.on[i] = true;
                        model.mac[i] = rnd(MACS);
                }
}

static int delta(ns_wanted *w, const ns_peer *up, size_t n_up, const struct in_addr *rm, size_t n_rm, vec *ops,
                 ns_reconcile_stats *st) {
        *ops = (vec) { .size = sizeof(op) };
        *st = (ns_reconcile_stats) {};
        return ns_wanted_apply_delta(w, &cfg, up, n_up, rm, n_rm, ops, st);
}

/* Random deltas (adds, removals, a peer's new MAC, unchanged ones), each
 * compared with a full build of the model. */
static void test_delta_equals_full_build(void **state) {
        ns_wanted w = {}, full = {};

        model_init(150);
        build(&w, 0);
        for (unsigned round = 0; round < 3000; round++) {
                ns_peer up[6];
                struct in_addr rm[6];
                bool named[POOL] = {};
                size_t n_up = 0, n_rm = 0, k = 1 + rnd(6);
                vec ops;
                ns_reconcile_stats st;

                for (size_t j = 0; j < k; j++) {
                        unsigned i = rnd(POOL);
                        if (!usable(i) || named[i])
                                continue;
                        named[i] = true;
                        if (model.on[i] && rnd(2) == 0) {
                                model.on[i] = false;
                                rm[n_rm++] = subnet_of(i);
                        } else if (!model.on[i] && rnd(4) == 0) {
                                rm[n_rm++] = subnet_of(i);      /* not there: no error, no request */
                        } else {
                                if (!model.on[i] || rnd(2) == 0)
                                        model.mac[i] = rnd(MACS);
                                model.on[i] = true;
                                up[n_up++] = peer_of(i, model.mac[i]);
                        }
                }
                assert_int_equal(delta(&w, up, n_up, rm, n_rm, &ops, &st), 0);
                assert_true(ops.n <= 3 * (n_up + n_rm));
                free(ops.p);
                build(&full, 0);
                assert_same(&w, &full);
        }
        ns_wanted_clear(&w);
        ns_wanted_clear(&full);
}

static void test_delta_requests(void **state) {
        ns_wanted w = {};
        vec ops;
        ns_reconcile_stats st;

        model_init(100);
        build(&w, 0);

        /* A new peer with a new MAC: ARP, FDB, route, in that order. */
        model.mac_ip[63] = 0xc0a80363;
        for (unsigned i = 0; i < POOL; i++)
                if (model.mac[i] == 63)
                        model.on[i] = false;
        ns_wanted_clear(&w);
        build(&w, 0);
        ns_peer p = peer_of(200, 63);
        assert_int_equal(delta(&w, &p, 1, NULL, 0, &ops, &st), 0);
        assert_int_equal(ops.n, 3);
        assert_int_equal(((op *) ops.p)[0].kind, OP_NEIGH_SET);
        assert_int_equal(((op *) ops.p)[1].kind, OP_FDB_SET);
        assert_int_equal(((op *) ops.p)[2].kind, OP_ROUTE_ADD);
        assert_int_equal(st.added, 3);
        free(ops.p);

        /* The same again: nothing to send. */
        assert_int_equal(delta(&w, &p, 1, NULL, 0, &ops, &st), 0);
        assert_int_equal(ops.n, 0);
        free(ops.p);

        /* Gone: route, FDB, ARP deleted, in that order. */
        struct in_addr s = subnet_of(200);
        assert_int_equal(delta(&w, NULL, 0, &s, 1, &ops, &st), 0);
        assert_int_equal(ops.n, 3);
        assert_int_equal(((op *) ops.p)[0].kind, OP_ROUTE_DEL);
        assert_int_equal(((op *) ops.p)[1].kind, OP_FDB_DEL);
        assert_int_equal(((op *) ops.p)[2].kind, OP_NEIGH_DEL);
        assert_int_equal(st.removed, 3);
        free(ops.p);

        /* One of two peers sharing a MAC goes: the FDB entry stays. */
        ns_peer two[2] = { peer_of(200, 63), peer_of(201, 63) };
        assert_int_equal(delta(&w, two, 2, NULL, 0, &ops, &st), 0);
        assert_int_equal(ops.n, 5);
        free(ops.p);
        assert_int_equal(delta(&w, NULL, 0, &s, 1, &ops, &st), 0);
        assert_int_equal(ops.n, 2);
        assert_int_equal(((op *) ops.p)[0].kind, OP_ROUTE_DEL);
        assert_int_equal(((op *) ops.p)[1].kind, OP_NEIGH_DEL);
        free(ops.p);

        /* With NO_REMOVE, as at start: the set shrinks, nothing is deleted. */
        w.flags = NS_RECONCILE_NO_REMOVE;
        s = subnet_of(201);
        assert_int_equal(delta(&w, NULL, 0, &s, 1, &ops, &st), 0);
        assert_int_equal(ops.n, 0);
        assert_int_equal(st.removed, 0);
        free(ops.p);
        ns_wanted_clear(&w);
}

/* Refused deltas change nothing. */
static void test_delta_refused(void **state) {
        ns_wanted w = {}, full = {};
        vec ops;
        ns_reconcile_stats st;

        model_init(100);
        build(&w, 0);
        build(&full, 0);

        /* A MAC in use, with another public IP. */
        unsigned m = model.mac[1];
        ns_peer p = peer_of(200, m);
        p.public_ip.s_addr = htonl(0xc0a803f0);
        assert_int_equal(delta(&w, &p, 1, NULL, 0, &ops, &st), -EINVAL);
        assert_int_equal(ops.n, 0);
        free(ops.p);
        assert_same(&w, &full);

        /* Two new peers with one MAC and two IPs. */
        ns_peer q[2] = { peer_of(200, m), peer_of(201, m) };
        q[0].mac[0] = q[1].mac[0] = 0x06;
        q[1].public_ip.s_addr = htonl(0xc0a803f1);
        assert_int_equal(delta(&w, q, 2, NULL, 0, &ops, &st), -EINVAL);
        free(ops.p);
        assert_same(&w, &full);

        /* An invalid peer (our own subnet), a subnet named twice. */
        ns_peer bad[2] = { peer_of(200, 1), peer_of(94, 1) };
        assert_int_equal(delta(&w, bad, 2, NULL, 0, &ops, &st), -EINVAL);
        free(ops.p);
        struct in_addr s = subnet_of(200);
        assert_int_equal(delta(&w, bad, 1, &s, 1, &ops, &st), -EINVAL);
        free(ops.p);
        assert_same(&w, &full);

        /* All peers of a MAC move to a new IP in one delta: accepted. */
        size_t n = 0;
        ns_peer all[POOL];
        model.mac_ip[m] = 0xc0a803f2;
        for (unsigned i = 0; i < POOL; i++)
                if (model.on[i] && model.mac[i] == m)
                        all[n++] = peer_of(i, m);
        assert_true(n > 0);
        assert_int_equal(delta(&w, all, n, NULL, 0, &ops, &st), 0);
        free(ops.p);
        ns_wanted_clear(&full);
        build(&full, 0);
        assert_same(&w, &full);

        ns_wanted_clear(&w);
        ns_wanted_clear(&full);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_delta_equals_full_build),
                cmocka_unit_test(test_delta_requests),
                cmocka_unit_test(test_delta_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
