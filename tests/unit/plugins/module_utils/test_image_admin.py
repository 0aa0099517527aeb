"""Unit tests of the image store administration behind the image module."""

import json
import os
import stat
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine
from ansible_collections.orionos.diskless.plugins.module_utils import image_admin as admin
from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store

FILES = {"vmlinuz": b"kernel", "initramfs.img": b"initramfs", "root.erofs": b"root file system"}
MTIME = 1793491200  # 2026-11-01T00:00:00Z


def make_src(path, files=None, mtime=MTIME):
    os.makedirs(path)
    for name, data in (FILES if files is None else files).items():
        full = os.path.join(path, name)
        with open(full, "wb") as handle:
            handle.write(data)
        os.utime(full, (mtime, mtime))
    return path


def add_version(root, version, created, arch="x86_64", files=None):
    """A published version written directly (as a replica pull would leave it)."""
    path = os.path.join(root, "images", version)
    make_src(path, files or {k: v + version.encode() for k, v in FILES.items()})
    manifest = store.build_manifest(path, version, extra={"created": created, "arch": arch})
    with open(os.path.join(path, store.MANIFEST), "w", encoding="utf-8") as handle:
        handle.write(store.dump_manifest(manifest))
    return path


def snapshot(root):
    """Every entry under root with its type, mode and content."""
    found = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            data = None
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    data = handle.read()
            found[os.path.relpath(full, root)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), data)
    return found


