"""The floating address as the DHCP server identity (orion_dhcp_on_vip).

keepalived puts the address on its own macvlan interface, vrrp.51, with the
VRRP virtual MAC; dnsmasq answers DHCP only there, so only the holder
answers, naming the floating address as its server identifier; a new holder
restarts dnsmasq. A node that holds a lease renews it by unicast to that
identifier, and after the holder dies the new one acknowledges the renewal.
Runs last: the scenario stays in this mode until it is destroyed.
"""

import re
import subprocess
import time

import pytest

from conftest import PROBE, SERVERS, VIP, converge, start_container, wait_for_vip

PRIMARY, BACKUP = "orion-ha-srv1", "orion-ha-srv2"
NODE_MAC, NODE_IP = "52:54:00:0c:03:01", "10.231.3.101"
VMAC = "00:00:5e:00:01:33"  # VRRP virtual MAC of router id 51
LINK = "dh8"
EVENTS = "/tmp/orion-test/dh8.events"

NETNS = "orion-dh8"

# udhcpc hook: configures the lease on the link, as a node's client does (a
# renewal is sent from the leased address, unicast to the server identifier),
# and writes one line per event.
HOOK = """#!/bin/sh
case "$1" in
    deconfig) ip -4 addr flush dev "$interface" ;;
    bound|renew) ip addr replace "$ip/${mask:-24}" dev "$interface" ;;
esac
echo "$1 serverid=$serverid ip=$ip" >> %s
exit 0
""" % EVENTS


def in_probe(script, check=True):
    return subprocess.run(["podman", "exec", PROBE, "sh", "-c", script], capture_output=True, text=True,
                          check=check)


def in_server(name, script, check=True):
    return subprocess.run(["podman", "exec", name, "sh", "-c", script], capture_output=True, text=True,
                          check=check)


def acks(name):
    """The DHCPACKs dnsmasq on a server logged for the node's MAC."""
    log = in_server(name, "cat /var/log/orion-dnsmasq.log 2>/dev/null", check=False).stdout
    return [line for line in log.splitlines() if "DHCPACK" in line and NODE_MAC in line]


def events():
    return in_probe("cat %s 2>/dev/null" % EVENTS, check=False).stdout.splitlines()


