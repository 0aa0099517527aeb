"""The kernel implementation of nfs_server (nfs-kernel-server).

This host's kernel has no nfsd, so the role runs against a QEMU guest (TCG)
booted from Debian's own kernel, on the scenario network through a tap on its
bridge (tests/rig/build-nfsd-guest.sh makes the guest; its disk is used with
-snapshot, so every run starts from the same clean system). Ansible reaches it
over SSH; the probe reads the export with libnfs as the ganesha servers' are
read in test_2_nfs.py: the same semantics from either implementation.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import PROBE, PUBLISH, ROOT, STORE, converge_env

sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.orionos.diskless.plugins.module_utils.nfs import export_identity  # noqa: E402  pylint: disable=wrong-import-position

GUEST_DIR = os.environ.get("ORION_NFSD_GUEST", "/var/tmp/orion-nfsd-guest")
GUEST_IP = "10.231.3.60"
GUEST_MAC = "52:54:00:0c:03:60"
TAP = "orhatap0"
NETWORK = "orion-ha"
EXPORT = STORE + "/images"
VERSION = "2026.11.7"
PLAY = os.path.join(ROOT, "molecule", "ha", "kernel-nfs.yml")


def ssh_cmd(*cmd):
    return ["ssh", "-i", os.path.join(GUEST_DIR, "id_ed25519"),
            "-o", "UserKnownHostsFile=" + os.path.join(GUEST_DIR, "known_hosts"),
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "root@" + GUEST_IP, *cmd]


def guest(script, check=True, **kwargs):
    """Run a shell script on the guest."""
    return subprocess.run(ssh_cmd(script), capture_output=True, text=True, check=check, timeout=300, **kwargs)


def probe(*cmd, check=True):
    return subprocess.run(["podman", "exec", PROBE, *cmd], capture_output=True, check=check)


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    """The guest, booted and answering SSH; powered off afterwards."""
    work = tmp_path_factory.mktemp("nfsd-guest")
    build = subprocess.run(["bash", os.path.join(ROOT, "tests", "rig", "build-nfsd-guest.sh"), GUEST_DIR],
                           capture_output=True, text=True, check=False, timeout=1800)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    bridge = json.loads(subprocess.check_output(["podman", "network", "inspect", NETWORK]))[0]["network_interface"]
    subprocess.run(["ip", "link", "del", TAP], capture_output=True, check=False)
    subprocess.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=True)
    subprocess.run(["ip", "link", "set", TAP, "master", bridge, "up"], check=True)
    console = work / "console.log"
    append = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 "
              "ip=%s::10.231.3.1:255.255.255.0:orion-nfsd:eth0:off" % GUEST_IP)
    with open(console, "wb") as out:
        qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
             "-kernel", os.path.join(GUEST_DIR, "vmlinuz"), "-initrd", os.path.join(GUEST_DIR, "initrd.img"),
             "-append", append, "-snapshot",
             "-drive", "file=%s,if=virtio,format=raw" % os.path.join(GUEST_DIR, "root.ext4"),
             "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % TAP,
             "-device", "virtio-net-pci,netdev=n0,mac=%s" % GUEST_MAC],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        while subprocess.run(ssh_cmd("true"), capture_output=True, check=False).returncode != 0:
            assert qemu.poll() is None, console.read_text(errors="replace")[-4000:]
            assert time.monotonic() - started < 600, console.read_text(errors="replace")[-4000:]
            time.sleep(3)
        print("\nnfsd guest: SSH answers %.0f s after QEMU started" % (time.monotonic() - started))
        yield {"console": console, "work": work}
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=30)
        except subprocess.TimeoutExpired:
            qemu.kill()
        subprocess.run(["ip", "link", "del", TAP], capture_output=True, check=False)


def run_play(work, *extra):
    inventory = work / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"children": {"orion_nfsd_guests": {"hosts": {"orion-nfsd": {
        "ansible_host": GUEST_IP, "ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": os.path.join(GUEST_DIR, "id_ed25519"),
        "ansible_ssh_common_args": "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes"
                                   % os.path.join(GUEST_DIR, "known_hosts"),
        "orion_test_clients": ["10.231.3.0/24"],
        "orion_test_node_ips": ["10.231.3.101", "10.231.3.50"]}}}}}}))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory), PLAY, *extra]
    return subprocess.run(cmd, cwd=ROOT, env=converge_env(), capture_output=True, text=True, check=False, timeout=1200)


def recap(stdout):
    found = re.search(r"orion-nfsd\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert found, stdout[-3000:]
    return {"changed": int(found.group(1)), "unreachable": int(found.group(2)), "failed": int(found.group(3))}


@pytest.fixture(scope="module")
def converged(booted):
    """A published version in the guest's store, the role applied twice."""
    guest("mkdir -p %s" % EXPORT)
    subprocess.run(ssh_cmd("bash", "-s", VERSION, "256"), input=PUBLISH, text=True, check=True,
                   capture_output=True, timeout=300)
    first = run_play(booted["work"])
    second = run_play(booted["work"])
    return first, second


