"""A configuration that fails its check never replaces the running one."""

import os
import subprocess
import sys

import pytest

from conftest import SERVERS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, "molecule", "boot_server", "inventory", "hosts.yml")


def converge(*extra):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", "servers.yml"), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("override,path,service,message", [
    ("boot_server_lease_time=bogus", "/etc/dnsmasq.d/orion-boot.conf", "dnsmasq", "bad dhcp-range"),
    ("boot_server_http_port=70000", "/etc/nginx/sites-available/orion-boot.conf", "nginx", "invalid port"),
])
def test_broken_config_is_refused_and_service_keeps_running(servers, dhcp, override, path, service, message):
    before = {name: host.file(path).sha256sum for name, host in servers.items()}
    res = converge("-e", override)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "failed to validate" in out and message in out, out[-3000:]
    for name, host in servers.items():
        assert host.file(path).sha256sum == before[name], "%s: %s was replaced" % (name, path)
        assert host.service(service).is_running
    # Still serving as before.
    lease = dhcp.lease("52:54:00:0b:02:01")
    assert lease is not None and lease["ip"] == "10.231.2.101"
    for addr in SERVERS.values():
        assert servers["orion-bs-srv1"].run("curl -sf http://%s/boot/boot.ipxe -o /dev/null" % addr).rc == 0
