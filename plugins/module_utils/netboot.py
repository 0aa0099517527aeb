# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node inventory and boot-network checks shared by the OrionOS plugins.

Plain Python: the filters and modules are thin wrappers around these
functions, and the unit tests call them without Ansible.
"""

from __future__ import annotations

import re

try:
    import netaddr

    HAS_NETADDR = True
    NETADDR_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without netaddr
    HAS_NETADDR = False
    NETADDR_IMPORT_ERROR = exc


MAC_FORMATS = ("colon", "hyphen", "hexhyp", "pxelinux", "bare", "dotted")
DHCP_MODES = ("authoritative", "proxy")
UNKNOWN_NODE_POLICIES = ("ignore", "discovery")
FIRMWARES = ("bios", "uefi")

# A node name must be a valid DNS label: it ends up in file names, DHCP
# host names, iPXE scripts and the kernel command line.
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
# Image versions name directories and URLs.
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
# One kernel argument: no whitespace, quotes, iPXE '${', shell or iPXE
# metacharacters. Anything else is refused rather than escaped.
_KARG_RE = re.compile(r"^[A-Za-z0-9_.,:=/+@%-]+\Z")

_HEX12 = re.compile(r"^[0-9a-f]{12}\Z")


class NetbootError(ValueError):
    """A value that cannot be used for network boot."""


def require_netaddr():
    """Raise a helpful error when netaddr is missing."""
    if not HAS_NETADDR:
        raise NetbootError(
            "the Python library 'netaddr' is required on the controller "
            "(pip install netaddr): %s" % NETADDR_IMPORT_ERROR
        )


def normalize_mac(value):
    """Return a MAC address in lower-case colon form.

    Accepts colon, hyphen, Cisco dotted and bare hex notation, in either case,
    and the pxelinux ``01-`` form. Raises NetbootError naming the value.
    """
    if not isinstance(value, str):
        raise NetbootError("MAC address %r is not a string" % (value,))
    raw = value.strip().lower()
    if re.match(r"^01-([0-9a-f]{2}-){5}[0-9a-f]{2}\Z", raw):
        raw = raw[3:]
    if re.match(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}\Z", raw):
        if ":" in raw and "-" in raw:
            raise NetbootError("MAC address %r mixes ':' and '-'" % value)
        digits = raw.replace(":", "").replace("-", "")
    elif re.match(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}\Z", raw):
        digits = raw.replace(".", "")
    elif _HEX12.match(raw):
        digits = raw
    else:
        raise NetbootError("malformed MAC address %r" % (value,))
    first = int(digits[:2], 16)
    if first & 1:
        raise NetbootError("MAC address %r is a multicast address" % (value,))
    if digits == "000000000000":
        raise NetbootError("MAC address %r is all zeros" % (value,))
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


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


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _ip(value):
    try:
        return netaddr.IPAddress(str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def kernel_arg_errors(where, args):
    """Return the problems of a kernel argument string or list."""
    errors = []
    if args is None:
        return errors
    if isinstance(args, str):
        if "\n" in args or "\r" in args:
            return ["%s: contains a line break" % where]
        items = args.split()
    elif isinstance(args, (list, tuple)):
        items = list(args)
    else:
        return ["%s: %r is not a string or list" % (where, args)]
    for item in items:
        if not isinstance(item, str) or not _KARG_RE.match(item):
            errors.append(
                "%s: %r has characters that are not allowed in a kernel argument "
                "(allowed: letters, digits and _ . , : = / + @ %% -)" % (where, item)
            )
    return errors


def kernel_args_list(args):
    """Return kernel arguments as a list of words."""
    if not args:
        return []
    if isinstance(args, str):
        return args.split()
    return list(args)


def check_boot_network(nodes, network):
    """Check a boot network and its nodes; return a list of problems.

    ``nodes`` is a list of dicts with ``name``, ``mac`` (string or list),
    ``ip`` and optional ``image``, ``fallback_image``, ``kernel_args``,
    ``firmware``. ``network`` is a dict with ``subnet`` (CIDR), ``dhcp_mode``,
    ``unknown_nodes``, ``dynamic_range`` (``start``/``end`` or empty),
    ``servers`` (list of ``name``/``address``), ``kernel_args`` and
    ``require_image`` (default true: every node names its image; false when a
    boot policy decides).

    Every problem names the node or server and the field. An empty list means
    the input is usable.
    """
    require_netaddr()
    errors = []
    network = network or {}

    mode = network.get("dhcp_mode")
    if mode not in DHCP_MODES:
        errors.append(
            "boot network: dhcp_mode %r is not one of %s" % (mode, ", ".join(DHCP_MODES))
        )
    unknown = network.get("unknown_nodes", "ignore")
    if unknown not in UNKNOWN_NODE_POLICIES:
        errors.append(
            "boot network: unknown_nodes %r is not one of %s"
            % (unknown, ", ".join(UNKNOWN_NODE_POLICIES))
        )

    subnet = None
    try:
        subnet = netaddr.IPNetwork(str(network.get("subnet")))
        if subnet.version != 4:
            errors.append("boot network: subnet %r is not IPv4" % network.get("subnet"))
            subnet = None
        elif str(subnet.cidr) != str(subnet):
            errors.append(
                "boot network: subnet %r has host bits set (did you mean %s?)"
                % (network.get("subnet"), subnet.cidr)
            )
            subnet = None
    except (netaddr.AddrFormatError, ValueError, TypeError):
        errors.append("boot network: subnet %r is not a CIDR network" % network.get("subnet"))

    def in_subnet(addr):
        return subnet is not None and addr in subnet and addr not in (
            subnet.network, subnet.broadcast)

    # Dynamic range (only for unknown nodes in authoritative mode).
    dyn = network.get("dynamic_range") or {}
    dyn_first = dyn_last = None
    if dyn:
        dyn_first, dyn_last = _ip(dyn.get("start")), _ip(dyn.get("end"))
        if dyn_first is None:
            errors.append("boot network: dynamic_range.start %r is not an IPv4 address" % dyn.get("start"))
        if dyn_last is None:
            errors.append("boot network: dynamic_range.end %r is not an IPv4 address" % dyn.get("end"))
        if dyn_first is not None and dyn_last is not None:
            if dyn_last < dyn_first:
                errors.append(
                    "boot network: dynamic_range %s-%s ends before it starts" % (dyn_first, dyn_last)
                )
            for label, addr in (("start", dyn_first), ("end", dyn_last)):
                if subnet is not None and not in_subnet(addr):
                    errors.append(
                        "boot network: dynamic_range.%s %s is outside the node subnet %s"
                        % (label, addr, subnet)
                    )
    if mode == "authoritative" and unknown == "discovery" and not dyn:
        errors.append(
            "boot network: unknown_nodes is 'discovery' in authoritative mode, "
            "so dynamic_range must give the addresses unknown nodes get"
        )

    def in_dynamic(addr):
        return dyn_first is not None and dyn_last is not None and dyn_first <= addr <= dyn_last

    # Servers.
    servers = _as_list(network.get("servers"))
    if not servers:
        errors.append("boot network: servers is empty; at least one boot server is needed")
    server_addrs = {}
    for index, server in enumerate(servers):
        sname = server.get("name") if isinstance(server, dict) else None
        label = "server %s" % (sname or "#%d" % (index + 1))
        if not isinstance(server, dict):
            errors.append("%s: %r is not a mapping" % (label, server))
            continue
        addr = _ip(server.get("address"))
        if addr is None:
            errors.append("%s: address %r is not an IPv4 address" % (label, server.get("address")))
            continue
        if subnet is not None and not in_subnet(addr):
            errors.append("%s: address %s is outside the node subnet %s" % (label, addr, subnet))
        if in_dynamic(addr):
            errors.append("%s: address %s is inside the dynamic range" % (label, addr))
        if addr in server_addrs:
            errors.append(
                "%s: address %s is already used by server %s" % (label, addr, server_addrs[addr])
            )
        server_addrs[addr] = sname

    errors.extend(kernel_arg_errors("boot network: kernel_args", network.get("kernel_args")))

    # Nodes.
    seen_names = {}
    seen_macs = {}
    seen_ips = {}
    for index, node in enumerate(_as_list(nodes)):
        if not isinstance(node, dict):
            errors.append("node #%d: %r is not a mapping" % (index + 1, node))
            continue
        name = node.get("name")
        label = "node %s" % name if name else "node #%d" % (index + 1)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            errors.append(
                "%s: name %r is not a valid host name (lower-case letters, digits, '-')"
                % (label, name)
            )
        elif name in seen_names:
            errors.append("%s: name is used twice" % label)
        seen_names[name] = True

        macs = _as_list(node.get("mac"))
        if not macs:
            errors.append("%s: mac is missing" % label)
        for raw in macs:
            try:
                mac = normalize_mac(raw)
            except NetbootError as exc:
                errors.append("%s: mac: %s" % (label, exc))
                continue
            if mac in seen_macs:
                errors.append(
                    "%s: mac %s is already used by node %s" % (label, mac, seen_macs[mac])
                )
            else:
                seen_macs[mac] = name

        raw_ip = node.get("ip")
        if raw_ip in (None, ""):
            if mode == "authoritative":
                errors.append("%s: ip is missing (authoritative DHCP reserves one per node)" % label)
        else:
            addr = _ip(raw_ip)
            if addr is None or addr.version != 4:
                errors.append("%s: ip %r is not an IPv4 address" % (label, raw_ip))
            else:
                if subnet is not None and not in_subnet(addr):
                    errors.append("%s: ip %s is outside the node subnet %s" % (label, addr, subnet))
                if in_dynamic(addr):
                    errors.append(
                        "%s: ip %s is inside the dynamic range %s-%s" % (label, addr, dyn_first, dyn_last)
                    )
                if addr in server_addrs:
                    errors.append(
                        "%s: ip %s is the address of server %s" % (label, addr, server_addrs[addr])
                    )
                if addr in seen_ips:
                    errors.append("%s: ip %s is already used by node %s" % (label, addr, seen_ips[addr]))
                else:
                    seen_ips[addr] = name

        for field in ("image", "fallback_image"):
            value = node.get(field)
            if field == "image" and value in (None, "") and network.get("require_image", True):
                errors.append("%s: image is missing" % label)
            elif value not in (None, "") and (
                not isinstance(value, str) or not _VERSION_RE.match(value)
            ):
                errors.append("%s: %s %r is not a valid image version" % (label, field, value))

        firmware = node.get("firmware")
        if firmware not in (None, "") and firmware not in FIRMWARES:
            errors.append(
                "%s: firmware %r is not one of %s" % (label, firmware, ", ".join(FIRMWARES))
            )
        errors.extend(kernel_arg_errors("%s: kernel_args" % label, node.get("kernel_args")))
    return errors


def inventory_nodes(names, hostvars, prefix="orion_node_"):
    """Build node dicts from inventory hosts.

    Each host in ``names`` contributes ``<prefix>mac``, ``<prefix>ip``,
    ``<prefix>image``, ``<prefix>fallback_image``, ``<prefix>kernel_args``,
    ``<prefix>firmware``, ``<prefix>arch``, ``<prefix>labels`` and its
    ``group_names``. Values
    are passed through unchanged: check_boot_network() judges them.
    """
    nodes = []
    for name in sorted(names):
        hv = hostvars[name]
        node = {"name": name, "groups": sorted(hv.get("group_names", []))}
        for key in ("mac", "ip", "image", "fallback_image", "kernel_args", "firmware", "arch", "labels"):
            value = hv.get(prefix + key)
            if value is not None:
                node[key] = value
        nodes.append(node)
    return nodes


def dhcp_host_line(node):
    """Return the dnsmasq dhcp-hostsfile line of a checked node."""
    macs = [normalize_mac(m) for m in _as_list(node.get("mac"))]
    fields = macs + [str(node["ip"]), node["name"]] if node.get("ip") else macs + [node["name"]]
    return ",".join(fields)


def ip_in_subnet(address, subnet):
    """True when IPv4/IPv6 ``address`` lies inside the CIDR ``subnet``."""
    require_netaddr()
    try:
        return netaddr.IPAddress(str(address)) in netaddr.IPNetwork(str(subnet))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise NetbootError("ip_in_subnet: %r / %r: %s" % (address, subnet, exc)) from exc
