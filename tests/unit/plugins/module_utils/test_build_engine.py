"""Unit tests of the recipe build engine: validation, keys, stamps, resuming, failures.

The packages here are real tarballs made by the tests, built by real bash
steps; only their contents are small.
"""

import copy
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.orionos.diskless.plugins.module_utils import build_engine as engine


def make_tarball(directory, name, files):
    path = os.path.join(str(directory), name)
    with tarfile.open(path, "w:gz") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo("%s/%s" % (name.split(".tar")[0], member))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def sources(tmp_path):
    directory = tmp_path / "sources"
    directory.mkdir()
    shas = {
        "alpha": make_tarball(directory, "alpha-1.0.tar.gz", {"hello.txt": b"alpha\n"}),
        "beta": make_tarball(directory, "beta-2.0.tar.gz", {"hello.txt": b"beta\n"}),
        "gamma": make_tarball(directory, "gamma-3.0.tar.gz", {"hello.txt": b"gamma\n"}),
    }
    return directory, shas


def profile_of(shas, **changes):
    packages = []
    for name, version in (("alpha", "1.0"), ("beta", "2.0"), ("gamma", "3.0")):
        packages.append({
            "name": name, "version": version, "stage": "toolchain", "sbu": 0.5,
            "sources": [{"file": "%s-%s.tar.gz" % (name, version), "sha256": shas[name]}],
            "steps": {"build": "cat hello.txt > built.txt",
                      "install": 'mkdir -p "$ORION_ROOTFS" && cp built.txt "$ORION_ROOTFS/$ORION_PACKAGE"'},
        })
    profile = {"profile": "test", "sbu_reference": "alpha", "packages": packages}
    for name, recipe in changes.items():
        for pkg in packages:
            if pkg["name"] == name:
                pkg.update(recipe)
    return profile


def build_all(profile, build_dir, sources_dir, context):
    return [engine.build_package(profile, pkg["name"], str(build_dir), str(sources_dir), context=context)
            for pkg in profile["packages"]]


def test_a_sound_profile_has_no_problems(sources):
    assert engine.validate_profile(profile_of(sources[1])) == []


@pytest.mark.parametrize("change, expected", [
    ({"name": "Bad Name"}, "packages[0].name: 'Bad Name' is not a package name"),
    ({"version": "1.0;rm"}, "package alpha: version '1.0;rm' is not a version string"),
    ({"stage": "chapter9"}, "package alpha: stage 'chapter9' is not one of"),
    ({"sbu": -1}, "package alpha: sbu -1 is not a number from 0 to 1000"),
    ({"sbu": True}, "package alpha: sbu True is not a number"),
    ({"sources": [{"file": "../x.tar", "sha256": "0" * 64}]}, "sources[0].file: '../x.tar' is not a plain file name"),
    ({"sources": [{"file": "x.tar", "sha256": "ABC"}]}, "sources[0].sha256: 'ABC' is not 64 lower-case hex digits"),
    ({"sources": [{"file": "x.tar", "sha256": "0" * 64, "url": "u"}]}, "sources[0]: unknown field 'url'"),
    ({"steps": {"compile": "make"}}, "package alpha: unknown step 'compile'"),
    ({"steps": {}}, "package alpha: steps must be a mapping"),
    ({"steps": {"build": "  "}}, "package alpha: step build must be non-empty shell text"),
    ({"depends": ["gamma"]}, "package alpha: depends on 'gamma', which is not a package before it"),
    ({"env": {"lower": "x"}}, "package alpha: env name 'lower' is not an upper-case variable name"),
    ({"env": {"CFLAGS": "a\nb"}}, "package alpha: env CFLAGS: 'a\\nb' is not a one-line string"),
    ({"unpack": "yes"}, "package alpha: unpack must be true or false"),
    ({"patch": []}, "package alpha: unknown field 'patch'"),
])
def test_each_bad_recipe_field_is_named(sources, change, expected):
    problems = engine.validate_profile(profile_of(sources[1], alpha=change))
    assert any(expected in problem for problem in problems), problems


