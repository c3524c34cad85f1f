#!/bin/bash
# The corekube test bed: a "cluster in a box" on one machine.
#
#   fabric netns ckb-BED-fab: bridge br0 192.168.3.1+.2/24, etcd on
#     192.168.3.2:2379 (and its loopback), an HTTP server for artifacts on
#     192.168.3.2:8000 (the Kubernetes stand-ins, by their real names)
#   one netns ckb-BED-NODE per node, eth2 = veth on br0, and a systemd-nspawn
#     container (machine ckb-BED-NODE) booting real systemd, Docker installed,
#     on an overlay of the cached rootfs layers (rootfs.sh), the project
#     installed as its Debian package (dpkg -i; bed-install.sh),
#     /etc/corekube/agent.conf written -- or, with --cloud-init, provisioned
#     by cloud-init from the shipped user-data.
#
# Usage: bed.sh [-b BED] COMMAND ...
#   up                          fabric, etcd, artifact server; builds what is missing
#   node-add NAME ROLE IP [--agent] [--no-standins] [--addr-by-agent] [--conf FILE]
#            [--standin-fail MODE] [--no-conf] [--install deb|meson] [--cloud-init [--etcd URL]]
#            [--runtime docker|containerd]
#                               create and boot a node (ROLE master|minion, IP on br0;
#                               ROLE discovery: etcd, with --cloud-init)
#   node-stop NAME | node-start NAME | node-rm NAME
#   exec NAME CMD...            run CMD inside the node (all its namespaces)
#   fabric CMD...               run CMD in the fabric netns (etcdctl, python3 ...)
#   pid NAME                    the node's PID 1 as seen from the host
#   etcd-stop | etcd-start      for fault tests
#   status                      what runs
#   down                        remove everything the bed made; safe to repeat
#
# Environment: CKB_BED (bed name, default "default"; -b wins), CKB_STATE_DIR,
# CKB_DATA_DIR, CKB_BUILD_DIR (a build dir configured by this script with
# prefix /usr), CKB_CACHE_DIR (rootfs cache, see rootfs.sh), CKB_BOOT_TIMEOUT,
# CKB_RUNTIME (the nodes' container runtime when node-add has no --runtime:
# docker, the default, or containerd).
#
# Nothing in the host network namespace is touched: every link is created
# inside the fabric or node namespaces. Processes are tracked by PID files
# and killed by PID; state lives in the state dir so that `down` finds
# everything even after a failed `up`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
BED=${CKB_BED:-default}
if [[ ${1:-} == -b ]]; then
        BED=${2:?bed name}
        shift 2
fi
[[ $BED =~ ^[a-z0-9][a-z0-9-]{0,15}$ ]] || { echo "bed: invalid bed name '$BED'" >&2; exit 64; }

STATE=${CKB_STATE_DIR:-/run/corekube-bed/$BED}
DATA=${CKB_DATA_DIR:-/var/tmp/corekube-bed/$BED}
BUILD=${CKB_BUILD_DIR:-$SRCDIR/build-bed}
BOOT_TIMEOUT=${CKB_BOOT_TIMEOUT:-120}
PREFIX=ckb-$BED
FAB=$PREFIX-fab
ETCD_IP=192.168.3.2
ETCD_URL=http://$ETCD_IP:2379
ART_URL=http://$ETCD_IP:8000
ROLE_MASTER_ARTIFACTS="kube-apiserver kube-controller-manager kube-scheduler kubectl"
ROLE_MINION_ARTIFACTS="kubelet kube-proxy"
ALL_ARTIFACTS="$ROLE_MASTER_ARTIFACTS $ROLE_MINION_ARTIFACTS"
NODE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck source=tests/bed/bed-install.sh
. "$HERE/bed-install.sh"

msg() { echo "bed[$BED]: $*" >&2; }
die() { msg "error: $*"; exit 1; }

# run_step NAME FUNC ARGS...: FUNC's output goes to a log in the state dir;
# on failure say which step failed and where its log is, and exit non-zero.
STEP_NO=0
run_step() {
        local name=$1 log start rc
        shift
        mkdir -p "$STATE/log"
        STEP_NO=$((STEP_NO + 1))
        log=$STATE/log/$(date +%H%M%S)-$$-$STEP_NO-$name.log
        start=$(date +%s.%N)
        msg "$name ..."
        set +e
        ( set -e; "$@" ) >>"$log" 2>&1
        rc=$?
        set -e
        if [[ $rc != 0 ]]; then
                msg "step '$name' FAILED (exit $rc); log: $log"
                tail -n 15 "$log" | sed 's/^/    /' >&2
                exit 1
        fi
        msg "$name ok ($(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s)"
}

