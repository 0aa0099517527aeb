#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image
short_description: Publish, deprecate, remove, prune, verify and list the image versions of a boot server's store
version_added: 0.3.0
description:
  - Manages the versions in the image store of a boot server (C(<root>/images/<version>/), each with
    its files and a C(manifest.json) listing every file's size and sha256).
  - Everything is checked and the change worked out before anything is written. A bad input fails
    with a message naming the option and the value and leaves the store as it was.
  - O(state=published) with O(src) publishes a built image directory as O(version). When O(src)
    holds a C(manifest.json), the source is first verified against it; otherwise a manifest is built
    from the files. The files are copied into the staging area C(<root>/.incoming/<version>) (outside
    what NFS and HTTP serve), the copy is verified against the manifest and made visible with one
    atomic rename into C(images/). Published files are read-only (0444) and never changed in place.
  - Publishing a version that exists with the same files is no change; with different files it fails
    naming the files that differ. Publishing a deprecated version marks it published again.
  - The state of each version (published or deprecated) is kept in C(<root>/state/images.json),
    which lists only the versions that are not published and is replaced atomically.
  - O(state=absent) and O(state=pruned) never remove a version that the boot policy (O(policy)), a
    resolution table of the boot_policy module (O(tables)) or a node's last boot report (O(reports)) refers to,
    unless O(force). A removed
    version is renamed into C(<root>/.trash) first, so it disappears from what is served in one step.
author:
  - OrionOS maintainers (@orionos)
options:
  root:
    description: Root of the image store; versions live in C(<root>/images). It must exist, except for V(listed), where a store not set up yet lists no images.
    type: path
    default: /srv/orion
  version:
    description:
      - The version to act on, a name of letters, digits and C(. _ + -) starting with a letter or digit.
      - Required with O(state=published), O(state=deprecated) and O(state=absent). With O(state=verified),
        only this version is verified (all when omitted). Not used with O(state=pruned) and O(state=listed).
    type: str
  state:
    description:
      - V(published) publishes O(src) as O(version), or marks an existing O(version) published again.
      - V(deprecated) marks an existing O(version) deprecated (it stays served; boot policies should move
        away from it, and O(state=pruned) no longer counts it among the newest).
      - V(absent) removes O(version) (nothing to do when it is not in the store).
      - V(pruned) keeps, of each architecture, the O(keep) newest published versions (by the manifest's
        C(created), then by version with numeric parts compared as numbers), plus every referenced
        version and every version whose manifest cannot be read, and removes the others.
      - V(verified) recomputes the sha256 of every file of O(version) (or of every version) and fails
        when any version does not match its manifest. Never a change.
      - V(listed) only returns the images, also as the fact C(orion_images).
    type: str
    choices: [published, deprecated, absent, pruned, verified, listed]
    default: published
  src:
    description:
      - With O(state=published), a directory holding the built image to publish as O(version). It may hold
        only regular files (no sub-directories or links), and must not be inside the store's work areas.
      - When it holds a C(manifest.json), the files must match it (else nothing is published and the
        message names the file with the expected and actual size or sha256), and its C(version), if set,
        must equal O(version).
    type: path
  arch:
    description:
      - Architecture recorded in a manifest built from O(src). When O(src) has a manifest, must agree with it.
      - When omitted, V(x86_64) (or the manifest's).
    type: str
  kernel:
    description:
      - File name of the kernel in O(src), recorded in the built manifest. When omitted, V(vmlinuz).
      - When O(src) has a manifest, must agree with it.
    type: str
  initramfs:
    description:
      - File name of the initramfs in O(src), recorded in the built manifest. When omitted, V(initramfs.img).
      - When O(src) has a manifest, must agree with it.
    type: str
  root_image:
    description:
      - File name of the root file system image in O(src), recorded in the built manifest.
      - When omitted, the single C(*.erofs) or C(*.squashfs) file of O(src), if there is one; several are an error.
    type: str
  created:
    description:
      - Creation time recorded in the built manifest, in UTC as C(YYYY-MM-DDTHH:MM:SSZ).
      - When omitted, the newest modification time of the files of O(src), so that running again
        builds the same manifest.
    type: str
  policy:
    description:
      - The boot policy, in the format of the boot_policy module's O(orionos.diskless.boot_policy#module:policy)
        (C(channels) name -> version or name -> mapping of arch -> version, C(rules) with C(image) and
        C(fallback) pins, C(default) with C(image) and C(fallback)). Only the versions it refers to are used.
      - Referenced versions are not removed by O(state=absent) or O(state=pruned).
    type: dict
  tables:
    description:
      - Resolution tables written by the boot_policy module (C(resolution.json)); the C(image) and
        C(fallback) of each of their nodes are references too. Missing files have no nodes; a file that
        exists but is not a resolution table is an error.
      - When omitted, C(<root>/boot/nodes/resolution.json).
    type: list
    elements: path
  reports:
    description:
      - Directories of the nodes' last boot reports (C(<node>.json), as the boot servers store them). The version a
        node last reported booting is a reference too (the node runs it until it reboots); reports that do not pass
        the status checks and shutdown reports name nothing.
      - When omitted, C(<root>/reports/boot).
    type: list
    elements: path
  force:
    description:
      - With O(state=absent), remove O(version) even when it is referenced; with O(state=pruned), prune as if
        nothing were referenced. A warning names the referrers of each version removed.
    type: bool
    default: false
  keep:
    description: With O(state=pruned), how many of the newest published versions of each architecture to keep (at least 1).
    type: int
    default: 3
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: Checks and hashes everything and reports the change and the resulting images without writing anything.
  diff_mode:
    details: The diff is the list of versions with their states, one per line, before and after.
notes:
  - Run it on the image source server; replicas receive new versions with M(orionos.diskless.image_sync).
  - The module takes no lock; do not run two of its tasks against the same store at the same time.
  - Quote version names that YAML would read as numbers, for example C("2026.10"); unquoted it becomes C(2026.1).
seealso:
  - module: orionos.diskless.image_sync
  - module: orionos.diskless.boot_policy
"""

EXAMPLES = r"""
- name: Publish a freshly built image
  orionos.diskless.image:
    root: /srv/orion
    version: 2026.11.1
    src: /var/tmp/build/2026.11.1
    arch: x86_64

- name: Publish an image that comes with its manifest (verified first)
  orionos.diskless.image:
    version: 2026.11.2
    src: /var/tmp/incoming/2026.11.2

- name: Retire a bad image (it stays served until removed)
  orionos.diskless.image:
    version: 2026.11.1
    state: deprecated

- name: Remove an image nothing refers to any more
  orionos.diskless.image:
    version: 2026.10.0
    state: absent
    policy: "{{ orion_policy }}"

- name: Keep the two newest images of each architecture and every referenced one
  orionos.diskless.image:
    state: pruned
    keep: 2
    policy: "{{ orion_policy }}"
    tables: [/srv/orion/boot/nodes/resolution.json]
  register: pruned

- name: Check every file of every image
  orionos.diskless.image:
    state: verified

- name: List the images
  orionos.diskless.image:
    state: listed
    policy: "{{ orion_policy }}"

- name: Show which images are in use
  ansible.builtin.debug:
    msg: "{{ item.version }} ({{ item.state }}): {{ item.referenced_by | join(', ') or 'unused' }}"
  loop: "{{ orion_images }}"
"""

RETURN = r"""
images:
  description:
    - Every image of the store after the run (in check mode, as it would be), sorted by version.
    - Entries whose manifest cannot be read have only C(version), C(state) and C(problem) set.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The version.
      type: str
      sample: 2026.11.1
    state:
      description: V(published) or V(deprecated).
      type: str
      sample: published
    arch:
      description: The architecture from the manifest.
      type: str
      sample: x86_64
    created:
      description: The creation time from the manifest.
      type: str
      sample: "2026-11-01T00:00:00Z"
    kernel:
      description: Kernel file name.
      type: str
      sample: vmlinuz
    initramfs:
      description: Initramfs file name.
      type: str
      sample: initramfs.img
    root:
      description: Root file system image file name, if any.
      type: str
      sample: root.erofs
    files:
      description: Number of files in the manifest.
      type: int
      sample: 3
    size:
      description: Total size of the files in bytes.
      type: int
      sample: 734003200
    referenced_by:
      description: What refers to the version (channels, rule pins, nodes of the resolution tables, nodes that run it).
      type: list
      elements: str
      sample: ["channel stable", "node n1 fallback"]
    system:
      description:
        - What the image's root has that a node's configuration may name, from its manifest (C(users) and C(groups)
          name -> id, C(shells), C(services)), or null when the manifest does not say.
      type: dict
      sample: {"users": {"root": 0, "sshd": 74}, "groups": {"root": 0}, "shells": ["/bin/sh"], "services": ["crond"]}
    problem:
      description: Why the manifest cannot be read, or null.
      type: str
      sample: null
version:
  description: The version acted on.
  returned: when O(state) is V(published), V(deprecated) or V(absent)
  type: str
  sample: 2026.11.1
removed:
  description: Versions removed (or that would be, in check mode).
  returned: when O(state) is V(absent) or V(pruned)
  type: list
  elements: str
  sample: ["2026.10.0"]
kept:
  description: Versions pruning keeps, each with the reasons (V(newest), the referrers, or V(unreadable manifest)).
  returned: when O(state=pruned)
  type: dict
  sample: {"2026.11.1": ["newest", "channel stable"], "2026.10.3": ["node n7 image"]}
verified:
  description: Versions verified.
  returned: when O(state=verified)
  type: list
  elements: str
  sample: ["2026.11.0", "2026.11.1"]
corrupt:
  description: Problems of each version that does not match its manifest (the module then fails).
  returned: when O(state=verified)
  type: dict
  sample: {"2026.11.1": ["/srv/orion/images/2026.11.1: file root.erofs has sha256 0f3a..., the manifest says 9bc1..."]}
referenced_by:
  description: The referrers of a version O(state=absent) refused to remove.
  returned: failure
  type: list
  elements: str
  sample: ["channel stable"]
differing:
  description: The files that differ when O(src) is not the published image of the same version.
  returned: failure
  type: list
  elements: str
  sample: ["vmlinuz (sha256 0f3a... in the store, 9bc1... in src)"]
ansible_facts:
  description: Facts set with O(state=listed).
  returned: when O(state=listed)
  type: dict
  contains:
    orion_images:
      description: Same as RV(images).
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.orionos.diskless.plugins.module_utils import image_admin


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/srv/orion"),
            version=dict(type="str"),
            state=dict(type="str", default="published",
                       choices=["published", "deprecated", "absent", "pruned", "verified", "listed"]),
            src=dict(type="path"),
            arch=dict(type="str"),
            kernel=dict(type="str"),
            initramfs=dict(type="str"),
            root_image=dict(type="str"),
            created=dict(type="str"),
            policy=dict(type="dict"),
            tables=dict(type="list", elements="path"),
            reports=dict(type="list", elements="path"),
            force=dict(type="bool", default=False),
            keep=dict(type="int", default=3),
        ),
        supports_check_mode=True,
    )
    try:
        result = image_admin.run(module.params, check_mode=module.check_mode)
    except image_admin.ImageAdminError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        header = "%s/images (versions and states)" % module.params["root"].rstrip("/")
        result["diff"] = dict(before=diff["before"], after=diff["after"],
                              before_header=header, after_header=header)
    if module.params["state"] == "listed":
        result["ansible_facts"] = {"orion_images": result["images"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
