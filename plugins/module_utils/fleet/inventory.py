# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's ``orion_*`` variables as the model's raw records.

This is where a role applied alone finds its inputs: the boot servers are
the hosts of ``orion_boot_servers`` (``boot_server_address``,
``vrrp_priority``), the nodes the hosts of ``orion_nodes`` and its
sub-groups (``orion_node_<field>`` for each field of
``model.NODE_FIELDS``). Values are passed through unchanged: the model's
parse functions judge them.
"""

from __future__ import annotations

from ansible_collections.orionos.diskless.plugins.module_utils.fleet.model import NODE_FIELDS

SERVER_GROUP = "orion_boot_servers"
NODE_GROUP = "orion_nodes"
NODE_PREFIX = "orion_node_"


def nodes(names, hostvars, prefix=NODE_PREFIX):
    """Node mappings of the inventory hosts ``names``, sorted by name.

    Raises KeyError naming a host that is not in ``hostvars``.
    """
    result = []
    for name in sorted(names or []):
        hv = hostvars[name]
        node = {"name": name, "groups": sorted(hv.get("group_names", []))}
        for key in NODE_FIELDS:
            if key in ("name", "groups"):
                continue
            value = hv.get(prefix + key)
            if value is not None:
                node[key] = value
        result.append(node)
    return result


def servers(names, hostvars):
    """Server mappings ``{name, address, priority}`` of the hosts ``names``, sorted by name.

    ``priority`` is the host's ``vrrp_priority`` (0, the default, means by
    its place in the list).
    """
    result = []
    for name in sorted(names or []):
        hv = hostvars[name]
        result.append({"name": name, "address": hv.get("boot_server_address", ""),
                       "priority": hv.get("vrrp_priority", 0)})
    return result
