# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Servers, nodes and the boot network, parsed and checked once.

Every ``parse_*`` function takes raw mappings (as the inventory or a module
gives them) and a ``problems`` list; it appends one line per problem, each
naming the node or server, the field and the bad value, and returns the
objects of the usable entries. Callers fail when ``problems`` is not empty,
so nothing is built from a partly bad input.
"""

from __future__ import annotations

import json

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet.fields import FieldError

# The fields of a node, declared here alone. The inventory gives each as
# orion_node_<field> (the name is the host's, the groups its group_names).
NODE_FIELDS = ("name", "mac", "ip", "groups", "labels", "arch", "firmware", "kernel_args",
               "image", "fallback_image")
DHCP_MODES = ("authoritative", "proxy")
UNKNOWN_NODE_POLICIES = ("ignore", "discovery")
DEFAULT_ARCH = "x86_64"


def as_list(value):
    """None -> [], a list stays, anything else becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


class Node:
    """A diskless node: every value checked and in its normal form."""

    __slots__ = ("name", "macs", "ip", "groups", "labels", "arch", "firmware", "kernel_args",
                 "image", "fallback_image")

    def __init__(self, name, macs, ip=None, groups=(), labels=None, arch=DEFAULT_ARCH,
                 firmware=None, kernel_args=(), image=None, fallback_image=None):
        self.name = name
        self.macs = list(macs)
        self.ip = ip
        self.groups = sorted(set(groups))
        self.labels = dict(labels or {})
        self.arch = arch
        self.firmware = firmware
        self.kernel_args = list(kernel_args)
        self.image = image
        self.fallback_image = fallback_image

    def as_dict(self):
        """Plain data (the address as a string), as modules and filters return it."""
        data = {slot: getattr(self, slot) for slot in self.__slots__}
        data["ip"] = str(self.ip) if self.ip is not None else None
        return data

    def __repr__(self):
        return "Node(%s)" % self.name


class Server:
    """A boot server: its inventory name, its address on the node subnet and its VRRP priority (0: by place)."""

    __slots__ = ("name", "address", "priority")

    def __init__(self, name, address, priority=0):
        self.name = name
        self.address = address
        self.priority = priority

    def as_dict(self):
        return {"name": self.name, "address": str(self.address), "priority": self.priority}


class Network:
    """The node subnet and how its DHCP is answered."""

    __slots__ = ("subnet", "dhcp_mode", "unknown_nodes", "dynamic")

    def __init__(self, subnet, dhcp_mode, unknown_nodes, dynamic=None):
        self.subnet = subnet
        self.dhcp_mode = dhcp_mode
        self.unknown_nodes = unknown_nodes
        self.dynamic = dynamic  # (first, last) addresses or None

    def in_dynamic(self, addr):
        return self.dynamic is not None and self.dynamic[0] <= addr <= self.dynamic[1]


# --------------------------------------------------------------- network

def parse_network(raw, problems):
    """The boot network: ``subnet`` (IPv4 CIDR), ``dhcp_mode``, ``unknown_nodes``, ``dynamic_range``."""
    raw = raw or {}
    where = "boot network"
    mode = check(problems, where, fields.choice, raw.get("dhcp_mode"), "dhcp_mode", DHCP_MODES)
    unknown = check(problems, where, fields.choice, raw.get("unknown_nodes", "ignore"), "unknown_nodes",
                    UNKNOWN_NODE_POLICIES)
    subnet = check(problems, where, fields.network, raw.get("subnet"), "subnet")
    dyn = raw.get("dynamic_range") or {}
    dynamic = None
    if dyn:
        if not isinstance(dyn, dict):
            problems.append("%s: dynamic_range %r is not a mapping with start and end" % (where, dyn))
            dyn = {}
        first = check(problems, where, fields.address, dyn.get("start"), "dynamic_range.start", (4,))
        last = check(problems, where, fields.address, dyn.get("end"), "dynamic_range.end", (4,))
        if first is not None and last is not None:
            if last < first:
                problems.append("%s: dynamic_range %s-%s ends before it starts" % (where, first, last))
            for label, addr in (("start", first), ("end", last)):
                if subnet is not None:
                    check(problems, where, fields.on_subnet, addr, subnet, "dynamic_range.%s" % label)
            dynamic = (first, last)
    if mode == "authoritative" and unknown == "discovery" and not dyn:
        problems.append("%s: unknown_nodes is 'discovery' in authoritative mode, "
                        "so dynamic_range must give the addresses unknown nodes get" % where)
    return Network(subnet, mode, unknown, dynamic)


