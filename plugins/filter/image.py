# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image filters over plugins/module_utils/image_store.py; documented in image_system.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.orionos.diskless.plugins.module_utils import image_store


def image_system(passwd, group, shells=(), services=()):
    """A manifest's system section from a root's /etc/passwd and /etc/group, its shells and services."""
    if not isinstance(passwd, str) or not isinstance(group, str):
        raise AnsibleFilterError("image_system: passwd and group must be the text of the root's /etc/passwd and "
                                 "/etc/group")
    try:
        return image_store.system_of_root(passwd, group, list(shells or []), list(services or []))
    except image_store.ImageStoreError as exc:
        raise AnsibleFilterError("image_system: %s" % exc) from exc


class FilterModule:
    """OrionOS image filters."""

    def filters(self):
        return {"image_system": image_system}
