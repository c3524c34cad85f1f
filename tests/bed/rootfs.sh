#!/bin/bash
# Builds, once, the root filesystem layers the test bed's nodes boot from, and a
# tiny busybox image for `docker import`.  Everything is cached under
# $CKB_CACHE_DIR keyed by a hash of what goes into it, so later runs only print
# the paths.  Each artefact is built in a temporary directory next to its final
# place and renamed into place, so an interrupted build never leaves a half
# rootfs behind that a later run would trust.
#
#   rootfs.sh [build]   build what is missing, print CKB_* assignments on stdout
#   rootfs.sh cloud-init  also the cloud-init layer (over docker), printed as
#                       CKB_ROOTFS_CLOUDINIT, for nodes provisioned by cloud-init
#   rootfs.sh prune     remove cached layers other than the current ones
#   rootfs.sh clean     remove the whole cache
#
# Environment: CKB_CACHE_DIR (default /var/cache/corekube-bed),
#              CKB_EXTRA_PACKAGES (more packages for the base layer, space separated),
#              CKB_MIRROR (default: the Debian mirror apt uses on this host).
set -euo pipefail

CACHE_DIR=${CKB_CACHE_DIR:-/var/cache/corekube-bed}
SUITE=bookworm
# Bump when the way a layer is built changes, so old caches are not reused.
FORMAT=1

BASE_PACKAGES="systemd systemd-sysv dbus iproute2 libcurl4 libjson-c5 libnl-3-200
libnl-route-3-200 libnftables1 libssl3 ca-certificates iputils-ping procps ${CKB_EXTRA_PACKAGES:-}"
# containerd comes with docker.io; containernetworking-plugins (bridge,
# host-local, portmap in /usr/lib/cni) serve the nodes provisioned with
# [runtime] kind = containerd, which `ctr run --cni` looks for in /opt/cni/bin.
DOCKER_PACKAGES="docker.io iptables containernetworking-plugins"
# locales: cloud-init's locale module needs update-locale and, as on a cloud
# image, a generated en_US.UTF-8 (its default). etcd-server: what the
# discovery node's user-data installs (the nodes cannot reach a mirror), left
# disabled for that user-data to configure and start.
CLOUDINIT_PACKAGES="cloud-init locales etcd-server"
BUSYBOX_LINKS="sh ash ping ip ifconfig sleep cat ls echo hostname true false ps wget nc httpd
ip route"