def parse_subnets(raw_subnets, problems):
    """Node subnets: CIDR strings or ``{subnet: CIDR, ...settings}``; two that overlap must agree."""
    subnets = []
    for index, raw in enumerate(as_list(raw_subnets)):
        where = "subnets[%d]" % index
        if isinstance(raw, str):
            raw = {"subnet": raw}
        if not isinstance(raw, dict) or "subnet" not in raw:
            problems.append("%s: %r is not a CIDR or a mapping with 'subnet'" % (where, raw))
            continue
        net = check(problems, where, fields.network, raw["subnet"], "subnet", (4, 6))
        if net is None:
            continue
        settings = {k: v for k, v in raw.items() if k != "subnet"}
        for other_index, other, other_settings in subnets:
            if other.version == net.version and (net in other or other in net) and settings != other_settings:
                problems.append("%s: subnet %s overlaps subnets[%d] %s with different settings (%s vs %s)"
                                % (where, net, other_index, other,
                                   json.dumps(settings, sort_keys=True, default=str),
                                   json.dumps(other_settings, sort_keys=True, default=str)))
        subnets.append((index, net, settings))
    return [net for _index, net, _settings in subnets]


# --------------------------------------------------------------- servers

def parse_servers(raw_servers, problems, network=None):
    """Boot servers ``[{name, address, priority}]``: IPv4 addresses on the node subnet, each used once."""
    servers = []
    seen = {}
    if not as_list(raw_servers):
        problems.append("boot network: servers is empty; at least one boot server is needed")
    for index, raw in enumerate(as_list(raw_servers)):
        name = raw.get("name") if isinstance(raw, dict) else None
        where = "server %s" % (name or "#%d" % (index + 1))
        if not isinstance(raw, dict):
            problems.append("%s: %r is not a mapping" % (where, raw))
            continue
        addr = check(problems, where, fields.address, raw.get("address"), "address", (4,))
        priority = raw.get("priority")
        if priority in (None, "", 0, "0"):
            priority = 0
        else:
            priority = check(problems, where, fields.integer, priority, "priority", 1, 254)
        if addr is None:
            continue
        if network is not None and network.subnet is not None:
            check(problems, where, fields.on_subnet, addr, network.subnet, "address")
        if network is not None and network.in_dynamic(addr):
            problems.append("%s: address %s is inside the dynamic range" % (where, addr))
        if addr in seen:
            problems.append("%s: address %s is already used by server %s" % (where, addr, seen[addr]))
            continue
        seen[addr] = name
        servers.append(Server(name, addr, priority or 0))
    return servers


# ----------------------------------------------------------------- nodes

def parse_nodes(raw_nodes, problems, subnets=None, network=None, servers=(), ip_versions=(4, 6),
                require_image=False):
    """Check node mappings; return the Node objects of the usable ones.

    ``subnets`` (networks) or ``network`` (the boot network, whose subnet,
    dynamic range and DHCP mode apply) say where node addresses may be;
    ``servers`` are the boot servers, whose addresses no node may take. In
    either DHCP mode every node needs an address (the servers answer a node's
    configuration and reports only from it).
    """
    nodes = []
    seen_names, seen_macs, seen_ips = {}, {}, {}
    server_addrs = {server.address: server.name for server in servers}
    if network is not None and network.subnet is not None:
        subnets = [network.subnet]
    # On the boot network every node needs its address: authoritative DHCP
    # reserves it, and in either mode the servers answer a node's
    # configuration and report requests only from it.
    require_ip = network is not None
    for index, raw in enumerate(as_list(raw_nodes)):
        if not isinstance(raw, dict):
            problems.append("nodes[%d]: %r is not a mapping" % (index, raw))
            continue
        name = raw.get("name")
        # A long or unprintable name is quoted once, by its own message; the others say where it is.
        where = "node %s" % name if _plain_name(name) else "nodes[%d]" % index
        count = len(problems)
        for key in sorted(set(raw) - set(NODE_FIELDS), key=str):
            problems.append("%s: unknown field %r (known: %s)" % (where, key, ", ".join(NODE_FIELDS)))
        if check(problems, where, fields.node_name, name) is not None:
            if name in seen_names:
                problems.append("%s: name is used twice (nodes[%d] and nodes[%d])" % (where, seen_names[name], index))
            else:
                seen_names[name] = index

        macs = []
        if not as_list(raw.get("mac")):
            problems.append("%s: mac is missing" % where)
        for raw_mac in as_list(raw.get("mac")):
            try:
                mac = fields.mac(raw_mac)
            except FieldError as exc:
                problems.append("%s: mac: %s" % (where, exc))
                continue
            if seen_macs.get(mac, name) != name:
                problems.append("%s: mac %s is already used by node %s" % (where, mac, seen_macs[mac]))
            elif mac not in macs:
                seen_macs[mac] = name
                macs.append(mac)

        ip = None
        if raw.get("ip") in (None, ""):
            if require_ip and network.dhcp_mode == "authoritative":
                problems.append("%s: ip is missing (authoritative DHCP reserves one per node)" % where)
            elif require_ip:
                problems.append("%s: ip is missing (the servers answer a node's configuration and reports only "
                                "from its address: give the one the site's DHCP server reserves for it)" % where)
        else:
            ip = check(problems, where, fields.address, raw.get("ip"), "ip", ip_versions)
        if ip is not None:
            _check_node_ip(problems, where, ip, subnets, network, server_addrs)
            if ip in seen_ips:
                problems.append("%s: ip %s is already used by node %s" % (where, ip, seen_ips[ip]))
            else:
                seen_ips[ip] = name

        groups = [group for group in (check(problems, where, fields.identifier, g, "group")
                                      for g in as_list(raw.get("groups"))) if group is not None]
        labels = fields.labels(raw.get("labels"), "labels", problems, where)
        arch = check(problems, where, fields.choice, raw.get("arch") or DEFAULT_ARCH, "arch", fields.ARCHES)
        firmware = raw.get("firmware") or None
        if firmware is not None:
            check(problems, where, fields.choice, firmware, "firmware", fields.FIRMWARES)
        problems.extend(fields.kernel_arg_problems("%s: kernel_args" % where, raw.get("kernel_args"), "user"))
        images = {}
        for key in ("image", "fallback_image"):
            value = raw.get(key)
            if value in (None, ""):
                if key == "image" and require_image:
                    problems.append("%s: image is missing" % where)
                continue
            images[key] = check(problems, where, fields.version, value, key)
        if len(problems) == count:
            nodes.append(Node(name, macs, ip=ip, groups=groups, labels=labels, arch=arch, firmware=firmware,
                              kernel_args=fields.kernel_args(raw.get("kernel_args")),
                              image=images.get("image"), fallback_image=images.get("fallback_image")))
    return nodes