@pytest.fixture(name="root")
def fixture_root(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    return str(path)


def run(root, check_mode=False, **params):
    return admin.run(dict(params, root=root), check_mode=check_mode)


def refused(root, fragments, **params):
    before = snapshot(root)
    with pytest.raises(admin.ImageAdminError) as err:
        run(root, **params)
    for fragment in fragments:
        assert fragment in err.value.msg, err.value.msg
    assert snapshot(root) == before, "a refused run changed the store"
    return err.value


# ---------------------------------------------------------------- publish

def test_publish_builds_manifest_copies_read_only_and_is_idempotent(tmp_path, root):
    src = make_src(str(tmp_path / "build"))
    before = snapshot(root)
    out = run(root, check_mode=True, version="2026.11.0", src=src)
    assert out["changed"] is True
    assert [i["version"] for i in out["images"]] == ["2026.11.0"]
    assert out["diff"] == {"before": "", "after": "2026.11.0 published\n"}
    assert snapshot(root) == before, "check mode wrote something"

    out = run(root, version="2026.11.0", src=src)
    assert out["changed"] is True
    vdir = os.path.join(root, "images", "2026.11.0")
    manifest = store.load_manifest(vdir)
    assert manifest["version"] == "2026.11.0" and manifest["arch"] == "x86_64"
    assert manifest["created"] == "2026-11-01T00:00:00Z"          # newest source mtime, UTC
    assert manifest["boot"] == {"kernel": "vmlinuz", "initramfs": "initramfs.img", "root": "root.erofs"}
    assert store.verify_version(vdir) == []
    assert stat.S_IMODE(os.stat(vdir).st_mode) == 0o755
    for name in list(FILES) + [store.MANIFEST]:
        assert stat.S_IMODE(os.stat(os.path.join(vdir, name)).st_mode) == 0o444
    assert os.listdir(os.path.join(root, store.STAGING)) == []
    assert not os.path.exists(store.state_path(root))
    image = out["images"][0]
    assert image["files"] == 3 and image["size"] == sum(len(v) for v in FILES.values())
    assert image["state"] == "published" and image["root"] == "root.erofs"

    written = snapshot(root)
    assert run(root, check_mode=True, version="2026.11.0", src=src)["changed"] is False
    assert run(root, version="2026.11.0", src=src)["changed"] is False
    assert run(root, version="2026.11.0")["changed"] is False
    assert snapshot(root) == written


def test_publish_options_go_into_the_manifest(tmp_path, root):
    src = make_src(str(tmp_path / "build"), {"bzImage": b"k", "initrd": b"i", "a.squashfs": b"a", "b.erofs": b"b"})
    refused(root, ["root_image", "a.squashfs, b.erofs"], version="v1", src=src, kernel="bzImage",
            initramfs="initrd")
    run(root, version="v1", src=src, kernel="bzImage", initramfs="initrd", root_image="b.erofs",
        arch="aarch64", created="2026-12-24T18:00:00Z")
    image = run(root, state="listed")["images"][0]
    assert (image["kernel"], image["initramfs"], image["root"]) == ("bzImage", "initrd", "b.erofs")
    assert (image["arch"], image["created"]) == ("aarch64", "2026-12-24T18:00:00Z")


def test_publish_with_its_own_manifest_verifies_it_first(tmp_path, root):
    src = make_src(str(tmp_path / "build"))
    manifest = store.build_manifest(src, "v2", extra={"created": "2026-11-02T00:00:00Z", "arch": "aarch64"})
    with open(os.path.join(src, store.MANIFEST), "w", encoding="utf-8") as handle:
        handle.write(store.dump_manifest(manifest))
    refused(root, ["version 'v2', not version 'v3'"], version="v3", src=src)
    refused(root, ["arch: 'x86_64' differs from 'aarch64'"], version="v2", src=src, arch="x86_64")
    with open(os.path.join(src, "vmlinuz"), "wb") as handle:
        handle.write(b"kernem")                                     # same size, other bytes
    err = refused(root, ["src:", "file vmlinuz has sha256", "the manifest says %s"
                         % manifest["files"]["vmlinuz"]["sha256"]], version="v2", src=src)
    assert len(err.details["problems"]) == 1
    with open(os.path.join(src, "vmlinuz"), "wb") as handle:
        handle.write(b"kernel")
    assert run(root, version="v2", src=src)["changed"] is True
    assert store.load_manifest(os.path.join(root, "images", "v2")) == manifest


def test_publish_refuses_a_different_image_under_the_same_version(tmp_path, root):
    run(root, version="v1", src=make_src(str(tmp_path / "a")))
    other = make_src(str(tmp_path / "b"), dict(FILES, vmlinuz=b"kernel 2", extra=b"x"))
    err = refused(root, ["refuses to overwrite a different image with the same version",
                         "extra (only in src)", "vmlinuz (sha256"], version="v1", src=other)
    assert err.details["differing"][0].startswith("extra")


def test_publish_clears_stale_staging(tmp_path, root):
    stale = os.path.join(root, store.STAGING, "v1")
    os.makedirs(stale)
    with open(os.path.join(stale, "junk"), "wb") as handle:
        handle.write(b"half a pull")
    run(root, version="v1", src=make_src(str(tmp_path / "a")))
    assert not os.path.exists(stale)
    assert store.verify_version(os.path.join(root, "images", "v1")) == []


def test_a_copy_that_does_not_match_is_not_published(tmp_path, root, monkeypatch):
    real_copy = admin.shutil.copyfile

    def bad_copy(source, target, **kwargs):
        real_copy(source, target, **kwargs)
        if target.endswith("root.erofs"):
            with open(target, "r+b") as handle:
                handle.write(b"R")

    monkeypatch.setattr(admin.shutil, "copyfile", bad_copy)
    with pytest.raises(admin.ImageAdminError, match="file root.erofs has sha256"):
        run(root, version="v1", src=make_src(str(tmp_path / "a")))
    assert store.list_versions(os.path.join(root, "images")) == []
    assert os.listdir(os.path.join(root, store.STAGING)) == []


# ------------------------------------------------------------------ states

def test_deprecate_and_publish_again(root):
    add_version(root, "v1", "2026-11-01T00:00:00Z")
    out = run(root, check_mode=True, version="v1", state="deprecated")
    assert out["changed"] is True and out["images"][0]["state"] == "deprecated"
    assert not os.path.exists(store.state_path(root))
    out = run(root, version="v1", state="deprecated")
    assert out["changed"] is True and out["diff"] == {"before": "v1 published\n", "after": "v1 deprecated\n"}
    assert store.load_states(root) == {"v1": "deprecated"}
    assert os.listdir(os.path.dirname(store.state_path(root))) == ["images.json"]
    assert run(root, version="v1", state="deprecated")["changed"] is False
    out = run(root, version="v1", state="published")
    assert out["changed"] is True and out["images"][0]["state"] == "published"
    assert store.load_states(root) == {}
    assert run(root, version="v1")["changed"] is False


def test_publish_from_src_of_a_deprecated_version_publishes_it_again(tmp_path, root):
    src = make_src(str(tmp_path / "a"))
    run(root, version="v1", src=src)
    run(root, version="v1", state="deprecated")
    out = run(root, version="v1", src=src)
    assert out["changed"] is True and store.load_states(root) == {}


# ------------------------------------------------------------------ absent

POLICY = {"channels": {"stable": "v1", "multi": {"aarch64": "v2"}},
          "rules": [{"name": "pin", "match": {"group": "g"}, "image": "v2", "fallback": "v1"}],
          "default": {"channel": "stable"}}


def write_table(path, nodes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(engine.table_json(nodes))


def test_remove_is_refused_while_referenced(root):
    for index, version in enumerate(["v1", "v2", "v3"]):
        add_version(root, version, "2026-11-0%dT00:00:00Z" % (index + 1))
    write_table(os.path.join(root, admin.DEFAULT_TABLE), {"n1": {"image": "v2", "fallback": "v3"}})
    err = refused(root, ["version: v1", "channel stable", "rule pin fallback", "force"],
                  version="v1", state="absent", policy=POLICY)
    assert err.details["referenced_by"] == ["channel stable", "rule pin fallback"]
    refused(root, ["channel multi (aarch64)", "rule pin pin", "node n1 image"],
            version="v2", state="absent", policy=POLICY)
    refused(root, ["node n1 fallback"], version="v3", state="absent")
    # Tables given explicitly replace the default one.
    assert run(root, check_mode=True, version="v3", state="absent", tables=[])["changed"] is True


def test_remove_with_force_drops_files_and_state(root):
    add_version(root, "v1", "2026-11-01T00:00:00Z")
    add_version(root, "v2", "2026-11-02T00:00:00Z")
    run(root, version="v1", state="deprecated")
    out = run(root, check_mode=True, version="v1", state="absent", policy=POLICY, force=True)
    assert out["changed"] is True and out["removed"] == ["v1"] and out["warnings"]
    assert os.path.isdir(os.path.join(root, "images", "v1"))
    out = run(root, version="v1", state="absent", policy=POLICY, force=True)
    assert "still referenced by channel stable" in out["warnings"][0]
    assert out["diff"] == {"before": "v1 deprecated\nv2 published\n", "after": "v2 published\n"}
    assert store.list_versions(os.path.join(root, "images")) == ["v2"]
    assert os.listdir(os.path.join(root, store.TRASH)) == []
    assert store.load_states(root) == {}
    out = run(root, version="v1", state="absent")
    assert out["changed"] is False and out["removed"] == []


# ------------------------------------------------------------------- prune

def test_prune_keeps_newest_of_each_arch_and_referenced(root):
    dates = {"2026.9.0": "01", "2026.10.0": "02", "2026.10.1": "03", "2026.11.0": "04", "2026.11.1": "05",
             "2026.11.2": "06"}
    for version, day in dates.items():
        add_version(root, version, "2026-11-%sT00:00:00Z" % day)
    add_version(root, "arm.1", "2026-01-01T00:00:00Z", arch="aarch64")
    run(root, version="2026.11.2", state="deprecated")
    broken = os.path.join(root, "images", "odd")
    os.makedirs(broken)
    policy = {"channels": {"old": "2026.9.0"}}
    out = run(root, check_mode=True, state="pruned", keep=2, policy=policy)
    assert out["removed"] == ["2026.10.0", "2026.10.1", "2026.11.2"]
    assert out["kept"] == {"2026.9.0": ["channel old"], "2026.11.0": ["newest"], "2026.11.1": ["newest"],
                           "arm.1": ["newest"], "odd": ["unreadable manifest"]}
    assert len(store.list_versions(os.path.join(root, "images"))) == 8
    out = run(root, state="pruned", keep=2, policy=policy)
    assert out["changed"] is True
    assert store.list_versions(os.path.join(root, "images")) == sorted(out["kept"])
    assert store.load_states(root) == {}                       # the deprecated one went
    assert run(root, state="pruned", keep=2, policy=policy)["changed"] is False


def write_report(root, node, body):
    path = os.path.join(root, admin.DEFAULT_REPORTS)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, node + ".json"), "w", encoding="utf-8") as handle:
        handle.write(body if isinstance(body, str) else json.dumps(body))


