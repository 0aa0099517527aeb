# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot ledger: attempts, verdicts, bad marks and the version a node boots.

A diskless node keeps nothing between boots, so the boot servers count its
attempts. Every script a boot server hands out is an *attempt*: it carries an
id minted for it (``orion.attempt=`` on the kernel command line), and the
node's boot report brings the id back.

An attempt ends

- ``ok``: its ok report arrived, on the version it was minted for;
- ``failed``: a failed report arrived; or the node booted its script's
  fallback instead; or the node asked for a new script before reporting
  (a kernel panic, an init failure, a watchdog reset); or no report arrived
  within the deadline.

``max_failures`` failed attempts in a row on one version (1 when the node
itself reported the failure) mark that version *bad* for that node, and the
node's next script names its last good version: the last one it booted with
an ok report, else the policy's fallback. A bad mark stays until an operator
clears it.

Everything here is a pure function of (policy resolution, ledger, settings,
now): the boot service on every server reads the ledger from etcd, calls
these functions and writes what they return in one transaction, so every
server decides alike. Nothing here talks to etcd or HTTP.
"""

from __future__ import annotations

import json
import re
import secrets

from ansible_collections.orionos.diskless.plugins.module_utils import image_store
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields

LEDGER_FORMAT = 1
STATES = ("pending", "ok", "failed")
# Why an attempt failed (the first word of its reason, for metrics).
CAUSES = ("report", "fallback", "superseded", "deadline", "cleared")
DEFAULT_MAX_FAILURES = 2
# A node that got its script reports within this many seconds, or its attempt failed.
DEFAULT_DEADLINE = 600
# Attempts kept per node (older ones are dropped, the marks and the last good stay).
DEFAULT_KEEP = 20
ATTEMPT_ID_BYTES = 16
_ATTEMPT_ID_RE = re.compile(r"^[0-9a-f]{32}\Z")


class LedgerError(ValueError):
    """A ledger record or setting that cannot be used; the message names the field and the value."""


class RefusedReport(ValueError):
    """A report the ledger refuses (unknown, used or foreign attempt); the message says why."""


def new_attempt_id():
    """An unguessable attempt id: 128 random bits in hex (a safe kernel argument)."""
    return secrets.token_hex(ATTEMPT_ID_BYTES)


def valid_attempt_id(value):
    return isinstance(value, str) and bool(_ATTEMPT_ID_RE.match(value))


# ---------------------------------------------------------------- settings

class Settings:
    """How attempts are judged: ``max_failures``, ``deadline`` (s) per group, ``keep``."""

    __slots__ = ("max_failures", "deadline", "group_deadlines", "keep")

    def __init__(self, max_failures=DEFAULT_MAX_FAILURES, deadline=DEFAULT_DEADLINE, group_deadlines=None,
                 keep=DEFAULT_KEEP):
        self.max_failures = max_failures
        self.deadline = deadline
        self.group_deadlines = dict(group_deadlines or {})
        self.keep = keep

    def deadline_of(self, groups):
        """The deadline of a node: the longest of its groups' deadlines, else the default."""
        own = [self.group_deadlines[g] for g in groups or () if g in self.group_deadlines]
        return max(own) if own else self.deadline

    def as_dict(self):
        return {"max_failures": self.max_failures, "deadline": self.deadline,
                "group_deadlines": dict(sorted(self.group_deadlines.items())), "keep": self.keep}


def parse_settings(raw, problems, where="ledger"):
    """Ledger settings from the policy's ``ledger`` mapping; every problem appended to ``problems``."""
    raw = raw or {}
    if not isinstance(raw, dict):
        problems.append("%s: %s is not a mapping" % (where, fields.quote(raw)))
        return Settings()
    known = ("max_failures", "deadline", "group_deadlines", "keep")
    for key in sorted(set(raw) - set(known), key=str):
        problems.append("%s: unknown field %s (known: %s)" % (where, fields.quote(key), ", ".join(known)))

    def integer(key, default, low, high):
        value = raw.get(key, default)
        try:
            return fields.integer(value, key, low, high)
        except fields.FieldError as exc:
            problems.append("%s: %s" % (where, exc))
            return default

    max_failures = integer("max_failures", DEFAULT_MAX_FAILURES, 1, 100)
    deadline = integer("deadline", DEFAULT_DEADLINE, 30, 86400)
    keep = integer("keep", DEFAULT_KEEP, 1, 1000)
    groups = {}
    raw_groups = raw.get("group_deadlines") or {}
    if not isinstance(raw_groups, dict):
        problems.append("%s: group_deadlines %s is not a mapping of group to seconds" % (where, fields.quote(raw_groups)))
        raw_groups = {}
    for group, value in sorted(raw_groups.items(), key=lambda kv: str(kv[0])):
        if not fields.is_identifier(group):
            problems.append("%s: group_deadlines: group %s is not a group name" % (where, fields.quote(group)))
            continue
        try:
            groups[group] = fields.integer(value, "group_deadlines.%s" % group, 30, 86400)
        except fields.FieldError as exc:
            problems.append("%s: %s" % (where, exc))
    return Settings(max_failures, deadline, groups, keep)


