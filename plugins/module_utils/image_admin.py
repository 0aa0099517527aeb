# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Administration of the image store: publish, deprecate, remove, prune, verify, list.

The store layout is the one of ``image_store``: ``<root>/images/<version>/``
holds each published version (its files and ``manifest.json``), the work
areas ``<root>/.incoming`` and ``<root>/.trash`` sit beside it, and
``<root>/state/images.json`` (see ``image_store.load_states``) lists the
versions that are not plainly published (deprecated ones).

Every operation is planned first: inputs are checked, the source is hashed
and verified, references are gathered and the change is worked out before
anything is written. A bad input fails with a message that names the field
and the value, and leaves the store as it was. Then the plan is carried out:

* publishing copies the source into ``.incoming/<version>``, verifies the
  copy against the manifest and renames it into ``images/`` (one atomic
  step; a published version is never changed in place);
* removing renames the version into ``.trash`` (it disappears from what NFS
  and HTTP serve in one step) and deletes it there;
* the state file is replaced atomically (temporary file, fsync, rename).

Plain Python: the ``image`` module is a thin wrapper, and the unit tests call
``run`` without Ansible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine
from ansible_collections.orionos.diskless.plugins.module_utils import fileio
from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils import node_status

STATES = ("published", "deprecated", "absent", "pruned", "verified", "listed")
DEFAULT_ROOT = "/srv/orion"
DEFAULT_TABLE = os.path.join("boot", "nodes", "resolution.json")
# Where the boot servers keep the nodes' last boot reports (roles/boot_server).
DEFAULT_REPORTS = os.path.join("reports", "boot")
DEFAULT_KERNEL = "vmlinuz"
DEFAULT_INITRAMFS = "initramfs.img"
ROOT_SUFFIXES = (".erofs", ".squashfs")
FILE_MODE = 0o444
DIR_MODE = 0o755
STATE_DIR_MODE = 0o755
STATE_FILE_MODE = 0o644

# Options that only describe a source being published.
SOURCE_OPTIONS = ("arch", "kernel", "initramfs", "root_image", "created")

DEFAULTS = {
    "root": DEFAULT_ROOT,
    "version": None,
    "state": "published",
    "src": None,
    "arch": None,
    "kernel": None,
    "initramfs": None,
    "root_image": None,
    "created": None,
    "policy": None,
    "tables": None,
    "reports": None,
    "force": False,
    "keep": 3,
}

_CREATED_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z\Z")
_POLICY_KEYS = ("channels", "rules", "default")


class ImageAdminError(ValueError):
    """An operation that cannot be carried out; nothing was changed by it.

    ``details`` are extra return values for the caller (the image list,
    the referrers, the problems found).
    """

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


# ------------------------------------------------------------------ helpers

def version_key(version):
    """Sort key of a version name: numeric parts compare as numbers.

    Names that differ only in leading zeros (``1.01``, ``1.1``) are ordered by
    the name itself, so the order is total.
    """
    return (engine._version_key(version), version)  # pylint: disable=protected-access


def newest_key(entry):
    """Sort key of an image for 'newest': manifest ``created``, then the version."""
    return (entry.get("created") or "", version_key(entry["version"]))


def _fail(msg, **details):
    raise ImageAdminError(msg, **details)


def _is_dir(path):
    return os.path.isdir(path) and not os.path.islink(path)


