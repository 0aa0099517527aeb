"""The boot service in the lab: every boot is an attempt in the ledger, and a node boots without the service.

The nodes of `make lab` booted through the boot service: each script named an
attempt id, and the node's report brought it back. Requests from elsewhere
are not attempts. With the service stopped, and then with etcd stopped, on the
holder of the floating address, a node reboots and comes up.
"""

import json
import re
import subprocess
import time

import pytest

from conftest import FIGURES, FIRST, NAME_OF, NODES, SERVERS, VIP, report

WITNESS = "orion-lab-witness"


def holder():
    for name in SERVERS:
        out = subprocess.run(["podman", "exec", name, "ip", "-4", "-o", "addr"], capture_output=True, text=True,
                             check=False)
        if " %s/" % VIP in out.stdout:
            return name
    raise AssertionError("no server holds %s" % VIP)


def ledger(node, server=None):
    out = subprocess.run(["podman", "exec", server or sorted(SERVERS)[0], "orion-etcdctl", "get", "--print-value-only",
                          "/orion/ledger/" + node], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout) if out.stdout.strip() else None


def fetch(path, source=WITNESS, address=VIP):
    out = subprocess.run(["podman", "exec", source, "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                          "http://%s%s" % (address, path)], capture_output=True, text=True, check=False)
    body, unused, code = out.stdout.rpartition("\n")
    return int(code or 0), body


def metric(server, name, labels=""):
    out = subprocess.run(["podman", "exec", server, "curl", "-sS", "http://127.0.0.1:8740/metrics"],
                         capture_output=True, text=True, check=True)
    found = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), out.stdout, re.M)
    return float(found.group(1)) if found else 0.0


def systemctl(server, *args):
    subprocess.run(["podman", "exec", server, "systemctl", *args], check=True, capture_output=True, timeout=120)


def reboot(node):
    """Reboot the node from inside; return its new boot report."""
    old = node.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    started = time.monotonic()
    node.run("reboot", check=False, timeout=60)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        got = report(node.name)
        if got and got.get("event") == "boot" and got.get("boot_id") != old and got.get("result") == "ok":
            FIGURES.append("boot service: %s up again %.0f s after reboot" % (node.name, time.monotonic() - started))
            return got
        time.sleep(3)
    raise AssertionError("%s did not come back:\n%s" % (node.name, node.text()[-4000:]))


@pytest.fixture(scope="module")
def node(nodes):
    return nodes[FIRST]


def test_every_node_booted_through_the_service(nodes):
    for name in nodes:
        got = report(name)
        record = ledger(name)
        assert record is not None, "no ledger of %s" % name
        last = record["attempts"][-1]
        assert got["attempt"] == last["id"], (got, last)
        assert last["state"] == "ok" and last["booted"] == got["image"] and last["address"] == NODES[name][1]
        assert record["good"] == got["image"]
        assert not record["marks"], record["marks"]


def test_a_request_from_another_address_is_not_an_attempt():
    before = ledger(FIRST)
    code, body = fetch("/boot/nodes/%s.ipxe" % FIRST)
    assert code == 200 and body.startswith("#!ipxe"), body
    assert "orion.attempt=" not in body
    assert "orion.image=%s" % before["good"] in body
    assert ledger(FIRST) == before


def test_a_report_with_another_nodes_attempt_is_refused_and_counted(nodes, node):
    other = ledger(sorted(nodes)[1])["attempts"][-1]["id"]
    server = NAME_OF[node.report["primary"]]
    refused = metric(server, "orion_boot_service_reports_total", '{outcome="refused"}')
    primary = node.report["primary"]
    node.run("sed 's/\"attempt\":\"[0-9a-f]*\"/\"attempt\":\"%s\"/' /run/orion/report.json > /tmp/forged.json && "
             ". /usr/lib/orion/lib.sh && orion_put %s /reports/%s.json /tmp/forged.json" % (other, primary, node.name))
    deadline = time.monotonic() + 30
    while metric(server, "orion_boot_service_reports_total", '{outcome="refused"}') <= refused:
        assert time.monotonic() < deadline, "the forged report was not refused"
        time.sleep(1)
    # The node's own report again: a duplicate, nothing changes.
    before = ledger(node.name)
    node.run(". /usr/lib/orion/lib.sh && orion_put %s /reports/%s.json /run/orion/report.json" % (primary, node.name))
    time.sleep(5)
    assert ledger(node.name) == before


def test_with_the_service_stopped_on_the_holder_a_node_reboots_and_comes_up(node):
    server = holder()
    systemctl(server, "stop", "orion-boot-service")
    try:
        code, body = fetch("/boot/nodes/%s.ipxe" % node.name)
        assert code == 200 and "orion.attempt=" not in body, body
        good = ledger(node.name)["good"]
        assert "orion.image=%s" % good in body
        got = reboot(node)
        assert got["image"] == good and got["attempt"] == "", got
    finally:
        systemctl(server, "start", "orion-boot-service")


def test_with_etcd_stopped_on_the_holder_a_node_reboots_and_its_boot_is_counted(node):
    server = holder()
    before = len(ledger(node.name, sorted(set(SERVERS) - {server})[0])["attempts"])
    systemctl(server, "stop", "etcd")
    try:
        got = reboot(node)
        other = sorted(set(SERVERS) - {server})[0]
        record = ledger(node.name, other)
        assert got["attempt"] == record["attempts"][-1]["id"], (got, record["attempts"][-1])
        deadline = time.monotonic() + 30
        while ledger(node.name, other)["attempts"][-1]["state"] != "ok":
            assert time.monotonic() < deadline, ledger(node.name, other)["attempts"][-1]
            time.sleep(2)
        assert len(record["attempts"]) in (before + 1, 20)
    finally:
        systemctl(server, "start", "etcd")