# ---------------------------------------------------------------- records

class Attempt:
    """One served script: who it was for, which version, and how it ended."""

    __slots__ = ("id", "seq", "node", "version", "fallback", "address", "server", "minted", "deadline", "state",
                 "reason", "ended", "booted")

    def __init__(self, id, seq, node, version, address, server, minted, deadline, fallback=None,  # pylint: disable=redefined-builtin
                 state="pending", reason="", ended=None, booted=None):
        self.id = id
        # The attempt's place among the node's attempts (1, 2, ...): times
        # of two servers may tie or disagree, the order may not.
        self.seq = seq
        self.node = node
        self.version = version
        self.fallback = fallback
        self.address = address
        self.server = server
        self.minted = minted
        self.deadline = deadline
        self.state = state
        self.reason = reason
        self.ended = ended
        self.booted = booted

    def as_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}

    def ended_as(self, state, reason, now, booted=None):
        """A copy of this attempt, ended."""
        data = self.as_dict()
        data.update(state=state, reason=reason, ended=now, booted=booted)
        return Attempt(**data)

    def __repr__(self):
        return "Attempt(%s %s %s %s)" % (self.node, self.version, self.id[:8], self.state)


class Mark:
    """A version marked bad for a node: since when, why and by which attempts."""

    __slots__ = ("node", "version", "since", "reason", "attempts")

    def __init__(self, node, version, since, reason, attempts=()):
        self.node = node
        self.version = version
        self.since = since
        self.reason = reason
        self.attempts = list(attempts)

    def as_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


class NodeLedger:
    """What the ledger holds of one node: its attempts (oldest first), its marks and its last good version."""

    __slots__ = ("node", "attempts", "marks", "good", "good_since", "cleared")

    def __init__(self, node, attempts=(), marks=None, good=None, good_since=None, cleared=None):
        self.node = node
        self.attempts = sorted(attempts, key=lambda a: a.seq)
        self.marks = dict(marks or {})
        self.good = good
        self.good_since = good_since
        # {version: seq}: an operator cleared the version's mark when the
        # node's attempts had reached seq; failures up to it no longer count.
        self.cleared = dict(cleared or {})

    def replace(self, **changes):
        """A copy of this ledger with ``changes`` (attempts, marks, good, good_since, cleared)."""
        values = {slot: getattr(self, slot) for slot in self.__slots__}
        values.update(changes)
        return NodeLedger(**values)

    def bad(self, version):
        return version in self.marks

    def pending(self):
        return [a for a in self.attempts if a.state == "pending"]

    def next_seq(self):
        return self.attempts[-1].seq + 1 if self.attempts else 1

    def find(self, attempt_id):
        for attempt in self.attempts:
            if attempt.id == attempt_id:
                return attempt
        return None


def _number(raw, key, where):
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 10 ** 11:
        raise LedgerError("%s: %s %s is not a time in seconds" % (where, key, fields.quote(value)))
    return value


def attempt_from(raw, where="attempt"):
    """An Attempt from its stored JSON object; LedgerError names the bad field."""
    if not isinstance(raw, dict):
        raise LedgerError("%s: %s is not a JSON object" % (where, fields.quote(raw)))
    if not valid_attempt_id(raw.get("id")):
        raise LedgerError("%s: id %s is not an attempt id" % (where, fields.quote(raw.get("id"))))
    for key in ("version", "fallback", "booted"):
        value = raw.get(key)
        if value is None and key != "version":
            continue
        if not image_store.valid_version(value):
            raise LedgerError("%s: %s %s is not an image version" % (where, key, fields.quote(value)))
    try:
        fields.node_name(raw.get("node"), "node")
    except fields.FieldError as exc:
        raise LedgerError("%s: %s" % (where, exc)) from None
    if raw.get("state") not in STATES:
        raise LedgerError("%s: state %s is not one of %s" % (where, fields.quote(raw.get("state")), ", ".join(STATES)))
    for key in ("address", "server", "reason"):
        if not isinstance(raw.get(key, ""), str) or len(raw.get(key, "")) > 256:
            raise LedgerError("%s: %s %s is not text" % (where, key, fields.quote(raw.get(key))))
    seq = raw.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2 ** 63:
        raise LedgerError("%s: seq %s is not a positive integer" % (where, fields.quote(seq)))
    ended = raw.get("ended")
    return Attempt(raw["id"], seq, raw["node"], raw["version"], raw.get("address", ""), raw.get("server", ""),
                   _number(raw, "minted", where), _number(raw, "deadline", where), fallback=raw.get("fallback"),
                   state=raw["state"], reason=raw.get("reason", ""),
                   ended=None if ended is None else _number(raw, "ended", where), booted=raw.get("booted"))


