"""The servers and the node agree on a configuration.

The servers check each node's configuration against the image it boots (the
manifest's system section); the node checks the rendered file against its
root with the init's own shell functions (rootfs/usr/lib/orion/config.sh,
run here by busybox sh on a root made from the same system section). What
the servers accept, the node applies; what the node would refuse, the
servers refuse first, naming node, field and value.
"""

import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import image_store
from ansible_collections.orionos.diskless.plugins.module_utils import node_config as engine

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
CONFIG_SH = os.path.join(ROOT, "roles", "lfs_system", "files", "rootfs", "usr", "lib", "orion", "config.sh")
SHELL = shutil.which("busybox") and [shutil.which("busybox"), "sh"] or ["sh"]

PASSWD = "root:x:0:0:root:/root:/bin/sh\nsshd:x:74:74:sshd:/var/empty:/bin/false\nnobody:x:65534:65534::/:/bin/false\n"
GROUP = "root:x:0:\nsshd:x:74:\nwheel:x:10:\nnogroup:x:65534:\n"
SYSTEM = image_store.system_of_root(PASSWD, GROUP, ["/bin/sh"], ["crond", "dropbear", "syslogd"])


@pytest.fixture(scope="module", name="root")
def fixture_root(tmp_path_factory):
    """A root with the accounts, shells and services of SYSTEM."""
    root = tmp_path_factory.mktemp("root")
    (root / "etc" / "sv").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "bin").mkdir()
    (root / "bin" / "sh").write_text("#!/bin/sh\n")
    (root / "bin" / "sh").chmod(0o755)
    for service in SYSTEM["services"]:
        (root / "etc" / "sv" / service).mkdir()
    return str(root)


def node_check(root, text, tmp_path):
    path = os.path.join(str(tmp_path), "n1.conf")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    out = subprocess.run(SHELL + ["-c", '. "$0"; orion_config_check "$1" "$2"', CONFIG_SH, path, root],
                         capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def server_check(tree):
    problems = engine.check_tree(tree, ["n1"], ["compute"])
    if problems:
        return problems, None
    nodes = [{"name": "n1", "groups": ["compute"]}]
    problems = engine.check_images(tree, nodes, {"n1": [("v1", SYSTEM)]})
    files, _sources = engine.render_all(tree, nodes)
    return problems, files["n1.conf"].decode()


def tree_of(**fragment):
    return {"nodes": {"n1": {"10-test": fragment}}}


# What the node would refuse: each refused by the servers too, naming the field.
REFUSED = [
    (tree_of(users=[{"name": "sshd", "uid": 2000}]), "users.sshd: sshd is an account of the image"),
    (tree_of(users=[{"name": "alice", "uid": 65534}]), "uid: 65534 is not a number from 1000"),
    (tree_of(users=[{"name": "alice", "uid": 74}]), "uid: 74 is not a number from 1000 to 65533"),
    (tree_of(users=[{"name": "alice", "uid": 1001, "shell": "/bin/bash"}]),
     "users.alice.shell: '/bin/bash' is not a shell of the image (/bin/sh)"),
    (tree_of(users=[{"name": "alice", "uid": 1001, "home": "/etc"}]), "home: '/etc' is not a directory under /home/"),
    (tree_of(users=[{"name": "alice", "uid": 1001, "home": "/root/alice"}]), "is not a directory under /home/"),
    (tree_of(files=[{"path": "/etc/x", "content": "x", "owner": "mallory"}]),
     "files /etc/x: owner 'mallory' is not an account of the image or of the configuration"),
    (tree_of(files=[{"path": "/etc/x", "content": "x", "group": "staff"}]),
     "files /etc/x: group 'staff' is not a group of the image or of the configuration"),
    (tree_of(services=["nginx"]), "services: 'nginx' is not a service of the image (crond, dropbear, syslogd)"),
]


@pytest.mark.parametrize("tree, expected", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_what_the_node_refuses_the_servers_refuse_first(tree, expected, root, tmp_path):
    problems, text = server_check(tree)
    assert any(expected in p for p in problems), problems
    if text is not None:
        # Rendered anyway (the image checks come after the format), the node refuses it too.
        assert node_check(root, text, tmp_path)


ACCEPTED = [
    tree_of(users=[{"name": "alice", "uid": 1001, "ssh_keys": ["ssh-ed25519 AAAAC3Nza alice@site"]}]),
    tree_of(users=[{"name": "alice", "uid": 1001}], files=[{"path": "/home/alice/x", "content": "x",
                                                            "owner": "alice", "group": "alice"}]),
    tree_of(files=[{"path": "/etc/x", "content": "x", "owner": "sshd", "group": "wheel", "mode": "0600"}]),
    tree_of(services=["crond"], hostname="other"),
]


@pytest.mark.parametrize("tree", ACCEPTED, ids=[str(i) for i in range(len(ACCEPTED))])
def test_what_the_servers_accept_the_node_accepts(tree, root, tmp_path):
    problems, text = server_check(tree)
    assert problems == []
    assert node_check(root, text, tmp_path) == []


NAMES = st.sampled_from(["alice", "bob", "sshd", "root", "nobody"])
USERS = st.lists(st.fixed_dictionaries({"name": NAMES, "uid": st.sampled_from([74, 999, 1000, 1001, 65533, 65534]),
                                        "shell": st.sampled_from(["/bin/sh", "/bin/false", "/bin/bash"])}),
                 max_size=3, unique_by=lambda u: u["name"])
FILES = st.lists(st.fixed_dictionaries({"path": st.sampled_from(["/etc/a", "/var/b"]), "content": st.just("x"),
                                        "owner": NAMES, "group": st.sampled_from(["root", "wheel", "staff", "alice"])}),
                 max_size=2, unique_by=lambda f: f["path"])
SERVICES = st.lists(st.sampled_from(["crond", "nginx", "syslogd"]), max_size=2, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=USERS, files=FILES, services=SERVICES)
def test_the_servers_accept_exactly_what_the_node_applies(users, files, services, root, tmp_path):
    users = [{k: v for k, v in u.items() if u["name"] != "root" or k == "name"} for u in users]
    problems, text = server_check(tree_of(users=users, files=files, services=services))
    if text is None:
        return  # refused by the format checks, before any image is looked at
    node = node_check(root, text, tmp_path)
    assert (problems == []) == (node == []), (problems, node)
