"""The command lines of the podman_exec connection: the shell command reaches the container as the same words."""

import shlex

from hypothesis import given, strategies as st

from ansible_collections.orionos.diskless.plugins.connection.podman_exec import copy_argv, exec_argv

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
