"""file_tree: a directory read on one side, written on the other only where it differs, bad paths refused first."""

import base64
import os
import stat

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import file_tree


def entry(path, content=b"x", mode="0644"):
    return {"path": path, "mode": mode, "content": base64.b64encode(content).decode()}


def make_src(tmp_path):
    src = tmp_path / "src"
    (src / "etc" / "sv" / "a").mkdir(parents=True)
    (src / "etc" / "passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    (src / "etc" / "sv" / "a" / "run").write_bytes(b"#!/bin/sh\nexec a\n")
    os.chmod(src / "etc" / "sv" / "a" / "run", 0o755)
    (src / "init").write_bytes(b"")
    return src


def test_a_tree_read_and_applied_gives_the_same_files_and_modes_and_a_second_apply_writes_nothing(tmp_path):
    src = make_src(tmp_path)
    entries = file_tree.read_tree(str(src))
    assert [e["path"] for e in entries] == ["init", "etc/passwd", "etc/sv/a/run"]
    dest = tmp_path / "dest"
    done = file_tree.apply(str(dest), entries)
    assert sorted(done["files"]) == ["etc/passwd", "etc/sv/a/run", "init"]
    assert (dest / "etc" / "passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"
    assert stat.S_IMODE(os.stat(dest / "etc" / "sv" / "a" / "run").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "init").st_mode) == 0o644
    assert file_tree.apply(str(dest), entries) == {"files": [], "dirs": []}


def test_include_reads_only_the_files_whose_name_matches(tmp_path):
    src = make_src(tmp_path)
    (src / "etc" / "cache").mkdir()
    (src / "etc" / "cache" / "x.pyc").write_bytes(b"\0")
    read = file_tree.read_tree(str(src), include=["run", "pass*"])
    assert [e["path"] for e in read] == ["etc/passwd", "etc/sv/a/run"]
    assert file_tree.read_tree(str(src), include=[]) == []
    assert len(file_tree.read_tree(str(src))) == 4


def test_only_what_differs_is_written_and_other_files_are_left(tmp_path):
    dest = tmp_path / "dest"
    file_tree.apply(str(dest), [entry("a", b"1"), entry("b", b"2")])
    (dest / "mine").write_bytes(b"kept")
    os.chmod(dest / "b", 0o600)
    done = file_tree.apply(str(dest), [entry("a", b"1"), entry("b", b"2"), entry("c/d", b"3")])
    assert done == {"files": ["b", "c/d"], "dirs": [str(dest / "c")]}
    assert (dest / "mine").read_bytes() == b"kept"
    assert stat.S_IMODE(os.stat(dest / "b").st_mode) == 0o644


def test_plan_writes_nothing(tmp_path):
    dest = tmp_path / "dest"
    todo = file_tree.plan(str(dest), [entry("x/y")])
    assert todo == {"files": ["x/y"], "dirs": [str(dest), str(dest / "x")]}
    assert not dest.exists()


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "", "a/", "a\x00b"])
def test_a_path_that_leaves_the_tree_is_refused_before_anything_is_written(tmp_path, path):
    dest = tmp_path / "dest"
    with pytest.raises(file_tree.TreeError, match="path"):
        file_tree.apply(str(dest), [entry("good"), entry(path)])
    assert not dest.exists()


def test_a_link_in_the_destination_is_not_followed(tmp_path):
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    dest.mkdir()
    os.symlink(str(outside), str(dest / "etc"))
    os.symlink(str(outside / "f"), str(dest / "f"))
    with pytest.raises(file_tree.TreeError, match="in the way"):
        file_tree.apply(str(dest), [entry("etc/passwd")])
    with pytest.raises(file_tree.TreeError, match="not a regular file"):
        file_tree.apply(str(dest), [entry("f")])
    assert os.listdir(outside) == []


@pytest.mark.parametrize("bad, message", [
    ({"path": "a", "mode": "0999", "content": ""}, "mode '0999' is not an octal mode"),
    ({"path": "a", "mode": "0644", "content": "not base64!"}, "content is not base64"),
    ("a", "files\\[0\\] is not a mapping"),
])
def test_a_bad_entry_is_named(tmp_path, bad, message):
    with pytest.raises(file_tree.TreeError, match=message):
        file_tree.apply(str(tmp_path / "dest"), [bad])


def test_a_path_given_twice_is_refused(tmp_path):
    with pytest.raises(file_tree.TreeError, match="given twice"):
        file_tree.plan(str(tmp_path), [entry("a"), entry("a")])


def test_reading_refuses_a_link_to_a_directory_and_a_missing_source(tmp_path):
    src = make_src(tmp_path)
    os.symlink(str(src / "etc"), str(src / "loop"))
    with pytest.raises(file_tree.TreeError, match="link to a directory"):
        file_tree.read_tree(str(src))
    with pytest.raises(file_tree.TreeError, match="is not a directory"):
        file_tree.read_tree(str(tmp_path / "missing"))


def test_a_fixed_mode_replaces_every_files_own(tmp_path):
    entries = file_tree.read_tree(str(make_src(tmp_path)), 0o600)
    assert {e["mode"] for e in entries} == {"0600"}


NAMES = st.text(alphabet="abcdef", min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.lists(NAMES, min_size=1, max_size=3).map("/".join), st.binary(max_size=64), max_size=8))
def test_any_tree_applied_twice_holds_its_files_and_the_second_writes_nothing(tmp_path_factory, tree):
    dest = tmp_path_factory.mktemp("tree")
    # A path that is also another's directory cannot be both.
    paths = sorted(tree)
    tree = {p: c for p, c in tree.items() if not any(q.startswith(p + "/") for q in paths)}
    entries = [entry(p, c) for p, c in sorted(tree.items())]
    file_tree.apply(str(dest), entries)
    for path, content in tree.items():
        assert (dest / path).read_bytes() == content
    assert file_tree.apply(str(dest), entries) == {"files": [], "dirs": []}
