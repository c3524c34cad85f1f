/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "artifact.h"
#include "backoff.h"
#include "config.h"
#include "curl-event.h"
#include "etcd-client.h"
#include "machines.h"
#include "minion-register.h"
#include "netsetup.h"
#include "network-config.h"
#include "overlay-sync.h"
#include "peer-watch.h"
#include "registry.h"
#include "role-units.h"
#include "subnet-lease.h"
#include "unit-control.h"

/* The bring-up steps. daemon.c's table says what each is (name, the
 * record's state meanwhile, start, cancel) and which steps it needs done
 * before it starts: steps that do not need each other run side by side.
 * The record's state is that of the earliest unfinished step. */
typedef enum Step {
        STEP_LINK,
        STEP_REGISTER,
        STEP_NETWORK,
        STEP_DOCKER,                    /* the runtime step ("runtime" in the record) */
        STEP_ARTIFACTS,
        STEP_CLUSTER,
        STEP_UNITS,
        STEP_ANNOUNCE,
        STEP_READY,
        _STEP_MAX,
} Step;

typedef struct NodeAgent NodeAgent;

/* Where one step is; daemon.c's alone. */
typedef struct StepRun {
        NodeAgent *d;
        bool started;                   /* since the last reset */
        bool busy;                      /* started and not to be started again: work, a wait or a retry is in flight */
        bool done;
        Backoff backoff;
        sd_event_source *retry;
        char *error;                    /* why it waits or is failed, or NULL */
        char *reason;                   /* with error: what it waits for ("master", "unit:x") */
        bool terminal;                  /* error needs an operator: state failed */
} StepRun;

/* Each step's work in flight lives in its own struct, written only by the
 * file that owns it; cancel() drops it. */

/* daemon-docker.c */
typedef struct RuntimeStep {
        char *unit_state;               /* the unit's ActiveState, NULL until known */
        char *state_error;              /* why systemd could not tell it (watch retrying) */
        bool want_state;                /* start() waits for the state */
        bool job_pending;
        bool start_only;                /* the job is a StartUnit: Docker was down, its options current */
        unsigned gets_pending;          /* ExecMainStartTimestamp Gets in flight */
        unsigned gets_stale;            /* ... of which a cancel dropped the first ones */
        unsigned job_failures;          /* restart jobs not "done" in a row */
        bool limit_reset;               /* reset its start rate limit once already */
} RuntimeStep;

/* daemon-roles.c */
#define ARTIFACTS_PARALLEL 3            /* downloads at a time */

typedef struct ArtifactsStep {
        uint8_t *state;                 /* per artifact of the role: ARTIFACT_* in daemon-roles.c */
        ArtifactFetch *fetch[ARTIFACTS_PARALLEL];
        size_t index[ARTIFACTS_PARALLEL];       /* the artifact each fetch is for */
} ArtifactsStep;

typedef struct ClusterStep {
        MasterWait *wait;               /* until a master's record says ready */
        char **master_ips;              /* read by the announce step */
} ClusterStep;

typedef struct AnnounceStep {
        MinionRegister *post;
} AnnounceStep;

struct NodeAgent {
        const AgentConfig *cfg;
        sd_event *event;
        char machine_id[33];            /* raw: the VTEP MAC's input, never published */
        char node_id[33];               /* app-specific: names the node in etcd */

        Step step;                      /* the earliest unfinished step: the record's state */
        StepRun run[_STEP_MAX];
        char *net_error;                /* the network failed after its step: cleared when it recovers */
        const char *net_reason;         /* with net_error: NULL for "network", or "masq" */
        char *etcd_error;               /* the machine record cannot be written: STATUS= and journal only */
        bool notified_ready;

        ns_ctx *ns;
        ns_link_info link;
        ns_overlay_config overlay_cfg;
        OverlaySync *overlay;           /* flannel.<vni> and its peers, for the agent's whole life */
        bool restore_tried;             /* the persisted snapshot was looked at */
        size_t n_peers;                 /* in the last set the watch delivered */
        unsigned peer_lists;            /* the watch's lists when it delivered it */
        sd_event_source *snapshot_timer;/* peers.json to be written */

