"""Unit tests of the network boot engine (no Ansible needed)."""

import ipaddress

import pytest
from hypothesis import given, strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import netboot
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import inventory

from ansible_collections.orionos.diskless.tests.unit.plugins.module_utils.fleet_samples import NETWORK as SMALL, node

NETWORK = dict(SMALL, kernel_args=["console=ttyS0,115200n8"])


@pytest.mark.parametrize("raw", ["52:54:00:AA:bb:01", "52-54-00-aa-BB-01", "5254.00aa.bb01",
                                 "525400AABB01", "01-52-54-00-aa-bb-01", " 52:54:00:aa:bb:01 "])
def test_normalize_mac_accepts_common_notations(raw):
    assert netboot.normalize_mac(raw) == "52:54:00:aa:bb:01"


@pytest.mark.parametrize("raw", ["52:54:00:aa:bb", "52:54:00:aa:bb:zz", "52:54-00:aa:bb:01", "",
                                 "01:00:5e:00:00:01", "00:00:00:00:00:00", 525400, None, "52:54:00:aa:bb:01\n;"])
def test_normalize_mac_refuses_bad_values_naming_them(raw):
    with pytest.raises(netboot.NetbootError) as err:
        netboot.normalize_mac(raw)
    assert repr(raw) in str(err.value)


@pytest.mark.parametrize("fmt,expected", [
    ("colon", "52:54:00:aa:bb:01"), ("hyphen", "52-54-00-aa-bb-01"), ("hexhyp", "52-54-00-aa-bb-01"),
    ("pxelinux", "01-52-54-00-aa-bb-01"), ("bare", "525400aabb01"), ("dotted", "5254.00aa.bb01")])
def test_format_mac(fmt, expected):
    assert netboot.format_mac("52:54:00:AA:BB:01", fmt) == expected


def test_format_mac_refuses_unknown_format():
    with pytest.raises(netboot.NetbootError, match="unknown MAC format 'cisco'"):
        netboot.format_mac("52:54:00:aa:bb:01", "cisco")


mac_bytes = st.lists(st.integers(0, 255), min_size=6, max_size=6).filter(
    lambda b: not b[0] & 1 and any(b))


@given(mac_bytes, st.sampled_from(netboot.MAC_FORMATS))
def test_every_notation_normalizes_back(octets, fmt):
    mac = ":".join("%02x" % o for o in octets)
    assert netboot.normalize_mac(netboot.format_mac(mac, fmt)) == mac
    assert netboot.normalize_mac(netboot.format_mac(mac, fmt).upper()) == mac


@given(st.integers(0, 2**32 - 2000), st.integers(0, 1500), st.integers(1, 16))
def test_split_range_slices_are_disjoint_and_cover(first, length, count):
    start = str(ipaddress.IPv4Address(first))
    end = str(ipaddress.IPv4Address(first + length))
    if length + 1 < count:
        with pytest.raises(netboot.NetbootError):
            netboot.split_range(start, end, count)
        return
    slices = netboot.split_range(start, end, count)
    assert len(slices) == count
    expected = first
    sizes = []
    for lo, hi in slices:
        lo, hi = int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi))
        assert lo == expected and hi >= lo
        sizes.append(hi - lo + 1)
        expected = hi + 1
    assert expected == first + length + 1
    assert max(sizes) - min(sizes) <= 1


def test_good_network_has_no_problems():
    nodes = [node(), node("n2", ["52-54-00-00-00-02", "5254.0000.0003"], "10.0.0.12",
                          fallback_image="2026.10.0", kernel_args="quiet panic=10", firmware="uefi")]
    assert netboot.check_boot_network(nodes, NETWORK) == []


