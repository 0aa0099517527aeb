"""The image module run by ansible-playbook against a store in a temporary directory.

Publish in check mode (nothing written), publish, check mode again and
publish again (no change); a different image under a published version is
refused and the store stays as it was; deprecate; verify finds a flipped
byte; removal is refused while a channel refers to the version and done with
force; pruning keeps the newest and the referenced versions.
"""

import json
import os
import stat
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = ("vmlinuz", "initramfs.img", "root.erofs")


def make_src(path, tag):
    os.makedirs(path)
    for name in FILES:
        with open(os.path.join(path, name), "w", encoding="utf-8") as handle:
            handle.write("%s of %s\n" % (name, tag))
    return path


def snapshot(path):
    """Every entry under path with its mode and content."""
    found = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            data = None
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    data = handle.read()
            found[os.path.relpath(full, path)] = (stat.S_IMODE(info.st_mode), data)
    return found


def playbook(tmp_path, name, tasks, check=False, diff=False):
    """Run tasks registering r0, r1, ...; return the registered results and stdout."""
    named = []
    for index, task in enumerate(tasks):
        named.append(dict(task, register="r%d" % index))
    results = tmp_path / ("%s.json" % name)
    named.append({"name": "Save the results", "check_mode": False,
                  "ansible.builtin.copy": {"dest": str(results), "mode": "0644",
                                           "content": "{{ [%s] | to_json }}"
                                           % ", ".join("r%d" % i for i in range(len(tasks)))}})
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": named}]
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump(play))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(path)]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return json.loads(results.read_text()), res.stdout


def image(**args):
    return {"name": "image %s" % args.get("state", "published"), "orionos.diskless.image": args}


def test_publish_deprecate_verify_remove_prune(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    root = str(store)
    src = make_src(str(tmp_path / "build-v1"), "v1")
    other = make_src(str(tmp_path / "build-v1-other"), "another v1")
    sources = {v: make_src(str(tmp_path / ("build-" + v)), v) for v in ("v2", "v3", "v4", "v5")}

    # Check mode reports the publication and writes nothing.
    (out,), stdout = playbook(tmp_path, "check", [image(root=root, version="v1", src=src)], check=True)
    assert out["changed"] is True and [i["version"] for i in out["images"]] == ["v1"]
    assert snapshot(root) == {} and "changed: [localhost]" in stdout

    # Publish; check mode and a second run then report no change.
    tasks = [image(root=root, version="v1", src=src),
             dict(image(root=root, version="v1", src=src), check_mode=True),
             image(root=root, version="v1", src=src)]
    tasks += [image(root=root, version=v, src=s, created="2026-11-0%sT00:00:00Z" % v[1])
              for v, s in sorted(sources.items())]
    results, stdout = playbook(tmp_path, "publish", tasks)
    assert [r["changed"] for r in results] == [True, False, False, True, True, True, True]
    assert "failed=0" in stdout
    v1 = store / "images" / "v1"
    assert sorted(os.listdir(str(v1))) == sorted(FILES + ("manifest.json",))
    assert stat.S_IMODE(os.stat(str(v1 / "vmlinuz")).st_mode) == 0o444
    assert [i["version"] for i in results[-1]["images"]] == ["v1", "v2", "v3", "v4", "v5"]
    published = snapshot(root)

    # A different image under the same version, and removing a version a
    # channel refers to, are refused; the store stays as it was.
    policy = {"channels": {"stable": "v2"}, "default": {"channel": "stable"}}
    tasks = [dict(image(root=root, version="v1", src=other), ignore_errors=True),
             dict(image(root=root, version="v2", state="absent", policy=policy), ignore_errors=True)]
    (refused_publish, refused_remove), stdout = playbook(tmp_path, "refused", tasks)
    assert refused_publish["failed"] is True and stdout.count("...ignoring") == 2
    assert "refuses to overwrite a different image with the same version" in refused_publish["msg"]
    assert "vmlinuz (sha256" in refused_publish["msg"] and "root.erofs (sha256" in refused_publish["msg"]
    assert refused_remove["failed"] is True and "channel stable" in refused_remove["msg"]
    assert refused_remove["referenced_by"] == ["channel stable"]
    assert snapshot(root) == published

    # Flip one byte of a published file.
    target = str(store / "images" / "v3" / "root.erofs")
    os.chmod(target, 0o644)
    with open(target, "r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0x01]))
    os.chmod(target, 0o444)

    tasks = [image(root=root, version="v1", state="deprecated"),
             image(root=root, version="v1", state="deprecated"),
             dict(image(root=root, state="verified"), ignore_errors=True),
             image(root=root, version="v2", state="absent", policy=policy, force=True),
             dict(image(root=root, state="pruned", keep=2, policy={"channels": {"old": "v1"}}), check_mode=True),
             image(root=root, state="pruned", keep=2, policy={"channels": {"old": "v1"}}),
             image(root=root, state="pruned", keep=2, policy={"channels": {"old": "v1"}}),
             image(root=root, state="listed", policy={"channels": {"old": "v1"}}),
             {"name": "Read the fact", "ansible.builtin.set_fact": {"listed": "{{ orion_images }}"}}]
    results, stdout = playbook(tmp_path, "manage", tasks, diff=True)
    deprecate, again, verify, remove, prune_check, prune, prune_again, listed, fact = results
    assert deprecate["changed"] is True and again["changed"] is False
    assert "-v1 published" in stdout and "+v1 deprecated" in stdout
    assert json.loads((store / "state" / "images.json").read_text())["versions"] == {"v1": {"state": "deprecated"}}
    assert verify["failed"] is True and list(verify["corrupt"]) == ["v3"]
    assert "root.erofs has sha256" in verify["msg"] and verify["changed"] is False
    assert remove["changed"] is True and remove["removed"] == ["v2"]
    assert any("still referenced by channel stable" in w for w in remove.get("warnings", []))
    assert prune_check["changed"] is True and prune_check["removed"] == ["v3"]
    assert prune["removed"] == ["v3"]
    assert prune["kept"] == {"v1": ["channel old"], "v4": ["newest"], "v5": ["newest"]}
    assert prune_again["changed"] is False
    assert sorted(os.listdir(str(store / "images"))) == ["v1", "v4", "v5"]
    assert listed["changed"] is False
    by_version = {i["version"]: i for i in listed["images"]}
    assert by_version["v1"]["state"] == "deprecated" and by_version["v1"]["referenced_by"] == ["channel old"]
    assert by_version["v5"]["created"] == "2026-11-05T00:00:00Z" and by_version["v5"]["files"] == 3
    assert fact["ansible_facts"]["listed"] == listed["images"]
