#!/usr/bin/env bash
# Build the local container images the lab and the Molecule scenarios run on.
#
# No registry is reachable, so the base comes from debootstrap, from the
# Debian mirror of this machine's apt sources (or ORION_DEBIAN_MIRROR):
#   localhost/orion-base     Debian 12 minbase, imported from a debootstrap tree
#   localhost/orion-systemd  base + systemd, python3, iproute2 (test hosts)
# An image is rebuilt only when its recipe (this file and the Containerfile)
# changed: the recipe hash is stored as an image label.
set -o errexit -o nounset -o pipefail

# One build at a time (make test's lanes and the tests that need an image may
# ask at once): the script runs again under the lock, which its children do not hold.
if [[ -z "${ORION_BUILD_IMAGES_LOCKED:-}" ]]; then
  ORION_BUILD_IMAGES_LOCKED=1 exec flock -o /var/tmp/orion-build-images.lock bash "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
suite=${ORION_DEBIAN_SUITE:-bookworm}
recipe_hash=$(cat "$0" "$here/Containerfile.systemd" | sha256sum | cut -c1-16)

label_of() {
  podman image inspect --format '{{ index .Labels "org.orionos.recipe" }}' "$1" 2>/dev/null || true
}

if [[ -z "$(podman image ls -q localhost/orion-base)" ]]; then
  tree=$(mktemp -d /var/tmp/orion-base.XXXXXX)
  trap 'rm -rf "$tree"' EXIT
  mirror=${ORION_DEBIAN_MIRROR:-$(python3 "$here/apt-mirror.py" "$suite")}
  echo "build-images: debootstrap $suite (minbase) from $mirror"
  debootstrap --variant=minbase "$suite" "$tree" "$mirror" >/var/tmp/orion-debootstrap.log 2>&1 || {
    tail -n 20 /var/tmp/orion-debootstrap.log >&2
    exit 1
  }
  tar -C "$tree" -c . | podman import - localhost/orion-base
  rm -rf "$tree"
  trap - EXIT
else
  echo "build-images: localhost/orion-base present"
fi

if [[ "$(label_of localhost/orion-systemd)" != "$recipe_hash" ]]; then
  echo "build-images: building localhost/orion-systemd"
  podman build --label "org.orionos.recipe=$recipe_hash" \
    -t localhost/orion-systemd -f "$here/Containerfile.systemd" "$here"
else
  echo "build-images: localhost/orion-systemd is up to date"
fi
