"""Automatic rollback on the lab: time from a node's reboot into a broken version to its good boot.

Needs the lab up (`make lab`). For each kind of broken version of tests/lab/test_6_rollback.py (a kernel that
panics, a root that does not mount, a service that does not run, a boot that hangs until the watchdog), the first
node is pinned to it (servers.yml, as an operator does), then R times: the node reboots, and the time until its
ok report on its last good version is in the ledger is taken, with the attempts the ledger counted; the mark is
cleared (boot_ledger) so that the next round tries the version again. The lab's policy is put back at the end.
The hang runs with the ledger's deadline at 60 s (the watchdog's timeout) and one failure marking the version.

Usage: python3 benchmarks/rollback.py [--rounds R] [--kinds panic,noroot,service,hang]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

# pylint: disable=wrong-import-position,import-error
from conftest import FIRST, Node, report  # noqa: E402
from test_6_rollback import HANG_LEDGER, SOURCE, adhoc, apply_policy, ledger, publish, run_playbook, wait_for  # noqa: E402

KINDS = ("panic", "noroot", "service", "hang")


def one_round(node, good, bad):
    """Reboot the node into ``bad``; (seconds to its good boot, failed attempts on ``bad``)."""
    seen = len(ledger(FIRST)["attempts"])
    old = report(FIRST)["boot_id"]
    started = time.monotonic()
    node.run("reboot", check=False, timeout=60)

    def back():
        got = report(FIRST)
        if got and got.get("boot_id") != old and got.get("result") == "ok" and got.get("image") == good:
            record = ledger(FIRST)
            if record["attempts"][-1]["id"] == got.get("attempt") and record["attempts"][-1]["state"] == "ok":
                return record
        return None

    record = wait_for("good boot", back, timeout=1200)
    elapsed = time.monotonic() - started
    failed = sum(1 for a in record["attempts"][seen:] if a["version"] == bad and a["state"] == "failed")
    adhoc(SOURCE, "orionos.diskless.boot_ledger", {"node": [FIRST], "state": "cleared", "version": bad})
    return elapsed, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    node = Node(FIRST)
    node.report = report(FIRST)
    assert node.pid() is not None and node.report, "the lab's %s does not run: make lab first" % FIRST
    good = node.report["image"]
    work = Path(tempfile.mkdtemp(prefix="orion-bench-rollback-"))
    results = {}
    try:
        for kind in kinds:
            bad = publish(good, kind)
            run_playbook("images.yml")
            apply_policy(work, good, pinned=bad, ledger_settings=HANG_LEDGER if kind == "hang" else None)
            results[kind] = []
            for index in range(args.rounds):
                elapsed, failed = one_round(node, good, bad)
                results[kind].append((elapsed, failed))
                print("%s round %d: back on %s after %.0f s, %d failed attempt(s) on %s"
                      % (kind, index + 1, good, elapsed, failed, bad), flush=True)
    finally:
        apply_policy(work, good, ledger_settings="default")
    print("\n## From the reboot into a broken version to the good boot (%s, %d rounds)" % (FIRST, args.rounds))
    print("| kind | min s | median s | max s | failed attempts before the rollback |")
    print("|---|---|---|---|---|")
    for kind, runs in results.items():
        times = [r[0] for r in runs]
        counts = sorted({r[1] for r in runs})
        print("| %s | %.0f | %.0f | %.0f | %s |" % (kind, min(times), statistics.median(times), max(times), counts))


if __name__ == "__main__":
    main()
