# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A boot server's own settings, checked with the fleet they serve.

``boot_server()`` takes the boot_server role's settings (without their
``boot_server_`` prefix) and the host's network facts, checks them all
together with the boot network, its servers and nodes, and returns the
problems and the values the role's tasks use (the server's interface, the
servers in order, the order a node's script tries them, this server's share
of the dynamic range, the nodes and the policy the boot_policy module gets).
"""

from __future__ import annotations

import os
import re

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy
from ansible_collections.orionos.diskless.plugins.module_utils import kconfig
from ansible_collections.orionos.diskless.plugins.module_utils import ledger as ledger_model
from ansible_collections.orionos.diskless.plugins.module_utils import netboot
from ansible_collections.orionos.diskless.plugins.module_utils import nfs
from ansible_collections.orionos.diskless.plugins.module_utils import node_config
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import etcd as etcd_model
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import model
from ansible_collections.orionos.diskless.plugins.module_utils.fleet.fields import FieldError


def interface_of(facts, address):
    """The interface whose IPv4 address is ``address`` in Ansible's network facts ('' if none)."""
    for name in facts.get("interfaces") or []:
        entry = facts.get(str(name).replace("-", "_")) or {}
        ipv4 = entry.get("ipv4") if isinstance(entry, dict) else None
        if isinstance(ipv4, dict) and ipv4.get("address") == str(address):
            return entry.get("device") or name
    return ""


def has_global_ipv6(facts, iface):
    """True when ``iface`` has a global or unique-local IPv6 address in the facts."""
    entry = facts.get(str(iface).replace("-", "_")) or {}
    return any(isinstance(a, dict) and a.get("scope") == "global" for a in entry.get("ipv6") or [])


def boot_server(host, settings, facts):
    """Check a boot server's settings and its boot network.

    Returns ``(problems, derived)``; ``derived`` is only complete when
    ``problems`` is empty.
    """
    fields.require_netaddr()
    problems = []
    where = "server %s" % host
    s = dict(settings)
    address = s.get("address") or ""
    peers = model.as_list(s.get("peers")) or [{"name": host, "address": address}]
    peers = [dict(p, address=str(p.get("address") or "")) if isinstance(p, dict) else p for p in peers]
    policy = s.get("policy") or {}
    default_image = s.get("default_image") or ""
    given_nodes = model.as_list(s.get("nodes"))
    # Without a policy every node names its image (its own or the default one).
    raw_nodes = given_nodes if policy else [dict({"image": default_image}, **n) if isinstance(n, dict) else n
                                            for n in given_nodes]

    mode = s.get("dhcp_mode")
    network = {
        "subnet": s.get("subnet"),
        "dhcp_mode": mode,
        "unknown_nodes": s.get("unknown_nodes"),
        "dynamic_range": (s.get("dynamic_range") or {}) if mode == "authoritative" else {},
        "servers": peers,
        "kernel_args": s.get("kernel_args"),
        "node_args": s.get("node_args"),
        "require_image": not policy,
    }
    fleet = model.parse_fleet(raw_nodes, network, problems)

    addresses = [str(p.get("address")) for p in peers if isinstance(p, dict)]
    if address not in addresses:
        problems.append("%s: boot_server_address %s is not in boot_server_peers" % (where, address))
    iface = s.get("interface") or interface_of(facts, address)
    interfaces = [str(i) for i in facts.get("interfaces") or []]
    if not iface:
        problems.append("%s: boot_server_address %s is not on any interface of this host" % (where, address))
    elif iface not in interfaces:
        problems.append("%s: boot_server_interface %s does not exist on this host" % (where, iface))
    service = s.get("service_address") or ""
    if service:
        addr = model.check(problems, where, fields.address, service, "boot_server_service_address", (4,))
        if addr is not None and fleet.network.subnet is not None:
            model.check(problems, where, fields.on_subnet, addr, fleet.network.subnet,
                        "boot_server_service_address", "boot_server_subnet")
    policy_host = s.get("policy_source") or host
    names = [p.get("name") for p in peers if isinstance(p, dict)]
    if policy_host not in names:
        problems.append("%s: boot_server_policy_source %s is not one of the servers in boot_server_peers (%s)"
                        % (where, policy_host, ", ".join(str(n) for n in names)))
    model.check(problems, where, fields.port, s.get("http_port"), "boot_server_http_port")
    model.check(problems, where, fields.integer, s.get("tftp_max"), "boot_server_tftp_max", 1, 65535)
    for key in ("root", "tftp_root"):
        model.check(problems, where, fields.abs_path, s.get(key), "boot_server_" + key)
    dhcp_iface = s.get("dhcp_interface") or ""
    if dhcp_iface:
        model.check(problems, where, fields.interface_name, dhcp_iface, "boot_server_dhcp_interface")
        if mode != "authoritative":
            problems.append("%s: boot_server_dhcp_interface %s needs boot_server_dhcp_mode authoritative "
                            "(a proxyDHCP server has no address identity to float)" % (where, dhcp_iface))
    if s.get("router_advertisement") and iface in interfaces and not has_global_ipv6(facts, iface):
        problems.append("%s: boot_server_router_advertisement is on, but the boot interface %s has no global "
                        "or unique-local IPv6 address to advertise the prefix of" % (where, iface))

    derived = {
        "peers": [{"name": p.get("name"), "address": str(p.get("address"))} for p in peers if isinstance(p, dict)],
        "addresses": addresses,
        "iface": iface,
        "policy_host": policy_host,
        # Node scripts try the floating address first (whichever server holds it answers),
        # then this server (the node just fetched its script from it), then the others.
        "fetch_order": ([service] if service else []) + [address] + [a for a in addresses if a != address],
        "nodes": _normalized(given_nodes, fleet.nodes),
        "policy": policy or boot_policy.pinned_policy(given_nodes, default_image),
        "range_slice": {},
    }
    if not problems and mode == "authoritative" and s.get("unknown_nodes") == "discovery":
        try:
            first, last = netboot.split_range(s["dynamic_range"]["start"], s["dynamic_range"]["end"],
                                              len(addresses))[addresses.index(address)]
            derived["range_slice"] = {"start": first, "end": last}
        except FieldError as exc:
            problems.append("%s: boot_server_dynamic_range: %s" % (where, exc))
    return problems, derived


