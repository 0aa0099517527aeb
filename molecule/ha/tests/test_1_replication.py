"""The image store: publish on the source, byte-identical verified copies on the replica,
and a pull killed midway that leaves the replica serving its previous complete set."""

import json
import re
import subprocess
import time

import pytest

from conftest import (PROBE, REPLICA, ROOT, SERVERS, SOURCE, STORE, VIP, converge, converge_cmd, converge_env,
                      publish, start_container)

BIG_KIB = 40 * 1024  # large enough that a throttled pull can be killed midway
THROTTLE = ["-e", "image_store_bwlimit=3000"]  # KiB/s: about 14 s for BIG_KIB


def digests(name, version):
    out = subprocess.run(["podman", "exec", name, "sh", "-c",
                          "cd %s/images/%s && sha256sum * && stat -c '%%a %%n' *" % (STORE, version)],
                         capture_output=True, text=True, check=True).stdout
    return out


def versions(name):
    out = subprocess.run(["podman", "exec", name, "ls", "-1", STORE + "/images"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def served_versions(address):
    """Versions a client sees over NFS (v3) from ``address``."""
    out = subprocess.run(["podman", "exec", PROBE, "nfs-ls", "nfs://%s%s/images/" % (address, STORE)],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


def http_status(address, path):
    return subprocess.run(["podman", "exec", PROBE, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           "http://%s/boot/images/%s" % (address, path)],
                          capture_output=True, text=True, check=False).stdout


def partial_bytes(name, version):
    res = subprocess.run(["podman", "exec", name, "sh", "-c",
                          "du -sk %s/.incoming/%s 2>/dev/null | cut -f1" % (STORE, version)],
                         capture_output=True, text=True, check=False)
    return int(res.stdout.strip() or 0)


def interrupted_pull(version, interrupt):
    """Start a throttled pull of ``version``, run ``interrupt`` once it is midway;
    return the finished run's exit code and output."""
    proc = subprocess.Popen(converge_cmd(*THROTTLE, playbook="images.yml"), cwd=ROOT, env=converge_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_partial(version)
        subprocess.run(interrupt, check=True, capture_output=True)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def wait_partial(version, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        size = partial_bytes(REPLICA, version)
        if 2048 < size < BIG_KIB - 2048:
            return size
        time.sleep(0.2)
    raise AssertionError("the pull of %s never got midway" % version)


def test_published_version_reaches_the_replica_byte_identical():
    publish("2026.11.0", 512)
    res = converge("--tags", "image_store")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "2026.11.0" in versions(REPLICA)
    assert digests(REPLICA, "2026.11.0") == digests(SOURCE, "2026.11.0")
    # Published files are read-only; the replica checked them against the manifest.
    manifest = json.loads(subprocess.run(["podman", "exec", REPLICA, "cat",
                                          STORE + "/images/2026.11.0/manifest.json"],
                                         capture_output=True, text=True, check=True).stdout)
    assert set(manifest["files"]) == {"root.img", "vmlinuz", "initramfs.img"}
    for address in list(SERVERS.values()) + [VIP]:
        assert http_status(address, "2026.11.0/manifest.json") == "200"


def test_second_run_pulls_nothing():
    res = converge(playbook="images.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    recap = [line for line in res.stdout.splitlines() if re.match(r"^orion-ha-srv[12]\s+: ok=", line)]
    assert len(recap) == 2 and all(" changed=0 " in line for line in recap), recap


def test_killed_rsync_leaves_the_old_set_and_the_next_run_completes():
    publish("2026.11.1", BIG_KIB)
    before = versions(REPLICA)
    returncode, out = interrupted_pull("2026.11.1", ["podman", "exec", REPLICA, "pkill", "-KILL", "-x", "rsync"])
    assert returncode != 0, "the run with its rsync killed should fail"
    assert "pulling version 2026.11.1" in out
    # The replica serves exactly what it had, over NFS and HTTP.
    assert versions(REPLICA) == before
    assert served_versions(SERVERS[REPLICA]) == before
    assert http_status(SERVERS[REPLICA], "2026.11.1/manifest.json") == "404"
    assert http_status(SERVERS[REPLICA], "2026.11.0/manifest.json") == "200"
    assert partial_bytes(REPLICA, "2026.11.1") > 0

    res = converge(playbook="images.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    assert versions(REPLICA) == sorted(before + ["2026.11.1"])
    assert digests(REPLICA, "2026.11.1") == digests(SOURCE, "2026.11.1")
    assert partial_bytes(REPLICA, "2026.11.1") == 0


def test_killed_replica_host_leaves_the_old_set_and_the_next_run_completes():
    publish("2026.11.2", BIG_KIB)
    before = versions(REPLICA)
    interrupted_pull("2026.11.2", ["podman", "kill", REPLICA])
    start_container(REPLICA)
    # Back up: the services start on their own and serve the previous set.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if served_versions(SERVERS[REPLICA]) == before:
                break
        except subprocess.CalledProcessError:
            pass
        time.sleep(1)
    assert served_versions(SERVERS[REPLICA]) == before
    assert versions(REPLICA) == before

    res = converge(playbook="images.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    assert versions(REPLICA) == sorted(before + ["2026.11.2"])
    assert digests(REPLICA, "2026.11.2") == digests(SOURCE, "2026.11.2")


def test_a_version_that_does_not_match_its_manifest_is_not_published():
    publish("2026.11.9", 64)
    # Same size, one byte different: only the sha256 can tell.
    subprocess.run(["podman", "exec", SOURCE, "sh", "-c",
                    "f=%s/images/2026.11.9/root.img; chmod u+w $f; "
                    "printf 'X' | dd of=$f bs=1 seek=100 conv=notrunc status=none; chmod 0444 $f" % STORE],
                   check=True)
    try:
        res = converge(playbook="images.yml")
        assert res.returncode != 0
        assert "version 2026.11.9 from" in res.stdout and "root.img has sha256" in res.stdout
        assert "2026.11.9" not in versions(REPLICA)
    finally:
        subprocess.run(["podman", "exec", SOURCE, "rm", "-rf", STORE + "/images/2026.11.9"], check=True)
    res = converge(playbook="images.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    # The rejected copy is discarded once the source no longer has the version.
    assert partial_bytes(REPLICA, "2026.11.9") == 0


@pytest.mark.parametrize("address", sorted(SERVERS.values()) + [VIP])
def test_every_address_serves_the_same_versions(address):
    # ganesha shows a local change after its attribute cache time (5 s).
    deadline = time.monotonic() + 30
    while served_versions(address) != versions(SOURCE) and time.monotonic() < deadline:
        time.sleep(1)
    assert served_versions(address) == versions(SOURCE)
