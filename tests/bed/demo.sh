#!/bin/bash
# The cluster in a box (README: `make demo`): etcd as the "discovery" node, one
# master and N-1 minions booted as systemd-nspawn containers with real systemd
# and Docker, each running corekube-agent exactly as a cloud node would.
#
#   demo.sh up [NODES]    build what is missing, boot, wait for ready, show proof
#                         (RUNTIME=containerd: the nodes run containerd instead of
#                         Docker, the proof pings between `ctr run --cni` containers)
#   demo.sh down          remove everything (namespaces, containers, mounts)
#   demo.sh status        corekube-agent status, from the master
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BED=${CKB_DEMO_BED:-demo}          # another name runs a second demo beside it
BEDSH=("$HERE/bed.sh" -b "$BED")
STATE=/run/corekube-bed/$BED
READY_TIMEOUT=${CKB_DEMO_TIMEOUT:-300}
RUNTIME=${RUNTIME:-docker}
case $RUNTIME in docker|containerd) ;; *) echo "demo: RUNTIME must be docker or containerd" >&2; exit 64 ;; esac
CTR_IMAGE=docker.io/corekube/busybox:bed         # rootfs.sh's OCI archive
T0=$SECONDS

STEP_T0=
STEP_NAME=
# say TEXT: a new step; the one before gets its duration.
say() {
        step_done
        STEP_T0=$SECONDS
        STEP_NAME=${1%% *}
        printf '\n\033[1m[%4ds] %s\033[0m\n' "$((SECONDS - T0))" "$*"
}
step_done() {
        if [[ -n $STEP_T0 ]]; then
                printf '  step %s done in %d s\n' "$STEP_NAME" "$((SECONDS - STEP_T0))"
        fi
        STEP_T0=
}
fail() {
        printf '\n\033[1;31mdemo: step "%s" failed.\033[0m %s\n' "$1" "${2:-}" >&2
        printf 'Logs: %s/log/ (per step), %s/nodes/NAME/console.log (node consoles).\n' "$STATE" "$STATE" >&2
        printf 'Tear down with: make demo-down\n' >&2
        exit 1
}

node_names() {
        local n=$1
        echo master
        for ((i = 1; i < n; i++)); do echo "minion-$i"; done
}

# Each node's own view: `corekube-agent status --wait` inside it blocks until
# its record says ready (it watches etcd) or the timeout passes.
wait_ready() {
        local name start
        for name in "$@"; do
                start=$SECONDS
                if ! "${BEDSH[@]}" exec "$name" corekube-agent status --wait="${READY_TIMEOUT}s" >/dev/null; then
                        "${BEDSH[@]}" exec "$name" systemctl status --no-pager corekube-agent >&2 || true
                        fail "wait for $name" "it was not ready after ${READY_TIMEOUT}s; its journal: tests/bed/bed.sh -b $BED exec $name journalctl -u corekube-agent"
                fi
                echo "  $name: ready (+$((SECONDS - start)) s)"
        done
}

container_ip() {
        if [[ $RUNTIME == containerd ]]; then
                "${BEDSH[@]}" exec "$1" ctr task exec --exec-id ip "$2" ip -4 -o addr show dev eth0 |
                        awk '{ sub(/\/.*/, "", $4); print $4; exit }'
                return
        fi
        "${BEDSH[@]}" exec "$1" docker inspect -f '{{.NetworkSettings.IPAddress}}' "$2"
}

container_exec() {
        local node=$1 name=$2
        shift 2
        if [[ $RUNTIME == containerd ]]; then
                "${BEDSH[@]}" exec "$node" ctr task exec --exec-id "x$$" "$name" "$@"
        else
                "${BEDSH[@]}" exec "$node" docker exec "$name" "$@"
        fi
}

# containerd: `ctr run --cni` in the foreground under a transient unit, so
# that its CNI DEL runs when the task ends; the address comes from the
# agent's CNI file (bridge cni0, host-local over the node's subnet).
# --cpu-shares 0: the node's cgroup has no cpu controller for runc to set.
start_ctr_container() {
        local node=$1
        "${BEDSH[@]}" exec "$node" sh -ec "
                ctr image inspect $CTR_IMAGE >/dev/null 2>&1 ||
                        ctr image import --snapshotter native /usr/share/corekube-bed/busybox-oci.tar >/dev/null
                ctr task kill -s KILL demo >/dev/null 2>&1 || true
                systemctl stop demo-ctr.service >/dev/null 2>&1 || true
                ctr container rm demo >/dev/null 2>&1 || true
                systemd-run --quiet --unit=demo-ctr ctr run --rm --cni --snapshotter native --cpu-shares 0 $CTR_IMAGE demo \
                        sh -c 'trap \"exit 0\" TERM; sleep 86400 & wait'
                for i in \$(seq 100); do
                        ctr task ls -q 2>/dev/null | grep -qx demo &&
                                ctr task exec --exec-id w demo ip -4 -o addr show dev eth0 2>/dev/null | grep -q inet &&
                                exit 0
                        sleep 0.1
                done
                exit 1" || return 1
}

