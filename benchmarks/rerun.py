"""Runs that have nothing to change, on the lab: playbooks/servers.yml on the
two lab servers, and a whole `make lab` (the build, the servers, the nodes).

    python3 benchmarks/rerun.py [--runs N] [--lab-args ARGS]

Run as root with the Python of the project's virtualenv, from the repository.
The lab is brought up first (`make lab`) when it is not up. servers.yml is
given the image version the lab's nodes boot (orion_lab_image, which
playbooks/lab.yml takes from its build). Then, N times each, one after the other: `ansible-playbook playbooks/servers.yml` against
the lab inventory, and `make lab`. Prints each run's wall time and its play
recap (every host must say changed=0, or the run is reported as changing
something), and for the last run of each the slowest tasks
(`ansible.posix.profile_tasks`). Targets (a no-op servers.yml in 60 s, a
second make lab in 2 minutes) are printed beside the figures, never asserted.
--lab-args passes LAB_ARGS to make lab, for example the build tests' area:
"-e @build/lab-check-vars.json".

The same servers.yml is also run with the podman_exec connection entering the
containers by `podman exec` (enter=podman) in turn with the default (nsenter
for the lab's privileged containers), and the ratio of their medians printed:
the cost of the connection, side by side in one run.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP_RE = re.compile(r"^([A-Za-z0-9._-]+) +: ok=\d+ +changed=(\d+) +unreachable=(\d+) +failed=(\d+)")


def env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="12")


def timed(cmd):
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if res.returncode:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), res.stdout[-4000:] + res.stderr[-2000:]))
    return seconds, res.stdout


def recap(stdout):
    """{host: changed} from the play recap's host lines."""
    hosts = {}
    for line in stdout.split("PLAY RECAP", 1)[-1].splitlines():
        match = RECAP_RE.match(line)
        if match:
            hosts[match.group(1)] = int(match.group(2))
    return hosts


def slowest(stdout):
    tail = stdout.split("TASKS RECAP", 1)[-1].splitlines()
    return "\n".join("    " + line.rstrip() for line in tail if re.search(r" -{3,} [0-9.]+s$", line.rstrip()))


def measure(runs, target, *commands):
    """Run each (label, cmd) of ``commands`` ``runs`` times, in turn; print and return their times."""
    times = {label: [] for label, _cmd in commands}
    last = {}
    for index in range(runs):
        for label, cmd in commands:
            seconds, out = timed(cmd)
            hosts = recap(out)
            changed = {h: c for h, c in hosts.items() if c}
            print("%s run %d: %.1f s, %d hosts, %s" % (label, index + 1, seconds, len(hosts),
                                                       "changed=0 on every host" if hosts and not changed
                                                       else "CHANGED %s" % (changed or "no recap")))
            times[label].append(seconds)
            last[label] = out
    for label, _cmd in commands:
        got = times[label]
        print("%s: min %.1f s, median %.1f s, max %.1f s (target %d s: median/target %.2f)"
              % (label, min(got), statistics.median(got), max(got), target, statistics.median(got) / target))
        print("%s, slowest tasks of the last run:\n%s" % (label, slowest(last[label])))
    return [times[label] for label, _cmd in commands]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lab-args", default="")
    args = parser.parse_args()
    make_lab = ["make", "--no-print-directory", "lab", "LAB_ARGS=%s" % args.lab_args]
    up = subprocess.run(["podman", "container", "exists", "orion-lab-srv1"], check=False).returncode == 0
    if not up:
        seconds, _out = timed(make_lab)
        print("make lab (bringing the lab up): %.1f s" % seconds)
    # servers.yml alone does not build: it is given the version the lab's nodes boot.
    table = json.loads(subprocess.run(["podman", "exec", "orion-lab-srv1", "cat", "/srv/orion/boot/nodes/resolution.json"],
                                      check=True, capture_output=True, text=True).stdout)
    version = table["nodes"]["node001"]["image"]
    servers = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
               os.path.join(ROOT, "inventories", "lab", "hosts.yml"), os.path.join(ROOT, "playbooks", "servers.yml"),
               "-e", "orion_lab_image=%s" % version]
    entered, execed = measure(args.runs, 60, ("servers.yml with nothing to change", servers),
                              ("servers.yml with nothing to change, by podman exec",
                               servers + ["-e", "ansible_podman_exec_enter=podman"]))
    print("servers.yml, podman exec / nsenter (medians): %.2f"
          % (statistics.median(execed) / statistics.median(entered)))
    measure(args.runs, 120, ("make lab with nothing to change", make_lab))


if __name__ == "__main__":
    main()
