#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: boot_policy
short_description: Decide which image every diskless node boots and write all boot files in one step
version_added: 0.3.0
description:
  - Validates the nodes, the boot policy and the image store together, collecting every
    problem (each naming the node or rule and the field) and failing once with all of them
    before anything is written.
  - Resolves every node - the image it boots, the previous good image it falls back to,
    its kernel command line, its config profile and the rule that decided - and writes
    one iPXE script per node (C(<name>.ipxe), plus a C(<mac>.ipxe) link for each MAC in
    iPXE C(hexhyp) notation), the dnsmasq DHCP reservations (C(dhcp-hosts)) and the
    resolution table for status tools (C(resolution.json)).
  - All files are written into a new directory beside O(dest) and swapped in with one
    atomic rename, so a server never serves a half-written set; a run killed at any point
    leaves the previous complete set in place. O(dest) becomes a symbolic link to the
    current set.
  - Reports a change only when some file's content differs.
  - Rules are tried in order; the first one whose selectors all match, and whose
    C(percent) slice holds the node, decides. Nodes no rule takes get
    O(policy.default). The slice is chosen by a stable hash of the node name and the
    rule's seed, so raising a percent only adds nodes and never moves one back.
  - Fallbacks - the image a node's script tries when its image cannot be fetched - are
    what the node booted before when its image changes (read from the previous
    C(resolution.json)), else the fallback it already had, else the newest published image
    of its arch that is older than its image.
  - "Values that reach a script or a kernel command line (names, versions, kernel
    arguments, profiles, server addresses) are limited to letters, digits and
    C(_ . , : = / + @ % -); anything else is refused, never escaped."
author:
  - OrionOS maintainers (@orionos)