def test_the_role_exports_the_store_and_a_second_run_changes_nothing(converged):
    first, second = converged
    assert first.returncode == 0 and recap(first.stdout)["changed"] > 0, first.stdout[-4000:]
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout) == {"changed": 0, "unreachable": 0, "failed": 0}, second.stdout[-4000:]


def manifest():
    return json.loads(guest("cat %s/%s/manifest.json" % (EXPORT, VERSION)).stdout)


@pytest.mark.parametrize("version_opt", ["", "?version=4"], ids=["nfsv3", "nfsv4"])
def test_image_file_reads_back_with_its_manifest_checksum(converged, version_opt):
    want = manifest()["files"]["root.img"]
    data = probe("nfs-cat", "nfs://%s%s/%s/root.img%s" % (GUEST_IP, EXPORT, VERSION, version_opt)).stdout
    assert len(data) == want["size"]
    assert hashlib.sha256(data).hexdigest() == want["sha256"]


@pytest.mark.parametrize("version_opt", ["", "?version=4"], ids=["nfsv3", "nfsv4"])
def test_export_is_read_only(converged, version_opt):
    probe("sh", "-c", "echo x > /tmp/orion-write-test")
    res = probe("nfs-cp", "/tmp/orion-write-test", "nfs://%s%s/written%s" % (GUEST_IP, EXPORT, version_opt),
                check=False)
    assert res.returncode != 0
    assert b"ROFS" in res.stdout + res.stderr or b"ACCES" in res.stdout + res.stderr
    assert guest("test ! -e %s/written" % EXPORT, check=False).returncode == 0


def test_root_is_squashed(converged):
    path = EXPORT + "/root-only-probe"
    guest("echo secret > %s && chmod 0600 %s" % (path, path))
    try:
        res = probe("nfs-cat", "nfs://%s%s?uid=0&gid=0" % (GUEST_IP, path), check=False)
        assert res.returncode != 0 and b"secret" not in res.stdout
        assert probe("nfs-cat", "nfs://%s%s/%s/vmlinuz?uid=0&gid=0" % (GUEST_IP, EXPORT, VERSION)).stdout
    finally:
        guest("rm -f %s" % path)


def test_export_identity_is_the_one_every_server_derives_from_the_path(converged):
    live = guest("exportfs -v").stdout
    assert "fsid=%s" % export_identity(EXPORT)["fsid"] in live, live
    assert ",ro," in live and "root_squash" in live and "sec=sys" in live and "10.231.3.0/24" in live, live


def test_the_services_listen_on_their_fixed_ports(converged):
    ports = {}
    for line in guest("rpcinfo -p").stdout.splitlines()[1:]:
        proto, port, name = line.split()[2:5]
        if proto == "tcp":
            ports.setdefault(name, set()).add(int(port))
    assert ports["nfs"] == {2049} and ports["mountd"] == {20048} and ports["nlockmgr"] == {32803}, ports
    assert guest("cat /proc/fs/nfsd/versions").stdout.split() == ["+3", "+4", "+4.1", "+4.2"]


def test_a_broken_exports_file_is_refused_and_the_live_exports_stay(converged):
    before = guest("exportfs -v; cat /var/lib/nfs/etab").stdout
    guest("printf '%s 10.231.3.0/24(ro,fsid=1,no_such_option)\\n' > /tmp/broken.exports" % EXPORT)
    res = guest("/usr/local/libexec/orion/exports-check /tmp/broken.exports", check=False)
    assert res.returncode != 0 and 'unknown keyword "no_such_option"' in res.stderr, res.stderr
    assert guest("exportfs -v; cat /var/lib/nfs/etab").stdout == before
    assert probe("nfs-cat", "nfs://%s%s/%s/vmlinuz" % (GUEST_IP, EXPORT, VERSION)).stdout


def test_an_export_that_requires_kerberos_refuses_an_auth_sys_client(booted, converged):
    """Where the site has Kerberos, nfs_server_sec: [krb5...] makes it required:
    the probe's AUTH_SYS client no longer reads anything. (No KDC runs here, so
    a Kerberos client reading the export is not part of the test.) Runs last:
    the guest keeps this setting."""
    res = run_play(booted["work"], "-e", '{"nfs_server_sec": ["krb5p", "krb5i", "krb5"]}')
    assert res.returncode == 0, res.stdout[-4000:]
    live = guest("exportfs -v").stdout
    assert "sec=krb5p:krb5i:krb5," in live and "sec=sys" not in live, live
    for version_opt in ("", "?version=4"):
        res = probe("nfs-cat", "nfs://%s%s/%s/vmlinuz%s" % (GUEST_IP, EXPORT, VERSION, version_opt), check=False)
        assert res.returncode != 0 and not res.stdout, (version_opt, res.stdout[:200], res.stderr[-500:])