# poll_until DEADLINE_SECONDS WHAT CMD...: run CMD until it succeeds.
poll_until() {
        local deadline=$(( $(date +%s) + $1 )) what=$2
        shift 2
        until "$@" >/dev/null 2>&1; do
                if (( $(date +%s) >= deadline )); then
                        echo "timed out waiting for $what" >&2
                        return 1
                fi
                sleep 0.2
        done
}

read_pid() { cat "$1" 2>/dev/null || true; }

# Exited: no such process, or a zombie its new parent has yet to reap.
proc_gone() {
        local st
        st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 0
        [[ -z $st || $st == Z ]]
}

# A process of ours is still the one its PID file names: alive and running
# the expected program (guards against PID reuse).
pid_alive() {
        local pid=$1 comm=$2
        [[ -n $pid ]] && ! proc_gone "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm"* ]]
}

# kill_pidfile FILE COMM [GRACE]: TERM, wait, KILL; removes the file.
kill_pidfile() {
        local f=$1 comm=$2 grace=${3:-10} pid
        pid=$(read_pid "$f")
        if pid_alive "$pid" "$comm"; then
                kill -TERM "$pid" 2>/dev/null || true
                poll_until "$grace" "$comm ($pid) to exit" proc_gone "$pid" ||
                        { kill -KILL "$pid" 2>/dev/null || true
                          poll_until 10 "$comm ($pid) to die" proc_gone "$pid" || true; }
        fi
        rm -f "$f"
}

# start_daemon PIDFILE LOG NETNS CMD...: detached (own session), PID recorded
# by the process itself before it execs, so the file names exactly CMD.
# nsenter rather than `ip netns exec`: the latter also gives the daemon a
# private copy of the mount table, which would pin the overlays of nodes
# mounted at that moment for as long as the daemon runs.
start_daemon() {
        local pidfile=$1 log=$2 ns=$3
        shift 3
        rm -f "$pidfile"
        local wrap=(setsid -f /bin/sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@")
        if [[ -n $ns ]]; then
                nsenter --net="/run/netns/$ns" -- "${wrap[@]}" >>"$log" 2>&1 </dev/null
        else
                "${wrap[@]}" >>"$log" 2>&1 </dev/null
        fi
        poll_until 10 "$pidfile" test -s "$pidfile"
}

load_bed() {
        [[ -r $STATE/bed.env ]] || die "bed '$BED' is not up (no $STATE/bed.env)"
        # shellcheck disable=SC1091
        . "$STATE/bed.env"
}

node_names() {
        local d
        for d in "$STATE"/nodes/*/; do
                [[ -d $d ]] && basename "$d"
        done
        return 0
}

node_dir() { echo "$STATE/nodes/$1"; }
node_ns() { echo "$PREFIX-$1"; }
node_root() { echo "$DATA/nodes/$1/root"; }

node_pid1() {
        local n=$1 nspid child
        nspid=$(read_pid "$(node_dir "$n")/nspawn.pid")
        pid_alive "$nspid" systemd-nspawn || return 1
        # nspawn is the parent of the container's PID 1 (it is a subreaper).
        for child in $(cat "/proc/$nspid/task/"*/children 2>/dev/null); do
                if [[ $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]]; then
                        echo "$child"
                        return 0
                fi
        done
        return 1
}

node_exec() {
        local n=$1 pid1
        shift
        pid1=$(node_pid1 "$n") || die "node '$n' is not running"
        nsenter -t "$pid1" -a -- /usr/bin/env -i PATH="$NODE_PATH" LANG=C.UTF-8 TERM="${TERM:-dumb}" \
                SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 "$@"
}

# ---------------------------------------------------------------- up ----

step_rootfs() {
        "$HERE/rootfs.sh" build >"$STATE/rootfs.env"
        cat "$STATE/rootfs.env"
}

step_build() {
        # Beds may share a build dir; one builder at a time.
        mkdir -p "$BUILD"
        exec 8<"$BUILD"
        flock 8
        if [[ ! -f $BUILD/build.ninja ]]; then
                meson setup "$BUILD" "$SRCDIR" --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
                        -Dsystemdsystemunitdir=/usr/lib/systemd/system -Dtests=true
        fi
        ninja -C "$BUILD"
        test -x "$BUILD/tests/standins/kube-standin"
}

