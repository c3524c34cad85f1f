# shellcheck shell=bash
# Sourced by bed.sh: how the project and its configuration get onto a node.
#
#  - as the Debian package (the default): packaging/build-deb.sh builds it
#    once per source hash; node-add installs it with `dpkg -i` inside the
#    node's root, so the package's own maintainer scripts run;
#  - as `meson install --destdir` (node-add --install meson), as before;
#  - by cloud-init (node-add --cloud-init): the node boots with Debian's
#    cloud-init and the shipped user-data (cloud-config/cloud-init-ROLE.yaml)
#    filled with the node's values in the NoCloud seed; cloud-init writes the
#    config, installs the package from the bed's apt repository (on the
#    artifact server) and the package starts the agent.

DEB_CACHE=${CKB_DEB_CACHE:-${CKB_CACHE_DIR:-/var/cache/corekube-bed}/deb}
APT_URL=$ART_URL/apt
# node-add --etcd URL (see fill_user_data).
NODE_ETCD_URL=""
# A flat repository on the bed's private network, hence trusted=yes.
APT_SOURCE="deb [trusted=yes] $APT_URL ./"

# The package, and a flat apt repository holding it under the artifacts.
step_deb() {
        local deb apt=$DATA/artifacts/apt
        deb=$("$SRCDIR/packaging/build-deb.sh" "$DEB_CACHE")
        echo "package: $deb"
        mkdir -p "$apt"
        cp "$deb" "$apt/"
        (cd "$apt" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null &&
         { echo "Origin: corekube-bed"; echo "Label: corekube-bed"; echo "Date: $(date -Ru)"
           echo "SHA256:"; printf ' %s %s Packages\n' "$(sha256sum <Packages | cut -d' ' -f1)" "$(stat -c %s Packages)"
         } >Release)
        # The bed's own copy: the cache may be pruned while the bed runs.
        echo "CKB_DEB=$apt/$(basename "$deb")" >"$STATE/deb.env"
}

# install_deb NAME ROOT AGENT: dpkg -i inside the (not yet booted) node root.
# The postinst enables corekube-agent.service, as on any Debian host; without
# --agent the bed turns that off again, the way an admin would.
install_deb() {
        local n=$1 root=$2 agent=$3
        # shellcheck disable=SC1091
        . "$STATE/deb.env"
        install -m 0644 "$CKB_DEB" "$root/var/tmp/corekube-agent.deb"
        SYSTEMD_NSPAWN_LOCK=0 systemd-nspawn -q -D "$root" -M "$PREFIX-$n" --register=no --keep-unit --link-journal=no \
                --resolv-conf=off --timezone=off -E DEBIAN_FRONTEND=noninteractive -- sh -ec "
                dpkg -i /var/tmp/corekube-agent.deb
                rm /var/tmp/corekube-agent.deb
                if [ $agent != yes ]; then systemctl disable corekube-agent.service; fi"
}

# The shipped user-data for ROLE (master, minion, discovery) with the bed's values in place of every
# %token% (what Heat's str_replace does on a cloud). The etcd endpoint is the
# fabric's, or node-add --etcd URL (a discovery node's, as Heat does it).
fill_user_data() {
        local role=$1 f out a tok
        f=$SRCDIR/cloud-config/cloud-init-$role.yaml
        out=$(sed -e "s|%etcd_endpoints%|${NODE_ETCD_URL:-$ETCD_URL}|g" \
                -e "s|%private_interface%|eth2|g" \
                -e "s|%overlay_network%|10.244.0.0/15|g" \
                -e "s|%agent_apt_source%|$APT_SOURCE|g" \
                -e "s|%kubernetes_url%|$ART_URL|g" "$f")
        for a in $ALL_ARTIFACTS; do
                tok=%${a//-/_}_sha256%
                out=${out//$tok/$(awk -v a="$a" '$2 == a { print $1 }' "$DATA/artifacts/SHA256SUMS")}
        done
        if grep -o '%[a-z0-9_]*%' <<<"$out"; then
                echo "unfilled placeholders in $f" >&2
                return 1
        fi
        printf '%s\n' "$out"
}

# The NoCloud seed a cloud would provide: user-data and meta-data.
write_cloud_seed() {
        local n=$1 role=$2 root=$3 seed
        seed=$root/var/lib/cloud/seed/nocloud
        install -d -m 0700 "$seed"
        fill_user_data "$role" >"$seed/user-data"
        printf 'instance-id: %s\nlocal-hostname: %s\n' "ckb-$BED-$n-$(date +%s)" "$n" >"$seed/meta-data"
}

# The agent.conf of a node the bed provisions itself (not --conf, not
# --cloud-init): its role, eth2, the bed's etcd, the role's artifacts from
# the artifact server.
write_config() {
        local n=$1 role=$2 ip=$3 addr_by_agent=$4 a list
        local f
        f=$(node_root "$n")/etc/corekube/agent.conf
        [[ $role == master ]] && list=$ROLE_MASTER_ARTIFACTS || list=$ROLE_MINION_ARTIFACTS
        {
                echo "# Written by the corekube test bed (tests/bed/bed.sh) for node $n."
                echo "[node]"
                echo "role = $role"
                echo "name = $n"
                echo "interface = eth2"
                if [[ $addr_by_agent == yes ]]; then echo "address = $ip/24"; fi
                echo
                echo "[etcd]"
                echo "endpoints = $ETCD_URL"
                echo
                # The role's artifacts are only those its list names.
                echo "[role.$role]"
                echo "artifacts = $list"
                if [[ $role == minion ]]; then
                        echo 'register-url = http://${MASTER_IP}:8080/api/v1beta1/minions'
                fi
                for a in $list; do
                        echo
                        echo "[artifact.$a]"
                        echo "url = $ART_URL/$a"
                        echo "sha256 = $(awk -v a="$a" '$2 == a { print $1 }' "$DATA/artifacts/SHA256SUMS")"
                        echo "path = /opt/bin/$a"
                        echo "mode = 0755"
                done
        } >"$f"
}