def mark_from(raw, where="mark"):
    if not isinstance(raw, dict):
        raise LedgerError("%s: %s is not a JSON object" % (where, fields.quote(raw)))
    if not image_store.valid_version(raw.get("version")):
        raise LedgerError("%s: version %s is not an image version" % (where, fields.quote(raw.get("version"))))
    attempts = raw.get("attempts") or []
    if not isinstance(attempts, list) or not all(valid_attempt_id(a) for a in attempts):
        raise LedgerError("%s: attempts %s is not a list of attempt ids" % (where, fields.quote(attempts)))
    return Mark(raw.get("node"), raw["version"], _number(raw, "since", where), str(raw.get("reason", "")), attempts)


def dumps(record):
    """The stored bytes of a record (stable for equal content)."""
    return json.dumps(record.as_dict() if hasattr(record, "as_dict") else record, sort_keys=True,
                      separators=(",", ":"))


def to_doc(ledger):
    """The stored JSON object of a node's ledger (one etcd key per node)."""
    return {"format": LEDGER_FORMAT, "node": ledger.node, "good": ledger.good, "good_since": ledger.good_since,
            "attempts": [a.as_dict() for a in ledger.attempts],
            "marks": {v: m.as_dict() for v, m in sorted(ledger.marks.items())},
            "cleared": dict(sorted(ledger.cleared.items()))}


def from_doc(node, raw):
    """A node's ledger from its stored JSON object (None: the node has none yet); LedgerError names the bad field."""
    if raw is None:
        return NodeLedger(node)
    where = "ledger of %s" % node
    if not isinstance(raw, dict):
        raise LedgerError("%s: %s is not a JSON object" % (where, fields.quote(raw)))
    if raw.get("format") != LEDGER_FORMAT:
        raise LedgerError("%s: format %s is not %d" % (where, fields.quote(raw.get("format")), LEDGER_FORMAT))
    if raw.get("node") != node:
        raise LedgerError("%s: node %s is not %s" % (where, fields.quote(raw.get("node")), node))
    good = raw.get("good")
    if good is not None and not image_store.valid_version(good):
        raise LedgerError("%s: good %s is not an image version" % (where, fields.quote(good)))
    since = raw.get("good_since")
    if since is not None:
        since = _number(raw, "good_since", where)
    attempts = raw.get("attempts") or []
    marks = raw.get("marks") or {}
    if not isinstance(attempts, list) or not isinstance(marks, dict):
        raise LedgerError("%s: attempts must be a list and marks a mapping" % where)
    parsed = [attempt_from(a, "%s: attempts[%d]" % (where, i)) for i, a in enumerate(attempts)]
    if any(a.node != node for a in parsed):
        raise LedgerError("%s: an attempt names another node" % where)
    if len({a.seq for a in parsed}) != len(parsed) or len({a.id for a in parsed}) != len(parsed):
        raise LedgerError("%s: two attempts share a seq or an id" % where)
    parsed_marks = {}
    for version in sorted(marks):
        mark = mark_from(marks[version], "%s: marks.%s" % (where, fields.quote(version)))
        if mark.version != version:
            raise LedgerError("%s: marks.%s names version %s" % (where, version, mark.version))
        parsed_marks[version] = mark
    cleared = raw.get("cleared") or {}
    if not isinstance(cleared, dict) or not all(
            image_store.valid_version(v) and isinstance(q, int) and not isinstance(q, bool) and 0 <= q < 2 ** 63
            for v, q in cleared.items()):
        raise LedgerError("%s: cleared %s is not a mapping of versions to attempt numbers" % (where, fields.quote(cleared)))
    return NodeLedger(node, parsed, parsed_marks, good, since, cleared)


# ---------------------------------------------------------------- settling

