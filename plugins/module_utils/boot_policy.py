# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which image each node boots: nodes, images, policy, resolution, rendering.

The boot policy is data::

    channels:  {stable: 2026.11.0, canary: 2026.11.1}
               (or per arch: {stable: {x86_64: 2026.11.0, aarch64: 2026.11.0a}})
    rules:     an ordered list; the first rule whose selectors all match a
               node (and whose percent slice holds it) decides
      - name: canary-compute
        match: {group: compute, subnet: 10.0.1.0/24}
        percent: 10
        channel: canary
        kernel_args: [quiet]
        profile: compute
    default:   {channel: stable}          (required; no selectors)

Selectors: ``mac``, ``name`` (glob), ``group``, ``label`` (key=value),
``subnet`` (CIDR, via netaddr), ``arch``, ``firmware``. A list means any of
its values; all given selectors must match.

``percent`` takes a stable share of the matching nodes: a node is in it when
stable_bucket(node name, rule seed) < percent. Buckets do not depend on the
percent, so raising it only adds nodes.

Everything a node's boot script or kernel command line carries is checked
against a fixed set of safe characters before anything is rendered, and
checked again while rendering: nothing from the inventory can break out of
an iPXE script or the command line.

The nodes, subnets and the policy itself are parsed and checked by the
fleet model (plugins/module_utils/fleet: model.py, policy.py); this engine
resolves and renders what the model gives it.

Plain Python: modules and filters are thin wrappers, the unit tests call
these functions without Ansible.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils import netboot
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import model
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import policy

TABLE_FORMAT = 1
ARCHES = fields.ARCHES
DEFAULT_ARCH = model.DEFAULT_ARCH
DEFAULT_PROFILE = "default"

# Server addresses and host names in the script: letters, digits, . : - and
# brackets for IPv6.
_SERVER_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?\Z")
# The only characters a rendered token may contain (defense in depth: every
# input was validated already).
_SAFE_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.,:=/+@%\[\]-]+\Z")
# The URL path the images are served under: /-separated names.
_URL_PATH_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+/?\Z")
FAILURES = ("reboot", "exit", "shell")


class PolicyError(ValueError):
    """The inventory, policy or image store cannot be used.

    ``problems`` holds every problem found, each naming the node or rule and
    the field.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("%d problem(s) in the boot policy input:\n- %s"
                         % (len(self.problems), "\n- ".join(self.problems)))


# ---------------------------------------------------------------- helpers

stable_bucket = policy.stable_bucket
_as_list = model.as_list


def _safe_token(token, field="token"):
    """Refuse any rendered token outside the safe set (never escape)."""
    if not isinstance(token, str) or not _SAFE_TOKEN_RE.match(token):
        raise PolicyError(["%s: refusing to render unsafe token %s" % (field, fields.quote(token))])
    return token


def script_option_problems(servers, http_port=80, url_path="/boot/images", failure="reboot", failure_delay=30,
                           kernel_name="vmlinuz", initramfs_name="initramfs.img"):
    """The problems of the options every node script is rendered with (empty: usable).

    Each of them ends up in every script or its URLs, so each passes the
    same checks as the values of the inventory.
    """
    problems = []
    if not servers:
        problems.append("servers: at least one boot server address is needed")
    for server in model.as_list(servers):
        if not isinstance(server, str) or not _SERVER_RE.match(server):
            problems.append("servers: %s is not an address or host name" % fields.quote(server))
    model.check(problems, None, fields.port, http_port, "http_port")
    if not isinstance(url_path, str) or not _URL_PATH_RE.match(url_path) or "/../" in url_path + "/" \
            or "/./" in url_path + "/":
        problems.append("url_path: %s is not a URL path of /-separated names (letters, digits, . _ -)"
                        % fields.quote(url_path))
    if failure not in FAILURES:
        problems.append("failure_action: %s is not one of %s" % (fields.quote(failure), ", ".join(FAILURES)))
    model.check(problems, None, fields.integer, failure_delay, "failure_delay", 0, 86400)
    for field, name in (("kernel_name", kernel_name), ("initramfs_name", initramfs_name)):
        if not store.valid_file_name(name):
            problems.append("%s: %s is not a file name" % (field, fields.quote(name)))
    return problems


def _version_key(version):
    """Sort key for versions: numeric parts compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"([0-9]+)", version) if part != ""]


