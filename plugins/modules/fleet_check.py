#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_check
short_description: Check a role's settings together with the fleet they serve, listing every problem at once
version_added: 0.5.0
description:
  - Runs on the controller (an action plugin). Hands a role's settings and the host's gathered network facts to
    the collection's one model of the fleet (C(plugins/module_utils/fleet)), which parses and checks the boot
    servers, the node subnet, the nodes, the boot policy and the nodes' configuration.
  - Fails once with every problem, each naming the node or server, the field and the bad value, grouped by what
    they are in (the inventory, the boot policy, the node configuration). Nothing is changed either way.
  - On success returns the values the role's tasks use, so that they take the parsed model instead of
    working the same things out again.
  - The host's network facts must have been gathered (M(ansible.builtin.setup) with C(gather_subset=network)).
author:
  - OrionOS maintainers (@orionos)
requirements:
  - netaddr (Python library, on the controller)
options:
  role:
    description: The role whose settings these are.
    type: str
    required: true
    choices: [boot_server, boot_service, etcd, image, image_store, kernel, lfs_sources, log_server, nfs_server, vrrp]
  settings:
    description:
      - The role's settings without their role prefix, for V(boot_server) C(address), C(service_address),
        C(interface), C(subnet), C(dhcp_mode), C(dhcp_interface), C(unknown_nodes), C(dynamic_range), C(peers),
        C(nodes), C(default_image), C(policy), C(policy_source), C(http_port), C(tftp_max), C(root),
        C(tftp_root), C(router_advertisement), C(node_args) (the init's arguments, C(boot_server_node_args)),
        C(kernel_args) (the site's arguments for every node; no C(orion.*) but the init's settings) and C(node_config).
      - For V(image_store) C(peers), C(source), C(host_address), C(root), C(sync_user), C(ssh_port), C(bwlimit) and
        C(sync_timeout); for V(log_server) C(dir), C(port), C(udp), C(tcp), C(max_file_size), C(rotate),
        C(max_total_mb), C(allowed_senders) and C(rotate_schedule); for V(nfs_server) C(clients), C(node_ips),
        C(sec), C(versions), C(implementation), C(export_path), C(grace_period), C(lease_lifetime), C(ports) and
        what the role probed, C(fstype) and C(has_nfsd); for V(vrrp) C(vip), C(address), C(interface), C(peers),
        C(priority), C(router_id), C(version), C(advert_int), C(preempt_delay), C(checks) and C(master_restarts).
      - For V(image) C(version), C(format), C(compression), C(compressors) (each format's compressors),
        C(block_size) and C(arch); for V(kernel) C(patches), C(patch_dir), C(base_config), C(fragments),
        C(fragment_dir) and C(extra_fragments) (the patch and fragment files are read on the controller); for
        V(lfs_sources) C(include) (the profile's), C(include_dir), C(recipe_file) and C(mirrors).
      - For V(boot_service) C(port), C(root), C(ledger), C(endpoints), C(etcd_timeout), C(report_interval) and
        C(sweep_interval).
      - For V(etcd) C(members), C(this), C(client_port), C(peer_port), C(allow_even), C(token), C(other_ports),
        C(node_ips), C(snapshot_keep), C(snapshot_schedule), C(snapshot_dir), C(data_dir), and C(ca),
        C(certificates) (M(community.crypto.x509_certificate_info) results of the certificates already made, by
        member name) and C(now) (for their expiry).
    type: dict
    required: true
  images:
    description:
      - The versions published on the policy source, as M(orionos.diskless.image) lists them. Omit to take the
        versions the policy names on trust.
    type: list
    elements: raw
  previous:
    description: The node table of the last resolution (C(resolution.json)'s C(nodes)), for the fallbacks.
    type: dict
    default: {}
extends_documentation_fragment:
  - orionos.diskless.attributes
  - orionos.diskless.attributes.action
attributes:
  check_mode:
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    details: Changes nothing, so there is no diff.
  idempotent:
    details: Reads only.
"""

EXAMPLES = r"""
- name: Check the boot server's settings, its nodes, the policy and the node configuration
  orionos.diskless.fleet_check:
    role: boot_server
    settings:
      address: 10.20.0.2
      subnet: 10.20.0.0/16
      dhcp_mode: authoritative
      unknown_nodes: ignore
      peers: [{name: boot1, address: 10.20.0.2}, {name: boot2, address: 10.20.0.3}]
      nodes: [{name: cn0001, mac: "0c:c4:7a:10:00:01", ip: 10.20.1.1}]
      default_image: "2026.11.0"
      http_port: 80
      tftp_max: 1000
      root: /srv/orion
      tftp_root: /srv/orion/tftp
  register: checked
"""

RETURN = r"""
problems:
  description: Every problem found (empty when the settings are usable).
  returned: always
  type: list
  elements: str
  sample: ["node cn0002: mac 0c:c4:7a:10:00:01 is already used by node cn0001"]
fleet:
  description:
    - What the role's tasks use, for V(boot_server) C(peers) (the servers in order, C(name) and C(address)),
      C(addresses), C(iface) (the interface facing the node subnet), C(policy_host), C(fetch_order) (the order a
      node's script tries the servers), C(nodes), C(policy) (the effective policy) and C(range_slice) (this
      server's share of the dynamic range); for V(image_store) C(peers), C(names), C(source), C(source_address)
      and C(source_spec) (the source as C(known_hosts) names it); for V(vrrp) C(peers) (with their priorities),
      C(iface), C(me) (this server's entry) and C(ipv4) (the interface's IPv4 facts); for V(etcd) C(members)
      (with their URLs and certificate names), C(this), C(initial_cluster), C(endpoints) and C(quorum); for
      V(boot_service) C(endpoints) (C(host) and C(port) of each); nothing
      for the others.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main():
    module = AnsibleModule(argument_spec={
        "role": {"type": "str", "required": True, "choices": ["boot_server", "boot_service", "etcd", "image", "image_store", "kernel", "lfs_sources",
                                                              "log_server", "nfs_server", "vrrp"]},
        "settings": {"type": "dict", "required": True},
        "images": {"type": "list", "elements": "raw"},
        "previous": {"type": "dict", "default": {}},
    }, supports_check_mode=True)
    module.fail_json(msg="orionos.diskless.fleet_check runs on the controller as an action plugin")


if __name__ == "__main__":
    main()