start_container() {
        local node=$1
        if [[ $RUNTIME == containerd ]]; then
                start_ctr_container "$node"
                return
        fi
        "${BEDSH[@]}" exec "$node" sh -c 'docker image inspect busybox >/dev/null 2>&1 ||
                docker import /usr/share/corekube-bed/busybox.tar busybox >/dev/null' || return 1
        "${BEDSH[@]}" exec "$node" docker rm -f demo >/dev/null 2>&1 || true
        "${BEDSH[@]}" exec "$node" docker run -d --name demo busybox \
                sh -c 'trap "exit 0" TERM; sleep 86400 & wait' >/dev/null
}

cmd_up() {
        local n=${1:-3} names ip=11 name role st
        ((n >= 2)) || { echo "demo: need at least 2 nodes (a master and a minion)" >&2; exit 64; }
        mapfile -t names < <(node_names "$n")

        say "1/6 Preparing the node root filesystem (cached after the first run, ~1 min the first time)"
        "$HERE/rootfs.sh" build >/dev/null || fail "rootfs" "see the output above"

        say "2/6 Fabric network 192.168.3.0/24 with etcd (the discovery node) and the artifact server"
        if [[ -e $STATE/bed.env ]]; then
                echo "  a demo is already running; removing it first"
                "${BEDSH[@]}" down >/dev/null 2>&1 || true
        fi
        "${BEDSH[@]}" up || fail "fabric"

        say "3/6 Booting ${#names[@]} nodes ($RUNTIME); cloud-init in each writes the agent config, installs the package and starts it, as on a cloud"
        export CKB_RUNTIME=$RUNTIME
        for name in "${names[@]}"; do
                role=minion
                [[ $name == master ]] && role=master
                "${BEDSH[@]}" node-add "$name" "$role" "192.168.3.$ip" --cloud-init || fail "boot $name"
                ip=$((ip + 1))
        done

        if [[ $RUNTIME == containerd ]]; then
                say "4/6 Waiting until every node says ready (registered, overlay up, CNI file written, containerd active, units started)"
        else
                say "4/6 Waiting until every node says ready (registered, overlay up, Docker restarted, units started)"
        fi
        wait_ready "${names[@]}"
        for name in "${names[@]}"; do
                st=$("${BEDSH[@]}" exec "$name" cloud-init status 2>/dev/null | sed -n 's/^status: //p')
                [[ $st == done ]] || fail "cloud-init on $name" "cloud-init status says '${st:-nothing}'"
        done
        echo "  cloud-init: done on every node"

        say "5/6 corekube-agent status"
        "${BEDSH[@]}" exec master corekube-agent status || fail "status" "corekube-agent status failed on master"

        say "6/6 Proof of the overlay: a container on ${names[1]} pings a container on ${names[-1]} through flannel.1"
        local a=${names[1]} b=${names[-1]} ipb
        [[ $a == "$b" ]] && a=master
        start_container "$a" || fail "start a container on $a"
        start_container "$b" || fail "start a container on $b"
        ipb=$(container_ip "$b" demo) || fail "container address on $b"
        echo "  container on $b: $ipb"
        container_exec "$a" demo ping -c 3 -W 2 "$ipb" || fail "ping" "$a -> $b ($ipb)"
        step_done

        cat <<MSG

The cluster is up: etcd at 192.168.3.2:2379, ${#names[@]} nodes, in ${SECONDS}s.
Look inside a node:
  tests/bed/bed.sh -b $BED exec master systemctl status corekube-agent
  tests/bed/bed.sh -b $BED exec minion-1 journalctl -u corekube-agent
  tests/bed/bed.sh -b $BED exec minion-1 ip -d route show dev flannel.1
  tests/bed/bed.sh -b $BED exec master corekube-agent status
Tear it all down (namespaces, containers, processes, mounts, links):
  make demo-down        (for a demo named by CKB_DEMO_BED: tests/bed/demo.sh down with it set)
MSG
}

case ${1:-up} in
up) shift || true; cmd_up "$@" ;;
down) "${BEDSH[@]}" down ;;
status) "${BEDSH[@]}" exec master corekube-agent status ;;
*) echo "usage: demo.sh up [NODES] | down | status" >&2; exit 64 ;;
esac
