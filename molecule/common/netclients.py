"""Network clients the Molecule verifiers share: a DHCP client with a chosen MAC."""

import uuid

LEASE_SCRIPT = """#!/bin/sh
# udhcpc hook: keep the lease details, configure nothing.
[ "$1" = bound ] && env > "$LEASE_FILE"
exit 0
"""


def install_lease_hook(host):
    """Put the udhcpc hook that records a lease on a testinfra host."""
    host.check_output("mkdir -p /tmp/orion-test")
    cmd = "cat > /tmp/orion-test/lease.sh <<'EOF'\n%sEOF\nchmod +x /tmp/orion-test/lease.sh" % LEASE_SCRIPT
    host.check_output(cmd)


class DhcpClient:
    """busybox udhcpc on a macvlan link of the probe with a chosen MAC."""

    def __init__(self, host):
        self.host = host

    def lease(self, mac, options=(), vendor=None, tries=4):
        link = "dc" + uuid.uuid4().hex[:8]
        out = "/tmp/orion-test/%s.env" % link
        extra = " ".join("-x %s" % opt for opt in options)
        if vendor:
            extra += " -V %s" % vendor
        try:
            self.host.check_output(
                "ip link add %s link eth0 address %s type macvlan mode bridge && ip link set %s up"
                % (link, mac, link))
            res = self.host.run(
                "LEASE_FILE=%s timeout 60 busybox udhcpc -i %s -f -q -n -t %d -T 2 "
                "-O bootfile -O hostname -s /tmp/orion-test/lease.sh %s"
                % (out, link, tries, extra))
            if res.rc != 0:
                return None
            env = {}
            for line in self.host.file(out).content_string.splitlines():
                if "=" in line:
                    key, value = line.split("=", 1)
                    env[key] = value
            return env
        finally:
            self.host.run("ip link del %s; rm -f %s" % (link, out))
