"""A QEMU guest PXE-boots from the boot servers and runs its own iPXE script.

The guest (TCG, SeaBIOS, the iPXE option ROM from Debian's ipxe-qemu) sits on
the scenario network through a tap device on the podman bridge. SeaBIOS's
text console is copied to the serial port (machine option graphics=off),
which QEMU writes to a file read here. With reboot-timeout=0 and -no-reboot,
QEMU ends by itself once the guest has no more boot devices.
"""

import re
import subprocess
import time

NODE_MAC = "52:54:00:0b:02:10"
BOOT_TIMEOUT = 240


def clean(text):
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def pxe_boot(tap, tmp_path):
    """Boot a guest with NODE_MAC from the network; return its console text."""
    serial = tmp_path / "serial.log"
    cmd = [
        "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none",
        "-machine", "graphics=off", "-no-reboot", "-boot", "n,reboot-timeout=0",
        "-serial", "file:%s" % serial,
        "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
        "-device", "virtio-net-pci,netdev=n0,mac=%s" % NODE_MAC,
    ]
    qemu = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = ""
    started = time.monotonic()
    try:
        while time.monotonic() - started < BOOT_TIMEOUT and qemu.poll() is None:
            time.sleep(2)
            text = clean(serial.read_text(errors="replace")) if serial.exists() else ""
            if "No bootable device" in text:
                break
    finally:
        qemu.kill()
        qemu.wait()
        text = clean(serial.read_text(errors="replace")) if serial.exists() else ""
    print("guest ran its node script and stopped after %.0f s" % (time.monotonic() - started))
    return text


def test_guest_pxe_boots_and_runs_its_node_script(tap, tmp_path):
    text = pxe_boot(tap, tmp_path)
    # iPXE got the script URL by DHCP (user class iPXE) and ran this node's script.
    assert "http://10.231.2." in text and "/boot/boot.ipxe" in text, text[-2000:]
    assert "OrionOS node qemu01 boots image 2026.11.0" in text, text[-2000:]
    # It tried the image from both servers (no image is published yet) and
    # stopped at its own failure path, not at the discovery script.
    assert "image 2026.11.0 from 10.231.2.2" in text and "image 2026.11.0 from 10.231.2.3" in text
    assert "OrionOS: node qemu01 could not boot any image from any boot server" in text
    assert "OrionOS discovery" not in text
