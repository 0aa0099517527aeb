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

Writers of one ``dest`` take turns: each holds an exclusive lock on
``.<base>.lock`` beside it from before it reads what is served until its
swap and clean-up are done, so two runs at once never remove each other's
generation. A run removes only what this scheme makes (generation
directories named ``.<base>-<16 hex digits>``, their ``.tmp`` work
directories and the ``.<base>.link`` link), never what ``dest`` points at.

A ``dest`` that is a real directory holding anything is refused (it was not
made here, and its files are not this module's to delete); an empty one is
replaced by the link.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import os
import re
import shutil
import time

from ansible_collections.orionos.diskless.plugins.module_utils import fileio


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


def _remove(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


class TreeError(OSError):
    """``dest`` cannot be written by this scheme; the message says why."""


LOCK_TIMEOUT = 600


def _generation_re(base):
    return re.compile(r"^\.%s-[0-9a-f]{16}(-[0-9]+)?(\.tmp)?\Z" % re.escape(base))


def generations(dest):
    """The generation directories beside ``dest`` that this scheme made (complete or not)."""
    parent, base = os.path.split(dest.rstrip("/"))
    pattern = _generation_re(base)
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(parent, n) for n in names
                  if pattern.match(n) and os.path.isdir(os.path.join(parent, n))
                  and not os.path.islink(os.path.join(parent, n)))


@contextlib.contextmanager
def locked(dest, timeout=LOCK_TIMEOUT):
    """Hold the writers' lock of ``dest`` (``.<base>.lock`` beside it).

    Waits up to ``timeout`` seconds for another writer, then raises
    TreeError naming the lock. The lock goes with the process, so a killed
    run never leaves it held.
    """
    parent, base = os.path.split(dest.rstrip("/"))
    path = os.path.join(parent, ".%s.lock" % base)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TreeError("another run has held the lock %s for more than %d s" % (path, timeout))
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def check_dest(dest):
    """Raise TreeError when ``dest`` is something this scheme may not replace."""
    dest = dest.rstrip("/")
    if os.path.islink(dest):
        target = os.readlink(dest)
        parent, base = os.path.split(dest)
        if os.path.dirname(target) or not _generation_re(base).match(target):
            raise TreeError("%s is a link to %s, not to a generation this module wrote (.%s-<digest>); "
                            "remove the link to let the module take it over" % (dest, target, base))
        return
    if os.path.isdir(dest):
        entries = os.listdir(dest)
        if entries:
            raise TreeError("%s is a directory this module did not make (it holds %d entries, such as %s); "
                            "move it away: the module makes %s a link to the set of files it writes"
                            % (dest, len(entries), sorted(entries)[0], dest))
    elif os.path.lexists(dest):
        raise TreeError("%s exists and is not a directory" % dest)


def current_target(dest):
    """The generation directory ``dest`` points at, or ``dest`` itself when a real directory."""
    if os.path.islink(dest):
        return os.path.join(os.path.dirname(dest), os.readlink(dest))
    return dest if os.path.isdir(dest) else None


def swap_tree(dest, files, mode=0o644, dir_mode=0o755, hook=None):
    """Make ``dest`` hold exactly ``files``, atomically, under the writers' lock.

    Returns True when the set changed. ``hook(stage)`` is called between
    steps ('locked', 'written', 'flushed', 'swapped'); tests use it to stop
    a run. Raises TreeError when ``dest`` is not this scheme's to replace.
    """
    dest = dest.rstrip("/")
    with locked(dest):
        if hook:
            hook("locked")
        return _swap_tree(dest, files, mode, dir_mode, hook)


def _swap_tree(dest, files, mode, dir_mode, hook):
    check_dest(dest)
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
    if os.path.isdir(dest) and not os.path.islink(dest):
        os.rmdir(dest)  # empty (check_dest): nothing is served from it
    os.rename(link, dest)
    fileio.fsync_path(parent)
    if hook:
        hook("swapped")
    _cleanup(dest, keep=final)
    return True


def cleanup(dest):
    """Remove what killed runs left beside ``dest`` (never what it points at), under the writers' lock."""
    dest = dest.rstrip("/")
    with locked(dest):
        current = current_target(dest)
        if current is not None and os.path.islink(dest):
            _cleanup(dest, keep=current)


def _cleanup(dest, keep):
    """Remove every generation this scheme made and its link leftover, except ``keep``."""
    parent, base = os.path.split(dest)
    for path in generations(dest):
        if os.path.abspath(path) != os.path.abspath(keep):
            _remove(path)
    link = os.path.join(parent, ".%s.link" % base)
    if os.path.islink(link):
        os.unlink(link)


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
    except TreeError as exc:
        module.fail_json(msg="dest: %s" % exc, **result)
    except OSError as exc:
        module.fail_json(msg="writing the %s into %s failed: %s" % (what, dest, exc), **result)
    module.exit_json(**result)