def settle(ledger, now, request=False):
    """Attempts that have ended by themselves: [(old, new Attempt)].

    A pending attempt fails when the node asks for a script again before
    reporting (``request``: this is such a request; or a newer attempt of the
    node exists) or when its deadline passed.
    """
    changes = []
    attempts = ledger.attempts
    for index, attempt in enumerate(attempts):
        if attempt.state != "pending":
            continue
        newer = attempts[index + 1:]
        if request and not newer:
            changes.append((attempt, attempt.ended_as(
                "failed", "superseded: the node asked for a new script at %d before reporting (a panic, an init "
                "failure or a reset)" % now, max(attempt.minted, now))))
        elif newer:
            changes.append((attempt, attempt.ended_as(
                "failed", "superseded: the node asked for a new script at %d before reporting (a panic, an init "
                "failure or a reset)" % newer[0].minted, max(attempt.minted, newer[0].minted))))
        elif now >= attempt.minted + attempt.deadline:
            changes.append((attempt, attempt.ended_as(
                "failed", "deadline: no report within %d s" % attempt.deadline, attempt.minted + attempt.deadline)))
    return changes


def apply(ledger, changes):
    """A new NodeLedger with ``changes`` ([(old, new Attempt)]) in place of the old attempts."""
    by_id = {new.id: new for _old, new in changes}
    attempts = [by_id.get(a.id, a) for a in ledger.attempts]
    return ledger.replace(attempts=attempts)


def new_marks(ledger, settings, now):
    """Versions that the ledger's failed attempts make bad: {version: Mark} (existing marks left out).

    A version is bad after ``settings.max_failures`` failed attempts in a row
    on it (an ok attempt on it resets the count), or after one failed report
    of the node itself.
    """
    marks = {}
    runs = {}
    for attempt in ledger.attempts:
        if attempt.state == "pending" or attempt.seq <= ledger.cleared.get(attempt.version, 0):
            continue
        run = runs.setdefault(attempt.version, [])
        if attempt.state == "ok":
            run.clear()
            continue
        run.append(attempt)
        if attempt.version in ledger.marks or attempt.version in marks:
            continue
        explicit = attempt.reason.startswith("report")
        if explicit or len(run) >= settings.max_failures:
            why = attempt.reason if explicit else "%d failed attempts in a row (last: %s)" % (len(run), attempt.reason)
            marks[attempt.version] = Mark(ledger.node, attempt.version, attempt.ended if attempt.ended is not None
                                          else now, why, [a.id for a in run])
    return marks


def with_marks(ledger, marks):
    merged = dict(ledger.marks)
    merged.update(marks)
    return ledger.replace(marks=merged)


def trimmed(ledger, keep):
    """Attempt ids beyond the newest ``keep`` that are no longer pending (to delete)."""
    ended = [a for a in ledger.attempts if a.state != "pending"]
    return [a.id for a in ended[:max(0, len(ended) - keep)]]


# ----------------------------------------------------------------- reports

def take_report(ledger, attempt_id, address, result, image, now, reason=""):
    """The ledger's answer to a boot report: (old attempt, ended attempt, new good or None).

    RefusedReport when the attempt id is malformed or unknown for this node,
    already used, or minted for another address. The report's node is the
    one nginx authenticated (its file name), so ``ledger`` is that node's.
    """
    if not valid_attempt_id(attempt_id):
        raise RefusedReport("attempt %s is not an attempt id" % fields.quote(attempt_id))
    attempt = ledger.find(attempt_id)
    if attempt is None:
        raise RefusedReport("attempt %s is not one minted for node %s" % (attempt_id, ledger.node))
    if attempt.state != "pending":
        raise RefusedReport("attempt %s of node %s already ended (%s: %s)"
                            % (attempt_id, ledger.node, attempt.state, attempt.reason))
    if attempt is not ledger.attempts[-1]:
        raise RefusedReport("attempt %s of node %s is stale: the node has asked for a script since"
                            % (attempt_id, ledger.node))
    if address and attempt.address and address != attempt.address:
        raise RefusedReport("attempt %s was minted for address %s, not %s" % (attempt_id, attempt.address, address))
    if result not in ("ok", "failed"):
        raise RefusedReport("result %s is not ok or failed" % fields.quote(result))
    if image not in (attempt.version, attempt.fallback) or not image:
        raise RefusedReport("image %s is not the version (%s) or the fallback (%s) of attempt %s"
                            % (fields.quote(image), attempt.version, attempt.fallback, attempt_id))
    good = None
    if result == "failed":
        ended = attempt.ended_as("failed", "report: the node reported a failed boot of %s%s"
                                 % (image, ": " + reason[:200] if reason else ""), now, booted=image)
    elif image != attempt.version:
        ended = attempt.ended_as("failed", "fallback: the node booted its fallback %s instead of %s"
                                 % (image, attempt.version), now, booted=image)
        good = image
    else:
        ended = attempt.ended_as("ok", "ok report", now, booted=image)
        good = image
    return attempt, ended, good


