#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: boot_ledger
short_description: List the boot ledger's attempts and verdicts, clear a bad mark, forget a node's history
version_added: 0.6.0
description:
  - The boot ledger, kept by the boot service of every boot server in the control plane's etcd, counts each node's
    boot attempts. A version that failed too often on a node is marked bad for it, and the node boots its last good
    version instead until an operator clears the mark.
  - Runs on a boot server (it uses the server's etcd client certificate and the boot service's configuration).
  - With O(state=present) it only reads, and returns every node's ledger as the status shows it.
  - With O(state=cleared) the mark of O(version) (every mark when O(version) is not given) is taken off each node of
    O(node). The failures that made the mark no longer count, so the version is offered to the node again.
  - With O(state=absent) each node's history is forgotten (its attempts, marks and last good version).
  - Every node is checked before anything is written. Each change is one etcd transaction that holds only if the node's
    ledger was not written meanwhile (by a boot server); it is read again and retried then.
author:
  - OrionOS maintainers (@orionos)
requirements:
  - python3-etcd3gw (Debian 12) on the boot server; the boot_service role installs it.
options:
  node:
    description: The nodes (names). Empty means every node of the policy and of the ledger.
    type: list
    elements: str
    default: []
    aliases: [nodes]
  state:
    description: V(present) reads; V(cleared) clears marks; V(absent) forgets the nodes' history.
    type: str
    choices: [present, cleared, absent]
    default: present
  version:
    description: With O(state=cleared), the version whose mark is cleared (default every mark).
    type: str
  config:
    description: The boot service's configuration (etcd endpoints and certificates, the policy's resolution table).
    type: path
    default: /etc/orion/boot-service.json
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: Reports which nodes would change and writes nothing.
  diff_mode:
    details: The diff shows each changed node's ledger before and after.
"""

EXAMPLES = r"""
- name: Show the ledger of node001
  orionos.diskless.boot_ledger:
    node: node001
  register: ledger

- name: Offer 2026.12.07-1 to node001 again after the fix
  orionos.diskless.boot_ledger:
    node: node001
    state: cleared
    version: 2026.12.07-1

- name: Forget the history of a retired node
  orionos.diskless.boot_ledger:
    node: node099
    state: absent
"""

RETURN = r"""
ledgers:
  description: Each node's ledger after the run (in check mode, as it would be), as the status shows it.
  returned: success
  type: dict
  sample:
    node001:
      node: node001
      last_good: 2026.12.01-1
      target: 2026.12.07-1
      next: 2026.12.01-1
      next_reason: "2026.12.07-1 is marked bad for node001 (2 failed attempts in a row ...): rolled back to its last good version"
      marks: {2026.12.07-1: {since: 1765100000, reason: "2 failed attempts in a row"}}
      attempts: 4
      failed: 2
      verdict: ok
      why: ok report
      recent: []
changed_nodes:
  description: The nodes whose ledger was (or in check mode would be) changed.
  returned: success
  type: list
  elements: str
  sample: [node001]
problems:
  description: Every problem with the arguments, when the module refused them.
  returned: failure
  type: list
  elements: str
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy
from ansible_collections.orionos.diskless.plugins.module_utils import boot_service as engine
from ansible_collections.orionos.diskless.plugins.module_utils import etcd_gateway
from ansible_collections.orionos.diskless.plugins.module_utils import ledger as lg

ATTEMPTS = 5


def read_docs(store):
    """({node: (JSON object, revision)} of every stored ledger)."""
    found = {}
    for key, value in store.read_prefix(engine.LEDGER_PREFIX).items():
        name = engine.node_of_key(key)
        if name is not None:
            found[name] = value
    return found


def views(plan, table, now):
    shown = {}
    for name, (unused, after) in sorted(plan.items()):
        shown[name] = lg.node_view(after if after is not None else lg.NodeLedger(name), table.get(name), now)
    return shown


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=dict(type="list", elements="str", default=[], aliases=["nodes"]),
            state=dict(type="str", choices=list(engine.ADMIN_STATES), default="present"),
            version=dict(type="str"),
            config=dict(type="path", default="/etc/orion/boot-service.json"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        with open(p["config"], encoding="utf-8") as handle:
            config = json.load(handle)
        if not isinstance(config, dict):
            raise ValueError("it is not a JSON object")
        store = etcd_gateway.Store.from_config(config.get("etcd"))
    except (OSError, ValueError, etcd_gateway.Unavailable) as exc:
        module.fail_json(msg="config %s cannot be used: %s" % (p["config"], exc))
    table = boot_policy.load_table(config.get("table") or "")
    changed_nodes = []
    diff = {"before": {}, "after": {}}
    for unused in range(ATTEMPTS):
        try:
            stored = read_docs(store)
        except etcd_gateway.Unavailable as exc:
            module.fail_json(msg="etcd cannot be read (nothing was changed): %s" % exc)
        docs = {name: doc for name, (doc, unused_rev) in stored.items()}
        try:
            plan = engine.admin_plan(docs, table, p["node"], p["state"], p["version"])
        except engine.AdminError as exc:
            module.fail_json(msg="boot_ledger: %d problem(s), nothing was changed: %s" % (len(exc.problems), exc),
                             problems=exc.problems)
        changes = engine.admin_changes(plan, docs, p["state"])
        for name in changes:
            diff["before"][name] = docs[name]
            diff["after"][name] = None if changes[name] is None else json.loads(changes[name])
        if module.check_mode or not changes:
            changed_nodes = sorted(changes)
            break
        conflict = False
        for name, text in sorted(changes.items()):
            key = engine.ledger_key(name)
            try:
                done = store.delete(key, stored[name][1]) if text is None else store.write(key, text, stored[name][1])
            except etcd_gateway.Unavailable as exc:
                module.fail_json(msg="etcd did not confirm the change of %s (done before it: %s): %s"
                                 % (name, ", ".join(changed_nodes) or "none", exc), changed=bool(changed_nodes),
                                 changed_nodes=changed_nodes)
            if done:
                changed_nodes.append(name)
            else:
                conflict = True
        if not conflict:
            break
        # A boot server wrote a node's ledger meanwhile: read again; what is done is not done twice.
    else:
        module.fail_json(msg="the ledgers of %s kept changing; run again" % ", ".join(sorted(changes)),
                         changed=bool(changed_nodes), changed_nodes=sorted(changed_nodes))
    result = dict(changed=bool(changed_nodes), changed_nodes=sorted(set(changed_nodes)),
                  ledgers=views(plan, table, int(time.time())))
    if module._diff:
        result["diff"] = dict(before=json.dumps(diff["before"], indent=1, sort_keys=True) + "\n",
                              after=json.dumps(diff["after"], indent=1, sort_keys=True) + "\n")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
