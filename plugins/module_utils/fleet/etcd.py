# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The etcd cluster of the control plane: its members, ports, certificates and snapshots.

The members are the boot servers (the hosts of ``orion_boot_servers``) and
the witnesses (the hosts of ``orion_etcd_witnesses``: members that serve no
node, so that a cluster of two boot servers keeps its quorum when one of them
dies). A member's address is its ``etcd_address``, else its
``boot_server_address``.

``cluster()`` checks everything the etcd role needs before it changes
anything and returns the members in order with their URLs and the
``--initial-cluster`` string. ``certificate_problems()`` checks a member's
certificate (as community.crypto's x509_certificate_info gives it) against
the member and the site CA.
"""

from __future__ import annotations

import re

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import model
from ansible_collections.orionos.diskless.plugins.module_utils.fleet.fields import FieldError, quote

WITNESS_GROUP = "orion_etcd_witnesses"
DEFAULT_CLIENT_PORT = 2379
DEFAULT_PEER_PORT = 2380
# etcd's own advice: more than 7 members slow every write and buy nothing.
MAX_MEMBERS = 7
# TCP ports a boot server has in use whatever its settings say (its settings'
# own ports come in ``other_ports``).
_MEMBER_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?\Z")
FIXED_TCP_PORTS = {22: "SSH", 53: "DNS (dnsmasq)", 111: "rpcbind", 2049: "NFS", 20048: "NFS mountd"}


class Member:
    """One member of the cluster."""

    def __init__(self, name, address, witness, client_port, peer_port):
        self.name = name
        self.address = address
        self.witness = witness
        self.client_port = client_port
        self.peer_port = peer_port

    @property
    def host(self):
        """The address as it goes into a URL (IPv6 in brackets)."""
        return "[%s]" % self.address if self.address.version == 6 else str(self.address)

    @property
    def client_url(self):
        return "https://%s:%d" % (self.host, self.client_port)

    @property
    def peer_url(self):
        return "https://%s:%d" % (self.host, self.peer_port)

    def sans(self):
        """The subject alternative names the member's certificate must carry."""
        names = ["DNS:%s" % self.name, "DNS:localhost", "IP:%s" % self.address, "IP:127.0.0.1"]
        return sorted(set(names), key=names.index)

    def as_dict(self):
        return {"name": self.name, "address": str(self.address), "witness": self.witness,
                "client_url": self.client_url, "peer_url": self.peer_url, "sans": self.sans()}


def members_from_inventory(servers, witnesses, hostvars):
    """Raw member records ``{name, address, witness}`` of the inventory hosts, servers first, each sorted.

    Raises KeyError naming a host that is not in ``hostvars``.
    """
    result = []
    for names, witness in ((servers, False), (witnesses, True)):
        for name in sorted(names or []):
            hv = hostvars[name]
            addr = hv.get("etcd_address") or ("" if witness else hv.get("boot_server_address", ""))
            result.append({"name": name, "address": addr, "witness": witness})
    return result


def parse_members(raw_members, problems, client_port, peer_port):
    """The members as ``Member`` objects; every bad one named in ``problems``."""
    members = []
    names = {}
    addresses = {}
    raw_list = model.as_list(raw_members)
    if not isinstance(raw_members, (list, tuple)):
        problems.append("etcd_members: %s is not a list of members" % quote(raw_members))
        return []
    if not raw_list:
        problems.append("etcd_members: the cluster has no member (the hosts of orion_boot_servers and %s)"
                        % WITNESS_GROUP)
    for index, raw in enumerate(raw_list):
        where = "etcd_members[%d]" % index
        if not isinstance(raw, dict):
            problems.append("%s: %s is not a mapping" % (where, quote(raw)))
            continue
        unknown = sorted(set(raw) - {"name", "address", "witness"})
        if unknown:
            problems.append("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
        name = model.check(problems, where, _member_name, raw.get("name"), "name")
        if name is not None:
            where = "etcd member %s" % name
        addr = model.check(problems, where, fields.address, raw.get("address"), "address")
        if name is not None and name in names:
            problems.append("%s: name %s is given twice (etcd_members[%d] and [%d])" % (where, name, names[name], index))
            continue
        if addr is not None and addr in addresses:
            problems.append("%s: address %s is already the address of member %s" % (where, addr, addresses[addr]))
            continue
        if name is None or addr is None:
            continue
        names[name] = index
        addresses[addr] = name
        members.append(Member(name, addr, bool(raw.get("witness")), client_port, peer_port))
    return members


def _member_name(value, field):
    # A member name goes into --initial-cluster (name=url,...) and a certificate's DNS name.
    if not isinstance(value, str) or not _MEMBER_NAME_RE.match(value):
        raise FieldError("%s %s is not a host name (letters, digits, '.', '-')" % (field, quote(value)))
    return value


def cluster(settings, problems):
    """Check the cluster's settings; return ``derived`` (complete only when ``problems`` is empty).

    ``settings``: ``members`` (raw member records), ``this`` (the member this
    host is, or '' on the controller), ``client_port``, ``peer_port``,
    ``allow_even`` (an even member count is accepted only with it),
    ``token``, ``other_ports`` ({setting name: port} of the host's other
    services), ``node_ips`` (addresses reserved for nodes),
    ``snapshot_keep``, ``snapshot_schedule``, ``snapshot_dir``,
    ``data_dir``.
    """
    s = dict(settings)
    client_port = model.check(problems, None, fields.port, s.get("client_port"), "etcd_client_port")
    peer_port = model.check(problems, None, fields.port, s.get("peer_port"), "etcd_peer_port")
    if client_port is not None and client_port == peer_port:
        problems.append("etcd_client_port and etcd_peer_port are both %d: clients and members need a port each"
                        % client_port)
    taken = dict(FIXED_TCP_PORTS)
    other = s.get("other_ports") or {}
    if not isinstance(other, dict):
        problems.append("etcd_other_ports: %s is not a mapping of setting names to ports" % quote(other))
        other = {}
    for setting in sorted(other):
        value = other[setting]
        if value in (None, ""):
            continue
        try:
            taken[fields.port(value, setting)] = setting
        except FieldError:
            continue  # that setting's own role names it
    for field, value in (("etcd_client_port", client_port), ("etcd_peer_port", peer_port)):
        if value is not None and value in taken:
            problems.append("%s %d is already the port of %s on the boot servers" % (field, value, taken[value]))
    model.check(problems, None, fields.identifier, s.get("token"), "etcd_cluster_token")
    members = parse_members(s.get("members"), problems, client_port or 0, peer_port or 0)
    count = len(model.as_list(s.get("members")))
    allow_even = fields.truth(s.get("allow_even"))
    if count and count % 2 == 0 and not allow_even:
        problems.append("etcd_members: %d members, an even count: such a cluster stops taking writes when %d of them "
                        "are down, as %d members would; add a witness (inventory group %s) or set "
                        "etcd_allow_even_members: true to accept it" % (count, count // 2, count - 1, WITNESS_GROUP))
    if count > MAX_MEMBERS:
        problems.append("etcd_members: %d members; at most %d (every write waits for a majority of them)"
                        % (count, MAX_MEMBERS))
    node_ips = {}
    for entry in model.as_list(s.get("node_ips")):
        try:
            node_ips[fields.address(entry.get("ip") if isinstance(entry, dict) else entry, "ip")] = \
                entry.get("name") if isinstance(entry, dict) else str(entry)
        except FieldError:
            continue  # the node's own check names it
    for member in members:
        if member.address in node_ips:
            problems.append("etcd member %s: address %s is reserved for node %s"
                            % (member.name, member.address, node_ips[member.address]))
    this = s.get("this") or ""
    if this and this not in [m.name for m in members] and not problems:
        problems.append("etcd member %s: this host is not a member of the cluster" % this)
    model.check(problems, None, fields.integer, s.get("snapshot_keep"), "etcd_snapshot_keep", 1, 1000,
                "a number from 1 to 1000")
    model.check(problems, None, fields.calendar, s.get("snapshot_schedule"), "etcd_snapshot_schedule")
    for field in ("snapshot_dir", "data_dir"):
        model.check(problems, None, fields.abs_path, s.get(field), "etcd_" + field)
    if s.get("data_dir") and s.get("snapshot_dir") and \
            (s["snapshot_dir"] + "/").startswith(s["data_dir"].rstrip("/") + "/"):
        problems.append("etcd_snapshot_dir %s is inside etcd_data_dir %s: a restore replaces that directory"
                        % (s["snapshot_dir"], s["data_dir"]))
    derived = {
        "members": [m.as_dict() for m in members],
        "initial_cluster": ",".join("%s=%s" % (m.name, m.peer_url) for m in members),
        "endpoints": ",".join(m.client_url for m in members),
        "quorum": count // 2 + 1,
    }
    mine = [m for m in members if m.name == this]
    if mine:
        derived["this"] = mine[0].as_dict()
    return derived


def certificate_problems(member, info, ca_subject, now=None):
    """The problems of a member's certificate (empty: it fits).

    ``member``: the member's derived record (``name``, ``sans``); ``info``:
    community.crypto.x509_certificate_info's result for the certificate;
    ``ca_subject``: the site CA's subject as the same module gives it;
    ``now`` the time as ``YYYYMMDDHHMMSSZ`` (the module's ``not_after``
    format), when expiry is to be checked.
    """
    where = "etcd member %s: certificate" % member["name"]
    problems = []
    sans = set(info.get("subject_alt_name") or [])
    missing = [name for name in member["sans"] if name not in sans]
    if missing:
        problems.append("%s names %s, not %s (it was made for another host: remove it, or give the host its own)"
                        % (where, ", ".join(sorted(sans)) or "no host", ", ".join(missing)))
    if (info.get("issuer") or {}) != (ca_subject or {}):
        problems.append("%s was not issued by the site CA (issuer %s)" % (where, quote(info.get("issuer"))))
    usages = set(info.get("extended_key_usage") or [])
    for usage in ("TLS Web Server Authentication", "TLS Web Client Authentication"):
        if usage not in usages:
            problems.append("%s lacks the extended key usage %s (members are servers and clients of each other)"
                            % (where, usage))
    if now and info.get("not_after") and str(info["not_after"]) <= str(now):
        problems.append("%s expired at %s" % (where, info["not_after"]))
    return problems
