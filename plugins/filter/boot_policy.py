# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the boot policy engine: one node's resolution and canary buckets.

Thin wrappers over plugins/module_utils/boot_policy.py; documentation for
each filter lives in the YAML file of the same name beside this one.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine
from ansible_collections.orionos.diskless.plugins.module_utils import netboot


def boot_image(node, policy, images=None, subnets=None, kernel_args=None, previous=None):
    """Return the resolution of one node under a policy."""
    if not isinstance(node, dict):
        raise AnsibleFilterError("boot_image: node %r is not a mapping" % (node,))
    if not isinstance(policy, dict):
        raise AnsibleFilterError("boot_image: policy %r is not a mapping" % (policy,))
    try:
        table = engine.resolve([node], policy, images=images, subnets=subnets,
                               previous=previous, kernel_args=kernel_args)
    except (engine.PolicyError, netboot.NetbootError) as exc:
        raise AnsibleFilterError("boot_image: %s" % exc) from exc
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("boot_image: images %r cannot be read: %s" % (images, exc)) from exc
    return table[node["name"]]


def boot_policy_errors(nodes, policy, images=None, subnets=None, kernel_args=None, previous=None):
    """Return every problem of nodes, a policy and the images they name (empty: usable)."""
    if not isinstance(policy, dict):
        return ["policy: %r is not a mapping with channels, rules and default" % (policy,)]
    try:
        return engine.problems_of(nodes, policy, images=images, subnets=subnets, previous=previous,
                                  kernel_args=kernel_args)
    except netboot.NetbootError as exc:
        raise AnsibleFilterError("boot_policy_errors: %s" % exc) from exc
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("boot_policy_errors: images %r cannot be read: %s" % (images, exc)) from exc


def pinned_policy(nodes, default_image, default_fallback=None):
    """Build a policy from the nodes' own image and fallback_image fields."""
    if not isinstance(nodes, (list, tuple)):
        raise AnsibleFilterError("pinned_policy: nodes %r is not a list" % (nodes,))
    return engine.pinned_policy(nodes, default_image, default_fallback)


def stable_bucket(name, seed=""):
    """Return the 0-99 canary bucket of a name for a seed."""
    if not isinstance(name, str) or not name:
        raise AnsibleFilterError("stable_bucket: name %r is not a non-empty string" % (name,))
    if not isinstance(seed, (str, int)) or isinstance(seed, bool):
        raise AnsibleFilterError("stable_bucket: seed %r is not a string" % (seed,))
    return engine.stable_bucket(name, str(seed))


class FilterModule:
    """OrionOS boot policy filters."""

    def filters(self):
        return {
            "boot_image": boot_image,
            "stable_bucket": stable_bucket,
            "boot_policy_errors": boot_policy_errors,
            "pinned_policy": pinned_policy,
        }
