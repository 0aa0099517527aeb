# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the node configuration engine (plugins/module_utils/node_config.py);
the documentation of each filter lives in the YAML file of the same name."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import node_config as engine


def node_config_errors(nodes, config):
    """Return every problem of a node configuration tree for these nodes (empty: usable)."""
    if not isinstance(nodes, (list, tuple)) or not all(isinstance(n, dict) and "name" in n for n in nodes):
        raise AnsibleFilterError("node_config_errors: nodes %r is not a list of mappings with a name" % (nodes,))
    groups = sorted({g for node in nodes for g in node.get("groups") or []})
    return engine.check_tree(config, [node["name"] for node in nodes], groups)


class FilterModule:
    """OrionOS node configuration filters."""

    def filters(self):
        return {"node_config_errors": node_config_errors}
