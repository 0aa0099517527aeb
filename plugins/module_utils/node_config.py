# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-node declarative configuration: check, merge and render.

The operator's configuration is a tree of named fragments at three levels::

    default:  {<fragment>: {...}}
    groups:   {<group>: {<fragment>: {...}}}
    nodes:    {<node>: {<fragment>: {...}}}

For one node the fragments are chosen by name: the node's own fragment of a
name wins over a group's, a group's over the default's (between two groups of
the node, the group later in alphabetical order wins). The chosen fragments
are then combined in the order of their names: ``hostname`` is the last one
given, ``users`` are keyed by name, ``files`` by path, ``mounts`` by target
(a later entry replaces an earlier one), ``sysctl`` keys are merged and
``services`` are added up.

A fragment holds any of::

    hostname: node001
    users: [{name, uid, home (default /home/<name>), shell (default /bin/sh),
             ssh_keys: [...]}]     # name root: keys only (uid, home, shell fixed)
    files: [{path, content, mode (default "0644"), owner, group (default root)}]
    services: [name, ...]         # runit services of the image (/etc/sv/<name>)
    sysctl: {key: value}
    mounts: [{source, target, fstype (nfs, nfs4, tmpfs), options (default defaults)}]

Each node gets one file in a line format its init reads with busybox sh
(roles/lfs_system/files/rootfs/usr/lib/orion/config.sh), ending with the
sha256 of everything before the end line, so a damaged or cut file is
refused by the node rather than half applied.
"""

from __future__ import annotations

import base64
import hashlib
import re

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields

FORMAT_LINE = "orion-config 1"
FRAGMENT_KEYS = ("hostname", "users", "files", "services", "sysctl", "mounts")
WRITABLE = ("/etc", "/var", "/root", "/home", "/tmp")
# Home directories are made and handed to their user by the node: only under /home.
HOMES = "/home"
# Accounts below this uid are the image's (system accounts); 65534 is nobody.
FIRST_UID = 1000
LAST_UID = 65533
FSTYPES = ("nfs", "nfs4", "tmpfs")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
_PATH_RE = re.compile(r"^(/[A-Za-z0-9._@+-]+)+\Z")
_MODE_RE = re.compile(r"^0?[0-7]{3,4}\Z")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9._-]+\Z")
_SYSCTL_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)+\Z")
_TOKEN_RE = re.compile(r"^[^\s]+\Z")
_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n\r]*)?\Z")


class ConfigError(ValueError):
    """The configuration cannot be used; ``problems`` names every bad field."""

    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def _writable(path):
    if not isinstance(path, str) or not _PATH_RE.match(path):
        return False
    parts = path.split("/")
    if "." in parts or ".." in parts:
        return False
    return any(path.startswith(area + "/") for area in WRITABLE)


def _list(where, value, problems):
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append("%s: %r is not a list" % (where, value))
        return []
    return value


def check_fragment(where, fragment):
    """Every problem of one fragment, each naming the field and the value."""
    problems = []
    if not isinstance(fragment, dict):
        return ["%s: %r is not a mapping" % (where, fragment)]
    for key in sorted(set(fragment) - set(FRAGMENT_KEYS)):
        problems.append("%s: unknown key %r (known: %s)" % (where, key, ", ".join(FRAGMENT_KEYS)))
    if "hostname" in fragment and not (isinstance(fragment["hostname"], str) and _HOST_RE.match(fragment["hostname"])):
        problems.append("%s.hostname: %r is not a host name" % (where, fragment["hostname"]))
    for i, user in enumerate(_list(where + ".users", fragment.get("users"), problems)):
        at = "%s.users[%d]" % (where, i)
        if not isinstance(user, dict):
            problems.append("%s: %r is not a mapping" % (at, user))
            continue
        for key in sorted(set(user) - {"name", "uid", "home", "shell", "ssh_keys"}):
            problems.append("%s: unknown key %r" % (at, key))
        name = user.get("name")
        if not isinstance(name, str) or not _USER_RE.match(name):
            problems.append("%s.name: %r is not a user name" % (at, name))
            continue
        if name == "root":
            for key in ("uid", "home", "shell"):
                if key in user:
                    problems.append("%s.%s: the root account is fixed; give root only ssh_keys" % (at, key))
        else:
            uid = user.get("uid")
            if isinstance(uid, bool) or not isinstance(uid, int) or not FIRST_UID <= uid <= LAST_UID:
                problems.append("%s.uid: %s is not a number from %d to %d (uids below %d are the image's system "
                                "accounts)" % (at, fields.quote(uid), FIRST_UID, LAST_UID, FIRST_UID))
            home = user.get("home", "/home/" + name)
            if not _writable(home) or not home.startswith(HOMES + "/"):
                problems.append("%s.home: %s is not a directory under %s/" % (at, fields.quote(home), HOMES))
            shell = user.get("shell", "/bin/sh")
            if not isinstance(shell, str) or not _PATH_RE.match(shell):
                problems.append("%s.shell: %r is not an absolute path" % (at, shell))
        for j, key in enumerate(_list(at + ".ssh_keys", user.get("ssh_keys"), problems)):
            if not isinstance(key, str) or not _KEY_RE.match(key.strip()):
                problems.append("%s.ssh_keys[%d]: %r is not one public key line" % (at, j, key))
    for i, entry in enumerate(_list(where + ".files", fragment.get("files"), problems)):
        at = "%s.files[%d]" % (where, i)
        if not isinstance(entry, dict):
            problems.append("%s: %r is not a mapping" % (at, entry))
            continue
        for key in sorted(set(entry) - {"path", "content", "mode", "owner", "group"}):
            problems.append("%s: unknown key %r" % (at, key))
        if not _writable(entry.get("path")):
            problems.append("%s.path: %r is not a file under %s" % (at, entry.get("path"), ", ".join(WRITABLE)))
        if not isinstance(entry.get("content", ""), str):
            problems.append("%s.content: %r is not text" % (at, entry.get("content")))
        mode = entry.get("mode", "0644")
        if not isinstance(mode, str) or not _MODE_RE.match(mode):
            problems.append("%s.mode: %r is not an octal mode in quotes such as \"0644\"" % (at, mode))
        for key in ("owner", "group"):
            value = entry.get(key, "root")
            if not isinstance(value, str) or not _USER_RE.match(value):
                problems.append("%s.%s: %r is not a name" % (at, key, value))
    for i, service in enumerate(_list(where + ".services", fragment.get("services"), problems)):
        if not isinstance(service, str) or not _SERVICE_RE.match(service):
            problems.append("%s.services[%d]: %r is not a service name" % (where, i, service))
    sysctl = fragment.get("sysctl")
    if sysctl is not None:
        if not isinstance(sysctl, dict):
            problems.append("%s.sysctl: %r is not a mapping" % (where, sysctl))
        else:
            for key in sorted(sysctl, key=str):
                value = sysctl[key]
                if not isinstance(key, str) or not _SYSCTL_RE.match(key):
                    problems.append("%s.sysctl: key %r is not a sysctl name such as net.ipv4.ip_forward" % (where, key))
                if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip() \
                        or "\n" in str(value) or "  " in str(value).strip():
                    problems.append("%s.sysctl.%s: %r is not a value" % (where, key, value))
    for i, entry in enumerate(_list(where + ".mounts", fragment.get("mounts"), problems)):
        at = "%s.mounts[%d]" % (where, i)
        if not isinstance(entry, dict):
            problems.append("%s: %r is not a mapping" % (at, entry))
            continue
        for key in sorted(set(entry) - {"source", "target", "fstype", "options"}):
            problems.append("%s: unknown key %r" % (at, key))
        if not isinstance(entry.get("source"), str) or not _TOKEN_RE.match(entry.get("source")):
            problems.append("%s.source: %r is not one word" % (at, entry.get("source")))
        if not _writable(entry.get("target")):
            problems.append("%s.target: %r is not under %s" % (at, entry.get("target"), ", ".join(WRITABLE)))
        if entry.get("fstype") not in FSTYPES:
            problems.append("%s.fstype: %r is not one of %s" % (at, entry.get("fstype"), ", ".join(FSTYPES)))
        options = entry.get("options", "defaults")
        if not isinstance(options, str) or not _TOKEN_RE.match(options):
            problems.append("%s.options: %r is not one word" % (at, options))
    return problems


def check_tree(tree, node_names=(), group_names=()):
    """Every problem of the whole configuration tree.

    Groups and nodes the inventory does not know are problems too (a typo
    would otherwise silently configure nothing).
    """
    problems = []
    if tree in (None, {}):
        return problems
    if not isinstance(tree, dict):
        return ["orion_node_config: %r is not a mapping" % (tree,)]
    for key in sorted(set(tree) - {"default", "groups", "nodes"}):
        problems.append("orion_node_config: unknown key %r (known: default, groups, nodes)" % key)
    levels = [("default", None, tree.get("default"))]
    for level, known in (("groups", set(group_names)), ("nodes", set(node_names))):
        owners = tree.get(level) or {}
        if not isinstance(owners, dict):
            problems.append("orion_node_config.%s: %r is not a mapping" % (level, owners))
            continue
        for owner in sorted(owners, key=str):
            if owner not in known:
                problems.append("orion_node_config.%s: %r is not a %s of the inventory"
                                % (level, owner, "group" if level == "groups" else "node"))
            levels.append(("%s.%s" % (level, owner), owner, owners[owner]))
    for where, _owner, fragments in levels:
        if fragments is None:
            continue
        if not isinstance(fragments, dict):
            problems.append("orion_node_config.%s: %r is not a mapping of named fragments" % (where, fragments))
            continue
        for name in sorted(fragments, key=str):
            if not isinstance(name, str) or not _NAME_RE.match(name):
                problems.append("orion_node_config.%s: fragment name %r is not a name" % (where, name))
                continue
            problems.extend(check_fragment("orion_node_config.%s.%s" % (where, name), fragments[name]))
    return problems


def choose(tree, node, groups=()):
    """{fragment name: (origin, fragment)} for one node: node > group > default."""
    tree = tree or {}
    chosen = {}
    for name, fragment in (tree.get("default") or {}).items():
        chosen[name] = ("default", fragment)
    all_groups = tree.get("groups") or {}
    for group in sorted(set(groups)):
        for name, fragment in (all_groups.get(group) or {}).items():
            chosen[name] = ("group " + group, fragment)
    for name, fragment in ((tree.get("nodes") or {}).get(node) or {}).items():
        chosen[name] = ("node " + node, fragment)
    return chosen


def merge(chosen, node):
    """The node's effective configuration from its chosen fragments."""
    merged = {"hostname": node, "users": {}, "files": {}, "services": [], "sysctl": {}, "mounts": {}}
    for name in sorted(chosen):
        fragment = chosen[name][1] or {}
        if "hostname" in fragment:
            merged["hostname"] = fragment["hostname"]
        for user in fragment.get("users") or []:
            merged["users"][user["name"]] = user
        for entry in fragment.get("files") or []:
            merged["files"][entry["path"]] = entry
        for service in fragment.get("services") or []:
            if service not in merged["services"]:
                merged["services"].append(service)
        for key, value in (fragment.get("sysctl") or {}).items():
            merged["sysctl"][key] = value
        for entry in fragment.get("mounts") or []:
            merged["mounts"][entry["target"]] = entry
    return merged


