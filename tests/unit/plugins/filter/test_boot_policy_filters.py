"""The boot policy filters wrap module_utils/boot_policy.py and name bad values."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.filter.boot_policy import FilterModule
from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine

F = FilterModule().filters()
POLICY = {"channels": {"stable": "2026.11.0", "canary": "2026.11.1"},
          "rules": [{"name": "canary", "match": {"group": "compute"}, "channel": "canary"}],
          "default": {"channel": "stable"}}
IMAGES = [{"version": "2026.11.0", "created": "2026-11-01"}, {"version": "2026.11.1", "created": "2026-11-10"}]


def test_filters_are_registered():
    assert set(F) == {"boot_image", "stable_bucket", "boot_policy_errors", "pinned_policy"}


def test_boot_image_resolves_one_node():
    node = {"name": "n1", "mac": "52-54-00-00-00-01", "groups": ["compute"]}
    result = F["boot_image"](node, POLICY, images=IMAGES)
    assert (result["image"], result["fallback"], result["rule"]) == ("2026.11.1", "2026.11.0", "rule canary")
    assert F["boot_image"](dict(node, groups=[]), POLICY)["image"] == "2026.11.0"


@pytest.mark.parametrize("node,policy,fragment", [
    ({"name": "n1", "mac": "zz"}, POLICY, "'zz'"),
    ({"name": "n1", "mac": "52:54:00:00:00:01", "kernel_args": "a;b"}, POLICY, "'a;b'"),
    ({"name": "n1", "mac": "52:54:00:00:00:01"}, {"default": {"channel": "gone"}}, "channel 'gone'"),
    ("n1", POLICY, "'n1' is not a mapping"),
    ({"name": "n1", "mac": "52:54:00:00:00:01"}, "stable", "'stable' is not a mapping"),
])
def test_boot_image_names_the_bad_value(node, policy, fragment):
    with pytest.raises(AnsibleFilterError) as err:
        F["boot_image"](node, policy)
    assert fragment in str(err.value)


def test_stable_bucket():
    assert F["stable_bucket"]("node017", "canary") == engine.stable_bucket("node017", "canary")
    assert 0 <= F["stable_bucket"]("node017") < 100
    for bad in ("", None, 17):
        with pytest.raises(AnsibleFilterError, match=repr(bad)):
            F["stable_bucket"](bad)
    with pytest.raises(AnsibleFilterError, match="seed True"):
        F["stable_bucket"]("n1", True)


def test_boot_policy_errors_lists_problems():
    node = {"name": "n1", "mac": "52:54:00:00:00:01"}
    assert F["boot_policy_errors"]([node], POLICY, images=IMAGES) == []
    problems = F["boot_policy_errors"]([node, dict(node, name="n2")], {"default": {"image": "9.9"}}, images=IMAGES)
    assert any("node n2: mac 52:54:00:00:00:01" in p for p in problems)
    assert any("policy.default: pinned image '9.9' is not in the image store" in p for p in problems)
    assert F["boot_policy_errors"]([node], "x") == ["policy: 'x' is not a mapping with channels, rules and default"]


def test_pinned_policy_from_node_fields():
    nodes = [{"name": "b", "image": "2026.11.1", "fallback_image": "2026.11.0"}, {"name": "a"},
             {"name": "c", "fallback_image": "2026.11.0"}]
    policy = F["pinned_policy"](nodes, "2026.11.0")
    assert policy == {"channels": {}, "default": {"image": "2026.11.0"}, "rules": [
        {"name": "node-b", "match": {"name": "b"}, "image": "2026.11.1", "fallback": "2026.11.0"},
        {"name": "node-c", "match": {"name": "c"}, "image": "2026.11.0", "fallback": "2026.11.0"}]}
    table = engine.resolve([{"name": "b", "mac": "52:54:00:00:00:02"}, {"name": "a", "mac": "52:54:00:00:00:01"}],
                           policy, images=IMAGES)
    assert (table["b"]["image"], table["b"]["fallback"]) == ("2026.11.1", "2026.11.0")
    assert (table["a"]["image"], table["a"]["fallback"]) == ("2026.11.0", None)
    with pytest.raises(AnsibleFilterError, match="'a' is not a list"):
        F["pinned_policy"]("a", "x")