step_fabric() {
        ip netns add "$FAB"
        ip -n "$FAB" link set lo up
        ip -n "$FAB" link add br0 type bridge
        ip -n "$FAB" addr add 192.168.3.1/24 dev br0
        ip -n "$FAB" addr add "$ETCD_IP/24" dev br0
        ip -n "$FAB" link set br0 up
}

etcd_healthy() {
        ip netns exec "$FAB" etcdctl --endpoints="$ETCD_URL" --command-timeout=2s endpoint health
}

step_etcd() {
        mkdir -p "$DATA/etcd"
        start_daemon "$STATE/etcd.pid" "$STATE/log/etcd.log" "$FAB" \
                etcd --name "$PREFIX" --data-dir "$DATA/etcd/data" \
                --listen-client-urls "$ETCD_URL,http://127.0.0.1:2379" \
                --advertise-client-urls "$ETCD_URL" \
                --listen-peer-urls http://127.0.0.1:2380 \
                --initial-advertise-peer-urls http://127.0.0.1:2380 \
                --initial-cluster "$PREFIX=http://127.0.0.1:2380" --initial-cluster-state new
        poll_until 30 "etcd to be healthy" etcd_healthy
        etcd_healthy
}

artifacts_served() {
        ip netns exec "$FAB" /usr/bin/python3 -c \
                "import urllib.request; urllib.request.urlopen('$ART_URL/SHA256SUMS', timeout=2)"
}

step_artifacts() {
        local a
        mkdir -p "$DATA/artifacts"
        for a in $ALL_ARTIFACTS; do
                install -m 0755 "$BUILD/tests/standins/kube-standin" "$DATA/artifacts/$a"
        done
        (cd "$DATA/artifacts" && sha256sum $ALL_ARTIFACTS >SHA256SUMS)
        start_daemon "$STATE/http.pid" "$STATE/log/http.log" "$FAB" \
                /usr/bin/python3 -m http.server 8000 --bind "$ETCD_IP" --directory "$DATA/artifacts"
        poll_until 20 "the artifact server" artifacts_served
}

cmd_up() {
        if [[ -r $STATE/bed.env ]]; then
                if ip netns exec "$FAB" true 2>/dev/null && pid_alive "$(read_pid "$STATE/etcd.pid")" etcd; then
                        msg "already up"
                        return 0
                fi
                msg "a previous bed was left half made; removing it first"
                cmd_down
        fi
        local start=$SECONDS
        mkdir -p "$STATE/nodes" "$STATE/log" "$DATA"
        # Written first: from here on `down` knows what to look for.
        cat >"$STATE/bed.env" <<EOF
BED=$BED
DATA=$DATA
BUILD=$BUILD
FAB=$FAB
EOF
        run_step rootfs step_rootfs
        cat "$STATE/rootfs.env" >>"$STATE/bed.env"
        run_step build step_build
        run_step package step_deb
        run_step fabric step_fabric
        run_step etcd step_etcd
        run_step artifacts step_artifacts
        msg "up in $((SECONDS - start)) s: etcd $ETCD_URL, artifacts $ART_URL, fabric netns $FAB"
}

# ----------------------------------------------------------- nodes ----

step_node_net() {
        local n=$1 ip=$2 addr_by_agent=$3 ns
        ns=$(node_ns "$n")
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # Both ends are created inside namespaces: nothing appears on the host.
        ip -n "$FAB" link add "v-$n" type veth peer name eth2 netns "$ns"
        ip -n "$FAB" link set "v-$n" master br0 up
        ip -n "$ns" link set eth2 up
        if [[ $addr_by_agent != yes ]]; then
                ip -n "$ns" addr add "$ip/24" dev eth2
        fi
        # /proc/sys is read-only inside the container and dockerd needs this.
        ip netns exec "$ns" sysctl -w net.ipv4.ip_forward=1
}

