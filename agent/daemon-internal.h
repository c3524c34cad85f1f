/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "artifact.h"
#include "backoff.h"
#include "config.h"
#include "curl-event.h"
#include "etcd-client.h"
#include "minion-register.h"
#include "netsetup.h"
#include "network-config.h"
#include "overlay-sync.h"
#include "peer-watch.h"
#include "registry.h"
#include "role-units.h"
#include "subnet-lease.h"
#include "unit-control.h"

/* The bring-up steps, in order; the record's state follows from the step. */
typedef enum step {
        STEP_LINK,
        STEP_REGISTER,
        STEP_NETWORK,
        STEP_DOCKER,
        STEP_ARTIFACTS,
        STEP_CLUSTER,
        STEP_UNITS,
        STEP_ANNOUNCE,
        STEP_READY,
} step;

typedef struct node_agent {
        const ck_config *cfg;
        sd_event *event;
        char machine_id[33];

        step step;
        bool step_busy;                 /* async work of the step is in flight */
        Backoff backoff;
        sd_event_source *retry;
        char *error;                    /* why the node is failed, or NULL */
        bool net_failed;                /* error is the network's, after its step: cleared when it recovers */
        bool notified_ready;

        ns_ctx *ns;
        ns_link_info link;
        ns_overlay_config overlay_cfg;
        OverlaySync *overlay;           /* flannel.<vni> and its peers, for the agent's whole life */
        bool restore_tried;             /* the persisted snapshot was looked at */
        size_t n_peers;                 /* in the last set the watch delivered */
        unsigned peer_lists;            /* the watch's lists when it delivered it */
        sd_event_source *snapshot_timer;/* peers.json to be written */

        curl_loop *curl;
        EtcdClient *etcd;
        Registry *registry;
        NetworkConfig netcfg;
        EtcdRequest *netcfg_req;
        SubnetLease *lease;
        PeerWatch *peer_watch;
        bool have_subnet;
        ck_cidr subnet;
        bool files_changed;

        unit_ctl *units;
        char *docker_state;
        bool docker_limit_reset;        /* reset its start rate limit once already */
        role_units *role;
        bool units_failing;             /* a role unit failed after the bring-up */

        size_t artifact_next;
        artifact_fetch *fetch;

        EtcdRequest *masters_req;
        EtcdRequest *masters_watch;
        char **master_ips;

        minion_register *announce;
        sd_event_source *watchdog;
} node_agent;

void daemon_advance(node_agent *d);
/* The current step succeeded: clear the error and retry, go on. */
void daemon_step_done(node_agent *d);
void daemon_step_failed(node_agent *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void daemon_update_status(node_agent *d);

/* daemon-docker.c */
void daemon_docker_step(node_agent *d);
void daemon_on_docker_state(const char *unit, const unit_state *st, void *userdata);

/* daemon-roles.c */
void daemon_artifacts_step(node_agent *d);
void daemon_cluster_step(node_agent *d);
void daemon_units_step(node_agent *d);
void daemon_announce_step(node_agent *d);

/* daemon-network.c */
int daemon_network_start(node_agent *d);
void daemon_network_free(node_agent *d);
int daemon_link_setup(node_agent *d);
/* SIGHUP: read the peers from etcd again and compare the kernel with them. */
void daemon_network_reload(node_agent *d);
