# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status of the diskless nodes, from the boot reports the servers hold.

A node PUTs its boot report to every boot server (roles/boot_server), so each
server has a copy of the last report it received. For each node of the
inventory the newest copy is used (by the time the server stored it); a node
without a report is listed as never reported.
"""

from __future__ import annotations

import json
import time

COLUMNS = ("node", "mac", "ip", "image", "boot_s", "primary", "paths", "result", "last_report")


def parse_listing(text):
    """[(stored epoch seconds, report dict)] from lines "<epoch> <report json>"; bad lines are skipped."""
    found = []
    for line in (text or "").splitlines():
        stamp, body = (line.strip().split(" ", 1) + [""])[:2]
        try:
            report = json.loads(body)
            stored = float(stamp)
        except ValueError:
            continue
        if isinstance(report, dict) and isinstance(report.get("node"), str):
            found.append((stored, report))
    return found


def newest(listings):
    """{node: (stored, server, report)} over {server: listing text}."""
    best = {}
    for server in sorted(listings):
        for stored, report in parse_listing(listings[server]):
            name = report["node"]
            if name not in best or stored > best[name][0]:
                best[name] = (stored, server, report)
    return best


def table(nodes, listings):
    """One row per inventory node (sorted by name), as mappings with COLUMNS and the full report.

    Nothing in a row depends on the time it is made, so the same reports give the same rows.
    """
    best = newest(listings)
    rows = []
    for node in sorted(nodes, key=lambda n: n["name"]):
        name = node["name"]
        macs = node.get("macs") or node.get("mac") or []
        macs = [macs] if isinstance(macs, str) else list(macs)
        row = {"node": name, "mac": ",".join(macs), "ip": node.get("ip") or "", "image": "", "boot_s": None,
               "primary": "", "paths": "", "result": "never reported", "last_report": "", "last_report_epoch": None,
               "healthy_paths": 0, "total_paths": 0, "report": None}
        if name in best:
            stored, _server, report = best[name]
            paths = [p for p in report.get("paths") or [] if isinstance(p, dict)]
            healthy = sum(1 for p in paths if p.get("state") == "A")
            row.update({
                "image": str(report.get("image", "")),
                "boot_s": report.get("boot_seconds"),
                "primary": str(report.get("primary", "")),
                "paths": "%d/%d" % (healthy, len(paths)),
                "healthy_paths": healthy, "total_paths": len(paths),
                "result": str(report.get("result", "")) + (": " + report["reason"] if report.get("reason") else ""),
                "last_report": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stored)),
                "last_report_epoch": int(stored),
                "report": report,
            })
            if not row["ip"] and report.get("addresses"):
                row["ip"] = str(report["addresses"][0]).split("/", maxsplit=1)[0]
        rows.append(row)
    return rows


def render_text(rows):
    """The table as aligned text, a header line first."""
    cells = [list(COLUMNS)]
    for row in rows:
        cells.append(["" if row[c] is None else str(row[c]) for c in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells) + "\n"


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ")


def render_prometheus(rows):
    """Prometheus textfile metrics (for node_exporter's textfile collector)."""
    out = ["# HELP orion_node_up 1 when the node's last boot report says ok.",
           "# TYPE orion_node_up gauge"]
    for row in rows:
        up = 1 if row["report"] is not None and row["report"].get("result") == "ok" else 0
        out.append('orion_node_up{node="%s",image="%s"} %d' % (_label(row["node"]), _label(row["image"]), up))
    out += ["# HELP orion_node_boot_seconds Seconds from the kernel's start to the boot report.",
            "# TYPE orion_node_boot_seconds gauge"]
    out += ['orion_node_boot_seconds{node="%s"} %s' % (_label(r["node"]), r["boot_s"])
            for r in rows if isinstance(r["boot_s"], (int, float))]
    out += ["# HELP orion_node_root_paths_healthy Root image paths the node's last report gave as active.",
            "# TYPE orion_node_root_paths_healthy gauge"]
    out += ['orion_node_root_paths_healthy{node="%s"} %d' % (_label(r["node"]), r["healthy_paths"])
            for r in rows if r["report"] is not None]
    out += ["# HELP orion_node_last_report_timestamp_seconds When the node's last boot report was stored.",
            "# TYPE orion_node_last_report_timestamp_seconds gauge"]
    out += ['orion_node_last_report_timestamp_seconds{node="%s"} %d' % (_label(r["node"]), r["last_report_epoch"])
            for r in rows if r["last_report_epoch"] is not None]
    return "\n".join(out) + "\n"
