"""Boot files of 10,000 nodes with boot_policy, against a template loop, in one run.

    python3 benchmarks/policy_render.py [--nodes 10000] [--naive 300]

Run with the Python of the project's virtualenv: ansible-playbook is taken
from beside it. Builds a throw-away image store (three versions with small
files and manifests), --nodes nodes (four groups, rack and room labels, four
subnets) in the group_vars of an inventory, as an operator's inventory holds
them, and a policy with six rules, three channels and canary percents. Then,
side by side, every playbook run against localhost with connection local:

  1. orionos.diskless.boot_policy through ansible-playbook: a first run that
     writes every script, MAC link, the DHCP reservations and the resolution
     table, then a run with nothing to change. Reported: the wall time of the
     whole ansible-playbook command and the time of the module task alone
     (ansible.posix.profile_tasks).
  2. Where the time goes: an empty play (start-up); one task counting the
     nodes (loading the inventory's vars); the same arguments handed to a
     module that only reads them (Ansible's part of the task); the module run
     alone by python with the same arguments (no Ansible around it); and a
     first run with the nodes in a play's vars_files instead.
  3. The naive way: ansible.builtin.template in a loop, one iPXE script per
     node, for --naive nodes, with each node's image, fallback, profile and
     kernel arguments taken from the resolution boot_policy wrote; the
     template renders the same script, and the outputs are compared.

Per-node costs are task time / nodes. Figures are printed, never asserted;
the script fails only when a run fails.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))

from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store  # noqa: E402

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
MODULE = os.path.join(ROOT, "plugins", "modules", "boot_policy.py")
SERVERS = ["10.20.0.10", "10.20.0.2", "10.20.0.3"]
VERSIONS = ["2026.10.0", "2026.11.0", "2026.11.1"]
SUBNETS = ["10.20.0.0/20", "10.21.0.0/20", "10.22.0.0/20", "10.23.0.0/20"]
KERNEL_ARGS = ["console=ttyS0,115200n8"]
POLICY_TASK = "Render the boot files of every node"
NAIVE_TASK = "Write one boot script per node"
ARGS_TASK = "Hand the same arguments to a module"
COUNT_TASK = "Count the nodes"

POLICY = {
    "channels": {"stable": "2026.11.0", "canary": "2026.11.1", "legacy": "2026.10.0"},
    "rules": [
        {"name": "debug-pinned", "match": {"name": "node0000[0-4]"}, "image": "2026.11.0",
         "fallback": "2026.10.0", "kernel_args": ["debug"]},
        {"name": "gpu-legacy", "match": {"group": "gpu"}, "channel": "legacy",
         "kernel_args": ["nvidia-drm.modeset=1"], "profile": "gpu"},
        {"name": "storage", "match": {"group": "storage"}, "channel": "stable", "profile": "storage"},
        {"name": "canary-rack", "match": {"label": {"rack": "r01"}}, "percent": 50, "channel": "canary"},
        {"name": "canary-room-b", "match": {"group": "compute", "subnet": "10.21.0.0/20"}, "percent": 10,
         "channel": "canary"},
        {"name": "canary", "match": {"group": ["compute", "login"]}, "percent": 2, "channel": "canary"},
    ],
    "default": {"channel": "stable"},
}

# The script render_script writes for a node, as a user would template it.
NAIVE_TEMPLATE = """\
#!ipxe
{% set order = [node.image] + ([node.fallback] if node.fallback and node.fallback != node.image else []) %}
# OrionOS boot script of node {{ node.name }}: image {{ order | join(' then fallback ') }}, \
decided by {{ node.rule }}.
# Each image is tried from every boot server in turn.
echo OrionOS node {{ node.name }} boots image {{ node.image }}
{% set n = namespace(step=0) %}
{% for version in order %}
{% set cmdline = (['initrd=initramfs.img', 'orion.node=' ~ node.name, 'orion.image=' ~ version,
                   'orion.servers=' ~ servers | join(','), 'orion.profile=' ~ node.profile]
                  + node.kernel_args + (['orion.fallback=1'] if version != node.image else []))
                 | join(' ') %}
{% for server in servers %}
{% set n.step = n.step + 1 %}
{% set next = 'try' ~ (n.step + 1) if n.step < (order | length) * (servers | length) else 'failed' %}
:try{{ n.step }}
echo OrionOS: image {{ version }} from {{ server }}
imgfree
kernel http://{{ server }}/boot/images/{{ version }}/vmlinuz {{ cmdline }} || goto {{ next }}
initrd http://{{ server }}/boot/images/{{ version }}/initramfs.img || goto {{ next }}
boot || goto {{ next }}
{% endfor %}
{% endfor %}
:failed
echo OrionOS: node {{ node.name }} could not boot any image from any boot server
echo OrionOS: rebooting in 30 s
sleep 30
reboot
"""

_PROFILE_LINE = re.compile(r"^(?P<name>.+?) -+ +(?P<seconds>[0-9]+\.[0-9]+)s$")


def make_store(root):
    for index, version in enumerate(VERSIONS):
        vdir = os.path.join(root, "images", version)
        os.makedirs(vdir)
        for name in ("vmlinuz", "initramfs.img", "root.erofs"):
            with open(os.path.join(vdir, name), "w", encoding="ascii") as handle:
                handle.write("%s %s\n" % (version, name))
        manifest = store.build_manifest(vdir, version, extra={"created": "2026-%02d-01T00:00:00Z" % (9 + index)})
        with open(os.path.join(vdir, "manifest.json"), "w", encoding="ascii") as handle:
            handle.write(store.dump_manifest(manifest))
    os.makedirs(os.path.join(root, "boot"))


def make_nodes(count):
    """Nodes spread over four subnets (rooms a-d), 40 racks, four groups."""
    nodes = []
    for i in range(count):
        room, host = i % 4, i // 4 + 2
        if i % 50 == 0:
            group = "gpu"
        elif i % 10 == 0:
            group = "storage"
        elif i % 97 == 0:
            group = "login"
        else:
            group = "compute"
        node = {"name": "node%05d" % i,
                "mac": "52:54:00:%02x:%02x:%02x" % (i >> 16, (i >> 8) & 255, i & 255),
                "ip": "10.%d.%d.%d" % (20 + room, host >> 8, host & 255),
                "groups": [group],
                "labels": {"rack": "r%02d" % (i // 4 % 40), "room": "abcd"[room]},
                "firmware": "uefi" if i % 3 else "bios"}
        if i % 7 == 0:
            node["kernel_args"] = ["nosmt"]
        nodes.append(node)
    return nodes


def write_yaml(path, data):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("---\n")
        yaml.dump(data, handle, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                  default_flow_style=False, sort_keys=False)


ARGS_ONLY_MODULE = """#!/usr/bin/python
# WANT_JSON
# Reads the arguments Ansible hands over and does nothing else.
import json
import sys

