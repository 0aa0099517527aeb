"""proxyDHCP: a site DHCP server gives the address, the boot servers only the boot answer.

The probe runs a plain dnsmasq as the site's DHCP server (addresses only, no
boot information); the boot servers are converged in proxy mode; the QEMU
guest's iPXE takes its address from the site server and its script URL from
the boot servers' proxy offers.
"""

import re

import pytest

from conftest import SERVERS, converge
from test_qemu_pxe import pxe_boot

SITE_DHCP = ("dnsmasq --port=0 --interface=eth0 --bind-interfaces --dhcp-range=10.231.2.150,10.231.2.160,255.255.255.0,10m "
             "--dhcp-leasefile=/tmp/orion-test/site.leases --pid-file=/tmp/orion-test/site.pid")


@pytest.fixture
def proxy_mode(probe):
    try:
        res = converge("--tags", "boot_server", "-e", "boot_server_dhcp_mode=proxy")
        assert res.returncode == 0, res.stdout[-3000:]
        probe.check_output(SITE_DHCP)
        yield
    finally:
        probe.run("kill $(cat /tmp/orion-test/site.pid)")
        res = converge("--tags", "boot_server")
        assert res.returncode == 0, res.stdout[-3000:]


def test_proxy_mode_boots_a_guest_with_a_site_dhcp_address(proxy_mode, tap, tmp_path, servers):
    for host in servers.values():
        conf = host.file("/etc/dnsmasq.d/orion-boot.conf").content_string
        assert re.search(r"^dhcp-range=.*,proxy,", conf, re.M) and "dhcp-authoritative" not in conf
    text = pxe_boot(tap, tmp_path)
    # The address came from the site server's pool ...
    lease = re.search(r"net0: (10\.231\.2\.(\d+))/255\.255\.255\.0", text)
    assert lease and 150 <= int(lease.group(2)) <= 160, text[-2500:]
    # ... the boot answer from one of the boot servers.
    assert re.search(r"Next server: (%s)" % "|".join(map(re.escape, SERVERS.values())), text), text[-2500:]
    assert "/boot/boot.ipxe... ok" in text
    assert "OrionOS node qemu01 boots image 2026.11.0" in text, text[-2500:]
