#!/usr/bin/env bash
# Prepare a Debian 12 machine to run the OrionOS lab and test rig.
#
# Installs the host packages (podman, runc, debootstrap, QEMU, iPXE ROMs and
# client tools used by the tests) and writes the podman settings this kind of
# sandboxed host needs:
#   - runtime runc (crun fails with cgroups in hybrid mode),
#   - no default ulimits (raising a hard rlimit is refused),
#   - the netavark network backend (static IPs on per-scenario networks).
# Safe to run again: it only changes what differs.
set -o errexit -o nounset -o pipefail

PACKAGES=(
  podman runc netavark aardvark-dns iptables debootstrap
  qemu-system-x86 ipxe-qemu ipxe ovmf
  busybox curl tftp-hpa iproute2 make rsync git python3-venv shellcheck
  openssh-client e2fsprogs
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "host-setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "host-setup: host packages present"
fi

conf=/etc/containers/containers.conf
want=$(cat <<'EOF'
# Written by OrionOS tests/rig/host-setup.sh
[containers]
default_ulimits = []

[engine]
runtime = "runc"
# Debian 12 installs netavark and aardvark-dns here.
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/libexec/podman"]

[network]
network_backend = "netavark"
EOF
)
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$want" ]]; then
  if [[ -f $conf ]] && ! grep -q 'Written by OrionOS' "$conf"; then
    cp -p "$conf" "$conf.orion-backup"
    echo "host-setup: saved the previous $conf as $conf.orion-backup"
  fi
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$want" >"$conf"
  echo "host-setup: wrote $conf"
fi
