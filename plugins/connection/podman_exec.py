# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: podman_exec
short_description: Run tasks in local podman containers, with pipelining
version_added: 0.4.0
description:
  - Runs each task in a container of the local podman. Modules are piped to
    the container's Python on standard input (pipelining), so a task costs
    one command in the container instead of the three or four of a
    connection that copies every module into the container first.
  - A command gets into the container in one of two ways (O(enter)). With
    C(podman exec), each command costs about a quarter of a second of
    podman's own work, and as much again to check the container runs. With
    C(nsenter), the command joins the namespaces of the container's first
    process directly, which takes milliseconds; the process's identity
    (PID, start time, environment) is inspected once and kept in
    C(/run/orion-podman-exec/), and checked against C(/proc) before each
    use, so a container that was stopped, restarted or made anew is
    inspected again.
  - Files (the M(ansible.builtin.copy) and M(ansible.builtin.template)
    sources, M(ansible.builtin.fetch)) go through C(podman cp), or through
    C(cat) in the container with C(nsenter).
  - Meant for the OrionOS lab and its test scenarios, where the boot servers
    are containers on the machine that runs Ansible. Real boot servers are
    reached over SSH.
author:
  - OrionOS maintainers (@orionos)
options:
  remote_addr:
    description: The container's name or ID.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  remote_user:
    description: The user tasks run as in the container (C(podman exec --user)); the image's user when unset.
    type: str
    vars:
      - name: ansible_user
  podman_executable:
    description: The podman command on the controller.
    type: str
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  enter:
    description:
      - How a command gets into the container.
      - V(nsenter) joins the container's mount, UTS, IPC, network, PID and
        cgroup namespaces, its root and working directory, with the
        environment of its configuration. It needs root on the controller,
        a rootful podman and a privileged container, because a command
        entered this way has the controller's capabilities and no seccomp
        profile (as in a privileged container) and stays in the controller's
        cgroup (it still ends with the container, being in its PID
        namespace).
      - V(podman) runs every command with C(podman exec).
      - V(auto) takes V(nsenter) when the controller runs as root (so podman
        is rootful), the C(nsenter) command is on PATH, O(remote_user) is not
        set and the container is privileged; otherwise V(podman).
    type: str
    choices: [auto, nsenter, podman]
    default: auto
    vars:
      - name: ansible_podman_exec_enter
    env:
      - name: ANSIBLE_PODMAN_EXEC_ENTER
  pipelining:
    description: Pipe modules to the container's Python instead of copying them in first.
    type: bool
    default: true
    vars:
      - name: ansible_pipelining
notes:
  - The container must be running; a stopped or missing container makes the host unreachable, naming it.
  - V(nsenter) asked for where it cannot be used (not root, a rootless podman, a container that is not privileged,
    O(remote_user) set) makes the host unreachable, saying why.
"""

EXAMPLES = r"""
# inventory: the lab's boot servers are the containers orion-lab-srv1 and orion-lab-srv2
# orion_boot_servers:
#   vars:
#     ansible_connection: orionos.diskless.podman_exec
#     ansible_python_interpreter: /usr/bin/python3
#   hosts:
#     orion-lab-srv1:
#     orion-lab-srv2:

- name: Run a task in a container named on the command line
  hosts: all
  gather_facts: false
  vars:
    ansible_connection: orionos.diskless.podman_exec
  tasks:
    - name: Show the container's kernel
      ansible.builtin.command: uname -r
      changed_when: false
