"""Central logs: a node's syslog lines land in its own file on the server that
holds the floating address; files rotate and the directory stays bounded."""

import subprocess
import time
import uuid

import pytest

from conftest import PROBE, SERVERS, VIP, vip_holders, wait_for_vip

LOG_DIR = "/var/log/orion/nodes"
SEND = r"""
import socket, sys
proto, host, line = sys.argv[1], sys.argv[2], sys.argv[3]
msg = ("<14>Nov 22 10:00:00 %s" % line).encode()
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(msg, (host, 514))
else:
    s = socket.create_connection((host, 514), timeout=5)
    s.sendall(msg + b"\n")
s.close()
"""


def send(proto, node, text, host=VIP):
    subprocess.run(["podman", "exec", PROBE, "python3", "-c", SEND, proto, host, "%s orion-test: %s" % (node, text)],
                   check=True)


def where_is(text):
    """Diagnostics: which server's node files hold a line, and who holds the address."""
    found = {}
    for name in SERVERS:
        res = subprocess.run(["podman", "exec", name, "grep", "-rlF", text, LOG_DIR],
                             capture_output=True, text=True, check=False)
        found[name] = res.stdout.split()
    return "found in %s; address held by %s" % (found, vip_holders())


def wait_line(server, node, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = subprocess.run(["podman", "exec", server, "grep", "-F", text, "%s/%s.log" % (LOG_DIR, node)],
                             capture_output=True, text=True, check=False)
        if res.returncode == 0:
            return res.stdout
        time.sleep(0.2)
    return None


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_line_lands_in_the_node_file_on_the_active_server(proto):
    wait_for_vip("orion-ha-srv1", timeout=60)
    active = "orion-ha-srv1"
    text = "hello-%s-%s" % (proto, uuid.uuid4().hex[:8])
    send(proto, "hanode01", text)
    assert wait_line(active, "hanode01", text), "no line in %s:%s/hanode01.log (%s)" % (
        active, LOG_DIR, where_is(text))
    # Only in the node's file, not in the server's own syslog.
    res = subprocess.run(["podman", "exec", active, "grep", "-rF", text, "/var/log/syslog", "/var/log/messages"],
                         capture_output=True, text=True, check=False)
    assert text not in res.stdout


def test_each_server_address_receives():
    for name, address in SERVERS.items():
        text = "direct-%s" % uuid.uuid4().hex[:8]
        send("udp", "hanode02", text, host=address)
        assert wait_line(name, "hanode02", text)


def test_host_names_cannot_leave_the_log_directory():
    text = "escape-%s" % uuid.uuid4().hex[:8]
    # RFC 5424 lets a sender name any host; rsyslog's secpath-replace defuses slashes.
    msg = "<14>1 2026-11-22T10:00:00Z ../../../tmp/evil orion-test - - - %s" % text
    subprocess.run(["podman", "exec", PROBE, "python3", "-c",
                    "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                    "s.sendto(sys.argv[1].encode(), (sys.argv[2], 514))", msg, VIP], check=True)
    active = vip_holders()[0]
    time.sleep(2)
    res = subprocess.run(["podman", "exec", active, "sh", "-c",
                          "grep -rlF %s /tmp /var/log 2>/dev/null" % text], capture_output=True, text=True, check=False)
    files = res.stdout.split()
    assert files, "the message was not logged at all"
    assert all(f.startswith(LOG_DIR + "/") for f in files), files


def test_rotation_and_size_bound():
    active = vip_holders()[0]

    def sh(cmd, check=True):
        return subprocess.run(["podman", "exec", active, "sh", "-c", cmd], capture_output=True, text=True, check=check)

    # A file beyond log_server_max_file_size (100k) rotates; the next line goes to a fresh file.
    sh("head -c 150000 /dev/zero | tr '\\0' 'x' >> %s/hanode01.log" % LOG_DIR)
    # Old rotated files beyond log_server_max_total_mb (1 MiB) are removed, oldest first.
    sh("head -c 700000 /dev/urandom > %s/old1.log.4.gz && touch -d '3 days ago' %s/old1.log.4.gz" % (LOG_DIR, LOG_DIR))
    sh("head -c 700000 /dev/urandom > %s/old2.log.4.gz && touch -d '2 days ago' %s/old2.log.4.gz" % (LOG_DIR, LOG_DIR))
    sh("systemctl start orion-log-rotate.service")
    listing = sh("ls %s" % LOG_DIR).stdout.split()
    assert "hanode01.log.1" in listing
    assert "old1.log.4.gz" not in listing
    assert int(sh("du -sk %s | cut -f1" % LOG_DIR).stdout) <= 1024
    text = "after-rotation-%s" % uuid.uuid4().hex[:8]
    send("udp", "hanode01", text)
    line = wait_line(active, "hanode01", text)
    assert line and "x" * 100 not in line
    assert int(sh("stat -c %%s %s/hanode01.log" % LOG_DIR).stdout) < 100000
