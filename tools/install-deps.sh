#!/bin/bash
# Installs the Debian 12 packages corekube-agent needs to build and to run
# every test suite. Fast when everything is present; --update forces
# `apt-get update` first (CI starts from a fresh machine).
set -euo pipefail

PACKAGES=(
        # build
        meson ninja-build pkg-config gcc
        libcurl4-openssl-dev libjson-c-dev libsystemd-dev libnl-3-dev libnl-route-3-dev libssl-dev
        libnftables-dev
        # tests
        libcmocka-dev python3-pytest etcd-server etcd-client iproute2 iputils-ping openssl
        # the ip-masq tests look at the table with nft
        nftables
        # tests/standins/systemd-standin.py: a stand-in for systemd on a private bus
        dbus-daemon python3-dbus python3-gi
        # the systemd-nspawn test bed
        systemd-container debootstrap busybox-static
        # deployment: the .deb and its checks, the RPM spec, cloud-config
        # schemas, the Heat checker, man pages
        debhelper dpkg-dev lintian rpm cloud-init python3-yaml groff man-db
        # hardening: libFuzzer and sanitizers (clang), valgrind
        clang libclang-rt-14-dev valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${1:-}" = "--update" ] || [ ${#missing[@]} -gt 0 ]; then
        echo "install-deps: installing ${missing[*]:-(all present; refreshing)}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
# The etcd-server package may start its own service where systemd runs;
# tests start their own etcd on other ports, so it does not matter.
exit 0
