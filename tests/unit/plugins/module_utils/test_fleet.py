"""Unit tests of the fleet model: each rule once, servers, nodes, the boot network and a boot server's settings."""

import ipaddress

import pytest
from hypothesis import given, strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import inventory
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import model
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import settings
from ansible_collections.orionos.diskless.tests.unit.plugins.module_utils.fleet_samples import NETWORK, node

# ------------------------------------------------------------------ rules


@given(st.integers(-100000, 100000))
def test_port_accepts_exactly_1_to_65535(number):
    if 1 <= number <= 65535:
        assert fields.port(number, "p") == number
        assert fields.port(str(number), "p") == number
    else:
        with pytest.raises(fields.FieldError, match="p %s is not a TCP port" % number):
            fields.port(number, "p")


@pytest.mark.parametrize("value", [True, 80.5, "80a", "", None, [80]])
def test_port_refuses_what_is_not_a_whole_number(value):
    # Text is shown as the inventory wrote it: -e boot_server_http_port=70000 gives '70000'.
    with pytest.raises(fields.FieldError, match="http_port .* is not a TCP port"):
        fields.port(value, "http_port")


@given(st.lists(st.integers(0, 255), min_size=6, max_size=6).filter(lambda b: not b[0] & 1 and any(b)),
       st.sampled_from(["%02x:", "%02X-", "%02x"]))
def test_mac_has_one_normal_form(octets, style):
    text = "".join(style % o for o in octets).rstrip(":-")
    normal = fields.mac(text)
    assert normal == ":".join("%02x" % o for o in octets)
    assert fields.mac(normal) == normal


@given(st.ip_addresses(v=4), st.integers(8, 30))
def test_on_subnet_agrees_with_the_standard_library(addr, prefix):
    net = ipaddress.ip_network("%s/%d" % (addr, prefix), strict=False)
    inside = addr in net and addr not in (net.network_address, net.broadcast_address)
    got = fields.host_on(fields.address(str(addr), "ip"), fields.network(str(net), "subnet"))
    assert got == inside


def test_network_names_host_bits():
    with pytest.raises(fields.FieldError, match=r"subnet '10.0.0.1/24' has host bits set \(did you mean 10.0.0.0/24\?\)"):
        fields.network("10.0.0.1/24", "subnet")


@pytest.mark.parametrize("value", ["/srv/orion", "/srv/orion-2/x.y_z"])
def test_abs_path_accepts(value):
    assert fields.abs_path(value, "root") == value


@pytest.mark.parametrize("value", ["srv", "/srv/../etc", "/srv/a b", "/srv/$x", 5])
def test_abs_path_refuses(value):
    with pytest.raises(fields.FieldError, match="root .* is not an absolute path"):
        fields.abs_path(value, "root")


# ------------------------------------------------------------------ nodes


def test_a_node_is_parsed_into_its_normal_form():
    problems = []
    fleet = model.parse_fleet([node(mac=["52-54-00-00-00-01", "5254.0000.0001", "52:54:00:00:00:0A"],
                                    groups=["compute"], labels=["rack=r1"], firmware="uefi",
                                    kernel_args="quiet panic=10")], NETWORK, problems)
    assert problems == []
    (parsed,) = fleet.nodes
    assert parsed.macs == ["52:54:00:00:00:01", "52:54:00:00:00:0a"]
    assert str(parsed.ip) == "10.0.0.11"
    assert parsed.labels == {"rack": "r1"}
    assert parsed.kernel_args == ["quiet", "panic=10"]
    assert parsed.as_dict()["ip"] == "10.0.0.11"