@pytest.mark.parametrize("nodes,expected", [
    ([node(mac="zz")], "node n1: mac: malformed MAC address 'zz'"),
    ([node(), node("n2", "52-54-00-00-00-01", "10.0.0.12")], "node n2: mac 52:54:00:00:00:01 is already used by node n1"),
    ([node(), node("n1", "52:54:00:00:00:02", "10.0.0.12")], "node n1: name is used twice"),
    ([node(), node("n2", "52:54:00:00:00:02", "10.0.0.11")], "node n2: ip 10.0.0.11 is already used by node n1"),
    ([node(ip="10.0.1.11")], "node n1: ip 10.0.1.11 is outside the node subnet 10.0.0.0/24"),
    ([node(ip="10.0.0.255")], "node n1: ip 10.0.0.255 is outside the node subnet"),
    ([node(ip="10.0.0.210")], "node n1: ip 10.0.0.210 is inside the dynamic range 10.0.0.200-10.0.0.219"),
    ([node(ip="10.0.0.2")], "node n1: ip 10.0.0.2 is the address of server s1"),
    ([node(ip="ten")], "node n1: ip 'ten' is not an IPv4 address"),
    ([node(ip=None)], "node n1: ip is missing"),
    ([node(name="N_1")], "node N_1: name 'N_1' is not a valid host name"),
    ([node(kernel_args="quiet\nshell")], "node n1: kernel_args: contains a line break"),
    ([node(kernel_args=["a=${x}"])], "node n1: kernel_args: 'a=${x}' has characters"),
    ([node(kernel_args="init=/bin/sh;reboot")], "has characters that are not allowed"),
    ([node(image="../../etc")], "node n1: image '../../etc' is not a valid image version"),
    ([node(firmware="coreboot")], "node n1: firmware 'coreboot' is not one of bios, uefi"),
])
def test_bad_nodes_are_named(nodes, expected):
    problems = netboot.check_boot_network(nodes, NETWORK)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("change,expected", [
    ({"dhcp_mode": "relay"}, "boot network: dhcp_mode 'relay' is not one of authoritative, proxy"),
    ({"unknown_nodes": "allow"}, "boot network: unknown_nodes 'allow'"),
    ({"subnet": "10.0.0.1/24"}, "has host bits set"),
    ({"subnet": "fd00::/64"}, "is not IPv4"),
    ({"dynamic_range": {"start": "10.0.1.200", "end": "10.0.0.219"}}, "dynamic_range.start 10.0.1.200 is outside"),
    ({"dynamic_range": {}}, "dynamic_range must give the addresses"),
    ({"servers": [{"name": "s1", "address": "10.0.9.2"}]}, "server s1: address 10.0.9.2 is outside the node subnet"),
    ({"servers": [{"name": "s1", "address": "10.0.0.2"}, {"name": "s2", "address": "10.0.0.2"}]},
     "server s2: address 10.0.0.2 is already used by server s1"),
    ({"servers": []}, "servers is empty"),
    ({"kernel_args": ["a b'c"]}, "boot network: kernel_args"),
])
def test_bad_network_settings_are_named(change, expected):
    problems = netboot.check_boot_network([node()], dict(NETWORK, **change))
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once():
    problems = netboot.check_boot_network(
        [node(mac="bad"), node("n2", "52:54:00:00:00:02", "10.0.9.9")], dict(NETWORK, dhcp_mode="x"))
    assert len(problems) == 3


def test_proxy_mode_needs_the_node_ip_its_configuration_is_answered_to():
    net = dict(NETWORK, dhcp_mode="proxy", dynamic_range={})
    assert netboot.check_boot_network([node(ip=None)], net) == [
        "node n1: ip is missing (the servers answer a node's configuration and reports only from its address: "
        "give the one the site's DHCP server reserves for it)"]
    assert netboot.check_boot_network([node()], net) == []


SAFE = st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=20)


@given(SAFE)
def test_accepted_kernel_args_cannot_break_out(word):
    if not netboot.kernel_arg_errors("x", [word]):
        for bad in "\n\r \t;&|$`'\"\\<>(){}[]#!*?~":
            assert bad not in word


def test_inventory_nodes_sorted_and_passed_through():
    hostvars = {"b": {"orion_node_mac": "m2", "group_names": ["g2", "g1"]},
                "a": {"orion_node_mac": "m1", "orion_node_ip": "10.0.0.1", "group_names": []}}
    assert inventory.nodes(["b", "a"], hostvars) == [
        {"name": "a", "groups": [], "mac": "m1", "ip": "10.0.0.1"},
        {"name": "b", "groups": ["g1", "g2"], "mac": "m2"}]


def test_subnet_netmask():
    assert netboot.subnet_netmask("10.0.0.0/22") == "255.255.252.0"
    with pytest.raises(netboot.NetbootError, match="'x' is not a CIDR network"):
        netboot.subnet_netmask("x")


def test_ip_in_subnet():
    assert netboot.ip_in_subnet("10.0.0.10", "10.0.0.0/24")
    assert not netboot.ip_in_subnet("10.0.1.10", "10.0.0.0/24")
    assert netboot.ip_in_subnet("fd00::5", "fd00::/64")
    with pytest.raises(netboot.NetbootError, match="'10.0.0.300'"):
        netboot.ip_in_subnet("10.0.0.300", "10.0.0.0/24")
