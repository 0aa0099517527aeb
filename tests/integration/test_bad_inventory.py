"""A bad inventory fails before anything changes, naming the node or server and the field.

Each case runs the real playbooks/servers.yml (in check mode, so even a
wrongly accepted inventory could not change this machine) against a boot
server that is this machine (connection local, address 127.0.0.1).
"""

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOOD_SERVER_VARS = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "boot_server_address": "127.0.0.1",
    "boot_server_subnet": "127.0.0.0/24",
    "boot_server_dhcp_mode": "authoritative",
    "boot_server_unknown_nodes": "discovery",
    "boot_server_dynamic_range": {"start": "127.0.0.200", "end": "127.0.0.219"},
    "boot_server_default_image": "2026.11.0",
    # Nothing is published on this machine; the image check has its own case below.
    "boot_server_image_check": False,
    # This machine's kernel has no nfsd; the kernel implementation has its own case below.
    "nfs_server_implementation": "ganesha",
}
GOOD_NODES = {
    "n1": {"orion_node_mac": "52:54:00:00:00:01", "orion_node_ip": "127.0.0.11"},
    "n2": {"orion_node_mac": "52-54-00-00-00-02", "orion_node_ip": "127.0.0.12"},
}


WITNESS = {"orion-test-witness": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                  "etcd_address": "127.0.0.4"}}


def run(tmp_path, server_vars=None, nodes=None, playbook="playbooks/servers.yml", check=True, more_servers=None,
        witnesses=None):
    """Run ``playbook`` against this inventory; with an even number of servers and no ``witnesses`` given, a
    witness makes the etcd cluster's member count odd."""
    svars = dict(GOOD_SERVER_VARS, **(server_vars or {}))
    servers = {"orion-test-srv": svars}
    for name, extra in (more_servers or {}).items():
        servers[name] = dict(GOOD_SERVER_VARS, **extra)
    if witnesses is None:
        witnesses = WITNESS if len(servers) % 2 == 0 else {}
    inventory = {
        "all": {
            "children": {
                "orion_boot_servers": {"hosts": servers},
                "orion_etcd_witnesses": {"hosts": witnesses},
                "orion_nodes": {"hosts": nodes if nodes is not None else GOOD_NODES},
            }
        }
    }
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump(inventory))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv),
           os.path.join(ROOT, playbook)]
    if check:
        cmd.append("--check")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)


def assert_refused(res, *fragments):
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    for fragment in fragments:
        assert fragment in out, "%r not in output:\n%s" % (fragment, out[-3000:])
    # Nothing past the checks ran.
    assert "Install dnsmasq, nginx and the iPXE binaries" not in out
    assert "Install rsync and ssh" not in out
    assert "Write the dnsmasq configuration" not in out
    assert "Install etcd" not in out
    assert "Make the site CA key" not in out


def test_good_inventory_passes_the_checks(tmp_path):
    res = run(tmp_path, playbook="tests/integration/validate_only.yml", check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


@pytest.mark.parametrize(
    "nodes,fragments",
    [
        ({"n1": {"orion_node_mac": "52:54:00:zz:00:01", "orion_node_ip": "127.0.0.11"}},
         ["node n1: mac: malformed MAC address '52:54:00:zz:00:01'"]),
        ({"n1": {"orion_node_mac": "52:54:00:00:00:01", "orion_node_ip": "127.0.0.11"},
          "n2": {"orion_node_mac": "5254.0000.0001", "orion_node_ip": "127.0.0.12"}},
         ["node n2: mac 52:54:00:00:00:01 is already used by node n1"]),
        ({"n1": {"orion_node_mac": "52:54:00:00:00:01", "orion_node_ip": "127.0.0.11"},
          "n2": {"orion_node_mac": "52:54:00:00:00:02", "orion_node_ip": "127.0.0.11"}},
         ["node n2: ip 127.0.0.11 is already used by node n1"]),
        ({"n1": {"orion_node_mac": "52:54:00:00:00:01", "orion_node_ip": "127.0.1.11"}},
         ["node n1: ip 127.0.1.11 is outside the node subnet 127.0.0.0/24"]),
        ({"n1": {"orion_node_mac": "52:54:00:00:00:01", "orion_node_ip": "127.0.0.205"}},
         ["node n1: ip 127.0.0.205 is inside the dynamic range 127.0.0.200-127.0.0.219"]),
        ({"n1": {"orion_node_mac": "52:54:00:00:00:01", "orion_node_ip": "127.0.0.11",
                 "orion_node_kernel_args": "quiet;shell"}},
         ["node n1: kernel_args: 'quiet;shell' has characters that are not allowed"]),
        ({"n1": {"orion_node_mac": "52:54:00:zz:00:01", "orion_node_ip": "127.0.0.11"},
          "n2": {"orion_node_mac": "52:54:00:00:00:02", "orion_node_ip": "127.0.9.9"}},
         ["2 problem(s)", "node n1: mac", "node n2: ip 127.0.9.9"]),
    ],
    ids=["malformed-mac", "duplicate-mac", "duplicate-ip", "ip-outside-subnet", "ip-in-dynamic-range",
         "kernel-arg-injection", "all-problems-at-once"],
)
def test_bad_node_is_refused(tmp_path, nodes, fragments):
    assert_refused(run(tmp_path, nodes=nodes), *fragments)


def test_server_outside_subnet_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"boot_server_subnet": "10.9.0.0/24",
                                     "boot_server_dynamic_range": {"start": "10.9.0.200", "end": "10.9.0.219"}},
              nodes={})
    assert_refused(res, "server orion-test-srv: address 127.0.0.1 is outside the node subnet 10.9.0.0/24")