def _normalized(given, parsed):
    """The nodes as given, with each MAC and address in the normal form the model gave it.

    Later steps (the boot_policy module, the templates) take these values as
    they are; the module parses them again only because it runs in its own
    process, and the normal form parses to itself.
    """
    by_name = {node.name: node for node in parsed}
    result = []
    for raw in given:
        node = by_name.get(raw.get("name")) if isinstance(raw, dict) else None
        if node is None:
            result.append(raw)
            continue
        result.append(dict(raw, mac=list(node.macs), **({"ip": str(node.ip)} if node.ip is not None else {})))
    return result


def check_boot_server(host, settings, facts, images=None, previous=None):
    """Everything the boot_server role checks, in one call.

    The server's settings and its boot network, then the boot policy
    against the published ``images`` (None: taken on trust) and the
    ``previous`` node table, then the nodes' configuration. Returns
    ``(sections, derived)``: ``sections`` is a list of ``(what, problems)``
    for each part with problems (a problem already listed in an earlier part
    is not listed again); empty when everything is usable.
    """
    problems, derived = boot_server(host, settings, facts)
    seen = set(problems)
    sections = [("the inventory", problems)] if problems else []
    policy_problems = [p for p in boot_policy.problems_of(
        derived["nodes"], derived["policy"], images=images, subnets=[settings.get("subnet")],
        kernel_args=fields.kernel_args(settings.get("node_args")) + fields.kernel_args(settings.get("kernel_args")),
        previous=previous or {}) if p not in seen]
    if policy_problems:
        sections.append(("the boot policy", policy_problems))
    nodes = [n for n in derived["nodes"] if isinstance(n, dict) and isinstance(n.get("name"), str)]
    groups = sorted({g for n in nodes for g in model.as_list(n.get("groups")) if isinstance(g, str)})
    tree = settings.get("node_config") or {}
    config_problems = node_config.check_tree(tree, [n["name"] for n in nodes], groups)
    if not config_problems and not policy_problems and not problems and images is not None:
        # What each node would refuse on the images it may boot (its image and its fallback).
        table = boot_policy.resolve(derived["nodes"], derived["policy"], images=images,
                                    subnets=[settings.get("subnet")], previous=previous or {})
        known = boot_policy.coerce_images(images)
        systems = {name: [(v, known[v].system) for v in (entry["image"], entry.get("fallback")) if v in known]
                   for name, entry in table.items()}
        config_problems = node_config.check_images(tree, nodes, systems)
    if config_problems:
        sections.append(("the node configuration", config_problems))
    return sections, derived


