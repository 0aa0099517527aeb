"""The boot service on the lab: script latency against nginx's static file, and etcd writes per boot.

Needs the lab up (`make lab`). Measures in one run:

1. Script latency and throughput, with wrk (Debian's) from this machine to one boot server's own address:
   - the node's script from the boot service (``/boot/nodes/<node>.ipxe``: nginx proxies it to the service,
     which reads the node's ledger from etcd and renders the script; a request from an address that is not the
     node's is not an attempt, so the ledger is left alone), against
   - the same node's static script as nginx serves it from disk (``/boot/ledger/<node>.ipxe``),
   each at a fixed rate (C connections, each waiting D ms between requests: about 500 requests/s) and then as
   fast as they go, the two in turn, R rounds. Prints p50/p90/p99 and requests/s, and the ratios.
2. etcd writes per boot: the cluster's revision (every write adds one) before a node's reboot and after its ok
   report is in the ledger, for B reboots of the first node (etcd is otherwise idle in the lab).

Usage: python3 benchmarks/boot_service.py [--rounds R] [--seconds S] [--boots B] [--only latency|writes]
(or: make bench-service)
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

# pylint: disable=wrong-import-position,import-error
from conftest import FIRST, SERVERS  # noqa: E402
from test_5_boot_service import ledger, reboot  # noqa: E402

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url, seconds, connections, delay_ms):
    """One wrk run; {rps, p50, p90, p99 (ms), errors}."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if delay_ms:
            script.write("function delay()\n  return %d\nend\n" % delay_ms)
        path = script.name
    try:
        out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", "%ds" % seconds, "--latency",
                              "-s", path, url], capture_output=True, text=True, check=True, timeout=seconds + 60)
    finally:
        os.unlink(path)
    text = out.stdout
    found = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "90", "99"):
        value, unit = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)$" % pct, text, re.M).groups()
        found["p" + pct] = float(value) * UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    found["errors"] = int(errors.group(1)) if errors else 0
    found["errors"] += sum(int(x) for x in socket.groups()) if socket else 0
    return found


def latency(args):
    address = SERVERS[sorted(SERVERS)[0]]
    urls = {"service": "http://%s/boot/nodes/%s.ipxe" % (address, FIRST),
            "static": "http://%s/boot/ledger/%s.ipxe" % (address, FIRST)}
    for name, url in urls.items():
        body = subprocess.run(["curl", "-fsS", url], capture_output=True, text=True, check=True).stdout
        assert body.startswith("#!ipxe") and "orion.attempt=" not in body, (name, body[:200])
    results = {(name, mode): [] for name in urls for mode in ("rate", "max")}
    for unused in range(args.rounds):
        for mode, delay in (("rate", args.delay), ("max", 0)):
            for name, url in urls.items():
                results[(name, mode)].append(wrk(url, args.seconds, args.connections, delay))
    print("\n## Script latency (wrk, %d connections, %d s a run, %d rounds; medians of the rounds)"
          % (args.connections, args.seconds, args.rounds))
    print("| what | load | requests/s | p50 ms | p90 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    med = {}
    for (name, mode), runs in sorted(results.items()):
        med[(name, mode)] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        row = med[(name, mode)]
        print("| %s | %s | %.0f | %.2f | %.2f | %.2f | %d |" % (
            name, "fixed (%d ms between requests)" % args.delay if mode == "rate" else "as fast as it goes",
            row["rps"], row["p50"], row["p90"], row["p99"], sum(r["errors"] for r in runs)))
    print("service/static, p99 at the fixed rate: %.2f (service p99 %.2f ms; goal <= 20 ms)"
          % (med[("service", "rate")]["p99"] / med[("static", "rate")]["p99"], med[("service", "rate")]["p99"]))
    print("service/static, requests/s as fast as it goes: %.3f (goal >= 0.5)"
          % (med[("service", "max")]["rps"] / med[("static", "max")]["rps"]))


def revision(server):
    out = subprocess.run(["podman", "exec", server, "orion-etcdctl", "endpoint", "status", "-w", "json"],
                         capture_output=True, text=True, check=True, timeout=60)
    return int(json.loads(out.stdout)[0]["Status"]["header"]["revision"])


def writes(args):
    from conftest import Node, report  # noqa: E402 pylint: disable=import-outside-toplevel
    server = sorted(SERVERS)[0]
    node = Node(FIRST)
    node.report = report(FIRST)
    assert node.pid() is not None and node.report, "the lab's %s does not run: make lab first" % FIRST
    deltas = []
    for unused in range(args.boots):
        before = revision(server)
        got = reboot(node)
        deadline = time.monotonic() + 60
        while ledger(FIRST)["attempts"][-1]["state"] != "ok" or ledger(FIRST)["attempts"][-1]["id"] != got["attempt"]:
            assert time.monotonic() < deadline, "the ok report of %s is not in the ledger" % FIRST
            time.sleep(1)
        time.sleep(20)  # the other servers' duplicate reports and a sweep
        deltas.append(revision(server) - before)
    print("\n## etcd writes per boot (%d reboots of %s): %s; median %s"
          % (args.boots, FIRST, deltas, statistics.median(deltas)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--delay", type=int, default=20, help="ms each connection waits between requests")
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--only", choices=["latency", "writes"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    if args.only in (None, "latency"):
        latency(args)
    if args.only in (None, "writes"):
        writes(args)


if __name__ == "__main__":
    main()
