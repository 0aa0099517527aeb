"""The filters wrap the engine and raise AnsibleFilterError naming the bad value."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.filter import netboot as filters

F = filters.FilterModule().filters()


def test_all_filters_are_registered():
    assert set(F) == {"pxe_mac", "boot_network_errors", "inventory_nodes", "inventory_servers", "inventory_etcd_members",
                      "dhcp_range_slice",
                      "kernel_args_list", "subnet_netmask", "ip_in_subnet"}


def test_pxe_mac_formats_and_lists():
    assert F["pxe_mac"]("52:54:00:AA:BB:01", format="hexhyp") == "52-54-00-aa-bb-01"
    assert F["pxe_mac"](["5254.00aa.bb01"]) == ["52:54:00:aa:bb:01"]


def test_pxe_mac_error_names_the_value():
    with pytest.raises(AnsibleFilterError, match="malformed MAC address 'nope'"):
        F["pxe_mac"]("nope")


def test_dhcp_range_slice():
    rng = {"start": "10.0.0.200", "end": "10.0.0.219"}
    assert F["dhcp_range_slice"](rng, 0, 2) == {"start": "10.0.0.200", "end": "10.0.0.209"}
    assert F["dhcp_range_slice"](rng, 1, 2) == {"start": "10.0.0.210", "end": "10.0.0.219"}
    with pytest.raises(AnsibleFilterError, match="index 2 is not in 0..1"):
        F["dhcp_range_slice"](rng, 2, 2)
    with pytest.raises(AnsibleFilterError, match="not a mapping with start and end"):
        F["dhcp_range_slice"]({"start": "10.0.0.1"}, 0, 1)


def test_boot_network_errors_needs_a_mapping():
    with pytest.raises(AnsibleFilterError, match="network 'x' is not a mapping"):
        F["boot_network_errors"]([], "x")


def test_kernel_args_list():
    assert F["kernel_args_list"]("a b  c") == ["a", "b", "c"]
    assert F["kernel_args_list"](None) == []
    with pytest.raises(AnsibleFilterError, match="5 is not a string or list"):
        F["kernel_args_list"](5)


def test_subnet_netmask_errors():
    assert F["subnet_netmask"]("10.0.0.0/24") == "255.255.255.0"
    with pytest.raises(AnsibleFilterError, match="'bogus' is not a CIDR network"):
        F["subnet_netmask"]("bogus")


def test_ip_in_subnet_filter():
    assert F["ip_in_subnet"]("10.0.0.9", "10.0.0.0/24")
    with pytest.raises(AnsibleFilterError, match="'nope'"):
        F["ip_in_subnet"]("nope", "10.0.0.0/24")


def test_inventory_etcd_members():
    hostvars = {"s1": {"boot_server_address": "10.0.0.2"}, "w": {"etcd_address": "10.0.0.4"}}
    assert F["inventory_etcd_members"](["s1"], ["w"], hostvars) == [
        {"name": "s1", "address": "10.0.0.2", "witness": False}, {"name": "w", "address": "10.0.0.4", "witness": True}]
    with pytest.raises(AnsibleFilterError, match="inventory_etcd_members: host 'x' is not in hostvars"):
        F["inventory_etcd_members"](["x"], [], hostvars)
