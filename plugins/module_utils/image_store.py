# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image store on disk: versions, manifests and their verification.

A store root holds ``images/<version>/`` directories. Each version directory
contains its files and a ``manifest.json`` that lists every one of them with
its size and sha256::

    {"format": 1, "version": "2026.11.0",
     "files": {"vmlinuz": {"size": 123, "sha256": "..."}, ...}}

Work areas live beside ``images/`` on the same filesystem, so that neither
NFS nor HTTP ever shows them: ``.incoming/<version>`` (staging of pulls and
publishes) and ``.trash/`` (versions being removed). A version becomes
visible only by renaming a complete, verified directory into ``images/``;
nothing inside a published version is ever changed. Dot directories inside
``images/`` are never versions either.

Plain Python: the modules are thin wrappers, and the unit tests call these
functions without Ansible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat

from ansible_collections.orionos.diskless.plugins.module_utils import fileio

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
STAGING = ".incoming"
TRASH = ".trash"

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}\Z")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


class ImageStoreError(ValueError):
    """A store, version or manifest that cannot be used."""


def valid_version(name):
    """True when ``name`` can name a version directory (and a URL path part)."""
    return isinstance(name, str) and bool(_VERSION_RE.match(name)) and name not in (".", "..")


def valid_file_name(name):
    """True when ``name`` is a plain file name allowed inside a version."""
    return isinstance(name, str) and bool(_FILE_RE.match(name)) and name != MANIFEST


