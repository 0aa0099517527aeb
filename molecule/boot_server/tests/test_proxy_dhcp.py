"""proxyDHCP: a site DHCP server gives the address, the boot servers only the boot answer.

The probe runs busybox udhcpd as the site's DHCP server (addresses only); the
boot servers are converged in proxy mode; the QEMU guest's iPXE takes its
address from the site server and its script URL from the proxy offers.
"""

import pytest

from conftest import converge
from test_qemu_pxe import pxe_boot


UDHCPD_CONF = """start 10.231.2.150
end 10.231.2.160
interface eth0
max_leases 11
lease_file /tmp/orion-test/udhcpd.leases
option subnet 255.255.255.0
option lease 600
"""


@pytest.fixture
def proxy_mode(probe):
    res = converge("-e", "boot_server_dhcp_mode=proxy")
    assert res.returncode == 0, res.stdout[-3000:]
    probe.check_output("cat > /tmp/orion-test/udhcpd.conf <<'EOF'\n%sEOF\n: > /tmp/orion-test/udhcpd.leases" % UDHCPD_CONF)
    probe.check_output("start-stop-daemon --start --background --make-pidfile --pidfile /tmp/orion-test/udhcpd.pid "
                       "--exec /bin/busybox -- udhcpd -f /tmp/orion-test/udhcpd.conf")
    yield
    probe.run("start-stop-daemon --stop --pidfile /tmp/orion-test/udhcpd.pid --remove-pidfile")
    res = converge()
    assert res.returncode == 0, res.stdout[-3000:]


def test_proxy_mode_boots_a_guest_with_a_site_dhcp_address(proxy_mode, tap, tmp_path, servers):
    for host in servers.values():
        conf = host.file("/etc/dnsmasq.d/orion-boot.conf").content_string
        assert ",proxy," in conf and "dhcp-authoritative" not in conf
    text = pxe_boot(tap, tmp_path)
    # The address came from the site server's pool, the script from a boot server.
    assert "net0: 10.231.2.15" in text or "net0: 10.231.2.160" in text, text[-2500:]
    assert "/boot/boot.ipxe" in text
    assert "OrionOS node qemu01 boots image 2026.11.0" in text, text[-2500:]