def image_problems(merged, node, version, system):
    """What the node would refuse in its merged configuration on image ``version``.

    ``system`` is the image manifest's (users, groups, shells, services).
    A user is a new account: its name and uid are not the image's; a file's
    owner and group, a user's shell and a service must be the image's or the
    configuration's own. The node checks the same before it applies anything
    (roles/lfs_system/files/rootfs/usr/lib/orion/config.sh).
    """
    where = "node %s (image %s)" % (node, version)
    problems = []
    image_users = system.get("users") or {}
    image_groups = system.get("groups") or {}
    uids = {uid: name for name, uid in image_users.items()}
    shells = set(system.get("shells") or [])
    services = set(system.get("services") or [])
    users = merged["users"]
    new = {name for name in users if name != "root"}
    for name in sorted(new):
        user = users[name]
        if name in image_users:
            problems.append("%s: users.%s: %s is an account of the image" % (where, name, name))
        if user.get("uid") in uids:
            problems.append("%s: users.%s.uid: %s is the uid of the image's account %s"
                            % (where, name, user["uid"], uids[user["uid"]]))
        shell = user.get("shell", "/bin/sh")
        if shell not in shells:
            problems.append("%s: users.%s.shell: %s is not a shell of the image (%s)"
                            % (where, name, fields.quote(shell), ", ".join(sorted(shells)) or "none"))
    for path in sorted(merged["files"]):
        entry = merged["files"][path]
        owner, group = entry.get("owner", "root"), entry.get("group", "root")
        if owner not in image_users and owner not in new:
            problems.append("%s: files %s: owner %s is not an account of the image or of the configuration"
                            % (where, path, fields.quote(owner)))
        if group not in image_groups and group not in new:
            problems.append("%s: files %s: group %s is not a group of the image or of the configuration"
                            % (where, path, fields.quote(group)))
    for service in merged["services"]:
        if service not in services:
            problems.append("%s: services: %s is not a service of the image (%s)"
                            % (where, fields.quote(service), ", ".join(sorted(services)) or "none"))
    return problems