def boot_report(node, image, **extra):
    return dict({"format": 1, "node": node, "result": "ok", "image": image, "event": "boot"}, **extra)


def test_a_version_a_node_still_runs_is_neither_removed_nor_pruned(root):
    for index, version in enumerate(["v1", "v2", "v3", "v4"]):
        add_version(root, version, "2026-11-0%dT00:00:00Z" % (index + 1))
    # The table moved n1 to v4, but n1 has not rebooted: its last report says v1.
    write_table(os.path.join(root, admin.DEFAULT_TABLE), {"n1": {"image": "v4"}})
    write_report(root, "n1", boot_report("n1", "v1"))
    write_report(root, "n2", boot_report("n2", "v1", result="failed"))
    err = refused(root, ["version: v1 is still referenced by node n1 runs it (its last report), node n2 runs it",
                         "force: true removes it anyway"], version="v1", state="absent")
    assert err.details["referenced_by"] == ["node n1 runs it (its last report)", "node n2 runs it (its last report)"]
    out = run(root, check_mode=True, state="pruned", keep=1)
    assert out["removed"] == ["v2", "v3"]
    assert out["kept"]["v1"] == ["node n1 runs it (its last report)", "node n2 runs it (its last report)"]
    # Forced: pruned anyway, and the warning names the nodes.
    out = run(root, check_mode=True, state="pruned", keep=1, force=True)
    assert out["removed"] == ["v1", "v2", "v3"]
    assert out["warnings"] == ["version v1 was pruned while still referenced by node n1 runs it (its last report), "
                               "node n2 runs it (its last report)"]


