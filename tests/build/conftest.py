"""The build tests: the real playbooks/build.yml on this machine, with the
sources taken offline from a local directory filled from Debian's source
packages (tests/rig/debian-sources.sh)."""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "tests", "build", "inventory.yml")
PLAYBOOK = os.path.join(ROOT, "playbooks", "build.yml")
# The offline mirror: kept between runs (the tarballs do not change).
MIRROR = os.environ.get("ORION_TEST_SOURCES", "/var/cache/orion/debian-sources")
# Everything the tests build or publish, made anew by each run.
WORK = os.environ.get("ORION_TEST_BUILD", "/var/tmp/orion-test-build")
BUILD_DIR = os.path.join(WORK, "build")
AREA = os.path.join(BUILD_DIR, "minimal")
STORE = os.path.join(WORK, "store")
CACHE = os.path.join(WORK, "cache")


def playbook_args(*extra, mirror=MIRROR, build_dir=BUILD_DIR, store=STORE, cache=CACHE):
    settings = {
        "lfs_sources_mirrors": [mirror],
        "lfs_sources_build_dir": build_dir,
        "lfs_sources_cache": cache,
        "image_publish_root": store,
    }
    return [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, PLAYBOOK,
            "-e", json.dumps(settings)] + list(extra)


def env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                ANSIBLE_NOCOLOR="1")


def run_build(*extra, timeout=4800, **kw):
    return subprocess.run(playbook_args(*extra, **kw), cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def recap(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP of ansible-playbook."""
    counts = {}
    lines = output.split("PLAY RECAP")[-1].splitlines()[1:]
    for line in lines:
        # Only the host lines: a callback such as profile_tasks may print more after them.
        if not re.match(r"[\w.-]+ +: ok=", line):
            continue
        host, rest = line.split(":", 1)
        values = dict(item.split("=") for item in rest.split())
        counts[host.strip()] = {k: int(v) for k, v in values.items()}
    return counts


def stamp(name, area=AREA):
    with open(os.path.join(area, "stamps", name + ".json")) as handle:
        return json.load(handle)


@pytest.fixture(scope="session", autouse=True)
def clean_work():
    """Each run starts from nothing (but the offline mirror, kept outside WORK)."""
    import shutil
    shutil.rmtree(WORK, ignore_errors=True)


@pytest.fixture(scope="session")
def mirror():
    subprocess.run(["bash", os.path.join(ROOT, "tests", "rig", "debian-sources.sh"), MIRROR], check=True,
                   stdout=subprocess.DEVNULL)
    return MIRROR