def check_images(tree, nodes, systems):
    """Every problem the nodes would find in their configuration on the images they boot.

    ``nodes`` are {name, groups}; ``systems`` maps a node's name to
    [(version, system)] for each image it may boot (its image and its
    fallback); an image whose manifest has no system is not checked.
    """
    problems = []
    for node in nodes:
        merged = merge(choose(tree, node["name"], node.get("groups") or []), node["name"])
        for version, system in systems.get(node["name"], ()):
            if isinstance(system, dict):
                problems.extend(p for p in image_problems(merged, node["name"], version, system) if p not in problems)
    return problems


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii") if text else "-"


def render(merged):
    """The node's file: the line format, ending with the sha256 of the lines before."""
    lines = [FORMAT_LINE, "hostname " + merged["hostname"]]
    users = merged["users"]
    # Accounts first (root keeps its fixed entry), then their keys, so every
    # key and file owner refers to an account defined before it.
    for name in sorted(users):
        user = users[name]
        if name != "root":
            lines.append("user %s %d %s %s" % (name, user["uid"], user.get("home", "/home/" + name),
                                               user.get("shell", "/bin/sh")))
    for name in sorted(users):
        for key in users[name].get("ssh_keys") or []:
            lines.append("key %s %s" % (name, _b64(key.strip())))
    for path in sorted(merged["files"]):
        entry = merged["files"][path]
        mode = entry.get("mode", "0644")
        lines.append("file %s %s %s %s %s" % (path, mode if len(mode) == 4 else "0" + mode,
                                              entry.get("owner", "root"), entry.get("group", "root"),
                                              _b64(entry.get("content", ""))))
    for service in sorted(merged["services"]):
        lines.append("service " + service)
    for key in sorted(merged["sysctl"]):
        lines.append("sysctl %s %s" % (key, str(merged["sysctl"][key]).strip()))
    for target in sorted(merged["mounts"]):
        entry = merged["mounts"][target]
        lines.append("mount %s %s %s %s" % (entry["source"], target, entry["fstype"], entry.get("options", "defaults")))
    body = "\n".join(lines) + "\n"
    return body + "end " + hashlib.sha256(body.encode("utf-8")).hexdigest() + "\n"