def wait_event(after=0, kinds=("bound", "renew", "nak"), timeout=60):
    """The first udhcpc event of these kinds after the first ``after`` lines: (kind, {serverid, ip})."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in events()[after:]:
            kind = line.split()[0]
            if kind in kinds:
                return kind, dict(item.split("=", 1) for item in line.split()[1:])
        time.sleep(0.5)
    raise AssertionError("no udhcpc event %s within %d s: %s" % ("/".join(kinds), timeout, events()))


def dnsmasq_starts(name):
    log = in_server(name, "cat /var/log/orion-dnsmasq.log 2>/dev/null", check=False).stdout
    return len(re.findall(r"dnsmasq\[\d+\]: started, version", log))


@pytest.fixture(scope="module")
def floating():
    """The servers converged with orion_dhcp_on_vip, twice (the second run must change nothing); the
    mode touches only the boot services and the floating address, so only those parts are applied."""
    first = converge("--tags", "boot_server,vrrp", "-e", "orion_dhcp_on_vip=true")
    assert first.returncode == 0, first.stdout[-4000:]
    second = converge("--tags", "boot_server,vrrp", "-e", "orion_dhcp_on_vip=true")
    assert second.returncode == 0, second.stdout[-4000:]
    wait_for_vip(PRIMARY, timeout=90)
    return second


def test_a_second_run_in_this_mode_changes_nothing(floating):
    recap = [line for line in floating.stdout.splitlines() if line.startswith("orion-ha-srv")]
    assert len(recap) == 2 and all(" changed=0 " in line for line in recap), floating.stdout[-3000:]


def test_the_address_lives_on_its_own_interface_with_the_virtual_mac(floating):
    holder = in_server(PRIMARY, "ip -o -4 addr show dev vrrp.51; cat /sys/class/net/vrrp.51/address").stdout
    assert " %s/" % VIP in holder and VMAC in holder, holder
    backup = in_server(BACKUP, "ip -o -4 addr show dev vrrp.51").stdout
    assert VIP not in backup, backup
    for name in SERVERS:
        assert in_server(name, "sysctl -n net.ipv4.conf.eth0.arp_announce").stdout.strip() == "2"


def test_tftp_still_answers_on_each_servers_own_address(floating):
    for address in SERVERS.values():
        # Retried like a client: a server restarted just before may still be re-learning its neighbours.
        for _attempt in range(3):
            res = in_probe("curl -s --fail --max-time 10 -o /dev/null -w '%%{size_download}' tftp://%s/undionly.kpxe"
                           % address, check=False)
            if res.returncode == 0:
                break
        assert res.returncode == 0 and int(res.stdout) > 10000, (address, res.returncode)


def test_only_the_holder_answers_and_names_the_floating_address_then_the_new_holder_renews(floating):
    before = {name: len(acks(name)) for name in SERVERS}
    in_probe("mkdir -p /tmp/orion-test && rm -f %s && cat > /tmp/orion-test/dh8.sh <<'EOF'\n%sEOF\n"
             "chmod +x /tmp/orion-test/dh8.sh" % (EVENTS, HOOK))
    # The client has a network namespace of its own in the probe, so its address and routes touch nothing else.
    in_probe("ip netns del {ns} 2>/dev/null; ip netns add {ns} && "
             "ip link add {link} link eth0 address {mac} type macvlan mode bridge && ip link set {link} netns {ns} && "
             "ip netns exec {ns} ip link set lo up && ip netns exec {ns} ip link set {link} up"
             .format(ns=NETNS, link=LINK, mac=NODE_MAC))
    in_probe("ip netns exec %s busybox udhcpc -i %s -f -t 5 -T 2 -A 2 -s /tmp/orion-test/dh8.sh "
             "-p /tmp/orion-test/dh8.pid >/tmp/orion-test/dh8.log 2>&1 &" % (NETNS, LINK))
    try:
        kind, bound = wait_event()
        assert (kind, bound) == ("bound", {"serverid": VIP, "ip": NODE_IP}), (kind, bound)
        assert len(acks(PRIMARY)) > before[PRIMARY] and len(acks(BACKUP)) == before[BACKUP]
        assert any("(vrrp.51)" in line for line in acks(PRIMARY)[before[PRIMARY]:])
        in_probe("ip netns exec %s busybox ping -c 1 -W 2 %s" % (NETNS, VIP), check=False)
        assert VMAC in in_probe("ip netns exec %s ip neigh show %s" % (NETNS, VIP)).stdout

        starts = dnsmasq_starts(BACKUP)
        subprocess.run(["podman", "kill", PRIMARY], check=True, capture_output=True)
        wait_for_vip(BACKUP, timeout=30)
        # The new holder restarts dnsmasq (keepalived's notify_master), which binds DHCP to the
        # address's interface; then a renewal goes unicast to the identifier.
        deadline = time.monotonic() + 30
        while dnsmasq_starts(BACKUP) <= starts:
            assert time.monotonic() < deadline, "dnsmasq on the new holder did not restart"
            time.sleep(0.5)
        seen = len(events())
        in_probe("kill -USR1 $(cat /tmp/orion-test/dh8.pid)")
        kind, renewed = wait_event(after=seen)
        assert (kind, renewed) == ("renew", {"serverid": VIP, "ip": NODE_IP}), (kind, renewed, events())
        assert any("(vrrp.51)" in line for line in acks(BACKUP)[before[BACKUP]:]), acks(BACKUP)
        # The floating address kept its MAC: the client's neighbour entry needed no change.
        assert VMAC in in_probe("ip netns exec %s ip neigh show %s" % (NETNS, VIP)).stdout
        assert "sending renew to server %s" % VIP in in_probe("cat /tmp/orion-test/dh8.log").stdout
    finally:
        in_probe("kill $(cat /tmp/orion-test/dh8.pid) 2>/dev/null; ip netns del %s" % NETNS, check=False)
        start_container(PRIMARY)