def test_reports_that_do_not_pass_the_checks_and_shutdown_reports_name_nothing(root):
    for index, version in enumerate(["v1", "v2", "v3"]):
        add_version(root, version, "2026-11-0%dT00:00:00Z" % (index + 1))
    write_report(root, "n1", boot_report("n2", "v1"))                 # names another node
    write_report(root, "n3", boot_report("n3", "v1", result=7))       # a field of the wrong type
    write_report(root, "n4", "{not json")
    write_report(root, "n5", boot_report("n5", "v1", event="shutdown", action="poweroff", result="shutdown"))
    os.symlink("n5.json", os.path.join(root, admin.DEFAULT_REPORTS, "n6.json"))
    assert admin.running_versions(os.path.join(root, admin.DEFAULT_REPORTS)) == {}
    assert run(root, check_mode=True, version="v1", state="absent")["changed"] is True
    # Other report directories can be given; an empty list reads none.
    write_report(root, "n7", boot_report("n7", "v2"))
    assert run(root, check_mode=True, version="v2", state="absent", reports=[])["changed"] is True
    refused(root, ["node n7 runs it"], version="v2", state="absent")


def test_newest_is_by_created_then_numeric_version():
    entries = [{"version": v, "arch": "x86_64", "created": c, "state": "published", "problem": None}
               for v, c in [("1.10", "2026"), ("1.9", "2026"), ("1.2", "2026"), ("0.1", "2027")]]
    kept, removed = admin.plan_prune(entries, {}, 2)
    assert sorted(kept) == ["0.1", "1.10"] and removed == ["1.2", "1.9"]


