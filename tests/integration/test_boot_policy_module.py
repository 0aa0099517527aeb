"""The boot_policy module run by ansible-playbook, and killed in the middle of its work.

Check mode writes nothing; apply; check mode again reports no change; apply
again reports changed=false. A run killed at any moment leaves the previous
complete set of files in place.
"""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from ansible_collections.orionos.diskless.plugins.module_utils import boot_policy as engine
from ansible_collections.orionos.diskless.plugins.module_utils import image_store as store
from ansible_collections.orionos.diskless.plugins.module_utils import tree_swap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(ROOT, "plugins", "modules", "boot_policy.py")
SERVERS = ["10.0.0.10", "10.0.0.2", "10.0.0.3"]


def make_store(root):
    for index, version in enumerate(["2026.11.0", "2026.11.1", "2026.11.2"]):
        vdir = os.path.join(root, "images", version)
        os.makedirs(vdir)
        for name in ("vmlinuz", "initramfs.img", "root.erofs"):
            with open(os.path.join(vdir, name), "w") as handle:
                handle.write("%s %s\n" % (version, name))
        manifest = store.build_manifest(vdir, version, extra={"created": "2026-11-%02dT00:00:00Z" % (index + 1)})
        with open(os.path.join(vdir, "manifest.json"), "w") as handle:
            handle.write(store.dump_manifest(manifest))
    os.makedirs(os.path.join(root, "boot"))


def nodes(count):
    return [{"name": "node%05d" % i, "mac": "52:54:00:%02x:%02x:%02x" % (i >> 16, (i >> 8) & 255, i & 255),
             "ip": "10.%d.%d.%d" % (1 + (i >> 16), (i >> 8) & 255, i & 255),
             "groups": ["compute" if i % 4 else "storage"], "labels": {"rack": "r%d" % (i % 8)}}
            for i in range(count)]


def policy(canary_percent):
    return {"channels": {"stable": "2026.11.1", "canary": "2026.11.2"},
            "rules": [{"name": "storage-pinned", "match": {"group": "storage"}, "image": "2026.11.0"},
                      {"name": "canary", "match": {"group": "compute"}, "percent": canary_percent,
                       "channel": "canary"}],
            "default": {"channel": "stable"}}


def playbook_run(tmp_path, args, check=False, diff=False):
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Render", "orionos.diskless.boot_policy": args, "register": "out"},
                       {"name": "Show", "ansible.builtin.copy": {
                           "content": "{{ out | to_json }}", "dest": str(tmp_path / "result.json")},
                        "check_mode": False}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(tmp_path / "play.yml")]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return json.loads((tmp_path / "result.json").read_text()), res.stdout


def snapshot(path):
    """Every file under path (following the node link), with content."""
    found = {}
    for dirpath, _dirs, files in os.walk(path, followlinks=True):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, path)] = handle.read()
    return found


def test_check_apply_check_apply(tmp_path):
    root = tmp_path / "store"
    make_store(str(root))
    dest = str(root / "boot" / "nodes")
    args = {"dest": dest, "store": str(root), "servers": SERVERS, "subnets": ["10.1.0.0/16"],
            "nodes": nodes(200), "policy": policy(10), "kernel_args": ["console=ttyS0,115200n8"]}

    out, _stdout = playbook_run(tmp_path, args, check=True)
    assert out["changed"] is True and out["nodes"] == 200
    assert len(out["files"]["added"]) == 200 * 2 + 2
    assert not os.path.lexists(dest), "check mode wrote files"

    out, _stdout = playbook_run(tmp_path, args)
    assert out["changed"] is True and os.path.islink(dest)
    written = snapshot(str(root / "boot"))
    table = json.loads(written["nodes/resolution.json"])["nodes"]
    assert table["node00000"]["image"] == "2026.11.0"                  # storage, pinned
    assert sum(e["image"] == "2026.11.2" for e in table.values()) in range(5, 30)   # ~10 % of 150
    assert b"52:54:00:00:00:05,10.1.0.5,node00005" in written["nodes/dhcp-hosts"]
    assert written["nodes/52-54-00-00-00-05.ipxe"] == written["nodes/node00005.ipxe"]

    out, _stdout = playbook_run(tmp_path, args, check=True)
    assert out["changed"] is False and out["changed_nodes"] == {}
    out, _stdout = playbook_run(tmp_path, args)
    assert out["changed"] is False
    assert snapshot(str(root / "boot")) == written

    # Raising the canary share moves nodes only towards the canary; check
    # mode with diff names them and writes nothing.
    args["policy"] = policy(30)
    out, stdout = playbook_run(tmp_path, args, check=True, diff=True)
    assert out["changed"] is True and out["changed_nodes"]
    for name, (before, after) in out["changed_nodes"].items():
        assert before.startswith("2026.11.1") and after.startswith("2026.11.2 (fallback 2026.11.1)"), name
        assert "%s: 2026.11.2 (fallback 2026.11.1)" % name in stdout
    assert snapshot(str(root / "boot")) == written
    out, _stdout = playbook_run(tmp_path, args)
    assert out["changed"] is True
    assert snapshot(str(root / "boot")) != written


