"""The podman_exec connection: the shell command reaches the container as the
same words, whichever way it enters; a kept identity of the container's first
process is trusted only while that process is the same."""

import shlex

import pytest
from hypothesis import given, strategies as st

from ansible_collections.orionos.diskless.plugins.connection.podman_exec import (
    copy_argv, exec_argv, identity, nsenter_argv, start_time, still_running)

WORDS = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                         min_size=1), min_size=1, max_size=6)


@given(WORDS)
def test_the_container_gets_the_words_of_the_command(words):
    argv = exec_argv("podman", "srv1", shlex.join(words))
    assert argv[:3] == ["podman", "exec", "srv1"]
    assert argv[3:] == words


def test_stdin_is_passed_only_for_pipelined_modules():
    assert exec_argv("podman", "srv1", "python3 -", stdin=True) == ["podman", "exec", "-i", "srv1", "python3", "-"]
    assert "-i" not in exec_argv("podman", "srv1", "python3 -")


def test_the_user_comes_before_the_container():
    argv = exec_argv("podman", "srv1", "id -u", user="nobody")
    assert argv == ["podman", "exec", "--user", "nobody", "srv1", "id", "-u"]


def test_a_copy_names_both_ends():
    assert copy_argv("podman", "/tmp/a", "srv1:/tmp/b") == ["podman", "cp", "/tmp/a", "srv1:/tmp/b"]


@given(WORDS, st.integers(min_value=1, max_value=4194304))
def test_nsenter_joins_the_target_and_passes_the_same_words(words, pid):
    argv = nsenter_argv("/usr/bin/nsenter", pid, shlex.join(words))
    assert argv[:3] == ["/usr/bin/nsenter", "--target", str(pid)]
    # The namespaces and the target's root and working directory, then the command as it was given.
    assert argv[3:argv.index("--")] == ["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd"]
    assert argv[argv.index("--") + 1:] == words


def fake_proc(tmp_path, pid, comm, start):
    (tmp_path / str(pid)).mkdir()
    # The fields of proc(5) stat: pid (comm) state, then 17 more before the start time (field 22).
    fields = ["S"] + ["0"] * 18 + [str(start), "0", "0"]
    (tmp_path / str(pid) / "stat").write_text("%d (%s) %s\n" % (pid, comm, " ".join(fields)))


@pytest.mark.parametrize("comm", ["systemd", "a (b) c", "))", "x y"])
def test_the_start_time_is_read_after_the_command_name_whatever_it_holds(tmp_path, comm):
    fake_proc(tmp_path, 42, comm, 123456)
    assert start_time(42, proc=str(tmp_path)) == 123456
    assert start_time(43, proc=str(tmp_path)) is None


def inspected(pid=42, running=True, privileged=True):
    return {"State": {"Running": running, "Pid": pid}, "HostConfig": {"Privileged": privileged},
            "Config": {"Env": ["PATH=/usr/sbin:/usr/bin", "container=podman", "EMPTY=", "EQ=a=b"]}}


def test_the_identity_holds_the_process_and_the_environment_of_the_container(tmp_path):
    fake_proc(tmp_path, 42, "systemd", 777)
    got = identity(inspected(), proc=str(tmp_path))
    assert got == {"pid": 42, "start": 777, "privileged": True,
                   "env": {"PATH": "/usr/sbin:/usr/bin", "container": "podman", "EMPTY": "", "EQ": "a=b"}}
    assert still_running(got, proc=str(tmp_path))


def test_a_stopped_or_gone_container_has_no_identity(tmp_path):
    fake_proc(tmp_path, 42, "systemd", 777)
    assert identity(inspected(running=False), proc=str(tmp_path)) is None
    assert identity(inspected(pid=0), proc=str(tmp_path)) is None
    # Running by podman's word, but its first process is gone already.
    assert identity(inspected(pid=44), proc=str(tmp_path)) is None


def test_a_kept_identity_is_stale_once_the_process_is_another(tmp_path):
    fake_proc(tmp_path, 42, "systemd", 777)
    assert not still_running({"pid": 42, "start": 776}, proc=str(tmp_path))
    assert not still_running({"pid": 41, "start": 777}, proc=str(tmp_path))
    assert not still_running({}, proc=str(tmp_path))
    assert not still_running(None, proc=str(tmp_path))