VERSION = st.from_regex(r"\A[a-z0-9]{1,3}(\.[0-9]{1,3}){0,2}\Z")


@settings(max_examples=200)
@given(data=st.dictionaries(VERSION, st.tuples(st.sampled_from(["x86_64", "aarch64"]),
                                               st.sampled_from(["", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]),
                                               st.sampled_from(["published", "deprecated"])), max_size=12),
       referenced=st.sets(VERSION, max_size=4), keep=st.integers(min_value=1, max_value=4))
def test_prune_properties(data, referenced, keep):
    entries = [{"version": v, "arch": a, "created": c, "state": s, "problem": None} for v, (a, c, s) in data.items()]
    refs = {v: ["channel c"] for v in referenced}
    kept, removed = admin.plan_prune(entries, refs, keep)
    assert set(kept) | set(removed) == set(data) and not set(kept) & set(removed)
    assert not set(removed) & referenced
    for arch in ("x86_64", "aarch64"):
        published = [e for e in entries if e["arch"] == arch and e["state"] == "published"]
        newest = sorted(published, key=admin.newest_key, reverse=True)[:keep]
        assert all("newest" in kept[e["version"]] for e in newest)
        # Nothing removed is newer than something kept as newest.
        for gone in (e for e in published if e["version"] in removed):
            assert all(admin.newest_key(gone) < admin.newest_key(e) for e in newest)
    assert sum("newest" in r for r in kept.values()) <= 2 * keep


@given(st.lists(st.integers(min_value=0, max_value=10 ** 6), min_size=1, max_size=4),
       st.lists(st.integers(min_value=0, max_value=10 ** 6), min_size=1, max_size=4))
def test_version_key_compares_numbers_as_numbers(left, right):
    a, b = ".".join(map(str, left)), ".".join(map(str, right))
    assert (admin.version_key(a) < admin.version_key(b)) == (left < right)


# ------------------------------------------------------------ verify, list

def test_verify_detects_a_flipped_byte(root):
    add_version(root, "v1", "2026-11-01T00:00:00Z")
    path = add_version(root, "v2", "2026-11-02T00:00:00Z")
    assert run(root, state="verified")["corrupt"] == {}
    target = os.path.join(path, "root.erofs")
    data = bytearray(open(target, "rb").read())
    data[3] ^= 0x01
    with open(target, "wb") as handle:
        handle.write(bytes(data))
    before = snapshot(root)
    with pytest.raises(admin.ImageAdminError) as err:
        run(root, state="verified")
    assert "1 of 2 image(s) verified are corrupt" in err.value.msg and "root.erofs has sha256" in err.value.msg
    assert list(err.value.details["corrupt"]) == ["v2"] and len(err.value.details["images"]) == 2
    assert run(root, state="verified", version="v1")["verified"] == ["v1"]
    with pytest.raises(admin.ImageAdminError):
        run(root, state="verified", version="v2", check_mode=True)
    assert snapshot(root) == before


def test_list_describes_every_image(root):
    add_version(root, "2026.11.10", "2026-11-03T00:00:00Z")
    add_version(root, "2026.11.9", "2026-11-02T00:00:00Z", arch="aarch64")
    os.makedirs(os.path.join(root, "images", "broken"))
    run(root, version="2026.11.9", state="deprecated")
    out = run(root, state="listed", policy={"channels": {"stable": "2026.11.10"}})
    assert out["changed"] is False
    assert [i["version"] for i in out["images"]] == ["2026.11.9", "2026.11.10", "broken"]
    first, second, broken = out["images"]
    assert first["state"] == "deprecated" and first["arch"] == "aarch64" and first["referenced_by"] == []
    assert second["referenced_by"] == ["channel stable"] and second["created"] == "2026-11-03T00:00:00Z"
    assert second["files"] == 3 and second["kernel"] == "vmlinuz" and second["problem"] is None
    assert broken["files"] == 0 and "manifest.json: cannot read" in broken["problem"]


