# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel configuration fragments and the check that every requested option held.

``make olddefconfig`` silently drops an option that does not exist or whose
dependencies are not met. After it ran, every option a fragment asks for is
compared with the final ``.config``: an option asked to be ``y``, ``m`` or a
value must have exactly that value, and ``# CONFIG_X is not set`` must not be
set. Anything else is reported naming the fragment, the option and both values.
"""

from __future__ import annotations

import re

_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


class KconfigError(ValueError):
    pass


def parse(text, where="config"):
    """``{option: value}`` of a fragment or a .config; unset options have the value ``None``.

    Comments and blank lines are skipped; any other line is an error naming the place.
    """
    options = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        match = _SET_RE.match(line)
        if match:
            options[match.group(1)] = match.group(2)
            continue
        match = _UNSET_RE.match(line)
        if match:
            options[match.group(1)] = None
            continue
        if line and not line.startswith("#"):
            raise KconfigError("%s line %d: %r is neither CONFIG_NAME=value nor '# CONFIG_NAME is not set'"
                               % (where, number, raw))
    return options


def unmet(final_text, fragments):
    """Problems of a final .config against fragments (``{name: text}``, applied in name order)."""
    final = parse(final_text, "the final configuration")
    wanted = {}
    for name in sorted(fragments):
        for option, value in parse(fragments[name], "fragment %s" % name).items():
            wanted[option] = (value, name)
    problems = []
    for option in sorted(wanted):
        value, name = wanted[option]
        have = final.get(option)
        if value is None or value == "n":
            if have not in (None, "n"):
                problems.append("fragment %s: %s should not be set, the final configuration has %s=%s"
                                % (name, option, option, have))
        elif have != value:
            problems.append("fragment %s: %s=%s was dropped; the final configuration has %s "
                            "(no such option in this kernel, or a dependency is not set)"
                            % (name, option, value, "%s=%s" % (option, have) if have is not None else "it unset"))
    return problems
