# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NFS export identity and checks shared by the nfs_server role's filters.

Every boot server must export the image store under the same path and the
same export identity, so a node sees one filesystem whichever server it
mounts from. The identity is derived from the export path alone (never from
device numbers, which differ between servers).
"""

from __future__ import annotations

import hashlib
import re
import uuid

from ansible_collections.orionos.diskless.plugins.module_utils import netboot

# Namespace of the export UUIDs (a fixed, project-specific UUID).
_NAMESPACE = uuid.UUID("6f2c1d0e-5b7a-4e61-9a3c-0d1e2f3a4b5c")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]*\Z")


class NfsError(ValueError):
    """A value that cannot be used for an NFS export."""


def _check_path(path):
    if not isinstance(path, str) or not _PATH_RE.match(path) or "//" in path or "/../" in path + "/":
        raise NfsError("export path %r must be an absolute path of letters, digits and . _ / -" % (path,))
    return path.rstrip("/") or "/"


def export_identity(path, salt=""):
    """Return the export identity of ``path`` as every server derives it.

    ``fsid`` is a UUID for the kernel server's ``fsid=`` option;
    ``export_id`` (1-65000) and ``filesystem_id`` (``major.minor``) are
    nfs-ganesha's ``Export_Id`` and ``Filesystem_id``. ``salt`` lets a site
    with several stores keep their identities apart.
    """
    path = _check_path(path)
    digest = hashlib.sha256(("%s\0%s" % (salt, path)).encode("utf-8")).digest()
    major = int.from_bytes(digest[4:8], "big") % 4294967295 + 1
    minor = int.from_bytes(digest[8:12], "big")
    return {
        "path": path,
        "fsid": str(uuid.uuid5(_NAMESPACE, "%s\0%s" % (salt, path))),
        "export_id": int.from_bytes(digest[0:4], "big") % 65000 + 1,
        "filesystem_id": "%d.%d" % (major, minor),
    }


def client_errors(clients, node_ips, field="nfs_server_clients"):
    """Return problems of export client subnets against the nodes' addresses.

    Every entry must be a CIDR, and every entry must contain at least one
    node address: a subnet no node is in exports the images to strangers.
    """
    try:
        netboot.require_netaddr()
    except netboot.NetbootError as exc:
        raise NfsError(str(exc)) from exc
    netaddr = netboot.netaddr
    problems = []
    if not clients:
        return ["%s is empty: the images would be exported to nobody" % field]
    nodes = []
    for ip in node_ips or []:
        try:
            nodes.append(netaddr.IPAddress(str(ip)))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            continue
    for client in clients:
        try:
            net = netaddr.IPNetwork(str(client))
            if "/" not in str(client):
                raise ValueError
        except (netaddr.AddrFormatError, ValueError, TypeError):
            problems.append("%s entry %r is not a subnet in CIDR notation" % (field, client))
            continue
        if net.prefixlen == 0:
            problems.append("%s entry %s exports to every address; name the node subnets" % (field, client))
            continue
        if nodes and not any(ip in net for ip in nodes):
            problems.append("%s entry %s contains none of the nodes' addresses" % (field, client))
    return problems
