"""Automatic rollback in the lab: a node given a broken version boots it, fails, and is back on its last good
version with no operator action; the other node is untouched; the verdict is in the status, and an operator's
cleared mark offers the version again.

Broken versions are made from the version the lab booted, on the image source, published with the image module
and replicated as an operator would (images.yml), then pinned for the first node by the policy (policy.yml):
- ``panic``: its initramfs has no init that can run, so the kernel panics (``No working init found``); panic=10 on
  the boot service's command line reboots it, and the node's next request ends the attempt (superseded). Two such
  failures in a row mark the version bad. In the middle of this trial, once its first attempt is in the ledger,
  the holder of the floating address is killed (SIGKILL): the other server's service reads the same ledger from
  etcd and goes on counting where the dead one stopped.
- ``noroot``: its root image is zeros, so the initramfs cannot mount the root; it reports the failure itself
  (one explicit failed report marks the version bad) and reboots.
- ``service``: its root image (unpacked and packed again with erofs-utils) has a klogd that exits at once; the
  node reports the failed service, and as the boot was a trial (orion.trial=1) it reboots.
- ``hang``: its root image's boot report never runs, so the boot never ends; the watchdog the initramfs armed for
  the attempt's deadline (QEMU's i6300esb) resets the node, and it comes back. For this case the ledger's deadline
  is 60 s and one failure marks a version (boot_service_ledger through servers.yml, as an operator sets it).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import FIGURES, FIRST, INVENTORY, ROOT, SECOND, SERVERS, playbook, report, start_server
import test_5_boot_service
from test_5_boot_service import fetch, holder

SOURCE = sorted(SERVERS)[0]
STAGING = "/var/tmp/orion-broken"
STORE = "/srv/orion"


def adhoc(host, module, args, check=False):
    """Run one module of the collection on a lab host, as `ansible HOST -m MODULE -a JSON` does; its result."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", INVENTORY, host, "-m", module,
           "-a", json.dumps(args)] + (["--check"] if check else [])
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"][host]


def podman(*args, data=None):
    return subprocess.run(["podman", "exec", "-i", *args], input=data, capture_output=True, check=True, timeout=300)


def ledger(node):
    """The node's ledger in etcd, read on the first boot server that runs."""
    for server in sorted(SERVERS):
        try:
            return test_5_boot_service.ledger(node, server)
        except subprocess.CalledProcessError:
            continue
    raise AssertionError("no boot server could read the ledger of %s" % node)


def cpio_newc(files):
    """A cpio archive (newc, as the kernel unpacks an initramfs) of {name: (mode, bytes)}."""
    out = b""
    for ino, (name, (mode, data)) in enumerate(sorted(files.items()) + [("TRAILER!!!", (0, b""))], start=1):
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        out += header + raw + b"\0" * (-(len(header) + len(raw)) % 4) + data + b"\0" * (-len(data) % 4)
    return out + b"\0" * (-len(out) % 512)


# What the broken root images change: a service that exits at once, a boot report that never comes.
BREAK = {"service": ("etc/sv/klogd/run", b"#!/bin/sh\n# broken on purpose: klogd never starts\nexit 1\n"),
         "hang": ("etc/sv/orion-report/run", b"#!/bin/sh\n# broken on purpose: the boot never reports\n"
                  b"exec sleep 100000\n")}