def test_every_problem_is_collected(sources):
    profile = profile_of(sources[1], alpha={"sbu": -1}, beta={"stage": "x"}, gamma={"name": "beta"})
    profile["sbu_reference"] = "nothing"
    problems = engine.validate_profile(profile)
    assert any("package alpha: sbu" in p for p in problems)
    assert any("package beta: stage" in p for p in problems)
    assert any("package beta: the name is used twice" in p for p in problems)
    assert any("sbu_reference 'nothing'" in p for p in problems)


def test_two_recipes_disagreeing_on_a_file_are_refused(sources):
    profile = profile_of(sources[1])
    profile["packages"][1]["patches"] = [{"file": "alpha-1.0.tar.gz", "sha256": "1" * 64}]
    with pytest.raises(engine.BuildError) as err:
        engine.source_files(profile)
    assert "alpha-1.0.tar.gz has sha256 1111" in err.value.problems[0]


def test_build_stamps_and_a_second_run_builds_nothing(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas)
    context = {"ORION_ROOTFS": str(tmp_path / "rootfs")}
    first = build_all(profile, tmp_path / "build", directory, context)
    assert [r["changed"] for r in first] == [True, True, True]
    assert (tmp_path / "rootfs" / "beta").read_text() == "beta\n"
    stamp = json.loads((tmp_path / "build" / "stamps" / "beta.json").read_text())
    assert stamp["key"] == first[1]["key"] and stamp["version"] == "2.0"
    assert not (tmp_path / "build" / "work" / "beta").exists()
    second = build_all(profile, tmp_path / "build", directory, context)
    assert [r["changed"] for r in second] == [False, False, False]
    assert [r["state"] for r in engine.plan(profile, str(tmp_path / "build"), context)] == ["built"] * 3


def test_changing_one_recipe_rebuilds_it_and_what_depends_on_it_only(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas, gamma={"depends": ["alpha"]})
    context = {"ORION_ROOTFS": str(tmp_path / "rootfs")}
    build_all(profile, tmp_path / "build", directory, context)
    changed = profile_of(shas, gamma={"depends": ["alpha"]},
                         beta={"steps": {"build": "cat hello.txt hello.txt > built.txt",
                                         "install": 'cp built.txt "$ORION_ROOTFS/$ORION_PACKAGE"'}})
    states = {r["name"]: r["state"] for r in engine.plan(changed, str(tmp_path / "build"), context)}
    assert states == {"alpha": "built", "beta": "pending", "gamma": "built"}
    # Without depends, gamma comes after beta in the chain and is rebuilt too.
    chain = profile_of(shas, beta=changed["packages"][1])
    states = {r["name"]: r["state"] for r in engine.plan(chain, str(tmp_path / "build"), context)}
    assert states == {"alpha": "built", "beta": "pending", "gamma": "pending"}


def test_description_and_sbu_estimate_do_not_change_keys(sources):
    profile = profile_of(sources[1])
    other = copy.deepcopy(profile)
    other["packages"][0]["sbu"] = 9
    other["packages"][0]["description"] = "the first one"
    assert engine.package_keys(profile) == engine.package_keys(other)


def test_the_context_is_part_of_every_key(sources):
    profile = profile_of(sources[1])
    one = engine.package_keys(profile, {"LFS": "/mnt/lfs"})
    two = engine.package_keys(profile, {"LFS": "/mnt/other"})
    assert all(one[name] != two[name] for name in one)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["alpha", "beta", "gamma"]), min_size=1, max_size=3, unique=True),
       st.text(alphabet="abcdefgh \n", min_size=1, max_size=20))
def test_property_a_changed_recipe_changes_exactly_its_dependents_keys(changed_names, text):
    shas = {"alpha": "a" * 64, "beta": "b" * 64, "gamma": "c" * 64}
    profile = profile_of(shas, gamma={"depends": ["alpha"]})
    before = engine.package_keys(profile)
    other = copy.deepcopy(profile)
    for pkg in other["packages"]:
        if pkg["name"] in changed_names:
            pkg["steps"] = dict(pkg["steps"], finish="echo '%s'" % text.replace("'", ""))
    after = engine.package_keys(other)
    deps = engine.dependencies(profile)
    affected = set(changed_names)
    for name in ("alpha", "beta", "gamma"):
        if set(deps[name]) & affected:
            affected.add(name)
    assert {name for name in before if before[name] != after[name]} == affected