# ------------------------------------------------------------ image store

def image_store(host, settings, facts=None):
    """The image store's settings: its servers, the source, the sync account and limits."""
    s = dict(settings)
    problems = []
    peers = [p for p in model.as_list(s.get("peers")) if isinstance(p, dict)] or \
        [{"name": host, "address": s.get("host_address") or host}]
    names = [p.get("name") for p in peers]
    source = s.get("source") or names[0]
    if source not in names:
        problems.append("image_store_source %s is not one of the servers in image_store_peers (%s)"
                        % (source, ", ".join(str(n) for n in names)))
    if host not in names:
        problems.append("server %s is not in image_store_peers" % host)
    if len(set(names)) != len(names):
        problems.append("image_store_peers lists a server name twice: %s" % ", ".join(str(n) for n in names))
    for peer in peers:
        if not fields.is_host(peer.get("address")):
            problems.append("image_store_peers: server %s has no valid address (IPv4/IPv6 or host name)" % peer.get("name"))
    model.check(problems, None, fields.abs_path, s.get("root"), "image_store_root")
    if not fields.is_user_name(s.get("sync_user")):
        problems.append("image_store_sync_user %s is not a valid user name" % (s.get("sync_user"),))
    port = model.check(problems, None, fields.port, s.get("ssh_port"), "image_store_ssh_port")
    model.check(problems, None, fields.integer, s.get("bwlimit"), "image_store_bwlimit", 0, 2 ** 40,
                "a bandwidth limit in KiB/s (0: none)")
    model.check(problems, None, fields.integer, s.get("sync_timeout"), "image_store_sync_timeout", 1,
                2 ** 31, "a positive number of seconds")
    address = next((str(p.get("address")) for p in peers if p.get("name") == source), "")
    derived = {"peers": peers, "names": names, "source": source, "source_address": address,
               "source_spec": address if port in (None, 22) else "[%s]:%d" % (address, port)}
    return problems, derived


# ------------------------------------------------------------- log server

def log_server(host, settings, facts=None):
    """The central log receiver: where logs go, its port, who may send, rotation."""
    s = dict(settings)
    problems = []
    where = None  # the settings name their variables
    model.check(problems, where, fields.abs_path, s.get("dir"), "log_server_dir")
    model.check(problems, where, fields.port, s.get("port"), "log_server_port", "UDP and TCP")
    if not fields.truth(s.get("udp")) and not fields.truth(s.get("tcp")):
        problems.append("log_server_udp and log_server_tcp are both false: nothing would receive logs")
    model.check(problems, where, fields.size, s.get("max_file_size"), "log_server_max_file_size")
    model.check(problems, where, fields.integer, s.get("rotate"), "log_server_rotate", 1, 100000, "at least 1")
    model.check(problems, where, fields.integer, s.get("max_total_mb"), "log_server_max_total_mb", 1, 2 ** 31,
                "at least 1")
    for entry in model.as_list(s.get("allowed_senders")):
        model.check(problems, where, fields.network, entry, "log_server_allowed_senders entry", (4, 6))
    model.check(problems, where, fields.calendar, s.get("rotate_schedule"), "log_server_rotate_schedule")
    return problems, {}


# ------------------------------------------------------------- NFS export

NFS_SEC_FLAVORS = ("sys", "krb5", "krb5i", "krb5p")


