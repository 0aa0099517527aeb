#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: build_package
short_description: Plan a profile of source recipes, build one package with stamps, or write the SBU report
version_added: 0.4.0
description:
  - Works on a build profile, the data the build roles read from the collection's recipe files
    (C(roles/lfs_sources/files/recipes/<profile>.yml)), see O(profile).
  - Each package has a key, the sha256 of its recipe, of the build context O(context) and of the keys of
    the packages it depends on (its C(depends), or every package before it). A package whose stamp
    C(<build_dir>/stamps/<name>.json) holds its key is built; anything else is built again from a fresh
    tree. So changing one recipe rebuilds that package and what depends on it, nothing else.
  - V(planned) validates the profile (every problem named, then one failure) and lists the packages with
    their state. V(built) builds O(name) unless its stamp is current. V(reported) writes the SBU table.
  - A build runs each step of the recipe with bash (errexit, nounset, pipefail) in the unpacked source
    tree, as O(user), in a clean environment (C(PATH), C(LC_ALL=POSIX), the profile's and the recipe's
    C(env), O(context), C(ORION_SRC), C(ORION_SOURCES), C(MAKEFLAGS) from O(jobs)). Its output goes to
    C(<build_dir>/logs/<name>.log). The stamp is written after the last step succeeded, never before,
    so a killed build resumes at the package that was running.
  - A failing step fails the task with the package, the step, the exit code and the last lines of the log;
    the stamps of the packages before it stay.
author:
  - OrionOS maintainers (@orionos)
options:
  profile:
    description:
      - The profile, a mapping with C(profile) (its name), C(packages) (the ordered recipes) and optionally
        C(env), C(description) and C(sbu_reference) (the package whose build time is 1 SBU).
      - A recipe has C(name), C(version), C(stage), C(sbu), C(steps) (C(prepare), C(configure), C(build),
        C(check), C(install), C(finish)) and optionally C(sources) and C(patches) (lists of C(file) and
        C(sha256)), C(depends), C(env), C(unpack), C(chroot), C(root) and C(description).
      - A package with C(chroot) true is built inside the new system, the directory in the context variable
        the profile's C(chroot_root) names, as root, with the kernel's virtual file systems mounted for its
        time (C(/dev), C(/dev/pts), C(/proc), C(/sys), C(/run), C(/dev/shm)) and unmounted after it, whether
        it succeeded or failed. The context's C(ORION_FILES) is mounted read-only at C(/orion-build/files)
        for that time too.
      - A package with C(root) true runs its steps on the host as the module's user (root), not as O(user).
      - C(include) must be resolved before (the lfs_sources role adds the packages of the files it names); a profile
        that still has it is refused.
    type: dict
    required: true
  state:
    description:
      - V(planned) lists the packages and fails on a bad profile. Never a change.
      - V(built) builds O(name).
      - V(reported) writes O(report) (JSON) and the same table as text beside it (C(.txt)).
      - V(unmounted) unmounts every file system mounted below the profile's chroot (the context variable its
        C(chroot_root) names), deepest first; for an C(always) section after a build, since a build killed by
        its async timeout cannot unmount what it mounted. Nothing mounted is no change.
    type: str
    choices: [planned, built, reported, unmounted]
    default: planned
  name:
    description: The package to build; required with O(state=built).
    type: str
  build_dir:
    description: Where stamps, logs and work trees are kept.
    type: path
    required: true
  sources:
    description: The directory holding the verified source files (the cache of M(orionos.diskless.source_cache)).
    type: path
  context:
    description:
      - Environment variables every step gets, part of every key (directories such as C(LFS),
        C(ORION_SYSROOT), C(ORION_ROOTFS), the target triplet).
    type: dict
    default: {}
  inputs:
    description:
      - Values a role gives single packages, as a mapping of package name to a mapping of environment variables
        (for example the sha256 of the kernel fragments for C(linux-config)). They are part of that package's key,
        so a change rebuilds it and what depends on it, and its steps get them in their environment.
    type: dict
    default: {}
  only:
    description:
      - With O(state=planned), only these packages and every package they depend on are listed, and only their
        sources are returned. Empty means the whole profile.
    type: list
    elements: str
    default: []
  jobs:
    description: Parallel make jobs (C(MAKEFLAGS=-j<jobs>)); not part of the keys. 0 means the number of CPUs.
    type: int
    default: 0
  user:
    description: The unprivileged user the steps run as (the module must run as root then). Omit to run them as the module's user.
    type: str
  keep_work:
    description: Keep the unpacked tree of a package after it was built.
    type: bool
    default: false
  report:
    description: With O(state=reported), the JSON file to write.
    type: path
