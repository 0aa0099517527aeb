"""The lab's end-to-end tests, run against the lab `make lab` brought up
(tests/rig/lab-check.sh runs them after its own checks, before `make
lab-down`): two boot servers as containers and diskless QEMU nodes booted from
them, which mount their root over NFS from both and keep running when one is
killed.

The servers, nodes, floating address, network and key are read from the lab
inventory (inventories/lab), as the playbooks read them. Each node is the QEMU
guest the lab_nodes role started (TCG, the iPXE option ROM of Debian's
ipxe-qemu, a tap on the lab network's bridge, its serial console in
/var/tmp/orion-lab-nodes/<name>.console); a test that boots a node again stops
that guest and starts it the same way (so a reboot inside the guest restarts it
in the same QEMU, and a poweroff ends QEMU), and `make lab-down` stops it too.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import testinfra
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "inventories", "lab")
INVENTORY = os.path.join(LAB, "hosts.yml")
NODES_DIR = "/var/tmp/orion-lab-nodes"
REPORTS = "/srv/orion/reports/boot"
BOOT_TIMEOUT = int(os.environ.get("ORION_LAB_BOOT_TIMEOUT", "600"))


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _lab():
    hosts = _read(INVENTORY)["all"]["children"]
    every = _read(os.path.join(LAB, "group_vars", "all.yml"))
    on_servers = _read(os.path.join(LAB, "group_vars", "orion_boot_servers.yml"))
    servers = {name: host["boot_server_address"] for name, host in hosts["orion_boot_servers"]["hosts"].items()}
    nodes = {}
    for group in hosts["orion_nodes"]["children"].values():
        for name, host in group["hosts"].items():
            nodes[name] = (host["orion_node_mac"], host["orion_node_ip"])
    return servers, nodes, on_servers["orion_vip"], every["lab_hosts_network"]["name"], every["orion_lab_key"]


SERVERS, NODES, VIP, NETWORK, KEY = _lab()
# Measurements a test wants shown whatever pytest captures (in the summary at the end).
FIGURES = []
NAME_OF = {address: name for name, address in SERVERS.items()}
FIRST, SECOND = sorted(NODES)[:2]


def playbook(name, *extra):
    """Run a playbook of the collection against the lab inventory."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", name), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=1200)


def host(name):
    return testinfra.get_host("podman://" + name)


