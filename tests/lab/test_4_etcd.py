"""The control plane's etcd cluster in the lab: both boot servers and the witness.

Clients act as the boot service will: etcdctl with a member's certificates
(orion-etcdctl), and curl without them. A member is stopped with systemctl,
as a crashed etcd would be; the snapshot timer's service is started by hand,
and the restore playbook is run as an operator runs it.
"""

import json
import os
import re
import subprocess
import time

import pytest
import yaml

from conftest import FIGURES, INVENTORY, SERVERS, playbook

WITNESSES = {name: host["etcd_address"] for name, host in
             yaml.safe_load(open(INVENTORY, encoding="utf-8"))["all"]["children"]["orion_etcd_witnesses"]["hosts"].items()}
MEMBERS = dict(SERVERS, **WITNESSES)
FIRST, SECOND = sorted(SERVERS)[:2]
WITNESS = sorted(WITNESSES)[0]
SNAPSHOTS = "/var/backups/orion-etcd"


def ctl(member, *args, timeout=60):
    return subprocess.run(["podman", "exec", member, "orion-etcdctl", *args], capture_output=True, text=True,
                          check=False, timeout=timeout)


def ok(member, *args):
    out = ctl(member, *args)
    assert out.returncode == 0, "%s: orion-etcdctl %s: %s%s" % (member, " ".join(args), out.stdout, out.stderr)
    return out.stdout


def systemctl(member, *args):
    subprocess.run(["podman", "exec", member, "systemctl", *args], check=True, capture_output=True, timeout=120)


