"""Unit tests of the boot policy engine: selectors, rules, fallbacks, validation, rendering."""

import json
import os
import random
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine
from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils import netboot
from ansible_collections.orionos.diskless.plugins.module_utils import tree_swap

SERVERS = ["10.0.0.10", "10.0.0.2", "10.0.0.3"]


def images():
    return {
        "2026.10.0": engine.Image("2026.10.0", created="2026-10-01T00:00:00Z"),
        "2026.11.0": engine.Image("2026.11.0", created="2026-11-01T00:00:00Z"),
        "2026.11.1": engine.Image("2026.11.1", created="2026-11-10T00:00:00Z"),
        "2026.11.2": engine.Image("2026.11.2", created="2026-11-20T00:00:00Z", state="deprecated"),
        "arm.1": engine.Image("arm.1", arch="aarch64", created="2026-11-02T00:00:00Z"),
    }


def node(name="n1", mac="52:54:00:00:00:01", ip="10.0.0.11", **extra):
    return dict(dict(name=name, mac=mac, ip=ip), **extra)


NODES = [
    node("n1", groups=["compute"], labels={"rack": "r1"}, firmware="bios"),
    node("n2", mac="52-54-00-00-00-02", ip="10.0.1.12", groups=["io"], labels=["rack=r2"],
         firmware="uefi"),
    node("arm1", mac="5254.0000.0003", ip="10.0.0.13", arch="aarch64"),
    node("gpu7", mac=["52:54:00:00:00:07", "52:54:00:00:01:07"], ip="fd00::7", groups=["compute", "gpu"]),
]

POLICY = {
    "channels": {"stable": {"x86_64": "2026.11.0", "aarch64": "arm.1"}, "canary": "2026.11.1"},
    "rules": [],
    "default": {"channel": "stable"},
}


def policy(*rules, **extra):
    return dict(POLICY, rules=list(rules), **extra)


def resolve(nodes=None, pol=None, **kwargs):
    kwargs.setdefault("images", images())
    kwargs.setdefault("subnets", ["10.0.0.0/24", "10.0.1.0/24", "fd00::/64"])
    return engine.resolve(NODES if nodes is None else nodes, pol or POLICY, **kwargs)


# ------------------------------------------------------------------ selectors

@pytest.mark.parametrize("match,expected", [
    ({"mac": "52:54:00:00:00:02"}, ["n2"]),
    ({"mac": ["52-54-00-00-01-07"]}, ["gpu7"]),          # any MAC of the node, any notation
    ({"name": "n*"}, ["n1", "n2"]),
    ({"name": ["gpu?", "arm[0-9]"]}, ["arm1", "gpu7"]),
    ({"group": "compute"}, ["gpu7", "n1"]),
    ({"group": ["io", "gpu"]}, ["gpu7", "n2"]),
    ({"label": {"rack": "r2"}}, ["n2"]),
    ({"label": ["rack=r1"]}, ["n1"]),
    ({"subnet": "10.0.1.0/24"}, ["n2"]),
    ({"subnet": ["10.0.0.0/24", "fd00::/64"]}, ["arm1", "gpu7", "n1"]),
    ({"arch": "aarch64"}, ["arm1"]),
    ({"firmware": "uefi"}, ["n2"]),
    ({"group": "compute", "name": "n*"}, ["n1"]),          # all selectors must match
    ({"group": "compute", "label": {"rack": "r9"}}, []),
])
def test_each_selector(match, expected):
    rule = {"name": "r", "match": match, "channel": "canary"}
    nodes = [n for n in NODES if n.get("arch") != "aarch64"] if "arch" not in match else NODES
    if "arch" in match:
        rule = {"name": "r", "match": match, "image": "arm.1"}
    table = resolve(nodes, policy(rule))
    took = sorted(name for name, entry in table.items() if entry["rule"] == "rule r")
    assert took == sorted(n for n in expected if n in table)