def _remove_path(path):
    if _is_dir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def utc_iso(timestamp):
    """A POSIX time as UTC ISO-8601 with seconds (``2026-11-01T00:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(timestamp)))


# ------------------------------------------------------------ the store read

class StoreView:
    """What the store holds: {version: entry} and the state file's states.

    An entry is a dict with ``version``, ``manifest`` (None when unreadable),
    ``problem`` (why it is unreadable) and ``state``.
    """

    def __init__(self, root):
        self.root = root
        self.images_dir = os.path.join(root, "images")
        try:
            self.states = store.load_states(root)
        except store.ImageStoreError as exc:
            _fail("root: the image state file is unusable: %s" % exc)
        self.entries = {}
        for version in store.list_versions(self.images_dir):
            manifest, problem = None, None
            try:
                manifest = store.load_manifest(os.path.join(self.images_dir, version))
            except store.ImageStoreError as exc:
                problem = str(exc)
            self.entries[version] = {"version": version, "manifest": manifest, "problem": problem,
                                     "state": self.states.get(version, "published")}

    def copy_entries(self):
        return {v: dict(e) for v, e in self.entries.items()}


def describe(entry, refs):
    """The public description of one image (as returned and set as a fact)."""
    version = entry["version"]
    manifest = entry.get("manifest")
    info = {"version": version, "state": entry["state"], "arch": None, "created": None,
            "kernel": None, "initramfs": None, "root": None, "files": 0, "size": 0,
            "referenced_by": list(refs.get(version, [])), "problem": entry.get("problem"), "system": None}
    if manifest is not None:
        image = engine.image_from_manifest(version, manifest, entry["state"])
        info.update(arch=image.arch, created=image.created or None, kernel=image.kernel,
                    initramfs=image.initramfs, root=image.root, system=image.system, files=len(manifest["files"]),
                    size=sum(item["size"] for item in manifest["files"].values()))
    return info


def describe_all(entries, refs):
    """Every image, sorted by version (numeric parts as numbers)."""
    return [describe(entries[v], refs) for v in sorted(entries, key=version_key)]


def state_lines(entries):
    """The diff text: one ``<version> <state>`` line per image."""
    return "".join("%s %s\n" % (v, entries[v]["state"]) for v in sorted(entries, key=version_key))


def write_states(root, states):
    """Replace the state file atomically (temporary file in its directory, fsync, rename)."""
    fileio.atomic_write(store.state_path(root), store.dump_states(states),
                        mode=STATE_FILE_MODE, dir_mode=STATE_DIR_MODE)


# --------------------------------------------------------------- references

def check_policy(policy):
    """Problems of a policy's shape (only what references need), each naming the field."""
    problems = []
    if policy is None:
        return problems
    if not isinstance(policy, dict):
        return ["policy: %r is not a mapping with channels, rules and default" % (policy,)]
    for key in sorted(set(policy) - set(_POLICY_KEYS), key=str):
        problems.append("policy: unknown field %r (known: %s)" % (key, ", ".join(_POLICY_KEYS)))

    def version_field(field, value):
        if value is not None and not store.valid_version(value):
            problems.append("%s: %r is not a valid version name" % (field, value))

    channels = policy.get("channels")
    if channels is not None and not isinstance(channels, dict):
        problems.append("policy.channels: %r is not a mapping of channel -> version" % (channels,))
    elif channels:
        for name in sorted(channels, key=str):
            value = channels[name]
            if isinstance(value, dict):
                if not value:
                    problems.append("policy.channels.%s: empty mapping of arch -> version" % name)
                for arch in sorted(value, key=str):
                    if arch not in engine.ARCHES:
                        problems.append("policy.channels.%s: arch %r is not one of %s"
                                        % (name, arch, ", ".join(engine.ARCHES)))
                    else:
                        version_field("policy.channels.%s.%s" % (name, arch), value[arch])
                        if value[arch] is None:
                            problems.append("policy.channels.%s.%s: no version" % (name, arch))
            elif value is None:
                problems.append("policy.channels.%s: no version" % name)
            else:
                version_field("policy.channels.%s" % name, value)
    rules = policy.get("rules")
    if rules is not None and not isinstance(rules, list):
        problems.append("policy.rules: %r is not a list" % (rules,))
    elif rules:
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                problems.append("policy.rules[%d]: %r is not a mapping" % (index, rule))
                continue
            for key in ("image", "fallback"):
                version_field("policy.rules[%d].%s" % (index, key), rule.get(key))
    default = policy.get("default")
    if default is not None and not isinstance(default, dict):
        problems.append("policy.default: %r is not a mapping with channel or image" % (default,))
    elif default:
        for key in ("image", "fallback"):
            version_field("policy.default.%s" % key, default.get(key))
    return problems


def read_table(path):
    """The nodes of a resolution table; {} when the file is missing.

    A file that exists but is not a resolution table fails: it could hide
    references.
    """
    if not os.path.lexists(path):
        return {}
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        _fail("tables: %s is not a readable resolution table (%s)" % (path, exc))
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        _fail("tables: %s is not a resolution table (no 'nodes' mapping)" % path)
    return engine.load_table(path)