def parse_manifest(text, where="manifest"):
    """Parse and check manifest text; return the manifest as a dict.

    Raises ImageStoreError naming ``where`` and the bad field.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ImageStoreError("%s: not valid JSON (%s)" % (where, exc)) from exc
    if not isinstance(data, dict):
        raise ImageStoreError("%s: top level must be an object" % where)
    if data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise ImageStoreError("%s: format %r is not supported (expected %d)"
                              % (where, data.get("format"), MANIFEST_FORMAT))
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise ImageStoreError("%s: 'files' must be a non-empty object of name -> {size, sha256}" % where)
    for name, entry in files.items():
        if not valid_file_name(name):
            raise ImageStoreError("%s: file name %r is not a plain file name" % (where, name))
        if not isinstance(entry, dict):
            raise ImageStoreError("%s: files.%s must be an object with size and sha256" % (where, name))
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ImageStoreError("%s: files.%s.size %r is not a byte count" % (where, name, size))
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise ImageStoreError("%s: files.%s.sha256 %r is not 64 lower-case hex digits"
                                  % (where, name, digest))
    version = data.get("version")
    if version is not None and not valid_version(version):
        raise ImageStoreError("%s: version %r is not a valid version name" % (where, version))
    if "system" in data:
        check_system(data["system"], where)
    return data


_ACCOUNT_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
_SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+\Z")
_SHELL_RE = re.compile(r"^(/[A-Za-z0-9._@+-]+)+\Z")
SYSTEM_KEYS = ("users", "groups", "shells", "services")


def check_system(system, where="manifest"):
    """Check a manifest's ``system``: what the image's root has that a node's configuration may name.

    ``users`` and ``groups`` map account names to their ids, ``shells`` are
    the login shells of /etc/shells the root has, ``services`` the runit
    services of /etc/sv. Raises ImageStoreError naming the bad field.
    """
    if not isinstance(system, dict):
        raise ImageStoreError("%s: system %r is not an object" % (where, system))
    for key in sorted(set(system) - set(SYSTEM_KEYS)):
        raise ImageStoreError("%s: system.%s is not a known field (%s)" % (where, key, ", ".join(SYSTEM_KEYS)))
    for key in ("users", "groups"):
        accounts = system.get(key, {})
        if not isinstance(accounts, dict):
            raise ImageStoreError("%s: system.%s is not an object of name -> id" % (where, key))
        for name, number in accounts.items():
            if not _ACCOUNT_RE.match(name) or isinstance(number, bool) or not isinstance(number, int) \
                    or not 0 <= number <= 65535:
                raise ImageStoreError("%s: system.%s entry %r: %r is not a name and id" % (where, key, name, number))
    for key, pattern in (("shells", _SHELL_RE), ("services", _SERVICE_NAME_RE)):
        values = system.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and pattern.match(v) for v in values):
            raise ImageStoreError("%s: system.%s %r is not a list of %s" % (where, key, values, key))


def system_of_root(passwd, group, shells, services):
    """A manifest's ``system`` from a root's /etc/passwd, /etc/group (text), its shells and service names.

    ``shells`` are the lines of /etc/shells whose file the root has, as the
    build lists them; comments and blank lines are left out.
    """
    def accounts(text):
        found = {}
        for line in (text or "").splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and _ACCOUNT_RE.match(parts[0]) and parts[2].isdigit():
                found[parts[0]] = int(parts[2])
        return found

    system = {"users": accounts(passwd), "groups": accounts(group),
              "shells": sorted({s.strip() for s in shells if s.strip() and not s.strip().startswith("#")}),
              "services": sorted({s for s in services if s})}
    check_system(system)
    return system


def load_manifest(version_dir):
    """Read and check ``version_dir``/manifest.json."""
    path = os.path.join(version_dir, MANIFEST)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ImageStoreError("%s: cannot read (%s)" % (path, exc.strerror or exc)) from exc
    return parse_manifest(text, path)


def build_manifest(version_dir, version=None, extra=None):
    """Return a manifest for every regular file in ``version_dir``.

    ``manifest.json`` itself is left out. Sub-directories, links and names
    that are not plain file names are refused.
    """
    files = {}
    for name in sorted(os.listdir(version_dir)):
        if name == MANIFEST:
            continue
        path = os.path.join(version_dir, name)
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ImageStoreError("%s: only regular files may be part of an image" % path)
        if not valid_file_name(name):
            raise ImageStoreError("%s: %r is not a plain file name" % (version_dir, name))
        files[name] = {"size": os.path.getsize(path), "sha256": fileio.sha256_file(path)}
    if not files:
        raise ImageStoreError("%s: no files to put in a manifest" % version_dir)
    manifest = {"format": MANIFEST_FORMAT}
    if version is not None:
        if not valid_version(version):
            raise ImageStoreError("version %r is not a valid version name" % (version,))
        manifest["version"] = version
    manifest.update(extra or {})
    manifest["files"] = files
    return manifest


def dump_manifest(manifest):
    """Serialize a manifest the same way every time (sorted keys, newline)."""
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def verify_version(version_dir, manifest=None, checksums=True):
    """Return the list of problems of a version directory (empty: complete).

    Every file of the manifest must exist with its size (and sha256 when
    ``checksums``); no other file may be present.
    """
    if manifest is None:
        try:
            manifest = load_manifest(version_dir)
        except ImageStoreError as exc:
            return [str(exc)]
    problems = []
    expected = manifest["files"]
    try:
        present = set(os.listdir(version_dir)) - {MANIFEST}
    except OSError as exc:
        return ["%s: cannot list (%s)" % (version_dir, exc.strerror or exc)]
    for name in sorted(present - set(expected)):
        problems.append("%s: file %s is not in the manifest" % (version_dir, name))
    for name in sorted(expected):
        path = os.path.join(version_dir, name)
        want = expected[name]
        if name not in present:
            problems.append("%s: file %s is missing" % (version_dir, name))
            continue
        if not stat.S_ISREG(os.lstat(path).st_mode):
            problems.append("%s: %s is not a regular file" % (version_dir, name))
            continue
        size = os.path.getsize(path)
        if size != want["size"]:
            problems.append("%s: file %s has %d bytes, the manifest says %d"
                            % (version_dir, name, size, want["size"]))
            continue
        if checksums:
            digest = fileio.sha256_file(path)
            if digest != want["sha256"]:
                problems.append("%s: file %s has sha256 %s, the manifest says %s"
                                % (version_dir, name, digest, want["sha256"]))
    return problems


def list_versions(images_dir):
    """Return the sorted published versions under ``images_dir``.

    Work areas (dot directories), files and names that are not valid
    versions are not versions. A missing directory has no versions.
    """
    try:
        names = os.listdir(images_dir)
    except FileNotFoundError:
        return []
    versions = []
    for name in names:
        if name.startswith(".") or not valid_version(name):
            continue
        if os.path.isdir(os.path.join(images_dir, name)) and not os.path.islink(os.path.join(images_dir, name)):
            versions.append(name)
    return sorted(versions)


def plan_sync(source_versions, local_versions, delete=False):
    """Work out what a replica does to match its source.

    Returns ``{'pull': [...], 'remove': [...], 'keep': [...]}``, each sorted.
    Versions only the replica has are kept unless ``delete``.
    """
    bad = [v for v in list(source_versions) + list(local_versions) if not valid_version(v)]
    if bad:
        raise ImageStoreError("invalid version name(s): %s" % ", ".join(repr(v) for v in bad))
    source, local = set(source_versions), set(local_versions)
    extra = sorted(local - source)
    return {
        "pull": sorted(source - local),
        "remove": extra if delete else [],
        "keep": sorted(local & source) + ([] if delete else extra),
    }


# ------------------------------------------------------------ image states
# Each version is "published" unless the state file lists it otherwise:
# <root>/state/images.json = {"format": 1, "versions": {"<v>": {"state": "deprecated"}}}.

IMAGE_STATES = ("published", "deprecated")
STATE_DIR = "state"
STATE_FILE = "images.json"


def state_path(root):
    """The file holding each version's state (only deprecations are listed)."""
    return os.path.join(root, STATE_DIR, STATE_FILE)


