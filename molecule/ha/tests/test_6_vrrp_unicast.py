"""VRRP without multicast and with a sub-second interval: unicast peers and
advert_int 0.2 s (VRRPv3). The probe sees no multicast advertisement any more,
the backup receives the primary's advertisements unicast, about five a second,
and takes over when the primary dies. How fast it takes over is measured by
benchmarks/ha_failover.py (make bench-ha), side by side with advert_int 1 s."""

import subprocess
import time

from conftest import PROBE, SERVERS, converge, start_container, vip_holders, wait_for_vip

PRIMARY, BACKUP = "orion-ha-srv1", "orion-ha-srv2"

# Counts the VRRP frames (IPv4 protocol 112) the probe's interface sees in a
# few seconds, by destination address. AF_PACKET sees every frame the bridge
# hands to the probe, joined group or not.
COUNT_VRRP = r"""
import collections, socket, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
sock.bind(("eth0", 0))
sock.settimeout(0.2)
seen = collections.Counter()
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        frame = sock.recv(2048)
    except socket.timeout:
        continue
    if len(frame) > 34 and frame[23] == 112:
        seen[socket.inet_ntoa(frame[30:34])] += 1
print(" ".join("%s=%d" % item for item in sorted(seen.items())))
"""


def vrrp_seen(seconds=3.0, where=PROBE):
    out = subprocess.run(["podman", "exec", where, "python3", "-c", COUNT_VRRP, str(seconds)],
                         capture_output=True, text=True, check=True).stdout.split()
    return {k: int(v) for k, v in (item.split("=") for item in out)}


def test_unicast_and_sub_second_interval():
    wait_for_vip(PRIMARY, timeout=60)
    multicast = vrrp_seen()
    # advert_int 1 s: about three advertisements in three seconds, to the VRRP group.
    assert 2 <= multicast.get("224.0.0.18", 0) <= 5, multicast
    res = converge("--tags", "vrrp", "-e", "vrrp_unicast=true", "-e", "vrrp_advert_int=0.2")
    assert res.returncode == 0, res.stdout[-3000:]
    try:
        wait_for_vip(PRIMARY, timeout=60)
        time.sleep(1)
        unicast = vrrp_seen()
        assert unicast.get("224.0.0.18", 0) == 0, unicast
        # On the backup: the primary's advertisements, addressed to the backup
        # itself. 15 are due in 3 s at 0.2 s; at 1 s there would be 3.
        at_backup = vrrp_seen(where=BACKUP)
        assert at_backup.get("224.0.0.18", 0) == 0, at_backup
        assert at_backup.get(SERVERS[BACKUP], 0) >= 8, at_backup
        start = time.monotonic()
        subprocess.run(["podman", "kill", PRIMARY], check=True, capture_output=True)
        try:
            wait_for_vip(BACKUP, timeout=15, step=0.02)
            print("\nVRRP takeover with unicast peers and advert_int 0.2 s: %.2f s"
                  % (time.monotonic() - start))
        finally:
            start_container(PRIMARY)
    finally:
        res = converge("--tags", "vrrp")
    assert res.returncode == 0, res.stdout[-3000:]
    wait_for_vip(PRIMARY, timeout=90)
    assert vip_holders() == [PRIMARY]
    assert vrrp_seen().get("224.0.0.18", 0) >= 2
