"""The boot_server role's default kernel arguments, rendered as Ansible renders them."""

import os

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULTS = os.path.join(ROOT, "roles", "boot_server", "defaults", "main.yml")


def log_arg(**inventory):
    with open(DEFAULTS, encoding="utf-8") as handle:
        args = yaml.safe_load(handle)["boot_server_node_args"]
    arg = [a for a in args if a.startswith("orion.log=")][0]
    variables = {"boot_server_service_address": "", "__boot_server_peer_addresses": ["10.0.0.2", "10.0.0.3"]}
    variables.update(inventory)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(arg))


@pytest.mark.parametrize("inventory, want", [
    ({}, "orion.log=10.0.0.2"),
    ({"log_server_port": 514}, "orion.log=10.0.0.2"),
    ({"log_server_port": "5514"}, "orion.log=10.0.0.2:5514"),
    ({"log_server_port": 5514, "boot_server_service_address": "10.0.0.10"}, "orion.log=10.0.0.10:5514"),
])
def test_orion_log_carries_the_port_only_when_it_is_not_514(inventory, want):
    assert log_arg(**inventory) == want
