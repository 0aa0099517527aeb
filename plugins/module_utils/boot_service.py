# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the boot service does with a script request, a boot report and the clock.

The boot service (roles/boot_service) is a thin adapter: it reads a node's
ledger from etcd, calls one function here, and writes what it returns in one
transaction that holds only if nobody wrote the ledger meanwhile. Everything
here is a pure function of (the policy's resolution of the node, its ledger,
the service's settings, now); nothing talks to etcd or HTTP.

The ledger of a node is one etcd key, ``/orion/ledger/<node>``, holding
``ledger.to_doc()``.
"""

from __future__ import annotations

import json
import re

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy
from ansible_collections.orionos.diskless.plugins.module_utils import ledger as lg
from ansible_collections.orionos.diskless.plugins.module_utils import node_status
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields

LEDGER_PREFIX = "/orion/ledger/"
CONFIG_FORMAT = 1
# What a script of the service adds to the kernel command line of a counted attempt: a panic reboots after 10 s,
# so a kernel that panics comes back and asks for a new script (its attempt then fails as superseded); the
# initramfs arms the watchdog for the attempt's deadline (orion.watchdog=), so a boot that hangs is reset and comes
# back too; a trial (orion.trial=1) reboots after a failed boot, into the version the ledger gives next.
SERVICE_ARGS = ("panic=10",)
# The longest watchdog timeout asked for (QEMU's i6300esb takes at most 2046 s).
WATCHDOG_MAX = 2040
_SCRIPT_KEY_RE = re.compile(r"^([a-z0-9][a-z0-9-]{0,62})\.ipxe\Z")
SCRIPT_OPTIONS = ("http_port", "url_path", "failure", "failure_delay", "kernel_name", "initramfs_name")


class ConfigError(ValueError):
    """A service configuration that cannot be used; the message names the field."""


def ledger_key(node):
    return LEDGER_PREFIX + node


def node_of_key(key):
    """The node a ledger key is for (None: not a ledger key)."""
    if not key.startswith(LEDGER_PREFIX):
        return None
    node = key[len(LEDGER_PREFIX):]
    try:
        return fields.node_name(node)
    except fields.FieldError:
        return None


# ---------------------------------------------------------------- config

class Config:
    """The service's settings (``/etc/orion/boot-service.json``, written by the boot_service role)."""

    def __init__(self, raw):
        problems = []
        if not isinstance(raw, dict):
            raise ConfigError("the configuration %s is not a JSON object" % fields.quote(raw))
        if raw.get("format") != CONFIG_FORMAT:
            problems.append("format %s is not %d" % (fields.quote(raw.get("format")), CONFIG_FORMAT))
        self.server = raw.get("server")
        if not isinstance(self.server, str) or not fields.is_host(self.server):
            problems.append("server %s is not a host name" % fields.quote(self.server))
        for key in ("root", "table", "static_dir", "reports_dir"):
            try:
                setattr(self, key, fields.abs_path(raw.get(key), key))
            except fields.FieldError as exc:
                problems.append(str(exc))
        self.servers = raw.get("servers")
        options = raw.get("script") or {}
        if not isinstance(options, dict) or set(options) - set(SCRIPT_OPTIONS):
            problems.append("script %s must be a mapping of %s" % (fields.quote(options), ", ".join(SCRIPT_OPTIONS)))
            options = {}
        self.script = dict(options)
        if isinstance(self.servers, list):
            problems.extend(boot_policy.script_option_problems(self.servers, **self.script))
        else:
            problems.append("servers %s is not a list of addresses" % fields.quote(self.servers))
        self.ledger = lg.parse_settings(raw.get("ledger"), problems)
        if problems:
            raise ConfigError("; ".join(problems))


# ---------------------------------------------------------------- lookup

def node_for(table, filename):
    """The node whose script ``filename`` (``<name>.ipxe`` or ``<mac hexhyp>.ipxe``) is, or None."""
    if not isinstance(filename, str) or not filename.endswith(".ipxe") or len(filename) > 80:
        return None
    stem = filename[:-len(".ipxe")].lower()
    if stem in table and _SCRIPT_KEY_RE.match(stem + ".ipxe"):
        return stem
    try:
        mac = fields.mac(stem)
    except fields.FieldError:
        return None
    for name in sorted(table):
        if mac in (table[name].get("macs") or []):
            return name
    return None


# ---------------------------------------------------------------- scripts

class Served:
    """A script answer: the script, the ledger to write (None: nothing), the attempt minted and the decision."""

    __slots__ = ("script", "ledger", "attempt", "decision", "counted")

    def __init__(self, script, ledger, attempt, decision, counted):
        self.script = script
        self.ledger = ledger
        self.attempt = attempt
        self.decision = decision
        # Why the request is (or is not) a counted boot attempt.
        self.counted = counted


def _settled(ledger, settings, now, request):
    ledger = lg.apply(ledger, lg.settle(ledger, now, request))
    return lg.with_marks(ledger, lg.new_marks(ledger, settings, now))


def service_args(attempt, decision):
    """The kernel arguments the service adds for a counted ``attempt`` and its ``decision``."""
    args = list(SERVICE_ARGS) + ["orion.watchdog=%d" % min(WATCHDOG_MAX, max(10, int(attempt.deadline)))]
    if decision.trial:
        args.append("orion.trial=1")
    return args


def _script(entry, decision, config, images, attempt=None):
    if decision.version is None:
        return none_left_script(entry["name"], config)
    shown = dict(entry, image=decision.version, fallback=decision.fallback)
    return boot_policy.render_script(shown, config.servers, images, attempt=attempt.id if attempt else None,
                                     extra_args=service_args(attempt, decision) if attempt else (),
                                     **config.script)


def none_left_script(name, config):
    """The script of a node every version of which is marked bad: it says so and does what failures do."""
    failure = config.script.get("failure", "reboot")
    lines = ["#!ipxe", "echo OrionOS: node %s has no image left that is not marked bad for it;" % name,
             "echo an operator must clear a mark (orionos.diskless.boot_ledger)"]
    if failure == "shell":
        lines.append("shell")
    elif failure == "exit":
        lines.append("exit 1")
    else:
        delay = int(config.script.get("failure_delay", 30))
        lines += ["sleep %d" % delay, "reboot"]
    return "\n".join(lines) + "\n"


def serve(entry, ledger, config, images, now, address, writable=True):
    """The answer to node ``entry``'s request for its script from ``address``.

    A request counts as a boot attempt only from the node's reserved address
    and with a writable ledger: anybody else gets the script the node would
    get, without an attempt id, and the ledger is left alone (so no other
    host can use up a node's attempts). A counted request first ends the
    node's pending attempt (it came back without reporting), then marks what
    its failures make bad, decides, and mints the attempt.
    """
    name = entry["name"]
    if not entry.get("ip") or address != entry["ip"]:
        # What the node itself would get now; nothing is recorded.
        decision = lg.decide(entry, _settled(ledger, config.ledger, now, False), writable=True)
        why = "not counted: the request came from %s, not the node's reserved address %s" % (
            address, entry.get("ip") or "(none)")
        return Served(_script(entry, decision, config, images), None, None, decision, why)
    if not writable:
        decision = lg.decide(entry, ledger, writable=False)
        return Served(_script(entry, decision, config, images), None, None, decision,
                      "not counted: the ledger cannot be written")
    settled = _settled(ledger, config.ledger, now, request=True)
    decision = lg.decide(entry, settled, writable=True)
    if decision.version is None:
        return Served(none_left_script(name, config), settled, None, decision, "no version left")
    attempt = lg.Attempt(lg.new_attempt_id(), settled.next_seq(), name, decision.version, address, config.server,
                         now, config.ledger.deadline_of(entry.get("groups") or ()), fallback=decision.fallback)
    grown = settled.replace(attempts=settled.attempts + [attempt])
    kept = trimmed(grown, config.ledger.keep)
    return Served(_script(entry, decision, config, images, attempt), kept, attempt, decision, "counted")


def trimmed(ledger, keep):
    """The ledger without the ended attempts beyond the newest ``keep``."""
    drop = set(lg.trimmed(ledger, keep))
    return ledger.replace(attempts=[a for a in ledger.attempts if a.id not in drop])


def static_script(entry, ledger, config, images):
    """The script nginx serves when the service or etcd is down: the last good version, never a bad one."""
    static = lg.static_entry(entry, ledger)
    if static["image"] is None:
        return none_left_script(entry["name"], config)
    return boot_policy.render_script(static, config.servers, images, **config.script)


# ---------------------------------------------------------------- reports

class Taken:
    """What a report did: ``applied`` (the ledger to write), ``duplicate``, ``ignored`` or ``refused`` (why)."""

    __slots__ = ("outcome", "ledger", "reason", "attempt")

    def __init__(self, outcome, ledger=None, reason="", attempt=None):
        self.outcome = outcome
        self.ledger = ledger
        self.reason = reason
        self.attempt = attempt


def take_report(ledger, name, body, address, config, now):
    """The ledger's answer to the report stored as ``<name>.json`` (nginx took it only from the node's address).

    A report checked by the status engine (``node_status.check_report``)
    that carries an attempt id ends that attempt. The same attempt reported
    again (the node sends its report to every server, and again when a path
    changes) is a duplicate. A report without an attempt id (a static
    script's boot) or a shutdown report is ignored.
    """
    try:
        checked = node_status.check_report(name, body)
    except node_status.ReportError as exc:
        return Taken("refused", reason=str(exc))
    if checked["event"] != "boot":
        return Taken("ignored", reason="a %s report" % checked["event"])
    attempt_id = checked.get("attempt") or ""
    if not attempt_id:
        return Taken("ignored", reason="no attempt id (a static script's boot)")
    found = ledger.find(attempt_id)
    if found is not None and found.state != "pending":
        return Taken("duplicate", reason="attempt %s already ended (%s)" % (attempt_id, found.state), attempt=found)
    settled = _settled(ledger, config.ledger, now, False)
    try:
        old, ended, good = lg.take_report(settled, attempt_id, address, checked["result"], checked["image"], now,
                                          checked.get("reason") or "")
    except lg.RefusedReport as exc:
        return Taken("refused", reason=str(exc))
    after = lg.apply(settled, [(old, ended)])
    if good is not None:
        after = after.replace(good=good, good_since=now if good != after.good else after.good_since)
    after = lg.with_marks(after, lg.new_marks(after, config.ledger, now))
    return Taken("applied", ledger=after, attempt=ended)


def sweep(ledger, config, now):
    """The ledger after its deadlines passed (None: nothing changed)."""
    after = _settled(ledger, config.ledger, now, False)
    return None if lg.to_doc(after) == lg.to_doc(ledger) else after


def clear(ledger, version=None):
    """The ledger without the mark of ``version`` (every mark when None), as an operator clears it.

    The failures that made the mark no longer count: the version is offered
    again, and ``max_failures`` new failures mark it again.
    """
    versions = sorted(ledger.marks) if version is None else [version]
    last = ledger.attempts[-1].seq if ledger.attempts else 0
    cleared = dict(ledger.cleared)
    cleared.update({v: last for v in versions if v in ledger.marks})
    return ledger.replace(marks={v: m for v, m in ledger.marks.items() if v not in versions}, cleared=cleared)


def dumps(ledger):
    return json.dumps(lg.to_doc(ledger), sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- the operator's changes (boot_ledger)

ADMIN_STATES = ("present", "cleared", "absent")


class AdminError(ValueError):
    """Arguments of boot_ledger that cannot be used; ``problems`` lists every one."""

    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


def admin_plan(docs, table, names, state, version=None):
    """What the boot_ledger module does: {node: (before, after)}, each a NodeLedger or None.

    ``docs`` maps each node with a stored ledger to its JSON object; ``names``
    are the nodes asked for (empty: every node of ``table`` and of ``docs``).
    ``present`` changes nothing; ``cleared`` takes the mark of ``version``
    (every mark when None) off each node; ``absent`` forgets each node's
    history (its attempts, marks and last good version): its after is None.
    A before of None is a node with no ledger, or a damaged one (which only
    ``absent`` may remove). A node that neither the policy nor the ledger
    knows, a damaged ledger that would be cleared, or ``version`` with another
    state: AdminError naming each, before any change.
    """
    problems = []
    if state not in ADMIN_STATES:
        problems.append("state %s is not one of %s" % (fields.quote(state), ", ".join(ADMIN_STATES)))
    if version is not None and state != "cleared":
        problems.append("version %s is only for state=cleared" % fields.quote(version))
    elif version is not None and not lg.image_store.valid_version(version):
        problems.append("version %s is not an image version" % fields.quote(version))
    for name in names or ():
        if name not in table and name not in docs:
            problems.append("node %s is neither in the policy's table nor in the ledger" % fields.quote(name))
    plan = {}
    for name in sorted(set(names or ()) & (set(table) | set(docs)) if names else set(table) | set(docs)):
        before = None
        if name in docs:
            try:
                before = lg.from_doc(name, docs[name])
            except lg.LedgerError as exc:
                if state == "cleared":
                    problems.append("%s (forget it with state=absent)" % exc)
        if state == "absent":
            after = None
        elif state == "cleared" and before is not None:
            after = clear(before, version)
        else:
            after = before
        plan[name] = (before, after)
    if problems:
        raise AdminError(problems)
    return plan


def admin_changes(plan, docs, state):
    """The stored ledgers the plan of ``state`` changes: {node: new JSON text, or None to delete the key}."""
    changes = {}
    for name, (before, after) in sorted(plan.items()):
        if name not in docs:
            continue
        if state == "absent":
            changes[name] = None
        elif after is not None and before is not None and lg.to_doc(after) != lg.to_doc(before):
            changes[name] = dumps(after)
    return changes
