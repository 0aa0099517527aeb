"""Unit tests of the per-node configuration engine: checks, choice, merge, rendering."""

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import node_config as engine

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9yaW9u admin@example"
NODES = [{"name": "n1", "groups": ["compute", "orion_nodes"]}, {"name": "n2", "groups": ["compute"]},
         {"name": "n3", "groups": []}]

TREE = {
    "default": {
        "10-access": {"users": [{"name": "root", "ssh_keys": [KEY]}], "services": ["crond"]},
        "20-motd": {"files": [{"path": "/etc/motd", "content": "default\n"}]},
    },
    "groups": {"compute": {"20-motd": {"files": [{"path": "/etc/motd", "content": "compute\n"}]}}},
    "nodes": {"n1": {"20-motd": {"files": [{"path": "/etc/motd", "content": "n1\n", "mode": "0600"}]},
                     "30-tuning": {"sysctl": {"vm.swappiness": 10}, "hostname": "first"}}},
}


def lines(text):
    return text.decode().splitlines()


def motd(files, node):
    for line in lines(files[node + ".conf"]):
        if line.startswith("file /etc/motd "):
            return base64.b64decode(line.split()[-1]).decode()
    return None


def test_a_node_file_overrides_a_group_file_of_the_same_name():
    files, sources = engine.render_all(TREE, NODES)
    assert motd(files, "n1") == "n1\n"
    assert motd(files, "n2") == "compute\n"
    assert motd(files, "n3") == "default\n"
    assert sources["n1"] == {"10-access": "default", "20-motd": "node n1", "30-tuning": "node n1"}
    assert sources["n2"]["20-motd"] == "group compute"


def test_render_has_every_directive_and_a_checksum_of_the_lines_before_the_end():
    files = engine.render_all(TREE, NODES)[0]
    text = files["n1.conf"].decode()
    body, end = text.rsplit("end ", 1)
    assert hashlib.sha256(body.encode()).hexdigest() == end.strip()
    got = lines(files["n1.conf"])
    assert got[0] == "orion-config 1"
    assert "hostname first" in got
    assert "service crond" in got
    assert "sysctl vm.swappiness 10" in got
    assert "file /etc/motd 0600 root root %s" % base64.b64encode(b"n1\n").decode() in got
    assert "key root %s" % base64.b64encode(KEY.encode()).decode() in got
    # The hostname defaults to the node's name.
    assert "hostname n2" in lines(files["n2.conf"])


def test_users_come_before_their_keys_and_files():
    tree = {"nodes": {"n3": {"a": {"files": [{"path": "/home/alice/notes", "owner": "alice", "content": "x"}],
                                   "users": [{"name": "alice", "uid": 1001, "ssh_keys": [KEY]}]}}}}
    got = lines(engine.render_all(tree, NODES)[0]["n3.conf"])
    kinds = [line.split()[0] for line in got]
    assert kinds.index("user") < kinds.index("key") < kinds.index("file")
    assert "user alice 1001 /home/alice /bin/sh" in got


@pytest.mark.parametrize("tree, expected", [
    ({"groups": {"gpu": {}}}, "orion_node_config.groups: 'gpu' is not a group of the inventory"),
    ({"nodes": {"n9": {}}}, "orion_node_config.nodes: 'n9' is not a node of the inventory"),
    ({"default": {"a": {"files": [{"path": "/usr/bin/x", "content": ""}]}}},
     "orion_node_config.default.a.files[0].path: '/usr/bin/x' is not a file under /etc, /var, /root, /home, /tmp"),
    ({"default": {"a": {"files": [{"path": "/etc/../usr/x"}]}}}, "files[0].path: '/etc/../usr/x'"),
    ({"default": {"a": {"files": [{"path": "/etc/x", "mode": 644}]}}}, "files[0].mode: 644 is not an octal mode"),
    ({"default": {"a": {"users": [{"name": "Bob", "uid": 5}]}}}, "users[0].name: 'Bob' is not a user name"),
    ({"default": {"a": {"users": [{"name": "bob", "uid": 0}]}}}, "users[0].uid: 0 is not a number from 1000 to 65533"),
    ({"default": {"a": {"users": [{"name": "root", "uid": 5}]}}}, "users[0].uid: the root account is fixed"),
    ({"default": {"a": {"users": [{"name": "bob", "uid": 7, "ssh_keys": ["hello"]}]}}},
     "users[0].ssh_keys[0]: 'hello' is not one public key line"),
    ({"default": {"a": {"hostname": "bad_name"}}}, "hostname: 'bad_name' is not a host name"),
    ({"default": {"a": {"sysctl": {"vm swappiness": 1}}}}, "key 'vm swappiness' is not a sysctl name"),
    ({"default": {"a": {"mounts": [{"source": "x:/y", "target": "/scratch", "fstype": "nfs"}]}}},
     "mounts[0].target: '/scratch' is not under"),
    ({"default": {"a": {"mounts": [{"source": "x:/y", "target": "/var/x", "fstype": "ext4"}]}}},
     "mounts[0].fstype: 'ext4' is not one of nfs, nfs4, tmpfs"),
    ({"default": {"a": {"colour": "blue"}}}, "orion_node_config.default.a: unknown key 'colour'"),
    ({"default": {"a b": {}}}, "fragment name 'a b' is not a name"),
    ({"defaults": {}}, "unknown key 'defaults'"),
])
def test_each_problem_names_the_field_and_the_value(tree, expected):
    with pytest.raises(engine.ConfigError) as caught:
        engine.render_all(tree, NODES)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once():
    tree = {"default": {"a": {"hostname": "-x", "files": [{"path": "/opt/x", "mode": "9"}]}}}
    problems = engine.check_tree(tree, ["n1"], [])
    assert len(problems) == 3


def test_no_configuration_gives_each_node_its_name():
    files = engine.render_all({}, NODES)[0]
    assert lines(files["n3.conf"])[:2] == ["orion-config 1", "hostname n3"]


NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z")
CONTENT = st.text(max_size=40)


@given(default=CONTENT, group=st.none() | CONTENT, node=st.none() | CONTENT)
def test_precedence_holds_for_any_contents(default, group, node):
    tree = {"default": {"f": {"files": [{"path": "/etc/x", "content": default}]}}}
    if group is not None:
        tree["groups"] = {"compute": {"f": {"files": [{"path": "/etc/x", "content": group}]}}}
    if node is not None:
        tree["nodes"] = {"n1": {"f": {"files": [{"path": "/etc/x", "content": node}]}}}
    files = engine.render_all(tree, NODES)[0]
    want = node if node is not None else group if group is not None else default
    got = [line for line in lines(files["n1.conf"]) if line.startswith("file /etc/x ")][0].split()[-1]
    assert (base64.b64decode(got).decode() if got != "-" else "") == want


@given(contents=st.lists(st.tuples(NAMES, CONTENT), min_size=1, max_size=6))
def test_every_line_is_one_directive_with_fixed_fields(contents):
    files = [{"path": "/etc/" + name, "content": text} for name, text in contents]
    rendered = engine.render_all({"default": {"a": {"files": files}}}, NODES)[0]["n1.conf"].decode()
    for line in rendered.splitlines()[2:-1]:
        words = line.split(" ")
        assert words[0] == "file" and len(words) == 6 and all(words)