def test_a_failing_step_names_the_package_keeps_earlier_stamps_and_stamps_nothing(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas, beta={"steps": {"build": "echo compiling beta; echo 'error: no cc' >&2; exit 3"}})
    context = {"ORION_ROOTFS": str(tmp_path / "rootfs")}
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory), context=context)
    with pytest.raises(engine.BuildError) as err:
        engine.build_package(profile, "beta", str(tmp_path / "build"), str(directory), context=context)
    assert "package beta 2.0: step build failed with exit code 3" in str(err.value)
    assert "error: no cc" in "\n".join(err.value.log_tail)
    assert (tmp_path / "build" / "stamps" / "alpha.json").exists()
    assert not (tmp_path / "build" / "stamps" / "beta.json").exists()
    with pytest.raises(engine.BuildError) as err:
        engine.build_package(profile, "gamma", str(tmp_path / "build"), str(directory), context=context)
    assert "beta not built yet" in str(err.value)


def test_a_source_with_a_wrong_sha256_is_refused(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas, alpha={"sources": [{"file": "alpha-1.0.tar.gz", "sha256": "0" * 64}]})
    with pytest.raises(engine.BuildError) as err:
        engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory))
    assert "alpha-1.0.tar.gz has sha256 %s, the recipe says %s" % (shas["alpha"], "0" * 64) in str(err.value)
    assert not (tmp_path / "build" / "stamps" / "alpha.json").exists()


def test_steps_get_a_clean_environment(tmp_path, sources, monkeypatch):
    directory, shas = sources
    monkeypatch.setenv("LEAKED_FROM_CALLER", "yes")
    profile = profile_of(shas, alpha={"env": {"CFLAGS": "-O2"},
                                      "steps": {"build": 'env | sort > "$ORION_ROOTFS.env"'}})
    profile["env"] = {"TARGET": "x86_64-orion-linux-musl"}
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory),
                         context={"ORION_ROOTFS": str(tmp_path / "rootfs")}, jobs=3)
    env = dict(line.split("=", 1) for line in (tmp_path / "rootfs.env").read_text().splitlines())
    assert "LEAKED_FROM_CALLER" not in env
    assert env["CFLAGS"] == "-O2" and env["TARGET"] == "x86_64-orion-linux-musl"
    assert env["MAKEFLAGS"] == "-j3" and env["LC_ALL"] == "POSIX"
    assert env["ORION_SOURCES"] == str(directory)


def test_a_killed_build_resumes_at_the_package_that_was_running(tmp_path, sources):
    """Kill the build process while beta runs: alpha stays built, beta has no stamp, and
    the next run builds beta and gamma only."""
    directory, shas = sources
    marker = tmp_path / "beta-running"
    profile = profile_of(shas, beta={"steps": {"build": 'touch "%s"; sleep 60' % marker}})
    context = {"ORION_ROOTFS": str(tmp_path / "rootfs")}
    script = (
        "import json, sys\n"
        "from ansible_collections.orionos.diskless.plugins.module_utils import build_engine as e\n"
        "p, b, s, c = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])\n"
        "for pkg in p['packages']:\n"
        "    e.build_package(p, pkg['name'], b, s, context=c)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(profile), str(tmp_path / "build"),
                             str(directory), json.dumps(context)], start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    alpha_stamp = (tmp_path / "build" / "stamps" / "alpha.json").read_text()
    assert not (tmp_path / "build" / "stamps" / "beta.json").exists()
    states = {r["name"]: r["state"] for r in engine.plan(profile, str(tmp_path / "build"), context)}
    assert states == {"alpha": "built", "beta": "pending", "gamma": "pending"}
    fixed = profile_of(shas)
    results = build_all(fixed, tmp_path / "build", directory, context)
    assert [r["changed"] for r in results] == [False, True, True]
    assert (tmp_path / "build" / "stamps" / "alpha.json").read_text() == alpha_stamp
    assert (tmp_path / "rootfs" / "gamma").read_text() == "gamma\n"