def broken_root(good, name, kind):
    """The good version's root image, unpacked, with one file of BREAK changed, packed again."""
    work = tempfile.mkdtemp(prefix="orion-broken-")
    try:
        subprocess.run(["podman", "cp", "%s:%s/images/%s/%s" % (SOURCE, STORE, good, name), work + "/good"],
                       check=True, capture_output=True)
        squashfs = name.endswith(".squashfs")
        if squashfs:
            subprocess.run(["unsquashfs", "-q", "-d", work + "/tree", work + "/good"], check=True, capture_output=True)
        else:
            subprocess.run(["fsck.erofs", "--extract=%s/tree" % work, "--preserve", work + "/good"], check=True,
                           capture_output=True)
        path, content = BREAK[kind]
        with open(os.path.join(work, "tree", path), "wb") as handle:
            handle.write(content)
        if squashfs:
            # The compressor of the good image, which the node's kernel reads.
            info = subprocess.run(["unsquashfs", "-s", work + "/good"], capture_output=True, text=True, check=True)
            comp = re.search(r"^Compression (\w+)", info.stdout, re.M).group(1)
            subprocess.run(["mksquashfs", work + "/tree", work + "/broken", "-noappend", "-quiet", "-comp", comp],
                           check=True, capture_output=True)
        else:
            subprocess.run(["mkfs.erofs", "--quiet", work + "/broken", work + "/tree"], check=True,
                           capture_output=True)
        with open(work + "/broken", "rb") as handle:
            return handle.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish(good, kind):
    """Publish a broken copy of ``good`` on the image source, its manifest the good one's with the broken file's
    size and sha256 (kind ``next``: an unbroken copy); return its version."""
    version = "%s-%s" % (good, kind)
    stage = "%s/%s" % (STAGING, version)
    if subprocess.run(["podman", "exec", SOURCE, "test", "-d", "%s/images/%s" % (STORE, version)],
                      check=False).returncode == 0:
        return version  # published by an earlier run on this lab
    manifest = json.loads(podman(SOURCE, "cat", "%s/images/%s/manifest.json" % (STORE, good)).stdout)
    files = manifest["files"]
    podman(SOURCE, "sh", "-c", "rm -rf %s && mkdir -p %s && cd %s/images/%s && cp %s %s/"
           % (stage, stage, STORE, good, " ".join(sorted(files)), stage))
    boot = manifest.get("boot") or {}
    if kind == "panic":
        name = boot.get("initramfs", "initramfs.img")
        data = cpio_newc({"init": (0o100755, b"#!/nonexistent/sh\n")})
        podman(SOURCE, "sh", "-c", "cat > %s/%s" % (stage, name), data=data)
        files[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    elif kind in ("service", "hang"):
        name = boot["root"]
        data = broken_root(good, name, kind)
        podman(SOURCE, "sh", "-c", "cat > %s/%s" % (stage, name), data=data)
        files[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    elif kind == "noroot":
        name = boot["root"]
        size = files[name]["size"]
        podman(SOURCE, "sh", "-c", "head -c %d /dev/zero > %s/%s" % (size, stage, name))
        digest = hashlib.sha256()
        for offset in range(0, size, 1 << 20):
            digest.update(b"\0" * min(1 << 20, size - offset))
        files[name] = {"size": size, "sha256": digest.hexdigest()}
    manifest["version"] = version
    podman(SOURCE, "sh", "-c", "cat > %s/manifest.json" % stage, data=json.dumps(manifest, indent=2).encode())
    adhoc(SOURCE, "orionos.diskless.image", {"root": STORE, "version": version, "src": stage, "state": "published"})
    return version


def apply_policy(tmp_path, good, pinned=None, ledger_settings=None):
    """The lab's policy, with the first node pinned to ``pinned`` when given, applied as an operator does
    (policy.yml); with ``ledger_settings`` (a boot_service_ledger, or "default" for the role's), the boot service
    is configured again first (servers.yml --tags boot_service)."""
    rules = [{"name": "canary", "match": {"name": SECOND}, "channel": "canary"}]
    if pinned:
        rules.insert(0, {"name": "trial", "match": {"name": FIRST}, "image": pinned})
    extra = tmp_path / "policy.json"
    extra_vars = {"orion_lab_image": good, "orion_policy": {
        "channels": {"stable": good, "canary": good}, "rules": rules, "default": {"channel": "stable"}}}
    if isinstance(ledger_settings, dict):
        extra_vars["boot_service_ledger"] = ledger_settings
    extra.write_text(json.dumps(extra_vars))
    if ledger_settings:
        run_playbook("servers.yml", "--tags", "boot_service", "-e", "@%s" % extra)
    run_playbook("policy.yml", "-e", "@%s" % extra)


def run_playbook(name, *args):
    started = time.monotonic()
    out = playbook(name, *args)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    shown = " ".join(a for a in args if not a.startswith("@"))
    FIGURES.append("rollback: %s %s took %.0f s" % (name, shown, time.monotonic() - started))


def wait_for(what, check, timeout=900):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, "no %s within %d s" % (what, timeout)
        time.sleep(3)


@pytest.fixture(scope="module")
def broken(nodes, tmp_path_factory):
    good = nodes[FIRST].report["image"]
    versions = {kind: publish(good, kind) for kind in ("panic", "noroot", "service", "hang")}
    # Every boot server gets them, as the image store replicates.
    run_playbook("images.yml")
    yield good, versions, tmp_path_factory.mktemp("policy")
    # The lab's own policy and ledger settings again (the broken versions stay published until make lab-down).
    apply_policy(tmp_path_factory.mktemp("restore"), good, ledger_settings="default")


# The ledger's settings for the hang: a deadline (and so a watchdog) long enough for a boot under TCG and short
# enough for a test, and one failure enough to mark the version (the panic case counts two).
HANG_LEDGER = {"max_failures": 1, "deadline": 60, "group_deadlines": {}, "keep": 20}


@pytest.mark.parametrize("kind, failures, causes", [
    ("panic", 2, ("superseded",)), ("noroot", 1, ("report",)), ("service", 1, ("report",)),
    ("hang", 1, ("superseded", "deadline"))])
def test_a_broken_version_rolls_the_node_back_by_itself(nodes, broken, kind, failures, causes):
    good, versions, tmp_path = broken
    node, other = nodes[FIRST], nodes[SECOND]
    bad = versions[kind]
    before = ledger(FIRST)
    other_before = ledger(SECOND)
    apply_policy(tmp_path, good, pinned=bad, ledger_settings=HANG_LEDGER if kind == "hang" else None)
    code, body = fetch("/boot/nodes/%s.ipxe" % FIRST)
    assert code == 200 and "orion.image=%s" % bad in body, body
    started = time.monotonic()
    old_boot = node.report.get("boot_id")
    seen = len(before["attempts"])
    node.run("reboot", check=False, timeout=60)
    killed = None
    if kind == "panic":
        # The trial's first attempt is minted: kill the server that holds the floating address.
        first = wait_for("first attempt of %s on %s" % (FIRST, bad), lambda: next(
            (a for a in ledger(FIRST)["attempts"][seen:] if a["version"] == bad), None), timeout=300)
        killed = holder()
        subprocess.run(["podman", "kill", "-s", "KILL", killed], check=True, capture_output=True)
        FIGURES.append("rollback (panic): %s killed after the attempt %s... minted by %s"
                       % (killed, first["id"][:8], first["server"]))

    def back_on_good():
        got = report(FIRST)
        if got and got.get("event") == "boot" and got.get("boot_id") != old_boot and got.get("result") == "ok" \
                and got.get("image") == good and got.get("attempt"):
            record = ledger(FIRST)
            if record["attempts"][-1]["id"] == got["attempt"] and record["attempts"][-1]["state"] == "ok":
                return got, record
        return None

    try:
        got, record = wait_for("good boot of %s after %s" % (FIRST, bad), back_on_good)
    finally:
        if killed:
            start_server(killed)
            wait_for("etcd and the boot service on %s" % killed, lambda: subprocess.run(
                ["podman", "exec", killed, "systemctl", "is-active", "etcd", "orion-boot-service"],
                capture_output=True, text=True, check=False).stdout.split() == ["active", "active"], timeout=240)
    FIGURES.append("rollback (%s): %s back on %s %.0f s after the reboot into %s"
                   % (kind, FIRST, good, time.monotonic() - started, bad))
    node.report = got
    tried = [a for a in record["attempts"][len(before["attempts"]):] if a["version"] == bad]
    assert [a["state"] for a in tried] == ["failed"] * failures, tried
    assert all(a["reason"].split(":")[0] in causes for a in tried), tried
    if kind == "service":
        assert "klogd" in tried[0]["reason"], tried
    if killed:
        # The survivor counted on from the dead server's attempt, and rolled the node back itself.
        assert tried[-1]["server"] != killed and record["attempts"][-1]["server"] != killed, tried
    assert bad in record["marks"], record["marks"]
    assert record["good"] == good
    # The next script names the last good version, never the bad one, however often it is asked for.
    for unused in range(2):
        code, body = fetch("/boot/nodes/%s.ipxe" % FIRST)
        assert code == 200 and "orion.image=%s" % good in body and bad not in body, body
    # The other node is untouched.
    assert ledger(SECOND) == other_before
    # The verdict in the status.
    out = playbook("status.yml", "-e", "orion_status_dir=%s" % (tmp_path / kind))
    assert out.returncode == 0, out.stdout[-3000:]
    rows = {row["node"]: row for row in json.loads((tmp_path / kind / "nodes.json").read_text())}
    assert rows[FIRST]["target"] == bad and rows[FIRST]["last_good"] == good, rows[FIRST]
    assert "bad:%s" % bad in rows[FIRST]["verdict"] and "marked bad" in rows[FIRST]["why"], rows[FIRST]
    assert "marked bad" not in rows[SECOND]["why"], rows[SECOND]
    # An operator clears the mark (check mode first: it says what would change and changes nothing).
    checked = adhoc(SOURCE, "orionos.diskless.boot_ledger", {"node": [FIRST], "state": "cleared", "version": bad},
                    check=True)
    assert checked["changed"] and checked["changed_nodes"] == [FIRST]
    assert bad in ledger(FIRST)["marks"]
    cleared = adhoc(SOURCE, "orionos.diskless.boot_ledger", {"node": [FIRST], "state": "cleared", "version": bad})
    assert cleared["changed"] and cleared["ledgers"][FIRST]["next"] == bad, cleared
    again = adhoc(SOURCE, "orionos.diskless.boot_ledger", {"node": [FIRST], "state": "cleared", "version": bad})
    assert not again["changed"], again
    assert bad not in ledger(FIRST)["marks"]
    code, body = fetch("/boot/nodes/%s.ipxe" % FIRST)
    assert code == 200 and "orion.image=%s" % bad in body, body
