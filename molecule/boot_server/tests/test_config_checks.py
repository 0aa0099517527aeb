"""Bad settings and broken configurations never replace what is running."""

import pytest

from conftest import SERVERS, converge

CONFIGS = {"dnsmasq": "/etc/dnsmasq.d/orion-boot.conf", "nginx": "/etc/nginx/sites-available/orion-boot.conf"}


def snapshot(servers):
    return {(name, path): host.file(path).sha256sum for name, host in servers.items() for path in CONFIGS.values()}


def serving(servers):
    return all(host.service(service).is_running for host in servers.values() for service in CONFIGS)


@pytest.fixture
def restore(servers):
    """Converge again after the test, if it left a configuration changed or a service stopped (a test that
    passed has shown it did not)."""
    before = snapshot(servers)
    yield
    if snapshot(servers) != before or not serving(servers):
        res = converge("--tags", "boot_server")
        assert res.returncode == 0, res.stdout[-3000:]


def assert_still_serving(servers, dhcp):
    for host in servers.values():
        for service in CONFIGS:
            assert host.service(service).is_running
    lease = dhcp.lease("52:54:00:0b:02:01")
    assert lease is not None and lease["ip"] == "10.231.2.101"
    for addr in SERVERS.values():
        assert servers["orion-bs-srv1"].run("curl -sf http://%s/boot/boot.ipxe -o /dev/null" % addr).rc == 0


def test_config_failing_dnsmasq_test_is_not_installed(servers, dhcp, restore):
    """A lease time only dnsmasq judges: its check before the file is replaced catches it."""
    before = snapshot(servers)
    res = converge("--tags", "boot_server", "-e", "boot_server_lease_time=bogus")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "failed to validate" in out and "dnsmasq" in out, out[-3000:]
    assert snapshot(servers) == before
    assert_still_serving(servers, dhcp)


def test_bad_setting_fails_before_any_change(servers, dhcp, restore):
    before = snapshot(servers)
    res = converge("--tags", "boot_server", "-e", "boot_server_http_port=70000")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "boot_server_http_port 70000 is not a TCP port" in out, out[-3000:]
    assert snapshot(servers) == before
    assert_still_serving(servers, dhcp)


def test_nginx_site_checker_refuses_a_broken_site(servers):
    host = servers["orion-bs-srv1"]
    checker = "/usr/local/libexec/orion/nginx-check-site"
    assert host.run("%s %s" % (checker, CONFIGS["nginx"])).rc == 0
    host.check_output("sed 's/^\\( *listen [^ ;]*\\)/\\1 bogus/' %s > /tmp/broken-site.conf" % CONFIGS["nginx"])
    assert "bogus" in host.file("/tmp/broken-site.conf").content_string
    res = host.run("%s /tmp/broken-site.conf" % checker)
    assert res.rc != 0 and "bogus" in res.stderr
