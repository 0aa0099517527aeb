# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of orionos.diskless.file_tree: reads O(src) on the controller, then runs the module once on the host.

The reading and the checks are plugins/module_utils/file_tree.py's.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.orionos.diskless.plugins.module_utils import file_tree


class ActionModule(ActionBase):
    """Read a directory of the controller into the module's files."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src = args.pop("src", None)
        include = args.pop("include", None)
        if isinstance(include, str):
            # As a list option takes it: comma-separated.
            include = [pattern.strip() for pattern in include.split(",") if pattern.strip()]
        if include is not None and (not isinstance(include, list) or not all(isinstance(p, str) for p in include)):
            return dict(result, failed=True, msg="file_tree: include %r is not a list of name patterns" % (include,))
        if src is not None:
            if "files" in args:
                return dict(result, failed=True, msg="file_tree: give src or files, not both")
            mode = args.get("mode", "preserve")
            try:
                found = self._find_needle("files", src)
                fixed = None if mode == "preserve" else file_tree.mode_of(mode, "mode")
                args["files"] = file_tree.read_tree(found, fixed, include)
            except (AnsibleError, file_tree.TreeError, OSError) as exc:
                return dict(result, failed=True, msg="file_tree: src %s: %s; nothing was written" % (src, exc))
        result.update(self._execute_module(module_name="orionos.diskless.file_tree", module_args=args,
                                           task_vars=task_vars))
        # The files' content is not for the log.
        result.pop("invocation", None)
        return result