extends_documentation_fragment:
  - orionos.diskless.attributes
attributes:
  check_mode:
    details: With V(built), reports whether the package would be built, without building it.
  diff_mode:
    details: The diff is the package's stamp key before and after (V(built)), or the report text before and after (V(reported)).
notes:
  - Two builds cannot share a build directory at the same time; the second fails at once naming the first one's pid.
  - Run long builds with C(async) and C(poll); the roles of this collection loop over the packages so that each
    one prints its progress.
seealso:
  - module: orionos.diskless.source_cache
"""

EXAMPLES = r"""
# A profile of your own, without include (the lfs_sources role resolves the
# includes of the collection's profiles and passes the whole profile).
- name: Check the profile and see what is left to build
  orionos.diskless.build_package:
    profile: "{{ lookup('ansible.builtin.file', 'my-profile.yml') | from_yaml }}"
    build_dir: /var/tmp/orion-build/minimal
  register: build_plan

- name: Build every package, one task item each
  orionos.diskless.build_package:
    profile: "{{ profile }}"
    state: built
    name: "{{ item.name }}"
    build_dir: /var/tmp/orion-build/minimal
    sources: /var/cache/orion/sources
    user: orion-build
  loop: "{{ build_plan.packages }}"
  async: 7200
  poll: 10

- name: Leave nothing mounted in the chroot, whatever happened to the build
  orionos.diskless.build_package:
    profile: "{{ profile }}"
    state: unmounted
    build_dir: /var/tmp/orion-build/lfs
    context:
      LFS: /var/tmp/orion-build/lfs/lfs
"""

RETURN = r"""
packages:
  description: With V(planned), the packages in order.
  returned: when O(state=planned)
  type: list
  elements: dict
  sample: [{"index": 0, "name": "musl", "version": "1.2.3", "stage": "toolchain", "sbu": 0.4, "state": "built", "key": "5c1d..."}]
pending:
  description: How many packages are left to build.
  returned: when O(state=planned)
  type: int
  sample: 2
sources:
  description: With V(planned), every source and patch file of the profile with its sha256 and mirror path.
  returned: when O(state=planned)
  type: dict
  sample: {"musl_1.2.3.orig.tar.gz": {"sha256": "7d5b...", "path": "pool/main/m/musl"}}
remaining_sbu:
  description: The SBU estimates of the packages left to build, added up.
  returned: when O(state=planned)
  type: float
  sample: 3.5
sbu_seconds:
  description: Seconds of 1 SBU measured on this host, or null when not measured yet.
  returned: always
  type: float
  sample: 142.3
seconds:
  description: Seconds the build of O(name) took (from its stamp when nothing was built).
  returned: when O(state=built)
  type: float
  sample: 85.2
cpu_seconds:
  description: CPU seconds (user and system) of every process of the build of O(name), when it was built now.
  returned: when O(state=built) and the package was built
  type: float
  sample: 170.4
msg:
  description: A progress line, or on failure what failed with the log's last lines.
  returned: always
  type: str
  sample: "busybox-1.35.0 built in 85 s (0.60 SBU)"
log:
  description: The package's log file.
  returned: when O(state=built)
  type: str
  sample: /var/tmp/orion-build/minimal/logs/busybox.log
log_tail:
  description: The last lines of the log of a failed package.
  returned: failure
  type: list
  elements: str
problems:
  description: Every problem of a bad profile.
  returned: failure
  type: list
  elements: str
  sample: ["package busybox: sbu -1 is not a number from 0 to 1000"]