def ssh_cmd(ip, script):
    return ["ssh", "-i", KEY, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@" + ip, script]


def reports(name, servers=tuple(SERVERS)):
    """{server: the node's boot report in its store} (a node's reports are removed before it boots again)."""
    found = {}
    for server in servers:
        out = subprocess.run(["podman", "exec", server, "cat", "%s/%s.json" % (REPORTS, name)],
                             capture_output=True, text=True, check=False)
        if out.returncode == 0:
            found[server] = json.loads(out.stdout)
    return found


def report(name, servers=tuple(SERVERS)):
    """The node's boot report from any server that has it (None: none yet)."""
    found = reports(name, servers)
    return next(iter(found.values())) if found else None


def clear_reports(name):
    for server in SERVERS:
        subprocess.run(["podman", "exec", server, "rm", "-f", "%s/%s.json" % (REPORTS, name)],
                       capture_output=True, check=False)


def tap_of(name):
    """The node's tap, named as the lab_nodes role names it."""
    return "orl" + hashlib.md5(name.encode()).hexdigest()[:10]


class Node:
    """One diskless QEMU node of the lab, on the lab network through its tap."""

    def __init__(self, name, workdir=NODES_DIR):
        self.name = name
        self.mac, self.ip = NODES[name]
        self.tap = tap_of(name)
        self.console = os.path.join(workdir, "%s.console" % name)
        self.pidfile = os.path.join(workdir, "%s.pid" % name)
        self.started = time.monotonic()
        self.report = None

    def pid(self):
        """The PID of the node's QEMU if it runs (checked against its tap, as lab_nodes checks it)."""
        try:
            with open(self.pidfile, encoding="ascii") as handle:
                pid = int(handle.read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                running = ("ifname=%s," % self.tap).encode() in handle.read()
        except (OSError, ValueError):
            return None
        return pid if running else None

    def boot_args(self):
        """How the node boots: from the network, with the NIC's iPXE option ROM."""
        return ["-boot", "n", "-device", "virtio-net-pci,netdev=n0,mac=%s" % self.mac,
                "-device", "i6300esb", "-action", "watchdog=reset"]

    def start(self, clear=True):
        """Start the node's QEMU (in the background, with its pid file), its reports cleared first
        (clear=False keeps them: the node reads its last one back at boot)."""
        bridge = json.loads(subprocess.check_output(["podman", "network", "inspect", NETWORK]))[0]["network_interface"]
        subprocess.run(["ip", "link", "del", self.tap], capture_output=True, check=False)
        subprocess.run(["ip", "tuntap", "add", "dev", self.tap, "mode", "tap"], check=True)
        subprocess.run(["ip", "link", "set", self.tap, "master", bridge, "up"], check=True)
        if clear:
            clear_reports(self.name)
        os.makedirs(os.path.dirname(self.console), exist_ok=True)
        with open(self.console, "wb"):
            pass
        subprocess.run(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-smp", "1", "-display", "none", "-machine",
             "graphics=off", "-name", self.name, "-daemonize", "-pidfile", self.pidfile,
             "-serial", "file:%s" % self.console, "-monitor", "none",
             "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % self.tap] + self.boot_args(),
            stdin=subprocess.DEVNULL, capture_output=True, check=True)
        self.started = time.monotonic()
        return self

    def text(self):
        try:
            with open(self.console, "rb") as handle:
                return handle.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return ""

    def wait_up(self):
        """Wait for the node's console marker and its boot report; return the report."""
        while time.monotonic() - self.started < BOOT_TIMEOUT:
            assert self.pid() is not None, "QEMU of %s ended:\n%s" % (self.name, self.text()[-4000:])
            if "ORIONOS-BOOT-FAILED" in self.text():
                raise AssertionError("%s failed to boot:\n%s" % (self.name, self.text()[-4000:]))
            if "ORIONOS-NODE-UP" in self.text():
                got = report(self.name)
                if got is not None:
                    print("%s: up after %.0f s, report %s" % (self.name, time.monotonic() - self.started, got))
                    self.report = got
                    return got
            time.sleep(2)
        raise AssertionError("%s not up within %d s:\n%s" % (self.name, BOOT_TIMEOUT, self.text()[-4000:]))

    def run(self, script, check=True, timeout=120):
        out = subprocess.run(ssh_cmd(self.ip, script), capture_output=True, text=True, check=False, timeout=timeout)
        if check:
            assert out.returncode == 0, "%s: %r failed (%d): %s%s" % (
                self.name, script, out.returncode, out.stdout[-2000:], out.stderr[-2000:])
        return out

    def stop(self):
        pid = self.pid()
        if pid is not None:
            os.kill(pid, 9)
            deadline = time.monotonic() + 30
            while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        subprocess.run(["ip", "link", "del", self.tap], capture_output=True, check=False)


@pytest.fixture(scope="session")
def servers():
    return {name: host(name) for name in SERVERS}


@pytest.fixture(scope="session")
def nodes():
    """The lab's nodes, up (make lab waited for their boot reports), with their reports."""
    up = {}
    for name in NODES:
        node = Node(name)
        assert node.pid() is not None, "the lab node %s does not run: make lab first" % name
        node.report = report(name)
        assert node.report is not None, "the lab node %s has no boot report" % name
        up[name] = node
    return up


def start_server(name):
    """Start a killed server again and wait until its NFS and HTTP answer."""
    subprocess.run(["podman", "start", name], check=True, capture_output=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        out = subprocess.run(["podman", "exec", name, "systemctl", "is-active", "nfs-ganesha", "nginx"],
                             capture_output=True, text=True, check=False)
        if out.stdout.split() == ["active", "active"]:
            return
        time.sleep(3)
    raise AssertionError("%s did not come back: %s" % (name, out.stdout))


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
