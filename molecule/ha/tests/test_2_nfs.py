"""NFS exports: what a client reads from each server and from the floating
address, and what it may not do."""

import hashlib
import json
import subprocess
import time

import pytest

from conftest import PROBE, SERVERS, SOURCE, STORE, VIP


def probe(*cmd, check=True):
    return subprocess.run(["podman", "exec", PROBE, *cmd], capture_output=True, check=check)


def manifest(version):
    out = subprocess.run(["podman", "exec", SOURCE, "cat", "%s/images/%s/manifest.json" % (STORE, version)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("version_opt", ["", "?version=4"], ids=["nfsv3", "nfsv4"])
@pytest.mark.parametrize("address", sorted(SERVERS.values()) + [VIP])
def test_image_file_reads_back_with_its_manifest_checksum(address, version_opt):
    want = manifest("2026.11.0")["files"]["root.img"]
    data = probe("nfs-cat", "nfs://%s%s/images/2026.11.0/root.img%s" % (address, STORE, version_opt)).stdout
    assert len(data) == want["size"]
    assert hashlib.sha256(data).hexdigest() == want["sha256"]


@pytest.mark.parametrize("version_opt", ["", "?version=4"], ids=["nfsv3", "nfsv4"])
def test_export_is_read_only(version_opt):
    probe("sh", "-c", "echo x > /tmp/orion-write-test")
    res = probe("nfs-cp", "/tmp/orion-write-test",
                "nfs://%s%s/images/written%s" % (VIP, STORE, version_opt), check=False)
    assert res.returncode != 0
    assert b"ROFS" in res.stdout + res.stderr or b"ACCES" in res.stdout + res.stderr


def test_root_is_squashed():
    """A root-only file cannot be read by a client claiming uid 0."""
    path = "%s/images/root-only-probe" % STORE
    for name in SERVERS:
        subprocess.run(["podman", "exec", name, "sh", "-c",
                        "echo secret > %s && chmod 0600 %s" % (path, path)], check=True)
    try:
        for address in SERVERS.values():
            # The file is visible to the client (after ganesha's cache time), so a refusal is the squash.
            deadline = time.monotonic() + 30
            while b"root-only-probe" not in probe("nfs-ls", "nfs://%s%s/images/" % (address, STORE)).stdout:
                assert time.monotonic() < deadline, "root-only-probe never showed over NFS on %s" % address
                time.sleep(1)
            res = probe("nfs-cat", "nfs://%s%s?uid=0&gid=0" % (address, path), check=False)
            assert res.returncode != 0 and b"secret" not in res.stdout
            # The same client reads a world-readable file of the export.
            assert probe("nfs-cat", "nfs://%s%s/images/2026.11.0/vmlinuz" % (address, STORE)).stdout
    finally:
        for name in SERVERS:
            subprocess.run(["podman", "exec", name, "rm", "-f", path], check=True)


def test_every_server_exports_the_same_identity():
    ids = set()
    for name in SERVERS:
        out = subprocess.run(["podman", "exec", name, "sh", "-c",
                              "grep -E 'Export_Id|Filesystem_id|Pseudo' /etc/ganesha/export.d/orion.conf"],
                             capture_output=True, text=True, check=True).stdout
        ids.add(out)
    assert len(ids) == 1


def test_staging_area_is_not_served():
    out = probe("nfs-ls", "nfs://%s%s/images/" % (VIP, STORE)).stdout.decode()
    assert ".incoming" not in out
    res = probe("nfs-ls", "nfs://%s%s/.incoming/" % (VIP, STORE), check=False)
    assert res.returncode != 0