def test_first_matching_rule_wins_and_default_takes_the_rest():
    table = resolve(pol=policy(
        {"name": "pin-n1", "match": {"name": "n1"}, "image": "2026.10.0", "profile": "debug"},
        {"name": "compute", "match": {"group": "compute"}, "channel": "canary"},
    ))
    assert table["n1"]["image"] == "2026.10.0" and table["n1"]["rule"] == "rule pin-n1"
    assert table["n1"]["profile"] == "debug" and table["n1"]["channel"] is None
    assert table["gpu7"]["image"] == "2026.11.1" and table["gpu7"]["rule"] == "rule compute"
    assert table["n2"]["rule"] == "default" and table["n2"]["reason"] == "no rule matched"
    assert table["n2"]["image"] == "2026.11.0" and table["n2"]["profile"] == "default"
    assert table["arm1"]["image"] == "arm.1"      # per-arch channel


def test_kernel_args_are_global_then_rule_then_node():
    nodes = [node("n1", kernel_args="nosmt quiet")]
    table = resolve(nodes, policy({"match": {"name": "n1"}, "channel": "canary",
                                   "kernel_args": ["debug"]}), kernel_args=["console=ttyS0"])
    assert table["n1"]["kernel_args"] == ["console=ttyS0", "debug", "nosmt", "quiet"]


def test_percent_zero_and_hundred():
    nodes = [node("n%03d" % i, mac="52:54:00:00:01:%02x" % i, ip="10.0.0.%d" % (i + 20)) for i in range(50)]
    none = resolve(nodes, policy({"name": "c", "percent": 0, "channel": "canary"}))
    assert {e["rule"] for e in none.values()} == {"default"}
    every = resolve(nodes, policy({"name": "c", "percent": 100, "channel": "canary"}))
    assert {e["rule"] for e in every.values()} == {"rule c"}


def test_rule_seed_defaults_to_name_and_reason_names_the_bucket():
    table = resolve([node("n1")], policy({"name": "c", "percent": 100, "match": {"name": "n1"},
                                          "channel": "canary"}))
    assert table["n1"]["reason"] == "selectors matched"
    nodes = [node("n%03d" % i, mac="52:54:00:00:01:%02x" % i, ip="10.0.0.%d" % (i + 20)) for i in range(60)]
    table = resolve(nodes, policy({"name": "c", "percent": 50, "channel": "canary"}))
    for name, entry in table.items():
        bucket = engine.stable_bucket(name, "c")
        if bucket < 50:
            assert entry["reason"] == "bucket %d < percent 50" % bucket
        else:
            assert entry["rule"] == "default"


# ------------------------------------------------------------------ fallbacks

def test_fallback_is_the_newest_older_published_image_of_the_arch():
    table = resolve(pol=policy({"match": {"name": "n1"}, "channel": "canary"}))
    assert table["n1"]["image"] == "2026.11.1" and table["n1"]["fallback"] == "2026.11.0"
    assert table["n2"]["fallback"] == "2026.10.0"          # 2026.11.0's older one
    assert table["arm1"]["fallback"] is None               # nothing older for aarch64


def test_deprecated_images_are_never_chosen_as_fallback():
    imgs = images()
    imgs["2026.11.0"].state = "deprecated"
    table = resolve(pol=policy({"match": {"name": "n1"}, "channel": "canary"}), images=imgs)
    assert table["n1"]["fallback"] == "2026.10.0"


