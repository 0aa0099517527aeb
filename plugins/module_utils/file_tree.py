# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tree of small files put into a directory in one step.

The controller reads a directory into entries (``read_tree``): each file's
path relative to the directory, its mode and its content. On the host,
``plan`` compares the entries with what the destination holds (content by
sha256, mode, owner and group) and ``apply`` writes only the files that
differ, each by an atomic rename, creating missing directories. Files in the
destination that the tree does not name are left alone.

Every path is checked before anything is written: relative, without ``..``
or empty parts, and not reaching through a symbolic link or a non-directory
in the destination. A bad entry fails the whole step, naming the entry.

Plain Python: no Ansible needed.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import os
import stat

from ansible_collections.orionos.diskless.plugins.module_utils import fileio

# What one step carries: the tree travels in the task's arguments.
MAX_BYTES = 64 * 1024 * 1024


class TreeError(ValueError):
    """A tree or an entry that cannot be put in place; the message names it."""


def check_path(path):
    """``path`` if it is a plain relative path inside the tree; TreeError naming it otherwise."""
    if not isinstance(path, str) or not path:
        raise TreeError("path %r is not a relative path" % (path,))
    parts = path.split("/")
    if path.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\x00" in path:
        raise TreeError("path %r is not a plain relative path (no leading /, no empty, . or .. parts)" % path)
    return path


def mode_of(value, what):
    """An octal mode given as text (``"0644"``) or number, as an int; TreeError naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise TreeError("%s %r is not a mode" % (what, value))
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value and all(c in "01234567" for c in value) and len(value) <= 5:
        number = int(value, 8)
    else:
        raise TreeError("%s %r is not an octal mode such as '0644'" % (what, value))
    if not 0 <= number <= 0o7777:
        raise TreeError("%s %r is not an octal mode such as '0644'" % (what, value))
    return number


def read_tree(top, mode=None, include=None):
    """The entries of the directory ``top`` on this machine: [{path, mode, content}] in path order,
    content base64. A file's own mode is kept unless ``mode`` (an int) is given. With ``include`` (glob
    patterns), only the files whose name matches one are read. Symbolic links to files are followed; a
    link to a directory, or anything but a file or directory, fails naming it."""
    if not os.path.isdir(top):
        raise TreeError("%s is not a directory" % top)
    entries, total = [], 0
    for here, dirs, files in os.walk(top):
        dirs.sort()
        for name in list(dirs):
            if os.path.islink(os.path.join(here, name)):
                raise TreeError("%s is a link to a directory" % os.path.join(here, name))
        for name in sorted(files):
            if include is not None and not any(fnmatch.fnmatchcase(name, pattern) for pattern in include):
                continue
            full = os.path.join(here, name)
            info = os.stat(full)
            if not stat.S_ISREG(info.st_mode):
                raise TreeError("%s is not a regular file" % full)
            total += info.st_size
            if total > MAX_BYTES:
                raise TreeError("%s holds more than %d MiB of files" % (top, MAX_BYTES // (1024 * 1024)))
            with open(full, "rb") as handle:
                content = handle.read()
            entries.append({"path": os.path.relpath(full, top).replace(os.sep, "/"),
                            "mode": "%04o" % (stat.S_IMODE(info.st_mode) if mode is None else mode),
                            "content": base64.b64encode(content).decode("ascii")})
    return entries


def _decoded(entries):
    """[(path, mode, bytes)] of the entries; TreeError naming the first bad one."""
    out, seen = [], set()
    if not isinstance(entries, list):
        raise TreeError("files must be a list of {path, mode, content}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise TreeError("files[%d] is not a mapping" % index)
        path = check_path(entry.get("path"))
        if path in seen:
            raise TreeError("files[%d]: path %s is given twice" % (index, path))
        seen.add(path)
        try:
            data = base64.b64decode(entry.get("content", ""), validate=True)
        except (ValueError, TypeError) as exc:
            raise TreeError("files[%d] (%s): content is not base64: %s" % (index, path, exc)) from exc
        out.append((path, mode_of(entry.get("mode", "0644"), "files[%d] (%s): mode" % (index, path)), data))
    return out


def _walk_parents(dest, path):
    """The directories between ``dest`` and the file ``path``, each checked to be a real directory or missing."""
    parts = path.split("/")[:-1]
    dirs, here = [], dest
    for part in parts:
        here = os.path.join(here, part)
        if os.path.lexists(here) and (os.path.islink(here) or not os.path.isdir(here)):
            raise TreeError("%s is in the way of %s: not a directory (or a link)" % (here, path))
        dirs.append(here)
    return dirs


def plan(dest, entries, uid=None, gid=None):
    """What ``apply`` would do: {"files": [paths to write], "dirs": [directories to create]}."""
    if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest)):
        raise TreeError("dest %s is not a directory" % dest)
    files, dirs = [], [] if os.path.isdir(dest) else [dest]
    for path, mode, data in _decoded(entries):
        for directory in _walk_parents(dest, path):
            if not os.path.lexists(directory) and directory not in dirs:
                dirs.append(directory)
        target = os.path.join(dest, path)
        if os.path.lexists(target):
            info = os.lstat(target)
            if not stat.S_ISREG(info.st_mode):
                raise TreeError("%s is in the way of %s: not a regular file" % (target, path))
            same = (stat.S_IMODE(info.st_mode) == mode and (uid is None or info.st_uid == uid)
                    and (gid is None or info.st_gid == gid) and info.st_size == len(data)
                    and fileio.sha256_file(target) == hashlib.sha256(data).hexdigest())
            if same:
                continue
        files.append(path)
    return {"files": files, "dirs": dirs}


def apply(dest, entries, uid=None, gid=None, dir_mode=0o755):
    """Write the files of ``entries`` that differ under ``dest``; return the plan that was carried out."""
    todo = plan(dest, entries, uid, gid)
    wanted = set(todo["files"])
    for directory in todo["dirs"]:
        if not os.path.isdir(directory):
            os.makedirs(os.path.dirname(directory), exist_ok=True)
            os.mkdir(directory, dir_mode)
            os.chmod(directory, dir_mode)
            if uid is not None or gid is not None:
                os.chown(directory, -1 if uid is None else uid, -1 if gid is None else gid)
    for path, mode, data in _decoded(entries):
        if path not in wanted:
            continue
        target = os.path.join(dest, path)
        fileio.atomic_write(target, data, mode=mode, sync_dir=False)
        if uid is not None or gid is not None:
            os.chown(target, -1 if uid is None else uid, -1 if gid is None else gid)
    return todo
