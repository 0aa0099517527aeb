# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter over the kernel configuration check (plugins/module_utils/kconfig.py);
its documentation is kconfig_unmet.yml beside this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import kconfig


def kconfig_unmet(final_config, fragments):
    """The options of the fragments that the final configuration does not have as asked."""
    if not isinstance(final_config, str):
        raise AnsibleFilterError("kconfig_unmet: the final configuration %r is not text" % (final_config,))
    if not isinstance(fragments, dict) or not all(isinstance(v, str) for v in fragments.values()):
        raise AnsibleFilterError("kconfig_unmet: fragments %r is not a mapping of name to text" % (fragments,))
    try:
        return kconfig.unmet(final_config, fragments)
    except kconfig.KconfigError as exc:
        raise AnsibleFilterError("kconfig_unmet: %s" % exc) from exc


class FilterModule:
    """OrionOS kernel configuration filters."""

    def filters(self):
        return {"kconfig_unmet": kconfig_unmet}
