#!/usr/bin/env bash
# Assemble the kernel NFS server guest (see Containerfile.nfsd-guest) in DIR:
#   DIR/vmlinuz, DIR/initrd.img  Debian's kernel and its initramfs
#   DIR/root.ext4                the root file system (sparse, 3 GiB)
#   DIR/id_ed25519               root's SSH key for the guest
#   DIR/known_hosts              the guest's host keys (any address), for strict checking
# The container image is rebuilt only when its recipe changed, the disk only
# when the image changed (DIR/image-id).
set -o errexit -o nounset -o pipefail

dir=${1:?usage: build-nfsd-guest.sh DIR}
# One build at a time (make test starts one early in its build lane; the test
# that boots the guest waits for it here).
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
here=$(cd "$(dirname "$0")" && pwd)
image=localhost/orion-nfsd-guest
recipe_hash=$(cat "$0" "$here/Containerfile.nfsd-guest" "$here/Containerfile.systemd" | sha256sum | cut -c1-16)

bash "$here/build-images.sh"
if [[ "$(podman image inspect --format '{{ index .Labels "org.orionos.recipe" }}' $image 2>/dev/null || true)" != "$recipe_hash" ]]; then
  echo "build-nfsd-guest: building $image"
  podman build -q --label "org.orionos.recipe=$recipe_hash" -t $image -f "$here/Containerfile.nfsd-guest" "$here"
fi
id=$(podman image inspect --format '{{ .Id }}' $image)
mkdir -p "$dir"
if [[ -f "$dir/root.ext4" && "$(cat "$dir/image-id" 2>/dev/null)" == "$id" ]]; then
  echo "build-nfsd-guest: $dir is up to date"
  exit 0
fi

echo "build-nfsd-guest: assembling the guest's disk in $dir"
rm -f "$dir/image-id"
tree=$(mktemp -d "$dir/tree.XXXXXX")
container=$(podman create $image)
trap 'podman rm -f "$container" >/dev/null; rm -rf "$tree"' EXIT
podman export "$container" | tar -C "$tree" --numeric-owner -x
[[ -f "$dir/id_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -C orion-nfsd-guest -f "$dir/id_ed25519"
install -d -m 0700 "$tree/root/.ssh"
install -m 0600 "$dir/id_ed25519.pub" "$tree/root/.ssh/authorized_keys"
ssh-keygen -q -A -f "$tree"
echo orion-nfsd > "$tree/etc/hostname"
: > "$dir/known_hosts"
for key in "$tree"/etc/ssh/ssh_host_*_key.pub; do
  echo "* $(cut -d' ' -f1,2 "$key")" >> "$dir/known_hosts"
done
cp "$(printf '%s\n' "$tree"/boot/vmlinuz-* | sort -V | tail -n 1)" "$dir/vmlinuz"
cp "$(printf '%s\n' "$tree"/boot/initrd.img-* | sort -V | tail -n 1)" "$dir/initrd.img"
rm -f "$dir/root.ext4"
mkfs.ext4 -q -F -L orion-nfsd -d "$tree" "$dir/root.ext4" 3G
echo "$id" > "$dir/image-id"