def test_fallback_follows_what_the_node_booted_before():
    first = resolve(pol=policy())
    assert first["n1"]["image"] == "2026.11.0"
    moved = resolve(pol=policy({"match": {"name": "n1"}, "image": "2026.11.2"}), previous=first)
    assert moved["n1"]["image"] == "2026.11.2"
    assert moved["n1"]["fallback"] == "2026.11.0" and moved["n1"]["fallback_reason"] == "previous image"
    # A later run with the same target keeps that fallback (it does not drift to 2026.11.1).
    again = resolve(pol=policy({"match": {"name": "n1"}, "image": "2026.11.2"}), previous=moved)
    assert again["n1"]["fallback"] == "2026.11.0"
    # A previous image that is gone from the store is not a fallback.
    imgs = images()
    del imgs["2026.10.0"]
    back = resolve(pol=policy({"match": {"name": "n2"}, "image": "2026.11.1"}), images=imgs,
                   previous={"n2": {"image": "2026.10.0"}})
    assert back["n2"]["fallback"] == "2026.11.0" and back["n2"]["fallback_reason"] == "newest older image"


def test_a_rule_can_pin_the_fallback():
    table = resolve(pol=policy({"name": "p", "match": {"name": "n1"}, "image": "2026.11.1", "fallback": "2026.10.0"}),
                    previous={"n1": {"image": "2026.11.0"}})
    assert table["n1"]["fallback"] == "2026.10.0" and table["n1"]["fallback_reason"] == "pinned by the rule"
    # The same image as the one booted is no fallback at all.
    same = resolve(pol=policy({"name": "p", "match": {"name": "n1"}, "image": "2026.11.1", "fallback": "2026.11.1"}))
    assert same["n1"]["fallback"] == "2026.11.0"


def test_without_a_store_versions_are_taken_on_trust():
    table = engine.resolve([node("n1")], {"channels": {"s": "9.9"}, "default": {"channel": "s"}})
    assert table["n1"]["image"] == "9.9" and table["n1"]["fallback"] is None


# ------------------------------------------------------------------ validation