step_node_root() {
        local n=$1 role=$2 ip=$3 standins=$4 agent=$5 addr_by_agent=$6 conf=$7 install=$8 fail=$9 runtime=${10} d root a
        local lower=$CKB_ROOTFS_DOCKER:$CKB_ROOTFS_BASE
        d=$DATA/nodes/$n
        root=$d/root
        mkdir -p "$d/upper" "$d/work" "$root" "$d/docker" "$d/containerd"
        if [[ $install == cloud-init ]]; then
                lower=$("$HERE/rootfs.sh" cloud-init | sed -n 's/^CKB_ROOTFS_CLOUDINIT=//p'):$lower
        fi
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$d/upper,workdir=$d/work" "$root"
        case $install in
        deb) install_deb "$n" "$root" "$agent" ;;
        meson) meson install -C "$BUILD" --destdir "$root" --no-rebuild --quiet ;;
        cloud-init) write_cloud_seed "$n" "$role" "$root" ;;
        esac
        install -d -m 0755 "$root/opt/bin" "$root/etc/kube-standin" "$root/usr/share/corekube-bed"
        if [[ $standins == yes ]]; then
                for a in $( [[ $role == master ]] && echo "$ROLE_MASTER_ARTIFACTS" || echo "$ROLE_MINION_ARTIFACTS"); do
                        install -m 0755 "$DATA/artifacts/$a" "$root/opt/bin/$a"
                done
        fi
        install -m 0644 "$CKB_BUSYBOX_TAR" "$root/usr/share/corekube-bed/busybox.tar"
        install -m 0644 "$CKB_BUSYBOX_OCI" "$root/usr/share/corekube-bed/busybox-oci.tar"
        if [[ $runtime == containerd ]]; then
                # A drop-in, so that it holds for every way of provisioning
                # (agent.conf by the bed, --conf, cloud-init's user-data).
                # containerd runs from boot, Docker not at all (its own
                # containerd would be a second one on the same socket).
                install -d -m 0755 "$root/etc/corekube/agent.conf.d"
                printf '%s\n' "# Written by the corekube test bed: a containerd node." "[runtime]" \
                        "kind = containerd" >"$root/etc/corekube/agent.conf.d/50-bed-runtime.conf"
                mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
                ln -sf /dev/null "$root/etc/systemd/system/docker.service"
                ln -sf /dev/null "$root/etc/systemd/system/docker.socket"
                ln -sf /usr/lib/systemd/system/containerd.service \
                        "$root/etc/systemd/system/multi-user.target.wants/containerd.service"
        fi
        # The stand-in's fail switch, on from the first boot.
        if [[ -n $fail ]]; then touch "$root/etc/kube-standin/fail-$fail"; fi
        if [[ $conf == none || $install == cloud-init ]]; then
                :       # no configuration (cloud-init writes its own)
        elif [[ -n $conf ]]; then
                install -m 0644 "$conf" "$root/etc/corekube/agent.conf"
        else
                write_config "$n" "$role" "$ip" "$addr_by_agent"
        fi
        tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
        echo "$n" >"$root/etc/hostname"
        if [[ $agent == yes && $install != cloud-init ]]; then
                mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
                ln -sf /usr/lib/systemd/system/corekube-agent.service \
                        "$root/etc/systemd/system/multi-user.target.wants/corekube-agent.service"
        fi
}

node_booted() {
        local state
        state=$(node_exec "$1" systemctl is-system-running 2>/dev/null) || true
        [[ $state == running || $state == degraded ]]
}

step_node_boot() {
        local n=$1 d nspid
        d=$(node_dir "$n")
        start_daemon "$d/nspawn.pid" "$d/console.log" "" \
                env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_NSPAWN_LOCK=0 \
                systemd-nspawn -q -D "$(node_root "$n")" -M "$PREFIX-$n" --hostname="$n" --boot \
                --network-namespace-path="/run/netns/$(node_ns "$n")" \
                --register=no --keep-unit --link-journal=no --resolv-conf=off --timezone=off \
                --console=read-only \
                --capability=CAP_NET_ADMIN,CAP_BPF,CAP_SYS_ADMIN \
                --system-call-filter='add_key keyctl request_key bpf' \
                --bind="$DATA/nodes/$n/docker:/var/lib/docker" \
                --bind="$DATA/nodes/$n/containerd:/var/lib/containerd"
        nspid=$(read_pid "$d/nspawn.pid")
        echo "nspawn pid $nspid"
        local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
        until node_booted "$n"; do
                if proc_gone "$nspid"; then
                        echo "systemd-nspawn exited; console:"; tail -n 30 "$d/console.log"
                        return 1
                fi
                if (( $(date +%s) >= deadline )); then
                        echo "timed out after $BOOT_TIMEOUT s; state: $(node_exec "$n" systemctl is-system-running || true)"
                        node_exec "$n" systemctl --failed --no-legend || true
                        return 1
                fi
                sleep 0.2
        done
        echo "PID 1: $(node_pid1 "$n"), $(node_exec "$n" systemctl is-system-running || true)"
}