# ----------------------------------------------------------------- images

class Image:
    """One published version of the image store."""

    __slots__ = ("version", "arch", "kernel", "initramfs", "root", "sha256", "created", "state", "system")

    def __init__(self, version, arch=DEFAULT_ARCH, kernel="vmlinuz", initramfs="initramfs.img",
                 root=None, sha256=None, created="", state="published", system=None):
        self.version = version
        self.arch = arch
        self.kernel = kernel
        self.initramfs = initramfs
        self.root = root
        self.sha256 = dict(sha256 or {})
        self.created = created or ""
        self.state = state
        # What the root has that a node's configuration may name (the manifest's
        # system: users, groups, shells, services); None when the manifest says nothing.
        self.system = system

    def as_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}

    def sort_key(self):
        return (self.created, _version_key(self.version))

    def __repr__(self):
        return "Image(%s, %s, %s)" % (self.version, self.arch, self.state)


def image_from_manifest(version, manifest, state="published"):
    """Build an Image from a checked manifest (see image_store)."""
    boot = manifest.get("boot") if isinstance(manifest.get("boot"), dict) else {}
    files = manifest["files"]
    root = boot.get("root")
    if root is None:
        candidates = sorted(n for n in files if n.endswith((".erofs", ".squashfs", ".sqfs")))
        root = candidates[0] if candidates else None
    return Image(version=version,
                 arch=manifest.get("arch") or DEFAULT_ARCH,
                 kernel=boot.get("kernel") or "vmlinuz",
                 initramfs=boot.get("initramfs") or "initramfs.img",
                 root=root,
                 sha256={name: entry["sha256"] for name, entry in files.items()},
                 created=str(manifest.get("created") or ""),
                 state=state,
                 system=manifest.get("system") if isinstance(manifest.get("system"), dict) else None)


def load_images(root):
    """Read every published version of the store at ``root``.

    Returns ``(images, problems)``: a dict version -> Image of the versions
    whose manifest could be read, and the problems of the others.
    """
    images_dir = os.path.join(root, "images")
    states = store.load_states(root)
    images, problems = {}, []
    for version in store.list_versions(images_dir):
        try:
            manifest = store.load_manifest(os.path.join(images_dir, version))
        except store.ImageStoreError as exc:
            problems.append("image %s: %s" % (version, exc))
            continue
        images[version] = image_from_manifest(version, manifest, states.get(version, "published"))
    return images, problems


def coerce_images(value):
    """Accept images as Image objects, dicts, or a list of either; return {version: Image}."""
    if value is None:
        return {}
    if isinstance(value, dict) and all(isinstance(v, (Image, dict)) for v in value.values()):
        items = [dict(v, version=k) if isinstance(v, dict) else v for k, v in value.items()]
    else:
        items = _as_list(value)
    result = {}
    for item in items:
        if isinstance(item, dict) and item.get("problem"):
            continue  # listed by the image module, but its manifest is unusable
        image = item if isinstance(item, Image) else Image(**{
            k: v for k, v in item.items() if k in Image.__slots__ and v is not None})
        result[image.version] = image
    return result


# ------------------------------------------------------------- resolution

def _older_fallback(images, target):
    """The newest published image of the target's arch older than the target."""
    candidates = [img for img in images.values()
                  if img.arch == target.arch and img.state == "published"
                  and img.version != target.version and img.sort_key() < target.sort_key()]
    return max(candidates, key=Image.sort_key).version if candidates else None