BAD_CASES = [
    # (id, nodes, policy, kwargs, fragments the message must contain)
    ("malformed-mac", [node(mac="52:54:00:zz:00:01")], None, {}, ["node n1", "mac", "52:54:00:zz:00:01"]),
    ("multicast-mac", [node(mac="01:00:5e:00:00:01")], None, {}, ["node n1", "multicast"]),
    ("duplicate-mac-other-notation", [node(), node("n2", mac="5254.0000.0001", ip="10.0.0.12")], None, {},
     ["node n2", "52:54:00:00:00:01", "already used by node n1"]),
    ("missing-mac", [node(mac=None)], None, {}, ["node n1", "mac is missing"]),
    ("duplicate-name", [node(), node(mac="52:54:00:00:00:02", ip="10.0.0.12")], None, {},
     ["node n1", "name is used twice"]),
    ("bad-name", [node(name="N_1")], None, {}, ["'N_1'", "not a valid host name"]),
    ("name-injection", [node(name="n1;reboot")], None, {}, ["'n1;reboot'", "name"]),
    ("duplicate-ip", [node(), node("n2", mac="52:54:00:00:00:02")], None, {},
     ["node n2", "ip 10.0.0.11", "already used by node n1"]),
    ("bad-ip", [node(ip="10.0.0.300")], None, {}, ["node n1", "ip '10.0.0.300'"]),
    ("ip-outside-subnets", [node(ip="192.168.5.5")], None, {}, ["node n1", "ip 192.168.5.5", "outside every node subnet"]),
    ("overlapping-subnets", [node()], None,
     {"subnets": [{"subnet": "10.0.0.0/16", "gateway": "10.0.0.1"}, {"subnet": "10.0.0.0/24", "gateway": "10.0.0.254"}]},
     ["subnets[1]", "overlaps subnets[0]", "different settings"]),
    ("subnet-host-bits", [node()], None, {"subnets": ["10.0.0.1/24"]}, ["subnets[0]", "host bits"]),
    ("bad-arch", [node(arch="sparc")], None, {}, ["node n1", "arch 'sparc'"]),
    ("bad-firmware", [node(firmware="coreboot")], None, {}, ["node n1", "firmware 'coreboot'"]),
    ("node-karg-newline", [node(kernel_args="quiet\nchain http://evil")], None, {}, ["node n1: kernel_args", "line break"]),
    ("node-karg-semicolon", [node(kernel_args=["a;reboot"])], None, {}, ["node n1: kernel_args", "'a;reboot'"]),
    ("node-karg-ipxe-var", [node(kernel_args=["x=${net0/ip}"])], None, {}, ["node n1: kernel_args", "${net0/ip}"]),
    ("global-karg-backtick", [node()], None, {"kernel_args": ["`id`"]}, ["kernel_args", "'`id`'"]),
    ("unknown-node-field", [node(rack="r1")], None, {}, ["node n1", "unknown field 'rack'"]),
    ("bad-label", [node(labels={"rack": "r 1"})], None, {}, ["node n1", "label rack value 'r 1'"]),
    ("bad-group", [node(groups=["a&b"])], None, {}, ["node n1", "group 'a&b'"]),
    ("unknown-channel-rule", None, policy({"name": "c", "channel": "beta"}), {}, ["rule c", "channel 'beta' is not defined"]),
    ("unknown-channel-default", None, dict(POLICY, default={"channel": "nightly"}), {},
     ["policy.default", "channel 'nightly'"]),
    ("missing-default", None, {"channels": POLICY["channels"]}, {}, ["policy.default", "required"]),
    ("default-with-selectors", None, dict(POLICY, default={"channel": "stable", "match": {"group": "x"}}), {},
     ["policy.default", "unknown field 'match'"]),
    ("both-channel-and-image", None, policy({"name": "c", "channel": "canary", "image": "2026.11.0"}), {},
     ["rule c", "exactly one of channel or image"]),
    ("pinned-image-missing", None, policy({"name": "p", "match": {"name": "n1"}, "image": "2025.01.0"}), {},
     ["rule p", "pinned image '2025.01.0' is not in the image store"]),
    ("pinned-image-other-arch-rule", None, policy({"name": "p", "match": {"arch": "x86_64"}, "image": "arm.1"}), {},
     ["rule p", "'arm.1' is for aarch64"]),
    ("pinned-image-other-arch-node", None, policy({"name": "p", "match": {"name": "n1"}, "image": "arm.1"}), {},
     ["node n1", "rule p", "arm.1 for aarch64", "node is x86_64"]),
    ("channel-missing-arch", [node(arch="riscv64")], None, {}, ["node n1", "channel stable", "no image for arch riscv64"]),
    ("channel-version-missing", None, dict(POLICY, channels={"stable": "2030.1"}), {},
     ["channel stable", "'2030.1' is not in the image store"]),
    ("channel-arch-mismatch", None, dict(POLICY, channels={"stable": {"aarch64": "2026.11.0"}}), {},
     ["channel stable", "image for x86_64, not aarch64"]),
    ("percent-too-big", None, policy({"name": "c", "percent": 150, "channel": "canary"}), {},
     ["rule c", "percent 150"]),
    ("percent-negative", None, policy({"name": "c", "percent": -1, "channel": "canary"}), {},
     ["rule c", "percent -1"]),
    ("percent-not-a-number", None, policy({"name": "c", "percent": "10%", "channel": "canary"}), {},
     ["rule c", "percent '10%'"]),
    ("unknown-selector", None, policy({"name": "c", "match": {"rack": "r1"}, "channel": "canary"}), {},
     ["rule c", "unknown selector 'rack'"]),
    ("unknown-rule-field", None, policy({"name": "c", "chanel": "canary", "channel": "canary"}), {},
     ["rule c", "unknown field 'chanel'"]),
    ("shadowed-by-catch-all", None, policy({"name": "all", "channel": "stable"},
                                           {"name": "late", "match": {"group": "io"}, "channel": "canary"}), {},
     ["rule late", "can never match", "rule all"]),
    ("shadowed-by-same-selectors", None, policy({"name": "a", "match": {"group": "io"}, "channel": "stable"},
                                                {"name": "b", "match": {"group": ["io"]}, "channel": "canary"}), {},
     ["rule b", "can never match", "rule a"]),
    ("bad-subnet-selector", None, policy({"name": "s", "match": {"subnet": "10.0.0.0/33"}, "channel": "canary"}), {},
     ["rule s: match.subnet", "'10.0.0.0/33'"]),
    ("bad-mac-selector", None, policy({"name": "m", "match": {"mac": "nope"}, "channel": "canary"}), {},
     ["rule m: match.mac", "'nope'"]),
    ("bad-name-glob", None, policy({"name": "g", "match": {"name": "n1$(id)"}, "channel": "canary"}), {},
     ["rule g: match.name", "'n1$(id)'"]),
    ("rule-karg-injection", None, policy({"name": "k", "channel": "canary", "kernel_args": "quiet || shell"}), {},
     ["rule k: kernel_args", "'||'"]),
    ("profile-injection", None, policy({"name": "p", "channel": "canary", "profile": "x\nshell"}), {},
     ["rule p", "profile"]),
    ("duplicate-rule-name", None, policy({"name": "a", "match": {"group": "io"}, "channel": "stable"},
                                         {"name": "a", "match": {"group": "gpu"}, "channel": "canary"}), {},
     ["rule a", "name is used twice"]),
    ("bad-channel-name", None, dict(POLICY, channels={"stable": "2026.11.0", "can ary": "2026.11.1"}), {},
     ["policy.channels", "'can ary'"]),
    ("fallback-missing", None, policy({"name": "f", "match": {"name": "n1"}, "channel": "canary", "fallback": "1999.1"}),
     {}, ["rule f", "fallback image '1999.1' is not in the image store"]),
    ("fallback-other-arch", None, policy({"name": "f", "match": {"name": "n1"}, "channel": "canary", "fallback": "arm.1"}),
     {}, ["node n1", "rule f", "fallback arm.1 for aarch64"]),
    ("bad-pinned-version", None, policy({"name": "p", "image": "../etc"}), {}, ["rule p", "image '../etc'"]),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(case, tmp_path):
    _case_id, nodes, pol, kwargs, fragments = case
    dest = str(tmp_path / "nodes")
    good = resolve()
    tree_swap.swap_tree(dest, engine.render_tree(good, SERVERS, images()))
    before = {n: tree_swap.read_tree(tree_swap.current_target(dest)) for n in ("x",)}
    with pytest.raises(engine.PolicyError) as err:
        table = resolve(nodes, pol, **kwargs)
        tree_swap.swap_tree(dest, engine.render_tree(table, SERVERS, images()))
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert {n: tree_swap.read_tree(tree_swap.current_target(dest)) for n in ("x",)} == before


def test_every_problem_is_reported_at_once():
    with pytest.raises(engine.PolicyError) as err:
        resolve([node(mac="bad"), node("n2", ip="10.0.0.11", mac="52:54:00:00:00:02", arch="vax")],
                policy({"name": "c", "percent": 101, "channel": "nope"}))
    problems = err.value.problems
    assert len(problems) >= 4
    assert any("node n1" in p and "mac" in p for p in problems)
    assert any("node n2" in p and "arch 'vax'" in p for p in problems)
    assert any("rule c" in p and "percent 101" in p for p in problems)
    assert any("rule c" in p and "channel 'nope'" in p for p in problems)


def test_at_least_25_distinct_bad_input_cases():
    assert len({c[0] for c in BAD_CASES}) >= 25


# ------------------------------------------------------------------ rendering

def test_script_tries_image_then_fallback_from_every_server():
    table = resolve(pol=policy({"match": {"name": "n1"}, "channel": "canary"}), kernel_args=["console=ttyS0"])
    script = engine.render_script(table["n1"], SERVERS, images())
    kernels = re.findall(r"^kernel (\S+) (.*) \|\| goto (\S+)$", script, re.M)
    assert [k[0] for k in kernels] == (
        ["http://%s/boot/images/2026.11.1/vmlinuz" % s for s in SERVERS]
        + ["http://%s/boot/images/2026.11.0/vmlinuz" % s for s in SERVERS])
    assert [k[2] for k in kernels] == ["try2", "try3", "try4", "try5", "try6", "failed"]
    assert "orion.node=n1 orion.image=2026.11.1 orion.servers=10.0.0.10,10.0.0.2,10.0.0.3" in kernels[0][1]
    assert kernels[0][1].endswith("orion.profile=default console=ttyS0")
    assert kernels[3][1].endswith("orion.fallback=1")
    assert script.startswith("#!ipxe\n") and "echo OrionOS node n1 boots image 2026.11.1" in script


def test_script_port_and_failure_action():
    table = resolve()
    script = engine.render_script(table["n2"], ["10.0.0.2"], images(), http_port=8080, failure="shell")
    assert "http://10.0.0.2:8080/boot/images/2026.11.0/vmlinuz" in script
    assert script.rstrip().endswith("shell")


def test_render_refuses_a_server_that_could_break_out():
    with pytest.raises(engine.PolicyError, match="servers"):
        engine.render_script(resolve()["n1"], ["10.0.0.2 || shell"], images())


def test_tree_has_scripts_mac_links_reservations_and_table():
    table = resolve()
    files = engine.render_tree(table, SERVERS, images(), channels=POLICY["channels"])
    assert files["52-54-00-00-00-07.ipxe"] == ("link", "gpu7.ipxe")
    assert files["52-54-00-00-01-07.ipxe"] == ("link", "gpu7.ipxe")
    hosts = files["dhcp-hosts"].decode().splitlines()
    assert "52:54:00:00:00:07,52:54:00:00:01:07,[fd00::7],gpu7" in hosts
    assert "52:54:00:00:00:02,10.0.1.12,n2" in hosts
    data = json.loads(files["resolution.json"])
    assert data["nodes"]["n2"]["image"] == "2026.11.0" and data["channels"] == POLICY["channels"]


def test_boot_changes_lists_only_nodes_whose_target_moves():
    first = resolve()
    second = resolve(pol=policy({"match": {"name": "n2"}, "channel": "canary"}), previous=first)
    changes = engine.boot_changes(first, second)
    assert list(changes) == ["n2"]
    assert changes["n2"] == ("2026.11.0 (fallback 2026.10.0)", "2026.11.1 (fallback 2026.11.0)")


def test_images_read_from_a_store(tmp_path):
    root = tmp_path / "store"
    version = root / "images" / "2026.11.0"
    version.mkdir(parents=True)
    (version / "bzImage").write_bytes(b"k")
    (version / "initrd.cpio.gz").write_bytes(b"i")
    (version / "root.erofs").write_bytes(b"r")
    manifest = store.build_manifest(str(version), "2026.11.0", extra={
        "arch": "aarch64", "created": "2026-11-01T00:00:00Z",
        "boot": {"kernel": "bzImage", "initramfs": "initrd.cpio.gz"}})
    (version / "manifest.json").write_text(store.dump_manifest(manifest))
    (root / "images" / "broken").mkdir()
    (root / "state").mkdir()
    (root / "state" / "images.json").write_text(json.dumps({"versions": {"2026.11.0": {"state": "deprecated"}}}))
    imgs, problems = engine.load_images(str(root))
    assert list(imgs) == ["2026.11.0"] and "image broken" in problems[0]
    image = imgs["2026.11.0"]
    assert (image.arch, image.kernel, image.initramfs, image.root, image.state) == (
        "aarch64", "bzImage", "initrd.cpio.gz", "root.erofs", "deprecated")
    table = engine.resolve([node(arch="aarch64")], {"channels": {"s": "2026.11.0"}, "default": {"channel": "s"}},
                           images=imgs)
    script = engine.render_script(table["n1"], ["10.0.0.2"], imgs)
    assert "/2026.11.0/bzImage initrd=initrd.cpio.gz " in script
    assert "initrd http://10.0.0.2/boot/images/2026.11.0/initrd.cpio.gz" in script


def test_referenced_versions_names_every_referrer():
    pol = policy({"name": "p", "image": "2026.10.0", "match": {"name": "n1"}})
    refs = engine.referenced_versions(pol, {"n2": {"image": "2026.11.0", "fallback": "2026.10.0"}})
    assert refs["2026.10.0"] == ["rule p pin", "node n2 fallback"]
    assert "channel stable (x86_64)" in refs["2026.11.0"] and "node n2 image" in refs["2026.11.0"]
    assert refs["2026.11.1"] == ["channel canary"]


# ------------------------------------------------------------------ properties

HEX = st.integers(min_value=0, max_value=2 ** 48 - 1).map(lambda v: v & ~(1 << 40)).filter(lambda v: v != 0)


def notations(value):
    digits = "%012x" % value
    pairs = [digits[i:i + 2] for i in range(0, 12, 2)]
    return [":".join(pairs), "-".join(pairs).upper(), ".".join(digits[i:i + 4] for i in range(0, 12, 4)),
            digits.upper(), "01-" + "-".join(pairs)]


@given(HEX)
def test_mac_normalization_is_idempotent_and_notation_blind(value):
    forms = {netboot.normalize_mac(raw) for raw in notations(value)}
    assert len(forms) == 1
    mac = forms.pop()
    assert netboot.normalize_mac(mac) == mac and mac == mac.lower()


NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}[a-z0-9]\Z")


