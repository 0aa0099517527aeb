"""The boot service on the lab: script latency against nginx's static file, and etcd writes per boot.

Needs the lab up (`make lab`). Measures in one run:

1. Script latency and throughput, with wrk (Debian's) from this machine to one boot server's own address:
   - the node's script from the boot service (``/boot/nodes/<node>.ipxe``: nginx proxies it to the service,
     which reads the node's ledger from etcd and renders the script; a request from an address that is not the
     node's is not an attempt, so the ledger is left alone), against
   - the same node's static script as nginx serves it from disk (``/boot/ledger/<node>.ipxe``),
   each at a fixed rate (C connections, each waiting D ms between requests: about 500 requests/s) and then as
   fast as they go, the two in turn, R rounds. Prints p50/p90/p99 and requests/s, and the ratios.
2. A boot storm of counted attempts: a second service on one boot server (its own port, on the server's
   address), with its own table of N nodes that exist only for the benchmark (``bench-NNNNN``, addresses in
   10.250.0.0/16) and the lab's etcd cluster. wrk sends each request as one of those nodes (the ``X-Real-IP``
   header nginx would set), so every request is a boot attempt written to etcd, at the fixed rate and as fast as
   it goes. The nodes' ledgers are deleted afterwards.
3. etcd writes per boot: the cluster's revision (every write adds one) before a node's reboot and after its ok
   report is in the ledger, for B reboots of the first node (etcd is otherwise idle in the lab).

Usage: python3 benchmarks/boot_service.py [--rounds R] [--seconds S] [--boots B] [--nodes N]
       [--only latency|storm|writes]
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


STORM_PORT = 8799
STORM_DIR = "/run/orion-bench-storm"
STORM_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(os.time() * 100 + id)
end
function request()
  local i = math.random(0, %(nodes)d - 1)
  local headers = {["X-Real-IP"] = string.format("10.250.%%d.%%d", math.floor(i / 250), i %% 250 + 1)}
  return wrk.format("GET", string.format("/boot/nodes/bench-%%05d.ipxe", i), headers)
end
"""


def wrk(url, seconds, connections, delay_ms, lua=""):
    """One wrk run; {rps, p50, p90, p99 (ms), errors}."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if delay_ms:
            script.write("function delay()\n  return %d\nend\n" % delay_ms)
        script.write(lua)
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
    return med[("static", "max")]


def podman_exec(server, *argv, stdin=None):
    return subprocess.run(["podman", "exec", "-i", server] + list(argv), input=stdin, capture_output=True,
                          text=True, check=True, timeout=120).stdout


def storm(args, static):
    """Counted attempts of N benchmark nodes against a second service on the first server; {mode: wrk result}."""
    server = sorted(SERVERS)[0]
    address = SERVERS[server]
    config = json.loads(podman_exec(server, "cat", "/etc/orion/boot-service.json"))
    table = json.loads(podman_exec(server, "cat", config["table"]))["nodes"]
    model = dict(table[FIRST])
    nodes = {}
    for i in range(args.nodes):
        name = "bench-%05d" % i
        nodes[name] = dict(model, name=name, ip="10.250.%d.%d" % (i // 250, i % 250 + 1),
                           macs=["02:be:00:%02x:%02x:%02x" % (i >> 16, (i >> 8) & 255, i & 255)])
    config.update(table=STORM_DIR + "/resolution.json", static_dir=STORM_DIR + "/static",
                  reports_dir=STORM_DIR + "/reports", listen_host=address, listen_port=STORM_PORT,
                  sweep_interval=3600)
    podman_exec(server, "sh", "-c", "rm -rf %s && mkdir -p %s/static %s/reports && cat > %s/config.json"
                % (STORM_DIR, STORM_DIR, STORM_DIR, STORM_DIR), stdin=json.dumps(config))
    podman_exec(server, "sh", "-c", "cat > %s/resolution.json" % STORM_DIR, stdin=json.dumps({"nodes": nodes}))
    unit = "orion-bench-storm"
    podman_exec(server, "systemd-run", "--unit", unit, "--collect", "/usr/bin/python3",
                "/usr/local/libexec/orion/orion_boot_service.py", "--config", STORM_DIR + "/config.json")
    url = "http://%s:%d/boot/nodes/bench-00000.ipxe" % (address, STORM_PORT)
    results = {}
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-H", "X-Real-IP: 10.9.9.9", url],
                             capture_output=True, check=False).returncode != 0:
            assert time.monotonic() < deadline, "the benchmark's service on %s does not answer" % server
            time.sleep(1)
        lua = STORM_LUA % {"nodes": args.nodes}
        for mode, delay in (("rate", args.delay), ("max", 0)):
            results[mode] = wrk(url, args.seconds, args.connections, delay, lua)
        metrics = subprocess.run(["curl", "-fsS", "http://%s:%d/metrics" % (address, STORM_PORT)],
                                 capture_output=True, text=True, check=True).stdout
    finally:
        podman_exec(server, "systemctl", "stop", unit)
        podman_exec(server, "orion-etcdctl", "del", "--prefix", "/orion/ledger/bench-")
        podman_exec(server, "rm", "-rf", STORM_DIR)
    counted = re.search(r'^orion_boot_service_scripts_total\{counted="yes"\} ([\d.e+]+)', metrics, re.M)
    conflicts = re.search(r"^orion_boot_service_write_conflicts_total ([\d.e+]+)", metrics, re.M)
    print("\n## A boot storm: every request a counted attempt of one of %d nodes (wrk, %d connections, %d s a run)"
          % (args.nodes, args.connections, args.seconds))
    print("| load | attempts/s | p50 ms | p90 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for mode, row in results.items():
        print("| %s | %.0f | %.2f | %.2f | %.2f | %d |" % (
            "fixed (%d ms between requests)" % args.delay if mode == "rate" else "as fast as it goes",
            row["rps"], row["p50"], row["p90"], row["p99"], row["errors"]))
    print("attempts written: %s; write conflicts retried: %s" % (
        int(float(counted.group(1))) if counted else "?", int(float(conflicts.group(1))) if conflicts else "?"))
    if static:
        print("storm/static, requests/s as fast as it goes: %.3f" % (results["max"]["rps"] / static["rps"]))
    return results


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
    parser.add_argument("--nodes", type=int, default=5000, help="benchmark nodes of the boot storm")
    parser.add_argument("--only", choices=["latency", "storm", "writes"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    static = None
    if args.only in (None, "latency"):
        static = latency(args)
    if args.only in (None, "storm"):
        storm(args, static)
    if args.only in (None, "writes"):
        writes(args)


if __name__ == "__main__":
    main()
