#!/usr/bin/env bash
# Put the original source tarballs of the build recipes into a directory, the
# way a site without internet fills its local mirror: from Debian's source
# packages (apt checks them against the signed Sources index; the build checks
# them again against the sha256 of the recipes).
#   tests/rig/debian-sources.sh DIR [SOURCE=VERSION ...]
# Without package arguments it fetches what the minimal profile and the first
# packages of the lfs profile need.
# Enables deb-src in /etc/apt/sources.list.d/debian.sources when it is off.
set -o errexit -o nounset -o pipefail

dest=${1:?usage: debian-sources.sh DIR [SOURCE=VERSION ...]}
shift
packages=("$@")
if ((${#packages[@]} == 0)); then
  packages=(musl=1.2.3-1 busybox dropbear linux=6.1.8-1 binutils)
fi

sources=/etc/apt/sources.list.d/debian.sources
if [[ -f $sources ]] && ! grep -q '^Types:.*deb-src' "$sources"; then
  echo "debian-sources: enabling deb-src in $sources"
  sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
  apt-get update -q
elif ! apt-cache showsrc musl >/dev/null 2>&1 || [[ -z "$(apt-cache showsrc musl 2>/dev/null)" ]]; then
  apt-get update -q
fi

mkdir -p "$dest"
work=$(mktemp -d "$dest/.apt-source.XXXXXX")
trap 'rm -rf "$work"' EXIT
for pkg in "${packages[@]}"; do
  name=${pkg%%=*}
  if compgen -G "$dest/${name}_*.orig.tar.*" >/dev/null; then
    echo "debian-sources: $name already in $dest"
    continue
  fi
  echo "debian-sources: fetching the source package $pkg"
  (cd "$work" && apt-get source --download-only -q "$pkg" >/dev/null 2>&1) ||
    { echo "debian-sources: apt-get source $pkg failed" >&2; exit 1; }
  mv "$work"/"${name}"_*.orig.tar.* "$dest"/
  rm -f "$work"/*
done
rm -f "$dest"/*.asc
ls -l "$dest"
