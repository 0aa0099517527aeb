# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes the modules of orionos.diskless share.

A module extends this fragment with ``orionos.diskless.attributes`` and keeps
only what is its own: ansible-doc merges an attribute the module also lists key
by key, so a module's ``details`` (or a different ``support``) is added to the
entry below and wins over it. A module run by an action plugin also extends
``orionos.diskless.attributes.action``.
"""

from __future__ import annotations


class ModuleDocFragment:
    """Check mode, diff mode and idempotence (full unless a module says otherwise), and the action attribute."""

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Runs with C(--check) too, reporting whether it would change anything while changing nothing.
    support: full
  diff_mode:
    description: With C(--diff), returns what it changed, or in check mode what it would change.
    support: full
  idempotent:
    description: Run again with the same arguments (outside check mode), it reports no change the second time.
    support: full
"""

    # For a module whose action plugin of the same name does the work on the controller.
    ACTION = r"""
attributes:
  action:
    description: An action plugin of the same name does the work on the controller.
    support: full
"""