def test_every_node_problem_is_named_at_once():
    problems = []
    model.parse_fleet([
        node(mac="52:54:00:zz:00:01"),
        node("n2", mac="52:54:00:00:00:02", ip="10.0.0.205"),
        node("n3", mac="52:54:00:00:00:03", ip="10.0.0.2"),
        node("n4", mac="52:54:00:00:00:04", ip="10.0.1.4", arch="sparc", rack="r1"),
        node("n5", mac="52:54:00:00:00:02", ip=None, image="a b"),
    ], NETWORK, problems)
    assert problems == [
        "node n1: mac: malformed MAC address '52:54:00:zz:00:01'",
        "node n2: ip 10.0.0.205 is inside the dynamic range 10.0.0.200-10.0.0.219",
        "node n3: ip 10.0.0.2 is the address of server s1",
        "node n4: unknown field 'rack' (known: %s)" % ", ".join(model.NODE_FIELDS),
        "node n4: ip 10.0.1.4 is outside the node subnet 10.0.0.0/24",
        "node n4: arch 'sparc' is not one of %s" % ", ".join(fields.ARCHES),
        "node n5: mac 52:54:00:00:00:02 is already used by node n2",
        "node n5: ip is missing (authoritative DHCP reserves one per node)",
        "node n5: image 'a b' is not a valid image version",
    ]


def test_one_validator_gives_the_policy_and_the_network_the_same_message():
    nodes = [node(), node("n2", mac="52-54-00-00-00-01", ip="10.0.0.12")]
    network_problems = []
    model.parse_fleet(nodes, NETWORK, network_problems)
    policy_problems = []
    model.parse_nodes(nodes, policy_problems, subnets=[fields.network("10.0.0.0/24", "subnet")])
    assert network_problems == policy_problems == ["node n2: mac 52:54:00:00:00:01 is already used by node n1"]


def test_servers_need_distinct_addresses_on_the_subnet_and_priorities_in_range():
    problems = []
    model.parse_fleet([], dict(NETWORK, servers=[{"name": "s1", "address": "10.0.0.2", "priority": "0"},
                                                 {"name": "s2", "address": "10.0.0.2"},
                                                 {"name": "s3", "address": "10.0.9.3", "priority": 300}]), problems)
    assert problems == ["server s2: address 10.0.0.2 is already used by server s1",
                        "server s3: priority 300 is not in 1-254",
                        "server s3: address 10.0.9.3 is outside the node subnet 10.0.0.0/24"]


# -------------------------------------------------------------- inventory

def test_inventory_gives_every_node_field_and_the_servers_in_order():
    hostvars = {"b": {"orion_node_mac": "m2", "orion_node_labels": {"k": "v"}, "group_names": ["g2", "g1"]},
                "a": {"orion_node_mac": "m1", "orion_node_ip": "10.0.0.1", "group_names": []},
                "s2": {"boot_server_address": "10.0.0.3", "vrrp_priority": 150},
                "s1": {"boot_server_address": "10.0.0.2"}}
    assert inventory.nodes(["b", "a"], hostvars) == [
        {"name": "a", "groups": [], "mac": "m1", "ip": "10.0.0.1"},
        {"name": "b", "groups": ["g1", "g2"], "mac": "m2", "labels": {"k": "v"}}]
    assert inventory.servers(["s2", "s1"], hostvars) == [
        {"name": "s1", "address": "10.0.0.2", "priority": 0},
        {"name": "s2", "address": "10.0.0.3", "priority": 150}]


# -------------------------------------------------------- server settings

FACTS = {"interfaces": ["lo", "eth0"],
         "eth0": {"device": "eth0", "ipv4": {"address": "10.0.0.2"},
                  "ipv6": [{"address": "fe80::1", "scope": "link"}]},
         "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1"}}}

SETTINGS = {"address": "10.0.0.2", "service_address": "", "interface": "", "subnet": "10.0.0.0/24",
            "dhcp_mode": "authoritative", "dhcp_interface": "", "unknown_nodes": "discovery",
            "dynamic_range": {"start": "10.0.0.200", "end": "10.0.0.219"},
            "peers": [{"name": "s1", "address": "10.0.0.2"}, {"name": "s2", "address": "10.0.0.3"}],
            "nodes": [node()], "default_image": "2026.11.0", "policy": {}, "policy_source": "",
            "http_port": 80, "tftp_max": 1000, "root": "/srv/orion", "tftp_root": "/srv/orion/tftp",
            "router_advertisement": False, "kernel_args": ["console=ttyS0"], "node_config": {}}


