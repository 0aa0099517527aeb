#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_sync
short_description: Pull image versions from the source boot server into this replica's image store
version_added: 0.2.0
description:
  - Runs on a replica boot server. For every version in O(versions) that the
    replica does not have yet, pulls the version directory with rsync over ssh
    into a staging area (C(<root>/.incoming/<version>), on the same filesystem
    but outside what NFS and HTTP serve), checks every file's
    size and sha256 against the version's C(manifest.json), and only then
    makes the version visible with one atomic rename into C(images/).
  - An interrupted pull leaves the staging copy behind and nothing else; the
    replica keeps serving the versions it had. The next run resumes the pull.
  - A published version is never modified; a version that fails verification
    is not published and the module fails naming the version and the file.
author:
  - OrionOS maintainers (@orionos)
options:
  root:
    description: Root of the image store; versions live in C(<root>/images).
    type: path
    default: /srv/orion
  source:
    description:
      - The source server as C(user@host). Its key for this replica must force
        C(rrsync -ro <root>/images), so remote paths are bare version names.
    type: str
    required: true
  versions:
    description: Versions the source has published (names of its C(images/) directories).
    type: list
    elements: str
    required: true
  ssh_key:
    description: Private key this replica pulls with.
    type: path
    required: true
  known_hosts:
    description: Known-hosts file holding the source's host key (strict checking is always on).
    type: path
    required: true
  port:
    description: SSH port of the source.
    type: int
    default: 22
  bwlimit:
    description: Bandwidth limit for each transfer in KiB/s (0 is unlimited).
    type: int
    default: 0
  timeout:
    description: Seconds of no transfer progress after which rsync gives up.
    type: int
    default: 60
  delete:
    description:
      - Remove local versions the source no longer has. They are first renamed
        into C(images/.trash), so nothing half-removed is ever visible.
    type: bool
    default: false
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: Reports the versions that would be pulled or removed without touching anything.
  diff_mode:
    details: The diff is the list of visible versions before and after.
notes:
  - Needs C(rsync) and an ssh client on the replica and C(rsync) on the source.
seealso:
  - name: The image_store role
    description: Generates the keys, restricts them with rrsync and calls this module.
    link: https://github.com/orionos/diskless/tree/main/roles/image_store
"""

EXAMPLES = r"""
- name: Pull new versions from the source server
  orionos.diskless.image_sync:
    root: /srv/orion
    source: orion-sync@10.0.0.2
    versions: "{{ hostvars['srv1'].__image_store_versions }}"
    ssh_key: /etc/orion/sync/id_ed25519
    known_hosts: /etc/orion/sync/known_hosts
"""

RETURN = r"""
pulled:
  description: Versions pulled, verified and published by this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["2026.11.1"]
removed:
  description: Versions removed because the source no longer has them (only with O(delete)).
  returned: always
  type: list
  elements: str
  sample: []
versions:
  description: The versions visible on this replica after the run.
  returned: always
  type: list
  elements: str
  sample: ["2026.11.0", "2026.11.1"]
discarded:
  description: Staging copies removed because their version is no longer on the source.
  returned: always
  type: list
  elements: str
  sample: []
resumed:
  description: Versions whose pull continued from a staging copy left by an interrupted run.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store


def _pull(module, images, version):
    staging_root = os.path.join(os.path.dirname(images), store.STAGING)
    staging = os.path.join(staging_root, version)
    resumed = os.path.isdir(staging)
    os.makedirs(staging, mode=0o755, exist_ok=True)
    # rsync killed hard leaves its temporary files (.name.XXXXXX) behind;
    # no file of a version starts with a dot, so they all go.
    for name in os.listdir(staging):
        if name.startswith("."):
            path = os.path.join(staging, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    params = module.params
    problems = []
    for checksum in (False, True):
        argv = store.rsync_pull_command(
            params["source"], version, staging, params["ssh_key"], params["known_hosts"],
            port=params["port"], bwlimit=params["bwlimit"], checksum=checksum,
            timeout=params["timeout"], rsync=module.get_bin_path("rsync", required=True))
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg="pulling version %s from %s failed (rsync exit %d): %s"
                             % (version, params["source"], rc, (err or out).strip()[-2000:]),
                             version=version, rc=rc)
        problems = store.verify_version(staging)
        if not problems:
            break
        # A file rsync thought complete (same size and time) may still
        # differ: pull once more comparing content before giving up.
    if problems:
        module.fail_json(msg="version %s from %s does not match its manifest; it was not published: %s"
                         % (version, params["source"], "; ".join(problems)),
                         version=version, problems=problems)
    try:
        store.promote(images, staging, version)
    except (OSError, store.ImageStoreError) as exc:
        module.fail_json(msg="publishing version %s failed: %s" % (version, exc), version=version)
    return resumed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/srv/orion"),
            source=dict(type="str", required=True),
            versions=dict(type="list", elements="str", required=True),
            ssh_key=dict(type="path", required=True, no_log=False),
            known_hosts=dict(type="path", required=True),
            port=dict(type="int", default=22),
            bwlimit=dict(type="int", default=0),
            timeout=dict(type="int", default=60),
            delete=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    images = os.path.join(module.params["root"], "images")
    if not os.path.isdir(images):
        module.fail_json(msg="%s does not exist; the image_store role creates it" % images)
    try:
        before = store.list_versions(images)
        plan = store.plan_sync(module.params["versions"], before, delete=module.params["delete"])
    except store.ImageStoreError as exc:
        module.fail_json(msg="versions: %s" % exc)

    # Staging copies of versions the source no longer has (a pull that failed
    # verification, then the version was withdrawn) are of no further use.
    staging_root = os.path.join(module.params["root"], store.STAGING)
    stale = sorted(name for name in (os.listdir(staging_root) if os.path.isdir(staging_root) else [])
                   if name not in module.params["versions"])
    changed = bool(plan["pull"] or plan["remove"] or stale)
    after = sorted(set(before) - set(plan["remove"]) | set(plan["pull"]))
    result = dict(changed=changed, pulled=plan["pull"], removed=plan["remove"],
                  versions=after, resumed=[], discarded=stale)
    if module._diff:
        result["diff"] = dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n",
                              before_header=images + " (versions)", after_header=images + " (versions)")
    if module.check_mode or not changed:
        module.exit_json(**result)

    for name in stale:
        path = os.path.join(staging_root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    for version in plan["pull"]:
        if _pull(module, images, version):
            result["resumed"].append(version)
    for version in plan["remove"]:
        store.remove_version(images, version)
    result["versions"] = store.list_versions(images)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