def test_a_second_build_in_the_same_directory_is_refused(tmp_path, sources):
    directory, shas = sources
    with engine.BuildLock(str(tmp_path / "build")):
        with pytest.raises(engine.BuildError) as err:
            engine.build_package(profile_of(shas), "alpha", str(tmp_path / "build"), str(directory))
    assert "another build holds" in str(err.value) and str(os.getpid()) in str(err.value)


def test_report_in_sbu(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas)
    ticks = iter(range(0, 1000, 5))

    def clock():
        return float(next(ticks))  # each call is 5 s later
    for pkg in profile["packages"]:
        engine.build_package(profile, pkg["name"], str(tmp_path / "build"), str(directory),
                             context={"ORION_ROOTFS": str(tmp_path / "r")}, now=clock)
    engine.record_sbu(str(tmp_path / "build"), "alpha", 5.0)
    table = engine.report(profile, str(tmp_path / "build"), {"ORION_ROOTFS": str(tmp_path / "r")})
    assert table["sbu_seconds"] == 5.0
    assert [row["sbu"] for row in table["packages"]] == [1.0, 1.0, 1.0]
    assert table["total_sbu"] == 3.0


def test_report_in_sbu_of_cpu_time(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas)
    cpu = iter([0.0, 2.0, 10.0, 16.0, 20.0, 21.0])  # alpha 2 s, beta 6 s, gamma 1 s of CPU
    for pkg in profile["packages"]:
        engine.build_package(profile, pkg["name"], str(tmp_path / "build"), str(directory),
                             context={"ORION_ROOTFS": str(tmp_path / "r")}, cpu=lambda: next(cpu))
    engine.record_sbu(str(tmp_path / "build"), "alpha", 50.0, 2.0)
    table = engine.report(profile, str(tmp_path / "build"), {"ORION_ROOTFS": str(tmp_path / "r")})
    assert table["sbu_cpu_seconds"] == 2.0
    assert [row["cpu_sbu"] for row in table["packages"]] == [1.0, 3.0, 0.5]
    assert table["total_cpu_seconds"] == 9.0 and table["total_cpu_sbu"] == 4.5


def test_the_cpu_time_of_a_step_is_counted_in_its_stamp(tmp_path, sources):
    directory, shas = sources
    burn = "python3 -c 'import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass'"
    profile = profile_of(shas, alpha={"steps": {"build": burn}})
    result = engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory),
                                  context={"ORION_ROOTFS": str(tmp_path / "r")})
    assert result["cpu_seconds"] >= 0.5
    assert engine.read_stamp(str(tmp_path / "build"), "alpha")["cpu_seconds"] == result["cpu_seconds"]


def test_inputs_key_one_package_and_its_dependents_and_reach_its_steps(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas, gamma={"depends": ["alpha"]},
                         alpha={"steps": {"build": 'echo "$FRAGMENTS" > "$ORION_ROOTFS.alpha"'}})
    plain = engine.package_keys(profile)
    given = engine.package_keys(profile, inputs={"alpha": {"FRAGMENTS": "abc"}})
    assert given["alpha"] != plain["alpha"] and given["gamma"] != plain["gamma"]
    assert given["beta"] != plain["beta"]  # beta depends on alpha through the chain
    only_beta = engine.package_keys(profile, inputs={"beta": {"X": "1"}})
    assert only_beta["alpha"] == plain["alpha"] and only_beta["gamma"] == plain["gamma"]
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory),
                         context={"ORION_ROOTFS": str(tmp_path / "rootfs")}, inputs={"alpha": {"FRAGMENTS": "abc"}})
    assert (tmp_path / "rootfs.alpha").read_text() == "abc\n"


def test_a_step_knows_its_profile_package_and_key(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas, alpha={"steps": {"build": 'echo "$ORION_PROFILE $ORION_PACKAGE $ORION_KEY" > "$ORION_ROOTFS.id"'}})
    context = {"ORION_ROOTFS": str(tmp_path / "rootfs")}
    result = engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory), context=context)
    assert (tmp_path / "rootfs.id").read_text() == "test alpha %s\n" % result["key"]
    assert result["key"] == engine.package_keys(profile, context)["alpha"]