cmd_node_add() {
        local n=${1:-} role=${2:-} ip=${3:-} standins=yes agent=no addr_by_agent=no conf="" install=deb fail=""
        local runtime=${CKB_RUNTIME:-docker}
        [[ $# -ge 3 ]] || die "usage: node-add NAME ROLE IP [--agent] [--no-standins] [--addr-by-agent] [--conf FILE] [--no-conf] [--install deb|meson] [--cloud-init] [--standin-fail MODE] [--runtime docker|containerd]"
        shift 3
        while [[ $# -gt 0 ]]; do
                case $1 in
                --agent) agent=yes ;;
                --no-standins) standins=no ;;
                --addr-by-agent) addr_by_agent=yes ;;
                --conf) conf=$(realpath "${2:?--conf FILE}"); shift ;;
                --standin-fail)
                        fail=${2:?--standin-fail MODE}; shift
                        [[ $fail =~ ^[a-z][a-z-]*$ ]] || die "invalid stand-in mode '$fail'" ;;
                --no-conf) conf=none ;;
                --install) install=${2:?--install deb|meson}; shift
                        [[ $install == deb || $install == meson ]] || die "--install deb|meson" ;;
                --cloud-init) install=cloud-init; standins=no ;;
                --etcd) NODE_ETCD_URL=${2:?--etcd URL}; shift ;;
                --runtime) runtime=${2:?--runtime docker|containerd}; shift ;;
                *) die "unknown option $1" ;;
                esac
                shift
        done
        [[ $n =~ ^[a-z][a-z0-9-]{0,12}$ ]] || die "invalid node name '$n' (a-z0-9-, at most 13)"
        [[ $runtime == docker || $runtime == containerd ]] || die "--runtime docker|containerd"
        [[ $role == master || $role == minion || ($role == discovery && $install == cloud-init) ]] ||
                die "role must be master or minion (or discovery, with --cloud-init)"
        [[ $ip =~ ^192\.168\.3\.([0-9]+)$ ]] && (( BASH_REMATCH[1] >= 3 && BASH_REMATCH[1] <= 254 )) ||
                die "IP must be 192.168.3.3 .. 192.168.3.254"
        load_bed
        [[ ! -e $(node_dir "$n") ]] || die "node '$n' exists"
        local start=$SECONDS d
        d=$(node_dir "$n")
        mkdir -p "$d"
        printf 'ROLE=%s\nIP=%s\nRUNTIME=%s\n' "$role" "$ip" "$runtime" >"$d/node.env"
        run_step "$n-net" step_node_net "$n" "$ip" "$addr_by_agent"
        run_step "$n-root" step_node_root "$n" "$role" "$ip" "$standins" "$agent" "$addr_by_agent" "$conf" "$install" "$fail" "$runtime"
        run_step "$n-boot" step_node_boot "$n"
        msg "node $n ($role, $ip) up in $((SECONDS - start)) s"
}

# SIGRTMIN+4 to a container's PID 1 is systemd's "start poweroff.target"
# (what machinectl poweroff sends). Not `nsenter -a systemctl poweroff`: a
# systemctl inside the container's PID namespace can be caught by
# systemd-shutdown's SIGSTOP broadcast, and nsenter, seeing its child
# stopped, stops itself for good.
request_poweroff() {
        kill -s RTMIN+4 "$1" 2>/dev/null || true
}

# Power off from inside; nspawn exits when the container is down.
node_stop() {
        local n=$1 d nspid pid1
        d=$(node_dir "$n")
        nspid=$(read_pid "$d/nspawn.pid")
        if pid_alive "$nspid" systemd-nspawn; then
                if pid1=$(node_pid1 "$n"); then
                        request_poweroff "$pid1"
                fi
                poll_until 30 "node $n to power off" proc_gone "$nspid" || true
        fi
        kill_pidfile "$d/nspawn.pid" systemd-nspawn 5
}

cmd_node_stop() {
        load_bed
        [[ -d $(node_dir "${1:?node}") ]] || die "no node '$1'"
        run_step "$1-stop" node_stop "$1"
}

cmd_node_start() {
        load_bed
        [[ -d $(node_dir "${1:?node}") ]] || die "no node '$1'"
        ! node_pid1 "$1" >/dev/null || die "node '$1' is running"
        run_step "$1-boot" step_node_boot "$1"
}

