# -*- coding: utf-8 -*-
# Copyright: OrionOS maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: podman_exec
short_description: Run tasks in local podman containers, with pipelining
version_added: 0.4.0
description:
  - Runs each task in a container of the local podman with C(podman exec).
    Modules are piped to the container's Python on standard input
    (pipelining), so a task costs one C(podman exec) instead of the three or
    four of a connection that copies every module into the container first.
  - Files (the M(ansible.builtin.copy) and M(ansible.builtin.template)
    sources, M(ansible.builtin.fetch)) go through C(podman cp).
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
  pipelining:
    description: Pipe modules to the container's Python instead of copying them in first.
    type: bool
    default: true
    vars:
      - name: ansible_pipelining
notes:
  - The container must be running; a stopped or missing container makes the host unreachable, naming it.
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

import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


def exec_argv(podman, container, cmd, user=None, stdin=False):
    """The podman command line that runs the shell command ``cmd`` in ``container``."""
    argv = [podman, "exec"]
    if stdin:
        argv.append("-i")
    if user:
        argv.extend(["--user", user])
    return argv + [container] + shlex.split(cmd)


def copy_argv(podman, source, dest):
    """The podman command line that copies one path to another (``container:path`` on either side)."""
    return [podman, "cp", source, dest]


class Connection(ConnectionBase):
    """podman exec with pipelining."""

    transport = "orionos.diskless.podman_exec"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._podman = None

    @property
    def _container(self):
        return self.get_option("remote_addr")

    def _connect(self):
        if not self._connected:
            executable = self.get_option("podman_executable")
            self._podman = shutil.which(executable)
            if not self._podman:
                raise AnsibleConnectionFailure("podman_exec: the podman command %r is not on PATH" % executable)
            state = subprocess.run([self._podman, "container", "inspect", "--format", "{{.State.Running}}",
                                    self._container], capture_output=True, check=False)
            if state.returncode != 0 or state.stdout.strip() != b"true":
                raise AnsibleConnectionFailure("podman_exec: container %s is not running: %s"
                                               % (self._container, to_native(state.stderr).strip() or "stopped"))
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        argv = exec_argv(self._podman, self._container, to_native(cmd, errors="surrogate_or_strict"),
                         user=self.get_option("remote_user"), stdin=in_data is not None)
        display.vvv("EXEC %s" % argv, host=self._container)
        proc = subprocess.run([to_bytes(arg, errors="surrogate_or_strict") for arg in argv],
                              input=in_data, capture_output=True, check=False)
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
            with open(in_path, "rb"):
                pass
        except OSError as exc:
            raise AnsibleFileNotFound("podman_exec: cannot read %s: %s" % (in_path, exc)) from exc
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
        self._copy("%s:%s" % (self._container, in_path), out_path)

    def close(self):
        self._connected = False