def _plain_name(name):
    """A name short and plain enough to say where a problem is (a bad one is quoted by its own message)."""
    return isinstance(name, str) and 0 < len(name) <= 64 and name.isprintable() and not any(c.isspace() for c in name)


def _check_node_ip(problems, where, ip, subnets, network, server_addrs):
    nets = list(subnets or [])
    # On the boot network a node needs a host address (DHCP reserves it); a
    # policy's subnets only say where a node may be.
    inside = fields.host_on if network is not None else fields.within
    if nets and not any(inside(ip, net) for net in nets):
        if len(nets) == 1:
            problems.append("%s: ip %s is outside the node subnet %s" % (where, ip, nets[0]))
        else:
            problems.append("%s: ip %s is outside every node subnet (%s)"
                            % (where, ip, ", ".join(str(n) for n in nets)))
    if network is not None and network.in_dynamic(ip):
        first, last = network.dynamic
        problems.append("%s: ip %s is inside the dynamic range %s-%s" % (where, ip, first, last))
    if ip in server_addrs:
        problems.append("%s: ip %s is the address of server %s" % (where, ip, server_addrs[ip]))


# ---------------------------------------------------------- the network

class Fleet:
    """A checked boot network: its subnet and DHCP settings, servers and nodes."""

    __slots__ = ("network", "servers", "nodes")

    def __init__(self, network, servers, nodes):
        self.network = network
        self.servers = servers
        self.nodes = nodes


def parse_fleet(raw_nodes, raw_network, problems):
    """The boot network, its servers and nodes as one checked Fleet.

    ``raw_network`` holds ``subnet``, ``dhcp_mode``, ``unknown_nodes``,
    ``dynamic_range``, ``servers`` ([{name, address}]), ``kernel_args`` (the
    site's own, for every node), ``node_args`` (the init's, from the boot
    servers' settings) and
    ``require_image`` (default true: every node names its image; false when a
    boot policy decides).
    """
    raw_network = raw_network or {}
    network = parse_network(raw_network, problems)
    servers = parse_servers(raw_network.get("servers"), problems, network)
    problems.extend(fields.kernel_arg_problems("boot network: kernel_args", raw_network.get("kernel_args"), "user"))
    problems.extend(fields.kernel_arg_problems("boot network: node_args", raw_network.get("node_args")))
    nodes = parse_nodes(raw_nodes, problems, network=network, servers=servers, ip_versions=(4,),
                        require_image=raw_network.get("require_image", True))
    return Fleet(network, servers, nodes)


def check(problems, where, rule, value, *args):
    """Apply one rule of ``fields``; on failure append ``<where>: <message>`` and return None.

    ``where`` None appends the message alone (a role setting names its variable itself).
    """
    try:
        return rule(value, *args)
    except FieldError as exc:
        problems.append(str(exc) if where is None else "%s: %s" % (where, exc))
        return None