def _fallback(node, version, images, previous, pinned=None):
    """The previous good image of a node that boots ``version``.

    0. The fallback its rule pins, if any (checked by the caller).
    1. What the node booted before, when this resolution changes its image;
       the fallback it had, when the image stays (from the previous table).
    2. Otherwise the newest published image of the same arch that is older.
    A fallback must still be in the store, of the node's arch, and differ
    from the image booted.
    """
    def usable(candidate):
        img = images.get(candidate) if candidate else None
        return img is not None and img.arch == node.arch and candidate != version

    if pinned is not None and pinned != version:
        return pinned, "pinned by the rule"
    before = previous.get(node.name) if previous else None
    if isinstance(before, dict):
        if before.get("image") != version and usable(before.get("image")):
            return before.get("image"), "previous image"
        if before.get("image") == version and usable(before.get("fallback")):
            return before.get("fallback"), before.get("fallback_reason") or "previous fallback"
    target = images.get(version)
    if target is not None:
        older = _older_fallback(images, target)
        if older is not None:
            return older, "newest older image"
    return None, None


def resolve_node(node, rules, default, channels, images, previous=None, kernel_args=()):
    """Resolve one node; return its resolution mapping or raise PolicyError."""
    decided = None
    for rule in rules:
        if rule.takes(node):
            decided = rule
            break
    reason = ""
    if decided is None:
        decided = default
        reason = "no rule matched"
    elif decided.percent is not None and decided.percent < 100:
        reason = "bucket %d < percent %g" % (stable_bucket(node.name, decided.seed), decided.percent)
    else:
        reason = "selectors matched" if decided.match else "matches every node"
    if decided.channel is not None:
        versions = channels.get(decided.channel, {})
        version = versions.get(node.arch, versions.get(None))
        if version is None:
            raise PolicyError(["node %s: %s sends it to channel %s, which has no image for arch %s"
                               % (node.name, decided.label, decided.channel, node.arch)])
    else:
        version = decided.image
    image = images.get(version)
    if image is not None and image.arch != node.arch:
        raise PolicyError(["node %s: %s gives it image %s for %s, but the node is %s"
                           % (node.name, decided.label, version, image.arch, node.arch)])
    if decided.fallback is not None and decided.fallback in images \
            and images[decided.fallback].arch != node.arch:
        raise PolicyError(["node %s: %s gives it fallback %s for %s, but the node is %s"
                           % (node.name, decided.label, decided.fallback,
                              images[decided.fallback].arch, node.arch)])
    fallback, fallback_reason = _fallback(node, version, images, previous, decided.fallback)
    args = list(kernel_args) + list(decided.kernel_args) + list(node.kernel_args)
    return {
        "name": node.name,
        "macs": list(node.macs),
        "ip": str(node.ip) if node.ip is not None else None,
        "arch": node.arch,
        "firmware": node.firmware,
        "groups": list(node.groups),
        "image": version,
        "fallback": fallback,
        "fallback_reason": fallback_reason,
        "channel": decided.channel,
        "kernel_args": args,
        "profile": decided.profile or DEFAULT_PROFILE,
        "rule": decided.label,
        "rule_index": decided.index,
        "reason": reason,
        "state": image.state if image is not None else None,
    }


def resolve(raw_nodes, raw_policy, images=None, subnets=None, previous=None, kernel_args=None):
    """Validate everything, then resolve every node.

    ``images`` is {version: Image} (None: the store is not checked, pinned
    images and channels are taken on trust). ``previous`` is the node table
    of the last resolution ({name: {image, fallback}}), used for fallbacks.

    Returns {name: resolution} sorted by name. Raises PolicyError listing
    every problem: nothing is resolved unless the whole input is usable.
    """
    netboot.require_netaddr()
    problems = []
    if images is not None:
        images = coerce_images(images)
    nets = model.parse_subnets(subnets, problems)
    nodes = model.parse_nodes(raw_nodes, problems, subnets=nets)
    problems.extend(netboot.kernel_arg_errors("kernel_args", kernel_args))
    channels, rules, default = policy.parse_policy(raw_policy, images, problems)
    if problems or default is None:
        raise PolicyError(problems or ["policy.default: missing"])
    known = images if images is not None else {}
    table = {}
    for node in sorted(nodes, key=lambda n: n.name):
        try:
            table[node.name] = resolve_node(node, rules, default, channels, known, previous,
                                            netboot.kernel_args_list(kernel_args))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    return table


def problems_of(raw_nodes, raw_policy, images=None, subnets=None, previous=None, kernel_args=None):
    """Every problem of an input, or an empty list when it resolves."""
    try:
        resolve(raw_nodes, raw_policy, images=images, subnets=subnets, previous=previous,
                kernel_args=kernel_args)
    except PolicyError as exc:
        return exc.problems
    return []