options:
  dest:
    description:
      - The node directory nginx serves and dnsmasq reads, for example C(/srv/orion/boot/nodes).
      - Becomes a symbolic link to a generation directory C(.<name>-<digest>) beside it. A real
        directory there is replaced on the first run.
    type: path
    required: true
  nodes:
    description:
      - The nodes. Each is a mapping with C(name) (a host name), C(mac) (one or a list, any
        common notation), optional C(ip) (IPv4 or IPv6), C(groups), C(labels) (a mapping or
        a list of C(key=value)), C(arch) (default C(x86_64)), C(firmware) (C(bios) or C(uefi))
        and C(kernel_args) (a string or list).
      - C(image) and C(fallback_image) keys (from O(nodes) written for the boot_server role) are
        accepted and ignored; the policy decides.
      - These are the fields of the collection's fleet model (C(plugins/module_utils/fleet)), which parses and
        checks every node; an unknown field is refused.
      - Exactly one of O(nodes) and O(nodes_file) is required.
    type: list
    elements: dict
  nodes_file:
    description:
      - A file on the host the module runs on holding the nodes, as a JSON or YAML list (or a mapping
        with a C(nodes) list), for example an export of the site's inventory database.
      - For very large node lists this skips Ansible's own handling of the list, which costs more than
        the module's work (see docs/benchmarks.md).
    type: path
  policy:
    description: The boot policy.
    type: dict
    required: true
    suboptions:
      channels:
        description: Channel name -> version, or channel name -> mapping of arch -> version.
        type: dict
        default: {}
      rules:
        description:
          - Ordered rules. Each has optional C(name) (names the rule in messages and
            is the default C(seed)), C(match) (selectors C(mac), C(name) glob, C(group),
            C(label), C(subnet) CIDR, C(arch), C(firmware); a list means any of its values,
            all selectors given must match; no C(match) matches every node), C(percent)
            (0-100), C(seed), exactly one of C(channel) or C(image) (a pinned version),
            optional C(fallback) (a pinned fallback version), C(kernel_args) and C(profile).
          - A rule that follows a rule matching every node, or one with the same selectors
            and no percent, can never match and is an error.
        type: list
        elements: dict
        default: []
      default:
        description: What nodes no rule takes get - exactly one of C(channel) or C(image), optional C(fallback), C(kernel_args) and C(profile).
        type: dict
        required: true
  store:
    description:
      - Root of the image store (versions in C(<store>/images)). Channels and pinned images
        must name versions found there, of the right arch, and fallbacks are chosen among them.
      - Omit to take versions on trust (no store check and no automatic fallback). A store without
        an C(images) directory has no versions.
    type: path
  images:
    description:
      - The published images instead of O(store), as the M(orionos.diskless.image) module lists them (mappings
        with C(version), C(arch), C(created), C(state), C(kernel), C(initramfs)). Servers that must decide alike
        pass the list of the same store, for example the image source's.
    type: list
    elements: dict
  subnets:
    description:
      - Node subnets, as CIDR strings or mappings with C(subnet) and any settings. A node IP
        outside all of them is an error, as are two overlapping subnets with different settings.
    type: list
    elements: raw
    default: []
  servers:
    description: Boot server addresses in the order a node's script tries them (the floating address first).
    type: list
    elements: str
    required: true
  http_port:
    description: HTTP port of the boot servers.
    type: int
    default: 80
  url_path:
    description: URL path under which the servers serve the image versions (/-separated names of letters, digits and
      C(. _ -)).
    type: str
    default: /boot/images
  kernel_args:
    description:
      - Kernel arguments every node gets before those of its rule and its own (the init's C(orion.*) arguments and the
        site's).
      - The arguments the script writes itself (C(initrd), C(orion.node), C(orion.image), C(orion.servers),
        C(orion.profile), C(orion.fallback), C(orion.attempt)) are refused here, and in rules and nodes every
        C(orion.*) argument but the init's settings; a node's whole command line may be at most 2047 bytes.
    type: raw
    default: []
  kernel_name:
    description: Kernel file name for versions whose manifest names none (or when O(store) is omitted).
    type: str
    default: vmlinuz
  initramfs_name:
    description: Initramfs file name for versions whose manifest names none (or when O(store) is omitted).
    type: str
    default: initramfs.img
  failure_action:
    description: What a node's script does when no image could be fetched from any server.
    type: str
    choices: [reboot, exit, shell]
    default: reboot
  failure_delay:
    description: Seconds a failing node waits before rebooting.
    type: int
    default: 30
  history:
    description: Resolution table of the previous run, for fallbacks. Defaults to the one in O(dest).
    type: path
  previous:
    description:
      - The previous resolution's nodes (C(resolution.json)'s C(nodes)), given directly instead of
        O(history). Servers that must render identical files pass the same table, for example the
        one read from the image source server.
    type: dict
  explain:
    description:
      - Nodes whose full resolution to return in RV(explain). The whole table is always written to
        C(resolution.json); returning it for thousands of nodes would only slow the run down.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: Validates and resolves everything and reports what would change, writing nothing.
  diff_mode:
    details: The diff lists the nodes whose boot target (image and fallback) changes.
requirements:
  - netaddr (Python library, on the host the module runs on; the boot_server role installs python3-netaddr)
notes:
  - dnsmasq reads C(dhcp-hosts) when it starts and on SIGHUP; send it one when this module reports a change.
seealso:
  - name: The boot_server role
    description: Calls this module with the inventory's nodes and policy.
    link: https://github.com/orionos/diskless/tree/main/roles/boot_server
  - module: orionos.diskless.image
