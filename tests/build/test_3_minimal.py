"""The minimal profile from sources to a published image, for real: killed
midway and resumed, published and verified, unchanged on a second run, booted
in QEMU, reproducible, and a dropped kernel option stops it before the kernel
is compiled."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import AREA, STORE, env, playbook_args, recap, run_build, stamp, ROOT

IMAGE_DIR = os.path.join(AREA, "out", "image")


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def playbook_workers(argv):
    """PIDs of the processes running the command line ``argv`` (after the interpreter its script names)
    other than this one: ansible-playbook's workers detach into sessions of their own (setsid), so killing
    its process group leaves them."""
    found = []
    want = "\0".join(argv).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    line = handle.read().rstrip(b"\0")
                if line == want or line.endswith(b"\0" + want):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def kill_build(proc):
    """Kill ansible-playbook, its workers and the build it runs (the async job holding the area's lock)."""
    with open(os.path.join(AREA, ".lock")) as handle:
        pid = int(handle.read().strip())
    os.killpg(proc.pid, signal.SIGKILL)
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    for worker in playbook_workers(proc.args):
        try:
            os.kill(worker, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()
    deadline = time.monotonic() + 30
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def built(mirror):
    """A cold build, killed while busybox builds, then run again to the end."""
    shutil.rmtree(AREA, ignore_errors=True)
    shutil.rmtree(STORE, ignore_errors=True)
    started = time.monotonic()
    proc = subprocess.Popen(playbook_args(), cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 1800
    busybox_log = os.path.join(AREA, "logs", "busybox.log")
    while not (os.path.exists(os.path.join(AREA, "stamps", "linux-headers.json")) and os.path.exists(busybox_log)
               and os.path.getsize(busybox_log) > 2000):
        assert proc.poll() is None, "the build ended before busybox was building"
        assert time.monotonic() < deadline
        time.sleep(0.5)
    kill_build(proc)
    killed = {"musl": stamp("musl"), "linux-headers": stamp("linux-headers"),
              "busybox_stamped": os.path.exists(os.path.join(AREA, "stamps", "busybox.json"))}
    res = run_build()
    print("\nminimal profile: %.0f s from sources to a published image (killed once, resumed)"
          % (time.monotonic() - started))
    assert res.returncode == 0, res.stdout[-5000:]
    return {"killed": killed, "resumed": res}


def test_a_killed_build_resumes_at_the_package_that_was_running(built):
    killed = built["killed"]
    assert killed["busybox_stamped"] is False
    # The packages finished before the kill were not built again.
    assert stamp("musl") == killed["musl"]
    assert stamp("linux-headers") == killed["linux-headers"]
    out = built["resumed"].stdout
    assert "busybox-1.35.0 built in" in out
    assert "musl-1.2.3 built in" not in out
    for name in ("musl", "linux-headers", "busybox", "dropbear", "rootfs", "linux-config", "linux", "initramfs", "image"):
        assert stamp(name)["name"] == name


def test_the_image_is_published_with_a_manifest_that_verifies(built):
    manifest = json.load(open(os.path.join(IMAGE_DIR, "manifest.json")))
    version = manifest["version"]
    assert version == "minimal-" + stamp("image")["key"][:12]
    assert manifest["boot"] == {"kernel": "vmlinuz", "initramfs": "initramfs.img", "root": "root.squashfs"}
    assert manifest["packages"]["busybox"] == "1.35.0" and manifest["packages"]["linux"] == "6.1.8"
    assert manifest["build"]["host"] == "localhost"
    # What a node's configuration may name, read from the root it was made of.
    system = manifest["system"]
    assert system["users"]["root"] == 0 and system["groups"]["root"] == 0 and "/bin/sh" in system["shells"]
    assert {"dropbear", "crond", "syslogd", "orion-report"} <= set(system["services"])
    published = os.path.join(STORE, "images", version)
    for name, entry in manifest["files"].items():
        assert sha256(os.path.join(published, name)) == entry["sha256"]
    res = subprocess.run([os.path.join(os.path.dirname(__import__("sys").executable), "ansible"), "localhost",
                          "-i", os.path.join(ROOT, "tests", "build", "inventory.yml"),
                          "-m", "orionos.diskless.image", "-a", "root=%s state=verified" % STORE],
                         cwd=ROOT, env=env(), capture_output=True, text=True, check=False)
    assert res.returncode == 0 and version in res.stdout, res.stdout[-2000:]


def test_a_second_run_changes_nothing(built):
    res = run_build()
    assert res.returncode == 0, res.stdout[-3000:]
    assert recap(res.stdout)["localhost"]["changed"] == 0, res.stdout[-5000:]


def boot(root_file):
    """TCG, -kernel/-initrd; the root image as a read-only virtio disk; QEMU's
    user-mode network answers DHCP inside QEMU. Returns the marker line and the console.
    The time limit is generous: in make test this lane runs at a lower priority
    beside the Molecule scenarios (tests/rig/run-tests.sh)."""
    started = time.monotonic()
    res = subprocess.run(
        ["timeout", "1800", "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
         "-kernel", os.path.join(IMAGE_DIR, "vmlinuz"), "-initrd", os.path.join(IMAGE_DIR, "initramfs.img"),
         "-append", "console=ttyS0 panic=-1 orion.test=poweroff orion.testroot=/dev/vda",
         "-drive", "file=%s,if=virtio,format=raw,readonly=on" % os.path.join(IMAGE_DIR, root_file),
         "-nic", "user,model=virtio-net-pci"],
        capture_output=True, text=True, check=False)
    console = res.stdout
    print("\nQEMU boot to the marker (%s): %.1f s" % (root_file, time.monotonic() - started))
    marker = [line for line in console.splitlines() if "ORIONOS-INITRAMFS-OK" in line]
    assert marker, console[-4000:]
    assert "kernel=6.1.8" in marker[0]
    assert "net=eth0=10.0.2.15/24" in marker[0], marker[0]
    assert "root=hostname=orion-node init=yes dropbear=v2022.83" in marker[0], marker[0]
    return marker[0], console


def test_the_kernel_and_initramfs_boot_in_qemu_with_network_and_the_root_image(built):
    boot("root.squashfs")


@pytest.mark.parametrize("arg, message", [
    ("orion.cache=disk", "orion.cache=disk is not page or none"),
    ("orion.readahead=1M", "orion.readahead=1M is not a number of KB from 1 to 99999"),
])
def test_the_init_names_a_bad_kernel_argument_and_fails_the_boot(built, arg, message):
    # A node's boot with one bad argument: the init stops before any mount
    # (no server answers here: the report goes to a closed port).
    res = subprocess.run(
        ["timeout", "900", "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
         "-kernel", os.path.join(IMAGE_DIR, "vmlinuz"), "-initrd", os.path.join(IMAGE_DIR, "initramfs.img"),
         "-append", "console=ttyS0 panic=-1 orion.node=n1 orion.image=v1 orion.paths=10.0.2.2 orion.http=9 "
                    "orion.onfail=poweroff " + arg,
         "-nic", "user,model=virtio-net-pci"],
        capture_output=True, text=True, check=False)
    assert "ORIONOS-BOOT-FAILED node=n1 image=v1 reason=%s" % message in res.stdout, res.stdout[-4000:]


def test_building_the_image_twice_from_the_same_root_at_another_time_gives_the_same_bytes(built):
    before = {name: sha256(os.path.join(IMAGE_DIR, name)) for name in ("root.squashfs", "initramfs.img")}
    # Its inputs as if built again at another time: only their times change.
    later = time.time() + 3600
    inputs = [os.path.join(AREA, "rootfs", name)
              for name in ("bin/busybox", "sbin/orion-dm", "usr/lib/orion/lib.sh", "usr/lib/orion/config.sh")]
    for top, _dirs, files in os.walk(os.path.join(AREA, "files", "initramfs")):
        inputs += [os.path.join(top, name) for name in files]
    for path in inputs:
        os.utime(path, (later, later))
    for name in ("image", "initramfs"):
        os.unlink(os.path.join(AREA, "stamps", name + ".json"))
    res = run_build()
    assert res.returncode == 0, res.stdout[-3000:]
    assert "image-2 built in" in res.stdout and "initramfs-2 built in" in res.stdout
    after = {name: sha256(os.path.join(IMAGE_DIR, name)) for name in ("root.squashfs", "initramfs.img")}
    assert after == before
    # Same key, same version, same files: the published image is unchanged.
    version = json.load(open(os.path.join(IMAGE_DIR, "manifest.json")))["version"]
    published = os.path.join(STORE, "images", version)
    assert sha256(os.path.join(published, "root.squashfs")) == before["root.squashfs"]


def name_based_uuid(version):
    """The UUID the image recipe derives from a version: the sha256 of
    "orionos image <version>" shaped as a name-based (version 5) UUID."""
    digest = hashlib.sha256(("orionos image " + version).encode()).hexdigest()
    variant = "%x" % ((int(digest[16], 16) & 3) | 8)
    return "%s-%s-5%s-%s%s-%s" % (digest[:8], digest[8:12], digest[13:16], variant, digest[17:20], digest[20:32])


def test_an_erofs_image_carries_the_uuid_of_its_version_rebuilds_identically_and_boots(built):
    erofs = json.dumps({"image_format": "erofs"})
    res = run_build("-e", erofs)
    assert res.returncode == 0, res.stdout[-3000:]
    manifest = json.load(open(os.path.join(IMAGE_DIR, "manifest.json")))
    version = manifest["version"]
    # Only the image was built again (the format is an input of the image alone).
    assert "image-2 built in" in res.stdout and "initramfs-2 built in" not in res.stdout
    assert version == "minimal-" + stamp("image")["key"][:12]
    assert manifest["boot"]["root"] == "root.erofs"
    assert manifest["root"] == {"format": "erofs", "compression": "lz4hc", "uuid": name_based_uuid(version)}
    blkid = subprocess.run(["blkid", "-o", "export", os.path.join(IMAGE_DIR, "root.erofs")],
                           capture_output=True, text=True, check=True).stdout
    assert "TYPE=erofs" in blkid and "UUID=%s" % name_based_uuid(version) in blkid, blkid
    first = sha256(os.path.join(IMAGE_DIR, "root.erofs"))
    assert sha256(os.path.join(STORE, "images", version, "root.erofs")) == first
    os.unlink(os.path.join(AREA, "stamps", "image.json"))
    res = run_build("-e", erofs)
    assert res.returncode == 0 and "image-2 built in" in res.stdout, res.stdout[-3000:]
    assert sha256(os.path.join(IMAGE_DIR, "root.erofs")) == first
    console = boot("root.erofs")[1]
    assert "erofs: (device vda): mounted" in console, console[-4000:]


def test_the_build_writes_its_sbu_report(built):
    table = json.load(open(os.path.join(AREA, "report", "sbu.json")))
    rows = {row["name"]: row for row in table["packages"]}
    assert rows["busybox"]["state"] == "built" and rows["busybox"]["seconds"] > 0
    assert table["total_seconds"] >= sum(row["seconds"] for row in table["packages"]) - 0.5
    text = open(os.path.join(AREA, "report", "sbu.txt")).read()
    assert "busybox" in text and "total" in text
    # CPU time beside the wall clock, for every package built.
    assert rows["busybox"]["cpu_seconds"] > 0 and "CPU" in text
    print("\n" + text)


def test_the_kernel_is_built_with_the_collections_patches(built):
    log = open(os.path.join(AREA, "logs", "linux.log")).read()
    assert "applying 01-sunrpc-soft-delay.patch" in log, log[:3000]
    assert "patching file net/sunrpc/clnt.c" in log


def test_an_unknown_kernel_patch_stops_before_any_build(built):
    res = run_build("-e", json.dumps({"kernel_patches": ["sunrpc-soft-delay", "no-such-patch"]}))
    assert res.returncode != 0
    assert "kernel_patches: no-such-patch has no file files/patches/no-such-patch.patch" in res.stdout, \
        res.stdout[-3000:]
    assert "built in" not in res.stdout


def test_a_kernel_option_that_does_not_exist_stops_before_the_kernel_is_compiled(built):
    linux = stamp("linux")
    res = run_build("-e", json.dumps({"kernel_extra_fragments": {"bogus": "CONFIG_ORION_NO_SUCH_OPTION=y"}}))
    assert res.returncode != 0
    assert ("fragment 51-bogus.config: CONFIG_ORION_NO_SUCH_OPTION=y was dropped; the final configuration has it unset"
            in res.stdout), res.stdout[-3000:]
    # The kernel itself was not built again.
    assert stamp("linux") == linux
    assert "linux-6.1.8 built in" not in res.stdout