table:
  description: With V(reported), the SBU table.
  returned: when O(state=reported)
  type: dict
unmounted:
  description: With V(unmounted), the mount points that were unmounted (or would be, in check mode).
  returned: when O(state=unmounted)
  type: list
  elements: str
  sample: [/var/tmp/orion-build/lfs/lfs/dev/shm, /var/tmp/orion-build/lfs/lfs/dev/pts]
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.orionos.diskless.plugins.module_utils import build_engine as engine


def report_text(table):
    unit = table["sbu_seconds"]
    cpu_unit = table.get("sbu_cpu_seconds")
    lines = ["profile %s, 1 SBU = %s (wall clock), %s (CPU)" % (
        table["profile"], "%.1f s" % unit if unit else "not measured", "%.1f s" % cpu_unit if cpu_unit else "not measured"),
        "%-24s %-12s %-10s %10s %8s %10s %8s %8s" % ("package", "version", "stage", "seconds", "SBU",
                                                     "CPU s", "CPU SBU", "book")]

    def cell(value, form, missing="-"):
        return form % value if value is not None else missing

    for row in table["packages"]:
        lines.append("%-24s %-12s %-10s %10s %8s %10s %8s %8s" % (
            row["name"], row["version"], row["stage"], cell(row["seconds"], "%.1f"), cell(row["sbu"], "%.2f"),
            cell(row.get("cpu_seconds"), "%.1f"), cell(row.get("cpu_sbu"), "%.2f"), row["sbu_estimate"]))
    lines.append("total %.1f s%s; CPU %.1f s%s" % (
        table["total_seconds"], cell(table["total_sbu"], ", %.2f SBU", ""),
        table.get("total_cpu_seconds") or 0.0, cell(table.get("total_cpu_sbu"), ", %.2f SBU", "")))
    return "\n".join(lines) + "\n"


def write_if_changed(module, path, text):
    """Write ``text`` to ``path`` unless it holds it; returns (changed, text before)."""
    try:
        with open(path) as handle:
            old = handle.read()
    except OSError:
        old = ""
    if old == text:
        return False, old
    if module.check_mode:
        return True, old
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    module.atomic_move(tmp, path)
    return True, old