# ---------------------------------------------------------------- decisions

class Decision:
    """Which version a node's script names, its fallback, why, and whether it is a trial."""

    __slots__ = ("version", "fallback", "reason", "trial", "rollback")

    def __init__(self, version, fallback, reason, trial=False, rollback=False):
        self.version = version
        self.fallback = fallback
        self.reason = reason
        self.trial = trial
        self.rollback = rollback

    def as_dict(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}


def decide(entry, ledger, writable=True):
    """The version node ``entry`` (its policy resolution) boots now, given its ledger.

    - The policy's target, unless it is marked bad for the node.
    - A target the node has not booted well yet is a *trial*; trials need a
      writable ledger (etcd with quorum): without one the node boots its last
      good version.
    - A bad target: the last good version, else the policy's fallback, when
      that is not bad too (a rollback).
    - Nothing left that is not bad: no version (the script stops and says why).
    The fallback of the script is the first of (last good, policy fallback)
    that is neither bad nor the version chosen.
    """
    target = entry.get("image")
    policy_fallback = entry.get("fallback")
    good = ledger.good if ledger.good and not ledger.bad(ledger.good) else None

    def fallback_for(version):
        for candidate in (good, policy_fallback):
            if candidate and candidate != version and not ledger.bad(candidate):
                return candidate
        return None

    if target and not ledger.bad(target):
        if target == good or good is None and not ledger.attempts:
            trial = target != good
            if trial and not writable:
                return Decision(target, fallback_for(target), "first boot (the ledger is read-only: it is not "
                                "counted)", trial=False)
            return Decision(target, fallback_for(target), "the policy's target" + (" (first boot)" if trial else ""),
                            trial=trial)
        if not writable:
            if good is not None:
                return Decision(good, fallback_for(good), "trials paused: the ledger cannot be written (etcd has "
                                "no quorum); %s stays on its last good version" % ledger.node)
            return Decision(target, fallback_for(target), "the ledger cannot be written and no good version is "
                            "known: the policy's target, not counted")
        return Decision(target, fallback_for(target), "trial of the policy's target %s (last good: %s)"
                        % (target, good or "none"), trial=True)
    why = "%s is marked bad for %s (%s)" % (target, ledger.node, ledger.marks[target].reason) if target else \
        "the policy names no version"
    for candidate, what in ((good, "its last good version"), (policy_fallback, "the policy's fallback")):
        if candidate and not ledger.bad(candidate):
            return Decision(candidate, fallback_for(candidate), "%s: rolled back to %s" % (why, what),
                            rollback=True)
    return Decision(None, None, "%s, and no version that is not marked bad is left" % why, rollback=True)


def static_entry(entry, ledger):
    """The policy entry of the static script nginx serves when the service or etcd is down.

    It names the node's last good version (or the decision for a node
    without one) and never a version marked bad for the node.
    """
    decision = decide(entry, ledger, writable=False)
    static = dict(entry)
    static["image"] = decision.version
    static["fallback"] = decision.fallback
    static["reason"] = "static: " + decision.reason
    return static


def node_view(ledger, entry=None, now=None, recent=5):
    """The ledger of a node as status shows it."""
    attempts = ledger.attempts
    last = attempts[-1] if attempts else None
    view = {
        "node": ledger.node,
        "last_good": ledger.good,
        "marks": {v: {"since": m.since, "reason": m.reason} for v, m in sorted(ledger.marks.items())},
        "attempts": len(attempts),
        "failed": sum(1 for a in attempts if a.state == "failed"),
        "pending": sum(1 for a in attempts if a.state == "pending"),
        "recent": [{"id": a.id, "version": a.version, "state": a.state, "reason": a.reason, "minted": a.minted,
                    "server": a.server} for a in attempts[-recent:]],
        "verdict": last.state if last else "none",
        "why": last.reason if last else "no attempt recorded",
    }
    if entry is not None:
        decision = decide(entry, ledger)
        view.update(target=entry.get("image"), next=decision.version, next_reason=decision.reason)
    if now is not None and last is not None and last.state == "pending":
        view["why"] = "pending for %d s of %d" % (max(0, now - last.minted), last.deadline)
    return view