        CurlLoop *curl;
        EtcdClient *etcd;
        Registry *registry;
        NetworkConfig netcfg;
        EtcdRequest *netcfg_req;
        SubnetLease *lease;
        PeerWatch *peer_watch;
        bool have_subnet;
        Cidr subnet;
        bool files_changed;
        /* [network] ip-masq's table (masq.h) */
        bool masq_synced;               /* the kernel has what the config wants, for masq_net/masq_subnet */
        Cidr masq_net, masq_subnet;     /* what the table was made for */
        Backoff masq_backoff;
        sd_event_source *masq_retry;    /* it failed after the network step: retrying by itself */

        UnitControl *units;
        RoleUnits *role;
        bool units_failing;             /* a role unit failed after the bring-up */

        RuntimeStep rt;
        ArtifactsStep art;
        ClusterStep cl;
        AnnounceStep ann;
};

/* Starts every step whose steps before it are done and which is not
 * started yet. */
void daemon_advance(NodeAgent *d);
/* Started (since the last reset) and not done. */
bool daemon_step_running(NodeAgent *d, Step s);
/* Step s succeeded: clear its error and retry, start what waited for it. */
void daemon_step_done(NodeAgent *d, Step s);
/* Step s could not finish for now: the node is waiting, with the step's
 * own reason (network, master, unit:<runtime unit>, ...), and the step is
 * started again after a backoff. The other steps go on. */
void daemon_step_failed(NodeAgent *d, Step s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with an explicit reason ("master", "unit:kubelet.service",
 * "artifact:kubelet"). */
void daemon_step_waiting(NodeAgent *d, Step s, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Something only an operator can fix (a wrong sha256, an HTTP 4xx, a
 * network config in etcd incompatible with ours): the node is failed. The
 * step is still retried with backoff, so a fix is picked up. */
void daemon_step_failed_terminal(NodeAgent *d, Step s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void daemon_update_status(NodeAgent *d);
/* The subnet lease moved to another subnet once the runtime step has
 * started: every step that needs the network (the runtime step and all
 * after it) is canceled (downloads, the master wait, the POST, the
 * runtime's restart job) and starts again, the runtime step restarting
 * the runtime on the new subnet. */
void daemon_subnet_moved(NodeAgent *d);

/* daemon-docker.c */
void daemon_docker_step(NodeAgent *d);
void daemon_docker_cancel(NodeAgent *d);
void daemon_docker_free(NodeAgent *d);
void daemon_on_docker_state(const char *unit, const UnitState *st, void *userdata);

/* daemon-containerd.c: the runtime step for kind = containerd, which
 * daemon_docker_step() hands over to. */
void daemon_containerd_step(NodeAgent *d);

/* The runtime's unit is watched: Docker's to restart it, containerd's to
 * wait for it. */
static inline bool daemon_runtime_watched(const AgentConfig *c) {
        return c->runtime.kind == RUNTIME_CONTAINERD || c->runtime.restart;
}

/* daemon-roles.c */
void daemon_artifacts_step(NodeAgent *d);
void daemon_artifacts_cancel(NodeAgent *d);
void daemon_cluster_step(NodeAgent *d);
void daemon_cluster_cancel(NodeAgent *d);
void daemon_units_step(NodeAgent *d);
void daemon_announce_step(NodeAgent *d);
void daemon_announce_cancel(NodeAgent *d);
void daemon_roles_free(NodeAgent *d);

/* daemon-network.c */
int daemon_network_start(NodeAgent *d);
void daemon_network_free(NodeAgent *d);
int daemon_link_setup(NodeAgent *d);
/* SIGHUP: read the peers from etcd again and compare the kernel with them. */
void daemon_network_reload(NodeAgent *d);