"""

import json
import os
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.orionos.diskless.plugins.module_utils.fileio import atomic_write

display = Display()

# Where the identity of each container's first process is kept between tasks (nsenter only: root).
CACHE_DIR = "/run/orion-podman-exec"
# The namespaces a command joins, and the root and working directory of the target (nsenter's own flags).
NSENTER_FLAGS = ["--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd"]


def exec_argv(podman, container, cmd, user=None, stdin=False):
    """The podman command line that runs the shell command ``cmd`` in ``container``."""
    argv = [podman, "exec"]
    if stdin:
        argv.append("-i")
    if user:
        argv.extend(["--user", user])
    return argv + [container] + shlex.split(cmd)


def nsenter_argv(nsenter, pid, cmd):
    """The nsenter command line that runs the shell command ``cmd`` in the namespaces of process ``pid``."""
    return [nsenter, "--target", str(pid)] + NSENTER_FLAGS + ["--"] + shlex.split(cmd)


def copy_argv(podman, source, dest):
    """The podman command line that copies one path to another (``container:path`` on either side)."""
    return [podman, "cp", source, dest]


def start_time(pid, proc="/proc"):
    """The start time of process ``pid`` (clock ticks after boot, field 22 of its stat), or None if it is gone."""
    try:
        with open("%s/%d/stat" % (proc, int(pid)), "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except (OSError, ValueError):
        return None
    # The command name, in parentheses, may hold spaces and parentheses: the fields after it are plain.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 else None


def identity(inspected, proc="/proc"):
    """What nsenter needs of a container, from ``podman container inspect`` (one container's JSON object):
    {pid, start, env, privileged}; None if it does not run."""
    state = inspected.get("State") or {}
    pid = state.get("Pid") or 0
    if not state.get("Running") or pid <= 0:
        return None
    start = start_time(pid, proc)
    if start is None:
        return None
    env = {}
    for item in (inspected.get("Config") or {}).get("Env") or []:
        key, _sep, value = item.partition("=")
        env[key] = value
    return {"pid": pid, "start": start, "env": env,
            "privileged": bool((inspected.get("HostConfig") or {}).get("Privileged"))}


def still_running(known, proc="/proc"):
    """Whether the process of a kept identity is still the container's first process (same PID, same start)."""
    return bool(known) and start_time(known.get("pid", 0), proc) == known.get("start")


class Connection(ConnectionBase):
    """podman exec, or nsenter, with pipelining."""

    transport = "orionos.diskless.podman_exec"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._podman = None
        self._nsenter = None
        self._target = None

    @property
    def _container(self):
        return self.get_option("remote_addr")

    def _cache_path(self):
        return os.path.join(CACHE_DIR, "%s.json" % self._container.replace("/", "_"))

    def _kept(self):
        try:
            with open(self._cache_path(), encoding="utf-8") as handle:
                known = json.load(handle)
        except (OSError, ValueError):
            return None
        return known if isinstance(known, dict) and still_running(known) else None

    def _inspect(self):
        """The container's JSON object from podman, or raise naming it if it does not run."""
        res = subprocess.run([self._podman, "container", "inspect", self._container], capture_output=True,
                             check=False)
        inspected = None
        if res.returncode == 0:
            try:
                inspected = json.loads(res.stdout)[0]
            except (ValueError, IndexError, KeyError, TypeError):
                inspected = None
        if not inspected or not (inspected.get("State") or {}).get("Running"):
            raise AnsibleConnectionFailure("podman_exec: container %s is not running: %s"
                                           % (self._container, to_native(res.stderr).strip() or "stopped"))
        return inspected

    def _choose(self, inspected):
        """nsenter's target (the container's identity), or None for podman exec, as O(enter) says."""
        enter = self.get_option("enter")
        if enter == "podman":
            return None
        nsenter = shutil.which("nsenter")
        why = None
        if os.geteuid() != 0:
            why = "the controller does not run as root"
        elif not nsenter:
            why = "the nsenter command is not on PATH"
        elif self.get_option("remote_user"):
            why = "remote_user is set (nsenter runs commands as root)"
        elif not (inspected.get("HostConfig") or {}).get("Privileged"):
            why = "the container is not privileged"
        if why:
            if enter == "nsenter":
                raise AnsibleConnectionFailure("podman_exec: enter=nsenter cannot be used for %s: %s"
                                               % (self._container, why))
            display.vvv("podman_exec: podman exec, as %s" % why, host=self._container)
            return None
        target = identity(inspected)
        if target is None:
            raise AnsibleConnectionFailure("podman_exec: container %s is not running: its first process is gone"
                                           % self._container)
        self._nsenter = nsenter
        try:
            atomic_write(self._cache_path(), json.dumps(target).encode(), mode=0o600, dir_mode=0o700,
                         sync_dir=False)
        except OSError as exc:
            display.vvv("podman_exec: could not keep the container's identity: %s" % exc, host=self._container)
        return target

    def _connect(self):
        if not self._connected:
            executable = self.get_option("podman_executable")
            self._podman = shutil.which(executable)
            if not self._podman:
                raise AnsibleConnectionFailure("podman_exec: the podman command %r is not on PATH" % executable)
            known = None
            if self.get_option("enter") != "podman" and os.geteuid() == 0 and not self.get_option("remote_user"):
                known = self._kept()
                self._nsenter = shutil.which("nsenter") if known else None
            self._target = known if known and self._nsenter else self._choose(self._inspect())
            self._connected = True
        return self

    def _run(self, cmd, in_data=None, stdout=subprocess.PIPE):
        """Run the shell command ``cmd`` in the container; the finished process."""
        if self._target:
            argv = nsenter_argv(self._nsenter, self._target["pid"], cmd)
            env = self._target["env"]
        else:
            argv = exec_argv(self._podman, self._container, cmd, user=self.get_option("remote_user"),
                             stdin=in_data is not None)
            env = None
        display.vvv("EXEC %s" % argv, host=self._container)
        feed = {"input": in_data} if in_data is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run([to_bytes(arg, errors="surrogate_or_strict") for arg in argv], stdout=stdout,
                              stderr=subprocess.PIPE, env=env, check=False, **feed)

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        proc = self._run(to_native(cmd, errors="surrogate_or_strict"), in_data=in_data)
        return proc.returncode, proc.stdout, proc.stderr

    def _copy(self, source, dest):
        self._connect()
        proc = subprocess.run(copy_argv(self._podman, source, dest), capture_output=True, check=False)
        if proc.returncode != 0:
            raise AnsibleConnectionFailure("podman_exec: copying %s to %s failed: %s"
                                           % (source, dest, to_native(proc.stderr).strip()))

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._container)
        try:
            with open(in_path, "rb") as handle:
                data = handle.read() if self._connect()._target else None
        except OSError as exc:
            raise AnsibleFileNotFound("podman_exec: cannot read %s: %s" % (in_path, exc)) from exc
        if data is not None:
            proc = self._run("sh -c %s sh %s" % (shlex.quote('cat > "$1"'), shlex.quote(out_path)), in_data=data)
            if proc.returncode != 0:
                raise AnsibleConnectionFailure("podman_exec: copying %s to %s:%s failed: %s"
                                               % (in_path, self._container, out_path, to_native(proc.stderr).strip()))
            return
        self._copy(in_path, "%s:%s" % (self._container, out_path))
        user = self.get_option("remote_user")
        if user:
            # podman cp keeps the controller's owner; the task's user must be able to read and remove it.
            rc, _out, err = self.exec_command("chown %s %s" % (shlex.quote(user), shlex.quote(out_path)))
            if rc != 0:
                raise AnsibleConnectionFailure("podman_exec: chown of %s failed: %s" % (out_path, to_native(err)))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._container)
        if self._connect()._target:
            with open(out_path, "wb") as handle:
                proc = self._run("cat -- %s" % shlex.quote(in_path), stdout=handle)
            if proc.returncode != 0:
                raise AnsibleConnectionFailure("podman_exec: copying %s:%s to %s failed: %s"
                                               % (self._container, in_path, out_path, to_native(proc.stderr).strip()))
            return
        self._copy("%s:%s" % (self._container, in_path), out_path)

    def close(self):
        self._connected = False
