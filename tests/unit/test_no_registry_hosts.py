"""No file of the collection names a package registry's host.

The build takes its sources from the site's Debian mirror (the build host's
apt sources, or the mirrors the inventory lists), the rig from the machine's
apt sources, and the docs say "your Debian mirror": a public registry's host
written into a file would be a default that a site without internet, or with
its own mirror, cannot use.

The files checked are git's (tracked, plus new files git does not ignore),
in whichever tree this file is: the repository, or the copy `make units` and
`make sanity` test (a git repository too). Outside git, the tree is walked.
The host names below are written with escaped dots, so that this file does
not name them itself.
"""

import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REGISTRY_HOST = re.compile(
    r"(?<![\w.-])(?:[\w-]+\.)*(?:"
    r"debian\.(?:org|net)"                     # deb., security., ftp.<cc>., snapshot., ... of Debian
    r"|(?:archive|security|ports)\.ubuntu\.com"
    r"|pypi\.(?:org|io|python\.org)|pythonhosted\.org"
    r"|npmjs\.(?:org|com)|yarnpkg\.com"
    r"|docker\.io|docker\.com|quay\.io|ghcr\.io|gcr\.io|pkg\.dev"
    r"|galaxy\.ansible\.com"
    r"|crates\.io|rubygems\.org|proxy\.golang\.org|repo1?\.maven\.org|cpan\.org|packagist\.org"
    r")(?![\w-]|\.[\w-])",
    re.IGNORECASE)

# Not text to read: build output and the virtual environment (outside git's list anyway).
SKIP_DIRS = {".git", ".venv", "build", "collections", "__pycache__", ".pytest_cache"}


def tree_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for top, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            names += [os.path.relpath(os.path.join(top, f), ROOT) for f in files]
    for name in sorted(names):
        path = os.path.join(ROOT, name)
        if os.path.isfile(path) and not os.path.islink(path):
            yield name, path


def hosts_in(text):
    return sorted({m.group(0).lower() for m in REGISTRY_HOST.finditer(text)})


def test_the_pattern_catches_the_registry_hosts_and_leaves_others_alone():
    def host(*labels):
        return ".".join(labels)

    caught = [host("deb", "debian", "org"), host("security", "debian", "org"), host("ftp", "de", "debian", "org"),
              host("snapshot", "debian", "org"), host("archive", "ubuntu", "com"), host("pypi", "org"),
              host("files", "pythonhosted", "org"), host("registry", "npmjs", "org"), host("docker", "io"),
              host("registry-1", "docker", "io"), host("quay", "io"), host("ghcr", "io"),
              host("galaxy", "ansible", "com")]
    for name in caught:
        assert hosts_in("mirror: https://%s/debian" % name) == [name], name
        assert hosts_in("see %s." % name.upper()) == [name], name
    for text in ("http://mirror.example.org/debian", "your Debian mirror", "from PyPI", "https://www.gnu.org/licenses",
                 "a debian.org.example.invalid mirror", "notdocker.iox", "http://10.231.1.2/boot"):
        assert hosts_in(text) == [], text


def test_no_tracked_file_names_a_package_registry_host():
    found = []
    checked = 0
    for name, path in tree_files():
        with open(path, "rb") as handle:
            data = handle.read()
        if b"\0" in data[:8192]:
            continue
        checked += 1
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            hosts = hosts_in(line)
            if hosts:
                found.append("%s:%d: %s" % (name, lineno, ", ".join(hosts)))
    assert checked > 50, "only %d files found under %s" % (checked, ROOT)
    assert not found, "package registry hosts (name your Debian mirror, or read it from apt):\n" + "\n".join(found)
