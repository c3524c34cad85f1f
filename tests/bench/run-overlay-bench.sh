#!/bin/sh
# Overlay benchmark: netsetup's reconcile against ip/bridge -batch, in a
# network namespace of its own (removed on exit). Root.
#   tests/bench/run-overlay-bench.sh BUILD_DIR [RUNS] [N...]
set -eu
build=${1:?usage: $0 BUILD_DIR [RUNS] [N...]}
shift
runs=${1:-7}
[ $# -gt 0 ] && shift
bench=$(realpath "$build")/tests/bench/overlay-bench
[ -x "$bench" ] || { echo "$bench not built (ninja -C $build)" >&2; exit 1; }

ns=nsbench$$
tmp=$(mktemp -d)
trap 'ip netns del $ns 2>/dev/null || true; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
ip netns add $ns
ip -n $ns link add eth2 type veth peer name eth2p
ip -n $ns link set eth2p up
TMPDIR=$tmp ip netns exec $ns "$bench" --runs "$runs" "$@"
