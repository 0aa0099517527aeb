# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status of the diskless nodes, from the boot reports the servers hold.

A node PUTs its boot report to every boot server (roles/boot_server), so each
server has a copy of the last report it received, in ``reports/boot/<node>.json``.
nginx takes ``<node>.json`` only from the node's reserved address, so the
file's name says who sent it: a report is the report of the node its file
is named after. A body that names another node, or whose fields have the
wrong types, is refused and counted for that node (``rejected``); one bad
report never hides the others.

For each node of the inventory the newest usable copy is used (by the time
the server stored it); a node without one is listed as never reported.
"""

from __future__ import annotations

import json
import re
import time

from ansible_collections.orionos.diskless.plugins.module_utils import image_store
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields

try:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    HAS_PROMETHEUS = True
    PROMETHEUS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only without prometheus_client
    HAS_PROMETHEUS = False
    PROMETHEUS_IMPORT_ERROR = exc

COLUMNS = ("node", "mac", "ip", "image", "boot_s", "primary", "paths", "result", "last_report", "previous_end",
           "rejected", "target", "last_good", "attempts", "verdict", "why")
# The boot ledger's columns (from the boot_ledger module's views), and how much of its "why" the text table shows.
LEDGER_COLUMNS = ("target", "last_good", "attempts", "verdict", "why")
MAX_WHY = 100
RESULTS = ("ok", "failed", "shutdown")
EVENTS = ("boot", "shutdown")
# "unknown": a shutdown PID 1 was asked for by a signal alone (kill -TERM 1).
ACTIONS = ("reboot", "poweroff", "halt", "unknown")
ENDS = ("clean", "unclean", "unknown")
PATH_STATES = ("A", "F", "")
# A report is at most 64 KiB (nginx's client_max_body_size); lists are bounded too.
MAX_ITEMS = 64
MAX_TEXT = 1024
# Reasons kept per node for the status (the count has them all).
MAX_REASONS = 5

_TEXT_RE = re.compile(r"^[^\x00-\x1f\x7f]*\Z")
_WORD_RE = re.compile(r"^[A-Za-z0-9_.:/@%+=\[\]-]*\Z")
_BOOT_ID_RE = re.compile(r"^[0-9a-f-]{0,64}\Z")
# The boot service's attempt id of the boot (orion.attempt=), or none.
_ATTEMPT_RE = re.compile(r"^([0-9a-f]{32})?\Z")
_STEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


class ReportError(ValueError):
    """A report that is refused; the message names the field and the value."""


def _text(report, key, limit=MAX_TEXT, pattern=_TEXT_RE, default=""):
    value = report.get(key, default)
    if not isinstance(value, str) or len(value) > limit or not pattern.match(value):
        raise ReportError("%s %s is not text of up to %d characters" % (key, fields.quote(value), limit))
    return value


def _number(report, key, low=0, high=10 ** 7):
    value = report.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ReportError("%s %s is not a number from %d to %d" % (key, fields.quote(value), low, high))
    return value


def _choice(report, key, choices, default=None):
    value = report.get(key, default)
    if value not in choices:
        raise ReportError("%s %s is not one of %s" % (key, fields.quote(value), ", ".join(c or "''" for c in choices)))
    return value


def _items(report, key):
    value = report.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise ReportError("%s %s is not a list of up to %d entries" % (key, fields.quote(value), MAX_ITEMS))
    return value


def _image(value, key):
    if value in (None, ""):
        return ""
    if not image_store.valid_version(value):
        raise ReportError("%s %s is not an image version" % (key, fields.quote(value)))
    return value


def check_report(name, report):
    """The usable fields of the report stored as ``<name>.json``; ReportError when it is refused."""
    if not isinstance(report, dict):
        raise ReportError("the body %s is not a JSON object" % fields.quote(report))
    if report.get("node") != name:
        raise ReportError("node %s is not %s, the node the file belongs to" % (fields.quote(report.get("node")), name))
    if report.get("format", 1) != 1:
        raise ReportError("format %s is not 1" % fields.quote(report.get("format")))
    checked = {
        "node": name,
        "result": _choice(report, "result", RESULTS),
        "reason": _text(report, "reason"),
        "image": _image(report.get("image"), "image"),
        "kernel": _text(report, "kernel", 128, _WORD_RE),
        "primary": _text(report, "primary", 64, _WORD_RE),
        "event": _choice(report, "event", EVENTS, "boot"),
        "boot_id": _text(report, "boot_id", 64, _BOOT_ID_RE),
        "attempt": _text(report, "attempt", 32, _ATTEMPT_RE),
    }
    fallback = report.get("fallback", False)
    if not isinstance(fallback, bool):
        raise ReportError("fallback %s is not true or false" % fields.quote(fallback))
    checked["fallback"] = fallback
    checked["boot_seconds"] = _number(report, "boot_seconds") if "boot_seconds" in report else None
    if checked["event"] == "shutdown":
        checked["action"] = _choice(report, "action", ACTIONS)
    macs = []
    for value in _items(report, "macs"):
        try:
            macs.append(fields.mac(value))
        except fields.FieldError as exc:
            raise ReportError("macs: %s" % exc) from exc
    checked["macs"] = macs
    addresses = []
    for value in _items(report, "addresses"):
        if not isinstance(value, str) or len(value) > 64 or not _WORD_RE.match(value):
            raise ReportError("addresses: %s is not an address" % fields.quote(value))
        addresses.append(value)
    checked["addresses"] = addresses
    paths = []
    for index, path in enumerate(_items(report, "paths")):
        if not isinstance(path, dict):
            raise ReportError("paths[%d] %s is not an object" % (index, fields.quote(path)))
        try:
            rtt = path.get("rtt_ms", "")
            if isinstance(rtt, bool) or not isinstance(rtt, (int, float)):
                rtt = _text(path, "rtt_ms", 32, _WORD_RE)
            paths.append({"server": _text(path, "server", 64, _WORD_RE), "device": _text(path, "device", 64, _WORD_RE),
                          "loop": _text(path, "loop", 64, _WORD_RE), "role": _text(path, "role", 64, _WORD_RE),
                          "rtt_ms": rtt, "state": _choice(path, "state", PATH_STATES, "")})
        except ReportError as exc:
            raise ReportError("paths[%d].%s" % (index, exc)) from exc
    checked["paths"] = paths
    phases = report.get("phases", {})
    if not isinstance(phases, dict) or len(phases) > MAX_ITEMS:
        raise ReportError("phases %s is not an object of up to %d entries" % (fields.quote(phases), MAX_ITEMS))
    checked["phases"] = {}
    for key, value in phases.items():
        if not _WORD_RE.match(key) or len(key) > 64:
            raise ReportError("phases: name %s is not a phase name" % fields.quote(key))
        checked["phases"][key] = _number(phases, key)
    previous = report.get("previous")
    if previous is not None:
        if not isinstance(previous, dict):
            raise ReportError("previous %s is not an object" % fields.quote(previous))
        try:
            checked["previous"] = {
                "end": _choice(previous, "end", ENDS),
                "action": _choice(previous, "action", ACTIONS + ("",), ""),
                "image": _image(previous.get("image"), "image"),
                "boot_id": _text(previous, "boot_id", 64, _BOOT_ID_RE),
                "server": _text(previous, "server", 64, _WORD_RE),
            }
        except ReportError as exc:
            raise ReportError("previous.%s" % exc) from exc
    return checked


def parse_listing(text):
    """``(reports, rejected)`` from lines ``<epoch stored> <file name without .json> <report JSON>``.

    ``reports`` is [(stored, report)] of the usable ones; ``rejected`` is
    [(name, reason)] of the others (name None when the line itself is
    broken). A line never raises.
    """
    found, rejected = [], []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = line.strip().split(" ", 2)
        if len(parts) < 3 or not _STEM_RE.match(parts[1]):
            rejected.append((None, "a listing line without a stored time, file name and body"))
            continue
        stamp, name, body = parts
        try:
            stored = float(stamp)
        except ValueError:
            rejected.append((name, "the stored time %s is not a number" % fields.quote(stamp)))
            continue
        try:
            report = json.loads(body)
        except (ValueError, RecursionError):
            rejected.append((name, "the body is not JSON"))
            continue
        try:
            found.append((stored, check_report(name, report)))
        except ReportError as exc:
            rejected.append((name, str(exc)))
        except RecursionError:
            rejected.append((name, "the body is nested too deeply"))
    return found, rejected


def newest(listings):
    """``({node: (stored, server, report)}, {node: [reasons]})`` over {server: listing text}."""
    best, rejected = {}, {}
    for server in sorted(listings):
        reports, refused = parse_listing(listings[server])
        for stored, report in reports:
            name = report["node"]
            if name not in best or stored > best[name][0]:
                best[name] = (stored, server, report)
        for name, reason in refused:
            rejected.setdefault(name, []).append("%s: %s" % (server, reason))
    return best, rejected


def ledger_cells(view):
    """The ledger columns of a node from its boot_ledger view (None: the control plane gave none)."""
    if not isinstance(view, dict):
        return {"target": "", "last_good": "", "attempts": "", "verdict": "", "why": "", "ledger": None}
    recent = [a for a in view.get("recent") or [] if isinstance(a, dict)]
    why = str(view.get("next_reason") or "") if view.get("next") != view.get("target") else ""
    if not why:
        why = str(view.get("why") or "") if view.get("verdict") == "failed" else ""
    marks = sorted(view.get("marks") or {})
    return {"target": str(view.get("target") or ""), "last_good": str(view.get("last_good") or ""),
            "attempts": "%s (%s failed)" % (view.get("attempts", 0), view.get("failed", 0)),
            "verdict": str(view.get("verdict") or "") + (" bad:" + ",".join(marks) if marks else ""),
            "why": why[:MAX_WHY], "ledger": {"next": view.get("next"), "marks": view.get("marks") or {},
                                             "counts": {"failed": view.get("failed", 0),
                                                        "pending": view.get("pending", 0),
                                                        "all": view.get("attempts", 0)},
                                             "recent": recent, "next_reason": view.get("next_reason")}}


def table(nodes, listings, ledgers=None):
    """One row per inventory node (sorted by name), as mappings with COLUMNS and the checked report.

    ``ledgers`` maps nodes to their boot ledger views (the boot_ledger module's
    ``ledgers``). Nothing in a row depends on the time it is made, so the same
    reports and ledgers give the same rows.
    """
    best, rejected = newest(listings)
    rows = []
    for node in sorted(nodes, key=lambda n: n["name"]):
        name = node["name"]
        macs = node.get("macs") or node.get("mac") or []
        macs = [macs] if isinstance(macs, str) else list(macs)
        refused = rejected.get(name, [])
        row = {"node": name, "mac": ",".join(macs), "ip": node.get("ip") or "", "image": "", "boot_s": None,
               "primary": "", "paths": "", "result": "never reported", "last_report": "", "last_report_epoch": None,
               "healthy_paths": 0, "total_paths": 0, "report": None, "previous_end": "",
               "rejected": len(refused), "rejected_reasons": refused[:MAX_REASONS]}
        row.update(ledger_cells((ledgers or {}).get(name)))
        if name in best:
            stored, _server, report = best[name]
            paths = report["paths"]
            healthy = sum(1 for p in paths if p["state"] == "A")
            previous = report.get("previous") or {}
            row.update({
                "image": report["image"],
                "boot_s": report["boot_seconds"],
                "primary": report["primary"],
                "paths": "%d/%d" % (healthy, len(paths)),
                "healthy_paths": healthy, "total_paths": len(paths),
                "result": report["result"] + (": " + report["reason"] if report["reason"] else ""),
                "last_report": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored)),
                "last_report_epoch": int(stored),
                "report": report,
                "previous_end": ("%s %s" % (previous["end"], previous["action"])).strip() if previous else "",
            })
            if not row["ip"] and report["addresses"]:
                row["ip"] = report["addresses"][0].split("/", maxsplit=1)[0]
        rows.append(row)
    return rows


def unknown_rejected(nodes, listings):
    """{file name: [reasons]} of refused reports whose file is not an inventory node's (None: broken lines)."""
    names = {node["name"] for node in nodes}
    _best, rejected = newest(listings)
    return {("" if name is None else name): reasons for name, reasons in rejected.items() if name not in names}


