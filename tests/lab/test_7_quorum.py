"""The control plane without quorum, in the lab: nodes still boot their last good versions, trials pause and the
status says why; with quorum back, the trial goes ahead.

A working copy of the lab's version (``<version>-next``) is published and the first node pinned to it. Then etcd
is stopped on the witness and on the boot server that does not hold the floating address, so the cluster has one
member of three. The node reboots: the holder's service answers from its member's own copy of the ledger, the
node boots its last good version and nothing is counted; the service's status and the status playbook say the
ledger cannot be written. etcd is started again; the node reboots into the new version, a counted trial, and its
ok report makes it the node's last good version.
"""

import json
import subprocess
import time

import pytest

from conftest import FIGURES, FIRST, SERVERS, playbook
from test_5_boot_service import WITNESS, holder, reboot, systemctl
from test_6_rollback import apply_policy, ledger, publish, run_playbook, wait_for


def service_status(server):
    out = subprocess.run(["podman", "exec", server, "curl", "-sS", "--max-time", "10",
                          "http://127.0.0.1:8740/status"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def trial_done(new):
    """The ledger once ``new`` is the first node's last good version (None before)."""
    record = ledger(FIRST)
    return record if record["good"] == new else None


def readable():
    try:
        return ledger(FIRST)
    except AssertionError:
        return None


@pytest.fixture(scope="module")
def upgrade(nodes, tmp_path_factory):
    good = nodes[FIRST].report["image"]
    new = publish(good, "next")
    run_playbook("images.yml")
    apply_policy(tmp_path_factory.mktemp("policy"), good, pinned=new)
    yield good, new
    apply_policy(tmp_path_factory.mktemp("restore"), good)


def test_without_quorum_a_node_boots_its_last_good_version_and_the_trial_waits(nodes, upgrade, tmp_path):
    good, new = upgrade
    node = nodes[FIRST]
    before = ledger(FIRST)
    assert before["good"] == good
    keeper = holder()
    stopped = [WITNESS, sorted(set(SERVERS) - {keeper})[0]]
    for member in stopped:
        systemctl(member, "stop", "etcd")
    try:
        got = reboot(node)
        assert got["image"] == good and got["attempt"] == "", got
        status = service_status(keeper)
        assert status["writable"] is False and status["error"], status
        out = playbook("status.yml", "-e", "orion_status_dir=%s" % tmp_path)
        assert out.returncode == 0, out.stdout[-3000:]
        assert "boot ledger: not read" in out.stdout, out.stdout[-3000:]
    finally:
        for member in stopped:
            systemctl(member, "start", "etcd")
    started = time.monotonic()
    # Quorum is back: nothing was counted meanwhile, and the next boot is the trial.
    wait_for("a readable ledger", readable, timeout=120)
    assert ledger(FIRST)["attempts"] == before["attempts"]
    got = reboot(node)
    assert got["image"] == new and got["attempt"], got
    record = wait_for("the ok report of the trial", lambda: trial_done(new), timeout=120)
    assert record["attempts"][-1]["id"] == got["attempt"] and record["attempts"][-1]["state"] == "ok"
    assert service_status(keeper)["writable"] is True
    FIGURES.append("quorum: %s on %s %.0f s after quorum came back" % (FIRST, new, time.monotonic() - started))