"""

EXAMPLES = r"""
- name: Render the boot files of every node
  orionos.diskless.boot_policy:
    dest: /srv/orion/boot/nodes
    store: /srv/orion
    servers: [10.0.0.10, 10.0.0.2, 10.0.0.3]
    subnets: [10.0.0.0/24, 10.0.1.0/24]
    kernel_args: ["console=ttyS0,115200n8"]
    nodes:
      - {name: node001, mac: "52:54:00:aa:00:01", ip: 10.0.0.101, groups: [compute]}
      - {name: node002, mac: 52-54-00-AA-00-02, ip: 10.0.1.102, labels: {rack: r2}}
    policy:
      channels: {stable: 2026.11.0, canary: 2026.11.1}
      rules:
        - name: pinned-debug
          match: {name: "node00[2]"}
          image: 2026.10.3
          kernel_args: [debug]
        - name: canary
          match: {group: compute}
          percent: 10
          channel: canary
        - name: rack-two
          match: {label: {rack: r2}, subnet: 10.0.1.0/24}
          channel: stable
          profile: storage
      default: {channel: stable}
    explain: [node001, node002]
  register: policy
  notify: Reload dnsmasq

- name: Show which rule decided for each node
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.image }} by {{ item.value.rule }} ({{ item.value.reason }})"
  loop: "{{ policy.explain | dict2items }}"
"""

RETURN = r"""
nodes:
  description: Number of nodes resolved.
  returned: always
  type: int
  sample: 10000
