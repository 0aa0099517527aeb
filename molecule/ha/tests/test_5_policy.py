"""The boot policy on both servers: checked against the published images, the same
decision and fallbacks everywhere, served over HTTP, refused whole when wrong.

Runs after the replication tests, which publish 2026.11.0, 2026.11.1 and
2026.11.2 on both servers.
"""

import hashlib
import json
import os
import subprocess
import tempfile

from conftest import SERVERS, VIP, converge

NODE_DIR = "/srv/orion/boot/nodes"
POLICY = {
    "channels": {"stable": "2026.11.0", "canary": "2026.11.2"},
    "rules": [{"name": "canary", "match": {"name": "hanode02"}, "channel": "canary",
               "kernel_args": ["canary=1"]}],
    "default": {"channel": "stable"},
}


def apply_policy(policy, *extra):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"orion_policy": policy, "boot_server_image_check": True}, handle)
    try:
        return converge("-e", "@" + handle.name, *extra, playbook="policy.yml", timeout=600)
    finally:
        os.unlink(handle.name)


def server_file(name, path):
    return subprocess.run(["podman", "exec", name, "cat", path], capture_output=True, check=True).stdout


def curl(url):
    res = subprocess.run(["podman", "exec", "orion-ha-probe", "curl", "-s", "-w", "\n%{http_code}", url],
                         capture_output=True, text=True, check=True)
    body, _newline, code = res.stdout.rpartition("\n")
    return code, body


def tables():
    return {name: server_file(name, NODE_DIR + "/resolution.json") for name in SERVERS}


def test_policy_moves_a_node_to_the_canary_on_every_server():
    res = apply_policy(POLICY)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    found = tables()
    # Both servers decided the same for every node, fallbacks included.
    assert len(set(found.values())) == 1, found
    nodes = json.loads(found["orion-ha-srv1"])["nodes"]
    assert (nodes["hanode02"]["image"], nodes["hanode02"]["fallback"]) == ("2026.11.2", "2026.11.0")
    assert nodes["hanode02"]["fallback_reason"] == "previous image" and nodes["hanode02"]["rule"] == "rule canary"
    assert (nodes["hanode01"]["image"], nodes["hanode01"]["rule"]) == ("2026.11.0", "default")
    # What a node fetches, from the floating address and from each server.
    for address in [VIP] + list(SERVERS.values()):
        code, body = curl("http://%s/boot/nodes/52-54-00-0c-03-02.ipxe" % address)
        assert code == "200", (address, code)
        kernels = [line for line in body.splitlines() if line.startswith("kernel ")]
        assert kernels[0].startswith("kernel http://%s/boot/images/2026.11.2/vmlinuz " % VIP)
        assert "orion.image=2026.11.2" in kernels[0] and "canary=1" in kernels[0]
        assert any("/boot/images/2026.11.0/vmlinuz" in line and "orion.fallback=1" in line for line in kernels)
        # The reservations and the table beside the scripts are not served.
        for name in ("dhcp-hosts", "resolution.json"):
            assert curl("http://%s/boot/nodes/%s" % (address, name))[0] == "404"


def test_second_policy_run_changes_nothing():
    res = apply_policy(POLICY)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "changed=0" in res.stdout and "changed=1" not in res.stdout, res.stdout[-3000:]


def test_check_mode_with_diff_names_the_nodes_that_would_move():
    wider = dict(POLICY, rules=[dict(POLICY["rules"][0], match={"name": "hanode0*"})])
    before = tables()
    res = apply_policy(wider, "--check", "--diff")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "hanode01: 2026.11.2 (fallback 2026.11.0)" in res.stdout
    assert "hanode02: 2026.11.2" not in res.stdout        # already there: not a change
    assert tables() == before


def test_a_policy_naming_an_unpublished_image_is_refused_and_nothing_changes():
    before = tables()
    digests = {name: hashlib.sha256(server_file(name, NODE_DIR + "/hanode02.ipxe")).hexdigest() for name in SERVERS}
    bad = dict(POLICY, channels={"stable": "2026.11.0", "canary": "2027.1.0"},
               rules=POLICY["rules"] + [{"name": "late", "match": {"name": "hanode02"}, "channel": "stable"}])
    res = apply_policy(bad)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "channel canary: version '2027.1.0' is not in the image store" in out
    assert "rule late: can never match, rule canary before it has the same selectors" in out
    assert "Decide each node's image" not in out
    assert tables() == before
    assert digests == {name: hashlib.sha256(server_file(name, NODE_DIR + "/hanode02.ipxe")).hexdigest()
                       for name in SERVERS}
