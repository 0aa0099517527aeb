#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: file_tree
short_description: Put a directory of small files from the controller on a host in one task
version_added: 0.5.0
description:
  - Puts every file under O(src) on the controller into O(dest) on the host, in one module run. Where
    M(ansible.builtin.copy) of a directory runs a module or two for every file, this runs one for the whole tree,
    which matters on a connection where each run costs a fraction of a second.
  - A file is written only if its content (by sha256), mode, owner or group differ, each by an atomic rename, so
    a reader sees the old file or the new one. Missing directories are made. Files in O(dest) that O(src) does
    not have are left alone.
  - Every path is checked before anything is written (relative, no C(..) or empty parts, not through a link or a
    non-directory in O(dest)); a bad one fails the task, naming it, and nothing is written.
  - Meant for small trees (scripts, skeletons, configuration), as the files travel in the task's arguments, at
    most 64 MiB in all. The action plugin leaves those arguments out of the task's result at any verbosity.
author:
  - OrionOS maintainers (@orionos)
options:
  src:
    description:
      - The directory on the controller, found as M(ansible.builtin.copy) finds its O(src) (a role's C(files/)
        first). Links to files are followed; a link to a directory fails.
      - The action plugin reads it into O(files); give one of the two.
    type: path
  include:
    description:
      - Only the files of O(src) whose name matches one of these glob patterns, such as V(*.py); by default
        every file. Read by the action plugin with O(src).
    type: list
    elements: str
  files:
    description:
      - The files themselves, each C(path) (relative to O(dest)), C(mode) (a quoted octal string) and C(content)
        (base64). The action plugin fills this in from O(src).
    type: list
    elements: dict
  dest:
    description: The directory on the host.
    type: path
    required: true
  mode:
    description:
      - The mode of every file, a quoted octal string such as V('0644'); V(preserve) keeps each file's mode in
        O(src).
    type: str
    default: preserve
  owner:
    description: The owner of the files and of the directories made; unchanged when unset.
    type: str
  group:
    description: The group of the files and of the directories made; unchanged when unset.
    type: str
  directory_mode:
    description: The mode of the directories made, a quoted octal string.
    type: str
    default: "0755"
extends_documentation_fragment:
  - orionos.diskless.attributes
  - orionos.diskless.attributes.action
attributes:
  check_mode:
    details: Reports the files that would be written and writes nothing.
  diff_mode:
    details: The diff lists the files that would be written and the directories made.
"""

EXAMPLES = r"""
- name: Put a role's skeleton into the build's input files
  orionos.diskless.file_tree:
    src: rootfs/
    dest: /var/tmp/build/files/rootfs
    owner: orion-build
    group: orion-build

- name: Health check scripts, every one executable
  orionos.diskless.file_tree:
    src: checks/
    dest: /usr/local/lib/orion/checks
    mode: "0755"
"""

RETURN = r"""
files:
  description: The paths (relative to O(dest)) written, or in check mode that would be written.
  returned: always
  type: list
  elements: str
  sample: [etc/passwd, sbin/init]
dirs:
  description: The directories made, or in check mode that would be made.
  returned: always
  type: list
  elements: str
  sample: [/var/tmp/build/files/rootfs/etc/sv]
"""

import grp  # noqa: E402
import pwd  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.orionos.diskless.plugins.module_utils import file_tree  # noqa: E402


def _id(module, name, lookup, what):
    if name is None:
        return None
    try:
        return lookup(name)[2]
    except KeyError:
        if name.isdigit():
            return int(name)
        module.fail_json(msg="file_tree: %s %s does not exist on this host" % (what, name))
    return None


def main():
    module = AnsibleModule(argument_spec={
        "src": {"type": "path"},
        "include": {"type": "list", "elements": "str"},
        "files": {"type": "list", "elements": "dict"},
        "dest": {"type": "path", "required": True},
        "mode": {"type": "str", "default": "preserve"},
        "owner": {"type": "str"},
        "group": {"type": "str"},
        "directory_mode": {"type": "str", "default": "0755"},
    }, required_one_of=[["src", "files"]], mutually_exclusive=[["src", "files"]], supports_check_mode=True)
    params = module.params
    if params["files"] is None:
        module.fail_json(msg="file_tree: src is read on the controller; run the module through its action plugin")
    uid = _id(module, params["owner"], pwd.getpwnam, "owner")
    gid = _id(module, params["group"], grp.getgrnam, "group")
    try:
        dir_mode = file_tree.mode_of(params["directory_mode"], "directory_mode")
        entries = params["files"]
        if params["mode"] != "preserve":
            mode = "%04o" % file_tree.mode_of(params["mode"], "mode")
            entries = [dict(entry, mode=mode) for entry in entries]
        if module.check_mode:
            done = file_tree.plan(params["dest"], entries, uid, gid)
        else:
            done = file_tree.apply(params["dest"], entries, uid, gid, dir_mode)
    except (file_tree.TreeError, OSError) as exc:
        module.fail_json(msg="file_tree: %s; nothing was written" % exc if isinstance(exc, file_tree.TreeError)
                         else "file_tree: %s" % exc)
    changed = bool(done["files"] or done["dirs"])
    result = {"changed": changed, "files": done["files"], "dirs": done["dirs"]}
    if module._diff and changed:
        result["diff"] = {"before": "", "after": "".join(
            ["directory %s\n" % d for d in done["dirs"]] + ["file %s\n" % f for f in done["files"]]),
            "after_header": params["dest"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
