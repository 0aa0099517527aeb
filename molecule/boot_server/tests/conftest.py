"""Fixtures for the boot_server scenario: the hosts as DHCP/TFTP/HTTP clients see them."""

import json
import os
import subprocess
import sys
import uuid

import pytest
import testinfra

SERVERS = {"orion-bs-srv1": "10.231.2.2", "orion-bs-srv2": "10.231.2.3"}
PROBE = "orion-bs-probe"
NETWORK = "orion-bs"
SUBNET = "10.231.2.0/24"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, "molecule", "boot_server", "inventory", "hosts.yml")

LEASE_SCRIPT = """#!/bin/sh
# udhcpc hook: keep the lease details, configure nothing.
[ "$1" = bound ] && env > "$LEASE_FILE"
exit 0
"""


@pytest.fixture(scope="session")
def probe():
    host = testinfra.get_host("podman://" + PROBE)
    host.check_output("mkdir -p /tmp/orion-test")
    cmd = "cat > /tmp/orion-test/lease.sh <<'EOF'\n%sEOF\nchmod +x /tmp/orion-test/lease.sh" % LEASE_SCRIPT
    host.check_output(cmd)
    return host


@pytest.fixture(scope="session")
def servers():
    return {name: testinfra.get_host("podman://" + name) for name in SERVERS}


class DhcpClient:
    """busybox udhcpc on a macvlan link of the probe with a chosen MAC."""

    def __init__(self, host):
        self.host = host

    def lease(self, mac, options=(), vendor=None, tries=4):
        link = "dc" + uuid.uuid4().hex[:8]
        out = "/tmp/orion-test/%s.env" % link
        extra = " ".join("-x %s" % opt for opt in options)
        if vendor:
            extra += " -V %s" % vendor
        try:
            self.host.check_output(
                "ip link add %s link eth0 address %s type macvlan mode bridge && ip link set %s up"
                % (link, mac, link))
            res = self.host.run(
                "LEASE_FILE=%s timeout 60 busybox udhcpc -i %s -f -q -n -t %d -T 2 "
                "-O bootfile -O hostname -s /tmp/orion-test/lease.sh %s"
                % (out, link, tries, extra))
            if res.rc != 0:
                return None
            env = {}
            for line in self.host.file(out).content_string.splitlines():
                if "=" in line:
                    key, value = line.split("=", 1)
                    env[key] = value
            return env
        finally:
            self.host.run("ip link del %s; rm -f %s" % (link, out))


@pytest.fixture(scope="session")
def dhcp(probe):
    return DhcpClient(probe)


@pytest.fixture(scope="session")
def bridge():
    """Name of the podman network's bridge on this machine."""
    info = json.loads(subprocess.check_output(["podman", "network", "inspect", NETWORK]))
    return info[0]["network_interface"]


@pytest.fixture(scope="session")
def scenario_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def tap(bridge):
    """A tap device on the scenario bridge for a QEMU guest."""
    name = "orbstap0"
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
    subprocess.run(["ip", "link", "set", name, "master", bridge, "up"], check=True)
    yield name
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def converge(*extra):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", "servers.yml"), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
