"""Shutdown: `reboot`, `halt` and `poweroff` on a node go through its
shutdown stage (services stopped in order, its configured mount released, a
last report saying so, the logs on the log server up to the end), and its
next boot tells how the previous one ended, from that report read back from
the servers: clean with the action, or unclean after its QEMU was killed.
The killed node also meets a damaged configuration on the first server it
asks, and takes the next server's. One node, the second (it has a service, a
mount and a private file of its own), booted four times; it is left up."""

import json
import re
import subprocess
import time

import pytest

from conftest import FIGURES, NAME_OF, SECOND, SERVERS, VIP, Node, reports

CONFIG = "/srv/orion/config/nodes/%s.conf"
KERNEL_SAYS = {"reboot": "reboot: Restarting system", "halt": "reboot: System halted", "poweroff": "reboot: Power down"}


def wait_for(what, timeout, check, node=None):
    """check() until it returns something true (at most timeout seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(1)
    raise AssertionError("%s not within %d s%s" % (what, timeout, ":\n" + node.text()[-4000:] if node else ""))


def stored(node, event, boot_id, same=True):
    """The node's report of that event on any server, of that boot (same) or of another one."""
    for got in reports(node.name).values():
        if got.get("event") == event and (got.get("boot_id") == boot_id) == same:
            return got
    return None


def boot_id(node):
    got = node.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", got), got
    return got


def shut_down(node, action):
    """Run reboot, halt or poweroff on the node; check its shutdown stage and last report; return
    (the boot's id, its image, the stage's seconds)."""
    old, offset, image = boot_id(node), len(node.text()), stored(node, "boot", boot_id(node))["image"]
    node.run(action, check=False, timeout=60)
    # The last report of the boot (before the next boot's replaces it).
    last = wait_for("the shutdown report", 120, lambda: stored(node, "shutdown", old), node)
    assert (last["action"], last["result"], last["reason"], last["image"]) == (action, "shutdown", "", image), last
    console = wait_for("the machine's end", 120,
                       lambda: KERNEL_SAYS[action] in node.text()[offset:] and node.text()[offset:], node)
    steps = ["ORIONOS-SHUTDOWN node=%s action=%s" % (node.name, action), "orion-shutdown: %s asked" % action,
             "ok: down: /etc/service/dropbear", "ok: down: /etc/service/crond", "unmounted /var/scratch",
             "shutdown report (shutdown) sent to", "orion-shutdown: stopping the logs",
             "ok: down: /etc/service/syslogd", "orion-shutdown: unmounted /etc", "ORIONOS-SHUTDOWN-DONE",
             "The system is going down NOW!", KERNEL_SAYS[action]]
    at = [console.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), "\n".join("%6d %s" % pair for pair in zip(at, steps)) + "\n" + console
    assert "can't" not in console[at[0]:at[-3]], console
    seconds = float(re.search(r"ORIONOS-SHUTDOWN-DONE node=%s action=%s seconds=([0-9.]+)\n" % (node.name, action),
                              console).group(1))
    return old, image, seconds


def up_again(node, old, started):
    """Wait for the boot report of a new boot (ok); return it and the seconds it took."""
    got = wait_for("a boot report of a new boot", 600, lambda: stored(node, "boot", old, same=False), node)
    assert got["result"] == "ok" and got["boot_id"] != old, got
    return got, time.monotonic() - started


def clean(got, action, image, old):
    assert got["previous"] == {"end": "clean", "action": action, "image": image, "boot_id": old,
                               "server": got["previous"]["server"]}, got
    assert got["previous"]["server"] in SERVERS.values(), got


def first_config_server(node):
    """The address the node asks its configuration from first, and the container answering it."""
    first = re.search(r"orion\.servers=([^, ]+)", node.run("cat /proc/cmdline").stdout).group(1)
    if first != VIP:
        return first, NAME_OF[first]
    for name in NAME_OF.values():
        out = subprocess.run(["podman", "exec", name, "ip", "-4", "-o", "addr"], capture_output=True, text=True,
                             check=False)
        if " %s/" % VIP in out.stdout:
            return first, name
    raise AssertionError("no server holds %s" % VIP)


def figure(text):
    """A measurement, shown in the summary at the end."""
    print(text)
    FIGURES.append(text)