def nfs_server(host, settings, facts=None):
    """The read-only export: who may mount it, security, versions, the implementation and its ports.

    ``settings`` also holds what the role probed on the host: ``fstype`` (the
    filesystem the export lives on) and ``has_nfsd`` (the kernel has an NFS
    server).
    """
    s = dict(settings)
    where = None  # the settings name their variables
    problems = nfs.client_errors(s.get("clients"), s.get("node_ips"))
    sec = model.as_list(s.get("sec"))
    for flavor in sec:
        if flavor not in NFS_SEC_FLAVORS:
            problems.append("nfs_server_sec entry %s is not one of %s" % (flavor, ", ".join(NFS_SEC_FLAVORS)))
    if not sec:
        problems.append("nfs_server_sec is empty")
    versions = model.as_list(s.get("versions"))
    if not versions or any(str(v) not in ("3", "4") for v in versions):
        problems.append("nfs_server_versions %s must list 3 and/or 4" % (versions,))
    implementation = s.get("implementation")
    if implementation == "ganesha" and (s.get("fstype") or "").strip() == "overlay":
        problems.append("nfs_server_export_path %s is on an overlay filesystem, which nfs-ganesha cannot export;"
                        " put it on a volume or a real filesystem" % s.get("export_path"))
    if implementation == "kernel" and not s.get("has_nfsd", True):
        problems.append("nfs_server_implementation kernel: the kernel of this host has no NFS server (no nfsd); "
                        "use ganesha")
    model.check(problems, where, fields.integer, s.get("grace_period"), "nfs_server_grace_period", 0, 180)
    model.check(problems, where, fields.integer, s.get("lease_lifetime"), "nfs_server_lease_lifetime", 1, 120)
    ports = s.get("ports") or {}
    for name in sorted(ports if isinstance(ports, dict) else {}):
        model.check(problems, where, fields.port, ports[name], "nfs_server_ports.%s" % name, "TCP and UDP")
    return problems, {}


# ------------------------------------------------------------------- VRRP

