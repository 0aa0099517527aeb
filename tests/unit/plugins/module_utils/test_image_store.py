"""Unit tests of the image store engine: manifests, verification, sync plans."""

import hashlib
import json
import os

import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store

VERSIONS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._+-]{0,20}\Z")


def make_version(path, files):
    os.makedirs(path)
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as handle:
            handle.write(data)
    manifest = store.build_manifest(path, version=os.path.basename(path))
    with open(os.path.join(path, store.MANIFEST), "w", encoding="utf-8") as handle:
        handle.write(store.dump_manifest(manifest))
    return manifest


def test_build_manifest_lists_size_and_sha256(tmp_path):
    manifest = make_version(str(tmp_path / "v1"), {"vmlinuz": b"kernel", "root.img": b""})
    assert manifest["version"] == "v1"
    assert manifest["files"]["vmlinuz"] == {"size": 6, "sha256": hashlib.sha256(b"kernel").hexdigest()}
    assert manifest["files"]["root.img"]["size"] == 0
    assert store.verify_version(str(tmp_path / "v1")) == []


def test_verify_names_every_problem(tmp_path):
    path = str(tmp_path / "v1")
    make_version(path, {"a": b"aaaa", "b": b"bbbb", "c": b"cccc"})
    with open(os.path.join(path, "a"), "wb") as handle:
        handle.write(b"aaab")  # same size, other content
    with open(os.path.join(path, "b"), "ab") as handle:
        handle.write(b"!")
    os.unlink(os.path.join(path, "c"))
    with open(os.path.join(path, "stray"), "wb") as handle:
        handle.write(b"x")
    problems = store.verify_version(path)
    text = "\n".join(problems)
    assert len(problems) == 4
    assert "file a has sha256" in text
    assert "file b has 5 bytes, the manifest says 4" in text
    assert "file c is missing" in text
    assert "file stray is not in the manifest" in text
    # Without checksums only the cheap checks run.
    assert len(store.verify_version(path, checksums=False)) == 3


def test_missing_manifest_is_a_problem(tmp_path):
    (tmp_path / "v1").mkdir()
    problems = store.verify_version(str(tmp_path / "v1"))
    assert len(problems) == 1 and "manifest.json: cannot read" in problems[0]


@pytest.mark.parametrize("text, field", [
    ("not json", "not valid JSON"),
    ("[]", "top level"),
    ('{"files": {}}', "'files'"),
    ('{"format": 2, "files": {"a": {"size": 1, "sha256": "%s"}}}' % ("0" * 64), "format 2"),
    ('{"files": {"../x": {"size": 1, "sha256": "%s"}}}' % ("0" * 64), "'../x'"),
    ('{"files": {".hidden": {"size": 1, "sha256": "%s"}}}' % ("0" * 64), "'.hidden'"),
    ('{"files": {"a": {"size": -1, "sha256": "%s"}}}' % ("0" * 64), "files.a.size -1"),
    ('{"files": {"a": {"size": true, "sha256": "%s"}}}' % ("0" * 64), "files.a.size True"),
    ('{"files": {"a": {"size": 1, "sha256": "ABC"}}}', "files.a.sha256 'ABC'"),
    ('{"files": {"a": {"size": 1}}}', "files.a.sha256 None"),
    ('{"version": "a b", "files": {"a": {"size": 1, "sha256": "%s"}}}' % ("0" * 64), "version 'a b'"),
])
def test_parse_manifest_names_the_bad_field(text, field):
    with pytest.raises(store.ImageStoreError) as err:
        store.parse_manifest(text, "m.json")
    assert field in str(err.value) and str(err.value).startswith("m.json")


def test_build_manifest_refuses_links_and_dirs(tmp_path):
    path = tmp_path / "v1"
    path.mkdir()
    (path / "sub").mkdir()
    with pytest.raises(store.ImageStoreError, match="only regular files"):
        store.build_manifest(str(path))
    os.rmdir(str(path / "sub"))
    with pytest.raises(store.ImageStoreError, match="no files"):
        store.build_manifest(str(path))
    (path / "target").write_bytes(b"x")
    os.symlink("target", str(path / "link"))
    with pytest.raises(store.ImageStoreError, match="only regular files"):
        store.build_manifest(str(path))


