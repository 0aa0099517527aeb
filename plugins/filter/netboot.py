# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for network boot: MAC notation, inventory nodes and their checks.

Thin wrappers over plugins/module_utils/netboot.py; documentation for each
filter lives in the YAML file of the same name beside this one.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import netboot
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import etcd
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import inventory


def _wrap(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except netboot.NetbootError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def pxe_mac(value, format="colon"):  # pylint: disable=redefined-builtin
    """Normalize a MAC address and write it in the requested notation."""
    if isinstance(value, (list, tuple)):
        return [_wrap(netboot.format_mac, item, format) for item in value]
    return _wrap(netboot.format_mac, value, format)


def boot_network_errors(nodes, network):
    """Return the list of problems of a boot network and its nodes."""
    if not isinstance(network, dict):
        raise AnsibleFilterError("boot_network_errors: network %r is not a mapping" % (network,))
    return _wrap(netboot.check_boot_network, nodes, network)


def inventory_nodes(names, hostvars, prefix=inventory.NODE_PREFIX):
    """Turn inventory host names into node mappings."""
    try:
        return inventory.nodes(names, hostvars, prefix)
    except KeyError as exc:
        raise AnsibleFilterError("inventory_nodes: host %s is not in hostvars" % exc) from exc


def inventory_servers(names, hostvars):
    """Turn inventory host names into boot server mappings."""
    try:
        return inventory.servers(names, hostvars)
    except KeyError as exc:
        raise AnsibleFilterError("inventory_servers: host %s is not in hostvars" % exc) from exc


def inventory_etcd_members(servers, witnesses, hostvars):
    """Turn the boot servers' and the witnesses' host names into etcd member records."""
    try:
        return etcd.members_from_inventory(servers, witnesses, hostvars)
    except KeyError as exc:
        raise AnsibleFilterError("inventory_etcd_members: host %s is not in hostvars" % exc) from exc


def dhcp_range_slice(dynamic_range, index, count):
    """Return this server's share of a dynamic range as a start/end mapping."""
    if not isinstance(dynamic_range, dict) or "start" not in dynamic_range or "end" not in dynamic_range:
        raise AnsibleFilterError(
            "dhcp_range_slice: %r is not a mapping with start and end" % (dynamic_range,))
    try:
        index, count = int(index), int(count)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("dhcp_range_slice: index %r / count %r are not integers" % (index, count)) from exc
    if not 0 <= index < count:
        raise AnsibleFilterError("dhcp_range_slice: index %d is not in 0..%d" % (index, count - 1))
    first, last = _wrap(netboot.split_range, dynamic_range["start"], dynamic_range["end"], count)[index]
    return {"start": first, "end": last}


def kernel_args_list(value):
    """Return kernel arguments (a string or a list) as a list of words."""
    if value is not None and not isinstance(value, (str, list, tuple)):
        raise AnsibleFilterError("kernel_args_list: %r is not a string or list" % (value,))
    return netboot.kernel_args_list(value)


def subnet_netmask(value):
    """Return the dotted netmask of an IPv4 CIDR network."""
    return _wrap(netboot.subnet_netmask, value)


def ip_in_subnet(address, subnet):
    """True when an address lies inside a subnet."""
    return _wrap(netboot.ip_in_subnet, address, subnet)


class FilterModule:
    """OrionOS network boot filters."""

    def filters(self):
        return {
            "pxe_mac": pxe_mac,
            "boot_network_errors": boot_network_errors,
            "inventory_nodes": inventory_nodes,
            "inventory_servers": inventory_servers,
            "inventory_etcd_members": inventory_etcd_members,
            "dhcp_range_slice": dhcp_range_slice,
            "kernel_args_list": kernel_args_list,
            "subnet_netmask": subnet_netmask,
            "ip_in_subnet": ip_in_subnet,
        }
