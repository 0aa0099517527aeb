# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A verified cache of source files, filled from an ordered list of mirrors.

A mirror is a URL (``http://``, ``https://``, ``file://``) or a local
directory. A local directory (or ``file://``) holds the files side by side
(``<dir>/<file>``); a web mirror is looked up as ``<mirror>/<path>/<file>``,
where ``path`` comes with the file (Debian's archive keeps each source
package in its own pool directory) and may be empty. Each file of the
recipes is taken from the cache when its sha256 is right there, otherwise
from the first mirror that has it with the right sha256. A download lands in
``<cache>/.partial/`` and enters the cache (a rename) only once verified:
a file with a wrong checksum never reaches the cache, and an interrupted
fetch leaves nothing but a partial file that the next run starts over.

Everything is checked before anything is built: when a file cannot be had
with its sha256 from any mirror, the whole fetch fails naming the file, the
expected hash and, for every mirror, the actual hash or why it failed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from urllib.parse import unquote, urlparse


class SourceError(Exception):
    def __init__(self, msg, problems):
        super().__init__(msg)
        self.problems = problems


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mirror_kind(mirror):
    parsed = urlparse(mirror)
    if parsed.scheme in ("http", "https"):
        return "url"
    if parsed.scheme == "file":
        return "dir"
    if parsed.scheme == "" and mirror.startswith("/"):
        return "dir"
    return None


def mirror_problems(mirrors):
    if not isinstance(mirrors, list) or not mirrors:
        return ["mirrors: must be a non-empty list of URLs or absolute directories, got %r" % (mirrors,)]
    return ["mirrors[%d]: %r is neither an http(s):// or file:// URL nor an absolute directory" % (i, m)
            for i, m in enumerate(mirrors) if not isinstance(m, str) or mirror_kind(m) is None]


def _local_path(mirror, name):
    parsed = urlparse(mirror)
    base = unquote(parsed.path) if parsed.scheme == "file" else mirror
    return os.path.join(base, name)


def _url(mirror, name, path=""):
    parts = [mirror.rstrip("/")] + ([path.strip("/")] if path and path.strip("/") else []) + [name]
    return "/".join(parts)


def normalize(files):
    """``{file: sha256}`` or ``{file: {"sha256": ..., "path": ...}}`` as ``{file: (sha256, path)}``."""
    out = {}
    for name, value in files.items():
        if isinstance(value, tuple):
            out[name] = value
        elif isinstance(value, dict):
            out[name] = (value.get("sha256"), value.get("path") or "")
        else:
            out[name] = (value, "")
    return out


def cache_state(files, cache_dir):
    """{file: True when the cache holds it with the right sha256}."""
    state = {}
    for name, (sha, _path) in sorted(normalize(files).items()):
        path = os.path.join(cache_dir, name)
        state[name] = os.path.isfile(path) and sha256_file(path) == sha
    return state


def _try_mirror(mirror, name, path, partial, download):
    """Put ``name`` from ``mirror`` into ``partial``; returns None or why it failed."""
    if mirror_kind(mirror) == "dir":
        path = _local_path(mirror, name)
        if not os.path.isfile(path):
            return "not there"
        try:
            shutil.copyfile(path, partial)
        except OSError as exc:
            return "cannot be read: %s" % exc
        return None
    try:
        download(_url(mirror, name, path), partial)
    except Exception as exc:  # pylint: disable=broad-except  # any failure means: try the next mirror
        return "download failed: %s" % exc
    return None


def fetch(files, mirrors, cache_dir, download=None, check_mode=False):
    """Fill the cache; returns ``{"cached": [...], "fetched": {file: mirror}}``.

    ``files`` is ``{file: sha256}`` or ``{file: {"sha256", "path"}}``; ``download(url, dest)`` fetches a URL into
    a file (the module passes one built on Ansible's ``fetch_url``).
    Raises SourceError listing every file that could not be had.
    """
    problems = mirror_problems(mirrors)
    if problems:
        raise SourceError("bad mirror list", problems)
    files = normalize(files)
    have = cache_state(files, cache_dir) if os.path.isdir(cache_dir) else {n: False for n in files}
    result = {"cached": sorted(n for n, ok in have.items() if ok), "fetched": {}}
    wanted = sorted(n for n, ok in have.items() if not ok)
    if not wanted:
        return result
    if check_mode:
        # Where each would come from, without copying anything.
        for name in wanted:
            for mirror in mirrors:
                if mirror_kind(mirror) == "url" or os.path.isfile(_local_path(mirror, name)):
                    result["fetched"][name] = mirror
                    break
            else:
                problems.append("%s: expected sha256 %s; not in any mirror" % (name, files[name][0]))
        if problems:
            raise SourceError("%d source file(s) cannot be had" % len(problems), problems)
        return result
    partial_dir = os.path.join(cache_dir, ".partial")
    os.makedirs(partial_dir, exist_ok=True)
    for name in wanted:
        expected, path = files[name]
        attempts = []
        for mirror in mirrors:
            fd, partial = tempfile.mkstemp(prefix=name + ".", dir=partial_dir)
            os.close(fd)
            try:
                why = _try_mirror(mirror, name, path, partial, download)
                if why is None:
                    actual = sha256_file(partial)
                    if actual == expected:
                        os.chmod(partial, 0o644)
                        os.rename(partial, os.path.join(cache_dir, name))
                        result["fetched"][name] = mirror
                        break
                    why = "sha256 is %s" % actual
                attempts.append("%s: %s" % (mirror, why))
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
        else:
            problems.append("%s: expected sha256 %s; %s" % (name, expected, "; ".join(attempts)))
    if problems:
        raise SourceError("%d source file(s) cannot be had with the sha256 of the recipes" % len(problems),
                          problems)
    return result