def main():
    module = AnsibleModule(
        argument_spec=dict(
            profile=dict(type="dict", required=True),
            state=dict(type="str", choices=["planned", "built", "reported", "unmounted"], default="planned"),
            name=dict(type="str"),
            build_dir=dict(type="path", required=True),
            sources=dict(type="path"),
            context=dict(type="dict", default={}),
            inputs=dict(type="dict", default={}),
            only=dict(type="list", elements="str", default=[]),
            jobs=dict(type="int", default=0),
            user=dict(type="str"),
            keep_work=dict(type="bool", default=False),
            report=dict(type="path"),
        ),
        required_if=[("state", "built", ("name", "sources")), ("state", "reported", ("report",))],
        supports_check_mode=True,
    )
    p = module.params
    profile = p["profile"]
    problems = engine.validate_profile(profile)
    problems += engine.env_problems("context", p["context"])
    inputs = p["inputs"]
    for name, values in sorted(inputs.items()):
        if not isinstance(values, dict):
            problems.append("inputs[%s]: %r is not a mapping of variables" % (name, values))
        else:
            problems += engine.env_problems("inputs[%s]" % name, values)
    if p["jobs"] < 0:
        problems.append("jobs: %r must be 0 or more" % p["jobs"])
    names = [pkg.get("name") for pkg in profile.get("packages") or [] if isinstance(pkg, dict)]
    for name in p["only"]:
        if name not in names:
            problems.append("only: %r is not a package of profile %s" % (name, profile.get("profile")))
    if p["state"] == "built" and not problems and p["name"] not in [pkg["name"] for pkg in profile["packages"]]:
        problems.append("name: %r is not a package of profile %s" % (p["name"], profile.get("profile")))
    if problems:
        module.fail_json(msg="bad profile: " + "; ".join(problems), problems=problems)
    build_dir, context = p["build_dir"], p["context"]
    unit = engine.sbu_seconds(build_dir)

    if p["state"] == "planned":
        selected = engine.closure(profile, p["only"]) if p["only"] else None
        try:
            sources = engine.source_files(profile, selected)
        except engine.BuildError as exc:
            module.fail_json(msg="bad profile: " + "; ".join(exc.problems), problems=exc.problems)
        rows = engine.plan(profile, build_dir, context, only=selected, inputs=inputs)
        pending = [row for row in rows if row["state"] == "pending"]
        remaining = round(sum(row["sbu"] for row in pending), 2)
        module.exit_json(changed=False, packages=rows, pending=len(pending), remaining_sbu=remaining,
                         sbu_seconds=unit, sources=sources,
                         msg="%d of %d packages to build, %.1f SBU by the recipes" % (len(pending), len(rows), remaining))

    if p["state"] == "unmounted":
        root = context.get(profile.get("chroot_root") or "")
        if not root:
            module.exit_json(changed=False, unmounted=[], msg="profile %s has no chroot" % profile.get("profile"))
        points = engine.mounts_under(root)
        if points and not module.check_mode:
            try:
                engine.chroot_unmount(root)
            except engine.BuildError as exc:
                module.fail_json(msg=str(exc), problems=exc.problems)
        module.exit_json(changed=bool(points), unmounted=points,
                         diff={"before": "".join(point + "\n" for point in points), "after": ""},
                         msg="%d file systems unmounted below %s" % (len(points), root))

    if p["state"] == "reported":
        table = engine.report(profile, build_dir, context, inputs=inputs)
        text = json.dumps(table, indent=2, sort_keys=True) + "\n"
        changed = write_if_changed(module, p["report"], text)[0]
        base = p["report"][:-5] if p["report"].endswith(".json") else p["report"]
        changed_text, old_text = write_if_changed(module, base + ".txt", report_text(table))
        module.exit_json(changed=changed or changed_text, table=table, sbu_seconds=unit, msg=report_text(table),
                         diff={"before": old_text, "after": report_text(table)})

    rows = engine.plan(profile, build_dir, context, inputs=inputs)
    row = [r for r in rows if r["name"] == p["name"]][0]
    log = os.path.join(build_dir, "logs", p["name"] + ".log")
    old = engine.read_stamp(build_dir, p["name"]) or {}
    diff = {"before": "%s %s\n" % (p["name"], old.get("key", "(not built)")), "after": "%s %s\n" % (p["name"], row["key"])}
    if module.check_mode or row["state"] == "built":
        seconds = row["stamp"]["seconds"] if row["stamp"] else None
        module.exit_json(changed=row["state"] != "built", seconds=seconds, sbu_seconds=unit, log=log, diff=diff,
                         msg="%s-%s %s" % (row["name"], row["version"],
                                           "already built" if row["state"] == "built" else "would be built"))
    jobs = p["jobs"] or os.cpu_count() or 1
    context = dict(context)
    try:
        # MAKEFLAGS goes in after the keys were computed: the job count never triggers a rebuild.
        result = engine.build_package(profile, p["name"], build_dir, p["sources"], context=context,
                                      user=p["user"], keep_work=p["keep_work"], jobs=jobs, inputs=inputs)
    except engine.BuildError as exc:
        module.fail_json(msg="%s\n%s" % (exc, "\n".join(exc.log_tail)), problems=exc.problems,
                         log=exc.log, log_tail=exc.log_tail, package=exc.package)
    if profile.get("sbu_reference") == p["name"]:
        engine.record_sbu(build_dir, p["name"], result["seconds"], result["cpu_seconds"])
        unit = result["seconds"]
    sbu = " (%.2f SBU)" % (result["seconds"] / unit) if unit else ""
    module.exit_json(changed=True, seconds=result["seconds"], cpu_seconds=result["cpu_seconds"], sbu_seconds=unit,
                     log=result["log"], diff=diff,
                     msg="%s-%s built in %.0f s%s" % (p["name"], row["version"], result["seconds"], sbu))


if __name__ == "__main__":
    main()