def load_states(root):
    """Return {version: state} from the store's state file (missing: {})."""
    path = state_path(root)
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ImageStoreError("%s: cannot read image states (%s)" % (path, exc)) from exc
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict):
        raise ImageStoreError("%s: 'versions' must be an object" % path)
    states = {}
    for version, entry in versions.items():
        state = entry.get("state") if isinstance(entry, dict) else entry
        if state not in IMAGE_STATES:
            raise ImageStoreError("%s: versions.%s.state %r is not one of %s"
                                  % (path, version, state, ", ".join(IMAGE_STATES)))
        states[version] = state
    return states


def dump_states(states):
    """Serialize image states the same way every time."""
    listed = {v: {"state": s} for v, s in sorted(states.items()) if s != "published"}
    return json.dumps({"format": 1, "versions": listed}, indent=2, sort_keys=True) + "\n"


def fsync_tree(path):
    """Flush every file of a version directory, then the directory itself."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not os.path.islink(full):
            fileio.fsync_path(full)
    fileio.fsync_path(path)


def promote(images_dir, staging_dir, version):
    """Make a complete staging directory visible as ``version`` by one rename.

    Refuses to replace an existing version: published versions never change.
    """
    final = os.path.join(images_dir, version)
    if os.path.lexists(final):
        raise ImageStoreError("%s already exists; a published version is never replaced" % final)
    fsync_tree(staging_dir)
    os.rename(staging_dir, final)
    fileio.fsync_path(images_dir)
    return final


def remove_version(images_dir, version):
    """Take a version out of ``images_dir`` with one rename into the trash, then delete it.

    Readers see the whole version disappear at once; what a killed run leaves
    in the trash is replaced by the next removal of that version.
    """
    trash = os.path.join(os.path.dirname(images_dir.rstrip("/")), TRASH)
    os.makedirs(trash, mode=0o700, exist_ok=True)
    target = os.path.join(trash, version)
    if os.path.islink(target) or os.path.isfile(target):
        os.unlink(target)
    elif os.path.isdir(target):
        shutil.rmtree(target)
    os.rename(os.path.join(images_dir, version), target)
    fileio.fsync_path(images_dir)
    shutil.rmtree(target)


def rsync_pull_command(source, version, dest, ssh_key, known_hosts, port=22,
                       bwlimit=0, checksum=False, timeout=60, rsync="rsync"):
    """Return the argv that pulls one version from a restricted source.

    ``source`` is ``user@host``. The source's key for this replica forces
    ``rrsync -ro <store>/images``, so the remote path is the bare version.
    Files arrive read-only (0444) owned by the receiving user; size and mtime
    decide what is re-sent, or the content too with ``checksum``.
    """
    if not valid_version(version):
        raise ImageStoreError("version %r is not a valid version name" % (version,))
    if not re.match(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.:_-]+\Z", source or ""):
        raise ImageStoreError("source %r is not user@host" % (source,))
    ssh = ("ssh -i %s -p %d -o BatchMode=yes -o IdentitiesOnly=yes "
           "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o ConnectTimeout=10"
           % (ssh_key, int(port), known_hosts))
    argv = [rsync, "--recursive", "--times", "--partial",
            "--chmod=D0755,F0444", "--timeout=%d" % int(timeout), "-e", ssh]
    if checksum:
        argv.append("--checksum")
    if bwlimit:
        argv.append("--bwlimit=%d" % int(bwlimit))
    argv += ["%s:%s/" % (source, version), dest.rstrip("/") + "/"]
    return argv