def wait_healthy(member=FIRST, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ctl(member, "endpoint", "health", "--cluster").returncode == 0:
            return
        time.sleep(2)
    raise AssertionError("the cluster is not healthy: %s" % ctl(member, "endpoint", "health", "--cluster").stderr)


@pytest.fixture(scope="module", autouse=True)
def healthy():
    """Every member runs (the failover tests killed and restarted a boot server before)."""
    for member in MEMBERS:
        systemctl(member, "start", "etcd")
    wait_healthy()


def test_the_cluster_is_the_boot_servers_and_the_witness():
    listed = json.loads(ok(FIRST, "member", "list", "-w", "json"))["members"]
    assert sorted(m["name"] for m in listed) == sorted(MEMBERS)
    for member in listed:
        assert member["peerURLs"] == ["https://%s:2380" % MEMBERS[member["name"]]]
        assert member["clientURLs"] == ["https://%s:2379" % MEMBERS[member["name"]]]


def test_a_client_without_a_certificate_of_the_site_ca_is_refused():
    url = "%s:2379/version" % SERVERS[FIRST]
    base = ["podman", "exec", WITNESS, "curl", "-sS", "--max-time", "10"]
    plain = subprocess.run(base + ["http://" + url], capture_output=True, text=True, check=False)
    assert plain.returncode != 0 or "etcdserver" not in plain.stdout, plain.stdout
    no_cert = subprocess.run(base + ["--cacert", "/etc/orion/etcd/ca.crt", "https://" + url],
                             capture_output=True, text=True, check=False)
    assert no_cert.returncode != 0 and "etcdserver" not in no_cert.stdout, no_cert.stdout + no_cert.stderr
    with_cert = subprocess.run(base + ["--cacert", "/etc/orion/etcd/ca.crt", "--cert", "/etc/orion/etcd/member.crt",
                                       "--key", "/etc/orion/etcd/member.key", "https://" + url],
                               capture_output=True, text=True, check=False)
    assert with_cert.returncode == 0 and "etcdserver" in with_cert.stdout, with_cert.stdout + with_cert.stderr


def test_a_write_on_one_member_is_read_on_every_other():
    ok(FIRST, "put", "/orion/test/written-on", FIRST)
    for member in MEMBERS:
        assert ok(member, "get", "--print-value-only", "/orion/test/written-on").strip() == FIRST


def test_with_one_member_down_the_cluster_writes_and_with_two_down_it_stops():
    systemctl(SECOND, "stop", "etcd")
    try:
        started = time.monotonic()
        ok(FIRST, "put", "/orion/test/one-down", "yes")
        FIGURES.append("etcd: a write with %s down took %.2f s" % (SECOND, time.monotonic() - started))
        assert ok(WITNESS, "get", "--print-value-only", "/orion/test/one-down").strip() == "yes"
        systemctl(WITNESS, "stop", "etcd")
        lost = ctl(FIRST, "--command-timeout=5s", "put", "/orion/test/two-down", "yes")
        assert lost.returncode != 0, "a write without quorum was accepted: %s" % lost.stdout
        # Without quorum a linearizable read fails too; a serializable one gives the member's own copy (what
        # the boot service reads the last good versions from then).
        assert ctl(FIRST, "--command-timeout=5s", "get", "/orion/test/one-down").returncode != 0
        stale = ok(FIRST, "--consistency=s", "get", "--print-value-only", "/orion/test/one-down")
        assert stale.strip() == "yes"
    finally:
        systemctl(SECOND, "start", "etcd")
        systemctl(WITNESS, "start", "etcd")
    wait_healthy()
    ok(FIRST, "put", "/orion/test/back", "yes")
    # A write that timed out without quorum is not refused: it may still be applied once quorum is back, so the
    # boot service treats a timeout as an unknown outcome and reads the key again.


def snapshots(member):
    out = subprocess.run(["podman", "exec", member, "ls", SNAPSHOTS], capture_output=True, text=True, check=True)
    return sorted(name for name in out.stdout.split() if re.match(r"^etcd-[0-9]{8}T[0-9]{6}Z\.db$", name))


def test_snapshots_are_bounded_and_a_restore_brings_back_the_saved_state():
    keep = yaml.safe_load(open(os.path.join(os.path.dirname(INVENTORY), "group_vars", "all.yml"),
                               encoding="utf-8"))["etcd_snapshot_keep"]
    ok(FIRST, "put", "/orion/test/state", "saved")
    for unused in range(keep + 1):
        systemctl(FIRST, "start", "orion-etcd-snapshot.service")
        time.sleep(1.1)
    saved = snapshots(FIRST)
    assert len(saved) == keep, saved
    ok(FIRST, "put", "/orion/test/state", "changed")
    ok(FIRST, "put", "/orion/test/after-the-snapshot", "yes")
    started = time.monotonic()
    out = playbook("etcd_restore.yml", "-e", "etcd_restore_snapshot=%s/%s" % (SNAPSHOTS, saved[-1]),
                   "-e", "etcd_restore_host=%s" % FIRST)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    FIGURES.append("etcd: restore of the cluster from a snapshot took %.0f s" % (time.monotonic() - started))
    wait_healthy()
    for member in MEMBERS:
        assert ok(member, "get", "--print-value-only", "/orion/test/state").strip() == "saved"
        assert ok(member, "get", "--print-value-only", "/orion/test/after-the-snapshot") == ""
    kept = subprocess.run(["podman", "exec", SECOND, "sh", "-c", "ls -d /var/lib/etcd/orion.before-*"],
                          capture_output=True, text=True, check=False)
    assert kept.returncode == 0, "the data directory before the restore was not kept"


def test_a_restore_of_a_snapshot_that_does_not_exist_changes_nothing():
    ok(FIRST, "put", "/orion/test/untouched", "yes")
    out = playbook("etcd_restore.yml", "-e", "etcd_restore_snapshot=%s/no-such.db" % SNAPSHOTS)
    assert out.returncode != 0
    assert "no-such.db" in out.stdout
    assert ok(WITNESS, "get", "--print-value-only", "/orion/test/untouched").strip() == "yes"
    ok(FIRST, "del", "--prefix", "/orion/test/")
