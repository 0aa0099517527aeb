"""The collection's version is its newest changelog release, and it carries its license.

galaxy.yml says which version `ansible-galaxy collection build` makes; the
changelog (changelogs/changelog.yaml, written by antsibull-changelog) says
which releases exist. A build whose version has no release, or a release
that galaxy.yml was not moved to, ships notes that do not describe it.
galaxy.yml's license is GPL-3.0-or-later, so LICENSE must hold the GNU GPL
version 3.

Files are found from this file's place: the repository, the copy that
`make units` tests, or an installed collection (which has MANIFEST.json
instead of galaxy.yml).
"""

import json
import os

import pytest
import yaml
from ansible.utils.version import SemanticVersion

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GPL3_MARKERS = (
    "GNU GENERAL PUBLIC LICENSE",
    "Version 3, 29 June 2007",
    "TERMS AND CONDITIONS",
    "END OF TERMS AND CONDITIONS",
)


def collection_info(root):
    """Version and licenses from galaxy.yml, or from MANIFEST.json once built."""
    galaxy = os.path.join(root, "galaxy.yml")
    if os.path.exists(galaxy):
        with open(galaxy, encoding="utf-8") as handle:
            info = yaml.safe_load(handle)
    else:
        with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as handle:
            info = json.load(handle)["collection_info"]
    return str(info["version"]), list(info.get("license") or [])


def latest_release(root):
    """The highest version among the releases of changelogs/changelog.yaml, or None."""
    with open(os.path.join(root, "changelogs", "changelog.yaml"), encoding="utf-8") as handle:
        releases = (yaml.safe_load(handle) or {}).get("releases") or {}
    versions = [str(version) for version in releases]
    return max(versions, key=SemanticVersion) if versions else None


def release_problems(root):
    """Everything that makes the tree at ``root`` unfit to build as a release."""
    problems = []
    version, licenses = collection_info(root)
    latest = latest_release(root)
    if latest is None:
        problems.append("changelogs/changelog.yaml has no release; release %s with antsibull-changelog" % version)
    elif latest != version:
        problems.append("galaxy.yml's version %s is not the changelog's latest release %s" % (version, latest))
    license_file = os.path.join(root, "LICENSE")
    if not os.path.isfile(license_file):
        problems.append("LICENSE is missing (galaxy.yml's license is %s)" % ", ".join(licenses))
    else:
        with open(license_file, encoding="utf-8") as handle:
            text = handle.read()
        missing = [marker for marker in GPL3_MARKERS if marker not in text]
        if missing:
            problems.append("LICENSE is not the GNU GPL version 3 (lacks %s)" % ", ".join(repr(m) for m in missing))
    if not any(name.startswith("GPL-3.0") for name in licenses):
        problems.append("galaxy.yml's license %s is not the GPL version 3 that LICENSE holds" % licenses)
    return problems


def test_the_collection_is_its_latest_release_and_has_its_license():
    assert release_problems(ROOT) == []


def test_the_release_notes_have_the_release():
    version, dummy = collection_info(ROOT)
    with open(os.path.join(ROOT, "CHANGELOG.rst"), encoding="utf-8") as handle:
        headings = [line.strip() for line in handle]
    assert "v%s" % version in headings, "CHANGELOG.rst has no section v%s; run antsibull-changelog generate" % version


def _tree(tmp_path, version, releases, license_text=None, licenses=("GPL-3.0-or-later",)):
    (tmp_path / "changelogs").mkdir()
    (tmp_path / "galaxy.yml").write_text(yaml.safe_dump({"version": version, "license": list(licenses)}))
    (tmp_path / "changelogs" / "changelog.yaml").write_text(
        yaml.safe_dump({"ancestor": None, "releases": {v: {"release_date": "2026-01-01"} for v in releases}}))
    if license_text is not None:
        (tmp_path / "LICENSE").write_text(license_text)
    return str(tmp_path)


GPL3_TEXT = "\n".join(GPL3_MARKERS)


@pytest.mark.parametrize("version, releases, license_text, licenses, expected", [
    ("0.4.0", ["0.3.0", "0.4.0"], GPL3_TEXT, ("GPL-3.0-or-later",), []),
    # 0.10.0 is newer than 0.9.0, not older as the strings sort.
    ("0.10.0", ["0.9.0", "0.10.0"], GPL3_TEXT, ("GPL-3.0-or-later",), []),
    ("0.5.0", ["0.3.0", "0.4.0"], GPL3_TEXT, ("GPL-3.0-or-later",), ["version 0.5.0 is not the changelog's latest release 0.4.0"]),
    ("0.3.0", ["0.3.0", "0.4.0"], GPL3_TEXT, ("GPL-3.0-or-later",), ["version 0.3.0 is not the changelog's latest release 0.4.0"]),
    ("0.4.0", [], GPL3_TEXT, ("GPL-3.0-or-later",), ["has no release"]),
    ("0.4.0", ["0.4.0"], None, ("GPL-3.0-or-later",), ["LICENSE is missing"]),
    ("0.4.0", ["0.4.0"], "MIT License\n", ("GPL-3.0-or-later",), ["LICENSE is not the GNU GPL version 3"]),
    ("0.4.0", ["0.4.0"], GPL3_TEXT, ("MIT",), ["is not the GPL version 3"]),
])
def test_release_problems_are_found(tmp_path, version, releases, license_text, licenses, expected):
    problems = release_problems(_tree(tmp_path, version, releases, license_text, licenses))
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected):
        assert fragment in problem


def test_an_installed_collection_reads_its_manifest(tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps(
        {"collection_info": {"version": "0.4.0", "license": ["GPL-3.0-or-later"]}}))
    assert collection_info(str(tmp_path)) == ("0.4.0", ["GPL-3.0-or-later"])