@pytest.fixture(scope="module", autouse=True)
def timed():
    started = time.monotonic()
    yield
    figure("test_3_shutdown: %.0f s in all" % (time.monotonic() - started))


@pytest.fixture(scope="module")
def node(nodes):
    return nodes[SECOND]


def test_only_the_node_reads_its_report_back(node):
    assert json.loads(node.run("wget -q -O - http://%s/reports/%s.json" % (SERVERS[sorted(SERVERS)[0]], node.name))
                      .stdout)["node"] == node.name
    one, other = sorted(SERVERS)[:2]
    out = subprocess.run(["podman", "exec", one, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://%s/reports/%s.json" % (SERVERS[other], node.name)],
                         capture_output=True, text=True, check=False)
    assert out.stdout == "403", out


def test_reboot_goes_down_cleanly_and_boots_again(node, servers):
    pid, offset, started = node.pid(), len(node.text()), time.monotonic()
    old, image, seconds = shut_down(node, "reboot")
    got, up = up_again(node, old, started)
    # In the same QEMU: the machine restarted and booted from the network again.
    assert node.pid() == pid
    assert "OrionOS node %s boots image" % node.name in node.text()[offset:]
    clean(got, "reboot", image, old)
    # The log server has the shutdown stage up to the logs' own stop.
    logs = [server.run("cat /var/log/orion/nodes/%s.log 2>/dev/null" % node.name).stdout for server in servers.values()]
    assert any("orion-shutdown: reboot asked" in log and "orion-shutdown: stopping the logs" in log for log in logs)
    figure("%s: shutdown stage %.1f s, up again %.0f s after reboot" % (node.name, seconds, up))


def test_halt_stops_the_machine_and_the_next_boot_says_so(node):
    pid, started = node.pid(), time.monotonic()
    old, image, seconds = shut_down(node, "halt")
    time.sleep(2)
    assert node.pid() == pid, "QEMU ended: halt is not poweroff"
    node.stop()
    got, up = up_again(Node(node.name).start(clear=False), old, time.monotonic())
    clean(got, "halt", image, old)
    figure("%s: shutdown stage %.1f s, halted after %.0f s, up again in %.0f s" % (
        node.name, seconds, time.monotonic() - started - up, up))


def test_a_killed_node_says_so_at_its_next_boot_and_skips_a_damaged_configuration(node):
    old = boot_id(node)
    image = stored(node, "boot", old)["image"]
    address, server = first_config_server(node)
    config = CONFIG % node.name
    # Its end line no longer matches: the file fails its check on that server only.
    subprocess.run(["podman", "exec", server, "sh", "-c",
                    "cp -p %s /tmp/orion-lab.conf && sed -i '$s/^end .*/end %s/' %s" % (config, "0" * 64, config)],
                   check=True, capture_output=True)
    try:
        node.stop()
        fresh = Node(node.name).start(clear=False)
        got, up = up_again(fresh, old, fresh.started)
    finally:
        subprocess.run(["podman", "exec", server, "mv", "/tmp/orion-lab.conf", config], check=True,
                       capture_output=True)
    assert got["previous"] == {"end": "unclean", "image": image, "boot_id": old,
                               "server": got["previous"]["server"]}, got
    log = fresh.run("cat /run/orion/boot.log").stdout
    assert "the configuration of %s from %s is invalid; asking the next server" % (node.name, address) in log, log
    assert re.search(r"configuration from \S+ applied \(invalid from %s( \S+)*\)" % re.escape(address), log), log
    assert fresh.run("cat /etc/motd").stdout == "OrionOS lab %s (canary channel)\n" % node.name
    figure("%s: killed, up again in %.0f s" % (node.name, up))


def test_poweroff_ends_qemu_and_the_next_boot_says_so(node):
    started = time.monotonic()
    old, image, seconds = shut_down(node, "poweroff")
    wait_for("the end of QEMU", 60, lambda: node.pid() is None, node)
    off = time.monotonic() - started
    got, up = up_again(Node(node.name).start(clear=False), old, time.monotonic())
    clean(got, "poweroff", image, old)
    figure("%s: shutdown stage %.1f s, QEMU ended after %.0f s, up again in %.0f s" % (node.name, seconds, off, up))