@settings(max_examples=40, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=30, unique=True), st.randoms(use_true_random=False))
def test_resolution_does_not_depend_on_inventory_order(names, rnd):
    nodes = [node(n, mac="52:54:00:01:%02x:%02x" % (i // 256, i % 256), ip="10.0.%d.%d" % (i // 200, i % 200 + 20),
                  groups=["compute"] if i % 3 else ["io"]) for i, n in enumerate(names)]
    pol = policy({"name": "c", "match": {"group": "compute"}, "percent": 30, "channel": "canary"},
                 {"name": "io", "match": {"group": "io"}, "image": "2026.10.0"})
    first = resolve(nodes, pol)
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    second = resolve(shuffled, pol)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert engine.render_tree(first, SERVERS, images()) == engine.render_tree(second, SERVERS, images())


@settings(max_examples=60, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=60, unique=True), st.integers(0, 100), st.integers(0, 100),
       st.text(min_size=0, max_size=8, alphabet="abcdef0123456789"))
def test_raising_percent_never_removes_a_node(names, low, high, seed):
    low, high = min(low, high), max(low, high)
    nodes = [node(n, mac="52:54:00:02:%02x:%02x" % (i // 256, i % 256), ip=None) for i, n in enumerate(names)]

    def taken(percent):
        table = engine.resolve(nodes, policy({"name": "c", "seed": seed or "s", "percent": percent,
                                              "channel": "canary"}), images=images())
        return {n for n, e in table.items() if e["rule"] == "rule c"}

    assert taken(low) <= taken(high)


@pytest.mark.parametrize("percent", [1, 5, 10, 33, 50, 90])
def test_canary_share_is_within_three_points_for_10000_random_names(percent):
    rnd = random.Random(percent)
    names = {"".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _char in range(12)) for _name in range(10000)}
    share = sum(engine.stable_bucket(n, "canary-seed") < percent for n in names) * 100.0 / len(names)
    assert abs(share - percent) <= 3, share


@given(st.text(min_size=1, max_size=20), st.text(max_size=10))
def test_stable_bucket_is_a_stable_number_below_100(name, seed):
    bucket = engine.stable_bucket(name, seed)
    assert 0 <= bucket < 100 and engine.stable_bucket(name, seed) == bucket


BREAKOUT = set("\n\r;|&$`'\"<>(){}\\ \t#!*?")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=24))
def test_rendered_scripts_never_carry_a_breakout_character_from_a_kernel_arg(arg):
    assume(arg.strip() != "")
    try:
        table = resolve([node("n1", kernel_args=[arg])], policy())
    except engine.PolicyError as exc:
        assert "node n1: kernel_args" in str(exc)
        return
    script = engine.render_script(table["n1"], SERVERS, images())
    assert not (set(arg) & BREAKOUT)
    # The argument is one word of each kernel line, which still ends with its
    # goto; every other line is what the script has without the argument.
    plain = engine.render_script(resolve([node("n1")], policy())["n1"], SERVERS, images())
    lines, plain_lines = script.splitlines(), plain.splitlines()
    assert len(lines) == len(plain_lines)
    for line, without in zip(lines, plain_lines):
        if line.startswith("kernel "):
            words = line.split(" ")
            assert words[-2:] == without.split(" ")[-2:] and words[-3] == "||"
            at = words.index("orion.profile=default") + 1
            assert words[at] == arg
            assert " ".join(words[:at] + words[at + 1:]) == without
        else:
            assert line == without


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=16))
def test_rendered_scripts_never_carry_a_breakout_character_from_a_profile(profile):
    try:
        table = resolve([node("n1")], policy({"match": {"name": "n1"}, "channel": "canary", "profile": profile}))
    except engine.PolicyError as exc:
        assert "profile" in str(exc)
        return
    assert not (set(profile) & BREAKOUT)
    assert "orion.profile=%s" % profile in engine.render_script(table["n1"], SERVERS, images())