def test_good_settings_give_what_the_role_uses():
    sections, derived = settings.check_boot_server("s1", SETTINGS, FACTS)
    assert sections == []
    assert derived["iface"] == "eth0"
    assert derived["fetch_order"] == ["10.0.0.2", "10.0.0.3"]
    assert derived["range_slice"] == {"start": "10.0.0.200", "end": "10.0.0.209"}
    assert derived["policy"]["default"] == {"image": "2026.11.0"}
    # The pinned policy is made from the nodes as given: no rule for a node that names no image.
    assert derived["policy"]["rules"] == [{"name": "node-n1", "match": {"name": "n1"}, "image": "2026.11.0"}]


def test_every_settings_problem_is_named_at_once():
    bad = dict(SETTINGS, http_port=0, tftp_max="many", root="srv", dhcp_interface="a very long name!",
               service_address="10.0.9.10", policy_source="elsewhere", router_advertisement=True,
               dhcp_mode="proxy")
    sections, _derived = settings.check_boot_server("s1", bad, FACTS)
    (what, problems), = sections
    assert what == "the inventory"
    assert problems == [
        "server s1: boot_server_service_address 10.0.9.10 is outside boot_server_subnet 10.0.0.0/24",
        "server s1: boot_server_policy_source elsewhere is not one of the servers in boot_server_peers (s1, s2)",
        "server s1: boot_server_http_port 0 is not a TCP port (1-65535)",
        "server s1: boot_server_tftp_max many is not in 1-65535",
        "server s1: boot_server_root 'srv' is not an absolute path of letters, digits and . _ / -",
        "server s1: boot_server_dhcp_interface 'a very long name!' is not an interface name (1-15 of A-Z a-z 0-9 . _ -)",
        "server s1: boot_server_dhcp_interface a very long name! needs boot_server_dhcp_mode authoritative "
        "(a proxyDHCP server has no address identity to float)",
        "server s1: boot_server_router_advertisement is on, but the boot interface eth0 has no global or "
        "unique-local IPv6 address to advertise the prefix of",
    ]


def test_an_address_on_no_interface_is_named():
    sections, _derived = settings.check_boot_server("s1", dict(SETTINGS, address="10.0.0.4"), FACTS)
    problems = sections[0][1]
    assert "server s1: boot_server_address 10.0.0.4 is not in boot_server_peers" in problems
    assert "server s1: boot_server_address 10.0.0.4 is not on any interface of this host" in problems


def test_a_node_problem_is_listed_once_though_the_policy_sees_it_too():
    nodes = [node(), node("n2", mac="52:54:00:00:00:01", ip="10.0.0.12")]
    policy = {"channels": {"stable": "2026.11.0"}, "rules": [], "default": {"channel": "beta"}}
    sections, _derived = settings.check_boot_server("s1", dict(SETTINGS, nodes=nodes, policy=policy), FACTS)
    assert sections == [
        ("the inventory", ["node n2: mac 52:54:00:00:00:01 is already used by node n1"]),
        ("the boot policy", ["policy.default: channel 'beta' is not defined (channels: stable)"]),
    ]


def test_node_configuration_problems_have_their_own_section():
    config = {"nodes": {"nosuch": {"10-x": {"files": [{"path": "/etc/x", "content": "x"}]}}}}
    sections, _derived = settings.check_boot_server("s1", dict(SETTINGS, node_config=config), FACTS)
    assert [what for what, _problems in sections] == ["the node configuration"]
    assert any("nosuch" in p for p in sections[0][1])