def vrrp(host, settings, facts):
    """The floating address: its peers and priorities, the address itself, timing and health checks."""
    s = dict(settings)
    facts = facts or {}
    problems = []
    where = None  # the settings name their variables
    vip_text = s.get("vip")
    peers_in = [p for p in model.as_list(s.get("peers")) if isinstance(p, dict)] or \
        [{"name": host, "address": s.get("address"), "priority": s.get("priority")}]
    # A priority of 0 means by the place in the list: 200, 190, ...
    peers = []
    for index, peer in enumerate(peers_in):
        given = peer.get("priority")
        number = given if isinstance(given, int) and not isinstance(given, bool) else \
            int(given) if isinstance(given, str) and given.strip().isdigit() else 0
        peers.append(dict(peer, priority=number if number > 0 else 200 - 10 * index))
    address = s.get("address")
    iface = s.get("interface") or interface_of(facts, address)
    entry = facts.get(str(iface).replace("-", "_")) or {} if iface else {}
    ipv4 = entry.get("ipv4") if isinstance(entry, dict) and isinstance(entry.get("ipv4"), dict) else {}
    vip = model.check(problems, where, fields.address, vip_text, "vrrp_vip", (4,))
    if not iface:
        problems.append("server %s: vrrp_address %s is not on any interface of this host" % (host, address))
    elif vip is not None:
        subnet = fields.network("%s/%s" % (ipv4.get("network", "0.0.0.0"), ipv4.get("prefix", "32")), "subnet")
        if not fields.within(vip, subnet):
            problems.append("vrrp_vip %s is outside subnet %s of server %s (%s)" % (vip_text, subnet, host, iface))
    if vip_text in [str(p.get("address")) for p in peers]:
        problems.append("vrrp_vip %s is also the own address of a server" % vip_text)
    me = next((p for p in peers if p.get("name") == host), {})
    if not me:
        problems.append("server %s is not in vrrp_peers" % host)
    priorities = [p["priority"] for p in peers]
    if len(set(priorities)) != len(priorities):
        problems.append("vrrp_peers: servers share a priority (%s); give each a different vrrp_priority"
                        % ", ".join("%s=%s" % (p.get("name"), p["priority"]) for p in peers))
    for peer in peers:
        if not 1 <= peer["priority"] <= 254:
            problems.append("vrrp_priority of server %s is not in 1-254" % peer.get("name"))
    model.check(problems, where, fields.integer, s.get("router_id"), "vrrp_router_id", 1, 255)
    version = str(s.get("version"))
    if version not in ("2", "3"):
        problems.append("vrrp_version %s must be 2 or 3" % s.get("version"))
    advert = fields.number(s.get("advert_int"))
    if version in ("2", "3") and not (
            (version == "3" and advert is not None and 0.01 <= advert <= 40.95)
            or (version == "2" and advert is not None and advert == int(advert) and 1 <= advert <= 255)):
        problems.append("vrrp_advert_int %s is not allowed with vrrp_version %s (version 2: whole seconds 1-255; "
                        "version 3: 0.01-40.95)" % (s.get("advert_int"), s.get("version")))
    model.check(problems, where, fields.integer, s.get("preempt_delay"), "vrrp_preempt_delay", 0, 1000)
    for check in model.as_list(s.get("checks")):
        name = check.get("name") if isinstance(check, dict) else check
        if not isinstance(check, dict) or check.get("type") not in VRRP_CHECK_TYPES:
            problems.append("vrrp_checks: check %s has an unknown type (%s)" % (name, ", ".join(VRRP_CHECK_TYPES)))
            continue
        if not fields.is_check_target(check.get("target")):
            problems.append("vrrp_checks: check %s has a target with characters outside A-Z a-z 0-9 : / . _ @ %% + = -"
                            % name)
        if not fields.is_check_name(name):
            problems.append("vrrp_checks: name %s may only hold a-z 0-9 _" % name)
    for unit in model.as_list(s.get("master_restarts")):
        if not fields.is_service_name(unit):
            problems.append("vrrp_master_restarts: %s is not a service name (A-Z a-z 0-9 @ . _ -)" % unit)
    derived = {"peers": peers, "iface": iface, "me": me, "ipv4": ipv4}
    return problems, derived


VRRP_CHECK_TYPES = ("tftp", "http", "nfs")


# ------------------------------------------------------------- the build's image and kernel

IMAGE_BLOCK_SIZES = (0,) + tuple(2 ** n for n in range(12, 21))
_IMAGE_VERSION_RE = r"^[A-Za-z0-9][A-Za-z0-9._+-]*\Z"
_PLAIN_RE = r"^[a-z0-9_]+\Z"
_PIECE_RE = r"^[a-z0-9][a-z0-9_-]*\Z"


def image(host, settings, facts=None):
    """The root image's settings: its version, its format with one of that format's compressors (the role's
    ``compressors``, format to list), its block size and its architecture."""
    s = dict(settings)
    problems = []
    version = s.get("version")
    if version not in (None, "") and not (isinstance(version, str) and re.match(_IMAGE_VERSION_RE, version)):
        problems.append("image_version %s must be letters, digits and . _ + - (or empty)" % (version,))
    compressors = s.get("compressors") or {}
    fmt, compression = s.get("format"), s.get("compression")
    if fmt not in compressors:
        problems.append("image_format %s is not one of %s" % (fmt, ", ".join(compressors)))
    elif compression not in compressors[fmt]:
        problems.append("image_compression %s is not one of %s (the compressors of %s)"
                        % (compression, ", ".join(compressors[fmt]), fmt))
    if str(s.get("block_size")) not in [str(size) for size in IMAGE_BLOCK_SIZES]:
        problems.append("image_block_size %s is not 0 or a power of two from 4096 to 1048576" % (s.get("block_size"),))
    arch = s.get("arch")
    if not (isinstance(arch, str) and re.match(_PLAIN_RE, arch)):
        problems.append("image_arch %s is not a plain name" % (arch,))
    return problems, {}


KERNEL_BASE_CONFIGS = ("tinyconfig", "defconfig", "allnoconfig")


