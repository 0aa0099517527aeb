# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node inventory and boot-network checks shared by the OrionOS plugins.

Plain Python: the filters and modules are thin wrappers around these
functions, and the unit tests call them without Ansible.
"""

from __future__ import annotations

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import model

# netaddr is imported (and its absence reported) by the fleet model alone.
netaddr = fields.netaddr
HAS_NETADDR = fields.HAS_NETADDR
NETADDR_IMPORT_ERROR = fields.NETADDR_IMPORT_ERROR

MAC_FORMATS = ("colon", "hyphen", "hexhyp", "pxelinux", "bare", "dotted")
DHCP_MODES = model.DHCP_MODES
UNKNOWN_NODE_POLICIES = model.UNKNOWN_NODE_POLICIES
FIRMWARES = fields.FIRMWARES

# A value that cannot be used for network boot (the model's error).
NetbootError = fields.FieldError
require_netaddr = fields.require_netaddr
normalize_mac = fields.mac
kernel_arg_errors = fields.kernel_arg_problems
kernel_args_list = fields.kernel_args


def format_mac(value, fmt="colon"):
    """Return the MAC address ``value`` in the notation ``fmt``.

    colon    52:54:00:aa:bb:01
    hyphen   52-54-00-aa-bb-01
    hexhyp   52-54-00-aa-bb-01 (what iPXE's ${mac:hexhyp} expands to)
    pxelinux 01-52-54-00-aa-bb-01
    bare     525400aabb01
    dotted   5254.00aa.bb01
    """
    mac = normalize_mac(value)
    digits = mac.replace(":", "")
    if fmt == "colon":
        return mac
    if fmt in ("hyphen", "hexhyp"):
        return mac.replace(":", "-")
    if fmt == "pxelinux":
        return "01-" + mac.replace(":", "-")
    if fmt == "bare":
        return digits
    if fmt == "dotted":
        return ".".join(digits[i:i + 4] for i in range(0, 12, 4))
    raise NetbootError(
        "unknown MAC format %r (expected one of %s)" % (fmt, ", ".join(MAC_FORMATS))
    )


def split_range(start, end, count):
    """Split the IPv4 range start..end into ``count`` disjoint slices.

    Returns a list of (first, last) address strings, one per server, in
    order. Every address of the range belongs to exactly one slice; slices
    differ in size by at most one address. Raises NetbootError when the
    range is reversed or has fewer addresses than ``count``.
    """
    require_netaddr()
    first = int(netaddr.IPAddress(start))
    last = int(netaddr.IPAddress(end))
    if count < 1:
        raise NetbootError("cannot split a range into %d slices" % count)
    if last < first:
        raise NetbootError("range %s-%s ends before it starts" % (start, end))
    size = last - first + 1
    if size < count:
        raise NetbootError(
            "range %s-%s has %d addresses, fewer than the %d servers sharing it"
            % (start, end, size, count)
        )
    base, extra = divmod(size, count)
    slices = []
    cursor = first
    for index in range(count):
        length = base + (1 if index < extra else 0)
        slices.append(
            (str(netaddr.IPAddress(cursor)), str(netaddr.IPAddress(cursor + length - 1)))
        )
        cursor += length
    return slices


def subnet_netmask(value):
    """Return the dotted netmask of an IPv4 CIDR network such as 10.0.0.0/24."""
    require_netaddr()
    try:
        net = netaddr.IPNetwork(str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise NetbootError("%r is not a CIDR network" % (value,))
    if net.version != 4:
        raise NetbootError("%r is not an IPv4 network" % (value,))
    return str(net.netmask)


def check_boot_network(nodes, network):
    """Check a boot network and its nodes; return a list of problems.

    ``nodes`` is a list of node mappings (``model.NODE_FIELDS``); ``network``
    holds ``subnet`` (CIDR), ``dhcp_mode``, ``unknown_nodes``,
    ``dynamic_range`` (``start``/``end`` or empty), ``servers`` (list of
    ``name``/``address``), ``kernel_args`` and ``require_image`` (default
    true: every node names its image; false when a boot policy decides).
    The fleet model does the checking; every problem names the node or
    server and the field. An empty list means the input is usable.
    """
    require_netaddr()
    problems = []
    model.parse_fleet(nodes, network or {}, problems)
    return problems


def ip_in_subnet(address, subnet):
    """True when IPv4/IPv6 ``address`` lies inside the CIDR ``subnet``."""
    require_netaddr()
    try:
        return netaddr.IPAddress(str(address)) in netaddr.IPNetwork(str(subnet))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise NetbootError("ip_in_subnet: %r / %r: %s" % (address, subnet, exc)) from exc
