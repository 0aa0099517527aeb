# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one model of an OrionOS fleet.

Boot servers, diskless nodes, the node subnet and the boot settings of each
server are parsed and checked here, and only here:

- ``fields``: the rule for one value each (a MAC, a node name, a port, an
  address on a subnet, a kernel argument, ...), written once;
- ``model``: servers, nodes and the boot network built from raw mappings,
  every problem collected at once, each naming the node or server, the
  field and the bad value;
- ``inventory``: the inventory's ``orion_*`` variables turned into those raw
  mappings, so that a role applied alone finds its inputs;
- ``settings``: the checks of a boot server's own settings.

Filters, modules and roles call these functions; a value that passed them
is trusted by every later step (a MAC is normalized once, on the way in).
"""
