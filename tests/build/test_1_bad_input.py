"""Bad build input stops before anything is built, naming what is wrong: a wrong
sha256, a missing source, a missing host tool, a bad recipe, a compressor the
image format does not have, an include that is not a shared recipe file."""

import os
import re
import shutil

import yaml

from conftest import ROOT, WORK, run_build

RECIPES = os.path.join(ROOT, "roles", "lfs_sources", "files", "recipes", "minimal.yml")
MUSL_SHA = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4"


def recipe_file(tmp_path, change):
    with open(RECIPES) as handle:
        profile = yaml.safe_load(handle)
    change(profile)
    path = tmp_path / "recipes.yml"
    path.write_text(yaml.safe_dump(profile))
    return str(path)


def fresh(name):
    path = os.path.join(WORK, "bad", name)
    shutil.rmtree(path, ignore_errors=True)
    return path


def assert_nothing_built(build_dir):
    for profile in ("minimal",):
        stamps = os.path.join(build_dir, profile, "stamps")
        assert not os.path.exists(stamps) or os.listdir(stamps) == [], os.listdir(stamps)


def test_a_wrong_sha256_stops_before_any_build_naming_file_expected_and_actual(tmp_path, mirror):
    wrong = "0" * 64

    def change(profile):
        profile["packages"][0]["sources"][0]["sha256"] = wrong

    base = fresh("sha")
    res = run_build("-e", "lfs_sources_recipe_file=" + recipe_file(tmp_path, change),
                    build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    out = res.stdout
    assert "musl_1.2.3.orig.tar.gz: expected sha256 %s; %s: sha256 is %s" % (wrong, mirror, MUSL_SHA) in out, out[-3000:]
    assert_nothing_built(base + "/build")
    # The file with the wrong checksum never entered the cache.
    assert not os.path.exists(base + "/cache/musl_1.2.3.orig.tar.gz")


def test_a_missing_source_is_named(tmp_path, mirror):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    shutil.copy(os.path.join(mirror, "musl_1.2.3.orig.tar.gz"), empty)
    base = fresh("missing")
    res = run_build(mirror=str(empty), build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    for name in ("busybox_1.35.0.orig.tar.bz2", "dropbear_2022.83.orig.tar.bz2", "linux_6.1.8.orig.tar.xz"):
        assert re.search(r"%s: expected sha256 [0-9a-f]{64}; %s: not there" % (re.escape(name), re.escape(str(empty))),
                         res.stdout), res.stdout[-3000:]
    assert_nothing_built(base + "/build")


def test_a_missing_host_tool_is_named(tmp_path, mirror):
    def change(profile):
        profile["host_tools"].append({"name": "orion-no-such-tool", "min": "1.0"})

    base = fresh("tool")
    res = run_build("-e", "lfs_sources_recipe_file=" + recipe_file(tmp_path, change),
                    "-e", "lfs_toolchain_install_host_packages=false",
                    build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    assert "host tools: orion-no-such-tool is missing" in res.stdout, res.stdout[-3000:]
    assert not os.path.exists(base + "/build/minimal")


def test_a_bad_recipe_names_package_and_field(tmp_path, mirror):
    def change(profile):
        profile["packages"][2]["sbu"] = -3
        profile["packages"][3]["steps"]["compile"] = "make"
        profile["packages"][1]["depends"] = ["dropbear"]

    base = fresh("recipe")
    res = run_build("-e", "lfs_sources_recipe_file=" + recipe_file(tmp_path, change),
                    build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    for text in ("package busybox: sbu -3 is not a number from 0 to 1000",
                 "package dropbear: unknown step 'compile'",
                 "package linux-headers: depends on 'dropbear', which is not a package before it"):
        assert text in res.stdout, res.stdout[-3000:]
    assert not os.path.exists(base + "/build/minimal")


def test_an_include_that_is_not_a_shared_recipe_file_is_named(tmp_path, mirror):
    def change(profile):
        profile["include"] = [{"file": "node.yml"}, {"file": "kernel.yml"}]

    base = fresh("include")
    res = run_build("-e", "lfs_sources_recipe_file=" + recipe_file(tmp_path, change),
                    build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    assert "include: [{'file': 'node.yml'}, {'file': 'kernel.yml'}] in %s must be a list of" % (tmp_path / "recipes.yml") \
        in res.stdout, res.stdout[-3000:]
    assert not os.path.exists(base + "/build/minimal")


def test_a_compressor_of_another_image_format_is_named(mirror):
    base = fresh("compressor")
    res = run_build("-e", '{"image_format": "erofs", "image_compression": "xz"}',
                    build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    assert "image_compression xz is not one of lz4hc, lz4 (the compressors of erofs)" in res.stdout, res.stdout[-3000:]
    assert not os.path.exists(base + "/build/minimal")


def test_a_block_size_that_is_not_a_power_of_two_is_named(mirror):
    base = fresh("blocksize")
    res = run_build("-e", '{"image_block_size": 100000}',
                    build_dir=base + "/build", cache=base + "/cache", store=base + "/store")
    assert res.returncode != 0
    assert "image_block_size 100000 is not 0 or a power of two from 4096 to 1048576" in res.stdout, \
        res.stdout[-3000:]
    assert not os.path.exists(base + "/build/minimal")
