"""Fixtures for the e2e scenario: diskless QEMU nodes booting from two boot servers.

Each node is a QEMU guest (TCG) with the iPXE option ROM of Debian's
ipxe-qemu, on the scenario network through a tap on its bridge. Nothing is
handed to it but its MAC address: it PXE-boots from the servers.
"""

import json
import os
import subprocess
import sys
import time

import pytest
import testinfra

SERVERS = {"orion-e2e-srv1": "10.231.4.2", "orion-e2e-srv2": "10.231.4.3"}
NAME_OF = {address: name for name, address in SERVERS.items()}
VIP = "10.231.4.10"
NETWORK = "orion-e2e"
NODES = {"e2enode01": ("52:54:00:0d:04:01", "10.231.4.101"), "e2enode02": ("52:54:00:0d:04:02", "10.231.4.102")}
KEY = "/var/tmp/orion-e2e/id_ed25519"
REPORTS = "/srv/orion/reports/boot"
BOOT_TIMEOUT = int(os.environ.get("ORION_E2E_BOOT_TIMEOUT", "600"))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, "molecule", "e2e", "inventory", "hosts.yml")


def playbook(name, *extra):
    """Run a playbook of the collection against the scenario inventory."""
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
    """{server: the node's boot report in its store} (the reports are removed before each boot)."""
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


class Node:
    """One diskless QEMU node on the scenario network."""

    def __init__(self, name, workdir):
        self.name = name
        self.mac, self.ip = NODES[name]
        self.tap = "ore2etap%s" % name[-1]
        self.console = workdir / ("%s.console" % name)
        self.qemu = None

    def start(self):
        bridge = json.loads(subprocess.check_output(["podman", "network", "inspect", NETWORK]))[0]["network_interface"]
        subprocess.run(["ip", "link", "del", self.tap], capture_output=True, check=False)
        subprocess.run(["ip", "tuntap", "add", "dev", self.tap, "mode", "tap"], check=True)
        subprocess.run(["ip", "link", "set", self.tap, "master", bridge, "up"], check=True)
        clear_reports(self.name)
        self.console.write_bytes(b"")
        self.qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-smp", "1", "-display", "none", "-machine", "graphics=off",
             "-no-reboot", "-serial", "file:%s" % self.console, "-monitor", "none",
             "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % self.tap] + self.boot_args(),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.started = time.monotonic()
        return self

    def boot_args(self):
        """How the node boots: from the network, with the NIC's iPXE option ROM."""
        return ["-boot", "n", "-device", "virtio-net-pci,netdev=n0,mac=%s" % self.mac]

    def text(self):
        return self.console.read_text(errors="replace").replace("\r", "") if self.console.exists() else ""

    def wait_up(self):
        """Wait for the node's console marker and its boot report; return the report."""
        while time.monotonic() - self.started < BOOT_TIMEOUT:
            assert self.qemu.poll() is None, "QEMU of %s ended:\n%s" % (self.name, self.text()[-4000:])
            if "ORIONOS-BOOT-FAILED" in self.text():
                raise AssertionError("%s failed to boot:\n%s" % (self.name, self.text()[-4000:]))
            if "ORIONOS-NODE-UP" in self.text():
                got = report(self.name)
                if got is not None:
                    print("%s: up after %.0f s of QEMU, report %s" % (self.name, time.monotonic() - self.started, got))
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
        if self.qemu is not None:
            self.qemu.kill()
            self.qemu.wait()
            self.qemu = None
        subprocess.run(["ip", "link", "del", self.tap], capture_output=True, check=False)


@pytest.fixture(scope="session")
def servers():
    return {name: host(name) for name in SERVERS}


@pytest.fixture(scope="session")
def nodes(tmp_path_factory):
    """Both nodes, booted from the network at once; stopped at the end."""
    workdir = tmp_path_factory.mktemp("e2e-nodes")
    booted = {name: Node(name, workdir).start() for name in NODES}
    try:
        for node in booted.values():
            node.report = node.wait_up()
        yield booted
    finally:
        for node in booted.values():
            node.stop()


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
