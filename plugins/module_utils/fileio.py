# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small file helpers shared by the engines: checksums and atomic writes.

``atomic_write`` replaces a file so that a reader (or a crash) sees either
the old content or the new content, never a part: the data goes to a
temporary file in the same directory, is flushed, gets its mode, and is
renamed over the target; then the directory is flushed so that the rename
survives a power loss. A failure at any step removes the temporary file and
leaves the target as it was.

Plain Python: no Ansible needed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

CHUNK = 1024 * 1024


def sha256_file(path, chunk=CHUNK):
    """Return the hex sha256 of the file at ``path``, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path):
    """Flush a file, or a directory's entries (after a rename), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o644, dir_mode=0o755, sync_dir=True):
    """Replace ``path`` with ``data`` (bytes, or str written as UTF-8) atomically.

    The file gets ``mode`` (not subject to the umask). A missing parent
    directory is created with ``dir_mode`` (subject to the umask, as
    os.makedirs does). With ``sync_dir`` the directory is flushed after the
    rename.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=dir_mode, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_path(directory)
