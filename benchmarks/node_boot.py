"""Diskless node boot and failover, on the lab.

Needs the lab up (`make lab`; with --up this script runs it). The lab's first
node is stopped for the run (its name and MAC are the benchmark's); `make lab`
starts it again. Measures in one run:

1. Network boot of a node, N times (default 3): the host's clock at each
   serial console marker from QEMU's start: iPXE running the node's script
   (DHCP and the entry script done), the kernel started (kernel and
   initramfs fetched over HTTP), /init started, switch_root, and the boot
   report (ORIONOS-NODE-UP).
2. The same kernel and initramfs given to QEMU with -kernel/-initrd and the
   same command line, on the same network, N times: QEMU start to the boot
   report. Prints the ratio network/local of the medians.
3. The kernel and initramfs fetched from one server by HTTP and by TFTP (the
   block size iPXE asks for, 1432), 5 times each, with curl on this machine.
   For this the two files are put in the server's TFTP root for the run, and
   removed afterwards. Prints MB/s and the ratio.
4. Boot storm: C clients at once (default 200), each fetching what a node
   fetches to boot (undionly.kpxe by TFTP; boot.ipxe, its node script, the
   kernel and the initramfs by HTTP) from one server, run inside the other
   server's container; against one client in the same run. Prints failures
   and times.
5. Failover: a reader on a node checksums files in a loop with the caches
   dropped; the node's primary server is killed K times (default 5), each
   time started again and its path reinstated before the next kill. With
   --cut, the server's link is taken down instead (and up again), which is
   how a machine that loses power looks to the node: no FIN, RST or ICMP. Prints
   min / median / max of the stall (longest pass minus a normal pass) and
   the read errors.
6. NFS calls per boot, counted on the wire (every frame on the node's tap,
   each TCP stream to the servers' NFS and MOUNT ports split into RPC
   calls), from QEMU's start to the boot report, with -kernel/-initrd: the
   root image (the default, sha256 of the image checked on both servers),
   the same without the check (orion.verify=none), and the unpacked tree of
   the same image read file by file (orion.root=tree; the tree is unpacked
   beside the image on both servers for the run and removed afterwards).

Usage: python3 benchmarks/node_boot.py [--boots N] [--clients C] [--kills K] [--only PART...] [--up]
(or: make bench-boot)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

# pylint: disable=wrong-import-position,import-error
from conftest import FIRST, NAME_OF, NODES, SERVERS, Node, report, start_server  # noqa: E402
from rpc_capture import Capture, count_calls  # noqa: E402
from test_2_failover import READER, passes  # noqa: E402

MARKERS = [("script", "boots image"), ("kernel", "Linux version"), ("init", "Run /init"),
           ("switch_root", "ORIONOS-SWITCH-ROOT"), ("report", "ORIONOS-NODE-UP")]
WORK = Path(os.environ.get("ORION_BENCH_WORK", "/var/tmp/orion-bench-boot"))
STORE = os.path.join(os.environ.get("ORION_TEST_BUILD", "/var/tmp/orion-test-build"), "store", "images")
# The node booted, and the servers: the first of each in the lab inventory.
NODE = FIRST
SERVER, OTHER = sorted(SERVERS)[:2]


def sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def timed_boot(node, timeout=600):
    """{marker: seconds from QEMU start} for a node started just before."""
    seen = {}
    # A -kernel/-initrd boot has no iPXE script: the loop ends at the report.
    while time.monotonic() - node.started < timeout and "report" not in seen:
        text = node.text()
        for name, marker in MARKERS:
            if name not in seen and marker in text:
                seen[name] = time.monotonic() - node.started
        if "ORIONOS-BOOT-FAILED" in text:
            raise SystemExit("boot failed:\n" + text[-3000:])
        time.sleep(0.1)
    if "report" not in seen:
        raise SystemExit("no boot report within %d s:\n%s" % (timeout, node.text()[-3000:]))
    while report(node.name) is None and time.monotonic() - node.started < timeout:
        time.sleep(0.2)
    return seen


def node_script(name):
    """The kernel line of the node's own iPXE script on the first server: (version, command line)."""
    text = sh("podman", "exec", SERVER, "cat", "/srv/orion/boot/nodes/%s.ipxe" % name).stdout
    line = [l for l in text.splitlines() if l.startswith("kernel ")][0]
    url, cmdline = line.split(" ", 2)[1], line.split(" ", 2)[2].split(" || ")[0]
    return url.split("/")[-2], cmdline


