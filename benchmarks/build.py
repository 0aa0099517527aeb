"""The build from source: 1 SBU on this machine and the minimal profile from
sources to a published image, with its SBU table.

    python3 benchmarks/build.py [--work DIR] [--sources DIR] [--keep]

Run with the Python of the project's virtualenv (ansible-playbook is taken
from beside it), as root. In a fresh work directory, one run after the other:

  1. the lfs profile's chapter 4 layout and binutils pass 1 alone:
     its time is 1 SBU on this machine, recorded for every profile built beside it;
  2. the minimal profile, cold, from the offline mirror to a published image.

Prints the wall time of each ansible-playbook run and the SBU table the build
writes (<area>/report/sbu.txt). Figures are printed, never asserted; the
script fails only when a build fails. The sources come from a local directory
filled from Debian's source packages (tests/rig/debian-sources.sh).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(work, sources, *extra):
    settings = {"lfs_sources_mirrors": [sources], "lfs_sources_build_dir": os.path.join(work, "build"),
                "lfs_sources_cache": os.path.join(work, "cache"), "image_publish_root": os.path.join(work, "store")}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
           "-i", os.path.join(ROOT, "tests", "build", "inventory.yml"), os.path.join(ROOT, "playbooks", "build.yml"),
           "-e", json.dumps(settings)] + list(extra)
    # profile_tasks adds the slowest tasks after the recap: where the time
    # outside the packages goes.
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="15")
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if res.returncode:
        sys.exit("build failed:\n" + res.stdout[-5000:])
    return seconds, res.stdout


def slowest(stdout):
    """The profile_tasks lines of its recap (name, a run of dashes, seconds)."""
    tail = stdout.split("TASKS RECAP", 1)[-1].splitlines()
    return "\n".join("    " + line.rstrip() for line in tail if re.search(r" -{3,} [0-9.]+s$", line.rstrip()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/var/tmp/orion-bench-build")
    parser.add_argument("--sources", default="/var/cache/orion/debian-sources")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    subprocess.run(["bash", os.path.join(ROOT, "tests", "rig", "debian-sources.sh"), args.sources], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.rmtree(args.work, ignore_errors=True)
    try:
        lfs = build(args.work, args.sources, "-e", "orion_build_profile=lfs", "-e", '{"orion_build_only": ["binutils-pass1"]}')[0]
        with open(os.path.join(args.work, "build", "sbu.json")) as handle:
            sbu = json.load(handle)["seconds"]
        print("lfs toolchain run (layout + binutils pass 1): %.0f s of ansible-playbook; 1 SBU = %.1f s" % (lfs, sbu))
        minimal, out = build(args.work, args.sources)
        print("minimal profile, cold, sources to published image: %.0f s of ansible-playbook (%.1f SBU, %.1f min)"
              % (minimal, minimal / sbu, minimal / 60))
        report = os.path.join(args.work, "build", "minimal", "report")
        with open(os.path.join(report, "sbu.json")) as handle:
            packages = json.load(handle)["total_seconds"]
        print("  of which the packages' own steps: %.0f s; the playbook around them: %.0f s" % (packages, minimal - packages))
        print("  slowest tasks:\n" + slowest(out))
        with open(os.path.join(report, "sbu.txt")) as handle:
            print(handle.read())
        again = build(args.work, args.sources)[0]
        print("minimal profile, second run (nothing to build): %.0f s" % again)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