def kernel(host, settings, facts=None):
    """The kernel's settings: the patches (each a file of the role's ``patch_dir``), the base configuration,
    the fragments (each a file of ``fragment_dir``) and the extra ones (name to text), every fragment line
    ``CONFIG_NAME=value`` or ``# CONFIG_NAME is not set``. Reads the files on this machine (the controller)."""
    s = dict(settings)
    problems = []
    bad = []
    for name in model.as_list(s.get("patches")):
        if not (isinstance(name, str) and re.match(_PIECE_RE, name)):
            bad.append("%r is not a patch name" % (name,))
        elif not os.path.isfile(os.path.join(s.get("patch_dir") or "", name + ".patch")):
            bad.append("%s has no file files/patches/%s.patch" % (name, name))
    if bad:
        problems.append("kernel_patches: %s (names are lower-case letters, digits, - and _, each the file"
                        " files/patches/<name>.patch of the kernel role)" % "; ".join(bad))
    if s.get("base_config") not in KERNEL_BASE_CONFIGS:
        problems.append("kernel_base_config %s must be %s" % (s.get("base_config"), " or ".join(KERNEL_BASE_CONFIGS)))
    texts = {}
    for name in model.as_list(s.get("fragments")):
        path = os.path.join(s.get("fragment_dir") or "", "%s.config" % name)
        if not (isinstance(name, str) and re.match(_PIECE_RE, name)):
            problems.append("kernel_fragments: %r is not a fragment name (lower-case letters, digits, - and _)"
                            % (name,))
        elif not os.path.isfile(path):
            problems.append("kernel_fragments: %s has no file files/fragments/%s.config" % (name, name))
        else:
            with open(path, encoding="utf-8") as handle:
                texts[name] = handle.read()
    extra = s.get("extra_fragments") or {}
    if not isinstance(extra, dict):
        problems.append("kernel_extra_fragments %r is not a mapping of name to fragment text" % (extra,))
        extra = {}
    for name in sorted(extra, key=str):
        if not (isinstance(name, str) and re.match(_PIECE_RE, name)):
            problems.append("kernel_extra_fragments: %r is not a fragment name (lower-case letters, digits, - and _)"
                            % (name,))
        elif not isinstance(extra[name], str):
            problems.append("kernel_extra_fragments: %s is not text" % name)
        else:
            texts["extra " + name] = extra[name]
    for name in texts:
        try:
            kconfig.parse(texts[name], "kernel fragment %s" % name)
        except kconfig.KconfigError as exc:
            problems.append(str(exc))
    return problems, {}


_INCLUDE_FILE_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*\.yml\Z"
_MIRROR_RE = r"^(https?://|file:///|/|apt\Z)"


def lfs_sources(host, settings, facts=None):
    """The build's profile and mirrors: the profile's ``include`` (a list of {file, env}, each file one of the
    collection's shared recipe files in ``include_dir``, read on the controller) and the mirrors (URLs, absolute
    directories or ``apt``, the build host's own Debian mirrors)."""
    s = dict(settings)
    problems = []
    include = s.get("include")
    good = isinstance(include, list) and all(
        isinstance(item, dict) and set(item) <= {"file", "env"} and isinstance(item.get("file"), str)
        and re.match(_INCLUDE_FILE_RE, item["file"])
        and os.path.isfile(os.path.join(s.get("include_dir") or "", item["file"]))
        and isinstance(item.get("env", {}), dict) for item in include)
    if not good:
        problems.append("include: %r in %s must be a list of {file: NAME.yml, env: {...}}, each file one of %s"
                        % (include, s.get("recipe_file"), s.get("include_dir")))
    mirrors = s.get("mirrors")
    if not (isinstance(mirrors, list) and mirrors
            and all(isinstance(m, str) and re.match(_MIRROR_RE, m) for m in mirrors)):
        problems.append("lfs_sources_mirrors: %r must be a list of http(s):// or file:// URLs, absolute directories"
                        " or apt (the build host's Debian mirrors); the profile's mirrors are used when it is empty"
                        % (mirrors,))
    return problems, {}


# ------------------------------------------------------------------- etcd

