# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node status table over plugins/module_utils/node_status.py; documented in node_status.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import node_status as engine


def node_status(nodes, listings, ledgers=None):
    """Return {rows, text, prometheus} for the inventory nodes from the servers' report listings and the ledger."""
    if not isinstance(nodes, (list, tuple)) or not all(isinstance(n, dict) and "name" in n for n in nodes):
        raise AnsibleFilterError("node_status: nodes %r is not a list of mappings with a name" % (nodes,))
    if not isinstance(listings, dict):
        raise AnsibleFilterError("node_status: listings %r is not a mapping of server to listing text" % (listings,))
    if not all(isinstance(text, str) for text in listings.values()):
        raise AnsibleFilterError("node_status: listings must map each server to its listing text")
    if ledgers is not None and not isinstance(ledgers, dict):
        raise AnsibleFilterError("node_status: ledgers %r is not a mapping of node to its ledger view" % (ledgers,))
    rows = engine.table(nodes, listings, ledgers)
    try:
        prometheus = engine.render_prometheus(rows)
    except RuntimeError as exc:
        raise AnsibleFilterError("node_status: %s" % exc) from exc
    unknown = engine.unknown_rejected(nodes, listings)
    return {"rows": rows, "text": engine.render_text(rows), "prometheus": prometheus, "unknown_rejected": unknown,
            "rejected_lines": engine.rejected_lines(rows, unknown)}


class FilterModule:
    """OrionOS node status filters."""

    def filters(self):
        return {"node_status": node_status}
