"""The LFS machinery on real sources: chapter 5.2, binutils pass 1 (the SBU
reference), built from Debian's verified tarball as the unprivileged build
user, through the same roles and module as every other package."""

import json
import os
import subprocess

from conftest import BUILD_DIR, run_build, stamp

AREA = os.path.join(BUILD_DIR, "lfs")


ONLY = ["-e", "orion_build_profile=lfs", "-e", '{"orion_build_only": ["binutils-pass1"]}']


def test_binutils_pass1_builds_and_measures_the_sbu(mirror):
    res = run_build(*ONLY)
    assert res.returncode == 0, res.stdout[-5000:]
    binutils = stamp("binutils-pass1", area=AREA)
    print("\nbinutils pass 1 (1 SBU on this machine): %.1f s" % binutils["seconds"])
    ld = os.path.join(AREA, "lfs", "tools", "bin", "x86_64-lfs-linux-gnu-ld")
    version = subprocess.run([ld, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("GNU ld (GNU Binutils) 2.40"), version
    # Built as the unprivileged user, not root.
    assert os.stat(ld).st_uid != 0
    # The measured SBU is recorded for this area and for every profile built beside it.
    for directory in (AREA, BUILD_DIR):
        with open(os.path.join(directory, "sbu.json")) as handle:
            assert json.load(handle)["seconds"] == binutils["seconds"]
    # Only binutils and the layout before it were built, and only their sources fetched.
    assert sorted(os.listdir(os.path.join(AREA, "stamps"))) == ["binutils-pass1.json", "lfs-layout.json"]
    assert not os.path.exists(os.path.join(BUILD_DIR, "..", "cache", "gcc-12_12.2.0.orig.tar.gz"))
    # A second run builds nothing.
    again = run_build(*ONLY)
    assert again.returncode == 0 and "binutils-pass1-2.40 built" not in again.stdout, again.stdout[-3000:]


def test_the_lfs_profile_with_its_node_packages_passes_every_check(mirror):
    """The whole profile, the kernel, initramfs and image packages of
    recipes/include/node.yml added, is planned and checked (recipes, kernel
    and image settings, host tools, free space) without building anything."""
    stamps = os.path.join(AREA, "stamps")
    before = sorted(os.listdir(stamps)) if os.path.isdir(stamps) else []
    res = run_build("-e", "orion_build_profile=lfs", "-e", "orion_validate_only=true")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "(item=node.yml)" in res.stdout, res.stdout[-3000:]
    assert "has no package" not in res.stdout
    assert (sorted(os.listdir(stamps)) if os.path.isdir(stamps) else []) == before