def test_later_steps_get_each_mac_in_its_normal_form():
    given = [node(mac=["52-54-00-00-00-0A", "5254.0000.000b"])]
    sections, derived = settings.check_boot_server("s1", dict(SETTINGS, nodes=given), FACTS)
    assert sections == []
    assert derived["nodes"] == [dict(given[0], mac=["52:54:00:00:00:0a", "52:54:00:00:00:0b"])]
    # The normal form parses to itself.
    assert [fields.mac(m) for m in derived["nodes"][0]["mac"]] == derived["nodes"][0]["mac"]


# ------------------------------------------------------ the other roles

LOG = {"dir": "/var/log/orion/nodes", "port": 514, "udp": True, "tcp": True, "max_file_size": "50M", "rotate": 5,
       "max_total_mb": 2048, "allowed_senders": ["10.0.0.0/24"], "rotate_schedule": "hourly"}


def test_log_server_settings():
    assert settings.check_role("log_server", "s1", LOG, {}) == ([], {})
    sections, _derived = settings.check_role("log_server", "s1", dict(
        LOG, port=0, udp="false", tcp=False, max_file_size="lots", rotate=0, allowed_senders=["10.0.0.1/24"],
        rotate_schedule="hourly; rm -rf /"), {})
    assert sections == [("the settings", [
        "log_server_port 0 is not a UDP and TCP port (1-65535)",
        "log_server_udp and log_server_tcp are both false: nothing would receive logs",
        "log_server_max_file_size lots is not a size like 100k, 50M or 1G",
        "log_server_rotate 0 is not at least 1",
        "log_server_allowed_senders entry '10.0.0.1/24' has host bits set (did you mean 10.0.0.0/24?)",
        "log_server_rotate_schedule hourly; rm -rf / is not a systemd calendar expression"])]


STORE = {"peers": [{"name": "s1", "address": "10.0.0.2", "priority": 0}, {"name": "s2", "address": "10.0.0.3"}],
         "source": "", "host_address": "s1", "root": "/srv/orion", "sync_user": "orion-sync", "ssh_port": 2222,
         "bwlimit": 0, "sync_timeout": 600}


def test_image_store_settings_and_the_source():
    sections, derived = settings.check_role("image_store", "s2", STORE, {})
    assert sections == []
    assert derived["source"] == "s1"
    assert derived["source_spec"] == "[10.0.0.2]:2222"
    sections, _derived = settings.check_role("image_store", "s3", dict(
        STORE, source="nosuch", sync_user="Root!", ssh_port=70000, bwlimit=-1), {})
    assert sections == [("the settings", [
        "image_store_source nosuch is not one of the servers in image_store_peers (s1, s2)",
        "server s3 is not in image_store_peers",
        "image_store_sync_user Root! is not a valid user name",
        "image_store_ssh_port 70000 is not a TCP port (1-65535)",
        "image_store_bwlimit -1 is not a bandwidth limit in KiB/s (0: none)"])]


NFS = {"clients": ["10.0.0.0/24"], "node_ips": ["10.0.0.11"], "sec": ["sys"], "versions": [3, 4],
       "implementation": "ganesha", "export_path": "/srv/orion/images", "grace_period": 20, "lease_lifetime": 20,
       "ports": {"nfs": 2049, "mountd": 20048}, "fstype": "ext4", "has_nfsd": False}


def test_nfs_server_settings():
    assert settings.check_role("nfs_server", "s1", NFS, {}) == ([], {})
    sections, _derived = settings.check_role("nfs_server", "s1", dict(
        NFS, clients=["0.0.0.0/0"], sec=["none"], versions=[2], fstype="overlay", lease_lifetime=121,
        ports={"nfs": 0}), {})
    assert sections[0][1] == [
        "nfs_server_clients entry 0.0.0.0/0 exports to every address; name the node subnets",
        "nfs_server_sec entry none is not one of sys, krb5, krb5i, krb5p",
        "nfs_server_versions [2] must list 3 and/or 4",
        "nfs_server_export_path /srv/orion/images is on an overlay filesystem, which nfs-ganesha cannot export;"
        " put it on a volume or a real filesystem",
        "nfs_server_lease_lifetime 121 is not in 1-120",
        "nfs_server_ports.nfs 0 is not a TCP and UDP port (1-65535)"]
    sections, _derived = settings.check_role("nfs_server", "s1", dict(NFS, implementation="kernel"), {})
    assert sections[0][1] == ["nfs_server_implementation kernel: the kernel of this host has no NFS server (no nfsd); "
                              "use ganesha"]


