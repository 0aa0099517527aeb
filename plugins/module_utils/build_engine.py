# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builds from source driven by recipes: validation, stamps, one package at a time.

A profile is data (the roles read it from YAML): a name, the build context
(environment and directories) and an ordered list of packages. Each package
is a recipe:

* ``name``, ``version``, ``stage`` (the LFS stage it belongs to) and ``sbu``
  (the book's estimate, in SBU);
* ``sources``: files with their sha256 (the first is unpacked, the others
  are available in ``$ORION_SOURCES``), ``patches`` (applied with
  ``patch -p1`` in order, each with its sha256);
* ``steps``: shell snippets run in order (``prepare``, ``configure``,
  ``build``, ``check``, ``install``, ``finish``), each by ``bash`` with
  errexit, nounset and pipefail, in the unpacked source tree, as the build
  user, in a clean environment;
* ``depends``: the packages whose results it builds with. When omitted, it
  depends on every package before it (the LFS chain, where each package is
  built with the tools the previous ones installed);
* ``chroot``: true to build inside the new system (LFS chapters 7 and 8):
  the root is the context variable the profile's ``chroot_root`` names, the
  source tree and the sources are put under ``/orion-build`` in it, the kernel's
  virtual file systems are mounted for the package and unmounted after it
  whatever happens, and the steps run there as root with only ``PATH``,
  ``HOME``, ``TERM``, the inputs and the recipe's own env. The build's input
  files (the context's ``ORION_FILES``) are there too, read-only, at
  ``/orion-build/files`` (``$ORION_FILES`` in the steps);
* ``root``: true to run the steps on the host as root rather than as the build
  user, for a step that must read or keep the owners of a root-owned tree (the
  image of a system built in the chroot).

Every package has a key: the sha256 of its recipe, the profile's build
context, and the keys of what it depends on. A package is built only when
its stamp (``<build>/stamps/<name>.json``) is missing or holds another key;
so changing one recipe rebuilds that package and the packages that depend
on it, nothing else. The stamp is written (atomically) only after the last
step succeeded: a build killed at any point leaves no stamp for the package
that was running, and the next run builds it again from a fresh tree.
A lock file keeps two builds out of one build directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import string
import subprocess
import time

from ansible_collections.orionos.diskless.plugins.module_utils import fileio

FORMAT = 1
STEP_NAMES = ("prepare", "configure", "build", "check", "install", "finish")
STAGES = ("sources", "toolchain", "temporary", "system", "kernel", "initramfs", "image")
PACKAGE_KEYS = ("name", "version", "stage", "sbu", "sources", "patches", "steps", "depends",
                "env", "unpack", "description", "provides", "chroot", "root")
FILE_KEYS = ("file", "sha256", "path")
PROFILE_KEYS = ("profile", "description", "env", "sbu_reference", "packages", "mirrors", "host_tools",
                "host_packages", "disk_mb", "chroot_root", "include")
LOG_TAIL_LINES = 25

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+._-]{0,63}\Z")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._~-]{0,63}\Z")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._~-]{0,199}\Z")
_SHA_RE = re.compile(r"^[0-9a-f]{64}\Z")
_PATH_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9+._~-]*(?:/[A-Za-z0-9][A-Za-z0-9+._~-]*)*/?)?\Z")
_ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}\Z")
# The environment a step starts from; everything else of the caller's is dropped.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            "LC_ALL": "POSIX", "TERM": "dumb"}
# Inside the chroot (the book's chapter 7.4 environment).
CHROOT_ENV = {"HOME": "/root", "PATH": "/usr/bin:/usr/sbin", "LC_ALL": "POSIX", "TERM": "dumb"}
# Where a chroot package's tree and sources go, inside the chroot.
CHROOT_DIR = "/orion-build"


class BuildError(Exception):
    """A build that cannot start (``problems``) or a package that failed."""

    def __init__(self, msg, problems=None, package=None, log=None, log_tail=None):
        super().__init__(msg)
        self.problems = problems or []
        self.package = package
        self.log = log
        self.log_tail = log_tail or []


