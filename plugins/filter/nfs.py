# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the NFS exports of the image store.

Thin wrappers over plugins/module_utils/nfs.py; documentation for each
filter lives in the YAML file of the same name beside this one.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import nfs


def nfs_export_identity(path, salt=""):
    """Return the deterministic export identity of an export path."""
    try:
        return nfs.export_identity(path, salt)
    except nfs.NfsError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def nfs_client_errors(clients, node_ips, field="nfs_server_clients"):
    """Return the problems of export client subnets against the nodes' addresses."""
    if not isinstance(clients, (list, tuple)):
        raise AnsibleFilterError("nfs_client_errors: %r is not a list of subnets" % (clients,))
    try:
        return nfs.client_errors(clients, node_ips, field)
    except nfs.NfsError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """OrionOS NFS export filters."""

    def filters(self):
        return {
            "nfs_export_identity": nfs_export_identity,
            "nfs_client_errors": nfs_client_errors,
        }
