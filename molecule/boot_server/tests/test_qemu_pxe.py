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
UEFI_NODE_MAC = "52:54:00:0b:02:11"
OVMF = "/usr/share/ovmf/OVMF.fd"
BOOT_TIMEOUT = 300
# Lines after which a guest has nothing more to do on the network.
DONE = ("No bootable device", "could not boot any image from any boot server")


def clean(text):
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def pxe_boot(tap, tmp_path, firmware="bios"):
    """Boot a guest from the network; return its console text.

    bios: SeaBIOS with the iPXE option ROM of ipxe-qemu (already iPXE).
    uefi: OVMF with its own PXE client (the NIC's option ROM is left out), so
    the firmware itself asks DHCP and fetches ipxe.efi over TFTP.
    """
    serial = tmp_path / "serial.log"
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-no-reboot",
           "-serial", "file:%s" % serial,
           "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap]
    if firmware == "uefi":
        cmd += ["-m", "512", "-bios", OVMF, "-boot", "n",
                "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=" % UEFI_NODE_MAC]
    else:
        cmd += ["-m", "256", "-machine", "graphics=off", "-boot", "n,reboot-timeout=0",
                "-device", "virtio-net-pci,netdev=n0,mac=%s" % NODE_MAC]
    qemu = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = ""
    started = time.monotonic()
    try:
        while time.monotonic() - started < BOOT_TIMEOUT and qemu.poll() is None:
            time.sleep(2)
            text = clean(serial.read_text(errors="replace")) if serial.exists() else ""
            if any(line in text for line in DONE):
                time.sleep(2)
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


def test_uefi_guest_chainloads_ipxe_efi_and_runs_its_node_script(tap, tmp_path, servers):
    for host in servers.values():
        host.check_output("truncate -s 0 /var/log/orion-dnsmasq.log")
    text = pxe_boot(tap, tmp_path, firmware="uefi")
    # The firmware's own PXE client fetched ipxe.efi by TFTP ...
    logs = "".join(host.file("/var/log/orion-dnsmasq.log").content_string for host in servers.values())
    assert "sent /srv/orion/tftp/ipxe.efi to 10.231.2.111" in logs, logs[-3000:]
    # ... which then asked DHCP again as iPXE and ran this node's script.
    assert "OrionOS node qemu-uefi boots image 2026.11.0" in text, text[-2500:]
    assert "OrionOS: node qemu-uefi could not boot any image from any boot server" in text