def _canonical(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _files_problems(where, value, field):
    problems = []
    if value is None:
        return problems
    if not isinstance(value, list):
        return ["%s: %s must be a list of {file, sha256}, got %r" % (where, field, value)]
    for i, entry in enumerate(value):
        at = "%s: %s[%d]" % (where, field, i)
        if not isinstance(entry, dict):
            problems.append("%s must be a mapping with file and sha256, got %r" % (at, entry))
            continue
        for key in sorted(set(entry) - set(FILE_KEYS)):
            problems.append("%s: unknown field %r" % (at, key))
        name = entry.get("file")
        if not isinstance(name, str) or not _FILE_RE.match(name):
            problems.append("%s.file: %r is not a plain file name" % (at, name))
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            problems.append("%s.sha256: %r is not 64 lower-case hex digits" % (at, sha))
        path = entry.get("path", "")
        if not isinstance(path, str) or not _PATH_RE.match(path):
            problems.append("%s.path: %r is not a relative path of plain names" % (at, path))
    return problems


def env_problems(where, env):
    if env is None:
        return []
    if not isinstance(env, dict):
        return ["%s: env must be a mapping of NAME: value, got %r" % (where, env)]
    problems = []
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_RE.match(key):
            problems.append("%s: env name %r is not an upper-case variable name" % (where, key))
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or "\n" in str(value):
            problems.append("%s: env %s: %r is not a one-line string or number" % (where, key, value))
    return problems


def validate_package(pkg, index, earlier):
    """Problems of one recipe; ``earlier`` are the names of the packages before it."""
    where = "packages[%d]" % index
    if not isinstance(pkg, dict):
        return ["%s: a recipe must be a mapping, got %r" % (where, pkg)]
    name = pkg.get("name")
    if isinstance(name, str) and _NAME_RE.match(name):
        where = "package %s" % name
    else:
        return ["%s.name: %r is not a package name (lower-case letters, digits, + . _ -)" % (where, name)]
    problems = ["%s: unknown field %r" % (where, key) for key in sorted(set(pkg) - set(PACKAGE_KEYS))]
    version = pkg.get("version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        problems.append("%s: version %r is not a version string" % (where, version))
    if pkg.get("stage") not in STAGES:
        problems.append("%s: stage %r is not one of %s" % (where, pkg.get("stage"), ", ".join(STAGES)))
    sbu = pkg.get("sbu")
    if isinstance(sbu, bool) or not isinstance(sbu, (int, float)) or sbu < 0 or sbu > 1000:
        problems.append("%s: sbu %r is not a number from 0 to 1000" % (where, sbu))
    problems += _files_problems(where, pkg.get("sources"), "sources")
    problems += _files_problems(where, pkg.get("patches"), "patches")
    if pkg.get("patches") and not pkg.get("sources"):
        problems.append("%s: patches need a source to apply to" % where)
    steps = pkg.get("steps")
    if not isinstance(steps, dict) or not steps:
        problems.append("%s: steps must be a mapping of %s to shell text" % (where, ", ".join(STEP_NAMES)))
    else:
        for key, text in steps.items():
            if key not in STEP_NAMES:
                problems.append("%s: unknown step %r (steps are %s)" % (where, key, ", ".join(STEP_NAMES)))
            elif not isinstance(text, str) or not text.strip():
                problems.append("%s: step %s must be non-empty shell text" % (where, key))
    depends = pkg.get("depends")
    if depends is not None:
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            problems.append("%s: depends must be a list of package names, got %r" % (where, depends))
        else:
            for dep in depends:
                if dep not in earlier:
                    problems.append("%s: depends on %r, which is not a package before it" % (where, dep))
    for flag in ("unpack", "chroot", "root"):
        if not isinstance(pkg.get(flag, flag == "unpack"), bool):
            problems.append("%s: %s must be true or false, got %r" % (where, flag, pkg.get(flag)))
    if pkg.get("root") is True and pkg.get("chroot") is True:
        problems.append("%s: root is for steps on the host; a chroot package runs as root already" % where)
    problems += env_problems(where, pkg.get("env"))
    return problems


def validate_profile(profile):
    """Every problem of a profile, each naming the package and the field; [] when sound."""
    if not isinstance(profile, dict):
        return ["profile: must be a mapping, got %r" % (profile,)]
    problems = ["profile: unknown field %r" % key for key in sorted(set(profile) - set(PROFILE_KEYS))]
    if "include" in profile:
        problems.append("profile: include %r is not resolved (the lfs_sources role adds the packages of the files it names)"
                        % (profile["include"],))
    if not isinstance(profile.get("profile"), str) or not _NAME_RE.match(profile.get("profile") or ""):
        problems.append("profile: name %r is not a profile name" % (profile.get("profile"),))
    problems += env_problems("profile", profile.get("env"))
    packages = profile.get("packages")
    if not isinstance(packages, list) or not packages:
        return problems + ["profile: packages must be a non-empty list of recipes"]
    seen = []
    for i, pkg in enumerate(packages):
        problems += validate_package(pkg, i, seen)
        name = pkg.get("name") if isinstance(pkg, dict) else None
        if name in seen:
            problems.append("package %s: the name is used twice" % name)
        seen.append(name)
    root = profile.get("chroot_root")
    if root is not None and not (isinstance(root, str) and _ENV_RE.match(root)):
        problems.append("profile: chroot_root %r is not a variable name" % (root,))
    for pkg in packages:
        if isinstance(pkg, dict) and pkg.get("chroot") is True and root is None:
            problems.append("package %s: chroot needs the profile's chroot_root (the variable holding the root)"
                            % pkg.get("name"))
    ref = profile.get("sbu_reference")
    if ref is not None and ref not in seen:
        problems.append("profile: sbu_reference %r is not a package of the profile" % (ref,))
    return problems


def source_files(profile, packages=None):
    """Every source and patch file of the profile (or of the named packages):
    ``{file: {"sha256": ..., "path": ...}}``.

    A file named twice with two different sha256 is a problem of the recipes.
    """
    files, problems = {}, []
    for pkg in profile["packages"]:
        if packages is not None and pkg["name"] not in packages:
            continue
        for entry in (pkg.get("sources") or []) + (pkg.get("patches") or []):
            have = files.setdefault(entry["file"], {"sha256": entry["sha256"], "path": entry.get("path", "")})
            if have["sha256"] != entry["sha256"]:
                problems.append("package %s: %s has sha256 %s here and %s in another recipe"
                                % (pkg["name"], entry["file"], entry["sha256"], have["sha256"]))
    if problems:
        raise BuildError("the recipes disagree on a source", problems=problems)
    return files


def dependencies(profile):
    """{name: [names it depends on]}: its ``depends``, or every package before it."""
    deps, before = {}, []
    for pkg in profile["packages"]:
        deps[pkg["name"]] = list(pkg["depends"]) if pkg.get("depends") is not None else list(before)
        before.append(pkg["name"])
    return deps


def closure(profile, names):
    """``names`` and every package they depend on, directly or not, in profile order."""
    deps = dependencies(profile)
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(deps.get(name, []))
    return [pkg["name"] for pkg in profile["packages"] if pkg["name"] in wanted]


def package_keys(profile, context=None, inputs=None):
    """{name: key}. The key covers the recipe (not its description or SBU estimate),
    the profile's env and the build context, the package's own ``inputs`` (values
    a role gives one package, such as the hash of the kernel fragments), and the
    keys of its dependencies."""
    deps = dependencies(profile)
    base = {"format": FORMAT, "profile_env": profile.get("env") or {}, "context": context or {}}
    keys = {}
    for pkg in profile["packages"]:
        recipe = {k: v for k, v in pkg.items() if k not in ("description", "sbu")}
        own = (inputs or {}).get(pkg["name"]) or {}
        keys[pkg["name"]] = hashlib.sha256(_canonical({
            "base": base, "recipe": recipe, "inputs": own,
            "deps": {name: keys[name] for name in deps[pkg["name"]]},
        }).encode()).hexdigest()
    return keys


def stamp_path(build_dir, name):
    return os.path.join(build_dir, "stamps", name + ".json")


def read_stamp(build_dir, name):
    try:
        with open(stamp_path(build_dir, name)) as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _write_json_atomic(path, data):
    fileio.atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o644, dir_mode=0o777)


def plan(profile, build_dir, context=None, only=None, inputs=None):
    """The packages in order with ``key``, ``state`` (built or pending) and their stamp."""
    keys = package_keys(profile, context, inputs)
    rows = []
    for index, pkg in enumerate(profile["packages"]):
        if only is not None and pkg["name"] not in only:
            continue
        stamp = read_stamp(build_dir, pkg["name"])
        built = bool(stamp) and stamp.get("key") == keys[pkg["name"]]
        rows.append({"index": index, "name": pkg["name"], "version": pkg["version"],
                     "stage": pkg["stage"], "sbu": pkg["sbu"], "key": keys[pkg["name"]],
                     "state": "built" if built else "pending", "stamp": stamp if built else None})
    return rows


def find_package(profile, name):
    for pkg in profile["packages"]:
        if pkg["name"] == name:
            return pkg
    raise BuildError("package %s: not in profile %s" % (name, profile.get("profile")),
                     problems=["package: %r is not in the profile" % name])


class BuildLock:
    """An exclusive lock on a build directory (fails at once when another build holds it)."""

    def __init__(self, build_dir):
        self.path = os.path.join(build_dir, ".lock")
        self.handle = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "unknown"
            self.handle.close()
            raise BuildError("another build holds %s (pid %s); wait for it or stop it" % (self.path, holder),
                             problems=["build_dir: %s is in use by pid %s" % (os.path.dirname(self.path), holder)])
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write("%d\n" % os.getpid())
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        self.handle.close()
        return False


def step_environment(profile, pkg, context, src_dir, inputs=None, key=""):
    """The whole environment of a step: a clean base, the context, the package's
    inputs, the profile's and the recipe's env. A value of the profile's or the
    recipe's env may refer to a variable set before it as ``${NAME}``
    (``PATH: ${LFS}/tools/bin:/usr/bin``). The step also learns the profile's
    name, the package's name, version and key, and its source tree
    (``ORION_PROFILE``, ``ORION_PACKAGE``, ``ORION_VERSION``, ``ORION_KEY``,
    ``ORION_SRC``)."""
    env = dict(BASE_ENV)
    for name, value in list((context or {}).items()) + list(((inputs or {}).get(pkg["name"]) or {}).items()):
        env[name] = str(value)
    for name, value in list((profile.get("env") or {}).items()) + list((pkg.get("env") or {}).items()):
        env[name] = string.Template(str(value)).safe_substitute(env)
    env["ORION_PROFILE"] = profile.get("profile", "")
    env["ORION_PACKAGE"] = pkg["name"]
    env["ORION_VERSION"] = pkg["version"]
    env["ORION_KEY"] = key
    env["ORION_SRC"] = src_dir
    return env


def chroot_environment(pkg, src_dir, inputs=None, key="", profile_name=""):
    """The environment of a step inside the chroot: the book's clean one, the
    package's inputs, the recipe's env (not the profile's, which is the host's
    cross build) and what the step should know of itself."""
    env = dict(CHROOT_ENV)
    for name, value in ((inputs or {}).get(pkg["name"]) or {}).items():
        env[name] = str(value)
    for name, value in (pkg.get("env") or {}).items():
        env[name] = string.Template(str(value)).safe_substitute(env)
    env.update(ORION_PROFILE=profile_name, ORION_PACKAGE=pkg["name"], ORION_VERSION=pkg["version"], ORION_KEY=key,
               ORION_SRC=src_dir, ORION_SOURCES=CHROOT_DIR + "/sources", ORION_FILES=CHROOT_DIR + "/files")
    return env


def _unescape_mount(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mounts_under(root):
    """The mount points strictly below ``root``, in the order they were mounted."""
    root = os.path.realpath(root).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = _unescape_mount(line.split()[4])
            if point.startswith(root + "/"):
                found.append(point)
    return found


# The book's chapter 7.3: /dev and /dev/pts from the host, proc, sysfs, a tmpfs
# on /run and on /dev/shm. Each bind is made private at once, so nothing
# mounted below it inside the chroot shows up in the host's /dev.
CHROOT_MOUNTS = (
    ("dev", ["--bind", "/dev"], True),
    ("dev/pts", ["--bind", "/dev/pts"], True),
    ("proc", ["-t", "proc", "proc"], False),
    ("sys", ["-t", "sysfs", "sysfs"], False),
    ("run", ["-t", "tmpfs", "tmpfs"], False),
    ("dev/shm", ["-t", "tmpfs", "-o", "nosuid,nodev", "tmpfs"], False),
)


def chroot_unmount(root):
    """Unmount everything below ``root``, deepest first (lazily when busy);
    returns the mount points that were there."""
    points = mounts_under(root)
    for point in sorted(points, key=lambda p: (p.count("/"), points.index(p)), reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = mounts_under(root)
    if left:
        raise BuildError("cannot unmount %s" % ", ".join(left), problems=["chroot: %s still mounted" % p for p in left])
    return points


def chroot_mount(root):
    """Mount the virtual file systems into ``root`` (those not mounted yet)."""
    root = os.path.realpath(root)
    for sub_dir, args, private in CHROOT_MOUNTS:
        target = os.path.join(root, sub_dir)
        if os.path.islink(target):
            # The book: a /dev/shm that is a link gets the directory it points to.
            os.makedirs(os.path.join(root, os.readlink(target).lstrip("/")), exist_ok=True)
            continue
        if target in mounts_under(root):
            continue
        os.makedirs(target, exist_ok=True)
        proc = subprocess.run(["mount"] + args + [target], capture_output=True, text=True, check=False)
        if proc.returncode:
            chroot_unmount(root)
            raise BuildError("cannot mount %s: %s" % (target, proc.stderr.strip()),
                             problems=["chroot: mount of %s failed" % target])
        if private:
            subprocess.run(["mount", "--make-private", target], capture_output=True, check=False)


def chroot_bind_files(root, files):
    """The build's input files, read-only, at /orion-build/files in ``root``."""
    target = os.path.join(os.path.realpath(root), CHROOT_DIR.lstrip("/"), "files")
    if not files or not os.path.isdir(files) or target in mounts_under(root):
        return
    os.makedirs(target, exist_ok=True)
    for args in (["--bind", files, target], ["-o", "remount,bind,ro", target], ["--make-private", target]):
        proc = subprocess.run(["mount"] + args, capture_output=True, text=True, check=False)
        if proc.returncode:
            chroot_unmount(root)
            raise BuildError("cannot mount %s read-only on %s: %s" % (files, target, proc.stderr.strip()),
                             problems=["chroot: mount of %s failed" % target])


class ChrootMounts:
    """The virtual file systems of a chroot (and the build's input files) for
    the time of one package, unmounted when it ends, whether it succeeded,
    failed or was interrupted."""

    def __init__(self, root, files=None):
        self.root = root
        self.files = files

    def __enter__(self):
        chroot_mount(self.root)
        chroot_bind_files(self.root, self.files)
        return self

    def __exit__(self, *exc):
        chroot_unmount(self.root)
        return False


class _NoMounts:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _copy_sources(pkg, sources_dir, dest):
    """The package's sources and patches where the chroot sees them (a hard link when possible)."""
    os.makedirs(dest, exist_ok=True)
    for entry in (pkg.get("sources") or []) + (pkg.get("patches") or []):
        target = os.path.join(dest, entry["file"])
        if os.path.exists(target):
            if fileio.sha256_file(target) == entry["sha256"]:
                continue
            os.unlink(target)
        try:
            os.link(os.path.join(sources_dir, entry["file"]), target)
        except OSError:
            shutil.copyfile(os.path.join(sources_dir, entry["file"]), target)


def tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _user_ids(user):
    if user is None:
        return None
    import pwd  # noqa: E402  (only where a build user is asked for)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise BuildError("build user %s does not exist" % user, problems=["user: %r is not a user" % user])
    return entry.pw_uid, entry.pw_gid, entry.pw_dir


def _preexec(ids):
    """umask 022 as the book sets it, and the build user's ids when there is one."""
    def start():
        os.umask(0o022)
        if ids:
            os.setgid(ids[1])
            os.setgroups([ids[1]])
            os.setuid(ids[0])
    return start


def _chown_tree(path, ids):
    if ids is None:
        return
    for parent, dirs, files in os.walk(path):
        os.lchown(parent, ids[0], ids[1])
        for name in dirs + files:
            os.lchown(os.path.join(parent, name), ids[0], ids[1])


def _unpack(archive, dest):
    """Unpack a tarball into ``dest``, dropping its single top directory when it has one."""
    os.makedirs(dest)
    subprocess.run(["tar", "-xf", archive, "-C", dest, "--no-same-owner"], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    entries = os.listdir(dest)
    if len(entries) == 1 and os.path.isdir(os.path.join(dest, entries[0])):
        inner = os.path.join(dest, entries[0])
        for name in os.listdir(inner):
            os.rename(os.path.join(inner, name), os.path.join(dest, name))
        os.rmdir(inner)


def _run_step(log, text, cwd, env, ids, chroot=None):
    # No command hashing (set +h), as the book's build environment: a tool
    # installed by an earlier step is found at once.
    script = "set +h -o errexit -o nounset -o pipefail\n" + text
    log.write(("\n==== %s\n" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())).encode())
    log.flush()
    if chroot:
        # The chroot's own bash, in the package's tree as the chroot sees it.
        args = ["chroot", chroot, "/bin/bash", "-c", 'cd "$ORION_SRC"\n' + script]
        cwd = "/"
    else:
        args = ["/bin/bash", "-c", script]
    proc = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=log, stderr=subprocess.STDOUT,
                          preexec_fn=_preexec(ids), check=False)
    return proc.returncode


def children_cpu_seconds():
    """User and system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_package(profile, name, build_dir, sources_dir, context=None, user=None, keep_work=False,
                  jobs=1, inputs=None, now=time.time, cpu=children_cpu_seconds):
    """Build one package unless its stamp is current; returns what happened.

    ``{"name", "version", "changed", "key", "seconds", "cpu_seconds", "log"}``:
    ``seconds`` is the wall clock, ``cpu_seconds`` the CPU time of every
    process of the build, which another load on the host barely changes. On a failing
    step raises BuildError with the package, its log and the log's last lines;
    earlier stamps are untouched and this package has none.
    """
    pkg = find_package(profile, name)
    keys = package_keys(profile, context, inputs)
    key = keys[name]
    log_path = os.path.join(build_dir, "logs", name + ".log")
    stamp = read_stamp(build_dir, name)
    result = {"name": name, "version": pkg["version"], "key": key, "log": log_path}
    if stamp and stamp.get("key") == key:
        result.update(changed=False, seconds=stamp.get("seconds"), stamp=stamp)
        return result
    missing = [dep for dep in dependencies(profile)[name]
               if (read_stamp(build_dir, dep) or {}).get("key") != keys[dep]]
    if missing:
        raise BuildError("package %s: %s not built yet (build the profile in order)" % (name, ", ".join(missing)),
                         problems=["package %s: depends on %s, not built" % (name, ", ".join(missing))],
                         package=name)
    chroot = None
    if pkg.get("chroot"):
        chroot = (context or {}).get(profile.get("chroot_root") or "")
        if not chroot or not os.path.isfile(os.path.join(chroot, "bin", "bash")):
            raise BuildError("package %s: the chroot %s (%s) has no /bin/bash yet"
                             % (name, chroot, profile.get("chroot_root")),
                             problems=["package %s: chroot %s not ready" % (name, chroot)], package=name)
    ids = None if chroot or pkg.get("root") else _user_ids(user)
    with BuildLock(build_dir):
        # An old stamp with another key goes first: nothing may look built while it is rebuilt.
        if os.path.exists(stamp_path(build_dir, name)):
            os.unlink(stamp_path(build_dir, name))
        if chroot:
            work = os.path.join(chroot, CHROOT_DIR.lstrip("/"), "work", name)
        else:
            work = os.path.join(build_dir, "work", name)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        start = now()
        cpu_start = cpu()
        with open(log_path, "wb") as log:
            log.write(("# %s %s, key %s\n" % (name, pkg["version"], key)).encode())
            for entry in (pkg.get("sources") or []) + (pkg.get("patches") or []):
                path = os.path.join(sources_dir, entry["file"])
                if not os.path.isfile(path):
                    raise BuildError("package %s: source %s is missing from %s" % (name, entry["file"], sources_dir),
                                     problems=["package %s: source %s missing" % (name, entry["file"])],
                                     package=name, log=log_path)
                actual = fileio.sha256_file(path)
                if actual != entry["sha256"]:
                    raise BuildError("package %s: %s has sha256 %s, the recipe says %s"
                                     % (name, entry["file"], actual, entry["sha256"]),
                                     problems=["package %s: %s sha256 mismatch" % (name, entry["file"])],
                                     package=name, log=log_path)
            sources = pkg.get("sources") or []
            if sources and pkg.get("unpack", True):
                _unpack(os.path.join(sources_dir, sources[0]["file"]), work)
            else:
                os.makedirs(work)
            for patch in pkg.get("patches") or []:
                log.write(("==== patch %s\n" % patch["file"]).encode())
                log.flush()
                code = subprocess.run(["patch", "-p1", "-N", "-i", os.path.join(sources_dir, patch["file"])],
                                      cwd=work, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
                if code:
                    raise BuildError("package %s: patch %s does not apply" % (name, patch["file"]),
                                     package=name, log=log_path, log_tail=tail(log_path))
            _chown_tree(work, ids)
            if chroot:
                _copy_sources(pkg, sources_dir, os.path.join(chroot, CHROOT_DIR.lstrip("/"), "sources"))
                env = chroot_environment(pkg, "%s/work/%s" % (CHROOT_DIR, name), inputs, key,
                                         profile.get("profile", ""))
            else:
                env = step_environment(profile, pkg, dict(context or {}, ORION_SOURCES=sources_dir), work, inputs,
                                       key=key)
            env.setdefault("MAKEFLAGS", "-j%d" % jobs)
            if ids:
                env["HOME"] = ids[2]
            with (ChrootMounts(chroot, (context or {}).get("ORION_FILES")) if chroot else _NoMounts()):
                for step in STEP_NAMES:
                    text = (pkg.get("steps") or {}).get(step)
                    if not text:
                        continue
                    log.write(("==== step %s\n" % step).encode())
                    code = _run_step(log, text, work, env, ids, chroot=chroot)
                    if code:
                        log.write(("==== step %s failed with exit code %d\n" % (step, code)).encode())
                        log.flush()
                        raise BuildError("package %s %s: step %s failed with exit code %d (log %s)"
                                         % (name, pkg["version"], step, code, log_path),
                                         package=name, log=log_path, log_tail=tail(log_path))
            seconds = round(now() - start, 1)
            cpu_seconds = round(cpu() - cpu_start, 1)
            log.write(("==== done in %.1f s, %.1f s of CPU\n" % (seconds, cpu_seconds)).encode())
        stamp = {"format": FORMAT, "name": name, "version": pkg["version"], "key": key,
                 "stage": pkg["stage"], "sbu_estimate": pkg["sbu"], "seconds": seconds, "cpu_seconds": cpu_seconds,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now()))}
        _write_json_atomic(stamp_path(build_dir, name), stamp)
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    result.update(changed=True, seconds=seconds, cpu_seconds=cpu_seconds, stamp=stamp)
    return result


def sbu_seconds(build_dir, field="seconds"):
    """Seconds of 1 SBU measured on this host: ``<build>/sbu.json``, or the one
    of the directory above it (shared by every profile built there), or None.
    ``field`` is ``seconds`` (wall clock) or ``cpu_seconds``."""
    for directory in (build_dir, os.path.dirname(os.path.normpath(build_dir))):
        try:
            with open(os.path.join(directory, "sbu.json")) as handle:
                value = json.load(handle).get(field)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return value
    return None


def record_sbu(build_dir, reference, seconds, cpu_seconds=None):
    """Record 1 SBU (wall clock and CPU) for this build area and for the directory above it."""
    data = {"reference": reference, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for directory in (build_dir, os.path.dirname(os.path.normpath(build_dir))):
        _write_json_atomic(os.path.join(directory, "sbu.json"), data)


def report(profile, build_dir, context=None, inputs=None):
    """The SBU table of a profile's packages from their stamps."""
    unit, cpu_unit = sbu_seconds(build_dir), sbu_seconds(build_dir, "cpu_seconds")
    rows, total, cpu_total = [], 0.0, 0.0
    for row in plan(profile, build_dir, context, inputs=inputs):
        seconds = row["stamp"]["seconds"] if row["stamp"] else None
        cpu = row["stamp"].get("cpu_seconds") if row["stamp"] else None
        total += seconds or 0.0
        cpu_total += cpu or 0.0
        rows.append({"name": row["name"], "version": row["version"], "stage": row["stage"],
                     "state": row["state"], "seconds": seconds, "sbu_estimate": row["sbu"],
                     "sbu": round(seconds / unit, 2) if unit and seconds is not None else None,
                     "cpu_seconds": cpu,
                     "cpu_sbu": round(cpu / cpu_unit, 2) if cpu_unit and cpu is not None else None})
    return {"profile": profile["profile"], "sbu_seconds": unit, "total_seconds": round(total, 1),
            "total_sbu": round(total / unit, 2) if unit else None,
            "sbu_cpu_seconds": cpu_unit, "total_cpu_seconds": round(cpu_total, 1),
            "total_cpu_sbu": round(cpu_total / cpu_unit, 2) if cpu_unit else None, "packages": rows}
