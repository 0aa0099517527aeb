#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: source_cache
short_description: Fill a verified cache of source tarballs from an ordered list of mirrors
version_added: 0.4.0
description:
  - Makes sure a cache directory holds every file of O(files) with its sha256.
  - A file already in the cache with the right sha256 is used as it is. Otherwise the mirrors are tried
    in order, a web mirror as C(<mirror>/<path>/<file>) (the file's path, e.g. its pool directory in a
    Debian archive), a directory as C(<dir>/<file>); the first copy whose sha256 matches enters the cache
    (by a rename, after the check). A copy with a wrong sha256 never enters the cache.
  - A mirror is an C(http://), C(https://) or C(file://) URL, an absolute directory, or V(apt).
    Offline sites list a local directory only.
  - V(apt) stands for the Debian mirrors of the target host's own apt sources (C(/etc/apt/sources.list)
    and the C(.list) and C(.sources) files of C(/etc/apt/sources.list.d)), read when the module runs.
    Their C(http://) and C(https://) URIs of C(deb) and C(deb-src) entries naming a release count, in
    apt's order (entries naming only C(-security) or C(-updates) suites when there is none); disabled
    stanzas, C(cdrom:) and C(file:) entries are left out. The module fails, naming the files it read, when there is none.
  - When any file cannot be had with its sha256, the module fails naming every such file, the expected
    sha256 and, for each mirror, the actual sha256 or why it failed. The files that could be had stay
    in the cache.
author:
  - OrionOS maintainers (@orionos)
options:
  files:
    description: The files to have, as a mapping of file name to sha256 (64 lower-case hex digits).
    type: dict
    required: true
  mirrors:
    description: Where to look for the files, in order; V(apt) is the host's configured Debian mirrors.
    type: list
    elements: str
    required: true
  cache:
    description: The cache directory; created when missing.
    type: path
    required: true
  timeout:
    description: Seconds one download may stall before the next mirror is tried.
    type: int
    default: 60
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: Reports which files would be fetched and from where; fails when a file is in no local mirror.
  diff_mode:
    details: The diff is the list of files in the cache with their sha256 before and after.
notes:
  - The checksums are the recipes', whatever the mirror; a mirror cannot change what gets built.
seealso:
  - module: orionos.diskless.build_package
"""

EXAMPLES = r"""
- name: Fetch the sources of the minimal profile
  orionos.diskless.source_cache:
    files:
      musl_1.2.3.orig.tar.gz:
        sha256: 7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4
        path: pool/main/m/musl
    mirrors:
      # A directory of tarballs, then the site's Debian mirror, then those of the host's apt sources.
      - /srv/mirror/sources
      - http://mirror.example.org/debian
      - apt
    cache: /var/cache/orion/sources
"""

RETURN = r"""
cached:
  description: Files that were in the cache already, verified.
  returned: always
  type: list
  elements: str
  sample: ["musl_1.2.3.orig.tar.gz"]
mirrors:
  description: The mirrors tried, in order, V(apt) replaced by the host's configured Debian mirrors.
  returned: success
  type: list
  elements: str
  sample: ["/srv/mirror/sources", "http://mirror.example.org/debian"]
fetched:
  description: Files put into the cache by this run, with the mirror each came from.
  returned: always
  type: dict
  sample: {"busybox_1.35.0.orig.tar.bz2": "/srv/mirror/sources"}
problems:
  description: Every file that could not be had, with the expected sha256 and what each mirror gave.
  returned: failure
  type: list
  elements: str
  sample: ["musl_1.2.3.orig.tar.gz: expected sha256 7d5b...; /srv/mirror: sha256 is 0f3a..."]
"""

import os
import re
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.orionos.diskless.plugins.module_utils import source_cache

_SHA_RE = re.compile(r"^[0-9a-f]{64}\Z")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._~-]{0,199}\Z")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="dict", required=True),
            mirrors=dict(type="list", elements="str", required=True),
            cache=dict(type="path", required=True),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    files = module.params["files"]
    problems = []
    for name, (sha, path) in sorted(source_cache.normalize(files).items()):
        if not _FILE_RE.match(name):
            problems.append("files: %r is not a plain file name" % name)
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            problems.append("files[%s]: sha256 %r is not 64 lower-case hex digits" % (name, sha))
        if not isinstance(path, str) or ".." in path.split("/") or path.startswith("/"):
            problems.append("files[%s]: path %r is not a relative directory" % (name, path))
    problems += source_cache.mirror_problems(module.params["mirrors"])
    if problems:
        module.fail_json(msg="bad input: " + "; ".join(problems), problems=problems, cached=[], fetched={})

    def download(url, dest):
        with open_url(url, timeout=module.params["timeout"], http_agent="orionos-source-cache") as response:
            with open(dest, "wb") as handle:
                shutil.copyfileobj(response, handle, 1 << 20)

    cache = module.params["cache"]
    try:
        if not module.check_mode:
            os.makedirs(cache, exist_ok=True)
        mirrors = source_cache.resolve_mirrors(module.params["mirrors"])
        result = source_cache.fetch(files, mirrors, cache, download=download, check_mode=module.check_mode)
    except source_cache.SourceError as exc:
        module.fail_json(msg="%s: %s" % (exc, "; ".join(exc.problems)), problems=exc.problems,
                         cached=[], fetched={})
    before = "".join("%s %s\n" % (name, files[name] if isinstance(files[name], str) else files[name].get("sha256"))
                     for name in result["cached"])
    after = "".join("%s %s\n" % (name, files[name] if isinstance(files[name], str) else files[name].get("sha256"))
                    for name in sorted(set(result["cached"]) | set(result["fetched"])))
    module.exit_json(changed=bool(result["fetched"]), diff={"before": before, "after": after}, mirrors=mirrors,
                     **result)


if __name__ == "__main__":
    main()