def test_env_values_refer_to_earlier_variables():
    profile = {"profile": "p", "env": {"PATH": "${LFS}/tools/bin:/usr/bin", "CONFIG_SITE": "${LFS}/usr/share/config.site"},
               "packages": []}
    pkg = {"name": "x", "version": "1", "env": {"CC": "${LFS_TGT}-gcc", "KEEP": "$$literal ${UNKNOWN}"}}
    env = engine.step_environment(dict(profile, env=dict(profile["env"], LFS_TGT="x86_64-lfs-linux-gnu")), pkg,
                                  {"LFS": "/mnt/lfs"}, "/src")
    assert env["PATH"] == "/mnt/lfs/tools/bin:/usr/bin"
    assert env["CONFIG_SITE"] == "/mnt/lfs/usr/share/config.site"
    assert env["CC"] == "x86_64-lfs-linux-gnu-gcc"
    assert env["KEEP"] == "$literal ${UNKNOWN}"


def test_the_sbu_is_shared_with_the_profiles_beside_it(tmp_path):
    engine.record_sbu(str(tmp_path / "lfs"), "binutils-pass1", 150.0)
    assert engine.sbu_seconds(str(tmp_path / "lfs")) == 150.0
    assert engine.sbu_seconds(str(tmp_path / "minimal")) == 150.0
    assert engine.sbu_seconds(str(tmp_path / "x" / "y")) is None


def test_closure_is_the_packages_and_what_they_depend_on(sources):
    profile = profile_of(sources[1], gamma={"depends": ["alpha"]})
    assert engine.closure(profile, ["gamma"]) == ["alpha", "gamma"]
    assert engine.closure(profile, ["beta"]) == ["alpha", "beta"]
    assert list(engine.source_files(profile, engine.closure(profile, ["gamma"]))) == ["alpha-1.0.tar.gz", "gamma-3.0.tar.gz"]


def tiny_root(path):
    """A root a chroot can run: bash and the libraries it links with, copied from the host."""
    libs = subprocess.run(["ldd", "/bin/bash"], capture_output=True, text=True, check=True).stdout
    for binary in ["/bin/bash"] + re.findall(r"(/\S+\.so[.\d]*)", libs):
        target = path / binary.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(binary), target)
    return path


def chroot_profile(shas, steps):
    profile = profile_of(shas)
    profile["chroot_root"] = "LFS"
    profile["packages"][1].update(chroot=True, steps=steps)
    return profile


def test_a_chroot_package_builds_inside_the_root_with_the_virtual_file_systems(tmp_path, sources):
    directory, shas = sources
    root = tiny_root(tmp_path / "lfs")
    steps = {"build": 'read -r line < hello.txt; echo "$line $PWD $ORION_SOURCES $PATH $HOME" > /built.txt',
             "install": "[ -e /proc/self/status ] && [ -c /dev/null ] && [ -d /sys/kernel ] && echo mounted > /vfs.txt"}
    profile = chroot_profile(shas, steps)
    context = {"LFS": str(root), "ORION_ROOTFS": str(tmp_path / "rootfs")}
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory), context=context)
    result = engine.build_package(profile, "beta", str(tmp_path / "build"), str(directory), context=context)
    assert result["changed"] is True
    assert (root / "built.txt").read_text() == "beta /orion-build/work/beta /orion-build/sources /usr/bin:/usr/sbin /root\n"
    assert (root / "vfs.txt").read_text() == "mounted\n"
    assert (root / "orion-build" / "sources" / "beta-2.0.tar.gz").is_file()
    # Unmounted once the package is built; the tree is gone, the stamp is there.
    assert engine.mounts_under(str(root)) == []
    assert not (root / "orion-build" / "work" / "beta").exists()
    assert engine.read_stamp(str(tmp_path / "build"), "beta")["key"] == result["key"]


