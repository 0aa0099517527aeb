"""TFTP and HTTP as boot clients use them, from the probe host."""

import pytest

from conftest import SERVERS

IPXE_FILES = {"undionly.kpxe": "undionly.kpxe", "ipxe.efi": "ipxe.efi"}


def package_sha256(server, name):
    return server.check_output("sha256sum /usr/lib/ipxe/%s" % name).split()[0]


@pytest.mark.parametrize("server_name", sorted(SERVERS))
@pytest.mark.parametrize("name", sorted(IPXE_FILES))
def test_tftp_serves_ipxe_binaries_from_the_package(probe, servers, server_name, name):
    addr = SERVERS[server_name]
    expected = package_sha256(servers[server_name], IPXE_FILES[name])
    got = probe.check_output(
        "curl -sf --tftp-blksize 1468 tftp://%s/%s | sha256sum" % (addr, name)).split()[0]
    assert got == expected
    # tftp-hpa with the default 512-byte blocks gives the same bytes.
    probe.check_output("cd /tmp/orion-test && rm -f %s && tftp -m binary %s -c get %s" % (name, addr, name))
    assert probe.check_output("sha256sum /tmp/orion-test/%s" % name).split()[0] == expected


def test_tftp_is_read_only_and_confined(probe):
    addr = SERVERS["orion-bs-srv1"]
    probe.check_output("echo x > /tmp/orion-test/upload.txt")
    put = probe.run("cd /tmp/orion-test && tftp -m binary %s -c put upload.txt" % addr)
    assert "Error" in put.stdout + put.stderr or put.rc != 0
    for path in ("../../../etc/passwd", "/etc/passwd", "../images"):
        assert probe.run("curl -sf tftp://%s/%s -o /dev/null" % (addr, path)).rc != 0, path


def test_ten_parallel_tftp_transfers_complete(probe, servers):
    addr = SERVERS["orion-bs-srv2"]
    expected = package_sha256(servers["orion-bs-srv2"], "ipxe.efi")
    probe.check_output(
        "cd /tmp/orion-test && rm -f par.* && "
        "for i in $(seq 1 10); do curl -sf tftp://%s/ipxe.efi -o par.$i & done; wait" % addr)
    sums = probe.check_output("cd /tmp/orion-test && sha256sum par.*").splitlines()
    assert len(sums) == 10
    assert {line.split()[0] for line in sums} == {expected}


def http_get(probe, url):
    res = probe.run("curl -s -o /tmp/orion-test/body -w '%%{http_code}' %s" % url)
    return res.stdout.strip(), probe.file("/tmp/orion-test/body").content_string


@pytest.mark.parametrize("path", ["nodes/52-54-00-0b-02-02.ipxe", "nodes/52-54-00-0b-02-03.ipxe",
                                  "nodes/probe-multi.ipxe"])
def test_node_script_names_its_kernel_and_initrd(probe, path):
    for addr in SERVERS.values():
        code, body = http_get(probe, "http://%s/boot/%s" % (addr, path))
        assert code == "200"
        assert body.startswith("#!ipxe")
        lines = body.splitlines()
        kernels = [line for line in lines if line.startswith("kernel ")]
        initrds = [line for line in lines if line.startswith("initrd ")]
        # Its own server first, then the peer; the pinned image, then the fallback image.
        assert kernels[0].startswith("kernel http://%s/boot/images/2026.11.1/vmlinuz " % addr)
        assert initrds[0].startswith("initrd http://%s/boot/images/2026.11.1/initramfs.img" % addr)
        assert any("/boot/images/2026.11.0/vmlinuz" in line for line in kernels), "fallback image missing"
        assert "orion.node=probe-multi" in kernels[0]
        assert kernels[0].split(" || ")[0].endswith("quiet panic=10")
        assert "\n:failed\n" in body


def test_entry_and_discovery_scripts(probe):
    addr = SERVERS["orion-bs-srv1"]
    code, body = http_get(probe, "http://%s/boot/boot.ipxe" % addr)
    assert code == "200" and "imgfetch --name orion-node nodes/${mac:hexhyp}.ipxe" in body
    code, body = http_get(probe, "http://%s/boot/default.ipxe" % addr)
    assert code == "200" and "OrionOS discovery" in body


def test_no_directory_listing_and_no_writes(probe):
    addr = SERVERS["orion-bs-srv1"]
    for path in ("/boot/", "/boot/nodes/", "/boot/images/", "/"):
        code, body = http_get(probe, "http://%s%s" % (addr, path))
        assert code in ("403", "404"), (path, code)
        assert "Index of" not in body
    res = probe.run("curl -s -o /dev/null -w '%%{http_code}' -X PUT --data x http://%s/boot/x.ipxe" % addr)
    assert res.stdout.strip() in ("403", "405")


def test_image_files_are_served(probe, servers):
    srv = servers["orion-bs-srv2"]
    srv.check_output("mkdir -p /srv/orion/images/test-http && head -c 300000 /dev/urandom > /srv/orion/images/test-http/vmlinuz")
    try:
        expected = srv.check_output("sha256sum /srv/orion/images/test-http/vmlinuz").split()[0]
        got = probe.check_output(
            "curl -sf http://%s/boot/images/test-http/vmlinuz | sha256sum" % SERVERS["orion-bs-srv2"]).split()[0]
        assert got == expected
    finally:
        srv.check_output("rm -rf /srv/orion/images/test-http")


def test_a_configuration_is_answered_only_to_its_nodes_reserved_address(probe):
    """Scripts are for anyone on the node segment; a node's configuration only for the node."""
    addr = SERVERS["orion-bs-srv1"]
    url = "http://%s/config/probe-bios.conf" % addr
    code, body = http_get(probe, url)
    assert code == "403" and "orion-config" not in body
    code, _body = http_get(probe, "http://%s/boot/nodes/probe-bios.ipxe" % addr)
    assert code == "200"
    # The probe takes the node's reserved address, as the node would have it.
    probe.check_output("ip addr add 10.231.2.101/32 dev eth0")
    try:
        res = probe.run("curl -s --interface 10.231.2.101 -w '\\n%%{http_code}' %s" % url)
        body, _sep, code = res.stdout.rpartition("\n")
        assert code == "200" and body.startswith("orion-config 1\nhostname probe-bios\n"), res.stdout[-300:]
        res = probe.run("curl -s -o /dev/null -w '%%{http_code}' --interface 10.231.2.101 "
                        "http://%s/config/probe-uefi.conf" % addr)
        assert res.stdout.strip() == "403"
        # A node reads its own last report back, and nobody else's.
        res = probe.run("curl -s -o /dev/null -w '%%{http_code}' --interface 10.231.2.101 "
                        "http://%s/reports/probe-uefi.json" % addr)
        assert res.stdout.strip() == "403"
    finally:
        probe.run("ip addr del 10.231.2.101/32 dev eth0")


@pytest.mark.parametrize("server_name", sorted(SERVERS))
def test_nginx_listens_on_the_boot_address_only(servers, server_name):
    listening = servers[server_name].check_output("ss -Hltn 'sport = :80'")
    bound = sorted(line.split()[3] for line in listening.splitlines())
    assert bound == ["%s:80" % SERVERS[server_name]], listening
    res = servers[server_name].run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/boot/default.ipxe")
    assert res.stdout.strip() == "000", "nginx answered on the loopback address"