def test_bad_input_through_the_module_writes_nothing(tmp_path):
    root = tmp_path / "store"
    make_store(str(root))
    dest = str(root / "boot" / "nodes")
    good = {"dest": dest, "store": str(root), "servers": SERVERS, "nodes": nodes(5), "policy": policy(10)}
    playbook_run(tmp_path, good)
    before = snapshot(str(root / "boot"))
    bad = dict(good, nodes=nodes(5) + [{"name": "evil", "mac": "52:54:00:99:99:99",
                                        "kernel_args": "quiet\nshell"}],
               policy=dict(policy(10), default={"image": "2099.1"}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Render", "orionos.diskless.boot_policy": bad}]}]
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(play))
    res = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                          "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
                          str(tmp_path / "bad.yml")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "node evil: kernel_args: contains a line break" in out
    assert "policy.default: pinned image '2099.1' is not in the image store" in out
    assert snapshot(str(root / "boot")) == before


def test_killed_runs_leave_a_complete_set(tmp_path):
    """Kill the module at every stage of a 10,000-node run: what is served is always one complete set."""
    root = tmp_path / "store"
    make_store(str(root))
    dest = str(root / "boot" / "nodes")
    many = nodes(10000)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))

    def args_file(percent):
        path = tmp_path / ("args-%d.json" % percent)
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "dest": dest, "store": str(root), "servers": SERVERS, "nodes": many, "policy": policy(percent),
            "_ansible_tmpdir": str(tmp_path)}}))
        return str(path)

    def run_module(path):
        return subprocess.run([sys.executable, MODULE, path], env=env, capture_output=True, text=True,
                              timeout=300, check=False)

    first = run_module(args_file(10))
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    images, _problems = engine.load_images(str(root))
    old_table = engine.resolve(many, policy(10), images=images)
    old = engine.render_tree(old_table, SERVERS, images, channels=policy(10)["channels"])
    assert tree_swap.read_tree(dest) == old
    new_table = engine.resolve(many, policy(50), images=images, previous=old_table)
    new = engine.render_tree(new_table, SERVERS, images, channels=policy(50)["channels"])
    new_args = args_file(50)

    # Kill the module with SIGKILL at each stage of its work, recognised by
    # what it leaves in the directory: right after start, while it writes the
    # new generation, once that is complete but not yet swapped in, and right
    # after the swap (while it cleans up).
    parent = os.path.dirname(dest)
    outcomes = {}
    for stage in ("start", "writing", "complete", "swapped"):
        back = run_module(args_file(10))           # the old set, complete
        assert back.returncode == 0, back.stderr[-2000:]
        before = os.readlink(dest)
        assert {n: e["image"] for n, e in json.loads(tree_swap.read_tree(dest)["resolution.json"])["nodes"].items()} \
            == {n: e["image"] for n, e in old_table.items()}
        proc = subprocess.Popen([sys.executable, MODULE, new_args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            names = os.listdir(parent)
            if stage == "start" \
                    or (stage == "writing" and any(n.endswith(".tmp") for n in names)) \
                    or (stage == "complete" and any(n.startswith(".nodes-") and not n.endswith(".tmp")
                                                    and n != before for n in names)) \
                    or (stage == "swapped" and os.readlink(dest) != before):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        assert proc.wait() == -signal.SIGKILL, "the run ended before stage %s was seen" % stage
        served = tree_swap.read_tree(dest)
        table = json.loads(served["resolution.json"])["nodes"]
        # Complete: every node has its script and MAC link, and the scripts
        # agree with the table served beside them.
        assert len(table) == 10000
        served_images = {name: entry["image"] for name, entry in table.items()}
        for name in ("node00000", "node00001", "node04999", "node09999"):
            assert ("orion.image=%s " % served_images[name]).encode() in served[name + ".ipxe"]
        assert len([n for n in served if n.endswith(".ipxe")]) == 20000
        outcomes[stage] = "new" if served_images == {n: e["image"] for n, e in new_table.items()} else "old"
        assert served == (new if outcomes[stage] == "new" else tree_swap.read_tree(os.path.join(parent, before)))
    # Between a complete generation and the swap there are only two system
    # calls, so that kill may land on either side of the swap.
    assert outcomes["start"] == outcomes["writing"] == "old" and outcomes["swapped"] == "new", outcomes
    # A later complete run cleans up whatever a killed one left.
    assert run_module(new_args).returncode == 0
    assert tree_swap.read_tree(dest) == new
    assert [n for n in os.listdir(parent) if n.startswith(".nodes") and n != ".nodes.lock"] == [os.readlink(dest)]


def test_nodes_from_a_file_give_the_same_files(tmp_path):
    root = tmp_path / "store"
    make_store(str(root))
    listed = {"dest": str(root / "boot" / "nodes"), "store": str(root), "servers": SERVERS,
              "nodes": nodes(50), "policy": policy(20)}
    playbook_run(tmp_path, listed)
    (tmp_path / "nodes.yml").write_text(yaml.safe_dump({"nodes": nodes(50)}))
    from_file = dict(listed, dest=str(root / "boot" / "from-file"), nodes_file=str(tmp_path / "nodes.yml"))
    del from_file["nodes"]
    out, _stdout = playbook_run(tmp_path, from_file)
    assert out["changed"] is True and out["nodes"] == 50
    assert tree_swap.read_tree(from_file["dest"]) == tree_swap.read_tree(listed["dest"])
    (tmp_path / "broken.json").write_text("[{")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(from_file, nodes_file=str(tmp_path / "broken.json"))}))
    res = subprocess.run([sys.executable, MODULE, str(args)], env=env, capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "nodes_file: %s is not valid JSON" % (tmp_path / "broken.json") in res.stdout


def test_two_runs_at_once_always_leave_one_complete_set(tmp_path):
    """Two boot_policy runs with different policies, started together again and again: what is served is
    always one of the two complete sets, and dest never points at a removed directory."""
    root = tmp_path / "store"
    make_store(str(root))
    dest = str(root / "boot" / "nodes")
    many = nodes(300)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))
    images, _problems = engine.load_images(str(root))
    sets = []
    args = []
    for percent in (10, 60):
        path = tmp_path / ("args-%d.json" % percent)
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "dest": dest, "store": str(root), "servers": SERVERS, "nodes": many, "policy": policy(percent),
            "history": str(tmp_path / "none.json"), "_ansible_tmpdir": str(tmp_path)}}))
        args.append(str(path))
        table = engine.resolve(many, policy(percent), images=images, previous={})
        sets.append(engine.render_tree(table, SERVERS, images, channels=policy(percent)["channels"]))
    parent = os.path.dirname(dest)
    checked = 0
    for _round in range(3):
        # Their output goes to files: a full pipe nobody reads would stop them.
        outs = [open(path + ".out", "w+", encoding="utf-8") for path in args]  # pylint: disable=consider-using-with
        procs = [subprocess.Popen([sys.executable, MODULE, path], env=env, stdout=out, stderr=subprocess.STDOUT)
                 for path, out in zip(args, outs)]
        while any(proc.poll() is None for proc in procs):
            time.sleep(0.005)
            if not os.path.islink(dest):
                continue
            target = os.path.join(parent, os.readlink(dest))
            try:
                served = tree_swap.read_tree(target)
            except OSError:
                served = None
            if os.path.join(parent, os.readlink(dest)) != target:
                continue  # superseded while it was read
            assert served in sets, "the served tree is not one complete set"
            checked += 1
        for proc, out in zip(procs, outs):
            proc.wait()
            out.seek(0)
            text = out.read()
            out.close()
            assert proc.returncode == 0, text[-2000:]
        assert tree_swap.read_tree(dest) in sets
        assert sorted(n for n in os.listdir(parent) if n.startswith(".nodes")) == sorted(
            [".nodes.lock", os.readlink(dest)])
    assert checked > 0