def pinned_policy(nodes, default_image, default_fallback=None):
    """A policy from per-node ``image``/``fallback_image`` fields.

    For inventories without a policy: each node that names an image or a
    fallback gets a rule pinning them, every other node boots
    ``default_image``.
    """
    rules = []
    for node in sorted(_as_list(nodes), key=lambda n: str(n.get("name")) if isinstance(n, dict) else ""):
        if not isinstance(node, dict):
            continue
        image, fallback = node.get("image"), node.get("fallback_image")
        if image in (None, "") and fallback in (None, ""):
            continue
        rule = {"name": "node-%s" % node.get("name"), "match": {"name": node.get("name")},
                "image": image if image not in (None, "") else default_image}
        if fallback not in (None, ""):
            rule["fallback"] = fallback
        rules.append(rule)
    default = {"image": default_image}
    if default_fallback:
        default["fallback"] = default_fallback
    return {"channels": {}, "rules": rules, "default": default}


def referenced_versions(raw_policy, table=None):
    """Versions a policy (channels and pins) and a node table refer to.

    Returns {version: [what refers to it, ...]}.
    """
    refs = {}

    def add(version, what):
        if isinstance(version, str) and version:
            refs.setdefault(version, []).append(what)

    if isinstance(raw_policy, dict):
        channels = raw_policy.get("channels") or {}
        if isinstance(channels, dict):
            for name, value in channels.items():
                for arch, version in (value.items() if isinstance(value, dict) else [(None, value)]):
                    add(version, "channel %s%s" % (name, "" if arch is None else " (%s)" % arch))
        for index, rule in enumerate(raw_policy.get("rules") or []):
            if isinstance(rule, dict):
                add(rule.get("image"), "rule %s pin" % (rule.get("name") or "rules[%d]" % index))
                add(rule.get("fallback"), "rule %s fallback" % (rule.get("name") or "rules[%d]" % index))
        default = raw_policy.get("default")
        if isinstance(default, dict):
            add(default.get("image"), "policy.default pin")
            add(default.get("fallback"), "policy.default fallback")
    for name, entry in sorted((table or {}).items()):
        if isinstance(entry, dict):
            add(entry.get("image"), "node %s image" % name)
            add(entry.get("fallback"), "node %s fallback" % name)
    return refs


# -------------------------------------------------------------- rendering

def _url(server, port, path):
    host = server if port in (None, 80, "80") else "%s:%s" % (server, port)
    return "http://%s%s" % (host, path)


