"""The podman_exec connection against a real container, entering it either
way (podman exec, nsenter): modules piped in (one command each), files copied
both ways, async tasks, a stopped container reported unreachable by name, and
a container started again (a new first process) reached again."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "orion-it-podman-exec"
IMAGE = "localhost/orion-systemd"

PLAY = """
- hosts: %s
  gather_facts: true
  tasks:
    - name: A file from the controller
      ansible.builtin.copy: {content: "hello from the controller\\n", dest: /tmp/greeting, mode: "0640"}
    - name: Read it back in the container
      ansible.builtin.command: stat -c '%%a %%U %%s' /tmp/greeting
      register: stat
      changed_when: false
    - name: A file to the controller
      ansible.builtin.fetch: {src: /etc/os-release, dest: "{{ out }}/os-release", flat: true}
    - name: An async task
      ansible.builtin.command: sleep 2
      async: 30
      poll: 1
      changed_when: false
    - name: Report
      ansible.builtin.copy:
        content: "{{ {'stat': stat.stdout, 'distribution': ansible_facts.distribution} | to_json }}"
        dest: "{{ out }}/report.json"
        mode: "0644"
      delegate_to: localhost
""" % NAME


def playbook(tmp_path, *extra):
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {NAME: {
        "ansible_connection": "orionos.diskless.podman_exec", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                           str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "-e", "out=%s" % tmp_path,
                           "-vvv", *extra], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def container():
    subprocess.run(["bash", os.path.join(ROOT, "tests", "rig", "build-images.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["podman", "rm", "-f", NAME], capture_output=True, check=False)
    subprocess.run(["podman", "run", "-d", "--name", NAME, "--privileged", "--network", "none", IMAGE], check=True,
                   capture_output=True)
    yield NAME
    subprocess.run(["podman", "rm", "-f", NAME], capture_output=True, check=False)


ENTER = {"podman": "'exec', '-i', '%s'" % NAME, "nsenter": "nsenter', '--target'"}


@pytest.mark.parametrize("enter", sorted(ENTER))
def test_modules_are_piped_and_files_travel_both_ways(container, tmp_path, enter):
    res = playbook(tmp_path, "-e", "ansible_podman_exec_enter=" + enter)
    assert res.returncode == 0, res.stdout[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == {"stat": "640 root 26", "distribution": "Debian"}
    assert 'ID=debian' in (tmp_path / "os-release").read_text()
    # Pipelining: the modules went to the container's Python on standard input, none was copied in first.
    assert "EXEC ['" in res.stdout and ENTER[enter] in res.stdout, res.stdout[-3000:]
    assert ENTER[({"podman", "nsenter"} - {enter}).pop()] not in res.stdout
    assert "AnsiballZ_command.py" not in res.stdout.split("An async task")[0]


def test_auto_enters_a_privileged_container_with_nsenter(container, tmp_path):
    res = playbook(tmp_path)
    assert res.returncode == 0 and ENTER["nsenter"] in res.stdout, res.stdout[-3000:]


@pytest.mark.parametrize("enter", sorted(ENTER))
def test_a_stopped_container_is_unreachable_by_name_and_reached_once_started_again(container, tmp_path, enter):
    assert playbook(tmp_path, "-e", "ansible_podman_exec_enter=" + enter).returncode == 0
    subprocess.run(["podman", "stop", "-t", "2", NAME], check=True, capture_output=True)
    try:
        res = playbook(tmp_path, "-e", "ansible_podman_exec_enter=" + enter)
        assert res.returncode != 0
        assert "UNREACHABLE" in res.stdout and "container %s is not running" % NAME in res.stdout, res.stdout[-3000:]
    finally:
        subprocess.run(["podman", "start", NAME], check=True, capture_output=True)
    # Its first process is another now: the identity kept for nsenter is stale and read again.
    again = playbook(tmp_path, "-e", "ansible_podman_exec_enter=" + enter)
    assert again.returncode == 0, again.stdout[-3000:]


def test_nsenter_is_refused_for_a_container_that_is_not_privileged(tmp_path):
    name = NAME + "-plain"
    subprocess.run(["podman", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["podman", "run", "-d", "--name", name, "--network", "none", IMAGE, "sleep", "300"], check=True,
                   capture_output=True)
    try:
        (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {name: {
            "ansible_connection": "orionos.diskless.podman_exec", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", str(tmp_path / "hosts.yml"), name,
               "-m", "ansible.builtin.command", "-a", "true"]
        refused = subprocess.run(cmd + ["-e", "ansible_podman_exec_enter=nsenter"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, check=False, timeout=120)
        assert refused.returncode != 0
        assert ("enter=nsenter cannot be used for %s: the container is not privileged" % name) in refused.stdout, \
            refused.stdout[-2000:]
        # auto takes podman exec for it.
        auto = subprocess.run(cmd + ["-vvv"], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                              timeout=120)
        assert auto.returncode == 0 and "'exec', '-i', '%s'" % name in auto.stdout, auto.stdout[-2000:]
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)
