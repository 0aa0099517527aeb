"""Fixtures for the ha scenario: two boot servers, a floating address, a probe."""

import os
import subprocess
import sys
import time

import pytest
import testinfra

SERVERS = {"orion-ha-srv1": "10.231.3.2", "orion-ha-srv2": "10.231.3.3"}
SOURCE = "orion-ha-srv1"
REPLICA = "orion-ha-srv2"
PROBE = "orion-ha-probe"
VIP = "10.231.3.10"
STORE = "/srv/orion"
EXPORT = "/srv/orion/images"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, "molecule", "ha", "inventory", "hosts.yml")
sys.path.insert(0, os.path.join(ROOT, "molecule", "common"))

from netclients import DhcpClient, install_lease_hook  # noqa: E402  pylint: disable=wrong-import-position

# Writes a version into the staging area, adds its manifest and publishes it
# by one rename, as the image module does. Runs inside a server.
PUBLISH = r"""
set -o errexit -o nounset
v=$1; size_kib=$2
stage=%(store)s/.incoming/$v
rm -rf "$stage"; mkdir -p "$stage"
head -c $((size_kib * 1024)) /dev/urandom > "$stage/root.img"
echo "kernel $v" > "$stage/vmlinuz"
echo "initramfs $v" > "$stage/initramfs.img"
python3 - "$stage" "$v" <<'PY'
import hashlib, json, os, sys
d, v = sys.argv[1:]
files = {}
for n in sorted(os.listdir(d)):
    h = hashlib.sha256()
    with open(os.path.join(d, n), "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    files[n] = {"size": os.path.getsize(os.path.join(d, n)), "sha256": h.hexdigest()}
with open(os.path.join(d, "manifest.json"), "w") as f:
    json.dump({"format": 1, "version": v, "files": files}, f, indent=2, sort_keys=True)
PY
chmod 0444 "$stage"/*
mv -T "$stage" %(store)s/images/$v  # fails if the version exists
""" % {"store": STORE}


def host(name):
    return testinfra.get_host("podman://" + name)


@pytest.fixture(scope="session")
def probe():
    probe_host = host(PROBE)
    install_lease_hook(probe_host)
    return probe_host


@pytest.fixture(scope="session")
def dhcp(probe):
    return DhcpClient(probe)


@pytest.fixture(scope="session")
def servers():
    return {name: host(name) for name in SERVERS}


def converge_cmd(*extra, playbook="servers.yml"):
    """The command line of a run of a playbook against the scenario inventory."""
    return [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
            os.path.join(ROOT, "playbooks", playbook), *extra]


def converge_env():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_FORCE_COLOR", None)  # molecule sets it; the tests read plain output
    return env


def converge(*extra, playbook="servers.yml", timeout=900):
    """Run a playbook (all of the servers' by default) and return the finished process."""
    return subprocess.run(converge_cmd(*extra, playbook=playbook), cwd=ROOT, env=converge_env(), capture_output=True, text=True,
                          check=False, timeout=timeout)


def publish(version, size_kib=64):
    """Publish a test version on the source server."""
    subprocess.run(["podman", "exec", "-i", SOURCE, "bash", "-s", version, str(size_kib)],
                   input=PUBLISH, text=True, check=True, capture_output=True)


def vip_holders():
    """Servers whose interfaces hold the floating address right now."""
    held = []
    for name in SERVERS:
        res = subprocess.run(["podman", "exec", name, "ip", "-o", "-4", "addr", "show"],
                             capture_output=True, text=True, check=False)
        if res.returncode == 0 and (" %s/" % VIP) in res.stdout:
            held.append(name)
    return held


def wait_for_vip(name, timeout=60.0, step=0.05):
    """Wait until ``name`` alone holds the floating address; return the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if vip_holders() == [name]:
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError("%s did not get %s within %.0f s (holders: %s)" % (name, VIP, timeout, vip_holders()))


def start_container(name, timeout=120):
    subprocess.run(["podman", "start", name], check=True, capture_output=True)
    subprocess.run(["timeout", str(timeout), "podman", "exec", name, "systemctl", "is-system-running", "--wait"],
                   check=False, capture_output=True)