def running_versions(reports_dir):
    """{version: [node runs it (last report), ...]} from a directory of boot reports.

    A node that has not rebooted runs the version it last reported booting,
    whatever the policy says now. Each report is the node's whose file it is
    (nginx takes ``<node>.json`` only from that node's address); reports that
    do not pass the status checks, and shutdown reports, name nothing.
    """
    refs = {}
    try:
        names = sorted(os.listdir(reports_dir))
    except (FileNotFoundError, NotADirectoryError):
        return refs
    except OSError as exc:
        _fail("reports: %s cannot be read (%s)" % (reports_dir, exc))
    for name in names:
        node = name[:-len(".json")] if name.endswith(".json") else None
        path = os.path.join(reports_dir, name)
        if node is None or not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            with open(path, "r", encoding="utf-8") as handle:
                report = node_status.check_report(node, json.loads(handle.read(1 << 16)))
        except (OSError, ValueError, RecursionError):
            continue
        if report["event"] == "boot" and report["image"]:
            refs.setdefault(report["image"], []).append("node %s runs it (its last report)" % node)
    return refs


def references(policy, tables, reports=()):
    """{version: [referrer, ...]} from a policy, resolution table files and report directories."""
    refs = {}

    def merge(found):
        for version, what in found.items():
            bucket = refs.setdefault(version, [])
            bucket.extend(w for w in what if w not in bucket)

    merge(engine.referenced_versions(policy, None))
    for path in tables:
        merge(engine.referenced_versions(None, read_table(path)))
    for path in reports:
        merge(running_versions(path))
    return refs


# -------------------------------------------------------------------- prune

def plan_prune(entries, refs, keep):
    """Which versions pruning keeps and why, and which it removes.

    ``entries`` are dicts with ``version``, ``arch``, ``created``, ``state``
    and ``problem``. Of each arch the ``keep`` newest published (not
    deprecated) versions are kept, and every referenced version, and every
    version whose manifest cannot be read (verify or remove it explicitly).
    Returns ``(kept, removed)``: {version: [reasons]} and a sorted list.
    """
    kept = {}
    by_arch = {}
    for entry in entries:
        if entry.get("problem"):
            kept.setdefault(entry["version"], []).append("unreadable manifest")
        elif entry["state"] == "published":
            by_arch.setdefault(entry.get("arch"), []).append(entry)
    for group in by_arch.values():
        for entry in sorted(group, key=newest_key, reverse=True)[:keep]:
            kept.setdefault(entry["version"], []).append("newest")
    for entry in entries:
        for what in refs.get(entry["version"], []):
            kept.setdefault(entry["version"], []).append(what)
    removed = sorted((e["version"] for e in entries if e["version"] not in kept), key=version_key)
    return kept, removed


# ------------------------------------------------------------------- checks

def _check_params(p):
    """Checks that need no disk access; each failure names the field."""
    state = p["state"]
    if state not in STATES:
        _fail("state: %r is not one of %s" % (state, ", ".join(STATES)))
    if not isinstance(p["root"], str) or not p["root"]:
        _fail("root: %r is not a path" % (p["root"],))
    version = p["version"]
    if version is not None and not store.valid_version(version):
        _fail("version: %r is not a valid version name (letters, digits and . _ + -, "
              "starting with a letter or digit)" % (version,))
    if state in ("published", "deprecated", "absent") and version is None:
        _fail("version: required with state=%s" % state)
    if state in ("pruned", "listed") and version is not None:
        _fail("version: %r is not used with state=%s" % (version, state))
    if p["src"] is not None and state != "published":
        _fail("src: %r is only used with state=published" % (p["src"],))
    for key in SOURCE_OPTIONS:
        if p[key] is not None and p["src"] is None:
            _fail("%s: %r is only used when publishing from src" % (key, p[key]))
    if p["arch"] is not None and p["arch"] not in engine.ARCHES:
        _fail("arch: %r is not one of %s" % (p["arch"], ", ".join(engine.ARCHES)))
    for key in ("kernel", "initramfs", "root_image"):
        if p[key] is not None and not store.valid_file_name(p[key]):
            _fail("%s: %r is not a plain file name" % (key, p[key]))
    if p["created"] is not None and (not isinstance(p["created"], str)
                                     or not _CREATED_RE.match(p["created"])):
        _fail("created: %r is not a UTC time like 2026-11-01T00:00:00Z" % (p["created"],))
    keep = p["keep"]
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        _fail("keep: %r must be a whole number of at least 1" % (keep,))
    problems = check_policy(p["policy"])
    if problems:
        _fail("policy: %d problem(s): %s" % (len(problems), "; ".join(problems)), problems=problems)
    if p["tables"] is not None:
        if not isinstance(p["tables"], (list, tuple)):
            _fail("tables: %r is not a list of paths" % (p["tables"],))
        for path in p["tables"]:
            if not isinstance(path, str) or not path:
                _fail("tables: %r is not a path" % (path,))