def test_a_chroot_package_reads_the_build_files_and_cannot_change_them(tmp_path, sources):
    directory, shas = sources
    root = tiny_root(tmp_path / "lfs")
    files = tmp_path / "files"
    (files / "src").mkdir(parents=True)
    (files / "src" / "tool.c").write_text("int main(void) { return 0; }\n")
    steps = {"build": 'read -r line < "$ORION_FILES/src/tool.c"; echo "$ORION_FILES: $line" > /seen.txt',
             "install": 'if echo x 2>/dev/null > "$ORION_FILES/new.txt"; then echo written; else echo refused; fi > /write.txt'}
    profile = chroot_profile(shas, steps)
    context = {"LFS": str(root), "ORION_ROOTFS": str(tmp_path / "rootfs"), "ORION_FILES": str(files)}
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory), context=context)
    engine.build_package(profile, "beta", str(tmp_path / "build"), str(directory), context=context)
    assert (root / "seen.txt").read_text() == "/orion-build/files: int main(void) { return 0; }\n"
    assert (root / "write.txt").read_text() == "refused\n"
    assert not (files / "new.txt").exists()
    assert engine.mounts_under(str(root)) == []


def test_a_root_package_runs_as_root_and_the_others_as_the_build_user(tmp_path, sources):
    directory, shas = sources
    profile = profile_of(shas)
    for pkg in profile["packages"]:
        pkg["steps"] = {"build": "id -u > uid.txt"}
    profile["packages"][1]["root"] = True
    build = str(tmp_path / "build")
    for name in ("alpha", "beta"):
        engine.build_package(profile, name, build, str(directory), user="nobody", keep_work=True)
    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True, check=True).stdout
    assert (tmp_path / "build" / "work" / "alpha" / "uid.txt").read_text() == nobody
    assert (tmp_path / "build" / "work" / "beta" / "uid.txt").read_text() == "0\n"


def test_root_is_a_flag_of_host_packages_only(sources):
    profile = profile_of(sources[1])
    profile["chroot_root"] = "LFS"
    profile["packages"][1]["root"] = "yes"
    assert "package beta: root must be true or false, got 'yes'" in engine.validate_profile(profile)
    profile["packages"][1].update(root=True, chroot=True)
    assert ("package beta: root is for steps on the host; a chroot package runs as root already"
            in engine.validate_profile(profile))


def test_a_failing_chroot_package_leaves_nothing_mounted_and_no_stamp(tmp_path, sources):
    directory, shas = sources
    root = tiny_root(tmp_path / "lfs")
    profile = chroot_profile(shas, {"build": "echo half > /half.txt; exit 7"})
    context = {"LFS": str(root), "ORION_ROOTFS": str(tmp_path / "rootfs")}
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory), context=context)
    with pytest.raises(engine.BuildError) as failure:
        engine.build_package(profile, "beta", str(tmp_path / "build"), str(directory), context=context)
    assert "package beta 2.0: step build failed with exit code 7" in str(failure.value)
    assert (root / "half.txt").exists()
    assert engine.mounts_under(str(root)) == []
    assert engine.read_stamp(str(tmp_path / "build"), "beta") is None


def test_mounts_left_by_a_killed_build_are_taken_over_and_unmounted(tmp_path):
    def host_dev_mounts():
        return sorted(line.split()[4] for line in open("/proc/self/mountinfo")
                      if line.split()[4] == "/dev" or line.split()[4].startswith("/dev/"))

    root = tiny_root(tmp_path / "lfs")
    before = host_dev_mounts()
    engine.chroot_mount(str(root))
    points = engine.mounts_under(str(root))
    assert [p[len(str(root)):] for p in points] == ["/dev", "/dev/pts", "/proc", "/sys", "/run", "/dev/shm"]
    # A second mount (the next run) mounts nothing twice.
    engine.chroot_mount(str(root))
    assert engine.mounts_under(str(root)) == points
    # Nothing mounted inside the chroot's /dev (its /dev/shm) reaches the host's.
    assert host_dev_mounts() == before
    assert sorted(engine.chroot_unmount(str(root))) == sorted(points)
    assert engine.mounts_under(str(root)) == []


def test_chroot_recipes_are_checked(sources):
    profile = profile_of(sources[1])
    profile["packages"][1]["chroot"] = "yes"
    problems = engine.validate_profile(profile)
    assert "package beta: chroot must be true or false, got 'yes'" in problems
    profile["packages"][1]["chroot"] = True
    assert ("package beta: chroot needs the profile's chroot_root (the variable holding the root)"
            in engine.validate_profile(profile))
    profile["chroot_root"] = "lfs root"
    assert "profile: chroot_root 'lfs root' is not a variable name" in engine.validate_profile(profile)


