"""Failover: the server a node reads its root from is killed (SIGKILL) while
the node checksums files with its caches dropped; no read fails, and the path
comes back when the server does. A node booted while the server is down gets
that server's path added once it is back."""

import re
import subprocess
import time

import pytest

from conftest import FIRST, NAME_OF, SECOND, VIP, Node, report, start_server

READER = r"""
find /bin /sbin /usr -xdev -type f | sort > /tmp/files
md5sum $(cat /tmp/files) > /tmp/ref
rm -f /tmp/reader.log /tmp/reader.err /tmp/stop
pass=0; errors=0
while [ ! -e /tmp/stop ]; do
  echo 3 > /proc/sys/vm/drop_caches
  t0=$(cut -d' ' -f1 /proc/uptime)
  md5sum -c -s /tmp/ref 2>>/tmp/reader.err || errors=$((errors + 1))
  t1=$(cut -d' ' -f1 /proc/uptime)
  pass=$((pass + 1))
  echo "$pass $t0 $t1 $errors" >> /tmp/reader.log
done
"""


def vip_holder():
    for name in NAME_OF.values():
        out = subprocess.run(["podman", "exec", name, "ip", "-4", "-o", "addr"], capture_output=True, text=True,
                             check=False)
        if " %s/" % VIP in out.stdout:
            return name
    return None


def passes(node):
    rows = [line.split() for line in node.run("cat /tmp/reader.log").stdout.splitlines()]
    return [(int(r[0]), float(r[1]), float(r[2]), int(r[3])) for r in rows if len(r) == 4]


@pytest.fixture(scope="module")
def killed(nodes):
    """The primary server of the first node, killed while the node reads; started again afterwards."""
    node = nodes[FIRST]
    primary = NAME_OF[node.report["primary"]]
    node.run("cat > /tmp/reader.sh <<'EOF'\n%sEOF\nsetsid sh /tmp/reader.sh </dev/null >/dev/null 2>&1 &" % READER)
    time.sleep(10)
    before = passes(node)
    assert len(before) >= 3, before
    holder = vip_holder()
    subprocess.run(["podman", "kill", "-s", "KILL", primary], check=True, capture_output=True)
    time.sleep(25)
    yield {"node": node, "primary": primary, "holder": holder, "before": before}
    if subprocess.run(["podman", "container", "inspect", "-f", "{{.State.Running}}", primary],
                      capture_output=True, text=True, check=False).stdout.strip() != "true":
        start_server(primary)


def test_no_read_fails_when_the_primary_server_dies(killed):
    node = killed["node"]
    rows = passes(node)
    after = [row for row in rows if row[0] > len(killed["before"])]
    assert len(after) >= 3, "the reader stalled: %s" % rows[-5:]
    errors = node.run("cat /tmp/reader.err 2>/dev/null; true").stdout
    assert rows[-1][3] == 0 and errors == "", errors
    normal = sorted(row[2] - row[1] for row in killed["before"])[len(killed["before"]) // 2]
    longest = max(row[2] - row[1] for row in rows)
    print("failover of %s: %d passes, 0 errors, longest pass %.2f s (normal %.2f s): stall about %.2f s"
          % (killed["primary"], len(rows), longest, normal, longest - normal))
    log = node.run("cat /run/orion/boot.log").stdout
    assert re.search(r"orion-paths: path \S+ to %s \(primary\) failed" % re.escape(node.report["primary"]), log), log


def test_the_floating_address_moves_to_the_living_server(killed):
    holder = vip_holder()
    assert holder is not None and holder != killed["primary"], holder


@pytest.fixture(scope="module")
def rebooted(killed, nodes):
    """The second node booted again while that server is down (left running: make lab-down stops it)."""
    other = nodes[SECOND]
    other.stop()
    fresh = Node(other.name).start()
    yield {"node": fresh, "report": fresh.wait_up()}


def test_a_node_booted_while_that_server_is_down_still_boots(killed, rebooted):
    got = rebooted["report"]
    assert got["result"] == "ok", got
    # The dead server gave no path; the living one is the primary.
    assert [NAME_OF[path["server"]] for path in got["paths"]] == [NAME_OF[got["primary"]]], got
    assert NAME_OF[got["primary"]] != killed["primary"], got


def wait_for_log(node, pattern, what):
    deadline = time.monotonic() + 300
    log = ""
    while time.monotonic() < deadline:
        log = node.run("cat /run/orion/boot.log").stdout
        if re.search(pattern, log):
            return log
        time.sleep(5)
    raise AssertionError("%s:\n%s" % (what, log[-2000:]))


def test_the_path_is_reinstated_when_the_server_is_back(killed, rebooted):
    node = killed["node"]
    start_server(killed["primary"])
    wait_for_log(node, r"orion-paths: path \S+ to %s \(primary\) reinstated" % re.escape(node.report["primary"]),
                 "the path was not reinstated")
    status = node.run("orion-dm status orion-root").stdout
    assert " F " not in status, status
    node.run("touch /tmp/stop")
    assert passes(node)[-1][3] == 0
    assert report(node.name)["result"] == "ok"


def test_the_node_booted_without_that_server_gets_its_path_once_it_is_back(killed, rebooted):
    node = rebooted["node"]
    address = [a for a, name in NAME_OF.items() if name == killed["primary"]][0]
    wait_for_log(node, r"orion-paths: path \S+ to %s added" % re.escape(address), "no path was added")
    status = node.run("orion-dm status orion-root").stdout
    assert len(re.findall(r" \d+:\d+ A ", status)) == 2, status
    # Reads go on over the new table.
    node.run("echo 3 > /proc/sys/vm/drop_caches; md5sum /bin/busybox")
    # The boot report is sent again with the new path, the boot's duration
    # kept (read where the first one went: the other server may still hold
    # one from before its kill).
    first = rebooted["report"]
    living = [name for name in NAME_OF.values() if name != killed["primary"]]
    deadline = time.monotonic() + 120
    got = report(node.name, living)
    while len(got["paths"]) < 2 and time.monotonic() < deadline:
        time.sleep(3)
        got = report(node.name, living)
    assert [(NAME_OF[path["server"]], path["state"]) for path in got["paths"]] == \
        [(NAME_OF[first["primary"]], "A"), (killed["primary"], "A")], got
    assert (got["boot_seconds"], got["result"]) == (first["boot_seconds"], "ok"), got