def _scan_source(src, root):
    """The file names of a source directory (manifest.json left out).

    Refuses anything but plain regular files, and sources inside the store's
    work areas (clearing the staging copy would destroy them).
    """
    if not _is_dir(src):
        _fail("src: %s is not a directory" % src)
    real = os.path.realpath(src)
    for area in (store.STAGING, store.TRASH):
        base = os.path.realpath(os.path.join(root, area))
        if real == base or real.startswith(base + os.sep):
            _fail("src: %s is inside the store's work area %s" % (src, base))
    names = []
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            _fail("src: %s is a symbolic link; an image holds regular files only" % path)
        if stat.S_ISDIR(mode):
            _fail("src: %s is a sub-directory; an image holds regular files only" % path)
        if not stat.S_ISREG(mode):
            _fail("src: %s is not a regular file" % path)
        if name == store.MANIFEST:
            continue
        if not store.valid_file_name(name):
            _fail("src: %r is not a plain file name (letters, digits and . _ + -)" % name)
        names.append(name)
    if not names:
        _fail("src: %s holds no image files" % src)
    return names


def _source_manifest(p, names):
    """The manifest the source is published with: its own, checked, or a new one."""
    src, version = p["src"], p["version"]
    manifest_path = os.path.join(src, store.MANIFEST)
    if os.path.lexists(manifest_path):
        try:
            manifest = store.load_manifest(src)
        except store.ImageStoreError as exc:
            _fail("src: %s" % exc)
        if manifest.get("version") not in (None, version):
            _fail("src: %s has version %r, not version %r" % (manifest_path, manifest["version"], version))
        image = engine.image_from_manifest(version, manifest)
        given = {"arch": image.arch, "kernel": image.kernel, "initramfs": image.initramfs,
                 "root_image": image.root, "created": image.created or None}
        for key in SOURCE_OPTIONS:
            if p[key] is not None and p[key] != given[key]:
                _fail("%s: %r differs from %r in %s" % (key, p[key], given[key], manifest_path))
        problems = store.verify_version(src, manifest)
        if problems:
            _fail("src: %s does not match its manifest: %s" % (src, "; ".join(problems)),
                  problems=problems)
        manifest = dict(manifest, version=version)
    else:
        kernel = p["kernel"] or DEFAULT_KERNEL
        initramfs = p["initramfs"] or DEFAULT_INITRAMFS
        root_image = p["root_image"]
        if root_image is None:
            candidates = [n for n in names if n.endswith(ROOT_SUFFIXES)]
            if len(candidates) > 1:
                _fail("root_image: src has several root images (%s); name the one to boot"
                      % ", ".join(candidates))
            root_image = candidates[0] if candidates else None
        boot = {"kernel": kernel, "initramfs": initramfs}
        if root_image is not None:
            boot["root"] = root_image
        for key, name in (("kernel", kernel), ("initramfs", initramfs), ("root_image", root_image)):
            if name is not None and name not in names:
                _fail("%s: %r is not a file of src %s" % (key, name, src))
        created = p["created"] or utc_iso(max(os.stat(os.path.join(src, n)).st_mtime for n in names))
        try:
            manifest = store.build_manifest(src, version, extra={
                "arch": p["arch"] or engine.DEFAULT_ARCH, "created": created, "boot": boot})
        except (OSError, store.ImageStoreError) as exc:
            _fail("src: %s" % exc)
        return manifest
    image = engine.image_from_manifest(version, manifest)
    for key, name in (("kernel", image.kernel), ("initramfs", image.initramfs), ("root", image.root)):
        if name is not None and name not in manifest["files"]:
            _fail("src: the image has no %s file %r (boot.%s of %s)" % (key, name, key, manifest_path))
    return manifest


