#!/bin/bash
# Builds the Debian package from the source tree the way a packager would:
# a copy of the tree with packaging/debian as debian/, `dpkg-buildpackage
# -us -uc -b`. The result is cached by a hash of the sources, so repeated
# calls (the test bed's nodes, the deploy tests) build once.
#
#   build-deb.sh OUTDIR      prints the path of the .deb on stdout
#
# OUTDIR/<hash>/ holds the .deb, .changes, .buildinfo and build.log.
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: build-deb.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The files git would ship (tracked, and new ones not ignored), so a build
# dir or a stale artefact in the tree never enters the package or the hash.
list_sources() {
        git -C "$SRCDIR" ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do [[ -f $SRCDIR/$f ]] && printf '%s\0' "$f"; done
}

key=$(cd "$SRCDIR" && list_sources | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
dir=$OUT/$key
exec 9>"$OUT/.lock"
flock 9
deb=$(ls "$dir"/corekube-agent_*.deb 2>/dev/null | head -n 1 || true)
if [[ -n $deb ]]; then
        echo "$deb"
        exit 0
fi

tmp=$(mktemp -d "$OUT/.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
(cd "$SRCDIR" && list_sources | xargs -0 cp --parents -t "$tmp/src")
rm -rf "$tmp/src/debian"
cp -a "$SRCDIR/packaging/debian" "$tmp/src/debian"
if ! (cd "$tmp/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
        tail -n 40 "$tmp/build.log" >&2
        echo "build-deb: dpkg-buildpackage failed" >&2
        exit 1
fi
mkdir "$tmp/out"
mv "$tmp"/*.deb "$tmp"/*.changes "$tmp"/*.buildinfo "$tmp/build.log" "$tmp/out/"
rm -rf "$dir"
mv -T "$tmp/out" "$dir"
# Keep the five newest builds.
ls -1dt "$OUT"/*/ | tail -n +6 | xargs -r rm -rf --
ls "$dir"/corekube-agent_*.deb | head -n 1