def test_unknown_dhcp_mode_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"boot_server_dhcp_mode": "relay"})
    assert_refused(res, "boot_server_dhcp_mode", "relay")


def test_replication_source_that_is_not_a_server_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"image_store_source": "orion-nosuch"})
    assert_refused(res, "image_store_source orion-nosuch is not one of the servers in image_store_peers (orion-test-srv)")


def test_floating_address_outside_the_server_subnet_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"orion_vip": "10.9.9.9"})
    assert_refused(res, "vrrp_vip 10.9.9.9 is outside subnet 127.0.0.0/8 of server orion-test-srv")


def test_two_servers_with_the_same_priority_are_refused(tmp_path):
    res = run(tmp_path, server_vars={"orion_vip": "127.0.0.10", "vrrp_priority": 100},
              more_servers={"orion-test-srv2": {"boot_server_address": "127.0.0.2", "orion_vip": "127.0.0.10",
                                                "vrrp_priority": 100}})
    assert_refused(res, "vrrp_peers: servers share a priority (orion-test-srv=100, orion-test-srv2=100)")


def test_advert_interval_the_vrrp_version_cannot_carry_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"orion_vip": "127.0.0.10", "vrrp_version": 2, "vrrp_advert_int": 0.5})
    assert_refused(res, "vrrp_advert_int 0.5 is not allowed with vrrp_version 2")


def test_dhcp_on_a_floating_address_without_one_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"orion_dhcp_on_vip": True})
    assert_refused(res, "orion_dhcp_on_vip: true needs orion_vip")


def test_router_advertisements_without_an_ipv6_prefix_are_refused(tmp_path):
    """lo has only ::1 (scope host): there is no prefix to advertise."""
    res = run(tmp_path, server_vars={"boot_server_router_advertisement": True})
    assert_refused(res, "boot_server_router_advertisement is on, but the boot interface lo has no global or "
                        "unique-local IPv6 address")


def test_export_subnet_without_nodes_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"orion_nfs_clients": ["127.0.0.0/24", "10.99.0.0/24"]})
    assert_refused(res, "nfs_server_clients entry 10.99.0.0/24 contains none of the nodes' addresses")


def test_export_to_everyone_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"orion_nfs_clients": ["0.0.0.0/0"]})
    assert_refused(res, "nfs_server_clients entry 0.0.0.0/0 exports to every address")


def test_kernel_nfs_server_without_nfsd_is_refused(tmp_path):
    with open("/proc/filesystems", encoding="ascii") as handle:
        has_nfsd = any(line.split()[-1] == "nfsd" for line in handle if line.strip())
    res = run(tmp_path, server_vars={"nfs_server_implementation": "kernel"},
              playbook="tests/integration/validate_only.yml", check=False)
    if has_nfsd:
        assert res.returncode == 0, res.stdout[-3000:]
    else:
        assert_refused(res, "nfs_server_implementation kernel: the kernel of this host has no NFS server")


def test_log_server_bad_size_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"log_server_max_file_size": "lots"})
    assert_refused(res, "log_server_max_file_size lots is not a size")


POLICY = {"channels": {"stable": "2026.11.0", "canary": "2026.11.1"},
          "rules": [{"name": "canary", "match": {"group": "orion_nodes"}, "percent": 10, "channel": "canary"}],
          "default": {"channel": "stable"}}


