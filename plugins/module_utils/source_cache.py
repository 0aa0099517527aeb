# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A verified cache of source files, filled from an ordered list of mirrors.

A mirror is a URL (``http://``, ``https://``, ``file://``), a local
directory, or the word ``apt``: the Debian mirrors the host's own apt sources
name (``/etc/apt/sources.list`` and ``/etc/apt/sources.list.d/``), read where
the fetch runs, the build host. A local directory (or ``file://``) holds the files side by side
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

import glob
import os
import shutil
import tempfile

from urllib.parse import unquote, urlparse

from ansible_collections.orionos.diskless.plugins.module_utils import fileio


class SourceError(Exception):
    def __init__(self, msg, problems):
        super().__init__(msg)
        self.problems = problems


# The mirror list entry that stands for the host's configured Debian mirrors.
APT_MIRROR = "apt"
# What apt reads: the one-line list, then the directory of .list (one-line) and .sources (deb822) files.
APT_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")
# Suites of the security archive (its own pool layout) and of the updates: a mirror named with the release is
# preferred to these.
_NOT_A_RELEASE = ("-security", "/updates", "-updates")


def _one_line_entries(text):
    """``(types, uris, suites, options)`` of each line of a one-line sources.list."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, rest = (line.split(None, 1) + [""])[:2]
        options = ""
        if rest.startswith("["):
            options, _sep, rest = rest[1:].partition("]")
            rest = rest.strip()
        if rest.startswith("cdrom:"):
            # cdrom:[Label with spaces]/ is no URL to download from.
            yield [kind], ["cdrom:"], [], options
            continue
        words = rest.split()
        yield [kind], words[:1], words[1:2], options


def _deb822_entries(text):
    """``(types, uris, suites, enabled)`` of each stanza of a deb822 .sources file."""
    stanzas, fields, last = [], {}, None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += " " + line.strip()
        else:
            name, _sep, value = line.partition(":")
            last = name.strip().lower()
            fields[last] = value.strip()
    for fields in stanzas:
        yield (fields.get("types", "").split(), fields.get("uris", "").split(), fields.get("suites", "").split(),
               fields.get("enabled", "yes").lower() not in ("no", "false", "off", "0"))


def _apt_source_files(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            # apt reads only these two suffixes there, in the order of their names.
            files += sorted(glob.glob(os.path.join(glob.escape(path), "*.list"))
                            + glob.glob(os.path.join(glob.escape(path), "*.sources")))
        else:
            files.append(path)
    return files


def apt_mirrors(paths=APT_SOURCES, suite=None):
    """The http(s) mirrors of the apt sources in ``paths`` (files, or directories of ``.list``/``.sources`` files).

    Only ``deb`` and ``deb-src`` entries count, in apt's reading order, each URI once (without its trailing
    ``/``). The mirrors of an entry whose suites include a release (a suite with no ``-security``, ``-updates``
    or ``/updates`` suffix) are the answer; the others only when there is no such entry. With ``suite``, only
    entries listing that suite count. Left out on purpose: disabled stanzas (``Enabled: no``), ``cdrom:``
    entries, and every other scheme (``file:``, ``copy:``, ``mirror+http:``, ...): a ``file:`` archive has the
    pool layout, while a directory mirror here holds the files side by side, so list such a directory
    yourself. Raises SourceError naming every file read and what it held when no mirror is found.
    """
    release, other, notes = [], [], []
    for path in _apt_source_files(paths):
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            notes.append("%s: not there" % path)
            continue
        except (OSError, UnicodeError) as exc:
            notes.append("%s: cannot be read: %s" % (path, exc))
            continue
        if path.endswith(".sources"):
            entries = [(t, u, s) for t, u, s, enabled in _deb822_entries(text) if enabled]
        else:
            entries = [(t, u, s) for t, u, s, _options in _one_line_entries(text)]
        found = 0
        for types, uris, suites in entries:
            if not set(types) & {"deb", "deb-src"} or (suite is not None and suite not in suites):
                continue
            target = release if any(not s.endswith(_NOT_A_RELEASE) for s in suites) else other
            for uri in uris:
                if urlparse(uri).scheme in ("http", "https"):
                    found += 1
                    target.append(uri.rstrip("/"))
        notes.append("%s: %d http(s) mirror(s) in %d entries" % (path, found, len(entries)))
    mirrors = []
    for uri in release or other:
        if uri not in mirrors:
            mirrors.append(uri)
    if not mirrors:
        raise SourceError("no http(s) Debian mirror%s in the apt sources of this host"
                          % ("" if suite is None else " for %s" % suite), notes)
    return mirrors


def resolve_mirrors(mirrors, apt_paths=APT_SOURCES):
    """``mirrors`` with the entry ``apt`` replaced by :func:`apt_mirrors` of ``apt_paths``.

    An apt mirror that the list names itself keeps its own place.
    """
    if APT_MIRROR not in mirrors:
        return list(mirrors)
    listed = {m.rstrip("/") for m in mirrors if m != APT_MIRROR}
    out = []
    for mirror in mirrors:
        if mirror != APT_MIRROR:
            out.append(mirror)
        elif mirror not in out:
            out += [m for m in apt_mirrors(apt_paths) if m not in listed]
            out.append(mirror)
    return [m for m in out if m != APT_MIRROR]


def mirror_kind(mirror):
    if mirror == APT_MIRROR:
        return "apt"
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
        return ["mirrors: must be a non-empty list of URLs, absolute directories or %r, got %r" % (APT_MIRROR, mirrors)]
    return ["mirrors[%d]: %r is neither an http(s):// or file:// URL, an absolute directory nor %r" % (i, m, APT_MIRROR)
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
        state[name] = os.path.isfile(path) and fileio.sha256_file(path) == sha
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


def fetch(files, mirrors, cache_dir, download=None, check_mode=False, apt_paths=APT_SOURCES):
    """Fill the cache; returns ``{"cached": [...], "fetched": {file: mirror}}``.

    ``files`` is ``{file: sha256}`` or ``{file: {"sha256", "path"}}``; ``download(url, dest)`` fetches a URL into
    a file (the module passes one built on Ansible's ``fetch_url``).
    The entry ``apt`` of ``mirrors`` stands for the mirrors of the apt sources ``apt_paths``.
    Raises SourceError listing every file that could not be had.
    """
    problems = mirror_problems(mirrors)
    if problems:
        raise SourceError("bad mirror list", problems)
    mirrors = resolve_mirrors(mirrors, apt_paths)
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
                    actual = fileio.sha256_file(partial)
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