def test_list_versions_skips_work_areas_files_and_links(tmp_path):
    images = tmp_path / "images"
    for name in ("2026.11.0", "2026.11.1", ".incoming", ".trash"):
        (images / name).mkdir(parents=True)
    (images / "README").write_text("x")
    os.symlink("2026.11.0", str(images / "current"))
    assert store.list_versions(str(images)) == ["2026.11.0", "2026.11.1"]
    assert store.list_versions(str(tmp_path / "missing")) == []


def test_promote_is_a_rename_that_never_replaces(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    staging = tmp_path / store.STAGING / "v2"
    make_version(str(staging), {"k": b"1"})
    final = store.promote(str(images), str(staging), "v2")
    assert final == str(images / "v2") and not staging.exists()
    make_version(str(staging), {"k": b"2"})
    with pytest.raises(store.ImageStoreError, match="never replaced"):
        store.promote(str(images), str(staging), "v2")
    assert (images / "v2" / "k").read_bytes() == b"1"


@given(source=st.sets(VERSIONS, max_size=8), local=st.sets(VERSIONS, max_size=8), delete=st.booleans())
def test_plan_sync_properties(source, local, delete):
    plan = store.plan_sync(sorted(source), sorted(local), delete=delete)
    after = (set(local) - set(plan["remove"])) | set(plan["pull"])
    # The replica ends with every source version, pulling only what it lacks.
    assert set(source) <= after
    assert not set(plan["pull"]) & set(local)
    assert set(plan["keep"]) | set(plan["remove"]) == set(local)
    if delete:
        assert after == set(source)
    else:
        assert plan["remove"] == [] and set(local) <= after


def test_plan_sync_refuses_bad_names():
    with pytest.raises(store.ImageStoreError, match="'../etc'"):
        store.plan_sync(["../etc"], [])


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=512), flip=st.integers(min_value=0))
def test_any_changed_byte_is_detected(tmp_path_factory, data, flip):
    path = str(tmp_path_factory.mktemp("v") / "v1")
    make_version(path, {"root.img": data})
    pos = flip % len(data)
    changed = bytearray(data)
    changed[pos] ^= 0xFF
    with open(os.path.join(path, "root.img"), "wb") as handle:
        handle.write(bytes(changed))
    problems = store.verify_version(path)
    assert len(problems) == 1 and "root.img has sha256" in problems[0]


def test_manifest_round_trip_is_stable(tmp_path):
    manifest = make_version(str(tmp_path / "v1"), {"b": b"2", "a": b"1"})
    text = store.dump_manifest(manifest)
    assert store.parse_manifest(text) == manifest
    assert store.dump_manifest(json.loads(text)) == text


def test_rsync_pull_command_is_restricted_and_strict():
    argv = store.rsync_pull_command("orion-sync@10.0.0.2", "2026.11.0", "/srv/orion/.incoming/2026.11.0",
                                    "/etc/orion/sync/id_ed25519", "/etc/orion/sync/known_hosts",
                                    port=2222, bwlimit=500, checksum=True)
    assert argv[-2:] == ["orion-sync@10.0.0.2:2026.11.0/", "/srv/orion/.incoming/2026.11.0/"]
    ssh = argv[argv.index("-e") + 1]
    assert "StrictHostKeyChecking=yes" in ssh and "BatchMode=yes" in ssh and "-p 2222" in ssh
    assert "--bwlimit=500" in argv and "--checksum" in argv and "--partial" in argv
    assert "--delete" not in argv
    for bad_source in ("10.0.0.2", "a@b;rm -rf /", ""):
        with pytest.raises(store.ImageStoreError, match="user@host"):
            store.rsync_pull_command(bad_source, "v", "/d", "/k", "/kh")
    with pytest.raises(store.ImageStoreError, match="version"):
        store.rsync_pull_command("u@h", "../x", "/d", "/k", "/kh")


@pytest.mark.parametrize("name", ["v1\n", "v1\r", "", ".", "..", ".hidden", "a/b", "a b"])
def test_names_with_control_or_path_characters_are_refused(name):
    assert not store.valid_version(name)
    assert not store.valid_file_name(name)