def test_good_policy_passes_the_checks(tmp_path):
    res = run(tmp_path, server_vars={"orion_policy": POLICY}, playbook="tests/integration/validate_only.yml",
              check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


def test_policy_with_unknown_channel_and_bad_percent_is_refused(tmp_path):
    policy = dict(POLICY, rules=[{"name": "canary", "percent": 140, "channel": "beta"}])
    res = run(tmp_path, server_vars={"orion_policy": policy})
    assert_refused(res, "the boot policy has 2 problem(s)", "rule canary: percent 140 is not a number from 0 to 100",
                   "rule canary: channel 'beta' is not defined (channels: canary, stable)")


def test_policy_naming_an_unpublished_image_is_refused(tmp_path):
    res = run(tmp_path, server_vars={"boot_server_image_check": True,
                                     "boot_server_root": str(tmp_path / "store")})
    assert_refused(res, "policy.default: pinned image '2026.11.0' is not in the image store")


# ---------------------------------------------------------------- etcd

SRV2 = {"orion-test-srv2": {"boot_server_address": "127.0.0.2"}}


def test_a_server_and_two_witnesses_pass_the_checks(tmp_path):
    witnesses = dict(WITNESS, **{"orion-test-witness2": dict(WITNESS["orion-test-witness"], etcd_address="127.0.0.5")})
    res = run(tmp_path, witnesses=witnesses, playbook="tests/integration/validate_only.yml", check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


def test_two_members_pass_with_the_acknowledgement(tmp_path):
    res = run(tmp_path, server_vars={"etcd_allow_even_members": True},
              witnesses={"orion-test-witness": dict(WITNESS["orion-test-witness"], etcd_allow_even_members=True)},
              playbook="tests/integration/validate_only.yml", check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


@pytest.mark.parametrize("changes, fragments", [
    ({"more_servers": SRV2, "witnesses": {}},
     ["etcd_members: 2 members, an even count", "etcd_allow_even_members: true"]),
    ({"more_servers": SRV2, "witnesses": {"orion-test-witness": dict(WITNESS["orion-test-witness"],
                                                                     etcd_address="127.0.0.2")}},
     ["etcd member orion-test-witness: address 127.0.0.2 is already the address of member orion-test-srv2"]),
    ({"more_servers": SRV2, "witnesses": {"orion-test-srv2": {}}},
     ["etcd member orion-test-srv2: name orion-test-srv2 is given twice"]),
    ({"server_vars": {"etcd_client_port": 80}},
     ["etcd_client_port 80 is already the port of boot_server_http_port on the boot servers"]),
    ({"server_vars": {"etcd_peer_port": 2379}}, ["etcd_client_port and etcd_peer_port are both 2379"]),
    ({"witnesses": {"orion-test-witness": dict(WITNESS["orion-test-witness"], etcd_address="127.0.0.11")}},
     ["etcd_members: 2 members", "etcd member orion-test-witness: address 127.0.0.11 is reserved for node n1"]),
], ids=["even-count", "duplicate-address", "server-listed-as-witness", "port-of-http", "client-port-is-peer-port",
        "address-of-a-node"])
def test_bad_etcd_cluster_is_refused(tmp_path, changes, fragments):
    assert_refused(run(tmp_path, **changes), *fragments)


def _certificate(path, name, sans, issuer_key, issuer_name, key=None):
    # A certificate as an operator might bring one, made with Python's cryptography.
    import datetime  # pylint: disable=import-outside-toplevel
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # pylint: disable=import-outside-toplevel
    import ipaddress  # pylint: disable=import-outside-toplevel
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30)))
    if sans is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        alt = [x509.DNSName(s[4:]) if s.startswith("DNS:") else x509.IPAddress(ipaddress.ip_address(s[3:]))
               for s in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key


def test_a_certificate_made_for_another_host_is_refused(tmp_path):
    pki = tmp_path / "pki"
    (pki / "etcd").mkdir(parents=True)
    ca_key = _certificate(pki / "ca.crt", "OrionOS site CA", None, None, "OrionOS site CA")
    # The second server's certificate copied over the first's.
    _certificate(pki / "etcd" / "orion-test-srv.crt", "orion-test-srv2",
                 ["DNS:orion-test-srv2", "DNS:localhost", "IP:127.0.0.2", "IP:127.0.0.1"], ca_key, "OrionOS site CA")
    # One from another CA.
    _certificate(pki / "etcd" / "orion-test-srv2.crt", "orion-test-srv2",
                 ["DNS:orion-test-srv2", "DNS:localhost", "IP:127.0.0.2", "IP:127.0.0.1"], None, "Someone else")
    res = run(tmp_path, server_vars={"orion_pki_dir": str(pki)},
              more_servers={"orion-test-srv2": {"boot_server_address": "127.0.0.2", "orion_pki_dir": str(pki)}},
              witnesses={"orion-test-witness": dict(WITNESS["orion-test-witness"], orion_pki_dir=str(pki))})
    assert_refused(res, "etcd member orion-test-srv: certificate names DNS:localhost, DNS:orion-test-srv2,",
                   "etcd member orion-test-srv2: certificate was not issued by the site CA")