def test_swap_tree_is_atomic_and_idempotent(tmp_path):
    dest = str(tmp_path / "nodes")
    os.makedirs(dest)                                              # an empty directory is taken over
    files = engine.render_tree(resolve(), SERVERS, images())
    assert tree_swap.swap_tree(dest, files) is True
    assert os.path.islink(dest) and tree_swap.read_tree(dest) == files
    assert tree_swap.swap_tree(dest, files) is False
    assert sorted(os.listdir(tmp_path)) == sorted(["nodes", ".nodes.lock", os.readlink(dest)])


@pytest.mark.parametrize("stage", ["written", "flushed"])
def test_a_run_stopped_before_the_swap_leaves_the_previous_set(tmp_path, stage):
    dest = str(tmp_path / "nodes")
    old = engine.render_tree(resolve(), SERVERS, images())
    tree_swap.swap_tree(dest, old)
    new = engine.render_tree(resolve(pol=policy({"match": {"arch": "x86_64"}, "channel": "canary"})), SERVERS, images())

    def stop(at):
        if at == stage:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tree_swap.swap_tree(dest, new, hook=stop)
    assert tree_swap.read_tree(dest) == old
    assert tree_swap.swap_tree(dest, new) is True
    assert tree_swap.read_tree(dest) == new
    assert sorted(os.listdir(tmp_path)) == sorted(["nodes", ".nodes.lock", os.readlink(dest)])


def test_images_as_the_image_module_lists_them():
    listed = [{"version": "2026.11.0", "arch": "x86_64", "created": None, "state": "published", "kernel": "bzImage",
               "initramfs": "initrd.img", "root": None, "files": 3, "size": 10, "referenced_by": [], "problem": None},
              {"version": "broken", "state": "published", "arch": None, "problem": "manifest.json: cannot read"}]
    imgs = engine.coerce_images(listed)
    assert list(imgs) == ["2026.11.0"] and imgs["2026.11.0"].kernel == "bzImage"
    assert imgs["2026.11.0"].created == "" and imgs["2026.11.0"].arch == "x86_64"
