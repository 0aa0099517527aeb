"""DHCP as a real client sees it: busybox udhcpc on the probe host."""

import ipaddress

import pytest

from conftest import SERVERS

IPXE_USER_CLASS = "0x4d:69505845"  # option 77 "iPXE", as iPXE sends it
ARCH_BIOS = "0x5d:0000"  # option 93 client architecture
ARCH_EFI64 = "0x5d:0007"
ARCH_EFI_BC = "0x5d:0009"
PXE_VENDOR = "PXEClient:Arch:00000:UNDI:002001"


def test_known_bios_node_gets_reservation_and_undionly(dhcp):
    lease = dhcp.lease("52:54:00:0b:02:01", [ARCH_BIOS], vendor=PXE_VENDOR)
    assert lease is not None, "no DHCP answer for a reserved MAC"
    assert lease["ip"] == "10.231.2.101"
    assert lease["hostname"] == "probe-bios"
    assert lease["bootfile"] == "undionly.kpxe"
    assert lease["siaddr"] in SERVERS.values()
    assert lease["serverid"] == lease["siaddr"]


@pytest.mark.parametrize("arch", [ARCH_EFI64, ARCH_EFI_BC])
def test_uefi_node_gets_efi_ipxe(dhcp, arch):
    lease = dhcp.lease("52:54:00:0b:02:04", [arch], vendor="PXEClient:Arch:00007:UNDI:003016")
    assert lease is not None
    assert lease["ip"] == "10.231.2.104"
    assert lease["bootfile"] == "ipxe.efi"


def test_ipxe_client_gets_http_script_url(dhcp):
    lease = dhcp.lease("52:54:00:0b:02:01", [ARCH_BIOS, IPXE_USER_CLASS])
    assert lease is not None
    assert lease["ip"] == "10.231.2.101"
    assert lease["bootfile"] == "http://%s/boot/boot.ipxe" % lease["serverid"]


@pytest.mark.parametrize("mac", ["52:54:00:0b:02:02", "52:54:00:0b:02:03"])
def test_every_mac_of_a_node_gets_its_address(dhcp, mac):
    lease = dhcp.lease(mac)
    assert lease is not None
    assert (lease["ip"], lease["hostname"]) == ("10.231.2.102", "probe-multi")


def test_unknown_mac_gets_discovery_address(dhcp):
    lease = dhcp.lease("52:54:00:0b:09:99", [IPXE_USER_CLASS])
    assert lease is not None, "discovery mode must answer unknown MACs"
    ip = ipaddress.ip_address(lease["ip"])
    assert ipaddress.ip_address("10.231.2.200") <= ip <= ipaddress.ip_address("10.231.2.219")
    assert lease.get("hostname", "") == ""
    assert lease["bootfile"] == "http://%s/boot/boot.ipxe" % lease["serverid"]


def test_each_server_gives_known_nodes_the_same_answer(dhcp, servers):
    """Stop one server's dnsmasq at a time: the other answers identically."""
    answers = {}
    try:
        for name, addr in SERVERS.items():
            for other, host in servers.items():
                host.check_output("systemctl %s dnsmasq" % ("start" if other == name else "stop"))
            lease = dhcp.lease("52:54:00:0b:02:04", [ARCH_EFI64])
            assert lease is not None, "no answer from %s alone" % name
            assert lease["serverid"] == addr
            answers[name] = (lease["ip"], lease["hostname"], lease["bootfile"], lease["subnet"])
    finally:
        for host in servers.values():
            host.check_output("systemctl start dnsmasq")
    assert len(set(answers.values())) == 1, answers