def test_a_chroot_without_a_shell_is_refused_before_anything_runs(tmp_path, sources):
    directory, shas = sources
    profile = chroot_profile(shas, {"build": "true"})
    (tmp_path / "empty").mkdir()
    context = {"LFS": str(tmp_path / "empty"), "ORION_ROOTFS": str(tmp_path / "rootfs")}
    engine.build_package(profile, "alpha", str(tmp_path / "build"), str(directory), context=context)
    with pytest.raises(engine.BuildError) as failure:
        engine.build_package(profile, "beta", str(tmp_path / "build"), str(directory), context=context)
    assert "has no /bin/bash yet" in str(failure.value)
    assert engine.mounts_under(str(tmp_path / "empty")) == []


RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "roles", "lfs_sources", "files",
                       "recipes")


def with_includes(profile):
    """The profile as the lfs_sources role puts it together: the packages of
    each included file (recipes/include), with the include's env added."""
    import yaml  # pylint: disable=import-outside-toplevel
    profile = dict(profile)
    for entry in profile.pop("include", []):
        with open(os.path.join(RECIPES, "include", entry["file"])) as handle:
            for pkg in yaml.safe_load(handle)["packages"]:
                if "env" in entry:
                    pkg = dict(pkg, env=dict(pkg.get("env") or {}, **entry["env"]))
                profile["packages"].append(pkg)
    return profile


def test_an_include_left_unresolved_is_named(sources):
    profile = profile_of(sources[1])
    profile["include"] = [{"file": "node.yml"}]
    assert ("profile: include [{'file': 'node.yml'}] is not resolved (the lfs_sources role adds the packages of the "
            "files it names)") in engine.validate_profile(profile)


@pytest.mark.parametrize("profile_file", sorted(name for name in os.listdir(RECIPES) if name.endswith(".yml")))
def test_every_shipped_profile_is_valid_and_names_each_package_once(profile_file):
    import yaml  # pylint: disable=import-outside-toplevel
    with open(os.path.join(RECIPES, profile_file)) as handle:
        profile = with_includes(yaml.safe_load(handle))
    assert engine.validate_profile(profile) == []
    names = [package["name"] for package in profile["packages"]]
    assert len(names) == len(set(names))
    for package in profile["packages"]:
        for source in package.get("sources", []):
            assert re.match(r"^[0-9a-f]{64}\Z", source["sha256"]), (package["name"], source["file"])
        # The first source is unpacked with tar unless the recipe says otherwise.
        first = (package.get("sources") or [{"file": "none.tar.gz"}])[0]["file"]
        assert re.search(r"\.tar(\.(gz|xz|bz2))?\Z", first) or package.get("unpack") is False, (package["name"], first)


def test_the_lfs_profile_ends_with_the_node_root_and_the_shared_node_packages():
    import yaml  # pylint: disable=import-outside-toplevel
    with open(os.path.join(RECIPES, "lfs.yml")) as handle:
        raw = yaml.safe_load(handle)
    profile = with_includes(copy.deepcopy(raw))
    names = [pkg["name"] for pkg in profile["packages"]]
    assert names[-6:] == ["lfs-final-cleanup", "rootfs", "linux-config", "linux", "initramfs", "image"]
    image = profile["packages"][-1]
    assert image["root"] is True and image["env"] == {"ORION_ROOTFS": "${LFS}",
                                                      "ORION_BUSYBOX": "${LFS}/usr/lib/orion/busybox"}
    # The node's root is the chroot, and the initramfs takes the system's static BusyBox.
    env = engine.step_environment(profile, profile["packages"][-2], {"LFS": "/b/lfs", "ORION_ROOTFS": "/b/rootfs"}, "/w")
    assert (env["ORION_ROOTFS"], env["ORION_BUSYBOX"]) == ("/b/lfs", "/b/lfs/usr/lib/orion/busybox")
    # Adding the node packages changes no key of the system before them: nothing built is built again.
    raw.pop("include")
    before = engine.package_keys(raw, {"LFS": "/b/lfs"})
    after = engine.package_keys(profile, {"LFS": "/b/lfs"})
    assert {name: after[name] for name in before} == before