def render_script(entry, servers, images, http_port=80, url_path="/boot/images",
                  failure="reboot", failure_delay=30, kernel_name="vmlinuz",
                  initramfs_name="initramfs.img", attempt=None, extra_args=()):
    """Render the iPXE script of one resolved node.

    Each image (the target, then the fallback) is tried from every server in
    turn. Every token is checked against the safe set while rendering. File
    names come from the image's manifest, or ``kernel_name`` and
    ``initramfs_name`` for versions not known to the store. ``attempt`` (the
    boot service's attempt id) goes on the command line as ``orion.attempt=``,
    after the policy's arguments and ``extra_args`` (the service's own).
    """
    problems = script_option_problems(servers, http_port, url_path, failure, failure_delay, kernel_name,
                                      initramfs_name)
    if problems:
        raise PolicyError(problems)
    name = _safe_token(entry["name"])
    order = [entry["image"]]
    if entry.get("fallback") and entry["fallback"] != entry["image"]:
        order.append(entry["fallback"])
    lines = ["#!ipxe",
             "# OrionOS boot script of node %s: image %s, decided by %s."
             % (name, " then fallback ".join(_safe_token(v) for v in order),
                " ".join(_safe_token(word) for word in entry["rule"].split())),
             "# Each image is tried from every boot server in turn.",
             "echo OrionOS node %s boots image %s" % (name, _safe_token(entry["image"]))]
    label_count = len(order) * len(servers)
    step = 0
    for version in order:
        image = images.get(version) if images else None
        kernel = _safe_token(image.kernel if image else kernel_name)
        initrd = _safe_token(image.initramfs if image else initramfs_name)
        args = ["initrd=" + initrd, "orion.node=" + name, "orion.image=" + _safe_token(version),
                "orion.servers=" + ",".join(_safe_token(s) for s in servers),
                "orion.profile=" + _safe_token(entry["profile"])]
        args += [_safe_token(arg) for arg in entry["kernel_args"]]
        args += [_safe_token(arg) for arg in extra_args]
        if version != entry["image"]:
            args.append("orion.fallback=1")
        if attempt is not None:
            args.append("orion.attempt=" + _safe_token(attempt))
        cmdline = " ".join(args)
        if len(cmdline) > fields.COMMAND_LINE_MAX:
            raise PolicyError(["node %s: the kernel command line for image %s is %d bytes, longer than the "
                               "kernel's %d (kernel_args of the site, its rule and the node)"
                               % (name, version, len(cmdline), fields.COMMAND_LINE_MAX)])
        for server in servers:
            step += 1
            nxt = "try%d" % (step + 1) if step < label_count else "failed"
            base = _url(server, http_port, "%s/%s" % (url_path.rstrip("/"), version))
            lines += [":try%d" % step,
                      "echo OrionOS: image %s from %s" % (version, server),
                      "imgfree",
                      "kernel %s/%s %s || goto %s" % (base, kernel, cmdline, nxt),
                      "initrd %s/%s || goto %s" % (base, initrd, nxt),
                      "boot || goto %s" % nxt]
    lines += [":failed",
              "echo OrionOS: node %s could not boot any image from any boot server" % name]
    if failure == "shell":
        lines.append("shell")
    elif failure == "exit":
        lines.append("exit 1")
    else:
        lines += ["echo OrionOS: rebooting in %d s" % int(failure_delay),
                  "sleep %d" % int(failure_delay), "reboot"]
    return "\n".join(lines) + "\n"


def dhcp_hosts(table):
    """The dnsmasq dhcp-hostsfile: one line per node, sorted by name."""
    lines = ["# OrionOS DHCP reservations: mac[,mac],ip,name (written by boot_policy)"]
    for name in sorted(table):
        entry = table[name]
        fields = list(entry["macs"])
        if entry.get("ip"):
            ip = entry["ip"]
            fields.append("[%s]" % ip if ":" in ip else ip)
        fields.append(name)
        lines.append(",".join(_safe_token(f) for f in fields))
    return "\n".join(lines) + "\n"


def table_json(table, channels=None):
    """The resolution table status tools read (stable bytes for equal input)."""
    return json.dumps({"format": TABLE_FORMAT, "channels": channels or {}, "nodes": table},
                      indent=1, sort_keys=True) + "\n"


def load_table(path):
    """Read a resolution table; return its node mapping ({} when missing or unreadable)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    nodes = data.get("nodes") if isinstance(data, dict) else None
    return nodes if isinstance(nodes, dict) else {}


def render_tree(table, servers, images, channels=None, **script_options):
    """Every file of the node directory: {name: bytes or ('link', target)}.

    ``<node>.ipxe`` per node, ``<mac hexhyp>.ipxe`` links to it,
    ``dhcp-hosts`` and ``resolution.json``.
    """
    files = {}
    for name in sorted(table):
        entry = table[name]
        files[name + ".ipxe"] = render_script(entry, servers, images, **script_options).encode()
        for mac in entry["macs"]:
            files[mac.replace(":", "-") + ".ipxe"] = ("link", name + ".ipxe")
    files["dhcp-hosts"] = dhcp_hosts(table).encode()
    files["resolution.json"] = table_json(table, channels).encode()
    return files


def boot_changes(before, after):
    """Nodes whose boot target changed: {name: (before, after)} as 'image (fallback X)' strings."""
    def target(entry):
        if not entry:
            return "(none)"
        text = str(entry.get("image"))
        if entry.get("fallback"):
            text += " (fallback %s)" % entry["fallback"]
        return text

    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = target(before.get(name)), target(after.get(name))
        if old != new:
            changes[name] = (old, new)
    return changes
