"""Both lab nodes PXE-booted from the servers into the image, configured, and reported."""

import json
import re
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from conftest import FIRST, SECOND, SERVERS, playbook, reports


def test_both_nodes_report_a_good_boot_to_every_server(nodes):
    for name, node in nodes.items():
        got = reports(name)
        assert set(got) == set(SERVERS), "%s reported only to %s" % (name, sorted(got))
        for one in got.values():
            assert one["result"] == "ok", one
            assert one["node"] == name and one["macs"] == [node.mac]
            assert one["primary"] in SERVERS.values()
            assert [path["state"] for path in one["paths"]] == ["A", "A"], one["paths"]
            assert one["phases"]["switch_root"] < one["phases"]["services"] <= one["boot_seconds"]
        print("%s: %s s to the report, phases %s" % (name, node.report["boot_seconds"], node.report["phases"]))


def test_nodes_booted_from_the_network_not_from_a_kernel_given_to_qemu(nodes):
    for node in nodes.values():
        text = node.text()
        # iPXE from the option ROM ran the node's own script from the servers.
        assert "OrionOS node %s boots image" % node.name in text, text[:3000]
        assert "ORIONOS-SWITCH-ROOT node=%s" % node.name in text


def test_root_is_read_only_and_the_overlays_are_writable(nodes):
    for node in nodes.values():
        out = node.run("touch /usr/orion-test 2>&1; echo rc=$?").stdout
        assert "Read-only file system" in out and "rc=1" in out, out
        node.run("for d in /etc /var /root /home /tmp; do echo x > $d/orion-test && rm $d/orion-test; done")
        mounts = node.run("cat /proc/mounts").stdout
        root = re.search(r"^(/dev/loop\d+) / (squashfs|erofs) ro", mounts, re.M)
        assert root, mounts
        # The root's loop device reads the multipath device through the page cache.
        loop = root.group(1).split("/")[-1]
        backing = node.run("cat /sys/block/%s/loop/backing_file /sys/block/%s/loop/dio" % (loop, loop)).stdout.split()
        assert backing == ["/dev/mapper/orion-root", "0"], backing


def test_the_configuration_is_applied_with_node_over_group(nodes):
    # The lab inventory's orion_node_config: a motd for the compute group, the
    # second node's own motd, service, sysctl and private file.
    one, two = nodes[FIRST], nodes[SECOND]
    assert one.run("hostname").stdout.strip() == FIRST
    assert two.run("hostname").stdout.strip() == SECOND
    assert one.run("cat /etc/motd").stdout == "OrionOS lab node\n"
    # A node file overrides the group file of the same name.
    assert two.run("cat /etc/motd").stdout == "OrionOS lab %s (canary channel)\n" % SECOND
    assert two.run("stat -c %a /etc/orion-lab; cat /etc/orion-lab").stdout == "600\nonly %s reads this\n" % SECOND
    assert two.run("cat /proc/sys/vm/swappiness").stdout.strip() == "13"
    assert two.run("sv status /etc/service/crond").stdout.startswith("run:")
    assert one.run("test -e /etc/service/crond || echo absent").stdout.strip() == "absent"


def test_the_nodes_logs_are_on_the_log_server(nodes, servers):
    # The log server is the floating address: whichever server holds it has
    # the lines, in the file named after the node (found by its address).
    for node in nodes.values():
        node.run("logger -t lab-check hello-from-%s" % node.name)
    for node in nodes.values():
        found = []
        for name, server in servers.items():
            out = server.run("cat /var/log/orion/nodes/%s.log 2>/dev/null" % node.name)
            if "hello-from-%s" % node.name in out.stdout and "orion-init" in out.stdout:
                found.append(name)
        assert found, "no log server has the lines of %s in %s.log" % (node.name, node.name)


def test_a_report_from_another_address_is_refused(servers):
    one, other = sorted(SERVERS)[:2]
    out = subprocess.run(["podman", "exec", one, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "-X", "PUT", "--data", "{}", "http://%s/reports/%s.json" % (SERVERS[other], FIRST)],
                         capture_output=True, text=True, check=False)
    assert out.stdout == "403", out


def test_a_configuration_asked_for_from_another_address_is_refused(nodes):
    """The node reads its own configuration over HTTP; a host beside it (here another node) may not."""
    node = nodes[SECOND]
    for server, address in sorted(SERVERS.items()):
        own = node.run("wget -q -O - http://%s/config/%s.conf | head -n 1" % (address, SECOND)).stdout
        assert own.strip() == "orion-config 1", (server, own)
        other = node.run("wget -S -q -O /dev/null http://%s/config/%s.conf 2>&1 | head -n 1; true"
                         % (address, FIRST)).stdout
        assert " 403 " in other, (server, other)


def test_the_status_playbook_lists_both_nodes(nodes, tmp_path):
    out = playbook("status.yml", "-e", "orion_status_dir=%s" % tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = {row["node"]: row for row in json.loads((tmp_path / "nodes.json").read_text())}
    for name, node in nodes.items():
        row = rows[name]
        assert row["result"] == "ok" and row["paths"] == "2/2" and row["mac"] == node.mac and row["ip"] == node.ip, row
        assert row["image"] == node.report["image"]
        assert name in out.stdout
    prom = (tmp_path / "orion_nodes.prom").read_text()
    up = {(sample.labels["node"], sample.labels["image"]): sample.value
          for family in text_string_to_metric_families(prom) if family.name == "orion_node_up"
          for sample in family.samples}
    assert up[(FIRST, nodes[FIRST].report["image"])] == 1, prom
    assert all(row["rejected"] == 0 for row in rows.values()), rows
    # Nothing changes on a second run while the reports stay the same.
    again = playbook("status.yml", "-e", "orion_status_dir=%s" % tmp_path)
    recap = again.stdout.split("PLAY RECAP")[-1]
    assert re.findall(r"changed=(\d+)", recap) and set(re.findall(r"changed=(\d+)", recap)) == {"0"}, recap