# -------------------------------------------------------------- bad input

def _bad_src(tmp_path, kind):
    src = make_src(str(tmp_path / ("src-" + kind)))
    if kind == "subdir":
        os.makedirs(os.path.join(src, "lib"))
    elif kind == "symlink":
        os.symlink("vmlinuz", os.path.join(src, "vmlinuz.old"))
    elif kind == "badname":
        with open(os.path.join(src, ".hidden"), "wb") as handle:
            handle.write(b"x")
    elif kind == "nokernel":
        os.unlink(os.path.join(src, "vmlinuz"))
    elif kind == "badmanifest":
        with open(os.path.join(src, store.MANIFEST), "w", encoding="utf-8") as handle:
            handle.write("{not json")
    elif kind == "empty":
        for name in FILES:
            os.unlink(os.path.join(src, name))
    return src


@pytest.mark.parametrize("params, fragments", [
    ({"version": "../etc"}, ["version: '../etc' is not a valid version name"]),
    ({"version": "v 1", "src": "SRC"}, ["version: 'v 1'"]),
    ({"src": "SRC"}, ["version: required with state=published"]),
    ({"version": "v9"}, ["version: v9 is not in the store", "give src"]),
    ({"version": "v9", "src": "MISSING"}, ["src:", "missing", "is not a directory"]),
    ({"version": "v9", "src": "subdir"}, ["src:", "lib is a sub-directory"]),
    ({"version": "v9", "src": "symlink"}, ["src:", "vmlinuz.old is a symbolic link"]),
    ({"version": "v9", "src": "badname"}, ["src: '.hidden' is not a plain file name"]),
    ({"version": "v9", "src": "nokernel"}, ["kernel: 'vmlinuz' is not a file of src"]),
    ({"version": "v9", "src": "badmanifest"}, ["src:", "manifest.json: not valid JSON"]),
    ({"version": "v9", "src": "empty"}, ["src:", "holds no image files"]),
    ({"version": "v9", "src": "SRC", "kernel": "a/b"}, ["kernel: 'a/b' is not a plain file name"]),
    ({"version": "v9", "src": "SRC", "root_image": "none.erofs"}, ["root_image: 'none.erofs' is not a file"]),
    ({"version": "v9", "src": "SRC", "arch": "sparc"}, ["arch: 'sparc' is not one of"]),
    ({"version": "v9", "src": "SRC", "created": "yesterday"}, ["created: 'yesterday' is not a UTC time"]),
    ({"version": "v1", "arch": "x86_64"}, ["arch: 'x86_64' is only used when publishing from src"]),
    ({"version": "v1", "state": "deprecated", "src": "SRC"}, ["src:", "only used with state=published"]),
    ({"version": "v9", "state": "deprecated"}, ["version: v9 is not in the store"]),
    ({"state": "absent"}, ["version: required with state=absent"]),
    ({"state": "pruned", "keep": 0}, ["keep: 0 must be a whole number of at least 1"]),
    ({"state": "pruned", "version": "v1"}, ["version: 'v1' is not used with state=pruned"]),
    ({"state": "verified", "version": "v9"}, ["version: v9 is not in the store"]),
    ({"state": "gone", "version": "v1"}, ["state: 'gone' is not one of"]),
    ({"state": "pruned", "policy": {"channels": ["v1"]}}, ["policy.channels: ['v1'] is not a mapping"]),
    ({"state": "pruned", "policy": {"chanels": {}}}, ["policy: unknown field 'chanels'"]),
    ({"state": "pruned", "policy": {"channels": {"s": {"sparc": "v1"}}}}, ["policy.channels.s: arch 'sparc'"]),
    ({"state": "pruned", "policy": {"channels": {"s": "../x"}}}, ["policy.channels.s: '../x' is not a valid"]),
    ({"state": "pruned", "policy": {"rules": [{"image": 3}]}}, ["policy.rules[0].image: 3"]),
    ({"state": "pruned", "policy": {"rules": {"image": "v1"}}}, ["policy.rules: {'image': 'v1'} is not a list"]),
    ({"state": "pruned", "policy": {"default": "v1"}}, ["policy.default: 'v1' is not a mapping"]),
    ({"state": "pruned", "tables": "TABLE"}, ["tables:", "is not a readable resolution table"]),
    ({"state": "verified", "root": "NOROOT"}, ["root:", "is not a directory"]),
    ({"version": "v9", "src": "STAGING"}, ["src:", "work area"]),
])
def test_bad_input_names_the_field_and_changes_nothing(tmp_path, root, params, fragments):
    add_version(root, "v1", "2026-11-01T00:00:00Z")
    params = dict(params)
    special = {"SRC": lambda: make_src(str(tmp_path / "good")),
               "MISSING": lambda: str(tmp_path / "missing"),
               "STAGING": lambda: make_src(os.path.join(root, store.STAGING, "v9"))}
    if params.get("src") in special:
        params["src"] = special[params["src"]]()
    elif params.get("src"):
        params["src"] = _bad_src(tmp_path, params["src"])
    if params.get("tables") == "TABLE":
        bad = tmp_path / "resolution.json"
        bad.write_text("{broken")
        params["tables"] = [str(bad)]
    target = root
    if params.pop("root", None) == "NOROOT":
        target = str(tmp_path / "noroot")
    before = snapshot(root)
    with pytest.raises(admin.ImageAdminError) as err:
        admin.run(dict(params, root=target))
    for fragment in fragments:
        assert fragment in err.value.msg, err.value.msg
    assert snapshot(root) == before