def _differences(have, want):
    """File names whose presence, size or sha256 differ between two manifests' files."""
    out = []
    for name in sorted(set(have) | set(want)):
        if name not in want:
            out.append("%s (only in the store)" % name)
        elif name not in have:
            out.append("%s (only in src)" % name)
        elif have[name] != want[name]:
            out.append("%s (sha256 %s in the store, %s in src)"
                       % (name, have[name]["sha256"], want[name]["sha256"]))
    return out


# ------------------------------------------------------------------ actions

def _publish_copy(root, src, version, manifest):
    """Copy src into staging, verify the copy, rename it into images/."""
    images_dir = os.path.join(root, "images")
    staging_root = os.path.join(root, store.STAGING)
    staging = os.path.join(staging_root, version)
    for directory in (images_dir, staging_root):
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=DIR_MODE)
    _remove_path(staging)
    os.mkdir(staging, DIR_MODE)
    os.chmod(staging, DIR_MODE)
    for name in sorted(manifest["files"]):
        source, target = os.path.join(src, name), os.path.join(staging, name)
        shutil.copyfile(source, target, follow_symlinks=False)
        info = os.stat(source)
        os.chmod(target, FILE_MODE)
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    manifest_path = os.path.join(staging, store.MANIFEST)
    with open(manifest_path, "w", encoding="utf-8") as handle:
        handle.write(store.dump_manifest(manifest))
    os.chmod(manifest_path, FILE_MODE)
    problems = store.verify_version(staging, manifest)
    if problems:
        shutil.rmtree(staging)
        _fail("version %s: the copy of %s does not match the manifest; nothing was published: %s"
              % (version, src, "; ".join(problems)), problems=problems)
    store.promote(images_dir, staging, version)


def remove_version(root, version):
    """Take a version out of images/ with one rename into .trash, then delete it."""
    store.remove_version(os.path.join(root, "images"), version)


# --------------------------------------------------------------------- plan

