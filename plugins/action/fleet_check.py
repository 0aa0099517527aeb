# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of orionos.diskless.fleet_check: every check of a role in one call, on the controller.

The checks are the fleet model's (plugins/module_utils/fleet); this plugin
only hands it the task's arguments and the host's gathered facts.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.orionos.diskless.plugins.module_utils.fleet import fields
from ansible_collections.orionos.diskless.plugins.module_utils.fleet import settings as engine

ARGUMENT_SPEC = {
    "role": {"type": "str", "required": True, "choices": sorted(engine.ROLES)},
    "settings": {"type": "dict", "required": True},
    "images": {"type": "list", "elements": "raw"},
    "previous": {"type": "dict", "default": {}},
}


class ActionModule(ActionBase):
    """Check a role's settings with the fleet they serve; fail once, listing every problem."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            return dict(result, failed=True, msg="fleet_check: %s" % "; ".join(validation.error_messages))
        args = validation.validated_parameters
        if not fields.HAS_NETADDR:
            return dict(result, failed=True, msg=str(_netaddr_error()))
        host = task_vars.get("inventory_hostname")
        facts = task_vars.get("ansible_facts") or {}
        try:
            extra = {"images": args.get("images"), "previous": args["previous"]} if args["role"] == "boot_server" else {}
            sections, derived = engine.check_role(args["role"], host, args["settings"], facts, **extra)
        except (TypeError, ValueError) as exc:
            return dict(result, failed=True, msg="%s: cannot check the settings: %s" % (args["role"], exc))
        result["changed"] = False
        if sections:
            lines = []
            for what, problems in sections:
                verb = "have" if what.endswith("settings") else "has"
                lines.append("%s: %s %s %d problem(s); nothing was changed:" % (args["role"], what, verb, len(problems)))
                lines.extend(problems)
            # Only the problems: what the checks worked out is not to be used.
            result.update(failed=True, msg=lines, problems=[p for _what, ps in sections for p in ps], fleet={})
        else:
            result.update(problems=[], fleet=derived)
        return result


def _netaddr_error():
    try:
        fields.require_netaddr()
    except fields.FieldError as exc:
        return exc
    return ""