explain:
  description: Resolution of each node named in O(explain) (as in C(resolution.json)'s C(nodes)).
  returned: always
  type: dict
  sample:
    node001:
      image: 2026.11.1
      fallback: 2026.11.0
      fallback_reason: previous image
      channel: canary
      rule: rule canary
      reason: bucket 4 < percent 10
      profile: default
      kernel_args: [console=ttyS0,115200n8]
      macs: ["52:54:00:aa:00:01"]
      ip: 10.0.0.101
changed_nodes:
  description: Nodes whose boot target (image or fallback) changes, with before and after.
  returned: always
  type: dict
  sample: {node001: ["2026.11.0", "2026.11.1 (fallback 2026.11.0)"]}
images:
  description: How many nodes boot each version.
  returned: always
  type: dict
  sample: {"2026.11.0": 9000, "2026.11.1": 1000}
files:
  description: File names added, removed and changed in O(dest).
  returned: always
  type: dict
  sample: {added: [node003.ipxe], removed: [], changed: [dhcp-hosts, resolution.json]}
problems:
  description: Every problem found, when validation fails.
  returned: failure
  type: list
  elements: str
  sample: ["node node002: mac 52:54:00:aa:00:01 (given as '52-54-00-AA-00-01') is already used by node node001"]
"""

import json
import os

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with Ansible on most hosts
    HAS_YAML = False

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine
from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils import netboot
from ansible_collections.orionos.diskless.plugins.module_utils import tree_swap


def _channels_out(raw):
    return raw.get("channels") or {} if isinstance(raw, dict) else {}


def _read_nodes(path):
    """The node list of a JSON or YAML file; (nodes, problem)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        return [], "nodes_file: cannot read %s (%s)" % (path, exc.strerror or exc)
    if not path.endswith(".json") and not HAS_YAML:
        return [], "nodes_file: %s is YAML, which needs PyYAML on this host; give a .json file" % path
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except ValueError as exc:
        return [], "nodes_file: %s is not valid JSON (%s)" % (path, str(exc).splitlines()[0])
    except yaml.YAMLError as exc:
        return [], "nodes_file: %s is not valid YAML (%s)" % (path, str(exc).splitlines()[0])
    if isinstance(data, dict) and "nodes" in data:
        data = data["nodes"]
    if not isinstance(data, list):
        return [], "nodes_file: %s holds no list of nodes (nor a mapping with one under 'nodes')" % path
    return data, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            nodes=dict(type="list", elements="dict"),
            nodes_file=dict(type="path"),
            policy=dict(type="dict", required=True),
            store=dict(type="path"),
            images=dict(type="list", elements="dict"),
            subnets=dict(type="list", elements="raw", default=[]),
            servers=dict(type="list", elements="str", required=True),
            http_port=dict(type="int", default=80),
            url_path=dict(type="str", default="/boot/images"),
            kernel_args=dict(type="raw", default=[]),
            kernel_name=dict(type="str", default="vmlinuz"),
            initramfs_name=dict(type="str", default="initramfs.img"),
            failure_action=dict(type="str", choices=["reboot", "exit", "shell"], default="reboot"),
            failure_delay=dict(type="int", default=30),
            history=dict(type="path"),
            previous=dict(type="dict"),
            explain=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
        mutually_exclusive=[("history", "previous"), ("store", "images"), ("nodes", "nodes_file")],
        required_one_of=[("nodes", "nodes_file")],
    )
    if not netboot.HAS_NETADDR:
        module.fail_json(msg=missing_required_lib("netaddr"), exception=str(netboot.NETADDR_IMPORT_ERROR))
    p = module.params
    dest = p["dest"].rstrip("/")
    problems = []
    nodes = p["nodes"]
    if p["nodes_file"]:
        nodes, problem = _read_nodes(p["nodes_file"])
        if problem:
            problems.append(problem)
    problems.extend(engine.script_option_problems(
        p["servers"], p["http_port"], p["url_path"], p["failure_action"], p["failure_delay"],
        p["kernel_name"], p["initramfs_name"]))
    if not os.path.isdir(os.path.dirname(dest)) and not module.check_mode:
        problems.append("dest: the parent directory %s does not exist" % os.path.dirname(dest))
    try:
        tree_swap.check_dest(dest)
    except tree_swap.TreeError as exc:
        problems.append("dest: %s" % exc)
    images = None
    if p["images"] is not None:
        try:
            images = engine.coerce_images(p["images"])
        except (TypeError, ValueError) as exc:
            problems.append("images: %s" % exc)
    if p["store"]:
        images = {}
        if os.path.isdir(os.path.join(p["store"], "images")):
            try:
                images, store_problems = engine.load_images(p["store"])
            except store.ImageStoreError as exc:
                store_problems = [str(exc)]
                images = {}
            for item in store_problems:
                module.warn("image store: %s (this version is left out)" % item)
    if p["previous"] is not None:
        previous = p["previous"]
    else:
        previous = engine.load_table(p["history"] or os.path.join(dest, "resolution.json"))
    try:
        if problems:
            raise engine.PolicyError(problems)
        table = engine.resolve(nodes, p["policy"], images=images, subnets=p["subnets"],
                               previous=previous, kernel_args=p["kernel_args"])
        files = engine.render_tree(table, p["servers"], images or {},
                                   channels=_channels_out(p["policy"]),
                                   http_port=p["http_port"], url_path=p["url_path"],
                                   failure=p["failure_action"], failure_delay=p["failure_delay"],
                                   kernel_name=p["kernel_name"], initramfs_name=p["initramfs_name"])
    except engine.PolicyError as exc:
        module.fail_json(msg=str(exc), problems=exc.problems)

    current = tree_swap.current_target(dest)
    before_files = tree_swap.read_tree(current) if current else {}
    file_diff = tree_swap.diff_names(before_files, files)
    changed = before_files != files or not os.path.islink(dest)
    changes = engine.boot_changes(previous, table)
    counts = {}
    for entry in table.values():
        counts[entry["image"]] = counts.get(entry["image"], 0) + 1
    unknown = sorted(set(p["explain"]) - set(table))
    if unknown:
        module.fail_json(msg="explain: no node named %s" % ", ".join(unknown))
    result = dict(changed=changed, nodes=len(table), images=counts, files=file_diff,
                  explain={name: table[name] for name in p["explain"]},
                  changed_nodes={name: list(pair) for name, pair in changes.items()})
    if module._diff:
        result["diff"] = dict(
            before_header="%s (boot targets)" % dest, after_header="%s (boot targets)" % dest,
            before="".join("%s: %s\n" % (n, b) for n, (b, a) in changes.items()),
            after="".join("%s: %s\n" % (n, a) for n, (b, a) in changes.items()))
    tree_swap.finish(module, dest, files, result, what="node files")


if __name__ == "__main__":
    main()