with open(sys.argv[1]) as handle:
    ARGS = json.load(handle)
print(json.dumps({"changed": False, "nodes": len(ARGS.get("nodes") or [])}))
"""


def write_playbook(path, tasks, vars_file=None):
    play = {"name": "Benchmark", "hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if vars_file:
        play["vars_files"] = [vars_file]
    write_yaml(path, [play])
    return path


def write_inventory(inventory, nodes):
    """localhost, with the nodes and the policy in group_vars as an operator's inventory holds them."""
    os.makedirs(os.path.join(inventory, "group_vars", "all"))
    write_yaml(os.path.join(inventory, "hosts.yml"), {"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}})
    path = os.path.join(inventory, "group_vars", "all", "orion_nodes.yml")
    write_yaml(path, {"bench_nodes": nodes, "bench_policy": POLICY})
    return path


def run_playbook(path, inventory, library):
    """Run a playbook; return (wall seconds, {task name: seconds}, stdout)."""
    cmd = [ANSIBLE_PLAYBOOK, "-i", inventory, "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
           path]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LIBRARY=library,
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
               ANSIBLE_PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if res.returncode != 0:
        sys.exit("ansible-playbook %s failed (rc %d):\n%s\n%s"
                 % (os.path.basename(path), res.returncode, res.stdout[-3000:], res.stderr[-2000:]))
    tasks = {}
    for line in res.stdout.splitlines():
        match = _PROFILE_LINE.match(line.strip())
        if match:
            tasks[match.group("name")] = float(match.group("seconds"))
    return wall, tasks, res.stdout


def task_time(tasks, name):
    if name not in tasks:
        sys.exit("no profile_tasks time for task %r (is ansible.posix installed?)" % name)
    return tasks[name]


def run_module_alone(args, args_path):
    with open(args_path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))
    start = time.monotonic()
    res = subprocess.run([sys.executable, MODULE, args_path], env=env, capture_output=True, text=True,
                         check=False)
    wall = time.monotonic() - start
    if res.returncode != 0:
        sys.exit("the module run alone failed:\n%s\n%s" % (res.stdout[-2000:], res.stderr[-2000:]))
    return wall


def count_files(dest):
    names = os.listdir(dest)
    scripts = sum(1 for n in names if n.startswith("node") and n.endswith(".ipxe"))
    links = sum(1 for n in names if os.path.islink(os.path.join(dest, n)))
    return scripts, links


def bench(args, work):
    """Every run; returns the rows of the table and the notes under it."""
    root = os.path.join(work, "store")
    make_store(root)
    library = os.path.join(work, "library")
    os.makedirs(library)
    with open(os.path.join(library, "bench_args_only.py"), "w", encoding="utf-8") as handle:
        handle.write(ARGS_ONLY_MODULE)
    nodes = make_nodes(args.nodes)
    inventory = os.path.join(work, "inventory")
    vars_file = write_inventory(inventory, nodes)
    local = "localhost,"
    dest = os.path.join(root, "boot", "nodes")
    module_args = {"dest": dest, "store": root, "servers": SERVERS, "subnets": SUBNETS,
                   "kernel_args": KERNEL_ARGS, "nodes": "{{ bench_nodes }}", "policy": "{{ bench_policy }}"}
    noop = [{"name": "Nothing", "ansible.builtin.meta": "noop"}]
    empty_play = write_playbook(os.path.join(work, "empty.yml"), noop)
    policy_play = write_playbook(os.path.join(work, "policy.yml"), [
        {"name": POLICY_TASK, "orionos.diskless.boot_policy": module_args}])
    count_play = write_playbook(os.path.join(work, "count.yml"), [
        {"name": COUNT_TASK, "ansible.builtin.debug": {"msg": "{{ bench_nodes | length }} nodes"}}])
    args_play = write_playbook(os.path.join(work, "args-only.yml"), [
        {"name": ARGS_TASK, "bench_args_only": module_args}])
    files_play = write_playbook(os.path.join(work, "vars-files.yml"), [
        {"name": POLICY_TASK, "orionos.diskless.boot_policy": dict(
            module_args, dest=os.path.join(root, "boot", "nodes-vars-files"))}], vars_file)
    rows, notes = [], []

    def row(method, nodes_count, wall, task):
        rows.append((method, nodes_count, wall, task))

    print("%d nodes, boot_policy through ansible-playbook ..." % args.nodes, flush=True)
    wall, _tasks, _out = run_playbook(empty_play, local, library)
    row("ansible-playbook start-up (empty play)", None, wall, None)
    wall, tasks, _out = run_playbook(count_play, inventory, library)
    row("a task counting the nodes of the inventory", args.nodes, wall, task_time(tasks, COUNT_TASK))
    wall, tasks, out = run_playbook(policy_play, inventory, library)
    row("boot_policy, first run (writes everything)", args.nodes, wall, task_time(tasks, POLICY_TASK))
    first_changed = "changed=1" in out
    scripts, links = count_files(dest)
    wall, tasks, out = run_playbook(policy_play, inventory, library)
    row("boot_policy, second run (nothing to change)", args.nodes, wall, task_time(tasks, POLICY_TASK))
    second_changed = "changed=1" in out
    wall, tasks, _out = run_playbook(args_play, inventory, library)
    row("same arguments to a module that only reads them", args.nodes, wall, task_time(tasks, ARGS_TASK))
    wall = run_module_alone(dict(module_args, dest=os.path.join(root, "boot", "nodes-alone"), nodes=nodes,
                                 policy=POLICY, _ansible_tmpdir=work), os.path.join(work, "args.json"))
    row("boot_policy module alone (python, no Ansible)", args.nodes, wall, wall)
    wall, tasks, _out = run_playbook(files_play, local, library)
    row("boot_policy, first run, nodes in a play's vars_files", args.nodes, wall,
        task_time(tasks, POLICY_TASK))
    # The module reading the nodes itself (nodes_file), e.g. an inventory database export.
    nodes_json = os.path.join(work, "nodes.json")
    with open(nodes_json, "w", encoding="utf-8") as handle:
        json.dump(nodes, handle)
    file_args = dict(module_args, dest=os.path.join(root, "boot", "nodes-file"), nodes_file=nodes_json,
                     policy=POLICY)
    del file_args["nodes"]
    file_play = write_playbook(os.path.join(work, "nodes-file.yml"), [
        {"name": POLICY_TASK, "orionos.diskless.boot_policy": file_args}])
    wall, tasks, _out = run_playbook(file_play, local, library)
    row("boot_policy, first run, nodes_file (JSON)", args.nodes, wall, task_time(tasks, POLICY_TASK))
    same_tree = sorted(os.listdir(os.path.join(root, "boot", "nodes-file"))) == sorted(os.listdir(dest))
    notes.append("nodes_file run wrote the same file names as the inventory run: %s" % same_tree)

    print("%d nodes, ansible.builtin.template in a loop ..." % args.naive, flush=True)
    with open(os.path.join(dest, "resolution.json"), encoding="utf-8") as handle:
        table = json.load(handle)["nodes"]
    naive_nodes = [{key: table[node["name"]][key]
                    for key in ("name", "image", "fallback", "rule", "profile", "kernel_args")}
                   for node in nodes[:args.naive]]
    naive_dir = os.path.join(work, "naive")
    os.makedirs(naive_dir)
    template = os.path.join(work, "node.ipxe.j2")
    with open(template, "w", encoding="utf-8") as handle:
        handle.write(NAIVE_TEMPLATE)
    naive_vars = os.path.join(work, "naive-vars.yml")
    write_yaml(naive_vars, {"naive_nodes": naive_nodes, "servers": SERVERS})
    naive_play = write_playbook(os.path.join(work, "naive.yml"), [{
        "name": NAIVE_TASK,
        "ansible.builtin.template": {"src": template, "dest": naive_dir + "/{{ node.name }}.ipxe",
                                     "mode": "0644"},
        "loop": "{{ naive_nodes }}",
        "loop_control": {"loop_var": "node", "label": "{{ node.name }}"}}], naive_vars)
    wall, tasks, _out = run_playbook(naive_play, local, library)
    row("ansible.builtin.template loop, one file per node", args.naive, wall, task_time(tasks, NAIVE_TASK))
    same = 0
    for node in naive_nodes:
        with open(os.path.join(naive_dir, node["name"] + ".ipxe"), "rb") as mine, \
                open(os.path.join(dest, node["name"] + ".ipxe"), "rb") as theirs:
            same += mine.read() == theirs.read()
    notes.append("reported changed: first run %s, second run %s" % (first_changed, second_changed))
    notes.append("boot_policy wrote %d node scripts and %d MAC links; template loop scripts identical "
                 "to boot_policy's: %d of %d" % (scripts, links, same, args.naive))
    return rows, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000, help="nodes rendered by boot_policy")
    parser.add_argument("--naive", type=int, default=300, help="nodes rendered by the template loop")
    args = parser.parse_args()
    if not 1 <= args.naive <= args.nodes:
        parser.error("--naive must be between 1 and --nodes")
    work = tempfile.mkdtemp(prefix="orion-bench-policy.")
    try:
        rows, notes = bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("nproc %d, load average %s" % (os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))
    line = "%-52s %6s %8s %8s %11s"
    print(line % ("method", "nodes", "wall s", "task s", "s per node"))
    for method, count, wall, task in rows:
        print(line % (method, "-" if count is None else count, "%.2f" % wall,
                      "-" if task is None else "%.2f" % task,
                      "-" if task is None else "%.6f" % (task / count)))
    print()
    for note in notes:
        print(note)
    policy = rows[2]
    naive = rows[-1]
    policy_node, naive_node = policy[3] / policy[1], naive[3] / naive[1]
    print("per-node cost ratio, template loop / boot_policy first run (task s per node): %.0fx"
          % (naive_node / policy_node))
    print("per-node cost ratio, whole ansible-playbook commands (wall s per node): %.0fx"
          % ((naive[2] / naive[1]) / (policy[2] / policy[1])))
    print("template loop extrapolated to %d nodes: %.0f s (%.1f h); boot_policy: %.2f s wall, %.2f s task"
          % (policy[1], naive_node * policy[1], naive_node * policy[1] / 3600, policy[2], policy[3]))


if __name__ == "__main__":
    main()
