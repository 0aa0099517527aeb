"""Hostile input to the modules that write what the boot servers serve.

Each case runs the real module (boot_policy, node_config, image) as Ansible
runs it, in its own process, against a store and served trees that a good
run wrote first. Every case must fail before anything changes: the message
names the field and quotes the bad value (cut to a bounded length), and the
whole tree (files, modes, links) is byte-identical afterwards.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(ROOT, "plugins", "modules")
SERVERS = ["10.0.0.10", "10.0.0.2"]
SYSTEM = {"users": {"root": 0, "sshd": 74}, "groups": {"root": 0, "sshd": 74}, "shells": ["/bin/sh"],
          "services": ["crond", "dropbear"]}
NODES = [{"name": "n1", "mac": "52:54:00:00:00:01", "ip": "10.0.0.101", "groups": ["compute"]},
         {"name": "n2", "mac": "52:54:00:00:00:02", "ip": "10.0.0.102", "groups": ["compute"]}]
POLICY = {"channels": {"stable": "v1"}, "rules": [], "default": {"channel": "stable"}}
CONFIG = {"default": {"10-motd": {"files": [{"path": "/etc/motd", "content": "hello\n"}]}}}


def snapshot(path):
    found = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            data = None
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    data = handle.read()
            elif stat.S_ISLNK(info.st_mode):
                data = os.readlink(full).encode()
            found[os.path.relpath(full, path)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), data)
    return found


def run_module(name, args, tmp):
    path = os.path.join(tmp, "args.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_tmpdir=tmp)}, handle)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))
    res = subprocess.run([sys.executable, os.path.join(MODULES, name + ".py"), path], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise AssertionError("module %s printed no result: %s %s" % (name, res.stdout[-2000:], res.stderr[-2000:]))


@pytest.fixture(scope="module", name="site")
def fixture_site(tmp_path_factory):
    """A store with a published image (its manifest lists its system), node scripts and configuration written."""
    base = tmp_path_factory.mktemp("site")
    root = str(base / "srv")
    src = str(base / "src")
    os.makedirs(src)
    for name in ("vmlinuz", "initramfs.img", "root.erofs"):
        with open(os.path.join(src, name), "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
    manifest = store.build_manifest(src, "v1", extra={"created": "2026-11-01T00:00:00Z", "system": SYSTEM})
    with open(os.path.join(src, store.MANIFEST), "w", encoding="utf-8") as handle:
        handle.write(store.dump_manifest(manifest))
    for sub in ("images", "boot", "config", "reports/boot"):
        os.makedirs(os.path.join(root, sub))
    tmp = str(base)
    out = run_module("image", {"root": root, "version": "v1", "src": src}, tmp)
    assert not out.get("failed"), out
    good = {"boot_policy": {"dest": root + "/boot/nodes", "store": root, "servers": SERVERS, "nodes": NODES,
                            "policy": POLICY},
            "node_config": {"dest": root + "/config/nodes", "nodes": NODES, "config": CONFIG, "store": root,
                            "table": root + "/boot/nodes/resolution.json"},
            "image": {"root": root, "version": "v1"}}
    for name in ("boot_policy", "node_config"):
        out = run_module(name, good[name], tmp)
        assert not out.get("failed") and out["changed"], out
    # A node that has not rebooted still runs v1.
    with open(os.path.join(root, "reports", "boot", "n1.json"), "w", encoding="utf-8") as handle:
        json.dump({"format": 1, "node": "n1", "result": "ok", "image": "v1"}, handle)
    # An operator's directory where a module is pointed at by mistake.
    os.makedirs(os.path.join(root, "boot", "site-files"))
    with open(os.path.join(root, "boot", "site-files", "keep.txt"), "w", encoding="utf-8") as handle:
        handle.write("the operator's\n")
    return {"root": root, "src": src, "good": good, "tmp": tmp}


def node(**fields):
    return [dict(NODES[0], **fields), NODES[1]]


LONG = "x" * 5000
# (module, changes to the good arguments, what the message must say)
CASES = [
    # boot_policy: names that become paths, links, DHCP lines or script tokens
    ("boot_policy", {"nodes": node(name="../../etc/passwd")}, "name '../../etc/passwd' is not a valid host name"),
    ("boot_policy", {"nodes": node(name="52-54-00-00-00-02")}, "looks like a MAC address"),
    ("boot_policy", {"nodes": node(name="12h")}, "name '12h' is read by dnsmasq as a lease time or keyword"),
    ("boot_policy", {"nodes": node(name="infinite")}, "is read by dnsmasq as a lease time or keyword"),
    ("boot_policy", {"nodes": node(name=LONG)}, "name 'xxxxxxxx"),
    ("boot_policy", {"nodes": node(name="n1\nshell")}, "is not a valid host name"),
    ("boot_policy", {"nodes": node(kernel_args="quiet\ninitrd=evil")}, "node n1: kernel_args: contains a line break"),
    ("boot_policy", {"nodes": node(kernel_args=["orion.node=n2"])}, "'orion.node=n2' is reserved: the boot script sets"),
    ("boot_policy", {"nodes": node(kernel_args=["initrd=evil.img"])}, "'initrd=evil.img' is reserved"),
    ("boot_policy", {"nodes": node(kernel_args=["orion.paths=6.6.6.6"])},
     "'orion.paths=6.6.6.6' is reserved: orion.* arguments are the boot servers'"),
    ("boot_policy", {"nodes": node(kernel_args=["a%04d=%s" % (i, "y" * 40) for i in range(60)])},
     "node n1: the kernel command line for image v1 is"),
    ("boot_policy", {"nodes": node(kernel_args=["${evil}"])}, "has characters that are not allowed"),
    ("boot_policy", {"nodes": node(ip="10.0.0.101; reboot")}, "ip '10.0.0.101; reboot' is not"),
    ("boot_policy", {"nodes": node(labels={"rack": "r1\nshell"})}, "label rack value 'r1\\nshell' is not allowed"),
    ("boot_policy", {"nodes": node(groups=["compute;x"])}, "group 'compute;x' is not allowed"),
    ("boot_policy", {"url_path": "/boot/images\n#!ipxe"}, "url_path: '/boot/images\\n#!ipxe' is not a URL path"),
    ("boot_policy", {"url_path": "/boot/../../etc"}, "url_path: '/boot/../../etc' is not a URL path"),
    ("boot_policy", {"servers": ["10.0.0.2\nshell"]}, "servers: '10.0.0.2\\nshell' is not an address"),
    ("boot_policy", {"kernel_name": "vmlinuz\nshell"}, "kernel_name: 'vmlinuz\\nshell' is not a file name"),
    ("boot_policy", {"failure_delay": 10 ** 9}, "failure_delay 1000000000 is not in 0-86400"),
    ("boot_policy", {"kernel_args": ["orion.image=v9"]}, "'orion.image=v9' is reserved"),
    ("boot_policy", {"policy": dict(POLICY, rules=[{"name": "r", "match": {"group": "compute"},
                                                   "kernel_args": ["orion.servers=6.6.6.6"]}])}, "is reserved"),
    ("boot_policy", {"policy": dict(POLICY, channels={"stable": "../../x"})}, "'../../x'"),
    ("boot_policy", {"policy": dict(POLICY, rules=[{"name": "r", "match": {}, "channel": "stable",
                                                   "profile": "a;reboot"}])}, "profile 'a;reboot' is not allowed"),
    ("boot_policy", {"dest": "SITE/boot/site-files"}, "site-files is a directory this module did not make"),
    # node_config: names, paths, homes, accounts, tokens
    ("node_config", {"nodes": node(name="../../etc/cron.d/x")}, "nodes[0].name '../../etc/cron.d/x' is not a valid"),
    ("node_config", {"config": {"default": {"a": {"files": [{"path": "/etc/../root/.ssh/authorized_keys",
                                                             "content": "x"}]}}}}, "files[0].path"),
    ("node_config", {"config": {"default": {"a": {"users": [{"name": "eve", "uid": 1001, "home": "/etc"}]}}}},
     "users[0].home: '/etc' is not a directory under /home/"),
    ("node_config", {"config": {"default": {"a": {"users": [{"name": "eve", "uid": 0}]}}}},
     "users[0].uid: 0 is not a number from 1000 to 65533"),
    ("node_config", {"config": {"default": {"a": {"users": [{"name": "sshd", "uid": 2000}]}}}},
     "node n1 (image v1): users.sshd: sshd is an account of the image"),
    ("node_config", {"config": {"default": {"a": {"services": ["nginx"]}}}},
     "node n1 (image v1): services: 'nginx' is not a service of the image (crond, dropbear)"),
    ("node_config", {"config": {"default": {"a": {"files": [{"path": "/etc/x", "content": "x",
                                                             "owner": "mallory"}]}}}},
     "owner 'mallory' is not an account of the image"),
    ("node_config", {"config": {"default": {"a": {"users": [{"name": "root", "ssh_keys": [
        "ssh-ed25519 AAAA a\nssh-rsa BBBB evil"]}]}}}}, "ssh_keys[0]"),
    ("node_config", {"config": {"default": {"a": {"files": [{"path": "/etc/x", "content": "x",
                                                             "mode": "0644\nfile"}]}}}}, "files[0].mode"),
    ("node_config", {"config": {"default": {"a": {"sysctl": {"vm.swappiness": "1\nfile /etc/shadow"}}}}},
     "sysctl.vm.swappiness"),
    ("node_config", {"config": {"default": {"a": {"mounts": [{"source": "a b", "target": "/home/x",
                                                              "fstype": "nfs"}]}}}}, "mounts[0].source"),
    ("node_config", {"config": {"default": {"a": {"hostname": "n1;reboot"}}}}, "hostname: 'n1;reboot'"),
    ("node_config", {"config": {"default": {"../x": {}}}}, "fragment name '../x' is not a name"),
    ("node_config", {"dest": "SITE/boot/site-files"}, "site-files is a directory this module did not make"),
    # image: versions, sources, states
    ("image", {"version": "../escape", "src": "SRC"}, "'../escape'"),
    ("image", {"version": "v2\nx", "src": "SRC"}, "version"),
    ("image", {"version": "v1", "state": "absent"}, "node n1 runs it (its last report)"),
    ("image", {"version": "v2", "src": "SRC", "created": "yesterday"}, "created"),
    ("image", {"state": "pruned", "keep": 0, "version": None}, "keep: 0 must be a whole number"),
]


@pytest.mark.parametrize("module, changes, expected", CASES, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CASES)])
def test_hostile_input_fails_before_any_change_naming_the_field(site, module, changes, expected):
    args = dict(site["good"][module])
    for key, value in changes.items():
        if isinstance(value, str):
            value = value.replace("SITE", site["root"]).replace("SRC", site["src"])
        args[key] = value
    args = {k: v for k, v in args.items() if v is not None}
    before = snapshot(site["root"])
    out = run_module(module, args, site["tmp"])
    assert out.get("failed") is True, out
    message = out.get("msg", "")
    assert expected in message, message
    assert len(message) < 4000, "the message quotes too much (%d characters)" % len(message)
    assert snapshot(site["root"]) == before, "a refused run changed what is served"


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30