def etcd(host, settings, facts=None):
    """The control plane's etcd cluster: members, ports, snapshots, and the certificates already made.

    ``settings`` also holds ``certificates`` ({member name: x509_certificate_info
    result} of the member certificates that exist on the controller), ``ca``
    (the site CA certificate's info, when it exists) and ``now``.
    """
    s = dict(settings)
    problems = []
    derived = etcd_model.cluster(s, problems)
    certificates = s.get("certificates") or {}
    ca = s.get("ca") or {}
    by_name = {m["name"]: m for m in derived["members"]}
    for name in sorted(certificates if isinstance(certificates, dict) else {}):
        if name in by_name and ca:
            problems.extend(etcd_model.certificate_problems(by_name[name], certificates[name], ca.get("subject"),
                                                            s.get("now")))
    if ca and not ca.get("basic_constraints") == ["CA:TRUE"]:
        problems.append("etcd_pki_dir: the site CA certificate is not a CA (basic constraints %s)"
                        % fields.quote(ca.get("basic_constraints")))
    # Nothing to make when the CA (key and certificate) and every member's key and certificate exist: the
    # checks above have refused any that does not fit.
    keys = set(model.as_list(s.get("keys")))
    derived["pki_ready"] = bool(ca) and fields.truth(s.get("ca_key")) and bool(by_name) and all(
        name in certificates and name in keys for name in by_name)
    return problems, derived


# ------------------------------------------------------------ boot service

def _endpoint(value, field):
    """``host:port`` (an IPv6 host in brackets) as ``{host, port}``."""
    text = value if isinstance(value, str) else ""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host:
        raise FieldError("%s %s is not host:port" % (field, fields.quote(value)))
    fields.address(host, field)
    return {"host": host, "port": fields.port(port, field)}


def boot_service(host, settings, facts=None):
    """The boot service: its port, the store it reads, the ledger's rules, etcd's endpoints and its intervals."""
    s = dict(settings)
    problems = []
    model.check(problems, None, fields.port, s.get("port"), "boot_service_port")
    model.check(problems, None, fields.abs_path, s.get("root"), "boot_service_root")
    ledger_model.parse_settings(s.get("ledger"), problems, where="boot_service_ledger")
    endpoints = []
    raw = s.get("endpoints")
    if not isinstance(raw, list) or not raw:
        problems.append("boot_service_etcd_endpoints %s is not a list of host:port (the etcd members' client "
                        "addresses)" % fields.quote(raw))
        raw = []
    for index, value in enumerate(raw):
        endpoint = model.check(problems, None, _endpoint, value, "boot_service_etcd_endpoints[%d]" % index)
        if endpoint is not None:
            endpoints.append(endpoint)
    model.check(problems, None, fields.integer, s.get("etcd_timeout"), "boot_service_etcd_timeout", 1, 30)
    for key in ("report_interval", "sweep_interval"):
        model.check(problems, None, fields.integer, s.get(key), "boot_service_" + key, 1, 3600)
    # The server's own member (its etcd address among the endpoints): asked first, and watched. None: the first.
    own = str(s.get("own") or "").strip("[]").lower()
    local = next((index for index, endpoint in enumerate(endpoints) if endpoint["host"].lower() == own), None)
    return problems, {"endpoints": endpoints, "local": local}


# The checks of each role, by the role's name: ``(problems, derived)``.
ROLE_CHECKS = {
    "boot_service": boot_service,
    "etcd": etcd,
    "image": image,
    "lfs_sources": lfs_sources,
    "kernel": kernel,
    "image_store": image_store,
    "log_server": log_server,
    "nfs_server": nfs_server,
    "vrrp": vrrp,
}


ROLES = ("boot_server",) + tuple(sorted(ROLE_CHECKS))


def check_role(role, host, settings, facts, **extra):
    """Every check of ``role`` in one call: ``(sections, derived)`` as check_boot_server gives them."""
    if role == "boot_server":
        return check_boot_server(host, settings, facts, **extra)
    problems, derived = ROLE_CHECKS[role](host, settings, facts)
    return ([("the settings", problems)] if problems else []), derived
