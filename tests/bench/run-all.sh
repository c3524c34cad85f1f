#!/bin/sh
# Every benchmark (issues 8, 12 and 13) at its full size, one after the other, printing
# their tables (docs/performance.md holds a run of this). Root; about 12 min.
#   tests/bench/run-all.sh BUILD_DIR
set -eu
build=$(realpath "${1:?usage: $0 BUILD_DIR}")
here=$(dirname "$(realpath "$0")")
py=/usr/bin/python3
ninja -C "$build" >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB," \
        "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
echo; echo "## 1. Provisioning vs cluster size"
"$py" "$here/bench-provision.py" 1 4 8 || rc=1
echo; echo "## 2. Propagation latency"
"$py" "$here/bench-propagation.py" "$build" --agents 4 --changes 200 || rc=1
echo; echo "## 3. Overlay programming vs iproute2"
"$here/run-overlay-bench.sh" "$build" 7 100 1000 5000 || rc=1
echo; echo "## 4. Footprint"
"$py" "$here/bench-footprint.py" "$build" --peers 1000 --idle 60 || rc=1
echo; echo "## 5. Scale"
"$py" "$here/bench-scale.py" "$build" 100 250 || rc=1
echo; echo "## 6. Disruption by the agent's lifecycle"
"$py" "$here/bench-disruption.py" --count 100 || rc=1
echo; echo "## 7. Fast path (issue 13)"
for what in start join propagation cpu; do
        echo; echo "### $what, load average $(cut -d' ' -f1-3 /proc/loadavg)"
        "$py" "$here/bench-fastpath.py" "$build" $what || rc=1
done
echo; echo "# done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