def plan(params):
    """Check everything and work out the change; write nothing.

    Returns a dict: ``changed``, ``before`` and ``after`` ({version: entry}),
    ``refs``, ``actions`` (what ``apply`` does) and ``result`` (the extra
    return values of the state). Raises ImageAdminError.
    """
    p = dict(DEFAULTS)
    p.update({k: v for k, v in params.items() if k in DEFAULTS})
    _check_params(p)
    root = p["root"]
    if not _is_dir(root):
        if p["state"] == "listed" and not os.path.lexists(root):
            # A server not set up yet has published nothing.
            return {"params": p, "changed": False, "before": {}, "after": {}, "refs": {}, "actions": [], "result": {}}
        _fail("root: %s is not a directory" % root)
    tables = p["tables"] if p["tables"] is not None else [os.path.join(root, DEFAULT_TABLE)]
    reports = p["reports"] if p["reports"] is not None else [os.path.join(root, DEFAULT_REPORTS)]
    refs = references(p["policy"], tables, reports)
    view = StoreView(root)
    before = view.copy_entries()
    after = view.copy_entries()
    states_after = dict(view.states)
    actions = []
    result = {}
    state, version = p["state"], p["version"]

    if state == "published":
        if p["src"] is not None:
            names = _scan_source(p["src"], root)
            manifest = _source_manifest(p, names)
            if version in before:
                have = before[version]["manifest"]
                if have is None:
                    _fail("version: %s is in the store but its manifest is unusable (%s); refusing to "
                          "overwrite it" % (version, before[version]["problem"]))
                diff = _differences(have["files"], manifest["files"])
                if diff:
                    _fail("version: %s is already published with other content; the module refuses to "
                          "overwrite a different image with the same version (differing files: %s)"
                          % (version, ", ".join(diff)), differing=diff)
            else:
                actions.append(("copy", p["src"], version, manifest))
                after[version] = {"version": version, "manifest": manifest, "problem": None,
                                  "state": "published"}
        elif version not in before:
            _fail("version: %s is not in the store %s; give src to publish it"
                  % (version, view.images_dir))
        after[version]["state"] = "published"
        states_after.pop(version, None)
        result["version"] = version
    elif state == "deprecated":
        if version not in before:
            _fail("version: %s is not in the store %s" % (version, view.images_dir))
        after[version]["state"] = "deprecated"
        states_after[version] = "deprecated"
        result["version"] = version
    elif state == "absent":
        result["version"] = version
        result["removed"] = []
        if version in before:
            users = refs.get(version, [])
            if users and not p["force"]:
                _fail("version: %s is still referenced by %s; refusing to remove it (force: true removes "
                      "it anyway)" % (version, ", ".join(users)), referenced_by=users)
            if users:
                result["warnings"] = ["version %s was removed while still referenced by %s"
                                      % (version, ", ".join(users))]
            actions.append(("remove", version))
            del after[version]
            result["removed"] = [version]
        states_after.pop(version, None)
    elif state == "pruned":
        listing = [describe(before[v], {}) for v in before]
        kept, removed = plan_prune(listing, {} if p["force"] else refs, p["keep"])
        used = {name: refs[name] for name in removed if refs.get(name)}
        if used:
            result["warnings"] = ["version %s was pruned while still referenced by %s" % (name, ", ".join(used[name]))
                                  for name in sorted(used, key=version_key)]
        for name in removed:
            actions.append(("remove", name))
            del after[name]
            states_after.pop(name, None)
        result["kept"] = {v: kept[v] for v in sorted(kept, key=version_key)}
        result["removed"] = removed
    elif state == "verified":
        if version is not None and version not in before:
            _fail("version: %s is not in the store %s" % (version, view.images_dir))
        corrupt = {}
        for name in ([version] if version is not None else sorted(before, key=version_key)):
            entry = before[name]
            if entry["manifest"] is None:
                problems = [entry["problem"]]
            else:
                problems = store.verify_version(os.path.join(view.images_dir, name), entry["manifest"])
            if problems:
                corrupt[name] = problems
        result["corrupt"] = corrupt
        result["verified"] = [version] if version is not None else sorted(before, key=version_key)

    if states_after != view.states:
        actions.append(("states", states_after))
    changed = bool(actions)
    return {"params": p, "changed": changed, "before": before, "after": after, "refs": refs,
            "actions": actions, "result": result}


def apply(planned):
    """Carry out a plan's actions (in order: copies, removals, then the state file)."""
    root = planned["params"]["root"]
    for action in planned["actions"]:
        if action[0] == "copy":
            what = "publishing version %s from %s" % (action[2], action[1])
        elif action[0] == "remove":
            what = "removing version %s" % action[1]
        else:
            what = "writing %s" % store.state_path(root)
        try:
            if action[0] == "copy":
                _publish_copy(root, action[1], action[2], action[3])
            elif action[0] == "remove":
                remove_version(root, action[1])
            else:
                write_states(root, action[1])
        except (OSError, store.ImageStoreError) as exc:
            _fail("%s failed: %s" % (what, exc))


def run(params, check_mode=False):
    """Plan, then (outside check mode) apply; return the module's result.

    The result holds ``changed``, ``images`` (the list after the run, or the
    predicted one in check mode), ``diff`` ({before, after} text) and the
    state's own values. Raises ImageAdminError; verification failures carry
    ``corrupt`` and ``images`` in ``details``.
    """
    planned = plan(params)
    p = planned["params"]
    result = dict(changed=planned["changed"], **planned["result"])
    warnings = result.pop("warnings", [])
    result["diff"] = {"before": state_lines(planned["before"]), "after": state_lines(planned["after"])}
    if not check_mode and planned["changed"]:
        apply(planned)
        entries = StoreView(p["root"]).entries
    else:
        entries = planned["after"]
    result["images"] = describe_all(entries, planned["refs"])
    if warnings:
        result["warnings"] = warnings
    if p["state"] == "verified" and result["corrupt"]:
        bad = result["corrupt"]
        _fail("%d of %d image(s) verified are corrupt: %s"
              % (len(bad), len(result["verified"]),
                 "; ".join("%s: %s" % (v, ", ".join(bad[v])) for v in sorted(bad, key=version_key))),
              corrupt=bad, images=result["images"], verified=result["verified"])
    return result