class LocalNode(Node):
    """The same node, booted with -kernel/-initrd instead of PXE."""

    def __init__(self, name, workdir, version, cmdline):
        super().__init__(name, workdir)
        self.version, self.cmdline = version, cmdline

    def boot_args(self):
        image = os.path.join(STORE, self.version)
        return ["-kernel", os.path.join(image, "vmlinuz"), "-initrd", os.path.join(image, "initramfs.img"),
                "-append", self.cmdline, "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % self.mac]


def boots(count):
    network, local = [], []
    version, cmdline = node_script(NODE)
    for i in range(count):
        node = Node(NODE, WORK).start()
        try:
            network.append(timed_boot(node))
        finally:
            node.stop()
        node = LocalNode(NODE, WORK, version, cmdline).start()
        try:
            local.append(timed_boot(node))
        finally:
            node.stop()
        rounded = ({k: round(v, 1) for k, v in network[-1].items()}, {k: round(v, 1) for k, v in local[-1].items()})
        print("boot %d: network %s; local %s" % (i + 1, rounded[0], rounded[1]), flush=True)
    print("\n1-2. Boot, seconds from QEMU start (median of %d), network and -kernel/-initrd in turn" % count)
    for name, _marker in MARKERS:
        net = statistics.median(b[name] for b in network)
        loc = statistics.median(b[name] for b in local) if all(name in b for b in local) else None
        print("  %-12s network %6.1f   local %s" % (name, net, "%6.1f" % loc if loc is not None else "     -"))
    ratio = statistics.median(b["report"] for b in network) / statistics.median(b["report"] for b in local)
    print("  ratio network/local to the boot report: %.2f (target <= 1.5)" % ratio)


def fetch_ratio(rounds=5):
    version = node_script(NODE)[0]
    files = ["vmlinuz", "initramfs.img"]
    server, address = SERVER, SERVERS[SERVER]
    for name in files:
        sh("podman", "exec", server, "sh", "-c",
           "install -o dnsmasq -m 0444 /srv/orion/images/%s/%s /srv/orion/tftp/bench-%s" % (version, name, name))
    size = sum(int(sh("podman", "exec", server, "stat", "-c", "%s", "/srv/orion/images/%s/%s" % (version, n)).stdout)
               for n in files)
    timing = {"http": [], "tftp": []}
    try:
        for _round in range(rounds):
            for proto in ("http", "tftp"):
                start = time.monotonic()
                for name in files:
                    url = ("http://%s/boot/images/%s/%s" % (address, version, name) if proto == "http"
                           else "tftp://%s/bench-%s" % (address, name))
                    extra = ["--tftp-blksize", "1432"] if proto == "tftp" else []
                    sh("curl", "-sf", *extra, "-o", "/dev/null", url)
                timing[proto].append(time.monotonic() - start)
    finally:
        sh("podman", "exec", server, "sh", "-c", "rm -f /srv/orion/tftp/bench-*", check=False)
    http, tftp = statistics.median(timing["http"]), statistics.median(timing["tftp"])
    print("\n3. Kernel + initramfs (%.1f MB) from one server, median of %d" % (size / 1e6, rounds))
    print("  HTTP %.3f s (%.1f MB/s)   TFTP %.3f s (%.1f MB/s)   ratio TFTP/HTTP time %.1f"
          % (http, size / 1e6 / http, tftp, size / 1e6 / tftp, tftp / http))


STORM_CLIENT = r"""
fetch() {
  curl -sf --max-time 120 tftp://%(addr)s/undionly.kpxe -o /dev/null &&
  curl -sf --max-time 120 http://%(addr)s/boot/boot.ipxe -o /dev/null &&
  curl -sf --max-time 120 http://%(addr)s/boot/nodes/%(node)s.ipxe -o /dev/null &&
  curl -sf --max-time 120 http://%(addr)s/boot/images/%(version)s/vmlinuz -o /dev/null &&
  curl -sf --max-time 120 http://%(addr)s/boot/images/%(version)s/initramfs.img -o /dev/null
}
start=$(date +%%s.%%N); fails=0
for i in $(seq 1 %(clients)d); do fetch & done
for job in $(jobs -p); do wait $job || fails=$((fails + 1)); done
end=$(date +%%s.%%N)
echo "$start $end $fails"
"""


def storm(clients):
    version = node_script(NODE)[0]
    figures = {}
    for count in (1, clients):
        script = STORM_CLIENT % {"addr": SERVERS[SERVER], "node": NODE, "version": version, "clients": count}
        start, end, fails = sh("podman", "exec", OTHER, "bash", "-c", script).stdout.split()
        figures[count] = (float(end) - float(start), int(fails))
    one, many = figures[1][0], figures[clients][0]
    print("\n4. Boot storm from one server (TFTP iPXE + HTTP scripts, kernel, initramfs per client)")
    print("  1 client %.2f s, %d failed;  %d clients at once %.2f s, %d failed;  ratio %.1f (%d would be serial)"
          % (one, figures[1][1], clients, many, figures[clients][1], many / one, clients))


def host_link(server):
    """The host side of a server container's network link (its veth on the bridge)."""
    index = sh("podman", "exec", server, "cat", "/sys/class/net/eth0/iflink").stdout.strip()
    line = [l for l in sh("ip", "-o", "link").stdout.splitlines() if l.startswith(index + ":")][0]
    return line.split(":")[1].strip().split("@")[0]


def failover(kills, append="", cut=False):
    if append:
        version, cmdline = node_script(NODE)
        node = LocalNode(NODE, WORK, version, cmdline + " " + append).start()
    else:
        node = Node(NODE, WORK).start()
    stalls, errors = [], 0
    try:
        timed_boot(node)
        node.report = report(node.name)
        node.run("cat > /tmp/reader.sh <<'EOF'\n%sEOF\nsetsid sh /tmp/reader.sh </dev/null >/dev/null 2>&1 &" % READER)
        for i in range(kills):
            primary = NAME_OF[node.run("cat /run/orion/primary").stdout.strip()]
            active = node.run("orion-dm status orion-root").stdout
            time.sleep(8)
            before = passes(node)
            normal = statistics.median(r[2] - r[1] for r in before[-10:])
            if cut:
                link = host_link(primary)
                sh("ip", "link", "set", link, "down")
            else:
                sh("podman", "kill", "-s", "KILL", primary)
            killed_at = len(before)
            time.sleep(20)
            rows = passes(node)
            stall = max(r[2] - r[1] for r in rows[killed_at - 1:]) - normal
            errors = rows[-1][3]
            stalls.append(stall)
            if cut:
                sh("ip", "link", "set", link, "up")
            else:
                start_server(primary)
            back = time.monotonic()
            while " F " in node.run("orion-dm status orion-root").stdout and time.monotonic() - back < 300:
                time.sleep(3)
            print("%s %d of %s: stall %.2f s, read errors so far %d, path reinstated %.0f s after the server was up"
                  " (paths before: %s)" % ("cut" if cut else "kill", i + 1, primary, stall, errors,
                                           time.monotonic() - back, active.strip()), flush=True)
        node.run("touch /tmp/stop")
    finally:
        node.stop()
    print("\n5. Failover over %d %s of the primary server%s: stall min %.2f / median %.2f / max %.2f s, read errors %d"
          % (kills, "network cuts" if cut else "kills", " (-kernel/-initrd, with %s)" % append if append else "",
             min(stalls), statistics.median(stalls), max(stalls), errors))


def volume_dir(server):
    """The server's /srv/orion as the host sees it (its podman volume)."""
    return sh("podman", "volume", "inspect", "--format", "{{.Mountpoint}}", "%s-store" % server).stdout.strip()


def counted_boot(version, cmdline, ports):
    """NFS and MOUNT calls of one -kernel/-initrd boot of the node, to its boot report."""
    node = LocalNode(NODE, WORK, version, cmdline).start()
    capture = Capture(node.tap).start()
    try:
        timed_boot(node)
    finally:
        drops = capture.stop()
        node.stop()
    if drops:
        raise SystemExit("the capture lost %d frames; the count would be short" % drops)
    return count_calls(capture.frames, ports, client=NODES[NODE][1])


def nfs_calls(count):
    version, cmdline = node_script(NODE)
    args = dict(word.split("=", 1) for word in cmdline.split() if "=" in word)
    ports = (int(args.get("orion.nfsport", 2049)), int(args.get("orion.mountport", 20048)))
    with open(os.path.join(STORE, version, "manifest.json")) as handle:
        root = json.load(handle)["boot"]["root"]
    trees = [os.path.join(volume_dir(server), "images", version, "tree") for server in SERVERS]
    kinds = [("image", ""), ("image, no page cache", " orion.cache=none"),
             ("image, no sha256 check", " orion.verify=none"), ("unpacked tree", " orion.root=tree")]
    counts = {kind: [] for kind, _arg in kinds}
    try:
        for tree in trees:
            sh("rm", "-rf", tree)
            sh("unsquashfs", "-no-progress", "-quiet", "-d", tree, os.path.join(os.path.dirname(tree), root))
            # The export squashes root: the node's init reads as nobody, so
            # the tree is made readable to all (a classic NFS root is exported
            # without root squashing instead).
            sh("chmod", "-R", "o+rX", tree)
        for i in range(count):
            for kind, arg in kinds:
                calls = counted_boot(version, cmdline + arg, ports)
                counts[kind].append(calls)
                print("boot %d, %s: %d calls %s" % (i + 1, kind, sum(calls.values()), dict(calls.most_common())),
                      flush=True)
    finally:
        for tree in trees:
            sh("rm", "-rf", tree, check=False)
    print("\n6. NFS and MOUNT calls per boot from QEMU start to the boot report (median of %d)" % count)
    totals = {kind: statistics.median(sum(c.values()) for c in runs) for kind, runs in counts.items()}
    procedures = ("READ", "GETATTR", "LOOKUP", "ACCESS", "READLINK")
    print("  %-24s %6s %s %6s" % ("root", "calls", " ".join("%8s" % p for p in procedures), "other"))
    for kind, runs in counts.items():
        each = [statistics.median(c["NFS " + p] for c in runs) for p in procedures]
        other = statistics.median(sum(c.values()) - sum(c["NFS " + p] for p in procedures) for c in runs)
        print("  %-24s %6.0f %s %6.0f" % (kind, totals[kind], " ".join("%8.0f" % n for n in each), other))
    print("  ratio unpacked tree / image: %.1f; / image without the page cache: %.1f;"
          " / image without the check: %.1f (target >= 10)"
          % (totals["unpacked tree"] / totals["image"], totals["unpacked tree"] / totals["image, no page cache"],
             totals["unpacked tree"] / totals["image, no sha256 check"]))


PARTS = ("boots", "fetch", "storm", "failover", "nfs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="run only these parts")
    parser.add_argument("--append", default="",
                        help="failover only: boot with -kernel/-initrd and these kernel arguments added"
                             " (such as orion.timeo=2)")
    parser.add_argument("--cut", action="store_true",
                        help="failover: take the server's link down (no FIN, RST or ICMP: a dead machine)"
                             " instead of killing its container")
    parser.add_argument("--up", action="store_true", help="bring the lab up first (make lab)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.up:
        subprocess.run(["make", "--no-print-directory", "lab"], cwd=ROOT, check=True)
    # The lab's own instance of the node, which would answer to the same MAC.
    Node(NODE).stop()
    started = time.monotonic()
    if "boots" in args.only:
        boots(args.boots)
    if "fetch" in args.only:
        fetch_ratio()
    if "storm" in args.only:
        storm(args.clients)
    if "failover" in args.only:
        failover(args.kills, args.append, args.cut)
    if "nfs" in args.only:
        nfs_calls(args.boots)
    print("\nbench-boot took %.0f s" % (time.monotonic() - started))


if __name__ == "__main__":
    main()