VRRP_FACTS = {"interfaces": ["eth0"], "eth0": {"device": "eth0", "ipv4": {"address": "10.0.0.2", "network": "10.0.0.0",
                                                                          "prefix": "24"}}}
VRRP = {"vip": "10.0.0.10", "address": "10.0.0.2", "interface": "",
        "peers": [{"name": "s1", "address": "10.0.0.2", "priority": 0}, {"name": "s2", "address": "10.0.0.3"}],
        "priority": 0, "router_id": 51, "version": 3, "advert_int": 1, "preempt_delay": 10,
        "checks": [{"name": "nginx", "type": "http", "target": "http://10.0.0.2:80/boot/boot.ipxe"}],
        "master_restarts": ["dnsmasq"]}


def test_vrrp_priorities_by_place_and_the_interface():
    sections, derived = settings.check_role("vrrp", "s1", VRRP, VRRP_FACTS)
    assert sections == []
    assert [p["priority"] for p in derived["peers"]] == [200, 190]
    assert derived["iface"] == "eth0" and derived["me"]["name"] == "s1"


def test_every_vrrp_problem_is_named():
    sections, _derived = settings.check_role("vrrp", "s1", dict(
        VRRP, vip="10.9.9.9", version=2, advert_int=0.5, router_id=300,
        peers=[{"name": "s1", "address": "10.0.0.2", "priority": 100},
               {"name": "s2", "address": "10.0.0.3", "priority": "100"}],
        checks=[{"name": "Bad", "type": "ping", "target": "x"}, {"name": "web", "type": "http", "target": "$(x)"}],
        master_restarts=["dnsmasq;reboot"]), VRRP_FACTS)
    assert sections[0][1] == [
        "vrrp_vip 10.9.9.9 is outside subnet 10.0.0.0/24 of server s1 (eth0)",
        "vrrp_peers: servers share a priority (s1=100, s2=100); give each a different vrrp_priority",
        "vrrp_router_id 300 is not in 1-255",
        "vrrp_advert_int 0.5 is not allowed with vrrp_version 2 (version 2: whole seconds 1-255; version 3: 0.01-40.95)",
        "vrrp_checks: check Bad has an unknown type (tftp, http, nfs)",
        "vrrp_checks: check web has a target with characters outside A-Z a-z 0-9 : / . _ @ % + = -",
        "vrrp_master_restarts: dnsmasq;reboot is not a service name (A-Z a-z 0-9 @ . _ -)"]


def test_a_number_given_as_text_is_named_as_written():
    with pytest.raises(fields.FieldError) as err:
        fields.port("70000", "boot_server_http_port")
    assert str(err.value) == "boot_server_http_port 70000 is not a TCP port (1-65535)"


IMAGE = {"version": "", "format": "squashfs", "compression": "xz", "arch": "x86_64", "block_size": 131072,
         "compressors": {"squashfs": ["xz", "zstd", "gzip"], "erofs": ["lz4hc", "lz4"]}}


