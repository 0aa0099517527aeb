"""Writers of a served tree: one at a time, removing only what they made.

Real processes write the same tree at once and are killed midway; a reader
that looks all the time must only ever see one complete set.
"""

import multiprocessing
import os
import signal
import time

import pytest

from ansible_collections.orionos.diskless.plugins.module_utils import tree_swap


def file_set(tag, count=200):
    files = {"n%03d.ipxe" % i: ("%s %d\n" % (tag, i)).encode() * 20 for i in range(count)}
    files.update({"aa-bb-cc-00-00-%02x.ipxe" % i: ("link", "n%03d.ipxe" % i) for i in range(count)})
    files["resolution.json"] = ("{\"set\": \"%s\"}\n" % tag).encode()
    return files


def writer(dest, tag, rounds):
    for _round in range(rounds):
        tree_swap.swap_tree(dest, file_set(tag))
        tree_swap.swap_tree(dest, file_set(tag + "-2"))


def test_two_writers_at_once_always_leave_a_complete_set(tmp_path):
    dest = str(tmp_path / "nodes")
    tree_swap.swap_tree(dest, file_set("a"))
    sets = {tag: file_set(tag) for tag in ("a", "a-2", "b", "b-2")}
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=writer, args=(dest, tag, 6)) for tag in ("a", "b")]
    for proc in procs:
        proc.start()
    seen = set()
    checks = 0
    while any(proc.is_alive() for proc in procs):
        # As a server answers a request: dest is resolved, then files are read
        # from the generation it points at.
        target = os.path.join(str(tmp_path), os.readlink(dest))
        try:
            served = tree_swap.read_tree(target)
        except OSError:
            served = None
        if os.path.join(str(tmp_path), os.readlink(dest)) != target:
            continue  # superseded while it was read (and perhaps being removed): only a current one must be whole
        assert served is not None and os.path.isdir(target), "dest points at a removed directory"
        matching = [tag for tag, files in sets.items() if files == served]
        assert matching, "the served tree is not one complete set (%d files)" % len(served)
        seen.add(matching[0])
        checks += 1
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0
    assert tree_swap.read_tree(dest) in sets.values()
    assert os.path.isdir(tree_swap.current_target(dest))
    # Nothing is left beside it but the link, its generation and the lock.
    assert sorted(os.listdir(tmp_path)) == sorted(["nodes", ".nodes.lock", os.readlink(dest)])
    assert checks > 0 and len(seen) >= 2, (checks, seen)


def killed_writer(dest, stage, ready):
    def hook(at):
        if at == stage:
            ready.set()
            time.sleep(60)
    tree_swap.swap_tree(dest, file_set("new"), hook=hook)


@pytest.mark.parametrize("stage", ["locked", "written", "flushed", "swapped"])
def test_a_writer_killed_at_any_stage_leaves_the_old_or_the_new_set_and_no_lock(tmp_path, stage):
    dest = str(tmp_path / "nodes")
    tree_swap.swap_tree(dest, file_set("old"))
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=killed_writer, args=(dest, stage, ready))
    proc.start()
    assert ready.wait(30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    served = tree_swap.read_tree(dest)
    assert served == file_set("new" if stage == "swapped" else "old")
    # The lock went with the killed process: the next run does not wait.
    started = time.monotonic()
    assert tree_swap.swap_tree(dest, file_set("next")) is True
    assert time.monotonic() - started < 10
    assert sorted(os.listdir(tmp_path)) == sorted(["nodes", ".nodes.lock", os.readlink(dest)])


def test_a_directory_it_did_not_make_is_refused_and_kept(tmp_path):
    dest = tmp_path / "nodes"
    dest.mkdir()
    (dest / "site-notes.txt").write_text("the operator's own file\n")
    with pytest.raises(tree_swap.TreeError, match=r"nodes is a directory this module did not make \(it holds 1 "
                                                  r"entries, such as site-notes.txt\)"):
        tree_swap.swap_tree(str(dest), file_set("x"))
    assert (dest / "site-notes.txt").read_text() == "the operator's own file\n"
    assert sorted(os.listdir(tmp_path)) == [".nodes.lock", "nodes"]


def test_a_link_to_something_else_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep").write_text("keep\n")
    os.symlink("elsewhere", str(tmp_path / "nodes"))
    with pytest.raises(tree_swap.TreeError, match="is a link to elsewhere, not to a generation this module wrote"):
        tree_swap.swap_tree(str(tmp_path / "nodes"), file_set("x"))
    assert (tmp_path / "elsewhere" / "keep").read_text() == "keep\n"


def test_a_file_at_dest_is_refused(tmp_path):
    (tmp_path / "nodes").write_text("x")
    with pytest.raises(tree_swap.TreeError, match="exists and is not a directory"):
        tree_swap.check_dest(str(tmp_path / "nodes"))


def test_clean_up_removes_only_its_own_generations(tmp_path):
    dest = str(tmp_path / "nodes")
    tree_swap.swap_tree(dest, file_set("a"))
    # Things beside dest that are not this scheme's: kept whatever their names.
    keep = {".nodes-backup": "dir", ".nodes-0123456789abcdef.orig": "dir", ".nodes-notes": "file",
            "nodes.old": "dir", ".nodes-0123456789ABCDEF": "dir"}
    for name, kind in keep.items():
        if kind == "dir":
            os.mkdir(str(tmp_path / name))
            (tmp_path / name / "f").write_text(name)
        else:
            (tmp_path / name).write_text(name)
    # Leftovers of killed runs: removed.
    os.mkdir(str(tmp_path / ".nodes-00000000000000aa.tmp"))
    os.mkdir(str(tmp_path / ".nodes-00000000000000bb"))
    os.symlink(".nodes-00000000000000bb", str(tmp_path / ".nodes.link"))
    assert tree_swap.swap_tree(dest, file_set("b")) is True
    assert sorted(os.listdir(tmp_path)) == sorted(list(keep) + ["nodes", ".nodes.lock", os.readlink(dest)])
    for name, kind in keep.items():
        path = tmp_path / name / "f" if kind == "dir" else tmp_path / name
        assert path.read_text() == name


def test_a_writer_waits_for_the_lock_and_says_so_when_it_is_held_too_long(tmp_path):
    dest = str(tmp_path / "nodes")
    tree_swap.swap_tree(dest, file_set("a"))
    with tree_swap.locked(dest):
        with pytest.raises(tree_swap.TreeError, match=r"another run has held the lock .*\.nodes\.lock for more than 0 s"):
            with tree_swap.locked(dest, timeout=0):
                pass
    assert tree_swap.read_tree(dest) == file_set("a")