msg() { echo "rootfs: $*" >&2; }
die() { msg "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root"

find_mirror() {
        local f
        if [[ -n ${CKB_MIRROR:-} ]]; then
                echo "$CKB_MIRROR"; return
        fi
        f=/etc/apt/sources.list.d/debian.sources
        if [[ -r $f ]]; then
                # First URIs of a stanza that is not the security archive.
                awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f" && return
        fi
        f=/etc/apt/sources.list
        if [[ -r $f ]]; then
                awk '/^deb / && $2 !~ /security/ { print $2; exit }' "$f" && return
        fi
        echo http://deb.debian.org/debian
}

words() { tr -s ' \n\t' '\n' <<<"$*" | sed '/^$/d' | sort -u | tr '\n' ' '; }

key_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

BASE_KEY=$(key_of "$FORMAT" "$SUITE" "$(words "$BASE_PACKAGES")")
DOCKER_KEY=$(key_of "$BASE_KEY" "$(words "$DOCKER_PACKAGES")")
CLOUDINIT_KEY=$(key_of "$DOCKER_KEY" "$(words "$CLOUDINIT_PACKAGES")" bed-cfg-3)
BUSYBOX_KEY=$(key_of "$FORMAT.1" "$SUITE" busybox-static "$(words "$BUSYBOX_LINKS")")
OCI_KEY=$(key_of "$BUSYBOX_KEY" oci-1)
BASE_DIR=$CACHE_DIR/rootfs-$BASE_KEY
DOCKER_DIR=$CACHE_DIR/docker-$DOCKER_KEY
BUSYBOX_TAR=$CACHE_DIR/busybox-$BUSYBOX_KEY.tar
BUSYBOX_OCI=$CACHE_DIR/busybox-oci-$OCI_KEY.tar
CLOUDINIT_DIR=$CACHE_DIR/cloudinit-$CLOUDINIT_KEY

TMP=""
MNT=""

# Unmount whatever a failed build left under $1 (debootstrap mounts proc/sys
# in its target), deepest first, so that removing the directory cannot reach
# into a mounted file system.
umount_under() {
        local d=$1 m
        awk -v d="$d" '{ gsub(/\\040/, " ", $5); if (index($5, d "/") == 1 || $5 == d) print $5 }' \
                /proc/self/mountinfo | sort -r | while read -r m; do
                umount "$m" 2>/dev/null || umount -l "$m" || true
        done
}

cleanup() {
        if [[ -n $MNT ]]; then umount_under "$MNT"; fi
        if [[ -n $TMP && -d $TMP ]]; then
                umount_under "$TMP"
                rm -rf --one-file-system "$TMP"
        fi
}
trap cleanup EXIT

build_base() {
        local mirror start
        [[ -d $BASE_DIR ]] && return
        mirror=$(find_mirror)
        msg "building base rootfs $BASE_DIR ($SUITE from $mirror; takes a minute or two)"
        start=$SECONDS
        TMP=$(mktemp -d "$CACHE_DIR/.tmp-rootfs-XXXXXX")
        debootstrap --variant=minbase --include="$(words "$BASE_PACKAGES" | tr ' ' ',' | sed 's/,$//')" \
                "$SUITE" "$TMP/root" "$mirror" >"$TMP/debootstrap.log" 2>&1 ||
                { tail -n 30 "$TMP/debootstrap.log" >&2; die "debootstrap failed"; }
        # Each node gets its own machine-id; an empty file makes systemd treat
        # the image as unprovisioned rather than sharing one id.
        : >"$TMP/root/etc/machine-id"
        rm -f "$TMP/root/var/lib/dbus/machine-id"
        rm -rf "$TMP/root/var/cache/apt/archives/"*.deb
        mv -T "$TMP/root" "$BASE_DIR"
        rm -rf "$TMP"; TMP=""
        msg "base rootfs built in $((SECONDS - start)) s"
}

# The Docker layer is the upper directory of an overlay over the base layer in
# which apt installed Docker, so nodes mount lowerdir=DOCKER:BASE.
build_docker() {
        local start
        [[ -d $DOCKER_DIR ]] && return
        msg "building docker layer $DOCKER_DIR"
        start=$SECONDS
        TMP=$(mktemp -d "$CACHE_DIR/.tmp-docker-XXXXXX")
        mkdir "$TMP/upper" "$TMP/work" "$TMP/merged"
        MNT=$TMP/merged
        mount -t overlay overlay -o "lowerdir=$BASE_DIR,upperdir=$TMP/upper,workdir=$TMP/work" "$MNT"
        # Docker stays disabled at boot: on a node the agent starts it with the
        # flannel options, and a boot-time start would only be restarted.
        systemd-nspawn -q -D "$MNT" --register=no --keep-unit --link-journal=no \
                --resolv-conf=copy-host -E DEBIAN_FRONTEND=noninteractive -- sh -ec "
                apt-get update -q
                apt-get install -y -q --no-install-recommends $DOCKER_PACKAGES
                systemctl disable docker.service docker.socket containerd.service
                mkdir -p /opt/cni
                ln -sfT /usr/lib/cni /opt/cni/bin
                apt-get clean
                rm -rf /var/lib/apt/lists/*" >"$TMP/install.log" 2>&1 ||
                { tail -n 30 "$TMP/install.log" >&2; die "installing docker failed"; }
        umount "$MNT"; MNT=""
        mv -T "$TMP/upper" "$DOCKER_DIR"
        rm -rf "$TMP"; TMP=""
        msg "docker layer built in $((SECONDS - start)) s"
}

# cloud-init as a Debian cloud image has it, over the docker layer, so nodes
# mount lowerdir=CLOUDINIT:DOCKER:BASE. The bed's own settings: only the
# NoCloud seed directory is looked at, and the network (made by the bed) is
# left alone.
build_cloudinit() {
        local start
        [[ -d $CLOUDINIT_DIR ]] && return
        msg "building cloud-init layer $CLOUDINIT_DIR"
        start=$SECONDS
        TMP=$(mktemp -d "$CACHE_DIR/.tmp-cloudinit-XXXXXX")
        mkdir "$TMP/upper" "$TMP/work" "$TMP/merged"
        MNT=$TMP/merged
        mount -t overlay overlay \
                -o "lowerdir=$DOCKER_DIR:$BASE_DIR,upperdir=$TMP/upper,workdir=$TMP/work" "$MNT"
        systemd-nspawn -q -D "$MNT" --register=no --keep-unit --link-journal=no \
                --resolv-conf=copy-host -E DEBIAN_FRONTEND=noninteractive -- sh -ec "
                apt-get update -q
                apt-get install -y -q --no-install-recommends $CLOUDINIT_PACKAGES
                sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' /etc/locale.gen
                locale-gen
                systemctl disable etcd.service
                printf '%s\n' 'datasource_list: [ NoCloud, None ]' 'network: {config: disabled}' \
                        >/etc/cloud/cloud.cfg.d/90-corekube-bed.cfg
                apt-get clean
                rm -rf /var/lib/apt/lists/*" >"$TMP/install.log" 2>&1 ||
                { tail -n 30 "$TMP/install.log" >&2; die "installing cloud-init failed"; }
        umount "$MNT"; MNT=""
        mv -T "$TMP/upper" "$CLOUDINIT_DIR"
        rm -rf "$TMP"; TMP=""
        msg "cloud-init layer built in $((SECONDS - start)) s"
}

build_busybox() {
        local bb l
        [[ -f $BUSYBOX_TAR ]] && return
        msg "building busybox image $BUSYBOX_TAR"
        TMP=$(mktemp -d "$CACHE_DIR/.tmp-busybox-XXXXXX")
        (cd "$TMP" && apt-get download -q busybox-static) >"$TMP/download.log" 2>&1 ||
                { cat "$TMP/download.log" >&2; die "apt-get download busybox-static failed"; }
        dpkg-deb -x "$TMP"/busybox-static_*.deb "$TMP/deb"
        for bb in "$TMP/deb/bin/busybox" "$TMP/deb/usr/bin/busybox" ""; do
                [[ -f $bb && ! -L $bb ]] && break
        done
        [[ -n $bb ]] && head -c 4 "$bb" | grep -q ELF || die "no busybox binary in busybox-static"
        mkdir -p "$TMP/img/bin" "$TMP/img/tmp" "$TMP/img/etc" "$TMP/img/proc" "$TMP/img/sys" "$TMP/img/dev"
        install -m 0755 "$bb" "$TMP/img/bin/busybox"
        for l in $(words "$BUSYBOX_LINKS"); do
                ln -sf busybox "$TMP/img/bin/$l"
        done
        tar --numeric-owner --owner=0 --group=0 -C "$TMP/img" -cf "$TMP/image.tar" .
        mv -T "$TMP/image.tar" "$BUSYBOX_TAR"
        rm -rf "$TMP"; TMP=""
}

# The same busybox as an OCI image archive, for `ctr image import` on the
# containerd nodes (ctr has no `docker import` of a plain root tar): one
# uncompressed layer, named docker.io/corekube/busybox:bed.
build_busybox_oci() {
        [[ -f $BUSYBOX_OCI ]] && return
        msg "building busybox OCI archive $BUSYBOX_OCI"
        TMP=$(mktemp -d "$CACHE_DIR/.tmp-oci-XXXXXX")
        python3 - "$BUSYBOX_TAR" "$TMP/img" <<'PY'
import hashlib, json, os, shutil, sys
layer, out = sys.argv[1], sys.argv[2]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
with open(layer, "rb") as f:
    ldata = f.read()
lb = blob(ldata)
cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
       "rootfs": {"type": "layers", "diff_ids": [lb["digest"]]}}
cb = blob(json.dumps(cfg, sort_keys=True).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": dict(cb, mediaType="application/vnd.oci.image.config.v1+json"),
       "layers": [dict(lb, mediaType="application/vnd.oci.image.layer.v1.tar")]}
mb = blob(json.dumps(man, sort_keys=True).encode())
index = {"schemaVersion": 2, "manifests": [dict(mb, mediaType="application/vnd.oci.image.manifest.v1+json",
         platform={"architecture": "amd64", "os": "linux"},
         annotations={"io.containerd.image.name": "docker.io/corekube/busybox:bed",
                      "org.opencontainers.image.ref.name": "bed"})]}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f, sort_keys=True)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
        tar --numeric-owner --owner=0 --group=0 -C "$TMP/img" -cf "$TMP/oci.tar" .
        mv -T "$TMP/oci.tar" "$BUSYBOX_OCI"
        rm -rf "$TMP"; TMP=""
}

case ${1:-build} in
build|cloud-init)
        mkdir -p "$CACHE_DIR"
        # One builder at a time; a second caller waits and then finds the cache.
        exec 9>"$CACHE_DIR/.lock"
        flock 9
        build_base
        build_docker
        build_busybox
        build_busybox_oci
        echo "CKB_ROOTFS_BASE=$BASE_DIR"
        echo "CKB_ROOTFS_DOCKER=$DOCKER_DIR"
        echo "CKB_BUSYBOX_TAR=$BUSYBOX_TAR"
        echo "CKB_BUSYBOX_OCI=$BUSYBOX_OCI"
        if [[ ${1:-build} == cloud-init ]]; then
                build_cloudinit
                echo "CKB_ROOTFS_CLOUDINIT=$CLOUDINIT_DIR"
        fi
        ;;
prune)
        [[ -d $CACHE_DIR ]] || exit 0
        exec 9>"$CACHE_DIR/.lock"
        flock 9
        for d in "$CACHE_DIR"/rootfs-* "$CACHE_DIR"/docker-* "$CACHE_DIR"/cloudinit-* "$CACHE_DIR"/busybox-*.tar; do
                [[ -e $d ]] || continue
                case $d in "$BASE_DIR"|"$DOCKER_DIR"|"$CLOUDINIT_DIR"|"$BUSYBOX_TAR"|"$BUSYBOX_OCI") continue ;; esac
                msg "removing $d"
                rm -rf --one-file-system "$d"
        done
        ;;
clean)
        [[ -d $CACHE_DIR ]] || exit 0
        exec 9>"$CACHE_DIR/.lock"
        flock 9
        umount_under "$CACHE_DIR"
        rm -rf --one-file-system "$CACHE_DIR"
        ;;
*)
        die "usage: rootfs.sh [build|cloud-init|prune|clean]"
        ;;
esac
