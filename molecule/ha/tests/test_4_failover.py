"""The floating address: on the primary, on the backup within seconds after the
primary dies or one of its services fails, and back by the configured preempt
behaviour. The boot services answer on it from the probe throughout."""

import subprocess
import time
import uuid

import pytest

from conftest import PROBE, SERVERS, STORE, VIP, converge, start_container, vip_holders, wait_for_vip
from test_3_logs import send, wait_line

PRIMARY, BACKUP = "orion-ha-srv1", "orion-ha-srv2"
NODE_MAC, NODE_IP = "52:54:00:0c:03:01", "10.231.3.101"


def probe_run(*cmd, check=True):
    return subprocess.run(["podman", "exec", PROBE, *cmd], capture_output=True, check=check)


def mac_of(name):
    return subprocess.run(["podman", "exec", name, "cat", "/sys/class/net/eth0/address"],
                          capture_output=True, text=True, check=True).stdout.strip()


def vip_neighbour():
    out = subprocess.run(["podman", "exec", PROBE, "ip", "neigh", "show", VIP],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


def services_answer_on_vip(dhcp):
    """DHCP, TFTP, HTTP and NFS as a node uses them, through the floating address."""
    lease = dhcp.lease(NODE_MAC)
    assert lease and lease.get("ip") == NODE_IP, lease
    # The answer sends the node to the floating address for TFTP.
    assert lease.get("siaddr") == VIP, lease
    tftp = probe_run("curl", "-s", "--fail", "--max-time", "10", "-o", "/dev/null", "-w", "%{size_download}",
                     "tftp://%s/undionly.kpxe" % VIP)
    assert int(tftp.stdout) > 10000
    http = probe_run("curl", "-s", "--fail", "--max-time", "10", "http://%s/boot/boot.ipxe" % VIP)
    assert http.stdout.startswith(b"#!ipxe")
    nfs = probe_run("nfs-cat", "nfs://%s%s/images/2026.11.0/vmlinuz" % (VIP, STORE))
    assert nfs.stdout.startswith(b"kernel 2026.11.0")


def test_floating_address_is_on_the_primary():
    wait_for_vip(PRIMARY, timeout=60)
    assert vip_holders() == [PRIMARY]


def test_backup_takes_over_when_the_primary_dies(dhcp, record_property):
    wait_for_vip(PRIMARY, timeout=60)
    probe_run("ping", "-c", "1", "-W", "2", VIP, check=False)
    assert vip_neighbour() == mac_of(PRIMARY)
    backup_mac = mac_of(BACKUP)
    start = time.monotonic()
    subprocess.run(["podman", "kill", PRIMARY], check=True, capture_output=True)
    try:
        waited = wait_for_vip(BACKUP, timeout=15)
        took = time.monotonic() - start
        print("\nVRRP takeover after killing the primary: %.2f s" % took)
        # How fast is a figure for benchmarks/ha_failover.py (make bench-ha);
        # here the backup must simply take over.
        record_property("takeover_seconds", round(took, 2))
        assert waited >= 0
        # The backup's gratuitous ARP moved the probe's neighbour entry without the probe asking.
        deadline = time.monotonic() + 5
        while vip_neighbour() != backup_mac and time.monotonic() < deadline:
            time.sleep(0.1)
        assert vip_neighbour() == backup_mac
        services_answer_on_vip(dhcp)
        text = "after-failover-%s" % uuid.uuid4().hex[:8]
        send("tcp", "hanode01", text)
        assert wait_line(BACKUP, "hanode01", text)
    finally:
        start_container(PRIMARY)


def test_returning_primary_takes_the_address_back_after_the_preempt_delay():
    # vrrp_preempt_delay is 5 s in this scenario: the backup keeps the address
    # until the primary has been healthy that long, then the primary has it.
    waited = wait_for_vip(PRIMARY, timeout=90)
    print("\nprimary had the floating address again %.1f s after its container was up" % waited)
    assert vip_holders() == [PRIMARY]


def test_a_failed_service_gives_up_the_address(dhcp):
    wait_for_vip(PRIMARY, timeout=60)
    subprocess.run(["podman", "exec", PRIMARY, "systemctl", "stop", "nginx"], check=True)
    try:
        waited = wait_for_vip(BACKUP, timeout=30)
        print("\nnginx stopped on the primary: backup had the address after %.1f s" % waited)
        services_answer_on_vip(dhcp)
    finally:
        subprocess.run(["podman", "exec", PRIMARY, "systemctl", "start", "nginx"], check=True)
    waited = wait_for_vip(PRIMARY, timeout=60)
    print("nginx back: primary had the address again after %.1f s" % waited)


@pytest.mark.parametrize("service", ["nfs-ganesha", "dnsmasq"])
def test_other_failed_services_give_up_the_address(service):
    wait_for_vip(PRIMARY, timeout=60)
    subprocess.run(["podman", "exec", PRIMARY, "systemctl", "stop", service], check=True)
    try:
        wait_for_vip(BACKUP, timeout=30)
    finally:
        subprocess.run(["podman", "exec", PRIMARY, "systemctl", "start", service], check=True)
    wait_for_vip(PRIMARY, timeout=60)


def test_every_server_answers_on_its_own_address_too():
    # The test before restarted services on the primary and moved the address twice: each server is given a
    # minute to answer (on a loaded machine a first request can take more than curl's 10 s).
    for address in SERVERS.values():
        deadline = time.monotonic() + 60
        while True:
            http = probe_run("curl", "-s", "--fail", "--max-time", "10", "http://%s/boot/boot.ipxe" % address,
                             check=False)
            if http.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert http.returncode == 0 and http.stdout.startswith(b"#!ipxe"), (address, http.returncode, http.stderr)


def test_nopreempt_leaves_the_address_with_the_backup():
    """With vrrp_preempt false, a returning primary does not take the address back."""
    res = converge("--tags", "vrrp", "-e", "vrrp_preempt=false")
    assert res.returncode == 0, res.stdout[-3000:]
    try:
        wait_for_vip(PRIMARY, timeout=60)
        subprocess.run(["podman", "kill", PRIMARY], check=True, capture_output=True)
        wait_for_vip(BACKUP, timeout=15)
        start_container(PRIMARY)
        # Longer than the preempt delay (5 s) plus the checks' rise time: still on the backup.
        time.sleep(25)
        assert vip_holders() == [BACKUP]
    finally:
        res = converge("--tags", "vrrp")
    assert res.returncode == 0, res.stdout[-3000:]
    # Preempting again: the primary takes the address back.
    wait_for_vip(PRIMARY, timeout=90)