# Kill what is left in a namespace of ours (by PID), then delete it.
remove_netns() {
        local ns=$1 pid
        [[ -e /run/netns/$ns ]] || return 0
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns"
}

# Unmount everything at or below $1, deepest first.
umount_under() {
        local d=$1 m
        awk -v d="$d" '{ gsub(/\\040/, " ", $5); if (index($5, d "/") == 1 || $5 == d) print $5 }' \
                /proc/self/mountinfo | sort -r | while read -r m; do
                umount "$m" 2>/dev/null || umount -l "$m"
        done
}

node_rm() {
        local n=$1
        node_stop "$n"
        # Deleting the veth ourselves is synchronous; the kernel's clean-up of a
        # deleted netns is not, and a node-add of the same name would meet it.
        ip -n "$FAB" link del "v-$n" 2>/dev/null || true
        remove_netns "$(node_ns "$n")"
        umount_under "$DATA/nodes/$n"
        rm -rf --one-file-system "$DATA/nodes/$n"
        rm -rf "$(node_dir "$n")"
}

cmd_node_rm() {
        load_bed
        [[ -d $(node_dir "${1:?node}") ]] || die "no node '$1'"
        run_step "$1-rm" node_rm "$1"
}

# -------------------------------------------------------- the rest ----

step_down() {
        local n ns pid1
        # Power every node off at once; node_rm then mostly finds them gone.
        for n in $(node_names); do
                if pid1=$(node_pid1 "$n"); then
                        request_poweroff "$pid1"
                fi
        done
        for n in $(node_names); do
                echo "removing node $n"
                node_rm "$n"
        done
        kill_pidfile "$STATE/http.pid" python3
        kill_pidfile "$STATE/etcd.pid" etcd
        # Catch-alls for what a crash may have left without a record.
        for ns in $(ip netns list | awk '{ print $1 }' | grep "^$PREFIX-" || true); do
                echo "removing netns $ns"
                remove_netns "$ns"
        done
        umount_under "$DATA"
        rm -rf "/run/systemd/nspawn/propagate/$PREFIX-"* 2>/dev/null || true
        rm -rf --one-file-system "$DATA"
}

cmd_down() {
        local start=$SECONDS
        if [[ ! -d $STATE && ! -d $DATA ]] && ! ip netns list | grep -q "^$PREFIX-"; then
                msg "nothing to remove"
                return 0
        fi
        mkdir -p "$STATE/log"
        run_step down step_down
        rm -rf "$STATE"
        rmdir --ignore-fail-on-non-empty "$(dirname "$STATE")" "$(dirname "$DATA")" 2>/dev/null || true
        msg "down in $((SECONDS - start)) s"
}

cmd_status() {
        local n pid1 state
        if [[ ! -r $STATE/bed.env ]]; then
                echo "bed $BED: down"
                return 0
        fi
        load_bed
        echo "bed $BED: fabric netns $FAB, state $STATE, data $DATA"
        pid_alive "$(read_pid "$STATE/etcd.pid")" etcd && state="running (pid $(read_pid "$STATE/etcd.pid"))" || state=stopped
        echo "etcd $ETCD_URL: $state"
        pid_alive "$(read_pid "$STATE/http.pid")" python3 && state=running || state=stopped
        echo "artifacts $ART_URL: $state"
        for n in $(node_names); do
                # shellcheck disable=SC1090
                (. "$(node_dir "$n")/node.env"
                 if pid1=$(node_pid1 "$n"); then
                         state="$(node_exec "$n" systemctl is-system-running 2>/dev/null || true) (pid1 $pid1)"
                 else
                         state=stopped
                 fi
                 printf 'node %-14s %-7s %-15s %s\n' "$n" "$ROLE" "$IP" "$state")
        done
}

[[ $(id -u) == 0 ]] || die "must run as root"
cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
node-add) cmd_node_add "$@" ;;
node-stop) cmd_node_stop "$@" ;;
node-start) cmd_node_start "$@" ;;
node-rm) cmd_node_rm "$@" ;;
exec) load_bed; node_exec "${1:?node}" "${@:2}" ;;
fabric) load_bed; exec ip netns exec "$FAB" "$@" ;;
pid) load_bed; node_pid1 "${1:?node}" ;;
etcd-stop) load_bed; kill_pidfile "$STATE/etcd.pid" etcd; msg "etcd stopped" ;;
etcd-start) load_bed; pid_alive "$(read_pid "$STATE/etcd.pid")" etcd || run_step etcd step_etcd ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 64 ;;
esac