def rejected_lines(rows, unknown):
    """One line per refused report, for the screen: whose, on which server, why."""
    lines = ["rejected report of %s on %s" % (row["node"], reason) for row in rows for reason in row["rejected_reasons"]]
    lines += ["%d more rejected report(s) of %s" % (row["rejected"] - len(row["rejected_reasons"]), row["node"])
              for row in rows if row["rejected"] > len(row["rejected_reasons"])]
    lines += ["rejected report in %s on %s" % ("%s.json" % name if name else "a broken listing line", reason)
              for name in sorted(unknown) for reason in unknown[name][:MAX_REASONS]]
    return lines


def render_text(rows):
    """The table as aligned text, a header line first."""
    cells = [list(COLUMNS)]
    for row in rows:
        cells.append(["" if row[c] is None else str(row[c]) for c in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells) + "\n"


def render_prometheus(rows):
    """Prometheus textfile metrics (for node_exporter's textfile collector), written by prometheus_client."""
    if not HAS_PROMETHEUS:
        raise RuntimeError("the Python library 'prometheus_client' is required on the controller "
                           "(pip install prometheus_client): %s" % PROMETHEUS_IMPORT_ERROR)
    registry = CollectorRegistry()
    up = Gauge("orion_node_up", "1 when the node's last boot report says ok.", ["node", "image"], registry=registry)
    boot = Gauge("orion_node_boot_seconds", "Seconds from the kernel's start to the boot report.", ["node"],
                 registry=registry)
    paths = Gauge("orion_node_root_paths_healthy", "Root image paths the node's last report gave as active.",
                  ["node"], registry=registry)
    stamp = Gauge("orion_node_last_report_timestamp_seconds", "When the node's last boot report was stored.",
                  ["node"], registry=registry)
    marks = Gauge("orion_node_bad_versions", "Versions the boot ledger has marked bad for the node.", ["node"],
                  registry=registry)
    attempts = Gauge("orion_node_boot_attempts", "Boot attempts the ledger keeps for the node, by how they ended.",
                     ["node", "state"], registry=registry)
    rolled = Gauge("orion_node_rolled_back", "1 when the node's next script names another version than its target "
                   "(a rollback).", ["node"], registry=registry)
    rejected = Gauge("orion_node_reports_rejected", "Stored copies of the node's report that were refused "
                     "(another node's name, or fields of the wrong type).", ["node"], registry=registry)
    for row in rows:
        report = row["report"]
        up.labels(node=row["node"], image=row["image"]).set(1 if report is not None and report["result"] == "ok" else 0)
        if isinstance(row["boot_s"], (int, float)):
            boot.labels(node=row["node"]).set(row["boot_s"])
        if report is not None:
            paths.labels(node=row["node"]).set(row["healthy_paths"])
        if row["last_report_epoch"] is not None:
            stamp.labels(node=row["node"]).set(row["last_report_epoch"])
        rejected.labels(node=row["node"]).set(row["rejected"])
        ledger = row.get("ledger")
        if ledger is not None:
            marks.labels(node=row["node"]).set(len(ledger["marks"]))
            counts = ledger["counts"]
            states = {"failed": counts["failed"], "pending": counts["pending"],
                      "ok": max(0, counts["all"] - counts["failed"] - counts["pending"])}
            for state, count in sorted(states.items()):
                attempts.labels(node=row["node"], state=state).set(count)
            rolled.labels(node=row["node"]).set(1 if ledger["next"] and ledger["next"] != row["target"] else 0)
    return generate_latest(registry).decode("utf-8")
