/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The machine record <etcd.prefix>/machines/<id> on its own etcd
 * lease (ttl), kept alive at ttl/3; when the lease is lost (expired while etcd
 * was away, or revoked) a new lease is granted and the record written again.
 * State, error, units, subnet and IP can change at any time: changes made in
 * one event loop iteration, or while a write is in flight, go out as one put.
 *
 * Agents before the app-specific ID keyed the record by the raw machine ID.
 * Once registered, a record under <prefix>/machines/<legacy_id> whose "id"
 * and "name" are ours is deleted (once, never fatal: it would expire with the
 * old agent's lease anyway), so that an upgraded node is not listed twice. */

#include <stdbool.h>
#include <stdint.h>

#include "etcd-client.h"
#include "macro.h"

typedef struct Registry Registry;

typedef struct RegistryOptions {
        const char *prefix;         /* etcd.prefix, e.g. "/corekube" */
        const char *machine_id;     /* the app-specific ID (machine-id.h) */
        const char *legacy_id;      /* NULL, or the raw machine ID: see above */
        const char *name;
        const char *role;
        const char *ip;             /* may be NULL until known */
        const char *subnet;         /* may be NULL until known */
        const char *version;        /* agent version */
        uint64_t ttl_usec;          /* 0: 30 s */
} RegistryOptions;

typedef enum RegistryEvent {
        REGISTRY_REGISTERED,        /* the record is in etcd on a (new) lease */
        REGISTRY_WRITTEN,           /* an update reached etcd */
        REGISTRY_LOST,              /* the lease was gone; registering again */
        REGISTRY_FAILED,            /* a write or keepalive failed; retried */
        REGISTRY_RENEWED,           /* a keepalive went through after one failed */
} RegistryEvent;

typedef void (*registry_handler_t)(Registry *r, RegistryEvent event, int error, const char *message, void *userdata);

int registry_new(EtcdClient *client, sd_event *event, const RegistryOptions *o, registry_handler_t cb,
                 void *userdata, Registry **ret);
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);
int registry_start(Registry *r);

/* state: registering, network, runtime, artifacts, units, ready, waiting,
 * failed; error: only with failed (NULL otherwise). */
int registry_set_state(Registry *r, const char *state, const char *error);
/* With a reason (waiting: "master", "unit:<name>", "artifact:<name>"), the
 * record carries "reason" and "message"; without one it is
 * registry_set_state(r, state, message). */
int registry_set_waiting(Registry *r, const char *state, const char *reason, const char *message);
/* active_state NULL removes the unit. */
int registry_set_unit(Registry *r, const char *unit, const char *active_state);
int registry_set_subnet(Registry *r, const char *subnet);
int registry_set_ip(Registry *r, const char *ip);

/* Revokes the lease, which deletes the record ("leave"). */
int registry_leave(Registry *r, etcd_handler_t cb, void *userdata);

/* The record as JSON, with "updated" set to now_usec (CLOCK_REALTIME). */
int registry_format(Registry *r, uint64_t now_usec, char **ret);
int64_t registry_get_lease(Registry *r);
const char *registry_get_key(Registry *r);