def test_unusable_state_file_fails_before_anything_changes(tmp_path, root):
    add_version(root, "v1", "2026-11-01T00:00:00Z")
    os.makedirs(os.path.dirname(store.state_path(root)))
    with open(store.state_path(root), "w", encoding="utf-8") as handle:
        json.dump({"versions": {"v1": "retired"}}, handle)
    refused(root, ["root: the image state file is unusable", "'retired'"], version="v1", state="deprecated")
    refused(root, ["image state file"], version="v2", src=make_src(str(tmp_path / "a")))


def test_table_without_nodes_is_refused(tmp_path, root):
    add_version(root, "v1", "2026-11-01T00:00:00Z")
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"format": 1}))
    refused(root, ["tables:", "no 'nodes' mapping"], version="v1", state="absent", tables=[str(table)])


@settings(max_examples=200)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["channels", "rules", "default", "image", "fallback",
                                                       "x86_64", "stable", "name"]), inner, max_size=3),
                    max_leaves=12))
def test_check_policy_never_crashes_and_accepted_shapes_give_references(policy):
    problems = admin.check_policy(policy)
    assert all(isinstance(p, str) and p.startswith("policy") for p in problems)
    if not problems:
        refs = admin.references(policy, [])
        assert all(store.valid_version(v) for v in refs)


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.from_regex(r"\A[a-z][a-z0-9._-]{0,10}\Z").filter(lambda n: n != "manifest.json"),
                       st.binary(max_size=64), min_size=1, max_size=5))
def test_any_published_source_verifies_and_republishes_unchanged(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "store")
        os.makedirs(root)
        src = make_src(os.path.join(tmp, "src"), dict(files, vmlinuz=b"k", **{"initramfs.img": b"i"}))
        roots = [n for n in files if n.endswith(admin.ROOT_SUFFIXES)]
        params = {"version": "v1", "src": src, "root_image": roots[0] if roots else None}
        assert run(root, **params)["changed"] is True
        assert run(root, state="verified")["corrupt"] == {}
        assert run(root, **params)["changed"] is False


def test_listing_a_store_that_does_not_exist_yet_gives_no_images(tmp_path):
    result = admin.run({"root": str(tmp_path / "not-yet"), "state": "listed"})
    assert result["changed"] is False and result["images"] == []
    assert not (tmp_path / "not-yet").exists()
