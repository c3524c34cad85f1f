#!/bin/bash
# The cluster in a box (README: `make demo`): etcd as the "discovery" node, one
# master and N-1 minions booted as systemd-nspawn containers with real systemd
# and Docker, each running corekube-agent exactly as a cloud node would.
#
#   demo.sh up [NODES]    build what is missing, boot, wait for ready, show proof
#   demo.sh down          remove everything (namespaces, containers, mounts)
#   demo.sh status        corekube-agent status, from the master
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BED=demo
BEDSH=("$HERE/bed.sh" -b "$BED")
STATE=/run/corekube-bed/$BED
READY_TIMEOUT=${CKB_DEMO_TIMEOUT:-300}
T0=$SECONDS

say() { printf '\n\033[1m[%4ds] %s\033[0m\n' "$((SECONDS - T0))" "$*"; }
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

# The machine record's state for a node, read from etcd in the fabric.
record_state() {
        local id
        id=$("${BEDSH[@]}" exec "$1" cat /etc/machine-id 2>/dev/null) || return 1
        "${BEDSH[@]}" fabric env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 \
                get --print-value-only "/corekube/machines/$id" 2>/dev/null |
                sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

wait_ready() {
        local name deadline=$((SECONDS + READY_TIMEOUT)) st
        for name in "$@"; do
                while :; do
                        st=$(record_state "$name" || true)
                        [[ $st == ready ]] && { echo "  $name: ready"; break; }
                        if ((SECONDS > deadline)); then
                                "${BEDSH[@]}" exec "$name" systemctl status --no-pager corekube-agent >&2 || true
                                fail "wait for $name" "its state is '${st:-no record}' after ${READY_TIMEOUT}s"
                        fi
                        # The agent's own journal is the event source; a short
                        # poll of etcd keeps this script independent of it.
                        sleep 1
                done
        done
}

container_ip() {
        "${BEDSH[@]}" exec "$1" docker inspect -f '{{.NetworkSettings.IPAddress}}' "$2"
}

start_container() {
        local node=$1
        "${BEDSH[@]}" exec "$node" sh -c 'docker image inspect busybox >/dev/null 2>&1 ||
                docker import /usr/share/corekube-bed/busybox.tar busybox >/dev/null' || return 1
        "${BEDSH[@]}" exec "$node" docker rm -f demo >/dev/null 2>&1 || true
        "${BEDSH[@]}" exec "$node" docker run -d --name demo busybox sleep 86400 >/dev/null
}

cmd_up() {
        local n=${1:-3} names ip=11 name role
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

        say "3/6 Booting ${#names[@]} nodes with corekube-agent enabled (they bring themselves up in parallel)"
        for name in "${names[@]}"; do
                role=minion
                [[ $name == master ]] && role=master
                "${BEDSH[@]}" node-add "$name" "$role" "192.168.3.$ip" --agent --no-standins || fail "boot $name"
                ip=$((ip + 1))
        done

        say "4/6 Waiting until every node says ready (registered, overlay up, Docker restarted, units started)"
        wait_ready "${names[@]}"

        say "5/6 corekube-agent status"
        "${BEDSH[@]}" exec master corekube-agent status || true

        say "6/6 Proof of the overlay: a container on ${names[1]} pings a container on ${names[-1]} through flannel.1"
        local a=${names[1]} b=${names[-1]} ipb
        [[ $a == "$b" ]] && a=master
        start_container "$a" || fail "start a container on $a"
        start_container "$b" || fail "start a container on $b"
        ipb=$(container_ip "$b" demo) || fail "container address on $b"
        echo "  container on $b: $ipb"
        "${BEDSH[@]}" exec "$a" docker exec demo ping -c 3 -W 2 "$ipb" || fail "ping" "$a -> $b ($ipb)"

        cat <<MSG

The cluster is up: etcd at 192.168.3.2:2379, ${#names[@]} nodes, in ${SECONDS}s.
Look inside a node:
  tests/bed/bed.sh -b demo exec master systemctl status corekube-agent
  tests/bed/bed.sh -b demo exec minion-1 journalctl -u corekube-agent
  tests/bed/bed.sh -b demo exec minion-1 ip -d route show dev flannel.1
  tests/bed/bed.sh -b demo exec master corekube-agent status
Tear it all down (namespaces, containers, processes, mounts, links):
  make demo-down
MSG
}

case ${1:-up} in
up) shift || true; cmd_up "$@" ;;
down) "${BEDSH[@]}" down ;;
status) "${BEDSH[@]}" exec master corekube-agent status ;;
*) echo "usage: demo.sh up [NODES] | down | status" >&2; exit 64 ;;
esac
