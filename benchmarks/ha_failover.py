"""VRRP takeover time and NFS read throughput of the redundant boot servers.

Runs against the Molecule scenario `ha` (two boot servers and a probe on
10.231.3.0/24; floating address 10.231.3.10). Brings the scenario up when its
containers are missing, publishes a 200 MB image on the source server and
replicates it, then measures:

1. VRRP takeover: the primary's container is killed N times (default 10);
   each time, the seconds from the kill until the backup holds the floating
   address (polled every 50 ms). The primary is started again and takes the
   address back before the next round. Prints min / median / max, first with
   the scenario's settings (multicast, advert_int 1 s), then after a converge
   with unicast peers and advert_int 0.2 s (VRRPv3), and the ratio of the
   medians. The scenario is converged back to its settings afterwards.
2. NFS read throughput of the 200 MB image file: nfs-cat from the probe over
   the floating address, nfs-cat on the server to its own address, and a
   plain local read (cat) of the same file on the same server, each three
   times, all in one run. Prints MB/s and the NFS/local ratios.

Usage: python3 benchmarks/ha_failover.py [--kills N] [--keep]   (or: make bench-ha)
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRIMARY, BACKUP, PROBE = "orion-ha-srv1", "orion-ha-srv2", "orion-ha-probe"
VIP = "10.231.3.10"
PRIMARY_ADDRESS = "10.231.3.2"
IMAGE = "/srv/orion/images/bench-200m/root.img"
SIZE_MB = 200


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, **kw)


def molecule(action):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "molecule"), action, "-s", "ha"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def holders():
    held = []
    for name in (PRIMARY, BACKUP):
        res = sh("podman", "exec", name, "ip", "-o", "-4", "addr", "show", check=False)
        if res.returncode == 0 and " %s/" % VIP in res.stdout:
            held.append(name)
    return held


def wait_for(name, timeout):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if holders() == [name]:
            return time.monotonic() - start
        time.sleep(0.05)
    raise RuntimeError("%s did not get %s within %d s" % (name, VIP, timeout))


def timed_read(container, command):
    """Seconds a reading command takes inside a container (timed there).

    The command writes the file to stdout; the byte count is checked, so a
    failed or short read can never pass for a fast one.
    """
    out = sh("podman", "exec", container, "bash", "-c",
             "set -o errexit -o pipefail; s=$(date +%%s.%%N); n=$(%s | wc -c); e=$(date +%%s.%%N); "
             "echo \"$n $s $e\"" % command).stdout.split()
    if int(out[-3]) != SIZE_MB * 1024 * 1024:
        raise RuntimeError("%s: read %s bytes instead of %d" % (command, out[-3], SIZE_MB * 1024 * 1024))
    return float(out[-1]) - float(out[-2])


def ensure_scenario():
    running = sh("podman", "ps", "--format", "{{.Names}}").stdout.split()
    if not all(n in running for n in (PRIMARY, BACKUP, PROBE)):
        print("bringing up the ha scenario (molecule create + converge) ...", flush=True)
        molecule("create")
        molecule("converge")
        return True
    return False


def publish_bench_image():
    if sh("podman", "exec", PRIMARY, "test", "-e", IMAGE, check=False).returncode == 0:
        return
    print("publishing a %d MB image on %s and replicating it ..." % (SIZE_MB, PRIMARY), flush=True)
    script = r"""
set -o errexit
stage=/srv/orion/.incoming/bench-200m
rm -rf "$stage"; mkdir -p "$stage"
head -c %dM /dev/urandom > "$stage/root.img"
cd "$stage"
python3 - <<'PY'
import hashlib, json, os
files = {}
for n in os.listdir("."):
    files[n] = {"size": os.path.getsize(n), "sha256": hashlib.sha256(open(n, "rb").read()).hexdigest()}
json.dump({"format": 1, "version": "bench-200m", "files": files}, open("manifest.json", "w"))
PY
chmod 0444 *
mv -T "$stage" /srv/orion/images/bench-200m
""" % SIZE_MB
    sh("podman", "exec", PRIMARY, "bash", "-c", script)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                    "-i", os.path.join(ROOT, "molecule", "ha", "inventory", "hosts.yml"),
                    os.path.join(ROOT, "playbooks", "images.yml")], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def converge(*extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                    "-i", os.path.join(ROOT, "molecule", "ha", "inventory", "hosts.yml"),
                    os.path.join(ROOT, "playbooks", "servers.yml"), *extra], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def bench_takeover(kills):
    times = []
    for i in range(kills):
        wait_for(PRIMARY, 120)
        start = time.monotonic()
        sh("podman", "kill", PRIMARY)
        wait_for(BACKUP, 30)
        took = time.monotonic() - start
        times.append(took)
        print("  kill %2d: backup held %s after %.2f s" % (i + 1, VIP, took), flush=True)
        sh("podman", "start", PRIMARY)
    wait_for(PRIMARY, 120)
    return times


def bench_nfs():
    rows = {"nfs from the probe via the floating address": [],
            "nfs on the server to its own address": [],
            "local read on the server (cat)": []}
    for _round in range(3):
        rows["nfs from the probe via the floating address"].append(
            timed_read(PROBE, "nfs-cat nfs://%s%s" % (VIP, IMAGE)))
        rows["nfs on the server to its own address"].append(
            timed_read(PRIMARY, "nfs-cat nfs://%s%s" % (PRIMARY_ADDRESS, IMAGE)))
        rows["local read on the server (cat)"].append(timed_read(PRIMARY, "cat %s" % IMAGE))
    return {name: SIZE_MB / statistics.median(values) for name, values in rows.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="leave the scenario running afterwards")
    args = parser.parse_args()
    created = ensure_scenario()
    try:
        publish_bench_image()
        medians = []
        for label, extra in (("multicast, advert_int 1 s", ()),
                             ("unicast peers, advert_int 0.2 s", ("-e", "vrrp_unicast=true",
                                                                  "-e", "vrrp_advert_int=0.2"))):
            if extra:
                converge(*extra)
            try:
                print("VRRP takeover over %d kills of the primary (%s):" % (args.kills, label), flush=True)
                times = bench_takeover(args.kills)
            finally:
                if extra:
                    converge()
            medians.append(statistics.median(times))
            print("takeover seconds (%s): min %.2f  median %.2f  max %.2f"
                  % (label, min(times), medians[-1], max(times)), flush=True)
        print("ratio of median takeover, advert_int 1 s / 0.2 s: %.2f" % (medians[0] / medians[1]))
        print("NFS read of a %d MB image file (median of 3):" % SIZE_MB)
        rates = bench_nfs()
        local = rates["local read on the server (cat)"]
        for name, rate in rates.items():
            print("  %-46s %8.1f MB/s  ratio to local read %.3f" % (name, rate, rate / local))
    finally:
        if created and not args.keep:
            molecule("destroy")


if __name__ == "__main__":
    main()
