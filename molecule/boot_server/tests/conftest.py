"""Fixtures for the boot_server scenario: the hosts as DHCP/TFTP/HTTP clients see them."""

import json
import os
import subprocess
import sys

import pytest
import testinfra

SERVERS = {"orion-bs-srv1": "10.231.2.2", "orion-bs-srv2": "10.231.2.3"}
PROBE = "orion-bs-probe"
NETWORK = "orion-bs"
SUBNET = "10.231.2.0/24"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, "molecule", "boot_server", "inventory", "hosts.yml")
sys.path.insert(0, os.path.join(ROOT, "molecule", "common"))

from netclients import DhcpClient, install_lease_hook  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="session")
def probe():
    host = testinfra.get_host("podman://" + PROBE)
    install_lease_hook(host)
    return host


@pytest.fixture(scope="session")
def servers():
    return {name: testinfra.get_host("podman://" + name) for name in SERVERS}


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
    """servers.yml on both servers; the tests that change only the boot services pass --tags boot_server
    (every role's checks still run first)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", "servers.yml"), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