def test_image_settings():
    assert settings.check_role("image", "b", IMAGE, {}) == ([], {})
    assert settings.check_role("image", "b", dict(IMAGE, block_size="0", version="2026.12.1+a"), {}) == ([], {})
    sections, _derived = settings.check_role("image", "b", dict(
        IMAGE, version="-x", format="erofs", compression="xz", block_size=100000, arch="x86-64"), {})
    assert sections == [("the settings", [
        "image_version -x must be letters, digits and . _ + - (or empty)",
        "image_compression xz is not one of lz4hc, lz4 (the compressors of erofs)",
        "image_block_size 100000 is not 0 or a power of two from 4096 to 1048576",
        "image_arch x86-64 is not a plain name"])]
    sections, _derived = settings.check_role("image", "b", dict(IMAGE, format="ext4"), {})
    assert sections == [("the settings", ["image_format ext4 is not one of squashfs, erofs"])]


def kernel_settings(tmp_path, **changes):
    (tmp_path / "patches").mkdir(exist_ok=True)
    (tmp_path / "fragments").mkdir(exist_ok=True)
    (tmp_path / "patches" / "soft.patch").write_text("--- a\n+++ b\n")
    (tmp_path / "fragments" / "base.config").write_text("CONFIG_NET=y\n# CONFIG_SOUND is not set\n")
    return dict({"patches": ["soft"], "patch_dir": str(tmp_path / "patches"), "base_config": "tinyconfig",
                 "fragments": ["base"], "fragment_dir": str(tmp_path / "fragments"),
                 "extra_fragments": {"site": "CONFIG_NFS_FS=y\n"}}, **changes)


def test_kernel_settings(tmp_path):
    assert settings.check_role("kernel", "b", kernel_settings(tmp_path), {}) == ([], {})
    sections, _derived = settings.check_role("kernel", "b", kernel_settings(
        tmp_path, patches=["soft", "no-such", "Bad"], base_config="oldconfig", fragments=["base", "gone", "../x"],
        extra_fragments={"site": "CONFIG_NFS_FS=y\nnonsense\n", "Bad": ""}), {})
    assert sections == [("the settings", [
        "kernel_patches: no-such has no file files/patches/no-such.patch; 'Bad' is not a patch name (names are"
        " lower-case letters, digits, - and _, each the file files/patches/<name>.patch of the kernel role)",
        "kernel_base_config oldconfig must be tinyconfig or defconfig or allnoconfig",
        "kernel_fragments: gone has no file files/fragments/gone.config",
        "kernel_fragments: '../x' is not a fragment name (lower-case letters, digits, - and _)",
        "kernel_extra_fragments: 'Bad' is not a fragment name (lower-case letters, digits, - and _)",
        "kernel fragment extra site line 2: 'nonsense' is neither CONFIG_NAME=value nor '# CONFIG_NAME is not set'"])]


def test_lfs_sources_settings(tmp_path):
    (tmp_path / "node.yml").write_text("packages: []\n")
    good = {"include": [{"file": "node.yml", "env": {"A": "1"}}], "include_dir": str(tmp_path),
            "recipe_file": "/r/minimal.yml", "mirrors": ["apt", "file:///m", "/srv/m", "https://m.example/debian"]}
    assert settings.check_role("lfs_sources", "b", good, {}) == ([], {})
    assert settings.check_role("lfs_sources", "b", dict(good, include=[]), {}) == ([], {})
    for include in ([{"file": "node.yml"}, {"file": "kernel.yml"}], [{"file": "node.yml", "extra": 1}],
                    [{"file": "../node.yml"}], {"file": "node.yml"}, [{"file": "node.yml", "env": "A=1"}]):
        sections, _derived = settings.check_role("lfs_sources", "b", dict(good, include=include), {})
        assert sections == [("the settings", [
            "include: %r in /r/minimal.yml must be a list of {file: NAME.yml, env: {...}}, each file one of %s"
            % (include, tmp_path)])]
    for mirrors in ([], ["ftp://m"], "apt", ["apt-x"]):
        sections, _derived = settings.check_role("lfs_sources", "b", dict(good, mirrors=mirrors), {})
        assert sections[0][1][0].startswith("lfs_sources_mirrors: %r must be a list of" % (mirrors,)), sections