def render_all(tree, nodes):
    """{<node>.conf: bytes} for every node ({name, groups}), after checking everything.

    Raises ConfigError naming every problem; nothing is rendered then.
    """
    problems = []
    for index, node in enumerate(nodes):
        name = node.get("name") if isinstance(node, dict) else None
        try:
            fields.node_name(name, "nodes[%d].name" % index)
        except fields.FieldError as exc:
            problems.append(str(exc))
        groups = node.get("groups") if isinstance(node, dict) else None
        if groups is not None and (not isinstance(groups, list) or not all(fields.is_identifier(g) for g in groups)):
            problems.append("nodes[%d].groups: %s is not a list of group names" % (index, fields.quote(groups)))
    if problems:
        raise ConfigError(problems)
    names = [node["name"] for node in nodes]
    groups = sorted({group for node in nodes for group in node.get("groups") or []})
    problems = check_tree(tree, names, groups)
    if problems:
        raise ConfigError(problems)
    files = {}
    sources = {}
    for node in nodes:
        chosen = choose(tree, node["name"], node.get("groups") or [])
        files[node["name"] + ".conf"] = render(merge(chosen, node["name"])).encode("utf-8")
        sources[node["name"]] = {name: chosen[name][0] for name in sorted(chosen)}
    return files, sources
