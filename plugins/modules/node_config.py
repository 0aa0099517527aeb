#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_config
short_description: Render every diskless node's declarative configuration in one step
version_added: 0.4.0
description:
  - Checks the whole configuration tree (default, group and node fragments) against the nodes
    and groups of the inventory, collecting every problem (each naming the fragment, the field
    and the value) and failing once with all of them before anything is written.
  - For each node, chooses its fragments by name (the node's own fragment of a name wins over a
    group's, a group's over the default's; between two groups, the later one in alphabetical
    order wins), merges them in the order of their names and writes C(<node>.conf), the line
    format the node's init reads on every boot. The file ends with the sha256 of the lines
    before it; a node refuses a damaged or cut file.
  - All files are written into a new directory beside O(dest) and swapped in with one atomic
    rename, so a booting node never reads a half-written set. O(dest) becomes a symbolic link to
    the current set.
author:
  - OrionOS maintainers (@orionos)
options:
  dest:
    description: The directory nginx serves as C(/config/), for example C(/srv/orion/config/nodes).
    type: path
    required: true
  nodes:
    description: The nodes, each a mapping with C(name) and C(groups); other keys are ignored.
    type: list
    elements: dict
    required: true
  config:
    description:
      - The configuration tree, with optional keys C(default) (a mapping of fragment name to
        fragment), C(groups) (group name to such a mapping) and C(nodes) (node name to such a
        mapping).
      - "A fragment holds any of: C(hostname); C(users) (C(name), C(uid) from 1000 to 65533, C(home) under
        /home, C(shell), C(ssh_keys); for C(root) only C(ssh_keys)); C(files) (C(path) under /etc, /var, /root,
        /home or /tmp, C(content), C(mode) as a quoted octal string, C(owner), C(group));
        C(services) (runit services of the image); C(sysctl) (a mapping); C(mounts) (C(source),
        C(target), C(fstype) nfs, nfs4 or tmpfs, C(options))."
    type: dict
    default: {}
  store:
    description:
      - The image store (its C(images/) directory). With O(table), each node's configuration is also checked
        against the images it may boot (its image and its fallback in the table), as the node checks it. Refused
        are a user whose name or uid is an account of the image, an owner, group or shell the image does not
        have, and a service that is not in its C(/etc/sv). Images whose manifest does not list its accounts
        and services are not checked.
    type: path
  table:
    description: The resolution table of the boot_policy module (C(resolution.json)) that says which images each
      node boots; used with O(store).
    type: path
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: Reports what would change and writes nothing.
  diff_mode:
    details: The diff lists the nodes whose file would change.
"""

EXAMPLES = r"""
- name: Render the nodes' configuration
  orionos.diskless.node_config:
    dest: /srv/orion/config/nodes
    nodes:
      - {name: node001, groups: [compute]}
      - {name: node002, groups: [compute]}
    config:
      default:
        10-access:
          users:
            - name: root
              ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9yaW9u admin@example"]
      groups:
        compute:
          20-motd:
            files:
              - {path: /etc/motd, content: "compute node\n"}
      nodes:
        node002:
          20-motd:
            files:
              - {path: /etc/motd, content: "node002: the canary\n"}
"""

RETURN = r"""
nodes:
  description: How many node files were rendered.
  returned: always
  type: int
  sample: 2
fragments:
  description: For each node, its chosen fragments and where each came from.
  returned: success
  type: dict
  sample: {node002: {10-access: default, 20-motd: node node002}}
files:
  description: Node files added, changed and removed.
  returned: success
  type: dict
  sample: {added: [], changed: [node002.conf], removed: []}
problems:
  description: Every problem found in the configuration, when it was refused.
  returned: failure
  type: list
  elements: str
  sample: ["orion_node_config.groups.compute.20-motd.files[0].mode: 644 is not an octal mode in quotes such as \"0644\""]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as policy_engine
from ansible_collections.orionos.diskless.plugins.module_utils import node_config as engine
from ansible_collections.orionos.diskless.plugins.module_utils import tree_swap


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            nodes=dict(type="list", elements="dict", required=True),
            config=dict(type="dict", default={}),
            store=dict(type="path"),
            table=dict(type="path"),
        ),
        supports_check_mode=True,
        required_together=[("store", "table")],
    )
    p = module.params
    dest = p["dest"].rstrip("/")
    problems = []
    try:
        tree_swap.check_dest(dest)
    except tree_swap.TreeError as exc:
        problems.append("dest: %s" % exc)
    try:
        files, sources = engine.render_all(p["config"], p["nodes"])
    except engine.ConfigError as exc:
        problems.extend(exc.problems)
    if not problems and p["store"]:
        images, _unreadable = policy_engine.load_images(p["store"])
        table = policy_engine.load_table(p["table"])
        systems = {name: [(v, images[v].system) for v in (entry.get("image"), entry.get("fallback")) if v in images]
                   for name, entry in table.items() if isinstance(entry, dict)}
        problems.extend(engine.check_images(p["config"], p["nodes"], systems))
    if problems:
        module.fail_json(msg="the node configuration has %d problem(s); nothing was changed: %s"
                         % (len(problems), "; ".join(problems)), problems=problems)
    current = tree_swap.current_target(dest)
    before_files = tree_swap.read_tree(current) if current else {}
    file_diff = tree_swap.diff_names(before_files, files)
    changed = before_files != files or not os.path.islink(dest)
    result = dict(changed=changed, nodes=len(files), fragments=sources, files=file_diff)
    if module._diff:
        result["diff"] = dict(
            before_header="%s (node files)" % dest, after_header="%s (node files)" % dest,
            before="".join(name + "\n" for name in sorted(before_files) if before_files[name] != files.get(name)),
            after="".join(name + "\n" for name in sorted(files) if files[name] != before_files.get(name)))
    tree_swap.finish(module, dest, files, result, what="node configuration files")


if __name__ == "__main__":
    main()
