#!/usr/bin/env bash
# The built collection installs into a clean path, a playbook in another
# directory uses its roles and filters by FQCN, and ansible-doc documents
# every plugin.
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$repo"
ansible-galaxy collection build --force --output-path "$work/dist" . >/dev/null
tarball=$(ls "$work"/dist/orionos-diskless-*.tar.gz)
echo "collection: built $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
# What galaxy.yml's build_ignore decides (its comments say why): the
# repository's own setup, rig and rig-bound tests stay out; the license, the
# release notes, the documentation and the lab stay in.
listing=$(tar -tzf "$tarball")
if left_in=$(grep -E '^(collections|molecule|\.ci|build|benchmarks|tests/(rig|integration|build|lab|collection|unit/benchmarks)|changelogs/fragments)(/|$)|^(ansible\.cfg|Makefile|\.yamllint|\.ansible-lint|requirements\.(in|txt))$' <<<"$listing"); then
  echo "collection: the tarball holds files that build_ignore should leave out:" >&2
  head -n 5 <<<"$left_in" >&2
  exit 1
fi
for shipped in LICENSE CHANGELOG.rst changelogs/changelog.yaml requirements.yml docs/operations.md \
    plugins/doc_fragments/attributes.py plugins/connection/podman_exec.py playbooks/lab.yml \
    inventories/example/hosts.yml inventories/lab/hosts.yml roles/lab_hosts/meta/argument_specs.yml \
    roles/lab_nodes/meta/argument_specs.yml; do
  grep -qxF "$shipped" <<<"$listing" || { echo "collection: the tarball lacks $shipped" >&2; exit 1; }
done

# Install from outside the repository, with no configuration that could find
# the working tree's own copy of the collection.
printf '[defaults]\n' >"$work/empty.cfg"
(cd "$work" && ANSIBLE_CONFIG="$work/empty.cfg" \
  ansible-galaxy collection install --no-deps -p "$work/collections" "$tarball" >/dev/null 2>&1)
test -f "$work/collections/ansible_collections/orionos/diskless/roles/boot_server/meta/argument_specs.yml"

mkdir -p "$work/infra"
cat >"$work/infra/ansible.cfg" <<CFG
[defaults]
collections_path = $work/collections
CFG
cat >"$work/infra/play.yml" <<'PLAY'
---
- name: Use orionos.diskless from an installed collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: A filter by its FQCN
      ansible.builtin.assert:
        that:
          - "'52:54:00:AA:BB:01' | orionos.diskless.pxe_mac(format='pxelinux') == '01-52-54-00-aa-bb-01'"
    - name: The boot_server checks by FQCN refuse a malformed MAC
      block:
        - name: Run the role's checks
          ansible.builtin.include_role:
            name: orionos.diskless.boot_server
            tasks_from: validate.yml
          vars:
            boot_server_address: 127.0.0.1
            boot_server_subnet: 127.0.0.0/24
            boot_server_default_image: "1.0"
            boot_server_nodes:
              - {name: n1, mac: "52:54:00:zz:00:01", ip: 127.0.0.11}
        - name: Not reached
          ansible.builtin.fail:
            msg: the checks accepted a malformed MAC
      rescue:
        - name: The failure names the node and the field
          ansible.builtin.assert:
            that: "'node n1: mac' in (ansible_failed_result.msg | string)"
PLAY
(cd "$work/infra" && ANSIBLE_CONFIG="$work/infra/ansible.cfg" \
  ansible-playbook -i localhost, -e "ansible_connection=local ansible_python_interpreter=$(command -v python)" play.yml >"$work/play.log") || {
  cat "$work/play.log"; exit 1; }
echo "collection: a playbook outside the repository used the installed roles and filters"

export ANSIBLE_CONFIG="$work/infra/ansible.cfg"
cd "$work/infra"
for filter in pxe_mac inventory_nodes inventory_servers boot_network_errors dhcp_range_slice kernel_args_list subnet_netmask \
    ip_in_subnet nfs_export_identity nfs_client_errors boot_image stable_bucket boot_policy_errors pinned_policy kconfig_unmet; do
  doc=$(ansible-doc -t filter "orionos.diskless.$filter")
  grep -q 'EXAMPLES' <<<"$doc" || { echo "ansible-doc: no docs for $filter" >&2; exit 1; }
done
listed=$(ansible-doc -t filter -l orionos.diskless | wc -l)
echo "collection: ansible-doc documents $listed filters"
for role in boot_server lab_hosts lab_nodes image_store nfs_server vrrp log_server lfs_sources lfs_toolchain lfs_system kernel \
    initramfs image; do
  doc=$(ANSIBLE_NOCOLOR=1 ansible-doc -t role "orionos.diskless.$role")
  grep -qE 'ENTRY POINT: [*]?main' <<<"$doc" || { echo "ansible-doc: no role docs for $role" >&2; exit 1; }
done
echo "collection: ansible-doc documents the roles"
modules=$(ansible-doc -t module -l orionos.diskless | awk '{print $1}')
[ -n "$modules" ] || { echo "ansible-doc: the collection lists no modules" >&2; exit 1; }
for module in $modules; do
  doc=$(ANSIBLE_NOCOLOR=1 ansible-doc -t module "$module")
  grep -q 'EXAMPLES' <<<"$doc" || { echo "ansible-doc: no docs for module $module" >&2; exit 1; }
done
echo "collection: ansible-doc documents the modules"

# The README's `- role: orionos.diskless.boot_server` example, alone, against a real server container.
bash "$repo/tests/collection/readme-example.sh" "$work/collections" "$work"
