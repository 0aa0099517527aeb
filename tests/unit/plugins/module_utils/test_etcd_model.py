"""The etcd cluster's checks: members, ports, even counts, certificates."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import etcd
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import settings as engine

MEMBERS = [{"name": "srv1", "address": "10.0.0.2", "witness": False},
           {"name": "srv2", "address": "10.0.0.3", "witness": False},
           {"name": "witness", "address": "10.0.0.4", "witness": True}]
GOOD = {"members": MEMBERS, "this": "srv1", "client_port": 2379, "peer_port": 2380, "allow_even": False,
        "token": "orion-site", "other_ports": {"boot_server_http_port": 80, "log_server_port": 514},
        "node_ips": [{"name": "n1", "ip": "10.0.0.101"}], "snapshot_keep": 24, "snapshot_schedule": "hourly",
        "snapshot_dir": "/var/backups/etcd", "data_dir": "/var/lib/etcd/orion"}
CA_SUBJECT = {"commonName": "OrionOS site CA"}


def check(**changes):
    problems = []
    derived = etcd.cluster(dict(GOOD, **changes), problems)
    return problems, derived


def test_good_cluster():
    problems, derived = check()
    assert problems == []
    assert derived["initial_cluster"] == ("srv1=https://10.0.0.2:2380,srv2=https://10.0.0.3:2380,"
                                          "witness=https://10.0.0.4:2380")
    assert derived["endpoints"] == "https://10.0.0.2:2379,https://10.0.0.3:2379,https://10.0.0.4:2379"
    assert derived["quorum"] == 2
    assert derived["this"]["sans"] == ["DNS:srv1", "DNS:localhost", "IP:10.0.0.2", "IP:127.0.0.1"]


def test_ipv6_members_have_brackets_in_their_urls():
    problems, derived = check(members=[{"name": "a", "address": "fd00::2"}], this="a")
    assert problems == []
    assert derived["this"]["peer_url"] == "https://[fd00::2]:2380"


@pytest.mark.parametrize("changes, expected", [
    ({"members": MEMBERS + [dict(MEMBERS[0], address="10.0.0.9")]},
     "etcd member srv1: name srv1 is given twice (etcd_members[0] and [3])"),
    ({"members": MEMBERS + [{"name": "srv3", "address": "10.0.0.3"}]},
     "etcd member srv3: address 10.0.0.3 is already the address of member srv2"),
    ({"members": MEMBERS[:2]}, "etcd_members: 2 members, an even count"),
    ({"members": []}, "etcd_members: the cluster has no member"),
    ({"members": "srv1"}, "etcd_members: 'srv1' is not a list of members"),
    ({"members": [dict(MEMBERS[0], name="srv1,x=https://6.6.6.6:2380")]}, "is not a host name"),
    ({"members": [dict(MEMBERS[0], address="")]}, "etcd member srv1: address '' is not an IPv4 or IPv6 address"),
    ({"members": [dict(MEMBERS[0], port=1)]}, "etcd_members[0]: unknown field(s) port"),
    ({"members": [{"name": "m%d" % i, "address": "10.0.1.%d" % i} for i in range(9)], "this": "m1"},
     "9 members; at most 7"),
    ({"client_port": 2380}, "etcd_client_port and etcd_peer_port are both 2380"),
    ({"client_port": 80}, "etcd_client_port 80 is already the port of boot_server_http_port on the boot servers"),
    ({"peer_port": 2049}, "etcd_peer_port 2049 is already the port of NFS on the boot servers"),
    ({"peer_port": 70000}, "etcd_peer_port 70000 is not a TCP port (1-65535)"),
    ({"token": "a b"}, "etcd_cluster_token 'a b' is not allowed"),
    ({"node_ips": [{"name": "n1", "ip": "10.0.0.4"}]}, "etcd member witness: address 10.0.0.4 is reserved for node n1"),
    ({"this": "srv9"}, "etcd member srv9: this host is not a member of the cluster"),
    ({"snapshot_keep": 0}, "etcd_snapshot_keep 0 is not a number from 1 to 1000"),
    ({"snapshot_schedule": "hourly; rm"}, "etcd_snapshot_schedule hourly; rm is not a systemd calendar"),
    ({"snapshot_dir": "/var/lib/etcd/orion/snap"}, "etcd_snapshot_dir /var/lib/etcd/orion/snap is inside etcd_data_dir"),
    ({"data_dir": "relative"}, "etcd_data_dir 'relative' is not an absolute path"),
])
def test_bad_settings_are_named(changes, expected):
    problems, unused = check(**changes)
    assert any(expected in p for p in problems), problems


def test_an_even_count_is_accepted_with_the_acknowledgement():
    problems, derived = check(members=MEMBERS[:2], allow_even="true")
    assert problems == []
    assert derived["quorum"] == 2


def test_members_from_the_inventory():
    hostvars = {"srv2": {"boot_server_address": "10.0.0.3"}, "srv1": {"boot_server_address": "10.0.0.2",
                                                                      "etcd_address": "10.0.9.2"},
                "w": {"etcd_address": "10.0.0.4", "boot_server_address": "10.0.0.99"}}
    assert etcd.members_from_inventory(["srv2", "srv1"], ["w"], hostvars) == [
        {"name": "srv1", "address": "10.0.9.2", "witness": False},
        {"name": "srv2", "address": "10.0.0.3", "witness": False},
        {"name": "w", "address": "10.0.0.4", "witness": True}]
    with pytest.raises(KeyError):
        etcd.members_from_inventory(["nobody"], [], hostvars)


def cert(**changes):
    info = {"subject_alt_name": ["DNS:srv1", "DNS:localhost", "IP:10.0.0.2", "IP:127.0.0.1"],
            "issuer": dict(CA_SUBJECT), "not_after": "20361201000000Z",
            "extended_key_usage": ["TLS Web Server Authentication", "TLS Web Client Authentication"]}
    info.update(changes)
    return info


def test_certificates():
    unused, derived = check()
    member = derived["members"][0]
    assert etcd.certificate_problems(member, cert(), CA_SUBJECT, "20261204000000Z") == []
    other = etcd.certificate_problems(member, cert(subject_alt_name=["DNS:srv2", "IP:10.0.0.3"]), CA_SUBJECT)
    assert other and "etcd member srv1: certificate names DNS:srv2, IP:10.0.0.3, not DNS:srv1" in other[0]
    assert "not issued by the site CA" in etcd.certificate_problems(member, cert(issuer={"commonName": "x"}),
                                                                    CA_SUBJECT)[0]
    assert "expired at 20200101000000Z" in etcd.certificate_problems(
        member, cert(not_after="20200101000000Z"), CA_SUBJECT, "20261204000000Z")[0]
    assert "TLS Web Client Authentication" in etcd.certificate_problems(
        member, cert(extended_key_usage=["TLS Web Server Authentication"]), CA_SUBJECT)[0]


def test_the_role_check_reads_the_certificates_it_is_given():
    ca = {"subject": CA_SUBJECT, "basic_constraints": ["CA:TRUE"]}
    problems, unused = engine.etcd("srv1", dict(GOOD, ca=ca, certificates={"srv2": cert()}))
    assert problems == ["etcd member srv2: certificate names DNS:localhost, DNS:srv1, IP:10.0.0.2, IP:127.0.0.1, "
                        "not DNS:srv2, IP:10.0.0.3 (it was made for another host: remove it, or give the host "
                        "its own)"]
    problems, unused = engine.etcd("srv1", dict(GOOD, ca={"subject": CA_SUBJECT, "basic_constraints": []}))
    assert "the site CA certificate is not a CA" in problems[0]


def test_the_pki_is_made_only_when_a_key_or_certificate_is_missing():
    ca = {"subject": CA_SUBJECT, "basic_constraints": ["CA:TRUE"]}
    mine = {"srv1": cert(), "srv2": cert(subject_alt_name=["DNS:srv2", "DNS:localhost", "IP:10.0.0.3", "IP:127.0.0.1"]),
            "witness": cert(subject_alt_name=["DNS:witness", "DNS:localhost", "IP:10.0.0.4", "IP:127.0.0.1"])}
    every = dict(GOOD, ca=ca, ca_key=True, certificates=mine, keys=["srv1", "srv2", "witness"])
    problems, derived = engine.etcd("srv1", every)
    assert problems == [] and derived["pki_ready"] is True
    for missing in (dict(ca={}), dict(ca_key=False), dict(keys=["srv1", "srv2"]),
                    dict(certificates={k: v for k, v in mine.items() if k != "witness"})):
        assert engine.etcd("srv1", dict(every, **missing))[1]["pki_ready"] is False, missing
    assert engine.etcd("srv1", GOOD)[1]["pki_ready"] is False


@given(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b", "c", "d", "a,b", ""]),
                                       "address": st.sampled_from(["10.0.0.2", "10.0.0.3", "fd00::1", "x", ""])}),
                max_size=9))
def test_any_member_list_gives_unique_members_or_problems(members):
    problems = []
    derived = etcd.cluster(dict(GOOD, members=members, this="", allow_even=True), problems)
    names = [m["name"] for m in derived["members"]]
    addresses = [m["address"] for m in derived["members"]]
    assert len(set(names)) == len(names) and len(set(addresses)) == len(addresses)
    if len(derived["members"]) != len(members):
        assert problems
