# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace a whole directory of generated files in one atomic step.

``dest`` is a symbolic link to a generation directory beside it::

    boot/nodes -> .nodes-3f2a9c1b7d40      (what nginx and dnsmasq read)
    boot/.nodes-3f2a9c1b7d40/...           (complete set of files)

A new set is written into a fresh generation directory, flushed, and then
the link is replaced by rename(2), which is atomic: a reader sees either the
old complete set or the new complete set, never a mix. A run killed at any
point leaves at most an unused directory, removed by the next run.

A ``dest`` that is still a real directory (from before this scheme) is
swapped with the new link by renameat2(RENAME_EXCHANGE) where the kernel
supports it, so even that first switch has no moment without ``dest``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import shutil

from ansible_collections.orionos.diskless.plugins.module_utils import fileio

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:  # pragma: no cover - every Linux has a libc
        return None


_LIBC = _libc()


def tree_digest(files):
    """A digest of a file set: {name: bytes or ('link', target)}."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        if isinstance(content, tuple):
            digest.update(b"L" + name.encode() + b"\0" + content[1].encode() + b"\0")
        else:
            digest.update(b"F" + name.encode() + b"\0" + str(len(content)).encode() + b"\0")
            digest.update(content)
    return digest.hexdigest()


def read_tree(path):
    """Read a directory back as {name: bytes or ('link', target)} ({} when missing)."""
    files = {}
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return files
    for name in names:
        full = os.path.join(path, name)
        if os.path.islink(full):
            files[name] = ("link", os.readlink(full))
        elif os.path.isfile(full):
            with open(full, "rb") as handle:
                files[name] = handle.read()
    return files


def diff_names(before, after):
    """Names added, removed and changed between two file sets."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(n for n in set(before) & set(after) if before[n] != after[n])
    return {"added": added, "removed": removed, "changed": changed}


def _syncfs(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC is not None and hasattr(_LIBC, "syncfs"):
            if _LIBC.syncfs(fd) == 0:
                return
        os.sync()
    finally:
        os.close(fd)


def _exchange(a, b):
    """Atomically exchange two paths; False when the kernel cannot."""
    if _LIBC is None or not hasattr(_LIBC, "renameat2"):
        return False
    res = _LIBC.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
        return False
    raise OSError(err, os.strerror(err), a)


def _remove(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def generations(dest):
    """The generation directories beside ``dest`` (complete or not)."""
    parent, base = os.path.split(dest.rstrip("/"))
    prefix = ".%s-" % base
    try:
        return sorted(os.path.join(parent, n) for n in os.listdir(parent) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def current_target(dest):
    """The generation directory ``dest`` points at, or ``dest`` itself when a real directory."""
    if os.path.islink(dest):
        return os.path.join(os.path.dirname(dest), os.readlink(dest))
    return dest if os.path.isdir(dest) else None


def swap_tree(dest, files, mode=0o644, dir_mode=0o755, hook=None):
    """Make ``dest`` hold exactly ``files``, atomically.

    Returns True when the set changed. ``hook(stage)`` is called between
    steps ('written', 'flushed', 'swapped'); tests use it to stop a run.
    """
    dest = dest.rstrip("/")
    parent, base = os.path.split(dest)
    current = current_target(dest)
    if current is not None and read_tree(current) == files and os.path.islink(dest):
        _cleanup(dest, keep=current)
        return False
    digest = tree_digest(files)[:16]
    final = os.path.join(parent, ".%s-%s" % (base, digest))
    if final == current:  # same digest but the directory was damaged: rebuild it
        final = os.path.join(parent, ".%s-%s-%d" % (base, digest, os.getpid()))
    work = os.path.join(parent, ".%s-%s.tmp" % (base, digest))
    _remove(work)
    os.mkdir(work, dir_mode)
    os.chmod(work, dir_mode)
    for name in sorted(files):
        content = files[name]
        path = os.path.join(work, name)
        if isinstance(content, tuple):
            os.symlink(content[1], path)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.chmod(path, mode)
    if hook:
        hook("written")
    _syncfs(work)
    _remove(final)
    os.rename(work, final)
    if hook:
        hook("flushed")
    link = os.path.join(parent, ".%s.link" % base)
    _remove(link)
    os.symlink(os.path.basename(final), link)
    if os.path.islink(dest) or not os.path.lexists(dest):
        os.rename(link, dest)
    elif not _exchange(link, dest):
        # Old kernel or filesystem: a short moment without dest.
        aside = os.path.join(parent, ".%s-previous" % base)
        _remove(aside)
        os.rename(dest, aside)
        os.rename(link, dest)
    fileio.fsync_path(parent)
    if hook:
        hook("swapped")
    _cleanup(dest, keep=final)
    return True


def cleanup(dest):
    """Remove what killed runs left beside ``dest`` (never what it points at)."""
    current = current_target(dest.rstrip("/"))
    if current is not None and os.path.islink(dest.rstrip("/")):
        _cleanup(dest.rstrip("/"), keep=current)


def _cleanup(dest, keep):
    """Remove every generation and leftover except ``keep``."""
    parent, base = os.path.split(dest)
    for path in generations(dest):
        if os.path.abspath(path) != os.path.abspath(keep):
            _remove(path)
    # After an exchange, the old real directory sits at the link's name.
    _remove(os.path.join(parent, ".%s.link" % base))


def finish(module, dest, files, result, what="files"):
    """End a module run that writes ``files`` as the tree ``dest``.

    In check mode, or when nothing changed (leftovers of killed runs are then
    removed, which changes nothing that is served), only reports ``result``;
    otherwise swaps the new set in. Exits the module either way.
    """
    if module.check_mode:
        module.exit_json(**result)
    if not result["changed"]:
        try:
            cleanup(dest)
        except OSError as exc:
            module.warn("could not remove leftovers beside %s: %s" % (dest, exc))
        module.exit_json(**result)
    try:
        swap_tree(dest, files)
    except OSError as exc:
        module.fail_json(msg="writing the %s into %s failed: %s" % (what, dest, exc), **result)
    module.exit_json(**result)
