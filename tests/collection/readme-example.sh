#!/usr/bin/env bash
# The README's example, as a new user runs it: from a directory outside the
# repository, with only the installed collection, an inventory shaped like
# inventories/example and a play that names the boot_server role and nothing
# else. Against a real server container, a client with a node's MAC must get
# the node's reservation from dnsmasq, and the node's iPXE script must be
# served over HTTP.
# Usage: readme-example.sh COLLECTIONS_DIR WORK_DIR
set -o errexit -o nounset -o pipefail
collections=$1
site=$2/site
net=orion-col
server=orion-col-srv1
probe=orion-col-probe
mkdir -p "$site/group_vars"

cleanup() {
  podman rm -f -t 0 "$server" "$probe" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

cat >"$site/ansible.cfg" <<CFG
[defaults]
collections_path = $collections
interpreter_python = auto_silent
CFG

# The containers, made with the installed collection's lab_hosts role.
cat >"$site/hosts.yml" <<'INV'
---
all:
  children:
    orion_boot_servers:
      hosts:
        orion-col-srv1:
          boot_server_address: 10.231.9.2
    orion_nodes:
      children:
        hpc:
          hosts:
            cn0001:
              orion_node_mac: "52-54-00-0C-09-01"
              orion_node_ip: 10.231.9.101
            cn0002:
              orion_node_mac: "5254.000c.0902"
              orion_node_ip: 10.231.9.102
INV
cat >"$site/group_vars/orion_boot_servers.yml" <<'VARS'
---
ansible_connection: orionos.diskless.podman_exec
ansible_python_interpreter: /usr/bin/python3
boot_server_subnet: 10.231.9.0/24
boot_server_dhcp_mode: authoritative
boot_server_unknown_nodes: ignore
boot_server_default_image: "2026.11.0"
# Nothing is published in this store; the versions are taken on trust.
boot_server_image_check: false
VARS
cat >"$site/containers.yml" <<'PLAY'
---
- name: Start a boot server container and a probe
  hosts: localhost
  gather_facts: false
  roles:
    - role: orionos.diskless.lab_hosts
      vars:
        lab_hosts_network: {name: orion-col, subnet: 10.231.9.0/24}
        lab_hosts_containers:
          - {name: orion-col-srv1, ip: 10.231.9.2}
          - {name: orion-col-probe, ip: 10.231.9.50}
PLAY
# The README's example, word for word.
cat >"$site/site.yml" <<'PLAY'
---
- hosts: orion_boot_servers
  roles:
    - role: orionos.diskless.boot_server
PLAY

cd "$site"
export ANSIBLE_CONFIG="$site/ansible.cfg" ANSIBLE_NOCOLOR=1
t0=$(date +%s)
ansible-playbook -i localhost, -e "ansible_connection=local ansible_python_interpreter=$(command -v python)" \
  containers.yml >"$site/containers.log" 2>&1 || { tail -n 40 "$site/containers.log"; exit 1; }
ansible-playbook -i hosts.yml site.yml >"$site/site.log" 2>&1 || { tail -n 60 "$site/site.log"; exit 1; }
echo "collection: the README example configured $server in $(( $(date +%s) - t0 )) s"

# The node's script over HTTP, fetched from the probe as a node's iPXE would.
script=$(podman exec "$probe" curl -fsS http://10.231.9.2/boot/nodes/cn0001.ipxe)
if ! grep -q '^#!ipxe' <<<"$script" || ! grep -q 'OrionOS node cn0001 boots image 2026.11.0' <<<"$script"; then
  echo "collection: the script of cn0001 is not served as expected:" >&2; echo "$script" >&2; exit 1
fi
# And under its MAC, as the entry script asks for it.
podman exec "$probe" curl -fsS http://10.231.9.2/boot/nodes/52-54-00-0c-09-02.ipxe | grep -q 'node cn0002' || {
  echo "collection: cn0002's MAC does not lead to its script" >&2; exit 1; }

# The reservation: a DHCP client with cn0002's MAC gets cn0002's address.
podman exec "$probe" sh -c '
  set -e
  ip link add dc0 link eth0 address 52:54:00:0c:09:02 type macvlan mode bridge
  ip link set dc0 up
  printf "#!/bin/sh\n[ \"\$1\" = bound ] && echo \"\$ip\" > /tmp/lease-ip\nexit 0\n" > /tmp/lease.sh
  chmod +x /tmp/lease.sh
  timeout 60 busybox udhcpc -i dc0 -f -q -n -t 5 -T 2 -s /tmp/lease.sh >/dev/null 2>&1 || true
  ip link del dc0' || true
leased=$(podman exec "$probe" cat /tmp/lease-ip 2>/dev/null || true)
[[ "$leased" == "10.231.9.102" ]] || {
  echo "collection: a client with cn0002's MAC leased '${leased}', not its reservation 10.231.9.102" >&2; exit 1; }
echo "collection: the README example serves cn0001's script and gives cn0002 its reservation"

# A second run changes nothing.
ansible-playbook -i hosts.yml site.yml >"$site/site2.log" 2>&1 || { tail -n 40 "$site/site2.log"; exit 1; }
if grep -E '^[^ ]+ +: ok=' "$site/site2.log" | grep -vq 'changed=0 '; then
  echo "collection: the README example changed something on its second run:" >&2
  grep -E '^[^ ]+ +: ok=' "$site/site2.log" >&2; exit 1
fi
echo "collection: the second run of the README example changed nothing"
